//! The unary functions: math, activations, logic and the NaN/Inf tests,
//! with their float (`f64`, rounded once) and integer (wrapping) kernels.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, check_arity, req};
use crate::tensor::{Data, Elem, Float, Int, Tensor};
use crate::{dispatch_float, dispatch_int};

/// A unary function, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum UnaryFn {
    Abs,
    Neg,
    Sign,
    Relu,
    Floor,
    Ceil,
    Round,
    Sqrt,
    Reciprocal,
    Exp,
    Log,
    Erf,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Tanh,
    Sigmoid,
    Softplus,
    Softsign,
    Mish,
    HardSwish,
    Not,
    BitwiseNot,
    IsNaN,
    IsInf { negative: bool, positive: bool },
    LeakyRelu { alpha: f32 },
    Elu { alpha: f32 },
    Celu { alpha: f32 },
    Selu { alpha: f32, gamma: f32 },
    HardSigmoid { alpha: f32, beta: f32 },
    ThresholdedRelu { alpha: f32 },
    Shrink { bias: f32, lambd: f32 },
    Gelu { tanh: bool },
    Swish { alpha: f32 },
}

impl UnaryFn {
    pub(super) fn name(self) -> &'static str {
        match self {
            UnaryFn::Abs => "Abs",
            UnaryFn::Neg => "Neg",
            UnaryFn::Sign => "Sign",
            UnaryFn::Relu => "Relu",
            UnaryFn::Floor => "Floor",
            UnaryFn::Ceil => "Ceil",
            UnaryFn::Round => "Round",
            UnaryFn::Sqrt => "Sqrt",
            UnaryFn::Reciprocal => "Reciprocal",
            UnaryFn::Exp => "Exp",
            UnaryFn::Log => "Log",
            UnaryFn::Erf => "Erf",
            UnaryFn::Sin => "Sin",
            UnaryFn::Cos => "Cos",
            UnaryFn::Tan => "Tan",
            UnaryFn::Asin => "Asin",
            UnaryFn::Acos => "Acos",
            UnaryFn::Atan => "Atan",
            UnaryFn::Sinh => "Sinh",
            UnaryFn::Cosh => "Cosh",
            UnaryFn::Asinh => "Asinh",
            UnaryFn::Acosh => "Acosh",
            UnaryFn::Atanh => "Atanh",
            UnaryFn::Tanh => "Tanh",
            UnaryFn::Sigmoid => "Sigmoid",
            UnaryFn::Softplus => "Softplus",
            UnaryFn::Softsign => "Softsign",
            UnaryFn::Mish => "Mish",
            UnaryFn::HardSwish => "HardSwish",
            UnaryFn::Not => "Not",
            UnaryFn::BitwiseNot => "BitwiseNot",
            UnaryFn::IsNaN => "IsNaN",
            UnaryFn::IsInf { .. } => "IsInf",
            UnaryFn::LeakyRelu { .. } => "LeakyRelu",
            UnaryFn::Elu { .. } => "Elu",
            UnaryFn::Celu { .. } => "Celu",
            UnaryFn::Selu { .. } => "Selu",
            UnaryFn::HardSigmoid { .. } => "HardSigmoid",
            UnaryFn::ThresholdedRelu { .. } => "ThresholdedRelu",
            UnaryFn::Shrink { .. } => "Shrink",
            UnaryFn::Gelu { .. } => "Gelu",
            UnaryFn::Swish { .. } => "Swish",
        }
    }

    pub(super) fn attrs(self) -> Vec<(&'static str, String)> {
        match self {
            UnaryFn::IsInf { negative, positive } => {
                vec![
                    ("detect_negative", (negative as u8).to_string()),
                    ("detect_positive", (positive as u8).to_string()),
                ]
            }
            UnaryFn::LeakyRelu { alpha }
            | UnaryFn::Elu { alpha }
            | UnaryFn::Celu { alpha }
            | UnaryFn::ThresholdedRelu { alpha }
            | UnaryFn::Swish { alpha } => vec![("alpha", alpha.to_string())],
            UnaryFn::Selu { alpha, gamma } => {
                vec![("alpha", alpha.to_string()), ("gamma", gamma.to_string())]
            }
            UnaryFn::HardSigmoid { alpha, beta } => {
                vec![("alpha", alpha.to_string()), ("beta", beta.to_string())]
            }
            UnaryFn::Shrink { bias, lambd } => {
                vec![("bias", bias.to_string()), ("lambd", lambd.to_string())]
            }
            UnaryFn::Gelu { tanh } => vec![(
                "approximate",
                if tanh { "tanh" } else { "none" }.to_string(),
            )],
            _ => vec![],
        }
    }

    /// Which input dtypes the function accepts.
    pub(super) fn accepts(self, d: DType) -> bool {
        match self {
            UnaryFn::Abs | UnaryFn::Neg | UnaryFn::Sign | UnaryFn::Relu => {
                d.is_float() || d.is_int()
            }
            UnaryFn::Not => d == DType::Bool,
            UnaryFn::BitwiseNot => d.is_int(),
            UnaryFn::Shrink { .. } => d.is_float() || d.is_int(),
            _ => d.is_float(),
        }
    }

    /// The float function, in f64.
    pub(super) fn apply(self, x: f64) -> f64 {
        match self {
            UnaryFn::Abs => x.abs(),
            UnaryFn::Neg => -x,
            UnaryFn::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x // keeps 0, -0 and NaN
                }
            }
            // NaN stays NaN, like NumPy's maximum.
            UnaryFn::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnaryFn::Floor => x.floor(),
            UnaryFn::Ceil => x.ceil(),
            UnaryFn::Round => x.round_ties_even(),
            UnaryFn::Sqrt => x.sqrt(),
            UnaryFn::Reciprocal => 1.0 / x,
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => x.ln(),
            UnaryFn::Erf => libm::erf(x),
            UnaryFn::Sin => x.sin(),
            UnaryFn::Cos => x.cos(),
            UnaryFn::Tan => x.tan(),
            UnaryFn::Asin => x.asin(),
            UnaryFn::Acos => x.acos(),
            UnaryFn::Atan => x.atan(),
            UnaryFn::Sinh => x.sinh(),
            UnaryFn::Cosh => x.cosh(),
            UnaryFn::Asinh => x.asinh(),
            UnaryFn::Acosh => x.acosh(),
            UnaryFn::Atanh => x.atanh(),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::Sigmoid => sigmoid(x),
            UnaryFn::Softplus => softplus(x),
            UnaryFn::Softsign => x / (1.0 + x.abs()),
            UnaryFn::Mish => x * softplus(x).tanh(),
            UnaryFn::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryFn::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            UnaryFn::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x.exp_m1()
                }
            }
            UnaryFn::Celu { alpha } => {
                let a = alpha as f64;
                x.max(0.0) + (a * (x / a).exp_m1()).min(0.0)
            }
            UnaryFn::Selu { alpha, gamma } => {
                let y = if x > 0.0 {
                    x
                } else {
                    alpha as f64 * x.exp_m1()
                };
                gamma as f64 * y
            }
            UnaryFn::HardSigmoid { alpha, beta } => {
                (alpha as f64 * x + beta as f64).clamp(0.0, 1.0)
            }
            UnaryFn::ThresholdedRelu { alpha } => {
                if x > alpha as f64 {
                    x
                } else {
                    0.0
                }
            }
            UnaryFn::Shrink { bias, lambd } => {
                let (b, l) = (bias as f64, lambd as f64);
                if x < -l {
                    x + b
                } else if x > l {
                    x - b
                } else {
                    0.0
                }
            }
            UnaryFn::Gelu { tanh: false } => {
                0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
            }
            UnaryFn::Gelu { tanh: true } => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryFn::Swish { alpha } => x * sigmoid(alpha as f64 * x),
            // Handled before reaching here (bool or integer results).
            UnaryFn::Not | UnaryFn::BitwiseNot | UnaryFn::IsNaN | UnaryFn::IsInf { .. } => x,
        }
    }

    pub(super) fn apply_int<T: Int>(self, x: T) -> T {
        match self {
            UnaryFn::Abs => x.wabs(),
            UnaryFn::Neg => x.wneg(),
            UnaryFn::Sign => {
                if x > T::ZERO {
                    T::ONE
                } else if x < T::ZERO {
                    T::ONE.wneg()
                } else {
                    T::ZERO
                }
            }
            UnaryFn::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            UnaryFn::BitwiseNot => x.bnot(),
            // Shrink on integers follows the float formula with truncation.
            other => T::from_f64(other.apply(x.to_f64())),
        }
    }
}

