/* dot_avx512vnni.c — AVX-512 VNNI kernels for Q4_0, Q5_0, Q8_0, Q4_1, Q5_1
 * (Q8_1 activations), Q4_K, Q5_K and Q6_K:
 * tiles of 16 weight rows by up to 8 activation rows (cpu_gemm_fn), with
 * one weight row per 32-bit lane. Compiled with AVX-512 F/BW/VL/DQ + VNNI
 * (and AVX2/FMA/F16C) and only called after cpu_isa_detect saw them; types
 * missing from the table use the AVX-512 / AVX2 kernels.
 *
 * Why rows in lanes: with a block's elements across the lanes (the AVX2
 * scheme), every row x token x block ends in a horizontal sum or an int ->
 * float conversion and a scale multiply for 32 products. Here 16 rows are
 * transposed once per block (4 bytes of a row per lane), so a vpdpbusd
 * against 4 broadcast activation bytes advances all 16 rows at once, the
 * block sums come out one per lane, and the float work is one vector per
 * 16 rows x token x block. The transpose is paid once per block for all
 * tokens of the tile.
 *
 * Numerics: every lane forms its block's (or super-block's) exact integer
 * sum, then does the float operations of quant_dot_ref in the same order
 * (no FMA: the file is built with -ffp-contract=off), so every result is
 * bit-identical to quant_dot_ref, whatever the tile, the token count or
 * the lane a row lands in; so are the single dots (same exact sums, same
 * float steps) and dotn (a tile of one row).
 *
 * vpdpbusd multiplies unsigned by signed bytes: weights go in as unsigned
 * (Q4_0 q in 0..15; Q5_0 0..31; Q8_0 q + 128) and the offset comes off
 * through the accumulator's start value, -off * sum(qa) from the
 * activation tail (cpu_act_aux); Q4_1 / Q5_1 have no offset (their m * sa
 * term is float, as in quant_dot_ref). No int32 sum can overflow:
 * |sum| <= 32 * 255 * 128. */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>
#include "backend/cpu/simd_x86.h"
#include "core/fp16.h"

#define NR CPU_GEMM_ROWS


/* 4 activation bytes at p broadcast to every lane (the signed operand). */
INLINE __m512i bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

INLINE __mmask16 row_mask(int nr) { return (__mmask16)((1u << nr) - 1); }

/* Row pointers of the 16 lanes: rows >= nr repeat row 0 (their lanes are
 * computed and never stored). */
INLINE void row_ptrs(const void *w, size_t ws, int nr, const uint8_t **rp) {
    for (int r = 0; r < NR; r++) rp[r] = (const uint8_t *)w + (size_t)(r < nr ? r : 0) * ws;
}

/* 16 bytes at offset off of each lane's row, transposed: z[m] holds dword m
 * (bytes 4m..4m+3) of row r in lane r. Four 128-bit rows per register, then
 * a 4 x 4 dword transpose inside each 128-bit lane. */
INLINE void load_t4(const uint8_t *const *rp, size_t off, __m512i *z) {
    __m512i v[4];
    for (int k = 0; k < 4; k++) { /* v[k]: 128-bit lane l = row 4l + k */
        __m512i x = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rp[k] + off)));
        x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(rp[4 + k] + off)), 1);
        x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(rp[8 + k] + off)), 2);
        v[k] = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(rp[12 + k] + off)), 3);
    }
    __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
    __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
    z[0] = _mm512_unpacklo_epi64(t0, t2);
    z[1] = _mm512_unpackhi_epi64(t0, t2);
    z[2] = _mm512_unpacklo_epi64(t1, t3);
    z[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The half at offset off of each lane's row, as floats. (A vpgatherdd
 * would save a few percent at one token, but gathers are microcode-slow on
 * CPUs with the Gather Data Sampling mitigation, VNNI Xeons among them.) */
