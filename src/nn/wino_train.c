/* Dense 3x3 stride-1 convolutions for training through Winograd F(m x m, 3x3),
 * m = 2 or 4, all three passes, on channel-major activations X[C][N][H][W]:
 *   forward       y  = A^T [ (G w G^T) . (B^T x B) ] A          per m x m output tile
 *   input grad    dx = the forward of dy with the 180-degree turned, transposed
 *                      filters and padding 2 - pad (a full correlation)
 *   weight grad   dw = G^T [ sum over tiles (A dy A^T) . (B^T x B) ] G
 * The weight gradient is the forward's bilinear form read the other way: for
 * y_i = sum_r g_r x_(i+r) = A^T[(G g) . (B^T x)], sum_i d_i y_i = g . G^T[(A d) . (B^T x)],
 * so z_r = sum_i d_i x_(i+r) = G^T[(A d) . (B^T x)] (F(3, m) read as F(m, 3)'s
 * bilinear form). The sum over tiles runs in the transformed domain: (m + 2)^2
 * GEMMs K x C x tiles, one transform at the end. The transforms of each tile size
 * are in src/nn/wino_f2.c and src/nn/wino_f4.c; this file picks the tile size of
 * a layer, slices the batch, runs the products (dense ones through wgemm, an
 * AVX-512 kernel for these short products, or OpenBLAS without AVX-512; or
 * kernel-masked products) and the threads. Every product of a point is one
 * product over a slice of the batch; threads take whole slices (single-threaded
 * products in their own cache), and the weight gradient sums per thread are
 * added in thread order:
 * results depend on the thread count, never on timing. Checked against the
 * im2col kernels and the direct reference in tests/test_wino_train.c. */
#include "core/sgi.h"
#include "nn/ops.h"
#include "nn/wino.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* Floats the transformed input and output of one slice may take (per thread):
 * the GEMMs then read and write them from L2/L3 rather than memory. */
#define SLICE_FLOATS ((size_t)384 << 10)

static int g_wino_on = 1, g_tile = 0, g_fuse_bwd = 1, g_free_kept = 0;

void sgi_wino_train_enable(int on) { g_wino_on = on; }
void sgi_wino_train_fuse_backward(int on) { g_fuse_bwd = on; }
void sgi_wino_train_tile(int m) { g_tile = m == 2 || m == 4 ? m : 0; }
void sgi_wino_train_free_kept(int on) { g_free_kept = on; }

static int tile_of(const struct sg_conv_geom *g);

int sgi_wino_train_ok(const struct sg_conv_geom *g) {
    /* auto: not on small outputs, where F(2x2)'s tiles waste a large share (7x7:
     * 64 outputs computed for 49) and im2col is as fast (measured on VGG-7);
     * F(4x4) where the tile rule takes it */
    if (g_wino_on == 1 && g->q < 10 && tile_of(g) != 4) return 0;
    return sgi_wino_train_shape_ok(g);
}

int sgi_wino_train_shape_ok(const struct sg_conv_geom *g) {
    return g_wino_on && g->r == 3 && g->s == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && g->groups == 1 && g->pt <= 2 && g->pl <= 2 && g->p > 0 && g->q > 0 &&
           g->w <= 2048 && g->q <= 2048 && g->c >= 4;
}

/* The tile size of a layer: a fixed rule of its shape and of the instruction
 * set the library was built for (never a timing, so that the trained model does
 * not depend on the machine's load). F(4x4) needs 1.78x fewer products per
 * output than F(2x2); its transforms go plane by plane on 6x6 tiles, 16 tiles at
 * a time, and with AVX-512 (compress-stores, one-permutation phase splits) they
 * cost about F(2x2)'s, so F(4x4) wins from 7x7 up (VGG-7, batch 64, one thread,
 * AMD EPYC: 28x28 0.71 of F(2x2)'s time, 14x14 0.87-0.92, 7x7 0.99 and 0.89 of
 * im2col; docs/performance.md). Without AVX-512 its scalar phase splits and
 * copies make the transforms 1.5-3x F(2x2)'s: F(4x4) only on large outputs. */
#ifdef __AVX512F__
#define F4_MIN_SIDE 7
#else
#define F4_MIN_SIDE 20
#endif

static int tile_of(const struct sg_conv_geom *g) {
    if (g_tile) return g_tile;
    return g->p >= F4_MIN_SIDE && g->q >= F4_MIN_SIDE ? 4 : 2;
}

