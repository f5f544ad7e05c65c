/* test_forward.c — the CPU forward pass against a plain loop-for-loop
 * transformer written here (double accumulation, no shared code but the
 * GGUF reader), on synthetic llama / qwen2 / qwen3 models written by our GGUF
 * writer; quantized models against their own dequantized F32 twins. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/forward.h"
#include "model/model_gen.h"
#include "model/requant.h"
#include "testutil.h"

/* ---- reference: reads F32 tensors through the GGUF reader only ---- */
static const float *W(const gguf_file *g, const char *fmt, int l) {
    char name[96];
    snprintf(name, sizeof name, fmt, l);
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) return NULL;
    cr_assert_eq(t->type, QT_F32, "reference needs F32 tensor %s", name);
    return t->data;
}

static uint32_t U(const gguf_file *g, const char *arch, const char *suffix, uint32_t dflt) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = dflt;
    gguf_get_u32(g, key, &v);
    return v;
}

static void ref_matvec(const float *w, const double *x, int in, int out, double *y) {
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
}

static void ref_rmsnorm(double *o, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) o[i] = x[i] * s * w[i];
}

/* logits (n_tok x vocab) for tokens at positions 0..n_tok-1 */
static void ref_forward(const char *path, const int32_t *tok, int n_tok, float *logits) {
    gguf_file *g;
    sluice_error err = {0};
    cr_assert_eq(gguf_open(&g, path, &err), SLUICE_OK, "%s", err.msg);
    gguf_str as;
    gguf_get_str(g, "general.architecture", &as);
    char arch[16];
    gguf_str_copy(as, arch, sizeof arch);
    bool neox = strcmp(arch, "llama") != 0;
    int E = (int)U(g, arch, "embedding_length", 0), L = (int)U(g, arch, "block_count", 0);
    int H = (int)U(g, arch, "attention.head_count", 0), HK = (int)U(g, arch, "attention.head_count_kv", 0);
    int F = (int)U(g, arch, "feed_forward_length", 0);
    int hd = (int)U(g, arch, "attention.key_length", (uint32_t)(E / H));
    float base = 10000;
    char key[96];
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    gguf_get_f32(g, key, &base);
    /* rope scaling: linear divides positions by the factor; YaRN (Peng et
     * al. 2023, as llama.cpp applies it) blends interpolated and original
     * frequencies per dimension pair by a linear ramp between the pairs that
     * turn beta_fast (32) and beta_slow (1) times over the original context,
     * and scales cos/sin by 1 + 0.1 ln(factor) */
    float factor = 1;
    bool yarn = false;
    double yarn_lo = 0, yarn_hi = 0, yarn_m = 1;
    gguf_str st;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (gguf_get_str(g, key, &st) && (gguf_str_eq(st, "linear") || gguf_str_eq(st, "yarn"))) {
        yarn = gguf_str_eq(st, "yarn");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        cr_assert(gguf_get_f32(g, key, &factor));
    }
    if (yarn) {
        uint32_t orig = U(g, arch, "rope.scaling.original_context_length", U(g, arch, "context_length", 0));
        /* pair index i whose wavelength fits `turns` times in orig tokens */
        #define PAIR_FOR_TURNS(turns) (hd * log(orig / ((turns) * 2 * M_PI)) / (2 * log(base)))
        yarn_lo = floor(PAIR_FOR_TURNS(32.0)); if (yarn_lo < 0) yarn_lo = 0;
        yarn_hi = ceil(PAIR_FOR_TURNS(1.0)); if (yarn_hi > hd - 1) yarn_hi = hd - 1;
        #undef PAIR_FOR_TURNS
        yarn_m = 1 + 0.1 * log(factor);
    }
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    int V = (int)emb->ne[1];
    const float *out_w = W(g, "output.weight", 0);
    if (!out_w) out_w = emb->data;
    double eps = 1e-5;
    size_t qd = (size_t)H * hd, kvd = (size_t)HK * hd;
    double *x = calloc((size_t)n_tok * E, sizeof(double)), *xb = calloc((size_t)E > qd ? (size_t)E : qd, sizeof(double));
    double *K = calloc((size_t)L * n_tok * kvd, sizeof(double)), *Vc = calloc((size_t)L * n_tok * kvd, sizeof(double));
    double *q = calloc(qd, sizeof(double)), *att = calloc(qd, sizeof(double)), *tmp = calloc((size_t)(F > E ? F : E) * 2 + qd, sizeof(double));
    double *g1 = calloc(F, sizeof(double)), *u1 = calloc(F, sizeof(double)), *s = calloc(n_tok, sizeof(double));
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < E; i++) x[(size_t)t * E + i] = ((const float *)emb->data)[(size_t)tok[t] * E + i];
    /* token by token, every layer (the textbook order) */
    for (int t = 0; t < n_tok; t++) {
        double *xt = x + (size_t)t * E;
        for (int l = 0; l < L; l++) {
            ref_rmsnorm(xb, xt, W(g, "blk.%d.attn_norm.weight", l), E, eps);
            double *k = K + ((size_t)l * n_tok + t) * kvd, *v = Vc + ((size_t)l * n_tok + t) * kvd;
            ref_matvec(W(g, "blk.%d.attn_q.weight", l), xb, E, (int)qd, q);
            ref_matvec(W(g, "blk.%d.attn_k.weight", l), xb, E, (int)kvd, k);
            ref_matvec(W(g, "blk.%d.attn_v.weight", l), xb, E, (int)kvd, v);
            const float *bq = W(g, "blk.%d.attn_q.bias", l), *bk = W(g, "blk.%d.attn_k.bias", l), *bv = W(g, "blk.%d.attn_v.bias", l);
            for (size_t i = 0; bq && i < qd; i++) q[i] += bq[i];
            for (size_t i = 0; bk && i < kvd; i++) k[i] += bk[i];
            for (size_t i = 0; bv && i < kvd; i++) v[i] += bv[i];
            const float *qn = W(g, "blk.%d.attn_q_norm.weight", l), *kn = W(g, "blk.%d.attn_k_norm.weight", l);
            for (int h = 0; qn && h < H; h++) ref_rmsnorm(q + h * hd, q + h * hd, qn, hd, eps);
            for (int h = 0; kn && h < HK; h++) ref_rmsnorm(k + h * hd, k + h * hd, kn, hd, eps);
            for (int h = 0; h < H + HK; h++) {
                double *vec = h < H ? q + h * hd : k + (h - H) * hd;
                for (int i = 0; i < hd / 2; i++) {
                    double orig_th = t * pow(base, -2.0 * i / hd), th = orig_th / factor, mag = 1;
                    if (yarn) {
                        double r = (i - yarn_lo) / fmax(0.001, yarn_hi - yarn_lo);
                        double keep = 1 - fmin(1, fmax(0, r)); /* 1: keep the original frequency */
                        th = th * (1 - keep) + orig_th * keep;
                        mag = yarn_m;
                    }
                    int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
                    double x0 = vec[a], x1 = vec[b];
                    vec[a] = (x0 * cos(th) - x1 * sin(th)) * mag;
                    vec[b] = (x0 * sin(th) + x1 * cos(th)) * mag;
                }
            }
            for (int h = 0; h < H; h++) {
                int hk = h / (H / HK);
                double mx = -1e300, sum = 0;
                for (int p = 0; p <= t; p++) {
                    double d = 0;
                    const double *kp = K + ((size_t)l * n_tok + p) * kvd + hk * hd;
                    for (int i = 0; i < hd; i++) d += q[h * hd + i] * kp[i];
                    s[p] = d / sqrt((double)hd);
                    if (s[p] > mx) mx = s[p];
                }
                for (int p = 0; p <= t; p++) { s[p] = exp(s[p] - mx); sum += s[p]; }
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int p = 0; p <= t; p++) o += s[p] / sum * Vc[((size_t)l * n_tok + p) * kvd + hk * hd + i];
                    att[h * hd + i] = o;
                }
            }
            ref_matvec(W(g, "blk.%d.attn_output.weight", l), att, (int)qd, E, tmp);
            for (int i = 0; i < E; i++) xt[i] += tmp[i];
            ref_rmsnorm(xb, xt, W(g, "blk.%d.ffn_norm.weight", l), E, eps);
            ref_matvec(W(g, "blk.%d.ffn_gate.weight", l), xb, E, F, g1);
            ref_matvec(W(g, "blk.%d.ffn_up.weight", l), xb, E, F, u1);
            for (int i = 0; i < F; i++) g1[i] = g1[i] / (1 + exp(-g1[i])) * u1[i];
            ref_matvec(W(g, "blk.%d.ffn_down.weight", l), g1, F, E, tmp);
            for (int i = 0; i < E; i++) xt[i] += tmp[i];
        }
        ref_rmsnorm(xb, xt, W(g, "output_norm.weight", 0), E, eps);
        double *lg = malloc(sizeof(double) * V);
        ref_matvec(out_w, xb, E, V, lg);
        for (int i = 0; i < V; i++) logits[(size_t)t * V + i] = (float)lg[i];
        free(lg);
    }
    free(x); free(xb); free(K); free(Vc); free(q); free(att); free(tmp); free(g1); free(u1); free(s);
    gguf_close(g);
}

