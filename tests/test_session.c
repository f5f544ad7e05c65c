/* test_session.c — many sequences at once (engine/session.h) on the CPU
 * engine: a continuous batch gives each sequence what it gets alone,
 * forks share and then diverge, prefixes are reused without recomputation,
 * a full cache is a clear status, and label scores equal the step-by-step
 * sum of log-softmax values. The reference is always a fresh fwd_eval
 * context holding one sequence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/session.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#include "model/model_gen.h"
#include "model/requant.h"
#include "testutil.h"
#ifdef SLUICE_HAVE_VULKAN
#include "backend/vulkan/device.h"
#endif

/* Logits NMSE limit, session vs a sequence alone. The same kernels, in the
 * same order, except that attention over KV blocks that are not
 * consecutive slots sums V in runs (one partial dot per run): measured
 * 0 to ~1e-14 on these models. */
#define SESS_NMSE 1e-10

static char *gen_model(uint64_t seed, const char *type) {
    model_gen_spec s = {.arch = "llama", .n_vocab = 320, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                        .n_ff = 128, .n_ctx = 512, .wtype = QT_F32, .seed = seed};
    char *path = strdup(tu_tmp_path("sess"));
    sluice_error err = {0};
    cr_assert_eq(model_gen_write(&s, path, &err), SLUICE_OK, "%s", err.msg);
    if (type) {
        char *q = strdup(tu_tmp_path("sess-q"));
        requant_opts o = {.type = type, .pure = true};
        cr_assert_eq(requant_file(path, q, &o, NULL, NULL, &err), SLUICE_OK, "%s", err.msg);
        remove(path);
        free(path);
        path = q;
    }
    return path;
}

typedef struct fixture {
    model *m;
    engine *e;
    sess *s;
    uint32_t V;
} fixture;

/* The backend the session tests run on: the CPU engine, or (the
 * *_vulkan tests) the first Vulkan device with the validation layer on;
 * close_fixture then fails on any validation message. */
static engine_backend g_backend = ENGINE_CPU;
#ifdef SLUICE_HAVE_VULKAN
static vk_instance *g_vk;
#endif

static void use_vulkan(void) {
#ifdef SLUICE_HAVE_VULKAN
    sluice_error err = {0};
    sluice_status st = vk_instance_create(&g_vk, true, &err);
    if (st != SLUICE_OK && strstr(err.msg, "validation"))
        cr_assert_fail("%s (install vulkan-validationlayers: packaging/deps.sh)", err.msg);
    if (st != SLUICE_OK) cr_skip("no Vulkan here: %s", err.msg);
    bool usable = false;
    for (uint32_t i = 0; i < vk_instance_device_count(g_vk); i++) usable |= vk_instance_device(g_vk, i)->usable;
    if (!usable) {
        vk_instance_destroy(g_vk);
        g_vk = NULL;
        cr_skip("no Vulkan 1.2 device (install mesa-vulkan-drivers for lavapipe)");
    }
    g_backend = ENGINE_VULKAN;
#else
    cr_skip("sluice was built without the Vulkan backend");
#endif
}

static engine_params backend_params(uint32_t n_ctx) {
    engine_params ep = {.backend = g_backend, .n_ctx = n_ctx, .kv = KV_F32, .n_threads = 2};
#ifdef SLUICE_HAVE_VULKAN
    if (g_backend == ENGINE_VULKAN) {
        ep.vk_instance = g_vk;
        ep.device = getenv("SLUICE_VK_TEST_DEVICE") ? getenv("SLUICE_VK_TEST_DEVICE") : "0";
    }
#endif
    return ep;
}

static fixture open_fixture(const char *path, uint32_t n_ctx, bool prefix_cache) {
    fixture f = {0};
    sluice_error err = {0};
    cr_assert_eq(model_load(&f.m, path, &err), SLUICE_OK, "%s", err.msg);
    engine_params ep = backend_params(n_ctx);
    cr_assert_eq(engine_create(&f.e, f.m, &ep, &err), SLUICE_OK, "%s", err.msg);
    sess_params sp = {.no_prefix_cache = !prefix_cache};
    cr_assert_eq(sess_create(&f.s, f.e, &sp, &err), SLUICE_OK, "%s", err.msg);
    f.V = f.m->hp.n_vocab;
    return f;
}

