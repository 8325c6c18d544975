/*
 * smelt's tokenizer: text to token ids and back, in freestanding C (no libc,
 * no allocation), for the chat executables and, through the smelt-runtime
 * crate's FFI wrapper, for the host.
 *
 * Two models:
 *   - byte-level BPE (GPT-2, SmolLM2, Qwen2, Llama 3): the text is split into
 *     pieces by a hand-written matcher equivalent to the model's
 *     pre-tokenizer regex, each piece starts as one symbol per byte and
 *     adjacent symbols are merged by rank. Every byte sequence is
 *     representable when each byte has a token; a byte without one (some
 *     vocabularies lack rare bytes: StarCoder's has no 0xC0 or 0xF1) is
 *     dropped from the input, as Hugging Face tokenizers does.
 *   - SentencePiece BPE (Llama 2, TinyLlama): a space prefix ("dummy prefix")
 *     and every space become U+2581 (the metaspace), each character starts as
 *     its own symbol, and symbols are merged by rank (the ranks of the merges
 *     the table builder derived from the pieces' scores). A character (or an
 *     invalid UTF-8 byte) that is not a piece becomes its bytes as <0xNN>
 *     byte tokens when the vocabulary has them (byte fallback), else the
 *     unknown token (consecutive unknown characters give one unknown token
 *     when SMELT_TOK_FUSE_UNK is set).
 * Invalid UTF-8 input is never an error: an invalid byte is a one-byte
 * character of no Unicode category (punctuation-like for the pre-tokenizer).
 * Decoding gives back exactly the bytes of the tokens (SentencePiece: U+2581
 * becomes a space and the dummy prefix's space is dropped), so
 * decode(encode(bytes)) == bytes for every input a model can represent.
 *
 * The table ("blob") is built by the smelt compiler (frontend/src/tokenizer/)
 * and validated again here: a bad blob gives SMELT_TOK_E_BLOB, never a crash.
 *
 * Blob format, version 1. Little-endian; u32 unless said otherwise; every
 * section starts at a multiple of 4 (zero padding).
 *   header, 16 u32:
 *     0 magic 'S','M','T','K'   1 version (1)        2 model (SMELT_TOK_MODEL_*)
 *     3 pre-tokenizer (SMELT_TOK_PRE_*)              4 flags (SMELT_TOK_* flags)
 *     5 n_tokens                6 n_merges           7 id_bytes (2, 3 or 4)
 *     8 merge_result_base (SMELT_TOK_NONE: results stored explicitly)
 *     9 bos   10 eos   11 unk (SMELT_TOK_NONE when absent)
 *     12 n_literals   13 literal_bytes   14 n_listed   15 token_bytes_total
 *   byte_tokens: 256 u32, the token of each byte (byte-level BPE: the base
 *     symbols; SentencePiece: the <0xNN> fallback tokens, or SMELT_TOK_NONE)
 *   merges: n_merges records of id_bytes-wide ids, in rank order (rank =
 *     index): left, right, and result unless merge_result_base is set (then
 *     the result of merge k is merge_result_base + k)
 *   literals: n_literals u32 token ids, n_literals + 1 u32 offsets into the
 *     pool (the first 0, non-decreasing, the last literal_bytes), the pool
 *   listed: n_listed pairs (token id, SMELT_TOK_LIST_* flags): the added,
 *     special, unknown and unused tokens, which never take part in merges
 * A token's bytes are its literal bytes, or else the concatenation of the
 * left and right bytes of the first merge (in rank order) that makes it at a
 * time both are known: a 49 k vocabulary is mostly rebuilt from its merges.
 */

#ifndef SMELT_TOKENIZER_H
#define SMELT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define SMELT_TOK_MAGIC 0x4B544D53u /* "SMTK" */
#define SMELT_TOK_VERSION 1u
#define SMELT_TOK_NONE 0xFFFFFFFFu

/* Models. */
#define SMELT_TOK_MODEL_BYTE_BPE 1u
#define SMELT_TOK_MODEL_SPM_BPE 2u

/* Pre-tokenizers (byte-level BPE; SentencePiece uses NONE). */
#define SMELT_TOK_PRE_NONE 0u   /* a text segment is one piece */
#define SMELT_TOK_PRE_GPT2 1u   /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
#define SMELT_TOK_PRE_SMOLLM 2u /* every \p{N} alone, then GPT2 between them (SmolLM2, StarCoder) */
#define SMELT_TOK_PRE_LLAMA3 3u /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
#define SMELT_TOK_PRE_QWEN2 4u  /* LLAMA3 with \p{N} instead of \p{N}{1,3} */

