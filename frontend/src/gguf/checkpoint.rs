//! A GGUF llama-family model as a [`Checkpoint`]: the hyper-parameters
//! from the `{arch}.*` keys, the tensors under their canonical names and
//! shapes (see [`crate::checkpoint`]), the tokenizer from
//! `tokenizer.ggml.*`.
//!
//! GGUF names a layer's tensors `blk.N.<part>.weight` (`.bias` for biases)
//! and stores a matrix as `ne = [in, out]`, which read row-major is the
//! canonical `[out, in]`; so a tensor's shape is its `ne` reversed and its
//! bytes are used as they are. llama.cpp's converter permutes the q and k
//! rows of llama and mistral models for its normal (interleaved) rope and
//! leaves qwen2/qwen3 in Hugging Face's halves order (its NEOX rope), which
//! [`LlmConfig::rope_layout`] records.
//!
//! Every tensor the architecture needs must be present with the shape the
//! hyper-parameters give it; a tensor the architecture does not use is an
//! error too (listing all of them), so no weight of the file is silently
//! dropped.

use std::collections::BTreeMap;

use super::GgufFile;
use super::cursor::error;
use crate::checkpoint::{Arch, Checkpoint, LlmConfig, RopeLayout, RopeScaling, Weight};
use crate::error::{Error, GgufErrorKind, GgufPlace, Result};

/// The architectures the graph builder knows, by GGUF name.
const ARCHES: [Arch; 4] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Mistral];

/// The architecture of `general.architecture`.
pub(super) fn arch(f: &GgufFile) -> Result<Arch> {
    let key = "general.architecture";
    let name = f.required(key, f.str_key(key)?)?;
    ARCHES
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = ARCHES.iter().map(|a| a.name()).collect();
            f.key_error(
                key,
                GgufErrorKind::Architecture,
                format!(
                    "architecture '{name}' is not supported; smelt builds {}",
                    known.join(", ")
                ),
            )
        })
}

/// Builds the checkpoint of `f`.
pub(super) fn build(f: &GgufFile) -> Result<Checkpoint> {
    let arch = arch(f)?;
    let config = config(f, arch)?;
    let tensors = tensors(f, &config)?;
    let tokenizer = super::tokenizer::read(f)?;
    let (eos_token_ids, bos_token_id) = match &tokenizer {
        Some(t) => {
            let mut eos: Vec<u32> = t.eos.into_iter().collect();
            if let Some(eot) = f.u32_key("tokenizer.ggml.eot_token_id")?
                && !eos.contains(&eot)
            {
                eos.push(eot);
            }
            // SentencePiece vocabularies add BOS unless told not to;
            // byte-level BPE ones only when told to (llama.cpp's defaults).
            let adds_bos = t.add_bos.unwrap_or(t.model == "llama");
            (eos, t.bos.filter(|_| adds_bos))
        }
        None => (Vec::new(), None),
    };
    Ok(Checkpoint {
        config,
        tensors,
        tokenizer: tokenizer.map(crate::checkpoint::TokenizerData::Gguf),
        eos_token_ids,
        bos_token_id,
    })
}