/* ---- engine side ---- */

/* Prompt of n_prompt tokens as one batch, then n_gen single steps; logits of
 * every position into out (n_prompt + n_gen rows). */
static void engine_logits(const char *path, const int32_t *tok, int n_prompt, int n_gen, kv_type kv, int threads,
                          float *out) {
    model *m;
    fwd_ctx *c;
    sluice_error err = {0};
    cr_assert_eq(model_load(&m, path, &err), SLUICE_OK, "%s", err.msg);
    fwd_params p = {.n_ctx = 128, .n_batch = 32, .kv = kv, .n_threads = threads};
    cr_assert_eq(fwd_create(&c, m, &p, &err), SLUICE_OK, "%s", err.msg);
    uint32_t V = m->hp.n_vocab;
    cr_assert_eq(fwd_eval(c, tok, (uint32_t)n_prompt, true, &err), SLUICE_OK, "%s", err.msg);
    for (int i = 0; i < n_prompt; i++) memcpy(out + (size_t)i * V, fwd_logits(c, (uint32_t)i), sizeof(float) * V);
    for (int i = 0; i < n_gen; i++) {
        cr_assert_eq(fwd_eval(c, tok + n_prompt + i, 1, false, &err), SLUICE_OK, "%s", err.msg);
        memcpy(out + (size_t)(n_prompt + i) * V, fwd_last_logits(c), sizeof(float) * V);
    }
    fwd_free(c);
    model_free(m);
}

