/*
 * The C library functions that compiled models and the runtime itself call:
 * memcpy, memmove, memset, memcmp. Code generators emit calls to them for
 * block copies and fills (Cranelift's and LLVM's memory intrinsics), and
 * clang emits them for struct copies, so they must exist even though there
 * is no libc.
 *
 * They move 8-byte words through unaligned-access types (one instruction on
 * x86_64 and aarch64) and let the compiler vectorise the loops; runtime.c is
 * compiled with -fno-builtin, which keeps clang from turning these very loops
 * back into calls to themselves.
 */

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

/* Copies one 32-byte block, loading all of it before storing any, so that
   the block may overlap its destination. */
static inline void copy_block32(unsigned char *d, const unsigned char *s) {
    uint64_t a = ((const u64_unaligned *)s)[0], b = ((const u64_unaligned *)s)[1];
    uint64_t c = ((const u64_unaligned *)s)[2], e = ((const u64_unaligned *)s)[3];
    ((u64_unaligned *)d)[0] = a;
    ((u64_unaligned *)d)[1] = b;
    ((u64_unaligned *)d)[2] = c;
    ((u64_unaligned *)d)[3] = e;
}

/* Copies n bytes upwards. Each 32-byte block is loaded completely before it
   is stored, and later blocks are loaded after earlier ones are stored, so a
   destination below an overlapping source is handled (memmove relies on it). */
static inline void copy_forward(unsigned char *d, const unsigned char *s, size_t n) {
    for (; n >= 32; n -= 32, d += 32, s += 32) {
        copy_block32(d, s);
    }
    for (; n >= 8; n -= 8, d += 8, s += 8) {
        uint64_t a = *(const u64_unaligned *)s;
        *(u64_unaligned *)d = a;
    }
    for (; n; n--) *d++ = *s++;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    copy_forward(dst, src, n);
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0) return dst;
    /* Copying forwards is safe when the destination starts before the
       source or the ranges are disjoint; otherwise copy backwards. The
       comparisons are on integers, which is well defined for unrelated
       pointers. */
    if ((uintptr_t)d - (uintptr_t)s >= n) {
        copy_forward(d, s, n);
    } else {
        d += n;
        s += n;
        for (; n >= 32; n -= 32) {
            d -= 32;
            s -= 32;
            copy_block32(d, s);
        }
        for (; n >= 8; n -= 8) {
            d -= 8;
            s -= 8;
            uint64_t a = *(const u64_unaligned *)s;
            *(u64_unaligned *)d = a;
        }
        for (; n; n--) *--d = *--s;
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    uint64_t w = (unsigned char)c * 0x0101010101010101ULL;
    for (; n >= 32; n -= 32, d += 32) {
        ((u64_unaligned *)d)[0] = w;
        ((u64_unaligned *)d)[1] = w;
        ((u64_unaligned *)d)[2] = w;
        ((u64_unaligned *)d)[3] = w;
    }
    for (; n >= 8; n -= 8, d += 8) *(u64_unaligned *)d = w;
    for (; n; n--) *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *p = a, *q = b;
    /* Skip equal words quickly, then find the first differing byte. */
    for (; n >= 8 && *(const u64_unaligned *)p == *(const u64_unaligned *)q; n -= 8, p += 8, q += 8) {
    }
    for (; n; n--, p++, q++)
        if (*p != *q) return *p < *q ? -1 : 1;
    return 0;
}
