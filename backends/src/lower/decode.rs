//! Kernel-IR expressions that read encoded weights: the value of one
//! element of any block-quantized, affine or half tensor (f16/bf16 to f32
//! with the integer conversions of [`crate::kernel::half`]).
//!
//! Every builder computes what `smelt_ir::encoding::dequantize` computes,
//! operation for operation in f32, so a kernel reading a weight through them
//! is bit-identical to decoding it first (the tests check this with the
//! evaluator and both code generators). A tensor is addressed as rows: `row`
//! indexes all but the innermost dimension, `k` the innermost one (both
//! `I64` expressions); its bytes are in `buf` from byte 0, laid out as the
//! encoding says (`smelt_ir::encoding`). Multi-byte block fields other than
//! the f16 scales are read a byte at a time, so no load needs an alignment
//! the block layout does not give (Q5_0's `qh` is at byte 2 of a 22-byte
//! block); the scales are at even offsets of even-sized blocks and read as
//! one `U16`.
//!
//! For dot-product kernels the per-block form splits a value into
//! `scale · quant (+ offset)`: [`scale_group_len`] elements along `k` share
//! one [`BlockScale`] ([`block_scale_min`]), and [`block_quant`] gives each
//! element's integer, so `Σ x·w` over a group is
//! `scale · Σ x·q (+ offset · Σ x)`. [`decode_element`] is exactly
//! `scale * f32(quant) (+ offset)`. [`encoded_matvec`] is the scalar
//! reference kernel of that shape.

use smelt_ir::TensorType;
use smelt_ir::encoding::{Affine, AffineLayout, AffineStorage, BlockFormat, Encoding, Granularity};

use crate::kernel::build::{add, and, bin, cast, cmp, i, load, mul, or, select, shl, shr, sub, un};
pub use crate::kernel::half::{bf16_to_f32, half_to_f32};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, UnOp};

/// An `I32` constant.
fn c(v: i64) -> Expr {
    Expr::I(v, Scalar::I32)
}

fn div(a: Expr, n: i64) -> Expr {
    bin(BinOp::Div, a, i(n))
}

fn rem(a: Expr, n: i64) -> Expr {
    bin(BinOp::Rem, a, i(n))
}

/// Byte `at` (an `I64` byte offset) of `buf`, as an `I32` in 0..256.
fn byte(buf: Buf, at: Expr) -> Expr {
    cast(Scalar::I32, load(buf, at, Scalar::U8))
}

/// The f16 at the even byte offset `at` of `buf`, as `F32`: one aligned
/// `U16` load (every block format's halves sit at even offsets of
/// even-sized blocks).
fn half_at(buf: Buf, at: Expr) -> Expr {
    half_to_f32(load(buf, div(at, 2), Scalar::U16))
}

/// The innermost dimension (1 for a scalar) and the number of rows.
fn rows_of(ty: &TensorType) -> (usize, usize) {
    let k = ty.shape.last().copied().unwrap_or(1);
    let n: usize = ty.shape.iter().product();
    (k, n.checked_div(k).unwrap_or(0))
}

/// How one scale group's values decode: `scale · quant (+ offset)`, in that
/// order of f32 operations (no fused multiply-add). The offset is absent
/// (not zero) where the format has none, so `-0` stays `-0`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockScale {
    /// The group's scale (`F32`).
    pub scale: Expr,
    /// What is added after the product (`F32`): Q4_1/Q5_1's `m`, the
    /// K-quants' `-dmin · m`.
    pub offset: Option<Expr>,
}

/// Elements along the innermost dimension that share one [`BlockScale`]:
/// the block (32) for Q8_0 … Q5_1, the sub-block for the K-quants (16 for
/// Q2_K, Q3_K, Q6_K; 32 for Q4_K, Q5_K), the super-block (256) for the
/// ternary formats; for affine encodings the block along the innermost
/// axis, the whole row when the scale does not vary along it, 1 when it
/// varies with every element. Errs for dense tensors (no scales).
pub fn scale_group_len(ty: &TensorType) -> Result<usize, String> {
    let (k, _) = rows_of(ty);
    let last = ty.shape.len().saturating_sub(1);
    match ty.encoding {
        Encoding::Dense => Err(format!("a dense {} tensor has no scales", ty.dtype)),
        Encoding::Block(f) => Ok(block_group_len(f)),
        Encoding::Affine(a) => Ok(match a.granularity {
            Granularity::PerTensor => k,
            Granularity::PerAxis { axis } => {
                if axis == last {
                    1
                } else {
                    k
                }
            }
            Granularity::PerBlock { axis, block } => {
                if axis == last {
                    block
                } else {
                    1
                }
            }
        }),
    }
}

