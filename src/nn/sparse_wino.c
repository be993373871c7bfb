/* Sparse Winograd convolution, F(4x4, 3x3) (Lavin and Gray 2016), for 3x3
 * stride-1 layers pruned at kernel, filter or channel level.
 *
 * Winograd computes a 4x4 output tile from a 6x6 input patch d with 36
 * multiplications per (filter, channel) instead of 144: V = B^T d B (input
 * transform), U = G g G^T (weights, once), M = U . V summed over channels for
 * each of the 36 points xi, Y = A^T M A (output transform). A pruned 3x3 kernel
 * g = 0 gives U = 0: kernel-level sparsity is the same sparsity pattern (filter k
 * uses channel c) at all 36 points, so the product is 36 sparse-times-dense
 * products M[xi][k] = sum over kept c of U[xi][k][c] V[xi][c] sharing one CSR
 * pattern. Filter and channel pruning are the special cases of empty rows and
 * unused columns. oneDNN's fastest dense convolution here is itself Winograd;
 * a direct sparse kernel at density 0.3 cannot be twice as fast as it.
 *
 * Layout: output tiles are numbered across images (image, tile row, tile
 * column) and processed TL at a time, one tile per vector lane. Per chunk of
 * tiles, V[36][channel][TL] for every used channel is built once (gathering the
 * patches with masked vector gathers: padding lanes read nothing), then per
 * block of filters and per point xi each filter keeps its TL accumulators in
 * registers while it streams its kept channels. Each output element is computed
 * by one thread in a fixed order: results do not depend on the thread count.
 * F(4x4, 3x3) rounds differently from the direct sum (its transforms hold
 * factors up to 8 and 1/24): relative differences of about 1e-5 of the output's
 * magnitude are normal, as in oneDNN's own Winograd. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/sparse_plan.h"

#define AI static inline __attribute__((always_inline))
#define FB 32 /* filters per block: their M[FB][36][TL] (147 KB) stays in L2 */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

void sgi_wino_free(struct sgi_wino *w) {
    free(w->rp);
    free(w->col);
    free(w->u);
    free(w->chans);
    memset(w, 0, sizeof *w);
}

int sgi_wino_fits(const struct sg_conv_geom *g, int is_fc) {
    return !is_fc && g->r == 3 && g->s == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && g->groups == 1;
}

/* U = G g G^T for one 3x3 kernel, in double (once per plan) */
static void weight_transform(const float *g, float *u, int64_t stride) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double t[6][3];
    for (int a = 0; a < 6; a++)
        for (int j = 0; j < 3; j++)
            t[a][j] = G[a][0] * g[0 * 3 + j] + G[a][1] * g[1 * 3 + j] + G[a][2] * g[2 * 3 + j];
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            u[(a * 6 + b) * stride] = (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
}

enum sg_status sgi_wino_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept) {
    struct sgi_wino *w = &p->wino;
    const int64_t K = p->g.k, C = p->g.c;
    int64_t nnz = 0;
    uint8_t *used = sgi_zalloc((size_t)C, 1);
    if (!used) return SG_ERR_NOMEM;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++) {
            const uint8_t *kr = kept + (k * C + c) * 9;
            int any = 0;
            for (int i = 0; i < 9; i++) any |= kr[i];
            nnz += any != 0;
            used[c] |= any != 0;
        }
    w->rp = sgi_alloc((size_t)K + 1, sizeof *w->rp);
    w->col = sgi_alloc((size_t)nnz + 1, sizeof *w->col);
    w->u = sgi_alloc((size_t)nnz * 36 + 16, sizeof *w->u);
    w->chans = sgi_alloc((size_t)C, sizeof *w->chans);
    int32_t *pos = sgi_alloc((size_t)C, sizeof *pos);
    if (!w->rp || !w->col || !w->u || !w->chans || !pos) {
        free(used), free(pos);
        return SG_ERR_NOMEM;
    }
    w->nch = 0;
    for (int64_t c = 0; c < C; c++) {
        pos[c] = used[c] ? w->nch : -1;
        if (used[c]) w->chans[w->nch++] = (int32_t)c;
    }
    int64_t v = 0;
    for (int64_t k = 0; k < K; k++) {
        w->rp[k] = v;
        for (int64_t c = 0; c < C; c++) {
            const uint8_t *kr = kept + (k * C + c) * 9;
            int any = 0;
            for (int i = 0; i < 9; i++) any |= kr[i];
            if (!any) continue;
            w->col[v] = pos[c]; /* position among the used channels: the row of V */
            weight_transform(wm + (k * C + c) * 9, w->u + v, nnz); /* u[xi][v] */
            v++;
        }
    }
    w->rp[K] = v;
    w->nnz = nnz;
    free(used), free(pos);
    p->info.stored = nnz * 36;
    p->info.bytes = (size_t)nnz * (36 * 4 + 4) + ((size_t)K + 1) * 8 + (size_t)C * 4;
    return SG_OK;
}

