/*
 * The program around a compiled model: `./model --input NAME=FILE.npy ...
 * [-o DIR] [--bench N] [--steps N] [--step-input NAME]`, the command line of
 * `smelt run` (and `--step-input`, which only the executable has so far).
 *
 * It checks the model's tables, reads every input into page-aligned memory
 * (checking dtype and shape against smelt_model.inputs), allocates outputs,
 * the arena and (once) the state buffer, which smelt_model_init fills, calls
 * smelt_model_run --steps times (setting the --step-input input to its step
 * number before each), and writes DIR/<name>.npy per output
 * or prints a summary line per output. Every failure is one line on stderr,
 * "PROG: error: ...", with exit status 1 (2 for a malformed command line,
 * EXIT_OUT_OF_RANGE = 65 for a run that failed a run-time check: "node
 * 'embed' (Gather): index 40000 out of range [-30522, 30522)").
 */

static void usage(const struct ctx *c, struct out *o) {
    const smelt_model_info *m = &smelt_model;
    out_printf(o, "%s: the compiled model %s\n\n", c->prog, m->model_name ? m->model_name : "(unnamed)");
    out_printf(o, "usage: %s --input NAME=FILE.npy ... [-o DIR] [--bench N]\n", c->prog);
    out_printf(o, "       %s --input FILE.npz [-o DIR] [--bench N]\n\n", c->prog);
    out_str(o, "inputs:\n");
    for (uint32_t i = 0; i < m->num_inputs; i++) {
        const smelt_tensor_info *t = &m->inputs[i];
        out_printf(o, "  %s: %T\n", t->name, t->dtype, t->rank, t->dims);
    }
    out_str(o, "outputs:\n");
    for (uint32_t i = 0; i < m->num_outputs; i++) {
        const smelt_tensor_info *t = &m->outputs[i];
        out_printf(o, "  %s: %T\n", t->name, t->dtype, t->rank, t->dims);
    }
    out_printf(o, "arena: %u bytes\n", m->arena_bytes);
    if (m->state_bytes) out_printf(o, "state: %u bytes, carried from one step to the next\n", m->state_bytes);
    out_str(o, "\n");
    out_str(o,
            "options:\n"
            "  -i, --input NAME=FILE.npy  an input: little-endian, C order, the dtype and shape above (repeatable)\n"
            "  -i, --input FILE.npz       inputs by name from an uncompressed .npz (np.savez)\n"
            "  -o, --output-dir DIR       write DIR/<output name>.npy per output (DIR is created if missing);\n"
            "                             without it, print one summary line per output\n"
            "      --bench N              after one warm-up run, run N times and print min and median latency\n"
            "      --steps N              run N steps on the same inputs (a stateful model carries its state\n"
            "                             from each to the next) and write the last step's outputs (default 1)\n"
            "      --step-input NAME      set integer input NAME (one element) to P + k before step k = 0, 1, ...,\n"
            "                             where P is its --input value (0 without one): a decoder's position\n"
            "      --threads N            run parallel loops on at most N threads (default: the count the model\n"
            "                             was compiled with, smelt compile --threads)\n"
            "  -h, --help                 print this\n");
}

/* Checks the tables the code generator wrote, once, before trusting them. */
static void check_model(const struct ctx *c) {
    const smelt_model_info *m = &smelt_model;
    if (m->abi_version != SMELT_ABI_VERSION)
        die(c, "the model was compiled for runtime ABI %u, this runtime implements ABI %u; recompile it with this smelt",
            (uint64_t)m->abi_version, (uint64_t)SMELT_ABI_VERSION);
    if (m->arena_align == 0 || (m->arena_align & (m->arena_align - 1)))
        die(c, "internal error: the model's arena alignment %u is not a power of two", m->arena_align);
    if (m->state_bytes && (m->state_align == 0 || (m->state_align & (m->state_align - 1))))
        die(c, "internal error: the model's state alignment %u is not a power of two", m->state_align);
    if (m->num_checks && !m->checks) die(c, "internal error: the model lists %u checks but no table", (uint64_t)m->num_checks);
    for (uint32_t k = 0; k < m->num_inputs + m->num_outputs; k++) {
        const smelt_tensor_info *t = k < m->num_inputs ? &m->inputs[k] : &m->outputs[k - m->num_inputs];
        const struct dtype_desc *d = dtype_find(t->dtype);
        if (!d) die(c, "internal error: tensor '%s' has unknown dtype code %u", t->name, (uint64_t)t->dtype);
        if (t->rank > MAX_RANK) die(c, "tensor '%s' has rank %u; this runtime handles up to %u", t->name,
                                    (uint64_t)t->rank, (uint64_t)MAX_RANK);
        uint64_t bytes = d->size;
        for (uint32_t i = 0; i < t->rank; i++) {
            if (t->dims[i] && bytes > UINT64_MAX / t->dims[i])
                die(c, "internal error: tensor '%s' is too large", t->name);
            bytes *= t->dims[i];
        }
        if (bytes != t->bytes)
            die(c, "internal error: tensor '%s' (%T) records %u bytes, not %u", t->name, t->dtype, t->rank, t->dims,
                t->bytes, bytes);
    }
}

