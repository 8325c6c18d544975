//! Lowering of the element-wise family: one loop nest over the output with
//! broadcast loads, the op's scalar formula in the body.
//!
//! Integer semantics follow the reference interpreter (wrapping arithmetic,
//! truncating division, C or Python remainders, shifts by out-of-range
//! amounts giving 0 or the sign fill). One deliberate difference: the
//! interpreter reports integer division (and `Mod`) by zero as an error,
//! which native code cannot do per element; native `Div` and `Mod` by zero
//! give 0 and never trap (neither does `INT_MIN / -1`, which wraps).

use smelt_ir::ops::elementwise::{BinaryFn, Elementwise, Epilogue, UnaryFn, VariadicFn};

use super::{NodeResult, Operand, broadcast_index, loop_nest};
use crate::kernel::build::{bin, cast, cmp, f, i, mul, select, un, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt, UnOp};
use crate::mathexp;

fn fconst(v: f64, ty: Scalar) -> Expr {
    f(v, ty)
}

/// The scalar formula of a unary function of a float `x` of type `ty`
/// (`x` is a variable or constant, so it may be used more than once);
/// statements it needs go to `pre`.
fn unary_float(
    u: UnaryFn,
    x: Expr,
    ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
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
fn unary_int(u: UnaryFn, x: Expr, ty: Scalar, p: &mut Program, pre: &mut Vec<Stmt>) -> NodeResult1 {
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

type NodeResult1 = Result<Expr, String>;

/// The unsigned integer type of `ty`'s width.
fn unsigned_of(ty: Scalar) -> Scalar {
    match ty.bytes() {
        1 => Scalar::U8,
        2 => Scalar::U16,
        4 => Scalar::U32,
        _ => Scalar::U64,
    }
}

/// Truncating integer division (`rem`: C remainder) that never traps:
/// a zero divisor gives 0, and `x / -1` is computed as a wrapping negation
/// (x86 `idiv` faults on `INT_MIN / -1`).
fn int_div(x: Expr, y: Expr, ty: Scalar, rem: bool) -> Expr {
    let ic = |v: i64| Expr::I(v, ty);
    let y0 = cmp(CmpOp::Eq, y.clone(), ic(0));
    if ty.is_signed() {
        let m1 = cmp(CmpOp::Eq, y.clone(), ic(-1));
        let safe = select(bin(BinOp::Or, y0.clone(), m1.clone()), ic(1), y);
        if rem {
            // x % 1 = 0 covers both the zero and the -1 divisor.
            bin(BinOp::Rem, x, safe)
        } else {
            select(
                y0,
                ic(0),
                select(m1, un(UnOp::Neg, x.clone()), bin(BinOp::Div, x, safe)),
            )
        }
    } else {
        let safe = select(y0.clone(), ic(1), y);
        if rem {
            bin(BinOp::Rem, x, safe)
        } else {
            select(y0, ic(0), bin(BinOp::Div, x, safe))
        }
    }
}

/// C `fmod` of floats `a`, `b` (variables): `a − trunc(a/b)·b`, corrected by
/// one `b` when the rounded quotient is off by one. Exact while |a/b| < 2²⁹
/// for f32 operands computed in f64; for f64 operands, exact while `q·b` is.
fn fmod(a: Expr, b: Expr, ty: Scalar, p: &mut Program, pre: &mut Vec<Stmt>) -> Expr {
    let c = |v: f64| f(v, ty);
    let bind = |p: &mut Program, pre: &mut Vec<Stmt>, e| mathexp::bind(p, e, pre);
    let q = bind(
        p,
        pre,
        un(UnOp::Trunc, bin(BinOp::Div, a.clone(), b.clone())),
    );
    let r = bind(p, pre, bin(BinOp::Sub, a.clone(), mul(q, b.clone())));
    let ab = bind(p, pre, un(UnOp::Abs, b));
    let a_neg = bind(p, pre, cmp(CmpOp::Lt, a.clone(), c(0.0)));
    let sb = bind(
        p,
        pre,
        select(a_neg.clone(), un(UnOp::Neg, ab.clone()), ab.clone()),
    );
    let wrong_sign = bin(
        BinOp::And,
        cmp(CmpOp::Ne, r.clone(), c(0.0)),
        cmp(CmpOp::Ne, cmp(CmpOp::Lt, r.clone(), c(0.0)), a_neg),
    );
    let r1 = bind(
        p,
        pre,
        select(wrong_sign, bin(BinOp::Add, r.clone(), sb.clone()), r),
    );
    let r2 = select(
        cmp(CmpOp::Ge, un(UnOp::Abs, r1.clone()), ab.clone()),
        bin(BinOp::Sub, r1.clone(), sb),
        r1,
    );
    // fmod(a, ±inf) = a for finite a.
    select(
        bin(
            BinOp::And,
            cmp(CmpOp::Eq, ab, c(f64::INFINITY)),
            cmp(CmpOp::Ne, un(UnOp::Abs, a.clone()), c(f64::INFINITY)),
        ),
        a,
        r2,
    )
}

/// Float `Mod`: C `fmod`, or NumPy's `mod` (the divisor's sign) when
/// `!c_fmod`. f32 is computed in f64, as the interpreter does.
fn float_mod(
    x: Expr,
    y: Expr,
    ty: Scalar,
    c_fmod: bool,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Expr {
    let wt = Scalar::F64;
    let c = |v: f64| f(v, wt);
    let a = mathexp::bind(p, cast(wt, x), pre);
    let b = mathexp::bind(p, cast(wt, y), pre);
    let r = fmod(a, b.clone(), wt, p, pre);
    let r = mathexp::bind(p, r, pre);
    let v = if c_fmod {
        r
    } else {
        let fixed = select(
            cmp(CmpOp::Eq, r.clone(), c(0.0)),
            select(cmp(CmpOp::Lt, b.clone(), c(0.0)), c(-0.0), c(0.0)),
            select(
                cmp(
                    CmpOp::Ne,
                    cmp(CmpOp::Lt, b.clone(), c(0.0)),
                    cmp(CmpOp::Lt, r.clone(), c(0.0)),
                ),
                bin(BinOp::Add, r.clone(), b.clone()),
                r.clone(),
            ),
        );
        // b == 0 or a NaN remainder stay as they are.
        select(
            bin(
                BinOp::Or,
                cmp(CmpOp::Eq, b, c(0.0)),
                cmp(CmpOp::Ne, r.clone(), r.clone()),
            ),
            r,
            fixed,
        )
    };
    cast(ty, v)
}

/// `x^e` for integers: wrapping square-and-multiply over the exponent's
/// bits; negative exponents give 0 unless |x| = 1 (like the interpreter).
fn int_pow(x: Expr, y: Expr, ty: Scalar, p: &mut Program, pre: &mut Vec<Stmt>) -> Expr {
    let ic = |v: i64| Expr::I(v, ty);
    let e0 = mathexp::bind(p, cast(Scalar::I64, y), pre);
    let (acc, base, e) = (p.var(ty), p.var(ty), p.var(Scalar::I64));
    let k = p.var(Scalar::I64);
    pre.push(Stmt::Set(acc, ic(1)));
    pre.push(Stmt::Set(base, x.clone()));
    pre.push(Stmt::Set(e, e0.clone()));
    let odd = cmp(
        CmpOp::Ne,
        bin(BinOp::And, var(e), Expr::I(1, Scalar::I64)),
        Expr::I(0, Scalar::I64),
    );
    pre.push(Stmt::for_loop(
        k,
        i(0),
        i(64),
        vec![Stmt::If(
            cmp(CmpOp::Gt, var(e), Expr::I(0, Scalar::I64)),
            vec![
                Stmt::Set(acc, select(odd, mul(var(acc), var(base)), var(acc))),
                Stmt::Set(base, mul(var(base), var(base))),
                Stmt::Set(e, bin(BinOp::Shr, var(e), Expr::I(1, Scalar::I64))),
            ],
            vec![],
        )],
    ));
    let even = cmp(
        CmpOp::Eq,
        bin(BinOp::And, e0.clone(), Expr::I(1, Scalar::I64)),
        Expr::I(0, Scalar::I64),
    );
    let mut neg = select(cmp(CmpOp::Eq, x.clone(), ic(1)), ic(1), ic(0));
    if ty.is_signed() {
        neg = select(
            cmp(CmpOp::Eq, x.clone(), ic(-1)),
            select(even, ic(1), x),
            neg,
        );
    }
    select(cmp(CmpOp::Lt, e0, Expr::I(0, Scalar::I64)), neg, var(acc))
}

/// The value of a one-element constant operand, if it is one.
fn const_scalar(o: &Operand, p: &Program) -> Option<f64> {
    let Buf::Const(k) = o.buf else { return None };
    if o.numel() != 1 {
        return None;
    }
    let b = p.consts.get(k as usize)?;
    Some(match o.ty {
        Scalar::F32 => f32::from_le_bytes(b.get(..4)?.try_into().ok()?) as f64,
        Scalar::F64 => f64::from_le_bytes(b.get(..8)?.try_into().ok()?),
        _ => return None,
    })
}

/// `Pow`: integer powers exactly; floats through `exp(y·log|x|)` (with the
/// common constant exponents 1, 2, 3, ½ and −1 as plain arithmetic); mixed
/// types in f64, converted to the base's type (for integer results, a value
/// within 1e-12 relative of an integer is taken as that integer, so exact
/// powers like 3^6.0 survive the truncation).
fn pow(
    x: &Operand,
    y: &Operand,
    xv: Expr,
    yv: Expr,
    out_ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Expr {
    if x.ty == y.ty && !x.ty.is_float() {
        return int_pow(xv, yv, x.ty, p, pre);
    }
    if x.ty == y.ty {
        let ty = x.ty;
        return match const_scalar(y, p) {
            Some(1.0) => xv,
            Some(2.0) => mul(xv.clone(), xv),
            Some(3.0) => mul(mul(xv.clone(), xv.clone()), xv),
            Some(-1.0) => bin(BinOp::Div, f(1.0, ty), xv),
            // pow(-inf, ½) = +inf where √ gives NaN.
            Some(0.5) => select(
                cmp(CmpOp::Eq, xv.clone(), f(f64::NEG_INFINITY, ty)),
                f(f64::INFINITY, ty),
                un(UnOp::Sqrt, xv),
            ),
            _ => bin(BinOp::Pow, xv, yv),
        };
    }
    let wt = Scalar::F64;
    let r = bin(BinOp::Pow, cast(wt, xv), cast(wt, yv));
    if out_ty.is_float() {
        return cast(out_ty, r);
    }
    let r = mathexp::bind(p, r, pre);
    let n = mathexp::bind(p, un(UnOp::Nearest, r.clone()), pre);
    let close = cmp(
        CmpOp::Le,
        un(UnOp::Abs, bin(BinOp::Sub, r.clone(), n.clone())),
        mul(un(UnOp::Abs, n.clone()), f(1e-12, wt)),
    );
    cast(out_ty, select(close, n, r))
}

fn binary(
    b: BinaryFn,
    (xo, yo): (&Operand, &Operand),
    (x, y): (Expr, Expr),
    out_ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
    let ty = xo.ty;
    if xo.ty != yo.ty && b != BinaryFn::Pow {
        return Err(format!("{b:?} on {:?} and {:?}", xo.ty, yo.ty));
    }
    let float = ty.is_float();
    Ok(match b {
        BinaryFn::Add => bin(BinOp::Add, x, y),
        BinaryFn::Sub => bin(BinOp::Sub, x, y),
        BinaryFn::Mul => bin(BinOp::Mul, x, y),
        BinaryFn::Div if float => bin(BinOp::Div, x, y),
        BinaryFn::Div => int_div(x, y, ty, false),
        BinaryFn::Pow => pow(xo, yo, x, y, out_ty, p, pre),
        BinaryFn::Mod { fmod } if float => float_mod(x, y, ty, fmod, p, pre),
        BinaryFn::Mod { fmod } => {
            let r = mathexp::bind(p, int_div(x, y.clone(), ty, true), pre);
            if fmod || !ty.is_signed() {
                r
            } else {
                // Python's sign rule: a nonzero remainder takes the divisor's sign.
                let z = Expr::I(0, ty);
                let differ = bin(
                    BinOp::And,
                    cmp(CmpOp::Ne, r.clone(), z.clone()),
                    cmp(
                        CmpOp::Ne,
                        cmp(CmpOp::Lt, r.clone(), z.clone()),
                        cmp(CmpOp::Lt, y.clone(), z),
                    ),
                );
                select(differ, bin(BinOp::Add, r.clone(), y), r)
            }
        }
        BinaryFn::Equal => cmp(CmpOp::Eq, x, y),
        BinaryFn::Less => cmp(CmpOp::Lt, x, y),
        BinaryFn::LessOrEqual => cmp(CmpOp::Le, x, y),
        BinaryFn::Greater => cmp(CmpOp::Gt, x, y),
        BinaryFn::GreaterOrEqual => cmp(CmpOp::Ge, x, y),
        BinaryFn::And | BinaryFn::BitwiseAnd => bin(BinOp::And, x, y),
        BinaryFn::Or | BinaryFn::BitwiseOr => bin(BinOp::Or, x, y),
        BinaryFn::Xor | BinaryFn::BitwiseXor => bin(BinOp::Xor, x, y),
        BinaryFn::BitShift { left } => {
            if float {
                return Err(format!("BitShift on {ty:?}"));
            }
            let bits = (ty.bytes() * 8) as i64;
            let ut = unsigned_of(ty);
            // Negative amounts are huge unsigned ones: both out of range.
            let oor = cmp(CmpOp::Ge, cast(ut, y.clone()), Expr::I(bits, ut));
            let ic = |v: i64| Expr::I(v, ty);
            if left {
                select(oor, ic(0), bin(BinOp::Shl, x, y))
            } else if ty.is_signed() {
                // Out of range leaves only sign bits: a shift by bits − 1.
                bin(BinOp::Shr, x, select(oor, ic(bits - 1), y))
            } else {
                select(oor, ic(0), bin(BinOp::Shr, x, y))
            }
        }
    })
}

/// Lowers one element-wise node.
/// `Clip`'s formula: `v` (a variable or constant) bounded by `lo` and `hi`;
/// NaN stays NaN.
fn clip(
    mut v: Expr,
    lo: Option<Expr>,
    hi: Option<Expr>,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Expr {
    if let Some(lo) = lo {
        v = mathexp::bind(p, select(cmp(CmpOp::Lt, v.clone(), lo.clone()), lo, v), pre);
    }
    if let Some(hi) = hi {
        v = select(cmp(CmpOp::Gt, v.clone(), hi.clone()), hi, v);
    }
    v
}

/// The scalar formula of an activation epilogue applied to `x` (a variable
/// or constant of float type `ty`): the same formula as the separate op.
pub fn epilogue_expr(
    act: Epilogue,
    x: Expr,
    ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
    if !ty.is_float() {
        return Err(format!("activation {} on {ty:?}", act.text()));
    }
    match act {
        Epilogue::Unary(u) => unary_float(u, x, ty, p, pre),
        Epilogue::Clip { min, max } => Ok(clip(
            x,
            Some(f(min as f64, ty)),
            Some(f(max as f64, ty)),
            p,
            pre,
        )),
    }
}

/// What a fused op applies to its base's result as the result is stored:
/// a residual operand added (exactly the result's type and layout, so it is
/// read at the index of the element stored), then an activation. The
/// kernels that can apply it in their store take it; the others leave it to
/// [`Epi::passes`].
#[derive(Clone, Debug, Default)]
pub struct Epi {
    /// Added to each result before the activation.
    pub residual: Option<Operand>,
    /// Applied last.
    pub act: Option<Epilogue>,
}

impl Epi {
    /// Neither a residual nor an activation.
    pub fn is_empty(&self) -> bool {
        self.residual.is_none() && self.act.is_none()
    }

    /// The form the GEMM micro-kernel's store takes (the residual's buffer,
    /// the activation) when it can apply this epilogue to the f32 result
    /// `out`: an f32 residual of `out`'s shape, a supported activation.
    pub fn for_gemm(&self, out: &Operand) -> Option<(Option<Buf>, Option<Epilogue>)> {
        if self.act.is_some_and(|a| !a.is_supported()) || out.ty != Scalar::F32 {
            return None;
        }
        match &self.residual {
            Some(r) if r.ty != Scalar::F32 || r.shape != out.shape => None,
            r => Some((r.as_ref().map(|r| r.buf), self.act)),
        }
    }

    /// `value` (the result at flat index `idx` of a result of type `ty`)
    /// with the epilogue applied: `act(value + residual[idx])`. The value is
    /// bound to a variable first, so formulas that use it twice do not
    /// duplicate its expression.
    pub fn apply(
        &self,
        p: &mut Program,
        value: Expr,
        ty: Scalar,
        idx: Expr,
        pre: &mut Vec<Stmt>,
    ) -> Result<Expr, String> {
        let mut v = value;
        if let Some(r) = &self.residual {
            if r.ty != ty {
                return Err(format!("a {:?} residual added to a {ty:?} result", r.ty));
            }
            v = bin(BinOp::Add, v, r.load(idx));
        }
        match self.act {
            Some(act) => {
                let x = mathexp::bind(p, v, pre);
                epilogue_expr(act, x, ty, p, pre)
            }
            None => Ok(v),
        }
    }

    /// The epilogue as passes over `out` in place (after a kernel that did
    /// not apply it): the element-wise `Add` of the residual, then the
    /// activation, each the element-wise op's own lowering.
    pub fn passes(&self, out: &Operand, p: &mut Program) -> NodeResult {
        let mut stmts = Vec::new();
        if let Some(r) = &self.residual {
            stmts.extend(lower(
                &Elementwise::Binary(BinaryFn::Add),
                &[Some(out.clone()), Some(r.clone())],
                std::slice::from_ref(out),
                p,
            )?);
        }
        if let Some(act) = self.act {
            stmts.extend(epilogue_pass(act, out, p)?);
        }
        Ok(stmts)
    }
}

/// An activation applied in place to `out` (the result of a product or a
/// convolution lowered without an epilogue): the element-wise op's own
/// lowering, reading and writing the same element.
pub fn epilogue_pass(act: Epilogue, out: &Operand, p: &mut Program) -> NodeResult {
    lower(
        &act.as_op(),
        &[Some(out.clone())],
        std::slice::from_ref(out),
        p,
    )
}

pub fn lower(
    e: &Elementwise,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    lower_with(e, &Epi::default(), ins, outs, p)
}

/// [`lower`] with an epilogue (residual, activation) applied to each result
/// in the same loop before it is stored: a chain `act(e(…) + r)` as one
/// kernel, one pass over memory.
pub fn lower_with(
    e: &Elementwise,
    epi: &Epi,
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
    let stmts = loop_nest(p, &shape, |p, idx| {
        let mut pre = Vec::new();
        // Each operand is loaded once into a variable, so formulas may use it
        // several times.
        let ld = |o: &Operand, p: &mut Program, pre: &mut Vec<Stmt>| {
            mathexp::bind(p, o.load(broadcast_index(&o.shape, idx)), pre)
        };
        let value: Result<Expr, String> = (|| {
            Ok(match e {
                Elementwise::Unary(u) => {
                    let x = &args[0];
                    let xv = ld(x, p, &mut pre);
                    if x.ty.is_float() {
                        unary_float(*u, xv, x.ty, p, &mut pre)?
                    } else {
                        unary_int(*u, xv, x.ty, p, &mut pre)?
                    }
                }
                Elementwise::Binary(b) => {
                    let (x, y) = (&args[0], &args[1]);
                    let (xv, yv) = (ld(x, p, &mut pre), ld(y, p, &mut pre));
                    binary(*b, (x, y), (xv, yv), out.ty, p, &mut pre)?
                }
                Elementwise::Variadic(v) => {
                    let op = match v {
                        VariadicFn::Min => BinOp::Min,
                        VariadicFn::Max => BinOp::Max,
                        VariadicFn::Sum | VariadicFn::Mean => BinOp::Add,
                    };
                    let mut acc = ld(&args[0], p, &mut pre);
                    for a in &args[1..] {
                        let av = ld(a, p, &mut pre);
                        acc = bin(op, acc, av);
                    }
                    if *v == VariadicFn::Mean {
                        acc = bin(BinOp::Div, acc, f(args.len() as f64, out.ty));
                    }
                    acc
                }
                Elementwise::Where => {
                    let c = ld(&args[0], p, &mut pre);
                    let (a, b) = (ld(&args[1], p, &mut pre), ld(&args[2], p, &mut pre));
                    select(c, a, b)
                }
                Elementwise::Clip { min, max } => {
                    let x = &args[0];
                    let v = ld(x, p, &mut pre);
                    let lo = match arg(1) {
                        Some(o) => Some(ld(&o, p, &mut pre)),
                        None => min.map(|m| f(m as f64, x.ty)),
                    };
                    let hi = match arg(2) {
                        Some(o) => Some(ld(&o, p, &mut pre)),
                        None => max.map(|m| f(m as f64, x.ty)),
                    };
                    clip(v, lo, hi, p, &mut pre)
                }
                Elementwise::PRelu => {
                    let (x, s) = (&args[0], &args[1]);
                    let zero = if x.ty.is_float() {
                        f(0.0, x.ty)
                    } else {
                        Expr::I(0, x.ty)
                    };
                    let (xv, sv) = (ld(x, p, &mut pre), ld(s, p, &mut pre));
                    select(cmp(CmpOp::Lt, xv.clone(), zero), mul(xv.clone(), sv), xv)
                }
                Elementwise::Cast { .. } | Elementwise::CastLike => {
                    cast(out.ty, ld(&args[0], p, &mut pre))
                }
            })
        })();
        let at = super::flat_index(&shape, idx);
        let value = value.and_then(|v| epi.apply(p, v, out.ty, at.clone(), &mut pre));
        match value {
            Ok(v) => {
                pre.push(Stmt::Store {
                    buf: out.buf,
                    index: at,
                    value: v,
                });
                pre
            }
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

#[cfg(test)]
mod tests {
    //! Integer and float corner cases lowered, expanded and run by the
    //! kernel-IR test evaluator, against the reference interpreter.
    use super::*;
    use crate::mathexp::tests::Eval;
    use smelt_ir::{DType, OpDef, Tensor};

    const INTS: [DType; 8] = [
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
    ];

    /// Runs `e` natively (through the test evaluator) on `ins`.
    fn native(e: &Elementwise, ins: &[&Tensor], out: DType) -> Vec<u8> {
        let mut p = Program::default();
        let ops: Vec<Option<Operand>> = ins
            .iter()
            .enumerate()
            .map(|(k, t)| {
                Some(Operand {
                    buf: Buf::Input(k as u32),
                    shape: t.shape().to_vec(),
                    ty: Scalar::of(t.dtype()).expect("scalar"),
                })
            })
            .collect();
        let ty = Scalar::of(out).expect("scalar");
        let o = Operand {
            buf: Buf::Output(0),
            shape: ins[0].shape().to_vec(),
            ty,
        };
        p.body = lower(e, &ops, std::slice::from_ref(&o), &mut p).expect("lowers");
        mathexp::expand(&mut p).expect("expands");
        let mut ev = Eval::new(&p);
        for (k, t) in ins.iter().enumerate() {
            ev.mem.insert(Buf::Input(k as u32), t.to_le_bytes());
        }
        ev.mem
            .insert(Buf::Output(0), vec![0; o.numel() * ty.bytes() as usize]);
        ev.run();
        ev.mem[&Buf::Output(0)].clone()
    }

    fn check(e: Elementwise, ins: &[&Tensor]) {
        let refs: Vec<Option<&Tensor>> = ins.iter().map(|t| Some(*t)).collect();
        let want = e.eval(&refs).expect("interpreter").remove(0);
        let got = native(&e, ins, want.dtype());
        if want.dtype().is_float() {
            let g = Tensor::from_le_bytes(want.dtype(), want.shape().to_vec(), &got).unwrap();
            for (a, b) in g.to_f64_vec().iter().zip(want.to_f64_vec()) {
                assert!(
                    a == &b || (a.is_nan() && b.is_nan()),
                    "{e:?} on {:?}: {a} vs {b}",
                    ins.iter().map(|t| t.dtype()).collect::<Vec<_>>()
                );
            }
        } else {
            assert_eq!(
                got,
                want.to_le_bytes(),
                "{e:?} on {:?}: {ins:?}",
                want.dtype()
            );
        }
    }

    /// `n` pseudo-random values of `d` (raw bits), plus the edge values.
    /// (These test helpers work element by element on dense tensors, hence
    /// `elem_bytes`.)
    fn ints(d: DType, n: usize, seed: u64) -> Tensor {
        let bytes = d.elem_bytes();
        let mut s = seed;
        let mut raw = Vec::new();
        let edges: [i64; 6] = [0, 1, -1, 2, i64::MIN, i64::MAX];
        for k in 0..n {
            let v = if k < edges.len() {
                edges[k] as u64
            } else {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Small values half the time, so sums and powers stay interesting.
                if k % 2 == 0 { s % 17 } else { s }
            };
            raw.extend_from_slice(&v.to_le_bytes()[..bytes]);
        }
        // Edge values of narrower types: i64::MIN/MAX truncate to 0 / -1;
        // add the type's own extremes.
        let (lo, hi): (u64, u64) = match bytes {
            1 => (0x80, 0x7f),
            2 => (0x8000, 0x7fff),
            4 => (0x8000_0000, 0x7fff_ffff),
            _ => (1 << 63, (1 << 63) - 1),
        };
        raw.extend_from_slice(&lo.to_le_bytes()[..bytes]);
        raw.extend_from_slice(&hi.to_le_bytes()[..bytes]);
        Tensor::from_le_bytes(d, vec![n + 2], &raw).unwrap()
    }

    fn nonzero(t: &Tensor) -> Tensor {
        let d = t.dtype();
        let b = d.elem_bytes();
        let mut raw = t.to_le_bytes();
        for c in raw.chunks_mut(b) {
            if c.iter().all(|&x| x == 0) {
                c[0] = 3;
            }
        }
        Tensor::from_le_bytes(d, t.shape().to_vec(), &raw).unwrap()
    }

    #[test]
    fn integer_division_and_remainders() {
        for d in INTS {
            let a = ints(d, 40, 0x1234_5678);
            let b = nonzero(&ints(d, 40, 0x0bad_cafe));
            for f in [
                BinaryFn::Div,
                BinaryFn::Mod { fmod: false },
                BinaryFn::Mod { fmod: true },
            ] {
                check(Elementwise::Binary(f), &[&a, &b]);
            }
        }
    }

    #[test]
    fn integer_division_by_zero_gives_zero() {
        for d in INTS {
            let a = ints(d, 10, 7);
            let z = Tensor::from_le_bytes(d, vec![12], &vec![0; 12 * d.elem_bytes()]).unwrap();
            for f in [
                BinaryFn::Div,
                BinaryFn::Mod { fmod: false },
                BinaryFn::Mod { fmod: true },
            ] {
                let got = native(&Elementwise::Binary(f), &[&a, &z], d);
                assert!(got.iter().all(|&x| x == 0), "{f:?} on {d}");
            }
        }
    }

    #[test]
    fn shifts_powers_and_integer_unary() {
        for d in INTS {
            let a = ints(d, 40, 99);
            let bits = (d.elem_bytes() * 8) as i64;
            // Amounts from −3 to bits + 3.
            let amounts: Vec<u8> = (0..42)
                .flat_map(|k| {
                    let v = (k as i64 % (bits + 7)) - 3;
                    v.to_le_bytes()[..d.elem_bytes()].to_vec()
                })
                .collect();
            let s = Tensor::from_le_bytes(d, vec![42], &amounts).unwrap();
            for left in [true, false] {
                check(Elementwise::Binary(BinaryFn::BitShift { left }), &[&a, &s]);
            }
            check(Elementwise::Binary(BinaryFn::Pow), &[&a, &s]);
            for u in [
                UnaryFn::Abs,
                UnaryFn::Neg,
                UnaryFn::Sign,
                UnaryFn::Relu,
                UnaryFn::BitwiseNot,
                UnaryFn::Shrink {
                    bias: 1.5,
                    lambd: 2.0,
                },
            ] {
                // Shrink goes through f64: for 64-bit extremes the kernel
                // IR's float→int cast saturates where the interpreter wraps.
                if d.elem_bytes() == 8 && matches!(u, UnaryFn::Shrink { .. }) {
                    continue;
                }
                check(Elementwise::Unary(u), &[&a]);
            }
        }
    }

    #[test]
    fn float_mod_and_mixed_pow() {
        let a = [
            5.5,
            -5.5,
            7.0,
            -7.0,
            0.0,
            -0.0,
            1e10,
            -3.0,
            2.5,
            f64::INFINITY,
            f64::NAN,
            1e-3,
        ];
        let b = [
            2.0,
            2.0,
            -3.0,
            3.5,
            1.0,
            -2.0,
            3.0,
            3.0,
            f64::INFINITY,
            2.0,
            1.0,
            0.0,
        ];
        let f32s = |v: &[f64]| {
            Tensor::from_vec(vec![v.len()], v.iter().map(|&x| x as f32).collect()).unwrap()
        };
        let f64s = |v: &[f64]| Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap();
        for (x, y) in [(f32s(&a), f32s(&b)), (f64s(&a), f64s(&b))] {
            for fmod in [false, true] {
                check(Elementwise::Binary(BinaryFn::Mod { fmod }), &[&x, &y]);
            }
        }
        // Mixed Pow: exact integer results survive the f64 detour.
        let base = Tensor::from_vec(vec![6], vec![1i32, 2, 3, -2, 4, 10]).unwrap();
        let exp = Tensor::from_vec(vec![6], vec![4f32, 5., 6., 3., 0.5, 9.]).unwrap();
        check(Elementwise::Binary(BinaryFn::Pow), &[&base, &exp]);
        let fb = Tensor::from_vec(vec![3], vec![1.5f32, -2., 0.]).unwrap();
        let ie = Tensor::from_vec(vec![3], vec![2i64, 3, 0]).unwrap();
        let want = Elementwise::Binary(BinaryFn::Pow)
            .eval(&[Some(&fb), Some(&ie)])
            .unwrap()
            .remove(0);
        let got = native(&Elementwise::Binary(BinaryFn::Pow), &[&fb, &ie], DType::F32);
        let got = Tensor::from_le_bytes(DType::F32, vec![3], &got).unwrap();
        for (g, w) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
            assert!((g - w).abs() <= 1e-6 * w.abs(), "{g} vs {w}");
        }
    }

    /// Runs a fused op lowered the way a model is (the node's lowering,
    /// then the vectorizer) through the schedule evaluator, against the
    /// interpreter's composition; returns how many loops were vectorized.
    fn check_fused(f: &smelt_ir::ops::fused::Fused, ins: &[&Tensor]) -> usize {
        use smelt_ir::ops::Op;
        let refs: Vec<Option<&Tensor>> = ins.iter().map(|t| Some(*t)).collect();
        let want = f.eval(&refs).expect("interpreter").remove(0);
        let mut p = Program::default();
        let ops: Vec<Option<Operand>> = ins
            .iter()
            .enumerate()
            .map(|(k, t)| {
                Some(Operand {
                    buf: Buf::Input(k as u32),
                    shape: t.shape().to_vec(),
                    ty: Scalar::of(t.dtype()).expect("scalar"),
                })
            })
            .collect();
        let o = Some(Operand {
            buf: Buf::Output(0),
            shape: want.shape().to_vec(),
            ty: Scalar::of(want.dtype()).expect("scalar"),
        });
        let op = Op::Fused(f.clone());
        p.body = super::super::lower_node(&op, &ops, &[o], &mut p).expect("lowers");
        let vectorized = crate::schedule::vectorize::vectorize(&mut p);
        let mut mem: std::collections::HashMap<Buf, Vec<u8>> = ins
            .iter()
            .enumerate()
            .map(|(k, t)| (Buf::Input(k as u32), t.to_le_bytes()))
            .collect();
        mem.insert(Buf::Output(0), vec![0xff; want.to_le_bytes().len()]);
        mem.insert(
            Buf::Arena(p.scratch_base),
            vec![0; p.scratch_bytes as usize],
        );
        // f32 kernels may be vector code, which the schedule evaluator runs;
        // other types stay scalar (math functions expanded first).
        let out = if want.dtype() == DType::F32 {
            let mut ev = Eval::new(&p);
            ev.mem.extend(mem);
            ev.run();
            ev.mem.remove(&Buf::Output(0)).expect("output")
        } else {
            mathexp::expand(&mut p).expect("expands");
            let mut ev = Eval::new(&p);
            ev.mem.extend(mem);
            ev.run();
            ev.mem.remove(&Buf::Output(0)).expect("output")
        };
        let got = Tensor::from_le_bytes(want.dtype(), want.shape().to_vec(), &out).unwrap();
        for (k, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{} {:?}: [{k}] {a} vs {b}",
                f.name(),
                f.attrs()
            );
        }
        vectorized
    }

    fn rnd(shape: &[usize], seed: u64) -> Tensor {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 500.0 - 2.0
            })
            .collect();
        Tensor::from_vec(shape.to_vec(), v).unwrap()
    }

    /// Every kernel a fused op can take applies its residual and activation
    /// (or leaves them to the passes after it) so that the result is the
    /// composition: the GEMM-backed convolution (im2col and 1x1), the
    /// depthwise kernel (stride 1 and 2), the direct grouped kernel, a
    /// batched MatMul, a Gemm, and an f64 product (no GEMM store).
    #[test]
    fn fused_kernels_match_the_interpreter() {
        use smelt_ir::ops::Op;
        use smelt_ir::ops::conv::{AutoPad, ConvOp, Window};
        use smelt_ir::ops::fused::Fused;
        use smelt_ir::ops::linalg::{GemmAttrs, Linalg};
        let conv = |stride: usize, pad: usize, group: usize| {
            Op::Conv(ConvOp::Conv {
                window: Window {
                    kernel_shape: None,
                    strides: vec![stride; 2],
                    dilations: vec![1; 2],
                    pads: vec![pad; 4],
                    auto_pad: AutoPad::NotSet,
                },
                group,
            })
        };
        let acts = [
            None,
            Some(Epilogue::Unary(UnaryFn::Relu)),
            Some(Epilogue::Clip { min: 0.0, max: 6.0 }),
            Some(Epilogue::Unary(UnaryFn::Sigmoid)),
        ];
        for (ai, act) in acts.into_iter().enumerate() {
            for residual in [false, true] {
                let seed = (ai * 2 + residual as usize) as u64;
                let fused = |base: Op| Fused::with(base, residual, act);
                let Some(_) = fused(Op::Linalg(Linalg::MatMul)) else {
                    continue; // neither a residual nor an activation
                };
                let with_r = |mut ins: Vec<Tensor>, out: &[usize]| {
                    if residual {
                        ins.push(rnd(out, seed + 100));
                    }
                    ins
                };
                // (base, inputs without the residual, output shape, vectorized?)
                let cases: Vec<(Op, Vec<Tensor>, Vec<usize>, bool)> = vec![
                    // im2col GEMM: 3x3, pad 1.
                    (
                        conv(1, 1, 1),
                        vec![
                            rnd(&[1, 3, 6, 7], seed),
                            rnd(&[5, 3, 3, 3], seed + 1),
                            rnd(&[5], seed + 2),
                        ],
                        vec![1, 5, 6, 7],
                        false,
                    ),
                    // 1x1 GEMM read in place, no bias.
                    (
                        conv(1, 0, 1),
                        vec![rnd(&[2, 4, 3, 5], seed), rnd(&[6, 4, 1, 1], seed + 1)],
                        vec![2, 6, 3, 5],
                        false,
                    ),
                    // Depthwise, stride 1 (vectorized rows) and stride 2.
                    (
                        conv(1, 1, 4),
                        vec![
                            rnd(&[1, 4, 9, 10], seed),
                            rnd(&[4, 1, 3, 3], seed + 1),
                            rnd(&[4], seed + 2),
                        ],
                        vec![1, 4, 9, 10],
                        act.is_none_or(|a| a != Epilogue::Unary(UnaryFn::Sigmoid)),
                    ),
                    (
                        conv(2, 1, 4),
                        vec![rnd(&[1, 4, 9, 10], seed), rnd(&[4, 1, 3, 3], seed + 1)],
                        vec![1, 4, 5, 5],
                        false,
                    ),
                    // Direct grouped convolution (2 channels per group).
                    (
                        conv(1, 1, 2),
                        vec![
                            rnd(&[1, 4, 5, 5], seed),
                            rnd(&[6, 2, 3, 3], seed + 1),
                            rnd(&[6], seed + 2),
                        ],
                        vec![1, 6, 5, 5],
                        false,
                    ),
                    (
                        Op::Linalg(Linalg::MatMul),
                        vec![rnd(&[2, 5, 6], seed), rnd(&[6, 9], seed + 1)],
                        vec![2, 5, 9],
                        false,
                    ),
                    (
                        Op::Linalg(Linalg::Gemm(GemmAttrs {
                            alpha: 1.0,
                            beta: 1.0,
                            trans_a: false,
                            trans_b: true,
                            c_required: false,
                            c_exact: false,
                        })),
                        vec![
                            rnd(&[5, 7], seed),
                            rnd(&[11, 7], seed + 1),
                            rnd(&[11], seed + 2),
                        ],
                        vec![5, 11],
                        false,
                    ),
                ];
                // Element-wise heads: a broadcasting Add and Mul (chains
                // `act(x + y)`, `x * y + r`), a unary Tanh.
                let mut cases = cases;
                for head in [BinaryFn::Add, BinaryFn::Mul] {
                    cases.push((
                        Op::Elementwise(Elementwise::Binary(head)),
                        vec![rnd(&[2, 3, 17], seed), rnd(&[3, 1], seed + 1)],
                        vec![2, 3, 17],
                        false,
                    ));
                }
                cases.push((
                    Op::Elementwise(Elementwise::Unary(UnaryFn::Tanh)),
                    vec![rnd(&[5, 6], seed)],
                    vec![5, 6],
                    false,
                ));
                for (base, ins, out, vec_wanted) in cases {
                    let f = fused(base).expect("fused");
                    let ins = with_r(ins, &out);
                    let refs: Vec<&Tensor> = ins.iter().collect();
                    let n = check_fused(&f, &refs);
                    // The plane's zero fill and the output rows.
                    if vec_wanted {
                        assert!(
                            n >= 2,
                            "{:?}: the depthwise rows were not vectorized",
                            f.attrs()
                        );
                    }
                }
                // f64: no GEMM store, the epilogue runs as passes.
                let f = fused(Op::Linalg(Linalg::MatMul)).expect("fused");
                let ins = with_r(
                    vec![
                        rnd(&[3, 4], seed).cast(DType::F64),
                        rnd(&[4, 5], seed + 1).cast(DType::F64),
                    ],
                    &[3, 5],
                );
                let ins: Vec<Tensor> = ins.into_iter().map(|t| t.cast(DType::F64)).collect();
                let refs: Vec<&Tensor> = ins.iter().collect();
                check_fused(&f, &refs);
            }
        }
    }
}
