/* quant.c — the GGUF type table and the scalar reference quantize /
 * dequantize / dot product of every type sluice computes with. These loops
 * are the ground truth for the SIMD kernels and shaders: keep them plain.
 *
 * Quantizers choose scales the way the GGUF ecosystem's reference quantizers
 * do (max-abs for the 32-element types, a weighted least-squares search over
 * candidate grids for the K-quants), so files we write are of comparable
 * quality; the bits need not match llama.cpp's, the layouts must. */
#include <math.h>
#include <string.h>
#include <strings.h>
#include "core/fp16.h"
#include "model/quant.h"

/* ---- type table ---------------------------------------------------------- */

#define T(id, nm, blk, bytes, comp, dot) [id] = {nm, blk, bytes, comp, dot}
static const qtype_info type_table[QT_COUNT] = {
    T(QT_F32, "F32", 1, 4, true, QT_F32),
    T(QT_F16, "F16", 1, 2, true, QT_F32),
    T(QT_Q4_0, "Q4_0", 32, 18, true, QT_Q8_0),
    T(QT_Q4_1, "Q4_1", 32, 20, true, QT_Q8_1),
    T(QT_Q5_0, "Q5_0", 32, 22, true, QT_Q8_0),
    T(QT_Q5_1, "Q5_1", 32, 24, true, QT_Q8_1),
    T(QT_Q8_0, "Q8_0", 32, 34, true, QT_Q8_0),
    T(QT_Q8_1, "Q8_1", 32, 36, false, QT_Q8_1),
    T(QT_Q2_K, "Q2_K", 256, 84, false, QT_Q8_K),
    T(QT_Q3_K, "Q3_K", 256, 110, false, QT_Q8_K),
    T(QT_Q4_K, "Q4_K", 256, 144, true, QT_Q8_K),
    T(QT_Q5_K, "Q5_K", 256, 176, true, QT_Q8_K),
    T(QT_Q6_K, "Q6_K", 256, 210, true, QT_Q8_K),
    T(QT_Q8_K, "Q8_K", 256, 292, false, QT_Q8_K),
    T(QT_IQ2_XXS, "IQ2_XXS", 256, 66, false, QT_Q8_K),
    T(QT_IQ2_XS, "IQ2_XS", 256, 74, false, QT_Q8_K),
    T(QT_IQ3_XXS, "IQ3_XXS", 256, 98, false, QT_Q8_K),
    T(QT_IQ1_S, "IQ1_S", 256, 50, false, QT_Q8_K),
    T(QT_IQ4_NL, "IQ4_NL", 32, 18, false, QT_Q8_0),
    T(QT_IQ3_S, "IQ3_S", 256, 110, false, QT_Q8_K),
    T(QT_IQ2_S, "IQ2_S", 256, 82, false, QT_Q8_K),
    T(QT_IQ4_XS, "IQ4_XS", 256, 136, false, QT_Q8_K),
    T(QT_I8, "I8", 1, 1, false, QT_F32),
    T(QT_I16, "I16", 1, 2, false, QT_F32),
    T(QT_I32, "I32", 1, 4, false, QT_F32),
    T(QT_I64, "I64", 1, 8, false, QT_F32),
    T(QT_F64, "F64", 1, 8, false, QT_F32),
    T(QT_IQ1_M, "IQ1_M", 256, 56, false, QT_Q8_K),
    T(QT_BF16, "BF16", 1, 2, true, QT_F32),
    T(QT_TQ1_0, "TQ1_0", 256, 54, false, QT_Q8_K),
    T(QT_TQ2_0, "TQ2_0", 256, 66, false, QT_Q8_K),
    T(QT_MXFP4, "MXFP4", 32, 17, false, QT_Q8_0),
    /* 4, 5 (old Q4_2/Q4_3) and 31-33, 36-38 (removed repacked types) stay
     * empty: unknown ids. dot_type of the types we do not compute is what
     * the GGUF ecosystem pairs them with (F32 for the integer types), for
     * information only. */
};
#undef T

