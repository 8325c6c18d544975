//! Lowering of the layout family.
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

use smelt_ir::ops::layout::{CoordMode, InterpMode, Layout, PadMode, Reduction, ResizeForm};
use smelt_ir::shape::{norm_axis, norm_axis_inclusive, strides};
use smelt_ir::{DType, OpDef, Tensor};

use super::{NodeResult, Operand, flat_index, loop_nest};
use crate::kernel::build::{add, bin, cast, cmp, i, mul, select, sub, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt};

/// Copies all of `src` to `dst`; nothing when the memory plan made them one
/// buffer (a view).
fn copy_all(src: &Operand, dst: &Operand) -> Vec<Stmt> {
    if src.buf == dst.buf {
        return vec![];
    }
    let bytes = (src.numel() as u64 * src.ty.bytes()) as i64;
    vec![Stmt::Copy {
        dst: dst.buf,
        dst_off: i(0),
        src: src.buf,
        src_off: i(0),
        bytes: i(bytes),
    }]
}

/// The IR dtype of a kernel scalar type.
pub(super) fn dtype_of(s: Scalar) -> DType {
    match s {
        Scalar::F32 => DType::F32,
        Scalar::F64 => DType::F64,
        Scalar::I8 => DType::I8,
        Scalar::U8 => DType::U8,
        Scalar::I16 => DType::I16,
        Scalar::U16 => DType::U16,
        Scalar::I32 => DType::I32,
        Scalar::U32 => DType::U32,
        Scalar::I64 => DType::I64,
        Scalar::U64 => DType::U64,
        Scalar::Bool => DType::Bool,
    }
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
        Scalar::F32 | Scalar::F64 => Expr::F(v, ty),
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

/// The multilinear blend of `x` around `base`: for each axis a pair of
/// offsets (low, high) and the weight of the high one, Σ over the 2ⁿ
/// corners of Π weights × x[corner].
fn multilinear(base: &Expr, taps: &[(Expr, Expr, Expr)], x: &Operand, ty: Scalar) -> Expr {
    let mut value: Option<Expr> = None;
    for mask in 0..(1usize << taps.len()) {
        let mut at = base.clone();
        let mut weight: Option<Expr> = None;
        for (k, (a0, a1, w)) in taps.iter().enumerate() {
            let hi = mask & (1 << k) != 0;
            at = add0(at, if hi { a1.clone() } else { a0.clone() });
            let wk = if hi {
                w.clone()
            } else {
                sub(lit(1.0, ty), w.clone())
            };
            weight = Some(match weight {
                None => wk,
                Some(prev) => mul(prev, wk),
            });
        }
        let term = match weight {
            None => x.load(at),
            Some(wt) => mul(wt, x.load(at)),
        };
        value = Some(match value {
            None => term,
            Some(v) => add(v, term),
        });
    }
    value.unwrap_or_else(|| lit(0.0, ty))
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

/// Reads index `at` of an index operand into a fresh `I64` variable, wrapped
/// (negative counts from the end) and clamped into `0..d`. Valid indices give
/// exactly the interpreter's element; invalid ones stay inside the axis.
fn read_index(p: &mut Program, idx: &Operand, at: Expr, d: usize) -> (Stmt, Expr) {
    let v = p.var(Scalar::I64);
    let raw = cast(Scalar::I64, idx.load(at));
    let d = d as i64;
    let wrapped = select(cmp(CmpOp::Lt, var(v), i(0)), add(var(v), i(d)), var(v));
    let clamped = bin(BinOp::Max, bin(BinOp::Min, wrapped, i(d - 1)), i(0));
    (Stmt::Set(v, raw), clamped)
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
    let eb = src.ty.bytes() as i64;
    let (src_c, dst_c) = (src.clone(), dst.clone());
    loop_nest(p, &sizes, |p, idx| {
        let mut sb = i(src_off);
        let mut db = i(dst_off);
        for (k, e) in idx.iter().enumerate() {
            sb = add0(sb, mulk(e.clone(), ds[k].1));
            db = add0(db, mulk(e.clone(), ds[k].2));
        }
        if inner_s == 1 && inner_t == 1 && inner_n as i64 * eb >= 32 {
            return vec![Stmt::Copy {
                dst: dst_c.buf,
                dst_off: mulk(db, eb),
                src: src_c.buf,
                src_off: mulk(sb, eb),
                bytes: i(inner_n as i64 * eb),
            }];
        }
        if inner_n == 1 {
            return vec![Stmt::Store {
                buf: dst_c.buf,
                index: db,
                value: src_c.load(sb),
            }];
        }
        let j = p.var(Scalar::I64);
        vec![Stmt::For {
            var: j,
            start: i(0),
            end: i(inner_n as i64),
            body: vec![Stmt::Store {
                buf: dst_c.buf,
                index: add0(db, mulk(var(j), inner_t)),
                value: src_c.load(add0(sb, mulk(var(j), inner_s))),
            }],
        }]
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
    vec![Stmt::For {
        var: j,
        start: i(0),
        end: i(n as i64),
        body: vec![Stmt::Store {
            buf: dst.buf,
            index: var(j),
            value,
        }],
    }]
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

/// The interpreter's resolution of `Slice` parameters (one definition of the
/// spec's clamping rules for both).
fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<smelt_ir::ops::layout::SliceAxis>, String> {
    smelt_ir::ops::layout::slice_plan(shape, starts, ends, axes, steps).map_err(|e| e.to_string())
}

/// Pad's map of one axis: the input index of each output position (`None`
/// = filled), after negative pads crop.
fn pad_axis_map(dim: usize, before: i64, after: i64, mode: PadMode) -> Vec<Option<usize>> {
    let d = dim as i64;
    let lo = (-before).max(0);
    let len = d - (-after).max(0) - lo;
    let out_len = (d + before + after).max(0);
    let pb = before.max(0);
    (0..out_len)
        .map(|o| {
            let j = o - pb;
            let j = if (0..len).contains(&j) {
                Some(j)
            } else if len <= 0 {
                None
            } else {
                match mode {
                    PadMode::Constant => None,
                    PadMode::Edge => Some(j.clamp(0, len - 1)),
                    PadMode::Wrap => Some(j.rem_euclid(len)),
                    PadMode::Reflect => {
                        if len == 1 {
                            Some(0)
                        } else {
                            let period = 2 * (len - 1);
                            let r = j.rem_euclid(period);
                            Some(if r >= len { period - r } else { r })
                        }
                    }
                }
            };
            j.map(|j| (j + lo) as usize)
        })
        .collect()
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
    let eb = src.ty.bytes() as i64;
    if n as i64 * eb >= 32 {
        return vec![Stmt::Copy {
            dst: dst.buf,
            dst_off: mulk(dst_at, eb),
            src: src.buf,
            src_off: mulk(src_at, eb),
            bytes: i(n as i64 * eb),
        }];
    }
    if n == 1 {
        return vec![Stmt::Store {
            buf: dst.buf,
            index: dst_at,
            value: src.load(src_at),
        }];
    }
    let j = p.var(Scalar::I64);
    vec![Stmt::For {
        var: j,
        start: i(0),
        end: i(n as i64),
        body: vec![Stmt::Store {
            buf: dst.buf,
            index: add0(dst_at, var(j)),
            value: src.load(add0(src_at, var(j))),
        }],
    }]
}

/// `out[o, j, :] = x[o, idx[j], :]` for `x` viewed as `[outer, d, inner]`.
fn gather_rows(
    p: &mut Program,
    x: &Operand,
    idx: &Operand,
    out: &Operand,
    (outer, d, inner): (usize, usize, usize),
) -> NodeResult {
    let m = idx.numel();
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    if d == 0 {
        return Err("Gather from an empty axis has no valid index".into());
    }
    let (x_c, idx_c, out_c) = (x.clone(), idx.clone(), out.clone());
    Ok(loop_nest(p, &[outer, m], |p, lp| {
        let (set, k) = read_index(p, &idx_c, lp[1].clone(), d);
        let src = mulk(add0(mulk(lp[0].clone(), d as i64), k), inner as i64);
        let dst = mulk(
            add0(mulk(lp[0].clone(), m as i64), lp[1].clone()),
            inner as i64,
        );
        let mut s = vec![set];
        s.extend(copy_run(p, &x_c, src, &out_c, dst, inner));
        s
    }))
}

/// The element combination of the Scatter reductions.
fn combine(r: Reduction, a: Expr, u: Expr, ty: Scalar) -> Expr {
    match (r, ty) {
        (Reduction::None, _) => u,
        (Reduction::Add | Reduction::Max, Scalar::Bool) => bin(BinOp::Or, a, u),
        (Reduction::Mul | Reduction::Min, Scalar::Bool) => bin(BinOp::And, a, u),
        (Reduction::Add, _) => bin(BinOp::Add, a, u),
        (Reduction::Mul, _) => bin(BinOp::Mul, a, u),
        (Reduction::Max, _) => bin(BinOp::Max, a, u),
        (Reduction::Min, _) => bin(BinOp::Min, a, u),
    }
}

/// For GatherElements/ScatterElements: loops over the index tensor and calls
/// `body(p, data_offset_without_axis, flat_index_position, indices)`.
fn over_elements(
    p: &mut Program,
    data: &[usize],
    ishape: &[usize],
    axis: usize,
    body: impl FnOnce(&mut Program, Expr, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let ds = strides(data);
    let ishape_c = ishape.to_vec();
    loop_nest(p, ishape, |p, idx| {
        let mut base = i(0);
        for (k, e) in idx.iter().enumerate() {
            if k != axis {
                base = add0(base, mulk(e.clone(), ds[k] as i64));
            }
        }
        body(p, base, flat_index(&ishape_c, idx))
    })
}

/// For GatherND/ScatterND: loops over index tuples and calls
/// `body(p, data_offset, tuple_number)` with the tuple's data offset.
fn over_tuples(
    p: &mut Program,
    data: &[usize],
    idx: &Operand,
    b: usize,
    k: usize,
    body: impl FnOnce(&mut Program, Expr, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let ds = strides(data);
    let batch: usize = data[..b].iter().product();
    let per_batch: usize = idx.shape[b..idx.shape.len() - 1].iter().product();
    let batch_stride: usize = data[b..].iter().product();
    let idx_c = idx.clone();
    let data_c = data.to_vec();
    loop_nest(p, &[batch, per_batch], |p, lp| {
        let t = add0(mulk(lp[0].clone(), per_batch as i64), lp[1].clone());
        let mut pre = Vec::new();
        let mut off = mulk(lp[0].clone(), batch_stride as i64);
        for j in 0..k {
            let at = add0(mulk(t.clone(), k as i64), i(j as i64));
            let (set, e) = read_index(p, &idx_c, at, data_c[b + j]);
            pre.push(set);
            off = add0(off, mulk(e, ds[b + j] as i64));
        }
        pre.extend(body(p, off, t));
        pre
    })
}

/// Lowers one node of the layout family.
pub fn lower(l: &Layout, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let x = ins.first().cloned().flatten().ok_or("no input")?;
    let arg = |k: usize| ins.get(k).cloned().flatten();
    let out = &outs[0];
    let rank = x.shape.len();
    let axis = |a: i64| norm_axis(a, rank).map_err(|e| e.to_string());
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
            let perm: Vec<usize> = match perm {
                Some(pm) => pm.iter().map(|&a| axis(a)).collect::<Result<_, _>>()?,
                None => (0..rank).rev().collect(),
            };
            let st = strides(&x.shape);
            let dims: Vec<(usize, i64)> =
                perm.iter().map(|&a| (x.shape[a], st[a] as i64)).collect();
            Ok(copy_view(p, &x, 0, &dims, out, 0))
        }
        Layout::Concat { axis: a } => {
            let ax = norm_axis(*a, out.shape.len()).map_err(|e| e.to_string())?;
            let (outer, _, inner) = split_at(&out.shape, ax);
            let row = out.shape[ax] * inner;
            let mut stmts = Vec::new();
            let mut offset = 0usize;
            for src in ins.iter().flatten() {
                let chunk = src.shape[ax] * inner;
                stmts.extend(copy_strided(
                    p,
                    src,
                    0,
                    out,
                    (offset * inner) as i64,
                    &[(outer, chunk as i64, row as i64), (chunk, 1, 1)],
                ));
                offset += src.shape[ax];
            }
            Ok(stmts)
        }
        Layout::Split { axis: a, .. } => {
            let ax = axis(*a)?;
            let (outer, d, inner) = split_at(&x.shape, ax);
            let mut stmts = Vec::new();
            let mut start = 0usize;
            for o in outs {
                let len = o.shape[ax];
                stmts.extend(copy_view(
                    p,
                    &x,
                    (start * inner) as i64,
                    &[(outer, (d * inner) as i64), (len * inner, 1)],
                    o,
                    0,
                ));
                start += len;
            }
            Ok(stmts)
        }
        Layout::Slice { attrs } => {
            let plan = match attrs {
                Some(a) => slice_plan(&x.shape, &a.starts, &a.ends, a.axes.as_deref(), None)?,
                None => {
                    let c = |k: usize| -> Result<Option<Vec<i64>>, String> {
                        arg(k).map(|o| const_ints(&o, p)).transpose()
                    };
                    let starts = c(1)?.ok_or("no starts")?;
                    let ends = c(2)?.ok_or("no ends")?;
                    slice_plan(&x.shape, &starts, &ends, c(3)?.as_deref(), c(4)?.as_deref())?
                }
            };
            let st = strides(&x.shape);
            let offset: i64 = plan
                .iter()
                .zip(&st)
                .map(|(a, &s)| a.start as i64 * s as i64)
                .sum();
            let dims: Vec<(usize, i64)> = plan
                .iter()
                .zip(&st)
                .map(|(a, &s)| (a.count, a.step as i64 * s as i64))
                .collect();
            Ok(copy_view(p, &x, offset, &dims, out, 0))
        }
        Layout::Gather { axis: a } => {
            let idx = arg(1).ok_or("no indices")?;
            let ax = axis(*a)?;
            gather_rows(p, &x, &idx, out, split_at(&x.shape, ax))
        }
        Layout::Compress { axis: a } => {
            let cond = const_tensor(&arg(1).ok_or("no condition")?, p)?;
            let kept: Vec<i64> = cond
                .to_i64_vec()
                .iter()
                .enumerate()
                .filter(|(_, c)| **c != 0)
                .map(|(k, _)| k as i64)
                .collect();
            let table = i64_table(p, &kept);
            let dims = match a {
                None => (1, x.numel(), 1),
                Some(a) => split_at(&x.shape, axis(*a)?),
            };
            gather_rows(p, &x, &table, out, dims)
        }
        Layout::GatherElements { axis: a } => {
            let idx = arg(1).ok_or("no indices")?;
            let ax = axis(*a)?;
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            let (d, stride) = (x.shape[ax], strides(&x.shape)[ax]);
            if d == 0 {
                return Err("GatherElements from an empty axis has no valid index".into());
            }
            let (x_c, out_c) = (x.clone(), out.clone());
            Ok(over_elements(p, &x.shape, &idx.shape, ax, |p, base, at| {
                let (set, k) = read_index(p, &idx, at.clone(), d);
                vec![
                    set,
                    Stmt::Store {
                        buf: out_c.buf,
                        index: at,
                        value: x_c.load(add0(base, mulk(k, stride as i64))),
                    },
                ]
            }))
        }
        Layout::GatherND { batch_dims } => {
            let idx = arg(1).ok_or("no indices")?;
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            let b = *batch_dims as usize;
            let k = *idx.shape.last().ok_or("scalar indices")?;
            if x.shape[b..b + k].contains(&0) {
                return Err("GatherND from an empty axis has no valid index".into());
            }
            let len: usize = x.shape[b + k..].iter().product();
            let (x_c, out_c) = (x.clone(), out.clone());
            Ok(over_tuples(p, &x.shape, &idx, b, k, |p, off, t| {
                copy_run(p, &x_c, off, &out_c, mulk(t, len as i64), len)
            }))
        }
        Layout::ScatterND { reduction } => {
            let (idx, u) = (arg(1).ok_or("no indices")?, arg(2).ok_or("no updates")?);
            let mut s = copy_all(&x, out);
            let k = *idx.shape.last().ok_or("scalar indices")?;
            if u.numel() == 0 {
                return Ok(s);
            }
            if x.shape[..k].contains(&0) {
                return Err("ScatterND into an empty axis has no valid index".into());
            }
            let len: usize = x.shape[k..].iter().product();
            let (out_c, r) = (out.clone(), *reduction);
            s.extend(over_tuples(p, &x.shape, &idx, 0, k, |p, off, t| {
                if r == Reduction::None {
                    return copy_run(p, &u, mulk(t, len as i64), &out_c, off, len);
                }
                let e = p.var(Scalar::I64);
                let at = add0(off, var(e));
                vec![Stmt::For {
                    var: e,
                    start: i(0),
                    end: i(len as i64),
                    body: vec![Stmt::Store {
                        buf: out_c.buf,
                        index: at.clone(),
                        value: combine(
                            r,
                            out_c.load(at),
                            u.load(add0(mulk(t, len as i64), var(e))),
                            out_c.ty,
                        ),
                    }],
                }]
            }));
            Ok(s)
        }
        Layout::ScatterElements {
            axis: a, reduction, ..
        } => {
            let (idx, u) = (arg(1).ok_or("no indices")?, arg(2).ok_or("no updates")?);
            let ax = axis(*a)?;
            let mut s = copy_all(&x, out);
            if u.numel() == 0 {
                return Ok(s);
            }
            let (d, stride) = (x.shape[ax], strides(&x.shape)[ax]);
            if d == 0 {
                return Err("ScatterElements into an empty axis has no valid index".into());
            }
            let (out_c, r) = (out.clone(), *reduction);
            s.extend(over_elements(p, &x.shape, &idx.shape, ax, |p, base, at| {
                let (set, k) = read_index(p, &idx, at.clone(), d);
                let dst = add0(base, mulk(k, stride as i64));
                vec![
                    set,
                    Stmt::Store {
                        buf: out_c.buf,
                        index: dst.clone(),
                        value: combine(r, out_c.load(dst), u.load(at), out_c.ty),
                    },
                ]
            }));
            Ok(s)
        }
        Layout::Expand => {
            let st = strides(&x.shape);
            let lead = out.shape.len() - rank;
            let dims: Vec<(usize, i64)> = out
                .shape
                .iter()
                .enumerate()
                .map(|(k, &d)| match k.checked_sub(lead) {
                    Some(j) if x.shape[j] == d => (d, st[j] as i64),
                    _ => (d, 0),
                })
                .collect();
            Ok(copy_view(p, &x, 0, &dims, out, 0))
        }
        Layout::Tile => {
            let st = strides(&x.shape);
            let dims: Vec<(usize, i64)> = out
                .shape
                .iter()
                .zip(&x.shape)
                .zip(&st)
                .flat_map(|((&o, &d), &s)| [(o.checked_div(d).unwrap_or(0), 0), (d, s as i64)])
                .collect();
            Ok(copy_view(p, &x, 0, &dims, out, 0))
        }
        Layout::Pad { mode, attrs } => {
            let amounts: Vec<(i64, i64)> = {
                let (pads, axes) = match attrs {
                    Some(a) => (a.pads.clone(), None),
                    None => (
                        const_ints(&arg(1).ok_or("no pads")?, p)?,
                        arg(3).map(|o| const_ints(&o, p)).transpose()?,
                    ),
                };
                let axes: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&a| axis(a)).collect::<Result<_, _>>()?,
                    None => (0..rank).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return Err("pads do not match the axes".into());
                }
                let mut v = vec![(0, 0); rank];
                for (k, &ax) in axes.iter().enumerate() {
                    v[ax] = (pads[k], pads[axes.len() + k]);
                }
                v
            };
            let maps: Vec<Vec<Option<usize>>> = amounts
                .iter()
                .zip(&x.shape)
                .map(|(&(b, e), &d)| pad_axis_map(d, b, e, *mode))
                .collect();
            let fill_value = match (arg(2), attrs) {
                (Some(c), _) if c.numel() == 1 => c.load(i(0)),
                (Some(_), _) => lit(0.0, out.ty),
                (None, Some(a)) => lit(a.value as f64, out.ty),
                (None, None) => lit(0.0, out.ty),
            };
            Ok(remap(p, &x, out, &maps, fill_value))
        }
        Layout::CenterCropPad { axes } => {
            let target = const_ints(&arg(1).ok_or("no shape")?, p)?;
            let axes: Vec<usize> = match axes {
                Some(a) => a.iter().map(|&a| axis(a)).collect::<Result<_, _>>()?,
                None => (0..rank).collect(),
            };
            let mut maps: Vec<Vec<Option<usize>>> = x
                .shape
                .iter()
                .map(|&d| (0..d).map(Some).collect())
                .collect();
            for (&ax, &t) in axes.iter().zip(&target) {
                let (t, d) = (t.max(0) as usize, x.shape[ax]);
                let off = if t <= d {
                    ((d - t) / 2) as i64
                } else {
                    -(((t - d) / 2) as i64)
                };
                maps[ax] = (0..t as i64)
                    .map(|o| {
                        let k = o + off;
                        (0..d as i64).contains(&k).then_some(k as usize)
                    })
                    .collect();
            }
            Ok(remap(p, &x, out, &maps, lit(0.0, out.ty)))
        }
        Layout::DepthToSpace { blocksize: b, crd } => {
            let [n, c, h, w] = x.shape[..] else {
                return Err("DepthToSpace needs a 4-D input".into());
            };
            let c2 = c / (b * b);
            let (six, perm): ([usize; 6], [usize; 6]) = if *crd {
                ([n, c2, *b, *b, h, w], [0, 1, 4, 2, 5, 3])
            } else {
                ([n, *b, *b, c2, h, w], [0, 3, 4, 1, 5, 2])
            };
            let st = strides(&six);
            let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (six[a], st[a] as i64)).collect();
            Ok(copy_view(p, &x, 0, &dims, out, 0))
        }
        Layout::SpaceToDepth { blocksize: b, crd } => {
            let [n, c, h, w] = x.shape[..] else {
                return Err("SpaceToDepth needs a 4-D input".into());
            };
            let six = [n, c, h / b, *b, w / b, *b];
            let perm: [usize; 6] = if *crd {
                [0, 1, 3, 5, 2, 4]
            } else {
                [0, 3, 5, 1, 2, 4]
            };
            let st = strides(&six);
            let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (six[a], st[a] as i64)).collect();
            Ok(copy_view(p, &x, 0, &dims, out, 0))
        }
        Layout::Shape { start, end } => {
            let r = rank as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clamp(*start), clamp(end.unwrap_or(r)));
            Ok((s..e.max(s))
                .enumerate()
                .map(|(k, d)| Stmt::Store {
                    buf: out.buf,
                    index: i(k as i64),
                    value: i(x.shape[d] as i64),
                })
                .collect())
        }
        Layout::Size => Ok(vec![Stmt::Store {
            buf: out.buf,
            index: i(0),
            value: i(x.numel() as i64),
        }]),
        Layout::ConstantOfShape { value } => {
            let v = match value {
                None => lit(0.0, out.ty),
                Some(t) if out.ty.is_float() => lit(t.to_f64_vec()[0], out.ty),
                Some(t) => Expr::I(t.to_i64_vec()[0], out.ty),
            };
            Ok(fill(p, out, v))
        }
        Layout::Range { .. } => {
            // Inference needs all three operands, so the importer folds a
            // Range; compute the values here in case one is left.
            let start = const_tensor(&x, p)?;
            let delta = const_tensor(&arg(2).ok_or("no delta")?, p)?;
            let n = out.numel();
            let bytes: Vec<u8> = if out.ty.is_float() {
                let (s, d) = (start.to_f64_vec()[0], delta.to_f64_vec()[0]);
                let v: Vec<f64> = (0..n).map(|k| s + k as f64 * d).collect();
                Tensor::from_vec(vec![n], v)
                    .map_err(|e| e.to_string())?
                    .cast(dtype_of(out.ty))
                    .to_le_bytes()
            } else {
                let (s, d) = (start.to_i64_vec()[0] as i128, delta.to_i64_vec()[0] as i128);
                let v: Vec<i64> = (0..n as i128).map(|k| (s + k * d) as i64).collect();
                Tensor::from_vec(vec![n], v)
                    .map_err(|e| e.to_string())?
                    .cast(dtype_of(out.ty))
                    .to_le_bytes()
            };
            p.consts.push(bytes);
            let src = Operand {
                buf: Buf::Const(p.consts.len() as u32 - 1),
                shape: out.shape.clone(),
                ty: out.ty,
            };
            Ok(copy_all(&src, out))
        }
        Layout::Trilu { upper } => {
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            // k may be a run-time scalar.
            let k = match arg(1) {
                Some(t) if t.numel() == 1 => cast(Scalar::I64, t.load(i(0))),
                _ => i(0),
            };
            let (rows, cols) = (x.shape[rank - 2], x.shape[rank - 1]);
            let batch: usize = x.shape[..rank - 2].iter().product();
            let kv = p.var(Scalar::I64);
            let upper = *upper;
            let (x_c, out_c) = (x.clone(), out.clone());
            let mut s = vec![Stmt::Set(kv, k)];
            s.extend(loop_nest(p, &[batch, rows, cols], |_, idx| {
                let at = flat_index(&[batch, rows, cols], idx);
                // Column minus row is small, so the comparison cannot overflow.
                let diag = sub(idx[2].clone(), idx[1].clone());
                let keep = if upper {
                    cmp(CmpOp::Ge, diag, var(kv))
                } else {
                    cmp(CmpOp::Le, diag, var(kv))
                };
                vec![Stmt::Store {
                    buf: out_c.buf,
                    index: at.clone(),
                    value: select(keep, x_c.load(at), lit(0.0, out_c.ty)),
                }]
            }));
            Ok(s)
        }
        Layout::EyeLike { k, .. } => {
            let (rows, cols) = (out.shape[0], out.shape[1]);
            let out_c = out.clone();
            let k = *k;
            Ok(loop_nest(p, &[rows, cols], |_, idx| {
                let on = cmp(CmpOp::Eq, sub(idx[1].clone(), idx[0].clone()), i(k));
                vec![Stmt::Store {
                    buf: out_c.buf,
                    index: flat_index(&[rows, cols], idx),
                    value: select(on, lit(1.0, out_c.ty), lit(0.0, out_c.ty)),
                }]
            }))
        }
        Layout::OneHot { axis: a } => {
            let values = arg(2).ok_or("no values")?;
            let ax = norm_axis_inclusive(*a, rank).map_err(|e| e.to_string())?;
            let depth = out.shape[ax];
            let pre: usize = x.shape[..ax].iter().product();
            let post: usize = x.shape[ax..].iter().product();
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            let (x_c, out_c) = (x.clone(), out.clone());
            let h = p.var(Scalar::I64);
            Ok(loop_nest(p, &[pre, depth, post], |_, idx| {
                let xv = x_c.load(add0(mulk(idx[0].clone(), post as i64), idx[2].clone()));
                let iv = cast(Scalar::I64, xv.clone());
                // Float indices match only when integral, like the reference's `==`.
                let integral = if x_c.ty.is_float() {
                    Some(cmp(CmpOp::Eq, cast(x_c.ty, var(h)), xv))
                } else {
                    None
                };
                let wrapped = select(
                    cmp(CmpOp::Lt, var(h), i(0)),
                    add(var(h), i(depth as i64)),
                    var(h),
                );
                let mut hot = cmp(CmpOp::Eq, wrapped, idx[1].clone());
                if let Some(g) = integral {
                    hot = bin(BinOp::And, hot, g);
                }
                vec![
                    Stmt::Set(h, iv),
                    Stmt::Store {
                        buf: out_c.buf,
                        index: flat_index(&[pre, depth, post], idx),
                        value: select(hot, values.load(i(1)), values.load(i(0))),
                    },
                ]
            }))
        }
        Layout::ReverseSequence {
            batch_axis,
            time_axis,
        } => {
            let lens = arg(1).ok_or("no sequence_lens")?;
            let (bd, td) = (x.shape[*batch_axis], x.shape[*time_axis]);
            let inner: usize = x.shape[2..].iter().product();
            let d1 = x.shape[1] as i64;
            let ba = *batch_axis;
            let at = move |b: Expr, t: Expr| {
                let (i0, i1) = if ba == 0 { (b, t) } else { (t, b) };
                mulk(add0(mulk(i0, d1), i1), inner as i64)
            };
            let mut s = copy_all(&x, out);
            let (x_c, out_c) = (x.clone(), out.clone());
            let lv = p.var(Scalar::I64);
            s.extend(loop_nest(p, &[bd, td], |p, idx| {
                // Clamp the length into 0..=td so no row outside the axis is read.
                let l = bin(
                    BinOp::Max,
                    bin(
                        BinOp::Min,
                        cast(Scalar::I64, lens.load(idx[0].clone())),
                        i(td as i64),
                    ),
                    i(0),
                );
                let src_t = sub(sub(var(lv), i(1)), idx[1].clone());
                let body = copy_run(
                    p,
                    &x_c,
                    at(idx[0].clone(), src_t),
                    &out_c,
                    at(idx[0].clone(), idx[1].clone()),
                    inner,
                );
                vec![
                    Stmt::Set(lv, l),
                    Stmt::If(cmp(CmpOp::Lt, idx[1].clone(), var(lv)), body, vec![]),
                ]
            }));
            Ok(s)
        }
        Layout::Resize(r) | Layout::Upsample(r) => {
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            if x.numel() == 0 {
                return Err("Resize of an empty tensor".into());
            }
            let ev = r.extrapolation as f64;
            let fill_value = if out.ty.is_float() {
                Expr::F(ev, out.ty)
            } else {
                cast(
                    out.ty,
                    crate::kernel::build::un(
                        crate::kernel::UnOp::Nearest,
                        Expr::F(ev, Scalar::F64),
                    ),
                )
            };
            let runtime_roi = ins
                .get(1)
                .cloned()
                .flatten()
                .filter(|o| r.form == ResizeForm::Full && !matches!(o.buf, Buf::Const(_)));
            if let (CoordMode::TfCropAndResize, Some(roi)) = (r.coord, runtime_roi) {
                if r.mode != InterpMode::Linear || r.antialias {
                    return Err(
                        "tf_crop_and_resize with a run-time roi is lowered for linear mode only"
                            .into(),
                    );
                }
                return resize_crop_runtime(l, r, ins, &x, &roi, out, p, fill_value);
            }
            let Some(crop) = resize_crop(
                l,
                ins,
                &x,
                out,
                p,
                r.coord == CoordMode::TfCropAndResize,
                ev,
            )?
            else {
                // Every output point is outside the crop.
                return Ok(fill(p, out, fill_value));
            };
            if r.mode == InterpMode::Nearest {
                // The remap fills the outside points itself.
                let maps = resize_maps(l, ins, &x, out, p, &crop)?;
                return Ok(remap(p, &x, out, &maps, fill_value));
            }
            let mut stmts = if crop.any_ext {
                fill(p, out, fill_value)
            } else {
                vec![]
            };
            stmts.extend(if r.mode == InterpMode::Linear && !r.antialias {
                resize_linear(l, ins, &x, out, p, &crop)?
            } else {
                resize_taps(l, ins, &x, out, p, &crop)?
            });
            Ok(stmts)
        }
        Layout::NonZero => {
            // The input is a compile-time constant: evaluate at compile time.
            let t = const_tensor(&x, p)?;
            let res = l.eval(&[Some(&t)]).map_err(|e| e.to_string())?;
            p.consts.push(res[0].to_le_bytes());
            let src = Operand {
                buf: Buf::Const(p.consts.len() as u32 - 1),
                shape: out.shape.clone(),
                ty: out.ty,
            };
            Ok(copy_all(&src, out))
        }
    }
}

