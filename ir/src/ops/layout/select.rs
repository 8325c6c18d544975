//! Compress, ReverseSequence and CenterCropPad: ops that pick, reorder or
//! re-window the elements along some axes.

use super::gather::gather_rows;
use super::view::remap;
use super::{Layout, check_index_type, int_list, norm_axes, one, prod, single, to_dim, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, req};
use crate::shape::{norm_axis, strides};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, shape_err};

/// Parses a `Compress` node.
pub(super) fn parse_compress(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Compress {
        axis: a.int_opt("axis")?,
    })
}

/// Parses a `ReverseSequence` node.
pub(super) fn parse_reverse_sequence(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let (b, t) = (a.int("batch_axis", 1)?, a.int("time_axis", 0)?);
    if !matches!((b, t), (0, 1) | (1, 0)) {
        return Err(Error::attr(
            "batch_axis",
            format!("batch_axis {b} and time_axis {t} must be 0 and 1 in some order"),
        ));
    }
    Ok(Layout::ReverseSequence {
        batch_axis: b as usize,
        time_axis: t as usize,
    })
}

/// Parses a `CenterCropPad` node.
pub(super) fn parse_center_crop_pad(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::CenterCropPad {
        axes: a.ints_opt("axes")?,
    })
}

/// The shape rule of `Compress`.
pub(super) fn infer_compress(
    axis: Option<i64>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let x = ty(inputs, 0, "input")?;
    let cond = const_input(inputs, 1, "condition")?;
    match axis {
        None => one(x.dtype, vec![compress_indices(cond, x.numel()?)?.len()]),
        Some(a) => {
            let ax = norm_axis(a, x.shape.len())?;
            let mut shape = x.shape.clone();
            shape[ax] = compress_indices(cond, x.shape[ax])?.len();
            one(x.dtype, shape)
        }
    }
}

/// The shape rule of `ReverseSequence`.
pub(super) fn infer_reverse_sequence(
    batch_axis: usize,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let (x, l) = (ty(inputs, 0, "input")?, ty(inputs, 1, "sequence_lens")?);
    if x.shape.len() < 2 {
        shape_err!("ReverseSequence needs rank 2 or more, got {x}");
    }
    check_index_type(l, "sequence_lens")?;
    if l.shape != [x.shape[batch_axis]] {
        shape_err!(
            "sequence_lens {l} must hold one length per batch ({})",
            x.shape[batch_axis]
        );
    }
    Ok(vec![x.clone()])
}

/// The shape rule of `CenterCropPad`.
pub(super) fn infer_center_crop_pad(
    axes: Option<&[i64]>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let x = ty(inputs, 0, "input_data")?;
    let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
    let plan = center_crop_pad_plan(&x.shape, &target, axes)?;
    one(x.dtype, plan.iter().map(|p| p.0).collect())
}

