/* Winograd F(2x2,3x3) and F(4x4,3x3) training kernels (src/nn/wino_train.c,
 * wino_f2.c, wino_f4.c), each tile size forced in turn: forward, input
 * gradient and weight gradient against direct double-precision references on
 * channel-major data, on tail shapes (odd sizes), paddings 0-2 (asymmetric),
 * batches 1-5 and one or two threads; the same run twice is bit-identical. The
 * finite-difference checks of tests/test_ops.c (grad_conv, grad_bn, ...) run their
 * 3x3 stride-1 convolutions through this path too. */
#include <math.h>

#include "harness.h"
#include "nn/ops.h"
#include "nn/wino.h"
#include "sparsegrain/nn.h"

/* direct references, X[C][N][H][W] */
static void ref_all(const struct sg_conv_geom *g, const float *x, const float *w, const float *dy,
                    float *y, float *dx, float *dw) {
    const int N = g->n, C = g->c, H = g->h, W = g->w, K = g->k, P = g->p, Q = g->q;
    double *ax = calloc((size_t)C * N * H * W, sizeof *ax), *aw = calloc((size_t)K * C * 9, sizeof *aw);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    double acc = 0;
                    const double d = dy[(((size_t)k * N + n) * P + p) * Q + q];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < 3; r++) {
                            const int ih = p - g->pt + r;
                            if (ih < 0 || ih >= H) continue;
                            for (int s = 0; s < 3; s++) {
                                const int iw = q - g->pl + s;
                                if (iw < 0 || iw >= W) continue;
                                const size_t xi = (((size_t)c * N + n) * H + ih) * W + iw;
                                const size_t wi = (((size_t)k * C + c) * 3 + r) * 3 + s;
                                acc += (double)w[wi] * x[xi];
                                ax[xi] += (double)w[wi] * d;
                                aw[wi] += (double)x[xi] * d;
                            }
                        }
                    y[(((size_t)k * N + n) * P + p) * Q + q] = (float)acc;
                }
    for (size_t i = 0; i < (size_t)C * N * H * W; i++) dx[i] = (float)ax[i];
    for (size_t i = 0; i < (size_t)K * C * 9; i++) dw[i] = (float)aw[i];
    free(ax), free(aw);
}

static void fill(sg_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = sg_rng_normal(r);
}

/* Largest relative errors seen per tile size (SG_WINO_ERR=1 prints them). */
static double g_err[5][3];

/* F(4x4) multiplies by up to 8 (A^T) and 5 (B^T) and divides by 6 and 24 (G):
 * its float rounding is a few times F(2x2)'s */
static double tol_of(int m) { return m == 4 ? 1e-4 : 1e-5; }

