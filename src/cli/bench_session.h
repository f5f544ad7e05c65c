/* bench_session.h — `sluice bench --batch` and `--label-bench`
 * (bench_session.c): many sequences at once, on either engine. */
#ifndef SLUICE_CLI_BENCH_SESSION_H
#define SLUICE_CLI_BENCH_SESSION_H
#include "cli/cli.h"

/* Aggregate generation tokens/s for each batch size in list ("1,4,16"),
 * n_gen steps each, median of reps; with profile (Vulkan), the profile of
 * each size's last run. Returns the process exit code. */
int bench_batch(const cli_opts *o, const char *list, long n_gen, long reps, bool profile);
/* The label micro-benchmark: n_items through sessions, the first
 * n_generic the generic way. Returns the process exit code. */
int bench_labels(const cli_opts *o, long n_items, long n_generic);
#endif
