//! Element types of tensors.
//!
//! A `DType` is a logical element type. How elements are stored (densely,
//! in GGUF blocks, as affine integers) is the tensor type's
//! [`Encoding`](crate::Encoding), so the size of a whole tensor is asked of
//! [`TensorType::bytes`](crate::TensorType::bytes) (or
//! [`Encoding::storage_bytes`](crate::Encoding::storage_bytes)), never
//! computed as bytes per element times count at call sites.
//! [`DType::elem_bytes`] remains for per-element work on dense data (a
//! scalar load, a byte swap).

use std::fmt;

use crate::error::{Error, Result};

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the top half of a binary32).
    BF16,
    /// IEEE 754 binary64.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte per element (0 or 1).
    Bool,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 13] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
    ];

    /// The short name used by the IR printer and the CLI (`f32`, `i64`, `bool`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::I64 => "i64",
            DType::U64 => "u64",
            DType::Bool => "bool",
        }
    }

    /// Parses a name produced by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Size in bytes of one element of a dense tensor (for per-element work;
    /// whole-tensor sizes come from [`TensorType::bytes`](crate::TensorType::bytes)).
    pub fn elem_bytes(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Bytes needed to store `numel` elements densely, with overflow checked
    /// (the dense case of [`Encoding::storage_bytes`](crate::Encoding::storage_bytes)).
    pub fn storage_bytes(self, numel: usize) -> Result<usize> {
        numel
            .checked_mul(self.elem_bytes())
            .ok_or_else(|| Error::Overflow(format!("{numel} elements of {self}")))
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }

    /// True for the signed and unsigned integer types (not `bool`).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::U8
                | DType::I16
                | DType::U16
                | DType::I32
                | DType::U32
                | DType::I64
                | DType::U64
        )
    }

    /// True for the signed integer types.
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// The ONNX `TensorProto.DataType` code of this dtype.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
            DType::BF16 => 16,
        }
    }

    /// The dtype for an ONNX `TensorProto.DataType` code, or an error naming the
    /// ONNX type when smelt does not support it (strings, complex, float8, int4, …).
    pub fn from_onnx_code(code: i32) -> Result<DType> {
        if let Some(d) = DType::ALL.into_iter().find(|d| d.onnx_code() == code) {
            return Ok(d);
        }
        let name = match code {
            0 => "UNDEFINED",
            8 => "STRING",
            14 => "COMPLEX64",
            15 => "COMPLEX128",
            17 => "FLOAT8E4M3FN",
            18 => "FLOAT8E4M3FNUZ",
            19 => "FLOAT8E5M2",
            20 => "FLOAT8E5M2FNUZ",
            21 => "UINT4",
            22 => "INT4",
            23 => "FLOAT4E2M1",
            24 => "FLOAT8E8M0",
            25 => "UINT2",
            26 => "INT2",
            _ => "unknown",
        };
        Err(Error::Unsupported(format!(
            "ONNX element type {name} (code {code}) is not supported"
        )))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rounds an `f64` to the precision of `d` (identity for `f64` and the
/// integer types): how the ops that emulate a reference implementation step
/// by step round each intermediate to the type it is computed in.
pub fn rounder(d: DType) -> fn(f64) -> f64 {
    match d {
        DType::F32 => |x| x as f32 as f64,
        DType::F16 => |x| half::f16::from_f64(x).to_f64(),
        DType::BF16 => |x| half::bf16::from_f64(x).to_f64(),
        _ => |x| x,
    }
}
