/* The last few tiles of a sparse Winograd convolution, summed directly.
 *
 * The Winograd products work on vectors of 16 tiles, and a vector costs the same
 * however many of its lanes hold tiles: VGG-16's 28x28 layers have 49 tiles, 3
 * full vectors and one holding a single tile, a quarter of the products spent on
 * 1/49 of the outputs. When the tiles past the last full vector are few (at most
 * SGI_WTAIL) they are computed as direct sums instead: per kept (filter, channel)
 * kernel, 9 multiply-adds per tile on a vector of its 16 outputs (4x4) against the
 * 9 shifted 4x4 windows of its 6x6 input patch, a quarter of a Winograd vector's
 * 36 per kernel (sparse_wino.c decides and schedules them). The windows of every
 * used channel are cut once per run, W[channel][tile][9][16]. The raw 3x3 kernels
 * are kept beside the transformed ones by channel within blocks of SGI_WTRB rows
 * (compressed columns): a channel's windows are loaded once into registers for
 * all the block's rows that use it, whose sums (in L1) take 9 multiply-adds per
 * tile from 9 broadcast weights. (By rows, windows and weights both loaded per
 * multiply-add, the sums took 1.6 times a Winograd product's time per multiply-
 * add.) Each output is summed by one thread in a fixed order (channels in order,
 * three partial sums over the taps), so the results do not depend on the thread
 * count. */
#include "infer/sparse_plan.h"

#define AI static inline __attribute__((always_inline))

/* Image, tile row and tile column of tile tt (tiles numbered across images). */
static void tile_at(const struct sg_conv_geom *g, int64_t tt, int64_t *img, int64_t *ty, int64_t *tx) {
    const int64_t tw = (g->q + 3) / 4, per = (g->p + 3) / 4 * tw;
    *img = tt / per, *ty = tt % per / tw, *tx = tt % tw;
}

void sgi_wino_tail_windows(const struct sg_conv_geom *g, const float *xc, int64_t t0, int nt, float *W) {
    for (int t = 0; t < nt; t++) {
        int64_t img, ty, tx;
        tile_at(g, t0 + t, &img, &ty, &tx);
        const int64_t r0 = 4 * ty - g->pt, c0 = 4 * tx - g->pl;
        const float *plane = xc + img * g->h * g->w;
        const int64_t j0 = c0 < 0 ? -c0 : 0, j1 = c0 + 6 > g->w ? g->w - c0 : 6;
        float P[6][8] = {{0}};
        for (int i = 0; i < 6; i++)
            if (r0 + i >= 0 && r0 + i < g->h && j1 > j0)
                memcpy(&P[i][j0], plane + (r0 + i) * g->w + c0 + j0, (size_t)(j1 - j0) * sizeof(float));
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                float *d = W + ((int64_t)t * 9 + a * 3 + b) * SGV_W;
                for (int oy = 0; oy < 4; oy++) memcpy(d + oy * 4, &P[oy + a][b], 4 * sizeof(float));
            }
    }
}

enum sg_status sgi_wino_tail_build(struct sgi_wino *w, int64_t rows, const float *g9, const uint16_t *col) {
    const int64_t nrb = (rows + SGI_WTRB - 1) / SGI_WTRB;
    const int64_t ne = w->dense ? w->kp * w->nch : w->nnz, per = w->nch + 1;
    w->tcp = sgi_zalloc((size_t)(nrb * per), sizeof *w->tcp);
    w->trow = sgi_alloc((size_t)ne + 1, sizeof *w->trow);
    w->tg9 = sgi_alloc((size_t)ne * 9 + 16, sizeof *w->tg9);
    if (!w->tcp || !w->trow || !w->tg9) return SG_ERR_NOMEM;
    /* entries of row r: channel positions and kernels */
#define ROW_ENTRIES(r, body_)                                                                               \
    for (int64_t r = 0; r < rows; r++) {                                                                    \
        const int64_t e0 = w->dense ? r * w->nch : w->rp[r], e1 = w->dense ? e0 + w->nch : w->rp[r + 1];  \
        for (int64_t e = e0; e < e1; e++) {                                                                 \
            const int64_t j = w->dense ? e - e0 : col[e];                                                   \
            body_                                                                                            \
        }                                                                                                    \
    }
    ROW_ENTRIES(r, w->tcp[r / SGI_WTRB * per + j + 1]++;)
    for (int64_t b = 0; b < nrb; b++) /* offsets, the blocks end to end */
        for (int64_t j = 0; j < w->nch; j++)
            w->tcp[b * per + j + 1] += w->tcp[b * per + j];
    for (int64_t b = 1; b < nrb; b++)
        for (int64_t j = 0; j <= w->nch; j++) w->tcp[b * per + j] += w->tcp[(b - 1) * per + w->nch];
    int64_t *fill = sgi_alloc((size_t)(nrb * per), sizeof *fill);
    if (!fill) return SG_ERR_NOMEM;
    memcpy(fill, w->tcp, (size_t)(nrb * per) * sizeof *fill);
    ROW_ENTRIES(r, {
        const int64_t q = fill[r / SGI_WTRB * per + j]++;
        w->trow[q] = (uint8_t)(r % SGI_WTRB);
        memcpy(w->tg9 + q * 9, g9 + e * 9, 9 * sizeof *g9);
    })
#undef ROW_ENTRIES
    free(fill);
    return SG_OK;
}

