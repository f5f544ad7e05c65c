/* test_quant.c — GGUF type table, block layouts and the reference
 * quantize / dequantize / dot product (src/model/quant.c), plus the half
 * and bfloat16 conversions they rest on. Layout tests build blocks byte by
 * byte following the GGUF ecosystem's documented formats, so a layout slip
 * in quant.c shows up here rather than as garbage output from real files. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/fp16.h"
#include "model/quant.h"
#include "testutil.h"

static const qtype compute_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_1,
                                      QT_Q5_0, QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
#define N_COMPUTE (sizeof compute_types / sizeof compute_types[0])

/* Round-trip NMSE bounds: quantize -> dequantize of 65,536 N(0,1) samples
 * (seed 42). Measured values with the quantizers as written, in brackets;
 * each bound leaves ~25% headroom so a worse scale search fails the test.
 * For reference, uniform quantization error step^2/12 of a +-2.1 sigma
 * range is 6.5e-3 at 4 bits, 1.6e-3 at 5 bits, 3.7e-4 at 6 bits. */
static double roundtrip_bound(qtype t) {
    switch (t) {
    case QT_F32: return 0;       /* exact */
    case QT_F16: return 6e-8;    /* [4.3e-8] 11-bit mantissa: 2^-24 / 3 */
    case QT_BF16: return 3.5e-6; /* [2.8e-6] 8-bit mantissa */
    case QT_Q8_0: return 3.6e-5; /* [2.9e-5] */
    case QT_Q8_1: return 3.6e-5; /* [2.9e-5] same rule as Q8_0 */
    case QT_Q8_K: return 6e-5;   /* [4.8e-5] one scale per 256 */
    case QT_Q4_0: return 9.3e-3; /* [7.4e-3] */
    case QT_Q4_1: return 7.6e-3; /* [6.1e-3] */
    case QT_Q5_0: return 2.3e-3; /* [1.8e-3] */
    case QT_Q5_1: return 1.8e-3; /* [1.4e-3] */
    case QT_Q4_K: return 6.4e-3; /* [5.2e-3] least-squares fit beats Q4_1 at equal bits */
    case QT_Q5_K: return 1.65e-3; /* [1.3e-3] */
    case QT_Q6_K: return 4e-4;   /* [3.2e-4] */
    default: return -1;
    }
}

static float *normal_data(size_t n, uint64_t seed) {
    tu_rng r = {seed};
    float *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) x[i] = tu_rand_normal(&r);
    return x;
}

static void *qalloc(qtype t, int64_t n) {
    uint64_t b = 0;
    cr_assert(qtype_row_bytes(t, (uint64_t)n, &b), "row bytes of %s x %lld", qtype_get(t)->name, (long long)n);
    void *p = calloc(1, b + 1);
    cr_assert_not_null(p);
    return p;
}

/* ---- type table ----------------------------------------------------------- */

