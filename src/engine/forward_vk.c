/* forward_vk.c — the Vulkan forward pass (see forward_vk.h). Per token, in
 * one step, with a barrier between dependent ops:
 *   x = get_rows(tok_embd, tok)
 *   per layer: xb = rms_norm(x) * attn_norm
 *              q, k, v = Wq xb, Wk xb, Wv xb  (+ bq, bk, bv via add)
 *              q, k = rms_norm over rows of head_dim (qk_norm archs); rope
 *              cache <- k, v;  att = attention(q, cache)
 *              xb = Wo att;  x += xb
 *              xb = rms_norm(x) * ffn_norm
 *              gate, up = Wg xb, Wu xb;  gate = silu(gate) * up
 *              xb = Wd gate;  x += xb
 *   logits = Wout (rms_norm(x) * out_norm)   (into a host-visible buffer)
 * The token id and its position live in a small host-visible buffer
 * (int32 [token, position]) read by get_rows, rope and kv_store. */
#include "engine/forward_vk.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/vulkan/ops.h"
#include "backend/vulkan/runtime.h"

typedef struct vkf_layer {
    vk_buffer *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *q_norm, *k_norm, *ffn_norm, *w_gate, *w_up, *w_down;
    vk_buffer *kc, *vc; /* (n_ctx, kvdim) rows; (kvdim, n_ctx) V transposed */
} vkf_layer;

struct vkf_ctx {
    const model *m;
    vk_instance *inst;
    bool own_inst;
    vk_device *d;
    kv_type kv;
    uint32_t n_ctx, n_past;
    vkf_layer *layers;                      /* n_layer */
    vk_buffer *tok_embd, *out_norm, *output; /* output == tok_embd when tied */
    /* scratch for one token */
    vk_buffer *x, *xb, *q, *k, *v, *att, *gate, *up;
    vk_buffer *io;     /* host: int32 [token, position] */
    vk_buffer *logits; /* host: (n_vocab) F32 */
    float *logits_host;
    uint64_t mem_bytes;
};

static uint64_t round4(uint64_t n) { return (n + 3) / 4 * 4; }

