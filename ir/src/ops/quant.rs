//! Quantization ops: `QuantizeLinear`, `DequantizeLinear`,
//! `DynamicQuantizeLinear` and the integer kernels `MatMulInteger`,
//! `ConvInteger`, `QLinearMatMul` and `QLinearConv`.
//!
//! Size: ~1,220 lines before the tests, one family still in one file; it is
//! to become `ops/quant/` with a file per op like `ops/layout/` (issue 11).
//!
//! Quantized values are the 8- and 16-bit integer types (and `i32` for
//! `DequantizeLinear`); the float8, float4 and int4/int2 formats are not
//! smelt dtypes and are rejected when an `output_dtype` names them (tensors of
//! those types never reach the IR). Rounding is round-half-to-even with
//! saturation. The float arithmetic rounds where the ONNX reference (NumPy)
//! does, so results match it bit for bit: an off-by-one quantized value is a
//! large error.
//!
//! The integer products accumulate in wrapping `i32` through the matmul kernel
//! of [`linalg`](crate::ops::linalg); convolutions lower to im2col + that kernel.

use crate::dtype::{DType, rounder};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::linalg::{MatmulDims, batched_matmul, matmul_acc};
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, fmt_list, opt, req};
use crate::shape::{Shape, broadcast_index_map, broadcast_shapes, norm_axis, numel};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Quant {
    /// `y = saturate(round(x / y_scale) + y_zero_point)`.
    QuantizeLinear(QAttrs),
    /// `y = (x - x_zero_point) * x_scale`.
    DequantizeLinear(QAttrs),
    /// Quantizes to `u8` with a scale and zero point computed from the data.
    DynamicQuantizeLinear,
    /// Integer matrix product with zero points, accumulated in `i32`.
    MatMulInteger,
    /// Integer convolution with zero points, accumulated in `i32`.
    ConvInteger(ConvAttrs),
    /// Quantized matrix product with requantized output.
    QLinearMatMul,
    /// Quantized convolution with requantized output.
    QLinearConv(ConvAttrs),
}

/// The attributes of `QuantizeLinear` and `DequantizeLinear`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QAttrs {
    /// The axis of per-axis and blocked quantization.
    pub axis: i64,
    /// Block length along `axis` (0 = per-tensor or per-axis).
    pub block_size: usize,
    /// Saturate float8 results (no effect on the integer types smelt has).
    pub saturate: bool,
    /// The quantized (`QuantizeLinear`) or float (`DequantizeLinear`) type
    /// when no operand gives it.
    pub output_dtype: Option<DType>,
    /// The type the division `x / y_scale` is computed in.
    pub precision: Option<DType>,
    /// The opset the node was parsed at (the rules for scales tighten below 19).
    pub opset: i64,
}

/// How a convolution pads its input (shared with `Conv`, see [`crate::window`]).
pub use crate::window::AutoPad;
use crate::window::Window;

/// The attributes of `ConvInteger` and `QLinearConv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvAttrs {
    /// Padding mode.
    pub auto_pad: AutoPad,
    /// Spatial kernel dims, if given (must match the weights).
    pub kernel_shape: Option<Vec<usize>>,
    /// Spatial strides (default 1).
    pub strides: Option<Vec<usize>>,
    /// Spatial dilations (default 1).
    pub dilations: Option<Vec<usize>>,
    /// Begin pads then end pads (default 0), with `auto_pad = NOTSET`.
    pub pads: Option<Vec<usize>>,
    /// Channel groups.
    pub group: usize,
}

impl Quant {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearMatMul",
        "QLinearConv",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Quant>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        let r = (|| -> Result<Option<Quant>> {
            Ok(Some(match ctx.op_type {
                "QuantizeLinear" => Quant::QuantizeLinear(parse_qattrs(ctx)?),
                "DequantizeLinear" => Quant::DequantizeLinear(parse_qattrs(ctx)?),
                "DynamicQuantizeLinear" => Quant::DynamicQuantizeLinear,
                "MatMulInteger" => Quant::MatMulInteger,
                "QLinearMatMul" => Quant::QLinearMatMul,
                "ConvInteger" => Quant::ConvInteger(parse_conv(ctx)?),
                "QLinearConv" => Quant::QLinearConv(parse_conv(ctx)?),
                _ => return Ok(None),
            }))
        })();
        r.transpose()
    }
}

fn parse_qattrs(ctx: &ParseCtx<'_>) -> Result<QAttrs> {
    let a = ctx.attrs;
    let block_size = a.int("block_size", 0)?;
    if block_size < 0 {
        return Err(Error::attr(
            "block_size",
            format!("must not be negative, got {block_size}"),
        ));
    }
    // A dtype attribute; 0 means "not given". Float8/int4 codes fail here
    // with the name of the unsupported ONNX type.
    let dtype_attr = |name: &str| -> Result<Option<DType>> {
        match a.int(name, 0)? {
            0 => Ok(None),
            code => DType::from_onnx_code(code as i32)
                .map(Some)
                .map_err(|e| Error::attr(name, e.to_string())),
        }
    };
    let output_dtype = dtype_attr("output_dtype")?;
    let precision = dtype_attr("precision")?;
    if let Some(p) = precision
        && !p.is_float()
    {
        return Err(Error::attr(
            "precision",
            format!("must be a float type, got {p}"),
        ));
    }
    Ok(QAttrs {
        axis: a.int("axis", 1)?,
        block_size: block_size as usize,
        saturate: a.int("saturate", 1)? != 0,
        output_dtype,
        precision,
        opset: ctx.opset,
    })
}

fn parse_conv(ctx: &ParseCtx<'_>) -> Result<ConvAttrs> {
    let a = ctx.attrs;
    let auto_pad = AutoPad::parse(a)?;
    let list = |name: &str, min: i64| -> Result<Option<Vec<usize>>> {
        match a.ints_opt(name)? {
            None => Ok(None),
            Some(v) => {
                if let Some(x) = v.iter().find(|&&x| x < min) {
                    return Err(Error::attr(
                        name,
                        format!("values must be at least {min}, got {x}"),
                    ));
                }
                Ok(Some(v.into_iter().map(|x| x as usize).collect()))
            }
        }
    };
    let group = a.int("group", 1)?;
    if group < 1 {
        return Err(Error::attr(
            "group",
            format!("must be positive, got {group}"),
        ));
    }
    Ok(ConvAttrs {
        auto_pad,
        kernel_shape: list("kernel_shape", 1)?,
        strides: list("strides", 1)?,
        dilations: list("dilations", 1)?,
        pads: list("pads", 0)?,
        group: group as usize,
    })
}

// ---------------------------------------------------------------------------
// Quantize / Dequantize.

/// The saturation range of a quantized integer type.
fn qrange(d: DType) -> Result<(f64, f64)> {
    Ok(match d {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        other => type_err!("{other} is not a quantized type (expects u8, i8, u16 or i16)"),
    })
}

