/* engine.h — one handle over the forward passes the CLI can run a model
 * on: the CPU engine (forward.h) or a Vulkan device (forward_vk.h, when
 * built). --backend auto takes a discrete, then an integrated GPU, else the
 * CPU; a software Vulkan device (lavapipe) only when asked for by name or
 * number with --backend vulkan --device. */
#ifndef SLUICE_ENGINE_ENGINE_H
#define SLUICE_ENGINE_ENGINE_H
#include <stdio.h>
#include "engine/forward.h"

typedef enum engine_backend { ENGINE_AUTO, ENGINE_CPU, ENGINE_VULKAN } engine_backend;

typedef struct engine_params {
    engine_backend backend;
    const char *device;  /* Vulkan device: NULL/"auto", "N" or a name part */
    uint32_t n_ctx;      /* 0 = model's context length */
    kv_type kv;
    int n_threads;       /* CPU engine; 0 = all allowed CPUs */
    void *vk_instance;   /* Vulkan: the vk_instance to use (not owned); NULL: its own */
} engine_params;

typedef struct engine engine;

/* Opens the engine for m (which must outlive it). With ENGINE_AUTO a GPU
 * that cannot be opened falls back to the CPU engine (logged). */
sluice_status engine_create(engine **out, const model *m, const engine_params *p, sluice_error *err);
void engine_free(engine *e); /* accepts NULL */
/* Evaluates n tokens after the cached ones; afterwards the logits of the
 * last one (engine_last_logits), or with all_logits of every one
 * (engine_logits). Errors as fwd_eval / vkf_eval. */
sluice_status engine_eval(engine *e, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err);
/* Logits (n_vocab floats) of token i of the last engine_eval; with
 * all_logits=false only the last token's. */
const float *engine_logits(const engine *e, uint32_t i);
const float *engine_last_logits(const engine *e);
uint32_t engine_n_past(const engine *e);
uint32_t engine_n_ctx(const engine *e);
void engine_truncate(engine *e, uint32_t n_past);
/* "cpu (avx512vnni, 2 threads)" or "vulkan (NAME)"; valid while e lives. */
const char *engine_describe(const engine *e);
/* The model the engine runs. */
const model *engine_model(const engine *e);
/* Multi-sequence primitives under session.h, on either engine:
 * fwd_decode / vkf_decode, fwd_copy_block / vkf_copy_block, and the KV
 * slots they address. */
sluice_status engine_decode(engine *e, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err);
sluice_status engine_copy_block(engine *e, uint32_t src, uint32_t dst);
uint32_t engine_kv_slots(const engine *e);
/* The CPU context when the engine runs on the CPU, else NULL. */
fwd_ctx *engine_cpu(engine *e);
/* --profile (Vulkan engine; backend/vulkan/profile.h): turning it on
 * clears the sums, then every step (one per token while tokens are
 * evaluated one at a time) is profiled until it is turned off. Returns
 * false and does nothing on the CPU engine, or when the profiler cannot
 * be set up (logged). */
bool engine_profile_enable(engine *e, bool on);
/* Clears the sums (e.g. after a warm-up); keeps the mode. */
void engine_profile_reset(engine *e);
/* Prints the profile of the steps since it was enabled or reset to f:
 * the plain-text table of vk_profile_print, or (json) one JSON object
 * without a newline. Per-token figures use the tokens engine_eval was
 * given meanwhile, and the weight-bytes ratio vkf_weight_bytes. On the
 * CPU engine: a note that profiling is for --backend vulkan (json: a
 * {"note": ...} object). */
void engine_profile_report(engine *e, FILE *f, bool json);
/* Parses "auto" / "cpu" / "vulkan"; false for anything else. */
bool engine_backend_parse(const char *s, engine_backend *out);
#endif
