//! GGUF `tokenizer.ggml.*` metadata ([`GgufTokenizer`]) → [`Vocab`].
//!
//! `tokenizer.ggml.model` `gpt2` is byte-level BPE, with the pre-tokenizer
//! `tokenizer.ggml.pre` names (`gpt-2`, `smollm`/`starcoder`, `llama-bpe`/
//! `llama3` with `ignore_merges`, `qwen2`); `llama` is SentencePiece BPE
//! with byte fallback and a dummy prefix before every text segment, merges
//! derived from the scores ([`super::spm`]). Token types (llama.cpp's):
//! 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
//! Control and unknown tokens are special, user-defined ones are added
//! tokens (found in the text when asked), unused ones are never produced.

use std::collections::HashMap;

use super::error::key_error;
use super::{
    Listed, Model, PreTokenizer, Prefix, TokenizerError, Vocab, bytelevel, hf::byte_token, spm,
};
use crate::checkpoint::GgufTokenizer;

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// Interprets GGUF tokenizer metadata.
pub fn vocab(g: &GgufTokenizer) -> Result<Vocab, TokenizerError> {
    let file = "gguf";
    let n = g.tokens.len();
    if n > super::MAX_TOKENS {
        return Err(TokenizerError::Limit {
            what: "the number of tokens",
            value: n as u64,
            limit: super::MAX_TOKENS as u64,
        });
    }
    let types: Vec<i32> = if g.token_types.is_empty() {
        vec![NORMAL; n]
    } else if g.token_types.len() == n {
        g.token_types.clone()
    } else {
        return Err(key_error(
            file,
            "tokenizer.ggml.token_type",
            format!("{} entries for {n} tokens", g.token_types.len()),
        ));
    };
    let (model, pre, ignore_merges) = match (g.model.as_str(), g.pre.as_deref()) {
        ("gpt2", Some("gpt-2" | "gpt2")) => (Model::ByteBpe, PreTokenizer::Gpt2, false),
        ("gpt2", Some("smollm" | "starcoder")) => (Model::ByteBpe, PreTokenizer::Smollm, false),
        ("gpt2", Some("llama-bpe" | "llama3")) => (Model::ByteBpe, PreTokenizer::Llama3, true),
        ("gpt2", Some("qwen2")) => (Model::ByteBpe, PreTokenizer::Qwen2, false),
        ("gpt2", p) => {
            return Err(TokenizerError::Unsupported {
                what: format!("tokenizer.ggml.pre {:?}", p.unwrap_or("(absent)")),
            });
        }
        ("llama", _) => (Model::SentencePieceBpe, PreTokenizer::None, false),
        (m, _) => {
            return Err(TokenizerError::Unsupported {
                what: format!("tokenizer.ggml.model {m:?}"),
            });
        }
    };
    let spm_model = model == Model::SentencePieceBpe;
    let mut listed = Vec::new();
    let mut tokens = Vec::with_capacity(n);
    let mut byte_tokens = [None; 256];
    let mut unk = None;
    let map = bytelevel::char_bytes();
    for (i, (s, &t)) in g.tokens.iter().zip(&types).enumerate() {
        let bytes = match t {
            NORMAL if spm_model => s.as_bytes().to_vec(),
            NORMAL => bytelevel::decode(&map, s).map_err(|c| TokenizerError::Token {
                index: i,
                msg: format!("{s:?} has {c:?}, which is no byte in byte-level BPE"),
            })?,
            BYTE => {
                let b = byte_token(s).ok_or_else(|| TokenizerError::Token {
                    index: i,
                    msg: format!("a byte token named {s:?}, not <0xNN>"),
                })?;
                if !spm_model {
                    return Err(TokenizerError::Token {
                        index: i,
                        msg: "a byte token in byte-level BPE".into(),
                    });
                }
                byte_tokens[b as usize] = Some(i as u32);
                vec![b]
            }
            UNKNOWN | CONTROL | USER_DEFINED | UNUSED => {
                if t == UNKNOWN {
                    unk = unk.or(Some(i as u32));
                }
                listed.push(Listed {
                    id: i as u32,
                    special: t == UNKNOWN || t == CONTROL,
                    matched: t != UNUSED && !s.is_empty(),
                });
                s.as_bytes().to_vec()
            }
            _ => {
                return Err(TokenizerError::Token {
                    index: i,
                    msg: format!("unknown token type {t}"),
                });
            }
        };
        tokens.push(bytes);
    }
    let merges = if spm_model {
        if g.scores.len() != n {
            return Err(key_error(
                file,
                "tokenizer.ggml.scores",
                format!("{} entries for {n} tokens", g.scores.len()),
            ));
        }
        let pieces: Vec<&str> = g.tokens.iter().map(String::as_str).collect();
        let normal: Vec<bool> = types.iter().map(|&t| t == NORMAL).collect();
        spm::merges(&pieces, &normal, &g.scores)?
    } else {
        let index: HashMap<&str, u32> = g
            .tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| types[*i] == NORMAL)
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let chars = bytelevel::byte_chars();
        for b in 0..256 {
            byte_tokens[b] = index.get(chars[b].to_string().as_str()).copied();
        }
        let mut merges = Vec::with_capacity(g.merges.len());
        for (k, m) in g.merges.iter().enumerate() {
            let (a, b) = m.split_once(' ').ok_or_else(|| TokenizerError::Merge {
                index: k,
                msg: format!("{m:?} is not two tokens separated by a space"),
            })?;
            merges.push(super::merge_ids(&index, k, a, b)?);
        }
        merges
    };
    let check = |id: Option<u32>, key: &str| match id {
        Some(i) if i as usize >= n => Err(key_error(
            file,
            key,
            format!("token {i} is past the vocabulary of {n} tokens"),
        )),
        _ => Ok(id),
    };
    let bos = check(g.bos, "tokenizer.ggml.bos_token_id")?;
    let eos = check(g.eos, "tokenizer.ggml.eos_token_id")?;
    // llama.cpp's defaults: SentencePiece adds BOS, byte-level BPE does not.
    let add_bos = g.add_bos.unwrap_or(spm_model) && bos.is_some();
    Ok(Vocab {
        model,
        pre,
        tokens,
        merges,
        byte_tokens,
        listed,
        bos,
        eos,
        unk,
        add_bos,
        add_eos: false,
        byte_fallback: spm_model,
        ignore_merges,
        prefix: if spm_model {
            Prefix::Always
        } else {
            Prefix::Never
        },
        fuse_unk: spm_model,
        chat_template: g.chat_template.clone(),
    })
}
