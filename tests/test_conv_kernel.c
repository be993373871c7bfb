/* Kernel-masked passes (src/nn/conv_kernel.c, the kept-pair products of
 * src/nn/kept_mm.c in the Winograd passes of src/nn/wino_train.c and the im2col
 * passes of src/nn/conv.c) against the dense kernels on the masked weights: forward,
 * input gradient (added to what dx holds), weight gradient (0 for dropped kernels)
 * and bias gradient, on tail shapes (tile counts that are not multiples of the
 * 16- and 128-tile blocks), paddings 0..2, batches 1..5, one and two threads, and
 * masks with empty filters and channels, with F(2x2) and F(4x4) tiles each, and
 * on a 7x7 layer that runs through im2col when dense; and on layers that run
 * through im2col (5x5, strided, 3x1, 1x1 stride 2; slices of one image). Whole training steps under kernel masks
 * are checked against the dense masked path in tests/test_conv_thin.c. */
#include <math.h>

#include "harness.h"
#include "nn/ops.h"
#include "nn/wino.h"

/* One layer: the kernel-masked passes against the dense ones on the masked weights. */
static void check_geom(struct sg_conv_geom g, double keep, int threads, uint64_t seed) {
    const int n = g.n, c = g.c, h = g.h, w = g.w, k = g.k, pad = g.pt, rs = g.r * g.s;
    sg_rng r;
    sg_rng_seed(&r, seed);
    const size_t nw = (size_t)k * c * rs, nx = (size_t)n * c * h * w, ny = (size_t)n * k * g.p * g.q;
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *dy = malloc(ny * 4), *b = malloc(k * 4);
    uint8_t *mk = malloc(nw);
    for (size_t i = 0; i < nx; i++) x[i] = sg_rng_normal(&r);
    for (size_t i = 0; i < ny; i++) dy[i] = sg_rng_normal(&r);
    for (int i = 0; i < k; i++) b[i] = sg_rng_normal(&r);
    for (size_t kc = 0; kc < (size_t)k * c; kc++) {
        /* filter 0 and channel 1 empty; a kept kernel keeps a few of its taps */
        const int kk = (int)(kc / c), cc = (int)(kc % c);
        const int on = kk != 0 && cc != 1 && sg_rng_uniform(&r) < keep;
        for (int t = 0; t < rs; t++) {
            mk[kc * rs + t] = on && (t % 4 != 3);
            wt[kc * rs + t] = mk[kc * rs + t] ? sg_rng_normal(&r) : 0.0f;
        }
    }
    float *y[2], *dx[2], *dw[2], *db[2];
    /* the workspace starts as NaN: no padding of a row may reach a result (a masked
     * load's zeros times a NaN would) */
    float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
    struct sgi_thin_buf tb = {0};
    for (int i = 0; i < 2; i++) {
        y[i] = malloc(ny * 4), dx[i] = malloc(nx * 4), dw[i] = malloc(nw * 4), db[i] = malloc(k * 4);
        for (size_t t = 0; t < nx; t++) dx[i][t] = 0.5f; /* backward adds to dx */
    }
    CHECK(sgi_conv_kernel_forward(&g, x, wt, mk, b, y[0], ws, threads, &tb));
    CHECK(sgi_conv_kernel_backward(&g, x, wt, mk, dy, dx[0], 0, dw[0], db[0], ws, threads, &tb));
    /* the two gradients in one slice loop or one pass after the other: the same bits */
    {
        float *dx2 = malloc(nx * 4), *dw2 = malloc(nw * 4), *db2 = malloc(k * 4);
        for (size_t t = 0; t < nx; t++) dx2[t] = 0.5f;
        sgi_wino_train_fuse_backward(0);
        CHECK(sgi_conv_kernel_backward(&g, x, wt, mk, dy, dx2, 0, dw2, db2, ws, threads, &tb));
        sgi_wino_train_fuse_backward(1);
        CHECK(memcmp(dx[0], dx2, nx * 4) == 0 && memcmp(dw[0], dw2, nw * 4) == 0);
        /* dx written (set_dx): every entry, the bits of adding to zeros */
        float *dz = calloc(nx, 4);
        CHECK(sgi_conv_kernel_backward(&g, x, wt, mk, dy, dz, 0, dw2, db2, ws, threads, &tb));
        for (size_t t = 0; t < nx; t++) dx2[t] = NAN;
        CHECK(sgi_conv_kernel_backward(&g, x, wt, mk, dy, dx2, 1, dw2, db2, ws, threads, &tb));
        CHECK(memcmp(dz, dx2, nx * 4) == 0);
        free(dz);
        free(dx2), free(dw2), free(db2);
    }
    sgi_conv_forward(&g, x, wt, b, y[1], ws, threads);
    sgi_conv_backward(&g, x, wt, dy, dx[1], dw[1], db[1], ws, threads);
    for (size_t t = 0; t < nw; t++) {
        const uint8_t *m0 = mk + (t - t % rs);
        int any = 0;
        for (int i = 0; i < rs; i++) any |= m0[i];
        if (!any) /* dropped kernel */
            CHECK(dw[0][t] == 0.0f);
        dw[0][t] *= mk[t], dw[1][t] *= mk[t];
    }
    CHECK_MSG(sgt_max_rel_err(y[0], y[1], ny) < 1e-5, "y %dx%dx%dx%d k %d %dx%d pad %d", n, c, h, w, k, g.r, g.s, pad);
    CHECK_MSG(sgt_max_rel_err(dx[0], dx[1], nx) < 1e-5, "dx %dx%dx%dx%d k %d %dx%d pad %d", n, c, h, w, k, g.r, g.s, pad);
    CHECK_MSG(sgt_max_rel_err(dw[0], dw[1], nw) < 1e-4, "dw %dx%dx%dx%d k %d %dx%d pad %d", n, c, h, w, k, g.r, g.s, pad);
    CHECK(sgt_max_rel_err(db[0], db[1], k) < 1e-6);
    sgi_thin_buf_free(&tb);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]), free(db[i]);
    free(x), free(wt), free(dy), free(b), free(mk), free(ws);
}

