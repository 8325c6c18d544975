//! `exp`, `log` and what is built from them: `pow`, `erf`, `log1p`,
//! `expm1`.

use super::{bind, int_of, poly, pow2};
use crate::kernel::build::{bin, cast, cmp, f, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

pub(super) fn exp(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let (lo, hi, coeffs): (f64, f64, Vec<f64>) = if ty == Scalar::F64 {
        (
            -746.0,
            710.0,
            (0..14)
                .map(|k| 1.0 / (1..=k).map(|v| v as f64).product::<f64>())
                .collect(),
        )
    } else {
        (
            -104.0,
            89.0,
            (0..8)
                .map(|k| 1.0 / (1..=k).map(|v| v as f64).product::<f64>())
                .collect(),
        )
    };
    let x = bind(
        p,
        bin(BinOp::Min, bin(BinOp::Max, x, f(lo, ty)), f(hi, ty)),
        pre,
    );
    let n = bind(
        p,
        un(
            UnOp::Nearest,
            bin(BinOp::Mul, x.clone(), f(std::f64::consts::LOG2_E, ty)),
        ),
        pre,
    );
    // ln 2 split so n · LN2_HI is exact for |n| < 2^11 (f64) / 2^8 (f32).
    let (ln2_hi, ln2_lo) = if ty == Scalar::F64 {
        (0.693_147_180_369_123_8, 1.908_214_929_270_587_7e-10)
    } else {
        (0.693_145_751_953_125, 1.428_606_765_330_187e-6)
    };
    let r = bind(
        p,
        bin(
            BinOp::Sub,
            bin(BinOp::Sub, x, bin(BinOp::Mul, n.clone(), f(ln2_hi, ty))),
            bin(BinOp::Mul, n.clone(), f(ln2_lo, ty)),
        ),
        pre,
    );
    let pr = bind(p, poly(&r, &coeffs, ty), pre);
    // Scale in two steps so 2ⁿ stays representable for subnormal results.
    let n1 = bind(
        p,
        un(UnOp::Floor, bin(BinOp::Mul, n.clone(), f(0.5, ty))),
        pre,
    );
    let n2 = bin(BinOp::Sub, n, n1.clone());
    bin(BinOp::Mul, bin(BinOp::Mul, pr, pow2(n1, ty)), pow2(n2, ty))
}

pub(super) fn log(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let (it, mant, bias) = int_of(ty);
    let x = bind(p, x, pre);
    // Subnormals: scale into the normal range first.
    let tiny = if ty == Scalar::F64 {
        f64::MIN_POSITIVE
    } else {
        f32::MIN_POSITIVE as f64
    };
    let scale_bits = mant as f64;
    let is_tiny = bind(p, cmp(CmpOp::Lt, x.clone(), f(tiny, ty)), pre);
    let xs = bind(
        p,
        select(
            is_tiny.clone(),
            bin(BinOp::Mul, x.clone(), f(2f64.powf(scale_bits), ty)),
            x.clone(),
        ),
        pre,
    );
    let bits = bind(p, Expr::Bitcast(it, Box::new(xs)), pre);
    let mant_mask = (1i64 << mant) - 1;
    // m in [1, 2): exponent bits replaced by the bias.
    let m = bind(
        p,
        Expr::Bitcast(
            ty,
            Box::new(bin(
                BinOp::Or,
                bin(BinOp::And, bits.clone(), Expr::I(mant_mask, it)),
                Expr::I(bias << mant, it),
            )),
        ),
        pre,
    );
    let e = bin(
        BinOp::Sub,
        bin(BinOp::Shr, bits, Expr::I(mant, it)),
        Expr::I(bias, it),
    );
    let e = bind(
        p,
        bin(
            BinOp::Sub,
            cast(ty, e),
            select(is_tiny, f(scale_bits, ty), f(0.0, ty)),
        ),
        pre,
    );
    // Move m into [√½, √2).
    let big = bind(
        p,
        cmp(CmpOp::Gt, m.clone(), f(std::f64::consts::SQRT_2, ty)),
        pre,
    );
    let m = bind(
        p,
        select(big.clone(), bin(BinOp::Mul, m.clone(), f(0.5, ty)), m),
        pre,
    );
    let e = bind(
        p,
        bin(BinOp::Add, e, select(big, f(1.0, ty), f(0.0, ty))),
        pre,
    );
    let s = bind(
        p,
        bin(
            BinOp::Div,
            bin(BinOp::Sub, m.clone(), f(1.0, ty)),
            bin(BinOp::Add, m, f(1.0, ty)),
        ),
        pre,
    );
    let s2 = bind(p, bin(BinOp::Mul, s.clone(), s.clone()), pre);
    let terms = if ty == Scalar::F64 { 12 } else { 6 };
    let coeffs: Vec<f64> = (0..terms).map(|k| 2.0 / (2 * k + 1) as f64).collect();
    let lm = bin(BinOp::Mul, s, poly(&s2, &coeffs, ty));
    let r = bind(
        p,
        bin(
            BinOp::Add,
            bin(BinOp::Mul, e, f(std::f64::consts::LN_2, ty)),
            lm,
        ),
        pre,
    );
    // Special values: log(0) = -inf, log(x<0) = NaN, log(inf) = inf, NaN stays.
    let r = select(
        cmp(CmpOp::Eq, x.clone(), f(0.0, ty)),
        f(f64::NEG_INFINITY, ty),
        r,
    );
    let r = select(cmp(CmpOp::Lt, x.clone(), f(0.0, ty)), f(f64::NAN, ty), r);
    let r = select(
        cmp(CmpOp::Eq, x.clone(), f(f64::INFINITY, ty)),
        x.clone(),
        r,
    );
    select(cmp(CmpOp::Ne, x.clone(), x.clone()), x, r)
}

pub(super) fn erf(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    // Small |x|: Maclaurin series 2/√π · Σ (-1)ⁿ x^(2n+1) / (n! (2n+1)).
    let x2 = bind(p, bin(BinOp::Mul, x.clone(), x.clone()), pre);
    let k = 2.0 / std::f64::consts::PI.sqrt();
    let series: Vec<f64> = (0..12)
        .map(|n| {
            let fact: f64 = (1..=n).map(|v| v as f64).product();
            k * if n % 2 == 0 { 1.0 } else { -1.0 } / (fact * (2 * n + 1) as f64)
        })
        .collect();
    let small = bin(BinOp::Mul, x.clone(), poly(&x2, &series, ty));
    // Large |x|: erfc via a continued-fraction-free rational (W. J. Cody's
    // erfc ≈ exp(-x²) · P(1/x)/x is long; this uses the A&S 7.1.28-style
    // t = 1/(1 + p|x|) form with coefficients of Numerical Recipes' erfcc,
    // relative error < 1.2e-7 everywhere).
    let t = bind(
        p,
        bin(
            BinOp::Div,
            f(1.0, ty),
            bin(
                BinOp::Add,
                f(1.0, ty),
                bin(BinOp::Mul, f(0.5, ty), ax.clone()),
            ),
        ),
        pre,
    );
    let c = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let arg = bin(
        BinOp::Add,
        un(UnOp::Neg, bin(BinOp::Mul, ax.clone(), ax.clone())),
        poly(&t, &c, ty),
    );
    let erfc = bin(BinOp::Mul, t, exp(p, arg, pre));
    let large = bin(BinOp::Sub, f(1.0, ty), erfc);
    let signed = select(
        cmp(CmpOp::Lt, x.clone(), f(0.0, ty)),
        un(UnOp::Neg, large.clone()),
        large,
    );
    let r = select(cmp(CmpOp::Lt, ax, f(0.5, ty)), small, signed);
    select(cmp(CmpOp::Ne, x.clone(), x.clone()), x, r)
}

/// `x^y` with the special cases of IEEE 754 / C `pow` (checked case by case
/// against the interpreter in `tests/semantics.rs`, listed in
/// `docs/semantics.md`): `x⁰ = 1` and `1^y = 1` even for NaN; otherwise NaN
/// propagates; `(±1)^±∞ = 1`, `|x|^±∞` is 0 or ∞ by whether |x| < 1; `±0`
/// and `±∞` bases give 0 or ∞ by the sign of `y`, signed when `y` is an odd
/// integer; a negative finite base with a non-integral `y` is NaN. The rest
/// is `exp(y · log|x|)`, negated for a negative base and odd `y`.
pub(super) fn pow(p: &mut Program, x: Expr, y: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let (it, _, _) = int_of(ty);
    let c = |v: f64| f(v, ty);
    let x = bind(p, x, pre);
    let y = bind(p, y, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    let lx = log(p, ax.clone(), pre);
    let e = exp(p, bin(BinOp::Mul, y.clone(), lx), pre);
    let mag = bind(p, e, pre);
    // Integral (±∞ included) and odd (±∞ excluded: y/2 is integral there).
    let is_int = bind(
        p,
        cmp(CmpOp::Eq, un(UnOp::Floor, y.clone()), y.clone()),
        pre,
    );
    let half = bind(p, bin(BinOp::Mul, y.clone(), c(0.5)), pre);
    let is_odd = bind(
        p,
        bin(
            BinOp::And,
            is_int.clone(),
            cmp(CmpOp::Ne, un(UnOp::Floor, half.clone()), half),
        ),
        pre,
    );
    // Infinite exponent: 1 for |x| = 1, else 0 or ∞ by |x| < 1 and y's sign.
    let y_inf = bind(
        p,
        cmp(CmpOp::Eq, un(UnOp::Abs, y.clone()), c(f64::INFINITY)),
        pre,
    );
    let y_neg = bind(p, cmp(CmpOp::Lt, y.clone(), c(0.0)), pre);
    let small = cmp(CmpOp::Lt, ax.clone(), c(1.0));
    let inf_exp = select(
        cmp(CmpOp::Eq, ax.clone(), c(1.0)),
        c(1.0),
        select(
            cmp(CmpOp::Ne, small, y_neg.clone()),
            c(0.0),
            c(f64::INFINITY),
        ),
    );
    // Zero or infinite base: ∞ when (x is 0) == (y < 0), else 0.
    let x_zero = bind(p, cmp(CmpOp::Eq, ax.clone(), c(0.0)), pre);
    let x_inf = bind(p, cmp(CmpOp::Eq, ax.clone(), c(f64::INFINITY)), pre);
    let edge = select(
        cmp(CmpOp::Eq, x_zero.clone(), y_neg),
        c(f64::INFINITY),
        c(0.0),
    );
    let m = select(
        y_inf,
        inf_exp,
        select(bin(BinOp::Or, x_zero, x_inf.clone()), edge, mag),
    );
    let m = bind(p, m, pre);
    // The base's sign bit (−0 and −∞ included) carries over for odd y.
    let x_signed = cmp(
        CmpOp::Lt,
        Expr::Bitcast(it, Box::new(x.clone())),
        Expr::I(0, it),
    );
    let r = select(
        bin(BinOp::And, x_signed, is_odd),
        un(UnOp::Neg, m.clone()),
        m,
    );
    // A negative finite base with a non-integral exponent has no real power.
    let no_real = bin(
        BinOp::And,
        cmp(CmpOp::Lt, x.clone(), c(0.0)),
        un(UnOp::Not, bin(BinOp::Or, is_int, x_inf)),
    );
    let r = select(no_real, c(f64::NAN), r);
    let any_nan = bin(
        BinOp::Or,
        cmp(CmpOp::Ne, x.clone(), x.clone()),
        cmp(CmpOp::Ne, y.clone(), y.clone()),
    );
    let r = select(any_nan, bin(BinOp::Add, x.clone(), y.clone()), r);
    // x⁰ = 1 and 1^y = 1 for every x and y, NaN included.
    select(
        bin(
            BinOp::Or,
            cmp(CmpOp::Eq, y, c(0.0)),
            cmp(CmpOp::Eq, x, c(1.0)),
        ),
        c(1.0),
        r,
    )
}

/// `log(1 + u)` accurate for small `u` (Kahan: `log(w)·u/(w−1)`, w = 1+u).
pub fn log1p(p: &mut Program, u: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&u);
    let u = bind(p, u, pre);
    let w = bind(p, bin(BinOp::Add, f(1.0, ty), u.clone()), pre);
    let l = log(p, w.clone(), pre);
    log1p_from(u, w, l, ty)
}

/// Finishes `log1p(u)` given `w = 1 + u` and `l = log(w)`.
pub(super) fn log1p_from(u: Expr, w: Expr, l: Expr, ty: Scalar) -> Expr {
    let r = bin(
        BinOp::Mul,
        l,
        bin(
            BinOp::Div,
            u.clone(),
            bin(BinOp::Sub, w.clone(), f(1.0, ty)),
        ),
    );
    select(
        cmp(CmpOp::Eq, w.clone(), f(1.0, ty)),
        u,
        select(cmp(CmpOp::Eq, w.clone(), f(f64::INFINITY, ty)), w, r),
    )
}

/// `exp(x) − 1` accurate for small `x` (Kahan: `(u−1)·x/log u`, u = eˣ).
pub fn expm1(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let u = exp(p, x.clone(), pre);
    let u = bind(p, u, pre);
    let um1 = bind(p, bin(BinOp::Sub, u.clone(), f(1.0, ty)), pre);
    let l = log(p, u.clone(), pre);
    let r = bin(BinOp::Div, bin(BinOp::Mul, um1.clone(), x.clone()), l);
    select(
        cmp(CmpOp::Eq, u.clone(), f(1.0, ty)),
        x,
        select(
            cmp(CmpOp::Eq, um1.clone(), f(-1.0, ty)),
            um1,
            select(cmp(CmpOp::Eq, u.clone(), f(f64::INFINITY, ty)), u, r),
        ),
    )
}

/// The exponential of any float expression (for lowerings that need `exp`
/// together with other expansions; `UnOp::Exp` is the same thing, expanded
/// later).
pub fn exp_of(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    exp(p, x, pre)
}