/* The sums of rows [r0, r0 + SGI_WTRB) over every used channel, for R tiles, into
 * A[row][t][16]: per channel its R x 9 windows, then per row that uses it three
 * partial sums over the taps added to the row's. */
AI void tail_block(const struct sgi_wino *w, int64_t rb, const float *W, const int R, float *A) {
    const int64_t *cp = w->tcp + rb * (w->nch + 1);
    for (int i = 0; i < SGI_WTRB * R * SGV_W; i++) A[i] = 0.0f;
    for (int64_t j = 0; j < w->nch; j++) {
        if (cp[j] == cp[j + 1]) continue;
        sgv x[SGI_WTAIL][9];
        for (int t = 0; t < R; t++)
            for (int rs = 0; rs < 9; rs++) x[t][rs] = sgv_load(W + ((j * R + t) * 9 + rs) * SGV_W);
        for (int64_t e = cp[j]; e < cp[j + 1]; e++) {
            const float *g = w->tg9 + e * 9;
            float *a = A + (int64_t)w->trow[e] * R * SGV_W;
            for (int t = 0; t < R; t++) {
                sgv s[3];
                for (int q = 0; q < 3; q++) s[q] = sgv_mul(sgv_set1(g[q]), x[t][q]);
                for (int rs = 3; rs < 9; rs++) s[rs % 3] = sgv_fma(sgv_set1(g[rs]), x[t][rs], s[rs % 3]);
                sgv_store(a + t * SGV_W, sgv_add(sgv_load(a + t * SGV_W), sgv_add(sgv_add(s[0], s[1]), s[2])));
            }
        }
    }
}

void sgi_wino_tail_rows(const struct sg_conv_plan *p, int n, int64_t r0, int nt, int64_t t0, const float *W,
                        float *y) {
    const struct sg_conv_geom *g = &p->g;
    const struct sgi_wino *w = &p->wino;
    const int64_t lout = (int64_t)n * g->p * g->q;
    _Alignas(64) float A[SGI_WTRB * SGI_WTAIL * SGV_W];
    const int64_t rb = r0 / SGI_WTRB;
    _Static_assert(SGI_WTAIL == 2, "tail_block is instantiated for 1 and 2 tiles");
    if (nt == 1)
        tail_block(w, rb, W, 1, A);
    else
        tail_block(w, rb, W, 2, A);
    const int64_t rows = w->dense ? w->nk : g->k, r1 = r0 + SGI_WTRB < rows ? r0 + SGI_WTRB : rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t k = w->dense ? w->krow[r] : r;
        if (!w->dense && w->rp[k] == w->rp[k + 1]) continue; /* pruned filter: its plane is the bias */
        const float bias = p->bias ? p->bias[k] : 0.0f, *a = A + (r - r0) * nt * SGV_W;
        float *yk = y + k * lout;
        for (int t = 0; t < nt; t++) {
            int64_t img, ty, tx;
            tile_at(g, t0 + t, &img, &ty, &tx);
            for (int oy = 0; oy < 4 && 4 * ty + oy < g->p; oy++)
                for (int ox = 0; ox < 4 && 4 * tx + ox < g->q; ox++)
                    yk[img * g->p * g->q + (4 * ty + oy) * g->q + 4 * tx + ox] = a[t * SGV_W + oy * 4 + ox] + bias;
        }
    }
}