/* Checks what the kernels need of one tensor and adds its device bytes. */
static sluice_status check_tensor(const gguf_tensor *t, bool matrix, uint64_t max_buf, uint64_t *bytes,
                                  sluice_error *err) {
    if (!t) return SLUICE_OK;
    if (matrix ? !vk_mul_mat_vec_supports(t->type) : t->type != QT_F32)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vulkan: tensor %.*s has type %s, which has no kernel",
                           (int)t->name.len, t->name.ptr, qtype_get(t->type)->name);
    if (round4(t->n_bytes) > max_buf)
        return sluice_fail(err, SLUICE_ERR_RANGE,
                           "vulkan: tensor %.*s takes %llu bytes, more than one buffer may span (%llu); splitting "
                           "tensors across buffers is not done yet",
                           (int)t->name.len, t->name.ptr, (unsigned long long)t->n_bytes,
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

sluice_status vkf_create(vkf_ctx **out, const model *m, const vkf_params *p, sluice_error *err) {
    *out = NULL;
    const model_hparams *hp = &m->hp;
    vkf_params d = p ? *p : (vkf_params){.kv = KV_F16};
    if (!d.n_ctx) d.n_ctx = hp->n_ctx_train;
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
    sluice_status st = open_device(c, &d, err);
    if (st != SLUICE_OK) goto fail;
    const vk_device_info *info = vk_device_info_of(c->d);
    uint64_t max_buf = info->max_storage_buffer_range < info->max_alloc ? info->max_storage_buffer_range
                                                                        : info->max_alloc;

    /* What it all takes, checked before anything is uploaded. */
    uint64_t E = hp->n_embd, hd = hp->head_dim, qdim = (uint64_t)hp->n_head * hd, kvdim = (uint64_t)hp->n_head_kv * hd;
    uint64_t weights = 0;
    st = check_tensor(m->tok_embd, true, max_buf, &weights, err);
    if (st == SLUICE_OK) st = check_tensor(m->out_norm, false, max_buf, &weights, err);
    if (st == SLUICE_OK && !m->tied_output && m->output != m->tok_embd)
        st = check_tensor(m->output, true, max_buf, &weights, err);
    for (uint32_t l = 0; st == SLUICE_OK && l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *mats[] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        const gguf_tensor *vecs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv, L->q_norm, L->k_norm};
        for (size_t i = 0; st == SLUICE_OK && i < 7; i++) st = check_tensor(mats[i], true, max_buf, &weights, err);
        for (size_t i = 0; st == SLUICE_OK && i < 7; i++) st = check_tensor(vecs[i], false, max_buf, &weights, err);
    }
    if (st != SLUICE_OK) goto fail;
    uint64_t elem = d.kv == KV_F16 ? 2 : 4;
    uint64_t kv_layer = round4((uint64_t)c->n_ctx * kvdim * elem);
    if (kv_layer > max_buf) {
        st = sluice_fail(err, SLUICE_ERR_RANGE, "vulkan: one layer's KV cache (%llu bytes) exceeds one buffer (%llu)",
                         (unsigned long long)kv_layer, (unsigned long long)max_buf);
        goto fail;
    }
    uint64_t act = sizeof(float) * (E * 2 + qdim * 2 + kvdim * 2 + (uint64_t)hp->n_ff * 2);
    uint64_t need = weights + 2 * kv_layer * hp->n_layer + act;
    uint64_t avail = 0;
    for (uint32_t h = 0; h < info->n_heaps; h++)
        if (info->heaps[h].device_local) avail += info->heaps[h].size;
    if (need > avail) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM,
                         "vulkan: the model does not fit on %s: needs %llu bytes (%llu MiB: weights %llu MiB, KV "
                         "cache %llu MiB), device-local memory has %llu bytes (%llu MiB)",
                         info->name, (unsigned long long)need, (unsigned long long)(need >> 20),
                         (unsigned long long)(weights >> 20), (unsigned long long)((2 * kv_layer * hp->n_layer) >> 20),
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
    if ((st = upload(c, m->tok_embd, &c->tok_embd, err)) != SLUICE_OK) goto fail;
    if ((st = upload(c, m->out_norm, &c->out_norm, err)) != SLUICE_OK) goto fail;
    if (m->tied_output || m->output == m->tok_embd) c->output = c->tok_embd;
    else if ((st = upload(c, m->output, &c->output, err)) != SLUICE_OK) goto fail;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        vkf_layer *V = &c->layers[l];
        const gguf_tensor *src[] = {L->attn_norm, L->wq,     L->wk,     L->wv,     L->wo,   L->bq,   L->bk,
                                    L->bv,        L->q_norm, L->k_norm, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
        vk_buffer **dst[] = {&V->attn_norm, &V->wq,     &V->wk,     &V->wv,       &V->wo,     &V->bq,   &V->bk,
                             &V->bv,        &V->q_norm, &V->k_norm, &V->ffn_norm, &V->w_gate, &V->w_up, &V->w_down};
        for (size_t i = 0; i < 14; i++)
            if ((st = upload(c, src[i], dst[i], err)) != SLUICE_OK) goto fail;
        if ((st = scratch(c, kv_layer, VK_MEM_DEVICE, &V->kc, err)) != SLUICE_OK) goto fail;
        if ((st = scratch(c, kv_layer, VK_MEM_DEVICE, &V->vc, err)) != SLUICE_OK) goto fail;
    }
    struct { vk_buffer **b; uint64_t n; vk_mem_kind kind; } sc[] = {
        {&c->x, E, VK_MEM_DEVICE},     {&c->xb, E, VK_MEM_DEVICE},       {&c->q, qdim, VK_MEM_DEVICE},
        {&c->k, kvdim, VK_MEM_DEVICE}, {&c->v, kvdim, VK_MEM_DEVICE},    {&c->att, qdim, VK_MEM_DEVICE},
        {&c->gate, hp->n_ff, VK_MEM_DEVICE}, {&c->up, hp->n_ff, VK_MEM_DEVICE}, {&c->io, 2, VK_MEM_HOST},
        {&c->logits, hp->n_vocab, VK_MEM_HOST},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        if ((st = scratch(c, sc[i].n * 4, sc[i].kind, sc[i].b, err)) != SLUICE_OK) goto fail;
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
            vk_buffer *bs[] = {V->attn_norm, V->wq,     V->wk,     V->wv,       V->wo,     V->bq,   V->bk,   V->bv,
                               V->q_norm,    V->k_norm, V->ffn_norm, V->w_gate, V->w_up, V->w_down, V->kc, V->vc};
            for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) vk_buffer_destroy(c->d, bs[i]);
        }
        if (c->output != c->tok_embd) vk_buffer_destroy(c->d, c->output);
        vk_buffer *bs[] = {c->tok_embd, c->out_norm, c->x,   c->xb, c->q,  c->k,
                           c->v,        c->att,      c->gate, c->up, c->io, c->logits};
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) vk_buffer_destroy(c->d, bs[i]);
    }
    vk_device_destroy(c->d);
    if (c->own_inst) vk_instance_destroy(c->inst);
    free(c->layers);
    free(c->logits_host);
    free(c);
}

