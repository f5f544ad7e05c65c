/* forward_vk.c — the Vulkan forward pass (see forward_vk.h). Tokens go in
 * chunks of up to n_batch; per chunk of n tokens, in one step (split
 * between layers when the chunk's work would make one submission too long
 * for a driver watchdog), with a barrier between dependent ops:
 *   x = get_rows(tok_embd, tokens)                          (n, E)
 *   per layer: xb = rms_norm(x) * attn_norm
 *              q, k, v = xb Wq^T, xb Wk^T, xb Wv^T  (+ bq, bk, bv)
 *              q, k = rms_norm over rows of head_dim (qk_norm archs); rope
 *              cache <- k, v;  att = attention(q, cache)   (causal)
 *              x += att Wo^T
 *              xb = rms_norm(x) * ffn_norm
 *              gate = silu(xb Wg^T) * (xb Wu^T);  x += gate Wd^T
 *   logits = rms_norm(x) * out_norm, times Wout^T: the last token only, or
 *            every token (all_logits), into a host-visible buffer
 * Matrix products take mul_mat (matrix x matrix) for n > 1 and mul_mat_vec
 * for n == 1. Token ids and positions live in a small host-visible buffer
 * (int32 tokens[n_batch], then positions[n_batch]) read by get_rows, rope
 * and kv_store. */
#include "engine/forward_vk.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/vulkan/ops.h"
#include "backend/vulkan/profile.h"
#include "backend/vulkan/runtime.h"

/* A weight matrix on the device: (rows, cols) of its GGUF type, rows back
 * to back, split by rows into parts of part_rows rows (the last may hold
 * fewer) where one buffer may not span the whole tensor
 * (maxStorageBufferRange, maxMemoryAllocationSize). */
typedef struct vkf_mat {
    const gguf_tensor *t; /* NULL: absent */
    uint32_t n_parts, part_rows;
    vk_buffer **parts;    /* n_parts */
} vkf_mat;

typedef struct vkf_layer {
    vkf_mat wq, wk, wv, wo, w_gate, w_up, w_down;
    vk_buffer *attn_norm, *bq, *bk, *bv, *q_norm, *k_norm, *ffn_norm; /* F32 vectors */
    vk_buffer *kc, *vc; /* (n_slots, kvdim) rows; (kvdim, n_slots) V transposed */
} vkf_layer;

struct vkf_ctx {
    const model *m;
    vk_instance *inst;
    bool own_inst;
    vk_device *d;
    kv_type kv;
    uint32_t n_ctx, n_past, n_batch;
    uint32_t n_slots;       /* KV slots: n_ctx rounded up to whole VK_KV_BLOCKs (vkf_decode's pool) */
    uint32_t tbl_cap;       /* uint32s of block tables io holds per chunk */
    uint32_t *io_host;      /* staging of io's contents */
    vk_buffer *xg;          /* (n_batch, n_embd): rows gathered for the logits */
    vkf_layer *layers;                      /* n_layer */
    vkf_mat tok_embd, output_own;
    vkf_mat *output;                        /* &output_own, or &tok_embd when tied */
    vk_buffer *out_norm;
    uint64_t max_buf;                       /* most bytes one weight buffer holds */
    /* scratch for one chunk of up to n_batch tokens, token-major rows */
    vk_buffer *x, *xb, *q, *k, *v, *att, *gate, *up;
    vk_buffer *io;          /* host, int32: tokens[n_batch], positions[n_batch], then for
                               vkf_decode slots[n_batch], out_ids[n_batch],
                               info[2 n_batch] (n_kv, table offset), tables[tbl_cap] */
    uint32_t attn_chunk;    /* generation attention split in chunks of at least this many
                               positions; 0: never split */
    vk_buffer *attn_part;   /* partials of the split: n_head x VKF_ATTN_SPLITS x (head_dim + 2) */
    vk_buffer *logits;      /* host: (logits_rows, n_vocab) F32 */
    uint32_t logits_rows;   /* 1, or n_batch once all_logits was asked for */
    float *logits_host;     /* (logits_cap, n_vocab): the last eval's logits */
    uint32_t logits_cap;    /* rows logits_host holds */
    uint32_t n_out;         /* rows of logits_host valid: 1 or the last eval's n */
    uint64_t mem_bytes;
};

/* Most multiply-accumulates of weight products and attention recorded into
 * one submission: ~20 G keeps a submission well under a second on a slow
 * integrated GPU (~100 GFLOP/s), far from the seconds a driver watchdog
 * allows. */
#define VKF_SUBMIT_MACS 20e9
#define VKF_BATCH_DEFAULT 128
/* Generation attention is split over the sequence (vk_op_attention_split)
 * on GPUs, where one workgroup per head would leave most of the device
 * idle on a long KV: chunks of VKF_ATTN_CHUNK positions or more, at most
 * VKF_ATTN_SPLITS of them. Not on CPU devices (lane-rows caps), whose few
 * cores the heads already fill and where each extra dispatch costs tens of
 * microseconds; SLUICE_VK_ATTN_CHUNK=N forces chunks of N anywhere
 * (tests). */
#define VKF_ATTN_CHUNK 256
#define VKF_ATTN_SPLITS 64

static uint64_t round4(uint64_t n) { return (n + 3) / 4 * 4; }

