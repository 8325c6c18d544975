//! The decode builders against `smelt_ir::encoding::dequantize`: one kernel
//! program decodes a tensor of every block format, many affine forms and
//! dense f16/bf16 (special values included) into one f32 output, run by the
//! evaluator and, natively, by both code generators (as `difftest.rs` runs
//! its programs); every value must be the reference's bit for bit (a NaN
//! made by arithmetic matches any NaN: its payload is the hardware's).

use smelt_ir::DType;
use smelt_ir::encoding::{dequantize, quantize};

use super::*;
use crate::difftest::{Rng, run_both_bytes};
use crate::eval::Eval;
use crate::kernel::Stmt;
use crate::kernel::build::var;

/// Roughly normal (a sum of uniforms), enough to exercise the scales.
fn normal(r: &mut Rng) -> f32 {
    (0..4)
        .map(|_| (r.next() >> 40) as f32 / (1u64 << 24) as f32)
        .sum::<f32>()
        * 1.7
        - 3.4
}

fn random_bytes(r: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| (r.next() >> 32) as u8).collect()
}

/// One tensor to decode.
struct Case {
    ty: TensorType,
    bytes: Vec<u8>,
    /// Whether NaNs must match bit for bit (no arithmetic made them).
    exact_nan: bool,
}

fn encoded(shape: Vec<usize>, e: Encoding) -> TensorType {
    TensorType::encoded(DType::F32, shape, e).unwrap()
}

/// Every block format (two rows quantized from data, two of random bytes,
/// so every bit pattern of the scales and quants occurs), affine forms of
/// every storage type, granularity and zero-point choice, and dense f16 and
/// bf16 with zeros, subnormals, infinities and NaNs.
fn cases() -> Vec<Case> {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut cases = Vec::new();
    for f in BlockFormat::ALL {
        let k = if f.block_len() == 32 { 64 } else { 256 };
        let x: Vec<f32> = (0..2 * k).map(|_| normal(&mut r)).collect();
        let mut bytes = quantize(&encoded(vec![2, k], Encoding::Block(f)), &x).unwrap();
        let random = random_bytes(&mut r, bytes.len());
        bytes.extend(random);
        cases.push(Case {
            ty: encoded(vec![4, k], Encoding::Block(f)),
            bytes,
            exact_nan: false,
        });
    }
    let grans = [
        (vec![3, 8], Granularity::PerTensor),
        (vec![3, 8], Granularity::PerAxis { axis: 0 }),
        (vec![3, 8], Granularity::PerAxis { axis: 1 }),
        (vec![2, 3, 8], Granularity::PerBlock { axis: 2, block: 3 }),
        (vec![2, 3, 7], Granularity::PerBlock { axis: 1, block: 2 }),
    ];
    for storage in AffineStorage::ALL {
        for (shape, granularity) in &grans {
            for zero_point in [false, true] {
                let a = Affine {
                    storage,
                    granularity: *granularity,
                    zero_point,
                };
                let ty = encoded(shape.clone(), Encoding::Affine(a));
                let x: Vec<f32> = (0..ty.numel().unwrap()).map(|_| normal(&mut r)).collect();
                let bytes = quantize(&ty, &x).unwrap();
                cases.push(Case {
                    ty,
                    bytes,
                    exact_nan: false,
                });
            }
        }
    }
    let specials: [u16; 16] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e00,
        0x7c01, 0xfd23, 0x7f80, 0xff81, 0x0080,
    ];
    for dtype in [DType::F16, DType::BF16] {
        let mut bits: Vec<u8> = specials.iter().flat_map(|b| b.to_le_bytes()).collect();
        bits.extend(random_bytes(&mut r, 2 * 112));
        cases.push(Case {
            ty: TensorType::new(dtype, vec![8, 16]),
            bytes: bits,
            exact_nan: true,
        });
    }
    cases
}

/// The program decoding every case into consecutive stretches of output 0,
/// and the total element count.
fn decode_program(cases: &[Case]) -> (Program, usize) {
    let mut p = Program::default();
    let mut body = Vec::new();
    let mut off = 0usize;
    for (j, case) in cases.iter().enumerate() {
        p.consts.push(case.bytes.clone());
        let n = case.ty.numel().unwrap();
        let k_len = *case.ty.shape.last().unwrap();
        let (r, k) = (p.var(Scalar::I64), p.var(Scalar::I64));
        let value = decode_element(&mut p, &case.ty, Buf::Const(j as u32), var(r), var(k))
            .unwrap_or_else(|e| panic!("{}: {e}", case.ty));
        let index = add(i(off as i64), add(mul(var(r), i(k_len as i64)), var(k)));
        let store = Stmt::Store {
            buf: Buf::Output(0),
            index,
            value,
        };
        let row = Stmt::for_loop(k, i(0), i(k_len as i64), vec![store]);
        body.push(Stmt::for_loop(r, i(0), i((n / k_len) as i64), vec![row]));
        off += n;
    }
    p.body = body;
    (p, off)
}