uint32_t vkf_n_past(const vkf_ctx *c) { return c->n_past; }
uint32_t vkf_n_ctx(const vkf_ctx *c) { return c->n_ctx; }
uint64_t vkf_memory_bytes(const vkf_ctx *c) { return c->mem_bytes; }
const vk_device_info *vkf_device_info(const vkf_ctx *c) { return vk_device_info_of(c->d); }
const float *vkf_last_logits(const vkf_ctx *c) { return c->logits_host; }
void vkf_truncate(vkf_ctx *c, uint32_t n_past) { if (n_past < c->n_past) c->n_past = n_past; }

#define TRY(call)                                          \
    do {                                                   \
        if ((st = (call)) != SLUICE_OK) return st;         \
    } while (0)

static uint32_t rows_of(const gguf_tensor *t) { return (uint32_t)t->ne[1]; }
static uint32_t cols_of(const gguf_tensor *t) { return (uint32_t)t->ne[0]; }

/* Records one token's ops (the step is open; io holds token and position). */
static sluice_status record_token(vkf_ctx *c, uint32_t pos, sluice_error *err) {
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    vk_device *d = c->d;
    sluice_status st;
    uint32_t E = hp->n_embd, hd = hp->head_dim, qdim = hp->n_head * hd, kvdim = hp->n_head_kv * hd;
    bool f16 = c->kv == KV_F16;
    vk_rope_params rp = {.n_rot = hp->n_rot,
                         .neox = m->arch->rope == ROPE_NEOX,
                         .freq_base = hp->rope_base,
                         .freq_scale = hp->rope_freq_scale,
                         .ext_factor = hp->yarn_ext_factor,
                         .attn_factor = hp->yarn_attn_factor,
                         .beta_fast = hp->yarn_beta_fast,
                         .beta_slow = hp->yarn_beta_slow,
                         .n_ctx_orig = hp->n_ctx_orig};
    TRY(vk_op_get_rows(d, m->tok_embd->type, c->tok_embd, 0, hp->n_vocab, E, c->io, 0, 1, c->x, 0, err));
    vk_step_barrier(d);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const vkf_layer *V = &c->layers[l];
        TRY(vk_op_rms_norm(d, c->x, V->attn_norm, c->xb, E, 1, hp->rms_eps, err));
        vk_step_barrier(d);
        TRY(vk_op_mul_mat_vec(d, L->wq->type, V->wq, 0, c->xb, 0, c->q, 0, rows_of(L->wq), cols_of(L->wq), err));
        TRY(vk_op_mul_mat_vec(d, L->wk->type, V->wk, 0, c->xb, 0, c->k, 0, rows_of(L->wk), cols_of(L->wk), err));
        TRY(vk_op_mul_mat_vec(d, L->wv->type, V->wv, 0, c->xb, 0, c->v, 0, rows_of(L->wv), cols_of(L->wv), err));
        vk_step_barrier(d);
        if (V->bq || V->bk || V->bv) {
            if (V->bq) TRY(vk_op_add(d, c->q, 0, V->bq, 0, qdim, err));
            if (V->bk) TRY(vk_op_add(d, c->k, 0, V->bk, 0, kvdim, err));
            if (V->bv) TRY(vk_op_add(d, c->v, 0, V->bv, 0, kvdim, err));
            vk_step_barrier(d);
        }
        if (V->q_norm || V->k_norm) {
            if (V->q_norm) TRY(vk_op_rms_norm(d, c->q, V->q_norm, c->q, hd, hp->n_head, hp->rms_eps, err));
            if (V->k_norm) TRY(vk_op_rms_norm(d, c->k, V->k_norm, c->k, hd, hp->n_head_kv, hp->rms_eps, err));
            vk_step_barrier(d);
        }
        TRY(vk_op_rope(d, c->q, 0, c->io, 1, hd, hp->n_head, 1, &rp, err));
        TRY(vk_op_rope(d, c->k, 0, c->io, 1, hd, hp->n_head_kv, 1, &rp, err));
        vk_step_barrier(d);
        TRY(vk_op_kv_store(d, f16, c->k, c->v, c->io, 1, kvdim, 1, V->kc, 0, V->vc, 0, c->n_ctx, err));
        vk_step_barrier(d);
        TRY(vk_op_attention(d, f16, c->q, V->kc, 0, V->vc, 0, c->att, hd, hp->n_head, hp->n_head_kv, 1, pos, c->n_ctx,
                            err));
        vk_step_barrier(d);
        TRY(vk_op_mul_mat_vec(d, L->wo->type, V->wo, 0, c->att, 0, c->xb, 0, rows_of(L->wo), cols_of(L->wo), err));
        vk_step_barrier(d);
        TRY(vk_op_add(d, c->x, 0, c->xb, 0, E, err));
        vk_step_barrier(d);
        TRY(vk_op_rms_norm(d, c->x, V->ffn_norm, c->xb, E, 1, hp->rms_eps, err));
        vk_step_barrier(d);
        TRY(vk_op_mul_mat_vec(d, L->w_gate->type, V->w_gate, 0, c->xb, 0, c->gate, 0, rows_of(L->w_gate),
                              cols_of(L->w_gate), err));
        TRY(vk_op_mul_mat_vec(d, L->w_up->type, V->w_up, 0, c->xb, 0, c->up, 0, rows_of(L->w_up), cols_of(L->w_up),
                              err));
        vk_step_barrier(d);
        TRY(vk_op_silu_mul(d, c->gate, 0, c->up, 0, hp->n_ff, err));
        vk_step_barrier(d);
        TRY(vk_op_mul_mat_vec(d, L->w_down->type, V->w_down, 0, c->gate, 0, c->xb, 0, rows_of(L->w_down),
                              cols_of(L->w_down), err));
        vk_step_barrier(d);
        TRY(vk_op_add(d, c->x, 0, c->xb, 0, E, err));
        vk_step_barrier(d);
    }
    TRY(vk_op_rms_norm(d, c->x, c->out_norm, c->xb, E, 1, hp->rms_eps, err));
    vk_step_barrier(d);
    TRY(vk_op_mul_mat_vec(d, m->output->type, c->output, 0, c->xb, 0, c->logits, 0, hp->n_vocab, E, err));
    return SLUICE_OK;
}