/// The type NumPy computes a binary float op of `a` and `b` in.
fn promote(a: DType, b: DType) -> DType {
    match (a, b) {
        _ if a == b && a.is_float() => a,
        (DType::F64, _) | (_, DType::F64) => DType::F64,
        _ if !a.is_float() || !b.is_float() => DType::F64,
        // f16 with bf16, or either with f32.
        _ => DType::F32,
    }
}

/// Where each element of `x` finds its scale and zero point.
#[derive(Clone, Copy, Debug)]
enum QLayout {
    PerTensor,
    /// `x` viewed as `[outer, d, inner]`, one parameter per `d`.
    PerAxis {
        d: usize,
        inner: usize,
    },
    /// `x` viewed as `[outer, d, inner]`, parameters `[outer, ceil(d/bs), inner]`.
    Blocked {
        d: usize,
        inner: usize,
        bs: usize,
        nb: usize,
    },
}

impl QLayout {
    fn index(self, i: usize) -> usize {
        match self {
            QLayout::PerTensor => 0,
            QLayout::PerAxis { d, inner } => (i / inner) % d,
            QLayout::Blocked { d, inner, bs, nb } => {
                let (o, di, r) = (i / (d * inner), (i / inner) % d, i % inner);
                (o * nb + di / bs) * inner + r
            }
        }
    }
}

impl QAttrs {
    /// Checks the scale (and zero point) shape against `x` and resolves the layout.
    fn layout(&self, x: &[usize], scale: &[usize], zp: Option<&[usize]>) -> Result<QLayout> {
        if let Some(z) = zp
            && z != scale
        {
            shape_err!("zero point {z:?} and scale {scale:?} must have the same shape");
        }
        let n = numel(scale)?;
        if self.block_size == 0 && n == 1 && scale.len() <= 1 {
            return Ok(QLayout::PerTensor);
        }
        if self.opset < 13 {
            shape_err!("the scale must be a scalar before opset 13, got {scale:?}");
        }
        let axis = norm_axis(self.axis, x.len())?;
        let d = x[axis];
        let inner: usize = x[axis + 1..].iter().product();
        if self.block_size == 0 {
            if scale != [d] {
                shape_err!("per-axis scale must be [{d}] for axis {axis} of {x:?}, got {scale:?}");
            }
            return Ok(QLayout::PerAxis { d, inner });
        }
        if self.opset < 21 {
            shape_err!("blocked quantization needs opset 21");
        }
        let bs = self.block_size;
        let nb = d.div_ceil(bs);
        let mut want = x.to_vec();
        want[axis] = nb;
        if scale != want.as_slice() {
            shape_err!(
                "blocked scale must be {want:?} for {x:?} with block_size {bs} on axis {axis}, got {scale:?}"
            );
        }
        Ok(QLayout::Blocked { d, inner, bs, nb })
    }

    fn check_scale_dtype(&self, s: DType, x_float: Option<DType>) -> Result<()> {
        let ok = if self.opset < 19 {
            s == DType::F32
        } else if self.opset < 23
            && let Some(x) = x_float
        {
            s == x
        } else {
            matches!(s, DType::F32 | DType::F16 | DType::BF16)
        };
        if !ok {
            type_err!(
                "the scale's type {s} is not allowed here (opset {})",
                self.opset
            );
        }
        Ok(())
    }

    fn infer_quantize(
        &self,
        x: &TensorType,
        s: &TensorType,
        zp: Option<&TensorType>,
    ) -> Result<TensorType> {
        let x_ok = matches!(x.dtype, DType::F32 | DType::I32)
            || (self.opset >= 19 && matches!(x.dtype, DType::F16 | DType::BF16));
        if !x_ok {
            type_err!("QuantizeLinear does not accept x of type {}", x.dtype);
        }
        let scale_ok = if self.opset >= 23 && s.dtype == DType::I32 {
            true
        } else if x.dtype == DType::I32 && self.opset < 23 {
            s.dtype == DType::F32 || (self.opset >= 19 && s.dtype == DType::I32)
        } else {
            self.check_scale_dtype(s.dtype, x.dtype.is_float().then_some(x.dtype))
                .is_ok()
        };
        if !scale_ok {
            type_err!(
                "QuantizeLinear does not accept a {} scale for {} input (opset {})",
                s.dtype,
                x.dtype,
                self.opset
            );
        }
        let out = match (zp, self.output_dtype) {
            (Some(z), Some(o)) if z.dtype != o => {
                type_err!(
                    "output_dtype {o} differs from the zero point's type {}",
                    z.dtype
                )
            }
            (Some(z), _) => z.dtype,
            (None, Some(o)) => o,
            (None, None) => DType::U8,
        };
        qrange(out)?;
        if matches!(out, DType::U16 | DType::I16) && self.opset < 21 {
            type_err!("16-bit quantization needs opset 21");
        }
        self.layout(&x.shape, &s.shape, zp.map(|z| z.shape.as_slice()))?;
        Ok(TensorType::new(out, x.shape.clone()))
    }

    fn infer_dequantize(
        &self,
        x: &TensorType,
        s: &TensorType,
        zp: Option<&TensorType>,
    ) -> Result<TensorType> {
        let x_ok = match x.dtype {
            DType::U8 | DType::I8 | DType::I32 => true,
            DType::U16 | DType::I16 => self.opset >= 21,
            _ => false,
        };
        if !x_ok {
            type_err!(
                "DequantizeLinear does not accept x of type {} (opset {})",
                x.dtype,
                self.opset
            );
        }
        if let Some(z) = zp
            && z.dtype != x.dtype
        {
            type_err!("the zero point is {} but x is {}", z.dtype, x.dtype);
        }
        self.check_scale_dtype(s.dtype, None)?;
        let out = match self.output_dtype {
            Some(o) if self.opset >= 23 => {
                if !matches!(o, DType::F32 | DType::F16 | DType::BF16) {
                    type_err!("output_dtype must be f32, f16 or bf16, got {o}");
                }
                o
            }
            _ => s.dtype,
        };
        self.layout(&x.shape, &s.shape, zp.map(|z| z.shape.as_slice()))?;
        Ok(TensorType::new(out, x.shape.clone()))
    }
}

fn saturate_round(q: f64, zp: f64, lo: f64, hi: f64) -> f64 {
    // NaN has no quantized value; it maps to the zero point (the image of 0).
    let r = if q.is_nan() { 0.0 } else { q.round_ties_even() };
    (r + zp).clamp(lo, hi)
}

