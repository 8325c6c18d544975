/*
 * The language-model API (include/smelt_llm.h) over a compiled model's step
 * functions, descriptor (llm.h), tokenizer (tokenizer.h) and sampler
 * (sample.h). The chat executables (chat.c) and static libraries use this
 * one implementation.
 *
 * An instance is one block of caller memory, laid out by llm_layout: the
 * instance itself, the tokenizer's tables, the arena (shared by both step
 * functions, which never run at once), the KV cache, the logits, the step
 * inputs, the token history (for the repetition penalty), the sampler's
 * scratch, a decode buffer, and the tokenizer's work area, whose size sets
 * the longest text smelt_llm_tokenize takes.
 */

#ifndef SMELT_LLM_API
#define SMELT_LLM_API
#endif

#define LLM_ALIGN 64u

struct smelt_llm {
    smelt_llm_model m;
    uint32_t vocab, ctx, chunk, n_eos, eos[SMELT_LLM_MAX_EOS];
    uint32_t n_past;
    uint32_t decode_idx[3], prefill_idx[3]; /* tokens, pos, logits */
    smelt_tok *tok;
    smelt_tok_stream stream;
    smelt_rng rng;
    void *arena, *state;
    smelt_fault fault;                 /* the last failed step's */
    const smelt_model_info *fault_model; /* and its model */
    float *logits;
    int64_t *tokens, *pos;
    uint32_t *history;
    void *sample_scratch;
    size_t piece_cap;
    uint32_t *ids;
    size_t ids_cap;
    void *work;
    size_t work_bytes, max_text;
};

static uint32_t llm_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The longest text an instance tokenizes: its work area's size formula
   stays far from overflow on 32-bit targets. */
#define LLM_MAX_TEXT ((size_t)1 << 30 < SIZE_MAX / 256 ? (size_t)1 << 30 : SIZE_MAX / 256)

static size_t llm_up(size_t n) { return (n + LLM_ALIGN - 1) & ~(size_t)(LLM_ALIGN - 1); }

static int llm_streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* The index of tensor `name` in t[0..n) if it is dtype[dims], else -1. */
static int llm_find(const smelt_tensor_info *t, uint32_t n, const char *name, uint32_t dtype, uint32_t rank,
                    const uint64_t *dims) {
    for (uint32_t i = 0; i < n; i++) {
        if (!llm_streq(t[i].name, name)) continue;
        if (t[i].dtype != dtype || t[i].rank != rank) return -1;
        for (uint32_t d = 0; d < rank; d++)
            if (t[i].dims[d] != dims[d]) return -1;
        return (int)i;
    }
    return -1;
}

/* Checks a step model: inputs tokens i64[n] and pos i64[1], output logits
   f32[1, vocab]. */
static int llm_check_step(const smelt_model_info *m, uint32_t n, uint32_t vocab, uint32_t idx[3]) {
    if (!m || m->abi_version != SMELT_ABI_VERSION || m->num_inputs != 2 || m->num_outputs != 1)
        return SMELT_LLM_E_MODEL;
    uint64_t tdims[1] = {n}, pdims[1] = {1}, ldims[2] = {1, vocab};
    int t = llm_find(m->inputs, 2, "tokens", SMELT_DTYPE_I64, 1, tdims);
    int p = llm_find(m->inputs, 2, "pos", SMELT_DTYPE_I64, 1, pdims);
    int l = llm_find(m->outputs, 1, "logits", SMELT_DTYPE_F32, 2, ldims);
    if (t < 0 || p < 0 || l < 0) return SMELT_LLM_E_MODEL;
    idx[0] = (uint32_t)t;
    idx[1] = (uint32_t)p;
    idx[2] = (uint32_t)l;
    return SMELT_LLM_OK;
}

/* Reads and checks the descriptor and both step models into `l` (no
   memory touched besides *l). */
