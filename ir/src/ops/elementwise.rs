//! Element-wise ops: unary math and activations, broadcasting binary
//! arithmetic, comparisons and logic, the variadic Min/Max/Sum/Mean, `Where`,
//! `Clip`, `PRelu`, `Cast`/`CastLike` and the NaN/Inf tests.
//!
//! Floats compute in `f64` and round once to the tensor's type, so `f16`/`bf16`
//! round per op like NumPy; integers use wrapping C arithmetic.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, opt, req};
use crate::shape::{broadcast_index_map, broadcast_shapes, numel};
use crate::tensor::{Data, Elem, Float, Int, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};

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

/// An activation applied to the result of a convolution or matrix product
/// as it is stored (an *epilogue*, see [`crate::ops::fused`]). Its meaning is
/// the element-wise op it stands for, evaluated by that op's code: there is
/// one definition of each activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// A unary activation (`Relu`, `Sigmoid`, `HardSwish`, `Gelu`, `Swish`, …).
    Unary(UnaryFn),
    /// `Clip` with constant bounds (`Relu6` is `Clip(0, 6)`).
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl Epilogue {
    /// The element-wise op the epilogue applies.
    pub fn as_op(self) -> Elementwise {
        match self {
            Epilogue::Unary(f) => Elementwise::Unary(f),
            Epilogue::Clip { min, max } => Elementwise::Clip {
                min: Some(min),
                max: Some(max),
            },
        }
    }

    /// The activations a fused op may carry (the backends apply each of
    /// them in a GEMM store): Relu, Clip, Sigmoid, Tanh, HardSwish, Gelu and
    /// Swish (SiLU).
    pub fn is_supported(self) -> bool {
        match self {
            Epilogue::Clip { .. } => true,
            Epilogue::Unary(f) => matches!(
                f,
                UnaryFn::Relu
                    | UnaryFn::Sigmoid
                    | UnaryFn::Tanh
                    | UnaryFn::HardSwish
                    | UnaryFn::Gelu { .. }
                    | UnaryFn::Swish { .. }
            ),
        }
    }

    /// Applies the epilogue to `x`, exactly as the separate op would.
    pub fn eval(self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.as_op().eval(&[Some(x)])?;
        out.pop()
            .ok_or_else(|| Error::Eval("activation produced no result".into()))
    }

    /// The printed form: the op's name and attributes, `Clip(min=0,max=6)`.
    pub fn text(self) -> String {
        let attrs = match self {
            Epilogue::Unary(f) => f.attrs(),
            Epilogue::Clip { min, max } => vec![("min", min.to_string()), ("max", max.to_string())],
        };
        let name = self.as_op().name();
        if attrs.is_empty() {
            return name.to_string();
        }
        let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}({})", a.join(","))
    }
}

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

/// A variadic broadcasting reduction over its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VariadicFn {
    Min,
    Max,
    Sum,
    Mean,
}

/// The element-wise family.
#[derive(Clone, Debug, PartialEq)]
pub enum Elementwise {
    /// `y = f(x)`.
    Unary(UnaryFn),
    /// `c = f(a, b)` with NumPy broadcasting.
    Binary(BinaryFn),
    /// `y = f(x0, x1, …)` with NumPy broadcasting.
    Variadic(VariadicFn),
    /// `Where(cond, x, y)`.
    Where,
    /// `Clip(x, min?, max?)`; opsets before 11 give the bounds as attributes.
    Clip {
        /// Lower bound from the attribute (opset < 11).
        min: Option<f32>,
        /// Upper bound from the attribute (opset < 11).
        max: Option<f32>,
    },
    /// `PRelu(x, slope)`: `x < 0 ? slope * x : x`, slope broadcast to x.
    PRelu,
    /// `Cast` to a dtype.
    Cast {
        /// Target dtype.
        to: DType,
    },
    /// `CastLike(x, like)`: cast to the dtype of `like`.
    CastLike,
}

