//! Shape and data-movement ops: Reshape, Transpose, Concat, Split, Slice, the
//! Gather/Scatter family, Expand, Tile, Pad, Resize and the small shape and
//! constant generators (Shape, Size, Range, ConstantOfShape, EyeLike, …).
//!
//! Almost every kernel here moves elements without arithmetic, so kernels are
//! written once over `T: Copy` and instantiated for every dtype with
//! [`dispatch!`]. Two shared kernels do most of the work:
//! [`copy_view`] copies a strided view of a buffer (offset, per-dimension
//! sizes and strides that may be zero or negative), merging contiguous
//! dimensions and copying whole runs with `extend_from_slice`; it serves
//! Transpose, Slice, Split, Expand, Tile and the depth/space shuffles.
//! [`remap`] builds an output from one index map per axis (with holes filled
//! by a constant) and serves Pad, nearest Resize and CenterCropPad.
//!
//! Shapes are static in this IR: the operands shape inference needs (Reshape's
//! shape, Slice's starts, Pad's pads, …) are listed by `const_operands` and
//! must be constants. `eval` re-runs `infer` with every operand's value, so the
//! kernels only ever see validated parameters and agree with the inferred
//! types by construction.

use crate::attrs::AttrValue;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, const_input, fmt_list, opt, req};
use crate::shape::{Shape, broadcast_shapes, norm_axis, norm_axis_inclusive, numel, strides};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, dispatch_dtype, shape_err, type_err};

/// How ScatterND and ScatterElements combine an update with the element it
/// lands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The update replaces the element (the last duplicate wins).
    None,
    /// `x + u`.
    Add,
    /// `x * u`.
    Mul,
    /// `max(x, u)` (NaN propagates).
    Max,
    /// `min(x, u)` (NaN propagates).
    Min,
}

impl Reduction {
    fn parse(s: &str, opset: i64) -> Result<Reduction> {
        let r = match s {
            "none" => Reduction::None,
            "add" => Reduction::Add,
            "mul" => Reduction::Mul,
            "max" if opset >= 18 => Reduction::Max,
            "min" if opset >= 18 => Reduction::Min,
            other => {
                return Err(Error::attr(
                    "reduction",
                    format!("'{other}' is not valid in opset {opset}"),
                ));
            }
        };
        Ok(r)
    }

    fn name(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Add => "add",
            Reduction::Mul => "mul",
            Reduction::Max => "max",
            Reduction::Min => "min",
        }
    }
}

/// How Pad fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// A constant value.
    Constant,
    /// Mirror without repeating the edge element (`[1,2,3]` → `3,2,[1,2,3],2,1`).
    Reflect,
    /// Repeat the edge element.
    Edge,
    /// Wrap around (periodic).
    Wrap,
}

impl PadMode {
    fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }
}

/// Slice's operands in the attribute form of opsets before 10.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceAttrs {
    /// Start index per sliced axis.
    pub starts: Vec<i64>,
    /// End index (exclusive) per sliced axis.
    pub ends: Vec<i64>,
    /// The sliced axes (default: the first `starts.len()` axes).
    pub axes: Option<Vec<i64>>,
}

/// Pad's operands in the attribute form of opsets before 11.
#[derive(Clone, Debug, PartialEq)]
pub struct PadAttrs {
    /// `[x1_begin, x2_begin, …, x1_end, x2_end, …]`; negative values crop.
    pub pads: Vec<i64>,
    /// The fill value of constant mode.
    pub value: f32,
}

/// Resize's interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpMode {
    /// Nearest neighbour (see [`NearestMode`]).
    Nearest,
    /// Linear in every resized axis.
    Linear,
    /// Cubic convolution with coefficient `cubic_coeff_a`.
    Cubic,
}

/// How Resize maps an output coordinate to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

impl CoordMode {
    fn parse(s: &str) -> Result<CoordMode> {
        Ok(match s {
            "half_pixel" => CoordMode::HalfPixel,
            "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
            "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
            "align_corners" => CoordMode::AlignCorners,
            "asymmetric" => CoordMode::Asymmetric,
            "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
            "tf_crop_and_resize" => CoordMode::TfCropAndResize,
            other => {
                return Err(Error::attr(
                    "coordinate_transformation_mode",
                    format!("unknown mode '{other}'"),
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            CoordMode::HalfPixel => "half_pixel",
            CoordMode::HalfPixelSymmetric => "half_pixel_symmetric",
            CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
            CoordMode::AlignCorners => "align_corners",
            CoordMode::Asymmetric => "asymmetric",
            CoordMode::TfHalfPixelForNn => "tf_half_pixel_for_nn",
            CoordMode::TfCropAndResize => "tf_crop_and_resize",
        }
    }
}

/// How nearest-neighbour Resize rounds the input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    /// Floor.
    Floor,
    /// Ceil.
    Ceil,
    /// The rule of Upsample and Resize-10 (as onnxruntime implements them):
    /// floor when upsampling an axis, ceil when downsampling it.
    Simple,
}

impl NearestMode {
    fn name(self) -> &'static str {
        match self {
            NearestMode::RoundPreferFloor => "round_prefer_floor",
            NearestMode::RoundPreferCeil => "round_prefer_ceil",
            NearestMode::Floor => "floor",
            NearestMode::Ceil => "ceil",
            NearestMode::Simple => "simple",
        }
    }
}

/// Resize's `keep_aspect_ratio_policy` (applies when `sizes` is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

impl AspectPolicy {
    fn name(self) -> &'static str {
        match self {
            AspectPolicy::Stretch => "stretch",
            AspectPolicy::NotLarger => "not_larger",
            AspectPolicy::NotSmaller => "not_smaller",
        }
    }
}

/// Where a Resize/Upsample node takes its scales and sizes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeForm {
    /// Upsample-7: the `scales` attribute.
    ScalesAttr(Vec<f32>),
    /// Upsample-9 and Resize-10: inputs `(X, scales)`.
    ScalesInput,
    /// Resize-11 and later: inputs `(X, roi?, scales?, sizes?)`.
    Full,
}

/// The parsed attributes of Resize and Upsample.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeAttrs {
    /// Interpolation.
    pub mode: InterpMode,
    /// Coordinate transformation.
    pub coord: CoordMode,
    /// Rounding of nearest mode.
    pub nearest: NearestMode,
    /// The cubic coefficient `A`.
    pub cubic_a: f32,
    /// Zero the weights of taps outside the input (and renormalize).
    pub exclude_outside: bool,
    /// The value of output points outside the input in `tf_crop_and_resize`.
    pub extrapolation: f32,
    /// Widen the linear/cubic filter when downsampling.
    pub antialias: bool,
    /// How `sizes` constrains the aspect ratio.
    pub aspect: AspectPolicy,
    /// The axes `scales`/`sizes`/`roi` refer to (default: all).
    pub axes: Option<Vec<i64>>,
    /// Where scales and sizes come from.
    pub form: ResizeForm,
}

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

impl Layout {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "Reshape",
        "Flatten",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
        "ScatterND",
        "ScatterElements",
        "Scatter",
        "Expand",
        "Tile",
        "Pad",
        "Shape",
        "Size",
        "Range",
        "ConstantOfShape",
        "Identity",
        "Dropout",
        "DepthToSpace",
        "SpaceToDepth",
        "Resize",
        "Upsample",
        "OneHot",
        "NonZero",
        "Trilu",
        "EyeLike",
        "Compress",
        "ReverseSequence",
        "CenterCropPad",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Layout>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        if !Self::ONNX_OPS.contains(&ctx.op_type) {
            return None;
        }
        Some(parse_op(ctx))
    }
}

fn parse_op(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let op = match ctx.op_type {
        "Reshape" => {
            if a.has("shape") {
                return Err(Error::Unsupported(
                    "Reshape with a shape attribute (opset < 5)".into(),
                ));
            }
            Layout::Reshape {
                allowzero: a.int("allowzero", 0)? != 0,
            }
        }
        "Flatten" => Layout::Flatten {
            axis: a.int("axis", 1)?,
        },
        "Transpose" => Layout::Transpose {
            perm: a.ints_opt("perm")?,
        },
        "Squeeze" => Layout::Squeeze {
            axes: if v < 13 { a.ints_opt("axes")? } else { None },
        },
        "Unsqueeze" => {
            let axes = if v < 13 {
                Some(
                    a.ints_opt("axes")?
                        .ok_or_else(|| Error::attr("axes", "is required before opset 13"))?,
                )
            } else {
                None
            };
            Layout::Unsqueeze { axes }
        }
        "Concat" => Layout::Concat {
            axis: a.int_req("axis")?,
        },
        "Split" => {
            let num = if v >= 18 {
                a.int_opt("num_outputs")?
            } else {
                None
            };
            if let Some(n) = num
                && (n < 1 || n as usize != ctx.num_outputs)
            {
                return Err(Error::attr(
                    "num_outputs",
                    format!("is {n} but the node has {} outputs", ctx.num_outputs),
                ));
            }
            if ctx.num_outputs == 0 {
                return Err(Error::Shape("Split needs at least one output".into()));
            }
            Layout::Split {
                axis: a.int("axis", 0)?,
                split: if v < 13 { a.ints_opt("split")? } else { None },
                outputs: ctx.num_outputs,
                uneven: num.is_some(),
            }
        }
        "Slice" => {
            let attrs = if v < 10 {
                Some(SliceAttrs {
                    starts: a
                        .ints_opt("starts")?
                        .ok_or_else(|| Error::attr("starts", "is required"))?,
                    ends: a
                        .ints_opt("ends")?
                        .ok_or_else(|| Error::attr("ends", "is required"))?,
                    axes: a.ints_opt("axes")?,
                })
            } else {
                None
            };
            Layout::Slice { attrs }
        }
        "Gather" => Layout::Gather {
            axis: a.int("axis", 0)?,
        },
        "GatherElements" => Layout::GatherElements {
            axis: a.int("axis", 0)?,
        },
        "GatherND" => Layout::GatherND {
            batch_dims: a.int("batch_dims", 0)?,
        },
        "ScatterND" => Layout::ScatterND {
            reduction: Reduction::parse(&a.string("reduction", "none")?, v)?,
        },
        "ScatterElements" => Layout::ScatterElements {
            axis: a.int("axis", 0)?,
            reduction: Reduction::parse(&a.string("reduction", "none")?, v)?,
            legacy: false,
        },
        "Scatter" => Layout::ScatterElements {
            axis: a.int("axis", 0)?,
            reduction: Reduction::None,
            legacy: true,
        },
        "Expand" => Layout::Expand,
        "Tile" => Layout::Tile,
        "Pad" => {
            let mode = match a.string("mode", "constant")?.as_str() {
                "constant" => PadMode::Constant,
                "reflect" => PadMode::Reflect,
                "edge" => PadMode::Edge,
                "wrap" if v >= 19 => PadMode::Wrap,
                other => {
                    return Err(Error::attr(
                        "mode",
                        format!("'{other}' is not a pad mode of opset {v}"),
                    ));
                }
            };
            let attrs = if v < 11 {
                let pads = match a.ints_opt("pads")? {
                    Some(p) => p,
                    None => a
                        .ints_opt("paddings")?
                        .ok_or_else(|| Error::attr("pads", "is required"))?,
                };
                Some(PadAttrs {
                    pads,
                    value: a.float("value", 0.0)?,
                })
            } else {
                None
            };
            Layout::Pad { mode, attrs }
        }
        "Shape" => Layout::Shape {
            start: a.int("start", 0)?,
            end: a.int_opt("end")?,
        },
        "Size" => Layout::Size,
        "Range" => {
            let stash_f32 = if v >= 27 {
                match a.int("stash_type", 1)? {
                    1 => true,
                    11 => false,
                    other => {
                        return Err(Error::attr(
                            "stash_type",
                            format!("{other} is not FLOAT (1) or DOUBLE (11)"),
                        ));
                    }
                }
            } else {
                false
            };
            Layout::Range { stash_f32 }
        }
        "ConstantOfShape" => {
            let value = match a.get("value") {
                None => None,
                Some(AttrValue::Tensor(t)) if t.len() == 1 => Some(t.clone()),
                Some(AttrValue::Tensor(t)) => {
                    return Err(Error::attr(
                        "value",
                        format!("must hold one element, has {}", t.len()),
                    ));
                }
                // The ONNX importer's support check passes tensor attributes
                // undecoded (the import proper decodes them), so a tensor that
                // is not decoded yet is accepted here.
                Some(AttrValue::Other(kind)) if kind.starts_with("tensor") => None,
                Some(_) => return Err(Error::attr("value", "expected a one-element tensor")),
            };
            Layout::ConstantOfShape { value }
        }
        "Identity" => Layout::Identity,
        "Dropout" => {
            if ctx.num_outputs == 0 || ctx.num_outputs > 2 {
                return Err(Error::Shape(format!(
                    "Dropout has 1 or 2 outputs, the node lists {}",
                    ctx.num_outputs
                )));
            }
            Layout::Dropout {
                outputs: ctx.num_outputs,
                mask_like_input: v < 10,
            }
        }
        "DepthToSpace" | "SpaceToDepth" => {
            let b = a.int_req("blocksize")?;
            if b < 1 {
                return Err(Error::attr(
                    "blocksize",
                    format!("must be positive, got {b}"),
                ));
            }
            let crd = match a.string("mode", "DCR")?.as_str() {
                "DCR" => false,
                "CRD" => true,
                other => return Err(Error::attr("mode", format!("'{other}' is not DCR or CRD"))),
            };
            let blocksize =
                usize::try_from(b).map_err(|_| Error::attr("blocksize", "is too large"))?;
            if ctx.op_type == "DepthToSpace" {
                Layout::DepthToSpace { blocksize, crd }
            } else {
                Layout::SpaceToDepth { blocksize, crd }
            }
        }
        "Resize" => Layout::Resize(Box::new(parse_resize(ctx)?)),
        "Upsample" => Layout::Upsample(Box::new(parse_resize(ctx)?)),
        "OneHot" => Layout::OneHot {
            axis: a.int("axis", -1)?,
        },
        "NonZero" => Layout::NonZero,
        "Trilu" => Layout::Trilu {
            upper: a.int("upper", 1)? != 0,
        },
        "EyeLike" => Layout::EyeLike {
            dtype: match a.int_opt("dtype")? {
                Some(code) => Some(DType::from_onnx_code(
                    i32::try_from(code)
                        .map_err(|_| Error::attr("dtype", format!("unknown type code {code}")))?,
                )?),
                None => None,
            },
            k: a.int("k", 0)?,
        },
        "Compress" => Layout::Compress {
            axis: a.int_opt("axis")?,
        },
        "ReverseSequence" => {
            let (b, t) = (a.int("batch_axis", 1)?, a.int("time_axis", 0)?);
            if !matches!((b, t), (0, 1) | (1, 0)) {
                return Err(Error::attr(
                    "batch_axis",
                    format!("batch_axis {b} and time_axis {t} must be 0 and 1 in some order"),
                ));
            }
            Layout::ReverseSequence {
                batch_axis: b as usize,
                time_axis: t as usize,
            }
        }
        "CenterCropPad" => Layout::CenterCropPad {
            axes: a.ints_opt("axes")?,
        },
        other => {
            return Err(Error::Unsupported(format!(
                "op {other} is not in the layout family"
            )));
        }
    };
    Ok(op)
}

