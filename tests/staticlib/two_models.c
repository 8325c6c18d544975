/*
 * Two models in one program: libmlp.a (mlp_model, mlp_run, MLP_*) and
 * libcnn.a (cnn_model, cnn_run, CNN_*), each with its own header, linked
 * together; their symbols are prefixed, so nothing clashes.
 *
 *   two_models X.raw MFCC.raw PROBS.raw LOGITS.raw
 *
 * runs the MLP on X and the CNN on MFCC, each on its own arena, and writes
 * both outputs raw. Exit status 0 on success, 1 with a message otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "cnn.h"

static int io(const char *path, void *buf, size_t bytes, int write) {
    FILE *f = fopen(path, write ? "wb" : "rb");
    size_t n;
    if (!f) return 0;
    n = write ? fwrite(buf, 1, bytes, f) : fread(buf, 1, bytes, f);
    return fclose(f) == 0 && n == bytes;
}

int main(int argc, char **argv) {
    static float x[MLP_INPUT_X_ELEMENTS], probs[MLP_OUTPUT_PROBS_ELEMENTS];
    static float mfcc[CNN_INPUT_MFCC_ELEMENTS], logits[CNN_OUTPUT_LOGITS_ELEMENTS];
    static _Alignas(MLP_ARENA_ALIGN) unsigned char mlp_arena[MLP_ARENA_BYTES];
    static _Alignas(CNN_ARENA_ALIGN) unsigned char cnn_arena[CNN_ARENA_BYTES];
    const void *mlp_in[MLP_NUM_INPUTS], *cnn_in[CNN_NUM_INPUTS];
    void *mlp_out[MLP_NUM_OUTPUTS], *cnn_out[CNN_NUM_OUTPUTS];

    if (argc != 5) {
        fprintf(stderr, "usage: two_models X.raw MFCC.raw PROBS.raw LOGITS.raw\n");
        return 2;
    }
    if (mlp_model.arena_bytes != MLP_ARENA_BYTES || cnn_model.arena_bytes != CNN_ARENA_BYTES ||
        strcmp(mlp_model.inputs[MLP_INPUT_X_INDEX].name, "x") != 0 ||
        strcmp(cnn_model.inputs[CNN_INPUT_MFCC_INDEX].name, "mfcc") != 0) {
        fprintf(stderr, "two_models: a header and its model's table disagree\n");
        return 1;
    }
    if (!io(argv[1], x, sizeof x, 0) || !io(argv[2], mfcc, sizeof mfcc, 0)) {
        fprintf(stderr, "two_models: cannot read the inputs\n");
        return 1;
    }
    memset(mlp_arena, 0x5A, sizeof mlp_arena);
    memset(cnn_arena, 0xC3, sizeof cnn_arena);
    mlp_in[MLP_INPUT_X_INDEX] = x;
    mlp_out[MLP_OUTPUT_PROBS_INDEX] = probs;
    cnn_in[CNN_INPUT_MFCC_INDEX] = mfcc;
    cnn_out[CNN_OUTPUT_LOGITS_INDEX] = logits;
    if (mlp_run(mlp_in, mlp_out, mlp_arena, NULL) != SMELT_STATUS_OK ||
        cnn_run(cnn_in, cnn_out, cnn_arena, NULL) != SMELT_STATUS_OK) {
        fprintf(stderr, "two_models: a run failed\n");
        return 1;
    }
    if (!io(argv[3], probs, sizeof probs, 1) || !io(argv[4], logits, sizeof logits, 1)) {
        fprintf(stderr, "two_models: cannot write the outputs\n");
        return 1;
    }
    return 0;
}