/// The output region of a Resize that reads the input: with
/// `tf_crop_and_resize`, points outside the crop box take the extrapolation
/// value, and on each axis the inside points form one contiguous range.
struct Crop {
    /// Flat output index of a point inside on every axis (probes read the
    /// maps of an axis through it).
    base: i64,
    /// Its coordinates.
    at: Vec<usize>,
    /// Per axis, the first inside position and the count.
    lo: Vec<usize>,
    cnt: Vec<usize>,
    /// Some point is outside.
    any_ext: bool,
}

impl Crop {
    /// The flat output index of the point that differs from `at` only in
    /// `o` on axis `ax`.
    fn along(&self, os: &[usize], ax: usize, o: usize) -> usize {
        (self.base + (o as i64 - self.at[ax] as i64) * os[ax] as i64) as usize
    }
}

/// Finds the inside region with a probe holding a constant other than the
/// extrapolation value; `None` when no point is inside.
fn resize_crop(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &Program,
    crop: bool,
    ev: f64,
) -> Result<Option<Crop>, String> {
    let rank = out.shape.len();
    if !crop {
        return Ok(Some(Crop {
            base: 0,
            at: vec![0; rank],
            lo: vec![0; rank],
            cnt: out.shape.clone(),
            any_ext: false,
        }));
    }
    let c = if ev.is_finite() { ev + 1.0 } else { 0.0 };
    let probe = Tensor::from_vec(x.shape.clone(), vec![c; x.numel()]).map_err(|e| e.to_string())?;
    let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
    let ext = |v: f64| v == ev || (v.is_nan() && ev.is_nan());
    let Some(base) = got.iter().position(|&v| !ext(v)) else {
        return Ok(None);
    };
    let os = strides(&out.shape);
    let at: Vec<usize> = (0..rank)
        .map(|ax| (base / os[ax]) % out.shape[ax])
        .collect();
    let mut cr = Crop {
        base: base as i64,
        at,
        lo: vec![0; rank],
        cnt: vec![0; rank],
        any_ext: false,
    };
    for ax in 0..rank {
        let inside: Vec<usize> = (0..out.shape[ax])
            .filter(|&o| !ext(got[cr.along(&os, ax, o)]))
            .collect();
        let (lo, hi) = (inside[0], inside[inside.len() - 1]);
        if hi - lo + 1 != inside.len() {
            return Err("the crop region is not contiguous".into());
        }
        cr.lo[ax] = lo;
        cr.cnt[ax] = inside.len();
        cr.any_ext |= inside.len() != out.shape[ax];
    }
    Ok(Some(cr))
}

