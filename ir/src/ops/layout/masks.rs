//! OneHot, NonZero, Trilu and EyeLike: ops that build or apply an index mask.

use super::{Layout, int_scalar, one, prod, single, ty};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, opt, req};
use crate::shape::{Shape, norm_axis_inclusive, numel, strides};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, dispatch_dtype, shape_err, type_err};

/// Parses a `OneHot` node.
pub(super) fn parse_one_hot(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::OneHot {
        axis: a.int("axis", -1)?,
    })
}

/// Parses a `NonZero` node.
pub(super) fn parse_non_zero(_ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::NonZero)
}

/// Parses a `Trilu` node.
pub(super) fn parse_trilu(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Trilu {
        upper: a.int("upper", 1)? != 0,
    })
}

/// Parses a `EyeLike` node.
pub(super) fn parse_eye_like(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::EyeLike {
        dtype: match a.int_opt("dtype")? {
            Some(code) => Some(DType::from_onnx_code(
                i32::try_from(code)
                    .map_err(|_| Error::attr("dtype", format!("unknown type code {code}")))?,
            )?),
            None => None,
        },
        k: a.int("k", 0)?,
    })
}

/// The shape rule of `OneHot`.
pub(super) fn infer_one_hot(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 3, 3)?;
    let (i, v) = (ty(inputs, 0, "indices")?, ty(inputs, 2, "values")?);
    if !(i.dtype.is_int() || i.dtype.is_float()) {
        type_err!("indices must be numeric, got {}", i.dtype);
    }
    if v.numel()? != 2 {
        shape_err!("values must hold [off, on], got {v}");
    }
    let (shape, _) = onehot_shape(&i.shape, const_input(inputs, 1, "depth")?, axis)?;
    numel(&shape)?;
    one(v.dtype, shape)
}

/// The shape rule of `NonZero`.
pub(super) fn infer_non_zero(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = const_input(inputs, 0, "X")?;
    let nnz = nonzero_mask(x).iter().filter(|b| **b).count();
    one(DType::I64, vec![x.rank(), nnz])
}

/// The shape rule of `Trilu`.
pub(super) fn infer_trilu(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 2)?;
    let x = ty(inputs, 0, "input")?;
    if x.shape.len() < 2 {
        shape_err!("Trilu needs rank 2 or more, got {x}");
    }
    if let Some(k) = opt(inputs, 1)
        && (!k.ty.dtype.is_int() || k.ty.numel()? != 1)
    {
        type_err!("k must be an int64 scalar, got {}", k.ty);
    }
    Ok(vec![x.clone()])
}

/// The shape rule of `EyeLike`.
pub(super) fn infer_eye_like(
    dtype: Option<DType>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "input")?;
    if x.shape.len() != 2 {
        shape_err!("EyeLike needs a 2-D input, got {x}");
    }
    one(dtype.unwrap_or(x.dtype), x.shape.clone())
}

/// Evaluates `OneHot`.
pub(super) fn eval_one_hot(
    axis: i64,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let (depth_t, values) = (req(inputs, 1, "depth")?, req(inputs, 2, "values")?);
    let (shape, depth) = onehot_shape(x.shape(), depth_t, axis)?;
    let ax = norm_axis_inclusive(axis, x.rank())?;
    let post = prod(&x.shape()[ax..]);
    // Float indices match only when integral, like the reference's `==`.
    let raw: Vec<Option<i64>> = if x.dtype().is_float() {
        x.to_f64_vec()
            .into_iter()
            .map(|v| (v.fract() == 0.0).then_some(v as i64))
            .collect()
    } else {
        x.to_i64_vec().into_iter().map(Some).collect()
    };
    let hot: Vec<Option<usize>> = raw
        .into_iter()
        .map(|i| {
            let i = i?;
            let i = if i < 0 { i + depth as i64 } else { i };
            (0..depth as i64).contains(&i).then_some(i as usize)
        })
        .collect();
    let data = map_data!(values, v, T => {
        let mut out = vec![v[0]; numel(&shape)?];
        for (p, h) in hot.iter().enumerate() {
            if let Some(h) = h {
                out[((p / post) * depth + h) * post + p % post] = v[1];
            }
        }
        out
    });
    single(Tensor::new(shape, data)?)
}

