//! `MeanVarianceNormalization`: `(x - mean) / (std + 1e-9)` over a set of axes.

use super::{make, values};
use crate::error::{Error, Result};
use crate::shape::{Shape, broadcast_index_map, norm_axis, numel};
use crate::tensor::Tensor;

/// MeanVarianceNormalization's axes, resolved; duplicates are an error.
pub(super) fn mvn_axes(axes: &[i64], rank: usize) -> Result<Vec<bool>> {
    let mut reduced = vec![false; rank];
    for &a in axes {
        let a = norm_axis(a, rank).map_err(|_| {
            Error::attr("axes", format!("axis {a} is out of range for rank {rank}"))
        })?;
        if reduced[a] {
            return Err(Error::attr("axes", format!("axis {a} is listed twice")));
        }
        reduced[a] = true;
    }
    Ok(reduced)
}

pub(super) fn mvn(x: &Tensor, axes: &[i64]) -> Result<Tensor> {
    let shape = x.shape();
    let reduced = mvn_axes(axes, shape.len())?;
    let kept: Shape = shape
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let map = broadcast_index_map(&kept, shape);
    let xv = values(x, "X")?;
    let groups = numel(&kept)?;
    let count = (numel(shape)? / groups.max(1)) as f64;
    let mut sum = vec![0.0; groups];
    for (v, &g) in xv.iter().zip(&map) {
        sum[g] += v;
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let mut sq = vec![0.0; groups];
    for (v, &g) in xv.iter().zip(&map) {
        sq[g] += (v - mean[g]) * (v - mean[g]);
    }
    // The spec's function body: (x - mean) / (sqrt(variance) + 1e-9).
    let den: Vec<f64> = sq.iter().map(|s| (s / count).sqrt() + 1e-9).collect();
    let y = xv
        .iter()
        .zip(&map)
        .map(|(v, &g)| (v - mean[g]) / den[g])
        .collect();
    make(x.dtype(), shape.to_vec(), y)
}
