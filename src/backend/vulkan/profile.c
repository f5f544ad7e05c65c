/* profile.c — the per-device profiler of profile.h: timestamp query pools
 * filled around the dispatches of a step, read after the step's fence and
 * summed per shader variant, with the step's host times and weight bytes;
 * and the plain-text and JSON reports.
 *
 * A step of n dispatches writes n + 1 timestamps, all at
 * VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT: one before the first dispatch and
 * one after each. Such a timestamp is taken when every command recorded
 * before it has finished, so dispatch k's time runs from the end of the
 * work before it (timestamp k) to its own end (timestamp k + 1): a second
 * timestamp before each dispatch would read the same as the one after the
 * previous dispatch, at twice the cost. Dispatches that overlap on the
 * device (no barrier between them) thus split their common time instead
 * of each counting it, and the per-dispatch times add up to the step's
 * busy time. */
#include "backend/vulkan/profile.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend/vulkan/vk_internal.h"

#define CHUNK_QUERIES 1024 /* timestamps per query pool */

struct vk_profile {
    bool on;            /* mode for steps that begin from now on */
    bool step_on;       /* the step being recorded is profiled */
    bool timestamps;    /* the queue family writes timestamps */
    double period_ns;   /* limits.timestampPeriod: ns per tick */
    uint64_t mask;      /* timestampValidBits as a mask */
    VkQueryPool *pools; /* n_pools, each CHUNK_QUERIES timestamps */
    uint32_t n_pools, pools_reset; /* pools reset in this step: 0..pools_reset-1 */
    uint32_t *ids;      /* shader id of each dispatch of this step */
    uint64_t *ticks;    /* read-back buffer: timestamps 0..n of the step */
    uint32_t cap;       /* dispatches ids and ticks (cap + 1) have room for */
    uint64_t t_begin, t_submit; /* host ns */
    uint64_t step_weight_bytes;
    vk_profile_stats sum; /* ops[] indexed by shader id here; sorted on vk_profile_get */
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

sluice_status vk_profile_enable(vk_device *d, bool on, sluice_error *err) {
    if (!d->prof) {
        if (!on) return SLUICE_OK;
        vk_profile *p = calloc(1, sizeof *p);
        if (!p) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        uint32_t n = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &n, NULL);
        VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
        if (q) vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &n, q);
        uint32_t bits = q && d->queue_family < n ? q[d->queue_family].timestampValidBits : 0;
        free(q);
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(d->phys, &props);
        const char *no_ts = getenv("SLUICE_VK_PROFILE_NO_TIMESTAMPS"); /* tests: the path of such devices */
        p->timestamps = bits > 0 && props.limits.timestampPeriod > 0 && !(no_ts && *no_ts && strcmp(no_ts, "0"));
        p->period_ns = props.limits.timestampPeriod;
        p->mask = bits >= 64 ? UINT64_MAX : (1ull << bits) - 1;
        d->prof = p;
    }
    if (on && !d->prof->on) vk_profile_reset(d);
    d->prof->on = on;
    return SLUICE_OK;
}

bool vk_profile_enabled(const vk_device *d) { return d->prof && d->prof->on; }

void vk_profile_reset(vk_device *d) {
    vk_profile *p = d->prof;
    if (!p) return;
    memset(&p->sum, 0, sizeof p->sum);
    p->sum.timestamps = p->timestamps;
}

static int cmp_op(const void *a, const void *b) {
    const vk_profile_op *x = a, *y = b;
    if (x->gpu_ns != y->gpu_ns) return x->gpu_ns > y->gpu_ns ? -1 : 1;
    if (x->dispatches != y->dispatches) return x->dispatches > y->dispatches ? -1 : 1;
    return strcmp(x->name, y->name);
}

