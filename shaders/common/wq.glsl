// common/wq.glsl — reading GGUF weight blocks from a storage buffer of
// uint32 words (no 8/16-bit storage needed, so every device takes this
// path). The including shader declares `wq[]` (uint, the raw weight bytes,
// little-endian) before including this file, or defines WQ_WORD(i) (word i
// of the weights: a texel fetch where the weights are a uniform texel
// buffer, W_TEXEL), and defines one W_<TYPE>
// (W_F32, W_F16, W_BF16, W_Q4_0, ...). Block layouts: model/quant.h, the ground
// truth they must match byte for byte.

#ifndef WQ_WORD
#define WQ_WORD(i) wq[i]
#endif

// 4 bytes at byte offset off (any alignment), little-endian.
uint wq_u32(uint off) {
    const uint i = off >> 2, sh = (off & 3u) * 8u;
    uint v = WQ_WORD(i) >> sh;
    if (sh != 0u) v |= WQ_WORD(i + 1u) << (32u - sh);
    return v;
}
// 2 bytes at an even byte offset.
uint wq_u16(uint off) { return (WQ_WORD(off >> 2) >> ((off & 2u) * 8u)) & 0xffffu; }
uint wq_u8(uint off) { return (WQ_WORD(off >> 2) >> ((off & 3u) * 8u)) & 0xffu; }
// IEEE binary16 at an even byte offset, widened to float.
float wq_f16(uint off) { return unpackHalf2x16(wq_u16(off)).x; }
// Byte t (0..3) of word v as a signed int8.
int i8_of(uint v, uint t) { return bitfieldExtract(int(v), int(8u * t), 8); }

// Elements and bytes per block; the block types split into 32-element
// sub-blocks (units) that kernels hand to invocations.
#if defined(W_F32)
#define QB_ELEMS 1u
#define QB_BYTES 4u
#elif defined(W_F16) || defined(W_BF16)
#define QB_ELEMS 1u
#define QB_BYTES 2u
#elif defined(W_Q4_0)
#define QB_ELEMS 32u
#define QB_BYTES 18u
#elif defined(W_Q4_1)
#define QB_ELEMS 32u
#define QB_BYTES 20u
#elif defined(W_Q5_0)
#define QB_ELEMS 32u
#define QB_BYTES 22u
#elif defined(W_Q5_1)
#define QB_ELEMS 32u
#define QB_BYTES 24u
#elif defined(W_Q8_0)
#define QB_ELEMS 32u
#define QB_BYTES 34u
#elif defined(W_Q4_K)
#define QB_ELEMS 256u
#define QB_BYTES 144u
#elif defined(W_Q5_K)
#define QB_ELEMS 256u
#define QB_BYTES 176u
#elif defined(W_Q6_K)
#define QB_ELEMS 256u
#define QB_BYTES 210u
#else
#error "define the weight type: W_F32, W_F16, W_BF16, W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0, W_Q4_K, W_Q5_K or W_Q6_K"
#endif

#if defined(W_Q4_K) || defined(W_Q5_K)
// 6-bit scale and min of sub-block j (0..7) of the Q4_K/Q5_K block at byte
// wb: the packing quant_k_scales (model/quant.h) unpacks. Returns (sc, mn).
uvec2 k_scale_min(uint wb, uint j) {
    const uint s = wb + 4u;  // scales[12]
    if (j < 4u) return uvec2(wq_u8(s + j) & 63u, wq_u8(s + j + 4u) & 63u);
    const uint lo = wq_u8(s + j + 4u);
    return uvec2((lo & 15u) | ((wq_u8(s + j - 4u) >> 6) << 4), (lo >> 4) | ((wq_u8(s + j) >> 6) << 4));
}
#endif

#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
#define WQ_PLAIN 1  // one element per "block": no units
// Element c of the row starting at byte wrow, widened to float (exact).
float wq_elem(uint wrow, uint c) {
#if defined(W_F32)
    return uintBitsToFloat(WQ_WORD((wrow >> 2) + c));
#else
    const uint h = (wrow >> 1) + c;  // index in halves
    const uint bits = (WQ_WORD(h >> 1) >> ((h & 1u) * 16u)) & 0xffffu;
#if defined(W_F16)
    return unpackHalf2x16(bits).x;
#else
    return uintBitsToFloat(bits << 16);
#endif
#endif
}
#else
#define WQ_UNITS (QB_ELEMS / 32u)  // 32-element units per block

