/* Fully connected, pooling, batch normalisation, ReLU, flatten and softmax kernels
 * on channel-major activations (see ops.h). */
#include <float.h>
#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/sgi.h"
#include "nn/ops.h"

/* y[K][N] += b; db[K] = the sums of dy's rows */
static void fc_add_bias(int n, int k, const float *b, float *y) {
    if (b)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++) y[(size_t)i * n + j] += b[i];
}

static void fc_bias_grad(int n, int k, const float *dy, float *db) {
    if (db)
        for (int i = 0; i < k; i++) db[i] = (float)sgi_sum(dy + (size_t)i * n, (size_t)n);
}

void sgi_fc_forward(int n, int c, int k, const float *x, const float *w, const float *b,
                    float *y) {
    sgi_sgemm_own(0, 0, k, n, c, 1.0f, w, c, x, n, 0.0f, y, n);
    fc_add_bias(n, k, b, y);
}

void sgi_fc_backward(int n, int c, int k, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    sgi_sgemm_own(0, 1, k, c, n, 1.0f, dy, n, x, n, 0.0f, dw, c);
    if (dx)
        sgi_sgemm_own(1, 0, c, n, k, 1.0f, w, c, dy, n, 1.0f, dx, n);
    fc_bias_grad(n, k, dy, db);
}

/* Fully connected layers on their live input features live[0..nl) (ascending; the
 * others exactly 0: the flattened channels of dead filters, graph.c). The forward sums
 * over the live features only; the weight gradient's columns of the others are 0 and
 * written so, the input gradient's rows of the others are left as they are (nothing
 * reads them). The same bits as sgi_fc_forward and sgi_fc_backward on the same x:
 * every entry is the same chain of multiply-adds less the products with 0, which
 * leave a sum that starts at +0 unchanged. */
void sgi_fc_forward_live(int n, int c, int k, const int *live, int nl, const float *x,
                         const float *w, const float *b, float *y) {
    sgi_sgemm_own_ks(k, n, live, nl, 1.0f, w, c, x, n, 0.0f, y, n);
    fc_add_bias(n, k, b, y);
}

/* xt[j][t] = x[live[t]][j]: x's live rows (live NULL: its first nl) transposed, n x nl */
static void fc_live_transposed(int n, const int *live, int nl, const float *restrict x,
                               float *restrict xt) {
    for (int t = 0; t < nl; t++) {
        const float *xr = x + (size_t)(live ? live[t] : t) * n;
        for (int j = 0; j < n; j++) xt[(size_t)j * nl + t] = xr[j];
    }
}

/* columns [a, b) of a k x c matrix set to 0 */
static void zero_cols(float *m, int k, int c, int a, int b) {
    if (b > a)
        for (int i = 0; i < k; i++) memset(m + (size_t)i * c + a, 0, (size_t)(b - a) * sizeof *m);
}

/* run r of sgi_fc_backward_live: its dW columns (the dead ones before it set to 0) and dx rows */
static void fc_live_run(int n, int c, int k, const int *live, int nl, const int *run, int r,
                        const float *xt, const float *w, const float *dy, float *dx, float *dw) {
    const int t0 = run[r], f0 = live[t0], len = run[r + 1] - t0;
    zero_cols(dw, k, c, r ? live[t0 - 1] + 1 : 0, f0);
    sgi_sgemm_own(0, 0, k, len, n, 1.0f, dy, n, xt + t0, nl, 0.0f, dw + f0, c);
    if (dx) sgi_sgemm_own(1, 0, len, n, k, 1.0f, w + f0, c, dy, n, 1.0f, dx + (size_t)f0 * n, n);
}

void sgi_fc_backward_live(int n, int c, int k, const int *live, int nl, const float *x,
                          const float *w, const float *dy, float *dx, float *dw, float *db) {
    /* x's live rows transposed (n x nl), then run by run of consecutive live features
     * dW's columns (as the whole product's A B^T through a transposed B, sgi_sgemm_own;
     * the dead columns before the run set to 0) and dx's rows, the runs shared by the
     * threads (each run's products are too small to split) */
    float *xt = malloc(((size_t)n * nl + 1) * sizeof *xt);
    int *run = malloc(((size_t)nl + 1) * sizeof *run);
    if (!xt || !run) {
        free(xt);
        free(run);
        sgi_fc_backward(n, c, k, x, w, dy, dx, dw, db);
        return;
    }
    fc_live_transposed(n, live, nl, x, xt);
    int runs = 0; /* run r: live features live[run[r]] .. live[run[r + 1] - 1] */
    for (int t = 0; t < nl; t++)
        if (t == 0 || live[t] != live[t - 1] + 1) run[runs++] = t;
    run[runs] = nl;
    const int nt = sgi_region_threads();
    if (nt > 1 && runs > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int r = 0; r < runs; r++) fc_live_run(n, c, k, live, nl, run, r, xt, w, dy, dx, dw);
    } else
        for (int r = 0; r < runs; r++) fc_live_run(n, c, k, live, nl, run, r, xt, w, dy, dx, dw);
    zero_cols(dw, k, c, nl ? live[nl - 1] + 1 : 0, c);
    free(run);
    free(xt);
    fc_bias_grad(n, k, dy, db);
}

