/* Convolution on channel-major activations: im2col over a chunk of the batch, one
 * sgemm per group and chunk; 1x1 stride-1 unpadded convolutions skip im2col since
 * X[C][N*H*W] already is the column matrix. Also the naive NCHW reference. */

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/sgi.h"
/* SGI_KV: kernel masks on im2col layers (src/nn/kept_mm.c's kernels) and the
 * one-channel direct path run their vector kernels, AVX-512 or AVX2 with FMA */
#include "core/sgi_kv.h"
#include "nn/ops.h"

/* GCC's loop-idiom pass turns copy_row's and the zeroing loops into libc memmove and
 * memset calls; for the rows of small feature maps (LeNet-5's conv1: 24 floats) the
 * call cost more than the copy (memmove was 8% of a one-thread LeNet-5 epoch). */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

/* im2col works on slices of the batch whose columns fit in L2 (1 MB): the GEMM then
 * reads them from cache. Measured on LeNet-5, VGG-7 and ResNet-8 (bench notes in
 * docs/performance.md): faster than one whole-batch slice or keeping the columns
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

/* Threads take whole slices of the batch when there are enough slices: im2col and
 * a single-threaded GEMM then run on one core, in its own L2, with no hand-offs
 * inside the GEMM. With fewer slices than threads (small batches), one slice at a
 * time uses all threads instead. */
static int by_slices(const struct sg_conv_geom *g, int threads) {
    const int nb = chunk_of(g);
    return threads <= 1 || (g->n + nb - 1) / nb >= threads;
}

static size_t col_floats(const struct sg_conv_geom *g) {
    return is_pointwise(g) ? 0 : sgi_round16(rows_of(g) * (size_t)chunk_of(g) * g->p * g->q);
}

static size_t dw_floats(const struct sg_conv_geom *g) {
    return sgi_round16((size_t)g->k * rows_of(g));
}

static size_t im2col_workspace(const struct sg_conv_geom *g, int threads) {
    if (!by_slices(g, threads)) return col_floats(g);
    /* per thread: a column slice, and (backward) its own weight-gradient sum */
    return (size_t)threads * (col_floats(g) + (threads > 1 ? dw_floats(g) : 0));
}

#if SGI_KV
static int c1_ok(const struct sg_conv_geom *g);
static size_t c1_per_thread(const struct sg_conv_geom *g);
#endif

static size_t kept_cols_workspace(const struct sg_conv_geom *g, int threads);

size_t sgi_conv_workspace(const struct sg_conv_geom *g, int threads) {
    if (threads < 1) threads = 1;
    size_t a = im2col_workspace(g, threads);
    if (sgi_conv_kept_cols_ok(g) && kept_cols_workspace(g, threads) > a)
        a = kept_cols_workspace(g, threads);
    if (sgi_conv_lanes_workspace(g, threads) > a) a = sgi_conv_lanes_workspace(g, threads);
#if SGI_KV
    if (c1_ok(g) && (size_t)threads * c1_per_thread(g) > a) a = (size_t)threads * c1_per_thread(g);
#endif
    if (!sgi_wino_train_shape_ok(g)) return a; /* kernel masks take Winograd on small outputs */
    const size_t b = sgi_wino_train_workspace(g, threads);
    return a > b ? a : b;
}

/* Eight floats moved as one (unaligned) 256-bit value. A plain memcpy(d, s, 32) in
 * a loop is turned back into a libc memmove call by GCC's loop-idiom pass, which
 * costs more than the copy for the short rows of small feature maps. */
typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));

/* Copies n floats; blocks of 8 when n >= 8, the last block overlapping the
 * previous one rather than falling back to scalar code. */
static inline void copy_row(float *restrict d, const float *restrict s, int n) {
    if (n >= 8) {
        int i = 0;
        for (; i + 8 <= n; i += 8) *(v8f *)(d + i) = *(const v8f *)(s + i);
        if (i < n) *(v8f *)(d + n - 8) = *(const v8f *)(s + n - 8);
    } else {
        for (int i = 0; i < n; i++) d[i] = s[i];
    }
}

static inline void add_row(float *restrict d, const float *restrict s, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) *(v8f *)(d + i) += *(const v8f *)(s + i);
    for (; i < n; i++) d[i] += s[i];
}

/* Stride-2 rows (the stride-2 3x3 and 1x1 projection layers of ResNets): the
 * columns q in [qa, qb) read input columns 2q + off inside the row, the others are
 * padding. With AVX-512, 16 columns at a time: 32 input floats in two masked loads,
 * the even ones picked by one permute (the scalar loop cost more than the GEMM). */
static void s2_range(int off, int W, int Q, int *qa, int *qb) {
    int a = off < 0 ? (1 - off) / 2 : 0, b = W - off > 0 ? (W - off + 1) / 2 : 0;
    if (b > Q) b = Q;
    if (a > b) a = b;
    *qa = a, *qb = b;
}

#ifdef __AVX512F__
static inline __mmask16 lanes_below(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}
#endif

/* d[q] = xr[2q + off] where that is inside [0, W), else 0; q in [0, Q). */
static void gather_row_s2(float *restrict d, const float *restrict xr, int off, int W, int Q) {
    int qa, qb;
    s2_range(off, W, Q, &qa, &qb);
    for (int q = 0; q < qa; q++) d[q] = 0;
    int q = qa;
#ifdef __AVX512F__
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; q < qb; q += 16) {
        const int j0 = 2 * q + off, n = qb - q < 16 ? qb - q : 16; /* j0 >= 0 */
        const __m512 a = _mm512_maskz_loadu_ps(lanes_below(W - j0), xr + j0);
        const __m512 b = _mm512_maskz_loadu_ps(lanes_below(W - j0 - 16), xr + j0 + 16);
        _mm512_mask_storeu_ps(d + q, lanes_below(n), _mm512_permutex2var_ps(a, even, b));
    }
    q = qb;
#endif
    for (; q < qb; q++) d[q] = xr[2 * q + off];
    for (q = qb; q < Q; q++) d[q] = 0;
}

/* xr[2q + off] += sr[q] for the q whose column is inside [0, W): col2im's stride-2
 * row. Scalar: a vector version (permute to the even lanes, masked load-add-store)
 * measured slower on this AMD EPYC. */
static void scatter_add_row_s2(float *restrict xr, const float *restrict sr, int off, int W,
                               int Q) {
    int qa, qb;
    s2_range(off, W, Q, &qa, &qb);
    for (int q = qa; q < qb; q++) xr[2 * q + off] += sr[q];
}

#ifdef __AVX512F__
/* One input row's share of col2im for a stride-2 3x3 layer with left padding 1
 * (ResNets' downsampling convolutions): a kernel row's taps c0, c1, c2 fall at
 * columns 2q - 1, 2q and 2q + 1, so the even columns get c1[q], the odd ones
 * c0[q + 1] and then c2[q], the order of the taps (s) in which the row by row loop
 * adds them: every entry gets the same additions in the same order. 32 columns at
 * a time: loaded once, split into even and odd lanes by two permutes, masked adds
 * (lanes without a tap untouched), joined and stored. ResNet-8's block2 and block3
 * conv1 input gradients (one thread, batch 32): 0.89 -> 0.69 and 0.76 -> 0.52 ms.
 * The 1x1 projections' single tap (only the even columns) measured slower this
 * way (0.43 -> 0.57 ms) and keeps scatter_add_row_s2. */
