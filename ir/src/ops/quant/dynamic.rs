//! `DynamicQuantizeLinear`: quantizes `f32` data to `u8` with a scale and zero
//! point computed from its range, in `f32` like the reference.

use super::{Quant, saturate_round};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, req};
use crate::tensor::Tensor;
use crate::type_err;

/// Parses a `DynamicQuantizeLinear` node (it has no attributes).
pub(super) fn parse_dynamic_quantize_linear(_ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::DynamicQuantizeLinear)
}

/// The quantized data, its scale and its zero point.
pub(super) fn infer_dynamic_quantize_linear(
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = req(inputs, 0, "x")?.ty;
    if x.dtype != DType::F32 {
        type_err!("DynamicQuantizeLinear expects f32, got {}", x.dtype);
    }
    Ok(vec![
        TensorType::new(DType::U8, x.shape.clone()),
        TensorType::new(DType::F32, vec![]),
        TensorType::new(DType::U8, vec![]),
    ])
}

/// Evaluates `DynamicQuantizeLinear`.
pub(super) fn eval_dynamic_quantize(x: &Tensor) -> Result<Vec<Tensor>> {
    let xv = x.as_slice::<f32>()?;
    // The reference computes in f32 throughout; NaN propagates like np.max.
    let fold = |f: fn(f32, f32) -> f32| {
        xv.iter().copied().fold(0.0f32, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                f(a, b)
            }
        })
    };
    let maxx = fold(f32::max);
    let minx = fold(f32::min);
    let range = if maxx == minx { 1.0f32 } else { maxx - minx };
    let scale = range / 255.0f32;
    let initial_zp = 0.0f32 - minx / scale;
    let zp = if initial_zp.is_nan() {
        0.0
    } else {
        initial_zp.clamp(0.0, 255.0).round_ties_even()
    };
    let y: Vec<u8> = xv
        .iter()
        .map(|&v| saturate_round((v / scale) as f64, zp as f64, 0.0, 255.0) as u8)
        .collect();
    Ok(vec![
        Tensor::from_vec(x.shape().to_vec(), y)?,
        Tensor::scalar(scale),
        Tensor::scalar(zp as u8),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::Quant;
    use super::super::test_util::*;
    use crate::tensor::Tensor;

    #[test]
    fn dynamic_quantize_spec_example() {
        let x = t(&[6], &[0.0f32, 2., -3., -2.5, 1.34, 0.5]);
        let out = run(&Quant::DynamicQuantizeLinear, &[Some(&x)]).unwrap();
        assert_eq!(out[0], t(&[6], &[153u8, 255, 0, 26, 221, 179]));
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[5.0f32 / 255.0]);
        assert_eq!(out[2], Tensor::scalar(153u8));
    }
}
