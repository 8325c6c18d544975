//! Encoding values to bytes: the inverse of [`dequantize`](super::dequantize).
//!
//! [`quantize`] turns f32 values into the bytes of a tensor type: dense
//! f32/f16/bf16, every block format and every affine form.
//!
//! **Reference.** The 32-element block formats (Q8_0, Q4_0, Q4_1, Q5_0,
//! Q5_1) and the ternary ones (TQ1_0, TQ2_0) follow ggml's
//! `quantize_row_*_ref` operation for operation in f32 and are byte-identical
//! to the `gguf` Python package's `gguf.quants.quantize` (tested against
//! `tests/data/gguf/quantize/`, made by `scripts/gguf_fixtures.py`). The
//! K-quants (Q2_K … Q6_K) follow ggml's reference quantizers, which the
//! package cannot run: they are byte-identical to ggml's C compiled without
//! fused multiply-add (`scripts/ggml_kquant_fixtures.sh`, see `kquants`).
//! F16 is numpy's `astype(float16)` (round to nearest even, NaN payloads
//! kept as numpy keeps them), BF16 ggml's `ggml_compute_fp32_to_bf16` (round
//! to nearest even, NaN made quiet). Affine forms follow ONNX
//! `QuantizeLinear` with the scales onnxruntime's quantizer picks (see
//! `affine`).
//!
//! **Non-finite and huge inputs.** Dense f32/f16/bf16 hold infinities and NaN
//! and convert them. Block and affine encodings cannot: a NaN or infinite
//! value is an [`Error::Encoding`] naming its index, and so is a block whose
//! f16 scale (or min) would overflow (ggml would store an infinite scale and
//! decode the block to infinities and NaNs). Tiny values are fine: a block
//! whose scale underflows stores a zero scale and decodes to zeros, with the
//! quants ggml's C casts give on x86 (see [`c_cast`]), so the bytes still
//! match the reference.

use half::f16;

use super::Encoding;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;

mod affine;
mod blocks;
mod kquants;

/// Encodes `values` (row-major, `ty`'s logical shape) as the bytes of `ty`:
/// dense f32, f16 or bf16, or f32 (any float logical dtype) in a block or
/// affine encoding.
///
/// Errors: a value count other than `ty.numel()`, a type that does not fit
/// its encoding (a block format whose block length does not divide the
/// innermost dimension, an affine axis out of range), a dense dtype other
/// than f32/f16/bf16, a non-finite value for an encoding that cannot hold it,
/// and a block scale beyond f16's range.
pub fn quantize(ty: &TensorType, values: &[f32]) -> Result<Vec<u8>> {
    let size = ty.bytes()?;
    let n = ty.numel()?;
    if values.len() != n {
        return Err(Error::Shape(format!(
            "a tensor of type {ty} has {n} values, got {}",
            values.len()
        )));
    }
    let out = match ty.encoding {
        Encoding::Dense => match ty.dtype {
            DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            DType::F16 => halves(values, f16_bits),
            DType::BF16 => halves(values, bf16_bits),
            d => {
                return Err(Error::Type(format!(
                    "quantize writes dense f32, f16 or bf16 tensors, not {d}; \
                     cast the values instead"
                )));
            }
        },
        Encoding::Block(f) => {
            check_finite(ty.encoding, values)?;
            let mut out = Vec::with_capacity(size);
            for (b, block) in values.chunks_exact(f.block_len()).enumerate() {
                blocks::quantize_block(f, block, &mut out).map_err(|msg| Error::Encoding {
                    encoding: ty.encoding,
                    msg: format!("the block at element {}: {msg}", b * f.block_len()),
                })?;
            }
            out
        }
        Encoding::Affine(a) => {
            check_finite(ty.encoding, values)?;
            affine::quantize_affine(&a, &ty.shape, values)?
        }
    };
    debug_assert_eq!(out.len(), size, "{ty}");
    Ok(out)
}

fn halves(values: &[f32], convert: fn(f32) -> u16) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| convert(v).to_le_bytes())
        .collect()
}

/// Refuses NaN and infinities, which no block or affine encoding can hold.
fn check_finite(encoding: Encoding, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::Encoding {
            encoding,
            msg: format!(
                "element {i} is {}, which it cannot hold; replace non-finite weights first",
                values[i]
            ),
        }),
    }
}

/// The IEEE binary16 bits nearest to `x` (ties to even), as numpy's
/// `astype(float16)` computes them: overflow gives an infinity, and a NaN
/// keeps its sign and the top ten bits of its payload (made non-zero, so it
/// stays a NaN; a signalling NaN stays signalling).
pub fn f16_bits(x: f32) -> u16 {
    if x.is_nan() {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let payload = ((b & 0x007f_ffff) >> 13) as u16;
        return sign | 0x7c00 | payload.max(1);
    }
    f16::from_f32(x).to_bits()
}

/// The bfloat16 bits nearest to `x` (ties to even), as ggml's
/// `ggml_compute_fp32_to_bf16` (and the `gguf` package) compute them: a NaN
/// keeps its sign and top payload bits and is made quiet.
pub fn bf16_bits(x: f32) -> u16 {
    let n = x.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        return ((n >> 16) | 0x40) as u16;
    }
    ((u64::from(n) + 0x7fff + u64::from((n >> 16) & 1)) >> 16) as u16
}

/// C's conversion of a float to a 32-bit integer as x86 performs it
/// (`cvttss2si`): truncation toward zero, and `i32::MIN` for NaN and values
/// out of range. ggml's `(int8_t)x` / numpy's `astype(np.uint8)` go through
/// it and keep the low byte; the only inputs that reach the out-of-range
/// case are blocks so tiny that `1 / scale` overflows, whose scale is 0 in
/// f16 anyway, so the quants do not change any decoded value: matching the
/// reference keeps the bytes identical.
fn c_cast(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// The f16 bits of a block scale (or min), refusing one that overflows.
fn scale_bits(what: &str, v: f32) -> Result<[u8; 2], String> {
    let h = f16_bits(v);
    if h & 0x7c00 == 0x7c00 {
        return Err(format!(
            "its {what} {v:e} does not fit f16 (at most 65504); scale the weights down \
             or use an affine encoding"
        ));
    }
    Ok(h.to_le_bytes())
}

/// The value of largest magnitude, the first one on ties (ggml's loop).
pub(super) fn signed_max(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The reciprocal of a scale, 0 for a zero scale (ggml's `d ? 1/d : 0`).
fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

#[cfg(test)]
mod tests;