/* Checks what the kernels need of one tensor and adds its device bytes:
 * a matrix may be split by rows over buffers of at most max_buf bytes, a
 * vector must fit one. */
static sluice_status check_tensor(const gguf_tensor *t, bool matrix, uint64_t max_buf, uint64_t *bytes,
                                  sluice_error *err) {
    if (!t) return SLUICE_OK;
    if (matrix ? !vk_mul_mat_vec_supports(t->type) : t->type != QT_F32)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vulkan: tensor %.*s has type %s, which has no kernel",
                           (int)t->name.len, t->name.ptr, qtype_get(t->type)->name);
    uint64_t unit = matrix ? t->n_bytes / (uint64_t)t->ne[1] : t->n_bytes; /* one row, or the whole vector */
    if (round4(unit) > max_buf)
        return sluice_fail(err, SLUICE_ERR_RANGE,
                           "vulkan: tensor %.*s: %s of %llu bytes is more than one buffer may span (%llu)",
                           (int)t->name.len, t->name.ptr, matrix ? "one row" : "the vector", (unsigned long long)unit,
                           (unsigned long long)max_buf);
    *bytes += round4(t->n_bytes);
    return SLUICE_OK;
}

static sluice_status upload(vkf_ctx *c, const gguf_tensor *t, vk_buffer **out, sluice_error *err) {
    if (!t) return SLUICE_OK;
    sluice_status st = vk_buffer_create(c->d, round4(t->n_bytes), VK_MEM_DEVICE, out, err);
    if (st != SLUICE_OK) return st;
    return vk_buffer_write(c->d, *out, 0, t->data, t->n_bytes, err);
}

/* Uploads matrix t in parts of as many whole rows as c->max_buf holds. */
static sluice_status upload_mat(vkf_ctx *c, const gguf_tensor *t, vkf_mat *M, sluice_error *err) {
    M->t = t;
    if (!t) return SLUICE_OK;
    uint64_t rows = (uint64_t)t->ne[1], row_bytes = t->n_bytes / rows;
    uint64_t per = c->max_buf / round4(row_bytes) ? (c->max_buf - 3) / row_bytes : 1; /* rows per part */
    if (per > rows) per = rows;
    M->part_rows = (uint32_t)per;
    M->n_parts = (uint32_t)((rows + per - 1) / per);
    M->parts = calloc(M->n_parts, sizeof *M->parts);
    if (!M->parts) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < M->n_parts; i++) {
        uint64_t r0 = (uint64_t)i * per, n = rows - r0 < per ? rows - r0 : per;
        sluice_status st = vk_buffer_create(c->d, round4(n * row_bytes), VK_MEM_DEVICE, &M->parts[i], err);
        if (st == SLUICE_OK) st = vk_buffer_write(c->d, M->parts[i], 0, t->data + r0 * row_bytes, n * row_bytes, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

static void free_mat(vk_device *d, vkf_mat *M) {
    for (uint32_t i = 0; M->parts && i < M->n_parts; i++) vk_buffer_destroy(d, M->parts[i]);
    free(M->parts);
    memset(M, 0, sizeof *M);
}

static sluice_status scratch(vkf_ctx *c, uint64_t bytes, vk_mem_kind kind, vk_buffer **out, sluice_error *err) {
    c->mem_bytes += bytes;
    return vk_buffer_create(c->d, bytes, kind, out, err);
}

static sluice_status open_device(vkf_ctx *c, const vkf_params *p, sluice_error *err) {
    sluice_status st;
    if (p->inst) {
        c->inst = p->inst;
    } else {
        if ((st = vk_instance_create(&c->inst, vk_validate_from_env(), err)) != SLUICE_OK) return st;
        c->own_inst = true;
    }
    int pick = -1;
    st = vk_select_device(vk_instance_device(c->inst, 0), vk_instance_device_count(c->inst), p->device, &pick, err);
    if (st != SLUICE_OK) return st;
    if (pick < 0)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED,
                           "vulkan: no GPU for the auto rule (a software device must be named with --device)");
    return vk_device_create(c->inst, (uint32_t)pick, &c->d, err);
}

vkf_estimate vkf_estimate_bytes(const model *m, uint32_t n_ctx, kv_type kv, uint32_t n_batch) {
    const model_hparams *hp = &m->hp;
    if (!n_ctx) n_ctx = hp->n_ctx_train;
    if (!n_batch) n_batch = VKF_BATCH_DEFAULT;
    if (n_batch > n_ctx) n_batch = n_ctx;
    uint64_t E = hp->n_embd, hd = hp->head_dim, qdim = (uint64_t)hp->n_head * hd, kvdim = (uint64_t)hp->n_head_kv * hd;
    vkf_estimate e = {0};
    const gguf_tensor *top[] = {m->tok_embd, m->out_norm, m->tied_output || m->output == m->tok_embd ? NULL : m->output};
    for (size_t i = 0; i < 3; i++) e.weights += top[i] ? round4(top[i]->n_bytes) : 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *t[] = {L->attn_norm, L->wq,     L->wk,     L->wv,       L->wo,     L->bq,   L->bk,
                                  L->bv,        L->q_norm, L->k_norm, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) e.weights += t[i] ? round4(t[i]->n_bytes) : 0;
    }
    uint64_t slots = (n_ctx + VK_KV_BLOCK - 1) / VK_KV_BLOCK * VK_KV_BLOCK;
    e.kv_cache = 2 * round4(slots * kvdim * (kv == KV_F16 ? 2 : 4)) * hp->n_layer;
    /* scratch rows, the token/position buffer, one row of logits, the
     * split attention's partials (GPUs only; counted anyway) */
    e.scratch = sizeof(float) * ((uint64_t)n_batch * (E * 2 + qdim * 2 + kvdim * 2 + (uint64_t)hp->n_ff * 2) +
                                 2 * (uint64_t)n_batch + hp->n_vocab + (uint64_t)hp->n_head * VKF_ATTN_SPLITS * (hd + 2));
    return e;
}

