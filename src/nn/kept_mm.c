/* The kept-pair products of kernel-masked layers, shared by the Winograd passes
 * (src/nn/wino_train.c: at each transform point, a kept kernel is one weight of
 * the K x C point matrix) and the im2col passes (src/nn/conv.c: a kept kernel is
 * R*S consecutive rows of the C*R*S column matrix). A list pair (lp, li) names,
 * for each row r, the kept columns li[lp[r] .. lp[r+1]) in ascending order.
 *
 *   sgi_kept_mm      m[r][0..T) = sum over the kept j of u[r][li[j]] v[li[j]][0..T)
 *   sgi_kept_wgrad   acc[j] += sum over t < T of d[r][t] v[li[j]][t]  (compact: list order)
 *   sgi_kept_expand  the compact sums to full rows, removed pairs 0
 *
 * Every sum is one chain in list order (sgi_kept_mm) or in a fixed order of tile
 * blocks (sgi_kept_wgrad): the same bits whatever the thread. Checked against the
 * dense masked kernels in tests/test_conv_kernel.c. */
#include "core/sgi_kv.h"
#include "nn/ops.h"

/* SGI_KV: the vector kernels over kv (AVX-512, or AVX2 with FMA); other builds run
 * portable loops */

/* Sixteen floats as one unaligned vector (the portable kernels). */
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

#if SGI_KV
/* KG, KI: the block sizes of the im2col kernels (filters, rows), from the register count. */
#ifdef __AVX512F__
#define KG 8
#define KI 5
#else
#define KG 4
#define KI 3
#endif

/* mk[0 .. KW nv) (the last vector through masked loads and a masked store where
 * TAIL) = sum over the kept j of uk[li[j]] v[li[j]][...]: nv independent chains of
 * broadcast-multiply-adds. */
KINL void mm_block(const int nv, const int TAIL, kmask last, const float *uk, const int32_t *li,
                   int32_t j0, int32_t j1, const float *v, size_t ld, float *mk) {
    kv a[8];
#pragma GCC unroll 8
    for (int q = 0; q < nv; q++) a[q] = kv_zero();
    for (int32_t j = j0; j < j1; j++) {
        const kv w = kv_set1(uk[li[j]]);
        const float *vr = v + (size_t)li[j] * ld;
#pragma GCC unroll 8
        for (int q = 0; q < nv - 1; q++) a[q] = kv_fmadd(w, kv_loadu(vr + KW * q), a[q]);
        const float *vl = vr + KW * (nv - 1);
        a[nv - 1] = kv_fmadd(w, TAIL ? kv_maskz(last, vl) : kv_loadu(vl), a[nv - 1]);
    }
#pragma GCC unroll 8
    for (int q = 0; q < nv - 1; q++) kv_storeu(mk + KW * q, a[q]);
    if (TAIL)
        kv_mstore(mk + KW * (nv - 1), last, a[nv - 1]);
    else
        kv_storeu(mk + KW * (nv - 1), a[nv - 1]);
}
#endif

/* mk[0..T) = sum over j in [j0, j1) of uk[li[j]] v[li[j] ldv + 0..T) */
static void kept_row(int T, const float *uk, const int32_t *li, int32_t j0, int32_t j1,
                     const float *v, size_t ldv, float *mk) {
#if SGI_KV
    /* blocks of up to 8 vectors (128 tiles with AVX-512, 64 with AVX2), the last
     * one's last vector masked: at least as many chains as vectors, however short
     * T is */
    for (int t = 0; t < T; t += 8 * KW) {
        const int left = T - t < 8 * KW ? T - t : 8 * KW, nv = (left + KW - 1) / KW;
        const kmask last = kv_below(left % KW);
        const float *vt = v + t;
        float *mt = mk + t;
#define MB(NV) \
    case NV: \
        if (left % KW) \
            mm_block(NV, 1, last, uk, li, j0, j1, vt, ldv, mt); \
        else \
            mm_block(NV, 0, last, uk, li, j0, j1, vt, ldv, mt); \
        break;
        switch (nv) { MB(1) MB(2) MB(3) MB(4) MB(5) MB(6) MB(7) default: MB(8) }
#undef MB
    }
#else
    int t = 0;
    for (; t + 128 <= T; t += 128) {
        v16f a[8] = {0};
        for (int32_t j = j0; j < j1; j++) {
            const float w = uk[li[j]];
            const float *vr = v + (size_t)li[j] * ldv + t;
            for (int q = 0; q < 8; q++) a[q] += w * *(const v16f *)(vr + 16 * q);
        }
        for (int q = 0; q < 8; q++) *(v16f *)(mk + t + 16 * q) = a[q];
    }
    for (; t + 16 <= T; t += 16) {
        v16f a = {0};
        for (int32_t j = j0; j < j1; j++) a += uk[li[j]] * *(const v16f *)(v + (size_t)li[j] * ldv + t);
        *(v16f *)(mk + t) = a;
    }
    for (; t < T; t++) {
        float a = 0;
        for (int32_t j = j0; j < j1; j++) a += uk[li[j]] * v[(size_t)li[j] * ldv + t];
        mk[t] = a;
    }
#endif
}

