/*
 * A program that brings its own memcpy and memset (as freestanding and
 * embedded programs often do), linked beside the static library: the
 * library's libcalls are weak, so these strong definitions win instead of
 * giving "multiple definition" errors. The volatile accesses keep the
 * compiler from turning the loops back into calls to memcpy/memset.
 */
#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    volatile unsigned char *d = dst;
    const volatile unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    volatile unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