/* ---- transforms on vectors of TL tiles ---- */
/* t = B^T d along one axis: six inputs a step s apart, six outputs likewise */
AI void bt6(const sgv *d, int s, sgv *t, int ts) {
    const sgv four = sgv_set1(4.0f), five = sgv_set1(5.0f), two = sgv_set1(2.0f);
    const sgv d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    t[0] = sgv_fma(four, d0, sgv_fma(sgv_set1(-5.0f), d2, d4));
    t[1 * ts] = sgv_fma(sgv_set1(-4.0f), sgv_add(d1, d2), sgv_add(d3, d4));
    t[2 * ts] = sgv_fma(four, d1 - d2, d4 - d3);
    t[3 * ts] = sgv_fma(two, d3 - d1, d4 - d2);
    t[4 * ts] = sgv_fma(two, d1 - d3, d4 - d2);
    t[5 * ts] = sgv_fma(four, d1, sgv_fma(sgv_set1(-5.0f), d3, d5));
    (void)five;
}

/* y = A^T m along one axis: six inputs, four outputs */
AI void at6(const sgv *m, int s, sgv *y, int ys) {
    const sgv m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
    const sgv a = sgv_add(m1, m2), b = m1 - m2, c = sgv_add(m3, m4), d = m3 - m4;
    y[0] = sgv_add(sgv_add(m0, a), c);
    y[1 * ys] = sgv_fma(sgv_set1(2.0f), d, b);
    y[2 * ys] = sgv_fma(sgv_set1(4.0f), c, a);
    y[3 * ys] = sgv_add(sgv_fma(sgv_set1(8.0f), d, b), m5);
}

/* Per-lane geometry of a chunk of tiles. */
struct lanes {
    int32_t in[SGV_W * 2];   /* offset of the patch's top-left in its channel plane (may be < 0) */
    int32_t out[SGV_W * 2];  /* offset of the tile's top-left in the output plane */
    uint32_t rmask[6][2], cmask[6][2]; /* lanes whose patch row i / column j is inside the image */
    uint32_t omask[4][4][2];           /* lanes whose output (i, j) exists */
};

static void lanes_of(const struct sg_conv_geom *g, int64_t t0, int tl, int TL, struct lanes *ln) {
    const int64_t th = (g->p + 3) / 4, tw = (g->q + 3) / 4, per = th * tw;
    memset(ln, 0, sizeof *ln);
    for (int l = 0; l < TL; l++) {
        if (l >= tl) {
            ln->in[l] = ln->out[l] = 0;
            continue;
        }
        const int64_t t = t0 + l, img = t / per, ty = t % per / tw, tx = t % tw;
        const int64_t r0 = 4 * ty - g->pt, c0 = 4 * tx - g->pl;
        ln->in[l] = (int32_t)(img * g->h * g->w + r0 * g->w + c0);
        ln->out[l] = (int32_t)(img * g->p * g->q + 4 * ty * g->q + 4 * tx);
        const int v = l / SGV_W;
        const uint32_t bit = 1u << (l % SGV_W);
        for (int i = 0; i < 6; i++) {
            if (r0 + i >= 0 && r0 + i < g->h) ln->rmask[i][v] |= bit;
            if (c0 + i >= 0 && c0 + i < g->w) ln->cmask[i][v] |= bit;
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                if (4 * ty + i < g->p && 4 * tx + j < g->q) ln->omask[i][j][v] |= bit;
    }
}

#if defined(__AVX512F__)
static inline sgv gather16(const float *base, const int32_t *off, int32_t add, uint32_t m) {
    const __m512i idx = _mm512_add_epi32(_mm512_loadu_si512(off), _mm512_set1_epi32(add));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)m, idx, base, 4);
}
static inline void scatter16(float *base, const int32_t *off, int32_t add, uint32_t m, sgv v) {
    const __m512i idx = _mm512_add_epi32(_mm512_loadu_si512(off), _mm512_set1_epi32(add));
    _mm512_mask_i32scatter_ps(base, (__mmask16)m, idx, v, 4);
}
#else
static inline sgv gather16(const float *base, const int32_t *off, int32_t add, uint32_t m) {
    float t[SGV_W];
    for (int l = 0; l < SGV_W; l++) t[l] = (m >> l) & 1 ? base[off[l] + add] : 0.0f;
    return sgv_loadu(t);
}
static inline void scatter16(float *base, const int32_t *off, int32_t add, uint32_t m, sgv v) {
    float t[SGV_W];
    sgv_storeu(t, v);
    for (int l = 0; l < SGV_W; l++)
        if ((m >> l) & 1) base[off[l] + add] = t[l];
}
#endif

