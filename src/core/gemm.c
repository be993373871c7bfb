/* The library's own single-precision GEMM for the small products of training
 * (convolution columns, fully connected layers): register-blocked kernels over the
 * machine's vector (core/sgi_kv.h: AVX-512, or AVX2 with FMA) that read A and B
 * where they lie (no packing). OpenBLAS runs the kernel family
 * the machine names in OPENBLAS_CORETYPE, which some machines preset to an AVX2
 * one (older OpenBLAS builds miscompute with their AVX-512 kernels); these kernels
 * are compiled for the CPU the library is built for (-march=native), so an AVX-512
 * machine multiplies at its AVX-512 rate whatever OpenBLAS was told. On an AVX2
 * machine OpenBLAS's kernel is the native rate, and the own kernels run only the
 * narrow products (OWN_NARROW below) and the live-feature ones (sgi_sgemm_own_ks),
 * which OpenBLAS cannot do without copies.
 *
 * op(A)·B directly; A·B^T (weight gradients) through a transposed copy of its
 * smaller side (a dot-product kernel over rows of A and B ran at 0.5-0.9x
 * OpenBLAS's AVX2 rate here). Every entry of C is one sum in a fixed order
 * whatever its position, the shapes and the thread count: the K products added in
 * order, k = 0, 1, ... (one fused multiply-add chain), then alpha and beta. So a
 * product split into slices or threads gives the same bits as the whole (on AVX2
 * builds, a narrow one), and the vector width changes no result. Builds without AVX2 and FMA run sgi_sgemm.
 *
 * Measured on the 2-core AMD EPYC (AVX-512; OpenBLAS preset to Haswell), one
 * thread, CPU time (docs/performance.md, "Own GEMM"): 153-184 GFLOP/s against
 * OpenBLAS's 85-100 on the shapes of ResNet-8's im2col layers, LeNet-5's conv2 and
 * fc1; 70-102 against 54-96 where B's rows are 4 or 8 KiB apart (they share L1 sets:
 * no packing). */
#include <math.h>

#include "sgi_kv.h"

#if SGI_KV
/* A panel's columns: two vectors a row (32 with AVX-512, 16 with AVX2). */
#define GP (2 * KW)

/* C[MR][GP columns] (=, +=) alpha * sum_k A[r][k] B[k][0..GP), A's entry (r, k) at
 * a[r * ars + k * acs], B's rows ldb apart: 2 MR accumulators, 2 loads of B and MR
 * broadcasts of A per 2 MR multiply-adds. m0, m1: the columns of the panel that
 * exist (all of them but in the last panel). The loops over the rows are unrolled
 * by pragma: at -O2 GCC left them rolled, the accumulators in memory, and the
 * products ran 2.5x slower (LeNet-5's conv2 at 47 GFLOP/s against 122). */
KINL void kern_nn(const int MR, const int full, int K, const int *ks, const float *a, size_t ars,
                  size_t acs, const float *b, size_t ldb, float *c, size_t ldc, kmask m0,
                  kmask m1, float alpha, float beta) {
    kv c0[6], c1[6];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = kv_zero();
    for (int kk = 0; kk < K; kk++) {
        const size_t k = ks ? (size_t)ks[kk] : (size_t)kk;
        const float *bk = b + k * ldb;
        const kv b0 = full ? kv_loadu(bk) : kv_maskz(m0, bk);
        const kv b1 = full ? kv_loadu(bk + KW) : kv_maskz(m1, bk + KW);
        const float *ak = a + k * acs;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const kv ar = kv_set1(ak[(size_t)r * ars]);
            c0[r] = kv_fmadd(ar, b0, c0[r]);
            c1[r] = kv_fmadd(ar, b1, c1[r]);
        }
    }
    const kv va = kv_set1(alpha), vb = kv_set1(beta);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        float *cr = c + (size_t)r * ldc;
        kv y0 = kv_mul(va, c0[r]), y1 = kv_mul(va, c1[r]);
        if (beta != 0.0f) {
            y0 = kv_fmadd(vb, full ? kv_loadu(cr) : kv_maskz(m0, cr), y0);
            y1 = kv_fmadd(vb, full ? kv_loadu(cr + KW) : kv_maskz(m1, cr + KW), y1);
        }
        if (full) {
            kv_storeu(cr, y0);
            kv_storeu(cr + KW, y1);
        } else {
            kv_mstore(cr, m0, y0);
            kv_mstore(cr + KW, m1, y1);
        }
    }
}

