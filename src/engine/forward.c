/* forward.c — CPU transformer forward pass (see forward.h).
 *
 * Per block, for a chunk of B tokens (activations f32, row-major B x dim):
 *   xb = rmsnorm(x) * attn_norm
 *   q, k, v = xb Wq^T (+bq), xb Wk^T (+bk), xb Wv^T (+bv)
 *   q, k = headwise rmsnorm (qk_norm archs); rope(q, k, positions)
 *   cache <- k, v;  att = softmax(q K^T / sqrt(hd)) V   (causal, GQA)
 *   x += att Wo^T
 *   xb = rmsnorm(x) * ffn_norm;  x += (silu(xb Wg^T) * (xb Wu^T)) Wd^T
 * then logits = rmsnorm(x) * out_norm  Wout^T.
 *
 * KV cache layout per layer: K as [pos][kv_head * hd] rows; V transposed as
 * [kv_head * hd][pos] so both attention products are contiguous dots. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/fp16.h"
#include "engine/forward.h"

struct fwd_ctx {
    const model *m;
    pool *pool;
    cpu_isa isa;
    kv_type kv;
    uint32_t n_ctx, n_batch, n_past; /* n_ctx: fwd_eval's context length */
    uint32_t n_slots;         /* KV cache slots: n_ctx rounded up to whole FWD_KV_BLOCKs */
    uint32_t *ident;          /* (n_slots / FWD_KV_BLOCK) block table 0, 1, 2...: fwd_eval's one sequence */
    const fwd_tok *chunk;     /* the tokens of the chunk being evaluated */
    size_t kv_elem;           /* bytes per cache element */
    uint8_t **k_cache;        /* n_layer x (n_slots, kvdim) */
    uint8_t **v_cache;        /* n_layer x (kvdim, n_slots) transposed */
    cpu_dot_fn kv_dot;        /* dot of a cache row (kv type) with f32 */
    cpu_dotn_fn kv_dotn;      /* several f32 rows at once (NULL: none at this ISA) */
    cpu_gemm_fn kv_gemm;      /* several cache rows x several f32 rows (NULL: none) */
    bool attn_reference;      /* fwd_params.attn_reference: attn_task per (token, head) */
    uint32_t *groups;         /* (n_batch + 1) attention tiles of the chunk: token ranges */
    /* scratch for one chunk of n_batch tokens */
    float *x, *xb, *xb2, *q, *k, *v, *att, *gate, *up;
    float *rope_cs;           /* (n_batch, n_rot/2, 2) cos/sin */
    float *inv_freq;          /* (n_rot/2) rope_base^(-2i/n_rot) */
    float *scores;            /* per thread: attention scratch (attn_scratch_floats) */
    void *ws;                 /* matmul activation workspace */
    uint32_t *out_idx;        /* (n_batch) row of xb2 per token of a chunk, UINT32_MAX: no logits */
    float *logits;            /* (logits_cap, n_vocab) */
    uint32_t logits_cap, n_logits, logits_first;
    size_t mem_bytes;
};

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Attention tiles (attn_tile_task): query rows (token, head) per tile, at
 * most cpu_dotn's CPU_DOTN_MAX so one kernel call covers them all. */
#define ATTN_ROWS CPU_DOTN_MAX

/* Floats of one thread's attention scratch: ATTN_ROWS score rows of
 * n_slots, ATTN_ROWS query rows, ATTN_ROWS output rows, an ATTN_ROWS x 16
 * output tile. */
static size_t attn_scratch_floats(uint32_t n_slots, uint32_t hd) {
    return (size_t)ATTN_ROWS * n_slots + (size_t)ATTN_ROWS * hd * 2 + (size_t)ATTN_ROWS * 16;
}

static size_t ws_need(const model *m, uint32_t B) {
    const model_hparams *hp = &m->hp;
    size_t w = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *ts[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < 7; i++) w = max_sz(w, cpu_matmul_ws_bytes(ts[i]->type, (int64_t)ts[i]->ne[0], B));
    }
    w = max_sz(w, cpu_matmul_ws_bytes(m->output->type, hp->n_embd, B));
    return w;
}

