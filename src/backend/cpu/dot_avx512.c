/* dot_avx512.c — AVX-512 (F, BW, VL, DQ) dot products. Compiled with those
 * flags plus AVX2/FMA/F16C and only called after cpu_isa_detect saw them.
 * Types missing from the table use the AVX2 kernels (cpu_dot_get falls
 * back), which is where 512-bit registers did not pay off: the 32-element
 * block types, whose cost is the per-block int -> float scaling on the
 * multiply ports, and 512-bit integer multiplies run no faster than two
 * 256-bit ones (measured on a Xeon with AVX-512: multi-row Q6_K gained
 * ~25%, the float types ~15%, Q4_K/Q5_K ~10%).
 *
 * Same scheme as dot_avx2.c: one always-inline body over nt activation
 * rows, so the multi-row entry is bit-identical to the single dot. The
 * float types also have register tiles (cpu_gemm_fn: rows x tokens of the
 * same per-pair arithmetic), which the matmul uses for them. */
#include <immintrin.h>
#include <string.h>
#include "backend/cpu/simd_x86.h"
#include "core/fp16.h"

/* ---- F32 / F16 / BF16 weights x F32 activations ----------------------------
 * 32 elements a step in two accumulators; the tail (< 32) runs through masked
 * loads, so no scalar loop. */

enum { W_F32, W_F16, W_BF16 };

INLINE __m512 load_w16(const void *w, int64_t i, __mmask16 m, int kind) {
    if (kind == W_F32) return _mm512_maskz_loadu_ps(m, (const float *)w + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
    if (kind == W_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE __mmask16 tail_mask(int64_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* One column chunk (n <= CPU_FLOAT_KCHUNK). */
INLINE void float_chunk(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int kind) {
    __m512 acc0[MAXT], acc1[MAXT];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm512_setzero_ps();
    int64_t i = 0;
    const size_t esz = kind == W_F32 ? 4 : 2;
    for (; i + 32 <= n; i += 32) {
        PREFETCH_W((const uint8_t *)w + (size_t)i * esz);
        if (kind == W_F32) PREFETCH_W((const uint8_t *)w + (size_t)i * esz + 64);
        __m512 w0 = load_w16(w, i, 0xFFFF, kind), w1 = load_w16(w, i + 16, 0xFFFF, kind);
        for (int t = 0; t < nt; t++) {
            const float *x = AROW(float, a, t, as);
            acc0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + i), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + i + 16), acc1[t]);
        }
    }
    if (i < n) {
        __mmask16 m0 = tail_mask(n - i), m1 = n - i > 16 ? tail_mask(n - i - 16) : 0;
        __m512 w0 = load_w16(w, i, m0, kind), w1 = load_w16(w, i + 16, m1, kind);
        for (int t = 0; t < nt; t++) {
            const float *x = AROW(float, a, t, as);
            acc0[t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m0, x + i), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m1, x + i + 16), acc1[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
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

/* Register tiles for the matmul: R rows x T tokens of float_chunk at once,
 * each (row, token) pair with float_chunk's own two accumulators, steps and
 * reduction, so every value is bit-identical to it; the tile only shares
 * each loaded weight vector among T tokens and each activation vector among
 * R rows (float_chunk alone loads one of each per FMA). out[r * T + t]. */
INLINE void float_tile(int64_t n, const void *w, size_t ws, const void *a, size_t as, int R, int T, float *out,
                       int kind) {
    __m512 acc0[4][4], acc1[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc0[r][t] = acc1[r][t] = _mm512_setzero_ps();
    const size_t esz = kind == W_F32 ? 4 : 2;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 w0[4], w1[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
            PREFETCH_W(wr + (size_t)i * esz);
            if (kind == W_F32) PREFETCH_W(wr + (size_t)i * esz + 64);
            w0[r] = load_w16(wr, i, 0xFFFF, kind);
            w1[r] = load_w16(wr, i + 16, 0xFFFF, kind);
        }
        for (int t = 0; t < T; t++) {
            const float *x = AROW(float, a, t, as);
            __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
            /* in registers: else the compiler folds the loads into the R
             * FMAs and loads each activation vector R times (load-bound) */
            if (R > 1) __asm__("" : "+v"(x0), "+v"(x1));
            for (int r = 0; r < R; r++) {
                acc0[r][t] = _mm512_fmadd_ps(w0[r], x0, acc0[r][t]);
                acc1[r][t] = _mm512_fmadd_ps(w1[r], x1, acc1[r][t]);
            }
        }
    }
    if (i < n) {
        __mmask16 m0 = tail_mask(n - i), m1 = n - i > 16 ? tail_mask(n - i - 16) : 0;
        __m512 w0[4], w1[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
            w0[r] = load_w16(wr, i, m0, kind);
            w1[r] = load_w16(wr, i + 16, m1, kind);
        }
        for (int t = 0; t < T; t++) {
            const float *x = AROW(float, a, t, as);
            __m512 x0 = _mm512_maskz_loadu_ps(m0, x + i), x1 = _mm512_maskz_loadu_ps(m1, x + i + 16);
            for (int r = 0; r < R; r++) {
                acc0[r][t] = _mm512_fmadd_ps(w0[r], x0, acc0[r][t]);
                acc1[r][t] = _mm512_fmadd_ps(w1[r], x1, acc1[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[r * T + t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r][t], acc1[r][t]));
}

/* Tokens t0..t0+T of rows r0..r0+R over all chunks (the chunk partials
 * summed left to right, as float_dotn does), into y[t * ys + r]. */
INLINE void float_tile_rows(int64_t n, const void *w, size_t ws, const void *a, size_t as, int R, int T, float *y,
                            size_t ys, int kind) {
    const size_t esz = kind == W_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < n || k0 == 0; k0 += CPU_FLOAT_KCHUNK) {
        int64_t kn = n - k0 < CPU_FLOAT_KCHUNK ? n - k0 : CPU_FLOAT_KCHUNK;
        float part[16];
        float_tile(kn, (const uint8_t *)w + (size_t)k0 * esz, ws, (const float *)a + k0, as, R, T, part, kind);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) {
                float *o = &y[(size_t)t * ys + (size_t)r];
                *o = k0 == 0 ? part[r * T + t] : *o + part[r * T + t];
            }
    }
}

/* The float gemm: rows in pairs (one token: fours), tokens in fours. */
INLINE void float_gemm(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, float *y,
                       size_t ys, int kind) {
    for (int t0 = 0; t0 < na; t0 += 4) {
        const int T = na - t0 < 4 ? na - t0 : 4;
        const void *at = (const char *)a + (size_t)t0 * as;
        float *yt = y + (size_t)t0 * ys;
        int r = 0;
#define FT(R_, T_) float_tile_rows(n, (const uint8_t *)w + (size_t)r * ws, ws, at, as, R_, T_, yt + r, ys, kind)
        if (T == 1)
            for (; r + 4 <= nr; r += 4) FT(4, 1);
        for (; r + 2 <= nr; r += 2) {
            switch (T) {
            case 1: FT(2, 1); break;
            case 2: FT(2, 2); break;
            case 3: FT(2, 3); break;
            default: FT(2, 4); break;
            }
        }
        for (; r < nr; r++) {
            switch (T) {
            case 1: FT(1, 1); break;
            case 2: FT(1, 2); break;
            case 3: FT(1, 3); break;
            default: FT(1, 4); break;
            }
        }
#undef FT
    }
}

static void gemm_f32(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, float *y,
                     size_t ys) {
    float_gemm(n, w, ws, nr, a, as, na, y, ys, W_F32);
}
static void gemm_f16(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, float *y,
                     size_t ys) {
    float_gemm(n, w, ws, nr, a, as, na, y, ys, W_F16);
}
static void gemm_bf16(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int na, float *y,
                      size_t ys) {
    float_gemm(n, w, ws, nr, a, as, na, y, ys, W_BF16);
}

INLINE void f32_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_F32);
}
INLINE void f16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_F16);
}
INLINE void bf16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_BF16);
}