static void s2_taps_row(float *restrict xr, const float *c0, const float *c1, const float *c2,
                        int W, int Q) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    for (int q0 = 0; 2 * q0 < W; q0 += 16) {
        /* columns past the row are neither loaded nor stored, so the adds need
         * only stop at the last output column */
        const int left = W - 2 * q0, nq = Q - q0;
        const __mmask16 m0 = lanes_below(left), m1 = lanes_below(left - 16);
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, xr + 2 * q0);
        const __m512 x1 = _mm512_maskz_loadu_ps(m1, xr + 2 * q0 + 16);
        __m512 e = _mm512_permutex2var_ps(x0, even, x1), o = _mm512_permutex2var_ps(x0, odd, x1);
        const __mmask16 kq = lanes_below(nq);
        const __mmask16 k0 = lanes_below(nq - 1);
        e = _mm512_mask_add_ps(e, kq, e, _mm512_maskz_loadu_ps(kq, c1 + q0));
        o = _mm512_mask_add_ps(o, k0, o, _mm512_maskz_loadu_ps(k0, c0 + q0 + 1));
        o = _mm512_mask_add_ps(o, kq, o, _mm512_maskz_loadu_ps(kq, c2 + q0));
        _mm512_mask_storeu_ps(xr + 2 * q0, m0, _mm512_permutex2var_ps(e, lo, o));
        _mm512_mask_storeu_ps(xr + 2 * q0 + 16, m1, _mm512_permutex2var_ps(e, hi, o));
    }
}
#endif

/* Stride 1, dilation 1, output rows as wide as the input's (Q == W, "same" padding
 * across): column row (r, s) of one sample is the input plane shifted by
 * d = (r - pt) W + (s - pl), so it is one contiguous copy over the entries i with
 * 0 <= i + d < H W, the rest 0, then the |s - pl| columns at the side that fall on
 * padding (the copy filled them from the neighbouring row) set to 0. One copy per
 * plane instead of one per row: ResNet-8's 7x7 and VGG's small layers have 7-14
 * floats per row. */
static int plane_ok(const struct sg_conv_geom *g) {
    return g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->q == g->w;
}

/* [i0, i1): the column entries of a plane whose input entry i + d is in the plane */
static void plane_range(const struct sg_conv_geom *g, long d, long *i0, long *i1) {
    const long pq = (long)g->p * g->q, hw = (long)g->h * g->w;
    long a = d < 0 ? -d : 0, b = hw - d < pq ? hw - d : pq;
    if (a > pq) a = pq;
    if (b < a) b = a;
    *i0 = a, *i1 = b;
}

/* Sets to 0 the columns q of a P x Q plane whose input column q + cs is padding. */
static void zero_side(float *dd, int P, int Q, int cs) {
    const int qa = cs < 0 ? 0 : (Q - cs > 0 ? Q - cs : 0), qb = cs < 0 ? (-cs < Q ? -cs : Q) : Q;
    if (cs == 0 || qa >= qb) return;
    for (int p = 0; p < P; p++)
        for (int q = qa; q < qb; q++) dd[(size_t)p * Q + q] = 0;
}

/* [p0, p1): the output rows p whose input row p sh - pt + r dh is inside [0, H). */
static void rows_inside(const struct sg_conv_geom *g, int r, int *p0, int *p1) {
    const int base = r * g->dh - g->pt; /* input row of output row 0 */
    int a = base >= 0 ? 0 : (-base + g->sh - 1) / g->sh;
    int b = g->h - base > 0 ? (g->h - base + g->sh - 1) / g->sh : 0;
    if (b > g->p) b = g->p;
    if (a > b) a = b;
    *p0 = a, *p1 = b;
}

/* Row `row` = (cc, r, s) of the columns of samples n0..n0+nb of group grp:
 * dst[b*P*Q + p*Q + q] = x[grp*cg + cc][n0 + b][p*sh - pt + r*dh][q*sw - pl + s*dw]. */
static void im2col_row(const struct sg_conv_geom *g, const float *x, int grp, int n0, int nb,
                       int row, float *restrict dst) {
    const int cg = g->c / g->groups, R = g->r, S = g->s, P = g->p, Q = g->q, H = g->h, W = g->w;
    const int sh = g->sh, sw = g->sw, pt = g->pt;
    const size_t hw = (size_t)H * W;
    const int cc = row / (R * S), r = (row / S) % R, s = row % S;
    const float *xc = x + (size_t)(grp * cg + cc) * g->n * hw;
    const int off = s * g->dw - g->pl;
    int q0 = 0, q1 = Q; /* stride 1: q in [q0, q1) reads inside the input row */
    if (sw == 1) {
        q0 = off < 0 ? -off : 0;
        q1 = W - off < Q ? W - off : Q;
        if (q1 < q0) q1 = q0;
    }
    if (plane_ok(g)) {
        const long d = (long)(r - pt) * W + off;
        long i0, i1;
        plane_range(g, d, &i0, &i1);
        for (int b = 0; b < nb; b++) {
            const float *xs = xc + (size_t)(n0 + b) * hw;
            float *restrict dd = dst + (size_t)b * P * Q;
            for (long i = 0; i < i0; i++) dd[i] = 0;
            copy_row(dd + i0, xs + i0 + d, (int)(i1 - i0));
            for (long i = i1; i < (long)P * Q; i++) dd[i] = 0;
            zero_side(dd, P, Q, off);
        }
        return;
    }
    if (sw == 1 && q0 == 0 && q1 == Q) {
        /* stride-1 rows that read no horizontal padding (LeNet-5's valid 5x5 layer:
         * 8 floats a row): the rows inside the input found once, then one copy a
         * row at a fixed source stride, no test per row */
        int p0, p1;
        rows_inside(g, r, &p0, &p1);
        const size_t step = (size_t)sh * W;
        for (int b = 0; b < nb; b++) {
            float *restrict d = dst + (size_t)b * P * Q;
            if (p0 > 0) memset(d, 0, (size_t)p0 * Q * sizeof *d);
            if (p1 > p0) {
                const float *src = xc + (size_t)(n0 + b) * hw + (size_t)(p0 * sh - pt + r * g->dh) * W + off;
                if (Q == 8)
                    for (int p = p0; p < p1; p++, src += step) *(v8f *)(d + (size_t)p * 8) = *(const v8f *)src;
                else
                    for (int p = p0; p < p1; p++, src += step) copy_row(d + (size_t)p * Q, src, Q);
            }
            if (p1 < P) memset(d + (size_t)p1 * Q, 0, (size_t)(P - p1) * Q * sizeof *d);
        }
        return;
    }
#ifdef __AVX512F__
    if (sw == 2 && Q <= 16) {
        /* a whole output row in one vector: lane q reads xr[2q + off], the lanes
         * outside the input zeroed by the loads' masks (computed once for the row) */
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const int lo = off < 0 ? -off : 0;
        const __mmask16 ma = (__mmask16)(lanes_below(W - off) & ~lanes_below(lo));
        const __mmask16 mb = lanes_below(W - off - 16), mq = lanes_below(Q);
        for (int b = 0; b < nb; b++) {
            const float *xs = xc + (size_t)(n0 + b) * hw;
            for (int p = 0; p < P; p++) {
                float *restrict d = dst + ((size_t)b * P + p) * Q;
                const int ih = p * sh - pt + r * g->dh;
                if (ih < 0 || ih >= H) {
                    _mm512_mask_storeu_ps(d, mq, _mm512_setzero_ps());
                    continue;
                }
                /* xr + off points before the row by the left padding: only masked lanes read */
                const float *xr = xs + (size_t)ih * W + off;
                const __m512 a = _mm512_maskz_loadu_ps(ma, xr);
                const __m512 bv = _mm512_maskz_loadu_ps(mb, xr + 16);
                _mm512_mask_storeu_ps(d, mq, _mm512_permutex2var_ps(a, even, bv));
            }
        }
        return;
    }
#endif
    for (int b = 0; b < nb; b++) {
        const float *xs = xc + (size_t)(n0 + b) * hw;
        for (int p = 0; p < P; p++) {
            float *restrict d = dst + ((size_t)b * P + p) * Q;
            const int ih = p * sh - pt + r * g->dh;
            if (ih < 0 || ih >= H) {
                memset(d, 0, (size_t)Q * sizeof *d);
                continue;
            }
            const float *xr = xs + (size_t)ih * W;
            if (sw == 1) {
                for (int q = 0; q < q0; q++) d[q] = 0;
                copy_row(d + q0, xr + q0 + off, q1 - q0);
                for (int q = q1; q < Q; q++) d[q] = 0;
            } else if (sw == 2) {
                gather_row_s2(d, xr, off, W, Q);
            } else {
                for (int q = 0; q < Q; q++) {
                    const int iw = q * sw + off;
                    d[q] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
                }
            }
        }
    }
}

