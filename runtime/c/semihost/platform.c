/*
 * The platform interface (platform.h) for bare-metal Arm (Cortex-M) through
 * semihosting: the debugger or emulator (QEMU's
 * `-semihosting-config enable=on,target=native`) carries out file and console
 * operations on the host for the firmware.
 *
 *   - Arguments: SYS_GET_CMDLINE gives "<image> <-append string>", split here
 *     at spaces ('"' quotes a word), so the firmware takes the command line of
 *     the Linux executables.
 *   - Files: SYS_OPEN/READ/WRITE/CLOSE/FLEN on host paths, relative to the
 *     emulator's working directory. Semihosting cannot create directories:
 *     `-o DIR` must exist on the host (plat_mkdir reports success and a
 *     missing DIR surfaces as "no such file or directory" when writing).
 *   - Console: the ":tt" handles for stdout and stderr.
 *   - Memory: a bump allocator over the RAM between the end of .bss and the
 *     stack (linker symbols __heap_start and __heap_end, see the generated
 *     linker script), zeroed on allocation; freeing the latest block gives it
 *     back. Running out prints how much was asked for and how much is free.
 *   - Clock: SYS_ELAPSED and SYS_TICKFREQ (the host's clock under QEMU).
 *   - Exit: SYS_EXIT_EXTENDED, so the emulator exits with the status.
 *
 * The vector table and reset handler are in semihost/startup.c. Included
 * only by runtime.c.
 */

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_ERRNO 0x13
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define SYS_ELAPSED 0x30
#define SYS_TICKFREQ 0x31
#define ADP_Stopped_ApplicationExit 0x20026
#define ADP_Stopped_RunTimeErrorUnknown 0x20023

/* Host handles are offset so that they never collide with PLAT_STDOUT and
   PLAT_STDERR, which this layer maps to the console handles. */
#define FD_OFFSET 16

