/* cli_common.c — see cli.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "sluice: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool cli_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "sluice: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "sluice: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

int cli_common_opt(cli_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long n;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->model = v;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || !cli_int(a, v, 1, 1024, &n)) return -1;
        o->threads = (int)n;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
        if (!(v = cli_value(argc, argv, i)) || !cli_int(a, v, 1, 1 << 24, &n)) return -1;
        o->ctx = (uint32_t)n;
    } else if (!strcmp(a, "--kv")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "f16")) o->kv = KV_F16;
        else if (!strcmp(v, "f32")) o->kv = KV_F32;
        else { fprintf(stderr, "sluice: --kv expects f16 or f32, got '%s'\n", v); return -1; }
    } else if (!strcmp(a, "--backend")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!engine_backend_parse(v, &o->backend)) {
            fprintf(stderr, "sluice: --backend expects auto, cpu or vulkan, got '%s'\n", v);
            return -1;
        }
    } else if (!strcmp(a, "--device")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->device = v;
    } else if (!strcmp(a, "--json")) {
        o->json = true;
    } else {
        return 0;
    }
    return 1;
}

const char *cli_model_path(const cli_opts *o, char *buf, size_t cap) {
    if (o->model) return o->model;
    const char *dir = getenv("SLUICE_MODELS");
    if (dir && *dir) {
        snprintf(buf, cap, "%s/%s", dir, DEFAULT_MODEL_FILE);
        if (access(buf, R_OK) == 0) return buf;
        fprintf(stderr, "sluice: no model given (-m) and the default model %s is not there.\n"
                        "Pass -m MODEL.gguf, or set SLUICE_MODELS to the folder that holds %s.\n", buf, DEFAULT_MODEL_FILE);
    } else {
        fprintf(stderr, "sluice: no model given. Pass -m MODEL.gguf, or set SLUICE_MODELS to the folder that holds %s\n"
                        "(the default model), e.g. SLUICE_MODELS=../shared/models.\n", DEFAULT_MODEL_FILE);
    }
    return NULL;
}

bool cli_load(const cli_opts *o, model **m, tokenizer **tok, engine **eng) {
    char buf[4096];
    const char *path = cli_model_path(o, buf, sizeof buf);
    if (!path) return false;
    sluice_error err = {0};
    *m = NULL;
    if (tok) *tok = NULL;
    if (eng) *eng = NULL;
    if (model_load(m, path, &err)) goto fail;
    if (tok && tok_load(tok, (*m)->gguf, &err)) goto fail;
    if (eng) {
        engine_params p = {.backend = o->backend, .device = o->device, .n_ctx = o->ctx, .kv = o->kv,
                           .n_threads = o->threads};
        /* --device names a Vulkan device: asking for one means the Vulkan backend */
        if (o->device && p.backend == ENGINE_AUTO) p.backend = ENGINE_VULKAN;
        if (!p.n_ctx && (*m)->hp.n_ctx_train > 4096) p.n_ctx = 4096; /* keep memory sane by default */
        if (engine_create(eng, *m, &p, &err)) goto fail;
    }
    return true;
fail:
    fprintf(stderr, "sluice: %s\n", err.msg);
    if (tok) { tok_free(*tok); *tok = NULL; }
    model_free(*m);
    *m = NULL;
    return false;
}