/* Fully connected layers on their live outputs rows[0..nr) (ascending; every other
 * row of W has no kept weight, so is exactly 0) and live inputs live[0..nl) (as
 * above; NULL: all c of them, nl = c). The kept block of W, the live rows of x and
 * the kept rows of dy are gathered into compact matrices in ws (sgi_fc_thin_ws
 * floats), each product runs once on them, and the results are scattered back: y's
 * other rows are 0 + b, dW's other entries 0, dx's live rows added to (its others
 * untouched). Every entry is the same chain of multiply-adds as in sgi_fc_forward
 * and sgi_fc_backward less the products with 0 (which leave a sum that starts at +0
 * unchanged): with AVX-512, the same bits. */
size_t sgi_fc_thin_ws(int n, int nr, int nl) {
    const size_t a = (size_t)nr * nl, b = (size_t)nl * n;
    return a + b + (size_t)nr * n + (a > b ? a : b);
}

/* ac[i][t] = W[rows[i]][live[t]] */
static void fc_gather_w(int c, const int *rows, int nr, const int *live, int nl, const float *w,
                        float *restrict ac) {
    SGI_PAR_FOR((size_t)nr * nl > 65536 ? sg_get_threads() : 1, for (int i = 0; i < nr; i++) {
        const float *wr = w + (size_t)rows[i] * c;
        float *ar = ac + (size_t)i * nl;
        if (!live)
            memcpy(ar, wr, (size_t)c * sizeof *ar);
        else
            for (int t = 0; t < nl; t++) ar[t] = wr[live[t]];
    });
}

void sgi_fc_forward_thin(int n, int c, int k, const int *rows, int nr, const int *live, int nl,
                         const float *x, const float *w, const float *b, float *y, float *ws) {
    if (!live) nl = c;
    float *ac = ws, *xl = ac + (size_t)nr * nl, *yc = xl + (size_t)nl * n;
    fc_gather_w(c, rows, nr, live, nl, w, ac);
    const float *xb = x;
    if (live) {
        for (int t = 0; t < nl; t++) memcpy(xl + (size_t)t * n, x + (size_t)live[t] * n, (size_t)n * sizeof *xl);
        xb = xl;
    }
    sgi_sgemm_own(0, 0, nr, n, nl, 1.0f, ac, nl, xb, n, 0.0f, yc, n);
    int i = 0;
    for (int r = 0; r < k; r++) {
        float *yr = y + (size_t)r * n;
        if (i < nr && rows[i] == r)
            memcpy(yr, yc + (size_t)i++ * n, (size_t)n * sizeof *yr);
        else
            memset(yr, 0, (size_t)n * sizeof *yr);
    }
    fc_add_bias(n, k, b, y);
}

void sgi_fc_backward_thin(int n, int c, int k, const int *rows, int nr, const int *live, int nl,
                          const float *x, const float *w, const float *dy, float *dx, float *dw,
                          float *db, float *ws) {
    if (!live) nl = c;
    float *ac = ws, *xt = ac + (size_t)nr * nl, *dyc = xt + (size_t)nl * n,
          *out = dyc + (size_t)nr * n;
    for (int i = 0; i < nr; i++)
        memcpy(dyc + (size_t)i * n, dy + (size_t)rows[i] * n, (size_t)n * sizeof *dyc);
    /* dW's kept block = dy's kept rows times x's live rows transposed (n x nl) */
    fc_live_transposed(n, live, nl, x, xt);
    sgi_sgemm_own(0, 0, nr, nl, n, 1.0f, dyc, n, xt, nl, 0.0f, out, nl);
    int i = 0;
    for (int r = 0; r < k; r++) {
        float *dr = dw + (size_t)r * c;
        if (i < nr && rows[i] == r) {
            const float *o = out + (size_t)i++ * nl;
            if (!live) {
                memcpy(dr, o, (size_t)c * sizeof *dr);
                continue;
            }
            memset(dr, 0, (size_t)c * sizeof *dr);
            for (int t = 0; t < nl; t++) dr[live[t]] = o[t];
        } else
            memset(dr, 0, (size_t)c * sizeof *dr);
    }
    fc_bias_grad(n, k, dy, db);
    if (!dx) return;
    /* dx's live rows += W's kept block transposed times dy's kept rows */
    fc_gather_w(c, rows, nr, live, nl, w, ac);
    sgi_sgemm_own(1, 0, nl, n, nr, 1.0f, ac, nl, dyc, n, 0.0f, out, n);
    for (int t = 0; t < nl; t++) {
        float *dr = dx + (size_t)(live ? live[t] : t) * n;
        const float *o = out + (size_t)t * n;
        for (int j = 0; j < n; j++) dr[j] += o[j];
    }
}

/* One plane of 2x2 windows with stride 2 and no padding (the common case):
 * branch-free. */
