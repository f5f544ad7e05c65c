/* fp16.h — IEEE half and bfloat16 <-> float conversions (scalar, exact). */
#ifndef SLUICE_CORE_FP16_H
#define SLUICE_CORE_FP16_H
#include <stdint.h>
#include <string.h>

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f); /* round to nearest even; inf/nan kept */

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Round to nearest even; NaN stays a quiet NaN. */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
#endif
