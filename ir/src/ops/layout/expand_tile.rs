//! Expand and Tile: broadcasting and repeating, both zero-stride views.

use super::view::view_tensor;
use super::{Layout, int_list, one, single, to_dim, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input};
use crate::shape::{Shape, broadcast_shapes, numel, strides};
use crate::shape_err;
use crate::tensor::Tensor;

/// Parses a `Expand` node.
pub(super) fn parse_expand(_ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Expand)
}

/// Parses a `Tile` node.
pub(super) fn parse_tile(_ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Tile)
}

/// The shape rule of `Expand`.
pub(super) fn infer_expand(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let x = ty(inputs, 0, "input")?;
    let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
    let target: Shape = target
        .iter()
        .map(|&d| to_dim(d, "an Expand dim"))
        .collect::<Result<_>>()?;
    one(x.dtype, broadcast_shapes(&[&x.shape, &target])?)
}

/// The shape rule of `Tile`.
pub(super) fn infer_tile(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let x = ty(inputs, 0, "input")?;
    let reps = int_list(const_input(inputs, 1, "repeats")?, "repeats")?;
    if reps.len() != x.shape.len() {
        shape_err!(
            "repeats {reps:?} must have one entry per dim of {:?}",
            x.shape
        );
    }
    let mut shape = Vec::with_capacity(reps.len());
    for (&d, &r) in x.shape.iter().zip(&reps) {
        let r = to_dim(r, "a repeat count")?;
        shape.push(
            d.checked_mul(r)
                .ok_or_else(|| Error::Overflow("tiled dim".into()))?,
        );
    }
    numel(&shape)?;
    one(x.dtype, shape)
}

/// Evaluates `Expand`.
pub(super) fn eval_expand(x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let shape = outs[0].shape.clone();
    let st = strides(x.shape());
    let lead = shape.len() - x.rank();
    let dims: Vec<(usize, isize)> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match i.checked_sub(lead) {
            Some(j) if x.shape()[j] == d => (d, st[j] as isize),
            _ => (d, 0),
        })
        .collect();
    single(view_tensor(x, 0, &dims, shape)?)
}

/// Evaluates `Tile`.
pub(super) fn eval_tile(x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let st = strides(x.shape());
    let dims: Vec<(usize, isize)> = outs[0]
        .shape
        .iter()
        .zip(x.shape())
        .zip(&st)
        .flat_map(|((&o, &d), &s)| [(o.checked_div(d).unwrap_or(0), 0), (d, s as isize)])
        .collect();
    single(view_tensor(x, 0, &dims, outs[0].shape.clone())?)
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn expand_and_tile() {
        let x = t(&[3, 1], &[1f32, 2., 3.]);
        let y = run(&Layout::Expand, &[Some(&x), Some(&i64s(&[2, 1, 2]))])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[2, 3, 2]);
        assert_eq!(
            vals(&y),
            [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        let x = t(&[2, 2], &[1u8, 2, 3, 4]);
        check(
            Layout::Tile,
            &[&x, &i64s(&[1, 2])],
            &t(&[2, 4], &[1u8, 2, 1, 2, 3, 4, 3, 4]),
        );
        let y = run(&Layout::Tile, &[Some(&x), Some(&i64s(&[2, 1]))])
            .unwrap()
            .remove(0);
        assert_eq!(vals(&y), [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    }
}