sluice_status vkf_eval(vkf_ctx *c, const int32_t *tokens, uint32_t n, sluice_error *err) {
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
    for (uint32_t i = 0; i < n; i++) {
        int32_t io[2] = {tokens[i], (int32_t)c->n_past};
        TRY(vk_buffer_write(c->d, c->io, 0, io, sizeof io, err));
        TRY(vk_step_begin(c->d, err));
        st = record_token(c, c->n_past, err);
        sluice_status st2 = vk_step_submit(c->d, st == SLUICE_OK ? err : NULL);
        if (st != SLUICE_OK) return st;
        if (st2 != SLUICE_OK) return st2;
        c->n_past++;
    }
    return vk_buffer_read(c->d, c->logits, 0, c->logits_host, sizeof(float) * (uint64_t)hp->n_vocab, err);
}

vk_device *vkf_device(vkf_ctx *c) { return c->d; }

uint64_t vkf_weight_bytes(const vkf_ctx *c) {
    const model *m = c->m;
    uint64_t n = m->tok_embd->n_bytes + m->out_norm->n_bytes + (c->output != c->tok_embd ? m->output->n_bytes : 0);
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const gguf_tensor *t[] = {L->attn_norm, L->wq,     L->wk,     L->wv,       L->wo,     L->bq,   L->bk,
                                  L->bv,        L->q_norm, L->k_norm, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) n += t[i] ? t[i]->n_bytes : 0;
    }
    return n;
}