static void maxpool_2x2_plane(const struct sgi_pool *g, const float *restrict xp,
                              float *restrict yp, int32_t *restrict ap) {
    const int P = g->p, Q = g->q, W = g->w;
    for (int p = 0; p < P; p++) {
        const float *r0 = xp + (size_t)(2 * p) * W, *r1 = r0 + W;
        const int32_t base = 2 * p * W;
        int q = 0;
#ifdef __AVX512F__
        /* 16 windows at a time: the even and odd columns of both rows picked
         * by permutes from 32-float masked loads; the same comparisons (so the
         * same maxima and argmax ties) as the scalar loop below */
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        const __m512i lane2 = _mm512_add_epi32(even, _mm512_set1_epi32(base));
        for (; q < Q; q += 16) {
            const int n = Q - q < 16 ? Q - q : 16;
            const __mmask16 lo = 2 * n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (2 * n)) - 1);
            const __mmask16 hi = 2 * n <= 16 ? (__mmask16)0 : (__mmask16)((1u << (2 * n - 16)) - 1);
            const __mmask16 out = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
            const __m512 x0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * q);
            const __m512 x1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * q + 16);
            const __m512 x2 = _mm512_maskz_loadu_ps(lo, r1 + 2 * q);
            const __m512 x3 = _mm512_maskz_loadu_ps(hi, r1 + 2 * q + 16);
            const __m512 a = _mm512_permutex2var_ps(x0, even, x1);
            const __m512 b = _mm512_permutex2var_ps(x0, odd, x1);
            const __m512 c = _mm512_permutex2var_ps(x2, even, x3);
            const __m512 d = _mm512_permutex2var_ps(x2, odd, x3);
            const __mmask16 ab = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
            const __mmask16 cd = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
            const __m512 m0 = _mm512_mask_blend_ps(ab, a, b), m1 = _mm512_mask_blend_ps(cd, c, d);
            const __mmask16 top = _mm512_cmp_ps_mask(m1, m0, _CMP_GT_OQ);
            const __m512i i00 = _mm512_add_epi32(lane2, _mm512_set1_epi32(2 * q));
            const __m512i one = _mm512_set1_epi32(1);
            const __m512i i0 = _mm512_mask_add_epi32(i00, ab, i00, one);
            const __m512i i10 = _mm512_add_epi32(i00, _mm512_set1_epi32(W));
            const __m512i i1 = _mm512_mask_add_epi32(i10, cd, i10, one);
            _mm512_mask_storeu_ps(yp + p * Q + q, out, _mm512_mask_blend_ps(top, m0, m1));
            _mm512_mask_storeu_epi32(ap + p * Q + q, out, _mm512_mask_blend_epi32(top, i0, i1));
        }
#endif
        for (; q < Q; q++) {
            const float a = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], d = r1[2 * q + 1];
            /* arithmetic selects: a branch here mispredicts half the time */
            const int32_t ab = b > a, cd = d > c;
            const float m0 = b > a ? b : a, m1 = d > c ? d : c;
            const int32_t i0 = base + 2 * q + ab, i1 = base + W + 2 * q + cd;
            const int32_t top = m1 > m0;
            yp[p * Q + q] = m1 > m0 ? m1 : m0;
            ap[p * Q + q] = i0 + top * (i1 - i0);
        }
    }
}

static int pool_is_2x2(const struct sgi_pool *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && !g->pt && !g->pl &&
           2 * g->p <= g->h && 2 * g->q <= g->w;
}

/* Window (p, q) of a pool: its corner (h0, w0), which may lie in the padding, and
 * the rows [ha, hb) and columns [wa, wb) of it inside the input. */
struct pool_win {
    int h0, w0, ha, hb, wa, wb;
};
static inline struct pool_win pool_window(const struct sgi_pool *g, int p, int q) {
    struct pool_win r;
    r.h0 = p * g->sh - g->pt, r.w0 = q * g->sw - g->pl;
    r.ha = r.h0 < 0 ? 0 : r.h0, r.hb = r.h0 + g->kh > g->h ? g->h : r.h0 + g->kh;
    r.wa = r.w0 < 0 ? 0 : r.w0, r.wb = r.w0 + g->kw > g->w ? g->w : r.w0 + g->kw;
    return r;
}

/* One plane of any max pool. */
static void maxpool_any_plane(const struct sgi_pool *g, const float *xp, float *yp, int32_t *ap) {
    for (int p = 0; p < g->p; p++)
        for (int q = 0; q < g->q; q++) {
            const struct pool_win b = pool_window(g, p, q);
            float best = xp[b.ha * g->w + b.wa];
            int32_t bi = b.ha * g->w + b.wa;
            for (int i = b.ha; i < b.hb; i++)
                for (int j = b.wa; j < b.wb; j++) {
                    const float v = xp[i * g->w + j];
                    const int32_t gt = v > best;
                    best = v > best ? v : best;
                    bi += gt * (i * g->w + j - bi);
                }
            yp[p * g->q + q] = best;
            ap[p * g->q + q] = bi;
        }
}

int sgi_pool_is_2x2(const struct sgi_pool *g) { return pool_is_2x2(g); }

void sgi_maxpool_plane(const struct sgi_pool *g, const float *x, float *y, int32_t *arg) {
    (pool_is_2x2(g) ? maxpool_2x2_plane : maxpool_any_plane)(g, x, y, arg);
}

/* par: the planes shared by the threads; 0: in the calling thread alone, with no
 * parallel region (BN's fused pool calls this once a channel from inside its own
 * team: a nested region, even one that runs on one thread, cost more than the
 * pool itself on VGG-7's 7x7 and 14x14 planes). */
