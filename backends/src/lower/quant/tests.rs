//! The quant kernels run by the kernel-IR evaluator against the reference
//! interpreter: every output must be bit-identical.

use smelt_ir::ops::quant::{AutoPad, ConvAttrs, QAttrs, Quant};
use smelt_ir::{DType, OpDef, Tensor};

use super::lower;
use crate::eval::Eval;
use crate::kernel::{Buf, Program, Scalar, VectorShape};
use crate::lower::Operand;

mod gemm;

/// Lowers `q` on `ins` (absent optional operands are `None`), runs it and
/// compares every output's bytes with the interpreter's.
fn check(q: &Quant, ins: &[Option<&Tensor>]) {
    check_with(q, ins, &[], VectorShape::BASELINE);
}

/// [`check`] with the inputs numbered in `consts` constants of the program
/// (what selects the packed kernels) and the schedule sized for `shape`;
/// the program (lowered and verified) for a look at its form.
fn check_with(q: &Quant, ins: &[Option<&Tensor>], consts: &[usize], shape: VectorShape) -> Program {
    let want = q.eval(ins).expect("interpreter");
    let mut p = Program {
        shape,
        ..Program::default()
    };
    let ops: Vec<Option<Operand>> = ins
        .iter()
        .enumerate()
        .map(|(k, t)| {
            t.map(|t| {
                let buf = if consts.contains(&k) {
                    p.consts.push(t.to_le_bytes());
                    Buf::Const(p.consts.len() as u32 - 1)
                } else {
                    Buf::Input(k as u32)
                };
                Operand {
                    buf,
                    shape: t.shape().to_vec(),
                    ty: Scalar::of(t.dtype()).expect("scalar"),
                }
            })
        })
        .collect();
    let outs: Vec<Operand> = want
        .iter()
        .enumerate()
        .map(|(k, t)| Operand {
            buf: Buf::Output(k as u32),
            shape: t.shape().to_vec(),
            ty: Scalar::of(t.dtype()).expect("scalar"),
        })
        .collect();
    p.body = lower(q, &ops, &outs, &mut p).expect("lowers");
    let mut ev = Eval::new(&p);
    for (k, t) in ins.iter().enumerate() {
        if let Some(t) = t
            && !consts.contains(&k)
        {
            ev.mem.insert(Buf::Input(k as u32), t.to_le_bytes());
        }
    }
    for (k, t) in want.iter().enumerate() {
        ev.mem
            .insert(Buf::Output(k as u32), vec![0; t.to_le_bytes().len()]);
    }
    ev.mem.insert(
        Buf::Arena(p.scratch_base),
        vec![0; p.scratch_bytes as usize],
    );
    ev.run();
    for (k, t) in want.iter().enumerate() {
        let got = ev.mem.remove(&Buf::Output(k as u32)).expect("output");
        assert_eq!(got, t.to_le_bytes(), "{q:?} output {k}");
    }
    p
}

/// Deterministic floats in about ±4, with exact halves (ties) among them.
fn floats(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|k| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if k % 5 == 0 {
                (s % 17) as f32 * 0.5 - 4.0
            } else {
                (s % 20001) as f32 / 2500.0 - 4.0
            }
        })
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap()
}

/// Deterministic integers of type `d` across its range.
fn ints(shape: &[usize], d: DType, seed: i64) -> Tensor {
    let n: usize = shape.iter().product();
    let (lo, span) = match d {
        DType::U8 => (0, 256),
        DType::I8 => (-128, 256),
        DType::U16 => (0, 65536),
        DType::I16 => (-32768, 65536),
        _ => (-100_000, 200_000),
    };
    let v: Vec<i64> = (0..n as i64)
        .map(|k| lo + (k * 7919 + seed * 104_729).rem_euclid(span))
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap().cast(d)
}

fn scales(shape: &[usize], seed: u64) -> Tensor {
    let t = floats(shape, seed);
    let v: Vec<f32> = t
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.abs() * 0.01 + 0.003)
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap()
}