INLINE __m512 load_h16(const uint8_t *const *rp, size_t off) {
    uint16_t h[NR];
    for (int r = 0; r < NR; r++) memcpy(&h[r], rp[r] + off, 2);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

/* Software prefetch of the weights. A tile reads 16 rows side by side,
 * which the hardware prefetchers follow poorly from DRAM; so while it runs
 * it prefetches the next tile's bytes (the 16 rows after its own, which
 * the matmul usually does next) as one sequential stream, in step: block i
 * of nb fetches the i-th nb-th of them. Prefetches never fault, so running
 * past the matrix is harmless. */
INLINE void prefetch_next(const uint8_t *const *rp, size_t bsz, int64_t i, int64_t nb) {
    const size_t tile = NR * (size_t)nb * bsz; /* bytes of 16 whole rows */
    const uint8_t *next = rp[0] + tile;
    size_t p0 = (size_t)i * tile / (size_t)nb & ~(size_t)63, p1 = (size_t)(i + 1) * tile / (size_t)nb;
    for (size_t p = p0; p < p1; p += 64) _mm_prefetch((const char *)next + p, _MM_HINT_T1);
}

/* Byte offset of the cpu_act_aux tail of a Q8_0 activation row of nb blocks
 * (cpu_act_scales_offset without the checks, for the inner loops). */
INLINE size_t q8_0_soff(int64_t nb) { return ((size_t)nb * sizeof(block_q8_0) + 63) & ~(size_t)63; }

INLINE const cpu_act_aux *aux_at(const void *a, size_t as, int t, size_t soff, int64_t i) {
    return (const cpu_act_aux *)((const uint8_t *)a + (size_t)t * as + soff) + i;
}

/* The 32-bit word at offset off of each lane's row (Q5 qh, Q4_1 d | m << 16). */
INLINE __m512i load_u32x16(const uint8_t *const *rp, size_t off) {
    uint32_t v[NR];
    for (int r = 0; r < NR; r++) memcpy(&v[r], rp[r] + off, 4);
    return _mm512_loadu_si512(v);
}

/* Adds the fifth bit of Q5_0 / Q5_1 to the 8 transposed nibble dwords:
 * q[m] lane r holds elements 4m..4m+3 of row r, whose bits are bits
 * 4m..4m+3 of row r's qh (lane r of qh), i.e. byte m / 2 of it. A byte
 * shuffle copies that byte to the dword's 4 bytes, a test against the
 * bits 4 (m & 1) + k picks each byte's bit, a masked add puts 16 on. */
INLINE void add_q5_bits(__m512i qh, __m512i *q) {
    const __m512i b16 = _mm512_set1_epi8(16);
    const __m512i sel0 = _mm512_broadcast_i32x4(_mm_setr_epi32(0x00000000, 0x04040404, 0x08080808, 0x0C0C0C0C));
    const __m512i bit_lo = _mm512_set1_epi32(0x08040201), bit_hi = _mm512_set1_epi32((int)0x80402010u);
    for (int p = 0; p < 4; p++) {
        __m512i v = _mm512_shuffle_epi8(qh, _mm512_add_epi8(sel0, _mm512_set1_epi8((char)p)));
        q[2 * p] = _mm512_mask_add_epi8(q[2 * p], _mm512_test_epi8_mask(v, bit_lo), q[2 * p], b16);
        q[2 * p + 1] = _mm512_mask_add_epi8(q[2 * p + 1], _mm512_test_epi8_mask(v, bit_hi), q[2 * p + 1], b16);
    }
}

/* ---- Q4_0 / Q5_0 / Q8_0 weights x Q8_0 activations --------------------------
 * Per block and lane: s = exact sum((q - off) qa); acc += (dw * da) * s. */

enum { K_Q4_0, K_Q5_0, K_Q8_0 };

/* Tile body: nt (1..8, a constant at each call) activation rows; acc[t]
 * lane r = the dot of row r with activation row t. */
INLINE void q80_tile(int64_t nb, const uint8_t *const *rp, const void *a, size_t as, int nt, __m512 *acc,
                     int kind) {
    const size_t soff = q8_0_soff(nb);
    const size_t bsz = kind == K_Q4_0 ? sizeof(block_q4_0) : kind == K_Q5_0 ? sizeof(block_q5_0) : sizeof(block_q8_0);
    /* one dependency chain of 8 vpdpbusd per token; with few tokens split
     * it in two so consecutive blocks overlap less on its latency */
    const int split = nt < 4;
    for (int64_t i = 0; i < nb; i++) {
        const size_t off = (size_t)i * bsz;
        prefetch_next(rp, bsz, i, nb);
        __m512i q[8]; /* q[m] lane r: elements 4m..4m+3 of row r's block, unsigned */
        if (kind != K_Q8_0) {
            const __m512i m4 = _mm512_set1_epi8(15);
            __m512i z[4];
            /* dword m: low nibbles 4m.., high nibbles 16 + 4m.. */
            load_t4(rp, off + (kind == K_Q4_0 ? 2 : offsetof(block_q5_0, qs)), z);
            for (int m = 0; m < 4; m++) {
                q[m] = _mm512_and_si512(z[m], m4);
                q[4 + m] = _mm512_and_si512(_mm512_srli_epi16(z[m], 4), m4);
            }
            if (kind == K_Q5_0) add_q5_bits(load_u32x16(rp, off + offsetof(block_q5_0, qh)), q);
        } else {
            const __m512i x80 = _mm512_set1_epi8((char)0x80);
            load_t4(rp, off + 2, q);
            load_t4(rp, off + 18, q + 4);
            for (int m = 0; m < 8; m++) q[m] = _mm512_xor_si512(q[m], x80);
        }
        const __m512 dw = load_h16(rp, off);
        for (int t = 0; t < nt; t++) {
            const int8_t *qa = ((const block_q8_0 *)((const uint8_t *)a + (size_t)t * as) + i)->qs;
            const cpu_act_aux *x = aux_at(a, as, t, soff, i);
            __m512i s = _mm512_set1_epi32(kind == K_Q4_0 ? x->nsum8 : kind == K_Q5_0 ? x->nsum16 : x->nsum128);
            if (split) {
                __m512i s2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[4], bcast4(qa + 16));
                for (int m = 0; m < 4; m++) s = _mm512_dpbusd_epi32(s, q[m], bcast4(qa + 4 * m));
                for (int m = 5; m < 8; m++) s2 = _mm512_dpbusd_epi32(s2, q[m], bcast4(qa + 4 * m));
                s = _mm512_add_epi32(s, s2);
            } else {
                for (int m = 0; m < 8; m++) s = _mm512_dpbusd_epi32(s, q[m], bcast4(qa + 4 * m));
            }
            __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(x->d));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(sc, _mm512_cvtepi32_ps(s)));
        }
    }
}

