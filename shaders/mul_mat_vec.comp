// mul_mat_vec.comp — matrix times vector for generation:
//   y[y_off + r] = sum_c W[r, c] * x[x_off + c]   for r < rows
// W: (rows, cols) in its GGUF weight type, raw bytes at byte w_off (a
// multiple of 4) of binding 0, rows row_bytes apart; x, y: F32. The type is
// one -DW_<TYPE> (common/wq.glsl); blocks are decoded here, so weights stay
// quantized in device memory. W is read as uint32 words on every device.
//
// One workgroup per ROWS rows (specialization constant 1, <= BLOCK). Its
// BLOCK invocations (specialization constant 0, a power of two) take each
// row's units in turn: single elements for F32, F16 and BF16, 32-element
// sub-blocks for the block types, each summed in a fixed order. The
// per-invocation sums of a row are combined by a fixed-order tree in
// shared memory, or with -DSUBGROUP=1 by subgroupAdd and then in subgroup
// order (needs subgroup arithmetic: vk_kernel_caps.subgroups): the result
// does not depend on scheduling. With LANE_ROWS (specialization constant
// 2, CPU devices) each invocation sums a whole row alone instead: 16
// interleaved sums and a fixed tree for F32/F16, units in order for the
// block types; as deterministic, in a different order.
// Mirror of the push constants: vk_push_mul_mat_vec in backend/vulkan/ops.h.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint BLOCK = 128;
layout(constant_id = 1) const uint ROWS = 1;  // rows per workgroup, <= BLOCK
// LANE_ROWS: each invocation takes a whole row alone, BLOCK rows per
// workgroup (ROWS then 1, unused), no reduction. For CPU devices: every
// lane reads the same x address at once (cheap there), but W reads do not
// coalesce, so GPUs keep the default split path.
layout(constant_id = 2) const bool LANE_ROWS = false;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer W { uint wq[]; };
#ifdef X_UBO
// x as a uniform buffer (a bound window of at most 64 KiB), LANE_ROWS only:
// on a CPU device (llvmpipe) every lane reads the same x address, which a
// uniform-buffer load does once while a storage-buffer load loops over
// the lanes (see mul_mat.comp)
layout(binding = 1, std140) uniform XU { vec4 xu[4096]; };
#define XF(i) xu[(i) >> 2][(i) & 3u]
#else
layout(binding = 1) readonly buffer X { float x[]; };
#define XF(i) x[i]
#endif
layout(binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint rows;
    uint cols;
    uint row_bytes;  // bytes from one row of W to the next
    uint w_off;      // bytes, multiple of 4
    uint x_off;      // floats
    uint y_off;      // floats
    uint row0;       // first row of this dispatch (dispatches split over rows)
    uint pad;
} p;

#include "common/wq.glsl"

shared float partial[ROWS * BLOCK];  // (row, invocation or subgroup)

#if !defined(WQ_PLAIN)

// Dot product of unit j (elements 32j..32j+31) of the block at byte wb
// with x[xb .. xb+31].
float unit_dot(uint wb, uint xb, uint j) {
#if defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
    // x = d * (q - bias) (d applied once per unit; q - bias is exact) or
    // d * q + m (formed per element as the CPU reference does);
    const q4x_block h = q4x_header(wb);
#if defined(W_Q4_1) || defined(W_Q5_1)
#define WQ(q) (h.dd * float(q) + h.m)
#elif defined(W_Q4_0)
#define WQ(q) (float(q) - 8.0)
#else
#define WQ(q) (float(q) - 16.0)
#endif
    float s = 0.0;
    for (uint k = 0u; k < 4u; k++) {
        const uint q = wq_u32(h.qs + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            const uint e = 4u * k + t;
            uint lo = (q >> (8u * t)) & 15u, hi = (q >> (8u * t + 4u)) & 15u;
#if defined(W_Q5_0) || defined(W_Q5_1)
            lo |= ((h.qh >> e) & 1u) << 4;
            hi |= ((h.qh >> (e + 16u)) & 1u) << 4;
#endif
            s += WQ(lo) * XF(xb + e) + WQ(hi) * XF(xb + e + 16u);
        }
    }
#undef WQ
#if defined(W_Q4_1) || defined(W_Q5_1)
    return s;
#else
    return h.dd * s;
#endif

#elif defined(W_Q8_0)
    float s = 0.0;
    for (uint k = 0u; k < 8u; k++) {
        const uint q = wq_u32(wb + 2u + 4u * k);
        for (uint t = 0u; t < 4u; t++) s += float(i8_of(q, t)) * XF(xb + 4u * k + t);
    }
    return wq_f16(wb) * s;

#elif defined(W_Q4_K) || defined(W_Q5_K)
    // x = d * sc * q - dmin * mn, formed per element as the CPU reference
    // does (the two terms nearly cancel: factored out, rounding would grow);
    // q: nibble (j odd: high) of qs[32 (j/2) + l], Q5_K: bit j of qh[l] on top
    const uvec2 sm = k_scale_min(wb, j);
    const float dsc = wq_f16(wb) * float(sm.x), dmn = wq_f16(wb + 2u) * float(sm.y);
#if defined(W_Q4_K)
    const uint qs = wb + 16u + 32u * (j >> 1);
#else
    const uint qs = wb + 48u + 32u * (j >> 1), qh = wb + 16u;
#endif
    const uint nib = 4u * (j & 1u);
    float s = 0.0;
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
            s += (dsc * float(v) - dmn) * XF(xb + 4u * k + t);
        }
    }
    return s;

