/* ops.h — ops recorded into a step (runtime.h), one per shader in
 * shaders/, and the C mirrors of their push constants. Each op has a CPU
 * reference it is tested against (tests/test_vulkan.c). Buffers hold
 * float32 row-major tensors unless said otherwise. */
#ifndef SLUICE_VK_OPS_H
#define SLUICE_VK_OPS_H
#include "backend/vulkan/runtime.h"
#include "model/quant.h"

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

/* Push constants of shaders/mul_mat_vec.comp; keep the two in step. */
typedef struct vk_push_mul_mat_vec {
    uint32_t rows;
    uint32_t cols;
    uint32_t row_bytes; /* bytes from one row of W to the next */
    uint32_t w_off;     /* bytes, multiple of 4 */
    uint32_t x_off;     /* floats */
    uint32_t y_off;     /* floats */
    uint32_t row0;      /* first row of this dispatch */
    uint32_t pad;
} vk_push_mul_mat_vec;
_Static_assert(sizeof(vk_push_mul_mat_vec) == 32, "mul_mat_vec push constants");

/* True when vk_op_mul_mat_vec takes weights of type t: F32, F16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. */
bool vk_mul_mat_vec_supports(qtype t);

/* y[y_off + r] = sum_c W[r, c] * x[x_off + c]  for r < rows: matrix times
 * vector for generation. W: (rows, cols) of type t, stored raw (GGUF
 * bytes, rows back to back) from byte w_off of w (a multiple of 4), and
 * dequantized inside the shader; cols a multiple of t's block size. x:
 * (cols) F32 from float x_off; y: (rows) F32 from float y_off, must not
 * overlap x. W's bytes, rounded up to a multiple of 4, must lie in w.
 * Subgroup reductions where the device caps allow, else shared memory;
 * fixed summation order either way (bit-identical reruns). The CPU
 * reference is quant_dequantize_row_ref then a dot product. Fails with
 * SLUICE_ERR_UNSUPPORTED for other types and SLUICE_ERR_ARG for shapes or
 * offsets that do not fit. */
sluice_status vk_op_mul_mat_vec(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, vk_buffer *x, uint64_t x_off,
                                vk_buffer *y, uint64_t y_off, uint32_t rows, uint32_t cols, sluice_error *err);
#endif
