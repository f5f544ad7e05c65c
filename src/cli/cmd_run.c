/* cmd_run.c — `sluice run`: stream a completion of a prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "text/sampler.h"

static void run_usage(void) {
    fprintf(stderr,
            "usage: sluice run [-m MODEL] -p TEXT [options]\n"
            "  -p, --prompt TEXT      prompt (may be empty)\n"
            "  -n, --n-predict N      tokens to generate (default 128; stops early at end of text)\n"
            "  --temp T               temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --repeat-last-n N\n"
            "  --seed S               sampling seed (default 0; same seed, same text)\n"
            "  --no-bos               do not add the BOS token\n"
            "  --ignore-eos           keep generating after end of text\n"
            "  -t, --threads N  -c, --ctx N  --kv f16|f32\n"
            "  --backend auto|cpu|vulkan  --device N|NAME   where to run (default auto: a GPU, else the CPU)\n"
            "  --profile              Vulkan: per-op GPU times, host times and weight bytes of the\n"
            "                         generation steps (not the prompt), printed to stderr at the end\n");
}

int cmd_run(int argc, char **argv) {
    cli_opts o = {0};
    const char *prompt = NULL;
    long n_predict = 128;
    bool no_bos = false, ignore_eos = false, profile = false;
    sampler_params sp = sampler_defaults();
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        long n;
        double f;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(); return 0; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(prompt = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 24, &n_predict)) return 2;
        } else if (!strcmp(a, "--temp")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_float(a, v, 0, 100, &f)) return 2;
            sp.temp = (float)f;
        } else if (!strcmp(a, "--top-k")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 24, &n)) return 2;
            sp.top_k = (int32_t)n;
        } else if (!strcmp(a, "--top-p")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_float(a, v, 0, 1, &f)) return 2;
            sp.top_p = (float)f;
        } else if (!strcmp(a, "--min-p")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_float(a, v, 0, 1, &f)) return 2;
            sp.min_p = (float)f;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_float(a, v, 0.01, 100, &f)) return 2;
            sp.repeat_penalty = (float)f;
        } else if (!strcmp(a, "--repeat-last-n")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 20, &n)) return 2;
            sp.repeat_last_n = (int32_t)n;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            char *end;
            sp.seed = strtoull(v, &end, 10);
            if (*end || end == v) { fprintf(stderr, "sluice: --seed expects an unsigned integer, got '%s'\n", v); return 2; }
        } else if (!strcmp(a, "--no-bos")) no_bos = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--profile")) profile = true;
        else { fprintf(stderr, "sluice run: unknown option '%s'\n", a); run_usage(); return 2; }
    }
    if (!prompt) { fprintf(stderr, "sluice run: -p TEXT is required\n"); run_usage(); return 2; }

    model *m;
    tokenizer *tok;
    engine *ctx;
    if (!cli_load(&o, &m, &tok, &ctx)) return 1;
    int rc = 1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    sampler *smp = NULL;
    sluice_error err = {0};
    bool bos = !no_bos && tok_add_bos_default(tok);
    if (tok_encode(tok, prompt, strlen(prompt), bos, false, false, &ids, &n_ids, &err)) goto out;
    if (n_ids == 0) {
        fprintf(stderr, "sluice run: the prompt is empty and the model has no BOS token to start from\n");
        goto out;
    }
    if (n_ids >= engine_n_ctx(ctx)) {
        fprintf(stderr, "sluice run: the prompt has %zu tokens, more than the context of %u (use --ctx)\n", n_ids,
                engine_n_ctx(ctx));
        goto out;
    }
    smp = sampler_create(&sp, (int32_t)m->hp.n_vocab);
    if (!smp) { sluice_fail(&err, SLUICE_ERR_NOMEM, "out of memory"); goto out; }
    for (size_t i = 0; i < n_ids; i++) sampler_accept(smp, ids[i]);

    /* echo the prompt as the model sees it, then stream the continuation */
    tok_stream ts;
    tok_stream_init(&ts, tok, false);
    char piece[1024];
    for (size_t i = 0; i < n_ids; i++)
        if (tok_stream_feed(&ts, ids[i], piece, sizeof piece) > 0) fputs(piece, stdout);
    fflush(stdout);

    double t0 = cli_now();
    if (engine_eval(ctx, ids, (uint32_t)n_ids, false, &err)) goto out;
    double t_prompt = cli_now() - t0;
    if (profile) engine_profile_enable(ctx, true); /* generation steps only */
    long n_gen = 0;
    double t1 = cli_now();
    while (n_gen < n_predict) {
        int32_t next = sampler_sample(smp, engine_last_logits(ctx));
        if (!ignore_eos && tok_is_eog(tok, next)) break;
        sampler_accept(smp, next);
        n_gen++;
        if (tok_stream_feed(&ts, next, piece, sizeof piece) > 0) {
            fputs(piece, stdout);
            fflush(stdout);
        }
        if (n_gen == n_predict) break;
        if (engine_n_past(ctx) >= engine_n_ctx(ctx)) {
            fprintf(stderr, "\nsluice run: context of %u tokens is full; stopping\n", engine_n_ctx(ctx));
            break;
        }
        if (engine_eval(ctx, &next, 1, false, &err)) goto out;
    }
    if (tok_stream_flush(&ts, piece, sizeof piece) > 0) fputs(piece, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    double t_gen = cli_now() - t1;
    fprintf(stderr, "engine: %s\n", engine_describe(ctx));
    fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tokens/s)\n", n_ids, t_prompt, n_ids / (t_prompt > 0 ? t_prompt : 1e-9));
    fprintf(stderr, "generation: %ld tokens in %.3f s (%.1f tokens/s)\n", n_gen, t_gen,
            n_gen / (t_gen > 0 ? t_gen : 1e-9));
    if (profile) engine_profile_report(ctx, stderr, false);
    rc = 0;
out:
    if (err.status) fprintf(stderr, "sluice: %s\n", err.msg);
    free(ids);
    sampler_free(smp);
    engine_free(ctx);
    tok_free(tok);
    model_free(m);
    return rc;
}