/* ---- Q4_K / Q5_K weights x Q8_K activations --------------------------------
 * 128 elements a step. A 64-byte load of qs holds chunks 2p and 2p+1 (see
 * block_q4_K); its low nibbles are sub-blocks 4p and 4p+2, its high nibbles
 * 4p+1 and 4p+3. Two 128-bit-lane shuffles regroup them into element order
 * (X = elements 128p..+63, Y = 128p+64..+127) so activations load straight.
 * Integer sums and the final float expression are those of quant_dot_ref:
 * the result is bit-identical to it (and to the AVX2 kernel). */

INLINE __m256i fold512(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

/* 32 int16 lanes: the first 16 = v[i0], the last 16 = v[i1] (v: 8 int16). */
INLINE __m512i two_scales(__m128i v, int i0, int i1) {
    __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)i0), _mm256_set1_epi16((short)i1), 1);
    return _mm512_permutexvar_epi16(idx, _mm512_castsi128_si512(v));
}

INLINE void qk_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out, int five) {
    const __m512i m4 = _mm512_set1_epi8(15), m16 = _mm512_set1_epi8(0x10);
    /* the upper 256 bits of X / Y hold the odd sub-block: one bit further up in qh */
    const __m512i up1 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(1), 1);
    float sum[MAXT];
    for (int t = 0; t < nt; t++) sum[t] = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q4_K *b4 = (const block_q4_K *)w + i;
        const block_q5_K *b5 = (const block_q5_K *)w + i;
        const uint8_t *qs = five ? b5->qs : b4->qs;
        PREFETCH_W(b4); PREFETCH_W((const uint8_t *)b4 + 64); PREFETCH_W((const uint8_t *)b4 + 128);
        uint8_t sc[8], mn[8];
        quant_k_scales(five ? b5->scales : b4->scales, sc, mn);
        __m128i sc16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc));
        __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
        __m256i mn_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
        __m512i hb = _mm512_setzero_si512();
        if (five) hb = _mm512_srlv_epi16(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b5->qh)), up1);
        __m512i iacc[MAXT];
        for (int t = 0; t < nt; t++) iacc[t] = _mm512_setzero_si512();
        for (int p = 0; p < 2; p++) {
            __m512i raw = _mm512_loadu_si512(qs + 64 * p);
            __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
            __m512i X = _mm512_shuffle_i64x2(lo, hi, 0x44), Y = _mm512_shuffle_i64x2(lo, hi, 0xEE);
            if (five) { /* X: bits 4p (+1 in the upper half) of qh[l]; Y: bits 4p+2 (+1) */
                X = _mm512_or_si512(X, _mm512_and_si512(_mm512_slli_epi16(hb, 4), m16));
                Y = _mm512_or_si512(Y, _mm512_and_si512(_mm512_slli_epi16(hb, 2), m16));
                hb = _mm512_srli_epi16(hb, 4);
            }
            __m512i sX = two_scales(sc16, 4 * p, 4 * p + 1), sY = two_scales(sc16, 4 * p + 2, 4 * p + 3);
            for (int t = 0; t < nt; t++) {
                const int8_t *aq = (AROW(block_q8_K, a, t, as) + i)->qs + 128 * p;
                __m512i px = _mm512_madd_epi16(_mm512_maddubs_epi16(X, _mm512_loadu_si512(aq)), sX);
                __m512i py = _mm512_madd_epi16(_mm512_maddubs_epi16(Y, _mm512_loadu_si512(aq + 64)), sY);
                iacc[t] = _mm512_add_epi32(iacc[t], _mm512_add_epi32(px, py));
            }
        }
        float d = _cvtsh_ss(five ? b5->d : b4->d), dmin = _cvtsh_ss(five ? b5->dmin : b4->dmin);
        __m256i vi[MAXT], vm[MAXT];
        int sumi[MAXT], summ[MAXT];
        for (int t = 0; t < nt; t++) {
            vi[t] = fold512(iacc[t]);
            vm[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(AROW(block_q8_K, a, t, as) + i)->bsums), mn_pairs);
        }
        hsums_epi32(vi, nt, sumi);
        hsums_epi32(vm, nt, summ);
        for (int t = 0; t < nt; t++)
            sum[t] += (AROW(block_q8_K, a, t, as) + i)->d * (d * (float)sumi[t] - dmin * (float)summ[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = sum[t];
}

INLINE void q4_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    qk_dotn(n, w, a, as, nt, out, 0);
}
INLINE void q5_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    qk_dotn(n, w, a, as, nt, out, 1);
}