/// Linear `tf_crop_and_resize` with a run-time roi. The coordinate of output
/// point `y` on an axis is `c(y)·diff + start·(in - 1)`, where `c` is the
/// coordinate under the full roi (read off the interpreter with a probe) and
/// `diff`, `start` come from the roi at run time, rounded like the reference
/// (in f32 for an f32 roi). Taps and weights follow from the coordinate as
/// in [`resize_linear`]; points outside the input take the extrapolation value.
#[allow(clippy::too_many_arguments)]
fn resize_crop_runtime(
    l: &Layout,
    r: &smelt_ir::ops::layout::ResizeAttrs,
    ins: &[Option<Operand>],
    x: &Operand,
    roi: &Operand,
    out: &Operand,
    p: &mut Program,
    fill_value: Expr,
) -> NodeResult {
    if !x.ty.is_float() || !roi.ty.is_float() {
        return Err("tf_crop_and_resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let axes: Vec<usize> = match &r.axes {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, rank).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let na = axes.len();
    if roi.numel() != 2 * na {
        return Err("roi must have 2 entries per axis".into());
    }
    // Probes with the full roi.
    let mut full = vec![0.0f64; na];
    full.extend(vec![1.0f64; na]);
    let full = Tensor::from_vec(vec![2 * na], full).map_err(|e| e.to_string())?;
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    let ty = x.ty;
    // Per axis: the full-roi coordinate table, and the roi slot if cropped.
    let mut coords: Vec<Option<(Operand, Option<usize>)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let mut owned: Vec<Option<Tensor>> = Vec::new();
        let coord: Vec<f64> = (0..n)
            .map(|k| ((k / xs[ax]) % x.shape[ax]) as f64)
            .collect();
        owned.push(Some(
            Tensor::from_vec(x.shape.clone(), coord).map_err(|e| e.to_string())?,
        ));
        owned.push(Some(full.clone()));
        for o in ins.iter().skip(2) {
            owned.push(match o {
                Some(o) => Some(const_tensor(o, p)?),
                None => None,
            });
        }
        let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
        let res = l.eval(&refs).map_err(|e| e.to_string())?;
        let got = res[0].to_f64_vec();
        if res[0].shape() != out.shape.as_slice() {
            return Err("the probe's output shape differs from the inferred one".into());
        }
        let c: Vec<f64> = (0..out.shape[ax]).map(|o| got[o * os[ax]]).collect();
        let slot = axes.iter().position(|&a| a == ax);
        if slot.is_none()
            && out.shape[ax] == x.shape[ax]
            && c.iter().enumerate().all(|(o, &v)| v == o as f64)
        {
            coords.push(None);
            continue;
        }
        let t = Tensor::from_vec(vec![c.len()], c).map_err(|e| e.to_string())?;
        p.consts.push(t.to_le_bytes());
        let op = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![out.shape[ax]],
            ty: Scalar::F64,
        };
        coords.push(Some((op, slot)));
    }
    let f64c = |v: f64| Expr::F(v, Scalar::F64);
    let mut stmts = Vec::new();
    // diff and start·(in - 1) per cropped axis.
    let mut roi_vars: Vec<Option<(crate::kernel::Var, crate::kernel::Var)>> = vec![None; rank];
    for (ax, cv) in coords.iter().enumerate() {
        let Some((_, Some(slot))) = cv else { continue };
        let (dv, sv) = (p.var(Scalar::F64), p.var(Scalar::F64));
        let (st, en) = (roi.load(i(*slot as i64)), roi.load(i((na + slot) as i64)));
        let k = (x.shape[ax] as f64 - 1.0).max(0.0);
        stmts.push(Stmt::Set(dv, cast(Scalar::F64, sub(en, st.clone()))));
        stmts.push(Stmt::Set(
            sv,
            cast(Scalar::F64, mul(st, Expr::F(k, roi.ty))),
        ));
        roi_vars[ax] = Some((dv, sv));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    stmts.extend(loop_nest(p, &out.shape, |p, idx| {
        let mut pre = Vec::new();
        let mut base = i(0);
        let mut ext: Option<Expr> = None;
        let mut taps: Vec<(Expr, Expr, Expr)> = Vec::new();
        for (ax, cv) in coords.iter().enumerate() {
            let Some((table, _)) = cv else {
                base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64));
                continue;
            };
            let last = x.shape[ax] as i64 - 1;
            let xv = p.var(Scalar::F64);
            let c = table.load(idx[ax].clone());
            let coord = match roi_vars[ax] {
                Some((dv, sv)) => add(mul(c, var(dv)), var(sv)),
                None => c,
            };
            pre.push(Stmt::Set(xv, coord));
            let out_of = bin(
                BinOp::Or,
                cmp(CmpOp::Lt, var(xv), f64c(0.0)),
                cmp(CmpOp::Gt, var(xv), f64c(last as f64)),
            );
            ext = Some(match ext {
                None => out_of,
                Some(e) => bin(BinOp::Or, e, out_of),
            });
            let (fl, i0, i1, w) = (
                p.var(Scalar::F64),
                p.var(Scalar::I64),
                p.var(Scalar::I64),
                p.var(ty),
            );
            pre.push(Stmt::Set(
                fl,
                crate::kernel::build::un(crate::kernel::UnOp::Floor, var(xv)),
            ));
            pre.push(Stmt::Set(
                i0,
                bin(
                    BinOp::Max,
                    bin(BinOp::Min, cast(Scalar::I64, var(fl)), i(last)),
                    i(0),
                ),
            ));
            pre.push(Stmt::Set(i1, bin(BinOp::Min, add(var(i0), i(1)), i(last))));
            pre.push(Stmt::Set(w, cast(ty, sub(var(xv), var(fl)))));
            taps.push((
                mulk(var(i0), xs[ax] as i64),
                mulk(var(i1), xs[ax] as i64),
                var(w),
            ));
        }
        let value = multilinear(&base, &taps, &x_c, ty);
        pre.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value: match ext {
                Some(e) => select(e, fill_value.clone(), value),
                None => value,
            },
        });
        pre
    }));
    Ok(stmts)
}

