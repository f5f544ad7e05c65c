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

/* True when vk_op_mul_mat_vec takes weights of type t: F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. */
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

/* Push constants of shaders/mul_mat.comp; keep the two in step. */
typedef struct vk_push_mul_mat {
    uint32_t rows;
    uint32_t cols;
    uint32_t n_tok;
    uint32_t row_bytes; /* bytes from one row of W to the next */
    uint32_t w_off;     /* bytes, multiple of 4 */
    uint32_t x_off;     /* floats */
    uint32_t x_stride;  /* floats from one token's x to the next */
    uint32_t y_off;     /* floats */
    uint32_t y_stride;  /* floats from one token's y to the next */
    uint32_t row0;      /* first row of this dispatch */
    uint32_t tok0;      /* first token of this dispatch */
    uint32_t accumulate; /* lane rows: 1: y += the products */
    uint32_t u0, u1;    /* lane rows: the 32-column units of this dispatch */
    uint32_t pad[2];
} vk_push_mul_mat;
_Static_assert(sizeof(vk_push_mul_mat) == 64, "mul_mat push constants");

/* True when vk_op_mul_mat takes weights of type t (the types of
 * vk_mul_mat_vec_supports). */
bool vk_mul_mat_supports(qtype t);

/* y[y_off + k * y_stride + r] = sum_c W[r, c] * x[x_off + k * x_stride + c]
 * for r < rows, k < n_tok: matrix times matrix for prompt batches. W as
 * for vk_op_mul_mat_vec (raw GGUF bytes of type t from byte w_off, a
 * multiple of 4; cols a multiple of t's block size); x: n_tok rows of
 * cols F32, x_stride >= cols floats apart; y: n_tok rows of rows F32,
 * y_stride >= rows apart, not overlapping x. Each output is a fixed-order
 * sum that does not depend on n_tok or on the other tokens of the batch
 * (batch-invariant, bit-identical reruns). One row per invocation with a
 * few tokens each on CPU devices (vk_kernel_caps.lane_rows), 64 x 32
 * shared-memory tiles elsewhere. The CPU reference is
 * quant_dequantize_row_ref then a dot product per (row, token). Fails with
 * SLUICE_ERR_UNSUPPORTED for other types and SLUICE_ERR_ARG for shapes,
 * strides or offsets that do not fit. */
sluice_status vk_op_mul_mat(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, vk_buffer *x, uint64_t x_off,
                            uint32_t x_stride, vk_buffer *y, uint64_t y_off, uint32_t y_stride, uint32_t rows,
                            uint32_t cols, uint32_t n_tok, sluice_error *err);

/* Push constants of shaders/get_rows.comp; keep the two in step. */
typedef struct vk_push_get_rows {
    uint32_t cols;
    uint32_t n_tok;
    uint32_t n_rows;    /* rows of W: valid ids are 0..n_rows-1 */
    uint32_t row_bytes; /* bytes from one row of W to the next */
    uint32_t w_off;     /* bytes, multiple of 4 */
    uint32_t ids_off;   /* int32s */
    uint32_t d_off;     /* floats */
    uint32_t tok0;      /* first token of this dispatch */
    uint32_t id0;       /* id of W's first row (a part of a split table) */
    uint32_t skip_outside; /* 1: ids outside id0..id0+n_rows-1 leave dst alone */
    uint32_t pad[2];
} vk_push_get_rows;
_Static_assert(sizeof(vk_push_get_rows) == 48, "get_rows push constants");

/* True when vk_op_get_rows takes weights of type t (the types of
 * vk_mul_mat_vec_supports). */
bool vk_get_rows_supports(qtype t);

/* dst[d_off + t * cols + c] = W[ids[ids_off + t], c]  for t < n_tok: the
 * embedding lookup. W: (n_rows, cols) of type t, raw GGUF bytes from byte
 * w_off of w (a multiple of 4), rows back to back, cols a multiple of t's
 * block size; ids: int32; dst: F32. An id outside 0..n_rows-1 yields a
 * row of zeros. Each element is formed as quant_dequantize_row_ref forms
 * it, so the result equals the CPU's bit for bit. Fails with
 * SLUICE_ERR_UNSUPPORTED for other types and SLUICE_ERR_ARG for shapes or
 * offsets that do not fit. */
sluice_status vk_op_get_rows(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, uint32_t n_rows, uint32_t cols,
                             vk_buffer *ids, uint64_t ids_off, uint32_t n_tok, vk_buffer *dst, uint64_t d_off,
                             sluice_error *err);

/* vk_op_get_rows over one part of a table split by rows: W holds rows
 * id0 .. id0 + n_rows - 1 of the table; token t takes row
 * ids[ids_off + t] - id0 when its id falls in the part. With skip_outside
 * the other tokens' rows of dst are left as they are (every part in turn
 * fills its own tokens), else they get zeros as in vk_op_get_rows. */
sluice_status vk_op_get_rows_part(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, uint32_t id0, uint32_t n_rows,
                                  uint32_t cols, vk_buffer *ids, uint64_t ids_off, uint32_t n_tok, vk_buffer *dst,
                                  uint64_t d_off, bool skip_outside, sluice_error *err);

