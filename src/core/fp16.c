/* fp16.c — half precision conversions by bit manipulation (no FPU tricks). */
#include "core/fp16.h"

float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_fp16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t absu = u & 0x7fffffff;
    if (absu > 0x7f800000) return (uint16_t)(sign | 0x7e00);  /* NaN */
    if (absu >= 0x47800000) {                                 /* overflow -> inf */
        /* values that round below 65520 still fit */
        if (absu < 0x477ff000) goto normal;
        return (uint16_t)(sign | 0x7c00);
    }
    if (absu < 0x38800000) { /* subnormal or zero in half */
        if (absu < 0x33000000) return (uint16_t)sign; /* rounds to zero (<= 2^-25) */
        uint32_t e = absu >> 23;
        uint32_t m = (absu & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) - ... : bring to half subnormal */
        /* half subnormal value = m * 2^(e-150); unit = 2^-24 -> q = m >> (126 - e) */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
normal:;
    uint32_t e = (absu >> 23) - 127 + 15;
    uint32_t m = absu & 0x7fffff;
    uint32_t q = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++; /* may carry into exp: correct */
    return (uint16_t)(sign | q);
}
