/* Masked convolutions that skip what filter and channel masks remove: when whole
 * filters (rows W[k,:,:,:]) or whole input channels (W[:,c,:,:]) are masked out,
 * the layer runs as a thinner dense convolution over the kept filters and channels
 * (through the same fast paths as any convolution: Winograd or im2col/GEMM) and
 * the results are scattered back. Channel-major activations make this cheap: a
 * channel of X[C][N][H][W] is one contiguous block. The masks themselves are not
 * touched; a pruned filter's output is its bias, its weight gradient zero.
 * Exactly the dense masked computation up to the order of the sums; checked
 * against it in tests/test_conv_thin.c. */
#include "core/sgi.h"
#include "nn/ops.h"

/* Thinning pays when it removes at least this share of the work. */
#define MAX_KEPT_SHARE 0.8

static int g_thin_on = 1;

void sgi_conv_thin_enable(int on) { g_thin_on = on; }
int sgi_conv_thin_is_on(void) { return g_thin_on; }

void sgi_thin_buf_free(struct sgi_thin_buf *tb) {
    free(tb->kept);
    free(tb->p);
    free(tb->lists);
    memset(tb, 0, sizeof *tb);
}

/* The kept filters and channels of a mask into tb->kept ([0, nk) filters, then
 * [nk, nk + nc) channels); 1 when thinning pays, 0 otherwise (or out of memory). */
static int plan(const struct sg_conv_geom *g, const uint8_t *mask, struct sgi_thin_buf *tb,
                int *nk, int *nc) {
    if (!g_thin_on || !mask || g->groups != 1) return 0;
    const size_t rs = (size_t)g->r * g->s, crs = (size_t)g->c * rs;
    if ((size_t)tb->kept_cap < (size_t)(g->k + g->c)) {
        int *p = realloc(tb->kept, (size_t)(g->k + g->c) * sizeof *p);
        if (!p) return 0;
        tb->kept = p;
        tb->kept_cap = g->k + g->c;
    }
    int *kk = tb->kept, *cc = tb->kept + g->k;
    /* every filter's mask row ORed into one row (no branch per weight: this runs at
     * every pass of every masked layer, and a fine mask's bytes are 0 or 1 at random) */
    uint8_t *any_k = calloc(crs, 1);
    if (!any_k) return 0;
    int a = 0, b = 0;
    for (int k = 0; k < g->k; k++) {
        const uint8_t *mk = mask + (size_t)k * crs;
        uint8_t any = 0;
        for (size_t t = 0; t < crs; t++) any_k[t] |= mk[t], any |= mk[t];
        if (any) kk[a++] = k;
    }
    for (int c = 0; c < g->c; c++) {
        uint8_t any = 0;
        for (size_t t = 0; t < rs; t++) any |= any_k[(size_t)c * rs + t];
        if (any) cc[b++] = c;
    }
    free(any_k);
    *nk = a, *nc = b;
    /* the compact arrays come after kept filters and channels */
    return (double)a * b <= MAX_KEPT_SHARE * (double)g->k * g->c;
}

/* Room for x' (and dx'), y' (dy'), W', dW' and the inner workspace. */
static float *room(struct sgi_thin_buf *tb, size_t n) {
    if (n > tb->len) {
        free(tb->p);
        tb->p = sgi_alloc(n, sizeof(float));
        tb->len = tb->p ? n : 0;
    }
    return tb->p;
}

static struct sg_conv_geom thin_geom(const struct sg_conv_geom *g, int nk, int nc) {
    struct sg_conv_geom t = *g;
    t.k = nk, t.c = nc;
    return t;
}

/* W'[a][b] = W[kk[a]][cc[b]] */
static void compact_w(const struct sg_conv_geom *g, const float *w, const int *kk, int nk,
                      const int *cc, int nc, float *wt) {
    const size_t rs = (size_t)g->r * g->s;
    for (int a = 0; a < nk; a++)
        for (int b = 0; b < nc; b++)
            memcpy(wt + ((size_t)a * nc + b) * rs, w + ((size_t)kk[a] * g->c + cc[b]) * rs,
                   rs * sizeof *wt);
}

/* every filter starts at its bias (all a pruned filter gives) */
static void fill_bias(const struct sg_conv_geom *g, const float *b, float *y, size_t yp) {
    SGI_PAR_FOR(yp * g->k > 65536 ? sg_get_threads() : 1, for (int k = 0; k < g->k; k++) {
        const float bk = b ? b[k] : 0.0f;
        float *yk = y + (size_t)k * yp;
        for (size_t i = 0; i < yp; i++) yk[i] = bk;
    });
}

