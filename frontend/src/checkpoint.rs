//! A language-model checkpoint as every reader delivers it, whatever the file
//! format: the architecture's hyper-parameters ([`LlmConfig`]), the weights
//! under **canonical names** ([`Checkpoint::tensors`]), and the tokenizer's
//! raw description ([`TokenizerData`]).
//!
//! The GGUF reader and the Hugging Face folder reader each map their own
//! naming and metadata onto these types; the graph builder reads only these
//! types, so it never knows which file a model came from.
//!
//! ## Canonical tensor names and shapes
//!
//! `L` is a layer index (`0..num_layers`). Matrices are `[out, in]` (rows
//! are output features, a row holds one input vector's weights: Hugging
//! Face's `nn.Linear` layout, and GGUF's `ne = [in, out]` read row-major),
//! so an encoded weight's blocks run along `in`.
//!
//! | name | shape | notes |
//! |---|---|---|
//! | `embed_tokens` | `[vocab, hidden]` | |
//! | `layers.L.attn_norm` | `[hidden]` | RMSNorm weight before attention |
//! | `layers.L.q_proj` | `[heads·head_dim, hidden]` | |
//! | `layers.L.k_proj`, `layers.L.v_proj` | `[kv_heads·head_dim, hidden]` | |
//! | `layers.L.q_bias`, `layers.L.k_bias`, `layers.L.v_bias` | `[out]` | qwen2 only |
//! | `layers.L.q_norm`, `layers.L.k_norm` | `[head_dim]` | qwen3 only (per-head RMSNorm) |
//! | `layers.L.o_proj` | `[hidden, heads·head_dim]` | |
//! | `layers.L.ffn_norm` | `[hidden]` | RMSNorm weight before the MLP |
//! | `layers.L.gate_proj`, `layers.L.up_proj` | `[ffn, hidden]` | SwiGLU: `down(silu(gate x) · up x)` |
//! | `layers.L.down_proj` | `[hidden, ffn]` | |
//! | `norm` | `[hidden]` | final RMSNorm |
//! | `lm_head` | `[vocab, hidden]` | absent when [`LlmConfig::tie_word_embeddings`] |
//!
//! Norm weights are the multiplier itself (`x / rms(x) · w`), not `1 + w`.
//! Q and K rows are in the order [`LlmConfig::rope_layout`] says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use smelt_ir::{Bytes, TensorType};

/// The model families the graph builder knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama (SmolLM2, TinyLlama, Llama 2/3).
    Llama,
    /// Qwen2 / Qwen2.5: biases on q, k and v.
    Qwen2,
    /// Qwen3: per-head RMSNorm on q and k, no biases.
    Qwen3,
    /// Mistral: llama with an optional sliding window.
    Mistral,
}

impl Arch {
    /// The name GGUF's `general.architecture` and Hugging Face's
    /// `model_type` use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Mistral => "mistral",
        }
    }
}

/// Which elements of a head vector RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    /// Element `i` with element `i + head_dim/2` (Hugging Face's
    /// `rotate_half`; llama.cpp's NEOX rope; GGUF qwen2/qwen3).
    Halves,
    /// Element `2i` with element `2i + 1` (llama.cpp's normal rope: GGUF
    /// llama/mistral files, whose converter permuted the q and k rows).
    Interleaved,
}

/// How the rotary frequencies are rescaled for long contexts
/// (`rope_scaling` in `config.json`, `rope.scaling.*` and the
/// `rope_freqs` tensor in GGUF).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f32,
    },
    /// Llama 3's per-frequency rescaling.
    Llama3 {
        /// Overall factor.
        factor: f32,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f32,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f32,
        /// The context the model was trained with.
        original_max_position_embeddings: usize,
    },
    /// One factor per rotated pair, each frequency divided by its own
    /// (GGUF's `rope_freqs` tensor: how llama.cpp's converter stores Llama
    /// 3's rescaling).
    Factors(Vec<f32>),
}

/// The hyper-parameters of a llama-family decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmConfig {
    /// The family.
    pub arch: Arch,
    /// Vocabulary size (rows of `embed_tokens`).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (GQA when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head (usually `hidden_size / num_heads`).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RoPE rescaling, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// How q/k rows pair up under RoPE.
    pub rope_layout: RopeLayout,
    /// The longest context the model was trained for.
    pub max_position_embeddings: usize,
    /// The output head reuses `embed_tokens`.
    pub tie_word_embeddings: bool,
    /// Mistral's sliding attention window, if any.
    pub sliding_window: Option<usize>,
}

/// One weight: its type (dtype, canonical shape, encoding: a GGUF block
/// format stays a block format) and its bytes, usually a window into the
/// memory-mapped file.
#[derive(Clone, Debug)]
pub struct Weight {
    /// Logical dtype, shape and storage encoding.
    pub ty: TensorType,
    /// The stored bytes, `ty.bytes()` long.
    pub bytes: Bytes,
}

/// The tokenizer as the checkpoint describes it, not yet interpreted: the
/// tokenizer module turns it into the compact table the runtime reads.
#[derive(Clone, Debug)]
pub enum TokenizerData {
    /// A Hugging Face folder's `tokenizer.json`, with `tokenizer_config.json`
    /// when present (chat template, special tokens, BOS/EOS rules).
    HuggingFace {
        /// `tokenizer.json`.
        tokenizer_json: PathBuf,
        /// `tokenizer_config.json`, if the folder has one.
        tokenizer_config: Option<PathBuf>,
    },
    /// GGUF's `tokenizer.ggml.*` metadata.
    Gguf(GgufTokenizer),
}

/// The `tokenizer.ggml.*` keys of a GGUF file.
#[derive(Clone, Debug, Default)]
pub struct GgufTokenizer {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"`
    /// (SentencePiece BPE with byte fallback).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer's name (`"smollm"`, `"qwen2"`, …).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities).
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type` (normal, unknown, control, user, unused, byte).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` (`"a b"` pairs, byte-level BPE).
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

/// A checkpoint, read and validated, ready for the graph builder.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The architecture.
    pub config: LlmConfig,
    /// Every weight under its canonical name (see the module doc).
    pub tensors: BTreeMap<String, Weight>,
    /// The tokenizer, when the checkpoint carries one.
    pub tokenizer: Option<TokenizerData>,
    /// Token ids that end generation (`eos_token_id`, which may be a list in
    /// `generation_config.json`).
    pub eos_token_ids: Vec<u32>,
    /// The beginning-of-sequence token, if the model uses one.
    pub bos_token_id: Option<u32>,
}
