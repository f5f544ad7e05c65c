/* forward.h — the CPU forward pass of a llama-family transformer over a
 * KV cache: tokens in, logits out. One sequence per context; prompt tokens
 * are evaluated as a batch (matrix x matrix), generation one at a time. */
#ifndef SLUICE_ENGINE_FORWARD_H
#define SLUICE_ENGINE_FORWARD_H
#include "backend/cpu/cpu_kernels.h"
#include "model/model.h"

typedef enum kv_type { KV_F16, KV_F32 } kv_type;

typedef struct fwd_params {
    uint32_t n_ctx;     /* KV cache length in tokens; 0 = model's context length */
    uint32_t n_batch;   /* most tokens per internal step; 0 = 512 */
    kv_type kv;         /* KV cache element type (default F16) */
    int n_threads;      /* 0 = all online CPUs */
    bool attn_reference; /* tests: attention one (token, head) at a time (the reference of the tiled kernel) */
} fwd_params;

typedef struct fwd_ctx fwd_ctx;

/* The KV cache is a pool of n_ctx slots (rounded up to whole blocks of
 * FWD_KV_BLOCK positions); a sequence's block table lists the blocks its
 * positions use: position p sits at slot
 * blocks[p / FWD_KV_BLOCK] * FWD_KV_BLOCK + p % FWD_KV_BLOCK. */
#define FWD_KV_BLOCK 16

/* One token of a multi-sequence batch (fwd_decode). */
typedef struct fwd_tok {
    int32_t token;
    uint32_t pos;           /* position in its sequence: rope, its KV slot, attends to 0..pos */
    const uint32_t *blocks; /* its sequence's block table (covers 0..pos) */
    bool logits;            /* keep this token's logits */
} fwd_tok;

/* Allocates the KV cache and scratch for m (which must outlive the ctx). */
sluice_status fwd_create(fwd_ctx **out, const model *m, const fwd_params *p, sluice_error *err);
void fwd_free(fwd_ctx *c); /* accepts NULL */

/* Evaluates n tokens at positions n_past .. n_past+n-1 and appends them to
 * the cache. With all_logits, logits of every token are kept, else only of
 * the last. Errors: bad token id (SLUICE_ERR_ARG), context full
 * (SLUICE_ERR_RANGE); the cache is unchanged on error. */
sluice_status fwd_eval(fwd_ctx *c, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err);
/* Evaluates a batch of tokens of any sequences: each token's K/V go to its
 * slot, and it attends to positions 0..pos of its sequence, which must be
 * in the cache already or earlier in this batch (a sequence's tokens in
 * position order). Logits of the tokens that want them are written to
 * `logits`, in batch order, n_vocab floats each. Does not touch fwd_eval's
 * sequence state (n_past); the caller owns the slot bookkeeping. Errors:
 * bad token id (SLUICE_ERR_ARG), a slot outside the cache
 * (SLUICE_ERR_RANGE), before anything is evaluated. */
sluice_status fwd_decode(fwd_ctx *c, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err);
/* Copies KV block src to block dst in every layer (a fork's partly filled
 * last block). SLUICE_ERR_RANGE for a block outside the cache. */
sluice_status fwd_copy_block(fwd_ctx *c, uint32_t src, uint32_t dst);
/* Logits (n_vocab floats) of token i of the last fwd_eval; with
 * all_logits=false only i = n-1 is valid. */
const float *fwd_logits(const fwd_ctx *c, uint32_t i);
/* Logits of the last token of the last fwd_eval. */
const float *fwd_last_logits(const fwd_ctx *c);
uint32_t fwd_n_past(const fwd_ctx *c);
uint32_t fwd_n_ctx(const fwd_ctx *c);
/* KV cache slots: n_ctx rounded up to whole FWD_KV_BLOCKs (fwd_decode's pool). */
uint32_t fwd_n_slots(const fwd_ctx *c);
/* Forget cached positions >= n_past (n_past <= current). */
void fwd_truncate(fwd_ctx *c, uint32_t n_past);
cpu_isa fwd_isa(const fwd_ctx *c);
int fwd_threads(const fwd_ctx *c);
/* Bytes the KV cache and scratch buffers take. */
size_t fwd_memory_bytes(const fwd_ctx *c);
/* Memory estimate without allocating (same formula as fwd_create). */
size_t fwd_estimate_bytes(const model *m, uint32_t n_ctx, uint32_t n_batch, kv_type kv, int n_threads);
#endif
