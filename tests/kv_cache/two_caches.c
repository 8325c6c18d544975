/*
 * Two independent instances of the decode graph of tests/kv_cache.rs (two
 * KV caches as persistent state, written at the run-time position `pos`)
 * from one static library. Each instance first runs STEPS steps alone (pos
 * 0, 1, ...) and its outputs are recorded; then both are re-initialised and
 * run interleaved, b two steps behind a, and every output must equal the
 * instance's own recorded one bit for bit: a shared or clobbered cache would
 * change them. The outputs must also change from step to step (they depend
 * on the cache). Prints each instance's last output ("a: v v ...", "b: ...",
 * for the Rust test to compare with the interpreter), then "ok"; exits 1
 * naming the first mismatch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define STEPS 6
#define N_IN KV_INPUT_Q_ELEMENTS
#define N_OUT KV_OUTPUT_OUT_ELEMENTS

static _Alignas(KV_STATE_ALIGN) unsigned char state[2][KV_STATE_BYTES];
static _Alignas(KV_ARENA_ALIGN) unsigned char arena[2][KV_ARENA_BYTES];
static float q[2][N_IN], xk[2][N_IN], xv[2][N_IN];
static float ref[2][STEPS][N_OUT];

/* The inputs of tests/kv_cache.rs's `inputs(h, d, seed)`. */
static void fill(int who, float seed) {
    for (int j = 0; j < N_IN; j++) {
        q[who][j] = sinf((float)j * 0.37f + 0.0f + seed) * 0.25f;
        xk[who][j] = sinf((float)j * 0.37f + 1.0f + seed) * 0.25f;
        xv[who][j] = sinf((float)j * 0.37f + 2.0f + seed) * 0.25f;
    }
}

/* One step of instance `who` at position `pos` into `y`. */
static void step(int who, int64_t pos, float *y) {
    const void *in[KV_NUM_INPUTS] = {q[who], xk[who], xv[who], &pos};
    void *out[KV_NUM_OUTPUTS] = {y};
    smelt_fault fault;
    if (kv_run(in, out, arena[who], state[who], &fault) != SMELT_STATUS_OK) {
        printf("instance %c: position %lld refused\n", 'a' + who, (long long)fault.value);
        exit(1);
    }
}

static int check(int who, int k) {
    float y[N_OUT];
    step(who, k, y);
    if (memcmp(y, ref[who][k], sizeof y)) {
        printf("instance %c, step %d: differs from its run alone\n", 'a' + who, k);
        return 1;
    }
    return 0;
}

int main(void) {
    if (kv_model.abi_version != SMELT_ABI_VERSION || kv_model.state_bytes != KV_STATE_BYTES ||
        KV_NUM_INPUTS != 4 || KV_NUM_OUTPUTS != 1) {
        printf("bad model table\n");
        return 1;
    }
    fill(0, 0.0f);
    fill(1, 1.0f);
    for (int who = 0; who < 2; who++) {
        memset(state[who], 0x5a, sizeof state[who]); /* garbage: init must clear it */
        kv_init(state[who]);
        for (int k = 0; k < STEPS; k++) step(who, k, ref[who][k]);
        if (!memcmp(ref[who][STEPS - 1], ref[who][STEPS - 2], sizeof ref[who][0])) {
            printf("instance %c: the output does not change with the cache\n", 'a' + who);
            return 1;
        }
    }
    kv_init(state[0]);
    kv_init(state[1]);
    int bad = 0;
    /* a b a b ... with b two steps behind. */
    for (int k = 0; k < STEPS + 2 && !bad; k++) {
        if (k < STEPS) bad |= check(0, k);
        if (k >= 2 && !bad) bad |= check(1, k - 2);
    }
    if (bad) return 1;
    for (int who = 0; who < 2; who++) {
        printf("%c:", 'a' + who);
        for (int j = 0; j < N_OUT; j++) printf(" %.9g", (double)ref[who][STEPS - 1][j]);
        printf("\n");
    }
    printf("ok\n");
    return 0;
}
