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
 * column), one tile per vector lane, in chunks of T = 1..4 vectors (16T tiles;
 * the vectors are spread evenly over the chunks). Per chunk, V[36][channel][16T]
 * for every used channel is built once (each vector's patch rows read as runs of
 * contiguous floats, see segments_input: padding reads nothing), then the
 * products of sparse_wino_mm.c give M[36][filter][16T] for a block of filters,
 * and the output transform writes the tiles' output rows back as runs of
 * contiguous floats (segments_output). One or two tiles past the last full
 * vector are summed directly instead (sparse_wino_tail.c). Each output element is
 * computed by one thread in a fixed order: results do not depend on the thread
 * count.
 * F(4x4, 3x3) rounds differently from the direct sum (its transforms hold
 * factors up to 8 and 1/24): relative differences of about 1e-5 of the output's
 * magnitude are normal, as in oneDNN's own Winograd. */
#include "infer/sparse_plan.h"

#define AI static inline __attribute__((always_inline))

/* SEGMENTS: the input patches are read and the outputs written in segments (runs
 * of contiguous floats) on AVX-512 and AVX2 builds; portable builds gather and
 * scatter them lane by lane. */
#if defined(__AVX512F__) || defined(SGV_AVX2)
#define SEGMENTS 1
#else
#define SEGMENTS 0
#endif

void sgi_wino_free(struct sgi_wino *w) {
    free(w->rp);
    free(w->col);
    free(w->u);
    free(w->chans);
    free(w->seg);
    free(w->krow);
    free(w->ud);
    free(w->tcp);
    free(w->trow);
    free(w->tg9);
    memset(w, 0, sizeof *w);
}

int sgi_wino_fits(const struct sg_conv_geom *g, int is_fc) {
    return !is_fc && g->r == 3 && g->s == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && g->groups == 1 && g->c <= 65536; /* 16-bit channel positions */
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

static int64_t block_channels(const struct sg_conv_geom *g);

/* Whether filter k keeps any weight of channel c's 3x3 kernel. */
static int kernel_kept(const uint8_t *kept, int64_t C, int64_t k, int64_t c) {
    const uint8_t *kr = kept + (k * C + c) * 9;
    int any = 0;
    for (int i = 0; i < 9; i++) any |= kr[i];
    return any != 0;
}

enum sg_status sgi_wino_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept) {
    struct sgi_wino *w = &p->wino;
    const int64_t K = p->g.k, C = p->g.c;
    int64_t nnz = 0, nk = 0;
    float *g9 = NULL;       /* the raw kernels row by row, for the direct tail */
    uint16_t *ccol = NULL;  /* sparse: their channel positions */
    uint8_t *used = sgi_zalloc((size_t)C, 1);
    if (!used) return SG_ERR_NOMEM;
    for (int64_t k = 0; k < K; k++) {
        int64_t row = 0;
        for (int64_t c = 0; c < C; c++) {
            const int any = kernel_kept(kept, C, k, c);
            row += any;
            used[c] |= (uint8_t)any;
        }
        nnz += row;
        nk += row > 0;
    }
    w->rp = sgi_alloc((size_t)K + 1, sizeof *w->rp);
    w->col = sgi_alloc((size_t)nnz + 1, sizeof *w->col);
    w->chans = sgi_alloc((size_t)C, sizeof *w->chans);
    int32_t *pos = sgi_alloc((size_t)C, sizeof *pos);
    if (!w->rp || !w->col || !w->chans || !pos) {
        free(used), free(pos);
        return SG_ERR_NOMEM;
    }
    w->nch = 0;
    for (int64_t c = 0; c < C; c++) {
        pos[c] = used[c] ? w->nch : -1;
        if (used[c]) w->chans[w->nch++] = (int32_t)c;
    }
    free(used);
    /* dense rows when every kept filter uses every used channel */
    w->dense = nk > 0 && nnz == nk * w->nch;
    w->wcb = block_channels(&p->g);
    w->nb = w->nch > 0 ? (w->nch + w->wcb - 1) / w->wcb : 1;
    w->nrows = K;
    if (w->dense) {
        w->nk = nk;
        w->kp = (nk + SGI_WRB - 1) / SGI_WRB * SGI_WRB;
        w->krow = sgi_alloc((size_t)w->kp, sizeof *w->krow);
        w->ud = sgi_zalloc((size_t)36 * w->kp * w->nch + 16, sizeof *w->ud);
        g9 = sgi_zalloc((size_t)9 * w->kp * w->nch + 16, sizeof *g9);
    } else {
        w->u = sgi_alloc((size_t)nnz * 36 + 16, sizeof *w->u);
        w->seg = sgi_zalloc((size_t)w->nb * (K + 1) + 1, sizeof *w->seg);
        g9 = sgi_alloc((size_t)nnz * 9 + 16, sizeof *g9);
        ccol = sgi_alloc((size_t)nnz + 1, sizeof *ccol);
    }
    if (w->dense ? !w->krow || !w->ud || !g9 : !w->u || !w->seg || !g9 || !ccol) {
        free(pos), free(g9), free(ccol);
        return SG_ERR_NOMEM;
    }
    if (!w->dense) { /* seg[b][k]: row k's first entry in block b, the blocks end to end */
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                if (kernel_kept(kept, C, k, c)) w->seg[pos[c] / w->wcb * (K + 1) + k + 1]++;
        for (int64_t b = 0, at = 0; b < w->nb; b++)
            for (int64_t k = 0; k <= K; k++) {
                const int64_t n1 = k < K ? w->seg[b * (K + 1) + k + 1] : 0;
                w->seg[b * (K + 1) + k] = at;
                at += n1;
            }
    }
    int64_t v = 0, r = 0, fill[w->nb];
    for (int64_t k = 0; k < K; k++) {
        w->rp[k] = v;
        for (int64_t b = 0; !w->dense && b < w->nb; b++) fill[b] = w->seg[b * (K + 1) + k];
        for (int64_t c = 0; c < C; c++) {
            if (!kernel_kept(kept, C, k, c)) continue;
            if (w->dense) { /* ud[xi][r][col] */
                weight_transform(wm + (k * C + c) * 9, w->ud + r * w->nch + pos[c], w->kp * w->nch);
            } else { /* u[xi][q] at the row's next place in its block */
                const int64_t q = fill[pos[c] / w->wcb]++;
                w->col[q] = (uint16_t)pos[c]; /* position among the used channels: the row of V */
                weight_transform(wm + (k * C + c) * 9, w->u + q, nnz);
                ccol[v] = (uint16_t)pos[c];
            }
            memcpy(g9 + (w->dense ? r * w->nch + pos[c] : v) * 9, wm + (k * C + c) * 9, 9 * sizeof *g9);
            v++;
        }
        if (w->dense && v > w->rp[k]) w->krow[r++] = (int32_t)k;
    }
    for (; w->dense && r < w->kp; r++) w->krow[r] = -1;
    w->rp[K] = v;
    w->nnz = nnz;
    free(pos);
    const int64_t trows = w->dense ? w->nk : K, tne = w->dense ? w->nk * w->nch : nnz;
    const enum sg_status st = sgi_wino_tail_build(w, trows, g9, ccol);
    free(g9), free(ccol);
    if (st != SG_OK) return st;
    p->info.stored = w->dense ? w->kp * w->nch * 36 : nnz * 36;
    p->info.bytes = w->dense ? (size_t)w->kp * w->nch * 36 * 4 + (size_t)w->kp * 4
                             : (size_t)nnz * (36 * 4 + 2) + (size_t)w->nb * (K + 1) * 8;
    p->info.bytes += ((size_t)K + 1) * 8 + (size_t)C * 4 + (size_t)tne * (9 * 4 + 1) +
                     (size_t)((trows + SGI_WTRB - 1) / SGI_WTRB * (w->nch + 1)) * 8; /* the tail's */
    return SG_OK;
}

