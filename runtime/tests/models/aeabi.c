/*
 * A model that runs the Arm run-time ABI helpers (runtime/c/aeabi.c) on its
 * inputs, so that the tests compare them bit for bit with Rust. Inputs a and
 * b are u64 bit patterns (doubles, or floats and halves in the low bits, or
 * integers). Double arithmetic calls the helpers directly with the integer
 * prototypes of the base calling convention (on armv7 the C operators would
 * be VFP instructions); conversions, 64-bit division and shifts are written
 * as C operators, which clang turns into the helper calls on both Arm
 * targets, through the real ABI (quotient and remainder in r0-r3).
 * Only built for 32-bit Arm.
 */
#include "smelt_model.h"

uint64_t __aeabi_dadd(uint64_t, uint64_t), __aeabi_dsub(uint64_t, uint64_t), __aeabi_dmul(uint64_t, uint64_t);
uint64_t __aeabi_ddiv(uint64_t, uint64_t), __aeabi_drsub(uint64_t, uint64_t);
int __aeabi_dcmpeq(uint64_t, uint64_t), __aeabi_dcmplt(uint64_t, uint64_t), __aeabi_dcmple(uint64_t, uint64_t);
int __aeabi_dcmpge(uint64_t, uint64_t), __aeabi_dcmpgt(uint64_t, uint64_t), __aeabi_dcmpun(uint64_t, uint64_t);
uint64_t __aeabi_f2d(uint32_t), __aeabi_l2d(int64_t), __aeabi_ul2d(uint64_t);
uint32_t __aeabi_d2f(uint64_t), __aeabi_l2f(int64_t), __aeabi_ul2f(uint64_t);
int64_t __aeabi_d2lz(uint64_t), __aeabi_f2lz(uint32_t);
uint64_t __aeabi_d2ulz(uint64_t), __aeabi_f2ulz(uint32_t);
int32_t __aeabi_d2iz(uint64_t);
uint32_t __aeabi_d2uiz(uint64_t);
uint32_t __aeabi_f2h(uint32_t), __aeabi_h2f(uint32_t), __aeabi_d2h(uint64_t);
uint32_t __aeabi_uidiv(uint32_t, uint32_t);
int32_t __aeabi_idiv(int32_t, int32_t);

#define N 4096
#define NOUT 30

static const uint64_t dims[1] = {N};

static const smelt_tensor_info inputs[2] = {
    {"a", SMELT_DTYPE_U64, 1, dims, 8 * N},
    {"b", SMELT_DTYPE_U64, 1, dims, 8 * N},
};

#define O(name) {name, SMELT_DTYPE_U64, 1, dims, 8 * N}
static const smelt_tensor_info outputs[NOUT] = {
    O("dadd"), O("dsub"), O("dmul"), O("ddiv"), O("drsub"), O("dcmp"), O("f2d"), O("d2f"),
    O("l2d"),  O("ul2d"), O("l2f"),  O("ul2f"), O("d2lz"),  O("d2ulz"), O("d2iz"), O("d2uiz"),
    O("f2lz"), O("f2ulz"), O("udiv"), O("umod"), O("sdiv"), O("smod"), O("uidiv"), O("idiv"),
    O("llsl"), O("llsr"), O("lasr"), O("f2h"),  O("h2f"),   O("d2h"),
};

const smelt_model_info smelt_model = {
    SMELT_ABI_VERSION, 2, NOUT, inputs, outputs, 0, 1, "aeabi", 0, 64, 0, 0,
};

void smelt_model_init(void *state) { (void)state; }

int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state, smelt_fault *fault) {
    (void)fault;
    (void)state;
    (void)arena;
    const uint64_t *a = in[0], *b = in[1];
    uint64_t *const *o = (uint64_t *const *)out;
    for (int i = 0; i < N; i++) {
        uint64_t x = a[i], y = b[i];
        uint32_t xf = (uint32_t)x;
        o[0][i] = __aeabi_dadd(x, y);
        o[1][i] = __aeabi_dsub(x, y);
        o[2][i] = __aeabi_dmul(x, y);
        o[3][i] = __aeabi_ddiv(x, y);
        o[4][i] = __aeabi_drsub(x, y);
        o[5][i] = (uint64_t)(__aeabi_dcmpeq(x, y) | __aeabi_dcmplt(x, y) << 1 | __aeabi_dcmple(x, y) << 2 |
                             __aeabi_dcmpge(x, y) << 3 | __aeabi_dcmpgt(x, y) << 4 | __aeabi_dcmpun(x, y) << 5);
        o[6][i] = __aeabi_f2d(xf);
        o[7][i] = __aeabi_d2f(x);
        o[8][i] = __aeabi_l2d((int64_t)x);
        o[9][i] = __aeabi_ul2d(x);
        o[10][i] = __aeabi_l2f((int64_t)x);
        o[11][i] = __aeabi_ul2f(x);
        o[12][i] = (uint64_t)__aeabi_d2lz(x);
        o[13][i] = __aeabi_d2ulz(x);
        o[14][i] = (uint64_t)(int64_t)__aeabi_d2iz(x);
        o[15][i] = __aeabi_d2uiz(x);
        o[16][i] = (uint64_t)__aeabi_f2lz(xf);
        o[17][i] = __aeabi_f2ulz(xf);
        /* C operators: __aeabi_uldivmod / __aeabi_ldivmod / 64-bit shifts. */
        o[18][i] = y ? x / y : 0;
        o[19][i] = y ? x % y : 0;
        o[20][i] = y ? (uint64_t)((int64_t)x / (int64_t)y) : 0;
        o[21][i] = y ? (uint64_t)((int64_t)x % (int64_t)y) : 0;
        o[22][i] = __aeabi_uidiv((uint32_t)x, (uint32_t)y);
        o[23][i] = (uint64_t)(int64_t)__aeabi_idiv((int32_t)x, (int32_t)y);
        unsigned s = (unsigned)(y & 63);
        o[24][i] = x << s;
        o[25][i] = x >> s;
        o[26][i] = (uint64_t)((int64_t)x >> s);
        o[27][i] = __aeabi_f2h(xf);
        o[28][i] = __aeabi_h2f((uint32_t)(x & 0xffff));
        o[29][i] = __aeabi_d2h(x);
    }
    return SMELT_STATUS_OK;
}