static void maxpool_forward(const struct sgi_pool *g, const float *x, float *y, int32_t *arg,
                            int par) {
    const size_t in_sz = (size_t)g->h * g->w, out_sz = (size_t)g->p * g->q;
    SGI_PAR_FOR(par ? sg_get_threads() : 1,
                for (int pl = 0; pl < g->planes; pl++)
                    sgi_maxpool_plane(g, x + pl * in_sz, y + pl * out_sz, arg + pl * out_sz););
}

void sgi_maxpool_forward(const struct sgi_pool *g, const float *x, float *y, int32_t *arg) {
    maxpool_forward(g, x, y, arg, 1);
}

#ifdef __AVX512F__
/* The input gradient of one plane of a 2x2 stride-2 pool, written (set): each
 * window's four entries, 0 + dy at its argmax and 0 at the others, in two rows of
 * 32 floats per 16 windows; the rows and columns no window covers set to 0. The
 * bits of zeroing the plane and adding dy at the argmax. */
static void maxpool_2x2_set_plane(const struct sgi_pool *g, const float *dyp, const int32_t *ap,
                                  float *dxp) {
    const int P = g->p, Q = g->q, W = g->w;
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i two_q = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 zero = _mm512_setzero_ps();
    for (int p = 0; p < P; p++) {
        float *r0 = dxp + (size_t)(2 * p) * W, *r1 = r0 + W;
        for (int q = 0; q < Q; q += 16) {
            const int n = Q - q < 16 ? Q - q : 16;
            const __mmask16 m = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
            const __m512 d = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(m, dyp + (size_t)p * Q + q));
            const __m512i rel = _mm512_sub_epi32(
                _mm512_maskz_loadu_epi32(m, ap + (size_t)p * Q + q),
                _mm512_add_epi32(two_q, _mm512_set1_epi32(2 * p * W + 2 * q)));
            const __m512 a = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512()), d);
            const __m512 b = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(1)), d);
            const __m512 c = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(W)), d);
            const __m512 e = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(W + 1)), d);
            const __mmask16 m0 = 2 * n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (2 * n)) - 1);
            const __mmask16 m1 = 2 * n <= 16 ? (__mmask16)0 : (__mmask16)((1u << (2 * n - 16)) - 1);
            _mm512_mask_storeu_ps(r0 + 2 * q, m0, _mm512_permutex2var_ps(a, lo, b));
            _mm512_mask_storeu_ps(r0 + 2 * q + 16, m1, _mm512_permutex2var_ps(a, hi, b));
            _mm512_mask_storeu_ps(r1 + 2 * q, m0, _mm512_permutex2var_ps(c, lo, e));
            _mm512_mask_storeu_ps(r1 + 2 * q + 16, m1, _mm512_permutex2var_ps(c, hi, e));
        }
        for (int j = 2 * Q; j < W; j++) r0[j] = r1[j] = 0.0f;
    }
    for (size_t i = (size_t)2 * P * W; i < (size_t)g->h * W; i++) dxp[i] = 0.0f;
}
#endif

/* One plane's input gradient through any max pool: dx += dy at the argmax (dx
 * zeroed first where set). */
static void maxpool_any_back_plane(const struct sgi_pool *g, const float *dyp, const int32_t *ap,
                                   float *dxp, int set) {
    const size_t in_sz = (size_t)g->h * g->w, out_sz = (size_t)g->p * g->q;
    if (set) memset(dxp, 0, in_sz * sizeof *dxp); /* in cache for the adds */
    for (size_t i = 0; i < out_sz; i++) dxp[ap[i]] += dyp[i];
}

void sgi_maxpool_back_plane(const struct sgi_pool *g, const float *dyp, const int32_t *ap,
                            float *dxp, int set) {
#ifdef __AVX512F__
    if (set && pool_is_2x2(g)) {
        maxpool_2x2_set_plane(g, dyp, ap, dxp);
        return;
    }
#endif
    maxpool_any_back_plane(g, dyp, ap, dxp, set);
}

/* par as maxpool_forward's */
static void maxpool_backward(const struct sgi_pool *g, const float *dy, const int32_t *arg,
                             float *dx, int set, int par) {
    const size_t in_sz = (size_t)g->h * g->w, out_sz = (size_t)g->p * g->q;
    SGI_PAR_FOR(par ? sg_get_threads() : 1,
                for (int pl = 0; pl < g->planes; pl++) sgi_maxpool_back_plane(
                    g, dy + pl * out_sz, arg + pl * out_sz, dx + pl * in_sz, set););
}

void sgi_maxpool_backward(const struct sgi_pool *g, const float *dy, const int32_t *arg,
                          float *dx, int set) {
    maxpool_backward(g, dy, arg, dx, set, 1);
}

/* Window [h0, h0+kh) clipped to the input, and the divisor of its average. */
static inline int avg_div(const struct sgi_pool *g, int h0, int w0, int ha, int hb, int wa,
                          int wb) {
    if (!g->count_include_pad) return (hb - ha) * (wb - wa);
    int hc = h0 + g->kh > g->h + g->pb ? g->h + g->pb : h0 + g->kh;
    int wc = w0 + g->kw > g->w + g->pr ? g->w + g->pr : w0 + g->kw;
    return (hc - h0) * (wc - w0);
}

