//! ScatterND and ScatterElements (and the older `Scatter` spelling), with the
//! reductions that combine an update with the element it lands on.

use super::gather::{check_elements_shape, element_offsets, gather_nd_dims, nd_offsets};
use super::{Layout, check_index_type, one, prod, single, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, req};
use crate::shape::norm_axis;
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, shape_err, type_err};

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

    pub(super) fn name(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Add => "add",
            Reduction::Mul => "mul",
            Reduction::Max => "max",
            Reduction::Min => "min",
        }
    }
}

/// Parses a `ScatterND` node.
pub(super) fn parse_scatter_nd(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    Ok(Layout::ScatterND {
        reduction: Reduction::parse(&a.string("reduction", "none")?, v)?,
    })
}

/// Parses a `ScatterElements` node.
pub(super) fn parse_scatter_elements(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    Ok(Layout::ScatterElements {
        axis: a.int("axis", 0)?,
        reduction: Reduction::parse(&a.string("reduction", "none")?, v)?,
        legacy: false,
    })
}

/// Parses a `Scatter` node.
pub(super) fn parse_scatter(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::ScatterElements {
        axis: a.int("axis", 0)?,
        reduction: Reduction::None,
        legacy: true,
    })
}

/// The `data`, `indices` and `updates` operands of the scatters, with the
/// index type and the updates' dtype checked.
fn scatter_operands<'a>(
    inputs: &[Option<InferInput<'a>>],
) -> Result<(&'a TensorType, &'a TensorType, &'a TensorType)> {
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
    Ok((x, i, u))
}

/// The shape rule of `ScatterND`.
pub(super) fn infer_scatter_nd(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    let (x, i, u) = scatter_operands(inputs)?;
    let (_, k) = gather_nd_dims(&x.shape, &i.shape, 0)?;
    let mut want = i.shape[..i.shape.len() - 1].to_vec();
    want.extend_from_slice(&x.shape[k..]);
    if u.shape != want {
        shape_err!("updates must have shape {want:?}, got {:?}", u.shape);
    }
    one(x.dtype, x.shape.clone())
}

/// The shape rule of `ScatterElements`.
pub(super) fn infer_scatter_elements(
    axis: i64,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, i, u) = scatter_operands(inputs)?;
    if u.shape != i.shape {
        shape_err!(
            "updates {:?} and indices {:?} must have the same shape",
            u.shape,
            i.shape
        );
    }
    let ax = norm_axis(axis, x.shape.len())?;
    check_elements_shape(&x.shape, &i.shape, ax)?;
    one(x.dtype, x.shape.clone())
}

/// Evaluates `ScatterND`.
pub(super) fn eval_scatter_nd(
    reduction: Reduction,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let (i, u) = (req(inputs, 1, "indices")?, req(inputs, 2, "updates")?);
    let (_, k) = gather_nd_dims(x.shape(), i.shape(), 0)?;
    let offs = nd_offsets(x.shape(), i.shape(), &i.to_i64_vec(), 0, k)?;
    scatter_blocks(x, u, &offs, prod(&x.shape()[k..]), reduction, outs)
}

/// Evaluates `ScatterElements`.
pub(super) fn eval_scatter_elements(
    axis: i64,
    reduction: Reduction,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let (i, u) = (req(inputs, 1, "indices")?, req(inputs, 2, "updates")?);
    let offs = element_offsets(x, i, axis, "ScatterElements index")?;
    scatter_blocks(x, u, &offs, 1, reduction, outs)
}

/// Copies `x` and lands the `t`-th block of `len` elements of `u` at offset
/// `offs[t]`, combining it with what is there by `reduction`: the common
/// core of ScatterND (blocks of the trailing dims) and ScatterElements
/// (single elements).
fn scatter_blocks(
    x: &Tensor,
    u: &Tensor,
    offs: &[usize],
    len: usize,
    reduction: Reduction,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let data = map_data!(x, v, T => {
        let uv = u.as_slice::<T>()?;
        let mut out = v.to_vec();
        for (t, &o) in offs.iter().enumerate() {
            let (dst, src) = (&mut out[o..o + len], &uv[t * len..(t + 1) * len]);
            match reduction {
                Reduction::None => dst.copy_from_slice(src),
                r => {
                    for (a, &b) in dst.iter_mut().zip(src) {
                        *a = a.combine(b, r);
                    }
                }
            }
        }
        out
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn scatter_family() {
        let d = t(&[4], &[1i32, 2, 3, 4]);
        let i = t(&[2, 1], &[1i64, 1]);
        let u = t(&[2], &[10i32, 20]);
        // Both updates hit element 1, so each reduction shows in it.
        for (reduction, at_1) in [
            (Reduction::None, 20),
            (Reduction::Add, 32),
            (Reduction::Mul, 400),
            (Reduction::Min, 2),
        ] {
            let op = Layout::ScatterND { reduction };
            check(op, &[&d, &i, &u], &t(&[4], &[1i32, at_1, 3, 4]));
        }
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
}
