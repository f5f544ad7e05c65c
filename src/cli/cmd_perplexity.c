/* cmd_perplexity.c — `sluice perplexity`, computed the way llama.cpp's
 * perplexity tool does so figures compare: the file is tokenized once (with
 * BOS), split into non-overlapping windows of n_ctx tokens whose first token
 * is replaced by BOS; each window is evaluated from an empty cache and only
 * the predictions for its second half are scored. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) { free(buf); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

int cmd_perplexity(int argc, char **argv) {
    cli_opts o = {0};
    const char *file = NULL;
    long max_chunks = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) {
            if (!(file = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "--chunks")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || !cli_int("--chunks", v, 1, 1 << 30, &max_chunks)) return 2;
        } else {
            fprintf(stderr, "usage: sluice perplexity [-m MODEL] -f FILE [--ctx N (default 512)] [--chunks N]\n");
            return strcmp(argv[i], "-h") && strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (!file) { fprintf(stderr, "sluice perplexity: -f FILE is required\n"); return 2; }
    if (!o.ctx) o.ctx = 512;
    if (o.ctx < 4) { fprintf(stderr, "sluice perplexity: --ctx must be at least 4\n"); return 2; }
    size_t len;
    char *text = read_all(file, &len);
    if (!text) { fprintf(stderr, "sluice perplexity: cannot read %s\n", file); return 1; }
    model *m;
    tokenizer *tok;
    engine *eng;
    if (!cli_load(&o, &m, &tok, &eng)) { free(text); return 1; }
    int rc = 1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    sluice_error err = {0};
    bool bos = tok_add_bos_default(tok) && tok_bos(tok) >= 0;
    uint32_t n_ctx = o.ctx, n_vocab = m->hp.n_vocab;
    if (tok_encode(tok, text, len, bos, false, false, &ids, &n_ids, &err)) goto out;
    if (n_ids < 2 * (size_t)n_ctx) {
        fprintf(stderr, "sluice perplexity: %s has %zu tokens; at least 2 x ctx = %u are needed (lower --ctx)\n", file,
                n_ids, 2 * n_ctx);
        goto out;
    }
    size_t n_chunks = n_ids / n_ctx;
    if (max_chunks && n_chunks > (size_t)max_chunks) n_chunks = (size_t)max_chunks;
    uint32_t first = n_ctx / 2;
    double nll = 0;
    size_t count = 0;
    double t0 = cli_now();
    int32_t *win = malloc(sizeof(int32_t) * n_ctx);
    if (!win) goto out;
    if (!o.json) fprintf(stderr, "perplexity: %zu tokens, %zu chunks of %u\n", n_ids, n_chunks, n_ctx);
    for (size_t ch = 0; ch < n_chunks; ch++) {
        memcpy(win, ids + ch * n_ctx, sizeof(int32_t) * n_ctx);
        if (bos) win[0] = tok_bos(tok);
        engine_truncate(eng, 0);
        if (engine_eval(eng, win, n_ctx, true, &err)) { free(win); goto out; }
        for (uint32_t j = first; j + 1 < n_ctx; j++) {
            const float *lg = engine_logits(eng, j);
            float mx = lg[0];
            for (uint32_t v = 1; v < n_vocab; v++) mx = lg[v] > mx ? lg[v] : mx;
            double sum = 0;
            for (uint32_t v = 0; v < n_vocab; v++) sum += exp((double)lg[v] - mx);
            int32_t target = ids[ch * n_ctx + j + 1];
            nll += log(sum) + mx - lg[target];
            count++;
        }
        if (!o.json) {
            fprintf(stdout, "[%zu]%.4f,", ch + 1, exp(nll / count));
            fflush(stdout);
        }
    }
    free(win);
    double ppl = exp(nll / count);
    if (o.json)
        printf("{\"ppl\":%.6f,\"tokens_scored\":%zu,\"chunks\":%zu,\"ctx\":%u,\"seconds\":%.3f}\n", ppl, count, n_chunks, n_ctx,
               cli_now() - t0);
    else
        printf("\nPPL = %.4f\n", ppl);
    rc = 0;
out:
    if (err.status) fprintf(stderr, "sluice: %s\n", err.msg);
    free(ids);
    free(text);
    engine_free(eng);
    tok_free(tok);
    model_free(m);
    return rc;
}
