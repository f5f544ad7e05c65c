/* model_gen.c — random-weight model writer (see model_gen.h). Weights are
 * N(0, 1/fan_in) so activations keep unit scale through the layers; norm
 * weights are near 1; biases small. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fp16.h"
#include "model/model_gen.h"

typedef struct gen_rng { uint64_t s; } gen_rng;

static double gen_uniform(gen_rng *r) {
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return ((r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float gen_normal(gen_rng *r) {
    double u1 = gen_uniform(r), u2 = gen_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct gen_ctx {
    gguf_writer *w;
    gen_rng rng;
    void **bufs;
    size_t n_bufs, cap_bufs;
    sluice_error *err;
} gen_ctx;

static void *keep(gen_ctx *g, size_t bytes) {
    if (g->n_bufs == g->cap_bufs) {
        size_t cap = g->cap_bufs ? g->cap_bufs * 2 : 64;
        void **nb = realloc(g->bufs, cap * sizeof *nb);
        if (!nb) return NULL;
        g->bufs = nb;
        g->cap_bufs = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p) g->bufs[g->n_bufs++] = p;
    return p;
}

/* kind: 0 = matrix N(0, 1/ne0), 1 = norm 1 + N(0, 0.1), 2 = bias N(0, 0.05) */
static sluice_status add(gen_ctx *g, const char *name, qtype type, uint64_t ne0, uint64_t ne1, int kind) {
    uint64_t n = ne0 * (ne1 ? ne1 : 1);
    if (kind) type = QT_F32;
    size_t esz = type == QT_F32 ? 4 : 2;
    uint8_t *buf = keep(g, (size_t)n * esz);
    if (!buf) return sluice_fail(g->err, SLUICE_ERR_NOMEM, "model_gen: out of memory");
    float scale = kind == 0 ? 1.0f / sqrtf((float)ne0) : kind == 1 ? 0.1f : 0.05f;
    for (uint64_t i = 0; i < n; i++) {
        float v = gen_normal(&g->rng) * scale + (kind == 1 ? 1.0f : 0.0f);
        if (type == QT_F32) memcpy(buf + i * 4, &v, 4);
        else {
            uint16_t h = type == QT_F16 ? f32_to_fp16(v) : f32_to_bf16(v);
            memcpy(buf + i * 2, &h, 2);
        }
    }
    uint64_t ne[2] = {ne0, ne1};
    return gguf_writer_add_tensor(g->w, name, type, ne1 ? 2 : 1, ne, buf, g->err);
}

/* Small SentencePiece-style vocab: <unk> <s> </s>, 256 byte tokens, then
 * filler pieces, n_vocab in all (>= 259). */
static sluice_status small_vocab(gen_ctx *g, uint32_t n_vocab) {
    gguf_value *items = keep(g, sizeof(gguf_value) * n_vocab);
    char *text = keep(g, (size_t)n_vocab * 16);
    float *scores = keep(g, sizeof(float) * n_vocab);
    int32_t *types = keep(g, sizeof(int32_t) * n_vocab);
    if (!items || !text || !scores || !types) return sluice_fail(g->err, SLUICE_ERR_NOMEM, "model_gen: out of memory");
    for (uint32_t i = 0; i < n_vocab; i++) {
        char *t = text + (size_t)i * 16;
        if (i == 0) strcpy(t, "<unk>");
        else if (i == 1) strcpy(t, "<s>");
        else if (i == 2) strcpy(t, "</s>");
        else if (i < 259) snprintf(t, 16, "<0x%02X>", i - 3);
        else snprintf(t, 16, "\xe2\x96\x81w%u", i - 259);
        items[i] = (gguf_value){.type = GGUF_T_STRING, .s = {t, strlen(t)}};
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    gguf_value v = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_STRING, n_vocab, NULL, items}};
    sluice_status st = gguf_writer_set(g->w, "tokenizer.ggml.tokens", &v, g->err);
    gguf_value sc = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_F32, n_vocab, (const uint8_t *)scores, NULL}};
    gguf_value ty = {.type = GGUF_T_ARRAY, .arr = {GGUF_T_I32, n_vocab, (const uint8_t *)types, NULL}};
    if (!st) st = gguf_writer_set(g->w, "tokenizer.ggml.scores", &sc, g->err);
    if (!st) st = gguf_writer_set(g->w, "tokenizer.ggml.token_type", &ty, g->err);
    if (!st) st = gguf_writer_set_str(g->w, "tokenizer.ggml.model", "llama");
    if (!st) st = gguf_writer_set_u32(g->w, "tokenizer.ggml.bos_token_id", 1);
    if (!st) st = gguf_writer_set_u32(g->w, "tokenizer.ggml.eos_token_id", 2);
    if (!st) st = gguf_writer_set_u32(g->w, "tokenizer.ggml.unknown_token_id", 0);
    return st;
}