/* dx[grp*cg + cc][n0 + b] += the column entries of (cc, b): the inverse scatter.
 * On the plane path the entries that fall on padding are first set to 0 in col
 * (scratch by then), so that the plane is one contiguous add; every dx entry gets
 * the same additions in the same (r, s) order as row by row. */
static void col2im_task(const struct sg_conv_geom *g, float *col, int grp, int n0, int nb,
                        int cc, int b, float *dx) {
    const int cg = g->c / g->groups, R = g->r, S = g->s, P = g->p, Q = g->q, H = g->h, W = g->w;
    const size_t hw = (size_t)H * W, cols = (size_t)nb * P * Q;
    float *xs = dx + (size_t)(grp * cg + cc) * g->n * hw + (size_t)(n0 + b) * hw;
    const int plane = plane_ok(g);
#ifdef __AVX512F__
    /* ResNets' stride-2 3x3 layers: a kernel row's three taps at once */
    if (g->sw == 2 && g->dw == 1 && S == 3 && g->pl == 1) {
        for (int r = 0; r < R; r++) {
            const float *c0 = col + (size_t)((cc * R + r) * S) * cols + (size_t)b * P * Q;
            const float *c1 = c0 + cols, *c2 = c1 + cols;
            for (int p = 0; p < P; p++) {
                const int ih = p * g->sh - g->pt + r * g->dh;
                if (ih < 0 || ih >= H) continue;
                const size_t o = (size_t)p * Q;
                s2_taps_row(xs + (size_t)ih * W, c0 + o, c1 + o, c2 + o, W, Q);
            }
        }
        return;
    }
#endif
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            float *src = col + (size_t)((cc * R + r) * S + s) * cols + (size_t)b * P * Q;
            const int off = s * g->dw - g->pl;
            if (plane) {
                const long d = (long)(r - g->pt) * W + off;
                long i0, i1;
                plane_range(g, d, &i0, &i1);
                zero_side(src, P, Q, off);
                if (i1 > i0) add_row(xs + i0 + d, src + i0, (int)(i1 - i0));
                continue;
            }
            int q0 = 0, q1 = Q;
            if (g->sw == 1) {
                q0 = off < 0 ? -off : 0;
                q1 = W - off < Q ? W - off : Q;
            }
            if (g->sw == 1 && q0 == 0 && q1 == Q) { /* as im2col_row's stride-1 path */
                int p0, p1;
                rows_inside(g, r, &p0, &p1);
                if (p0 == p1) continue;
                const size_t step = (size_t)g->sh * W;
                float *xr = xs + (size_t)(p0 * g->sh - g->pt + r * g->dh) * W + off;
                const float *sr = src + (size_t)p0 * Q;
                if (Q == 8)
                    for (int p = p0; p < p1; p++, xr += step, sr += 8) *(v8f *)xr += *(const v8f *)sr;
                else
                    for (int p = p0; p < p1; p++, xr += step, sr += Q) add_row(xr, sr, Q);
                continue;
            }
            for (int p = 0; p < P; p++) {
                const int ih = p * g->sh - g->pt + r * g->dh;
                if (ih < 0 || ih >= H) continue;
                float *xr = xs + (size_t)ih * W;
                const float *sr = src + (size_t)p * Q;
                if (g->sw == 1) {
                    if (q1 > q0) add_row(xr + q0 + off, sr + q0, q1 - q0);
                } else if (g->sw == 2) {
                    scatter_add_row_s2(xr, sr, off, W, Q);
                } else {
                    for (int q = 0; q < Q; q++) {
                        const int iw = q * g->sw + off;
                        if (iw >= 0 && iw < W) xr[iw] += sr[q];
                    }
                }
            }
        }
}

/* Columns of one slice: serially (inside a thread's slice) or by all threads. */
static void im2col(const struct sg_conv_geom *g, const float *x, int grp, int n0, int nb,
                   float *col, int parallel) {
    const int rows = (int)rows_of(g);
    const size_t cols = (size_t)nb * g->p * g->q;
    SGI_PAR_FOR(parallel ? sg_get_threads() : 1, for (int row = 0; row < rows; row++)
                    im2col_row(g, x, grp, n0, nb, row, col + (size_t)row * cols););
}

static void col2im(const struct sg_conv_geom *g, float *col, int grp, int n0, int nb,
                   float *dx, int parallel) {
    const int cg = g->c / g->groups, tasks = cg * nb;
    /* one task per (channel, sample): no two tasks write the same dx */
    SGI_PAR_FOR(parallel ? sg_get_threads() : 1, for (int t = 0; t < tasks; t++)
                    col2im_task(g, col, grp, n0, nb, t / nb, t % nb, dx););
}

/* The slice [n0, n0 + bsz) of one group: columns, then y = W col. */
static void forward_slice(const struct sg_conv_geom *g, const float *x, const float *w, float *y,
                          float *col, int n0, int bsz, int grp, int parallel) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t hw = (size_t)g->h * g->w, pq = (size_t)g->p * g->q, crs = rows_of(g);
    const float *B;
    size_t ldb;
    if (is_pointwise(g)) {
        B = x + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw;
        ldb = (size_t)g->n * hw;
    } else {
        im2col(g, x, grp, n0, bsz, col, parallel);
        B = col;
        ldb = (size_t)bsz * pq;
    }
    sgi_sgemm_own(0, 0, kg, bsz * (int)pq, (int)crs, 1.0f, w + (size_t)grp * kg * crs, (int)crs, B,
              (int)ldb, 0.0f, y + (size_t)grp * kg * g->n * pq + (size_t)n0 * pq, g->n * (int)pq);
}

/* Backward of one slice: dw (+)= dy col^T (beta 0 for the first slice a sum sees),
 * dx += col2im(W^T dy). */
