//! `ConvInteger` and `QLinearConv` on the direct convolution schedule of
//! [`super::super::conv`]: each tap adds `(x − x_zero_point)·(w −
//! w_zero_point[m])` in `i32` (taps in the padding add nothing, which is
//! padding with the zero point); `QLinearConv` adds its `i32` bias and
//! requantizes each sum with the scales of its output channel.

use smelt_ir::ops::quant::{ConvAttrs, QLINEAR_CONV_OPERANDS};
use smelt_ir::window::Geom;

use super::super::conv::{DirectMath, lower_direct};
use super::super::{NodeResult, Operand, input, operand};
use super::gemm::{self, IntGemm, StoreFn, Tile};
use super::{QType, centered, f32_scale, multiplier, pack};
use crate::kernel::build::{add, bin, cast, cmp, i, mul, sub, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt};

/// A 2-D convolution with one group as the packed integer GEMM
/// ([`super::gemm`]): `Y[b, n, pix] = store(Σ_k A[(b, pix), k] · W[n, k])`
/// with `k = (c, kh, kw)`; each block of output positions copies its
/// patches (im2col, the padding as the activation's zero point) into the
/// scratch area. `None` when the node does not fit it (not 2-D, groups,
/// a weight that is not constant, a per-channel activation zero point).
fn packed(
    c: &ConvAttrs,
    (x, w, y): (&Operand, &Operand, &Operand),
    (zx, zw): (Option<&Operand>, Option<&Operand>),
    p: &mut Program,
    store: &StoreFn<'_>,
) -> Option<NodeResult> {
    let (&[nb, ch, h, wd], &[m, wc, kh, kw]) = (&x.shape[..], &w.shape[..]) else {
        return None;
    };
    let g: Geom = c
        .window()
        .resolve(&x.shape[2..], &w.shape[2..], false)
        .ok()?;
    let bytes = gemm::const_bytes(p, w.buf)?;
    let k = ch * kh * kw;
    let (oh, ow) = (*g.out.first()?, *g.out.get(1)?);
    let fits = c.group == 1
        && wc == ch
        && gemm::is_8bit(x.ty)
        && gemm::is_8bit(w.ty)
        && y.shape == [nb, m, oh, ow]
        && k > 0
        && m > 0
        && nb * oh * ow > 0
        && zx.is_none_or(|z| z.numel() == 1)
        && zw.is_none_or(|z| z.numel() == 1 || z.numel() == m)
        && bytes.len() == m * k;
    if !fits {
        return None;
    }
    let tile = Tile::of(p.shape);
    let unsigned = w.ty == Scalar::U8;
    let packed = pack::pack(k, m, tile.nr(), unsigned, |kk, nn| bytes[nn * k + kk]);
    let (panels, col_sums) = gemm::push_packed(p, packed);
    let za = gemm::a_zero(x.ty, zx.map(|z| z.load(i(0))));
    let pad = cast(Scalar::U8, za.clone());
    let row = |p: &mut Program, r: Expr, buf: Buf, at: Expr| {
        im2col_row(
            p,
            (x, &g, [ch, h, wd, kh, kw]),
            (oh, ow),
            r,
            (buf, at),
            &pad,
        )
    };
    let zb_of = |n: Expr| {
        gemm::b_zero(w.ty, zw.map(|z| per_channel(z, &n))).unwrap_or(Expr::I(0, Scalar::I32))
    };
    let has_zb = zw.is_some() || unsigned;
    let gm = IntGemm {
        m: nb * oh * ow,
        k,
        n: m,
        tile,
        panels,
        col_sums,
        row: &row,
        za,
        zb: if has_zb { Some(&zb_of) } else { None },
        store,
    };
    Some(gemm::lower(p, &gm))
}