int sgi_wino_train_tile_of(const struct sg_conv_geom *g) { return tile_of(g); }

static const struct sgi_wino_tf *tf_of(const struct sg_conv_geom *g) {
    return tile_of(g) == 4 ? &sgi_wino_f4 : &sgi_wino_f2;
}

void sgi_wino_weights(const struct sgi_wino_tf *tf, const float *w, int k, int c, int dgrad,
                      float *u) {
    const int ko_n = dgrad ? c : k, ki_n = dgrad ? k : c;
    const size_t us = (size_t)ko_n * ki_n;
    if (tf->kernel16) {
        /* 16 kernels of one row ko at a time: their points are contiguous in u */
        const int pts = tf->a * tf->a;
#pragma omp parallel for schedule(static) if ((size_t)k * c > 4096)
        for (int ko = 0; ko < ko_n; ko++)
            for (int ki0 = 0; ki0 < ki_n; ki0 += 16) {
                const int nk = ki_n - ki0 < 16 ? ki_n - ki0 : 16;
                float f[9][16] __attribute__((aligned(64))), o[36][16] __attribute__((aligned(64)));
                for (int j = 0; j < 16; j++) {
                    const int ki = ki0 + (j < nk ? j : 0);
                    const float *g = dgrad ? w + ((size_t)ki * c + ko) * 9 : w + ((size_t)ko * c + ki) * 9;
                    for (int rs = 0; rs < 9; rs++) f[rs][j] = dgrad ? g[8 - rs] : g[rs];
                }
                tf->kernel16((const float(*)[16])f, o);
                for (int p = 0; p < pts; p++) {
                    float *up = u + (size_t)p * us + (size_t)ko * ki_n + ki0;
                    if (nk == 16) /* one vector move (the loop became a rep movs per point) */
                        memcpy(up, o[p], sizeof o[p]);
                    else
                        for (int j = 0; j < nk; j++) up[j] = o[p][j];
                }
            }
        return;
    }
#pragma omp parallel for schedule(static) if ((size_t)k * c > 4096)
    for (int ko = 0; ko < ko_n; ko++)
        for (int ki = 0; ki < ki_n; ki++) {
            const float *g = dgrad ? w + ((size_t)ki * c + ko) * 9 : w + ((size_t)ko * c + ki) * 9;
            float f[3][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) f[r][s] = dgrad ? g[(2 - r) * 3 + 2 - s] : g[r * 3 + s];
            tf->kernel(f, u + (size_t)ko * ki_n + ki, us);
        }
}

/* Images per slice for a transform over an output of op x oq with cin input and
 * cout output channels, at most n / threads (rounded up) so that every thread
 * gets work. */
static int slice_images(const struct sgi_wino_tf *tf, int n, int op, int oq, int cin, int cout,
                        int threads) {
    const size_t tiles = sgi_wino_tiles(op, oq, tf->m, tf->pad);
    const size_t per = (size_t)tf->a * tf->a * tiles * (size_t)(cin + cout);
    static size_t lim = 0;
    if (!lim) lim = getenv("SG_WSLICE") ? (size_t)atol(getenv("SG_WSLICE")) << 10 : SLICE_FLOATS;
    int nb = (int)(lim / (per ? per : 1));
    if (nb < 1) nb = 1;
    const int fair = (n + threads - 1) / threads;
    if (nb > fair) nb = fair;
    return nb;
}

int sgi_wino_train_slice_images(const struct sg_conv_geom *g, int threads) {
    return slice_images(tf_of(g), g->n, g->p, g->q, g->c, g->k, threads < 1 ? 1 : threads);
}

/* The slice layout of one transform-GEMM-transform pass. */
struct pass {
    const struct sgi_wino_tf *tf;
    int n, cin, cout, h, w, op, oq, pt, pl, nb, nslices;
    const int *imap, *omap; /* channel maps of input and output (NULL: identity) */
    size_t T, vlen, mlen; /* tiles of a full slice; floats of V and M per thread */
};

static struct pass pass_of(const struct sgi_wino_tf *tf, int n, int cin, int cout, int h, int w,
                           int op, int oq, int pt, int pl, int threads) {
    struct pass p = {tf, n, cin, cout, h, w, op, oq, pt, pl, 0, 0, NULL, NULL, 0, 0, 0};
    const size_t pts = (size_t)tf->a * tf->a;
    p.nb = slice_images(tf, n, op, oq, cin, cout, threads);
    p.nslices = (n + p.nb - 1) / p.nb;
    p.T = (size_t)p.nb * sgi_wino_tiles(op, oq, tf->m, tf->pad);
    p.vlen = sgi_round16(pts * sgi_wino_pstride(cin, p.T));
    p.mlen = sgi_round16(pts * sgi_wino_pstride(cout, p.T));
    return p;
}

