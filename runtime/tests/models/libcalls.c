/*
 * A model that applies every float libcall the runtime provides to its
 * inputs, element by element, so the tests can compare the runtime's
 * results bit for bit with Rust's. Compiled with -fno-builtin, so each call
 * really reaches the runtime's function rather than an inlined instruction.
 */
#include "smelt_model.h"

float floorf(float), ceilf(float), truncf(float), rintf(float), nearbyintf(float), sqrtf(float);
float fmaf(float, float, float);
double floor(double), ceil(double), trunc(double), rint(double), nearbyint(double), sqrt(double);
double fma(double, double, double);

#define N 4096

static const uint64_t dims[1] = {N};

static const smelt_tensor_info inputs[6] = {
    {"a", SMELT_DTYPE_F32, 1, dims, 4 * N},  {"b", SMELT_DTYPE_F32, 1, dims, 4 * N},
    {"c", SMELT_DTYPE_F32, 1, dims, 4 * N},  {"da", SMELT_DTYPE_F64, 1, dims, 8 * N},
    {"db", SMELT_DTYPE_F64, 1, dims, 8 * N}, {"dc", SMELT_DTYPE_F64, 1, dims, 8 * N},
};
static const smelt_tensor_info outputs[14] = {
    {"floorf", SMELT_DTYPE_F32, 1, dims, 4 * N}, {"ceilf", SMELT_DTYPE_F32, 1, dims, 4 * N},
    {"truncf", SMELT_DTYPE_F32, 1, dims, 4 * N}, {"rintf", SMELT_DTYPE_F32, 1, dims, 4 * N},
    {"nearbyintf", SMELT_DTYPE_F32, 1, dims, 4 * N}, {"sqrtf", SMELT_DTYPE_F32, 1, dims, 4 * N},
    {"fmaf", SMELT_DTYPE_F32, 1, dims, 4 * N},   {"floor", SMELT_DTYPE_F64, 1, dims, 8 * N},
    {"ceil", SMELT_DTYPE_F64, 1, dims, 8 * N},   {"trunc", SMELT_DTYPE_F64, 1, dims, 8 * N},
    {"rint", SMELT_DTYPE_F64, 1, dims, 8 * N},   {"nearbyint", SMELT_DTYPE_F64, 1, dims, 8 * N},
    {"sqrt", SMELT_DTYPE_F64, 1, dims, 8 * N},   {"fma", SMELT_DTYPE_F64, 1, dims, 8 * N},
};

const smelt_model_info smelt_model = {
    SMELT_ABI_VERSION, 6, 14, inputs, outputs, 0, 1, "libcalls", 0, 64, 0, 0,
};

void smelt_model_init(void *state) { (void)state; }

int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state, smelt_fault *fault) {
    (void)fault;
    (void)state;
    (void)arena;
    const float *a = in[0], *b = in[1], *c = in[2];
    const double *da = in[3], *db = in[4], *dc = in[5];
    float *const *o = (float *const *)out;
    double *const *d = (double *const *)out;
    for (int i = 0; i < N; i++) {
        o[0][i] = floorf(a[i]);
        o[1][i] = ceilf(a[i]);
        o[2][i] = truncf(a[i]);
        o[3][i] = rintf(a[i]);
        o[4][i] = nearbyintf(a[i]);
        o[5][i] = sqrtf(a[i]);
        o[6][i] = fmaf(a[i], b[i], c[i]);
        d[7][i] = floor(da[i]);
        d[8][i] = ceil(da[i]);
        d[9][i] = trunc(da[i]);
        d[10][i] = rint(da[i]);
        d[11][i] = nearbyint(da[i]);
        d[12][i] = sqrt(da[i]);
        d[13][i] = fma(da[i], db[i], dc[i]);
    }
    return SMELT_STATUS_OK;
}
