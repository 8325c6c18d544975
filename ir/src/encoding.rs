//! How a tensor's elements are stored: densely, in GGUF-compatible blocks, or
//! as affine (ONNX QDQ) integers with their scales.
//!
//! A [`TensorType`](crate::TensorType) has a logical element type (`dtype`,
//! e.g. `f32` for a Q4_0 weight: what the values mean once decoded) and an
//! [`Encoding`] (how the bytes hold them). Dense is today's layout, one
//! little-endian element after the other. The others exist for weights:
//!
//! - [`BlockFormat`]: ggml's block quantizations, byte-compatible with GGUF so
//!   a GGUF tensor's bytes are a constant's bytes unchanged;
//! - [`Affine`]: `x = (q - zero_point) * scale`, the ONNX
//!   `QuantizeLinear`/`DequantizeLinear` forms (per tensor, per axis, per
//!   block), with the integers and their scales in one buffer.
//!
//! **An encoded constant is self-contained**: its [`Bytes`](crate::Bytes)
//! hold everything needed to decode it (block formats carry their scales
//! inside each block; affine constants append scales and zero points after
//! the integers, see [`AffineLayout`]). So one function,
//! [`Encoding::storage_bytes`], gives the size of every tensor, and the
//! memory plan, the header writer and the cost model need no second case.
//!
//! Text form (the IR printer writes it after the type, separated by one
//! space; dense types print no suffix): `f32[64,32] q4_0`,
//! `f32[64,32] affine(i8,axis=0)`, `f32[64,32] affine(u4,axis=1,block=32,zp)`.
//! [`Encoding::parse`] reads it back.
//!
//! `dequantize` (in the `dequant` submodule) decodes every encoding to an f32
//! [`Tensor`](crate::Tensor); it is the reference the interpreter and the
//! quantized kernels are checked against. `quantize` (in `quantize`) is its
//! inverse, byte-identical to ggml's reference quantizers where they exist.

use std::fmt;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::numel;

mod dequant;
mod quantize;

pub use dequant::dequantize;
pub use quantize::{bf16_bits, f16_bits, quantize};

/// How a tensor's elements are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// One little-endian element of the dtype after the other.
    #[default]
    Dense,
    /// ggml/GGUF blocks along the innermost dimension.
    Block(BlockFormat),
    /// Affine integers with scales (and optionally zero points).
    Affine(Affine),
}