fn eval_quantize(qa: &QAttrs, x: &Tensor, s: &Tensor, zp: Option<&Tensor>) -> Result<Tensor> {
    let tx = TensorType::new(x.dtype(), x.shape().to_vec());
    let ts = TensorType::new(s.dtype(), s.shape().to_vec());
    let tz = zp.map(|z| TensorType::new(z.dtype(), z.shape().to_vec()));
    let out = qa.infer_quantize(&tx, &ts, tz.as_ref())?;
    let layout = qa.layout(x.shape(), s.shape(), zp.map(|z| z.shape()))?;
    let (lo, hi) = qrange(out.dtype)?;
    // The division runs in `precision`, else in NumPy's promotion of the two
    // types (the reference divides the arrays directly).
    let rp = rounder(
        qa.precision
            .unwrap_or_else(|| promote(x.dtype(), s.dtype())),
    );
    let (xv, sv) = (x.to_f64_vec(), s.to_f64_vec());
    let zv = zp.map(|z| z.to_f64_vec());
    let y: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = layout.index(i);
            let z = zv.as_ref().map(|z| z[p]).unwrap_or(0.0);
            saturate_round(rp(v / sv[p]), z, lo, hi)
        })
        .collect();
    Ok(Tensor::from_vec(out.shape, y)?.cast(out.dtype))
}

fn eval_dequantize(qa: &QAttrs, x: &Tensor, s: &Tensor, zp: Option<&Tensor>) -> Result<Tensor> {
    let tx = TensorType::new(x.dtype(), x.shape().to_vec());
    let ts = TensorType::new(s.dtype(), s.shape().to_vec());
    let tz = zp.map(|z| TensorType::new(z.dtype(), z.shape().to_vec()));
    let out = qa.infer_dequantize(&tx, &ts, tz.as_ref())?;
    let layout = qa.layout(x.shape(), s.shape(), zp.map(|z| z.shape()))?;
    // The reference computes `float32(x) - zero_point` then `* scale` with
    // NumPy promotion: f32 throughout, except that an i32 zero point promotes
    // the difference (and the product) to f64.
    let wide = x.dtype() == DType::I32 && zp.is_some();
    let r32 = |v: f64| v as f32 as f64;
    let (xv, sv) = (x.to_f64_vec(), s.to_f64_vec());
    let zv = zp.map(|z| z.to_f64_vec());
    let y: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = layout.index(i);
            let z = zv.as_ref().map(|z| z[p]).unwrap_or(0.0);
            if wide {
                (r32(v) - z) * sv[p]
            } else {
                r32(r32(r32(v) - z) * sv[p])
            }
        })
        .collect();
    Ok(Tensor::from_vec(out.shape, y)?.cast(out.dtype))
}

fn eval_dynamic_quantize(x: &Tensor) -> Result<Vec<Tensor>> {
    let xv = x.as_slice::<f32>()?;
    // The reference computes in f32 throughout; NaN propagates like np.max.
    let fold = |f: fn(f32, f32) -> f32| {
        xv.iter().copied().fold(0.0f32, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                f(a, b)
            }
        })
    };
    let maxx = fold(f32::max);
    let minx = fold(f32::min);
    let range = if maxx == minx { 1.0f32 } else { maxx - minx };
    let scale = range / 255.0f32;
    let initial_zp = 0.0f32 - minx / scale;
    let zp = if initial_zp.is_nan() {
        0.0
    } else {
        initial_zp.clamp(0.0, 255.0).round_ties_even()
    };
    let y: Vec<u8> = xv
        .iter()
        .map(|&v| saturate_round((v / scale) as f64, zp as f64, 0.0, 255.0) as u8)
        .collect();
    Ok(vec![
        Tensor::from_vec(x.shape().to_vec(), y)?,
        Tensor::scalar(scale),
        Tensor::scalar(zp as u8),
    ])
}

// ---------------------------------------------------------------------------
// Integer matrix products.

fn int8_dtype(d: DType, what: &str) -> Result<()> {
    if !matches!(d, DType::U8 | DType::I8) {
        type_err!("{what} must be u8 or i8, got {d}");
    }
    Ok(())
}

/// The shape a per-row (`a`) or per-column (`b`) quantization parameter takes
/// when broadcast against its operand; `[]` for per-tensor.
fn qparam_shape(p: &[usize], operand: &[usize], per_row: bool, what: &str) -> Result<Shape> {
    if numel(p)? == 1 && p.len() <= 1 {
        return Ok(vec![]);
    }
    let r = operand.len();
    if p.len() == 1 && r >= 2 {
        let (want, shape) = if per_row {
            (operand[r - 2], vec![p[0], 1])
        } else {
            (operand[r - 1], vec![p[0]])
        };
        if p[0] != want {
            shape_err!(
                "{what} {p:?} must have {want} elements (one per {}) for operand {operand:?}",
                if per_row { "row" } else { "column" }
            );
        }
        return Ok(shape);
    }
    // N-D: [.., M, 1] per row or [.., 1, N] per column.
    let contracted = if per_row {
        p.last().copied()
    } else {
        p.len().checked_sub(2).map(|i| p[i])
    };
    let ok = p.len() <= r
        && contracted.is_none_or(|d| d == 1)
        && broadcast_shapes(&[p, operand])
            .map(|s| s == operand)
            .unwrap_or(false);
    if !ok {
        shape_err!(
            "{what} {p:?} is not a per-tensor or per-{} parameter of operand {operand:?}",
            if per_row { "row" } else { "column" }
        );
    }
    Ok(p.to_vec())
}

/// `t - zero_point` as `i32`, with the zero point broadcast per row/column.
fn sub_zero_point(t: &Tensor, zp: Option<&Tensor>, per_row: bool, what: &str) -> Result<Vec<i32>> {
    let v: Vec<i32> = t.to_i64_vec().into_iter().map(|x| x as i32).collect();
    let Some(zp) = zp else { return Ok(v) };
    if zp.dtype() != t.dtype() {
        type_err!("{what} is {} but its operand is {}", zp.dtype(), t.dtype());
    }
    let shape = qparam_shape(zp.shape(), t.shape(), per_row, what)?;
    let zv = zp.to_i64_vec();
    let map = broadcast_index_map(&shape, t.shape());
    Ok(v.iter()
        .zip(&map)
        .map(|(&x, &i)| x.wrapping_sub(zv[i] as i32))
        .collect())
}

/// Resolved operand shapes of `MatMulInteger`.
fn matmul_integer_types(ins: &[Option<&TensorType>]) -> Result<MatmulDims> {
    check_arity(ins, 2, 4)?;
    let (a, b) = (req(ins, 0, "A")?, req(ins, 1, "B")?);
    int8_dtype(a.dtype, "A")?;
    int8_dtype(b.dtype, "B")?;
    let d = MatmulDims::new(&a.shape, &b.shape)?;
    if let Some(z) = opt(ins, 2) {
        if z.dtype != a.dtype {
            type_err!("a_zero_point is {} but A is {}", z.dtype, a.dtype);
        }
        qparam_shape(&z.shape, &a.shape, true, "a_zero_point")?;
    }
    if let Some(z) = opt(ins, 3) {
        if z.dtype != b.dtype {
            type_err!("b_zero_point is {} but B is {}", z.dtype, b.dtype);
        }
        qparam_shape(&z.shape, &b.shape, false, "b_zero_point")?;
    }
    Ok(d)
}