sluice_status vkf_create(vkf_ctx **out, const model *m, const vkf_params *p, sluice_error *err) {
    *out = NULL;
    const model_hparams *hp = &m->hp;
    vkf_params d = p ? *p : (vkf_params){.kv = KV_F16};
    if (!d.n_ctx) d.n_ctx = hp->n_ctx_train;
    if (!d.n_batch) d.n_batch = VKF_BATCH_DEFAULT;
    if (d.n_batch > d.n_ctx) d.n_batch = d.n_ctx;
    if (d.n_batch > 4096)
        return sluice_fail(err, SLUICE_ERR_ARG, "batch of %u tokens is too large (max 4096)", d.n_batch);
    if (d.n_ctx > (1u << 24))
        return sluice_fail(err, SLUICE_ERR_ARG, "context length %u is too large (max %u)", d.n_ctx, 1u << 24);
    if (hp->head_dim > 256 || hp->head_dim_v != hp->head_dim)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED,
                           "vulkan: head sizes K %u / V %u not supported (equal and at most 256)", hp->head_dim,
                           hp->head_dim_v);
    vkf_ctx *c = calloc(1, sizeof *c);
    if (!c) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    c->m = m;
    c->kv = d.kv;
    c->n_ctx = d.n_ctx;
    c->n_slots = (d.n_ctx + VK_KV_BLOCK - 1) / VK_KV_BLOCK * VK_KV_BLOCK;
    c->n_batch = d.n_batch;
    c->tbl_cap = c->n_slots / VK_KV_BLOCK * (d.n_batch < 8 ? d.n_batch : 8);
    sluice_status st = open_device(c, &d, err);
    if (st != SLUICE_OK) goto fail;
    const vk_device_info *info = vk_device_info_of(c->d);
    uint64_t max_buf = info->max_storage_buffer_range < info->max_alloc ? info->max_storage_buffer_range
                                                                        : info->max_alloc;
    /* SLUICE_VK_MAX_BUFFER=N: pretend one buffer spans at most N bytes (to
     * test the splitting of weight matrices on devices with large limits) */
    const char *mb = getenv("SLUICE_VK_MAX_BUFFER");
    c->max_buf = max_buf;
    if (mb && strtoull(mb, NULL, 10) >= 256 && strtoull(mb, NULL, 10) < max_buf) c->max_buf = strtoull(mb, NULL, 10);

    /* What it all takes, checked before anything is uploaded. */
    uint64_t E = hp->n_embd, hd = hp->head_dim, qdim = (uint64_t)hp->n_head * hd, kvdim = (uint64_t)hp->n_head_kv * hd;
    uint64_t weights = 0;
    st = check_tensor(m->tok_embd, true, c->max_buf, &weights, err);
    if (st == SLUICE_OK) st = check_tensor(m->out_norm, false, max_buf, &weights, err);
    if (st == SLUICE_OK && !m->tied_output && m->output != m->tok_embd)
        st = check_tensor(m->output, true, c->max_buf, &weights, err);
    for (uint32_t l = 0; st == SLUICE_OK && l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *mats[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        const gguf_tensor *vecs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv, L->q_norm, L->k_norm};
        for (size_t i = 0; st == SLUICE_OK && i < 7; i++) st = check_tensor(mats[i], true, c->max_buf, &weights, err);
        for (size_t i = 0; st == SLUICE_OK && i < 7; i++) st = check_tensor(vecs[i], false, max_buf, &weights, err);
    }
    if (st != SLUICE_OK) goto fail;
    uint64_t elem = d.kv == KV_F16 ? 2 : 4;
    uint64_t kv_layer = round4((uint64_t)c->n_slots * kvdim * elem);
    if (kv_layer > max_buf) {
        st = sluice_fail(err, SLUICE_ERR_RANGE, "vulkan: one layer's KV cache (%llu bytes) exceeds one buffer (%llu)",
                         (unsigned long long)kv_layer, (unsigned long long)max_buf);
        goto fail;
    }
    vkf_estimate est = vkf_estimate_bytes(m, c->n_ctx, d.kv, c->n_batch);
    uint64_t need = est.weights + est.kv_cache + est.scratch;
    uint64_t avail = 0;
    for (uint32_t h = 0; h < info->n_heaps; h++)
        if (info->heaps[h].device_local) avail += info->heaps[h].size;
    if (need > avail) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM,
                         "vulkan: the model does not fit on %s: needs %llu bytes (%llu MiB: weights %llu MiB, KV "
                         "cache %llu MiB), device-local memory has %llu bytes (%llu MiB)",
                         info->name, (unsigned long long)need, (unsigned long long)(need >> 20),
                         (unsigned long long)(est.weights >> 20), (unsigned long long)(est.kv_cache >> 20),
                         (unsigned long long)avail, (unsigned long long)(avail >> 20));
        goto fail;
    }

    /* Weights, once. */
    c->mem_bytes = weights;
    c->layers = calloc(hp->n_layer, sizeof *c->layers);
    if (!c->layers) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = upload_mat(c, m->tok_embd, &c->tok_embd, err)) != SLUICE_OK) goto fail;
    if ((st = upload(c, m->out_norm, &c->out_norm, err)) != SLUICE_OK) goto fail;
    if (m->tied_output || m->output == m->tok_embd) c->output = &c->tok_embd;
    else if ((st = upload_mat(c, m->output, c->output = &c->output_own, err)) != SLUICE_OK) goto fail;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        vkf_layer *V = &c->layers[l];
        const gguf_tensor *msrc[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        vkf_mat *mdst[] = {&V->wq, &V->wk, &V->wv, &V->wo, &V->w_gate, &V->w_up, &V->w_down};
        const gguf_tensor *vsrc[] = {L->attn_norm, L->bq, L->bk, L->bv, L->q_norm, L->k_norm, L->ffn_norm};
        vk_buffer **vdst[] = {&V->attn_norm, &V->bq, &V->bk, &V->bv, &V->q_norm, &V->k_norm, &V->ffn_norm};
        for (size_t i = 0; i < 7; i++)
            if ((st = upload_mat(c, msrc[i], mdst[i], err)) != SLUICE_OK) goto fail;
        for (size_t i = 0; i < 7; i++)
            if ((st = upload(c, vsrc[i], vdst[i], err)) != SLUICE_OK) goto fail;
        if ((st = scratch(c, kv_layer, VK_MEM_DEVICE, &V->kc, err)) != SLUICE_OK) goto fail;
        if ((st = scratch(c, kv_layer, VK_MEM_DEVICE, &V->vc, err)) != SLUICE_OK) goto fail;
    }
    uint64_t nb = c->n_batch;
    struct { vk_buffer **b; uint64_t n; vk_mem_kind kind; } sc[] = {
        {&c->x, nb * E, VK_MEM_DEVICE},        {&c->xb, nb * E, VK_MEM_DEVICE},
        {&c->q, nb * qdim, VK_MEM_DEVICE},     {&c->k, nb * kvdim, VK_MEM_DEVICE},
        {&c->v, nb * kvdim, VK_MEM_DEVICE},    {&c->att, nb * qdim, VK_MEM_DEVICE},
        {&c->gate, nb * hp->n_ff, VK_MEM_DEVICE}, {&c->up, nb * hp->n_ff, VK_MEM_DEVICE},
        {&c->io, 6 * nb + c->tbl_cap, VK_MEM_HOST}, {&c->logits, hp->n_vocab, VK_MEM_HOST},
        {&c->xg, nb * E, VK_MEM_DEVICE},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        if ((st = scratch(c, sc[i].n * 4, sc[i].kind, sc[i].b, err)) != SLUICE_OK) goto fail;
    const char *ac = getenv("SLUICE_VK_ATTN_CHUNK");
    c->attn_chunk = ac && atoi(ac) > 0 ? (uint32_t)atoi(ac) : vk_device_caps(c->d).lane_rows ? 0 : VKF_ATTN_CHUNK;
    if (c->attn_chunk &&
        (st = scratch(c, sizeof(float) * hp->n_head * VKF_ATTN_SPLITS * (uint64_t)(hd + 2), VK_MEM_DEVICE,
                      &c->attn_part, err)) != SLUICE_OK)
        goto fail;
    c->io_host = malloc(sizeof(uint32_t) * (6 * nb + c->tbl_cap));
    if (!c->io_host) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->logits_rows = 1;
    c->logits_cap = 1;
    c->logits_host = calloc(hp->n_vocab, sizeof(float));
    if (!c->logits_host) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = c;
    return SLUICE_OK;
fail:
    vkf_free(c);
    return st;
}

