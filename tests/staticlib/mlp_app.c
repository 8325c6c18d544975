/*
 * A C program using the static library smelt makes from examples/mlp
 * (`smelt compile examples/mlp/model.onnx --dim batch=2 --emit staticlib
 * -o libmlp.a`), as a user would: only the generated header mlp.h and
 * libmlp.a, linked with the system C library.
 *
 *   mlp_app IN.raw OUT.raw
 *
 * reads the input x (MLP_INPUT_X_BYTES raw little-endian float32), checks
 * that the header's constants agree with the model's own table, runs the
 * model on two arenas at once in two threads and then once more on the
 * first arena, checks that the three outputs are identical, checks that
 * mlp_run_checked refuses each kind of bad buffer (and runs on good ones),
 * and writes the output probs raw. Exit status 0 on success, 1 with a
 * message otherwise.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

static int failed;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "mlp_app: %s\n", what);
        failed = 1;
    }
}

/* The header's constants against mlp_model, the table in the library. */
static void check_header(void) {
    static const uint64_t x_dims[] = MLP_INPUT_X_DIMS;
    static const uint64_t probs_dims[] = MLP_OUTPUT_PROBS_DIMS;
    const smelt_tensor_info *x = &mlp_model.inputs[MLP_INPUT_X_INDEX];
    const smelt_tensor_info *p = &mlp_model.outputs[MLP_OUTPUT_PROBS_INDEX];
    uint32_t i;
    check(mlp_model.abi_version == SMELT_ABI_VERSION, "abi version");
    check(mlp_model.num_inputs == MLP_NUM_INPUTS, "number of inputs");
    check(mlp_model.num_outputs == MLP_NUM_OUTPUTS, "number of outputs");
    check(mlp_model.arena_bytes == MLP_ARENA_BYTES, "arena bytes");
    check(mlp_model.arena_align == MLP_ARENA_ALIGN, "arena alignment");
    check(strcmp(x->name, "x") == 0, "input name");
    check(x->dtype == MLP_INPUT_X_DTYPE && x->dtype == SMELT_DTYPE_F32, "input dtype");
    check(x->bytes == MLP_INPUT_X_BYTES, "input bytes");
    check(MLP_INPUT_X_ELEMENTS * sizeof(float) == MLP_INPUT_X_BYTES, "input elements");
    check(x->rank == MLP_INPUT_X_RANK && sizeof x_dims / sizeof x_dims[0] == x->rank, "input rank");
    for (i = 0; i < x->rank; i++) check(x->dims[i] == x_dims[i], "input dims");
    check(strcmp(p->name, "probs") == 0, "output name");
    check(p->dtype == MLP_OUTPUT_PROBS_DTYPE && p->dtype == SMELT_DTYPE_F32, "output dtype");
    check(p->bytes == MLP_OUTPUT_PROBS_BYTES, "output bytes");
    check(p->rank == MLP_OUTPUT_PROBS_RANK && sizeof probs_dims / sizeof probs_dims[0] == p->rank,
          "output rank");
    for (i = 0; i < p->rank; i++) check(p->dims[i] == probs_dims[i], "output dims");
}

/* One run: the input, where its output goes, and its own arena. */
struct job {
    const void *x;
    void *probs;
    void *arena;
};

static void *run(void *arg) {
    struct job *j = arg;
    const void *inputs[MLP_NUM_INPUTS];
    void *outputs[MLP_NUM_OUTPUTS];
    inputs[MLP_INPUT_X_INDEX] = j->x;
    outputs[MLP_OUTPUT_PROBS_INDEX] = j->probs;
    smelt_fault fault;
    return mlp_run(inputs, outputs, j->arena, &fault) == SMELT_STATUS_OK ? NULL : j;
}

/* An arena as the header says: the size rounded up to the alignment, as
   aligned_alloc wants, and filled with garbage the model must not rely on. */
static void *arena(int fill) {
    size_t bytes = (MLP_ARENA_BYTES + MLP_ARENA_ALIGN - 1) / MLP_ARENA_ALIGN * MLP_ARENA_ALIGN;
    void *a = aligned_alloc(MLP_ARENA_ALIGN, bytes);
    if (a) memset(a, fill, bytes);
    return a;
}

/* mlp_run_checked on the buffers given (buffers: x 0, probs 1, arena 2)
   must return `want` and, for a buffer error, leave `fault` describing
   buffer `buffer` and the output untouched. */
static void expect_checked(const void *x, uint64_t x_bytes, float *probs, uint64_t probs_bytes, void *a,
                           uint64_t a_bytes, int32_t want, int64_t buffer, const char *what) {
    const void *inputs[MLP_NUM_INPUTS];
    void *outputs[MLP_NUM_OUTPUTS];
    uint64_t in_bytes[MLP_NUM_INPUTS], out_bytes[MLP_NUM_OUTPUTS];
    smelt_fault fault = {0, 0, -1, -1, -1};
    inputs[MLP_INPUT_X_INDEX] = x;
    in_bytes[MLP_INPUT_X_INDEX] = x_bytes;
    outputs[MLP_OUTPUT_PROBS_INDEX] = probs;
    out_bytes[MLP_OUTPUT_PROBS_INDEX] = probs_bytes;
    if (probs && probs != x) memset(probs, 0x7B, MLP_OUTPUT_PROBS_BYTES);
    int32_t got = mlp_run_checked(inputs, in_bytes, outputs, out_bytes, a, a_bytes, &fault);
    if (got != want) {
        fprintf(stderr, "mlp_app: %s: mlp_run_checked returned %d, not %d\n", what, (int)got, (int)want);
        failed = 1;
        return;
    }
    if (want == SMELT_STATUS_OK) return;
    check(fault.check == SMELT_FAULT_BUFFER && fault.value == buffer, what);
    if (probs && probs != x) {
        const unsigned char *b = (const unsigned char *)probs;
        for (uint64_t i = 0; i < MLP_OUTPUT_PROBS_BYTES; i++)
            if (b[i] != 0x7B) {
                fprintf(stderr, "mlp_app: %s: the output was written\n", what);
                failed = 1;
                return;
            }
    }
}

