//! The scalar formulas of the binary element-wise functions (integer
//! division and remainders, `Mod`, `Pow`, shifts, comparisons) and `Clip`.

use smelt_ir::ops::elementwise::BinaryFn;

use super::Operand;
use crate::kernel::build::{bin, cast, cmp, f, i, mul, select, un, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt, UnOp};
use crate::mathexp;

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
    // A zero remainder has the dividend's sign (a · 0 is ±0 for finite a;
    // the subtraction above gives +0 for -0 and for exact multiples).
    let r2 = bind(p, pre, r2);
    let r2 = select(
        cmp(CmpOp::Eq, r2.clone(), c(0.0)),
        mul(a.clone(), c(0.0)),
        r2,
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

/// `Pow`: integer powers exactly; floats through `exp(y·log|x|)` with the
/// IEEE special cases (`mathexp`'s `pow`; f32 computed in f64), the common
/// constant exponents 1, 2, 3, ½ and −1 as plain arithmetic; mixed
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
            // pow(-inf, ½) = +inf where √ gives NaN, and pow(-0, ½) = +0
            // where √ gives -0 (adding +0 clears the sign of a zero only).
            Some(0.5) => select(
                cmp(CmpOp::Eq, xv.clone(), f(f64::NEG_INFINITY, ty)),
                f(f64::INFINITY, ty),
                bin(BinOp::Add, un(UnOp::Sqrt, xv), f(0.0, ty)),
            ),
            // f32 in f64, rounded once like the interpreter: exact powers
            // (integers of a negative base) stay exact.
            _ if ty == Scalar::F32 => {
                let wt = Scalar::F64;
                cast(ty, bin(BinOp::Pow, cast(wt, xv), cast(wt, yv)))
            }
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

pub(super) fn binary(
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
pub(super) fn clip(
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