static void close_fixture(fixture *f) {
    sess_free(f->s);
    engine_free(f->e);
    model_free(f->m);
#ifdef SLUICE_HAVE_VULKAN
    if (g_vk) {
        uint32_t msgs = vk_instance_messages(g_vk);
        vk_instance_destroy(g_vk);
        g_vk = NULL;
        cr_assert_eq(msgs, 0, "%u Vulkan validation messages (see the log above)", msgs);
    }
#endif
}

/* Logits of every position of tokens[0..n), one sequence alone on the
 * same backend (engine_eval, a fresh engine). */
static float *alone(const model *m, const int32_t *tokens, uint32_t n) {
    engine *e = NULL;
    sluice_error err = {0};
    engine_params ep = backend_params(512);
    cr_assert_eq(engine_create(&e, m, &ep, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(engine_eval(e, tokens, n, true, &err), SLUICE_OK, "%s", err.msg);
    float *out = malloc(sizeof(float) * n * m->hp.n_vocab);
    for (uint32_t i = 0; i < n; i++)
        memcpy(out + (size_t)i * m->hp.n_vocab, engine_logits(e, i), sizeof(float) * m->hp.n_vocab);
    engine_free(e);
    return out;
}

static void rand_tokens(int32_t *t, uint32_t n, uint32_t V, uint64_t seed) {
    tu_rng r = {seed};
    for (uint32_t i = 0; i < n; i++) t[i] = (int32_t)(tu_rand_u32(&r) % V);
}

/* Four sequences with prompts of 5, 17, 33 and 40 tokens; each then
 * generates greedily. A and B start together; C joins at step 3 (its whole
 * prompt in the same batch as A's and B's single tokens); A leaves after
 * step 5 and D joins at step 6. Every logits row of every sequence equals
 * the same sequence evaluated alone, and the greedy tokens agree. */
static void check_continuous(const char *type) {
    char *path = gen_model(11, type);
    fixture f = open_fixture(path, 512, true);
    enum { NSEQ = 4, GEN = 8 };
    const uint32_t plen[NSEQ] = {5, 17, 33, 40}, join[NSEQ] = {0, 0, 3, 6}, leave[NSEQ] = {6, 99, 99, 99};
    int32_t toks[NSEQ][64];
    uint32_t len[NSEQ] = {0};
    int32_t id[NSEQ];
    float *got[NSEQ];
    uint32_t n_rows[NSEQ] = {0};
    for (int q = 0; q < NSEQ; q++) {
        rand_tokens(toks[q], plen[q], f.V, 100 + q);
        got[q] = malloc(sizeof(float) * f.V * 64);
        id[q] = -1;
    }
    sluice_error err = {0};
    sess_entry batch[128];
    int owner[128];
    float *rows = malloc(sizeof(float) * f.V * 128);
    for (uint32_t step = 0; step < 12; step++) {
        uint32_t nb = 0;
        for (int q = 0; q < NSEQ; q++) {
            if (step == leave[q] && id[q] >= 0) {
                sess_seq_free(f.s, id[q]);
                id[q] = -2;
            }
            if (id[q] == -2 || step < join[q]) continue;
            if (id[q] == -1) { /* joins: its whole prompt, logits of every position */
                cr_assert_eq(sess_seq_new(f.s, &id[q], &err), SLUICE_OK, "%s", err.msg);
                for (uint32_t k = 0; k < plen[q]; k++) {
                    batch[nb] = (sess_entry){.seq = id[q], .token = toks[q][k], .logits = true};
                    owner[nb++] = q;
                }
                len[q] = plen[q];
            } else if (len[q] < plen[q] + GEN) { /* one greedy token */
                int32_t next = sampler_argmax(got[q] + (size_t)(n_rows[q] - 1) * f.V, (int32_t)f.V);
                toks[q][len[q]++] = next;
                batch[nb] = (sess_entry){.seq = id[q], .token = next, .logits = true};
                owner[nb++] = q;
            }
        }
        if (!nb) continue;
        cr_assert_eq(sess_decode(f.s, batch, nb, rows, &err), SLUICE_OK, "step %u: %s", step, err.msg);
        for (uint32_t k = 0; k < nb; k++) {
            int q = owner[k];
            memcpy(got[q] + (size_t)n_rows[q]++ * f.V, rows + (size_t)k * f.V, sizeof(float) * f.V);
        }
    }
    for (int q = 0; q < NSEQ; q++) {
        cr_assert_eq(n_rows[q], len[q]);
        float *ref = alone(f.m, toks[q], len[q]);
        double e = tu_nmse(got[q], ref, (size_t)len[q] * f.V);
        cr_log_info("%s on %s, sequence %d (%u tokens): NMSE vs alone %.3g", type ? type : "F32", engine_describe(f.e), q,
                    len[q], e);
        cr_assert_lt(e, SESS_NMSE, "sequence %d: NMSE %g vs alone", q, e);
        for (uint32_t k = plen[q]; k < len[q]; k++)
            cr_assert_eq(toks[q][k], sampler_argmax(ref + (size_t)(k - 1) * f.V, (int32_t)f.V),
                         "sequence %d: greedy token %u differs from alone", q, k);
        free(ref);
        free(got[q]);
    }
    free(rows);
    close_fixture(&f);
    remove(path);
    free(path);
}

Test(session, continuous_batch_equals_alone_f32) { check_continuous(NULL); }
Test(session, continuous_batch_equals_alone_q4_0) { check_continuous("Q4_0"); }
Test(session, continuous_batch_equals_alone_vulkan, .timeout = 600) {
    use_vulkan();
    check_continuous("Q4_K");
}

/* 70 sequences of 3 to 5 tokens in one batch of ~280 entries: more than a
 * step holds (chunks of the engine's batch) and, on Vulkan, more distinct
 * sequences than one chunk's table list (64): each sequence's last logits
 * equal the sequence alone. */
static void many_sequences_one_batch(void) {
    char *path = gen_model(16, NULL);
    fixture f = open_fixture(path, 2048, false);
    sluice_error err = {0};
    enum { NS = 70 };
    int32_t toks[NS][5], id[NS];
    uint32_t len[NS];
    sess_entry *b = malloc(sizeof *b * NS * 5);
    uint32_t nb = 0;
    for (int q = 0; q < NS; q++) {
        len[q] = 3 + (uint32_t)q % 3;
        rand_tokens(toks[q], len[q], f.V, 300 + q);
        cr_assert_eq(sess_seq_new(f.s, &id[q], &err), SLUICE_OK, "%s", err.msg);
    }
    /* interleaved: token k of every sequence, then token k + 1 */
    for (uint32_t k = 0; k < 5; k++)
        for (int q = 0; q < NS; q++)
            if (k < len[q]) b[nb++] = (sess_entry){id[q], toks[q][k], k + 1 == len[q]};
    float *rows = malloc(sizeof(float) * f.V * NS);
    cr_assert_eq(sess_decode(f.s, b, nb, rows, &err), SLUICE_OK, "%s", err.msg);
    /* logits rows come in batch order: sequences of 3 tokens first, then 4, then 5 */
    uint32_t r = 0;
    for (uint32_t k = 0; k < 5; k++)
        for (int q = 0; q < NS; q++)
            if (k + 1 == len[q]) {
                float *ref = alone(f.m, toks[q], len[q]);
                double e = tu_nmse(rows + (size_t)r++ * f.V, ref + (size_t)(len[q] - 1) * f.V, f.V);
                cr_assert_lt(e, SESS_NMSE, "sequence %d: NMSE %g vs alone", q, e);
                free(ref);
            }
    cr_assert_eq(r, NS);
    free(rows), free(b);
    close_fixture(&f);
    remove(path);
    free(path);
}
Test(session, many_sequences_one_batch) { many_sequences_one_batch(); }
Test(session, many_sequences_one_batch_vulkan, .timeout = 600) {
    use_vulkan();
    many_sequences_one_batch();
}

/* A 20-token parent (its second block half full) forked three times; each
 * child appends its own tokens, the parent too. All five histories equal
 * their sequences alone, and the forks shared the parent's full block. */
static void forks_share_then_diverge(void) {
    char *path = gen_model(12, NULL);
    fixture f = open_fixture(path, 512, false);
    sluice_error err = {0};
    int32_t pre[20], id_p, kid[3];
    rand_tokens(pre, 20, f.V, 7);
    sess_entry b[40];
    for (int i = 0; i < 20; i++) b[i] = (sess_entry){0, pre[i], false};
    cr_assert_eq(sess_seq_new(f.s, &id_p, &err), SLUICE_OK);
    for (int i = 0; i < 20; i++) b[i].seq = id_p;
    float *rows = malloc(sizeof(float) * f.V * 40);
    cr_assert_eq(sess_decode(f.s, b, 20, rows, &err), SLUICE_OK, "%s", err.msg);
    sess_stats st0 = sess_get_stats(f.s);
    for (int k = 0; k < 3; k++) cr_assert_eq(sess_seq_fork(f.s, id_p, &kid[k], &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(sess_get_stats(f.s).blocks_free, st0.blocks_free, "a fork takes no blocks until it writes");
    /* each child and the parent append 6 tokens, interleaved in one batch */
    int32_t suf[4][6];
    uint32_t nb = 0;
    for (int k = 0; k < 4; k++) rand_tokens(suf[k], 6, f.V, 50 + k);
    for (int t = 0; t < 6; t++)
        for (int k = 0; k < 4; k++) b[nb++] = (sess_entry){k < 3 ? kid[k] : id_p, suf[k][t], true};
    cr_assert_eq(sess_decode(f.s, b, nb, rows, &err), SLUICE_OK, "%s", err.msg);
    /* the shared full block stays shared; each writer copied the half-full one */
    cr_assert_eq(sess_get_stats(f.s).blocks_free, st0.blocks_free - 3, "three copies of the partial block");
    for (int k = 0; k < 4; k++) {
        int32_t all[26];
        memcpy(all, pre, sizeof pre);
        memcpy(all + 20, suf[k], sizeof suf[k]);
        float *ref = alone(f.m, all, 26);
        for (int t = 0; t < 6; t++) {
            double e = tu_nmse(rows + (size_t)(t * 4 + k) * f.V, ref + (size_t)(20 + t) * f.V, f.V);
            cr_assert_lt(e, SESS_NMSE, "%s %d token %d: NMSE %g", k < 3 ? "child" : "parent", k, t, e);
        }
        free(ref);
    }
    free(rows);
    close_fixture(&f);
    remove(path);
    free(path);
}
Test(session, forks_share_then_diverge) { forks_share_then_diverge(); }
Test(session, forks_share_then_diverge_vulkan, .timeout = 600) {
    use_vulkan();
    forks_share_then_diverge();
}

/* A 40-token prompt, then a second sequence starting with the same 40
 * tokens: its first 32 (two full blocks) are attached from the prefix
 * cache, not computed; the logits after the reused prefix equal a fresh
 * evaluation; the counters say so. */
static void prefix_reused_not_recomputed(void) {
    char *path = gen_model(13, NULL);
    fixture f = open_fixture(path, 512, true);
    sluice_error err = {0};
    int32_t prompt[48];
    rand_tokens(prompt, 48, f.V, 9);
    sess_entry b[48];
    float *rows = malloc(sizeof(float) * f.V * 48);
    int32_t a;
    cr_assert_eq(sess_seq_new(f.s, &a, &err), SLUICE_OK);
    for (int i = 0; i < 40; i++) b[i] = (sess_entry){a, prompt[i], false};
    cr_assert_eq(sess_decode(f.s, b, 40, rows, &err), SLUICE_OK, "%s", err.msg);
    sess_seq_free(f.s, a);
    sess_stats st = sess_get_stats(f.s);
    cr_assert_eq(st.tokens_computed, 40);
    cr_assert_eq(st.blocks_cached, 2, "two full blocks cached, got %u", st.blocks_cached);
    /* the same 40 tokens + 8 more */
    int32_t c;
    cr_assert_eq(sess_seq_new(f.s, &c, &err), SLUICE_OK);
    uint32_t have = sess_seq_reuse_prefix(f.s, c, prompt, 48, 48);
    cr_assert_eq(have, 32);
    for (uint32_t i = have; i < 48; i++) b[i - have] = (sess_entry){c, prompt[i], true};
    cr_assert_eq(sess_decode(f.s, b, 48 - have, rows, &err), SLUICE_OK, "%s", err.msg);
    st = sess_get_stats(f.s);
    cr_assert_eq(st.prefix_reused, 32);
    cr_assert_eq(st.tokens_computed, 40 + 16, "computed %llu", (unsigned long long)st.tokens_computed);
    float *ref = alone(f.m, prompt, 48);
    double e = tu_nmse(rows, ref + (size_t)32 * f.V, (size_t)16 * f.V);
    cr_assert_lt(e, SESS_NMSE, "after the reused prefix: NMSE %g", e);
    /* a different prompt sharing only the first block reuses 16 */
    int32_t other[40];
    memcpy(other, prompt, sizeof other);
    other[20] = (other[20] + 1) % (int32_t)f.V;
    int32_t d;
    cr_assert_eq(sess_seq_new(f.s, &d, &err), SLUICE_OK);
    cr_assert_eq(sess_seq_reuse_prefix(f.s, d, other, 40, 40), 16);
    free(ref);
    free(rows);
    close_fixture(&f);
    remove(path);
    free(path);
}
Test(session, prefix_reused_not_recomputed) { prefix_reused_not_recomputed(); }
Test(session, prefix_reused_not_recomputed_vulkan, .timeout = 600) {
    use_vulkan();
    prefix_reused_not_recomputed();
}

/* A 64-token cache (4 blocks): a 40-token sequence and a 20-token one
 * fill it; one more token for the second needs a fifth block: a clear
 * SLUICE_ERR_FULL that changes nothing, and after the first sequence
 * ends the same batch goes through with the right logits. A sequence
 * longer than the context is SLUICE_ERR_RANGE. */
static void full_cache_and_overlong_are_statuses(void) {
    char *path = gen_model(14, NULL);
    fixture f = open_fixture(path, 64, false);
    sluice_error err = {0};
    int32_t t1[40], t2[33];
    rand_tokens(t1, 40, f.V, 21);
    rand_tokens(t2, 33, f.V, 22);
    int32_t a, b;
    sess_entry e[64];
    float *rows = malloc(sizeof(float) * f.V * 64);
    cr_assert_eq(sess_seq_new(f.s, &a, &err), SLUICE_OK);
    cr_assert_eq(sess_seq_new(f.s, &b, &err), SLUICE_OK);
    for (int i = 0; i < 40; i++) e[i] = (sess_entry){a, t1[i], false};
    cr_assert_eq(sess_decode(f.s, e, 40, rows, &err), SLUICE_OK, "%s", err.msg);
    for (int i = 0; i < 16; i++) e[i] = (sess_entry){b, t2[i], false};
    cr_assert_eq(sess_decode(f.s, e, 16, rows, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(sess_get_stats(f.s).blocks_free, 0);
    for (int i = 16; i < 33; i++) e[i - 16] = (sess_entry){b, t2[i], i == 32};
    cr_assert_eq(sess_decode(f.s, e, 17, rows, &err), SLUICE_ERR_FULL);
    cr_assert(strstr(err.msg, "KV cache full"), "%s", err.msg);
    cr_assert_eq(sess_seq_len(f.s, b), 16, "a refused batch changes nothing");
    cr_assert_eq(sess_seq_len(f.s, a), 40);
    sess_seq_free(f.s, a);
    cr_assert_eq(sess_decode(f.s, e, 17, rows, &err), SLUICE_OK, "%s", err.msg);
    float *ref = alone(f.m, t2, 33);
    cr_assert_lt(tu_nmse(rows, ref + (size_t)32 * f.V, f.V), SESS_NMSE);
    free(ref);
    /* past the context */
    int32_t c;
    cr_assert_eq(sess_seq_new(f.s, &c, &err), SLUICE_OK);
    sess_seq_free(f.s, b);
    for (int i = 0; i < 64; i++) e[i] = (sess_entry){c, t1[i % 40], false};
    cr_assert_eq(sess_decode(f.s, e, 64, rows, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(sess_decode(f.s, e, 1, rows, &err), SLUICE_ERR_RANGE);
    /* bad input */
    e[0] = (sess_entry){c + 100, 1, false};
    cr_assert_eq(sess_decode(f.s, e, 1, rows, &err), SLUICE_ERR_ARG);
    e[0] = (sess_entry){c, (int32_t)f.V, false};
    cr_assert_eq(sess_decode(f.s, e, 1, rows, &err), SLUICE_ERR_ARG);
    free(rows);
    close_fixture(&f);
    remove(path);
    free(path);
}
Test(session, full_cache_and_overlong_are_statuses) { full_cache_and_overlong_are_statuses(); }
Test(session, full_cache_and_overlong_are_statuses_vulkan, .timeout = 600) {
    use_vulkan();
    full_cache_and_overlong_are_statuses();
}

/* log P(cand | prompt) step by step: the prompt and the candidate in one
 * fresh sequence, summing log softmax at each candidate token. */
static double logprob_alone(const model *m, const int32_t *prompt, uint32_t np, const int32_t *cand, uint32_t nc) {
    int32_t all[256];
    memcpy(all, prompt, sizeof(int32_t) * np);
    memcpy(all + np, cand, sizeof(int32_t) * nc);
    float *lg = alone(m, all, np + nc);
    uint32_t V = m->hp.n_vocab;
    double lp = 0;
    for (uint32_t k = 0; k < nc; k++) {
        const float *row = lg + (size_t)(np - 1 + k) * V;
        double mx = row[0], s = 0;
        for (uint32_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        for (uint32_t v = 0; v < V; v++) s += exp(row[v] - mx);
        lp += row[cand[k]] - mx - log(s);
    }
    free(lg);
    return lp;
}

/* Candidates of different lengths sharing prefixes ([a b c], [a b d],
 * [a e], [f], [a]) scored after 5 prompts (two share 35 tokens) in one
 * call: every log-probability equals the step-by-step sum; a second call
 * reuses the cached prompt blocks. */
static void label_scores_equal_step_by_step(void) {
    char *path = gen_model(15, "Q8_0");
    fixture f = open_fixture(path, 512, true);
    sluice_error err = {0};
    enum { NI = 5, NC = 5 };
    int32_t pbuf[NI][48];
    uint32_t np[NI] = {12, 40, 38, 3, 17};
    rand_tokens(pbuf[0], 48, f.V, 31);
    for (int i = 1; i < NI; i++) rand_tokens(pbuf[i], 48, f.V, 31 + i);
    memcpy(pbuf[2], pbuf[1], sizeof(int32_t) * 35); /* items 1 and 2 share 35 tokens */
    const int32_t *prompts[NI];
    for (int i = 0; i < NI; i++) prompts[i] = pbuf[i];
    static const int32_t c0[] = {5, 9, 11}, c1[] = {5, 9, 12}, c2[] = {5, 40}, c3[] = {77}, c4[] = {5};
    const int32_t *cands[NC] = {c0, c1, c2, c3, c4};
    const uint32_t nc[NC] = {3, 3, 2, 1, 1};
    double lp[NI * NC];
    cr_assert_eq(sess_score(f.s, prompts, np, NI, cands, nc, NC, lp, &err), SLUICE_OK, "%s", err.msg);
    for (int i = 0; i < NI; i++)
        for (int c = 0; c < NC; c++) {
            double want = logprob_alone(f.m, prompts[i], np[i], cands[c], nc[c]);
            cr_assert(fabs(lp[i * NC + c] - want) < 1e-4, "item %d cand %d: %.6f vs step by step %.6f", i, c,
                      lp[i * NC + c], want);
        }
    sess_stats st = sess_get_stats(f.s);
    cr_assert_eq(st.prefix_reused, 32, "item 2 reuses item 1's two full blocks: %llu",
                 (unsigned long long)st.prefix_reused);
    cr_assert_eq(st.blocks_free + st.blocks_cached, st.blocks_total, "every sequence freed");
    /* again: the prompts' full blocks come from the cache */
    double lp2[NI * NC];
    cr_assert_eq(sess_score(f.s, prompts, np, NI, cands, nc, NC, lp2, &err), SLUICE_OK, "%s", err.msg);
    for (int k = 0; k < NI * NC; k++) cr_assert(fabs(lp2[k] - lp[k]) < 1e-6);
    cr_assert_gt(sess_get_stats(f.s).prefix_reused, st.prefix_reused + 64);
    /* a bad candidate token is an error */
    static const int32_t bad[] = {100000};
    const int32_t *bc[1] = {bad};
    const uint32_t bn[1] = {1};
    cr_assert_eq(sess_score(f.s, prompts, np, 1, bc, bn, 1, lp, &err), SLUICE_ERR_ARG);
    close_fixture(&f);
    remove(path);
    free(path);
}
Test(session, label_scores_equal_step_by_step) { label_scores_equal_step_by_step(); }
Test(session, label_scores_equal_step_by_step_vulkan, .timeout = 600) {
    use_vulkan();
    label_scores_equal_step_by_step();
}

/* stories260K with its tokenizer: labels of different token lengths
 * sharing prefixes, after two real prompts, equal the step-by-step sums. */
static void label_scores_stories260k(void) {
    const char *mp = tu_model_file("stories260K.gguf");
    if (!mp) cr_skip("stories260K.gguf not found: set SLUICE_MODELS");
    char *path = strdup(mp);
    fixture f = open_fixture(path, 512, true);
    tokenizer *tok = NULL;
    sluice_error err = {0};
    cr_assert_eq(tok_load(&tok, f.m->gguf, &err), SLUICE_OK, "%s", err.msg);
    const char *ptext[2] = {"Once upon a time, there was a little", "Lily and Ben went to the"};
    const char *ltext[4] = {" girl", " girl named Lily", " boy", " park"};
    int32_t *pt[2], *lt[4];
    size_t np_[2], nl_[4];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(tok_encode(tok, ptext[i], strlen(ptext[i]), true, false, false, &pt[i], &np_[i], &err), SLUICE_OK);
    for (int c = 0; c < 4; c++)
        cr_assert_eq(tok_encode(tok, ltext[c], strlen(ltext[c]), false, false, false, &lt[c], &nl_[c], &err), SLUICE_OK);
    cr_assert_lt(nl_[0], nl_[1], "' girl' is a strict prefix of ' girl named Lily'");
    const int32_t *prompts[2] = {pt[0], pt[1]}, *cands[4] = {lt[0], lt[1], lt[2], lt[3]};
    uint32_t np[2] = {(uint32_t)np_[0], (uint32_t)np_[1]}, nc[4];
    for (int c = 0; c < 4; c++) nc[c] = (uint32_t)nl_[c];
    double lp[8];
    cr_assert_eq(sess_score(f.s, prompts, np, 2, cands, nc, 4, lp, &err), SLUICE_OK, "%s", err.msg);
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 4; c++) {
            double want = logprob_alone(f.m, prompts[i], np[i], cands[c], nc[c]);
            cr_assert(fabs(lp[i * 4 + c] - want) < 1e-4, "'%s' + '%s': %.6f vs %.6f", ptext[i], ltext[c], lp[i * 4 + c],
                      want);
        }
    for (int i = 0; i < 2; i++) free(pt[i]);
    for (int c = 0; c < 4; c++) free(lt[c]);
    tok_free(tok);
    close_fixture(&f);
    free(path);
}
Test(session, label_scores_stories260k) { label_scores_stories260k(); }
Test(session, label_scores_stories260k_vulkan, .timeout = 600) {
    use_vulkan();
    label_scores_stories260k();
}

/* Constrained votes: the same seed gives the same draws, the frequencies
 * follow the normalized probabilities, temperature 0 is the argmax. */
Test(session, constrained_votes) {
    const double lp[4] = {-0.5, -1.5, -3.0, -0.9};
    double p[4];
    sess_label_probs(lp, 4, 1.0, p);
    double sum = 0;
    for (int c = 0; c < 4; c++) sum += p[c];
    cr_assert(fabs(sum - 1.0) < 1e-12);
    cr_assert(fabs(p[0] / p[1] - exp(1.0)) < 1e-9);
    enum { K = 20000 };
    uint32_t *a = malloc(sizeof(uint32_t) * K), *b = malloc(sizeof(uint32_t) * K);
    sess_sample_candidates(lp, 4, K, 1.0, 42, a);
    sess_sample_candidates(lp, 4, K, 1.0, 42, b);
    cr_assert(!memcmp(a, b, sizeof(uint32_t) * K), "same seed, same votes");
    uint32_t cnt[4] = {0};
    for (int r = 0; r < K; r++) cnt[a[r]]++;
    for (int c = 0; c < 4; c++)
        cr_assert(fabs((double)cnt[c] / K - p[c]) < 0.015, "label %d: %u votes of %d, p %.4f", c, cnt[c], K, p[c]);
    sess_sample_candidates(lp, 4, K, 1.0, 43, b);
    cr_assert(memcmp(a, b, sizeof(uint32_t) * K) != 0, "another seed, other votes");
    sess_sample_candidates(lp, 4, 100, 0.0, 7, a);
    for (int r = 0; r < 100; r++) cr_assert_eq(a[r], 0u, "temperature 0 votes for the best");
    free(a), free(b);
}
