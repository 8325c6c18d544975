/*
 * A C program using any one static library smelt makes, through its
 * description table: compiled with
 *
 *   -DMODEL_H='"cnn.h"' -DNAME=cnn -DUPPER=CNN
 *
 * for `smelt compile ... --emit staticlib -o libcnn.a` (symbols cnn_model and
 * cnn_run, macros CNN_*).
 *
 *   model_app IN0.raw ... OUT0.raw ...
 *
 * reads one raw little-endian file per input (in the model's input order,
 * each exactly that input's bytes), runs the model once on an arena filled
 * with garbage, and writes each output raw. Exit status 0 on success, 1 with
 * a message otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_H

#define PROG "model_app"
#include "app_common.h"

int main(int argc, char **argv) {
    const void *inputs[CAT(UPPER, _NUM_INPUTS)];
    void *outputs[CAT(UPPER, _NUM_OUTPUTS)];
    uint32_t i, nin = MODEL.num_inputs, nout = MODEL.num_outputs;
    size_t arena_bytes;
    void *arena;

    if (MODEL.abi_version != SMELT_ABI_VERSION || nin != CAT(UPPER, _NUM_INPUTS) ||
        nout != CAT(UPPER, _NUM_OUTPUTS) || MODEL.arena_bytes != CAT(UPPER, _ARENA_BYTES) ||
        MODEL.arena_align != CAT(UPPER, _ARENA_ALIGN)) {
        fprintf(stderr, "model_app: the header and the model's table disagree\n");
        return 1;
    }
    if ((uint32_t)argc != 1 + nin + nout) {
        fprintf(stderr, "usage: model_app IN0.raw ... OUT0.raw ... (%u inputs, %u outputs)\n",
                nin, nout);
        return 2;
    }
    for (i = 0; i < nin; i++) inputs[i] = read_file(argv[1 + i], MODEL.inputs[i].bytes);
    for (i = 0; i < nout; i++) {
        outputs[i] = malloc(MODEL.outputs[i].bytes ? MODEL.outputs[i].bytes : 1);
        if (!outputs[i]) return 1;
        memset(outputs[i], 0xFF, MODEL.outputs[i].bytes);
    }
    arena_bytes = (MODEL.arena_bytes + MODEL.arena_align - 1) / MODEL.arena_align * MODEL.arena_align;
    arena = aligned_alloc(MODEL.arena_align, arena_bytes ? arena_bytes : MODEL.arena_align);
    if (!arena) return 1;
    memset(arena, 0xA5, arena_bytes);
    if (RUN(inputs, outputs, arena, NULL) != SMELT_STATUS_OK) {
        fprintf(stderr, "model_app: the run failed a check\n");
        return 1;
    }
    for (i = 0; i < nout; i++) {
        const char *path = argv[1 + nin + i];
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(outputs[i], 1, MODEL.outputs[i].bytes, f) != MODEL.outputs[i].bytes ||
            fclose(f)) {
            fprintf(stderr, "model_app: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}