fn block_group_len(f: BlockFormat) -> usize {
    match f {
        BlockFormat::Q8_0
        | BlockFormat::Q4_0
        | BlockFormat::Q4_1
        | BlockFormat::Q5_0
        | BlockFormat::Q5_1
        | BlockFormat::Q4K
        | BlockFormat::Q5K => 32,
        BlockFormat::Q2K | BlockFormat::Q3K | BlockFormat::Q6K => 16,
        BlockFormat::TQ1_0 | BlockFormat::TQ2_0 => 256,
    }
}

/// Checks that `ty` is a tensor the builders can read.
fn check(ty: &TensorType) -> Result<(), String> {
    ty.bytes().map(|_| ()).map_err(|e| e.to_string())
}

/// The byte offset of the block holding element `k` of `row`.
fn block_base(f: BlockFormat, k_len: usize, row: Expr, block_in_row: Expr) -> Expr {
    let nb = (k_len / f.block_len()) as i64;
    mul(
        add(mul(row, i(nb)), block_in_row),
        i(f.block_bytes() as i64),
    )
}

/// A tensor with scales: its block format, or its affine form and layout.
enum Scaled {
    Block(BlockFormat),
    Affine(Affine, AffineLayout),
}

/// What `ty` stores with scales, and its innermost dimension; errs for a
/// dense tensor (it has no `what`) or a type that does not fit its encoding.
fn scaled(ty: &TensorType, what: &str) -> Result<(Scaled, usize), String> {
    check(ty)?;
    let (k_len, _) = rows_of(ty);
    let s = match ty.encoding {
        Encoding::Dense => return Err(format!("a dense {} tensor has no {what}", ty.dtype)),
        Encoding::Block(f) => Scaled::Block(f),
        Encoding::Affine(a) => Scaled::Affine(a, a.layout(&ty.shape).map_err(|e| e.to_string())?),
    };
    Ok((s, k_len))
}

/// The [`BlockScale`] of scale group `group` (an `I64` index along the
/// innermost dimension, in units of [`scale_group_len`]) of row `row` of a
/// block or affine tensor of type `ty` in `buf`.
pub fn block_scale_min(
    ty: &TensorType,
    buf: Buf,
    row: Expr,
    group: Expr,
) -> Result<BlockScale, String> {
    match scaled(ty, "scales")? {
        (Scaled::Block(f), k_len) => {
            let per_block = (f.block_len() / block_group_len(f)) as i64;
            let base = block_base(f, k_len, row, div(group.clone(), per_block));
            Ok(block_scale(f, buf, base, rem(group, per_block)))
        }
        (Scaled::Affine(a, lay), _) => {
            let k = mul(group, i(scale_group_len(ty)? as i64));
            let g = affine_group(&a, &ty.shape, row, k);
            Ok(BlockScale {
                scale: load(buf, add(i(lay.scales_offset as i64 / 4), g), Scalar::F32),
                offset: None,
            })
        }
    }
}

/// The integer quant (`I32`) of element `k` of row `row` of a block or
/// affine tensor of type `ty` in `buf`, already offset (Q4_0's `q - 8`,
/// Q3_K's `q - 4·(high bit clear)`, an affine `q - zero point`), so the
/// value is `scale · f32(quant) (+ offset)`.
pub fn block_quant(ty: &TensorType, buf: Buf, row: Expr, k: Expr) -> Result<Expr, String> {
    match scaled(ty, "quants")? {
        (Scaled::Block(f), k_len) => {
            let n = f.block_len() as i64;
            let base = block_base(f, k_len, row, div(k.clone(), n));
            Ok(block_int(f, buf, base, rem(k, n)))
        }
        (Scaled::Affine(a, lay), k_len) => {
            let flat = add(mul(row.clone(), i(k_len as i64)), k.clone());
            let q = affine_int(a.storage, buf, 0, flat);
            Ok(match lay.zero_points_offset {
                Some(zo) => {
                    let g = affine_group(&a, &ty.shape, row, k);
                    sub(q, affine_int(a.storage, buf, zo, g))
                }
                None => q,
            })
        }
    }
}

