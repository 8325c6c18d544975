//! Decoding encoded bytes to values: the reference for every encoding.
//!
//! Block formats follow ggml's `dequantize_row_*` operation for operation in
//! f32 (the same products in the same order, no fused multiply-add), so the
//! results are bit-identical to ggml's and to the `gguf` Python package's
//! (`tests/data/gguf/`, made by `scripts/gguf_fixtures.py`). Affine forms follow
//! ONNX `DequantizeLinear` as the interpreter's `Quant` op computes it:
//! `(f32(q) - f32(zero_point)) * scale` in f32.

use half::f16;

use super::{Affine, AffineStorage, BlockFormat, Encoding, Granularity};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::tensor::Tensor;

/// Decodes a tensor of type `ty` from its bytes (any encoding) to its values,
/// a dense tensor of the logical dtype and shape. Encoded tensors are decoded
/// in f32 and then cast to the logical dtype (a no-op for f32).
///
/// Errors when the byte count is not `ty.bytes()` or the type does not fit
/// its encoding.
pub fn dequantize(ty: &TensorType, bytes: &[u8]) -> Result<Tensor> {
    let want = ty.bytes()?;
    if bytes.len() != want {
        return Err(Error::Shape(format!(
            "a tensor of type {ty} needs {want} bytes, got {}",
            bytes.len()
        )));
    }
    let values = match ty.encoding {
        Encoding::Dense => return Tensor::from_le_bytes(ty.dtype, ty.shape.clone(), bytes),
        Encoding::Block(f) => {
            let mut out = Vec::with_capacity(ty.numel()?);
            for block in bytes.chunks_exact(f.block_bytes()) {
                decode_block(f, block, &mut out);
            }
            out
        }
        Encoding::Affine(a) => decode_affine(&a, &ty.shape, bytes)?,
    };
    Ok(Tensor::from_vec(ty.shape.clone(), values)?.cast(ty.dtype))
}

/// The f16 at `b[off..off + 2]` (little-endian) as f32 (exact).
fn half_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// Appends the `f.block_len()` values of one block (`b` is exactly
/// `f.block_bytes()` long: `chunks_exact` guarantees it, so the fixed
/// offsets below stay in bounds).
fn decode_block(f: BlockFormat, b: &[u8], out: &mut Vec<f32>) {
    match f {
        BlockFormat::Q8_0 => {
            let d = half_at(b, 0);
            out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
        }
        BlockFormat::Q4_0 => {
            let d = half_at(b, 0);
            let qs = &b[2..18];
            out.extend(qs.iter().map(|&q| (i32::from(q & 0xF) - 8) as f32 * d));
            out.extend(qs.iter().map(|&q| (i32::from(q >> 4) - 8) as f32 * d));
        }
        BlockFormat::Q4_1 => {
            let (d, m) = (half_at(b, 0), half_at(b, 2));
            let qs = &b[4..20];
            out.extend(qs.iter().map(|&q| f32::from(q & 0xF) * d + m));
            out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
        }
        BlockFormat::Q5_0 | BlockFormat::Q5_1 => {
            // Q5_0: d, qh, qs, x = (q - 16) d; Q5_1: d, m, qh, qs, x = q d + m.
            let q51 = f == BlockFormat::Q5_1;
            let d = half_at(b, 0);
            let (m, at) = if q51 { (half_at(b, 2), 4) } else { (0.0, 2) };
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let qs = &b[at + 4..at + 20];
            let value = |q: u32| {
                if q51 {
                    q as f32 * d + m
                } else {
                    (q as i32 - 16) as f32 * d
                }
            };
            for (j, &q) in qs.iter().enumerate() {
                out.push(value(u32::from(q & 0xF) | (((qh >> j) << 4) & 0x10)));
            }
            for (j, &q) in qs.iter().enumerate() {
                out.push(value(u32::from(q >> 4) | ((qh >> (j + 12)) & 0x10)));
            }
        }
        BlockFormat::Q2K => {
            let (scales, qs) = (&b[0..16], &b[16..80]);
            let (d, dmin) = (half_at(b, 80), half_at(b, 82));
            let mut is = 0;
            for q in qs.chunks_exact(32) {
                for shift in [0, 2, 4, 6] {
                    for part in q.chunks_exact(16) {
                        let sc = scales[is];
                        is += 1;
                        let dl = d * f32::from(sc & 0xF);
                        let ml = dmin * f32::from(sc >> 4);
                        out.extend(part.iter().map(|&x| dl * f32::from((x >> shift) & 3) - ml));
                    }
                }
            }
        }
        BlockFormat::Q3K => {
            let (hmask, qs) = (&b[0..32], &b[32..96]);
            let scales = q3k_scales(&b[96..108]);
            let d = half_at(b, 108);
            let (mut is, mut m) = (0, 1u8);
            for q in qs.chunks_exact(32) {
                for shift in [0, 2, 4, 6] {
                    for (p, part) in q.chunks_exact(16).enumerate() {
                        let dl = d * (i32::from(scales[is]) - 32) as f32;
                        is += 1;
                        for (l, &x) in part.iter().enumerate() {
                            let high = if hmask[16 * p + l] & m != 0 { 0 } else { 4 };
                            out.push(dl * (i32::from((x >> shift) & 3) - high) as f32);
                        }
                    }
                    m = m.wrapping_shl(1);
                }
            }
        }
        BlockFormat::Q4K | BlockFormat::Q5K => {
            let (d, dmin) = (half_at(b, 0), half_at(b, 2));
            let scales = &b[4..16];
            let (qh, qs) = if f == BlockFormat::Q5K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            for (c, q) in qs.chunks_exact(32).enumerate() {
                let (s1, m1) = scale_min_k4(2 * c, scales);
                let (s2, m2) = scale_min_k4(2 * c + 1, scales);
                let (d1, m1) = (d * f32::from(s1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(s2), dmin * f32::from(m2));
                // Bit 4 of element 64c + l is bit 2c of qh[l]; of 64c + 32 + l, bit 2c + 1.
                let high = |l: usize, bit: usize| match qh {
                    Some(qh) if qh[l] & (1 << bit) != 0 => 16,
                    _ => 0,
                };
                for (l, &x) in q.iter().enumerate() {
                    out.push(d1 * f32::from((x & 0xF) + high(l, 2 * c)) - m1);
                }
                for (l, &x) in q.iter().enumerate() {
                    out.push(d2 * f32::from((x >> 4) + high(l, 2 * c + 1)) - m2);
                }
            }
        }
        BlockFormat::Q6K => {
            let d = half_at(b, 208);
            for h in 0..2 {
                let ql = &b[64 * h..64 * h + 64];
                let qh = &b[128 + 32 * h..128 + 32 * h + 32];
                let sc = &b[192 + 8 * h..192 + 8 * h + 8];
                let mut y = [0f32; 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q = |lo: u8, hi_shift: u32| {
                        (i32::from(lo) | (i32::from((qh[l] >> hi_shift) & 3) << 4)) - 32
                    };
                    let sc = |k: usize| d * f32::from(sc[is + k] as i8);
                    y[l] = sc(0) * q(ql[l] & 0xF, 0) as f32;
                    y[l + 32] = sc(2) * q(ql[l + 32] & 0xF, 2) as f32;
                    y[l + 64] = sc(4) * q(ql[l] >> 4, 4) as f32;
                    y[l + 96] = sc(6) * q(ql[l + 32] >> 4, 6) as f32;
                }
                out.extend_from_slice(&y);
            }
        }
        BlockFormat::TQ1_0 => {
            const POW3: [u8; 5] = [1, 3, 9, 27, 81];
            let d = half_at(b, 52);
            // Digit n of a byte: the byte is a base-3 fixed-point fraction.
            let digit = |x: u8, n: usize| {
                let q = x.wrapping_mul(POW3[n]);
                ((u16::from(q) * 3) >> 8) as i32
            };
            for (bytes, digits) in [(&b[0..32], 5), (&b[32..48], 5), (&b[48..52], 4)] {
                for n in 0..digits {
                    out.extend(bytes.iter().map(|&x| (digit(x, n) - 1) as f32 * d));
                }
            }
        }
        BlockFormat::TQ2_0 => {
            let d = half_at(b, 64);
            for q in b[0..64].chunks_exact(32) {
                for l in 0..4 {
                    out.extend(
                        q.iter()
                            .map(|&x| (i32::from((x >> (2 * l)) & 3) - 1) as f32 * d),
                    );
                }
            }
        }
    }
}

/// The sixteen 6-bit scales of a Q3_K block, unpacked as ggml does (the low
/// 4 bits of scale `i` and `i + 8` share byte `i % 8`; the high 2 bits come
/// from bytes 8..12).
fn q3k_scales(packed: &[u8]) -> [u8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0u8; 16];
    for (o, a) in out.chunks_exact_mut(4).zip(aux) {
        o.copy_from_slice(&a.to_le_bytes());
    }
    out
}

