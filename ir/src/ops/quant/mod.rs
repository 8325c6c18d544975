//! Quantization ops: `QuantizeLinear`, `DequantizeLinear`,
//! `DynamicQuantizeLinear` and the integer kernels `MatMulInteger`,
//! `ConvInteger`, `QLinearMatMul` and `QLinearConv`.
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
//!
//! One file per op or small group of related ops holds that op's parser,
//! shape rule (`infer_*`) and evaluation (`eval_*`), with its tests. This
//! file keeps the closed [`Quant`] enum, the op table that declares each op's
//! name (its ONNX spelling) once, the exhaustive dispatch of [`OpDef`] and the
//! helpers the op files share.

use crate::dtype::DType;
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::linalg::MatmulDims;
use crate::ops::{InferInput, OpDef, ParseCtx, opt, req, tensor_types};
use crate::tensor::Tensor;
use crate::type_err;

mod conv;
mod dynamic;
mod linear;
mod matmul;

/// How a convolution pads its input (shared with `Conv`, see [`crate::window`]).
pub use crate::window::AutoPad;
pub use conv::{ConvAttrs, QLINEAR_CONV_OPERANDS};
pub use linear::QLayout;
pub use matmul::qparam_shape;

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

impl QAttrs {
    /// The attributes of a node at `opset` with `axis` and `block_size` (0:
    /// per tensor or per axis), saturating, with no `output_dtype` or
    /// `precision`.
    pub fn new(axis: i64, block_size: usize, opset: i64) -> QAttrs {
        QAttrs {
            axis,
            block_size,
            saturate: true,
            output_dtype: None,
            precision: None,
            opset,
        }
    }
}

#[rustfmt::skip]
family_ops! {
    Quant, "quant";
    Quant::QuantizeLinear(_)     => "QuantizeLinear",        linear::parse_quantize_linear;
    Quant::DequantizeLinear(_)   => "DequantizeLinear",      linear::parse_dequantize_linear;
    Quant::DynamicQuantizeLinear => "DynamicQuantizeLinear", dynamic::parse_dynamic_quantize_linear;
    Quant::MatMulInteger         => "MatMulInteger",         matmul::parse_matmul_integer;
    Quant::ConvInteger(_)        => "ConvInteger",           conv::parse_conv_integer;
    Quant::QLinearMatMul         => "QLinearMatMul",         matmul::parse_qlinear_matmul;
    Quant::QLinearConv(_)        => "QLinearConv",           conv::parse_qlinear_conv;
}

// ---------------------------------------------------------------------------
// Helpers the op files share.

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

/// Rounds half to even, adds the zero point and saturates to `lo..=hi`.
fn saturate_round(q: f64, zp: f64, lo: f64, hi: f64) -> f64 {
    // NaN has no quantized value; it maps to the zero point (the image of 0).
    let r = if q.is_nan() { 0.0 } else { q.round_ties_even() };
    (r + zp).clamp(lo, hi)
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

/// Checks an 8-bit quantized operand type.
fn int8_dtype(d: DType, what: &str) -> Result<()> {
    if !matches!(d, DType::U8 | DType::I8) {
        type_err!("{what} must be u8 or i8, got {d}");
    }
    Ok(())
}

/// The types of the operands shape inference sees.
fn operand_types<'a>(inputs: &[Option<InferInput<'a>>]) -> Vec<Option<&'a TensorType>> {
    inputs.iter().map(|i| i.map(|x| x.ty)).collect()
}

/// Runs a type check `f` on the types of concrete operands, so evaluation
/// validates exactly what inference does.
fn with_types<R>(
    inputs: &[Option<&Tensor>],
    f: impl FnOnce(&[Option<&TensorType>]) -> Result<R>,
) -> Result<R> {
    let tys = tensor_types(inputs);
    let refs: Vec<Option<&TensorType>> = tys.iter().map(|t| t.as_ref()).collect();
    f(&refs)
}

/// The required operand types `names[i]` at index `i`.
fn named_types<'a>(ins: &[Option<&'a TensorType>], names: &[&str]) -> Result<Vec<&'a TensorType>> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| req(ins, i, n))
        .collect()
}

/// The first `n` operands, all required.
fn operands<'a>(inputs: &[Option<&'a Tensor>], n: usize) -> Result<Vec<&'a Tensor>> {
    (0..n).map(|i| req(inputs, i, "operand")).collect()
}

/// The optional zero point `z` (named `what`) of `operand` (named
/// `operand_name`), checked to have the operand's type.
fn check_zero_point<'a>(
    z: Option<&'a TensorType>,
    operand: &TensorType,
    what: &str,
    operand_name: &str,
) -> Result<Option<&'a TensorType>> {
    if let Some(z) = z
        && z.dtype != operand.dtype
    {
        type_err!(
            "{what} is {} but {operand_name} is {}",
            z.dtype,
            operand.dtype
        );
    }
    Ok(z)
}

// ---------------------------------------------------------------------------

impl OpDef for Quant {
    fn name(&self) -> &'static str {
        op_name(self)
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Quant::QuantizeLinear(q) | Quant::DequantizeLinear(q) => linear::qattrs_attrs(q),
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
        match self {
            Quant::QuantizeLinear(q) => linear::infer_quantize_linear(q, inputs),
            Quant::DequantizeLinear(q) => linear::infer_dequantize_linear(q, inputs),
            Quant::DynamicQuantizeLinear => dynamic::infer_dynamic_quantize_linear(inputs),
            Quant::MatMulInteger => matmul::infer_matmul_integer(inputs),
            Quant::QLinearMatMul => matmul::infer_qlinear_matmul(inputs),
            Quant::ConvInteger(c) => conv::infer_conv_integer(c, inputs),
            Quant::QLinearConv(c) => conv::infer_qlinear_conv(c, inputs),
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Quant::QuantizeLinear(q) => linear::eval_quantize_linear(q, inputs),
            Quant::DequantizeLinear(q) => linear::eval_dequantize_linear(q, inputs),
            Quant::DynamicQuantizeLinear => dynamic::eval_dynamic_quantize(req(inputs, 0, "x")?),
            Quant::MatMulInteger => matmul::eval_matmul_integer(inputs),
            Quant::QLinearMatMul => matmul::eval_qlinear_matmul(inputs),
            Quant::ConvInteger(c) => conv::eval_conv_integer(c, inputs),
            Quant::QLinearConv(c) => conv::eval_qlinear_conv(c, inputs),
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
        match self {
            Quant::QuantizeLinear(_)
            | Quant::DequantizeLinear(_)
            | Quant::DynamicQuantizeLinear => out_elems(),
            Quant::MatMulInteger => mm(0, 1),
            Quant::QLinearMatMul => mm(0, 3),
            Quant::ConvInteger(c) => conv::macs_conv(c, inputs, 1),
            Quant::QLinearConv(c) => conv::macs_conv(c, inputs, 3),
        }
    }
}

/// Helpers the per-op test modules share.
#[cfg(test)]
mod test_util {
    use super::*;
    use crate::attrs::AttrValue;

    pub(super) fn parse(op: &str, opset: i64, attrs: Vec<(&str, AttrValue)>) -> Result<Quant> {
        crate::ops::test_support::parse_node(Quant::parse, op, opset, attrs, 0, 1).unwrap()
    }

    pub(super) fn run(op: &Quant, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        crate::ops::test_support::infer_and_eval(op, ins, false).map(|(got, _)| got)
    }

    pub(super) fn t<T: crate::tensor::Elem>(shape: &[usize], v: &[T]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::attrs::AttrValue;

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
