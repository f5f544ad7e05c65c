/* model.c — bind a GGUF file to a model: hyperparameters from
 * "<arch>.<key>" metadata, tensors by their GGUF names, shapes checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"

typedef struct loader {
    const gguf_file *g;
    const char *name;
    const char *arch;
    sluice_error *err;
} loader;

static bool key_u32(loader *L, const char *suffix, uint32_t *out, bool required) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    if (gguf_get_u32(L->g, key, out)) return true;
    if (gguf_find(L->g, key)) {
        sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: metadata key '%s' is not a non-negative integer", L->name, key);
        return false;
    }
    if (required) sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: missing metadata key '%s'", L->name, key);
    return !required;
}

static bool key_f32(loader *L, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    if (gguf_get_f32(L->g, key, out) || !gguf_find(L->g, key)) return true;
    sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: metadata key '%s' is not a float", L->name, key);
    return false;
}

/* Finds tensor `name` and checks its shape (ne0, ne1; ne1 == 0 means 1-D). */
static const gguf_tensor *tensor(loader *L, const char *name, uint64_t ne0, uint64_t ne1, bool required) {
    const gguf_tensor *t = gguf_find_tensor(L->g, name);
    if (!t) {
        if (required) sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: missing tensor '%s'", L->name, name);
        return NULL;
    }
    uint32_t want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%llu%s%llu] (%u-D)",
                    L->name, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)ne0,
                    ne1 ? ", " : "", (unsigned long long)(ne1 ? ne1 : 0), want_dims);
        return NULL;
    }
    const qtype_info *qi = qtype_get(t->type);
    if (!qi->compute) {
        sluice_fail(L->err, SLUICE_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which sluice cannot compute yet",
                    L->name, name, qi->name);
        return NULL;
    }
    if (ne1 == 0 && t->type != QT_F32) {
        sluice_fail(L->err, SLUICE_ERR_UNSUPPORTED, "%s: norm/bias tensor '%s' must be F32 (is %s)", L->name, name, qi->name);
        return NULL;
    }
    return t;
}

