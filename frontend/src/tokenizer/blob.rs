//! Writing (and checking) the table: the byte layout `runtime/c/tokenizer.h`
//! documents, version [`FORMAT_VERSION`].
//!
//! Compactness: merges are id pairs `id_bytes` wide (2 bytes up to 65 536
//! tokens, 3 up to 2^24), their results implicit when merge `k` makes token
//! `base + k` (as in GPT-2-style vocabularies), and a token's bytes are
//! stored only when no merge rebuilds them: the C side replays the merges in
//! rank order and gives each result the bytes of its two halves the first
//! time both are known. [`write`] simulates that replay to choose the
//! literals.

use super::{MAX_MERGES, MAX_TOKEN_BYTES, MAX_TOKENS};
use super::{Model, Prefix, TokenizerError, Vocab};

/// The table format version (`SMELT_TOK_VERSION`).
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: u32 = 0x4B54_4D53;
const NONE: u32 = u32::MAX;
const MAX_TOTAL_BYTES: u64 = 1 << 28;

// Header flags (tokenizer.h).
const ADD_BOS: u32 = 1;
const ADD_EOS: u32 = 2;
const BYTE_FALLBACK: u32 = 4;
const IGNORE_MERGES: u32 = 8;
const PREFIX_ALL: u32 = 16;
const PREFIX_FIRST: u32 = 32;
const FUSE_UNK: u32 = 64;

const METASPACE: &[u8] = "\u{2581}".as_bytes();

fn limit(what: &'static str, value: usize, max: usize) -> Result<(), TokenizerError> {
    if value > max {
        return Err(TokenizerError::Limit {
            what,
            value: value as u64,
            limit: max as u64,
        });
    }
    Ok(())
}

fn check_id(id: u32, n: usize, what: &str) -> Result<(), TokenizerError> {
    if id as usize >= n {
        return Err(TokenizerError::Token {
            index: id as usize,
            msg: format!("{what} is past the vocabulary of {n} tokens"),
        });
    }
    Ok(())
}

