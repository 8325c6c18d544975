//! Lowering of the layout family.
//!
//! One file per op or small group of ops (the same grouping as
//! `smelt_ir::ops::layout`) holds that op's lowering; this file keeps the
//! exhaustive dispatch and the kernels the ops share.
//!
//! Views that keep the bytes (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
//! inference Dropout) share their input's buffer (the memory plan aliases
//! them) and emit no code; a copy is left only where a caller lowers one with
//! distinct buffers. Most other ops are one of three shapes of kernel,
//! the same split the interpreter makes:
//! - a strided view ([`copy_strided`]): Split, Slice, Expand, Tile,
//!   DepthToSpace, SpaceToDepth — per-dim sizes and source strides (zero for
//!   broadcast, negative for reversed slices), contiguous dims merged and
//!   long contiguous runs copied with `memcpy`;
//! - an index map per axis ([`remap`]): Pad, CenterCropPad, nearest Resize —
//!   affine axes become loops, the others read a small table of input
//!   indices stored with the program, holes are filled;
//! - data-dependent indices: the Gather and Scatter families. An index is
//!   wrapped like the interpreter wraps a valid one (negative counts from the
//!   end) and then clamped into the axis, so an out-of-range index gives an
//!   unspecified element but never touches memory outside the buffer.
//!
//! Operands that shape inference needs (Slice's starts, Pad's pads, …) are
//! compile-time constants by the time a graph is lowered; their values are
//! read from the program's constant data.

use smelt_ir::ops::layout::Layout;
use smelt_ir::{DType, Tensor};

use smelt_ir::shape::{norm_axis, strides};

use super::{NodeResult, Operand, loop_nest};
use crate::kernel::build::{add, bin, cmp, i, mul, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, MemCopy, Program, Scalar, Stmt};

mod concat_split;
mod expand_tile;
mod gather;
pub(super) use gather::read_index;
mod generate;
mod masks;
mod pad;
mod resize;
mod scatter;
mod select;
mod slice;
mod transpose;

/// Lowers one node of the layout family.
pub fn lower(l: &Layout, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let x = ins.first().cloned().flatten().ok_or("no input")?;
    let out = &outs[0];
    match l {
        Layout::Reshape { .. }
        | Layout::Flatten { .. }
        | Layout::Squeeze { .. }
        | Layout::Unsqueeze { .. }
        | Layout::Identity => Ok(copy_all(&x, out)),
        Layout::Dropout { .. } => {
            let mut s = copy_all(&x, out);
            if let Some(mask) = outs.get(1) {
                s.extend(fill(p, mask, lit(1.0, mask.ty)));
            }
            Ok(s)
        }
        Layout::Transpose { perm } => {
            transpose::lower_transpose(perm.as_deref(), Node { x, ins, out }, p)
        }
        Layout::Concat { axis } => concat_split::lower_concat(*axis, Node { x, ins, out }, p),
        Layout::Split { axis, .. } => concat_split::lower_split(*axis, x, outs, p),
        Layout::Slice { attrs } => slice::lower_slice(attrs.as_ref(), Node { x, ins, out }, p),
        Layout::Gather { axis } => gather::lower_gather(*axis, Node { x, ins, out }, p),
        Layout::Compress { axis } => select::lower_compress(*axis, Node { x, ins, out }, p),
        Layout::GatherElements { axis } => {
            gather::lower_gather_elements(*axis, Node { x, ins, out }, p)
        }
        Layout::GatherND { batch_dims } => {
            gather::lower_gather_nd(*batch_dims, Node { x, ins, out }, p)
        }
        Layout::ScatterND { reduction } => {
            scatter::lower_scatter_nd(*reduction, Node { x, ins, out }, p)
        }
        Layout::ScatterElements {
            axis, reduction, ..
        } => scatter::lower_scatter_elements(*axis, *reduction, Node { x, ins, out }, p),
        Layout::Expand => expand_tile::lower_expand(Node { x, ins, out }, p),
        Layout::Tile => expand_tile::lower_tile(Node { x, ins, out }, p),
        Layout::Pad { mode, attrs } => {
            pad::lower_pad(*mode, attrs.as_ref(), Node { x, ins, out }, p)
        }
        Layout::CenterCropPad { axes } => {
            select::lower_center_crop_pad(axes.as_deref(), Node { x, ins, out }, p)
        }
        Layout::DepthToSpace { blocksize, crd } => {
            transpose::lower_depth_space(*blocksize, *crd, true, Node { x, ins, out }, p)
        }
        Layout::SpaceToDepth { blocksize, crd } => {
            transpose::lower_depth_space(*blocksize, *crd, false, Node { x, ins, out }, p)
        }
        Layout::Shape { start, end } => {
            generate::lower_shape(*start, *end, Node { x, ins, out }, p)
        }
        Layout::Size => Ok(vec![Stmt::Store {
            buf: out.buf,
            index: i(0),
            value: i(x.numel() as i64),
        }]),
        Layout::ConstantOfShape { value } => {
            generate::lower_constant_of_shape(value.as_ref(), Node { x, ins, out }, p)
        }
        Layout::Range { .. } => generate::lower_range(Node { x, ins, out }, p),
        Layout::Trilu { upper } => masks::lower_trilu(*upper, Node { x, ins, out }, p),
        Layout::EyeLike { k, .. } => masks::lower_eye_like(*k, Node { x, ins, out }, p),
        Layout::OneHot { axis } => masks::lower_one_hot(*axis, Node { x, ins, out }, p),
        Layout::ReverseSequence {
            batch_axis,
            time_axis,
        } => select::lower_reverse_sequence(*batch_axis, *time_axis, Node { x, ins, out }, p),
        Layout::Resize(r) | Layout::Upsample(r) => {
            resize::lower_resize(l, r, Node { x, ins, out }, p)
        }
        Layout::NonZero => masks::lower_non_zero(l, Node { x, ins, out }, p),
    }
}

