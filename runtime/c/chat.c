/*
 * The program of a chat executable (llm.h): `./chat -p TEXT [-n N] [--temp T]
 * [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
 * [--chat] [--system TEXT] [--stop STR]... [--ctx N] [--threads N] [--ids]
 * [--bench] [--interactive] [--verbose-prompt]`.
 *
 * It tokenizes the prompt (BOS as the tokenizer's table says; with --chat,
 * the prompt rendered by the model's chat template and special-token text
 * parsed as the tokens), runs it through the prefill model `chunk` tokens
 * per step and the rest through the decode model, then samples (sample.h)
 * and decodes one token per step until -n tokens, an end-of-generation
 * token, a --stop string or the end of the context, streaming the text to
 * stdout (a multi-byte character is written whole). Without -p it reads
 * turns from stdin, one per line, the KV cache carrying the conversation.
 * Every failure is one line on stderr, "PROG: error: ...", with exit status
 * 1 (2 for a malformed command line).
 */

#define CHAT_MAX_STOPS 8
#define CHAT_LINE_MAX 4096

struct chat_opts {
    const char *prompt, *system;
    const char *stops[CHAT_MAX_STOPS];
    uint32_t n_stops;
    uint64_t n_predict, seed, ctx, bench_prompt;
    int seeded, chat, ids, bench, interactive, verbose_prompt;
    smelt_sampler sampler;
};

/* The running conversation. */
struct chat_run {
    const struct ctx *c;
    smelt_llm *llm;
    uint64_t limit;  /* the context this run may fill (--ctx) */
    uint64_t prompt_ns, gen_ns, n_prompt, n_gen;
};

static void chat_usage(const struct ctx *c, struct out *o) {
    out_printf(o, "usage: %s -p TEXT [options]\n", c->prog);
    out_str(o,
            "Generates text with the language model compiled into this program.\n"
            "  -p, --prompt TEXT        the prompt (without it: turns from stdin, one per line,\n"
            "                           when stdin is not a terminal)\n"
            "  -n, --n-predict N        tokens to generate at most (default 128)\n"
            "  --temp T                 temperature; 0 is greedy (default 0.8)\n"
            "  --top-k K                keep the K likeliest tokens; 0 is off (default 40)\n"
            "  --top-p P                keep the likeliest tokens up to mass P; 1 is off (default 0.95)\n"
            "  --min-p P                drop tokens below P times the likeliest; 0 is off (default 0.05)\n"
            "  --repeat-penalty R       penalise the last --repeat-last-n tokens; 1 is off (default 1)\n"
            "  --repeat-last-n N        the penalty's window (default 64)\n"
            "  --seed S                 the sampler's seed (default: from the clock)\n"
            "  --chat                   wrap turns in the model's chat template\n"
            "  --system TEXT            the system message of --chat\n"
            "  --stop STR               also stop when the text contains STR (up to 8)\n"
            "  --ctx N                  use at most N tokens of context (default: all the program has)\n"
            "  --threads N              threads of the model's parallel loops\n"
            "  --ids                    print the generated token ids, space separated, not the text\n"
            "  --bench                  generate exactly -n tokens, print only a timings line\n"
            "  --bench-prompt N         with --bench and no -p: a prompt of N token ids (default 128)\n"
            "  --interactive            read turns from stdin with a \"> \" prompt (after -p's, if any)\n"
            "  --verbose-prompt         print each turn's prompt token ids on stderr\n");
}

/* A decimal number for a flag: [-]digits[.digits][e[-]digits]. */
static double parse_number(const struct ctx *c, const char *v, const char *flag) {
    const char *p = v;
    int neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    double x = 0, scale = 1;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) x = x * 10 + (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) x += (*p - '0') * (scale /= 10);
    if (digits && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = *p == '-', e = 0, ed = 0;
        if (*p == '-' || *p == '+') p++;
        for (; *p >= '0' && *p <= '9' && e < 400; p++, ed++) e = e * 10 + (*p - '0');
        if (!ed) digits = 0;
        while (e-- > 0) x = eneg ? x / 10 : x * 10;
    }
    if (*p || !digits) die_status(c, 2, "%s takes a number, got '%s'", flag, v);
    return neg ? -x : x;
}

