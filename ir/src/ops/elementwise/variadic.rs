//! The variadic broadcasting ops `Min`, `Max`, `Sum` and `Mean`.

use super::{broadcast_map, infer_broadcast};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, req};
use crate::tensor::{Float, Int, Tensor};
use crate::{dispatch_float, dispatch_int};

/// A variadic broadcasting reduction over its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VariadicFn {
    Min,
    Max,
    Sum,
    Mean,
}

/// IEEE 754-2019 `maximum`: NaN propagates and −0 < +0 (what the generated
/// code's `Max` does; `f64::max` may return either zero).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        // Equal: the same value, or zeros of which +0 is the larger.
        if a.is_sign_negative() { b } else { a }
    } else {
        a.max(b)
    }
}

/// IEEE 754-2019 `minimum`: NaN propagates and −0 < +0.
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

/// Evaluates a variadic op.
pub(super) fn eval_variadic(f: VariadicFn, xs: &[&Tensor]) -> Result<Tensor> {
    let first = xs
        .first()
        .ok_or_else(|| Error::Shape("needs at least one input".into()))?;
    let mut acc = (*first).clone();
    for x in &xs[1..] {
        if x.dtype() != acc.dtype() {
            return Err(Error::Type(format!(
                "operands have different dtypes {} and {}",
                acc.dtype(),
                x.dtype()
            )));
        }
        acc = dispatch_float!(acc.data(), _v, T => broadcast_map::<T, T, T>(&acc, x, |a, b| {
            let (a, b) = (a.to_f(), b.to_f());
            Ok(T::from_f(match f {
                VariadicFn::Min => nan_min(a, b),
                VariadicFn::Max => nan_max(a, b),
                VariadicFn::Sum | VariadicFn::Mean => a + b,
            }))
        })?, else dispatch_int!(acc.data(), _v, T => broadcast_map::<T, T, T>(&acc, x, |a, b| Ok(match f {
            VariadicFn::Min => a.min(b),
            VariadicFn::Max => a.max(b),
            VariadicFn::Sum | VariadicFn::Mean => a.wadd(b),
        }))?, else return Err(Error::Type(format!("{f:?} on {}", acc.dtype())))));
    }
    if f == VariadicFn::Mean {
        let n = xs.len() as f64;
        acc = dispatch_float!(acc.data(), v, T => {
            Tensor::from_vec(acc.shape().to_vec(), v.iter().map(|&x| T::from_f(x.to_f() / n)).collect::<Vec<T>>())?
        }, else return Err(Error::Type(format!("Mean on {}", acc.dtype()))));
    }
    Ok(acc)
}

/// A variadic op's output type: the operands' shared dtype, broadcast.
pub(super) fn infer_variadic(
    f: VariadicFn,
    inputs: &[Option<InferInput<'_>>],
) -> Result<TensorType> {
    let tys: Vec<&TensorType> = (0..inputs.len())
        .map(|i| req(inputs, i, "data").map(|x| x.ty))
        .collect::<Result<_>>()?;
    let first = tys
        .first()
        .ok_or_else(|| Error::Shape("needs at least one input".into()))?;
    if let Some(t) = tys.iter().find(|t| t.dtype != first.dtype) {
        return Err(Error::Type(format!(
            "operands have different dtypes {} and {}",
            first.dtype, t.dtype
        )));
    }
    if first.dtype == DType::Bool || (f == VariadicFn::Mean && !first.dtype.is_float()) {
        return Err(Error::Type(format!(
            "{f:?} does not accept {}",
            first.dtype
        )));
    }
    Ok(TensorType::new(first.dtype, infer_broadcast(&tys)?))
}
