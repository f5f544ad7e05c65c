/* cmd_genmodel.c — `sluice gen-model`: write a random-weight model of a
 * named or custom shape (benchmarks, installation checks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "model/model_gen.h"

static const struct { const char *name; model_gen_spec s; } shapes[] = {
    /* ../shared/bench/PEER.md shapes */
    {"tiny256", {.arch = "llama", .n_vocab = 32000, .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .n_ff = 768, .n_ctx = 2048}},
    {"smol", {.arch = "llama", .n_vocab = 32000, .n_embd = 576, .n_layer = 30, .n_head = 9, .n_head_kv = 3, .n_ff = 1536, .n_ctx = 2048, .tied = true}},
};

static void gen_usage(void) {
    fprintf(stderr, "usage: sluice gen-model [--shape tiny256|smol] [--arch llama|qwen2|qwen3] [--dim N] [--layers N]\n"
                    "         [--heads N] [--kv-heads N] [--ffn N] [--vocab-size N] [--ctx N] [--tied|--untied]\n"
                    "         [--type f32|f16|bf16] [--vocab VOCAB.gguf] [--seed S] OUT.gguf\n");
}

int cmd_genmodel(int argc, char **argv) {
    model_gen_spec s = shapes[0].s;
    s.wtype = QT_F32;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        uint32_t *field = NULL;
        if (!strcmp(a, "--dim")) field = &s.n_embd;
        else if (!strcmp(a, "--layers")) field = &s.n_layer;
        else if (!strcmp(a, "--heads")) field = &s.n_head;
        else if (!strcmp(a, "--kv-heads")) field = &s.n_head_kv;
        else if (!strcmp(a, "--ffn")) field = &s.n_ff;
        else if (!strcmp(a, "--vocab-size")) field = &s.n_vocab;
        else if (!strcmp(a, "--ctx")) field = &s.n_ctx;
        if (field) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 1 << 24, &n)) return 2;
            *field = (uint32_t)n;
        } else if (!strcmp(a, "--shape")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            bool found = false;
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
                if (!strcmp(v, shapes[k].name)) { s = shapes[k].s; s.wtype = QT_F32; found = true; }
            if (!found) { fprintf(stderr, "sluice gen-model: unknown shape '%s' (tiny256, smol)\n", v); return 2; }
        } else if (!strcmp(a, "--arch")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            if (!arch_find(v)) { fprintf(stderr, "sluice gen-model: unknown arch '%s' (%s)\n", v, arch_supported_list()); return 2; }
            s.arch = arch_find(v)->name;
        } else if (!strcmp(a, "--type")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            int t = qtype_from_name(v);
            if (t != QT_F32 && t != QT_F16 && t != QT_BF16) {
                fprintf(stderr, "sluice gen-model: --type must be f32, f16 or bf16 (quantize afterwards)\n");
                return 2;
            }
            s.wtype = (qtype)t;
        } else if (!strcmp(a, "--vocab")) {
            if (!(s.vocab_from = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1L << 62, &n)) return 2;
            s.seed = (uint64_t)n;
        } else if (!strcmp(a, "--tied")) s.tied = true;
        else if (!strcmp(a, "--untied")) s.tied = false;
        else if (a[0] == '-') { gen_usage(); return strcmp(a, "-h") && strcmp(a, "--help") ? 2 : 0; }
        else if (!out) out = a;
        else { gen_usage(); return 2; }
    }
    if (!out) { gen_usage(); return 2; }
    if (s.n_embd % s.n_head || s.n_head % s.n_head_kv) {
        fprintf(stderr, "sluice gen-model: --dim must be a multiple of --heads, and --heads of --kv-heads\n");
        return 2;
    }
    sluice_error err = {0};
    if (model_gen_write(&s, out, &err)) { fprintf(stderr, "sluice: %s\n", err.msg); return 1; }
    printf("wrote %s (%s, dim %u, %u layers, %u/%u heads, ffn %u%s)\n", out, s.arch, s.n_embd, s.n_layer, s.n_head,
           s.n_head_kv, s.n_ff, s.tied ? ", tied" : "");
    return 0;
}