#elif defined(W_Q6_K)
    // unit j = 4h + s: elements 128h + 32s + l; low 4 bits from
    // ql[64h + 32(s&1) + l] (high nibble when s >= 2), top 2 bits from
    // qh[32h + l] >> 2s; groups of 16 share a signed scale
    const uint h = j >> 2, s = j & 3u;
    const uint ql = wb + 64u * h + 32u * (s & 1u), qh = wb + 128u + 32u * h;
    const uint nib = 4u * (s >> 1);
    float g[2] = float[2](0.0, 0.0);
    for (uint k = 0u; k < 8u; k++) {
        const uint lq = wq_u32(ql + 4u * k), hq = wq_u32(qh + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            const uint v = ((lq >> (8u * t + nib)) & 15u) | (((hq >> (8u * t + 2u * s)) & 3u) << 4);
            g[k >> 2] += (float(v) - 32.0) * XF(xb + 4u * k + t);
        }
    }
    const uint sc = wb + 192u + 2u * j;  // scales[16], groups 2j and 2j+1
    const float sc0 = float(bitfieldExtract(int(wq_u8(sc)), 0, 8));
    const float sc1 = float(bitfieldExtract(int(wq_u8(sc + 1u)), 0, 8));
    return wq_f16(wb + 208u) * (sc0 * g[0] + sc1 * g[1]);
#endif
}
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x;
    if (LANE_ROWS) {
        const uint row = p.row0 + gl_WorkGroupID.x * BLOCK + tid;
        if (row >= p.rows) return;
        const uint wrow = p.w_off + row * p.row_bytes;
#if defined(WQ_PLAIN)
        // 16 interleaved sums (element c into a[c / 4 % 4][c % 4]),
        // combined by a fixed tree: rounding close to the split path's
        vec4 a[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
        const uint n = p.cols;
#define LANE_TERM(c) ((c) < n ? wq_elem(wrow, c) * XF(p.x_off + (c)) : 0.0)
        for (uint c = 0u; c < n; c += 16u)
            for (uint q = 0u; q < 4u; q++) {
                const uint e = c + 4u * q;
                a[q] += vec4(LANE_TERM(e), LANE_TERM(e + 1u), LANE_TERM(e + 2u), LANE_TERM(e + 3u));
            }
#undef LANE_TERM
        const vec4 v = (a[0] + a[1]) + (a[2] + a[3]);
        const float s = (v.x + v.y) + (v.z + v.w);
#else
        // units in order (each already a 32-element fixed-order sum)
        float s = 0.0;
        const uint n_units = p.cols / 32u;
        for (uint u = 0u; u < n_units; u++)
            s += unit_dot(wrow + (u / WQ_UNITS) * QB_BYTES, p.x_off + 32u * u, u % WQ_UNITS);
#endif
        y[p.y_off + row] = s;
        return;
    }

    const uint row_base = p.row0 + gl_WorkGroupID.x * ROWS;
    if (row_base >= p.rows) return;  // uniform over the workgroup

    // each invocation's share of each of the workgroup's rows
    for (uint r = 0u; r < ROWS; r++) {
        const uint row = row_base + r;
        float s = 0.0;
        if (row < p.rows) {  // uniform over the workgroup
            const uint wrow = p.w_off + row * p.row_bytes;
#if defined(WQ_PLAIN)
            for (uint c = tid; c < p.cols; c += BLOCK) s += wq_elem(wrow, c) * XF(p.x_off + c);
#else
            const uint n_units = p.cols / 32u;
            for (uint u = tid; u < n_units; u += BLOCK)
                s += unit_dot(wrow + (u / WQ_UNITS) * QB_BYTES, p.x_off + 32u * u, u % WQ_UNITS);
#endif
        }
#ifdef SUBGROUP
        s = subgroupAdd(s);
        if (subgroupElect()) partial[r * BLOCK + gl_SubgroupID] = s;
#else
        partial[r * BLOCK + tid] = s;
#endif
    }
    barrier();

#ifdef SUBGROUP
    if (tid < ROWS && row_base + tid < p.rows) {
        float total = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) total += partial[tid * BLOCK + i];
        y[p.y_off + row_base + tid] = total;
    }
#else
    for (uint h = BLOCK / 2u; h > 0u; h >>= 1) {
        if (tid < h)
            for (uint r = 0u; r < ROWS; r++) partial[r * BLOCK + tid] += partial[r * BLOCK + tid + h];
        barrier();
    }
    if (tid < ROWS && row_base + tid < p.rows) y[p.y_off + row_base + tid] = partial[tid * BLOCK];
#endif
}
