//! Weight ops: the ops that read a weight in its stored encoding, so a
//! quantized (or half-width) weight stays quantized from the file to the
//! artifact.
//!
//! - `Decode(w)`: the dense f32 values of `w`, a constant with a block or
//!   affine [`Encoding`] (f32 once decoded) or a dense f16/bf16 tensor.
//! - `EncodedMatMul(x, w[, bias])`: `x · decode(w)ᵀ + bias` with `x`
//!   f32 `[…, K]`, `w` `[N, K]` stored as `Decode` accepts it (the blocks run
//!   along `K`, the reduction axis, as in GGUF) and `bias` f32 `[N]`; the
//!   result is f32 `[…, N]`. A weight-only kernel decodes `w` as it goes and
//!   never materialises the f32 matrix.
//! - `EncodedGather(w, indices)`: rows `indices` (integers, negative ones
//!   counting from the end, ONNX `Gather` on axis 0) of `decode(w)`, `w`
//!   `[R, K]`: f32 `[…indices, K]`. An embedding lookup that decodes only
//!   the rows it reads.
//!
//! Like the fused family, these are internal ops: no ONNX model spells them
//! (the `--quantize` pass and the optimizer make them), so [`Weights::parse`]
//! only answers in the internal [`DOMAIN`] and the IR text reads them back
//! through [`Weights::from_text`].
//!
//! The meaning is defined by composition: `Decode` is
//! [`dequantize`](crate::encoding::dequantize) (the interpreter hands an
//! op the decoded values of an encoded constant; a dense half tensor is
//! widened here), `EncodedMatMul` is `Decode`, `Transpose`, the reference
//! `MatMul` and the broadcasting `Add` of the bias, `EncodedGather` is
//! `Decode` then `Gather` on axis 0.

use crate::dtype::DType;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::elementwise::{BinaryFn, Elementwise};
use crate::ops::layout::Layout;
use crate::ops::linalg::Linalg;
use crate::ops::{InferInput, Op, OpDef, ParseCtx, check_arity, opt, req};
use crate::tensor::Tensor;

/// The ONNX domain the weight ops answer in (no ONNX exporter writes it).
pub const DOMAIN: &str = "ai.smelt";

/// An op that reads a weight in its stored encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// `Decode(w)`: the dense f32 values of an encoded or half weight.
    Decode,
    /// `EncodedMatMul(x, w[, bias])`: `x · decode(w)ᵀ + bias`.
    EncodedMatMul,
    /// `EncodedGather(w, indices)`: rows of `decode(w)`.
    EncodedGather,
}

impl Weights {
    /// The ONNX op types of the default domain this family implements (none).
    pub const ONNX_OPS: &'static [&'static str] = &[];

    /// Every op of the family.
    pub const ALL: [Weights; 3] = [
        Weights::Decode,
        Weights::EncodedMatMul,
        Weights::EncodedGather,
    ];

    /// A node of the internal [`DOMAIN`] (no attributes); `None` elsewhere.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Weights>> {
        if ctx.domain != DOMAIN {
            return None;
        }
        let op = Weights::ALL.into_iter().find(|w| w.name() == ctx.op_type)?;
        Some(op.check_attrs(ctx.attrs.names()))
    }

    /// The op the IR printer wrote as `name<attrs>`, when `name` is one of
    /// this family; the text has no attributes.
    pub fn from_text(name: &str, attrs: &[(String, String)]) -> Option<Result<Op>> {
        let op = Weights::ALL.into_iter().find(|w| w.name() == name)?;
        Some(
            op.check_attrs(attrs.iter().map(|(k, _)| k.as_str()))
                .map(Op::Weights),
        )
    }

    fn check_attrs<'a>(self, mut names: impl Iterator<Item = &'a str>) -> Result<Weights> {
        match names.next() {
            None => Ok(self),
            Some(k) => Err(Error::Unsupported(format!(
                "{} takes no attributes, got '{k}'",
                self.name()
            ))),
        }
    }

    /// Whether `ty` is a weight these ops read: encoded (block or affine)
    /// with f32 values, or dense f16/bf16.
    pub fn is_stored_weight(ty: &TensorType) -> bool {
        match ty.encoding {
            Encoding::Dense => matches!(ty.dtype, DType::F16 | DType::BF16),
            Encoding::Block(_) | Encoding::Affine(_) => ty.dtype == DType::F32,
        }
    }
}

/// Checks that `w` is a weight `Decode` reads, naming `op` in the error.
fn check_weight(op: &str, w: &TensorType) -> Result<()> {
    if Weights::is_stored_weight(w) {
        return Ok(());
    }
    Err(Error::Type(format!(
        "{op} reads a block- or affine-encoded f32 weight or a dense f16/bf16 one, got {w}; \
         a dense f32 weight needs no decoding (use MatMul or Gemm)"
    )))
}