#if defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
// The 32-element block at byte wb of the 4/5-bit types: the byte offset of
// its 16 quant bytes (element e < 16: low nibble of byte e; e + 16: its
// high nibble), the fifth bits (bit e of qh: Q5_0/Q5_1, else 0), the scale
// and the min (Q4_1/Q5_1, else 0).
struct q4x_block {
    uint qs, qh;
    float dd, m;
};
q4x_block q4x_header(uint wb) {
    q4x_block h;
#if defined(W_Q4_0)
    h.qs = wb + 2u, h.qh = 0u;
#elif defined(W_Q4_1)
    h.qs = wb + 4u, h.qh = 0u;
#elif defined(W_Q5_0)
    h.qs = wb + 6u, h.qh = wq_u32(wb + 2u);
#else
    h.qs = wb + 8u, h.qh = wq_u32(wb + 4u);
#endif
    h.dd = wq_f16(wb);
#if defined(W_Q4_1) || defined(W_Q5_1)
    h.m = wq_f16(wb + 2u);
#else
    h.m = 0.0;
#endif
    return h;
}
// The element of quant q (with its fifth bit), formed as
// quant_dequantize_row_ref forms it (`precise`: no fused multiply-add).
float q4x_value(q4x_block h, uint q) {
#if defined(W_Q4_1) || defined(W_Q5_1)
    precise float y = h.dd * float(q) + h.m;
#elif defined(W_Q4_0)
    precise float y = h.dd * float(int(q) - 8);
#else
    precise float y = h.dd * float(int(q) - 16);
#endif
    return y;
}
#endif

#if defined(W_Q4_K) || defined(W_Q5_K)
// Unit j of the Q4_K/Q5_K block at byte wb: element 4k + t is
// (d * sc) * q - dmin * mn, q the nibble (j odd: high) of byte t of word k
// of qs[32 (j/2)..], Q5_K: bit j of byte t of word k of qh on top.
struct k45_unit {
    uint qs, qh, nib, j;
    float dsc, dmn;
};
k45_unit k45_header(uint wb, uint j) {
    k45_unit h;
    const uvec2 sm = k_scale_min(wb, j);
    precise float dsc = wq_f16(wb) * float(sm.x), dmn = wq_f16(wb + 2u) * float(sm.y);
    h.dsc = dsc, h.dmn = dmn, h.j = j, h.nib = 4u * (j & 1u);
#if defined(W_Q4_K)
    h.qs = wb + 16u + 32u * (j >> 1), h.qh = 0u;
#else
    h.qs = wb + 48u + 32u * (j >> 1), h.qh = wb + 16u;
#endif
    return h;
}
// Elements 4k..4k+3 of the unit.
vec4 k45_word4(k45_unit h, uint k) {
    vec4 v;
    const uint q = WQ_WORD((h.qs >> 2) + k);
#if defined(W_Q5_K)
    const uint hb = WQ_WORD((h.qh >> 2) + k);
#endif
    for (uint t = 0u; t < 4u; t++) {
        uint b = (q >> (8u * t + h.nib)) & 15u;
#if defined(W_Q5_K)
        b |= ((hb >> (8u * t + h.j)) & 1u) << 4;
#endif
        precise float y = h.dsc * float(b) - h.dmn;
        v[t] = y;
    }
    return v;
}
#endif

#if defined(W_Q6_K)
// Unit j = 4h + s of the Q6_K block at byte wb: elements 128h + 32s + l;
// low 4 bits from ql[64h + 32(s&1) + l] (high nibble when s >= 2), top 2
// bits from qh[32h + l] >> 2s; groups of 16 share a signed scale:
// (d * scale) * (q - 32), elements 0..15 of the unit scale ds0, 16..31 ds1.
struct q6k_unit {
    uint ql, qh, nib, sh;
    float ds0, ds1;
};
q6k_unit q6k_header(uint wb, uint j) {
    q6k_unit u;
    const uint h = j >> 2, s = j & 3u;
    u.ql = wb + 64u * h + 32u * (s & 1u), u.qh = wb + 128u + 32u * h;
    u.nib = 4u * (s >> 1), u.sh = 2u * s;
    const float dd = wq_f16(wb + 208u);
    const uint sc = wb + 192u + 2u * j;  // scales[16], groups 2j and 2j+1
    precise float ds0 = dd * float(bitfieldExtract(int(wq_u8(sc)), 0, 8));
    precise float ds1 = dd * float(bitfieldExtract(int(wq_u8(sc + 1u)), 0, 8));
    u.ds0 = ds0, u.ds1 = ds1;
    return u;
}
// Elements 4k..4k+3 of the unit.
vec4 q6k_word4(q6k_unit u, uint k) {
    vec4 v;
    const uint lq = wq_u32(u.ql + 4u * k), hq = wq_u32(u.qh + 4u * k);
    for (uint t = 0u; t < 4u; t++) {
        const uint b = ((lq >> (8u * t + u.nib)) & 15u) | (((hq >> (8u * t + u.sh)) & 3u) << 4);
        precise float y = (k < 4u ? u.ds0 : u.ds1) * float(int(b) - 32);
        v[t] = y;
    }
    return v;
}
#endif