static size_t kc_len(const struct sgi_wino_tf *tf, const struct sg_conv_geom *g) {
    return sgi_round16((size_t)tf->a * tf->a * g->k * g->c);
}

/* The weight gradient's transposed point of V (AVX-512 builds). */
static size_t vt_len(const struct pass *p) {
#ifdef __AVX512F__
    return sgi_round16((size_t)p->cin * p->T);
#else
    (void)p;
    return 0;
#endif
}

size_t sgi_wino_train_workspace(const struct sg_conv_geom *g, int threads) {
    if (threads < 1) threads = 1;
    const struct sgi_wino_tf *tf = tf_of(g);
    const struct pass f = pass_of(tf, g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    const struct pass d =
        pass_of(tf, g->n, g->k, g->c, g->p, g->q, g->h, g->w, 2 - g->pt, 2 - g->pl, threads);
    /* forward / input gradient: U, then per thread V and M; weight gradient: per
     * thread V, D (the dy tiles, as long as M) and a K x C sum of the points */
    size_t a = f.vlen + f.mlen, b = d.vlen + d.mlen, c = f.vlen + f.mlen + kc_len(tf, g) + vt_len(&f);
    size_t per = a > b ? a : b;
    if (c > per) per = c;
    return kc_len(tf, g) + (size_t)threads * per;
}

/* Sixteen floats as one unaligned vector (two on AVX2, one on AVX-512). */
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

static inline float hsum16(v16f a) {
#ifdef __AVX512F__
    __m512 r;
    memcpy(&r, &a, sizeof r);
    return _mm512_reduce_add_ps(r);
#else
    float s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
#endif
}

#ifdef __AVX512F__
/* The per-point products of a slice on AVX-512 builds: C[m][n] (=, or += when
 * beta) = A[m][k] B[k][n] (rows lda, ldb, ldc apart), 8 rows x 48 columns of C
 * in 24 registers, 8 broadcasts of A and 3 loads of B per 24 multiply-adds,
 * the last panel's columns masked, row tails by smaller blocks. Every entry is
 * one fused multiply-add chain in k order (then + C when beta): the same bits
 * whatever the slice or thread. On the shapes of VGG-7's layers (one thread, AMD
 * EPYC) 180-240 GFLOP/s, against 90-105 for OpenBLAS under the machine's
 * Haswell preset and 95-125 for the library's general kernel (src/core/gemm.c,
 * 6 x 32, whose last panel wastes more of these short rows); docs/performance.md. */
#define WINL static inline __attribute__((always_inline))
WINL void wkern(const int MR, const int NV, const int BETA, int k, const float *a, size_t lda,
                const float *b, size_t ldb, float *c, size_t ldc, __mmask16 last) {
    __m512 acc[8][3];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) acc[r][q] = _mm512_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        const float *bk = b + (size_t)kk * ldb;
        __m512 bv[3];
        for (int q = 0; q < NV; q++)
            bv[q] = q == NV - 1 ? _mm512_maskz_loadu_ps(last, bk + 16 * q) : _mm512_loadu_ps(bk + 16 * q);
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(a[(size_t)r * lda + kk]);
            for (int q = 0; q < NV; q++) acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) {
            float *cr = c + (size_t)r * ldc + 16 * q;
            const __mmask16 mk = q == NV - 1 ? last : (__mmask16)0xFFFF;
            __m512 z = acc[r][q];
            if (BETA) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(mk, cr));
            _mm512_mask_storeu_ps(cr, mk, z);
        }
}