/* One --input argument: NAME=FILE.npy, or FILE.npz. */
struct input_arg {
    const char *name; /* NULL for .npz */
    const char *path;
};

static int ends_with(const char *s, const char *suffix) {
    uint64_t n = cstr_len(s), k = cstr_len(suffix);
    return n >= k && cstr_eq(s + n - k, suffix);
}

static int64_t find_input(const char *name) {
    for (uint32_t i = 0; i < smelt_model.num_inputs; i++)
        if (cstr_eq(smelt_model.inputs[i].name, name)) return i;
    return -1;
}

__attribute__((noreturn)) static void die_unknown(const struct ctx *c, const char *name) {
    struct out o;
    out_open(&o, PLAT_STDERR);
    out_printf(&o, "%s: error: the model has no input '%s' (its inputs: ", c->prog, name);
    for (uint32_t i = 0; i < smelt_model.num_inputs; i++)
        out_printf(&o, "%s%s", i ? ", " : "", smelt_model.inputs[i].name);
    if (!smelt_model.num_inputs) out_str(&o, "none");
    out_str(&o, ")\n");
    out_flush(&o);
    plat_exit(1);
}

/* Claims input `name` for one source; refuses unknown and repeated names. */
static uint32_t claim_input(const struct ctx *c, const char *name, uint8_t *given) {
    int64_t i = find_input(name);
    if (i < 0) die_unknown(c, name);
    if (given[i]) die(c, "input '%s' is given twice", name);
    given[i] = 1;
    return (uint32_t)i;
}

/* A copy of a tensor name fit for a file name: characters other than ASCII
   letters, digits, '-', '_' and '.' become '_', and an empty name or one
   starting with '.' gets a '_' in front (the rule of `smelt run`). */
static void safe_file_name(struct out *o, const char *name) {
    if (!*name || *name == '.') out_char(o, '_');
    for (const char *p = name; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                 ch == '_' || ch == '.';
        /* A multi-byte UTF-8 character is one character: one '_'. */
        if (!ok && ((unsigned char)ch & 0xc0) == 0x80) continue;
        out_char(o, ok ? ch : '_');
    }
}

/* DIR/<safe name>.npy into a fresh buffer. */
static char *output_path(const struct ctx *c, const char *dir, const char *name) {
    struct out o;
    out_open(&o, OUT_MEMORY);
    out_str(&o, dir);
    if (o.len && o.buf[o.len - 1] != '/') out_char(&o, '/');
    safe_file_name(&o, name);
    out_str(&o, ".npy");
    if (o.truncated) die(c, "the output path for '%s' is longer than %u bytes", name, (uint64_t)sizeof o.buf);
    char *p = plat_alloc(o.len + 1);
    if (!p) die(c, "out of memory");
    memcpy(p, o.buf, o.len);
    p[o.len] = 0;
    return p;
}

/* mkdir -p. */
static void make_dirs(const struct ctx *c, const char *dir) {
    uint64_t n = cstr_len(dir);
    char *p = plat_alloc(n + 1);
    if (!p) die(c, "out of memory");
    memcpy(p, dir, n + 1);
    for (uint64_t i = 1; i < n; i++) {
        if (p[i] != '/') continue;
        p[i] = 0;
        plat_mkdir(p); /* failures surface at the last level or when writing */
        p[i] = '/';
    }
    int r = plat_mkdir(p);
    if (r < 0 && r != PLAT_EEXIST) {
        const char *why = plat_strerror(r);
        die(c, "cannot create the output directory %s: %s", dir, why ? why : "mkdir failed");
    }
    plat_free(p, n + 1);
}