/* ---- transforms on vectors of TL tiles ---- */
/* t = B^T d along one axis: six inputs a step s apart, six outputs likewise */
AI void bt6(const sgv *d, int s, sgv *t, int ts) {
    const sgv four = sgv_set1(4.0f), two = sgv_set1(2.0f);
    const sgv d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    t[0] = sgv_fma(four, d0, sgv_fma(sgv_set1(-5.0f), d2, d4));
    t[1 * ts] = sgv_fma(sgv_set1(-4.0f), sgv_add(d1, d2), sgv_add(d3, d4));
    t[2 * ts] = sgv_fma(four, sgv_sub(d1, d2), sgv_sub(d4, d3));
    const sgv d31 = sgv_sub(d3, d1), d42 = sgv_sub(d4, d2); /* t4 = -2 (d3 - d1) + d42: 2 (d1 - d3) + d42 exactly */
    t[3 * ts] = sgv_fma(two, d31, d42);
    t[4 * ts] = sgv_fma(sgv_set1(-2.0f), d31, d42);
    t[5 * ts] = sgv_fma(four, d1, sgv_fma(sgv_set1(-5.0f), d3, d5));
}

/* y = A^T m along one axis: six inputs, four outputs */
AI void at6(const sgv *m, int s, sgv *y, int ys) {
    const sgv m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
    const sgv a = sgv_add(m1, m2), b = sgv_sub(m1, m2), c = sgv_add(m3, m4), d = sgv_sub(m3, m4);
    y[0] = sgv_add(sgv_add(m0, a), c);
    y[1 * ys] = sgv_fma(sgv_set1(2.0f), d, b);
    y[2 * ys] = sgv_fma(sgv_set1(4.0f), c, a);
    y[3 * ys] = sgv_add(sgv_fma(sgv_set1(8.0f), d, b), m5);
}

/* Tiles to lanes: tiles numbered across images (image, tile row, tile column),
 * 16 per vector. With AVX-512 and AVX2 a vector's tiles are read and written as
 * runs of side-by-side tiles (segments: one per tile row it touches, usually one
 * or two): its patch rows laid side by side are one virtual row in which lane j
 * reads floats 4j..4j+5, each segment's floats read as masked contiguous pieces
 * (AVX2: two masked 8-float loads a piece), and its outputs are written back
 * likewise, with no gathers or scatters. Portable builds go by rows (images 12
 * tiles wide or more: each vector holds side-by-side tiles of one tile row, the
 * lanes past the row's end empty) or packed, the patches gathered per lane.
 * Segments on AVX2 (2026-12-07; before, two hardware gathers per patch
 * column and the outputs scattered lane by lane): VGG-16's conv1_2 at kernel
 * density 0.3 2.0x faster, conv2_1 1.35x, conv3_1 1.2x (docs/performance.md). */
static int by_rows(const struct sg_conv_geom *g) {
#if SEGMENTS
    (void)g;
    return 0;
#else
    return (g->q + 3) / 4 >= 12;
#endif
}

static int64_t vectors_of(const struct sg_conv_geom *g, int n) {
    const int64_t th = (g->p + 3) / 4, tw = (g->q + 3) / 4;
    return by_rows(g) ? (int64_t)n * th * ((tw + SGV_W - 1) / SGV_W) : ((int64_t)n * th * tw + SGV_W - 1) / SGV_W;
}

/* Geometry of a chunk of tiles: in segments (AVX-512, AVX2), or per lane (portable
 * builds). */
struct lanes {
#if SEGMENTS
    /* Segment s of vector v holds lanes [l0[s], l0[s+1]) (the last one up to the
     * vector's last tile), side-by-side tiles of one tile row, and owns floats
     * [4 l0[s], 4 l0[s+1]) of the virtual row (the last one two more); the two
     * floats past each other segment's end are read apart (fix). */
    int nseg[4];
    int8_t l0[4][SGV_W + 1];
    int32_t sin[4][SGV_W];        /* offset of the float under virtual float 4 l0 (may be < 0) */
    int32_t sout[4][SGV_W];       /* offset of the output under virtual output float 4 l0 */
    uint8_t srows[4][SGV_W];      /* bit i: patch row i of the segment is inside the image */
    uint8_t sorows[4][SGV_W];     /* bit i: output row i of the segment exists */
    uint16_t sload[4][5][SGV_W];  /* floats of virtual vector k that segment s owns and are inside */
    uint16_t sstore[4][4][SGV_W]; /* floats of output vector q that segment s writes */
    uint16_t fix[4], fix4[4], fix5[4]; /* lanes ending a segment that is not the vector's last;
                                          those whose patch column 4, 5 is inside the image */
#else
    int32_t in[SGV_W * 4];   /* offset of the patch's top-left in its channel plane (may be < 0) */
    int32_t out[SGV_W * 4];  /* offset of the tile's top-left in the output plane */
    uint32_t rmask[6][4], cmask[6][4]; /* lanes whose patch row i / column j is inside the image */
    uint32_t omask[4][4][4];           /* lanes whose output (i, j) exists */
    int rows;          /* by rows: lane 0 of each vector is its row's first tile */
#endif
};