const qtype_info *qtype_get(uint32_t id) {
    if (id >= QT_COUNT || !type_table[id].name) return NULL;
    return &type_table[id];
}

int qtype_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < QT_COUNT; i++)
        if (type_table[i].name && strcasecmp(type_table[i].name, name) == 0) return i;
    return -1;
}

bool qtype_row_bytes(qtype t, uint64_t n, uint64_t *bytes) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    if (!ti || n % ti->block) return false;
    uint64_t nb = n / ti->block;
    if (nb > UINT64_MAX / ti->block_bytes) return false;
    *bytes = nb * ti->block_bytes;
    return true;
}

/* ---- helpers ----------------------------------------------------------- */

/* Clamp to [lo, hi] (NaN gives lo), then round to nearest, ties to even, as
 * the SIMD converts do. Adding and removing 1.5 * 2^23 rounds any |x| < 2^22
 * in the current (default: nearest-even) mode without a libm call; the
 * compiler may not fold it away (no -ffast-math). */
static inline int qround(float x, int lo, int hi) {
    if (!(x >= (float)lo)) x = (float)lo;
    if (x > (float)hi) x = (float)hi;
    return (int)((x + 12582912.0f) - 12582912.0f);
}

/* The element of largest magnitude, sign kept (0 for an all-zero block). */
static float signed_absmax(const float *x, int n) {
    float amax = 0, v = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); v = x[i]; }
    return v;
}

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- 32-element types: quantize ------------------------------------------ */

/* Q8_0 / Q8_1 / Q8_K share this rule: d = max|x| / 127, q = round(x / d).
 * The fast activation quantizers reproduce it bit for bit. */
static void quantize_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)qround(x[j] * id, -127, 127);
    }
}

static void quantize_q8_1(const float *x, block_q8_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0 ? 1.f / d : 0.f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)qround(x[j] * id, -127, 127);
            sum += y[i].qs[j];
        }
        y[i].d = f32_to_fp16(d);
        y[i].s = f32_to_fp16((float)sum * fp16_to_f32(y[i].d));
    }
}

/* Symmetric 4/5-bit: the largest-magnitude element maps to the grid end
 * with more room (-8 / -16), so d = max / -8 (or -16), sign included. */
static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float d = signed_absmax(x, 32) / -8.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            int lo = qround(x[j] * id, -8, 7) + 8, hi = qround(x[j + 16] * id, -8, 7) + 8;
            y[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void quantize_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float d = signed_absmax(x, 32) / -16.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int lo = qround(x[j] * id, -16, 15) + 16, hi = qround(x[j + 16] * id, -16, 15) + 16;
            y[i].qs[j] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[i].qh[k] = (uint8_t)(qh >> 8 * k);
    }
}

/* Asymmetric 4/5-bit: x ~ min + d * q over the block's [min, max]. */
static void quantize_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < 32; j++) { lo = fminf(lo, x[j]); hi = fmaxf(hi, x[j]); }
        float d = (hi - lo) / 15.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(lo);
        for (int j = 0; j < 16; j++) {
            int a = qround((x[j] - lo) * id, 0, 15), b = qround((x[j + 16] - lo) * id, 0, 15);
            y[i].qs[j] = (uint8_t)(a | b << 4);
        }
    }
}

static void quantize_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < 32; j++) { lo = fminf(lo, x[j]); hi = fmaxf(hi, x[j]); }
        float d = (hi - lo) / 31.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = qround((x[j] - lo) * id, 0, 31), b = qround((x[j + 16] - lo) * id, 0, 31);
            y[i].qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
            qh |= (uint32_t)(a >> 4) << j | (uint32_t)(b >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[i].qh[k] = (uint8_t)(qh >> 8 * k);
    }
}

/* ---- K-quants: quantize -------------------------------------------------- */