void vk_profile_get(const vk_device *d, vk_profile_stats *out) {
    memset(out, 0, sizeof *out);
    if (!d->prof) return;
    *out = d->prof->sum;
    uint32_t n = 0;
    for (uint32_t i = 0; i < VK_SHADER_COUNT; i++) {
        vk_profile_op o = d->prof->sum.ops[i];
        if (!o.dispatches) continue;
        o.name = vk_shader_get((vk_shader_id)i)->name;
        o.share = out->gpu_ns ? 100.0 * (double)o.gpu_ns / (double)out->gpu_ns : 0.0;
        out->ops[n++] = o;
    }
    memset(out->ops + n, 0, sizeof(vk_profile_op) * (VK_SHADER_COUNT - n));
    out->n_ops = n;
    qsort(out->ops, n, sizeof out->ops[0], cmp_op);
}

void vk_step_note_weight_bytes(vk_device *d, uint64_t bytes) {
    if (d->prof && d->prof->step_on) d->prof->step_weight_bytes += bytes;
}

/* ---- hooks called by runtime.c ---- */

void vk_profile_destroy(vk_device *d) {
    vk_profile *p = d->prof;
    if (!p) return;
    for (uint32_t i = 0; i < p->n_pools; i++) d->vk.vkDestroyQueryPool(d->dev, p->pools[i], NULL);
    free(p->pools);
    free(p->ids);
    free(p->ticks);
    free(p);
    d->prof = NULL;
}

void vk_profile_step_begin(vk_device *d) {
    vk_profile *p = d->prof;
    if (!p) return;
    p->step_on = p->on;
    if (!p->step_on) return;
    p->t_begin = now_ns();
    p->step_weight_bytes = 0;
    p->pools_reset = 0;
    if (!p->timestamps) return;
    for (uint32_t i = 0; i < p->n_pools; i++)
        d->vk.vkCmdResetQueryPool(d->cmd, p->pools[i], 0, CHUNK_QUERIES);
    p->pools_reset = p->n_pools;
}

/* Timestamp q of the step, into the command buffer (its pool exists and is reset). */
static void write_ts(vk_device *d, uint32_t q) {
    vk_profile *p = d->prof;
    d->vk.vkCmdWriteTimestamp(d->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->pools[q / CHUNK_QUERIES],
                              q % CHUNK_QUERIES);
}

sluice_status vk_profile_dispatch_begin(vk_device *d, vk_shader_id id, sluice_error *err) {
    vk_profile *p = d->prof;
    if (!p || !p->step_on) return SLUICE_OK;
    uint32_t k = d->dispatches; /* index of this dispatch in the step */
    if (k >= p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : CHUNK_QUERIES;
        uint32_t *ids = realloc(p->ids, sizeof *ids * cap);
        if (ids) p->ids = ids;
        uint64_t *ticks = ids ? realloc(p->ticks, sizeof *ticks * (cap + 1)) : NULL;
        if (!ticks) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory (profiler)");
        p->ticks = ticks;
        p->cap = cap;
    }
    p->ids[k] = (uint32_t)id;
    if (!p->timestamps) return SLUICE_OK;
    /* this dispatch ends with timestamp k + 1: its pool must exist and be reset */
    uint32_t pool = (k + 1) / CHUNK_QUERIES;
    if (pool >= p->n_pools) { /* a longer step than any before: one more pool */
        VkQueryPool *pools = realloc(p->pools, sizeof *pools * (p->n_pools + 1));
        if (!pools) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory (profiler)");
        p->pools = pools;
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = CHUNK_QUERIES};
        VkResult r = d->vk.vkCreateQueryPool(d->dev, &qi, NULL, &p->pools[p->n_pools]);
        if (r != VK_SUCCESS)
            return sluice_fail(err, SLUICE_ERR_NOMEM, "vkCreateQueryPool failed: %s", vk_result_str(r));
        p->n_pools++;
    }
    if (pool >= p->pools_reset) { /* created during this step: reset before first use */
        d->vk.vkCmdResetQueryPool(d->cmd, p->pools[pool], 0, CHUNK_QUERIES);
        p->pools_reset = pool + 1;
    }
    if (k == 0) write_ts(d, 0);
    return SLUICE_OK;
}