/* ---- Q4_K weights x Q8_K activations ------------------------------------------
 * Per super-block and lane, quant_dot_ref's exact integers
 *   sumi = sum_j sc[j] (q . qa over sub-block j)   (vpdpbusd, vpmulld)
 *   summ = sum_j mn[j] (bsums[2j] + bsums[2j+1])    (vpdpwssd on bsum pairs)
 * then acc += da * (d * sumi - dmin * summ). The 16-byte header (d, dmin,
 * the 12 scale bytes) is transposed like the quants, so the 6-bit scale
 * unpacking of quant_k_scales runs on 16 rows at once. */

/* Byte k (0..3) of every dword, zero-extended. */
INLINE __m512i byte_k(__m512i v, int k) {
    if (k == 3) return _mm512_srli_epi32(v, 24);
    return _mm512_and_si512(k ? _mm512_srli_epi32(v, 8 * k) : v, _mm512_set1_epi32(0xFF));
}

/* The chain of vpdpbusd over nq dwords: s + sum_m q[m] . qa[4m..4m+3],
 * split in two for few tokens (shorter latency chain). */
INLINE __m512i dp_chain(__m512i s, const __m512i *q, const int8_t *qa, int nq, int split) {
    if (!split || nq < 4) {
        for (int m = 0; m < nq; m++) s = _mm512_dpbusd_epi32(s, q[m], bcast4(qa + 4 * m));
        return s;
    }
    __m512i s2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[nq / 2], bcast4(qa + 4 * (nq / 2)));
    for (int m = 0; m < nq / 2; m++) s = _mm512_dpbusd_epi32(s, q[m], bcast4(qa + 4 * m));
    for (int m = nq / 2 + 1; m < nq; m++) s2 = _mm512_dpbusd_epi32(s2, q[m], bcast4(qa + 4 * m));
    return _mm512_add_epi32(s, s2);
}

