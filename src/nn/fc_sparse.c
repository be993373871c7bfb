/* Fully connected layers on a fine mask's kept weights (training): y = W x + b and
 * the input gradient dx += W^T dy multiply only the kept entries of W (and, where
 * the input features live[0..nl) are the only nonzero ones, only those columns);
 * the weight gradient stays the dense product (ops.c), the update masks it. The
 * activations are channel-major (x[C][N]): one kept weight multiplies a row of N
 * samples, one to four vectors, so every multiply-add uses whole vectors of samples
 * and no index is gathered.
 *
 * The same bits as the dense kernels (sgi_fc_forward/backward and their _live
 * forms; the own GEMM, core/gemm.c): each entry of y is one chain of fused
 * multiply-adds over the columns in ascending order from 0, then the bias, and each
 * entry of dx is its old value plus one chain over the rows in ascending order from
 * 0. A masked weight is exactly 0, and a product with 0 leaves such a chain
 * unchanged (a sum that starts at +0 never becomes -0), so skipping it changes
 * nothing. The chains are kept whole, so four rows (of W for y, of W^T for dx: the
 * lists by columns) run side by side in registers to hide the multiply-add latency.
 * The lists are made once per mask: a training step checks the mask against the copy
 * it listed and takes them again. Checked bit for bit in tests/test_fc_sparse.c. */
#include "core/sgi_kv.h"
#include "nn/ops.h"

#if SGI_KV && defined(__AVX512F__)
#define FCS 1
#else
#define FCS 0
#endif

/* The sparse products pay where the kept share of the (live) weights is at most this.
 * LeNet-5's fc1 (500 x 800, a batch of 32, one thread, fastest of 300), plan + forward +
 * input gradient against the dense forward + input gradient. Intel Xeon (AVX-512; dense
 * 0.37-0.39 ms): 0.26 ms at 0.2 kept, 0.31 at 0.25, 0.33 at 0.3, 0.39 at 0.35 (a tie),
 * 0.42 at 0.4; a check of the mask against the one listed (0.02 ms) stands for the plan
 * once made. A kept weight costs 2.5-3 cycles: its index, its weight, a row of x (or
 * dy) of one or two vectors and their multiply-adds, against a dense product near the
 * core's peak; the loads bound it. On the AMD EPYC (Zen 5), whose dense product is faster
 * (0.23 ms), the first form of this code (lists made at every step, the input gradient
 * through stored rows of sums) tied at 0.2 and lost 0.31 ms to 0.23 at 0.3; 0.25 is the
 * share below which both machines gain (the AMD side not measured again). */
#define FC_SPARSE_MAX 0.25
static int g_fcs_on = 1;
static double g_fcs_max = -1;

void sgi_fc_sparse_enable(int on) { g_fcs_on = on; }
void sgi_fc_sparse_share(double most) { g_fcs_max = most; }

#if FCS
/* Columns in tiles of T (a multiple of 64) whose rows of x (or dx) stay in L1 while
 * every row of W multiplies them: a kept weight reads a row of n samples at a random
 * column, and the whole of x (LeNet-5's fc1 at a batch of 32: 100 KB) lives in L2. */
static int tile_of(int n) {
    int t = (8192 / n) & ~63;
    return t < 64 ? 64 : t;
}

/* The kept (and live) weights, counted 64 mask bytes at a time (about 1 cycle each,
 * against some 5 per 16 for the lists below), stopping once more than most: the
 * decision runs at every training forward, most often to decline. */
static int kept_at_most(int c, int k, const uint8_t *mask, const uint8_t *live_map, size_t most) {
    size_t nz = 0;
    for (int j = 0; j < k; j++) {
        const uint8_t *mr = mask + (size_t)j * c;
        int i = 0;
        for (; i + 64 <= c; i += 64) {
            __m512i m = _mm512_loadu_si512(mr + i);
            if (live_map) m = _mm512_and_si512(m, _mm512_loadu_si512(live_map + i));
            nz += (size_t)__builtin_popcountll(_mm512_test_epi8_mask(m, m));
        }
        for (; i < c; i++) nz += mr[i] && (!live_map || live_map[i]);
        if (nz > most) return 0;
    }
    return 1;
}

