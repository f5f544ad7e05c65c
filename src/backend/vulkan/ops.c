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

#define MUL_MAT_VEC_BLOCK 128 /* power of two, <= the guaranteed 128 invocations */
/* Rows per workgroup (<= MUL_MAT_VEC_BLOCK). 1, 2, 4, 8 and 16 measured
 * alike on lavapipe (4096 x 4096, run to run noise larger than the
 * differences); 2 keeps the partial last workgroup path in use. */
#define MUL_MAT_VEC_ROWS 2

/* Weight types of shaders/mul_mat_vec.comp: shader variants and block
 * geometry (as qtype_get reports; repeated here so the backend needs only
 * quant.h's enum). block == 0: not supported. */
typedef struct mmv_type {
    uint32_t block, block_bytes;
    vk_shader_id shared, subgroup;
} mmv_type;

#define MMV(t, b, bb, id) [QT_##t] = {b, bb, VK_SHADER_MUL_MAT_VEC_##id, VK_SHADER_MUL_MAT_VEC_##id##_SUBGROUP}
static const mmv_type mmv_types[QT_COUNT] = {
    MMV(F32, 1, 4, F32),       MMV(F16, 1, 2, F16),       MMV(Q4_0, 32, 18, Q4_0), MMV(Q4_1, 32, 20, Q4_1),
    MMV(Q5_0, 32, 22, Q5_0),   MMV(Q5_1, 32, 24, Q5_1),   MMV(Q8_0, 32, 34, Q8_0), MMV(Q4_K, 256, 144, Q4_K),
    MMV(Q5_K, 256, 176, Q5_K), MMV(Q6_K, 256, 210, Q6_K),
};
#undef MMV

bool vk_mul_mat_vec_supports(qtype t) { return (unsigned)t < QT_COUNT && mmv_types[t].block; }

sluice_status vk_op_mul_mat_vec(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, vk_buffer *x, uint64_t x_off,
                                vk_buffer *y, uint64_t y_off, uint32_t rows, uint32_t cols, sluice_error *err) {
    if (!vk_mul_mat_vec_supports(t))
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "mul_mat_vec: weight type %d not supported", (int)t);
    const mmv_type *mt = &mmv_types[t];
    if (!rows || !cols) return SLUICE_OK;
    if (cols % mt->block)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat_vec: %u columns, not a multiple of the block (%u)", cols,
                           mt->block);
    if (w_off % 4) return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat_vec: weight offset %llu not a multiple of 4",
                                      (unsigned long long)w_off);
    uint64_t row_bytes = (uint64_t)cols / mt->block * mt->block_bytes;
    uint64_t w_end = (w_off + row_bytes * rows + 3) / 4 * 4;
    if (w_end > w->size || w_end > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat_vec: (%u x %u) weights from byte %llu do not fit their buffer",
                           rows, cols, (unsigned long long)w_off);
    if ((x_off + cols) * sizeof(float) > x->size || (y_off + rows) * sizeof(float) > y->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat_vec: x (%u) or y (%u) does not fit its buffer", cols, rows);
    const uint32_t rpw = MUL_MAT_VEC_ROWS;
    const uint32_t spec[] = {MUL_MAT_VEC_BLOCK, rpw};
    vk_shader_id id = d->caps.subgroups ? mt->subgroup : mt->shared;
    vk_pipeline *p = vk_pipeline_get(d, id, 3, sizeof(vk_push_mul_mat_vec), spec, 2, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {w, x, y};
    uint64_t max_rows = (uint64_t)d->info.max_wg_count[0] * rpw; /* per dispatch */
    for (uint64_t row0 = 0; row0 < rows; row0 += max_rows) {
        uint32_t n = (uint32_t)(((rows - row0 < max_rows ? rows - row0 : max_rows) + rpw - 1) / rpw);
        vk_push_mul_mat_vec pc = {.rows = rows,
                                  .cols = cols,
                                  .row_bytes = (uint32_t)row_bytes,
                                  .w_off = (uint32_t)w_off,
                                  .x_off = (uint32_t)x_off,
                                  .y_off = (uint32_t)y_off,
                                  .row0 = (uint32_t)row0};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, n, 1, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}