/// Checked shapes of `QLinearMatMul`: the matmul dims and, for the scales and
/// zero points of `a`, `b` and `y`, their shapes as broadcast to the output.
struct QMatMulPlan {
    dims: MatmulDims,
    a_param: Shape,
    b_param: Shape,
    y_param: Shape,
}

fn qlinear_matmul_plan(ins: &[Option<&TensorType>]) -> Result<QMatMulPlan> {
    check_arity(ins, 8, 8)?;
    let names = [
        "a",
        "a_scale",
        "a_zero_point",
        "b",
        "b_scale",
        "b_zero_point",
        "y_scale",
        "y_zero_point",
    ];
    let t: Vec<&TensorType> = names
        .iter()
        .enumerate()
        .map(|(i, n)| req(ins, i, n))
        .collect::<Result<_>>()?;
    let (a, b) = (t[0], t[3]);
    int8_dtype(a.dtype, "a")?;
    int8_dtype(b.dtype, "b")?;
    int8_dtype(t[7].dtype, "y_zero_point")?;
    let sd = t[1].dtype;
    if !matches!(sd, DType::F32 | DType::F16 | DType::BF16) || t[4].dtype != sd || t[6].dtype != sd
    {
        type_err!(
            "the scales must share one float type, got {}, {} and {}",
            sd,
            t[4].dtype,
            t[6].dtype
        );
    }
    if t[2].dtype != a.dtype || t[5].dtype != b.dtype {
        type_err!("zero points must have their operand's type");
    }
    let dims = MatmulDims::new(&a.shape, &b.shape)?;
    let a_param = qparam_shape(&t[1].shape, &a.shape, true, "a_scale")?;
    if qparam_shape(&t[2].shape, &a.shape, true, "a_zero_point")? != a_param {
        shape_err!(
            "a_scale {:?} and a_zero_point {:?} differ in shape",
            t[1].shape,
            t[2].shape
        );
    }
    let b_param = qparam_shape(&t[4].shape, &b.shape, false, "b_scale")?;
    if qparam_shape(&t[5].shape, &b.shape, false, "b_zero_point")? != b_param {
        shape_err!(
            "b_scale {:?} and b_zero_point {:?} differ in shape",
            t[4].shape,
            t[5].shape
        );
    }
    let y_param = if numel(&t[6].shape)? == 1 && t[6].shape.len() <= 1 {
        vec![]
    } else {
        t[6].shape.clone()
    };
    if t[7].shape != t[6].shape {
        shape_err!(
            "y_scale {:?} and y_zero_point {:?} differ in shape",
            t[6].shape,
            t[7].shape
        );
    }
    for (p, what) in [
        (&a_param, "a_scale"),
        (&b_param, "b_scale"),
        (&y_param, "y_scale"),
    ] {
        let fits = p.len() <= dims.out.len()
            && broadcast_shapes(&[p, &dims.out])
                .map(|s| s == dims.out)
                .unwrap_or(false);
        if !fits {
            shape_err!(
                "{what} {p:?} does not broadcast to the output {:?}",
                dims.out
            );
        }
    }
    Ok(QMatMulPlan {
        dims,
        a_param,
        b_param,
        y_param,
    })
}

/// Requantizes `i32` accumulators: `saturate(round(acc * sa*sb/sy) + zy)`.
/// The multiplier is rounded in the scale type like the reference's array
/// arithmetic; the product and the addition are in f64.
fn requantize(
    acc: &[i32],
    mult: impl Fn(usize) -> f64,
    zy: impl Fn(usize) -> f64,
    out: DType,
) -> Result<Vec<f64>> {
    let (lo, hi) = qrange(out)?;
    Ok(acc
        .iter()
        .enumerate()
        .map(|(i, &c)| saturate_round(c as f64 * mult(i), zy(i), lo, hi))
        .collect())
}

fn eval_qlinear_matmul(inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    let tys: Vec<Option<TensorType>> = inputs
        .iter()
        .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
        .collect();
    let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
    let plan = qlinear_matmul_plan(&refs)?;
    let t: Vec<&Tensor> = (0..8)
        .map(|i| req(inputs, i, "operand"))
        .collect::<Result<_>>()?;
    let av = sub_zero_point(t[0], Some(t[2]), true, "a_zero_point")?;
    let bv = sub_zero_point(t[3], Some(t[5]), false, "b_zero_point")?;
    let acc = batched_matmul(&av, &bv, &plan.dims);
    let out = &plan.dims.out;
    let (ia, ib, iy) = (
        broadcast_index_map(&plan.a_param, out),
        broadcast_index_map(&plan.b_param, out),
        broadcast_index_map(&plan.y_param, out),
    );
    let (sa, sb, sy, zy) = (
        t[1].to_f64_vec(),
        t[4].to_f64_vec(),
        t[6].to_f64_vec(),
        t[7].to_f64_vec(),
    );
    let rs = rounder(t[1].dtype());
    let y = requantize(
        &acc,
        |i| rs(rs(sa[ia[i]] * sb[ib[i]]) / sy[iy[i]]),
        |i| zy[iy[i]],
        t[7].dtype(),
    )?;
    Ok(Tensor::from_vec(out.clone(), y)?.cast(t[7].dtype()))
}

// ---------------------------------------------------------------------------
// Integer convolutions.

/// The resolved geometry of a convolution.
#[derive(Clone, Debug)]
struct ConvGeom {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    in_sp: Vec<usize>,
    k_sp: Vec<usize>,
    out_sp: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<usize>,
}

