/* dot.c — portable scalar kernels, run-time ISA detection and the lookup
 * of per-type kernels. Built for the baseline target (no SIMD flags); the
 * AVX2 / AVX-512 / AVX-512 VNNI tables live in their own files and are only
 * picked after the CPU check here says they can run. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef SLUICE_X86
#include <cpuid.h>
#endif
#include "backend/cpu/cpu_kernels.h"
#include "core/fp16.h"
#include "sluice/sluice.h"

/* ---- scalar kernels ------------------------------------------------------ */

/* Float rows: eight independent partial sums (the compiler may vectorise
 * them; the sum order is fixed, so results are reproducible). */
#define SCALAR_FLOAT_DOT(name, CONV)                                    \
    static float name(int64_t n, const void *w, const void *a) {        \
        const float *x = a;                                             \
        float acc[8] = {0};                                             \
        int64_t i = 0;                                                  \
        for (; i + 8 <= n; i += 8)                                      \
            for (int k = 0; k < 8; k++) acc[k] += CONV(w, i + k) * x[i + k]; \
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
        for (; i < n; i++) s += CONV(w, i) * x[i];                       \
        return s;                                                       \
    }
#define CONV_F32(w, i) (((const float *)(w))[i])
#define CONV_F16(w, i) fp16_to_f32(((const uint16_t *)(w))[i])
#define CONV_BF16(w, i) bf16_to_f32(((const uint16_t *)(w))[i])
SCALAR_FLOAT_DOT(sdot_f32, CONV_F32)
SCALAR_FLOAT_DOT(sdot_f16, CONV_F16)
SCALAR_FLOAT_DOT(sdot_bf16, CONV_BF16)

/* Block types: the reference is already integer-exact per block. */
#define SCALAR_REF_DOT(name, T) \
    static float name(int64_t n, const void *w, const void *a) { return quant_dot_ref(T, n, w, a); }
SCALAR_REF_DOT(sdot_q4_0, QT_Q4_0)
SCALAR_REF_DOT(sdot_q4_1, QT_Q4_1)
SCALAR_REF_DOT(sdot_q5_0, QT_Q5_0)
SCALAR_REF_DOT(sdot_q5_1, QT_Q5_1)
SCALAR_REF_DOT(sdot_q8_0, QT_Q8_0)
SCALAR_REF_DOT(sdot_q4_K, QT_Q4_K)
SCALAR_REF_DOT(sdot_q5_K, QT_Q5_K)
SCALAR_REF_DOT(sdot_q6_K, QT_Q6_K)

static void sact_f32(const float *x, void *y, int64_t n) { memmove(y, x, (size_t)n * sizeof *x); }
static void sact_q8_0(const float *x, void *y, int64_t n) { quant_quantize_row_ref(QT_Q8_0, x, y, n); }
static void sact_q8_1(const float *x, void *y, int64_t n) { quant_quantize_row_ref(QT_Q8_1, x, y, n); }
static void sact_q8_K(const float *x, void *y, int64_t n) { quant_quantize_row_ref(QT_Q8_K, x, y, n); }

static const cpu_kernel_table scalar_kernels = {
    .dot = {
        [QT_F32] = sdot_f32, [QT_F16] = sdot_f16, [QT_BF16] = sdot_bf16,
        [QT_Q4_0] = sdot_q4_0, [QT_Q4_1] = sdot_q4_1, [QT_Q5_0] = sdot_q5_0,
        [QT_Q5_1] = sdot_q5_1, [QT_Q8_0] = sdot_q8_0, [QT_Q4_K] = sdot_q4_K,
        [QT_Q5_K] = sdot_q5_K, [QT_Q6_K] = sdot_q6_K,
    },
    .act = {
        [QT_F32] = sact_f32, [QT_Q8_0] = sact_q8_0, [QT_Q8_1] = sact_q8_1, [QT_Q8_K] = sact_q8_K,
    },
};

