/* Stride-1 convolutions in image lanes, dense or on a list of kept kernels (a kernel
 * mask, or every kernel of a layer that a filter or channel mask thinned): the layers
 * whose kernels do not go through Winograd (LeNet-5's 5x5 conv2, any 5x5 or 7x7 layer).
 * im2col copies each input value R*S times and col2im adds the copies back; on a
 * small layer that traffic, not the products, bounded the passes. Here the batch is
 * cut into groups of 16 samples and each group's planes are turned (16x16 register
 * transposes) so that one AVX-512 vector holds one pixel of the 16 samples ("cells":
 * x[c][h][w][lane]). A convolution is then a direct one on cells: every multiply-add
 * uses all lanes, needs no copy of the input and no border test, and a kept kernel
 * costs its R*S*P*Q multiply-adds per group, a removed one nothing.
 *
 *   forward  y[k][p][q]  = sum over c kept by k (ascending), r, s of
 *                          w[k][c][r][s] x[c][p+r][q+s]     (x zero-padded)
 *   dgrad    dx[c][i][j] += sum over k keeping c (ascending), r, s with
 *                          (i-r, j-s) an output: w[k][c][r][s] dy[k][i-r][j-s]
 *   wgrad    dw[k][c][r][s] = sum over groups, p, q, lanes of dy[k][p][q] x[c][p+r][q+s]
 *
 * Every output cell is one multiply-add chain from 0 in a fixed order, and every
 * weight gradient is summed group by group in its own vectors and then across the
 * lanes: the same bits whatever the thread count (threads take whole planes or
 * kernels), and a removed kernel's products (exact zeros) change no sum, so the kept
 * lists give the dense pass's bits. The order differs from the im2col path's: equal
 * within rounding (tests/test_conv_lanes.c against plain loops in double,
 * tests/test_conv_kernel.c against the dense masked kernels). AVX-512 builds.
 *
 * A one-channel layer on the network input with a 2x2 max pool after it (LeNet-5's
 * conv1; sgi_conv_pool_forward) runs its forward here too, each output plane pooled in
 * cells (a vector max over 16 samples at once) and only the pooled plane and its argmax
 * turned back: the direct path's chains in its order (taps from 0, then the bias), so
 * its bits, without its wide rows (Q + S - 1 columns computed for Q) or a pass over the
 * output plane for the pool. Its weight gradient stays on the direct path (conv.c). */
#include "core/sgi_kv.h"
#include "nn/ops.h"

#if SGI_KV && defined(__AVX512F__)
#define LANES 1
#else
#define LANES 0
#endif

/* Output blocks: QB cells of a row (rows of 2 in the forward). The block width is
 * the one of 8..4 that covers a row with the fewest cells past its end. */
static int block_of(int q) {
    int best = 8, waste = 1 << 30;
    for (int b = 8; b >= 4; b--) {
        const int w = (q + b - 1) / b * b - q;
        if (w < waste) best = b, waste = w;
    }
    return best;
}

/* The layout of one layer's cells: Qf the forward's padded output width (a multiple
 * of its block), Qd the output gradient's row (Qf rounded up to 4, the weight
 * gradient's step; zeros past Q), WI the input rows' width (Qd + S - 1), Hp the
 * padded input height, WO the input gradient's padded rows (Qf + S - 1). */
struct lay {
    int qb, qf, qd, wi, hp, wo, ng;
    size_t xplane, dplane, xsize, dsize, tbuf, lists;
};

static struct lay lay_of(const struct sg_conv_geom *g) {
    struct lay l;
    l.qb = block_of(g->q);
    l.qf = (g->q + l.qb - 1) / l.qb * l.qb;
    l.qd = (l.qf + 3) & ~3;
    l.wi = l.qd + g->s - 1;
    l.hp = g->p + g->r - 1;
    l.wo = l.qf + g->s - 1;
    l.ng = (g->n + 15) / 16;
    l.xplane = (size_t)l.hp * l.wi * 16;
    l.dplane = (size_t)g->p * l.qd * 16;
    l.xsize = (size_t)l.ng * g->c * l.xplane;
    l.dsize = (size_t)l.ng * g->k * l.dplane;
    const size_t o = (size_t)g->p * l.qf, d = (size_t)l.hp * l.wo;
    /* and room for a 2x2 pool's cells (values and argmax) after an output plane */
    l.tbuf = (o > d ? o : d) * 16 + (size_t)(g->p / 2) * (g->q / 2) * 32 + 64;
    l.lists = 2 * (size_t)g->k * g->c + g->k + g->c + 2 + 16;
    return l;
}

