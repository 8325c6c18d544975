/*
 * The Arm run-time ABI helpers (RTABI, the `__aeabi_*` functions) that clang
 * and LLVM call on 32-bit Arm for what the instruction set lacks: block
 * memory operations with their own argument order, 32-bit division (ARMv7-A
 * without the division extension), 64-bit division, shifts and int64/float
 * conversions, half-precision conversions, and, on the Cortex-M4F whose FPU
 * is single precision only, every double-precision operation (add, sub, mul,
 * div, compare, conversions).
 *
 * Every helper works on bit patterns with integer arithmetic only, so that
 * none of them calls another helper (a double operation here would recurse
 * into __aeabi_dadd on the M4), and so that their C signatures give exactly
 * the base (soft-float) calling convention the RTABI prescribes even when the
 * rest of the code uses the hard-float one: floats travel in r0, doubles and
 * 64-bit integers in r0:r1 and r2:r3. All are correctly rounded (round to
 * nearest, ties to even) for every input; float-to-integer conversions
 * truncate and saturate, NaN giving 0 (what AArch64's fcvtzs does). Division
 * by zero gives quotient 0 (what the hardware udiv/sdiv instructions give)
 * instead of calling __aeabi_idiv0.
 *
 * Included by runtime.c (plain global definitions) and by libcalls.c, which
 * first defines AEABI_WEAK so that every function is weak and hidden there.
 * Only built for 32-bit Arm.
 */

#ifndef AEABI_WEAK
#define AEABI_WEAK
#define AEABI_ASM_LINKAGE(name) ".globl " name "\n"
#endif

#define AEABI AEABI_WEAK __attribute__((used))

/* ---- Memory ----------------------------------------------------------- */

AEABI void __aeabi_memcpy(void *d, const void *s, size_t n) { memcpy(d, s, n); }
AEABI void __aeabi_memcpy4(void *d, const void *s, size_t n) { memcpy(d, s, n); }
AEABI void __aeabi_memcpy8(void *d, const void *s, size_t n) { memcpy(d, s, n); }
AEABI void __aeabi_memmove(void *d, const void *s, size_t n) { memmove(d, s, n); }
AEABI void __aeabi_memmove4(void *d, const void *s, size_t n) { memmove(d, s, n); }
AEABI void __aeabi_memmove8(void *d, const void *s, size_t n) { memmove(d, s, n); }
/* Note the order: destination, count, value. */
AEABI void __aeabi_memset(void *d, size_t n, int c) { memset(d, c, n); }
AEABI void __aeabi_memset4(void *d, size_t n, int c) { memset(d, c, n); }
AEABI void __aeabi_memset8(void *d, size_t n, int c) { memset(d, c, n); }
AEABI void __aeabi_memclr(void *d, size_t n) { memset(d, 0, n); }
AEABI void __aeabi_memclr4(void *d, size_t n) { memset(d, 0, n); }
AEABI void __aeabi_memclr8(void *d, size_t n) { memset(d, 0, n); }

/* ---- Integer division --------------------------------------------------- */

static inline int clz32(uint32_t x) { return x ? __builtin_clz(x) : 32; }
static inline int clz64(uint64_t x) { return x ? __builtin_clzll(x) : 64; }

/* Shift-and-subtract from the highest quotient bit down; no '/' or '%' (they
   would call the very helpers defined here). One body for both widths:
   T is the unsigned type, CLZ its leading-zero count. */
#define UDIVMOD_BODY(T, CLZ)                                                                       \
    if (d == 0) {                                                                                  \
        *rem = n;                                                                                  \
        return 0;                                                                                  \
    }                                                                                              \
    T q = 0, r = n;                                                                                \
    if (r >= d) {                                                                                  \
        int shift = CLZ(d) - CLZ(r);                                                               \
        T dd = d << shift;                                                                         \
        for (int i = 0; i <= shift; i++, dd >>= 1) {                                               \
            q <<= 1;                                                                               \
            if (r >= dd) r -= dd, q |= 1;                                                          \
        }                                                                                          \
    }                                                                                              \
    *rem = r;                                                                                      \
    return q;

