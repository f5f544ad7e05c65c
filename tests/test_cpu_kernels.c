/* test_cpu_kernels.c — the CPU backend's kernels against the references in
 * quant.c: every dot product at every ISA this machine runs, the
 * multi-row dots, the activation quantizers and the threaded matmul. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_kernels.h"
#include "model/quant.h"
#include "testutil.h"

static const qtype compute_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_1,
                                      QT_Q5_0, QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
#define N_TYPES (sizeof compute_types / sizeof compute_types[0])

/* NMSE bound of a fast dot against quant_dot_ref over a set of rows. Float
 * kernels differ from the double-accumulated reference by float rounding
 * (~1e-14 measured); block kernels form the same integer block sums and
 * differ only in how block results are summed in float (~1e-13 measured;
 * the K-quants are bit-identical by construction). */
#define DOT_NMSE_BOUND 1e-10

static int max_isa(void) {
    unsetenv("SLUICE_CPU_ISA");
    return (int)cpu_isa_detect();
}

static float *normal_data(size_t n, uint64_t seed) {
    tu_rng r = {seed};
    float *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) x[i] = tu_rand_normal(&r);
    return x;
}

static size_t row_bytes(qtype t, int64_t n) {
    uint64_t b = 0;
    cr_assert(qtype_row_bytes(t, (uint64_t)n, &b));
    return (size_t)b;
}

/* ---- detection ----------------------------------------------------------- */

Test(isa, detect_and_env_cap) {
    int best = max_isa();
    cr_expect(best >= CPU_ISA_SCALAR && best <= CPU_ISA_MAX);
    setenv("SLUICE_CPU_ISA", "scalar", 1);
    cr_expect_eq(cpu_isa_detect(), CPU_ISA_SCALAR);
    setenv("SLUICE_CPU_ISA", "avx2", 1);
    cr_expect_eq((int)cpu_isa_detect(), best < CPU_ISA_AVX2 ? best : CPU_ISA_AVX2);
    setenv("SLUICE_CPU_ISA", "AVX512", 1);
    cr_expect_eq((int)cpu_isa_detect(), best < CPU_ISA_AVX512 ? best : CPU_ISA_AVX512);
    setenv("SLUICE_CPU_ISA", "avx512vnni", 1);
    cr_expect_eq((int)cpu_isa_detect(), best);
    setenv("SLUICE_CPU_ISA", "bogus", 1); /* ignored (with a warning) */
    cr_expect_eq((int)cpu_isa_detect(), best);
    unsetenv("SLUICE_CPU_ISA");
    cr_expect_str_eq(cpu_isa_name(CPU_ISA_SCALAR), "scalar");
    cr_expect_str_eq(cpu_isa_name(CPU_ISA_AVX2), "avx2");
    cr_expect_str_eq(cpu_isa_name(CPU_ISA_AVX512), "avx512");
    cr_expect_str_eq(cpu_isa_name(CPU_ISA_AVX512VNNI), "avx512vnni");
#ifdef SLUICE_X86
    /* every x86-64 CI machine of this project has AVX2 */
    cr_expect(best >= CPU_ISA_AVX2, "AVX2 not detected");
#endif
}

