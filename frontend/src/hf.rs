//! Hugging Face model folders: `config.json`, the weights in
//! `model.safetensors` (or shards listed by `model.safetensors.index.json`),
//! `generation_config.json` and the tokenizer files, read into a
//! [`Checkpoint`].
//!
//! Weights stay windows of the memory-mapped safetensors files, validated by
//! [`crate::safetensors::Weights`]; f32, f16 and bf16 are accepted as they
//! are (the graph builder decodes half weights as it reads them). Hugging
//! Face names map to the canonical names of [`crate::checkpoint`]; a tensor
//! with no canonical name is refused (it belongs to a variant the builder
//! does not know), except `lm_head.weight` of a tied model, which is dropped,
//! and rotary `inv_freq` buffers, which the builder recomputes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use smelt_ir::DType;

use crate::checkpoint::{
    Arch, Checkpoint, LlmConfig, RopeLayout, RopeScaling, TokenizerData, Weight,
};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::safetensors::Weights;

/// Reads the Hugging Face model folder `dir` within `limits`.
pub fn read(dir: &Path, limits: &Limits) -> Result<Checkpoint> {
    let config_path = dir.join("config.json");
    let config_json = read_json(&config_path, limits)?;
    let config = parse_config(&config_json)?;
    let tensors = read_weights(dir, &config, limits)?;
    let (eos_token_ids, bos_token_id) = token_ids(dir, &config_json, limits)?;
    let tokenizer_json = dir.join("tokenizer.json");
    let tokenizer = tokenizer_json.is_file().then(|| {
        let cfg = dir.join("tokenizer_config.json");
        TokenizerData::HuggingFace {
            tokenizer_json,
            tokenizer_config: cfg.is_file().then_some(cfg),
        }
    });
    let ckpt = Checkpoint {
        config,
        tensors,
        tokenizer,
        eos_token_ids,
        bos_token_id,
    };
    crate::llm::check(&ckpt)?;
    Ok(ckpt)
}

/// Reads and parses a JSON file of the folder (its size within the model
/// file limit).
fn read_json(path: &Path, limits: &Limits) -> Result<Value> {
    let bytes = Limits::read_file(path, limits.max_model_bytes, "max-model-bytes")?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        msg: format!("not valid JSON ({e})"),
    })
}

/// The error for `key` of `config.json`.
fn cfg_err(key: &str, msg: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_string(),
        msg: msg.into(),
    }
}

/// Typed reads of `config.json` keys, each error naming the key.
struct Keys<'a> {
    obj: &'a Map<String, Value>,
    prefix: &'a str,
}

impl Keys<'_> {
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value of `key`, treating JSON `null` as absent.
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(cfg_err(
                    &self.name(key),
                    format!("expected a non-negative integer, got {v}"),
                )),
            },
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.usize_opt(key)?
            .ok_or_else(|| cfg_err(&self.name(key), "the key is missing"))
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(x as f32),
                _ => Err(cfg_err(
                    &self.name(key),
                    format!("expected a number, got {v}"),
                )),
            },
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(cfg_err(
                &self.name(key),
                format!("expected true or false, got {v}"),
            )),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(cfg_err(
                &self.name(key),
                format!("expected a string, got {v}"),
            )),
        }
    }
}

/// The architecture from `model_type` (or, failing that, `architectures`).
fn arch(k: &Keys<'_>) -> Result<Arch> {
    let known = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Mistral];
    let model_type = match k.str_opt("model_type")? {
        Some(t) => t.to_string(),
        None => k
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(|a| a.trim_end_matches("ForCausalLM").to_ascii_lowercase())
            .ok_or_else(|| cfg_err("model_type", "the key is missing"))?,
    };
    known
        .into_iter()
        .find(|a| a.name() == model_type)
        .ok_or_else(|| {
            cfg_err(
                "model_type",
                format!(
                    "'{model_type}' is not an architecture smelt builds (llama, qwen2, qwen3, mistral)"
                ),
            )
        })
}

/// `rope_scaling`: absent, `default`, `linear` or `llama3`.
fn rope_scaling(k: &Keys<'_>) -> Result<Option<RopeScaling>> {
    let Some(v) = k.get("rope_scaling") else {
        return Ok(None);
    };
    let obj = v
        .as_object()
        .ok_or_else(|| cfg_err("rope_scaling", format!("expected an object, got {v}")))?;
    let s = Keys {
        obj,
        prefix: "rope_scaling.",
    };
    let kind = match s.str_opt("rope_type")? {
        Some(t) => t,
        None => s.str_opt("type")?.unwrap_or("default"),
    };
    let factor = || -> Result<f32> {
        let f = s.f32_or("factor", f32::NAN)?;
        if f.is_nan() || f <= 0.0 {
            return Err(cfg_err("rope_scaling.factor", "must be a positive number"));
        }
        Ok(f)
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear { factor: factor()? })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: s.f32_or("low_freq_factor", 1.0)?,
            high_freq_factor: s.f32_or("high_freq_factor", 4.0)?,
            original_max_position_embeddings: s.usize("original_max_position_embeddings")?,
        })),
        other => Err(cfg_err(
            "rope_scaling.rope_type",
            format!("'{other}' scaling is not supported (default, linear and llama3 are)"),
        )),
    }
}