#define WK_NV(MR, BETA)                                                                \
    switch (nv) {                                                                      \
    case 1: wkern(MR, 1, BETA, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    case 2: wkern(MR, 2, BETA, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    default: wkern(MR, 3, BETA, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    }
#define WK_MR(BETA)                                                                    \
    switch (mi) {                                                                      \
    case 8: WK_NV(8, BETA) break;                                                      \
    case 7: WK_NV(7, BETA) break;                                                      \
    case 6: WK_NV(6, BETA) break;                                                      \
    case 5: WK_NV(5, BETA) break;                                                      \
    case 4: WK_NV(4, BETA) break;                                                      \
    case 3: WK_NV(3, BETA) break;                                                      \
    case 2: WK_NV(2, BETA) break;                                                      \
    default: WK_NV(1, BETA) break;                                                     \
    }

static void wgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int beta,
                  float *c, int ldc) {
    for (int j = 0; j < n; j += 48) {
        const int nj = n - j < 48 ? n - j : 48, nv = (nj + 15) / 16;
        const __mmask16 last = nj % 16 ? (__mmask16)((1u << (nj % 16)) - 1) : (__mmask16)0xFFFF;
        const float *bj = b + j;
        for (int i = 0; i < m; i += 8) {
            const int mi = m - i < 8 ? m - i : 8;
            const float *ai = a + (size_t)i * lda;
            float *ci = c + (size_t)i * ldc + j;
            if (beta) {
                WK_MR(1)
            } else {
                WK_MR(0)
            }
        }
    }
}

/* t[j][i] = x[i][j] for an r x c matrix x with rows ld apart (t is c x r): 16 x 16
 * blocks in registers (unpack, shuffle, two lane shuffles), edges masked. */
static void transpose(const float *restrict x, int r, int c, size_t ld, float *restrict t) {
    for (int i0 = 0; i0 < r; i0 += 16)
        for (int j0 = 0; j0 < c; j0 += 16) {
            const int ni = r - i0 < 16 ? r - i0 : 16, nj = c - j0 < 16 ? c - j0 : 16;
            const __mmask16 mj = nj == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nj) - 1);
            const __mmask16 mi = ni == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ni) - 1);
            __m512 a[16], b[16];
            for (int i = 0; i < 16; i++)
                a[i] = i < ni ? _mm512_maskz_loadu_ps(mj, x + (size_t)(i0 + i) * ld + j0) : _mm512_setzero_ps();
            for (int i = 0; i < 16; i += 2) {
                b[i] = _mm512_unpacklo_ps(a[i], a[i + 1]);
                b[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
            }
            for (int i = 0; i < 16; i += 4) {
                a[i] = _mm512_shuffle_ps(b[i], b[i + 2], 0x44);
                a[i + 1] = _mm512_shuffle_ps(b[i], b[i + 2], 0xEE);
                a[i + 2] = _mm512_shuffle_ps(b[i + 1], b[i + 3], 0x44);
                a[i + 3] = _mm512_shuffle_ps(b[i + 1], b[i + 3], 0xEE);
            }
            for (int h = 0; h < 16; h += 8)
                for (int i = 0; i < 4; i++) {
                    b[h + i] = _mm512_shuffle_f32x4(a[h + i], a[h + i + 4], 0x88);
                    b[h + i + 4] = _mm512_shuffle_f32x4(a[h + i], a[h + i + 4], 0xDD);
                }
            for (int i = 0; i < 8; i++) {
                a[i] = _mm512_shuffle_f32x4(b[i], b[i + 8], 0x88);
                a[i + 8] = _mm512_shuffle_f32x4(b[i], b[i + 8], 0xDD);
            }
            for (int j = 0; j < nj; j++) _mm512_mask_storeu_ps(t + (size_t)(j0 + j) * r + i0, mi, a[j]);
        }
}
#endif

/* m[ko][T] = sum over the kept ki of ko (li[lp[ko]..lp[ko+1])) of u[ko][ki] v[ki][T]:
 * the kernel-masked product, one broadcast weight times 128 tiles held in 8
 * vectors (8 independent chains), then 16 tiles, then single tiles. */
#ifdef __AVX512F__
/* mk[0 .. 16 nv) (the last vector masked by `last`) = sum over the kept j of
 * uk[li[j]] v[li[j]][...]: nv independent chains of broadcast-multiply-adds. */
static inline __attribute__((always_inline)) void mm_block(const int nv, __mmask16 last,
                                                           const float *uk, const int32_t *li,
                                                           int32_t j0, int32_t j1,
                                                           const float *v, size_t ld, float *mk) {
    __m512 a[8];
#pragma GCC unroll 8
    for (int q = 0; q < nv; q++) a[q] = _mm512_setzero_ps();
    for (int32_t j = j0; j < j1; j++) {
        const __m512 w = _mm512_set1_ps(uk[li[j]]);
        const float *vr = v + (size_t)li[j] * ld;
#pragma GCC unroll 8
        for (int q = 0; q < nv - 1; q++) a[q] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + 16 * q), a[q]);
        a[nv - 1] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(last, vr + 16 * (nv - 1)), a[nv - 1]);
    }