void sgi_avgpool_forward(const struct sgi_pool *g, const float *x, float *y) {
    const size_t in_sz = (size_t)g->h * g->w, out_sz = (size_t)g->p * g->q;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < g->planes; pl++) {
        const float *xp = x + pl * in_sz;
        float *yp = y + pl * out_sz;
        for (int p = 0; p < g->p; p++)
            for (int q = 0; q < g->q; q++) {
                const struct pool_win b = pool_window(g, p, q);
                float s = 0;
                for (int i = b.ha; i < b.hb; i++)
                    for (int j = b.wa; j < b.wb; j++) s += xp[i * g->w + j];
                int d = avg_div(g, b.h0, b.w0, b.ha, b.hb, b.wa, b.wb);
                yp[p * g->q + q] = d > 0 ? s / (float)d : 0.0f;
            }
    }
}

void sgi_avgpool_backward(const struct sgi_pool *g, const float *dy, float *dx) {
    const size_t in_sz = (size_t)g->h * g->w, out_sz = (size_t)g->p * g->q;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < g->planes; pl++) {
        float *dxp = dx + pl * in_sz;
        const float *dyp = dy + pl * out_sz;
        for (int p = 0; p < g->p; p++)
            for (int q = 0; q < g->q; q++) {
                const struct pool_win b = pool_window(g, p, q);
                int d = avg_div(g, b.h0, b.w0, b.ha, b.hb, b.wa, b.wb);
                if (d <= 0) continue;
                const float v = dyp[p * g->q + q] / (float)d;
                for (int i = b.ha; i < b.hb; i++)
                    for (int j = b.wa; j < b.wb; j++) dxp[i * g->w + j] += v;
            }
    }
}

/* yc = xc * a + bb over one channel of m values, through a ReLU when relu is set. */
static inline void bn_affine(const float *xc, float *yc, size_t m, float a, float bb, int relu) {
    if (relu) {
        for (size_t i = 0; i < m; i++) {
            const float v = xc[i] * a + bb;
            yc[i] = v > 0 ? v : 0.0f;
        }
    } else {
        for (size_t i = 0; i < m; i++) yc[i] = xc[i] * a + bb;
    }
}

/* This thread's scratch row of a fused pool. */
static float *bn_pool_row(const struct sgi_bn_pool *p, size_t m) {
    int t = 0, team = 1;
    sgi_omp_team(&t, &team);
    SG_ASSERT(t < p->slots); /* a row for each thread of the team (bn_threads) */
    return p->scratch + (size_t)t * m;
}

/* The team of BN's channel loop: as many threads as a fused pool has scratch rows. */
static int bn_threads(const struct sgi_bn_pool *pool) {
    const int t = sg_get_threads();
    return pool && pool->slots < t ? pool->slots : t;
}

/* Channel ch's output: into y, or through the fused pool into the pool's output. */
static void bn_out(const struct sgi_bn_pool *pool, int ch, const float *xc, float *y, size_t m,
                   float a, float bb, int relu) {
    if (!pool) {
        bn_affine(xc, y + (size_t)ch * m, m, a, bb, relu);
        return;
    }
    float *row = bn_pool_row(pool, m);
    bn_affine(xc, row, m, a, bb, 1);
    const size_t o = (size_t)ch * pool->g.planes * pool->g.p * pool->g.q;
    maxpool_forward(&pool->g, row, pool->y + o, pool->arg + o, 0);
}

/* A dead channel's output: 0 (a fused pool's maximum of zeros; its argmax is never read) */
static void bn_out_zero(const struct sgi_bn_pool *pool, int ch, float *y, size_t m) {
    if (!pool) {
        memset(y + (size_t)ch * m, 0, m * sizeof *y);
        return;
    }
    const size_t pq = (size_t)pool->g.planes * pool->g.p * pool->g.q;
    memset(pool->y + (size_t)ch * pq, 0, pq * sizeof *pool->y);
}

/* Channel ch's output gradient: dy's row, or rebuilt from the fused pool's. */
static const float *bn_dy(const struct sgi_bn_pool *pool, int ch, const float *dy, size_t m) {
    if (!pool) return dy + (size_t)ch * m;
    float *row = bn_pool_row(pool, m);
    const size_t o = (size_t)ch * pool->g.planes * pool->g.p * pool->g.q;
    maxpool_backward(&pool->g, pool->dy + o, pool->arg + o, row, 1, 0);
    return row;
}

/* relu: the ReLU that follows is applied on the way out (y is then its output; BN's
 * own output is never stored). The same arithmetic as BN then ReLU. */