/* V[xi][j][TL] for channel plane xc (position j among the used channels). */
static void input_tile(const struct sg_conv_geom *g, const float *xc, const struct lanes *ln,
                       int T, int64_t nch, int64_t j, float *V) {
    for (int v = 0; v < T; v++) {
        sgv d[36], t[36];
        for (int i = 0; i < 6; i++)
            for (int q = 0; q < 6; q++)
                d[i * 6 + q] = gather16(xc, ln->in + v * SGV_W, i * g->w + q,
                                        ln->rmask[i][v] & ln->cmask[q][v]);
        for (int q = 0; q < 6; q++) bt6(d + q, 6, t + q, 6); /* columns: t = B^T d */
        for (int a = 0; a < 6; a++) bt6(t + a * 6, 1, d + a * 6, 1); /* rows: V = t B */
        for (int xi = 0; xi < 36; xi++)
            sgv_store(V + ((int64_t)xi * nch + j) * (T * SGV_W) + v * SGV_W, d[xi]);
    }
}

/* M[TL] of filter k at point xi: its kept channels against V[xi] (kept in L1
 * while the filters of a block stream past it). Four partial sums per vector:
 * one accumulator would chain every fused multiply-add on the previous one's
 * 4-cycle latency (measured 2x slower). */
AI void product_row(const struct sgi_wino *w, int64_t k, int xi, const float *V, int64_t nch,
                    float *M, const int T) {
    const int64_t p0 = w->rp[k], p1 = w->rp[k + 1], TL = (int64_t)T * SGV_W;
    const float *u = w->u + xi * w->nnz;
    const float *Vx = V + (int64_t)xi * nch * TL;
    const int32_t *col = w->col;
    sgv a0[2] = {sgv_zero(), sgv_zero()}, a1[2] = {sgv_zero(), sgv_zero()};
    sgv a2[2] = {sgv_zero(), sgv_zero()}, a3[2] = {sgv_zero(), sgv_zero()};
    int64_t p = p0;
    for (; p + 4 <= p1; p += 4) {
        const sgv u0 = sgv_set1(u[p]), u1 = sgv_set1(u[p + 1]), u2 = sgv_set1(u[p + 2]),
                  u3 = sgv_set1(u[p + 3]);
        const float *v0 = Vx + (int64_t)col[p] * TL, *v1 = Vx + (int64_t)col[p + 1] * TL;
        const float *v2 = Vx + (int64_t)col[p + 2] * TL, *v3 = Vx + (int64_t)col[p + 3] * TL;
        for (int t = 0; t < T; t++) {
            a0[t] = sgv_fma(u0, sgv_load(v0 + t * SGV_W), a0[t]);
            a1[t] = sgv_fma(u1, sgv_load(v1 + t * SGV_W), a1[t]);
            a2[t] = sgv_fma(u2, sgv_load(v2 + t * SGV_W), a2[t]);
            a3[t] = sgv_fma(u3, sgv_load(v3 + t * SGV_W), a3[t]);
        }
    }
    for (; p < p1; p++) {
        const sgv uv = sgv_set1(u[p]);
        const float *vp = Vx + (int64_t)col[p] * TL;
        for (int t = 0; t < T; t++) a0[t] = sgv_fma(uv, sgv_load(vp + t * SGV_W), a0[t]);
    }
    for (int t = 0; t < T; t++)
        sgv_store(M + t * SGV_W, sgv_add(sgv_add(a0[t], a1[t]), sgv_add(a2[t], a3[t])));
}