#if SEGMENTS
/* Bits [a, b) of a 16-lane mask, clipped to 0..16. */
static uint16_t bits16(int a, int b) {
    a = a < 0 ? 0 : a > 16 ? 16 : a;
    b = b < a ? a : b > 16 ? 16 : b;
    return (uint16_t)(((1u << b) - 1u) & ~((1u << a) - 1u));
}

/* The segments of vectors v0..v0+T-1 (ln cleared by the caller). */
static void segments_of(const struct sg_conv_geom *g, int n, int64_t v0, int T, struct lanes *ln) {
    const int64_t th = (g->p + 3) / 4, tw = (g->q + 3) / 4, per = th * tw, ntile = (int64_t)n * per;
    for (int v = 0; v < T; v++) {
        int S = 0, nl = 0, tx0[SGV_W];
        for (int l = 0; l < SGV_W; l++) {
            const int64_t t = (v0 + v) * SGV_W + l;
            if (t >= ntile) break;
            nl = l + 1;
            const int64_t img = t / per, ty = t % per / tw, tx = t % tw, r0 = 4 * ty - g->pt;
            if (l > 0 && tx > 0) continue; /* the previous lane's tile row */
            ln->l0[v][S] = (int8_t)l;
            tx0[S] = (int)tx;
            ln->sin[v][S] = (int32_t)(img * g->h * g->w + r0 * g->w + 4 * tx - g->pl);
            ln->sout[v][S] = (int32_t)(img * g->p * g->q + 4 * ty * g->q + 4 * tx);
            for (int i = 0; i < 6; i++)
                if (r0 + i >= 0 && r0 + i < g->h) ln->srows[v][S] |= (uint8_t)(1u << i);
            for (int i = 0; i < 4; i++)
                if (4 * ty + i < g->p) ln->sorows[v][S] |= (uint8_t)(1u << i);
            S++;
        }
        ln->nseg[v] = S;
        ln->l0[v][S] = (int8_t)nl;
        for (int s = 0; s < S; s++) {
            const int a0 = ln->l0[v][s], a1 = ln->l0[v][s + 1];
            const int f0 = 4 * a0, f1 = 4 * a1 + (s + 1 == S ? 2 : 0);
            /* virtual float f is image column f - f0 + 4 tx0 - pl, output column f - f0 + 4 tx0 */
            const int c0 = f0 - 4 * tx0[s] + g->pl;
            const int a = c0 > f0 ? c0 : f0, b = c0 + g->w < f1 ? c0 + g->w : f1;
            for (int k = 0; k < 5; k++) ln->sload[v][k][s] = bits16(a - 16 * k, b - 16 * k);
            const int q1 = f0 - 4 * tx0[s] + g->q < 4 * a1 ? f0 - 4 * tx0[s] + g->q : 4 * a1;
            for (int q = 0; q < 4; q++) ln->sstore[v][q][s] = bits16(f0 - 16 * q, q1 - 16 * q);
            if (s + 1 < S) { /* patch columns 4 and 5 of the segment's last tile */
                const int e = a1 - 1, col = 4 * (tx0[s] + a1 - a0) - g->pl;
                ln->fix[v] |= (uint16_t)(1u << e);
                if (col >= 0 && col < g->w) ln->fix4[v] |= (uint16_t)(1u << e);
                if (col + 1 >= 0 && col + 1 < g->w) ln->fix5[v] |= (uint16_t)(1u << e);
            }
        }
    }
}
#else
/* Each lane's patch and output offsets and masks (ln cleared by the caller). */
static void lanes_each(const struct sg_conv_geom *g, int n, int64_t v0, int T, struct lanes *ln) {
    const int64_t th = (g->p + 3) / 4, tw = (g->q + 3) / 4, per = th * tw;
    const int64_t vpr = (tw + SGV_W - 1) / SGV_W, ntile = (int64_t)n * per;
    int64_t img[SGV_W * 4], ty[SGV_W * 4], tx[SGV_W * 4];
    uint8_t ok[SGV_W * 4];
    ln->rows = by_rows(g);
    for (int l = 0; l < T * SGV_W; l++) {
        const int v = l / SGV_W;
        const uint32_t bit = 1u << (l % SGV_W);
        if (ln->rows) {
            const int64_t vv = v0 + v, rv = vv % (th * vpr);
            img[l] = vv / (th * vpr), ty[l] = rv / vpr, tx[l] = rv % vpr * SGV_W + l % SGV_W;
            ok[l] = tx[l] < tw;
        } else {
            const int64_t t = v0 * SGV_W + l;
            img[l] = t / per, ty[l] = t % per / tw, tx[l] = t % tw;
            ok[l] = t < ntile;
        }
        const int64_t r0 = 4 * ty[l] - g->pt, c0 = 4 * tx[l] - g->pl;
        if (!ok[l]) continue;
        ln->in[l] = (int32_t)(img[l] * g->h * g->w + r0 * g->w + c0);
        ln->out[l] = (int32_t)(img[l] * g->p * g->q + 4 * ty[l] * g->q + 4 * tx[l]);
        for (int i = 0; i < 6; i++) {
            if (r0 + i >= 0 && r0 + i < g->h) ln->rmask[i][v] |= bit;
            if (c0 + i >= 0 && c0 + i < g->w) ln->cmask[i][v] |= bit;
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                if (4 * ty[l] + i < g->p && 4 * tx[l] + j < g->q) ln->omask[i][j][v] |= bit;
    }
}
#endif

/* The geometry of vectors v0..v0+T-1 of tiles. */
static void lanes_of(const struct sg_conv_geom *g, int n, int64_t v0, int T, struct lanes *ln) {
    memset(ln, 0, sizeof *ln);
#if SEGMENTS
    segments_of(g, n, v0, T, ln);
#else
    lanes_each(g, n, v0, T, ln);
#endif
}

#if !SEGMENTS
/* Portable builds gather the patches and scatter the outputs lane by lane (the
 * others read and write segments). */
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

#if SEGMENTS
#if defined(__AVX512F__)
/* x with the lanes of m loaded from p (only those are read) */
AI sgv seg_load(sgv x, uint16_t m, const float *p) { return _mm512_mask_loadu_ps(x, (__mmask16)m, p); }
/* a with the lanes of m taken from b */
AI sgv seg_take(sgv a, uint16_t m, sgv b) { return _mm512_mask_mov_ps(a, (__mmask16)m, b); }
/* the lanes of m of v to p (nothing written elsewhere) */
AI void seg_store(float *p, uint16_t m, sgv v) { _mm512_mask_storeu_ps(p, (__mmask16)m, v); }

/* Lanes 0..15 of d[c], c = 0..5, from the transformed virtual row r[5]: lane j
 * takes float 4j + c (two-table permutes). */
AI void deal_out(const sgv *r, sgv *d) {
    const __m512i sh0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m512i sh1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    for (int j = 0; j < 4; j++) {
        const __m512i ix = _mm512_setr_epi32(j, 4 + j, 8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j, j, 4 + j,
                                             8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j);
        d[j] = _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_permutex2var_ps(r[0], ix, r[1]),
                                    _mm512_permutex2var_ps(r[2], ix, r[3]));
    }
    d[4] = _mm512_permutex2var_ps(d[0], sh0, r[4]);
    d[5] = _mm512_permutex2var_ps(d[1], sh1, r[4]);
}
#else
/* The 8 lanes of a 16-lane mask's half (bits 8h..8h+7) as an AVX2 lane mask. */
AI __m256i seg_half(uint16_t m, int h) { return sgi_bits8((unsigned)m >> (8 * h)); }
AI sgv seg_load(sgv x, uint16_t m, const float *p) {
    const __m256i lo = seg_half(m, 0), hi = seg_half(m, 1);
    /* masked-off lanes are not read (the address may lie outside the array) */
    return (sgv){_mm256_blendv_ps(x.lo, _mm256_maskload_ps(p, lo), _mm256_castsi256_ps(lo)),
                 _mm256_blendv_ps(x.hi, _mm256_maskload_ps((const float *)((uintptr_t)p + 32), hi),
                                  _mm256_castsi256_ps(hi))};
}
AI sgv seg_take(sgv a, uint16_t m, sgv b) {
    return (sgv){_mm256_blendv_ps(a.lo, b.lo, _mm256_castsi256_ps(seg_half(m, 0))),
                 _mm256_blendv_ps(a.hi, b.hi, _mm256_castsi256_ps(seg_half(m, 1)))};
}
AI void seg_store(float *p, uint16_t m, sgv v) {
    if (m & 255) _mm256_maskstore_ps(p, seg_half(m, 0), v.lo);
    if (m >> 8) _mm256_maskstore_ps((float *)((uintptr_t)p + 32), seg_half(m, 1), v.hi);
}

