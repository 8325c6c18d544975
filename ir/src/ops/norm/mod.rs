//! Normalizations and the softmax family: `BatchNormalization` (inference
//! form), `InstanceNormalization`, `LayerNormalization`, `RMSNormalization`,
//! `GroupNormalization`, `LpNormalization`, `MeanVarianceNormalization`, `LRN`,
//! `Softmax`, `LogSoftmax` and `Hardmax`.
//!
//! Every kernel reads its operands as `f64`, computes the statistics with two
//! passes (mean, then the mean squared deviation) and rounds once to the output
//! type. That is at least as precise as the `stash_type` the spec asks for, so
//! `stash_type` only decides the dtype of LayerNormalization's extra outputs.
//!
//! One file per op or small group of related ops holds its kernel: [`batch`]
//! (Batch, Instance and Group normalization), [`layer`] (Layer and RMS),
//! [`lp_lrn`], [`mvn`] and [`softmax`]. This file keeps the closed [`Norm`]
//! enum, its parser, the shape rule every op shares (`types`, which evaluation
//! re-runs so a kernel never sees operands it cannot handle), the helpers the
//! kernels share and the exhaustive dispatch of [`OpDef`].

use crate::dispatch_dtype;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{
    InferInput, OpDef, ParseCtx, check_arity, fmt_list, in_family, opt, req, tensor_types,
};
use crate::shape::{Shape, broadcast_index_map, broadcast_shapes, norm_axis, numel};
use crate::tensor::{Elem, Tensor};

mod batch;
mod layer;
mod lp_lrn;
mod mvn;
mod softmax;

use batch::check_inference_mode;
use layer::{stash_type, stat_shape};
use mvn::mvn_axes;
use softmax::softmax_axis;

/// The function of the softmax family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxFn {
    /// `exp(x - max) / Σ exp(x - max)`.
    Softmax,
    /// `x - max - log Σ exp(x - max)`.
    LogSoftmax,
    /// 1 at the first maximum of each slice, 0 elsewhere.
    Hardmax,
}

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Norm {
    /// `BatchNormalization(X, scale, B, mean, var)` with the given running
    /// statistics (inference mode).
    BatchNormalization {
        /// Added to the variance.
        epsilon: f32,
        /// `false` (opsets before 9, `spatial = 0`): the four parameters hold
        /// one value per `C × D1 × …` activation instead of one per channel.
        spatial: bool,
    },
    /// `InstanceNormalization(X, scale, B)`: per sample and channel over the spatial axes.
    InstanceNormalization {
        /// Added to the variance.
        epsilon: f32,
    },
    /// `LayerNormalization(X, Scale, B?)` over the axes from `axis` on, with
    /// the optional `Mean` and `InvStdDev` outputs.
    LayerNormalization {
        /// First normalized axis.
        axis: i64,
        /// Added to the variance.
        epsilon: f32,
        /// The dtype of `Mean` and `InvStdDev`.
        stash_type: DType,
    },
    /// `RMSNormalization(X, scale)`: `x / sqrt(mean(x²) + ε) · scale` over the
    /// axes from `axis` on (opset 23).
    RmsNormalization {
        /// First normalized axis.
        axis: i64,
        /// Added to the mean square.
        epsilon: f32,
    },
    /// `GroupNormalization(X, scale, bias)`: channels split into groups,
    /// normalized per sample and group.
    GroupNormalization {
        /// Number of channel groups.
        num_groups: usize,
        /// Added to the variance.
        epsilon: f32,
        /// Opset 21 on: `scale`/`bias` per channel; before: per group.
        per_channel: bool,
    },
    /// `LpNormalization`: `x / ‖x‖_p` along `axis`.
    LpNormalization {
        /// The normalized axis.
        axis: i64,
        /// 1 or 2.
        p: u8,
    },
    /// `MeanVarianceNormalization`: `(x - mean) / (std + 1e-9)` over `axes`.
    MeanVarianceNormalization {
        /// The reduced axes.
        axes: Vec<i64>,
    },
    /// `LRN`: local response normalization across channels.
    Lrn {
        /// Number of channels summed.
        size: usize,
        /// Scale of the sum of squares.
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Offset.
        bias: f32,
    },
    /// `Softmax`, `LogSoftmax` or `Hardmax`.
    Softmax {
        /// Which function.
        f: SoftmaxFn,
        /// The axis.
        axis: i64,
        /// Opsets before 13: the input is coerced to 2-D at `axis` and the
        /// function runs over everything from `axis` on.
        flatten: bool,
    },
}

