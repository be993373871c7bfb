/* Fine-grained 1x1 convolutions (stride 1, no padding) and fully connected
 * layers: Y[K][L] = W[K][C] X[C][L] with W in CSR rows. X is already the column
 * matrix, so unlike the block kinds nothing is gathered: each row keeps its
 * accumulators for a tile of columns in registers and streams its non-zeros.
 * Column indices are stored relative to the previous one in 16 bits (Deep
 * Compression's relative index, with a filler value of 0 for gaps > 65535). */
#include "infer/sparse_plan.h"

#define AI static inline __attribute__((always_inline))
#define GAP_MAX 65535

void sgi_csr_free(struct sgi_csr *c) {
    free(c->rp);
    free(c->dc);
    free(c->w);
    memset(c, 0, sizeof *c);
}

enum sg_status sgi_csr_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept) {
    struct sgi_csr *s = &p->csr;
    const int64_t K = p->g.k, C = p->g.c;
    int64_t nv = 0;
    for (int64_t k = 0; k < K; k++) {
        int64_t prev = 0;
        for (int64_t c = 0; c < C; c++)
            if (kept[k * C + c]) {
                nv += 1 + (c > prev ? (c - prev - 1) / GAP_MAX : 0); /* + fillers */
                prev = c;
            }
    }
    s->rp = sgi_alloc((size_t)K + 1, sizeof *s->rp);
    s->dc = sgi_alloc((size_t)nv + 1, sizeof *s->dc);
    s->w = sgi_alloc((size_t)nv + 1, sizeof *s->w);
    if (!s->rp || !s->dc || !s->w) return SG_ERR_NOMEM;
    int64_t v = 0;
    for (int64_t k = 0; k < K; k++) {
        s->rp[k] = v;
        int64_t prev = 0;
        for (int64_t c = 0; c < C; c++)
            if (kept[k * C + c]) {
                int64_t gap = c - prev;
                while (gap > GAP_MAX) { /* filler: moves the column, adds nothing */
                    s->dc[v] = GAP_MAX;
                    s->w[v++] = 0.0f;
                    gap -= GAP_MAX;
                }
                s->dc[v] = (uint16_t)gap;
                s->w[v++] = wm[k * C + c];
                prev = c;
            }
    }
    s->rp[K] = v;
    SG_ASSERT(v == nv);
    s->nvalues = nv;
    p->info.stored = nv;
    p->info.bytes = (size_t)nv * 6 + ((size_t)K + 1) * 8;
    return SG_OK;
}

/* One row on a tile of T vectors; full: all T*16 columns exist, else tw of them
 * (masked loads: nothing past the end of x is read). Two partial sums per
 * vector so that consecutive non-zeros do not wait on each other's latency. */
AI void row_tile(const struct sgi_csr *s, int64_t k, const float *x, int64_t L, int64_t j0,
                 int tw, const int T, const int full, float bias, float *y) {
    sgv acc[2][4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[0][t] = acc[1][t] = sgv_zero();
    const float *xp = x + j0;
    int h = 0;
    for (int64_t v = s->rp[k]; v < s->rp[k + 1]; v++, h ^= 1) {
        xp += (int64_t)s->dc[v] * L;
        const sgv wv = sgv_set1(s->w[v]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int lanes = tw - t * SGV_W;
            if (full)
                acc[h][t] = sgv_fma(wv, sgv_loadu(xp + t * SGV_W), acc[h][t]);
            else if (lanes > 0)
                acc[h][t] = sgv_fma(
                    wv, sgv_loadu_n(xp + t * SGV_W, lanes < SGV_W ? lanes : SGV_W), acc[h][t]);
        }
    }
    float *yr = y + k * L + j0;
    const sgv bv = sgv_set1(bias);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const int lanes = tw - t * SGV_W;
        const sgv r = sgv_add(sgv_add(acc[0][t], acc[1][t]), bv);
        if (full || lanes >= SGV_W)
            sgv_storeu(yr + t * SGV_W, r);
        else if (lanes > 0)
            sgv_storeu_n(yr + t * SGV_W, r, lanes);
    }
}

#define ROWS 16 /* rows per task */

void sgi_csr_run(const struct sg_conv_plan *p, int n, const float *x, float *y) {
    const struct sgi_csr *s = &p->csr;
    const int64_t L = (int64_t)n * p->g.h * p->g.w, K = p->g.k;
    const int TW = L >= 64 ? 64 : sgi_tile_width(L), T = TW / SGV_W;
    const int64_t ntile = (L + TW - 1) / TW, nkb = (K + ROWS - 1) / ROWS, ntask = ntile * nkb;
    /* small layers on one thread: see sgi_blk_run */
    const double work = (double)s->nvalues * (double)ntile * T;
#pragma omp parallel for schedule(dynamic, 1) if (ntask > 1 && work >= 65536.0)
    for (int64_t task = 0; task < ntask; task++) {
        const int64_t tile = task % ntile, kb = task / ntile;
        const int64_t j0 = tile * TW, k1 = (kb + 1) * ROWS < K ? (kb + 1) * ROWS : K;
        const int tw = (int)(L - j0 < TW ? L - j0 : TW);
        for (int64_t k = kb * ROWS; k < k1; k++) {
            const float bias = p->bias ? p->bias[k] : 0.0f;
            if (tw == TW) {
                switch (T) {
                case 4: row_tile(s, k, x, L, j0, tw, 4, 1, bias, y); break;
                case 3: row_tile(s, k, x, L, j0, tw, 3, 1, bias, y); break;
                case 2: row_tile(s, k, x, L, j0, tw, 2, 1, bias, y); break;
                default: row_tile(s, k, x, L, j0, tw, 1, 1, bias, y); break;
                }
            } else {
                switch (T) {
                case 4: row_tile(s, k, x, L, j0, tw, 4, 0, bias, y); break;
                case 3: row_tile(s, k, x, L, j0, tw, 3, 0, bias, y); break;
                case 2: row_tile(s, k, x, L, j0, tw, 2, 0, bias, y); break;
                default: row_tile(s, k, x, L, j0, tw, 1, 0, bias, y); break;
                }
            }
        }
    }
}