INLINE const block_q8_K *ak_at(const void *a, size_t as, int t, int64_t i) {
    return (const block_q8_K *)((const uint8_t *)a + (size_t)t * as) + i;
}

/* ---- Q4_1 / Q5_1 weights x Q8_1 activations ------------------------------------
 * Per block and lane: s = exact sum(q qa) (q unsigned, no offset), then
 * quant_dot_ref's acc += (dw * da) * s + m * sa, with da and sa the exact
 * float copies from the activation tail. */

INLINE void q81_tile(int64_t nb, const uint8_t *const *rp, const void *a, size_t as, int nt, __m512 *acc,
                     int five) {
    const size_t soff = (nb * sizeof(block_q8_1) + 63) & ~(size_t)63;
    const size_t bsz = five ? sizeof(block_q5_1) : sizeof(block_q4_1);
    const size_t qoff = five ? offsetof(block_q5_1, qs) : offsetof(block_q4_1, qs);
    const __m512i m4 = _mm512_set1_epi8(15);
    const int split = nt < 4;
    for (int64_t i = 0; i < nb; i++) {
        const size_t off = (size_t)i * bsz;
        prefetch_next(rp, bsz, i, nb);
        __m512i q[8], z[4];
        load_t4(rp, off + qoff, z);
        for (int m = 0; m < 4; m++) {
            q[m] = _mm512_and_si512(z[m], m4);
            q[4 + m] = _mm512_and_si512(_mm512_srli_epi16(z[m], 4), m4);
        }
        if (five) add_q5_bits(load_u32x16(rp, off + offsetof(block_q5_1, qh)), q);
        const __m512i dm = load_u32x16(rp, off); /* d | m << 16 */
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
        const __m512 mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
        for (int t = 0; t < nt; t++) {
            const int8_t *qa = ((const block_q8_1 *)((const uint8_t *)a + (size_t)t * as) + i)->qs;
            const cpu_act_aux *x = aux_at(a, as, t, soff, i);
            __m512i s = dp_chain(_mm512_setzero_si512(), q, qa, 8, split);
            __m512 p = _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(x->d)), _mm512_cvtepi32_ps(s));
            acc[t] = _mm512_add_ps(acc[t], _mm512_add_ps(p, _mm512_mul_ps(mw, _mm512_set1_ps(x->s))));
        }
    }
}