/* The same for a panel of at most KW columns (one vector a row): kern_nn on such a
 * panel would multiply a second, empty vector at every step. */
KINL void kern_n1(const int MR, int K, const int *ks, const float *a, size_t ars, size_t acs,
                  const float *b, size_t ldb, float *c, size_t ldc, kmask m0, float alpha,
                  float beta) {
    kv c0[12];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) c0[r] = kv_zero();
    for (int kk = 0; kk < K; kk++) {
        const size_t k = ks ? (size_t)ks[kk] : (size_t)kk;
        const kv b0 = kv_maskz(m0, b + k * ldb);
        const float *ak = a + k * acs;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) c0[r] = kv_fmadd(kv_set1(ak[(size_t)r * ars]), b0, c0[r]);
    }
    const kv va = kv_set1(alpha), vb = kv_set1(beta);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        float *cr = c + (size_t)r * ldc;
        kv y0 = kv_mul(va, c0[r]);
        if (beta != 0.0f) y0 = kv_fmadd(vb, kv_maskz(m0, cr), y0);
        kv_mstore(cr, m0, y0);
    }
}

KINL void gemm_n1_panel(int m, int k, const int *ks, float alpha, const float *a, size_t ars,
                        size_t acs, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                        int nj) {
    const kmask m0 = kv_below(nj);
    int i = 0;
    for (; i + 12 <= m; i += 12)
        kern_n1(12, k, ks, a + i * ars, ars, acs, b, ldb, c + (size_t)i * ldc, ldc, m0, alpha,
                beta);
    const float *ai = a + i * ars;
    float *ci = c + (size_t)i * ldc;
    switch (m - i) {
#define N1(R) case R: kern_n1(R, k, ks, ai, ars, acs, b, ldb, ci, ldc, m0, alpha, beta); break;
    N1(11) N1(10) N1(9) N1(8) N1(7) N1(6) N1(5) N1(4) N1(3) N1(2) N1(1)
#undef N1
    default: break;
    }
}

/* Column panel p (GP columns, fewer in the last) of C = alpha op(A) B + beta C; ks:
 * NULL, or the k of A's columns and B's rows to sum over (k of them, in order). */
KINL void gemm_panel(int m, int n, int k, const int *ks, float alpha, const float *a, size_t ars,
                     size_t acs, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                     int p) {
    const int j = p * GP, nj = n - j < GP ? n - j : GP, full = nj == GP;
    if (nj <= KW) {
        gemm_n1_panel(m, k, ks, alpha, a, ars, acs, b + j, ldb, beta, c + j, ldc, nj);
        return;
    }
    const kmask m0 = kv_below(nj), m1 = kv_below(nj - KW);
    const float *bj = b + j;
    float *cj = c + j;
    int i = 0;
    if (full)
        for (; i + 6 <= m; i += 6)
            kern_nn(6, 1, k, ks, a + i * ars, ars, acs, bj, ldb, cj + (size_t)i * ldc, ldc, m0,
                    m1, alpha, beta);
    for (; i + 6 <= m; i += 6)
        kern_nn(6, 0, k, ks, a + i * ars, ars, acs, bj, ldb, cj + (size_t)i * ldc, ldc, m0, m1,
                alpha, beta);
    const float *ai = a + i * ars;
    float *ci = cj + (size_t)i * ldc;
    switch (m - i) {
#define NN(R) case R: kern_nn(R, 0, k, ks, ai, ars, acs, bj, ldb, ci, ldc, m0, m1, alpha, beta); break;
    NN(5) NN(4) NN(3) NN(2) NN(1)
#undef NN
    default: break;
    }
}

static void gemm_nn_panel(int m, int n, int k, float alpha, const float *a, size_t ars,
                          size_t acs, const float *b, size_t ldb, float beta, float *c,
                          size_t ldc, int p) {
    gemm_panel(m, n, k, NULL, alpha, a, ars, acs, b, ldb, beta, c, ldc, p);
}

static void gemm_ks_panel(int m, int n, const int *ks, int nk, float alpha, const float *a,
                          size_t ars, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                          int p) {
    gemm_panel(m, n, nk, ks, alpha, a, ars, 1, b, ldb, beta, c, ldc, p);
}