static void backward_slice(const struct sg_conv_geom *g, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float dw_beta, float *col,
                           int n0, int bsz, int grp, int parallel) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t hw = (size_t)g->h * g->w, pq = (size_t)g->p * g->q, crs = rows_of(g);
    const int ldy = g->n * (int)pq;
    const float *dyg = dy + (size_t)grp * kg * g->n * pq + (size_t)n0 * pq;
    const float *wg = w + (size_t)grp * kg * crs;
    const int pw = is_pointwise(g);
    const float *B;
    size_t ldb;
    if (pw) {
        B = x + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw;
        ldb = (size_t)g->n * hw;
    } else {
        im2col(g, x, grp, n0, bsz, col, parallel);
        B = col;
        ldb = (size_t)bsz * pq;
    }
    sgi_sgemm_own(0, 1, kg, (int)crs, bsz * (int)pq, 1.0f, dyg, ldy, B, (int)ldb, dw_beta,
              dw + (size_t)grp * kg * crs, (int)crs);
    if (!dx) return;
    if (pw) {
        sgi_sgemm_own(1, 0, (int)crs, bsz * (int)pq, kg, 1.0f, wg, (int)crs, dyg, ldy, 1.0f,
                  dx + (size_t)grp * cg * g->n * hw + (size_t)n0 * hw, (int)ldb);
    } else {
        sgi_sgemm_own(1, 0, (int)crs, bsz * (int)pq, kg, 1.0f, wg, (int)crs, dyg, ldy, 0.0f, col,
                  (int)ldb);
        col2im(g, col, grp, n0, bsz, dx, parallel);
    }
}

/* ---- kernel masks on im2col layers ----
 * A kernel-masked layer whose shape is not a Winograd one (LeNet-5's 5x5 layer,
 * strided layers) keeps the im2col of every slice as it is and multiplies only
 * the kept kernels, each R*S consecutive rows of the column matrix, channel by
 * channel over the filters that keep it (src/nn/kept_mm.c): forward Y[k] = the
 * sum over its kept kernels; input gradient dcol[c, i] = the sum over the filters
 * that keep c, then col2im; weight gradient only the kept kernels' sums over the
 * slice, per thread in slice order, the threads in order (the removed kernels'
 * entries stay 0). Threads take whole slices. AVX-512 and AVX2 builds (elsewhere
 * the dense masked kernels run). Checked against the dense masked kernels in
 * tests/test_conv_kernel.c. */
int sgi_conv_kept_cols_ok(const struct sg_conv_geom *g) {
#if SGI_KV
    return g->groups == 1 && g->c > 1 && !is_pointwise(g);
#else
    (void)g;
    return 0;
#endif
}

/* per thread a column slice and a weight-gradient sum */
static size_t kept_cols_workspace(const struct sg_conv_geom *g, int threads) {
    return (size_t)threads * (col_floats(g) + dw_floats(g));
}

#if SGI_KV
/* slice sl of kept_cols_forward in thread t's area */
static void kept_cols_fwd_slice(const struct sg_conv_geom *g, const float *x, const float *w,
                                const struct sgi_kept *kp, float *y, float *ws, int sl, int t) {
    const int nb = chunk_of(g), rs = g->r * g->s;
    const size_t pq = (size_t)g->p * g->q, per = col_floats(g) + dw_floats(g);
    float *col = ws + (size_t)t * per;
    const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb, T = bsz * (int)pq;
    im2col(g, x, 0, n0, bsz, col, 0);
    if (sgi_kept_products_free()) { /* a timing bound (benchmarks): outputs 0 */
        for (int k = 0; k < g->k; k++)
            memset(y + (size_t)k * g->n * pq + (size_t)n0 * pq, 0, (size_t)T * sizeof *y);
        return;
    }
    sgi_kept_cols_forward(g->k, g->c, rs, T, w, kp->bp, kp->bi, col, y + (size_t)n0 * pq,
                          (size_t)g->n * pq);
}

static void kept_cols_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                              const struct sgi_kept *kp, float *y, float *ws, int threads) {
    const int nslices = (g->n + chunk_of(g) - 1) / chunk_of(g);
    if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int sl = 0; sl < nslices; sl++)
            kept_cols_fwd_slice(g, x, w, kp, y, ws, sl, omp_get_thread_num());
    } else /* no region (sgi.h, SGI_PAR_FOR) */
        for (int sl = 0; sl < nslices; sl++) kept_cols_fwd_slice(g, x, w, kp, y, ws, sl, 0);
}

/* thread t of a team of T (0 of 1: no region) of kept_cols_backward: its share of the
 * slices, its weight-gradient sums in its area */
static void kept_cols_bwd_thread(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const struct sgi_kept *kp, const float *dy, float *dx,
                                 float *ws, int t, int team) {
    const int nb = chunk_of(g), nslices = (g->n + nb - 1) / nb, rs = g->r * g->s;
    const size_t pq = (size_t)g->p * g->q, crs = rows_of(g), ldy = (size_t)g->n * pq;
    const size_t cf = col_floats(g), per = cf + dw_floats(g), ndw = (size_t)g->k * crs;
    float *col = ws + (size_t)t * per, *acc = col + cf;
    memset(acc, 0, ndw * sizeof *acc);
    int sa, sb;
    sgi_static_range(nslices, t, team, &sa, &sb);
    for (int sl = sa; sl < sb; sl++) {
        const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb, T = bsz * (int)pq;
        const float *dys = dy + (size_t)n0 * pq;
        im2col(g, x, 0, n0, bsz, col, 0);
        const int free_kept = sgi_kept_products_free(); /* a timing bound (benchmarks) */
        if (!free_kept) sgi_kept_cols_wgrad(g->c, rs, T, dys, ldy, kp->bp, kp->bi, col, acc, crs);
        if (!dx) continue;
        if (!free_kept) sgi_kept_cols_dgrad(g->c, rs, T, w, crs, kp->bp, kp->bi, dys, ldy, col);
        col2im(g, col, 0, n0, bsz, dx, 0);
    }
}

static void kept_cols_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                               const struct sgi_kept *kp, const float *dy, float *dx, float *dw,
                               float *ws, int threads) {
    const size_t crs = rows_of(g), cf = col_floats(g), per = cf + dw_floats(g);
    const size_t ndw = (size_t)g->k * crs;
    int used = 1;
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
#pragma omp single
            used = omp_get_num_threads();
            kept_cols_bwd_thread(g, x, w, kp, dy, dx, ws, omp_get_thread_num(),
                                 omp_get_num_threads());
        }
    } else /* no region (sgi.h, SGI_PAR_FOR) */
        kept_cols_bwd_thread(g, x, w, kp, dy, dx, ws, 0, 1);
    /* the threads' sums in thread order */
    for (size_t i = 0; i < ndw; i++) {
        float s = ws[cf + i];
        for (int t = 1; t < used; t++) s += ws[(size_t)t * per + cf + i];
        dw[i] = s;
    }
}
#endif

void sgi_conv_add_bias(const struct sg_conv_geom *g, const float *b, float *y) {
    const size_t len = (size_t)g->n * g->p * g->q;
    SGI_PAR_FOR(len * g->k > 65536 ? sg_get_threads() : 1, for (int k = 0; k < g->k; k++) {
        float *yk = y + (size_t)k * len;
        const float bk = b[k];
        for (size_t i = 0; i < len; i++) yk[i] += bk;
    });
}

