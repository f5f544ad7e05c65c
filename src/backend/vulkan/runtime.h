/* runtime.h — running work on one Vulkan device: the logical device,
 * buffers, and steps (one command buffer of dispatches, submitted and
 * waited for). Ops that record into a step are declared in ops.h. */
#ifndef SLUICE_VK_RUNTIME_H
#define SLUICE_VK_RUNTIME_H
#include "backend/vulkan/device.h"

typedef struct vk_device vk_device;
typedef struct vk_buffer vk_buffer;

/* Opens device `index` of inst (which must outlive it): one compute queue,
 * the features its kernel caps use, a command pool. inst is used, not
 * owned. Fails (SLUICE_ERR_UNSUPPORTED) on a device without Vulkan 1.2 or
 * a compute queue. Destroy with vk_device_destroy. */
sluice_status vk_device_create(vk_instance *inst, uint32_t index, vk_device **out, sluice_error *err);
void vk_device_destroy(vk_device *d); /* NULL ok; waits for the device to go idle */
const vk_device_info *vk_device_info_of(const vk_device *d);
/* Kernel paths of d, fixed when it was created (environment switches
 * included). */
vk_kernel_caps vk_device_caps(const vk_device *d);
/* Bytes of pipeline cache data d was seeded with from the disk cache (0:
 * cache off, no file yet, or the file was invalid and ignored). */
uint64_t vk_device_pipeline_cache_loaded(const vk_device *d);

/* False when SLUICE_VK_PIPELINE_CACHE=0 turns the disk pipeline cache off. */
bool vk_pipeline_cache_enabled(void);
/* Path of the pipeline cache file for a device into buf:
 * $XDG_CACHE_HOME/sluice/ (else $HOME/.cache/sluice/) +
 * vk-<vendor>-<device>-<driverVersion>-<pipelineCacheUUID>.bin (hex).
 * False when the cache is off or neither variable is set. */
bool vk_pipeline_cache_path(const vk_device_info *info, char *buf, size_t cap);

typedef enum vk_mem_kind {
    VK_MEM_DEVICE, /* device-local: weights and activations */
    VK_MEM_HOST,   /* host-visible and coherent: staging and read-back */
} vk_mem_kind;

/* A buffer of `size` bytes (> 0, at most maxStorageBufferRange and
 * maxMemoryAllocationSize: larger tensors must be split by the caller) in
 * its own allocation. Fails with SLUICE_ERR_RANGE above the limits and
 * SLUICE_ERR_NOMEM when the device has no room. */
sluice_status vk_buffer_create(vk_device *d, uint64_t size, vk_mem_kind kind, vk_buffer **out, sluice_error *err);
void vk_buffer_destroy(vk_device *d, vk_buffer *b); /* NULL ok; b must not be in use */
uint64_t vk_buffer_size(const vk_buffer *b);

/* Copies n bytes between host memory and b at byte offset off: directly
 * where b's memory is host-visible, else through a staging buffer and a
 * one-off submission (not while a step is being recorded). Blocking. */
sluice_status vk_buffer_write(vk_device *d, vk_buffer *b, uint64_t off, const void *src, uint64_t n,
                              sluice_error *err);
sluice_status vk_buffer_read(vk_device *d, vk_buffer *b, uint64_t off, void *dst, uint64_t n, sluice_error *err);

/* A step: vk_step_begin, ops (ops.h) with vk_step_barrier between
 * dependent ones, vk_step_submit (blocks until the device is done and its
 * writes are visible to the host). One step at a time per device. With
 * profiling on (profile.h) a step also writes timestamps around each
 * dispatch and vk_step_submit reads them back after the fence. */
sluice_status vk_step_begin(vk_device *d, sluice_error *err);
/* Makes every shader write recorded so far visible to later dispatches. */
void vk_step_barrier(vk_device *d);
sluice_status vk_step_submit(vk_device *d, sluice_error *err);
#endif
