//! Validation of a [`Checkpoint`] before the graph builder reads it: the
//! configuration describes a model the builder can make, and every weight the
//! architecture needs is present under its canonical name with its canonical
//! shape, with nothing left over.

use std::collections::BTreeMap;

use crate::checkpoint::{Arch, Checkpoint, LlmConfig};
use crate::error::{Error, Result};

/// The error for configuration key `key`.
fn cfg(key: &str, msg: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_string(),
        msg: msg.into(),
    }
}

/// Checks that the configuration is consistent.
fn check_config(c: &LlmConfig) -> Result<()> {
    let positive = [
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.hidden_size),
        ("intermediate_size", c.intermediate_size),
        ("num_hidden_layers", c.num_layers),
        ("num_attention_heads", c.num_heads),
        ("num_key_value_heads", c.num_kv_heads),
        ("head_dim", c.head_dim),
        ("max_position_embeddings", c.max_position_embeddings),
    ];
    for (key, v) in positive {
        if v == 0 {
            return Err(cfg(key, "must be positive"));
        }
    }
    if !c.num_heads.is_multiple_of(c.num_kv_heads) {
        return Err(cfg(
            "num_key_value_heads",
            format!(
                "{} query heads do not divide into groups of {} key/value heads",
                c.num_heads, c.num_kv_heads
            ),
        ));
    }
    if !c.head_dim.is_multiple_of(2) {
        return Err(cfg(
            "head_dim",
            format!(
                "RoPE pairs elements, so the head width must be even, got {}",
                c.head_dim
            ),
        ));
    }
    if !(c.rms_norm_eps.is_finite() && c.rms_norm_eps >= 0.0) {
        return Err(cfg("rms_norm_eps", "must be a finite non-negative number"));
    }
    if !(c.rope_theta.is_finite() && c.rope_theta > 0.0) {
        return Err(cfg("rope_theta", "must be a finite positive number"));
    }
    Ok(())
}

/// Every weight the configuration calls for, with its canonical shape.
pub fn expected_shapes(c: &LlmConfig) -> Result<BTreeMap<String, Vec<usize>>> {
    let mul = |a: usize, b: usize, key: &str| {
        a.checked_mul(b)
            .ok_or_else(|| cfg(key, format!("{a} x {b} overflows")))
    };
    let (h, f, d) = (c.hidden_size, c.intermediate_size, c.head_dim);
    let q = mul(c.num_heads, d, "num_attention_heads")?;
    let kv = mul(c.num_kv_heads, d, "num_key_value_heads")?;
    let mut w = BTreeMap::new();
    w.insert("embed_tokens".to_string(), vec![c.vocab_size, h]);
    w.insert("norm".to_string(), vec![h]);
    if !c.tie_word_embeddings {
        w.insert("lm_head".to_string(), vec![c.vocab_size, h]);
    }
    for l in 0..c.num_layers {
        let mut add = |n: &str, s: Vec<usize>| w.insert(format!("layers.{l}.{n}"), s);
        add("attn_norm", vec![h]);
        add("q_proj", vec![q, h]);
        add("k_proj", vec![kv, h]);
        add("v_proj", vec![kv, h]);
        add("o_proj", vec![h, q]);
        add("ffn_norm", vec![h]);
        add("gate_proj", vec![f, h]);
        add("up_proj", vec![f, h]);
        add("down_proj", vec![h, f]);
        match c.arch {
            Arch::Qwen2 => {
                add("q_bias", vec![q]);
                add("k_bias", vec![kv]);
                add("v_bias", vec![kv]);
            }
            Arch::Qwen3 => {
                add("q_norm", vec![d]);
                add("k_norm", vec![d]);
            }
            Arch::Llama | Arch::Mistral => {}
        }
    }
    Ok(w)
}

/// Checks `ckpt`: a consistent configuration, and exactly the weights it
/// calls for with their canonical shapes. Every error names the key or
/// tensor.
pub fn check(ckpt: &Checkpoint) -> Result<()> {
    check_config(&ckpt.config)?;
    let want = expected_shapes(&ckpt.config)?;
    for (name, shape) in &want {
        let w = ckpt.tensors.get(name).ok_or_else(|| Error::Tensor {
            name: name.clone(),
            msg: format!(
                "missing: a {} model with this configuration needs it",
                ckpt.config.arch.name()
            ),
        })?;
        if &w.ty.shape != shape {
            return Err(Error::Tensor {
                name: name.clone(),
                msg: format!(
                    "has shape {:?} but the configuration says {shape:?}",
                    w.ty.shape
                ),
            });
        }
        let need = w.ty.bytes()?;
        if w.bytes.len() != need {
            return Err(Error::Tensor {
                name: name.clone(),
                msg: format!("type {} needs {need} bytes, got {}", w.ty, w.bytes.len()),
            });
        }
    }
    if let Some(extra) = ckpt.tensors.keys().find(|n| !want.contains_key(*n)) {
        return Err(Error::Tensor {
            name: extra.clone(),
            msg: format!(
                "not a weight of a {} model with this configuration",
                ckpt.config.arch.name()
            ),
        });
    }
    Ok(())
}
