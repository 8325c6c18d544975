/*
 * The tokenizer (see tokenizer.h for the models, the blob format and the
 * behaviour on input the vocabulary cannot represent): the blob's tables
 * rebuilt in caller memory, the pre-tokenizer matchers, BPE by rank over a
 * linked list of symbols with a binary heap of candidate merges (lowest
 * rank first, leftmost on ties, as Hugging Face tokenizers and llama.cpp
 * do), and the incremental decoder.
 *
 * Freestanding: no libc, no allocation, no global state; every table and
 * every scratch array lives in memory the caller passes.
 */

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"
#include "tokenizer_unicode.c"

#define TOK_L 1u
#define TOK_N 2u
#define TOK_WS 4u

/* Attributes of a token (one byte each in the tokenizer's memory). */
#define ATTR_LISTED 1u
#define ATTR_SPECIAL 2u
#define ATTR_MATCH 4u
#define ATTR_BYTE 8u

/* Limits a blob may not exceed: they keep every size below 2^32 and the
   memory below a few GB. */
#define TOK_MAX_TOKENS (1u << 24)
#define TOK_MAX_MERGES (1u << 24)
#define TOK_MAX_BYTES (1u << 28)

struct smelt_tok {
    uint32_t model, pre, flags, n_tokens, n_merges, id_bytes, result_base;
    uint32_t bos, eos, unk, n_listed, max_len, metaspace;
    const uint8_t *listed;
    uint32_t *tok_off, *tok_len;
    uint8_t *attr;
    uint8_t *pool;
    uint32_t *pairs; /* 4 u32 per slot: left (NONE = empty), right, rank, result */
    uint32_t pair_mask;
    uint32_t *pieces; /* token ids hashed by their bytes, NONE = empty */
    uint32_t piece_mask;
    uint32_t byte_tokens[256];
    uint8_t match_first[32]; /* first bytes of the tokens matched in the text */
};

/* ---- small helpers (no libc) ---- */

static uint32_t tok_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t tok_rd_id(const uint8_t *p, uint32_t width) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    if (width > 2) v |= (uint32_t)p[2] << 16;
    if (width > 3) v |= (uint32_t)p[3] << 24;
    return v;
}

static void tok_copy(uint8_t *d, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = s[i];
}

