/* bench_session.c — the many-sequence benchmarks of `sluice bench`:
 *   --batch 1,4,16,64   aggregate generation tokens/s of that many
 *                       concurrent sequences (each step: one token of every
 *                       sequence in one batch), against batch 1 in the same
 *                       run;
 *   --label-bench       the labeling workload: inputs of 20-60 tokens after
 *                       a shared 400-token prompt, 3 candidate labels, items
 *                       per second (a) through sessions (batches, prefix
 *                       reuse, trie scoring) and (b) the generic way (each
 *                       input's whole prompt from scratch, one sequence at
 *                       a time, each label by its own evaluation).
 * Tokens are fixed pseudo-random ids: speed does not depend on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/bench_session.h"
#include "engine/session.h"

static uint64_t lcg(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Tokens/s of n_gen steps of n_seq sequences after 16-token prompts, the
 * median of reps runs (each on fresh sequences). */
static double batch_run(sess *s, engine *eng, bool profile, uint32_t V, uint32_t n_seq, uint32_t n_gen, long reps,
                        sluice_error *err) {
    sess_entry *e = malloc(sizeof *e * n_seq * 16);
    int32_t *ids = malloc(sizeof *ids * n_seq);
    float *lg = malloc(sizeof(float) * V * n_seq);
    double *runs = malloc(sizeof(double) * (size_t)(reps + 1));
    double med = -1;
    if (!e || !ids || !lg || !runs) goto out;
    uint64_t x = 7;
    for (long r = -1; r < reps; r++) { /* r = -1: warm-up */
        for (uint32_t q = 0; q < n_seq; q++) {
            if (sess_seq_new(s, &ids[q], err)) goto out;
            for (uint32_t k = 0; k < 16; k++) e[q * 16 + k] = (sess_entry){ids[q], (int32_t)(lcg(&x) % V), k == 15};
        }
        if (sess_decode(s, e, n_seq * 16, lg, err)) goto out;
        if (profile && r == reps - 1) engine_profile_enable(eng, true); /* the last run's generation steps */
        double t0 = cli_now();
        for (uint32_t g = 0; g < n_gen; g++) {
            for (uint32_t q = 0; q < n_seq; q++) e[q] = (sess_entry){ids[q], (int32_t)(lcg(&x) % V), true};
            if (sess_decode(s, e, n_seq, lg, err)) goto out;
        }
        double dt = cli_now() - t0;
        if (profile && r == reps - 1) engine_profile_enable(eng, false);
        if (r >= 0) runs[r] = (double)n_seq * n_gen / dt;
        for (uint32_t q = 0; q < n_seq; q++) sess_seq_free(s, ids[q]);
    }
    qsort(runs, (size_t)reps, sizeof(double), cmp_double);
    med = reps % 2 ? runs[reps / 2] : 0.5 * (runs[reps / 2 - 1] + runs[reps / 2]);
out:
    free(e), free(ids), free(lg), free(runs);
    return med;
}

int bench_batch(const cli_opts *o_in, const char *list, long n_gen, long reps, bool profile) {
    uint32_t sizes[32], n_sizes = 0, max_n = 0;
    for (const char *p = list; *p && n_sizes < 32;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096 || (*end && *end != ',')) {
            fprintf(stderr, "sluice bench: --batch expects sizes like 1,4,16,64 (1..4096), got '%s'\n", list);
            return 2;
        }
        sizes[n_sizes++] = (uint32_t)v;
        max_n = (uint32_t)v > max_n ? (uint32_t)v : max_n;
        p = *end ? end + 1 : end;
    }
    if (n_gen < 1) n_gen = 32;
    cli_opts o = *o_in;
    uint32_t need = max_n * (16 + (uint32_t)n_gen + FWD_KV_BLOCK);
    if (o.ctx < need) o.ctx = need;
    model *m;
    engine *e;
    if (!cli_load(&o, &m, NULL, &e)) return 1;
    sess *s = NULL;
    sluice_error err = {0};
    sess_params sp = {.no_prefix_cache = true};
    int rc = 1;
    if (sess_create(&s, e, &sp, &err)) goto out;
    char path[4096];
    const char *mp = cli_model_path(&o, path, sizeof path);
    const char *base = strrchr(mp, '/') ? strrchr(mp, '/') + 1 : mp;
    printf("| model | backend | sequences | tg%ld tokens/s, all sequences (median of %ld) | x batch 1 |\n", n_gen, reps);
    printf("|---|---|---|---|---|\n");
    double one = 0;
    for (uint32_t k = 0; k < n_sizes; k++) {
        if (profile) engine_profile_reset(e);
        double t = batch_run(s, e, profile, m->hp.n_vocab, sizes[k], (uint32_t)n_gen, reps, &err);
        if (t < 0) goto out;
        if (k == 0 || sizes[k] == 1) one = sizes[k] == 1 ? t : one;
        if (one) printf("| %s | %s | %u | %.1f | %.2f |\n", base, engine_describe(e), sizes[k], t, t / one);
        else printf("| %s | %s | %u | %.1f | - |\n", base, engine_describe(e), sizes[k], t);
        if (profile) {
            printf("\nbatch %u profile (the last run's %ld generation steps):\n", sizes[k], n_gen);
            engine_profile_report(e, stdout, false);
            printf("\n");
        }
        fflush(stdout);
    }
    rc = 0;