/// The f32 value of element `k` of row `row` of a tensor of type `ty` in
/// `buf`: every block format, every affine form, and dense f16, bf16 and
/// f32. Bit-identical to `smelt_ir::encoding::dequantize` (which for a
/// dense half tensor means its conversion to f32). `_prog` is the program
/// the expression goes into, for builders that will add constant tables;
/// none needs one today.
pub fn decode_element(
    _prog: &mut Program,
    ty: &TensorType,
    buf: Buf,
    row: Expr,
    k: Expr,
) -> Result<Expr, String> {
    check(ty)?;
    let (k_len, _) = rows_of(ty);
    if let Encoding::Dense = ty.encoding {
        let at = add(mul(row, i(k_len as i64)), k);
        return match ty.dtype {
            smelt_ir::DType::F32 => Ok(load(buf, at, Scalar::F32)),
            smelt_ir::DType::F16 => Ok(half_to_f32(load(buf, at, Scalar::U16))),
            smelt_ir::DType::BF16 => Ok(bf16_to_f32(load(buf, at, Scalar::U16))),
            d => Err(format!("a dense {d} tensor does not decode to f32")),
        };
    }
    let len = scale_group_len(ty)? as i64;
    let s = block_scale_min(ty, buf, row.clone(), div(k.clone(), len))?;
    let q = block_quant(ty, buf, row, k)?;
    let v = mul(s.scale, cast(Scalar::F32, q));
    Ok(match s.offset {
        Some(o) => add(v, o),
        None => v,
    })
}

/// The scale (and offset) of sub-block `g` (`I64`) of the block at byte
/// `base`.
fn block_scale(f: BlockFormat, buf: Buf, base: Expr, g: Expr) -> BlockScale {
    let at = |off: i64| add(base.clone(), i(off));
    let plain = |scale| BlockScale {
        scale,
        offset: None,
    };
    match f {
        BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q5_0 => plain(half_at(buf, at(0))),
        BlockFormat::Q4_1 | BlockFormat::Q5_1 => BlockScale {
            scale: half_at(buf, at(0)),
            offset: Some(half_at(buf, at(2))),
        },
        BlockFormat::TQ1_0 => plain(half_at(buf, at(52))),
        BlockFormat::TQ2_0 => plain(half_at(buf, at(64))),
        BlockFormat::Q2K => {
            // A 4-bit scale (low nibble) and min (high nibble) per 16.
            let sc = byte(buf, add(base.clone(), g));
            let dl = mul(
                half_at(buf, at(80)),
                cast(Scalar::F32, and(sc.clone(), c(0xf))),
            );
            let ml = mul(half_at(buf, at(82)), cast(Scalar::F32, shr(sc, c(4))));
            BlockScale {
                scale: dl,
                offset: Some(un(UnOp::Neg, ml)),
            }
        }
        BlockFormat::Q3K => {
            // Scale g: the low 4 bits in byte g % 8 (high nibble for g >= 8),
            // the high 2 bits in byte 8 + g % 4 at bit 2 (g / 4); biased by 32.
            let low_byte = byte(buf, add(at(96), rem(g.clone(), 8)));
            let low = and(
                shr(low_byte, cast(Scalar::I32, mul(div(g.clone(), 8), i(4)))),
                c(0xf),
            );
            let high_byte = byte(buf, add(at(104), rem(g.clone(), 4)));
            let high = and(
                shr(high_byte, cast(Scalar::I32, mul(div(g, 4), i(2)))),
                c(3),
            );
            let sc = sub(or(low, shl(high, c(4))), c(32));
            plain(mul(half_at(buf, at(108)), cast(Scalar::F32, sc)))
        }
        BlockFormat::Q4K | BlockFormat::Q5K => {
            // ggml's get_scale_min_k4 with every load in bounds: a = s[g & 3],
            // b = s[(g & 3) + 4], e = s[g + 4].
            let s = |idx: Expr| byte(buf, add(at(4), idx));
            let a = s(bin(BinOp::And, g.clone(), i(3)));
            let b = s(add(bin(BinOp::And, g.clone(), i(3)), i(4)));
            let e = s(add(g.clone(), i(4)));
            let low = cmp(CmpOp::Lt, g, i(4));
            let sc = select(
                low.clone(),
                and(a.clone(), c(63)),
                or(and(e.clone(), c(0xf)), shl(shr(a, c(6)), c(4))),
            );
            let m = select(
                low,
                and(b.clone(), c(63)),
                or(shr(e, c(4)), shl(shr(b, c(6)), c(4))),
            );
            BlockScale {
                scale: mul(half_at(buf, at(0)), cast(Scalar::F32, sc)),
                offset: Some(un(
                    UnOp::Neg,
                    mul(half_at(buf, at(2)), cast(Scalar::F32, m)),
                )),
            }
        }
        BlockFormat::Q6K => {
            let sc = cast(Scalar::F32, load(buf, add(at(192), g), Scalar::I8));
            plain(mul(half_at(buf, at(208)), sc))
        }
    }
}

