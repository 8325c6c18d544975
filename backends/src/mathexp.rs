//! Expansion of math functions into kernel-IR arithmetic, shared by every
//! backend: no libm on the target, and the same polynomial wherever it runs.
//!
//! | function | method | error bound (checked by the tests against the interpreter) |
//! |---|---|---|
//! | `exp` | Cody–Waite reduction by ln 2, degree-7 (f32) / degree-13 (f64) Taylor on \|r\| ≤ ln2/2, two-step 2ⁿ scaling | 2 ulp (f32), 4 ulp (f64) |
//! | `log` | exponent split, atanh series in s = (m−1)/(m+1), m ∈ [√½, √2) | 2 ulp (f32), 4 ulp (f64) |
//! | `tanh` | odd Taylor series for \|x\| < 0.3, else 1 − 2/(e^{2\|x\|}+1) | 4 ulp |
//! | `erf` | Abramowitz–Stegun 7.1.26-style rational for f32; via `exp` | 2e-7 absolute (f32), 1e-7 absolute (f64) |
//! | `pow` | exp(y · log\|x\|) with the sign for integral y | as exp∘log |
//!
//! Each expansion binds its argument to a variable first, so the argument is
//! evaluated once; the statements are inserted just before the statement that
//! used the function.

use crate::kernel::build::{bin, cast, cmp, f, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

/// Rewrites every `Exp`, `Log`, `Tanh`, `Erf` and `Pow` of `p` into arithmetic.
/// Returns an error naming a function it cannot expand (`Sin`, `Cos` for now).
pub fn expand(p: &mut Program) -> Result<(), String> {
    let body = std::mem::take(&mut p.body);
    p.body = expand_stmts(p, body)?;
    Ok(())
}

fn expand_stmts(p: &mut Program, body: Vec<Stmt>) -> Result<Vec<Stmt>, String> {
    let mut out = Vec::with_capacity(body.len());
    for st in body {
        let mut pre = Vec::new();
        let st = match st {
            Stmt::Set(v, e) => Stmt::Set(v, expand_expr(p, e, &mut pre)?),
            Stmt::Store { buf, index, value } => {
                let index = expand_expr(p, index, &mut pre)?;
                Stmt::Store {
                    buf,
                    index,
                    value: expand_expr(p, value, &mut pre)?,
                }
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => {
                let start = expand_expr(p, start, &mut pre)?;
                let end = expand_expr(p, end, &mut pre)?;
                Stmt::For {
                    var,
                    start,
                    end,
                    body: expand_stmts(p, body)?,
                }
            }
            Stmt::If(c, t, e) => {
                let c = expand_expr(p, c, &mut pre)?;
                Stmt::If(c, expand_stmts(p, t)?, expand_stmts(p, e)?)
            }
            copy @ Stmt::Copy { .. } => copy,
        };
        out.extend(pre);
        out.push(st);
    }
    Ok(out)
}

fn expand_expr(p: &mut Program, e: Expr, pre: &mut Vec<Stmt>) -> Result<Expr, String> {
    Ok(match e {
        Expr::Un(op, a) => {
            let a = expand_expr(p, *a, pre)?;
            match op {
                UnOp::Exp => exp(p, a, pre),
                UnOp::Log => log(p, a, pre),
                UnOp::Tanh => tanh(p, a, pre),
                UnOp::Erf => erf(p, a, pre),
                UnOp::Sin | UnOp::Cos => return Err(format!("{op:?} has no native expansion yet")),
                other => un(other, a),
            }
        }
        Expr::Bin(BinOp::Pow, a, b) => {
            let a = expand_expr(p, *a, pre)?;
            let b = expand_expr(p, *b, pre)?;
            pow(p, a, b, pre)
        }
        Expr::Bin(op, a, b) => bin(op, expand_expr(p, *a, pre)?, expand_expr(p, *b, pre)?),
        Expr::Cmp(op, a, b) => cmp(op, expand_expr(p, *a, pre)?, expand_expr(p, *b, pre)?),
        Expr::Select(c, a, b) => select(
            expand_expr(p, *c, pre)?,
            expand_expr(p, *a, pre)?,
            expand_expr(p, *b, pre)?,
        ),
        Expr::Cast(t, a) => cast(t, expand_expr(p, *a, pre)?),
        Expr::Bitcast(t, a) => Expr::Bitcast(t, Box::new(expand_expr(p, *a, pre)?)),
        Expr::Load { buf, index, ty } => Expr::Load {
            buf,
            index: Box::new(expand_expr(p, *index, pre)?),
            ty,
        },
        leaf @ (Expr::F(..) | Expr::I(..) | Expr::Var(_)) => leaf,
    })
}

/// Binds `e` to a fresh variable and returns a reference to it.
fn bind(p: &mut Program, e: Expr, pre: &mut Vec<Stmt>) -> Expr {
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
    let series = [
        1.0,
        -1.0 / 3.0,
        2.0 / 15.0,
        -17.0 / 315.0,
        62.0 / 2835.0,
        -1382.0 / 155925.0,
        21844.0 / 6081075.0,
        -929569.0 / 638512875.0,
    ];
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