/// Scale and min `j` (0..8) of a Q4_K/Q5_K block (ggml's `get_scale_min_k4`).
pub(super) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Integer `i` of a packed affine buffer.
fn affine_int(s: AffineStorage, b: &[u8], i: usize) -> i32 {
    let nibble = || {
        let byte = b[i / 2];
        if i.is_multiple_of(2) {
            byte & 0xF
        } else {
            byte >> 4
        }
    };
    match s {
        AffineStorage::I8 => i32::from(b[i] as i8),
        AffineStorage::U8 => i32::from(b[i]),
        AffineStorage::I16 => i32::from(i16::from_le_bytes([b[2 * i], b[2 * i + 1]])),
        AffineStorage::U16 => i32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])),
        // Sign-extend the nibble: shift it to the top of an i8 and back.
        AffineStorage::I4 => i32::from(((nibble() << 4) as i8) >> 4),
        AffineStorage::U4 => i32::from(nibble()),
    }
}

fn decode_affine(a: &Affine, shape: &[usize], bytes: &[u8]) -> Result<Vec<f32>> {
    let lay = a.layout(shape)?;
    let scale = |g: usize| {
        let o = lay.scales_offset + 4 * g;
        f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    };
    let zero = |g: usize| match lay.zero_points_offset {
        Some(o) => affine_int(a.storage, &bytes[o..], g),
        None => 0,
    };
    Ok((0..lay.numel)
        .map(|i| {
            let g = affine_group(a, shape, i);
            (affine_int(a.storage, bytes, i) - zero(g)) as f32 * scale(g)
        })
        .collect())
}

/// The scale group of element `i` (row-major) of an affine tensor of
/// `shape`: its index in the row-major scale tensor ([`Granularity`]). The
/// granularity must fit the shape ([`Affine::layout`] checks it).
pub(super) fn affine_group(a: &Affine, shape: &[usize], i: usize) -> usize {
    let inner_of = |axis: usize| shape[axis + 1..].iter().product::<usize>().max(1);
    match a.granularity {
        Granularity::PerTensor => 0,
        Granularity::PerAxis { axis } => (i / inner_of(axis)) % shape[axis],
        Granularity::PerBlock { axis, block } => {
            let (d, inner) = (shape[axis], inner_of(axis));
            let (outer, k, r) = (i / (d * inner), (i / inner) % d, i % inner);
            (outer * d.div_ceil(block) + k / block) * inner + r
        }
    }
}
