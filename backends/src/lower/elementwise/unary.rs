//! The scalar formulas of the unary element-wise functions, float and
//! integer.

use smelt_ir::ops::elementwise::UnaryFn;

use super::NodeResult1;
use crate::kernel::build::{bin, cast, cmp, f, mul, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};
use crate::mathexp;

fn fconst(v: f64, ty: Scalar) -> Expr {
    f(v, ty)
}

/// The logistic function of `x`: 1/(1+e^-x) for x ≥ 0, e^x/(1+e^x) below
/// (the interpreter's form), so e^-x never overflows and very negative x
/// give e^x's subnormals rather than 0.
fn sigmoid(x: Expr, ty: Scalar, p: &mut Program, pre: &mut Vec<Stmt>) -> Expr {
    let c = |v: f64| fconst(v, ty);
    let v = mathexp::bind(p, x, pre);
    let t = un(UnOp::Exp, un(UnOp::Neg, un(UnOp::Abs, v.clone())));
    let t = mathexp::bind(p, t, pre);
    let r = bin(BinOp::Div, c(1.0), bin(BinOp::Add, c(1.0), t.clone()));
    let l = bin(BinOp::Div, t.clone(), bin(BinOp::Add, c(1.0), t));
    select(cmp(CmpOp::Lt, v, c(0.0)), l, r)
}