/// Evaluates `NonZero`.
pub(super) fn eval_non_zero(x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let mask = nonzero_mask(x);
    let nnz = outs[0].shape[1];
    let st = strides(x.shape());
    let mut out = vec![0i64; x.rank() * nnz];
    for (j, flat) in mask
        .iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .map(|(i, _)| i)
        .enumerate()
    {
        for (d, &s) in st.iter().enumerate() {
            out[d * nnz + j] = ((flat / s) % x.shape()[d]) as i64;
        }
    }
    single(Tensor::from_vec(outs[0].shape.clone(), out)?)
}

/// Evaluates `Trilu`.
pub(super) fn eval_trilu(
    upper: bool,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let k = match opt(inputs, 1) {
        Some(t) => int_scalar(t, "k")?,
        None => 0,
    };
    let r = x.rank();
    let (rows, cols) = (x.shape()[r - 2] as i64, x.shape()[r - 1] as i64);
    // The kept column range of each row.
    let keep = |i: i64| -> (usize, usize) {
        let edge = i.saturating_add(k);
        if upper {
            (edge.clamp(0, cols) as usize, cols as usize)
        } else {
            (0, edge.saturating_add(1).clamp(0, cols) as usize)
        }
    };
    let data = map_data!(x, v, T => {
        let mut out = vec![T::default(); v.len()];
        let c = cols as usize;
        for (row, (o, s)) in out.chunks_exact_mut(c.max(1)).zip(v.chunks_exact(c.max(1))).enumerate() {
            let (a, b) = keep(row as i64 % rows.max(1));
            if a < b {
                o[a..b].copy_from_slice(&s[a..b]);
            }
        }
        out
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `EyeLike`.
pub(super) fn eval_eye_like(k: i64, x: &Tensor, outs: &[TensorType]) -> Result<Vec<Tensor>> {
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    let data = dispatch_dtype!(outs[0].dtype, T => {
        let mut out = vec![T::default(); rows * cols];
        for i in 0..rows {
            let j = (i as i64).saturating_add(k);
            if (0..cols as i64).contains(&j) {
                out[i * cols + j as usize] = T::from_f64(1.0);
            }
        }
        T::wrap(out)
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// The output shape of OneHot.
pub(super) fn onehot_shape(indices: &[usize], depth: &Tensor, axis: i64) -> Result<(Shape, usize)> {
    if depth.len() != 1 {
        shape_err!("depth must be a scalar, got shape {:?}", depth.shape());
    }
    let d = depth.to_f64_vec()[0];
    if !(d >= 1.0 && d < (1u64 << 40) as f64) {
        shape_err!("depth must be a positive count, got {d}");
    }
    let depth = d as usize;
    let ax = norm_axis_inclusive(axis, indices.len())?;
    let mut shape = indices.to_vec();
    shape.insert(ax, depth);
    Ok((shape, depth))
}

/// The non-zero test of NonZero (NaN counts as non-zero).
pub(super) fn nonzero_mask(x: &Tensor) -> Vec<bool> {
    dispatch!(x.data(), v, T => v.iter().map(|&e| e != T::default()).collect())
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn onehot_nonzero_trilu_eyelike() {
        let i = t(&[3], &[0i64, -1, 5]);
        let v = t(&[2], &[0f32, 1.]);
        let want = t(&[3, 3], &[1f32, 0., 0., 0., 0., 1., 0., 0., 0.]);
        check(
            Layout::OneHot { axis: -1 },
            &[&i, &Tensor::scalar(3i64), &v],
            &want,
        );
        let y = run(
            &Layout::OneHot { axis: 0 },
            &[Some(&i), Some(&Tensor::scalar(3f32)), Some(&v)],
        )
        .unwrap();
        assert_eq!(vals(&y[0]), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let x = t(&[2, 2], &[1f32, 0., 0., 3.]);
        check(Layout::NonZero, &[&x], &t(&[2, 2], &[0i64, 1, 0, 1]));
        let x = f32s(&[3, 3]);
        check(
            Layout::Trilu { upper: true },
            &[&x],
            &t(&[3, 3], &[0f32, 1., 2., 0., 4., 5., 0., 0., 8.]),
        );
        check(
            Layout::Trilu { upper: false },
            &[&x, &Tensor::scalar(-1i64)],
            &t(&[3, 3], &[0f32, 0., 0., 3., 0., 0., 6., 7., 0.]),
        );
        let e = Layout::EyeLike {
            dtype: Some(DType::I32),
            k: 1,
        };
        check(e, &[&f32s(&[2, 3])], &t(&[2, 3], &[0i32, 1, 0, 0, 0, 1]));
    }
}