void vkf_free(vkf_ctx *c) {
    if (!c) return;
    if (c->d) {
        for (uint32_t l = 0; c->layers && l < c->m->hp.n_layer; l++) {
            vkf_layer *V = &c->layers[l];
            vkf_mat *ms[] = {&V->wq, &V->wk, &V->wv, &V->wo, &V->w_gate, &V->w_up, &V->w_down};
            for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) free_mat(c->d, ms[i]);
            vk_buffer *bs[] = {V->attn_norm, V->bq,       V->bk, V->bv, V->q_norm,
                               V->k_norm,    V->ffn_norm, V->kc, V->vc};
            for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) vk_buffer_destroy(c->d, bs[i]);
        }
        free_mat(c->d, &c->output_own);
        free_mat(c->d, &c->tok_embd);
        vk_buffer *bs[] = {c->out_norm, c->x,  c->xb, c->q,      c->k,        c->v,
                           c->att,      c->gate, c->up, c->io, c->logits, c->attn_part, c->xg};
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) vk_buffer_destroy(c->d, bs[i]);
    }
    vk_device_destroy(c->d);
    if (c->own_inst) vk_instance_destroy(c->inst);
    free(c->layers);
    free(c->logits_host);
    free(c->io_host);
    free(c);
}

uint32_t vkf_n_past(const vkf_ctx *c) { return c->n_past; }
uint32_t vkf_n_ctx(const vkf_ctx *c) { return c->n_ctx; }
uint64_t vkf_memory_bytes(const vkf_ctx *c) { return c->mem_bytes; }
const vk_device_info *vkf_device_info(const vkf_ctx *c) { return vk_device_info_of(c->d); }
const float *vkf_last_logits(const vkf_ctx *c) {
    return c->logits_host + (uint64_t)(c->n_out ? c->n_out - 1 : 0) * c->m->hp.n_vocab;
}
const float *vkf_logits(const vkf_ctx *c, uint32_t i) {
    return i < c->n_out ? c->logits_host + (uint64_t)i * c->m->hp.n_vocab : NULL;
}
uint32_t vkf_n_batch(const vkf_ctx *c) { return c->n_batch; }

