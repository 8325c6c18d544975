//! f32 2-D `Conv` with one group as im2col + the packed GEMM micro-kernel
//! of [`crate::schedule::gemm`]: the patches are copied into a column matrix
//! in the scratch area (padding as zeros), then multiplied.

use smelt_ir::ops::elementwise::Epilogue;

use super::ConvArgs;
use crate::kernel::build::{add, f, i, mul, var};
use crate::kernel::{Expr, MemCopy, Program, Scalar, Stmt};

/// The first output position along an axis whose tap `t` (kernel offset
/// `t · dil − pad`) reads inside `[0, size)`, and one past the last.
pub(super) fn valid_range(size: usize, out: usize, stride: usize, off: i64) -> (usize, usize) {
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
pub(super) fn zero_fill(
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
pub(super) fn fast_conv(
    p: &mut Program,
    c: &ConvArgs,
    (residual, act): (Option<crate::kernel::Buf>, Option<Epilogue>),
) -> Option<Vec<Stmt>> {
    let (g, group, x, w, b, y) = (&c.g, c.group, &c.x, &c.w, c.b.as_ref(), c.y);
    use crate::kernel::Buf;
    use crate::schedule::gemm;
    if group != 1 || !super::super::linalg::on_gemm("Conv", [x, w, y]) {
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