/* ---- Q6_K weights x Q8_K activations ---------------------------------------
 * Per half h: A = elements 128h..+63 = [q0 | q1] of the AVX2 kernel, built
 * from the 64 ql bytes with qh's bit pairs 0-1 / 2-3 moved to bits 4-5;
 * B = elements 128h+64..+127 = [q2 | q3] from the high nibbles and bit pairs
 * 4-5 / 6-7. Each 128-bit lane of A / B is one 16-element group. */
INLINE void q6_K_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i shA = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1); /* << */
    const __m512i shB = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1); /* >> */
    const __m512i lane = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                          1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    float sum[MAXT];
    for (int t = 0; t < nt; t++) sum[t] = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        const block_q6_K *b = (const block_q6_K *)w + i;
        PREFETCH_W(b); PREFETCH_W((const uint8_t *)b + 64); PREFETCH_W((const uint8_t *)b + 128);
        PREFETCH_W((const uint8_t *)b + 192);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i iacc[MAXT];
        for (int t = 0; t < nt; t++) iacc[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
            __m512i A = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shA), m30));
            __m512i B = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                        _mm512_and_si512(_mm512_srlv_epi16(qh, shB), m30));
            __m512i sA = _mm512_permutexvar_epi16(_mm512_add_epi16(lane, _mm512_set1_epi16((short)(8 * h))), sc512);
            __m512i sB = _mm512_permutexvar_epi16(_mm512_add_epi16(lane, _mm512_set1_epi16((short)(8 * h + 4))), sc512);
            for (int t = 0; t < nt; t++) {
                const int8_t *aq = (AROW(block_q8_K, a, t, as) + i)->qs + 128 * h;
                __m512i pa = _mm512_madd_epi16(_mm512_maddubs_epi16(A, _mm512_loadu_si512(aq)), sA);
                __m512i pb = _mm512_madd_epi16(_mm512_maddubs_epi16(B, _mm512_loadu_si512(aq + 64)), sB);
                iacc[t] = _mm512_add_epi32(iacc[t], _mm512_add_epi32(pa, pb));
            }
        }
        float d = _cvtsh_ss(b->d);
        __m256i vi[MAXT], vc[MAXT];
        int sumi[MAXT], corr[MAXT];
        for (int t = 0; t < nt; t++) {
            vi[t] = fold512(iacc[t]);
            vc[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(AROW(block_q8_K, a, t, as) + i)->bsums), sc16);
        }
        hsums_epi32(vi, nt, sumi);
        hsums_epi32(vc, nt, corr);
        for (int t = 0; t < nt; t++)
            sum[t] += (AROW(block_q8_K, a, t, as) + i)->d * (d * (float)(sumi[t] - 32 * corr[t]));
    }
    for (int t = 0; t < nt; t++) out[t] = sum[t];
}

