//! The llama-family graph builder: a [`Checkpoint`] becomes one step of the
//! decoder as an [`ir::Graph`](smelt_ir::Graph), with the KV cache as
//! persistent state.
//!
//! One graph processes `T` tokens (fixed when it is built: `T = 1` is the
//! decode graph, `T = chunk` the prefill graph) at position `pos`:
//!
//! - inputs `tokens: i64[T]` and `pos: i64[1]` (the position of the first
//!   token; the caller advances it by `T` per step);
//! - output `logits: f32[T, vocab]` (or `f32[1, vocab]` for the last token
//!   only, [`LlmOptions::last_logits_only`]);
//! - state `k_cache.L` / `v_cache.L` per layer, f32 `[kv_heads, ctx,
//!   head_dim]`, all zero before the first step.
//!
//! Each layer writes its new keys and values into rows `pos..pos+T` of its
//! cache with one ONNX `ScatterND` whose data input is the state input and
//! its only reader; attention reads the cache only through that node's
//! result, so a backend may write it in place. Attention is ONNX
//! `Attention` over the whole cache (grouped-query heads) with an additive
//! mask computed at run time: key `j` is visible to token `t` when
//! `j <= pos + t` (and, with a sliding window `w`, `j > pos + t - w`), else
//! its logit gets `-inf`. RoPE angles come from `pos` at run time
//! ([`rope`]). Weights stay as the checkpoint stores them: dense f32 ones
//! feed `Gemm`, half and block-encoded ones `EncodedMatMul`.
//!
//! Positions at or past `ctx` are out of the cache: `ScatterND` refuses
//! them, so the caller must stop (or restart) before `pos + T > ctx`.

mod check;
mod emit;
pub mod rope;

use smelt_ir::{DType, Graph, TensorType, ValueId};

pub use check::{check, expected_shapes};

use crate::checkpoint::{Arch, Checkpoint, LlmConfig};
use crate::error::{Error, Result};
use emit::{Emitter, float, int};
use rope::Rope;

/// The largest context the builder picks by itself when none is asked for
/// (a model's own maximum is often far more than a small target holds).
pub const DEFAULT_MAX_CTX: usize = 4096;

/// How to build the step graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmOptions {
    /// Tokens per step (`T`): 1 for the decode graph, the chunk length for
    /// a prefill graph.
    pub tokens: usize,
    /// KV cache capacity in tokens (`--ctx`); `None` takes the model's
    /// `max_position_embeddings`, at most [`DEFAULT_MAX_CTX`]. A larger
    /// value than the model's maximum is clamped to it.
    pub ctx: Option<usize>,
    /// Output only the last token's logits (`[1, vocab]`).
    pub last_logits_only: bool,
}

impl Default for LlmOptions {
    fn default() -> LlmOptions {
        LlmOptions {
            tokens: 1,
            ctx: None,
            last_logits_only: false,
        }
    }
}

impl LlmOptions {
    /// The cache capacity for a model trained for `max_positions`.
    pub fn context(&self, max_positions: usize) -> usize {
        match self.ctx {
            Some(n) => n.min(max_positions),
            None => max_positions.min(DEFAULT_MAX_CTX),
        }
    }
}

/// The type of one layer's key cache, and of its value cache: f32
/// `[kv_heads, ctx, head_dim]`. The one definition of the cache layout:
/// [`build`] makes a state of this type per layer for the keys and another
/// for the values ([`kv_cache_bytes`]).
pub fn cache_type(c: &LlmConfig, ctx: usize) -> TensorType {
    TensorType::new(DType::F32, vec![c.num_kv_heads, ctx, c.head_dim])
}

/// Bytes of the whole KV cache [`build`] keeps as state for a context of
/// `ctx` tokens: a key and a value cache of [`cache_type`] per layer.
/// `None` when the size overflows.
pub fn kv_cache_bytes(c: &LlmConfig, ctx: usize) -> Option<u64> {
    let one = cache_type(c, ctx).bytes().ok()? as u64;
    one.checked_mul(2)?.checked_mul(c.num_layers as u64)
}