#pragma GCC unroll 8
    for (int q = 0; q < nv - 1; q++) _mm512_storeu_ps(mk + 16 * q, a[q]);
    _mm512_mask_storeu_ps(mk + 16 * (nv - 1), last, a[nv - 1]);
}
#endif

static void sparse_mm(int cout, int cin, int T, const float *u, const int32_t *lp,
                      const int32_t *li, const float *v, float *m) {
    const size_t ld = sgi_wino_ld((size_t)T); /* rows of v and m */
    for (int ko = 0; ko < cout; ko++) {
        const float *uk = u + (size_t)ko * cin;
        float *mk = m + (size_t)ko * ld;
        const int32_t j0 = lp[ko], j1 = lp[ko + 1];
#ifdef __AVX512F__
        /* blocks of up to 128 tiles, the last one's last vector masked: at least
         * as many chains as vectors, however short T is */
        for (int t = 0; t < T; t += 128) {
            const int left = T - t < 128 ? T - t : 128, nv = (left + 15) / 16;
            const __mmask16 last = (__mmask16)(left % 16 ? (1u << (left % 16)) - 1 : 0xFFFF);
            const float *vt = v + t;
            float *mt = mk + t;
            switch (nv) {
            case 1: mm_block(1, last, uk, li, j0, j1, vt, ld, mt); break;
            case 2: mm_block(2, last, uk, li, j0, j1, vt, ld, mt); break;
            case 3: mm_block(3, last, uk, li, j0, j1, vt, ld, mt); break;
            case 4: mm_block(4, last, uk, li, j0, j1, vt, ld, mt); break;
            case 5: mm_block(5, last, uk, li, j0, j1, vt, ld, mt); break;
            case 6: mm_block(6, last, uk, li, j0, j1, vt, ld, mt); break;
            case 7: mm_block(7, last, uk, li, j0, j1, vt, ld, mt); break;
            default: mm_block(8, last, uk, li, j0, j1, vt, ld, mt); break;
            }
        }
#else
        int t = 0;
        for (; t + 128 <= T; t += 128) {
            v16f a[8] = {0};
            for (int32_t j = j0; j < j1; j++) {
                const float w = uk[li[j]];
                const float *vr = v + (size_t)li[j] * ld + t;
                for (int q = 0; q < 8; q++) a[q] += w * *(const v16f *)(vr + 16 * q);
            }
            for (int q = 0; q < 8; q++) *(v16f *)(mk + t + 16 * q) = a[q];
        }
        for (; t + 16 <= T; t += 16) {
            v16f a = {0};
            for (int32_t j = j0; j < j1; j++)
                a += uk[li[j]] * *(const v16f *)(v + (size_t)li[j] * ld + t);
            *(v16f *)(mk + t) = a;
        }
        for (; t < T; t++) {
            float a = 0;
            for (int32_t j = j0; j < j1; j++) a += uk[li[j]] * v[(size_t)li[j] * ld + t];
            mk[t] = a;
        }
#endif
    }
}

/* A kernel-masked weight gradient: the kept pairs' sums over the slice's tiles,
 * acc[j] += sum over t of d[k][t] v[li[j]][t] for the kept j of every row k
 * (li[lp[k]..lp[k+1])), acc compact (the kept pairs in list order, per point);
 * expanded to K x C once the slices are summed (expand_kept). On AVX-512 builds
 * this runs only where few enough pairs are kept (WGRAD_SPARSE_MAX): the dense
 * products (wgemm, 180-240 GFLOP/s one thread) and zeroing are faster above it. */
#ifdef __AVX512F__
/* 8 vectors' horizontal sums as 8 floats: unpack-adds within 128-bit lanes, then
 * across them */
