/* Convolution on channel-major activations: im2col over a chunk of the batch, one
 * sgemm per group and chunk; 1x1 stride-1 unpadded convolutions skip im2col since
 * X[C][N*H*W] already is the column matrix. Also the naive NCHW reference. */

#include "core/sgi.h"
#include "nn/ops.h"

/* im2col works on slices of the batch whose columns fit in L2 (1 MB): the GEMM then
 * reads them from cache. Measured on LeNet-5, VGG-7 and ResNet-8 (bench notes in
 * docs/architecture.md): faster than one whole-batch slice or keeping the columns
 * from forward to backward. */
#define CHUNK_FLOATS ((size_t)256 << 10)

static int is_pointwise(const struct sg_conv_geom *g) {
    return g->r == 1 && g->s == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->pb == 0 && g->pr == 0;
}

static size_t rows_of(const struct sg_conv_geom *g) {
    return (size_t)(g->c / g->groups) * g->r * g->s;
}

static int chunk_of(const struct sg_conv_geom *g) {
    size_t per = rows_of(g) * g->p * g->q;
    size_t nb = per ? CHUNK_FLOATS / per : 1;
    if (nb < 1) nb = 1;
    if (nb > (size_t)g->n) nb = (size_t)g->n;
    return (int)nb;
}

size_t sgi_conv_workspace(const struct sg_conv_geom *g) {
    if (is_pointwise(g)) return 0;
    return rows_of(g) * (size_t)chunk_of(g) * g->p * g->q;
}

/* col[(cc*R + r)*S + s][b*P*Q + p*Q + q] for samples n0..n0+nb of group grp. */
static void im2col(const struct sg_conv_geom *g, const float *x, int grp, int n0, int nb,
                   float *col) {
    const int cg = g->c / g->groups, R = g->r, S = g->s, P = g->p, Q = g->q, H = g->h, W = g->w;
    const size_t hw = (size_t)H * W, cols = (size_t)nb * P * Q;
    const int rows = cg * R * S;
#pragma omp parallel for schedule(static)
    for (int row = 0; row < rows; row++) {
        const int cc = row / (R * S), r = (row / S) % R, s = row % S;
        const float *xc = x + (size_t)(grp * cg + cc) * g->n * hw;
        float *dst = col + (size_t)row * cols;
        const int off = s * g->dw - g->pl;
        int q0 = 0, q1 = Q; /* for stride 1: q in [q0, q1) reads inside the row */
        if (g->sw == 1) {
            q0 = off < 0 ? -off : 0;
            q1 = W - off < Q ? W - off : Q;
            if (q1 < q0) q1 = q0;
        }
        for (int b = 0; b < nb; b++) {
            const float *xs = xc + (size_t)(n0 + b) * hw;
            for (int p = 0; p < P; p++) {
                float *d = dst + ((size_t)b * P + p) * Q;
                const int ih = p * g->sh - g->pt + r * g->dh;
                if (ih < 0 || ih >= H) {
                    memset(d, 0, (size_t)Q * sizeof *d);
                    continue;
                }
                const float *xr = xs + (size_t)ih * W;
                if (g->sw == 1) {
                    for (int q = 0; q < q0; q++) d[q] = 0;
                    for (int q = q0; q < q1; q++) d[q] = xr[q + off];
                    for (int q = q1; q < Q; q++) d[q] = 0;
                } else {
                    for (int q = 0; q < Q; q++) {
                        const int iw = q * g->sw + off;
                        d[q] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
                    }
                }
            }
        }
    }
}

/* dx += col2im(col): parallel over (channel, sample) so no two threads write the same dx. */
static void col2im(const struct sg_conv_geom *g, const float *col, int grp, int n0, int nb,
                   float *dx) {
    const int cg = g->c / g->groups, R = g->r, S = g->s, P = g->p, Q = g->q, H = g->h, W = g->w;
    const size_t hw = (size_t)H * W, cols = (size_t)nb * P * Q;
    const int tasks = cg * nb;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tasks; t++) {
        const int cc = t / nb, b = t % nb;
        float *xs = dx + (size_t)(grp * cg + cc) * g->n * hw + (size_t)(n0 + b) * hw;
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) {
                const float *src = col + (size_t)((cc * R + r) * S + s) * cols + (size_t)b * P * Q;
                const int off = s * g->dw - g->pl;
                int q0 = 0, q1 = Q;
                if (g->sw == 1) {
                    q0 = off < 0 ? -off : 0;
                    q1 = W - off < Q ? W - off : Q;
                }
                for (int p = 0; p < P; p++) {
                    const int ih = p * g->sh - g->pt + r * g->dh;
                    if (ih < 0 || ih >= H) continue;
                    float *restrict xr = xs + (size_t)ih * W;
                    const float *restrict sr = src + (size_t)p * Q;
                    if (g->sw == 1) {
                        for (int q = q0; q < q1; q++) xr[q + off] += sr[q];
                    } else {
                        for (int q = 0; q < Q; q++) {
                            const int iw = q * g->sw + off;
                            if (iw >= 0 && iw < W) xr[iw] += sr[q];
                        }
                    }
                }
            }
    }
}