static model_gen_spec spec(const char *arch, bool tied, uint64_t seed) {
    return (model_gen_spec){.arch = arch, .n_vocab = 320, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                            .n_ff = 512, .n_ctx = 256, .tied = tied, .wtype = QT_F32, .seed = seed};
}

static char *gen(model_gen_spec s, const char *stem) {
    char *path = strdup(tu_tmp_path(stem));
    sluice_error err = {0};
    cr_assert_eq(model_gen_write(&s, path, &err), SLUICE_OK, "%s", err.msg);
    return path;
}

enum { N_PROMPT = 40, N_GEN = 8, N_TOK = N_PROMPT + N_GEN };

static void tokens(int32_t *t, int n, uint32_t vocab, uint64_t seed) {
    tu_rng r = {seed};
    for (int i = 0; i < n; i++) t[i] = (int32_t)(tu_rand_u32(&r) % vocab);
}

static void check_against_reference(model_gen_spec s, const char *stem) {
    char *path = gen(s, stem);
    int32_t tok[N_TOK];
    tokens(tok, N_TOK, s.n_vocab, 7);
    size_t n = (size_t)N_TOK * s.n_vocab;
    float *ref = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    ref_forward(path, tok, N_TOK, ref);
    engine_logits(path, tok, N_PROMPT, N_GEN, KV_F32, 2, got);
    /* relative error per position: max |got - ref| / max |ref| */
    for (int t = 0; t < N_TOK; t++) {
        double md = 0, mr = 0;
        for (uint32_t v = 0; v < s.n_vocab; v++) {
            double d = fabs((double)got[(size_t)t * s.n_vocab + v] - ref[(size_t)t * s.n_vocab + v]);
            md = d > md ? d : md;
            mr = fabs(ref[(size_t)t * s.n_vocab + v]) > mr ? fabs(ref[(size_t)t * s.n_vocab + v]) : mr;
        }
        cr_assert_leq(md / mr, 1e-5, "%s: position %d relative error %g", stem, t, md / mr);
    }
    free(ref); free(got);
    remove(path);
    free(path);
}