/* Two 4x4 float blocks transposed, one in each 128-bit lane of a[0..3]: lane h of
 * b[i] holds float i of lane h of a[0], a[1], a[2], a[3]. Its own inverse. */
AI void transpose4x4(const __m256 *a, __m256 *b) {
    const __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    const __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    b[0] = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    b[1] = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    b[2] = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
    b[3] = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
}

/* Components 0..3 of tiles 8h..8h+7 from the 32 floats y[0..3] (tile t's patch
 * row at floats 4t..4t+3 of the virtual row): 4x4 transposes within the 128-bit
 * lanes (tiles 8h, 8h+2, 8h+4, 8h+6 in the low lanes, the odd ones in the high),
 * then the lanes interleaved into tile order. */
AI void deal8(const __m256 *y, __m256 *d) {
    __m256 c[4];
    transpose4x4(y, c);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int k = 0; k < 4; k++) d[k] = _mm256_permutevar8x32_ps(c[k], order);
}

/* Lanes 0..15 of d[c], c = 0..5, from the transformed virtual row r[5]: lane j
 * takes float 4j + c; c = 4, 5 are c = 0, 1 one lane on (the last lane from
 * floats 64, 65). */
AI void deal_out(const sgv *r, sgv *d) {
    const __m256 y0[4] = {r[0].lo, r[0].hi, r[1].lo, r[1].hi}, y1[4] = {r[2].lo, r[2].hi, r[3].lo, r[3].hi};
    __m256 lo[4], hi[4];
    deal8(y0, lo);
    deal8(y1, hi);
    for (int k = 0; k < 4; k++) d[k] = (sgv){lo[k], hi[k]};
    const __m256i up = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    for (int k = 0; k < 2; k++) {
        /* lane j of the low half: lane j+1 of lo[k], lane 7: lane 0 of hi[k]; of the
         * high half: lane j+1 of hi[k], lane 7: float 64 + k of the row */
        const __m256 a = _mm256_permutevar8x32_ps(lo[k], up), b = _mm256_permutevar8x32_ps(hi[k], up);
        const __m256 e = _mm256_permutevar8x32_ps(r[4].lo, _mm256_set1_epi32(k));
        d[4 + k] = (sgv){_mm256_blend_ps(a, b, 0x80), _mm256_blend_ps(b, e, 0x80)};
    }
}
#endif

/* V of vector v, its 36 points xs floats apart. The patch rows of its 16 tiles,
 * laid side by side, are one virtual row of 66 floats in which lane j's patch
 * row is floats 4j..4j+5; each segment (side-by-side tiles of one tile row) is
 * read into it as masked contiguous pieces (floats outside the image read
 * nothing and are 0). The column transform B^T d runs on the virtual rows'
 * five vectors as they are, and each of its six rows is then dealt out to the
 * lanes for the row transform: the same operations on each lane's values as
 * dealing out first, without spilling d[36] (0.6x the time per vector,
 * isolated). The two floats past the end of each segment but the last, which
 * the next segment's first tile takes in the virtual row, are read into lanes
 * of their own, transformed alike and put in place of columns 4 and 5. */
