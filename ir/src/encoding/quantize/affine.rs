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
//! A scale below the smallest normal f32 (an all-zero group) becomes 1, as
//! in onnxruntime. Then `q = clamp(round(x / scale) + zero_point)`, rounding
//! half to even, which is what the interpreter's `QuantizeLinear` computes
//! with the same scales. The round-trip error is at most `scale / 2` inside
//! the range (plus f32 rounding).

use super::super::dequant::affine_group;
use crate::encoding::{Affine, AffineStorage, Encoding};
use crate::error::{Error, Result};

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
    let mut scales = Vec::with_capacity(lay.groups);
    let mut zero_points = Vec::with_capacity(lay.groups);
    for (g, (&rmin, &rmax)) in lo.iter().zip(&hi).enumerate() {
        let (scale, zp) = if a.zero_point {
            let s = (rmax - rmin) / (qmax - qmin) as f32;
            let s = normal_or_one(s);
            let zp = (qmin as f32 - rmin / s).round_ties_even() as i32;
            (s, zp.clamp(qmin, qmax))
        } else if a.storage.is_signed() {
            (normal_or_one(rmax.max(-rmin) / qmax as f32), 0)
        } else {
            (normal_or_one(rmax / qmax as f32), 0)
        };
        if !scale.is_finite() {
            return Err(Error::Encoding {
                encoding: Encoding::Affine(*a),
                msg: format!(
                    "scale group {g} spans [{rmin:e}, {rmax:e}], too wide for an f32 scale"
                ),
            });
        }
        scales.push(scale);
        zero_points.push(zp);
    }
    // A symmetric signed range leaves the most negative integer unused.
    let low = if a.zero_point || !a.storage.is_signed() {
        qmin
    } else {
        -qmax
    };
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

/// `s`, or 1 when it is below the smallest normal f32 (zero included).
fn normal_or_one(s: f32) -> f32 {
    if s < f32::MIN_POSITIVE { 1.0 } else { s }
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