static int llm_describe(const smelt_llm_model *m, struct smelt_llm *l) {
    const uint8_t *d = m->descriptor;
    if (!d || !m->decode || !m->decode_run || !m->decode_init) return SMELT_LLM_E_MODEL;
    if (llm_rd32(d) != SMELT_LLM_MAGIC || llm_rd32(d + 4) != SMELT_LLM_VERSION) return SMELT_LLM_E_MODEL;
    l->m = *m;
    l->vocab = llm_rd32(d + 8);
    l->ctx = llm_rd32(d + 12);
    l->chunk = llm_rd32(d + 16);
    l->n_eos = llm_rd32(d + 20);
    if (!l->vocab || !l->ctx || l->n_eos > SMELT_LLM_MAX_EOS) return SMELT_LLM_E_MODEL;
    for (uint32_t i = 0; i < l->n_eos; i++) l->eos[i] = llm_rd32(d + 24 + 4 * i);
    int e = llm_check_step(m->decode, 1, l->vocab, l->decode_idx);
    if (e) return e;
    if (l->chunk) {
        if (!m->prefill || !m->prefill_run) return SMELT_LLM_E_MODEL;
        e = llm_check_step(m->prefill, l->chunk, l->vocab, l->prefill_idx);
        if (e) return e;
        if (m->prefill->state_bytes != m->decode->state_bytes) return SMELT_LLM_E_MODEL;
    }
    return SMELT_LLM_OK;
}

/* The instance's parts in a block at `base` (NULL: sizes only); returns
   the bytes they take for a text capacity of max_text bytes. */
static size_t llm_layout(struct smelt_llm *l, uint8_t *base, size_t tok_mem, size_t max_text) {
    const smelt_model_info *dm = l->m.decode, *pm = l->chunk ? l->m.prefill : 0;
    uint64_t arena = dm->arena_bytes;
    if (pm && pm->arena_bytes > arena) arena = pm->arena_bytes;
    uint32_t chunk = l->chunk > 1 ? l->chunk : 1;
    size_t at = llm_up(sizeof(struct smelt_llm));
#define LLM_PART(field, type, bytes)                    \
    do {                                                \
        if (base) l->field = (type)(void *)(base + at); \
        at += llm_up((size_t)(bytes));                  \
    } while (0)
    at += llm_up(tok_mem);
    LLM_PART(arena, void *, arena);
    LLM_PART(state, void *, dm->state_bytes ? dm->state_bytes : 1);
    LLM_PART(logits, float *, (size_t)l->vocab * 4);
    LLM_PART(tokens, int64_t *, (size_t)chunk * 8);
    LLM_PART(pos, int64_t *, 8);
    LLM_PART(history, uint32_t *, (size_t)l->ctx * 4);
    LLM_PART(sample_scratch, void *, smelt_sample_scratch_bytes(l->vocab));
    l->ids_cap = smelt_tok_max_ids(max_text);
    LLM_PART(ids, uint32_t *, l->ids_cap * 4);
    l->work_bytes = smelt_tok_work_bytes(max_text);
    LLM_PART(work, void *, l->work_bytes);
#undef LLM_PART
    l->max_text = max_text;
    return at;
}

static int llm_sizes(const smelt_llm_model *m, struct smelt_llm *l, size_t *tok_mem) {
    int e = llm_describe(m, l);
    if (e) return e;
    const uint8_t *d = m->descriptor;
    if (smelt_tok_memory(d + llm_rd32(d + 56), llm_rd32(d + 60), tok_mem)) return SMELT_LLM_E_MODEL;
    return SMELT_LLM_OK;
}

SMELT_LLM_API int smelt_llm_memory(const smelt_llm_model *m, size_t max_text, size_t *bytes) {
    struct smelt_llm l;
    size_t tok_mem = 0;
    int e = llm_sizes(m, &l, &tok_mem);
    if (e) return e;
    if (max_text > LLM_MAX_TEXT) return SMELT_LLM_E_MEMORY;
    *bytes = llm_layout(&l, 0, tok_mem, max_text);
    return SMELT_LLM_OK;
}