Test(qtype, table_sizes_match_gguf) {
    struct { uint32_t id; const char *name; uint32_t block, bytes; bool compute; } want[] = {
        {0, "F32", 1, 4, true}, {1, "F16", 1, 2, true}, {2, "Q4_0", 32, 18, true},
        {3, "Q4_1", 32, 20, true}, {6, "Q5_0", 32, 22, true}, {7, "Q5_1", 32, 24, true},
        {8, "Q8_0", 32, 34, true}, {9, "Q8_1", 32, 36, false}, {10, "Q2_K", 256, 84, false},
        {11, "Q3_K", 256, 110, false}, {12, "Q4_K", 256, 144, true}, {13, "Q5_K", 256, 176, true},
        {14, "Q6_K", 256, 210, true}, {15, "Q8_K", 256, 292, false}, {16, "IQ2_XXS", 256, 66, false},
        {17, "IQ2_XS", 256, 74, false}, {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
        {20, "IQ4_NL", 32, 18, false}, {21, "IQ3_S", 256, 110, false}, {22, "IQ2_S", 256, 82, false},
        {23, "IQ4_XS", 256, 136, false}, {24, "I8", 1, 1, false}, {25, "I16", 1, 2, false},
        {26, "I32", 1, 4, false}, {27, "I64", 1, 8, false}, {28, "F64", 1, 8, false},
        {29, "IQ1_M", 256, 56, false}, {30, "BF16", 1, 2, true}, {34, "TQ1_0", 256, 54, false},
        {35, "TQ2_0", 256, 66, false}, {39, "MXFP4", 32, 17, false},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const qtype_info *ti = qtype_get(want[i].id);
        cr_assert_not_null(ti, "type %u", want[i].id);
        cr_expect_str_eq(ti->name, want[i].name);
        cr_expect_eq(ti->block, want[i].block, "%s block", want[i].name);
        cr_expect_eq(ti->block_bytes, want[i].bytes, "%s bytes", want[i].name);
        cr_expect_eq(ti->compute, want[i].compute, "%s compute", want[i].name);
        cr_expect_eq(qtype_from_name(want[i].name), (int)want[i].id);
    }
}

Test(qtype, dot_types) {
    cr_expect_eq(qtype_get(QT_F32)->dot_type, QT_F32);
    cr_expect_eq(qtype_get(QT_F16)->dot_type, QT_F32);
    cr_expect_eq(qtype_get(QT_BF16)->dot_type, QT_F32);
    cr_expect_eq(qtype_get(QT_Q4_0)->dot_type, QT_Q8_0);
    cr_expect_eq(qtype_get(QT_Q5_0)->dot_type, QT_Q8_0);
    cr_expect_eq(qtype_get(QT_Q8_0)->dot_type, QT_Q8_0);
    cr_expect_eq(qtype_get(QT_Q4_1)->dot_type, QT_Q8_1);
    cr_expect_eq(qtype_get(QT_Q5_1)->dot_type, QT_Q8_1);
    cr_expect_eq(qtype_get(QT_Q4_K)->dot_type, QT_Q8_K);
    cr_expect_eq(qtype_get(QT_Q5_K)->dot_type, QT_Q8_K);
    cr_expect_eq(qtype_get(QT_Q6_K)->dot_type, QT_Q8_K);
}

Test(qtype, unknown_ids_and_names) {
    uint32_t bad[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) cr_expect_null(qtype_get(bad[i]), "id %u", bad[i]);
    cr_expect_eq(qtype_from_name("q4_k"), QT_Q4_K);
    cr_expect_eq(qtype_from_name("bf16"), QT_BF16);
    cr_expect_eq(qtype_from_name("Q4_2"), -1);
    cr_expect_eq(qtype_from_name(""), -1);
    cr_expect_eq(qtype_from_name(NULL), -1);
}

Test(qtype, row_bytes) {
    uint64_t b = 12345;
    cr_expect(qtype_row_bytes(QT_Q4_0, 64, &b)); cr_expect_eq(b, 36);
    cr_expect(qtype_row_bytes(QT_Q4_K, 4096, &b)); cr_expect_eq(b, 16 * 144);
    cr_expect(qtype_row_bytes(QT_Q6_K, 256, &b)); cr_expect_eq(b, 210);
    cr_expect(qtype_row_bytes(QT_F16, 7, &b)); cr_expect_eq(b, 14);
    cr_expect(qtype_row_bytes(QT_F32, 0, &b)); cr_expect_eq(b, 0);
    /* not a multiple of the block */
    cr_expect_not(qtype_row_bytes(QT_Q4_0, 33, &b));
    cr_expect_not(qtype_row_bytes(QT_Q4_K, 4096 + 32, &b));
    cr_expect_not(qtype_row_bytes(QT_Q8_0, 1, &b));
    /* overflow of 64-bit byte counts */
    cr_expect_not(qtype_row_bytes(QT_F32, UINT64_MAX / 4 + 1, &b));
    cr_expect(qtype_row_bytes(QT_F32, UINT64_MAX / 4, &b));
    cr_expect_not(qtype_row_bytes(QT_F16, UINT64_MAX / 2 + 1, &b));
    cr_expect_not(qtype_row_bytes(QT_Q8_0, (UINT64_MAX / 34 + 1) * 32, &b)); /* 34 B per 32 */
    cr_expect(qtype_row_bytes(QT_Q8_0, UINT64_MAX / 34 * 32, &b));
    cr_expect_eq(b, UINT64_MAX / 34 * 34);
    /* types smaller than 1 byte per element cannot overflow: largest n works */
    cr_expect(qtype_row_bytes(QT_Q4_0, UINT64_MAX / 32 * 32, &b));
    cr_expect_eq(b, UINT64_MAX / 32 * 18);
    /* unknown type */
    cr_expect_not(qtype_row_bytes((qtype)4, 32, &b));
    cr_expect_not(qtype_row_bytes((qtype)999, 32, &b));
}

/* ---- half / bfloat16 -------------------------------------------------------- */

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

Test(fp16, known_values) {
    cr_expect_eq(f32_to_fp16(1.0f), 0x3c00);
    cr_expect_eq(f32_to_fp16(-2.0f), 0xc000);
    cr_expect_eq(f32_to_fp16(0.5f), 0x3800);
    cr_expect_eq(f32_to_fp16(65504.0f), 0x7bff);      /* largest finite */
    cr_expect_eq(f32_to_fp16(65519.0f), 0x7bff);      /* rounds down */
    cr_expect_eq(f32_to_fp16(65520.0f), 0x7c00);      /* tie rounds to even: inf */
    cr_expect_eq(f32_to_fp16(1e10f), 0x7c00);
    cr_expect_eq(f32_to_fp16(INFINITY), 0x7c00);
    cr_expect_eq(f32_to_fp16(-INFINITY), 0xfc00);
    cr_expect_eq(f32_to_fp16(0.0f), 0x0000);
    cr_expect_eq(f32_to_fp16(-0.0f), 0x8000);
    uint16_t nan = f32_to_fp16(NAN);
    cr_expect((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0, "nan -> %04x", nan);
    cr_expect(isnan(fp16_to_f32(0x7e00)));
    cr_expect(isinf(fp16_to_f32(0x7c00)) && fp16_to_f32(0x7c00) > 0);
    cr_expect(signbit(fp16_to_f32(0x8000)) && fp16_to_f32(0x8000) == 0);
    cr_expect_eq(fp16_to_f32(0x3555), 0.333251953125f);
}

Test(fp16, subnormals) {
    cr_expect_eq(fp16_to_f32(0x0001), ldexpf(1, -24));      /* smallest subnormal */
    cr_expect_eq(fp16_to_f32(0x03ff), 1023 * ldexpf(1, -24)); /* largest subnormal */
    cr_expect_eq(fp16_to_f32(0x0400), ldexpf(1, -14));      /* smallest normal */
    cr_expect_eq(fp16_to_f32(0x8001), -ldexpf(1, -24));
    cr_expect_eq(f32_to_fp16(ldexpf(1, -24)), 0x0001);
    cr_expect_eq(f32_to_fp16(ldexpf(1, -25)), 0x0000);      /* tie -> even (0) */
    cr_expect_eq(f32_to_fp16(ldexpf(3, -26)), 0x0001);      /* 0.75 ulp -> 1 */
    cr_expect_eq(f32_to_fp16(ldexpf(3, -25)), 0x0002);      /* 1.5 ulp, tie -> even (2) */
    cr_expect_eq(f32_to_fp16(ldexpf(5, -25)), 0x0002);      /* 2.5 ulp, tie -> even (2) */
    cr_expect_eq(f32_to_fp16(ldexpf(1, -30)), 0x0000);
    cr_expect_eq(f32_to_fp16(-ldexpf(1, -24)), 0x8001);
    cr_expect_eq(f32_to_fp16(1023 * ldexpf(1, -24)), 0x03ff);
    cr_expect_eq(f32_to_fp16(ldexpf(2047, -25)), 0x0400);  /* 1023.5 ulp rounds up into normals */
}

Test(fp16, rounding_normals) {
    cr_expect_eq(f32_to_fp16(1.0f + ldexpf(1, -11)), 0x3c00);     /* tie -> even */
    cr_expect_eq(f32_to_fp16(1.0f + ldexpf(3, -11)), 0x3c02);     /* tie -> even (up) */
    cr_expect_eq(f32_to_fp16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01); /* above tie */
    cr_expect_eq(f32_to_fp16(2047.5f), 0x6800);                   /* mantissa carry: 2048 */
}

Test(fp16, every_half_round_trips) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = fp16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        cr_assert_eq(f32_to_fp16(f), h, "half %04x -> %g -> %04x", h, f, f32_to_fp16(f));
    }
}