Test(isa, lookup_tables) {
    for (int isa = CPU_ISA_SCALAR; isa <= CPU_ISA_MAX; isa++) {
        for (size_t k = 0; k < N_TYPES; k++) {
            cr_expect_not_null(cpu_dot_get(compute_types[k], (cpu_isa)isa), "%s", qtype_get(compute_types[k])->name);
        }
        cr_expect_null(cpu_dot_get(QT_Q2_K, (cpu_isa)isa));
        cr_expect_null(cpu_dot_get(QT_IQ4_NL, (cpu_isa)isa));
        cr_expect_null(cpu_dot_get(QT_Q8_K, (cpu_isa)isa));
        cr_expect_null(cpu_dot_get((qtype)4, (cpu_isa)isa));
        cr_expect_null(cpu_dot_get((qtype)1000, (cpu_isa)isa));
        cr_expect_null(cpu_dotn_get(QT_Q2_K, (cpu_isa)isa));
        cr_expect_null(cpu_gemm_get(QT_Q2_K, (cpu_isa)isa));
        cr_expect_null(cpu_gemm_get(QT_Q8_K, (cpu_isa)isa));
        cr_expect_not_null(cpu_act_get(QT_Q8_0, (cpu_isa)isa));
        cr_expect_not_null(cpu_act_get(QT_Q8_1, (cpu_isa)isa));
        cr_expect_not_null(cpu_act_get(QT_Q8_K, (cpu_isa)isa));
        cr_expect_not_null(cpu_act_get(QT_F32, (cpu_isa)isa));
        cr_expect_null(cpu_act_get(QT_Q4_0, (cpu_isa)isa));
    }
    cr_expect_null(cpu_dot_get(QT_F32, (cpu_isa)7));
    cr_expect_null(cpu_gemm_get(QT_Q4_0, (cpu_isa)7));
    cr_expect_null(cpu_gemm_get(QT_Q4_0, (cpu_isa)-1));
}

/* ---- dot products ---------------------------------------------------------- */

/* Lengths: float types include n not a multiple of 8/16/32 (tails). */
static const int64_t float_lengths[] = {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 257, 1000, 4099};
static const int64_t block_counts[] = {1, 2, 3, 4, 5, 7, 16, 33};

/* Checks every fast dot (and its multi-row form) of type t at every ISA
 * against quant_dot_ref for rows of n elements. */
static void check_dot(qtype t, int64_t n, uint64_t seed) {
    enum { ROWS = 12 };
    const qtype_info *ti = qtype_get(t);
    /* activation rows in the matmul layout (blocks + float scale tail) */
    size_t rb = row_bytes(t, n), ab = cpu_act_row_stride(ti->dot_type, n);
    float *w = normal_data((size_t)(n * ROWS), seed), *a = normal_data((size_t)(n * CPU_DOTN_MAX), seed + 1);
    /* vary magnitudes across rows so scales differ */
    for (int64_t i = 0; i < n * ROWS; i++) w[i] *= (float)(1 + i / n);
    uint8_t *wq = calloc(ROWS, rb + 1), *aq = calloc(CPU_DOTN_MAX, ab + 1);
    quant_quantize_row_ref(t, w, wq, n * ROWS);
    for (int j = 0; j < CPU_DOTN_MAX; j++) {
        quant_quantize_row_ref(ti->dot_type, a + j * n, aq + j * ab, n);
        cpu_act_fill_scales(ti->dot_type, aq + j * ab, n);
    }
    float want[ROWS], got[ROWS];
    for (int r = 0; r < ROWS; r++) want[r] = quant_dot_ref(t, n, wq + r * rb, aq);
    for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++) {
        cpu_dot_fn dot = cpu_dot_get(t, (cpu_isa)isa);
        cpu_dotn_fn dotn = cpu_dotn_get(t, (cpu_isa)isa);
        cr_assert_not_null(dot);
        for (int r = 0; r < ROWS; r++) got[r] = dot(n, wq + r * rb, aq);
        double e = tu_nmse(got, want, ROWS);
        cr_assert(e <= DOT_NMSE_BOUND, "%s n=%lld isa=%s: nmse %.3e", ti->name, (long long)n,
                  cpu_isa_name((cpu_isa)isa), e);
        if (!dotn) continue;
        /* multi-row: bit-identical to the single dot for each row */
        for (int na = 1; na <= CPU_DOTN_MAX; na++)
            for (int r = 0; r < ROWS; r += 5) {
                float out[CPU_DOTN_MAX + 1];
                for (int j = 0; j <= CPU_DOTN_MAX; j++) out[j] = -12345.0f;
                dotn(n, wq + r * rb, aq, ab, na, out);
                for (int j = na; j <= CPU_DOTN_MAX; j++)
                    cr_assert_eq(out[j], -12345.0f, "%s isa=%s na=%d wrote out[%d]", ti->name,
                                 cpu_isa_name((cpu_isa)isa), na, j);
                for (int j = 0; j < na; j++) {
                    float single = dot(n, wq + r * rb, aq + j * ab);
                    cr_assert(memcmp(&out[j], &single, sizeof single) == 0, "%s n=%lld isa=%s na=%d row %d act %d: %.9g vs %.9g",
                              ti->name, (long long)n, cpu_isa_name((cpu_isa)isa), na, r, j, out[j], single);
                }
            }
    }
    free(w); free(a); free(wq); free(aq);
}