void sgi_kept_mm(int rows, int T, const float *u, size_t ldu, const int32_t *lp,
                 const int32_t *li, const float *v, size_t ldv, float *m, size_t ldm) {
    for (int r = 0; r < rows; r++)
        kept_row(T, u + (size_t)r * ldu, li, lp[r], lp[r + 1], v, ldv, m + (size_t)r * ldm);
}

#if SGI_KV
#ifdef __AVX512F__
/* 8 vectors' horizontal sums as 8 floats: unpack-adds within 128-bit lanes, then
 * across them */
static inline __m256 hsum8(const kv *a) {
    __m512 t[4];
    for (int i = 0; i < 4; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    __m512 u[2]; /* lane L: the partial sums of 4 of the vectors */
    for (int i = 0; i < 2; i++) {
        const __m512d x = _mm512_castps_pd(t[2 * i]), y = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    const __m512 w = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88),
                                   _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
    const __m512 z = _mm512_add_ps(w, _mm512_shuffle_f32x4(w, w, 0xB1));
    return _mm512_castps512_ps256(_mm512_shuffle_f32x4(z, z, 0x08));
}

/* acc[0 .. np) += s[0 .. np) */
static inline void add8(float *acc, int np, __m256 s) {
    const __mmask8 mk = (__mmask8)((1u << np) - 1);
    _mm256_mask_storeu_ps(acc, mk, _mm256_add_ps(_mm256_maskz_loadu_ps(mk, acc), s));
}
#else
/* 8 vectors' horizontal sums as 8 floats: unpack-adds within 128-bit lanes, then
 * the two lanes added */
static inline __m256 hsum8(const kv *a) {
    __m256 t[4];
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    __m256 u[2]; /* per 128-bit lane: the partial sums of 4 of the vectors */
    for (int i = 0; i < 2; i++) {
        const __m256d x = _mm256_castps_pd(t[2 * i]), y = _mm256_castps_pd(t[2 * i + 1]);
        u[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

static inline void add8(float *acc, int np, __m256 s) {
    const __m256i mk = sgi_lanes8(np);
    _mm256_maskstore_ps(acc, mk, _mm256_add_ps(_mm256_maskload_ps(acc, mk), s));
}
#endif

/* acc[0 .. np) += the sums of np (<= 8) kept pairs of one row dr: 8 chains (a
 * missing pair repeats the first one's column, its sum dropped), one load of dr
 * per 8 multiply-adds, nfull blocks of 8 vectors then NVT vectors (the last
 * masked by `last`) */
KINL void wg_pairs(const int NVT, int nfull, int np, const float *dr, const float *v, size_t ldv,
                   const int32_t *li, kmask last, float *acc) {
    kv a[8];
    const float *vr[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = kv_zero(), vr[i] = v + (size_t)li[i < np ? i : 0] * ldv;
    for (int c = 0; c < nfull; c++) {
        for (int q = 0; q < 8; q++) {
            const kv d = kv_loadu(dr + KW * q);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) a[i] = kv_fmadd(d, kv_loadu(vr[i] + KW * q), a[i]);
        }
        dr += 8 * KW;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) vr[i] += 8 * KW;
    }
    /* the last vector's loads masked on both sides: the rows' padding past T may
     * hold anything, and 0 times an infinity would be a NaN */
    const kmask all = kv_below(KW);
    for (int q = 0; q < NVT; q++) {
        const kmask mq = q == NVT - 1 ? last : all;
        const kv d = kv_maskz(mq, dr + KW * q);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) a[i] = kv_fmadd(d, kv_maskz(mq, vr[i] + KW * q), a[i]);
    }
    add8(acc, np, hsum8(a));
}
#else
static inline float hsum16(v16f a) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
}
#endif

void sgi_kept_wgrad(int rows, int T, const float *d, size_t ldd, const int32_t *lp,
                    const int32_t *li, const float *v, size_t ldv, float *acc) {
    if (T <= 0) return;
#if SGI_KV
    const int nfull = (T - 1) / (8 * KW), tl = T - 8 * KW * nfull, nvt = (tl + KW - 1) / KW;
    const kmask last = kv_below(tl % KW ? tl % KW : KW);
    for (int kk = 0; kk < rows; kk++) {
        const float *dr = d + (size_t)kk * ldd;
        for (int32_t j = lp[kk]; j < lp[kk + 1]; j += 8) {
            const int np = lp[kk + 1] - j < 8 ? lp[kk + 1] - j : 8;
#define WG(NV) \
    case NV: wg_pairs(NV, nfull, np, dr, v, ldv, li + j, last, acc + j); break;
            switch (nvt) { WG(1) WG(2) WG(3) WG(4) WG(5) WG(6) WG(7) default: WG(8) }
#undef WG
        }
    }
#else
    for (int kk = 0; kk < rows; kk++) {
        const float *dr = d + (size_t)kk * ldd;
        for (int32_t j = lp[kk]; j < lp[kk + 1]; j++) {
            const float *vr = v + (size_t)li[j] * ldv;
            v16f a[4] = {0};
            int t = 0;
            for (; t + 64 <= T; t += 64)
                for (int q = 0; q < 4; q++)
                    a[q] += *(const v16f *)(dr + t + 16 * q) * *(const v16f *)(vr + t + 16 * q);
            for (; t + 16 <= T; t += 16) a[0] += *(const v16f *)(dr + t) * *(const v16f *)(vr + t);
            float s = hsum16((a[0] + a[1]) + (a[2] + a[3]));
            for (; t < T; t++) s += dr[t] * vr[t];
            acc[j] += s;
        }
    }
#endif
}

/* acc: pts points of n kept pairs each (list order) -> pts points of k x c
 * (the removed pairs 0), in place: from the end backwards, every entry lands at
 * or after where it was read from, past the entries still to be read. */
void sgi_kept_expand(int pts, int k, int c, const int32_t *lp, const int32_t *li, float *acc) {
    const int32_t n = lp[k];
    for (int e = pts - 1; e >= 0; e--) {
        const float *src = acc + (size_t)e * n;
        float *dst = acc + (size_t)e * k * c;
        for (int kk = k - 1; kk >= 0; kk--) {
            float *row = dst + (size_t)kk * c;
            int cc = c - 1;
            for (int32_t j = lp[kk + 1] - 1; j >= lp[kk]; j--) {
                for (; cc > li[j]; cc--) row[cc] = 0.0f;
                row[cc--] = src[j];
            }
            for (; cc >= 0; cc--) row[cc] = 0.0f;
        }
    }
}

/* ---- kernel masks on im2col columns (AVX-512 and AVX2 builds) ----
 * A kept kernel (k, c) is R*S consecutive rows of the C*R*S column matrix, so
 * the products go channel by channel, each a small dense product over the
 * filters that keep the channel (bi[bp[c] .. bp[c+1])): forward, KG filters x 3
 * vectors of columns in registers, R*S rows of the channel's columns (3 loads, KG
 * broadcasts per 3 KG multiply-adds, as the dense product kernel); input
 * gradient, KG rows of the channel's columns x 3 vectors over the kept filters'
 * dY rows; weight gradient, 3 filters x KI rows of sums over the slice's columns
 * (3 + KI loads per 3 KI multiply-adds). AVX-512: KG = 8, KI = 5 (24 and 15 of its
 * 32 registers); AVX2: KG = 4, KI = 3 (12 and 9 of 16). Every sum is in a fixed
 * order (channels, rows and filters ascending; the columns' lanes then one
 * reduction). */
#if SGI_KV
#define KCOLS (3 * KW) /* columns a block */

KINL kv ld_mask(const float *p, int q, int nv, kmask last) {
    return q == nv - 1 ? kv_maskz(last, p) : kv_loadu(p);
}

KINL void st_mask(float *p, kv v, int q, int nv, kmask last) {
    if (q == nv - 1)
        kv_mstore(p, last, v);
    else
        kv_storeu(p, v);
}

/* yk[g][0 .. KW NV) += sum over i < rs of wk[g][i] x[i ldx + ...], g < G */
KINL void cf_block(const int G, const int NV, int rs, const float *const *wk, const float *x,
                   size_t ldx, float *const *yk, kmask last) {
    kv a[KG][3];
#pragma GCC unroll 8
    for (int g = 0; g < G; g++)
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) a[g][q] = ld_mask(yk[g] + KW * q, q, NV, last);
    for (int i = 0; i < rs; i++) {
        const float *xr = x + (size_t)i * ldx;
        kv b[3];
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) b[q] = ld_mask(xr + KW * q, q, NV, last);
#pragma GCC unroll 8
        for (int g = 0; g < G; g++) {
            const kv w = kv_set1(wk[g][i]);
#pragma GCC unroll 3
            for (int q = 0; q < NV; q++) a[g][q] = kv_fmadd(w, b[q], a[g][q]);
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; g++)
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) st_mask(yk[g] + KW * q, a[g][q], q, NV, last);
}