impl Norm {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "RMSNormalization",
        "GroupNormalization",
        "LpNormalization",
        "MeanVarianceNormalization",
        "LRN",
        "Softmax",
        "LogSoftmax",
        "Hardmax",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Norm>> {
        in_family(ctx, Self::ONNX_OPS).then(|| Self::parse_known(ctx))
    }

    fn parse_known(ctx: &ParseCtx<'_>) -> Result<Norm> {
        let a = ctx.attrs;
        let eps = || a.float("epsilon", 1e-5);
        Ok(match ctx.op_type {
            "BatchNormalization" => {
                check_inference_mode(ctx)?;
                Norm::BatchNormalization {
                    epsilon: eps()?,
                    spatial: ctx.opset >= 9 || a.int("spatial", 1)? != 0,
                }
            }
            "InstanceNormalization" => Norm::InstanceNormalization { epsilon: eps()? },
            "LayerNormalization" => Norm::LayerNormalization {
                axis: a.int("axis", -1)?,
                epsilon: eps()?,
                stash_type: stash_type(a)?,
            },
            "RMSNormalization" => {
                stash_type(a)?;
                Norm::RmsNormalization {
                    axis: a.int("axis", -1)?,
                    epsilon: eps()?,
                }
            }
            "GroupNormalization" => {
                let g = a.int_req("num_groups")?;
                if g < 1 {
                    return Err(Error::attr(
                        "num_groups",
                        format!("must be at least 1, got {g}"),
                    ));
                }
                stash_type(a)?;
                Norm::GroupNormalization {
                    num_groups: usize::try_from(g)
                        .map_err(|_| Error::attr("num_groups", "is too large"))?,
                    epsilon: eps()?,
                    per_channel: ctx.opset >= 21,
                }
            }
            "LpNormalization" => {
                let p = a.int("p", 2)?;
                if p != 1 && p != 2 {
                    return Err(Error::attr("p", format!("must be 1 or 2, got {p}")));
                }
                Norm::LpNormalization {
                    axis: a.int("axis", -1)?,
                    p: p as u8,
                }
            }
            "MeanVarianceNormalization" => Norm::MeanVarianceNormalization {
                axes: a.ints_opt("axes")?.unwrap_or_else(|| vec![0, 2, 3]),
            },
            "LRN" => {
                let size = a.int_req("size")?;
                if size < 1 {
                    return Err(Error::attr(
                        "size",
                        format!("must be at least 1, got {size}"),
                    ));
                }
                Norm::Lrn {
                    size: usize::try_from(size).map_err(|_| Error::attr("size", "is too large"))?,
                    alpha: a.float("alpha", 1e-4)?,
                    beta: a.float("beta", 0.75)?,
                    bias: a.float("bias", 1.0)?,
                }
            }
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                let f = match ctx.op_type {
                    "Softmax" => SoftmaxFn::Softmax,
                    "LogSoftmax" => SoftmaxFn::LogSoftmax,
                    _ => SoftmaxFn::Hardmax,
                };
                let flatten = ctx.opset < 13;
                Norm::Softmax {
                    f,
                    axis: a.int("axis", if flatten { 1 } else { -1 })?,
                    flatten,
                }
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "{other} is not a normalization op"
                )));
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Shape rules.

fn check_float(d: DType, what: &str) -> Result<()> {
    if !d.is_float() {
        return Err(Error::Type(format!(
            "{what} must be a float tensor, got {d}"
        )));
    }
    Ok(())
}

/// `N × C × …`: the channel count and the size of one channel's plane.
fn channels(x: &[usize], what: &str) -> Result<(usize, usize, usize)> {
    if x.len() < 2 {
        return Err(Error::Shape(format!(
            "{what} must have rank at least 2 (N × C × …), got shape {x:?}"
        )));
    }
    Ok((x[0], x[1], numel(&x[2..])?))
}

/// Checks that `s` broadcasts to `x` without growing it (LayerNormalization's
/// and RMSNormalization's scale and bias).
fn check_broadcasts_to(s: &[usize], x: &[usize], what: &str) -> Result<()> {
    match broadcast_shapes(&[x, s]) {
        Ok(b) if b == x => Ok(()),
        _ => Err(Error::Shape(format!(
            "{what} of shape {s:?} does not broadcast to X's shape {x:?}"
        ))),
    }
}

impl Norm {
    /// Validates the operands and returns the output types.
    fn types(&self, tys: &[Option<&TensorType>]) -> Result<Vec<TensorType>> {
        let ty = |i: usize, what: &str| req(tys, i, what);
        let x = ty(0, "X")?;
        check_float(x.dtype, "X")?;
        let same_dtype = |t: &TensorType, what: &str| -> Result<()> {
            if t.dtype != x.dtype {
                return Err(Error::Type(format!(
                    "{what} is {} but X is {}",
                    t.dtype, x.dtype
                )));
            }
            Ok(())
        };
        let y = TensorType::new(x.dtype, x.shape.clone());
        Ok(match self {
            Norm::BatchNormalization { spatial, .. } => {
                check_arity(tys, 5, 5)?;
                let (_, c, _) = channels(&x.shape, "X")?;
                let want: Shape = if *spatial {
                    vec![c]
                } else {
                    x.shape[1..].to_vec()
                };
                for (i, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
                    let t = ty(i, what)?;
                    // Opset 15 lets the parameters have their own float types.
                    check_float(t.dtype, what)?;
                    if t.shape != want {
                        return Err(Error::Shape(format!(
                            "{what} must have shape {want:?}, got {:?}",
                            t.shape
                        )));
                    }
                }
                vec![y]
            }
            Norm::InstanceNormalization { .. } => {
                check_arity(tys, 3, 3)?;
                let (_, c, _) = channels(&x.shape, "X")?;
                for (i, what) in [(1, "scale"), (2, "B")] {
                    let t = ty(i, what)?;
                    same_dtype(t, what)?;
                    if t.shape != [c] {
                        return Err(Error::Shape(format!(
                            "{what} must have shape [{c}], got {:?}",
                            t.shape
                        )));
                    }
                }
                vec![y]
            }
            Norm::LayerNormalization {
                axis, stash_type, ..
            } => {
                check_arity(tys, 2, 3)?;
                let ax = norm_axis(*axis, x.shape.len())?;
                for (i, what) in [(1, "Scale"), (2, "B")] {
                    if let Some(t) = opt(tys, i) {
                        same_dtype(t, what)?;
                        check_broadcasts_to(&t.shape, &x.shape, what)?;
                    }
                }
                ty(1, "Scale")?;
                let stat = TensorType::new(*stash_type, stat_shape(&x.shape, ax));
                vec![y, stat.clone(), stat]
            }
            Norm::RmsNormalization { axis, .. } => {
                check_arity(tys, 2, 2)?;
                norm_axis(*axis, x.shape.len())?;
                let s = ty(1, "scale")?;
                check_float(s.dtype, "scale")?;
                check_broadcasts_to(&s.shape, &x.shape, "scale")?;
                // Y takes the scale's type (V), not X's.
                vec![TensorType::new(s.dtype, x.shape.clone())]
            }
            Norm::GroupNormalization {
                num_groups,
                per_channel,
                ..
            } => {
                check_arity(tys, 3, 3)?;
                let (_, c, _) = channels(&x.shape, "X")?;
                if *num_groups == 0 || !c.is_multiple_of(*num_groups) {
                    return Err(Error::Shape(format!(
                        "num_groups {num_groups} does not divide the {c} channels"
                    )));
                }
                let want = if *per_channel { c } else { *num_groups };
                for (i, what) in [(1, "scale"), (2, "bias")] {
                    let t = ty(i, what)?;
                    same_dtype(t, what)?;
                    if t.shape != [want] {
                        return Err(Error::Shape(format!(
                            "{what} must have shape [{want}], got {:?}",
                            t.shape
                        )));
                    }
                }
                vec![y]
            }
            Norm::LpNormalization { axis, .. } => {
                check_arity(tys, 1, 1)?;
                norm_axis(*axis, x.shape.len())?;
                vec![y]
            }
            Norm::MeanVarianceNormalization { axes } => {
                check_arity(tys, 1, 1)?;
                mvn_axes(axes, x.shape.len())?;
                vec![y]
            }
            Norm::Lrn { size, .. } => {
                check_arity(tys, 1, 1)?;
                if *size == 0 {
                    return Err(Error::attr("size", "must be at least 1"));
                }
                channels(&x.shape, "X")?;
                vec![y]
            }
            Norm::Softmax { axis, flatten, .. } => {
                check_arity(tys, 1, 1)?;
                softmax_axis(*axis, x.shape.len(), *flatten)?;
                vec![y]
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Kernels (f64 throughout).

/// The elements as `f64`, requiring a float tensor.
fn values(t: &Tensor, what: &str) -> Result<Vec<f64>> {
    check_float(t.dtype(), what)?;
    Ok(t.to_f64_vec())
}

/// Rounds `v` to a float dtype.
fn make(dtype: DType, shape: Shape, v: Vec<f64>) -> Result<Tensor> {
    check_float(dtype, "the result")?;
    dispatch_dtype!(dtype, T => {
        Tensor::from_vec(shape, v.into_iter().map(<T as Elem>::from_f64).collect::<Vec<T>>())
    })
}

/// Mean and population variance of a slice (two passes).
fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Values of `t` broadcast to `shape` (`t` must broadcast to it).
fn broadcast_values(t: &Tensor, shape: &[usize], what: &str) -> Result<Vec<f64>> {
    check_broadcasts_to(t.shape(), shape, what)?;
    let v = values(t, what)?;
    Ok(broadcast_index_map(t.shape(), shape)
        .into_iter()
        .map(|i| v[i])
        .collect())
}

impl OpDef for Norm {
    fn name(&self) -> &'static str {
        match self {
            Norm::BatchNormalization { .. } => "BatchNormalization",
            Norm::InstanceNormalization { .. } => "InstanceNormalization",
            Norm::LayerNormalization { .. } => "LayerNormalization",
            Norm::RmsNormalization { .. } => "RMSNormalization",
            Norm::GroupNormalization { .. } => "GroupNormalization",
            Norm::LpNormalization { .. } => "LpNormalization",
            Norm::MeanVarianceNormalization { .. } => "MeanVarianceNormalization",
            Norm::Lrn { .. } => "LRN",
            Norm::Softmax {
                f: SoftmaxFn::Softmax,
                ..
            } => "Softmax",
            Norm::Softmax {
                f: SoftmaxFn::LogSoftmax,
                ..
            } => "LogSoftmax",
            Norm::Softmax {
                f: SoftmaxFn::Hardmax,
                ..
            } => "Hardmax",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Norm::BatchNormalization { epsilon, spatial } => {
                let mut v = vec![("epsilon", epsilon.to_string())];
                if !spatial {
                    v.push(("spatial", "0".to_string()));
                }
                v
            }
            Norm::InstanceNormalization { epsilon } => vec![("epsilon", epsilon.to_string())],
            Norm::LayerNormalization {
                axis,
                epsilon,
                stash_type,
            } => vec![
                ("axis", axis.to_string()),
                ("epsilon", epsilon.to_string()),
                ("stash_type", stash_type.name().to_string()),
            ],
            Norm::RmsNormalization { axis, epsilon } => {
                vec![("axis", axis.to_string()), ("epsilon", epsilon.to_string())]
            }
            Norm::GroupNormalization {
                num_groups,
                epsilon,
                per_channel,
            } => vec![
                ("num_groups", num_groups.to_string()),
                ("epsilon", epsilon.to_string()),
                (
                    "affine",
                    if *per_channel { "channel" } else { "group" }.to_string(),
                ),
            ],
            Norm::LpNormalization { axis, p } => {
                vec![("axis", axis.to_string()), ("p", p.to_string())]
            }
            Norm::MeanVarianceNormalization { axes } => vec![("axes", fmt_list(axes))],
            Norm::Lrn {
                size,
                alpha,
                beta,
                bias,
            } => vec![
                ("size", size.to_string()),
                ("alpha", alpha.to_string()),
                ("beta", beta.to_string()),
                ("bias", bias.to_string()),
            ],
            Norm::Softmax {
                f: _,
                axis,
                flatten,
            } => {
                let mut v = vec![("axis", axis.to_string())];
                if *flatten {
                    v.push(("coerce_2d", "1".to_string()));
                }
                v
            }
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        vec![]
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|i| i.ty)).collect();
        self.types(&tys)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        // The same validation as inference, so a kernel never sees operands it
        // cannot handle.
        let tys = tensor_types(inputs);
        let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
        self.types(&refs)?;
        let x = req(inputs, 0, "X")?;
        let out = match self {
            Norm::BatchNormalization { epsilon, spatial } => {
                let p = [
                    req(inputs, 1, "scale")?,
                    req(inputs, 2, "B")?,
                    req(inputs, 3, "mean")?,
                    req(inputs, 4, "var")?,
                ];
                batch::batch_norm(x, p, *epsilon, *spatial)?
            }
            Norm::InstanceNormalization { epsilon } => batch::eval_instance_norm(inputs, *epsilon)?,
            Norm::LayerNormalization {
                axis,
                epsilon,
                stash_type,
            } => {
                return layer::layer_norm(
                    x,
                    req(inputs, 1, "Scale")?,
                    opt(inputs, 2),
                    *axis,
                    *epsilon,
                    *stash_type,
                );
            }
            Norm::RmsNormalization { axis, epsilon } => {
                layer::rms_norm(x, req(inputs, 1, "scale")?, *axis, *epsilon)?
            }
            Norm::GroupNormalization {
                num_groups,
                epsilon,
                per_channel,
            } => batch::eval_group_norm(inputs, *num_groups, *epsilon, *per_channel)?,
            Norm::LpNormalization { axis, p } => lp_lrn::lp_norm(x, *axis, *p)?,
            Norm::MeanVarianceNormalization { axes } => mvn::mvn(x, axes)?,
            Norm::Lrn {
                size,
                alpha,
                beta,
                bias,
            } => lp_lrn::lrn(x, *size, *alpha, *beta, *bias)?,
            Norm::Softmax { f, axis, flatten } => softmax::softmax(x, *f, *axis, *flatten)?,
        };
        Ok(vec![out])
    }

    fn macs(&self, _inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        // A handful of operations per element; the exact count is a backend concern.
        let n = outputs.first().and_then(|t| t.numel().ok()).unwrap_or(0) as u64;
        match self {
            Norm::Lrn { size, .. } => n * (*size as u64 + 2),
            Norm::BatchNormalization { .. }
            | Norm::InstanceNormalization { .. }
            | Norm::LayerNormalization { .. }
            | Norm::RmsNormalization { .. }
            | Norm::GroupNormalization { .. }
            | Norm::LpNormalization { .. }
            | Norm::MeanVarianceNormalization { .. }
            | Norm::Softmax { .. } => 4 * n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn parse_at(
        op: &str,
        opset: i64,
        attrs: Vec<(&str, AttrValue)>,
        num_outputs: usize,
    ) -> Result<Norm> {
        crate::ops::test_support::parse_node(Norm::parse, op, opset, attrs, 1, num_outputs).unwrap()
    }

    fn parse(op: &str, attrs: Vec<(&str, AttrValue)>) -> Norm {
        parse_at(op, 23, attrs, 1).unwrap()
    }

    /// Evaluates, checks against inference and returns the outputs.
    fn run(op: &Norm, inputs: &[&Tensor]) -> Vec<Tensor> {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        let (got, want) = crate::ops::test_support::infer_and_eval(op, &ins, false).unwrap();
        assert_eq!(got.len(), want.len());
        got
    }

    fn close(got: &Tensor, want: &[f64]) {
        let g = got.to_f64_vec();
        assert_eq!(g.len(), want.len(), "{got:?}");
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "got {g:?}, want {want:?}");
        }
    }

    #[test]
    fn batch_norm_inference() {
        let x = t(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
        let s = t(&[2], &[1., 2.]);
        let b = t(&[2], &[0., 1.]);
        let m = t(&[2], &[1., 3.]);
        let v = t(&[2], &[4., 1.]);
        let op = parse_at(
            "BatchNormalization",
            15,
            vec![("epsilon", AttrValue::Float(0.0))],
            1,
        )
        .unwrap();
        close(&run(&op, &[&x, &s, &b, &m, &v])[0], &[0., 0.5, 1., 3.]);
    }

    #[test]
    fn batch_norm_training_is_rejected() {
        let r = parse_at(
            "BatchNormalization",
            15,
            vec![("training_mode", AttrValue::Int(1))],
            3,
        );
        assert!(matches!(r, Err(Error::Unsupported(_))));
        assert!(matches!(
            parse_at("BatchNormalization", 9, vec![], 5),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            parse_at("BatchNormalization", 6, vec![], 1),
            Err(Error::Unsupported(_))
        ));
        assert!(
            parse_at(
                "BatchNormalization",
                6,
                vec![("is_test", AttrValue::Int(1))],
                1
            )
            .is_ok()
        );
    }

    #[test]
    fn instance_and_group_norm() {
        let x = t(&[1, 2, 2], &[1., 3., 10., 12.]);
        let op = parse(
            "InstanceNormalization",
            vec![("epsilon", AttrValue::Float(0.0))],
        );
        let (s, b) = (t(&[2], &[2., 1.]), t(&[2], &[0., 5.]));
        close(&run(&op, &[&x, &s, &b])[0], &[-2., 2., 4., 6.]);
        // One group over both channels: mean 6.5, variance 21.25.
        let op = parse(
            "GroupNormalization",
            vec![
                ("num_groups", AttrValue::Int(1)),
                ("epsilon", AttrValue::Float(0.0)),
            ],
        );
        let sd = 21.25f64.sqrt();
        let y = run(&op, &[&x, &s, &b]).remove(0);
        close(
            &y,
            &[-5.5 / sd * 2., -3.5 / sd * 2., 3.5 / sd + 5., 5.5 / sd + 5.],
        );
        // Opset 18 takes one scale per group.
        let op = parse_at(
            "GroupNormalization",
            18,
            vec![("num_groups", AttrValue::Int(1))],
            1,
        )
        .unwrap();
        assert!(op.eval(&[Some(&x), Some(&s), Some(&b)]).is_err());
        let (s1, b1) = (t(&[1], &[2.]), t(&[1], &[1.]));
        let y = run(&op, &[&x, &s1, &b1]).remove(0);
        close(
            &y,
            &[
                -5.5 / sd * 2. + 1.,
                -3.5 / sd * 2. + 1.,
                3.5 / sd * 2. + 1.,
                5.5 / sd * 2. + 1.,
            ],
        );
    }

    #[test]
    fn layer_norm_outputs() {
        let x = t(&[2, 2], &[1., 3., 2., 4.]);
        let s = t(&[2], &[1., 1.]);
        let op = parse(
            "LayerNormalization",
            vec![("epsilon", AttrValue::Float(0.0))],
        );
        let out = run(&op, &[&x, &s]);
        close(&out[0], &[-1., 1., -1., 1.]);
        close(&out[1], &[2., 3.]);
        close(&out[2], &[1., 1.]);
        assert_eq!(out[1].shape(), &[2, 1]);
        assert_eq!(out[2].dtype(), DType::F32);
        let op = parse("RMSNormalization", vec![("epsilon", AttrValue::Float(0.0))]);
        let x = t(&[1, 2], &[3., 4.]);
        let r = (12.5f64).sqrt();
        close(&run(&op, &[&x, &s])[0], &[3. / r, 4. / r]);
    }

    #[test]
    fn softmax_opset_semantics() {
        let x = t(&[2, 2], &[0., 0., 0., 0.]);
        // Opset 13: per row.
        close(&run(&parse("Softmax", vec![]), &[&x])[0], &[0.5; 4]);
        // Opset 11, axis 0: the whole tensor is one row.
        let op = parse_at("Softmax", 11, vec![("axis", AttrValue::Int(0))], 1).unwrap();
        close(&run(&op, &[&x])[0], &[0.25; 4]);
        let op = parse("LogSoftmax", vec![]);
        let l = (0.5f64).ln();
        close(&run(&op, &[&x])[0], &[l; 4]);
        let op = parse("Hardmax", vec![("axis", AttrValue::Int(0))]);
        let x = t(&[2, 2], &[1., 5., 1., 2.]);
        close(&run(&op, &[&x])[0], &[1., 1., 0., 0.]);
    }

    #[test]
    fn lp_mvn_lrn() {
        let x = t(&[2, 2], &[3., -4., 0., 0.]);
        close(
            &run(&parse("LpNormalization", vec![]), &[&x])[0],
            &[0.6, -0.8, 0., 0.],
        );
        let op = parse("LpNormalization", vec![("p", AttrValue::Int(1))]);
        close(&run(&op, &[&x])[0], &[3. / 7., -4. / 7., 0., 0.]);
        let op = parse(
            "MeanVarianceNormalization",
            vec![("axes", AttrValue::Ints(vec![1]))],
        );
        close(&run(&op, &[&x])[0], &[1., -1., 0., 0.]);
        // size 1: y = x / (bias + alpha x²)^beta.
        let op = parse(
            "LRN",
            vec![
                ("size", AttrValue::Int(1)),
                ("alpha", AttrValue::Float(1.)),
                ("beta", AttrValue::Float(1.)),
            ],
        );
        let x = t(&[1, 2, 1], &[1., 2.]);
        close(&run(&op, &[&x])[0], &[0.5, 0.4]);
        // size 2 sums the channel and the next one.
        let op = parse(
            "LRN",
            vec![
                ("size", AttrValue::Int(2)),
                ("alpha", AttrValue::Float(2.)),
                ("beta", AttrValue::Float(1.)),
            ],
        );
        close(&run(&op, &[&x])[0], &[1. / 6., 2. / 5.]);
    }

    #[test]
    fn degenerate_operands() {
        let x = t(&[1, 2, 1], &[1., 2.]);
        let op = Norm::GroupNormalization {
            num_groups: 0,
            epsilon: 0.0,
            per_channel: true,
        };
        assert!(
            op.eval(&[Some(&x), Some(&t(&[2], &[1.; 2])), Some(&t(&[2], &[0.; 2]))])
                .is_err()
        );
        let op = Norm::Lrn {
            size: 0,
            alpha: 1.0,
            beta: 1.0,
            bias: 1.0,
        };
        assert!(op.eval(&[Some(&x)]).is_err());
        // Empty tensors stay empty.
        let e = t(&[0, 3], &[]);
        assert_eq!(run(&parse("Softmax", vec![]), &[&e])[0].shape(), &[0, 3]);
        let e = t(&[2, 0], &[]);
        assert_eq!(run(&parse("Hardmax", vec![]), &[&e])[0].shape(), &[2, 0]);
        let out = run(&parse("LayerNormalization", vec![]), &[&e, &t(&[0], &[])]);
        assert_eq!(out[1].shape(), &[2, 1]);
    }

    #[test]
    fn bad_operands_are_errors() {
        let x = t(&[2, 3], &[0.; 6]);
        let op = parse("LayerNormalization", vec![("axis", AttrValue::Int(2))]);
        assert!(op.eval(&[Some(&x), Some(&t(&[3], &[1.; 3]))]).is_err());
        let op = parse("LayerNormalization", vec![]);
        assert!(op.eval(&[Some(&x), Some(&t(&[2], &[1.; 2]))]).is_err());
        let xi = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
        assert!(parse("Softmax", vec![]).eval(&[Some(&xi)]).is_err());
    }
}
