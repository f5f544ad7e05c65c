/* runtime.c — the logical device (queue, enabled features, per-device
 * function table, pipeline cache) and steps: one command buffer of dispatches with its
 * descriptor pool, submitted and waited for with a fence (with the
 * profiler's hooks, profile.c, around them). */
#include <stdlib.h>
#include <string.h>
#include "backend/vulkan/vk_internal.h"

/* Descriptor sets (and storage-buffer descriptors) one step may use. */
#define STEP_MAX_SETS 4096
#define STEP_MAX_BUFFERS (STEP_MAX_SETS * 8)

static int pick_queue_family(VkPhysicalDevice pd) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q) return -1;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int best = -1;
    /* a compute family without graphics first (dedicated compute), else any */
    for (uint32_t i = 0; i < n && best < 0; i++)
        if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) best = (int)i;
    for (uint32_t i = 0; i < n && best < 0; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) best = (int)i;
    free(q);
    return best;
}

static sluice_status vk_fail(sluice_error *err, const char *what, VkResult r) {
    sluice_status st = r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? SLUICE_ERR_NOMEM
                                                                                               : SLUICE_ERR_UNSUPPORTED;
    return sluice_fail(err, st, "%s failed: %s", what, vk_result_str(r));
}

sluice_status vk_device_create(vk_instance *inst, uint32_t index, vk_device **out, sluice_error *err) {
    *out = NULL;
    const vk_device_info *info = vk_instance_device(inst, index);
    if (!info) return sluice_fail(err, SLUICE_ERR_ARG, "no Vulkan device %u", index);
    if (!info->usable)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "%s: Vulkan %u.%u, sluice needs 1.2", info->name,
                           VK_API_VERSION_MAJOR(info->api_version), VK_API_VERSION_MINOR(info->api_version));
    VkPhysicalDevice pd = vk_instance_physical(inst, index);
    int qf = pick_queue_family(pd);
    if (qf < 0) return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "%s has no compute queue", info->name);

    vk_device *d = calloc(1, sizeof *d);
    if (!d) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    sluice_status st = SLUICE_OK;
    VkResult r;
    d->inst = inst;
    d->info = *info;
    d->caps = vk_kernel_caps_for(info);
    d->phys = pd;
    d->queue_family = (uint32_t)qf;
    const char *fs = getenv("SLUICE_VK_FORCE_STAGING");
    d->force_staging = fs && *fs && strcmp(fs, "0") != 0;
    vkGetPhysicalDeviceMemoryProperties(pd, &d->mem);

    /* Enable what the kernel caps may use; nothing the device lacks. */
    bool v13 = VK_API_VERSION_MINOR(info->api_used) >= 3 || VK_API_VERSION_MAJOR(info->api_used) > 1;
    bool dot_ext = !v13 && d->caps.int_dot;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = d->caps.int_dot};
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                            .shaderIntegerDotProduct = d->caps.int_dot};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = v13 ? (void *)&f13 : dot_ext ? (void *)&dotf : NULL,
                                            .shaderFloat16 = d->caps.fp16,
                                            .shaderInt8 = d->caps.int_dot,
                                            .storageBuffer8BitAccess = d->caps.int_dot};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12,
                                            .storageBuffer16BitAccess = d->caps.fp16};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = d->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    const char *exts[] = {VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &f2,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = dot_ext ? 1 : 0,
                              .ppEnabledExtensionNames = dot_ext ? exts : NULL};
    if ((r = vkCreateDevice(pd, &dci, NULL, &d->dev)) != VK_SUCCESS) {
        d->dev = VK_NULL_HANDLE;
        st = vk_fail(err, "vkCreateDevice", r);
        goto fail;
    }
    volkLoadDeviceTable(&d->vk, d->dev);
    d->vk.vkGetDeviceQueue(d->dev, d->queue_family, 0, &d->queue);
    vk_pcache_open(d);

    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = d->queue_family};
    if ((r = d->vk.vkCreateCommandPool(d->dev, &cpi, NULL, &d->cmd_pool)) != VK_SUCCESS) {
        st = vk_fail(err, "vkCreateCommandPool", r);
        goto fail;
    }
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = d->cmd_pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    if ((r = d->vk.vkAllocateCommandBuffers(d->dev, &cai, &d->cmd)) != VK_SUCCESS) {
        st = vk_fail(err, "vkAllocateCommandBuffers", r);
        goto fail;
    }
    VkDescriptorPoolSize ps[] = {{.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = STEP_MAX_BUFFERS},
                                 {.type = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, .descriptorCount = STEP_MAX_SETS},
                                 {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = STEP_MAX_SETS * 3}};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = STEP_MAX_SETS,
                                      .poolSizeCount = 3,
                                      .pPoolSizes = ps};
    if ((r = d->vk.vkCreateDescriptorPool(d->dev, &dpi, NULL, &d->desc_pool)) != VK_SUCCESS) {
        st = vk_fail(err, "vkCreateDescriptorPool", r);
        goto fail;
    }
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = d->vk.vkCreateFence(d->dev, &fci, NULL, &d->fence)) != VK_SUCCESS) {
        st = vk_fail(err, "vkCreateFence", r);
        goto fail;
    }
    *out = d;
    return SLUICE_OK;
