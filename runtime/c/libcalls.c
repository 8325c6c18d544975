/*
 * The libcalls-only object that smelt puts into static libraries beside the
 * model object: the C library functions generated code may call (libc.c,
 * libm.c, and on 32-bit Arm the __aeabi_* helpers of aeabi.c), on Linux the
 * thread pool of models compiled with --threads (linux/threads.c), and
 * nothing else, so no _start, no main, no I/O.
 *
 * Compiled once per target by the smelt-runtime crate's build script with
 * the same flags as runtime.c (see src/target.rs).
 *
 * The program that links the static library has its own C library, which
 * defines memcpy, floorf and the rest too. So that the two never clash, every
 * function here is
 *   - weak: a strong definition (from libc.a in a static link, or anything
 *     else in the program) wins over it without a "multiple definition"
 *     error, and
 *   - hidden: when it is used, it is used only inside the program or shared
 *     object that links the library; it is never exported, so it never
 *     interposes on the C library's own functions for other shared objects.
 * When nothing else defines them (a dynamic link puts the C library after
 * the archive; a freestanding program has no C library), the linker takes
 * this object from the archive to satisfy the model's references, and the
 * model gets the same correctly rounded functions as in smelt's executables.
 */

#include <stddef.h>
#include <stdint.h>

#pragma weak memcpy
#pragma weak memmove
#pragma weak memset
#pragma weak memcmp
#pragma weak floorf
#pragma weak ceilf
#pragma weak truncf
#pragma weak rintf
#pragma weak nearbyintf
#pragma weak sqrtf
#pragma weak fmaf
#pragma weak floor
#pragma weak ceil
#pragma weak trunc
#pragma weak rint
#pragma weak nearbyint
#pragma weak sqrt
#pragma weak fma

#pragma GCC visibility push(hidden)
#include "libc.c"
#include "libm.c"
#if defined(__arm__)
/* The Arm run-time ABI helpers: weak and hidden like the rest (the C
   program's libgcc or compiler-rt has its own, which win). */
#define AEABI_WEAK __attribute__((weak))
#define AEABI_ASM_LINKAGE(name) ".weak " name "\n.hidden " name "\n"
#include "aeabi.c"
#endif
#if defined(__linux__)
/* The thread pool of models compiled with --threads N > 1: weak and hidden
   too, so that two libraries' copies never clash. No entry point here. */
#pragma weak smelt_parallel_for
#define SMELT_NO_START
#include "linux/arch.h"
#include "linux/threads.c"
#endif
#pragma GCC visibility pop
