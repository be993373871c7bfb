/* The image-lane convolutions (src/nn/conv_lanes.c) against plain loops in double:
 * forward, input gradient (added to what dx holds) and weight
 * gradient (0 for dropped kernels), with kernel lists (random kernel masks, filters
 * and channels left empty) and dense (every kernel), on batches of 1, 16, 19 and 35
 * samples (partial groups of 16 lanes), kernels 5x5, 7x7, 3x5 and 3x3, paddings 0
 * up to the kernel's side less one, rows that are no multiple of the output block;
 * the workspace starts as NaN. One, two and three threads give the same bits. */
#include <math.h>

#include "harness.h"
#include "nn/ops.h"

static void ref_passes(const struct sg_conv_geom *g, const float *x, const float *w,
                       const float *dy, const float *d0, float *y, float *dx, float *dw) {
    const int N = g->n, C = g->c, K = g->k, R = g->r, S = g->s, H = g->h, W = g->w, P = g->p,
              Q = g->q;
#define X(c, n, i, j) x[(((size_t)(c) * N + (n)) * H + (i)) * W + (j)]
#define DY(k, n, p, q) dy[(((size_t)(k) * N + (n)) * P + (p)) * Q + (q)]
#define WT(k, c, r, s) w[(((size_t)(k) * C + (c)) * R + (r)) * S + (s)]
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    double a = 0;
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < R; r++)
                            for (int s = 0; s < S; s++) {
                                const int i = p + r - g->pt, j = q + s - g->pl;
                                if (i >= 0 && i < H && j >= 0 && j < W) a += (double)WT(k, c, r, s) * X(c, n, i, j);
                            }
                    y[(((size_t)k * N + n) * P + p) * Q + q] = (float)a;
                }
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    const size_t at = (((size_t)c * N + n) * H + i) * W + j;
                    double a = d0[at];
                    for (int k = 0; k < K; k++)
                        for (int r = 0; r < R; r++)
                            for (int s = 0; s < S; s++) {
                                const int p = i + g->pt - r, q = j + g->pl - s;
                                if (p >= 0 && p < P && q >= 0 && q < Q) a += (double)WT(k, c, r, s) * DY(k, n, p, q);
                            }
                    dx[at] = (float)a;
                }
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++) {
                    double a = 0;
                    for (int n = 0; n < N; n++)
                        for (int p = 0; p < P; p++)
                            for (int q = 0; q < Q; q++) {
                                const int i = p + r - g->pt, j = q + s - g->pl;
                                if (i >= 0 && i < H && j >= 0 && j < W) a += (double)DY(k, n, p, q) * X(c, n, i, j);
                            }
                    dw[(((size_t)k * C + c) * R + r) * S + s] = (float)a;
                }
#undef X
#undef DY
#undef WT
}

