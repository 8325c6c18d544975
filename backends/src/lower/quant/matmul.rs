//! `MatMulInteger` and `QLinearMatMul` on the general matmul loops: the
//! product subtracts the zero points (per tensor, per row of A or per column
//! of B) in `i32`, and `QLinearMatMul` requantizes each sum with its
//! scales, all broadcast over the output like the interpreter broadcasts
//! them.

use smelt_ir::ops::quant::qparam_shape;
use smelt_ir::shape::numel;

use super::super::linalg::{MatMulMath, general_matmul};
use super::super::{NodeResult, Operand, broadcast_index, input, operand};
use super::{QType, centered, f32_scale, multiplier};
use crate::kernel::build::mul;
use crate::kernel::{Expr, Program, Scalar};

/// A quantization parameter and the shape it broadcasts over the output
/// (rows `m` and columns `n` last, 1-D operands' unit dimensions kept).
struct Param {
    op: Operand,
    shape: Vec<usize>,
}

impl Param {
    /// The parameter's element for the output index `idx`.
    fn at(&self, idx: &[Expr]) -> Expr {
        self.op.load(broadcast_index(&self.shape, idx))
    }
}

/// Operand `k` of `ins` as a per-row (`per_row`) or per-column parameter of
/// `of`, named `what`. Only a per-tensor parameter of a 1-D operand has a
/// native kernel.
fn param(
    ins: &[Option<Operand>],
    k: usize,
    of: &Operand,
    per_row: bool,
    what: &str,
) -> Result<Option<Param>, String> {
    let Some(op) = input(ins, k) else {
        return Ok(None);
    };
    let shape = qparam_shape(&op.shape, &of.shape, per_row, what).map_err(|e| e.to_string())?;
    if of.shape.len() < 2 && !shape.is_empty() {
        return Err(format!("{what} of a 1-D operand has no native kernel"));
    }
    Ok(Some(Param { op, shape }))
}

/// The output's zero point and scale, per tensor or broadcast over an
/// output none of whose dimensions the 1-D operands dropped.
fn out_param(op: Operand, dropped: bool) -> Result<Param, String> {
    let per_tensor = numel(&op.shape).map_err(|e| e.to_string())? == 1 && op.shape.len() <= 1;
    if per_tensor {
        return Ok(Param { op, shape: vec![] });
    }
    if dropped {
        return Err("a non-scalar y_scale with a 1-D operand has no native kernel".into());
    }
    let shape = op.shape.clone();
    Ok(Param { op, shape })
}

/// `y = Σ (a − a_zero_point)·(b − b_zero_point)` in `i32`.
pub(super) fn matmul_integer(ins: &[Option<Operand>], y: &Operand, p: &mut Program) -> NodeResult {
    let (a, b) = (operand(ins, 0, "A")?, operand(ins, 1, "B")?);
    let za = param(ins, 2, &a, true, "a_zero_point")?;
    let zb = param(ins, 3, &b, false, "b_zero_point")?;
    if y.ty != Scalar::I32 {
        return Err(format!("a {:?} result has no native kernel", y.ty));
    }
    let product = |av: Expr, bv: Expr, idx: &[Expr]| {
        mul(
            centered(av, za.as_ref().map(|z| z.at(idx))),
            centered(bv, zb.as_ref().map(|z| z.at(idx))),
        )
    };
    let math = MatMulMath {
        acc: Scalar::I32,
        product: &product,
        store: &|acc, _| acc,
    };
    general_matmul(p, &a, &b, y, &math)
}

/// `y = saturate(round(Σ (a − za)·(b − zb) · sa·sb/sy) + zy)`.
pub(super) fn qlinear_matmul(ins: &[Option<Operand>], y: &Operand, p: &mut Program) -> NodeResult {
    let (a, b) = (operand(ins, 0, "a")?, operand(ins, 3, "b")?);
    let dropped = a.shape.len() < 2 || b.shape.len() < 2;
    let required = |k: usize, of: &Operand, per_row: bool, what: &str| {
        param(ins, k, of, per_row, what)?.ok_or(format!("no {what}"))
    };
    let sa = required(1, &a, true, "a_scale")?;
    let za = required(2, &a, true, "a_zero_point")?;
    let sb = required(4, &b, false, "b_scale")?;
    let zb = required(5, &b, false, "b_zero_point")?;
    let sy = out_param(operand(ins, 6, "y_scale")?, dropped)?;
    let zy = out_param(operand(ins, 7, "y_zero_point")?, dropped)?;
    for s in [&sa, &sb, &sy] {
        f32_scale(&s.op, "a scale")?;
    }
    let out = QType::of(y.ty)?;
    let product = |av: Expr, bv: Expr, idx: &[Expr]| {
        mul(
            centered(av, Some(za.at(idx))),
            centered(bv, Some(zb.at(idx))),
        )
    };
    let store = |acc: Expr, idx: &[Expr]| {
        let mult = multiplier(sa.at(idx), sb.at(idx), sy.at(idx));
        out.requantize(acc, mult, zy.at(idx))
    };
    let math = MatMulMath {
        acc: Scalar::I32,
        product: &product,
        store: &store,
    };
    general_matmul(p, &a, &b, y, &math)
}
