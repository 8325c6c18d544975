//! The softmax family: `Softmax`, `LogSoftmax` and `Hardmax`, with the
//! flattened-to-2-D semantics of opsets before 13.

use super::{SoftmaxFn, make, values};
use crate::error::Result;
use crate::shape::{norm_axis, numel};
use crate::tensor::Tensor;

/// The softmax axis: from 13 on a real axis, before it the split point of the
/// 2-D coercion, where `rank` itself is accepted (a `[N, 1]` matrix).
pub(super) fn softmax_axis(axis: i64, rank: usize, flatten: bool) -> Result<usize> {
    if flatten && axis == rank as i64 {
        return Ok(rank);
    }
    norm_axis(axis, rank)
}

/// `(outer, len, inner)`: the lanes the softmax family runs along.
pub(super) fn softmax_lanes(
    shape: &[usize],
    axis: usize,
    flatten: bool,
) -> Result<(usize, usize, usize)> {
    let outer = numel(&shape[..axis])?;
    if flatten {
        Ok((outer, numel(&shape[axis..])?, 1))
    } else {
        Ok((outer, shape[axis], numel(&shape[axis + 1..])?))
    }
}

pub(super) fn softmax(x: &Tensor, f: SoftmaxFn, axis: i64, flatten: bool) -> Result<Tensor> {
    let shape = x.shape();
    let ax = softmax_axis(axis, shape.len(), flatten)?;
    let (outer, len, inner) = softmax_lanes(shape, ax, flatten)?;
    let xv = values(x, "X")?;
    let mut y = vec![0.0; xv.len()];
    let mut lane = vec![0.0; len];
    for o in 0..outer {
        for i in 0..inner {
            let idx = |k: usize| (o * len + k) * inner + i;
            for k in 0..len {
                lane[k] = xv[idx(k)];
            }
            match f {
                SoftmaxFn::Softmax | SoftmaxFn::LogSoftmax => {
                    // Subtracting the max keeps exp in range; a NaN anywhere
                    // makes the whole lane NaN, as in NumPy.
                    let m = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = lane.iter().map(|v| (v - m).exp()).sum();
                    for k in 0..len {
                        y[idx(k)] = if f == SoftmaxFn::Softmax {
                            (lane[k] - m).exp() / sum
                        } else {
                            lane[k] - m - sum.ln()
                        };
                    }
                }
                SoftmaxFn::Hardmax => {
                    // The first maximum wins; a NaN counts as the maximum (NumPy's argmax).
                    let mut best = 0;
                    for k in 1..len {
                        if lane[best].is_nan() {
                            break;
                        }
                        if lane[k].is_nan() || lane[k] > lane[best] {
                            best = k;
                        }
                    }
                    if len > 0 {
                        y[idx(best)] = 1.0;
                    }
                }
            }
        }
    }
    make(x.dtype(), shape.to_vec(), y)
}
