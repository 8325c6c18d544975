/* The llama.cpp reference for smelt's LLM tests: loads a GGUF file, feeds
 * the prompt token ids (one token per llama_decode, or all of them in one
 * batch with --batch), then extends the sequence greedily to N tokens in
 * all, one token per llama_decode. Writes the logits of every step (steps x
 * n_vocab little-endian f32, one row per fed token) to OUT and prints the
 * fed token ids on one line. The KV cache is f32 and flash attention off,
 * so the reference has no f16 rounding of its own.
 *
 * With --text, llama.cpp tokenizes TEXT (its BOS rule; special-token text
 * such as <|im_start|> becomes its token) into the prompt, and N counts the
 * tokens generated after it.
 *
 * usage: ref_logits MODEL.gguf N OUT.f32 [--batch] ID...
 *        ref_logits MODEL.gguf N OUT.f32 [--batch] --text TEXT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.gguf N OUT.f32 [--batch] (ID... | --text TEXT)\n", argv[0]);
        return 2;
    }
    int n_total = atoi(argv[2]);
    int first = 4, batch = 0;
    if (strcmp(argv[4], "--batch") == 0) { batch = 1; first = 5; }
    const char *text = NULL;
    if (first + 1 < argc && strcmp(argv[first], "--text") == 0) text = argv[first + 1];
    int n_prompt = argc - first;
    if (!text && (n_prompt < 1 || n_total < n_prompt)) {
        fprintf(stderr, "need 1 <= prompt ids <= N\n");
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token *text_ids = NULL;
    if (text) {
        int cap = (int)strlen(text) + 8;
        text_ids = malloc(sizeof(llama_token) * (size_t)cap);
        n_prompt = llama_tokenize(vocab, text, (int)strlen(text), text_ids, cap, true, true);
        if (n_prompt < 1) { fprintf(stderr, "the text tokenizes to %d tokens\n", n_prompt); return 1; }
        n_total += n_prompt;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_total < 256 ? 256 : (uint32_t)n_total;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }

    llama_token *ids = malloc(sizeof(llama_token) * (size_t)n_total);
    for (int i = 0; i < n_prompt; i++) ids[i] = text ? text_ids[i] : atoi(argv[first + i]);
    FILE *out = fopen(argv[3], "wb");
    if (!out) { fprintf(stderr, "cannot write %s\n", argv[3]); return 1; }
    struct llama_batch b = llama_batch_init(n_total, 0, 1);
    int fed = 0;
    while (fed < n_total) {
        int n = (batch && fed == 0) ? n_prompt : 1;
        b.n_tokens = n;
        for (int k = 0; k < n; k++) {
            b.token[k] = ids[fed + k];
            b.pos[k] = fed + k;
            b.n_seq_id[k] = 1;
            b.seq_id[k][0] = 0;
            b.logits[k] = 1;
        }
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "llama_decode failed at %d\n", fed); return 1; }
        for (int k = 0; k < n; k++) {
            const float *l = llama_get_logits_ith(ctx, k);
            fwrite(l, sizeof(float), (size_t)n_vocab, out);
        }
        fed += n;
        if (fed >= n_prompt && fed < n_total) {
            const float *l = llama_get_logits_ith(ctx, n - 1);
            int best = 0;
            for (int v = 1; v < n_vocab; v++) if (l[v] > l[best]) best = v;
            ids[fed] = best;
        }
    }
    fclose(out);
    for (int i = 0; i < n_total; i++) printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(ids);
    free(text_ids);
    return 0;
}
