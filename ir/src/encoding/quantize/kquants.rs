//! Quantizers of ggml's K-quant super-blocks (Q2_K … Q6_K), following ggml's
//! `quantize_row_q*_K_ref` (`ggml-quants.c`) operation for operation in f32.
//!
//! Each super-block of 256 values splits into sub-blocks (16 values for
//! Q2_K, Q3_K and Q6_K, 32 for Q4_K and Q5_K). A search picks each
//! sub-block's best scale (and min) for the sub-block's own error
//! (`make_qkx2_quants` for the formats with mins, `make_qx_quants` and
//! `make_q3_quants` for the symmetric ones); the sub-block scales are then
//! quantized to 4, 6 or 8 bits against one f16 super-block scale, and the
//! values quantized again against the scales as stored. Rounding is ggml's
//! `nearest_int` (round half to even through the 1.5·2^23 trick).
//!
//! The `gguf` Python package cannot quantize K-quants, so the tests compare
//! with ggml's C reference itself, compiled without fused multiply-add
//! (`scripts/ggml_kquant_fixtures.sh`, ggml commit d99724f2): byte-identical
//! for all five formats. They also bound the round-trip error; a second
//! quantization of the decoded values is *not* guaranteed to give the same
//! bytes (the scale searches may settle elsewhere).

use super::{scale_bits, signed_max};
use crate::encoding::BlockFormat;

/// Below this a sub-block counts as all zero (ggml's `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

/// Appends one super-block of `f` (256 finite values); errs when its f16
/// scale or min would overflow.
pub(super) fn quantize_block(f: BlockFormat, x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    match f {
        BlockFormat::Q2K => q2_k(x, out),
        BlockFormat::Q3K => q3_k(x, out),
        BlockFormat::Q4K | BlockFormat::Q5K => q45_k(f == BlockFormat::Q5K, x, out),
        BlockFormat::Q6K => q6_k(x, out),
        BlockFormat::Q8_0
        | BlockFormat::Q4_0
        | BlockFormat::Q4_1
        | BlockFormat::Q5_0
        | BlockFormat::Q5_1
        | BlockFormat::TQ1_0
        | BlockFormat::TQ2_0 => Err(format!("{f} is not a K-quant")),
    }
}

/// ggml's `nearest_int`: round half to even for `|v| < 2^22` (adding
/// 1.5·2^23 leaves the integer in the mantissa); larger inputs give what the
/// same bit manipulation gives (ggml asserts they do not occur).
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// The f32 value of stored f16 bytes.
fn half(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

/// Packs 2-bit quants `l` (256) as Q2_K/Q3_K's `qs`: bits `2s..2s+2` of
/// byte `32h + m` are element `128h + 32s + m`.
fn push_2bit(l: &[u8], out: &mut Vec<u8>) {
    for h in [0, 128] {
        out.extend((0..32).map(|m| {
            l[h + m] | (l[h + m + 32] << 2) | (l[h + m + 64] << 4) | (l[h + m + 96] << 6)
        }));
    }
}

/// ggml's `make_qkx2_quants`: the scale and min (returned as `-min >= 0`)
/// of one sub-block minimizing the weighted error (absolute with `use_mad`,
/// squared otherwise) over `nstep + 1` candidate scales, with the quants in
/// `l`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmax_f = nmax as f32;
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        l[i] = nearest_int(iscale * (x[i] - min)).clamp(0, nmax) as u8;
        let diff = scale * f32::from(l[i]) + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax_f) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let (w, q) = (weights[i], q as f32);
            sum_l += w * q;
            sum_l2 += w * q * q;
            sum_xl += w * q * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type` 1 (weights `x²`) and no
/// importance weights: the signed scale of one sub-block, searched over 19
/// candidates, with the quants (offset by `nmax`) in `l`.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let max = signed_max(x);
    if max.abs() < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmax_f = nmax as f32;
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let q = quant(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let mut iscale = -nmax_f / max;
    for (li, &v) in l.iter_mut().zip(x) {
        *li = (quant(iscale, v) + nmax) as i8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax_f + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &v) in l.iter_mut().zip(x) {
                *li = (quant(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` with `do_rmse`: the signed scale of one
