/*
 * A hand-written model standing in for code compiled with --threads 3: the
 * input x f32[4096] becomes y = x * 2 + 1 in a smelt_parallel_for loop, and
 * `stacks` (u64[3]) records, per chunk, the address of a local variable of
 * the call that ran it (0 for a chunk no call started at), so the test can
 * tell that chunks ran on different threads' stacks. Chunks go to whichever
 * thread claims them first, so the first call of a split job waits (a
 * bounded while) until a second call has started: on a loaded machine a new
 * worker may take milliseconds to be scheduled, and the calling thread
 * would otherwise run every chunk itself.
 */
#include "smelt_model.h"

#define N 4096

void smelt_parallel_for(void (*task)(void *, int64_t, int64_t), void *ctx, int64_t n, int64_t threads);

static const uint64_t dims_x[1] = {N};
static const uint64_t dims_s[1] = {3};

static const smelt_tensor_info inputs[1] = {{"x", SMELT_DTYPE_F32, 1, dims_x, N * 4}};
static const smelt_tensor_info outputs[2] = {
    {"y", SMELT_DTYPE_F32, 1, dims_x, N * 4},
    {"stacks", SMELT_DTYPE_U64, 1, dims_s, 24},
};

const smelt_model_info smelt_model = {
    SMELT_ABI_VERSION, 1, 2, inputs, outputs, 0, 64, "parallel", 0, 64, 0, 0,
};

struct job {
    const float *x;
    float *y;
    uint64_t *stacks;
};

static int calls; /* calls of the current job that have started */

static void task(void *ctx, int64_t lo, int64_t hi) {
    struct job *j = ctx;
    volatile int here = 0;
    int me = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (me == 1 && hi - lo < N)
        for (long spin = 0; spin < 400000000L && __atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 2; spin++) {
        }
    for (int64_t i = lo; i < hi; i++) j->y[i] = j->x[i] * 2.0f + 1.0f;
    /* Chunk k of 3 starts at N*k/3: k = ceil(3*lo/N). */
    j->stacks[(3 * lo + N - 1) / N] = (uint64_t)(uintptr_t)&here;
}

void smelt_model_init(void *state) { (void)state; }

int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state, smelt_fault *fault) {
    (void)fault;
    (void)state;
    (void)arena;
    struct job j = {in[0], out[0], out[1]};
    for (int k = 0; k < 3; k++) j.stacks[k] = 0;
    __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
    smelt_parallel_for(task, &j, N, 3);
    return SMELT_STATUS_OK;
}