/// A ggml block quantization (GGUF-compatible bytes).
///
/// Every format splits the innermost dimension into blocks of
/// [`block_len`](BlockFormat::block_len) elements, stored one after another
/// in row-major order, each [`block_bytes`](BlockFormat::block_bytes) long.
/// Half-precision fields (`d`, `m`, `dmin`) are IEEE binary16, little-endian.
/// The layouts follow ggml's `ggml-common.h`; the value formulas its
/// `dequantize_row_*` (and the `gguf` Python package, against which the
/// decoders are tested byte for byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockFormat {
    /// 32 elements, 34 bytes: `d` (f16), then 32 `i8` `q`; `x = q * d`.
    Q8_0,
    /// 32 elements, 18 bytes: `d` (f16), then 16 bytes of 4-bit `q`: element
    /// `j` (0..16) is the low nibble of byte `j`, element `j + 16` its high
    /// nibble (grouped, not interleaved); `x = (q - 8) * d`.
    Q4_0,
    /// 32 elements, 20 bytes: `d`, `m` (f16), then 16 nibble bytes laid out
    /// as in Q4_0; `x = q * d + m`.
    Q4_1,
    /// 32 elements, 22 bytes: `d` (f16), `qh` (4 bytes: bit `j` of the
    /// little-endian `u32` is bit 4 of element `j`), then 16 nibble bytes as
    /// in Q4_0 (the low 4 bits); `x = (q - 16) * d`.
    Q5_0,
    /// 32 elements, 24 bytes: `d`, `m` (f16), `qh` (4 bytes), 16 nibble
    /// bytes, as in Q5_0; `x = q * d + m`.
    Q5_1,
    /// 256 elements, 84 bytes: `scales` (16 bytes: per 16 elements a 4-bit
    /// scale in the low and a 4-bit min in the high nibble), `qs` (64 bytes,
    /// 2-bit `q`), `d`, `dmin` (f16). Each half of 128 elements reads 32
    /// bytes of `qs`; 2-bit plane `s` (shift `2s`) of byte `l` is element
    /// `32s + l`; `x = d * sc * q - dmin * m`.
    Q2K,
    /// 256 elements, 110 bytes: `hmask` (32 bytes: the high bit of each
    /// 3-bit `q`, cleared meaning "subtract 4"), `qs` (64 bytes, low 2 bits,
    /// planes as in Q2_K), `scales` (12 bytes: sixteen 6-bit scales, biased
    /// by 32, packed as ggml's `kmask` code unpacks them), `d` (f16);
    /// `x = d * (sc - 32) * q`.
    Q3K,
    /// 256 elements, 144 bytes: `d`, `dmin` (f16), `scales` (12 bytes:
    /// eight 6-bit scales and eight 6-bit mins, ggml's `get_scale_min_k4`
    /// packing), `qs` (128 bytes): each 64 elements read 32 bytes, the low
    /// nibbles first, then the high nibbles; `x = d * sc * q - dmin * m`.
    Q4K,
    /// 256 elements, 176 bytes: `d`, `dmin`, `scales` as in Q4_K, `qh` (32
    /// bytes: bit `2i` / `2i + 1` of byte `l` is bit 4 of element `64i + l` /
    /// `64i + 32 + l`), `qs` (128 bytes, as in Q4_K).
    Q5K,
    /// 256 elements, 210 bytes: `ql` (128 bytes, low 4 bits), `qh` (64
    /// bytes, high 2 bits), `scales` (16 `i8`, one per 16 elements), `d`
    /// (f16); `x = d * sc * (q - 32)`. Each half of 128 elements reads 64
    /// bytes of `ql` and 32 of `qh`: element `l + 32i` (i in 0..4) takes
    /// nibble `i / 2` of `ql[l + 32 (i % 2)]` and bits `2i..2i+2` of `qh[l]`.
    Q6K,
    /// Ternary, 256 elements, 54 bytes: `qs` (48 bytes), `qh` (4 bytes), `d`
    /// (f16). Each byte packs 5 (in `qs`) or 4 (in `qh`) base-3 digits as a
    /// fixed-point fraction: digit `n` of byte `b` is
    /// `((b * 3^n) mod 256) * 3 >> 8`; `x = (digit - 1) * d`. Elements: the
    /// first 32 bytes of `qs` give 5 × 32, the next 16 give 5 × 16, `qh`
    /// gives 4 × 4, digit-major.
    TQ1_0,
    /// Ternary, 256 elements, 66 bytes: `qs` (64 bytes, four 2-bit `q` per
    /// byte: bits `2l..2l+2` of byte `32j + m` are element `128j + 32l + m`),
    /// `d` (f16); `x = (q - 1) * d`.
    TQ2_0,
}

impl BlockFormat {
    /// Every block format, in declaration order.
    pub const ALL: [BlockFormat; 12] = [
        BlockFormat::Q8_0,
        BlockFormat::Q4_0,
        BlockFormat::Q4_1,
        BlockFormat::Q5_0,
        BlockFormat::Q5_1,
        BlockFormat::Q2K,
        BlockFormat::Q3K,
        BlockFormat::Q4K,
        BlockFormat::Q5K,
        BlockFormat::Q6K,
        BlockFormat::TQ1_0,
        BlockFormat::TQ2_0,
    ];

    /// Elements per block (32, or 256 for the K-quants and the ternary formats).
    pub fn block_len(self) -> usize {
        match self {
            BlockFormat::Q8_0
            | BlockFormat::Q4_0
            | BlockFormat::Q4_1
            | BlockFormat::Q5_0
            | BlockFormat::Q5_1 => 32,
            BlockFormat::Q2K
            | BlockFormat::Q3K
            | BlockFormat::Q4K
            | BlockFormat::Q5K
            | BlockFormat::Q6K
            | BlockFormat::TQ1_0
            | BlockFormat::TQ2_0 => 256,
        }
    }