AI void segments_input(const struct sg_conv_geom *g, const float *xc, const struct lanes *ln, int v, float *Vv,
                       int64_t xs) {
    const int S = ln->nseg[v];
    sgv R[6][5], F4[6], F5[6];
    _Pragma("GCC unroll 5") for (int k = 0; k < 5; k++) {
        sgv X[6], t[6];
        for (int i = 0; i < 6; i++) X[i] = sgv_zero();
        for (int s = 0; s < S; s++) {
            const uint16_t m = ln->sload[v][k][s];
            if (!m) continue;
            const float *b = xc + ln->sin[v][s] + 16 * k - 4 * ln->l0[v][s];
            for (int i = 0; i < 6; i++)
                if (ln->srows[v][s] >> i & 1) X[i] = seg_load(X[i], m, b + (int64_t)i * g->w);
        }
        bt6(X, 1, t, 1);
        for (int a = 0; a < 6; a++) R[a][k] = t[a];
    }
    const uint16_t fix = ln->fix[v];
    if (fix) {
        sgv X4[6], X5[6];
        for (int i = 0; i < 6; i++) X4[i] = X5[i] = sgv_zero();
        for (int s = 0; s + 1 < S; s++) {
            const int e = ln->l0[v][s + 1] - 1, len = e + 1 - ln->l0[v][s];
            const uint16_t m4 = (uint16_t)(ln->fix4[v] & (1u << e)), m5 = (uint16_t)(ln->fix5[v] & (1u << e));
            const float *b = xc + ln->sin[v][s] + 4 * len - e; /* lane e: patch column 4 of the last tile */
            for (int i = 0; i < 6; i++)
                if (ln->srows[v][s] >> i & 1) {
                    X4[i] = seg_load(X4[i], m4, b + (int64_t)i * g->w);
                    X5[i] = seg_load(X5[i], m5, b + (int64_t)i * g->w + 1);
                }
        }
        bt6(X4, 1, F4, 1);
        bt6(X5, 1, F5, 1);
    }
    _Pragma("GCC unroll 6") for (int a = 0; a < 6; a++) {
        sgv d[6], o[6];
        deal_out(R[a], d);
        if (fix) {
            d[4] = seg_take(d[4], fix, F4[a]);
            d[5] = seg_take(d[5], fix, F5[a]);
        }
        bt6(d, 1, o, 1);
        for (int b = 0; b < 6; b++) sgv_store(Vv + (a * 6 + b) * xs, o[b]);
    }
}
#endif

/* V[xi][j][TL] for channel plane xc (position j among the used channels). */
static void input_tile(const struct sg_conv_geom *g, const float *xc, const struct lanes *ln,
                       int T, int64_t nch, int64_t j, float *V, const float *xn) {
    const int64_t xs = sgi_wino_pad(nch * T * SGV_W);
    for (int v = 0; v < T; v++) {
        float *Vv = V + j * (T * SGV_W) + v * SGV_W;
#if SEGMENTS
        if (xn) /* the next channel's patch rows under these tiles, a plane ahead */
            for (int s = 0; s < ln->nseg[v]; s++) {
                const int len = 4 * (ln->l0[v][s + 1] - ln->l0[v][s]) + 2;
                for (int i = 0; i < 6; i++)
                    if (ln->srows[v][s] >> i & 1) {
                        const float *r = xn + ln->sin[v][s] + (int64_t)i * g->w;
                        for (int f = 0; f < len; f += 16) __builtin_prefetch(r + f, 0, 3);
                        __builtin_prefetch(r + len - 1, 0, 3);
                    }
            }
        segments_input(g, xc, ln, v, Vv, xs);
#else
        (void)xn;
        sgv d[36], t[36];
        for (int i = 0; i < 6; i++)
            for (int q = 0; q < 6; q++)
                d[i * 6 + q] = gather16(xc, ln->in + v * SGV_W, i * g->w + q, ln->rmask[i][v] & ln->cmask[q][v]);
        for (int q = 0; q < 6; q++) bt6(d + q, 6, t + q, 6); /* columns: t = B^T d */
        for (int a = 0; a < 6; a++) bt6(t + a * 6, 1, d + a * 6, 1); /* rows: V = t B */
        for (int xi = 0; xi < 36; xi++) sgv_store(Vv + xi * xs, d[xi]);
#endif
    }
}

#if SEGMENTS
/* Row i of the 16 tiles' outputs (a, b, c, d: columns 0..3, one tile per lane)
 * interleaved: o[q] holds tiles 4q..4q+3, each as its 4 columns. */
#if defined(__AVX512F__)
static inline void interleave4(sgv a, sgv b, sgv c, sgv d, sgv o[4]) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i q0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i q1 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const sgv ab0 = _mm512_permutex2var_ps(a, lo, b), ab1 = _mm512_permutex2var_ps(a, hi, b);
    const sgv cd0 = _mm512_permutex2var_ps(c, lo, d), cd1 = _mm512_permutex2var_ps(c, hi, d);
    o[0] = _mm512_permutex2var_ps(ab0, q0, cd0);
    o[1] = _mm512_permutex2var_ps(ab0, q1, cd0);
    o[2] = _mm512_permutex2var_ps(ab1, q0, cd1);
    o[3] = _mm512_permutex2var_ps(ab1, q1, cd1);
}
#else
/* deal8 undone: the columns of tiles 0..7 (x[0..3], tile j in lane j) to the
 * tiles' 4 floats each, in tile order (y[0]: tiles 0 and 1, ... y[3]: 6 and 7). */
AI void undeal8(const __m256 *x, __m256 *y) {
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7); /* even tiles low, odd high */
    __m256 c[4];
    for (int k = 0; k < 4; k++) c[k] = _mm256_permutevar8x32_ps(x[k], order);
    transpose4x4(c, y);
}
static inline void interleave4(sgv a, sgv b, sgv c, sgv d, sgv o[4]) {
    const __m256 xl[4] = {a.lo, b.lo, c.lo, d.lo}, xh[4] = {a.hi, b.hi, c.hi, d.hi};
    __m256 yl[4], yh[4];
    undeal8(xl, yl);
    undeal8(xh, yh);
    o[0] = (sgv){yl[0], yl[1]}, o[1] = (sgv){yl[2], yl[3]};
    o[2] = (sgv){yh[0], yh[1]}, o[3] = (sgv){yh[2], yh[3]};
}
#endif

