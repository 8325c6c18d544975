//! Lowering of Shape, Size, ConstantOfShape and Range: outputs computed at compile time.

use smelt_ir::Tensor;

use super::super::{NodeResult, Operand, operand};
use super::{Node, const_tensor, copy_all, dtype_of, fill, lit};
use crate::kernel::build::i;
use crate::kernel::{Buf, Expr, Program, Stmt};

/// Lowers `Shape`.
pub(super) fn lower_shape(
    start: i64,
    end: Option<i64>,
    node: Node<'_>,
    _p: &mut Program,
) -> NodeResult {
    let Node { x, out, .. } = node;
    let rank = x.shape.len();
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    Ok((s..e.max(s))
        .enumerate()
        .map(|(k, d)| Stmt::Store {
            buf: out.buf,
            index: i(k as i64),
            value: i(x.shape[d] as i64),
        })
        .collect())
}

/// Lowers `ConstantOfShape`.
pub(super) fn lower_constant_of_shape(
    value: Option<&Tensor>,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { out, .. } = node;
    let v = match value {
        None => lit(0.0, out.ty),
        Some(t) if out.ty.is_float() => lit(t.to_f64_vec()[0], out.ty),
        Some(t) => Expr::I(t.to_i64_vec()[0], out.ty),
    };
    Ok(fill(p, out, v))
}

/// Lowers `Range`.
pub(super) fn lower_range(node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    // Inference needs all three operands, so the importer folds a
    // Range; compute the values here in case one is left.
    let start = const_tensor(&x, p)?;
    let delta = const_tensor(&operand(ins, 2, "delta")?, p)?;
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