static void write_output(const struct ctx *c, const char *path, const smelt_tensor_info *t, const void *data) {
    char header[64 + 64 + 21 * MAX_RANK];
    uint64_t hn = npy_header(header, t);
    int fd = plat_open_write(path);
    if (fd < 0) {
        const char *why = plat_strerror(fd);
        die(c, "cannot write %s: %s", path, why ? why : "open failed");
    }
    for (int part = 0; part < 2; part++) {
        const char *p = part ? data : header;
        uint64_t n = part ? t->bytes : hn;
        while (n) {
            long k = plat_write(fd, p, n);
            if (k <= 0) {
                const char *why = k < 0 ? plat_strerror(k) : 0;
                die(c, "cannot write %s: %s", path, why ? why : "write failed");
            }
            p += k;
            n -= (uint64_t)k;
        }
    }
    plat_close(fd);
}

/* Element i of a tensor as a double, for summaries. */
static double elem_f64(uint32_t dtype, const void *data, uint64_t i) {
    const uint8_t *b = (const uint8_t *)data;
    union { uint32_t u; float f; } w;
    union { uint64_t u; double f; } d;
    switch (dtype) {
    case SMELT_DTYPE_F32: memcpy(&w.f, b + 4 * i, 4); return w.f;
    case SMELT_DTYPE_F64: memcpy(&d.f, b + 8 * i, 8); return d.f;
    case SMELT_DTYPE_BF16: w.u = (uint32_t)le16(b + 2 * i) << 16; return w.f;
    case SMELT_DTYPE_F16: {
        uint32_t h = le16(b + 2 * i), sign = h >> 15, e = h >> 10 & 31, m = h & 1023;
        double v;
        if (e == 31) v = m ? 0.0 / 0.0 : 1.0 / 0.0;
        else if (e == 0) v = m * 0x1p-24;
        else v = (1024 + m) * (double)(1ULL << e) * 0x1p-25;
        return sign ? -v : v;
    }
    case SMELT_DTYPE_U8: case SMELT_DTYPE_BOOL: return b[i];
    case SMELT_DTYPE_I8: return (int8_t)b[i];
    case SMELT_DTYPE_U16: return le16(b + 2 * i);
    case SMELT_DTYPE_I16: return (int16_t)le16(b + 2 * i);
    case SMELT_DTYPE_U32: return le32(b + 4 * i);
    case SMELT_DTYPE_I32: return (int32_t)le32(b + 4 * i);
    case SMELT_DTYPE_U64: return (double)le64(b + 8 * i);
    case SMELT_DTYPE_I64: return (double)(int64_t)le64(b + 8 * i);
    default: return 0;
    }
}

static int is_float(uint32_t dtype) {
    return dtype == SMELT_DTYPE_F32 || dtype == SMELT_DTYPE_F64 || dtype == SMELT_DTYPE_F16 ||
           dtype == SMELT_DTYPE_BF16;
}

/* Integer elements exactly (u64 above 2^63 wraps, which only the summary sees). */
static void out_elem(struct out *o, uint32_t dtype, const void *data, uint64_t i) {
    const uint8_t *b = (const uint8_t *)data;
    if (dtype == SMELT_DTYPE_I64) out_i64(o, (int64_t)le64(b + 8 * i));
    else if (dtype == SMELT_DTYPE_U64) out_u64(o, le64(b + 8 * i));
    else if (is_float(dtype)) out_f64(o, elem_f64(dtype, data, i));
    else out_i64(o, (int64_t)elem_f64(dtype, data, i));
}

/* "name: f32[2, 3] min .. max .. mean .. [first values]", like `smelt run`. */
static void summary(struct out *o, const smelt_tensor_info *t, const void *data) {
    uint64_t n = t->bytes / dtype_find(t->dtype)->size;
    out_printf(o, "%s: %T", t->name, t->dtype, t->rank, t->dims);
    if (n == 0) {
        out_str(o, " (empty)\n");
        return;
    }
    uint64_t imin = 0, imax = 0;
    double lo = 0, hi = 0, sum = 0;
    int have = 0;
    for (uint64_t i = 0; i < n; i++) {
        double v = elem_f64(t->dtype, data, i);
        sum += v;
        if (v != v) continue; /* NaN: min and max skip it, the mean shows it */
        if (!have || v < lo) lo = v, imin = i;
        if (!have || v > hi) hi = v, imax = i;
        have = 1;
    }
    out_str(o, " min ");
    if (have) out_elem(o, t->dtype, data, imin); else out_str(o, "NaN");
    out_str(o, " max ");
    if (have) out_elem(o, t->dtype, data, imax); else out_str(o, "NaN");
    out_str(o, " mean ");
    out_f64(o, sum / (double)n);
    out_str(o, " [");
    for (uint64_t i = 0; i < n && i < 6; i++) {
        if (i) out_str(o, ", ");
        out_elem(o, t->dtype, data, i);
    }
    out_str(o, n > 6 ? ", \xe2\x80\xa6]\n" : "]\n");
}