impl ConvAttrs {
    fn geom(&self, x: &[usize], w: &[usize]) -> Result<ConvGeom> {
        if x.len() < 3 || w.len() != x.len() {
            shape_err!(
                "convolution needs x [N, C, spatial...] and w [M, C/group, kernel...] of the same rank ≥ 3, got {x:?} and {w:?}"
            );
        }
        let (n, c, m) = (x[0], x[1], w[0]);
        let g = self.group;
        if w[1] * g != c || !m.is_multiple_of(g) {
            shape_err!("channels do not fit group {g}: x {x:?}, w {w:?}");
        }
        let k_sp = w[2..].to_vec();
        if let Some(ks) = &self.kernel_shape
            && ks != &k_sp
        {
            shape_err!("kernel_shape {ks:?} differs from the weights' {k_sp:?}");
        }
        // The same resolution as `Conv` (explicit pads count only with
        // auto_pad NOTSET, as the spec says).
        let window = Window {
            kernel_shape: self.kernel_shape.clone(),
            strides: self.strides.clone().unwrap_or_default(),
            dilations: self.dilations.clone().unwrap_or_default(),
            pads: match self.auto_pad {
                AutoPad::NotSet => self.pads.clone().unwrap_or_default(),
                _ => vec![],
            },
            auto_pad: self.auto_pad,
        };
        if let Some(i) = k_sp.iter().position(|&k| k == 0) {
            shape_err!("kernel has a zero-sized spatial axis {i}");
        }
        let geom = window.resolve(&x[2..], &k_sp, false)?;
        let pad_begin = geom
            .pad_begin
            .iter()
            .map(|&p| usize::try_from(p).map_err(|_| Error::Shape(format!("negative pad {p}"))))
            .collect::<Result<Vec<usize>>>()?;
        let (in_sp, out_sp, strides, dilations) =
            (geom.input, geom.out, geom.strides, geom.dilations);
        // The output and the im2col buffer must be addressable.
        let kprod = numel(&k_sp)?;
        let mut out = vec![n, m];
        out.extend_from_slice(&out_sp);
        numel(&out)?;
        numel(&[c / g, kprod, numel(&out_sp)?])?;
        Ok(ConvGeom {
            n,
            c,
            m,
            group: g,
            in_sp,
            k_sp,
            out_sp,
            strides,
            dilations,
            pad_begin,
        })
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![];
        if self.auto_pad != AutoPad::NotSet {
            v.push(("auto_pad", self.auto_pad.name().to_string()));
        }
        for (name, val) in [
            ("kernel_shape", &self.kernel_shape),
            ("strides", &self.strides),
            ("dilations", &self.dilations),
            ("pads", &self.pads),
        ] {
            if let Some(val) = val {
                v.push((name, fmt_list(val)));
            }
        }
        if self.group != 1 {
            v.push(("group", self.group.to_string()));
        }
        v
    }
}

impl ConvGeom {
    fn out_shape(&self) -> Shape {
        let mut s = vec![self.n, self.m];
        s.extend_from_slice(&self.out_sp);
        s
    }

    fn macs(&self) -> u64 {
        let out: u64 = self.out_shape().iter().map(|&d| d as u64).product();
        let kp: u64 = self.k_sp.iter().map(|&d| d as u64).product();
        out.saturating_mul((self.c / self.group) as u64)
            .saturating_mul(kp)
    }
}

/// Every multi-index of `dims` in row-major order.
fn multi_indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        out.push(idx.clone());
        for ax in (0..dims.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}

/// Direct convolution of zero-point-adjusted `i32` data via im2col and the
/// matmul kernel. Padding contributes 0, i.e. the zero point before the
/// adjustment, as the spec requires.
fn conv_i32(x: &[i32], w: &[i32], g: &ConvGeom) -> Vec<i32> {
    let cg = g.c / g.group;
    let mg = g.m / g.group;
    let kprod: usize = g.k_sp.iter().product();
    let iprod: usize = g.in_sp.iter().product();
    let oprod: usize = g.out_sp.iter().product();
    let kidx = multi_indices(&g.k_sp);
    let oidx = multi_indices(&g.out_sp);
    let nd = g.in_sp.len();
    // For each (kernel position, output position), the input offset or None
    // when it falls into the padding.
    let mut src: Vec<Option<usize>> = Vec::with_capacity(kprod * oprod);
    for kv in &kidx {
        for ov in &oidx {
            let mut flat = 0usize;
            let mut inside = true;
            for d in 0..nd {
                let p = ov[d] * g.strides[d] + kv[d] * g.dilations[d];
                if p < g.pad_begin[d] || p - g.pad_begin[d] >= g.in_sp[d] {
                    inside = false;
                    break;
                }
                flat = flat * g.in_sp[d] + (p - g.pad_begin[d]);
            }
            src.push(inside.then_some(flat));
        }
    }
    let mut y = vec![0i32; g.n * g.m * oprod];
    let mut col = vec![0i32; cg * kprod * oprod];
    for ni in 0..g.n {
        for gi in 0..g.group {
            for ci in 0..cg {
                let xc = &x[(ni * g.c + gi * cg + ci) * iprod..][..iprod];
                let rows = &mut col[ci * kprod * oprod..(ci + 1) * kprod * oprod];
                for (dst, s) in rows.iter_mut().zip(&src) {
                    *dst = s.map(|i| xc[i]).unwrap_or(0);
                }
            }
            let wg = &w[gi * mg * cg * kprod..(gi + 1) * mg * cg * kprod];
            let yg = &mut y[(ni * g.m + gi * mg) * oprod..(ni * g.m + (gi + 1) * mg) * oprod];
            matmul_acc(mg, cg * kprod, oprod, wg, &col, yg);
        }
    }
    y
}

/// Checks a per-tensor parameter (a scalar or a one-element vector).
fn per_tensor(t: &TensorType, what: &str) -> Result<()> {
    if numel(&t.shape)? != 1 || t.shape.len() > 1 {
        shape_err!("{what} must be a scalar, got {:?}", t.shape);
    }
    Ok(())
}

/// Checks a per-tensor or per-output-channel parameter.
fn per_channel(t: &TensorType, m: usize, what: &str) -> Result<()> {
    if !(t.shape.len() <= 1 && (numel(&t.shape)? == 1 || t.shape == [m])) {
        shape_err!(
            "{what} must be a scalar or have {m} elements, got {:?}",
            t.shape
        );
    }
    Ok(())
}

fn conv_integer_geom(ca: &ConvAttrs, ins: &[Option<&TensorType>]) -> Result<ConvGeom> {
    check_arity(ins, 2, 4)?;
    let (x, w) = (req(ins, 0, "x")?, req(ins, 1, "w")?);
    int8_dtype(x.dtype, "x")?;
    int8_dtype(w.dtype, "w")?;
    let g = ca.geom(&x.shape, &w.shape)?;
    if let Some(z) = opt(ins, 2) {
        if z.dtype != x.dtype {
            type_err!("x_zero_point is {} but x is {}", z.dtype, x.dtype);
        }
        per_tensor(z, "x_zero_point")?;
    }
    if let Some(z) = opt(ins, 3) {
        if z.dtype != w.dtype {
            type_err!("w_zero_point is {} but w is {}", z.dtype, w.dtype);
        }
        per_channel(z, g.m, "w_zero_point")?;
    }
    Ok(g)
}

fn qlinear_conv_geom(ca: &ConvAttrs, ins: &[Option<&TensorType>]) -> Result<ConvGeom> {
    check_arity(ins, 8, 9)?;
    let names = [
        "x",
        "x_scale",
        "x_zero_point",
        "w",
        "w_scale",
        "w_zero_point",
        "y_scale",
        "y_zero_point",
    ];
    let t: Vec<&TensorType> = names
        .iter()
        .enumerate()
        .map(|(i, n)| req(ins, i, n))
        .collect::<Result<_>>()?;
    int8_dtype(t[0].dtype, "x")?;
    int8_dtype(t[3].dtype, "w")?;
    int8_dtype(t[7].dtype, "y_zero_point")?;
    if t[2].dtype != t[0].dtype || t[5].dtype != t[3].dtype {
        type_err!("zero points must have their operand's type");
    }
    for i in [1, 4, 6] {
        if t[i].dtype != DType::F32 {
            type_err!("{} must be f32, got {}", names[i], t[i].dtype);
        }
    }
    let g = ca.geom(&t[0].shape, &t[3].shape)?;
    per_tensor(t[1], "x_scale")?;
    per_tensor(t[2], "x_zero_point")?;
    per_channel(t[4], g.m, "w_scale")?;
    per_channel(t[5], g.m, "w_zero_point")?;
    per_tensor(t[6], "y_scale")?;
    per_tensor(t[7], "y_zero_point")?;
    if let Some(b) = opt(ins, 8)
        && (b.dtype != DType::I32 || b.shape != [g.m])
    {
        shape_err!("B must be i32[{}], got {b}", g.m);
    }
    Ok(g)
}