void sgi_conv_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                      const float *b, float *y, float *col) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t hw = (size_t)g->h * g->w, pq = (size_t)g->p * g->q, crs = rows_of(g);
    const int nb = chunk_of(g), pw = is_pointwise(g);
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        const int bsz = g->n - n0 < nb ? g->n - n0 : nb;
        for (int grp = 0; grp < g->groups; grp++) {
            const float *B;
            size_t ldb;
            if (pw) {
                B = x + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw;
                ldb = (size_t)g->n * hw;
            } else {
                im2col(g, x, grp, n0, bsz, col);
                B = col;
                ldb = (size_t)bsz * pq;
            }
            sgi_sgemm(0, 0, kg, bsz * (int)pq, (int)crs,
                        1.0f, w + (size_t)grp * kg * crs, (int)crs, B, (int)ldb, 0.0f,
                        y + (size_t)grp * kg * g->n * pq + (size_t)n0 * pq, g->n * (int)pq);
        }
    }
    if (b) {
        const size_t len = (size_t)g->n * pq;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < g->k; k++) {
            float *yk = y + (size_t)k * len;
            const float bk = b[k];
            for (size_t i = 0; i < len; i++) yk[i] += bk;
        }
    }
}

void sgi_conv_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                       const float *dy, float *dx, float *dw, float *db, float *col) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t hw = (size_t)g->h * g->w, pq = (size_t)g->p * g->q, crs = rows_of(g);
    const int nb = chunk_of(g), pw = is_pointwise(g);
    const int ldy = g->n * (int)pq;
    for (int n0 = 0; n0 < g->n; n0 += nb) {
        const int bsz = g->n - n0 < nb ? g->n - n0 : nb;
        for (int grp = 0; grp < g->groups; grp++) {
            const float *dyg = dy + (size_t)grp * kg * g->n * pq + (size_t)n0 * pq;
            const float *wg = w + (size_t)grp * kg * crs;
            float *dwg = dw + (size_t)grp * kg * crs;
            const float *B;
            size_t ldb;
            if (pw) {
                B = x + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw;
                ldb = (size_t)g->n * hw;
            } else {
                im2col(g, x, grp, n0, bsz, col);
                B = col;
                ldb = (size_t)bsz * pq;
            }
            sgi_sgemm(0, 1, kg, (int)crs, bsz * (int)pq,
                        1.0f, dyg, ldy, B, (int)ldb, n0 == 0 ? 0.0f : 1.0f, dwg, (int)crs);
            if (!dx) continue;
            if (pw) {
                sgi_sgemm(1, 0, (int)crs, bsz * (int)pq, kg,
                            1.0f, wg, (int)crs, dyg, ldy, 1.0f,
                            dx + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw, (int)ldb);
            } else {
                sgi_sgemm(1, 0, (int)crs, bsz * (int)pq, kg,
                            1.0f, wg, (int)crs, dyg, ldy, 0.0f, col, (int)ldb);
                col2im(g, col, grp, n0, bsz, dx);
            }
        }
    }
    if (db) {
        const size_t len = (size_t)g->n * pq;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < g->k; k++) {
            db[k] = (float)sgi_sum(dy + (size_t)k * len, len);
        }
    }
}

void sg_conv2d_ref(const struct sg_conv_geom *g, const float *x, const float *w, const float *b,
                   float *y) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    for (int n = 0; n < g->n; n++)
        for (int k = 0; k < g->k; k++) {
            const int grp = k / kg;
            for (int p = 0; p < g->p; p++)
                for (int q = 0; q < g->q; q++) {
                    double acc = b ? b[k] : 0.0;
                    for (int cc = 0; cc < cg; cc++) {
                        const int c = grp * cg + cc;
                        for (int r = 0; r < g->r; r++) {
                            const int ih = p * g->sh - g->pt + r * g->dh;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int s = 0; s < g->s; s++) {
                                const int iw = q * g->sw - g->pl + s * g->dw;
                                if (iw < 0 || iw >= g->w) continue;
                                acc += (double)w[(((size_t)k * cg + cc) * g->r + r) * g->s + s] *
                                       x[(((size_t)n * g->c + c) * g->h + ih) * g->w + iw];
                            }
                        }
                    }
                    y[(((size_t)n * g->k + k) * g->p + p) * g->q + q] = (float)acc;
                }
        }
}