/* t[j][i] = x[i][j] for an r x c matrix x with rows ld apart (t is c x r). */
static void transpose(const float *restrict x, int r, int c, size_t ld, float *restrict t) {
    for (int i0 = 0; i0 < r; i0 += 16)
        for (int j0 = 0; j0 < c; j0 += 16) {
            const int i1 = i0 + 16 < r ? i0 + 16 : r, j1 = j0 + 16 < c ? j0 + 16 : c;
            for (int i = i0; i < i1; i++)
                for (int j = j0; j < j1; j++) t[(size_t)j * r + i] = x[(size_t)i * ld + j];
        }
}

/* Threads share a product only when called outside a parallel region and the
 * product is large enough to pay for it; each entry of C is computed by one
 * thread in the same order either way. */
static int team(double flops) { return flops >= 4e6 ? sgi_region_threads() : 1; }
#endif

/* Without AVX-512 the own kernels take only products of at most this many columns
 * (fc layers: a batch): OpenBLAS's AVX2 kernel, which packs, is then the native rate,
 * and on wide products (convolution columns, thousands of columns) it is faster:
 * one thread of the AMD EPYC, AVX2 build, 500 x 4096 x 50 (LeNet-5's conv2 input
 * gradient) 58-61 GFLOP/s own against 97-101, 50 x 4096 x 500 64 against 82-85;
 * on fc1's shapes (500 x 64 x 800 and its transposes) a tie, 94-107 against 99-105. */
#define OWN_NARROW 256

void sgi_sgemm_own(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc) {
#if SGI_KV
    if (m <= 0 || n <= 0) return;
#ifndef __AVX512F__
    if (n > OWN_NARROW) {
        sgi_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float *cij = c + (size_t)i * ldc + j;
                *cij = beta != 0.0f ? beta * *cij : 0.0f;
            }
        return;
    }
    if (!trans_b) {
        const int nt = team(2.0 * m * n * k);
        const size_t ars = trans_a ? 1 : (size_t)lda, acs = trans_a ? (size_t)lda : 1;
        const int panels = (n + GP - 1) / GP;
        SGI_PAR_FOR(nt, for (int p = 0; p < panels; p++) gemm_nn_panel(
                            m, n, k, alpha, a, ars, acs, b, (size_t)ldb, beta, c, (size_t)ldc, p););
        return;
    }
    if (!trans_a) {
        /* A B^T as a product of the kind above: transpose B (n x k), or compute
         * C^T = B A^T with A transposed and transpose the result, whichever moves
         * fewer floats (conv weight gradients: the latter; fc ones: the former) */
        const double by_b = (double)n * k, by_c = (double)m * k + 2.0 * m * n;
        if (by_b <= by_c) {
            float *bt = malloc((size_t)n * k * sizeof *bt);
            if (bt) {
                transpose(b, n, k, (size_t)ldb, bt);
                sgi_sgemm_own(0, 0, m, n, k, alpha, a, lda, bt, n, beta, c, ldc);
                free(bt);
                return;
            }
        } else {
            float *at = malloc(((size_t)m * k + (size_t)m * n) * sizeof *at);
            if (at) {
                float *ct = at + (size_t)m * k;
                transpose(a, m, k, (size_t)lda, at);
                sgi_sgemm_own(0, 0, n, m, k, alpha, b, ldb, at, m, 0.0f, ct, m);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        float *cij = c + (size_t)i * ldc + j;
                        const float v = ct[(size_t)j * m + i];
                        *cij = beta != 0.0f ? fmaf(beta, *cij, v) : v; /* as the kernel */
                    }
                free(at);
                return;
            }
        }
    }
#endif
    sgi_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgi_sgemm_own_ks(int m, int n, const int *ks, int nk, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
#if SGI_KV
    if (nk > 0) {
        const int nt = team(2.0 * m * n * nk), panels = (n + GP - 1) / GP;
        SGI_PAR_FOR(nt, for (int p = 0; p < panels; p++) gemm_ks_panel(
                            m, n, ks, nk, alpha, a, (size_t)lda, b, (size_t)ldb, beta, c,
                            (size_t)ldc, p););
        return;
    }
#endif
    /* the same sums in the same order, one entry at a time */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int t = 0; t < nk; t++)
                acc = fmaf(a[(size_t)i * lda + ks[t]], b[(size_t)ks[t] * ldb + j], acc);
            float *cij = c + (size_t)i * ldc + j;
            const float y = alpha * acc;
            *cij = beta != 0.0f ? fmaf(beta, *cij, y) : y;
        }
}
