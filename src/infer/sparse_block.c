/* Block-sparse convolution: kinds kernel (1 x R*S blocks), vector (1 x S or R x 1),
 * fine (single weights: one group per input channel and tap, CSC-like) and nm (N
 * of every M along C).
 *
 * The product is Y[K][L] = W[K][C*R*S] * X[C*R*S][L] with X the im2col matrix
 * (L = N*P*Q output positions), computed input-stationary on tiles of TW <= 48
 * columns:
 *   for a tile of columns, for a chunk of SGI_KC filters (its output tile Y[KC][TW]
 *   lives in L1), for each group (channel, or channel row, or block of M
 *   channels) that some filter of the chunk uses: the group's rows of X for this
 *   tile are gathered once into L1 (im2col restricted to the tile and to channels
 *   that are needed), then every filter of the chunk that uses the group adds its
 *   weights times those rows.
 * For the kernel kind with 3x3 kernels the 9 x TW gathered values sit in
 * registers while the filters stream past them: per filter 9 broadcasts and
 * 9*T fused multiply-adds against T accumulator loads and stores.
 * No padding copy and no full im2col: padding, stride and dilation are handled
 * in the gather. Every output element is summed by one thread in a fixed order,
 * so results do not depend on the thread count. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "infer/sparse_plan.h"

#define AI static inline __attribute__((always_inline))

struct seg { /* one output row's run of columns inside a tile */
    int32_t l0, len, img, p, q;
};

size_t sgi_blk_scratch(const struct sg_conv_plan *p, int tw) {
    const size_t C = (size_t)p->g.c, RS = (size_t)p->g.r * p->g.s;
    return sgi_round16(C * RS * tw) + sgi_round16((size_t)SGI_KC * tw) + sgi_round16(2 * C) +
           sgi_round16(10 * (size_t)tw + 5); /* segments of this tile and the next */
}

void sgi_blk_free(struct sgi_blk *b) {
    free(b->chunk_g);
    free(b->g_c);
    free(b->g_t0);
    free(b->g_e);
    free(b->e_k);
    free(b->meta);
    free(b->w);
    memset(b, 0, sizeof *b);
}

/* ---- building ---- */
struct bctx {
    enum sg_conv_kind kind;
    int64_t K, C, R, S, RS;
    int cols, M;
    const uint8_t *kept;
};

static int64_t ngroups_of(const struct bctx *x) {
    switch (x->kind) {
    case SG_KIND_VECTOR: return x->C * (x->cols ? x->S : x->R);
    case SG_KIND_NM: return (x->C + x->M - 1) / x->M;
    case SG_KIND_FINE: return x->C * x->RS;
    default: return x->C;
    }
}

/* Kept weights of filter k in group gi (0: the filter is not an entry of it). */
static int64_t members(const struct bctx *x, int64_t k, int64_t gi) {
    int64_t n = 0;
    if (x->kind == SG_KIND_VECTOR) {
        const int64_t per = x->cols ? x->S : x->R, c = gi / per, j = gi % per;
        const uint8_t *kr = x->kept + (k * x->C + c) * x->RS;
        if (x->cols)
            for (int64_t r = 0; r < x->R; r++) n += kr[r * x->S + j];
        else
            for (int64_t s = 0; s < x->S; s++) n += kr[j * x->S + s];
    } else if (x->kind == SG_KIND_FINE) {
        n = x->kept[(k * x->C + gi / x->RS) * x->RS + gi % x->RS];
    } else if (x->kind == SG_KIND_NM) {
        const int64_t c0 = gi * x->M, len = x->C - c0 < x->M ? x->C - c0 : x->M;
        const uint8_t *kr = x->kept + (k * x->C + c0) * x->RS;
        for (int64_t i = 0; i < len * x->RS; i++) n += kr[i];
    } else {
        const uint8_t *kr = x->kept + (k * x->C + gi) * x->RS;
        for (int64_t i = 0; i < x->RS; i++) n += kr[i];
    }
    return n;
}

