//! Lowering of the conv family: `Conv`, `ConvTranspose`, the windowed pools
//! (`MaxPool`, `AveragePool`, `LpPool`) and the global pools.
//!
//! Size: ~1,240 lines before the tests, one family still in one file. It is
//! next to be split per op (direct/im2col conv, transposed conv, pools) the
//! way `lower/shape/` was; issue 11 tracks it.
//!
//! f32 2-D `Conv` with one group runs as im2col + the packed GEMM
//! micro-kernel of [`crate::schedule::gemm`] (`fast_conv`); depthwise f32
//! 2-D `Conv` reads a zero-bordered copy of each channel (`depthwise`).
//! Everything else is the general schedule: a direct loop nest per output
//! element with a scalar accumulator. Padding never reaches its inner loops:
//! for every output position the range of kernel taps that land inside the
//! input is computed once (with `min`/`max` and a division by the constant
//! dilation), so the tap loops run without a condition.
//!
//! The window geometry (pads derived from `auto_pad`, `ConvTranspose`'s
//! crop) comes from [`smelt_ir::window`], the rule shape inference and the
//! interpreter use.

use smelt_ir::ops::OpDef;
use smelt_ir::ops::conv::{ConvOp, PoolFn};
use smelt_ir::ops::elementwise::Epilogue;
use smelt_ir::window::Geom;

use super::elementwise::Epi;
use super::{NodeResult, Operand, flat_index, operand};
use crate::kernel::build::{add, bin, cast, cmp, f, i, mul, select, sub, un, var};
use crate::kernel::{BinOp, CmpOp, Expr, MemCopy, Program, Scalar, Stmt, UnOp, Var};

/// Resolves the window with the IR's own rule ([`smelt_ir::window`]) and
/// checks it against the output shape the IR inferred.
fn resolve(g: Result<Geom, smelt_ir::Error>, out: &[usize]) -> Result<Geom, String> {
    let g = g.map_err(|e| e.to_string())?;
    if g.out != out {
        return Err(format!(
            "the window resolves to {:?} but the inferred output is {out:?}",
            g.out
        ));
    }
    Ok(g)
}

/// Row-major strides of `shape`.
fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

fn imax(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Max, a, b)
}

fn imin(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Min, a, b)
}

/// `ceil(a / d)` for a non-negative `a` and a constant `d ≥ 1`.
fn ceil_div(a: Expr, d: usize) -> Expr {
    if d == 1 {
        a
    } else {
        bin(BinOp::Div, add(a, i(d as i64 - 1)), i(d as i64))
    }
}

/// `k_lo`, `k_hi` such that `start + k·dil` lies in `[0, limit)` exactly for
/// the taps `k_lo ≤ k < k_hi` (clamped to `[0, kernel]`; empty when
/// `k_hi ≤ k_lo`).
fn tap_range(start: &Expr, limit: i64, dil: usize, kernel: usize) -> (Expr, Expr) {
    let k = i(kernel as i64);
    let lo = imin(
        ceil_div(imax(sub(i(0), start.clone()), i(0)), dil),
        k.clone(),
    );
    let hi = imin(ceil_div(imax(sub(i(limit), start.clone()), i(0)), dil), k);
    (lo, hi)
}

/// The per-axis variables of a sliding window.
struct Axis {
    /// Output position (for `ConvTranspose`: input position).
    o: Var,
    /// First valid tap.
    lo: Var,
    /// One past the last valid tap.
    hi: Var,
    /// Kernel tap.
    k: Var,
    /// Flat offset of the window's origin along axes `0..=d` (may be negative).
    off: Var,
}

fn axes(p: &mut Program, nd: usize) -> Vec<Axis> {
    (0..nd)
        .map(|_| Axis {
            o: p.var(Scalar::I64),
            lo: p.var(Scalar::I64),
            hi: p.var(Scalar::I64),
            k: p.var(Scalar::I64),
            off: p.var(Scalar::I64),
        })
        .collect()
}

/// Wraps `inner` in loops over the window positions `positions[d]`. At each
/// level it sets the valid tap range (taps landing in `[0, limit[d])`) and
/// the origin's flat offset `base + Σ (o·stride − pad)·flat_strides[d]`.
fn position_loops(
    g: &Geom,
    ax: &[Axis],
    positions: &[usize],
    limit: &[usize],
    flat_strides: &[usize],
    base: Expr,
    inner: Vec<Stmt>,
) -> Vec<Stmt> {
    let nd = ax.len();
    let mut body = inner;
    for d in (0..nd).rev() {
        let start = sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d]));
        let (lo, hi) = tap_range(&start, limit[d] as i64, g.dilations[d], g.kernel[d]);
        let prev = if d == 0 {
            base.clone()
        } else {
            var(ax[d - 1].off)
        };
        let mut level = vec![
            Stmt::Set(ax[d].lo, lo),
            Stmt::Set(ax[d].hi, hi),
            Stmt::Set(ax[d].off, add(prev, mul(start, i(flat_strides[d] as i64)))),
        ];
        level.extend(body);
        body = vec![Stmt::for_loop(ax[d].o, i(0), i(positions[d] as i64), level)];
    }
    body
}

/// Wraps `inner` in the tap loops `lo[d]..hi[d]`.
fn tap_loops(ax: &[Axis], inner: Vec<Stmt>) -> Vec<Stmt> {
    let mut body = inner;
    for a in ax.iter().rev() {
        body = vec![Stmt::for_loop(a.k, var(a.lo), var(a.hi), body)];
    }
    body
}