/// Checks `v` and returns its table and how many tokens it stores as
/// literal bytes. Merges that make or use a listed token are left out:
/// listed tokens are found as text, never merged.
pub fn write(v: &Vocab) -> Result<(Vec<u8>, usize), TokenizerError> {
    let n = v.tokens.len();
    if n == 0 {
        return Err(TokenizerError::Token {
            index: 0,
            msg: "the vocabulary is empty".into(),
        });
    }
    limit("the number of tokens", n, MAX_TOKENS)?;
    limit("the number of merges", v.merges.len(), MAX_MERGES)?;
    let mut total = 0u64;
    for (i, t) in v.tokens.iter().enumerate() {
        if t.len() > MAX_TOKEN_BYTES {
            return Err(TokenizerError::Token {
                index: i,
                msg: format!(
                    "{} bytes long, over the limit of {MAX_TOKEN_BYTES}",
                    t.len()
                ),
            });
        }
        total += t.len() as u64;
    }
    if total > MAX_TOTAL_BYTES {
        return Err(TokenizerError::Limit {
            what: "the bytes of all tokens",
            value: total,
            limit: MAX_TOTAL_BYTES,
        });
    }
    let mut listed = vec![false; n];
    for l in &v.listed {
        check_id(l.id, n, "a listed token")?;
        if std::mem::replace(&mut listed[l.id as usize], true) {
            return Err(TokenizerError::Token {
                index: l.id as usize,
                msg: "listed twice as an added or special token".into(),
            });
        }
        if l.matched && v.tokens[l.id as usize].is_empty() {
            return Err(TokenizerError::Token {
                index: l.id as usize,
                msg: "an added token with no text".into(),
            });
        }
    }
    for (what, id) in [("bos", v.bos), ("eos", v.eos), ("unk", v.unk)] {
        if let Some(id) = id {
            check_id(id, n, what)?;
        }
    }
    let spm = v.model == Model::SentencePieceBpe;
    for (b, id) in v.byte_tokens.iter().enumerate() {
        match id {
            // A byte without a token is dropped from the input, as
            // `tokenizers` does (StarCoder's vocabulary lacks 0xC0, 0xF1, ...).
            None => {}
            Some(id) => {
                check_id(*id, n, "a byte token")?;
                if v.tokens[*id as usize] != [b as u8] || listed[*id as usize] {
                    return Err(TokenizerError::Token {
                        index: *id as usize,
                        msg: format!("the token of byte 0x{b:02X} is not that byte"),
                    });
                }
            }
        }
    }
    if spm {
        if v.pre != super::PreTokenizer::None {
            return Err(TokenizerError::Unsupported {
                what: "SentencePiece with a pre-tokenizer".into(),
            });
        }
        let all_bytes = v.byte_tokens.iter().all(Option::is_some);
        if v.unk.is_none() && !(v.byte_fallback && all_bytes) {
            return Err(TokenizerError::Unsupported {
                what: "SentencePiece with neither an unknown token nor all 256 byte tokens".into(),
            });
        }
        let has_metaspace = v
            .tokens
            .iter()
            .enumerate()
            .any(|(i, t)| t == METASPACE && !listed[i]);
        if !has_metaspace {
            return Err(TokenizerError::Unsupported {
                what: "SentencePiece without a U+2581 token".into(),
            });
        }
    }

    // Merges: checked, and those touching listed tokens left out.
    let mut merges = Vec::with_capacity(v.merges.len());
    for (k, &[a, b, r]) in v.merges.iter().enumerate() {
        for id in [a, b, r] {
            if id as usize >= n {
                return Err(TokenizerError::Merge {
                    index: k,
                    msg: format!("token {id} is past the vocabulary of {n} tokens"),
                });
            }
        }
        let (ta, tb, tr) = (
            &v.tokens[a as usize],
            &v.tokens[b as usize],
            &v.tokens[r as usize],
        );
        if tr.len() != ta.len() + tb.len() || tr[..ta.len()] != ta[..] || tr[ta.len()..] != tb[..] {
            return Err(TokenizerError::Merge {
                index: k,
                msg: format!("token {r} is not token {a} followed by token {b}"),
            });
        }
        if !(listed[a as usize] || listed[b as usize] || listed[r as usize]) {
            merges.push([a, b, r]);
        }
    }

    // The replay of tokenizer.c: literals first, then merges in rank order.
    // Literal from the start: listed and byte tokens, and the tokens no
    // merge makes (SentencePiece's characters).
    let mut defined = vec![true; n];
    for m in &merges {
        defined[m[2] as usize] = false;
    }
    for l in &v.listed {
        defined[l.id as usize] = true;
    }
    for id in v.byte_tokens.iter().flatten() {
        defined[*id as usize] = true;
    }
    let made_by_merge: Vec<bool> = defined.iter().map(|d| !d).collect();
    for &[a, b, r] in &merges {
        if defined[a as usize] && defined[b as usize] {
            defined[r as usize] = true;
        }
    }
    let mut literal: Vec<bool> = made_by_merge.iter().map(|m| !m).collect();
    for i in 0..n {
        if !defined[i] {
            literal[i] = true;
        }
    }

    let id_bytes: u32 = if n <= 1 << 16 { 2 } else { 3 };
    let base = merges.first().map_or(0, |m| m[2]);
    let implicit = merges
        .iter()
        .enumerate()
        .all(|(k, m)| m[2] as u64 == base as u64 + k as u64);
    let flags = (if v.add_bos { ADD_BOS } else { 0 })
        | (if v.add_eos { ADD_EOS } else { 0 })
        | (if v.byte_fallback { BYTE_FALLBACK } else { 0 })
        | (if v.ignore_merges { IGNORE_MERGES } else { 0 })
        | match v.prefix {
            Prefix::Never => 0,
            Prefix::Always => PREFIX_ALL,
            Prefix::First => PREFIX_FIRST,
        }
        | (if v.fuse_unk { FUSE_UNK } else { 0 });
    let lit_ids: Vec<u32> = (0..n as u32).filter(|&i| literal[i as usize]).collect();
    let lit_bytes: usize = lit_ids.iter().map(|&i| v.tokens[i as usize].len()).sum();
    let opt = |x: Option<u32>| x.unwrap_or(NONE);
    let model = match v.model {
        Model::ByteBpe => 1,
        Model::SentencePieceBpe => 2,
    };
    let header = [
        MAGIC,
        FORMAT_VERSION,
        model,
        v.pre.code(),
        flags,
        n as u32,
        merges.len() as u32,
        id_bytes,
        if implicit { base } else { NONE },
        opt(v.bos),
        opt(v.eos),
        opt(v.unk),
        lit_ids.len() as u32,
        lit_bytes as u32,
        v.listed.len() as u32,
        total as u32,
    ];
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, x: u32| out.extend_from_slice(&x.to_le_bytes());
    let pad = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(4), 0);
    for h in header {
        put(&mut out, h);
    }
    for id in &v.byte_tokens {
        put(&mut out, opt(*id));
    }
    for m in &merges {
        let cols = if implicit { &m[..2] } else { &m[..] };
        for &id in cols {
            out.extend_from_slice(&id.to_le_bytes()[..id_bytes as usize]);
        }
    }
    pad(&mut out);
    for &id in &lit_ids {
        put(&mut out, id);
    }
    let mut off = 0u32;
    put(&mut out, 0);
    for &id in &lit_ids {
        off += v.tokens[id as usize].len() as u32;
        put(&mut out, off);
    }
    for &id in &lit_ids {
        out.extend_from_slice(&v.tokens[id as usize]);
    }
    pad(&mut out);
    for l in &v.listed {
        put(&mut out, l.id);
        put(&mut out, u32::from(l.special) | (u32::from(l.matched) << 1));
    }
    Ok((out, lit_ids.len()))
}