SMELT_LLM_API int smelt_llm_init(const smelt_llm_model *m, void *mem, size_t bytes, smelt_llm **out) {
    struct smelt_llm l;
    size_t tok_mem = 0;
    int e = llm_sizes(m, &l, &tok_mem);
    if (e) return e;
    if (!mem || ((uintptr_t)mem & (LLM_ALIGN - 1))) return SMELT_LLM_E_MEMORY;
    size_t fixed = llm_layout(&l, 0, tok_mem, 0);
    if (bytes < fixed) return SMELT_LLM_E_MEMORY;
    /* The rest is the tokenizer's: the longest text it then takes. */
    size_t text = 0;
    for (size_t step = LLM_MAX_TEXT; step; step >>= 1)
        if (text + step <= LLM_MAX_TEXT && llm_layout(&l, 0, tok_mem, text + step) <= bytes) text += step;
    uint8_t *base = mem;
    struct smelt_llm *p = (struct smelt_llm *)(void *)base;
    llm_layout(&l, base, tok_mem, text);
    *p = l;
    const uint8_t *d = m->descriptor;
    if (smelt_tok_init(d + llm_rd32(d + 56), llm_rd32(d + 60), base + llm_up(sizeof(struct smelt_llm)), tok_mem,
                       &p->tok))
        return SMELT_LLM_E_MODEL;
    p->piece_cap = smelt_tok_max_piece(p->tok);
    /* smelt_llm_generate decodes into the work area (free once the prompt
       is encoded): it must hold the longest token. */
    if (p->work_bytes < p->piece_cap) return SMELT_LLM_E_MEMORY;
    smelt_rng_seed(&p->rng, 0);
    smelt_llm_reset(p);
    *out = p;
    return SMELT_LLM_OK;
}

SMELT_LLM_API void smelt_llm_reset(smelt_llm *l) {
    l->m.decode_init(l->state);
    l->n_past = 0;
    smelt_tok_stream_init(&l->stream);
}

SMELT_LLM_API void smelt_llm_seed(smelt_llm *l, uint64_t seed) { smelt_rng_seed(&l->rng, seed); }
SMELT_LLM_API uint32_t smelt_llm_vocab(const smelt_llm *l) { return l->vocab; }
SMELT_LLM_API uint32_t smelt_llm_ctx(const smelt_llm *l) { return l->ctx; }
SMELT_LLM_API uint32_t smelt_llm_n_past(const smelt_llm *l) { return l->n_past; }
SMELT_LLM_API const float *smelt_llm_logits(const smelt_llm *l) { return l->logits; }
SMELT_LLM_API size_t smelt_llm_max_piece(const smelt_llm *l) { return l->piece_cap; }
SMELT_LLM_API size_t smelt_llm_max_tokens(size_t len) { return smelt_tok_max_ids(len); }

SMELT_LLM_API uint32_t smelt_llm_bos(const smelt_llm *l) {
    /* The tokenizer table's header: word 4 flags, word 9 bos (tokenizer.h). */
    const uint8_t *d = l->m.descriptor, *t = d + llm_rd32(d + 56);
    return (llm_rd32(t + 16) & SMELT_TOK_ADD_BOS) ? llm_rd32(t + 36) : SMELT_TOK_NONE;
}

SMELT_LLM_API int smelt_llm_is_eos(const smelt_llm *l, uint32_t id) {
    for (uint32_t i = 0; i < l->n_eos; i++)
        if (l->eos[i] == id) return 1;
    return 0;
}

SMELT_LLM_API smelt_sampler smelt_sampler_default(void) {
    smelt_sampler s = {0.8f, 40, 0.95f, 0.05f, 1.0f, 64};
    return s;
}

SMELT_LLM_API int smelt_llm_tokenize(smelt_llm *l, const char *text, size_t len, unsigned flags, uint32_t *ids,
                                     size_t cap, size_t *n) {
    *n = 0;
    if (len > l->max_text) return SMELT_LLM_E_MEMORY;
    unsigned o = (flags & SMELT_LLM_ADD_SPECIAL ? SMELT_TOK_ADD_SPECIAL : 0) |
                 (flags & SMELT_LLM_PARSE_SPECIAL ? SMELT_TOK_PARSE_SPECIAL : 0);
    int e = smelt_tok_encode(l->tok, (const uint8_t *)text, len, o, ids, cap, n, l->work, l->work_bytes);
    return e == SMELT_TOK_OK ? SMELT_LLM_OK : e == SMELT_TOK_E_SPACE ? SMELT_LLM_E_MEMORY : SMELT_LLM_E_TOKENIZER;
}

/* One step of n tokens (the prefill step when n > 1) at the cache's end:
   SMELT_LLM_OK, or SMELT_LLM_E_RANGE with l->fault filled. */
