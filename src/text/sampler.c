/* sampler.c — token sampling (see sampler.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "text/sampler.h"

typedef struct cand { int32_t id; float logit; float p; } cand;

struct sampler {
    sampler_params p;
    int32_t n_vocab;
    cand *c;                /* n_vocab candidates, reused */
    int32_t *hist;          /* ring of the last repeat_last_n tokens */
    int32_t n_hist, hist_pos;
    uint64_t rng[4];        /* xoshiro256** state */
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform double in [0, 1). */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

sampler_params sampler_defaults(void) {
    return (sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                            .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

sampler *sampler_create(const sampler_params *p, int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->n_vocab = n_vocab;
    s->c = malloc(sizeof(cand) * (size_t)n_vocab);
    s->hist = malloc(sizeof(int32_t) * (size_t)(s->p.repeat_last_n ? s->p.repeat_last_n : 1));
    if (!s->c || !s->hist) { sampler_free(s); return NULL; }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->hist);
    free(s);
}

void sampler_accept(sampler *s, int32_t token) {
    if (!s->p.repeat_last_n) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->n_hist < s->p.repeat_last_n) s->n_hist++;
}

int32_t sampler_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;
}

/* Reorders c so its first k entries are the k best by cand_desc order
 * (quickselect, median-of-three pivots). */
static void select_top(cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cand_desc(&c[mid], &c[lo]) < 0) { cand t = c[mid]; c[mid] = c[lo]; c[lo] = t; }
        if (cand_desc(&c[hi], &c[lo]) < 0) { cand t = c[hi]; c[hi] = c[lo]; c[lo] = t; }
        if (cand_desc(&c[hi], &c[mid]) < 0) { cand t = c[hi]; c[hi] = c[mid]; c[mid] = t; }
        cand pivot = c[mid];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (cand_desc(&c[i], &pivot) < 0) i++;
            while (cand_desc(&pivot, &c[j]) < 0) j--;
            if (i <= j) { cand t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Softmax over the first n candidates (sorted descending) into p. */
static void softmax(cand *c, int32_t n) {
    double sum = 0;
    for (int32_t i = 0; i < n; i++) { c[i].p = expf(c[i].logit - c[0].logit); sum += c[i].p; }
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

int32_t sampler_sample(sampler *s, const float *logits) {
    int32_t n = s->n_vocab;
    cand *c = s->c;
    for (int32_t i = 0; i < n; i++) c[i] = (cand){i, logits[i], 0};
    /* repetition penalty (each distinct recent token once): divide positive
     * logits, multiply negative ones */
    if (s->p.repeat_penalty != 1.0f && s->n_hist) {
        for (int32_t k = 0; k < s->n_hist; k++) {
            int32_t id = s->hist[k];
            if (id < 0 || id >= n) continue;
            bool seen = false;
            for (int32_t j = 0; j < k && !seen; j++) seen = s->hist[j] == id;
            if (seen) continue;
            float *l = &c[id].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
    }
    if (s->p.temp <= 0.0f) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        return best;
    }
    /* keep the top k (selection first, so only k items get sorted) */
    int32_t k = n;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        k = s->p.top_k;
        select_top(c, n, k);
    }
    qsort(c, (size_t)k, sizeof(cand), cand_desc);
    n = k;
    softmax(c, n);
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0.0f) {
        float thresh = c[0].p * s->p.min_p;
        int32_t m = 1;
        while (m < n && c[m].p >= thresh) m++;
        n = m;
    }
    for (int32_t i = 0; i < n; i++) c[i].logit /= s->p.temp;
    softmax(c, n);
    double r = rng_uniform(s->rng), cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}
