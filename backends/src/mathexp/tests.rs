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
