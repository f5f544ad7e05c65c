/* dot_avx2.c — AVX2 + FMA + F16C dot products and activation quantizers.
 * Compiled with -mavx2 -mfma -mf16c and only called after cpu_isa_detect
 * saw those features.
 *
 * Every kernel is written once as an always-inline body over `nt`
 * activation rows (1..CPU_DOTN_MAX, a compile-time constant at each call
 * site): the weight block is decoded once, then used for each row with its
 * own accumulators. Each row's arithmetic is the same sequence whatever nt
 * is, so the multi-row form is bit-identical to the single dot.
 *
 * Q4_0 and Q8_0 also have tiles (cpu_gemm_fn, rows in lanes, see "tiles"
 * below), whose numerics their dot and dotn share instead.
 *
 * Integer products use maddubs (u8 x s8 -> s16 pairs); every pair sum stays
 * below 2^15 because weights are at most 6 bits unsigned or |q| <= 128 and
 * activations are in [-127, 127]. */
#include <immintrin.h>
#include <string.h>
#include "backend/cpu/simd_x86.h"
#include "core/fp16.h"

/* 32 products of an unsigned ux (0..63) and a signed y, summed in fours
 * into 8 int32, as float. */
INLINE __m256 dot_u8(__m256i ux, __m256i y) {
    __m256i p = _mm256_maddubs_epi16(ux, y);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* ---- F32 / F16 / BF16 weights x F32 activations --------------------------- */

enum { W_F32, W_F16, W_BF16 };

INLINE __m256 load_w8(const void *w, int64_t i, int kind) {
    if (kind == W_F32) return _mm256_loadu_ps((const float *)w + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (kind == W_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE float load_w1(const void *w, int64_t i, int kind) {
    if (kind == W_F32) return ((const float *)w)[i];
    uint16_t h = ((const uint16_t *)w)[i];
    return kind == W_F16 ? h2f(h) : bf16_to_f32(h);
}

/* One column chunk (n <= CPU_FLOAT_KCHUNK): 16 elements a step in two
 * accumulators, one more 8-wide step, then a scalar tail: any n works. */
INLINE void float_chunk(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int kind) {
    __m256 acc0[MAXT], acc1[MAXT];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    int64_t i = 0;
    const size_t esz = kind == W_F32 ? 4 : 2;
    for (; i + 16 <= n; i += 16) {
        PREFETCH_W((const uint8_t *)w + (size_t)i * esz);
        __m256 w0 = load_w8(w, i, kind), w1 = load_w8(w, i + 8, kind);
        for (int t = 0; t < nt; t++) {
            const float *x = AROW(float, a, t, as);
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1[t]);
        }
    }
    int64_t i8 = i;
    if (i + 8 <= n) {
        __m256 w0 = load_w8(w, i, kind);
        for (int t = 0; t < nt; t++)
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(AROW(float, a, t, as) + i), acc0[t]);
        i8 = i + 8;
    }
    for (int t = 0; t < nt; t++) {
        const float *x = AROW(float, a, t, as);
        float s = hsum_ps(_mm256_add_ps(acc0[t], acc1[t]));
        for (int64_t j = i8; j < n; j++) s += load_w1(w, j, kind) * x[j];
        out[t] = s;
    }
}

/* The chunk partials summed left to right (the CPU_FLOAT_KCHUNK contract). */
INLINE void float_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int kind) {
    const size_t esz = kind == W_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < n || k0 == 0; k0 += CPU_FLOAT_KCHUNK) {
        int64_t kn = n - k0 < CPU_FLOAT_KCHUNK ? n - k0 : CPU_FLOAT_KCHUNK;
        float part[MAXT];
        float_chunk(kn, (const uint8_t *)w + (size_t)k0 * esz, (const float *)a + k0, as, nt, part, kind);
        for (int t = 0; t < nt; t++) out[t] = k0 == 0 ? part[t] : out[t] + part[t];
    }
}