static int llm_step(smelt_llm *l, const uint32_t *ids, uint32_t n) {
    const void *in[2];
    void *out[1];
    for (uint32_t i = 0; i < n; i++) {
        l->tokens[i] = ids[i];
        l->history[l->n_past + i] = ids[i];
    }
    *l->pos = l->n_past;
    const uint32_t *idx = n > 1 ? l->prefill_idx : l->decode_idx;
    in[idx[0]] = l->tokens;
    in[idx[1]] = l->pos;
    out[0] = l->logits;
    int32_t st = n > 1 ? l->m.prefill_run(in, out, l->arena, l->state, &l->fault)
                       : l->m.decode_run(in, out, l->arena, l->state, &l->fault);
    if (st != SMELT_STATUS_OK) {
        l->fault_model = n > 1 ? l->m.prefill : l->m.decode;
        return SMELT_LLM_E_RANGE;
    }
    l->n_past += n;
    return SMELT_LLM_OK;
}

SMELT_LLM_API const smelt_fault *smelt_llm_fault(const smelt_llm *l, const smelt_model_info **model) {
    if (model) *model = l->fault_model;
    return &l->fault;
}

SMELT_LLM_API int smelt_llm_feed(smelt_llm *l, const uint32_t *ids, size_t n) {
    if (n > l->ctx - l->n_past) return SMELT_LLM_E_CONTEXT;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= l->vocab) return SMELT_LLM_E_TOKENIZER;
    size_t i = 0;
    int e = SMELT_LLM_OK;
    for (; !e && l->chunk > 1 && n - i >= l->chunk; i += l->chunk) e = llm_step(l, ids + i, l->chunk);
    for (; !e && i < n; i++) e = llm_step(l, ids + i, 1);
    return e;
}

SMELT_LLM_API uint32_t smelt_llm_sample(smelt_llm *l, const smelt_sampler *s) {
    return smelt_sample(s, l->logits, l->vocab, l->history, l->n_past, &l->rng, l->sample_scratch);
}

SMELT_LLM_API int smelt_llm_detokenize(smelt_llm *l, uint32_t id, char *out, size_t cap, size_t *n) {
    int e = smelt_tok_decode(l->tok, &l->stream, id, SMELT_TOK_SKIP_SPECIAL, (uint8_t *)out, cap, n);
    return e == SMELT_TOK_OK ? SMELT_LLM_OK : e == SMELT_TOK_E_SPACE ? SMELT_LLM_E_MEMORY : SMELT_LLM_E_TOKENIZER;
}

SMELT_LLM_API int smelt_llm_detokenize_flush(smelt_llm *l, char *out, size_t cap, size_t *n) {
    int e = smelt_tok_decode_flush(&l->stream, (uint8_t *)out, cap, n);
    return e == SMELT_TOK_OK ? SMELT_LLM_OK : SMELT_LLM_E_MEMORY;
}

SMELT_LLM_API int smelt_llm_generate(smelt_llm *l, const char *prompt, size_t len, uint32_t n_predict,
                                     const smelt_sampler *s, smelt_llm_on_token on_token, void *user) {
    size_t n = 0;
    int e = smelt_llm_tokenize(l, prompt, len, l->n_past ? 0 : SMELT_LLM_ADD_SPECIAL, l->ids, l->ids_cap, &n);
    if (e) return e;
    if ((e = smelt_llm_feed(l, l->ids, n))) return e;
    /* The token text goes through the tokenizer's work area, free now. */
    char *piece = l->work;
    for (uint32_t k = 0; k < n_predict; k++) {
        uint32_t id = smelt_llm_sample(l, s);
        size_t w = 0;
        if ((e = smelt_llm_detokenize(l, id, piece, l->work_bytes, &w))) return e;
        int eos = smelt_llm_is_eos(l, id);
        if (on_token && on_token(user, id, piece, w)) break;
        if (eos || k + 1 == n_predict || l->n_past == l->ctx) break;
        if ((e = smelt_llm_feed(l, &id, 1))) return e;
    }
    size_t w = 0;
    if (smelt_llm_detokenize_flush(l, piece, l->work_bytes, &w) == SMELT_LLM_OK && w && on_token)
        on_token(user, SMELT_TOK_NONE, piece, w);
    return SMELT_LLM_OK;
}