/* ---- entry points ---------------------------------------------------------- */

#define DEFINE_DOT(name)                                                                    \
    static float dot_##name(int64_t n, const void *w, const void *a) {                      \
        float r;                                                                            \
        name##_dotn(n, w, a, 0, 1, &r);                                                     \
        return r;                                                                           \
    }                                                                                       \
    static void dotn_##name(int64_t n, const void *w, const void *a, size_t as, int na, float *out) { \
        switch (na) {                                                                       \
        case 1: name##_dotn(n, w, a, as, 1, out); break;                                    \
        case 2: name##_dotn(n, w, a, as, 2, out); break;                                    \
        case 3: name##_dotn(n, w, a, as, 3, out); break;                                    \
        case 4: name##_dotn(n, w, a, as, 4, out); break;                                    \
        case 5: name##_dotn(n, w, a, as, 5, out); break;                                    \
        case 6: name##_dotn(n, w, a, as, 6, out); break;                                    \
        case 7: name##_dotn(n, w, a, as, 7, out); break;                                    \
        default: name##_dotn(n, w, a, as, 8, out); break;                                   \
        }                                                                                   \
    }
DEFINE_DOT(f32)
DEFINE_DOT(f16)
DEFINE_DOT(bf16)
DEFINE_DOT(q6_K)

/* Q4_K / Q5_K: for one activation row the AVX2 kernel is faster (the
 * 512-bit regrouping shuffles only pay off over several rows). Both are
 * bit-identical to quant_dot_ref, so mixing them keeps dot == dotn; the
 * tests check that. */
#define DEFINE_DOT_K(name, T)                                                               \
    static float dot_##name(int64_t n, const void *w, const void *a) {                      \
        return cpu_kernels_avx2.dot[T](n, w, a);                                            \
    }                                                                                       \
    static void dotn_##name(int64_t n, const void *w, const void *a, size_t as, int na, float *out) { \
        switch (na) {                                                                       \
        case 1: cpu_kernels_avx2.dotn[T](n, w, a, as, 1, out); break;                       \
        case 2: name##_dotn(n, w, a, as, 2, out); break;                                    \
        case 3: name##_dotn(n, w, a, as, 3, out); break;                                    \
        case 4: name##_dotn(n, w, a, as, 4, out); break;                                    \
        case 5: name##_dotn(n, w, a, as, 5, out); break;                                    \
        case 6: name##_dotn(n, w, a, as, 6, out); break;                                    \
        case 7: name##_dotn(n, w, a, as, 7, out); break;                                    \
        default: name##_dotn(n, w, a, as, 8, out); break;                                   \
        }                                                                                   \
    }
DEFINE_DOT_K(q4_K, QT_Q4_K)
DEFINE_DOT_K(q5_K, QT_Q5_K)

const cpu_kernel_table cpu_kernels_avx512 = {
    .dot = {[QT_F32] = dot_f32, [QT_F16] = dot_f16, [QT_BF16] = dot_bf16,
            [QT_Q4_K] = dot_q4_K, [QT_Q5_K] = dot_q5_K, [QT_Q6_K] = dot_q6_K},
    .dotn = {[QT_F32] = dotn_f32, [QT_F16] = dotn_f16, [QT_BF16] = dotn_bf16,
             [QT_Q4_K] = dotn_q4_K, [QT_Q5_K] = dotn_q5_K, [QT_Q6_K] = dotn_q6_K},
    .gemm = {[QT_F32] = gemm_f32, [QT_F16] = gemm_f16, [QT_BF16] = gemm_bf16},
};