/* Two accumulators per row need 2 nt registers: rows go four at a time
 * (each row's arithmetic is independent, so this changes no bits). */
INLINE void float_rows(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int kind) {
    if (nt <= 4) {
        float_dotn(n, w, a, as, nt, out, kind);
    } else {
        float_dotn(n, w, a, as, 4, out, kind);
        float_dotn(n, w, (const char *)a + 4 * as, as, nt - 4, out + 4, kind);
    }
}
INLINE void f32_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    float_rows(n, w, a, as, nt, out, W_F32);
}
INLINE void f16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    float_rows(n, w, a, as, nt, out, W_F16);
}
INLINE void bf16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    float_rows(n, w, a, as, nt, out, W_BF16);
}

/* ---- Q4_0 / Q5_0 / Q8_0 weights x Q8_0 activations ------------------------ */

enum { K_Q4_0, K_Q5_0, K_Q8_0 };

/* Q4_0 / Q5_0: the unsigned q (0..15 / 0..31) of block i and its scale d
 * (half bits); the offset (8 / 16) is taken off later as off * sum(qa).
 * Q8_0: the signed q. */
INLINE __m256i decode_q(const void *w, int64_t i, int kind, uint16_t *d) {
    if (kind == K_Q4_0) {
        const block_q4_0 *b = (const block_q4_0 *)w + i;
        *d = b->d;
        return nibbles32(b->qs);
    }
    if (kind == K_Q5_0) {
        const block_q5_0 *b = (const block_q5_0 *)w + i;
        *d = b->d;
        return _mm256_or_si256(nibbles32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10)));
    }
    const block_q8_0 *b = (const block_q8_0 *)w + i;
    *d = b->d;
    return _mm256_loadu_si256((const __m256i *)b->qs);
}

/* The tail record (cpu_act_aux) of activation block i of row t. */
INLINE const cpu_act_aux *act_aux(const void *a, size_t as, int t, int64_t i, size_t soff) {
    return (const cpu_act_aux *)((const char *)a + (size_t)t * as + soff) + i;
}

/* Scale of activation block i of row t: from the float tail of the matmul
 * layout (tab, the multi-row form) or from the block's half (single dot).
 * The two are the same value, so both forms stay bit-identical. */
INLINE float act_d(const void *a, size_t as, int t, int64_t i, size_t soff, int tab, uint16_t half) {
    return tab ? act_aux(a, as, t, i, soff)->d : h2f(half);
}

/* -off * sum(qa) (off 8 or 16) of activation block i of row t in lane 0 of
 * a vector: from the tail (tab) or counted. */
INLINE __m256i act_noffsum(const void *a, size_t as, int t, int64_t i, size_t soff, int tab, int off, __m256i y) {
    int v;
    if (tab) {
        const cpu_act_aux *x = act_aux(a, as, t, i, soff);
        v = off == 8 ? x->nsum8 : x->nsum16;
    } else {
        __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(1), y);
        v = -off * hsum_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    }
    return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v));
}

/* 8 int32 lanes of q . qa (four products each). Q4_0/Q5_0 multiply the
 * unsigned q directly and add -off * sum(qa) to lane 0: the lanes then
 * sum to exactly sum((q - off) qa), with two fewer multiply-port operations
 * per block than moving q's sign onto qa (which Q8_0 still needs). */
