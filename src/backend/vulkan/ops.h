/* ops.h — ops recorded into a step (runtime.h), one per shader in
 * shaders/, and the C mirrors of their push constants. Each op has a CPU
 * reference it is tested against (tests/test_vulkan.c). Buffers hold
 * float32 row-major tensors unless said otherwise. */
#ifndef SLUICE_VK_OPS_H
#define SLUICE_VK_OPS_H
#include "backend/vulkan/runtime.h"

/* Push constants of shaders/rms_norm.comp; keep the two in step. */
typedef struct vk_push_rms_norm {
    uint32_t n_cols;
    uint32_t n_rows;
    float eps;
    uint32_t row0;
} vk_push_rms_norm;
_Static_assert(sizeof(vk_push_rms_norm) == 16, "rms_norm push constants");

/* d[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w  for r < n_rows.
 * x, d: (n_rows, n_cols) F32; w: (n_cols) F32; d may be x. Subgroup
 * reductions where the device caps allow, else shared memory. The CPU
 * reference is rmsnorm in engine/forward.c (double sum there, float tree
 * here). */
sluice_status vk_op_rms_norm(vk_device *d, vk_buffer *x, vk_buffer *w, vk_buffer *dst, uint32_t n_cols,
                             uint32_t n_rows, float eps, sluice_error *err);
#endif
