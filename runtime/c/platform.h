/*
 * The platform interface: everything the runtime asks of the system it runs
 * on, kept small so that a new platform (Linux on another architecture, or
 * Cortex-M semihosting) is one file implementing these functions plus the
 * process entry point, which calls smelt_main (main.c) and plat_exit.
 *
 * Errors are returned as negative numbers: on Linux, -errno.
 */

/* Opens a file for reading; returns a descriptor or a negative error. */
static int plat_open_read(const char *path);
/* Creates or truncates a file for writing; returns a descriptor or a negative error. */
static int plat_open_write(const char *path);
/* Reads up to n bytes; returns the count (0 at end of file) or a negative error. */
static long plat_read(int fd, void *buf, unsigned long n);
/* Writes up to n bytes; returns the count or a negative error. */
static long plat_write(int fd, const void *buf, unsigned long n);
static void plat_close(int fd);
/* Whether `fd` is a terminal (bare metal: never). */
__attribute__((unused)) static int plat_is_terminal(int fd);
/* The size of an open file in bytes, or a negative error. */
static int64_t plat_file_size(int fd);
/* Moves an open file's read position to byte `pos`; 0 or a negative error. */
static int plat_seek(int fd, uint64_t pos);
/* Creates a directory; returns 0, PLAT_EEXIST when it exists, or another negative error. */
static int plat_mkdir(const char *path);
/* Zeroed memory of at least `bytes` bytes, aligned to PLAT_PAGE; NULL when the system has none to give. */
static void *plat_alloc(uint64_t bytes);
static void plat_free(void *p, uint64_t bytes);
/* A monotonic clock in nanoseconds. */
static uint64_t plat_now_ns(void);
__attribute__((noreturn)) static void plat_exit(int status);
/* Caps the threads of the model's parallel loops at n (>= 1). Linux runs
   them on a thread pool (linux/threads.c); bare metal has one thread. */
static void plat_set_thread_cap(uint32_t n);
/* A short lowercase description of a negative error code, or NULL
   (strerror.c: one table for every platform). */
static const char *plat_strerror(long err);

#define PLAT_STDOUT 1
#define PLAT_STDERR 2
/* The error plat_mkdir returns for an existing directory (Linux's -EEXIST). */
#define PLAT_EEXIST (-17)
/* The alignment plat_alloc guarantees: the page size on Linux; 16 bytes on
   bare metal, where RAM is scarce (a platform may define it first). */
#ifndef PLAT_PAGE
#if defined(__linux__)
#define PLAT_PAGE 4096
#else
#define PLAT_PAGE 16
#endif
#endif

/* The program's entry point after the platform has found its arguments. */
static int smelt_main(int argc, char **argv);