/// `Σ k_d · scale_d` over the tap variables.
fn tap_offset(ax: &[Axis], scale: impl Fn(usize) -> usize) -> Expr {
    ax.iter()
        .enumerate()
        .map(|(d, a)| {
            let s = scale(d);
            if s == 1 {
                var(a.k)
            } else {
                mul(var(a.k), i(s as i64))
            }
        })
        .reduce(add)
        .unwrap_or_else(|| i(0))
}

/// Lowers one node of the conv family.
pub fn lower(
    op: &ConvOp,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    lower_with(op, &Epi::default(), ins, outs, p).map(|(stmts, _)| stmts)
}

/// [`lower`] with an epilogue (residual, activation) for `Conv`: the
/// statements and whether they apply it already. Every `Conv` kernel
/// applies it as it stores a result (the GEMM path in its micro-kernel's
/// store, the depthwise and direct kernels on the accumulator) except the
/// GEMM path when its store cannot take it (see [`Epi::for_gemm`]); the
/// caller then appends it as passes.
pub fn lower_with(
    op: &ConvOp,
    epi: &Epi,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> Result<(Vec<Stmt>, bool), String> {
    match op {
        ConvOp::Conv { window, group } => {
            let (x, w) = (operand(ins, 0, "X")?, operand(ins, 1, "W")?);
            let b = ins.get(2).cloned().flatten();
            let y = &outs[0];
            if !x.ty.is_float() {
                return Err(format!("Conv on {:?} has no native kernel", x.ty));
            }
            let g = resolve(
                window.resolve(&x.shape[2..], &w.shape[2..], false),
                &y.shape[2..],
            )?;
            let store_epi = epi.for_gemm(y);
            let se = store_epi.unwrap_or_default();
            if let Some(stmts) = fast_conv(p, &g, *group, &x, &w, b.as_ref(), y, se) {
                return Ok((stmts, !epi.is_empty() && store_epi.is_some()));
            }
            if let Some(stmts) = depthwise(p, &g, *group, &x, &w, b.as_ref(), y, epi) {
                return Ok((stmts?, !epi.is_empty()));
            }
            Ok((
                conv(p, &g, *group, &x, &w, b.as_ref(), y, epi)?,
                !epi.is_empty(),
            ))
        }
        _ if !epi.is_empty() => Err(format!("no epilogue for {}", op.name())),
        _ => lower_other(op, ins, outs, p).map(|s| (s, false)),
    }
}

fn lower_other(
    op: &ConvOp,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    match op {
        // Handled by `lower_with`, which sends only the other ops here.
        ConvOp::Conv { .. } => lower_with(op, &Epi::default(), ins, outs, p).map(|(s, _)| s),
        ConvOp::ConvTranspose {
            window,
            group,
            output_padding,
            output_shape,
        } => {
            let (x, w) = (operand(ins, 0, "X")?, operand(ins, 1, "W")?);
            let b = ins.get(2).cloned().flatten();
            let y = &outs[0];
            if !x.ty.is_float() {
                return Err(format!("ConvTranspose on {:?} has no native kernel", x.ty));
            }
            let nd = x.shape.len() - 2;
            let want = output_shape
                .as_ref()
                .map(|s| if s.len() == nd + 2 { &s[2..] } else { &s[..] });
            let g = resolve(
                window.resolve_transpose(&x.shape[2..], &w.shape[2..], output_padding, want),
                &y.shape[2..],
            )?;
            Ok(conv_transpose(p, &g, *group, &x, &w, b.as_ref(), y))
        }
        ConvOp::Pool {
            f,
            window,
            ceil_mode,
            indices,
        } => {
            let x = operand(ins, 0, "X")?;
            let y = &outs[0];
            let kernel = window.kernel_shape.clone().unwrap_or_default();
            let g = resolve(
                window.resolve(&x.shape[2..], &kernel, *ceil_mode),
                &y.shape[2..],
            )?;
            match f {
                PoolFn::Max { column_major } => {
                    let idx = if *indices { outs.get(1) } else { None };
                    Ok(max_pool(p, &g, &x, y, idx, *column_major))
                }
                PoolFn::Average { count_include_pad } => {
                    check_float(&x)?;
                    Ok(sum_pool(p, &g, &x, y, SumPool::Average(*count_include_pad)))
                }
                PoolFn::Lp { p: pw } => {
                    check_float(&x)?;
                    Ok(sum_pool(p, &g, &x, y, SumPool::Lp(*pw as f64)))
                }
            }
        }
        ConvOp::GlobalPool { f } => {
            let x = operand(ins, 0, "X")?;
            if !x.ty.is_float() {
                return Err(format!("global pool on {:?} has no native kernel", x.ty));
            }
            Ok(global_pool(p, &x, &outs[0], *f))
        }
        ConvOp::MaxUnpool {
            kernel_shape,
            strides,
            pads,
        } => {
            let (x, ix) = (operand(ins, 0, "X")?, operand(ins, 1, "I")?);
            let (inferred, _) =
                smelt_ir::window::unpool_shape(kernel_shape, strides, pads, &x.shape, None)
                    .map_err(|e| e.to_string())?;
            Ok(max_unpool(p, &x, &ix, &inferred, &outs[0]))
        }
    }
}

/// The first output position along an axis whose tap `t` (kernel offset
/// `t · dil − pad`) reads inside `[0, size)`, and one past the last.
fn valid_range(size: usize, out: usize, stride: usize, off: i64) -> (usize, usize) {
    // o·stride + off ∈ [0, size)  ⇔  o ∈ [ceil(−off / s), ceil((size − off) / s)).
    let s = stride as i64;
    let lo = (-off).max(0).div_euclid(s) + ((-off).max(0).rem_euclid(s) != 0) as i64;
    let hi_num = size as i64 - off;
    let hi = if hi_num <= 0 {
        0
    } else {
        hi_num / s + (hi_num % s != 0) as i64
    };
    let lo = (lo.max(0) as usize).min(out);
    let hi = (hi.max(0) as usize).min(out);
    (lo, hi.max(lo))
}

/// Stores `0.0` into `buf[base + j]` for `j` in `from..to`.
fn zero_fill(
    p: &mut Program,
    buf: crate::kernel::Buf,
    base: Expr,
    from: usize,
    to: usize,
) -> Vec<Stmt> {
    if from >= to {
        return vec![];
    }
    let j = p.var(Scalar::I64);
    vec![Stmt::for_loop(
        j,
        i(from as i64),
        i(to as i64),
        vec![Stmt::Store {
            buf,
            index: add(base, var(j)),
            value: f(0.0, Scalar::F32),
        }],
    )]
}

/// A 2-D f32 convolution with one group as a GEMM per image:
/// `Y[m, p] = b[m] + Σ_k W[m, k] · col[k, p]` with `k = (c, kh, kw)` and
/// `p = (oh, ow)`. `col` is X itself for a 1×1, stride-1, unpadded kernel;
/// otherwise it is built in the scratch area (im2col: a row per tap and
/// channel, zeros where the tap falls in the padding, rows copied with
/// `memcpy` at stride 1; parallel over channels when there are threads). A
/// constant W is packed for the micro-kernel.
#[allow(clippy::too_many_arguments)]
fn fast_conv(
    p: &mut Program,
    g: &Geom,
    group: usize,
    x: &Operand,
    w: &Operand,
    b: Option<&Operand>,
    y: &Operand,
    (residual, act): (Option<crate::kernel::Buf>, Option<Epilogue>),
) -> Option<Vec<Stmt>> {
    use crate::kernel::Buf;
    use crate::schedule::gemm;
    if group != 1 || !super::linalg::on_gemm("Conv", [x, w, y]) {
        return None;
    }
    if act.is_some_and(|a| !a.is_supported()) {
        return None;
    }
    if x.shape.len() != 4 || b.is_some_and(|b| b.ty != Scalar::F32) {
        return None;
    }
    let (nb, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let (m, kh, kw) = (y.shape[1], g.kernel[0], g.kernel[1]);
    let (oh, ow) = (g.out[0], g.out[1]);
    let (kk, pp) = (c * kh * kw, oh * ow);
    if kk == 0 || pp == 0 || m == 0 {
        return None;
    }
    let direct =
        kh == 1 && kw == 1 && g.strides == [1, 1] && g.pad_begin == [0, 0] && oh == h && ow == wd;
    let t = gemm::Tiling::for_rows(m, p.shape);
    let a = match &w.buf {
        Buf::Const(ci) => {
            let wv = gemm::f32s(&p.consts[*ci as usize]);
            let cid = p.consts.len() as u32;
            let (bytes, panels) = gemm::pack_a(t, m, kk, |r, q| wv[r * kk + q], Buf::Const(cid));
            p.consts.push(bytes);
            panels
        }
        _ => gemm::strided_a(t, m, w.buf, i(0), kk as i64, 1),
    };
    let init = match b {
        Some(b) => gemm::Init::Row(b.buf, i(0)),
        None => gemm::Init::Zero,
    };
    let col = if direct {
        None
    } else {
        Some(p.scratch((kk * pp * 4) as u64))
    };
    let nv = p.var(Scalar::I64);
    let x_img = mul(var(nv), i((c * h * wd) as i64));
    let mut body = Vec::new();
    if let Some(col) = col {
        let cv = p.var(Scalar::I64);
        let ohv = p.var(Scalar::I64);
        let owv = p.var(Scalar::I64);
        let mut per_c = Vec::new();
        for th in 0..kh {
            for tw in 0..kw {
                let off_h = (th * g.dilations[0]) as i64 - g.pad_begin[0];
                let off_w = (tw * g.dilations[1]) as i64 - g.pad_begin[1];
                let (h_lo, h_hi) = valid_range(h, oh, g.strides[0], off_h);
                let (w_lo, w_hi) = valid_range(wd, ow, g.strides[1], off_w);
                // Row k of col: (c·kh + th)·kw + tw.
                let row = mul(
                    add(mul(var(cv), i((kh * kw) as i64)), i((th * kw + tw) as i64)),
                    i(pp as i64),
                );
                per_c.extend(zero_fill(p, col, row.clone(), 0, h_lo * ow));
                per_c.extend(zero_fill(p, col, row.clone(), h_hi * ow, pp));
                if h_lo >= h_hi {
                    continue;
                }
                let dst_row = add(row.clone(), mul(var(ohv), i(ow as i64)));
                let ih = add(mul(var(ohv), i(g.strides[0] as i64)), i(off_h));
                let src_row = add(
                    add(x_img.clone(), mul(var(cv), i((h * wd) as i64))),
                    mul(ih, i(wd as i64)),
                );
                let mut per_row = zero_fill(p, col, dst_row.clone(), 0, w_lo);
                per_row.extend(zero_fill(p, col, dst_row.clone(), w_hi, ow));
                if w_lo < w_hi {
                    let iw0 = w_lo as i64 * g.strides[1] as i64 + off_w;
                    if g.strides[1] == 1 {
                        per_row.push(Stmt::Copy(MemCopy {
                            dst: col,
                            dst_off: mul(add(dst_row.clone(), i(w_lo as i64)), i(4)),
                            src: x.buf,
                            src_off: mul(add(src_row.clone(), i(iw0)), i(4)),
                            bytes: i(((w_hi - w_lo) * 4) as i64),
                        }));
                    } else {
                        per_row.push(Stmt::for_loop(
                            owv,
                            i(w_lo as i64),
                            i(w_hi as i64),
                            vec![Stmt::Store {
                                buf: col,
                                index: add(dst_row.clone(), var(owv)),
                                value: x.load(add(
                                    src_row.clone(),
                                    add(mul(var(owv), i(g.strides[1] as i64)), i(off_w)),
                                )),
                            }],
                        ));
                    }
                }
                per_c.push(Stmt::for_loop(ohv, i(h_lo as i64), i(h_hi as i64), per_row));
            }
        }
        // Channel cv fills rows cv·kh·kw .. (cv+1)·kh·kw of col and reads
        // only X: the channels can go to different threads.
        body.push(p.par_for(cv, c, (kh * kw * pp) as u64, per_c));
    }
    let b_panels = match col {
        Some(col) => gemm::strided_b(t, pp, col, i(0), pp as i64),
        None => gemm::strided_b(t, pp, x.buf, x_img, pp as i64),
    };
    let spec = gemm::Gemm {
        m,
        n: pp,
        k: kk,
        tiling: t,
        a,
        b: b_panels,
        c: (y.buf, mul(var(nv), i((m * pp) as i64)), pp as i64),
        init,
        act,
        residual,
    };
    body.extend(gemm::gemm(p, &spec));
    Some(vec![Stmt::for_loop(nv, i(0), i(nb as i64), body)])
}

/// A 2-D f32 depthwise convolution (one input and one output channel per
/// group): each channel is copied into a zero-bordered plane in the scratch
/// area, then every output row is `b[c] + Σ_taps w[c, tap] · plane[…]` with
/// the taps unrolled, a unit-stride loop that [`crate::schedule::vectorize`]
/// turns into vector code when the stride is 1. The epilogue (residual,
/// activation) is applied to each sum before it is stored, in the same loop
/// (`None` when the kernel does not apply; `Some(Err)` when the epilogue
/// cannot be built).
#[allow(clippy::too_many_arguments)]
fn depthwise(
    p: &mut Program,
    g: &Geom,
    group: usize,
    x: &Operand,
    w: &Operand,
    b: Option<&Operand>,
    y: &Operand,
    epi: &Epi,
) -> Option<Result<Vec<Stmt>, String>> {
    use crate::kernel::build::muladd;
    if x.ty != Scalar::F32 || w.ty != Scalar::F32 || y.ty != Scalar::F32 || x.shape.len() != 4 {
        return None;
    }
    let (nb, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if group != c || y.shape[1] != c || w.shape[1] != 1 || b.is_some_and(|b| b.ty != Scalar::F32) {
        return None;
    }
    if g.pad_begin.iter().any(|&q| q < 0) {
        return None;
    }
    let (kh, kw, oh, ow) = (g.kernel[0], g.kernel[1], g.out[0], g.out[1]);
    let (ph, pw) = (g.pad_begin[0] as usize, g.pad_begin[1] as usize);
    let (sh, sw, dh, dw) = (g.strides[0], g.strides[1], g.dilations[0], g.dilations[1]);
    let span = |o: usize, s: usize, k: usize, d: usize| {
        if o == 0 || k == 0 {
            0
        } else {
            (o - 1) * s + (k - 1) * d + 1
        }
    };
    let hp = (h + ph).max(span(oh, sh, kh, dh));
    let wp = (wd + pw).max(span(ow, sw, kw, dw));
    // With threads: `tt` parallel iterations over channel ranges, each with
    // its own plane (64-byte aligned) in the scratch area.
    let tt = (p.threads.max(1) as usize).min(c);
    let work = (c * oh * ow * kh * kw) as u64;
    let threaded = tt >= 2 && work >= tt as u64 * p.min_parallel_work();
    let plane_elems = (hp * wp).div_ceil(16) * 16;
    let plane = if threaded {
        p.scratch((tt * plane_elems * 4) as u64)
    } else {
        p.scratch((hp * wp * 4) as u64)
    };
    let (nv, cv, r, ov, z) = (
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
    );
    // The border stays zero: only the interior is overwritten per channel.
    let mut out = vec![Stmt::for_loop(
        z,
        i(0),
        i((hp * wp) as i64),
        vec![Stmt::Store {
            buf: plane,
            index: var(z),
            value: f(0.0, Scalar::F32),
        }],
    )];
    let chan = add(mul(var(nv), i(c as i64)), var(cv));
    let copy = Stmt::for_loop(
        r,
        i(0),
        i(h as i64),
        vec![Stmt::Copy(MemCopy {
            dst: plane,
            dst_off: mul(
                add(mul(add(var(r), i(ph as i64)), i(wp as i64)), i(pw as i64)),
                i(4),
            ),
            src: x.buf,
            src_off: mul(
                add(
                    mul(chan.clone(), i((h * wd) as i64)),
                    mul(var(r), i(wd as i64)),
                ),
                i(4),
            ),
            bytes: i((wd * 4) as i64),
        })],
    );
    let mut acc = match b {
        Some(b) => b.load(var(cv)),
        None => f(0.0, Scalar::F32),
    };
    for th in 0..kh {
        for tw in 0..kw {
            let wi = add(mul(var(cv), i((kh * kw) as i64)), i((th * kw + tw) as i64));
            let row = add(mul(var(r), i(sh as i64)), i((th * dh) as i64));
            let col = add(mul(var(ov), i(sw as i64)), i((tw * dw) as i64));
            let xi = add(mul(row, i(wp as i64)), col);
            acc = muladd(
                w.load(wi),
                crate::kernel::build::load(plane, xi, Scalar::F32),
                acc,
            );
        }
    }
    let y_idx = add(
        mul(add(mul(chan, i(oh as i64)), var(r)), i(ow as i64)),
        var(ov),
    );
    let mut per_col = Vec::new();
    let value = match epi.apply(p, acc, Scalar::F32, y_idx.clone(), &mut per_col) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    per_col.push(Stmt::Store {
        buf: y.buf,
        index: y_idx,
        value,
    });
    let rows = Stmt::for_loop(
        r,
        i(0),
        i(oh as i64),
        vec![Stmt::for_loop(ov, i(0), i(ow as i64), per_col)],
    );
    if threaded {
        // Iteration t: zero its plane's border, then channels
        // c·t/tt .. c·(t+1)/tt through that plane. Each channel's sums keep
        // their order, so any thread count gives the same bytes.
        let tv = p.var(Scalar::I64);
        let off = mul(var(tv), i(plane_elems as i64));
        let at = |s: Stmt| crate::kernel::offset_buf(s, plane, &off, 4);
        let bound = |k: i64| {
            bin(
                BinOp::Div,
                mul(add(var(tv), i(k)), i(c as i64)),
                i(tt as i64),
            )
        };
        let mut body: Vec<Stmt> = out.drain(..).map(at).collect();
        body.push(Stmt::for_loop(
            cv,
            bound(0),
            bound(1),
            vec![at(copy), at(rows)],
        ));
        let par = p.par_for(tv, tt, work / tt as u64, body);
        return Some(Ok(vec![Stmt::for_loop(nv, i(0), i(nb as i64), vec![par])]));
    }
    out.push(Stmt::for_loop(
        nv,
        i(0),
        i(nb as i64),
        vec![Stmt::for_loop(cv, i(0), i(c as i64), vec![copy, rows])],
    ));
    Some(Ok(out))
}

/// The sizes a grouped convolution, direct or transposed, is built from.
struct ConvSizes {
    /// Spatial rank.
    nd: usize,
    /// Batch, input channels, output channels.
    n: usize,
    c: usize,
    m: usize,
    /// Input and output channels per group.
    cg: usize,
    mg: usize,
    /// Elements of one input plane, one output plane and one kernel.
    in_sz: usize,
    out_sz: usize,
    kprod: usize,
}

impl ConvSizes {
    fn new(g: &Geom, group: usize, x: &Operand, y: &Operand) -> Self {
        let (c, m) = (x.shape[1], y.shape[1]);
        ConvSizes {
            nd: g.input.len(),
            n: x.shape[0],
            c,
            m,
            cg: c / group,
            mg: m / group,
            in_sz: g.input.iter().product(),
            out_sz: g.out.iter().product(),
            kprod: g.kernel.iter().product(),
        }
    }
}

/// `N` fresh `i64` variables, numbered in order.
fn i64_vars<const N: usize>(p: &mut Program) -> [Var; N] {
    std::array::from_fn(|_| p.var(Scalar::I64))
}

/// `y[n, m, o] = b[m] + Σ_{c, k} x[n, g·cg + c, o·s + k·dil − pad] · w[m, c, k]`
/// for the output channels `m` of group `g`, with the epilogue (residual,
/// activation) applied to each sum before it is stored.
#[allow(clippy::too_many_arguments)]
fn conv(
    p: &mut Program,
    g: &Geom,
    group: usize,
    x: &Operand,
    w: &Operand,
    b: Option<&Operand>,
    y: &Operand,
    epi: &Epi,
) -> Result<Vec<Stmt>, String> {
    let ConvSizes {
        nd,
        n,
        c,
        m,
        cg,
        mg,
        in_sz,
        out_sz,
        kprod,
    } = ConvSizes::new(g, group, x, y);
    let in_strides = strides_of(&g.input);
    let k_strides = strides_of(&g.kernel);
    let ty = y.ty;
    let ax = axes(p, nd);
    let [nv, gv, ocv, icv] = i64_vars(p);
    let (xc, wc, acc) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(ty));
    // Output channel m = g·mg + oc.
    let mch = add(mul(var(gv), i(mg as i64)), var(ocv));
    let x_tap = add(var(xc), tap_offset(&ax, |d| g.dilations[d] * in_strides[d]));
    let w_tap = add(var(wc), tap_offset(&ax, |d| k_strides[d]));
    let mac = Stmt::Set(acc, add(var(acc), mul(x.load(x_tap), w.load(w_tap))));
    let last_off = var(ax[nd - 1].off);
    let per_ic = vec![
        Stmt::Set(xc, add(last_off, mul(var(icv), i(in_sz as i64)))),
        Stmt::Set(
            wc,
            add(
                mul(mch.clone(), i((cg * kprod) as i64)),
                mul(var(icv), i(kprod as i64)),
            ),
        ),
    ]
    .into_iter()
    .chain(tap_loops(&ax, vec![mac]))
    .collect();
    let init = match b {
        Some(b) => b.load(mch.clone()),
        None => f(0.0, ty),
    };
    let o_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let y_idx = add(
        mul(
            add(mul(var(nv), i(m as i64)), mch.clone()),
            i(out_sz as i64),
        ),
        flat_index(&g.out, &o_idx),
    );
    let mut at_position = vec![
        Stmt::Set(acc, init),
        Stmt::for_loop(icv, i(0), i(cg as i64), per_ic),
    ];
    let value = epi.apply(p, var(acc), ty, y_idx.clone(), &mut at_position)?;
    at_position.push(Stmt::Store {
        buf: y.buf,
        index: y_idx,
        value,
    });
    // X's first channel of the group, as a flat offset.
    let x_base = mul(
        add(mul(var(nv), i(c as i64)), mul(var(gv), i(cg as i64))),
        i(in_sz as i64),
    );
    let positions = position_loops(g, &ax, &g.out, &g.input, &in_strides, x_base, at_position);
    Ok(nest(&[(nv, n), (gv, group), (ocv, mg)], positions))
}

/// `ConvTranspose` as a scatter: `y` starts at the bias, then every input
/// element adds `x[n, c, i] · w[c, oc, k]` to `y[n, g·mg + oc, i·s + k·dil − pad]`
/// for the taps that land inside the output.
fn conv_transpose(
    p: &mut Program,
    g: &Geom,
    group: usize,
    x: &Operand,
    w: &Operand,
    b: Option<&Operand>,
    y: &Operand,
) -> Vec<Stmt> {
    let ConvSizes {
        nd,
        n,
        c,
        m,
        cg,
        mg,
        in_sz,
        out_sz,
        kprod,
    } = ConvSizes::new(g, group, x, y);
    let out_strides = strides_of(&g.out);
    let k_strides = strides_of(&g.kernel);
    let ty = y.ty;
    let mut stmts = Vec::new();
    // y = bias (or zero).
    let (pl, e) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let fill = match b {
        Some(b) => b.load(bin(BinOp::Rem, var(pl), i(m as i64))),
        None => f(0.0, ty),
    };
    stmts.extend(nest(
        &[(pl, n * m)],
        vec![Stmt::for_loop(
            e,
            i(0),
            i(out_sz as i64),
            vec![Stmt::Store {
                buf: y.buf,
                index: add(mul(var(pl), i(out_sz as i64)), var(e)),
                value: fill,
            }],
        )],
    ));
    let ax = axes(p, nd);
    let [nv, gv, icv, ocv] = i64_vars(p);
    let (xv, yo, wo) = (p.var(ty), p.var(Scalar::I64), p.var(Scalar::I64));
    // Input channel ci = g·cg + ic; W is [C, mg, k…].
    let ci = add(mul(var(gv), i(cg as i64)), var(icv));
    let i_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let x_idx = add(
        mul(add(mul(var(nv), i(c as i64)), ci.clone()), i(in_sz as i64)),
        flat_index(&g.input, &i_idx),
    );
    let y_idx = add(
        add(var(yo), mul(var(ocv), i(out_sz as i64))),
        var(ax[nd - 1].off),
    );
    let y_tap = add(y_idx, tap_offset(&ax, |d| g.dilations[d] * out_strides[d]));
    let w_idx = add(
        add(var(wo), mul(var(ocv), i(kprod as i64))),
        tap_offset(&ax, |d| k_strides[d]),
    );
    let scatter = Stmt::Store {
        buf: y.buf,
        index: y_tap.clone(),
        value: add(y.load(y_tap), mul(var(xv), w.load(w_idx))),
    };
    let per_input = vec![
        Stmt::Set(xv, x.load(x_idx)),
        Stmt::Set(
            yo,
            mul(
                add(mul(var(nv), i(m as i64)), mul(var(gv), i(mg as i64))),
                i(out_sz as i64),
            ),
        ),
        Stmt::Set(wo, mul(ci, i((mg * kprod) as i64))),
        Stmt::for_loop(ocv, i(0), i(mg as i64), tap_loops(&ax, vec![scatter])),
    ];
    // Positions run over the input; taps land in the output.
    let positions = position_loops(g, &ax, &g.input, &g.out, &out_strides, i(0), per_input);
    stmts.extend(nest(&[(nv, n), (gv, group), (icv, cg)], positions));
    stmts
}

/// Wraps `body` in `for v in 0..n` loops, outermost first.
fn nest(loops: &[(Var, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut body = body;
    for &(v, n) in loops.iter().rev() {
        body = vec![Stmt::for_loop(v, i(0), i(n as i64), body)];
    }
    body
}

/// The smallest value of `ty` (`-inf` for floats): the max-pool of an empty window.
fn lowest(ty: Scalar) -> Expr {
    match ty {
        Scalar::F32 | Scalar::F64 => f(f64::NEG_INFINITY, ty),
        Scalar::I8 => Expr::I(i8::MIN as i64, ty),
        Scalar::I16 => Expr::I(i16::MIN as i64, ty),
        Scalar::I32 => Expr::I(i32::MIN as i64, ty),
        Scalar::I64 => Expr::I(i64::MIN, ty),
        Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 | Scalar::Bool => Expr::I(0, ty),
    }
}

/// The loops over `N × C` planes and the window positions of a pool; `at`
/// gets the flat input offset of the window origin's plane and returns the
/// statements for one output position (whose flat index it also gets).
fn pool_loops(
    p: &mut Program,
    g: &Geom,
    x: &Operand,
    at: impl FnOnce(&mut Program, &[Axis], Var, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let nd = g.input.len();
    let planes = x.shape[0] * x.shape[1];
    let in_sz: usize = g.input.iter().product();
    let out_sz: usize = g.out.iter().product();
    let in_strides = strides_of(&g.input);
    let ax = axes(p, nd);
    let pl = p.var(Scalar::I64);
    let o_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let y_idx = add(mul(var(pl), i(out_sz as i64)), flat_index(&g.out, &o_idx));
    let inner = at(p, &ax, pl, y_idx);
    let positions = position_loops(
        g,
        &ax,
        &g.out,
        &g.input,
        &in_strides,
        mul(var(pl), i(in_sz as i64)),
        inner,
    );
    nest(&[(pl, planes)], positions)
}

/// `MaxPool`, with the optional `Indices` output (flat indices into X, the
/// in-plane part column-major when `column_major`). NaNs never win a
/// comparison, so they are skipped, as in the interpreter.
fn max_pool(
    p: &mut Program,
    g: &Geom,
    x: &Operand,
    y: &Operand,
    indices: Option<&Operand>,
    column_major: bool,
) -> Vec<Stmt> {
    let nd = g.input.len();
    let in_sz: usize = g.input.iter().product();
    let in_strides = strides_of(&g.input);
    // Column-major strides within a plane.
    let mut col_strides = vec![1usize; nd];
    for d in 1..nd {
        col_strides[d] = col_strides[d - 1] * g.input[d - 1];
    }
    let ty = x.ty;
    let (best, bi, v) = (p.var(ty), p.var(Scalar::I64), p.var(ty));
    let (y, indices) = (y.clone(), indices.cloned());
    pool_loops(p, g, x, |_, ax, pl, y_idx| {
        let x_idx = add(
            var(ax[nd - 1].off),
            tap_offset(ax, |d| g.dilations[d] * in_strides[d]),
        );
        // Floats start from NaN ("nothing yet"), so that a window of NaNs
        // only gives NaN, and a value wins when it is not NaN and not below
        // the best (`!(v <= best)` also holds while best is NaN). An empty
        // window gives the lowest value, as in the interpreter.
        let (better, init) = if ty.is_float() {
            let empty = ax
                .iter()
                .map(|a| cmp(CmpOp::Le, var(a.hi), var(a.lo)))
                .reduce(|a, b| bin(BinOp::Or, a, b))
                .unwrap_or(Expr::I(0, Scalar::Bool));
            (
                bin(
                    BinOp::And,
                    cmp(CmpOp::Eq, var(v), var(v)),
                    un(UnOp::Not, cmp(CmpOp::Le, var(v), var(best))),
                ),
                select(empty, lowest(ty), f(f64::NAN, ty)),
            )
        } else {
            (cmp(CmpOp::Gt, var(v), var(best)), lowest(ty))
        };
        let mut tap = vec![
            Stmt::Set(v, x.load(x_idx.clone())),
            Stmt::Set(best, select(better.clone(), var(v), var(best))),
        ];
        let mut stmts = vec![Stmt::Set(best, init)];
        if let Some(ix) = &indices {
            // The input position along axis d is o·s − pad + k·dil.
            let flat = if column_major {
                let pos = |d: usize| {
                    add(
                        sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d])),
                        mul(var(ax[d].k), i(g.dilations[d] as i64)),
                    )
                };
                let inplane = (0..nd)
                    .map(|d| mul(pos(d), i(col_strides[d] as i64)))
                    .reduce(add)
                    .unwrap_or_else(|| i(0));
                add(mul(var(pl), i(in_sz as i64)), inplane)
            } else {
                x_idx
            };
            // Set before `best` is updated: `better` reads the old best.
            // The first tap stands in until a value wins (a window of NaNs
            // reports its first element).
            let take = bin(BinOp::Or, better, cmp(CmpOp::Eq, var(bi), i(-1)));
            tap.insert(1, Stmt::Set(bi, select(take, flat, var(bi))));
            stmts.push(Stmt::Set(bi, i(-1)));
            stmts.extend(tap_loops(ax, tap));
            stmts.push(Stmt::Store {
                buf: ix.buf,
                index: y_idx.clone(),
                value: var(bi),
            });
        } else {
            stmts.extend(tap_loops(ax, tap));
        }
        stmts.push(Stmt::Store {
            buf: y.buf,
            index: y_idx,
            value: var(best),
        });
        stmts
    })
}

fn check_float(x: &Operand) -> Result<(), String> {
    if x.ty.is_float() {
        Ok(())
    } else {
        Err(format!("this pool on {:?} has no native kernel", x.ty))
    }
}

/// The pools that sum over the window.
#[derive(Clone, Copy)]
enum SumPool {
    /// `AveragePool`; whether padded cells count in the divisor.
    Average(bool),
    /// `LpPool` with this exponent.
    Lp(f64),
}

/// `AveragePool` and `LpPool`.
fn sum_pool(p: &mut Program, g: &Geom, x: &Operand, y: &Operand, pf: SumPool) -> Vec<Stmt> {
    let nd = g.input.len();
    let in_strides = strides_of(&g.input);
    let ty = x.ty;
    let acc = p.var(ty);
    let y = y.clone();
    pool_loops(p, g, x, |_, ax, _, y_idx| {
        let xv = x.load(add(
            var(ax[nd - 1].off),
            tap_offset(ax, |d| g.dilations[d] * in_strides[d]),
        ));
        let (term, result) = match pf {
            SumPool::Average(count_include_pad) => {
                // Taps inside the input, or (count_include_pad) inside the padded extent.
                let count = (0..nd)
                    .map(|d| {
                        if count_include_pad {
                            let start =
                                sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d]));
                            let limit = g.input[d] as i64 + g.pad_end[d];
                            let lo_limit = -g.pad_begin[d];
                            // Taps with start + k·dil in [-pad_begin, input + pad_end).
                            let (lo, hi) = tap_range(
                                &sub(start, i(lo_limit)),
                                limit - lo_limit,
                                g.dilations[d],
                                g.kernel[d],
                            );
                            imax(sub(hi, lo), i(0))
                        } else {
                            imax(sub(var(ax[d].hi), var(ax[d].lo)), i(0))
                        }
                    })
                    .reduce(mul)
                    .unwrap_or_else(|| i(1));
                (xv, bin(BinOp::Div, var(acc), cast(ty, count)))
            }
            SumPool::Lp(pw) => lp_terms(xv, pw, var(acc), ty),
        };
        let mut stmts = vec![Stmt::Set(acc, f(0.0, ty))];
        stmts.extend(tap_loops(ax, vec![Stmt::Set(acc, add(var(acc), term))]));
        stmts.push(Stmt::Store {
            buf: y.buf,
            index: y_idx,
            value: result,
        });
        stmts
    })
}

