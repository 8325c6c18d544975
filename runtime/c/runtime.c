/*
 * smelt's runtime for native executables: the one translation unit.
 *
 * Compiled once per target by the smelt-runtime crate's build script:
 *   clang-19 --target=<triple> -ffreestanding -nostdlib -fno-builtin -O2 -fPIC -c runtime.c
 * (see src/target.rs for the full flag list) and linked with a model object
 * into a static executable: ld.lld -static -e _start model.o runtime.o.
 *
 * The parts are separate files included here rather than separate objects so
 * that the result is one object whose only global symbols are the ones other
 * objects need (`_start` and the C library functions of libc.c and libm.c);
 * everything else is static. There is no libc: only the compiler's
 * freestanding headers (stdint.h, stddef.h, stdarg.h).
 *
 *   platform.h         what the runtime needs from the system (files, memory,
 *                      clock, exit); one implementation per platform
 *   linux/platform.c   ... for Linux, on raw system calls
 *   linux/arch_*.h     per architecture: syscall numbers, the syscall
 *                      instruction, _start
 *   semihost/          ... for bare-metal Cortex-M: semihosting calls, a bump
 *                      allocator over free RAM, the vector table and reset
 *                      handler
 *   aeabi.c            the Arm run-time ABI helpers (__aeabi_*) for 32-bit Arm
 *   libc.c, libm.c     memcpy and friends, float libcalls for generated code
 *   tokenizer.c        text to token ids and back (tokenizer.h), for LLM
 *                      executables; its Unicode tables in tokenizer_unicode.c
 *   fmt.c              buffered output, number formatting, messages
 *   strerror.c         texts of the (Linux) error numbers both platforms report
 *   args.c             command-line flag values and counts
 *   npy.c, npz.c       tensor files in and out
 *   main.c             the command line and the run
 *
 * Compiled with -DSMELT_CHAT it is the runtime of a language model's chat
 * executable instead (llm.h): sample.c (the token sampler), llm.c (the
 * language-model API of include/smelt_llm.h) and chat.c (the command line,
 * chat template, streaming and timing around it) replace npy.c, npz.c and
 * main.c.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(SMELT_CHAT)
#define SMELT_MODEL_NO_FIXED_NAMES
#include "llm.h"
#include "smelt_llm.h"
#else
#include "smelt_model.h"
#endif

#include "platform.h"

#include "libc.c"
#include "libm.c"
#if defined(__arm__)
#include "aeabi.c"
#endif
/* Encoding runs over whole prompts: -O2 like the libcalls. */
#include "tokenizer.c"
#if defined(SMELT_CHAT)
#include "sample.c"
#include "llm.c"
#endif
/* The rest runs once per process, around the model: optimise it for size,
   leaving -O2 to the functions generated code calls. */
#pragma clang attribute push(__attribute__((minsize)), apply_to = function)
#if defined(SMELT_CHAT)
/* The chat program opens no files: the platform's file functions and error
   texts go unused. */
#pragma clang diagnostic ignored "-Wunused-function"
#endif
#include "fmt.c"
#include "strerror.c"
#include "args.c"
#if defined(SMELT_CHAT)
#include "chat.c"
#else
#include "npy.c"
#include "npz.c"
#include "main.c"
#endif

#if defined(__linux__)
#include "linux/platform.c"
#elif defined(__arm__) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#include "semihost/platform.c"
#include "semihost/startup.c"
#else
#error "no platform layer for this target"
#endif
#pragma clang attribute pop
