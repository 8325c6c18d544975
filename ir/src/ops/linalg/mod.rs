//! Matrix products and attention: `MatMul`, `Gemm`, `Einsum`, `Attention`,
//! `LinearAttention`, `RotaryEmbedding` and `Det`.
//!
//! Every product goes through one kernel, [`matmul_acc`], which walks `i-k-j`
//! over contiguous rows (blocked over `k` and `j` so a tile of `B` stays in
//! cache) so the compiler vectorises the innermost loop; it is the hot path
//! of transformer models in the interpreter. `f16`/`bf16` accumulate in `f32`
//! and round once, like NumPy's half-precision `matmul`; `f32` accumulates in
//! `f32`, `f64` in `f64` and integers wrap like C.
//!
//! `Attention` and `RotaryEmbedding` compute in `f64` but round to the
//! tensor's type after each step where the ONNX reference (NumPy in that type)
//! rounds, so `f16`/`bf16` results match the reference bit for bit in the
//! common cases.
//!
//! One file per op or small group of related ops holds that op's parser,
//! shape rule (`infer_*`), evaluation (`eval_*`) and work estimate (`macs_*`),
//! with its tests; [`kernel`] holds the shared product kernel. This file keeps
//! the closed [`Linalg`] enum, the op table that declares each op's name (its
//! ONNX spelling) once, and the exhaustive dispatch of [`OpDef`].

use crate::dtype::DType;
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, fmt_list, req};
use crate::tensor::Tensor;
use crate::type_err;

mod attention;
mod det;
mod einsum;
mod kernel;
mod linear_attention;
mod matmul;
mod rope;

pub use attention::AttentionAttrs;
pub use einsum::{EinsumEq, Sub};
pub use kernel::{Acc, matmul_acc, transpose2};
pub use linear_attention::{LinearAttnAttrs, LinearRule};
pub use matmul::{GemmAttrs, MatmulDims, batched_matmul};

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Linalg {
    /// `MatMul(A, B)` with NumPy semantics (1-D operands, broadcast batches).
    MatMul,
    /// `Gemm(A, B, C?)`: `alpha * A' * B' + beta * C`.
    Gemm(GemmAttrs),
    /// `Einsum(inputs...)` with a parsed equation.
    Einsum(EinsumEq),
    /// Scaled dot-product attention (opsets 23, 24, 25).
    Attention(AttentionAttrs),
    /// Rotary positional embedding (opset 23).
    RotaryEmbedding {
        /// Rotate interleaved pairs instead of halves.
        interleaved: bool,
        /// Rotated leading part of each head (`0` = the whole head).
        rotary_dim: usize,
        /// Heads of a 3-D input (required for 3-D inputs).
        num_heads: Option<usize>,
    },
    /// Determinant of the trailing square matrices.
    Det,
    /// Linear attention with a recurrent state (opset 27).
    LinearAttention(LinearAttnAttrs),
}

#[rustfmt::skip]
family_ops! {
    Linalg, "linalg";
    Linalg::MatMul                 => "MatMul",          matmul::parse_matmul;
    Linalg::Gemm(_)                => "Gemm",            matmul::parse_gemm;
    Linalg::Einsum(_)              => "Einsum",          einsum::parse_einsum;
    Linalg::Attention(_)           => "Attention",       attention::parse_attention_node;
    Linalg::LinearAttention(_)     => "LinearAttention", linear_attention::parse_linear_attention;
    Linalg::RotaryEmbedding { .. } => "RotaryEmbedding", rope::parse_rotary_embedding;
    Linalg::Det                    => "Det",             det::parse_det;
}

// ---------------------------------------------------------------------------
// Helpers the op files share.

/// The static type of operand `i`.
fn ty<'a>(inputs: &[Option<InferInput<'a>>], i: usize, what: &str) -> Result<&'a TensorType> {
    req(inputs, i, what).map(|x| x.ty)
}

