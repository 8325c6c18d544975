/*
 * armv7 Linux (EABI, hard float): the process entry point and the raw system
 * call.
 *
 * `svc #0` with the syscall number in r7 and arguments in r0-r5. The numbers
 * are those of arch/arm's table; a 32-bit process needs the 64-bit variants
 * where it differs from the 64-bit targets: clock_gettime64 (a timespec of
 * two 64-bit fields), mmap2 (offset in pages), _llseek (64-bit offsets) and
 * O_LARGEFILE for files over 2 GiB. Included only by linux/platform.c.
 */

#define SYS_read 3
#define SYS_ioctl 54
#define SYS_write 4
#define SYS_close 6
#define SYS_munmap 91
#define SYS__llseek 140
#define SYS_mmap 192 /* mmap2; offset 0 either way */
#define SYS_exit_group 248
#define SYS_openat 322
#define SYS_mkdirat 323
#define SYS_clock_gettime 403 /* clock_gettime64: two 64-bit fields */
#define SYS_clone 120
#define SYS_exit 1
#define SYS_futex 240
#define SYS_getpid 20

#define ARCH_O_LARGEFILE 0400000

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    SVC_SYSCALL6("r7", "r0", "r1", "r2", "r3", "r4", "r5")
}

/* A 64-bit lseek: _llseek takes the offset in two halves and writes the
   resulting position to memory. */
__attribute__((unused)) static int64_t arch_seek(int fd, int64_t off, int whence) {
    int64_t pos = 0;
    long r = raw_syscall6(SYS__llseek, fd, (long)((uint64_t)off >> 32), (long)(uint32_t)off, (long)&pos, whence, 0);
    return r < 0 ? r : pos;
}

#ifndef SMELT_NO_START
/* The kernel enters with sp pointing at argc, then argv[], NULL, envp[]. The
   AAPCS wants sp 8-byte aligned at calls; clear fp and lr so that debuggers
   see the outermost frame. */
__asm__(".text\n"
        ".arm\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "    mov fp, #0\n"
        "    mov lr, #0\n"
        "    mov r0, sp\n"
        "    bic r1, r0, #7\n"
        "    mov sp, r1\n"
        "    bl smelt__start_c\n"
        "    udf #0\n"
        ".size _start, .-_start\n");
#endif

/* Starts a thread (threads.c): clone(flags, stack) with fn and arg parked on
   the new stack, where the child finds them; the child calls fn(arg) on that
   stack and ends with exit (the thread only), never returning here. The
   parent gets the child's id or a negative error. No TLS is set: the child
   keeps the parent's TPIDRURO, which neither generated code nor this runtime
   reads. */
__asm__(".text\n"
        ".arm\n"
        ".weak smelt__clone_thread\n"
        ".hidden smelt__clone_thread\n"
        ".type smelt__clone_thread,%function\n"
        "smelt__clone_thread:\n"
        "    push {r4, r5, r7, lr}\n"
        "    stmdb r1!, {r2, r3}\n"
        "    mov r7, #120\n"
        "    mov r2, #0\n"
        "    mov r3, #0\n"
        "    mov r4, #0\n"
        "    svc #0\n"
        "    cmp r0, #0\n"
        "    bne 1f\n"
        "    pop {r2, r3}\n"
        "    mov fp, #0\n"
        "    mov lr, #0\n"
        "    mov r0, r3\n"
        "    blx r2\n"
        "    mov r0, #0\n"
        "    mov r7, #1\n"
        "    svc #0\n"
        "    udf #0\n"
        "1:  pop {r4, r5, r7, pc}\n"
        ".size smelt__clone_thread, .-smelt__clone_thread\n");