void sgi_bn_forward_train(int c, size_t m, float eps, float momentum, const float *x,
                          const float *gamma, const float *beta, float *rmean, float *rvar,
                          float *mean, float *invstd, float *y, int relu, const uint8_t *dead,
                          const struct sgi_bn_pool *pool) {
#pragma omp parallel for schedule(static) num_threads(bn_threads(pool))
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * m;
        if (dead && dead[ch]) { /* x is 0: mean and variance 0, output 0 */
            bn_out_zero(pool, ch, y, m);
            mean[ch] = 0.0f;
            invstd[ch] = (float)(1.0 / sqrt(0.0 + eps));
            rmean[ch] = (1.0f - momentum) * rmean[ch] + momentum * 0.0f;
            rvar[ch] = (1.0f - momentum) * rvar[ch] + momentum * 0.0f;
            continue;
        }
        double mu, s2;
        sgi_mean_m2(xc, m, &mu, &s2);
        const double var = s2 / (double)m;
        const float is = (float)(1.0 / sqrt(var + eps));
        mean[ch] = (float)mu;
        invstd[ch] = is;
        const float a = gamma[ch] * is, bb = beta[ch] - (float)mu * a;
        bn_out(pool, ch, xc, y, m, a, bb, relu);
        const double unbiased = m > 1 ? s2 / (double)(m - 1) : var;
        rmean[ch] = (1.0f - momentum) * rmean[ch] + momentum * (float)mu;
        rvar[ch] = (1.0f - momentum) * rvar[ch] + momentum * (float)unbiased;
    }
}

void sgi_bn_forward_eval(int c, size_t m, float eps, const float *x, const float *gamma,
                         const float *beta, const float *rmean, const float *rvar, float *y,
                         int relu) {
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const float a = gamma[ch] / sqrtf(rvar[ch] + eps), bb = beta[ch] - rmean[ch] * a;
        const float *xc = x + (size_t)ch * m;
        bn_affine(xc, y + (size_t)ch * m, m, a, bb, relu);
    }
}

/* The fused ReLU's gate, recomputed from BN's input: the forward's pre-activation
 * x * a + bb (a = gamma * invstd, bb = beta - mean * a, the expressions bn_affine was
 * given) is > 0 exactly where the ReLU's output is, so backward need not read that
 * output (one stream less of the layer's size; the same bits). */
struct bn_gate {
    int on;
    float a, bb;
};
static inline int bn_open(struct bn_gate g, float x) { return x * g.a + g.bb > 0; }

static struct bn_gate bn_gate_of(int relu, float gamma, float beta, float mu, float is) {
    struct bn_gate g = {relu, 0, 0};
    if (relu) g.a = gamma * is, g.bb = beta - mu * g.a;
    return g;
}

/* BN's input gradient of one channel added into dxc: dx += k1 * (dy - k2 - xhat * k3), dy
 * through the fused ReLU's gate where g.on */
static void bn_dx_add(size_t m, const float *xc, const float *dyc, struct bn_gate g, float mu,
                      float is, float k1, float k2, float k3, float *restrict dxc, int set) {
    /* set: dx = 0 + v, the bits of adding v to a zeroed dx without reading it */
    if (g.on && set) {
        for (size_t i = 0; i < m; i++) {
            const float xhat = (xc[i] - mu) * is, d = bn_open(g, xc[i]) ? dyc[i] : 0.0f;
            dxc[i] = 0.0f + k1 * (d - k2 - xhat * k3);
        }
    } else if (g.on) {
        for (size_t i = 0; i < m; i++) {
            const float xhat = (xc[i] - mu) * is, d = bn_open(g, xc[i]) ? dyc[i] : 0.0f;
            dxc[i] += k1 * (d - k2 - xhat * k3);
        }
    } else if (set) {
        for (size_t i = 0; i < m; i++) {
            const float xhat = (xc[i] - mu) * is;
            dxc[i] = 0.0f + k1 * (dyc[i] - k2 - xhat * k3);
        }
    } else {
        for (size_t i = 0; i < m; i++) {
            const float xhat = (xc[i] - mu) * is;
            dxc[i] += k1 * (dyc[i] - k2 - xhat * k3);
        }
    }
}

/* sum(dy) and sum(dy * xhat) of one channel, dy through the gate where g.on: blocks
 * of 1024 in 16 float lanes (sgi_vf: one vector, or two without AVX-512), blocks
 * added in double, as sgi_sum. (Written as arrays of floats, the compiler kept the
 * lanes on the stack, a store and a reload in every iteration's chain.) */
static void bn_sums(size_t m, const float *restrict xc, const float *restrict dyc,
                    struct bn_gate g, float mu, float is, double *sdy, double *sdyx) {
    double t1 = 0, t2 = 0;
    const sgi_vf zero = {0}, va = zero + g.a, vbb = zero + g.bb, vmu = zero + mu, vis = zero + is;
    for (size_t i = 0; i < m; i += 1024) {
        const size_t end = i + 1024 < m ? i + 1024 : m;
        sgi_vf a1[SGI_VH] = {{0}}, a2[SGI_VH] = {{0}};
        size_t j = i;
        for (; j + 16 <= end; j += 16)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) {
                const sgi_vf x = *(const sgi_vf *)(xc + j + h * SGI_VL);
                sgi_vf d = *(const sgi_vf *)(dyc + j + h * SGI_VL);
                if (g.on) d = (sgi_vf)((sgi_vi)d & (x * va + vbb > 0)); /* bn_open, lane by lane */
                a1[h] += d;
                a2[h] += d * ((x - vmu) * vis);
            }
        float p1 = 0, p2 = 0;
        for (; j < end; j++) {
            const float d = !g.on || bn_open(g, xc[j]) ? dyc[j] : 0.0f;
            p1 += d;
            p2 += d * ((xc[j] - mu) * is);
        }
        for (int h = 0; h < SGI_VH; h++)
            for (int k = 0; k < SGI_VL; k++) p1 += a1[h][k], p2 += a2[h][k];
        t1 += p1, t2 += p2;
    }
    *sdy = t1, *sdyx = t2;
}

