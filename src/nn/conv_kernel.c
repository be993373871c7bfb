/* Kernel-masked convolutions that skip the kernels the mask removes: a 3x3
 * stride-1 layer that runs through Winograd (nn/wino_train.c) multiplies, at
 * each of the 16 or 36 transform points, only the kept kernels: forward
 * M[k] = sum over kept c of U[k][c] V[c], input gradient the same with the
 * lists turned around, weight gradient only the kept (k, c) pairs' dot products
 * over the tiles. Other stride-1 layers (5x5, 7x7; AVX-512 builds) run in image lanes
 * on the kept kernels only (nn/conv_lanes.c); the rest (strided; AVX2 builds) keep their
 * im2col columns and multiply only the kept kernels' rows (nn/conv.c, nn/kept_mm.c). A
 * kernel is kept when any of its R*S mask entries is (vector and fine masks keep
 * most kernels and stay dense). The transforms, im2col and col2im are the dense
 * path's; only the products shrink. A layer that a filter or channel mask thins
 * (nn/conv_thin.c) takes these lists for its thinned layer too. The choice is by
 * a fixed share of kept kernels, not by timing, so that the same seed and thread
 * count give the same model on every run. Checked against the dense masked path
 * in tests/test_conv_kernel.c and tests/test_conv_thin.c. */
#include "core/sgi.h"
#include "nn/ops.h"

/* The Winograd layers' sparse products run at about half the dense products'
 * rate (one load per multiply-add against the AVX-512 product kernel of
 * wino_train.c; on AVX-512 builds the weight gradient takes the kept pairs only
 * up to 0.4 kept and runs dense above), so they pay below a share of kept
 * kernels. Measured on VGG-7's layers with bench/kernel_mask_bench.c (batch 64,
 * one thread, AMD EPYC; docs/performance.md): forward faster on every layer at
 * 0.45, slower on two at 0.6; backward faster or even at 0.3, slower on the 7x7
 * layer at 0.45 (and, with the kept-pair weight gradient, at 0.4: 3.16-4.58 ms
 * against 2.92-3.81). */
#define KEPT_MAX_FWD 0.5
#define KEPT_MAX_BWD 0.35
/* The im2col layers' kept kernels (strided layers; any on AVX2 builds) run channel by
 * channel as small dense products (kept_mm.c), near the dense product's rate: the same
 * benchmark (AMD EPYC Zen 5) gave LeNet-5's 5x5 layer through im2col faster both ways up
 * to 0.7 kept (0.9: a tie), a 3x3
 * stride-2 layer faster forward up to 0.7 and backward up to 0.3 (0.5: a tie; its
 * im2col and col2im are a larger share of 9 rows a kernel than of 25). */
#define KEPT_MAX_COLS_FWD 0.7
#define KEPT_MAX_COLS_BWD 0.7
#define KEPT_MAX_COLS_BWD_SMALL 0.35 /* kernels of fewer than 16 weights */
static double g_share_fwd = -1, g_share_bwd = -1; /* benchmarks and tests */

void sgi_conv_kernel_shares(double fwd, double bwd) { g_share_fwd = fwd, g_share_bwd = bwd; }

/* The largest kept share at which a pass of layer g takes the kernel path; 0
 * where no kernel path runs its shape. */
static double kept_max_of(const struct sg_conv_geom *g, int bwd) {
    const int wino = sgi_wino_train_shape_ok(g);
    if (!wino && !sgi_conv_kept_cols_ok(g)) return 0;
    if (bwd && g_share_bwd >= 0) return g_share_bwd;
    if (!bwd && g_share_fwd >= 0) return g_share_fwd;
    if (wino) return bwd ? KEPT_MAX_BWD : KEPT_MAX_FWD;
    /* image lanes: a removed kernel's products skipped at any share, with the bits of
     * the dense lanes pass (every sum starts at 0, and a product with a masked weight,
     * exactly 0, leaves it as it is; removed kernels' gradients 0) */
    if (sgi_conv_lanes_ok(g)) return 1.0;
    if (!bwd) return KEPT_MAX_COLS_FWD;
    return g->r * g->s >= 16 ? KEPT_MAX_COLS_BWD : KEPT_MAX_COLS_BWD_SMALL;
}

static int kernel_kept(const uint8_t *m, int rs) {
    for (int i = 0; i < rs; i++)
        if (m[i]) return 1;
    return 0;
}

/* The lists of layer g (K x C kernels of rs weights), kernel (k, c) being entry
 * (kk[k], cc[c]) of a mask of cfull channels (kk, cc NULL: k, c). */
static int lists_of(const struct sg_conv_geom *g, const uint8_t *mask, int cfull, const int *kk,
                    const int *cc, double kept_max, struct sgi_thin_buf *tb,
                    struct sgi_kept *kp) {
    const int K = g->k, C = g->c, rs = g->r * g->s;
#define MASK_AT(k, c) (mask + ((size_t)(kk ? kk[k] : (k)) * cfull + (size_t)(cc ? cc[c] : (c))) * rs)
    /* counted filter by filter, stopping once too many are kept (a thinned layer
     * with no kernel mask inside it: after kept_max of its filters) */
    const double most = kept_max * (double)K * C;
    size_t kept = 0;
    for (int k = 0; k < K && (double)kept <= most; k++)
        for (int c = 0; c < C; c++) kept += kernel_kept(MASK_AT(k, c), rs);
    if ((double)kept > most) return 0;
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
        for (int c = 0; c < C; c++)
            if (kernel_kept(MASK_AT(k, c), rs)) fi[j++] = c;
    }
#undef MASK_AT
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

int sgi_conv_kernel_lists(const struct sg_conv_geom *g, const uint8_t *mask, double kept_max,
                          struct sgi_thin_buf *tb, struct sgi_kept *kp) {
    return lists_of(g, mask, g->c, NULL, NULL, kept_max, tb, kp);
}

int sgi_conv_kernel_thin_lists(const struct sg_conv_geom *g, const struct sg_conv_geom *t,
                               const uint8_t *mask, const int *kk, const int *cc, int bwd,
                               struct sgi_thin_buf *tb, struct sgi_kept *kp) {
    const double mx = kept_max_of(t, bwd);
    return mx > 0 && lists_of(t, mask, g->c, kk, cc, mx, tb, kp);
}

/* The kept-kernel lists of a mask in tb->lists; 1 when the sparse path applies. */
static int plan(const struct sg_conv_geom *g, const uint8_t *mask, int bwd,
                struct sgi_thin_buf *tb, struct sgi_kept *kp) {
    if (!sgi_conv_thin_is_on() || !mask) return 0;
    const double mx = kept_max_of(g, bwd);
    return mx > 0 && sgi_conv_kernel_lists(g, mask, mx, tb, kp);
}

int sgi_conv_kernel_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            const uint8_t *mask, const float *b, float *y, float *ws,
                            int threads, struct sgi_thin_buf *tb) {
    struct sgi_kept kp;
    if (!plan(g, mask, 0, tb, &kp)) return 0;
    sgi_conv_forward_kept(g, x, w, &kp, b, y, ws, threads);
    return 1;
}

int sgi_conv_kernel_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const uint8_t *mask, const float *dy, float *dx, int set_dx,
                             float *dw, float *db, float *ws, int threads,
                             struct sgi_thin_buf *tb) {
    struct sgi_kept kp;
    if (!plan(g, mask, 1, tb, &kp)) return 0;
    sgi_conv_backward_kept(g, x, w, &kp, dy, dx, set_dx, dw, db, ws, threads);
    return 1;
}