/// The summed term of an Lp pool for the element `xv` and the result for the
/// sum `acc`: `(Σ |x|^p)^(1/p)`, exact for `p` = 1 and 2.
fn lp_terms(xv: Expr, pw: f64, acc: Expr, ty: Scalar) -> (Expr, Expr) {
    if pw == 2.0 {
        (mul(xv.clone(), xv), un(UnOp::Sqrt, acc))
    } else if pw == 1.0 {
        (un(UnOp::Abs, xv), acc)
    } else {
        (
            bin(BinOp::Pow, un(UnOp::Abs, xv), f(pw, ty)),
            bin(BinOp::Pow, acc, f(1.0 / pw, ty)),
        )
    }
}

/// `GlobalMaxPool`, `GlobalAveragePool`, `GlobalLpPool`: one reduction per plane.
fn global_pool(p: &mut Program, x: &Operand, y: &Operand, pf: PoolFn) -> Vec<Stmt> {
    let planes = x.shape[0] * x.shape[1];
    let plane: usize = x.shape[2..].iter().product();
    let ty = x.ty;
    let (pl, e, acc) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(ty));
    let xv = x.load(add(mul(var(pl), i(plane as i64)), var(e)));
    let (init, step, result) = match pf {
        // Max propagates NaN, like NumPy's max over the axes.
        PoolFn::Max { .. } => (
            f(f64::NEG_INFINITY, ty),
            bin(BinOp::Max, var(acc), xv),
            var(acc),
        ),
        PoolFn::Average { .. } => (
            f(0.0, ty),
            add(var(acc), xv),
            bin(BinOp::Div, var(acc), f(plane as f64, ty)),
        ),
        PoolFn::Lp { p: pw } => {
            let (term, result) = lp_terms(xv, pw as f64, var(acc), ty);
            (f(0.0, ty), add(var(acc), term), result)
        }
    };
    nest(
        &[(pl, planes)],
        vec![
            Stmt::Set(acc, init),
            Stmt::for_loop(e, i(0), i(plane as i64), vec![Stmt::Set(acc, step)]),
            Stmt::Store {
                buf: y.buf,
                index: var(pl),
                value: result,
            },
        ],
    )
}

