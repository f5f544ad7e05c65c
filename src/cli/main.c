/* main.c — the sluice command line: dispatch to one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static const struct { const char *name; int (*fn)(int, char **); const char *help; } cmds[] = {
    {"info", cmd_info, "info MODEL.gguf                 metadata, architecture, tensor types, memory"},
    {"run", cmd_run, "run -m MODEL -p TEXT [-n N]     stream a completion"},
    {"tokenize", cmd_tokenize, "tokenize -m MODEL [--no-bos] TEXT  print token ids"},
    {"perplexity", cmd_perplexity, "perplexity -m MODEL -f FILE     perplexity over a text file"},
    {"quantize", cmd_quantize, "quantize IN.gguf OUT.gguf TYPE  convert weights (Q8_0, Q4_K, ...)"},
    {"score", cmd_score, "score -m MODEL -p TEXT --labels A,B  log-probability of each label"},
    {"bench", cmd_bench, "bench -m MODEL [-p 512] [-n 128]  prompt and generation tokens/s"},
    {"devices", cmd_devices, "devices [--json]                Vulkan devices, capabilities, which one auto picks"},
    {"gen-model", cmd_genmodel, "gen-model [--shape tiny256] OUT.gguf  write a random-weight model (benchmarks)"},
};

static void usage(FILE *f) {
    fprintf(f, "sluice %s — on-premise labeling appliance and GGUF inference engine\n\nusage: sluice COMMAND [options]\n\n",
            SLUICE_VERSION);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  sluice %s\n", cmds[i].help);
    fprintf(f, "\nCommon model options: -m MODEL.gguf (default $SLUICE_MODELS/%s), -t/--threads N, "
               "-c/--ctx N, --kv f16|f32\nRun `sluice COMMAND --help` for a command's options.\n",
            DEFAULT_MODEL_FILE);
}

/* SLUICE_LOG=debug|info|warn|error: the least severe log line shown on
 * stderr (default info). */
static void log_level_from_env(void) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    const char *s = getenv("SLUICE_LOG");
    if (!s || !*s) return;
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            sluice_set_log(NULL, NULL, (sluice_log_level)i);
            return;
        }
    fprintf(stderr, "sluice: SLUICE_LOG=%s ignored (debug, info, warn or error)\n", s);
}

int main(int argc, char **argv) {
    log_level_from_env();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