/* Fits x[i] ~ scale * L[i] - mn (L in 0..nmax, mn >= 0) minimising the
 * weighted error sum w[i] (scale L[i] - mn - x[i])^2. Starts from the
 * [min(x, 0), max(x)] grid, then tries nstep + 1 stretched grids
 * (nmax + rmin + rdelta * k steps across the range); for each rounding it
 * solves the 2x2 least-squares problem for (scale, offset) and keeps the
 * best. Returns scale; *mn_out receives mn. */
static float fit_scale_min(const float *x, const float *w, int n, int nmax, float rmin,
                           float rdelta, int nstep, uint8_t *L, float *mn_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
    if (lo > 0) lo = 0;
    if (!(hi > lo) || !isfinite(hi - lo)) { memset(L, 0, (size_t)n); *mn_out = -lo; return 0; }
    float inv = nmax / (hi - lo), scale = 1 / inv, off = lo, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)qround(inv * (x[i] - lo), 0, nmax);
        float e = scale * L[i] + off - x[i];
        best += w[i] * e * e;
    }
    float sw = 0, sx = 0, sxx = 0; /* weighted sums that do not depend on L */
    for (int i = 0; i < n; i++) { sw += w[i]; sx += w[i] * x[i]; sxx += w[i] * x[i] * x[i]; }
    for (int k = 0; k <= nstep; k++) {
        float is = (rmin + rdelta * k + nmax) / (hi - lo);
        uint8_t T[32];
        float sl = 0, sll = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = qround(is * (x[i] - lo), 0, nmax);
            T[i] = (uint8_t)l;
            sl += w[i] * l; sll += w[i] * l * l; sxl += w[i] * x[i] * l;
        }
        float det = sw * sll - sl * sl;
        if (!(det > 0)) continue;
        float s = (sw * sxl - sx * sl) / det, o = (sll * sx - sl * sxl) / det;
        if (o > 0) { o = 0; s = sxl / sll; } /* the offset is stored as a min >= 0 */
        /* sum w (s l + o - x)^2, expanded into the sums above */
        float err = s * s * sll + 2 * s * o * sl - 2 * s * sxl + o * o * sw - 2 * o * sx + sxx;
        if (err < best) { best = err; scale = s; off = o; memcpy(L, T, (size_t)n); }
    }
    *mn_out = -off;
    return scale;
}

/* Fits x[i] ~ scale * L[i], L in -nmax..nmax-1, maximising the weighted
 * (w = x^2) fit over 19 grids around the one that maps the largest-magnitude
 * element to -nmax. Returns scale (0 for an all-zero group). */
static float fit_scale_sym(const float *x, int n, int nmax) {
    float vmax = signed_absmax(x, n);
    if (fabsf(vmax) < 1e-30f) return 0;
    float best_scale = 0, best = -1;
    for (int k = -9; k <= 9; k++) {
        float is = -(nmax + 0.1f * k) / vmax, sxl = 0, sll = 0;
        for (int i = 0; i < n; i++) {
            int l = qround(is * x[i], -nmax, nmax - 1);
            float w = x[i] * x[i];
            sxl += w * x[i] * l;
            sll += w * l * l;
        }
        /* error = sum w x^2 - sxl^2 / sll at the optimal scale sxl / sll */
        if (sll > 0 && (best < 0 || sxl * sxl > best * sll)) { best = sxl * sxl / sll; best_scale = sxl / sll; }
    }
    return best_scale;
}

/* Packs sub-block scales ls[8] and mins lm[8] (6-bit) into 12 bytes;
 * the inverse of quant_k_scales. */
static void pack_k_scales(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
    }
}

/* Shared Q4_K/Q5_K super-block quantizer: 8 sub-block fits, 6-bit scales
 * and mins relative to d / dmin, then L recomputed with the stored scales.
 * Outputs d, dmin (half bits), packed scales and L[256] in 0..nmax. */
