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
    let scores = f
        .f32_array_key("tokenizer.ggml.scores")?
        .unwrap_or_default();
    let token_types = f
        .i32_array_key("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    // Per-token arrays are absent (empty) or one entry per token.
    for (key, len) in [
        ("tokenizer.ggml.scores", scores.len()),
        ("tokenizer.ggml.token_type", token_types.len()),
    ] {
        if len != 0 && len != n {
            return Err(f.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("{len} entries for {n} tokens"),
            ));
        }
    }
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