/* The kept (and live) columns of each row, ascending, cut at the tiles: row j's in
 * tile t are idx[ptr[j (nt + 1) + t] .. ptr[j (nt + 1) + t + 1]). */
static void lists_of(int c, int k, int T, const uint8_t *mask, const uint8_t *live_map,
                     int32_t *ptr, int32_t *idx) {
    const int nt = (c + T - 1) / T;
    size_t nz = 0;
    const __m512i step = _mm512_set1_epi32(16), base = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int j = 0; j < k; j++) {
        int32_t *pj = ptr + (size_t)j * (nt + 1);
        const uint8_t *mr = mask + (size_t)j * c;
        for (int t = 0; t < nt; t++) {
            pj[t] = (int32_t)nz;
            const int i1 = (t + 1) * T < c ? (t + 1) * T : c;
            int i = t * T;
            __m512i ids = _mm512_add_epi32(base, _mm512_set1_epi32(i));
            for (; i + 16 <= i1; i += 16) {
                __m128i m = _mm_loadu_si128((const __m128i *)(mr + i));
                if (live_map) m = _mm_and_si128(m, _mm_loadu_si128((const __m128i *)(live_map + i)));
                const __mmask16 kk = _mm_test_epi8_mask(m, m);
                /* compressed in a register and stored whole (idx has 16 entries of room):
                 * a compressing store to memory is microcoded on AMD's cores */
                _mm512_storeu_si512(idx + nz, _mm512_maskz_compress_epi32(kk, ids));
                nz += (size_t)__builtin_popcount(kk);
                ids = _mm512_add_epi32(ids, step);
            }
            for (; i < i1; i++)
                if (mr[i] && (!live_map || live_map[i])) idx[nz++] = i;
        }
        pj[nt] = (int32_t)nz;
    }
}

/* One kept weight's multiply-add into a row's NV vectors of samples. */
KINL void madd(const int NV, const int FULL, kmask last, kv *a, float wt, const float *xi) {
    const kv wv = kv_set1(wt);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        a[v] = kv_fmadd(wv, v == NV - 1 && !FULL ? kv_maskz(last, xi + 16 * v) : kv_loadu(xi + 16 * v), a[v]);
}

/* Rows j .. j + NR (4, or 1) of the forward over tile t: the chains continue from y (0
 * at the first tile), the first len entries of the rows side by side, then each row's
 * rest. NR and NV are constants: the sums stay in registers. */
KINL void fwd_rows(const int NV, const int NR, const int FULL, int n_, int c, int nt, int t, int j,
                   const int32_t *ptr, const int32_t *idx, const float *x, const float *w,
                   float *y) {
    const int n = FULL ? 16 * NV : n_; /* a constant where the rows are whole vectors */
    const kmask last = kv_below(n - 16 * (NV - 1));
    kv a[4][4];
    int32_t e[4], end[4];
    int len = 1 << 30;
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        const int32_t *pj = ptr + (size_t)(j + r) * (nt + 1);
        e[r] = pj[t], end[r] = pj[t + 1];
        if (end[r] - e[r] < len) len = end[r] - e[r];
        const float *yr = y + (size_t)(j + r) * n;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            a[r][v] = t == 0 ? kv_zero() : v == NV - 1 ? kv_maskz(last, yr + 16 * v) : kv_loadu(yr + 16 * v);
    }
    for (int q = 0; q < len; q++) {
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const int32_t i = idx[e[r] + q];
            madd(NV, FULL, last, a[r], w[(size_t)(j + r) * c + i], x + (size_t)i * n);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        for (int32_t q = e[r] + len; q < end[r]; q++) {
            const int32_t i = idx[q];
            madd(NV, FULL, last, a[r], w[(size_t)(j + r) * c + i], x + (size_t)i * n);
        }
        float *yr = y + (size_t)(j + r) * n;
#pragma GCC unroll 4
        for (int v = 0; v < NV - 1; v++) kv_storeu(yr + 16 * v, a[r][v]);
        kv_mstore(yr + 16 * (NV - 1), last, a[r][NV - 1]);
    }
}

