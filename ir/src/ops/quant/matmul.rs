//! The integer matrix products: `MatMulInteger` (zero points, `i32` result)
//! and `QLinearMatMul` (scales and zero points, requantized result). Both run
//! on the wrapping `i32` kernel of [`linalg`](crate::ops::linalg); their
//! quantization parameters are per tensor, per row of `a` or per column of `b`.

use super::{
    Quant, check_zero_point, int8_dtype, named_types, operand_types, operands, requantize,
    with_types,
};
use crate::dtype::{DType, rounder};
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::linalg::{MatmulDims, batched_matmul};
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::shape::{Shape, broadcast_index_map, broadcast_shapes, numel};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// Parses a `MatMulInteger` node (it has no attributes).
pub(super) fn parse_matmul_integer(_ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::MatMulInteger)
}

/// Parses a `QLinearMatMul` node (it has no attributes).
pub(super) fn parse_qlinear_matmul(_ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::QLinearMatMul)
}

/// The shape a per-row (`a`) or per-column (`b`) quantization parameter takes
/// when broadcast against its operand; `[]` for per-tensor. `what` names the
/// parameter in the error.
pub fn qparam_shape(p: &[usize], operand: &[usize], per_row: bool, what: &str) -> Result<Shape> {
    if numel(p)? == 1 && p.len() <= 1 {
        return Ok(vec![]);
    }
    let r = operand.len();
    if p.len() == 1 && r >= 2 {
        let (want, shape) = if per_row {
            (operand[r - 2], vec![p[0], 1])
        } else {
            (operand[r - 1], vec![p[0]])
        };
        if p[0] != want {
            shape_err!(
                "{what} {p:?} must have {want} elements (one per {}) for operand {operand:?}",
                if per_row { "row" } else { "column" }
            );
        }
        return Ok(shape);
    }
    // N-D: [.., M, 1] per row or [.., 1, N] per column.
    let contracted = if per_row {
        p.last().copied()
    } else {
        p.len().checked_sub(2).map(|i| p[i])
    };
    let ok = p.len() <= r
        && contracted.is_none_or(|d| d == 1)
        && broadcast_shapes(&[p, operand])
            .map(|s| s == operand)
            .unwrap_or(false);
    if !ok {
        shape_err!(
            "{what} {p:?} is not a per-tensor or per-{} parameter of operand {operand:?}",
            if per_row { "row" } else { "column" }
        );
    }
    Ok(p.to_vec())
}

/// `t - zero_point` as `i32`, with the zero point broadcast per row/column.
fn sub_zero_point(t: &Tensor, zp: Option<&Tensor>, per_row: bool, what: &str) -> Result<Vec<i32>> {
    let v: Vec<i32> = t.to_i64_vec().into_iter().map(|x| x as i32).collect();
    let Some(zp) = zp else { return Ok(v) };
    if zp.dtype() != t.dtype() {
        type_err!("{what} is {} but its operand is {}", zp.dtype(), t.dtype());
    }
    let shape = qparam_shape(zp.shape(), t.shape(), per_row, what)?;
    let zv = zp.to_i64_vec();
    let map = broadcast_index_map(&shape, t.shape());
    Ok(v.iter()
        .zip(&map)
        .map(|(&x, &i)| x.wrapping_sub(zv[i] as i32))
        .collect())
}

/// Resolved operand shapes of `MatMulInteger`.
fn matmul_integer_types(ins: &[Option<&TensorType>]) -> Result<MatmulDims> {
    check_arity(ins, 2, 4)?;
    let (a, b) = (req(ins, 0, "A")?, req(ins, 1, "B")?);
    int8_dtype(a.dtype, "A")?;
    int8_dtype(b.dtype, "B")?;
    let d = MatmulDims::new(&a.shape, &b.shape)?;
    if let Some(z) = check_zero_point(opt(ins, 2), a, "a_zero_point", "A")? {
        qparam_shape(&z.shape, &a.shape, true, "a_zero_point")?;
    }
    if let Some(z) = check_zero_point(opt(ins, 3), b, "b_zero_point", "B")? {
        qparam_shape(&z.shape, &b.shape, false, "b_zero_point")?;
    }
    Ok(d)
}

/// Checked shapes of `QLinearMatMul`: the matmul dims and, for the scales and
/// zero points of `a`, `b` and `y`, their shapes as broadcast to the output.
struct QMatMulPlan {
    dims: MatmulDims,
    a_param: Shape,
    b_param: Shape,
    y_param: Shape,
}

