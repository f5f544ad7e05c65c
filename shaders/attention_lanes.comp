// attention_lanes.comp — attention.comp's contract (causal softmax
// attention with GQA over the KV cache, online softmax; the same push
// constants, vk_push_attention, split chunks and PAGED block tables) for
// CPU devices with 8-lane subgroups (llvmpipe), where every load from a
// computed address is a gather or a loop over the lanes and shared memory
// is no cheaper than a buffer.
//
// One workgroup = one subgroup of 8 lanes per (KV head, token): x = KV
// head, y = token, z = split chunk. Its G = n_head / n_head_kv query heads
// (specialization constant 1) share every K and V load. The lanes walk
// the positions 8 at a time, lane l taking position tile0 + l: it gathers
// its position's K row (texels: one gather fetches 8 useful words), dots
// it with each head's query (held in registers: head_dim is
// specialization constant 0), the tile's max and sum of exps come from
// subgroupMax / subgroupAdd, and each lane accumulates its position's
// weighted V into its own copy of the output, rescaled as the running
// max moves. At the end subgroupAdd combines the lanes' copies. Every sum
// has one order whatever the scheduling or the batch: bit-identical reruns.
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(constant_id = 0) const uint HD = 64;  // head_dim, a multiple of 8
layout(constant_id = 1) const uint G = 1;    // query heads per KV head
layout(local_size_x = 8, local_size_y = 1, local_size_z = 1) in;

// q, K and V as R32 texels: q floats, cache words (F16: two halves each)
layout(binding = 0) uniform usamplerBuffer qt;
layout(binding = 1) uniform usamplerBuffer kt;
layout(binding = 2) uniform usamplerBuffer vt;
layout(binding = 3) writeonly buffer O { float o[]; };
layout(binding = 4) writeonly buffer PART { float part[]; };  // split: per (token, head, chunk) [m, l, acc]
#ifdef PAGED
#define KV_BLOCK 16u  // positions per KV block: FWD_KV_BLOCK of engine/forward.h
layout(binding = 5) readonly buffer INFO { uint tok_info[]; };
#endif

layout(push_constant) uniform P {
    uint head_dim;
    uint n_head;
    uint n_head_kv;
    uint n_tok;
    uint pos0;
    uint n_ctx;
    uint k_off;
    uint v_off;
    uint tok0;
    float scale;
    uint kv_chunk;
    uint info_off;
} p;

float kv_k(uint i) {
#ifdef KV_F16
    const vec2 v = unpackHalf2x16(texelFetch(kt, int(i >> 1)).x);
    return (i & 1u) != 0u ? v.y : v.x;
#else
    return uintBitsToFloat(texelFetch(kt, int(i)).x);
#endif
}

float kv_v(uint i) {
#ifdef KV_F16
    const vec2 v = unpackHalf2x16(texelFetch(vt, int(i >> 1)).x);
    return (i & 1u) != 0u ? v.y : v.x;
#else
    return uintBitsToFloat(texelFetch(vt, int(i)).x);
#endif
}