/* ---- one input channel: direct convolution on a padded plane ----
 * A layer with one input channel (the first layer of LeNet-5 and VGG-7 on
 * grey-scale images) has R*S column rows per output: im2col copied each input
 * value R*S times, more than the product itself cost (LeNet-5's conv1: 2 ms of an
 * 11 ms step). Here each sample's plane is copied once, zero-padded to
 * Wp = Q + S - 1 columns, and the output is computed "wide": entry t = p*Wp + q of
 * a row-major P x Wp plane is sum_{r,s} w[r][s] xp[t + r*Wp + s], so the R*S
 * terms are contiguous loads at fixed offsets and C1_V vectors of consecutive t
 * (four AVX-512 ones, 64 t; two AVX2 ones, 16 t) times four filters are one
 * register block (kv, core/sgi_kv.h); the Q of every Wp columns
 * that are outputs are copied out. The sum is the GEMM's: the R*S products added
 * in (r, s) order in one fused multiply-add chain from 0, then the bias, so the
 * forward gives the im2col path's bits. The weight gradient (when no input
 * gradient is asked, as for a first layer) is the same wide plane turned around:
 * dw[k][r][s] = sum over samples and t of dyw[k][t] xp[t + r*Wp + s], with dyw
 * zero off the outputs, in KW-lane partial sums per (k, r, s) summed at the end
 * (an order of its own; per thread, then the threads in order). */
#if SGI_KV
#define C1_FB 4  /* filters per register block */
#ifdef __AVX512F__
#define C1_V 4   /* vectors of t per forward block */
#define C1_RB 5  /* (r, s) taps per weight-gradient block */
#else            /* 16 registers */
#define C1_V 2
#define C1_RB 2
#endif

static size_t c1_wp(const struct sg_conv_geom *g) { return (size_t)g->q + g->s - 1; }
static size_t c1_t64(const struct sg_conv_geom *g) { return ((size_t)g->p * c1_wp(g) + 63) & ~(size_t)63; }
/* the padded plane, with room for the reads of the last block past its end */
static size_t c1_plane(const struct sg_conv_geom *g) {
    return sgi_round16(c1_t64(g) + (size_t)(g->r - 1) * c1_wp(g) + g->s + 16);
}
#define C1_G 8 /* samples a group: their planes padded once, then every block of filters */
static size_t c1_per_thread(const struct sg_conv_geom *g) {
    const size_t rs = (size_t)g->r * g->s;
    return C1_G * c1_plane(g) + C1_FB * c1_t64(g) + sgi_round16((size_t)g->k * rs * 16) +
           sgi_round16((size_t)C1_FB * g->p * g->q) + sgi_round16((size_t)g->n * g->p * g->q) + 64;
}
/* a thread's area: the group's planes, the wide rows of a block of filters, the sums,
 * the block's output planes on their way to a fused pool, and one filter's output
 * gradient under a fused pool (c1_pool_db) */
static size_t c1_wide_at(const struct sg_conv_geom *g) { return C1_G * c1_plane(g); }
static size_t c1_acc_at(const struct sg_conv_geom *g) { return c1_wide_at(g) + C1_FB * c1_t64(g); }
static size_t c1_tmp_at(const struct sg_conv_geom *g) {
    return c1_acc_at(g) + sgi_round16((size_t)g->k * g->r * g->s * 16);
}
static size_t c1_db_at(const struct sg_conv_geom *g) {
    return c1_tmp_at(g) + sgi_round16((size_t)C1_FB * g->p * g->q);
}

static int c1_ok(const struct sg_conv_geom *g) {
    return g->c == 1 && g->groups == 1 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && (size_t)g->r * g->s <= 1024 && c1_t64(g) <= ((size_t)1 << 16);
}

/* xp = sample n of x, rows i - pt, columns j - pl, zero outside x and past the plane */
static void c1_pad(const struct sg_conv_geom *g, const float *x, int n, float *restrict xp) {
    const size_t wp = c1_wp(g), len = c1_plane(g);
    const int hp = g->p + g->r - 1;
    const float *xs = x + (size_t)n * g->h * g->w;
    for (size_t i = 0; i < len; i++) xp[i] = 0;
    for (int i = 0; i < hp; i++) {
        const int ih = i - g->pt;
        if (ih < 0 || ih >= g->h) continue;
        const int j0 = g->pl, jw = g->w < (int)wp - g->pl ? g->w : (int)wp - g->pl;
        if (jw > 0) copy_row(xp + (size_t)i * wp + j0, xs + (size_t)ih * g->w, jw);
    }
}

#define INL1 static inline __attribute__((always_inline))

/* yw[f][t..t+t64) = sum_j w[f][j] xp[off[j] + t ..] for FB filters (rows rs floats
 * apart), C1_V vectors of t a block (t64 is a multiple of 64, so of any block) */
INL1 void c1_fwd_block(const int FB, const float *xp, const float *w, int rs, const int *off,
                       size_t t64, float *yw) {
    for (size_t t = 0; t < t64; t += C1_V * KW) {
        kv a[C1_FB][C1_V];
        for (int f = 0; f < FB; f++)
            for (int v = 0; v < C1_V; v++) a[f][v] = kv_zero();
        for (int j = 0; j < rs; j++) {
            const float *xj = xp + off[j] + t;
            kv xv[C1_V];
            for (int v = 0; v < C1_V; v++) xv[v] = kv_loadu(xj + KW * v);
            for (int f = 0; f < FB; f++) {
                const kv wv = kv_set1(w[(size_t)f * rs + j]);
                for (int v = 0; v < C1_V; v++) a[f][v] = kv_fmadd(wv, xv[v], a[f][v]);
            }
        }
        for (int f = 0; f < FB; f++)
            for (int v = 0; v < C1_V; v++) kv_storeu(yw + (size_t)f * t64 + t + KW * v, a[f][v]);
    }
}

static void c1_offsets(const struct sg_conv_geom *g, int *off) {
    const int wp = (int)c1_wp(g);
    for (int r = 0; r < g->r; r++)
        for (int s = 0; s < g->s; s++) off[r * g->s + s] = r * wp + s;
}

/* The planes of samples [n0, the returned end) padded into xg, one group */
static int c1_pad_group(const struct sg_conv_geom *g, const float *x, int n0, float *xg) {
    const int n1 = g->n - n0 < C1_G ? g->n : n0 + C1_G;
    for (int n = n0; n < n1; n++) c1_pad(g, x, n, xg + (size_t)(n - n0) * c1_plane(g));
    return n1;
}

/* [*na, *nb): the samples of thread tid of a team of `team`, whole groups of C1_G in
 * the static schedule's split of the groups */
static void c1_samples(const struct sg_conv_geom *g, int tid, int team, int *na, int *nb) {
    int ga, gb;
    sgi_static_range((g->n + C1_G - 1) / C1_G, tid, team, &ga, &gb);
    *na = ga * C1_G;
    *nb = gb * C1_G < g->n ? gb * C1_G : g->n;
}

/* The filters a first layer runs: all K (kk NULL, w the layer's weights) or, under a
 * fused pool with dead filters (sgi_conv_pool_*), the live ones kk[0 .. nk) with their
 * weights compacted in w. A filter's sums do not depend on which others run beside it. */
struct c1_fs {
    const int *kk;
    int nk;
    const float *w;
};

static int c1_filter(const struct c1_fs *fs, int i) { return fs->kk ? fs->kk[i] : i; }

