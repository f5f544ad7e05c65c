/* cli.h — shared pieces of the sluice subcommands: option parsing, the
 * default model, loading a model + tokenizer + context with clear errors. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H
#include "engine/engine.h"
#include "text/tokenizer.h"

#define DEFAULT_MODEL_FILE "stories260K.gguf"

typedef struct cli_opts {
    const char *model;   /* -m; NULL = default model */
    int threads;         /* --threads / -t; 0 = all CPUs */
    uint32_t ctx;        /* --ctx / -c; 0 = model's */
    kv_type kv;          /* --kv f16|f32 */
    engine_backend backend; /* --backend auto|cpu|vulkan */
    const char *device;  /* --device N|NAME (Vulkan) */
    bool json;           /* --json */
} cli_opts;

/* If argv[*i] is a common option, consumes it (and its value), returns 1;
 * returns 0 if not a common option, -1 (after printing why) on a bad value. */
int cli_common_opt(cli_opts *o, int argc, char **argv, int *i);

/* Parses a number option value; prints an error naming opt on failure. */
bool cli_int(const char *opt, const char *s, long lo, long hi, long *out);
bool cli_float(const char *opt, const char *s, double lo, double hi, double *out);
/* Value of option argv[*i] (advances *i), or NULL after printing an error. */
const char *cli_value(int argc, char **argv, int *i);

/* Resolves o->model (default: $SLUICE_MODELS/stories260K.gguf). Prints how
 * to point at a model and returns NULL when there is none. */
const char *cli_model_path(const cli_opts *o, char *buf, size_t cap);

/* Loads what a model command needs; prints the error and returns false on
 * failure. Any of tok / eng may be NULL when not needed. */
bool cli_load(const cli_opts *o, model **m, tokenizer **tok, engine **eng);

double cli_now(void); /* monotonic seconds */

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_genmodel(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_score(int argc, char **argv);
#endif