/* Push constants of shaders/rope.comp; keep the two in step. */
typedef struct vk_push_rope {
    uint32_t head_dim;
    uint32_t n_heads;
    uint32_t n_tok;
    uint32_t n_rot;
    uint32_t x_off;   /* floats */
    uint32_t pos_off; /* int32s */
    uint32_t tok0;    /* first token of this dispatch */
    float freq_base;
    float freq_scale;
    float ext_factor;
    float attn_factor;
    float corr_lo, corr_hi;
    uint32_t pad[3];
} vk_push_rope;
_Static_assert(sizeof(vk_push_rope) == 64, "rope push constants");

/* Rotary embedding parameters (model_hparams' names in brackets). */
typedef struct vk_rope_params {
    uint32_t n_rot;     /* rotated dims per head, even, <= head_dim [n_rot] */
    bool neox;          /* pairs (i, i + n_rot/2), else (2i, 2i + 1) [arch rope] */
    float freq_base;    /* [rope_base] */
    float freq_scale;   /* linear scaling, 1 / factor; 1: none [rope_freq_scale] */
    /* YaRN; ext_factor 0 turns it off, attn_factor 1 is neutral */
    float ext_factor;   /* [yarn_ext_factor] */
    float attn_factor;  /* [yarn_attn_factor] */
    float beta_fast, beta_slow; /* [yarn_beta_fast, yarn_beta_slow] */
    uint32_t n_ctx_orig;        /* [n_ctx_orig] */
} vk_rope_params;

/* Rotates, in place, the first n_rot dims of every head of
 * x: (n_tok, n_heads, head_dim) F32 from float x_off, token t at position
 * pos[pos_off + t] (int32), with engine/forward.c's rope_table and
 * rope_apply semantics (YaRN included). Angles and sin/cos are computed in
 * the shader in float. Fails with SLUICE_ERR_ARG for an odd n_rot, n_rot >
 * head_dim, a freq_base or freq_scale not above 0, or buffers too small. */
sluice_status vk_op_rope(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *pos, uint64_t pos_off,
                         uint32_t head_dim, uint32_t n_heads, uint32_t n_tok, const vk_rope_params *rp,
                         sluice_error *err);

/* Push constants of shaders/silu_mul.comp and shaders/add.comp. */
typedef struct vk_push_eltwise {
    uint32_t n;
    uint32_t x_off; /* floats */
    uint32_t y_off; /* floats */
    uint32_t i0;    /* first element of this dispatch */
    uint32_t y_n;   /* y repeats every y_n elements (add: a row broadcast) */
    uint32_t pad[3];
} vk_push_eltwise;
_Static_assert(sizeof(vk_push_eltwise) == 32, "elementwise push constants");

/* g[g_off + i] = silu(g[g_off + i]) * u[u_off + i]  for i < n, F32, in
 * place (the SwiGLU gate). u must not overlap g's n elements unless it is
 * exactly them. */
sluice_status vk_op_silu_mul(vk_device *d, vk_buffer *g, uint64_t g_off, vk_buffer *u, uint64_t u_off, uint32_t n,
                             sluice_error *err);

/* x[x_off + i] += y[y_off + i]  for i < n, F32, in place (the residual). */
sluice_status vk_op_add(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *y, uint64_t y_off, uint32_t n,
                        sluice_error *err);

/* x[x_off + r * y_n + i] += y[y_off + i]  for r < n_rows, i < y_n, F32, in
 * place: one row added to each of n_rows rows (a bias over a batch). */
sluice_status vk_op_add_rows(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *y, uint64_t y_off, uint32_t y_n,
                             uint32_t n_rows, sluice_error *err);

/* Push constants of shaders/kv_store.comp; keep the two in step. */
typedef struct vk_push_kv_store {
    uint32_t kvdim;
    uint32_t n_tok;
    uint32_t n_ctx;
    uint32_t k_off;   /* cache elements */
    uint32_t v_off;   /* cache elements */
    uint32_t pos_off; /* int32s */
    uint32_t tok0;    /* first token of this dispatch */
    uint32_t pad;
} vk_push_kv_store;
_Static_assert(sizeof(vk_push_kv_store) == 32, "kv_store push constants");

/* Stores new tokens' K and V into one layer's cache, as engine/forward.c's
 * kv_store: kc[k_off + pos * kvdim + i] = k[t, i] (rows) and
 * vc[v_off + i * n_ctx + pos] = v[t, i] (V transposed) with pos =
 * pos[pos_off + t]. k, v: (n_tok, kvdim) F32 from float 0; pos: int32,
 * distinct, in 0..n_ctx-1 (others are skipped); cache elements F32 or F16
 * (kv type `f16`; rounded as f32_to_fp16, bit for bit), k_off and v_off
 * counting elements. Fails with SLUICE_ERR_ARG when a buffer is too
 * small. */
sluice_status vk_op_kv_store(vk_device *d, bool f16, vk_buffer *k, vk_buffer *v, vk_buffer *pos, uint64_t pos_off,
                             uint32_t kvdim, uint32_t n_tok, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                             uint64_t v_off, uint32_t n_ctx, sluice_error *err);