fn parse_resize(ctx: &ParseCtx<'_>) -> Result<ResizeAttrs> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let upsample = ctx.op_type == "Upsample";
    let mode = match a.string("mode", "nearest")?.as_str() {
        "nearest" => InterpMode::Nearest,
        "linear" => InterpMode::Linear,
        // Upsample-1 spelled linear "bilinear"; some exporters kept it.
        "bilinear" if upsample => InterpMode::Linear,
        "cubic" if !upsample && v >= 11 => InterpMode::Cubic,
        other => {
            return Err(Error::attr(
                "mode",
                format!("'{other}' is not a mode of {} opset {v}", ctx.op_type),
            ));
        }
    };
    // Upsample and Resize-10 have no coordinate attributes: onnxruntime runs
    // them with asymmetric coordinates and its "simple" nearest rounding.
    let legacy = upsample || v < 11;
    if legacy {
        let form = if upsample && v < 9 {
            let scales = a
                .floats_opt("scales")?
                .ok_or_else(|| Error::attr("scales", "is required"))?;
            ResizeForm::ScalesAttr(scales)
        } else {
            ResizeForm::ScalesInput
        };
        return Ok(ResizeAttrs {
            mode,
            coord: CoordMode::Asymmetric,
            nearest: NearestMode::Simple,
            cubic_a: -0.75,
            exclude_outside: false,
            extrapolation: 0.0,
            antialias: false,
            aspect: AspectPolicy::Stretch,
            axes: None,
            form,
        });
    }
    let coord = CoordMode::parse(&a.string("coordinate_transformation_mode", "half_pixel")?)?;
    if coord == CoordMode::HalfPixelSymmetric && v < 19 {
        return Err(Error::attr(
            "coordinate_transformation_mode",
            "half_pixel_symmetric needs opset 19",
        ));
    }
    let nearest = match a.string("nearest_mode", "round_prefer_floor")?.as_str() {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => {
            return Err(Error::attr(
                "nearest_mode",
                format!("unknown mode '{other}'"),
            ));
        }
    };
    let antialias = v >= 18 && a.int("antialias", 0)? != 0;
    if antialias && mode == InterpMode::Nearest {
        return Err(Error::attr(
            "antialias",
            "applies to linear and cubic modes only",
        ));
    }
    let aspect = if v >= 18 {
        match a.string("keep_aspect_ratio_policy", "stretch")?.as_str() {
            "stretch" => AspectPolicy::Stretch,
            "not_larger" => AspectPolicy::NotLarger,
            "not_smaller" => AspectPolicy::NotSmaller,
            other => {
                return Err(Error::attr(
                    "keep_aspect_ratio_policy",
                    format!("unknown policy '{other}'"),
                ));
            }
        }
    } else {
        AspectPolicy::Stretch
    };
    Ok(ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_a: a.float("cubic_coeff_a", -0.75)?,
        exclude_outside: a.int("exclude_outside", 0)? != 0,
        extrapolation: a.float("extrapolation_value", 0.0)?,
        antialias,
        aspect,
        axes: if v >= 18 { a.ints_opt("axes")? } else { None },
        form: ResizeForm::Full,
    })
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

/// Builds a tensor from a dtype-generic kernel result.
macro_rules! map_data {
    ($x:expr, $v:ident, $T:ident => $body:expr) => {
        dispatch!($x.data(), $v, $T => <$T as Elem>::wrap($body))
    };
}

// ---------------------------------------------------------------------------
// Shared kernels.