static void quantize_k_super(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out,
                             uint16_t *dmin_out, uint8_t scales[12], uint8_t L[256]) {
    float sc[8], mn[8], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float s2 = 0, w[32];
        for (int i = 0; i < 32; i++) s2 += xs[i] * xs[i];
        float av = sqrtf(s2 / 32);
        for (int i = 0; i < 32; i++) w[i] = av + fabsf(xs[i]);
        sc[j] = fit_scale_min(xs, w, 32, nmax, rmin, 0.1f, nstep, L + 32 * j, &mn[j]);
        max_sc = fmaxf(max_sc, sc[j]);
        max_mn = fmaxf(max_mn, mn[j]);
    }
    float is = max_sc > 0 ? 63.f / max_sc : 0, im = max_mn > 0 ? 63.f / max_mn : 0;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)qround(is * sc[j], 0, 63);
        lm[j] = (uint8_t)qround(im * mn[j], 0, 63);
    }
    pack_k_scales(ls, lm, scales);
    *d_out = f32_to_fp16(max_sc / 63.f);
    *dmin_out = f32_to_fp16(max_mn / 63.f);
    float d = fp16_to_f32(*d_out), dmin = fp16_to_f32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        float ds = d * ls[j], dm = dmin * lm[j];
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = ds > 0 ? (uint8_t)qround((x[32 * j + i] + dm) / ds, 0, nmax) : 0;
    }
}

static void quantize_q4_K(const float *x, block_q4_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        uint8_t L[256];
        quantize_k_super(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

static void quantize_q5_K(const float *x, block_q5_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        uint8_t L[256];
        quantize_k_super(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = L[64 * c + l], b = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((a & 15) | (b & 15) << 4);
                y[i].qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (b >> 4) << (2 * c + 1));
            }
    }
}

static void quantize_q6_K(const float *x, block_q6_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float sc[16], vmax = 0;
        for (int g = 0; g < 16; g++) {
            sc[g] = fit_scale_sym(x + 16 * g, 16, 32);
            if (fabsf(sc[g]) > fabsf(vmax)) vmax = sc[g];
        }
        float is = vmax != 0 ? -128.f / vmax : 0;
        for (int g = 0; g < 16; g++) y[i].scales[g] = (int8_t)qround(is * sc[g], -128, 127);
        y[i].d = f32_to_fp16(is != 0 ? 1 / is : 0);
        float d = fp16_to_f32(y[i].d);
        uint8_t L[256];
        for (int g = 0; g < 16; g++) {
            float ds = d * y[i].scales[g];
            for (int k = 0; k < 16; k++)
                L[16 * g + k] = (uint8_t)(ds != 0 ? qround(x[16 * g + k] / ds, -32, 31) + 32 : 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
                y[i].ql[64 * h + 32 + l] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
                y[i].qh[32 * h + l] = (uint8_t)(q[0] >> 4 | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
            }
    }
}

static void quantize_q8_K(const float *x, block_q8_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0 ? 1.f / d : 0.f;
        y[i].d = d;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                y[i].qs[j] = (int8_t)qround(x[j] * id, -127, 127);
                s += y[i].qs[j];
            }
            y[i].bsums[g] = (int16_t)s;
        }
    }
}

void quant_quantize_row_ref(qtype t, const float *x, void *y, int64_t n) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    int64_t nb = ti ? n / ti->block : 0;
    switch (t) {
    case QT_F32: memmove(y, x, (size_t)n * sizeof(float)); break;
    case QT_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)y)[i] = f32_to_fp16(x[i]); break;
    case QT_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)y)[i] = f32_to_bf16(x[i]); break;
    case QT_Q4_0: quantize_q4_0(x, y, nb); break;
    case QT_Q4_1: quantize_q4_1(x, y, nb); break;
    case QT_Q5_0: quantize_q5_0(x, y, nb); break;
    case QT_Q5_1: quantize_q5_1(x, y, nb); break;
    case QT_Q8_0: quantize_q8_0(x, y, nb); break;
    case QT_Q8_1: quantize_q8_1(x, y, nb); break;
    case QT_Q4_K: quantize_q4_K(x, y, nb); break;
    case QT_Q5_K: quantize_q5_K(x, y, nb); break;
    case QT_Q6_K: quantize_q6_K(x, y, nb); break;
    case QT_Q8_K: quantize_q8_K(x, y, nb); break;
    default: break; /* not a quantizable type: caller checked qtype_info.compute */
    }
}

