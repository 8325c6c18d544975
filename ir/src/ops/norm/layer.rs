//! `LayerNormalization` and `RMSNormalization`: normalization over the
//! trailing axes from `axis` on.

use super::{broadcast_values, make, mean_var, values};
use crate::attrs::Attrs;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::{Shape, norm_axis, numel};
use crate::tensor::Tensor;

/// Reads `stash_type`, which must name a float dtype.
pub(super) fn stash_type(a: &Attrs) -> Result<DType> {
    let code = a.int("stash_type", 1)?;
    let d = i32::try_from(code)
        .map_err(|_| Error::attr("stash_type", format!("{code} is not a dtype code")))
        .and_then(DType::from_onnx_code)?;
    if !d.is_float() {
        return Err(Error::attr(
            "stash_type",
            format!("must be a float type, got {d}"),
        ));
    }
    Ok(d)
}

/// The shape of LayerNormalization's `Mean`/`InvStdDev`: X's with the
/// normalized axes set to 1.
pub(super) fn stat_shape(x: &[usize], axis: usize) -> Shape {
    x.iter()
        .enumerate()
        .map(|(i, &d)| if i < axis { d } else { 1 })
        .collect()
}

pub(super) fn layer_norm(
    x: &Tensor,
    scale: &Tensor,
    b: Option<&Tensor>,
    axis: i64,
    epsilon: f32,
    stash: DType,
) -> Result<Vec<Tensor>> {
    let shape = x.shape();
    let ax = norm_axis(axis, shape.len())?;
    let len = numel(&shape[ax..])?;
    let xv = values(x, "X")?;
    let s = broadcast_values(scale, shape, "Scale")?;
    let bias = match b {
        Some(b) => Some(broadcast_values(b, shape, "B")?),
        None => None,
    };
    let mut y = Vec::with_capacity(xv.len());
    let (mut means, mut invs) = (Vec::new(), Vec::new());
    if len > 0 {
        for (r, row) in xv.chunks(len).enumerate() {
            let (mean, var) = mean_var(row);
            let inv = 1.0 / (var + epsilon as f64).sqrt();
            means.push(mean);
            invs.push(inv);
            let base = r * len;
            y.extend(row.iter().enumerate().map(|(j, &v)| {
                let n = (v - mean) * inv * s[base + j];
                match &bias {
                    Some(bv) => n + bv[base + j],
                    None => n,
                }
            }));
        }
    } else {
        // Nothing to normalize: the statistics of empty rows are NaN, as in NumPy.
        let rows = numel(&shape[..ax])?;
        means = vec![f64::NAN; rows];
        invs = vec![f64::NAN; rows];
    }
    let st = stat_shape(shape, ax);
    Ok(vec![
        make(x.dtype(), shape.to_vec(), y)?,
        make(stash, st.clone(), means)?,
        make(stash, st, invs)?,
    ])
}

pub(super) fn rms_norm(x: &Tensor, scale: &Tensor, axis: i64, epsilon: f32) -> Result<Tensor> {
    let shape = x.shape();
    let ax = norm_axis(axis, shape.len())?;
    let len = numel(&shape[ax..])?;
    let xv = values(x, "X")?;
    let s = broadcast_values(scale, shape, "scale")?;
    let mut y = Vec::with_capacity(xv.len());
    if len > 0 {
        for (r, row) in xv.chunks(len).enumerate() {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / len as f64;
            let inv = 1.0 / (ms + epsilon as f64).sqrt();
            y.extend(
                row.iter()
                    .enumerate()
                    .map(|(j, &v)| v * inv * s[r * len + j]),
            );
        }
    }
    make(scale.dtype(), shape.to_vec(), y)
}
