//! Expansion of math functions into kernel-IR arithmetic, shared by every
//! backend: no libm on the target, and the same polynomial wherever it runs.
//!
//! | function | method | error bound (f32 / f64, checked by the tests against Rust's std) |
//! |---|---|---|
//! | `exp` | Cody–Waite reduction by ln 2, degree-7 (f32) / degree-13 (f64) Taylor on \|r\| ≤ ln2/2, two-step 2ⁿ scaling | 2 / 4 ulp |
//! | `log` | exponent split, atanh series in s = (m−1)/(m+1), m ∈ [√½, √2) | 2 / 4 ulp |
//! | `tanh` | odd Taylor series for \|x\| < 0.3 (8 / 14 terms), else 1 − 2/(e^{2\|x\|}+1) | 4 / 4 ulp |
//! | `erf` | Maclaurin series for \|x\| < 0.5, else Numerical Recipes' erfc rational in t = 1/(1+\|x\|/2) via `exp` | 2e-7 absolute (f32 and f64: the erfc fit limits f64 too) |
//! | `pow` | exp(y · log\|x\|) with the sign for integral y | 4·(2 + \|y·ln\|x\|\|) ulp (the error of y·log x, scaled) |
//! | `sin`, `cos` | Cody–Waite reduction by π/2 (f32: 8+10+11+24-bit pieces, f64: fdlibm's 33+33+53), minimax kernels on \|r\| ≤ π/4 (Cephes for f32, fdlibm for f64), quadrant by selects | 2 / 2 ulp for \|x\| < 1e4; the reduction loses accuracy beyond |
//! | `tan` | same reduction, sin r / cos r or −cos r / sin r | 4 / 4 ulp for \|x\| < 1e4 |
//! | `atan` | Cephes: reduction by π/4 or π/2 (with the π/2 tail for f64), polynomial (f32) or rational (f64) | 3 / 3 ulp |
//! | `asin`, `acos` | atan(x/√((1−x)(1+x))), 2·atan(√((1−x)/(1+x))) | 3 / 3 ulp |
//! | `log1p`, `expm1` | Kahan: log(w)·u/(w−1) with w = 1+u; (eˣ−1)·x/log eˣ | 3 / 4 ulp; 4 / 6 ulp |
//! | `sinh`, `cosh` | odd Taylor series for \|x\| < 1 (sinh), else (eˣ ∓ e⁻ˣ)/2 from one `exp`, squared from e^{\|x\|/2} near overflow | 4 / 4 ulp |
//! | `asinh`, `acosh`, `atanh` | fdlibm's formulations over one `log`/`log1p` | 4 / 4 ulp |
//!
//! `exp`, `log`, `tanh`, `erf`, `sin`, `cos` and `pow` are kernel-IR
//! operations expanded by [`expand`]; the others are built by the lowering
//! directly (`tan`, `atan`, … take the program and a statement list, bind
//! their intermediate values to variables and return the result
//! expression).
//!
//! Each expansion binds its argument to a variable first, so the argument is
//! evaluated once; the statements are inserted just before the statement that
//! used the function.

use crate::kernel::build::{bin, cast, f, un};
use crate::kernel::{BinOp, Expr, Program, Scalar, Stmt, UnOp};

/// Rewrites every `Exp`, `Log`, `Tanh`, `Erf`, `Sin`, `Cos` and `Pow` of `p`
/// into arithmetic. Every function has an expansion; the `Result` leaves room
/// for one that does not.
pub fn expand(p: &mut Program) -> Result<(), String> {
    let body = std::mem::take(&mut p.body);
    p.body = expand_stmts(p, body)?;
    Ok(())
}

fn expand_stmts(p: &mut Program, body: Vec<Stmt>) -> Result<Vec<Stmt>, String> {
    let mut out = Vec::with_capacity(body.len());
    for st in body {
        let mut pre = Vec::new();
        let st = st
            .try_map_exprs(|e| expand_expr(p, e, &mut pre))?
            .try_map_bodies(|b| expand_stmts(p, b))?;
        out.extend(pre);
        out.push(st);
    }
    Ok(out)
}

fn expand_expr(p: &mut Program, e: Expr, pre: &mut Vec<Stmt>) -> Result<Expr, String> {
    Ok(match e {
        Expr::Un(op, a) => {
            let a = expand_expr(p, *a, pre)?;
            if p.lanes(&a) != 1 && !matches!(op, UnOp::Neg | UnOp::Abs | UnOp::Sqrt) {
                return Err(format!("{op:?} has no vector form"));
            }
            match op {
                UnOp::Exp => exp(p, a, pre),
                UnOp::Log => log(p, a, pre),
                UnOp::Tanh => tanh(p, a, pre),
                UnOp::Erf => erf(p, a, pre),
                UnOp::Sin => sin_cos(p, a, pre, Trig::Sin),
                UnOp::Cos => sin_cos(p, a, pre, Trig::Cos),
                other => un(other, a),
            }
        }
        Expr::Bin(BinOp::Pow, a, b) => {
            let a = expand_expr(p, *a, pre)?;
            if p.lanes(&a) != 1 {
                return Err("Pow has no vector form".into());
            }
            let b = expand_expr(p, *b, pre)?;
            pow(p, a, b, pre)
        }
        other => other.try_map_children(|c| expand_expr(p, c, pre))?,
    })
}

/// Binds `e` to a fresh variable and returns a reference to it.
pub(crate) fn bind(p: &mut Program, e: Expr, pre: &mut Vec<Stmt>) -> Expr {
    if let Expr::Var(_) | Expr::F(..) | Expr::I(..) = e {
        return e;
    }
    let ty = p.ty(&e);
    let v = p.var(ty);
    pre.push(Stmt::Set(v, e));
    Expr::Var(v)
}

/// Horner evaluation of `c[0] + c[1] x + c[2] x² + …`.
fn poly(x: &Expr, c: &[f64], ty: Scalar) -> Expr {
    let mut acc = f(*c.last().expect("non-empty"), ty);
    for &k in c.iter().rev().skip(1) {
        acc = bin(BinOp::Add, bin(BinOp::Mul, acc, x.clone()), f(k, ty));
    }
    acc
}

/// The integer type with the float's width, and its exponent layout.
fn int_of(ty: Scalar) -> (Scalar, i64, i64) {
    match ty {
        Scalar::F64 => (Scalar::I64, 52, 1023),
        _ => (Scalar::I32, 23, 127),
    }
}

/// 2ⁿ for an integral float `n` in the normal exponent range.
fn pow2(n: Expr, ty: Scalar) -> Expr {
    let (it, mant, bias) = int_of(ty);
    let bits = bin(
        BinOp::Shl,
        bin(BinOp::Add, cast(it, n), Expr::I(bias, it)),
        Expr::I(mant, it),
    );
    Expr::Bitcast(ty, Box::new(bits))
}

mod exp_log;
mod hyperbolic;
mod trig;

use exp_log::{erf, exp, log, pow};
pub use exp_log::{exp_of, expm1, log1p};
use hyperbolic::tanh;
pub use hyperbolic::{acosh, asinh, atanh, sinh_cosh};
use trig::{Trig, sin_cos};
pub use trig::{acos, asin, atan, tan};

#[cfg(test)]
pub(crate) mod tests;