Test(bf16, conversions) {
    cr_expect_eq(f32_to_bf16(1.0f), 0x3f80);
    cr_expect_eq(f32_to_bf16(-2.0f), 0xc000);
    cr_expect_eq(f32_to_bf16(bitsf(0x3f808000)), 0x3f80); /* tie -> even */
    cr_expect_eq(f32_to_bf16(bitsf(0x3f818000)), 0x3f82); /* tie -> even (up) */
    cr_expect_eq(f32_to_bf16(bitsf(0x3f808001)), 0x3f81);
    cr_expect_eq(f32_to_bf16(INFINITY), 0x7f80);
    cr_expect_eq(f32_to_bf16(bitsf(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
    cr_expect_eq(f32_to_bf16(bitsf(0x00000001)), 0x0000); /* tiny subnormal */
    cr_expect_eq(f32_to_bf16(bitsf(0x00010000)), 0x0001); /* bf16 subnormal kept */
    uint16_t nan = f32_to_bf16(bitsf(0x7f800001));        /* signalling NaN stays NaN */
    cr_expect((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0, "nan -> %04x", nan);
    cr_expect_eq(bf16_to_f32(0x3f80), 1.0f);
    cr_expect_eq(fbits(bf16_to_f32(0x8001)), 0x80010000u);
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        cr_assert_eq(f32_to_bf16(f), h, "bf16 %04x", h);
    }
}

/* ---- round trip -------------------------------------------------------------- */

Test(quant, round_trip_nmse) {
    const int64_t n = 65536;
    float *x = normal_data((size_t)n, 42), *y = malloc((size_t)n * sizeof *y);
    qtype all[N_COMPUTE + 2];
    memcpy(all, compute_types, sizeof compute_types);
    all[N_COMPUTE] = QT_Q8_1;
    all[N_COMPUTE + 1] = QT_Q8_K;
    for (size_t k = 0; k < N_COMPUTE + 2; k++) {
        qtype t = all[k];
        void *q = qalloc(t, n);
        for (int64_t i = 0; i < n; i++) y[i] = NAN;
        quant_quantize_row_ref(t, x, q, n);
        quant_dequantize_row_ref(t, q, y, n);
        double e = tu_nmse(y, x, (size_t)n);
        cr_expect(e <= roundtrip_bound(t), "%s: nmse %.3e > %.3e", qtype_get(t)->name, e, roundtrip_bound(t));
        free(q);
    }
    free(x);
    free(y);
}

/* Scaled and shifted data, constant blocks and zeros: no NaN, no blow-up. */
Test(quant, degenerate_blocks) {
    const int64_t n = 1024;
    float *x = calloc((size_t)n, sizeof *x), *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 256; i < 512; i++) x[i] = 3.25f;          /* constant block */
    for (int64_t i = 512; i < 768; i++) x[i] = 1000.f + (float)(i % 7); /* large offset */
    for (int64_t i = 768; i < 1024; i++) x[i] = (i % 2 ? 1e-3f : -1e-3f) * (float)(i % 5);
    for (size_t k = 0; k < N_COMPUTE; k++) {
        qtype t = compute_types[k];
        void *q = qalloc(t, n);
        quant_quantize_row_ref(t, x, q, n);
        quant_dequantize_row_ref(t, q, y, n);
        for (int64_t i = 0; i < 256; i++) cr_assert_eq(y[i], 0.0f, "%s zero block [%lld]", qtype_get(t)->name, (long long)i);
        for (int64_t i = 256; i < n; i++) {
            /* error bound: a fraction of the 256-block's largest magnitude; Q4_0
             * clips one side of the range to 7/8 (by design), so 1/8 there */
            float frac = t == QT_Q4_0 ? 0.13f : 0.07f, bmax = 0;
            for (int64_t k = i / 256 * 256; k < i / 256 * 256 + 256; k++) bmax = fmaxf(bmax, fabsf(x[k]));
            cr_assert(isfinite(y[i]), "%s [%lld] not finite", qtype_get(t)->name, (long long)i);
            cr_assert(fabsf(y[i] - x[i]) <= frac * bmax + 1e-6f, "%s [%lld]: %g vs %g",
                      qtype_get(t)->name, (long long)i, y[i], x[i]);
        }
        free(q);
    }
    free(x);
    free(y);
}

/* Inf / NaN inputs give unspecified values but must not trap (the sanitizer
 * build checks that no NaN reaches a float -> int conversion). */
Test(quant, non_finite_input_is_safe) {
    const int64_t n = 512;
    float *x = normal_data((size_t)n, 21), *y = malloc((size_t)n * sizeof *y);
    x[3] = NAN; x[40] = INFINITY; x[300] = -INFINITY; x[301] = NAN;
    qtype all[N_COMPUTE + 2];
    memcpy(all, compute_types, sizeof compute_types);
    all[N_COMPUTE] = QT_Q8_1;
    all[N_COMPUTE + 1] = QT_Q8_K;
    for (size_t k = 0; k < N_COMPUTE + 2; k++) {
        void *q = qalloc(all[k], n);
        quant_quantize_row_ref(all[k], x, q, n);
        quant_dequantize_row_ref(all[k], q, y, n);
        free(q);
    }
    free(x);
    free(y);
}

/* ---- hand-built blocks: the byte layout ------------------------------------ */

Test(layout, q4_0) {
    block_q4_0 b;
    b.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    quant_dequantize_row_ref(QT_Q4_0, &b, y, 32);
    for (int j = 0; j < 16; j++) {
        cr_expect_eq(y[j], 0.5f * (j - 8), "y[%d]", j);
        cr_expect_eq(y[j + 16], 0.5f * (7 - j), "y[%d]", j + 16);
    }
    uint8_t raw[18] = {0x00, 0x3c, 0x21}; /* d = 1.0; qs[0] = 0x21: x0 = 1-8, x16 = 2-8 */
    quant_dequantize_row_ref(QT_Q4_0, raw, y, 32);
    cr_expect_eq(y[0], -7.0f);
    cr_expect_eq(y[16], -6.0f);
    cr_expect_eq(y[1], -8.0f);
}

Test(layout, q4_1) {
    uint8_t raw[20] = {0x00, 0x34, 0x00, 0xbc}; /* d = 0.25, m = -1.0 */
    for (int j = 0; j < 16; j++) raw[4 + j] = (uint8_t)(j << 4 | 15);
    float y[32];
    quant_dequantize_row_ref(QT_Q4_1, raw, y, 32);
    for (int j = 0; j < 16; j++) {
        cr_expect_eq(y[j], 0.25f * 15 - 1, "y[%d]", j);
        cr_expect_eq(y[j + 16], 0.25f * j - 1, "y[%d]", j + 16);
    }
}

Test(layout, q5_0_and_q5_1) {
    /* qh = 0x80010003 little-endian: fifth bit set for elements 0, 1, 16, 31 */
    uint8_t r0[22] = {0x00, 0x3c, 0x03, 0x00, 0x01, 0x80}; /* d = 1 */
    for (int j = 0; j < 16; j++) r0[6 + j] = (uint8_t)(j | j << 4);
    float y[32];
    quant_dequantize_row_ref(QT_Q5_0, r0, y, 32);
    for (int j = 0; j < 32; j++) {
        int hb = j == 0 || j == 1 || j == 16 || j == 31;
        cr_expect_eq(y[j], (float)((j % 16) + 16 * hb - 16), "q5_0 y[%d]", j);
    }
    uint8_t r1[24] = {0x00, 0x40, 0x00, 0x3c, 0x03, 0x00, 0x01, 0x80}; /* d = 2, m = 1 */
    memcpy(r1 + 8, r0 + 6, 16);
    quant_dequantize_row_ref(QT_Q5_1, r1, y, 32);
    for (int j = 0; j < 32; j++) {
        int hb = j == 0 || j == 1 || j == 16 || j == 31;
        cr_expect_eq(y[j], 2.0f * ((j % 16) + 16 * hb) + 1, "q5_1 y[%d]", j);
    }
}

Test(layout, q8_0) {
    uint8_t raw[34] = {0x00, 0xc0}; /* d = -2 */
    for (int j = 0; j < 32; j++) raw[2 + j] = (uint8_t)(int8_t)(j * 8 - 128);
    float y[32];
    quant_dequantize_row_ref(QT_Q8_0, raw, y, 32);
    for (int j = 0; j < 32; j++) cr_expect_eq(y[j], -2.0f * (j * 8 - 128), "y[%d]", j);
}

/* Scale/min of sub-block j as the GGUF K-quant format documents it, one
 * sub-block at a time (a different formulation from quant_k_scales). */
static void k_scale_min(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) { *sc = q[j] & 63; *mn = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

Test(layout, k_scales_unpack) {
    tu_rng r = {7};
    for (int it = 0; it < 1000; it++) {
        uint8_t s[12], sc[8], mn[8];
        for (int k = 0; k < 12; k++) s[k] = (uint8_t)tu_rand_u32(&r);
        quant_k_scales(s, sc, mn);
        for (int j = 0; j < 8; j++) {
            int esc, emn;
            k_scale_min(j, s, &esc, &emn);
            cr_assert_eq(sc[j], esc, "sc[%d]", j);
            cr_assert_eq(mn[j], emn, "mn[%d]", j);
        }
    }
}

/* Hand-packed Q4_K: sc = {1, 2, 63, 4, 17, 33, 48, 63}, mn = {0, 5, 10, 63,
 * 16, 31, 47, 62}. Bytes 0-3: sc[0..3] | (sc[4..7] >> 4) << 6; bytes 4-7:
 * mn[0..3] | (mn[4..7] >> 4) << 6; bytes 8-11: sc[4..7] & 15 | (mn[4..7] & 15) << 4. */
static const uint8_t k_scales_bytes[12] = {
    0x41, 0x82, 0xFF, 0xC4, /* 1|1<<6, 2|2<<6, 63|3<<6, 4|3<<6 */
    0x40, 0x45, 0x8A, 0xFF, /* 0|1<<6, 5|1<<6, 10|2<<6, 63|3<<6 */
    0x01, 0xF1, 0xF0, 0xEF, /* 1|0<<4, 1|15<<4, 0|15<<4, 15|14<<4 */
};
static const int k_sc[8] = {1, 2, 63, 4, 17, 33, 48, 63}, k_mn[8] = {0, 5, 10, 63, 16, 31, 47, 62};

Test(layout, q4_K) {
    block_q4_K b;
    b.d = 0x3c00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    memcpy(b.scales, k_scales_bytes, 12);
    for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
    float y[256];
    quant_dequantize_row_ref(QT_Q4_K, &b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int j0 = 2 * c, j1 = 2 * c + 1, q0 = l & 15, q1 = 15 - (l & 15);
            cr_expect_eq(y[64 * c + l], (float)(k_sc[j0] * q0) - 0.5f * k_mn[j0], "y[%d]", 64 * c + l);
            cr_expect_eq(y[64 * c + 32 + l], (float)(k_sc[j1] * q1) - 0.5f * k_mn[j1], "y[%d]", 64 * c + 32 + l);
        }
    /* spot values worked by hand: element 0 = 1*0 - 0.5*0; element 255 is
     * sub-block 7, q = 15 - 15 = 0 -> -0.5*62; element 200 (sub-block 6,
     * l = 8, low nibble 8) = 48*8 - 0.5*47 */
    cr_expect_eq(y[0], 0.0f);
    cr_expect_eq(y[255], -31.0f);
    cr_expect_eq(y[200], 360.5f);
}

Test(layout, q5_K) {
    block_q5_K b;
    b.d = 0x3c00;
    b.dmin = 0x3800;
    memcpy(b.scales, k_scales_bytes, 12);
    for (int i = 0; i < 128; i++) b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
    for (int l = 0; l < 32; l++) b.qh[l] = (uint8_t)(l * 37 + 11); /* arbitrary bit pattern */
    float y[256];
    quant_dequantize_row_ref(QT_Q5_K, &b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int j0 = 2 * c, j1 = 2 * c + 1;
            int q0 = (l & 15) | ((b.qh[l] >> (2 * c)) & 1) << 4;
            int q1 = (15 - (l & 15)) | ((b.qh[l] >> (2 * c + 1)) & 1) << 4;
            cr_expect_eq(y[64 * c + l], (float)(k_sc[j0] * q0) - 0.5f * k_mn[j0], "y[%d]", 64 * c + l);
            cr_expect_eq(y[64 * c + 32 + l], (float)(k_sc[j1] * q1) - 0.5f * k_mn[j1], "y[%d]", 64 * c + 32 + l);
        }
    /* element 33: sub-block 1 (sc 2, mn 5), high nibble of qs[1] = 14,
     * qh[1] = 48 = 0b110000: bit 1 clear -> q = 14 -> 2*14 - 2.5 */
    cr_expect_eq(y[33], 25.5f);
    /* element 0: qh[0] = 11 = 0b1011, bit 0 set -> q = 16 -> 1*16 - 0 */
    cr_expect_eq(y[0], 16.0f);
}

/* Q6_K dequantized the way the format's reference loop walks it: two halves
 * of 128, pointers advancing by 64 (ql), 32 (qh), 8 (scales). */
static void q6k_oracle(const block_q6_K *b, float *y) {
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    float d = fp16_to_f32(b->d);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q3 = (int)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128; ql += 64; qh += 32; sc += 8;
    }
}

Test(layout, q6_K) {
    block_q6_K b;
    tu_rng r = {3};
    for (int it = 0; it < 50; it++) {
        for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)tu_rand_u32(&r);
        for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)tu_rand_u32(&r);
        for (int i = 0; i < 16; i++) b.scales[i] = (int8_t)tu_rand_u32(&r);
        b.d = f32_to_fp16(tu_rand_uniform(&r, -0.01f, 0.01f));
        float y[256], e[256];
        quant_dequantize_row_ref(QT_Q6_K, &b, y, 256);
        q6k_oracle(&b, e);
        cr_assert_arr_eq(y, e, sizeof y, "iteration %d", it);
    }
    /* hand values: d = 1, scales[g] = g - 8; ql all 0x21 (low 1, high 2),
     * qh all 0b11100100 (bits 0-1 = 0, 2-3 = 1, 4-5 = 2, 6-7 = 3) */
    memset(b.ql, 0x21, sizeof b.ql);
    memset(b.qh, 0xE4, sizeof b.qh);
    for (int g = 0; g < 16; g++) b.scales[g] = (int8_t)(g - 8);
    b.d = 0x3c00;
    float y[256];
    quant_dequantize_row_ref(QT_Q6_K, &b, y, 256);
    /* element 0: q = 1 | 0 << 4 = 1 -> -31, group 0 (scale -8) -> 248 */
    cr_expect_eq(y[0], 248.0f);
    /* element 40: q = 1 | 1 << 4 = 17 -> -15, group 2 (scale -6) -> 90 */
    cr_expect_eq(y[40], 90.0f);
    /* element 200 (half 1, run 2): q = 2 | 2 << 4 = 34 -> 2, group 12 (scale 4) -> 8 */
    cr_expect_eq(y[200], 8.0f);
    /* element 255 (half 1, run 3): q = 2 | 3 << 4 = 50 -> 18, group 15 (scale 7) -> 126 */
    cr_expect_eq(y[255], 126.0f);
}