static void parse_chat_args(const struct ctx *c, int argc, char **argv, struct chat_opts *o) {
    *o = (struct chat_opts){0};
    o->n_predict = 128;
    o->sampler = (smelt_sampler){0.8f, 40, 0.95f, 0.05f, 1.0f, 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cstr_eq(a, "-h") || cstr_eq(a, "--help")) {
            struct out so;
            out_open(&so, PLAT_STDOUT);
            chat_usage(c, &so);
            out_flush(&so);
            plat_exit(0);
        } else if (cstr_eq(a, "--chat")) {
            o->chat = 1;
        } else if (cstr_eq(a, "--ids")) {
            o->ids = 1;
        } else if (cstr_eq(a, "--bench")) {
            o->bench = 1;
        } else if (cstr_eq(a, "--interactive")) {
            o->interactive = 1;
        } else if (cstr_eq(a, "--verbose-prompt")) {
            o->verbose_prompt = 1;
        } else if ((v = match_flag(c, argc, argv, &i, "--prompt", "-p"))) {
            o->prompt = v;
        } else if ((v = match_flag(c, argc, argv, &i, "--system", 0))) {
            o->system = v;
        } else if ((v = match_flag(c, argc, argv, &i, "--n-predict", "-n"))) {
            o->n_predict = parse_range(c, v, 0, 1u << 30, "-n takes a count");
        } else if ((v = match_flag(c, argc, argv, &i, "--temp", 0))) {
            o->sampler.temp = (float)parse_number(c, v, "--temp");
        } else if ((v = match_flag(c, argc, argv, &i, "--top-k", 0))) {
            o->sampler.top_k = (uint32_t)parse_range(c, v, 0, 1u << 30, "--top-k takes a count");
        } else if ((v = match_flag(c, argc, argv, &i, "--top-p", 0))) {
            o->sampler.top_p = (float)parse_number(c, v, "--top-p");
        } else if ((v = match_flag(c, argc, argv, &i, "--min-p", 0))) {
            o->sampler.min_p = (float)parse_number(c, v, "--min-p");
        } else if ((v = match_flag(c, argc, argv, &i, "--repeat-penalty", 0))) {
            double r = parse_number(c, v, "--repeat-penalty");
            if (!(r > 0)) die_status(c, 2, "--repeat-penalty must be above 0, got '%s'", v);
            o->sampler.repeat_penalty = (float)r;
        } else if ((v = match_flag(c, argc, argv, &i, "--repeat-last-n", 0))) {
            o->sampler.repeat_last_n = (uint32_t)parse_range(c, v, 0, 1u << 30, "--repeat-last-n takes a count");
        } else if ((v = match_flag(c, argc, argv, &i, "--seed", 0))) {
            o->seed = parse_range(c, v, 0, UINT64_MAX / 10, "--seed takes a count");
            o->seeded = 1;
        } else if ((v = match_flag(c, argc, argv, &i, "--stop", 0))) {
            if (o->n_stops == CHAT_MAX_STOPS) die_status(c, 2, "--stop is given more than %u times", CHAT_MAX_STOPS);
            if (!*v) die_status(c, 2, "--stop takes a non-empty string");
            o->stops[o->n_stops++] = v;
        } else if ((v = match_flag(c, argc, argv, &i, "--bench-prompt", 0))) {
            o->bench_prompt = parse_count(c, v, 1u << 30, "--bench-prompt takes a token count");
        } else if ((v = match_flag(c, argc, argv, &i, "--ctx", 0))) {
            o->ctx = parse_count(c, v, 1u << 30, "--ctx takes a token count");
        } else if ((v = match_flag(c, argc, argv, &i, "--threads", 0))) {
            plat_set_thread_cap((uint32_t)parse_count(c, v, 256, "--threads takes a thread count"));
        } else {
            die_status(c, 2, "unexpected argument '%s'; run with --help for usage", a);
        }
    }
}

/* Feeds ids[0..n) to the model, timed as prompt or generation. Returns 0,
   or -1 when they do not fit the context (--ctx included). */
static int feed(struct chat_run *r, const uint32_t *ids, uint64_t n, int prompt) {
    if (n > r->limit - smelt_llm_n_past(r->llm)) return -1;
    uint64_t t0 = plat_now_ns();
    int e = smelt_llm_feed(r->llm, ids, n);
    if (e == SMELT_LLM_E_RANGE) {
        const smelt_model_info *m;
        const smelt_fault *f = smelt_llm_fault(r->llm, &m);
        die_fault(r->c, m, f);
    }
    if (e) die(r->c, "the model refused the tokens (%d)", (int64_t)e);
    uint64_t dt = plat_now_ns() - t0;
    if (prompt) r->prompt_ns += dt, r->n_prompt += n;
    else r->gen_ns += dt, r->n_gen += n;
    return 0;
}

