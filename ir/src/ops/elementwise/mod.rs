//! Element-wise ops: unary math and activations, broadcasting binary
//! arithmetic, comparisons and logic, the variadic Min/Max/Sum/Mean, `Where`,
//! `Clip`, `PRelu`, `Cast`/`CastLike` and the NaN/Inf tests.
//!
//! Floats compute in `f64` and round once to the tensor's type, so `f16`/`bf16`
//! round per op like NumPy; integers use wrapping C arithmetic.
//!
//! One file per group of ops holds its functions' kernels, shape rule
//! (`infer_*`) and evaluation (`eval_*`): [`unary`], [`binary`], [`variadic`]
//! and [`select`] (Where, Clip, PRelu); [`epilogue`] holds the activations a
//! fused op applies. This file keeps the closed [`Elementwise`] enum, the
//! parser and the exhaustive dispatch of [`OpDef`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, in_family, opt, req};
use crate::shape::broadcast_shapes;
use crate::tensor::Tensor;

mod binary;
mod epilogue;
mod select;
mod unary;
mod variadic;

pub use binary::{BinaryFn, broadcast_map};
pub use epilogue::Epilogue;
pub use unary::{UnaryFn, sigmoid};
pub use variadic::VariadicFn;

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
        in_family(ctx, Self::ONNX_OPS).then(|| Self::parse_known(ctx))
    }

    fn parse_known(ctx: &ParseCtx<'_>) -> Result<Elementwise> {
        let a = ctx.attrs;
        use Elementwise as E;
        Ok(match ctx.op_type {
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
            "Abs" => E::Unary(UnaryFn::Abs),
            "Neg" => E::Unary(UnaryFn::Neg),
            "Sign" => E::Unary(UnaryFn::Sign),
            "Relu" => E::Unary(UnaryFn::Relu),
            "Floor" => E::Unary(UnaryFn::Floor),
            "Ceil" => E::Unary(UnaryFn::Ceil),
            "Round" => E::Unary(UnaryFn::Round),
            "Sqrt" => E::Unary(UnaryFn::Sqrt),
            "Reciprocal" => E::Unary(UnaryFn::Reciprocal),
            "Exp" => E::Unary(UnaryFn::Exp),
            "Log" => E::Unary(UnaryFn::Log),
            "Erf" => E::Unary(UnaryFn::Erf),
            "Sin" => E::Unary(UnaryFn::Sin),
            "Cos" => E::Unary(UnaryFn::Cos),
            "Tan" => E::Unary(UnaryFn::Tan),
            "Asin" => E::Unary(UnaryFn::Asin),
            "Acos" => E::Unary(UnaryFn::Acos),
            "Atan" => E::Unary(UnaryFn::Atan),
            "Sinh" => E::Unary(UnaryFn::Sinh),
            "Cosh" => E::Unary(UnaryFn::Cosh),
            "Asinh" => E::Unary(UnaryFn::Asinh),
            "Acosh" => E::Unary(UnaryFn::Acosh),
            "Atanh" => E::Unary(UnaryFn::Atanh),
            "Tanh" => E::Unary(UnaryFn::Tanh),
            "Sigmoid" => E::Unary(UnaryFn::Sigmoid),
            "Softplus" => E::Unary(UnaryFn::Softplus),
            "Softsign" => E::Unary(UnaryFn::Softsign),
            "Mish" => E::Unary(UnaryFn::Mish),
            "HardSwish" => E::Unary(UnaryFn::HardSwish),
            "Not" => E::Unary(UnaryFn::Not),
            "BitwiseNot" => E::Unary(UnaryFn::BitwiseNot),
            "IsNaN" => E::Unary(UnaryFn::IsNaN),
            "Add" => E::Binary(BinaryFn::Add),
            "Sub" => E::Binary(BinaryFn::Sub),
            "Mul" => E::Binary(BinaryFn::Mul),
            "Div" => E::Binary(BinaryFn::Div),
            "Pow" => E::Binary(BinaryFn::Pow),
            "Equal" => E::Binary(BinaryFn::Equal),
            "Less" => E::Binary(BinaryFn::Less),
            "LessOrEqual" => E::Binary(BinaryFn::LessOrEqual),
            "Greater" => E::Binary(BinaryFn::Greater),
            "GreaterOrEqual" => E::Binary(BinaryFn::GreaterOrEqual),
            "And" => E::Binary(BinaryFn::And),
            "Or" => E::Binary(BinaryFn::Or),
            "Xor" => E::Binary(BinaryFn::Xor),
            "BitwiseAnd" => E::Binary(BinaryFn::BitwiseAnd),
            "BitwiseOr" => E::Binary(BinaryFn::BitwiseOr),
            "BitwiseXor" => E::Binary(BinaryFn::BitwiseXor),
            "Min" => E::Variadic(VariadicFn::Min),
            "Max" => E::Variadic(VariadicFn::Max),
            "Sum" => E::Variadic(VariadicFn::Sum),
            "Mean" => E::Variadic(VariadicFn::Mean),
            "Where" => E::Where,
            "Clip" => E::Clip {
                min: None,
                max: None,
            },
            "PRelu" => E::PRelu,
            "CastLike" => E::CastLike,
            other => {
                return Err(Error::Unsupported(format!(
                    "op {other} is not in the elementwise family"
                )));
            }
        })
    }
}

