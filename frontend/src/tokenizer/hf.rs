//! Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) → [`Vocab`].
//!
//! Recognised shapes (anything else is refused, naming the key):
//! - byte-level BPE: `pre_tokenizer` `ByteLevel` (GPT-2's regex),
//!   `Sequence[Digits(individual), ByteLevel]` (SmolLM2), or
//!   `Sequence[Split(Llama 3 or Qwen2 regex, Isolated), ByteLevel(no regex)]`;
//!   `normalizer` none or `NFC` (the input is taken as already NFC, as
//!   llama.cpp does);
//! - SentencePiece BPE: `normalizer` `Sequence[Prepend("▁"), Replace(" ",
//!   "▁")]` with no pre-tokenizer (Llama 2 / TinyLlama), or
//!   `pre_tokenizer` `Metaspace` (not splitting) with the prefix scheme it
//!   names.
//!
//! BOS/EOS: `tokenizer_config.json`'s `add_bos_token`/`add_eos_token` and
//! `bos_token`/`eos_token`, else the post-processor's template.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::error::key_error;
use super::{Listed, Model, PreTokenizer, Prefix, TokenizerError, Vocab, bytelevel};
use super::{MAX_JSON_BYTES, MAX_TOKENS};

/// Llama 3's pre-tokenizer regex, as its `tokenizer.json` spells it.
pub const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's.
pub const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn read_json(path: &Path) -> Result<Value, TokenizerError> {
    let io = |source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_JSON_BYTES {
        return Err(TokenizerError::Limit {
            what: "the size of a tokenizer JSON file",
            value: len,
            limit: MAX_JSON_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        key_error(
            &path.display().to_string(),
            "(file)",
            format!("not valid JSON: {e}"),
        )
    })
}

/// Reads `tokenizer.json` and, when given, `tokenizer_config.json`.
pub fn read(tokenizer_json: &Path, config: Option<&Path>) -> Result<Vocab, TokenizerError> {
    let json = read_json(tokenizer_json)?;
    let config = config.map(read_json).transpose()?;
    from_json(
        &json,
        config.as_ref(),
        &tokenizer_json.display().to_string(),
    )
}

/// The string a JSON value holds, or `{"content": ...}`'s.
fn token_text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The pre-tokenizer and model of a `tokenizer.json`.
fn classify(json: &Value, file: &str) -> Result<(Model, PreTokenizer, Prefix), TokenizerError> {
    let unsupported = |what: String| TokenizerError::Unsupported { what };
    let pre = json.get("pre_tokenizer").unwrap_or(&Value::Null);
    let norm = json.get("normalizer").unwrap_or(&Value::Null);
    let steps = |v: &Value| -> Vec<Value> {
        match type_of(v) {
            "Sequence" => v
                .get("pretokenizers")
                .or_else(|| v.get("normalizers"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            "" => Vec::new(),
            _ => vec![v.clone()],
        }
    };
    let pre_steps = steps(pre);
    let norm_steps = steps(norm);
    let kinds: Vec<&str> = pre_steps.iter().map(type_of).collect();
    if kinds.contains(&"ByteLevel") {
        match norm_steps.iter().map(type_of).collect::<Vec<_>>()[..] {
            [] | ["NFC"] => {}
            ref k => return Err(unsupported(format!("byte-level BPE with normalizer {k:?}"))),
        }
        let byte_level = pre_steps
            .iter()
            .find(|s| type_of(s) == "ByteLevel")
            .unwrap_or(&Value::Null);
        if byte_level.get("add_prefix_space").and_then(Value::as_bool) == Some(true) {
            return Err(unsupported("ByteLevel with add_prefix_space".into()));
        }
        let use_regex = byte_level
            .get("use_regex")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let pre = match (&kinds[..], use_regex) {
            (["ByteLevel"], true) => PreTokenizer::Gpt2,
            (["Digits", "ByteLevel"], true)
                if pre_steps[0]
                    .get("individual_digits")
                    .and_then(Value::as_bool)
                    == Some(true) =>
            {
                PreTokenizer::Smollm
            }
            (["Split", "ByteLevel"], false) => {
                let split = &pre_steps[0];
                let regex = split
                    .get("pattern")
                    .and_then(|p| p.get("Regex"))
                    .and_then(Value::as_str);
                let isolated = split.get("behavior").and_then(Value::as_str) == Some("Isolated")
                    && split.get("invert").and_then(Value::as_bool) != Some(true);
                match regex {
                    Some(LLAMA3_REGEX) if isolated => PreTokenizer::Llama3,
                    Some(QWEN2_REGEX) if isolated => PreTokenizer::Qwen2,
                    _ => return Err(unsupported(format!("pre-tokenizer Split {split}"))),
                }
            }
            _ => return Err(unsupported(format!("pre_tokenizer {pre}"))),
        };
        return Ok((Model::ByteBpe, pre, Prefix::Never));
    }
    // SentencePiece shapes.
    let nk: Vec<&str> = norm_steps.iter().map(type_of).collect();
    let is_replace = |s: &Value| {
        type_of(s) == "Replace"
            && s.get("pattern")
                .and_then(|p| p.get("String"))
                .and_then(Value::as_str)
                == Some(" ")
            && s.get("content").and_then(Value::as_str) == Some("\u{2581}")
    };
    match (&kinds[..], &nk[..]) {
        ([], ["Prepend", "Replace"])
            if norm_steps[0].get("prepend").and_then(Value::as_str) == Some("\u{2581}")
                && is_replace(&norm_steps[1]) =>
        {
            Ok((Model::SentencePieceBpe, PreTokenizer::None, Prefix::Always))
        }
        ([], ["Replace"]) if is_replace(&norm_steps[0]) => {
            Ok((Model::SentencePieceBpe, PreTokenizer::None, Prefix::Never))
        }
        (["Metaspace"], []) => {
            let m = &pre_steps[0];
            if m.get("replacement").and_then(Value::as_str) != Some("\u{2581}")
                || m.get("split").and_then(Value::as_bool) == Some(true)
            {
                return Err(unsupported(format!("pre_tokenizer {m}")));
            }
            let prefix = match m.get("prepend_scheme").and_then(Value::as_str) {
                Some("always") => Prefix::Always,
                Some("first") => Prefix::First,
                Some("never") => Prefix::Never,
                None if m.get("add_prefix_space").and_then(Value::as_bool) == Some(true) => {
                    Prefix::Always
                }
                _ => return Err(unsupported(format!("pre_tokenizer {m}"))),
            };
            Ok((Model::SentencePieceBpe, PreTokenizer::None, prefix))
        }
        _ => Err(key_error(
            file,
            "pre_tokenizer",
            format!("unsupported tokenizer: pre_tokenizer {pre} with normalizer {norm}"),
        )),
    }
}

/// A parsed byte token name `<0xNN>`.
pub(crate) fn byte_token(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Builds the [`Vocab`] of a parsed `tokenizer.json` (`file` names it in
/// errors) and optional `tokenizer_config.json`.
pub fn from_json(
    json: &Value,
    config: Option<&Value>,
    file: &str,
) -> Result<Vocab, TokenizerError> {
    let model = json
        .get("model")
        .ok_or_else(|| key_error(file, "model", "missing"))?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") => {}
        Some(t) => {
            return Err(TokenizerError::Unsupported {
                what: format!("model.type {t}"),
            });
        }
        None if model.get("merges").is_some() => {}
        None => return Err(key_error(file, "model.type", "missing")),
    }
    if !model.get("dropout").is_none_or(Value::is_null) {
        return Err(TokenizerError::Unsupported {
            what: "BPE dropout".into(),
        });
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if model
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(TokenizerError::Unsupported {
                what: format!("model.{key}"),
            });
        }
    }
    let (kind, pre, prefix) = classify(json, file)?;
    let spm = kind == Model::SentencePieceBpe;
    let byte_fallback = model
        .get("byte_fallback")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    // Ids: model.vocab and added_tokens.
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| key_error(file, "model.vocab", "missing or not an object"))?;
    let mut strings: Vec<Option<String>> = Vec::new();
    let mut set = |id: u64, s: &str, key: &str| -> Result<(), TokenizerError> {
        if id as usize >= MAX_TOKENS {
            return Err(TokenizerError::Limit {
                what: "a token id",
                value: id,
                limit: MAX_TOKENS as u64 - 1,
            });
        }
        let id = id as usize;
        if strings.len() <= id {
            strings.resize(id + 1, None);
        }
        match &strings[id] {
            Some(old) if old != s => Err(key_error(
                file,
                key,
                format!("token {id} is both {old:?} and {s:?}"),
            )),
            _ => {
                strings[id] = Some(s.to_string());
                Ok(())
            }
        }
    };
    for (s, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| key_error(file, format!("model.vocab[{s:?}]"), "not a token id"))?;
        set(id, s, "model.vocab")?;
    }
    let mut listed = Vec::new();
    let added = json
        .get("added_tokens")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, a) in added.iter().enumerate() {
        let key = format!("added_tokens[{i}]");
        let id = a
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| key_error(file, format!("{key}.id"), "missing"))?;
        let content = a
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| key_error(file, format!("{key}.content"), "missing"))?;
        for opt in ["single_word", "lstrip", "rstrip"] {
            if a.get(opt).and_then(Value::as_bool) == Some(true) {
                return Err(TokenizerError::Unsupported {
                    what: format!("{key}: added token {content:?} with {opt}"),
                });
            }
        }
        set(id, content, &key)?;
        let special = a.get("special").and_then(Value::as_bool).unwrap_or(false);
        listed.push(Listed {
            id: id as u32,
            special,
            matched: !content.is_empty(),
        });
    }
    let n = strings.len();
    let is_listed = {
        let mut v = vec![false; n];
        for l in &listed {
            v[l.id as usize] = true;
        }
        v
    };
    let map = bytelevel::char_bytes();
    let mut tokens = Vec::with_capacity(n);
    let mut byte_tokens = [None; 256];
    for (i, s) in strings.iter().enumerate() {
        let s = s.as_deref().ok_or_else(|| TokenizerError::Token {
            index: i,
            msg: "no token has this id (the ids must have no gaps)".into(),
        })?;
        let bytes = if is_listed[i] {
            s.as_bytes().to_vec()
        } else if spm {
            match byte_token(s) {
                Some(b) if byte_fallback => {
                    byte_tokens[b as usize] = Some(i as u32);
                    vec![b]
                }
                _ => s.as_bytes().to_vec(),
            }
        } else {
            bytelevel::decode(&map, s).map_err(|c| TokenizerError::Token {
                index: i,
                msg: format!("{s:?} has {c:?}, which is no byte in byte-level BPE"),
            })?
        };
        tokens.push(bytes);
    }
    let index: HashMap<&str, u32> = strings
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_listed[*i])
        .filter_map(|(i, s)| Some((s.as_deref()?, i as u32)))
        .collect();
    if !spm {
        let chars = bytelevel::byte_chars();
        for b in 0..256 {
            byte_tokens[b] = index.get(chars[b].to_string().as_str()).copied();
        }
    }

    // Merges: "a b" strings or [a, b] pairs.
    let raw = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| key_error(file, "model.merges", "missing or not an array"))?;
    let mut merges = Vec::with_capacity(raw.len());
    for (k, m) in raw.iter().enumerate() {
        let (a, b) = match m {
            Value::String(s) => s.split_once(' ').ok_or_else(|| TokenizerError::Merge {
                index: k,
                msg: format!("{s:?} is not two tokens separated by a space"),
            })?,
            Value::Array(p) if p.len() == 2 && p[0].is_string() && p[1].is_string() => {
                (p[0].as_str().unwrap_or(""), p[1].as_str().unwrap_or(""))
            }
            _ => {
                return Err(TokenizerError::Merge {
                    index: k,
                    msg: "neither \"a b\" nor [\"a\", \"b\"]".into(),
                });
            }
        };
        merges.push(super::merge_ids(&index, k, a, b)?);
    }

    // Special tokens and BOS/EOS rules.
    let lookup = |v: Option<&Value>| -> Option<u32> {
        let s = token_text(v?)?;
        strings
            .iter()
            .position(|t| t.as_deref() == Some(s))
            .map(|i| i as u32)
    };
    let cfg = |k: &str| config.and_then(|c| c.get(k)).filter(|v| !v.is_null());
    let (mut bos, mut eos) = (lookup(cfg("bos_token")), lookup(cfg("eos_token")));
    let mut add_bos = cfg("add_bos_token").and_then(Value::as_bool);
    let add_eos = cfg("add_eos_token")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if add_bos.is_none() {
        // The post-processor's template: a special token before `$A`.
        let single = json
            .get("post_processor")
            .filter(|p| type_of(p) == "TemplateProcessing")
            .and_then(|p| p.get("single"))
            .and_then(Value::as_array);
        let first = single
            .and_then(|s| s.first())
            .and_then(|f| f.get("SpecialToken"))
            .and_then(|t| t.get("id"));
        add_bos = Some(first.is_some());
        if let Some(first) = first.and_then(Value::as_str) {
            bos = bos.or_else(|| {
                index.get(first).copied().or_else(|| {
                    strings
                        .iter()
                        .position(|t| t.as_deref() == Some(first))
                        .map(|i| i as u32)
                })
            });
        }
    }
    let unk = model
        .get("unk_token")
        .and_then(Value::as_str)
        .and_then(|s| {
            strings
                .iter()
                .position(|t| t.as_deref() == Some(s))
                .map(|i| i as u32)
        });
    if eos.is_none() && spm {
        eos = strings
            .iter()
            .position(|t| t.as_deref() == Some("</s>"))
            .map(|i| i as u32);
    }
    let chat_template = cfg("chat_template").and_then(|t| match t {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|e| e.get("template")?.as_str().map(String::from)),
        _ => None,
    });
    Ok(Vocab {
        model: kind,
        pre,
        tokens,
        merges,
        byte_tokens,
        listed,
        bos,
        eos,
        unk,
        add_bos: add_bos.unwrap_or(false) && bos.is_some(),
        add_eos: add_eos && eos.is_some(),
        byte_fallback,
        ignore_merges: model
            .get("ignore_merges")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        prefix,
        fuse_unk: model
            .get("fuse_unk")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        chat_template,
    })
}
