/* profile.h — the Vulkan backend's per-device profiler (`--profile`). When
 * on, every step (runtime.h) gets GPU timestamps written around each
 * dispatch (timestamp queries, reset at the step's start; profile.c says
 * what a dispatch's time covers), read back after the step's fence, and
 * summed per shader variant; the step's host time
 * (recording, submit + wait) and the weight bytes its ops read
 * (vk_step_note_weight_bytes) are summed too. Timestamps only observe:
 * results are bit-identical with profiling on or off. */
#ifndef SLUICE_VK_PROFILE_H
#define SLUICE_VK_PROFILE_H
#include <stdio.h>
#include "backend/vulkan/runtime.h"
#include "backend/vulkan/shaders_registry.h"

/* One shader variant's share of the profiled steps. */
typedef struct vk_profile_op {
    const char *name;     /* registry name, e.g. "mul_mat_vec_q4_0_subgroup" (static) */
    uint64_t dispatches;
    uint64_t gpu_ns;      /* sum of its dispatches' GPU times; 0 without timestamps */
    double share;         /* percent of all dispatches' GPU time; 0 without timestamps */
} vk_profile_op;

/* What the profiler has summed since it was enabled or last reset. */
typedef struct vk_profile_stats {
    bool timestamps;      /* the device's queue writes timestamps: GPU times are measured */
    uint64_t steps;       /* steps submitted with profiling on */
    uint64_t dispatches;
    uint64_t gpu_ns;      /* sum of every dispatch's GPU time: per step, its first
                             dispatch's start to its last one's end */
    uint64_t record_ns;   /* host: vk_step_begin -> vk_step_submit called */
    uint64_t submit_ns;   /* host: inside vk_step_submit (end, submit, fence wait, timestamp read-back) */
    uint64_t weight_bytes; /* noted by the ops (vk_step_note_weight_bytes) */
    uint32_t n_ops;       /* entries of ops used: the variants dispatched */
    vk_profile_op ops[VK_SHADER_COUNT]; /* by GPU time, then dispatches, descending */
} vk_profile_stats;

/* Turns profiling on or off for the steps that begin after the call (a
 * step being recorded keeps the mode it began with). Turning it on clears
 * the sums. Query pools are created on first use (one per 1024 timestamps
 * of a step) and kept until the device is destroyed. Timestamps are used
 * where the queue family has timestampValidBits > 0, unless
 * SLUICE_VK_PROFILE_NO_TIMESTAMPS=1 (as it is when profiling is first
 * enabled) asks to behave as without them. Fails with
 * SLUICE_ERR_NOMEM when the profiler's state cannot be allocated. */
sluice_status vk_profile_enable(vk_device *d, bool on, sluice_error *err);
bool vk_profile_enabled(const vk_device *d);
/* Clears the sums (not the mode). */
void vk_profile_reset(vk_device *d);
/* The sums so far into *out (all zero when profiling was never on). */
void vk_profile_get(const vk_device *d, vk_profile_stats *out);

/* Adds the weight bytes an op recorded into the current step will read
 * (called by ops.c's weight-reading ops; counted only while profiling). */
void vk_step_note_weight_bytes(vk_device *d, uint64_t bytes);

/* Prints s as a plain-text table to f: per shader variant its dispatches,
 * GPU ms, share of GPU time and µs per dispatch, sorted by GPU time; then
 * per step: dispatches, GPU time, host time (record / submit+wait /
 * total); and weight bytes read per token, also as a multiple of
 * model_weight_bytes (1.0 is the ideal for generation: every weight read
 * once per token). tokens: tokens the profiled steps evaluated (0:
 * unknown, per-token figures omitted). Says so when the device has no
 * timestamps. */
void vk_profile_print(const vk_profile_stats *s, FILE *f, uint64_t model_weight_bytes, uint64_t tokens);
/* The same figures as one JSON object (no newline) to f. */
void vk_profile_print_json(const vk_profile_stats *s, FILE *f, uint64_t model_weight_bytes, uint64_t tokens);
#endif