/* Tables by ISA, lowest first. */
static const cpu_kernel_table *const isa_tables[] = {
    [CPU_ISA_SCALAR] = &scalar_kernels,
#ifdef SLUICE_X86
    [CPU_ISA_AVX2] = &cpu_kernels_avx2,
    [CPU_ISA_AVX512] = &cpu_kernels_avx512,
    [CPU_ISA_AVX512VNNI] = &cpu_kernels_avx512vnni,
#else
    [CPU_ISA_AVX2] = NULL,
    [CPU_ISA_AVX512] = NULL,
    [CPU_ISA_AVX512VNNI] = NULL,
#endif
};

/* ---- detection and lookup ------------------------------------------------ */

const char *cpu_isa_name(cpu_isa isa) {
    switch (isa) {
    case CPU_ISA_SCALAR: return "scalar";
    case CPU_ISA_AVX2: return "avx2";
    case CPU_ISA_AVX512: return "avx512";
    case CPU_ISA_AVX512VNNI: return "avx512vnni";
    }
    return "unknown";
}

#ifdef SLUICE_X86
/* F16C straight from CPUID leaf 1 (ECX bit 29): some compilers' (clang 14)
 * __builtin_cpu_supports does not know "f16c". The builtin covers the rest,
 * including the OS check that AVX / AVX-512 register state is enabled. */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}
#endif

cpu_isa cpu_isa_detect(void) {
    cpu_isa best = CPU_ISA_SCALAR;
#ifdef SLUICE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) {
        best = CPU_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
            best = CPU_ISA_AVX512;
            if (__builtin_cpu_supports("avx512vnni")) best = CPU_ISA_AVX512VNNI;
        }
    }
#endif
    const char *cap = getenv("SLUICE_CPU_ISA");
    if (cap && *cap) {
        int c = -1;
        for (int i = CPU_ISA_SCALAR; i <= CPU_ISA_MAX; i++)
            if (strcasecmp(cap, cpu_isa_name((cpu_isa)i)) == 0) c = i;
        if (c < 0)
            sluice_log(SLUICE_LOG_WARN, "SLUICE_CPU_ISA=%s not one of scalar|avx2|avx512|avx512vnni; ignored", cap);
        else if ((cpu_isa)c < best)
            best = (cpu_isa)c;
    }
    return best;
}

static bool valid_isa(cpu_isa isa) { return (int)isa >= CPU_ISA_SCALAR && (int)isa <= CPU_ISA_MAX; }

cpu_dot_fn cpu_dot_get(qtype t, cpu_isa isa) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    if (!ti || !ti->compute || !valid_isa(isa)) return NULL;
    for (int i = isa; i >= CPU_ISA_SCALAR; i--)
        if (isa_tables[i] && isa_tables[i]->dot[t]) return isa_tables[i]->dot[t];
    return NULL;
}

cpu_dotn_fn cpu_dotn_get(qtype t, cpu_isa isa) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    if (!ti || !ti->compute || !valid_isa(isa)) return NULL;
    /* Only the table that provides the dot may provide its dotn: a dotn is
     * bit-identical to its own ISA's dot, not to another's. */
    for (int i = isa; i >= CPU_ISA_SCALAR; i--)
        if (isa_tables[i] && isa_tables[i]->dot[t]) return isa_tables[i]->dotn[t];
    return NULL;
}

cpu_gemm_fn cpu_gemm_get(qtype t, cpu_isa isa) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    if (!ti || !ti->compute || !valid_isa(isa)) return NULL;
    /* as for dotn: only from the table that provides the dot */
    for (int i = isa; i >= CPU_ISA_SCALAR; i--)
        if (isa_tables[i] && isa_tables[i]->dot[t]) return isa_tables[i]->gemm[t];
    return NULL;
}

cpu_act_fn cpu_act_get(qtype dot_type, cpu_isa isa) {
    if ((unsigned)dot_type >= QT_COUNT || !valid_isa(isa)) return NULL;
    for (int i = isa; i >= CPU_ISA_SCALAR; i--)
        if (isa_tables[i] && isa_tables[i]->act[dot_type]) return isa_tables[i]->act[dot_type];
    return NULL;
}
