// silu_mul.comp — the SwiGLU gate, in place (engine/forward.c ROW_SWIGLU):
//   g[g_off + i] = g[g_off + i] / (1 + exp(-g[g_off + i])) * u[u_off + i]   for i < n
// g, u: F32. One invocation per element (no reductions: the result does
// not depend on scheduling); workgroups of BLOCK (specialization constant
// 0), dispatches split over elements from i0.
// Mirror of the push constants: vk_push_eltwise in backend/vulkan/ops.h.
// -DTEXEL=1 (CPU devices, ops.c eltwise): the inputs are read through
// R32 uniform texel views (binding 1: u, binding 2: g again), a gather on
// llvmpipe where a storage-buffer load loops over the lanes.
#version 450

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) buffer G { float g[]; };
#ifdef TEXEL
layout(binding = 1) uniform usamplerBuffer ut;
layout(binding = 2) uniform usamplerBuffer gt;
#define LOAD_G(i) uintBitsToFloat(texelFetch(gt, int(i)).x)
#define LOAD_U(i) uintBitsToFloat(texelFetch(ut, int(i)).x)
#else
layout(binding = 1) readonly buffer U { float u[]; };
#define LOAD_G(i) g[i]
#define LOAD_U(i) u[i]
#endif

layout(push_constant) uniform P {
    uint n;
    uint x_off;  // floats of g
    uint y_off;  // floats of u
    uint i0;     // first element of this dispatch
    uint y_n;    // y repeats every y_n elements
    uint pad0, pad1, pad2;
} p;

void main() {
    const uint i = p.i0 + gl_GlobalInvocationID.x;
    if (i >= p.n) return;
    const float v = LOAD_G(p.x_off + i);
    g[p.x_off + i] = v / (1.0 + exp(-v)) * LOAD_U(p.y_off + i);
}