KINL void fwd_tile(const int NV, const int FULL, int n, int c, int k, int nt, int t,
                   const int32_t *ptr, const int32_t *idx, const float *x, const float *w, float *y) {
    int j = 0;
    for (; j + 4 <= k; j += 4) fwd_rows(NV, 4, FULL, n, c, nt, t, j, ptr, idx, x, w, y);
    for (; j < k; j++) fwd_rows(NV, 1, FULL, n, c, nt, t, j, ptr, idx, x, w, y);
}

KINL void fwd_all(const int NV, int n, int c, int k, int T, const int32_t *ptr, const int32_t *idx,
                  const float *x, const float *w, float *y) {
    const int nt = (c + T - 1) / T;
    for (int t = 0; t < nt; t++) {
        if (n == 16 * NV)
            fwd_tile(NV, 1, n, c, k, nt, t, ptr, idx, x, w, y);
        else
            fwd_tile(NV, 0, n, c, k, nt, t, ptr, idx, x, w, y);
    }
}

/* Columns i[0 .. NR) (NR 4, or 1) of the input gradient over row tile t: dxt[i] holds
 * each column's chain (0 at the first tile), continued over the tile's kept rows j
 * ascending by w[j][i] dy[j]: the chains side by side in registers, as the forward's. */
KINL void dx_cols(const int NV, const int NR, const int FULL, int n_, int c, int ntj, int t,
                  const int *col, const int32_t *cptr, const int32_t *ridx, const float *dy,
                  const float *w, float *dxt) {
    const int n = FULL ? 16 * NV : n_;
    const kmask last = kv_below(n - 16 * (NV - 1));
    kv a[4][4];
    int32_t e[4], end[4];
    int len = 1 << 30;
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        const int32_t *pc = cptr + (size_t)col[r] * (ntj + 1);
        e[r] = pc[t], end[r] = pc[t + 1];
        if (end[r] - e[r] < len) len = end[r] - e[r];
        const float *dr = dxt + (size_t)col[r] * n;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            a[r][v] = t == 0 ? kv_zero() : v == NV - 1 ? kv_maskz(last, dr + 16 * v) : kv_loadu(dr + 16 * v);
    }
    for (int q = 0; q < len; q++) {
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const int32_t j = ridx[e[r] + q];
            madd(NV, FULL, last, a[r], w[(size_t)j * c + col[r]], dy + (size_t)j * n);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        for (int32_t q = e[r] + len; q < end[r]; q++) {
            const int32_t j = ridx[q];
            madd(NV, FULL, last, a[r], w[(size_t)j * c + col[r]], dy + (size_t)j * n);
        }
        float *dr = dxt + (size_t)col[r] * n;
#pragma GCC unroll 4
        for (int v = 0; v < NV - 1; v++) kv_storeu(dr + 16 * v, a[r][v]);
        kv_mstore(dr + 16 * (NV - 1), last, a[r][NV - 1]);
    }
}

/* dxt[i] = the chain over the kept rows of every column i of cols[0 .. nc), tile by
 * tile of TJ rows (their dy rows stay in L1 while the columns run over them) */
KINL void dx_all(const int NV, int n, int c, int k, int TJ, const int *cols, int nc,
                 const int32_t *cptr, const int32_t *ridx, const float *dy, const float *w,
                 float *dxt) {
    const int ntj = (k + TJ - 1) / TJ;
    for (int t = 0; t < ntj; t++) {
        int q = 0;
        if (n == 16 * NV) {
            for (; q + 4 <= nc; q += 4) dx_cols(NV, 4, 1, n, c, ntj, t, cols + q, cptr, ridx, dy, w, dxt);
            for (; q < nc; q++) dx_cols(NV, 1, 1, n, c, ntj, t, cols + q, cptr, ridx, dy, w, dxt);
        } else {
            for (; q + 4 <= nc; q += 4) dx_cols(NV, 4, 0, n, c, ntj, t, cols + q, cptr, ridx, dy, w, dxt);
            for (; q < nc; q++) dx_cols(NV, 1, 0, n, c, ntj, t, cols + q, cptr, ridx, dy, w, dxt);
        }
    }
}

/* The plan's place in the workspace: a header (the shape it was made for), the lists
 * by rows (row-tile starts, columns) and by columns (column-tile starts, rows), the
 * active columns, the live map and the mask it was made from, dx's sums. */