/// Builds the step graph of `ckpt` (validated first, [`check`]).
pub fn build(ckpt: &Checkpoint, opts: &LlmOptions) -> Result<Graph> {
    check(ckpt)?;
    let c = &ckpt.config;
    let t = opts.tokens;
    let ctx = opts.context(c.max_position_embeddings);
    if t == 0 || ctx == 0 || t > ctx {
        return Err(Error::Config {
            key: "ctx".into(),
            msg: format!(
                "a step of {t} tokens needs a context of at least that many (and at least one), got {ctx}"
            ),
        });
    }
    let kvh = c.num_kv_heads;
    let mut e = Emitter::new(ckpt);
    let tokens =
        e.g.add_input("tokens", TensorType::new(DType::I64, vec![t]))?;
    let pos = e.g.add_input("pos", TensorType::new(DType::I64, vec![1]))?;
    let steps = e.i64s("step_offsets", &[t], (0..t as i64).collect())?;
    let positions = e.op("Add", vec![], &[pos, steps], "positions")?;

    let rope = Rope::new(&mut e, c, positions, t)?;
    let mask = causal_mask(&mut e, positions, t, ctx, c.sliding_window)?;
    let rows = cache_rows(&mut e, positions, kvh, t)?;

    let mut x = e.embed("embed_tokens", tokens, "embed")?;
    for l in 0..c.num_layers {
        let layer = Layer {
            c,
            l,
            t,
            ctx,
            rope: &rope,
            mask,
            rows,
        };
        x = layer.attention(&mut e, x)?;
        x = layer.mlp(&mut e, x)?;
    }
    if opts.last_logits_only && t > 1 {
        let s = e.i64s("last.start", &[1], vec![t as i64 - 1])?;
        let end = e.i64s("last.end", &[1], vec![t as i64])?;
        let axes = e.i64s("last.axes", &[1], vec![0])?;
        x = e.op("Slice", vec![], &[x, s, end, axes], "last")?;
    }
    let x = rms_norm(&mut e, x, "norm", c.rms_norm_eps, "final_norm")?;
    let head = if c.tie_word_embeddings {
        "embed_tokens"
    } else {
        "lm_head"
    };
    let logits = e.linear(x, head, None, "logits")?;
    e.g.outputs.push(logits);
    let g = e.g;
    smelt_ir::verify::verify(&g)?;
    Ok(g)
}

/// `RMSNormalization(x, weight)` over the last axis.
fn rms_norm(
    e: &mut Emitter<'_>,
    x: ValueId,
    weight: &str,
    eps: f32,
    name: &str,
) -> Result<ValueId> {
    let w = e.dense_f32(weight)?;
    e.op(
        "RMSNormalization",
        vec![int("axis", -1), float("epsilon", eps)],
        &[x, w],
        name,
    )
}

/// The additive attention mask f32 `[T, ctx]`: 0 where key `j` is visible
/// to token `t` (`j <= pos + t`, and inside the sliding window), `-inf`
/// elsewhere.
fn causal_mask(
    e: &mut Emitter<'_>,
    positions: ValueId,
    t: usize,
    ctx: usize,
    window: Option<usize>,
) -> Result<ValueId> {
    let keys = e.i64s("mask.keys", &[1, ctx], (0..ctx as i64).collect())?;
    let last = e.reshape(positions, &[t, 1], "mask.last")?;
    let mut visible = e.op("LessOrEqual", vec![], &[keys, last], "mask.visible")?;
    if let Some(w) = window.filter(|&w| w < ctx) {
        let w = e.i64s("mask.window", &[1], vec![w as i64])?;
        let first = e.op("Sub", vec![], &[last, w], "mask.window_start")?;
        let inside = e.op("Greater", vec![], &[keys, first], "mask.in_window")?;
        visible = e.op("And", vec![], &[visible, inside], "mask.visible")?;
    }
    let zero = e.f32s("mask.zero", &[], vec![0.0])?;
    let ninf = e.f32s("mask.ninf", &[], vec![f32::NEG_INFINITY])?;
    e.op("Where", vec![], &[visible, zero, ninf], "mask")
}

/// The `ScatterND` indices i64 `[kv_heads, T, 2]` that address rows
/// `pos..pos+T` of every head of a `[kv_heads, ctx, d]` cache.
fn cache_rows(e: &mut Emitter<'_>, positions: ValueId, kvh: usize, t: usize) -> Result<ValueId> {
    let heads: Vec<i64> = (0..kvh as i64)
        .flat_map(|h| std::iter::repeat_n(h, t))
        .collect();
    let heads = e.i64s("cache.heads", &[kvh, t, 1], heads)?;
    let rows = e.reshape(positions, &[1, t, 1], "cache.rows")?;
    let zeros = e.i64s("cache.zeros", &[kvh, t, 1], vec![0; kvh * t])?;
    let rows = e.op("Add", vec![], &[rows, zeros], "cache.rows")?;
    e.op(
        "Concat",
        vec![int("axis", 2)],
        &[heads, rows],
        "cache.index",
    )
}