Test(dot, float_types_all_lengths) {
    qtype ft[] = {QT_F32, QT_F16, QT_BF16};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof float_lengths / sizeof float_lengths[0]; i++)
            check_dot(ft[k], float_lengths[i], 100 + i);
}

Test(dot, block_types_all_lengths) {
    for (size_t k = 3; k < N_TYPES; k++) {
        int64_t blk = qtype_get(compute_types[k])->block;
        for (size_t i = 0; i < sizeof block_counts / sizeof block_counts[0]; i++)
            check_dot(compute_types[k], blk * block_counts[i], 200 + i);
    }
}

/* Extreme but legal values: Q8 weights of -128 (files may hold them) and
 * full-range activations must not saturate the int16 pair sums. */
Test(dot, extreme_values) {
    const int64_t n = 256;
    block_q8_0 w[8], a[8];
    for (int i = 0; i < 8; i++) {
        w[i].d = a[i].d = 0x3c00;
        for (int j = 0; j < 32; j++) { w[i].qs[j] = -128; a[i].qs[j] = (int8_t)(j % 2 ? 127 : -127); }
    }
    float want = quant_dot_ref(QT_Q8_0, n, w, a);
    cr_assert_eq(want, 0.0f);
    for (int i = 0; i < 8; i++) for (int j = 0; j < 32; j++) a[i].qs[j] = -127;
    want = quant_dot_ref(QT_Q8_0, n, w, a);
    cr_assert_eq(want, 256.0f * 128 * 127);
    for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++)
        cr_expect_eq(cpu_dot_get(QT_Q8_0, (cpu_isa)isa)(n, w, a), want, "isa %s", cpu_isa_name((cpu_isa)isa));
    /* Q6_K with every q = 63 and scale -128 against activations of 127 */
    block_q6_K q6;
    memset(q6.ql, 0xFF, sizeof q6.ql);
    memset(q6.qh, 0xFF, sizeof q6.qh);
    memset(q6.scales, 0x80, sizeof q6.scales);
    q6.d = 0x3c00;
    float ones[256];
    for (int i = 0; i < 256; i++) ones[i] = 1.0f;
    block_q8_K ak;
    quant_quantize_row_ref(QT_Q8_K, ones, &ak, 256);
    want = quant_dot_ref(QT_Q6_K, 256, &q6, &ak); /* 256 * 31 * -128 * 127 / 127 */
    cr_assert(fabsf(want - 256.0f * 31 * -128) < 1, "ref %g", want);
    for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++)
        cr_expect_eq(cpu_dot_get(QT_Q6_K, (cpu_isa)isa)(256, &q6, &ak), want, "isa %s", cpu_isa_name((cpu_isa)isa));
}

/* ---- tiles (cpu_gemm_fn) -------------------------------------------------------- */

/* Every gemm of type t over rows of n elements: each output against the
 * same ISA's single dot, bit for bit (the contract), at every tile shape
 * (1..16 rows, 1..8 activation rows), with row, activation and output
 * strides that are not the packed ones; nothing outside the tile written.
 * The AVX-512 VNNI block kernels promise more: bit-identical to
 * quant_dot_ref. (The AVX2 Q4_0 / Q8_0 tiles are not: they use an FMA;
 * they are checked against their own single dot and by NMSE.) */