/// The broadcast shape of the operand types.
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
        let out = match self {
            Elementwise::Unary(f) => unary::infer_unary(*f, inputs)?,
            Elementwise::Binary(f) => binary::infer_binary(*f, inputs)?,
            Elementwise::Variadic(f) => variadic::infer_variadic(*f, inputs)?,
            Elementwise::Where => select::infer_where(inputs)?,
            Elementwise::Clip { .. } => select::infer_clip(inputs)?,
            Elementwise::PRelu => select::infer_prelu(inputs)?,
            Elementwise::Cast { to } => {
                check_arity(inputs, 1, 1)?;
                TensorType::new(*to, req(inputs, 0, "input")?.ty.shape.clone())
            }
            Elementwise::CastLike => {
                check_arity(inputs, 2, 2)?;
                let like = req(inputs, 1, "target_type")?.ty;
                TensorType::new(like.dtype, req(inputs, 0, "input")?.ty.shape.clone())
            }
        };
        Ok(vec![out])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let out = match self {
            Elementwise::Unary(f) => unary::eval_unary(*f, req(inputs, 0, "X")?)?,
            Elementwise::Binary(f) => {
                binary::eval_binary(*f, req(inputs, 0, "A")?, req(inputs, 1, "B")?)?
            }
            Elementwise::Variadic(f) => {
                let xs: Vec<&Tensor> = (0..inputs.len())
                    .map(|i| req(inputs, i, "data"))
                    .collect::<Result<_>>()?;
                variadic::eval_variadic(*f, &xs)?
            }
            Elementwise::Where => select::eval_where(inputs)?,
            Elementwise::Clip { min, max } => select::eval_clip(
                req(inputs, 0, "input")?,
                opt(inputs, 1),
                opt(inputs, 2),
                *min,
                *max,
            )?,
            Elementwise::PRelu => select::eval_prelu(inputs)?,
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
    fn integer_division_by_zero_is_zero() {
        // docs/semantics.md: ONNX leaves it undefined; smelt gives 0 on
        // both sides, and `MIN / -1` wraps.
        let a = Tensor::from_vec(vec![3], vec![1i64, -7, i64::MIN]).unwrap();
        let b = Tensor::from_vec(vec![3], vec![0i64, 0, -1]).unwrap();
        let div = Tensor::from_vec(vec![3], vec![0i64, 0, i64::MIN]).unwrap();
        check(Elementwise::Binary(BinaryFn::Div), &[&a, &b], &div);
        let zeros = Tensor::from_vec(vec![3], vec![0i64; 3]).unwrap();
        for fmod in [false, true] {
            check(
                Elementwise::Binary(BinaryFn::Mod { fmod }),
                &[&a, &b],
                &zeros,
            );
        }
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