static inline __m256 hsum8x16(const __m512 *a) {
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

/* acc[0 .. np) += the sums of np (<= 8) kept pairs of one row dr: 8 chains (a
 * missing pair repeats the first one's channel, its sum dropped), one load of dr
 * per 8 multiply-adds, nfull blocks of 128 tiles then NVT vectors (the last
 * masked by `last`) */
WINL void wg_pairs(const int NVT, int nfull, int np, const float *dr, const float *v, size_t ld,
                   const int32_t *li, __mmask16 last, float *acc) {
    __m512 a[8];
    const float *vr[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps(), vr[i] = v + (size_t)li[i < np ? i : 0] * ld;
    for (int c = 0; c < nfull; c++) {
        for (int q = 0; q < 8; q++) {
            const __m512 d = _mm512_loadu_ps(dr + 16 * q);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) a[i] = _mm512_fmadd_ps(d, _mm512_loadu_ps(vr[i] + 16 * q), a[i]);
        }
        dr += 128;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) vr[i] += 128;
    }
    /* the last vector's loads masked on both sides: the rows' padding past T may
     * hold anything, and 0 times an infinity would be a NaN */
    for (int q = 0; q < NVT; q++) {
        const __mmask16 mq = q == NVT - 1 ? last : (__mmask16)0xFFFF;
        const __m512 d = _mm512_maskz_loadu_ps(mq, dr + 16 * q);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(mq, vr[i] + 16 * q), a[i]);
    }
    const __mmask8 mk = (__mmask8)((1u << np) - 1);
    _mm256_mask_storeu_ps(acc, mk, _mm256_add_ps(_mm256_maskz_loadu_ps(mk, acc), hsum8x16(a)));
}
#endif

