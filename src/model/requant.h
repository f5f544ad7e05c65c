/* requant.h — convert a GGUF model's weight matrices to another type
 * (`sluice quantize`), following the GGUF ecosystem's per-tensor choices. */
#ifndef SLUICE_MODEL_REQUANT_H
#define SLUICE_MODEL_REQUANT_H
#include "core/threadpool.h"
#include "model/gguf.h"

/* Called once per tensor written (may be NULL). */
typedef void (*requant_progress_fn)(void *user, uint64_t index, uint64_t count, const char *name, qtype from, qtype to,
                                    const uint64_t ne[GGUF_MAX_DIMS]);

typedef struct requant_opts {
    const char *type;      /* F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K(_S|_M) Q5_K(_S|_M) Q6_K */
    bool pure;             /* every matrix gets exactly `type` (no output/mix promotion) */
    pool *pool;            /* may be NULL */
    requant_progress_fn progress;
    void *user;
} requant_opts;

/* Space-separated list of accepted type names. */
const char *requant_type_list(void);
/* Reads in, writes out. Metadata is copied; general.file_type updated.
 * Sources may be any compute type (dequantized first). */
sluice_status requant_file(const char *in, const char *out, const requant_opts *o, uint64_t *bytes_in,
                           uint64_t *bytes_out, sluice_error *err);
#endif
