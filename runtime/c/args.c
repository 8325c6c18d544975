/*
 * Command-line helpers shared by the executables' programs (main.c, and
 * chat.c for language models): flag values and counts, with the runtime's
 * one-line errors (exit status 2), and aligned allocations with their
 * out-of-memory message.
 */

static const char *arg_value(const struct ctx *c, int argc, char **argv, int *i, const char *flag) {
    if (*i + 1 >= argc) die_status(c, 2, "%s needs a value; run with --help for usage", flag);
    return argv[++*i];
}

/* The decimal count `v` given to a flag, from `min` to `max`; exits with
   status 2 and "WHAT from MIN to MAX, got 'V'" otherwise. */
static uint64_t parse_range(const struct ctx *c, const char *v, uint64_t min, uint64_t max, const char *what) {
    uint64_t n = 0;
    const char *p = v;
    /* Digits stop counting past max (no overflow); what is left is refused. */
    for (; *p >= '0' && *p <= '9' && n <= max; p++) n = n * 10 + (uint64_t)(*p - '0');
    if (*p || p == v || n < min || n > max) die_status(c, 2, "%s from %u to %u, got '%s'", what, min, max, v);
    return n;
}

/* A count from 1 to `max` (parse_range). */
static uint64_t parse_count(const struct ctx *c, const char *v, uint64_t max, const char *what) {
    return parse_range(c, v, 1, max, what);
}

/* "--flag=value" or "--flag value" (or the short form `shrt` and a value):
   returns the value when argv[*i] is `lng`, else NULL. */
static const char *match_flag(const struct ctx *c, int argc, char **argv, int *i, const char *lng, const char *shrt) {
    const char *a = argv[*i];
    if (cstr_eq(a, lng) || (shrt && cstr_eq(a, shrt))) return arg_value(c, argc, argv, i, lng);
    uint64_t n = cstr_len(lng);
    uint64_t k = 0;
    while (k < n && a[k] == lng[k]) k++;
    if (k == n && a[n] == '=') return a + n + 1;
    return 0;
}

/* `bytes` of zeroed memory aligned to `align` (a power of two), or exit
   with "out of memory for WHAT". plat_alloc aligns to PLAT_PAGE; more is
   made by rounding up. */
static void *alloc_aligned(const struct ctx *c, uint64_t bytes, uint64_t align, const char *what) {
    if (align < PLAT_PAGE) align = PLAT_PAGE;
    uint64_t extra = align - PLAT_PAGE;
    if (bytes > UINT64_MAX - extra) die(c, "out of memory for %s", what);
    uint8_t *mem = plat_alloc(bytes + extra);
    if (!mem) die(c, "out of memory for %s (%u bytes)", what, bytes);
    return mem + ((align - (uintptr_t)mem % align) % align);
}