static void sparse_wgrad(int k, int T, const float *d, const float *v, const int32_t *lp,
                         const int32_t *li, float *acc) {
    const size_t ld = sgi_wino_ld((size_t)T); /* rows of d and v */
#ifdef __AVX512F__
    const int nfull = (T - 1) / 128, tl = T - 128 * nfull, nvt = (tl + 15) / 16;
    const __mmask16 last = (__mmask16)(tl % 16 ? (1u << (tl % 16)) - 1 : 0xFFFF);
    for (int kk = 0; kk < k; kk++) {
        const float *dr = d + (size_t)kk * ld;
        for (int32_t j = lp[kk]; j < lp[kk + 1]; j += 8) {
            const int np = lp[kk + 1] - j < 8 ? lp[kk + 1] - j : 8;
            switch (nvt) {
            case 1: wg_pairs(1, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 2: wg_pairs(2, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 3: wg_pairs(3, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 4: wg_pairs(4, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 5: wg_pairs(5, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 6: wg_pairs(6, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            case 7: wg_pairs(7, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            default: wg_pairs(8, nfull, np, dr, v, ld, li + j, last, acc + j); break;
            }
        }
    }
#else
    for (int kk = 0; kk < k; kk++) {
        const float *dr = d + (size_t)kk * ld;
        for (int32_t j = lp[kk]; j < lp[kk + 1]; j++) {
            const float *vr = v + (size_t)li[j] * ld;
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

/* The kept share of the pairs up to which a kernel-masked weight gradient takes
 * sparse_wgrad. AVX-512, the weight-gradient products of VGG-7's four Winograd
 * layers on their one-thread slices (AMD EPYC Zen 5; docs/performance.md, "Tenth
 * pass"): at 0.3 kept 0.64-0.80 of the dense products' time (transpose and
 * wgemm), at 0.1 0.29-0.46, at 0.5 0.91-1.22. */
#ifdef __AVX512F__
#define WGRAD_SPARSE_MAX 0.4
#else
#define WGRAD_SPARSE_MAX 1.0
#endif

/* acc: pts points of n kept pairs each (list order) -> pts points of k x c
 * (the removed pairs 0), in place: from the end backwards, every entry lands at
 * or after where it was read from, past the entries still to be read. */
static void expand_kept(int pts, int k, int c, const int32_t *lp, const int32_t *li, float *acc) {
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

/* Slice sl of a pass: y[cout][images of sl][op][oq] (=, or += when accumulate) =
 * the Winograd correlation of those images of x[cin][n][h][w] with the
 * transformed filters u[points][cout][cin]; v and mm hold the slice's
 * transformed input and products. */
static void slice_pass(const struct pass *p, const float *x, const float *u, float *y,
                       int accumulate, const int32_t *lp, const int32_t *li, int sl, float *v,
                       float *mm) {
    const struct sgi_wino_tf *tf = p->tf;
    const int pts = tf->a * tf->a;
    const int n0 = sl * p->nb, nb = p->n - n0 < p->nb ? p->n - n0 : p->nb;
    const int T = nb * (int)sgi_wino_tiles(p->op, p->oq, tf->m, tf->pad), ld = (int)sgi_wino_ld(T);
    tf->input(x, p->imap, p->cin, p->n, p->h, p->w, n0, nb, p->op, p->oq, p->pt, p->pl, v);
    for (int e = 0; e < pts; e++)
        if (lp) {
            if (!g_free_kept)
                sparse_mm(p->cout, p->cin, T, u + (size_t)e * p->cout * p->cin, lp, li,
                          v + e * sgi_wino_pstride(p->cin, T), mm + e * sgi_wino_pstride(p->cout, T));
        } else
#ifdef __AVX512F__
            wgemm(p->cout, T, p->cin, u + (size_t)e * p->cout * p->cin, p->cin,
                  v + e * sgi_wino_pstride(p->cin, T), ld, 0, mm + e * sgi_wino_pstride(p->cout, T), ld);
#else
            sgi_sgemm(0, 0, p->cout, T, p->cin, 1.0f, u + (size_t)e * p->cout * p->cin, p->cin,
                      v + e * sgi_wino_pstride(p->cin, T), ld, 0.0f,
                      mm + e * sgi_wino_pstride(p->cout, T), ld);
#endif
    tf->output(mm, p->omap, p->cout, p->n, n0, nb, p->op, p->oq, accumulate, y);
}

/* One pass: y[cout][n][op][oq] (=, or += when accumulate) = the Winograd
 * correlation of x[cin][n][h][w] with the transformed filters u[points][cout][cin]. */
static void run_pass(const struct pass *p, const float *x, const float *u, float *y,
                     int accumulate, const int32_t *lp, const int32_t *li, float *ws,
                     int threads) {
    const size_t per = p->vlen + p->mlen;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int sl = 0; sl < p->nslices; sl++) {
        int t = 0, team = 1;
        sgi_omp_team(&t, &team);
        float *v = ws + (size_t)t * per;
        slice_pass(p, x, u, y, accumulate, lp, li, sl, v, v + p->vlen);
    }
}

void sgi_wino_train_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            float *y, float *ws, int threads) {
    sgi_wino_train_forward_kept(g, x, w, NULL, y, ws, threads);
}

void sgi_wino_train_forward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const struct sgi_kept *kp, float *y, float *ws, int threads) {
    sgi_wino_train_forward_map(g, NULL, NULL, x, w, kp, 0, y, ws, threads);
}

void sgi_wino_train_forward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                const float *x, const float *w, const struct sgi_kept *kp,
                                int accumulate, float *y, float *ws, int threads) {
    if (threads < 1) threads = 1;
    const struct sgi_wino_tf *tf = tf_of(g);
    struct pass p = pass_of(tf, g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    p.imap = cmap, p.omap = kmap;
    sgi_wino_weights(tf, w, g->k, g->c, 0, ws);
    run_pass(&p, x, ws, y, accumulate, kp ? kp->fp : NULL, kp ? kp->fi : NULL,
             ws + kc_len(tf, g), threads);
}

void sgi_wino_train_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *ws, int threads) {
    sgi_wino_train_backward_kept(g, x, w, NULL, dy, dx, 0, dw, ws, threads);
}

void sgi_wino_train_backward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                  const struct sgi_kept *kp, const float *dy, float *dx,
                                  int set_dx, float *dw, float *ws, int threads) {
    sgi_wino_train_backward_map(g, NULL, NULL, x, w, kp, dy, dx, set_dx, dw, ws, threads);
}

void sgi_wino_train_backward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                 const float *x, const float *w, const struct sgi_kept *kp,
                                 const float *dy, float *dx, int set_dx, float *dw, float *ws,
                                 int threads) {
    if (threads < 1) threads = 1;
    /* dx written (0 + v: the bits of adding to zeros) or added to; written only where
     * the pass covers every channel of dx */
    SG_ASSERT(!(set_dx && cmap));
    const int how = set_dx ? 2 : 1;
    /* weight gradient: per thread V (x tiles), D (dy tiles) and its sum of the points */
    const struct sgi_wino_tf *tf = tf_of(g);
    const int pts = tf->a * tf->a;
    const struct pass f =
        pass_of(tf, g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    /* input gradient: the forward of dy with turned filters */
    struct pass d =
        pass_of(tf, g->n, g->k, g->c, g->p, g->q, g->h, g->w, 2 - g->pt, 2 - g->pl, threads);
    d.imap = kmap, d.omap = cmap;
    /* Both gradients slice by slice when their slices coincide (the same images a
     * slice, the same tiles: a padding that keeps the size, as VGG's layers): the
     * input gradient's pass over a slice then reads dy right after the weight
     * gradient's dy transform did (from L2/L3, not memory), its transformed dy
     * goes into D's buffer and its products into V's (both dead by then). The
     * same products and transforms as the two passes one after the other:
     * the same bits. */
    const int fused = dx && g_fuse_bwd && d.nb == f.nb && d.T == f.T && d.vlen == f.mlen &&
                      d.mlen == f.vlen;
    const size_t kc = kc_len(tf, g), per = f.vlen + f.mlen + kc + vt_len(&f);
    float *base = ws + kc;
    if (fused) sgi_wino_weights(tf, w, g->k, g->c, 1, ws);
    const int32_t *blp = kp ? kp->bp : NULL, *bli = kp ? kp->bi : NULL;
    /* the weight gradient's sums: compact (the kept pairs only) or K x C a point */
    const int wsparse = kp && (double)kp->fp[g->k] <= WGRAD_SPARSE_MAX * g->k * g->c;
    const size_t alen = (size_t)pts * (wsparse ? (size_t)kp->fp[g->k] : (size_t)g->k * g->c);
    int used = 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, team = 1;
        sgi_omp_team(&t, &team);
#pragma omp single
        used = team;
        float *v = base + (size_t)t * per, *dd = v + f.vlen, *acc = dd + f.mlen;
#ifdef __AVX512F__
        float *vt = acc + kc;
#endif
        int first = 1;
#pragma omp for schedule(static)
        for (int sl = 0; sl < f.nslices; sl++) {
            const int n0 = sl * f.nb, nb = g->n - n0 < f.nb ? g->n - n0 : f.nb;
            const int T = nb * (int)sgi_wino_tiles(g->p, g->q, tf->m, tf->pad), ld = (int)sgi_wino_ld(T);
            tf->input(x, cmap, g->c, g->n, g->h, g->w, n0, nb, g->p, g->q, g->pt, g->pl, v);
            tf->grad(dy, kmap, g->k, g->n, g->p, g->q, n0, nb, dd);
            if (wsparse && first) memset(acc, 0, alen * sizeof *acc);
            for (int e = 0; e < pts; e++)
                if (wsparse) {
                    if (!g_free_kept)
                        sparse_wgrad(g->k, T, dd + e * sgi_wino_pstride(g->k, T), v + e * sgi_wino_pstride(g->c, T),
                                     kp->fp, kp->fi, acc + (size_t)e * kp->fp[g->k]);
                } else {
#ifdef __AVX512F__
                    /* D V^T as D (V^T): V's point transposed to [T][C] */
                    transpose(v + e * sgi_wino_pstride(g->c, T), g->c, T, (size_t)ld, vt);
                    wgemm(g->k, g->c, T, dd + e * sgi_wino_pstride(g->k, T), ld, vt, g->c, !first,
                          acc + (size_t)e * g->k * g->c, g->c);
#else
                    sgi_sgemm(0, 1, g->k, g->c, T, 1.0f, dd + e * sgi_wino_pstride(g->k, T), ld,
                              v + e * sgi_wino_pstride(g->c, T), ld, first ? 0.0f : 1.0f,
                              acc + (size_t)e * g->k * g->c, g->c);
#endif
                }
            first = 0;
            if (fused) slice_pass(&d, dy, ws, dx, how, blp, bli, sl, dd, v);
        }
        if (first) memset(acc, 0, alen * sizeof *acc);
    }
    /* the threads' sums in thread order, into the first one's */
    for (int t = 1; t < used; t++) {
        float *a0 = base + f.vlen + f.mlen;
        const float *at = base + (size_t)t * per + f.vlen + f.mlen;
        for (size_t i = 0; i < alen; i++) a0[i] += at[i];
    }
    if (wsparse)
        expand_kept(pts, g->k, g->c, kp->fp, kp->fi, base + f.vlen + f.mlen);
    else if (kp) /* the pairs the mask removes: 0, as with sparse_wgrad */
        for (int e = 0; e < pts; e++)
            for (int k = 0; k < g->k; k++) {
                float *row = base + f.vlen + f.mlen + ((size_t)e * g->k + k) * g->c;
                int c = 0;
                for (int32_t j = kp->fp[k]; j < kp->fp[k + 1]; j++, c++)
                    for (; c < kp->fi[j]; c++) row[c] = 0.0f;
                for (; c < g->c; c++) row[c] = 0.0f;
            }
    tf->weight_grad(base + f.vlen + f.mlen, g->k, g->c, dw);
    if (!dx || fused) return;
    sgi_wino_weights(tf, w, g->k, g->c, 1, ws);
    run_pass(&d, dy, ws, dx, how, blp, bli, ws + kc, threads);
}