/// The quant (`I32`, offset as [`block_quant`] says) of element `e` (`I64`,
/// within the block) of the block at byte `base`.
fn block_int(f: BlockFormat, buf: Buf, base: Expr, e: Expr) -> Expr {
    let at = |off: Expr| add(base.clone(), off);
    // Bits `shift .. shift + width` of an I32 byte, shift an I64 expression.
    let bits = |b: Expr, shift: Expr, width: i64| {
        and(shr(b, cast(Scalar::I32, shift)), c((1 << width) - 1))
    };
    // Q4_0 … Q5_1: element e is the low (e < 16) or high nibble of byte e % 16.
    let nibble = |qs: i64| {
        let b = byte(buf, at(add(i(qs), rem(e.clone(), 16))));
        bits(b, mul(div(e.clone(), 16), i(4)), 4)
    };
    // Q5_0/Q5_1: bit 4 of element e is bit e of the little-endian qh.
    let high5 = |qh: i64| {
        let b = byte(buf, at(add(i(qh), div(e.clone(), 8))));
        shl(bits(b, rem(e.clone(), 8), 1), c(4))
    };
    // 128-element halves, 32-element planes, position in the plane.
    let (half, plane, pos) = (
        div(e.clone(), 128),
        rem(div(e.clone(), 32), 4),
        rem(e.clone(), 32),
    );
    match f {
        BlockFormat::Q8_0 => cast(Scalar::I32, load(buf, at(add(i(2), e)), Scalar::I8)),
        BlockFormat::Q4_0 => sub(nibble(2), c(8)),
        BlockFormat::Q4_1 => nibble(4),
        BlockFormat::Q5_0 => sub(or(nibble(6), high5(2)), c(16)),
        BlockFormat::Q5_1 => or(nibble(8), high5(4)),
        BlockFormat::Q2K | BlockFormat::Q3K => {
            // 2-bit plane `plane` of byte 32·half + pos of qs.
            let qs = if f == BlockFormat::Q2K { 16 } else { 32 };
            let b = byte(
                buf,
                at(add(i(qs), add(mul(half.clone(), i(32)), pos.clone()))),
            );
            let q = bits(b, mul(plane.clone(), i(2)), 2);
            if f == BlockFormat::Q2K {
                q
            } else {
                // hmask[pos] bit 4·half + plane set: keep; clear: subtract 4.
                let hm = byte(buf, at(pos));
                let set = bits(hm, add(mul(half, i(4)), plane), 1);
                sub(q, mul(sub(c(1), set), c(4)))
            }
        }
        BlockFormat::Q4K | BlockFormat::Q5K => {
            // Byte 32·(e / 64) + e % 32 of qs: low nibble for the first 32 of
            // each 64, high for the second; Q5_K's bit 4 is bit e / 32 of qh[e % 32].
            let qs = if f == BlockFormat::Q4K { 16 } else { 48 };
            let chunk = div(e.clone(), 64);
            let b = byte(buf, at(add(i(qs), add(mul(chunk, i(32)), pos.clone()))));
            let q = bits(b, mul(rem(div(e.clone(), 32), 2), i(4)), 4);
            if f == BlockFormat::Q4K {
                q
            } else {
                let qh = byte(buf, at(add(i(16), pos)));
                or(q, shl(bits(qh, div(e, 32), 1), c(4)))
            }
        }
        BlockFormat::Q6K => {
            // ql byte 64·half + 32·(plane % 2) + pos, nibble plane / 2; qh
            // byte 32·half + pos, bits 2·plane; minus 32.
            let ql_at = add(
                mul(half.clone(), i(64)),
                add(mul(rem(plane.clone(), 2), i(32)), pos.clone()),
            );
            let low = bits(byte(buf, at(ql_at)), mul(div(plane.clone(), 2), i(4)), 4);
            let qh_at = add(i(128), add(mul(half, i(32)), pos));
            let high = bits(byte(buf, at(qh_at)), mul(plane, i(2)), 2);
            sub(or(low, shl(high, c(4))), c(32))
        }
        BlockFormat::TQ1_0 => {
            // Elements 0..160: byte e % 32, digit e / 32; 160..240: byte
            // 32 + (e - 160) % 16, digit (e - 160) / 16; 240..256: byte
            // 48 + (e - 240) % 4, digit (e - 240) / 4.
            let lt = |n: i64| cmp(CmpOp::Lt, e.clone(), i(n));
            let r1 = sub(e.clone(), i(160));
            let r2 = sub(e.clone(), i(240));
            let idx = select(
                lt(160),
                rem(e.clone(), 32),
                select(
                    lt(240),
                    add(i(32), rem(r1.clone(), 16)),
                    add(i(48), rem(r2.clone(), 4)),
                ),
            );
            let n = select(
                lt(160),
                div(e.clone(), 32),
                select(lt(240), div(r1, 16), div(r2, 4)),
            );
            let pow3 = (1..5).rev().fold(c(1), |acc, k| {
                select(cmp(CmpOp::Eq, n.clone(), i(k)), c(3i64.pow(k as u32)), acc)
            });
            // ((byte · 3^n) mod 256) · 3 >> 8: the digit of a base-3 fraction.
            let q = and(mul(byte(buf, at(idx)), pow3), c(0xff));
            sub(shr(mul(q, c(3)), c(8)), c(1))
        }
        BlockFormat::TQ2_0 => {
            // Bits 2·plane of byte 32·half + pos.
            let b = byte(buf, at(add(mul(half, i(32)), pos)));
            sub(bits(b, mul(plane, i(2)), 2), c(1))
        }
    }
}