static int g_lanes_on = 1;

void sgi_conv_lanes_enable(int on) { g_lanes_on = on; }

/* the shapes the lanes' kernels take (any number of channels) */
static int shape_ok(const struct sg_conv_geom *g) {
#if LANES
    return g_lanes_on && g->groups == 1 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           (g->s == 3 || g->s == 5 || g->s == 7) && g->r >= 1 && g->r <= 7 && g->pt < g->r &&
           g->pb < g->r && g->pl < g->s && g->pr < g->s && g->p >= 1 && g->q >= 1;
#else
    (void)g;
    return 0;
#endif
}

int sgi_conv_lanes_ok(const struct sg_conv_geom *g) { return g->c > 1 && shape_ok(g); }

int sgi_conv_lanes_pool_ok(const struct sg_conv_geom *g) { return g->c == 1 && shape_ok(g); }

size_t sgi_conv_lanes_workspace(const struct sg_conv_geom *g, int threads) {
    if (!shape_ok(g)) return 0;
    const struct lay l = lay_of(g);
    return l.xsize + l.dsize + (size_t)(threads < 1 ? 1 : threads) * l.tbuf + l.lists + 64;
}

#if LANES
/* ---- turning 16 samples' planes into cells and back ---- */

/* 16 rows of 16 floats turned: r[m] lane l <- r[l] lane m */
KINL void tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[4b + m] lane-quarter L: column 4L + m of rows 4b..4b+3 */
    for (int m = 0; m < 4; m++) {
        const __m512 a = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
        const __m512 b = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
        const __m512 c = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
        t[m] = _mm512_shuffle_f32x4(a, c, 0x88);      /* column m */
        t[8 + m] = _mm512_shuffle_f32x4(a, c, 0xDD);  /* column 8 + m */
        t[4 + m] = _mm512_shuffle_f32x4(b, d, 0x88);  /* column 4 + m */
        t[12 + m] = _mm512_shuffle_f32x4(b, d, 0xDD); /* column 12 + m */
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Positions t of a plane of n floats (sample l's at src + l ld, nl samples) into
 * cells: cell of position t at dst + 16 cell(t), where position t = row * w + col
 * goes to cell (row + r0) * wc + col + c0; lanes past nl 0. */
static void cells_in(const float *src, size_t ld, int nl, int h, int w, float *dst, int wc, int r0,
                     int c0) {
    const int n = h * w;
    __m512 v[16];
    for (int t0 = 0; t0 < n; t0 += 16) {
        const int m = n - t0 < 16 ? n - t0 : 16;
        const __mmask16 mk = (__mmask16)((1u << m) - 1);
        for (int l = 0; l < 16; l++)
            v[l] = l < nl ? _mm512_maskz_loadu_ps(mk, src + (size_t)l * ld + t0) : _mm512_setzero_ps();
        tr16(v);
        for (int i = 0; i < m; i++) {
            const int t = t0 + i;
            _mm512_storeu_ps(dst + 16 * ((size_t)(t / w + r0) * wc + t % w + c0), v[i]);
        }
    }
}

/* The reverse: cells (row stride wc cells, first at (r0, c0)) of an h x w plane
 * to nl samples' planes (dst + l ld), written or added to. */
static void cells_out(const float *src, int wc, int r0, int c0, int h, int w, float *dst,
                      size_t ld, int nl, int add) {
    const int n = h * w;
    __m512 v[16];
    for (int t0 = 0; t0 < n; t0 += 16) {
        const int m = n - t0 < 16 ? n - t0 : 16;
        const __mmask16 mk = (__mmask16)((1u << m) - 1);
        for (int i = 0; i < 16; i++) {
            const int t = t0 + (i < m ? i : 0);
            v[i] = _mm512_loadu_ps(src + 16 * ((size_t)(t / w + r0) * wc + t % w + c0));
        }
        tr16(v);
        for (int l = 0; l < nl; l++) {
            float *d = dst + (size_t)l * ld + t0;
            const __m512 o = add ? _mm512_add_ps(_mm512_maskz_loadu_ps(mk, d), v[l]) : v[l];
            _mm512_mask_storeu_ps(d, mk, o);
        }
    }
}

/* zero cells [a, b) of each of rows rows of a plane (row stride wc cells) */
static void zero_cols(float *p, int rows, int wc, int a, int b) {
    if (a >= b) return;
    for (int i = 0; i < rows; i++) memset(p + 16 * ((size_t)i * wc + a), 0, (size_t)(b - a) * 64);
}

/* group gi's channel c of x (channel-major, N samples) into its padded cell plane */
static void x_plane_in(const struct sg_conv_geom *g, const struct lay *l, const float *x, int gi,
                       int c, float *xp) {
    const int n0 = gi * 16, nl = g->n - n0 < 16 ? g->n - n0 : 16;
    const size_t hw = (size_t)g->h * g->w;
    memset(xp, 0, (size_t)g->pt * l->wi * 64);
    const int below = l->hp - g->pt - g->h; /* rows past the plane: pb and any more */
    memset(xp + 16 * (size_t)(g->pt + g->h) * l->wi, 0, (size_t)below * l->wi * 64);
    float *in = xp + 16 * (size_t)g->pt * l->wi;
    zero_cols(in, g->h, l->wi, 0, g->pl);
    zero_cols(in, g->h, l->wi, g->pl + g->w, l->wi);
    cells_in(x + (size_t)c * g->n * hw + (size_t)n0 * hw, hw, nl, g->h, g->w, in, l->wi, 0, g->pl);
}

/* the input's cells, channels that no kept kernel reads left out */
static void x_cells(const struct sg_conv_geom *g, const struct lay *l, const float *x,
                    const struct sgi_kept *kp, float *xc, int threads) {
    const int items = l->ng * g->c;
    SGI_PAR_FOR(threads, for (int it = 0; it < items; it++) {
        const int gi = it / g->c, c = it % g->c;
        if (kp->bp[c] < kp->bp[c + 1])
            x_plane_in(g, l, x, gi, c, xc + ((size_t)gi * g->c + c) * l->xplane);
    });
}

/* ---- the products ---- */

/* Forward block: rows p (and p + 1 where TWO) of an output plane, cells [0, QB) from
 * out; the input planes at in + idx[e] ipl, rows WI cells apart; the weights of entry
 * e at w + idx[e] wst. Each output cell: one chain over the entries, r, s. Input row
 * rr feeds tap row rr of row p and tap row rr - 1 of row p + 1: one load, two
 * multiply-adds. */
KINL void fwd_block(const int QB, const int S, const int TWO, int R, const float *in, size_t ipl,
                    int wi, const int32_t *idx, int32_t e0, int32_t e1, const float *w,
                    size_t wst, float *out, int wo) {
    kv a0[8], a1[8];
#pragma GCC unroll 8
    for (int j = 0; j < QB; j++) a0[j] = kv_zero(), a1[j] = kv_zero();
    for (int32_t e = e0; e < e1; e++) {
        const float *ip = in + (size_t)idx[e] * ipl, *wp = w + (size_t)idx[e] * wst;
#pragma GCC unroll 7
        for (int s = 0; s < S; s++) { /* input row 0: row p's first tap row */
            const kv w0 = kv_set1(wp[s]);
#pragma GCC unroll 8
            for (int j = 0; j < QB; j++) a0[j] = kv_fmadd(w0, kv_loadu(ip + 16 * (j + s)), a0[j]);
        }
        for (int rr = 1; rr < R; rr++) {
            const float *row = ip + (size_t)rr * wi * 16;
#pragma GCC unroll 7
            for (int s = 0; s < S; s++) {
                const kv w0 = kv_set1(wp[rr * S + s]);
                if (TWO) {
                    const kv w1 = kv_set1(wp[(rr - 1) * S + s]);
#pragma GCC unroll 8
                    for (int j = 0; j < QB; j++) {
                        const kv v = kv_reg(kv_loadu(row + 16 * (j + s)));
                        a0[j] = kv_fmadd(w0, v, a0[j]);
                        a1[j] = kv_fmadd(w1, v, a1[j]);
                    }
                } else {
#pragma GCC unroll 8
                    for (int j = 0; j < QB; j++) a0[j] = kv_fmadd(w0, kv_loadu(row + 16 * (j + s)), a0[j]);
                }
            }
        }
        if (TWO) { /* input row R: row p + 1's last tap row */
            const float *row = ip + (size_t)R * wi * 16;
#pragma GCC unroll 7
            for (int s = 0; s < S; s++) {
                const kv w1 = kv_set1(wp[(R - 1) * S + s]);
#pragma GCC unroll 8
                for (int j = 0; j < QB; j++) a1[j] = kv_fmadd(w1, kv_loadu(row + 16 * (j + s)), a1[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < QB; j++) {
        kv_storeu(out + 16 * j, a0[j]);
        if (TWO) kv_storeu(out + 16 * ((size_t)wo + j), a1[j]);
    }
}

/* One output plane (P x qf cells, rows wo cells apart) of a forward-shaped pass. */
KINL void fwd_plane_t(const int QB, const int S, int R, int P, int qf, const float *in,
                      size_t ipl, int wi, const int32_t *idx, int32_t e0, int32_t e1,
                      const float *w, size_t wst, float *out) {
    for (int p = 0; p < P; p += 2)
        for (int q0 = 0; q0 < qf; q0 += QB) {
            const float *ib = in + 16 * ((size_t)p * wi + q0);
            float *ob = out + 16 * ((size_t)p * qf + q0);
            if (p + 1 < P)
                fwd_block(QB, S, 1, R, ib, ipl, wi, idx, e0, e1, w, wst, ob, qf);
            else
                fwd_block(QB, S, 0, R, ib, ipl, wi, idx, e0, e1, w, wst, ob, qf);
        }
}

#define FWD_CASE(QB, S)                                                                    \
    case QB * 8 + S:                                                                       \
        fwd_plane_t(QB, S, R, P, qf, in, ipl, wi, idx, e0, e1, w, wst, out);               \
        return;
static void fwd_plane(int qb, int S, int R, int P, int qf, const float *in, size_t ipl, int wi,
                      const int32_t *idx, int32_t e0, int32_t e1, const float *w, size_t wst,
                      float *out) {
    switch (qb * 8 + S) {
        FWD_CASE(8, 3) FWD_CASE(8, 5) FWD_CASE(8, 7) FWD_CASE(7, 3) FWD_CASE(7, 5)
        FWD_CASE(7, 7) FWD_CASE(6, 3) FWD_CASE(6, 5) FWD_CASE(6, 7) FWD_CASE(5, 3)
        FWD_CASE(5, 5) FWD_CASE(5, 7) FWD_CASE(4, 3) FWD_CASE(4, 5) FWD_CASE(4, 7)
    }
}
#undef FWD_CASE

/* Input gradient of one padded row i (WO cells, block by block of QB output-gradient
 * cells: a block reaches QB + S - 1 cells, the first S - 1 shared with the block
 * before, added to it): entries e (filters, dy planes at d + idx[e] dpl, rows qd
 * cells apart) with their weights w + idx[e] wst, taps r with i - r an output row. */
KINL void dgrad_row_t(const int QB, const int S, int R, int P, int qf, int i, const float *d,
                      size_t dpl, int qd, const int32_t *idx, int32_t e0, int32_t e1,
                      const float *w, size_t wst, float *out) {
    const int ra = i - (P - 1) > 0 ? i - (P - 1) : 0, rb = i < R - 1 ? i : R - 1;
    for (int q0 = 0; q0 < qf; q0 += QB) {
        kv a[8 + 6];
#pragma GCC unroll 14
        for (int j = 0; j < QB + S - 1; j++) a[j] = kv_zero();
        for (int32_t e = e0; e < e1; e++) {
            const float *dp = d + (size_t)idx[e] * dpl + 16 * (size_t)q0, *wp = w + (size_t)idx[e] * wst;
            for (int r = ra; r <= rb; r++) {
                const float *row = dp + 16 * (size_t)(i - r) * qd;
                kv v[8];
#pragma GCC unroll 8
                for (int j = 0; j < QB; j++) v[j] = kv_loadu(row + 16 * j);
#pragma GCC unroll 7
                for (int s = 0; s < S; s++) {
                    const kv ws = kv_set1(wp[r * S + s]);
#pragma GCC unroll 8
                    for (int j = 0; j < QB; j++) a[j + s] = kv_fmadd(ws, v[j], a[j + s]);
                }
            }
        }
        float *o = out + 16 * (size_t)q0;
        const int shared = q0 ? S - 1 : 0;
#pragma GCC unroll 14
        for (int j = 0; j < QB + S - 1; j++)
            kv_storeu(o + 16 * j, j < shared ? kv_add(kv_loadu(o + 16 * j), a[j]) : a[j]);
    }
}

#define DG_CASE(QB, S)                                                                     \
    case QB * 8 + S:                                                                       \
        dgrad_row_t(QB, S, R, P, qf, i, d, dpl, qd, idx, e0, e1, w, wst, out);             \
        return;
static void dgrad_row(int qb, int S, int R, int P, int qf, int i, const float *d, size_t dpl,
                      int qd, const int32_t *idx, int32_t e0, int32_t e1, const float *w,
                      size_t wst, float *out) {
    switch (qb * 8 + S) {
        DG_CASE(8, 3) DG_CASE(8, 5) DG_CASE(8, 7) DG_CASE(7, 3) DG_CASE(7, 5)
        DG_CASE(7, 7) DG_CASE(6, 3) DG_CASE(6, 5) DG_CASE(6, 7) DG_CASE(5, 3)
        DG_CASE(5, 5) DG_CASE(5, 7) DG_CASE(4, 3) DG_CASE(4, 5) DG_CASE(4, 7)
    }
}
#undef DG_CASE

/* Weight gradient of one kept kernel, tap row r: sums[s] += over groups, p, q of
 * dy[p][q] x[p+r][q+s], in two vectors per s (even and odd cells of a step of 4). */
KINL void wgrad_row_t(const int S, int ng, int P, int qd, int wi, int r, const float *d,
                      size_t dgs, const float *x, size_t xgs, float *dw) {
    kv a0[7], a1[7];
#pragma GCC unroll 7
    for (int s = 0; s < S; s++) a0[s] = kv_zero(), a1[s] = kv_zero();
    for (int gi = 0; gi < ng; gi++) {
        const float *dg = d + (size_t)gi * dgs, *xg = x + (size_t)gi * xgs + 16 * (size_t)r * wi;
        for (int p = 0; p < P; p++) {
            const float *dr = dg + 16 * (size_t)p * qd, *xr = xg + 16 * (size_t)p * wi;
            for (int q0 = 0; q0 < qd; q0 += 4) {
                kv dv[4], xv[4 + 6];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) dv[j] = kv_loadu(dr + 16 * (q0 + j));
#pragma GCC unroll 10
                for (int j = 0; j < 3 + S; j++) xv[j] = kv_loadu(xr + 16 * (q0 + j));
#pragma GCC unroll 7
                for (int s = 0; s < S; s++) {
                    a0[s] = kv_fmadd(dv[0], xv[s], a0[s]);
                    a1[s] = kv_fmadd(dv[1], xv[s + 1], a1[s]);
                    a0[s] = kv_fmadd(dv[2], xv[s + 2], a0[s]);
                    a1[s] = kv_fmadd(dv[3], xv[s + 3], a1[s]);
                }
            }
        }
    }
#pragma GCC unroll 7
    for (int s = 0; s < S; s++) dw[s] = kv_sum(kv_add(a0[s], a1[s]));
}

static void wgrad_row(int S, int ng, int P, int qd, int wi, int r, const float *d, size_t dgs,
                      const float *x, size_t xgs, float *dw) {
    if (S == 3)
        wgrad_row_t(3, ng, P, qd, wi, r, d, dgs, x, xgs, dw);
    else if (S == 5)
        wgrad_row_t(5, ng, P, qd, wi, r, d, dgs, x, xgs, dw);
    else
        wgrad_row_t(7, ng, P, qd, wi, r, d, dgs, x, xgs, dw);
}

/* the thread's plane buffer */
static float *tbuf_of(const struct lay *l, float *ws, int t) {
    return ws + l->xsize + l->dsize + (size_t)t * l->tbuf;
}

/* Every kernel kept (a dense layer): the lists of struct sgi_kept in ints after the
 * threads' buffers. */
static struct sgi_kept full_lists(const struct sg_conv_geom *g, const struct lay *l, float *ws,
                                  int threads) {
    int32_t *fp = (int32_t *)(tbuf_of(l, ws, threads < 1 ? 1 : threads));
    int32_t *fi = fp + g->k + 1, *bp = fi + (size_t)g->k * g->c, *bi = bp + g->c + 1;
    for (int k = 0; k <= g->k; k++) fp[k] = k * g->c;
    for (int c = 0; c <= g->c; c++) bp[c] = c * g->k;
    for (int k = 0; k < g->k; k++)
        for (int c = 0; c < g->c; c++) fi[(size_t)k * g->c + c] = c, bi[(size_t)c * g->k + k] = k;
    return (struct sgi_kept){fp, fi, bp, bi};
}


/* item it = (group, filter) of the forward: the plane in thread t's buffer, then out */
static void fwd_item(const struct sg_conv_geom *g, const struct lay *l, const float *w,
                     const struct sgi_kept *kp, float *y, float *ws, int it, int t) {
    const int gi = it / g->k, k = it % g->k, rs = g->r * g->s;
    const int n0 = gi * 16, nl = g->n - n0 < 16 ? g->n - n0 : 16;
    const size_t pq = (size_t)g->p * g->q;
    if (kp->fp[k] == kp->fp[k + 1]) { /* no kernel kept: 0 */
        memset(y + (size_t)k * g->n * pq + (size_t)n0 * pq, 0, (size_t)nl * pq * sizeof *y);
        return;
    }
    float *o = tbuf_of(l, ws, t);
    fwd_plane(l->qb, g->s, g->r, g->p, l->qf, ws + (size_t)gi * g->c * l->xplane, l->xplane, l->wi,
              kp->fi, kp->fp[k], kp->fp[k + 1], w + (size_t)k * g->c * rs, (size_t)rs, o);
    cells_out(o, l->qf, 0, 0, g->p, g->q, y + (size_t)k * g->n * pq + (size_t)n0 * pq, pq, nl, 0);
}

/* item it = (group, channel) of the input gradient: padded rows pt .. pt + h of the
 * plane in thread t's buffer, added to dx */
static void dgrad_item(const struct sg_conv_geom *g, const struct lay *l, const float *w,
                       const struct sgi_kept *kp, float *dx, float *ws, int it, int t) {
    const int gi = it / g->c, c = it % g->c, rs = g->r * g->s;
    const int n0 = gi * 16, nl = g->n - n0 < 16 ? g->n - n0 : 16;
    const size_t hw = (size_t)g->h * g->w;
    const float *dc = ws + l->xsize + (size_t)gi * g->k * l->dplane;
    if (kp->bp[c] == kp->bp[c + 1]) return; /* no kernel reads channel c: nothing to add */
    float *o = tbuf_of(l, ws, t);
    for (int i = g->pt; i < g->pt + g->h; i++)
        dgrad_row(l->qb, g->s, g->r, g->p, l->qf, i, dc, l->dplane, l->qd, kp->bi, kp->bp[c],
                  kp->bp[c + 1], w + (size_t)c * rs, (size_t)g->c * rs, o + 16 * (size_t)i * l->wo);
    cells_out(o, l->wo, g->pt, g->pl, g->h, g->w, dx + (size_t)c * g->n * hw + (size_t)n0 * hw, hw,
              nl, 1);
}
/* Items 0 .. n of a pass, each writing its own planes with thread t's buffer: shared by
 * the threads (static shares) unless a region runs here already (sgi.h) */
typedef void item_fn(const struct sg_conv_geom *g, const struct lay *l, const float *w,
                     const struct sgi_kept *kp, float *out, float *ws, int it, int t);
static void run_items(item_fn *f, int n, int threads, const struct sg_conv_geom *g,
                      const struct lay *l, const float *w, const struct sgi_kept *kp, float *out,
                      float *ws) {
    if (threads > 1 && sgi_region_threads() > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int it = 0; it < n; it++) f(g, l, w, kp, out, ws, it, omp_get_thread_num());
    } else
        for (int it = 0; it < n; it++) f(g, l, w, kp, out, ws, it, 0);
}

/* ---- a one-channel layer with the 2x2 max pool after it (sgi_conv_pool_forward) ---- */

/* Output plane o (P x qf cells) plus bias bk (none where !b) through a 2x2 stride-2 pool:
 * cells of the pooled values and their argmax (positions in the P x Q plane) at v and a,
 * rows pq cells; the comparisons of ops.c's pool, lane by lane. */
static void pool_cells(const struct sg_conv_geom *g, const struct lay *l, const float *o, int b,
                       float bk, int pp, int pq, float *v, float *a) {
    const __m512 vb = _mm512_set1_ps(bk);
    const __m512i one = _mm512_set1_epi32(1);
    for (int i = 0; i < pp; i++)
        for (int j = 0; j < pq; j++) {
            const float *c0 = o + 16 * ((size_t)(2 * i) * l->qf + 2 * j), *c1 = c0 + 16 * (size_t)l->qf;
            __m512 x0 = _mm512_loadu_ps(c0), x1 = _mm512_loadu_ps(c0 + 16);
            __m512 x2 = _mm512_loadu_ps(c1), x3 = _mm512_loadu_ps(c1 + 16);
            if (b) {
                x0 = _mm512_add_ps(x0, vb), x1 = _mm512_add_ps(x1, vb);
                x2 = _mm512_add_ps(x2, vb), x3 = _mm512_add_ps(x3, vb);
            }
            const __mmask16 ab = _mm512_cmp_ps_mask(x1, x0, _CMP_GT_OQ);
            const __mmask16 cd = _mm512_cmp_ps_mask(x3, x2, _CMP_GT_OQ);
            const __m512 m0 = _mm512_mask_blend_ps(ab, x0, x1), m1 = _mm512_mask_blend_ps(cd, x2, x3);
            const __mmask16 top = _mm512_cmp_ps_mask(m1, m0, _CMP_GT_OQ);
            const __m512i i00 = _mm512_set1_epi32(2 * i * g->q + 2 * j);
            const __m512i i10 = _mm512_set1_epi32((2 * i + 1) * g->q + 2 * j);
            const __m512i i0 = _mm512_mask_add_epi32(i00, ab, i00, one);
            const __m512i i1 = _mm512_mask_add_epi32(i10, cd, i10, one);
            _mm512_storeu_ps(v + 16 * ((size_t)i * pq + j), _mm512_mask_blend_ps(top, m0, m1));
            _mm512_storeu_si512(a + 16 * ((size_t)i * pq + j), _mm512_mask_blend_epi32(top, i0, i1));
        }
}

/* item it = (group, live filter) of the pooled forward: the plane, its pool, out */
static void pool_item(const struct sg_conv_geom *g, const struct lay *l, const float *w,
                      const float *b, const int *kk, int nk, const struct sgi_pool *pg, float *py,
                      int32_t *parg, float *ws, int it, int t) {
    static const int32_t entry0[1] = {0}; /* the one channel */
    const int rs = g->r * g->s, pp = pg->p, pq = pg->q;
    const size_t ppq = (size_t)pp * pq;
    const int gi = it / nk, k = kk ? kk[it % nk] : it % nk;
    const int n0 = gi * 16, nl = g->n - n0 < 16 ? g->n - n0 : 16;
    float *o = tbuf_of(l, ws, t), *v = o + 16 * (size_t)g->p * l->qf, *a = v + 16 * ppq;
    fwd_plane(l->qb, g->s, g->r, g->p, l->qf, ws + (size_t)gi * l->xplane, l->xplane, l->wi, entry0,
              0, 1, w + (size_t)k * rs, (size_t)rs, o);
    pool_cells(g, l, o, b != NULL, b ? b[k] : 0.0f, pp, pq, v, a);
    const size_t at = ((size_t)k * g->n + n0) * ppq;
    cells_out(v, pq, 0, 0, pp, pq, py + at, ppq, nl, 0);
    cells_out(a, pq, 0, 0, pp, pq, (float *)(parg + at), ppq, nl, 0); /* bits moved, not summed */
}
#endif

void sgi_conv_lanes_pool_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const float *b, const int *kk, int nk, const struct sgi_pool *pg,
                                 float *py, int32_t *parg, float *ws, int threads) {
#if LANES
    const struct lay l = lay_of(g);
    for (int gi = 0; gi < l.ng; gi++) x_plane_in(g, &l, x, gi, 0, ws + (size_t)gi * l.xplane);
    const int items = l.ng * nk;
    if (threads > 1 && sgi_region_threads() > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int it = 0; it < items; it++)
            pool_item(g, &l, w, b, kk, nk, pg, py, parg, ws, it, omp_get_thread_num());
    } else
        for (int it = 0; it < items; it++) pool_item(g, &l, w, b, kk, nk, pg, py, parg, ws, it, 0);
#else
    (void)g, (void)x, (void)w, (void)b, (void)kk, (void)nk, (void)pg, (void)py, (void)parg, (void)ws;
    (void)threads;
#endif
}

#if LANES
/* the filter of kept entry e (the forward lists' row holding it) */
static int filter_of(const struct sgi_kept *kp, int K, int32_t e) {
    int lo = 0, hi = K - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (kp->fp[mid] <= e) lo = mid; else hi = mid - 1;
    }
    return lo;
}
#endif


void sgi_conv_lanes_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            const struct sgi_kept *kp, float *y, float *ws, int threads) {
#if LANES
    const struct lay l = lay_of(g);
    struct sgi_kept full;
    if (!kp) full = full_lists(g, &l, ws, threads), kp = &full;
    x_cells(g, &l, x, kp, ws, threads);
    run_items(fwd_item, l.ng * g->k, threads, g, &l, w, kp, y, ws);
#else
    (void)g, (void)x, (void)w, (void)kp, (void)y, (void)ws, (void)threads;
#endif
}

