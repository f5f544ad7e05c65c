// common/wq.glsl — reading GGUF weight blocks from a storage buffer of
// uint32 words (no 8/16-bit storage needed, so every device takes this
// path). The including shader declares `wq[]` (uint, the raw weight bytes,
// little-endian) before including this file, and defines one W_<TYPE>
// (W_F32, W_F16, W_Q4_0, ...). Block layouts: model/quant.h, the ground
// truth they must match byte for byte.

// 4 bytes at byte offset off (any alignment), little-endian.
uint wq_u32(uint off) {
    const uint i = off >> 2, sh = (off & 3u) * 8u;
    uint v = wq[i] >> sh;
    if (sh != 0u) v |= wq[i + 1u] << (32u - sh);
    return v;
}
// 2 bytes at an even byte offset.
uint wq_u16(uint off) { return (wq[off >> 2] >> ((off & 2u) * 8u)) & 0xffffu; }
uint wq_u8(uint off) { return (wq[off >> 2] >> ((off & 3u) * 8u)) & 0xffu; }
// IEEE binary16 at an even byte offset, widened to float.
float wq_f16(uint off) { return unpackHalf2x16(wq_u16(off)).x; }
// Byte t (0..3) of word v as a signed int8.
int i8_of(uint v, uint t) { return bitfieldExtract(int(v), int(8u * t), 8); }

// Elements and bytes per block; the block types split into 32-element
// sub-blocks (units) that kernels hand to invocations.
#if defined(W_F32)
#define QB_ELEMS 1u
#define QB_BYTES 4u
#elif defined(W_F16)
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
#error "define the weight type: W_F32, W_F16, W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0, W_Q4_K, W_Q5_K or W_Q6_K"
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
