/*
 * The floating-point library functions code generators may call instead of
 * emitting an instruction: Cranelift on x86_64 without SSE4.1 calls
 * floorf/ceilf/truncf/nearbyintf for its rounding instructions and fmaf/fma
 * without FMA; LLVM does the same for its intrinsics on such targets.
 *
 * Every function is correctly rounded for all inputs, including NaN,
 * infinities, negative zero and subnormals, in the default floating-point
 * environment (round to nearest, ties to even; exception flags are not
 * maintained). They work on the bit patterns: runtime.c is compiled with
 * -fno-builtin, -fno-math-errno and -ffp-contract=off so that clang neither
 * turns them into calls to themselves nor fuses the operations whose
 * separate rounding the algorithms rely on.
 */

static inline uint32_t f32_bits(float x) {
    union { float f; uint32_t i; } u = {x};
    return u.i;
}
static inline float f32_from(uint32_t i) {
    union { uint32_t i; float f; } u = {i};
    return u.f;
}
static inline uint64_t f64_bits(double x) {
    union { double f; uint64_t i; } u = {x};
    return u.i;
}
static inline double f64_from(uint64_t i) {
    union { uint64_t i; double f; } u = {i};
    return u.f;
}

/* Rounding to an integer, by clearing the fraction bits of the significand:
   toward zero, except that a value with a fraction whose sign bit is `away`
   moves away from zero (away = 1: floor, 0: ceil, -1: trunc). `e` is the
   unbiased exponent; values with e >= mantissa bits (and NaN, infinities)
   are integers already and are returned unchanged. */

static float round_f32(float x, int away) {
    uint32_t i = f32_bits(x);
    int e = (int)(i >> 23 & 0xff) - 127;
    if (e >= 23) return x;
    uint32_t sign = i & 0x80000000u;
    if (e < 0) { /* |x| < 1: a signed zero, or ±1 away from zero (±0 stays) */
        if ((int)(i >> 31) != away) return f32_from(sign);
        return (i << 1) ? f32_from(sign | 0x3f800000u) : x;
    }
    uint32_t m = 0x007fffffu >> e;
    if (!(i & m)) return x;
    if ((int)(i >> 31) == away) i += m; /* carries into the exponent when needed */
    return f32_from(i & ~m);
}

float truncf(float x) { return round_f32(x, -1); }
float floorf(float x) { return round_f32(x, 1); }
float ceilf(float x) { return round_f32(x, 0); }

/* Round to nearest, ties to even: adding and subtracting 2^23 leaves no room
   for fraction bits, so the addition rounds in the current (default) mode. */
float rintf(float x) {
    uint32_t i = f32_bits(x);
    if ((i & 0x7fffffffu) >= 0x4b000000u) return x; /* |x| >= 2^23, inf, NaN */
    float a = f32_from(i & 0x7fffffffu);
    float r = (a + 0x1p23f) - 0x1p23f; /* not folded: that needs -ffast-math */
    return f32_from(f32_bits(r) | (i & 0x80000000u));
}

float nearbyintf(float x) { return rintf(x); }

/* round_f32 in double precision. */
static double round_f64(double x, int away) {
    uint64_t i = f64_bits(x);
    int e = (int)(i >> 52 & 0x7ff) - 1023;
    if (e >= 52) return x;
    uint64_t sign = i & 0x8000000000000000ULL;
    if (e < 0) {
        if ((int)(i >> 63) != away) return f64_from(sign);
        return (i << 1) ? f64_from(sign | 0x3ff0000000000000ULL) : x;
    }
    uint64_t m = 0x000fffffffffffffULL >> e;
    if (!(i & m)) return x;
    if ((int)(i >> 63) == away) i += m;
    return f64_from(i & ~m);
}

double trunc(double x) { return round_f64(x, -1); }
double floor(double x) { return round_f64(x, 1); }
double ceil(double x) { return round_f64(x, 0); }

double rint(double x) {
    uint64_t i = f64_bits(x);
    if ((i & 0x7fffffffffffffffULL) >= 0x4330000000000000ULL) return x; /* |x| >= 2^52 */
    double a = f64_from(i & 0x7fffffffffffffffULL);
    double r = (a + 0x1p52) - 0x1p52;
    return f64_from(f64_bits(r) | (i & 0x8000000000000000ULL));
}

double nearbyint(double x) { return rint(x); }

