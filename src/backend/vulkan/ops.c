/* ops.c — recording of each op: pipeline, push constants, dispatch
 * geometry (split where it exceeds the device's workgroup-count limit). */
#include "backend/vulkan/ops.h"
#include "backend/vulkan/vk_internal.h"

#define RMS_NORM_BLOCK 128 /* power of two, <= the guaranteed 128 invocations */

sluice_status vk_op_rms_norm(vk_device *d, vk_buffer *x, vk_buffer *w, vk_buffer *dst, uint32_t n_cols,
                             uint32_t n_rows, float eps, sluice_error *err) {
    uint64_t bytes = (uint64_t)n_cols * n_rows * sizeof(float);
    if (!n_cols || !n_rows) return SLUICE_OK;
    if (bytes > x->size || bytes > dst->size || (uint64_t)n_cols * sizeof(float) > w->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "rms_norm: (%u x %u) F32 does not fit its buffers", n_rows, n_cols);
    const uint32_t spec[] = {RMS_NORM_BLOCK};
    vk_shader_id id = d->caps.subgroups ? VK_SHADER_RMS_NORM_F32_SUBGROUP : VK_SHADER_RMS_NORM_F32;
    vk_pipeline *p = vk_pipeline_get(d, id, 3, sizeof(vk_push_rms_norm), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {x, w, dst};
    uint32_t max_groups = d->info.max_wg_count[0];
    for (uint32_t row0 = 0; row0 < n_rows; row0 += max_groups) {
        uint32_t rows = n_rows - row0 < max_groups ? n_rows - row0 : max_groups;
        vk_push_rms_norm pc = {.n_cols = n_cols, .n_rows = n_rows, .eps = eps, .row0 = row0};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, rows, 1, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}