static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t *rem) { UDIVMOD_BODY(uint32_t, clz32) }

AEABI_WEAK __attribute__((used, visibility("hidden"))) uint64_t smelt__udivmod64(uint64_t n, uint64_t d,
                                                                               uint64_t *rem) {
    UDIVMOD_BODY(uint64_t, clz64)
}

/* Truncating signed division; the remainder has the dividend's sign. */
AEABI_WEAK __attribute__((used, visibility("hidden"))) int64_t smelt__sdivmod64(int64_t n, int64_t d,
                                                                              int64_t *rem) {
    uint64_t un = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    uint64_t ud = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;
    uint64_t ur;
    uint64_t uq = smelt__udivmod64(un, ud, &ur);
    *rem = (int64_t)(n < 0 ? 0 - ur : ur);
    return (int64_t)((n < 0) != (d < 0) ? 0 - uq : uq);
}

AEABI uint32_t __aeabi_uidiv(uint32_t n, uint32_t d) {
    uint32_t r;
    return udivmod32(n, d, &r);
}

/* {quotient, remainder} in r0, r1: a 64-bit return value, low word first. */
AEABI uint64_t __aeabi_uidivmod(uint32_t n, uint32_t d) {
    uint32_t r;
    uint32_t q = udivmod32(n, d, &r);
    return (uint64_t)r << 32 | q;
}

static uint32_t sdivmod32(int32_t n, int32_t d, uint32_t *rem) {
    uint32_t un = n < 0 ? 0 - (uint32_t)n : (uint32_t)n;
    uint32_t ud = d < 0 ? 0 - (uint32_t)d : (uint32_t)d;
    uint32_t ur;
    uint32_t uq = udivmod32(un, ud, &ur);
    *rem = n < 0 ? 0 - ur : ur;
    return (n < 0) != (d < 0) ? 0 - uq : uq;
}

AEABI int32_t __aeabi_idiv(int32_t n, int32_t d) {
    uint32_t r;
    return (int32_t)sdivmod32(n, d, &r);
}

AEABI uint64_t __aeabi_idivmod(int32_t n, int32_t d) {
    uint32_t r;
    uint32_t q = sdivmod32(n, d, &r);
    return (uint64_t)r << 32 | q;
}

/* __aeabi_uldivmod and __aeabi_ldivmod return the quotient in r0:r1 and the
   remainder in r2:r3, which C cannot express: call the C function with a
   pointer to a stack slot for the remainder, then load it into r2:r3. */
#if defined(__thumb__)
#define AEABI_ASM_MODE ".thumb\n.thumb_func\n"
#else
#define AEABI_ASM_MODE ".arm\n"
#endif
#define AEABI_DIVMOD64(name, impl)                                                                                 \
    __asm__(".section .text." name ",\"ax\",%progbits\n"                                                          \
            ".syntax unified\n" AEABI_ASM_LINKAGE(name) ".type " name ",%function\n" AEABI_ASM_MODE name ":\n"     \
            "    push {r11, lr}\n"                                                                                 \
            "    sub sp, sp, #16\n"                                                                                \
            "    add r12, sp, #8\n"                                                                                \
            "    str r12, [sp]\n"                                                                                  \
            "    bl " impl "\n"                                                                                    \
            "    ldr r2, [sp, #8]\n"                                                                               \
            "    ldr r3, [sp, #12]\n"                                                                              \
            "    add sp, sp, #16\n"                                                                                \
            "    pop {r11, pc}\n"                                                                                  \
            ".size " name ", .-" name "\n"                                                                         \
            ".text\n")
AEABI_DIVMOD64("__aeabi_uldivmod", "smelt__udivmod64");
AEABI_DIVMOD64("__aeabi_ldivmod", "smelt__sdivmod64");

