//! The table builder's error type: every message names the file, the key or
//! the token/merge index it is about, and says what to do.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while turning a checkpoint's tokenizer
/// description into a table.
#[derive(Debug)]
pub enum TokenizerError {
    /// Reading a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not valid JSON, or a key is missing or of the wrong type.
    Key {
        /// The file (or `gguf` for GGUF metadata).
        file: String,
        /// The key, as a dotted path (`model.vocab`, `added_tokens[3].id`).
        key: String,
        /// What is wrong with it.
        msg: String,
    },
    /// One token is invalid.
    Token {
        /// Its id (its index in the vocabulary).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// One merge is invalid.
    Merge {
        /// Its rank (its index in the merge list).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// A tokenizer kind or option smelt does not implement.
    Unsupported {
        /// What it is (`model.type WordPiece`, `pre-tokenizer "falcon"`).
        what: String,
    },
    /// A chat template that is none of the formats smelt knows (or a
    /// variant of one whose strings smelt does not know).
    ChatTemplate {
        /// Why it was not recognised.
        reason: String,
        /// The template's first characters.
        head: String,
    },
    /// A size past a published limit.
    Limit {
        /// What was measured.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TokenizerError::Key { file, key, msg } => {
                write!(
                    f,
                    "{file}: {key}: {msg}; check that the file is a valid tokenizer"
                )
            }
            TokenizerError::Token { index, msg } => write!(f, "token {index}: {msg}"),
            TokenizerError::Merge { index, msg } => write!(f, "merge {index}: {msg}"),
            TokenizerError::Unsupported { what } => write!(
                f,
                "unsupported tokenizer: {what}; smelt implements byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen2 pre-tokenizers) and SentencePiece BPE with byte fallback"
            ),
            TokenizerError::ChatTemplate { reason, head } => write!(
                f,
                "unrecognised chat template ({reason}): {head:?}; smelt knows the {} formats: run without --chat and write the prompt in the model's format",
                super::chat::ChatFormat::known()
            ),
            TokenizerError::Limit { what, value, limit } => {
                write!(f, "{what} is {value}, over the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for TokenizerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenizerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A `Key` error for `file`.
pub(crate) fn key_error(
    file: &str,
    key: impl Into<String>,
    msg: impl Into<String>,
) -> TokenizerError {
    TokenizerError::Key {
        file: file.to_string(),
        key: key.into(),
        msg: msg.into(),
    }
}
