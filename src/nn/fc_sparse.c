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
 * nothing. The chains are kept whole, so four rows run side by side to hide the
 * multiply-add latency. Checked bit for bit in tests/test_fc_sparse.c. */
#include "core/sgi_kv.h"
#include "nn/ops.h"

#if SGI_KV && defined(__AVX512F__)
#define FCS 1
#else
#define FCS 0
#endif

/* The sparse products pay where the kept share of the (live) weights is at most this.
 * LeNet-5's fc1 (500 x 800, a batch of 32, one thread, AMD EPYC Zen 5, CPU time, fastest
 * of 200), listing + forward + input gradient against the dense forward + input gradient
 * (0.23 ms): 0.31 ms at 0.3 kept, 0.27 at 0.25, 0.23 at 0.2 (a tie), 0.20 at 0.15, 0.11 at
 * 0.05. A kept weight costs about 3 cycles forward (its index, a broadcast, two row loads
 * and two multiply-adds on four rows at once) and more in the input gradient (each a load
 * and a store of a row of dx's sums), where the dense product runs near the core's peak. */
#define FC_SPARSE_MAX 0.15
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

/* dxt[i][0 .. n) += w[j][i] dy[j][0 .. n), tile by tile, the rows j in order */
KINL void dx_all(const int NV, int n, int c, int k, int T, const int32_t *ptr, const int32_t *idx,
                 const float *dy, const float *w, float *dxt) {
    const kmask last = kv_below(n - 16 * (NV - 1));
    const int nt = (c + T - 1) / T;
    for (int t = 0; t < nt; t++)
        for (int j = 0; j < k; j++) {
            const int32_t *pj = ptr + (size_t)j * (nt + 1);
            if (pj[t] == pj[t + 1]) continue;
            kv d[4];
            const float *dj = dy + (size_t)j * n;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) d[v] = v == NV - 1 ? kv_maskz(last, dj + 16 * v) : kv_loadu(dj + 16 * v);
            const float *wj = w + (size_t)j * c;
            for (int32_t q = pj[t]; q < pj[t + 1]; q++) {
                const int32_t i = idx[q];
                const kv wv = kv_set1(wj[i]);
                float *di = dxt + (size_t)i * n;
#pragma GCC unroll 4
                for (int v = 0; v < NV - 1; v++) kv_storeu(di + 16 * v, kv_fmadd(wv, d[v], kv_loadu(di + 16 * v)));
                float *dl = di + 16 * (NV - 1);
                kv_mstore(dl, last, kv_fmadd(wv, d[NV - 1], kv_maskz(last, dl)));
            }
        }
}

/* The lists' place in the workspace: row-tile starts, columns, the live map, dx's sums */
struct fcs_lists {
    int32_t *ptr, *idx;
    uint8_t *map;
    float *dxt;
    int T;
};

static struct fcs_lists lists_at(int n, int c, int k, void *ws) {
    struct fcs_lists l;
    l.T = tile_of(n);
    const int nt = (c + l.T - 1) / l.T;
    l.ptr = ws;
    l.idx = l.ptr + (size_t)k * (nt + 1);
    l.map = (uint8_t *)(l.idx + (size_t)k * c + 16);
    l.dxt = (float *)(((uintptr_t)(l.map + c) + 63) & ~(uintptr_t)63);
    return l;
}
#endif

/* ints: row-tile starts, columns (k c + 16), the live map (c bytes), alignment, dx's
 * sums (c n floats) */
size_t sgi_fc_sparse_ws(int n, int c, int k) {
#if FCS
    const size_t nt = n >= 1 ? ((size_t)c + tile_of(n) - 1) / tile_of(n) : 1;
#else
    const size_t nt = 1;
#endif
    return (size_t)k * (nt + 1) + (size_t)k * c + 16 + ((size_t)c + 3) / 4 + 16 + (size_t)c * n + 16;
}

int sgi_fc_sparse_plan(int n, int c, int k, const uint8_t *mask, const int *live, int nl,
                       void *ws) {
#if FCS
    if (!g_fcs_on || !mask || n < 1 || n > 64) return 0;
    const struct fcs_lists l = lists_at(n, c, k, ws);
    if (live) {
        memset(l.map, 0, (size_t)c);
        for (int t = 0; t < nl; t++) l.map[live[t]] = 1;
    }
    const double share = g_fcs_max >= 0 ? g_fcs_max : FC_SPARSE_MAX;
    const size_t most = (size_t)(share * (double)k * (live ? nl : c));
    if (!kept_at_most(c, k, mask, live ? l.map : NULL, most)) return 0;
    lists_of(c, k, l.T, mask, live ? l.map : NULL, l.ptr, l.idx);
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
    for (int t = 0; t < nr; t++) memset(l.dxt + (size_t)(live ? live[t] : t) * n, 0, (size_t)n * 4);
    switch ((n + 15) / 16) {
    case 1: dx_all(1, n, c, k, l.T, l.ptr, l.idx, dy, w, l.dxt); break;
    case 2: dx_all(2, n, c, k, l.T, l.ptr, l.idx, dy, w, l.dxt); break;
    case 3: dx_all(3, n, c, k, l.T, l.ptr, l.idx, dy, w, l.dxt); break;
    default: dx_all(4, n, c, k, l.T, l.ptr, l.idx, dy, w, l.dxt); break;
    }
    for (int t = 0; t < nr; t++) {
        const size_t r = (size_t)(live ? live[t] : t) * n;
        float *d = dx + r;
        const float *s = l.dxt + r;
        for (int q = 0; q < n; q++) d[q] += s[q];
    }
#else
    (void)n, (void)c, (void)k, (void)live, (void)nl, (void)w, (void)dy, (void)dx, (void)ws;
#endif
}