/* Thread tid of a team of `team` (0 of 1: the caller alone, no region) of c1_forward */
static void c1_forward_thread(const struct sg_conv_geom *g, const float *x, const struct c1_fs *fs,
                              const float *b, float *y, float *ws, const struct sgi_pool *pg,
                              float *py, int32_t *parg, int tid, int team) {
    const int rs = g->r * g->s, K = fs->nk, P = g->p, Q = g->q;
    const size_t wp = c1_wp(g), t64 = c1_t64(g), per = c1_per_thread(g), pq = (size_t)P * Q;
    const size_t ppq = pg ? (size_t)pg->p * pg->q : 0;
    float *xg = ws + (size_t)tid * per, *yw = xg + c1_wide_at(g), *tmp = xg + c1_tmp_at(g);
    const size_t pl = c1_plane(g);
    int off[1024];
    c1_offsets(g, off);
    /* groups of samples, each filter block over the group: y is written in
     * runs of the group's planes, a few at a time (one sample with every
     * filter wrote K planes far apart, slower than the columns' GEMM) */
    int na, nb;
    c1_samples(g, tid, team, &na, &nb);
    for (int n0 = na; n0 < nb; n0 += C1_G) {
        const int n1 = c1_pad_group(g, x, n0, xg);
        for (int k = 0; k < K; k += C1_FB) {
            const int fb = K - k < C1_FB ? K - k : C1_FB;
            const float *wk = fs->w + (size_t)k * rs;
            for (int n = n0; n < n1; n++) {
                const float *xp = xg + (size_t)(n - n0) * pl;
                switch (fb) {
                case 4: c1_fwd_block(4, xp, wk, rs, off, t64, yw); break;
                case 3: c1_fwd_block(3, xp, wk, rs, off, t64, yw); break;
                case 2: c1_fwd_block(2, xp, wk, rs, off, t64, yw); break;
                default: c1_fwd_block(1, xp, wk, rs, off, t64, yw); break;
                }
                for (int f = 0; f < fb; f++) {
                    const int kf = c1_filter(fs, k + f);
                    const size_t plane = (size_t)kf * g->n + n;
                    float *yk = pg ? tmp + (size_t)f * pq : y + plane * pq;
                    const float *src = yw + (size_t)f * t64;
                    const float bk = b ? b[kf] : 0.0f;
                    for (int p = 0; p < P; p++) {
                        float *restrict d = yk + (size_t)p * Q;
                        const float *restrict sr = src + (size_t)p * wp;
                        if (b)
                            for (int q = 0; q < Q; q++) d[q] = sr[q] + bk;
                        else
                            for (int q = 0; q < Q; q++) d[q] = sr[q];
                    }
                    if (pg) sgi_maxpool_plane(pg, yk, py + plane * ppq, parg + plane * ppq);
                }
            }
        }
    }
}

/* pg NULL: y = the convolution; otherwise y is not written and each output plane goes
 * through the max pool pg on its way out, into py and parg (sgi_conv_pool_forward) */
static void c1_forward(const struct sg_conv_geom *g, const float *x, const struct c1_fs *fs,
                       const float *b, float *y, float *ws, int threads,
                       const struct sgi_pool *pg, float *py, int32_t *parg) {
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        c1_forward_thread(g, x, fs, b, y, ws, pg, py, parg, omp_get_thread_num(),
                          omp_get_num_threads());
    } else /* no region (sgi.h, SGI_PAR_FOR) */
        c1_forward_thread(g, x, fs, b, y, ws, pg, py, parg, 0, 1);
}

/* acc[f][j] (KW lanes each, in memory, 16 floats apart) += sum over t of dyw[f][t]
 * xp[off[j] + t], FB filters x RB taps */
INL1 void c1_wgrad_block(const int FB, const int RB, const float *xp, const int *off,
                         const float *dyw, size_t t64, float *acc, int rs) {
    kv a[C1_FB][5]; /* RB <= C1_RB <= 5 (C1_RB_CASES instantiates 1-5) */
    for (int f = 0; f < FB; f++)
        for (int j = 0; j < RB; j++) a[f][j] = kv_loadu(acc + ((size_t)f * rs + j) * 16);
    for (size_t t = 0; t < t64; t += KW) {
        kv d[C1_FB];
        for (int f = 0; f < FB; f++) d[f] = kv_loadu(dyw + (size_t)f * t64 + t);
        for (int j = 0; j < RB; j++) {
            const kv xv = kv_reg(kv_loadu(xp + off[j] + t)); /* one load for FB filters */
            for (int f = 0; f < FB; f++) a[f][j] = kv_fmadd(d[f], xv, a[f][j]);
        }
    }
    for (int f = 0; f < FB; f++)
        for (int j = 0; j < RB; j++) kv_storeu(acc + ((size_t)f * rs + j) * 16, a[f][j]);
}

#define C1_RB_CASES(FB)                                                                     \
    switch (rb) {                                                                           \
    case 5: c1_wgrad_block(FB, 5, xp, off + j, dk, t64, ak + (size_t)j * 16, rs); break;    \
    case 4: c1_wgrad_block(FB, 4, xp, off + j, dk, t64, ak + (size_t)j * 16, rs); break;    \
    case 3: c1_wgrad_block(FB, 3, xp, off + j, dk, t64, ak + (size_t)j * 16, rs); break;    \
    case 2: c1_wgrad_block(FB, 2, xp, off + j, dk, t64, ak + (size_t)j * 16, rs); break;    \
    default: c1_wgrad_block(FB, 1, xp, off + j, dk, t64, ak + (size_t)j * 16, rs); break;   \
    }

/* A filter's bias gradient summed as sgi_sum sums its [N][P][Q] output gradient, one
 * plane of it at a time in sample order (P Q a multiple of 16): sixteen lane sums over
 * each block of 1,024 entries (lane = position mod 16), then a block's lanes in order
 * into a float and the blocks' floats into a double. The planes are those the weight
 * gradient builds anyway (under a fused pool, its backward), so the sum reads them in
 * cache and the bits are those of summing the whole gradient afterwards. */
struct c1_dbsum {
    float lane[16];
    double total;
};

static void c1_db_flush(struct c1_dbsum *d) {
    float part = 0;
    for (int l = 0; l < 16; l++) part += d->lane[l], d->lane[l] = 0;
    d->total += part;
}

static void c1_db_plane(struct c1_dbsum *d, const float *v, size_t len, size_t pos) {
    for (size_t t = 0; t < len; t += 16) {
        for (int l = 0; l < 16; l++) d->lane[l] += v[t + l];
        if ((pos + t + 16) % 1024 == 0) c1_db_flush(d);
    }
}

/* pg NULL: dy is the output gradient; otherwise it is the gradient of the 2x2 max pool
 * pg after the layer, parg that pool's argmax (sgi_conv_pool_wgrad), and each output
 * plane's gradient is the pool's backward of one plane, written in cache just before
 * it is widened. Thread tid of a team of `team` (0 of 1: no region): its samples' sums
 * in its area. */
