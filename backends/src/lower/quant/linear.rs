//! `QuantizeLinear` and `DequantizeLinear`: one loop nest over `x` viewed as
//! `[outer, d, inner]`, each element reading the scale and zero point its
//! [`QLayout`] (per tensor, per axis or blocked) gives it.

use smelt_ir::DType;
use smelt_ir::ops::quant::{QAttrs, QLayout};

use super::super::{NodeResult, Operand, input, loop_nest, operand};
use super::{QType, f32_scale};
use crate::kernel::build::{add, bin, cast, i, mul, sub};
use crate::kernel::{BinOp, Expr, Program, Scalar, Stmt};

/// Loops over every element of `x` (of `numel` elements) laid out as
/// `layout` says; `body` gets the element's flat index and its parameter's.
fn param_loops(
    p: &mut Program,
    numel: usize,
    layout: QLayout,
    body: impl FnOnce(&mut Program, Expr, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    if numel == 0 {
        return vec![];
    }
    let (d, inner, block) = match layout {
        QLayout::PerTensor => {
            return loop_nest(p, &[numel], |p, idx| body(p, idx[0].clone(), i(0)));
        }
        QLayout::PerAxis { d, inner } => (d, inner, None),
        QLayout::Blocked { d, inner, bs, nb } => (d, inner, Some((bs, nb))),
    };
    let outer = numel / (d * inner);
    loop_nest(p, &[outer, d, inner], |p, idx| {
        let (o, di, r) = (idx[0].clone(), idx[1].clone(), idx[2].clone());
        let flat = add(
            mul(
                add(mul(o.clone(), i(d as i64)), di.clone()),
                i(inner as i64),
            ),
            r.clone(),
        );
        let param = match block {
            None => di,
            Some((bs, nb)) => add(
                mul(
                    add(mul(o, i(nb as i64)), bin(BinOp::Div, di, i(bs as i64))),
                    i(inner as i64),
                ),
                r,
            ),
        };
        body(p, flat, param)
    })
}

/// The operands `x`, scale and optional zero point, and their layout.
fn operands(
    a: &QAttrs,
    ins: &[Option<Operand>],
) -> Result<(Operand, Operand, Option<Operand>, QLayout), String> {
    let (x, s) = (operand(ins, 0, "x")?, operand(ins, 1, "scale")?);
    let zp = input(ins, 2);
    let layout = a
        .layout(&x.shape, &s.shape, zp.as_ref().map(|z| z.shape.as_slice()))
        .map_err(|e| e.to_string())?;
    Ok((x, s, zp, layout))
}

/// `y = saturate(round(x / scale) + zero_point)`, the division in the type
/// the interpreter divides in (f32 or f64).
pub(super) fn quantize(
    a: &QAttrs,
    ins: &[Option<Operand>],
    y: &Operand,
    p: &mut Program,
) -> NodeResult {
    let (x, s, zp, layout) = operands(a, ins)?;
    let dt = a.division_dtype(x.ty.dtype(), s.ty.dtype());
    if !matches!(dt, DType::F32 | DType::F64) {
        return Err(format!("a division in {dt} has no native kernel"));
    }
    // Both operands f32 and an f32 division: the f32 instruction. Otherwise
    // the interpreter divides the f64 values and rounds to `dt`.
    let in_f32 = dt == DType::F32 && x.ty == Scalar::F32 && s.ty == Scalar::F32;
    let qty = if in_f32 { Scalar::F32 } else { Scalar::F64 };
    let out = QType::of(y.ty)?;
    Ok(param_loops(p, x.numel(), layout, |_, k, pk| {
        let (xv, sv) = (x.load(k.clone()), s.load(pk.clone()));
        let quotient = if in_f32 {
            bin(BinOp::Div, xv, sv)
        } else {
            let d = bin(BinOp::Div, cast(Scalar::F64, xv), cast(Scalar::F64, sv));
            if dt == DType::F32 {
                cast(Scalar::F64, cast(Scalar::F32, d))
            } else {
                d
            }
        };
        let z = match &zp {
            Some(z) => z.load(pk),
            None => Expr::I(0, Scalar::I64),
        };
        vec![Stmt::Store {
            buf: y.buf,
            index: k,
            value: out.saturate_round(quotient, qty, z),
        }]
    }))
}

/// `y = (x - zero_point) · scale` in f32, or in f64 for an `i32` `x` with a
/// zero point (the interpreter's NumPy promotion), rounded to f32.
pub(super) fn dequantize(
    a: &QAttrs,
    ins: &[Option<Operand>],
    y: &Operand,
    p: &mut Program,
) -> NodeResult {
    let (x, s, zp, layout) = operands(a, ins)?;
    f32_scale(&s, "x_scale")?;
    if y.ty != Scalar::F32 {
        return Err(format!("a {:?} result has no native kernel", y.ty));
    }
    let wide = x.ty == Scalar::I32 && zp.is_some();
    Ok(param_loops(p, x.numel(), layout, |_, k, pk| {
        let xf = cast(Scalar::F32, x.load(k.clone()));
        let sv = s.load(pk.clone());
        let value = match &zp {
            Some(z) if wide => cast(
                Scalar::F32,
                mul(
                    sub(cast(Scalar::F64, xf), cast(Scalar::F64, z.load(pk))),
                    cast(Scalar::F64, sv),
                ),
            ),
            Some(z) => mul(sub(xf, cast(Scalar::F32, z.load(pk))), sv),
            None => mul(xf, sv),
        };
        vec![Stmt::Store {
            buf: y.buf,
            index: k,
            value,
        }]
    }))
}
