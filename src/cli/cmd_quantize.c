/* cmd_quantize.c — `sluice quantize IN OUT TYPE`: convert a model's weight
 * matrices (rules in src/model/requant.c). */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "model/requant.h"

static void show(void *user, uint64_t i, uint64_t n, const char *name, qtype from, qtype to, const uint64_t ne[4]) {
    printf("[%3llu/%3llu] %-32s %-6s -> %-6s [%llu x %llu]\n", (unsigned long long)i + 1, (unsigned long long)n, name,
           qtype_get(from)->name, qtype_get(to)->name, (unsigned long long)ne[0],
           (unsigned long long)(ne[1] * ne[2] * ne[3]));
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL;
    requant_opts o = {.progress = show};
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pure")) o.pure = true;
        else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            const char *v = cli_value(argc, argv, &i);
            long n;
            if (!v || !cli_int("--threads", v, 1, 1024, &n)) return 2;
            threads = (int)n;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: sluice quantize [--pure] [-t N] IN.gguf OUT.gguf TYPE\ntypes: %s\n", requant_type_list());
            return strcmp(argv[i], "-h") && strcmp(argv[i], "--help") ? 2 : 0;
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else if (!type) type = argv[i];
        else { fprintf(stderr, "sluice quantize: too many arguments\n"); return 2; }
    }
    if (!type) {
        fprintf(stderr, "usage: sluice quantize [--pure] [-t N] IN.gguf OUT.gguf TYPE\ntypes: %s\n", requant_type_list());
        return 2;
    }
    o.type = type;
    o.pool = pool_create(threads ? threads : pool_cpu_count());
    sluice_error err = {0};
    uint64_t bin = 0, bout = 0;
    double t0 = cli_now();
    sluice_status st = requant_file(in, out, &o, &bin, &bout, &err);
    pool_destroy(o.pool);
    if (st) { fprintf(stderr, "sluice: %s\n", err.msg); return 1; }
    printf("quantized %s -> %s (%s): %.2f MiB -> %.2f MiB in %.2f s\n", in, out, type, bin / 1048576.0, bout / 1048576.0,
           cli_now() - t0);
    return 0;
}