static void check_gemm(qtype t, int64_t n, uint64_t seed) {
    enum { R = CPU_GEMM_ROWS, YS = CPU_GEMM_ROWS + 3 };
    const qtype_info *ti = qtype_get(t);
    const bool fl = ti->dot_type == QT_F32;
    /* rows not packed and not 4- or 64-byte aligned (blocks hold halves:
     * 2-byte alignment, as in any GGUF file; floats: 4) */
    size_t rb = row_bytes(t, n), ws = rb + (fl ? 4 : 2) * 7;
    size_t as = fl ? (size_t)n * 4 + 20 : cpu_act_row_stride(ti->dot_type, n) + 64;
    float *w = normal_data((size_t)(n * R), seed), *a = normal_data((size_t)(n * CPU_DOTN_MAX), seed + 1);
    for (int64_t i = 0; i < n * R; i++) w[i] *= (float)(1 + (i / n) % 5);
    uint8_t *wq = calloc(R, ws), *tmp = malloc(rb), *aq = calloc(CPU_DOTN_MAX, as);
    for (int r = 0; r < R; r++) {
        quant_quantize_row_ref(t, w + r * n, tmp, n);
        memcpy(wq + r * ws, tmp, rb);
    }
    for (int j = 0; j < CPU_DOTN_MAX; j++) {
        quant_quantize_row_ref(ti->dot_type, a + j * n, aq + j * as, n);
        cpu_act_fill_scales(ti->dot_type, aq + j * as, n);
    }
    float want[CPU_DOTN_MAX][R], ref[CPU_DOTN_MAX][R], y[CPU_DOTN_MAX * YS];
    for (int j = 0; j < CPU_DOTN_MAX; j++)
        for (int r = 0; r < R; r++) ref[j][r] = quant_dot_ref(t, n, wq + r * ws, aq + j * as);
    int tested = 0;
    for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++) {
        cpu_gemm_fn gemm = cpu_gemm_get(t, (cpu_isa)isa);
        cpu_dot_fn dot = cpu_dot_get(t, (cpu_isa)isa);
        if (!gemm) continue;
        tested++;
        for (int j = 0; j < CPU_DOTN_MAX; j++)
            for (int r = 0; r < R; r++) want[j][r] = dot(n, wq + r * ws, aq + j * as);
        static const int nrs[] = {1, 2, 3, 4, 5, 7, 13, 15, 16};
        for (size_t k = 0; k < sizeof nrs / sizeof nrs[0]; k++)
            for (int na = 1; na <= CPU_DOTN_MAX; na++) {
                const int nr = nrs[k];
                for (int i = 0; i < CPU_DOTN_MAX * YS; i++) y[i] = -12345.0f;
                gemm(n, wq, ws, nr, aq, as, na, y, YS);
                for (int j = 0; j < CPU_DOTN_MAX; j++)
                    for (int r = 0; r < YS; r++) {
                        float v = y[j * YS + r];
                        if (j >= na || r >= nr) {
                            cr_assert_eq(v, -12345.0f, "%s isa=%s nr=%d na=%d wrote y[%d][%d]", ti->name,
                                         cpu_isa_name((cpu_isa)isa), nr, na, j, r);
                            continue;
                        }
                        cr_assert(memcmp(&v, &want[j][r], sizeof v) == 0,
                                  "%s n=%lld isa=%s nr=%d na=%d row %d act %d: %.9g vs dot %.9g", ti->name,
                                  (long long)n, cpu_isa_name((cpu_isa)isa), nr, na, r, j, v, want[j][r]);
                        if (isa == CPU_ISA_AVX512VNNI && !fl)
                            cr_assert(memcmp(&v, &ref[j][r], sizeof v) == 0,
                                      "%s n=%lld avx512vnni row %d act %d: %.9g vs quant_dot_ref %.9g", ti->name,
                                      (long long)n, r, j, v, ref[j][r]);
                    }
            }
        /* and against the reference within the dot bound */
        double e = tu_nmse(&want[0][0], &ref[0][0], (size_t)(CPU_DOTN_MAX * R));
        cr_assert(e <= DOT_NMSE_BOUND, "%s n=%lld isa=%s: nmse %.3e", ti->name, (long long)n,
                  cpu_isa_name((cpu_isa)isa), e);
    }
