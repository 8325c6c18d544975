//! Quantizers of ggml's K-quant super-blocks (Q2_K … Q6_K).

use crate::encoding::BlockFormat;

/// Appends one super-block of `f` (256 finite values).
pub(super) fn quantize_block(f: BlockFormat, _x: &[f32], _out: &mut Vec<u8>) -> Result<(), String> {
    Err(format!("{f} has no quantizer yet; use q8_0, q4_0 or q4_1"))
}