Test(forward, llama_gqa_matches_reference) { check_against_reference(spec("llama", false, 1), "llama"); }
Test(forward, llama_tied_matches_reference) { check_against_reference(spec("llama", true, 2), "llama-tied"); }
Test(forward, llama_linear_rope_scaling_matches_reference) {
    model_gen_spec s = spec("llama", false, 12);
    s.rope_linear = 4.0f;
    s.rope_base = 500000.0f;
    check_against_reference(s, "llama-linear");
}
Test(forward, qwen2_yarn_rope_scaling_matches_reference) {
    model_gen_spec s = spec("qwen2", false, 13);
    s.rope_yarn = 4.0f;
    s.yarn_orig_ctx = 64;
    check_against_reference(s, "qwen2-yarn");
}
Test(forward, qwen2_bias_matches_reference) { check_against_reference(spec("qwen2", false, 3), "qwen2"); }
Test(forward, qwen3_qk_norm_matches_reference) {
    model_gen_spec s = spec("qwen3", true, 4);
    s.head_dim = 128; /* key_length != n_embd / n_head, as real qwen3 models */
    check_against_reference(s, "qwen3");
}

Test(forward, batch_equals_one_by_one_and_threads_agree) {
    char *path = gen(spec("llama", false, 5), "batch");
    int32_t tok[N_TOK];
    tokens(tok, N_TOK, 320, 9);
    size_t n = (size_t)N_TOK * 320;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    engine_logits(path, tok, N_PROMPT, N_GEN, KV_F16, 2, a);
    engine_logits(path, tok, 1, N_TOK - 1, KV_F16, 2, b);  /* every token alone */
    engine_logits(path, tok, N_PROMPT, N_GEN, KV_F16, 1, c);
    cr_assert_lt(tu_nmse(b, a, n), 1e-10, "batched vs single-step NMSE %g", tu_nmse(b, a, n));
    cr_assert_eq(memcmp(a, c, n * 4), 0, "1 thread and 2 threads differ");
    free(a); free(b); free(c);
    remove(path);
    free(path);
}

/* The tiled attention (query rows of one sequence and GQA group sharing
 * every K/V read) against the one-(token, head)-at-a-time reference it
 * replaces, through fwd_decode batches of three sequences: contiguous and
 * scattered block tables, one sharing another's first block, prompts that
 * end mid-block, then single tokens; F16 and F32 KV; GQA groups of 1, 2, 3
 * and 8 heads (tiles of 8, 4, 2 and 1 tokens) and 9 (too big for a tile:
 * the reference serves it). */
static void check_attention_tiles(uint32_t n_head, uint32_t n_head_kv, kv_type kv) {
    model_gen_spec sp = spec("llama", false, 11);
    sp.n_head = n_head, sp.n_head_kv = n_head_kv, sp.n_embd = 32 * n_head;
    char *path = gen(sp, "tiles");
    model *m;
    fwd_ctx *c[2];
    sluice_error err = {0};
    cr_assert_eq(model_load(&m, path, &err), SLUICE_OK, "%s", err.msg);
    for (int k = 0; k < 2; k++) {
        fwd_params p = {.n_ctx = 256, .n_batch = 128, .kv = kv, .n_threads = 2, .attn_reference = k == 1};
        cr_assert_eq(fwd_create(&c[k], m, &p, &err), SLUICE_OK, "%s", err.msg);
    }
    static const uint32_t tbl_a[] = {0, 1, 2, 3}, tbl_b[] = {7, 4, 9}, tbl_c[] = {0, 5, 6};
    enum { NA = 40, NB = 33, NC = 10 }; /* C: positions 16..25 after A's first block */
    fwd_tok batch[NA + NB + NC];
    int32_t ids[NA + NB + NC + 3];
    tokens(ids, NA + NB + NC + 3, sp.n_vocab, 13);
    uint32_t n = 0;
    for (uint32_t i = 0; i < NA; i++) batch[n] = (fwd_tok){ids[n], i, tbl_a, i % 7 == 0 || i == NA - 1}, n++;
    for (uint32_t i = 0; i < NB; i++) batch[n] = (fwd_tok){ids[n], i, tbl_b, i % 5 == 0 || i == NB - 1}, n++;
    for (uint32_t i = 0; i < NC; i++) batch[n] = (fwd_tok){ids[n], 16 + i, tbl_c, true}, n++;
    size_t V = sp.n_vocab, max_rows = NA + NB + NC;
    float *lg[2] = {malloc(sizeof(float) * V * max_rows), malloc(sizeof(float) * V * max_rows)};
    cr_assert(lg[0] && lg[1]);
    for (int step = 0; step < 2; step++) {
        uint32_t nt = n, rows = 0;
        fwd_tok one[3] = {{ids[n], NA, tbl_a, true}, {ids[n + 1], NB, tbl_b, true}, {ids[n + 2], 16 + NC, tbl_c, true}};
        const fwd_tok *b = step == 0 ? batch : one;
        if (step == 1) nt = 3;
        for (uint32_t i = 0; i < nt; i++) rows += b[i].logits;
        for (int k = 0; k < 2; k++) cr_assert_eq(fwd_decode(c[k], b, nt, lg[k], &err), SLUICE_OK, "%s", err.msg);
        double e = tu_nmse(lg[1], lg[0], V * rows);
        if (getenv("SLUICE_TEST_VERBOSE"))
            fprintf(stderr, "attention tiles G=%u %s step %d: NMSE %.3g%s\n", n_head / n_head_kv,
                    kv == KV_F16 ? "F16" : "F32", step, e, memcmp(lg[0], lg[1], sizeof(float) * V * rows) ? "" : " (identical)");
        /* the tiles do the reference's arithmetic in its order (kv_tile's
         * kernels are bit-identical to the single dot): the same bits */
        cr_assert_eq(memcmp(lg[0], lg[1], sizeof(float) * V * rows), 0,
                     "G=%u %s step %d: tiled vs reference attention differ (NMSE %g)", n_head / n_head_kv,
                     kv == KV_F16 ? "F16" : "F32", step, e);
    }
    free(lg[0]), free(lg[1]);
    fwd_free(c[0]), fwd_free(c[1]);
    model_free(m);
    remove(path);
    free(path);
}