/* ---- 64-bit shifts and multiplication ------------------------------------ */

AEABI uint64_t __aeabi_llsl(uint64_t x, int n) { return n >= 64 ? 0 : x << n; }
AEABI uint64_t __aeabi_llsr(uint64_t x, int n) { return n >= 64 ? 0 : x >> n; }
AEABI int64_t __aeabi_lasr(int64_t x, int n) { return x >> (n >= 64 ? 63 : n); }
AEABI uint64_t __aeabi_lmul(uint64_t a, uint64_t b) { return a * b; }

/* ---- Doubles on bit patterns ------------------------------------------- */

#define D_SIGN 0x8000000000000000ULL
#define D_INF 0x7ff0000000000000ULL
#define D_QNAN 0x7ff8000000000000ULL
#define D_FRAC 0x000fffffffffffffULL
#define D_IMPLICIT 0x0010000000000000ULL
#define F_SIGN 0x80000000u
#define F_INF 0x7f800000u
#define F_QNAN 0x7fc00000u
#define F_FRAC 0x007fffffu

/* The body of the round-and-pack functions below: `sig` (of the unsigned
   type T, BITS wide) has its leading bit at FRAC + 3 (FRAC fraction bits,
   then guard, round and sticky bits) and `exp` is the biased exponent that
   leading bit stands for, EXP_MAX (all ones) meaning infinity. Subnormal
   results shift right keeping the sticky bit; ties go to even, and a carry
   out of the fraction bumps the exponent, to infinity at most. */
#define ROUND_PACK_BODY(T, BITS, EXP_MAX, FRAC)                                                     \
    if (exp >= EXP_MAX) return sign | (T)(EXP_MAX) << FRAC;                                        \
    if (exp <= 0) {                                                                                \
        int sh = 1 - exp;                                                                          \
        sig = sh > (BITS)-1 ? sig != 0 : sig >> sh | ((sig << ((BITS)-sh)) != 0);                  \
        exp = 0;                                                                                   \
    }                                                                                              \
    T r = sign | (T)exp << FRAC | (sig >> 3 & (((T)1 << FRAC) - 1));                               \
    unsigned rgs = (unsigned)(sig & 7);                                                            \
    if (rgs > 4 || (rgs == 4 && (r & 1))) r++;                                                     \
    return r;

/* Rounds and packs `sig * 2^(exp - 1078)`, where `sig` has its leading bit
   at bit 55 (52 fraction bits, then guard, round and sticky bits) and `exp`
   is the biased exponent that leading bit stands for. */
static uint64_t d_round_pack(uint64_t sign, int exp, uint64_t sig) { ROUND_PACK_BODY(uint64_t, 64, 0x7ff, 52) }

/* The same for floats: leading bit at 26, value sig * 2^(exp - 153). */
static uint32_t f_round_pack(uint32_t sign, int exp, uint32_t sig) { ROUND_PACK_BODY(uint32_t, 32, 0xff, 23) }

/* Splits a finite nonzero double into a significand with its leading bit at
   52 and the biased exponent of that bit (below 1 for subnormals). */
static uint64_t d_unpack(uint64_t a, int *exp) {
    int e = (int)(a >> 52 & 0x7ff);
    uint64_t sig = a & D_FRAC;
    if (e) {
        *exp = e;
        return sig | D_IMPLICIT;
    }
    int shift = clz64(sig) - 11;
    *exp = 1 - shift;
    return sig << shift;
}