/* Tokenizes text[0..len) into a fresh buffer; *n its length. */
static uint32_t *encode(struct chat_run *r, const char *text, uint64_t len, unsigned flags, uint64_t *n) {
    size_t cap = smelt_llm_max_tokens(len);
    uint32_t *ids = plat_alloc((uint64_t)cap * 4 + 4);
    if (!ids) die(r->c, "out of memory for a prompt of %u bytes", len);
    size_t got = 0;
    int e = smelt_llm_tokenize(r->llm, text, len, flags, ids, cap, &got);
    if (e) die(r->c, "the tokenizer failed (%d) on a text of %u bytes", (int64_t)e, len);
    *n = got;
    return ids;
}

/* A growable byte string (rendered prompts). */
struct text {
    char *p;
    uint64_t len, cap;
};

static void text_add(const struct ctx *c, struct text *t, const void *s, uint64_t n) {
    if (t->len + n > t->cap) {
        uint64_t cap = (t->len + n) * 2 + 256;
        char *p = plat_alloc(cap);
        if (!p) die(c, "out of memory");
        if (t->len) memcpy(p, t->p, t->len);
        if (t->p) plat_free(t->p, t->cap);
        t->p = p;
        t->cap = cap;
    }
    if (n) memcpy(t->p + t->len, s, n);
    t->len += n;
}

/* The chat template's strings (llm.h). */
struct chat_template {
    uint32_t flags;
    const uint8_t *s[SMELT_CHAT_STRINGS];
    uint32_t len[SMELT_CHAT_STRINGS];
};

/* The chat template of the descriptor (llm.h). */
static void load_template(const struct ctx *c, struct chat_template *t) {
    uint32_t len = llm_rd32(smelt_llm_descriptor + 68);
    if (!len) die_status(c, 2, "--chat: this model has no chat template smelt recognises");
    const uint8_t *p = smelt_llm_descriptor + llm_rd32(smelt_llm_descriptor + 64), *end = p + len;
    if (len < 20 || llm_rd32(p) != SMELT_CHAT_MAGIC || llm_rd32(p + 4) != SMELT_CHAT_VERSION ||
        llm_rd32(p + 16) != SMELT_CHAT_STRINGS)
        die(c, "the chat template is malformed");
    t->flags = llm_rd32(p + 12);
    p += 20;
    for (uint32_t i = 0; i < SMELT_CHAT_STRINGS; i++) {
        if (end - p < 4) die(c, "the chat template is truncated");
        uint32_t n = llm_rd32(p);
        p += 4;
        if ((uint64_t)(end - p) < n) die(c, "the chat template is truncated");
        t->s[i] = p;
        t->len[i] = n;
        p += (n + 3) & ~3u;
        if (p > end) p = end;
    }
}

static void add_part(const struct ctx *c, struct text *out, const struct chat_template *t, int part) {
    text_add(c, out, t->s[part], t->len[part]);
}

/* One user turn and the generation prompt; the first turn opens with the
   template's prefix and the system text (the caller's or the default). */
static void render_turn(const struct ctx *c, struct text *out, const struct chat_template *t, const char *system,
                        const char *user, uint64_t user_len, int first) {
    const uint8_t *sys = (const uint8_t *)system;
    uint64_t sys_len = system ? cstr_len(system) : 0;
    int with_sys = first && system;
    if (first && !system && (t->flags & SMELT_CHAT_DEFAULT_SYSTEM)) {
        sys = t->s[SMELT_CHAT_S_DEFAULT_SYSTEM];
        sys_len = t->len[SMELT_CHAT_S_DEFAULT_SYSTEM];
        with_sys = 1;
    }
    int in_user = t->flags & SMELT_CHAT_SYSTEM_IN_USER;
    if (first) add_part(c, out, t, SMELT_CHAT_S_PREFIX);
    if (with_sys && !in_user) {
        add_part(c, out, t, SMELT_CHAT_S_SYSTEM_PREFIX);
        text_add(c, out, sys, sys_len);
        add_part(c, out, t, SMELT_CHAT_S_SYSTEM_SUFFIX);
    }
    add_part(c, out, t, SMELT_CHAT_S_USER_PREFIX);
    if (with_sys && in_user) {
        add_part(c, out, t, SMELT_CHAT_S_SYSTEM_PREFIX);
        text_add(c, out, sys, sys_len);
        add_part(c, out, t, SMELT_CHAT_S_SYSTEM_SUFFIX);
    }
    text_add(c, out, user, user_len);
    add_part(c, out, t, SMELT_CHAT_S_USER_SUFFIX);
    add_part(c, out, t, SMELT_CHAT_S_GENERATION_PROMPT);
}