/* The column transform of vector v's 36 points (ms floats apart): t = A^T m. */
AI void out_columns(const float *M, int64_t ms, int v, sgv t[4][6]) {
    _Pragma("GCC unroll 6") for (int q = 0; q < 6; q++) {
        sgv m[6], o[4];
        for (int i = 0; i < 6; i++) m[i] = sgv_load(M + (i * 6 + q) * ms + v * SGV_W);
        at6(m, 1, o, 1);
        for (int a = 0; a < 4; a++) t[a][q] = o[a];
    }
}

/* Y = A^T M A of vector v, column transform first, then one output row at a
 * time: the row's four columns interleaved into the virtual output row (lane
 * j's outputs at floats 4j..4j+3) and written by masked stores, a run of
 * contiguous floats per segment. */
AI void segments_output(const struct sg_conv_geom *g, const float *M, int64_t ms, const struct lanes *ln, int v,
                        float bias, float *yk) {
    const int S = ln->nseg[v];
    sgv t[4][6];
    out_columns(M, ms, v, t);
    const sgv b = sgv_set1(bias);
    for (int i = 0; i < 4; i++) {
        sgv y[4], o[4];
        at6(t[i], 1, y, 1);
        interleave4(sgv_add(y[0], b), sgv_add(y[1], b), sgv_add(y[2], b), sgv_add(y[3], b), o);
        for (int s = 0; s < S; s++) {
            if (!(ln->sorows[v][s] >> i & 1)) continue;
            float *d = yk + ln->sout[v][s] + (int64_t)i * g->q - 4 * ln->l0[v][s]; /* virtual float 0 */
            for (int q = 0; q < 4; q++)
                if (ln->sstore[v][q][s]) seg_store(d + 16 * q, ln->sstore[v][q][s], o[q]);
        }
    }
}
#endif

static void output_tile(const struct sg_conv_geom *g, const float *M, int64_t ms, int T,
                        const struct lanes *ln, float bias, float *yk) {
    for (int v = 0; v < T; v++) {
#if SEGMENTS
        segments_output(g, M, ms, ln, v, bias, yk);
#else
        sgv m[36], t[24], y[16];
        const sgv b = sgv_set1(bias);
        for (int xi = 0; xi < 36; xi++) m[xi] = sgv_load(M + xi * ms + v * SGV_W);
        for (int q = 0; q < 6; q++) at6(m + q, 6, t + q, 6);     /* columns: t[4][6] */
        for (int a = 0; a < 4; a++) at6(t + a * 6, 1, y + a * 4, 1); /* rows: y[4][4] */
        for (int i = 0; i < 4; i++) /* y[i][j] of each lane whose output (i, j) exists */
            for (int j = 0; j < 4; j++)
                if (ln->omask[i][j][v])
                    scatter16(yk, ln->out + v * SGV_W, i * g->q + j, ln->omask[i][j][v], sgv_add(y[i * 4 + j], b));
#endif
    }
}

/* Vectors of tiles per chunk, at most 4: V[36][channels][16T] of a chunk is
 * written once and read by every filter block. */
static int max_vectors(int64_t nch) {
    (void)nch; /* 4 measured fastest at 64 to 512 channels */
    return 4;
}

/* Filters (rows) per block: each point's V[xi] is read once per block, and the
 * block's M[xi] (FB x 16T) stays in L2 while V[xi] streams past it. Sparse rows:
 * 256 filters per block read a 56x56 layer's V (2.4 MB at 256 channels, more than
 * L2) once instead of twice: 0.93-0.96x the time of 128 on VGG-16's conv3_x shapes
 * at kernel density 0.3 (fastest of 100 runs, interleaved A/B), the same on the
 * layers with 128 filters or fewer. */
#define FBS 256
#define FBD 96 /* a multiple of SGI_WRB */

size_t sgi_wino_scratch(const struct sg_conv_plan *p) {
    const size_t TL = (size_t)max_vectors(p->wino.nch) * SGV_W;
    return sgi_round16((size_t)36 * sgi_wino_pad(p->wino.nch * TL)) + sgi_round16((size_t)36 * sgi_wino_pad(FBS * TL)) +
           sgi_round16(sizeof(struct lanes) / sizeof(float) + 1);
}

/* Rows of the plan's products: dense rows (the kept filters, padded to SGI_WRB)
 * or every filter. */
static int64_t stored_rows(const struct sg_conv_plan *p) { return p->wino.dense ? p->wino.kp : p->g.k; }

/* Products of rows [r0, r1) (filters, or dense rows: r0 a multiple of the
 * register block) at the points [x0, x1) into M[xi][row - r0], ms apart. */
static void products(const struct sgi_wino *w, const float *V, float *M, int64_t ms, int T, int64_t r0,
                     int64_t r1, int x0, int x1) {
    if (w->dense)
        sgi_wino_dense_product(w, r0, r1, x0, x1, V, M, ms, T);
    else
        sgi_wino_sparse_product(w, r0, r1, x0, x1, V, M, ms, T);
}

/* Output transforms of rows [r0, r1) from M[xi][row - r0] (ms apart). */
static void outputs(const struct sg_conv_plan *p, const float *M, int64_t ms, int T, const struct lanes *ln,
                    int64_t r0, int64_t r1, int64_t lout, float *y) {
    const struct sgi_wino *w = &p->wino;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t k = w->dense ? w->krow[r] : w->rp[r] != w->rp[r + 1] ? r : -1;
        if (k >= 0)
            output_tile(&p->g, M + (r - r0) * (int64_t)T * SGV_W, ms, T, ln, p->bias ? p->bias[k] : 0.0f,
                        y + k * lout);
    }
}

/* Products and output transforms of every row for the chunk whose V and lanes
 * are given, a block of rows at a time. */