enum sg_status sgi_blk_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept) {
    struct sgi_blk *b = &p->blk;
    const struct sg_conv_geom *g = &p->g;
    struct bctx x = {p->kind, g->k, g->c, g->r, g->s, (int64_t)g->r * g->s,
                     p->info.vector_cols, p->info.nm_m, kept};
    const int64_t K = x.K, C = x.C, R = x.R, S = x.S, RS = x.RS, ngr = ngroups_of(&x);
    const int N = p->info.nm_n;
    switch (x.kind) {
    case SG_KIND_KERNEL: b->G = (int)RS, b->tstride = 1; break;
    case SG_KIND_VECTOR: b->G = (int)(x.cols ? R : S), b->tstride = x.cols ? (int)S : 1; break;
    case SG_KIND_FINE: b->G = 1, b->tstride = 1; break;
    case SG_KIND_NM:
        b->nm_n = N, b->nm_m = x.M;
        for (b->nm_bits = 0; (1 << b->nm_bits) < x.M; b->nm_bits++) {}
        b->nm_mb = (N * b->nm_bits + 7) / 8;
        if (b->nm_mb == 0) b->nm_mb = 1;
        break;
    default: break;
    }
    /* pass 1: sizes */
    b->nchunk = (int32_t)((K + SGI_KC - 1) / SGI_KC);
    int64_t ngroups = 0, nent = 0, nval = 0;
    for (int64_t ch = 0; ch < b->nchunk; ch++) {
        const int64_t k0 = ch * SGI_KC, k1 = k0 + SGI_KC < K ? k0 + SGI_KC : K;
        for (int64_t gi = 0; gi < ngr; gi++) {
            int64_t ne = 0;
            for (int64_t k = k0; k < k1; k++) ne += members(&x, k, gi) != 0;
            ngroups += ne > 0;
            nent += ne;
        }
    }
    if (x.kind != SG_KIND_NM) nval = nent * b->G;
    if (x.kind == SG_KIND_NM) nval = nent * RS * N;
    b->ngroups = ngroups, b->nentries = nent, b->nvalues = nval;
    b->chunk_g = sgi_alloc((size_t)b->nchunk + 1, sizeof *b->chunk_g);
    b->g_c = sgi_alloc((size_t)ngroups + 1, sizeof *b->g_c);
    b->g_t0 = sgi_alloc((size_t)ngroups + 1, sizeof *b->g_t0);
    b->g_e = sgi_alloc((size_t)ngroups + 1, sizeof *b->g_e);
    b->e_k = sgi_alloc((size_t)nent + 1, sizeof *b->e_k);
    b->w = sgi_alloc((size_t)nval + 16, sizeof *b->w);
    if (!b->chunk_g || !b->g_c || !b->g_t0 || !b->g_e || !b->e_k || !b->w)
        return SG_ERR_NOMEM;
    size_t extra = 0;
    if (x.kind == SG_KIND_NM) {
        size_t nm;
        /* + 4: the reader may load a whole u32 at the last entry */
        if (!sgi_mul((size_t)nent * (size_t)RS, (size_t)b->nm_mb, &nm) ||
            !(b->meta = sgi_zalloc(nm + 4, 1)))
            return SG_ERR_NOMEM;
        extra = nm;
    }
    /* pass 2: fill */
    int64_t gn = 0, en = 0, vn = 0;
    for (int64_t ch = 0; ch < b->nchunk; ch++) {
        const int64_t k0 = ch * SGI_KC, k1 = k0 + SGI_KC < K ? k0 + SGI_KC : K;
        b->chunk_g[ch] = gn;
        for (int64_t gi = 0; gi < ngr; gi++) {
            const int64_t e_start = en;
            for (int64_t k = k0; k < k1; k++) {
                const int64_t m = members(&x, k, gi);
                if (!m) continue;
                if (en == e_start) { /* the group's first entry opens the group */
                    b->g_e[gn] = en;
                    b->g_t0[gn] = 0;
                    b->g_c[gn] = (int32_t)gi;
                    if (x.kind == SG_KIND_VECTOR) {
                        const int64_t per = x.cols ? S : R, j = gi % per;
                        b->g_c[gn] = (int32_t)(gi / per);
                        b->g_t0[gn] = (int32_t)(x.cols ? j : j * S);
                    } else if (x.kind == SG_KIND_FINE) {
                        b->g_c[gn] = (int32_t)(gi / RS);
                        b->g_t0[gn] = (int32_t)(gi % RS);
                    } else if (x.kind == SG_KIND_NM) {
                        b->g_c[gn] = (int32_t)(gi * x.M);
                    }
                    gn++;
                }
                b->e_k[en] = (uint16_t)(k - k0);
                if (x.kind == SG_KIND_KERNEL) {
                    memcpy(b->w + vn, wm + (k * C + gi) * RS, (size_t)RS * sizeof(float));
                    vn += RS;
                } else if (x.kind == SG_KIND_VECTOR) {
                    const int64_t c = b->g_c[gn - 1], t0 = b->g_t0[gn - 1];
                    for (int i = 0; i < b->G; i++)
                        b->w[vn++] = wm[(k * C + c) * RS + t0 + (int64_t)i * b->tstride];
                } else if (x.kind == SG_KIND_FINE) {
                    b->w[vn++] = wm[(k * C + gi / RS) * RS + gi % RS];
                } else { /* nm: per tap, the kept channels of the block (N slots) */
                    const int64_t c0 = gi * x.M, len = C - c0 < x.M ? C - c0 : x.M;
                    for (int64_t t = 0; t < RS; t++) {
                        uint32_t meta = 0;
                        int used = 0;
                        for (int64_t j = 0; j < len && used < N; j++)
                            if (kept[(k * C + c0 + j) * RS + t]) {
                                b->w[vn + used] = wm[(k * C + c0 + j) * RS + t];
                                meta |= (uint32_t)j << (used * b->nm_bits);
                                used++;
                            }
                        for (; used < N; used++) b->w[vn + used] = 0.0f; /* index 0, weight 0 */
                        uint8_t *mp = b->meta + ((size_t)en * RS + t) * b->nm_mb;
                        for (int i = 0; i < b->nm_mb; i++) mp[i] = (uint8_t)(meta >> (8 * i));
                        vn += N;
                    }
                }
                en++;
            }
        }
    }
    b->chunk_g[b->nchunk] = gn;
    b->g_e[gn] = en;
    SG_ASSERT(gn == ngroups && en == nent && vn == nval);
    p->info.stored = nval;
    p->info.bytes = (size_t)nval * sizeof(float) + (size_t)nent * 2 + (size_t)ngroups * 24 +
                    ((size_t)b->nchunk + 1) * 8 + extra;
    return SG_OK;
}

