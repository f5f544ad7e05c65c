/* forward_vk.h — the forward pass of engine/forward.c run on a Vulkan
 * device for one sequence: tokens in, logits out, same semantics (rms
 * norm eps, qwen2 biases, qwen3 per-head Q/K norm, rope, KV cache,
 * causal GQA attention, tied output).
 *
 * Every weight tensor is uploaded once, raw (quantized blocks stay
 * quantized in device memory). A prompt is evaluated in chunks of up to
 * n_batch tokens through matrix x matrix kernels, a single token through
 * matrix x vector ones; all ops of one chunk (every layer, then the output
 * projection) are recorded into one step (one command buffer) with
 * barriers, split between layers only where one submission would run long
 * enough to trip a driver watchdog. Logits land in a host-visible
 * buffer. */
#ifndef SLUICE_ENGINE_FORWARD_VK_H
#define SLUICE_ENGINE_FORWARD_VK_H
#include "backend/vulkan/device.h"
#include "backend/vulkan/runtime.h"
#include "engine/forward.h"

typedef struct vkf_params {
    vk_instance *inst;  /* used, not owned; NULL: vkf_create opens its own
                           (validation when SLUICE_VK_VALIDATE=1) */
    const char *device; /* vk_select_device spec: NULL/"auto", "N" or a name part */
    uint32_t n_ctx;     /* KV cache length in tokens; 0 = model's context length */
    kv_type kv;         /* KV cache element type (KV_F16 default, KV_F32) */
    uint32_t n_batch;   /* most tokens per step; 0 = 128 */
} vkf_params;

typedef struct vkf_ctx vkf_ctx;

/* Device bytes a context would take (what vkf_create checks against the
 * device-local heaps): weights (uploaded raw), KV cache, scratch (n_batch
 * rows of activations, token ids, one row of logits; all-logits mode adds
 * n_batch - 1 rows of logits when first used). n_ctx / n_batch 0: the
 * defaults of vkf_params. */
typedef struct vkf_estimate {
    uint64_t weights, kv_cache, scratch;
} vkf_estimate;
vkf_estimate vkf_estimate_bytes(const model *m, uint32_t n_ctx, kv_type kv, uint32_t n_batch);

/* Opens the device, checks that the model fits (every weight tensor, the
 * KV cache, scratch and logits against the device-local heaps: on failure
 * SLUICE_ERR_NOMEM with needed vs available bytes, before anything is
 * uploaded), then uploads every weight tensor and allocates the cache.
 * m must outlive the ctx. Fails with SLUICE_ERR_UNSUPPORTED for no usable
 * device (the auto rule found no GPU), a weight type without a kernel, a
 * head size over 256 or a V head size unlike the K one; SLUICE_ERR_RANGE
 * for a tensor larger than one storage buffer may span (splitting is not
 * done yet). Destroy with vkf_free. */
sluice_status vkf_create(vkf_ctx **out, const model *m, const vkf_params *p, sluice_error *err);
void vkf_free(vkf_ctx *c); /* accepts NULL */

/* Evaluates n tokens at positions n_past .. n_past+n-1, in chunks of
 * n_batch, and appends them to the cache. With all_logits the logits of
 * every token are kept, else only the last one's. Errors: bad token id
 * (SLUICE_ERR_ARG), context full (SLUICE_ERR_RANGE; the cache is unchanged
 * on both), device errors (the chunks before the failing one stay
 * cached; no logits are valid). */
sluice_status vkf_eval(vkf_ctx *c, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err);
/* Logits (n_vocab floats) of token i of the last vkf_eval (with
 * all_logits=false only the last token's: vkf_last_logits); NULL when i
 * has none. Owned by c, valid until the next vkf_eval. */
const float *vkf_logits(const vkf_ctx *c, uint32_t i);
const float *vkf_last_logits(const vkf_ctx *c);
/* The multi-sequence primitives of engine/session.h on a Vulkan device, as
 * fwd_decode / fwd_copy_block / fwd_n_slots (forward.h): a paged KV cache
 * of vkf_n_slots slots in blocks of FWD_KV_BLOCK, tokens of many sequences
 * in one batch (each attends to its own history through its block
 * table), logits of the tokens that want them. */
sluice_status vkf_decode(vkf_ctx *c, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err);
sluice_status vkf_copy_block(vkf_ctx *c, uint32_t src, uint32_t dst);
uint32_t vkf_n_slots(const vkf_ctx *c);
/* Most tokens per step. */
uint32_t vkf_n_batch(const vkf_ctx *c);
/* Device buffers holding weights: one per tensor, more where a matrix is
 * split by rows because one buffer may not span it. */
uint32_t vkf_weight_buffers(const vkf_ctx *c);
uint32_t vkf_n_past(const vkf_ctx *c);
uint32_t vkf_n_ctx(const vkf_ctx *c);
/* Forget cached positions >= n_past (n_past <= current). */
void vkf_truncate(vkf_ctx *c, uint32_t n_past);
/* Device bytes taken: weights, KV cache, scratch, logits. */
uint64_t vkf_memory_bytes(const vkf_ctx *c);
/* The device in use. */
const vk_device_info *vkf_device_info(const vkf_ctx *c);
/* The runtime device (owned by c), e.g. for the profiler (profile.h). */
vk_device *vkf_device(vkf_ctx *c);
/* Bytes of every weight tensor uploaded (GGUF bytes, unpadded; a tied
 * output counted once): what one token would ideally read. */
uint64_t vkf_weight_bytes(const vkf_ctx *c);
#endif