/// sub-block, refined by up to five passes that move single quants while the
/// weighted error falls, with the quants (offset by `nmax`) in `l`.
fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let max = signed_max(x);
    if max.abs() < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (li, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *li = q as i8;
        let w = v * v;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut changed = false;
        for (li, &v) in l.iter_mut().zip(x) {
            let w = v * v;
            let old = f32::from(*li);
            let mut slx = sumlx - w * v * old;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * old * old;
                let new = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new != i32::from(*li) {
                    slx += w * v * new as f32;
                    sl2 += w * new as f32 * new as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for li in l.iter_mut() {
        *li += nmax as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Q2_K: 16 sub-blocks of 16 with a 4-bit scale and a 4-bit min each.
fn q2_k(x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        let weights: Vec<f32> = xs.iter().map(|v| v.abs()).collect();
        let (s, m) = make_qkx2_quants(3, xs, &weights, &mut l[16 * j..], -0.5, 0.1, 15, true);
        (scales[j], mins[j]) = (s, m);
        max_scale = max_scale.max(s);
        max_min = max_min.max(m);
    }
    let mut sc = [0u8; 16];
    let d = if max_scale > 0.0 {
        let iscale = 15.0 / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        scale_bits("scale", max_scale / 15.0)?
    } else {
        scale_bits("scale", 0.0)?
    };
    let dmin = if max_min > 0.0 {
        let iscale = 15.0 / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        scale_bits("min", max_min / 15.0)?
    } else {
        scale_bits("min", 0.0)?
    };
    for j in 0..16 {
        let dj = half(d) * f32::from(sc[j] & 0xF);
        if dj == 0.0 {
            continue;
        }
        let dm = half(dmin) * f32::from(sc[j] >> 4);
        for i in 0..16 {
            l[16 * j + i] = nearest_int((x[16 * j + i] + dm) / dj).clamp(0, 3) as u8;
        }
    }
    out.extend(sc);
    push_2bit(&l, out);
    out.extend(d);
    out.extend(dmin);
    Ok(())
}

/// Q3_K: 16 sub-blocks of 16 with a signed 6-bit scale each, 3-bit quants
/// split into 2 low bits (`qs`) and a high bit (`hmask`).
fn q3_k(x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    let mut l = [0i8; 256];
    let scales: [f32; 16] = std::array::from_fn(|j| {
        make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16])
    });
    let max_scale = signed_max(&scales);
    let mut packed = [0u8; 12];
    let d = if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            // ggml stores nearest_int's result in an int8_t first.
            let q = (i32::from(nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                packed[j] = q & 0xF;
            } else {
                packed[j - 8] |= (q & 0xF) << 4;
            }
            packed[j % 4 + 8] |= (q >> 4) << (2 * (j / 4));
        }
        scale_bits("scale", 1.0 / iscale)?
    } else {
        scale_bits("scale", 0.0)?
    };
    for j in 0..16 {
        let low = if j < 8 {
            packed[j] & 0xF
        } else {
            packed[j - 8] >> 4
        };
        let sc = i32::from(low | (((packed[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        let dj = half(d) * sc as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 0..16 {
            l[16 * j + i] = (nearest_int(x[16 * j + i] / dj).clamp(-4, 3) + 4) as i8;
        }
    }
    // The high bit of quant j goes to bit j / 32 of hmask[j % 32].
    let mut hmask = [0u8; 32];
    let mut low = [0u8; 256];
    for (j, &q) in l.iter().enumerate() {
        let mut q = q as u8;
        if q > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            q -= 4;
        }
        low[j] = q;
    }
    out.extend(hmask);
    push_2bit(&low, out);
    out.extend(packed);
    out.extend(d);
    Ok(())
}

/// Q4_K and Q5_K: 8 sub-blocks of 32 with a 6-bit scale and a 6-bit min
/// each (ggml's `get_scale_min_k4` packing), 4- or 5-bit quants.
fn q45_k(five: bool, x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    let (nmax, rmin, nstep) = if five { (31, -0.5, 15) } else { (15, -1.0, 20) };
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2 = xs.iter().fold(0f32, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: Vec<f32> = xs.iter().map(|v| av_x + v.abs()).collect();
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..],
            rmin,
            0.1,
            nstep,
            false,
        );
        (scales[j], mins[j]) = (s, m);
        max_scale = max_scale.max(s);
        max_min = max_min.max(m);
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut packed = [0u8; 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let d = scale_bits("scale", max_scale / 63.0)?;
    let dmin = scale_bits("min", max_min / 63.0)?;
    for j in 0..8 {
        let (sc, m) = crate::encoding::dequant::scale_min_k4(j, &packed);
        let dj = half(d) * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = half(dmin) * f32::from(m);
        for i in 0..32 {
            l[32 * j + i] = nearest_int((x[32 * j + i] + dm) / dj).clamp(0, nmax) as u8;
        }
    }
    out.extend(d);
    out.extend(dmin);
    out.extend(packed);
    if five {
        // Bit 4 of element 64c + m goes to bit 2c of qh[m], of 64c + 32 + m
        // to bit 2c + 1.
        let mut qh = [0u8; 32];
        for (j, q) in l.iter_mut().enumerate() {
            if *q > 15 {
                *q -= 16;
                qh[j % 32] |= 1 << (j / 32);
            }
        }
        out.extend(qh);
    }
    for c in 0..4 {
        out.extend((0..32).map(|m| l[64 * c + m] | (l[64 * c + 32 + m] << 4)));
    }
    Ok(())
}

/// Q6_K: 16 sub-blocks of 16 with a signed 8-bit scale each, 6-bit quants
/// split into 4 low bits (`ql`) and 2 high bits (`qh`).
fn q6_k(x: &[f32], out: &mut Vec<u8>) -> Result<(), String> {
    let mut l = [0i8; 256];
    let scales: [f32; 16] = std::array::from_fn(|j| {
        make_qx_quants(32, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16])
    });
    let max_scale = signed_max(&scales);
    if max_scale.abs() < GROUP_MAX_EPS {
        // ggml zeroes the whole block.
        out.extend([0u8; 210]);
        return Ok(());
    }
    let iscale = -128.0 / max_scale;
    let d = scale_bits("scale", 1.0 / iscale)?;
    let sc: Vec<i8> = scales
        .iter()
        .map(|&s| nearest_int(iscale * s).min(127) as i8)
        .collect();
    for j in 0..16 {
        let dj = half(d) * f32::from(sc[j]);
        if dj == 0.0 {
            continue;
        }
        for i in 0..16 {
            l[16 * j + i] = (nearest_int(x[16 * j + i] / dj).clamp(-32, 31) + 32) as i8;
        }
    }
    let l = l.map(|q| q as u8);
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for h in 0..2 {
        let (lh, qlh, qhh) = (&l[128 * h..], &mut ql[64 * h..], &mut qh[32 * h..]);
        for m in 0..32 {
            qlh[m] = (lh[m] & 0xF) | ((lh[m + 64] & 0xF) << 4);
            qlh[m + 32] = (lh[m + 32] & 0xF) | ((lh[m + 96] & 0xF) << 4);
            qhh[m] = (lh[m] >> 4)
                | ((lh[m + 32] >> 4) << 2)
                | ((lh[m + 64] >> 4) << 4)
                | ((lh[m + 96] >> 4) << 6);
        }
    }
    out.extend(ql);
    out.extend(qh);
    out.extend(sc.iter().map(|&s| s as u8));
    out.extend(d);
    Ok(())
}