Test(forward, attention_tiles_equal_reference) {
    static const uint32_t heads[][2] = {{4, 4}, {4, 2}, {6, 2}, {8, 1}, {9, 1}};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        check_attention_tiles(heads[i][0], heads[i][1], KV_F16);
        check_attention_tiles(heads[i][0], heads[i][1], KV_F32);
    }
}

/* Per-type limits on the NMSE of logits, quantized model vs the F32 model
 * holding exactly its dequantized weights. The only difference left is
 * the activation format of the dot product (Q8_0 / Q8_1 / Q8_K for the
 * block types, none for F16/BF16). Measured on these 2-layer random models:
 * 0 for F16/BF16, ~4e-4 with Q8_0/Q8_1 activations, ~8e-4 with Q8_K
 * (one scale per 256); the limits leave 2.5x room. */
static const struct { const char *type; double nmse; } quant_limits[] = {
    {"F16", 1e-9}, {"BF16", 1e-9}, {"Q8_0", 2e-3}, {"Q4_0", 2e-3}, {"Q4_1", 2e-3}, {"Q5_0", 2e-3},
    {"Q5_1", 2e-3}, {"Q4_K", 2e-3}, {"Q5_K", 2e-3}, {"Q6_K", 2e-3},
};

static void check_quantized(const char *arch) {
    model_gen_spec s = spec(arch, !strcmp(arch, "qwen3"), 11);
    char *f32 = gen(s, "q-src");
    int32_t tok[N_TOK];
    tokens(tok, N_TOK, s.n_vocab, 13);
    size_t n = (size_t)N_TOK * s.n_vocab;
    float *a = malloc(n * 4), *b = malloc(n * 4), *r = malloc(n * 4);
    engine_logits(f32, tok, N_PROMPT, N_GEN, KV_F32, 2, r);
    for (size_t k = 0; k < sizeof quant_limits / sizeof quant_limits[0]; k++) {
        char *qp = strdup(tu_tmp_path("q")), *dq = strdup(tu_tmp_path("dq"));
        sluice_error err = {0};
        requant_opts o = {.type = quant_limits[k].type, .pure = true};
        cr_assert_eq(requant_file(f32, qp, &o, NULL, NULL, &err), SLUICE_OK, "%s", err.msg);
        requant_opts back = {.type = "F32", .pure = true};
        cr_assert_eq(requant_file(qp, dq, &back, NULL, NULL, &err), SLUICE_OK, "%s", err.msg);
        engine_logits(qp, tok, N_PROMPT, N_GEN, KV_F32, 2, a);
        engine_logits(dq, tok, N_PROMPT, N_GEN, KV_F32, 2, b);
        double e = tu_nmse(a, b, n), q = tu_nmse(b, r, n);
        cr_log_info("%s %s: NMSE vs dequantized twin %.3g; weight quantization vs F32 %.3g", arch, quant_limits[k].type, e, q);
        cr_assert_leq(e, quant_limits[k].nmse, "%s %s: NMSE %g > %g", arch, quant_limits[k].type, e, quant_limits[k].nmse);
        cr_assert_lt(q, 0.3, "%s %s: quantized model far from F32 (%g)", arch, quant_limits[k].type, q);
        remove(qp); remove(dq);
        free(qp); free(dq);
    }
    free(a); free(b); free(r);
    remove(f32);
    free(f32);
}

