//! `LpNormalization` (`x / ‖x‖_p` along an axis) and `LRN` (local response
//! normalization across channels).

use super::softmax::softmax_lanes;
use super::{channels, make, values};
use crate::error::Result;
use crate::shape::norm_axis;
use crate::tensor::Tensor;

pub(super) fn lp_norm(x: &Tensor, axis: i64, p: u8) -> Result<Tensor> {
    let shape = x.shape();
    let ax = norm_axis(axis, shape.len())?;
    let (outer, len, inner) = softmax_lanes(shape, ax, false)?;
    let xv = values(x, "X")?;
    let mut y = vec![0.0; xv.len()];
    for o in 0..outer {
        for i in 0..inner {
            let idx = |k: usize| (o * len + k) * inner + i;
            let norm = if p == 1 {
                (0..len).map(|k| xv[idx(k)].abs()).sum::<f64>()
            } else {
                (0..len)
                    .map(|k| xv[idx(k)] * xv[idx(k)])
                    .sum::<f64>()
                    .sqrt()
            };
            // A zero norm gives zeros rather than 0/0 (the ONNX reference).
            if norm != 0.0 {
                for k in 0..len {
                    y[idx(k)] = xv[idx(k)] / norm;
                }
            }
        }
    }
    make(x.dtype(), shape.to_vec(), y)
}

pub(super) fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Tensor> {
    let (n, c, plane) = channels(x.shape(), "X")?;
    let xv = values(x, "X")?;
    // The window spans floor((size-1)/2) channels before and ceil((size-1)/2) after.
    let (before, after) = ((size - 1) / 2, size / 2);
    let (alpha, beta, bias) = (alpha as f64 / size as f64, beta as f64, bias as f64);
    let mut y = vec![0.0; xv.len()];
    for ni in 0..n {
        for ci in 0..c {
            let (lo, hi) = (ci.saturating_sub(before), (ci + after).min(c - 1));
            for s in 0..plane {
                let at = |cc: usize| (ni * c + cc) * plane + s;
                let sq: f64 = (lo..=hi).map(|cc| xv[at(cc)] * xv[at(cc)]).sum();
                y[at(ci)] = xv[at(ci)] / (bias + alpha * sq).powf(beta);
            }
        }
    }
    make(x.dtype(), x.shape().to_vec(), y)
}