/// The hyper-parameters of `config.json`.
pub fn parse_config(json: &Value) -> Result<LlmConfig> {
    let obj = json
        .as_object()
        .ok_or_else(|| cfg_err("config.json", "expected a JSON object"))?;
    let k = Keys { obj, prefix: "" };
    let arch = arch(&k)?;
    let hidden_size = k.usize("hidden_size")?;
    let num_heads = k.usize("num_attention_heads")?;
    if num_heads == 0 {
        return Err(cfg_err("num_attention_heads", "must be positive"));
    }
    let head_dim = match k.usize_opt("head_dim")? {
        Some(d) => d,
        None => hidden_size / num_heads,
    };
    // Qwen2 declares a window it does not use unless asked.
    let window_used = match arch {
        Arch::Mistral => true,
        Arch::Qwen2 | Arch::Qwen3 => k.bool_or("use_sliding_window", false)?,
        Arch::Llama => false,
    };
    Ok(LlmConfig {
        arch,
        vocab_size: k.usize("vocab_size")?,
        hidden_size,
        intermediate_size: k.usize("intermediate_size")?,
        num_layers: k.usize("num_hidden_layers")?,
        num_heads,
        num_kv_heads: k.usize_opt("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        rms_norm_eps: k.f32_or("rms_norm_eps", 1e-6)?,
        rope_theta: k.f32_or("rope_theta", 10000.0)?,
        rope_scaling: rope_scaling(&k)?,
        rope_layout: RopeLayout::Halves,
        max_position_embeddings: k.usize("max_position_embeddings")?,
        tie_word_embeddings: k.bool_or("tie_word_embeddings", false)?,
        sliding_window: if window_used {
            k.usize_opt("sliding_window")?
        } else {
            None
        },
    })
}

/// The canonical name of a Hugging Face tensor name, `None` when it has
/// none.
pub fn canonical_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("embed_tokens".into()),
        "model.norm.weight" => return Some("norm".into()),
        "lm_head.weight" => return Some("lm_head".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, field) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let short = match field {
        "input_layernorm.weight" => "attn_norm",
        "self_attn.q_proj.weight" => "q_proj",
        "self_attn.k_proj.weight" => "k_proj",
        "self_attn.v_proj.weight" => "v_proj",
        "self_attn.q_proj.bias" => "q_bias",
        "self_attn.k_proj.bias" => "k_bias",
        "self_attn.v_proj.bias" => "v_bias",
        "self_attn.q_norm.weight" => "q_norm",
        "self_attn.k_norm.weight" => "k_norm",
        "self_attn.o_proj.weight" => "o_proj",
        "post_attention_layernorm.weight" => "ffn_norm",
        "mlp.gate_proj.weight" => "gate_proj",
        "mlp.up_proj.weight" => "up_proj",
        "mlp.down_proj.weight" => "down_proj",
        _ => return None,
    };
    Some(format!("layers.{layer}.{short}"))
}

/// The safetensors files of the folder: `model.safetensors`, or the shards
/// `model.safetensors.index.json` lists (each opened once).
fn weight_files(dir: &Path, limits: &Limits) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(Error::Parse {
            path: dir.to_path_buf(),
            msg: "the folder has neither model.safetensors nor model.safetensors.index.json; smelt reads safetensors weights".into(),
        });
    }
    let json = read_json(&index, limits)?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Parse {
            path: index.clone(),
            msg: "no 'weight_map' object".into(),
        })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| Error::Parse {
            path: index.clone(),
            msg: format!("weight_map entry '{name}' is not a file name"),
        })?;
        // A shard is a plain file name in the folder: no directories, so a
        // hostile index cannot point outside it.
        if file.is_empty() || file.contains(['/', '\\']) || file == ".." || file == "." {
            return Err(Error::Parse {
                path: index.clone(),
                msg: format!(
                    "weight_map entry '{name}' names '{file}', which is not a file of the folder"
                ),
            });
        }
        let path = dir.join(file);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Every weight of the folder under its canonical name.