/// The operands of one layout node as its `lower_<op>` function takes them.
struct Node<'a> {
    /// The first input, which every layout op has.
    x: Operand,
    /// All inputs, `None` where the node omits an optional one.
    ins: &'a [Option<Operand>],
    /// The first output.
    out: &'a Operand,
}

/// Copies all of `src` to `dst`; nothing when the memory plan made them one
/// buffer (a view).
fn copy_all(src: &Operand, dst: &Operand) -> Vec<Stmt> {
    if src.buf == dst.buf {
        return vec![];
    }
    let bytes = (src.numel() as u64 * src.ty.bytes()) as i64;
    vec![Stmt::Copy(MemCopy::whole(dst.buf, src.buf, bytes))]
}

/// The IR dtype of a kernel scalar type.
pub(super) fn dtype_of(s: Scalar) -> DType {
    s.dtype()
}

/// The value of a compile-time constant operand.
pub(super) fn const_tensor(o: &Operand, p: &Program) -> Result<Tensor, String> {
    let Buf::Const(k) = o.buf else {
        return Err(
            "an operand that must be a compile-time constant is computed at run time".into(),
        );
    };
    Tensor::from_le_bytes(dtype_of(o.ty), o.shape.clone(), &p.consts[k as usize])
        .map_err(|e| e.to_string())
}

/// The integers of a compile-time constant operand.
pub(super) fn const_ints(o: &Operand, p: &Program) -> Result<Vec<i64>, String> {
    Ok(const_tensor(o, p)?.to_i64_vec())
}

/// A literal of type `ty` (floats exactly, integers truncated, bool `!= 0`).
pub(super) fn lit(v: f64, ty: Scalar) -> Expr {
    match ty {
        t if t.is_float() => Expr::F(v, t),
        Scalar::Bool => Expr::I((v != 0.0) as i64, ty),
        _ => Expr::I(v as i64, ty),
    }
}

/// `a + b`, folding zeros so printed kernels stay readable.
fn add0(a: Expr, b: Expr) -> Expr {
    match (&a, &b) {
        (Expr::I(0, _), _) => b,
        (_, Expr::I(0, _)) => a,
        _ => add(a, b),
    }
}

/// `a * k` for a constant `k`, folding 0 and 1.
fn mulk(a: Expr, k: i64) -> Expr {
    match k {
        0 => i(0),
        1 => a,
        _ => mul(a, i(k)),
    }
}

/// Adds a table of `i64`s to the program's constants and returns it as an operand.
fn i64_table(p: &mut Program, v: &[i64]) -> Operand {
    p.consts
        .push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
    Operand {
        buf: Buf::Const(p.consts.len() as u32 - 1),
        shape: vec![v.len()],
        ty: Scalar::I64,
    }
}

