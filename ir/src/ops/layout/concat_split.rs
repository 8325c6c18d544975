//! Concat and Split: joining along an axis and its inverse.

use super::view::view_tensor;
use super::{Layout, one, opt_const_ints, prod, single, to_dim, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, req};
use crate::shape::{norm_axis, numel};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, shape_err, type_err};

/// Parses a `Concat` node.
pub(super) fn parse_concat(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Concat {
        axis: a.int_req("axis")?,
    })
}

/// Parses a `Split` node.
pub(super) fn parse_split(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let num = if v >= 18 {
        a.int_opt("num_outputs")?
    } else {
        None
    };
    if let Some(n) = num
        && (n < 1 || n as usize != ctx.num_outputs)
    {
        return Err(Error::attr(
            "num_outputs",
            format!("is {n} but the node has {} outputs", ctx.num_outputs),
        ));
    }
    if ctx.num_outputs == 0 {
        return Err(Error::Shape("Split needs at least one output".into()));
    }
    Ok(Layout::Split {
        axis: a.int("axis", 0)?,
        split: if v < 13 { a.ints_opt("split")? } else { None },
        outputs: ctx.num_outputs,
        uneven: num.is_some(),
    })
}

/// The shape rule of `Concat`.
pub(super) fn infer_concat(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    if inputs.is_empty() {
        shape_err!("Concat needs at least one input");
    }
    let tys: Vec<&TensorType> = (0..inputs.len())
        .map(|i| ty(inputs, i, "inputs"))
        .collect::<Result<_>>()?;
    let first = tys[0];
    let ax = norm_axis(axis, first.shape.len())?;
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    for t in &tys {
        if t.dtype != first.dtype {
            type_err!(
                "inputs have different dtypes {} and {}",
                first.dtype,
                t.dtype
            );
        }
        let same = t.shape.len() == first.shape.len()
            && t.shape
                .iter()
                .zip(&first.shape)
                .enumerate()
                .all(|(i, (a, b))| i == ax || a == b);
        if !same {
            shape_err!(
                "cannot concatenate {:?} and {:?} on axis {ax}",
                first.shape,
                t.shape
            );
        }
        shape[ax] += t.shape[ax];
    }
    one(first.dtype, shape)
}

/// The shape rule of `Split`.
pub(super) fn infer_split(
    axis: i64,
    split: Option<&[i64]>,
    outputs: usize,
    uneven: bool,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 2)?;
    let x = ty(inputs, 0, "input")?;
    let ax = norm_axis(axis, x.shape.len())?;
    let split = match split {
        Some(s) => Some(s.to_vec()),
        None => opt_const_ints(inputs, 1, "split")?.filter(|s| !s.is_empty()),
    };
    let sizes = split_sizes(x.shape[ax], split.as_deref(), outputs, uneven)?;
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut shape = x.shape.clone();
            shape[ax] = s;
            TensorType::new(x.dtype, shape)
        })
        .collect())
}

/// Evaluates `Concat`.
pub(super) fn eval_concat(
    axis: i64,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let xs: Vec<&Tensor> = (0..inputs.len())
        .map(|i| req(inputs, i, "inputs"))
        .collect::<Result<_>>()?;
    let ax = norm_axis(axis, x.rank())?;
    let outer = prod(&x.shape()[..ax]);
    let chunks: Vec<usize> = xs.iter().map(|t| prod(&t.shape()[ax..])).collect();
    let data = map_data!(x, _v, T => {
        let srcs: Vec<&[T]> = xs.iter().map(|t| t.as_slice::<T>()).collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(numel(&outs[0].shape)?);
        for o in 0..outer {
            for (s, &c) in srcs.iter().zip(&chunks) {
                out.extend_from_slice(&s[o * c..(o + 1) * c]);
            }
        }
        out
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `Split`.
pub(super) fn eval_split(axis: i64, x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let ax = norm_axis(axis, x.rank())?;
    let (outer, d, inner) = (
        prod(&x.shape()[..ax]),
        x.shape()[ax],
        prod(&x.shape()[ax + 1..]),
    );
    let mut start = 0usize;
    let mut res = Vec::with_capacity(outs.len());
    for o in outs {
        let len = o.shape[ax];
        let dims = [(outer, (d * inner) as isize), (len * inner, 1)];
        res.push(view_tensor(x, start * inner, &dims, o.shape.clone())?);
        start += len;
    }
    Ok(res)
}

pub(super) fn split_sizes(
    dim: usize,
    split: Option<&[i64]>,
    outputs: usize,
    uneven: bool,
) -> Result<Vec<usize>> {
    if let Some(split) = split {
        if split.len() != outputs {
            shape_err!(
                "split {split:?} has {} parts but the node has {outputs} outputs",
                split.len()
            );
        }
        let sizes: Vec<usize> = split
            .iter()
            .map(|&s| to_dim(s, "a split size"))
            .collect::<Result<_>>()?;
        if sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b)) != Some(dim) {
            shape_err!("split {split:?} does not add up to the dim {dim}");
        }
        return Ok(sizes);
    }
    if dim.is_multiple_of(outputs) {
        return Ok(vec![dim / outputs; outputs]);
    }
    if !uneven {
        shape_err!("dim {dim} cannot be split into {outputs} equal parts");
    }
    // Opset 18: parts of ceil(dim / n), the last one smaller.
    let part = dim / outputs + 1;
    let last = dim.checked_sub(part * (outputs - 1));
    match last {
        Some(last) => {
            let mut v = vec![part; outputs - 1];
            v.push(last);
            Ok(v)
        }
        None => shape_err!("dim {dim} cannot be split into {outputs} parts of {part}"),
    }
}

#[cfg(test)]
mod tests {

    use crate::attrs::AttrValue;
    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn concat_and_split() {
        let (a, b) = (f32s(&[2, 1]), t(&[2, 2], &[10f32, 11., 12., 13.]));
        check(
            Layout::Concat { axis: -1 },
            &[&a, &b],
            &t(&[2, 3], &[0f32, 10., 11., 1., 12., 13.]),
        );
        assert!(run(&Layout::Concat { axis: 0 }, &[Some(&a), Some(&b)]).is_err());
        let x = f32s(&[7]);
        let sp = parse("Split", 18, vec![("num_outputs", AttrValue::Int(4))], 4).unwrap();
        let ys = run(&sp, &[Some(&x)]).unwrap();
        let lens: Vec<usize> = ys.iter().map(|y| y.len()).collect();
        assert_eq!(lens, [2, 2, 2, 1]);
        assert_eq!(vals(&ys[3]), [6.0]);
        let sp = parse("Split", 13, vec![("axis", AttrValue::Int(1))], 2).unwrap();
        let ys = run(&sp, &[Some(&f32s(&[2, 3])), Some(&i64s(&[1, 2]))]).unwrap();
        assert_eq!(vals(&ys[0]), [0.0, 3.0]);
        assert_eq!(vals(&ys[1]), [1.0, 2.0, 4.0, 5.0]);
        let sp = parse("Split", 11, vec![], 2).unwrap();
        assert!(run(&sp, &[Some(&x)]).is_err());
    }
}