fn numeric_dtype(d: DType, op: &str) -> Result<()> {
    if d == DType::Bool {
        type_err!("{op} does not accept bool");
    }
    Ok(())
}

fn float_dtype(d: DType, op: &str, what: &str) -> Result<()> {
    if !d.is_float() {
        type_err!("{op} {what} must be a float type, got {d}");
    }
    Ok(())
}

/// The product of `dims` as a work count, saturating instead of overflowing.
fn saturating_product(dims: &[usize]) -> u64 {
    dims.iter()
        .fold(1u64, |acc, &x| acc.saturating_mul(x as u64))
}

/// The element count of all outputs.
fn out_elems(outputs: &[TensorType]) -> u64 {
    outputs
        .iter()
        .map(|t| t.numel().unwrap_or(0) as u64)
        .sum::<u64>()
}

// ---------------------------------------------------------------------------

impl OpDef for Linalg {
    fn name(&self) -> &'static str {
        op_name(self)
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Linalg::MatMul | Linalg::Det => vec![],
            Linalg::LinearAttention(l) => vec![
                ("q_num_heads", l.q_num_heads.to_string()),
                ("kv_num_heads", l.kv_num_heads.to_string()),
                ("scale", l.scale.to_string()),
                ("update_rule", l.rule.name().to_string()),
            ],
            Linalg::Gemm(g) => vec![
                ("alpha", g.alpha.to_string()),
                ("beta", g.beta.to_string()),
                ("transA", (g.trans_a as u8).to_string()),
                ("transB", (g.trans_b as u8).to_string()),
            ],
            Linalg::Einsum(e) => vec![("equation", e.text.clone())],
            Linalg::Attention(a) => {
                let mut v = vec![("is_causal", (a.is_causal as u8).to_string())];
                if let Some(h) = a.q_num_heads {
                    v.push(("q_num_heads", h.to_string()));
                }
                if let Some(h) = a.kv_num_heads {
                    v.push(("kv_num_heads", h.to_string()));
                }
                v.push(("qk_matmul_output_mode", a.qk_matmul_output_mode.to_string()));
                if let Some(s) = a.scale {
                    v.push(("scale", s.to_string()));
                }
                v.push(("softcap", a.softcap.to_string()));
                if let Some(p) = a.softmax_precision {
                    v.push(("softmax_precision", p.name().to_string()));
                }
                if a.left_window >= 0 || a.right_window >= 0 {
                    v.push(("window", fmt_list(&[a.left_window, a.right_window])));
                }
                v
            }
            Linalg::RotaryEmbedding {
                interleaved,
                rotary_dim,
                num_heads,
            } => {
                let mut v = vec![
                    ("interleaved", (*interleaved as u8).to_string()),
                    ("rotary_embedding_dim", rotary_dim.to_string()),
                ];
                if let Some(h) = num_heads {
                    v.push(("num_heads", h.to_string()));
                }
                v
            }
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            Linalg::MatMul
            | Linalg::Gemm(_)
            | Linalg::Einsum(_)
            | Linalg::Attention(_)
            | Linalg::RotaryEmbedding { .. }
            | Linalg::Det
            | Linalg::LinearAttention(_) => vec![],
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match self {
            Linalg::MatMul => matmul::infer_matmul(inputs),
            Linalg::Gemm(g) => matmul::infer_gemm(g, inputs),
            Linalg::Einsum(e) => einsum::infer_einsum(e, inputs),
            Linalg::Attention(a) => attention::infer_attention(a, inputs),
            Linalg::RotaryEmbedding {
                interleaved: _,
                rotary_dim,
                num_heads,
            } => rope::infer_rotary_embedding(*rotary_dim, *num_heads, inputs),
            Linalg::LinearAttention(l) => linear_attention::infer_linear_attention(l, inputs),
            Linalg::Det => det::infer_det(inputs),
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Linalg::MatMul => matmul::eval_matmul(inputs),
            Linalg::Gemm(g) => matmul::eval_gemm(g, inputs),
            Linalg::Einsum(e) => einsum::eval_einsum(e, inputs),
            Linalg::Attention(a) => attention::eval_attention(a, inputs),
            Linalg::LinearAttention(l) => linear_attention::eval_linear_attention(l, inputs),
            Linalg::RotaryEmbedding {
                interleaved,
                rotary_dim,
                num_heads,
            } => rope::eval_rotary_embedding(*interleaved, *rotary_dim, *num_heads, inputs),
            Linalg::Det => det::eval_det(inputs),
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        match self {
            Linalg::MatMul => matmul::macs_matmul(inputs),
            Linalg::Gemm(g) => matmul::macs_gemm(g, inputs),
            Linalg::Einsum(e) => einsum::macs_einsum(e, inputs),
            Linalg::Attention(a) => attention::macs_attention(a, inputs),
            Linalg::RotaryEmbedding { .. } => out_elems(outputs),
            Linalg::LinearAttention(l) => linear_attention::macs_linear_attention(l, inputs),
            Linalg::Det => det::macs_det(inputs, outputs),
        }
    }
}

