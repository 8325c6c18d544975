//! Shape and data-movement ops: Reshape, Transpose, Concat, Split, Slice, the
//! Gather/Scatter family, Expand, Tile, Pad, Resize and the small shape and
//! constant generators (Shape, Size, Range, ConstantOfShape, EyeLike, …).
//!
//! Almost every kernel here moves elements without arithmetic, so kernels are
//! written once over `T: Copy` and instantiated for every dtype with
//! [`dispatch!`]. Two shared kernels do most of the work:
//! [`view::copy_view`] copies a strided view of a buffer (offset, per-dimension
//! sizes and strides that may be zero or negative), merging contiguous
//! dimensions and copying whole runs with `extend_from_slice`; it serves
//! Transpose, Slice, Split, Expand, Tile and the depth/space shuffles.
//! [`view::remap`] builds an output from one index map per axis (with holes filled
//! by a constant) and serves Pad, nearest Resize and CenterCropPad.
//!
//! Shapes are static in this IR: the operands shape inference needs (Reshape's
//! shape, Slice's starts, Pad's pads, …) are listed by `const_operands` and
//! must be constants. `eval` re-runs `infer` with every operand's value, so the
//! kernels only ever see validated parameters and agree with the inferred
//! types by construction.
//!
//! One file per op or small group of related ops holds that op's parser,
//! shape rule (`infer_*`) and evaluation (`eval_*`), with its tests; this file
//! keeps the closed [`Layout`] enum, the op table that declares each op's name
//! (its ONNX spelling) once, and the exhaustive dispatch of [`OpDef`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, const_input, fmt_list, opt, req, tensor_types};
use crate::shape::{Shape, norm_axis};
use crate::tensor::Tensor;
use crate::{dispatch, shape_err, type_err};

/// Builds a tensor from a dtype-generic kernel result.
macro_rules! map_data {
    ($x:expr, $v:ident, $T:ident => $body:expr) => {
        dispatch!($x.data(), $v, $T => <$T as Elem>::wrap($body))
    };
}

mod concat_split;
mod dropout;
mod expand_tile;
mod gather;
mod generate;
mod masks;
mod pad;
mod reshape;
mod resize;
mod scatter;
mod select;
mod slice;
mod transpose;
mod view;

pub use pad::{PadAttrs, PadMode, pad_amounts, pad_axis_map};
pub use resize::{AspectPolicy, CoordMode, InterpMode, NearestMode, ResizeAttrs, ResizeForm};
pub use scatter::Reduction;
pub use slice::{SliceAttrs, SliceAxis, slice_plan};