/// `MaxUnpool`: zeros, then every `x[e]` goes to the flat index `I[e]` of
/// the unpooled shape `inferred`, which sits at the start of every axis of
/// the (possibly larger) output. Out-of-range indices are skipped (the
/// interpreter reports them as an error).
fn max_unpool(
    p: &mut Program,
    x: &Operand,
    ix: &Operand,
    inferred: &[usize],
    y: &Operand,
) -> Vec<Stmt> {
    let (e, t) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let n_out = y.numel();
    let n_inf: usize = inferred.iter().product();
    let zero = match y.ty {
        Scalar::F32 | Scalar::F64 => f(0.0, y.ty),
        other => Expr::I(0, other),
    };
    let mut stmts = nest(
        &[(e, n_out)],
        vec![Stmt::Store {
            buf: y.buf,
            index: var(e),
            value: zero,
        }],
    );
    // The flat output index of the flat unpooled index `t`.
    let target = if inferred == y.shape.as_slice() {
        var(t)
    } else {
        let out_strides = strides_of(&y.shape);
        let mut rest = n_inf;
        let mut terms = Vec::new();
        for d in 0..inferred.len() {
            rest /= inferred[d].max(1);
            let coord = bin(
                BinOp::Rem,
                bin(BinOp::Div, var(t), i(rest.max(1) as i64)),
                i(inferred[d].max(1) as i64),
            );
            terms.push(mul(coord, i(out_strides[d] as i64)));
        }
        terms.into_iter().reduce(add).unwrap_or_else(|| i(0))
    };
    let in_range = bin(
        BinOp::And,
        cmp(CmpOp::Ge, var(t), i(0)),
        cmp(CmpOp::Lt, var(t), i(n_inf as i64)),
    );
    stmts.extend(nest(
        &[(e, x.numel())],
        vec![
            Stmt::Set(t, cast(Scalar::I64, ix.load(var(e)))),
            Stmt::If(
                in_range,
                vec![Stmt::Store {
                    buf: y.buf,
                    index: target,
                    value: x.load(var(e)),
                }],
                vec![],
            ),
        ],
    ));
    stmts
}