INLINE void q80_block(const void *w, const void *a, size_t as, int nt, int64_t i, int kind, int tab,
                      size_t soff, __m256 *acc) {
    uint16_t hd;
    __m256i q = decode_q(w, i, kind, &hd);
    __m256i aq = kind == K_Q8_0 ? _mm256_sign_epi8(q, q) : q;
    /* converted as a vector so the compiler keeps d * da a vector multiply
     * with da broadcast from memory (a load, not a shuffle) */
    __m256 d = _mm256_cvtph_ps(_mm_set1_epi16((short)hd));
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *b = AROW(block_q8_0, a, t, as) + i;
        __m256i y = _mm256_loadu_si256((const __m256i *)b->qs);
        __m256i p = _mm256_maddubs_epi16(aq, kind == K_Q8_0 ? _mm256_sign_epi8(y, q) : y);
        __m256i p32 = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
        if (kind != K_Q8_0) {
            p32 = _mm256_add_epi32(p32, act_noffsum(a, as, t, i, soff, tab, kind == K_Q4_0 ? 8 : 16, y));
        }
        __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(act_d(a, as, t, i, soff, tab, b->d)));
        acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p32), acc[t]);
    }
}

/* One FMA chain per activation row (with up to 8 rows, two would not fit
 * in 16 registers; for one row the chain's latency hides under the block's
 * other work). */
INLINE void q80_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int kind, int tab) {
    int64_t nb = n / 32;
    size_t soff = tab ? cpu_act_scales_offset(QT_Q8_0, n) : 0;
    __m256 acc[MAXT];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        if (!(i & 1)) PREFETCH_W((const uint8_t *)w + i * (kind == K_Q4_0 ? 18 : kind == K_Q5_0 ? 22 : 34));
        q80_block(w, a, as, nt, i, kind, tab, soff, acc);
    }
    for (int t = 0; t < nt; t++) out[t] = hsum_ps(acc[t]);
}

INLINE void q5_0_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    q80_dotn(n, w, a, as, nt, out, K_Q5_0, tab);
}

/* ---- Q4_1 / Q5_1 weights x Q8_1 activations -------------------------------
 * x = d q + m, so w . a = d da (q . qa) + m (da sum qa) = ... + m * a.s. */

INLINE void q81_block(const void *w, const void *a, size_t as, int nt, int64_t i, int five, int tab,
                      size_t soff, __m256 *acc, float *summ) {
    __m256i q;
    uint16_t hd, hm;
    if (five) {
        const block_q5_1 *b = (const block_q5_1 *)w + i;
        q = _mm256_or_si256(nibbles32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10)));
        hd = b->d, hm = b->m;
    } else {
        const block_q4_1 *b = (const block_q4_1 *)w + i;
        q = nibbles32(b->qs);
        hd = b->d, hm = b->m;
    }
    __m256 d = _mm256_set1_ps(h2f(hd));
    float m = h2f(hm);
    for (int t = 0; t < nt; t++) {
        const block_q8_1 *b = AROW(block_q8_1, a, t, as) + i;
        __m256 p = dot_u8(q, _mm256_loadu_si256((const __m256i *)b->qs));
        __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(act_d(a, as, t, i, soff, tab, b->d)));
        acc[t] = _mm256_fmadd_ps(s, p, acc[t]);
        summ[t] += m * (tab ? act_aux(a, as, t, i, soff)->s : h2f(b->s));
    }
}

INLINE void q81_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int five, int tab) {
    int64_t nb = n / 32;
    size_t soff = tab ? cpu_act_scales_offset(QT_Q8_1, n) : 0;
    __m256 acc[MAXT];
    float summ[MAXT];
    for (int t = 0; t < nt; t++) { acc[t] = _mm256_setzero_ps(); summ[t] = 0; }
    for (int64_t i = 0; i < nb; i++) {
        if (!(i & 1)) PREFETCH_W((const uint8_t *)w + i * (five ? 24 : 20));
        q81_block(w, a, as, nt, i, five, tab, soff, acc, summ);
    }
    for (int t = 0; t < nt; t++) out[t] = hsum_ps(acc[t]) + summ[t];
}

INLINE void q4_1_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    q81_dotn(n, w, a, as, nt, out, 0, tab);
}
INLINE void q5_1_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    q81_dotn(n, w, a, as, nt, out, 1, tab);
}