fail:
    vk_device_destroy(d);
    return st;
}

void vk_device_destroy(vk_device *d) {
    if (!d) return;
    if (d->dev) {
        d->vk.vkDeviceWaitIdle(d->dev);
        vk_pipelines_destroy(d);
        vk_buffer_destroy(d, d->mm_scratch);
        vk_pcache_close(d);
        vk_profile_destroy(d);
        if (d->fence) d->vk.vkDestroyFence(d->dev, d->fence, NULL);
        if (d->desc_pool) d->vk.vkDestroyDescriptorPool(d->dev, d->desc_pool, NULL);
        if (d->cmd_pool) d->vk.vkDestroyCommandPool(d->dev, d->cmd_pool, NULL);
        d->vk.vkDestroyDevice(d->dev, NULL);
    }
    free(d);
}

const vk_device_info *vk_device_info_of(const vk_device *d) { return &d->info; }
vk_kernel_caps vk_device_caps(const vk_device *d) { return d->caps; }

/* ---- steps ---- */

sluice_status vk_step_begin(vk_device *d, sluice_error *err) {
    if (d->recording) return sluice_fail(err, SLUICE_ERR_ARG, "vk_step_begin: a step is already being recorded");
    VkResult r = d->vk.vkResetDescriptorPool(d->dev, d->desc_pool, 0);
    if (r != VK_SUCCESS) return vk_fail(err, "vkResetDescriptorPool", r);
    if ((r = d->vk.vkResetCommandBuffer(d->cmd, 0)) != VK_SUCCESS) return vk_fail(err, "vkResetCommandBuffer", r);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if ((r = d->vk.vkBeginCommandBuffer(d->cmd, &bi)) != VK_SUCCESS) return vk_fail(err, "vkBeginCommandBuffer", r);
    d->recording = true;
    d->dispatches = 0;
    vk_profile_step_begin(d);
    return SLUICE_OK;
}