INLINE void q4k_tile(int64_t nsb, const uint8_t *const *rp, const void *a, size_t as, int nt, __m512 *acc,
                     int five) {
    const __m512i m4 = _mm512_set1_epi8(15), m6 = _mm512_set1_epi32(0x3f3f3f3f);
    const __m512i lo4 = _mm512_set1_epi32(0x0f0f0f0f), hi2 = _mm512_set1_epi32(0x30303030);
    const size_t bsz = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qoff = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    const int split = nt < 4;
    for (int64_t i = 0; i < nsb; i++) {
        const size_t off = (size_t)i * bsz;
        prefetch_next(rp, bsz, i, nsb);
        __m512i h[4]; /* d | dmin << 16, then the scale words w0, w1, w2 of quant_k_scales */
        load_t4(rp, off, h);
        const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h[0]));
        const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h[0], 16)));
        const __m512i sc03 = _mm512_and_si512(h[1], m6);
        const __m512i sc47 = _mm512_or_si512(_mm512_and_si512(h[3], lo4),
                                             _mm512_and_si512(_mm512_srli_epi32(h[1], 2), hi2));
        __m512 fm[MAXT]; /* dmin * summ */
        {
            const __m512i mn03 = _mm512_and_si512(h[2], m6);
            const __m512i mn47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 4), lo4),
                                                 _mm512_and_si512(_mm512_srli_epi32(h[2], 2), hi2));
            __m512i mnp[8]; /* mn[j] in both 16-bit halves */
            for (int j = 0; j < 8; j++) {
                __m512i v = byte_k(j < 4 ? mn03 : mn47, j & 3);
                mnp[j] = _mm512_or_si512(v, _mm512_slli_epi32(v, 16));
            }
            for (int t = 0; t < nt; t++) {
                const int16_t *bs = ak_at(a, as, t, i)->bsums;
                __m512i sm = _mm512_setzero_si512();
                for (int j = 0; j < 8; j++) sm = _mm512_dpwssd_epi32(sm, mnp[j], bcast4(bs + 2 * j));
                fm[t] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(sm));
            }
        }
        __m512i sumi[MAXT];
        for (int t = 0; t < nt; t++) sumi[t] = _mm512_setzero_si512();
        __m512i qh[8]; /* Q5_K: qh[m] lane r = qh[4m..4m+3] of row r */
        if (five) {
            load_t4(rp, off + offsetof(block_q5_K, qh), qh);
            load_t4(rp, off + offsetof(block_q5_K, qh) + 16, qh + 4);
        }
        for (int c = 0; c < 4; c++) { /* qs[32c..32c+31]: sub-blocks 2c (low nibbles), 2c+1 (high) */
            __m512i z[8];
            load_t4(rp, off + qoff + 32 * c, z);
            load_t4(rp, off + qoff + 16 + 32 * c, z + 4);
            for (int hi = 0; hi < 2; hi++) {
                const __m512i sc = byte_k(c < 2 ? sc03 : sc47, (2 * c + hi) & 3);
                __m512i q[8];
                for (int m = 0; m < 8; m++) q[m] = _mm512_and_si512(hi ? _mm512_srli_epi16(z[m], 4) : z[m], m4);
                if (five) { /* bit b = 2c + hi of each qh byte to bit 4 (16-bit shifts: no byte crosses into bit 4) */
                    const int b = 2 * c + hi;
                    const __m512i m16 = _mm512_set1_epi8(16);
                    for (int m = 0; m < 8; m++) {
                        __m512i u = b <= 4 ? _mm512_slli_epi16(qh[m], 4 - b) : _mm512_srli_epi16(qh[m], b - 4);
                        q[m] = _mm512_or_si512(q[m], _mm512_and_si512(u, m16));
                    }
                }
                for (int t = 0; t < nt; t++) {
                    const int8_t *qa = ak_at(a, as, t, i)->qs + 64 * c + 32 * hi;
                    __m512i p = dp_chain(_mm512_setzero_si512(), q, qa, 8, split);
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(p, sc));
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            __m512 x = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t])), fm[t]);
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_set1_ps(ak_at(a, as, t, i)->d), x));
        }
    }
}

/* ---- Q6_K weights x Q8_K activations -------------------------------------------
 * q in 0..63 unsigned; per lane sumi = sum_g sc[g] (q . qa over group g)
 * - 32 sum_g sc[g] bsums[g], exact, then acc += da * (d * sumi), as
 * quant_dot_ref. Quants are transposed a quarter of a half at a time: for
 * half h and mr (elements 16mr..16mr+15 of each 32-run) the ql dwords of
 * runs 0/2 and 1/3 and the matching qh dwords, 12 registers. */