/* ---- unpacking: the one place that knows where each element's bits sit ---- */

/* The 32 unsigned nibbles of a Q4_x block in element order. */
static void unpack_nibbles(const uint8_t qs[16], uint8_t q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 15;
        q[j + 16] = qs[j] >> 4;
    }
}

/* The 32 5-bit values of a Q5_x block: nibble | bit j of qh << 4. */
static void unpack_q5(const uint8_t qs[16], const uint8_t qh[4], uint8_t q[32]) {
    uint32_t h = load_u32le(qh);
    unpack_nibbles(qs, q);
    for (int j = 0; j < 32; j++) q[j] |= (uint8_t)(((h >> j) & 1) << 4);
}

/* The 256 values (0..15 or 0..31) of a Q4_K / Q5_K block (qh NULL for Q4_K). */
static void unpack_qk(const uint8_t qs[128], const uint8_t *qh, uint8_t q[256]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = qs[32 * c + l] & 15;
            q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
            if (qh) {
                q[64 * c + l] |= (uint8_t)(((qh[l] >> (2 * c)) & 1) << 4);
                q[64 * c + 32 + l] |= (uint8_t)(((qh[l] >> (2 * c + 1)) & 1) << 4);
            }
        }
}

/* The 256 signed values (q - 32, -32..31) of a Q6_K block. */
static void unpack_q6_K(const block_q6_K *b, int8_t q[256]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *L = b->ql + 64 * h;
            uint8_t H = b->qh[32 * h + l];
            int8_t *o = q + 128 * h + l;
            o[0] = (int8_t)(((L[l] & 15) | (H & 3) << 4) - 32);
            o[32] = (int8_t)(((L[l + 32] & 15) | (H >> 2 & 3) << 4) - 32);
            o[64] = (int8_t)(((L[l] >> 4) | (H >> 4 & 3) << 4) - 32);
            o[96] = (int8_t)(((L[l + 32] >> 4) | (H >> 6 & 3) << 4) - 32);
        }
}

/* ---- dequantize ---------------------------------------------------------- */