/// The shape and data-movement family.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// `Reshape(data, shape)`: 0 copies the input dim (unless `allowzero`), -1 is inferred.
    Reshape {
        /// A 0 in `shape` is a literal zero dim.
        allowzero: bool,
    },
    /// `Flatten`: to 2-D, splitting the dims at `axis`.
    Flatten {
        /// Dims before `axis` form the first output dim.
        axis: i64,
    },
    /// `Transpose` by `perm` (default: reversed dims).
    Transpose {
        /// The permutation.
        perm: Option<Vec<i64>>,
    },
    /// `Squeeze`: removes size-1 dims (the given ones, or all).
    Squeeze {
        /// The axes attribute of opsets before 13 (later ones take an input).
        axes: Option<Vec<i64>>,
    },
    /// `Unsqueeze`: inserts size-1 dims.
    Unsqueeze {
        /// The axes attribute of opsets before 13 (later ones take an input).
        axes: Option<Vec<i64>>,
    },
    /// `Concat` along `axis`.
    Concat {
        /// The joined axis.
        axis: i64,
    },
    /// `Split` along `axis` into `outputs` parts.
    Split {
        /// The split axis.
        axis: i64,
        /// The `split` attribute of opsets before 13 (later ones take an input).
        split: Option<Vec<i64>>,
        /// How many outputs the node has.
        outputs: usize,
        /// Opset 18's `num_outputs` form: a last part smaller than the others is allowed.
        uneven: bool,
    },
    /// `Slice`; the attribute form before opset 10, inputs after.
    Slice {
        /// The attributes of opsets before 10.
        attrs: Option<SliceAttrs>,
    },
    /// `Gather(data, indices)` along `axis`.
    Gather {
        /// The indexed axis.
        axis: i64,
    },
    /// `GatherElements(data, indices)` along `axis`.
    GatherElements {
        /// The indexed axis.
        axis: i64,
    },
    /// `GatherND(data, indices)`.
    GatherND {
        /// Leading dims shared by data and indices.
        batch_dims: i64,
    },
    /// `ScatterND(data, indices, updates)`.
    ScatterND {
        /// How updates combine with data.
        reduction: Reduction,
    },
    /// `ScatterElements(data, indices, updates)`, and the older `Scatter`.
    ScatterElements {
        /// The indexed axis.
        axis: i64,
        /// How updates combine with data.
        reduction: Reduction,
        /// Spelled `Scatter` (opsets 9 and 10).
        legacy: bool,
    },
    /// `Expand(input, shape)` with bidirectional broadcasting.
    Expand,
    /// `Tile(input, repeats)`.
    Tile,
    /// `Pad(data, pads, constant_value?, axes?)`.
    Pad {
        /// Border mode.
        mode: PadMode,
        /// The attributes of opsets before 11.
        attrs: Option<PadAttrs>,
    },
    /// `Shape`: the dims `start..end` as an i64 vector.
    Shape {
        /// First dim (negative counts from the end).
        start: i64,
        /// One past the last dim (default: rank).
        end: Option<i64>,
    },
    /// `Size`: the element count as an i64 scalar.
    Size,
    /// `Range(start, limit, delta)`.
    Range {
        /// Opset 27 with `stash_type` float: f16/bf16 ranges compute in f32.
        stash_f32: bool,
    },
    /// `ConstantOfShape(shape)` filled with `value`.
    ConstantOfShape {
        /// The one-element fill tensor (default: f32 zero).
        value: Option<Tensor>,
    },
    /// `Identity`.
    Identity,
    /// `Dropout` at inference: the identity, with an all-true mask.
    Dropout {
        /// How many outputs the node has (the mask is optional).
        outputs: usize,
        /// Opsets before 10 give the mask the input's dtype instead of bool.
        mask_like_input: bool,
    },
    /// `DepthToSpace` (NCHW).
    DepthToSpace {
        /// The block size.
        blocksize: usize,
        /// Column-row-depth order instead of depth-column-row.
        crd: bool,
    },
    /// `SpaceToDepth` (NCHW).
    SpaceToDepth {
        /// The block size.
        blocksize: usize,
        /// Column-row-depth order (opset 28) instead of depth-column-row.
        crd: bool,
    },
    /// `Resize`.
    Resize(Box<ResizeAttrs>),
    /// `Upsample` (opsets 7 to 9).
    Upsample(Box<ResizeAttrs>),
    /// `OneHot(indices, depth, values)`.
    OneHot {
        /// Where the one-hot dim is inserted.
        axis: i64,
    },
    /// `NonZero`: the coordinates of the non-zero elements (input must be constant).
    NonZero,
    /// `Trilu(input, k?)`: keeps the upper or lower triangle of the last two dims.
    Trilu {
        /// Keep the upper triangle.
        upper: bool,
    },
    /// `EyeLike`: an identity-like matrix of the input's shape.
    EyeLike {
        /// The output dtype (default: the input's).
        dtype: Option<DType>,
        /// Diagonal offset.
        k: i64,
    },
    /// `Compress(input, condition)` (condition must be constant).
    Compress {
        /// The axis; flattens the input when absent.
        axis: Option<i64>,
    },
    /// `ReverseSequence(input, sequence_lens)`.
    ReverseSequence {
        /// The batch axis (0 or 1).
        batch_axis: usize,
        /// The time axis (0 or 1).
        time_axis: usize,
    },
    /// `CenterCropPad(input, shape)`.
    CenterCropPad {
        /// The axes `shape` refers to (default: all).
        axes: Option<Vec<i64>>,
    },
}

#[rustfmt::skip]
family_ops! {
    Layout, "layout";
    Layout::Reshape { .. }                        => "Reshape",         reshape::parse_reshape;
    Layout::Flatten { .. }                        => "Flatten",         reshape::parse_flatten;
    Layout::Transpose { .. }                      => "Transpose",       transpose::parse_transpose;
    Layout::Squeeze { .. }                        => "Squeeze",         reshape::parse_squeeze;
    Layout::Unsqueeze { .. }                      => "Unsqueeze",       reshape::parse_unsqueeze;
    Layout::Concat { .. }                         => "Concat",          concat_split::parse_concat;
    Layout::Split { .. }                          => "Split",           concat_split::parse_split;
    Layout::Slice { .. }                          => "Slice",           slice::parse_slice;
    Layout::Gather { .. }                         => "Gather",          gather::parse_gather;
    Layout::GatherElements { .. }                 => "GatherElements",  gather::parse_gather_elements;
    Layout::GatherND { .. }                       => "GatherND",        gather::parse_gather_nd;
    Layout::ScatterND { .. }                      => "ScatterND",       scatter::parse_scatter_nd;
    Layout::ScatterElements { legacy: false, .. } => "ScatterElements", scatter::parse_scatter_elements;
    Layout::ScatterElements { legacy: true, .. }  => "Scatter",         scatter::parse_scatter;
    Layout::Expand                                => "Expand",          expand_tile::parse_expand;
    Layout::Tile                                  => "Tile",            expand_tile::parse_tile;
    Layout::Pad { .. }                            => "Pad",             pad::parse_pad;
    Layout::Shape { .. }                          => "Shape",           generate::parse_shape;
    Layout::Size                                  => "Size",            generate::parse_size;
    Layout::Range { .. }                          => "Range",           generate::parse_range;
    Layout::ConstantOfShape { .. }                => "ConstantOfShape", generate::parse_constant_of_shape;
    Layout::Identity                              => "Identity",        reshape::parse_identity;
    Layout::Dropout { .. }                        => "Dropout",         dropout::parse_dropout;
    Layout::DepthToSpace { .. }                   => "DepthToSpace",    transpose::parse_depth_to_space;
    Layout::SpaceToDepth { .. }                   => "SpaceToDepth",    transpose::parse_space_to_depth;
    Layout::Resize(_)                             => "Resize",          resize::parse_resize_node;
    Layout::Upsample(_)                           => "Upsample",        resize::parse_upsample_node;
    Layout::OneHot { .. }                         => "OneHot",          masks::parse_one_hot;
    Layout::NonZero                               => "NonZero",         masks::parse_non_zero;
    Layout::Trilu { .. }                          => "Trilu",           masks::parse_trilu;
    Layout::EyeLike { .. }                        => "EyeLike",         masks::parse_eye_like;
    Layout::Compress { .. }                       => "Compress",        select::parse_compress;
    Layout::ReverseSequence { .. }                => "ReverseSequence", select::parse_reverse_sequence;
    Layout::CenterCropPad { .. }                  => "CenterCropPad",   select::parse_center_crop_pad;
}