/// Copies `dims` = `[(size, src_stride, dst_stride)]` (element strides) from
/// `src` at element `src_off` to `dst` at element `dst_off`. Size-1 dims are
/// dropped and dims contiguous in both buffers merged; the innermost run is
/// a `memcpy` when it is contiguous and long enough, else an element loop.
fn copy_strided(
    p: &mut Program,
    src: &Operand,
    src_off: i64,
    dst: &Operand,
    dst_off: i64,
    dims: &[(usize, i64, i64)],
) -> Vec<Stmt> {
    if dims.iter().any(|d| d.0 == 0) {
        return vec![];
    }
    let mut ds: Vec<(usize, i64, i64)> = Vec::with_capacity(dims.len());
    for &(d, s, t) in dims {
        if d == 1 {
            continue;
        }
        if let Some(last) = ds.last_mut()
            && last.1 == s * d as i64
            && last.2 == t * d as i64
        {
            *last = (last.0 * d, s, t);
            continue;
        }
        ds.push((d, s, t));
    }
    let (inner_n, inner_s, inner_t) = ds.pop().unwrap_or((1, 1, 1));
    let sizes: Vec<usize> = ds.iter().map(|d| d.0).collect();
    let (src_c, dst_c) = (src.clone(), dst.clone());
    loop_nest(p, &sizes, |p, idx| {
        let mut sb = i(src_off);
        let mut db = i(dst_off);
        for (k, e) in idx.iter().enumerate() {
            sb = add0(sb, mulk(e.clone(), ds[k].1));
            db = add0(db, mulk(e.clone(), ds[k].2));
        }
        copy_run_strided(p, &src_c, (sb, inner_s), &dst_c, (db, inner_t), inner_n)
    })
}

/// [`copy_strided`] into the whole of a row-major `dst` whose shape is the
/// dims' sizes: `dims` = `[(size, src_stride)]`.
fn copy_view(
    p: &mut Program,
    src: &Operand,
    src_off: i64,
    dims: &[(usize, i64)],
    dst: &Operand,
    dst_off: i64,
) -> Vec<Stmt> {
    let sizes: Vec<usize> = dims.iter().map(|d| d.0).collect();
    let ds = strides(&sizes);
    let full: Vec<(usize, i64, i64)> = dims
        .iter()
        .zip(&ds)
        .map(|(&(d, s), &t)| (d, s, t as i64))
        .collect();
    copy_strided(p, src, src_off, dst, dst_off, &full)
}

/// Fills the whole of `dst` with `value`.
fn fill(p: &mut Program, dst: &Operand, value: Expr) -> Vec<Stmt> {
    let n = dst.numel();
    if n == 0 {
        return vec![];
    }
    let j = p.var(Scalar::I64);
    vec![Stmt::for_loop(
        j,
        i(0),
        i(n as i64),
        vec![Stmt::Store {
            buf: dst.buf,
            index: var(j),
            value,
        }],
    )]
}

/// One axis of a [`remap`].
enum AxisMap {
    /// Output positions `out_lo..out_lo + count` read input `src_lo + k·step`;
    /// the others are filled.
    Affine {
        out_lo: usize,
        count: usize,
        src_lo: i64,
        step: i64,
    },
    /// Input index per output position; `-1` is filled.
    Table(Vec<i64>),
}

fn classify(map: &[Option<usize>]) -> AxisMap {
    let lo = map.iter().position(Option::is_some);
    let hi = map.iter().rposition(Option::is_some);
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let vals: Option<Vec<i64>> = map[lo..=hi].iter().map(|m| m.map(|v| v as i64)).collect();
        if let Some(vals) = vals {
            let step = if vals.len() > 1 { vals[1] - vals[0] } else { 1 };
            if vals.windows(2).all(|w| w[1] - w[0] == step) {
                return AxisMap::Affine {
                    out_lo: lo,
                    count: vals.len(),
                    src_lo: vals[0],
                    step,
                };
            }
        }
    } else {
        return AxisMap::Affine {
            out_lo: 0,
            count: 0,
            src_lo: 0,
            step: 1,
        };
    }
    AxisMap::Table(map.iter().map(|m| m.map_or(-1, |v| v as i64)).collect())
}

