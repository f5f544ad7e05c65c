/* vk_internal.h — the Vulkan backend's shared internals: the logical device
 * with its per-device function table (volk), its queue, command buffer and
 * pipelines. Only files of src/backend/vulkan include this. */
#ifndef SLUICE_VK_INTERNAL_H
#define SLUICE_VK_INTERNAL_H
#include <stdio.h>
#include <stdlib.h>
#include <volk.h>
#include "backend/vulkan/runtime.h"
#include "backend/vulkan/shaders_registry.h"

/* Broken internal invariant (a caller bug, not bad input): abort. */
#define VK_ASSERT(c)                                                                           \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "sluice: vulkan invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;              /* bytes */
    void *mapped;               /* host pointer while mapped (host-visible memory), else NULL */
    bool coherent;              /* mapped memory needs no flush/invalidate */
    VkBufferView u32_view;      /* R32_UINT uniform texel view of the whole buffer, made on first use */
};

/* One compute pipeline of a shader variant and specialization, created on
 * first use. d->pipelines[id] heads the list of id's specializations. */
typedef struct vk_pipeline {
    struct vk_pipeline *next;   /* the same shader with other specialization constants (malloc'ed) */
    uint32_t spec[8], n_spec;   /* its specialization constants */
    vk_shader_id id;            /* its shader */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;            /* VK_NULL_HANDLE: not created yet */
    uint32_t n_bindings;        /* buffers at bindings 0..n-1 */
    uint32_t ubo_mask;          /* bit i: binding i is a uniform buffer, else storage */
    uint32_t texel_mask;        /* bit i: binding i is a uniform texel buffer (R32_UINT view, offset 0) */
    uint32_t push_size;         /* bytes of push constants */
} vk_pipeline;

typedef struct vk_profile vk_profile; /* profile.c */

struct vk_device {
    vk_buffer *mm_scratch;      /* mul_mat's compacted activations (ops.c), NULL until needed */
    vk_instance *inst;          /* not owned */
    vk_device_info info;        /* copy of the physical device's */
    vk_kernel_caps caps;
    VkPhysicalDevice phys;
    VkPhysicalDeviceMemoryProperties mem;
    VkDevice dev;
    struct VolkDeviceTable vk;  /* device functions: call through dev->vk */
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;        /* the step being recorded */
    VkDescriptorPool desc_pool; /* sets of the step being recorded */
    VkFence fence;
    bool recording;
    bool force_staging;         /* SLUICE_VK_FORCE_STAGING=1: never map device-local memory */
    uint32_t dispatches;        /* dispatches recorded in this step */
    vk_pipeline pipelines[VK_SHADER_COUNT];
    VkPipelineCache pcache;     /* VK_NULL_HANDLE: disk cache off (pipeline_cache.c) */
    char pcache_path[4096];     /* its file; "" when off */
    uint64_t pcache_loaded;     /* bytes of cache data the file gave (0: none, or it was bad) */
    uint32_t pipelines_created; /* vkCreateComputePipelines calls so far */
    uint64_t pipeline_ns;       /* time spent in them, ns */
    vk_profile *prof;           /* NULL until profiling is first enabled (profile.h) */
};

/* The R32_UINT uniform texel buffer view of all of b (its size / 4 words),
 * created on first use and destroyed with b (buffer.c). Fails when b has
 * more words than maxTexelBufferElements. */
sluice_status vk_buffer_u32_view(vk_device *d, vk_buffer *b, VkBufferView *out, sluice_error *err);

/* Physical device handle i of inst (device.c). */
VkPhysicalDevice vk_instance_physical(const vk_instance *inst, uint32_t i);

/* Readable name of a VkResult ("VK_ERROR_OUT_OF_DEVICE_MEMORY"). */
const char *vk_result_str(VkResult r);

/* Pipeline of shader `id` with n_bindings storage buffers, push_size bytes
 * of push constants and n_spec uint32 specialization constants (ids
 * 0..n_spec-1); created on the first call, reused after (the arguments
 * must then be the same). NULL with err set on failure. */
vk_pipeline *vk_pipeline_get(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t push_size,
                             const uint32_t *spec, uint32_t n_spec, sluice_error *err);
/* vk_pipeline_get where the bindings in ubo_mask (bit i: binding i) are
 * uniform buffers (bound with vk_record_dispatch_ranges). */
vk_pipeline *vk_pipeline_get_ubo(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t ubo_mask,
                                 uint32_t push_size, const uint32_t *spec, uint32_t n_spec, sluice_error *err);
/* vk_pipeline_get_ubo where, further, the bindings in texel_mask are
 * uniform texel buffers: the buffer's whole R32_UINT view
 * (vk_buffer_u32_view; vk_record_dispatch_ranges takes offset 0 there). */
vk_pipeline *vk_pipeline_get_desc(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t ubo_mask,
                                  uint32_t texel_mask, uint32_t push_size, const uint32_t *spec, uint32_t n_spec,
                                  sluice_error *err);
void vk_pipelines_destroy(vk_device *d);

/* Creates d->pcache, seeded from the cache file when it is valid for d
 * (pipeline_cache.c). Never fails: without a usable file the cache starts
 * empty, without a cache folder (or with SLUICE_VK_PIPELINE_CACHE=0) it is
 * VK_NULL_HANDLE. Needs d->dev and d->info. */
void vk_pcache_open(vk_device *d);
/* Writes d->pcache back to its file when this process created pipelines
 * it did not hold (atomically: temp file + rename), then destroys it.
 * Failures are logged, never returned. Call before vkDestroyDevice. */
void vk_pcache_close(vk_device *d);

/* Records a dispatch of p into the current step: binds bufs[0..n_bindings)
 * (whole buffers) through a descriptor set of the step's pool, pushes
 * `push`, dispatches groups (gx, gy, gz). */
sluice_status vk_record_dispatch(vk_device *d, vk_pipeline *p, vk_buffer *const *bufs, const void *push,
                                 uint32_t gx, uint32_t gy, uint32_t gz, sluice_error *err);
/* vk_record_dispatch binding byte ranges: binding i covers
 * [offsets[i], offsets[i] + ranges[i]) of bufs[i] (offsets NULL: 0;
 * ranges NULL or 0: to the end). A uniform-buffer binding needs a range
 * <= maxUniformBufferRange and an offset that is a multiple of
 * minUniformBufferOffsetAlignment. */
sluice_status vk_record_dispatch_ranges(vk_device *d, vk_pipeline *p, vk_buffer *const *bufs, const uint64_t *offsets,
                                        const uint64_t *ranges, const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                                        sluice_error *err);

/* Profiler hooks (profile.c), no-ops while profiling is off. runtime.c
 * calls them: step_begin after vkBeginCommandBuffer; dispatch_begin (may
 * fail: out of memory, query pool creation) and dispatch_end around each
 * vkCmdDispatch, before d->dispatches counts it; step_submitting on entry
 * to vk_step_submit; step_done after the fence (ok: the step ran), which
 * reads the timestamps and adds the step to the sums. */
void vk_profile_step_begin(vk_device *d);
sluice_status vk_profile_dispatch_begin(vk_device *d, vk_shader_id id, sluice_error *err);
void vk_profile_dispatch_end(vk_device *d);
void vk_profile_step_submitting(vk_device *d);
sluice_status vk_profile_step_done(vk_device *d, bool ok, sluice_error *err);
void vk_profile_destroy(vk_device *d); /* frees the query pools; before the VkDevice goes */
#endif
