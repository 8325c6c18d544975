/*
 * Two independent instances of the stateful accumulator (y = s + x, state
 * s <- y) from one static library: each has its own state buffer, both are
 * initialised, calls alternate between them, and every output must be the
 * instance's own step count times its own input. Prints "ok" and exits 0,
 * or names the first mismatch and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "acc.h"

static _Alignas(ACC_STATE_ALIGN) unsigned char state_a[ACC_STATE_BYTES], state_b[ACC_STATE_BYTES];
static _Alignas(ACC_ARENA_ALIGN) unsigned char arena_a[ACC_ARENA_BYTES], arena_b[ACC_ARENA_BYTES];

static int step(const char *who, const float *x, void *arena, void *state, int k) {
    float y[ACC_OUTPUT_Y_ELEMENTS];
    const void *in[ACC_NUM_INPUTS] = {x};
    void *out[ACC_NUM_OUTPUTS] = {y};
    if (acc_run(in, out, arena, state, NULL) != SMELT_STATUS_OK) {
        printf("instance %s, step %d: the run failed\n", who, k);
        return 1;
    }
    for (int i = 0; i < ACC_OUTPUT_Y_ELEMENTS; i++) {
        if (y[i] != (float)k * x[i]) {
            printf("instance %s, step %d, element %d: %g, want %g\n", who, k, i, (double)y[i],
                   (double)((float)k * x[i]));
            return 1;
        }
    }
    return 0;
}

int main(void) {
    if (acc_model.abi_version != SMELT_ABI_VERSION || acc_model.state_bytes != ACC_STATE_BYTES ||
        acc_model.state_align != ACC_STATE_ALIGN || ACC_INPUT_X_ELEMENTS != ACC_OUTPUT_Y_ELEMENTS) {
        printf("bad model table\n");
        return 1;
    }
    const float xa[ACC_INPUT_X_ELEMENTS] = {1.0f, 2.0f, -0.5f, 0.25f};
    const float xb[ACC_INPUT_X_ELEMENTS] = {10.0f, -3.0f, 0.0f, 4.0f};
    /* Garbage first: init must make the state zero. */
    memset(state_a, 0x5a, sizeof state_a);
    memset(state_b, 0xa5, sizeof state_b);
    acc_init(state_a);
    acc_init(state_b);
    int bad = 0;
    /* a: steps 1..4, b: steps 1..3, interleaved a b a b a b a. */
    for (int k = 1; k <= 4 && !bad; k++) {
        bad |= step("a", xa, arena_a, state_a, k);
        if (k <= 3 && !bad) bad |= step("b", xb, arena_b, state_b, k);
    }
    /* Re-initialising one instance restarts it and leaves the other alone. */
    if (!bad) {
        acc_init(state_b);
        bad |= step("b", xb, arena_b, state_b, 1);
        bad |= step("a", xa, arena_a, state_a, 5);
    }
    if (!bad) printf("ok\n");
    return bad;
}
