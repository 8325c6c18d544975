/*
 * A C program embedding a language model's static library (smelt compile
 * MODEL.gguf --emit staticlib -o libtiny.a): the test of include/smelt_llm.h.
 *
 *   embed PROMPT N
 *
 * prints three lines of N greedy token ids each:
 *   1. step by step: tokenize, feed, then sample / feed one token at a time,
 *      with the instance in static memory of TINY_LLM_MEMORY_BYTES;
 *   2. smelt_llm_generate with a token callback, on a second instance whose
 *      memory is allocated at the size smelt_llm_memory gives, run
 *      interleaved with a third (no global state: they do not disturb each
 *      other);
 *   3. the third instance's ids, after smelt_llm_reset.
 * Then the decode step alone refuses a token id past the vocabulary and a
 * position past the cache (status and fault record).
 * The text of the generate call goes to stderr. Exit status 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiny.h"

static uint8_t mem1[TINY_LLM_MEMORY_BYTES] __attribute__((aligned(64)));

struct collect {
    uint32_t ids[1024];
    size_t n;
    smelt_llm *other; /* stepped once per token, to interleave */
};

static int on_token(void *user, uint32_t id, const char *text, size_t len) {
    struct collect *c = user;
    fwrite(text, 1, len, stderr);
    if (id == UINT32_MAX) return 0; /* held-back bytes at the end */
    c->ids[c->n++] = id;
    if (c->other) {
        /* Feed garbage to another instance between our tokens. */
        uint32_t t = 3;
        if (smelt_llm_n_past(c->other) < smelt_llm_ctx(c->other)) smelt_llm_feed(c->other, &t, 1);
    }
    return 0;
}

static void die(const char *what, int e) {
    fprintf(stderr, "embed: %s failed (%d)\n", what, e);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *prompt = argv[1];
    uint32_t n = (uint32_t)atoi(argv[2]);
    smelt_llm_model model = tiny_llm_model();
    size_t need = 0;
    int e = smelt_llm_memory(&model, 1024, &need);
    if (e) die("smelt_llm_memory", e);
    if (need > TINY_LLM_MEMORY_BYTES) {
        fprintf(stderr, "embed: TINY_LLM_MEMORY_BYTES %u < smelt_llm_memory %u\n", (unsigned)TINY_LLM_MEMORY_BYTES,
                (unsigned)need);
        return 1;
    }
    smelt_llm *a, *b, *c;
    if (TINY_LLM_STATE_BYTES != tiny_decode_model.state_bytes || TINY_LLM_ARENA_BYTES < tiny_decode_model.arena_bytes)
        die("the header's sizes", 0);
    if ((e = smelt_llm_init(&model, mem1, sizeof mem1, &a))) die("init a", e);
    if (smelt_llm_vocab(a) != TINY_LLM_VOCAB || smelt_llm_ctx(a) != TINY_LLM_CTX) die("sizes", 0);
    smelt_sampler greedy = smelt_sampler_default();
    greedy.temp = 0;

    /* 1. Step by step. */
    uint32_t ids[1024];
    size_t n_ids = 0;
    if ((e = smelt_llm_tokenize(a, prompt, strlen(prompt), SMELT_LLM_ADD_SPECIAL, ids, 1024, &n_ids)))
        die("tokenize", e);
    if ((e = smelt_llm_feed(a, ids, n_ids))) die("feed", e);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t id = smelt_llm_sample(a, &greedy);
        printf(k ? " %u" : "%u", id);
        if (k + 1 < n && (e = smelt_llm_feed(a, &id, 1))) die("feed one", e);
    }
    printf("\n");

    /* 2 and 3. Two heap instances, interleaved. */
    void *mb = aligned_alloc(64, (need + 63) / 64 * 64), *mc = aligned_alloc(64, (need + 63) / 64 * 64);
    if (!mb || !mc) die("malloc", 0);
    if ((e = smelt_llm_init(&model, mb, need, &b))) die("init b", e);
    if ((e = smelt_llm_init(&model, mc, need, &c))) die("init c", e);
    uint32_t t = 5;
    smelt_llm_feed(c, &t, 1);
    static struct collect got;
    got.other = c;
    if ((e = smelt_llm_generate(b, prompt, strlen(prompt), n, &greedy, on_token, &got))) die("generate", e);
    for (size_t k = 0; k < got.n; k++) printf(k ? " %u" : "%u", got.ids[k]);
    printf("\n");
    smelt_llm_reset(c);
    static struct collect got_c;
    if ((e = smelt_llm_generate(c, prompt, strlen(prompt), n, &greedy, on_token, &got_c))) die("generate c", e);
    for (size_t k = 0; k < got_c.n; k++) printf(k ? " %u" : "%u", got_c.ids[k]);
    printf("\n");
    /* A context that cannot hold the prompt is refused, not overrun. */
    smelt_llm_reset(a);
    static uint32_t many[TINY_LLM_CTX + 1];
    if (smelt_llm_feed(a, many, TINY_LLM_CTX + 1) != SMELT_LLM_E_CONTEXT) die("the context check", 0);
    /* The decode step itself refuses a token id past the vocabulary and a
       position past the cache: it returns SMELT_STATUS_OUT_OF_RANGE with a
       fault record its checks table explains. */
    {
        const smelt_model_info *m = model.decode;
        static uint8_t arena[TINY_LLM_ARENA_BYTES] __attribute__((aligned(64)));
        static uint8_t state[TINY_LLM_STATE_BYTES] __attribute__((aligned(64)));
        static float logits[TINY_LLM_VOCAB];
        int64_t token = TINY_LLM_VOCAB, pos = 0;
        const void *in[2];
        void *out[1] = {logits};
        for (uint32_t i = 0; i < 2; i++) in[i] = strcmp(m->inputs[i].name, "tokens") == 0 ? (void *)&token : (void *)&pos;
        smelt_fault f;
        model.decode_init(state);
        if (model.decode_run(in, out, arena, state, &f) != SMELT_STATUS_OUT_OF_RANGE) die("the token check", 0);
        if (f.check >= m->num_checks || f.value != TINY_LLM_VOCAB || f.hi != TINY_LLM_VOCAB) die("the token fault", 0);
        token = 3;
        pos = TINY_LLM_CTX;
        model.decode_init(state);
        if (model.decode_run(in, out, arena, state, &f) != SMELT_STATUS_OUT_OF_RANGE) die("the position check", 0);
        if (f.check >= m->num_checks || strcmp(m->checks[f.check].op, "ScatterND") != 0 || f.value != TINY_LLM_CTX)
            die("the position fault", 0);
        pos = TINY_LLM_CTX - 1;
        if (model.decode_run(in, out, arena, state, &f) != SMELT_STATUS_OK) die("the last position", 0);
    }
    free(mb);
    free(mc);
    return 0;
}