/* Quantizers write blocks the documented dequantizers read: Q4_K's packed
 * scales round-trip through the independent unpacker. */
Test(layout, q4_K_quantizer_packs_documented_scales) {
    float *x = normal_data(256, 9);
    block_q4_K b;
    quant_quantize_row_ref(QT_Q4_K, x, &b, 256);
    float y[256], e[256];
    quant_dequantize_row_ref(QT_Q4_K, &b, y, 256);
    float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    for (int i = 0; i < 256; i++) {
        int j = i / 32, c = i / 64, sc, mn;
        k_scale_min(j, b.scales, &sc, &mn);
        int q = (i % 64) < 32 ? b.qs[32 * c + i % 32] & 15 : b.qs[32 * c + i % 32] >> 4;
        e[i] = d * sc * q - dmin * mn;
    }
    cr_assert_arr_eq(y, e, sizeof y);
    free(x);
}

Test(layout, q8_K_bsums) {
    float *x = normal_data(512, 5);
    block_q8_K b[2];
    quant_quantize_row_ref(QT_Q8_K, x, b, 512);
    for (int i = 0; i < 2; i++)
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int k = 0; k < 16; k++) s += b[i].qs[16 * g + k];
            cr_expect_eq(b[i].bsums[g], s);
        }
    block_q8_1 c[16];
    quant_quantize_row_ref(QT_Q8_1, x, c, 512);
    for (int i = 0; i < 16; i++) {
        int s = 0;
        for (int k = 0; k < 32; k++) s += c[i].qs[k];
        float want = (float)s * fp16_to_f32(c[i].d);
        cr_expect(fabsf(fp16_to_f32(c[i].s) - want) <= fabsf(want) * 1e-3f + 1e-6f, "s of block %d", i);
    }
    free(x);
}

