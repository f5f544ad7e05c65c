/* engine.c — dispatch between the CPU and Vulkan forward passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"
#ifdef SLUICE_HAVE_VULKAN
#include "backend/vulkan/profile.h"
#include "engine/forward_vk.h"
#endif

struct engine {
    const model *m;
    fwd_ctx *cpu;
#ifdef SLUICE_HAVE_VULKAN
    vkf_ctx *vk;
#endif
    char desc[320];
    bool profiling;
    uint64_t prof_tokens; /* tokens evaluated since the profile was enabled or reset */
};

bool engine_backend_parse(const char *s, engine_backend *out) {
    if (!strcmp(s, "auto")) *out = ENGINE_AUTO;
    else if (!strcmp(s, "cpu")) *out = ENGINE_CPU;
    else if (!strcmp(s, "vulkan")) *out = ENGINE_VULKAN;
    else return false;
    return true;
}

sluice_status engine_create(engine **out, const model *m, const engine_params *p, sluice_error *err) {
    *out = NULL;
    engine *e = calloc(1, sizeof *e);
    if (!e) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    e->m = m;
    sluice_status st = SLUICE_OK;
    if (p->backend != ENGINE_CPU) {
#ifdef SLUICE_HAVE_VULKAN
        vkf_params vp = {.inst = p->vk_instance, .device = p->device, .n_ctx = p->n_ctx, .kv = p->kv};
        sluice_error verr = {0};
        st = vkf_create(&e->vk, m, &vp, &verr);
        if (!st) {
            snprintf(e->desc, sizeof e->desc, "vulkan (%s)", vkf_device_info(e->vk)->name);
            *out = e;
            return SLUICE_OK;
        }
        if (p->backend == ENGINE_VULKAN) {
            free(e);
            return sluice_fail(err, verr.status, "%s", verr.msg);
        }
        if (st != SLUICE_ERR_UNSUPPORTED) sluice_log(SLUICE_LOG_WARN, "no GPU engine (%s); using the CPU", verr.msg);
#else
        if (p->backend == ENGINE_VULKAN) {
            free(e);
            return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "this sluice was built without the Vulkan backend");
        }
#endif
    }
    fwd_params fp = {.n_ctx = p->n_ctx, .kv = p->kv, .n_threads = p->n_threads};
    if ((st = fwd_create(&e->cpu, m, &fp, err))) {
        free(e);
        return st;
    }
    snprintf(e->desc, sizeof e->desc, "cpu (%s, %d threads)", cpu_isa_name(fwd_isa(e->cpu)), fwd_threads(e->cpu));
    *out = e;
    return SLUICE_OK;
}

void engine_free(engine *e) {
    if (!e) return;
    fwd_free(e->cpu);
#ifdef SLUICE_HAVE_VULKAN
    vkf_free(e->vk);
#endif
    free(e);
}

#ifdef SLUICE_HAVE_VULKAN
#define ON_VK(e, vk_expr, cpu_expr) ((e)->vk ? (vk_expr) : (cpu_expr))
#else
#define ON_VK(e, vk_expr, cpu_expr) (cpu_expr)
#endif

sluice_status engine_eval(engine *e, const int32_t *tokens, uint32_t n, bool all_logits, sluice_error *err) {
    if (e->profiling) e->prof_tokens += n;
    return ON_VK(e, vkf_eval(e->vk, tokens, n, all_logits, err), fwd_eval(e->cpu, tokens, n, all_logits, err));
}

const float *engine_logits(const engine *e, uint32_t i) { return ON_VK(e, vkf_logits(e->vk, i), fwd_logits(e->cpu, i)); }

const float *engine_last_logits(const engine *e) { return ON_VK(e, vkf_last_logits(e->vk), fwd_last_logits(e->cpu)); }
uint32_t engine_n_past(const engine *e) { return ON_VK(e, vkf_n_past(e->vk), fwd_n_past(e->cpu)); }
uint32_t engine_n_ctx(const engine *e) { return ON_VK(e, vkf_n_ctx(e->vk), fwd_n_ctx(e->cpu)); }

void engine_truncate(engine *e, uint32_t n_past) {
#ifdef SLUICE_HAVE_VULKAN
    if (e->vk) { vkf_truncate(e->vk, n_past); return; }
#endif
    fwd_truncate(e->cpu, n_past);
}

const char *engine_describe(const engine *e) { return e->desc; }
const model *engine_model(const engine *e) { return e->m; }

sluice_status engine_decode(engine *e, const fwd_tok *tok, uint32_t n, float *logits, sluice_error *err) {
    return ON_VK(e, vkf_decode(e->vk, tok, n, logits, err), fwd_decode(e->cpu, tok, n, logits, err));
}

sluice_status engine_copy_block(engine *e, uint32_t src, uint32_t dst) {
    return ON_VK(e, vkf_copy_block(e->vk, src, dst), fwd_copy_block(e->cpu, src, dst));
}

uint32_t engine_kv_slots(const engine *e) { return ON_VK(e, vkf_n_slots(e->vk), fwd_n_slots(e->cpu)); }
fwd_ctx *engine_cpu(engine *e) { return e->cpu; }

bool engine_profile_enable(engine *e, bool on) {
#ifdef SLUICE_HAVE_VULKAN
    if (e->vk) {
        sluice_error err = {0};
        if (vk_profile_enable(vkf_device(e->vk), on, &err) != SLUICE_OK) {
            sluice_log(SLUICE_LOG_WARN, "no profile: %s", err.msg);
            return false;
        }
        if (on && !e->profiling) e->prof_tokens = 0;
        e->profiling = on;
        return true;
    }
#endif
    (void)on;
    return false;
}

void engine_profile_reset(engine *e) {
#ifdef SLUICE_HAVE_VULKAN
    if (e->vk) vk_profile_reset(vkf_device(e->vk));
#endif
    e->prof_tokens = 0;
}

void engine_profile_report(engine *e, FILE *f, bool json) {
#ifdef SLUICE_HAVE_VULKAN
    if (e->vk) {
        vk_profile_stats *s = malloc(sizeof *s);
        if (!s) return;
        vk_profile_get(vkf_device(e->vk), s);
        if (json) vk_profile_print_json(s, f, vkf_weight_bytes(e->vk), e->prof_tokens);
        else vk_profile_print(s, f, vkf_weight_bytes(e->vk), e->prof_tokens);
        free(s);
        return;
    }
#endif
    const char *note = "profiling is for --backend vulkan; this run used the CPU engine";
    if (json) fprintf(f, "{\"note\":\"%s\"}", note);
    else fprintf(f, "profile: %s (%s)\n", note, e->desc);
}