/// Helpers the per-op test modules share.
#[cfg(test)]
mod test_util {
    use super::*;
    use crate::attrs::AttrValue;

    pub(super) fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    pub(super) fn run(op: &Linalg, ins: &[&Tensor]) -> Vec<Tensor> {
        let args: Vec<Option<&Tensor>> = ins.iter().map(|x| Some(*x)).collect();
        crate::ops::test_support::infer_and_eval(op, &args, false)
            .unwrap()
            .0
    }

    pub(super) fn parse(op: &str, opset: i64, attrs: Vec<(&str, AttrValue)>) -> Result<Linalg> {
        crate::ops::test_support::parse_node(Linalg::parse, op, opset, attrs, 0, 1).unwrap()
    }

    pub(super) fn einsum(eq: &str, ins: &[&Tensor]) -> Tensor {
        run(&Linalg::Einsum(EinsumEq::parse(eq).unwrap()), ins).remove(0)
    }

    pub(super) fn attention(attrs: Vec<(&str, AttrValue)>) -> Linalg {
        parse("Attention", 23, attrs).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::attrs::AttrValue;

    #[test]
    fn empty_and_extreme_inputs_do_not_panic() {
        let z = |shape: &[usize]| Tensor::zeros(DType::F32, shape.to_vec()).unwrap();
        assert_eq!(
            run(&Linalg::MatMul, &[&z(&[2, 0]), &z(&[0, 3])])[0],
            z(&[2, 3])
        );
        assert_eq!(
            run(&Linalg::MatMul, &[&z(&[0, 3]), &z(&[3, 0])])[0],
            z(&[0, 0])
        );
        assert_eq!(einsum("ij,jk->ik", &[&z(&[2, 0]), &z(&[0, 3])]), z(&[2, 3]));
        assert_eq!(einsum("ij->", &[&z(&[0, 3])]), z(&[]));
        assert_eq!(run(&Linalg::Det, &[&z(&[0, 2, 2])])[0], z(&[0]));
        assert_eq!(run(&Linalg::Det, &[&z(&[2, 0, 0])])[0], t(&[2], &[1., 1.]));
        let huge = MatmulDims::new(&[usize::MAX / 2, 1], &[1, 4]);
        assert!(huge.is_err());
        let q = z(&[1, 1, 2, 2]);
        let op = attention(vec![("is_causal", AttrValue::Int(1))]);
        for np in [i64::MIN, -1, 0, 1, i64::MAX] {
            let nonpad = Tensor::from_vec(vec![1], vec![np]).unwrap();
            let none: Option<&Tensor> = None;
            let out = op
                .eval(&[
                    Some(&q),
                    Some(&q),
                    Some(&q),
                    none,
                    none,
                    none,
                    Some(&nonpad),
                ])
                .unwrap();
            assert!(out[0].to_f64_vec().iter().all(|x| x.is_finite()));
        }
    }
}