/// Differences between `got` (all cases' values, in order) and the
/// reference, one line each.
fn differences(cases: &[Case], got: &[f32]) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut at = 0;
    for case in cases {
        let want = dequantize(&case.ty, &case.bytes).unwrap().cast(DType::F32);
        let want: &[f32] = want.as_slice::<f32>().unwrap();
        for (e, w) in want.iter().enumerate() {
            let g = got[at + e];
            let same = g.to_bits() == w.to_bits() || (!case.exact_nan && g.is_nan() && w.is_nan());
            if !same && diffs.len() < 20 {
                diffs.push(format!(
                    "{} element {e}: got {g:?} ({:#010x}), want {w:?} ({:#010x})",
                    case.ty,
                    g.to_bits(),
                    w.to_bits()
                ));
            }
        }
        at += want.len();
    }
    diffs
}

#[test]
fn the_evaluator_decodes_like_dequantize() {
    let cases = cases();
    let (p, n) = decode_program(&cases);
    let mut ev = Eval::new(&p);
    ev.mem.insert(Buf::Output(0), vec![0; 4 * n]);
    ev.run();
    let diffs = differences(&cases, &ev.f32s(Buf::Output(0)));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// The one f32 output (`n` elements) of `program` (no inputs) as each code
/// generator's native code computes it: `(backend, values)`; empty where
/// the native tests cannot run.
fn run_both(name: &str, program: Program, n: usize) -> Vec<(&'static str, Vec<f32>)> {
    run_both_bytes(name, program, 4 * n)
        .into_iter()
        .map(|(backend, out)| (backend, crate::schedule::gemm::f32s(&out)))
        .collect()
}

#[test]
fn both_code_generators_decode_like_dequantize() {
    let cases = cases();
    let (program, n) = decode_program(&cases);
    let mut failures = Vec::new();
    for (backend, got) in run_both("decode", program, n) {
        let diffs = differences(&cases, &got);
        if !diffs.is_empty() {
            failures.push(format!("{backend}:\n  {}", diffs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn per_block_form_splits_scale_and_quant() {
    // Q4_K element 40 of a row: sub-block 1 (32 elements), quant in 0..16,
    // value = d·sc·q - dmin·m with the offset present.
    let ty = encoded(vec![1, 256], Encoding::Block(BlockFormat::Q4K));
    assert_eq!(scale_group_len(&ty).unwrap(), 32);
    let x: Vec<f32> = (0..256).map(|v| (v as f32 * 0.37).sin()).collect();
    let bytes = quantize(&ty, &x).unwrap();
    let mut p = Program::default();
    p.consts.push(bytes.clone());
    let s = block_scale_min(&ty, Buf::Const(0), i(0), i(1)).unwrap();
    let q = block_quant(&ty, Buf::Const(0), i(0), i(40)).unwrap();
    assert!(s.offset.is_some());
    let mut ev = Eval::new(&p);
    let (scale, offset, q) = (
        ev.expr(&s.scale).f() as f32,
        ev.expr(s.offset.as_ref().unwrap()).f() as f32,
        ev.expr(&q).i(),
    );
    assert!((0..16).contains(&q), "{q}");
    let want = dequantize(&ty, &bytes).unwrap();
    let want: &[f32] = want.as_slice::<f32>().unwrap();
    assert_eq!((scale * q as f32 + offset).to_bits(), want[40].to_bits());
    // Affine per-axis-0 weights: one scale per row, the whole row long.
    let a = Affine {
        storage: AffineStorage::I8,
        granularity: Granularity::PerAxis { axis: 0 },
        zero_point: false,
    };
    let ty = encoded(vec![3, 8], Encoding::Affine(a));
    assert_eq!(scale_group_len(&ty).unwrap(), 8);
    // Dense tensors have no scales, and only float types decode.
    let dense = TensorType::new(DType::F16, vec![2, 4]);
    assert!(scale_group_len(&dense).is_err());
    assert!(block_quant(&dense, Buf::Const(0), i(0), i(0)).is_err());
    assert!(block_scale_min(&dense, Buf::Const(0), i(0), i(0)).is_err());
    let ints = TensorType::new(DType::I32, vec![2, 4]);
    assert!(decode_element(&mut p, &ints, Buf::Const(0), i(0), i(0)).is_err());
}

/// Weights of every block format, some affine forms (a short last group
/// included) and dense halves, `n` rows each.
fn matvec_weights(n: usize) -> Vec<TensorType> {
    let mut weights: Vec<TensorType> = BlockFormat::ALL
        .iter()
        .map(|&f| encoded(vec![n, 2 * f.block_len()], Encoding::Block(f)))
        .collect();
    for (storage, granularity, zero_point) in [
        (AffineStorage::I8, Granularity::PerAxis { axis: 0 }, false),
        (AffineStorage::U8, Granularity::PerTensor, true),
        (AffineStorage::I4, Granularity::PerAxis { axis: 1 }, false),
        (
            AffineStorage::U4,
            Granularity::PerBlock { axis: 1, block: 3 },
            true,
        ),
        (
            AffineStorage::I16,
            Granularity::PerBlock { axis: 0, block: 2 },
            true,
        ),
    ] {
        let a = Affine {
            storage,
            granularity,
            zero_point,
        };
        weights.push(encoded(vec![n, 8], Encoding::Affine(a)));
    }
    weights.push(TensorType::new(DType::F16, vec![n, 40]));
    weights.push(TensorType::new(DType::BF16, vec![n, 40]));
    weights
}

/// `encoded_matvec` against a dot product (in f64) with the weight as
/// `dequantize` decodes it. Tolerance: the kernel sums `k` products in f32
/// through at most `k + 3` roundings each (product, group sum, scale, group
/// total), each of relative size `2^-24` of at most `|x|·(|w| + |offset|)`;
/// for quantized data an offset (a block's min) is at most the block's
/// largest magnitude, so `|y - ref| <= (k + 3)·2^-24·Σ|x|·2·max|w|`.
#[test]
fn encoded_matvec_is_a_dot_product_with_the_decoded_weight() {
    let mut r = Rng(0x0123_4567_89ab_cdef);
    let (m, n) = (2, 3);
    let weights = matvec_weights(n);
    for ty in &weights {
        let k = ty.shape[1];
        let wx: Vec<f32> = (0..n * k).map(|_| normal(&mut r)).collect();
        let bytes = quantize(ty, &wx).unwrap();
        let w = dequantize(ty, &bytes).unwrap().cast(DType::F32);
        let w: &[f32] = w.as_slice::<f32>().unwrap();
        let x: Vec<f32> = (0..m * k).map(|_| normal(&mut r)).collect();
        let mut p = Program::default();
        p.consts.push(bytes);
        p.body = encoded_matvec(
            &mut p,
            Buf::Input(0),
            (Buf::Const(0), ty),
            Buf::Output(0),
            m,
            n,
            k,
        )
        .unwrap_or_else(|e| panic!("{ty}: {e}"));
        let mut ev = Eval::new(&p);
        ev.mem.insert(
            Buf::Input(0),
            x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        ev.mem.insert(Buf::Output(0), vec![0; 4 * m * n]);
        ev.run();
        let y = ev.f32s(Buf::Output(0));
        let wmax = w.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
        for a in 0..m {
            let xa = &x[a * k..a * k + k];
            let xsum: f64 = xa.iter().map(|v| f64::from(v.abs())).sum();
            let tol = (k + 3) as f64 * 2f64.powi(-24) * xsum * 2.0 * wmax;
            for b in 0..n {
                let want: f64 = xa
                    .iter()
                    .zip(&w[b * k..b * k + k])
                    .map(|(&p, &q)| f64::from(p) * f64::from(q))
                    .sum();
                let got = f64::from(y[a * n + b]);
                assert!(
                    (got - want).abs() <= tol,
                    "{ty} y[{a},{b}]: {got} vs {want} (tolerance {tol:e})"
                );
            }
        }
    }
    // A weight of the wrong shape is refused.
    let ty = encoded(vec![3, 32], Encoding::Block(BlockFormat::Q8_0));
    let mut p = Program::default();
    assert!(
        encoded_matvec(
            &mut p,
            Buf::Input(0),
            (Buf::Const(0), &ty),
            Buf::Output(0),
            1,
            3,
            64
        )
        .is_err()
    );
}

/// The native code of `encoded_matvec` (every weight type of
/// [`matvec_weights`], `x` as a constant) computes the evaluator's values
/// bit for bit: the same f32 operations in the same order.
#[test]
fn both_code_generators_run_encoded_matvec_like_the_evaluator() {
    let mut r = Rng(0x5555_0123_4567_89ab);
    let (m, n) = (2, 3);
    let mut p = Program::default();
    let mut total = 0;
    for ty in matvec_weights(n) {
        let k = ty.shape[1];
        let wx: Vec<f32> = (0..n * k).map(|_| normal(&mut r)).collect();
        let x: Vec<f32> = (0..m * k).map(|_| normal(&mut r)).collect();
        let c = p.consts.len() as u32;
        p.consts.push(quantize(&ty, &wx).unwrap());
        p.consts
            .push(x.iter().flat_map(|v| v.to_le_bytes()).collect());
        // Each product writes its own stretch of output 0 (stores shifted).
        let body = encoded_matvec(
            &mut p,
            Buf::Const(c + 1),
            (Buf::Const(c), &ty),
            Buf::Output(0),
            m,
            n,
            k,
        )
        .unwrap();
        p.body
            .extend(body.into_iter().map(|s| shift_stores(s, total as i64)));
        total += m * n;
    }
    let mut ev = Eval::new(&p);
    ev.mem.insert(Buf::Output(0), vec![0; 4 * total]);
    ev.run();
    let want = ev.f32s(Buf::Output(0));
    for (backend, got) in run_both("matvec", p, total) {
        for (e, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{backend} element {e}: {g} vs {w}"
            );
        }
    }
}

/// `s` with every store's index moved `by` elements further.
fn shift_stores(s: Stmt, by: i64) -> Stmt {
    match s {
        Stmt::Store { buf, index, value } => Stmt::Store {
            buf,
            index: add(i(by), index),
            value,
        },
        other => other.map_bodies(|body| body.into_iter().map(|s| shift_stores(s, by)).collect()),
    }
}
