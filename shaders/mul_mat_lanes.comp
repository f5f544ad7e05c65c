// mul_mat_lanes.comp — matrix times matrix on CPU devices (llvmpipe):
//   y[y_off + t * y_stride + r] = sum_c W[r, c] * x[x_off + t * x_stride + c]
//   for r < rows, t < n_tok
// the same contract and push constants as mul_mat.comp (vk_push_mul_mat;
// u0..u1 and accumulate give column parts), for devices whose subgroups
// are 8 lanes and where every load from a computed address is a gather
// (Mesa 22.3's llvmpipe: a storage-buffer load loops over the lanes, a
// uniform or texel load gathers the 8 lanes' addresses one by one).
//
// A workgroup is one subgroup of 8 lanes and computes ROWS rows x TOKS
// tokens. Lanes split the columns, not the rows: in each 32-column unit,
// lane l owns columns 4l..4l+3, so every gather fetches 8 different useful
// values: x as one vec4 per token from a uniform-buffer window, W as the
// few texel words holding the lane's 4 elements (common/wq.glsl
// wq_lane4). Each lane keeps ROWS x TOKS partial sums, which subgroupAdd
// combines at the end, four at a time. Compared with giving each lane a
// whole row (mul_mat.comp's LANE_ROWS, where all lanes gather the same x
// address for every element), this loads 8x fewer x values per product.
//
// Sum order, fixed whatever the batch or the scheduling (batch-invariant,
// bit-identical reruns): per lane and unit ((w0 x0 + w1 x1) + (w2 x2 +
// w3 x3)), units added in order, then the subgroup sum of the 8 lanes.
// Needs subgroup size 8 with arithmetic. x comes through a uniform-buffer
// window (x_off, x_stride multiples of 4, cols of 32) or, with -DX_SSBO=1,
// a storage buffer (any layout; plain weight types may then end in a
// partial unit). The two variants give the same bits.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(constant_id = 0) const uint ROWS = 8;  // rows per workgroup
layout(constant_id = 1) const uint TOKS = 16; // tokens per workgroup: 4, or a multiple of 8
layout(local_size_x = 8, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) uniform usamplerBuffer wt;  // W as R32_UINT words
#define WQ_WORD(i) texelFetch(wt, int(i)).x
#ifdef X_SSBO
// x as a storage buffer: any offset and stride (a loop over the lanes per
// load on llvmpipe, so the host prefers the uniform window)
layout(binding = 1) readonly buffer X { float x[]; };
#else
// x: a bound window of at most 64 KiB, starting at token tok0, unit u0
layout(binding = 1, std140) uniform XU { vec4 xu[4096]; };
#endif
layout(binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint rows;
    uint cols;
    uint n_tok;
    uint row_bytes;  // bytes from one row of W to the next
    uint w_off;      // bytes, multiple of 4
    uint x_off;      // floats, into the window
    uint x_stride;   // floats from one token's x to the next
    uint y_off;      // floats
    uint y_stride;   // floats from one token's y to the next
    uint row0;       // first row of this dispatch
    uint tok0;       // first token of this dispatch (the window's first)
    uint accumulate; // 1: y += the products (a column part after the first)
    uint u0, u1;     // the 32-column units of this dispatch (a column part)
    uint pad0, pad1;
} p;

#include "common/wq.glsl"

void main() {
    const uint l = gl_SubgroupInvocationID;
    const uint rbase = p.row0 + gl_WorkGroupID.x * ROWS;
    const uint t0 = p.tok0 + gl_WorkGroupID.y * TOKS;
    if (rbase >= p.rows || t0 >= p.n_tok) return;  // uniform over the workgroup
    const uint nt = min(TOKS, p.n_tok - t0);       // uniform over the workgroup
    uint wrow[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; r++) wrow[r] = p.w_off + min(rbase + r, p.rows - 1u) * p.row_bytes;
    precise float acc[ROWS * TOKS];
    [[unroll]] for (uint i = 0u; i < ROWS * TOKS; i++) acc[i] = 0.0;
#ifdef X_SSBO
    const uint xl0 = p.x_off + t0 * p.x_stride + 4u * l;  // this lane's first x of token t0
#else
    // this lane's vec4 of token t0's unit u0, in the window
    const uint xl0 = ((p.x_off + (t0 - p.tok0) * p.x_stride) >> 2) + l;
#endif
    for (uint u = p.u0; u < p.u1; u++) {
        vec4 xv[TOKS];
        // tokens past nt read the last one again (no divergent loads)
#ifdef X_SSBO
        const uint c0 = 32u * u + 4u * l;  // column of this lane's first element
        [[unroll]] for (uint j = 0u; j < TOKS; j++) {
            const uint xb = xl0 + 32u * u + min(j, nt - 1u) * p.x_stride;
            [[unroll]] for (uint t = 0u; t < 4u; t++) xv[j][t] = c0 + t < p.cols ? x[xb + t] : 0.0;
        }
#else
        const uint xc = xl0 + 8u * (u - p.u0);
        [[unroll]] for (uint j = 0u; j < TOKS; j++) xv[j] = xu[xc + ((min(j, nt - 1u) * p.x_stride) >> 2)];
#endif
        [[unroll]] for (uint r = 0u; r < ROWS; r++) {
            const vec4 w = wq_lane4(wrow[r], u, l, p.cols);
            [[unroll]] for (uint j = 0u; j < TOKS; j++) {
                acc[r * TOKS + j] = fma(w.w, xv[j].w, fma(w.z, xv[j].z, fma(w.y, xv[j].y, fma(w.x, xv[j].x, acc[r * TOKS + j]))));
            }
        }
    }
    // lanes sum four outputs at a time; lane k of each group of 8 outputs
    // then stores output k, so one store instruction writes 8 values
    [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        const uint row = rbase + r;
        [[unroll]] for (uint j8 = 0u; j8 < TOKS; j8 += 8u) {
            const vec4 a = subgroupAdd(vec4(acc[r * TOKS + j8], acc[r * TOKS + j8 + 1u], acc[r * TOKS + j8 + 2u],
                                            acc[r * TOKS + j8 + 3u]));
            vec4 b = a;  // TOKS 4: lanes 4..7 store nothing
            if (j8 + 4u < TOKS)
                b = subgroupAdd(vec4(acc[r * TOKS + j8 + 4u], acc[r * TOKS + j8 + 5u], acc[r * TOKS + j8 + 6u],
                                     acc[r * TOKS + j8 + 7u]));
            const vec4 s4 = l < 4u ? a : b;
            const float s = s4[l & 3u];
            const uint j = j8 + l;
            if (row < p.rows && j < nt) {
                const uint yi = p.y_off + (t0 + j) * p.y_stride + row;
                y[yi] = p.accumulate != 0u ? y[yi] + s : s;
            }
        }
    }
}
