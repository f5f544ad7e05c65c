/* pipeline.c — compute pipelines from the embedded SPIR-V registry, one per
 * shader variant, created on first use: descriptor set layout of storage
 * buffers, push-constant range, specialization constants; through the
 * device's pipeline cache (pipeline_cache.c), timing the creation. */
#include <string.h>
#include <time.h>
#include "backend/vulkan/vk_internal.h"

#define MAX_SPEC 8

/* Destroys p's Vulkan objects and clears it, keeping its place (next) in
 * the list. */
static void destroy_one(vk_device *d, vk_pipeline *p) {
    if (p->pipe) d->vk.vkDestroyPipeline(d->dev, p->pipe, NULL);
    if (p->layout) d->vk.vkDestroyPipelineLayout(d->dev, p->layout, NULL);
    if (p->dsl) d->vk.vkDestroyDescriptorSetLayout(d->dev, p->dsl, NULL);
    vk_pipeline *next = p->next;
    memset(p, 0, sizeof *p);
    p->next = next;
}

vk_pipeline *vk_pipeline_get(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t push_size,
                             const uint32_t *spec, uint32_t n_spec, sluice_error *err) {
    return vk_pipeline_get_ubo(d, id, n_bindings, 0, push_size, spec, n_spec, err);
}

vk_pipeline *vk_pipeline_get_ubo(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t ubo_mask,
                                 uint32_t push_size, const uint32_t *spec, uint32_t n_spec, sluice_error *err) {
    return vk_pipeline_get_desc(d, id, n_bindings, ubo_mask, 0, push_size, spec, n_spec, err);
}

vk_pipeline *vk_pipeline_get_desc(vk_device *d, vk_shader_id id, uint32_t n_bindings, uint32_t ubo_mask,
                                  uint32_t texel_mask, uint32_t push_size, const uint32_t *spec, uint32_t n_spec,
                                  sluice_error *err) {
    const vk_shader_spv *sh = vk_shader_get(id);
    VK_ASSERT(sh && n_bindings >= 1 && n_bindings <= 8 && n_spec <= MAX_SPEC && push_size % 4 == 0 &&
              !(ubo_mask & texel_mask));
    vk_pipeline *p = &d->pipelines[id];
    for (;;) {
        if (!p->pipe) break; /* an unused slot: create here */
        if (p->n_spec == n_spec && !memcmp(p->spec, spec, n_spec * sizeof *spec)) {
            VK_ASSERT(p->n_bindings == n_bindings && p->ubo_mask == ubo_mask && p->texel_mask == texel_mask &&
                      p->push_size == push_size);
            return p;
        }
        if (!p->next && !(p->next = calloc(1, sizeof *p->next))) {
            sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        p = p->next;
    }
    if (n_spec) memcpy(p->spec, spec, n_spec * sizeof *spec);
    p->n_spec = n_spec;
    p->id = id;
    p->n_bindings = n_bindings;
    p->ubo_mask = ubo_mask;
    p->texel_mask = texel_mask;
    p->push_size = push_size;
    VkResult r;
    const char *what = "";
    VkShaderModule mod = VK_NULL_HANDLE;

    VkDescriptorSetLayoutBinding b[8];
    for (uint32_t i = 0; i < n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = (ubo_mask >> i) & 1u ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                                : (texel_mask >> i) & 1u
                                                                    ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                                    : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = n_bindings,
                                           .pBindings = b};
    if ((r = d->vk.vkCreateDescriptorSetLayout(d->dev, &dli, NULL, &p->dsl)) != VK_SUCCESS) {
        what = "vkCreateDescriptorSetLayout";
        goto fail;
    }
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = push_size};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl,
                                      .pushConstantRangeCount = push_size ? 1 : 0,
                                      .pPushConstantRanges = push_size ? &pcr : NULL};
    if ((r = d->vk.vkCreatePipelineLayout(d->dev, &pli, NULL, &p->layout)) != VK_SUCCESS) {
        what = "vkCreatePipelineLayout";
        goto fail;
    }
    VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = *sh->n_words * sizeof(uint32_t),
                                    .pCode = sh->words};
    if ((r = d->vk.vkCreateShaderModule(d->dev, &smi, NULL, &mod)) != VK_SUCCESS) {
        what = "vkCreateShaderModule";
        goto fail;
    }
    VkSpecializationMapEntry me[MAX_SPEC];
    for (uint32_t i = 0; i < n_spec; i++)
        me[i] = (VkSpecializationMapEntry){.constantID = i, .offset = i * 4, .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = n_spec, .pMapEntries = me, .dataSize = n_spec * 4, .pData = spec};
    VkComputePipelineCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                                       .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                                                 .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                                                 .module = mod,
                                                 .pName = "main",
                                                 .pSpecializationInfo = n_spec ? &si : NULL},
                                       .layout = p->layout};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = d->vk.vkCreateComputePipelines(d->dev, d->pcache, 1, &cpi, NULL, &p->pipe);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    d->pipelines_created++;
    d->pipeline_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
    d->vk.vkDestroyShaderModule(d->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        p->pipe = VK_NULL_HANDLE;
        what = "vkCreateComputePipelines";
        goto fail;
    }
    return p;
fail:
    sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "pipeline %s: %s failed: %s", sh->name, what, vk_result_str(r));
    destroy_one(d, p);
    return NULL;
}

void vk_pipelines_destroy(vk_device *d) {
    for (int i = 0; i < VK_SHADER_COUNT; i++) {
        vk_pipeline *p = &d->pipelines[i], *next = p->next;
        destroy_one(d, p);
        p->next = NULL;
        while (next) {
            vk_pipeline *q = next;
            next = q->next;
            destroy_one(d, q);
            free(q);
        }
    }
}