/// Evaluates a Resize node with the reference interpreter on `probe` in
/// place of its data input (the other operands are compile-time constants).
fn eval_probe(
    l: &Layout,
    ins: &[Option<Operand>],
    probe: Tensor,
    out: &Operand,
    p: &Program,
) -> Result<Tensor, String> {
    // The region of interest only matters to tf_crop_and_resize: elsewhere a
    // run-time roi is left out rather than refused.
    let roi_unused = matches!(l, Layout::Resize(r) | Layout::Upsample(r)
        if r.form == ResizeForm::Full && r.coord != CoordMode::TfCropAndResize);
    let mut owned: Vec<Option<Tensor>> = vec![Some(probe)];
    for (k, o) in ins.iter().enumerate().skip(1) {
        owned.push(match o {
            Some(o) if k == 1 && roi_unused && !matches!(o.buf, Buf::Const(_)) => None,
            Some(o) => Some(const_tensor(o, p)?),
            None => None,
        });
    }
    let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
    let res = l.eval(&refs).map_err(|e| e.to_string())?;
    let t = res.into_iter().next().ok_or("no output")?;
    if t.shape() != out.shape.as_slice() {
        return Err("the probe's output shape differs from the inferred one".into());
    }
    Ok(t)
}

/// Linear Resize (without antialias): per resized axis, each output position
/// blends two neighbouring inputs. The interpreter is run once per axis on
/// an input holding each element's coordinate along that axis; as the
/// weights of a position sum to 1, the output is the source coordinate
/// `c`, which gives the taps `floor(c)`, `floor(c) + 1` (clamped) and the
/// weight `c - floor(c)` exactly as the reference chooses them.
fn resize_linear(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &mut Program,
    crop: &Crop,
) -> NodeResult {
    if !x.ty.is_float() {
        return Err("linear Resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    // Per axis: None (identity) or the tables (i0·stride, i1·stride, weight).
    let mut axes: Vec<Option<(Operand, Operand, Operand)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let coord: Vec<f64> = (0..n)
            .map(|k| ((k / xs[ax]) % x.shape[ax]) as f64)
            .collect();
        let probe = Tensor::from_vec(x.shape.clone(), coord).map_err(|e| e.to_string())?;
        let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
        let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
        // Outside points are never read; give them a harmless tap.
        let c: Vec<f64> = (0..out.shape[ax])
            .map(|o| {
                if (lo..hi).contains(&o) {
                    got[crop.along(&os, ax, o)]
                } else {
                    0.0
                }
            })
            .collect();
        let last = x.shape[ax] as i64 - 1;
        if out.shape[ax] == x.shape[ax]
            && crop.cnt[ax] == out.shape[ax]
            && c.iter().enumerate().all(|(o, &v)| v == o as f64)
        {
            axes.push(None);
            continue;
        }
        let mut i0 = Vec::with_capacity(c.len());
        let mut i1 = Vec::with_capacity(c.len());
        let mut w = Vec::with_capacity(c.len());
        for &v in &c {
            let f = (v.floor() as i64).clamp(0, last);
            i0.push(f * xs[ax] as i64);
            i1.push((f + 1).min(last) * xs[ax] as i64);
            w.push((v - f as f64).clamp(0.0, 1.0));
        }
        let wt = Tensor::from_vec(vec![w.len()], w)
            .map_err(|e| e.to_string())?
            .cast(dtype_of(x.ty));
        p.consts.push(wt.to_le_bytes());
        let wop = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![c.len()],
            ty: x.ty,
        };
        axes.push(Some((i64_table(p, &i0), i64_table(p, &i1), wop)));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    let ty = x.ty;
    let lo = crop.lo.clone();
    Ok(loop_nest(p, &crop.cnt, |p, idx| {
        let idx: Vec<Expr> = idx
            .iter()
            .zip(&lo)
            .map(|(e, &l)| add0(e.clone(), i(l as i64)))
            .collect();
        let idx = &idx[..];
        let mut pre = Vec::new();
        let mut base = i(0);
        // (offset of tap 0, offset of tap 1, weight of tap 1) per resized axis.
        let mut taps: Vec<(Expr, Expr, Expr)> = Vec::new();
        for (ax, a) in axes.iter().enumerate() {
            match a {
                None => base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64)),
                Some((t0, t1, tw)) => {
                    let (v0, v1, vw) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(ty));
                    pre.push(Stmt::Set(v0, t0.load(idx[ax].clone())));
                    pre.push(Stmt::Set(v1, t1.load(idx[ax].clone())));
                    pre.push(Stmt::Set(vw, tw.load(idx[ax].clone())));
                    taps.push((var(v0), var(v1), var(vw)));
                }
            }
        }
        let value = multilinear(&base, &taps, &x_c, ty);
        pre.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value,
        });
        pre
    }))
}

