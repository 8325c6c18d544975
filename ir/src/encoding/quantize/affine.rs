//! Affine quantization: ONNX `QuantizeLinear` with per-group scales chosen
//! as onnxruntime's quantizer chooses them (`compute_scale_zp`).
//!
//! For each scale group (the whole tensor, an index along the axis, or a
//! block along it), with `[qmin, qmax]` the storage type's range:
//!
//! - **without zero points, signed storage** (the `w8` scheme for `i8`):
//!   symmetric, `scale = max|x| / qmax` (127, 32767 or 7), quants clamped to
//!   `[-qmax, qmax]` so the range is symmetric;
//! - **without zero points, unsigned storage**: `scale = max(x, 0) / qmax`,
//!   negative values saturate to 0;
//! - **with zero points**: the range `[min(x, 0), max(x, 0)]` (it contains 0
//!   so that 0 is exact) maps onto `[qmin, qmax]`:
//!   `scale = (rmax - rmin) / (qmax - qmin)`,
//!   `zero_point = clamp(round(qmin - rmin / scale))`.
//!
//! As in onnxruntime, the range and the ratio are computed in f64 and the
//! scale stored as f32 (so no finite input overflows it), and a scale below
//! the smallest normal f32 (an all-zero group) becomes 1 with zero point 0.
//! Then `q = clamp(round(x / scale) + zero_point)` in f32, rounding half to
//! even: the interpreter's `QuantizeLinear` with the same scales (tested).
//! The round-trip error is at most `scale / 2` inside the range (plus f32
//! rounding).

use super::super::dequant::affine_group;
use crate::encoding::{Affine, AffineStorage};
use crate::error::Result;

/// The bytes of an affine tensor of `shape` holding `x` (finite, checked by
/// the caller), laid out as [`AffineLayout`](crate::encoding::AffineLayout)
/// says.
pub(super) fn quantize_affine(a: &Affine, shape: &[usize], x: &[f32]) -> Result<Vec<u8>> {
    let lay = a.layout(shape)?;
    let (qmin, qmax) = range(a.storage);
    // The extremes of each group.
    let mut lo = vec![0f32; lay.groups];
    let mut hi = vec![0f32; lay.groups];
    for (i, &v) in x.iter().enumerate() {
        let g = affine_group(a, shape, i);
        lo[g] = lo[g].min(v);
        hi[g] = hi[g].max(v);
    }
    // Signed storage without zero points is symmetric: [-qmax, qmax].
    let symmetric = !a.zero_point && a.storage.is_signed();
    let low = if symmetric { -qmax } else { qmin };
    let mut scales = Vec::with_capacity(lay.groups);
    let mut zero_points = Vec::with_capacity(lay.groups);
    for (&lo, &hi) in lo.iter().zip(&hi) {
        let (rmin, rmax) = if symmetric {
            let amax = hi.max(-lo);
            (-amax, amax)
        } else if a.zero_point {
            (lo, hi)
        } else {
            // Unsigned without zero points: negatives saturate to 0.
            (0.0, hi)
        };
        // onnxruntime's compute_scale_zp: the range and ratio in f64 (a
        // finite f32 range cannot overflow), the scale stored as f32.
        let s = (f64::from(rmax) - f64::from(rmin)) / f64::from(qmax - low);
        if s < f64::from(f32::MIN_POSITIVE) {
            scales.push(1.0);
            zero_points.push(0);
        } else {
            let zp = (f64::from(low) - f64::from(rmin) / s).round_ties_even() as i32;
            scales.push(s as f32);
            zero_points.push(if a.zero_point {
                zp.clamp(qmin, qmax)
            } else {
                0
            });
        }
    }
    let q: Vec<i32> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let g = affine_group(a, shape, i);
            let r = (v / scales[g]).round_ties_even() as i64 + i64::from(zero_points[g]);
            r.clamp(i64::from(low), i64::from(qmax)) as i32
        })
        .collect();
    let mut out = pack(a.storage, &q);
    out.resize(lay.scales_offset, 0);
    out.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
    if a.zero_point {
        out.extend(pack(a.storage, &zero_points));
    }
    Ok(out)
}

/// The integer range of a storage type.
fn range(s: AffineStorage) -> (i32, i32) {
    match s {
        AffineStorage::I8 => (-128, 127),
        AffineStorage::U8 => (0, 255),
        AffineStorage::I16 => (-32768, 32767),
        AffineStorage::U16 => (0, 65535),
        AffineStorage::I4 => (-8, 7),
        AffineStorage::U4 => (0, 15),
    }
}

/// Packs in-range integers: bytes, little-endian pairs, or nibbles (the
/// earlier element low, a last odd high nibble 0).
fn pack(s: AffineStorage, q: &[i32]) -> Vec<u8> {
    match s {
        AffineStorage::I8 | AffineStorage::U8 => q.iter().map(|&v| v as u8).collect(),
        AffineStorage::I16 | AffineStorage::U16 => {
            q.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect()
        }
        AffineStorage::I4 | AffineStorage::U4 => q
            .chunks(2)
            .map(|p| (p[0] as u8 & 0xF) | (p.get(1).map_or(0, |&h| h as u8 & 0xF) << 4))
            .collect(),
    }
}