/* Every kind of bad buffer mlp_run_checked refuses, then a good call that
   must give `want`. */
static void check_checked_entry(const float *x, void *a, const float *want) {
    static float probs[MLP_OUTPUT_PROBS_ELEMENTS + 1];
    static float both[MLP_OUTPUT_PROBS_ELEMENTS + MLP_INPUT_X_ELEMENTS];
    const uint64_t xb = MLP_INPUT_X_BYTES, pb = MLP_OUTPUT_PROBS_BYTES, ab = MLP_ARENA_BYTES;
    expect_checked(NULL, xb, probs, pb, a, ab, SMELT_STATUS_NULL_BUFFER, 0, "a NULL input");
    expect_checked(x, xb - 1, probs, pb, a, ab, SMELT_STATUS_SHORT_BUFFER, 0, "a short input");
    expect_checked(x, xb, probs, pb - 4, a, ab, SMELT_STATUS_SHORT_BUFFER, 1, "a short output");
    expect_checked(x, xb, (float *)((char *)probs + 1), pb, a, ab, SMELT_STATUS_MISALIGNED_BUFFER, 1,
                   "a misaligned output");
    if (MLP_ARENA_BYTES > 0) {
        expect_checked(x, xb, probs, pb, a, ab - 1, SMELT_STATUS_SHORT_BUFFER, 2, "an arena one byte short");
        expect_checked(x, xb, probs, pb, NULL, ab, SMELT_STATUS_NULL_BUFFER, 2, "a NULL arena");
        for (int off = 1; off <= 8 && off < MLP_ARENA_ALIGN; off++)
            expect_checked(x, xb, probs, pb, (char *)a + off, ab, SMELT_STATUS_MISALIGNED_BUFFER, 2,
                           "a misaligned arena");
    }
    /* The output over the input's last bytes. */
    memcpy(both, x, MLP_INPUT_X_BYTES);
    expect_checked(both, xb, both + MLP_INPUT_X_ELEMENTS - 1, pb, a, ab, SMELT_STATUS_OVERLAPPING_BUFFERS, 1,
                   "an output overlapping the input");
    expect_checked(x, xb, probs, pb, a, ab, SMELT_STATUS_OK, 0, "good buffers");
    check(memcmp(probs, want, MLP_OUTPUT_PROBS_BYTES) == 0, "mlp_run_checked differs from mlp_run");
}

int main(int argc, char **argv) {
    static float x[MLP_INPUT_X_ELEMENTS];
    static float probs[3][MLP_OUTPUT_PROBS_ELEMENTS];
    struct job jobs[3];
    pthread_t threads[2];
    FILE *f;
    int i;

    if (argc != 3) {
        fprintf(stderr, "usage: mlp_app IN.raw OUT.raw\n");
        return 2;
    }
    check_header();
    f = fopen(argv[1], "rb");
    if (!f || fread(x, 1, MLP_INPUT_X_BYTES, f) != MLP_INPUT_X_BYTES) {
        fprintf(stderr, "mlp_app: cannot read %d bytes from %s\n", MLP_INPUT_X_BYTES, argv[1]);
        return 1;
    }
    fclose(f);

    jobs[0].arena = arena(0xAA);
    jobs[1].arena = arena(0x55);
    if (!jobs[0].arena || !jobs[1].arena) {
        fprintf(stderr, "mlp_app: out of memory\n");
        return 1;
    }
    jobs[2].arena = jobs[0].arena;
    for (i = 0; i < 3; i++) {
        jobs[i].x = x;
        jobs[i].probs = probs[i];
        memset(probs[i], 0xFF, sizeof probs[i]);
    }
    /* Two instances at once, each on its own arena... */
    for (i = 0; i < 2; i++)
        if (pthread_create(&threads[i], NULL, run, &jobs[i]) != 0) {
            fprintf(stderr, "mlp_app: cannot start a thread\n");
            return 1;
        }
    for (i = 0; i < 2; i++) {
        void *failed = NULL;
        pthread_join(threads[i], &failed);
        if (failed) {
            fprintf(stderr, "mlp_app: a run failed\n");
            return 1;
        }
    }
    /* ...and once more on a reused, re-scribbled arena. */
    memset(jobs[2].arena, 0x3C, MLP_ARENA_BYTES);
    run(&jobs[2]);
    check(memcmp(probs[0], probs[1], sizeof probs[0]) == 0, "two concurrent runs differ");
    check(memcmp(probs[0], probs[2], sizeof probs[0]) == 0, "a consecutive run differs");
    check_checked_entry(x, jobs[1].arena, probs[0]);

    f = fopen(argv[2], "wb");
    if (!f || fwrite(probs[0], 1, MLP_OUTPUT_PROBS_BYTES, f) != MLP_OUTPUT_PROBS_BYTES || fclose(f)) {
        fprintf(stderr, "mlp_app: cannot write %s\n", argv[2]);
        return 1;
    }
    free(jobs[0].arena);
    free(jobs[1].arena);
    return failed;
}