/// Evaluates `Compress`.
pub(super) fn eval_compress(
    axis: Option<i64>,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let cond = req(inputs, 1, "condition")?;
    let data = match axis {
        None => {
            let kept = compress_indices(cond, x.len())?;
            map_data!(x, v, T => gather_rows(v, 1, v.len(), 1, &kept))
        }
        Some(a) => {
            let ax = norm_axis(a, x.rank())?;
            let kept = compress_indices(cond, x.shape()[ax])?;
            let (outer, d, inner) = (
                prod(&x.shape()[..ax]),
                x.shape()[ax],
                prod(&x.shape()[ax + 1..]),
            );
            map_data!(x, v, T => gather_rows(v, outer, d, inner, &kept))
        }
    };
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `ReverseSequence`.
pub(super) fn eval_reverse_sequence(
    batch_axis: usize,
    time_axis: usize,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let lens = req(inputs, 1, "sequence_lens")?.to_i64_vec();
    let (bd, td) = (x.shape()[batch_axis], x.shape()[time_axis]);
    let inner = prod(&x.shape()[2..]);
    let d1 = x.shape()[1];
    let at = |b: usize, t: usize| {
        let (i0, i1) = if batch_axis == 0 { (b, t) } else { (t, b) };
        (i0 * d1 + i1) * inner
    };
    let lens: Vec<usize> = lens
        .iter()
        .map(|&l| match usize::try_from(l) {
            Ok(l) if l <= td => Ok(l),
            _ => Err(Error::Eval(format!(
                "sequence length {l} is outside 0..={td}"
            ))),
        })
        .collect::<Result<_>>()?;
    let data = map_data!(x, v, T => {
        let mut out = v.to_vec();
        for b in 0..bd {
            let l = lens[b];
            for t in 0..l {
                let (dst, src) = (at(b, t), at(b, l - 1 - t));
                out[dst..dst + inner].copy_from_slice(&v[src..src + inner]);
            }
        }
        out
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `CenterCropPad`.
pub(super) fn eval_center_crop_pad(
    axes: Option<&[i64]>,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let target = int_list(req(inputs, 1, "shape")?, "shape")?;
    let plan = center_crop_pad_plan(x.shape(), &target, axes)?;
    let st = strides(x.shape());
    let maps: Vec<Vec<Option<usize>>> = plan
        .iter()
        .enumerate()
        .map(|(ax, &(n, off))| {
            (0..n as i64)
                .map(|o| {
                    let i = o + off;
                    (0..x.shape()[ax] as i64)
                        .contains(&i)
                        .then(|| i as usize * st[ax])
                })
                .collect()
        })
        .collect();
    let data = map_data!(x, v, T => remap(v, &maps, T::default())?);
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Validates a Compress condition against the compressed dim and returns the
/// kept indices.
pub(super) fn compress_indices(cond: &Tensor, dim: usize) -> Result<Vec<usize>> {
    let c = cond.as_slice::<bool>()?;
    if cond.rank() != 1 {
        shape_err!("condition must be 1-D, got shape {:?}", cond.shape());
    }
    let kept: Vec<usize> = c
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect();
    if let Some(&i) = kept.last()
        && i >= dim
    {
        shape_err!("condition selects index {i} of a dim of size {dim}");
    }
    Ok(kept)
}

/// Per axis: the crop start (`Ok`) or the pad offset (`Err`) of CenterCropPad.
pub(super) fn center_crop_pad_plan(
    shape: &[usize],
    target: &[i64],
    axes: Option<&[i64]>,
) -> Result<Vec<(usize, i64)>> {
    let axes: Vec<usize> = match axes {
        Some(a) => norm_axes(a, shape.len())?,
        None => (0..shape.len()).collect(),
    };
    if target.len() != axes.len() {
        shape_err!(
            "shape {target:?} must have one entry per axis ({})",
            axes.len()
        );
    }
    // (output dim, offset): input index = output index + offset.
    let mut plan: Vec<(usize, i64)> = shape.iter().map(|&d| (d, 0)).collect();
    for (&ax, &t) in axes.iter().zip(target) {
        let t = to_dim(t, "a CenterCropPad dim")?;
        let d = shape[ax];
        let off = if t <= d {
            ((d - t) / 2) as i64
        } else {
            -(((t - d) / 2) as i64)
        };
        plan[ax] = (t, off);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn compress_reverse_sequence_center_crop() {
        let x = f32s(&[3, 2]);
        let c = t(&[2], &[false, true]);
        check(
            Layout::Compress { axis: Some(0) },
            &[&x, &c],
            &t(&[1, 2], &[2f32, 3.]),
        );
        check(
            Layout::Compress { axis: None },
            &[&x, &c],
            &t(&[1], &[1f32]),
        );
        let too_far = t(&[4], &[false, false, false, true]);
        assert!(
            run(
                &Layout::Compress { axis: Some(0) },
                &[Some(&x), Some(&too_far)]
            )
            .is_err()
        );
        // Example 2 of the spec, time on axis 1.
        let x = f32s(&[4, 4]);
        let op = Layout::ReverseSequence {
            batch_axis: 0,
            time_axis: 1,
        };
        let y = run(&op, &[Some(&x), Some(&i64s(&[1, 2, 3, 4]))])
            .unwrap()
            .remove(0);
        assert_eq!(vals(&y)[4..8], [5.0, 4.0, 6.0, 7.0]);
        assert_eq!(vals(&y)[12..16], [15.0, 14.0, 13.0, 12.0]);
        assert!(run(&op, &[Some(&x), Some(&i64s(&[1, 2, 3, 5]))]).is_err());
        let x = f32s(&[3, 4]);
        let y = run(
            &Layout::CenterCropPad { axes: None },
            &[Some(&x), Some(&i64s(&[1, 6]))],
        )
        .unwrap()
        .remove(0);
        assert_eq!(vals(&y), [0.0, 4.0, 5.0, 6.0, 7.0, 0.0]);
    }
}