static void output_tile(const struct sg_conv_geom *g, const float *M, int T, const struct lanes *ln,
                        float bias, int empty, float *yk) {
    const int64_t TL = (int64_t)T * SGV_W;
    for (int v = 0; v < T; v++) {
        sgv m[36], t[24], y[16];
        if (empty) {
            for (int i = 0; i < 16; i++)
                if (ln->omask[i / 4][i % 4][v])
                    scatter16(yk, ln->out + v * SGV_W, i / 4 * g->q + i % 4, ln->omask[i / 4][i % 4][v],
                              sgv_set1(bias));
            continue;
        }
        for (int xi = 0; xi < 36; xi++) m[xi] = sgv_load(M + xi * TL + v * SGV_W);
        for (int q = 0; q < 6; q++) at6(m + q, 6, t + q, 6);     /* columns: t[4][6] */
        for (int a = 0; a < 4; a++) at6(t + a * 6, 1, y + a * 4, 1); /* rows: y[4][4] */
        const sgv b = sgv_set1(bias);
        for (int i = 0; i < 4; i++)
            for (int q = 0; q < 4; q++)
                if (ln->omask[i][q][v])
                    scatter16(yk, ln->out + v * SGV_W, i * g->q + q, ln->omask[i][q][v],
                              sgv_add(y[i * 4 + q], b));
    }
}

static int tiles_per_chunk(int64_t nch) {
    /* two vectors of tiles per chunk unless V[36][channels][TL] would pass 1.2 MB */
    return 36 * nch * 32 * 4 <= (int64_t)1200 << 10 ? 32 : 16;
}

size_t sgi_wino_scratch(const struct sg_conv_plan *p) {
    const int TL = tiles_per_chunk(p->wino.nch);
    return round16((size_t)36 * p->wino.nch * TL) + round16((size_t)FB * 36 * TL) +
           round16(sizeof(struct lanes) / sizeof(float) + 1);
}

void sgi_wino_run(const struct sg_conv_plan *p, int n, const float *x, float *y, float *scratch,
                  int nthreads) {
    const struct sg_conv_geom *g = &p->g;
    const struct sgi_wino *w = &p->wino;
    const int64_t K = g->k, lin = (int64_t)n * g->h * g->w, lout = (int64_t)n * g->p * g->q;
    const int64_t ntile = (int64_t)n * ((g->p + 3) / 4) * ((g->q + 3) / 4);
    const int TL = tiles_per_chunk(w->nch), T = TL / SGV_W;
    const int64_t nchunk = (ntile + TL - 1) / TL, nfb = (K + FB - 1) / FB;
    int64_t parts = 1; /* split the filters when there are few chunks (small images) */
    while (parts < nfb && nchunk * parts < 4 * (int64_t)nthreads) parts++;
    const int64_t fpp = (nfb + parts - 1) / parts;
    parts = (nfb + fpp - 1) / fpp;
    const int64_t ntask = nchunk * parts;
    const size_t per = sgi_wino_scratch(p), vlen = round16((size_t)36 * w->nch * TL),
                 mlen = round16((size_t)FB * 36 * TL);
    const double work = (double)w->nnz * 36.0 * (double)ntile;
    const int nt = work < 262144.0 ? 1 : nthreads;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        float *V = scratch + (size_t)tid * per, *M = V + vlen;
        struct lanes *ln = (struct lanes *)(void *)(M + mlen);
        int64_t have = -1; /* chunk whose V this thread holds */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < ntask; task++) {
            const int64_t chunk = task / parts, part = task % parts, t0 = chunk * TL;
            const int tl = (int)(ntile - t0 < TL ? ntile - t0 : TL);
            if (have != chunk) {
                lanes_of(g, t0, tl, TL, ln);
                for (int64_t j = 0; j < w->nch; j++)
                    input_tile(g, x + (int64_t)w->chans[j] * lin, ln, T, w->nch, j, V);
                have = chunk;
            }
            const int64_t b1 = (part + 1) * fpp < nfb ? (part + 1) * fpp : nfb;
            for (int64_t fb = part * fpp; fb < b1; fb++) {
                const int64_t k0 = fb * FB, k1 = k0 + FB < K ? k0 + FB : K;
                /* point-major: V[xi] (channels x TL) stays in L1 for the whole block */
                for (int xi = 0; xi < 36; xi++)
                    for (int64_t k = k0; k < k1; k++) {
                        if (w->rp[k] == w->rp[k + 1]) continue; /* pruned filter: bias only */
                        float *Mk = M + ((k - k0) * 36 + xi) * TL;
                        if (T == 2) product_row(w, k, xi, V, w->nch, Mk, 2);
                        else product_row(w, k, xi, V, w->nch, Mk, 1);
                    }
                for (int64_t k = k0; k < k1; k++)
                    output_tile(g, M + (k - k0) * 36 * TL, T, ln, p->bias ? p->bias[k] : 0.0f,
                                w->rp[k] == w->rp[k + 1], y + k * lout);
            }
        }
    }
}