static void check_case(struct sg_conv_geom g, int m, int threads, uint64_t seed) {
    CHECK_OK(sg_conv_geom_finish(&g));
    CHECK(sgi_wino_train_ok(&g));
    sgi_wino_train_tile(m);
    CHECK_EQ_INT(sgi_wino_train_tile_of(&g), m);
    sg_rng r;
    sg_rng_seed(&r, seed);
    const size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.k * g.p * g.q;
    const size_t nw = (size_t)g.k * g.c * 9;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
    float *ry = malloc(ny * 4), *rdx = malloc(nx * 4), *rdw = malloc(nw * 4);
    float *y2 = malloc(ny * 4), *dx2 = malloc(nx * 4), *dw2 = malloc(nw * 4);
    float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 1);
    fill(&r, x, nx), fill(&r, w, nw), fill(&r, dy, ny);
    ref_all(&g, x, w, dy, ry, rdx, rdw);
    for (int rep = 0; rep < 2; rep++) {
        float *yy = rep ? y2 : y, *dxx = rep ? dx2 : dx, *dww = rep ? dw2 : dw;
        sgi_conv_forward(&g, x, w, NULL, yy, ws, threads);
        /* the input gradient is added: start from 1 and take it off */
        for (size_t i = 0; i < nx; i++) dxx[i] = 1.0f;
        sgi_conv_backward(&g, x, w, dy, dxx, dww, NULL, ws, threads);
        for (size_t i = 0; i < nx; i++) dxx[i] -= 1.0f;
    }
    const double ey = sgt_max_rel_err(y, ry, ny), ex = sgt_max_rel_err(dx, rdx, nx);
    const double ew = sgt_max_rel_err(dw, rdw, nw);
    const double tol = tol_of(m);
    CHECK_MSG(ey < tol && ex < tol && ew < tol,
              "wino F(%dx%d) n%d c%d %dx%d k%d pads %d,%d,%d,%d threads %d: rel err y %g dx %g dw %g",
              m, m, g.n, g.c, g.h, g.w, g.k, g.pt, g.pl, g.pb, g.pr, threads, ey, ex, ew);
    if (ey > g_err[m][0]) g_err[m][0] = ey;
    if (ex > g_err[m][1]) g_err[m][1] = ex;
    if (ew > g_err[m][2]) g_err[m][2] = ew;
    CHECK(memcmp(y, y2, ny * 4) == 0 && memcmp(dx, dx2, nx * 4) == 0 && memcmp(dw, dw2, nw * 4) == 0);
    /* without an input gradient the weight gradient is the same */
    sgi_conv_backward(&g, x, w, dy, NULL, dw2, NULL, ws, threads);
    CHECK(memcmp(dw, dw2, nw * 4) == 0);
    /* the two gradients slice by slice in one loop (the default where the
     * passes slice alike) or one pass after the other: the same bits */
    sgi_wino_train_fuse_backward(0);
    for (size_t i = 0; i < nx; i++) dx2[i] = 1.0f;
    sgi_conv_backward(&g, x, w, dy, dx2, dw2, NULL, ws, threads);
    for (size_t i = 0; i < nx; i++) dx2[i] -= 1.0f;
    sgi_wino_train_fuse_backward(1);
    CHECK_MSG(memcmp(dx, dx2, nx * 4) == 0 && memcmp(dw, dw2, nw * 4) == 0,
              "fused backward F(%dx%d) n%d c%d %dx%d k%d threads %d", m, m, g.n, g.c, g.h, g.w,
              g.k, threads);
    /* dx written instead of added to (sgi_conv_backward_kept's set_dx): every entry, with the
     * bits of adding to zeros; fused and one pass after the other */
    float *dxz = malloc(nx * 4);
    for (int fuse = 1; fuse >= 0; fuse--) {
        sgi_wino_train_fuse_backward(fuse);
        memset(dxz, 0, nx * 4);
        sgi_conv_backward(&g, x, w, dy, dxz, dw, NULL, ws, threads);
        for (size_t i = 0; i < nx; i++) dx2[i] = NAN;
        sgi_conv_backward_kept(&g, x, w, NULL, dy, dx2, 1, dw2, NULL, ws, threads);
        CHECK_MSG(memcmp(dxz, dx2, nx * 4) == 0 && memcmp(dw, dw2, nw * 4) == 0,
                  "backward_set F(%dx%d) n%d c%d %dx%d k%d threads %d fused %d", m, m, g.n, g.c,
                  g.h, g.w, g.k, threads, fuse);
    }
    sgi_wino_train_fuse_backward(1);
    free(dxz);
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(ry), free(rdx), free(rdw);
    free(y2), free(dx2), free(dw2), free(ws);
    sgi_wino_train_tile(0);
}

