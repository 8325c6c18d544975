//! The broadcasting binary functions: arithmetic, comparisons, logic and bit
//! operations, and [`broadcast_map`], the kernel that walks two broadcast
//! operands.

use super::infer_broadcast;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, check_arity, req};
use crate::shape::{broadcast_index_map, broadcast_shapes};
use crate::tensor::{Elem, Float, Int, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};

/// A broadcasting binary function.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum BinaryFn {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// `fmod = false`: the result has the divisor's sign (Python `%`);
    /// `fmod = true`: the dividend's (C `fmod`).
    Mod {
        fmod: bool,
    },
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    BitShift {
        left: bool,
    },
}

impl BinaryFn {
    pub(super) fn name(self) -> &'static str {
        match self {
            BinaryFn::Add => "Add",
            BinaryFn::Sub => "Sub",
            BinaryFn::Mul => "Mul",
            BinaryFn::Div => "Div",
            BinaryFn::Pow => "Pow",
            BinaryFn::Mod { .. } => "Mod",
            BinaryFn::Equal => "Equal",
            BinaryFn::Less => "Less",
            BinaryFn::LessOrEqual => "LessOrEqual",
            BinaryFn::Greater => "Greater",
            BinaryFn::GreaterOrEqual => "GreaterOrEqual",
            BinaryFn::And => "And",
            BinaryFn::Or => "Or",
            BinaryFn::Xor => "Xor",
            BinaryFn::BitwiseAnd => "BitwiseAnd",
            BinaryFn::BitwiseOr => "BitwiseOr",
            BinaryFn::BitwiseXor => "BitwiseXor",
            BinaryFn::BitShift { .. } => "BitShift",
        }
    }

    pub(super) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryFn::Equal
                | BinaryFn::Less
                | BinaryFn::LessOrEqual
                | BinaryFn::Greater
                | BinaryFn::GreaterOrEqual
        )
    }

    pub(super) fn out_dtype(self, a: DType, b: DType) -> Result<DType> {
        let same = || {
            if a == b {
                Ok(())
            } else {
                Err(Error::Type(format!(
                    "operands have different dtypes {a} and {b}"
                )))
            }
        };
        match self {
            BinaryFn::Add
            | BinaryFn::Sub
            | BinaryFn::Mul
            | BinaryFn::Div
            | BinaryFn::Mod { .. } => {
                same()?;
                if a == DType::Bool {
                    return Err(Error::Type("arithmetic on bool".into()));
                }
                Ok(a)
            }
            BinaryFn::Pow => {
                if a == DType::Bool || b == DType::Bool {
                    return Err(Error::Type("Pow on bool".into()));
                }
                Ok(a)
            }
            BinaryFn::Equal
            | BinaryFn::Less
            | BinaryFn::LessOrEqual
            | BinaryFn::Greater
            | BinaryFn::GreaterOrEqual => {
                same()?;
                Ok(DType::Bool)
            }
            BinaryFn::And | BinaryFn::Or | BinaryFn::Xor => {
                same()?;
                if a != DType::Bool {
                    return Err(Error::Type(format!("logical op on {a}; expects bool")));
                }
                Ok(DType::Bool)
            }
            BinaryFn::BitwiseAnd | BinaryFn::BitwiseOr | BinaryFn::BitwiseXor => {
                same()?;
                if !a.is_int() {
                    return Err(Error::Type(format!(
                        "bitwise op on {a}; expects an integer type"
                    )));
                }
                Ok(a)
            }
            BinaryFn::BitShift { .. } => {
                same()?;
                if !a.is_int() {
                    return Err(Error::Type(format!(
                        "BitShift on {a}; expects an integer type"
                    )));
                }
                Ok(a)
            }
        }
    }

    pub(super) fn apply_f(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryFn::Add => a + b,
            BinaryFn::Sub => a - b,
            BinaryFn::Mul => a * b,
            BinaryFn::Div => a / b,
            BinaryFn::Pow => a.powf(b),
            BinaryFn::Mod { fmod: true } => a % b,
            BinaryFn::Mod { fmod: false } => {
                // NumPy's `mod`: the remainder takes the divisor's sign.
                let r = a % b;
                if b == 0.0 || r.is_nan() {
                    r
                } else if r == 0.0 {
                    0f64.copysign(b)
                } else if (b < 0.0) != (r < 0.0) {
                    r + b
                } else {
                    r
                }
            }
            _ => f64::NAN,
        }
    }

    pub(super) fn compare(self, o: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::*;
        match self {
            BinaryFn::Equal => o == Some(Equal),
            BinaryFn::Less => o == Some(Less),
            BinaryFn::LessOrEqual => matches!(o, Some(Less | Equal)),
            BinaryFn::Greater => o == Some(Greater),
            BinaryFn::GreaterOrEqual => matches!(o, Some(Greater | Equal)),
            _ => false,
        }
    }

    /// The function on integers. Division and remainder by zero give 0 (ONNX
    /// leaves them undefined; the generated code gives 0 too and never
    /// traps, see docs/semantics.md); `MIN / -1` wraps to `MIN`.
    pub(super) fn apply_int<T: Int>(self, a: T, b: T) -> Result<T> {
        Ok(match self {
            BinaryFn::Add => a.wadd(b),
            BinaryFn::Sub => a.wsub(b),
            BinaryFn::Mul => a.wmul(b),
            BinaryFn::Div => a.cdiv(b).unwrap_or(T::ZERO),
            BinaryFn::Mod { fmod: true } => a.crem(b).unwrap_or(T::ZERO),
            BinaryFn::Mod { fmod: false } => {
                let r = a.crem(b).unwrap_or(T::ZERO);
                // Python semantics: the remainder takes the divisor's sign.
                if r != T::ZERO && ((r < T::ZERO) != (b < T::ZERO)) {
                    r.wadd(b)
                } else {
                    r
                }
            }
            BinaryFn::BitwiseAnd => a.band(b),
            BinaryFn::BitwiseOr => a.bor(b),
            BinaryFn::BitwiseXor => a.bxor(b),
            BinaryFn::BitShift { left: true } => a.shl(b),
            BinaryFn::BitShift { left: false } => a.shr(b),
            BinaryFn::Pow => a.wpow(b.to_i64()),
            _ => return Err(Error::Type(format!("{} on integers", self.name()))),
        })
    }
}