fn infer_decode(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let w = req(inputs, 0, "w")?.ty;
    check_weight("Decode", w)?;
    Ok(vec![TensorType::new(DType::F32, w.shape.clone())])
}

fn infer_encoded_matmul(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 3)?;
    let x = req(inputs, 0, "x")?.ty;
    let w = req(inputs, 1, "w")?.ty;
    if x.dtype != DType::F32 || !x.is_dense() || x.shape.is_empty() {
        return Err(Error::Type(format!(
            "EncodedMatMul's x must be a dense f32 tensor of rank 1 or more, got {x}"
        )));
    }
    check_weight("EncodedMatMul", w)?;
    let [n, k] = w.shape[..] else {
        return Err(Error::Shape(format!(
            "EncodedMatMul's weight must be 2-D [N, K], got {w}"
        )));
    };
    let xk = x.shape[x.shape.len() - 1];
    if xk != k {
        return Err(Error::Shape(format!(
            "EncodedMatMul multiplies x {x} (K = {xk}) by a weight [N, K] = {w} (K = {k}); \
             the K dims must agree"
        )));
    }
    if let Some(b) = opt(inputs, 2).map(|b| b.ty)
        && (b.dtype != DType::F32 || !b.is_dense() || b.shape != [n])
    {
        return Err(Error::Type(format!(
            "EncodedMatMul's bias must be a dense f32[{n}], got {b}"
        )));
    }
    let mut out = x.shape.clone();
    *out.last_mut().expect("rank checked above") = n;
    Ok(vec![TensorType::new(DType::F32, out)])
}

fn infer_encoded_gather(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let w = req(inputs, 0, "w")?.ty;
    let idx = req(inputs, 1, "indices")?.ty;
    check_weight("EncodedGather", w)?;
    let [_, k] = w.shape[..] else {
        return Err(Error::Shape(format!(
            "EncodedGather's weight must be 2-D [R, K], got {w}"
        )));
    };
    if !matches!(idx.dtype, DType::I32 | DType::I64) || !idx.is_dense() {
        return Err(Error::Type(format!(
            "EncodedGather's indices must be dense i32 or i64, got {idx}"
        )));
    }
    let mut out = idx.shape.clone();
    out.push(k);
    Ok(vec![TensorType::new(DType::F32, out)])
}

/// The single result of `op` on `inputs`.
fn one(op: Op, inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    op.eval(inputs)?
        .pop()
        .ok_or_else(|| Error::Eval(format!("{} produced no result", op.name())))
}

fn eval_encoded_matmul(inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    let x = req(inputs, 0, "x")?;
    let w = req(inputs, 1, "w")?.cast(DType::F32);
    let transpose = Op::Layout(Layout::Transpose {
        perm: Some(vec![1, 0]),
    });
    let wt = one(transpose, &[Some(&w)])?;
    let y = one(Op::Linalg(Linalg::MatMul), &[Some(x), Some(&wt)])?;
    match opt(inputs, 2) {
        Some(b) => one(
            Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
            &[Some(&y), Some(b)],
        ),
        None => Ok(y),
    }
}

fn eval_encoded_gather(inputs: &[Option<&Tensor>]) -> Result<Tensor> {
    let w = req(inputs, 0, "w")?.cast(DType::F32);
    let idx = req(inputs, 1, "indices")?;
    one(
        Op::Layout(Layout::Gather { axis: 0 }),
        &[Some(&w), Some(idx)],
    )
}

impl OpDef for Weights {
    fn name(&self) -> &'static str {
        match self {
            Weights::Decode => "Decode",
            Weights::EncodedMatMul => "EncodedMatMul",
            Weights::EncodedGather => "EncodedGather",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn const_operands(&self) -> Vec<usize> {
        Vec::new()
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match self {
            Weights::Decode => infer_decode(inputs),
            Weights::EncodedMatMul => infer_encoded_matmul(inputs),
            Weights::EncodedGather => infer_encoded_gather(inputs),
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        // An encoded constant reaches `eval` decoded (the interpreter calls
        // `encoding::dequantize`, the reference decoder); a dense half one
        // as it is, widened here exactly.
        match self {
            Weights::Decode => Ok(vec![req(inputs, 0, "w")?.cast(DType::F32)]),
            Weights::EncodedMatMul => Ok(vec![eval_encoded_matmul(inputs)?]),
            Weights::EncodedGather => Ok(vec![eval_encoded_gather(inputs)?]),
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let out: u64 = outputs.iter().map(|t| t.numel().unwrap_or(0) as u64).sum();
        match self {
            // One decode per element.
            Weights::Decode | Weights::EncodedGather => out,
            // K multiply-adds per output element (the decode is part of the
            // load).
            Weights::EncodedMatMul => {
                let k = opt(inputs, 1).and_then(|w| w.shape.get(1).copied());
                out * k.unwrap_or(0) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests;
