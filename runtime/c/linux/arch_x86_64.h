/*
 * x86_64 Linux: the process entry point and the raw system call.
 *
 * This file and its siblings (one per architecture) are the only
 * architecture-specific code of the Linux platform layer: syscall numbers,
 * the `syscall` instruction and `_start`. Everything else in linux/platform.c
 * is shared. Included only by runtime.c.
 */

#define SYS_read 0
#define SYS_ioctl 16
#define SYS_write 1
#define SYS_close 3
#define SYS_lseek 8
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_clock_gettime 228 /* struct timespec is two 64-bit fields here */
#define SYS_exit_group 231
#define SYS_openat 257
#define SYS_mkdirat 258
#define SYS_clone 56
#define SYS_exit 60
#define SYS_futex 202
#define SYS_getpid 39

/* Flags for openat that differ between architectures. */
#define ARCH_O_LARGEFILE 0

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#ifndef SMELT_NO_START
/* The kernel enters with rsp pointing at argc, then argv[], NULL, envp[].
   rsp is 16-byte aligned on entry, but realign anyway before the call (the
   ABI wants rsp % 16 == 0 at the call instruction), and clear rbp so that
   debuggers see the outermost frame. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call smelt__start_c\n"
        "    hlt\n"
        ".size _start, .-_start\n");
#endif

/* Starts a thread (threads.c): clone(flags, stack) with fn and arg parked on
   the new stack, where the child finds them; the child calls fn(arg) on that
   stack and ends with exit (the thread only), never returning here. The
   parent gets the child's id or a negative error. No TLS is set: the child
   keeps the parent's %fs, which neither generated code nor this runtime
   reads. */
__asm__(".text\n"
        ".weak smelt__clone_thread\n"
        ".hidden smelt__clone_thread\n"
        ".type smelt__clone_thread,@function\n"
        "smelt__clone_thread:\n"
        "    sub $16, %rsi\n"
        "    mov %rdx, 0(%rsi)\n"
        "    mov %rcx, 8(%rsi)\n"
        "    mov $56, %eax\n"
        "    xor %edx, %edx\n"
        "    xor %r10d, %r10d\n"
        "    xor %r8d, %r8d\n"
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jnz 1f\n"
        "    xor %ebp, %ebp\n"
        "    pop %rax\n"
        "    pop %rdi\n"
        "    call *%rax\n"
        "    mov $60, %eax\n"
        "    xor %edi, %edi\n"
        "    syscall\n"
        "    hlt\n"
        "1:  ret\n"
        ".size smelt__clone_thread, .-smelt__clone_thread\n");
