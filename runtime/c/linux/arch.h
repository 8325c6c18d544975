/*
 * Selects the architecture layer of the Linux platform: syscall numbers, the
 * raw system call, `_start` (unless SMELT_NO_START is defined: the libcalls
 * object of static libraries has no entry point) and the thread start of
 * threads.c. Included once per translation unit.
 */

#if defined(__x86_64__)
#include "arch_x86_64.h"
#elif defined(__aarch64__)
#include "arch_aarch64.h"
#elif defined(__arm__)
#include "arch_arm.h"
#else
#error "no Linux syscall layer for this architecture (add linux/arch_<arch>.h)"
#endif