/* A duration in nanoseconds with a readable unit, exactly. */
static void out_duration(struct out *o, uint64_t ns) {
    if (ns < 1000) {
        out_printf(o, "%u ns", ns);
        return;
    }
    static const char *const units[3] = {" us", " ms", " s"};
    uint64_t scale = 1000;
    int u = 0;
    while (u < 2 && ns >= scale * 1000) scale *= 1000, u++;
    out_u64(o, ns / scale);
    out_char(o, '.');
    out_u64_padded(o, (ns % scale) / (scale / 1000), 3);
    out_str(o, units[u]);
}

/* Heapsort: O(n log n), no recursion, no allocation. */
static void sift_down(uint64_t *a, uint64_t root, uint64_t n) {
    for (uint64_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && a[child + 1] > a[child]) child++;
        if (a[root] >= a[child]) return;
        uint64_t t = a[root];
        a[root] = a[child];
        a[child] = t;
    }
}

static void sort_u64(uint64_t *a, uint64_t n) {
    for (uint64_t i = n / 2; i-- > 0;) sift_down(a, i, n);
    for (uint64_t end = n; end-- > 1;) {
        uint64_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

/* A one-element integer input that counts the steps (--step-input). */
struct step_input {
    uint8_t *data; /* NULL without --step-input */
    uint32_t size; /* bytes of its one element */
    int64_t start; /* its value in step 0 */
};

/* Whether `dtype` is an integer type (bool is not: it cannot count). */
static int is_int(uint32_t dtype) {
    switch (dtype) {
    case SMELT_DTYPE_U8: case SMELT_DTYPE_I8: case SMELT_DTYPE_U16: case SMELT_DTYPE_I16:
    case SMELT_DTYPE_U32: case SMELT_DTYPE_I32: case SMELT_DTYPE_U64: case SMELT_DTYPE_I64: return 1;
    default: return 0;
    }
}

/* The index of the --step-input input `name`, checked: an input of one
   integer element. */
static uint32_t check_step_input(const struct ctx *c, const char *name) {
    int64_t i = find_input(name);
    if (i < 0) die_unknown(c, name);
    const smelt_tensor_info *t = &smelt_model.inputs[i];
    if (!is_int(t->dtype) || t->bytes != dtype_find(t->dtype)->size)
        die_status(c, 2, "--step-input %s: the input is %T; it must be one integer element", name, t->dtype, t->rank,
                   t->dims);
    return (uint32_t)i;
}

/* Input `i` as the step input: a zero buffer when no --input gave it a
   value, and its start value. */
static struct step_input step_input(const struct ctx *c, uint32_t i, void **in, const uint8_t *given) {
    const smelt_tensor_info *t = &smelt_model.inputs[i];
    struct step_input s = {0, (uint32_t)t->bytes, 0};
    if (!given[i] && !(in[i] = plat_alloc(t->bytes))) die(c, "out of memory for input '%s'", t->name);
    s.data = in[i];
    /* Little-endian, sign-extended for the signed types. */
    uint64_t v = 0;
    for (uint32_t b = 0; b < s.size; b++) v |= (uint64_t)s.data[b] << (8 * b);
    int is_signed = t->dtype == SMELT_DTYPE_I8 || t->dtype == SMELT_DTYPE_I16 || t->dtype == SMELT_DTYPE_I32;
    if (is_signed && s.size < 8 && (v >> (8 * s.size - 1)) & 1) v |= ~(uint64_t)0 << (8 * s.size);
    s.start = (int64_t)v;
    return s;
}

/* Stores start + k in the step input, little-endian, modulo its width. */
static void set_step(const struct step_input *s, uint64_t k) {
    uint64_t v = (uint64_t)s->start + k;
    for (uint32_t b = 0; b < s->size; b++) s->data[b] = (uint8_t)(v >> (8 * b));
}

/* The state buffer, allocated once and aligned like the arena; NULL for a
   stateless model. */
static void *alloc_state(const struct ctx *c) {
    const smelt_model_info *m = &smelt_model;
    if (!m->state_bytes) return 0;
    return alloc_aligned(c, m->state_bytes, m->state_align, "the state");
}

static int smelt_main(int argc, char **argv) {
    struct ctx cx = {"model"};
    const struct ctx *c = &cx;
    if (argc > 0 && argv[0] && argv[0][0]) {
        cx.prog = argv[0];
        for (const char *p = argv[0]; *p; p++)
            if (*p == '/' && p[1]) cx.prog = p + 1;
    }
    check_model(c);
    const smelt_model_info *m = &smelt_model;

    struct out o;
    out_open(&o, PLAT_STDOUT);
    if (argc <= 1) {
        usage(c, &o);
        out_flush(&o);
        return 0;
    }

    struct input_arg *args = plat_alloc((uint64_t)argc * sizeof *args);
    if (!args) die(c, "out of memory");
    int nargs = 0;
    const char *outdir = 0, *step_name = 0;
    uint64_t bench = 0, steps = 1;
    int benching = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cstr_eq(a, "-h") || cstr_eq(a, "--help")) {
            usage(c, &o);
            out_flush(&o);
            return 0;
        } else if ((v = match_flag(c, argc, argv, &i, "--input", "-i"))) {
            const char *eq = v;
            while (*eq && *eq != '=') eq++;
            if (*eq == '=' && eq != v) {
                uint64_t n = (uint64_t)(eq - v);
                char *name = plat_alloc(n + 1);
                if (!name) die(c, "out of memory");
                memcpy(name, v, n);
                name[n] = 0;
                args[nargs].name = name;
                args[nargs++].path = eq + 1;
            } else if (ends_with(v, ".npz")) {
                args[nargs].name = 0;
                args[nargs++].path = v;
            } else {
                die_status(c, 2, "--input takes NAME=FILE.npy or FILE.npz, got '%s'", v);
            }
        } else if ((v = match_flag(c, argc, argv, &i, "--output-dir", "-o"))) {
            outdir = v;
        } else if ((v = match_flag(c, argc, argv, &i, "--bench", 0))) {
            bench = parse_count(c, v, 100000000, "--bench takes a run count");
            benching = 1;
        } else if ((v = match_flag(c, argc, argv, &i, "--steps", 0))) {
            steps = parse_count(c, v, 100000000, "--steps takes a step count");
        } else if ((v = match_flag(c, argc, argv, &i, "--step-input", 0))) {
            if (step_name) die_status(c, 2, "--step-input is given twice");
            step_name = v;
        } else if ((v = match_flag(c, argc, argv, &i, "--threads", 0))) {
            plat_set_thread_cap((uint32_t)parse_count(c, v, 256, "--threads takes a thread count"));
        } else {
            die_status(c, 2, "unexpected argument '%s'; run with --help for usage", a);
        }
    }

    /* Inputs: resolve names first (unknown and repeated ones), then make
       sure every input has a value, then read the files. */
    uint8_t *given = plat_alloc(m->num_inputs + 1);
    void **in = plat_alloc(((uint64_t)m->num_inputs + 1) * sizeof(void *));
    if (!given || !in) die(c, "out of memory");
    struct npz *npzs = plat_alloc((uint64_t)nargs * sizeof(struct npz) + 1);
    if (!npzs) die(c, "out of memory");
    for (int k = 0; k < nargs; k++) {
        if (args[k].name) {
            claim_input(c, args[k].name, given);
        } else {
            npz_open(c, args[k].path, &npzs[k]);
            for (uint64_t e = 0; e < npzs[k].count; e++) claim_input(c, npzs[k].entries[e].name, given);
        }
    }
    /* The step input may be missing from --input: it starts at 0. */
    int64_t step_i = step_name ? (int64_t)check_step_input(c, step_name) : -1;
    int missing = 0;
    for (uint32_t i = 0; i < m->num_inputs; i++) missing += !given[i] && (int64_t)i != step_i;
    if (missing) {
        struct out e;
        out_open(&e, PLAT_STDERR);
        out_printf(&e, "%s: error: no value for input(s) ", c->prog);
        for (uint32_t i = 0, k = 0; i < m->num_inputs; i++)
            if (!given[i] && (int64_t)i != step_i) out_printf(&e, "%s%s", k++ ? ", " : "", m->inputs[i].name);
        out_str(&e, "; give --input NAME=FILE.npy\n");
        out_flush(&e);
        return 1;
    }
    for (int k = 0; k < nargs; k++) {
        if (args[k].name) {
            uint32_t i = (uint32_t)find_input(args[k].name);
            const smelt_tensor_info *t = &m->inputs[i];
            if (!(in[i] = plat_alloc(t->bytes))) die(c, "out of memory for input '%s' (%u bytes)", t->name, t->bytes);
            int fd = plat_open_read(args[k].path);
            if (fd < 0) {
                const char *why = plat_strerror(fd);
                die(c, "input '%s': cannot open %s: %s", t->name, args[k].path, why ? why : "open failed");
            }
            struct src s = {fd, 0, 0, 0, args[k].path, 0, t->name};
            npy_load(c, &s, t, in[i]);
            plat_close(fd);
        } else {
            struct npz *z = &npzs[k];
            for (uint64_t e = 0; e < z->count; e++) {
                uint32_t i = (uint32_t)find_input(z->entries[e].name);
                const smelt_tensor_info *t = &m->inputs[i];
                if (!(in[i] = plat_alloc(t->bytes)))
                    die(c, "out of memory for input '%s' (%u bytes)", t->name, t->bytes);
                struct src s = {-1, z->entries[e].data, z->entries[e].len, 0, args[k].path, z->entries[e].name, t->name};
                npy_load(c, &s, t, in[i]);
            }
            npz_free_data(z);
        }
    }

    /* Output paths before running, so that clashes are reported early. */
    char **paths = plat_alloc(((uint64_t)m->num_outputs + 1) * sizeof(char *));
    void **out = plat_alloc(((uint64_t)m->num_outputs + 1) * sizeof(void *));
    if (!paths || !out) die(c, "out of memory");
    for (uint32_t i = 0; i < m->num_outputs; i++) {
        const smelt_tensor_info *t = &m->outputs[i];
        if (!(out[i] = plat_alloc(t->bytes))) die(c, "out of memory for output '%s' (%u bytes)", t->name, t->bytes);
        if (!outdir) continue;
        paths[i] = output_path(c, outdir, t->name);
        for (uint32_t j = 0; j < i; j++)
            if (cstr_eq(paths[i], paths[j]))
                die(c, "outputs '%s' and '%s' map to the same file %s", m->outputs[j].name, t->name, paths[i]);
    }

    void *arena = alloc_aligned(c, m->arena_bytes, m->arena_align, "the arena");
    void *state = alloc_state(c);
    smelt_model_init(state);
    /* After the files are read, so a given start value is known. */
    struct step_input si = {0, 0, 0};
    if (step_i >= 0) si = step_input(c, (uint32_t)step_i, in, given);

    smelt_fault fault;
    for (uint64_t k = 0; k < steps; k++) {
        if (si.data) set_step(&si, k);
        if (smelt_model_run((const void *const *)in, (void *const *)out, arena, state, &fault) != SMELT_STATUS_OK)
            die_fault(c, m, &fault);
    }
    /* --bench repeats the last step: the step input stays where it is. */
    if (benching) {
        uint64_t *t = plat_alloc(bench * sizeof(uint64_t));
        if (!t) die(c, "out of memory for %u timings", bench);
        for (uint64_t k = 0; k < bench; k++) {
            uint64_t t0 = plat_now_ns();
            int32_t st = smelt_model_run((const void *const *)in, (void *const *)out, arena, state, &fault);
            t[k] = plat_now_ns() - t0;
            if (st != SMELT_STATUS_OK) die_fault(c, m, &fault);
        }
        sort_u64(t, bench);
        uint64_t median = bench % 2 ? t[bench / 2] : t[bench / 2 - 1] + (t[bench / 2] - t[bench / 2 - 1]) / 2;
        out_printf(&o, "bench: %u runs after 1 warm-up: min ", bench);
        out_duration(&o, t[0]);
        out_str(&o, ", median ");
        out_duration(&o, median);
        out_str(&o, " per run\n");
    }

    if (outdir) {
        make_dirs(c, outdir);
        for (uint32_t i = 0; i < m->num_outputs; i++) write_output(c, paths[i], &m->outputs[i], out[i]);
    } else {
        for (uint32_t i = 0; i < m->num_outputs; i++) summary(&o, &m->outputs[i], out[i]);
    }
    out_flush(&o);
    return 0;
}