#ifdef SLUICE_X86
    /* the machines this project runs its tests on all have AVX-512 VNNI
     * or at least AVX-512; then these types must have a tile */
    if (max_isa() >= CPU_ISA_AVX512VNNI && (t == QT_Q4_0 || t == QT_Q5_0 || t == QT_Q4_1 || t == QT_Q5_1 ||
                                            t == QT_Q8_0 || t == QT_Q4_K || t == QT_Q5_K || t == QT_Q6_K))
        cr_assert(tested > 0, "%s: no gemm at avx512vnni", ti->name);
    if (max_isa() >= CPU_ISA_AVX512 && fl) cr_assert(tested > 0, "%s: no gemm at avx512", ti->name);
    /* and the AVX2 level has tiles for Q4_0 and Q8_0 */
    if (max_isa() >= CPU_ISA_AVX2 && (t == QT_Q4_0 || t == QT_Q8_0))
        cr_assert_not_null(cpu_gemm_get(t, CPU_ISA_AVX2), "%s: no gemm at avx2", ti->name);
#endif
    free(w); free(a); free(wq); free(tmp); free(aq);
}

Test(gemm, float_types_match_dot) {
    static const int64_t lens[] = {1, 7, 16, 31, 32, 33, 100, 257, CPU_FLOAT_KCHUNK, CPU_FLOAT_KCHUNK + 1, 2100};
    qtype ft[] = {QT_F32, QT_F16, QT_BF16};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) check_gemm(ft[k], lens[i], 700 + i);
}

Test(gemm, block_types_match_dot) {
    static const int64_t counts[] = {1, 2, 3, 5, 8, 33};
    for (size_t k = 3; k < N_TYPES; k++) {
        int64_t blk = qtype_get(compute_types[k])->block;
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
            check_gemm(compute_types[k], blk * counts[i], 800 + i);
    }
}

/* Largest magnitudes the formats allow, through every tile: no int32 (or
 * int16 pair) overflow in the VNNI sums, exact against the reference. */