/// Integer `index` (`I64`) of the values packed at byte `off` of `buf`, as
/// `I32` (sign-extended for the signed types).
fn affine_int(s: AffineStorage, buf: Buf, off: usize, index: Expr) -> Expr {
    let nibble = || {
        let b = byte(buf, add(i(off as i64), div(index.clone(), 2)));
        let shift = cast(Scalar::I32, mul(rem(index.clone(), 2), i(4)));
        and(shr(b, shift), c(0xf))
    };
    let elem = |ty: Scalar| {
        let n = ty.bytes() as usize;
        cast(
            Scalar::I32,
            load(buf, add(i((off / n) as i64), index.clone()), ty),
        )
    };
    match s {
        AffineStorage::I8 => elem(Scalar::I8),
        AffineStorage::U8 => elem(Scalar::U8),
        AffineStorage::I16 => elem(Scalar::I16),
        AffineStorage::U16 => elem(Scalar::U16),
        // Sign-extend: to the top of an I32 and back (arithmetic shift).
        AffineStorage::I4 => shr(shl(nibble(), c(28)), c(28)),
        AffineStorage::U4 => nibble(),
    }
}

/// The scale group (`I64`) of element `k` of row `row` (the index in the
/// row-major scale tensor, as `smelt_ir`'s affine decoder computes it).
fn affine_group(a: &Affine, shape: &[usize], row: Expr, k: Expr) -> Expr {
    let k_len = shape.last().copied().unwrap_or(1) as i64;
    let flat = add(mul(row, i(k_len)), k);
    let inner_of = |axis: usize| shape[axis + 1..].iter().product::<usize>().max(1) as i64;
    match a.granularity {
        Granularity::PerTensor => i(0),
        Granularity::PerAxis { axis } => rem(div(flat, inner_of(axis)), shape[axis] as i64),
        Granularity::PerBlock { axis, block } => {
            let (d, inner) = (shape[axis] as i64, inner_of(axis));
            let outer = div(flat.clone(), d * inner);
            let kk = rem(div(flat.clone(), inner), d);
            let r = rem(flat, inner);
            let blocks = shape[axis].div_ceil(block) as i64;
            add(
                mul(add(mul(outer, i(blocks)), div(kk, block as i64)), i(inner)),
                r,
            )
        }
    }
}

mod gemv;
mod matvec;

pub use gemv::{XRow, vector_dot};
pub use matvec::{encoded_dot, encoded_matvec};

#[cfg(test)]
mod tests;