static sluice_status load_hparams(loader *L, model_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    if (!key_u32(L, "embedding_length", &hp->n_embd, true) || !key_u32(L, "block_count", &hp->n_layer, true) ||
        !key_u32(L, "feed_forward_length", &hp->n_ff, true) || !key_u32(L, "attention.head_count", &hp->n_head, true) ||
        !key_u32(L, "context_length", &hp->n_ctx_train, true))
        return L->err->status;
    hp->n_head_kv = hp->n_head;
    if (!key_u32(L, "attention.head_count_kv", &hp->n_head_kv, false)) return L->err->status;
    if (!hp->n_embd || !hp->n_layer || !hp->n_ff || !hp->n_head || !hp->n_head_kv || hp->n_head % hp->n_head_kv ||
        hp->n_embd > (1u << 20) || hp->n_layer > 4096 || hp->n_ff > (1u << 22) || hp->n_head > 4096)
        return sluice_fail(L->err, SLUICE_ERR_FORMAT,
                           "%s: bad dimensions: embedding %u, blocks %u, ffn %u, heads %u, kv heads %u "
                           "(heads must be a multiple of kv heads)",
                           L->name, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (!key_u32(L, "attention.key_length", &hp->head_dim, false)) return L->err->status;
    hp->head_dim_v = hp->head_dim;
    if (!key_u32(L, "attention.value_length", &hp->head_dim_v, false)) return L->err->status;
    hp->n_rot = hp->head_dim;
    if (!key_u32(L, "rope.dimension_count", &hp->n_rot, false)) return L->err->status;
    if (!hp->head_dim || hp->head_dim > 1024 || hp->head_dim_v != hp->head_dim || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return sluice_fail(L->err, SLUICE_ERR_UNSUPPORTED,
                           "%s: head size %u / value head size %u / rope dims %u not supported "
                           "(need equal K/V head sizes and an even rope dimension <= head size)",
                           L->name, hp->head_dim, hp->head_dim_v, hp->n_rot);
    hp->rms_eps = 1e-5f;
    hp->rope_base = 10000.0f;
    if (!key_f32(L, "attention.layer_norm_rms_epsilon", &hp->rms_eps) || !key_f32(L, "rope.freq_base", &hp->rope_base))
        return L->err->status;
    if (!(hp->rms_eps > 0) || !(hp->rope_base > 0))
        return sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: rms epsilon %g and rope base %g must be positive", L->name,
                           hp->rms_eps, hp->rope_base);

    /* rope scaling: rope.scaling.type (string) + factor; older files use rope.scale_linear */
    hp->rope_freq_scale = 1.0f;
    float factor = 0.0f;
    char key[128];
    gguf_str type = {0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", L->arch);
    bool has_type = gguf_get_str(L->g, key, &type);
    if (!key_f32(L, "rope.scaling.factor", &factor)) return L->err->status;
    if (has_type && gguf_str_eq(type, "yarn")) hp->scaling = ROPE_SCALING_YARN;
    else if (has_type && gguf_str_eq(type, "linear")) hp->scaling = ROPE_SCALING_LINEAR;
    else if (has_type && !gguf_str_eq(type, "none")) {
        char t[32];
        return sluice_fail(L->err, SLUICE_ERR_UNSUPPORTED, "%s: rope scaling type '%s' not supported (none, linear, yarn)",
                           L->name, gguf_str_copy(type, t, sizeof t));
    } else if (!has_type) {
        float lin = 0.0f;
        if (!key_f32(L, "rope.scale_linear", &lin)) return L->err->status;
        if (lin > 0 && lin != 1.0f) { hp->scaling = ROPE_SCALING_LINEAR; factor = lin; }
    }
    if (hp->scaling != ROPE_SCALING_NONE) {
        if (!(factor > 0))
            return sluice_fail(L->err, SLUICE_ERR_FORMAT, "%s: rope scaling needs a positive %s.rope.scaling.factor",
                               L->name, L->arch);
        hp->rope_freq_scale = 1.0f / factor;
    }
    hp->n_ctx_orig = hp->n_ctx_train;
    if (!key_u32(L, "rope.scaling.original_context_length", &hp->n_ctx_orig, false)) return L->err->status;
    hp->yarn_ext_factor = hp->scaling == ROPE_SCALING_YARN ? 1.0f : 0.0f;
    hp->yarn_attn_factor = 1.0f;
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    if (!key_f32(L, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast) ||
        !key_f32(L, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow))
        return L->err->status;
    return SLUICE_OK;
}

sluice_status model_from_gguf(model **out, gguf_file *g, const char *name, sluice_error *err) {
    *out = NULL;
    sluice_error local = {0};
    if (!err) err = &local;
    err->status = SLUICE_OK;
    model *m = calloc(1, sizeof *m);
    if (!m) { gguf_close(g); return sluice_fail(err, SLUICE_ERR_NOMEM, "%s: out of memory", name); }
    m->gguf = g;
    gguf_str arch;
    char archname[64];
    if (!gguf_get_str(g, "general.architecture", &arch)) {
        sluice_fail(err, SLUICE_ERR_FORMAT, "%s: missing metadata key 'general.architecture'", name);
        goto fail;
    }
    gguf_str_copy(arch, archname, sizeof archname);
    m->arch = arch_find(archname);
    if (!m->arch) {
        sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (supported: %s)", name, archname,
                    arch_supported_list());
        goto fail;
    }
    loader L = {g, name, m->arch->name, err};
    model_hparams *hp = &m->hp;
    if (load_hparams(&L, hp)) goto fail;

    /* vocabulary size: from the embedding tensor (authoritative) */
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb) { sluice_fail(err, SLUICE_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", name); goto fail; }
    hp->n_vocab = emb->ne[1] <= (1u << 24) ? (uint32_t)emb->ne[1] : 0;
    if (!hp->n_vocab) { sluice_fail(err, SLUICE_ERR_FORMAT, "%s: token_embd.weight has %llu rows", name, (unsigned long long)emb->ne[1]); goto fail; }

    uint32_t E = hp->n_embd, hd = hp->head_dim, F = hp->n_ff;
    uint64_t qdim = (uint64_t)hp->n_head * hd, kvdim = (uint64_t)hp->n_head_kv * hd;
    if (!(m->tok_embd = tensor(&L, "token_embd.weight", E, hp->n_vocab, true))) goto fail;
    if (!(m->out_norm = tensor(&L, "output_norm.weight", E, 0, true))) goto fail;
    m->output = tensor(&L, "output.weight", E, hp->n_vocab, false);
    if (!m->output) {
        if (err->status) goto fail; /* present but bad */
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) { sluice_fail(err, SLUICE_ERR_NOMEM, "%s: out of memory", name); goto fail; }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        layer_weights *w = &m->layers[l];
        char nm[96];
#define T(field, suffix, a, b, req)                                  \
        snprintf(nm, sizeof nm, "blk.%u.%s", l, suffix);              \
        w->field = tensor(&L, nm, a, b, req);                         \
        if (!w->field && (req || err->status)) goto fail;
        T(attn_norm, "attn_norm.weight", E, 0, true)
        T(wq, "attn_q.weight", E, qdim, true)
        T(wk, "attn_k.weight", E, kvdim, true)
        T(wv, "attn_v.weight", E, kvdim, true)
        T(wo, "attn_output.weight", qdim, E, true)
        T(ffn_norm, "ffn_norm.weight", E, 0, true)
        T(w_gate, "ffn_gate.weight", E, F, true)
        T(w_up, "ffn_up.weight", E, F, true)
        T(w_down, "ffn_down.weight", F, E, true)
        T(bq, "attn_q.bias", qdim, 0, m->arch->qkv_bias)
        T(bk, "attn_k.bias", kvdim, 0, m->arch->qkv_bias)
        T(bv, "attn_v.bias", kvdim, 0, m->arch->qkv_bias)
        T(q_norm, "attn_q_norm.weight", hd, 0, m->arch->qk_norm)
        T(k_norm, "attn_k_norm.weight", hd, 0, m->arch->qk_norm)
#undef T
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        m->n_params += g->tensors[i].n_elements;
        m->weight_bytes += g->tensors[i].n_bytes;
    }
    *out = m;
    return SLUICE_OK;
fail:
    model_free(m);
    return err->status ? err->status : SLUICE_ERR_FORMAT;
}

sluice_status model_load(model **out, const char *path, sluice_error *err) {
    *out = NULL;
    gguf_file *g;
    sluice_status st = gguf_open(&g, path, err);
    if (st) return st;
    return model_from_gguf(out, g, path, err);
}

void model_free(model *m) {
    if (!m) return;
    gguf_close(m->gguf);
    free(m->layers);
    free(m);
}
