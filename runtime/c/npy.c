/*
 * NumPy .npy files in and out, and the entries of uncompressed .npz
 * archives.
 *
 * Reading accepts what `smelt run` accepts except byte order: headers of
 * versions 1 to 3 in the same strict grammar (see npy_parse_header), C order
 * (or Fortran order where the layout is the same), and exactly the
 * little-endian dtype and the shape the model declares for the input. The data is read straight into the
 * input's buffer. Writing produces version-1 headers padded so the data
 * starts at a multiple of 64 bytes, byte for byte what `smelt run` writes.
 */

/* Where bytes come from: an open file, or an .npz entry in memory. */
struct src {
    int fd;             /* -1 for memory */
    const uint8_t *mem; /* the entry's bytes */
    uint64_t len, pos;
    const char *label;  /* "x.npy", or "in.npz" (entry 'x.npy') for messages */
    const char *entry;  /* the .npz entry name, or NULL */
    const char *input;  /* the input being read, or NULL */
};

/* Reads up to n bytes; fewer only at the end of the data. */
static uint64_t src_read(const struct ctx *c, struct src *s, void *buf, uint64_t n) {
    if (s->fd < 0) {
        uint64_t k = s->len - s->pos < n ? s->len - s->pos : n;
        memcpy(buf, s->mem + s->pos, k);
        s->pos += k;
        return k;
    }
    uint64_t got = 0;
    while (got < n) {
        long k = plat_read(s->fd, (char *)buf + got, n - got);
        if (k < 0) {
            const char *why = plat_strerror(k);
            if (s->input) die(c, "input '%s': cannot read %s: %s", s->input, s->label, why ? why : "read error");
            die(c, "cannot read %s: %s", s->label, why ? why : "read error");
        }
        if (k == 0) break;
        got += (uint64_t)k;
    }
    return got;
}

/* Names the file (and the .npz entry) in messages. */
static void out_src(struct out *o, const struct src *s) {
    out_str(o, s->label);
    if (s->entry) {
        out_str(o, " (entry '");
        out_str(o, s->entry);
        out_str(o, "')");
    }
}

__attribute__((noreturn)) static void die_src(const struct ctx *c, const struct src *s, const char *input,
                                              const char *fmt, ...) {
    struct out o;
    err_start(&o, c);
    out_str(&o, "input '");
    out_str(&o, input);
    out_str(&o, "': ");
    out_src(&o, s);
    out_char(&o, ' ');
    va_list ap;
    va_start(ap, fmt);
    err_finish(&o, 1, fmt, ap);
}

#define MAX_RANK 32
#define MAX_NPY_HEADER (1u << 20)

/*
 * The header's dict literal, parsed with the grammar of `parse_header` in
 * frontend/src/npy.rs (so a compiled program and `smelt run` accept exactly
 * the same headers, and refuse what NumPy refuses): the keys 'descr',
 * 'fortran_order' and 'shape' once each in any order, a quoted descr
 * without escapes, True or False, a tuple of decimal dims (no sign, no
 * leading zeros, an optional Python 2 'L'; one dim needs its comma), an
 * optional trailing comma, then only spaces and final newlines. Spaces
 * are ' ' and '\t'.
 */
struct npy_header {
    char descr[16];
    int fortran;
    uint32_t rank;
    uint64_t dims[MAX_RANK];
};