/// What every layer shares: the step's sizes and run-time tables.
struct Layer<'r> {
    c: &'r LlmConfig,
    l: usize,
    t: usize,
    ctx: usize,
    rope: &'r Rope,
    mask: ValueId,
    rows: ValueId,
}

impl Layer<'_> {
    /// The canonical name of this layer's weight `w`.
    fn w(&self, w: &str) -> String {
        format!("layers.{}.{w}", self.l)
    }

    /// `x + o_proj(attention(attn_norm(x)))`, writing this layer's cache.
    fn attention(&self, e: &mut Emitter<'_>, x: ValueId) -> Result<ValueId> {
        let c = self.c;
        let (t, d) = (self.t, c.head_dim);
        let (h, kvh) = (c.num_heads, c.num_kv_heads);
        let n = |s: &str| format!("l{}.{s}", self.l);
        let hn = rms_norm(e, x, &self.w("attn_norm"), c.rms_norm_eps, &n("attn_norm"))?;
        let biased = c.arch == Arch::Qwen2;
        let proj = |e: &mut Emitter<'_>, which: &str, heads: usize| -> Result<ValueId> {
            let bias = biased.then(|| self.w(&format!("{which}_bias")));
            let y = e.linear(
                hn,
                &self.w(&format!("{which}_proj")),
                bias.as_deref(),
                &n(which),
            )?;
            let mut y = e.reshape(y, &[t, heads, d], &n(which))?;
            if c.arch == Arch::Qwen3 && which != "v" {
                let norm = self.w(&format!("{which}_norm"));
                y = rms_norm(e, y, &norm, c.rms_norm_eps, &n(&format!("{which}_norm")))?;
            }
            if which != "v" {
                y = self.rope.apply(e, y, &n(&format!("{which}_rope")))?;
            }
            Ok(y)
        };
        let q = proj(e, "q", h)?;
        let k = proj(e, "k", kvh)?;
        let v = proj(e, "v", kvh)?;
        let cache_ty = cache_type(c, self.ctx);
        let cached = |e: &mut Emitter<'_>, kind: &str, new: ValueId| -> Result<ValueId> {
            let name = format!("{kind}_cache.{}", self.l);
            let state = e.g.add_state_input(name.clone(), cache_ty.clone())?;
            let new = e.transpose(new, &[1, 0, 2], &n(&format!("{kind}_rows")))?;
            let next = e.op(
                "ScatterND",
                vec![],
                &[state, self.rows, new],
                &format!("{name}.next"),
            )?;
            e.g.add_state(state, next)?;
            e.reshape(next, &[1, kvh, self.ctx, d], &n(&format!("{kind}_all")))
        };
        let k_all = cached(e, "k", k)?;
        let v_all = cached(e, "v", v)?;
        let q = e.transpose(q, &[1, 0, 2], &n("q_heads"))?;
        let q = e.reshape(q, &[1, h, t, d], &n("q_heads"))?;
        let y = e.op(
            "Attention",
            vec![],
            &[q, k_all, v_all, self.mask],
            &n("attention"),
        )?;
        let y = e.transpose(y, &[0, 2, 1, 3], &n("attention"))?;
        let y = e.reshape(y, &[t, h * d], &n("attention"))?;
        let o = e.linear(y, &self.w("o_proj"), None, &n("o_proj"))?;
        e.op("Add", vec![], &[x, o], &n("attn_residual"))
    }

    /// `x + down(silu(gate(ffn_norm(x))) · up(ffn_norm(x)))`.
    fn mlp(&self, e: &mut Emitter<'_>, x: ValueId) -> Result<ValueId> {
        let eps = self.c.rms_norm_eps;
        let n = |s: &str| format!("l{}.{s}", self.l);
        let hn = rms_norm(e, x, &self.w("ffn_norm"), eps, &n("ffn_norm"))?;
        let gate = e.linear(hn, &self.w("gate_proj"), None, &n("gate"))?;
        let up = e.linear(hn, &self.w("up_proj"), None, &n("up"))?;
        let sig = e.op("Sigmoid", vec![], &[gate], &n("silu"))?;
        let silu = e.op("Mul", vec![], &[gate, sig], &n("silu"))?;
        let act = e.op("Mul", vec![], &[silu, up], &n("swiglu"))?;
        let down = e.linear(act, &self.w("down_proj"), None, &n("down"))?;
        e.op("Add", vec![], &[x, down], &n("ffn_residual"))
    }
}
