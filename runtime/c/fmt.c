/*
 * Formatted output without libc: a buffered writer over a file descriptor and
 * a small printf for messages.
 *
 * Conversions of out_printf: %s (C string), %u (uint64_t), %d (int64_t), %c,
 * %% and %T (a tensor type: dtype code, rank and dims pointer as three
 * arguments, printed like "f32[2, 3]", the way smelt prints types).
 */

/* A writer to a file descriptor, or with fd OUT_MEMORY a formatter into
   `buf` alone: what does not fit is dropped and `truncated` set, so a caller
   building a path or a header can refuse rather than use a cut string. */
struct out {
    int fd;
    unsigned len;
    char buf[4096];
    int truncated;
};

#define OUT_MEMORY (-1)

static void out_open(struct out *o, int fd) {
    o->fd = fd;
    o->len = 0;
    o->truncated = 0;
}

static void write_all(int fd, const void *p, uint64_t n) {
    const char *c = p;
    while (n) {
        long k = plat_write(fd, c, n);
        if (k <= 0) return; /* nowhere to report a failing stdout or stderr */
        c += k;
        n -= (uint64_t)k;
    }
}

static void out_flush(struct out *o) {
    write_all(o->fd, o->buf, o->len);
    o->len = 0;
}

static void out_bytes(struct out *o, const char *p, uint64_t n) {
    if (o->fd == OUT_MEMORY && n > sizeof o->buf - o->len) {
        n = sizeof o->buf - o->len;
        o->truncated = 1;
    }
    if (n > sizeof o->buf - o->len) {
        out_flush(o);
        if (n > sizeof o->buf) {
            write_all(o->fd, p, n);
            return;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += (unsigned)n;
}

static uint64_t cstr_len(const char *s) {
    uint64_t n = 0;
    while (s[n]) n++;
    return n;
}

static int cstr_eq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void out_str(struct out *o, const char *s) { out_bytes(o, s, cstr_len(s)); }
static void out_char(struct out *o, char c) { out_bytes(o, &c, 1); }

static void out_u64(struct out *o, uint64_t v) {
    char tmp[20];
    int i = 20;
    do tmp[--i] = (char)('0' + v % 10); while (v /= 10);
    out_bytes(o, tmp + i, (uint64_t)(20 - i));
}

static void out_i64(struct out *o, int64_t v) {
    if (v < 0) {
        out_char(o, '-');
        out_u64(o, 0 - (uint64_t)v);
    } else {
        out_u64(o, (uint64_t)v);
    }
}

/* `digits` decimal digits of v, with leading zeros. */
static void out_u64_padded(struct out *o, uint64_t v, int digits) {
    char tmp[20];
    for (int i = digits - 1; i >= 0; i--, v /= 10) tmp[i] = (char)('0' + v % 10);
    out_bytes(o, tmp, (uint64_t)digits);
}

/*
 * A double for humans, six decimals like Rust's `{:.6}` (which `smelt run`
 * uses) for magnitudes from 0.001 to 10^10, otherwise scientific like
 * `{:.6e}` ("1.234568e-7"). The integer part is exact and the last decimal
 * may differ from a correctly rounded conversion by one unit, which only a
 * bignum formatter would avoid.
 */
static void out_f64(struct out *o, double x) {
    if (x != x) {
        out_str(o, "NaN");
        return;
    }
    union { double f; uint64_t i; } u = {x};
    if (u.i >> 63) out_char(o, '-');
    u.i &= ~(1ULL << 63);
    double a = u.f;
    if (a == 1.0 / 0.0) {
        out_str(o, "inf");
        return;
    }
    if (a == 0 || (a >= 1e-3 && a < 1e10)) {
        uint64_t ip = (uint64_t)a; /* exact: a < 2^34 */
        uint64_t frac = (uint64_t)((a - (double)ip) * 1e6 + 0.5);
        if (frac >= 1000000) ip++, frac -= 1000000;
        out_u64(o, ip);
        out_char(o, '.');
        out_u64_padded(o, frac, 6);
        return;
    }
    /* Scientific: bring a into [1, 10) with few multiplications (binary
       powers of ten) to keep the error at a few units in the last place. */
    static const double pow10[9] = {1e1, 1e2, 1e4, 1e8, 1e16, 1e32, 1e64, 1e128, 1e256};
    int e10 = 0;
    if (a < 1e-300) a *= 1e16, e10 -= 16; /* out of the subnormal range */
    for (int k = 8; k >= 0; k--) {
        if (a >= pow10[k]) a /= pow10[k], e10 += 1 << k;
    }
    for (int k = 8; k >= 0; k--) {
        if (a * pow10[k] < 10) a *= pow10[k], e10 -= 1 << k;
    }
    uint64_t m = (uint64_t)(a * 1e6 + 0.5); /* 7 significant digits */
    if (m >= 10000000) m /= 10, e10++;
    out_u64(o, m / 1000000);
    out_char(o, '.');
    out_u64_padded(o, m % 1000000, 6);
    out_char(o, 'e');
    out_i64(o, e10);
}

/* The dtype table: ONNX code, name, size, little-endian NumPy descr. */
struct dtype_desc {
    uint32_t code;
    const char *name;
    uint32_t size;
    const char *descr;
};

static const struct dtype_desc DTYPES[] = {
    {SMELT_DTYPE_F32, "f32", 4, "<f4"},   {SMELT_DTYPE_U8, "u8", 1, "|u1"},
    {SMELT_DTYPE_I8, "i8", 1, "|i1"},     {SMELT_DTYPE_U16, "u16", 2, "<u2"},
    {SMELT_DTYPE_I16, "i16", 2, "<i2"},   {SMELT_DTYPE_I32, "i32", 4, "<i4"},
    {SMELT_DTYPE_I64, "i64", 8, "<i8"},   {SMELT_DTYPE_BOOL, "bool", 1, "|b1"},
    {SMELT_DTYPE_F16, "f16", 2, "<f2"},   {SMELT_DTYPE_F64, "f64", 8, "<f8"},
    {SMELT_DTYPE_U32, "u32", 4, "<u4"},   {SMELT_DTYPE_U64, "u64", 8, "<u8"},
    /* NumPy has no bfloat16; smelt writes and reads it as 2-byte void. */
    {SMELT_DTYPE_BF16, "bf16", 2, "<V2"},
};
#define NUM_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

static const struct dtype_desc *dtype_find(uint32_t code) {
    for (unsigned i = 0; i < NUM_DTYPES; i++)
        if (DTYPES[i].code == code) return &DTYPES[i];
    return 0;
}

static void out_type(struct out *o, uint32_t dtype, uint32_t rank, const uint64_t *dims) {
    const struct dtype_desc *d = dtype_find(dtype);
    if (d) {
        out_str(o, d->name);
    } else {
        out_str(o, "dtype");
        out_u64(o, dtype);
    }
    out_char(o, '[');
    for (uint32_t i = 0; i < rank; i++) {
        if (i) out_str(o, ", ");
        out_u64(o, dims[i]);
    }
    out_char(o, ']');
}

static void out_vprintf(struct out *o, const char *fmt, va_list ap) {
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            const char *q = p;
            while (q[1] && q[1] != '%') q++;
            out_bytes(o, p, (uint64_t)(q - p + 1));
            p = q;
            continue;
        }
        switch (*++p) {
        case 's': out_str(o, va_arg(ap, const char *)); break;
        case 'u': out_u64(o, va_arg(ap, uint64_t)); break;
        case 'd': out_i64(o, va_arg(ap, int64_t)); break;
        case 'c': out_char(o, (char)va_arg(ap, int)); break;
        case 'T': {
            uint32_t dtype = va_arg(ap, uint32_t);
            uint32_t rank = va_arg(ap, uint32_t);
            const uint64_t *dims = va_arg(ap, const uint64_t *);
            out_type(o, dtype, rank, dims);
            break;
        }
        case '%': out_char(o, '%'); break;
        default: return; /* a bug in a format string; also stops at a trailing '%' */
        }
    }
}