/* Square roots: every supported target has the single-precision
   instruction (SSE2 sqrtss, aarch64 fsqrt, VFP vsqrt); with -fno-math-errno
   the builtin is just it. The Cortex-M4F has no double-precision unit (the
   builtin would be a call to sqrt itself): its sqrt is aeabi.c's. */
float sqrtf(float x) { return __builtin_sqrtf(x); }
#if !defined(__arm__) || (__ARM_FP & 8)
double sqrt(double x) { return __builtin_sqrt(x); }
#endif

#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
/* Fused multiply-add instructions: aarch64 fmadd, the M4F's vfma.f32. */
float fmaf(float x, float y, float z) { return __builtin_fmaf(x, y, z); }
#endif

#if defined(__aarch64__)
double fma(double x, double y, double z) { return __builtin_fma(x, y, z); }
#else
/* x * 2^n with a single rounding (used by fma). */
static double scale2(double x, int n) {
    if (n > 1023) {
        x *= 0x1p1023;
        n -= 1023;
        if (n > 1023) {
            x *= 0x1p1023;
            n -= 1023;
            if (n > 1023) n = 1023;
        }
    } else if (n < -1022) {
        /* Scale in steps that stay in the normal range (the argument is at
           least 2^62 here), so that only the last multiplication rounds. */
        x *= 0x1p-1022 * 0x1p53;
        n += 1022 - 53;
        if (n < -1022) {
            x *= 0x1p-1022 * 0x1p53;
            n += 1022 - 53;
            if (n < -1022) n = -1022;
        }
    }
    return x * f64_from((uint64_t)(0x3ff + n) << 52);
}

/*
 * fmaf without an FMA instruction: the product of two floats is exact in
 * double, so x*y + z rounded to double and then to float is right except
 * when the first rounding lands exactly on a halfway point between two
 * floats (double rounding). TwoSum gives the exact error of the double
 * addition; in the halfway case, nudging the double one unit towards the
 * exact value makes the final rounding go the right way. The halfway
 * position depends on the precision of the float result, which is smaller
 * for subnormal results.
 */
#if !defined(__ARM_FEATURE_FMA)
float fmaf(float x, float y, float z) {
    double xy = (double)x * (double)y;
    double s = xy + (double)z;
    uint64_t i = f64_bits(s);
    int e = (int)(i >> 52 & 0x7ff);
    if (e == 0x7ff || s == 0) return (float)s; /* inf, NaN, or an exact zero */
    /* Double significand bits below the float's last bit: 29 for normal
       float results; more below 2^-126 (biased double exponent 897). */
    int drop = 29 + (e < 897 ? 897 - e : 0);
    if (drop > 53) return (float)s; /* below half the smallest float: rounds to +-0 */
    /* Halfway: the highest dropped bit set, the others clear. When all 53
       bits are dropped (|s| in [2^-150, 2^-149)) the highest one is the
       implicit bit, which is always set. */
    uint64_t low = i & ((1ULL << 52) - 1);
    int halfway = drop == 53 ? low == 0 : (low & ((1ULL << drop) - 1)) == 1ULL << (drop - 1);
    if (!halfway) return (float)s;
    double bb = s - xy;
    double err = (xy - (s - bb)) + ((double)z - bb); /* exact: x*y + z = s + err */
    if (err == 0) return (float)s;                   /* truly halfway: ties to even is right */
    if ((err > 0) == (s > 0)) i++; else i--;         /* move towards the exact value */
    return (float)f64_from(i);
}
#endif

/*
 * fma without an FMA instruction: exact 128-bit integer arithmetic on the
 * significands, then one rounding. (The method of musl's fma.c, by Szabolcs
 * Nagy, MIT licence.) Results are x * y + z rounded once, with the IEEE sign
 * rules for zeros.
 */
struct fma_num {
    uint64_t m; /* significand << 1, bit 53 set */
    int e;      /* value = m * 2^e */
    int sign;
};

#define FMA_ZEROINFNAN (0x7ff - 0x3ff - 52 - 1)

static struct fma_num fma_normalize(double x) {
    uint64_t ix = f64_bits(x);
    int e = (int)(ix >> 52);
    int sign = e & 0x800;
    e &= 0x7ff;
    if (!e) {
        ix = f64_bits(x * 0x1p63);
        e = (int)(ix >> 52 & 0x7ff);
        e = e ? e - 63 : 0x800; /* 0x800 marks zero */
    }
    ix &= (1ULL << 52) - 1;
    ix |= 1ULL << 52;
    ix <<= 1;
    e -= 0x3ff + 52 + 1;
    struct fma_num r = {ix, e, sign};
    return r;
}

