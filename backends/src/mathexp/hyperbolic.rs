//! The hyperbolic functions and their inverses: `tanh`, `sinh`, `cosh`,
//! `asinh`, `acosh`, `atanh`.

use super::exp_log::{exp, log, log1p, log1p_from};
use super::{bind, poly};
use crate::kernel::build::{bin, cmp, f, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

pub(super) fn tanh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    // Small |x|: odd series x·(1 − x²/3 + 2x⁴/15 − …), no cancellation.
    let x2 = bind(p, bin(BinOp::Mul, x.clone(), x.clone()), pre);
    // Its coefficients from tanh' = 1 − tanh²: (2k+1)·a_k = [k = 0] −
    // Σ_{i+j=k−1} a_i·a_j; f64 needs 14 terms at |x| = 0.3, f32 8.
    let terms = if ty == Scalar::F64 { 14 } else { 8 };
    let mut series: Vec<f64> = Vec::with_capacity(terms);
    for k in 0..terms {
        let conv: f64 = (0..k).map(|i| series[i] * series[k - 1 - i]).sum();
        let one = if k == 0 { 1.0 } else { 0.0 };
        series.push((one - conv) / (2 * k + 1) as f64);
    }
    let small = bin(BinOp::Mul, x.clone(), poly(&x2, &series, ty));
    let e = exp(p, bin(BinOp::Mul, ax.clone(), f(2.0, ty)), pre);
    let large = bin(
        BinOp::Sub,
        f(1.0, ty),
        bin(BinOp::Div, f(2.0, ty), bin(BinOp::Add, e, f(1.0, ty))),
    );
    let signed = select(
        cmp(CmpOp::Lt, x.clone(), f(0.0, ty)),
        un(UnOp::Neg, large.clone()),
        large,
    );
    select(cmp(CmpOp::Lt, ax, f(0.3, ty)), small, signed)
}

/// `sinh` (`cosh` when `cosh` is set): an odd Taylor series for |x| < 1, else
/// `(eˣ ∓ e⁻ˣ)/2` from one `exp`, squared from e^{|x|/2} near overflow.
pub fn sinh_cosh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>, cosh: bool) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    let limit = if ty == Scalar::F64 { 709.0 } else { 88.0 };
    let huge = bind(p, cmp(CmpOp::Gt, ax.clone(), f(limit, ty)), pre);
    let arg = select(
        huge.clone(),
        bin(BinOp::Mul, ax.clone(), f(0.5, ty)),
        ax.clone(),
    );
    let e = exp(p, arg, pre);
    let e = bind(p, e, pre);
    let half_e = bind(p, bin(BinOp::Mul, f(0.5, ty), e.clone()), pre);
    let op = if cosh { BinOp::Add } else { BinOp::Sub };
    let normal = bin(op, half_e.clone(), bin(BinOp::Div, f(0.5, ty), e.clone()));
    let big = bin(BinOp::Mul, half_e, e);
    let large = bind(p, select(huge, big, normal), pre);
    if cosh {
        return large;
    }
    let terms = if ty == Scalar::F64 { 10 } else { 7 };
    let series: Vec<f64> = (0..terms)
        .map(|k| 1.0 / (1..=2 * k + 1).map(|v| v as f64).product::<f64>())
        .collect();
    let z = bind(p, bin(BinOp::Mul, x.clone(), x.clone()), pre);
    let small = bin(BinOp::Mul, x.clone(), poly(&z, &series, ty));
    let signed = select(
        cmp(CmpOp::Lt, x, f(0.0, ty)),
        un(UnOp::Neg, large.clone()),
        large,
    );
    select(cmp(CmpOp::Lt, ax, f(1.0, ty)), small, signed)
}

/// The `|x|` beyond which `x² + 1` is `x²` and `asinh`, `acosh` become
/// `log|x| + ln 2`.
fn huge_of(ty: Scalar) -> f64 {
    if ty == Scalar::F64 {
        268_435_456.0
    } else {
        4096.0
    }
}

