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

use crate::kernel::build::{bin, cast, cmp, f, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

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

fn exp(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
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

fn log(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
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

fn tanh(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
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

fn erf(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
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

fn pow(p: &mut Program, x: Expr, y: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let y = bind(p, y, pre);
    let lx = log(p, un(UnOp::Abs, x.clone()), pre);
    let e = exp(p, bin(BinOp::Mul, y.clone(), lx), pre);
    let mag = bind(p, e, pre);
    // Negative base: defined for integral y, negative for odd y.
    let is_int = cmp(CmpOp::Eq, un(UnOp::Floor, y.clone()), y.clone());
    let half = bin(BinOp::Mul, y.clone(), f(0.5, ty));
    let is_odd = cmp(CmpOp::Ne, un(UnOp::Floor, half.clone()), half);
    let neg = select(
        is_int,
        select(is_odd, un(UnOp::Neg, mag.clone()), mag.clone()),
        f(f64::NAN, ty),
    );
    let r = select(cmp(CmpOp::Lt, x.clone(), f(0.0, ty)), neg, mag);
    // x⁰ = 1 for every x, NaN included.
    select(cmp(CmpOp::Eq, y, f(0.0, ty)), f(1.0, ty), r)
}

// ---------------------------------------------------------------------------
// Trigonometric functions.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trig {
    Sin,
    Cos,
    Tan,
}

/// Cody–Waite reduction `x = j·π/2 + r` with |r| ≤ π/4 (for |x| < 1e4; the
/// pieces of π/2 are short enough that every `j·piece` is exact there).
/// Returns `r` and `j mod 4` as an `I32`.
fn reduce_pio2(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> (Expr, Expr) {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let j = bind(
        p,
        un(
            UnOp::Nearest,
            bin(BinOp::Mul, x.clone(), f(std::f64::consts::FRAC_2_PI, ty)),
        ),
        pre,
    );
    // f64: fdlibm's 33 + 33 + 53-bit split; f32: 8, 10 and 11-bit pieces and
    // a 24-bit tail (57 bits of π/2 in all).
    let pieces: &[f64] = if ty == Scalar::F64 {
        &[
            1.570_796_326_734_125_6,
            6.077_100_506_303_966e-11,
            2.022_266_248_795_950_6e-21,
        ]
    } else {
        &[
            1.570_312_5,
            4.837_512_969_970_703e-4,
            7.549_533_620_476_723e-8,
            2.563_344_068_257_089_6e-12,
        ]
    };
    let mut r = x;
    for &c in pieces {
        r = bin(BinOp::Sub, r, bin(BinOp::Mul, j.clone(), f(c, ty)));
    }
    let r = bind(p, r, pre);
    let q = bind(p, cast(Scalar::I32, j), pre);
    (r, q)
}

/// sin(r) and cos(r) for |r| ≤ π/4: minimax polynomials (fdlibm's kernels
/// for f64, Cephes' for f32).
fn sin_cos_kernel(p: &mut Program, r: &Expr, pre: &mut Vec<Stmt>) -> (Expr, Expr) {
    let ty = p.ty(r);
    let (sc, cc): (&[f64], &[f64]) = if ty == Scalar::F64 {
        (
            &[
                -1.666_666_666_666_663_2e-1,
                8.333_333_333_322_49e-3,
                -1.984_126_982_985_795e-4,
                2.755_731_370_707_006_8e-6,
                -2.505_076_025_340_686_3e-8,
                1.589_690_995_211_55e-10,
            ],
            &[
                4.166_666_666_666_66e-2,
                -1.388_888_888_887_411e-3,
                2.480_158_728_947_673e-5,
                -2.755_731_435_139_066_3e-7,
                2.087_572_321_298_175e-9,
                -1.135_964_755_778_819_5e-11,
            ],
        )
    } else {
        (
            &[-1.666_665_461_1e-1, 8.332_160_873_6e-3, -1.951_529_589_1e-4],
            &[
                4.166_664_568_298_827e-2,
                -1.388_731_625_493_765e-3,
                2.443_315_711_809_948e-5,
            ],
        )
    };
    let z = bind(p, bin(BinOp::Mul, r.clone(), r.clone()), pre);
    let s = bin(
        BinOp::Add,
        r.clone(),
        bin(
            BinOp::Mul,
            bin(BinOp::Mul, r.clone(), z.clone()),
            poly(&z, sc, ty),
        ),
    );
    // cos = 1 − z/2 + z²·P(z), with 1 − z/2 split so no bits are lost.
    let hz = bind(p, bin(BinOp::Mul, z.clone(), f(0.5, ty)), pre);
    let w = bind(p, bin(BinOp::Sub, f(1.0, ty), hz.clone()), pre);
    let tail = bin(
        BinOp::Add,
        bin(BinOp::Sub, bin(BinOp::Sub, f(1.0, ty), w.clone()), hz),
        bin(
            BinOp::Mul,
            bin(BinOp::Mul, z.clone(), z.clone()),
            poly(&z, cc, ty),
        ),
    );
    let c = bin(BinOp::Add, w, tail);
    (bind(p, s, pre), bind(p, c, pre))
}

fn sin_cos(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>, which: Trig) -> Expr {
    let (r, q) = reduce_pio2(p, x, pre);
    let (s, c) = sin_cos_kernel(p, &r, pre);
    let q = match which {
        // cos x = sin(x + π/2): one quadrant further.
        Trig::Cos => bin(BinOp::Add, q, Expr::I(1, Scalar::I32)),
        Trig::Sin | Trig::Tan => q,
    };
    let q = bind(p, q, pre);
    let odd = cmp(
        CmpOp::Ne,
        bin(BinOp::And, q.clone(), Expr::I(1, Scalar::I32)),
        Expr::I(0, Scalar::I32),
    );
    if which == Trig::Tan {
        return select(
            odd,
            un(UnOp::Neg, bin(BinOp::Div, c.clone(), s.clone())),
            bin(BinOp::Div, s, c),
        );
    }
    let neg = cmp(
        CmpOp::Ne,
        bin(BinOp::And, q, Expr::I(2, Scalar::I32)),
        Expr::I(0, Scalar::I32),
    );
    let v = bind(p, select(odd, c, s), pre);
    select(neg, un(UnOp::Neg, v.clone()), v)
}

/// `tan x` (same reduction as sin and cos; 3 ulp for |x| < 1e4).
pub fn tan(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    sin_cos(p, x, pre, Trig::Tan)
}

/// `atan x`: reduction to |x| ≤ tan(π/8) (f32) or 0.66 (f64) and Cephes'
/// polynomial (f32) or rational (f64) approximation.
pub fn atan(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let ax = bind(p, un(UnOp::Abs, x.clone()), pre);
    let c = |v: f64| f(v, ty);
    let (pio2, pio4) = (std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_4);
    let big = bind(p, cmp(CmpOp::Gt, ax.clone(), c(2.414_213_562_373_095)), pre);
    let mid_at = if ty == Scalar::F64 {
        0.66
    } else {
        0.414_213_562_373_095
    };
    let mid = bind(p, cmp(CmpOp::Gt, ax.clone(), c(mid_at)), pre);
    let xr = bind(
        p,
        select(
            big.clone(),
            bin(BinOp::Div, c(-1.0), ax.clone()),
            select(
                mid.clone(),
                bin(
                    BinOp::Div,
                    bin(BinOp::Sub, ax.clone(), c(1.0)),
                    bin(BinOp::Add, ax.clone(), c(1.0)),
                ),
                ax.clone(),
            ),
        ),
        pre,
    );
    let y0 = select(big.clone(), c(pio2), select(mid.clone(), c(pio4), c(0.0)));
    let z = bind(p, bin(BinOp::Mul, xr.clone(), xr.clone()), pre);
    let r = if ty == Scalar::F64 {
        let pc = [
            -6.485_021_904_942_025e1,
            -1.228_866_684_490_136_2e2,
            -7.500_855_792_314_705e1,
            -1.615_753_718_733_365e1,
            -8.750_608_600_031_904e-1,
        ];
        let qc = [
            1.945_506_571_482_614e2,
            4.853_903_996_359_137e2,
            4.328_810_604_912_902_7e2,
            1.650_270_098_316_988_6e2,
            2.485_846_490_142_306_4e1,
            1.0,
        ];
        let zz = bin(
            BinOp::Div,
            bin(BinOp::Mul, z.clone(), poly(&z, &pc, ty)),
            poly(&z, &qc, ty),
        );
        let more = 6.123_233_995_736_766e-17;
        let extra = select(big, c(more), select(mid, c(0.5 * more), c(0.0)));
        bin(
            BinOp::Add,
            bin(BinOp::Add, bin(BinOp::Mul, xr.clone(), zz), xr.clone()),
            extra,
        )
    } else {
        let pc = [
            -3.333_294_915_39e-1,
            1.997_771_064_78e-1,
            -1.387_768_560_32e-1,
            8.053_744_495_38e-2,
        ];
        bin(
            BinOp::Add,
            bin(
                BinOp::Mul,
                bin(BinOp::Mul, poly(&z, &pc, ty), z.clone()),
                xr.clone(),
            ),
            xr.clone(),
        )
    };
    let y = bind(p, bin(BinOp::Add, y0, r), pre);
    select(cmp(CmpOp::Lt, x, c(0.0)), un(UnOp::Neg, y.clone()), y)
}

/// `asin x = atan(x / √((1−x)(1+x)))`.
pub fn asin(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let d = un(
        UnOp::Sqrt,
        bin(
            BinOp::Mul,
            bin(BinOp::Sub, f(1.0, ty), x.clone()),
            bin(BinOp::Add, f(1.0, ty), x.clone()),
        ),
    );
    atan(p, bin(BinOp::Div, x, d), pre)
}

/// `acos x = 2·atan(√((1−x)/(1+x)))`.
pub fn acos(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&x);
    let x = bind(p, x, pre);
    let t = un(
        UnOp::Sqrt,
        bin(
            BinOp::Div,
            bin(BinOp::Sub, f(1.0, ty), x.clone()),
            bin(BinOp::Add, f(1.0, ty), x),
        ),
    );
    let a = atan(p, t, pre);
    bin(BinOp::Mul, f(2.0, ty), a)
}

// ---------------------------------------------------------------------------
// exp/log relatives and hyperbolic functions.

/// `log(1 + u)` accurate for small `u` (Kahan: `log(w)·u/(w−1)`, w = 1+u).
pub fn log1p(p: &mut Program, u: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let ty = p.ty(&u);
    let u = bind(p, u, pre);
    let w = bind(p, bin(BinOp::Add, f(1.0, ty), u.clone()), pre);
    let l = log(p, w.clone(), pre);
    log1p_from(u, w, l, ty)
}

/// Finishes `log1p(u)` given `w = 1 + u` and `l = log(w)`.
fn log1p_from(u: Expr, w: Expr, l: Expr, ty: Scalar) -> Expr {
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

#[cfg(test)]
pub(crate) mod tests {
    //! Each expansion, evaluated by a tiny kernel-IR interpreter with the
    //! same rounding as the generated code (f32 arithmetic rounds every
    //! operation), against Rust's std on many arguments; the bounds checked
    //! here are the ones in the module table.
    use super::*;

    pub(crate) use crate::eval::Eval;
    use crate::eval::{V, fround};

    /// Builds `r = build(x)` for a variable `x` of type `ty`, expands it and
    /// returns an evaluator of it.
    fn compile(
        ty: Scalar,
        build: impl FnOnce(&mut Program, Expr, &mut Vec<Stmt>) -> Expr,
    ) -> impl Fn(f64) -> f64 {
        let mut p = Program::default();
        let x = p.var(ty);
        let mut pre = Vec::new();
        let e = build(&mut p, Expr::Var(x), &mut pre);
        let r = p.var(ty);
        pre.push(Stmt::Set(r, e));
        p.body = pre;
        expand(&mut p).expect("expands");
        move |v: f64| {
            let mut ev = Eval::new(&p);
            ev.set(x, V::F(fround(v, ty)));
            ev.run();
            ev.var(r).f()
        }
    }

    /// The error of `got` in units in the last place of `want` (in `ty`).
    fn ulps(got: f64, want: f64, ty: Scalar) -> f64 {
        let want = fround(want, ty);
        if got == want || (got.is_nan() && want.is_nan()) {
            return 0.0;
        }
        if got.is_nan() || want.is_nan() || want.is_infinite() || got.is_infinite() {
            return f64::INFINITY;
        }
        let ulp = if ty == Scalar::F32 {
            let w = (want as f32).abs().max(f32::MIN_POSITIVE);
            (f32::from_bits(w.to_bits() + 1) - w) as f64
        } else {
            let w = want.abs().max(f64::MIN_POSITIVE);
            f64::from_bits(w.to_bits() + 1) - w
        };
        (got - want).abs() / ulp
    }

    /// Deterministic arguments: a uniform grid over `[lo, hi]` plus
    /// pseudo-random points (xorshift) and the ends.
    fn args(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..=n)
            .map(|k| lo + (hi - lo) * k as f64 / n as f64)
            .collect();
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.push(lo + (hi - lo) * (s >> 11) as f64 / (1u64 << 53) as f64);
        }
        v
    }

    #[track_caller]
    fn check(
        name: &str,
        ty: Scalar,
        build: impl FnOnce(&mut Program, Expr, &mut Vec<Stmt>) -> Expr,
        reference: impl Fn(f64) -> f64,
        xs: &[f64],
        max_ulps: f64,
    ) {
        let f = compile(ty, build);
        let mut worst = (0.0, 0.0);
        for &x in xs {
            let x = fround(x, ty);
            let e = ulps(f(x), reference(x), ty);
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(
            worst.0 <= max_ulps,
            "{name} ({ty:?}): {} ulp at x = {:e} (got {}, want {})",
            worst.0,
            worst.1,
            f(worst.1),
            reference(worst.1)
        );
    }

    fn both(
        name: &str,
        build: impl Fn(&mut Program, Expr, &mut Vec<Stmt>) -> Expr,
        reference: impl Fn(f64) -> f64,
        xs: &[f64],
        (u32_, u64_): (f64, f64),
    ) {
        check(name, Scalar::F32, &build, &reference, xs, u32_);
        check(name, Scalar::F64, &build, &reference, xs, u64_);
    }

    fn unop(op: UnOp) -> impl Fn(&mut Program, Expr, &mut Vec<Stmt>) -> Expr {
        move |_, x, _| un(op, x)
    }

    #[test]
    fn exp_and_log() {
        both(
            "exp",
            unop(UnOp::Exp),
            f64::exp,
            &args(-80.0, 80.0, 4000),
            (2.0, 4.0),
        );
        both(
            "exp",
            unop(UnOp::Exp),
            f64::exp,
            &args(-1.0, 1.0, 2000),
            (2.0, 4.0),
        );
        both(
            "log",
            unop(UnOp::Log),
            f64::ln,
            &args(1e-30, 1e30, 4000),
            (2.0, 4.0),
        );
        both(
            "log",
            unop(UnOp::Log),
            f64::ln,
            &args(0.5, 2.0, 4000),
            (2.0, 4.0),
        );
        both(
            "log",
            unop(UnOp::Log),
            f64::ln,
            &[0.0, -1.0, f64::INFINITY, f64::NAN],
            (0.0, 0.0),
        );
        both(
            "log",
            unop(UnOp::Log),
            f64::ln,
            &[1e-40, 1e-310, 3e-45],
            (2.0, 4.0),
        );
    }

    /// erf by its Maclaurin series (converges in f64 to ~1e-14 for |x| ≤ 3).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 3.0 {
            return if x.is_nan() {
                x
            } else {
                x.signum() * (1.0 - erfc_tail(x.abs()))
            };
        }
        let (mut term, mut sum, x2) = (x, x, x * x);
        for n in 1..120 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// erfc for x > 3 by its continued fraction (far below f32 resolution).
    fn erfc_tail(x: f64) -> f64 {
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        (-x * x).exp() / (std::f64::consts::PI.sqrt() * (x + f))
    }

    #[test]
    fn tanh_erf_pow() {
        both(
            "tanh",
            unop(UnOp::Tanh),
            f64::tanh,
            &args(-20.0, 20.0, 10000),
            (4.0, 4.0),
        );
        both(
            "tanh",
            unop(UnOp::Tanh),
            f64::tanh,
            &args(-0.5, 0.5, 10000),
            (4.0, 4.0),
        );
        for ty in [Scalar::F32, Scalar::F64] {
            let f = compile(ty, |_, x, _| un(UnOp::Erf, x));
            for x in args(-6.0, 6.0, 10000) {
                let x = fround(x, ty);
                let err = (f(x) - erf_ref(x)).abs();
                assert!(err < 2e-7, "erf ({ty:?}) off by {err:e} at {x}");
            }
        }
        // pow(x, y) for a few exponents, relative error against powf.
        for y in [-2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 7.5] {
            for ty in [Scalar::F32, Scalar::F64] {
                let f = compile(ty, move |_, x, _| bin(BinOp::Pow, x, f(y, ty)));
                for x in args(-10.0, 10.0, 2000) {
                    let x = fround(x, ty);
                    let e = ulps(f(x), x.powf(y), ty);
                    // exp∘log: the error of y·log|x| is scaled by its size.
                    let bound = 4.0 * (2.0 + (y * x.abs().ln()).abs());
                    assert!(
                        e <= bound || bound.is_nan(),
                        "pow ({ty:?}) {e} ulp at {x}^{y}"
                    );
                }
            }
        }
    }

    #[test]
    fn sin_cos_tan() {
        let xs = args(-1e4, 1e4, 20000);
        let small = args(-7.0, 7.0, 10000);
        for xs in [&xs, &small] {
            both("sin", unop(UnOp::Sin), f64::sin, xs, (2.0, 2.0));
            both("cos", unop(UnOp::Cos), f64::cos, xs, (2.0, 2.0));
            both("tan", tan, f64::tan, xs, (4.0, 4.0));
        }
        let special = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-30];
        both("sin", unop(UnOp::Sin), f64::sin, &special, (0.0, 0.0));
        both("cos", unop(UnOp::Cos), f64::cos, &special, (0.0, 0.0));
    }

    #[test]
    fn inverse_trig() {
        let unit = args(-1.0, 1.0, 10000);
        both("asin", asin, f64::asin, &unit, (3.0, 3.0));
        both("acos", acos, f64::acos, &unit, (3.0, 3.0));
        both(
            "atan",
            atan,
            f64::atan,
            &args(-50.0, 50.0, 10000),
            (3.0, 3.0),
        );
        both("atan", atan, f64::atan, &args(-1.0, 1.0, 10000), (3.0, 3.0));
        let special = [
            1.5,
            -1.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            -1.0,
            0.0,
        ];
        both("asin", asin, f64::asin, &special, (1.0, 1.0));
        both("acos", acos, f64::acos, &special, (1.0, 1.0));
        both("atan", atan, f64::atan, &special, (1.0, 1.0));
    }

    /// std's `acosh` is `ln(x + √(x−1)·√(x+1))`, which loses bits near 1.
    fn acosh_ref(x: f64) -> f64 {
        if x < 2.0 {
            let t = x - 1.0;
            (t + (2.0 * t + t * t).sqrt()).ln_1p()
        } else {
            x.acosh()
        }
    }

    // std's `atanh` of x near −1 rounds 2x/(1−x) next to −1 before `ln_1p`;
    // the references use the odd symmetry instead.
    #[test]
    fn hyperbolic() {
        let xs = args(-80.0, 80.0, 10000);
        let near = args(-3.0, 3.0, 10000);
        for xs in [&xs, &near] {
            both(
                "sinh",
                |p, x, pre| sinh_cosh(p, x, pre, false),
                f64::sinh,
                xs,
                (4.0, 4.0),
            );
            both(
                "cosh",
                |p, x, pre| sinh_cosh(p, x, pre, true),
                f64::cosh,
                xs,
                (4.0, 4.0),
            );
            both("asinh", asinh, f64::asinh, xs, (4.0, 4.0));
        }
        both(
            "sinh",
            |p, x, pre| sinh_cosh(p, x, pre, false),
            f64::sinh,
            &[89.0, 500.0, 710.0],
            (4.0, 4.0),
        );
        both(
            "acosh",
            acosh,
            acosh_ref,
            &args(1.0, 100.0, 10000),
            (4.0, 4.0),
        );
        both(
            "acosh",
            acosh,
            acosh_ref,
            &args(1.0, 3.0, 10000),
            (4.0, 4.0),
        );
        both(
            "acosh",
            acosh,
            acosh_ref,
            &[0.5, 1e10, 1e30, f64::INFINITY],
            (4.0, 4.0),
        );
        both(
            "atanh",
            atanh,
            |x: f64| x.abs().atanh().copysign(x),
            &args(-1.0, 1.0, 10000),
            (4.0, 4.0),
        );
        both(
            "asinh",
            asinh,
            f64::asinh,
            &[1e10, -1e30, f64::INFINITY, 1e-20],
            (4.0, 4.0),
        );
    }

    #[test]
    fn log1p_expm1() {
        both(
            "log1p",
            log1p,
            f64::ln_1p,
            &args(-0.999, 10.0, 10000),
            (3.0, 4.0),
        );
        both(
            "log1p",
            log1p,
            f64::ln_1p,
            &args(-1e-6, 1e-6, 1000),
            (3.0, 4.0),
        );
        both(
            "expm1",
            expm1,
            f64::exp_m1,
            &args(-20.0, 20.0, 10000),
            (4.0, 6.0),
        );
        both(
            "expm1",
            expm1,
            f64::exp_m1,
            &args(-1e-5, 1e-5, 1000),
            (4.0, 6.0),
        );
    }
}