/// The hyper-parameters from the `{arch}.*` keys and the embedding's shape.
fn config(f: &GgufFile, arch: Arch) -> Result<LlmConfig> {
    let p = arch.name();
    let k = |s: &str| format!("{p}.{s}");
    let need = |s: &str| -> Result<usize> {
        let key = k(s);
        f.required(&key, f.usize_key(&key)?)
    };
    let positive = |s: &str, v: usize| -> Result<usize> {
        if v == 0 {
            Err(f.key_error(
                &k(s),
                GgufErrorKind::KeyType,
                "the value must be at least 1".into(),
            ))
        } else {
            Ok(v)
        }
    };
    let hidden_size = need("embedding_length")?;
    let num_heads = positive("attention.head_count", need("attention.head_count")?)?;
    let kv_key = "attention.head_count_kv";
    let num_kv_heads = positive(kv_key, f.usize_key(&k(kv_key))?.unwrap_or(num_heads))?;
    if !num_heads.is_multiple_of(num_kv_heads) {
        return Err(f.key_error(
            &k(kv_key),
            GgufErrorKind::KeyType,
            format!("{num_kv_heads} key/value heads do not divide {num_heads} query heads"),
        ));
    }
    let head_dim = match f.usize_key(&k("attention.key_length"))? {
        Some(d) => positive("attention.key_length", d)?,
        None if hidden_size.is_multiple_of(num_heads) => hidden_size / num_heads,
        None => {
            return Err(f.key_error(
                &k("attention.key_length"),
                GgufErrorKind::MissingKey,
                format!(
                    "the width {hidden_size} is not a multiple of the {num_heads} heads, so the head width must be given"
                ),
            ));
        }
    };
    crate::checked::mul(num_heads, head_dim, || "heads × head width".into()).map_err(|e| {
        f.key_error(
            &k("attention.head_count"),
            GgufErrorKind::Overflow,
            e.to_string(),
        )
    })?;
    let num_layers = need("block_count")?;
    // Each layer has tensors of its own: a layer count past the tensor
    // count is refused before anything is sized by it.
    if num_layers > f.tensors().len() {
        return Err(f.key_error(
            &k("block_count"),
            GgufErrorKind::KeyType,
            format!(
                "{num_layers} layers, but the file has only {} tensors",
                f.tensors().len()
            ),
        ));
    }
    let unsupported = |s: &str, msg: String| f.key_error(&k(s), GgufErrorKind::Unsupported, msg);
    if let Some(v) = f.usize_key(&k("attention.value_length"))?
        && v != head_dim
    {
        return Err(unsupported(
            "attention.value_length",
            format!("value heads of width {v} differ from key heads of width {head_dim}"),
        ));
    }
    if let Some(r) = f.usize_key(&k("rope.dimension_count"))?
        && r != head_dim
    {
        return Err(unsupported(
            "rope.dimension_count",
            format!(
                "rope rotates {r} of the {head_dim} elements of a head; partial rotary embeddings are not supported"
            ),
        ));
    }
    let embd = f
        .tensor("token_embd.weight")
        .ok_or_else(|| missing(f, "token_embd.weight"))?;
    let vocab_size = match embd.ty.shape[..] {
        [v, h] if h == hidden_size => v,
        _ => {
            return Err(wrong_shape(
                f,
                "token_embd.weight",
                &embd.ty.shape,
                &format!("[vocab, {hidden_size}]"),
            ));
        }
    };
    if let Some(v) = f.usize_key(&k("vocab_size"))?
        && v != vocab_size
    {
        return Err(f.key_error(
            &k("vocab_size"),
            GgufErrorKind::KeyType,
            format!("the vocabulary has {v} tokens but token_embd.weight has {vocab_size} rows"),
        ));
    }
    let rms_key = k("attention.layer_norm_rms_epsilon");
    Ok(LlmConfig {
        arch,
        vocab_size,
        hidden_size,
        intermediate_size: need("feed_forward_length")?,
        num_layers,
        num_heads,
        num_kv_heads,
        head_dim,
        rms_norm_eps: f.required(&rms_key, f.f32_key(&rms_key)?)?,
        rope_theta: f.f32_key(&k("rope.freq_base"))?.unwrap_or(10_000.0),
        rope_scaling: match (rope_scaling(f, p)?, rope_factors(f, head_dim)?) {
            (None, factors) => factors,
            (scaling, None) => scaling,
            (Some(_), Some(_)) => {
                return Err(f.key_error(
                    &format!("{p}.rope.scaling.type"),
                    GgufErrorKind::Unsupported,
                    "a rope scaling type and per-pair rope factors (rope_freqs) together are \
                     not supported"
                        .into(),
                ));
            }
        },
        rope_layout: match arch {
            Arch::Llama | Arch::Mistral => RopeLayout::Interleaved,
            Arch::Qwen2 | Arch::Qwen3 => RopeLayout::Halves,
        },
        max_position_embeddings: need("context_length")?,
        tie_word_embeddings: f.tensor("output.weight").is_none(),
        sliding_window: f.usize_key(&k("attention.sliding_window"))?,
    })
}

