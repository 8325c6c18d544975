//! Dropout at inference: the identity, with an all-true mask.

use super::{Layout, ty};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, opt};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch_dtype, type_err};

/// Parses a `Dropout` node.
pub(super) fn parse_dropout(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let v = ctx.opset;
    if ctx.num_outputs == 0 || ctx.num_outputs > 2 {
        return Err(Error::Shape(format!(
            "Dropout has 1 or 2 outputs, the node lists {}",
            ctx.num_outputs
        )));
    }
    Ok(Layout::Dropout {
        outputs: ctx.num_outputs,
        mask_like_input: v < 10,
    })
}

/// The shape rule of `Dropout`.
pub(super) fn infer_dropout(
    outputs: usize,
    mask_like_input: bool,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 3)?;
    let x = ty(inputs, 0, "data")?;
    if !x.dtype.is_float() {
        type_err!("Dropout does not accept {}", x.dtype);
    }
    if let Some(r) = opt(inputs, 1)
        && !r.ty.dtype.is_float()
    {
        type_err!("ratio must be float, got {}", r.ty.dtype);
    }
    if opt(inputs, 2).is_some() {
        let t = const_input(inputs, 2, "training_mode")?;
        let training = t.as_slice::<bool>()?.first().copied().unwrap_or(false);
        // Training mode drops at random, except with ratio 0: then
        // the ratio must be known to tell.
        let zero_ratio = training
            && opt(inputs, 1).is_some()
            && const_input(inputs, 1, "ratio")?.to_f64_vec() == [0.0];
        if training && !zero_ratio {
            return Err(Error::Unsupported(
                "Dropout with training_mode=true is random; export the model for inference".into(),
            ));
        }
    }
    let mut out = vec![x.clone()];
    if outputs == 2 {
        let mask = if mask_like_input {
            x.dtype
        } else {
            DType::Bool
        };
        out.push(TensorType::new(mask, x.shape.clone()));
    }
    Ok(out)
}

/// Evaluates `Dropout`.
pub(super) fn eval_dropout(x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let mut res = vec![x.clone()];
    if let Some(m) = outs.get(1) {
        let data = dispatch_dtype!(m.dtype, T => T::wrap(vec![T::from_f64(1.0); x.len()]));
        res.push(Tensor::new(m.shape.clone(), data)?);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn dropout_is_identity_at_inference() {
        let x = f32s(&[2]);
        let d = parse("Dropout", 13, vec![], 2).unwrap();
        let ys = run(&d, &[Some(&x)]).unwrap();
        assert_eq!(ys[0], x);
        assert_eq!(ys[1], t(&[2], &[true, true]));
        let tr = Tensor::scalar(true);
        let err = run(&d, &[Some(&x), Some(&Tensor::scalar(0.5f32)), Some(&tr)]).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)));
        assert!(run(&d, &[Some(&x), Some(&Tensor::scalar(0f32)), Some(&tr)]).is_ok());
    }
}