static void rows_of_chunk(const struct sg_conv_plan *p, const float *V, float *M, int T,
                          const struct lanes *ln, int64_t lout, float *y) {
    const struct sgi_wino *w = &p->wino;
    const int64_t fb = w->dense ? FBD : FBS, rows = stored_rows(p);
    const int64_t ms = sgi_wino_pad(fb * T * SGV_W);
    for (int64_t b0 = 0; b0 < rows; b0 += fb) {
        const int64_t b1 = b0 + fb < rows ? b0 + fb : rows;
        products(w, V, M, ms, T, b0, b1, 0, 36);
        outputs(p, M, ms, T, ln, b0, b1, lout, y);
    }
}

/* The tiles past the last full vector that are summed directly: one or two
 * (SGI_WTAIL), after at least one full vector, when the tiles are packed; else 0. */
static int tail_tiles(const struct sg_conv_geom *g, int64_t ntile) {
    return !by_rows(g) && ntile > SGV_W && ntile % SGV_W <= SGI_WTAIL ? (int)(ntile % SGV_W) : 0;
}

/* Channels per block of the sparse rows for the chunks of a batch of one: a
 * block's V[xi] (16T floats per channel) at most 32 KB, a multiple of 64. */
static int64_t block_channels(const struct sg_conv_geom *g) {
    const int64_t ntile = ((g->p + 3) / 4) * ((g->q + 3) / 4);
    const int64_t nvec = tail_tiles(g, ntile) ? ntile / SGV_W : vectors_of(g, 1);
    const int64_t nchunk = (nvec + max_vectors(0) - 1) / max_vectors(0), T = (nvec + nchunk - 1) / nchunk;
    const int64_t b = 32768 / (T * SGV_W * 4) / 64 * 64;
    return b < 64 ? 64 : b;
}

/* Chunks of T = 1..4 vectors of tiles (vectors [c*nvec/nchunk, (c+1)*nvec/nchunk)),
 * and the tail: the ntail <= SGI_WTAIL tiles from t0 on past the last full vector,
 * summed directly (sparse_wino_tail.c) when the tiles are packed 16 per vector. */
struct chunks {
    int64_t nvec, nchunk, t0;
    int nt, whole, ntail;
};

static struct chunks chunks_of(const struct sg_conv_plan *p, int n, int nthreads) {
    const struct sg_conv_geom *g = &p->g;
    struct chunks c;
    const int64_t ntile = (int64_t)n * ((g->p + 3) / 4) * ((g->q + 3) / 4), tmax = max_vectors(p->wino.nch);
    c.ntail = tail_tiles(g, ntile);
    c.nvec = c.ntail ? ntile / SGV_W : vectors_of(g, n);
    c.t0 = c.nvec * SGV_W;
    c.nchunk = (c.nvec + tmax - 1) / tmax;
    c.nt = (double)p->wino.nnz * 36.0 * (double)ntile < 262144.0 ? 1 : nthreads;
    c.whole = c.nchunk >= 2 * (int64_t)c.nt;
    return c;
}

/* The shared mode's M (every row of a chunk at the 36 points), then the tail's
 * windows. */
static size_t shared_m(const struct sg_conv_plan *p, struct chunks c) {
    return c.whole ? 0 : sgi_round16((size_t)36 * sgi_wino_pad(stored_rows(p) * max_vectors(p->wino.nch) * SGV_W));
}

size_t sgi_wino_shared(const struct sg_conv_plan *p, int n, int nthreads) {
    const struct chunks c = chunks_of(p, n, nthreads);
    return shared_m(p, c) + (c.ntail ? sgi_round16((size_t)p->wino.nch * c.ntail * 9 * SGV_W) : 0);
}

/* Floats [i0, i1) of the output planes of the pruned filters (bias only), the
 * planes laid end to end in filter order, written in order as whole rows of
 * vectors. Written tile by tile with the kept filters (each chunk's tiles of
 * every pruned plane: dozens of scattered store streams) they took half of an
 * RGB layer's time at filter density 0.3 (VGG-16 conv1_1: 45 of 64 planes of
 * 224x224, about 0.35 of 1.1 ms); once per run, in order, the prefetchers keep up.
 * (Streaming stores measured no faster, and would leave the planes out of the
 * cache for the next layer.) */
static void pruned_fill(const struct sg_conv_plan *p, int64_t lout, int64_t i0, int64_t i1, float *y) {
    int64_t base = 0;
    for (int64_t k = 0; k < p->g.k && base < i1; k++) {
        if (p->wino.rp[k] != p->wino.rp[k + 1]) continue;
        const int64_t a = i0 > base ? i0 - base : 0, b = i1 - base < lout ? i1 - base : lout;
        base += lout;
        if (a >= b) continue;
        float *d = y + k * lout;
        const float bias = p->bias ? p->bias[k] : 0.0f;
        const sgv bv = sgv_set1(bias);
        int64_t i = a;
        for (; i + SGV_W <= b; i += SGV_W) sgv_storeu(d + i, bv);
        for (; i < b; i++) d[i] = bias;
    }
}

/* Takes a chunk from a range [lo, hi) packed as lo | hi << 32: the first one
 * (the owner) or the last one (another thread); -1 when it is empty. */