/// The tensor of per-pair rope factors llama.cpp's converter writes for
/// Llama 3's rescaling.
const ROPE_FREQS: &str = "rope_freqs.weight";

/// The `rope_freqs` factors: F32, one per rotated pair (`head_dim / 2`),
/// each finite and positive.
fn rope_factors(f: &GgufFile, head_dim: usize) -> Result<Option<RopeScaling>> {
    let Some(t) = f.tensor(ROPE_FREQS) else {
        return Ok(None);
    };
    let bad = |msg: String| {
        error(
            &f.path,
            Some(t.info_offset),
            GgufPlace::Tensor(t.name.clone()),
            GgufErrorKind::Unsupported,
            msg,
        )
    };
    if t.ty.dtype != smelt_ir::DType::F32 || !t.ty.is_dense() || t.ty.shape != [head_dim / 2] {
        return Err(bad(format!(
            "rope factors must be f32[{}] (one per rotated pair), got {}",
            head_dim / 2,
            t.ty
        )));
    }
    let bytes = f
        .tensor_bytes(ROPE_FREQS)
        .ok_or_else(|| missing(f, ROPE_FREQS))?;
    let factors: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = factors.iter().position(|k| !(k.is_finite() && *k > 0.0)) {
        return Err(bad(format!(
            "rope factor {i} is {}; factors must be finite and positive",
            factors[i]
        )));
    }
    Ok(Some(RopeScaling::Factors(factors)))
}

/// `{p}.rope.scaling.type` and `.factor` (or the older
/// `{p}.rope.scale_linear`).
fn rope_scaling(f: &GgufFile, p: &str) -> Result<Option<RopeScaling>> {
    let type_key = format!("{p}.rope.scaling.type");
    let factor_key = format!("{p}.rope.scaling.factor");
    let factor = f.f32_key(&factor_key)?;
    match f.str_key(&type_key)? {
        None | Some("none") => match f.f32_key(&format!("{p}.rope.scale_linear"))? {
            Some(factor) if factor != 1.0 => Ok(Some(RopeScaling::Linear { factor })),
            _ => Ok(None),
        },
        Some("linear") => {
            let factor = f.required(&factor_key, factor)?;
            Ok((factor != 1.0).then_some(RopeScaling::Linear { factor }))
        }
        Some(other) => Err(f.key_error(
            &type_key,
            GgufErrorKind::Unsupported,
            format!("rope scaling '{other}' is not supported (smelt reads none and linear)"),
        )),
    }
}

/// The error for a tensor the architecture needs and the file lacks.
fn missing(f: &GgufFile, name: &str) -> Error {
    error(
        &f.path,
        None,
        GgufPlace::Tensor(name.to_string()),
        GgufErrorKind::MissingTensor,
        "the architecture needs this tensor and the file does not have it".into(),
    )
}

/// The error for a tensor of shape `got` where `want` was needed.
fn wrong_shape(f: &GgufFile, name: &str, got: &[usize], want: &str) -> Error {
    error(
        &f.path,
        f.tensor(name).map(|t| t.info_offset),
        GgufPlace::Tensor(name.to_string()),
        GgufErrorKind::MissingTensor,
        format!("its shape (ne reversed) is {got:?}, the architecture needs {want}"),
    )
}

/// One tensor the architecture reads: its GGUF name, canonical name,
/// canonical shape and whether it must be present.
struct Expected {
    gguf: String,
    canonical: String,
    shape: Vec<usize>,
    required: bool,
}

