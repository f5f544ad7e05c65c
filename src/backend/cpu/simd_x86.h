/* simd_x86.h — helpers shared by the x86 kernel files (dot_avx2.c,
 * dot_avx512.c, dot_avx512vnni.c). Include only from files compiled with at
 * least -mavx2 -mfma -mf16c: every function here is always inlined into its
 * caller, so it takes that file's ISA flags. */
#ifndef SLUICE_BACKEND_CPU_SIMD_X86_H
#define SLUICE_BACKEND_CPU_SIMD_X86_H
#include <immintrin.h>
#include <string.h>
#include "backend/cpu/cpu_kernels.h"

#define INLINE static inline __attribute__((always_inline))
#define MAXT CPU_DOTN_MAX
/* Activation row t's element / block pointer. */
#define AROW(type, a, t, as) ((const type *)((const char *)(a) + (size_t)(t) * (as)))

/* Weights are streamed from DRAM once per token; the hardware prefetchers
 * alone leave these compute-heavy loops latency-bound (measured: Q4_0 at a
 * third of the read bandwidth), so each loop prefetches PF_DIST bytes ahead.
 * Past a row's end that is the next row, which is what comes next. */
#ifndef PF_DIST
#define PF_DIST 2048
#endif
#define PREFETCH_W(p) _mm_prefetch((const char *)(p) + PF_DIST, _MM_HINT_T0)

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Exact horizontal sums of nt (<= 8) int32 vectors at once: a hadd tree
 * costs about what two single sums do, whatever nt is. */
INLINE void hsums_epi32(const __m256i *v, int nt, int *out) {
    if (nt == 1) { out[0] = hsum_epi32(v[0]); return; }
    const __m256i z = _mm256_setzero_si256();
    __m256i h01 = _mm256_hadd_epi32(v[0], v[1]);
    __m256i h23 = _mm256_hadd_epi32(nt > 2 ? v[2] : z, nt > 3 ? v[3] : z);
    __m256i q0 = _mm256_hadd_epi32(h01, h23);
    int tmp[8];
    _mm_storeu_si128((__m128i *)tmp, _mm_add_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1)));
    if (nt > 4) {
        __m256i h45 = _mm256_hadd_epi32(v[4], nt > 5 ? v[5] : z);
        __m256i h67 = _mm256_hadd_epi32(nt > 6 ? v[6] : z, nt > 7 ? v[7] : z);
        __m256i q1 = _mm256_hadd_epi32(h45, h67);
        _mm_storeu_si128((__m128i *)(tmp + 4), _mm_add_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1)));
    }
    for (int t = 0; t < nt; t++) out[t] = tmp[t];
}

/* The 32 nibbles of a Q4/Q5 block in element order: bytes 0-15 are the low
 * nibbles of qs[0..15], bytes 16-31 the high nibbles. */
INLINE __m256i nibbles32(const uint8_t *qs) {
    __m128i r = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(r, 4), r), _mm256_set1_epi8(15));
}

/* Byte i = 0xFF where bit i of the little-endian 32-bit qh is set. */
INLINE __m256i bits32(const uint8_t *qh) {
    uint32_t u;
    memcpy(&u, qh, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

#endif