Test(gemm, extreme_values) {
    enum { NB = 8, N0 = 32 * NB, NK = 512 };
    /* Q8_0: weights -128 and 127, activations -127 / 127 */
    static block_q8_0 w8[CPU_GEMM_ROWS][NB];
    static uint8_t a8[2][8192];
    for (int r = 0; r < CPU_GEMM_ROWS; r++)
        for (int i = 0; i < NB; i++) {
            w8[r][i].d = 0x3c00;
            for (int j = 0; j < 32; j++) w8[r][i].qs[j] = (int8_t)(r & 1 ? 127 : -128);
        }
    size_t as8 = cpu_act_row_stride(QT_Q8_0, N0);
    cr_assert(as8 <= sizeof a8[0]);
    for (int t = 0; t < 2; t++) {
        block_q8_0 *b = (block_q8_0 *)a8[t];
        for (int i = 0; i < NB; i++) {
            b[i].d = 0x3c00;
            for (int j = 0; j < 32; j++) b[i].qs[j] = (int8_t)(t ? 127 : -127);
        }
        cpu_act_fill_scales(QT_Q8_0, a8[t], N0);
    }
    /* Q4_0: nibbles all 0 or all 15 */
    static block_q4_0 w4[CPU_GEMM_ROWS][NB];
    for (int r = 0; r < CPU_GEMM_ROWS; r++)
        for (int i = 0; i < NB; i++) {
            w4[r][i].d = 0x3c00;
            memset(w4[r][i].qs, r & 1 ? 0xFF : 0x00, 16);
        }
    /* Q5_0 / Q5_1: every q 0 or 31 (Q5_1 with m -1 or 1); Q4_1: every q 15 */
    static block_q5_0 w50[CPU_GEMM_ROWS][NB];
    static block_q5_1 w51[CPU_GEMM_ROWS][NB];
    static block_q4_1 w41[CPU_GEMM_ROWS][NB];
    for (int r = 0; r < CPU_GEMM_ROWS; r++)
        for (int i = 0; i < NB; i++) {
            w50[r][i].d = w51[r][i].d = w41[r][i].d = 0x3c00;
            w51[r][i].m = w41[r][i].m = r & 1 ? 0x3c00 : 0xbc00;
            memset(w50[r][i].qs, r & 1 ? 0xFF : 0x00, 16);
            memset(w50[r][i].qh, r & 1 ? 0xFF : 0x00, 4);
            memset(w51[r][i].qs, r & 2 ? 0x00 : 0xFF, 16);
            memset(w51[r][i].qh, r & 2 ? 0x00 : 0xFF, 4);
            memset(w41[r][i].qs, 0xFF, 16);
        }
    /* Q8_1 activations -127 / 127 */
    static uint8_t a81[2][8192];
    size_t as81 = cpu_act_row_stride(QT_Q8_1, N0);
    cr_assert(as81 <= sizeof a81[0]);
    for (int t = 0; t < 2; t++) {
        float x1[N0];
        for (int i = 0; i < N0; i++) x1[i] = t ? 1.0f : -1.0f;
        quant_quantize_row_ref(QT_Q8_1, x1, a81[t], N0);
        cpu_act_fill_scales(QT_Q8_1, a81[t], N0);
    }
    /* Q4_K: every q 15, scales and mins 63; Q6_K: every q 63, scales -128 or 127 */
    static block_q4_K wk[CPU_GEMM_ROWS][NK / 256];
    static block_q6_K w6[CPU_GEMM_ROWS][NK / 256];
    static block_q5_K w5k[CPU_GEMM_ROWS][NK / 256]; /* every q 31, scales and mins 63 */
    for (int r = 0; r < CPU_GEMM_ROWS; r++)
        for (int i = 0; i < NK / 256; i++) {
            wk[r][i].d = wk[r][i].dmin = 0x3c00;
            memset(wk[r][i].scales, 0xFF, 12);
            memset(wk[r][i].qs, 0xFF, 128);
            w5k[r][i].d = w5k[r][i].dmin = 0x3c00;
            memset(w5k[r][i].scales, 0xFF, 12);
            memset(w5k[r][i].qh, 0xFF, 32);
            memset(w5k[r][i].qs, 0xFF, 128);
            memset(w6[r][i].ql, 0xFF, sizeof w6[r][i].ql);
            memset(w6[r][i].qh, 0xFF, sizeof w6[r][i].qh);
            memset(w6[r][i].scales, r & 1 ? 0x7F : 0x80, sizeof w6[r][i].scales);
            w6[r][i].d = 0x3c00;
        }
    static block_q8_K ak[2][NK / 256];
    float xk[NK];
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < NK; i++) xk[i] = t ? 1.0f : -1.0f;
        quant_quantize_row_ref(QT_Q8_K, xk, ak[t], NK);
    }
    struct { qtype t; const void *w; size_t ws; const void *a; size_t as; int64_t n; } cases[] = {
        {QT_Q8_0, w8, sizeof w8[0], a8, sizeof a8[0], N0},
        {QT_Q4_0, w4, sizeof w4[0], a8, sizeof a8[0], N0},
        {QT_Q5_0, w50, sizeof w50[0], a8, sizeof a8[0], N0},
        {QT_Q4_1, w41, sizeof w41[0], a81, sizeof a81[0], N0},
        {QT_Q5_1, w51, sizeof w51[0], a81, sizeof a81[0], N0},
        {QT_Q4_K, wk, sizeof wk[0], ak, sizeof ak[0], NK},
        {QT_Q5_K, w5k, sizeof w5k[0], ak, sizeof ak[0], NK},
        {QT_Q6_K, w6, sizeof w6[0], ak, sizeof ak[0], NK},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++) {
            cpu_gemm_fn gemm = cpu_gemm_get(cases[c].t, (cpu_isa)isa);
            if (!gemm) continue;
            float y[2 * CPU_GEMM_ROWS];
            gemm(cases[c].n, cases[c].w, cases[c].ws, CPU_GEMM_ROWS, cases[c].a, cases[c].as, 2, y, CPU_GEMM_ROWS);
            for (int t = 0; t < 2; t++)
                for (int r = 0; r < CPU_GEMM_ROWS; r++) {
                    const uint8_t *wr = (const uint8_t *)cases[c].w + r * cases[c].ws;
                    const uint8_t *at = (const uint8_t *)cases[c].a + t * cases[c].as;
                    float want = cpu_dot_get(cases[c].t, (cpu_isa)isa)(cases[c].n, wr, at);
                    float ref = quant_dot_ref(cases[c].t, cases[c].n, wr, at);
                    cr_assert_eq(y[t * CPU_GEMM_ROWS + r], want, "%s isa=%s row %d act %d: %g vs %g",
                                 qtype_get(cases[c].t)->name, cpu_isa_name((cpu_isa)isa), r, t,
                                 y[t * CPU_GEMM_ROWS + r], want);
                    cr_assert(fabsf(want - ref) <= 1e-6f * fabsf(ref), "%s isa=%s: dot %g ref %g",
                              qtype_get(cases[c].t)->name, cpu_isa_name((cpu_isa)isa), want, ref);
                }
        }
}