#define FCS_MAGIC 0x53474643u /* "SGFC" */
struct fcs_head {
    uint32_t magic, n, c, k, nl;
    uint64_t most;
};

struct fcs_lists {
    struct fcs_head *head;
    int32_t *ptr, *idx, *cptr, *ridx, *cols;
    uint8_t *map, *seen;
    float *dxt;
    int T, TJ;
};

/* rows of dy a tile of the input gradient: 16 KB of them */
static int row_tile_of(int n) {
    int t = (4096 / n) & ~15;
    return t < 16 ? 16 : t;
}

static struct fcs_lists lists_at(int n, int c, int k, void *ws) {
    struct fcs_lists l;
    l.T = tile_of(n), l.TJ = row_tile_of(n);
    const int nt = (c + l.T - 1) / l.T, ntj = (k + l.TJ - 1) / l.TJ;
    l.head = ws;
    l.ptr = (int32_t *)((char *)ws + 64);
    l.idx = l.ptr + (size_t)k * (nt + 1);
    l.cptr = l.idx + (size_t)k * c + 16;
    l.ridx = l.cptr + (size_t)c * (ntj + 1) + 1;
    l.cols = l.ridx + (size_t)k * c;
    l.map = (uint8_t *)(l.cols + c);
    l.seen = l.map + c;
    l.dxt = (float *)(((uintptr_t)(l.seen + (size_t)k * c + c) + 63) & ~(uintptr_t)63);
    return l;
}

/* The lists by columns from those by rows: column i's kept rows of row tile t are
 * ridx[cptr[i (ntj + 1) + t] .. cptr[i (ntj + 1) + t + 1]), ascending. */
static void columns_of(int c, int k, int nt, int TJ, const int32_t *ptr, const int32_t *idx,
                       int32_t *cptr, int32_t *ridx) {
    const int ntj = (k + TJ - 1) / TJ;
    const size_t nb = (size_t)c * (ntj + 1);
    memset(cptr, 0, (nb + 1) * sizeof *cptr);
    for (int j = 0; j < k; j++) { /* counts, one past their bucket */
        const int tj = j / TJ;
        for (int32_t q = ptr[(size_t)j * (nt + 1)]; q < ptr[(size_t)j * (nt + 1) + nt]; q++)
            cptr[(size_t)idx[q] * (ntj + 1) + tj + 1]++;
    }
    for (size_t b = 0; b < nb; b++) cptr[b + 1] += cptr[b]; /* bucket starts, then ends */
    for (int j = 0; j < k; j++) {
        const int tj = j / TJ;
        for (int32_t q = ptr[(size_t)j * (nt + 1)]; q < ptr[(size_t)j * (nt + 1) + nt]; q++)
            ridx[cptr[(size_t)idx[q] * (ntj + 1) + tj]++] = j;
    }
    for (size_t b = nb; b > 0; b--) cptr[b] = cptr[b - 1];
    cptr[0] = 0;
}
#endif

/* bytes: the header, row-tile starts and columns (k c + 16 ints), column-tile starts and
 * rows (k c ints), the active columns, the live map, the mask copy, alignment, dx's sums */
size_t sgi_fc_sparse_ws(int n, int c, int k) {
#if FCS
    const size_t nt = n >= 1 ? ((size_t)c + tile_of(n) - 1) / tile_of(n) : 1;
    const size_t ntj = n >= 1 ? ((size_t)k + row_tile_of(n) - 1) / row_tile_of(n) : 1;
#else
    const size_t nt = 1, ntj = 1;
#endif
    const size_t kc = (size_t)k * c;
    const size_t bytes = 64 + 4 * ((size_t)k * (nt + 1) + kc + 16 + (size_t)c * (ntj + 1) + 1 + kc + c) +
                         2 * (size_t)c + kc + 64 + 4 * (size_t)c * n + 64;
    return (bytes + 3) / 4;
}

