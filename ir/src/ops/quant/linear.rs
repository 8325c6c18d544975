//! `QuantizeLinear` and `DequantizeLinear`: per-tensor, per-axis and blocked
//! scales and zero points ([`QLayout`] says which parameter each element
//! uses), with the division and product rounded where NumPy rounds.

use super::{QAttrs, Quant, operand_types, qrange, saturate_round};
use crate::dtype::{DType, rounder};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::shape::{norm_axis, numel};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// Parses a `QuantizeLinear` node.
pub(super) fn parse_quantize_linear(ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::QuantizeLinear(parse_qattrs(ctx)?))
}

/// Parses a `DequantizeLinear` node.
pub(super) fn parse_dequantize_linear(ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::DequantizeLinear(parse_qattrs(ctx)?))
}

/// Reads the attributes `QuantizeLinear` and `DequantizeLinear` share.
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

/// The printed attributes of `QuantizeLinear` and `DequantizeLinear`.
pub(super) fn qattrs_attrs(q: &QAttrs) -> Vec<(&'static str, String)> {
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QLayout {
    /// One scale and zero point for every element.
    PerTensor,
    /// `x` viewed as `[outer, d, inner]`, one parameter per `d`.
    PerAxis {
        /// The quantization axis' length.
        d: usize,
        /// Elements per step along the axis.
        inner: usize,
    },
    /// `x` viewed as `[outer, d, inner]`, parameters `[outer, ceil(d/bs), inner]`.
    Blocked {
        /// The quantization axis' length.
        d: usize,
        /// Elements per step along the axis.
        inner: usize,
        /// The block length.
        bs: usize,
        /// Blocks along the axis, `ceil(d / bs)`.
        nb: usize,
    },
}

impl QLayout {
    /// The parameter index of element `i` of `x`.
    pub fn index(self, i: usize) -> usize {
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
    /// The type `QuantizeLinear` divides an `x` element by its scale in:
    /// `precision`, else NumPy's promotion of the two types (the reference
    /// divides the arrays directly).
    pub fn division_dtype(&self, x: DType, scale: DType) -> DType {
        self.precision.unwrap_or_else(|| promote(x, scale))
    }

    /// Checks the scale (and zero point) shape against `x` and resolves the layout.
    pub fn layout(&self, x: &[usize], scale: &[usize], zp: Option<&[usize]>) -> Result<QLayout> {
        // A scalar and a one-element vector are the same per-tensor
        // parameter (onnxruntime's quantizer writes such pairs).
        let per_tensor = |s: &[usize]| s.len() <= 1 && s.iter().product::<usize>() == 1;
        if let Some(z) = zp
            && z != scale
            && !(per_tensor(z) && per_tensor(scale))
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

    /// `QuantizeLinear`'s output type for concrete operand types.
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

    /// `DequantizeLinear`'s output type for concrete operand types.
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

/// `QuantizeLinear`'s output type.
pub(super) fn infer_quantize_linear(
    q: &QAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    infer_linear(q, inputs, "y_scale", QAttrs::infer_quantize)
}

/// `DequantizeLinear`'s output type.
pub(super) fn infer_dequantize_linear(
    q: &QAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    infer_linear(q, inputs, "x_scale", QAttrs::infer_dequantize)
}

/// The output type of either op by `infer`, from the operands `x`, the
/// scale (named `scale`) and the optional zero point.
fn infer_linear(
    q: &QAttrs,
    inputs: &[Option<InferInput<'_>>],
    scale: &str,
    infer: InferFn,
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 3)?;
    let tys = operand_types(inputs);
    let (x, s) = (req(&tys, 0, "x")?, req(&tys, 1, scale)?);
    Ok(vec![infer(q, x, s, opt(&tys, 2))?])
}

/// The type inference of one of the two ops on concrete operands.
type InferFn = fn(&QAttrs, &TensorType, &TensorType, Option<&TensorType>) -> Result<TensorType>;

/// Checks the operands `x`, scale and optional zero point with `infer`, then
/// maps every element of `x` with the scale and zero point (0 when absent)
/// that apply to it through the element function `make` builds for the
/// output type, and casts the result to that type.
fn map_with_params<F: Fn(f64, f64, f64) -> f64>(
    qa: &QAttrs,
    inputs: &[Option<&Tensor>],
    scale_name: &str,
    infer: InferFn,
    make: impl FnOnce(DType) -> Result<F>,
) -> Result<Vec<Tensor>> {
    let (x, s, zp) = (
        req(inputs, 0, "x")?,
        req(inputs, 1, scale_name)?,
        opt(inputs, 2),
    );
    let ty = |t: &Tensor| TensorType::new(t.dtype(), t.shape().to_vec());
    let out = infer(qa, &ty(x), &ty(s), zp.map(ty).as_ref())?;
    let layout = qa.layout(x.shape(), s.shape(), zp.map(|z| z.shape()))?;
    let f = make(out.dtype)?;
    let (xv, sv) = (x.to_f64_vec(), s.to_f64_vec());
    let zv = zp.map(|z| z.to_f64_vec());
    let y: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = layout.index(i);
            let z = zv.as_ref().map(|z| z[p]).unwrap_or(0.0);
            f(v, sv[p], z)
        })
        .collect();
    Ok(vec![Tensor::from_vec(out.shape, y)?.cast(out.dtype)])
}

/// Evaluates `QuantizeLinear`.
pub(super) fn eval_quantize_linear(qa: &QAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let (x, s) = (req(inputs, 0, "x")?, req(inputs, 1, "y_scale")?);
    let rp = rounder(qa.division_dtype(x.dtype(), s.dtype()));
    map_with_params(qa, inputs, "y_scale", QAttrs::infer_quantize, |out| {
        let (lo, hi) = qrange(out)?;
        Ok(move |v: f64, s: f64, z: f64| saturate_round(rp(v / s), z, lo, hi))
    })
}

/// Evaluates `DequantizeLinear`.
pub(super) fn eval_dequantize_linear(
    qa: &QAttrs,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let x = req(inputs, 0, "x")?;
    // The reference computes `float32(x) - zero_point` then `* scale` with
    // NumPy promotion: f32 throughout, except that an i32 zero point promotes
    // the difference (and the product) to f64.
    let wide = x.dtype() == DType::I32 && opt(inputs, 2).is_some();
    let r32 = |v: f64| v as f32 as f64;
    map_with_params(qa, inputs, "x_scale", QAttrs::infer_dequantize, |_| {
        Ok(move |v: f64, s: f64, z: f64| {
            if wide {
                (r32(v) - z) * s
            } else {
                r32(r32(r32(v) - z) * s)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::attrs::AttrValue;
    use crate::dtype::DType;

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
}