AEABI uint64_t __aeabi_dadd(uint64_t a, uint64_t b) {
    uint64_t aabs = a & ~D_SIGN, babs = b & ~D_SIGN;
    if (aabs - 1 >= D_INF - 1 || babs - 1 >= D_INF - 1) { /* a zero, infinity or NaN */
        if (aabs > D_INF) return a | D_QNAN;
        if (babs > D_INF) return b | D_QNAN;
        if (aabs == D_INF) return (a ^ b) == D_SIGN ? D_QNAN : a;
        if (babs == D_INF) return b;
        if (!aabs) return babs ? b : a & b; /* -0 + -0 = -0, else +0 */
        return a;
    }
    if (babs > aabs) {
        uint64_t t = a;
        a = b, b = t;
    }
    int aexp, bexp;
    uint64_t asig = d_unpack(a, &aexp) << 3, bsig = d_unpack(b, &bexp) << 3;
    uint64_t sign = a & D_SIGN;
    int align = aexp - bexp;
    if (align) bsig = align < 64 ? bsig >> align | ((bsig << (64 - align)) != 0) : 1;
    if ((a ^ b) & D_SIGN) {
        asig -= bsig;
        if (!asig) return 0; /* x - x = +0 */
        int shift = clz64(asig) - clz64(D_IMPLICIT << 3);
        if (shift > 0) asig <<= shift, aexp -= shift;
    } else {
        asig += bsig;
        if (asig & D_IMPLICIT << 4) {
            asig = asig >> 1 | (asig & 1);
            aexp++;
        }
    }
    return d_round_pack(sign, aexp, asig);
}

AEABI uint64_t __aeabi_dsub(uint64_t a, uint64_t b) { return __aeabi_dadd(a, b ^ D_SIGN); }
AEABI uint64_t __aeabi_drsub(uint64_t a, uint64_t b) { return __aeabi_dadd(b, a ^ D_SIGN); }

/* The 128-bit product of two 64-bit numbers. */
static void mul64x64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    *lo = (uint32_t)p00 | mid << 32;
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* NaN, infinity and zero operands of mul and div. Returns 1 with *r set when
   the result is decided. */
static int d_special_muldiv(uint64_t a, uint64_t b, int div, uint64_t *r) {
    uint64_t aabs = a & ~D_SIGN, babs = b & ~D_SIGN, sign = (a ^ b) & D_SIGN;
    if (aabs > D_INF) return *r = a | D_QNAN, 1;
    if (babs > D_INF) return *r = b | D_QNAN, 1;
    if (!div) {
        if (aabs == D_INF || babs == D_INF) return *r = (aabs && babs) ? sign | D_INF : D_QNAN, 1;
        if (!aabs || !babs) return *r = sign, 1;
        return 0;
    }
    if (aabs == D_INF) return *r = babs == D_INF ? D_QNAN : sign | D_INF, 1;
    if (babs == D_INF) return *r = sign, 1;
    if (!babs) return *r = aabs ? sign | D_INF : D_QNAN, 1;
    if (!aabs) return *r = sign, 1;
    return 0;
}

AEABI uint64_t __aeabi_dmul(uint64_t a, uint64_t b) {
    uint64_t r;
    if (d_special_muldiv(a, b, 0, &r)) return r;
    int aexp, bexp;
    uint64_t asig = d_unpack(a, &aexp), bsig = d_unpack(b, &bexp);
    uint64_t hi, lo;
    /* Leading bits at 63 and 55: the product's is at 118 or 119, so at 54 or
       55 of the high word. */
    mul64x64(asig << 11, bsig << 3, &hi, &lo);
    int exp = aexp + bexp - 1022;
    if (!(hi & 1ULL << 55)) {
        hi = hi << 1 | lo >> 63;
        lo <<= 1;
        exp--;
    }
    return d_round_pack((a ^ b) & D_SIGN, exp, hi | (lo != 0));
}