static int64_t take_chunk(uint64_t *range, int first) {
    uint64_t cur = __atomic_load_n(range, __ATOMIC_ACQUIRE);
    for (;;) {
        const uint64_t lo = cur & 0xFFFFFFFFu, hi = cur >> 32;
        if (lo >= hi) return -1;
        const uint64_t next = first ? (lo + 1) | hi << 32 : lo | (hi - 1) << 32;
        if (__atomic_compare_exchange_n(range, &cur, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int64_t)(first ? lo : hi - 1);
    }
}

/* The next whole chunk for thread tid: its own range in order (consecutive tile
 * rows share input rows in its L2, and each channel plane is read forward), then
 * the last chunks of the range with the most left. */
static int64_t next_chunk(uint64_t *own, int nt, int tid) {
    int64_t c = tid < nt ? take_chunk(&own[tid], 1) : -1;
    while (c < 0) {
        int best = -1;
        uint64_t most = 0;
        for (int i = 0; i < nt; i++) {
            const uint64_t r = __atomic_load_n(&own[i], __ATOMIC_ACQUIRE), lo = r & 0xFFFFFFFFu, hi = r >> 32;
            if (hi > lo && hi - lo > most) most = hi - lo, best = i;
        }
        if (best < 0) return -1;
        c = take_chunk(&own[best], 0);
    }
    return c;
}

/* Two ways to share the work. With at least two chunks of tiles per thread, each
 * thread takes whole chunks (its own V, every filter): its own consecutive ones
 * first, then the others' last ones (next_chunk). With fewer (small images,
 * batch 1) the threads share each chunk in three steps, each split finely and
 * taken as the threads come: the input transform by channels into one V, the
 * products by Winograd point into one M (the 36 points are equal work and each
 * point reads its own part of V and of the weights, once), then the output
 * transforms by rows. Halves fixed in advance were as slow as the slower thread:
 * on this shared machine one core now and then runs 20-50% slower for seconds,
 * and the other then waited up to a third of the layer's time. No thread repeats
 * another's work, and each output is computed by one thread in a fixed order:
 * results do not depend on the thread count. */
void sgi_wino_run(const struct sg_conv_plan *p, int n, const float *x, float *y, float *scratch,
                  int nthreads) {
    const struct sg_conv_geom *g = &p->g;
    const struct sgi_wino *w = &p->wino;
    const int64_t lin = (int64_t)n * g->h * g->w, lout = (int64_t)n * g->p * g->q;
    const struct chunks c = chunks_of(p, n, nthreads);
    const int64_t nvec = c.nvec, nchunk = c.nchunk, tmax = max_vectors(w->nch);
    const size_t per = sgi_wino_scratch(p), vlen = sgi_round16((size_t)36 * sgi_wino_pad(w->nch * tmax * SGV_W)),
                 mlen = sgi_round16((size_t)36 * sgi_wino_pad(FBS * tmax * SGV_W));
    int64_t npruned = 0;
    for (int64_t k = 0; k < g->k; k++) npruned += w->rp[k] == w->rp[k + 1];
    uint64_t own[c.nt]; /* whole chunks: thread i's range [i*nchunk/nt, (i+1)*nchunk/nt) */
    for (int i = 0; i < c.nt; i++)
        own[i] = (uint64_t)(i * nchunk / c.nt) | (uint64_t)((i + 1) * nchunk / c.nt) << 32;
#pragma omp parallel num_threads(c.nt)
    {
        int tid, team;
        sgi_omp_team(&tid, &team);
        float *V = scratch + (size_t)tid * per, *M = V + vlen;
        float *Wt = scratch + (size_t)nthreads * per + shared_m(p, c); /* the tail's windows */
        const int64_t wst = (int64_t)c.ntail * 9 * SGV_W, rows = w->dense ? w->nk : g->k; /* (not the padding) */
        struct lanes *ln = (struct lanes *)(void *)(M + mlen);
        if (npruned) { /* the pruned filters' planes, an equal share per thread */
            const int64_t tot = npruned * lout;
            pruned_fill(p, lout, tot * tid / team, tot * (tid + 1) / team, y);
        }
        if (c.whole) {
            if (c.ntail) {
#pragma omp for schedule(static)
                for (int64_t j = 0; j < w->nch; j++)
                    sgi_wino_tail_windows(g, x + (int64_t)w->chans[j] * lin, c.t0, c.ntail, Wt + j * wst);
            }
            for (int64_t chunk; (chunk = next_chunk(own, c.nt, tid)) >= 0;) {
                const int64_t v0 = chunk * nvec / nchunk, v1 = (chunk + 1) * nvec / nchunk;
                const int T = (int)(v1 - v0);
                lanes_of(g, n, v0, T, ln);
                for (int64_t j = 0; j < w->nch; j++)
                    input_tile(g, x + (int64_t)w->chans[j] * lin, ln, T, w->nch, j, V,
                               j + 1 < w->nch ? x + (int64_t)w->chans[j + 1] * lin : NULL);
                rows_of_chunk(p, V, M, T, ln, lout, y);
            }
            if (c.ntail) { /* taken as the threads finish their chunks */
#pragma omp for schedule(dynamic, 1) nowait
                for (int64_t r0 = 0; r0 < rows; r0 += SGI_WTRB) sgi_wino_tail_rows(p, n, r0, c.ntail, c.t0, Wt, y);
            }
        } else {
            float *Vs = scratch, *Ms = scratch + (size_t)nthreads * per; /* shared */
            for (int64_t chunk = 0; chunk < nchunk; chunk++) {
                const int64_t v0 = chunk * nvec / nchunk, v1 = (chunk + 1) * nvec / nchunk;
                const int T = (int)(v1 - v0);
                const int64_t ms = sgi_wino_pad(stored_rows(p) * T * SGV_W);
                lanes_of(g, n, v0, T, ln);
#pragma omp for schedule(dynamic, 8)
                for (int64_t j = 0; j < w->nch; j++) {
                    input_tile(g, x + (int64_t)w->chans[j] * lin, ln, T, w->nch, j, Vs,
                               j + 1 < w->nch ? x + (int64_t)w->chans[j + 1] * lin : NULL);
                    if (c.ntail && chunk == 0)
                        sgi_wino_tail_windows(g, x + (int64_t)w->chans[j] * lin, c.t0, c.ntail, Wt + j * wst);
                }
                /* the last chunk's products with the tail's blocks of rows, taken
                 * first: the tail streams its weights from memory while the other
                 * threads compute (the windows: cut with chunk 0's V) */
                const int ntb = c.ntail && chunk == nchunk - 1 ? (int)((rows + SGI_WTRB - 1) / SGI_WTRB) : 0;
                const int xp = sgi_wino_points_per_pass(w, T); /* points per item */
#pragma omp for schedule(dynamic, 1)
                for (int i = 0; i < ntb + 36 / xp; i++) {
                    if (i < ntb)
                        sgi_wino_tail_rows(p, n, (int64_t)i * SGI_WTRB, c.ntail, c.t0, Wt, y);
                    else
                        products(w, Vs, Ms, ms, T, 0, rows, (i - ntb) * xp, (i - ntb + 1) * xp);
                }
#pragma omp for schedule(dynamic, 1)
                for (int64_t r0 = 0; r0 < rows; r0 += 16)
                    outputs(p, Ms + r0 * T * SGV_W, ms, T, ln, r0, r0 + 16 < rows ? r0 + 16 : rows, lout, y);
                /* (each loop's closing barrier: V and M are complete before they
                 * are read, and read before the next chunk replaces them) */
            }
        }
    }
}
