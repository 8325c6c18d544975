//! Depthwise f32 2-D `Conv`: each channel is copied into a zero-bordered
//! plane, so the tap loops read it without a bounds test.

use super::super::elementwise::Epi;
use super::ConvArgs;
use crate::kernel::build::{add, bin, f, i, mul, var};
use crate::kernel::{BinOp, MemCopy, Program, Scalar, Stmt};

/// A 2-D f32 depthwise convolution (one input and one output channel per
/// group): each channel is copied into a zero-bordered plane in the scratch
/// area, then every output row is `b[c] + Σ_taps w[c, tap] · plane[…]` with
/// the taps unrolled, a unit-stride loop that [`crate::schedule::vectorize`]
/// turns into vector code when the stride is 1. The epilogue (residual,
/// activation) is applied to each sum before it is stored, in the same loop
/// (`None` when the kernel does not apply; `Some(Err)` when the epilogue
/// cannot be built).
pub(super) fn depthwise(
    p: &mut Program,
    c: &ConvArgs,
    epi: &Epi,
) -> Option<Result<Vec<Stmt>, String>> {
    let (g, group, x, w, b, y) = (&c.g, c.group, &c.x, &c.w, c.b.as_ref(), c.y);
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
