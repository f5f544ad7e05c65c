// add.comp — residual add, in place (engine/forward.c's x += xb):
//   x[x_off + i] += y[y_off + i % y_n]   for i < n
// (y_n = n: a plain add; y_n < n: one row added to every row, a bias)
// x, y: F32. One invocation per element (no reductions: the result does
// not depend on scheduling); workgroups of BLOCK (specialization constant
// 0), dispatches split over elements from i0.
// Mirror of the push constants: vk_push_eltwise in backend/vulkan/ops.h.
// -DTEXEL=1 (CPU devices, ops.c eltwise): the inputs are read through
// R32 uniform texel views (binding 1: y, binding 2: x again), a gather on
// llvmpipe where a storage-buffer load loops over the lanes.
#version 450

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) buffer X { float x[]; };
#ifdef TEXEL
layout(binding = 1) uniform usamplerBuffer yt;
layout(binding = 2) uniform usamplerBuffer xt;
#define LOAD_X(i) uintBitsToFloat(texelFetch(xt, int(i)).x)
#define LOAD_Y(i) uintBitsToFloat(texelFetch(yt, int(i)).x)
#else
layout(binding = 1) readonly buffer Y { float y[]; };
#define LOAD_X(i) x[i]
#define LOAD_Y(i) y[i]
#endif

layout(push_constant) uniform P {
    uint n;
    uint x_off;  // floats of x
    uint y_off;  // floats of y
    uint i0;     // first element of this dispatch
    uint y_n;    // y repeats every y_n elements
    uint pad0, pad1, pad2;
} p;

void main() {
    const uint i = p.i0 + gl_GlobalInvocationID.x;
    if (i >= p.n) return;
    x[p.x_off + i] = LOAD_X(p.x_off + i) + LOAD_Y(p.y_off + i % p.y_n);
}
