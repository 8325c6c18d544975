//! The per-channel normalizations: `BatchNormalization` (inference form,
//! with the running statistics), `InstanceNormalization` and
//! `GroupNormalization`.

use super::{channels, make, mean_var, values};
use crate::error::{Error, Result};
use crate::ops::{ParseCtx, req};
use crate::tensor::Tensor;

/// Rejects BatchNormalization in training mode, which computes the batch's
/// own statistics and updates the running ones.
pub(super) fn check_inference_mode(ctx: &ParseCtx<'_>) -> Result<()> {
    let a = ctx.attrs;
    let training = if ctx.opset >= 14 {
        a.int("training_mode", 0)? != 0
    } else if ctx.opset < 7 {
        a.int("is_test", 0)? == 0
    } else {
        false
    };
    if training {
        let attr = if ctx.opset >= 14 {
            "training_mode=1"
        } else {
            "is_test=0"
        };
        return Err(Error::Unsupported(format!(
            "BatchNormalization in training mode ({attr}); smelt evaluates inference only, export the model in eval mode"
        )));
    }
    if ctx.num_outputs > 1 {
        // Before opset 14 the extra outputs are what selects training mode;
        // from 14 on they are only defined in training mode.
        return Err(Error::Unsupported(
            "BatchNormalization with running-statistics outputs (training mode); smelt evaluates inference only, \
             export the model in eval mode"
                .into(),
        ));
    }
    Ok(())
}

pub(super) fn batch_norm(
    x: &Tensor,
    params: [&Tensor; 4],
    epsilon: f32,
    spatial: bool,
) -> Result<Tensor> {
    let (_, c, plane) = channels(x.shape(), "X")?;
    let xv = values(x, "X")?;
    let [scale, b, mean, var] = params;
    let (scale, b, mean, var) = (
        values(scale, "scale")?,
        values(b, "B")?,
        values(mean, "mean")?,
        values(var, "var")?,
    );
    let per = if spatial { c } else { c * plane };
    if [&scale, &b, &mean, &var].iter().any(|p| p.len() != per) {
        return Err(Error::Shape(format!(
            "the parameters must hold {per} values each"
        )));
    }
    // y = (x - mean) / sqrt(var + eps) * scale + b, folded into y = x * k + d.
    let k: Vec<f64> = (0..per)
        .map(|i| scale[i] / (var[i] + epsilon as f64).sqrt())
        .collect();
    let d: Vec<f64> = (0..per).map(|i| b[i] - mean[i] * k[i]).collect();
    let mut y = Vec::with_capacity(xv.len());
    if plane > 0 {
        for (i, chunk) in xv.chunks(plane).enumerate() {
            let ch = i % c;
            if spatial {
                y.extend(chunk.iter().map(|&v| v * k[ch] + d[ch]));
            } else {
                let base = ch * plane;
                y.extend(
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(j, &v)| v * k[base + j] + d[base + j]),
                );
            }
        }
    }
    make(x.dtype(), x.shape().to_vec(), y)
}

/// Normalizes `groups` contiguous rows of `x`, each of `len` elements; the
/// affine parameters come from `affine(row, index_in_row) -> (scale, bias)`.
pub(super) fn normalize_rows(
    x: &[f64],
    len: usize,
    epsilon: f64,
    affine: impl Fn(usize, usize) -> (f64, f64),
) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    if len == 0 {
        return y;
    }
    for (r, row) in x.chunks(len).enumerate() {
        let (mean, var) = mean_var(row);
        let inv = 1.0 / (var + epsilon).sqrt();
        y.extend(row.iter().enumerate().map(|(j, &v)| {
            let (s, b) = affine(r, j);
            (v - mean) * inv * s + b
        }));
    }
    y
}

/// Evaluates `InstanceNormalization`: each sample's channel over its plane.
pub(super) fn eval_instance_norm(inputs: &[Option<&Tensor>], epsilon: f32) -> Result<Tensor> {
    let x = req(inputs, 0, "X")?;
    let (_, c, plane) = channels(x.shape(), "X")?;
    let (s, b) = (
        values(req(inputs, 1, "scale")?, "scale")?,
        values(req(inputs, 2, "B")?, "B")?,
    );
    let y = normalize_rows(&values(x, "X")?, plane, epsilon as f64, |r, _| {
        (s[r % c], b[r % c])
    });
    make(x.dtype(), x.shape().to_vec(), y)
}

/// Evaluates `GroupNormalization`: each sample's group of channels.
pub(super) fn eval_group_norm(
    inputs: &[Option<&Tensor>],
    num_groups: usize,
    epsilon: f32,
    per_channel: bool,
) -> Result<Tensor> {
    let x = req(inputs, 0, "X")?;
    let (_, c, plane) = channels(x.shape(), "X")?;
    let g = num_groups;
    let cg = c / g;
    let (s, b) = (
        values(req(inputs, 1, "scale")?, "scale")?,
        values(req(inputs, 2, "bias")?, "bias")?,
    );
    // Row r is sample r / g, group r % g; element j is in channel (r % g)·cg + j / plane.
    let y = normalize_rows(&values(x, "X")?, cg * plane, epsilon as f64, |r, j| {
        let p = if per_channel {
            (r % g) * cg + j / plane.max(1)
        } else {
            r % g
        };
        (s[p], b[p])
    });
    make(x.dtype(), x.shape().to_vec(), y)
}