/* ---- Q4_K / Q5_K weights x Q8_K activations -------------------------------
 * Per super-block the integer sums sumi = sum_j sc[j] (q . qa)_j and
 * summ = sum_j mn[j] (bsums pair j) are exact, then scaled in float exactly
 * as quant_dot_ref does: the result matches the reference bit for bit. */

INLINE void qk_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int five) {
    const __m256i m4 = _mm256_set1_epi8(15), m16 = _mm256_set1_epi8(0x10);
    float sum[MAXT];
    for (int t = 0; t < nt; t++) sum[t] = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q4_K *b4 = (const block_q4_K *)w + i;
        const block_q5_K *b5 = (const block_q5_K *)w + i;
        const uint8_t *qs = five ? b5->qs : b4->qs;
        PREFETCH_W(b4); PREFETCH_W((const uint8_t *)b4 + 64); PREFETCH_W((const uint8_t *)b4 + 128);
        uint8_t sc[8], mn[8];
        quant_k_scales(five ? b5->scales : b4->scales, sc, mn);
        __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
        __m256i mn_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)b5->qh) : _mm256_setzero_si256();
        __m256i iacc[MAXT];
        for (int t = 0; t < nt; t++) iacc[t] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) { /* 64 elements: sub-blocks 2c (low nibbles), 2c+1 (high) */
            __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if (five) { /* bits 2c, 2c+1 of qh (shifted down to 0, 1) become bit 4 */
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
                hb = _mm256_srli_epi16(hb, 2);
            }
            __m256i slo = _mm256_set1_epi16(sc[2 * c]), shi = _mm256_set1_epi16(sc[2 * c + 1]);
            for (int t = 0; t < nt; t++) {
                const int8_t *aq = (AROW(block_q8_K, a, t, as) + i)->qs + 64 * c;
                __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)aq)), slo);
                __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(aq + 32))), shi);
                iacc[t] = _mm256_add_epi32(iacc[t], _mm256_add_epi32(plo, phi));
            }
        }
        float d = h2f(five ? b5->d : b4->d), dmin = h2f(five ? b5->dmin : b4->dmin);
        __m256i vm[MAXT];
        int sumi[MAXT], summ[MAXT];
        for (int t = 0; t < nt; t++)
            vm[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(AROW(block_q8_K, a, t, as) + i)->bsums), mn_pairs);
        hsums_epi32(iacc, nt, sumi);
        hsums_epi32(vm, nt, summ);
        for (int t = 0; t < nt; t++)
            sum[t] += (AROW(block_q8_K, a, t, as) + i)->d * (d * (float)sumi[t] - dmin * (float)summ[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = sum[t];
}

INLINE void q4_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    qk_dotn(n, w, a, as, nt, out, 0);
}
INLINE void q5_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    qk_dotn(n, w, a, as, nt, out, 1);
}

/* ---- Q6_K weights x Q8_K activations --------------------------------------
 * maddubs needs an unsigned side, so use q in 0..63 and subtract
 * 32 * sum_g sc[g] bsums[g] afterwards. Bit-identical to quant_dot_ref. */

INLINE void q6_part(__m256i q, int s_lo, int s_hi, const void *a, size_t as, int nt, int64_t i, int off,
                    __m256i *iacc) {
    __m256i s = _mm256_set_m128i(_mm_set1_epi16((short)s_hi), _mm_set1_epi16((short)s_lo));
    for (int t = 0; t < nt; t++) {
        const int8_t *aq = (AROW(block_q8_K, a, t, as) + i)->qs + off;
        __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)aq));
        iacc[t] = _mm256_add_epi32(iacc[t], _mm256_madd_epi16(p, s));
    }
}