AEABI uint64_t __aeabi_ddiv(uint64_t a, uint64_t b) {
    uint64_t r;
    if (d_special_muldiv(a, b, 1, &r)) return r;
    int aexp, bexp;
    uint64_t asig = d_unpack(a, &aexp), bsig = d_unpack(b, &bexp);
    int exp = aexp - bexp + 1023;
    if (asig < bsig) asig <<= 1, exp--;
    /* 56 quotient bits, the first one set, then the remainder as sticky. */
    uint64_t q = 0, rem = asig;
    for (int i = 0; i < 56; i++) {
        q <<= 1;
        if (rem >= bsig) rem -= bsig, q |= 1;
        rem <<= 1;
    }
    return d_round_pack((a ^ b) & D_SIGN, exp, q | (rem != 0));
}

/* -1, 0, 1 for less, equal, greater; 2 when unordered. */
static int d_cmp(uint64_t a, uint64_t b) {
    uint64_t aabs = a & ~D_SIGN, babs = b & ~D_SIGN;
    if (aabs > D_INF || babs > D_INF) return 2;
    if ((aabs | babs) == 0 || a == b) return 0;
    int64_t ai = (int64_t)a, bi = (int64_t)b;
    if ((ai & bi) >= 0) return ai < bi ? -1 : 1; /* not both negative */
    return ai > bi ? -1 : 1;
}

AEABI int __aeabi_dcmpeq(uint64_t a, uint64_t b) { return d_cmp(a, b) == 0; }
AEABI int __aeabi_dcmplt(uint64_t a, uint64_t b) { return d_cmp(a, b) == -1; }
AEABI int __aeabi_dcmple(uint64_t a, uint64_t b) {
    int c = d_cmp(a, b);
    return c == -1 || c == 0;
}
AEABI int __aeabi_dcmpge(uint64_t a, uint64_t b) {
    int c = d_cmp(a, b);
    return c == 1 || c == 0;
}
AEABI int __aeabi_dcmpgt(uint64_t a, uint64_t b) { return d_cmp(a, b) == 1; }
AEABI int __aeabi_dcmpun(uint64_t a, uint64_t b) { return d_cmp(a, b) == 2; }

/* ---- Conversions --------------------------------------------------------- */

AEABI uint64_t __aeabi_f2d(uint32_t f) {
    uint64_t sign = (uint64_t)(f & F_SIGN) << 32;
    uint32_t e = f >> 23 & 0xff, frac = f & F_FRAC;
    if (e == 0xff) return sign | (frac ? D_QNAN | (uint64_t)frac << 29 : D_INF);
    if (e == 0) {
        if (!frac) return sign;
        int shift = clz32(frac) - 8;
        frac = (frac << shift) & F_FRAC;
        return sign | (uint64_t)(1 - shift - 127 + 1023) << 52 | (uint64_t)frac << 29;
    }
    return sign | (uint64_t)(e - 127 + 1023) << 52 | (uint64_t)frac << 29;
}

AEABI uint32_t __aeabi_d2f(uint64_t d) {
    uint32_t sign = (uint32_t)(d >> 32) & F_SIGN;
    uint64_t abs = d & ~D_SIGN;
    if (abs > D_INF) return sign | F_QNAN | (uint32_t)((abs & D_FRAC) >> 29);
    if (abs == D_INF) return sign | F_INF;
    if (!abs) return sign;
    int exp;
    uint64_t sig = d_unpack(d, &exp); /* leading bit at 52 */
    uint32_t s = (uint32_t)(sig >> 26) | ((sig & ((1u << 26) - 1)) != 0);
    return f_round_pack(sign, exp - 1023 + 127, s);
}

/* An unsigned integer to a double: exact up to 2^53, rounded above. */
static uint64_t u64_to_d(uint64_t a) {
    if (!a) return 0;
    int n = clz64(a);
    uint64_t sig = a << n; /* leading bit at 63 */
    return d_round_pack(0, 1086 - n, sig >> 8 | ((sig & 0xff) != 0));
}

static uint32_t u64_to_f(uint64_t a) {
    if (!a) return 0;
    int n = clz64(a);
    uint64_t sig = a << n;
    uint32_t s = (uint32_t)(sig >> 37) | ((sig & ((1ULL << 37) - 1)) != 0);
    return f_round_pack(0, 190 - n, s);
}