static const char *hskip(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* A quoted string into `out` (at most cap - 1 bytes); the position after it, or NULL. */
static const char *hstring(const char *p, char *out, unsigned cap) {
    p = hskip(p);
    char q = *p;
    if (q != '\'' && q != '"') return 0;
    unsigned n = 0;
    for (p++; *p != q; p++) {
        if (!*p || *p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *p;
    }
    out[n] = 0;
    return p + 1;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* `word` as a whole word at p (after spaces); the position after it, or NULL. */
static const char *hword(const char *p, const char *word) {
    p = hskip(p);
    uint64_t n = 0;
    while (word[n] && p[n] == word[n]) n++; /* stops at the header's NUL */
    if (word[n] || is_alpha(p[n])) return 0;
    return p + n;
}

/* The shape tuple into `hd`; the position after it, or NULL (`*deep` set
   when it has more than MAX_RANK dims). */
static const char *hshape(const char *p, struct npy_header *hd, int *deep) {
    p = hskip(p);
    if (*p != '(') return 0;
    p++;
    uint32_t r = 0;
    for (;;) {
        p = hskip(p);
        if (*p == ')') {
            if (r == 1) return 0;
            break;
        }
        if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return 0;
        uint64_t d = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (d > ((uint64_t)INT64_MAX - 9) / 10) return 0;
            d = d * 10 + (uint64_t)(*p - '0');
        }
        if (*p == 'L') p++;
        if (r == MAX_RANK) {
            *deep = 1;
            return 0;
        }
        hd->dims[r++] = d;
        p = hskip(p);
        if (*p == ',') {
            p = hskip(p + 1);
            if (*p == ')') break;
            continue;
        }
        if (*p != ')' || r == 1) return 0;
        break;
    }
    hd->rank = r;
    return p + 1;
}

/* Parses the dict `h` into `hd`; NULL, or what is malformed. */
static const char *npy_parse_header(const char *h, struct npy_header *hd, int *deep) {
    const char *p = h;
    if (*p != '{') return "it is not a dict";
    p++;
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    for (;;) {
        p = hskip(p);
        if (*p == '}') {
            p++;
            break;
        }
        char key[16];
        p = hstring(p, key, sizeof key);
        if (!p) return "expected a quoted key";
        p = hskip(p);
        if (*p != ':') return "expected ':' after a key";
        p++;
        if (cstr_eq(key, "descr")) {
            if (have_descr++) return "'descr' is given twice";
            p = hstring(p, hd->descr, sizeof hd->descr);
            if (!p) return "'descr' is not a quoted dtype";
        } else if (cstr_eq(key, "fortran_order")) {
            if (have_fortran++) return "'fortran_order' is given twice";
            const char *t = hword(p, "True"), *f = hword(p, "False");
            if (!t && !f) return "'fortran_order' is not True or False";
            hd->fortran = t != 0;
            p = t ? t : f;
        } else if (cstr_eq(key, "shape")) {
            if (have_shape++) return "'shape' is given twice";
            p = hshape(p, hd, deep);
            if (!p) return "'shape' is not a tuple of dims";
        } else {
            return "unexpected key";
        }
        p = hskip(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') {
            p++;
            break;
        }
        return "expected ',' or '}'";
    }
    while (*p == ' ') p++;
    while (*p == '\n') p++;
    if (*p) return "text after the dict";
    if (!have_descr || !have_fortran || !have_shape) return "it needs 'descr', 'fortran_order' and 'shape'";
    return 0;
}

/*
 * Reads an .npy header from `s` and checks it against `info`; on success the
 * source is positioned at the data. Any mismatch is one error naming the
 * input, the file, what it holds and what the model takes.
 */
static void npy_read_header(const struct ctx *c, struct src *s, const smelt_tensor_info *info) {
    uint8_t pre[12];
    uint64_t n = src_read(c, s, pre, 10);
    if (n < 10 || memcmp(pre, "\x93NUMPY", 6) != 0) die_src(c, s, info->name, "is not a .npy file (bad magic)");
    uint64_t hlen;
    if (pre[6] == 1) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (src_read(c, s, pre + 10, 2) < 2) die_src(c, s, info->name, "has a truncated .npy header");
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    } else {
        die_src(c, s, info->name, "has unsupported .npy version %u", (uint64_t)pre[6]);
    }
    if (hlen > MAX_NPY_HEADER)
        die_src(c, s, info->name, "claims a %u-byte .npy header (at most %u)", hlen, (uint64_t)MAX_NPY_HEADER);
    char *h = plat_alloc(hlen + 1);
    if (!h) die(c, "out of memory");
    if (src_read(c, s, h, hlen) < hlen) die_src(c, s, info->name, "has a truncated .npy header");
    for (uint64_t i = 0; i < hlen; i++)
        if (h[i] == 0) die_src(c, s, info->name, "has a NUL byte in its .npy header");
    h[hlen] = 0;

    struct npy_header hd;
    int deep = 0;
    const char *bad = npy_parse_header(h, &hd, &deep);
    plat_free(h, hlen + 1);
    if (deep) die_src(c, s, info->name, "has more than %u dims", (uint64_t)MAX_RANK);
    if (bad) die_src(c, s, info->name, "has a malformed .npy header (%s)", bad);
    const char *descr = hd.descr;
    uint64_t dl = cstr_len(descr);
    uint32_t rank = hd.rank;
    const uint64_t *dims = hd.dims;
    int fortran = hd.fortran;
    const struct dtype_desc *want = dtype_find(info->dtype);
    const struct dtype_desc *got = 0;
    int big = 0;
    if (dl == 3 && (descr[0] == '<' || descr[0] == '|' || descr[0] == '>' || descr[0] == '=')) {
        for (unsigned i = 0; i < NUM_DTYPES; i++)
            if (DTYPES[i].descr[1] == descr[1] && DTYPES[i].descr[2] == descr[2]) got = &DTYPES[i];
        big = descr[0] == '>' && got && got->size > 1;
    }

    if (!got)
        die_src(c, s, info->name, "holds dtype '%s', which smelt does not read; the model takes %T ('%s')", descr,
                info->dtype, info->rank, info->dims, want->descr);
    int same = got == want && rank == info->rank;
    for (uint32_t i = 0; same && i < rank; i++) same = dims[i] == info->dims[i];
    if (!same)
        die_src(c, s, info->name, "holds %T but the model takes %T", got->code, rank, dims, info->dtype,
                info->rank, info->dims);
    if (big)
        die_src(c, s, info->name, "is big-endian ('%s'); save it little-endian (a.astype('%s'))", descr,
                want->descr);
    unsigned above_one = 0;
    for (uint32_t i = 0; i < rank; i++) above_one += dims[i] > 1;
    if (fortran && above_one > 1)
        die_src(c, s, info->name,
                "is in Fortran order; save a C-order array (np.ascontiguousarray)");
}

/* Reads an input's .npy image from `s` into `dst` (info->bytes bytes). */
static void npy_load(const struct ctx *c, struct src *s, const smelt_tensor_info *info, void *dst) {
    npy_read_header(c, s, info);
    uint64_t got = src_read(c, s, dst, info->bytes);
    if (got < info->bytes)
        die_src(c, s, info->name, "holds %u data bytes but %T needs %u", got, info->dtype, info->rank, info->dims,
                info->bytes);
    uint8_t extra;
    if (src_read(c, s, &extra, 1))
        die_src(c, s, info->name, "holds more data than %T needs (%u bytes)", info->dtype, info->rank, info->dims,
                info->bytes);
    if (info->dtype == SMELT_DTYPE_BOOL) {
        const uint8_t *b = dst;
        for (uint64_t i = 0; i < info->bytes; i++)
            if (b[i] > 1) die_src(c, s, info->name, "holds %u at element %u, which is not a bool (0 or 1)",
                                  (uint64_t)b[i], i);
    }
}

/* The version-1 .npy header of an output, as `smelt run` writes it: the
   dict, spaces, and '\n', so the data starts at a multiple of 64 bytes.
   Returns the header's length; `buf` needs 64 + 64 + 21 * rank bytes. */
static uint64_t npy_header(char *buf, const smelt_tensor_info *info) {
    struct out o; /* rank is bounded, so the dict always fits */
    out_open(&o, OUT_MEMORY);
    out_str(&o, "{'descr': '");
    out_str(&o, dtype_find(info->dtype)->descr);
    out_str(&o, "', 'fortran_order': False, 'shape': (");
    for (uint32_t i = 0; i < info->rank; i++) {
        if (i) out_str(&o, ", ");
        out_u64(&o, info->dims[i]);
    }
    out_str(&o, info->rank == 1 ? ",), }" : "), }");
    uint64_t dict = o.len;
    uint64_t total = 6 + 4 + dict + 1;
    uint64_t pad = (64 - total % 64) % 64;
    uint64_t hlen = dict + pad + 1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, o.buf, dict);
    memset(buf + 10 + dict, ' ', pad);
    buf[10 + dict + pad] = '\n';
    return 10 + hlen;
}
