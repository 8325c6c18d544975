/*
 * Selects the architecture layer of the Linux platform: syscall numbers, the
 * raw system call, `_start` (unless SMELT_NO_START is defined: the libcalls
 * object of static libraries has no entry point) and the thread start of
 * threads.c. Included once per translation unit.
 */

/* The raw system call of both Arm architectures, as the body of
   raw_syscall6: `svc #0` with the number in register NR, the arguments in
   A0..A5 and the result in A0. */
#define SVC_SYSCALL6(NR, A0, A1, A2, A3, A4, A5)                                                   \
    register long rn __asm__(NR) = n;                                                              \
    register long r0 __asm__(A0) = a;                                                              \
    register long r1 __asm__(A1) = b;                                                              \
    register long r2 __asm__(A2) = c;                                                              \
    register long r3 __asm__(A3) = d;                                                              \
    register long r4 __asm__(A4) = e;                                                              \
    register long r5 __asm__(A5) = f;                                                              \
    __asm__ volatile("svc #0"                                                                      \
                     : "+r"(r0)                                                                    \
                     : "r"(rn), "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5)                        \
                     : "memory");                                                                  \
    return r0;

#if defined(__x86_64__)
#include "arch_x86_64.h"
#elif defined(__aarch64__)
#include "arch_aarch64.h"
#elif defined(__arm__)
#include "arch_arm.h"
#else
#error "no Linux syscall layer for this architecture (add linux/arch_<arch>.h)"
#endif