static void c1_wgrad_thread(const struct sg_conv_geom *g, const float *x, const float *dy,
                            const struct c1_fs *fs, float *ws, const struct sgi_pool *pg,
                            const int32_t *parg, int tid, int team, struct c1_dbsum *dbs) {
    const int rs = g->r * g->s, K = fs->nk, P = g->p, Q = g->q;
    const size_t wp = c1_wp(g), t64 = c1_t64(g), per = c1_per_thread(g), pq = (size_t)P * Q;
    const size_t ppq = pg ? (size_t)pg->p * pg->q : 0;
    const size_t accn = (size_t)K * rs * 16;
    float *xg = ws + (size_t)tid * per, *dyw = xg + c1_wide_at(g);
    float *acc = xg + c1_acc_at(g), *tmp = xg + c1_tmp_at(g);
    const size_t pl = c1_plane(g);
    int off[1024];
    c1_offsets(g, off);
    for (size_t i = 0; i < accn; i++) acc[i] = 0;
    for (size_t i = 0; i < (size_t)C1_FB * t64; i++) dyw[i] = 0; /* off-output entries stay 0 */
    int na, nb;
    c1_samples(g, tid, team, &na, &nb);
    for (int n0 = na; n0 < nb; n0 += C1_G) {
        const int n1 = c1_pad_group(g, x, n0, xg);
        for (int k = 0; k < K; k += C1_FB) {
            const int fb = K - k < C1_FB ? K - k : C1_FB;
            float *ak = acc + (size_t)k * rs * 16;
            for (int n = n0; n < n1; n++) {
                const float *xp = xg + (size_t)(n - n0) * pl;
                /* this block's dy rows, widened */
                for (int f = 0; f < fb; f++) {
                    const size_t plane = (size_t)c1_filter(fs, k + f) * g->n + n;
                    if (pg) /* the pool's backward of this plane, in cache */
                        sgi_maxpool_back_plane(pg, dy + plane * ppq, parg + plane * ppq, tmp, 1);
                    const float *dk = pg ? tmp : dy + plane * pq;
                    if (dbs) c1_db_plane(dbs + k + f, dk, pq, (size_t)n * pq);
                    for (int p = 0; p < P; p++) {
                        float *restrict d = dyw + (size_t)f * t64 + (size_t)p * wp;
                        const float *restrict sr = dk + (size_t)p * Q;
                        for (int q = 0; q < Q; q++) d[q] = sr[q];
                    }
                }
                const float *dk = dyw;
                for (int j = 0; j < rs; j += C1_RB) {
                    const int rb = rs - j < C1_RB ? rs - j : C1_RB;
                    switch (fb) {
                    case 4: C1_RB_CASES(4) break;
                    case 3: C1_RB_CASES(3) break;
                    case 2: C1_RB_CASES(2) break;
                    default: C1_RB_CASES(1) break;
                    }
                }
            }
        }
    }
}

/* db (NULL: none) summed on the way where one thread runs it all and its sums fit
 * (c1_db_plane); returns 0 where the caller sums it afterwards */
#define C1_DB_MAX_K 64
static int c1_wgrad(const struct sg_conv_geom *g, const float *x, const float *dy,
                    const struct c1_fs *fs, float *dw, float *db, float *ws, int threads,
                    const struct sgi_pool *pg, const int32_t *parg) {
    const int rs = g->r * g->s, K = fs->nk;
    const size_t per = c1_per_thread(g), pq = (size_t)g->p * g->q;
    int used = 1;
    struct c1_dbsum dbs[C1_DB_MAX_K];
    const int inline_db = db && threads <= 1 && pq % 16 == 0 && K <= C1_DB_MAX_K;
    if (inline_db) memset(dbs, 0, (size_t)K * sizeof *dbs);
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
#pragma omp single
            used = omp_get_num_threads();
            c1_wgrad_thread(g, x, dy, fs, ws, pg, parg, omp_get_thread_num(),
                            omp_get_num_threads(), NULL);
        }
    } else /* no region (sgi.h, SGI_PAR_FOR) */
        c1_wgrad_thread(g, x, dy, fs, ws, pg, parg, 0, 1, inline_db ? dbs : NULL);
    /* every thread's KW lanes per weight, the threads in order; filters not run 0 */
    if (fs->kk) memset(dw, 0, (size_t)g->k * rs * sizeof *dw);
    for (int f = 0; f < K; f++) {
        float *dwk = dw + (size_t)c1_filter(fs, f) * rs;
        for (int j = 0; j < rs; j++) {
            const size_t i = (size_t)f * rs + j;
            kv s = kv_loadu(ws + c1_acc_at(g) + i * 16);
            for (int t = 1; t < used; t++)
                s = kv_add(s, kv_loadu(ws + (size_t)t * per + c1_acc_at(g) + i * 16));
            dwk[j] = kv_sum(s);
        }
    }
    if (!inline_db) return 0;
    if (fs->kk) memset(db, 0, (size_t)g->k * sizeof *db);
    for (int f = 0; f < K; f++) {
        if (((size_t)g->n * pq) % 1024) c1_db_flush(&dbs[f]); /* the last, partial block */
        db[c1_filter(fs, f)] = (float)dbs[f].total;
    }
    return 1;
}

/* db[k] = the sum of filter k's output gradient under a fused 2x2 pool: its [N][P][Q]
 * plane rebuilt in a scratch plane (0 + dy at the argmax, 0 elsewhere, as the pool's
 * backward writes it) and summed by sgi_sum, so the bits of the two ops; one filter at
 * a time, so the plane stays in cache. */
static void c1_pool_db_filter(const struct sg_conv_geom *g, const struct sgi_pool *pg,
                              const float *pdy, const int32_t *parg, int k, float *plane,
                              float *db) {
    const size_t pq = (size_t)g->p * g->q, len = (size_t)g->n * pq, ppq = (size_t)pg->p * pg->q;
    memset(plane, 0, len * sizeof *plane);
    for (int n = 0; n < g->n; n++) {
        const size_t po = ((size_t)k * g->n + n) * ppq;
        float *pl = plane + (size_t)n * pq;
        for (size_t j = 0; j < ppq; j++) pl[parg[po + j]] = 0.0f + pdy[po + j];
    }
    db[k] = (float)sgi_sum(plane, len);
}

static void c1_pool_db(const struct sg_conv_geom *g, const struct sgi_pool *pg,
                       const float *pdy, const int32_t *parg, float *db, float *ws, int threads) {
    const size_t len = (size_t)g->n * g->p * g->q, per = c1_per_thread(g), at = c1_db_at(g);
    if (threads > 1 && len * g->k > 65536) { /* filter k's plane in its thread's area */
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int k = 0; k < g->k; k++)
            c1_pool_db_filter(g, pg, pdy, parg, k, ws + (size_t)omp_get_thread_num() * per + at, db);
    } else /* no region (sgi.h, SGI_PAR_FOR) */
        for (int k = 0; k < g->k; k++) c1_pool_db_filter(g, pg, pdy, parg, k, ws + at, db);
}
#endif

int sgi_conv_pool_ok(const struct sg_conv_geom *g, const struct sgi_pool *pg) {
#if SGI_KV
    return c1_ok(g) && sgi_pool_is_2x2(pg) && pg->h == g->p && pg->w == g->q &&
           (int64_t)pg->planes == (int64_t)g->k * g->n;
#else
    (void)g, (void)pg;
    return 0;
#endif
}

#define C1_DEAD_K 1024 /* dead filters skipped up to this many filters, */
#define C1_DEAD_W 8192 /* and this many weights (their live ones compacted on the stack) */
#if SGI_KV
/* The live filters of a fused layer (dead NULL: all) in kk, their weights compacted into
 * wc (w NULL: the list alone) */
static struct c1_fs c1_live(const struct sg_conv_geom *g, const float *w, const uint8_t *dead,
                            int *kk, float *wc) {
    if (!dead) return (struct c1_fs){NULL, g->k, w};
    const size_t rs = (size_t)g->r * g->s;
    int nk = 0;
    for (int k = 0; k < g->k; k++)
        if (!dead[k]) {
            if (w) memcpy(wc + (size_t)nk * rs, w + (size_t)k * rs, rs * sizeof *wc);
            kk[nk++] = k;
        }
    return (struct c1_fs){kk, nk, w ? wc : NULL};
}
#endif

int sgi_conv_pool_dead_ok(const struct sg_conv_geom *g) {
    return g->k <= C1_DEAD_K && (size_t)g->k * g->r * g->s <= C1_DEAD_W;
}

