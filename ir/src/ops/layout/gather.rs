//! Gather, GatherElements and GatherND, with the index helpers the scatters
//! share.

use super::{Layout, check_index_type, norm_index, one, prod, single, to_dim, ty};
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, req};
use crate::shape::{norm_axis, strides};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, shape_err};

/// Parses a `Gather` node.
pub(super) fn parse_gather(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Gather {
        axis: a.int("axis", 0)?,
    })
}

/// Parses a `GatherElements` node.
pub(super) fn parse_gather_elements(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::GatherElements {
        axis: a.int("axis", 0)?,
    })
}

/// Parses a `GatherND` node.
pub(super) fn parse_gather_nd(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::GatherND {
        batch_dims: a.int("batch_dims", 0)?,
    })
}

/// The `data` and `indices` operands of the gathers, with the index type checked.
fn data_and_indices<'a>(
    inputs: &[Option<InferInput<'a>>],
) -> Result<(&'a TensorType, &'a TensorType)> {
    check_arity(inputs, 2, 2)?;
    let (x, i) = (ty(inputs, 0, "data")?, ty(inputs, 1, "indices")?);
    check_index_type(i, "indices")?;
    Ok((x, i))
}

/// The shape rule of `Gather`.
pub(super) fn infer_gather(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, i) = data_and_indices(inputs)?;
    let ax = norm_axis(axis, x.shape.len())?;
    let mut shape = x.shape[..ax].to_vec();
    shape.extend_from_slice(&i.shape);
    shape.extend_from_slice(&x.shape[ax + 1..]);
    one(x.dtype, shape)
}

/// The shape rule of `GatherElements`.
pub(super) fn infer_gather_elements(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, i) = data_and_indices(inputs)?;
    let ax = norm_axis(axis, x.shape.len())?;
    check_elements_shape(&x.shape, &i.shape, ax)?;
    one(x.dtype, i.shape.clone())
}

/// The shape rule of `GatherND`.
pub(super) fn infer_gather_nd(
    batch_dims: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, i) = data_and_indices(inputs)?;
    let (b, k) = gather_nd_dims(&x.shape, &i.shape, batch_dims)?;
    let mut shape = i.shape[..i.shape.len() - 1].to_vec();
    shape.extend_from_slice(&x.shape[b + k..]);
    one(x.dtype, shape)
}

