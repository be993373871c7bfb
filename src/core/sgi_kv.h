/* One vector of the machine (kv: KW float lanes, 16 with AVX-512, 8 with AVX2 and
 * FMA) and a mask of its lanes (kmask), with the few operations the register-blocked
 * kernels take (src/nn/kept_mm.c, src/nn/wino_train.c). A kernel
 * written over kv is one code for both instruction sets; every lane gets the same
 * operations in the same order, so the width changes no result.
 * SGI_KV is 1 where the layer exists; other builds run those files' portable loops. */
#ifndef SGI_KV_H
#define SGI_KV_H

#include "core/sgi.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define SGI_KV 1
#define KINL static inline __attribute__((always_inline))
#ifdef __AVX512F__
typedef __m512 kv;
typedef __mmask16 kmask;
#define KW 16 /* lanes */
KINL kv kv_zero(void) { return _mm512_setzero_ps(); }
KINL kv kv_set1(float a) { return _mm512_set1_ps(a); }
KINL kv kv_fmadd(kv a, kv b, kv c) { return _mm512_fmadd_ps(a, b, c); }
KINL kv kv_mul(kv a, kv b) { return _mm512_mul_ps(a, b); }
KINL kv kv_add(kv a, kv b) { return _mm512_add_ps(a, b); }
KINL kv kv_loadu(const float *p) { return _mm512_loadu_ps(p); }
KINL void kv_storeu(float *p, kv v) { _mm512_storeu_ps(p, v); }
/* lanes m from p (nothing read elsewhere), 0 in the others */
KINL kv kv_maskz(kmask m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
/* lanes m of v to p (nothing written elsewhere) */
KINL void kv_mstore(float *p, kmask m, kv v) { _mm512_mask_storeu_ps(p, m, v); }
KINL float kv_sum(kv v) { return _mm512_reduce_add_ps(v); }
/* the first n lanes */
KINL kmask kv_below(int n) { return (kmask)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1); }
#else
typedef __m256 kv;
typedef __m256i kmask;
#define KW 8
KINL kv kv_zero(void) { return _mm256_setzero_ps(); }
KINL kv kv_set1(float a) { return _mm256_set1_ps(a); }
KINL kv kv_fmadd(kv a, kv b, kv c) { return _mm256_fmadd_ps(a, b, c); }
KINL kv kv_mul(kv a, kv b) { return _mm256_mul_ps(a, b); }
KINL kv kv_add(kv a, kv b) { return _mm256_add_ps(a, b); }
KINL kv kv_loadu(const float *p) { return _mm256_loadu_ps(p); }
KINL void kv_storeu(float *p, kv v) { _mm256_storeu_ps(p, v); }
KINL kv kv_maskz(kmask m, const float *p) { return _mm256_maskload_ps(p, m); }
KINL void kv_mstore(float *p, kmask m, kv v) { _mm256_maskstore_ps(p, m, v); }
KINL float kv_sum(kv v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
KINL kmask kv_below(int n) { return sgi_lanes8(n); }
#endif
/* v, held in a register: a vector loaded once and multiplied into several sums, which
 * GCC otherwise reloads from memory into each multiply-add (folded loads), leaving the
 * loop bound by loads (LeNet-5's first-layer weight gradient ran 1.5x slower so) */
KINL kv kv_reg(kv v) {
    __asm__("" : "+v"(v));
    return v;
}
#else
#define SGI_KV 0
#endif

#endif
