/* quant.h — GGUF tensor element types: block layouts and the scalar
 * reference quantize / dequantize / dot product for each. The *_ref
 * functions are the single ground truth every faster kernel (CPU SIMD,
 * shaders) is tested against. Block byte layouts are the GGUF ecosystem's
 * (the bytes llama.cpp reads and writes). */
#ifndef SLUICE_MODEL_QUANT_H
#define SLUICE_MODEL_QUANT_H
#include <stdbool.h>
#include <stdint.h>

/* Type ids as stored in GGUF tensor infos. */
typedef enum qtype {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7,
    QT_Q8_0 = 8, QT_Q8_1 = 9, QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13,
    QT_Q6_K = 14, QT_Q8_K = 15, QT_IQ2_XXS = 16, QT_IQ2_XS = 17, QT_IQ3_XXS = 18,
    QT_IQ1_S = 19, QT_IQ4_NL = 20, QT_IQ3_S = 21, QT_IQ2_S = 22, QT_IQ4_XS = 23,
    QT_I8 = 24, QT_I16 = 25, QT_I32 = 26, QT_I64 = 27, QT_F64 = 28, QT_IQ1_M = 29,
    QT_BF16 = 30, QT_TQ1_0 = 34, QT_TQ2_0 = 35, QT_MXFP4 = 39,
    QT_COUNT = 40
} qtype;

typedef struct qtype_info {
    const char *name;      /* "Q4_K", ... as llama.cpp prints it */
    uint32_t block;        /* elements per block (1 for plain types) */
    uint32_t block_bytes;  /* bytes per block */
    bool compute;          /* sluice can quantize/dequantize/dot it */
    qtype dot_type;        /* activation format the dot product takes:
                              F32 for F32/F16/BF16 weights, Q8_0 for Q4_0/Q5_0/Q8_0,
                              Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants */
} qtype_info;

/* Info for a type id, or NULL if the id is not a known GGUF type. Known
 * types that sluice cannot compute have compute == false (their sizes are
 * still right, so files holding them can be parsed and reported). */
const qtype_info *qtype_get(uint32_t id);
/* Type id from its name (case-insensitive), -1 if unknown. */
int qtype_from_name(const char *name);

/* Bytes of one row of n elements; false if n is not a multiple of the block
 * size or the size overflows. */
bool qtype_row_bytes(qtype t, uint64_t n, uint64_t *bytes);

/* Reference conversions of one row of n elements (n a multiple of the block
 * size). quantize supports every compute type plus Q8_1 and Q8_K (the
 * activation formats); dequantize supports every compute type plus Q8_1
 * and Q8_K (for tests). Other types are left untouched (no-op). */
void quant_quantize_row_ref(qtype t, const float *x, void *y, int64_t n);
void quant_dequantize_row_ref(qtype t, const void *x, float *y, int64_t n);

/* Reference dot product of a weight row w (type t) with an activation row a
 * already in qtype_get(t)->dot_type. Block types form exact integer sums per
 * block (per super-block for the K-quants) and scale them in float block by
 * block, as the fast kernels do; float types accumulate in double. The fast
 * kernels match it by NMSE (the K-quant kernels bit for bit). */
float quant_dot_ref(qtype t, int64_t n, const void *w, const void *a);
/* ---- Block layouts ------------------------------------------------------
 * Byte-exact mirrors of the GGUF block formats. Half-precision fields are raw
 * IEEE binary16 bits (convert with fp16_to_f32). Within a 32-element block,
 * element i is written x[i]; "nibble" order is spelled out per type. */
enum { QK32 = 32, QK_K = 256 }; /* elements per block: small types, K-quants */

/* Q4_0: x[i] = d * (q[i] - 8). qs[j] low nibble = q[j], high nibble = q[j+16]. */
typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;
/* Q4_1: x[i] = d * q[i] + m, nibbles as Q4_0. */
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
/* Q5_0: x[i] = d * (q[i] - 16), q 5-bit: low 4 bits as Q4_0, bit 4 of q[i]
 * is bit i of qh read as a little-endian uint32. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
/* Q5_1: x[i] = d * q[i] + m, bits as Q5_0. */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
/* Q8_0: x[i] = d * qs[i]. */
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;
/* Q8_1 (activations): as Q8_0 plus s = d * sum(qs) (half). */
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;
/* Q4_K: 256 elements in 8 sub-blocks of 32. Sub-block j has a 6-bit scale
 * sc[j] and 6-bit min mn[j] packed in scales[12] (see quant_k_scales);
 * x = d * sc[j] * q - dmin * mn[j]. The 4-bit q of element 64c + l (l < 32)
 * is the low nibble of qs[32c + l]; of element 64c + 32 + l the high nibble. */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
/* Q5_K: as Q4_K with a fifth bit: element 64c + l takes bit 2c of qh[l],
 * element 64c + 32 + l bit 2c + 1 of qh[l] (q = nibble | bit << 4). */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
/* Q6_K: 256 elements in 16 groups of 16, x = d * scales[g] * (q - 32), q 6-bit.
 * In half h (elements 128h..128h+127), for l < 32 with L = ql + 64h, H = qh[32h + l]:
 *   element 128h + l      = (L[l]      & 15) | (H      & 3) << 4
 *   element 128h + 32 + l = (L[l + 32] & 15) | (H >> 2 & 3) << 4
 *   element 128h + 64 + l = (L[l]      >> 4) | (H >> 4 & 3) << 4
 *   element 128h + 96 + l = (L[l + 32] >> 4) | (H >> 6 & 3) << 4
 * and group g covers elements 16g..16g+15. */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_K;
/* Q8_K (activations only): x[i] = d * qs[i]; bsums[g] = sum of qs[16g..16g+15]. */
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

/* Unpacks the eight 6-bit scales sc[] and mins mn[] of a Q4_K/Q5_K block.
 * Packing: bytes 0-3 hold sc[0..3] in their low 6 bits, bytes 4-7 mn[0..3];
 * bytes 8-11 hold sc[4..7] (low nibble) and mn[4..7] (high nibble) low 4
 * bits; the top 2 bits of sc[4..7] / mn[4..7] sit in bits 6-7 of bytes 0-3 /
 * 4-7. Works on 32-bit words: four sub-blocks per operation. */
static inline void quant_k_scales(const uint8_t s[12], uint8_t sc[8], uint8_t mn[8]) {
    uint32_t w0 = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
    uint32_t w1 = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
    uint32_t w2 = (uint32_t)s[8] | (uint32_t)s[9] << 8 | (uint32_t)s[10] << 16 | (uint32_t)s[11] << 24;
    uint32_t v[4] = {
        w0 & 0x3f3f3f3fu,                                   /* sc[0..3] */
        (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u),     /* sc[4..7] */
        w1 & 0x3f3f3f3fu,                                   /* mn[0..3] */
        ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u), /* mn[4..7] */
    };
    for (int i = 0; i < 4; i++) {
        sc[i] = (uint8_t)(v[0] >> 8 * i); sc[4 + i] = (uint8_t)(v[1] >> 8 * i);
        mn[i] = (uint8_t)(v[2] >> 8 * i); mn[4 + i] = (uint8_t)(v[3] >> 8 * i);
    }
}
#endif