static void out_printf(struct out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    out_vprintf(o, fmt, ap);
    va_end(ap);
}

/* The program name for messages (set once by smelt_main). */
struct ctx {
    const char *prog;
};

/* Starts a message "PROG: error: " on stderr in `o`. */
static void err_start(struct out *o, const struct ctx *c) {
    out_open(o, PLAT_STDERR);
    out_str(o, c->prog);
    out_str(o, ": error: ");
}

/* Ends the message begun in `o` with `fmt` and `ap` and a newline, and exits
   with `status`. */
__attribute__((noreturn)) static void err_finish(struct out *o, int status, const char *fmt, va_list ap) {
    out_vprintf(o, fmt, ap);
    out_char(o, '\n');
    out_flush(o);
    plat_exit(status);
}

/* Prints "PROG: error: MESSAGE" on stderr and exits with `status`. */
__attribute__((noreturn)) static void die_status(const struct ctx *c, int status, const char *fmt, ...) {
    struct out o;
    err_start(&o, c);
    va_list ap;
    va_start(ap, fmt);
    err_finish(&o, status, fmt, ap);
}

#define die(c, ...) die_status(c, 1, __VA_ARGS__)

/* The exit status of a run that failed a run-time check (a bad index or
   token id in the inputs): distinct from 1 (any other error) and from the
   firmware's 70 (a fault exception), so scripts can tell them apart. */
#define EXIT_OUT_OF_RANGE 65

/* Prints "PROG: error: node 'NAME' (OP): index V out of range [LO, HI)" for
   the failed check `f` of model `m` and exits with EXIT_OUT_OF_RANGE. */
__attribute__((noreturn)) static void die_fault(const struct ctx *c, const smelt_model_info *m, const smelt_fault *f) {
    if (m && f->check < m->num_checks) {
        const smelt_check_info *k = &m->checks[f->check];
        die_status(c, EXIT_OUT_OF_RANGE, "node '%s' (%s): %s %d out of range [%d, %d)", k->node, k->op, k->what,
                   f->value, f->lo, f->hi);
    }
    die_status(c, EXIT_OUT_OF_RANGE, "run-time check %u failed: value %d out of range [%d, %d)", (uint64_t)f->check,
               f->value, f->lo, f->hi);
}