static void barrier(vk_device *d, VkPipelineStageFlags src_stage, VkAccessFlags src, VkPipelineStageFlags dst_stage,
                    VkAccessFlags dst) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = src, .dstAccessMask = dst};
    d->vk.vkCmdPipelineBarrier(d->cmd, src_stage, dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

void vk_step_barrier(vk_device *d) {
    VK_ASSERT(d->recording);
    barrier(d, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                VK_ACCESS_TRANSFER_WRITE_BIT);
}

sluice_status vk_step_submit(vk_device *d, sluice_error *err) {
    if (!d->recording) return sluice_fail(err, SLUICE_ERR_ARG, "vk_step_submit: no step is being recorded");
    d->recording = false;
    vk_profile_step_submitting(d);
    /* the host reads results after the fence: make device writes visible */
    barrier(d, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
            VK_ACCESS_HOST_READ_BIT);
    VkResult r = d->vk.vkEndCommandBuffer(d->cmd);
    if (r != VK_SUCCESS) {
        vk_profile_step_done(d, false, NULL);
        return vk_fail(err, "vkEndCommandBuffer", r);
    }
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &d->cmd};
    if ((r = d->vk.vkQueueSubmit(d->queue, 1, &si, d->fence)) != VK_SUCCESS) {
        vk_profile_step_done(d, false, NULL);
        return vk_fail(err, "vkQueueSubmit", r);
    }
    r = d->vk.vkWaitForFences(d->dev, 1, &d->fence, VK_TRUE, UINT64_MAX);
    VkResult r2 = d->vk.vkResetFences(d->dev, 1, &d->fence);
    sluice_status st = vk_profile_step_done(d, r == VK_SUCCESS && r2 == VK_SUCCESS, err);
    if (r != VK_SUCCESS) return vk_fail(err, "vkWaitForFences", r);
    if (r2 != VK_SUCCESS) return vk_fail(err, "vkResetFences", r2);
    return st;
}

sluice_status vk_record_dispatch(vk_device *d, vk_pipeline *p, vk_buffer *const *bufs, const void *push,
                                 uint32_t gx, uint32_t gy, uint32_t gz, sluice_error *err) {
    return vk_record_dispatch_ranges(d, p, bufs, NULL, NULL, push, gx, gy, gz, err);
}

sluice_status vk_record_dispatch_ranges(vk_device *d, vk_pipeline *p, vk_buffer *const *bufs, const uint64_t *offsets,
                                        const uint64_t *ranges, const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                                        sluice_error *err) {
    VK_ASSERT(d->recording && p->pipe && p->n_bindings <= 8);
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = d->desc_pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &p->dsl};
    VkDescriptorSet set;
    VkResult r = d->vk.vkAllocateDescriptorSets(d->dev, &ai, &set);
    if (r != VK_SUCCESS) return vk_fail(err, "vkAllocateDescriptorSets (too many dispatches in one step?)", r);
    VkDescriptorBufferInfo bi[8];
    VkWriteDescriptorSet w[8];
    VkBufferView views[8];
    for (uint32_t i = 0; i < p->n_bindings; i++) {
        bool ubo = (p->ubo_mask >> i) & 1u;
        uint64_t off = offsets ? offsets[i] : 0, range = ranges && ranges[i] ? ranges[i] : VK_WHOLE_SIZE;
        if ((p->texel_mask >> i) & 1u) {
            VK_ASSERT(off == 0);
            sluice_status vs = vk_buffer_u32_view(d, bufs[i], &views[i], err);
            if (vs != SLUICE_OK) return vs;
            w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstSet = set,
                                          .dstBinding = i,
                                          .descriptorCount = 1,
                                          .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                          .pTexelBufferView = &views[i]};
            continue;
        }
        VK_ASSERT(!ubo || (range != VK_WHOLE_SIZE && range <= d->info.max_uniform_buffer_range &&
                           off % d->info.min_ubo_offset_align == 0));
        bi[i] = (VkDescriptorBufferInfo){.buffer = bufs[i]->buf, .offset = off, .range = range};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = i,
                                      .descriptorCount = 1,
                                      .descriptorType = ubo ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                            : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    d->vk.vkUpdateDescriptorSets(d->dev, p->n_bindings, w, 0, NULL);
    d->vk.vkCmdBindPipeline(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    d->vk.vkCmdBindDescriptorSets(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_size) d->vk.vkCmdPushConstants(d->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, push);
    sluice_status st = vk_profile_dispatch_begin(d, p->id, err);
    if (st != SLUICE_OK) return st;
    d->vk.vkCmdDispatch(d->cmd, gx, gy, gz);
    vk_profile_dispatch_end(d);
    d->dispatches++;
    return SLUICE_OK;
}
