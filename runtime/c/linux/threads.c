/*
 * A tiny thread pool for generated code on Linux: raw clone threads, stacks
 * from mmap, futex wait and wake; no libc, no TLS.
 *
 * Generated code compiled with `--threads N` (N > 1) calls
 *
 *     smelt_parallel_for(task, ctx, n, N)
 *
 * for a loop whose iterations are independent (the kernel IR's Parallel
 * statement). [0, n) is split into t = min(N, n) contiguous chunks, chunk k
 * being [n*k/t, n*(k+1)/t): the split depends only on n and t, and every
 * iteration computes the same thing in any chunk, so results do not depend on
 * the thread count. The calling thread and the workers claim chunks one at
 * a time (so a worker the kernel has not scheduled yet delays nothing: the
 * others take its chunks); the call returns when every chunk is done (a
 * completion barrier).
 *
 * Workers are started on first use (as many as the largest t asked for so
 * far) and live for the process, waiting on a futex between calls. They
 * spin briefly first, since the next parallel loop of a run usually follows
 * within microseconds.
 *
 * Safe beside a C library's threads (static libraries): the workers are
 * clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|
 * CLONE_SYSVSEM) threads that no C library knows about. They get no TLS of
 * their own (they keep the starting thread's thread pointer) and run only
 * generated code and the libcalls it calls, none of which touches TLS, errno
 * or locks. All signals are blocked in them, so the process's signals are
 * delivered to the program's own threads. One call runs at a time: a caller
 * that finds the pool busy (another thread of the program runs a model)
 * simply runs all chunks itself, which gives the same results. After fork(),
 * the child has no workers; the pool notices the new process id and starts
 * new ones.
 *
 * Included by linux/platform.c (executables) and libcalls.c (static
 * libraries, where smelt_parallel_for is weak and hidden) after linux/arch.h.
 */

#define SMELT_MAX_THREADS 64
/* Worker stacks: mapped lazily by the kernel, so only touched pages cost. */
#define SMELT_STACK_BYTES (1UL << 20)
/* Busy-wait iterations (a pause each) before sleeping on the futex: a few
   tens of microseconds, about the gap between two parallel loops of a run. */
#define SMELT_SPINS 2000

#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define TH_PROT_RW 3
#define TH_MAP_FLAGS (0x02 | 0x20 | 0x4000 | 0x20000) /* PRIVATE|ANONYMOUS|NORESERVE|STACK */
#define TH_SIG_SETMASK 2

#if defined(__x86_64__)
#define SYS_rt_sigprocmask_ 14
#define cpu_relax() __asm__ volatile("pause" ::: "memory")
#elif defined(__aarch64__)
#define SYS_rt_sigprocmask_ 135
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define SYS_rt_sigprocmask_ 175
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#endif

typedef void (*smelt_task_fn)(void *ctx, int64_t lo, int64_t hi);

long smelt__clone_thread(long flags, void *stack_top, void (*fn)(void *), void *arg);

/* The job word, one 32-bit atomic that is also the futex workers sleep on:
   generation (bits 16-31, bumped per job), chunk count (bits 8-15) and the
   next unclaimed chunk (bits 0-7). A thread claims chunk k by moving the
   word from next = k to k + 1 with a compare-and-swap; a successful claim is
   of the current job, whose fields cannot change before every chunk is done.
   So chunks go to whichever thread is free (the caller included, which
   therefore never waits for a worker the kernel has not scheduled), while
   the split itself stays fixed. */
#define JOB_GEN(w) ((w) >> 16)
#define JOB_CHUNKS(w) (((w) >> 8) & 0xff)
#define JOB_NEXT(w) ((w) & 0xff)

static struct {
    uint32_t busy;     /* the try-lock of callers */
    uint32_t job;      /* the job word above */
    uint32_t done;     /* chunks of the current job finished */
    uint32_t sleepers; /* workers in (or entering) futex_wait on `job` */
    int32_t workers;   /* started workers */
    int32_t pid;       /* the process that started them */
    smelt_task_fn fn;  /* the current job */
    void *ctx;
    int64_t n;
} smelt_pool;

/* A cap on the threads of every parallel loop (0: none), set by the
   executable's --threads option. */
__attribute__((unused)) static uint32_t smelt_thread_cap;

static void th_futex_wait(uint32_t *addr, uint32_t val) {
    raw_syscall6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, (long)val, 0, 0, 0);
}

static void th_futex_wake(uint32_t *addr, int count) {
    raw_syscall6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}

/* Claims and runs chunks of the job while there are any; returns after the
   last one it ran is counted as done. */