fn read_weights(
    dir: &Path,
    config: &LlmConfig,
    limits: &Limits,
) -> Result<BTreeMap<String, Weight>> {
    let mut tensors = BTreeMap::new();
    for file in weight_files(dir, limits)? {
        let weights = Weights::open(&file, limits)?;
        for info in weights.tensors() {
            let name = &info.name;
            if name.ends_with("rotary_emb.inv_freq") {
                continue;
            }
            let Some(canon) = canonical_name(name) else {
                return Err(Error::Tensor {
                    name: name.clone(),
                    msg: format!(
                        "not a weight of a {} model; smelt builds the llama family (llama, qwen2, qwen3, mistral) without extra tensors",
                        config.arch.name()
                    ),
                });
            };
            if canon == "lm_head" && config.tie_word_embeddings {
                continue;
            }
            if !matches!(info.dtype, Some(DType::F32 | DType::F16 | DType::BF16)) {
                return Err(Error::Tensor {
                    name: name.clone(),
                    msg: format!(
                        "the weight is {}; smelt reads f32, f16 and bf16 Hugging Face weights",
                        info.dtype_name
                    ),
                });
            }
            let (ty, bytes) = weights.typed_bytes(name)?;
            if tensors.insert(canon, Weight { ty, bytes }).is_some() {
                return Err(Error::Tensor {
                    name: name.clone(),
                    msg: "the weight appears in two shards".into(),
                });
            }
        }
    }
    Ok(tensors)
}

/// An id or a list of ids (`eos_token_id` may be either), as `u32`s.
fn ids(v: &Value, key: &str) -> Result<Vec<u32>> {
    let one = |x: &Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| cfg_err(key, format!("expected a token id, got {x}")))
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

/// The EOS ids and the BOS id: `generation_config.json` when the folder has
/// one, else `config.json`.
fn token_ids(dir: &Path, config: &Value, limits: &Limits) -> Result<(Vec<u32>, Option<u32>)> {
    let gen_path = dir.join("generation_config.json");
    let generation = if gen_path.is_file() {
        Some(read_json(&gen_path, limits)?)
    } else {
        None
    };
    let pick = |key: &str| -> Option<&Value> {
        generation
            .as_ref()
            .and_then(|g| g.get(key))
            .filter(|v| !v.is_null())
            .or_else(|| config.get(key))
    };
    let eos = match pick("eos_token_id") {
        Some(v) => ids(v, "eos_token_id")?,
        None => Vec::new(),
    };
    let bos = match pick("bos_token_id") {
        Some(v) => ids(v, "bos_token_id")?.first().copied(),
        None => None,
    };
    Ok((eos, bos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check(json, expected text)`: parsing the config fails naming it.
    fn refuses(json: &str, want: &str) {
        let v: Value = serde_json::from_str(json).unwrap();
        let e = parse_config(&v).unwrap_err().to_string();
        assert!(e.contains(want), "expected '{want}' in: {e}");
    }

    const BASE: &str = r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,
        "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,
        "max_position_embeddings":64"#;

    #[test]
    fn configs_parse_with_defaults() {
        let v: Value = serde_json::from_str(&format!("{BASE}}}")).unwrap();
        let c = parse_config(&v).unwrap();
        assert_eq!((c.num_kv_heads, c.head_dim), (2, 4));
        assert!(!c.tie_word_embeddings);
        assert_eq!(c.rope_scaling, None);
        let v: Value = serde_json::from_str(&format!(
            r#"{BASE},"rope_scaling":{{"rope_type":"llama3","factor":8.0,"original_max_position_embeddings":8192}}}}"#
        ))
        .unwrap();
        assert!(matches!(
            parse_config(&v).unwrap().rope_scaling,
            Some(RopeScaling::Llama3 { factor: 8.0, .. })
        ));
    }

    #[test]
    fn bad_configs_name_the_key() {
        refuses(
            r#"{"model_type":"gpt2"}"#,
            "config 'model_type': 'gpt2' is not an architecture",
        );
        refuses(
            &format!("{}}}", BASE.replace(r#""vocab_size":10,"#, "")),
            "config 'vocab_size': the key is missing",
        );
        refuses(
            &format!(r#"{BASE},"num_key_value_heads":-1}}"#),
            "config 'num_key_value_heads': expected a non-negative integer",
        );
        refuses(
            &format!(r#"{BASE},"rope_scaling":{{"type":"yarn","factor":2}}}}"#),
            "'yarn' scaling is not supported",
        );
    }

    #[test]
    fn names_map_to_canonical_ones() {
        assert_eq!(
            canonical_name("model.layers.3.self_attn.k_proj.bias").as_deref(),
            Some("layers.3.k_bias")
        );
        assert_eq!(canonical_name("model.layers.x.mlp.up_proj.weight"), None);
        assert_eq!(canonical_name("model.vision.weight"), None);
    }
}