static int tok_equal(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static uint64_t tok_align8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static uint32_t tok_pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static uint32_t tok_hash_bytes(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t tok_hash_pair(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* ---- the blob's layout ---- */

struct tok_layout {
    uint32_t h[16];
    const uint8_t *byte_tokens, *merges, *lit_ids, *lit_offs, *pool, *listed;
    uint32_t pair_cap, piece_cap;
    uint64_t mem;
};

static uint64_t tok_pad4(uint64_t n) { return (n + 3) & ~(uint64_t)3; }

static int tok_parse(const uint8_t *b, size_t len, struct tok_layout *l) {
    if (b == 0 || len < 64) return SMELT_TOK_E_BLOB;
    for (int i = 0; i < 16; i++) l->h[i] = tok_rd32(b + 4 * i);
    const uint32_t *h = l->h;
    if (h[0] != SMELT_TOK_MAGIC || h[1] != SMELT_TOK_VERSION) return SMELT_TOK_E_BLOB;
    if (h[2] != SMELT_TOK_MODEL_BYTE_BPE && h[2] != SMELT_TOK_MODEL_SPM_BPE) return SMELT_TOK_E_BLOB;
    if (h[3] > SMELT_TOK_PRE_QWEN2 || (h[4] & ~SMELT_TOK_FLAGS_ALL) != 0) return SMELT_TOK_E_BLOB;
    if (h[2] == SMELT_TOK_MODEL_SPM_BPE && h[3] != SMELT_TOK_PRE_NONE) return SMELT_TOK_E_BLOB;
    if (h[5] == 0 || h[5] > TOK_MAX_TOKENS || h[6] > TOK_MAX_MERGES) return SMELT_TOK_E_BLOB;
    if (h[7] < 2 || h[7] > 4) return SMELT_TOK_E_BLOB;
    if (h[7] < 4 && h[5] > (1u << (8 * h[7]))) return SMELT_TOK_E_BLOB;
    if (h[8] != SMELT_TOK_NONE && (uint64_t)h[8] + h[6] > h[5]) return SMELT_TOK_E_BLOB;
    if (h[12] > h[5] || h[13] > TOK_MAX_BYTES || h[14] > h[5] || h[15] > TOK_MAX_BYTES) return SMELT_TOK_E_BLOB;
    uint32_t per_merge = h[7] * (h[8] == SMELT_TOK_NONE ? 3u : 2u);
    uint64_t off = 64;
    l->byte_tokens = b + off;
    off += 256 * 4;
    l->merges = b + off;
    off = tok_pad4(off + (uint64_t)h[6] * per_merge);
    l->lit_ids = b + off;
    off += (uint64_t)h[12] * 4;
    l->lit_offs = b + off;
    off += ((uint64_t)h[12] + 1) * 4;
    l->pool = b + off;
    off = tok_pad4(off + h[13]);
    l->listed = b + off;
    off += (uint64_t)h[14] * 8;
    if (off != len) return SMELT_TOK_E_BLOB;
    l->pair_cap = tok_pow2_at_least((uint64_t)h[6] * 3 / 2 + 1);
    l->piece_cap = tok_pow2_at_least((uint64_t)h[5] * 2 + 1);
    uint64_t n = h[5];
    l->mem = tok_align8(sizeof(struct smelt_tok)) + tok_align8(n * 8) + tok_align8(n) +
             tok_align8(h[15]) + (uint64_t)l->pair_cap * 16 + tok_align8((uint64_t)l->piece_cap * 4);
    if (l->mem > (uint64_t)(size_t)-1) return SMELT_TOK_E_BLOB;
    return SMELT_TOK_OK;
}

int smelt_tok_memory(const void *blob, size_t blob_len, size_t *mem_bytes) {
    struct tok_layout l;
    int e = tok_parse(blob, blob_len, &l);
    if (e != SMELT_TOK_OK) return e;
    *mem_bytes = (size_t)l.mem;
    return SMELT_TOK_OK;
}

/* ---- hash tables ---- */

static const uint32_t *tok_pair_find(const smelt_tok *t, uint32_t a, uint32_t b) {
    uint32_t i = tok_hash_pair(a, b) & t->pair_mask;
    for (;;) {
        const uint32_t *s = t->pairs + 4 * (size_t)i;
        if (s[0] == SMELT_TOK_NONE) return 0;
        if (s[0] == a && s[1] == b) return s;
        i = (i + 1) & t->pair_mask;
    }
}

/* Inserts a merge unless the pair is already there (the first rank wins). */
static void tok_pair_insert(smelt_tok *t, uint32_t a, uint32_t b, uint32_t rank, uint32_t result) {
    uint32_t i = tok_hash_pair(a, b) & t->pair_mask;
    for (;;) {
        uint32_t *s = t->pairs + 4 * (size_t)i;
        if (s[0] == SMELT_TOK_NONE) {
            s[0] = a, s[1] = b, s[2] = rank, s[3] = result;
            return;
        }
        if (s[0] == a && s[1] == b) return;
        i = (i + 1) & t->pair_mask;
    }
}

static uint32_t tok_piece_find(const smelt_tok *t, const uint8_t *p, size_t n) {
    uint32_t i = tok_hash_bytes(p, n) & t->piece_mask;
    for (;;) {
        uint32_t id = t->pieces[i];
        if (id == SMELT_TOK_NONE) return SMELT_TOK_NONE;
        if (t->tok_len[id] == n && tok_equal(t->pool + t->tok_off[id], p, n)) return id;
        i = (i + 1) & t->piece_mask;
    }
}

static void tok_piece_insert(smelt_tok *t, uint32_t id) {
    const uint8_t *p = t->pool + t->tok_off[id];
    size_t n = t->tok_len[id];
    uint32_t i = tok_hash_bytes(p, n) & t->piece_mask;
    for (;;) {
        uint32_t other = t->pieces[i];
        if (other == SMELT_TOK_NONE) {
            t->pieces[i] = id;
            return;
        }
        /* Two tokens with the same bytes: the lower id stays the one found. */
        if (t->tok_len[other] == n && tok_equal(t->pool + t->tok_off[other], p, n)) return;
        i = (i + 1) & t->piece_mask;
    }
}

/* ---- building the tables ---- */

int smelt_tok_init(const void *blob, size_t blob_len, void *mem, size_t mem_bytes, smelt_tok **out) {
    struct tok_layout l;
    int e = tok_parse(blob, blob_len, &l);
    if (e != SMELT_TOK_OK) return e;
    if (mem == 0 || ((uintptr_t)mem & 7) != 0 || mem_bytes < l.mem) return SMELT_TOK_E_MEMORY;
    uint8_t *m = mem;
    smelt_tok *t = (smelt_tok *)m;
    m += tok_align8(sizeof(struct smelt_tok));
    const uint32_t *h = l.h;
    uint32_t n = h[5];
    t->model = h[2], t->pre = h[3], t->flags = h[4], t->n_tokens = n, t->n_merges = h[6];
    t->id_bytes = h[7], t->result_base = h[8], t->bos = h[9], t->eos = h[10], t->unk = h[11];
    t->n_listed = h[14], t->listed = l.listed;
    t->tok_off = (uint32_t *)m;
    t->tok_len = t->tok_off + n;
    m += tok_align8((uint64_t)n * 8);
    t->attr = m;
    m += tok_align8(n);
    t->pool = m;
    m += tok_align8(h[15]);
    t->pairs = (uint32_t *)m;
    t->pair_mask = l.pair_cap - 1;
    m += (size_t)l.pair_cap * 16;
    t->pieces = (uint32_t *)m;
    t->piece_mask = l.piece_cap - 1;
    for (uint32_t i = 0; i < n; i++) t->tok_off[i] = SMELT_TOK_NONE, t->tok_len[i] = 0, t->attr[i] = 0;
    for (uint32_t i = 0; i < l.pair_cap; i++) t->pairs[4 * (size_t)i] = SMELT_TOK_NONE;
    for (uint32_t i = 0; i < l.piece_cap; i++) t->pieces[i] = SMELT_TOK_NONE;
    for (int i = 0; i < 32; i++) t->match_first[i] = 0;
    int spm = t->model == SMELT_TOK_MODEL_SPM_BPE;
    if ((t->bos != SMELT_TOK_NONE && t->bos >= n) || (t->eos != SMELT_TOK_NONE && t->eos >= n) ||
        (t->unk != SMELT_TOK_NONE && t->unk >= n))
        return SMELT_TOK_E_BLOB;

    /* Listed tokens. */
    for (uint32_t i = 0; i < t->n_listed; i++) {
        uint32_t id = tok_rd32(l.listed + 8 * (size_t)i), f = tok_rd32(l.listed + 8 * (size_t)i + 4);
        if (id >= n || f > 3 || t->attr[id]) return SMELT_TOK_E_BLOB;
        t->attr[id] = (uint8_t)(ATTR_LISTED | (f & SMELT_TOK_LIST_SPECIAL ? ATTR_SPECIAL : 0) |
                                (f & SMELT_TOK_LIST_MATCH ? ATTR_MATCH : 0));
    }
    /* Byte tokens: the base symbols of byte-level BPE (a vocabulary may lack
       the bytes UTF-8 never uses), the fallback tokens of SentencePiece. */
    int all_bytes = 1;
    for (int b = 0; b < 256; b++) {
        uint32_t id = tok_rd32(l.byte_tokens + 4 * b);
        t->byte_tokens[b] = id;
        if (id == SMELT_TOK_NONE) {
            all_bytes = 0;
            continue;
        }
        if (id >= n || (t->attr[id] & ATTR_LISTED)) return SMELT_TOK_E_BLOB;
        if (spm) t->attr[id] |= ATTR_BYTE;
    }
    if (spm && t->unk == SMELT_TOK_NONE && !((t->flags & SMELT_TOK_BYTE_FALLBACK) && all_bytes))
        return SMELT_TOK_E_BLOB;

    /* Literal tokens. */
    uint64_t used = 0;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < h[12]; i++) {
        uint32_t id = tok_rd32(l.lit_ids + 4 * (size_t)i);
        uint32_t a = tok_rd32(l.lit_offs + 4 * (size_t)i), b = tok_rd32(l.lit_offs + 4 * (size_t)i + 4);
        if (id >= n || t->tok_off[id] != SMELT_TOK_NONE || a != prev || b < a || b > h[13])
            return SMELT_TOK_E_BLOB;
        if (used + (b - a) > h[15]) return SMELT_TOK_E_BLOB;
        tok_copy(t->pool + used, l.pool + a, b - a);
        t->tok_off[id] = (uint32_t)used, t->tok_len[id] = b - a;
        used += b - a;
        prev = b;
    }
    if (prev != h[13]) return SMELT_TOK_E_BLOB;

    /* Merges: the pair table, and the bytes of the tokens they make. */
    uint32_t w = t->id_bytes, rec = w * (t->result_base == SMELT_TOK_NONE ? 3u : 2u);
    for (uint32_t k = 0; k < t->n_merges; k++) {
        const uint8_t *r = l.merges + (size_t)k * rec;
        uint32_t a = tok_rd_id(r, w), b = tok_rd_id(r + w, w);
        uint32_t res = t->result_base == SMELT_TOK_NONE ? tok_rd_id(r + 2 * w, w) : t->result_base + k;
        if (a >= n || b >= n || res >= n) return SMELT_TOK_E_BLOB;
        if ((t->attr[a] | t->attr[b] | t->attr[res]) & ATTR_LISTED) return SMELT_TOK_E_BLOB;
        if (t->tok_off[res] == SMELT_TOK_NONE && t->tok_off[a] != SMELT_TOK_NONE &&
            t->tok_off[b] != SMELT_TOK_NONE) {
            uint32_t la = t->tok_len[a], lb = t->tok_len[b];
            if (used + la + lb > h[15]) return SMELT_TOK_E_BLOB;
            tok_copy(t->pool + used, t->pool + t->tok_off[a], la);
            tok_copy(t->pool + used + la, t->pool + t->tok_off[b], lb);
            t->tok_off[res] = (uint32_t)used, t->tok_len[res] = la + lb;
            used += la + lb;
        }
        tok_pair_insert(t, a, b, k, res);
    }
    if (used != h[15]) return SMELT_TOK_E_BLOB;

    /* Every token has its bytes; the pieces table holds the normal ones. */
    t->max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (t->tok_off[i] == SMELT_TOK_NONE) return SMELT_TOK_E_BLOB;
        if (t->tok_len[i] > t->max_len) t->max_len = t->tok_len[i];
        if (t->attr[i] & ATTR_MATCH) {
            if (t->tok_len[i] == 0) return SMELT_TOK_E_BLOB;
            uint8_t c = t->pool[t->tok_off[i]];
            t->match_first[c >> 3] |= (uint8_t)(1u << (c & 7));
        }
        if (!(t->attr[i] & (ATTR_LISTED | ATTR_BYTE)) && t->tok_len[i] > 0) tok_piece_insert(t, i);
    }
    static const uint8_t metaspace[3] = {0xE2, 0x96, 0x81};
    t->metaspace = tok_piece_find(t, metaspace, 3);
    /* SentencePiece needs the metaspace token: one symbol per input byte. */
    if (spm && t->metaspace == SMELT_TOK_NONE) return SMELT_TOK_E_BLOB;
    *out = t;
    return SMELT_TOK_OK;
}

uint32_t smelt_tok_n_tokens(const smelt_tok *tok) { return tok->n_tokens; }
uint32_t smelt_tok_bos(const smelt_tok *tok) { return tok->bos; }
uint32_t smelt_tok_eos(const smelt_tok *tok) { return tok->eos; }
size_t smelt_tok_max_piece(const smelt_tok *tok) { return (size_t)tok->max_len + 4; }

/* ---- characters and categories ---- */

/* Decodes the character at t[p..end): its length, and its code point in
   *cp (SMELT_TOK_NONE for an invalid byte, which is a character of length
   1 and no category). */
static size_t tok_utf8(const uint8_t *t, size_t p, size_t end, uint32_t *cp) {
    uint32_t c = t[p];
    size_t n;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        *cp = SMELT_TOK_NONE;
        return 1;
    }
    if (end - p < n) {
        *cp = SMELT_TOK_NONE;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t b = t[p + i];
        if ((b & 0xC0) != 0x80) {
            *cp = SMELT_TOK_NONE;
            return 1;
        }
        c = c << 6 | (b & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *cp = SMELT_TOK_NONE;
        return 1;
    }
    *cp = c;
    return n;
}

static unsigned tok_category(uint32_t cp) {
    if (cp < 0x80) return tok_ascii_cat[cp];
    if (cp > 0x10FFFF) return 0;
    uint32_t lo = 0, hi = TOK_N_RANGES; /* the last start <= cp */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((tok_ranges[mid] & 0xFFFFFF) <= cp) lo = mid;
        else hi = mid;
    }
    return tok_ranges[lo] >> 24;
}

