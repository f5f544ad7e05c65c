/* dot_avx512.c — AVX-512 (F, BW, VL, DQ) dot products. Compiled with those
 * flags plus AVX2/FMA/F16C and only called after cpu_isa_detect saw them.
 * Types missing from the table use the AVX2 kernels (cpu_dot_get falls
 * back), which is where 512-bit registers did not pay off.
 *
 * Same scheme as dot_avx2.c: one always-inline body over nt activation
 * rows, so the multi-row entry is bit-identical to the single dot. */
#include <immintrin.h>
#include <string.h>
#include "backend/cpu/cpu_kernels.h"
#include "core/fp16.h"

#define INLINE static inline __attribute__((always_inline))
#define MAXT CPU_DOTN_MAX
#define AROW(type, a, t, as) ((const type *)((const char *)(a) + (size_t)(t) * (as)))
/* Software prefetch of the weight stream: see dot_avx2.c. */
#ifndef PF_DIST
#define PF_DIST 2048
#endif
#define PREFETCH_W(p) _mm_prefetch((const char *)(p) + PF_DIST, _MM_HINT_T0)

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

INLINE void f32_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_F32);
}
INLINE void f16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_F16);
}
INLINE void bf16_dotn(int64_t n, const void *w, const void *a, size_t as, int nt, float *out) {
    float_dotn(n, w, a, as, nt, out, W_BF16);
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
        default: name##_dotn(n, w, a, as, 4, out); break;                                   \
        }                                                                                   \
    }
DEFINE_DOT(f32)
DEFINE_DOT(f16)
DEFINE_DOT(bf16)

const cpu_kernel_table cpu_kernels_avx512 = {
    .dot = {[QT_F32] = dot_f32, [QT_F16] = dot_f16, [QT_BF16] = dot_bf16},
    .dotn = {[QT_F32] = dotn_f32, [QT_F16] = dotn_f16, [QT_BF16] = dotn_bf16},
};