out:
    if (err.status) fprintf(stderr, "sluice bench: %s\n", err.msg);
    sess_free(s);
    engine_free(e);
    model_free(m);
    return rc;
}

/* ---- the labeling workload ---- */

#define LB_SHARED 400
#define LB_LABELS 3
#define LB_GROUP 64 /* items per sess_score call */

int bench_labels(const cli_opts *o_in, long n_items, long n_generic) {
    cli_opts o = *o_in;
    uint32_t need = LB_SHARED + LB_GROUP * (60 + 3 + 2 * FWD_KV_BLOCK) + 1024;
    if (o.ctx < need) o.ctx = need;
    model *m;
    engine *e;
    if (!cli_load(&o, &m, NULL, &e)) return 1;
    uint32_t V = m->hp.n_vocab;
    int rc = 1;
    sess *s = NULL;
    sluice_error err = {0};
    /* the workload: a shared prompt, inputs of 20..60 tokens, three labels
     * ([a], [b c], [b d]: two share a first token) */
    uint64_t x = 2026;
    int32_t shared[LB_SHARED], lab[3][2];
    for (int i = 0; i < LB_SHARED; i++) shared[i] = (int32_t)(lcg(&x) % V);
    lab[0][0] = (int32_t)(lcg(&x) % V), lab[1][0] = (int32_t)(lcg(&x) % V), lab[1][1] = (int32_t)(lcg(&x) % V);
    lab[2][0] = lab[1][0], lab[2][1] = (int32_t)(lcg(&x) % V);
    const int32_t *cands[LB_LABELS] = {lab[0], lab[1], lab[2]};
    const uint32_t nc[LB_LABELS] = {1, 2, 2};
    int32_t **items = calloc((size_t)n_items, sizeof *items);
    uint32_t *n_item = calloc((size_t)n_items, sizeof *n_item);
    double *lp = malloc(sizeof(double) * LB_GROUP * LB_LABELS);
    if (!items || !n_item || !lp) goto out;
    for (long i = 0; i < n_items; i++) {
        n_item[i] = LB_SHARED + 20 + (uint32_t)(lcg(&x) % 41);
        if (!(items[i] = malloc(sizeof(int32_t) * n_item[i]))) goto out;
        memcpy(items[i], shared, sizeof shared);
        for (uint32_t k = LB_SHARED; k < n_item[i]; k++) items[i][k] = (int32_t)(lcg(&x) % V);
    }
    if (sess_create(&s, e, NULL, &err)) goto out;
    /* (a) sessions: groups of LB_GROUP items per scoring call */
    double t0 = cli_now();
    for (long i0 = 0; i0 < n_items; i0 += LB_GROUP) {
        uint32_t ni = (uint32_t)(n_items - i0 < LB_GROUP ? n_items - i0 : LB_GROUP);
        if (sess_score(s, (const int32_t *const *)items + i0, n_item + i0, ni, cands, nc, LB_LABELS, lp, &err)) goto out;
    }
    double ta = cli_now() - t0;
    sess_stats st = sess_get_stats(s);
    sess_free(s);
    s = NULL;
    /* (b) the generic way, on the first n_generic items: per label, the
     * whole prompt + label from scratch in a fresh sequence */
    if (n_generic > n_items) n_generic = n_items;
    t0 = cli_now();
    for (long i = 0; i < n_generic; i++)
        for (int c = 0; c < LB_LABELS; c++) {
            int32_t *all = malloc(sizeof(int32_t) * (n_item[i] + 2));
            if (!all) goto out;
            memcpy(all, items[i], sizeof(int32_t) * n_item[i]);
            memcpy(all + n_item[i], cands[c], sizeof(int32_t) * nc[c]);
            engine_truncate(e, 0);
            sluice_status es = engine_eval(e, all, n_item[i] + nc[c], true, &err);
            free(all);
            if (es) goto out;
        }
    double tb = cli_now() - t0;
    char path[4096];
    const char *mp = cli_model_path(&o, path, sizeof path);
    const char *base = strrchr(mp, '/') ? strrchr(mp, '/') + 1 : mp;
    double ia = n_items / ta, ib = n_generic ? n_generic / tb : 0;
    printf("label bench: %s, %s; %ld inputs of 20-60 tokens after a shared %d-token prompt, %d labels\n", base,
           engine_describe(e), n_items, LB_SHARED, LB_LABELS);
    printf("| way | items | seconds | items/s |\n|---|---|---|---|\n");
    printf("| (a) sessions: batches of %d, prefix reuse, label trie | %ld | %.2f | %.2f |\n", LB_GROUP, n_items, ta, ia);
    printf("| (b) generic: whole prompt per label, one sequence at a time | %ld | %.2f | %.3f |\n", n_generic, tb, ib);
    printf("ratio (a) / (b): %.1fx; (a) computed %llu tokens, reused %llu prefix tokens\n", ib ? ia / ib : 0.0,
           (unsigned long long)st.tokens_computed, (unsigned long long)st.prefix_reused);
    rc = 0;
out:
    if (err.status) fprintf(stderr, "sluice bench: %s\n", err.msg);
    for (long i = 0; items && i < n_items; i++) free(items[i]);
    free(items), free(n_item), free(lp);
    sess_free(s);
    engine_free(e);
    model_free(m);
    return rc;
}