static void scatter_dw(const struct sg_conv_geom *g, const float *dwt, const int *kk, int nk,
                       const int *cc, int nc, float *dw) {
    const size_t rs = (size_t)g->r * g->s;
    for (int a = 0; a < nk; a++)
        for (int bb = 0; bb < nc; bb++)
            memcpy(dw + ((size_t)kk[a] * g->c + cc[bb]) * rs, dwt + ((size_t)a * nc + bb) * rs,
                   rs * sizeof *dw);
}

static void gather_planes(const float *x, size_t plane, const int *idx, int n, float *xt) {
    SGI_PAR_FOR((size_t)n * plane > 65536 ? sg_get_threads() : 1,
                for (int i = 0; i < n; i++)
                    memcpy(xt + (size_t)i * plane, x + (size_t)idx[i] * plane, plane * sizeof *xt););
}

/* A thinned layer that would run in image lanes runs there on the whole layer instead,
 * on the lists of its kept kernels (nn/conv_lanes.c: removed filters give 0 planes and
 * channels no kept kernel reads are never turned): the same chains in the same order
 * as on the compacted layer, so the same bits, without the copies in and out. 1 with
 * the lists in *kp and room for the lanes' workspace, 0 to thin as usual. */
static int whole_lanes(const struct sg_conv_geom *g, const struct sg_conv_geom *t,
                       const uint8_t *mask, int threads, struct sgi_thin_buf *tb,
                       struct sgi_kept *kp, float **ws) {
    if (!sgi_conv_lanes_ok(t) || sgi_wino_train_shape_ok(t)) return 0;
    if (!room(tb, sgi_conv_lanes_workspace(g, threads) + 64)) return 0;
    *ws = tb->p;
    return sgi_conv_kernel_lists(g, mask, 1.0, tb, kp);
}

int sgi_conv_thin_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                          const uint8_t *mask, const float *b, float *y, int threads,
                          struct sgi_thin_buf *tb) {
    int nk, nc;
    if (!plan(g, mask, tb, &nk, &nc)) return 0;
    const int *kk = tb->kept, *cc = tb->kept + g->k;
    const size_t xp = (size_t)g->n * g->h * g->w, yp = (size_t)g->n * g->p * g->q;
    const size_t rs = (size_t)g->r * g->s;
    const struct sg_conv_geom t = thin_geom(g, nk, nc);
    /* every channel kept: x is read in place; every filter kept: y is written in
     * place, bias included (channel pruning and filter pruning alone copy only
     * what they must) */
    const int all_c = nc == g->c, all_k = nk == g->k;
    struct sgi_kept kl;
    float *lws;
    if (nk && nc && whole_lanes(g, &t, mask, threads, tb, &kl, &lws)) {
        sgi_conv_lanes_forward(g, x, w, &kl, y, lws, threads);
        if (b) sgi_conv_add_bias(g, b, y); /* the sum, then the bias: the dense pass's order */
        return 1;
    }
    const size_t ws = nk && nc ? sgi_conv_workspace(&t, threads) : 0;
    if (nk && nc && sgi_wino_train_ok(&t)) {
        /* Winograd reads the kept planes of x and adds into the kept planes of y
         * where they are: no copies at all */
        float *p = room(tb, (size_t)nk * nc * rs + ws + 64);
        if (!p) return 0;
        fill_bias(g, b, y, yp);
        compact_w(g, w, kk, nk, cc, nc, p);
        struct sgi_kept kp;
        const int kern = sgi_conv_kernel_thin_lists(g, &t, mask, kk, cc, 0, tb, &kp);
        sgi_wino_train_forward_map(&t, all_c ? NULL : cc, all_k ? NULL : kk, x, p,
                                   kern ? &kp : NULL, 1, y, p + (size_t)nk * nc * rs, threads);
        return 1;
    }
    float *p = room(tb, (all_c ? 0 : nc * xp) + (all_k ? 0 : nk * yp) + (size_t)nk * nc * rs +
                            ws + 64);
    if (!p) return 0;
    float *xt = all_c ? NULL : p, *yt = p + (all_c ? 0 : nc * xp);
    float *wt = yt + (all_k ? 0 : nk * yp), *wsp = wt + (size_t)nk * nc * rs;
    /* the thinned layer's own kernel mask, where it keeps few enough kernels */
    struct sgi_kept kp;
    const struct sgi_kept *kpp =
        nk && nc && sgi_conv_kernel_thin_lists(g, &t, mask, kk, cc, 0, tb, &kp) ? &kp : NULL;
    if (all_k && nc) {
        compact_w(g, w, kk, nk, cc, nc, wt);
        if (!all_c) gather_planes(x, xp, cc, nc, xt);
        sgi_conv_forward_kept(&t, all_c ? x : xt, wt, kpp, b, y, wsp, threads);
        return 1;
    }
    fill_bias(g, b, y, yp);
    if (!nk || !nc) return 1;
    if (!all_c) gather_planes(x, xp, cc, nc, xt);
    compact_w(g, w, kk, nk, cc, nc, wt);
    sgi_conv_forward_kept(&t, all_c ? x : xt, wt, kpp, NULL, yt, wsp, threads);
    SGI_PAR_FOR(yp * nk > 65536 ? sg_get_threads() : 1, for (int a = 0; a < nk; a++) {
        float *yk = y + (size_t)kk[a] * yp;
        const float *src = yt + (size_t)a * yp;
        for (size_t i = 0; i < yp; i++) yk[i] += src[i];
    });
    return 1;
}

