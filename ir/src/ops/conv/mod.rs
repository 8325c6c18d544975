//! Convolutions and pooling: `Conv`, `ConvTranspose`, `MaxPool`, `AveragePool`,
//! `LpPool`, their `Global*` forms and `MaxUnpool`.
//!
//! All of them slide a window over the spatial axes of an `N × C × D1 × … × Dn`
//! tensor. [`Window`] holds the attributes that describe the window and `Geom`
//! the geometry they resolve to for one input shape (kernel, strides,
//! dilations, begin/end pads, output size); shape inference and evaluation both
//! go through the same resolution, so they cannot disagree.
//!
//! `Conv` runs as im2col followed by a cache-blocked matrix product, and
//! `ConvTranspose` as a matrix product followed by col2im. Like every kernel
//! of the op table they compute in `f64` and round once: as the oracle they
//! should be closer to the exact result than the f32 code they check, and the
//! scalar loops of a dev build run no slower in f64 (the 7×7/2 stem
//! convolution of a ResNet on a 224×224 image takes ~40 ms). The pools
//! precompute, per output position, the flat offsets of the input elements
//! their window covers, and reuse that table for every `N × C` plane.
//!
//! One file per op or small group of related ops holds that op's parser,
//! shape rule (`infer_*`), evaluation (`eval_*`) and work estimate, with its
//! tests; [`kernel`] holds the product and patch kernels both convolutions
//! share. This file keeps the closed [`ConvOp`] enum, the op table that
//! declares each op's name (its ONNX spelling) once, and the exhaustive
//! dispatch of [`OpDef`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, fmt_list};
use crate::tensor::Tensor;

mod conv_transpose;
mod convolution;
mod kernel;
mod pool;
mod unpool;

/// The window attributes and their resolution, shared with the quantized
/// convolutions and the lowering (see [`crate::window`]).
pub use crate::window::{AutoPad, Window};

/// The pooling function of a windowed pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolFn {
    /// Maximum; `storage_order` 1 makes the optional indices column-major.
    Max {
        /// Whether the indices output is column-major within each plane.
        column_major: bool,
    },
    /// Mean over the window.
    Average {
        /// Whether padded cells count in the divisor.
        count_include_pad: bool,
    },
    /// `(Σ |x|^p)^(1/p)` over the window.
    Lp {
        /// The exponent.
        p: f32,
    },
}

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum ConvOp {
    /// `Conv(X, W, B?)`: grouped N-D convolution (cross-correlation).
    Conv {
        /// Window attributes.
        window: Window,
        /// Number of channel groups.
        group: usize,
    },
    /// `ConvTranspose(X, W, B?)`: the gradient of `Conv` with respect to its input.
    ConvTranspose {
        /// Window attributes.
        window: Window,
        /// Number of channel groups.
        group: usize,
        /// Extra cells added at the end of each spatial axis.
        output_padding: Vec<usize>,
        /// Requested spatial output shape; derives the pads when present.
        output_shape: Option<Vec<usize>>,
    },
    /// `MaxPool`, `AveragePool` or `LpPool`.
    Pool {
        /// The pooling function.
        f: PoolFn,
        /// Window attributes.
        window: Window,
        /// Round the output size up instead of down.
        ceil_mode: bool,
        /// Whether the second output (MaxPool's `Indices`) is wanted.
        indices: bool,
    },
    /// `GlobalMaxPool`, `GlobalAveragePool` or `GlobalLpPool`: the pool over
    /// all spatial axes.
    GlobalPool {
        /// The pooling function (`Average` counts every element).
        f: PoolFn,
    },
    /// `MaxUnpool(X, I, output_shape?)`: scatters pooled values back.
    MaxUnpool {
        /// Window size per spatial axis.
        kernel_shape: Vec<usize>,
        /// Step between windows (empty: ones).
        strides: Vec<usize>,
        /// Begin/end pads (empty: zeros).
        pads: Vec<usize>,
    },
}