/* ---- running ---- */

static int make_segs(const struct sg_conv_geom *g, int64_t j0, int tw, struct seg *sg) {
    const int64_t PQ = (int64_t)g->p * g->q;
    int64_t img = j0 / PQ, rem = j0 % PQ;
    int p = (int)(rem / g->q), q = (int)(rem % g->q), n = 0, lane = 0;
    while (lane < tw) {
        int len = g->q - q;
        if (len > tw - lane) len = tw - lane;
        sg[n++] = (struct seg){lane, len, (int32_t)img, p, q};
        lane += len;
        q = 0;
        if (++p == g->p) p = 0, img++;
    }
    return n;
}

static inline void zero_f(float *d, int64_t n) {
    int64_t i = 0;
    for (; i + SGV_W <= n; i += SGV_W) sgv_storeu(d + i, sgv_zero());
    if (i < n) sgv_storeu_n(d + i, sgv_zero(), (int)(n - i));
}

static inline void copy_f(float *d, const float *s, int64_t n) {
    int64_t i = 0;
    for (; i + SGV_W <= n; i += SGV_W) sgv_storeu(d + i, sgv_loadu(s + i));
    if (i < n) sgv_storeu_n(d + i, sgv_loadu_n(s + i, (int)(n - i)), (int)(n - i));
}