    /// Bytes per block (`sizeof(block_*)` in ggml).
    pub fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q8_0 => 2 + 32,
            BlockFormat::Q4_0 => 2 + 16,
            BlockFormat::Q4_1 => 2 + 2 + 16,
            BlockFormat::Q5_0 => 2 + 4 + 16,
            BlockFormat::Q5_1 => 2 + 2 + 4 + 16,
            BlockFormat::Q2K => 16 + 64 + 2 + 2,
            BlockFormat::Q3K => 32 + 64 + 12 + 2,
            BlockFormat::Q4K => 2 + 2 + 12 + 128,
            BlockFormat::Q5K => 2 + 2 + 12 + 32 + 128,
            BlockFormat::Q6K => 128 + 64 + 16 + 2,
            BlockFormat::TQ1_0 => 48 + 4 + 2,
            BlockFormat::TQ2_0 => 64 + 2,
        }
    }

    /// The GGUF tensor type code (`ggml_type`, `GGMLQuantizationType`).
    pub fn gguf_type(self) -> u32 {
        match self {
            BlockFormat::Q4_0 => 2,
            BlockFormat::Q4_1 => 3,
            BlockFormat::Q5_0 => 6,
            BlockFormat::Q5_1 => 7,
            BlockFormat::Q8_0 => 8,
            BlockFormat::Q2K => 10,
            BlockFormat::Q3K => 11,
            BlockFormat::Q4K => 12,
            BlockFormat::Q5K => 13,
            BlockFormat::Q6K => 14,
            BlockFormat::TQ1_0 => 34,
            BlockFormat::TQ2_0 => 35,
        }
    }

    /// The block format of a GGUF tensor type code; `None` for the element
    /// types (F32, F16, …) and the formats smelt does not know.
    pub fn from_gguf_type(code: u32) -> Option<BlockFormat> {
        BlockFormat::ALL.into_iter().find(|f| f.gguf_type() == code)
    }

    /// The lowercase name the IR printer uses (`q4_0`, `q4_k`, `tq1_0`).
    pub fn name(self) -> &'static str {
        match self {
            BlockFormat::Q8_0 => "q8_0",
            BlockFormat::Q4_0 => "q4_0",
            BlockFormat::Q4_1 => "q4_1",
            BlockFormat::Q5_0 => "q5_0",
            BlockFormat::Q5_1 => "q5_1",
            BlockFormat::Q2K => "q2_k",
            BlockFormat::Q3K => "q3_k",
            BlockFormat::Q4K => "q4_k",
            BlockFormat::Q5K => "q5_k",
            BlockFormat::Q6K => "q6_k",
            BlockFormat::TQ1_0 => "tq1_0",
            BlockFormat::TQ2_0 => "tq2_0",
        }
    }

    /// Parses a name produced by [`BlockFormat::name`].
    pub fn from_name(name: &str) -> Option<BlockFormat> {
        BlockFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Bytes of `numel` elements stored as rows of `row` elements: `row` must
    /// be a multiple of the block length.
    fn storage_bytes(self, row: usize, numel: usize) -> Result<usize> {
        if !row.is_multiple_of(self.block_len()) {
            return Err(Error::Encoding {
                encoding: Encoding::Block(self),
                msg: format!(
                    "the innermost dimension is {row}, not a multiple of the block length {}",
                    self.block_len()
                ),
            });
        }
        (numel / self.block_len())
            .checked_mul(self.block_bytes())
            .ok_or_else(|| Error::Overflow(format!("{numel} elements of {self}")))
    }
}

impl fmt::Display for BlockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The integer type of an affine-quantized tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AffineStorage {
    /// Signed 8-bit.
    I8,
    /// Unsigned 8-bit.
    U8,
    /// Signed 16-bit, little-endian.
    I16,
    /// Unsigned 16-bit, little-endian.
    U16,
    /// Signed 4-bit, two per byte, the earlier element in the low nibble
    /// (ONNX `INT4` packing).
    I4,
    /// Unsigned 4-bit, packed as [`AffineStorage::I4`].
    U4,
}

impl AffineStorage {
    /// Every storage type, in declaration order.
    pub const ALL: [AffineStorage; 6] = [
        AffineStorage::I8,
        AffineStorage::U8,
        AffineStorage::I16,
        AffineStorage::U16,
        AffineStorage::I4,
        AffineStorage::U4,
    ];

    /// Bits per element.
    pub fn bits(self) -> usize {
        match self {
            AffineStorage::I4 | AffineStorage::U4 => 4,
            AffineStorage::I8 | AffineStorage::U8 => 8,
            AffineStorage::I16 | AffineStorage::U16 => 16,
        }
    }

