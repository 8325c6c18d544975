//! What `smelt inspect` says about a language model: architecture, sizes,
//! parameters by storage encoding and the KV cache's cost per token.

use std::collections::BTreeMap;

use crate::checkpoint::{Arch, Checkpoint};

/// A language model described from its checkpoint alone.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmSummary {
    /// The family.
    pub arch: Arch,
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Query heads and key/value heads.
    pub heads: (usize, usize),
    /// Vocabulary size.
    pub vocab_size: usize,
    /// The model's trained context.
    pub max_positions: usize,
    /// Per storage encoding (`f32`, `f16`, `q8_0`, …): parameters and bytes.
    pub params_by_encoding: Vec<(String, u64, u64)>,
    /// Bytes of KV cache per token of context (f32 keys and values of every
    /// layer).
    pub kv_bytes_per_token: u64,
}

impl LlmSummary {
    /// Every parameter.
    pub fn params(&self) -> u64 {
        self.params_by_encoding.iter().map(|p| p.1).sum()
    }

    /// The KV cache bytes for a context of `ctx` tokens.
    pub fn kv_bytes(&self, ctx: usize) -> u64 {
        self.kv_bytes_per_token.saturating_mul(ctx as u64)
    }
}

/// The summary of `ckpt`.
pub fn summary(ckpt: &Checkpoint) -> LlmSummary {
    let c = &ckpt.config;
    let mut by: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for w in ckpt.tensors.values() {
        let label = if w.ty.is_dense() {
            w.ty.dtype.to_string()
        } else {
            w.ty.encoding.to_string()
        };
        let e = by.entry(label).or_default();
        e.0 += w.ty.shape.iter().map(|&d| d as u64).product::<u64>();
        e.1 += w.bytes.len() as u64;
    }
    let kv = (2 * c.num_layers * c.num_kv_heads) as u64 * c.head_dim as u64 * 4;
    LlmSummary {
        arch: c.arch,
        layers: c.num_layers,
        hidden_size: c.hidden_size,
        heads: (c.num_heads, c.num_kv_heads),
        vocab_size: c.vocab_size,
        max_positions: c.max_position_embeddings,
        params_by_encoding: by.into_iter().map(|(k, (p, b))| (k, p, b)).collect(),
        kv_bytes_per_token: kv,
    }
}