/* dst[r*S+s][lane] = x[c][img][p*sh-pt+r*dh][q*sw-pl+s*dw] for the tile's lanes
 * (0 outside the image and past tw). xc: channel c of the batch. With stride 1
 * each 16 lanes of a tap are one masked load: the mask drops the columns that
 * fall in the padding, so nothing outside the image is read. */
static void gather(const struct sg_conv_geom *g, const float *xc, const struct seg *sg, int nseg,
                   int tw, int TW, float *dst) {
    const int R = g->r, S = g->s, H = g->h, W = g->w;
    const int64_t hw = (int64_t)H * W;
    for (int i = 0; i < nseg; i++) {
        const struct seg *s = &sg[i];
        const float *xi = xc + s->img * hw;
        for (int r = 0; r < R; r++) {
            const int ih = s->p * g->sh - g->pt + r * g->dh;
            float *d0 = dst + (int64_t)r * S * TW + s->l0;
            if (ih < 0 || ih >= H) {
                for (int q = 0; q < S; q++) zero_f(d0 + (int64_t)q * TW, s->len);
                continue;
            }
            const float *row = xi + (int64_t)ih * W;
            if (g->sw == 1) {
                const uintptr_t ra = (uintptr_t)row;
                for (int l = 0; l < s->len; l += SGV_W) {
                    const int n = s->len - l < SGV_W ? s->len - l : SGV_W;
                    for (int q = 0; q < S; q++) {
                        const int iw = s->q - g->pl + q * g->dw + l; /* column of lane 0 */
                        int lo = -iw, hi = W - iw;
                        lo = lo < 0 ? 0 : lo > n ? n : lo;
                        hi = hi < lo ? lo : hi > n ? n : hi;
                        /* masked loads that split cache lines are slow: only the
                         * vectors touching the padding use one */
                        const sgv v = lo == 0 && hi == SGV_W
                                          ? sgv_loadu(row + iw)
                                          : sgv_load_range(ra + (uintptr_t)((intptr_t)iw * 4), lo, hi);
                        float *d = d0 + (int64_t)q * TW + l;
                        if (n == SGV_W) sgv_storeu(d, v);
                        else sgv_storeu_n(d, v, n);
                    }
                }
            } else {
                for (int q = 0; q < S; q++) {
                    float *d = d0 + (int64_t)q * TW;
                    const int iw0 = s->q * g->sw - g->pl + q * g->dw;
                    for (int l = 0; l < s->len; l++) {
                        const int iw = iw0 + l * g->sw;
                        d[l] = iw >= 0 && iw < W ? row[iw] : 0.0f;
                    }
                }
            }
        }
    }
    if (tw < TW)
        for (int t = 0; t < R * S; t++) zero_f(dst + (int64_t)t * TW + tw, TW - tw);
}

/* Asks for the lines gather() will read for channel xc, so that they arrive
 * from L2 while the current group computes. */
static void prefetch_rows(const struct sg_conv_geom *g, const float *xc, const struct seg *sg,
                          int nseg, int l2) {
    const int64_t hw = (int64_t)g->h * g->w;
    for (int i = 0; i < nseg; i++) {
        const struct seg *s = &sg[i];
        int w0 = s->q * g->sw - g->pl, w1 = (s->q + s->len - 1) * g->sw - g->pl +
                                              (g->s - 1) * g->dw + 1;
        w0 = w0 < 0 ? 0 : w0;
        w1 = w1 > g->w ? g->w : w1;
        if (w1 <= w0) continue;
        for (int r = 0; r < g->r; r++) {
            const int ih = s->p * g->sh - g->pt + r * g->dh;
            if (ih < 0 || ih >= g->h) continue;
            const float *row = xc + s->img * hw + (int64_t)ih * g->w;
            if (l2) { /* the next tile's rows: early, into L2 only (L1 is too small) */
                for (int l = w0; l < w1; l += SGV_W) __builtin_prefetch(row + l, 0, 2);
                __builtin_prefetch(row + w1 - 1, 0, 2);
            } else {
                for (int l = w0; l < w1; l += SGV_W) __builtin_prefetch(row + l, 0, 3);
                __builtin_prefetch(row + w1 - 1, 0, 3);
            }
        }
    }
}