/// Evaluates `Gather`.
pub(super) fn eval_gather(
    axis: i64,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let i = req(inputs, 1, "indices")?;
    let ax = norm_axis(axis, x.rank())?;
    let d = x.shape()[ax];
    let idx: Vec<usize> = i
        .to_i64_vec()
        .into_iter()
        .map(|j| norm_index(j, d, "Gather index"))
        .collect::<Result<_>>()?;
    let (outer, inner) = (prod(&x.shape()[..ax]), prod(&x.shape()[ax + 1..]));
    let data = map_data!(x, v, T => gather_rows(v, outer, d, inner, &idx));
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `GatherElements`.
pub(super) fn eval_gather_elements(
    axis: i64,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let i = req(inputs, 1, "indices")?;
    let offs = element_offsets(x, i, axis, "GatherElements index")?;
    let data = map_data!(x, v, T => offs.iter().map(|&o| v[o]).collect());
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// Evaluates `GatherND`.
pub(super) fn eval_gather_nd(
    batch_dims: i64,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let i = req(inputs, 1, "indices")?;
    let (b, k) = gather_nd_dims(x.shape(), i.shape(), batch_dims)?;
    let offs = nd_offsets(x.shape(), i.shape(), &i.to_i64_vec(), b, k)?;
    let len = prod(&x.shape()[b + k..]);
    let data = map_data!(x, v, T => {
        let mut out = Vec::with_capacity(offs.len() * len);
        for &o in &offs {
            out.extend_from_slice(&v[o..o + len]);
        }
        out
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// GatherElements/ScatterElements: indices have the data's rank and do not
/// exceed it on the other axes.
pub(super) fn check_elements_shape(data: &[usize], indices: &[usize], axis: usize) -> Result<()> {
    if data.len() != indices.len() {
        shape_err!("indices {indices:?} must have the rank of data {data:?}");
    }
    for (k, (&d, &i)) in data.iter().zip(indices).enumerate() {
        if k != axis && i > d {
            shape_err!("indices {indices:?} exceed data {data:?} on axis {k}");
        }
    }
    Ok(())
}

/// GatherND/ScatterND: validates `batch_dims` and returns it with the index
/// tuple length `k`.
pub(super) fn gather_nd_dims(
    data: &[usize],
    indices: &[usize],
    batch_dims: i64,
) -> Result<(usize, usize)> {
    let b = to_dim(batch_dims, "batch_dims")?;
    let (r, q) = (data.len(), indices.len());
    if q < 1 || r < 1 {
        shape_err!("data {data:?} and indices {indices:?} must have rank 1 or more");
    }
    if b >= q || b >= r {
        shape_err!("batch_dims {b} must be smaller than the ranks of data and indices");
    }
    if data[..b] != indices[..b] {
        shape_err!("the batch dims of data {data:?} and indices {indices:?} differ");
    }
    let k = indices[q - 1];
    if k < 1 || b + k > r {
        shape_err!("index tuples of length {k} do not fit data {data:?} with batch_dims {b}");
    }
    Ok((b, k))
}

// ---------------------------------------------------------------------------
// Kernels.

/// `out[o, j, :] = v[o, idx[j], :]` for data viewed as `[outer, d, inner]`.
pub(super) fn gather_rows<T: Copy>(
    v: &[T],
    outer: usize,
    d: usize,
    inner: usize,
    idx: &[usize],
) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let b = (o * d + i) * inner;
            out.extend_from_slice(&v[b..b + inner]);
        }
    }
    out
}

/// For GatherElements/ScatterElements: the data offset in `x` every element
/// of the indices `i` picks on `axis` (`what` names the index in errors).
pub(super) fn element_offsets(x: &Tensor, i: &Tensor, axis: i64, what: &str) -> Result<Vec<usize>> {
    let ax = norm_axis(axis, x.rank())?;
    let (d, stride) = (x.shape()[ax], strides(x.shape())[ax]);
    element_bases(x.shape(), i.shape(), ax)
        .iter()
        .zip(i.to_i64_vec())
        .map(|(&b, j)| Ok(b + norm_index(j, d, what)? * stride))
        .collect()
}

/// The data offset of every index element with its own coordinate on `axis`
/// left out.
fn element_bases(data: &[usize], indices: &[usize], axis: usize) -> Vec<usize> {
    let ds = strides(data);
    let n = prod(indices);
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut pos = vec![0usize; indices.len()];
    let mut base = 0usize;
    loop {
        out.push(base);
        let mut k = pos.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            pos[k] += 1;
            let step = if k == axis { 0 } else { ds[k] };
            base += step;
            if pos[k] < indices[k] {
                break;
            }
            base -= step * pos[k];
            pos[k] = 0;
        }
    }
}

/// The data offset of every index tuple of GatherND/ScatterND, with its batch.
pub(super) fn nd_offsets(
    data: &[usize],
    ishape: &[usize],
    idx: &[i64],
    b: usize,
    k: usize,
) -> Result<Vec<usize>> {
    let ds = strides(data);
    let batch_stride = prod(&data[b..]);
    let per_batch = prod(&ishape[b..ishape.len() - 1]);
    let mut out = Vec::with_capacity(idx.len() / k.max(1));
    for (t, tuple) in idx.chunks_exact(k).enumerate() {
        let mut off = (t / per_batch.max(1)) * batch_stride;
        for (j, &i) in tuple.iter().enumerate() {
            off += norm_index(i, data[b + j], "index")? * ds[b + j];
        }
        out.push(off);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn gather_family() {
        let x = f32s(&[3, 2]);
        check(
            Layout::Gather { axis: 0 },
            &[&x, &i64s(&[-1, 0])],
            &t(&[2, 2], &[4f32, 5., 0., 1.]),
        );
        let i = t(&[2, 2], &[1i32, 0, 0, 1]);
        let y = run(&Layout::Gather { axis: 1 }, &[Some(&x), Some(&i)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[3, 2, 2]);
        assert_eq!(vals(&y)[..4], [1.0, 0.0, 0.0, 1.0]);
        let e = run(&Layout::Gather { axis: 0 }, &[Some(&x), Some(&i64s(&[3]))]).unwrap_err();
        assert!(matches!(e, Error::Eval(_)), "{e}");
        let i = t(&[2, 2], &[0i64, 0, 1, 0]);
        check(
            Layout::GatherElements { axis: 1 },
            &[&f32s(&[2, 2]), &i],
            &t(&[2, 2], &[0f32, 0., 3., 2.]),
        );
        // GatherND with batch_dims 1: per batch, pick rows.
        let d = f32s(&[2, 2, 2]);
        let i = t(&[2, 1], &[1i64, 0]);
        check(
            Layout::GatherND { batch_dims: 1 },
            &[&d, &i],
            &t(&[2, 2], &[2f32, 3., 4., 5.]),
        );
        let i = t(&[2, 2], &[0i64, 1, 1, 0]);
        check(
            Layout::GatherND { batch_dims: 0 },
            &[&f32s(&[2, 2]), &i],
            &t(&[2], &[1f32, 2.]),
        );
    }
}