/* dc[g ldc + 0 .. KW NV) = sum over j < n of w[kl[j] ldw + g] dy[kl[j] ldy + ...], g < G */
KINL void cd_block(const int G, const int NV, const float *w, size_t ldw, const int32_t *kl,
                   int32_t n, const float *dy, size_t ldy, float *dc, size_t ldc, kmask last) {
    kv a[KG][3];
#pragma GCC unroll 8
    for (int g = 0; g < G; g++)
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) a[g][q] = kv_zero();
    for (int32_t j = 0; j < n; j++) {
        const float *dr = dy + (size_t)kl[j] * ldy, *wr = w + (size_t)kl[j] * ldw;
        kv b[3];
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) b[q] = ld_mask(dr + KW * q, q, NV, last);
#pragma GCC unroll 8
        for (int g = 0; g < G; g++) {
            const kv v = kv_set1(wr[g]);
#pragma GCC unroll 3
            for (int q = 0; q < NV; q++) a[g][q] = kv_fmadd(v, b[q], a[g][q]);
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; g++)
#pragma GCC unroll 3
        for (int q = 0; q < NV; q++) st_mask(dc + (size_t)g * ldc + KW * q, a[g][q], q, NV, last);
}

#define CG_NV(BLOCK, G, ...)                                                            \
    switch (nv) {                                                                       \
    case 1: BLOCK(G, 1, __VA_ARGS__); break;                                            \
    case 2: BLOCK(G, 2, __VA_ARGS__); break;                                            \
    default: BLOCK(G, 3, __VA_ARGS__); break;                                           \
    }
