/* IEEE half precision <-> float (float16 tensors in ONNX, TF.js and NumPy files). */
#ifndef SPARSEGRAIN_IO_HALF_H
#define SPARSEGRAIN_IO_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float sgi_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    const int exp = (h >> 10) & 31;
    const uint32_t man = h & 1023;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 5.9604644775390625e-8f;
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | (uint32_t)(exp - 15 + 127) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t sgi_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0); /* inf, nan */
    if (ax >= 0x477ff000u) return sign | 0x7c00;                                 /* overflow */
    if (ax < 0x38800000u) { /* subnormal or zero: round to nearest even at 2^-24 */
        float a;
        memcpy(&a, &ax, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    /* normal: round to nearest even on the 13 dropped bits */
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1);
    return sign | (uint16_t)((r - ((uint32_t)(127 - 15) << 23)) >> 13);
}

#endif