void sgi_conv_pool_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                           const float *b, const uint8_t *dead, const struct sgi_pool *pg,
                           float *py, int32_t *parg, float *ws, int threads) {
#if SGI_KV
    int kk[C1_DEAD_K];
    float wc[C1_DEAD_W];
    if (dead && !sgi_conv_pool_dead_ok(g)) dead = NULL; /* dead filters run: 0 all the same */
    const int lanes = sgi_conv_lanes_pool_ok(g);
    const struct c1_fs fs = c1_live(g, lanes ? NULL : w, dead, kk, wc);
    const size_t run = (size_t)g->n * pg->p * pg->q;
    if (dead) /* a dead filter's channel is 0, as the pool writes it (graph.c) */
        for (int k = 0; k < g->k; k++)
            if (dead[k]) {
                memset(py + (size_t)k * run, 0, run * sizeof *py);
                memset(parg + (size_t)k * run, 0, run * sizeof *parg);
            }
    /* image lanes where they take the shape (AVX-512: 3, 5, 7 columns): the same chains
     * (one per output, the taps in order from 0, then the bias), no wide rows to waste */
    if (lanes)
        sgi_conv_lanes_pool_forward(g, x, w, b, fs.kk, fs.nk, pg, py, parg, ws, threads);
    else
        c1_forward(g, x, &fs, b, NULL, ws, threads, pg, py, parg);
#else
    (void)g, (void)x, (void)w, (void)b, (void)dead, (void)pg, (void)py, (void)parg, (void)ws;
    (void)threads;
#endif
}

void sgi_conv_pool_wgrad(const struct sg_conv_geom *g, const float *x, const uint8_t *dead,
                         const struct sgi_pool *pg, const float *pdy, const int32_t *parg,
                         float *dw, float *db, float *ws, int threads) {
#if SGI_KV
    int kk[C1_DEAD_K];
    if (dead && !sgi_conv_pool_dead_ok(g)) dead = NULL;
    const struct c1_fs fs = c1_live(g, NULL, dead, kk, NULL);
    if (!c1_wgrad(g, x, pdy, &fs, dw, db, ws, threads, pg, parg) && db) {
        c1_pool_db(g, pg, pdy, parg, db, ws, threads);
        if (dead)
            for (int k = 0; k < g->k; k++)
                if (dead[k]) db[k] = 0.0f;
    }
#else
    (void)g, (void)x, (void)dead, (void)pg, (void)pdy, (void)parg, (void)dw, (void)db, (void)ws;
    (void)threads;
#endif
}

void sgi_conv_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                      const float *b, float *y, float *ws, int threads) {
    sgi_conv_forward_kept(g, x, w, NULL, b, y, ws, threads);
}

void sgi_conv_forward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                           const struct sgi_kept *kp, const float *b, float *y, float *ws,
                           int threads) {
    const int nb = chunk_of(g), nslices = (g->n + nb - 1) / nb;
    if (sgi_wino_train_ok(g) || (kp && sgi_wino_train_shape_ok(g))) {
        sgi_wino_train_forward_kept(g, x, w, kp, y, ws, threads);
    } else if (sgi_conv_lanes_ok(g)) {
        sgi_conv_lanes_forward(g, x, w, kp, y, ws, threads);
#if SGI_KV
    } else if (kp && sgi_conv_kept_cols_ok(g)) {
        kept_cols_forward(g, x, w, kp, y, ws, threads);
#endif
#if SGI_KV
    } else if (c1_ok(g)) {
        const struct c1_fs fs = {NULL, g->k, w};
        c1_forward(g, x, &fs, b, y, ws, threads, NULL, NULL, NULL); /* bias included */
        return;
#endif
    } else if (by_slices(g, threads) && threads > 1) {
        const size_t per = col_floats(g);
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int sl = 0; sl < nslices; sl++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb;
            for (int grp = 0; grp < g->groups; grp++)
                forward_slice(g, x, w, y, ws + (size_t)t * per, n0, bsz, grp, 0);
        }
    } else { /* one slice at a time: its im2col and product shared by the threads, or one */
        const int par = !by_slices(g, threads);
        for (int sl = 0; sl < nslices; sl++) {
            const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb;
            for (int grp = 0; grp < g->groups; grp++) forward_slice(g, x, w, y, ws, n0, bsz, grp, par);
        }
    }
    if (b) sgi_conv_add_bias(g, b, y);
}

void sgi_conv_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                       const float *dy, float *dx, float *dw, float *db, float *ws, int threads) {
    sgi_conv_backward_kept(g, x, w, NULL, dy, dx, 0, dw, db, ws, threads);
}

void sgi_conv_backward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                            const struct sgi_kept *kp, const float *dy, float *dx, int set_dx,
                            float *dw, float *db, float *ws, int threads) {
    const int nb = chunk_of(g), nslices = (g->n + nb - 1) / nb;
    const size_t ndw = (size_t)g->k * rows_of(g);
    const int wino = sgi_wino_train_ok(g) || (kp && sgi_wino_train_shape_ok(g));
    if (dx && set_dx && !wino) /* the paths below add to dx */
        memset(dx, 0, (size_t)g->n * g->c * g->h * g->w * sizeof *dx);
    if (wino) {
        sgi_wino_train_backward_kept(g, x, w, kp, dy, dx, set_dx, dw, ws, threads);
    } else if (sgi_conv_lanes_ok(g)) {
        sgi_conv_lanes_backward(g, x, w, kp, dy, dx, dw, ws, threads);
#if SGI_KV
    } else if (kp && sgi_conv_kept_cols_ok(g)) {
        kept_cols_backward(g, x, w, kp, dy, dx, dw, ws, threads);
#endif
#if SGI_KV
    } else if (c1_ok(g) && !dx) {
        const struct c1_fs fs = {NULL, g->k, NULL};
        c1_wgrad(g, x, dy, &fs, dw, NULL, ws, threads, NULL, NULL);
#endif
    } else if (by_slices(g, threads) && threads > 1) {
        /* every thread sums its slices' weight gradients in its own buffer; the
         * buffers are added in thread order, so the result depends on the thread
         * count but not on timing */
        const size_t per = col_floats(g) + dw_floats(g);
        int used = 1;
#pragma omp parallel num_threads(threads)
        {
            int t = 0, nt = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
#pragma omp single
            used = nt;
            float *col = ws + (size_t)t * per, *mydw = col + col_floats(g);
            int first = 1;
#pragma omp for schedule(static)
            for (int sl = 0; sl < nslices; sl++) {
                const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb;
                for (int grp = 0; grp < g->groups; grp++)
                    backward_slice(g, x, w, dy, dx, mydw, first ? 0.0f : 1.0f, col, n0, bsz, grp, 0);
                first = 0;
            }
            if (first) memset(mydw, 0, ndw * sizeof *mydw); /* a thread that got no slice */
        }
        const size_t per_t = per;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t i = 0; i < ndw; i++) {
            float s = 0;
            for (int t = 0; t < used; t++) s += ws[(size_t)t * per_t + col_floats(g) + i];
            dw[i] = s;
        }
    } else {
        const int par = !by_slices(g, threads);
        for (int sl = 0; sl < nslices; sl++) {
            const int n0 = sl * nb, bsz = g->n - n0 < nb ? g->n - n0 : nb;
            for (int grp = 0; grp < g->groups; grp++)
                backward_slice(g, x, w, dy, dx, dw, sl == 0 ? 0.0f : 1.0f, ws, n0, bsz, grp, par);
        }
    }
    if (db) {
        const size_t len = (size_t)g->n * g->p * g->q;
        SGI_PAR_FOR(len * g->k > 65536 ? sg_get_threads() : 1, for (int k = 0; k < g->k; k++)
                        db[k] = (float)sgi_sum(dy + (size_t)k * len, len););
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
