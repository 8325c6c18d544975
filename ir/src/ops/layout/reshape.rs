//! Reshape, Flatten, Squeeze, Unsqueeze and Identity: ops that change only
//! the shape, never the elements (their buffers alias once memory is planned).

use super::{Layout, int_list, norm_axes, one, opt_const_ints, single, to_dim, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input};
use crate::shape::{Shape, numel};
use crate::shape_err;
use crate::tensor::Tensor;

/// Parses a `Reshape` node.
pub(super) fn parse_reshape(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    if a.has("shape") {
        return Err(Error::Unsupported(
            "Reshape with a shape attribute (opset < 5)".into(),
        ));
    }
    Ok(Layout::Reshape {
        allowzero: a.int("allowzero", 0)? != 0,
    })
}

/// Parses a `Flatten` node.
pub(super) fn parse_flatten(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Flatten {
        axis: a.int("axis", 1)?,
    })
}

/// Parses a `Squeeze` node.
pub(super) fn parse_squeeze(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    Ok(Layout::Squeeze {
        axes: if v < 13 { a.ints_opt("axes")? } else { None },
    })
}

/// Parses a `Unsqueeze` node.
pub(super) fn parse_unsqueeze(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let axes = if v < 13 {
        Some(
            a.ints_opt("axes")?
                .ok_or_else(|| Error::attr("axes", "is required before opset 13"))?,
        )
    } else {
        None
    };
    Ok(Layout::Unsqueeze { axes })
}

/// Parses a `Identity` node.
pub(super) fn parse_identity(_ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Identity)
}

/// The shape rule of `Reshape`.
pub(super) fn infer_reshape(
    allowzero: bool,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let x = ty(inputs, 0, "data")?;
    let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
    one(x.dtype, reshape_shape(&x.shape, &target, allowzero)?)
}

/// The shape rule of `Flatten`.
pub(super) fn infer_flatten(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "input")?;
    let r = x.shape.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r {
        shape_err!("axis {axis} is out of range for rank {r}");
    }
    let (outer, inner) = x.shape.split_at(a as usize);
    one(x.dtype, vec![numel(outer)?, numel(inner)?])
}

/// The shape rule of `Squeeze`.
pub(super) fn infer_squeeze(
    axes: Option<&[i64]>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 2)?;
    let x = ty(inputs, 0, "data")?;
    let axes = match axes {
        Some(a) => Some(a.to_vec()),
        None => opt_const_ints(inputs, 1, "axes")?,
    };
    one(x.dtype, squeeze_shape(&x.shape, axes.as_deref())?)
}

/// The shape rule of `Unsqueeze`.
pub(super) fn infer_unsqueeze(
    axes: Option<&[i64]>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let x = ty(inputs, 0, "data")?;
    let axes = match axes {
        Some(a) => {
            check_arity(inputs, 1, 1)?;
            a.to_vec()
        }
        None => {
            check_arity(inputs, 2, 2)?;
            int_list(const_input(inputs, 1, "axes")?, "axes")?
        }
    };
    one(x.dtype, unsqueeze_shape(&x.shape, &axes)?)
}

/// The shape rule of `Identity`.
pub(super) fn infer_identity(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    Ok(vec![ty(inputs, 0, "input")?.clone()])
}

/// Evaluates the shape-only ops: the elements are the input's, in order.
pub(super) fn eval_view(x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    single(x.clone().reshaped(outs[0].shape.clone())?)
}

// ---------------------------------------------------------------------------
// Shape rules, shared by `infer` and the kernels.

pub(super) fn reshape_shape(input: &[usize], target: &[i64], allowzero: bool) -> Result<Shape> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 => {
                if infer_at.replace(i).is_some() {
                    shape_err!("shape {target:?} has more than one -1");
                }
                out.push(1);
            }
            0 if !allowzero => match input.get(i) {
                Some(&d) => out.push(d),
                None => shape_err!(
                    "shape {target:?} copies dim {i} (0) but the input {input:?} has no such dim"
                ),
            },
            d => out.push(to_dim(d, "a target dim other than -1")?),
        }
    }
    if allowzero && infer_at.is_some() && target.contains(&0) {
        shape_err!("shape {target:?} has both -1 and 0 with allowzero=1");
    }
    let known = numel(&out)?;
    match infer_at {
        Some(i) => {
            if known == 0 || total % known != 0 {
                shape_err!("cannot reshape {input:?} ({total} elements) to {target:?}");
            }
            out[i] = total / known;
        }
        None if known != total => {
            shape_err!("cannot reshape {input:?} ({total} elements) to {target:?}")
        }
        None => {}
    }
    Ok(out)
}

pub(super) fn unsqueeze_shape(input: &[usize], axes: &[i64]) -> Result<Shape> {
    let rank = input.len() + axes.len();
    let axes = norm_axes(axes, rank)?;
    let mut rest = input.iter();
    Ok((0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

pub(super) fn squeeze_shape(input: &[usize], axes: Option<&[i64]>) -> Result<Shape> {
    match axes {
        None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let axes = norm_axes(axes, input.len())?;
            for &a in &axes {
                if input[a] != 1 {
                    shape_err!("cannot squeeze axis {a} of size {} in {input:?}", input[a]);
                }
            }
            Ok(input
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn reshape_zero_minus_one_and_allowzero() {
        let x = f32s(&[2, 3, 4]);
        let r = Layout::Reshape { allowzero: false };
        let y = run(&r, &[Some(&x), Some(&i64s(&[0, -1]))])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[2, 12]);
        assert!(run(&r, &[Some(&x), Some(&i64s(&[5, -1]))]).is_err());
        assert!(run(&r, &[Some(&x), Some(&i64s(&[-1, -1]))]).is_err());
        let z = f32s(&[0, 3]);
        let y = run(
            &Layout::Reshape { allowzero: true },
            &[Some(&z), Some(&i64s(&[3, 0]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[3, 0]);
    }

    #[test]
    fn flatten_and_squeeze_unsqueeze() {
        let x = f32s(&[2, 3, 4]);
        let y = run(&Layout::Flatten { axis: -1 }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[6, 4]);
        let y = run(&Layout::Flatten { axis: 0 }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[1, 24]);
        let x = f32s(&[1, 3, 1]);
        let y = run(&Layout::Squeeze { axes: None }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[3]);
        let y = run(
            &Layout::Squeeze { axes: None },
            &[Some(&x), Some(&i64s(&[-1]))],
        )
        .unwrap()
        .remove(0);
        assert_eq!(y.shape(), &[1, 3]);
        assert!(
            run(
                &Layout::Squeeze {
                    axes: Some(vec![1])
                },
                &[Some(&x)]
            )
            .is_err()
        );
        let y = run(
            &Layout::Unsqueeze { axes: None },
            &[Some(&f32s(&[3, 4])), Some(&i64s(&[-1, 0]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[1, 3, 4, 1]);
        let y = run(
            &Layout::Unsqueeze {
                axes: Some(vec![1]),
            },
            &[Some(&f32s(&[3]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[3, 1]);
    }
}