static void mul64(uint64_t *hi, uint64_t *lo, uint64_t x, uint64_t y) {
    uint64_t xlo = (uint32_t)x, xhi = x >> 32;
    uint64_t ylo = (uint32_t)y, yhi = y >> 32;
    uint64_t t1 = xlo * ylo;
    uint64_t t2 = xlo * yhi + xhi * ylo; /* cannot overflow: both factors < 2^54 */
    uint64_t t3 = xhi * yhi;
    *lo = t1 + (t2 << 32);
    *hi = t3 + (t2 >> 32) + (t1 > *lo);
}

double fma(double x, double y, double z) {
    struct fma_num nx = fma_normalize(x), ny = fma_normalize(y), nz = fma_normalize(z);
    if (nx.e >= FMA_ZEROINFNAN || ny.e >= FMA_ZEROINFNAN) return x * y + z; /* exact product */
    if (nz.e >= FMA_ZEROINFNAN) {
        if (nz.e > FMA_ZEROINFNAN) return x * y; /* z = +-0: the product, with its own sign */
        return z;                                /* z = inf or NaN, x*y finite */
    }

    /* r = x * y, a 108-bit product in rhi:rlo. */
    uint64_t rhi, rlo, zhi, zlo;
    mul64(&rhi, &rlo, nx.m, ny.m);

    /* Align exponents: shift z left by kz and r right by kr, kz + kr = d. */
    int e = nx.e + ny.e;
    int d = nz.e - e;
    if (d > 0) {
        if (d < 64) {
            zlo = nz.m << d;
            zhi = nz.m >> (64 - d);
        } else {
            zlo = 0;
            zhi = nz.m;
            e = nz.e - 64;
            d -= 64;
            if (d == 0) {
            } else if (d < 64) {
                rlo = rhi << (64 - d) | rlo >> d | !!(rlo << (64 - d));
                rhi = rhi >> d;
            } else {
                rlo = 1; /* sticky */
                rhi = 0;
            }
        }
    } else {
        zhi = 0;
        d = -d;
        if (d == 0) {
            zlo = nz.m;
        } else if (d < 64) {
            zlo = nz.m >> d | !!(nz.m << (64 - d));
        } else {
            zlo = 1;
        }
    }

    /* Add or subtract. */
    int sign = nx.sign ^ ny.sign;
    int samesign = !(sign ^ nz.sign);
    int nonzero = 1;
    if (samesign) {
        rlo += zlo;
        rhi += zhi + (rlo < zlo);
    } else {
        uint64_t t = rlo;
        rlo -= zlo;
        rhi = rhi - zhi - (t < rlo);
        if (rhi >> 63) {
            rlo = -rlo;
            rhi = -rhi - !!rlo;
            sign = !sign;
        }
        nonzero = !!rhi;
    }

    /* Put the top 63 bits of the result in rhi, the last one sticky. */
    if (nonzero) {
        e += 64;
        d = __builtin_clzll(rhi) - 1; /* d > 0: the sum stays below 2^118 */
        rhi = rhi << d | rlo >> (64 - d) | !!(rlo << d);
    } else if (rlo) {
        d = __builtin_clzll(rlo) - 1;
        if (d < 0)
            rhi = rlo >> 1 | (rlo & 1);
        else
            rhi = rlo << d;
    } else {
        return x * y + z; /* exact zero: x*y = -z exactly, so this gets the sign right */
    }
    e -= d;

    /* Convert to double: |r| in [2^62, 2^63]. */
    int64_t i = (int64_t)rhi;
    if (sign) i = -i;
    double r = (double)i;

    if (e < -1022 - 62) {
        /* The result is subnormal: make sure it is rounded only once. */
        if (e == -1022 - 63) {
            double c = sign ? -0x1p63 : 0x1p63;
            if (r != c && (rhi << 53)) {
                /* Conversion would round one bit too low: add a top bit so
                   that it rounds at the right place, then take it away. */
                i = (int64_t)(rhi >> 1 | (rhi & 1) | 1ULL << 62);
                if (sign) i = -i;
                r = (double)i;
                r = 2 * r - c;
            }
        } else {
            /* Keep 53 bits (the last one sticky) so the conversion is exact
               and the scaling does the only rounding. */
            d = 10;
            i = (int64_t)((rhi >> d | !!(rhi << (64 - d))) << d);
            if (sign) i = -i;
            r = (double)i;
        }
    }
    return scale2(r, e);
}
#endif