impl Elementwise {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "Abs",
        "Neg",
        "Sign",
        "Relu",
        "Floor",
        "Ceil",
        "Round",
        "Sqrt",
        "Reciprocal",
        "Exp",
        "Log",
        "Erf",
        "Sin",
        "Cos",
        "Tan",
        "Asin",
        "Acos",
        "Atan",
        "Sinh",
        "Cosh",
        "Asinh",
        "Acosh",
        "Atanh",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "Softsign",
        "Mish",
        "HardSwish",
        "Not",
        "BitwiseNot",
        "IsNaN",
        "IsInf",
        "LeakyRelu",
        "Elu",
        "Celu",
        "Selu",
        "HardSigmoid",
        "ThresholdedRelu",
        "Shrink",
        "Gelu",
        "Swish",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Mod",
        "Equal",
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "And",
        "Or",
        "Xor",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "BitShift",
        "Min",
        "Max",
        "Sum",
        "Mean",
        "Where",
        "Clip",
        "PRelu",
        "Cast",
        "CastLike",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Elementwise>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        let a = ctx.attrs;
        use Elementwise as E;
        let u = |f| Some(Ok(E::Unary(f)));
        let b = |f| Some(Ok(E::Binary(f)));
        let v = |f| Some(Ok(E::Variadic(f)));
        let r = (|| -> Result<Option<Elementwise>> {
            Ok(Some(match ctx.op_type {
                "IsInf" => E::Unary(UnaryFn::IsInf {
                    negative: a.int("detect_negative", 1)? != 0,
                    positive: a.int("detect_positive", 1)? != 0,
                }),
                "LeakyRelu" => E::Unary(UnaryFn::LeakyRelu {
                    alpha: a.float("alpha", 0.01)?,
                }),
                "Elu" => E::Unary(UnaryFn::Elu {
                    alpha: a.float("alpha", 1.0)?,
                }),
                "Celu" => E::Unary(UnaryFn::Celu {
                    alpha: a.float("alpha", 1.0)?,
                }),
                "Selu" => E::Unary(UnaryFn::Selu {
                    alpha: a.float("alpha", 1.673_263_2)?,
                    gamma: a.float("gamma", 1.050_701)?,
                }),
                "HardSigmoid" => E::Unary(UnaryFn::HardSigmoid {
                    alpha: a.float("alpha", 0.2)?,
                    beta: a.float("beta", 0.5)?,
                }),
                "ThresholdedRelu" => E::Unary(UnaryFn::ThresholdedRelu {
                    alpha: a.float("alpha", 1.0)?,
                }),
                "Shrink" => E::Unary(UnaryFn::Shrink {
                    bias: a.float("bias", 0.0)?,
                    lambd: a.float("lambd", 0.5)?,
                }),
                "Gelu" => {
                    let approx = a.string("approximate", "none")?;
                    match approx.as_str() {
                        "none" => E::Unary(UnaryFn::Gelu { tanh: false }),
                        "tanh" => E::Unary(UnaryFn::Gelu { tanh: true }),
                        other => {
                            return Err(Error::attr(
                                "approximate",
                                format!("'{other}' is not 'none' or 'tanh'"),
                            ));
                        }
                    }
                }
                "Swish" => E::Unary(UnaryFn::Swish {
                    alpha: a.float("alpha", 1.0)?,
                }),
                "Mod" => E::Binary(BinaryFn::Mod {
                    fmod: a.int("fmod", 0)? != 0,
                }),
                "BitShift" => {
                    let dir = a
                        .string_opt("direction")?
                        .ok_or_else(|| Error::attr("direction", "is required"))?;
                    match dir.as_str() {
                        "LEFT" => E::Binary(BinaryFn::BitShift { left: true }),
                        "RIGHT" => E::Binary(BinaryFn::BitShift { left: false }),
                        other => {
                            return Err(Error::attr(
                                "direction",
                                format!("'{other}' is not LEFT or RIGHT"),
                            ));
                        }
                    }
                }
                "Clip" if ctx.opset < 11 => E::Clip {
                    min: a.float_opt("min")?,
                    max: a.float_opt("max")?,
                },
                "Cast" => E::Cast {
                    to: DType::from_onnx_code(a.int_req("to")? as i32)?,
                },
                _ => return Ok(None),
            }))
        })();
        match r {
            Ok(Some(op)) => return Some(Ok(op)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        match ctx.op_type {
            "Abs" => u(UnaryFn::Abs),
            "Neg" => u(UnaryFn::Neg),
            "Sign" => u(UnaryFn::Sign),
            "Relu" => u(UnaryFn::Relu),
            "Floor" => u(UnaryFn::Floor),
            "Ceil" => u(UnaryFn::Ceil),
            "Round" => u(UnaryFn::Round),
            "Sqrt" => u(UnaryFn::Sqrt),
            "Reciprocal" => u(UnaryFn::Reciprocal),
            "Exp" => u(UnaryFn::Exp),
            "Log" => u(UnaryFn::Log),
            "Erf" => u(UnaryFn::Erf),
            "Sin" => u(UnaryFn::Sin),
            "Cos" => u(UnaryFn::Cos),
            "Tan" => u(UnaryFn::Tan),
            "Asin" => u(UnaryFn::Asin),
            "Acos" => u(UnaryFn::Acos),
            "Atan" => u(UnaryFn::Atan),
            "Sinh" => u(UnaryFn::Sinh),
            "Cosh" => u(UnaryFn::Cosh),
            "Asinh" => u(UnaryFn::Asinh),
            "Acosh" => u(UnaryFn::Acosh),
            "Atanh" => u(UnaryFn::Atanh),
            "Tanh" => u(UnaryFn::Tanh),
            "Sigmoid" => u(UnaryFn::Sigmoid),
            "Softplus" => u(UnaryFn::Softplus),
            "Softsign" => u(UnaryFn::Softsign),
            "Mish" => u(UnaryFn::Mish),
            "HardSwish" => u(UnaryFn::HardSwish),
            "Not" => u(UnaryFn::Not),
            "BitwiseNot" => u(UnaryFn::BitwiseNot),
            "IsNaN" => u(UnaryFn::IsNaN),
            "Add" => b(BinaryFn::Add),
            "Sub" => b(BinaryFn::Sub),
            "Mul" => b(BinaryFn::Mul),
            "Div" => b(BinaryFn::Div),
            "Pow" => b(BinaryFn::Pow),
            "Equal" => b(BinaryFn::Equal),
            "Less" => b(BinaryFn::Less),
            "LessOrEqual" => b(BinaryFn::LessOrEqual),
            "Greater" => b(BinaryFn::Greater),
            "GreaterOrEqual" => b(BinaryFn::GreaterOrEqual),
            "And" => b(BinaryFn::And),
            "Or" => b(BinaryFn::Or),
            "Xor" => b(BinaryFn::Xor),
            "BitwiseAnd" => b(BinaryFn::BitwiseAnd),
            "BitwiseOr" => b(BinaryFn::BitwiseOr),
            "BitwiseXor" => b(BinaryFn::BitwiseXor),
            "Min" => v(VariadicFn::Min),
            "Max" => v(VariadicFn::Max),
            "Sum" => v(VariadicFn::Sum),
            "Mean" => v(VariadicFn::Mean),
            "Where" => Some(Ok(E::Where)),
            "Clip" => Some(Ok(E::Clip {
                min: None,
                max: None,
            })),
            "PRelu" => Some(Ok(E::PRelu)),
            "CastLike" => Some(Ok(E::CastLike)),
            _ => None,
        }
    }
}

impl UnaryFn {
    fn name(self) -> &'static str {
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