static void th_run_chunks(void) {
    uint32_t w = __atomic_load_n(&smelt_pool.job, __ATOMIC_ACQUIRE);
    while (JOB_NEXT(w) < JOB_CHUNKS(w)) {
        if (!__atomic_compare_exchange_n(&smelt_pool.job, &w, w + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue; /* w was reloaded */
        uint64_t n = (uint64_t)smelt_pool.n, t = JOB_CHUNKS(w), k = JOB_NEXT(w);
        int64_t lo = (int64_t)(n * k / t), hi = (int64_t)(n * (k + 1) / t);
        if (lo < hi) smelt_pool.fn(smelt_pool.ctx, lo, hi);
        if (__atomic_add_fetch(&smelt_pool.done, 1, __ATOMIC_ACQ_REL) == t)
            th_futex_wake(&smelt_pool.done, 1);
        w = __atomic_load_n(&smelt_pool.job, __ATOMIC_ACQUIRE);
    }
}

static void th_worker(void *arg) {
    (void)arg;
    for (;;) {
        th_run_chunks();
        uint32_t w = __atomic_load_n(&smelt_pool.job, __ATOMIC_ACQUIRE);
        int spins = 0;
        while (JOB_NEXT(w) >= JOB_CHUNKS(w)) {
            if (spins < SMELT_SPINS) {
                spins++;
                cpu_relax();
            } else {
                /* Announce the sleep before checking the word once more:
                   the caller stores the word, then reads `sleepers`. */
                __atomic_add_fetch(&smelt_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(&smelt_pool.job, __ATOMIC_SEQ_CST) == w) th_futex_wait(&smelt_pool.job, w);
                __atomic_sub_fetch(&smelt_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                spins = 0;
            }
            w = __atomic_load_n(&smelt_pool.job, __ATOMIC_ACQUIRE);
        }
    }
}

/* Starts workers until there are `want` (or a start fails); returns how many
   there are. Called with the pool locked. */
static int32_t th_start_workers(int32_t want) {
    int32_t pid = (int32_t)raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    if (smelt_pool.workers > 0 && smelt_pool.pid != pid) { /* forked: the workers stayed behind */
        smelt_pool.workers = 0;
        __atomic_store_n(&smelt_pool.sleepers, 0, __ATOMIC_SEQ_CST);
    }
    smelt_pool.pid = pid;
    if (smelt_pool.workers >= want) return smelt_pool.workers;
    uint64_t all = ~(uint64_t)0, old = 0;
    raw_syscall6(SYS_rt_sigprocmask_, TH_SIG_SETMASK, (long)&all, (long)&old, 8, 0, 0);
    while (smelt_pool.workers < want) {
        int32_t k = smelt_pool.workers + 1;
        long stack = raw_syscall6(SYS_mmap, 0, SMELT_STACK_BYTES, TH_PROT_RW, TH_MAP_FLAGS, -1, 0);
        if (stack < 0 && stack > -4096) break;
        long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
        long tid = smelt__clone_thread(flags, (char *)stack + SMELT_STACK_BYTES, th_worker, (void *)(intptr_t)k);
        if (tid < 0) {
            raw_syscall6(SYS_munmap, stack, SMELT_STACK_BYTES, 0, 0, 0, 0);
            break;
        }
        smelt_pool.workers = k;
    }
    raw_syscall6(SYS_rt_sigprocmask_, TH_SIG_SETMASK, (long)&old, 0, 8, 0, 0);
    return smelt_pool.workers;
}

void smelt_parallel_for(smelt_task_fn fn, void *ctx, int64_t n, int64_t threads) {
    if (n <= 0) return;
    int64_t t = threads;
    if (smelt_thread_cap && t > (int64_t)smelt_thread_cap) t = smelt_thread_cap;
    if (t > n) t = n;
    if (t > SMELT_MAX_THREADS) t = SMELT_MAX_THREADS;
    if (t <= 1 || __atomic_exchange_n(&smelt_pool.busy, 1, __ATOMIC_ACQUIRE)) {
        fn(ctx, 0, n);
        return;
    }
    int32_t have = th_start_workers((int32_t)t - 1);
    if (t > have + 1) t = have + 1;
    if (t <= 1) {
        __atomic_store_n(&smelt_pool.busy, 0, __ATOMIC_RELEASE);
        fn(ctx, 0, n);
        return;
    }
    smelt_pool.fn = fn;
    smelt_pool.ctx = ctx;
    smelt_pool.n = n;
    __atomic_store_n(&smelt_pool.done, 0, __ATOMIC_RELAXED);
    uint32_t gen = JOB_GEN(__atomic_load_n(&smelt_pool.job, __ATOMIC_RELAXED)) + 1;
    __atomic_store_n(&smelt_pool.job, (gen << 16) | ((uint32_t)t << 8), __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&smelt_pool.sleepers, __ATOMIC_SEQ_CST)) th_futex_wake(&smelt_pool.job, (int)t - 1);
    th_run_chunks();
    int spins = 0;
    uint32_t d;
    while ((d = __atomic_load_n(&smelt_pool.done, __ATOMIC_ACQUIRE)) != (uint32_t)t) {
        if (spins < SMELT_SPINS) {
            spins++;
            cpu_relax();
        } else {
            th_futex_wait(&smelt_pool.done, d);
        }
    }
    __atomic_store_n(&smelt_pool.busy, 0, __ATOMIC_RELEASE);
}
