//! The packed integer GEMM ([`super::super::gemm`]) against the
//! interpreter: constant weights, every vector shape the schedules size
//! tiles for, `K`, `N` and `M` not multiples of the vector or tile, `u8`
//! and `i8` operands, per-tensor and per-column parameters.

use smelt_ir::ops::quant::Quant;
use smelt_ir::{DType, Tensor};

use super::{check_with, ints, scales};
use crate::kernel::{Expr, Program, VectorShape};

/// The vector shapes of the baselines, AVX2 and AVX-512.
const SHAPES: [VectorShape; 3] = [
    VectorShape::BASELINE,
    VectorShape {
        f32_lanes: 8,
        registers: 16,
        fma: true,
    },
    VectorShape {
        f32_lanes: 16,
        registers: 32,
        fma: true,
    },
];

/// Whether the program multiplies with [`Expr::Dot`] (the packed kernel).
fn uses_dot(p: &Program) -> bool {
    let mut found = false;
    fn expr(e: &Expr, found: &mut bool) {
        *found |= matches!(e, Expr::Dot(..));
        e.for_each_child(|c| expr(c, found));
    }
    for s in &p.body {
        s.walk(&mut |s| s.for_each_expr(|e| expr(e, &mut found)));
    }
    found
}

#[test]
fn matmul_integer_packed() {
    let q = Quant::MatMulInteger;
    for shape in SHAPES {
        for (da, db) in [(DType::U8, DType::I8), (DType::I8, DType::U8)] {
            for (sa, n) in [(vec![9, 13], 37), (vec![2, 3, 4], 5), (vec![7], 70)] {
                let k = sa[sa.len() - 1];
                let (a, b) = (ints(&sa, da, 1), ints(&[k, n], db, 2));
                let p = check_with(&q, &[Some(&a), Some(&b)], &[1], shape);
                assert!(uses_dot(&p), "{shape:?} {sa:?} {n}");
                let (za, zb) = (ints(&[], da, 3), ints(&[], db, 4));
                let ins = [Some(&a), Some(&b), Some(&za), Some(&zb)];
                check_with(&q, &ins, &[1], shape);
                let zb = ints(&[n], db, 5);
                check_with(&q, &[Some(&a), Some(&b), None, Some(&zb)], &[1], shape);
            }
        }
    }
}

#[test]
fn qlinear_matmul_packed() {
    let q = Quant::QLinearMatMul;
    for shape in SHAPES {
        for (da, db, dy) in [
            (DType::U8, DType::U8, DType::U8),
            (DType::I8, DType::I8, DType::I8),
            (DType::U8, DType::I8, DType::I8),
            (DType::I8, DType::U8, DType::U8),
        ] {
            for (m, k, n) in [(5, 11, 19), (8, 64, 33), (1, 3, 2)] {
                let (a, b) = (ints(&[m, k], da, 1), ints(&[k, n], db, 2));
                for per_column in [false, true] {
                    let pb: Vec<usize> = if per_column { vec![n] } else { vec![] };
                    let (sb, zb) = (scales(&pb, 2), ints(&pb, db, 4));
                    let (sa, za) = (scales(&[], 1), ints(&[], da, 3));
                    let (sy, zy) = (Tensor::scalar(0.07f32), ints(&[], dy, 5));
                    let ins = [
                        Some(&a),
                        Some(&sa),
                        Some(&za),
                        Some(&b),
                        Some(&sb),
                        Some(&zb),
                        Some(&sy),
                        Some(&zy),
                    ];
                    let p = check_with(&q, &ins, &[3, 4, 5], shape);
                    assert!(uses_dot(&p), "{shape:?} {m}x{k}x{n}");
                }
            }
        }
    }
}

#[test]
fn conv_integer_packed() {
    for shape in SHAPES {
        for (pads, strides, xs, ws) in [
            (vec![1, 1, 1, 1], vec![1, 1], [2, 3, 5, 6], [6, 3, 3, 3]),
            (vec![0, 2, 1, 0], vec![2, 1], [1, 5, 7, 4], [19, 5, 2, 3]),
            (vec![0, 0, 0, 0], vec![1, 1], [1, 8, 3, 3], [4, 8, 1, 1]),
        ] {
            let q = Quant::ConvInteger(super::conv_attrs(&pads, &strides, 1));
            for (dx, dw) in [(DType::U8, DType::I8), (DType::I8, DType::U8)] {
                let (x, w) = (ints(&xs, dx, 1), ints(&ws, dw, 2));
                let p = check_with(&q, &[Some(&x), Some(&w)], &[1], shape);
                assert!(uses_dot(&p), "{shape:?} {xs:?} {ws:?}");
                let (zx, zw) = (ints(&[], dx, 3), ints(&[ws[0]], dw, 4));
                let ins = [Some(&x), Some(&w), Some(&zx), Some(&zw)];
                check_with(&q, &ins, &[1], shape);
            }
        }
    }
}

#[test]
fn qlinear_conv_packed() {
    for shape in SHAPES {
        let q = Quant::QLinearConv(super::conv_attrs(&[1, 1, 1, 1], &[1, 2], 1));
        for (dx, dw, dy) in [
            (DType::U8, DType::I8, DType::U8),
            (DType::I8, DType::I8, DType::I8),
            (DType::U8, DType::U8, DType::U8),
        ] {
            let x = ints(&[2, 3, 5, 7], dx, 1);
            let w = ints(&[21, 3, 3, 3], dw, 2);
            let bias = ints(&[21], DType::I32, 3);
            for (sw, zw) in [
                (scales(&[], 1), ints(&[], dw, 4)),
                (scales(&[21], 2), ints(&[21], dw, 5)),
            ] {
                let base = [
                    Some(&x),
                    Some(&Tensor::scalar(0.02f32)),
                    Some(&ints(&[], dx, 6)),
                    Some(&w),
                    Some(&sw),
                    Some(&zw),
                    Some(&Tensor::scalar(0.3f32)),
                    Some(&ints(&[], dy, 7)),
                ];
                let p = check_with(&q, &base, &[3], shape);
                assert!(uses_dot(&p), "{shape:?}");
                let mut with_bias = base.to_vec();
                with_bias.push(Some(&bias));
                check_with(&q, &with_bias, &[3, 8], shape);
            }
        }
    }
}
