// get_rows.comp — embedding lookup: rows of a weight matrix by token id,
// dequantized to F32:
//   d[d_off + t * cols + c] = W[ids[ids_off + t], c]   for t < n_tok
// W: (n_rows, cols) in its GGUF weight type, raw bytes at byte w_off (a
// multiple of 4) of binding 0, rows row_bytes apart; the type is one
// -DW_<TYPE> (common/wq.glsl). An id outside 0..n_rows-1 gives a row of
// zeros (never a read outside W). Each element is formed exactly as
// quant_dequantize_row_ref forms it (wq_unit in common/wq.glsl), so the
// result matches the CPU bit for bit.
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
    uint id0;        // id of W's first row: W may be one part of a table split by rows
    uint skip_outside;  // 1: ids outside this part leave their rows of d alone
    uint pad0, pad1;
} p;

#include "common/wq.glsl"

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint t = p.tok0 + gl_WorkGroupID.x;
    if (t >= p.n_tok) return;
    const int id = ids[p.ids_off + t] - int(p.id0);
    const uint o = p.d_off + t * p.cols;
    if (id < 0 || uint(id) >= p.n_rows) {
        if (p.skip_outside != 0u) return;
        for (uint c = tid; c < p.cols; c += BLOCK) d[o + c] = 0.0;
        return;
    }
    const uint wrow = p.w_off + uint(id) * p.row_bytes;
#if defined(WQ_PLAIN)
    for (uint c = tid; c < p.cols; c += BLOCK) d[o + c] = wq_elem(wrow, c);
#else
    const uint n_units = p.cols / 32u;
    for (uint u = tid; u < n_units; u += BLOCK) {
        float v[32];
        wq_unit(wrow + (u / WQ_UNITS) * QB_BYTES, u % WQ_UNITS, v);
        for (uint e = 0u; e < 32u; e++) d[o + 32u * u + e] = v[e];
    }
#endif
}
