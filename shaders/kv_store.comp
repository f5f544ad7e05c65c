// kv_store.comp — K and V rows of new tokens into the KV cache
// (engine/forward.c's kv_store), K as rows, V transposed:
//   kc[k_off + pos[t] * kvdim + i] = k[t * kvdim + i]
//   vc[v_off + i * n_ctx + pos[t]] = v[t * kvdim + i]     for t < n_tok, i < kvdim
// k, v: (n_tok, kvdim) F32; pos: (n_tok) int32 from pos_off, distinct,
// each in 0..n_ctx-1 (a token whose position is outside is skipped).
// Cache elements: F32, or with -DKV_F16=1 IEEE binary16 rounded to nearest
// even exactly as f32_to_fp16 (core/fp16.c) rounds, packed two to a
// uint32 word; k_off, v_off count elements.
//
// One invocation per (token, i). F16 halves of one word may belong to
// different tokens (V: neighbouring positions), so they are written with
// atomicAnd/atomicOr on their own 16 bits: no lost updates and, with
// distinct positions, one result whatever the scheduling.
// Workgroups of BLOCK (specialization constant 0) over x = i, y = token.
// Mirror of the push constants: vk_push_kv_store in backend/vulkan/ops.h.
#version 450

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer K { float k[]; };
layout(binding = 1) readonly buffer V { float v[]; };
layout(binding = 2) readonly buffer Pos { int pos[]; };
#ifdef KV_F16
layout(binding = 3) buffer KC { uint kc[]; };
layout(binding = 4) buffer VC { uint vc[]; };
#else
layout(binding = 3) writeonly buffer KC { float kc[]; };
layout(binding = 4) writeonly buffer VC { float vc[]; };
#endif

layout(push_constant) uniform P {
    uint kvdim;
    uint n_tok;
    uint n_ctx;
    uint k_off;    // elements of kc
    uint v_off;    // elements of vc
    uint pos_off;  // ints
    uint tok0;     // first token of this dispatch (dispatches split over tokens)
    uint pad;
} p;

#ifdef KV_F16
// f32 -> binary16 bits, round to nearest even, inf kept, NaN -> quiet NaN
// (core/fp16.c's f32_to_fp16, step for step).
uint f32_to_f16(float f) {
    const uint u = floatBitsToUint(f);
    const uint sign = (u >> 16) & 0x8000u;
    const uint a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return sign;
        const uint e = a >> 23;
        const uint m = (a & 0x7fffffu) | 0x800000u;
        const uint sh = 126u - e;
        uint q = m >> sh;
        const uint rem = m & ((1u << sh) - 1u), hf = 1u << (sh - 1u);
        if (rem > hf || (rem == hf && (q & 1u) != 0u)) q++;
        return sign | q;
    }
    uint q = (((a >> 23) - 112u) << 10) | ((a & 0x7fffffu) >> 13);
    const uint rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u) != 0u)) q++;
    return sign | q;
}
#endif

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint t = p.tok0 + gl_WorkGroupID.y;
    if (i >= p.kvdim || t >= p.n_tok) return;
    const int ps = pos[p.pos_off + t];
    if (ps < 0 || uint(ps) >= p.n_ctx) return;
    const uint ki = p.k_off + uint(ps) * p.kvdim + i, vi = p.v_off + i * p.n_ctx + uint(ps);
    const float kx = k[t * p.kvdim + i], vx = v[t * p.kvdim + i];
#ifdef KV_F16
    const uint ks = (ki & 1u) * 16u, vs = (vi & 1u) * 16u;
    atomicAnd(kc[ki >> 1], ~(0xffffu << ks));
    atomicOr(kc[ki >> 1], f32_to_f16(kx) << ks);
    atomicAnd(vc[vi >> 1], ~(0xffffu << vs));
    atomicOr(vc[vi >> 1], f32_to_f16(vx) << vs);
#else
    kc[ki] = kx;
    vc[vi] = vx;
#endif
}
