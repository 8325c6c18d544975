//! The tokenizer table builder: a checkpoint's tokenizer ([`TokenizerData`]:
//! a Hugging Face `tokenizer.json` + `tokenizer_config.json`, or GGUF's
//! `tokenizer.ggml.*` metadata) becomes a compact, versioned little-endian
//! table ([`Table::blob`]) that the runtime's C tokenizer
//! (`runtime/c/tokenizer.h` documents the format) reads in the compiled
//! executable, and the host reads through `smelt_runtime::tokenizer`.
//!
//! Implemented: byte-level BPE (GPT-2, SmolLM2/StarCoder, Llama 3, Qwen2
//! pre-tokenizers) and SentencePiece BPE with byte fallback (Llama 2,
//! TinyLlama). Anything else (WordPiece, Unigram, WordLevel, another
//! pre-tokenizer regex, BPE dropout, subword prefixes, added tokens that
//! strip spaces) is refused with [`TokenizerError::Unsupported`], never
//! approximated.
//!
//! - [`hf`] reads `tokenizer.json`; [`gguf`] reads [`GgufTokenizer`];
//!   both produce a [`Vocab`] (token bytes, merges by rank, listed tokens);
//! - [`spm`] derives the merges of a SentencePiece vocabulary from its
//!   scores, as Hugging Face's converter does;
//! - [`blob`] writes the table: merges as token-id pairs, and only the
//!   tokens no merge rebuilds as literal bytes;
//! - [`chat`] recognises the chat template ([`Vocab::chat`]) and writes its
//!   own small blob for the runtime's chat driver.
//!
//! Input is untrusted: every count is limited ([`MAX_TOKENS`],
//! [`MAX_MERGES`], [`MAX_TOKEN_BYTES`]) and every id and merge is checked,
//! with errors naming the key or the token/merge index.

pub mod blob;
mod bytelevel;
pub mod chat;
mod error;
pub mod gguf;
pub mod hf;
pub mod spm;

pub use blob::FORMAT_VERSION;
pub use chat::{CHAT_FORMAT_VERSION, ChatFormat, ChatTemplate, Role, SystemSupport};
pub use error::TokenizerError;

use std::collections::HashMap;

use crate::checkpoint::TokenizerData;

/// Most tokens a vocabulary may have (the C table's limit).
pub const MAX_TOKENS: usize = 1 << 24;
/// Most merges.
pub const MAX_MERGES: usize = 1 << 24;
/// Longest token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1 << 16;
/// Largest `tokenizer.json` / `tokenizer_config.json` read.
pub const MAX_JSON_BYTES: u64 = 1 << 30;

/// The tokenizer model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Byte-level BPE: pieces of the text start as one symbol per byte.
    ByteBpe,
    /// SentencePiece BPE: spaces become U+2581, symbols start as characters,
    /// unknown characters become byte tokens (or the unknown token).
    SentencePieceBpe,
}

/// How byte-level BPE splits text into pieces before merging (each is one
/// Hugging Face / llama.cpp regex, matched by hand in C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// No split: a text segment is one piece (SentencePiece).
    None,
    /// GPT-2's regex.
    Gpt2,
    /// Every number character alone, GPT-2's regex between (SmolLM2, StarCoder).
    Smollm,
    /// Llama 3's regex (numbers in groups of up to three).
    Llama3,
    /// Qwen2's regex (Llama 3's with single-digit numbers).
    Qwen2,
}

impl PreTokenizer {
    /// The code of the table header.
    pub fn code(self) -> u32 {
        match self {
            PreTokenizer::None => 0,
            PreTokenizer::Gpt2 => 1,
            PreTokenizer::Smollm => 2,
            PreTokenizer::Llama3 => 3,
            PreTokenizer::Qwen2 => 4,
        }
    }
}

/// Where SentencePiece puts its dummy-prefix U+2581.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// Nowhere.
    Never,
    /// Before every text segment (between special tokens).
    Always,
    /// Only before a segment at the start of the text.
    First,
}