impl Layout {
    /// Whether the first output is the first input's bytes unchanged, only
    /// relabelled: Reshape, Flatten, Squeeze, Unsqueeze, Identity and
    /// inference Dropout. The memory plan lets such an output share its
    /// input's buffer, so the node emits no code.
    pub fn is_view(&self) -> bool {
        // Every other layout op moves or computes elements; `false` is the
        // safe answer for an op added later.
        matches!(
            self,
            Layout::Reshape { .. }
                | Layout::Flatten { .. }
                | Layout::Squeeze { .. }
                | Layout::Unsqueeze { .. }
                | Layout::Identity
                | Layout::Dropout { .. }
        )
    }
}

// ---------------------------------------------------------------------------
// Operand helpers.

/// The integer list held by an index-like operand (shape, axes, pads, …).
fn int_list(t: &Tensor, what: &str) -> Result<Vec<i64>> {
    match t.dtype() {
        DType::I64 | DType::I32 => {}
        d => type_err!("{what} must be int64 (or int32), got {d}"),
    }
    if t.rank() > 1 {
        shape_err!("{what} must be a 1-D tensor, got shape {:?}", t.shape());
    }
    Ok(t.to_i64_vec())
}

/// The single integer of a scalar (or one-element) operand.
fn int_scalar(t: &Tensor, what: &str) -> Result<i64> {
    if !(t.dtype().is_int()) {
        type_err!("{what} must be an integer, got {}", t.dtype());
    }
    if t.len() != 1 {
        shape_err!("{what} must hold one element, got shape {:?}", t.shape());
    }
    Ok(t.to_i64_vec()[0])
}

/// The static type of operand `i`.
fn ty<'a>(inputs: &[Option<InferInput<'a>>], i: usize, what: &str) -> Result<&'a TensorType> {
    req(inputs, i, what).map(|x| x.ty)
}

/// The integer list of the optional compile-time operand `i`.
fn opt_const_ints(
    inputs: &[Option<InferInput<'_>>],
    i: usize,
    what: &str,
) -> Result<Option<Vec<i64>>> {
    match opt(inputs, i) {
        None => Ok(None),
        Some(_) => Ok(Some(int_list(const_input(inputs, i, what)?, what)?)),
    }
}

/// Checks an index operand is int32 or int64.
fn check_index_type(t: &TensorType, what: &str) -> Result<()> {
    match t.dtype {
        DType::I32 | DType::I64 => Ok(()),
        d => type_err!("{what} must be int32 or int64, got {d}"),
    }
}

/// Resolves a list of axes against `rank`, rejecting duplicates.
fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank)?;
        if out.contains(&n) {
            shape_err!("axis {a} is repeated in {axes:?}");
        }
        out.push(n);
    }
    Ok(out)
}

/// A non-negative i64 as a dim.
fn to_dim(v: i64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Shape(format!("{what} must be non-negative, got {v}")))
}

/// Resolves an index into a dim of `size`, with negative indices counting
/// from the end; out-of-range indices are an evaluation error.
fn norm_index(i: i64, size: usize, what: &str) -> Result<usize> {
    let s = size as i64;
    let j = if i < 0 { i + s } else { i };
    if j < 0 || j >= s {
        return Err(Error::Eval(format!(
            "{what} {i} is out of range for a dim of size {size}"
        )));
    }
    Ok(j as usize)
}