AEABI uint64_t __aeabi_ul2d(uint64_t a) { return u64_to_d(a); }
AEABI uint64_t __aeabi_l2d(int64_t a) {
    return a < 0 ? D_SIGN | u64_to_d(0 - (uint64_t)a) : u64_to_d((uint64_t)a);
}
AEABI uint64_t __aeabi_ui2d(uint32_t a) { return u64_to_d(a); }
AEABI uint64_t __aeabi_i2d(int32_t a) { return __aeabi_l2d(a); }
AEABI uint32_t __aeabi_ul2f(uint64_t a) { return u64_to_f(a); }
AEABI uint32_t __aeabi_l2f(int64_t a) {
    return a < 0 ? F_SIGN | u64_to_f(0 - (uint64_t)a) : u64_to_f((uint64_t)a);
}

/* Truncation of `sig * 2^(e - 52)` (e unbiased, sig < 2^53) to an integer of
   `bits` value bits, saturating at 2^bits - 1. */
static uint64_t trunc_mag(uint64_t sig, int e, int bits) {
    if (e < 0) return 0;
    if (e >= bits) return bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    return e >= 52 ? sig << (e - 52) : sig >> (52 - e);
}

/* A double to an integer of `bits` value bits, signed or not; saturating,
   NaN gives 0. */
static int64_t d_to_int(uint64_t d, int is_signed, int bits) {
    uint64_t abs = d & ~D_SIGN;
    if (abs > D_INF || !abs) return 0;
    int neg = (d & D_SIGN) != 0;
    uint64_t sig = (abs & D_FRAC) | (abs >> 52 ? D_IMPLICIT : 0);
    int e = (int)(abs >> 52) - 1023;
    if (!is_signed) return neg ? 0 : (int64_t)trunc_mag(sig, e, bits);
    /* The magnitude may reach 2^(bits-1) when negative: -2^(bits-1) fits. */
    uint64_t m = trunc_mag(sig, e, bits);
    uint64_t lim = 1ULL << (bits - 1);
    if (neg) return m >= lim ? (int64_t)(0 - lim) : -(int64_t)m;
    return m >= lim ? (int64_t)(lim - 1) : (int64_t)m;
}

AEABI int64_t __aeabi_d2lz(uint64_t d) { return d_to_int(d, 1, 64); }
AEABI uint64_t __aeabi_d2ulz(uint64_t d) { return (uint64_t)d_to_int(d, 0, 64); }
AEABI int32_t __aeabi_d2iz(uint64_t d) { return (int32_t)d_to_int(d, 1, 32); }
AEABI uint32_t __aeabi_d2uiz(uint64_t d) { return (uint32_t)d_to_int(d, 0, 32); }
AEABI int64_t __aeabi_f2lz(uint32_t f) { return d_to_int(__aeabi_f2d(f), 1, 64); }
AEABI uint64_t __aeabi_f2ulz(uint32_t f) { return (uint64_t)d_to_int(__aeabi_f2d(f), 0, 64); }

/* ---- Half precision ------------------------------------------------------ */

static uint32_t h_to_f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, e = h >> 10 & 31, m = h & 1023;
    if (e == 31) return sign | F_INF | (m ? F_QNAN | m << 13 : 0);
    if (e == 0) {
        if (!m) return sign;
        int shift = clz32(m) - 21; /* leading bit to 10 */
        return sign | (uint32_t)(1 - shift - 15 + 127) << 23 | ((m << shift) & 1023) << 13;
    }
    return sign | (e - 15 + 127) << 23 | m << 13;
}

/* A half from its sign bit, biased exponent `exp` and significand `sig` with
   the leading bit at 13 (10 fraction bits, then 3 rounding bits, the last
   sticky): overflow to infinity, gradual underflow, round to nearest even. */