/// `out[o0, o1, …] = x[m0[o0], m1[o1], …]`, with positions whose map is
/// `None` on any axis set to `fill_value`.
fn remap(
    p: &mut Program,
    x: &Operand,
    out: &Operand,
    maps: &[Vec<Option<usize>>],
    fill_value: Expr,
) -> Vec<Stmt> {
    if out.numel() == 0 {
        return vec![];
    }
    let axes: Vec<AxisMap> = maps.iter().map(|m| classify(m)).collect();
    let holes = maps.iter().any(|m| m.iter().any(Option::is_none));
    let mut stmts = if holes {
        fill(p, out, fill_value)
    } else {
        vec![]
    };
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    if axes.iter().all(|a| matches!(a, AxisMap::Affine { .. })) {
        let mut src_off = 0i64;
        let mut dst_off = 0i64;
        let mut dims = Vec::new();
        for (ax, a) in axes.iter().enumerate() {
            let AxisMap::Affine {
                out_lo,
                count,
                src_lo,
                step,
            } = *a
            else {
                unreachable!("checked above")
            };
            src_off += src_lo * xs[ax] as i64;
            dst_off += (out_lo * os[ax]) as i64;
            dims.push((count, step * xs[ax] as i64, os[ax] as i64));
        }
        stmts.extend(copy_strided(p, x, src_off, out, dst_off, &dims));
        return stmts;
    }
    // General case: loop over each axis' range, tables for the irregular ones.
    let tables: Vec<Option<(Operand, bool)>> = axes
        .iter()
        .map(|a| match a {
            AxisMap::Table(t) => Some((i64_table(p, t), t.contains(&-1))),
            AxisMap::Affine { .. } => None,
        })
        .collect();
    let ranges: Vec<usize> = axes
        .iter()
        .map(|a| match a {
            AxisMap::Affine { count, .. } => *count,
            AxisMap::Table(t) => t.len(),
        })
        .collect();
    let (x_c, out_c) = (x.clone(), out.clone());
    stmts.extend(loop_nest(p, &ranges, |p, idx| {
        let mut pre = Vec::new();
        let mut src = i(0);
        let mut dst = i(0);
        let mut guard: Option<Expr> = None;
        for (ax, a) in axes.iter().enumerate() {
            match a {
                AxisMap::Affine {
                    out_lo,
                    src_lo,
                    step,
                    ..
                } => {
                    let s = add0(i(*src_lo), mulk(idx[ax].clone(), *step));
                    src = add0(src, mulk(s, xs[ax] as i64));
                    dst = add0(
                        dst,
                        mulk(add0(i(*out_lo as i64), idx[ax].clone()), os[ax] as i64),
                    );
                }
                AxisMap::Table(_) => {
                    let (t, has_holes) = tables[ax].as_ref().expect("a table per table axis");
                    let v = p.var(Scalar::I64);
                    pre.push(Stmt::Set(v, t.load(idx[ax].clone())));
                    if *has_holes {
                        let ok = cmp(CmpOp::Ge, var(v), i(0));
                        guard = Some(match guard {
                            None => ok,
                            Some(g) => bin(BinOp::And, g, ok),
                        });
                    }
                    src = add0(src, mulk(var(v), xs[ax] as i64));
                    dst = add0(dst, mulk(idx[ax].clone(), os[ax] as i64));
                }
            }
        }
        let store = Stmt::Store {
            buf: out_c.buf,
            index: dst,
            value: x_c.load(src),
        };
        pre.push(match guard {
            Some(g) => Stmt::If(g, vec![store], vec![]),
            None => store,
        });
        pre
    }));
    stmts
}

/// Axis `a` of a rank-`rank` tensor, negative counting from the end.
fn axis_of(a: i64, rank: usize) -> Result<usize, String> {
    norm_axis(a, rank).map_err(|e| e.to_string())
}

/// `(outer, d, inner)` around `axis`.
fn split_at(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// Copies `n` elements from `src[src_at..]` to `dst[dst_at..]`: a `memcpy`
/// for long runs, a loop for short ones.
fn copy_run(
    p: &mut Program,
    src: &Operand,
    src_at: Expr,
    dst: &Operand,
    dst_at: Expr,
    n: usize,
) -> Vec<Stmt> {
    copy_run_strided(p, src, (src_at, 1), dst, (dst_at, 1), n)
}

/// Copies `n` elements from `src` at `(start, step)` to `dst` at
/// `(start, step)` (element steps): a `memcpy` when both are contiguous and
/// the run is long, a single store for one element, else a loop.
fn copy_run_strided(
    p: &mut Program,
    src: &Operand,
    (src_at, src_step): (Expr, i64),
    dst: &Operand,
    (dst_at, dst_step): (Expr, i64),
    n: usize,
) -> Vec<Stmt> {
    let eb = src.ty.bytes() as i64;
    if src_step == 1 && dst_step == 1 && n as i64 * eb >= 32 {
        return vec![Stmt::Copy(MemCopy {
            dst: dst.buf,
            dst_off: mulk(dst_at, eb),
            src: src.buf,
            src_off: mulk(src_at, eb),
            bytes: i(n as i64 * eb),
        })];
    }
    if n == 1 {
        return vec![Stmt::Store {
            buf: dst.buf,
            index: dst_at,
            value: src.load(src_at),
        }];
    }
    let j = p.var(Scalar::I64);
    vec![Stmt::for_loop(
        j,
        i(0),
        i(n as i64),
        vec![Stmt::Store {
            buf: dst.buf,
            index: add0(dst_at, mulk(var(j), dst_step)),
            value: src.load(add0(src_at, mulk(var(j), src_step))),
        }],
    )]
}
