//! Kernel-IR decoders of stored weights: one element `w[r, k]` of a 2-D
//! (or row-major N-D, blocks along the last dim) weight, and the scale and
//! quant of an element of a block for the blocked dot product.
//!
//! Each formula is the reference decoder's (`ir/src/encoding/dequant.rs`)
//! operation for operation in f32, so a decoded element is bit-identical to
//! the interpreter's. Block formats covered natively: Q8_0, Q4_0, Q4_1,
//! Q5_0, Q5_1 (the K-quants and ternary formats are refused by name);
//! affine 8-bit (per tensor, per row, per column, blocks along K); dense
//! f16, bf16 and f32.

use smelt_ir::{BlockFormat, DType, Encoding, TensorType};

use super::{affine_value, bf16_to_f32, byte, half_at, i32c, rows_k};
use crate::kernel::build::{add, bin, cast, i, load, mul, sub};
use crate::kernel::{BinOp, Buf, Expr, Program, Scalar};

/// Byte offset of block `kb` of row `r` (`k` elements per row).
fn block_base(fmt: BlockFormat, r: Expr, k: usize, kb: Expr) -> Expr {
    let per_row = (k / fmt.block_len()) as i64;
    mul(add(mul(r, i(per_row)), kb), i(fmt.block_bytes() as i64))
}

/// Nibble `j` of a 32-element block whose 16 nibble bytes start at `qs`:
/// element `j` is the low nibble of byte `j % 16` when `j < 16`, the high
/// one otherwise (as `I32`).
fn nibble(buf: Buf, qs: Expr, j: Expr) -> Expr {
    let b = cast(
        Scalar::I32,
        byte(buf, add(qs, bin(BinOp::Rem, j.clone(), i(16)))),
    );
    let shift = cast(Scalar::I32, mul(bin(BinOp::Div, j, i(16)), i(4)));
    bin(BinOp::And, bin(BinOp::Shr, b, shift), i32c(0xF))
}

/// Bit 4 of element `j` of a Q5 block whose `qh` starts at `qh` (as `I32`:
/// 0 or 16): bit `j` of the little-endian `u32`.
fn high_bit(buf: Buf, qh: Expr, j: Expr) -> Expr {
    let b = cast(
        Scalar::I32,
        byte(buf, add(qh, bin(BinOp::Div, j.clone(), i(8)))),
    );
    let shift = cast(Scalar::I32, bin(BinOp::Rem, j, i(8)));
    let bit = bin(BinOp::And, bin(BinOp::Shr, b, shift), i32c(1));
    bin(BinOp::Shl, bit, i32c(4))
}

/// The scale `d` of block `kb` of row `r` of a Q8_0, Q4_0 or Q5_0 weight.
pub(super) fn block_scale(fmt: BlockFormat, buf: Buf, r: Expr, k: usize, kb: Expr) -> Expr {
    half_at(buf, block_base(fmt, r, k, kb))
}

/// The signed quant of element `j` of block `kb` of row `r` of a Q8_0,
/// Q4_0 or Q5_0 weight as f32 (`q`, `q - 8`, `q - 16`): the value is
/// `quant · d`. Other formats have a minimum and are decoded per element.
pub(super) fn block_quant(
    fmt: BlockFormat,
    buf: Buf,
    r: Expr,
    k: usize,
    kb: Expr,
    j: Expr,
) -> Expr {
    let base = block_base(fmt, r, k, kb);
    let q = match fmt {
        BlockFormat::Q8_0 => {
            return cast(Scalar::F32, load(buf, add(add(base, i(2)), j), Scalar::I8));
        }
        BlockFormat::Q4_0 => sub(nibble(buf, add(base, i(2)), j), i32c(8)),
        _ => {
            let low = nibble(buf, add(base.clone(), i(6)), j.clone());
            let q = bin(BinOp::Or, low, high_bit(buf, add(base, i(2)), j));
            sub(q, i32c(16))
        }
    };
    cast(Scalar::F32, q)
}

/// Element `(r, k)` of the stored weight `ty` in `buf`, decoded to f32;
/// an error naming the encoding when there is no native decoder for it.
pub(super) fn decode_element(
    _p: &mut Program,
    ty: &TensorType,
    buf: Buf,
    r: Expr,
    k: Expr,
) -> Result<Expr, String> {
    let (_, kdim) = rows_k(ty)?;
    let flat = || add(mul(r.clone(), i(kdim as i64)), k.clone());
    match ty.encoding {
        Encoding::Dense => match ty.dtype {
            DType::F32 => Ok(load(buf, flat(), Scalar::F32)),
            DType::F16 => Ok(super::half_to_f32(load(buf, flat(), Scalar::U16))),
            DType::BF16 => Ok(bf16_to_f32(load(buf, flat(), Scalar::U16))),
            d => Err(format!("a dense {d} weight has nothing to decode")),
        },
        Encoding::Affine(a) => affine_value(ty, &a, buf, r, k),
        Encoding::Block(fmt) => {
            let bl = fmt.block_len() as i64;
            let kb = bin(BinOp::Div, k.clone(), i(bl));
            let j = bin(BinOp::Rem, k, i(bl));
            let base = block_base(fmt, r.clone(), kdim, kb.clone());
            match fmt {
                BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q5_0 => {
                    let q = block_quant(fmt, buf, r, kdim, kb.clone(), j);
                    Ok(mul(q, half_at(buf, base)))
                }
                BlockFormat::Q4_1 | BlockFormat::Q5_1 => {
                    let (d, m) = (
                        half_at(buf, base.clone()),
                        half_at(buf, add(base.clone(), i(2))),
                    );
                    let q = if fmt == BlockFormat::Q4_1 {
                        nibble(buf, add(base, i(4)), j)
                    } else {
                        let low = nibble(buf, add(base.clone(), i(8)), j.clone());
                        bin(BinOp::Or, low, high_bit(buf, add(base, i(4)), j))
                    };
                    Ok(add(mul(cast(Scalar::F32, q), d), m))
                }
                other => Err(format!(
                    "{other} weights have no native decoder yet; quantize with q8_0, q4_0, q4_1, \
                     q5_0, q5_1, w8, f16 or bf16, or use rows that fall back to them"
                )),
            }
        }
    }
}