int sgi_fc_sparse_plan(int n, int c, int k, const uint8_t *mask, const int *live, int nl,
                       void *ws) {
#if FCS
    if (!g_fcs_on || !mask || n < 1 || n > 64) return 0;
    const struct fcs_lists l = lists_at(n, c, k, ws);
    const size_t kc = (size_t)k * c;
    if (live) {
        memset(l.map, 0, (size_t)c);
        for (int t = 0; t < nl; t++) l.map[live[t]] = 1;
    }
    /* the lists of the last plan, where it was made from this mask (retraining keeps
     * the masks: listing them again at every step cost more than the check) */
    const double share = g_fcs_max >= 0 ? g_fcs_max : FC_SPARSE_MAX;
    const size_t most = (size_t)(share * (double)k * (live ? nl : c));
    const struct fcs_head h = {FCS_MAGIC, (uint32_t)n, (uint32_t)c, (uint32_t)k,
                               live ? (uint32_t)nl : UINT32_MAX, most};
    struct fcs_head *ph = l.head;
    if (ph->magic == FCS_MAGIC && ph->n == h.n && ph->c == h.c && ph->k == h.k && ph->nl == h.nl &&
        ph->most == h.most && memcmp(l.seen, mask, kc) == 0 &&
        (!live || memcmp(l.seen + kc, l.map, (size_t)c) == 0))
        return 1;
    ph->magic = 0;
    if (!kept_at_most(c, k, mask, live ? l.map : NULL, most)) return 0;
    lists_of(c, k, l.T, mask, live ? l.map : NULL, l.ptr, l.idx);
    const int nt = (c + l.T - 1) / l.T;
    columns_of(c, k, nt, l.TJ, l.ptr, l.idx, l.cptr, l.ridx);
    const int nr = live ? nl : c;
    for (int t = 0; t < nr; t++) l.cols[t] = live ? live[t] : t;
    memcpy(l.seen, mask, kc);
    if (live) memcpy(l.seen + kc, l.map, (size_t)c);
    *ph = h;
    return 1;
#else
    (void)n, (void)c, (void)k, (void)mask, (void)live, (void)nl, (void)ws;
    return 0;
#endif
}

void sgi_fc_forward_sparse(int n, int c, int k, const float *x, const float *w, const float *b,
                           float *y, const void *ws) {
#if FCS
    const struct fcs_lists l = lists_at(n, c, k, (void *)ws);
    switch ((n + 15) / 16) {
    case 1: fwd_all(1, n, c, k, l.T, l.ptr, l.idx, x, w, y); break;
    case 2: fwd_all(2, n, c, k, l.T, l.ptr, l.idx, x, w, y); break;
    case 3: fwd_all(3, n, c, k, l.T, l.ptr, l.idx, x, w, y); break;
    default: fwd_all(4, n, c, k, l.T, l.ptr, l.idx, x, w, y); break;
    }
    if (b)
        for (int j = 0; j < k; j++) {
            float *yj = y + (size_t)j * n;
            for (int t = 0; t < n; t++) yj[t] += b[j];
        }
#else
    (void)n, (void)c, (void)k, (void)x, (void)w, (void)b, (void)y, (void)ws;
#endif
}

void sgi_fc_dx_sparse(int n, int c, int k, const int *live, int nl, const float *w,
                      const float *dy, float *dx, void *ws) {
#if FCS
    const struct fcs_lists l = lists_at(n, c, k, ws);
    const int nr = live ? nl : c;
    switch ((n + 15) / 16) {
    case 1: dx_all(1, n, c, k, l.TJ, l.cols, nr, l.cptr, l.ridx, dy, w, l.dxt); break;
    case 2: dx_all(2, n, c, k, l.TJ, l.cols, nr, l.cptr, l.ridx, dy, w, l.dxt); break;
    case 3: dx_all(3, n, c, k, l.TJ, l.cols, nr, l.cptr, l.ridx, dy, w, l.dxt); break;
    default: dx_all(4, n, c, k, l.TJ, l.cols, nr, l.cptr, l.ridx, dy, w, l.dxt); break;
    }
    for (int t = 0; t < nr; t++) {
        const size_t r = (size_t)l.cols[t] * n;
        float *d = dx + r;
        const float *s = l.dxt + r;
        for (int q = 0; q < n; q++) d[q] += s[q];
    }
#else
    (void)n, (void)c, (void)k, (void)live, (void)nl, (void)w, (void)dy, (void)dx, (void)ws;
#endif
}
