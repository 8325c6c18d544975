//! Lowering of the element-wise family: one loop nest over the output with
//! broadcast loads, the op's scalar formula in the body.

use smelt_ir::ops::elementwise::{BinaryFn, Elementwise, UnaryFn, VariadicFn};

use super::{NodeResult, Operand, broadcast_index, loop_nest};
use crate::kernel::build::{bin, cast, cmp, f, mul, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

fn fconst(v: f64, ty: Scalar) -> Expr {
    f(v, ty)
}

/// The scalar formula of a unary function of a float `x` of type `ty`.
fn unary_float(u: UnaryFn, x: Expr, ty: Scalar) -> Result<Expr, String> {
    let c = |v: f64| fconst(v, ty);
    let zero = || c(0.0);
    let exp = |e: Expr| un(UnOp::Exp, e);
    let sigmoid = |e: Expr| {
        bin(
            BinOp::Div,
            c(1.0),
            bin(BinOp::Add, c(1.0), exp(un(UnOp::Neg, e))),
        )
    };
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
        UnaryFn::Sigmoid => sigmoid(x),
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
        UnaryFn::Swish { alpha } => mul(x.clone(), sigmoid(mul(c(alpha as f64), x))),
        UnaryFn::Asin
        | UnaryFn::Acos
        | UnaryFn::Atan
        | UnaryFn::Tan
        | UnaryFn::Sinh
        | UnaryFn::Cosh
        | UnaryFn::Asinh
        | UnaryFn::Acosh
        | UnaryFn::Atanh
        | UnaryFn::Softplus
        | UnaryFn::Mish
        | UnaryFn::Celu { .. }
        | UnaryFn::Shrink { .. }
        | UnaryFn::Not
        | UnaryFn::BitwiseNot
        | UnaryFn::IsNaN
        | UnaryFn::IsInf { .. } => return Err(format!("{u:?} has no native kernel yet")),
    })
}

fn binary(b: BinaryFn, x: Expr, y: Expr, ty: Scalar) -> Result<Expr, String> {
    Ok(match b {
        BinaryFn::Add => bin(BinOp::Add, x, y),
        BinaryFn::Sub => bin(BinOp::Sub, x, y),
        BinaryFn::Mul => bin(BinOp::Mul, x, y),
        BinaryFn::Div if ty.is_float() => bin(BinOp::Div, x, y),
        BinaryFn::Pow if ty.is_float() => bin(BinOp::Pow, x, y),
        BinaryFn::Equal => cmp(CmpOp::Eq, x, y),
        BinaryFn::Less => cmp(CmpOp::Lt, x, y),
        BinaryFn::LessOrEqual => cmp(CmpOp::Le, x, y),
        BinaryFn::Greater => cmp(CmpOp::Gt, x, y),
        BinaryFn::GreaterOrEqual => cmp(CmpOp::Ge, x, y),
        BinaryFn::And | BinaryFn::BitwiseAnd => bin(BinOp::And, x, y),
        BinaryFn::Or | BinaryFn::BitwiseOr => bin(BinOp::Or, x, y),
        BinaryFn::Xor | BinaryFn::BitwiseXor => bin(BinOp::Xor, x, y),
        BinaryFn::Div | BinaryFn::Pow | BinaryFn::Mod { .. } | BinaryFn::BitShift { .. } => {
            return Err(format!("{b:?} on {ty:?} has no native kernel yet"));
        }
    })
}

/// Lowers one element-wise node.
pub fn lower(
    e: &Elementwise,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    let out = &outs[0];
    let shape = out.shape.clone();
    let arg = |k: usize| ins.get(k).cloned().flatten();
    let args: Vec<Operand> = ins.iter().flatten().cloned().collect();
    // Build the formula over broadcast loads, inside a nest over the output.
    let mut err = None;
    let stmts = loop_nest(p, &shape, |_, idx| {
        let ld = |o: &Operand| o.load(broadcast_index(&o.shape, idx));
        let value: Result<Expr, String> = (|| {
            Ok(match e {
                Elementwise::Unary(u) => {
                    let x = &args[0];
                    if !x.ty.is_float() {
                        return Err(format!("{u:?} on {:?} has no native kernel yet", x.ty));
                    }
                    unary_float(*u, ld(x), x.ty)?
                }
                Elementwise::Binary(b) => {
                    let (x, y) = (&args[0], &args[1]);
                    if x.ty != y.ty {
                        return Err("mixed operand types have no native kernel yet".into());
                    }
                    binary(*b, ld(x), ld(y), x.ty)?
                }
                Elementwise::Variadic(v) => {
                    let op = match v {
                        VariadicFn::Min => BinOp::Min,
                        VariadicFn::Max => BinOp::Max,
                        VariadicFn::Sum | VariadicFn::Mean => BinOp::Add,
                    };
                    let mut acc = ld(&args[0]);
                    for a in &args[1..] {
                        acc = bin(op, acc, ld(a));
                    }
                    if *v == VariadicFn::Mean {
                        acc = bin(BinOp::Div, acc, f(args.len() as f64, out.ty));
                    }
                    acc
                }
                Elementwise::Where => select(ld(&args[0]), ld(&args[1]), ld(&args[2])),
                Elementwise::Clip { min, max } => {
                    let x = &args[0];
                    let mut v = ld(x);
                    let lo = arg(1).map(|o| ld(&o)).or(min.map(|m| f(m as f64, x.ty)));
                    let hi = arg(2).map(|o| ld(&o)).or(max.map(|m| f(m as f64, x.ty)));
                    if let Some(lo) = lo {
                        v = select(cmp(CmpOp::Lt, v.clone(), lo.clone()), lo, v);
                    }
                    if let Some(hi) = hi {
                        v = select(cmp(CmpOp::Gt, v.clone(), hi.clone()), hi, v);
                    }
                    v
                }
                Elementwise::PRelu => {
                    let (x, s) = (&args[0], &args[1]);
                    let zero = if x.ty.is_float() {
                        f(0.0, x.ty)
                    } else {
                        Expr::I(0, x.ty)
                    };
                    select(cmp(CmpOp::Lt, ld(x), zero), mul(ld(x), ld(s)), ld(x))
                }
                Elementwise::Cast { .. } | Elementwise::CastLike => cast(out.ty, ld(&args[0])),
            })
        })();
        match value {
            Ok(v) => vec![Stmt::Store {
                buf: out.buf,
                index: super::flat_index(&shape, idx),
                value: v,
            }],
            Err(e) => {
                err = Some(e);
                vec![]
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(stmts),
    }
}
