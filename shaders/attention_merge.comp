// attention_merge.comp — second pass of attention.comp split over the
// sequence: combines the n_split chunks of each (token, head),
//   M = max_z m_z over chunks with l_z > 0
//   o[t, h, d] = sum_z exp(m_z - M) acc_z[d] / sum_z exp(m_z - M) l_z
// in chunk order (fixed: bit-identical reruns). part: per (token, head,
// chunk) [m, l, acc[0..head_dim-1]] as attention.comp writes it; o:
// (n_tok, n_head, head_dim) F32. One workgroup per (head, token); its
// BLOCK invocations own output dims d = tid, tid + BLOCK, ...; each works
// out M and the denominator itself (the same on all).
// Mirror of the push constants: vk_push_attention_merge in backend/vulkan/ops.h.
#version 450

layout(constant_id = 0) const uint BLOCK = 64;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) readonly buffer PART { float part[]; };
layout(binding = 1) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint head_dim;
    uint n_head;
    uint n_tok;
    uint n_split;
    uint tok0;  // first token of this dispatch
    uint pad0, pad1, pad2;
} p;

void main() {
    const uint h = gl_WorkGroupID.x, t = p.tok0 + gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    if (h >= p.n_head || t >= p.n_tok) return;
    const uint hd = p.head_dim, stride = hd + 2u;
    const uint base = (t * p.n_head + h) * p.n_split * stride;
    float mx = -3.4e38;
    for (uint z = 0u; z < p.n_split; z++)
        if (part[base + z * stride + 1u] > 0.0) mx = max(mx, part[base + z * stride]);
    float den = 0.0;
    for (uint z = 0u; z < p.n_split; z++) {
        const float l = part[base + z * stride + 1u];
        if (l > 0.0) den += exp(part[base + z * stride] - mx) * l;
    }
    const float inv = 1.0 / den;
    for (uint d = tid; d < hd; d += BLOCK) {
        float a = 0.0;
        for (uint z = 0u; z < p.n_split; z++) {
            const uint zb = base + z * stride;
            if (part[zb + 1u] > 0.0) a += exp(part[zb] - mx) * part[zb + 2u + d];
        }
        o[(t * p.n_head + h) * hd + d] = a * inv;
    }
}