INLINE void q6_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int tab) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    float sum[MAXT];
    for (int t = 0; t < nt; t++) sum[t] = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q6_K *b = (const block_q6_K *)w + i;
        PREFETCH_W(b); PREFETCH_W((const uint8_t *)b + 64); PREFETCH_W((const uint8_t *)b + 128);
        PREFETCH_W((const uint8_t *)b + 192);
        const int8_t *sc = b->scales;
        __m256i iacc[MAXT];
        for (int t = 0; t < nt; t++) iacc[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) { /* 128 elements = 4 runs of 32 = groups 8h..8h+7 */
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            const int g = 8 * h, e = 128 * h;
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q6_part(q0, sc[g], sc[g + 1], a, as, nt, i, e, iacc);
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q6_part(q1, sc[g + 2], sc[g + 3], a, as, nt, i, e + 32, iacc);
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q6_part(q2, sc[g + 4], sc[g + 5], a, as, nt, i, e + 64, iacc);
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            q6_part(q3, sc[g + 6], sc[g + 7], a, as, nt, i, e + 96, iacc);
        }
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        float d = h2f(b->d);
        __m256i vc[MAXT];
        int sumi[MAXT], corr[MAXT];
        for (int t = 0; t < nt; t++)
            vc[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(AROW(block_q8_K, a, t, as) + i)->bsums), sc16);
        hsums_epi32(iacc, nt, sumi);
        hsums_epi32(vc, nt, corr);
        for (int t = 0; t < nt; t++)
            sum[t] += (AROW(block_q8_K, a, t, as) + i)->d * (d * (float)(sumi[t] - 32 * corr[t]));
    }
    for (int t = 0; t < nt; t++) out[t] = sum[t];
}

/* ---- Q4_0 / Q8_0 tiles: rows in lanes (cpu_gemm_fn) ----------------------------
 * As the AVX-512 VNNI tiles, with 8 rows per register and no vpdpbusd:
 * the blocks of 8 weight rows are transposed (4 bytes of a row per 32-bit
 * lane), so vpmaddubsw against 4 broadcast activation bytes advances 8 rows
 * at once. Per block and lane the exact integer s = sum((q - off) qa), then
 * acc = fma(dw * da, s, acc): the single dot (dot_q4_0 / dot_q8_0 below)
 * does the same scalar steps in the same order, so tile, dotn and dot are
 * bit-identical (not to quant_dot_ref: the fma rounds once where it rounds
 * twice).
 * Q4_0: q in 0..15, so the eight 16-bit pair sums of a block stay below
 * 8 * 2 * 15 * 127 < 2^15 and add up in 16 bits before one vpmaddwd.
 * Q8_0: q + 128 would saturate vpmaddubsw's pairs, and a transposed
 * nibble split of it measured slower than the old per-row kernel at one
 * token; so its blocks stay across the lanes, |q| times qa signed by q as
 * in the dot, for 8 rows, and an hadd tree turns the 8 rows' lane sums
 * into one vector of 8 row sums (exact, so the same numerics). */

enum { NR8 = 8 };

/* 16 bytes at off of rows rp[0..7], transposed: z[m] lane r = dword m of
 * row r (two rows per load, a 4 x 4 dword transpose in each 128-bit half). */