fn qattrs(axis: i64, block_size: usize) -> QAttrs {
    QAttrs::new(axis, block_size, 21)
}

#[test]
fn quantize_per_tensor_axis_and_blocked() {
    let x = floats(&[2, 6, 3], 1);
    let mut xs = x.as_slice::<f32>().unwrap().to_vec();
    xs[3] = f32::NAN;
    xs[4] = 1e30;
    xs[5] = -1e30;
    let x = Tensor::from_vec(vec![2, 6, 3], xs).unwrap();
    for d in [DType::U8, DType::I8, DType::U16, DType::I16] {
        let q = Quant::QuantizeLinear(qattrs(1, 0));
        let s = Tensor::scalar(0.5f32);
        check(&q, &[Some(&x), Some(&s), Some(&ints(&[], d, 3))]);
        check(&q, &[Some(&x), Some(&scales(&[], 2))]);
        let (s6, z6) = (scales(&[6], 4), ints(&[6], d, 5));
        check(&q, &[Some(&x), Some(&s6), Some(&z6)]);
        let q = Quant::QuantizeLinear(qattrs(1, 4));
        let (sb, zb) = (scales(&[2, 2, 3], 6), ints(&[2, 2, 3], d, 7));
        check(&q, &[Some(&x), Some(&sb), Some(&zb)]);
    }
    // An i32 input divides in f64.
    let q = Quant::QuantizeLinear(qattrs(1, 0));
    let xi = ints(&[4, 5], DType::I32, 1);
    check(&q, &[Some(&xi), Some(&Tensor::scalar(3.0f32))]);
    let empty = Tensor::zeros(DType::F32, vec![0, 3]).unwrap();
    check(&q, &[Some(&empty), Some(&Tensor::scalar(1.0f32))]);
}

#[test]
fn dequantize_per_tensor_axis_and_blocked() {
    for d in [DType::U8, DType::I8, DType::U16, DType::I16, DType::I32] {
        let x = ints(&[3, 4, 2], d, 1);
        let q = Quant::DequantizeLinear(qattrs(1, 0));
        check(&q, &[Some(&x), Some(&scales(&[], 1))]);
        check(
            &q,
            &[Some(&x), Some(&scales(&[], 2)), Some(&ints(&[], d, 2))],
        );
        check(
            &q,
            &[Some(&x), Some(&scales(&[4], 3)), Some(&ints(&[4], d, 3))],
        );
        let q = Quant::DequantizeLinear(qattrs(-2, 3));
        check(
            &q,
            &[
                Some(&x),
                Some(&scales(&[3, 2, 2], 4)),
                Some(&ints(&[3, 2, 2], d, 4)),
            ],
        );
    }
}

#[test]
fn dynamic_quantize_ranges() {
    let q = Quant::DynamicQuantizeLinear;
    let x = floats(&[3, 7], 9);
    check(&q, &[Some(&x)]);
    let pos: Vec<f32> = x
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.abs() + 1.0)
        .collect();
    check(
        &q,
        &[Some(&Tensor::from_vec(vec![21], pos.clone()).unwrap())],
    );
    let neg: Vec<f32> = pos.iter().map(|v| -v).collect();
    check(&q, &[Some(&Tensor::from_vec(vec![21], neg).unwrap())]);
    check(
        &q,
        &[Some(
            &Tensor::from_vec(vec![2], vec![f32::NAN, 1.0]).unwrap(),
        )],
    );
    check(&q, &[Some(&Tensor::zeros(DType::F32, vec![0]).unwrap())]);
}