static unsigned tok_cat_at(const uint8_t *t, size_t p, size_t end, size_t *len, uint32_t *cp) {
    *len = tok_utf8(t, p, end, cp);
    return tok_category(*cp);
}

/* The end of the run of characters from p whose category is in `want` (any
   of its bits; want == 0 means "none of L, N, WS"), and in *last the start
   of the run's last character. */
static size_t tok_run(const uint8_t *t, size_t p, size_t end, unsigned want, size_t *last) {
    size_t q = p;
    *last = p;
    while (q < end) {
        size_t len;
        uint32_t cp;
        unsigned c = tok_cat_at(t, q, end, &len, &cp);
        if (want ? !(c & want) : c != 0) break;
        *last = q;
        q += len;
    }
    return q;
}

static unsigned tok_lower(unsigned c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* The length of 's 't 're 've 'm 'll 'd at p (which holds the quote), or 0. */
static size_t tok_contraction(const uint8_t *t, size_t p, size_t end, int fold) {
    if (p + 1 >= end) return 0;
    unsigned a = t[p + 1], b = p + 2 < end ? t[p + 2] : 0;
    if (fold) a = tok_lower(a), b = tok_lower(b);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Whitespace at p: \s+(?!\S) then \s+ (the run, less its last character
   when a non-space follows and the run has two or more). */
static size_t tok_space_run(const uint8_t *t, size_t p, size_t end) {
    size_t last, e = tok_run(t, p, end, TOK_WS, &last);
    if (e == end || last == p) return e;
    return last;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t tok_piece_gpt2(const uint8_t *t, size_t p, size_t end) {
    size_t len, last;
    uint32_t cp;
    unsigned c = tok_cat_at(t, p, end, &len, &cp);
    if (cp == '\'') {
        size_t m = tok_contraction(t, p, end, 0);
        if (m) return p + m;
    }
    size_t q = p;
    if (cp == ' ' && p + 1 < end) {
        size_t len1;
        uint32_t cp1;
        unsigned c1 = tok_cat_at(t, p + 1, end, &len1, &cp1);
        if (!(c1 & TOK_WS)) q = p + 1, c = c1;
    }
    if (c & TOK_L) return tok_run(t, q, end, TOK_L, &last);
    if (c & TOK_N) return tok_run(t, q, end, TOK_N, &last);
    if (!(c & TOK_WS)) return tok_run(t, q, end, 0, &last);
    return tok_space_run(t, p, end);
}

/* Llama 3 (digits = 3) and Qwen2 (digits = 1):
   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,digits}|
   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t tok_piece_llama3(const uint8_t *t, size_t p, size_t end, int digits) {
    size_t len, last;
    uint32_t cp;
    unsigned c = tok_cat_at(t, p, end, &len, &cp);
    if (cp == '\'') {
        size_t m = tok_contraction(t, p, end, 1);
        if (m) return p + m;
    }
    if (c & TOK_L) return tok_run(t, p, end, TOK_L, &last);
    size_t len1 = 0;
    uint32_t cp1 = SMELT_TOK_NONE;
    unsigned c1 = 0;
    int has1 = p + len < end;
    if (has1) c1 = tok_cat_at(t, p + len, end, &len1, &cp1);
    if (cp != '\r' && cp != '\n' && !(c & TOK_N) && has1 && (c1 & TOK_L))
        return tok_run(t, p + len, end, TOK_L, &last);
    if (c & TOK_N) {
        size_t q = p;
        for (int i = 0; i < digits && q < end; i++) {
            size_t l2;
            uint32_t cp2;
            if (!(tok_cat_at(t, q, end, &l2, &cp2) & TOK_N)) break;
            q += l2;
        }
        return q;
    }
    size_t q = p;
    unsigned cq = c;
    if (cp == ' ' && has1 && !(c1 & (TOK_WS | TOK_L | TOK_N))) q = p + 1, cq = c1;
    if (!(cq & (TOK_WS | TOK_L | TOK_N))) {
        size_t e = tok_run(t, q, end, 0, &last);
        while (e < end && (t[e] == '\r' || t[e] == '\n')) e++;
        return e;
    }
    /* Whitespace: up to and including the run's last newline, if any. */
    size_t e = tok_run(t, p, end, TOK_WS, &last);
    for (size_t k = e; k > p; k--)
        if (t[k - 1] == '\r' || t[k - 1] == '\n') return k;
    return tok_space_run(t, p, end);
}

/* ---- encoding ---- */

struct tok_heap_entry {
    uint32_t rank, pos, left, right;
};

struct tok_enc {
    const smelt_tok *tok;
    uint32_t *ids;
    size_t cap, n;
    uint32_t *sym, *next, *prev; /* symbols of the current word */
    struct tok_heap_entry *heap;
    size_t max_syms;
};

static int tok_emit(struct tok_enc *e, uint32_t id) {
    if (e->n >= e->cap) return SMELT_TOK_E_SPACE;
    e->ids[e->n++] = id;
    return SMELT_TOK_OK;
}

static int tok_heap_less(const struct tok_heap_entry *a, const struct tok_heap_entry *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void tok_heap_push(struct tok_heap_entry *h, size_t *n, struct tok_heap_entry x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!tok_heap_less(&x, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

static struct tok_heap_entry tok_heap_pop(struct tok_heap_entry *h, size_t *n) {
    struct tok_heap_entry top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_heap_less(&h[c + 1], &h[c])) c++;
        if (!tok_heap_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = x;
    return top;
}

static void tok_candidate(struct tok_enc *e, size_t *hn, uint32_t pos) {
    uint32_t q = e->next[pos];
    if (q == SMELT_TOK_NONE) return;
    const uint32_t *m = tok_pair_find(e->tok, e->sym[pos], e->sym[q]);
    if (m == 0) return;
    struct tok_heap_entry x = {m[2], pos, e->sym[pos], e->sym[q]};
    tok_heap_push(e->heap, hn, x);
}

/* Merges the n symbols in e->sym by rank and emits the result. */
static int tok_bpe(struct tok_enc *e, uint32_t n) {
    if (n == 0) return SMELT_TOK_OK;
    for (uint32_t i = 0; i < n; i++) {
        e->prev[i] = i == 0 ? SMELT_TOK_NONE : i - 1;
        e->next[i] = i + 1 < n ? i + 1 : SMELT_TOK_NONE;
    }
    size_t hn = 0;
    for (uint32_t i = 0; i + 1 < n; i++) tok_candidate(e, &hn, i);
    while (hn > 0) {
        struct tok_heap_entry x = tok_heap_pop(e->heap, &hn);
        uint32_t p = x.pos, q = e->next[p];
        if (e->sym[p] != x.left || q == SMELT_TOK_NONE || e->sym[q] != x.right) continue;
        const uint32_t *m = tok_pair_find(e->tok, x.left, x.right);
        e->sym[p] = m[3];
        e->sym[q] = SMELT_TOK_NONE;
        e->next[p] = e->next[q];
        if (e->next[q] != SMELT_TOK_NONE) e->prev[e->next[q]] = p;
        if (e->prev[p] != SMELT_TOK_NONE) tok_candidate(e, &hn, e->prev[p]);
        tok_candidate(e, &hn, p);
    }
    for (uint32_t i = 0; i != SMELT_TOK_NONE; i = e->next[i]) {
        int r = tok_emit(e, e->sym[i]);
        if (r != SMELT_TOK_OK) return r;
    }
    return SMELT_TOK_OK;
}

/* One byte-level piece t[a..b). */
static int tok_byte_piece(struct tok_enc *e, const uint8_t *t, size_t a, size_t b) {
    const smelt_tok *tok = e->tok;
    if (tok->flags & SMELT_TOK_IGNORE_MERGES) {
        uint32_t id = tok_piece_find(tok, t + a, b - a);
        if (id != SMELT_TOK_NONE) return tok_emit(e, id);
    }
    uint32_t n = 0;
    for (size_t i = a; i < b; i++)
        if (tok->byte_tokens[t[i]] != SMELT_TOK_NONE) e->sym[n++] = tok->byte_tokens[t[i]];
    return tok_bpe(e, n);
}

static int tok_byte_pieces(struct tok_enc *e, const uint8_t *t, size_t a, size_t b) {
    uint32_t pre = e->tok->pre;
    while (a < b) {
        size_t end;
        if (pre == SMELT_TOK_PRE_GPT2 || pre == SMELT_TOK_PRE_SMOLLM) end = tok_piece_gpt2(t, a, b);
        else if (pre == SMELT_TOK_PRE_LLAMA3) end = tok_piece_llama3(t, a, b, 3);
        else if (pre == SMELT_TOK_PRE_QWEN2) end = tok_piece_llama3(t, a, b, 1);
        else end = b;
        int r = tok_byte_piece(e, t, a, end);
        if (r != SMELT_TOK_OK) return r;
        a = end;
    }
    return SMELT_TOK_OK;
}

/* A text segment (between matched special tokens) of a byte-level BPE. */
static int tok_byte_segment(struct tok_enc *e, const uint8_t *t, size_t a, size_t b) {
    if (e->tok->pre != SMELT_TOK_PRE_SMOLLM) return tok_byte_pieces(e, t, a, b);
    /* SmolLM2: every number character is a piece of its own, and the GPT-2
       matcher runs on the text between them. */
    size_t start = a;
    while (a < b) {
        size_t len;
        uint32_t cp;
        if (tok_cat_at(t, a, b, &len, &cp) & TOK_N) {
            int r = tok_byte_pieces(e, t, start, a);
            if (r == SMELT_TOK_OK) r = tok_byte_piece(e, t, a, a + len);
            if (r != SMELT_TOK_OK) return r;
            start = a + len;
        }
        a += len;
    }
    return tok_byte_pieces(e, t, start, b);
}

/* The symbols of the bytes t[a..b) of a character that is not a piece:
   byte tokens, or the unknown token (once for a run when fused). */
static void tok_spm_unknown(struct tok_enc *e, const uint8_t *t, size_t a, size_t b, uint32_t *n) {
    const smelt_tok *tok = e->tok;
    if (tok->flags & SMELT_TOK_BYTE_FALLBACK) {
        int all = 1;
        for (size_t i = a; i < b; i++) all &= tok->byte_tokens[t[i]] != SMELT_TOK_NONE;
        if (all) {
            for (size_t i = a; i < b; i++) e->sym[(*n)++] = tok->byte_tokens[t[i]];
            return;
        }
    }
    if ((tok->flags & SMELT_TOK_FUSE_UNK) && *n > 0 && e->sym[*n - 1] == tok->unk) return;
    e->sym[(*n)++] = tok->unk;
}

/* A text segment of a SentencePiece BPE: the whole segment is one word. */
static int tok_spm_segment(struct tok_enc *e, const uint8_t *t, size_t a, size_t b, int at_start) {
    const smelt_tok *tok = e->tok;
    uint32_t n = 0;
    if (a == b) return SMELT_TOK_OK;
    if ((tok->flags & SMELT_TOK_PREFIX_ALL) || ((tok->flags & SMELT_TOK_PREFIX_FIRST) && at_start)) {
        e->sym[n++] = tok->metaspace;
    }
    while (a < b) {
        uint32_t cp;
        size_t len = tok_utf8(t, a, b, &cp);
        if (cp == ' ') {
            e->sym[n++] = tok->metaspace;
        } else {
            uint32_t id = tok_piece_find(tok, t + a, len);
            if (id != SMELT_TOK_NONE) e->sym[n++] = id;
            else tok_spm_unknown(e, t, a, a + len, &n);
        }
        a += len;
    }
    return tok_bpe(e, n);
}

/* The first listed token matched in the text at or after p (leftmost, then
   longest): its position in *at, its length in *len. */
static uint32_t tok_find_special(const smelt_tok *tok, const uint8_t *t, size_t p, size_t end,
                                 size_t *at, size_t *len) {
    for (size_t i = p; i < end; i++) {
        uint8_t c = t[i];
        if (!(tok->match_first[c >> 3] & (1u << (c & 7)))) continue;
        uint32_t best = SMELT_TOK_NONE;
        size_t best_len = 0;
        for (uint32_t k = 0; k < tok->n_listed; k++) {
            uint32_t id = tok_rd32(tok->listed + 8 * (size_t)k);
            if (!(tok->attr[id] & ATTR_MATCH)) continue;
            size_t n = tok->tok_len[id];
            if (n > best_len && n <= end - i && tok_equal(tok->pool + tok->tok_off[id], t + i, n))
                best = id, best_len = n;
        }
        if (best != SMELT_TOK_NONE) {
            *at = i, *len = best_len;
            return best;
        }
    }
    return SMELT_TOK_NONE;
}

size_t smelt_tok_work_bytes(size_t text_len) {
    size_t n = text_len + 2;
    return n * 12 + 3 * n * sizeof(struct tok_heap_entry) + 64;
}

size_t smelt_tok_max_ids(size_t text_len) { return 2 * text_len + 3; }

int smelt_tok_encode(const smelt_tok *tok, const uint8_t *text, size_t len, unsigned options,
                     uint32_t *ids, size_t cap, size_t *n_ids, void *work, size_t work_bytes) {
    *n_ids = 0;
    if (len > ((size_t)1 << 30)) return SMELT_TOK_E_MEMORY;
    if (work == 0 || ((uintptr_t)work & 7) != 0 || work_bytes < smelt_tok_work_bytes(len))
        return SMELT_TOK_E_MEMORY;
    if (text == 0 && len > 0) return SMELT_TOK_E_MEMORY;
    struct tok_enc e;
    size_t syms = len + 2;
    e.tok = tok, e.ids = ids, e.cap = cap, e.n = 0, e.max_syms = syms;
    e.heap = (struct tok_heap_entry *)work;
    e.sym = (uint32_t *)(e.heap + 3 * syms);
    e.next = e.sym + syms;
    e.prev = e.next + syms;
    int r = SMELT_TOK_OK;
    if ((options & SMELT_TOK_ADD_SPECIAL) && (tok->flags & SMELT_TOK_ADD_BOS) && tok->bos != SMELT_TOK_NONE)
        r = tok_emit(&e, tok->bos);
    size_t p = 0;
    while (r == SMELT_TOK_OK && p < len) {
        size_t at = len, mlen = 0;
        uint32_t special = SMELT_TOK_NONE;
        if (options & SMELT_TOK_PARSE_SPECIAL) special = tok_find_special(tok, text, p, len, &at, &mlen);
        if (tok->model == SMELT_TOK_MODEL_SPM_BPE) r = tok_spm_segment(&e, text, p, at, p == 0);
        else r = tok_byte_segment(&e, text, p, at);
        if (r == SMELT_TOK_OK && special != SMELT_TOK_NONE) r = tok_emit(&e, special);
        p = special != SMELT_TOK_NONE ? at + mlen : len;
    }
    if (r == SMELT_TOK_OK && (options & SMELT_TOK_ADD_SPECIAL) && (tok->flags & SMELT_TOK_ADD_EOS) &&
        tok->eos != SMELT_TOK_NONE)
        r = tok_emit(&e, tok->eos);
    *n_ids = e.n;
    return r;
}

/* ---- decoding ---- */

void smelt_tok_stream_init(smelt_tok_stream *s) {
    s->n_pending = 0;
    s->started = 0;
}

/* How many bytes at the end of b[0..n) start a UTF-8 character that is not
   complete yet (0 to 3). */
static size_t tok_incomplete_tail(const uint8_t *b, size_t n) {
    for (size_t i = 1; i <= 3 && i <= n; i++) {
        uint8_t c = b[n - i];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        return need > i ? i : 0;
    }
    return 0;
}

int smelt_tok_decode(const smelt_tok *tok, smelt_tok_stream *s, uint32_t id, unsigned options,
                     uint8_t *out, size_t cap, size_t *written) {
    *written = 0;
    if (id >= tok->n_tokens) return SMELT_TOK_E_TOKEN;
    if ((options & SMELT_TOK_SKIP_SPECIAL) && (tok->attr[id] & ATTR_SPECIAL)) return SMELT_TOK_OK;
    const uint8_t *p = tok->pool + tok->tok_off[id];
    size_t n = tok->tok_len[id], o = s->n_pending;
    if (o + n > cap) return SMELT_TOK_E_SPACE;
    tok_copy(out, s->pending, o);
    int spm = tok->model == SMELT_TOK_MODEL_SPM_BPE;
    if (spm && !(tok->attr[id] & (ATTR_LISTED | ATTR_BYTE))) {
        for (size_t i = 0; i < n; i++) {
            if (i + 2 < n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
                out[o++] = ' ';
                i += 2;
            } else {
                out[o++] = p[i];
            }
        }
    } else {
        tok_copy(out + o, p, n);
        o += n;
    }
    if (!s->started && o > 0) {
        s->started = 1;
        if (spm && (tok->flags & (SMELT_TOK_PREFIX_ALL | SMELT_TOK_PREFIX_FIRST)) && out[0] == ' ') {
            for (size_t i = 1; i < o; i++) out[i - 1] = out[i];
            o--;
        }
    }
    size_t hold = tok_incomplete_tail(out, o);
    tok_copy(s->pending, out + o - hold, hold);
    s->n_pending = (uint32_t)hold;
    *written = o - hold;
    return SMELT_TOK_OK;
}

int smelt_tok_decode_flush(smelt_tok_stream *s, uint8_t *out, size_t cap, size_t *written) {
    *written = 0;
    if (s->n_pending > cap) return SMELT_TOK_E_SPACE;
    tok_copy(out, s->pending, s->n_pending);
    *written = s->n_pending;
    if (s->n_pending) s->started = 1;
    s->n_pending = 0;
    return SMELT_TOK_OK;
}