/// Copies the patch of output position `r` (`(b, oh, ow)` flattened) into
/// `buf` from byte `at`: `A'` of tap `(c, kh, kw)` at byte `(c · KH + kh) ·
/// KW + kw`, the pad byte where the tap falls in the padding.
fn im2col_row(
    p: &mut Program,
    (x, g, [ch, h, wd, kh, kw]): (&Operand, &Geom, [usize; 5]),
    (oh, ow): (usize, usize),
    r: Expr,
    (buf, at): (Buf, Expr),
    pad: &Expr,
) -> Vec<Stmt> {
    let [cv, hv, wv] = [0; 3].map(|_| p.var(Scalar::I64));
    let (ih_v, iw_v) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let pix = (oh * ow) as i64;
    let b = bin(BinOp::Div, r.clone(), i(pix));
    let rem = bin(BinOp::Rem, r, i(pix));
    let (y0, x0) = (
        bin(BinOp::Div, rem.clone(), i(ow as i64)),
        bin(BinOp::Rem, rem, i(ow as i64)),
    );
    let ih = sub(
        add(
            mul(y0, i(g.strides[0] as i64)),
            mul(var(hv), i(g.dilations[0] as i64)),
        ),
        i(g.pad_begin[0]),
    );
    let iw = sub(
        add(
            mul(x0, i(g.strides[1] as i64)),
            mul(var(wv), i(g.dilations[1] as i64)),
        ),
        i(g.pad_begin[1]),
    );
    let inside = |v: Expr, n: usize| {
        cmp(
            CmpOp::Lt,
            cast(Scalar::U64, v),
            Expr::I(n as i64, Scalar::U64),
        )
    };
    let kidx = add(
        mul(add(mul(var(cv), i(kh as i64)), var(hv)), i(kw as i64)),
        var(wv),
    );
    let dst = add(at, kidx);
    let src = add(
        mul(
            add(
                mul(add(mul(b, i(ch as i64)), var(cv)), i(h as i64)),
                var(ih_v),
            ),
            i(wd as i64),
        ),
        var(iw_v),
    );
    let put = |v: Expr| Stmt::Store {
        buf,
        index: dst.clone(),
        value: v,
    };
    let tap = vec![
        Stmt::Set(iw_v, iw),
        Stmt::If(
            inside(var(iw_v), wd),
            vec![put(gemm::a_byte(x.ty, x.load(src)))],
            vec![put(pad.clone())],
        ),
    ];
    let row = vec![
        Stmt::Set(ih_v, ih),
        Stmt::If(
            inside(var(ih_v), h),
            vec![Stmt::for_loop(wv, i(0), i(kw as i64), tap)],
            vec![Stmt::for_loop(
                wv,
                i(0),
                i(kw as i64),
                vec![put(pad.clone())],
            )],
        ),
    ];
    vec![Stmt::for_loop(
        cv,
        i(0),
        i(ch as i64),
        vec![Stmt::for_loop(hv, i(0), i(kh as i64), row)],
    )]
}

/// The flat index of `Y[b, n, pix]` for GEMM row `r = (b, pix)` of a
/// convolution with `m` output channels and `pix` positions per image.
fn y_index(r: Expr, n: Expr, m: usize, pix: usize) -> Expr {
    let b = bin(BinOp::Div, r.clone(), i(pix as i64));
    add(
        mul(add(mul(b, i(m as i64)), n), i(pix as i64)),
        bin(BinOp::Rem, r, i(pix as i64)),
    )
}

/// A per-tensor or per-output-channel parameter's element for channel `m`.
fn per_channel(op: &Operand, m: &Expr) -> Expr {
    if op.numel() == 1 {
        op.load(i(0))
    } else {
        op.load(m.clone())
    }
}

