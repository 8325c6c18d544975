//! Integer and float corner cases lowered, expanded and run by the
//! kernel-IR test evaluator, against the reference interpreter.

use super::*;
use crate::eval::{Eval, tensor_inputs, tensor_operands};
use crate::kernel::{Buf, Scalar};
use smelt_ir::ops::elementwise::{BinaryFn, Epilogue, UnaryFn};
use smelt_ir::{DType, OpDef, Tensor};

/// The integer dtypes, from the one list of dtypes.
fn int_dtypes() -> impl Iterator<Item = DType> {
    DType::ALL.into_iter().filter(|d| d.is_int())
}

/// Runs `e` natively (through the test evaluator) on `ins`.
fn native(e: &Elementwise, ins: &[&Tensor], out: DType) -> Vec<u8> {
    let mut p = Program::default();
    let ops = tensor_operands(ins);
    let ty = Scalar::of(out).expect("scalar");
    let o = Operand {
        buf: Buf::Output(0),
        shape: ins[0].shape().to_vec(),
        ty,
    };
    p.body = lower(e, &ops, std::slice::from_ref(&o), &mut p).expect("lowers");
    mathexp::expand(&mut p).expect("expands");
    let mut ev = Eval::new(&p);
    ev.mem.extend(tensor_inputs(ins));
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
    for d in int_dtypes() {
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
    for d in int_dtypes() {
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
    for d in int_dtypes() {
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
    let f32s =
        |v: &[f64]| Tensor::from_vec(vec![v.len()], v.iter().map(|&x| x as f32).collect()).unwrap();
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
    let ops = tensor_operands(ins);
    let o = Some(Operand {
        buf: Buf::Output(0),
        shape: want.shape().to_vec(),
        ty: Scalar::of(want.dtype()).expect("scalar"),
    });
    let op = Op::Fused(f.clone());
    p.body = super::super::lower_node(&op, &ops, &[o], &mut p).expect("lowers");
    let vectorized = crate::schedule::vectorize::vectorize(&mut p);
    let mut mem = tensor_inputs(ins);
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
                    Op::Linalg(Linalg::Gemm(GemmAttrs::new().with_trans(false, true))),
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
