/*
 * smelt's token sampler: one token id from a step's logits, in freestanding C
 * (no libc, no allocation beyond the caller's scratch), for the chat
 * executables.
 *
 * The chain is llama.cpp's default order:
 *   1. repetition penalty over the last `repeat_last_n` tokens (each distinct
 *      token once: a positive logit is divided by the penalty, a negative
 *      one multiplied);
 *   2. temperature <= 0: greedy, the first index of the largest logit (NaN
 *      counts as -inf); nothing below is used and no random number is drawn;
 *   3. top-k (0: off): the k largest logits, ties broken by the lower id;
 *   4. top-p (>= 1: off): the shortest prefix of the candidates, sorted by
 *      logit, whose softmax mass reaches p (at least one);
 *   5. min-p (<= 0: off): the candidates whose probability is at least
 *      min_p times the largest;
 *   6. temperature: the kept candidates' weights exp((logit - max) / temp),
 *      and one draw of the PRNG picks by cumulative weight.
 * Steps 4-6 use probabilities before temperature, as llama.cpp does.
 *
 * The PRNG is xoshiro256** seeded through splitmix64: the same seed, logits
 * and options give the same tokens on every target.
 */

#ifndef SMELT_SAMPLE_H
#define SMELT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "smelt_llm.h" /* smelt_sampler */

typedef struct {
    uint64_t s[4];
} smelt_rng;

/* Seeds the generator (any seed, 0 included). */
void smelt_rng_seed(smelt_rng *r, uint64_t seed);
/* A uniform double in [0, 1). */
double smelt_rng_uniform(smelt_rng *r);

/* Scratch bytes smelt_sample needs for a vocabulary of n tokens. */
size_t smelt_sample_scratch_bytes(uint32_t n);

/* Picks a token from logits[0..n) (modified in place by the penalty).
   `recent` holds the last n_recent tokens (the penalty's window is its
   last repeat_last_n); `scratch` is 8-byte aligned memory of
   smelt_sample_scratch_bytes(n) bytes. */
uint32_t smelt_sample(const smelt_sampler *p, float *logits, uint32_t n, const uint32_t *recent,
                      size_t n_recent, smelt_rng *r, void *scratch);

#endif