void sgi_conv_lanes_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const struct sgi_kept *kp, const float *dy, float *dx, float *dw,
                             float *ws, int threads) {
#if LANES
    const struct lay l = lay_of(g);
    const int rs = g->r * g->s;
    float *xc = ws, *dc = ws + l.xsize;
    struct sgi_kept full;
    if (!kp) full = full_lists(g, &l, ws, threads), kp = &full;
    x_cells(g, &l, x, kp, xc, threads);
    const size_t pq = (size_t)g->p * g->q;
    /* the output gradient's cells: rows qd cells, zeros past q; filters with no kept
     * kernel left out (nothing reads them: a dead filter's gradient may be unset) */
    const int ditems = l.ng * g->k;
    SGI_PAR_FOR(threads, for (int it = 0; it < ditems; it++) {
        const int gi = it / g->k, k = it % g->k, n0 = gi * 16;
        if (kp->fp[k] == kp->fp[k + 1]) continue;
        const int nl = g->n - n0 < 16 ? g->n - n0 : 16;
        float *dp = dc + ((size_t)gi * g->k + k) * l.dplane;
        zero_cols(dp, g->p, l.qd, g->q, l.qd);
        cells_in(dy + (size_t)k * g->n * pq + (size_t)n0 * pq, pq, nl, g->p, g->q, dp, l.qd, 0, 0);
    });
    /* weight gradient: kept kernels (k, c), whole kernels to a thread */
    memset(dw, 0, (size_t)g->k * g->c * rs * sizeof *dw);
    const int32_t nkept = kp->fp[g->k];
    SGI_PAR_FOR(threads, for (int32_t e = 0; e < nkept; e++) {
        const int k = filter_of(kp, g->k, e), c = kp->fi[e];
        for (int r = 0; r < g->r; r++)
            wgrad_row(g->s, l.ng, g->p, l.qd, l.wi, r, dc + (size_t)k * l.dplane,
                      (size_t)g->k * l.dplane, xc + (size_t)c * l.xplane, (size_t)g->c * l.xplane,
                      dw + ((size_t)k * g->c + c) * rs + (size_t)r * g->s);
    });
    if (!dx) return;
    /* input gradient: channel c's padded rows pt .. pt + h, added to dx */
    run_items(dgrad_item, l.ng * g->c, threads, g, &l, w, kp, dx, ws);
#else
    (void)g, (void)x, (void)w, (void)kp, (void)dy, (void)dx, (void)dw, (void)ws, (void)threads;
#endif
}
