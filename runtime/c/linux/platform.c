/*
 * The platform interface (platform.h) for Linux, on raw system calls.
 *
 * Architecture-specific parts (syscall numbers, the syscall instruction and
 * `_start`) come from linux/arch_<arch>.h; this file is shared by every Linux
 * target. A 32-bit architecture (arch_arm.h) also defines arch_seek, its
 * 64-bit lseek, and maps SYS_mmap and SYS_clock_gettime to the 64-bit-safe
 * variants.
 */

#include "arch.h"

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_CLOEXEC 02000000
#define SEEK_SET 0
#define SEEK_END 2
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20
#define CLOCK_MONOTONIC 1

static long sys3(long n, long a, long b, long c) { return raw_syscall6(n, a, b, c, 0, 0, 0); }

static int plat_open_read(const char *path) {
    return (int)sys3(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC | ARCH_O_LARGEFILE);
}

static int plat_open_write(const char *path) {
    return (int)raw_syscall6(SYS_openat, AT_FDCWD, (long)path,
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | ARCH_O_LARGEFILE, 0666, 0, 0);
}

static long plat_read(int fd, void *buf, unsigned long n) {
    /* Linux transfers at most 0x7ffff000 bytes per call; callers loop. */
    if (n > 0x40000000UL) n = 0x40000000UL;
    return sys3(SYS_read, fd, (long)buf, (long)n);
}

static long plat_write(int fd, const void *buf, unsigned long n) {
    if (n > 0x40000000UL) n = 0x40000000UL;
    return sys3(SYS_write, fd, (long)buf, (long)n);
}

static void plat_close(int fd) { sys3(SYS_close, fd, 0, 0); }

static int plat_is_terminal(int fd) {
    /* TCGETS succeeds on a terminal only; the buffer holds any termios. */
    uint64_t termios[16];
    return sys3(SYS_ioctl, fd, 0x5401, (long)termios) == 0;
}

#if !defined(SYS__llseek)
static int64_t arch_seek(int fd, int64_t off, int whence) { return sys3(SYS_lseek, fd, (long)off, whence); }
#endif

static int64_t plat_file_size(int fd) {
    int64_t end = arch_seek(fd, 0, SEEK_END);
    if (end < 0) return end;
    int64_t back = arch_seek(fd, 0, SEEK_SET);
    return back < 0 ? back : end;
}

static int plat_seek(int fd, uint64_t pos) {
    int64_t r = arch_seek(fd, (int64_t)pos, SEEK_SET);
    return r < 0 ? (int)r : 0;
}

static int plat_mkdir(const char *path) { return (int)sys3(SYS_mkdirat, AT_FDCWD, (long)path, 0777); }

static void *plat_alloc(uint64_t bytes) {
    if (bytes == 0) bytes = 1;
    /* No more than the address space (long is 32 bits on armv7). */
    if (bytes > (uint64_t)(unsigned long)-1 / 2 - PLAT_PAGE) return 0;
    long p = raw_syscall6(SYS_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((unsigned long)p > -4096UL) return 0; /* -errno */
    return (void *)p;
}

static void plat_free(void *p, uint64_t bytes) {
    if (p) sys3(SYS_munmap, (long)p, (long)(bytes ? bytes : 1), 0);
}

static uint64_t plat_now_ns(void) {
    struct {
        int64_t sec;
        int64_t nsec;
    } ts = {0, 0};
    sys3(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0);
    return (uint64_t)ts.sec * 1000000000u + (uint64_t)ts.nsec;
}

__attribute__((noreturn)) static void plat_exit(int status) {
    for (;;) sys3(SYS_exit_group, status, 0, 0);
}

/* Called by `_start` with the initial stack pointer: argc, then argv[]. */
__attribute__((used, noreturn, visibility("hidden"))) void smelt__start_c(long *sp) {
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    plat_exit(smelt_main(argc, argv));
}

#include "threads.c"

static void plat_set_thread_cap(uint32_t n) { smelt_thread_cap = n; }