#[rustfmt::skip]
family_ops! {
    ConvOp, "conv";
    ConvOp::Conv { .. }                                  => "Conv",              convolution::parse_conv;
    ConvOp::ConvTranspose { .. }                         => "ConvTranspose",     conv_transpose::parse_conv_transpose;
    ConvOp::Pool { f: PoolFn::Max { .. }, .. }           => "MaxPool",           pool::parse_max_pool;
    ConvOp::Pool { f: PoolFn::Average { .. }, .. }       => "AveragePool",       pool::parse_average_pool;
    ConvOp::Pool { f: PoolFn::Lp { .. }, .. }            => "LpPool",            pool::parse_lp_pool;
    ConvOp::GlobalPool { f: PoolFn::Max { .. } }         => "GlobalMaxPool",     pool::parse_global_max_pool;
    ConvOp::GlobalPool { f: PoolFn::Average { .. } }     => "GlobalAveragePool", pool::parse_global_average_pool;
    ConvOp::GlobalPool { f: PoolFn::Lp { .. } }          => "GlobalLpPool",      pool::parse_global_lp_pool;
    ConvOp::MaxUnpool { .. }                             => "MaxUnpool",         unpool::parse_max_unpool;
}

// ---------------------------------------------------------------------------
// Helpers the op files share.

/// Reads and checks the `group` attribute of the convolutions.
fn parse_group(ctx: &ParseCtx<'_>) -> Result<usize> {
    let g = ctx.attrs.int("group", 1)?;
    if g < 1 {
        return Err(Error::attr("group", format!("must be at least 1, got {g}")));
    }
    usize::try_from(g).map_err(|_| Error::attr("group", "is too large"))
}

/// Rejects `group = 0` (parsing already does; this covers ops built directly).
fn check_group(group: usize) -> Result<()> {
    if group == 0 {
        return Err(Error::attr("group", "must be at least 1"));
    }
    Ok(())
}

/// Splits `N × C × spatial…`, requiring at least `min_spatial` spatial axes.
fn split_nc<'a>(
    x: &'a [usize],
    what: &str,
    min_spatial: usize,
) -> Result<(usize, usize, &'a [usize])> {
    if x.len() < 2 + min_spatial {
        return Err(Error::Shape(format!(
            "{what} must have rank at least {} (N × C × spatial…), got shape {x:?}",
            2 + min_spatial
        )));
    }
    Ok((x[0], x[1], &x[2..]))
}

fn check_float(d: DType, what: &str) -> Result<()> {
    if !d.is_float() {
        return Err(Error::Type(format!(
            "{what} must be a float tensor, got {d}"
        )));
    }
    Ok(())
}

/// The elements of the product `W` holds per output channel (`Conv`) or per
/// input channel (`ConvTranspose`): everything but its first dim.
fn per_channel(w: Option<&TensorType>) -> u64 {
    w.map(|w| w.shape.iter().skip(1).product::<usize>())
        .unwrap_or(0) as u64
}

/// The element count of an optional operand or output type.
fn elems(t: Option<&TensorType>) -> u64 {
    t.and_then(|t| t.numel().ok()).unwrap_or(0) as u64
}

// ---------------------------------------------------------------------------

impl OpDef for ConvOp {
    fn name(&self) -> &'static str {
        op_name(self)
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        match self {
            ConvOp::Conv { window, group } => convolution::conv_attrs(window, *group, &mut v),
            ConvOp::ConvTranspose {
                window,
                group,
                output_padding,
                output_shape,
            } => {
                convolution::conv_attrs(window, *group, &mut v);
                if !output_padding.is_empty() {
                    v.push(("output_padding", fmt_list(output_padding)));
                }
                if let Some(s) = output_shape {
                    v.push(("output_shape", fmt_list(s)));
                }
            }
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices: _,
            } => {
                window.attrs(&mut v);
                if *ceil_mode {
                    v.push(("ceil_mode", "1".to_string()));
                }
                pool::pool_fn_attrs(*f, &mut v);
            }
            ConvOp::GlobalPool { f } => pool::pool_fn_attrs(*f, &mut v),
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => unpool::max_unpool_attrs(kernel_shape, strides, pads, &mut v),
        }
        v
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            ConvOp::MaxUnpool { .. } => vec![2],
            ConvOp::Conv { .. }
            | ConvOp::ConvTranspose { .. }
            | ConvOp::Pool { .. }
            | ConvOp::GlobalPool { .. } => {
                vec![]
            }
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match self {
            ConvOp::Conv { window, group } => convolution::infer_conv(window, *group, inputs),
            ConvOp::ConvTranspose {
                window,
                group,
                output_padding,
                output_shape,
            } => conv_transpose::infer_conv_transpose(
                window,
                *group,
                output_padding,
                output_shape.as_deref(),
                inputs,
            ),
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices,
            } => pool::infer_pool(*f, window, *ceil_mode, *indices, inputs),
            ConvOp::GlobalPool { f: _ } => pool::infer_global_pool(inputs),
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => unpool::infer_max_unpool(kernel_shape, strides, pads, inputs),
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            ConvOp::Conv { window, group } => convolution::eval_conv(window, *group, inputs),
            ConvOp::ConvTranspose {
                window,
                group,
                output_padding,
                output_shape,
            } => conv_transpose::eval_conv_transpose(
                window,
                *group,
                output_padding,
                output_shape.as_deref(),
                inputs,
            ),
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices,
            } => pool::eval_pool(self.name(), *f, window, *ceil_mode, *indices, inputs),
            ConvOp::GlobalPool { f } => pool::eval_global_pool(self.name(), *f, inputs),
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => unpool::eval_max_unpool(kernel_shape, strides, pads, inputs),
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let out = elems(outputs.first());
        let w = inputs.get(1).copied().flatten();
        let x = elems(inputs.first().copied().flatten());
        match self {
            // Every output element sums C/group · prod(kernel) products, which
            // is exactly W's size per output channel.
            ConvOp::Conv { .. } => out * per_channel(w),
            // Every input element is scattered into (M/group) · prod(kernel) outputs.
            ConvOp::ConvTranspose { .. } => x * per_channel(w),
            ConvOp::Pool { window, .. } => {
                out * window
                    .kernel_shape
                    .as_ref()
                    .map(|k| k.iter().product::<usize>())
                    .unwrap_or(1) as u64
            }
            ConvOp::GlobalPool { .. } | ConvOp::MaxUnpool { .. } => x,
        }
    }
}

