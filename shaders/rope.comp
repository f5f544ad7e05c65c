// rope.comp — rotary position embedding, in place, on the heads of each
// token (engine/forward.c's rope_table + rope_apply):
//   for pair i < n_rot/2 of every head of token t, at position pos[t]:
//     theta = freq_scale * pos * freq_base^(-2i/n_rot)   (YaRN: mixed with
//             the unscaled angle by a ramp over i, scaled by mscale)
//     (a, b) = (i, i + n_rot/2) with -DNEOX=1, else (2i, 2i + 1)
//     x[a], x[b] = x[a] cos - x[b] sin, x[a] sin + x[b] cos
// x: (n_tok, n_heads, head_dim) F32 from float x_off; dims from n_rot on
// are left as they are. pos: (n_tok) int32 from pos_off.
//
// One invocation per (token, head, pair): each touches only its own two
// elements, so the result does not depend on scheduling. Workgroups of
// BLOCK (specialization constant 0) over x = (head, pair), y = token.
// Mirror of the push constants: vk_push_rope in backend/vulkan/ops.h.
#version 450

layout(constant_id = 0) const uint BLOCK = 128;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };

layout(push_constant) uniform P {
    uint head_dim;
    uint n_heads;
    uint n_tok;
    uint n_rot;       // even, <= head_dim
    uint x_off;       // floats
    uint pos_off;     // ints
    uint tok0;        // first token of this dispatch (dispatches split over tokens)
    float freq_base;
    float freq_scale; // linear scaling: 1 / factor
    float ext_factor; // YaRN mix (0: plain linear scaling)
    float attn_factor;
    float corr_lo;    // YaRN ramp: pairs below keep the unscaled angle
    float corr_hi;
    uint pad0, pad1, pad2;
} p;

void main() {
    const uint half_rot = p.n_rot / 2u;
    const uint g = gl_GlobalInvocationID.x;
    const uint t = p.tok0 + gl_WorkGroupID.y;
    if (g >= p.n_heads * half_rot || t >= p.n_tok) return;
    const uint h = g / half_rot, i = g % half_rot;

    const float inv_freq = pow(p.freq_base, -2.0 * float(i) / float(p.n_rot));
    const float theta_extrap = float(pos[p.pos_off + t]) * inv_freq;
    float theta = p.freq_scale * theta_extrap;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0) {
        const float y = (float(i) - p.corr_lo) / max(0.001, p.corr_hi - p.corr_lo);
        const float mix = (1.0 - min(1.0, max(0.0, y))) * p.ext_factor;
        theta = theta * (1.0 - mix) + theta_extrap * mix;
        mscale *= 1.0 + 0.1 * log(1.0 / p.freq_scale);
    }
    const float co = cos(theta) * mscale, si = sin(theta) * mscale;
#ifdef NEOX
    const uint a = i, b = i + half_rot;
#else
    const uint a = 2u * i, b = 2u * i + 1u;
#endif
    const uint base = p.x_off + (t * p.n_heads + h) * p.head_dim;
    const float x0 = x[base + a], x1 = x[base + b];
    x[base + a] = x0 * co - x1 * si;
    x[base + b] = x0 * si + x1 * co;
}
