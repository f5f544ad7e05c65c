/* buffer.c — device buffers: one allocation each, memory type chosen by
 * kind, host access mapped directly where the memory is host-visible and
 * through a staging buffer where it is not. */
#include <string.h>
#include "backend/vulkan/vk_internal.h"

/* Index of a memory type allowed by `bits` with all of `want`, on the
 * largest heap among the candidates; -1 if none. */
static int find_type(const VkPhysicalDeviceMemoryProperties *m, uint32_t bits, VkMemoryPropertyFlags want) {
    int best = -1;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        if (!(bits & (1u << i)) || (m->memoryTypes[i].propertyFlags & want) != want) continue;
        if (best < 0 || m->memoryHeaps[m->memoryTypes[i].heapIndex].size >
                            m->memoryHeaps[m->memoryTypes[best].heapIndex].size)
            best = (int)i;
    }
    return best;
}

/* Device-local memory that is also host-visible counts as "mapped
 * directly" only on its largest device-local heap (unified memory, or a
 * resizable BAR); a small BAR window is left alone. */
static int pick_type(const vk_device *d, uint32_t bits, vk_mem_kind kind) {
    const VkPhysicalDeviceMemoryProperties *m = &d->mem;
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (kind == VK_MEM_HOST) {
        int t = find_type(m, bits, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        return t >= 0 ? t : find_type(m, bits, host);
    }
    int local = find_type(m, bits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (local < 0) return find_type(m, bits, 0);
    if (!d->force_staging) {
        int both = find_type(m, bits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | host);
        if (both >= 0 && m->memoryTypes[both].heapIndex == m->memoryTypes[local].heapIndex) return both;
    }
    return local;
}

sluice_status vk_buffer_create(vk_device *d, uint64_t size, vk_mem_kind kind, vk_buffer **out, sluice_error *err) {
    *out = NULL;
    if (!size) return sluice_fail(err, SLUICE_ERR_ARG, "vk_buffer_create: size 0");
    if (size > d->info.max_storage_buffer_range || (d->info.max_alloc && size > d->info.max_alloc))
        return sluice_fail(err, SLUICE_ERR_RANGE,
                           "buffer of %llu bytes exceeds %s limits (maxStorageBufferRange %llu, "
                           "maxMemoryAllocationSize %llu)",
                           (unsigned long long)size, d->info.name, (unsigned long long)d->info.max_storage_buffer_range,
                           (unsigned long long)d->info.max_alloc);
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    b->size = size;
    sluice_status st = SLUICE_OK;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
                                       VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = d->vk.vkCreateBuffer(d->dev, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        b->buf = VK_NULL_HANDLE;
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "vkCreateBuffer (%llu bytes): %s", (unsigned long long)size,
                         vk_result_str(r));
        goto fail;
    }
    VkMemoryRequirements req;
    d->vk.vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    int type = pick_type(d, req.memoryTypeBits, kind);
    if (type < 0) {
        st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "%s has no suitable memory type for a %s buffer", d->info.name,
                         kind == VK_MEM_HOST ? "host" : "device");
        goto fail;
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)type};
    if ((r = d->vk.vkAllocateMemory(d->dev, &mai, NULL, &b->mem)) != VK_SUCCESS) {
        b->mem = VK_NULL_HANDLE;
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "vkAllocateMemory (%llu bytes on %s): %s",
                         (unsigned long long)req.size, d->info.name, vk_result_str(r));
        goto fail;
    }
    if ((r = d->vk.vkBindBufferMemory(d->dev, b->buf, b->mem, 0)) != VK_SUCCESS) {
        st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkBindBufferMemory: %s", vk_result_str(r));
        goto fail;
    }
    VkMemoryPropertyFlags f = d->mem.memoryTypes[type].propertyFlags;
    bool mappable = (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (kind == VK_MEM_HOST || !d->force_staging);
    if (mappable) {
        if ((r = d->vk.vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped)) != VK_SUCCESS) {
            b->mapped = NULL;
            st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkMapMemory: %s", vk_result_str(r));
            goto fail;
        }
        b->coherent = f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    }
    *out = b;
    return SLUICE_OK;
fail:
    vk_buffer_destroy(d, b);
    return st;
}

void vk_buffer_destroy(vk_device *d, vk_buffer *b) {
    if (!b) return;
    if (b->u32_view) d->vk.vkDestroyBufferView(d->dev, b->u32_view, NULL);
    if (b->mapped) d->vk.vkUnmapMemory(d->dev, b->mem);
    if (b->buf) d->vk.vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem) d->vk.vkFreeMemory(d->dev, b->mem, NULL);
    free(b);
}