Test(forward_quant, llama_every_type_vs_dequantized_twin, .timeout = 600) { check_quantized("llama"); }
Test(forward_quant, qwen2_every_type_vs_dequantized_twin, .timeout = 600) { check_quantized("qwen2"); }
Test(forward_quant, qwen3_every_type_vs_dequantized_twin, .timeout = 600) { check_quantized("qwen3"); }

Test(forward, bad_tokens_and_full_context_are_errors) {
    char *path = gen(spec("llama", false, 6), "errs");
    model *m;
    fwd_ctx *c;
    sluice_error err = {0};
    cr_assert_eq(model_load(&m, path, &err), SLUICE_OK);
    fwd_params p = {.n_ctx = 8, .n_threads = 1};
    cr_assert_eq(fwd_create(&c, m, &p, &err), SLUICE_OK);
    int32_t bad[2] = {5, 320};
    cr_assert_eq(fwd_eval(c, bad, 2, false, &err), SLUICE_ERR_ARG);
    cr_assert(strstr(err.msg, "token 320 at index 1"), "%s", err.msg);
    cr_assert_eq(fwd_n_past(c), 0);
    int32_t ok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cr_assert_eq(fwd_eval(c, ok, 9, false, &err), SLUICE_ERR_RANGE);
    cr_assert(strstr(err.msg, "context full"), "%s", err.msg);
    cr_assert_eq(fwd_eval(c, ok, 8, false, &err), SLUICE_OK);
    cr_assert_eq(fwd_eval(c, ok, 1, false, &err), SLUICE_ERR_RANGE);
    fwd_free(c);
    model_free(m);
    remove(path);
    free(path);
}

Test(forward, missing_tensor_and_unknown_arch_are_named) {
    model_gen_spec s = spec("llama", false, 8);
    char *path = gen(s, "arch");
    gguf_file *g;
    sluice_error err = {0};
    cr_assert_eq(gguf_open(&g, path, &err), SLUICE_OK);
    /* rewrite without blk.1.ffn_up.weight, then with another arch name */
    for (int variant = 0; variant < 2; variant++) {
        gguf_writer *w = gguf_writer_create(0);
        for (size_t i = 0; i < g->n_kv; i++) {
            char key[256];
            gguf_writer_set(w, gguf_str_copy(g->kv[i].key, key, sizeof key), &g->kv[i].val, &err);
        }
        if (variant == 1) gguf_writer_set_str(w, "general.architecture", "mamba");
        for (size_t i = 0; i < g->n_tensors; i++) {
            char nm[96];
            gguf_str_copy(g->tensors[i].name, nm, sizeof nm);
            if (variant == 0 && !strcmp(nm, "blk.1.ffn_up.weight")) continue;
            gguf_writer_add_tensor(w, nm, g->tensors[i].type, g->tensors[i].n_dims, g->tensors[i].ne, g->tensors[i].data, &err);
        }
        char *out = strdup(tu_tmp_path("broken"));
        cr_assert_eq(gguf_writer_write(w, out, &err), SLUICE_OK);
        gguf_writer_free(w);
        model *m = NULL;
        sluice_error e2 = {0};
        cr_assert_neq(model_load(&m, out, &e2), SLUICE_OK);
        cr_assert_null(m);
        if (variant == 0) cr_assert(strstr(e2.msg, "missing tensor 'blk.1.ffn_up.weight'"), "%s", e2.msg);
        else cr_assert(strstr(e2.msg, "architecture 'mamba' is not supported"), "%s", e2.msg);
        remove(out);
        free(out);
    }
    gguf_close(g);
    remove(path);
    free(path);
}
