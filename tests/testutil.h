/* testutil.h — helpers shared by the Criterion suites: where model data
 * lives, scratch files, a seeded RNG and the NMSE metric. */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>

/* Directory of real model data ($SLUICE_MODELS, else the build's default
 * ../shared/models) or NULL if it does not exist. */
const char *tu_models_dir(void);
/* Path of file `name` under the models dir if it exists, else NULL (static
 * buffer, valid until the next call). */
const char *tu_model_file(const char *name);
/* Fresh path for a scratch file named after `stem` (static buffer). */
const char *tu_tmp_path(const char *stem);

/* Deterministic xorshift RNG. */
typedef struct tu_rng { uint64_t s; } tu_rng;
uint32_t tu_rand_u32(tu_rng *r);
float tu_rand_uniform(tu_rng *r, float lo, float hi); /* [lo, hi) */
float tu_rand_normal(tu_rng *r);                      /* N(0,1) */

/* sum((a-b)^2) / sum(b^2): normalised mean squared error of a against b. */
double tu_nmse(const float *a, const float *b, size_t n);

/* Reads a whole file into a NUL-terminated malloc'd buffer (NULL on error). */
char *tu_read_file(const char *path, size_t *len);
#endif