size_t fwd_estimate_bytes(const model *m, uint32_t n_ctx, uint32_t n_batch, kv_type kv, int n_threads) {
    const model_hparams *hp = &m->hp;
    if (!n_ctx) n_ctx = hp->n_ctx_train;
    n_ctx = (n_ctx + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK * FWD_KV_BLOCK; /* whole KV blocks */
    if (!n_batch) n_batch = 512;
    if (n_threads <= 0) n_threads = pool_cpu_count();
    size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim, qdim = (size_t)hp->n_head * hp->head_dim;
    size_t elem = kv == KV_F16 ? 2 : 4;
    size_t cache = 2 * (size_t)hp->n_layer * n_ctx * kvdim * elem;
    size_t B = n_batch;
    size_t scratch = sizeof(float) * (B * hp->n_embd * 3 + B * qdim * 2 + B * kvdim * 2 + B * hp->n_ff * 2 +
                                      B * hp->n_rot + (size_t)n_threads * attn_scratch_floats(n_ctx, hp->head_dim)) +
                     sizeof(uint32_t) * (B + 1);
    return cache + scratch + ws_need(m, n_batch) + sizeof(float) * (size_t)hp->n_vocab;
}

sluice_status fwd_create(fwd_ctx **out, const model *m, const fwd_params *p, sluice_error *err) {
    *out = NULL;
    const model_hparams *hp = &m->hp;
    fwd_params d = p ? *p : (fwd_params){0};
    if (!d.n_ctx) d.n_ctx = hp->n_ctx_train;
    if (!d.n_batch) d.n_batch = 512;
    if (d.n_batch > d.n_ctx) d.n_batch = d.n_ctx;
    if (d.n_threads <= 0) d.n_threads = pool_cpu_count();
    if (d.n_ctx > (1u << 24))
        return sluice_fail(err, SLUICE_ERR_ARG, "context length %u is too large (max %u)", d.n_ctx, 1u << 24);
    fwd_ctx *c = calloc(1, sizeof *c);
    if (c) c->ident = malloc(sizeof(uint32_t) * ((d.n_ctx + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK));
    if (!c) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    c->m = m;
    c->kv = d.kv;
    c->n_ctx = d.n_ctx;
    c->n_slots = (d.n_ctx + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK * FWD_KV_BLOCK;
    c->n_batch = d.n_batch;
    c->isa = cpu_isa_detect();
    c->kv_elem = d.kv == KV_F16 ? 2 : 4;
    c->kv_dot = cpu_dot_get(d.kv == KV_F16 ? QT_F16 : QT_F32, c->isa);
    c->kv_dotn = cpu_dotn_get(d.kv == KV_F16 ? QT_F16 : QT_F32, c->isa);
    c->kv_gemm = cpu_gemm_get(d.kv == KV_F16 ? QT_F16 : QT_F32, c->isa);
    c->attn_reference = d.attn_reference;
    c->pool = pool_create(d.n_threads);
    if (!c->ident) {
        fwd_free(c);
        return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < c->n_slots / FWD_KV_BLOCK; i++) c->ident[i] = i;
    size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim, qdim = (size_t)hp->n_head * hp->head_dim;
    size_t B = c->n_batch;
    c->k_cache = calloc(hp->n_layer, sizeof *c->k_cache);
    c->v_cache = calloc(hp->n_layer, sizeof *c->v_cache);
    bool ok = c->pool && c->k_cache && c->v_cache;
    size_t layer_bytes = (size_t)c->n_slots * kvdim * c->kv_elem;
    for (uint32_t l = 0; ok && l < hp->n_layer; l++) {
        /* zeroed: V^T dots read whole padded rows only up to n_past */
        c->k_cache[l] = calloc(1, layer_bytes);
        c->v_cache[l] = calloc(1, layer_bytes);
        ok = c->k_cache[l] && c->v_cache[l];
    }
    if (ok) {
        c->x = malloc(sizeof(float) * B * hp->n_embd);
        c->xb = malloc(sizeof(float) * B * max_sz(hp->n_embd, qdim));
        c->xb2 = malloc(sizeof(float) * B * hp->n_embd);
        c->q = malloc(sizeof(float) * B * qdim);
        c->k = malloc(sizeof(float) * B * kvdim);
        c->v = malloc(sizeof(float) * B * kvdim);
        c->att = malloc(sizeof(float) * B * qdim);
        c->gate = malloc(sizeof(float) * B * hp->n_ff);
        c->up = malloc(sizeof(float) * B * hp->n_ff);
        c->rope_cs = malloc(sizeof(float) * B * max_sz(hp->n_rot, 2));
        c->scores = malloc(sizeof(float) * (size_t)pool_size(c->pool) * attn_scratch_floats(c->n_slots, hp->head_dim));
        c->groups = malloc(sizeof(uint32_t) * (B + 1));
        c->ws = malloc(max_sz(ws_need(m, c->n_batch), 64));
        c->inv_freq = malloc(sizeof(float) * max_sz(hp->n_rot / 2, 1));
        c->out_idx = malloc(sizeof(uint32_t) * B);
        c->logits_cap = 1;
        c->logits = malloc(sizeof(float) * hp->n_vocab);
        ok = c->x && c->xb && c->xb2 && c->q && c->k && c->v && c->att && c->gate && c->up && c->rope_cs && c->scores &&
             c->ws && c->logits && c->inv_freq && c->out_idx && c->groups;
    }
    for (uint32_t i = 0; ok && i < hp->n_rot / 2; i++)
        c->inv_freq[i] = powf(hp->rope_base, -2.0f * (float)i / (float)hp->n_rot);
    if (!ok) {
        fwd_free(c);
        return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory allocating a %u-token context (%zu MiB)", d.n_ctx,
                           fwd_estimate_bytes(m, d.n_ctx, d.n_batch, d.kv, d.n_threads) >> 20);
    }
    c->mem_bytes = fwd_estimate_bytes(m, c->n_ctx, c->n_batch, c->kv, pool_size(c->pool));
    *out = c;
    return SLUICE_OK;
}

void fwd_free(fwd_ctx *c) {
    if (!c) return;
    for (uint32_t l = 0; c->k_cache && l < c->m->hp.n_layer; l++) free(c->k_cache[l]);
    for (uint32_t l = 0; c->v_cache && l < c->m->hp.n_layer; l++) free(c->v_cache[l]);
    free(c->k_cache); free(c->v_cache); free(c->ident);
    free(c->x); free(c->xb); free(c->xb2); free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->gate); free(c->up); free(c->rope_cs); free(c->inv_freq); free(c->scores); free(c->groups); free(c->ws); free(c->logits); free(c->out_idx);
    pool_destroy(c->pool);
    free(c);
}

uint32_t fwd_n_past(const fwd_ctx *c) { return c->n_past; }
uint32_t fwd_n_ctx(const fwd_ctx *c) { return c->n_ctx; }
uint32_t fwd_n_slots(const fwd_ctx *c) { return c->n_slots; }
cpu_isa fwd_isa(const fwd_ctx *c) { return c->isa; }
int fwd_threads(const fwd_ctx *c) { return pool_size(c->pool); }
size_t fwd_memory_bytes(const fwd_ctx *c) { return c->mem_bytes; }
void fwd_truncate(fwd_ctx *c, uint32_t n_past) { if (n_past < c->n_past) c->n_past = n_past; }

/* KV slot of position pos of a sequence with block table blocks. */
static inline uint32_t kv_slot(const uint32_t *blocks, uint32_t pos) {
    return blocks[pos / FWD_KV_BLOCK] * FWD_KV_BLOCK + pos % FWD_KV_BLOCK;
}

const float *fwd_logits(const fwd_ctx *c, uint32_t i) {
    if (i < c->logits_first || i - c->logits_first >= c->n_logits) return NULL;
    return c->logits + (size_t)(i - c->logits_first) * c->m->hp.n_vocab;
}

const float *fwd_last_logits(const fwd_ctx *c) {
    return c->logits + (size_t)(c->n_logits - 1) * c->m->hp.n_vocab;
}

/* ---- elementwise pieces ---- */

static void rmsnorm(float *out, const float *x, const float *w, uint32_t n, float eps) {
    double ss = 0;
    for (uint32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + eps);
    for (uint32_t i = 0; i < n; i++) out[i] = x[i] * s * w[i];
}

static void matmul(fwd_ctx *c, const gguf_tensor *w, const float *X, uint32_t n_tok, float *Y) {
    cpu_matmul(c->pool, c->isa, w->type, w->data, (int64_t)w->ne[1], (int64_t)w->ne[0], X, n_tok, Y, c->ws);
}

/* Y_i = X W_i^T for weights that share the input X: X is converted to each
 * activation format once, not once per matrix. */
static void matmul_shared(fwd_ctx *c, const gguf_tensor *const *w, float *const *Y, int n, const float *X,
                          uint32_t n_tok) {
    const void *A = NULL;
    size_t stride = 0;
    qtype have = QT_COUNT;
    for (int i = 0; i < n; i++) {
        qtype dt = qtype_get(w[i]->type)->dot_type;
        if (!A || dt != have) {
            A = cpu_act_convert(c->pool, c->isa, w[i]->type, (int64_t)w[i]->ne[0], X, n_tok, c->ws, &stride);
            have = dt;
        }
        cpu_matmul_act(c->pool, c->isa, w[i]->type, w[i]->data, (int64_t)w[i]->ne[1], (int64_t)w[i]->ne[0], A, stride,
                       n_tok, Y[i]);
    }
}

static void add_bias(float *y, const gguf_tensor *b, uint32_t dim) {
    if (!b) return;
    const float *bb = b->data;
    for (uint32_t i = 0; i < dim; i++) y[i] += bb[i];
}

/* YaRN ramp: 1 for dims that keep extrapolated frequencies, 0 for interpolated. */
static float yarn_ramp(float low, float high, uint32_t i) {
    float y = ((float)i - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

static float yarn_corr_dim(uint32_t n_rot, uint32_t n_ctx_orig, float n_rotations, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_rotations * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

/* cos/sin for each token's position and each rotated pair i < n_rot/2. */
static void rope_table(fwd_ctx *c, const fwd_tok *tok, uint32_t n_tok) {
    const model_hparams *hp = &c->m->hp;
    uint32_t half = hp->n_rot / 2;
    float corr[2] = {0, 0};
    if (hp->yarn_ext_factor != 0.0f) {
        corr[0] = fmaxf(0.0f, floorf(yarn_corr_dim(hp->n_rot, hp->n_ctx_orig, hp->yarn_beta_fast, hp->rope_base)));
        corr[1] = fminf((float)hp->n_rot - 1, ceilf(yarn_corr_dim(hp->n_rot, hp->n_ctx_orig, hp->yarn_beta_slow, hp->rope_base)));
    }
    for (uint32_t t = 0; t < n_tok; t++) {
        float pos = (float)tok[t].pos;
        for (uint32_t i = 0; i < half; i++) {
            float theta_extrap = pos * c->inv_freq[i];
            float theta = hp->rope_freq_scale * theta_extrap;
            float mscale = hp->yarn_attn_factor;
            if (hp->yarn_ext_factor != 0.0f) {
                float mix = yarn_ramp(corr[0], corr[1], i) * hp->yarn_ext_factor;
                theta = theta * (1 - mix) + theta_extrap * mix;
                mscale *= 1.0f + 0.1f * logf(1.0f / hp->rope_freq_scale);
            }
            c->rope_cs[((size_t)t * half + i) * 2] = cosf(theta) * mscale;
            c->rope_cs[((size_t)t * half + i) * 2 + 1] = sinf(theta) * mscale;
        }
    }
}

/* Rotates each head of x (n_heads * hd) of token t in place. */
static void rope_apply(const fwd_ctx *c, float *x, uint32_t t, uint32_t n_heads) {
    const model_hparams *hp = &c->m->hp;
    uint32_t hd = hp->head_dim, half = hp->n_rot / 2;
    bool neox = c->m->arch->rope == ROPE_NEOX;
    const float *cs = c->rope_cs + (size_t)t * half * 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (uint32_t i = 0; i < half; i++) {
            uint32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b], co = cs[2 * i], si = cs[2 * i + 1];
            v[a] = x0 * co - x1 * si;
            v[b] = x0 * si + x1 * co;
        }
    }
}

static void head_norm(float *x, const gguf_tensor *w, uint32_t n_heads, uint32_t hd, float eps) {
    if (!w) return;
    for (uint32_t h = 0; h < n_heads; h++) rmsnorm(x + (size_t)h * hd, x + (size_t)h * hd, w->data, hd, eps);
}

/* Writes token t's K row and V column into the cache at slot pos. */
static void kv_store(fwd_ctx *c, uint32_t layer, uint32_t t, uint32_t pos) {
    const model_hparams *hp = &c->m->hp;
    size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim;
    const float *kr = c->k + t * kvdim, *vr = c->v + t * kvdim;
    if (c->kv == KV_F16) {
        uint16_t *kd = (uint16_t *)c->k_cache[layer] + pos * kvdim;
        uint16_t *vd = (uint16_t *)c->v_cache[layer];
        for (size_t i = 0; i < kvdim; i++) {
            kd[i] = f32_to_fp16(kr[i]);
            vd[i * c->n_slots + pos] = f32_to_fp16(vr[i]);
        }
    } else {
        float *kd = (float *)c->k_cache[layer] + pos * kvdim;
        float *vd = (float *)c->v_cache[layer];
        for (size_t i = 0; i < kvdim; i++) {
            kd[i] = kr[i];
            vd[i * c->n_slots + pos] = vr[i];
        }
    }
}

typedef struct attn_job { fwd_ctx *c; uint32_t layer; } attn_job;

/* One (token, head) pair: causal softmax attention over positions 0..pos
 * of the token's sequence, whose KV slots its block table gives. V dots run
 * over runs of consecutive slots (one run for fwd_eval's sequence). */
static void attn_task(void *ctx, int task, int thread) {
    attn_job *j = ctx;
    fwd_ctx *c = j->c;
    const model_hparams *hp = &c->m->hp;
    uint32_t t = (uint32_t)task / hp->n_head, h = (uint32_t)task % hp->n_head;
    uint32_t hd = hp->head_dim, hk = h / (hp->n_head / hp->n_head_kv);
    size_t kvdim = (size_t)hp->n_head_kv * hd;
    const fwd_tok *tk = &c->chunk[t];
    uint32_t n_kv = tk->pos + 1;
    const float *q = c->q + ((size_t)t * hp->n_head + h) * hd;
    float *s = c->scores + (size_t)thread * attn_scratch_floats(c->n_slots, hd);
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    const uint8_t *kb = c->k_cache[j->layer] + hk * hd * c->kv_elem;
    for (uint32_t p0 = 0; p0 < n_kv; p0 += FWD_KV_BLOCK) { /* block by block: no per-position lookup */
        const uint8_t *kr = kb + (size_t)tk->blocks[p0 / FWD_KV_BLOCK] * FWD_KV_BLOCK * kvdim * c->kv_elem;
        uint32_t p1 = n_kv - p0 < FWD_KV_BLOCK ? n_kv : p0 + FWD_KV_BLOCK;
        for (uint32_t p = p0; p < p1; p++, kr += kvdim * c->kv_elem) {
            s[p] = c->kv_dot(hd, kr, q) * scale;
            if (s[p] > mx) mx = s[p];
        }
    }
    double sum = 0;
    for (uint32_t p = 0; p < n_kv; p++) { s[p] = expf(s[p] - mx); sum += s[p]; }
    float inv = (float)(1.0 / sum);
    for (uint32_t p = 0; p < n_kv; p++) s[p] *= inv;
    float *o = c->att + ((size_t)t * hp->n_head + h) * hd;
    const uint8_t *vb = c->v_cache[j->layer] + (size_t)hk * hd * c->n_slots * c->kv_elem;
    for (uint32_t d = 0; d < hd; d++) o[d] = 0.0f;
    for (uint32_t p0 = 0; p0 < n_kv;) {
        /* a run: blocks whose slots follow each other */
        uint32_t slot0 = kv_slot(tk->blocks, p0), p1 = (p0 / FWD_KV_BLOCK + 1) * FWD_KV_BLOCK;
        while (p1 < n_kv && tk->blocks[p1 / FWD_KV_BLOCK] == tk->blocks[p1 / FWD_KV_BLOCK - 1] + 1) p1 += FWD_KV_BLOCK;
        if (p1 > n_kv) p1 = n_kv;
        for (uint32_t d = 0; d < hd; d++)
            o[d] += c->kv_dot(p1 - p0, vb + ((size_t)d * c->n_slots + slot0) * c->kv_elem, s + p0);
        p0 = p1;
    }
}

/* y[j * y_stride + r] = dot(n, row r, act row j) for r < nr, j < na
 * (<= ATTN_ROWS): rows of the KV cache w_stride bytes apart, f32 act rows
 * a_stride bytes apart; through the ISA's tile kernel, else its
 * several-rows kernel, else single dots. Every value is bit-identical to
 * c->kv_dot of the pair (cpu_kernels.h). */
static void kv_tile(const fwd_ctx *c, int64_t n, const uint8_t *w, size_t w_stride, int nr, const float *a,
                    size_t a_stride, int na, float *y, size_t y_stride) {
    if (c->kv_gemm) {
        for (int r0 = 0; r0 < nr; r0 += CPU_GEMM_ROWS)
            c->kv_gemm(n, w + (size_t)r0 * w_stride, w_stride, nr - r0 < CPU_GEMM_ROWS ? nr - r0 : CPU_GEMM_ROWS, a,
                       a_stride, na, y + r0, y_stride);
        return;
    }
    float out[ATTN_ROWS];
    for (int r = 0; r < nr; r++) {
        if (c->kv_dotn) c->kv_dotn(n, w + (size_t)r * w_stride, a, a_stride, na, out);
        else
            for (int j = 0; j < na; j++) out[j] = c->kv_dot(n, w + (size_t)r * w_stride, (const float *)((const uint8_t *)a + (size_t)j * a_stride));
        for (int j = 0; j < na; j++) y[(size_t)j * y_stride + r] = out[j];
    }
}

/* One attention tile: the tokens c->groups[g]..c->groups[g + 1] - 1 (one
 * sequence, consecutive positions) x the query heads of KV head hk, at
 * most ATTN_ROWS query rows. The same arithmetic as attn_task, in the same
 * order, for every row (scores q.K * scale, max, exp, a double sum, 1/sum,
 * then the V dots run by run of consecutive blocks), but each K row and
 * each V run is read once for all the tile's rows through kv_tile. Rows
 * whose history ends earlier see zero weights past their last position. */
static void attn_tile_task(void *ctx, int task, int thread) {
    attn_job *j = ctx;
    fwd_ctx *c = j->c;
    const model_hparams *hp = &c->m->hp;
    uint32_t g = (uint32_t)task / hp->n_head_kv, hk = (uint32_t)task % hp->n_head_kv;
    uint32_t t0 = c->groups[g], t1 = c->groups[g + 1];
    uint32_t hd = hp->head_dim, G = hp->n_head / hp->n_head_kv, R = (t1 - t0) * G;
    size_t kvdim = (size_t)hp->n_head_kv * hd, S_stride = c->n_slots;
    const uint32_t *blocks = c->chunk[t0].blocks;
    uint32_t n_max = c->chunk[t1 - 1].pos + 1;
    float *S = c->scores + (size_t)thread * attn_scratch_floats(c->n_slots, hd);
    float *Q = S + (size_t)ATTN_ROWS * S_stride, *O = Q + (size_t)ATTN_ROWS * hd, *Y = O + (size_t)ATTN_ROWS * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (uint32_t r = 0; r < R; r++) /* row r: token t0 + r / G, head hk * G + r % G */
        memcpy(Q + (size_t)r * hd, c->q + ((size_t)(t0 + r / G) * hp->n_head + hk * G + r % G) * hd, hd * sizeof(float));
    /* scores, block by block: S[r][p] = q_r . K[p] */
    const uint8_t *kb = c->k_cache[j->layer] + hk * hd * c->kv_elem;
    for (uint32_t p0 = 0; p0 < n_max; p0 += FWD_KV_BLOCK) {
        int np = n_max - p0 < FWD_KV_BLOCK ? (int)(n_max - p0) : FWD_KV_BLOCK;
        const uint8_t *kr = kb + (size_t)blocks[p0 / FWD_KV_BLOCK] * FWD_KV_BLOCK * kvdim * c->kv_elem;
        kv_tile(c, hd, kr, kvdim * c->kv_elem, np, Q, hd * sizeof(float), (int)R, S + p0, S_stride);
    }
    for (uint32_t r = 0; r < R; r++) {
        float *s = S + (size_t)r * S_stride, mx = -INFINITY;
        uint32_t n_kv = c->chunk[t0 + r / G].pos + 1;
        for (uint32_t p = 0; p < n_kv; p++) {
            s[p] *= scale;
            if (s[p] > mx) mx = s[p];
        }
        double sum = 0;
        for (uint32_t p = 0; p < n_kv; p++) { s[p] = expf(s[p] - mx); sum += s[p]; }
        float inv = (float)(1.0 / sum);
        for (uint32_t p = 0; p < n_kv; p++) s[p] *= inv;
        for (uint32_t p = n_kv; p < n_max; p++) s[p] = 0.0f;
    }
    memset(O, 0, sizeof(float) * R * hd);
    const uint8_t *vb = c->v_cache[j->layer] + (size_t)hk * hd * c->n_slots * c->kv_elem;
    for (uint32_t p0 = 0; p0 < n_max;) {
        /* a run: blocks whose slots follow each other (as attn_task) */
        uint32_t slot0 = kv_slot(blocks, p0), p1 = (p0 / FWD_KV_BLOCK + 1) * FWD_KV_BLOCK;
        while (p1 < n_max && blocks[p1 / FWD_KV_BLOCK] == blocks[p1 / FWD_KV_BLOCK - 1] + 1) p1 += FWD_KV_BLOCK;
        if (p1 > n_max) p1 = n_max;
        for (uint32_t d0 = 0; d0 < hd; d0 += 16) {
            int nd = hd - d0 < 16 ? (int)(hd - d0) : 16;
            kv_tile(c, p1 - p0, vb + ((size_t)d0 * c->n_slots + slot0) * c->kv_elem, c->n_slots * c->kv_elem, nd,
                    S + p0, S_stride * sizeof(float), (int)R, Y, 16);
            for (uint32_t r = 0; r < R; r++)
                for (int i = 0; i < nd; i++) O[(size_t)r * hd + d0 + i] += Y[(size_t)r * 16 + i];
        }
        p0 = p1;
    }
    for (uint32_t r = 0; r < R; r++)
        memcpy(c->att + ((size_t)(t0 + r / G) * hp->n_head + hk * G + r % G) * hd, O + (size_t)r * hd,
               hd * sizeof(float));
}

/* Splits the chunk into attention tiles (c->groups: tile i is tokens
 * groups[i] .. groups[i + 1] - 1): runs of tokens of one sequence (the
 * same block table) at consecutive positions, at most ATTN_ROWS / G tokens
 * each, G <= ATTN_ROWS the heads per KV head. Returns the tile count. */
static uint32_t attn_groups(fwd_ctx *c, const fwd_tok *tok, uint32_t n_tok) {
    uint32_t per = ATTN_ROWS / (c->m->hp.n_head / c->m->hp.n_head_kv), n = 0;
    for (uint32_t t = 0; t < n_tok; t++)
        if (t == 0 || tok[t].blocks != tok[t - 1].blocks || tok[t].pos != tok[t - 1].pos + 1 ||
            t - c->groups[n - 1] >= per)
            c->groups[n++] = t;
    c->groups[n] = n_tok;
    return n;
}

static void embed(fwd_ctx *c, const fwd_tok *tok, uint32_t n_tok) {
    const gguf_tensor *e = c->m->tok_embd;
    uint64_t rb;
    qtype_row_bytes(e->type, e->ne[0], &rb);
    for (uint32_t t = 0; t < n_tok; t++)
        quant_dequantize_row_ref(e->type, (const uint8_t *)e->data + (size_t)tok[t].token * rb, c->x + (size_t)t * c->m->hp.n_embd,
                                 (int64_t)e->ne[0]);
}

/* Per-token work between the matrix products, run over tokens in parallel. */
typedef enum row_stage {
    ROW_ATTN_NORM,  /* [x += xb (previous block's FFN)]; xb = rmsnorm(x) * attn_norm */
    ROW_QKV_POST,   /* biases, Q/K head norms, rope, K/V into the cache */
    ROW_FFN_NORM,   /* x += xb (attention out); xb = rmsnorm(x) * ffn_norm */
    ROW_SWIGLU,     /* gate = silu(gate) * up */
    ROW_OUT_NORM,   /* x += xb; xb2[out_idx[t]] = rmsnorm(x) * out_norm for tokens that want logits */
} row_stage;

typedef struct row_job {
    fwd_ctx *c;
    const layer_weights *w;
    uint32_t layer;
    row_stage stage;
    bool add_residual;
    const uint32_t *out_idx; /* ROW_OUT_NORM: row of xb2 per token, UINT32_MAX: none */
} row_job;

static void row_task(void *ctx, int task, int thread) {
    (void)thread;
    const row_job *j = ctx;
    fwd_ctx *c = j->c;
    const model_hparams *hp = &c->m->hp;
    const layer_weights *w = j->w;
    uint32_t t = (uint32_t)task, E = hp->n_embd, hd = hp->head_dim;
    float *x = c->x + (size_t)t * E, *xb = c->xb + (size_t)t * E;
    switch (j->stage) {
    case ROW_ATTN_NORM:
    case ROW_FFN_NORM:
    case ROW_OUT_NORM:
        if (j->add_residual)
            for (uint32_t i = 0; i < E; i++) x[i] += xb[i];
        if (j->stage == ROW_OUT_NORM) {
            if (j->out_idx[t] != UINT32_MAX)
                rmsnorm(c->xb2 + (size_t)j->out_idx[t] * E, x, c->m->out_norm->data, E, hp->rms_eps);
        } else {
            rmsnorm(xb, x, (j->stage == ROW_ATTN_NORM ? w->attn_norm : w->ffn_norm)->data, E, hp->rms_eps);
        }
        break;
    case ROW_QKV_POST: {
        uint32_t qdim = hp->n_head * hd, kvdim = hp->n_head_kv * hd;
        float *q = c->q + (size_t)t * qdim, *k = c->k + (size_t)t * kvdim, *v = c->v + (size_t)t * kvdim;
        add_bias(q, w->bq, qdim);
        add_bias(k, w->bk, kvdim);
        add_bias(v, w->bv, kvdim);
        head_norm(q, w->q_norm, hp->n_head, hd, hp->rms_eps);
        head_norm(k, w->k_norm, hp->n_head_kv, hd, hp->rms_eps);
        rope_apply(c, q, t, hp->n_head);
        rope_apply(c, k, t, hp->n_head_kv);
        kv_store(c, j->layer, t, kv_slot(c->chunk[t].blocks, c->chunk[t].pos));
        break;
    }
    case ROW_SWIGLU: {
        float *g = c->gate + (size_t)t * hp->n_ff, *u = c->up + (size_t)t * hp->n_ff;
        for (uint32_t i = 0; i < hp->n_ff; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        break;
    }
    }
}

static void rows(fwd_ctx *c, row_stage stage, const layer_weights *w, uint32_t layer, bool add_residual, uint32_t n_tok,
                 const uint32_t *out_idx) {
    row_job j = {c, w, layer, stage, add_residual, out_idx};
    pool_run(c->pool, (int)n_tok, row_task, &j);
}

/* One chunk of n_tok <= n_batch tokens (their K/V go to their slots; each
 * attends to its sequence's positions 0..pos, which must be stored by now
 * or in this chunk). Writes the logits of the tokens that want them, in
 * order, to out (rows of n_vocab). */
static void eval_chunk(fwd_ctx *c, const fwd_tok *tok, uint32_t n_tok, float *out) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    c->chunk = tok;
    /* attention in tiles of query rows sharing their K/V reads, unless a
     * GQA group alone exceeds a tile (or the reference is asked for) */
    const bool tiles = !c->attn_reference && hp->n_head / hp->n_head_kv <= ATTN_ROWS;
    const uint32_t n_tiles = tiles ? attn_groups(c, tok, n_tok) : 0;
    embed(c, tok, n_tok);
    rope_table(c, tok, n_tok);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *w = &m->layers[l];
        rows(c, ROW_ATTN_NORM, w, l, l > 0, n_tok, NULL);
        const gguf_tensor *qkv[3] = {w->wq, w->wk, w->wv};
        float *qkv_out[3] = {c->q, c->k, c->v};
        matmul_shared(c, qkv, qkv_out, 3, c->xb, n_tok);
        rows(c, ROW_QKV_POST, w, l, false, n_tok, NULL);
        attn_job job = {c, l};
        if (tiles) pool_run(c->pool, (int)(n_tiles * hp->n_head_kv), attn_tile_task, &job);
        else pool_run(c->pool, (int)(n_tok * hp->n_head), attn_task, &job);
        matmul(c, w->wo, c->att, n_tok, c->xb);
        rows(c, ROW_FFN_NORM, w, l, true, n_tok, NULL);
        const gguf_tensor *gu[2] = {w->w_gate, w->w_up};
        float *gu_out[2] = {c->gate, c->up};
        matmul_shared(c, gu, gu_out, 2, c->xb, n_tok);
        rows(c, ROW_SWIGLU, w, l, false, n_tok, NULL);
        matmul(c, w->w_down, c->gate, n_tok, c->xb);
    }
    uint32_t n_out = 0;
    for (uint32_t t = 0; t < n_tok; t++) c->out_idx[t] = tok[t].logits ? n_out++ : UINT32_MAX;
    if (!n_out) return; /* no logits from this chunk: its last residual is not needed */
    rows(c, ROW_OUT_NORM, NULL, 0, true, n_tok, c->out_idx);
    matmul(c, m->output, c->xb2, n_out, out);
}

/* Checks the ids; SLUICE_ERR_ARG names the first bad one. */
static sluice_status check_tokens(const fwd_ctx *c, const fwd_tok *tok, uint32_t n, sluice_error *err) {
    const model_hparams *hp = &c->m->hp;
    for (uint32_t i = 0; i < n; i++)
        if (tok[i].token < 0 || (uint32_t)tok[i].token >= hp->n_vocab)
            return sluice_fail(err, SLUICE_ERR_ARG, "token %d at index %u is outside the vocabulary (0..%u)",
                               tok[i].token, i, hp->n_vocab - 1);
    return SLUICE_OK;
}

sluice_status fwd_decode(fwd_ctx *c, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err) {
    if (n == 0) return sluice_fail(err, SLUICE_ERR_ARG, "fwd_decode: no tokens");
    sluice_status st = check_tokens(c, tok, n, err);
    if (st != SLUICE_OK) return st;
    for (uint32_t i = 0; i < n; i++)
        if (tok[i].blocks == NULL || kv_slot(tok[i].blocks, tok[i].pos) >= c->n_slots)
            return sluice_fail(err, SLUICE_ERR_RANGE, "token %u: KV slot for position %u outside the %u-slot cache", i,
                               tok[i].pos, c->n_slots);
    size_t V = c->m->hp.n_vocab;
    for (uint32_t done = 0; done < n;) {
        uint32_t b = n - done < c->n_batch ? n - done : c->n_batch;
        eval_chunk(c, tok + done, b, logits);
        for (uint32_t t = 0; t < b; t++) logits += tok[done + t].logits ? V : 0;
        done += b;
    }
    return SLUICE_OK;
}

sluice_status fwd_copy_block(fwd_ctx *c, uint32_t src, uint32_t dst) {
    const model_hparams *hp = &c->m->hp;
    size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim, B = FWD_KV_BLOCK, e = c->kv_elem;
    if ((size_t)(src + 1) * B > c->n_slots || (size_t)(dst + 1) * B > c->n_slots) return SLUICE_ERR_RANGE;
    if (src == dst) return SLUICE_OK;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        memcpy(c->k_cache[l] + (size_t)dst * B * kvdim * e, c->k_cache[l] + (size_t)src * B * kvdim * e, B * kvdim * e);
        for (size_t i = 0; i < kvdim; i++)
            memcpy(c->v_cache[l] + (i * c->n_slots + (size_t)dst * B) * e, c->v_cache[l] + (i * c->n_slots + (size_t)src * B) * e,
                   B * e);
    }
    return SLUICE_OK;
}