/* ---- activation quantizers ------------------------------------------------- */

Test(act, fast_quantizers_bit_exact) {
    const int64_t n = 4096;
    float *x = normal_data((size_t)n, 77);
    for (int64_t i = 0; i < 256; i++) x[i] = 0;                   /* all-zero blocks */
    for (int64_t i = 256; i < 512; i++) x[i] *= 1e-30f;           /* tiny: d underflows in half */
    for (int64_t i = 512; i < 768; i++) x[i] *= 3e4f;             /* huge */
    for (int64_t i = 768; i < 1024; i++) x[i] = (float)(i % 9) - 4; /* exact ties at .5 after scaling */
    qtype dts[] = {QT_Q8_0, QT_Q8_1, QT_Q8_K, QT_F32};
    for (size_t k = 0; k < 4; k++) {
        size_t b = row_bytes(dts[k], n);
        uint8_t *want = calloc(1, b), *got = calloc(1, b);
        quant_quantize_row_ref(dts[k], x, want, n);
        for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++) {
            memset(got, 0xAB, b);
            cpu_act_get(dts[k], (cpu_isa)isa)(x, got, n);
            for (size_t i = 0; i < b; i++)
                cr_assert_eq(got[i], want[i], "%s isa=%s byte %zu", qtype_get(dts[k])->name,
                             cpu_isa_name((cpu_isa)isa), i);
        }
        free(want); free(got);
    }
    free(x);
}

/* ---- matmul -------------------------------------------------------------- */

/* Y = X W^T on dequantized weights and dequantized (quantized) activations,
 * in double: what the kernels compute up to float summation order. */
static void naive_matmul(qtype t, const void *W, int64_t rows, int64_t cols, const float *X, int64_t n_tok, float *Y) {
    const qtype_info *ti = qtype_get(t);
    size_t rb = row_bytes(t, cols), ab = row_bytes(ti->dot_type, cols);
    float *wd = malloc((size_t)cols * sizeof *wd), *xd = malloc((size_t)(cols * n_tok) * sizeof *xd);
    uint8_t *aq = malloc(ab);
    for (int64_t tk = 0; tk < n_tok; tk++) {
        quant_quantize_row_ref(ti->dot_type, X + tk * cols, aq, cols);
        quant_dequantize_row_ref(ti->dot_type, aq, xd + tk * cols, cols);
    }
    for (int64_t r = 0; r < rows; r++) {
        quant_dequantize_row_ref(t, (const uint8_t *)W + r * rb, wd, cols);
        for (int64_t tk = 0; tk < n_tok; tk++) {
            double s = 0;
            for (int64_t j = 0; j < cols; j++) s += (double)wd[j] * xd[tk * cols + j];
            Y[tk * rows + r] = (float)s;
        }
    }
    free(wd); free(xd); free(aq);
}