/// A token that takes no part in merges: added, special, unknown or unused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its id.
    pub id: u32,
    /// Decoding can skip it.
    pub special: bool,
    /// Encoding finds its text in the input when asked.
    pub matched: bool,
}

/// A tokenizer, interpreted: what the table stores.
#[derive(Clone, Debug)]
pub struct Vocab {
    /// The model.
    pub model: Model,
    /// The pre-tokenizer (byte-level BPE).
    pub pre: PreTokenizer,
    /// The bytes of each token (SentencePiece keeps U+2581 for spaces).
    pub tokens: Vec<Vec<u8>>,
    /// Merges in rank order: left, right, result.
    pub merges: Vec<[u32; 3]>,
    /// The tokens of bytes: base symbols of byte-level BPE, byte-fallback
    /// tokens of SentencePiece (`None` when absent).
    pub byte_tokens: [Option<u32>; 256],
    /// Added, special, unknown and unused tokens.
    pub listed: Vec<Listed>,
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Encoding with special tokens puts BOS first.
    pub add_bos: bool,
    /// Encoding with special tokens puts EOS last.
    pub add_eos: bool,
    /// SentencePiece: unknown characters become byte tokens.
    pub byte_fallback: bool,
    /// A piece that is a token is that token, unmerged (Llama 3).
    pub ignore_merges: bool,
    /// SentencePiece's dummy prefix.
    pub prefix: Prefix,
    /// Consecutive unknown characters give one unknown token.
    pub fuse_unk: bool,
    /// The chat template, if the checkpoint has one (not in the table).
    pub chat_template: Option<String>,
}

impl Vocab {
    /// The text of token `id` (empty for `None`), as templates name it.
    fn token_text(&self, id: Option<u32>) -> String {
        id.and_then(|i| self.tokens.get(i as usize))
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default()
    }

    /// The chat template, recognised with this vocabulary's BOS and EOS
    /// texts; `None` when the checkpoint has no template.
    pub fn chat(&self) -> Option<Result<ChatTemplate, TokenizerError>> {
        let template = self.chat_template.as_deref()?;
        Some(ChatTemplate::recognise(
            template,
            &self.token_text(self.bos),
            &self.token_text(self.eos),
        ))
    }
}

/// The table of one tokenizer.
#[derive(Clone, Debug)]
pub struct Table {
    /// The bytes the runtime reads (format [`FORMAT_VERSION`]).
    pub blob: Vec<u8>,
    /// The interpreted tokenizer it was written from.
    pub vocab: Vocab,
    /// How many tokens the table stores as literal bytes (the rest are
    /// rebuilt from merges).
    pub literals: usize,
}

/// Builds the table of a checkpoint's tokenizer.
pub fn build(data: &TokenizerData) -> Result<Table, TokenizerError> {
    let vocab = match data {
        TokenizerData::HuggingFace {
            tokenizer_json,
            tokenizer_config,
        } => hf::read(tokenizer_json, tokenizer_config.as_deref())?,
        TokenizerData::Gguf(g) => gguf::vocab(g)?,
    };
    Table::new(vocab)
}

impl Table {
    /// Validates `vocab` and writes its table.
    pub fn new(vocab: Vocab) -> Result<Table, TokenizerError> {
        let (blob, literals) = blob::write(&vocab)?;
        Ok(Table {
            blob,
            vocab,
            literals,
        })
    }
}

/// The ids of merge `k`, `a b`: left, right and the token they make, all
/// looked up in `index` (the normal tokens by text).
pub(crate) fn merge_ids(
    index: &HashMap<&str, u32>,
    k: usize,
    a: &str,
    b: &str,
) -> Result<[u32; 3], TokenizerError> {
    let id = |s: &str| {
        index.get(s).copied().ok_or_else(|| TokenizerError::Merge {
            index: k,
            msg: format!("{s:?} is not a token"),
        })
    };
    Ok([id(a)?, id(b)?, id(&format!("{a}{b}"))?])
}
