// rms_norm.comp — row-wise RMS norm times a weight vector:
//   d[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * w[i]
// x, d: (n_rows, n_cols) row-major; w: (n_cols). One workgroup per row;
// its BLOCK invocations (specialization constant 0, a power of two) stride
// over the columns and combine their partial sums by a fixed-order tree in
// shared memory, so the result does not depend on scheduling. Also serves
// the per-head Q/K norm (n_cols = head dim, one row per head and token).
// -DSUBGROUP=1: each subgroup reduces with subgroupAdd and the per-subgroup
// sums are added in subgroup order (needs subgroup arithmetic in compute;
// chosen by vk_kernel_caps.subgroups).
// -DTEXEL=1 (CPU devices): x and w are read through R32 uniform texel
// views, a gather on llvmpipe where a storage-buffer load loops over the
// lanes.
// Mirror of the push constants: vk_push_rms_norm in backend/vulkan/ops.h.
#version 450
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#ifdef TEXEL
layout(binding = 0) uniform usamplerBuffer xt;
layout(binding = 1) uniform usamplerBuffer wt;
#define LOAD_X(i) uintBitsToFloat(texelFetch(xt, int(i)).x)
#define LOAD_W(i) uintBitsToFloat(texelFetch(wt, int(i)).x)
#else
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
#define LOAD_X(i) x[i]
#define LOAD_W(i) w[i]
#endif
layout(binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform P {
    uint n_cols;
    uint n_rows;
    float eps;
    uint row0;   // first row of this dispatch (dispatches split over rows)
} p;

shared float partial[BLOCK];

void main() {
    const uint row = p.row0 + gl_WorkGroupID.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint base = row * p.n_cols;
    if (row >= p.n_rows) return;  // uniform over the workgroup

    float s = 0.0;
    for (uint i = tid; i < p.n_cols; i += BLOCK) {
        const float v = LOAD_X(base + i);
        s += v * v;
    }
#ifdef SUBGROUP
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float total = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) total += partial[i];
#else
    partial[tid] = s;
    barrier();
    for (uint h = BLOCK / 2; h > 0; h >>= 1) {
        if (tid < h) partial[tid] += partial[tid + h];
        barrier();
    }
    const float total = partial[0];
#endif
    const float scale = inversesqrt(total / float(p.n_cols) + p.eps);
    for (uint i = tid; i < p.n_cols; i += BLOCK) d[base + i] = LOAD_X(base + i) * scale * LOAD_W(i);
}