// Unit j (elements 32j..32j+31) of the block at byte wb, dequantized to
// v[0..31], each element formed exactly as quant_dequantize_row_ref forms
// it (`precise`: no fused multiply-add), so results match the CPU bit for
// bit.
void wq_unit(uint wb, uint j, out float v[32]) {
#if defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
    const q4x_block h = q4x_header(wb);
    for (uint k = 0u; k < 4u; k++) {
        const uint q = wq_u32(h.qs + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            const uint e = 4u * k + t;
            uint lo = (q >> (8u * t)) & 15u, hi = (q >> (8u * t + 4u)) & 15u;
#if defined(W_Q5_0) || defined(W_Q5_1)
            lo |= ((h.qh >> e) & 1u) << 4;
            hi |= ((h.qh >> (e + 16u)) & 1u) << 4;
#endif
            v[e] = q4x_value(h, lo);
            v[e + 16u] = q4x_value(h, hi);
        }
    }

#elif defined(W_Q8_0)
    const float dd = wq_f16(wb);
    for (uint k = 0u; k < 8u; k++) {
        const uint q = wq_u32(wb + 2u + 4u * k);
        for (uint t = 0u; t < 4u; t++) {
            precise float y = dd * float(i8_of(q, t));
            v[4u * k + t] = y;
        }
    }

#elif defined(W_Q4_K) || defined(W_Q5_K)
    const k45_unit h = k45_header(wb, j);
    for (uint k = 0u; k < 8u; k++) {
        const vec4 e = k45_word4(h, k);
        for (uint t = 0u; t < 4u; t++) v[4u * k + t] = e[t];
    }
#elif defined(W_Q6_K)
    const q6k_unit h = q6k_header(wb, j);
    for (uint k = 0u; k < 8u; k++) {
        const vec4 e = q6k_word4(h, k);
        for (uint t = 0u; t < 4u; t++) v[4u * k + t] = e[t];
    }
#endif
}
#endif

// Elements 32u + 4l .. 32u + 4l + 3 (lane l < 8 of a 32-element unit u) of
// the row starting at byte wrow, each formed exactly as wq_unit forms it:
// the 8 lanes of a subgroup together decode one unit, each loading only
// the words that hold its 4 elements. Plain types: elements at or past
// cols are 0 (not read).
vec4 wq_lane4(uint wrow, uint u, uint l, uint cols) {
    vec4 v = vec4(0.0);
#if defined(W_F32)
    const uint c = 32u * u + 4u * l, i = (wrow >> 2) + c;
    for (uint t = 0u; t < 4u; t++)
        if (c + t < cols) v[t] = uintBitsToFloat(WQ_WORD(i + t));
#elif defined(W_F16) || defined(W_BF16)
    const uint c = 32u * u + 4u * l;
    for (uint k = 0u; k < 2u; k++) {
        if (c + 2u * k >= cols) break;
        const uint h = (wrow >> 1) + c + 2u * k;  // index in halves; an odd one when wrow % 4 == 2
        uint lo = WQ_WORD(h >> 1), hi = lo;
        if ((h & 1u) != 0u) {
            hi = c + 2u * k + 1u < cols ? WQ_WORD((h >> 1) + 1u) : 0u;
            lo = (lo >> 16) | (hi << 16);
        }
        const uint a = lo & 0xffffu, b = c + 2u * k + 1u < cols ? lo >> 16 : 0u;
#if defined(W_F16)
        v[2u * k] = unpackHalf2x16(a).x;
        v[2u * k + 1u] = unpackHalf2x16(b).x;
#else
        v[2u * k] = uintBitsToFloat(a << 16);
        v[2u * k + 1u] = uintBitsToFloat(b << 16);
#endif
    }
#else
    const uint wb = wrow + (u / WQ_UNITS) * QB_BYTES, j = u % WQ_UNITS;
#if defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
    // lanes 0..3: low nibbles of qs bytes 4l..4l+3; lanes 4..7: high nibbles of bytes 4(l-4)..
    const q4x_block h = q4x_header(wb);
    const uint q = wq_u32(h.qs + 4u * (l & 3u)), nib = 4u * (l >> 2);
    for (uint t = 0u; t < 4u; t++) {
        uint b = (q >> (8u * t + nib)) & 15u;
#if defined(W_Q5_0) || defined(W_Q5_1)
        b |= ((h.qh >> (4u * l + t)) & 1u) << 4;
#endif
        v[t] = q4x_value(h, b);
    }
#elif defined(W_Q8_0)
    const float dd = wq_f16(wb);
    const uint q = wq_u32(wb + 2u + 4u * l);
    for (uint t = 0u; t < 4u; t++) {
        precise float y = dd * float(i8_of(q, t));
        v[t] = y;
    }
#elif defined(W_Q4_K) || defined(W_Q5_K)
    v = k45_word4(k45_header(wb, j), l);
#elif defined(W_Q6_K)
    v = q6k_word4(q6k_header(wb, j), l);
#endif
#endif
    return v;
}