void main() {
    const uint hk = gl_WorkGroupID.x;
    const uint t = p.tok0 + gl_WorkGroupID.y;
    const uint l = gl_SubgroupInvocationID;
    if (hk >= p.n_head_kv || t >= p.n_tok) return;  // uniform over the workgroup
    const uint kvdim = p.n_head_kv * HD;
#ifdef PAGED
    const uint n_kv = tok_info[p.info_off + 2u * t], tbl = tok_info[p.info_off + 2u * t + 1u];
#else
    const uint n_kv = p.pos0 + t + 1u;
#endif
    const uint z = gl_WorkGroupID.z;
    const uint p_lo = p.kv_chunk == 0u ? 0u : min(z * p.kv_chunk, n_kv);
    const uint p_hi = p.kv_chunk == 0u ? n_kv : min(p_lo + p.kv_chunk, n_kv);

    float qv[G * HD];
    [[unroll]] for (uint g = 0u; g < G; g++)
        [[unroll]] for (uint i = 0u; i < HD; i++)
            qv[g * HD + i] = uintBitsToFloat(texelFetch(qt, int((t * p.n_head + hk * G + g) * HD + i)).x);
    float acc[G * HD];  // this lane's share of each head's unnormalised output
    [[unroll]] for (uint i = 0u; i < G * HD; i++) acc[i] = 0.0;
    float m[G], lsum[G];
    [[unroll]] for (uint g = 0u; g < G; g++) m[g] = 0.0, lsum[g] = 0.0;

    const uint kb = p.k_off + hk * HD;       // + slot * kvdim + i
    const uint vb = p.v_off + hk * HD * p.n_ctx;  // + i * n_ctx + slot
    for (uint tile0 = p_lo; tile0 < p_hi; tile0 += 8u) {
        const bool live = tile0 + l < p_hi;
        const uint pos = min(tile0 + l, p_hi - 1u);  // lanes past the end repeat the last position, weight 0
#ifdef PAGED
        const uint slot = tok_info[tbl + pos / KV_BLOCK] * KV_BLOCK + pos % KV_BLOCK;
#else
        const uint slot = pos;
#endif
        float s[G];
        [[unroll]] for (uint g = 0u; g < G; g++) s[g] = 0.0;
        const uint kr = kb + slot * kvdim;
        [[unroll]] for (uint i = 0u; i < HD; i++) {
            const float k = kv_k(kr + i);
            [[unroll]] for (uint g = 0u; g < G; g++) s[g] = fma(qv[g * HD + i], k, s[g]);
        }
        const bool first = tile0 == p_lo;
        float e[G], alpha[G];
        [[unroll]] for (uint g = 0u; g < G; g++) {
            const float sc = s[g] * p.scale;
            const float mt = subgroupMax(live ? sc : -3.4e38);  // position tile0 is always live
            const float m_new = first ? mt : max(m[g], mt);
            alpha[g] = first ? 0.0 : exp(m[g] - m_new);
            e[g] = live ? exp(sc - m_new) : 0.0;
            lsum[g] = lsum[g] * alpha[g] + subgroupAdd(e[g]);
            m[g] = m_new;
        }
        const uint vr = vb + slot;
        [[unroll]] for (uint i = 0u; i < HD; i++) {
            const float v = kv_v(vr + i * p.n_ctx);
            [[unroll]] for (uint g = 0u; g < G; g++) acc[g * HD + i] = fma(e[g], v, acc[g * HD + i] * alpha[g]);
        }
    }

    // combine the lanes' copies four dims at a time; lane k of each group
    // of 8 dims then stores dim k, so one store writes 8 values
    [[unroll]] for (uint g = 0u; g < G; g++) {
        const uint h = hk * G + g;
        const float inv = 1.0 / lsum[g];
        const uint ob = (t * p.n_head + h) * HD;
        const uint pb = ((t * p.n_head + h) * gl_NumWorkGroups.z + z) * (HD + 2u);
        if (p.kv_chunk != 0u && l == 0u) {
            // an empty chunk (past this token's last position) leaves l = 0
            part[pb] = m[g];
            part[pb + 1u] = lsum[g];
        }
        [[unroll]] for (uint i8 = 0u; i8 < HD; i8 += 8u) {
            const uint a0 = g * HD + i8;
            const vec4 a = subgroupAdd(vec4(acc[a0], acc[a0 + 1u], acc[a0 + 2u], acc[a0 + 3u]));
            const vec4 b = subgroupAdd(vec4(acc[a0 + 4u], acc[a0 + 5u], acc[a0 + 6u], acc[a0 + 7u]));
            const vec4 s4 = l < 4u ? a : b;
            const float v = s4[l & 3u];
            if (p.kv_chunk != 0u) part[pb + 2u + i8 + l] = v;
            else o[ob + i8 + l] = v * inv;
        }
    }
}