/* What one group's kernel needs. */
struct grp {
    const float *xb;       /* gathered rows: the group's first tap of its first channel */
    int64_t tstep;         /* floats between taps of the group (kernel, vector) */
    const uint16_t *ek;    /* entries: filters relative to the chunk */
    int64_t ne;
    const float *w;        /* the entries' values, in order */
    float *yt;             /* output tile [SGI_KC][TW] */
    int TW, G;
    const uint8_t *meta;       /* nm */
    int RS, N, bits, mb;
};

/* Fixed G taps with the gathered values held in registers (G * T <= 27). */
AI void reg_body(const struct grp *a, const int G, const int T) {
    sgv xr[9][3];
#pragma GCC unroll 9
    for (int g = 0; g < G; g++)
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) xr[g][t] = sgv_load(a->xb + g * a->tstep + t * SGV_W);
    const float *restrict w = a->w;
    for (int64_t e = 0; e < a->ne; e++, w += G) {
        float *restrict y = a->yt + (size_t)a->ek[e] * a->TW;
        sgv acc[3];
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) acc[t] = sgv_load(y + t * SGV_W);
#pragma GCC unroll 9
        for (int g = 0; g < G; g++) {
            const sgv wv = sgv_set1(w[g]);
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) acc[t] = sgv_fma(wv, xr[g][t], acc[t]);
        }
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) sgv_store(y + t * SGV_W, acc[t]);
    }
}

/* Any G: the gathered values are read from L1 at every use. */
AI void mem_body(const struct grp *a, const int T) {
    const int G = a->G;
    const float *restrict w = a->w;
    for (int64_t e = 0; e < a->ne; e++, w += G) {
        float *restrict y = a->yt + (size_t)a->ek[e] * a->TW;
        sgv acc[3];
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) acc[t] = sgv_load(y + t * SGV_W);
        for (int g = 0; g < G; g++) {
            const sgv wv = sgv_set1(w[g]);
            const float *xg = a->xb + g * a->tstep;
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) acc[t] = sgv_fma(wv, sgv_load(xg + t * SGV_W), acc[t]);
        }
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) sgv_store(y + t * SGV_W, acc[t]);
    }
}

/* N:M: per entry and tap, N values whose channels inside the block are packed
 * in nm_bits each. */
AI void nm_body(const struct grp *a, const int T) {
    const int RS = a->RS, N = a->N, bits = a->bits, mb = a->mb;
    const uint32_t msk = (1u << bits) - 1u;
    const size_t cstep = (size_t)RS * a->TW;
    const float *restrict w = a->w;
    const uint8_t *mt = a->meta;
    for (int64_t e = 0; e < a->ne; e++) {
        float *restrict y = a->yt + (size_t)a->ek[e] * a->TW;
        sgv acc[3];
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) acc[t] = sgv_load(y + t * SGV_W);
        for (int rs = 0; rs < RS; rs++, mt += mb, w += N) {
            uint32_t m = mt[0];
            for (int i = 1; i < mb; i++) m |= (uint32_t)mt[i] << (8 * i);
            const float *xt = a->xb + (size_t)rs * a->TW;
            for (int i = 0; i < N; i++) {
                const sgv wv = sgv_set1(w[i]);
                const float *xg = xt + ((m >> (i * bits)) & msk) * cstep;
#pragma GCC unroll 3
                for (int t = 0; t < T; t++)
                    acc[t] = sgv_fma(wv, sgv_load(xg + t * SGV_W), acc[t]);
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < T; t++) sgv_store(y + t * SGV_W, acc[t]);
    }
}