/// Applies `f` to `a` and `b` broadcast to a common shape.
pub fn broadcast_map<A: Elem, B: Elem, C: Elem>(
    a: &Tensor,
    b: &Tensor,
    mut f: impl FnMut(A, B) -> Result<C>,
) -> Result<Tensor> {
    let (av, bv) = (a.as_slice::<A>()?, b.as_slice::<B>()?);
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let out: Vec<C> = if a.shape() == b.shape() {
        av.iter()
            .zip(bv)
            .map(|(&x, &y)| f(x, y))
            .collect::<Result<_>>()?
    } else if b.len() == 1 && a.shape() == shape.as_slice() {
        let y = bv[0];
        av.iter().map(|&x| f(x, y)).collect::<Result<_>>()?
    } else {
        let ia = broadcast_index_map(a.shape(), &shape);
        let ib = broadcast_index_map(b.shape(), &shape);
        ia.iter()
            .zip(&ib)
            .map(|(&i, &j)| f(av[i], bv[j]))
            .collect::<Result<_>>()?
    };
    Tensor::from_vec(shape, out)
}

/// Evaluates a binary function.
pub(super) fn eval_binary(f: BinaryFn, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    f.out_dtype(a.dtype(), b.dtype())?;
    if f.is_comparison() {
        return dispatch!(a.data(), _v, T => broadcast_map::<T, T, bool>(a, b, |x, y| {
            Ok(if T::DTYPE.is_float() {
                f.compare(x.to_f64().partial_cmp(&y.to_f64()))
            } else {
                f.compare(x.partial_cmp(&y))
            })
        }));
    }
    match f {
        BinaryFn::And => return broadcast_map::<bool, bool, bool>(a, b, |x, y| Ok(x & y)),
        BinaryFn::Or => return broadcast_map::<bool, bool, bool>(a, b, |x, y| Ok(x | y)),
        BinaryFn::Xor => return broadcast_map::<bool, bool, bool>(a, b, |x, y| Ok(x ^ y)),
        BinaryFn::Pow if a.dtype() != b.dtype() => {
            // Mixed types: compute in f64 and convert to the base's type.
            let (a64, b64) = (a.cast(DType::F64), b.cast(DType::F64));
            let r = broadcast_map::<f64, f64, f64>(&a64, &b64, |x, y| Ok(x.powf(y)))?;
            return Ok(r.cast(a.dtype()));
        }
        _ => {}
    }
    dispatch_float!(a.data(), _v, T => broadcast_map::<T, T, T>(a, b, |x, y| Ok(T::from_f(f.apply_f(x.to_f(), y.to_f())))),
        else dispatch_int!(a.data(), _v, T => broadcast_map::<T, T, T>(a, b, |x, y| f.apply_int(x, y)),
            else Err(Error::Type(format!("{} on {}", f.name(), a.dtype())))))
}

/// A binary function's output type.
pub(super) fn infer_binary(f: BinaryFn, inputs: &[Option<InferInput<'_>>]) -> Result<TensorType> {
    check_arity(inputs, 2, 2)?;
    let (a, b) = (req(inputs, 0, "A")?.ty, req(inputs, 1, "B")?.ty);
    Ok(TensorType::new(
        f.out_dtype(a.dtype, b.dtype)?,
        infer_broadcast(&[a, b])?,
    ))
}
