/* Kernel-masked convolutions that skip the kernels the mask removes: a 3x3
 * stride-1 layer that runs through Winograd (nn/wino_train.c) multiplies, at
 * each of the 16 transform points, only the kept kernels: forward
 * M[k] = sum over kept c of U[k][c] V[c], input gradient the same with the
 * lists turned around, weight gradient only the kept (k, c) pairs' dot products
 * over the tiles. A kernel is kept when any of its 9 mask entries is (vector and
 * fine masks keep most kernels and stay dense). The transforms are the dense
 * path's; only the products shrink. The choice is by a fixed share of kept
 * kernels, not by timing, so that the same seed and thread count give the same
 * model on every run. Checked against the dense masked path in
 * tests/test_conv_kernel.c. */
#include "core/sgi.h"
#include "nn/ops.h"

/* The sparse products run at about half the dense products' rate (one load per
 * multiply-add against the AVX-512 product kernel of wino_train.c; on AVX-512
 * builds the weight gradient takes the kept pairs only up to 0.4 kept and runs
 * dense above), so they pay below a share of kept kernels. Measured on VGG-7's
 * layers with bench/kernel_mask_bench.c (batch 64, one thread, AMD EPYC;
 * docs/performance.md): forward faster on every layer at 0.45, slower on two at
 * 0.6; backward faster or even at 0.3, slower on the 7x7 layer at 0.45 (and, with
 * the kept-pair weight gradient, at 0.4: 3.16-4.58 ms against 2.92-3.81). */
#define KEPT_MAX_FWD 0.5
#define KEPT_MAX_BWD 0.35
static double g_max_fwd = KEPT_MAX_FWD, g_max_bwd = KEPT_MAX_BWD;

void sgi_conv_kernel_shares(double fwd, double bwd) {
    g_max_fwd = fwd >= 0 ? fwd : KEPT_MAX_FWD;
    g_max_bwd = bwd >= 0 ? bwd : KEPT_MAX_BWD;
}

int sgi_conv_kernel_lists(const struct sg_conv_geom *g, const uint8_t *mask, double kept_max,
                          struct sgi_thin_buf *tb, struct sgi_kept *kp) {
    const int K = g->k, C = g->c;
    size_t kept = 0;
    for (size_t i = 0; i < (size_t)K * C; i++) {
        const uint8_t *m9 = mask + i * 9;
        kept += (m9[0] | m9[1] | m9[2] | m9[3] | m9[4] | m9[5] | m9[6] | m9[7] | m9[8]) != 0;
    }
    if ((double)kept > kept_max * (double)K * C) return 0;
    const size_t need = 2 * kept + (size_t)K + C + 2;
    if (need > tb->lists_cap) {
        int32_t *p = realloc(tb->lists, need * sizeof *p);
        if (!p) return 0;
        tb->lists = p;
        tb->lists_cap = need;
    }
    int32_t *fp = tb->lists, *fi = fp + K + 1, *bp = fi + kept, *bi = bp + C + 1;
    size_t j = 0;
    for (int k = 0; k < K; k++) {
        fp[k] = (int32_t)j;
        for (int c = 0; c < C; c++) {
            const uint8_t *m9 = mask + ((size_t)k * C + c) * 9;
            if (m9[0] | m9[1] | m9[2] | m9[3] | m9[4] | m9[5] | m9[6] | m9[7] | m9[8])
                fi[j++] = c;
        }
    }
    fp[K] = (int32_t)j;
    /* turned around: counts per channel, then positions, filters ascending */
    for (int c = 0; c <= C; c++) bp[c] = 0;
    for (size_t t = 0; t < kept; t++) bp[fi[t] + 1]++;
    for (int c = 0; c < C; c++) bp[c + 1] += bp[c];
    for (int k = 0; k < K; k++)
        for (int32_t t = fp[k]; t < fp[k + 1]; t++) bi[bp[fi[t]]++] = k;
    for (int c = C; c > 0; c--) bp[c] = bp[c - 1];
    bp[0] = 0;
    kp->fp = fp, kp->fi = fi, kp->bp = bp, kp->bi = bi;
    return 1;
}

/* The kept-kernel lists of a mask in tb->lists; 1 when the sparse path applies. */
static int plan(const struct sg_conv_geom *g, const uint8_t *mask, double kept_max,
                struct sgi_thin_buf *tb, struct sgi_kept *kp) {
    if (!sgi_conv_thin_is_on() || !mask || !sgi_wino_train_shape_ok(g)) return 0;
    return sgi_conv_kernel_lists(g, mask, kept_max, tb, kp);
}

int sgi_conv_kernel_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            const uint8_t *mask, const float *b, float *y, float *ws,
                            int threads, struct sgi_thin_buf *tb) {
    struct sgi_kept kp;
    if (!plan(g, mask, g_max_fwd, tb, &kp)) return 0;
    sgi_conv_forward_kept(g, x, w, &kp, b, y, ws, threads);
    return 1;
}

int sgi_conv_kernel_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const uint8_t *mask, const float *dy, float *dx, int set_dx,
                             float *dw, float *db, float *ws, int threads,
                             struct sgi_thin_buf *tb) {
    struct sgi_kept kp;
    if (!plan(g, mask, g_max_bwd, tb, &kp)) return 0;
    sgi_conv_backward_kept(g, x, w, &kp, dy, dx, set_dx, dw, db, ws, threads);
    return 1;
}