/// Helpers the per-op test modules share.
#[cfg(test)]
mod test_util {
    use super::*;
    use crate::attrs::AttrValue;
    use crate::shape::numel;

    pub(super) fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    pub(super) fn iota(shape: &[usize]) -> Tensor {
        let n = numel(shape).unwrap();
        t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    pub(super) fn parse(op: &str, attrs: Vec<(&str, AttrValue)>, num_outputs: usize) -> ConvOp {
        crate::ops::test_support::parse_node(ConvOp::parse, op, 22, attrs, 3, num_outputs)
            .unwrap()
            .unwrap()
    }

    pub(super) fn ints(v: &[i64]) -> AttrValue {
        AttrValue::Ints(v.to_vec())
    }

    /// Evaluates and checks the result against inference and `want`.
    pub(super) fn run(op: &ConvOp, inputs: &[&Tensor]) -> Vec<Tensor> {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        crate::ops::test_support::infer_and_eval(op, &ins, true)
            .unwrap()
            .0
    }

    pub(super) fn close(got: &Tensor, want: &[f32]) {
        let g = got.to_f64_vec();
        assert_eq!(g.len(), want.len(), "{got:?}");
        for (a, b) in g.iter().zip(want) {
            assert!((a - *b as f64).abs() < 1e-4, "got {g:?}, want {want:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn degenerate_operands_are_errors_or_empty() {
        let x = iota(&[1, 2, 4, 4]);
        let w = iota(&[2, 2, 1, 1]);
        let zero_strides = Window {
            kernel_shape: None,
            strides: vec![0, 0],
            dilations: vec![],
            pads: vec![],
            auto_pad: AutoPad::NotSet,
        };
        let conv = ConvOp::Conv {
            window: zero_strides.clone(),
            group: 1,
        };
        assert!(conv.eval(&[Some(&x), Some(&w)]).is_err());
        let plain = Window {
            strides: vec![],
            ..zero_strides
        };
        let conv = ConvOp::Conv {
            window: plain.clone(),
            group: 0,
        };
        assert!(conv.eval(&[Some(&x), Some(&w)]).is_err());
        let convt = ConvOp::ConvTranspose {
            window: plain,
            group: 0,
            output_padding: vec![],
            output_shape: None,
        };
        assert!(convt.eval(&[Some(&x), Some(&w)]).is_err());
        // An empty batch gives an empty result.
        let op = parse("Conv", vec![("pads", ints(&[1, 1, 1, 1]))], 1);
        let y = run(&op, &[&iota(&[0, 2, 4, 4]), &iota(&[3, 2, 3, 3])]).remove(0);
        assert_eq!(y.shape(), &[0, 3, 4, 4]);
        // A window entirely in the padding pools nothing.
        let op = parse(
            "MaxPool",
            vec![("kernel_shape", ints(&[1])), ("pads", ints(&[1, 0]))],
            2,
        );
        let out = run(&op, &[&t(&[1, 1, 1], &[7.])]);
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[f32::NEG_INFINITY, 7.]);
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[-1, 0]);
    }
}