/* Header flags. */
#define SMELT_TOK_ADD_BOS 1u        /* SMELT_TOK_ADD_SPECIAL puts bos first */
#define SMELT_TOK_ADD_EOS 2u        /* SMELT_TOK_ADD_SPECIAL puts eos last */
#define SMELT_TOK_BYTE_FALLBACK 4u  /* SentencePiece: unknown characters become byte tokens */
#define SMELT_TOK_IGNORE_MERGES 8u  /* a piece that is a token is that token (Llama 3) */
#define SMELT_TOK_PREFIX_ALL 16u    /* SentencePiece: U+2581 before every text segment */
#define SMELT_TOK_PREFIX_FIRST 32u  /* ... only before a segment at the start of the text */
#define SMELT_TOK_FUSE_UNK 64u      /* consecutive unknown characters give one unk */
#define SMELT_TOK_FLAGS_ALL 127u

/* Flags of listed tokens. */
#define SMELT_TOK_LIST_SPECIAL 1u /* dropped by SMELT_TOK_SKIP_SPECIAL */
#define SMELT_TOK_LIST_MATCH 2u   /* found in the text under SMELT_TOK_PARSE_SPECIAL */

/* Encode options. */
#define SMELT_TOK_ADD_SPECIAL 1u   /* bos/eos as the header's flags say */
#define SMELT_TOK_PARSE_SPECIAL 2u /* listed MATCH tokens in the text become their token */
/* Decode options. */
#define SMELT_TOK_SKIP_SPECIAL 1u  /* special tokens decode to nothing */

/* Errors (negative). */
#define SMELT_TOK_OK 0
#define SMELT_TOK_E_BLOB (-1)   /* the blob is malformed */
#define SMELT_TOK_E_MEMORY (-2) /* the memory or work buffer is too small or misaligned */
#define SMELT_TOK_E_SPACE (-3)  /* the output buffer is too small */
#define SMELT_TOK_E_TOKEN (-4)  /* a token id out of range */

typedef struct smelt_tok smelt_tok;

/* Checks the blob's header and section sizes and sets *mem_bytes to the
   memory smelt_tok_init needs (tables built once: token bytes, the merge
   hash table, the piece hash table). */
int smelt_tok_memory(const void *blob, size_t blob_len, size_t *mem_bytes);

/* Builds the tokenizer in `mem` (8-byte aligned, smelt_tok_memory bytes),
   which must outlive it, as must the blob. Validates every id and offset. */
int smelt_tok_init(const void *blob, size_t blob_len, void *mem, size_t mem_bytes,
                   smelt_tok **out);

/* Work memory smelt_tok_encode needs for a text of text_len bytes. */
size_t smelt_tok_work_bytes(size_t text_len);
/* The most ids a text of text_len bytes can encode to. */
size_t smelt_tok_max_ids(size_t text_len);

/* Encodes text[0..len) into ids[0..*n_ids). `work` is 8-byte aligned
   scratch memory of smelt_tok_work_bytes(len) bytes. */
int smelt_tok_encode(const smelt_tok *tok, const uint8_t *text, size_t len, unsigned options,
                     uint32_t *ids, size_t cap, size_t *n_ids, void *work, size_t work_bytes);

uint32_t smelt_tok_n_tokens(const smelt_tok *tok);
uint32_t smelt_tok_bos(const smelt_tok *tok);
uint32_t smelt_tok_eos(const smelt_tok *tok);
/* The longest output one smelt_tok_decode call can write. */
size_t smelt_tok_max_piece(const smelt_tok *tok);

/* Incremental decoding: bytes of an incomplete UTF-8 character at the end of
   what was decoded so far are held back until the character is complete, so
   a multi-byte character is always written whole. Nothing else is changed:
   invalid sequences are written as they are. */
typedef struct {
    uint8_t pending[4];
    uint32_t n_pending;
    uint32_t started; /* a byte was written (SentencePiece drops a first space) */
} smelt_tok_stream;

void smelt_tok_stream_init(smelt_tok_stream *s);
/* Appends the text of token `id` to out[0..cap), *written bytes. */
int smelt_tok_decode(const smelt_tok *tok, smelt_tok_stream *s, uint32_t id, unsigned options,
                     uint8_t *out, size_t cap, size_t *written);
/* Writes the held-back bytes (an incomplete character at the end). */
int smelt_tok_decode_flush(smelt_tok_stream *s, uint8_t *out, size_t cap, size_t *written);

#endif