fn prod(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// One output of the given type.
fn one(dtype: DType, shape: Shape) -> Result<Vec<TensorType>> {
    Ok(vec![TensorType::new(dtype, shape)])
}

/// One output tensor.
fn single(t: Tensor) -> Result<Vec<Tensor>> {
    Ok(vec![t])
}

impl Layout {
    fn infer_impl(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match self {
            Layout::Reshape { allowzero } => reshape::infer_reshape(*allowzero, inputs),
            Layout::Flatten { axis } => reshape::infer_flatten(*axis, inputs),
            Layout::Transpose { perm } => transpose::infer_transpose(perm.as_deref(), inputs),
            Layout::Squeeze { axes } => reshape::infer_squeeze(axes.as_deref(), inputs),
            Layout::Unsqueeze { axes } => reshape::infer_unsqueeze(axes.as_deref(), inputs),
            Layout::Concat { axis } => concat_split::infer_concat(*axis, inputs),
            Layout::Split {
                axis,
                split,
                outputs,
                uneven,
            } => concat_split::infer_split(*axis, split.as_deref(), *outputs, *uneven, inputs),
            Layout::Slice { attrs } => slice::infer_slice(attrs.as_ref(), inputs),
            Layout::Gather { axis } => gather::infer_gather(*axis, inputs),
            Layout::GatherElements { axis } => gather::infer_gather_elements(*axis, inputs),
            Layout::GatherND { batch_dims } => gather::infer_gather_nd(*batch_dims, inputs),
            Layout::ScatterND { .. } => scatter::infer_scatter_nd(inputs),
            Layout::ScatterElements { axis, .. } => scatter::infer_scatter_elements(*axis, inputs),
            Layout::Expand => expand_tile::infer_expand(inputs),
            Layout::Tile => expand_tile::infer_tile(inputs),
            Layout::Pad { mode, attrs } => pad::infer_pad(*mode, attrs.as_ref(), inputs),
            Layout::Shape { start, end } => generate::infer_shape(*start, *end, inputs),
            Layout::Size => generate::infer_size(inputs),
            Layout::Range { .. } => generate::infer_range(inputs),
            Layout::ConstantOfShape { value } => {
                generate::infer_constant_of_shape(value.as_ref(), inputs)
            }
            Layout::Identity => reshape::infer_identity(inputs),
            Layout::Dropout {
                outputs,
                mask_like_input,
            } => dropout::infer_dropout(*outputs, *mask_like_input, inputs),
            Layout::DepthToSpace { blocksize, .. } => {
                transpose::infer_depth_to_space(*blocksize, inputs)
            }
            Layout::SpaceToDepth { blocksize, .. } => {
                transpose::infer_space_to_depth(*blocksize, inputs)
            }
            Layout::Resize(r) | Layout::Upsample(r) => resize::infer_resize(r, inputs),
            Layout::OneHot { axis } => masks::infer_one_hot(*axis, inputs),
            Layout::NonZero => masks::infer_non_zero(inputs),
            Layout::Trilu { .. } => masks::infer_trilu(inputs),
            Layout::EyeLike { dtype, .. } => masks::infer_eye_like(*dtype, inputs),
            Layout::Compress { axis } => select::infer_compress(*axis, inputs),
            Layout::ReverseSequence { batch_axis, .. } => {
                select::infer_reverse_sequence(*batch_axis, inputs)
            }
            Layout::CenterCropPad { axes } => {
                select::infer_center_crop_pad(axes.as_deref(), inputs)
            }
        }
    }

    fn eval_impl(
        &self,
        inputs: &[Option<&Tensor>],
        ins: &[Option<InferInput<'_>>],
        outs: &[TensorType],
    ) -> Result<Vec<Tensor>> {
        let x = req(inputs, 0, "input")?;
        match self {
            Layout::Reshape { .. }
            | Layout::Flatten { .. }
            | Layout::Squeeze { .. }
            | Layout::Unsqueeze { .. }
            | Layout::Identity => reshape::eval_view(x, outs),
            Layout::Transpose { perm } => transpose::eval_transpose(perm.as_deref(), x, outs),
            Layout::Concat { axis } => concat_split::eval_concat(*axis, x, inputs, outs),
            Layout::Split { axis, .. } => concat_split::eval_split(*axis, x, outs),
            Layout::Slice { attrs } => slice::eval_slice(attrs.as_ref(), x, ins, outs),
            Layout::Gather { axis } => gather::eval_gather(*axis, x, inputs, outs),
            Layout::GatherElements { axis } => gather::eval_gather_elements(*axis, x, inputs, outs),
            Layout::GatherND { batch_dims } => gather::eval_gather_nd(*batch_dims, x, inputs, outs),
            Layout::ScatterND { reduction } => {
                scatter::eval_scatter_nd(*reduction, x, inputs, outs)
            }
            Layout::ScatterElements {
                axis, reduction, ..
            } => scatter::eval_scatter_elements(*axis, *reduction, x, inputs, outs),
            Layout::Expand => expand_tile::eval_expand(x, outs),
            Layout::Tile => expand_tile::eval_tile(x, outs),
            Layout::Pad { mode, attrs } => {
                pad::eval_pad(*mode, attrs.as_ref(), x, inputs, ins, outs)
            }
            Layout::Shape { start, end } => generate::eval_shape(*start, *end, x, outs),
            Layout::Size => generate::eval_size(x),
            Layout::Range { stash_f32 } => single(generate::eval_range(
                x,
                req(inputs, 2, "delta")?,
                outs[0].shape[0],
                *stash_f32,
            )?),
            Layout::ConstantOfShape { value } => {
                generate::eval_constant_of_shape(value.as_ref(), outs)
            }
            Layout::Dropout { .. } => dropout::eval_dropout(x, outs),
            Layout::DepthToSpace { blocksize, crd } => {
                transpose::eval_depth_to_space(*blocksize, *crd, x, outs)
            }
            Layout::SpaceToDepth { blocksize, crd } => {
                transpose::eval_space_to_depth(*blocksize, *crd, x, outs)
            }
            Layout::Resize(r) | Layout::Upsample(r) => single(resize::eval_resize(r, x, ins)?),
            Layout::OneHot { axis } => masks::eval_one_hot(*axis, x, inputs),
            Layout::NonZero => masks::eval_non_zero(x, outs),
            Layout::Trilu { upper } => masks::eval_trilu(*upper, x, inputs, outs),
            Layout::EyeLike { k, .. } => masks::eval_eye_like(*k, x, outs),
            Layout::Compress { axis } => select::eval_compress(*axis, x, inputs, outs),
            Layout::ReverseSequence {
                batch_axis,
                time_axis,
            } => select::eval_reverse_sequence(*batch_axis, *time_axis, x, inputs, outs),
            Layout::CenterCropPad { axes } => {
                select::eval_center_crop_pad(axes.as_deref(), x, inputs, outs)
            }
        }
    }
}

impl OpDef for Layout {
    fn name(&self) -> &'static str {
        op_name(self)
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| (b as u8).to_string();
        let mut v: Vec<(&'static str, String)> = Vec::new();
        match self {
            Layout::Reshape { allowzero } => v.push(("allowzero", flag(*allowzero))),
            Layout::Flatten { axis }
            | Layout::Concat { axis }
            | Layout::Gather { axis }
            | Layout::GatherElements { axis }
            | Layout::OneHot { axis } => v.push(("axis", axis.to_string())),
            Layout::Transpose { perm } => {
                if let Some(p) = perm {
                    v.push(("perm", fmt_list(p)));
                }
            }
            Layout::Squeeze { axes }
            | Layout::Unsqueeze { axes }
            | Layout::CenterCropPad { axes } => {
                if let Some(a) = axes {
                    v.push(("axes", fmt_list(a)));
                }
            }
            Layout::Split {
                axis,
                split,
                outputs,
                uneven,
            } => {
                v.push(("axis", axis.to_string()));
                if let Some(s) = split {
                    v.push(("split", fmt_list(s)));
                }
                if *uneven {
                    v.push(("num_outputs", outputs.to_string()));
                }
            }
            Layout::Slice { attrs } => {
                if let Some(a) = attrs {
                    v.push(("starts", fmt_list(&a.starts)));
                    v.push(("ends", fmt_list(&a.ends)));
                    if let Some(x) = &a.axes {
                        v.push(("axes", fmt_list(x)));
                    }
                }
            }
            Layout::GatherND { batch_dims } => v.push(("batch_dims", batch_dims.to_string())),
            Layout::ScatterND { reduction } => v.push(("reduction", reduction.name().to_string())),
            Layout::ScatterElements {
                axis, reduction, ..
            } => {
                v.push(("axis", axis.to_string()));
                v.push(("reduction", reduction.name().to_string()));
            }
            Layout::Pad { mode, attrs } => {
                v.push(("mode", mode.name().to_string()));
                if let Some(a) = attrs {
                    v.push(("pads", fmt_list(&a.pads)));
                    v.push(("value", a.value.to_string()));
                }
            }
            Layout::Shape { start, end } => {
                v.push(("start", start.to_string()));
                if let Some(e) = end {
                    v.push(("end", e.to_string()));
                }
            }
            Layout::Range { stash_f32 } => {
                if *stash_f32 {
                    v.push(("stash_type", "f32".to_string()));
                }
            }
            Layout::ConstantOfShape { value } => {
                if let Some(t) = value {
                    let x = dispatch!(t.data(), d, T => format!("{:?}", d[0]));
                    v.push(("value", format!("{}:{x}", t.dtype())));
                }
            }
            Layout::DepthToSpace { blocksize, crd } | Layout::SpaceToDepth { blocksize, crd } => {
                v.push(("blocksize", blocksize.to_string()));
                v.push(("mode", if *crd { "CRD" } else { "DCR" }.to_string()));
            }
            Layout::Resize(r) | Layout::Upsample(r) => {
                v.push(("mode", format!("{:?}", r.mode).to_lowercase()));
                v.push(("coordinate_transformation_mode", r.coord.name().to_string()));
                if r.mode == InterpMode::Nearest {
                    v.push(("nearest_mode", r.nearest.name().to_string()));
                }
                if r.mode == InterpMode::Cubic {
                    v.push(("cubic_coeff_a", r.cubic_a.to_string()));
                }
                if r.exclude_outside {
                    v.push(("exclude_outside", "1".to_string()));
                }
                if r.coord == CoordMode::TfCropAndResize {
                    v.push(("extrapolation_value", r.extrapolation.to_string()));
                }
                if r.antialias {
                    v.push(("antialias", "1".to_string()));
                }
                if r.aspect != AspectPolicy::Stretch {
                    v.push(("keep_aspect_ratio_policy", r.aspect.name().to_string()));
                }
                if let Some(a) = &r.axes {
                    v.push(("axes", fmt_list(a)));
                }
                if let ResizeForm::ScalesAttr(s) = &r.form {
                    v.push(("scales", fmt_list(s)));
                }
            }
            Layout::Trilu { upper } => v.push(("upper", flag(*upper))),
            Layout::EyeLike { dtype, k } => {
                if let Some(d) = dtype {
                    v.push(("dtype", d.name().to_string()));
                }
                v.push(("k", k.to_string()));
            }
            Layout::Compress { axis } => {
                if let Some(a) = axis {
                    v.push(("axis", a.to_string()));
                }
            }
            Layout::ReverseSequence {
                batch_axis,
                time_axis,
            } => {
                v.push(("batch_axis", batch_axis.to_string()));
                v.push(("time_axis", time_axis.to_string()));
            }
            Layout::Expand
            | Layout::Tile
            | Layout::Size
            | Layout::Identity
            | Layout::Dropout { .. }
            | Layout::NonZero => {}
        }
        v
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            Layout::Reshape { .. }
            | Layout::Expand
            | Layout::Tile
            | Layout::CenterCropPad { .. } => vec![1],
            Layout::Squeeze { axes } | Layout::Unsqueeze { axes } => {
                if axes.is_some() {
                    vec![]
                } else {
                    vec![1]
                }
            }
            Layout::Split { split, .. } => {
                if split.is_some() {
                    vec![]
                } else {
                    vec![1]
                }
            }
            Layout::Slice { attrs } => {
                if attrs.is_some() {
                    vec![]
                } else {
                    vec![1, 2, 3, 4]
                }
            }
            Layout::Pad { attrs, .. } => {
                if attrs.is_some() {
                    vec![]
                } else {
                    vec![1, 3]
                }
            }
            Layout::Range { .. } => vec![0, 1, 2],
            Layout::ConstantOfShape { .. } | Layout::NonZero => vec![0],
            Layout::Dropout { .. } => vec![1, 2],
            Layout::Resize(r) | Layout::Upsample(r) => match r.form {
                ResizeForm::ScalesAttr(_) => vec![],
                ResizeForm::ScalesInput => vec![1],
                ResizeForm::Full => vec![2, 3],
            },
            Layout::OneHot { .. } | Layout::Compress { .. } => vec![1],
            Layout::Flatten { .. }
            | Layout::Transpose { .. }
            | Layout::Concat { .. }
            | Layout::Gather { .. }
            | Layout::GatherElements { .. }
            | Layout::GatherND { .. }
            | Layout::ScatterND { .. }
            | Layout::ScatterElements { .. }
            | Layout::Shape { .. }
            | Layout::Size
            | Layout::Identity
            | Layout::DepthToSpace { .. }
            | Layout::SpaceToDepth { .. }
            | Layout::Trilu { .. }
            | Layout::EyeLike { .. }
            | Layout::ReverseSequence { .. } => vec![],
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let outs = self.infer_impl(inputs)?;
        // Every output must be addressable: the kernels size buffers from these.
        for o in &outs {
            o.bytes()?;
        }
        Ok(outs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        // Re-run shape inference with every operand's value: it validates the
        // operands and yields the output types the kernels fill.
        let tys = tensor_types(inputs);
        let ins: Vec<Option<InferInput<'_>>> = inputs
            .iter()
            .zip(&tys)
            .map(|(t, ty)| match (t, ty) {
                (Some(t), Some(ty)) => Some(InferInput {
                    ty,
                    value: Some(*t),
                }),
                _ => None,
            })
            .collect();
        let outs = self.infer(&ins)?;
        // Empty results need no kernel, and skipping them keeps kernels from
        // building per-axis index maps for a huge dim beside a zero one.
        if outs.iter().all(|o| o.numel().is_ok_and(|n| n == 0)) {
            return outs
                .into_iter()
                .map(|o| Tensor::zeros(o.dtype, o.shape))
                .collect();
        }
        self.eval_impl(inputs, &ins, &outs)
    }

    fn reads_only_types(&self) -> bool {
        // Every other layout op reads its data; `false` is the safe answer
        // for an op added later.
        matches!(self, Layout::Shape { .. } | Layout::Size)
    }

    fn macs(&self, _inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let moved: u64 = outputs.iter().map(|t| t.numel().unwrap_or(0) as u64).sum();
        match self {
            // Pure metadata changes: no element is touched once buffers alias.
            Layout::Reshape { .. }
            | Layout::Flatten { .. }
            | Layout::Squeeze { .. }
            | Layout::Unsqueeze { .. }
            | Layout::Identity
            | Layout::Dropout { .. }
            | Layout::Shape { .. }
            | Layout::Size => 0,
            Layout::Resize(r) | Layout::Upsample(r) => resize::resize_macs(r, moved),
            Layout::Transpose { .. }
            | Layout::Concat { .. }
            | Layout::Split { .. }
            | Layout::Slice { .. }
            | Layout::Gather { .. }
            | Layout::GatherElements { .. }
            | Layout::GatherND { .. }
            | Layout::ScatterND { .. }
            | Layout::ScatterElements { .. }
            | Layout::Expand
            | Layout::Tile
            | Layout::Pad { .. }
            | Layout::Range { .. }
            | Layout::ConstantOfShape { .. }
            | Layout::DepthToSpace { .. }
            | Layout::SpaceToDepth { .. }
            | Layout::OneHot { .. }
            | Layout::NonZero
            | Layout::Trilu { .. }
            | Layout::EyeLike { .. }
            | Layout::Compress { .. }
            | Layout::ReverseSequence { .. }
            | Layout::CenterCropPad { .. } => moved,
        }
    }
}

/// Helpers the per-op test modules share.
#[cfg(test)]
mod test_util {
    use super::*;
    use crate::attrs::AttrValue;

    pub(super) use crate::ops::test_support::{i64s, t};

    pub(super) fn f32s(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    pub(super) fn parse(
        op: &str,
        opset: i64,
        attrs: Vec<(&str, AttrValue)>,
        outputs: usize,
    ) -> Result<Layout> {
        crate::ops::test_support::parse_node(Layout::parse, op, opset, attrs, 1, outputs)
            .expect("a layout op")
    }

    pub(super) fn run(op: &Layout, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        op.eval(inputs)
    }

    /// Evaluates with all operands present and checks the one output.
    pub(super) fn check(op: Layout, inputs: &[&Tensor], want: &Tensor) {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        let got = run(&op, &ins).unwrap().remove(0);
        assert_eq!(&got, want, "{op:?}");
    }

    pub(super) fn vals(x: &Tensor) -> Vec<f64> {
        x.to_f64_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::attrs::AttrValue;

    #[test]
    fn shape_operands_must_be_constant() {
        let x = TensorType::new(DType::F32, vec![2, 3]);
        let s = TensorType::new(DType::I64, vec![2]);
        let ins = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &s,
                value: None,
            }),
        ];
        let e = Layout::Reshape { allowzero: false }
            .infer(&ins)
            .unwrap_err();
        assert!(matches!(e, Error::NotConstant { input: 1, .. }));
        let e = Layout::NonZero.infer(&ins[..1]).unwrap_err();
        assert!(matches!(e, Error::NotConstant { input: 0, .. }));
    }

    #[test]
    fn parse_rejects_bad_attributes() {
        assert!(
            parse(
                "Pad",
                18,
                vec![("mode", AttrValue::String(b"wrap".to_vec()))],
                1
            )
            .is_err()
        );
        assert!(
            parse(
                "ScatterND",
                16,
                vec![("reduction", AttrValue::String(b"max".to_vec()))],
                1
            )
            .is_err()
        );
        assert!(parse("Unsqueeze", 11, vec![], 1).is_err());
        assert!(
            parse(
                "ReverseSequence",
                10,
                vec![("batch_axis", AttrValue::Int(0))],
                1
            )
            .is_err()
        );
        assert!(parse("Split", 18, vec![("num_outputs", AttrValue::Int(3))], 2).is_err());
        let attrs = crate::attrs::Attrs::default();
        let other = ParseCtx {
            op_type: "Reshape",
            domain: "com.microsoft",
            opset: 1,
            attrs: &attrs,
            num_inputs: 2,
            num_outputs: 1,
        };
        assert!(Layout::parse(&other).is_none());
    }

    /// A tiny deterministic generator for the robustness test.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n.max(1)
        }
        fn int(&mut self) -> i64 {
            match self.next(12) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => self.next(13) as i64 - 6,
            }
        }
        fn ints(&mut self, n: usize) -> Tensor {
            i64s(&(0..n).map(|_| self.int()).collect::<Vec<_>>())
        }
        fn data(&mut self) -> Tensor {
            let rank = self.next(4) as usize;
            let shape: Vec<usize> = (0..rank).map(|_| self.next(4) as usize).collect();
            f32s(&shape)
        }
    }

    #[test]
    fn eval_never_panics_on_random_operands() {
        let mut g = Lcg(7);
        for _ in 0..3000 {
            let x = g.data();
            let r = x.rank();
            let n = g.next(r as u64 + 2) as usize;
            let (a, b, c) = (g.ints(n), g.ints(n), g.ints(n));
            let axis = g.int();
            let idx = {
                let shape: Vec<usize> = (0..g.next(3)).map(|_| g.next(3) as usize + 1).collect();
                let k: usize = shape.iter().product();
                t(&shape, &(0..k).map(|_| g.int()).collect::<Vec<_>>())
            };
            let modes = [
                PadMode::Constant,
                PadMode::Reflect,
                PadMode::Edge,
                PadMode::Wrap,
            ];
            let red = [Reduction::None, Reduction::Add, Reduction::Max];
            let scales: Vec<f32> = (0..r)
                .map(|_| [0.0, 0.5, 1.0, 1.7, 3.0, 40.0][g.next(6) as usize])
                .collect();
            let scales = t(&[r], &scales);
            let resize = |mode: &str, coord: &str| {
                let attrs = vec![
                    ("mode", AttrValue::String(mode.as_bytes().to_vec())),
                    (
                        "coordinate_transformation_mode",
                        AttrValue::String(coord.as_bytes().to_vec()),
                    ),
                    ("antialias", AttrValue::Int((mode != "nearest") as i64)),
                ];
                parse("Resize", 19, attrs, 1).unwrap()
            };
            let cases: Vec<(Layout, Vec<Option<&Tensor>>)> = vec![
                (
                    Layout::Reshape {
                        allowzero: g.next(2) == 0,
                    },
                    vec![Some(&x), Some(&a)],
                ),
                (Layout::Squeeze { axes: None }, vec![Some(&x), Some(&a)]),
                (Layout::Unsqueeze { axes: None }, vec![Some(&x), Some(&a)]),
                (
                    Layout::Transpose {
                        perm: Some((0..r as i64).rev().collect()),
                    },
                    vec![Some(&x)],
                ),
                (
                    Layout::Slice { attrs: None },
                    vec![Some(&x), Some(&a), Some(&b), None, Some(&c)],
                ),
                (Layout::Gather { axis }, vec![Some(&x), Some(&idx)]),
                (Layout::GatherElements { axis }, vec![Some(&x), Some(&idx)]),
                (
                    Layout::GatherND {
                        batch_dims: g.next(2) as i64,
                    },
                    vec![Some(&x), Some(&idx)],
                ),
                (
                    Layout::ScatterND {
                        reduction: red[g.next(3) as usize],
                    },
                    vec![Some(&x), Some(&idx), Some(&x)],
                ),
                (
                    Layout::ScatterElements {
                        axis,
                        reduction: red[g.next(3) as usize],
                        legacy: false,
                    },
                    vec![Some(&x), Some(&idx), Some(&x)],
                ),
                (Layout::Expand, vec![Some(&x), Some(&a)]),
                (Layout::Tile, vec![Some(&x), Some(&a)]),
                (
                    Layout::Pad {
                        mode: modes[g.next(4) as usize],
                        attrs: None,
                    },
                    vec![Some(&x), Some(&a)],
                ),
                (
                    Layout::OneHot { axis },
                    vec![Some(&idx), Some(&a), Some(&x)],
                ),
                (Layout::Trilu { upper: true }, vec![Some(&x), Some(&a)]),
                (
                    Layout::CenterCropPad { axes: None },
                    vec![Some(&x), Some(&a)],
                ),
                (
                    Layout::Split {
                        axis,
                        split: None,
                        outputs: n.max(1),
                        uneven: true,
                    },
                    vec![Some(&x), Some(&a)],
                ),
                (
                    Layout::DepthToSpace {
                        blocksize: n.max(1),
                        crd: true,
                    },
                    vec![Some(&x)],
                ),
                (
                    Layout::Range { stash_f32: false },
                    vec![Some(&a), Some(&b), Some(&c)],
                ),
                (
                    Layout::EyeLike {
                        dtype: None,
                        k: axis,
                    },
                    vec![Some(&x)],
                ),
                (Layout::Flatten { axis }, vec![Some(&x)]),
                (
                    resize("nearest", "half_pixel"),
                    vec![Some(&x), None, Some(&scales)],
                ),
                (
                    resize("cubic", "align_corners"),
                    vec![Some(&x), None, Some(&scales)],
                ),
                (
                    resize("linear", "tf_crop_and_resize"),
                    vec![Some(&x), Some(&scales), None, Some(&a)],
                ),
                (
                    Layout::Shape {
                        start: axis,
                        end: Some(g.int()),
                    },
                    vec![Some(&x)],
                ),
            ];
            for (op, ins) in &cases {
                // Errors are fine; panics are not.
                let _ = op.eval(ins);
            }
        }
    }
}