static void check_matmul(qtype t, cpu_isa isa, pool *p1, pool *p2) {
    /* rows: not a multiple of any task chunk; float types: more than two
     * CPU_FLOAT_KCHUNK column chunks and a ragged tail */
    const int64_t rows = 67, cols = qtype_get(t)->block == 1 ? 2 * CPU_FLOAT_KCHUNK + 77 : 512;
    const int64_t ntoks[] = {1, 2, 3, 7, 64};
    const int64_t max_tok = 64;
    float *w = normal_data((size_t)(rows * cols), 500 + t), *X = normal_data((size_t)(cols * max_tok), 600 + t);
    uint8_t *W = malloc(row_bytes(t, cols) * rows);
    quant_quantize_row_ref(t, w, W, rows * cols);
    float *want = malloc(sizeof(float) * rows * max_tok);
    float *y1 = malloc(sizeof(float) * rows * max_tok), *y2 = malloc(sizeof(float) * rows * max_tok);
    float *ysingle = malloc(sizeof(float) * rows);
    void *ws = malloc(cpu_matmul_ws_bytes(t, cols, max_tok) + 1);
    double bound = (t == QT_Q4_1 || t == QT_Q5_1) ? 1e-6 : 1e-10; /* see test_quant: half s */
    for (size_t k = 0; k < sizeof ntoks / sizeof ntoks[0]; k++) {
        int64_t nt = ntoks[k];
        naive_matmul(t, W, rows, cols, X, nt, want);
        cpu_matmul(p1, isa, t, W, rows, cols, X, nt, y1, ws);
        double e = tu_nmse(y1, want, (size_t)(rows * nt));
        cr_assert(e <= bound, "%s isa=%s n_tok=%lld: nmse %.3e", qtype_get(t)->name, cpu_isa_name(isa), (long long)nt, e);
        cpu_matmul(p2, isa, t, W, rows, cols, X, nt, y2, ws);
        cr_assert(memcmp(y1, y2, sizeof(float) * rows * nt) == 0, "%s isa=%s n_tok=%lld: 1 vs 2 threads differ",
                  qtype_get(t)->name, cpu_isa_name(isa), (long long)nt);
        /* batch invariance: each token's row equals a one-token call */
        for (int64_t tk = 0; tk < nt; tk += 3) {
            cpu_matmul(p2, isa, t, W, rows, cols, X + tk * cols, 1, ysingle, ws);
            cr_assert(memcmp(ysingle, y1 + tk * rows, sizeof(float) * rows) == 0,
                      "%s isa=%s n_tok=%lld token %lld differs from a single-token call", qtype_get(t)->name,
                      cpu_isa_name(isa), (long long)nt, (long long)tk);
        }
    }
    free(w); free(X); free(W); free(want); free(y1); free(y2); free(ysingle); free(ws);
}

Test(matmul, all_types_isas_threads) {
    pool *p1 = pool_create(1), *p2 = pool_create(2);
    cr_assert_not_null(p1);
    cr_assert_not_null(p2);
    for (int isa = CPU_ISA_SCALAR; isa <= max_isa(); isa++)
        for (size_t k = 0; k < N_TYPES; k++) check_matmul(compute_types[k], (cpu_isa)isa, p1, p2);
    pool_destroy(p1);
    pool_destroy(p2);
}

/* Separate convert + multiply, reused activations, and a NULL pool. */
Test(matmul, convert_once_multiply_twice) {
    const int64_t rows = 40, cols = 256, nt = 5;
    float *w = normal_data((size_t)(rows * cols), 1), *X = normal_data((size_t)(cols * nt), 2);
    cpu_isa isa = (cpu_isa)max_isa();
    for (size_t k = 0; k < N_TYPES; k++) {
        qtype t = compute_types[k];
        uint8_t *W = malloc(row_bytes(t, cols) * rows);
        quant_quantize_row_ref(t, w, W, rows * cols);
        void *ws = malloc(cpu_matmul_ws_bytes(t, cols, nt) + 1);
        float y1[200], y2[200], y3[200];
        size_t as = 0;
        const void *A = cpu_act_convert(NULL, isa, t, cols, X, nt, ws, &as);
        cr_assert(as >= row_bytes(qtype_get(t)->dot_type, cols));
        cpu_matmul_act(NULL, isa, t, W, rows, cols, A, as, nt, y1);
        cpu_matmul_act(NULL, isa, t, W, rows, cols, A, as, nt, y2);
        cpu_matmul(NULL, isa, t, W, rows, cols, X, nt, y3, ws);
        cr_assert_arr_eq(y1, y2, sizeof(float) * rows * nt);
        cr_assert_arr_eq(y1, y3, sizeof(float) * rows * nt);
        free(W);
        free(ws);
    }
    free(w);
    free(X);
}
