//! Quantizers of one block of each ggml block format.
//!
//! The 32-element formats and the ternary ones follow ggml's
//! `quantize_row_*_ref` (and the `gguf` package, which matches them byte for
//! byte): the same f32 operations in the same order (no fused multiply-add),
//! the scale computed from the block's maximum, the reciprocal `id` taken
//! from the unrounded scale, and the quants rounded as C rounds them
//! (`(int8_t)(x + 8.5f)` truncation for Q4/Q5, `roundf` for Q8_0 and the
//! ternary formats). The K-quants live in `kquants`.

use super::{c_cast, inverse, scale_bits, signed_max};
use crate::encoding::BlockFormat;

/// Appends the `f.block_bytes()` bytes of one block of `f.block_len()`
/// finite values. Errs (with a message, the caller adds where) when the
/// block's f16 scale or min would overflow.
pub(super) fn quantize_block(f: BlockFormat, x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    match f {
        BlockFormat::Q8_0 => {
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = inverse(d);
            out.extend(scale_bits("scale", d)?);
            out.extend(x.iter().map(|&v| c_cast((v * id).round()) as u8));
        }
        BlockFormat::Q4_0 | BlockFormat::Q5_0 => {
            // Signed: the value of largest magnitude (the first one) maps to
            // the most negative quant, -8 or -16.
            let (levels, offset) = if f == BlockFormat::Q4_0 {
                (15, 8.5)
            } else {
                (31, 16.5)
            };
            let max = signed_max(x);
            let d = max / -(offset - 0.5);
            let id = inverse(d);
            out.extend(scale_bits("scale", d)?);
            let q: Vec<u8> = x
                .iter()
                .map(|&v| (c_cast(v * id + offset) as u8).min(levels))
                .collect();
            push_nibbles(f, &q, out);
        }
        BlockFormat::Q4_1 | BlockFormat::Q5_1 => {
            let levels: u8 = if f == BlockFormat::Q4_1 { 15 } else { 31 };
            let min = x.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
            let max = x.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
            let d = (max - min) / f32::from(levels);
            let id = inverse(d);
            out.extend(scale_bits("scale", d)?);
            out.extend(scale_bits("min", min)?);
            let q: Vec<u8> = x
                .iter()
                .map(|&v| (c_cast((v - min) * id + 0.5) as u8).min(levels))
                .collect();
            push_nibbles(f, &q, out);
        }
        BlockFormat::TQ1_0 | BlockFormat::TQ2_0 => {
            let d = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let id = inverse(d);
            // Ternary digits 0, 1, 2 for -1, 0, +1.
            let q: Vec<u32> = x
                .iter()
                .map(|&v| u32::from((c_cast((v * id).round()) as i8).wrapping_add(1) as u8))
                .collect();
            if f == BlockFormat::TQ1_0 {
                push_ternary(&q, out);
            } else {
                // Bits 2l..2l+2 of byte 32j + m are element 128j + 32l + m.
                for j in 0..2 {
                    out.extend((0..32).map(|m| {
                        (0..4).fold(0u8, |b, l| b | ((q[128 * j + 32 * l + m] as u8) << (2 * l)))
                    }));
                }
            }
            out.extend(scale_bits("scale", d)?);
        }
        BlockFormat::Q2K
        | BlockFormat::Q3K
        | BlockFormat::Q4K
        | BlockFormat::Q5K
        | BlockFormat::Q6K => super::kquants::quantize_block(f, x, out)?,
    }
    Ok(())
}

/// Packs 32 quants of 4 or 5 bits: for the 5-bit formats first `qh` (bit
/// `j` of a little-endian u32 is bit 4 of quant `j`), then the nibbles,
/// quant `j` low and `j + 16` high in byte `j`.
fn push_nibbles(f: BlockFormat, q: &[u8], out: &mut Vec<u8>) {
    if matches!(f, BlockFormat::Q5_0 | BlockFormat::Q5_1) {
        let qh = q
            .iter()
            .enumerate()
            .fold(0u32, |h, (j, &v)| h | (u32::from(v >> 4) << j));
        out.extend(qh.to_le_bytes());
    }
    out.extend((0..16).map(|j| (q[j] & 0xF) | ((q[j + 16] & 0xF) << 4)));
}

/// Packs 256 ternary digits (0..3) as TQ1_0's `qs` and `qh`: each byte holds
/// 5 (or 4) digits, the first one most significant, as the fixed-point
/// fraction `ceil(value * 256 / 243)`. Byte `m` of the first 32 holds
/// elements `32n + m`, byte `32 + m` elements `160 + 16n + m`, byte `48 + m`
/// elements `240 + 4n + m`.
fn push_ternary(q: &[u32], out: &mut Vec<u8>) {
    let pack = |digits: &mut dyn Iterator<Item = u32>, count: u32| {
        // Horner over the digits, then shift the 4-digit bytes up one trit.
        let v = digits.fold(0, |acc, d| acc * 3 + d) * 3u32.pow(5 - count);
        (v * 256).div_ceil(243) as u8
    };
    for m in 0..32 {
        out.push(pack(&mut (0..5).map(|n| q[32 * n + m]), 5));
    }
    for m in 0..16 {
        out.push(pack(&mut (0..5).map(|n| q[160 + 16 * n + m]), 5));
    }
    for m in 0..4 {
        out.push(pack(&mut (0..4).map(|n| q[240 + 4 * n + m]), 4));
    }
}
