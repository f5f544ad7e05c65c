/* cmd_bench.c — `sluice bench`: prompt processing (ppN: N tokens as one
 * batch from an empty cache) and generation (tgN: N tokens one at a time
 * from an empty cache) throughput, median of repetitions after a warm-up
 * of at least 0.3 s,
 * like llama-bench so figures compare. --profile (Vulkan) profiles the tg
 * test's timed runs (not its warm-up, not pp): every step is one
 * generated token, so the report describes one generation step; its
 * timestamps cost a little of the tg figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/bench_session.h"
#include "cli/cli.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One timed run; returns tokens/s or -1 on error (printed). */
static double run_once(engine *ctx, const int32_t *toks, uint32_t n, bool batch) {
    sluice_error err = {0};
    engine_truncate(ctx, 0);
    double t0 = cli_now();
    if (batch) {
        if (engine_eval(ctx, toks, n, false, &err)) goto fail;
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (engine_eval(ctx, toks + i, 1, false, &err)) goto fail;
    }
    return n / (cli_now() - t0);
fail:
    fprintf(stderr, "sluice bench: %s\n", err.msg);
    return -1;
}

int cmd_bench(int argc, char **argv) {
    cli_opts o = {0};
    long n_prompt = 512, n_gen = 128, reps = 5;
    bool profile = false, label_bench = false, gen_given = false;
    const char *batch = NULL;
    long label_items = 1000, label_generic = 10;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 20, &n_prompt)) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 20, &n_gen)) return 2;
            gen_given = true;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 1000, &reps)) return 2;
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if (!strcmp(a, "--batch")) {
            if (!(batch = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--label-bench")) {
            label_bench = true;
        } else if (!strcmp(a, "--label-items")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 1000000, &label_items)) return 2;
        } else if (!strcmp(a, "--label-generic")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1000000, &label_generic)) return 2;
        } else {
            fprintf(stderr, "usage: sluice bench [-m MODEL] [-p 512] [-n 128] [-r 5] [-t N] [--kv f16|f32] [--backend B] [--device D] [--json] [--profile]\n"
                            "       sluice bench [-m MODEL] --batch 1,4,16,64 [-n 32] [-r 3]\n"
                            "       sluice bench [-m MODEL] --label-bench [--label-items 1000] [--label-generic 10]\n");
            return strcmp(a, "-h") && strcmp(a, "--help") ? 2 : 0;
        }
    }
    if (batch) return bench_batch(&o, batch, gen_given ? n_gen : 32, reps, profile);
    if (label_bench) return bench_labels(&o, label_items, label_generic);
    uint32_t need = (uint32_t)(n_prompt > n_gen ? n_prompt : n_gen);
    if (!o.ctx) o.ctx = need ? need : 1;
    if (o.ctx < need) { fprintf(stderr, "sluice bench: --ctx %u is smaller than the test length %u\n", o.ctx, need); return 2; }
    model *m;
    engine *ctx;
    if (!cli_load(&o, &m, NULL, &ctx)) return 1;
    int rc = 1;
    int32_t *toks = malloc(sizeof(int32_t) * (need ? need : 1));
    double *runs = malloc(sizeof(double) * (size_t)reps);
    if (!toks || !runs) goto out;
    uint64_t x = 12345; /* fixed pseudo-random tokens: speed does not depend on them */
    for (uint32_t i = 0; i < need; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((x >> 33) % m->hp.n_vocab);
    }
    char path[4096];
    const char *mp = cli_model_path(&o, path, sizeof path);
    const char *base = strrchr(mp, '/') ? strrchr(mp, '/') + 1 : mp;
    struct { const char *kind; long n; bool batch; } tests[] = {{"pp", n_prompt, true}, {"tg", n_gen, false}};
    fwd_ctx *cpu = engine_cpu(ctx);
    if (o.json) printf("{\"model\":\"%s\",\"params\":%llu,\"bytes\":%llu,\"backend\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"results\":[",
                       base, (unsigned long long)m->n_params, (unsigned long long)m->weight_bytes, engine_describe(ctx),
                       cpu ? cpu_isa_name(fwd_isa(cpu)) : "-", cpu ? fwd_threads(cpu) : 0);
    else {
        printf("| model | size | params | backend | test | t/s (median of %ld) |\n", reps);
        printf("|---|---|---|---|---|---|\n");
    }
    bool first = true;
    for (int k = 0; k < 2; k++) {
        if (tests[k].n <= 0) continue;
        /* warm-up: at least one run and 0.3 s, so caches, page tables and idle
         * CPUs (slow to wake on VMs) are settled before timing */
        bool prof = profile && !tests[k].batch; /* tg only */
        if (prof) engine_profile_enable(ctx, true);
        for (double t0 = cli_now(), first = 1; first || cli_now() - t0 < 0.3; first = 0)
            if (run_once(ctx, toks, (uint32_t)tests[k].n, tests[k].batch) < 0) goto out;
        if (prof) engine_profile_reset(ctx); /* the warm-up grew the query pools; count the timed runs */
        for (long r = 0; r < reps; r++)
            if ((runs[r] = run_once(ctx, toks, (uint32_t)tests[k].n, tests[k].batch)) < 0) goto out;
        qsort(runs, (size_t)reps, sizeof(double), cmp_double);
        double med = reps % 2 ? runs[reps / 2] : 0.5 * (runs[reps / 2 - 1] + runs[reps / 2]);
        if (o.json) {
            printf("%s{\"test\":\"%s%ld\",\"tokens_per_s\":%.2f,\"min\":%.2f,\"max\":%.2f,\"runs\":%ld}", first ? "" : ",",
                   tests[k].kind, tests[k].n, med, runs[0], runs[reps - 1], reps);
        } else {
            printf("| %s | %.2f MiB | %.2f M | %s | %s%ld | %.2f (%.2f..%.2f) |\n", base, m->weight_bytes / 1048576.0,
                   m->n_params / 1e6, engine_describe(ctx), tests[k].kind, tests[k].n, med, runs[0], runs[reps - 1]);
        }
        if (prof) engine_profile_enable(ctx, false);
        fflush(stdout);
        first = false;
    }
    if (o.json) {
        printf("]");
        if (profile) {
            printf(",\"profile\":");
            engine_profile_report(ctx, stdout, true);
        }
        printf("}\n");
    } else if (profile) {
        printf("\ntg%ld profile (timed runs; one step = one generated token):\n", n_gen);
        engine_profile_report(ctx, stdout, false);
    }
    rc = 0;
out:
    free(toks);
    free(runs);
    engine_free(ctx);
    model_free(m);
    return rc;
}
