// attention.comp — causal softmax attention with GQA over the KV cache
// (engine/forward.c's attn_task), flash style (online softmax):
//   o[t, h, :] = sum_{p <= pos0 + t} softmax_p(scale * q[t, h, :] . K[p, hk, :]) * V[hk, :, p]
// with hk = h / (n_head / n_head_kv). q, o: (n_tok, n_head, head_dim) F32;
// K cache rows: kc[k_off + p * kvdim + hk * head_dim + i]; V cache
// transposed: vc[v_off + (hk * head_dim + i) * n_ctx + p], kvdim =
// n_head_kv * head_dim. Cache elements F32, or with -DKV_F16=1 binary16
// packed two to a uint32 word (k_off, v_off count elements).
//
// One workgroup per (head, token): x = head, y = token. Its BLOCK
// invocations (specialization constant 0, a power of two) walk the
// positions in tiles of BLOCK: invocation j scores position tile0 + j (a
// head_dim-long dot in index order), the tile's max and sum of exps are
// reduced across the workgroup by a fixed-order tree in shared memory, or
// with -DSUBGROUP=1 by subgroupMax/subgroupAdd then in subgroup order;
// every invocation then holds the same running max m and sum l. The
// output dims are owned by invocations (d = tid, tid + BLOCK, ...), each
// rescaled by exp(m_old - m_new) and accumulating the tile's weighted V
// in position order. Every sum has one order whatever the scheduling, so
// reruns are bit-identical.
// Split over the sequence (kv_chunk > 0, for generation: few (token, head)
// pairs and a long KV): workgroup z takes positions z * kv_chunk .. up to
// (z + 1) * kv_chunk - 1 only and writes its running max m, sum l and
// unnormalised output to part[] instead of o; attention_merge.comp then
// combines the chunks of each (token, head) in chunk order.
// With -DPAGED=1 (many sequences in one batch, engine/session.h) each
// token brings its own history: tok_info[info_off + 2 t] = its position
// count n_kv, tok_info[info_off + 2 t + 1] = the offset in tok_info of its
// sequence's block table,
// whose entry b names the KV block holding positions b * KV_BLOCK.. (slot
// = block * KV_BLOCK + position % KV_BLOCK); pos0 is unused.
// Mirror of the push constants: vk_push_attention in backend/vulkan/ops.h.
#version 450
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint BLOCK = 64;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#define HD_MAX 256u  // largest head_dim (vk_op_attention refuses more)

layout(binding = 0) readonly buffer Q { float q[]; };
#ifdef KV_F16
layout(binding = 1) readonly buffer KC { uint kc[]; };
layout(binding = 2) readonly buffer VC { uint vc[]; };
#else
layout(binding = 1) readonly buffer KC { float kc[]; };
layout(binding = 2) readonly buffer VC { float vc[]; };
#endif
layout(binding = 3) writeonly buffer O { float o[]; };
// split: per (token, head, chunk) [m, l, acc[0..head_dim-1]]
layout(binding = 4) writeonly buffer PART { float part[]; };
#ifdef PAGED
#define KV_BLOCK 16u  // positions per KV block: FWD_KV_BLOCK of engine/forward.h
layout(binding = 5) readonly buffer INFO { uint tok_info[]; };
shared uint pslot[BLOCK];  // this tile's KV slots, position tile0 + j at pslot[j]
#endif

layout(push_constant) uniform P {
    uint head_dim;
    uint n_head;
    uint n_head_kv;
    uint n_tok;
    uint pos0;   // position of token 0
    uint n_ctx;  // positions in the cache (V row length)
    uint k_off;  // elements of kc
    uint v_off;  // elements of vc
    uint tok0;   // first token of this dispatch (dispatches split over tokens)
    float scale; // 1 / sqrt(head_dim)
    uint kv_chunk;  // positions per workgroup z; 0: the whole sequence, no split
    uint info_off;  // PAGED: token t's [n_kv, table offset] at tok_info[info_off + 2 t]
} p;

shared float qs[HD_MAX];   // this (token, head)'s query
shared float acc[HD_MAX];  // unnormalised output, dim d owned by invocation d % BLOCK
shared float ps[BLOCK];    // this tile's exp(s - m)
shared float red[BLOCK];   // reduction scratch

float kv_k(uint i) {
#ifdef KV_F16
    const vec2 v = unpackHalf2x16(kc[i >> 1]);
    return (i & 1u) != 0u ? v.y : v.x;
#else
    return kc[i];
#endif
}

float kv_v(uint i) {
#ifdef KV_F16
    const vec2 v = unpackHalf2x16(vc[i >> 1]);
    return (i & 1u) != 0u ? v.y : v.x;
#else
    return vc[i];
#endif
}