#[test]
fn matmul_integer_zero_points() {
    let q = Quant::MatMulInteger;
    for (da, db) in [(DType::U8, DType::I8), (DType::I8, DType::U8)] {
        for (sa, sb) in [
            (vec![3, 4], vec![4, 5]),
            (vec![2, 3, 4], vec![4, 5]),
            (vec![2, 1, 3, 4], vec![3, 4, 5]),
            (vec![4], vec![4, 5]),
            (vec![3, 4], vec![4]),
        ] {
            let (a, b) = (ints(&sa, da, 1), ints(&sb, db, 2));
            check(&q, &[Some(&a), Some(&b)]);
            let (za, zb) = (ints(&[], da, 3), ints(&[], db, 4));
            check(&q, &[Some(&a), Some(&b), Some(&za), Some(&zb)]);
        }
        let (a, b) = (ints(&[2, 3, 4], da, 1), ints(&[4, 5], db, 2));
        let (za, zb) = (ints(&[3], da, 3), ints(&[5], db, 4));
        check(&q, &[Some(&a), Some(&b), Some(&za), Some(&zb)]);
        check(&q, &[Some(&a), Some(&b), None, Some(&zb)]);
    }
}

#[test]
fn qlinear_matmul_requantizes() {
    let q = Quant::QLinearMatMul;
    for (d, dy) in [
        (DType::U8, DType::U8),
        (DType::I8, DType::I8),
        (DType::U8, DType::I8),
    ] {
        for (sa, sb) in [(vec![3, 4], vec![4, 5]), (vec![2, 3, 4], vec![2, 4, 5])] {
            let (a, b) = (ints(&sa, d, 1), ints(&sb, d, 2));
            let m = sa[sa.len() - 2];
            let n = sb[sb.len() - 1];
            for per_axis in [false, true] {
                let (pa, pb): (Vec<usize>, Vec<usize>) = if per_axis {
                    (vec![m], vec![n])
                } else {
                    (vec![], vec![])
                };
                check(
                    &q,
                    &[
                        Some(&a),
                        Some(&scales(&pa, 1)),
                        Some(&ints(&pa, d, 3)),
                        Some(&b),
                        Some(&scales(&pb, 2)),
                        Some(&ints(&pb, d, 4)),
                        Some(&Tensor::scalar(0.7f32)),
                        Some(&ints(&[], dy, 5)),
                    ],
                );
            }
        }
    }
}

fn conv_attrs(pads: &[usize], strides: &[usize], group: usize) -> ConvAttrs {
    ConvAttrs {
        auto_pad: AutoPad::NotSet,
        kernel_shape: None,
        strides: Some(strides.to_vec()),
        dilations: None,
        pads: Some(pads.to_vec()),
        group,
    }
}

#[test]
fn conv_integer_padding_strides_groups() {
    for (pads, strides, group) in [
        (vec![0, 0, 0, 0], vec![1, 1], 1),
        (vec![1, 1, 1, 1], vec![1, 1], 1),
        (vec![1, 0, 2, 1], vec![2, 1], 2),
    ] {
        let q = Quant::ConvInteger(conv_attrs(&pads, &strides, group));
        let x = ints(&[2, 4, 5, 6], DType::U8, 1);
        let w = ints(&[6, 4 / group, 3, 3], DType::I8, 2);
        check(&q, &[Some(&x), Some(&w)]);
        let (zx, zw) = (ints(&[], DType::U8, 3), ints(&[6], DType::I8, 4));
        check(&q, &[Some(&x), Some(&w), Some(&zx), Some(&zw)]);
        check(
            &q,
            &[
                Some(&x),
                Some(&w),
                Some(&zx),
                Some(&ints(&[], DType::I8, 5)),
            ],
        );
    }
}

#[test]
fn qlinear_conv_bias_and_channels() {
    for (dx, dy) in [(DType::U8, DType::U8), (DType::I8, DType::I8)] {
        let q = Quant::QLinearConv(conv_attrs(&[1, 1, 1, 1], &[1, 2], 2));
        let x = ints(&[1, 4, 5, 6], dx, 1);
        let w = ints(&[4, 2, 3, 3], DType::I8, 2);
        let bias = ints(&[4], DType::I32, 3);
        for (sw, zw) in [
            (scales(&[], 1), ints(&[], DType::I8, 4)),
            (scales(&[4], 2), ints(&[4], DType::I8, 5)),
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
            check(&q, &base);
            let mut with_bias = base.to_vec();
            with_bias.push(Some(&bias));
            check(&q, &with_bias);
        }
    }
}