INLINE void load_t8(const uint8_t *const *rp, size_t off, __m256i *z) {
    __m256i v[4];
    for (int k = 0; k < 4; k++) /* 128-bit half l holds row 4l + k */
        v[k] = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(rp[4 + k] + off)),
                                _mm_loadu_si128((const __m128i *)(rp[k] + off)));
    __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    z[0] = _mm256_unpacklo_epi64(t0, t2);
    z[1] = _mm256_unpackhi_epi64(t0, t2);
    z[2] = _mm256_unpacklo_epi64(t1, t3);
    z[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* The half at off of each of the 8 rows, as floats. */
INLINE __m256 load_h8(const uint8_t *const *rp, size_t off) {
    uint16_t h[NR8];
    for (int r = 0; r < NR8; r++) memcpy(&h[r], rp[r] + off, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* sum over m < 8 of q[m] . qa[4m..4m+3] per lane, in 16-bit pairs. */
INLINE __m256i pairs8(const __m256i *q, const int8_t *qa) {
    __m256i s = _mm256_setzero_si256();
    for (int m = 0; m < 8; m++) {
        int32_t v;
        memcpy(&v, qa + 4 * m, 4);
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[m], _mm256_set1_epi32(v)));
    }
    return s;
}

/* Lane r = the sum of the 8 lanes of v[r]. */
INLINE __m256i tree8(const __m256i *v) {
    __m256i q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
}

/* Software prefetch of the next 8 rows (which the matmul reads next) as one
 * sequential stream, in step with the blocks, as the VNNI tiles do: the
 * hardware prefetchers follow 8 interleaved row streams poorly from DRAM,
 * and per-row prefetches cost Q8_0 15% at one token (measured). */
INLINE void prefetch_next8(const uint8_t *const *rp, size_t bsz, int64_t i, int64_t nb) {
    const size_t tile = NR8 * (size_t)nb * bsz;
    const uint8_t *next = rp[0] + tile;
    size_t p0 = (size_t)i * tile / (size_t)nb & ~(size_t)63, p1 = (size_t)(i + 1) * tile / (size_t)nb;
    for (size_t p = p0; p < p1; p += 64) _mm_prefetch((const char *)next + p, _MM_HINT_T1);
}

/* 8 rows (rp) x nt tokens: acc[t] lane r = the dot of row r with token t. */
INLINE void q80_tile8(int64_t nb, const uint8_t *const *rp, const void *a, size_t as, int nt, __m256 *acc,
                      int kind) {
    const size_t soff = ((size_t)nb * sizeof(block_q8_0) + 63) & ~(size_t)63;
    const size_t bsz = kind == K_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < nb; i++) {
        const size_t off = (size_t)i * bsz;
        prefetch_next8(rp, bsz, i, nb);
        __m256i q[8]; /* Q4_0: q[m] lane r = elements 4m..4m+3 of row r; Q8_0: row r's qs */
        if (kind == K_Q4_0) {
            __m256i z[4];
            load_t8(rp, off + 2, z);
            for (int m = 0; m < 4; m++) {
                q[m] = _mm256_and_si256(z[m], m4);
                q[4 + m] = _mm256_and_si256(_mm256_srli_epi16(z[m], 4), m4);
            }
        } else {
            for (int r = 0; r < NR8; r++) q[r] = _mm256_loadu_si256((const __m256i *)(rp[r] + off + 2));
        }
        const __m256 dw = load_h8(rp, off);
        for (int t = 0; t < nt; t++) {
            const int8_t *qa = (AROW(block_q8_0, a, t, as) + i)->qs;
            const cpu_act_aux *x = act_aux(a, as, t, i, soff);
            __m256i s;
            if (kind == K_Q8_0) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)qa);
                __m256i v[NR8];
                for (int r = 0; r < NR8; r++) {
                    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q[r], q[r]), _mm256_sign_epi8(y, q[r]));
                    v[r] = _mm256_madd_epi16(p, ones);
                }
                s = tree8(v);
            } else {
                s = _mm256_add_epi32(_mm256_madd_epi16(pairs8(q, qa), ones), _mm256_set1_epi32(x->nsum8));
            }
            __m256 sc = _mm256_mul_ps(dw, _mm256_set1_ps(x->d));
            acc[t] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(s), acc[t]);
        }
    }
}

/* A tile of nr (1..16) rows: two groups of 8 rows, rows >= nr repeating
 * row 0 in lanes that are never stored. */
INLINE void q80_gemm_nt(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nt, float *y,
                        size_t ys, int kind) {
    for (int g = 0; g < nr; g += NR8) {
        const uint8_t *rp[NR8];
        for (int r = 0; r < NR8; r++) rp[r] = (const uint8_t *)w + (size_t)(g + r < nr ? g + r : g) * ws;
        __m256 acc[MAXT];
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        q80_tile8(n / 32, rp, a, as, nt, acc, kind);
        const int cnt = nr - g < NR8 ? nr - g : NR8;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int t = 0; t < nt; t++) _mm256_maskstore_ps(y + (size_t)t * ys + g, mask, acc[t]);
    }
}

