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
 * a layer, slices the batch, runs the products (dense ones through wgemm, the
 * library's kernel for these short products over core/sgi_kv.h's vector, AVX-512
 * or AVX2, or OpenBLAS on other builds; or kernel-masked products) and the threads. Every product of a point is one
 * product over a slice of the batch; threads take whole slices (single-threaded
 * products in their own cache), and the weight gradient sums per thread are
 * added in thread order:
 * results depend on the thread count, never on timing. Checked against the
 * im2col kernels and the direct reference in tests/test_wino_train.c. */
#include "core/sgi.h"
#include "nn/ops.h"
#include "nn/wino.h"

/* SGI_KV: the library's own kernels for the products (wgemm, over kv) and the
 * transposes, AVX-512 or AVX2 with FMA; other builds call OpenBLAS */
#include "core/sgi_kv.h"

/* Floats the transformed input and output of one slice may take (per thread):
 * the GEMMs then read and write them from L2/L3 rather than memory. */
#define SLICE_FLOATS ((size_t)384 << 10)

static int g_wino_on = 1, g_tile = 0, g_fuse_bwd = 1, g_free_kept = 0;

void sgi_wino_train_enable(int on) { g_wino_on = on; }
void sgi_wino_train_fuse_backward(int on) { g_fuse_bwd = on; }
void sgi_wino_train_tile(int m) { g_tile = m == 2 || m == 4 ? m : 0; }
void sgi_wino_train_free_kept(int on) { g_free_kept = on; }
int sgi_kept_products_free(void) { return g_free_kept; }

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
 * im2col; docs/performance.md). With AVX2 (two permutations and two unpacks a
 * split, src/nn/wino_f4.c) the same rule: VGG-7's one-thread step 0.83 of its time
 * with F(2x2) on the 14x14 layers and im2col on the 7x7 one (AMD EPYC, an
 * x86-64-v3 build). Elsewhere its scalar phase splits and copies make the
 * transforms 1.5-3x F(2x2)'s: F(4x4) only on large outputs. */
#if defined(__AVX512F__) || defined(__AVX2__)
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