INLINE void q6k_tile(int64_t nsb, const uint8_t *const *rp, const void *a, size_t as, int nt, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const size_t bsz = sizeof(block_q6_K);
    for (int64_t i = 0; i < nsb; i++) {
        const size_t off = (size_t)i * bsz;
        prefetch_next(rp, bsz, i, nsb);
        __m512i S[4]; /* S[k]: scales[4k..4k+3] (signed bytes) */
        load_t4(rp, off + offsetof(block_q6_K, scales), S);
        const __m512 d = load_h16(rp, off + offsetof(block_q6_K, d));
        __m512i sumi[MAXT];
        { /* sumi starts at -32 sum_g sc[g] bsums[g]: vpdpwssd on (sc[2k'], sc[2k'+1]) pairs */
            const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
            __m512i scp[8];
            for (int k = 0; k < 4; k++) {
                __m512i e = _mm512_srai_epi16(_mm512_slli_epi16(S[k], 8), 8); /* words: b0, b2 */
                __m512i o = _mm512_srai_epi16(S[k], 8);                       /* words: b1, b3 */
                scp[2 * k] = _mm512_or_si512(_mm512_and_si512(e, lo16), _mm512_slli_epi32(o, 16));
                scp[2 * k + 1] = _mm512_or_si512(_mm512_srli_epi32(e, 16), _mm512_andnot_si512(lo16, o));
            }
            for (int t = 0; t < nt; t++) {
                const int16_t *bs = ak_at(a, as, t, i)->bsums;
                __m512i c = _mm512_setzero_si512();
                for (int k = 0; k < 8; k++) c = _mm512_dpwssd_epi32(c, scp[k], bcast4(bs + 2 * k));
                sumi[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(c, 5));
            }
        }
        for (int h = 0; h < 2; h++)
            for (int mr = 0; mr < 2; mr++) {
                __m512i la[4], lb[4], qh[4];
                load_t4(rp, off + 64 * h + 16 * mr, la);      /* runs 0 (low) and 2 (high nibbles) */
                load_t4(rp, off + 64 * h + 32 + 16 * mr, lb); /* runs 1 and 3 */
                load_t4(rp, off + offsetof(block_q6_K, qh) + 32 * h + 16 * mr, qh);
                for (int kq = 0; kq < 4; kq++) {
                    const int g = 8 * h + 2 * kq + mr;
                    const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(S[g >> 2], 24 - 8 * (g & 3)), 24);
                    __m512i q[4];
                    for (int m = 0; m < 4; m++) {
                        __m512i l = kq & 1 ? lb[m] : la[m];
                        l = _mm512_and_si512(kq & 2 ? _mm512_srli_epi16(l, 4) : l, m4);
                        __m512i u = kq == 0 ? _mm512_slli_epi16(qh[m], 4)
                                  : kq == 1 ? _mm512_slli_epi16(qh[m], 2)
                                  : kq == 2 ? qh[m] : _mm512_srli_epi16(qh[m], 2);
                        q[m] = _mm512_or_si512(l, _mm512_and_si512(u, m30));
                    }
                    for (int t = 0; t < nt; t++) {
                        const int8_t *qa = ak_at(a, as, t, i)->qs + 128 * h + 32 * kq + 16 * mr;
                        __m512i p = dp_chain(_mm512_setzero_si512(), q, qa, 4, 0);
                        sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(p, sc));
                    }
                }
            }
        for (int t = 0; t < nt; t++) {
            __m512 x = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t]));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_set1_ps(ak_at(a, as, t, i)->d), x));
        }
    }
}

/* ---- entry points ------------------------------------------------------------
 * The tile for nt tokens, stored; dotn is the tile with one row. */