/// Cubic and antialiased Resize: a separable linear map with any number of
/// taps per output position. Each axis' weight matrix is read off the
/// interpreter column by column (an input that is 1 where the coordinate
/// along the axis is `j`, else 0: the weights of a position sum to 1 on
/// every axis, so the output along the axis is column `j`), then the kernel
/// loops over the taps of every resized axis.
fn resize_taps(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &mut Program,
    crop: &Crop,
) -> NodeResult {
    if !x.ty.is_float() {
        return Err("Resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    let ty = x.ty;
    // Per axis: None (identity) or (taps, index table, weight table).
    let mut axes: Vec<Option<(usize, Operand, Operand)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let m = out.shape[ax];
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(x.shape[ax]);
        for j in 0..x.shape[ax] {
            let hot: Vec<f64> = (0..n)
                .map(|k| ((k / xs[ax]) % x.shape[ax] == j) as u8 as f64)
                .collect();
            let probe = Tensor::from_vec(x.shape.clone(), hot).map_err(|e| e.to_string())?;
            let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
            let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
            cols.push(
                (0..m)
                    .map(|o| {
                        if (lo..hi).contains(&o) {
                            got[crop.along(&os, ax, o)]
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }
        let identity = m == x.shape[ax]
            && crop.cnt[ax] == m
            && (0..m).all(|o| (0..m).all(|j| cols[j][o] == if o == j { 1.0 } else { 0.0 }));
        if identity {
            axes.push(None);
            continue;
        }
        let taps: Vec<Vec<(i64, f64)>> = (0..m)
            .map(|o| {
                (0..x.shape[ax])
                    .filter(|&j| cols[j][o] != 0.0)
                    .map(|j| ((j * xs[ax]) as i64, cols[j][o]))
                    .collect()
            })
            .collect();
        let k = taps.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut idx = vec![0i64; m * k];
        let mut w = vec![0f64; m * k];
        for (o, t) in taps.iter().enumerate() {
            for (q, &(a, wt)) in t.iter().enumerate() {
                idx[o * k + q] = a;
                w[o * k + q] = wt;
            }
        }
        let wt = Tensor::from_vec(vec![w.len()], w)
            .map_err(|e| e.to_string())?
            .cast(dtype_of(ty));
        p.consts.push(wt.to_le_bytes());
        let wop = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![m * k],
            ty,
        };
        axes.push(Some((k, i64_table(p, &idx), wop)));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    let acc = p.var(ty);
    let lo = crop.lo.clone();
    Ok(loop_nest(p, &crop.cnt, |p, idx| {
        let idx: Vec<Expr> = idx
            .iter()
            .zip(&lo)
            .map(|(e, &l)| add0(e.clone(), i(l as i64)))
            .collect();
        let idx = &idx[..];
        let mut base = i(0);
        let mut weight: Option<Expr> = None;
        let mut tap_loops: Vec<(crate::kernel::Var, usize)> = Vec::new();
        for (ax, a) in axes.iter().enumerate() {
            match a {
                None => base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64)),
                Some((k, ti, tw)) => {
                    let t = p.var(Scalar::I64);
                    let at = add0(mulk(idx[ax].clone(), *k as i64), var(t));
                    base = add0(base, ti.load(at.clone()));
                    let wk = tw.load(at);
                    weight = Some(match weight {
                        None => wk,
                        Some(prev) => mul(prev, wk),
                    });
                    tap_loops.push((t, *k));
                }
            }
        }
        let term = match weight {
            None => x_c.load(base),
            Some(wt) => mul(wt, x_c.load(base)),
        };
        let mut inner = vec![Stmt::Set(acc, add(var(acc), term))];
        for &(t, k) in tap_loops.iter().rev() {
            inner = vec![Stmt::For {
                var: t,
                start: i(0),
                end: i(k as i64),
                body: inner,
            }];
        }
        let mut body = vec![Stmt::Set(acc, lit(0.0, ty))];
        body.extend(inner);
        body.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value: var(acc),
        });
        body
    }))
}

/// The per-axis input index maps of a nearest-neighbour Resize, obtained by
/// running the reference interpreter on an input that holds each element's
/// own flat index: every output element then holds the flat index of the
/// input element it copies, which splits into one map per axis.
fn resize_maps(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &Program,
    crop: &Crop,
) -> Result<Vec<Vec<Option<usize>>>, String> {
    let n = x.numel();
    let iota = Tensor::from_vec(x.shape.clone(), (0..n as i64).collect::<Vec<i64>>())
        .map_err(|e| e.to_string())?;
    let got = eval_probe(l, ins, iota, out, p)?.to_i64_vec();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let base = got[crop.base as usize];
    Ok((0..out.shape.len())
        .map(|ax| {
            let first = (base / xs[ax] as i64) % x.shape[ax] as i64;
            let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
            (0..out.shape[ax])
                .map(|o| {
                    if !(lo..hi).contains(&o) {
                        return None;
                    }
                    let v = got[crop.along(&os, ax, o)] - base;
                    Some((first + v / xs[ax] as i64) as usize)
                })
                .collect()
        })
        .collect())
}