/// `y = Σ (x − x_zero_point)·(w − w_zero_point)` in `i32`.
pub(super) fn conv_integer(
    c: &ConvAttrs,
    ins: &[Option<Operand>],
    y: &Operand,
    p: &mut Program,
) -> NodeResult {
    let (x, w) = (operand(ins, 0, "x")?, operand(ins, 1, "w")?);
    let (zx, zw) = (input(ins, 2), input(ins, 3));
    if y.ty != Scalar::I32 {
        return Err(format!("a {:?} result has no native kernel", y.ty));
    }
    let (mo, pix) = (
        w.shape.first().copied().unwrap_or(1),
        y.shape.iter().skip(2).product(),
    );
    let store = |_: &mut Program, r: Expr, n: Expr, acc: Expr| {
        Ok(vec![Stmt::Store {
            buf: y.buf,
            index: y_index(r, n, mo, pix),
            value: acc,
        }])
    };
    if let Some(r) = packed(c, (&x, &w, y), (zx.as_ref(), zw.as_ref()), p, &store) {
        return r;
    }
    let product = |xv: Expr, wv: Expr, m: &Expr| {
        mul(
            centered(xv, zx.as_ref().map(|z| z.load(i(0)))),
            centered(wv, zw.as_ref().map(|z| per_channel(z, m))),
        )
    };
    let math = DirectMath {
        acc: Scalar::I32,
        product: &product,
        init: &|_| Expr::I(0, Scalar::I32),
        store: &|_, acc, _, _, _| Ok(acc),
    };
    lower_direct(&c.window(), c.group, x, w, y, p, &math)
}

/// `y = saturate(round((B[m] + Σ (x − zx)·(w − zw[m])) · sx·sw[m]/sy) + zy)`.
pub(super) fn qlinear_conv(
    c: &ConvAttrs,
    ins: &[Option<Operand>],
    y: &Operand,
    p: &mut Program,
) -> NodeResult {
    let names = QLINEAR_CONV_OPERANDS;
    let t = names
        .iter()
        .enumerate()
        .map(|(k, n)| operand(ins, k, n))
        .collect::<Result<Vec<_>, _>>()?;
    let bias = input(ins, 8);
    for k in [1, 4, 6] {
        f32_scale(&t[k], names[k])?;
    }
    let out = QType::of(y.ty)?;
    let (zx, zw) = (&t[2], &t[5]);
    let (mo, pix) = (
        t[3].shape.first().copied().unwrap_or(1),
        y.shape.iter().skip(2).product(),
    );
    let per_tensor = [1, 6, 7].iter().all(|&k| t[k].numel() == 1);
    if per_tensor && (t[4].numel() == 1 || t[4].numel() == mo) {
        let store = |_: &mut Program, r: Expr, n: Expr, acc: Expr| {
            let acc = match &bias {
                Some(b) => add(acc, b.load(n.clone())),
                None => acc,
            };
            let mult = multiplier(t[1].load(i(0)), per_channel(&t[4], &n), t[6].load(i(0)));
            Ok(vec![Stmt::Store {
                buf: y.buf,
                index: y_index(r, n, mo, pix),
                value: out.requantize(acc, mult, t[7].load(i(0))),
            }])
        };
        let ops = (&t[0], &t[3], y);
        if let Some(r) = packed(c, ops, (Some(zx), Some(zw)), p, &store) {
            return r;
        }
    }
    let product = |xv: Expr, wv: Expr, m: &Expr| {
        mul(
            centered(xv, Some(zx.load(i(0)))),
            centered(wv, Some(per_channel(zw, m))),
        )
    };
    let init = |m: &Expr| match &bias {
        Some(b) => b.load(m.clone()),
        None => Expr::I(0, Scalar::I32),
    };
    let store = |_: &mut Program, acc: Expr, m: &Expr, _: Expr, _: &mut Vec<_>| {
        let mult = multiplier(t[1].load(i(0)), per_channel(&t[4], m), t[6].load(i(0)));
        Ok(out.requantize(acc, mult, t[7].load(i(0))))
    };
    let math = DirectMath {
        acc: Scalar::I32,
        product: &product,
        init: &init,
        store: &store,
    };
    lower_direct(
        &c.window(),
        c.group,
        t[0].clone(),
        t[3].clone(),
        y,
        p,
        &math,
    )
}