    /// True for the signed types.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            AffineStorage::I8 | AffineStorage::I16 | AffineStorage::I4
        )
    }

    /// The name in the IR text (`i8`, `u4`, …).
    pub fn name(self) -> &'static str {
        match self {
            AffineStorage::I8 => "i8",
            AffineStorage::U8 => "u8",
            AffineStorage::I16 => "i16",
            AffineStorage::U16 => "u16",
            AffineStorage::I4 => "i4",
            AffineStorage::U4 => "u4",
        }
    }

    /// Parses a name produced by [`AffineStorage::name`].
    pub fn from_name(name: &str) -> Option<AffineStorage> {
        AffineStorage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes of `count` packed elements (4-bit types round up to whole bytes).
    pub fn packed_bytes(self, count: usize) -> Result<usize> {
        count
            .checked_mul(self.bits())
            .map(|bits| bits.div_ceil(8))
            .ok_or_else(|| Error::Overflow(format!("{count} elements of {}", self.name())))
    }
}

/// Which elements share one scale (and zero point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per index along `axis` (ONNX `axis` with 1-D scales).
    PerAxis {
        /// The axis (non-negative, below the rank).
        axis: usize,
    },
    /// One scale per `block` consecutive indices along `axis`, for each
    /// index of the other axes (ONNX `block_size`): the scales form a tensor
    /// of the data's shape with `shape[axis]` replaced by
    /// `ceil(shape[axis] / block)`, row-major.
    PerBlock {
        /// The axis the blocks run along.
        axis: usize,
        /// Elements per block (at least 1).
        block: usize,
    },
}

/// An affine quantization: `x = (q - zero_point) * scale`, ONNX's
/// `DequantizeLinear`, with `q` of [`AffineStorage`] type and `scale` f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Affine {
    /// The integer type of `q` (and of the zero points).
    pub storage: AffineStorage,
    /// Which elements share a scale.
    pub granularity: Granularity,
    /// Whether zero points are stored; without them the zero point is 0.
    pub zero_point: bool,
}

/// Where the parts of an affine constant's bytes lie, in order:
///
/// 1. the quantized values, row-major, packed to `storage.bits()` (4-bit
///    types: two per byte, low nibble first, the last high nibble 0 when the
///    count is odd);
/// 2. zero bytes up to a multiple of 4, so the scales are aligned for an
///    f32 load on every target (the Cortex-M4F's `vldr` faults otherwise);
/// 3. the scales, one little-endian f32 per group, in the row-major order
///    of the scale tensor ([`Granularity`]);
/// 4. when present, the zero points, one per group, packed like the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AffineLayout {
    /// Elements of the tensor.
    pub numel: usize,
    /// Number of scales (and zero points).
    pub groups: usize,
    /// Bytes of the packed values (they start at offset 0).
    pub values_bytes: usize,
    /// Offset of the first scale.
    pub scales_offset: usize,
    /// Offset of the first zero point, when they are stored.
    pub zero_points_offset: Option<usize>,
    /// The whole size.
    pub total: usize,
}

impl Affine {
    /// The number of scale groups of a tensor of `shape`, checking that the
    /// granularity fits the shape.
    pub fn groups(&self, shape: &[usize]) -> Result<usize> {
        let bad = |msg: String| Error::Encoding {
            encoding: Encoding::Affine(*self),
            msg,
        };
        match self.granularity {
            Granularity::PerTensor => Ok(1),
            Granularity::PerAxis { axis } => shape.get(axis).copied().ok_or_else(|| {
                bad(format!(
                    "axis {axis} is out of range for rank {}",
                    shape.len()
                ))
            }),
            Granularity::PerBlock { axis, block } => {
                if block == 0 {
                    return Err(bad("the block size must be at least 1".into()));
                }
                let Some(&d) = shape.get(axis) else {
                    return Err(bad(format!(
                        "axis {axis} is out of range for rank {}",
                        shape.len()
                    )));
                };
                let mut scale_shape = shape.to_vec();
                scale_shape[axis] = d.div_ceil(block);
                numel(&scale_shape)
            }
        }
    }