#if KG == 8
#define CG_G(BLOCK, ...)                                                                \
    switch (gn) {                                                                       \
    case 1: CG_NV(BLOCK, 1, __VA_ARGS__) break;                                         \
    case 2: CG_NV(BLOCK, 2, __VA_ARGS__) break;                                         \
    case 3: CG_NV(BLOCK, 3, __VA_ARGS__) break;                                         \
    case 4: CG_NV(BLOCK, 4, __VA_ARGS__) break;                                         \
    case 5: CG_NV(BLOCK, 5, __VA_ARGS__) break;                                         \
    case 6: CG_NV(BLOCK, 6, __VA_ARGS__) break;                                         \
    case 7: CG_NV(BLOCK, 7, __VA_ARGS__) break;                                         \
    default: CG_NV(BLOCK, 8, __VA_ARGS__) break;                                        \
    }
#else
#define CG_G(BLOCK, ...)                                                                \
    switch (gn) {                                                                       \
    case 1: CG_NV(BLOCK, 1, __VA_ARGS__) break;                                         \
    case 2: CG_NV(BLOCK, 2, __VA_ARGS__) break;                                         \
    case 3: CG_NV(BLOCK, 3, __VA_ARGS__) break;                                         \
    default: CG_NV(BLOCK, 4, __VA_ARGS__) break;                                        \
    }
#endif

static inline kmask tail_mask(int left, int nv) { return kv_below(left - KW * (nv - 1)); }

void sgi_kept_cols_forward(int k, int c, int rs, int T, const float *w, const int32_t *bp,
                           const int32_t *bi, const float *col, float *y, size_t ldy) {
    const size_t crs = (size_t)c * rs;
    for (int kk = 0; kk < k; kk++) memset(y + (size_t)kk * ldy, 0, (size_t)T * sizeof *y);
    for (int t0 = 0; t0 < T; t0 += KCOLS) {
        const int left = T - t0 < KCOLS ? T - t0 : KCOLS, nv = (left + KW - 1) / KW;
        const kmask last = tail_mask(left, nv);
        for (int cc = 0; cc < c; cc++) {
            const float *x = col + (size_t)cc * rs * T + t0;
            for (int32_t j = bp[cc]; j < bp[cc + 1]; j += KG) {
                const int gn = bp[cc + 1] - j < KG ? bp[cc + 1] - j : KG;
                const float *wk[KG];
                float *yk[KG];
                for (int g = 0; g < gn; g++) {
                    wk[g] = w + (size_t)bi[j + g] * crs + (size_t)cc * rs;
                    yk[g] = y + (size_t)bi[j + g] * ldy + t0;
                }
#define CF(G, NV, ...) cf_block(G, NV, rs, wk, x, (size_t)T, yk, last)
                CG_G(CF, 0)
#undef CF
            }
        }
    }
}

