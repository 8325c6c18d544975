/*
 * A model that drives memcpy, memmove, memset and memcmp from its input, so
 * the tests can replay the same operations on Rust slices and compare.
 *
 * Input `data` is 256 bytes; input `ops` is 256 rows of (kind, a, b, n).
 * A 256-byte working buffer in the arena starts as a copy of `data`, then
 * each row does: 0 memcpy(buf + a, data + b, n); 1 memmove(buf + a,
 * buf + b, n); 2 memset(buf + a, b, n); 3 memcmp(buf + a, data + b, n),
 * recording the sign of the result in `cmp/sign`. Output `.buf` is the final
 * buffer. (The odd output names exercise the output file-name rule.)
 * Compiled with -fno-builtin, so the calls reach the runtime.
 */
#include <stddef.h>

#include "smelt_model.h"

void *memcpy(void *, const void *, size_t);
void *memmove(void *, const void *, size_t);
void *memset(void *, int, size_t);
int memcmp(const void *, const void *, size_t);

static const uint64_t dims_data[1] = {256};
static const uint64_t dims_ops[2] = {256, 4};

static const smelt_tensor_info inputs[2] = {
    {"data", SMELT_DTYPE_U8, 1, dims_data, 256},
    {"ops", SMELT_DTYPE_I64, 2, dims_ops, 256 * 4 * 8},
};
static const smelt_tensor_info outputs[2] = {
    {".buf", SMELT_DTYPE_U8, 1, dims_data, 256},
    {"cmp/sign", SMELT_DTYPE_I32, 1, dims_data, 256 * 4},
};

const smelt_model_info smelt_model = {
    SMELT_ABI_VERSION, 2, 2, inputs, outputs, 256, 16, "memfns", 0, 64, 0, 0,
};

void smelt_model_init(void *state) { (void)state; }

int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state, smelt_fault *fault) {
    (void)fault;
    (void)state;
    const unsigned char *data = in[0];
    const int64_t *ops = in[1];
    unsigned char *buf = arena;
    int32_t *cmp = out[1];
    memcpy(buf, data, 256);
    for (int i = 0; i < 256; i++) {
        const int64_t *op = ops + 4 * i;
        size_t a = (size_t)op[1], b = (size_t)op[2], n = (size_t)op[3];
        int r = 0;
        switch (op[0]) {
        case 0: memcpy(buf + a, data + b, n); break;
        case 1: memmove(buf + a, buf + b, n); break;
        case 2: memset(buf + a, (int)b, n); break;
        case 3: r = memcmp(buf + a, data + b, n); break;
        }
        cmp[i] = (r > 0) - (r < 0);
    }
    memcpy(out[0], buf, 256);
    return SMELT_STATUS_OK;
}