// Max and sum over the workgroup, the same on every invocation; called in
// uniform control flow.
float wg_max(float x) {
    const uint tid = gl_LocalInvocationID.x;
#ifdef SUBGROUP
    x = subgroupMax(x);
    if (subgroupElect()) red[gl_SubgroupID] = x;
    barrier();
    float r = red[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) r = max(r, red[i]);
#else
    red[tid] = x;
    barrier();
    for (uint h = BLOCK / 2; h > 0; h >>= 1) {
        if (tid < h) red[tid] = max(red[tid], red[tid + h]);
        barrier();
    }
    const float r = red[0];
#endif
    barrier();  // red is reused by the next reduction
    return r;
}

float wg_sum(float x) {
    const uint tid = gl_LocalInvocationID.x;
#ifdef SUBGROUP
    x = subgroupAdd(x);
    if (subgroupElect()) red[gl_SubgroupID] = x;
    barrier();
    float r = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) r += red[i];
#else
    red[tid] = x;
    barrier();
    for (uint h = BLOCK / 2; h > 0; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        barrier();
    }
    const float r = red[0];
#endif
    barrier();
    return r;
}

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t = p.tok0 + gl_WorkGroupID.y;
    const uint tid = gl_LocalInvocationID.x;
    if (h >= p.n_head || t >= p.n_tok) return;  // uniform over the workgroup
    const uint hd = p.head_dim;
    const uint hk = h / (p.n_head / p.n_head_kv);
    const uint kvdim = p.n_head_kv * hd;
#ifdef PAGED
    const uint n_kv = tok_info[p.info_off + 2u * t], tbl = tok_info[p.info_off + 2u * t + 1u];
#else
    const uint n_kv = p.pos0 + t + 1u;
#endif
    const uint qo = (t * p.n_head + h) * hd;
    const uint kb = p.k_off + hk * hd;            // + pos * kvdim + i
    const uint vb = p.v_off + hk * hd * p.n_ctx;  // + i * n_ctx + pos

    for (uint d = tid; d < hd; d += BLOCK) {
        qs[d] = q[qo + d];
        acc[d] = 0.0;
    }
    barrier();

    // this workgroup's positions: all, or chunk z of the split
    const uint z = gl_WorkGroupID.z;
    const uint p_lo = p.kv_chunk == 0u ? 0u : min(z * p.kv_chunk, n_kv);
    const uint p_hi = p.kv_chunk == 0u ? n_kv : min(p_lo + p.kv_chunk, n_kv);

    float m = 0.0, l = 0.0;  // running max (valid after the first tile) and sum
    for (uint tile0 = p_lo; tile0 < p_hi; tile0 += BLOCK) {
        const uint pos = tile0 + tid;
        const bool live = pos < p_hi;
#ifdef PAGED
        const uint slot = live ? tok_info[tbl + pos / KV_BLOCK] * KV_BLOCK + pos % KV_BLOCK : 0u;
        pslot[tid] = slot;
#else
        const uint slot = pos;
#endif
        float s = 0.0;
        if (live) {
            const uint kr = kb + slot * kvdim;
            for (uint i = 0; i < hd; i++) s += qs[i] * kv_k(kr + i);
            s *= p.scale;
        }
        const float mt = wg_max(live ? s : -3.4e38);  // position tile0 is always live
        const bool first = tile0 == p_lo;
        const float m_new = first ? mt : max(m, mt);
        const float alpha = first ? 0.0 : exp(m - m_new);
        const float e = live ? exp(s - m_new) : 0.0;
        l = l * alpha + wg_sum(e);
        m = m_new;
        ps[tid] = e;
        barrier();
        const uint cnt = min(BLOCK, p_hi - tile0);
        for (uint d = tid; d < hd; d += BLOCK) {
            float a = 0.0;
#ifdef PAGED
            const uint vr = vb + d * p.n_ctx;
            for (uint j = 0; j < cnt; j++) a += ps[j] * kv_v(vr + pslot[j]);
#else
            const uint vr = vb + d * p.n_ctx + tile0;
            for (uint j = 0; j < cnt; j++) a += ps[j] * kv_v(vr + j);
#endif
            acc[d] = acc[d] * alpha + a;
        }
        barrier();  // ps is rewritten by the next tile
    }
    if (p.kv_chunk != 0u) {
        // an empty chunk (past this token's last position) leaves l = 0
        const uint pb = ((t * p.n_head + h) * gl_NumWorkGroups.z + z) * (hd + 2u);
        if (tid == 0u) {
            part[pb] = m;
            part[pb + 1u] = l;
        }
        for (uint d = tid; d < hd; d += BLOCK) part[pb + 2u + d] = acc[d];
        return;
    }
    const float inv = 1.0 / l;
    for (uint d = tid; d < hd; d += BLOCK) o[qo + d] = acc[d] * inv;
}