    /// Where values, scales and zero points lie in a tensor of `shape`.
    pub fn layout(&self, shape: &[usize]) -> Result<AffineLayout> {
        let overflow = || Error::Overflow(format!("affine tensor of shape {shape:?}"));
        let n = numel(shape)?;
        let groups = self.groups(shape)?;
        let values_bytes = self.storage.packed_bytes(n)?;
        let scales_offset = values_bytes
            .checked_next_multiple_of(4)
            .ok_or_else(overflow)?;
        let scales_end = groups
            .checked_mul(4)
            .and_then(|b| b.checked_add(scales_offset))
            .ok_or_else(overflow)?;
        let (zero_points_offset, total) = if self.zero_point {
            let zp = self.storage.packed_bytes(groups)?;
            (
                Some(scales_end),
                scales_end.checked_add(zp).ok_or_else(overflow)?,
            )
        } else {
            (None, scales_end)
        };
        Ok(AffineLayout {
            numel: n,
            groups,
            values_bytes,
            scales_offset,
            zero_points_offset,
            total,
        })
    }
}

impl fmt::Display for Affine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "affine({}", self.storage.name())?;
        match self.granularity {
            Granularity::PerTensor => {}
            Granularity::PerAxis { axis } => write!(f, ",axis={axis}")?,
            Granularity::PerBlock { axis, block } => write!(f, ",axis={axis},block={block}")?,
        }
        if self.zero_point {
            f.write_str(",zp")?;
        }
        f.write_str(")")
    }
}

impl Encoding {
    /// True for [`Encoding::Dense`].
    pub fn is_dense(&self) -> bool {
        matches!(self, Encoding::Dense)
    }

    /// **The** size function: bytes of a tensor of logical type `dtype` and
    /// `shape` stored in this encoding, with every multiplication checked.
    ///
    /// Errors: an encoded tensor whose dtype is not a float (an encoding
    /// decodes to real numbers), a block format whose innermost dimension is
    /// not a multiple of its block length (or a rank-0 tensor), an affine
    /// axis out of range or a zero block size, and overflow.
    pub fn storage_bytes(&self, dtype: DType, shape: &[usize]) -> Result<usize> {
        let n = numel(shape)?;
        if !self.is_dense() && !dtype.is_float() {
            return Err(Error::Encoding {
                encoding: *self,
                msg: format!("the logical dtype must be a float type, not {dtype}"),
            });
        }
        match self {
            Encoding::Dense => dtype.storage_bytes(n),
            Encoding::Block(f) => {
                let Some(&row) = shape.last() else {
                    return Err(Error::Encoding {
                        encoding: *self,
                        msg: "a block-quantized tensor needs at least one dimension".into(),
                    });
                };
                f.storage_bytes(row, n)
            }
            Encoding::Affine(a) => Ok(a.layout(shape)?.total),
        }
    }

    /// Parses the text form written by `Display` (`dense`, `q4_0`,
    /// `affine(i8,axis=0,zp)`, …).
    pub fn parse(text: &str) -> Result<Encoding> {
        let bad = || Error::Unsupported(format!("unknown encoding '{text}'"));
        if text == "dense" {
            return Ok(Encoding::Dense);
        }
        if let Some(f) = BlockFormat::from_name(text) {
            return Ok(Encoding::Block(f));
        }
        let inner = text
            .strip_prefix("affine(")
            .and_then(|t| t.strip_suffix(')'))
            .ok_or_else(bad)?;
        let mut parts = inner.split(',');
        let storage = parts
            .next()
            .and_then(AffineStorage::from_name)
            .ok_or_else(bad)?;
        let (mut axis, mut block, mut zero_point) = (None, None, false);
        for part in parts {
            let num = |v: &str| v.parse::<usize>().map_err(|_| bad());
            if part == "zp" && !zero_point {
                zero_point = true;
            } else if let Some(v) = part.strip_prefix("axis=")
                && axis.is_none()
                && !zero_point
            {
                axis = Some(num(v)?);
            } else if let Some(v) = part.strip_prefix("block=")
                && axis.is_some()
                && block.is_none()
                && !zero_point
            {
                block = Some(num(v)?);
            } else {
                return Err(bad());
            }
        }
        let granularity = match (axis, block) {
            (None, _) => Granularity::PerTensor,
            (Some(axis), None) => Granularity::PerAxis { axis },
            (Some(axis), Some(block)) => Granularity::PerBlock { axis, block },
        };
        Ok(Encoding::Affine(Affine {
            storage,
            granularity,
            zero_point,
        }))
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Dense => f.write_str("dense"),
            Encoding::Block(b) => write!(f, "{b}"),
            Encoding::Affine(a) => write!(f, "{a}"),
        }
    }
}

#[cfg(test)]
mod tests;
