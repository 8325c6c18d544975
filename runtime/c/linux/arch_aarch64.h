/*
 * aarch64 Linux: the process entry point and the raw system call.
 *
 * This file and its siblings (one per architecture) are the only
 * architecture-specific code of the Linux platform layer: syscall numbers
 * (the generic table of asm-generic/unistd.h), `svc #0` and `_start`.
 * Everything else in linux/platform.c is shared. Included only by runtime.c.
 */

#define SYS_openat 56
#define SYS_mkdirat 34
#define SYS_close 57
#define SYS_lseek 62
#define SYS_read 63
#define SYS_ioctl 29
#define SYS_write 64
#define SYS_exit_group 94
#define SYS_clock_gettime 113 /* struct timespec is two 64-bit fields here */
#define SYS_munmap 215
#define SYS_mmap 222
#define SYS_clone 220
#define SYS_exit 93
#define SYS_futex 98
#define SYS_getpid 172

#define ARCH_O_LARGEFILE 0

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    SVC_SYSCALL6("x8", "x0", "x1", "x2", "x3", "x4", "x5")
}

#ifndef SMELT_NO_START
/* The kernel enters with sp pointing at argc, then argv[], NULL, envp[].
   sp is 16-byte aligned on entry (the architecture faults on a misaligned
   sp), but realign anyway; clear the frame pointer and link register so
   that debuggers see the outermost frame. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "    mov x29, #0\n"
        "    mov x30, #0\n"
        "    mov x0, sp\n"
        "    and x1, x0, #-16\n"
        "    mov sp, x1\n"
        "    bl smelt__start_c\n"
        "    brk #0\n"
        ".size _start, .-_start\n");
#endif

/* Starts a thread (threads.c): clone(flags, stack) with fn and arg parked on
   the new stack, where the child finds them; the child calls fn(arg) on that
   stack and ends with exit (the thread only), never returning here. The
   parent gets the child's id or a negative error. No TLS is set: the child
   keeps the parent's tpidr_el0, which neither generated code nor this
   runtime reads. */
__asm__(".text\n"
        ".weak smelt__clone_thread\n"
        ".hidden smelt__clone_thread\n"
        ".type smelt__clone_thread,%function\n"
        "smelt__clone_thread:\n"
        "    stp x2, x3, [x1, #-16]!\n"
        "    mov x8, #220\n"
        "    mov x2, #0\n"
        "    mov x3, #0\n"
        "    mov x4, #0\n"
        "    svc #0\n"
        "    cbnz x0, 1f\n"
        "    ldp x2, x3, [sp], #16\n"
        "    mov x29, #0\n"
        "    mov x30, #0\n"
        "    mov x0, x3\n"
        "    blr x2\n"
        "    mov x0, #0\n"
        "    mov x8, #93\n"
        "    svc #0\n"
        "    brk #0\n"
        "1:  ret\n"
        ".size smelt__clone_thread, .-smelt__clone_thread\n");