/* What closes the model's answer before the next turn: the assistant
   suffix, without the end-of-turn text it starts with when the model
   ended its answer with that token (already in the cache). */
static void close_answer(const struct ctx *c, struct text *out, const struct chat_template *t, int ended) {
    const uint8_t *s = t->s[SMELT_CHAT_S_ASSISTANT_SUFFIX];
    uint32_t n = t->len[SMELT_CHAT_S_ASSISTANT_SUFFIX], e = t->len[SMELT_CHAT_S_END_OF_TURN];
    if (ended && e <= n && !memcmp(s, t->s[SMELT_CHAT_S_END_OF_TURN], e)) s += e, n -= e;
    text_add(c, out, s, n);
}

/* Output with --stop: bytes that may begin a stop string are held back. */
struct stream {
    struct out *o;
    const struct chat_opts *opts;
    char held[1024];
    uint32_t n_held;
    int stopped;
};

static void stream_text(struct stream *s, const uint8_t *p, uint64_t n) {
    if (!s->opts->n_stops) {
        out_bytes(s->o, (const char *)p, n);
        return;
    }
    for (uint64_t i = 0; i < n && !s->stopped; i++) {
        if (s->n_held == sizeof s->held) {
            out_bytes(s->o, s->held, 1);
            memmove(s->held, s->held + 1, --s->n_held);
        }
        s->held[s->n_held++] = (char)p[i];
        /* A stop string ending here: print what precedes it and stop. */
        for (uint32_t k = 0; k < s->opts->n_stops; k++) {
            uint64_t sl = cstr_len(s->opts->stops[k]);
            if (sl <= s->n_held && !memcmp(s->held + s->n_held - sl, s->opts->stops[k], sl)) {
                out_bytes(s->o, s->held, s->n_held - sl);
                s->n_held = 0;
                s->stopped = 1;
                return;
            }
        }
        /* Keep the longest tail that is a proper prefix of a stop string. */
        uint32_t keep = 0;
        for (uint32_t k = 0; k < s->opts->n_stops; k++) {
            uint64_t sl = cstr_len(s->opts->stops[k]);
            for (uint32_t t = s->n_held < sl ? s->n_held : (uint32_t)sl - 1; t > keep; t--)
                if (!memcmp(s->held + s->n_held - t, s->opts->stops[k], t)) {
                    keep = t;
                    break;
                }
        }
        out_bytes(s->o, s->held, s->n_held - keep);
        memmove(s->held, s->held + s->n_held - keep, keep);
        s->n_held = keep;
    }
}

/* Generates after the tokens fed so far: samples, prints and feeds up to
   n_predict tokens. Returns the last token sampled and not yet fed (or
   SMELT_TOK_NONE). */
static uint32_t generate(struct chat_run *r, const struct chat_opts *opts, struct out *o) {
    const struct ctx *c = r->c;
    smelt_llm *l = r->llm;
    struct stream s = {o, opts, {0}, 0, 0};
    size_t piece_cap = smelt_llm_max_piece(l);
    char *piece = plat_alloc(piece_cap);
    if (!piece) die(c, "out of memory");
    uint32_t pending = SMELT_TOK_NONE;
    for (uint64_t k = 0; k < opts->n_predict; k++) {
        if (pending != SMELT_TOK_NONE) {
            if (feed(r, &pending, 1, 0)) {
                out_flush(o);
                struct out e;
                out_open(&e, PLAT_STDERR);
                out_printf(&e, "\n%s: the context is full (%u tokens); stopping\n", c->prog, r->limit);
                out_flush(&e);
                break;
            }
            pending = SMELT_TOK_NONE;
        }
        uint32_t id = smelt_llm_sample(l, &opts->sampler);
        pending = id;
        if (opts->ids) {
            out_printf(o, k ? " %u" : "%u", (uint64_t)id);
        } else if (!opts->bench) {
            size_t w = 0;
            if (smelt_llm_detokenize(l, id, piece, piece_cap, &w) == 0) stream_text(&s, (const uint8_t *)piece, w);
            if (s.stopped) break;
        }
        if (!opts->bench && smelt_llm_is_eos(l, id)) break;
        if (!opts->ids && !opts->bench) out_flush(o);
    }
    if (!opts->ids && !opts->bench && !s.stopped) {
        size_t w = 0;
        smelt_llm_detokenize_flush(l, piece, piece_cap, &w);
        stream_text(&s, (const uint8_t *)piece, w);
        out_bytes(o, s.held, s.n_held);
    }
    plat_free(piece, piece_cap);
    return pending;
}

