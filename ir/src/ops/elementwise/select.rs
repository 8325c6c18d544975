//! `Where`, `Clip` and `PRelu`: the element-wise ops with operands of
//! different roles.

use super::{broadcast_map, infer_broadcast};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, check_arity, opt, req};
use crate::shape::{broadcast_index_map, broadcast_shapes, numel};
use crate::tensor::{Elem, Float, Int, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};

/// `Where`'s output type.
pub(super) fn infer_where(inputs: &[Option<InferInput<'_>>]) -> Result<TensorType> {
    check_arity(inputs, 3, 3)?;
    let ty = |i: usize, what: &str| req(inputs, i, what).map(|x| x.ty);
    let (c, x, y) = (ty(0, "condition")?, ty(1, "X")?, ty(2, "Y")?);
    if c.dtype != DType::Bool {
        return Err(Error::Type(format!(
            "condition must be bool, got {}",
            c.dtype
        )));
    }
    if x.dtype != y.dtype {
        return Err(Error::Type(format!(
            "X is {} but Y is {}",
            x.dtype, y.dtype
        )));
    }
    Ok(TensorType::new(x.dtype, infer_broadcast(&[c, x, y])?))
}

/// Evaluates `Where`.
pub(super) fn eval_where(inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    let (c, x, y) = (
        req(inputs, 0, "condition")?,
        req(inputs, 1, "X")?,
        req(inputs, 2, "Y")?,
    );
    let shape = broadcast_shapes(&[c.shape(), x.shape(), y.shape()])?;
    let cv = c.as_slice::<bool>()?;
    let (ic, ix, iy) = (
        broadcast_index_map(c.shape(), &shape),
        broadcast_index_map(x.shape(), &shape),
        broadcast_index_map(y.shape(), &shape),
    );
    Ok(dispatch!(x.data(), xv, T => {
        let yv = y.as_slice::<T>()?;
        let out: Vec<T> = (0..ic.len()).map(|k| if cv[ic[k]] { xv[ix[k]] } else { yv[iy[k]] }).collect();
        Tensor::from_vec(shape, out)?
    }))
}

/// `Clip`'s output type: the input's, with scalar bounds of its dtype.
pub(super) fn infer_clip(inputs: &[Option<InferInput<'_>>]) -> Result<TensorType> {
    check_arity(inputs, 1, 3)?;
    let x = req(inputs, 0, "input")?.ty;
    if !(x.dtype.is_float() || x.dtype.is_int()) {
        return Err(Error::Type(format!("Clip does not accept {}", x.dtype)));
    }
    for i in 1..inputs.len() {
        if let Some(b) = opt(inputs, i)
            && (b.ty.dtype != x.dtype || numel(&b.ty.shape)? != 1)
        {
            {
                return Err(Error::Type(format!(
                    "bound {i} must be a {} scalar, got {}",
                    x.dtype, b.ty
                )));
            }
        }
    }
    Ok(x.clone())
}

/// Evaluates `Clip` with the bound operands, else the attribute bounds.
pub(super) fn eval_clip(
    x: &Tensor,
    lo: Option<&Tensor>,
    hi: Option<&Tensor>,
    alo: Option<f32>,
    ahi: Option<f32>,
) -> Result<Tensor> {
    let bound = |t: Option<&Tensor>, a: Option<f32>| -> Result<Option<f64>> {
        match (t, a) {
            (Some(t), _) => {
                if t.len() != 1 {
                    return Err(Error::Shape(format!(
                        "Clip bounds must be scalars, got shape {:?}",
                        t.shape()
                    )));
                }
                if t.dtype() != x.dtype() {
                    return Err(Error::Type(format!(
                        "Clip bound is {} but input is {}",
                        t.dtype(),
                        x.dtype()
                    )));
                }
                Ok(Some(t.to_f64_vec()[0]))
            }
            (None, a) => Ok(a.map(|v| v as f64)),
        }
    };
    let (lo, hi) = (bound(lo, alo)?, bound(hi, ahi)?);
    let data = dispatch_float!(x.data(), v, T => T::wrap(v.iter().map(|&e| {
        let mut y = e.to_f();
        if let Some(l) = lo && y < l { y = l }
        if let Some(h) = hi && y > h { y = h }
        T::from_f(y)
    }).collect()), else dispatch_int!(x.data(), v, T => {
        let (l, h) = (lo.map(T::from_f64), hi.map(T::from_f64));
        T::wrap(v.iter().map(|&e| {
            let mut y = e;
            if let Some(l) = l && y < l { y = l }
            if let Some(h) = h && y > h { y = h }
            y
        }).collect())
    }, else return Err(Error::Type(format!("Clip on {}", x.dtype())))));
    Tensor::new(x.shape().to_vec(), data)
}

/// `PRelu`'s output type: the input's, with a slope that broadcasts to it.
pub(super) fn infer_prelu(inputs: &[Option<InferInput<'_>>]) -> Result<TensorType> {
    check_arity(inputs, 2, 2)?;
    let (x, s) = (req(inputs, 0, "X")?.ty, req(inputs, 1, "slope")?.ty);
    if x.dtype != s.dtype || !(x.dtype.is_float() || x.dtype.is_int()) {
        return Err(Error::Type(format!(
            "PRelu on {} with slope {}",
            x.dtype, s.dtype
        )));
    }
    let shape = infer_broadcast(&[x, s])?;
    if shape != x.shape {
        return Err(Error::Shape(format!(
            "slope {:?} does not broadcast to X {:?}",
            s.shape, x.shape
        )));
    }
    Ok(x.clone())
}

/// Evaluates `PRelu`.
// `a < T::ZERO` is instantiated for unsigned types too, where it is always false.
#[allow(clippy::absurd_extreme_comparisons)]
pub(super) fn eval_prelu(inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    let (x, s) = (req(inputs, 0, "X")?, req(inputs, 1, "slope")?);
    let y = dispatch_float!(x.data(), _v, T => broadcast_map::<T, T, T>(x, s, |a, b| {
        Ok(if a.to_f() < 0.0 { T::from_f(a.to_f() * b.to_f()) } else { a })
    })?, else dispatch_int!(x.data(), _v, T => broadcast_map::<T, T, T>(x, s, |a, b| {
        Ok(if a < T::ZERO { a.wmul(b) } else { a })
    })?, else return Err(Error::Type(format!("PRelu on {}", x.dtype())))));
    Ok(y)
}