fn qlinear_matmul_plan(ins: &[Option<&TensorType>]) -> Result<QMatMulPlan> {
    check_arity(ins, 8, 8)?;
    let names = [
        "a",
        "a_scale",
        "a_zero_point",
        "b",
        "b_scale",
        "b_zero_point",
        "y_scale",
        "y_zero_point",
    ];
    let t = named_types(ins, &names)?;
    let (a, b) = (t[0], t[3]);
    int8_dtype(a.dtype, "a")?;
    int8_dtype(b.dtype, "b")?;
    int8_dtype(t[7].dtype, "y_zero_point")?;
    let sd = t[1].dtype;
    if !matches!(sd, DType::F32 | DType::F16 | DType::BF16) || t[4].dtype != sd || t[6].dtype != sd
    {
        type_err!(
            "the scales must share one float type, got {}, {} and {}",
            sd,
            t[4].dtype,
            t[6].dtype
        );
    }
    if t[2].dtype != a.dtype || t[5].dtype != b.dtype {
        type_err!("zero points must have their operand's type");
    }
    let dims = MatmulDims::new(&a.shape, &b.shape)?;
    // The shape of operand `at`'s scale (`at + 1`), which its zero point
    // (`at + 2`) must share.
    let param = |at: usize, per_row: bool| -> Result<Shape> {
        let (x, s, z) = (&t[at].shape, &t[at + 1].shape, &t[at + 2].shape);
        let shape = qparam_shape(s, x, per_row, names[at + 1])?;
        if qparam_shape(z, x, per_row, names[at + 2])? != shape {
            shape_err!(
                "{} {s:?} and {} {z:?} differ in shape",
                names[at + 1],
                names[at + 2]
            );
        }
        Ok(shape)
    };
    let a_param = param(0, true)?;
    let b_param = param(3, false)?;
    let y_param = if numel(&t[6].shape)? == 1 && t[6].shape.len() <= 1 {
        vec![]
    } else {
        t[6].shape.clone()
    };
    if t[7].shape != t[6].shape {
        shape_err!(
            "y_scale {:?} and y_zero_point {:?} differ in shape",
            t[6].shape,
            t[7].shape
        );
    }
    for (p, what) in [
        (&a_param, "a_scale"),
        (&b_param, "b_scale"),
        (&y_param, "y_scale"),
    ] {
        let fits = p.len() <= dims.out.len()
            && broadcast_shapes(&[p, &dims.out])
                .map(|s| s == dims.out)
                .unwrap_or(false);
        if !fits {
            shape_err!(
                "{what} {p:?} does not broadcast to the output {:?}",
                dims.out
            );
        }
    }
    Ok(QMatMulPlan {
        dims,
        a_param,
        b_param,
        y_param,
    })
}

/// `MatMulInteger`'s output type.
pub(super) fn infer_matmul_integer(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    let dims = matmul_integer_types(&operand_types(inputs))?;
    Ok(vec![TensorType::new(DType::I32, dims.out)])
}

/// `QLinearMatMul`'s output type.
pub(super) fn infer_qlinear_matmul(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    let tys = operand_types(inputs);
    let p = qlinear_matmul_plan(&tys)?;
    Ok(vec![TensorType::new(
        req(&tys, 7, "y_zero_point")?.dtype,
        p.dims.out,
    )])
}

/// Evaluates `MatMulInteger`.
pub(super) fn eval_matmul_integer(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let d = with_types(inputs, matmul_integer_types)?;
    let (a, b) = (req(inputs, 0, "A")?, req(inputs, 1, "B")?);
    let av = sub_zero_point(a, opt(inputs, 2), true, "a_zero_point")?;
    let bv = sub_zero_point(b, opt(inputs, 3), false, "b_zero_point")?;
    Ok(vec![Tensor::from_vec(
        d.out.clone(),
        batched_matmul(&av, &bv, &d),
    )?])
}

/// Evaluates `QLinearMatMul`.
pub(super) fn eval_qlinear_matmul(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let plan = with_types(inputs, qlinear_matmul_plan)?;
    let t = operands(inputs, 8)?;
    let av = sub_zero_point(t[0], Some(t[2]), true, "a_zero_point")?;
    let bv = sub_zero_point(t[3], Some(t[5]), false, "b_zero_point")?;
    let acc = batched_matmul(&av, &bv, &plan.dims);
    let out = &plan.dims.out;
    let (ia, ib, iy) = (
        broadcast_index_map(&plan.a_param, out),
        broadcast_index_map(&plan.b_param, out),
        broadcast_index_map(&plan.y_param, out),
    );
    let (sa, sb, sy, zy) = (
        t[1].to_f64_vec(),
        t[4].to_f64_vec(),
        t[6].to_f64_vec(),
        t[7].to_f64_vec(),
    );
    let rs = rounder(t[1].dtype());
    let y = requantize(
        &acc,
        |i| rs(rs(sa[ia[i]] * sb[ib[i]]) / sy[iy[i]]),
        |i| zy[iy[i]],
        t[7].dtype(),
    )?;
    Ok(vec![Tensor::from_vec(out.clone(), y)?.cast(t[7].dtype())])
}

#[cfg(test)]
mod tests {
    use super::super::Quant;
    use super::super::test_util::*;

    #[test]
    fn matmul_integer_with_row_and_column_zero_points() {
        let a = t(&[2, 2], &[11u8, 12, 13, 14]);
        let b = t(&[2, 2], &[1u8, 2, 3, 4]);
        let (za, zb) = (t(&[2], &[10u8, 12]), t(&[2], &[1u8, 2]));
        let y = run(
            &Quant::MatMulInteger,
            &[Some(&a), Some(&b), Some(&za), Some(&zb)],
        )
        .unwrap()
        .remove(0);
        // [[1,2],[1,2]] x [[0,0],[2,2]]
        assert_eq!(y, t(&[2, 2], &[4i32, 4, 4, 4]));
        assert!(
            run(
                &Quant::MatMulInteger,
                &[Some(&a), Some(&b), Some(&t(&[3], &[0u8; 3]))]
            )
            .is_err()
        );
    }

    #[test]
    fn qlinear_matmul_requantizes() {
        let a = t(&[1, 2], &[2u8, 4]);
        let b = t(&[2, 1], &[3u8, 5]);
        let one = t(&[], &[1.0f32]);
        let (z0, z1) = (t(&[], &[0u8]), t(&[], &[1u8]));
        let ys = t(&[], &[4.0f32]);
        let ins = [
            Some(&a),
            Some(&one),
            Some(&z0),
            Some(&b),
            Some(&one),
            Some(&z1),
            Some(&ys),
            Some(&z1),
        ];
        // (2*2 + 4*4) / 4 + 1 = 6
        assert_eq!(
            run(&Quant::QLinearMatMul, &ins).unwrap().remove(0),
            t(&[1, 1], &[6u8])
        );
    }
}