SG_TEST(wino_train_matches_reference) {
    /* n c h w k r s sh sw pt pl pb pr dh dw groups */
    struct sg_conv_geom cases[] = {
        {2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {3, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* odd sizes: tail tiles */
        {1, 4, 5, 6, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* valid */
        {5, 4, 7, 7, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0},  /* pad 2 */
        {2, 5, 6, 9, 2, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1, 0, 0},  /* asymmetric */
        {4, 4, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 4, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* 1x1 image */
        {1, 7, 3, 3, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* one tile and a half */
        {3, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {1, 4, 13, 10, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* 4x4 tails 1 and 2 */
        {3, 4, 11, 15, 4, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* valid: 9x13, tails 1 */
        {1, 4, 7, 7, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},    /* 7x7: tail 3 */
        {2, 4, 2, 5, 3, 3, 3, 1, 1, 1, 2, 1, 0, 1, 1, 1, 0, 0},    /* one tile row */
        {1, 4, 700, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* several band chunks */
        {1, 4, 3, 2048, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, /* one band a chunk */
        {2, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, /* VGG-7's conv4 */
        {4, 4, 100, 30, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* chunks across images */
        {7, 4, 7, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},    /* images share blocks */
    };
    sgi_wino_train_enable(2); /* small outputs too */
    for (int m = 2; m <= 4; m += 2)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int t = 1; t <= 2; t++) check_case(cases[i], m, t, 100 + i);
    sgi_wino_train_enable(1);
    if (getenv("SG_WINO_ERR"))
        for (int m = 2; m <= 4; m += 2)
            fprintf(stderr, "F(%dx%d): largest rel err y %.3g dx %.3g dw %.3g\n", m, m,
                    g_err[m][0], g_err[m][1], g_err[m][2]);
}

SG_TEST(wino_train_equals_im2col_path) {
    /* the same layer through both paths of sgi_conv_*: equal within fp tolerance */
    struct sg_conv_geom g = {6, 8, 11, 10, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    sg_rng r;
    sg_rng_seed(&r, 3);
    const size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.k * g.p * g.q;
    const size_t nw = (size_t)g.k * g.c * 9;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), *b = malloc(g.k * 4);
    float *y[2], *dx[2], *dw[2], db[2][12];
    for (int i = 0; i < 2; i++) y[i] = malloc(ny * 4), dx[i] = calloc(nx, 4), dw[i] = malloc(nw * 4);
    fill(&r, x, nx), fill(&r, w, nw), fill(&r, dy, ny), fill(&r, b, g.k);
    for (int m = 2; m <= 4; m += 2) {
    sgi_wino_train_tile(m);
    for (int i = 0; i < 2; i++) {
        memset(dx[i], 0, nx * 4);
        sgi_wino_train_enable(i == 0 ? 2 : 0);
        float *ws = sgt_nan_floats(sgi_conv_workspace(&g, 2) + 1);
        sgi_conv_forward(&g, x, w, b, y[i], ws, 2);
        sgi_conv_backward(&g, x, w, dy, dx[i], dw[i], db[i], ws, 2);
        free(ws);
    }
    sgi_wino_train_enable(1);
    sgi_wino_train_tile(0);
    CHECK(sgt_max_rel_err(y[0], y[1], ny) < tol_of(m));
    CHECK(sgt_max_rel_err(dx[0], dx[1], nx) < tol_of(m));
    CHECK(sgt_max_rel_err(dw[0], dw[1], nw) < tol_of(m));
    CHECK(sgt_max_rel_err(db[0], db[1], 12) < 1e-6);
    }
    /* the im2col path with dx written (set_dx: zeroed first) */
    sgi_wino_train_enable(0);
    float *ws = sgt_nan_floats(sgi_conv_workspace(&g, 2) + 1), *dxs = malloc(nx * 4);
    memset(dx[0], 0, nx * 4);
    sgi_conv_backward(&g, x, w, dy, dx[0], dw[0], NULL, ws, 2);
    for (size_t i = 0; i < nx; i++) dxs[i] = NAN;
    sgi_conv_backward_kept(&g, x, w, NULL, dy, dxs, 1, dw[1], NULL, ws, 2);
    sgi_wino_train_enable(1);
    CHECK(memcmp(dx[0], dxs, nx * 4) == 0 && memcmp(dw[0], dw[1], nw * 4) == 0);
    free(ws), free(dxs);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]);
    free(x), free(w), free(dy), free(b);
}

/* finite differences of L = sum(y . r) through the Winograd forward against its
 * input and weight gradients (dy = r), at sampled entries */
SG_TEST(wino_train_grad_finite_differences) {
    struct sg_conv_geom g = {2, 4, 12, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    CHECK(sgi_wino_train_ok(&g));
    sg_rng r;
    sg_rng_seed(&r, 9);
    const size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.k * g.p * g.q;
    const size_t nw = (size_t)g.k * g.c * 9;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), *y = malloc(ny * 4);
    float *dx = calloc(nx, 4), *dw = malloc(nw * 4);
    fill(&r, x, nx), fill(&r, w, nw), fill(&r, dy, ny);
    for (int m = 2; m <= 4; m += 2) {
    sgi_wino_train_tile(m);
    float *ws = sgt_nan_floats(sgi_conv_workspace(&g, 2) + 1);
    memset(dx, 0, nx * 4);
    sgi_conv_backward(&g, x, w, dy, dx, dw, NULL, ws, 2);
    for (int probe = 0; probe < 40; probe++) {
        const int on_w = probe & 1;
        float *v = on_w ? w : x;
        const size_t i = (size_t)(sg_rng_uniform(&r) * (on_w ? nw : nx)) % (on_w ? nw : nx);
        const float keep = v[i], eps = 1e-2f;
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            v[i] = keep + (sgn ? -eps : eps);
            sgi_conv_forward(&g, x, w, NULL, y, ws, 2);
            double acc = 0;
            for (size_t t = 0; t < ny; t++) acc += (double)y[t] * dy[t];
            l[sgn] = acc;
        }
        v[i] = keep;
        const double fd = (l[0] - l[1]) / (2 * eps), an = on_w ? dw[i] : dx[i];
        CHECK_MSG(fabs(fd - an) <= 2e-2 * (1 + fabs(an)), "%s[%zu]: analytic %g, finite differences %g",
                  on_w ? "dw" : "dx", i, an, fd);
    }
    free(ws);
    sgi_wino_train_tile(0);
    }
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
}