static uint32_t h_round_pack(uint32_t sign, int exp, uint32_t sig) { ROUND_PACK_BODY(uint32_t, 32, 31, 10) }

static uint32_t f_to_h(uint32_t f) {
    uint32_t sign = f >> 16 & 0x8000u, abs = f & ~F_SIGN;
    if (abs > F_INF) return sign | 0x7e00u | (abs & F_FRAC) >> 13;
    if (abs == F_INF) return sign | 0x7c00u;
    if (!abs) return sign;
    int exp = (int)(abs >> 23) - 127 + 15; /* biased half exponent */
    uint32_t sig = (abs & F_FRAC) | (abs >> 23 ? 0x800000u : 0);
    if (!(abs >> 23)) { /* float subnormals are far below half's range */
        return sign;
    }
    /* Leading bit at 23; half keeps 10 fraction bits, plus 3 rounding bits. */
    uint32_t s = sig >> 10 | ((sig & 1023) != 0); /* leading bit at 13 */
    return h_round_pack(sign, exp, s);
}

AEABI uint32_t __aeabi_h2f(uint32_t h) { return h_to_f(h & 0xffff); }
AEABI uint32_t __aeabi_f2h(uint32_t f) { return f_to_h(f); }
AEABI uint32_t __gnu_h2f_ieee(uint32_t h) { return h_to_f(h & 0xffff); }
AEABI uint32_t __gnu_f2h_ieee(uint32_t f) { return f_to_h(f); }
AEABI uint32_t __aeabi_d2h(uint64_t d) {
    /* Through float would round twice; round once from the double. */
    uint32_t sign = (uint32_t)(d >> 48) & 0x8000u;
    uint64_t abs = d & ~D_SIGN;
    if (abs > D_INF) return sign | 0x7e00u | (uint32_t)((abs & D_FRAC) >> 42);
    if (abs == D_INF) return sign | 0x7c00u;
    int e = (int)(abs >> 52);
    if (e < 1023 - 40) return sign; /* far below half the smallest subnormal: zero */
    int exp = e - 1023 + 15;
    uint64_t sig = (abs & D_FRAC) | D_IMPLICIT; /* leading bit at 52 */
    uint32_t s = (uint32_t)(sig >> 39) | ((sig & ((1ULL << 39) - 1)) != 0); /* leading bit at 13 */
    return h_round_pack(sign, exp, s);
}

/* ---- sqrt without a double-precision unit ------------------------------- */

#if !(__ARM_FP & 8)
/* Digit by digit: two bits of the radicand in, one bit of the root out; 54
   root bits (the last one the guard bit) and the remainder as sticky bit
   give the correctly rounded result. */
AEABI_WEAK double sqrt(double x) {
    union { double f; uint64_t u; } v = {x};
    uint64_t a = v.u;
    if ((a & ~D_SIGN) > D_INF) v.u = a | D_QNAN;            /* NaN */
    else if (!(a & ~D_SIGN)) v.u = a;                        /* +-0 */
    else if (a & D_SIGN) v.u = D_QNAN;                       /* negative */
    else if (a == D_INF) v.u = a;
    else {
        int exp;
        uint64_t m = d_unpack(a, &exp); /* leading bit at 52 */
        int e = exp - 1023;
        if (e & 1) m <<= 1, e -= 1; /* e even; m in [2^52, 2^54) */
        /* The radicand m * 2^52 has 106 bits: 53 pairs, then a zero pair. */
        uint64_t q = 0, r = 0;
        for (int i = 0; i < 54; i++) {
            uint64_t pair = i <= 26 ? (m >> (52 - 2 * i)) & 3 : 0;
            r = r << 2 | pair;
            uint64_t t = q << 2 | 1;
            if (r >= t) r -= t, q = q << 1 | 1;
            else q <<= 1;
        }
        v.u = d_round_pack(0, e / 2 + 1023, q << 2 | (r != 0));
    }
    return v.f;
}
#endif