#define DEFINE_GEMM8(name, KIND)                                                                        \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, \
                            float *y, size_t ys) {                                                      \
        switch (na) {                                                                                   \
        case 1: q80_gemm_nt(n, w, ws, nr, a, as, 1, y, ys, KIND); break;                                \
        case 2: q80_gemm_nt(n, w, ws, nr, a, as, 2, y, ys, KIND); break;                                \
        case 3: q80_gemm_nt(n, w, ws, nr, a, as, 3, y, ys, KIND); break;                                \
        case 4: q80_gemm_nt(n, w, ws, nr, a, as, 4, y, ys, KIND); break;                                \
        case 5: q80_gemm_nt(n, w, ws, nr, a, as, 5, y, ys, KIND); break;                                \
        case 6: q80_gemm_nt(n, w, ws, nr, a, as, 6, y, ys, KIND); break;                                \
        case 7: q80_gemm_nt(n, w, ws, nr, a, as, 7, y, ys, KIND); break;                                \
        default: q80_gemm_nt(n, w, ws, nr, a, as, 8, y, ys, KIND); break;                               \
        }                                                                                               \
    }                                                                                                   \
    static void dotn_##name(int64_t n, const void *w, const void *a, size_t as, int na, float *out) {   \
        gemm_##name(n, w, 0, 1, a, as, na, out, 1);                                                     \
    }
DEFINE_GEMM8(q4_0, K_Q4_0)
DEFINE_GEMM8(q8_0, K_Q8_0)

/* Single dots of the tiles' numerics: plain activation blocks (no tail),
 * the exact block sum, then the same float steps in the same order. */
INLINE float fma_step(float d, float da, int s, float acc) {
    __m128 sc = _mm_mul_ss(_mm_set_ss(d), _mm_set_ss(da));
    return _mm_cvtss_f32(_mm_fmadd_ss(sc, _mm_set_ss((float)s), _mm_set_ss(acc)));
}

static float dot_q4_0(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const __m256i ones = _mm256_set1_epi16(1);
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles32(x[i].qs), qa), ones);
        p = _mm256_sub_epi32(p, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), qa), ones));
        sum = fma_step(h2f(x[i].d), h2f(y[i].d), hsum_epi32(p), sum);
    }
    return sum;
}

static float dot_q8_0(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = w, *y = a;
    const __m256i ones = _mm256_set1_epi16(1);
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)x[i].qs);
        __m256i qa = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(qa, q)), ones);
        sum = fma_step(h2f(x[i].d), h2f(y[i].d), hsum_epi32(p), sum);
    }
    return sum;
}

/* ---- entry points ---------------------------------------------------------- */

/* dot: one row, scales from the blocks; dotn: 1..4 rows in the matmul
 * layout, scales from the float tail (tab = 1). */
#define DEFINE_DOT(name)                                                                    \
    static float dot_##name(int64_t n, const void *w, const void *a) {                      \
        float r;                                                                            \
        name##_dotn(n, w, a, 0, 1, &r, 0);                                                  \
        return r;                                                                           \
    }                                                                                       \
    static void dotn_##name(int64_t n, const void *w, const void *a, size_t as, int na, float *out) { \
        switch (na) {                                                                       \
        case 1: name##_dotn(n, w, a, as, 1, out, 1); break;                                 \
        case 2: name##_dotn(n, w, a, as, 2, out, 1); break;                                 \
        case 3: name##_dotn(n, w, a, as, 3, out, 1); break;                                 \
        case 4: name##_dotn(n, w, a, as, 4, out, 1); break;                                 \
        case 5: name##_dotn(n, w, a, as, 5, out, 1); break;                                 \
        case 6: name##_dotn(n, w, a, as, 6, out, 1); break;                                 \
        case 7: name##_dotn(n, w, a, as, 7, out, 1); break;                                 \
        default: name##_dotn(n, w, a, as, 8, out, 1); break;                                \
        }                                                                                   \
    }
