/*
 * The token sampler (sample.h): repetition penalty, greedy, top-k, top-p,
 * min-p, temperature and a seeded xoshiro256** generator.
 */

#include "sample.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void smelt_rng_seed(smelt_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double smelt_rng_uniform(smelt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    /* The top 53 bits: every double in [0, 1) on a grid of 2^-53. */
    return (double)(result >> 11) * (1.0 / 9007199254740992.0);
}

/* e^x for x <= 0 (the sampler's only use), to about 1e-15 relative:
   x = k ln 2 + r with |r| <= ln2 / 2, e^r by its Taylor series. */
static double sample_exp(double x) {
    if (!(x > -745.0)) return 0.0; /* underflow, -inf and NaN */
    const double ln2 = 0.6931471805599453;
    int k = (int)(x / ln2 - 0.5);
    double r = x - k * ln2;
    double term = 1.0, sum = 1.0;
    for (int i = 1; i < 18; i++) {
        term *= r / i;
        sum += term;
    }
    /* Scale by 2^k, k in [-1075, 0], in steps that keep 2^k normal. */
    while (k < -1000) {
        sum *= 0x1p-1000;
        k += 1000;
    }
    union {
        double d;
        uint64_t u;
    } s = {.u = (uint64_t)(1023 + k) << 52};
    return sum * s.d;
}

/* NaN sorts below everything. */
static float key(float x) { return x == x ? x : -__builtin_inff(); }

struct cand {
    float logit;
    uint32_t id;
};

/* a ranks before b: larger logit, then lower id. */
static int before(const struct cand *a, const struct cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Heap whose root ranks last (a min-heap by rank). */
static void heap_down(struct cand *h, size_t root, size_t n) {
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && before(&h[child], &h[child + 1])) child++;
        if (!before(&h[root], &h[child])) return;
        struct cand t = h[root];
        h[root] = h[child];
        h[child] = t;
    }
}

size_t smelt_sample_scratch_bytes(uint32_t n) { return (size_t)n * sizeof(struct cand) + 8; }

uint32_t smelt_sample(const smelt_sampler *p, float *logits, uint32_t n, const uint32_t *recent,
                      size_t n_recent, smelt_rng *r, void *scratch) {
    if (n == 0) return 0;
    /* 1. Repetition penalty, once per distinct recent token. */
    if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f) {
        size_t window = n_recent < p->repeat_last_n ? n_recent : p->repeat_last_n;
        const uint32_t *w = recent + (n_recent - window);
        for (size_t i = 0; i < window; i++) {
            uint32_t id = w[i];
            if (id >= n) continue;
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++) seen = w[j] == id;
            if (seen) continue;
            float x = logits[id];
            logits[id] = x > 0.0f ? x / p->repeat_penalty : x * p->repeat_penalty;
        }
    }
    /* 2. Greedy. */
    if (!(p->temp > 0.0f)) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (key(logits[i]) > key(logits[best])) best = i;
        return best;
    }
    /* 3. The candidates, best first: the top k by a heap of k, or all. */
    struct cand *c = scratch;
    size_t k = p->top_k && p->top_k < n ? p->top_k : n;
    for (uint32_t i = 0; i < k; i++) c[i] = (struct cand){key(logits[i]), i};
    for (size_t i = k / 2; i-- > 0;) heap_down(c, i, k);
    for (uint32_t i = (uint32_t)k; i < n; i++) {
        struct cand x = {key(logits[i]), i};
        if (before(&x, &c[0])) {
            c[0] = x;
            heap_down(c, 0, k);
        }
    }
    for (size_t end = k; end-- > 1;) {
        struct cand t = c[0];
        c[0] = c[end];
        c[end] = t;
        heap_down(c, 0, end);
    }
    if (c[0].logit == -__builtin_inff()) return c[0].id;
    /* 4, 5. Top-p and min-p on the softmax before temperature. */
    double max = c[0].logit, total = 0.0;
    for (size_t i = 0; i < k; i++) total += sample_exp(c[i].logit - max);
    if (p->top_p < 1.0f) {
        double mass = 0.0;
        size_t keep = 0;
        while (keep < k) {
            mass += sample_exp(c[keep].logit - max) / total;
            keep++;
            if (mass >= p->top_p) break;
        }
        k = keep;
    }
    if (p->min_p > 0.0f) {
        /* p_i / p_max = e^(l_i - max). */
        size_t keep = 1;
        while (keep < k && sample_exp(c[keep].logit - max) >= p->min_p) keep++;
        k = keep;
    }
    /* 6. Temperature and one draw. */
    double sum = 0.0;
    for (size_t i = 0; i < k; i++) sum += sample_exp((c[i].logit - max) / p->temp);
    double u = smelt_rng_uniform(r) * sum, acc = 0.0;
    for (size_t i = 0; i < k; i++) {
        acc += sample_exp((c[i].logit - max) / p->temp);
        if (u < acc) return c[i].id;
    }
    return c[k - 1].id;
}
