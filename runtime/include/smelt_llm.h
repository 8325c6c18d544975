/*
 * smelt_llm.h: a language model compiled by smelt, for C programs (C99).
 *
 * `smelt compile MODEL.gguf|HF_DIR --emit staticlib -o libNAME.a` writes a
 * static library with the model's two step functions (decode: one token;
 * prefill: a chunk of prompt tokens), its tokenizer and descriptor, and this
 * API; NAME.h declares them, defines NAME_LLM_MEMORY_BYTES (all the memory
 * one instance needs) and NAME_llm_model(), which fills the smelt_llm_model
 * below. An executable (`--emit exe`) is the same API behind a command line.
 *
 *     static uint8_t mem[NAME_LLM_MEMORY_BYTES] __attribute__((aligned(64)));
 *     smelt_llm_model model = NAME_llm_model();
 *     smelt_llm *llm;
 *     if (smelt_llm_init(&model, mem, sizeof mem, &llm)) abort();
 *     smelt_sampler s = smelt_sampler_default();
 *     smelt_llm_seed(llm, 42);
 *     smelt_llm_generate(llm, "Once upon a time", 16, 64, &s, print_token, NULL);
 *
 * An instance lives entirely in the caller's memory: there is no global
 * mutable state, two instances are two memory blocks, and nothing
 * allocates. Functions return 0 or a negative SMELT_LLM_E_* code.
 */
#ifndef SMELT_LLM_API_H
#define SMELT_LLM_API_H

#include <stddef.h>
#include <stdint.h>

#include "smelt_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SMELT_LLM_OK 0
#define SMELT_LLM_E_MODEL (-1)     /* the model's tables or descriptor are not what this API reads */
#define SMELT_LLM_E_MEMORY (-2)    /* the memory block is too small or not 64-byte aligned */
#define SMELT_LLM_E_CONTEXT (-3)   /* the tokens do not fit the KV cache */
#define SMELT_LLM_E_TOKENIZER (-4) /* the tokenizer refused the text or a token id */
#define SMELT_LLM_E_RANGE (-5)     /* a step failed a run-time check (smelt_llm_fault says which); the
                                      instance must be reset before it runs again */

/* One step function of a compiled model and its state initialiser. */
typedef int32_t (*smelt_step_fn)(const void *const *inputs, void *const *outputs, void *arena, void *state,
                                 smelt_fault *fault);
typedef void (*smelt_init_fn)(void *state);

/* A compiled language model: what NAME_llm_model() returns. */
typedef struct {
    const smelt_model_info *decode; /* one token per step */
    smelt_step_fn decode_run;
    smelt_init_fn decode_init;
    const smelt_model_info *prefill; /* `chunk` tokens per step, or NULL */
    smelt_step_fn prefill_run;
    const uint8_t *descriptor; /* vocabulary, context, chunk, end ids, tokenizer */
} smelt_llm_model;

/* Sampling (llama.cpp's chain: penalty, top-k, top-p, min-p, temperature). */
typedef struct {
    float temp;             /* <= 0: greedy */
    uint32_t top_k;         /* 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off */
    uint32_t repeat_last_n; /* tokens the penalty looks back over */
} smelt_sampler;

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalty. */
smelt_sampler smelt_sampler_default(void);

typedef struct smelt_llm smelt_llm;

/* Bytes of memory (64-byte aligned) one instance of `m` needs to tokenize
   texts of up to max_text bytes (NAME_LLM_MEMORY_BYTES is for 1024). */
int smelt_llm_memory(const smelt_llm_model *m, size_t max_text, size_t *bytes);
/* Builds an instance in mem[0..bytes) (64-byte aligned): tokenizer tables,
   an empty KV cache; the memory past what the model needs sets the longest
   text it tokenizes. */
int smelt_llm_init(const smelt_llm_model *m, void *mem, size_t bytes, smelt_llm **out);
/* Empties the KV cache (a new conversation). */
void smelt_llm_reset(smelt_llm *l);
/* Seeds the sampler's generator (the same seed gives the same tokens). */
void smelt_llm_seed(smelt_llm *l, uint64_t seed);

uint32_t smelt_llm_vocab(const smelt_llm *l);
/* The KV cache's capacity and how much of it is used. */
uint32_t smelt_llm_ctx(const smelt_llm *l);
uint32_t smelt_llm_n_past(const smelt_llm *l);
/* The BOS token SMELT_LLM_ADD_SPECIAL puts first, or UINT32_MAX when the
   tokenizer adds none. */
uint32_t smelt_llm_bos(const smelt_llm *l);
/* Whether `id` ends generation (the model's end-of-sequence tokens). */
int smelt_llm_is_eos(const smelt_llm *l, uint32_t id);

/* Tokenize flags. */
#define SMELT_LLM_ADD_SPECIAL 1u   /* BOS (and EOS) as the model's tokenizer says */
#define SMELT_LLM_PARSE_SPECIAL 2u /* special-token text (<|im_start|>) becomes its token */
/* Most ids a text of `len` bytes can give. */
size_t smelt_llm_max_tokens(size_t len);
/* Encodes text[0..len) into ids[0..*n); SMELT_LLM_E_MEMORY when the text is
   longer than the instance's memory allows or cap is too small. */
int smelt_llm_tokenize(smelt_llm *l, const char *text, size_t len, unsigned flags, uint32_t *ids, size_t cap,
                       size_t *n);

/* Runs ids[0..n) through the model at the end of the cache (whole chunks
   through the prefill step, the rest one by one), leaving the logits of the
   last one. SMELT_LLM_E_CONTEXT (and nothing run) when they do not fit;
   SMELT_LLM_E_RANGE when a step fails a run-time check. */
int smelt_llm_feed(smelt_llm *l, const uint32_t *ids, size_t n);
/* The fault record of the step that last returned SMELT_LLM_E_RANGE, and
   the model whose check it names (its `checks` table). */
const smelt_fault *smelt_llm_fault(const smelt_llm *l, const smelt_model_info **model);
/* The logits the last feed left (smelt_llm_vocab floats). */
const float *smelt_llm_logits(const smelt_llm *l);
/* Samples a token from the last logits (which it may modify). */
uint32_t smelt_llm_sample(smelt_llm *l, const smelt_sampler *s);

/* Appends the text of `id` to out[0..cap), *n bytes, holding back an
   incomplete UTF-8 character until the next token completes it; special
   tokens give no text. smelt_llm_detokenize_flush writes what is held back. */
int smelt_llm_detokenize(smelt_llm *l, uint32_t id, char *out, size_t cap, size_t *n);
int smelt_llm_detokenize_flush(smelt_llm *l, char *out, size_t cap, size_t *n);
/* The longest text one smelt_llm_detokenize call writes. */
size_t smelt_llm_max_piece(const smelt_llm *l);

/* Called for each generated token with its text; nonzero stops. A last
   call with id UINT32_MAX carries the bytes held back at the end (an
   incomplete character), if any. */
typedef int (*smelt_llm_on_token)(void *user, uint32_t id, const char *text, size_t len);
/* Tokenizes `prompt` (SMELT_LLM_ADD_SPECIAL when the cache is empty), feeds
   it and generates up to n_predict tokens, stopping at an end token, when
   `on_token` returns nonzero, or when the cache is full (the last token is
   then reported but not fed). */
int smelt_llm_generate(smelt_llm *l, const char *prompt, size_t len, uint32_t n_predict, const smelt_sampler *s,
                       smelt_llm_on_token on_token, void *user);

#ifdef __cplusplus
}
#endif

#endif /* SMELT_LLM_API_H */
