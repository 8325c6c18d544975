//! `MaxUnpool`: scatters pooled values back to the positions their indices
//! name, in the shape the inverse of the max pool gives (or `output_shape`).

use super::{ConvOp, check_float};
use crate::dispatch_float;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, fmt_list, opt, req};
use crate::shape::{Shape, for_each_index, numel, strides};
use crate::tensor::{Elem, Tensor};
use crate::window::{unpool_shape, usizes};

/// Parses a `MaxUnpool` node.
pub(super) fn parse_max_unpool(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    let a = ctx.attrs;
    Ok(ConvOp::MaxUnpool {
        kernel_shape: usizes(a, "kernel_shape", 1)?
            .ok_or_else(|| Error::attr("kernel_shape", "is required"))?,
        strides: usizes(a, "strides", 1)?.unwrap_or_default(),
        pads: usizes(a, "pads", 0)?.unwrap_or_default(),
    })
}

/// The printed attributes of `MaxUnpool`.
pub(super) fn max_unpool_attrs(
    kernel_shape: &[usize],
    strides: &[usize],
    pads: &[usize],
    v: &mut Vec<(&'static str, String)>,
) {
    v.push(("kernel_shape", fmt_list(kernel_shape)));
    if !strides.is_empty() {
        v.push(("strides", fmt_list(strides)));
    }
    if !pads.is_empty() {
        v.push(("pads", fmt_list(pads)));
    }
}

/// `MaxUnpool`'s output type; `output_shape` must be a constant.
pub(super) fn infer_max_unpool(
    kernel_shape: &[usize],
    strides: &[usize],
    pads: &[usize],
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 3)?;
    let (x, i) = (req(inputs, 0, "X")?.ty, req(inputs, 1, "I")?.ty);
    check_float(x.dtype, "X")?;
    if i.dtype != DType::I64 || i.shape != x.shape {
        return Err(Error::Type(format!(
            "I must be an i64 tensor of X's shape {:?}, got {i}",
            x.shape
        )));
    }
    let want = match opt(inputs, 2) {
        Some(_) => Some(const_input(inputs, 2, "output_shape")?.to_i64_vec()),
        None => None,
    };
    let (_, shape) = unpool_shape(kernel_shape, strides, pads, &x.shape, want.as_deref())?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Evaluates `MaxUnpool`.
pub(super) fn eval_max_unpool(
    kernel_shape: &[usize],
    strides: &[usize],
    pads: &[usize],
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let (x, i) = (req(inputs, 0, "X")?, req(inputs, 1, "I")?);
    if i.shape() != x.shape() {
        return Err(Error::Shape(format!(
            "I has shape {:?} but X has {:?}",
            i.shape(),
            x.shape()
        )));
    }
    let want = opt(inputs, 2).map(|t| t.to_i64_vec());
    let (inferred, shape) = unpool_shape(kernel_shape, strides, pads, x.shape(), want.as_deref())?;
    let idx = i.as_slice::<i64>()?;
    Ok(vec![
        dispatch_float!(x.data(), v, T => max_unpool::<T>(v, idx, &inferred, shape)?,
        else return Err(Error::Type(format!("MaxUnpool on {}", x.dtype())))),
    ])
}

fn max_unpool<T: Elem>(
    x: &[T],
    idx: &[i64],
    inferred: &[usize],
    out_shape: Shape,
) -> Result<Tensor> {
    let n_inf = numel(inferred)?;
    let mut y = vec![T::default(); n_inf];
    for (&v, &i) in x.iter().zip(idx) {
        let slot = usize::try_from(i)
            .ok()
            .filter(|&i| i < n_inf)
            .ok_or_else(|| {
                Error::Eval(format!(
                    "MaxUnpool index {i} is out of range for the unpooled shape {inferred:?}"
                ))
            })?;
        y[slot] = v;
    }
    if inferred == out_shape.as_slice() {
        return Tensor::from_vec(out_shape, y);
    }
    // Place the inferred block at the start of every axis of the larger output.
    let mut out = vec![T::default(); numel(&out_shape)?];
    let os = strides(&out_shape);
    let mut k = 0;
    for_each_index(inferred, |ii| {
        let flat: usize = ii.iter().zip(&os).map(|(i, s)| i * s).sum();
        out[flat] = y[k];
        k += 1;
    });
    Tensor::from_vec(out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::error::Error;
    use crate::ops::OpDef;
    use crate::tensor::Tensor;

    #[test]
    fn max_unpool_places_values() {
        let x = t(&[1, 1, 2, 2], &[5., 6., 7., 8.]);
        let i = Tensor::from_vec(vec![1, 1, 2, 2], vec![5i64, 7, 13, 15]).unwrap();
        let op = parse(
            "MaxUnpool",
            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
            1,
        );
        let y = run(&op, &[&x, &i]).remove(0);
        #[rustfmt::skip]
        close(&y, &[0., 0., 0., 0., 0., 5., 0., 6., 0., 0., 0., 0., 0., 7., 0., 8.]);
        let bad = Tensor::from_vec(vec![1, 1, 2, 2], vec![5i64, 7, 13, 16]).unwrap();
        assert!(matches!(
            op.eval(&[Some(&x), Some(&bad)]),
            Err(Error::Eval(_))
        ));
    }
}