/* Reads one line of stdin (without its newline, NUL-terminated) into
   `line`, whose buffer is reused from line to line; 0 at the end of input. */
static int read_line(const struct ctx *c, struct text *line) {
    static char buf[CHAT_LINE_MAX];
    static uint64_t have, at;
    static int eof;
    line->len = 0;
    int any = 0;
    for (;;) {
        if (at == have) {
            if (eof) break;
            long n = plat_read(0, buf, sizeof buf);
            if (n <= 0) {
                eof = 1;
                break;
            }
            have = (uint64_t)n;
            at = 0;
        }
        any = 1;
        uint64_t e = at;
        while (e < have && buf[e] != '\n') e++;
        text_add(c, line, buf + at, e - at);
        if (e < have) {
            at = e + 1;
            break;
        }
        at = have;
    }
    if (!any) return 0;
    text_add(c, line, "", 1);
    line->len--;
    return 1;
}

static void out_rate(struct out *o, uint64_t n, uint64_t ns) {
    out_f64(o, ns ? (double)n * 1e9 / (double)ns : 0.0);
}

/* --bench's line: tokens and rates of the prompt and of generation. */
static void bench_line(struct out *o, const struct chat_run *r) {
    out_str(o, "timings: prompt ");
    out_u64(o, r->n_prompt);
    out_str(o, " tokens ");
    out_rate(o, r->n_prompt, r->prompt_ns);
    out_str(o, " tok/s, decode ");
    out_u64(o, r->n_gen);
    out_str(o, " tokens ");
    out_rate(o, r->n_gen, r->gen_ns);
    out_str(o, " tok/s\n");
    out_flush(o);
}

