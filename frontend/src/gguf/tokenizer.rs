//! The `tokenizer.ggml.*` keys as a [`GgufTokenizer`], checked for
//! consistency: the per-token arrays as long as the token list, the
//! special token ids inside it.

use super::GgufFile;
use crate::checkpoint::GgufTokenizer;
use crate::error::{GgufErrorKind, Result};

/// The tokenizer of `f`; `None` when the file has no `tokenizer.ggml.model`.
pub(super) fn read(f: &GgufFile) -> Result<Option<GgufTokenizer>> {
    let Some(model) = f.str_key("tokenizer.ggml.model")? else {
        return Ok(None);
    };
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = f.required(tokens_key, f.str_array_key(tokens_key)?)?;
    let n = tokens.len();
    let per_token = |key: &str, len: Option<usize>| -> Result<()> {
        match len {
            Some(l) if l != n => Err(f.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("{l} entries for {n} tokens"),
            )),
            _ => Ok(()),
        }
    };
    let scores = f
        .f32_array_key("tokenizer.ggml.scores")?
        .unwrap_or_default();
    per_token(
        "tokenizer.ggml.scores",
        Some(scores.len()).filter(|&l| l > 0),
    )?;
    let token_types = f
        .i32_array_key("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    per_token(
        "tokenizer.ggml.token_type",
        Some(token_types.len()).filter(|&l| l > 0),
    )?;
    let id = |key: &str| -> Result<Option<u32>> {
        match f.u32_key(key)? {
            Some(id) if id as usize >= n => Err(f.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("token id {id} is outside the vocabulary of {n} tokens"),
            )),
            other => Ok(other),
        }
    };
    Ok(Some(GgufTokenizer {
        model: model.to_string(),
        pre: f.str_key("tokenizer.ggml.pre")?.map(str::to_string),
        tokens,
        scores,
        token_types,
        merges: f
            .str_array_key("tokenizer.ggml.merges")?
            .unwrap_or_default(),
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        add_bos: f.bool_key("tokenizer.ggml.add_bos_token")?,
        chat_template: f.str_key("tokenizer.chat_template")?.map(str::to_string),
    }))
}