/* ---- reference dot product ------------------------------------------------- */

/* quant_dot_ref against dequantize-both-then-dot in double. The only
 * difference allowed is float rounding of the per-block scaling, plus for
 * Q4_1/Q5_1 the half-precision s = d * sum(qa) the format stores. */
Test(quant, dot_ref_matches_dequantized_dot) {
    const int64_t cols = 1024, rows = 64;
    float *w = normal_data((size_t)(rows * cols), 11), *a = normal_data((size_t)cols, 12);
    float *wd = malloc((size_t)cols * sizeof *wd), *ad = malloc((size_t)cols * sizeof *ad);
    for (size_t k = 0; k < N_COMPUTE; k++) {
        qtype t = compute_types[k], dt = qtype_get(t)->dot_type;
        uint64_t rb;
        cr_assert(qtype_row_bytes(t, (uint64_t)cols, &rb));
        uint8_t *wq = qalloc(t, rows * cols);
        void *aq = qalloc(dt, cols);
        quant_quantize_row_ref(t, w, wq, rows * cols);
        quant_quantize_row_ref(dt, a, aq, cols);
        quant_dequantize_row_ref(dt, aq, ad, cols);
        float got[64], want[64];
        for (int64_t r = 0; r < rows; r++) {
            quant_dequantize_row_ref(t, wq + r * rb, wd, cols);
            double s = 0;
            for (int64_t j = 0; j < cols; j++) s += (double)wd[j] * ad[j];
            want[r] = (float)s;
            got[r] = quant_dot_ref(t, cols, wq + r * rb, aq);
        }
        double bound = (t == QT_Q4_1 || t == QT_Q5_1) ? 1e-6 : 1e-11;
        double e = tu_nmse(got, want, (size_t)rows);
        cr_expect(e <= bound, "%s: nmse %.3e > %.1e", qtype_get(t)->name, e, bound);
        free(wq);
        free(aq);
    }
    free(w); free(a); free(wd); free(ad);
}

/* Hand-computed: one Q4_0 block times one Q8_0 block. */
Test(quant, dot_ref_hand_q4_0) {
    block_q4_0 w = {.d = 0x3800};    /* 0.5 */
    block_q8_0 a = {.d = 0x4000};    /* 2.0 */
    for (int j = 0; j < 16; j++) w.qs[j] = 0x9A; /* low 10 -> +2, high 9 -> +1 */
    for (int j = 0; j < 32; j++) a.qs[j] = (int8_t)(j - 16);
    /* sum_j<16 2 (j-16) + sum_j<16 1 (j) = 2 (120 - 256) + 120 = -152 */
    cr_expect_eq(quant_dot_ref(QT_Q4_0, 32, &w, &a), 0.5f * 2.0f * -152);
}