static void check_lanes(int n, int c, int h, int w, int k, int R, int S, int pad, double keep,
                        uint64_t seed) {
    struct sg_conv_geom g = {n, c, h, w, k, R, S, 1, 1, pad, pad, pad, pad, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    if (!sgi_conv_lanes_ok(&g)) return; /* AVX-512 builds */
    sg_rng rg;
    sg_rng_seed(&rg, seed);
    const int rs = R * S;
    const size_t nx = (size_t)n * c * h * w, nw = (size_t)k * c * rs, ny = (size_t)n * k * g.p * g.q;
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *dy = malloc(ny * 4), *d0 = malloc(nx * 4);
    float *yr = malloc(ny * 4), *dxr = malloc(nx * 4), *dwr = malloc(nw * 4);
    uint8_t *mk = malloc(nw);
    for (size_t i = 0; i < nx; i++) x[i] = sg_rng_normal(&rg), d0[i] = i % 9 == 4 ? -0.0f : sg_rng_normal(&rg);
    for (size_t i = 0; i < ny; i++) dy[i] = sg_rng_normal(&rg);
    for (size_t kc = 0; kc < (size_t)k * c; kc++) {
        const int kk = (int)(kc / c), cc = (int)(kc % c);
        const int on = keep >= 1.0 || (kk != 0 && cc != c - 1 && sg_rng_uniform(&rg) < keep);
        for (int t = 0; t < rs; t++) {
            mk[kc * rs + t] = (uint8_t)on;
            wt[kc * rs + t] = on ? sg_rng_normal(&rg) : 0.0f;
        }
    }
    ref_passes(&g, x, wt, dy, d0, yr, dxr, dwr);
    for (size_t i = 0; i < nw; i++) dwr[i] *= mk[i]; /* a dropped kernel's gradient: 0 */
    struct sgi_thin_buf tb = {0};
    struct sgi_kept kp;
    const struct sgi_kept *kpp = NULL;
    if (keep < 1.0) {
        CHECK(sgi_conv_kernel_lists(&g, mk, 1.0, &tb, &kp));
        kpp = &kp;
    }
    float *y[3], *dx[3], *dw[3];
    for (int t = 0; t < 3; t++) {
        const int threads = t + 1;
        y[t] = malloc(ny * 4), dx[t] = malloc(nx * 4), dw[t] = malloc(nw * 4);
        float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
        memcpy(dx[t], d0, nx * 4);
        for (size_t i = 0; i < nw; i++) dw[t][i] = NAN; /* written, not added to */
        sgi_conv_lanes_forward(&g, x, wt, kpp, y[t], ws, threads);
        sgi_conv_lanes_backward(&g, x, wt, kpp, dy, dx[t], dw[t], ws, threads);
        free(ws);
        if (t) {
            CHECK_MSG(memcmp(y[t], y[0], ny * 4) == 0 && memcmp(dx[t], dx[0], nx * 4) == 0 &&
                          memcmp(dw[t], dw[0], nw * 4) == 0,
                      "%d threads: other bits (n %d c %d %dx%d k %d %dx%d pad %d)", threads, n, c, h,
                      w, k, R, S, pad);
        }
    }
    for (size_t i = 0; i < nw; i++)
        if (!mk[i]) CHECK_MSG(dw[0][i] == 0.0f, "dropped kernel's gradient at %zu", i);
    CHECK_MSG(sgt_max_rel_err(y[0], yr, ny) < 1e-5, "y n %d c %d %dx%d k %d %dx%d pad %d keep %.1f", n,
              c, h, w, k, R, S, pad, keep);
    CHECK_MSG(sgt_max_rel_err(dx[0], dxr, nx) < 1e-5, "dx n %d c %d %dx%d k %d %dx%d pad %d keep %.1f",
              n, c, h, w, k, R, S, pad, keep);
    CHECK_MSG(sgt_max_rel_err(dw[0], dwr, nw) < 1e-5, "dw n %d c %d %dx%d k %d %dx%d pad %d keep %.1f",
              n, c, h, w, k, R, S, pad, keep);
    sgi_thin_buf_free(&tb);
    for (int t = 0; t < 3; t++) free(y[t]), free(dx[t]), free(dw[t]);
    free(x), free(wt), free(dy), free(d0), free(yr), free(dxr), free(dwr), free(mk);
}

SG_TEST(conv_lanes_match_plain_loops) {
    uint64_t seed = 700;
    const double keeps[2] = {0.35, 1.0};
    for (int i = 0; i < 2; i++) {
        const double kp = keeps[i];
        check_lanes(3, 20, 12, 12, 9, 5, 5, 0, kp, seed++);   /* LeNet-5's conv2, thinner */
        check_lanes(19, 6, 12, 12, 5, 5, 5, 0, kp, seed++);   /* two groups, one partial */
        check_lanes(35, 3, 9, 11, 4, 5, 5, 2, kp, seed++);    /* three; 11 columns */
        check_lanes(16, 4, 10, 13, 3, 7, 7, 3, kp, seed++);   /* 7x7 */
        check_lanes(1, 5, 8, 20, 6, 3, 5, 1, kp, seed++);     /* 3x5; one sample */
        check_lanes(2, 4, 7, 7, 5, 3, 3, 2, kp, seed++);      /* output wider than input */
        check_lanes(17, 8, 14, 14, 7, 5, 5, 4, kp, seed++);   /* pad 4 */
        check_lanes(5, 2, 6, 30, 3, 5, 7, 1, kp, seed++);     /* 24 columns: blocks of 8 */
    }
}