/* relu: a ReLU fused after this BN (dy is then the ReLU's output gradient, gated
 * here as the forward's ReLU was); 0: dy is BN's own output gradient. */
void sgi_bn_backward(int c, size_t m, const float *x, const float *gamma, const float *beta,
                     const float *mean, const float *invstd, int relu, const float *dy,
                     float *dx, float *dgamma, float *dbeta, const uint8_t *dead, int set,
                     const struct sgi_bn_pool *pool) {
#pragma omp parallel for schedule(static) num_threads(bn_threads(pool))
    for (int ch = 0; ch < c; ch++) {
        if (dead && dead[ch]) { /* the fused ReLU's 0 output gates every gradient */
            dgamma[ch] = dbeta[ch] = 0.0f;
            if (dx && set) memset(dx + (size_t)ch * m, 0, m * sizeof *dx);
            continue;
        }
        const float *xc = x + (size_t)ch * m, *dyc = bn_dy(pool, ch, dy, m);
        const float mu = mean[ch], is = invstd[ch];
        const struct bn_gate g = bn_gate_of(relu, gamma[ch], beta[ch], mu, is);
        double sdy, sdyx;
        bn_sums(m, xc, dyc, g, mu, is, &sdy, &sdyx);
        dgamma[ch] = (float)sdyx;
        dbeta[ch] = (float)sdy;
        if (!dx) continue;
        /* dx = gamma*is/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)) */
        const float k1 = gamma[ch] * is, k2 = (float)(sdy / (double)m),
                    k3 = (float)(sdyx / (double)m);
        bn_dx_add(m, xc, dyc, g, mu, is, k1, k2, k3, dx + (size_t)ch * m, set);
    }
}

/* This thread's slot of the buffer set of the current phase, or thread t's. */
static double *sync_slot(const struct sgi_bn_sync *sy, int t) {
    return sy->part + ((size_t)(sy->seq & 1) * sy->T + t) * SGI_BN_SLOT(sy->cmax);
}

/* Every thread's values of the current phase are in the buffer after this. */
static void sync_wait(void) {
#pragma omp barrier
}

void sgi_bn_forward_sync(struct sgi_bn_sync *sy, int c, size_t m, size_t m_all, float eps,
                         float momentum, const float *x, const float *gamma, const float *beta,
                         float *rmean, float *rvar, float *mean, float *invstd, float *y,
                         int relu, const uint8_t *dead, const struct sgi_bn_pool *pool) {
    /* one phase: each shard's mean and squared deviations, joined in thread order */
    double *mine = sync_slot(sy, sy->t);
    mine[2 * (size_t)sy->cmax] = (double)m;
    for (int ch = 0; ch < c; ch++) {
        mine[2 * ch] = mine[2 * ch + 1] = 0.0;
        if (!(dead && dead[ch]))
            sgi_mean_m2(x + (size_t)ch * m, m, &mine[2 * ch], &mine[2 * ch + 1]);
    }
    sync_wait();
    for (int ch = 0; ch < c; ch++) {
        if (dead && dead[ch]) { /* x is 0: mean and variance 0, output 0 */
            bn_out_zero(pool, ch, y, m);
            mean[ch] = 0.0f;
            invstd[ch] = (float)(1.0 / sqrt(0.0 + eps));
            if (sy->t == 0) {
                rmean[ch] = (1.0f - momentum) * rmean[ch] + momentum * 0.0f;
                rvar[ch] = (1.0f - momentum) * rvar[ch] + momentum * 0.0f;
            }
            continue;
        }
        double nn = 0, mu_d = 0, s2 = 0;
        for (int t = 0; t < sy->T; t++) {
            const double *sl = sync_slot(sy, t);
            sgi_moments_join(&nn, &mu_d, &s2, sl[2 * (size_t)sy->cmax], sl[2 * ch],
                             sl[2 * ch + 1]);
        }
        const double var = s2 / (double)m_all;
        const float is = (float)(1.0 / sqrt(var + eps)), mu = (float)mu_d;
        mean[ch] = mu;
        invstd[ch] = is;
        const float a = gamma[ch] * is, bb = beta[ch] - mu * a;
        bn_out(pool, ch, x + (size_t)ch * m, y, m, a, bb, relu);
        if (sy->t == 0) {
            const double unbiased = m_all > 1 ? s2 / (double)(m_all - 1) : var;
            rmean[ch] = (1.0f - momentum) * rmean[ch] + momentum * mu;
            rvar[ch] = (1.0f - momentum) * rvar[ch] + momentum * (float)unbiased;
        }
    }
    sy->seq++;
}