void sgi_kept_cols_dgrad(int c, int rs, int T, const float *w, size_t ldw, const int32_t *bp,
                         const int32_t *bi, const float *dy, size_t ldy, float *dcol) {
    /* a channel's rows in groups of at most KG, as even as can be (9 by 8: 5 and 4) */
    const int step = (rs + (rs + KG - 1) / KG - 1) / ((rs + KG - 1) / KG);
    for (int t0 = 0; t0 < T; t0 += KCOLS) {
        const int left = T - t0 < KCOLS ? T - t0 : KCOLS, nv = (left + KW - 1) / KW;
        const kmask last = tail_mask(left, nv);
        for (int cc = 0; cc < c; cc++)
            for (int i0 = 0; i0 < rs; i0 += step) {
                const int gn = rs - i0 < step ? rs - i0 : step;
                const float *wc = w + (size_t)cc * rs + i0;
                float *dc = dcol + ((size_t)cc * rs + i0) * T + t0;
#define CD(G, NV, ...) cd_block(G, NV, wc, ldw, bi + bp[cc], bp[cc + 1] - bp[cc], dy + t0, ldy, dc, (size_t)T, last)
                CG_G(CD, 0)
#undef CD
            }
    }
}

/* dwk[g][i] += sum over t < T of dyk[g][t] x[i ldx + t], g < 3, i < KI (pointers
 * past gn or in repeat the first ones; their sums are dropped) */
static void cw_block(int T, int gn, int in, const float *const *dyk, const float *const *xk,
                     float *const *dwk) {
    kv a[3][KI];
#pragma GCC unroll 3
    for (int g = 0; g < 3; g++)
#pragma GCC unroll 5
        for (int i = 0; i < KI; i++) a[g][i] = kv_zero();
    int t = 0;
    for (; t + KW <= T; t += KW) {
        kv d[3], e[KI];
#pragma GCC unroll 3
        for (int g = 0; g < 3; g++) d[g] = kv_loadu(dyk[g] + t);
#pragma GCC unroll 5
        for (int i = 0; i < KI; i++) e[i] = kv_reg(kv_loadu(xk[i] + t)); /* one load, 3 uses */
#pragma GCC unroll 3
        for (int g = 0; g < 3; g++)
#pragma GCC unroll 5
            for (int i = 0; i < KI; i++) a[g][i] = kv_fmadd(d[g], e[i], a[g][i]);
    }
    if (t < T) { /* the last vector masked on both sides */
        const kmask m = kv_below(T - t);
        kv d[3], e[KI];
#pragma GCC unroll 3
        for (int g = 0; g < 3; g++) d[g] = kv_maskz(m, dyk[g] + t);
#pragma GCC unroll 5
        for (int i = 0; i < KI; i++) e[i] = kv_maskz(m, xk[i] + t);
#pragma GCC unroll 3
        for (int g = 0; g < 3; g++)
#pragma GCC unroll 5
            for (int i = 0; i < KI; i++) a[g][i] = kv_fmadd(d[g], e[i], a[g][i]);
    }
    for (int g = 0; g < gn; g++)
        for (int i = 0; i < in; i++) dwk[g][i] += kv_sum(a[g][i]);
}

void sgi_kept_cols_wgrad(int c, int rs, int T, const float *dy, size_t ldy, const int32_t *bp,
                         const int32_t *bi, const float *col, float *dw, size_t ldw) {
    for (int cc = 0; cc < c; cc++)
        for (int32_t j = bp[cc]; j < bp[cc + 1]; j += 3) {
            const int gn = bp[cc + 1] - j < 3 ? bp[cc + 1] - j : 3;
            const float *dyk[3];
            float *dwk[3];
            for (int g = 0; g < 3; g++) {
                const int32_t kk = bi[j + (g < gn ? g : 0)];
                dyk[g] = dy + (size_t)kk * ldy;
                dwk[g] = dw + (size_t)kk * ldw + (size_t)cc * rs;
            }
            for (int i0 = 0; i0 < rs; i0 += KI) {
                const int in = rs - i0 < KI ? rs - i0 : KI;
                const float *xk[KI];
                float *dwi[3];
                for (int i = 0; i < KI; i++) xk[i] = col + ((size_t)cc * rs + i0 + (i < in ? i : 0)) * T;
                for (int g = 0; g < 3; g++) dwi[g] = dwk[g] + i0;
                cw_block(T, gn, in, dyk, xk, dwi);
            }
        }
}
#endif