void quant_dequantize_row_ref(qtype t, const void *x, float *y, int64_t n) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    int64_t nb = ti ? n / ti->block : 0;
    uint8_t q[256];
    int8_t s8[256];
    switch (t) {
    case QT_F32: memmove(y, x, (size_t)n * sizeof(float)); break;
    case QT_F16: for (int64_t i = 0; i < n; i++) y[i] = fp16_to_f32(((const uint16_t *)x)[i]); break;
    case QT_BF16: for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(((const uint16_t *)x)[i]); break;
    case QT_Q4_0:
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q4_0 *b = (const block_q4_0 *)x + i;
            float d = fp16_to_f32(b->d);
            unpack_nibbles(b->qs, q);
            for (int j = 0; j < 32; j++) y[j] = d * (q[j] - 8);
        }
        break;
    case QT_Q4_1:
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q4_1 *b = (const block_q4_1 *)x + i;
            float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
            unpack_nibbles(b->qs, q);
            for (int j = 0; j < 32; j++) y[j] = d * q[j] + m;
        }
        break;
    case QT_Q5_0:
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q5_0 *b = (const block_q5_0 *)x + i;
            float d = fp16_to_f32(b->d);
            unpack_q5(b->qs, b->qh, q);
            for (int j = 0; j < 32; j++) y[j] = d * (q[j] - 16);
        }
        break;
    case QT_Q5_1:
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q5_1 *b = (const block_q5_1 *)x + i;
            float d = fp16_to_f32(b->d), m = fp16_to_f32(b->m);
            unpack_q5(b->qs, b->qh, q);
            for (int j = 0; j < 32; j++) y[j] = d * q[j] + m;
        }
        break;
    case QT_Q8_0:
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q8_0 *b = (const block_q8_0 *)x + i;
            float d = fp16_to_f32(b->d);
            for (int j = 0; j < 32; j++) y[j] = d * b->qs[j];
        }
        break;
    case QT_Q8_1: /* not a weight type, but handy for tests */
        for (int64_t i = 0; i < nb; i++, y += 32) {
            const block_q8_1 *b = (const block_q8_1 *)x + i;
            float d = fp16_to_f32(b->d);
            for (int j = 0; j < 32; j++) y[j] = d * b->qs[j];
        }
        break;
    case QT_Q4_K:
    case QT_Q5_K:
        for (int64_t i = 0; i < nb; i++, y += 256) {
            const block_q4_K *b4 = (const block_q4_K *)x + i;
            const block_q5_K *b5 = (const block_q5_K *)x + i;
            bool five = t == QT_Q5_K;
            uint8_t sc[8], mn[8];
            quant_k_scales(five ? b5->scales : b4->scales, sc, mn);
            unpack_qk(five ? b5->qs : b4->qs, five ? b5->qh : NULL, q);
            float d = fp16_to_f32(five ? b5->d : b4->d), dmin = fp16_to_f32(five ? b5->dmin : b4->dmin);
            for (int e = 0; e < 256; e++) y[e] = d * sc[e / 32] * q[e] - dmin * mn[e / 32];
        }
        break;
    case QT_Q6_K:
        for (int64_t i = 0; i < nb; i++, y += 256) {
            const block_q6_K *b = (const block_q6_K *)x + i;
            float d = fp16_to_f32(b->d);
            unpack_q6_K(b, s8);
            for (int e = 0; e < 256; e++) y[e] = d * b->scales[e / 16] * s8[e];
        }
        break;
    case QT_Q8_K: /* not a weight type, but handy for tests */
        for (int64_t i = 0; i < nb; i++, y += 256) {
            const block_q8_K *b = (const block_q8_K *)x + i;
            for (int j = 0; j < 256; j++) y[j] = b->d * b->qs[j];
        }
        break;
    default: break;
    }
}

/* ---- reference dot products ---------------------------------------------- */
/* Float types accumulate in double (the most accurate ground truth); block
 * types form exact integer block sums, then scale them in float block by
 * block, the way the SIMD kernels do. */

static int dot_i8_u8(const uint8_t *q, const int8_t *a, int n, int offset) {
    int s = 0;
    for (int j = 0; j < n; j++) s += (q[j] - offset) * a[j];
    return s;
}

static float dot_q4_0(int64_t nb, const block_q4_0 *w, const block_q8_0 *a) {
    float sum = 0;
    uint8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        unpack_nibbles(w[i].qs, q);
        int s = dot_i8_u8(q, a[i].qs, 32, 8);
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * (float)s;
    }
    return sum;
}

static float dot_q4_1(int64_t nb, const block_q4_1 *w, const block_q8_1 *a) {
    float sum = 0;
    uint8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        unpack_nibbles(w[i].qs, q);
        int s = dot_i8_u8(q, a[i].qs, 32, 0);
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * (float)s
             + fp16_to_f32(w[i].m) * fp16_to_f32(a[i].s);
    }
    return sum;
}

static float dot_q5_0(int64_t nb, const block_q5_0 *w, const block_q8_0 *a) {
    float sum = 0;
    uint8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        unpack_q5(w[i].qs, w[i].qh, q);
        int s = dot_i8_u8(q, a[i].qs, 32, 16);
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * (float)s;
    }
    return sum;
}