void sgi_bn_backward_sync(struct sgi_bn_sync *sy, int c, size_t m, size_t m_all, const float *x,
                          const float *gamma, const float *beta, const float *mean,
                          const float *invstd, int relu, const float *dy, float *dx,
                          float *dgamma, float *dbeta, const uint8_t *dead, int set,
                          const struct sgi_bn_pool *pool) {
    double *mine = sync_slot(sy, sy->t);
    for (int ch = 0; ch < c; ch++) {
        mine[2 * ch] = mine[2 * ch + 1] = 0.0;
        if (dead && dead[ch]) continue;
        const size_t o = (size_t)ch * m;
        bn_sums(m, x + o, bn_dy(pool, ch, dy, m), bn_gate_of(relu, gamma[ch], beta[ch], mean[ch], invstd[ch]),
                mean[ch], invstd[ch], &mine[2 * ch], &mine[2 * ch + 1]);
    }
    sync_wait();
    for (int ch = 0; ch < c; ch++) {
        if (dead && dead[ch]) { /* the fused ReLU's 0 output gates every gradient */
            dgamma[ch] = dbeta[ch] = 0.0f;
            if (dx && set) memset(dx + (size_t)ch * m, 0, m * sizeof *dx);
            continue;
        }
        double sdy = 0, sdyx = 0;
        for (int t = 0; t < sy->T; t++) sdy += sync_slot(sy, t)[2 * ch], sdyx += sync_slot(sy, t)[2 * ch + 1];
        dgamma[ch] = (float)mine[2 * ch + 1];
        dbeta[ch] = (float)mine[2 * ch];
        if (!dx) continue;
        const float *xc = x + (size_t)ch * m, *dyc = bn_dy(pool, ch, dy, m);
        const float mu = mean[ch], is = invstd[ch];
        const float k1 = gamma[ch] * is, k2 = (float)(sdy / (double)m_all),
                    k3 = (float)(sdyx / (double)m_all);
        bn_dx_add(m, xc, dyc, bn_gate_of(relu, gamma[ch], beta[ch], mu, is), mu, is, k1, k2, k3,
                  dx + (size_t)ch * m, set);
    }
    sy->seq++;
}

void sgi_relu_forward(size_t n, const float *x, float *y) {
    SGI_PAR_FOR(sg_get_threads(), for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;);
}

void sgi_relu_backward(size_t n, const float *y, const float *dy, float *dx, int set) {
    if (set) { /* dx written: the bits of adding to a zeroed dx */
        SGI_PAR_FOR(sg_get_threads(),
                    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? 0.0f + dy[i] : 0.0f;);
        return;
    }
    SGI_PAR_FOR(sg_get_threads(), for (size_t i = 0; i < n; i++) if (y[i] > 0) dx[i] += dy[i];);
}

void sgi_flatten_forward(int c, int n, int hw, const float *x, float *y) {
    SGI_PAR_FOR(sg_get_threads(), for (int ch = 0; ch < c; ch++) {
        for (int b = 0; b < n; b++) {
            const float *src = x + ((size_t)ch * n + b) * hw;
            for (int i = 0; i < hw; i++) y[((size_t)ch * hw + i) * n + b] = src[i];
        }
    });
}

void sgi_flatten_backward(int c, int n, int hw, const float *dy, float *dx, int set) {
    SGI_PAR_FOR(sg_get_threads(), for (int ch = 0; ch < c; ch++) {
        for (int b = 0; b < n; b++) {
            float *dst = dx + ((size_t)ch * n + b) * hw;
            if (set)
                for (int i = 0; i < hw; i++) dst[i] = 0.0f + dy[((size_t)ch * hw + i) * n + b];
            else
                for (int i = 0; i < hw; i++) dst[i] += dy[((size_t)ch * hw + i) * n + b];
        }
    });
}

void sgi_softmax_forward(int k, int n, const float *x, float *y) {
    for (int j = 0; j < n; j++) {
        float mx = -FLT_MAX;
        for (int i = 0; i < k; i++) mx = x[(size_t)i * n + j] > mx ? x[(size_t)i * n + j] : mx;
        double s = 0;
        for (int i = 0; i < k; i++) {
            const float e = expf(x[(size_t)i * n + j] - mx);
            y[(size_t)i * n + j] = e;
            s += e;
        }
        for (int i = 0; i < k; i++) y[(size_t)i * n + j] = (float)(y[(size_t)i * n + j] / s);
    }
}

void sgi_softmax_backward(int k, int n, const float *y, const float *dy, float *dx) {
    for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int i = 0; i < k; i++) dot += (double)y[(size_t)i * n + j] * dy[(size_t)i * n + j];
        for (int i = 0; i < k; i++)
            dx[(size_t)i * n + j] += y[(size_t)i * n + j] * (dy[(size_t)i * n + j] - (float)dot);
    }
}

struct sgi_pool sgi_pool_of(const struct sg_model *m, const struct sg_node *n, int batch) {
    const struct sg_node *x = &m->nodes[n->in[0]];
    struct sgi_pool g = {x->c * batch, x->h, x->w, n->kh, n->kw, n->sh, n->sw, n->pt, n->pl,
                         n->pb, n->pr, n->h, n->w, n->count_include_pad};
    if (n->op == SG_OP_GAP) {
        g.kh = x->h;
        g.kw = x->w;
        g.sh = g.sw = 1;
        g.pt = g.pl = g.pb = g.pr = 0;
        g.p = g.q = 1;
    }
    return g;
}

void sgi_to_channel_major(const float *x, int n, int c, size_t hw, float *y) {
    if (c == 1 || n == 1) {
        memcpy(y, x, (size_t)c * n * hw * sizeof *y);
        return;
    }
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            memcpy(y + ((size_t)ch * n + b) * hw, x + ((size_t)b * c + ch) * hw, hw * sizeof *y);
}
