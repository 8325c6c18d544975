/*
 * llm.h: what a chat executable knows of its language model beyond the step
 * functions, and the step functions themselves.
 *
 * `smelt compile MODEL.gguf|HF_DIR --emit exe` links three pieces with the
 * chat runtime (chat.c):
 *   - the decode model, one token per step: smelt_decode_model/_run/_init,
 *     inputs `tokens: i64[1]` and `pos: i64[1]`, output `logits: f32[1, vocab]`;
 *   - optionally the prefill model, `chunk` tokens per step (`tokens:
 *     i64[chunk]`, the same `pos` and `logits` of the chunk's last token):
 *     smelt_prefill_model/_run/_init. Both read and write one state buffer
 *     (the KV cache, laid out identically by the compiler, which checks it);
 *   - `smelt_llm_descriptor`, read-only bytes: the descriptor below, then the
 *     tokenizer table (tokenizer.h) and the chat template.
 *
 * Descriptor, version 1: 20 little-endian u32.
 *   0 magic 'S','M','L','M'   1 version (1)    2 vocab   3 ctx (KV capacity)
 *   4 chunk (prefill tokens per step; 0: no prefill model)
 *   5 n_eos (at most SMELT_LLM_MAX_EOS)   6..13 the end-of-generation ids
 *   14 tokenizer offset   15 tokenizer bytes (offsets from the descriptor's
 *   16 chat template offset   17 chat template bytes (0: none)   start)
 *   18, 19 zero
 *
 * Chat template, version 1: the layout and the rendering rules are in the
 * module doc of frontend/src/tokenizer/chat.rs, its writer. In short: u32
 * magic 'S','M','C','T', version (1), format, flags (SMELT_CHAT_*), string
 * count (SMELT_CHAT_STRINGS), then the strings (u32 length, bytes, zero
 * padding to 4) in the order of the SMELT_CHAT_S_* indices. A conversation
 * is rendered by concatenation: prefix, [system prefix, system, system
 * suffix] (inside the first user turn, after its prefix, with
 * SMELT_CHAT_SYSTEM_IN_USER), user prefix, text, user suffix, generation
 * prompt; the model's answer up to its end-of-turn token; the rest of the
 * assistant suffix; the next user turn.
 */

#ifndef SMELT_LLM_H
#define SMELT_LLM_H

#include <stdint.h>

#include "smelt_model.h"

#define SMELT_LLM_MAGIC 0x4D4C4D53u /* "SMLM" */
#define SMELT_LLM_VERSION 1u
#define SMELT_LLM_WORDS 20u
#define SMELT_LLM_MAX_EOS 8u

#define SMELT_CHAT_MAGIC 0x54434D53u /* "SMCT" */
#define SMELT_CHAT_VERSION 1u
#define SMELT_CHAT_SYSTEM_IN_USER 1u  /* the system text goes inside the first user turn */
#define SMELT_CHAT_DEFAULT_SYSTEM 2u  /* the template has a default system text */
#define SMELT_CHAT_BOS_IN_TEXT 4u     /* the rendered text holds the BOS text: add no BOS token */
#define SMELT_CHAT_STRINGS 11u
enum {
    SMELT_CHAT_S_SYSTEM_PREFIX,
    SMELT_CHAT_S_SYSTEM_SUFFIX,
    SMELT_CHAT_S_USER_PREFIX,
    SMELT_CHAT_S_USER_SUFFIX,
    SMELT_CHAT_S_ASSISTANT_PREFIX,
    SMELT_CHAT_S_ASSISTANT_SUFFIX,
    SMELT_CHAT_S_DEFAULT_SYSTEM,
    SMELT_CHAT_S_GENERATION_PROMPT,
    SMELT_CHAT_S_PREFIX,
    SMELT_CHAT_S_CLOSING,
    SMELT_CHAT_S_END_OF_TURN
};

extern const uint8_t smelt_llm_descriptor[];

extern const smelt_model_info smelt_decode_model;
void smelt_decode_init(void *state);
int32_t smelt_decode_run(const void *const *inputs, void *const *outputs, void *arena, void *state, smelt_fault *fault);

/* Weak: a chat executable for a microcontroller has no prefill model. */
extern const smelt_model_info smelt_prefill_model __attribute__((weak));
int32_t smelt_prefill_run(const void *const *inputs, void *const *outputs, void *arena, void *state,
                          smelt_fault *fault) __attribute__((weak));

#endif
