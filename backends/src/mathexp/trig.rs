//! The trigonometric functions: `sin`, `cos` and `tan` over one Cody–Waite
//! reduction, `atan` and the `asin`, `acos` built on it.

use super::{bind, poly};
use crate::kernel::build::{bin, cast, cmp, f, select, un};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Trig {
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

pub(super) fn sin_cos(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>, which: Trig) -> Expr {
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