/// The scalar formula of a unary function of a float `x` of type `ty`
/// (`x` is a variable or constant, so it may be used more than once);
/// statements it needs go to `pre`. Long because it is a table: one arm per
/// unary function, each a formula of a few lines, matched exhaustively.
/// A half type is computed in `f32` (the expansions that build floats from
/// bits need a real float layout) and rounded once at the end.
pub(super) fn unary_float(
    u: UnaryFn,
    x: Expr,
    ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
    if ty.is_half() {
        let xf = mathexp::bind(p, cast(Scalar::F32, x), pre);
        let y = unary_float(u, xf, Scalar::F32, p, pre)?;
        // `IsNaN` and `IsInf` give bools, which stay.
        return Ok(if p.ty(&y) == Scalar::F32 {
            cast(ty, y)
        } else {
            y
        });
    }
    let c = |v: f64| fconst(v, ty);
    let zero = || c(0.0);
    let exp = |e: Expr| un(UnOp::Exp, e);
    Ok(match u {
        UnaryFn::Abs => un(UnOp::Abs, x),
        UnaryFn::Neg => un(UnOp::Neg, x),
        UnaryFn::Floor => un(UnOp::Floor, x),
        UnaryFn::Ceil => un(UnOp::Ceil, x),
        UnaryFn::Round => un(UnOp::Nearest, x),
        UnaryFn::Sqrt => un(UnOp::Sqrt, x),
        UnaryFn::Reciprocal => bin(BinOp::Div, c(1.0), x),
        UnaryFn::Exp => exp(x),
        UnaryFn::Log => un(UnOp::Log, x),
        UnaryFn::Erf => un(UnOp::Erf, x),
        UnaryFn::Tanh => un(UnOp::Tanh, x),
        UnaryFn::Sin => un(UnOp::Sin, x),
        UnaryFn::Cos => un(UnOp::Cos, x),
        // Max propagates NaN, as NumPy's maximum does.
        UnaryFn::Relu => bin(BinOp::Max, x, zero()),
        UnaryFn::Sigmoid => sigmoid(x, ty, p, pre),
        UnaryFn::Sign => select(
            cmp(CmpOp::Gt, x.clone(), zero()),
            c(1.0),
            select(cmp(CmpOp::Lt, x.clone(), zero()), c(-1.0), x),
        ),
        UnaryFn::LeakyRelu { alpha } => select(
            cmp(CmpOp::Ge, x.clone(), zero()),
            x.clone(),
            mul(c(alpha as f64), x),
        ),
        UnaryFn::Elu { alpha } => select(
            cmp(CmpOp::Ge, x.clone(), zero()),
            x.clone(),
            mul(c(alpha as f64), bin(BinOp::Sub, exp(x), c(1.0))),
        ),
        UnaryFn::Selu { alpha, gamma } => mul(
            c(gamma as f64),
            select(
                cmp(CmpOp::Gt, x.clone(), zero()),
                x.clone(),
                mul(c(alpha as f64), bin(BinOp::Sub, exp(x), c(1.0))),
            ),
        ),
        UnaryFn::HardSigmoid { alpha, beta } => bin(
            BinOp::Min,
            c(1.0),
            bin(
                BinOp::Max,
                zero(),
                bin(BinOp::Add, mul(c(alpha as f64), x), c(beta as f64)),
            ),
        ),
        UnaryFn::HardSwish => mul(
            x.clone(),
            bin(
                BinOp::Min,
                c(1.0),
                bin(
                    BinOp::Max,
                    zero(),
                    bin(BinOp::Add, mul(c(1.0 / 6.0), x), c(0.5)),
                ),
            ),
        ),
        UnaryFn::ThresholdedRelu { alpha } => {
            select(cmp(CmpOp::Gt, x.clone(), c(alpha as f64)), x, zero())
        }
        UnaryFn::Softsign => bin(
            BinOp::Div,
            x.clone(),
            bin(BinOp::Add, c(1.0), un(UnOp::Abs, x)),
        ),
        UnaryFn::Gelu { tanh: false } => mul(
            mul(c(0.5), x.clone()),
            bin(
                BinOp::Add,
                c(1.0),
                un(UnOp::Erf, mul(x, c(std::f64::consts::FRAC_1_SQRT_2))),
            ),
        ),
        UnaryFn::Gelu { tanh: true } => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let inner = mul(
                c(k),
                bin(
                    BinOp::Add,
                    x.clone(),
                    mul(c(0.044715), mul(x.clone(), mul(x.clone(), x.clone()))),
                ),
            );
            mul(
                mul(c(0.5), x),
                bin(BinOp::Add, c(1.0), un(UnOp::Tanh, inner)),
            )
        }
        UnaryFn::Swish { alpha } => mul(x.clone(), sigmoid(mul(c(alpha as f64), x), ty, p, pre)),
        UnaryFn::Tan => mathexp::tan(p, x, pre),
        UnaryFn::Asin => mathexp::asin(p, x, pre),
        UnaryFn::Acos => mathexp::acos(p, x, pre),
        UnaryFn::Atan => mathexp::atan(p, x, pre),
        UnaryFn::Sinh => mathexp::sinh_cosh(p, x, pre, false),
        UnaryFn::Cosh => mathexp::sinh_cosh(p, x, pre, true),
        UnaryFn::Asinh => mathexp::asinh(p, x, pre),
        UnaryFn::Acosh => mathexp::acosh(p, x, pre),
        UnaryFn::Atanh => mathexp::atanh(p, x, pre),
        // log(1 + eˣ), and x itself past 30 (where the interpreter switches).
        UnaryFn::Softplus => {
            let e = mathexp::exp_of(p, bin(BinOp::Min, x.clone(), c(30.0)), pre);
            let sp = mathexp::log1p(p, e, pre);
            select(cmp(CmpOp::Gt, x.clone(), c(30.0)), x, sp)
        }
        // x·tanh(log(1 + eˣ)) = x·n/(n + 2) with n = eˣ(eˣ + 2): no
        // cancellation anywhere, and x itself once tanh is 1.
        UnaryFn::Mish => {
            let e = mathexp::exp_of(p, bin(BinOp::Min, x.clone(), c(20.0)), pre);
            let e = mathexp::bind(p, e, pre);
            let n = mathexp::bind(p, mul(e.clone(), bin(BinOp::Add, e, c(2.0))), pre);
            let t = bin(BinOp::Div, n.clone(), bin(BinOp::Add, n, c(2.0)));
            select(cmp(CmpOp::Gt, x.clone(), c(20.0)), x.clone(), mul(x, t))
        }
        // max(0, x) + min(0, α·expm1(x/α)).
        UnaryFn::Celu { alpha } => {
            let a = alpha as f64;
            let em = mathexp::expm1(p, mul(x.clone(), c(1.0 / a)), pre);
            bin(
                BinOp::Add,
                bin(BinOp::Max, x, zero()),
                bin(BinOp::Min, mul(c(a), em), zero()),
            )
        }
        UnaryFn::Shrink { bias, lambd } => {
            let (b, l) = (bias as f64, lambd as f64);
            select(
                cmp(CmpOp::Lt, x.clone(), c(-l)),
                bin(BinOp::Add, x.clone(), c(b)),
                select(
                    cmp(CmpOp::Gt, x.clone(), c(l)),
                    bin(BinOp::Sub, x, c(b)),
                    zero(),
                ),
            )
        }
        UnaryFn::IsNaN => cmp(CmpOp::Ne, x.clone(), x),
        UnaryFn::IsInf { negative, positive } => {
            let mut v = Expr::I(0, Scalar::Bool);
            if positive {
                v = cmp(CmpOp::Eq, x.clone(), c(f64::INFINITY));
            }
            if negative {
                let n = cmp(CmpOp::Eq, x, c(f64::NEG_INFINITY));
                v = if positive { bin(BinOp::Or, v, n) } else { n };
            }
            v
        }
        UnaryFn::Not | UnaryFn::BitwiseNot => {
            return Err(format!("{u:?} does not apply to {ty:?}"));
        }
    })
}

/// The formula of a unary function of an integer or bool `x`.
pub(super) fn unary_int(
    u: UnaryFn,
    x: Expr,
    ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> NodeResult1 {
    let ic = |v: i64| Expr::I(v, ty);
    Ok(match u {
        UnaryFn::Abs if ty.is_signed() => un(UnOp::Abs, x),
        UnaryFn::Abs => x,
        // Wrapping, like the interpreter.
        UnaryFn::Neg => un(UnOp::Neg, x),
        UnaryFn::Sign => select(
            cmp(CmpOp::Gt, x.clone(), ic(0)),
            ic(1),
            select(cmp(CmpOp::Lt, x, ic(0)), ic(-1), ic(0)),
        ),
        UnaryFn::Relu => bin(BinOp::Max, x, ic(0)),
        UnaryFn::Not | UnaryFn::BitwiseNot => un(UnOp::Not, x),
        // The float formula on the value converted to f64, truncated back.
        UnaryFn::Shrink { .. } => {
            let xf = mathexp::bind(p, cast(Scalar::F64, x), pre);
            cast(ty, unary_float(u, xf, Scalar::F64, p, pre)?)
        }
        other => return Err(format!("{other:?} on {ty:?} is not an ONNX combination")),
    })
}