DEFINE_DOT(f32)
DEFINE_DOT(f16)
DEFINE_DOT(bf16)
DEFINE_DOT(q5_0)
DEFINE_DOT(q4_1)
DEFINE_DOT(q5_1)
DEFINE_DOT(q4_K)
DEFINE_DOT(q5_K)
DEFINE_DOT(q6_K)

/* ---- activation quantizers ------------------------------------------------
 * Bit-identical to quant_quantize_row_ref: same d = max|x| / 127, same
 * float product x * (1/d), rounded to nearest even. */

INLINE float hmax_abs(const float *x, int n) { /* n a multiple of 32 */
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Quantizes 32 floats with multiplier id into 32 int8 at q; returns their sum. */
INLINE int quant32(const float *x, float id, int8_t *q) {
    const __m256 mul = _mm256_set1_ps(id);
    __m256i v[4];
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    /* the packs interleave 128-bit lanes: dwords come out as 0 2 4 6 1 3 5 7 */
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    return hsum_epi32(s);
}

static void act_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float d = hmax_abs(x, 32) / 127.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        quant32(x, id, y[i].qs);
    }
}

static void act_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float d = hmax_abs(x, 32) / 127.f, id = d != 0 ? 1.f / d : 0.f;
        int sum = quant32(x, id, y[i].qs);
        y[i].d = f32_to_fp16(d);
        y[i].s = f32_to_fp16((float)sum * fp16_to_f32(y[i].d));
    }
}

static void act_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        float d = hmax_abs(x, 256) / 127.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = d;
        for (int g = 0; g < 16; g += 2) {
            /* quant32 covers groups g and g+1: split its sum with a 16-sum */
            quant32(x + 16 * g, id, y[i].qs + 16 * g);
            __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y[i].qs + 16 * g)));
            __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y[i].qs + 16 * g + 16)));
            y[i].bsums[g] = (int16_t)hsum_epi32(_mm256_madd_epi16(lo, _mm256_set1_epi16(1)));
            y[i].bsums[g + 1] = (int16_t)hsum_epi32(_mm256_madd_epi16(hi, _mm256_set1_epi16(1)));
        }
    }
}

const cpu_kernel_table cpu_kernels_avx2 = {
    .dot = {
        [QT_F32] = dot_f32, [QT_F16] = dot_f16, [QT_BF16] = dot_bf16,
        [QT_Q4_0] = dot_q4_0, [QT_Q4_1] = dot_q4_1, [QT_Q5_0] = dot_q5_0,
        [QT_Q5_1] = dot_q5_1, [QT_Q8_0] = dot_q8_0, [QT_Q4_K] = dot_q4_K,
        [QT_Q5_K] = dot_q5_K, [QT_Q6_K] = dot_q6_K,
    },
    .dotn = {
        [QT_F32] = dotn_f32, [QT_F16] = dotn_f16, [QT_BF16] = dotn_bf16,
        [QT_Q4_0] = dotn_q4_0, [QT_Q4_1] = dotn_q4_1, [QT_Q5_0] = dotn_q5_0,
        [QT_Q5_1] = dotn_q5_1, [QT_Q8_0] = dotn_q8_0, [QT_Q4_K] = dotn_q4_K,
        [QT_Q5_K] = dotn_q5_K, [QT_Q6_K] = dotn_q6_K,
    },
    .gemm = {[QT_Q4_0] = gemm_q4_0, [QT_Q8_0] = gemm_q8_0},
    .act = {[QT_Q8_0] = act_q8_0, [QT_Q8_1] = act_q8_1, [QT_Q8_K] = act_q8_K},
};
