//! Resize and the older Upsample: attribute parsing, the output-shape plan,
//! coordinate transforms and the nearest, linear and cubic kernels.

use super::view::remap;
use super::{Layout, int_list, norm_axes, one, prod, to_dim, ty};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, opt};
use crate::shape::{Shape, strides};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, dispatch_dtype, shape_err, type_err};

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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn name(self) -> &'static str {
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

/// Parses a `Resize` node.
pub(super) fn parse_resize_node(ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Resize(Box::new(parse_resize(ctx)?)))
}

/// Parses an `Upsample` node.
pub(super) fn parse_upsample_node(ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Upsample(Box::new(parse_resize(ctx)?)))
}

pub(super) fn parse_resize(ctx: &ParseCtx<'_>) -> Result<ResizeAttrs> {
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

/// The shape rule of `Resize`.
pub(super) fn infer_resize(
    r: &ResizeAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
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

/// The cost of Resize: every output element reads one tap per neighbour.
pub(super) fn resize_macs(r: &ResizeAttrs, moved: u64) -> u64 {
    let taps = match r.mode {
        InterpMode::Nearest => 1,
        InterpMode::Linear => 4,
        InterpMode::Cubic => 16,
    };
    moved * taps
}

/// Resolved Resize parameters: output shape and per-axis scale.
pub(super) fn resize_plan(
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
pub(super) type ScalesSizes = (Option<Vec<f64>>, Option<Vec<i64>>);

/// Reads Resize's constant scales and sizes operands.
pub(super) fn resize_operands(
    r: &ResizeAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<ScalesSizes> {
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

/// The source coordinate of output position `y` on one Resize axis, and
/// whether it lies outside the input (tf_crop_and_resize extrapolation).
pub(super) fn source_coord(
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
pub(super) struct Roi {
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
pub(super) fn is_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

pub(super) fn nearest_index(x: f64, mode: NearestMode, scale: f64, in_w: usize) -> usize {
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
pub(super) fn interp_taps(r: &ResizeAttrs, x: f64, scale: f64, in_w: usize) -> Vec<(usize, f64)> {
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
pub(super) fn interp_axis(
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
pub(super) fn from_interp<T: Elem>(v: f64) -> T {
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

pub(super) fn eval_resize(
    r: &ResizeAttrs,
    x: &Tensor,
    ins: &[Option<InferInput<'_>>],
) -> Result<Tensor> {
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

#[cfg(test)]
mod tests {

    use crate::attrs::AttrValue;
    use crate::ops::layout::test_util::*;

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
}
