// mul_mat.comp — matrix times matrix for prompt batches:
//   y[y_off + t * y_stride + r] = sum_c W[r, c] * x[x_off + t * x_stride + c]
//   for r < rows, t < n_tok
// W: (rows, cols) in its GGUF weight type, raw bytes at byte w_off (a
// multiple of 4) of binding 0, rows row_bytes apart, dequantized here
// (common/wq.glsl; weights stay quantized in device memory); x: n_tok rows
// of F32 activations; y: n_tok rows of F32 outputs.
//
// Every output is one fixed-order sum over the columns, whatever tile or
// dispatch it falls in: a token's result does not depend on which other
// tokens share the batch (batch-invariant) nor on scheduling (bit-identical
// reruns). Two layouts, chosen by specialization constant 2:
//
// LANE_ROWS (CPU devices without 8-lane subgroups; with them,
// mul_mat_lanes.comp is faster): each invocation owns LANE_R rows
// (specialization constant 3) and TOKS tokens (specialization constant 1);
// it dequantizes each 32-column unit of its rows once into registers and
// multiplies it into all TOKS tokens, each activation load feeding LANE_R
// rows. Lanes of a workgroup read the same x addresses, through a uniform
// buffer where the host can bind one (X_UBO: on llvmpipe a uniform-buffer
// load is one gather, a storage-buffer load a loop over the lanes; 2-3x
// faster here), W as texels where a texel view spans it (W_TEXEL), and
// the decode cost is shared by TOKS tokens. Sum order: per unit four
// interleaved 8-term sums combined as (0 + 1) + (2 + 3), units added in
// order; the same with or without X_UBO or W_TEXEL.
//
// Tiled (GPUs): a workgroup of 128 invocations computes a 64-row x 32-token
// tile. Per 32-column step, invocations 0..63 decode one unit of one row
// each into shared memory while 64..127 load the 32 x 32 activation tile;
// then each invocation accumulates a 4 x 4 block of outputs from shared
// memory (rows tid % 16 + 16 i, tokens tid / 16 + 8 j). Sum order: column
// by column, in order. With -DFP16=1 (devices with fp16 arithmetic:
// vk_kernel_caps.fp16) the tiles are half precision and each product is
// formed in half precision, summed in float: half the shared memory and,
// on GPUs with fast fp16, twice the multiply rate, at a relative rounding
// of ~1e-3 per product (NMSE ~1e-7 on whole rows).
// Mirror of the push constants: vk_push_mul_mat in backend/vulkan/ops.h.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define TILE_T float16_t
#else
#define TILE_T float
#endif

layout(constant_id = 0) const uint BLOCK = 128;  // invocations; 128 in the tiled layout
layout(constant_id = 1) const uint TOKS = 8;     // LANE_ROWS: tokens per invocation, <= 16
layout(constant_id = 2) const bool LANE_ROWS = false;
layout(constant_id = 3) const uint LANE_R = 4;   // LANE_ROWS: rows per invocation, <= 4
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef W_TEXEL
// W as a uniform texel buffer of R32_UINT words (CPU devices: llvmpipe
// fetches texels with one gather per load, storage-buffer words with a
// loop over the lanes)
layout(binding = 0) uniform usamplerBuffer wt;
#define WQ_WORD(i) texelFetch(wt, int(i)).x
#else
layout(binding = 0) readonly buffer W { uint wq[]; };
#endif
#ifdef X_UBO
// x as a uniform buffer (bound window of at most 64 KiB): for LANE_ROWS on
// CPU devices, where a uniform-buffer load at an address shared by all
// lanes is one scalar load, and a storage-buffer load is one per lane
layout(binding = 1, std140) uniform XU { vec4 xu[4096]; };
#else
layout(binding = 1) readonly buffer X { float x[]; };
#endif
layout(binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint rows;
    uint cols;
    uint n_tok;
    uint row_bytes;  // bytes from one row of W to the next
    uint w_off;      // bytes, multiple of 4
    uint x_off;      // floats
    uint x_stride;   // floats from one token's x to the next
    uint y_off;      // floats
    uint y_stride;   // floats from one token's y to the next
    uint row0;       // first row of this dispatch
    uint tok0;       // first token of this dispatch
    uint accumulate; // LANE_ROWS: 1: y += the products (a column part after the first)
    uint u0, u1;     // LANE_ROWS: the 32-column units of this dispatch (a column part)
    uint pad0, pad1;
} p;

#include "common/wq.glsl"

// Columns 32u..32u+31 of the row starting at byte wrow, dequantized
// (plain types: zero beyond cols).
void row_unit(uint wrow, uint u, out float v[32]) {
#if defined(WQ_PLAIN)
    const uint c0 = 32u * u;
    for (uint e = 0u; e < 32u; e++) v[e] = c0 + e < p.cols ? wq_elem(wrow, c0 + e) : 0.0;
#else
    wq_unit(wrow + (u / WQ_UNITS) * QB_BYTES, u % WQ_UNITS, v);
#endif
}