/// Every tensor the architecture of `c` reads.
fn expected(c: &LlmConfig) -> Vec<Expected> {
    let e = |gguf: String, canonical: String, shape: Vec<usize>, required: bool| Expected {
        gguf,
        canonical,
        shape,
        required,
    };
    let (h, q, kv, ffn) = (
        c.hidden_size,
        c.num_heads * c.head_dim,
        c.num_kv_heads * c.head_dim,
        c.intermediate_size,
    );
    let mut all = vec![
        e(
            "token_embd.weight".into(),
            "embed_tokens".into(),
            vec![c.vocab_size, h],
            true,
        ),
        e("output_norm.weight".into(), "norm".into(), vec![h], true),
        e(
            "output.weight".into(),
            "lm_head".into(),
            vec![c.vocab_size, h],
            false,
        ),
    ];
    let biases = c.arch == Arch::Qwen2;
    let qk_norm = c.arch == Arch::Qwen3;
    for l in 0..c.num_layers {
        let mut layer = |part: &str, canonical: &str, shape: Vec<usize>, required: bool| {
            all.push(e(
                format!("blk.{l}.{part}"),
                format!("layers.{l}.{canonical}"),
                shape,
                required,
            ));
        };
        layer("attn_norm.weight", "attn_norm", vec![h], true);
        layer("attn_q.weight", "q_proj", vec![q, h], true);
        layer("attn_k.weight", "k_proj", vec![kv, h], true);
        layer("attn_v.weight", "v_proj", vec![kv, h], true);
        layer("attn_q.bias", "q_bias", vec![q], biases);
        layer("attn_k.bias", "k_bias", vec![kv], biases);
        layer("attn_v.bias", "v_bias", vec![kv], biases);
        if qk_norm {
            layer("attn_q_norm.weight", "q_norm", vec![c.head_dim], true);
            layer("attn_k_norm.weight", "k_norm", vec![c.head_dim], true);
        }
        layer("attn_output.weight", "o_proj", vec![h, q], true);
        layer("ffn_norm.weight", "ffn_norm", vec![h], true);
        layer("ffn_gate.weight", "gate_proj", vec![ffn, h], true);
        layer("ffn_up.weight", "up_proj", vec![ffn, h], true);
        layer("ffn_down.weight", "down_proj", vec![h, ffn], true);
    }
    all
}

/// The weights under canonical names, every shape checked, every tensor of
/// the file accounted for.
fn tensors(f: &GgufFile, c: &LlmConfig) -> Result<BTreeMap<String, Weight>> {
    let expected = expected(c);
    let mut out = BTreeMap::new();
    for e in &expected {
        let Some(t) = f.tensor(&e.gguf) else {
            if e.required {
                return Err(missing(f, &e.gguf));
            }
            continue;
        };
        if t.ty.shape != e.shape {
            return Err(wrong_shape(
                f,
                &e.gguf,
                &t.ty.shape,
                &format!("{:?}", e.shape),
            ));
        }
        let bytes = f.tensor_bytes(&e.gguf).ok_or_else(|| missing(f, &e.gguf))?;
        out.insert(
            e.canonical.clone(),
            Weight {
                ty: t.ty.clone(),
                bytes,
            },
        );
    }
    let mut known: std::collections::HashSet<&str> =
        expected.iter().map(|e| e.gguf.as_str()).collect();
    // Read into the config by `rope_factors`.
    known.insert(ROPE_FREQS);
    let extra: Vec<&super::TensorInfo> = f
        .tensors()
        .iter()
        .filter(|t| !known.contains(t.name.as_str()))
        .collect();
    if let Some(first) = extra.first() {
        let names: Vec<&str> = extra.iter().map(|t| t.name.as_str()).collect();
        return Err(error(
            &f.path,
            Some(first.info_offset),
            GgufPlace::File,
            GgufErrorKind::UnexpectedTensor,
            format!(
                "{} tensor(s) are not part of a {} model of {} layers: {}",
                names.len(),
                c.arch.name(),
                c.num_layers,
                names.join(", ")
            ),
        ));
    }
    Ok(out)
}