    fn attrs(self) -> Vec<(&'static str, String)> {
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
    fn accepts(self, d: DType) -> bool {
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
    fn apply(self, x: f64) -> f64 {
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

    fn apply_int<T: Int>(self, x: T) -> T {
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

impl BinaryFn {
    fn name(self) -> &'static str {
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

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryFn::Equal
                | BinaryFn::Less
                | BinaryFn::LessOrEqual
                | BinaryFn::Greater
                | BinaryFn::GreaterOrEqual
        )
    }

    fn out_dtype(self, a: DType, b: DType) -> Result<DType> {
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

    fn apply_f(self, a: f64, b: f64) -> f64 {
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

    fn compare(self, o: Option<std::cmp::Ordering>) -> bool {
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

    fn apply_int<T: Int>(self, a: T, b: T) -> Result<T> {
        let div0 = || Error::Eval(format!("integer division by zero in {}", self.name()));
        Ok(match self {
            BinaryFn::Add => a.wadd(b),
            BinaryFn::Sub => a.wsub(b),
            BinaryFn::Mul => a.wmul(b),
            BinaryFn::Div => a.cdiv(b).ok_or_else(div0)?,
            BinaryFn::Mod { fmod: true } => a.crem(b).ok_or_else(div0)?,
            BinaryFn::Mod { fmod: false } => {
                let r = a.crem(b).ok_or_else(div0)?;
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

fn unary_float<T: Float>(v: &[T], f: UnaryFn) -> Data {
    T::wrap(v.iter().map(|&x| T::from_f(f.apply(x.to_f()))).collect())
}

fn eval_unary(f: UnaryFn, x: &Tensor) -> Result<Tensor> {
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

fn eval_binary(f: BinaryFn, a: &Tensor, b: &Tensor) -> Result<Tensor> {
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

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn eval_variadic(f: VariadicFn, xs: &[&Tensor]) -> Result<Tensor> {
    let first = xs
        .first()
        .ok_or_else(|| Error::Shape("needs at least one input".into()))?;
    let mut acc = (*first).clone();
    for x in &xs[1..] {
        if x.dtype() != acc.dtype() {
            return Err(Error::Type(format!(
                "operands have different dtypes {} and {}",
                acc.dtype(),
                x.dtype()
            )));
        }
        acc = dispatch_float!(acc.data(), _v, T => broadcast_map::<T, T, T>(&acc, x, |a, b| {
            let (a, b) = (a.to_f(), b.to_f());
            Ok(T::from_f(match f {
                VariadicFn::Min => nan_min(a, b),
                VariadicFn::Max => nan_max(a, b),
                VariadicFn::Sum | VariadicFn::Mean => a + b,
            }))
        })?, else dispatch_int!(acc.data(), _v, T => broadcast_map::<T, T, T>(&acc, x, |a, b| Ok(match f {
            VariadicFn::Min => a.min(b),
            VariadicFn::Max => a.max(b),
            VariadicFn::Sum | VariadicFn::Mean => a.wadd(b),
        }))?, else return Err(Error::Type(format!("{f:?} on {}", acc.dtype())))));
    }
    if f == VariadicFn::Mean {
        let n = xs.len() as f64;
        acc = dispatch_float!(acc.data(), v, T => {
            Tensor::from_vec(acc.shape().to_vec(), v.iter().map(|&x| T::from_f(x.to_f() / n)).collect::<Vec<T>>())?
        }, else return Err(Error::Type(format!("Mean on {}", acc.dtype()))));
    }
    Ok(acc)
}

fn eval_clip(
    x: &Tensor,
    lo: Option<&Tensor>,
    hi: Option<&Tensor>,
    alo: Option<f32>,
    ahi: Option<f32>,
) -> Result<Tensor> {
    let bound = |t: Option<&Tensor>, a: Option<f32>| -> Result<Option<f64>> {
        match (t, a) {
            (Some(t), _) => {
                if t.len() != 1 {
                    return Err(Error::Shape(format!(
                        "Clip bounds must be scalars, got shape {:?}",
                        t.shape()
                    )));
                }
                if t.dtype() != x.dtype() {
                    return Err(Error::Type(format!(
                        "Clip bound is {} but input is {}",
                        t.dtype(),
                        x.dtype()
                    )));
                }
                Ok(Some(t.to_f64_vec()[0]))
            }
            (None, a) => Ok(a.map(|v| v as f64)),
        }
    };
    let (lo, hi) = (bound(lo, alo)?, bound(hi, ahi)?);
    let data = dispatch_float!(x.data(), v, T => T::wrap(v.iter().map(|&e| {
        let mut y = e.to_f();
        if let Some(l) = lo && y < l { y = l }
        if let Some(h) = hi && y > h { y = h }
        T::from_f(y)
    }).collect()), else dispatch_int!(x.data(), v, T => {
        let (l, h) = (lo.map(T::from_f64), hi.map(T::from_f64));
        T::wrap(v.iter().map(|&e| {
            let mut y = e;
            if let Some(l) = l && y < l { y = l }
            if let Some(h) = h && y > h { y = h }
            y
        }).collect())
    }, else return Err(Error::Type(format!("Clip on {}", x.dtype())))));
    Tensor::new(x.shape().to_vec(), data)
}

fn infer_broadcast(tys: &[&TensorType]) -> Result<crate::shape::Shape> {
    let shapes: Vec<&[usize]> = tys.iter().map(|t| t.shape.as_slice()).collect();
    broadcast_shapes(&shapes)
}

impl OpDef for Elementwise {
    fn name(&self) -> &'static str {
        match self {
            Elementwise::Unary(f) => f.name(),
            Elementwise::Binary(f) => f.name(),
            Elementwise::Variadic(VariadicFn::Min) => "Min",
            Elementwise::Variadic(VariadicFn::Max) => "Max",
            Elementwise::Variadic(VariadicFn::Sum) => "Sum",
            Elementwise::Variadic(VariadicFn::Mean) => "Mean",
            Elementwise::Where => "Where",
            Elementwise::Clip { .. } => "Clip",
            Elementwise::PRelu => "PRelu",
            Elementwise::Cast { .. } => "Cast",
            Elementwise::CastLike => "CastLike",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Elementwise::Unary(f) => f.attrs(),
            Elementwise::Binary(BinaryFn::Mod { fmod }) => {
                vec![("fmod", (*fmod as u8).to_string())]
            }
            Elementwise::Binary(BinaryFn::BitShift { left }) => {
                vec![(
                    "direction",
                    if *left { "LEFT" } else { "RIGHT" }.to_string(),
                )]
            }
            Elementwise::Clip { min, max } => {
                let mut v = vec![];
                if let Some(m) = min {
                    v.push(("min", m.to_string()));
                }
                if let Some(m) = max {
                    v.push(("max", m.to_string()));
                }
                v
            }
            Elementwise::Cast { to } => vec![("to", to.name().to_string())],
            Elementwise::Binary(_)
            | Elementwise::Variadic(_)
            | Elementwise::Where
            | Elementwise::PRelu
            | Elementwise::CastLike => vec![],
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        vec![]
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let ty = |i: usize, what: &str| req(inputs, i, what).map(|x| x.ty);
        let out = match self {
            Elementwise::Unary(f) => {
                check_arity(inputs, 1, 1)?;
                let x = ty(0, "X")?;
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
                TensorType::new(dtype, x.shape.clone())
            }
            Elementwise::Binary(f) => {
                check_arity(inputs, 2, 2)?;
                let (a, b) = (ty(0, "A")?, ty(1, "B")?);
                TensorType::new(f.out_dtype(a.dtype, b.dtype)?, infer_broadcast(&[a, b])?)
            }
            Elementwise::Variadic(f) => {
                let tys: Vec<&TensorType> = (0..inputs.len())
                    .map(|i| ty(i, "data"))
                    .collect::<Result<_>>()?;
                let first = tys
                    .first()
                    .ok_or_else(|| Error::Shape("needs at least one input".into()))?;
                if let Some(t) = tys.iter().find(|t| t.dtype != first.dtype) {
                    return Err(Error::Type(format!(
                        "operands have different dtypes {} and {}",
                        first.dtype, t.dtype
                    )));
                }
                if first.dtype == DType::Bool || (*f == VariadicFn::Mean && !first.dtype.is_float())
                {
                    return Err(Error::Type(format!(
                        "{f:?} does not accept {}",
                        first.dtype
                    )));
                }
                TensorType::new(first.dtype, infer_broadcast(&tys)?)
            }
            Elementwise::Where => {
                check_arity(inputs, 3, 3)?;
                let (c, x, y) = (ty(0, "condition")?, ty(1, "X")?, ty(2, "Y")?);
                if c.dtype != DType::Bool {
                    return Err(Error::Type(format!(
                        "condition must be bool, got {}",
                        c.dtype
                    )));
                }
                if x.dtype != y.dtype {
                    return Err(Error::Type(format!(
                        "X is {} but Y is {}",
                        x.dtype, y.dtype
                    )));
                }
                TensorType::new(x.dtype, infer_broadcast(&[c, x, y])?)
            }
            Elementwise::Clip { .. } => {
                check_arity(inputs, 1, 3)?;
                let x = ty(0, "input")?;
                if !(x.dtype.is_float() || x.dtype.is_int()) {
                    return Err(Error::Type(format!("Clip does not accept {}", x.dtype)));
                }
                for i in 1..inputs.len() {
                    if let Some(b) = opt(inputs, i)
                        && (b.ty.dtype != x.dtype || numel(&b.ty.shape)? != 1)
                    {
                        {
                            return Err(Error::Type(format!(
                                "bound {i} must be a {} scalar, got {}",
                                x.dtype, b.ty
                            )));
                        }
                    }
                }
                x.clone()
            }
            Elementwise::PRelu => {
                check_arity(inputs, 2, 2)?;
                let (x, s) = (ty(0, "X")?, ty(1, "slope")?);
                if x.dtype != s.dtype || !(x.dtype.is_float() || x.dtype.is_int()) {
                    return Err(Error::Type(format!(
                        "PRelu on {} with slope {}",
                        x.dtype, s.dtype
                    )));
                }
                let shape = infer_broadcast(&[x, s])?;
                if shape != x.shape {
                    return Err(Error::Shape(format!(
                        "slope {:?} does not broadcast to X {:?}",
                        s.shape, x.shape
                    )));
                }
                x.clone()
            }
            Elementwise::Cast { to } => {
                check_arity(inputs, 1, 1)?;
                TensorType::new(*to, ty(0, "input")?.shape.clone())
            }
            Elementwise::CastLike => {
                check_arity(inputs, 2, 2)?;
                TensorType::new(ty(1, "target_type")?.dtype, ty(0, "input")?.shape.clone())
            }
        };
        Ok(vec![out])
    }

    // `a < T::ZERO` is instantiated for unsigned types too, where it is always false.
    #[allow(clippy::absurd_extreme_comparisons)]
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let out = match self {
            Elementwise::Unary(f) => eval_unary(*f, req(inputs, 0, "X")?)?,
            Elementwise::Binary(f) => eval_binary(*f, req(inputs, 0, "A")?, req(inputs, 1, "B")?)?,
            Elementwise::Variadic(f) => {
                let xs: Vec<&Tensor> = (0..inputs.len())
                    .map(|i| req(inputs, i, "data"))
                    .collect::<Result<_>>()?;
                eval_variadic(*f, &xs)?
            }
            Elementwise::Where => {
                let (c, x, y) = (
                    req(inputs, 0, "condition")?,
                    req(inputs, 1, "X")?,
                    req(inputs, 2, "Y")?,
                );
                let shape = broadcast_shapes(&[c.shape(), x.shape(), y.shape()])?;
                let cv = c.as_slice::<bool>()?;
                let (ic, ix, iy) = (
                    broadcast_index_map(c.shape(), &shape),
                    broadcast_index_map(x.shape(), &shape),
                    broadcast_index_map(y.shape(), &shape),
                );
                dispatch!(x.data(), xv, T => {
                    let yv = y.as_slice::<T>()?;
                    let out: Vec<T> = (0..ic.len()).map(|k| if cv[ic[k]] { xv[ix[k]] } else { yv[iy[k]] }).collect();
                    Tensor::from_vec(shape, out)?
                })
            }
            Elementwise::Clip { min, max } => eval_clip(
                req(inputs, 0, "input")?,
                opt(inputs, 1),
                opt(inputs, 2),
                *min,
                *max,
            )?,
            Elementwise::PRelu => {
                let (x, s) = (req(inputs, 0, "X")?, req(inputs, 1, "slope")?);
                dispatch_float!(x.data(), _v, T => broadcast_map::<T, T, T>(x, s, |a, b| {
                    Ok(if a.to_f() < 0.0 { T::from_f(a.to_f() * b.to_f()) } else { a })
                })?, else dispatch_int!(x.data(), _v, T => broadcast_map::<T, T, T>(x, s, |a, b| {
                    Ok(if a < T::ZERO { a.wmul(b) } else { a })
                })?, else return Err(Error::Type(format!("PRelu on {}", x.dtype())))))
            }
            Elementwise::Cast { to } => req(inputs, 0, "input")?.cast(*to),
            Elementwise::CastLike => {
                req(inputs, 0, "input")?.cast(req(inputs, 1, "target_type")?.dtype())
            }
        };
        Ok(vec![out])
    }

    fn macs(&self, _inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        // One operation per output element (per operand beyond the first for
        // the variadic ops); transcendental costs are a backend concern.
        outputs.iter().map(|t| t.numel().unwrap_or(0) as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn check(op: Elementwise, inputs: &[&Tensor], want: &Tensor) {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        let got = op.eval(&ins).unwrap().remove(0);
        assert_eq!(&got, want, "{op:?}");
    }

    #[test]
    fn broadcasting_add() {
        check(
            Elementwise::Binary(BinaryFn::Add),
            &[&t(&[2, 2], &[1., 2., 3., 4.]), &t(&[2], &[10., 20.])],
            &t(&[2, 2], &[11., 22., 13., 24.]),
        );
    }

    #[test]
    fn python_mod_sign() {
        let a = Tensor::from_vec(vec![4], vec![-4i32, 7, 5, 4]).unwrap();
        let b = Tensor::from_vec(vec![4], vec![3i32, -3, 8, -8]).unwrap();
        let want = Tensor::from_vec(vec![4], vec![2i32, -2, 5, -4]).unwrap();
        check(
            Elementwise::Binary(BinaryFn::Mod { fmod: false }),
            &[&a, &b],
            &want,
        );
    }

    #[test]
    fn integer_division_by_zero_is_an_error() {
        let a = Tensor::from_vec(vec![1], vec![1i64]).unwrap();
        let b = Tensor::from_vec(vec![1], vec![0i64]).unwrap();
        assert!(
            Elementwise::Binary(BinaryFn::Div)
                .eval(&[Some(&a), Some(&b)])
                .is_err()
        );
    }

    #[test]
    fn max_propagates_nan() {
        let op = Elementwise::Variadic(VariadicFn::Max);
        let (a, b) = (t(&[2], &[f32::NAN, 1.]), t(&[2], &[0., 2.]));
        let got = op.eval(&[Some(&a), Some(&b)]).unwrap().remove(0);
        let v = got.as_slice::<f32>().unwrap();
        assert!(v[0].is_nan());
        assert_eq!(v[1], 2.);
    }

    #[test]
    fn round_half_to_even() {
        check(
            Elementwise::Unary(UnaryFn::Round),
            &[&t(&[3], &[0.5, 1.5, -2.5])],
            &t(&[3], &[0., 2., -2.]),
        );
    }
}