#define DEFINE_GEMM(name, BODY)                                                                         \
    INLINE void name##_nt(int64_t n, const uint8_t *const *rp, int nr, const void *a, size_t as, int nt, \
                          float *y, size_t ys) {                                                        \
        __m512 acc[MAXT];                                                                               \
        for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();                                      \
        BODY;                                                                                           \
        for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(y + (size_t)t * ys, row_mask(nr), acc[t]);   \
    }                                                                                                   \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, \
                            float *y, size_t ys) {                                                      \
        const uint8_t *rp[NR];                                                                          \
        row_ptrs(w, ws, nr, rp);                                                                        \
        switch (na) {                                                                                   \
        case 1: name##_nt(n, rp, nr, a, as, 1, y, ys); break;                                           \
        case 2: name##_nt(n, rp, nr, a, as, 2, y, ys); break;                                           \
        case 3: name##_nt(n, rp, nr, a, as, 3, y, ys); break;                                           \
        case 4: name##_nt(n, rp, nr, a, as, 4, y, ys); break;                                           \
        case 5: name##_nt(n, rp, nr, a, as, 5, y, ys); break;                                           \
        case 6: name##_nt(n, rp, nr, a, as, 6, y, ys); break;                                           \
        case 7: name##_nt(n, rp, nr, a, as, 7, y, ys); break;                                           \
        default: name##_nt(n, rp, nr, a, as, 8, y, ys); break;                                          \
        }                                                                                               \
    }
#define DEFINE_DOTN(name)                                                                               \
    static void dotn_##name(int64_t n, const void *w, const void *a, size_t as, int na, float *out) {   \
        gemm_##name(n, w, 0, 1, a, as, na, out, 1);                                                     \
    }

DEFINE_GEMM(q4_0, q80_tile(n / 32, rp, a, as, nt, acc, K_Q4_0))
DEFINE_DOTN(q4_0)
DEFINE_GEMM(q8_0, q80_tile(n / 32, rp, a, as, nt, acc, K_Q8_0))
DEFINE_DOTN(q8_0)
DEFINE_GEMM(q5_0, q80_tile(n / 32, rp, a, as, nt, acc, K_Q5_0))
DEFINE_DOTN(q5_0)
DEFINE_GEMM(q4_1, q81_tile(n / 32, rp, a, as, nt, acc, 0))
DEFINE_DOTN(q4_1)
DEFINE_GEMM(q5_1, q81_tile(n / 32, rp, a, as, nt, acc, 1))
DEFINE_DOTN(q5_1)
DEFINE_GEMM(q4_K, q4k_tile(n / 256, rp, a, as, nt, acc, 0))
DEFINE_DOTN(q4_K)
DEFINE_GEMM(q5_K, q4k_tile(n / 256, rp, a, as, nt, acc, 1))
DEFINE_DOTN(q5_K)
DEFINE_GEMM(q6_K_tile, q6k_tile(n / 256, rp, a, as, nt, acc))

/* Q6_K at one token: the row-by-row AVX-512 kernel, measured faster there
 * (on tiny256's 32000-row output matrix ~10% of the whole generation
 * speed: the tile's quant assembly costs more than one token repays, and
 * 16 row streams prefetch worse than one). Both are bit-identical to
 * quant_dot_ref, so mixing them keeps every result the same. */
static void gemm_q6_K(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, float *y,
                      size_t ys) {
    if (na == 1) {
        for (int r = 0; r < nr; r++)
            cpu_kernels_avx512.dotn[QT_Q6_K](n, (const uint8_t *)w + (size_t)r * ws, a, as, 1, y + r);
        return;
    }
    gemm_q6_K_tile(n, w, ws, nr, a, as, na, y, ys);
}
static void dotn_q6_K(int64_t n, const void *w, const void *a, size_t as, int na, float *out) {
    gemm_q6_K(n, w, 0, 1, a, as, na, out, 1);
}

/* ---- single dots ---------------------------------------------------------------
 * Plain activation blocks (no tail): the exact block sums one block at a
 * time, then quant_dot_ref's float steps. Not on the matmul path. */

INLINE int hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