typedef void (*grp_fn)(const struct grp *a);
#define INST(name, body, ...)                                                           \
    static void name##_1(const struct grp *a) { body(a, __VA_ARGS__ 1); }               \
    static void name##_2(const struct grp *a) { body(a, __VA_ARGS__ 2); }               \
    static void name##_3(const struct grp *a) { body(a, __VA_ARGS__ 3); }               \
    static const grp_fn name[4] = {NULL, name##_1, name##_2, name##_3};
INST(reg9, reg_body, 9, )
INST(reg3, reg_body, 3, )
INST(reg1, reg_body, 1, )
INST(mem, mem_body, )
INST(nmk, nm_body, )

void sgi_blk_run(const struct sg_conv_plan *p, int n, const float *x, float *y, float *scratch,
                 int nthreads) {
    const struct sg_conv_geom *g = &p->g;
    const struct sgi_blk *b = &p->blk;
    const int64_t L = (int64_t)n * g->p * g->q, lin = (int64_t)n * g->h * g->w;
    const int64_t C = g->c, K = g->k, RS = (int64_t)g->r * g->s;
    const int TW = sgi_tile_width(L), T = TW / SGV_W;
    const size_t per = sgi_blk_scratch(p, TW);
    const size_t xb_len = sgi_round16((size_t)C * RS * TW), yt_len = sgi_round16((size_t)SGI_KC * TW);
    grp_fn fn;
    switch (p->kind) {
    case SG_KIND_KERNEL:
    case SG_KIND_VECTOR:
        fn = b->G == 9 ? reg9[T] : b->G == 3 ? reg3[T] : b->G == 1 ? reg1[T] : mem[T];
        break;
    case SG_KIND_FINE: fn = reg1[T]; break;
    default: fn = nmk[T]; break;
    }
    /* Tasks are (tile, range of chunks); small layers split the filters too so
     * that both threads get work (each range gathers its own copy of the rows). */
    const int64_t ntile = (L + TW - 1) / TW, nch = b->nchunk;
    int64_t parts = 1;
    while (parts < nch && ntile * parts < 4 * (int64_t)nthreads) parts++;
    const int64_t cpp = (nch + parts - 1) / parts;
    parts = (nch + cpp - 1) / cpp;
    const int64_t ntask = ntile * parts;
    int64_t grain = ntask / (16 * (int64_t)nthreads);  /* tasks per scheduling step */
    if (grain < 1) grain = 1;
    const int span = p->kind == SG_KIND_NM ? b->nm_m : 1;
    /* A task of one chunk visits each group once: its gathered rows can live in
     * one slot (per channel of the group) that stays in L1. Tasks of several
     * chunks keep every channel's rows (in L2) to gather each only once. */
    const int single = cpp == 1;
    /* a parallel region costs a few microseconds, and far more when the machine is
     * shared and a thread waits for a core: small layers run on one thread */
    const double work = (double)b->nvalues * (double)ntile * T;
    const int nt = work < 65536.0 ? 1 : nthreads;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        float *xbuf = scratch + (size_t)tid * per, *yt = xbuf + xb_len;
        /* stamp[slot] = task * C + channel whose rows the slot holds */
        int64_t *stamp = (int64_t *)(void *)(yt + yt_len);
        struct seg *sg = (struct seg *)(void *)(yt + yt_len + sgi_round16(2 * (size_t)C));
        struct seg *sg_next = sg + TW;
        for (int64_t c = 0; c < C; c++) stamp[c] = -1;
        struct grp a;
        memset(&a, 0, sizeof a);
        a.TW = TW;
        a.G = b->G;
        a.tstep = (int64_t)b->tstride * TW;
        a.yt = yt;
        a.RS = (int)RS, a.N = b->nm_n, a.bits = b->nm_bits, a.mb = b->nm_mb;
#pragma omp for schedule(dynamic, grain)
        for (int64_t task = 0; task < ntask; task++) {
            const int64_t tile = task / parts, part = task % parts;
            const int64_t j0 = tile * TW, j1 = j0 + TW;
            const int tw = (int)(L - j0 < TW ? L - j0 : TW);
            const int nseg = make_segs(g, j0, tw, sg);
            const int nseg_next =
                j1 < L ? make_segs(g, j1, (int)(L - j1 < TW ? L - j1 : TW), sg_next) : 0;
            const int64_t ch1 = (part + 1) * cpp < nch ? (part + 1) * cpp : nch;
            for (int64_t ch = part * cpp; ch < ch1; ch++) {
                const int64_t k0 = ch * SGI_KC, kn = K - k0 < SGI_KC ? K - k0 : SGI_KC;
                /* Fetch the output lines for writing now: stores that miss the cache
                 * at write-out would otherwise stall the next tile's input loads
                 * that alias them in the low 12 address bits (x and y rows are
                 * often the same distance apart), measured 3x slower on 224x224. */
                for (int64_t kl = 0; kl < kn; kl++) {
                    const float *yr = y + (k0 + kl) * L + j0;
                    for (int l = 0; l < tw; l += SGV_W) __builtin_prefetch(yr + l, 1, 3);
                    __builtin_prefetch(yr + tw - 1, 1, 3);
                }
                memset(yt, 0, (size_t)kn * TW * sizeof(float));
                for (int64_t gi = b->chunk_g[ch]; gi < b->chunk_g[ch + 1]; gi++) {
                    const int64_t c = b->g_c[gi];
                    const int64_t len = C - c < span ? C - c : span;
                    for (int64_t cc = c; cc < c + len; cc++) {
                        const int64_t slot = single ? cc - c : cc, key = task * C + cc;
                        if (stamp[slot] != key) {
                            /* inputs beyond L2 arrive too late for a prefetch one
                             * channel ahead: ask for the next tile's now */
                            if (nseg_next) prefetch_rows(g, x + cc * lin, sg_next, nseg_next, 1);
                            gather(g, x + cc * lin, sg, nseg, tw, TW, xbuf + slot * RS * TW);
                            stamp[slot] = key;
                        }
                    }
                    if (gi + 1 < b->chunk_g[ch + 1] && b->g_c[gi + 1] != c) {
                        const int64_t c1 = b->g_c[gi + 1];
                        const int64_t slot1 = single ? 0 : c1;
                        if (stamp[slot1] != task * C + c1)
                            prefetch_rows(g, x + c1 * lin, sg, nseg, 0);
                    }
                    const int64_t e0 = b->g_e[gi];
                    a.xb = xbuf + ((single ? 0 : c) * RS + b->g_t0[gi]) * TW;
                    a.ek = b->e_k + e0;
                    a.ne = b->g_e[gi + 1] - e0;
                    switch (p->kind) {
                    case SG_KIND_NM:
                        a.w = b->w + e0 * RS * b->nm_n;
                        a.meta = b->meta + (size_t)e0 * RS * b->nm_mb;
                        break;
                    default: a.w = b->w + e0 * b->G; break;
                    }
                    fn(&a);
                }
                /* write the chunk's outputs (bias added); tail lanes are not stored */
                for (int64_t kl = 0; kl < kn; kl++) {
                    float *yr = y + (k0 + kl) * L + j0;
                    const float *src = yt + kl * TW;
                    const sgv bv = p->bias ? sgv_set1(p->bias[k0 + kl]) : sgv_zero();
                    for (int t = 0; t < T; t++) {
                        const int lanes = tw - t * SGV_W;
                        if (lanes >= SGV_W)
                            sgv_storeu(yr + t * SGV_W, sgv_add(sgv_load(src + t * SGV_W), bv));
                        else if (lanes > 0)
                            sgv_storeu_n(yr + t * SGV_W, sgv_add(sgv_load(src + t * SGV_W), bv),
                                         lanes);
                    }
                }
            }
        }
    }
}
