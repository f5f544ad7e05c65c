/* ops.c — recording of each op: pipeline, push constants, dispatch
 * geometry (split where it exceeds the device's workgroup-count limit). */
#include "backend/vulkan/ops.h"
#include <math.h>
#include "backend/vulkan/profile.h"
#include "backend/vulkan/vk_internal.h"

#define RMS_NORM_BLOCK 128 /* power of two, <= the guaranteed 128 invocations */

/* CPU devices (caps.lane_rows) read the inputs of the small ops through
 * R32 texel views where the views can span the buffers: on llvmpipe a
 * texel load is one gather, a storage-buffer load a loop over the lanes. */
static bool texel_inputs(const vk_device *d, const vk_buffer *a, const vk_buffer *b) {
    return d->caps.lane_rows && d->caps.subgroups && a->size / 4 <= d->info.max_texel_elements &&
           b->size / 4 <= d->info.max_texel_elements;
}

sluice_status vk_op_rms_norm(vk_device *d, vk_buffer *x, vk_buffer *w, vk_buffer *dst, uint32_t n_cols,
                             uint32_t n_rows, float eps, sluice_error *err) {
    uint64_t bytes = (uint64_t)n_cols * n_rows * sizeof(float);
    if (!n_cols || !n_rows) return SLUICE_OK;
    if (bytes > x->size || bytes > dst->size || (uint64_t)n_cols * sizeof(float) > w->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "rms_norm: (%u x %u) F32 does not fit its buffers", n_rows, n_cols);
    const bool texel = texel_inputs(d, x, w);
    /* texel variant: one 8-lane subgroup per row (lavapipe) */
    const uint32_t spec[] = {texel ? d->info.subgroup_size : RMS_NORM_BLOCK};
    vk_shader_id id = texel                ? VK_SHADER_RMS_NORM_F32_TEXEL
                      : d->caps.subgroups ? VK_SHADER_RMS_NORM_F32_SUBGROUP
                                          : VK_SHADER_RMS_NORM_F32;
    vk_pipeline *p = vk_pipeline_get_desc(d, id, 3, 0, texel ? 3u : 0u, sizeof(vk_push_rms_norm), spec, 1, err);
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

/* Bytes of the uniform-buffer x window of mul_mat.comp and
 * mul_mat_vec.comp (their X_UBO variants declare 4096 vec4). */
#define MUL_MAT_UBO_BYTES 65536

#define MUL_MAT_VEC_BLOCK 128 /* power of two, <= the guaranteed 128 invocations */
/* Rows per workgroup (<= MUL_MAT_VEC_BLOCK). 1, 2, 4, 8 and 16 measured
 * alike on lavapipe (4096 x 4096, run to run noise larger than the
 * differences); 2 keeps the partial last workgroup path in use. */
#define MUL_MAT_VEC_ROWS 2
/* On CPU devices (lavapipe; chosen by the quirk table, quirks.c) the
 * shader's LANE_ROWS mode instead gives each
 * invocation a whole row: x reads are then the same address for every lane
 * and weight reads a few per 32 elements, where the split path pays a
 * per-lane gather for every x element. 4096 x 4096 model (tiny256) tg:
 * Q4_0 4.4 -> ~60 t/s, F32 21 -> 43 t/s on 2 cores. 64 and 128 rows per
 * workgroup measured alike; 16 and 32 slower. Real GPUs keep the split,
 * coalesced path (one lane per row reads W uncoalesced there). */

/* Weight types of shaders/mul_mat_vec.comp: shader variants and block
 * geometry (as qtype_get reports; repeated here so the backend needs only
 * quant.h's enum). block == 0: not supported. */
typedef struct mmv_type {
    uint32_t block, block_bytes;
    vk_shader_id shared, subgroup, ubo; /* mul_mat_vec variants */
    vk_shader_id get_rows, mul_mat, mul_mat_ubo, mul_mat_ubo_texel, mul_mat_lanes, mul_mat_lanes_x, mul_mat_f16;
} mmv_type;

#define MMV(t, b, bb, id)                                                                                   \
    [QT_##t] = {b,                                                                                          \
                bb,                                                                                         \
                VK_SHADER_MUL_MAT_VEC_##id,                                                                 \
                VK_SHADER_MUL_MAT_VEC_##id##_SUBGROUP,                                                      \
                VK_SHADER_MUL_MAT_VEC_##id##_UBO,                                                           \
                VK_SHADER_GET_ROWS_##id,                                                                    \
                VK_SHADER_MUL_MAT_##id,                                                                     \
                VK_SHADER_MUL_MAT_##id##_UBO,                                                               \
                VK_SHADER_MUL_MAT_##id##_UBO_TEXEL,                                                         \
                VK_SHADER_MUL_MAT_LANES_##id,                                                               \
                VK_SHADER_MUL_MAT_LANES_##id##_X,                                                           \
                VK_SHADER_MUL_MAT_##id##_F16}
static const mmv_type mmv_types[QT_COUNT] = {
    MMV(F32, 1, 4, F32),       MMV(F16, 1, 2, F16),       MMV(BF16, 1, 2, BF16),   MMV(Q4_0, 32, 18, Q4_0),
    MMV(Q4_1, 32, 20, Q4_1),   MMV(Q5_0, 32, 22, Q5_0),   MMV(Q5_1, 32, 24, Q5_1), MMV(Q8_0, 32, 34, Q8_0),
    MMV(Q4_K, 256, 144, Q4_K), MMV(Q5_K, 256, 176, Q5_K), MMV(Q6_K, 256, 210, Q6_K),
};
#undef MMV

bool vk_mul_mat_vec_supports(qtype t) { return (unsigned)t < QT_COUNT && mmv_types[t].block; }

/* The weight checks of every op reading a raw GGUF matrix (rows, cols) of
 * mt's type from byte w_off of w: whole blocks per row, a 4-byte aligned
 * start, the rows inside w (and 32-bit addressable). Sets *row_bytes. */
static sluice_status weights_ok(const char *op, const mmv_type *mt, const vk_buffer *w, uint64_t w_off, uint32_t rows,
                                uint32_t cols, uint64_t *row_bytes, sluice_error *err) {
    if (cols % mt->block)
        return sluice_fail(err, SLUICE_ERR_ARG, "%s: %u columns, not a multiple of the block (%u)", op, cols,
                           mt->block);
    if (w_off % 4)
        return sluice_fail(err, SLUICE_ERR_ARG, "%s: weight offset %llu not a multiple of 4", op,
                           (unsigned long long)w_off);
    *row_bytes = (uint64_t)cols / mt->block * mt->block_bytes;
    uint64_t w_end = (w_off + *row_bytes * rows + 3) / 4 * 4;
    if (w_end > w->size || w_end > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "%s: (%u x %u) weights from byte %llu do not fit their buffer", op,
                           rows, cols, (unsigned long long)w_off);
    return SLUICE_OK;
}

sluice_status vk_op_mul_mat_vec(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, vk_buffer *x, uint64_t x_off,
                                vk_buffer *y, uint64_t y_off, uint32_t rows, uint32_t cols, sluice_error *err) {
    if (!vk_mul_mat_vec_supports(t))
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "mul_mat_vec: weight type %d not supported", (int)t);
    const mmv_type *mt = &mmv_types[t];
    if (!rows || !cols) return SLUICE_OK;
    uint64_t row_bytes;
    sluice_status cst = weights_ok("mul_mat_vec", mt, w, w_off, rows, cols, &row_bytes, err);
    if (cst != SLUICE_OK) return cst;
    if ((x_off + cols) * sizeof(float) > x->size || (y_off + rows) * sizeof(float) > y->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat_vec: x (%u) or y (%u) does not fit its buffer", cols, rows);
    /* caps.lane_rows (CPU drivers, by quirk): one row per invocation (spec constant 2,
     * see the shader), MUL_MAT_VEC_BLOCK rows per workgroup. */
    const bool lane_rows = d->caps.lane_rows;
    const uint32_t rpw = lane_rows ? MUL_MAT_VEC_BLOCK : MUL_MAT_VEC_ROWS;
    const uint32_t spec[] = {MUL_MAT_VEC_BLOCK, lane_rows ? 1 : rpw, lane_rows};
    /* lane rows read x through a uniform-buffer window where it fits */
    uint64_t align = d->info.min_ubo_offset_align ? d->info.min_ubo_offset_align : 256;
    uint64_t ubo_max = d->info.max_uniform_buffer_range < MUL_MAT_UBO_BYTES ? d->info.max_uniform_buffer_range
                                                                            : MUL_MAT_UBO_BYTES;
    bool ubo = lane_rows && align <= 256 && align + (uint64_t)cols * 4 <= ubo_max;
    uint64_t offs[3] = {0, 0, 0}, ranges[3] = {0, 0, 0};
    if (ubo) {
        offs[1] = x_off * 4 / align * align;
        ranges[1] = x_off * 4 - offs[1] + (uint64_t)cols * 4;
        x_off = (x_off * 4 - offs[1]) / 4;
    }
    vk_shader_id id = ubo ? mt->ubo : d->caps.subgroups ? mt->subgroup : mt->shared;
    vk_pipeline *p = vk_pipeline_get_ubo(d, id, 3, ubo ? 2u : 0u, sizeof(vk_push_mul_mat_vec), spec, 3, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {w, x, y};
    vk_step_note_weight_bytes(d, row_bytes * rows);
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
        sluice_status st = vk_record_dispatch_ranges(d, p, bufs, offs, ranges, &pc, n, 1, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* ---- mul_mat ---- */

/* LANE_ROWS layout (CPU devices): rows per workgroup and tokens per
 * invocation; tiled layout (GPUs): the shader's fixed 64 x 32 tile of 128
 * invocations; lanes kernel (mul_mat_lanes.comp, CPU devices with 8-lane
 * subgroups): rows x tokens per 8-lane workgroup. */
#define MUL_MAT_LANE_BLOCK 8
#define MUL_MAT_LANE_R 4 /* rows per invocation: BLOCK * R rows per workgroup */
#define MUL_MAT_PART_COLS 1024 /* widest column part: TOKS tokens of it fill the 64 KiB window */
#define MUL_MAT_MAX_PARTS 16   /* rows up to 16384 columns go in parts */
#define MUL_MAT_LANE_TOKS 16
#define MUL_MAT_TILE_ROWS 64
#define MUL_MAT_TILE_TOKS 32
#define MUL_MAT_LANES_ROWS 16

bool vk_mul_mat_supports(qtype t) { return vk_mul_mat_vec_supports(t); }

/* One choice of mul_mat kernel: shader variant, descriptor kinds,
 * specialization constants and the rows x tokens each workgroup covers. */
typedef struct mm_kernel {
    vk_shader_id id;
    uint32_t ubo_mask, texel_mask;
    uint32_t spec[4], n_spec;
    uint32_t tile_r, tile_t;
} mm_kernel;

/* The kernel for weights w of type mt on d; ubo: x comes through a
 * uniform-buffer window (CPU devices only). On CPU devices with 8-lane
 * subgroups, mul_mat_lanes.comp (W through a texel view); else the
 * LANE_ROWS layout of mul_mat.comp (W as texels where the view can span
 * the buffer); on GPUs the tiled layout, in fp16 where the device has it. */
static mm_kernel mm_pick(const vk_device *d, const mmv_type *mt, const vk_buffer *w, bool ubo, uint32_t n_tok) {
    const bool lane = d->caps.lane_rows;
    const bool texel = lane && w->size / 4 <= d->info.max_texel_elements;
    if (texel && d->caps.subgroups && d->info.subgroup_size == 8) {
        /* tokens per workgroup: 4, 8 or 16, the fewest that hold a small
         * batch (every slot costs its products); a token's sums are the
         * same whichever size computes them */
        uint32_t toks = n_tok <= 4 ? 4 : n_tok <= 8 ? 8 : MUL_MAT_LANE_TOKS;
        return (mm_kernel){ubo ? mt->mul_mat_lanes : mt->mul_mat_lanes_x, ubo ? 2u : 0u, 1u,
                           {MUL_MAT_LANES_ROWS, toks}, 2, MUL_MAT_LANES_ROWS, toks};
    }
    if (lane)
        return (mm_kernel){ubo ? (texel ? mt->mul_mat_ubo_texel : mt->mul_mat_ubo) : mt->mul_mat,
                           ubo ? 2u : 0u,
                           ubo && texel ? 1u : 0u,
                           {MUL_MAT_LANE_BLOCK, MUL_MAT_LANE_TOKS, 1, MUL_MAT_LANE_R},
                           4,
                           MUL_MAT_LANE_BLOCK * MUL_MAT_LANE_R,
                           MUL_MAT_LANE_TOKS};
    return (mm_kernel){d->caps.fp16 ? mt->mul_mat_f16 : mt->mul_mat, 0, 0, {128, MUL_MAT_LANE_TOKS, 0, MUL_MAT_LANE_R},
                       4, MUL_MAT_TILE_ROWS, MUL_MAT_TILE_TOKS};
}

static vk_pipeline *mm_pipeline(vk_device *d, const mm_kernel *k, sluice_error *err) {
    return vk_pipeline_get_desc(d, k->id, 3, k->ubo_mask, k->texel_mask, sizeof(vk_push_mul_mat), k->spec, k->n_spec,
                                err);
}

/* vk_op_mul_mat's column parts on CPU devices (see there): per group of
 * MUL_MAT_LANE_TOKS tokens, every part's columns copied compactly into
 * d->mm_scratch (one region per part), a barrier, then one dispatch per
 * part, the first writing y and the others adding to it, with barriers
 * between. Arguments already checked. */
static sluice_status mul_mat_parts(vk_device *d, const mmv_type *mt, vk_buffer *w, uint64_t w_off, vk_buffer *x,
                                   uint64_t x_off, uint32_t x_stride, vk_buffer *y, uint64_t y_off, uint32_t y_stride,
                                   uint32_t rows, uint32_t cols, uint32_t n_tok, uint64_t row_bytes, uint32_t n_parts,
                                   sluice_error *err) {
    const uint64_t part_bytes = (uint64_t)MUL_MAT_LANE_TOKS * MUL_MAT_PART_COLS * 4;
    sluice_status st;
    if (!d->mm_scratch &&
        (st = vk_buffer_create(d, part_bytes * MUL_MAT_MAX_PARTS, VK_MEM_DEVICE, &d->mm_scratch, err)) != SLUICE_OK)
        return st;
    /* part boundaries on whole weight blocks */
    uint32_t blk = mt->block < 32 ? 32 : mt->block, per = (cols / n_parts + blk - 1) / blk * blk;
    const mm_kernel k = mm_pick(d, mt, w, true, n_tok);
    vk_pipeline *p = mm_pipeline(d, &k, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {w, d->mm_scratch, y};
    vk_step_note_weight_bytes(d, row_bytes * rows * ((n_tok + MUL_MAT_LANE_TOKS - 1) / MUL_MAT_LANE_TOKS));
    uint64_t max_r = (uint64_t)d->info.max_wg_count[0] * k.tile_r;
    for (uint32_t t0 = 0; t0 < n_tok; t0 += MUL_MAT_LANE_TOKS) {
        uint32_t nt = n_tok - t0 < MUL_MAT_LANE_TOKS ? n_tok - t0 : MUL_MAT_LANE_TOKS;
        vk_step_barrier(d); /* earlier readers of the scratch are done */
        for (uint32_t q = 0, c0 = 0; c0 < cols; q++, c0 += per) {
            uint32_t pc_cols = cols - c0 < per ? cols - c0 : per;
            st = vk_op_copy_regions(d, x, (x_off + (uint64_t)t0 * x_stride + c0) * 4, (uint64_t)x_stride * 4,
                                    d->mm_scratch, q * part_bytes, (uint64_t)pc_cols * 4, (uint64_t)pc_cols * 4, nt,
                                    err);
            if (st != SLUICE_OK) return st;
        }
        vk_step_barrier(d);
        for (uint32_t q = 0, c0 = 0; c0 < cols; q++, c0 += per) {
            uint32_t pc_cols = cols - c0 < per ? cols - c0 : per;
            uint64_t offs[3] = {0, q * part_bytes, 0}, ranges[3] = {0, (uint64_t)nt * pc_cols * 4, 0};
            if (q) vk_step_barrier(d); /* the previous part's y */
            for (uint64_t r0 = 0; r0 < rows; r0 += max_r) {
                uint64_t nr = rows - r0 < max_r ? rows - r0 : max_r;
                vk_push_mul_mat pc = {.rows = rows,
                                      .cols = cols,
                                      .n_tok = n_tok,
                                      .row_bytes = (uint32_t)row_bytes,
                                      .w_off = (uint32_t)w_off,
                                      .x_off = 0,
                                      .x_stride = pc_cols,
                                      .y_off = (uint32_t)y_off,
                                      .y_stride = y_stride,
                                      .row0 = (uint32_t)r0,
                                      .tok0 = t0,
                                      .accumulate = q > 0,
                                      .u0 = c0 / 32,
                                      .u1 = (c0 + pc_cols) / 32};
                st = vk_record_dispatch_ranges(d, p, bufs, offs, ranges, &pc, (uint32_t)((nr + k.tile_r - 1) / k.tile_r),
                                               1, 1, err);
                if (st != SLUICE_OK) return st;
            }
        }
    }
    return SLUICE_OK;
}

sluice_status vk_op_mul_mat(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, vk_buffer *x, uint64_t x_off,
                            uint32_t x_stride, vk_buffer *y, uint64_t y_off, uint32_t y_stride, uint32_t rows,
                            uint32_t cols, uint32_t n_tok, sluice_error *err) {
    if (!vk_mul_mat_supports(t))
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "mul_mat: weight type %d not supported", (int)t);
    const mmv_type *mt = &mmv_types[t];
    if (!rows || !cols || !n_tok) return SLUICE_OK;
    uint64_t row_bytes;
    sluice_status cst = weights_ok("mul_mat", mt, w, w_off, rows, cols, &row_bytes, err);
    if (cst != SLUICE_OK) return cst;
    if (x_stride < cols || y_stride < rows)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat: strides x %u / y %u below the row lengths %u / %u",
                           x_stride, y_stride, cols, rows);
    uint64_t x_end = x_off + (uint64_t)(n_tok - 1) * x_stride + cols;
    uint64_t y_end = y_off + (uint64_t)(n_tok - 1) * y_stride + rows;
    if (x_end * sizeof(float) > x->size || y_end * sizeof(float) > y->size || x_end > UINT32_MAX ||
        y_end > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "mul_mat: x (%u x %u) or y (%u x %u) does not fit its buffer", n_tok,
                           cols, n_tok, rows);
    const bool lane = d->caps.lane_rows;
    /* CPU devices read x through a uniform buffer where they can: windows
     * of whole tokens of at most MUL_MAT_UBO_BYTES, x 16-byte aligned,
     * whole 32-column units. */
    uint64_t ubo_max = d->info.max_uniform_buffer_range < MUL_MAT_UBO_BYTES ? d->info.max_uniform_buffer_range
                                                                            : MUL_MAT_UBO_BYTES;
    uint64_t align = d->info.min_ubo_offset_align ? d->info.min_ubo_offset_align : 256;
    uint64_t win_tok = 0; /* tokens per uniform-buffer window; 0: storage buffer */
    if (lane && ((x_off | x_stride | cols) & 3) == 0 && cols % 32 == 0 && align <= 256 &&
        (align - 4 + (uint64_t)cols * 4) <= ubo_max) {
        win_tok = (ubo_max - (align - 4) - (uint64_t)cols * 4) / ((uint64_t)x_stride * 4) + 1;
        if (win_tok > MUL_MAT_LANE_TOKS) win_tok -= win_tok % MUL_MAT_LANE_TOKS; /* whole token groups */
    }
    /* Wide rows on CPU devices: a uniform-buffer window of whole rows holds
     * too few tokens (cols > MUL_MAT_PART_COLS), so the columns go in parts
     * of at most that many, each part's activations for a group of TOKS
     * tokens copied compactly into a scratch buffer first; later parts add
     * into y. The split depends on cols only, never on n_tok, so results
     * stay batch-invariant. */
    uint32_t n_parts = (cols + MUL_MAT_PART_COLS - 1) / MUL_MAT_PART_COLS;
    if (lane && n_parts > 1 && n_parts <= MUL_MAT_MAX_PARTS && ((x_off | x_stride) & 3) == 0 && cols % 32 == 0 &&
        align <= 256 && (uint64_t)MUL_MAT_LANE_TOKS * MUL_MAT_PART_COLS * 4 <= ubo_max)
        return mul_mat_parts(d, mt, w, w_off, x, x_off, x_stride, y, y_off, y_stride, rows, cols, n_tok, row_bytes,
                             n_parts, err);
    const mm_kernel k = mm_pick(d, mt, w, win_tok != 0, n_tok);
    vk_pipeline *p = mm_pipeline(d, &k, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {w, x, y};
    /* every token tile reads the whole matrix */
    vk_step_note_weight_bytes(d, row_bytes * rows * ((n_tok + k.tile_t - 1) / k.tile_t));
    /* dispatches split where the tile counts exceed the device's limits,
     * or over uniform-buffer windows */
    uint64_t max_r = (uint64_t)d->info.max_wg_count[0] * k.tile_r, max_t = (uint64_t)d->info.max_wg_count[1] * k.tile_t;
    if (win_tok && win_tok < max_t) max_t = win_tok;
    for (uint64_t t0 = 0; t0 < n_tok; t0 += max_t) {
        uint64_t nt = n_tok - t0 < max_t ? n_tok - t0 : max_t;
        uint64_t offs[3] = {0, 0, 0}, ranges[3] = {0, 0, 0}, xo = x_off;
        if (win_tok) {
            uint64_t first = (x_off + t0 * x_stride) * 4; /* bytes */
            offs[1] = first / align * align;
            xo = (first - offs[1]) / 4;
            ranges[1] = first - offs[1] + ((nt - 1) * x_stride + cols) * 4;
        }
        for (uint64_t r0 = 0; r0 < rows; r0 += max_r) {
            uint64_t nr = rows - r0 < max_r ? rows - r0 : max_r;
            /* n_tok ends at this dispatch's last token: a token group
             * never reads past a uniform window shorter than the group */
            vk_push_mul_mat pc = {.rows = rows,
                                  .cols = cols,
                                  .n_tok = (uint32_t)(t0 + nt),
                                  .row_bytes = (uint32_t)row_bytes,
                                  .w_off = (uint32_t)w_off,
                                  .x_off = (uint32_t)xo,
                                  .x_stride = x_stride,
                                  .y_off = (uint32_t)y_off,
                                  .y_stride = y_stride,
                                  .row0 = (uint32_t)r0,
                                  .tok0 = (uint32_t)t0,
                                  .u1 = (cols + 31) / 32};
            sluice_status st = vk_record_dispatch_ranges(d, p, bufs, offs, ranges, &pc,
                                                         (uint32_t)((nr + k.tile_r - 1) / k.tile_r),
                                                         (uint32_t)((nt + k.tile_t - 1) / k.tile_t), 1, err);
            if (st != SLUICE_OK) return st;
        }
    }
    return SLUICE_OK;
}

/* ---- get_rows ---- */

#define GET_ROWS_BLOCK 64 /* <= the guaranteed 128 invocations */


bool vk_get_rows_supports(qtype t) { return vk_mul_mat_vec_supports(t); }

sluice_status vk_op_get_rows(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, uint32_t n_rows, uint32_t cols,
                             vk_buffer *ids, uint64_t ids_off, uint32_t n_tok, vk_buffer *dst, uint64_t d_off,
                             sluice_error *err) {
    return vk_op_get_rows_part(d, t, w, w_off, 0, n_rows, cols, ids, ids_off, n_tok, dst, d_off, false, err);
}

sluice_status vk_op_get_rows_part(vk_device *d, qtype t, vk_buffer *w, uint64_t w_off, uint32_t id0, uint32_t n_rows,
                                  uint32_t cols, vk_buffer *ids, uint64_t ids_off, uint32_t n_tok, vk_buffer *dst,
                                  uint64_t d_off, bool skip_outside, sluice_error *err) {
    if (!vk_get_rows_supports(t))
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "get_rows: weight type %d not supported", (int)t);
    const mmv_type *mt = &mmv_types[t];
    if (!n_tok || !cols) return SLUICE_OK;
    uint64_t row_bytes;
    sluice_status cst = weights_ok("get_rows", mt, w, w_off, n_rows, cols, &row_bytes, err);
    if (cst != SLUICE_OK) return cst;
    uint64_t d_end = d_off + (uint64_t)n_tok * cols;
    if ((ids_off + n_tok) * sizeof(int32_t) > ids->size || d_end * sizeof(float) > dst->size || d_end > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "get_rows: ids (%u) or rows (%u x %u) do not fit their buffers", n_tok,
                           n_tok, cols);
    const uint32_t spec[] = {GET_ROWS_BLOCK};
    vk_pipeline *p = vk_pipeline_get(d, mmv_types[t].get_rows, 3, sizeof(vk_push_get_rows), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {w, ids, dst};
    if (!skip_outside) vk_step_note_weight_bytes(d, row_bytes * n_tok); /* parts: the caller notes */
    uint32_t max_groups = d->info.max_wg_count[0];
    for (uint32_t tok0 = 0; tok0 < n_tok; tok0 += max_groups) {
        uint32_t n = n_tok - tok0 < max_groups ? n_tok - tok0 : max_groups;
        vk_push_get_rows pc = {.cols = cols,
                               .n_tok = n_tok,
                               .n_rows = n_rows,
                               .row_bytes = (uint32_t)row_bytes,
                               .w_off = (uint32_t)w_off,
                               .ids_off = (uint32_t)ids_off,
                               .d_off = (uint32_t)d_off,
                               .tok0 = tok0,
                               .id0 = id0,
                               .skip_outside = skip_outside};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, n, 1, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* ---- rope ---- */

#define ROPE_BLOCK 64

/* engine/forward.c's yarn_corr_dim. */
static float yarn_corr_dim(uint32_t n_rot, uint32_t n_ctx_orig, float n_rotations, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_rotations * 2.0f * 3.14159265358979323846f)) /
           (2.0f * logf(base));
}

sluice_status vk_op_rope(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *pos, uint64_t pos_off,
                         uint32_t head_dim, uint32_t n_heads, uint32_t n_tok, const vk_rope_params *rp,
                         sluice_error *err) {
    if (rp->n_rot % 2 || rp->n_rot > head_dim)
        return sluice_fail(err, SLUICE_ERR_ARG, "rope: n_rot %u must be even and at most the head dim %u", rp->n_rot,
                           head_dim);
    if (!(rp->freq_base > 0.0f) || !(rp->freq_scale > 0.0f))
        return sluice_fail(err, SLUICE_ERR_ARG, "rope: freq_base %g and freq_scale %g must be positive",
                           (double)rp->freq_base, (double)rp->freq_scale);
    uint32_t half = rp->n_rot / 2;
    if (!half || !n_heads || !n_tok) return SLUICE_OK;
    uint64_t x_end = x_off + (uint64_t)n_tok * n_heads * head_dim;
    if (x_end * sizeof(float) > x->size || x_end > UINT32_MAX || (pos_off + n_tok) * sizeof(int32_t) > pos->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "rope: x (%u x %u x %u) or positions do not fit their buffers", n_tok,
                           n_heads, head_dim);
    if ((uint64_t)n_heads * half > (uint64_t)d->info.max_wg_count[0] * ROPE_BLOCK)
        return sluice_fail(err, SLUICE_ERR_ARG, "rope: %u heads too many for one dispatch", n_heads);
    float corr_lo = 0, corr_hi = 0;
    if (rp->ext_factor != 0.0f) {
        corr_lo = fmaxf(0.0f, floorf(yarn_corr_dim(rp->n_rot, rp->n_ctx_orig, rp->beta_fast, rp->freq_base)));
        corr_hi = fminf((float)rp->n_rot - 1, ceilf(yarn_corr_dim(rp->n_rot, rp->n_ctx_orig, rp->beta_slow, rp->freq_base)));
    }
    const uint32_t spec[] = {ROPE_BLOCK};
    vk_shader_id id = rp->neox ? VK_SHADER_ROPE_NEOX : VK_SHADER_ROPE_NORM;
    vk_pipeline *p = vk_pipeline_get(d, id, 2, sizeof(vk_push_rope), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {x, pos};
    uint32_t gx = (n_heads * half + ROPE_BLOCK - 1) / ROPE_BLOCK, max_y = d->info.max_wg_count[1];
    for (uint32_t tok0 = 0; tok0 < n_tok; tok0 += max_y) {
        uint32_t n = n_tok - tok0 < max_y ? n_tok - tok0 : max_y;
        vk_push_rope pc = {.head_dim = head_dim,
                           .n_heads = n_heads,
                           .n_tok = n_tok,
                           .n_rot = rp->n_rot,
                           .x_off = (uint32_t)x_off,
                           .pos_off = (uint32_t)pos_off,
                           .tok0 = tok0,
                           .freq_base = rp->freq_base,
                           .freq_scale = rp->freq_scale,
                           .ext_factor = rp->ext_factor,
                           .attn_factor = rp->attn_factor,
                           .corr_lo = corr_lo,
                           .corr_hi = corr_hi};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, gx, n, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* ---- silu_mul, add ---- */

#define ELTWISE_BLOCK 128

/* id: the shader; texel_id: its TEXEL variant */
static sluice_status eltwise(vk_device *d, vk_shader_id id, vk_shader_id texel_id, const char *name, vk_buffer *x, uint64_t x_off,
                             vk_buffer *y, uint64_t y_off, uint32_t n, uint32_t y_n, sluice_error *err) {
    if (!n) return SLUICE_OK;
    if (!y_n) return sluice_fail(err, SLUICE_ERR_ARG, "%s: empty y", name);
    if ((x_off + n) * sizeof(float) > x->size || (y_off + y_n) * sizeof(float) > y->size || x_off + n > UINT32_MAX ||
        y_off + y_n > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "%s: %u floats do not fit their buffers", name, n);
    const uint32_t spec[] = {ELTWISE_BLOCK};
    const bool texel = texel_inputs(d, x, y);
    vk_pipeline *p = vk_pipeline_get_desc(d, texel ? texel_id : id, texel ? 3 : 2, 0, texel ? 6u : 0u,
                                          sizeof(vk_push_eltwise), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {x, y, x};
    uint64_t per = (uint64_t)d->info.max_wg_count[0] * ELTWISE_BLOCK; /* elements per dispatch */
    for (uint64_t i0 = 0; i0 < n; i0 += per) {
        uint64_t m = n - i0 < per ? n - i0 : per;
        vk_push_eltwise pc = {
            .n = n, .x_off = (uint32_t)x_off, .y_off = (uint32_t)y_off, .i0 = (uint32_t)i0, .y_n = y_n};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, (uint32_t)((m + ELTWISE_BLOCK - 1) / ELTWISE_BLOCK), 1,
                                              1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

sluice_status vk_op_silu_mul(vk_device *d, vk_buffer *g, uint64_t g_off, vk_buffer *u, uint64_t u_off, uint32_t n,
                             sluice_error *err) {
    return eltwise(d, VK_SHADER_SILU_MUL_F32, VK_SHADER_SILU_MUL_F32_TEXEL, "silu_mul", g, g_off, u, u_off, n, n, err);
}

sluice_status vk_op_add(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *y, uint64_t y_off, uint32_t n,
                        sluice_error *err) {
    return eltwise(d, VK_SHADER_ADD_F32, VK_SHADER_ADD_F32_TEXEL, "add", x, x_off, y, y_off, n, n, err);
}

sluice_status vk_op_add_rows(vk_device *d, vk_buffer *x, uint64_t x_off, vk_buffer *y, uint64_t y_off, uint32_t y_n,
                             uint32_t n_rows, sluice_error *err) {
    if ((uint64_t)y_n * n_rows > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "add_rows: %u x %u floats are too many", n_rows, y_n);
    return eltwise(d, VK_SHADER_ADD_F32, VK_SHADER_ADD_F32_TEXEL, "add_rows", x, x_off, y, y_off, y_n * n_rows, y_n, err);
}

/* ---- kv_store ---- */

#define KV_STORE_BLOCK 64

sluice_status vk_op_kv_store(vk_device *d, bool f16, vk_buffer *k, vk_buffer *v, vk_buffer *pos, uint64_t pos_off,
                             uint32_t kvdim, uint32_t n_tok, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                             uint64_t v_off, uint32_t n_ctx, sluice_error *err) {
    if (!kvdim || !n_tok) return SLUICE_OK;
    uint64_t elem = f16 ? 2 : 4, in = (uint64_t)n_tok * kvdim * sizeof(float);
    uint64_t cache = (uint64_t)n_ctx * kvdim;
    /* F16 words are read whole: round the end up to a word */
    uint64_t k_end = ((k_off + cache) * elem + 3) / 4 * 4, v_end = ((v_off + cache) * elem + 3) / 4 * 4;
    if (in > k->size || in > v->size || (pos_off + n_tok) * sizeof(int32_t) > pos->size || k_end > kc->size ||
        v_end > vc->size || k_off + cache > UINT32_MAX || v_off + cache > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "kv_store: %u tokens x %u or a %u-position cache do not fit their buffers",
                           n_tok, kvdim, n_ctx);
    const uint32_t spec[] = {KV_STORE_BLOCK};
    vk_shader_id id = f16 ? VK_SHADER_KV_STORE_F16 : VK_SHADER_KV_STORE_F32;
    vk_pipeline *p = vk_pipeline_get(d, id, 5, sizeof(vk_push_kv_store), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *bufs[] = {k, v, pos, kc, vc};
    uint32_t gx = (kvdim + KV_STORE_BLOCK - 1) / KV_STORE_BLOCK, max_y = d->info.max_wg_count[1];
    if (gx > d->info.max_wg_count[0])
        return sluice_fail(err, SLUICE_ERR_ARG, "kv_store: rows of %u too long for one dispatch", kvdim);
    for (uint32_t tok0 = 0; tok0 < n_tok; tok0 += max_y) {
        uint32_t n = n_tok - tok0 < max_y ? n_tok - tok0 : max_y;
        vk_push_kv_store pc = {.kvdim = kvdim,
                               .n_tok = n_tok,
                               .n_ctx = n_ctx,
                               .k_off = (uint32_t)k_off,
                               .v_off = (uint32_t)v_off,
                               .pos_off = (uint32_t)pos_off,
                               .tok0 = tok0};
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, gx, n, 1, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* ---- attention ---- */

#define ATTENTION_BLOCK 64   /* power of two: positions per tile, invocations per workgroup */
#define ATTENTION_HD_MAX 256 /* shaders/attention.comp's HD_MAX */

/* The head shapes every attention variant takes. */
static sluice_status attention_heads_ok(vk_device *d, uint32_t head_dim, uint32_t n_head, uint32_t n_head_kv,
                                        sluice_error *err) {
    if (!head_dim || head_dim > ATTENTION_HD_MAX || !n_head_kv || n_head % n_head_kv)
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: head_dim %u (1..%u) or heads %u / %u (a multiple) not supported",
                           head_dim, ATTENTION_HD_MAX, n_head, n_head_kv);
    if (n_head > d->info.max_wg_count[0])
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: %u heads too many for one dispatch", n_head);
    return SLUICE_OK;
}

/* Records attention shader `id` over n_tok tokens: workgroups (head,
 * token, z < n_z), dispatches split over tokens at the device's limit;
 * pc holds everything but tok0. */
static sluice_status attention_dispatch(vk_device *d, vk_shader_id id, vk_buffer *const *bufs, uint32_t n_bufs,
                                        vk_push_attention pc, uint32_t n_z, sluice_error *err) {
    const uint32_t spec[] = {ATTENTION_BLOCK};
    vk_pipeline *p = vk_pipeline_get(d, id, n_bufs, sizeof(vk_push_attention), spec, 1, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    pc.scale = 1.0f / sqrtf((float)pc.head_dim);
    uint32_t max_y = d->info.max_wg_count[1];
    for (uint32_t tok0 = 0; tok0 < pc.n_tok; tok0 += max_y) {
        pc.tok0 = tok0;
        sluice_status st =
            vk_record_dispatch(d, p, bufs, &pc, pc.n_head, pc.n_tok - tok0 < max_y ? pc.n_tok - tok0 : max_y, n_z, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* CPU devices with 8-lane subgroups take attention_lanes.comp: one 8-lane
 * workgroup per (KV head, token, chunk), query heads of a group sharing
 * every K/V load, q/K/V read as texels. Heads of a multiple of 8 dims and
 * groups of at most 8 heads x 512 dims in registers; the buffers' texel
 * views must span them. */
static bool attention_lanes_ok(const vk_device *d, const vk_buffer *q, const vk_buffer *kc, const vk_buffer *vc,
                               uint32_t head_dim, uint32_t n_head, uint32_t n_head_kv) {
    uint32_t g = n_head / n_head_kv;
    uint64_t max_words = d->info.max_texel_elements;
    return d->caps.lane_rows && d->caps.subgroups && d->info.subgroup_size == 8 && head_dim % 8 == 0 && g <= 8 &&
           g * head_dim <= 512 && q->size / 4 <= max_words && kc->size / 4 <= max_words && vc->size / 4 <= max_words;
}

/* Records attention_lanes shader `id`: workgroups (KV head, token, z <
 * n_z), split over tokens at the device's limit; pc holds everything but
 * tok0. bufs: q, K, V (texels), then storage buffers. */
static sluice_status attention_lanes_dispatch(vk_device *d, vk_shader_id id, vk_buffer *const *bufs, uint32_t n_bufs,
                                              vk_push_attention pc, uint32_t n_z, sluice_error *err) {
    const uint32_t spec[] = {pc.head_dim, pc.n_head / pc.n_head_kv};
    vk_pipeline *p = vk_pipeline_get_desc(d, id, n_bufs, 0, 7u, sizeof(vk_push_attention), spec, 2, err);
    if (!p) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    pc.scale = 1.0f / sqrtf((float)pc.head_dim);
    uint32_t max_y = d->info.max_wg_count[1];
    for (uint32_t tok0 = 0; tok0 < pc.n_tok; tok0 += max_y) {
        pc.tok0 = tok0;
        sluice_status st = vk_record_dispatch(d, p, bufs, &pc, pc.n_head_kv,
                                              pc.n_tok - tok0 < max_y ? pc.n_tok - tok0 : max_y, n_z, err);
        if (st != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

sluice_status vk_op_attention(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                              uint64_t v_off, vk_buffer *o, uint32_t head_dim, uint32_t n_head, uint32_t n_head_kv,
                              uint32_t n_tok, uint32_t pos0, uint32_t n_ctx, sluice_error *err) {
    return vk_op_attention_split(d, f16, q, kc, k_off, vc, v_off, o, NULL, head_dim, n_head, n_head_kv, n_tok, pos0,
                                 n_ctx, 0, err);
}

uint32_t vk_attention_splits(uint32_t n_tok, uint32_t pos0, uint32_t kv_chunk) {
    return kv_chunk ? (pos0 + n_tok + kv_chunk - 1) / kv_chunk : 1;
}

sluice_status vk_op_attention_split(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, uint64_t k_off, vk_buffer *vc,
                                    uint64_t v_off, vk_buffer *o, vk_buffer *part, uint32_t head_dim, uint32_t n_head,
                                    uint32_t n_head_kv, uint32_t n_tok, uint32_t pos0, uint32_t n_ctx,
                                    uint32_t kv_chunk, sluice_error *err) {
    sluice_status st = attention_heads_ok(d, head_dim, n_head, n_head_kv, err);
    if (st != SLUICE_OK) return st;
    if (!n_tok || !n_head) return SLUICE_OK;
    if ((uint64_t)pos0 + n_tok > n_ctx)
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: positions %u..%u outside a %u-position cache", pos0,
                           pos0 + n_tok - 1, n_ctx);
    uint64_t elem = f16 ? 2 : 4, cache = (uint64_t)n_ctx * n_head_kv * head_dim;
    uint64_t qo = (uint64_t)n_tok * n_head * head_dim * sizeof(float);
    /* F16 words are read whole: round the end up to a word */
    uint64_t k_end = ((k_off + cache) * elem + 3) / 4 * 4, v_end = ((v_off + cache) * elem + 3) / 4 * 4;
    if (qo > q->size || qo > o->size || k_end > kc->size || v_end > vc->size || k_off + cache > UINT32_MAX ||
        v_off + cache > UINT32_MAX || qo / sizeof(float) > UINT32_MAX)
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: %u tokens x %u heads x %u or a %u-position cache do not fit their buffers",
                           n_tok, n_head, head_dim, n_ctx);
    uint32_t n_split = vk_attention_splits(n_tok, pos0, kv_chunk);
    uint64_t part_floats = (uint64_t)n_tok * n_head * n_split * (head_dim + 2);
    if (kv_chunk && (!part || part_floats * sizeof(float) > part->size || n_split > d->info.max_wg_count[2]))
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: %u chunks of %u positions need a partials buffer of %llu "
                           "floats",
                           n_split, kv_chunk, (unsigned long long)part_floats);
    vk_shader_id id = f16 ? (d->caps.subgroups ? VK_SHADER_ATTENTION_F16_SUBGROUP : VK_SHADER_ATTENTION_F16)
                          : (d->caps.subgroups ? VK_SHADER_ATTENTION_F32_SUBGROUP : VK_SHADER_ATTENTION_F32);
    const bool lanes = attention_lanes_ok(d, q, kc, vc, head_dim, n_head, n_head_kv);
    if (lanes) id = f16 ? VK_SHADER_ATTENTION_LANES_F16 : VK_SHADER_ATTENTION_LANES_F32;
    vk_buffer *bufs[] = {q, kc, vc, o, kv_chunk ? part : o}; /* unsplit: binding 4 unused */
    vk_push_attention pc = {.head_dim = head_dim,
                            .n_head = n_head,
                            .n_head_kv = n_head_kv,
                            .n_tok = n_tok,
                            .pos0 = pos0,
                            .n_ctx = n_ctx,
                            .k_off = (uint32_t)k_off,
                            .v_off = (uint32_t)v_off,
                            .kv_chunk = kv_chunk};
    st = lanes ? attention_lanes_dispatch(d, id, bufs, 5, pc, n_split, err)
               : attention_dispatch(d, id, bufs, 5, pc, n_split, err);
    if (st != SLUICE_OK || !kv_chunk) return st;
    /* second pass: merge the chunks of each (token, head) */
    vk_step_barrier(d);
    const uint32_t spec[] = {ATTENTION_BLOCK};
    vk_pipeline *pm = vk_pipeline_get(d, VK_SHADER_ATTENTION_MERGE, 2, sizeof(vk_push_attention_merge), spec, 1, err);
    if (!pm) return err ? err->status : SLUICE_ERR_UNSUPPORTED;
    vk_buffer *mbufs[] = {part, o};
    uint32_t max_y = d->info.max_wg_count[1];
    for (uint32_t tok0 = 0; tok0 < n_tok; tok0 += max_y) {
        uint32_t n = n_tok - tok0 < max_y ? n_tok - tok0 : max_y;
        vk_push_attention_merge mc = {
            .head_dim = head_dim, .n_head = n_head, .n_tok = n_tok, .n_split = n_split, .tok0 = tok0};
        if ((st = vk_record_dispatch(d, pm, mbufs, &mc, n_head, n, 1, err)) != SLUICE_OK) return st;
    }
    return SLUICE_OK;
}

/* ---- paged attention, block copies ---- */

sluice_status vk_op_attention_paged(vk_device *d, bool f16, vk_buffer *q, vk_buffer *kc, vk_buffer *vc, vk_buffer *o,
                                    vk_buffer *info, uint32_t info_off, uint32_t head_dim, uint32_t n_head,
                                    uint32_t n_head_kv, uint32_t n_tok, uint32_t n_slots, sluice_error *err) {
    sluice_status st = attention_heads_ok(d, head_dim, n_head, n_head_kv, err);
    if (st != SLUICE_OK) return st;
    if (!n_tok || !n_head) return SLUICE_OK;
    uint64_t elem = f16 ? 2 : 4, cache = (uint64_t)n_slots * n_head_kv * head_dim;
    uint64_t qo = (uint64_t)n_tok * n_head * head_dim * sizeof(float);
    if (qo > q->size || qo > o->size || (cache * elem + 3) / 4 * 4 > kc->size || (cache * elem + 3) / 4 * 4 > vc->size ||
        cache > UINT32_MAX || (info_off + 2ull * n_tok) * 4 > info->size || n_slots % VK_KV_BLOCK)
        return sluice_fail(err, SLUICE_ERR_ARG, "attention: %u tokens x %u heads x %u or a %u-slot cache do not fit their buffers",
                           n_tok, n_head, head_dim, n_slots);
    vk_shader_id id = f16 ? (d->caps.subgroups ? VK_SHADER_ATTENTION_PAGED_F16_SUBGROUP : VK_SHADER_ATTENTION_PAGED_F16)
                          : (d->caps.subgroups ? VK_SHADER_ATTENTION_PAGED_F32_SUBGROUP : VK_SHADER_ATTENTION_PAGED_F32);
    vk_buffer *bufs[] = {q, kc, vc, o, o, info}; /* binding 4 (split partials) unused */
    vk_push_attention pc = {
        .head_dim = head_dim, .n_head = n_head, .n_head_kv = n_head_kv, .n_tok = n_tok, .n_ctx = n_slots, .info_off = info_off};
    if (attention_lanes_ok(d, q, kc, vc, head_dim, n_head, n_head_kv))
        return attention_lanes_dispatch(d, f16 ? VK_SHADER_ATTENTION_LANES_PAGED_F16 : VK_SHADER_ATTENTION_LANES_PAGED_F32,
                                        bufs, 6, pc, 1, err);
    return attention_dispatch(d, id, bufs, 6, pc, 1, err);
}

sluice_status vk_op_copy_regions(vk_device *d, vk_buffer *src, uint64_t src_off, uint64_t src_stride, vk_buffer *dst,
                                 uint64_t dst_off, uint64_t dst_stride, uint64_t n, uint32_t n_regions,
                                 sluice_error *err) {
    VK_ASSERT(d->recording);
    if (!n || !n_regions) return SLUICE_OK;
    uint64_t last_s = src_off + (uint64_t)(n_regions - 1) * src_stride + n;
    uint64_t last_d = dst_off + (uint64_t)(n_regions - 1) * dst_stride + n;
    if (last_s > src->size || last_d > dst->size)
        return sluice_fail(err, SLUICE_ERR_ARG, "copy: %u regions of %llu bytes do not fit their buffers", n_regions,
                           (unsigned long long)n);
    VkBufferCopy *r = malloc(sizeof *r * n_regions);
    if (!r) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n_regions; i++)
        r[i] = (VkBufferCopy){.srcOffset = src_off + i * src_stride, .dstOffset = dst_off + i * dst_stride, .size = n};
    d->vk.vkCmdCopyBuffer(d->cmd, src->buf, dst->buf, n_regions, r);
    free(r);
    return SLUICE_OK;
}
