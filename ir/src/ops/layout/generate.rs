//! Shape, Size, Range and ConstantOfShape: ops that generate a tensor from a
//! shape or from scalar operands.

use super::{Layout, int_list, one, single, to_dim, ty};
use crate::attrs::AttrValue;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input};
use crate::shape::{Shape, numel};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, dispatch_dtype, shape_err, type_err};

/// Parses a `Shape` node.
pub(super) fn parse_shape(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Shape {
        start: a.int("start", 0)?,
        end: a.int_opt("end")?,
    })
}

/// Parses a `Size` node.
pub(super) fn parse_size(_ctx: &ParseCtx<'_>) -> Result<Layout> {
    Ok(Layout::Size)
}

/// Parses a `Range` node.
pub(super) fn parse_range(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
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
    Ok(Layout::Range { stash_f32 })
}

/// Parses a `ConstantOfShape` node.
pub(super) fn parse_constant_of_shape(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
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
    Ok(Layout::ConstantOfShape { value })
}

/// The shape rule of `Shape`.
pub(super) fn infer_shape(
    start: i64,
    end: Option<i64>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "data")?;
    let (s, e) = shape_range(x.shape.len(), start, end);
    one(DType::I64, vec![e - s])
}

/// The shape rule of `Size`.
pub(super) fn infer_size(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    ty(inputs, 0, "data")?;
    one(DType::I64, vec![])
}

/// The shape rule of `Range`.
pub(super) fn infer_range(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 3, 3)?;
    let s = const_input(inputs, 0, "start")?;
    let n = range_count(
        s,
        const_input(inputs, 1, "limit")?,
        const_input(inputs, 2, "delta")?,
    )?;
    one(s.dtype(), vec![n])
}

/// The shape rule of `ConstantOfShape`.
pub(super) fn infer_constant_of_shape(
    value: Option<&Tensor>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let target = int_list(const_input(inputs, 0, "input")?, "shape")?;
    let shape: Shape = target
        .iter()
        .map(|&d| to_dim(d, "a dim"))
        .collect::<Result<_>>()?;
    numel(&shape)?;
    one(value.map_or(DType::F32, |v| v.dtype()), shape)
}

/// Evaluates `Shape`.
pub(super) fn eval_shape(
    start: i64,
    end: Option<i64>,
    x: &Tensor,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let (s, e) = shape_range(x.rank(), start, end);
    let dims: Vec<i64> = x.shape()[s..e].iter().map(|&d| d as i64).collect();
    single(Tensor::from_vec(outs[0].shape.clone(), dims)?)
}

/// Evaluates `Size`.
pub(super) fn eval_size(x: &Tensor) -> Result<Vec<Tensor>> {
    single(Tensor::scalar(x.len() as i64))
}

/// Evaluates `ConstantOfShape`.
pub(super) fn eval_constant_of_shape(
    value: Option<&Tensor>,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let n = numel(&outs[0].shape)?;
    let data = match value {
        Some(t) => map_data!(t, v, T => vec![v[0]; n]),
        None => Elem::wrap(vec![0f32; n]),
    };
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// The dims kept by Shape's `start`/`end`.
pub(super) fn shape_range(rank: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    (s, e.max(s))
}

/// The element count of a Range.
pub(super) fn range_count(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<usize> {
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

pub(super) fn eval_range(
    start: &Tensor,
    delta: &Tensor,
    n: usize,
    stash_f32: bool,
) -> Result<Tensor> {
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

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

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
}