/// Copies the strided view `(offset, [(size, stride)…])` of `src` into a new
/// row-major vector. Strides are in elements and may be zero (broadcast) or
/// negative (reversed slices). Size-1 dims are dropped and dims that are
/// contiguous with their inner neighbour merged, so the innermost loop copies
/// the longest possible runs.
fn copy_view<T: Copy>(src: &[T], offset: usize, dims: &[(usize, isize)]) -> Result<Vec<T>> {
    let mut n = 1usize;
    for &(d, _) in dims {
        n = n
            .checked_mul(d)
            .ok_or_else(|| Error::Overflow(format!("view of {dims:?}")))?;
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut ds: Vec<(usize, isize)> = Vec::with_capacity(dims.len());
    for &(d, s) in dims {
        if d == 1 {
            continue;
        }
        if let Some(last) = ds.last_mut()
            && last.1 == s * d as isize
        {
            *last = (last.0 * d, s);
            continue;
        }
        ds.push((d, s));
    }
    // Every address the view touches must be inside `src`: checked once here so
    // the loops below cannot index out of bounds.
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for &(d, s) in &ds {
        let span = s as i128 * (d as i128 - 1);
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    if lo < 0 || hi >= src.len() as i128 {
        return Err(Error::Eval(format!(
            "view at {offset} with dims {dims:?} exceeds a buffer of {} elements",
            src.len()
        )));
    }
    let (inner_n, inner_s) = ds.pop().unwrap_or((1, 1));
    // A transpose of the two innermost dims (the source contiguous along the
    // second-to-last): copy it in square tiles so reads and writes both stay
    // in cache, instead of striding through the source once per element.
    let tile_rows = match ds.last() {
        Some(&(rows, 1)) if !matches!(inner_s, 0 | 1) && rows * inner_n >= 1024 => {
            ds.pop();
            Some(rows)
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; ds.len()];
    let mut base = offset as isize;
    loop {
        let b = base as usize;
        match (tile_rows, inner_s) {
            (Some(rows), s) => {
                // Small tiles: with power-of-two row lengths every row of a tile
                // maps to the same cache set, and 8 rows fit its associativity.
                const TILE: usize = 8;
                let start = out.len();
                out.resize(start + rows * inner_n, src[b]);
                let block = &mut out[start..];
                for r0 in (0..rows).step_by(TILE) {
                    let r1 = (r0 + TILE).min(rows);
                    for c0 in (0..inner_n).step_by(TILE) {
                        for c in c0..(c0 + TILE).min(inner_n) {
                            let col = base + c as isize * s;
                            for r in r0..r1 {
                                block[r * inner_n + c] = src[(col + r as isize) as usize];
                            }
                        }
                    }
                }
            }
            (None, 1) => out.extend_from_slice(&src[b..b + inner_n]),
            (None, 0) => out.extend(std::iter::repeat_n(src[b], inner_n)),
            (None, s) => {
                let mut p = base;
                for _ in 0..inner_n {
                    out.push(src[p as usize]);
                    p += s;
                }
            }
        }
        let mut k = ds.len();
        loop {
            if k == 0 {
                return Ok(out);
            }
            k -= 1;
            idx[k] += 1;
            base += ds[k].1;
            if idx[k] < ds[k].0 {
                break;
            }
            base -= ds[k].1 * ds[k].0 as isize;
            idx[k] = 0;
        }
    }
}

/// The `(size, stride)` dims of a row-major tensor of `shape` permuted by `perm`.
fn permuted_dims(shape: &[usize], perm: &[usize]) -> Vec<(usize, isize)> {
    let st = strides(shape);
    perm.iter().map(|&p| (shape[p], st[p] as isize)).collect()
}

/// Applies [`copy_view`] to a tensor of any dtype.
fn view_tensor(x: &Tensor, offset: usize, dims: &[(usize, isize)], shape: Shape) -> Result<Tensor> {
    let data = map_data!(x, v, T => copy_view(v, offset, dims)?);
    Tensor::new(shape, data)
}

/// One run of the innermost axis of a [`remap`].
enum Run {
    Fill(usize),
    Copy(usize, usize),
}

/// Builds `out[i0, i1, …] = src[m0[i0] + m1[i1] + …]` where each axis map holds
/// element offsets (index × stride) into `src`, and `None` marks positions
/// filled with `fill` (padding, extrapolation).
fn remap<T: Copy>(src: &[T], maps: &[Vec<Option<usize>>], fill: T) -> Result<Vec<T>> {
    let max_off: usize = maps
        .iter()
        .map(|m| m.iter().flatten().copied().max().unwrap_or(0))
        .sum();
    let n: usize = maps.iter().map(|m| m.len()).product();
    if n == 0 {
        return Ok(Vec::new());
    }
    let any_src = maps.iter().all(|m| m.iter().any(|x| x.is_some()));
    if any_src && max_off >= src.len() {
        return Err(Error::Eval(format!(
            "index map reaches {max_off} in a buffer of {} elements",
            src.len()
        )));
    }
    let Some((last, outer)) = maps.split_last() else {
        // Rank 0: one element.
        return src
            .first()
            .map(|&x| vec![x])
            .ok_or_else(|| Error::Eval("empty scalar".into()));
    };
    // Runs of the innermost map: consecutive offsets copy as one slice.
    let mut runs: Vec<Run> = Vec::new();
    for &m in last {
        match (m, runs.last_mut()) {
            (None, Some(Run::Fill(k))) => *k += 1,
            (None, _) => runs.push(Run::Fill(1)),
            (Some(o), Some(Run::Copy(s, k))) if *s + *k == o => *k += 1,
            (Some(o), _) => runs.push(Run::Copy(o, 1)),
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; outer.len()];
    loop {
        let mut base = Some(0usize);
        for (k, &i) in idx.iter().enumerate() {
            base = match (base, outer[k][i]) {
                (Some(b), Some(o)) => Some(b + o),
                _ => None,
            };
        }
        match base {
            None => out.extend(std::iter::repeat_n(fill, last.len())),
            Some(b) => {
                for r in &runs {
                    match *r {
                        Run::Fill(k) => out.extend(std::iter::repeat_n(fill, k)),
                        Run::Copy(s, k) => out.extend_from_slice(&src[b + s..b + s + k]),
                    }
                }
            }
        }
        let mut k = outer.len();
        loop {
            if k == 0 {
                return Ok(out);
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < outer[k].len() {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Element combination for the Scatter reductions, with NumPy semantics:
/// wrapping integer arithmetic, NaN-propagating max/min, and or/and for bool.
trait Combine: Copy {
    fn combine(self, u: Self, r: Reduction) -> Self;
}

macro_rules! combine_int {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            fn combine(self, u: Self, r: Reduction) -> Self {
                match r {
                    Reduction::None => u,
                    Reduction::Add => self.wrapping_add(u),
                    Reduction::Mul => self.wrapping_mul(u),
                    Reduction::Max => self.max(u),
                    Reduction::Min => self.min(u),
                }
            }
        }
    )*};
}
combine_int!(i8, u8, i16, u16, i32, u32, i64, u64);

macro_rules! combine_float {
    ($t:ty, $to:expr, $from:expr) => {
        impl Combine for $t {
            fn combine(self, u: Self, r: Reduction) -> Self {
                // Half types compute in f32 and round once, like NumPy.
                #[allow(clippy::redundant_closure_call)]
                let (a, b) = (($to)(self), ($to)(u));
                #[allow(clippy::redundant_closure_call)]
                match r {
                    Reduction::None => u,
                    Reduction::Add => ($from)(a + b),
                    Reduction::Mul => ($from)(a * b),
                    Reduction::Max => {
                        if a.is_nan() || b.is_nan() {
                            ($from)(a + b)
                        } else if b > a {
                            u
                        } else {
                            self
                        }
                    }
                    Reduction::Min => {
                        if a.is_nan() || b.is_nan() {
                            ($from)(a + b)
                        } else if b < a {
                            u
                        } else {
                            self
                        }
                    }
                }
            }
        }
    };
}
combine_float!(f32, |x: f32| x, |x: f32| x);
combine_float!(f64, |x: f64| x, |x: f64| x);
combine_float!(half::f16, |x: half::f16| x.to_f32(), half::f16::from_f32);
combine_float!(half::bf16, |x: half::bf16| x.to_f32(), half::bf16::from_f32);

impl Combine for bool {
    fn combine(self, u: Self, r: Reduction) -> Self {
        match r {
            Reduction::None => u,
            Reduction::Add | Reduction::Max => self | u,
            Reduction::Mul | Reduction::Min => self & u,
        }
    }
}

// ---------------------------------------------------------------------------
// Shape rules, shared by `infer` and the kernels.

fn reshape_shape(input: &[usize], target: &[i64], allowzero: bool) -> Result<Shape> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 => {
                if infer_at.replace(i).is_some() {
                    shape_err!("shape {target:?} has more than one -1");
                }
                out.push(1);
            }
            0 if !allowzero => match input.get(i) {
                Some(&d) => out.push(d),
                None => shape_err!(
                    "shape {target:?} copies dim {i} (0) but the input {input:?} has no such dim"
                ),
            },
            d => out.push(to_dim(d, "a target dim other than -1")?),
        }
    }
    if allowzero && infer_at.is_some() && target.contains(&0) {
        shape_err!("shape {target:?} has both -1 and 0 with allowzero=1");
    }
    let known = numel(&out)?;
    match infer_at {
        Some(i) => {
            if known == 0 || total % known != 0 {
                shape_err!("cannot reshape {input:?} ({total} elements) to {target:?}");
            }
            out[i] = total / known;
        }
        None if known != total => {
            shape_err!("cannot reshape {input:?} ({total} elements) to {target:?}")
        }
        None => {}
    }
    Ok(out)
}

fn transpose_perm(rank: usize, perm: Option<&[i64]>) -> Result<Vec<usize>> {
    let Some(perm) = perm else {
        return Ok((0..rank).rev().collect());
    };
    if perm.len() != rank {
        shape_err!("perm {perm:?} does not match rank {rank}");
    }
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in perm {
        let a = usize::try_from(p).ok().filter(|&a| a < rank);
        match a {
            Some(a) if !seen[a] => {
                seen[a] = true;
                out.push(a);
            }
            _ => shape_err!("perm {perm:?} is not a permutation of 0..{rank}"),
        }
    }
    Ok(out)
}

fn unsqueeze_shape(input: &[usize], axes: &[i64]) -> Result<Shape> {
    let rank = input.len() + axes.len();
    let axes = norm_axes(axes, rank)?;
    let mut rest = input.iter();
    Ok((0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

fn squeeze_shape(input: &[usize], axes: Option<&[i64]>) -> Result<Shape> {
    match axes {
        None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let axes = norm_axes(axes, input.len())?;
            for &a in &axes {
                if input[a] != 1 {
                    shape_err!("cannot squeeze axis {a} of size {} in {input:?}", input[a]);
                }
            }
            Ok(input
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect())
        }
    }
}

fn split_sizes(
    dim: usize,
    split: Option<&[i64]>,
    outputs: usize,
    uneven: bool,
) -> Result<Vec<usize>> {
    if let Some(split) = split {
        if split.len() != outputs {
            shape_err!(
                "split {split:?} has {} parts but the node has {outputs} outputs",
                split.len()
            );
        }
        let sizes: Vec<usize> = split
            .iter()
            .map(|&s| to_dim(s, "a split size"))
            .collect::<Result<_>>()?;
        if sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b)) != Some(dim) {
            shape_err!("split {split:?} does not add up to the dim {dim}");
        }
        return Ok(sizes);
    }
    if dim.is_multiple_of(outputs) {
        return Ok(vec![dim / outputs; outputs]);
    }
    if !uneven {
        shape_err!("dim {dim} cannot be split into {outputs} equal parts");
    }
    // Opset 18: parts of ceil(dim / n), the last one smaller.
    let part = dim / outputs + 1;
    let last = dim.checked_sub(part * (outputs - 1));
    match last {
        Some(last) => {
            let mut v = vec![part; outputs - 1];
            v.push(last);
            Ok(v)
        }
        None => shape_err!("dim {dim} cannot be split into {outputs} parts of {part}"),
    }
}

/// One sliced axis: first index, step and count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SliceAxis {
    /// First index taken.
    pub start: usize,
    /// Distance between taken indices (negative walks backwards).
    pub step: isize,
    /// How many indices are taken.
    pub count: usize,
}

/// Resolves `Slice` parameters against a shape, exactly as the ONNX spec
/// clamps them: one [`SliceAxis`] per dim (untouched dims take everything).
/// The native lowering uses this too, so both agree by construction.
pub fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<SliceAxis>> {
    let n = starts.len();
    if ends.len() != n {
        shape_err!("starts {starts:?} and ends {ends:?} differ in length");
    }
    let axes: Vec<usize> = match axes {
        Some(a) if a.len() != n => shape_err!("axes {a:?} and starts {starts:?} differ in length"),
        Some(a) => norm_axes(a, shape.len())?,
        None if n > shape.len() => shape_err!("{n} starts for rank {}", shape.len()),
        None => (0..n).collect(),
    };
    if let Some(s) = steps
        && s.len() != n
    {
        shape_err!("steps {s:?} and starts {starts:?} differ in length");
    }
    let mut plan: Vec<SliceAxis> = shape
        .iter()
        .map(|&d| SliceAxis {
            start: 0,
            step: 1,
            count: d,
        })
        .collect();
    for (i, &ax) in axes.iter().enumerate() {
        let step = steps.map_or(1, |s| s[i]) as i128;
        if step == 0 {
            shape_err!("slice step is 0 on axis {ax}");
        }
        let d = shape[ax] as i128;
        let resolve = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
        let (mut s, mut e) = (resolve(starts[i]), resolve(ends[i]));
        let (start, count) = if step > 0 {
            s = s.clamp(0, d);
            e = e.clamp(0, d);
            (s, if e > s { (e - s - 1) / step + 1 } else { 0 })
        } else if d == 0 {
            (0, 0)
        } else {
            // Negative steps clamp the start into the dim as the spec says, like
            // onnxruntime: `start = -5` on a dim of 4 still yields index 0
            // (onnx's NumPy reference slices to nothing there instead).
            s = s.clamp(0, d - 1);
            e = e.clamp(-1, d - 1);
            (s, if s > e { (s - e - 1) / -step + 1 } else { 0 })
        };
        // A count of one never steps, so a huge step need not fit an isize.
        let step = if count <= 1 { 1 } else { step as isize };
        plan[ax] = SliceAxis {
            start: start as usize,
            step,
            count: count as usize,
        };
    }
    Ok(plan)
}

/// The parameters of a Pad: per axis, the pad before and after (negative crops).
fn pad_amounts(rank: usize, pads: &[i64], axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>> {
    let axes: Vec<usize> = match axes {
        Some(a) => norm_axes(a, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        shape_err!("pads {pads:?} must have 2 × {} entries", axes.len());
    }
    let mut out = vec![(0i64, 0i64); rank];
    for (i, &ax) in axes.iter().enumerate() {
        out[ax] = (pads[i], pads[axes.len() + i]);
    }
    Ok(out)
}

/// Validates one padded axis: returns the start and length of the kept
/// (cropped) input range, the padding before it and the output length.
fn pad_axis(dim: usize, before: i64, after: i64, mode: PadMode) -> Result<(i64, i64, i64, usize)> {
    // i128: pads may be any i64, and negating i64::MIN overflows.
    let (d, b, e) = (dim as i128, before as i128, after as i128);
    let lo = (-b).max(0);
    let len = d - (-e).max(0) - lo;
    let out = d + b + e;
    if out < 0 || len < 0 {
        shape_err!("pads ({before}, {after}) crop more than the dim {dim}");
    }
    if out > isize::MAX as i128 {
        return Err(Error::Overflow(format!("padded dim {out}")));
    }
    if len == 0 && mode != PadMode::Constant && out > 0 {
        shape_err!("cannot {} pad an empty dim", mode.name());
    }
    Ok((lo as i64, len as i64, b.max(0) as i64, out as usize))
}

/// For one padded axis, maps each output position to an input index (`None` =
/// filled). Negative pads crop first; the mode then pads the cropped range.
fn pad_axis_map(dim: usize, before: i64, after: i64, mode: PadMode) -> Result<Vec<Option<usize>>> {
    let (lo, len, pb, out_len) = pad_axis(dim, before, after, mode)?;
    let map = (0..out_len as i64)
        .map(|o| {
            let j = o - pb;
            let j = if (0..len).contains(&j) {
                Some(j)
            } else {
                match mode {
                    PadMode::Constant => None,
                    PadMode::Edge => Some(j.clamp(0, len - 1)),
                    PadMode::Wrap => Some(j.rem_euclid(len)),
                    PadMode::Reflect => {
                        if len == 1 {
                            Some(0)
                        } else {
                            let period = 2 * (len - 1);
                            let r = j.rem_euclid(period);
                            Some(if r >= len { period - r } else { r })
                        }
                    }
                }
            };
            j.map(|j| (j + lo) as usize)
        })
        .collect();
    Ok(map)
}

/// The dims kept by Shape's `start`/`end`.
fn shape_range(rank: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    (s, e.max(s))
}

/// The element count of a Range.
fn range_count(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<usize> {
    let dt = start.dtype();
    if limit.dtype() != dt || delta.dtype() != dt {
        type_err!(
            "start, limit and delta must share a dtype, got {dt}, {} and {}",
            limit.dtype(),
            delta.dtype()
        );
    }
    for (t, what) in [(start, "start"), (limit, "limit"), (delta, "delta")] {
        if t.len() != 1 {
            shape_err!("{what} must be a scalar, got shape {:?}", t.shape());
        }
    }
    let n: f64 = match dt {
        DType::I16 | DType::I32 | DType::I64 => {
            let (s, l, d) = (
                start.to_i64_vec()[0] as i128,
                limit.to_i64_vec()[0] as i128,
                delta.to_i64_vec()[0] as i128,
            );
            if d == 0 {
                shape_err!("Range delta is 0");
            }
            // Exact ceiling division of (l - s) / d.
            let (num, den) = if d < 0 { (s - l, -d) } else { (l - s, d) };
            let q = if num > 0 { (num + den - 1) / den } else { 0 };
            q as f64
        }
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            let (s, l, d) = (
                start.to_f64_vec()[0],
                limit.to_f64_vec()[0],
                delta.to_f64_vec()[0],
            );
            if d == 0.0 || !(s.is_finite() && l.is_finite() && d.is_finite()) {
                shape_err!("Range with start {s}, limit {l}, delta {d} has no finite length");
            }
            ((l - s) / d).ceil().max(0.0)
        }
        d => type_err!("Range does not accept {d}"),
    };
    if n > (1u64 << 40) as f64 {
        return Err(Error::Overflow(format!("Range of {n} elements")));
    }
    Ok(n as usize)
}

/// The output shape of OneHot.
fn onehot_shape(indices: &[usize], depth: &Tensor, axis: i64) -> Result<(Shape, usize)> {
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
fn nonzero_mask(x: &Tensor) -> Vec<bool> {
    dispatch!(x.data(), v, T => v.iter().map(|&e| e != T::default()).collect())
}

/// Validates a Compress condition against the compressed dim and returns the
/// kept indices.
fn compress_indices(cond: &Tensor, dim: usize) -> Result<Vec<usize>> {
    let c = cond.as_slice::<bool>()?;
    if cond.rank() != 1 {
        shape_err!("condition must be 1-D, got shape {:?}", cond.shape());
    }
    let kept: Vec<usize> = c
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect();
    if let Some(&i) = kept.last()
        && i >= dim
    {
        shape_err!("condition selects index {i} of a dim of size {dim}");
    }
    Ok(kept)
}

/// Per axis: the crop start (`Ok`) or the pad offset (`Err`) of CenterCropPad.
fn center_crop_pad_plan(
    shape: &[usize],
    target: &[i64],
    axes: Option<&[i64]>,
) -> Result<Vec<(usize, i64)>> {
    let axes: Vec<usize> = match axes {
        Some(a) => norm_axes(a, shape.len())?,
        None => (0..shape.len()).collect(),
    };
    if target.len() != axes.len() {
        shape_err!(
            "shape {target:?} must have one entry per axis ({})",
            axes.len()
        );
    }
    // (output dim, offset): input index = output index + offset.
    let mut plan: Vec<(usize, i64)> = shape.iter().map(|&d| (d, 0)).collect();
    for (&ax, &t) in axes.iter().zip(target) {
        let t = to_dim(t, "a CenterCropPad dim")?;
        let d = shape[ax];
        let off = if t <= d {
            ((d - t) / 2) as i64
        } else {
            -(((t - d) / 2) as i64)
        };
        plan[ax] = (t, off);
    }
    Ok(plan)
}

/// Resolved Resize parameters: output shape and per-axis scale.
fn resize_plan(
    r: &ResizeAttrs,
    shape: &[usize],
    scales: Option<Vec<f64>>,
    sizes: Option<Vec<i64>>,
) -> Result<(Shape, Vec<f64>)> {
    let rank = shape.len();
    let axes: Vec<usize> = match &r.axes {
        Some(a) => norm_axes(a, rank)?,
        None => (0..rank).collect(),
    };
    let mut out = shape.to_vec();
    let mut sc = vec![1.0f64; rank];
    match (scales, sizes) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                shape_err!("scales {s:?} must have {} entries", axes.len());
            }
            for (&ax, &f) in axes.iter().zip(&s) {
                if !(f > 0.0 && f.is_finite()) {
                    shape_err!("scale {f} must be positive");
                }
                let o = (f * shape[ax] as f64).floor();
                if o >= (1u64 << 40) as f64 {
                    return Err(Error::Overflow(format!("resized dim {o}")));
                }
                sc[ax] = f;
                out[ax] = o as usize;
            }
        }
        (None, Some(z)) => {
            if z.len() != axes.len() {
                shape_err!("sizes {z:?} must have {} entries", axes.len());
            }
            for (&ax, &n) in axes.iter().zip(&z) {
                out[ax] = to_dim(n, "a Resize size")?;
                sc[ax] = out[ax] as f64 / shape[ax] as f64;
            }
            let pick = match r.aspect {
                AspectPolicy::Stretch => None,
                AspectPolicy::NotLarger => axes.iter().map(|&a| sc[a]).reduce(f64::min),
                AspectPolicy::NotSmaller => axes.iter().map(|&a| sc[a]).reduce(f64::max),
            };
            if let Some(s) = pick {
                for &ax in &axes {
                    if shape[ax] == 0 {
                        shape_err!("cannot keep the aspect ratio of an empty dim");
                    }
                    sc[ax] = s;
                    out[ax] = (s * shape[ax] as f64 + 0.5).floor() as usize;
                }
            }
        }
        (Some(_), Some(_)) => shape_err!("only one of scales and sizes may be given"),
        (None, None) => shape_err!("one of scales and sizes must be given"),
    }
    for ax in 0..rank {
        if shape[ax] == 0 && out[ax] > 0 {
            shape_err!("cannot resize an empty dim {ax} to {}", out[ax]);
        }
    }
    Ok((out, sc))
}

/// Resize's `scales` and `sizes`, whichever is given.
type ScalesSizes = (Option<Vec<f64>>, Option<Vec<i64>>);

/// Reads Resize's constant scales and sizes operands.
fn resize_operands(r: &ResizeAttrs, inputs: &[Option<InferInput<'_>>]) -> Result<ScalesSizes> {
    let scales_of = |i: usize| -> Result<Option<Vec<f64>>> {
        if opt(inputs, i).is_none() {
            return Ok(None);
        }
        let t = const_input(inputs, i, "scales")?;
        if !t.dtype().is_float() {
            type_err!("scales must be float, got {}", t.dtype());
        }
        // An empty scales tensor stands for "not given" (sizes is used instead).
        Ok(if t.is_empty() {
            None
        } else {
            Some(t.to_f64_vec())
        })
    };
    match &r.form {
        ResizeForm::ScalesAttr(s) => Ok((Some(s.iter().map(|&x| x as f64).collect()), None)),
        ResizeForm::ScalesInput => {
            let s = scales_of(1)?.ok_or_else(|| Error::Shape("scales is required".into()))?;
            Ok((Some(s), None))
        }
        ResizeForm::Full => {
            let sizes = match opt(inputs, 3) {
                None => None,
                Some(_) => {
                    let t = const_input(inputs, 3, "sizes")?;
                    if t.is_empty() {
                        None
                    } else {
                        Some(int_list(t, "sizes")?)
                    }
                }
            };
            Ok((scales_of(2)?, sizes))
        }
    }
}

impl Layout {
    fn infer_impl(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let one = |dtype: DType, shape: Shape| Ok(vec![TensorType::new(dtype, shape)]);
        match self {
            Layout::Reshape { allowzero } => {
                check_arity(inputs, 2, 2)?;
                let x = ty(inputs, 0, "data")?;
                let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
                one(x.dtype, reshape_shape(&x.shape, &target, *allowzero)?)
            }
            Layout::Flatten { axis } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "input")?;
                let r = x.shape.len() as i64;
                let a = if *axis < 0 { axis + r } else { *axis };
                if a < 0 || a > r {
                    shape_err!("axis {axis} is out of range for rank {r}");
                }
                let (outer, inner) = x.shape.split_at(a as usize);
                one(x.dtype, vec![numel(outer)?, numel(inner)?])
            }
            Layout::Transpose { perm } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "data")?;
                let p = transpose_perm(x.shape.len(), perm.as_deref())?;
                one(x.dtype, p.iter().map(|&i| x.shape[i]).collect())
            }
            Layout::Squeeze { axes } => {
                check_arity(inputs, 1, 2)?;
                let x = ty(inputs, 0, "data")?;
                let axes = match axes {
                    Some(a) => Some(a.clone()),
                    None => opt_const_ints(inputs, 1, "axes")?,
                };
                one(x.dtype, squeeze_shape(&x.shape, axes.as_deref())?)
            }
            Layout::Unsqueeze { axes } => {
                let x = ty(inputs, 0, "data")?;
                let axes = match axes {
                    Some(a) => {
                        check_arity(inputs, 1, 1)?;
                        a.clone()
                    }
                    None => {
                        check_arity(inputs, 2, 2)?;
                        int_list(const_input(inputs, 1, "axes")?, "axes")?
                    }
                };
                one(x.dtype, unsqueeze_shape(&x.shape, &axes)?)
            }
            Layout::Concat { axis } => {
                if inputs.is_empty() {
                    shape_err!("Concat needs at least one input");
                }
                let tys: Vec<&TensorType> = (0..inputs.len())
                    .map(|i| ty(inputs, i, "inputs"))
                    .collect::<Result<_>>()?;
                let first = tys[0];
                let ax = norm_axis(*axis, first.shape.len())?;
                let mut shape = first.shape.clone();
                shape[ax] = 0;
                for t in &tys {
                    if t.dtype != first.dtype {
                        type_err!(
                            "inputs have different dtypes {} and {}",
                            first.dtype,
                            t.dtype
                        );
                    }
                    let same = t.shape.len() == first.shape.len()
                        && t.shape
                            .iter()
                            .zip(&first.shape)
                            .enumerate()
                            .all(|(i, (a, b))| i == ax || a == b);
                    if !same {
                        shape_err!(
                            "cannot concatenate {:?} and {:?} on axis {ax}",
                            first.shape,
                            t.shape
                        );
                    }
                    shape[ax] += t.shape[ax];
                }
                one(first.dtype, shape)
            }
            Layout::Split {
                axis,
                split,
                outputs,
                uneven,
            } => {
                check_arity(inputs, 1, 2)?;
                let x = ty(inputs, 0, "input")?;
                let ax = norm_axis(*axis, x.shape.len())?;
                let split = match split {
                    Some(s) => Some(s.clone()),
                    None => opt_const_ints(inputs, 1, "split")?.filter(|s| !s.is_empty()),
                };
                let sizes = split_sizes(x.shape[ax], split.as_deref(), *outputs, *uneven)?;
                Ok(sizes
                    .into_iter()
                    .map(|s| {
                        let mut shape = x.shape.clone();
                        shape[ax] = s;
                        TensorType::new(x.dtype, shape)
                    })
                    .collect())
            }
            Layout::Slice { .. } => {
                let x = ty(inputs, 0, "data")?;
                let plan = self.slice_params(inputs, &x.shape)?;
                one(x.dtype, plan.iter().map(|p| p.count).collect())
            }
            Layout::Gather { axis } => {
                check_arity(inputs, 2, 2)?;
                let (x, i) = (ty(inputs, 0, "data")?, ty(inputs, 1, "indices")?);
                check_index_type(i, "indices")?;
                let ax = norm_axis(*axis, x.shape.len())?;
                let mut shape = x.shape[..ax].to_vec();
                shape.extend_from_slice(&i.shape);
                shape.extend_from_slice(&x.shape[ax + 1..]);
                one(x.dtype, shape)
            }
            Layout::GatherElements { axis } => {
                check_arity(inputs, 2, 2)?;
                let (x, i) = (ty(inputs, 0, "data")?, ty(inputs, 1, "indices")?);
                check_index_type(i, "indices")?;
                let ax = norm_axis(*axis, x.shape.len())?;
                check_elements_shape(&x.shape, &i.shape, ax)?;
                one(x.dtype, i.shape.clone())
            }
            Layout::GatherND { batch_dims } => {
                check_arity(inputs, 2, 2)?;
                let (x, i) = (ty(inputs, 0, "data")?, ty(inputs, 1, "indices")?);
                check_index_type(i, "indices")?;
                let (b, k) = gather_nd_dims(&x.shape, &i.shape, *batch_dims)?;
                let mut shape = i.shape[..i.shape.len() - 1].to_vec();
                shape.extend_from_slice(&x.shape[b + k..]);
                one(x.dtype, shape)
            }
            Layout::ScatterND { .. } => {
                check_arity(inputs, 3, 3)?;
                let (x, i, u) = (
                    ty(inputs, 0, "data")?,
                    ty(inputs, 1, "indices")?,
                    ty(inputs, 2, "updates")?,
                );
                check_index_type(i, "indices")?;
                if u.dtype != x.dtype {
                    type_err!("updates are {} but data is {}", u.dtype, x.dtype);
                }
                let (_, k) = gather_nd_dims(&x.shape, &i.shape, 0)?;
                let mut want = i.shape[..i.shape.len() - 1].to_vec();
                want.extend_from_slice(&x.shape[k..]);
                if u.shape != want {
                    shape_err!("updates must have shape {want:?}, got {:?}", u.shape);
                }
                one(x.dtype, x.shape.clone())
            }
            Layout::ScatterElements { axis, .. } => {
                check_arity(inputs, 3, 3)?;
                let (x, i, u) = (
                    ty(inputs, 0, "data")?,
                    ty(inputs, 1, "indices")?,
                    ty(inputs, 2, "updates")?,
                );
                check_index_type(i, "indices")?;
                if u.dtype != x.dtype {
                    type_err!("updates are {} but data is {}", u.dtype, x.dtype);
                }
                if u.shape != i.shape {
                    shape_err!(
                        "updates {:?} and indices {:?} must have the same shape",
                        u.shape,
                        i.shape
                    );
                }
                let ax = norm_axis(*axis, x.shape.len())?;
                check_elements_shape(&x.shape, &i.shape, ax)?;
                one(x.dtype, x.shape.clone())
            }
            Layout::Expand => {
                check_arity(inputs, 2, 2)?;
                let x = ty(inputs, 0, "input")?;
                let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
                let target: Shape = target
                    .iter()
                    .map(|&d| to_dim(d, "an Expand dim"))
                    .collect::<Result<_>>()?;
                one(x.dtype, broadcast_shapes(&[&x.shape, &target])?)
            }
            Layout::Tile => {
                check_arity(inputs, 2, 2)?;
                let x = ty(inputs, 0, "input")?;
                let reps = int_list(const_input(inputs, 1, "repeats")?, "repeats")?;
                if reps.len() != x.shape.len() {
                    shape_err!(
                        "repeats {reps:?} must have one entry per dim of {:?}",
                        x.shape
                    );
                }
                let mut shape = Vec::with_capacity(reps.len());
                for (&d, &r) in x.shape.iter().zip(&reps) {
                    let r = to_dim(r, "a repeat count")?;
                    shape.push(
                        d.checked_mul(r)
                            .ok_or_else(|| Error::Overflow("tiled dim".into()))?,
                    );
                }
                numel(&shape)?;
                one(x.dtype, shape)
            }
            Layout::Pad { mode, .. } => {
                let x = ty(inputs, 0, "data")?;
                let amounts = self.pad_params(inputs, x.shape.len())?;
                if let Some(v) = opt(inputs, 2) {
                    if v.ty.dtype != x.dtype {
                        type_err!("constant_value is {} but data is {}", v.ty.dtype, x.dtype);
                    }
                    if v.ty.numel()? > 1 {
                        shape_err!("constant_value must be a scalar, got {}", v.ty);
                    }
                }
                let mut shape = Vec::with_capacity(amounts.len());
                for (&d, &(b, e)) in x.shape.iter().zip(&amounts) {
                    shape.push(pad_axis(d, b, e, *mode)?.3);
                }
                one(x.dtype, shape)
            }
            Layout::Shape { start, end } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "data")?;
                let (s, e) = shape_range(x.shape.len(), *start, *end);
                one(DType::I64, vec![e - s])
            }
            Layout::Size => {
                check_arity(inputs, 1, 1)?;
                ty(inputs, 0, "data")?;
                one(DType::I64, vec![])
            }
            Layout::Range { .. } => {
                check_arity(inputs, 3, 3)?;
                let s = const_input(inputs, 0, "start")?;
                let n = range_count(
                    s,
                    const_input(inputs, 1, "limit")?,
                    const_input(inputs, 2, "delta")?,
                )?;
                one(s.dtype(), vec![n])
            }
            Layout::ConstantOfShape { value } => {
                check_arity(inputs, 1, 1)?;
                let target = int_list(const_input(inputs, 0, "input")?, "shape")?;
                let shape: Shape = target
                    .iter()
                    .map(|&d| to_dim(d, "a dim"))
                    .collect::<Result<_>>()?;
                numel(&shape)?;
                one(value.as_ref().map_or(DType::F32, |v| v.dtype()), shape)
            }
            Layout::Identity => {
                check_arity(inputs, 1, 1)?;
                Ok(vec![ty(inputs, 0, "input")?.clone()])
            }
            Layout::Dropout {
                outputs,
                mask_like_input,
            } => {
                check_arity(inputs, 1, 3)?;
                let x = ty(inputs, 0, "data")?;
                if !x.dtype.is_float() {
                    type_err!("Dropout does not accept {}", x.dtype);
                }
                if let Some(r) = opt(inputs, 1)
                    && !r.ty.dtype.is_float()
                {
                    type_err!("ratio must be float, got {}", r.ty.dtype);
                }
                if opt(inputs, 2).is_some() {
                    let t = const_input(inputs, 2, "training_mode")?;
                    let training = t.as_slice::<bool>()?.first().copied().unwrap_or(false);
                    // Training mode drops at random, except with ratio 0: then
                    // the ratio must be known to tell.
                    let zero_ratio = training
                        && opt(inputs, 1).is_some()
                        && const_input(inputs, 1, "ratio")?.to_f64_vec() == [0.0];
                    if training && !zero_ratio {
                        return Err(Error::Unsupported(
                            "Dropout with training_mode=true is random; export the model for inference".into(),
                        ));
                    }
                }
                let mut out = vec![x.clone()];
                if *outputs == 2 {
                    let mask = if *mask_like_input {
                        x.dtype
                    } else {
                        DType::Bool
                    };
                    out.push(TensorType::new(mask, x.shape.clone()));
                }
                Ok(out)
            }
            Layout::DepthToSpace { blocksize: b, .. } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "input")?;
                let [n, c, h, w] = x.shape[..] else {
                    shape_err!("DepthToSpace needs a 4-D input, got {x}")
                };
                let bb = b
                    .checked_mul(*b)
                    .ok_or_else(|| Error::Overflow(format!("blocksize {b}")))?;
                if c % bb != 0 {
                    shape_err!("channels {c} are not a multiple of blocksize² {bb}");
                }
                let grow = |d: usize| {
                    d.checked_mul(*b)
                        .ok_or_else(|| Error::Overflow(format!("dim {d} × {b}")))
                };
                one(x.dtype, vec![n, c / bb, grow(h)?, grow(w)?])
            }
            Layout::SpaceToDepth { blocksize: b, .. } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "input")?;
                let [n, c, h, w] = x.shape[..] else {
                    shape_err!("SpaceToDepth needs a 4-D input, got {x}")
                };
                if h % b != 0 || w % b != 0 {
                    shape_err!("height {h} and width {w} must be multiples of the blocksize {b}");
                }
                let c2 = b.checked_mul(*b).and_then(|bb| bb.checked_mul(c));
                let c2 = c2.ok_or_else(|| Error::Overflow(format!("channels {c} × {b}²")))?;
                one(x.dtype, vec![n, c2, h / b, w / b])
            }
            Layout::Resize(r) | Layout::Upsample(r) => {
                match r.form {
                    ResizeForm::ScalesAttr(_) => check_arity(inputs, 1, 1)?,
                    ResizeForm::ScalesInput => check_arity(inputs, 2, 2)?,
                    ResizeForm::Full => check_arity(inputs, 1, 4)?,
                }
                let x = ty(inputs, 0, "X")?;
                if let Some(roi) = opt(inputs, 1).filter(|_| r.form == ResizeForm::Full)
                    && !roi.ty.dtype.is_float()
                {
                    type_err!("roi must be float, got {}", roi.ty.dtype);
                }
                let (scales, sizes) = resize_operands(r, inputs)?;
                let (shape, _) = resize_plan(r, &x.shape, scales, sizes)?;
                one(x.dtype, shape)
            }
            Layout::OneHot { axis } => {
                check_arity(inputs, 3, 3)?;
                let (i, v) = (ty(inputs, 0, "indices")?, ty(inputs, 2, "values")?);
                if !(i.dtype.is_int() || i.dtype.is_float()) {
                    type_err!("indices must be numeric, got {}", i.dtype);
                }
                if v.numel()? != 2 {
                    shape_err!("values must hold [off, on], got {v}");
                }
                let (shape, _) = onehot_shape(&i.shape, const_input(inputs, 1, "depth")?, *axis)?;
                numel(&shape)?;
                one(v.dtype, shape)
            }
            Layout::NonZero => {
                check_arity(inputs, 1, 1)?;
                let x = const_input(inputs, 0, "X")?;
                let nnz = nonzero_mask(x).iter().filter(|b| **b).count();
                one(DType::I64, vec![x.rank(), nnz])
            }
            Layout::Trilu { .. } => {
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
            Layout::EyeLike { dtype, .. } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(inputs, 0, "input")?;
                if x.shape.len() != 2 {
                    shape_err!("EyeLike needs a 2-D input, got {x}");
                }
                one(dtype.unwrap_or(x.dtype), x.shape.clone())
            }
            Layout::Compress { axis } => {
                check_arity(inputs, 2, 2)?;
                let x = ty(inputs, 0, "input")?;
                let cond = const_input(inputs, 1, "condition")?;
                match axis {
                    None => one(x.dtype, vec![compress_indices(cond, x.numel()?)?.len()]),
                    Some(a) => {
                        let ax = norm_axis(*a, x.shape.len())?;
                        let mut shape = x.shape.clone();
                        shape[ax] = compress_indices(cond, x.shape[ax])?.len();
                        one(x.dtype, shape)
                    }
                }
            }
            Layout::ReverseSequence { batch_axis, .. } => {
                check_arity(inputs, 2, 2)?;
                let (x, l) = (ty(inputs, 0, "input")?, ty(inputs, 1, "sequence_lens")?);
                if x.shape.len() < 2 {
                    shape_err!("ReverseSequence needs rank 2 or more, got {x}");
                }
                check_index_type(l, "sequence_lens")?;
                if l.shape != [x.shape[*batch_axis]] {
                    shape_err!(
                        "sequence_lens {l} must hold one length per batch ({})",
                        x.shape[*batch_axis]
                    );
                }
                Ok(vec![x.clone()])
            }
            Layout::CenterCropPad { axes } => {
                check_arity(inputs, 2, 2)?;
                let x = ty(inputs, 0, "input_data")?;
                let target = int_list(const_input(inputs, 1, "shape")?, "shape")?;
                let plan = center_crop_pad_plan(&x.shape, &target, axes.as_deref())?;
                one(x.dtype, plan.iter().map(|p| p.0).collect())
            }
        }
    }

    /// Slice's resolved per-axis parameters, from attributes or operands.
    fn slice_params(
        &self,
        inputs: &[Option<InferInput<'_>>],
        shape: &[usize],
    ) -> Result<Vec<SliceAxis>> {
        match self {
            Layout::Slice { attrs: Some(a) } => {
                check_arity(inputs, 1, 1)?;
                slice_plan(shape, &a.starts, &a.ends, a.axes.as_deref(), None)
            }
            _ => {
                check_arity(inputs, 3, 5)?;
                let starts = int_list(const_input(inputs, 1, "starts")?, "starts")?;
                let ends = int_list(const_input(inputs, 2, "ends")?, "ends")?;
                let axes = opt_const_ints(inputs, 3, "axes")?;
                let steps = opt_const_ints(inputs, 4, "steps")?;
                slice_plan(shape, &starts, &ends, axes.as_deref(), steps.as_deref())
            }
        }
    }

    /// Pad's per-axis amounts, from attributes or operands.
    fn pad_params(
        &self,
        inputs: &[Option<InferInput<'_>>],
        rank: usize,
    ) -> Result<Vec<(i64, i64)>> {
        match self {
            Layout::Pad { attrs: Some(a), .. } => {
                check_arity(inputs, 1, 1)?;
                pad_amounts(rank, &a.pads, None)
            }
            _ => {
                check_arity(inputs, 2, 4)?;
                let pads = int_list(const_input(inputs, 1, "pads")?, "pads")?;
                let axes = opt_const_ints(inputs, 3, "axes")?;
                pad_amounts(rank, &pads, axes.as_deref())
            }
        }
    }
}

/// GatherElements/ScatterElements: indices have the data's rank and do not
/// exceed it on the other axes.
fn check_elements_shape(data: &[usize], indices: &[usize], axis: usize) -> Result<()> {
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
fn gather_nd_dims(data: &[usize], indices: &[usize], batch_dims: i64) -> Result<(usize, usize)> {
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
fn gather_rows<T: Copy>(v: &[T], outer: usize, d: usize, inner: usize, idx: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let b = (o * d + i) * inner;
            out.extend_from_slice(&v[b..b + inner]);
        }
    }
    out
}

/// For GatherElements/ScatterElements: the data offset of every index element
/// with its own coordinate on `axis` left out.
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
fn nd_offsets(
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

/// The source coordinate of output position `y` on one Resize axis, and
/// whether it lies outside the input (tf_crop_and_resize extrapolation).
fn source_coord(
    coord: CoordMode,
    y: usize,
    scale: f64,
    in_w: usize,
    out_w: usize,
    roi: Roi,
) -> (f64, bool) {
    let y = y as f64;
    let iw = in_w as f64;
    // The reference uses the unrounded output width here.
    let ow = scale * iw;
    let x = match coord {
        CoordMode::AlignCorners => {
            if ow == 1.0 {
                0.0
            } else {
                y * (iw - 1.0) / (ow - 1.0)
            }
        }
        CoordMode::Asymmetric => y / scale,
        CoordMode::TfCropAndResize => {
            let x = if ow == 1.0 {
                roi.diff * (iw - 1.0) / 2.0
            } else {
                y * roi.diff * (iw - 1.0) / (ow - 1.0)
            };
            let x = x + roi.start_scaled(iw - 1.0);
            return (x, x < 0.0 || x > iw - 1.0);
        }
        CoordMode::PytorchHalfPixel => {
            if ow == 1.0 {
                -0.5
            } else {
                (y + 0.5) / scale - 0.5
            }
        }
        CoordMode::HalfPixel => (y + 0.5) / scale - 0.5,
        CoordMode::HalfPixelSymmetric => {
            let adjustment = out_w as f64 / ow;
            let offset = iw / 2.0 * (1.0 - adjustment);
            offset + (y + 0.5) / scale - 0.5
        }
        CoordMode::TfHalfPixelForNn => (y + 0.5) / scale,
    };
    (x, false)
}

/// One axis of a Resize region of interest.
#[derive(Clone, Copy, Debug)]
struct Roi {
    start: f64,
    end: f64,
    /// `end - start`, rounded like the reference (in the roi tensor's precision).
    diff: f64,
    /// The roi tensor is f32: the reference does the `start` products in f32.
    f32: bool,
}

impl Roi {
    const FULL: Roi = Roi {
        start: 0.0,
        end: 1.0,
        diff: 1.0,
        f32: false,
    };

    fn new(start: f64, end: f64, f32: bool) -> Roi {
        let diff = if f32 {
            (end as f32 - start as f32) as f64
        } else {
            end - start
        };
        Roi {
            start,
            end,
            diff,
            f32,
        }
    }

    fn start_scaled(self, k: f64) -> f64 {
        if self.f32 {
            (self.start as f32 * k as f32) as f64
        } else {
            self.start * k
        }
    }

    fn is_full(self) -> bool {
        is_close(self.start, 0.0) && is_close(self.end, 1.0)
    }
}

/// Python's `math.isclose` with its default tolerances.
fn is_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn nearest_index(x: f64, mode: NearestMode, scale: f64, in_w: usize) -> usize {
    let half = x - x.floor() == 0.5;
    let i = match mode {
        NearestMode::RoundPreferFloor if half => x.floor(),
        NearestMode::RoundPreferCeil if half => x.ceil(),
        NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => x.round(),
        NearestMode::Floor => x.floor(),
        NearestMode::Ceil => x.ceil(),
        NearestMode::Simple if scale < 1.0 => x.ceil(),
        NearestMode::Simple => x.floor(),
    };
    i.clamp(0.0, (in_w - 1) as f64) as usize
}

/// The interpolation taps `(input index, weight)` of one output position, as
/// the ONNX reference chooses them: the `n` nearest input positions (edge
/// clamped) weighted by the mode's kernel.
fn interp_taps(r: &ResizeAttrs, x: f64, scale: f64, in_w: usize) -> Vec<(usize, f64)> {
    let xi = x.floor();
    let ratio = if x == xi { 1.0 } else { x - xi };
    let a = r.cubic_a as f64;
    let mut c: Vec<f64> = match (r.mode, r.antialias) {
        (InterpMode::Linear, false) | (InterpMode::Nearest, _) => vec![1.0 - ratio, ratio],
        (InterpMode::Linear, true) => {
            let s = scale.min(1.0);
            let start = (-1.0 / s).floor() as i64 + 1;
            let footprint = 2 - 2 * start;
            let c: Vec<f64> = (start..start + footprint)
                .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0))
                .collect();
            let sum: f64 = c.iter().sum();
            c.iter().map(|v| v / sum).collect()
        }
        (InterpMode::Cubic, false) => {
            let (r1, q) = (ratio + 1.0, 1.0 - ratio);
            let q1 = q + 1.0;
            vec![
                ((a * r1 - 5.0 * a) * r1 + 8.0 * a) * r1 - 4.0 * a,
                ((a + 2.0) * ratio - (a + 3.0)) * ratio * ratio + 1.0,
                ((a + 2.0) * q - (a + 3.0)) * q * q + 1.0,
                ((a * q1 - 5.0 * a) * q1 + 8.0 * a) * q1 - 4.0 * a,
            ]
        }
        (InterpMode::Cubic, true) => {
            let s = scale.min(1.0);
            let kernel = |x: f64| {
                let x = x.abs();
                let (x2, x3) = (x * x, x * x * x);
                if x <= 1.0 {
                    (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
                } else if x < 2.0 {
                    a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
                } else {
                    0.0
                }
            };
            let start = (-2.0 / s).floor() as i64 + 1;
            let end = 2 - start;
            let c: Vec<f64> = (start..end)
                .map(|i| kernel(s * (i as f64 - ratio)))
                .collect();
            let sum: f64 = c.iter().sum();
            c.iter().map(|v| v / sum).collect()
        }
    };
    let n = c.len() as i64;
    let pad = (n + 1) / 2;
    let xp = x + pad as f64;
    let p = xp.floor();
    let frac = xp - p;
    let off = if n % 2 == 0 {
        if frac == 0.0 { -(n / 2) } else { -(n / 2) + 1 }
    } else {
        let base = -((n - 1) / 2);
        if frac <= 0.5 { base } else { base + 1 }
    };
    let start = p as i64 + off - pad;
    let last = in_w as i64 - 1;
    if r.exclude_outside {
        for (j, w) in c.iter_mut().enumerate() {
            let i = start + j as i64;
            if i < 0 || i > last {
                *w = 0.0;
            }
        }
        let sum: f64 = c.iter().sum();
        let sum = if sum == 0.0 { 1.0 } else { sum };
        for w in &mut c {
            *w /= sum;
        }
    }
    c.into_iter()
        .enumerate()
        .map(|(j, w)| ((start + j as i64).clamp(0, last) as usize, w))
        .collect()
}

/// Interpolates `src` (f64, of `shape`) along `axis` to `taps.len()` positions.
fn interp_axis(
    src: &[f64],
    shape: &[usize],
    axis: usize,
    taps: &[Vec<(usize, f64)>],
    extrap: &[bool],
    ev: f64,
) -> Vec<f64> {
    let outer = prod(&shape[..axis]);
    let d = shape[axis];
    let inner = prod(&shape[axis + 1..]);
    let m = taps.len();
    let mut out = vec![0.0f64; outer * m * inner];
    for o in 0..outer {
        for (j, tj) in taps.iter().enumerate() {
            let dst = &mut out[(o * m + j) * inner..(o * m + j + 1) * inner];
            if extrap[j] {
                dst.fill(ev);
                continue;
            }
            for &(i, w) in tj {
                let s = &src[(o * d + i) * inner..(o * d + i + 1) * inner];
                for (a, b) in dst.iter_mut().zip(s) {
                    *a += w * b;
                }
            }
        }
    }
    out
}

/// Rounds an interpolated value to `T` like the reference's saturating cast:
/// integers round half to even and clamp to their range.
fn from_interp<T: Elem>(v: f64) -> T {
    let range = match T::DTYPE {
        DType::I8 => Some((i8::MIN as f64, i8::MAX as f64)),
        DType::U8 => Some((0.0, u8::MAX as f64)),
        DType::I16 => Some((i16::MIN as f64, i16::MAX as f64)),
        DType::U16 => Some((0.0, u16::MAX as f64)),
        DType::I32 => Some((i32::MIN as f64, i32::MAX as f64)),
        DType::U32 => Some((0.0, u32::MAX as f64)),
        DType::I64 => Some((i64::MIN as f64, i64::MAX as f64)),
        DType::U64 => Some((0.0, u64::MAX as f64)),
        DType::F32 | DType::F16 | DType::BF16 | DType::F64 | DType::Bool => None,
    };
    match range {
        Some((lo, hi)) if !v.is_nan() => T::from_f64(v.round_ties_even().clamp(lo, hi)),
        _ => T::from_f64(v),
    }
}

fn eval_resize(r: &ResizeAttrs, x: &Tensor, ins: &[Option<InferInput<'_>>]) -> Result<Tensor> {
    let (scales, sizes) = resize_operands(r, ins)?;
    let (out_shape, sc) = resize_plan(r, x.shape(), scales, sizes)?;
    let rank = x.rank();
    let mut roi = vec![Roi::FULL; rank];
    if let (ResizeForm::Full, Some(t)) = (&r.form, opt(ins, 1).and_then(|i| i.value))
        && !t.is_empty()
    {
        let axes: Vec<usize> = match &r.axes {
            Some(a) => norm_axes(a, rank)?,
            None => (0..rank).collect(),
        };
        let v = t.to_f64_vec();
        if v.len() != 2 * axes.len() {
            shape_err!("roi must have 2 × {} entries, got {}", axes.len(), v.len());
        }
        for (i, &ax) in axes.iter().enumerate() {
            roi[ax] = Roi::new(v[i], v[axes.len() + i], t.dtype() == DType::F32);
        }
    }
    let crop = r.coord == CoordMode::TfCropAndResize;
    let skip = |ax: usize| {
        is_close(sc[ax], 1.0) && out_shape[ax] == x.shape()[ax] && (!crop || roi[ax].is_full())
    };
    let coords = |ax: usize| -> Vec<(f64, bool)> {
        (0..out_shape[ax])
            .map(|y| source_coord(r.coord, y, sc[ax], x.shape()[ax], out_shape[ax], roi[ax]))
            .collect()
    };
    let ev = r.extrapolation as f64;
    if r.mode == InterpMode::Nearest {
        let st = strides(x.shape());
        let maps: Vec<Vec<Option<usize>>> = (0..rank)
            .map(|ax| {
                if skip(ax) {
                    return (0..x.shape()[ax]).map(|i| Some(i * st[ax])).collect();
                }
                coords(ax)
                    .into_iter()
                    .map(|(c, out)| {
                        (!out).then(|| nearest_index(c, r.nearest, sc[ax], x.shape()[ax]) * st[ax])
                    })
                    .collect()
            })
            .collect();
        let data = map_data!(x, v, T => remap(v, &maps, from_interp::<T>(ev))?);
        return Tensor::new(out_shape, data);
    }
    let mut cur = x.to_f64_vec();
    let mut shape = x.shape().to_vec();
    for ax in 0..rank {
        if skip(ax) {
            continue;
        }
        let cs = coords(ax);
        let taps: Vec<Vec<(usize, f64)>> = cs
            .iter()
            .map(|&(c, _)| interp_taps(r, c, sc[ax], shape[ax]))
            .collect();
        let extrap: Vec<bool> = cs.iter().map(|&(_, e)| e).collect();
        cur = interp_axis(&cur, &shape, ax, &taps, &extrap, ev);
        shape[ax] = out_shape[ax];
    }
    let data = dispatch_dtype!(x.dtype(), T => T::wrap(cur.iter().map(|&v| from_interp::<T>(v)).collect()));
    Tensor::new(out_shape, data)
}

fn eval_range(start: &Tensor, delta: &Tensor, n: usize, stash_f32: bool) -> Result<Tensor> {
    let data = match start.dtype() {
        DType::I16 | DType::I32 | DType::I64 => {
            let (s, d) = (start.to_i64_vec()[0] as i128, delta.to_i64_vec()[0] as i128);
            let vals = (0..n as i128).map(|i| (s + i * d) as i64);
            dispatch_dtype!(start.dtype(), T => T::wrap(vals.map(T::from_i64).collect()))
        }
        dt => {
            let (s, d) = (start.to_f64_vec()[0], delta.to_f64_vec()[0]);
            let half = matches!(dt, DType::F16 | DType::BF16);
            if stash_f32 && half {
                // NumPy's float32 arange: the first two values in f32, then
                // `start + i * (second - start)` in f32.
                let s32 = s as f32;
                let d32 = (s + d) as f32 - s32;
                let vals: Vec<f64> = (0..n)
                    .map(|i| {
                        if i == 0 {
                            s32 as f64
                        } else {
                            (s32 + i as f32 * d32) as f64
                        }
                    })
                    .collect();
                dispatch_dtype!(dt, T => T::wrap(vals.iter().map(|&v| T::from_f64(v)).collect()))
            } else {
                dispatch_dtype!(dt, T => T::wrap((0..n).map(|i| T::from_f64(s + i as f64 * d)).collect()))
            }
        }
    };
    Tensor::new(vec![n], data)
}

impl Layout {
    fn eval_impl(
        &self,
        inputs: &[Option<&Tensor>],
        ins: &[Option<InferInput<'_>>],
        outs: &[TensorType],
    ) -> Result<Vec<Tensor>> {
        let x = req(inputs, 0, "input")?;
        let out_shape = || outs[0].shape.clone();
        let single = |t: Tensor| Ok(vec![t]);
        match self {
            Layout::Reshape { .. }
            | Layout::Flatten { .. }
            | Layout::Squeeze { .. }
            | Layout::Unsqueeze { .. }
            | Layout::Identity => single(x.clone().reshaped(out_shape())?),
            Layout::Transpose { perm } => {
                let p = transpose_perm(x.rank(), perm.as_deref())?;
                single(view_tensor(
                    x,
                    0,
                    &permuted_dims(x.shape(), &p),
                    out_shape(),
                )?)
            }
            Layout::Concat { axis } => {
                let xs: Vec<&Tensor> = (0..inputs.len())
                    .map(|i| req(inputs, i, "inputs"))
                    .collect::<Result<_>>()?;
                let ax = norm_axis(*axis, x.rank())?;
                let outer = prod(&x.shape()[..ax]);
                let chunks: Vec<usize> = xs.iter().map(|t| prod(&t.shape()[ax..])).collect();
                let data = map_data!(x, _v, T => {
                    let srcs: Vec<&[T]> = xs.iter().map(|t| t.as_slice::<T>()).collect::<Result<_>>()?;
                    let mut out = Vec::with_capacity(numel(&outs[0].shape)?);
                    for o in 0..outer {
                        for (s, &c) in srcs.iter().zip(&chunks) {
                            out.extend_from_slice(&s[o * c..(o + 1) * c]);
                        }
                    }
                    out
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::Split { axis, .. } => {
                let ax = norm_axis(*axis, x.rank())?;
                let (outer, d, inner) = (
                    prod(&x.shape()[..ax]),
                    x.shape()[ax],
                    prod(&x.shape()[ax + 1..]),
                );
                let mut start = 0usize;
                let mut res = Vec::with_capacity(outs.len());
                for o in outs {
                    let len = o.shape[ax];
                    let dims = [(outer, (d * inner) as isize), (len * inner, 1)];
                    res.push(view_tensor(x, start * inner, &dims, o.shape.clone())?);
                    start += len;
                }
                Ok(res)
            }
            Layout::Slice { .. } => {
                let plan = self.slice_params(ins, x.shape())?;
                let st = strides(x.shape());
                let offset: usize = plan.iter().zip(&st).map(|(p, &s)| p.start * s).sum();
                let dims: Vec<(usize, isize)> = plan
                    .iter()
                    .zip(&st)
                    .map(|(p, &s)| (p.count, p.step * s as isize))
                    .collect();
                single(view_tensor(x, offset, &dims, out_shape())?)
            }
            Layout::Gather { axis } => {
                let i = req(inputs, 1, "indices")?;
                let ax = norm_axis(*axis, x.rank())?;
                let d = x.shape()[ax];
                let idx: Vec<usize> = i
                    .to_i64_vec()
                    .into_iter()
                    .map(|j| norm_index(j, d, "Gather index"))
                    .collect::<Result<_>>()?;
                let (outer, inner) = (prod(&x.shape()[..ax]), prod(&x.shape()[ax + 1..]));
                let data = map_data!(x, v, T => gather_rows(v, outer, d, inner, &idx));
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::GatherElements { axis } => {
                let i = req(inputs, 1, "indices")?;
                let ax = norm_axis(*axis, x.rank())?;
                let (d, stride) = (x.shape()[ax], strides(x.shape())[ax]);
                let bases = element_bases(x.shape(), i.shape(), ax);
                let offs: Vec<usize> = bases
                    .iter()
                    .zip(i.to_i64_vec())
                    .map(|(&b, j)| Ok(b + norm_index(j, d, "GatherElements index")? * stride))
                    .collect::<Result<_>>()?;
                let data = map_data!(x, v, T => offs.iter().map(|&o| v[o]).collect());
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::GatherND { batch_dims } => {
                let i = req(inputs, 1, "indices")?;
                let (b, k) = gather_nd_dims(x.shape(), i.shape(), *batch_dims)?;
                let offs = nd_offsets(x.shape(), i.shape(), &i.to_i64_vec(), b, k)?;
                let len = prod(&x.shape()[b + k..]);
                let data = map_data!(x, v, T => {
                    let mut out = Vec::with_capacity(offs.len() * len);
                    for &o in &offs {
                        out.extend_from_slice(&v[o..o + len]);
                    }
                    out
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::ScatterND { reduction } => {
                let (i, u) = (req(inputs, 1, "indices")?, req(inputs, 2, "updates")?);
                let (_, k) = gather_nd_dims(x.shape(), i.shape(), 0)?;
                let offs = nd_offsets(x.shape(), i.shape(), &i.to_i64_vec(), 0, k)?;
                let len = prod(&x.shape()[k..]);
                let data = map_data!(x, v, T => {
                    let uv = u.as_slice::<T>()?;
                    let mut out = v.to_vec();
                    for (t, &o) in offs.iter().enumerate() {
                        let (dst, src) = (&mut out[o..o + len], &uv[t * len..(t + 1) * len]);
                        match reduction {
                            Reduction::None => dst.copy_from_slice(src),
                            r => {
                                for (a, &b) in dst.iter_mut().zip(src) {
                                    *a = a.combine(b, *r);
                                }
                            }
                        }
                    }
                    out
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::ScatterElements {
                axis, reduction, ..
            } => {
                let (i, u) = (req(inputs, 1, "indices")?, req(inputs, 2, "updates")?);
                let ax = norm_axis(*axis, x.rank())?;
                let (d, stride) = (x.shape()[ax], strides(x.shape())[ax]);
                let bases = element_bases(x.shape(), i.shape(), ax);
                let offs: Vec<usize> = bases
                    .iter()
                    .zip(i.to_i64_vec())
                    .map(|(&b, j)| Ok(b + norm_index(j, d, "ScatterElements index")? * stride))
                    .collect::<Result<_>>()?;
                let data = map_data!(x, v, T => {
                    let uv = u.as_slice::<T>()?;
                    let mut out = v.to_vec();
                    for (&o, &b) in offs.iter().zip(uv) {
                        out[o] = out[o].combine(b, *reduction);
                    }
                    out
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::Expand => {
                let shape = out_shape();
                let st = strides(x.shape());
                let lead = shape.len() - x.rank();
                let dims: Vec<(usize, isize)> = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| match i.checked_sub(lead) {
                        Some(j) if x.shape()[j] == d => (d, st[j] as isize),
                        _ => (d, 0),
                    })
                    .collect();
                single(view_tensor(x, 0, &dims, shape)?)
            }
            Layout::Tile => {
                let st = strides(x.shape());
                let dims: Vec<(usize, isize)> = outs[0]
                    .shape
                    .iter()
                    .zip(x.shape())
                    .zip(&st)
                    .flat_map(|((&o, &d), &s)| {
                        [(o.checked_div(d).unwrap_or(0), 0), (d, s as isize)]
                    })
                    .collect();
                single(view_tensor(x, 0, &dims, out_shape())?)
            }
            Layout::Pad { mode, attrs } => {
                let amounts = self.pad_params(ins, x.rank())?;
                let st = strides(x.shape());
                let maps: Vec<Vec<Option<usize>>> = amounts
                    .iter()
                    .enumerate()
                    .map(|(ax, &(b, e))| {
                        Ok(pad_axis_map(x.shape()[ax], b, e, *mode)?
                            .into_iter()
                            .map(|m| m.map(|i| i * st[ax]))
                            .collect())
                    })
                    .collect::<Result<_>>()?;
                let value = opt(inputs, 2);
                let data = map_data!(x, v, T => {
                    let fill = match (value, attrs) {
                        (Some(c), _) => c.as_slice::<T>()?.first().copied().unwrap_or_default(),
                        (None, Some(a)) => T::from_f64(a.value as f64),
                        (None, None) => T::default(),
                    };
                    remap(v, &maps, fill)?
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::Shape { start, end } => {
                let (s, e) = shape_range(x.rank(), *start, *end);
                let dims: Vec<i64> = x.shape()[s..e].iter().map(|&d| d as i64).collect();
                single(Tensor::from_vec(out_shape(), dims)?)
            }
            Layout::Size => single(Tensor::scalar(x.len() as i64)),
            Layout::Range { stash_f32 } => single(eval_range(
                x,
                req(inputs, 2, "delta")?,
                outs[0].shape[0],
                *stash_f32,
            )?),
            Layout::ConstantOfShape { value } => {
                let n = numel(&outs[0].shape)?;
                let data = match value {
                    Some(t) => map_data!(t, v, T => vec![v[0]; n]),
                    None => Elem::wrap(vec![0f32; n]),
                };
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::Dropout { .. } => {
                let mut res = vec![x.clone()];
                if let Some(m) = outs.get(1) {
                    let data =
                        dispatch_dtype!(m.dtype, T => T::wrap(vec![T::from_f64(1.0); x.len()]));
                    res.push(Tensor::new(m.shape.clone(), data)?);
                }
                Ok(res)
            }
            Layout::DepthToSpace { blocksize: b, crd } => {
                let [n, c, h, w] = x.shape()[..] else {
                    shape_err!("DepthToSpace needs a 4-D input")
                };
                let c2 = c / (b * b);
                // View the input as 6-D and transpose to [n, c2, h, b, w, b].
                let dims = if *crd {
                    permuted_dims(&[n, c2, *b, *b, h, w], &[0, 1, 4, 2, 5, 3])
                } else {
                    permuted_dims(&[n, *b, *b, c2, h, w], &[0, 3, 4, 1, 5, 2])
                };
                single(view_tensor(x, 0, &dims, out_shape())?)
            }
            Layout::SpaceToDepth { blocksize: b, crd } => {
                let [n, c, h, w] = x.shape()[..] else {
                    shape_err!("SpaceToDepth needs a 4-D input")
                };
                let six = [n, c, h / b, *b, w / b, *b];
                let perm: &[usize] = if *crd {
                    &[0, 1, 3, 5, 2, 4]
                } else {
                    &[0, 3, 5, 1, 2, 4]
                };
                single(view_tensor(x, 0, &permuted_dims(&six, perm), out_shape())?)
            }
            Layout::Resize(r) | Layout::Upsample(r) => single(eval_resize(r, x, ins)?),
            Layout::OneHot { axis } => {
                let (depth_t, values) = (req(inputs, 1, "depth")?, req(inputs, 2, "values")?);
                let (shape, depth) = onehot_shape(x.shape(), depth_t, *axis)?;
                let ax = norm_axis_inclusive(*axis, x.rank())?;
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
            Layout::NonZero => {
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
                single(Tensor::from_vec(out_shape(), out)?)
            }
            Layout::Trilu { upper } => {
                let k = match opt(inputs, 1) {
                    Some(t) => int_scalar(t, "k")?,
                    None => 0,
                };
                let r = x.rank();
                let (rows, cols) = (x.shape()[r - 2] as i64, x.shape()[r - 1] as i64);
                // The kept column range of each row.
                let keep = |i: i64| -> (usize, usize) {
                    let edge = i.saturating_add(k);
                    if *upper {
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
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::EyeLike { k, .. } => {
                let (rows, cols) = (x.shape()[0], x.shape()[1]);
                let data = dispatch_dtype!(outs[0].dtype, T => {
                    let mut out = vec![T::default(); rows * cols];
                    for i in 0..rows {
                        let j = (i as i64).saturating_add(*k);
                        if (0..cols as i64).contains(&j) {
                            out[i * cols + j as usize] = T::from_f64(1.0);
                        }
                    }
                    T::wrap(out)
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::Compress { axis } => {
                let cond = req(inputs, 1, "condition")?;
                let data = match axis {
                    None => {
                        let kept = compress_indices(cond, x.len())?;
                        map_data!(x, v, T => gather_rows(v, 1, v.len(), 1, &kept))
                    }
                    Some(a) => {
                        let ax = norm_axis(*a, x.rank())?;
                        let kept = compress_indices(cond, x.shape()[ax])?;
                        let (outer, d, inner) = (
                            prod(&x.shape()[..ax]),
                            x.shape()[ax],
                            prod(&x.shape()[ax + 1..]),
                        );
                        map_data!(x, v, T => gather_rows(v, outer, d, inner, &kept))
                    }
                };
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::ReverseSequence {
                batch_axis,
                time_axis,
            } => {
                let lens = req(inputs, 1, "sequence_lens")?.to_i64_vec();
                let (bd, td) = (x.shape()[*batch_axis], x.shape()[*time_axis]);
                let inner = prod(&x.shape()[2..]);
                let d1 = x.shape()[1];
                let at = |b: usize, t: usize| {
                    let (i0, i1) = if *batch_axis == 0 { (b, t) } else { (t, b) };
                    (i0 * d1 + i1) * inner
                };
                let lens: Vec<usize> = lens
                    .iter()
                    .map(|&l| match usize::try_from(l) {
                        Ok(l) if l <= td => Ok(l),
                        _ => Err(Error::Eval(format!(
                            "sequence length {l} is outside 0..={td}"
                        ))),
                    })
                    .collect::<Result<_>>()?;
                let data = map_data!(x, v, T => {
                    let mut out = v.to_vec();
                    for b in 0..bd {
                        let l = lens[b];
                        for t in 0..l {
                            let (dst, src) = (at(b, t), at(b, l - 1 - t));
                            out[dst..dst + inner].copy_from_slice(&v[src..src + inner]);
                        }
                    }
                    out
                });
                single(Tensor::new(out_shape(), data)?)
            }
            Layout::CenterCropPad { axes } => {
                let target = int_list(req(inputs, 1, "shape")?, "shape")?;
                let plan = center_crop_pad_plan(x.shape(), &target, axes.as_deref())?;
                let st = strides(x.shape());
                let maps: Vec<Vec<Option<usize>>> = plan
                    .iter()
                    .enumerate()
                    .map(|(ax, &(n, off))| {
                        (0..n as i64)
                            .map(|o| {
                                let i = o + off;
                                (0..x.shape()[ax] as i64)
                                    .contains(&i)
                                    .then(|| i as usize * st[ax])
                            })
                            .collect()
                    })
                    .collect();
                let data = map_data!(x, v, T => remap(v, &maps, T::default())?);
                single(Tensor::new(out_shape(), data)?)
            }
        }
    }
}

impl OpDef for Layout {
    fn name(&self) -> &'static str {
        match self {
            Layout::Reshape { .. } => "Reshape",
            Layout::Flatten { .. } => "Flatten",
            Layout::Transpose { .. } => "Transpose",
            Layout::Squeeze { .. } => "Squeeze",
            Layout::Unsqueeze { .. } => "Unsqueeze",
            Layout::Concat { .. } => "Concat",
            Layout::Split { .. } => "Split",
            Layout::Slice { .. } => "Slice",
            Layout::Gather { .. } => "Gather",
            Layout::GatherElements { .. } => "GatherElements",
            Layout::GatherND { .. } => "GatherND",
            Layout::ScatterND { .. } => "ScatterND",
            Layout::ScatterElements { legacy: true, .. } => "Scatter",
            Layout::ScatterElements { legacy: false, .. } => "ScatterElements",
            Layout::Expand => "Expand",
            Layout::Tile => "Tile",
            Layout::Pad { .. } => "Pad",
            Layout::Shape { .. } => "Shape",
            Layout::Size => "Size",
            Layout::Range { .. } => "Range",
            Layout::ConstantOfShape { .. } => "ConstantOfShape",
            Layout::Identity => "Identity",
            Layout::Dropout { .. } => "Dropout",
            Layout::DepthToSpace { .. } => "DepthToSpace",
            Layout::SpaceToDepth { .. } => "SpaceToDepth",
            Layout::Resize(_) => "Resize",
            Layout::Upsample(_) => "Upsample",
            Layout::OneHot { .. } => "OneHot",
            Layout::NonZero => "NonZero",
            Layout::Trilu { .. } => "Trilu",
            Layout::EyeLike { .. } => "EyeLike",
            Layout::Compress { .. } => "Compress",
            Layout::ReverseSequence { .. } => "ReverseSequence",
            Layout::CenterCropPad { .. } => "CenterCropPad",
        }
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
        let tys: Vec<Option<TensorType>> = inputs
            .iter()
            .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
            .collect();
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
            Layout::Resize(r) | Layout::Upsample(r) => {
                let taps = match r.mode {
                    InterpMode::Nearest => 1,
                    InterpMode::Linear => 4,
                    InterpMode::Cubic => 16,
                };
                moved * taps
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::Attrs;

    fn t<T: Elem>(shape: &[usize], v: &[T]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn i64s(v: &[i64]) -> Tensor {
        t(&[v.len()], v)
    }

    fn f32s(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    fn parse(
        op: &str,
        opset: i64,
        attrs: Vec<(&str, AttrValue)>,
        outputs: usize,
    ) -> Result<Layout> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type: op,
            domain: "",
            opset,
            attrs: &attrs,
            num_inputs: 1,
            num_outputs: outputs,
        };
        Layout::parse(&ctx).expect("a layout op")
    }

    fn run(op: &Layout, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        op.eval(inputs)
    }

    /// Evaluates with all operands present and checks the one output.
    fn check(op: Layout, inputs: &[&Tensor], want: &Tensor) {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        let got = run(&op, &ins).unwrap().remove(0);
        assert_eq!(&got, want, "{op:?}");
    }

    fn vals(x: &Tensor) -> Vec<f64> {
        x.to_f64_vec()
    }

    #[test]
    fn reshape_zero_minus_one_and_allowzero() {
        let x = f32s(&[2, 3, 4]);
        let r = Layout::Reshape { allowzero: false };
        let y = run(&r, &[Some(&x), Some(&i64s(&[0, -1]))])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[2, 12]);
        assert!(run(&r, &[Some(&x), Some(&i64s(&[5, -1]))]).is_err());
        assert!(run(&r, &[Some(&x), Some(&i64s(&[-1, -1]))]).is_err());
        let z = f32s(&[0, 3]);
        let y = run(
            &Layout::Reshape { allowzero: true },
            &[Some(&z), Some(&i64s(&[3, 0]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[3, 0]);
    }

    #[test]
    fn flatten_and_squeeze_unsqueeze() {
        let x = f32s(&[2, 3, 4]);
        let y = run(&Layout::Flatten { axis: -1 }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[6, 4]);
        let y = run(&Layout::Flatten { axis: 0 }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[1, 24]);
        let x = f32s(&[1, 3, 1]);
        let y = run(&Layout::Squeeze { axes: None }, &[Some(&x)])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[3]);
        let y = run(
            &Layout::Squeeze { axes: None },
            &[Some(&x), Some(&i64s(&[-1]))],
        )
        .unwrap()
        .remove(0);
        assert_eq!(y.shape(), &[1, 3]);
        assert!(
            run(
                &Layout::Squeeze {
                    axes: Some(vec![1])
                },
                &[Some(&x)]
            )
            .is_err()
        );
        let y = run(
            &Layout::Unsqueeze { axes: None },
            &[Some(&f32s(&[3, 4])), Some(&i64s(&[-1, 0]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[1, 3, 4, 1]);
        let y = run(
            &Layout::Unsqueeze {
                axes: Some(vec![1]),
            },
            &[Some(&f32s(&[3]))],
        )
        .unwrap();
        assert_eq!(y[0].shape(), &[3, 1]);
    }

    #[test]
    fn transpose_permutes() {
        let x = f32s(&[2, 3]);
        check(
            Layout::Transpose { perm: None },
            &[&x],
            &t(&[3, 2], &[0f32, 3., 1., 4., 2., 5.]),
        );
        let x = f32s(&[2, 3, 4]);
        let y = run(
            &Layout::Transpose {
                perm: Some(vec![1, 2, 0]),
            },
            &[Some(&x)],
        )
        .unwrap()
        .remove(0);
        assert_eq!(y.shape(), &[3, 4, 2]);
        // y[i, j, k] = x[k, i, j]
        assert_eq!(vals(&y)[(2 * 4 + 1) * 2 + 1], (12 + 2 * 4 + 1) as f64);
        assert!(
            run(
                &Layout::Transpose {
                    perm: Some(vec![0, 0, 1])
                },
                &[Some(&x)]
            )
            .is_err()
        );
    }

    #[test]
    fn concat_and_split() {
        let (a, b) = (f32s(&[2, 1]), t(&[2, 2], &[10f32, 11., 12., 13.]));
        check(
            Layout::Concat { axis: -1 },
            &[&a, &b],
            &t(&[2, 3], &[0f32, 10., 11., 1., 12., 13.]),
        );
        assert!(run(&Layout::Concat { axis: 0 }, &[Some(&a), Some(&b)]).is_err());
        let x = f32s(&[7]);
        let sp = parse("Split", 18, vec![("num_outputs", AttrValue::Int(4))], 4).unwrap();
        let ys = run(&sp, &[Some(&x)]).unwrap();
        let lens: Vec<usize> = ys.iter().map(|y| y.len()).collect();
        assert_eq!(lens, [2, 2, 2, 1]);
        assert_eq!(vals(&ys[3]), [6.0]);
        let sp = parse("Split", 13, vec![("axis", AttrValue::Int(1))], 2).unwrap();
        let ys = run(&sp, &[Some(&f32s(&[2, 3])), Some(&i64s(&[1, 2]))]).unwrap();
        assert_eq!(vals(&ys[0]), [0.0, 3.0]);
        assert_eq!(vals(&ys[1]), [1.0, 2.0, 4.0, 5.0]);
        let sp = parse("Split", 11, vec![], 2).unwrap();
        assert!(run(&sp, &[Some(&x)]).is_err());
    }

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = f32s(&[10]);
        let s = Layout::Slice { attrs: None };
        let go = |st: i64, en: i64, step: i64| {
            let y = run(
                &s,
                &[
                    Some(&x),
                    Some(&i64s(&[st])),
                    Some(&i64s(&[en])),
                    None,
                    Some(&i64s(&[step])),
                ],
            );
            vals(&y.unwrap()[0])
        };
        assert_eq!(go(-3, 100, 1), [7.0, 8.0, 9.0]);
        assert_eq!(go(8, 1, -3), [8.0, 5.0, 2.0]);
        assert_eq!(
            go(i64::MAX, i64::MIN, -1),
            (0..10).rev().map(|i| i as f64).collect::<Vec<_>>()
        );
        assert_eq!(go(5, 2, 1), Vec::<f64>::new());
        assert_eq!(go(0, 10, i64::MAX), [0.0]);
        let x2 = f32s(&[3, 4]);
        let y = run(
            &s,
            &[
                Some(&x2),
                Some(&i64s(&[1, 1])),
                Some(&i64s(&[3, 3])),
                Some(&i64s(&[1, 0])),
            ],
        )
        .unwrap();
        assert_eq!(vals(&y[0]), [5.0, 6.0, 9.0, 10.0]);
        let old = parse(
            "Slice",
            9,
            vec![
                ("starts", AttrValue::Ints(vec![1])),
                ("ends", AttrValue::Ints(vec![-1])),
                ("axes", AttrValue::Ints(vec![1])),
            ],
            1,
        )
        .unwrap();
        assert_eq!(
            vals(&run(&old, &[Some(&x2)]).unwrap()[0]),
            [1.0, 2.0, 5.0, 6.0, 9.0, 10.0]
        );
        assert!(
            run(
                &s,
                &[
                    Some(&x),
                    Some(&i64s(&[0])),
                    Some(&i64s(&[1])),
                    None,
                    Some(&i64s(&[0]))
                ]
            )
            .is_err()
        );
    }

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

    #[test]
    fn scatter_family() {
        let d = t(&[4], &[1i32, 2, 3, 4]);
        let i = t(&[2, 1], &[1i64, 1]);
        let u = t(&[2], &[10i32, 20]);
        check(
            Layout::ScatterND {
                reduction: Reduction::None,
            },
            &[&d, &i, &u],
            &t(&[4], &[1i32, 20, 3, 4]),
        );
        check(
            Layout::ScatterND {
                reduction: Reduction::Add,
            },
            &[&d, &i, &u],
            &t(&[4], &[1i32, 32, 3, 4]),
        );
        check(
            Layout::ScatterND {
                reduction: Reduction::Mul,
            },
            &[&d, &i, &u],
            &t(&[4], &[1i32, 400, 3, 4]),
        );
        check(
            Layout::ScatterND {
                reduction: Reduction::Min,
            },
            &[&d, &i, &u],
            &t(&[4], &[1i32, 2, 3, 4]),
        );
        let d = f32s(&[2, 3]);
        let i = t(&[1, 2], &[0i64, -1]);
        let u = t(&[1, 2], &[7f32, 8.]);
        let op = Layout::ScatterElements {
            axis: 1,
            reduction: Reduction::Max,
            legacy: false,
        };
        check(op, &[&d, &i, &u], &t(&[2, 3], &[7f32, 1., 8., 3., 4., 5.]));
        let bad = t(&[1, 2], &[0i64, 3]);
        let op = Layout::ScatterElements {
            axis: 1,
            reduction: Reduction::None,
            legacy: true,
        };
        assert!(run(&op, &[Some(&d), Some(&bad), Some(&u)]).is_err());
    }

    #[test]
    fn expand_and_tile() {
        let x = t(&[3, 1], &[1f32, 2., 3.]);
        let y = run(&Layout::Expand, &[Some(&x), Some(&i64s(&[2, 1, 2]))])
            .unwrap()
            .remove(0);
        assert_eq!(y.shape(), &[2, 3, 2]);
        assert_eq!(
            vals(&y),
            [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        let x = t(&[2, 2], &[1u8, 2, 3, 4]);
        check(
            Layout::Tile,
            &[&x, &i64s(&[1, 2])],
            &t(&[2, 4], &[1u8, 2, 1, 2, 3, 4, 3, 4]),
        );
        let y = run(&Layout::Tile, &[Some(&x), Some(&i64s(&[2, 1]))])
            .unwrap()
            .remove(0);
        assert_eq!(vals(&y), [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn pad_modes() {
        let x = t(&[3], &[1f32, 2., 3.]);
        let pad = |mode: PadMode, b: i64, e: i64| {
            let op = Layout::Pad { mode, attrs: None };
            vals(
                &run(
                    &op,
                    &[Some(&x), Some(&i64s(&[b, e])), Some(&Tensor::scalar(9f32))],
                )
                .unwrap()[0],
            )
        };
        assert_eq!(pad(PadMode::Constant, 2, 1), [9.0, 9.0, 1.0, 2.0, 3.0, 9.0]);
        assert_eq!(
            pad(PadMode::Reflect, 3, 3),
            [2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]
        );
        assert_eq!(pad(PadMode::Edge, 2, 1), [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
        assert_eq!(
            pad(PadMode::Wrap, 2, 4),
            [2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
        );
        assert_eq!(pad(PadMode::Constant, -1, 1), [2.0, 3.0, 9.0]);
        let old = parse(
            "Pad",
            2,
            vec![
                ("pads", AttrValue::Ints(vec![0, 1, 0, 0])),
                ("value", AttrValue::Float(5.0)),
            ],
            1,
        )
        .unwrap();
        check(old, &[&t(&[1, 2], &[1i32, 2])], &t(&[1, 3], &[5i32, 1, 2]));
        // Axes input: pad only the last axis.
        let op = Layout::Pad {
            mode: PadMode::Constant,
            attrs: None,
        };
        let y = run(
            &op,
            &[
                Some(&f32s(&[2, 2])),
                Some(&i64s(&[1, 0])),
                None,
                Some(&i64s(&[-1])),
            ],
        )
        .unwrap();
        assert_eq!(vals(&y[0]), [0.0, 0.0, 1.0, 0.0, 2.0, 3.0]);
        let empty = f32s(&[0]);
        let op = Layout::Pad {
            mode: PadMode::Reflect,
            attrs: None,
        };
        assert!(run(&op, &[Some(&empty), Some(&i64s(&[1, 0]))]).is_err());
    }

    #[test]
    fn shape_size_range_constant() {
        let x = f32s(&[2, 3, 4]);
        check(
            Layout::Shape {
                start: -2,
                end: None,
            },
            &[&x],
            &i64s(&[3, 4]),
        );
        check(
            Layout::Shape {
                start: 2,
                end: Some(1),
            },
            &[&x],
            &i64s(&[]),
        );
        check(Layout::Size, &[&x], &Tensor::scalar(24i64));
        let r = Layout::Range { stash_f32: false };
        check(
            r.clone(),
            &[
                &Tensor::scalar(10i32),
                &Tensor::scalar(4i32),
                &Tensor::scalar(-2i32),
            ],
            &t(&[3], &[10i32, 8, 6]),
        );
        check(
            r.clone(),
            &[
                &Tensor::scalar(1f32),
                &Tensor::scalar(2f32),
                &Tensor::scalar(0.25f32),
            ],
            &t(&[4], &[1f32, 1.25, 1.5, 1.75]),
        );
        check(
            r,
            &[
                &Tensor::scalar(5i64),
                &Tensor::scalar(1i64),
                &Tensor::scalar(1i64),
            ],
            &t::<i64>(&[0], &[]),
        );
        let c = Layout::ConstantOfShape {
            value: Some(Tensor::scalar(7i8)),
        };
        check(c, &[&i64s(&[2, 1])], &t(&[2, 1], &[7i8, 7]));
        check(
            Layout::ConstantOfShape { value: None },
            &[&i64s(&[])],
            &Tensor::scalar(0f32),
        );
    }

    #[test]
    fn dropout_is_identity_at_inference() {
        let x = f32s(&[2]);
        let d = parse("Dropout", 13, vec![], 2).unwrap();
        let ys = run(&d, &[Some(&x)]).unwrap();
        assert_eq!(ys[0], x);
        assert_eq!(ys[1], t(&[2], &[true, true]));
        let tr = Tensor::scalar(true);
        let err = run(&d, &[Some(&x), Some(&Tensor::scalar(0.5f32)), Some(&tr)]).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)));
        assert!(run(&d, &[Some(&x), Some(&Tensor::scalar(0f32)), Some(&tr)]).is_ok());
    }

    #[test]
    fn depth_space_roundtrip() {
        let x = f32s(&[1, 8, 2, 3]);
        for crd in [false, true] {
            let d2s = Layout::DepthToSpace { blocksize: 2, crd };
            let y = run(&d2s, &[Some(&x)]).unwrap().remove(0);
            assert_eq!(y.shape(), &[1, 2, 4, 6]);
            let back = run(&Layout::SpaceToDepth { blocksize: 2, crd }, &[Some(&y)])
                .unwrap()
                .remove(0);
            assert_eq!(back, x);
        }
        // output[0, 0, 0, 1] is block column 1: channel 2 in DCR order, 1 in CRD.
        let y = run(
            &Layout::DepthToSpace {
                blocksize: 2,
                crd: false,
            },
            &[Some(&x)],
        )
        .unwrap()
        .remove(0);
        assert_eq!(vals(&y)[1], 12.0);
        let y = run(
            &Layout::DepthToSpace {
                blocksize: 2,
                crd: true,
            },
            &[Some(&x)],
        )
        .unwrap()
        .remove(0);
        assert_eq!(vals(&y)[1], 6.0);
        assert_eq!(vals(&y)[6], 12.0);
    }

    #[test]
    fn resize_nearest_and_linear() {
        let x = t(&[1, 1, 2, 2], &[1f32, 2., 3., 4.]);
        let nearest = parse(
            "Resize",
            19,
            vec![("mode", AttrValue::String(b"nearest".to_vec()))],
            1,
        )
        .unwrap();
        let scales = t(&[4], &[1f32, 1., 2., 2.]);
        let y = run(&nearest, &[Some(&x), None, Some(&scales)])
            .unwrap()
            .remove(0);
        assert_eq!(
            vals(&y),
            [
                1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0
            ]
        );
        let linear = parse(
            "Resize",
            19,
            vec![
                ("mode", AttrValue::String(b"linear".to_vec())),
                (
                    "coordinate_transformation_mode",
                    AttrValue::String(b"align_corners".to_vec()),
                ),
            ],
            1,
        )
        .unwrap();
        let sizes = i64s(&[1, 1, 3, 3]);
        let y = run(&linear, &[Some(&x), None, None, Some(&sizes)])
            .unwrap()
            .remove(0);
        assert_eq!(vals(&y), [1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
        // Integers round half to even after interpolation.
        let xi = t(&[1, 2], &[0u8, 1]);
        let y = run(&linear, &[Some(&xi), None, None, Some(&i64s(&[1, 3]))])
            .unwrap()
            .remove(0);
        assert_eq!(y, t(&[1, 3], &[0u8, 0, 1]));
        let up = parse(
            "Upsample",
            7,
            vec![("scales", AttrValue::Floats(vec![1.0, 3.0]))],
            1,
        )
        .unwrap();
        let y = run(&up, &[Some(&xi)]).unwrap().remove(0);
        assert_eq!(y, t(&[1, 6], &[0u8, 0, 0, 1, 1, 1]));
        assert!(run(&nearest, &[Some(&x), None, Some(&scales), Some(&sizes)]).is_err());
        let aa = vec![
            ("mode", AttrValue::String(b"nearest".to_vec())),
            ("antialias", AttrValue::Int(1)),
        ];
        assert!(parse("Resize", 19, aa, 1).is_err());
    }

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

    #[test]
    fn compress_reverse_sequence_center_crop() {
        let x = f32s(&[3, 2]);
        let c = t(&[2], &[false, true]);
        check(
            Layout::Compress { axis: Some(0) },
            &[&x, &c],
            &t(&[1, 2], &[2f32, 3.]),
        );
        check(
            Layout::Compress { axis: None },
            &[&x, &c],
            &t(&[1], &[1f32]),
        );
        let too_far = t(&[4], &[false, false, false, true]);
        assert!(
            run(
                &Layout::Compress { axis: Some(0) },
                &[Some(&x), Some(&too_far)]
            )
            .is_err()
        );
        // Example 2 of the spec, time on axis 1.
        let x = f32s(&[4, 4]);
        let op = Layout::ReverseSequence {
            batch_axis: 0,
            time_axis: 1,
        };
        let y = run(&op, &[Some(&x), Some(&i64s(&[1, 2, 3, 4]))])
            .unwrap()
            .remove(0);
        assert_eq!(vals(&y)[4..8], [5.0, 4.0, 6.0, 7.0]);
        assert_eq!(vals(&y)[12..16], [15.0, 14.0, 13.0, 12.0]);
        assert!(run(&op, &[Some(&x), Some(&i64s(&[1, 2, 3, 5]))]).is_err());
        let x = f32s(&[3, 4]);
        let y = run(
            &Layout::CenterCropPad { axes: None },
            &[Some(&x), Some(&i64s(&[1, 6]))],
        )
        .unwrap()
        .remove(0);
        assert_eq!(vals(&y), [0.0, 4.0, 5.0, 6.0, 7.0, 0.0]);
    }

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
        let attrs = Attrs::default();
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

    #[test]
    fn tiled_transpose_matches_naive() {
        let (r, c) = (37usize, 61usize);
        let x = f32s(&[r, c]);
        let y = run(&Layout::Transpose { perm: None }, &[Some(&x)])
            .unwrap()
            .remove(0);
        let want: Vec<f64> = (0..c)
            .flat_map(|j| (0..r).map(move |i| (i * c + j) as f64))
            .collect();
        assert_eq!(vals(&y), want);
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

    #[test]
    fn copy_view_checks_bounds() {
        let v = [1, 2, 3];
        assert_eq!(copy_view(&v, 2, &[(3, -1)]).unwrap(), [3, 2, 1]);
        assert!(copy_view(&v, 1, &[(3, 1)]).is_err());
        assert_eq!(
            copy_view(&v, 0, &[(2, 0), (3, 1)]).unwrap(),
            [1, 2, 3, 1, 2, 3]
        );
    }
}
