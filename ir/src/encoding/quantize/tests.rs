//! Tests of the quantizers: byte for byte against the `gguf` package's
//! vectors (`tests/data/gguf/quantize/`, made by `scripts/gguf_fixtures.py`)
//! and ggml's compiled K-quant quantizers (`scripts/ggml_kquant_fixtures.sh`),
//! round-trip error bounds, fixed points, affine forms and the errors.

use super::*;
use crate::encoding::{Affine, AffineStorage, BlockFormat, Granularity, dequantize};
use crate::tensor::Tensor;

/// The formats whose quantizer is a closed form (no search for the best
/// scale): exactly those `gguf.quants.quantize` can quantize.
const CLOSED_FORM: [BlockFormat; 7] = [
    BlockFormat::Q8_0,
    BlockFormat::Q4_0,
    BlockFormat::Q4_1,
    BlockFormat::Q5_0,
    BlockFormat::Q5_1,
    BlockFormat::TQ1_0,
    BlockFormat::TQ2_0,
];

fn data(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/gguf/quantize/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A xorshift generator with normal samples (Box-Muller).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

fn block_type(f: BlockFormat, rows: usize, row: usize) -> TensorType {
    TensorType::encoded(DType::F32, vec![rows, row], Encoding::Block(f)).unwrap()
}

#[test]
fn block_quantizers_match_the_references_byte_for_byte() {
    let x = f32s(&data("input.f32"));
    let rows = x.len() / 256;
    assert!(rows >= 9, "the fixture has its nine kinds of rows");
    // gguf's vectors for the formats it quantizes, ggml's own (compiled C,
    // scripts/ggml_kquant_fixtures.sh) for the K-quants: all twelve.
    for f in BlockFormat::ALL {
        let want = data(&format!("{}.bin", f.name()));
        let got = quantize(&block_type(f, rows, 256), &x).unwrap();
        assert_eq!(got.len(), want.len(), "{f}");
        let per_row = want.len() / rows;
        for (b, (g, w)) in got
            .chunks_exact(f.block_bytes())
            .zip(want.chunks_exact(f.block_bytes()))
            .enumerate()
        {
            assert_eq!(
                g,
                w,
                "{f}: block {b} (input row {}) differs",
                b * f.block_bytes() / per_row
            );
        }
    }
}

#[test]
fn halves_match_numpy_and_gguf() {
    let x = f32s(&data("halves.f32"));
    for (dtype, file) in [(DType::F16, "f16.bin"), (DType::BF16, "bf16.bin")] {
        let want = data(file);
        let got = quantize(&TensorType::new(dtype, vec![x.len()]), &x).unwrap();
        assert_eq!(got.len(), want.len(), "{dtype}");
        for (i, (g, w)) in got.chunks_exact(2).zip(want.chunks_exact(2)).enumerate() {
            assert_eq!(g, w, "{dtype} of {:#010x} (element {i})", x[i].to_bits());
        }
    }
    // Dense f32 is the identity on the bits, NaN payloads included.
    let ty = TensorType::new(DType::F32, vec![x.len()]);
    let bytes = quantize(&ty, &x).unwrap();
    assert_eq!(
        f32s(&bytes).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

/// The largest round-trip error of a block format as a fraction of the
/// block's (super-block's) largest magnitude (its range for Q4_1/Q5_1), for
/// values the format can hold: half a quantization step, a whole one where ggml's rounding can
/// clip the extreme opposite the maximum (Q4_0, Q5_0), plus f16's relative
/// error on the scale and min (2^-11 of at most the block's magnitude, twice).
/// `check_round_trip` adds f16's absolute error for subnormal scales.
fn round_trip_bound(f: BlockFormat) -> f32 {
    let step = match f {
        BlockFormat::Q8_0 => 0.5 / 127.0,
        BlockFormat::Q4_0 => 1.0 / 8.0,
        BlockFormat::Q5_0 => 1.0 / 16.0,
        BlockFormat::Q4_1 => 0.5 / 15.0,
        BlockFormat::Q5_1 => 0.5 / 31.0,
        BlockFormat::TQ1_0 | BlockFormat::TQ2_0 => 0.5,
        // The K-quants search their sub-block scales for the least weighted
        // error, which can trade the largest error for the sum: these are
        // the worst errors over 192 super-blocks of normal data (0.34, 0.19,
        // 0.070, 0.059, 0.049 of the super-block's largest magnitude) with
        // half as much again for headroom.
        BlockFormat::Q2K => 0.5,
        BlockFormat::Q3K => 0.3,
        BlockFormat::Q4K => 0.1,
        BlockFormat::Q5K => 0.09,
        BlockFormat::Q6K => 0.075,
    };
    step + 2.0 * f32::powi(2.0, -11)
}

/// Checks `|dequantize(quantize(x)) - x| <= bound * m` per block, with `m` the
/// block's largest magnitude (or its range when `range` is set), plus
/// `2^-17`: a scale below f16's normal range is off by up to 2^-25, times
/// quants up to 127, and the min as much.
fn check_round_trip(f: BlockFormat, x: &[f32], bound: f32, range: bool) {
    let ty = block_type(f, 1, x.len());
    let y = dequantize(&ty, &quantize(&ty, x).unwrap()).unwrap();
    let y = y.as_slice::<f32>().unwrap();
    for (b, (xb, yb)) in x
        .chunks_exact(f.block_len())
        .zip(y.chunks_exact(f.block_len()))
        .enumerate()
    {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let lo = xb.iter().fold(f32::MAX, |m, &v| m.min(v));
        let hi = xb.iter().fold(f32::MIN, |m, &v| m.max(v));
        let m = if range { hi - lo } else { amax };
        for (i, (a, b_)) in xb.iter().zip(yb).enumerate() {
            let err = (a - b_).abs();
            assert!(
                err <= bound * m + f32::powi(2.0, -17),
                "{f} block {b} element {i}: {a} decodes to {b_}, error {err} > {bound} * {m}"
            );
        }
    }
}

#[test]
fn round_trips_are_bounded() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for f in BlockFormat::ALL {
        let range = matches!(f, BlockFormat::Q4_1 | BlockFormat::Q5_1);
        for scale in [1.0, 1e-3, 1e3] {
            let x = r.normals(4 * 256, scale);
            check_round_trip(f, &x, round_trip_bound(f), range);
        }
    }
}

/// Quantizing what a quantization decodes to gives the same bytes again for
/// the 32-element and ternary formats (not for the K-quants, whose searches
/// may settle elsewhere the second time): the decoded block's extreme is exactly
/// `q * d` with the stored f16 `d`, so the second pass finds the same scale
/// (an f16 value times a small integer and divided by it again is exact) and
/// every decoded value lands back on its quant.
#[test]
fn quantize_dequantize_quantize_is_a_fixed_point() {
    let mut r = Rng(7);
    for f in CLOSED_FORM {
        let ty = block_type(f, 2, 256);
        let x = r.normals(512, 0.1);
        let q = quantize(&ty, &x).unwrap();
        let y = dequantize(&ty, &q).unwrap();
        let q2 = quantize(&ty, y.as_slice::<f32>().unwrap()).unwrap();
        assert_eq!(q, q2, "{f}");
    }
}

#[test]
fn quantize_errors_are_typed() {
    let q8 = |shape: Vec<usize>| TensorType {
        dtype: DType::F32,
        shape,
        encoding: Encoding::Block(BlockFormat::Q8_0),
    };
    // Wrong value count.
    assert!(matches!(
        quantize(&q8(vec![2, 32]), &[0.0; 32]),
        Err(Error::Shape(msg)) if msg.contains("64 values, got 32")
    ));
    // Innermost dimension not a multiple of the block length.
    assert!(matches!(
        quantize(&q8(vec![48]), &[0.0; 48]),
        Err(Error::Encoding { msg, .. }) if msg.contains("48")
    ));
    // Non-finite values, with their index.
    let mut x = vec![0.5f32; 64];
    x[40] = f32::NAN;
    let err = quantize(&q8(vec![64]), &x).unwrap_err();
    assert_eq!(
        err.to_string(),
        "encoding q8_0: element 40 is NaN, which it cannot hold; replace non-finite weights first"
    );
    x[40] = f32::NEG_INFINITY;
    assert!(matches!(
        quantize(&q8(vec![64]), &x),
        Err(Error::Encoding { .. })
    ));
    // A scale beyond f16: 127 * 65504 is about 8.3e6.
    x[40] = 1e7;
    let err = quantize(&q8(vec![64]), &x).unwrap_err();
    assert!(
        matches!(&err, Error::Encoding { msg, .. } if msg.starts_with("the block at element 32: its scale")),
        "{err}"
    );
    // Q4_1's min overflows on its own.
    let mut x = vec![-7e4f32; 32];
    x[0] = -6.9e4;
    assert!(matches!(
        quantize(&block_type(BlockFormat::Q4_1, 1, 32), &x),
        Err(Error::Encoding { msg, .. }) if msg.contains("its min")
    ));
    // Dense types other than f32/f16/bf16.
    assert!(matches!(
        quantize(&TensorType::new(DType::I8, vec![2]), &[1.0, 2.0]),
        Err(Error::Type(_))
    ));
    // Dense f16 and bf16 hold what blocks cannot.
    let inf = quantize(&TensorType::new(DType::F16, vec![2]), &[f32::INFINITY, 1e7]).unwrap();
    assert_eq!(inf, [0x00, 0x7c, 0x00, 0x7c]);
}

#[test]
fn tiny_blocks_decode_to_zeros() {
    // 1/d overflows for subnormal blocks: the scale stores as 0.
    let x: Vec<f32> = (0..256).map(|i| (i as f32 - 100.0) * 1e-41).collect();
    for f in BlockFormat::ALL {
        let ty = block_type(f, 1, 256);
        let y = dequantize(&ty, &quantize(&ty, &x).unwrap()).unwrap();
        assert!(
            y.as_slice::<f32>().unwrap().iter().all(|v| *v == 0.0),
            "{f}"
        );
    }
}

fn affine_type(
    storage: AffineStorage,
    granularity: Granularity,
    zero_point: bool,
    shape: Vec<usize>,
) -> TensorType {
    let a = Affine {
        storage,
        granularity,
        zero_point,
    };
    TensorType::encoded(DType::F32, shape, Encoding::Affine(a)).unwrap()
}

#[test]
fn affine_quantizers_pick_onnxruntime_scales() {
    use AffineStorage::*;
    use Granularity::*;
    // w8: symmetric i8 per output channel; scale 254/127 = 2, and the ties
    // 63.5 and 31.75 round half to even; the zero row gets scale 1.
    let ty = affine_type(I8, PerAxis { axis: 0 }, false, vec![2, 3]);
    let got = quantize(&ty, &[127.0, -254.0, 63.5, 0.0, 0.0, 0.0]).unwrap();
    let mut want = vec![64u8, (-127i8) as u8, 32, 0, 0, 0, 0, 0];
    want.extend(2f32.to_le_bytes());
    want.extend(1f32.to_le_bytes());
    assert_eq!(got, want);
    // u8 with a zero point: the range [-1, 3] maps to [0, 255], zero point
    // round(63.75) = 64.
    let ty = affine_type(U8, PerTensor, true, vec![3]);
    let got = quantize(&ty, &[-1.0, 0.0, 3.0]).unwrap();
    let mut want = vec![0u8, 64, 255, 0];
    want.extend((4f32 / 255.0).to_le_bytes());
    want.push(64);
    assert_eq!(got, want);
    // u4 blocks of 2 along axis 1 with zero points: blocks {0, 1.5} and {-3}.
    // The first: scale 1.5/15 = 0.1, zero point 0; the second: [-3, 0],
    // scale 0.2, zero point 15.
    let ty = affine_type(U4, PerBlock { axis: 1, block: 2 }, true, vec![1, 3]);
    let got = quantize(&ty, &[0.0, 1.5, -3.0]).unwrap();
    let mut want = vec![0xF0u8, 0x00, 0, 0];
    want.extend((1.5f32 / 15.0).to_le_bytes());
    want.extend((3f32 / 15.0).to_le_bytes());
    want.push(0xF0);
    assert_eq!(got, want);
    // Unsigned without a zero point saturates negatives to 0.
    let ty = affine_type(U8, PerTensor, false, vec![2]);
    let got = quantize(&ty, &[-1.0, 2.55]).unwrap();
    assert_eq!(&got[..2], &[0, 255]);
}

#[test]
fn affine_round_trips_are_within_half_a_step() {
    use Granularity::*;
    let mut r = Rng(3);
    let shape = vec![4, 6, 8];
    let x = r.normals(4 * 6 * 8, 2.0);
    let positive: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    for storage in AffineStorage::ALL {
        for granularity in [
            PerTensor,
            PerAxis { axis: 0 },
            PerAxis { axis: 2 },
            PerBlock { axis: 2, block: 3 },
            PerBlock { axis: 1, block: 4 },
        ] {
            for zero_point in [false, true] {
                let ty = affine_type(storage, granularity, zero_point, shape.clone());
                // Unsigned storage without zero points holds non-negative values.
                let x = if storage.is_signed() || zero_point {
                    &x
                } else {
                    &positive
                };
                let bytes = quantize(&ty, x).unwrap();
                assert_eq!(bytes.len(), ty.bytes().unwrap());
                let y = dequantize(&ty, &bytes).unwrap();
                let lay = match ty.encoding {
                    Encoding::Affine(a) => a,
                    _ => unreachable!(),
                };
                let scales = f32s(&bytes[lay.layout(&shape).unwrap().scales_offset..]);
                for (i, (a, b)) in x.iter().zip(y.as_slice::<f32>().unwrap()).enumerate() {
                    let s = scales[crate::encoding::dequant::affine_group(&lay, &shape, i)];
                    assert!(
                        (a - b).abs() <= s * 0.5001,
                        "{} element {i}: {a} vs {b} (scale {s})",
                        ty.encoding
                    );
                }
            }
        }
    }
}

#[test]
fn affine_refuses_non_finite_values() {
    let ty = affine_type(AffineStorage::I8, Granularity::PerTensor, false, vec![2]);
    assert!(matches!(
        quantize(&ty, &[1.0, f32::INFINITY]),
        Err(Error::Encoding { msg, .. }) if msg.starts_with("element 1 is inf")
    ));
    // The widest finite range still has a finite scale (computed in f64).
    let ty = affine_type(AffineStorage::U8, Granularity::PerTensor, true, vec![2]);
    let bytes = quantize(&ty, &[-3e38, 3e38]).unwrap();
    let y = dequantize(&ty, &bytes).unwrap();
    assert!(y.as_slice::<f32>().unwrap().iter().all(|v| v.is_finite()));
}

/// The affine integers are what the interpreter's ONNX `QuantizeLinear`
/// makes of the values with the scales and zero points the quantizer chose
/// (for the storage types the interpreter has: 8 and 16 bits).
#[test]
fn affine_integers_are_quantize_linear_of_the_chosen_scales() {
    use crate::ops::OpDef;
    use crate::ops::quant::{QAttrs, Quant};
    let mut r = Rng(11);
    let shape = vec![3, 4, 6];
    let x = r.normals(3 * 4 * 6, 1.5);
    let xt = Tensor::from_vec(shape.clone(), x.clone()).unwrap();
    let storages = [
        (AffineStorage::I8, DType::I8),
        (AffineStorage::U8, DType::U8),
        (AffineStorage::I16, DType::I16),
        (AffineStorage::U16, DType::U16),
    ];
    for (storage, dtype) in storages {
        for granularity in [
            Granularity::PerTensor,
            Granularity::PerAxis { axis: 1 },
            Granularity::PerBlock { axis: 2, block: 4 },
        ] {
            for zero_point in [false, true] {
                let a = Affine {
                    storage,
                    granularity,
                    zero_point,
                };
                let ty =
                    TensorType::encoded(DType::F32, shape.clone(), Encoding::Affine(a)).unwrap();
                let bytes = quantize(&ty, &x).unwrap();
                let lay = a.layout(&shape).unwrap();
                let (axis, block_size, scale_shape) = match granularity {
                    Granularity::PerTensor => (1, 0, vec![]),
                    Granularity::PerAxis { axis } => (axis as i64, 0, vec![shape[axis]]),
                    Granularity::PerBlock { axis, block } => {
                        let mut s = shape.clone();
                        s[axis] = s[axis].div_ceil(block);
                        (axis as i64, block, s)
                    }
                };
                let scales = f32s(&bytes[lay.scales_offset..lay.scales_offset + 4 * lay.groups]);
                let scales = Tensor::from_vec(scale_shape.clone(), scales).unwrap();
                // Without stored zero points, a zero one of the storage type
                // gives QuantizeLinear its output type.
                let zp_bytes = match lay.zero_points_offset {
                    Some(o) => bytes[o..].to_vec(),
                    None => vec![0; lay.groups * dtype.elem_bytes()],
                };
                let zp = Tensor::from_le_bytes(dtype, scale_shape, &zp_bytes).unwrap();
                let op = Quant::QuantizeLinear(QAttrs::new(axis, block_size, 21));
                let q = op
                    .eval(&[Some(&xt), Some(&scales), Some(&zp)])
                    .unwrap()
                    .remove(0);
                assert_eq!(
                    q.to_le_bytes(),
                    &bytes[..lay.values_bytes],
                    "{}",
                    ty.encoding
                );
            }
        }
    }
}