void vk_profile_dispatch_end(vk_device *d) {
    vk_profile *p = d->prof;
    if (!p || !p->step_on || !p->timestamps) return;
    write_ts(d, d->dispatches + 1); /* this dispatch is not counted yet */
}

void vk_profile_step_submitting(vk_device *d) {
    if (d->prof && d->prof->step_on) d->prof->t_submit = now_ns();
}

sluice_status vk_profile_step_done(vk_device *d, bool ok, sluice_error *err) {
    vk_profile *p = d->prof;
    if (!p || !p->step_on) return SLUICE_OK;
    p->step_on = false;
    if (!ok) return SLUICE_OK;
    vk_profile_stats *s = &p->sum;
    uint32_t n = d->dispatches;
    for (uint32_t c = 0; p->timestamps && n && c * CHUNK_QUERIES <= n; c++) {
        uint32_t q0 = c * CHUNK_QUERIES, m = n + 1 - q0 < CHUNK_QUERIES ? n + 1 - q0 : CHUNK_QUERIES;
        VkResult r = d->vk.vkGetQueryPoolResults(d->dev, p->pools[c], 0, m, sizeof(uint64_t) * m, p->ticks + q0,
                                                 sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r != VK_SUCCESS)
            return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkGetQueryPoolResults failed: %s", vk_result_str(r));
    }
    for (uint32_t k = 0; k < n; k++) {
        vk_profile_op *o = &s->ops[p->ids[k]];
        o->dispatches++;
        if (!p->timestamps) continue;
        uint64_t ns = (uint64_t)((double)((p->ticks[k + 1] - p->ticks[k]) & p->mask) * p->period_ns + 0.5);
        o->gpu_ns += ns;
        s->gpu_ns += ns;
    }
    uint64_t t_end = now_ns();
    s->steps++;
    s->dispatches += n;
    s->record_ns += p->t_submit - p->t_begin;
    s->submit_ns += t_end - p->t_submit;
    s->weight_bytes += p->step_weight_bytes;
    return SLUICE_OK;
}

/* ---- reports ---- */

static double per(uint64_t x, uint64_t n) { return n ? (double)x / (double)n : 0.0; }

void vk_profile_print(const vk_profile_stats *s, FILE *f, uint64_t model_weight_bytes, uint64_t tokens) {
    fprintf(f, "profile: %llu steps, %llu dispatches", (unsigned long long)s->steps,
            (unsigned long long)s->dispatches);
    if (tokens) fprintf(f, ", %llu tokens", (unsigned long long)tokens);
    fprintf(f, "\n");
    if (!s->timestamps)
        fprintf(f, "note: no timestamps on this device's queue (timestampValidBits 0, or "
                   "SLUICE_VK_PROFILE_NO_TIMESTAMPS=1): GPU times are not measured; counts, host times and bytes "
                   "are\n");
    fprintf(f, "| op (shader variant) | dispatches | GPU ms | share %% | µs/dispatch |\n");
    fprintf(f, "|---|---:|---:|---:|---:|\n");
    for (uint32_t i = 0; i < s->n_ops; i++) {
        const vk_profile_op *o = &s->ops[i];
        if (s->timestamps)
            fprintf(f, "| %s | %llu | %.3f | %.1f | %.2f |\n", o->name, (unsigned long long)o->dispatches,
                    o->gpu_ns / 1e6, o->share, per(o->gpu_ns, o->dispatches) / 1e3);
        else
            fprintf(f, "| %s | %llu | - | - | - |\n", o->name, (unsigned long long)o->dispatches);
    }
    if (s->timestamps)
        fprintf(f, "| total | %llu | %.3f | 100.0 | %.2f |\n", (unsigned long long)s->dispatches, s->gpu_ns / 1e6,
                per(s->gpu_ns, s->dispatches) / 1e3);
    else
        fprintf(f, "| total | %llu | - | - | - |\n", (unsigned long long)s->dispatches);
    uint64_t st = s->steps;
    fprintf(f, "per step: %.1f dispatches", per(s->dispatches, st));
    if (s->timestamps)
        fprintf(f, "; GPU %.3f ms (first dispatch start to last end)", per(s->gpu_ns, st) / 1e6);
    fprintf(f, "\nhost per step: record %.3f ms, submit+wait %.3f ms, total %.3f ms\n", per(s->record_ns, st) / 1e6,
            per(s->submit_ns, st) / 1e6, per(s->record_ns + s->submit_ns, st) / 1e6);
    fprintf(f, "weight bytes read per step: %.0f", per(s->weight_bytes, st));
    if (model_weight_bytes)
        fprintf(f, " = %.4f x model weights (%llu bytes)", per(s->weight_bytes, st) / model_weight_bytes,
                (unsigned long long)model_weight_bytes);
    fprintf(f, "\n");
    if (tokens) {
        fprintf(f, "weight bytes read per token: %.0f", per(s->weight_bytes, tokens));
        if (model_weight_bytes)
            fprintf(f, " = %.4f x model weights (ideal 1.0)", per(s->weight_bytes, tokens) / model_weight_bytes);
        fprintf(f, "\n");
    }
}