/// `asinh` (fdlibm's formulation, one `log`).
pub fn asinh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let c = |v: f64| f(v, ty);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    let huge = bind(p, cmp(CmpOp::Gt, ax.clone(), c(huge_of(ty))), pre);
    let x2 = bind(p, bin(BinOp::Mul, ax.clone(), ax.clone()), pre);
    let sq = bind(p, un(UnOp::Sqrt, bin(BinOp::Add, x2.clone(), c(1.0))), pre);
    let small = bind(p, cmp(CmpOp::Le, ax.clone(), c(2.0)), pre);
    // |x| ≤ 2: log1p(|x| + x²/(1 + √(1+x²))).
    let u = bind(
        p,
        bin(
            BinOp::Add,
            ax.clone(),
            bin(BinOp::Div, x2, bin(BinOp::Add, c(1.0), sq.clone())),
        ),
        pre,
    );
    // |x| > 2: log(|x| + ½/(√(x²+1) + |x|)) + ln 2.
    let big_w = select(
        huge,
        ax.clone(),
        bin(
            BinOp::Add,
            ax.clone(),
            bin(BinOp::Div, c(0.5), bin(BinOp::Add, sq, ax.clone())),
        ),
    );
    let w = bind(
        p,
        select(small.clone(), bin(BinOp::Add, c(1.0), u.clone()), big_w),
        pre,
    );
    let l = log(p, w.clone(), pre);
    let l = bind(p, l, pre);
    let r = bind(
        p,
        select(
            small,
            log1p_from(u, w, l.clone(), ty),
            bin(BinOp::Add, l, c(std::f64::consts::LN_2)),
        ),
        pre,
    );
    select(cmp(CmpOp::Lt, x, c(0.0)), un(UnOp::Neg, r.clone()), r)
}

/// `acosh` (fdlibm's formulation, one `log`; NaN below 1).
pub fn acosh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let c = |v: f64| f(v, ty);
    let x = bind(p, x, pre);
    let huge = bind(p, cmp(CmpOp::Gt, x.clone(), c(huge_of(ty))), pre);
    let small = bind(p, cmp(CmpOp::Le, x.clone(), c(2.0)), pre);
    // x ≤ 2: t = x − 1, log1p(t + √(2t + t²)).
    let t = bind(p, bin(BinOp::Sub, x.clone(), c(1.0)), pre);
    let u = bind(
        p,
        bin(
            BinOp::Add,
            t.clone(),
            un(
                UnOp::Sqrt,
                bin(
                    BinOp::Add,
                    bin(BinOp::Mul, c(2.0), t.clone()),
                    bin(BinOp::Mul, t.clone(), t),
                ),
            ),
        ),
        pre,
    );
    // x > 2: log(x − ½/(x + √(x²−1))) + ln 2.
    let sq = un(
        UnOp::Sqrt,
        bin(BinOp::Sub, bin(BinOp::Mul, x.clone(), x.clone()), c(1.0)),
    );
    let big_w = select(
        huge,
        x.clone(),
        bin(
            BinOp::Sub,
            x.clone(),
            bin(BinOp::Div, c(0.5), bin(BinOp::Add, x.clone(), sq)),
        ),
    );
    let w = bind(
        p,
        select(small.clone(), bin(BinOp::Add, c(1.0), u.clone()), big_w),
        pre,
    );
    let l = log(p, w.clone(), pre);
    let l = bind(p, l, pre);
    let r = select(
        small,
        log1p_from(u, w, l.clone(), ty),
        bin(BinOp::Add, l, c(std::f64::consts::LN_2)),
    );
    select(cmp(CmpOp::Lt, x, c(1.0)), c(f64::NAN), r)
}

/// `atanh x = ½·log1p(2|x|/(1−|x|))` (fdlibm's two forms), signed.
pub fn atanh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let c = |v: f64| f(v, ty);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    let t = bind(p, bin(BinOp::Add, ax.clone(), ax.clone()), pre);
    let om = bind(p, bin(BinOp::Sub, c(1.0), ax.clone()), pre);
    let u = select(
        cmp(CmpOp::Lt, ax, c(0.5)),
        bin(
            BinOp::Add,
            t.clone(),
            bin(
                BinOp::Div,
                bin(BinOp::Mul, t.clone(), ax_of(&x)),
                om.clone(),
            ),
        ),
        bin(BinOp::Div, t, om),
    );
    let l = log1p(p, u, pre);
    let r = bind(p, bin(BinOp::Mul, c(0.5), l), pre);
    select(cmp(CmpOp::Lt, x, c(0.0)), un(UnOp::Neg, r.clone()), r)
}

fn ax_of(x: &Expr) -> Expr {
    un(UnOp::Abs, x.clone())
}