/// `x - zero_point` for a per-tensor zero point.
fn sub_scalar_zp(t: &Tensor, zp: Option<&Tensor>) -> Vec<i32> {
    let z = zp
        .map(|z| z.to_i64_vec().first().copied().unwrap_or(0) as i32)
        .unwrap_or(0);
    t.to_i64_vec()
        .into_iter()
        .map(|x| (x as i32).wrapping_sub(z))
        .collect()
}

/// `w - zero_point` for a per-tensor or per-output-channel zero point.
fn sub_channel_zp(w: &Tensor, zp: Option<&Tensor>, m: usize) -> Vec<i32> {
    let v: Vec<i32> = w.to_i64_vec().into_iter().map(|x| x as i32).collect();
    let Some(zp) = zp else { return v };
    let zv = zp.to_i64_vec();
    let per = v.len() / m.max(1);
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            x.wrapping_sub(if zv.len() == 1 {
                zv[0]
            } else {
                zv[i / per.max(1)]
            } as i32)
        })
        .collect()
}

fn tensor_types(inputs: &[Option<&Tensor>]) -> Vec<Option<TensorType>> {
    inputs
        .iter()
        .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
        .collect()
}

// ---------------------------------------------------------------------------

impl OpDef for Quant {
    fn name(&self) -> &'static str {
        match self {
            Quant::QuantizeLinear(_) => "QuantizeLinear",
            Quant::DequantizeLinear(_) => "DequantizeLinear",
            Quant::DynamicQuantizeLinear => "DynamicQuantizeLinear",
            Quant::MatMulInteger => "MatMulInteger",
            Quant::ConvInteger(_) => "ConvInteger",
            Quant::QLinearMatMul => "QLinearMatMul",
            Quant::QLinearConv(_) => "QLinearConv",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Quant::QuantizeLinear(q) | Quant::DequantizeLinear(q) => {
                let mut v = vec![("axis", q.axis.to_string())];
                if q.block_size > 0 {
                    v.push(("block_size", q.block_size.to_string()));
                }
                if let Some(d) = q.output_dtype {
                    v.push(("output_dtype", d.name().to_string()));
                }
                if let Some(d) = q.precision {
                    v.push(("precision", d.name().to_string()));
                }
                v
            }
            Quant::ConvInteger(c) | Quant::QLinearConv(c) => c.attrs(),
            Quant::DynamicQuantizeLinear | Quant::MatMulInteger | Quant::QLinearMatMul => vec![],
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            Quant::QuantizeLinear(_)
            | Quant::DequantizeLinear(_)
            | Quant::DynamicQuantizeLinear
            | Quant::MatMulInteger
            | Quant::ConvInteger(_)
            | Quant::QLinearMatMul
            | Quant::QLinearConv(_) => vec![],
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|x| x.ty)).collect();
        match self {
            Quant::QuantizeLinear(q) => {
                check_arity(inputs, 2, 3)?;
                let (x, s) = (req(&tys, 0, "x")?, req(&tys, 1, "y_scale")?);
                Ok(vec![q.infer_quantize(x, s, opt(&tys, 2))?])
            }
            Quant::DequantizeLinear(q) => {
                check_arity(inputs, 2, 3)?;
                let (x, s) = (req(&tys, 0, "x")?, req(&tys, 1, "x_scale")?);
                Ok(vec![q.infer_dequantize(x, s, opt(&tys, 2))?])
            }
            Quant::DynamicQuantizeLinear => {
                check_arity(inputs, 1, 1)?;
                let x = req(&tys, 0, "x")?;
                if x.dtype != DType::F32 {
                    type_err!("DynamicQuantizeLinear expects f32, got {}", x.dtype);
                }
                Ok(vec![
                    TensorType::new(DType::U8, x.shape.clone()),
                    TensorType::new(DType::F32, vec![]),
                    TensorType::new(DType::U8, vec![]),
                ])
            }
            Quant::MatMulInteger => Ok(vec![TensorType::new(
                DType::I32,
                matmul_integer_types(&tys)?.out,
            )]),
            Quant::QLinearMatMul => {
                let p = qlinear_matmul_plan(&tys)?;
                Ok(vec![TensorType::new(
                    req(&tys, 7, "y_zero_point")?.dtype,
                    p.dims.out,
                )])
            }
            Quant::ConvInteger(c) => Ok(vec![TensorType::new(
                DType::I32,
                conv_integer_geom(c, &tys)?.out_shape(),
            )]),
            Quant::QLinearConv(c) => {
                let g = qlinear_conv_geom(c, &tys)?;
                Ok(vec![TensorType::new(
                    req(&tys, 7, "y_zero_point")?.dtype,
                    g.out_shape(),
                )])
            }
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Quant::QuantizeLinear(q) => Ok(vec![eval_quantize(
                q,
                req(inputs, 0, "x")?,
                req(inputs, 1, "y_scale")?,
                opt(inputs, 2),
            )?]),
            Quant::DequantizeLinear(q) => Ok(vec![eval_dequantize(
                q,
                req(inputs, 0, "x")?,
                req(inputs, 1, "x_scale")?,
                opt(inputs, 2),
            )?]),
            Quant::DynamicQuantizeLinear => eval_dynamic_quantize(req(inputs, 0, "x")?),
            Quant::MatMulInteger => {
                let tys = tensor_types(inputs);
                let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
                let d = matmul_integer_types(&refs)?;
                let (a, b) = (req(inputs, 0, "A")?, req(inputs, 1, "B")?);
                let av = sub_zero_point(a, opt(inputs, 2), true, "a_zero_point")?;
                let bv = sub_zero_point(b, opt(inputs, 3), false, "b_zero_point")?;
                Ok(vec![Tensor::from_vec(
                    d.out.clone(),
                    batched_matmul(&av, &bv, &d),
                )?])
            }
            Quant::QLinearMatMul => Ok(vec![eval_qlinear_matmul(inputs)?]),
            Quant::ConvInteger(c) => {
                let tys = tensor_types(inputs);
                let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
                let g = conv_integer_geom(c, &refs)?;
                let xv = sub_scalar_zp(req(inputs, 0, "x")?, opt(inputs, 2));
                let wv = sub_channel_zp(req(inputs, 1, "w")?, opt(inputs, 3), g.m);
                Ok(vec![Tensor::from_vec(
                    g.out_shape(),
                    conv_i32(&xv, &wv, &g),
                )?])
            }
            Quant::QLinearConv(c) => {
                let tys = tensor_types(inputs);
                let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
                let g = qlinear_conv_geom(c, &refs)?;
                let t: Vec<&Tensor> = (0..8)
                    .map(|i| req(inputs, i, "operand"))
                    .collect::<Result<_>>()?;
                let xv = sub_scalar_zp(t[0], Some(t[2]));
                let wv = sub_channel_zp(t[3], Some(t[5]), g.m);
                let mut acc = conv_i32(&xv, &wv, &g);
                let oprod: usize = g.out_sp.iter().product();
                let channel = |i: usize| (i / oprod.max(1)) % g.m.max(1);
                if let Some(b) = opt(inputs, 8) {
                    let bv = b.as_slice::<i32>()?;
                    for (i, a) in acc.iter_mut().enumerate() {
                        *a = a.wrapping_add(bv[channel(i)]);
                    }
                }
                let r32 = |v: f64| v as f32 as f64;
                let (sx, sw, sy) = (
                    t[1].to_f64_vec()[0],
                    t[4].to_f64_vec(),
                    t[6].to_f64_vec()[0],
                );
                let zy = t[7].to_f64_vec()[0];
                let mult: Vec<f64> = (0..g.m)
                    .map(|m| r32(r32(sx * sw[if sw.len() == 1 { 0 } else { m }]) / sy))
                    .collect();
                let y = requantize(&acc, |i| mult[channel(i)], |_| zy, t[7].dtype())?;
                Ok(vec![Tensor::from_vec(g.out_shape(), y)?.cast(t[7].dtype())])
            }
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let out_elems = || {
            outputs
                .iter()
                .map(|t| t.numel().unwrap_or(0) as u64)
                .sum::<u64>()
        };
        let mm = |a: usize, b: usize| match (opt(inputs, a), opt(inputs, b)) {
            (Some(a), Some(b)) => MatmulDims::new(&a.shape, &b.shape)
                .map(|d| d.macs())
                .unwrap_or(0),
            _ => 0,
        };
        let conv = |c: &ConvAttrs, w: usize| match (opt(inputs, 0), opt(inputs, w)) {
            (Some(x), Some(w)) => c.geom(&x.shape, &w.shape).map(|g| g.macs()).unwrap_or(0),
            _ => 0,
        };
        match self {
            Quant::QuantizeLinear(_)
            | Quant::DequantizeLinear(_)
            | Quant::DynamicQuantizeLinear => out_elems(),
            Quant::MatMulInteger => mm(0, 1),
            Quant::QLinearMatMul => mm(0, 3),
            Quant::ConvInteger(c) => conv(c, 1),
            Quant::QLinearConv(c) => conv(c, 3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{AttrValue, Attrs};

    fn parse(op: &str, opset: i64, attrs: Vec<(&str, AttrValue)>) -> Result<Quant> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type: op,
            domain: "",
            opset,
            attrs: &attrs,
            num_inputs: 0,
            num_outputs: 1,
        };
        Quant::parse(&ctx).unwrap()
    }

    fn run(op: &Quant, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let tys = tensor_types(ins);
        let iin: Vec<Option<InferInput<'_>>> = tys
            .iter()
            .map(|t| t.as_ref().map(|ty| InferInput { ty, value: None }))
            .collect();
        let inferred = op.infer(&iin)?;
        let out = op.eval(ins)?;
        for (o, ty) in out.iter().zip(&inferred) {
            assert_eq!(
                &TensorType::new(o.dtype(), o.shape().to_vec()),
                ty,
                "{op:?}"
            );
        }
        Ok(out)
    }

    fn t<T: crate::tensor::Elem>(shape: &[usize], v: &[T]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn quantize_rounds_half_even_and_saturates() {
        let q = parse("QuantizeLinear", 21, vec![]).unwrap();
        let x = t(&[6], &[0.5f32, 1.5, 2.5, -1.0, 1000.0, 3.0]);
        let s = t(&[], &[1.0f32]);
        let y = run(&q, &[Some(&x), Some(&s)]).unwrap().remove(0);
        assert_eq!(y, t(&[6], &[0u8, 2, 2, 0, 255, 3]));
        let zp = t(&[], &[-1i8]);
        let y = run(&q, &[Some(&x), Some(&s), Some(&zp)]).unwrap().remove(0);
        assert_eq!(y, t(&[6], &[-1i8, 1, 1, -2, 127, 2]));
    }

    #[test]
    fn quantize_per_axis_and_blocked() {
        let x = t(&[2, 4], &[1.0f32, 2., 3., 4., 5., 6., 7., 8.]);
        let q = parse("QuantizeLinear", 21, vec![("axis", AttrValue::Int(0))]).unwrap();
        let y = run(&q, &[Some(&x), Some(&t(&[2], &[1.0f32, 2.0]))])
            .unwrap()
            .remove(0);
        assert_eq!(y, t(&[2, 4], &[1u8, 2, 3, 4, 2, 3, 4, 4]));
        let q = parse(
            "QuantizeLinear",
            21,
            vec![
                ("axis", AttrValue::Int(1)),
                ("block_size", AttrValue::Int(3)),
            ],
        )
        .unwrap();
        let s = t(&[2, 2], &[1.0f32, 2.0, 1.0, 4.0]);
        let y = run(&q, &[Some(&x), Some(&s)]).unwrap().remove(0);
        assert_eq!(y, t(&[2, 4], &[1u8, 2, 3, 2, 5, 6, 7, 2]));
        // A blocked scale of the wrong block count is rejected.
        assert!(run(&q, &[Some(&x), Some(&t(&[2, 3], &[1.0f32; 6]))]).is_err());
        // Per-axis needs opset 13.
        let old = parse("QuantizeLinear", 10, vec![]).unwrap();
        assert!(run(&old, &[Some(&x), Some(&t(&[4], &[1.0f32; 4]))]).is_err());
    }

    #[test]
    fn unsupported_types_are_rejected() {
        let e = parse(
            "QuantizeLinear",
            21,
            vec![("output_dtype", AttrValue::Int(17))],
        )
        .unwrap_err();
        assert!(e.to_string().contains("FLOAT8E4M3FN"), "{e}");
        let q = parse(
            "QuantizeLinear",
            21,
            vec![("output_dtype", AttrValue::Int(6))],
        )
        .unwrap();
        let x = t(&[1], &[1.0f32]);
        assert!(run(&q, &[Some(&x), Some(&t(&[], &[1.0f32]))]).is_err());
    }

    #[test]
    fn dequantize() {
        let d = parse("DequantizeLinear", 21, vec![]).unwrap();
        let x = t(&[3], &[0i8, 3, -128]);
        let y = run(
            &d,
            &[Some(&x), Some(&t(&[], &[0.5f32])), Some(&t(&[], &[1i8]))],
        )
        .unwrap()
        .remove(0);
        assert_eq!(y, t(&[3], &[-0.5f32, 1.0, -64.5]));
        let h = t(&[], &[half::f16::from_f32(2.0)]);
        let y = run(&d, &[Some(&x), Some(&h)]).unwrap().remove(0);
        assert_eq!(y.dtype(), DType::F16);
        assert!(
            run(
                &d,
                &[Some(&x), Some(&t(&[], &[0.5f32])), Some(&t(&[], &[1u8]))]
            )
            .is_err()
        );
    }

    #[test]
    fn dynamic_quantize_spec_example() {
        let x = t(&[6], &[0.0f32, 2., -3., -2.5, 1.34, 0.5]);
        let out = run(&Quant::DynamicQuantizeLinear, &[Some(&x)]).unwrap();
        assert_eq!(out[0], t(&[6], &[153u8, 255, 0, 26, 221, 179]));
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[5.0f32 / 255.0]);
        assert_eq!(out[2], Tensor::scalar(153u8));
    }

    #[test]
    fn matmul_integer_with_row_and_column_zero_points() {
        let a = t(&[2, 2], &[11u8, 12, 13, 14]);
        let b = t(&[2, 2], &[1u8, 2, 3, 4]);
        let (za, zb) = (t(&[2], &[10u8, 12]), t(&[2], &[1u8, 2]));
        let y = run(
            &Quant::MatMulInteger,
            &[Some(&a), Some(&b), Some(&za), Some(&zb)],
        )
        .unwrap()
        .remove(0);
        // [[1,2],[1,2]] x [[0,0],[2,2]]
        assert_eq!(y, t(&[2, 2], &[4i32, 4, 4, 4]));
        assert!(
            run(
                &Quant::MatMulInteger,
                &[Some(&a), Some(&b), Some(&t(&[3], &[0u8; 3]))]
            )
            .is_err()
        );
    }

    #[test]
    fn qlinear_matmul_requantizes() {
        let a = t(&[1, 2], &[2u8, 4]);
        let b = t(&[2, 1], &[3u8, 5]);
        let one = t(&[], &[1.0f32]);
        let (z0, z1) = (t(&[], &[0u8]), t(&[], &[1u8]));
        let ys = t(&[], &[4.0f32]);
        let ins = [
            Some(&a),
            Some(&one),
            Some(&z0),
            Some(&b),
            Some(&one),
            Some(&z1),
            Some(&ys),
            Some(&z1),
        ];
        // (2*2 + 4*4) / 4 + 1 = 6
        assert_eq!(
            run(&Quant::QLinearMatMul, &ins).unwrap().remove(0),
            t(&[1, 1], &[6u8])
        );
    }

    #[test]
    fn conv_integer_pads_with_the_zero_point() {
        let c = parse(
            "ConvInteger",
            10,
            vec![("pads", AttrValue::Ints(vec![1, 1, 1, 1]))],
        )
        .unwrap();
        let x = t(&[1, 1, 2, 2], &[2u8, 3, 4, 5]);
        let w = t(&[1, 1, 2, 2], &[1u8, 1, 1, 1]);
        let zp = t(&[], &[1u8]);
        let y = run(&c, &[Some(&x), Some(&w), Some(&zp)]).unwrap().remove(0);
        // x - 1 = [[1,2],[3,4]] padded with zeros, summed over 2x2 windows.
        assert_eq!(y, t(&[1, 1, 3, 3], &[1i32, 3, 2, 4, 10, 6, 3, 7, 4]));
        let same = parse(
            "ConvInteger",
            10,
            vec![("auto_pad", AttrValue::String(b"SAME_UPPER".to_vec()))],
        )
        .unwrap();
        let y = run(&same, &[Some(&x), Some(&w), Some(&zp)])
            .unwrap()
            .remove(0);
        assert_eq!(y, t(&[1, 1, 2, 2], &[10i32, 6, 7, 4]));
    }

    #[test]
    fn qlinear_conv_per_channel() {
        let c = parse("QLinearConv", 10, vec![]).unwrap();
        let x = t(&[1, 1, 1, 2], &[10u8, 20]);
        let w = t(&[2, 1, 1, 1], &[1i8, 2]);
        let (s1, z0) = (t(&[], &[1.0f32]), t(&[], &[0u8]));
        let ws = t(&[2], &[1.0f32, 0.5]);
        let wz = t(&[2], &[0i8, 0]);
        let ys = t(&[], &[2.0f32]);
        let b = t(&[2], &[1i32, 0]);
        let ins = [
            Some(&x),
            Some(&s1),
            Some(&z0),
            Some(&w),
            Some(&ws),
            Some(&wz),
            Some(&ys),
            Some(&z0),
            Some(&b),
        ];
        // channel 0: (x + 1) / 2 -> [5.5, 10.5] -> [6, 10]; channel 1: 2x * 0.5 / 2 -> [5, 10]
        assert_eq!(
            run(&c, &ins).unwrap().remove(0),
            t(&[1, 2, 1, 2], &[6u8, 10, 5, 10])
        );
    }

    #[test]
    fn empty_and_extreme_inputs_do_not_panic() {
        let c = parse(
            "ConvInteger",
            10,
            vec![("pads", AttrValue::Ints(vec![i64::MAX, 0, 0, 0]))],
        )
        .unwrap();
        let x = t(&[1, 1, 2, 2], &[0u8; 4]);
        let w = t(&[1, 1, 1, 1], &[1u8]);
        assert!(run(&c, &[Some(&x), Some(&w)]).is_err());
        let c = parse(
            "ConvInteger",
            10,
            vec![("dilations", AttrValue::Ints(vec![i64::MAX, 1]))],
        )
        .unwrap();
        assert!(run(&c, &[Some(&x), Some(&t(&[1, 1, 2, 1], &[1u8; 2]))]).is_err());
        let q = parse("QuantizeLinear", 21, vec![]).unwrap();
        let e = Tensor::zeros(DType::F32, vec![0, 3]).unwrap();
        assert_eq!(
            run(&q, &[Some(&e), Some(&t(&[], &[1.0f32]))]).unwrap()[0].shape(),
            &[0, 3]
        );
        let out = run(&Quant::DynamicQuantizeLinear, &[Some(&e)]).unwrap();
        assert_eq!(out[1].as_slice::<f32>().unwrap(), &[1.0f32 / 255.0]);
        let nan = t(&[2], &[f32::NAN, 1.0]);
        assert!(run(&Quant::DynamicQuantizeLinear, &[Some(&nan)]).is_ok());
        assert!(run(&q, &[Some(&nan), Some(&t(&[], &[0.0f32]))]).is_ok());
    }
}