static float dot_q4_0(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        __m128i r = _mm_loadu_si128((const __m128i *)x[i].qs);
        __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(r, 4), r), _mm256_set1_epi8(15));
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, qa);
        p = _mm256_sub_epi32(p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), qa));
        sum += h2f(x[i].d) * h2f(y[i].d) * (float)hsum256_epi32(p);
    }
    return sum;
}

static float dot_q5_0(int64_t n, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q = _mm256_or_si256(nibbles32(x[i].qs), _mm256_and_si256(bits32(x[i].qh), _mm256_set1_epi8(16)));
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, qa);
        p = _mm256_sub_epi32(p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), qa));
        sum += h2f(x[i].d) * h2f(y[i].d) * (float)hsum256_epi32(p);
    }
    return sum;
}

/* Q4_1 / Q5_1 (five): quant_dot_ref's (dw * da) * s + m * sa per block. */
INLINE float dot_q81(int64_t n, const void *w, const void *a, int five) {
    const block_q8_1 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const block_q4_1 *x4 = (const block_q4_1 *)w + i;
        const block_q5_1 *x5 = (const block_q5_1 *)w + i;
        __m256i q = nibbles32(five ? x5->qs : x4->qs);
        if (five) q = _mm256_or_si256(q, _mm256_and_si256(bits32(x5->qh), _mm256_set1_epi8(16)));
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        int s = hsum256_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, qa));
        sum += h2f(five ? x5->d : x4->d) * h2f(y[i].d) * (float)s + h2f(five ? x5->m : x4->m) * h2f(y[i].s);
    }
    return sum;
}
static float dot_q4_1(int64_t n, const void *w, const void *a) { return dot_q81(n, w, a, 0); }
static float dot_q5_1(int64_t n, const void *w, const void *a) { return dot_q81(n, w, a, 1); }

static float dot_q8_0(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)x[i].qs);
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(qa, q));
        sum += h2f(x[i].d) * h2f(y[i].d) * (float)hsum256_epi32(p);
    }
    return sum;
}

/* Q4_K / Q5_K / Q6_K: the AVX-512 (or AVX2) single dot is bit-identical
 * to quant_dot_ref already, as the tiles are. */
static float dot_q4_K(int64_t n, const void *w, const void *a) { return cpu_kernels_avx2.dot[QT_Q4_K](n, w, a); }
static float dot_q5_K(int64_t n, const void *w, const void *a) { return cpu_kernels_avx2.dot[QT_Q5_K](n, w, a); }
static float dot_q6_K(int64_t n, const void *w, const void *a) { return cpu_kernels_avx512.dot[QT_Q6_K](n, w, a); }

const cpu_kernel_table cpu_kernels_avx512vnni = {
    .dot = {[QT_Q4_0] = dot_q4_0, [QT_Q5_0] = dot_q5_0, [QT_Q4_1] = dot_q4_1, [QT_Q5_1] = dot_q5_1,
            [QT_Q8_0] = dot_q8_0, [QT_Q4_K] = dot_q4_K, [QT_Q5_K] = dot_q5_K, [QT_Q6_K] = dot_q6_K},
    .dotn = {[QT_Q4_0] = dotn_q4_0, [QT_Q5_0] = dotn_q5_0, [QT_Q4_1] = dotn_q4_1, [QT_Q5_1] = dotn_q5_1,
             [QT_Q8_0] = dotn_q8_0, [QT_Q4_K] = dotn_q4_K, [QT_Q5_K] = dotn_q5_K, [QT_Q6_K] = dotn_q6_K},
    .gemm = {[QT_Q4_0] = gemm_q4_0, [QT_Q5_0] = gemm_q5_0, [QT_Q4_1] = gemm_q4_1, [QT_Q5_1] = gemm_q5_1,
             [QT_Q8_0] = gemm_q8_0, [QT_Q4_K] = gemm_q4_K, [QT_Q5_K] = gemm_q5_K, [QT_Q6_K] = gemm_q6_K},
};