static void check_case1(int n, int c, int h, int w, int k, int pad, double keep, int threads,
                        uint64_t seed) {
    struct sg_conv_geom g = {n, c, h, w, k, 3, 3, 1, 1, pad, pad, pad, pad, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    if (sgi_wino_train_shape_ok(&g)) check_geom(g, keep, threads, seed);
}

static void check_case(int n, int c, int h, int w, int k, int pad, double keep, int threads,
                       uint64_t seed) {
    for (int m = 2; m <= 4; m += 2) {
        sgi_wino_train_tile(m);
        check_case1(n, c, h, w, k, pad, keep, threads, seed);
    }
    sgi_wino_train_tile(0);
}

SG_TEST(conv_kernel_masked_matches_dense) {
    uint64_t seed = 1;
    sgi_conv_kernel_shares(1.0, 1.0); /* the kernel path at every share kept */
    for (int threads = 1; threads <= 2; threads++)
        for (int pad = 0; pad <= 2; pad++) {
            check_case(1, 5, 12, 13, 7, pad, 0.3, threads, seed++);
            check_case(3, 8, 19, 11, 6, pad, 0.4, threads, seed++);
            check_case(5, 6, 14, 33, 9, pad, 0.2, threads, seed++); /* > 128 tiles a slice */
            check_case(2, 16, 30, 30, 4, pad, 0.0, threads, seed++); /* nothing kept */
            check_case(3, 8, 7, 7, 12, pad, 0.3, threads, seed++); /* im2col when dense */
            check_case(2, 12, 10, 10, 10, pad, 0.7, threads, seed++); /* dense shares too */
        }
    sgi_conv_kernel_shares(-1, -1);
}

/* Layers that run through im2col: the kept rows of the column matrix */
static void check_cols(int n, int c, int h, int w, int k, int r, int s, int stride, int pad,
                       double keep, int threads, uint64_t seed) {
    struct sg_conv_geom g = {n, c, h, w, k, r, s, stride, stride, pad, pad, pad, pad, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    CHECK(!sgi_wino_train_shape_ok(&g));
    if (sgi_conv_kept_cols_ok(&g)) /* AVX-512 builds */
        check_geom(g, keep, threads, seed);
}

SG_TEST(conv_kernel_masked_im2col_matches_dense) {
    uint64_t seed = 100;
    sgi_conv_kernel_shares(1.0, 1.0);
    for (int threads = 1; threads <= 2; threads++) {
        check_cols(3, 20, 12, 12, 50, 5, 5, 1, 0, 0.3, threads, seed++); /* LeNet-5's conv2 */
        check_cols(3, 20, 28, 28, 10, 5, 5, 1, 0, 0.3, threads, seed++); /* a slice an image */
        check_cols(2, 6, 13, 11, 7, 5, 5, 1, 2, 0.4, threads, seed++);
        check_cols(3, 8, 15, 15, 9, 3, 3, 2, 1, 0.3, threads, seed++); /* strided */
        check_cols(2, 5, 10, 9, 6, 3, 1, 1, 1, 0.5, threads, seed++);
        check_cols(2, 7, 9, 9, 5, 5, 5, 1, 1, 0.0, threads, seed++); /* nothing kept */
        check_cols(1, 9, 11, 11, 12, 5, 5, 1, 2, 0.8, threads, seed++);
        check_cols(3, 12, 14, 14, 10, 1, 1, 2, 0, 0.4, threads, seed++); /* ResNet's 1x1 shortcut */
    }
    sgi_conv_kernel_shares(-1, -1);
}

SG_TEST(conv_kernel_declines_dense_masks_and_other_shapes) {
    struct sgi_thin_buf tb = {0};
    struct sg_conv_geom g = {2, 8, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    const size_t nw = (size_t)g.k * g.c * 9;
    uint8_t *mk = malloc(nw);
    float *x = calloc((size_t)2 * 8 * 12 * 12, 4), *w = calloc(nw, 4), *y = malloc(2 * 4 * 144 * 4);
    float *ws = sgt_nan_floats(sgi_conv_workspace(&g, 1) + 16);
    for (size_t i = 0; i < nw; i++) mk[i] = (i % 9) == 4; /* one tap of every kernel */
    CHECK(!sgi_conv_kernel_forward(&g, x, w, mk, NULL, y, ws, 1, &tb));
    memset(mk, 0, nw);
    CHECK(sgi_conv_kernel_forward(&g, x, w, mk, NULL, y, ws, 1, &tb));
    sgi_conv_thin_enable(0);
    CHECK(!sgi_conv_kernel_forward(&g, x, w, mk, NULL, y, ws, 1, &tb));
    sgi_conv_thin_enable(1);
    g.r = g.s = 1, g.pt = g.pl = g.pb = g.pr = 0; /* 1x1: a kernel is one weight */
    CHECK_OK(sg_conv_geom_finish(&g));
    CHECK(!sgi_conv_kernel_forward(&g, x, w, mk, NULL, y, ws, 1, &tb));
    sgi_thin_buf_free(&tb);
    free(mk), free(x), free(w), free(y), free(ws);
}