int sgi_conv_thin_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                           const uint8_t *mask, const uint8_t *dead, const float *dy, float *dx,
                           int set_dx, float *dw, float *db, int threads, struct sgi_thin_buf *tb) {
    int nk, nc;
    if (!plan(g, mask, tb, &nk, &nc)) return 0;
    const int *kk = tb->kept, *cc = tb->kept + g->k;
    const size_t xp = (size_t)g->n * g->h * g->w, yp = (size_t)g->n * g->p * g->q;
    const size_t rs = (size_t)g->r * g->s, nw = (size_t)nk * nc * rs;
    const struct sg_conv_geom t = thin_geom(g, nk, nc);
    /* every channel kept: x read and dx accumulated in place; every filter kept: dy
     * read in place */
    const int all_c = nc == g->c, all_k = nk == g->k;
    const int wino = nk && nc && sgi_wino_train_ok(&t); /* reads and adds in place */
    const size_t ws = nk && nc ? sgi_conv_workspace(&t, threads) : 0;
    const size_t need = (all_c || wino ? 0 : 2 * nc * xp) + (all_k || wino ? 0 : nk * yp) +
                        2 * nw + ws + 64;
    float *p = room(tb, need);
    if (!p) return 0;
    float *xt = all_c || wino ? NULL : p, *dxt = all_c || wino ? NULL : p + nc * xp;
    float *dyt = p + (all_c || wino ? 0 : 2 * nc * xp), *wt = dyt + (all_k || wino ? 0 : nk * yp);
    float *dwt = wt + nw, *wsp = dwt + nw;
    memset(dw, 0, (size_t)g->k * g->c * rs * sizeof *dw);
    if (db) {
        SGI_PAR_FOR(yp * g->k > 65536 ? sg_get_threads() : 1,
                    for (int k = 0; k < g->k; k++) db[k] =
                        dead && dead[k] ? 0.0f : (float)sgi_sum(dy + (size_t)k * yp, yp););
    }
    /* dx written (set_dx): by the Winograd pass where it covers every channel, else
     * zeroed here and added to */
    const int wino_sets = set_dx && wino && all_c;
    if (dx && set_dx && !wino_sets) memset(dx, 0, (size_t)g->c * xp * sizeof *dx);
    if (!nk || !nc) return 1;
    struct sgi_kept kl;
    float *lws;
    if (whole_lanes(g, &t, mask, threads, tb, &kl, &lws)) { /* dw and dx as zeroed above */
        sgi_conv_lanes_backward(g, x, w, &kl, dy, dx, dw, lws, threads);
        return 1;
    }
    /* the thinned layer's own kernel mask, where it keeps few enough kernels */
    struct sgi_kept kp;
    const struct sgi_kept *kpp = sgi_conv_kernel_thin_lists(g, &t, mask, kk, cc, 1, tb, &kp) ? &kp : NULL;
    if (wino) { /* the kept planes read and added to where they are: no copies */
        compact_w(g, w, kk, nk, cc, nc, wt);
        sgi_wino_train_backward_map(&t, all_c ? NULL : cc, all_k ? NULL : kk, x, wt, kpp, dy, dx,
                                    wino_sets, dwt, wsp, threads);
        scatter_dw(g, dwt, kk, nk, cc, nc, dw);
        return 1;
    }
    if (!all_c) gather_planes(x, xp, cc, nc, xt);
    if (!all_k) gather_planes(dy, yp, kk, nk, dyt);
    compact_w(g, w, kk, nk, cc, nc, wt);
    if (dx && !all_c) memset(dxt, 0, nc * xp * sizeof *dxt);
    sgi_conv_backward_kept(&t, all_c ? x : xt, wt, kpp, all_k ? dy : dyt,
                           dx ? (all_c ? dx : dxt) : NULL, 0, dwt, NULL, wsp, threads);
    scatter_dw(g, dwt, kk, nk, cc, nc, dw);
    if (dx && !all_c) {
        SGI_PAR_FOR(xp * nc > 65536 ? sg_get_threads() : 1, for (int bb = 0; bb < nc; bb++) {
            float *d = dx + (size_t)cc[bb] * xp;
            const float *s = dxt + (size_t)bb * xp;
            for (size_t i = 0; i < xp; i++) d[i] += s[i];
        });
    }
    return 1;
}