static long semihost(long op, const void *arg) {
    register long r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static long console[3] = {-1, -1, -1};

/* -errno of the last failed call, as the host reports it (Linux numbers
   under QEMU on Linux); -5 (EIO) when the host gives none. */
static long last_error(void) {
    long e = semihost(SYS_ERRNO, 0);
    return e > 0 ? -e : -5;
}

static long open_mode(const char *path, long mode) {
    long args[3] = {(long)path, mode, (long)cstr_len(path)};
    return semihost(SYS_OPEN, args);
}

static int plat_open_read(const char *path) {
    long h = open_mode(path, 1); /* "rb" */
    return h < 0 ? (int)last_error() : (int)(h + FD_OFFSET);
}

static int plat_open_write(const char *path) {
    long h = open_mode(path, 5); /* "wb" */
    return h < 0 ? (int)last_error() : (int)(h + FD_OFFSET);
}

static long host_handle(int fd) {
    if (fd == PLAT_STDOUT || fd == PLAT_STDERR) {
        if (console[fd] < 0) console[fd] = open_mode(":tt", fd == PLAT_STDOUT ? 4 : 8); /* "w", "a" */
        return console[fd];
    }
    return fd >= FD_OFFSET ? fd - FD_OFFSET : -1;
}

static int plat_is_terminal(int fd) {
    (void)fd;
    return 0;
}

static long plat_read(int fd, void *buf, unsigned long n) {
    long args[3] = {host_handle(fd), (long)buf, (long)n};
    if (args[0] < 0) return -9; /* EBADF */
    long left = semihost(SYS_READ, args); /* bytes NOT read */
    if (left < 0 || (unsigned long)left > n) return last_error();
    return (long)(n - (unsigned long)left);
}

static long plat_write(int fd, const void *buf, unsigned long n) {
    long args[3] = {host_handle(fd), (long)buf, (long)n};
    if (args[0] < 0) return -9; /* EBADF */
    long left = semihost(SYS_WRITE, args); /* bytes NOT written */
    if (left < 0 || (unsigned long)left > n) return last_error();
    if ((unsigned long)left == n && n) return last_error();
    return (long)(n - (unsigned long)left);
}

static void plat_close(int fd) {
    long args[1] = {host_handle(fd)};
    if (fd >= FD_OFFSET) semihost(SYS_CLOSE, args);
}

static int64_t plat_file_size(int fd) {
    long args[1] = {host_handle(fd)};
    long n = semihost(SYS_FLEN, args);
    return n < 0 ? last_error() : n;
}

static int plat_seek(int fd, uint64_t pos) {
    long args[2] = {host_handle(fd), (long)pos};
    if (args[0] < 0) return -9; /* EBADF */
    if (pos > 0x7fffffff) return -22; /* EINVAL: semihosting positions are 32-bit */
    return semihost(SYS_SEEK, args) < 0 ? (int)last_error() : 0;
}

static int plat_mkdir(const char *path) {
    (void)path;
    return PLAT_EEXIST;
}

/* Linker-script symbols: the free RAM between .bss and the stack. */
extern char __heap_start[], __heap_end[];
static uintptr_t heap_top;

static void heap_error(uint64_t bytes, uintptr_t top) {
    struct out o;
    out_open(&o, PLAT_STDERR);
    out_printf(&o, "firmware: out of RAM: %u bytes requested, %u of %u heap bytes free; "
                   "compile with a larger --memory ram=... or a smaller model\n",
               bytes, (uint64_t)((uintptr_t)__heap_end - top),
               (uint64_t)((uintptr_t)__heap_end - (uintptr_t)__heap_start));
    out_flush(&o);
}

static void *plat_alloc(uint64_t bytes) {
    if (!heap_top) heap_top = (uintptr_t)__heap_start;
    uintptr_t start = (heap_top + PLAT_PAGE - 1) & ~(uintptr_t)(PLAT_PAGE - 1);
    uintptr_t end = (uintptr_t)__heap_end;
    if (start > end || bytes > end - start) {
        heap_error(bytes, heap_top);
        return 0;
    }
    heap_top = start + (uintptr_t)bytes;
    memset((void *)start, 0, (size_t)bytes);
    return (void *)start;
}

static void plat_free(void *p, uint64_t bytes) {
    if (p && (uintptr_t)p + (uintptr_t)bytes == heap_top) heap_top = (uintptr_t)p;
}

/* Host time in ns; 0 (every run "takes 0 ns") when the host has no clock. */
static uint64_t plat_now_ns(void) {
    static long freq = 0;
    if (!freq) {
        freq = semihost(SYS_TICKFREQ, 0);
        if (freq <= 0) freq = -1;
    }
    uint32_t ticks[2] = {0, 0};
    if (freq < 0 || semihost(SYS_ELAPSED, ticks) != 0) return 0;
    uint64_t t = (uint64_t)ticks[1] << 32 | ticks[0];
    if (freq == 1000000000) return t;
    /* ticks * 1e9 / freq without a 128-bit product: whole seconds apart. */
    uint64_t f = (uint64_t)freq;
    return t / f * 1000000000u + t % f * 1000000000u / f;
}

__attribute__((noreturn)) static void plat_exit(int status) {
    long args[2] = {ADP_Stopped_ApplicationExit, status};
    semihost(SYS_EXIT_EXTENDED, args);
    /* A host without SYS_EXIT_EXTENDED: only success or failure. */
    semihost(SYS_EXIT, (const void *)(long)(status ? ADP_Stopped_RunTimeErrorUnknown : ADP_Stopped_ApplicationExit));
    for (;;) __asm__ volatile("bkpt 0");
}

/* The host's command line, split into words: spaces separate, '"' quotes. */
#define CMDLINE_MAX 4096
#define ARGS_MAX 256
static char cmdline[CMDLINE_MAX];
static char *args_v[ARGS_MAX + 1];

static int split_cmdline(void) {
    struct {
        char *buf;
        long len;
    } a = {cmdline, CMDLINE_MAX - 1};
    if (semihost(SYS_GET_CMDLINE, &a) != 0) return 0;
    cmdline[a.len >= 0 && a.len < CMDLINE_MAX ? a.len : CMDLINE_MAX - 1] = 0;
    int argc = 0;
    char *r = cmdline, *w = cmdline;
    while (*r && argc < ARGS_MAX) {
        while (*r == ' ') r++;
        if (!*r) break;
        args_v[argc++] = w;
        int quoted = 0;
        while (*r && (quoted || *r != ' ')) {
            if (*r == '"') quoted = !quoted, r++;
            else *w++ = *r++;
        }
        if (*r) r++;
        *w++ = 0;
    }
    args_v[argc] = 0;
    return argc;
}

/* Called by the reset handler (semihost/startup.c) once RAM is set up. */
__attribute__((used, noreturn, visibility("hidden"))) void smelt__main_c(void) {
    int argc = split_cmdline();
    plat_exit(smelt_main(argc, args_v));
}

/* One core, no threads: models for bare metal have no parallel loops. */
static void plat_set_thread_cap(uint32_t n) { (void)n; }
