// get_rows.comp — embedding lookup: rows of a weight matrix by token id,
// dequantized to F32:
//   d[d_off + t * cols + c] = W[ids[ids_off + t], c]   for t < n_tok
// W: (n_rows, cols) in its GGUF weight type, raw bytes at byte w_off (a
// multiple of 4) of binding 0, rows row_bytes apart; the type is one
// -DW_<TYPE> (common/wq.glsl). An id outside 0..n_rows-1 gives a row of
// zeros (never a read outside W). Each element is formed exactly as
// quant_dequantize_row_ref forms it (`precise`: no fused multiply-add), so
// the result matches the CPU bit for bit.
//
// One workgroup per token; its BLOCK invocations (specialization constant
// 0) take the row's units in turn: single elements for F32 and F16,
// 32-element sub-blocks for the block types. No reductions, so the result
// does not depend on scheduling.
// Mirror of the push constants: vk_push_get_rows in backend/vulkan/ops.h.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer W { uint wq[]; };
layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform P {
    uint cols;
    uint n_tok;
    uint n_rows;     // rows of W: valid ids are 0..n_rows-1
    uint row_bytes;  // bytes from one row of W to the next
    uint w_off;      // bytes, multiple of 4
    uint ids_off;    // ints
    uint d_off;      // floats
    uint tok0;       // first token of this dispatch (dispatches split over tokens)
} p;

#include "common/wq.glsl"

#if !defined(W_F32) && !defined(W_F16)
#define UNITS (QB_ELEMS / 32u)  // 32-element units per block

// Writes unit j (elements 32j..32j+31) of the block at byte wb to d[o..o+31].
void unit_get(uint wb, uint o, uint j) {
#if defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
#if defined(W_Q4_0)
    const uint qs = wb + 2u;
#elif defined(W_Q4_1)
    const uint qs = wb + 4u;
#elif defined(W_Q5_0)
    const uint qs = wb + 6u, qh = wq_u32(wb + 2u);
#else
    const uint qs = wb + 8u, qh = wq_u32(wb + 4u);
#endif
    const float dd = wq_f16(wb);
#if defined(W_Q4_1) || defined(W_Q5_1)
    const float m = wq_f16(wb + 2u);
#define WQ(q) (dd * float(q) + m)
#elif defined(W_Q4_0)
#define WQ(q) (dd * float(int(q) - 8))
#else
#define WQ(q) (dd * float(int(q) - 16))
#endif
    for (uint k = 0u; k < 4u; k++) {
        const uint q = wq_u32(qs + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            const uint e = 4u * k + t;
            uint lo = (q >> (8u * t)) & 15u, hi = (q >> (8u * t + 4u)) & 15u;
#if defined(W_Q5_0) || defined(W_Q5_1)
            lo |= ((qh >> e) & 1u) << 4;
            hi |= ((qh >> (e + 16u)) & 1u) << 4;
#endif
            precise float a = WQ(lo), b = WQ(hi);
            d[o + e] = a;
            d[o + e + 16u] = b;
        }
    }
#undef WQ

#elif defined(W_Q8_0)
    const float dd = wq_f16(wb);
    for (uint k = 0u; k < 8u; k++) {
        const uint q = wq_u32(wb + 2u + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            precise float v = dd * float(i8_of(q, t));
            d[o + 4u * k + t] = v;
        }
    }

#elif defined(W_Q4_K) || defined(W_Q5_K)
    // (d * sc) * q - dmin * mn, as the CPU reference
    const uvec2 sm = k_scale_min(wb, j);
    precise float dsc = wq_f16(wb) * float(sm.x), dmn = wq_f16(wb + 2u) * float(sm.y);
#if defined(W_Q4_K)
    const uint qs = wb + 16u + 32u * (j >> 1);
#else
    const uint qs = wb + 48u + 32u * (j >> 1), qh = wb + 16u;
#endif
    const uint nib = 4u * (j & 1u);
    for (uint k = 0u; k < 8u; k++) {
        const uint q = wq[(qs >> 2) + k];
#if defined(W_Q5_K)
        const uint h = wq[(qh >> 2) + k];
#endif
        for (uint t = 0u; t < 4u; t++) {
            uint v = (q >> (8u * t + nib)) & 15u;
#if defined(W_Q5_K)
            v |= ((h >> (8u * t + j)) & 1u) << 4;
#endif
            precise float y = dsc * float(v) - dmn;
            d[o + 4u * k + t] = y;
        }
    }

#elif defined(W_Q6_K)
    // unit j = 4h + s (layout: mul_mat_vec.comp); (d * scale) * (q - 32)
    const uint h = j >> 2, s = j & 3u;
    const uint ql = wb + 64u * h + 32u * (s & 1u), qh = wb + 128u + 32u * h;
    const uint nib = 4u * (s >> 1);
    const float dd = wq_f16(wb + 208u);
    const uint sc = wb + 192u + 2u * j;  // scales[16], groups 2j and 2j+1
    precise float ds0 = dd * float(bitfieldExtract(int(wq_u8(sc)), 0, 8));
    precise float ds1 = dd * float(bitfieldExtract(int(wq_u8(sc + 1u)), 0, 8));
    for (uint k = 0u; k < 8u; k++) {
        const uint lq = wq_u32(ql + 4u * k), hq = wq_u32(qh + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            const uint v = ((lq >> (8u * t + nib)) & 15u) | (((hq >> (8u * t + 2u * s)) & 3u) << 4);
            precise float y = (k < 4u ? ds0 : ds1) * float(int(v) - 32);
            d[o + 4u * k + t] = y;
        }
    }
#endif
}
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint t = p.tok0 + gl_WorkGroupID.x;
    if (t >= p.n_tok) return;
    const int id = ids[p.ids_off + t];
    const uint o = p.d_off + t * p.cols;
    if (id < 0 || uint(id) >= p.n_rows) {
        for (uint c = tid; c < p.cols; c += BLOCK) d[o + c] = 0.0;
        return;
    }
    const uint wrow = p.w_off + uint(id) * p.row_bytes;
#if defined(W_F32)
    for (uint c = tid; c < p.cols; c += BLOCK) d[o + c] = uintBitsToFloat(wq[(wrow >> 2) + c]);
#elif defined(W_F16)
    for (uint c = tid; c < p.cols; c += BLOCK) d[o + c] = wq_f16(wrow + 2u * c);
#else
    const uint n_units = p.cols / 32u;
    for (uint u = tid; u < n_units; u += BLOCK) unit_get(wrow + (u / UNITS) * QB_BYTES, o + 32u * u, u % UNITS);
#endif
}