/* Push constants of shaders/attention.comp; keep the two in step. */
typedef struct vk_push_attention {
    uint32_t head_dim;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_tok;
    uint32_t pos0;
    uint32_t n_ctx;
    uint32_t k_off; /* cache elements */
    uint32_t v_off; /* cache elements */
    uint32_t tok0;  /* first token of this dispatch */
    float scale;
    uint32_t kv_chunk; /* positions per workgroup z; 0: no split */
    uint32_t info_off; /* paged: token t's [n_kv, table offset] at info[info_off + 2t] */
} vk_push_attention;
_Static_assert(sizeof(vk_push_attention) == 48, "attention push constants");

/* Causal softmax attention with grouped-query heads over one layer's KV
 * cache, as engine/forward.c's attn_task: token t (at position pos0 + t)
 * and head h attend to positions 0..pos0 + t with K/V head
 * h / (n_head / n_head_kv), scores scaled by 1 / sqrt(head_dim).
 * q, o: (n_tok, n_head * head_dim) F32 from float 0; o must not overlap q.
 * Caches as vk_op_kv_store writes them (F32 or, with f16, binary16; K rows
 * [pos][n_head_kv * head_dim] from element k_off of kc, V transposed
 * [n_head_kv * head_dim][n_ctx] from element v_off of vc); positions up to
 * pos0 + n_tok - 1 must have been stored. Online (flash-style) softmax, one
 * workgroup per (token, head), subgroup reductions where the caps allow
 * else shared memory, fixed summation order (bit-identical reruns). Fails
 * with SLUICE_ERR_ARG for head_dim 0 or above 256, n_head not a multiple
 * of n_head_kv, pos0 + n_tok > n_ctx, or buffers too small. */
sluice_status vk_op_attention(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                              uint64_t v_off, vk_buffer *o, uint32_t head_dim, uint32_t n_head, uint32_t n_head_kv,
                              uint32_t n_tok, uint32_t pos0, uint32_t n_ctx, sluice_error *err);

/* Block size of the paged KV cache (engine/forward.h FWD_KV_BLOCK; the
 * shader's KV_BLOCK). */
#define VK_KV_BLOCK 16

/* vk_op_attention for a batch of tokens of many sequences over a paged KV
 * cache of n_slots slots: token t attends to positions 0..n_kv-1 of its
 * own sequence, info[info_off + 2t] = n_kv (>= 1) and info[info_off + 2t +
 * 1] = the offset in info of its sequence's block table (block b holds
 * positions b * VK_KV_BLOCK.. at slots block * VK_KV_BLOCK..). info:
 * uint32. No split over the sequence. Errors as vk_op_attention. */
sluice_status vk_op_attention_paged(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, vk_buffer *vc, vk_buffer *o,
                                    vk_buffer *info, uint32_t info_off, uint32_t head_dim, uint32_t n_head,
                                    uint32_t n_head_kv, uint32_t n_tok, uint32_t n_slots, sluice_error *err);

/* Copies n bytes from src at src_off to dst at dst_off for each of
 * n_regions regions, region r at src_off + r * src_stride and dst_off + r *
 * dst_stride (a KV block: K rows, then V's transposed columns). */
sluice_status vk_op_copy_regions(vk_device *d, vk_buffer *src, uint64_t src_off, uint64_t src_stride, vk_buffer *dst,
                                 uint64_t dst_off, uint64_t dst_stride, uint64_t n, uint32_t n_regions,
                                 sluice_error *err);

/* Push constants of shaders/attention_merge.comp; keep the two in step. */
typedef struct vk_push_attention_merge {
    uint32_t head_dim;
    uint32_t n_head;
    uint32_t n_tok;
    uint32_t n_split;
    uint32_t tok0; /* first token of this dispatch */
    uint32_t pad[3];
} vk_push_attention_merge;
_Static_assert(sizeof(vk_push_attention_merge) == 32, "attention_merge push constants");

/* Chunks vk_op_attention_split makes: ceil((pos0 + n_tok) / kv_chunk), 1
 * for kv_chunk 0. */
uint32_t vk_attention_splits(uint32_t n_tok, uint32_t pos0, uint32_t kv_chunk);

/* vk_op_attention split over the sequence, for generation (few (token,
 * head) pairs over a long KV): with kv_chunk > 0 each (token, head) runs
 * as vk_attention_splits workgroups of kv_chunk positions each, which
 * write their partial max, sum and output to part (at least n_tok * n_head
 * * splits * (head_dim + 2) floats), then, after a barrier this op
 * records, a merge pass combines them in chunk order into o. kv_chunk 0
 * is vk_op_attention (part unused, may be NULL). Same errors, and
 * SLUICE_ERR_ARG when part is missing or too small. */
sluice_status vk_op_attention_split(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                                    uint64_t v_off, vk_buffer *o, vk_buffer *part, uint32_t head_dim, uint32_t n_head,
                                    uint32_t n_head_kv, uint32_t n_tok, uint32_t pos0, uint32_t n_ctx,
                                    uint32_t kv_chunk, sluice_error *err);
#endif