static float dot_q5_1(int64_t nb, const block_q5_1 *w, const block_q8_1 *a) {
    float sum = 0;
    uint8_t q[32];
    for (int64_t i = 0; i < nb; i++) {
        unpack_q5(w[i].qs, w[i].qh, q);
        int s = dot_i8_u8(q, a[i].qs, 32, 0);
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * (float)s
             + fp16_to_f32(w[i].m) * fp16_to_f32(a[i].s);
    }
    return sum;
}

static float dot_q8_0(int64_t nb, const block_q8_0 *w, const block_q8_0 *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        int s = 0;
        for (int j = 0; j < 32; j++) s += w[i].qs[j] * a[i].qs[j];
        sum += fp16_to_f32(w[i].d) * fp16_to_f32(a[i].d) * (float)s;
    }
    return sum;
}

/* Q4_K / Q5_K: per super-block sumi = sum_j sc[j] * (q . a over sub-block j)
 * and summ = sum_j mn[j] * (a's sum over sub-block j, from bsums). */
static float dot_qk(int64_t nb, const void *wv, bool five, const block_q8_K *a) {
    float sum = 0;
    uint8_t q[256];
    for (int64_t i = 0; i < nb; i++) {
        const block_q4_K *b4 = (const block_q4_K *)wv + i;
        const block_q5_K *b5 = (const block_q5_K *)wv + i;
        uint8_t sc[8], mn[8];
        quant_k_scales(five ? b5->scales : b4->scales, sc, mn);
        unpack_qk(five ? b5->qs : b4->qs, five ? b5->qh : NULL, q);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            sumi += sc[j] * dot_i8_u8(q + 32 * j, a[i].qs + 32 * j, 32, 0);
            summ += mn[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        float d = fp16_to_f32(five ? b5->d : b4->d), dmin = fp16_to_f32(five ? b5->dmin : b4->dmin);
        sum += a[i].d * (d * (float)sumi - dmin * (float)summ);
    }
    return sum;
}

static float dot_q6_K(int64_t nb, const block_q6_K *w, const block_q8_K *a) {
    float sum = 0;
    int8_t q[256];
    for (int64_t i = 0; i < nb; i++) {
        unpack_q6_K(&w[i], q);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int k = 16 * g; k < 16 * g + 16; k++) s += q[k] * a[i].qs[k];
            sumi += w[i].scales[g] * s;
        }
        sum += a[i].d * (fp16_to_f32(w[i].d) * (float)sumi);
    }
    return sum;
}

float quant_dot_ref(qtype t, int64_t n, const void *w, const void *a) {
    const qtype_info *ti = qtype_get((uint32_t)t);
    int64_t nb = ti ? n / ti->block : 0;
    const float *af = a;
    double acc = 0;
    switch (t) {
    case QT_F32:
        for (int64_t i = 0; i < n; i++) acc += (double)((const float *)w)[i] * af[i];
        return (float)acc;
    case QT_F16:
        for (int64_t i = 0; i < n; i++) acc += (double)fp16_to_f32(((const uint16_t *)w)[i]) * af[i];
        return (float)acc;
    case QT_BF16:
        for (int64_t i = 0; i < n; i++) acc += (double)bf16_to_f32(((const uint16_t *)w)[i]) * af[i];
        return (float)acc;
    case QT_Q4_0: return dot_q4_0(nb, w, a);
    case QT_Q4_1: return dot_q4_1(nb, w, a);
    case QT_Q5_0: return dot_q5_0(nb, w, a);
    case QT_Q5_1: return dot_q5_1(nb, w, a);
    case QT_Q8_0: return dot_q8_0(nb, w, a);
    case QT_Q4_K: return dot_qk(nb, w, false, a);
    case QT_Q5_K: return dot_qk(nb, w, true, a);
    case QT_Q6_K: return dot_q6_K(nb, w, a);
    default: return 0;
    }
}