/* The weight gradient's transposed point of V (builds with wgemm). */
static size_t vt_len(const struct pass *p) {
#if SGI_KV
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

#if SGI_KV
/* The per-point products of a slice: C[m][n] (=, or += when beta) = A[m][k] B[k][n]
 * (rows lda, ldb, ldc apart), WR rows x 3 vectors of C in 3 WR registers (8 x 48
 * columns with AVX-512, 4 x 24 with AVX2: 24 or 12 accumulators), WR broadcasts of
 * A and 3 loads of B per 3 WR multiply-adds, the last vector of the last panel
 * through masked loads and stores, row tails by smaller blocks. Every entry is one
 * fused multiply-add chain in k order (then + C when beta): the same bits whatever
 * the slice, thread or vector width. On the shapes of VGG-7's layers (one thread,
 * AMD EPYC) 180-240 GFLOP/s with AVX-512, against 90-105 for OpenBLAS under the
 * machine's Haswell preset and 95-125 for the library's general kernel
 * (src/core/gemm.c, 6 x 32, whose last panel wastes more of these short rows); with
 * AVX2 85-115, where OpenBLAS's Haswell kernel ran them at about half its
 * large-matrix rate (short K = C_in, 16-256; it zeroes C and packs both operands
 * for each one); docs/performance.md. */
#ifdef __AVX512F__
#define WR 8
#else
#define WR 4
#endif
#define WN (3 * KW) /* a panel's columns */
KINL void wkern(const int MR, const int NV, const int BETA, const int TAIL, int k, const float *a,
                size_t lda, const float *b, size_t ldb, float *c, size_t ldc, kmask last) {
    kv acc[WR][3];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) acc[r][q] = kv_zero();
    for (int kk = 0; kk < k; kk++) {
        const float *bk = b + (size_t)kk * ldb;
        kv bv[3];
        for (int q = 0; q < NV; q++)
            bv[q] = TAIL && q == NV - 1 ? kv_maskz(last, bk + KW * q) : kv_loadu(bk + KW * q);
        for (int r = 0; r < MR; r++) {
            const kv av = kv_set1(a[(size_t)r * lda + kk]);
            for (int q = 0; q < NV; q++) acc[r][q] = kv_fmadd(av, bv[q], acc[r][q]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) {
            float *cr = c + (size_t)r * ldc + KW * q;
            kv z = acc[r][q];
            if (TAIL && q == NV - 1) {
                if (BETA) z = kv_add(z, kv_maskz(last, cr));
                kv_mstore(cr, last, z);
            } else {
                if (BETA) z = kv_add(z, kv_loadu(cr));
                kv_storeu(cr, z);
            }
        }
}

#define WK_NV(MR, BETA, TAIL)                                                          \
    switch (nv) {                                                                      \
    case 1: wkern(MR, 1, BETA, TAIL, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    case 2: wkern(MR, 2, BETA, TAIL, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    default: wkern(MR, 3, BETA, TAIL, k, ai, (size_t)lda, bj, (size_t)ldb, ci, (size_t)ldc, last); break; \
    }
#if WR == 8
#define WK_MR8(BETA, TAIL)                                                             \
    case 8: WK_NV(8, BETA, TAIL) break;                                                \
    case 7: WK_NV(7, BETA, TAIL) break;                                                \
    case 6: WK_NV(6, BETA, TAIL) break;                                                \
    case 5: WK_NV(5, BETA, TAIL) break;
#else
#define WK_MR8(BETA, TAIL)
#endif
#define WK_MR(BETA, TAIL)                                                              \
    switch (mi) {                                                                      \
    WK_MR8(BETA, TAIL)                                                                 \
    case 4: WK_NV(4, BETA, TAIL) break;                                                \
    case 3: WK_NV(3, BETA, TAIL) break;                                                \
    case 2: WK_NV(2, BETA, TAIL) break;                                                \
    default: WK_NV(1, BETA, TAIL) break;                                               \
    }

static void wgemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int beta,
                  float *c, int ldc) {
    for (int j = 0; j < n; j += WN) {
        const int nj = n - j < WN ? n - j : WN, nv = (nj + KW - 1) / KW, tail = nj % KW != 0;
        const kmask last = kv_below(tail ? nj % KW : KW);
        const float *bj = b + j;
        for (int i = 0; i < m; i += WR) {
            const int mi = m - i < WR ? m - i : WR;
            const float *ai = a + (size_t)i * lda;
            float *ci = c + (size_t)i * ldc + j;
            if (tail) {
                if (beta) {
                    WK_MR(1, 1)
                } else {
                    WK_MR(0, 1)
                }
            } else if (beta) {
                WK_MR(1, 0)
            } else {
                WK_MR(0, 0)
            }
        }
    }
}

#ifdef __AVX512F__
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
#else
/* t[j][i] = x[i][j] for an r x c matrix x with rows ld apart (t is c x r): 8 x 8
 * blocks in registers (unpack, shuffle, lane permute), the edges entry by entry. */
static void transpose(const float *restrict x, int r, int c, size_t ld, float *restrict t) {
    const int r8 = r / 8 * 8, c8 = c / 8 * 8;
    for (int i0 = 0; i0 < r8; i0 += 8)
        for (int j0 = 0; j0 < c8; j0 += 8) {
            __m256 a[8], b[8];
            for (int i = 0; i < 8; i++) a[i] = _mm256_loadu_ps(x + (size_t)(i0 + i) * ld + j0);
            for (int i = 0; i < 8; i += 2) {
                b[i] = _mm256_unpacklo_ps(a[i], a[i + 1]);
                b[i + 1] = _mm256_unpackhi_ps(a[i], a[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                a[i] = _mm256_shuffle_ps(b[i], b[i + 2], 0x44);
                a[i + 1] = _mm256_shuffle_ps(b[i], b[i + 2], 0xEE);
                a[i + 2] = _mm256_shuffle_ps(b[i + 1], b[i + 3], 0x44);
                a[i + 3] = _mm256_shuffle_ps(b[i + 1], b[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                b[i] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x20);
                b[i + 4] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x31);
            }
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(t + (size_t)(j0 + j) * r + i0, b[j]);
        }
    for (int i = 0; i < r; i++)
        for (int j = i < r8 ? c8 : 0; j < c; j++) t[(size_t)j * r + i] = x[(size_t)i * ld + j];
}
#endif
#endif

/* The kept share of the pairs up to which a kernel-masked weight gradient takes
 * sgi_kept_wgrad (src/nn/kept_mm.c). AVX-512, the weight-gradient products of VGG-7's four Winograd
 * layers on their one-thread slices (AMD EPYC Zen 5; docs/performance.md, "Tenth
 * pass"): at 0.3 kept 0.64-0.80 of the dense products' time (transpose and
 * wgemm), at 0.1 0.29-0.46, at 0.5 0.91-1.22. AVX2 (kept_mm.c's AVX2 kernels against
 * the AVX2 wgemm, bench/kernel_mask_bench.c): the kept pairs as fast or faster up to
 * 0.45 (the 28x28 layer's backward 9.7-10.3 ms against 11.1-11.4 with the dense
 * weight gradient), so always where the kernel path runs. */
#ifdef __AVX512F__
#define WGRAD_SPARSE_MAX 0.4
#else
#define WGRAD_SPARSE_MAX 1.0
#endif

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
                sgi_kept_mm(p->cout, T, u + (size_t)e * p->cout * p->cin, (size_t)p->cin, lp, li,
                            v + e * sgi_wino_pstride(p->cin, T), (size_t)ld,
                            mm + e * sgi_wino_pstride(p->cout, T), (size_t)ld);
        } else
#if SGI_KV
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
#if SGI_KV
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
                        sgi_kept_wgrad(g->k, T, dd + e * sgi_wino_pstride(g->k, T), (size_t)ld, kp->fp,
                                       kp->fi, v + e * sgi_wino_pstride(g->c, T), (size_t)ld,
                                       acc + (size_t)e * kp->fp[g->k]);
                } else {
#if SGI_KV
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
        sgi_kept_expand(pts, g->k, g->c, kp->fp, kp->fi, base + f.vlen + f.mlen);
    else if (kp) /* the pairs the mask removes: 0, as with sgi_kept_wgrad */
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
