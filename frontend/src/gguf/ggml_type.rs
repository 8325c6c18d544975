//! The ggml tensor type table: which GGUF tensor type codes smelt reads,
//! how many bytes a tensor of each takes, and the [`TensorType`] it becomes.
//!
//! Element types (F32, F16, BF16, the integers, F64) become dense tensors of
//! their dtype; block formats become `f32` tensors stored in their
//! [`BlockFormat`] (the bytes are ggml's, unchanged: never widened). Codes
//! ggml defines but smelt does not decode are named in the error, so a user
//! knows to requantize rather than suspect a corrupt file.

use smelt_ir::{BlockFormat, DType, Encoding, TensorType};

/// A tensor type smelt reads from GGUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    /// One element of a dtype after the other (F32, F16, BF16, I8, I16,
    /// I32, I64, F64).
    Dense(DType),
    /// ggml blocks along `ne[0]`.
    Block(BlockFormat),
}

/// What a type code is, when smelt does not read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeCodeError {
    /// A type ggml defines that smelt does not decode, by its ggml name.
    Unsupported(&'static str),
    /// A code ggml does not define (or no longer does).
    Unknown,
}

/// ggml type codes smelt does not decode, with their names (`ggml.h`).
const UNSUPPORTED: &[(u32, &str)] = &[
    (9, "Q8_1"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (29, "IQ1_M"),
    (39, "MXFP4"),
];

impl GgmlType {
    /// The type of GGUF code `code`.
    pub fn from_code(code: u32) -> Result<GgmlType, TypeCodeError> {
        let dense = match code {
            0 => Some(DType::F32),
            1 => Some(DType::F16),
            24 => Some(DType::I8),
            25 => Some(DType::I16),
            26 => Some(DType::I32),
            27 => Some(DType::I64),
            28 => Some(DType::F64),
            30 => Some(DType::BF16),
            _ => None,
        };
        if let Some(d) = dense {
            return Ok(GgmlType::Dense(d));
        }
        if let Some(f) = BlockFormat::from_gguf_type(code) {
            return Ok(GgmlType::Block(f));
        }
        match UNSUPPORTED.iter().find(|(c, _)| *c == code) {
            Some(&(_, name)) => Err(TypeCodeError::Unsupported(name)),
            None => Err(TypeCodeError::Unknown),
        }
    }

    /// ggml's name for the type (`F32`, `Q4_0`, `Q6_K`, …).
    pub fn name(self) -> String {
        match self {
            GgmlType::Dense(d) => d.to_string().to_ascii_uppercase(),
            GgmlType::Block(f) => f.name().to_ascii_uppercase(),
        }
    }

    /// Elements per block: 1 for element types.
    pub fn block_len(self) -> usize {
        match self {
            GgmlType::Dense(_) => 1,
            GgmlType::Block(f) => f.block_len(),
        }
    }

    /// Bytes per block (per element for element types).
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::Dense(d) => d.elem_bytes(),
            GgmlType::Block(f) => f.block_bytes(),
        }
    }

    /// The type of a tensor of this ggml type whose dims are `shape`
    /// (row-major, outermost first: GGUF's `ne` reversed).
    pub fn tensor_type(self, shape: Vec<usize>) -> smelt_ir::Result<TensorType> {
        match self {
            GgmlType::Dense(d) => Ok(TensorType::new(d, shape)),
            GgmlType::Block(f) => TensorType::encoded(DType::F32, shape, Encoding::Block(f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for f in BlockFormat::ALL {
            assert_eq!(GgmlType::from_code(f.gguf_type()), Ok(GgmlType::Block(f)));
        }
        assert_eq!(
            GgmlType::from_code(8),
            Ok(GgmlType::Block(BlockFormat::Q8_0))
        );
        assert_eq!(GgmlType::from_code(30), Ok(GgmlType::Dense(DType::BF16)));
        assert_eq!(
            GgmlType::from_code(20),
            Err(TypeCodeError::Unsupported("IQ4_NL"))
        );
        assert_eq!(GgmlType::from_code(4), Err(TypeCodeError::Unknown));
        assert_eq!(GgmlType::from_code(u32::MAX), Err(TypeCodeError::Unknown));
        assert_eq!(GgmlType::Block(BlockFormat::Q6K).name(), "Q6_K");
    }
}