uint64_t vk_buffer_size(const vk_buffer *b) { return b->size; }

sluice_status vk_buffer_u32_view(vk_device *d, vk_buffer *b, VkBufferView *out, sluice_error *err) {
    if (!b->u32_view) {
        uint64_t words = b->size / 4;
        if (words > d->info.max_texel_elements)
            return sluice_fail(err, SLUICE_ERR_RANGE, "buffer of %llu bytes exceeds %s's %u texels per texel buffer",
                               (unsigned long long)b->size, d->info.name, d->info.max_texel_elements);
        VkBufferViewCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                     .buffer = b->buf,
                                     .format = VK_FORMAT_R32_UINT,
                                     .offset = 0,
                                     .range = words * 4};
        VkResult r = d->vk.vkCreateBufferView(d->dev, &ci, NULL, &b->u32_view);
        if (r != VK_SUCCESS) {
            b->u32_view = VK_NULL_HANDLE;
            return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkCreateBufferView: %s", vk_result_str(r));
        }
    }
    *out = b->u32_view;
    return SLUICE_OK;
}

static sluice_status check_range(const vk_buffer *b, uint64_t off, uint64_t n, sluice_error *err) {
    if (off > b->size || n > b->size - off)
        return sluice_fail(err, SLUICE_ERR_RANGE, "buffer access [%llu, +%llu) outside its %llu bytes",
                           (unsigned long long)off, (unsigned long long)n, (unsigned long long)b->size);
    return SLUICE_OK;
}

/* Mapped non-coherent memory: flush (host wrote) or invalidate (host will
 * read) the whole allocation, which is always a legal range. */
static sluice_status sync_mapped(vk_device *d, vk_buffer *b, bool flush, sluice_error *err) {
    if (b->coherent) return SLUICE_OK;
    VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE};
    VkResult r = flush ? d->vk.vkFlushMappedMemoryRanges(d->dev, 1, &mr) : d->vk.vkInvalidateMappedMemoryRanges(d->dev, 1, &mr);
    return r == VK_SUCCESS ? SLUICE_OK : sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "mapped memory sync: %s", vk_result_str(r));
}

/* Copies n bytes from src+src_off to dst+dst_off in a one-off step. */
static sluice_status copy_now(vk_device *d, vk_buffer *src, uint64_t src_off, vk_buffer *dst, uint64_t dst_off,
                              uint64_t n, sluice_error *err) {
    sluice_status st = vk_step_begin(d, err);
    if (st != SLUICE_OK) return st;
    VkBufferCopy c = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    d->vk.vkCmdCopyBuffer(d->cmd, src->buf, dst->buf, 1, &c);
    return vk_step_submit(d, err);
}

sluice_status vk_buffer_write(vk_device *d, vk_buffer *b, uint64_t off, const void *src, uint64_t n,
                              sluice_error *err) {
    sluice_status st = check_range(b, off, n, err);
    if (st != SLUICE_OK || !n) return st;
    if (b->mapped) {
        memcpy((char *)b->mapped + off, src, n);
        return sync_mapped(d, b, true, err);
    }
    if (d->recording) return sluice_fail(err, SLUICE_ERR_ARG, "vk_buffer_write through staging inside a step");
    vk_buffer *stg = NULL;
    if ((st = vk_buffer_create(d, n, VK_MEM_HOST, &stg, err)) != SLUICE_OK) return st;
    memcpy(stg->mapped, src, n);
    st = sync_mapped(d, stg, true, err);
    if (st == SLUICE_OK) st = copy_now(d, stg, 0, b, off, n, err);
    vk_buffer_destroy(d, stg);
    return st;
}

sluice_status vk_buffer_read(vk_device *d, vk_buffer *b, uint64_t off, void *dst, uint64_t n, sluice_error *err) {
    sluice_status st = check_range(b, off, n, err);
    if (st != SLUICE_OK || !n) return st;
    if (b->mapped) {
        if ((st = sync_mapped(d, b, false, err)) != SLUICE_OK) return st;
        memcpy(dst, (const char *)b->mapped + off, n);
        return SLUICE_OK;
    }
    if (d->recording) return sluice_fail(err, SLUICE_ERR_ARG, "vk_buffer_read through staging inside a step");
    vk_buffer *stg = NULL;
    if ((st = vk_buffer_create(d, n, VK_MEM_HOST, &stg, err)) != SLUICE_OK) return st;
    st = copy_now(d, b, off, stg, 0, n, err);
    if (st == SLUICE_OK) st = sync_mapped(d, stg, false, err);
    if (st == SLUICE_OK) memcpy(dst, stg->mapped, n);
    vk_buffer_destroy(d, stg);
    return st;
}