uint32_t vkf_weight_buffers(const vkf_ctx *c) {
    uint32_t n = c->tok_embd.n_parts + c->output_own.n_parts + (c->out_norm != NULL);
    for (uint32_t l = 0; l < c->m->hp.n_layer; l++) {
        const vkf_layer *V = &c->layers[l];
        const vkf_mat *ms[] = {&V->wq, &V->wk, &V->wv, &V->wo, &V->w_gate, &V->w_up, &V->w_down};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) n += ms[i]->n_parts;
        vk_buffer *bs[] = {V->attn_norm, V->bq, V->bk, V->bv, V->q_norm, V->k_norm, V->ffn_norm};
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) n += bs[i] != NULL;
    }
    return n;
}
void vkf_truncate(vkf_ctx *c, uint32_t n_past) { if (n_past < c->n_past) c->n_past = n_past; }

#define TRY(call)                                          \
    do {                                                   \
        if ((st = (call)) != SLUICE_OK) return st;         \
    } while (0)

static uint32_t rows_of(const gguf_tensor *t) { return (uint32_t)t->ne[1]; }
static uint32_t cols_of(const gguf_tensor *t) { return (uint32_t)t->ne[0]; }

/* y = x W^T for n tokens: rows of x (cols of W) from float x_off, rows of
 * y from float y_off, both token-major; part by part for a split W.
 * mul_mat_vec for one token, mul_mat for more. Adds the products to
 * *macs. */
