/*
 * A hand-written model implementing the smelt ABI, standing in for generated
 * code: inputs x f32[2,3] and ids i64[4]; outputs y = x * 2 + 1 (f32[2,3])
 * and z = ids reversed (i64[4]), the reversal going through the arena.
 */
#include "smelt_model.h"

static const uint64_t dims_x[2] = {2, 3};
static const uint64_t dims_ids[1] = {4};

static const smelt_tensor_info inputs[2] = {
    {"x", SMELT_DTYPE_F32, 2, dims_x, 24},
    {"ids", SMELT_DTYPE_I64, 1, dims_ids, 32},
};
static const smelt_tensor_info outputs[2] = {
    {"y", SMELT_DTYPE_F32, 2, dims_x, 24},
    {"z", SMELT_DTYPE_I64, 1, dims_ids, 32},
};

const smelt_model_info smelt_model = {
    SMELT_ABI_VERSION, 2, 2, inputs, outputs, 64, 64, "simple", 0, 64, 0, 0,
};

void smelt_model_init(void *state) { (void)state; }

int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state, smelt_fault *fault) {
    (void)fault;
    (void)state;
    const float *x = in[0];
    const int64_t *ids = in[1];
    float *y = out[0];
    int64_t *z = out[1];
    int64_t *tmp = arena;
    /* The arena must be aligned as promised; a misaligned one poisons z. */
    int aligned = ((uintptr_t)arena % 64) == 0;
    for (int i = 0; i < 6; i++) y[i] = x[i] * 2.0f + 1.0f;
    for (int i = 0; i < 4; i++) tmp[i] = ids[3 - i];
    for (int i = 0; i < 4; i++) z[i] = aligned ? tmp[i] : -1;
    return SMELT_STATUS_OK;
}