void vk_profile_print_json(const vk_profile_stats *s, FILE *f, uint64_t model_weight_bytes, uint64_t tokens) {
    uint64_t st = s->steps;
    fprintf(f, "{\"timestamps\":%s,\"steps\":%llu,\"tokens\":%llu,\"dispatches\":%llu,\"dispatches_per_step\":%.2f",
            s->timestamps ? "true" : "false", (unsigned long long)st, (unsigned long long)tokens,
            (unsigned long long)s->dispatches, per(s->dispatches, st));
    if (s->timestamps)
        fprintf(f, ",\"gpu_ms\":%.6f,\"gpu_ms_per_step\":%.6f", s->gpu_ns / 1e6, per(s->gpu_ns, st) / 1e6);
    else
        fprintf(f, ",\"gpu_ms\":null,\"gpu_ms_per_step\":null");
    fprintf(f, ",\"host_ms_per_step\":{\"record\":%.6f,\"submit_wait\":%.6f,\"total\":%.6f}",
            per(s->record_ns, st) / 1e6, per(s->submit_ns, st) / 1e6, per(s->record_ns + s->submit_ns, st) / 1e6);
    fprintf(f, ",\"weight_bytes\":%llu,\"weight_bytes_per_step\":%.1f,\"model_weight_bytes\":%llu",
            (unsigned long long)s->weight_bytes, per(s->weight_bytes, st), (unsigned long long)model_weight_bytes);
    if (tokens && model_weight_bytes)
        fprintf(f, ",\"weight_bytes_per_token\":%.1f,\"weight_read_ratio\":%.6f", per(s->weight_bytes, tokens),
                per(s->weight_bytes, tokens) / model_weight_bytes);
    fprintf(f, ",\"ops\":[");
    for (uint32_t i = 0; i < s->n_ops; i++) {
        const vk_profile_op *o = &s->ops[i];
        fprintf(f, "%s{\"op\":\"%s\",\"dispatches\":%llu", i ? "," : "", o->name, (unsigned long long)o->dispatches);
        if (s->timestamps)
            fprintf(f, ",\"gpu_ms\":%.6f,\"share\":%.4f,\"us_per_dispatch\":%.4f}", o->gpu_ns / 1e6, o->share,
                    per(o->gpu_ns, o->dispatches) / 1e3);
        else
            fprintf(f, ",\"gpu_ms\":null,\"share\":null,\"us_per_dispatch\":null}");
    }
    fprintf(f, "]}");
}