static sluice_status matmul(vkf_ctx *c, const vkf_mat *M, vk_buffer *x, uint64_t x_off, vk_buffer *y, uint64_t y_off,
                            uint32_t n, double *macs, sluice_error *err) {
    uint32_t rows = rows_of(M->t), cols = cols_of(M->t);
    *macs += (double)rows * cols * n;
    for (uint32_t i = 0; i < M->n_parts; i++) {
        uint32_t r0 = i * M->part_rows, pr = rows - r0 < M->part_rows ? rows - r0 : M->part_rows;
        sluice_status st =
            n == 1 ? vk_op_mul_mat_vec(c->d, M->t->type, M->parts[i], 0, x, x_off, y, y_off + r0, pr, cols, err)
                   : vk_op_mul_mat(c->d, M->t->type, M->parts[i], 0, x, x_off, cols, y, y_off + r0, rows, pr, cols, n,
                                   err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* dst rows = embedding rows of the n tokens in io: part by part for a
 * split table (each part fills the tokens whose ids it holds). */
static sluice_status embed(vkf_ctx *c, uint32_t n, sluice_error *err) {
    const vkf_mat *M = &c->tok_embd;
    uint32_t rows = rows_of(M->t), cols = cols_of(M->t);
    if (M->n_parts == 1) return vk_op_get_rows(c->d, M->t->type, M->parts[0], 0, rows, cols, c->io, 0, n, c->x, 0, err);
    vk_step_note_weight_bytes(c->d, M->t->n_bytes / rows * n);
    for (uint32_t i = 0; i < M->n_parts; i++) {
        uint32_t r0 = i * M->part_rows, pr = rows - r0 < M->part_rows ? rows - r0 : M->part_rows;
        sluice_status st =
            vk_op_get_rows_part(c->d, M->t->type, M->parts[i], 0, r0, pr, cols, c->io, 0, n, c->x, 0, true, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* Records one chunk of n tokens (the step is open; io holds tokens and
 * positions). Unpaged (vkf_eval): one sequence at positions pos0.., slot =
 * position; with all_logits every token's logits go to rows 0..n-1 of
 * c->logits, else the last token's to row 0. Paged (vkf_decode): io also
 * holds slots, per-token attention info and block tables, and the n_out
 * tokens listed in io's out_ids get logits rows 0..n_out-1. Submits and
 * reopens the step between layers when the work recorded since the last
 * submission passes VKF_SUBMIT_MACS. */
static sluice_status record_chunk(vkf_ctx *c, uint32_t n, uint32_t pos0, bool all_logits, bool paged, uint32_t n_out,
                                  sluice_error *err) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    vk_device *d = c->d;
    sluice_status st;
    uint32_t E = hp->n_embd, hd = hp->head_dim, qdim = hp->n_head * hd, kvdim = hp->n_head_kv * hd, F = hp->n_ff;
    uint32_t P = c->n_batch; /* positions start here in io */
    bool f16 = c->kv == KV_F16;
    double macs = 0;
    /* one token over a long KV: split the attention over the sequence */
    uint32_t kv_chunk = 0;
    if (!paged && n == 1 && c->attn_chunk && pos0 + 1 > 2 * c->attn_chunk) {
        kv_chunk = c->attn_chunk;
        if ((pos0 + 1 + kv_chunk - 1) / kv_chunk > VKF_ATTN_SPLITS)
            kv_chunk = (pos0 + 1 + VKF_ATTN_SPLITS - 1) / VKF_ATTN_SPLITS;
    }
    vk_rope_params rp = {.n_rot = hp->n_rot,
                         .neox = m->arch->rope == ROPE_NEOX,
                         .freq_base = hp->rope_base,
                         .freq_scale = hp->rope_freq_scale,
                         .ext_factor = hp->yarn_ext_factor,
                         .attn_factor = hp->yarn_attn_factor,
                         .beta_fast = hp->yarn_beta_fast,
                         .beta_slow = hp->yarn_beta_slow,
                         .n_ctx_orig = hp->n_ctx_orig};
    TRY(embed(c, n, err));
    vk_step_barrier(d);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkf_layer *V = &c->layers[l];
        if (macs >= VKF_SUBMIT_MACS) { /* keep each submission short */
            TRY(vk_step_submit(d, err));
            TRY(vk_step_begin(d, err));
            macs = 0;
        }
        TRY(vk_op_rms_norm(d, c->x, V->attn_norm, c->xb, E, n, hp->rms_eps, err));
        vk_step_barrier(d);
        TRY(matmul(c, &V->wq, c->xb, 0, c->q, 0, n, &macs, err));
        TRY(matmul(c, &V->wk, c->xb, 0, c->k, 0, n, &macs, err));
        TRY(matmul(c, &V->wv, c->xb, 0, c->v, 0, n, &macs, err));
        vk_step_barrier(d);
        if (V->bq || V->bk || V->bv) {
            if (V->bq) TRY(vk_op_add_rows(d, c->q, 0, V->bq, 0, qdim, n, err));
            if (V->bk) TRY(vk_op_add_rows(d, c->k, 0, V->bk, 0, kvdim, n, err));
            if (V->bv) TRY(vk_op_add_rows(d, c->v, 0, V->bv, 0, kvdim, n, err));
            vk_step_barrier(d);
        }
        if (V->q_norm || V->k_norm) {
            if (V->q_norm) TRY(vk_op_rms_norm(d, c->q, V->q_norm, c->q, hd, n * hp->n_head, hp->rms_eps, err));
            if (V->k_norm) TRY(vk_op_rms_norm(d, c->k, V->k_norm, c->k, hd, n * hp->n_head_kv, hp->rms_eps, err));
            vk_step_barrier(d);
        }
        TRY(vk_op_rope(d, c->q, 0, c->io, P, hd, hp->n_head, n, &rp, err));
        TRY(vk_op_rope(d, c->k, 0, c->io, P, hd, hp->n_head_kv, n, &rp, err));
        vk_step_barrier(d);
        TRY(vk_op_kv_store(d, f16, c->k, c->v, c->io, paged ? 2 * P : P, kvdim, n, V->kc, 0, V->vc, 0, c->n_slots,
                           err));
        vk_step_barrier(d);
        if (paged)
            TRY(vk_op_attention_paged(d, f16, c->q, V->kc, V->vc, c->att, c->io, 4 * P, hd, hp->n_head, hp->n_head_kv,
                                      n, c->n_slots, err));
        else
            TRY(vk_op_attention_split(d, f16, c->q, V->kc, 0, V->vc, 0, c->att, c->attn_part, hd, hp->n_head,
                                      hp->n_head_kv, n, pos0, c->n_slots, kv_chunk, err));
        macs += (double)n * (pos0 + n) * qdim * 2;
        vk_step_barrier(d);
        TRY(matmul(c, &V->wo, c->att, 0, c->xb, 0, n, &macs, err));
        vk_step_barrier(d);
        TRY(vk_op_add(d, c->x, 0, c->xb, 0, n * E, err));
        vk_step_barrier(d);
        TRY(vk_op_rms_norm(d, c->x, V->ffn_norm, c->xb, E, n, hp->rms_eps, err));
        vk_step_barrier(d);
        TRY(matmul(c, &V->w_gate, c->xb, 0, c->gate, 0, n, &macs, err));
        TRY(matmul(c, &V->w_up, c->xb, 0, c->up, 0, n, &macs, err));
        vk_step_barrier(d);
        TRY(vk_op_silu_mul(d, c->gate, 0, c->up, 0, n * F, err));
        vk_step_barrier(d);
        TRY(matmul(c, &V->w_down, c->gate, 0, c->xb, 0, n, &macs, err));
        vk_step_barrier(d);
        TRY(vk_op_add(d, c->x, 0, c->xb, 0, n * E, err));
        vk_step_barrier(d);
    }
    TRY(vk_op_rms_norm(d, c->x, c->out_norm, c->xb, E, n, hp->rms_eps, err));
    vk_step_barrier(d);
    if (paged) { /* the rows of the tokens that want logits, gathered */
        if (!n_out) return SLUICE_OK;
        TRY(vk_op_get_rows(d, QT_F32, c->xb, 0, n, E, c->io, 3 * P, n_out, c->xg, 0, err));
        vk_step_barrier(d);
        return matmul(c, c->output, c->xg, 0, c->logits, 0, n_out, &macs, err);
    }
    uint32_t first = all_logits ? 0 : n - 1;
    return matmul(c, c->output, c->xb, (uint64_t)first * E, c->logits, 0, n - first, &macs, err);
}

/* Makes room for all_logits: the device buffer for n_batch rows and host
 * rows for n tokens. */
static sluice_status logits_room(vkf_ctx *c, uint32_t n, bool all_logits, sluice_error *err) {
    uint64_t V = c->m->hp.n_vocab;
    uint32_t rows = all_logits ? n : 1;
    if (rows > c->logits_cap) {
        float *h = realloc(c->logits_host, rows * V * sizeof(float));
        if (!h) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory for %u rows of logits", rows);
        c->logits_host = h;
        c->logits_cap = rows;
    }
    if (all_logits && c->logits_rows < c->n_batch) {
        vk_buffer *b = NULL;
        sluice_status st = vk_buffer_create(c->d, c->n_batch * V * sizeof(float), VK_MEM_HOST, &b, err);
        if (st != SLUICE_OK) return st;
        vk_buffer_destroy(c->d, c->logits);
        c->mem_bytes += (uint64_t)(c->n_batch - c->logits_rows) * V * sizeof(float);
        c->logits = b;
        c->logits_rows = c->n_batch;
    }
    return SLUICE_OK;
}

sluice_status vkf_eval(vkf_ctx *c, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err) {
    const model_hparams *hp = &c->m->hp;
    if (n == 0) return sluice_fail(err, SLUICE_ERR_ARG, "vkf_eval: no tokens");
    if (n > c->n_ctx - c->n_past)
        return sluice_fail(err, SLUICE_ERR_RANGE, "context full: %u cached + %u new tokens exceed the context of %u",
                           c->n_past, n, c->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= hp->n_vocab)
            return sluice_fail(err, SLUICE_ERR_ARG, "token %d at index %u is outside the vocabulary (0..%u)", tokens[i],
                               i, hp->n_vocab - 1);
    sluice_status st;
    TRY(logits_room(c, n, all_logits, err));
    c->n_out = 0;
    uint64_t V = hp->n_vocab;
    int32_t *io = malloc(2 * sizeof(int32_t) * c->n_batch);
    if (!io) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (uint32_t i0 = 0; i0 < n; i0 += c->n_batch) {
        uint32_t k = n - i0 < c->n_batch ? n - i0 : c->n_batch;
        for (uint32_t j = 0; j < k; j++) io[j] = tokens[i0 + j], io[c->n_batch + j] = (int32_t)(c->n_past + j);
        if ((st = vk_buffer_write(c->d, c->io, 0, io, 2 * sizeof(int32_t) * c->n_batch, err)) != SLUICE_OK) break;
        if ((st = vk_step_begin(c->d, err)) != SLUICE_OK) break;
        st = record_chunk(c, k, c->n_past, all_logits, false, 0, err);
        sluice_status st2 = vk_step_submit(c->d, st == SLUICE_OK ? err : NULL);
        if (st == SLUICE_OK) st = st2;
        if (st != SLUICE_OK) break;
        c->n_past += k;
        /* every token's logits, or the last one's after the last chunk */
        if (all_logits)
            st = vk_buffer_read(c->d, c->logits, 0, c->logits_host + (uint64_t)i0 * V, k * V * sizeof(float), err);
        else if (i0 + k == n)
            st = vk_buffer_read(c->d, c->logits, 0, c->logits_host, V * sizeof(float), err);
        if (st != SLUICE_OK) break;
    }
    free(io);
    if (st == SLUICE_OK) c->n_out = all_logits ? n : 1;
    return st;
}

vk_device *vkf_device(vkf_ctx *c) { return c->d; }

uint64_t vkf_weight_bytes(const vkf_ctx *c) {
    const model *m = c->m;
    uint64_t n = m->tok_embd->n_bytes + m->out_norm->n_bytes + (c->output != &c->tok_embd ? m->output->n_bytes : 0);
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *t[] = {L->attn_norm, L->wq,     L->wk,     L->wv,       L->wo,     L->bq,   L->bk,
                                  L->bv,        L->q_norm, L->k_norm, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) n += t[i] ? t[i]->n_bytes : 0;
    }
    return n;
}

/* ---- many sequences (engine/session.h) ---- */

_Static_assert(VK_KV_BLOCK == FWD_KV_BLOCK, "the shaders' KV block is the engine's");

static uint32_t slot_of(const uint32_t *blocks, uint32_t pos) {
    return blocks[pos / VK_KV_BLOCK] * VK_KV_BLOCK + pos % VK_KV_BLOCK;
}

sluice_status vkf_decode(vkf_ctx *c, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err) {
    const model_hparams *hp = &c->m->hp;
    if (n == 0) return sluice_fail(err, SLUICE_ERR_ARG, "vkf_decode: no tokens");
    for (uint32_t i = 0; i < n; i++) {
        if (tok[i].token < 0 || (uint32_t)tok[i].token >= hp->n_vocab)
            return sluice_fail(err, SLUICE_ERR_ARG, "token %d at index %u is outside the vocabulary (0..%u)",
                               tok[i].token, i, hp->n_vocab - 1);
        if (!tok[i].blocks || slot_of(tok[i].blocks, tok[i].pos) >= c->n_slots)
            return sluice_fail(err, SLUICE_ERR_RANGE, "token %u: KV slot for position %u outside the %u-slot cache", i,
                               tok[i].pos, c->n_slots);
        if (tok[i].pos / VK_KV_BLOCK + 1 > c->tbl_cap)
            return sluice_fail(err, SLUICE_ERR_RANGE, "token %u: position %u past the block tables", i, tok[i].pos);
    }
    sluice_status st = SLUICE_OK;
    const uint32_t P = c->n_batch, V = hp->n_vocab;
    uint32_t *io = c->io_host, *tables = io + 6 * P;
    for (uint32_t i0 = 0; i0 < n && st == SLUICE_OK;) {
        /* A chunk: up to n_batch tokens; the block table of each distinct
         * sequence in it (up to its highest position in the chunk) is
         * packed after the fixed arrays, all tables within tbl_cap. */
        uint32_t k = 0, used = 0, n_out = 0;
        const uint32_t *tbl_ptr[64];
        uint32_t tbl_off[64], tbl_len[64], n_tbl = 0;
        while (i0 + k < n && k < P) {
            const fwd_tok *t = &tok[i0 + k];
            uint32_t need = t->pos / VK_KV_BLOCK + 1, j = 0;
            while (j < n_tbl && tbl_ptr[j] != t->blocks) j++;
            uint32_t grow = j == n_tbl ? need : need > tbl_len[j] ? need - tbl_len[j] : 0;
            if ((j == n_tbl && n_tbl == 64) || used + grow > c->tbl_cap) break;
            if (j == n_tbl) tbl_ptr[n_tbl] = t->blocks, tbl_len[n_tbl++] = 0;
            used += grow;
            if (need > tbl_len[j]) tbl_len[j] = need;
            io[k] = (uint32_t)t->token;
            io[P + k] = t->pos;
            io[2 * P + k] = slot_of(t->blocks, t->pos);
            io[4 * P + 2 * k] = t->pos + 1;
            io[4 * P + 2 * k + 1] = j; /* table index for now; offsets below */
            if (t->logits) io[3 * P + n_out++] = k;
            k++;
        }
        if (!k) return sluice_fail(err, SLUICE_ERR_RANGE, "vkf_decode: one token's block table exceeds %u entries",
                                   c->tbl_cap);
        for (uint32_t j = 0, off = 0; j < n_tbl; off += tbl_len[j++]) tbl_off[j] = off;
        for (uint32_t t = 0; t < k; t++) io[4 * P + 2 * t + 1] = 6 * P + tbl_off[io[4 * P + 2 * t + 1]];
        for (uint32_t j = 0; j < n_tbl; j++) memcpy(tables + tbl_off[j], tbl_ptr[j], sizeof(uint32_t) * tbl_len[j]);
        if (n_out > 1 && (st = logits_room(c, n_out, true, err)) != SLUICE_OK) break;
        if ((st = vk_buffer_write(c->d, c->io, 0, io, sizeof(uint32_t) * (6 * P + used), err)) != SLUICE_OK) break;
        if ((st = vk_step_begin(c->d, err)) != SLUICE_OK) break;
        st = record_chunk(c, k, 0, false, true, n_out, err);
        sluice_status st2 = vk_step_submit(c->d, st == SLUICE_OK ? err : NULL);
        if (st == SLUICE_OK) st = st2;
        if (st == SLUICE_OK && n_out)
            st = vk_buffer_read(c->d, c->logits, 0, logits, sizeof(float) * (uint64_t)n_out * V, err);
        logits += (size_t)n_out * V;
        i0 += k;
    }
    return st;
}

sluice_status vkf_copy_block(vkf_ctx *c, uint32_t src, uint32_t dst) {
    const model_hparams *hp = &c->m->hp;
    uint64_t kvdim = (uint64_t)hp->n_head_kv * hp->head_dim, e = c->kv == KV_F16 ? 2 : 4, B = VK_KV_BLOCK;
    if ((src + 1) * B > c->n_slots || (dst + 1) * B > c->n_slots) return SLUICE_ERR_RANGE;
    if (src == dst) return SLUICE_OK;
    sluice_status st = vk_step_begin(c->d, NULL);
    for (uint32_t l = 0; st == SLUICE_OK && l < hp->n_layer; l++) {
        const vkf_layer *V = &c->layers[l];
        st = vk_op_copy_regions(c->d, V->kc, src * B * kvdim * e, 0, V->kc, dst * B * kvdim * e, 0, B * kvdim * e, 1,
                                NULL);
        if (st == SLUICE_OK)
            st = vk_op_copy_regions(c->d, V->vc, src * B * e, c->n_slots * e, V->vc, dst * B * e, c->n_slots * e, B * e,
                                    (uint32_t)kvdim, NULL);
    }
    sluice_status st2 = vk_step_submit(c->d, NULL);
    return st != SLUICE_OK ? st : st2;
}

uint32_t vkf_n_slots(const vkf_ctx *c) { return c->n_slots; }