sluice_status model_gen_write(const model_gen_spec *s, const char *path, sluice_error *err) {
    gen_ctx g = {.w = gguf_writer_create(0), .rng = {s->seed * 2654435761u + 1}, .err = err};
    gguf_file *vocab = NULL;
    sluice_status st = SLUICE_OK;
    if (!g.w) return sluice_fail(err, SLUICE_ERR_NOMEM, "model_gen: out of memory");
    uint32_t n_vocab = s->n_vocab;
    if (s->vocab_from) {
        if ((st = gguf_open(&vocab, s->vocab_from, err))) goto out;
        const gguf_value *toks = gguf_get_arr(vocab, "tokenizer.ggml.tokens", GGUF_T_STRING);
        if (!toks) { st = sluice_fail(err, SLUICE_ERR_FORMAT, "%s: no tokenizer.ggml.tokens", s->vocab_from); goto out; }
        n_vocab = (uint32_t)toks->arr.n;
        for (uint64_t i = 0; i < vocab->n_kv; i++) {
            char key[256];
            gguf_str_copy(vocab->kv[i].key, key, sizeof key);
            if (!strncmp(key, "tokenizer.", 10) && (st = gguf_writer_set(g.w, key, &vocab->kv[i].val, err))) goto out;
        }
    } else if (n_vocab < 259) {
        st = sluice_fail(err, SLUICE_ERR_ARG, "model_gen: n_vocab %u < 259 (the byte vocab needs 259)", n_vocab);
        goto out;
    } else if ((st = small_vocab(&g, n_vocab))) goto out;

    const char *a = s->arch;
    uint32_t hd = s->head_dim ? s->head_dim : s->n_embd / s->n_head;
    uint64_t qdim = (uint64_t)s->n_head * hd, kvdim = (uint64_t)s->n_head_kv * hd;
    char key[128];
#define KEY_U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), gguf_writer_set_u32(g.w, key, (v)))
    gguf_writer_set_str(g.w, "general.architecture", a);
    gguf_writer_set_str(g.w, "general.name", "sluice random model");
    KEY_U32("context_length", s->n_ctx);
    KEY_U32("embedding_length", s->n_embd);
    KEY_U32("block_count", s->n_layer);
    KEY_U32("feed_forward_length", s->n_ff);
    KEY_U32("attention.head_count", s->n_head);
    KEY_U32("attention.head_count_kv", s->n_head_kv);
    KEY_U32("rope.dimension_count", hd);
    if (s->head_dim) { KEY_U32("attention.key_length", hd); KEY_U32("attention.value_length", hd); }
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
    gguf_writer_set_f32(g.w, key, 1e-5f);
    snprintf(key, sizeof key, "%s.rope.freq_base", a);
    gguf_writer_set_f32(g.w, key, s->rope_base > 0 ? s->rope_base : 10000.0f);
#undef KEY_U32
    if (s->rope_linear > 0 || s->rope_yarn > 0) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", a);
        gguf_writer_set_str(g.w, key, s->rope_yarn > 0 ? "yarn" : "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", a);
        gguf_writer_set_f32(g.w, key, s->rope_yarn > 0 ? s->rope_yarn : s->rope_linear);
        if (s->rope_yarn > 0 && s->yarn_orig_ctx) {
            snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", a);
            gguf_writer_set_u32(g.w, key, s->yarn_orig_ctx);
        }
    }
    bool bias = !strcmp(a, "qwen2"), qk_norm = !strcmp(a, "qwen3");
    qtype wt = s->wtype;
    if ((st = add(&g, "token_embd.weight", wt, s->n_embd, n_vocab, 0))) goto out;
    for (uint32_t l = 0; l < s->n_layer && !st; l++) {
        char nm[64];
#define ADD(suffix, ne0, ne1, kind) \
        if (!st) { snprintf(nm, sizeof nm, "blk.%u." suffix, l); st = add(&g, nm, wt, ne0, ne1, kind); }
        ADD("attn_norm.weight", s->n_embd, 0, 1)
        ADD("attn_q.weight", s->n_embd, qdim, 0)
        ADD("attn_k.weight", s->n_embd, kvdim, 0)
        ADD("attn_v.weight", s->n_embd, kvdim, 0)
        ADD("attn_output.weight", qdim, s->n_embd, 0)
        if (bias) {
            ADD("attn_q.bias", qdim, 0, 2)
            ADD("attn_k.bias", kvdim, 0, 2)
            ADD("attn_v.bias", kvdim, 0, 2)
        }
        if (qk_norm) {
            ADD("attn_q_norm.weight", hd, 0, 1)
            ADD("attn_k_norm.weight", hd, 0, 1)
        }
        ADD("ffn_norm.weight", s->n_embd, 0, 1)
        ADD("ffn_gate.weight", s->n_embd, s->n_ff, 0)
        ADD("ffn_up.weight", s->n_embd, s->n_ff, 0)
        ADD("ffn_down.weight", s->n_ff, s->n_embd, 0)
#undef ADD
    }
    if (!st) st = add(&g, "output_norm.weight", wt, s->n_embd, 0, 1);
    if (!st && !s->tied) st = add(&g, "output.weight", wt, s->n_embd, n_vocab, 0);
    if (!st) st = gguf_writer_write(g.w, path, err);
out:
    for (size_t i = 0; i < g.n_bufs; i++) free(g.bufs[i]);
    free(g.bufs);
    gguf_writer_free(g.w);
    gguf_close(vocab);
    return st;
}
