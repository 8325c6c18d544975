/*
 * The language-model API object that smelt puts into a language model's
 * static library (`smelt compile MODEL.gguf --emit staticlib`), beside the
 * step models, the descriptor and the libcalls object: include/smelt_llm.h
 * (llm.c) with the tokenizer (tokenizer.c) and the sampler (sample.c) it
 * is built on. No entry point, no I/O, no global mutable state.
 *
 * Every function is weak, so that a program linking two models' libraries
 * gets one copy of each without a "multiple definition" error (the copies
 * are the same code); the tokenizer's and sampler's are also hidden, since
 * only the API is the library's interface.
 */

#include <stddef.h>
#include <stdint.h>

#define SMELT_MODEL_NO_FIXED_NAMES
#include "llm.h"
#include "smelt_llm.h"

#pragma weak smelt_tok_memory
#pragma weak smelt_tok_init
#pragma weak smelt_tok_work_bytes
#pragma weak smelt_tok_max_ids
#pragma weak smelt_tok_encode
#pragma weak smelt_tok_n_tokens
#pragma weak smelt_tok_bos
#pragma weak smelt_tok_eos
#pragma weak smelt_tok_max_piece
#pragma weak smelt_tok_stream_init
#pragma weak smelt_tok_decode
#pragma weak smelt_tok_decode_flush
#pragma weak smelt_rng_seed
#pragma weak smelt_rng_uniform
#pragma weak smelt_sample_scratch_bytes
#pragma weak smelt_sample

#pragma GCC visibility push(hidden)
#include "tokenizer.c"
#include "sample.c"
#pragma GCC visibility pop

#define SMELT_LLM_API __attribute__((weak))
#include "llm.c"