const uint TM = 64u, TN = 32u;  // tiled layout: rows x tokens per workgroup
shared TILE_T ws[TM * 33u];     // (row, column) of the current 32 columns, padded
shared TILE_T xs[TN * 33u];     // (token, column)

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint n_units = (p.cols + 31u) / 32u;
    if (LANE_ROWS) {
        // LANE_R rows per invocation (rows tid, tid + BLOCK, ... of the
        // workgroup's BLOCK * LANE_R): each activation load then feeds
        // LANE_R rows' products. Lanes past the last row compute row
        // rows - 1 again and store nothing (no divergent return).
        const uint rbase = p.row0 + gl_WorkGroupID.x * BLOCK * LANE_R;
        const uint t0 = p.tok0 + gl_WorkGroupID.y * TOKS;
        if (rbase >= p.rows || t0 >= p.n_tok) return;  // uniform over the workgroup
        const uint nt = min(TOKS, p.n_tok - t0);      // uniform over the workgroup
        uint wrow[LANE_R];
        for (uint r = 0u; r < LANE_R; r++) wrow[r] = p.w_off + min(rbase + r * BLOCK + tid, p.rows - 1u) * p.row_bytes;
        float acc[LANE_R * 16u];
        for (uint i = 0u; i < LANE_R * TOKS; i++) acc[i] = 0.0;
        for (uint u = p.u0; u < p.u1; u++) {
            float v[LANE_R * 32u];
            for (uint r = 0u; r < LANE_R; r++) {
                float vr[32];
                row_unit(wrow[r], u, vr);
                for (uint e = 0u; e < 32u; e++) v[32u * r + e] = vr[e];
            }
            // Per (row, token): four interleaved sums (element e into lane
            // e % 4), then (0 + 1) + (2 + 3); `precise` keeps the compiler
            // from fusing differently in the two variants, so a token's
            // result is the same bits through either (batch invariance).
#ifdef X_UBO
            // the window starts at token tok0 and unit u0; x_off, x_stride
            // and cols are multiples of 4 (vk_op_mul_mat checks)
            const uint xc = (p.x_off + (t0 - p.tok0) * p.x_stride + 32u * (u - p.u0)) >> 2;
#else
            const uint xc = p.x_off + t0 * p.x_stride + 32u * u;
            const uint ne = min(32u, p.cols - 32u * u);  // < 32: the plain types' last unit
#endif
            for (uint j = 0u; j < nt; j++) {
                precise vec4 s4[LANE_R];
                for (uint r = 0u; r < LANE_R; r++) s4[r] = vec4(0.0);
                for (uint e = 0u; e < 8u; e++) {
                    const uint c = 4u * e;
#ifdef X_UBO
                    const vec4 xv = xu[xc + ((j * p.x_stride) >> 2) + e];
#else
                    const uint xb = xc + j * p.x_stride;
                    const vec4 xv = vec4(c < ne ? x[xb + c] : 0.0, c + 1u < ne ? x[xb + c + 1u] : 0.0,
                                         c + 2u < ne ? x[xb + c + 2u] : 0.0, c + 3u < ne ? x[xb + c + 3u] : 0.0);
#endif
                    for (uint r = 0u; r < LANE_R; r++)
                        s4[r] += vec4(v[32u * r + c], v[32u * r + c + 1u], v[32u * r + c + 2u], v[32u * r + c + 3u]) * xv;
                }
                for (uint r = 0u; r < LANE_R; r++) acc[r * TOKS + j] += (s4[r].x + s4[r].y) + (s4[r].z + s4[r].w);
            }
        }
        for (uint r = 0u; r < LANE_R; r++) {
            const uint row = rbase + r * BLOCK + tid;
            if (row < p.rows)
                for (uint j = 0u; j < nt; j++) {
                    const uint yi = p.y_off + (t0 + j) * p.y_stride + row;
                    y[yi] = p.accumulate != 0u ? y[yi] + acc[r * TOKS + j] : acc[r * TOKS + j];
                }
        }
        return;
    }

#ifdef X_UBO
}
#else
    const uint rb = p.row0 + gl_WorkGroupID.x * TM, tb = p.tok0 + gl_WorkGroupID.y * TN;
    if (rb >= p.rows || tb >= p.n_tok) return;  // uniform over the workgroup
    const uint tr = tid % 16u, tc = tid / 16u;
    float acc[16];
    for (uint i = 0u; i < 16u; i++) acc[i] = 0.0;
    for (uint u = 0u; u < n_units; u++) {
        if (tid < TM) {
            float v[32];
            const uint row = rb + tid;
            if (row < p.rows) row_unit(p.w_off + row * p.row_bytes, u, v);
            else
                for (uint e = 0u; e < 32u; e++) v[e] = 0.0;
            for (uint e = 0u; e < 32u; e++) ws[tid * 33u + e] = TILE_T(v[e]);
        } else {
            // 64 invocations x 16 elements: token (k / 2), columns 16 (k & 1) + 0..15
            const uint k = tid - TM, t = tb + k / 2u, c0 = 32u * u + 16u * (k & 1u);
            for (uint e = 0u; e < 16u; e++) {
                const uint c = c0 + e;
                xs[(k / 2u) * 33u + 16u * (k & 1u) + e] =
                    TILE_T(t < p.n_tok && c < p.cols ? x[p.x_off + t * p.x_stride + c] : 0.0);
            }
        }
        barrier();
        for (uint e = 0u; e < 32u; e++) {
            TILE_T a[4], b[4];
            for (uint i = 0u; i < 4u; i++) a[i] = ws[(tr + 16u * i) * 33u + e];
            for (uint j = 0u; j < 4u; j++) b[j] = xs[(tc + 8u * j) * 33u + e];
            // FP16: products in half precision, sums in float
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[4u * i + j] += float(a[i] * b[j]);
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) {
            const uint row = rb + tr + 16u * i, t = tb + tc + 8u * j;
            if (row < p.rows && t < p.n_tok) y[p.y_off + t * p.y_stride + row] = acc[4u * i + j];
        }
}
#endif