sluice_status fwd_eval(fwd_ctx *c, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err) {
    const model_hparams *hp = &c->m->hp;
    if (n == 0) return sluice_fail(err, SLUICE_ERR_ARG, "fwd_eval: no tokens");
    if (n > c->n_ctx - c->n_past)
        return sluice_fail(err, SLUICE_ERR_RANGE, "context full: %u cached + %u new tokens exceed the context of %u",
                           c->n_past, n, c->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= hp->n_vocab)
            return sluice_fail(err, SLUICE_ERR_ARG, "token %d at index %u is outside the vocabulary (0..%u)", tokens[i], i,
                               hp->n_vocab - 1);
    uint32_t need = all_logits ? n : 1;
    if (need > c->logits_cap) {
        float *nl = realloc(c->logits, sizeof(float) * (size_t)need * hp->n_vocab);
        if (!nl) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory for %u x %u logits", need, hp->n_vocab);
        c->logits = nl;
        c->logits_cap = need;
    }
    c->n_logits = need;
    c->logits_first = all_logits ? 0 : n - 1;
    /* one sequence whose position p sits at slot p */
    fwd_tok tk[256];
    float *out = c->logits;
    for (uint32_t done = 0; done < n;) {
        uint32_t b = n - done < c->n_batch ? n - done : c->n_batch;
        if (b > 256) b = 256;
        for (uint32_t t = 0; t < b; t++)
            tk[t] = (fwd_tok){.token = tokens[done + t], .pos = c->n_past + t, .blocks = c->ident,
                              .logits = all_logits || done + t == n - 1};
        eval_chunk(c, tk, b, out);
        if (all_logits) out += (size_t)b * hp->n_vocab;
        c->n_past += b;
        done += b;
    }
    return SLUICE_OK;
}