/// The logistic function, computed without overflow for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    // log(1 + e^x) without overflow.
    if x > 30.0 { x } else { x.exp().ln_1p() }
}

fn unary_float<T: Float>(v: &[T], f: UnaryFn) -> Data {
    T::wrap(v.iter().map(|&x| T::from_f(f.apply(x.to_f()))).collect())
}

/// Evaluates a unary function.
pub(super) fn eval_unary(f: UnaryFn, x: &Tensor) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let data = match f {
        UnaryFn::Not => Data::Bool(x.as_slice::<bool>()?.iter().map(|b| !b).collect()),
        UnaryFn::IsNaN => Data::Bool(x.to_f64_vec().iter().map(|v| v.is_nan()).collect()),
        UnaryFn::IsInf { negative, positive } => Data::Bool(
            x.to_f64_vec()
                .iter()
                .map(|v| (positive && *v == f64::INFINITY) || (negative && *v == f64::NEG_INFINITY))
                .collect(),
        ),
        _ => dispatch_float!(x.data(), v, T => unary_float::<T>(v, f), else {
            dispatch_int!(x.data(), v, T => T::wrap(v.iter().map(|&e| f.apply_int(e)).collect()),
                else return Err(Error::Type(format!("{} on {}", f.name(), x.dtype()))))
        }),
    };
    Tensor::new(shape, data)
}

/// A unary function's output type.
pub(super) fn infer_unary(f: UnaryFn, inputs: &[Option<InferInput<'_>>]) -> Result<TensorType> {
    check_arity(inputs, 1, 1)?;
    let x = req(inputs, 0, "X")?.ty;
    if !f.accepts(x.dtype) {
        return Err(Error::Type(format!(
            "{} does not accept {}",
            f.name(),
            x.dtype
        )));
    }
    let dtype = match f {
        UnaryFn::IsNaN | UnaryFn::IsInf { .. } => DType::Bool,
        _ => x.dtype,
    };
    Ok(TensorType::new(dtype, x.shape.clone()))
}