static int smelt_main(int argc, char **argv) {
    struct ctx cx = {"chat"};
    const struct ctx *c = &cx;
    if (argc > 0 && argv[0] && argv[0][0]) {
        cx.prog = argv[0];
        for (const char *p = argv[0]; *p; p++)
            if (*p == '/' && p[1]) cx.prog = p + 1;
    }
    struct chat_opts opts;
    parse_chat_args(c, argc, argv, &opts);
    /* The model as the API sees it: the step functions this program links. */
    smelt_llm_model model = {&smelt_decode_model, smelt_decode_run, smelt_decode_init, 0, 0, smelt_llm_descriptor};
    if (&smelt_prefill_model && smelt_prefill_run) {
        model.prefill = &smelt_prefill_model;
        model.prefill_run = smelt_prefill_run;
    }
    /* Room to tokenize the prompt with its template, or a line of stdin. */
    uint64_t text = (opts.prompt ? cstr_len(opts.prompt) : 0) + (opts.system ? cstr_len(opts.system) : 0);
    text += CHAT_LINE_MAX + 1024;
    size_t bytes = 0;
    int e = smelt_llm_memory(&model, text, &bytes);
    if (e) die(c, "this program's model does not match its runtime (%d)", (int64_t)e);
    struct chat_run r = {0};
    r.c = c;
    if (smelt_llm_init(&model, alloc_aligned(c, bytes, 64, "the model"), bytes, &r.llm))
        die(c, "this program's model does not match its runtime");
    uint32_t ctx = smelt_llm_ctx(r.llm);
    r.limit = opts.ctx && opts.ctx < ctx ? opts.ctx : ctx;
    smelt_llm_seed(r.llm, opts.seeded ? opts.seed : plat_now_ns());
    struct chat_template tmpl;
    if (opts.chat) load_template(c, &tmpl);
    else if (opts.system) die_status(c, 2, "--system needs --chat");
    if (opts.bench_prompt && !opts.bench) die_status(c, 2, "--bench-prompt needs --bench");
    if (opts.bench && !opts.prompt) {
        /* As llama-bench does: token ids, not text (spread over the
           vocabulary, the same every run). */
        uint64_t n = opts.bench_prompt ? opts.bench_prompt : 128;
        uint32_t *ids = plat_alloc(n * 4);
        if (!ids) die(c, "out of memory");
        uint32_t vocab = smelt_llm_vocab(r.llm);
        for (uint64_t i = 0; i < n; i++) ids[i] = (uint32_t)((i * 7919 + 13) % vocab);
        if (feed(&r, ids, n, 1)) die(c, "--bench-prompt %u does not fit the context of %u tokens", n, r.limit);
        struct out o;
        out_open(&o, PLAT_STDOUT);
        generate(&r, &opts, &o);
        bench_line(&o, &r);
        return 0;
    }

    struct out o;
    out_open(&o, PLAT_STDOUT);
    /* Turns from stdin: without -p when stdin is not a terminal, or with
       --interactive. */
    int from_stdin = (!opts.prompt && !opts.bench) || opts.interactive;
    if (!opts.prompt && !opts.bench && !opts.interactive && plat_is_terminal(0))
        die_status(c, 2, "no prompt: give -p TEXT, pipe turns on stdin, or --interactive");
    uint32_t last = SMELT_TOK_NONE;
    /* The current stdin line and the text of a turn, reused turn to turn. */
    struct text line = {0, 0, 0}, t = {0, 0, 0};
    for (int turn = 0;; turn++) {
        const char *user;
        uint64_t user_len;
        if (turn == 0 && opts.prompt) {
            user = opts.prompt;
            user_len = cstr_len(user);
        } else {
            if (!from_stdin) break;
            if (opts.interactive) {
                out_str(&o, turn ? "\n> " : "> ");
                out_flush(&o);
            }
            if (!read_line(c, &line)) break;
            user = line.p;
            user_len = line.len;
        }
        /* The text of this turn, after the previous answer. In a chat the
           answer's last token (an end token included) is fed, then the rest
           of the assistant suffix; BOS as the template says. */
        t.len = 0;
        unsigned flags = 0;
        if (last != SMELT_TOK_NONE && feed(&r, &last, 1, 1)) die(c, "the context is full (%u tokens)", r.limit);
        if (opts.chat) {
            if (turn) close_answer(c, &t, &tmpl, last != SMELT_TOK_NONE && smelt_llm_is_eos(r.llm, last));
            render_turn(c, &t, &tmpl, opts.system, user, user_len, turn == 0);
            flags = SMELT_LLM_PARSE_SPECIAL;
        } else {
            text_add(c, &t, user, user_len);
            /* A plain prompt: BOS (and EOS) as the tokenizer's table says. */
            if (turn == 0) flags = SMELT_LLM_ADD_SPECIAL;
        }
        uint64_t n = 0;
        uint32_t *ids = encode(&r, t.p ? t.p : "", t.len, flags, &n);
        struct out v;
        out_open(&v, PLAT_STDERR);
        if (opts.verbose_prompt) out_str(&v, "prompt:");
        if (turn == 0 && opts.chat) {
            /* BOS as the tokenizer adds it, unless the template wrote it;
               never EOS. */
            uint32_t bos = smelt_llm_bos(r.llm);
            int add = bos != SMELT_TOK_NONE && !(tmpl.flags & SMELT_CHAT_BOS_IN_TEXT);
            if (add && feed(&r, &bos, 1, 1)) die(c, "the context is full (%u tokens)", r.limit);
            if (add && opts.verbose_prompt) out_printf(&v, " %u", (uint64_t)bos);
        }
        if (opts.verbose_prompt) {
            for (uint64_t i = 0; i < n; i++) out_printf(&v, " %u", (uint64_t)ids[i]);
            out_char(&v, '\n');
            out_flush(&v);
        }
        if (turn == 0 && n == 0 && smelt_llm_n_past(r.llm) == 0) die_status(c, 2, "the prompt is empty");
        if (feed(&r, ids, n, 1))
            die(c, "the prompt is %u tokens and %u of the context's %u are used; compile with a larger --ctx", n,
                (uint64_t)smelt_llm_n_past(r.llm), r.limit);
        plat_free(ids, smelt_llm_max_tokens(t.len) * 4 + 4);
        last = generate(&r, &opts, &o);
        if (!opts.bench) out_char(&o, '\n');
        out_flush(&o);
        if (opts.bench) break;
    }
    if (opts.bench) bench_line(&o, &r);
    out_flush(&o);
    return 0;
}
