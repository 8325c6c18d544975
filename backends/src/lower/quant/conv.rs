//! `ConvInteger` and `QLinearConv` on the direct convolution schedule of
//! [`super::super::conv`]: each tap adds `(x − x_zero_point)·(w −
//! w_zero_point[m])` in `i32` (taps in the padding add nothing, which is
//! padding with the zero point); `QLinearConv` adds its `i32` bias and
//! requantizes each sum with the scales of its output channel.

use smelt_ir::ops::quant::{ConvAttrs, QLINEAR_CONV_OPERANDS};

use super::super::conv::{DirectMath, lower_direct};
use super::super::{NodeResult, Operand, input, operand};
use super::{QType, centered, f32_scale, multiplier};
use crate::kernel::build::{i, mul};
use crate::kernel::{Expr, Program, Scalar};

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
