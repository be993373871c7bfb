/* Layer plans: reading the structure of a mask, choosing a kernel for it, building
 * the kernel's weight format once, and running it. The block-sparse kernels are
 * in sparse_block.c, the CSR rows in sparse_csr.c; dense and thin reuse the dense
 * convolution of nn/conv.c through sg_conv_forward (sparsegrain/nn.h). */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "infer/sparse_plan.h"

static const char *const KIND_NAMES[SG_KIND_COUNT] = {"dense", "thin", "kernel", "vector",
                                                      "nm",    "fine", "auto",   "winograd"};

const char *sg_conv_kind_name(enum sg_conv_kind k) {
    return (unsigned)k < SG_KIND_COUNT ? KIND_NAMES[k] : "?";
}

int sg_conv_kind_from_name(const char *s) {
    for (int i = 0; i < SG_KIND_COUNT; i++)
        if (strcmp(KIND_NAMES[i], s) == 0) return i;
    return -1;
}

/* Dimensions a plan accepts: far above any real layer, small enough that every
 * product below fits in int64 and every filter index of a chunk in u16. */
#define MAX_DIM ((int64_t)1 << 24)
#define MAX_WEIGHTS ((int64_t)1 << 34)

/* Cost model of a tile of T vectors: about T + 0.5 vector-steps (the half is the
 * per-tile work: accumulator loads and stores, weight broadcasts, loop control),
 * so narrow tiles win only when they waste fewer lanes at the end. */
static double tiles_cost(int64_t cols, int t) {
    return (double)((cols + 16 * t - 1) / (16 * t)) * (t + 0.5);
}

int sgi_tile_width(int64_t L) {
    int best = 3;
    for (int t = 2; t >= 1; t--)
        if (tiles_cost(L, t) < tiles_cost(L, best)) best = t;
    return 16 * best;
}

/* ---- structure of a mask ---- */
struct structure {
    int64_t weights, nnz, kf, kc;  /* kept filters and channels */
    int64_t kernels, rows, cols;   /* non-empty (k,c) kernels, (k,c,r) rows, (k,c,s) columns */
};

static int geom_ok(const struct sg_conv_geom *g, int is_fc) {
    if (g->c <= 0 || g->k <= 0 || g->h <= 0 || g->w <= 0 || g->r <= 0 || g->s <= 0 ||
        g->groups <= 0 || g->c % g->groups || g->k % g->groups || g->p <= 0 || g->q <= 0)
        return 0;
    if (g->c > MAX_DIM || g->k > MAX_DIM || g->h > MAX_DIM || g->w > MAX_DIM ||
        g->r > 4096 || g->s > 4096)
        return 0;
    if (is_fc)
        return g->h == 1 && g->w == 1 && g->r == 1 && g->s == 1 && g->groups == 1 &&
               g->p == 1 && g->q == 1;
    struct sg_conv_geom t = *g;
    t.n = 1;
    if (sg_conv_geom_finish(&t) != SG_OK) return 0;
    return t.p == g->p && t.q == g->q;
}

static void analyse(const struct sg_conv_geom *g, const uint8_t *kept, struct structure *s,
                    uint8_t *fk, uint8_t *fc) {
    const int64_t K = g->k, C = g->c / g->groups, R = g->r, S = g->s, RS = R * S;
    memset(s, 0, sizeof *s);
    s->weights = K * C * RS;
    memset(fk, 0, (size_t)K);
    memset(fc, 0, (size_t)C);
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++) {
            const uint8_t *kr = kept + (k * C + c) * RS;
            int64_t n = 0;
            for (int64_t i = 0; i < RS; i++) n += kr[i] != 0;
            if (!n) continue;
            s->nnz += n;
            s->kernels++;
            fk[k] = fc[c] = 1;
            for (int64_t r = 0; r < R; r++) {
                int any = 0;
                for (int64_t q = 0; q < S; q++) any |= kr[r * S + q];
                s->rows += any != 0;
            }
            for (int64_t q = 0; q < S; q++) {
                int any = 0;
                for (int64_t r = 0; r < R; r++) any |= kr[r * S + q];
                s->cols += any != 0;
            }
        }
    for (int64_t k = 0; k < K; k++) s->kf += fk[k];
    for (int64_t c = 0; c < C; c++) s->kc += fc[c];
}

/* Largest count of kept weights in a run of M along C (fixed k, r, s). */
static int nm_max(const struct sg_conv_geom *g, const uint8_t *kept, int M) {
    const int64_t K = g->k, C = g->c, RS = (int64_t)g->r * g->s;
    int mx = 0;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c0 = 0; c0 < C; c0 += M)
            for (int64_t t = 0; t < RS; t++) {
                const int64_t len = C - c0 < M ? C - c0 : M;
                int n = 0;
                for (int64_t j = 0; j < len; j++) n += kept[(k * C + c0 + j) * RS + t] != 0;
                if (n > mx) mx = n;
            }
    return mx;
}

static int nm_bits_of(int M) {
    int b = 0;
    while ((1 << b) < M) b++;
    return b;
}

/* An N:M pattern worth its own kernel: at most half of every run kept, and the
 * runs nearly full (few padding zeros). Returns M or 0. */
static int nm_detect(const struct sg_conv_geom *g, const uint8_t *kept, int64_t nnz, int *n_out) {
    static const int MS[] = {4, 8, 2, 16};
    for (size_t i = 0; i < sizeof MS / sizeof MS[0]; i++) {
        const int M = MS[i];
        if (g->c < M) continue;
        const int n = nm_max(g, kept, M);
        if (n == 0 || 2 * n > M || n * nm_bits_of(M) > 32) continue;
        const double slots = (double)g->k * ((g->c + M - 1) / M) * g->r * g->s * n;
        if ((double)nnz >= 0.9 * slots) {
            *n_out = n;
            return M;
        }
    }
    return 0;
}

/* The rules of SG_KIND_AUTO (thresholds from the measured speed of the kinds:
 * a dense sgemm beats the sparse kernels once about 2/3 of its work is useful).
 * 3x3 stride-1 layers run Winograd whatever the mask (a partly kept kernel is
 * one entry like a whole one), measured faster than the direct kernels on VGG-16's
 * layers with 64 channels or more; with whole kernels already from 3 input
 * channels (an RGB first layer). */
static enum sg_conv_kind choose(const struct sg_conv_geom *g, int is_fc, const uint8_t *kept,
                                const struct structure *s) {
    const int64_t RS = (int64_t)g->r * g->s;
    if (g->groups != 1) return SG_KIND_DENSE;
    if (s->nnz == s->weights) return SG_KIND_DENSE;
    if (s->nnz == 0) return SG_KIND_THIN;
    /* whole kernels (kernel pruning) from 3 used channels: Winograd as fast as the
     * kernel rows with 3 (VGG-16 conv1_1 at density 0.3: 1.09-1.18 ms against
     * 1.18-1.37; at 0.1: 0.79-0.83 against 1.15-1.18) and 0.66-0.8x their time
     * with 8 and 12 (64 filters, 56x56 and 112x112, 2 threads); partly kept
     * kernels from 16 */
    const int whole = s->nnz == s->kernels * RS;
    const int wino = sgi_wino_fits(g, is_fc) && s->kc >= (whole ? 3 : 16);
    /* Dense kept blocks (filter and channel pruning) run Winograd from 3 kept
     * channels up, and with pruned filters also on an RGB layer (the thin sgemm's
     * inner dimension is 27 there, and Winograd writes the bias-only filters as
     * whole rows: VGG-16 conv1_1 at filter density 0.3, 1.15 ms against 2.1).
     * The thin sgemm's inner dimension is kc*9: VGG-16 conv1_2, conv2_1 and conv5_1
     * with 4, 8 and 13 kept channels took 2.1-3.3x Winograd's time thin (conv1_2 at
     * channel density 0.2: 7.4 ms against 2.4). With 1 or 2 the kernel rows below
     * are as fast or faster (1: 0.95 ms against 1.47 Winograd and 1.84 thin). */
    const int wino_thin = sgi_wino_fits(g, is_fc) && (s->kc >= 3 || s->kf < g->k);
    /* a few input channels, their kernels kept whole and no filter pruned (channel
     * pruning of an RGB layer): the thin sgemm's inner dimension is kc*R*S, 9 for
     * one channel, and the kernel rows run faster (VGG-16 conv1_1 at channel
     * density 0.33: 0.95-1.03 ms against 1.60-1.73 thin and 1.48-1.65 Winograd) */
    if (RS > 1 && !wino_thin && s->kc * RS <= 27 && whole) return SG_KIND_KERNEL;
    if ((double)s->nnz >= 0.65 * (double)s->kf * (double)s->kc * (double)RS)
        return wino_thin ? SG_KIND_WINOGRAD : SG_KIND_THIN;
    /* Winograd takes whole and partly kept kernels alike (a kept kernel is a CSR
     * entry whatever its kept weights): at 3x3 stride 1 it costs 36/16
     * multiply-adds per output and non-empty kernel against one per kept weight
     * for the direct kinds, which run at about a third of its rate. VGG-16's layers
     * from 64 channels, one thread, vector and fine pruning at 0.1 and 0.3: faster
     * in 45 of the 48 (up to 3.3x; fine at 0.3: conv1_2 24 ms against 40, conv4_2 25
     * against 30), the other 3 are 14x14 layers within the spread of three
     * identical ones. */
    if (wino) return SG_KIND_WINOGRAD;
    if (RS > 1 && (double)s->nnz >= 0.8 * (double)s->kernels * (double)RS) return SG_KIND_KERNEL;
    if (g->s > 1 && (double)s->nnz >= 0.8 * (double)s->rows * g->s) return SG_KIND_VECTOR;
    if (g->r > 1 && (double)s->nnz >= 0.8 * (double)s->cols * g->r) return SG_KIND_VECTOR;
    int n;
    if (!is_fc && nm_detect(g, kept, s->nnz, &n)) return SG_KIND_NM;
    return SG_KIND_FINE;
}

/* kept[i] = mask[i] && w[i] != 0 (a kept weight that is exactly zero adds nothing). */
static enum sg_status kept_of(int64_t n, const float *w, const uint8_t *mask, uint8_t **out) {
    uint8_t *kept = sgi_alloc((size_t)n, 1);
    if (!kept) return SG_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) kept[i] = (!mask || mask[i]) && w[i] != 0.0f;
    *out = kept;
    return SG_OK;
}

static struct sg_conv_geom fc_geom(const struct sg_conv_geom *g) {
    struct sg_conv_geom f = {1, g->c, 1, 1, g->k, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    return f;
}

enum sg_conv_kind sg_conv_plan_suggest(const struct sg_conv_geom *g0, int is_fc, const float *w,
                                       const uint8_t *mask) {
    struct sg_conv_geom g = is_fc ? fc_geom(g0) : *g0;
    if (!geom_ok(&g, is_fc)) return SG_KIND_DENSE;
    const int64_t n = (int64_t)g.k * (g.c / g.groups) * g.r * g.s;
    if (n > MAX_WEIGHTS) return SG_KIND_DENSE;
    uint8_t *kept = NULL, *fk = sgi_alloc((size_t)g.k, 1), *fc = sgi_alloc((size_t)g.c, 1);
    enum sg_conv_kind kind = SG_KIND_DENSE;
    if (fk && fc && kept_of(n, w, mask, &kept) == SG_OK) {
        struct structure s;
        analyse(&g, kept, &s, fk, fc);
        kind = choose(&g, is_fc, kept, &s);
    }
    free(kept), free(fk), free(fc);
    return kind;
}

void sg_conv_plan_free(struct sg_conv_plan *p) {
    if (!p) return;
    free(p->bias);
    free(p->w);
    free(p->k_idx);
    free(p->c_idx);
    free(p->bias_thin);
    free(p->k_pos);
    sgi_blk_free(&p->blk);
    sgi_csr_free(&p->csr);
    sgi_wino_free(&p->wino);
    free(p->ws);
    free(p);
}

static enum sg_status build_thin(struct sg_conv_plan *p, const float *wm, const uint8_t *fk,
                                 const uint8_t *fc) {
    const int64_t K = p->g.k, C = p->g.c, RS = (int64_t)p->g.r * p->g.s;
    p->k_idx = sgi_alloc((size_t)(p->info.kept_filters ? p->info.kept_filters : 1), 4);
    p->c_idx = sgi_alloc((size_t)(p->info.kept_channels ? p->info.kept_channels : 1), 4);
    if (!p->k_idx || !p->c_idx) return SG_ERR_NOMEM;
    for (int64_t k = 0; k < K; k++)
        if (fk[k]) p->k_idx[p->kk++] = (int32_t)k;
    for (int64_t c = 0; c < C; c++)
        if (fc[c]) p->c_idx[p->cc++] = (int32_t)c;
    const size_t n = (size_t)p->kk * p->cc * RS;
    p->w = sgi_alloc(n ? n : 1, sizeof(float));
    if (!p->w) return SG_ERR_NOMEM;
    for (int32_t i = 0; i < p->kk; i++)
        for (int32_t j = 0; j < p->cc; j++)
            memcpy(p->w + ((size_t)i * p->cc + j) * RS,
                   wm + ((size_t)p->k_idx[i] * C + p->c_idx[j]) * RS, (size_t)RS * sizeof(float));
    if (p->bias && p->kk) {
        if (!(p->bias_thin = sgi_alloc((size_t)p->kk, sizeof(float)))) return SG_ERR_NOMEM;
        for (int32_t i = 0; i < p->kk; i++) p->bias_thin[i] = p->bias[p->k_idx[i]];
    }
    const struct sg_conv_geom *g = &p->g;
    const int pointwise = RS == 1 && !g->pt && !g->pl && !g->pb && !g->pr;
    /* with few input channels the shifted sgemms are too thin to be fast (an RGB
     * first layer measured slower than im2col) */
    if (!p->is_fc && g->sh == 1 && g->sw == 1 && !pointwise && p->kk && p->cc >= 16) {
        /* tap-major weights W[t][K'][C'] for the shifted sgemms (run_thin_shifted) */
        p->k_pos = sgi_alloc((size_t)K, sizeof *p->k_pos);
        if (!p->k_pos) return SG_ERR_NOMEM;
        for (int64_t k = 0; k < K; k++) p->k_pos[k] = -1;
        for (int32_t i = 0; i < p->kk; i++) p->k_pos[p->k_idx[i]] = i;
        float *wt = sgi_alloc(n ? n : 1, sizeof(float));
        if (!wt) return SG_ERR_NOMEM;
        for (int32_t i = 0; i < p->kk; i++)
            for (int32_t j = 0; j < p->cc; j++)
                for (int64_t t = 0; t < RS; t++)
                    wt[(t * p->kk + i) * p->cc + j] = p->w[((size_t)i * p->cc + j) * RS + t];
        free(p->w);
        p->w = wt;
        p->w_taps = 1;
    }
    p->info.stored = (int64_t)n;
    p->info.bytes = n * sizeof(float) + ((size_t)p->kk + p->cc) * 4;
    return SG_OK;
}

enum sg_status sg_conv_plan_new(const struct sg_conv_geom *g0, int is_fc, const float *w,
                                const uint8_t *mask, const float *bias, enum sg_conv_kind kind,
                                const struct sg_conv_plan_opts *opts, struct sg_conv_plan **out) {
    *out = NULL;
    struct sg_conv_geom g = is_fc ? fc_geom(g0) : *g0;
    if ((unsigned)kind >= SG_KIND_COUNT)
        return sgi_error(SG_ERR_ARG, "unknown kernel kind %d", (int)kind);
    if (!geom_ok(&g, is_fc))
        return sgi_error(SG_ERR_ARG,
                         "plan: invalid %s geometry (c %d, k %d, %dx%d input, %dx%d kernel, "
                         "output %dx%d, groups %d)",
                         is_fc ? "fc" : "conv", g0->c, g0->k, g0->h, g0->w, g0->r, g0->s, g0->p,
                         g0->q, g0->groups);
    const int64_t cg = g.c / g.groups, RS = (int64_t)g.r * g.s;
    const int64_t nw = (int64_t)g.k * cg * RS;
    if (nw > MAX_WEIGHTS)
        return sgi_error(SG_ERR_LIMIT, "plan: %lld weights (limit %lld)", (long long)nw,
                         (long long)MAX_WEIGHTS);
    enum sg_status bst = sg_blas_load(); /* dense kinds and fallbacks multiply */
    if (bst != SG_OK) return bst;
    struct sg_conv_plan *p = calloc(1, sizeof *p);
    if (!p) return sgi_error(SG_ERR_NOMEM, "out of memory");
    p->g = g;
    p->is_fc = is_fc;
    uint8_t *kept = NULL, *fk = sgi_alloc((size_t)g.k, 1), *fc = sgi_alloc((size_t)cg, 1);
    float *wm = sgi_alloc((size_t)nw, sizeof(float));
    enum sg_status st = SG_OK;
    if (!fk || !fc || !wm || (st = kept_of(nw, w, mask, &kept)) != SG_OK) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory building a plan for %lld weights",
                       (long long)nw);
        goto fail;
    }
    for (int64_t i = 0; i < nw; i++) wm[i] = kept[i] ? w[i] : 0.0f;
    if (bias) {
        if (!(p->bias = sgi_alloc((size_t)g.k, sizeof(float)))) {
            st = SG_ERR_NOMEM;
            goto fail;
        }
        memcpy(p->bias, bias, (size_t)g.k * sizeof(float));
    }
    struct structure s;
    analyse(&g, kept, &s, fk, fc);
    if (kind == SG_KIND_AUTO) kind = choose(&g, is_fc, kept, &s);
    if (g.groups != 1 && kind != SG_KIND_DENSE) {
        st = sgi_error(SG_ERR_UNSUPPORTED,
                       "kernel '%s' needs groups == 1 (this convolution has %d groups)",
                       sg_conv_kind_name(kind), g.groups);
        goto fail;
    }
    if (kind == SG_KIND_WINOGRAD && !sgi_wino_fits(&g, is_fc)) {
        st = sgi_error(SG_ERR_UNSUPPORTED, "kernel 'winograd' needs a 3x3 convolution with "
                                           "stride 1, no dilation and at most 65536 input channels");
        goto fail;
    }
    p->kind = kind;
    p->info.kind = kind;
    p->info.weights = nw;
    p->info.nnz = s.nnz;
    p->info.kept_filters = s.kf;
    p->info.kept_channels = s.kc;
    p->info.vector_cols = 0;
    switch (kind) {
    case SG_KIND_DENSE:
        p->w = wm;
        wm = NULL;
        p->info.stored = nw;
        p->info.bytes = (size_t)nw * sizeof(float);
        break;
    case SG_KIND_THIN: st = build_thin(p, wm, fk, fc); break;
    case SG_KIND_WINOGRAD: st = sgi_wino_build(p, wm, kept); break;
    case SG_KIND_KERNEL:
    case SG_KIND_VECTOR:
    case SG_KIND_NM:
    case SG_KIND_FINE: {
        if (kind == SG_KIND_VECTOR) {
            int cols = opts ? opts->vector_cols : -1;
            if (cols < 0) /* detect: the axis whose blocks are fuller */
                cols = g.r > 1 && (g.s == 1 || (double)s.cols * g.r < (double)s.rows * g.s);
            p->info.vector_cols = cols != 0;
        }
        if (kind == SG_KIND_NM) {
            int M = opts && opts->nm_m > 0 ? opts->nm_m : 0, n = 0;
            if (!M) M = nm_detect(&g, kept, s.nnz, &n);
            if (!M) M = 4;
            if (M < 2 || M > 256) {
                st = sgi_error(SG_ERR_ARG, "nm: M = %d (2 to 256 allowed)", M);
                break;
            }
            n = nm_max(&g, kept, M);
            if (n * nm_bits_of(M) > 32) {
                st = sgi_error(SG_ERR_UNSUPPORTED,
                               "nm: %d kept of %d need %d index bits per entry (32 at most)", n,
                               M, n * nm_bits_of(M));
                break;
            }
            p->info.nm_n = n;
            p->info.nm_m = M;
        }
        /* 1x1 stride-1 convolutions and fc layers read x as the column matrix
         * itself: fine-grained rows need no gathering at all. */
        p->use_csr = kind == SG_KIND_FINE && RS == 1 && g.sh == 1 && g.sw == 1 && !g.pt &&
                     !g.pl && !g.pb && !g.pr;
        st = p->use_csr ? sgi_csr_build(p, wm, kept) : sgi_blk_build(p, wm, kept);
        break;
    }
    default: st = sgi_error(SG_ERR_ARG, "kernel kind '%s' cannot be built", sg_conv_kind_name(kind));
    }
    if (st != SG_OK) goto fail;
    free(kept), free(fk), free(fc), free(wm);
    *out = p;
    return SG_OK;
fail:
    free(kept), free(fk), free(fc), free(wm);
    sg_conv_plan_free(p);
    return st;
}

void sg_conv_plan_get_info(const struct sg_conv_plan *p, struct sg_conv_plan_info *info) {
    *info = p->info;
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static enum sg_status ws_need(struct sg_conv_plan *p, size_t floats) {
    if (floats <= p->ws_len) return SG_OK;
    free(p->ws);
    p->ws_len = 0;
    if (!(p->ws = sgi_alloc(floats, sizeof(float))))
        return sgi_error(SG_ERR_NOMEM, "out of memory for %zu MB of kernel scratch",
                         floats / (1u << 18));
    p->ws_len = floats;
    return SG_OK;
}

static void fill_rows(float *y, int64_t k, size_t len, const float *bias) {
    const float v = bias ? bias[k] : 0.0f;
    float *yr = y + (size_t)k * len;
    for (size_t i = 0; i < len; i++) yr[i] = v;
}

/* Thin stride-1 convolution without im2col: the kept input channels are copied
 * once into a zero-padded buffer xp[C'][n][Hp][Wp], and every tap (r, s) is one
 * sgemm Y[K'][j] += W_rs[K'][C'] * xp[C'][j + r*dh*Wp + s*dw], a shifted view of
 * xp, over output columns j = image*Hp*Wp + p*Wp + q in padded-width
 * coordinates (columns q >= Q and rows p >= P are computed and dropped). im2col
 * would write R*S copies of the input; for a layer thinned to a fraction of its
 * filters that copy, not the product, dominated. */
static enum sg_status run_thin_shifted(struct sg_conv_plan *p, int n, const float *x, float *y) {
    const struct sg_conv_geom *g = &p->g;
    const int64_t Hp = (int64_t)g->h + g->pt + g->pb, Wp = (int64_t)g->w + g->pl + g->pr;
    const int64_t RS = (int64_t)g->r * g->s, hw = (int64_t)g->h * g->w, PQ = (int64_t)g->p * g->q;
    const int64_t plane = Hp * Wp, cs = (int64_t)n * plane;          /* channel stride in xp */
    const int64_t ncols = (int64_t)(n - 1) * plane + (int64_t)g->p * Wp;
    const int64_t slack = (int64_t)(g->s - 1) * g->dw + 16;          /* read past the last plane */
    if (cs > INT32_MAX || ncols > INT32_MAX)
        return sgi_error(SG_ERR_LIMIT, "thin: batch %d makes the padded input too large", n);
    size_t nxp, nout;
    if (!sgi_mul((size_t)p->cc, (size_t)cs, &nxp) || !sgi_add(nxp, (size_t)slack, &nxp) ||
        !sgi_mul((size_t)p->kk, (size_t)ncols, &nout))
        return sgi_error(SG_ERR_LIMIT, "thin: scratch size overflows");
    nxp = sgi_round16(nxp);
    enum sg_status st = ws_need(p, nxp + nout + 16);
    if (st != SG_OK) return st;
    float *xp = p->ws, *out = p->ws + nxp;
    const int64_t planes = (int64_t)p->cc * n;
#pragma omp parallel for schedule(static) if (planes * plane > 65536)
    for (int64_t t = 0; t < planes; t++) {
        const int64_t j = t / n, img = t % n;
        const float *src = x + ((int64_t)p->c_idx[j] * n + img) * hw;
        float *dst = xp + j * cs + img * plane;
        memset(dst, 0, (size_t)(g->pt * Wp) * sizeof(float));
        for (int64_t h = 0; h < g->h; h++) {
            float *d = dst + (h + g->pt) * Wp;
            memset(d, 0, (size_t)g->pl * sizeof(float));
            memcpy(d + g->pl, src + h * g->w, (size_t)g->w * sizeof(float));
            memset(d + g->pl + g->w, 0, (size_t)g->pr * sizeof(float));
        }
        memset(dst + (g->pt + g->h) * Wp, 0, (size_t)(g->pb * Wp) * sizeof(float));
    }
    memset(xp + (int64_t)p->cc * cs, 0, (size_t)slack * sizeof(float));
    for (int64_t t = 0; t < RS; t++) {
        const int64_t off = (t / g->s) * g->dh * Wp + (t % g->s) * g->dw;
        sgi_sgemm(0, 0, p->kk, (int)ncols, p->cc, 1.0f, p->w + t * p->kk * p->cc, p->cc,
                  xp + off, (int)cs, t ? 1.0f : 0.0f, out, (int)ncols);
    }
    /* keep the valid columns, add the bias; pruned filters give only their bias */
    const int64_t lout = (int64_t)n * PQ, rows = (int64_t)g->k * n * g->p;
#pragma omp parallel for schedule(static) if (rows * g->q > 65536)
    for (int64_t t = 0; t < rows; t++) {
        const int64_t k = t / ((int64_t)n * g->p), ip = t % ((int64_t)n * g->p);
        const int64_t img = ip / g->p, pp = ip % g->p;
        float *d = y + k * lout + img * PQ + pp * g->q;
        const float b = p->bias ? p->bias[k] : 0.0f;
        const int32_t j = p->k_pos[k];
        if (j < 0) {
            for (int64_t q = 0; q < g->q; q++) d[q] = b;
        } else {
            const float *s0 = out + (int64_t)j * ncols + img * plane + pp * Wp;
            for (int64_t q = 0; q < g->q; q++) d[q] = s0[q] + b;
        }
    }
    return SG_OK;
}

static enum sg_status run_thin(struct sg_conv_plan *p, int n, const float *x, float *y) {
    const struct sg_conv_geom *g0 = &p->g;
    const size_t lin = (size_t)n * g0->h * g0->w, lout = (size_t)n * g0->p * g0->q;
    if (p->kk == 0) { /* every filter pruned: the output is the bias */
        for (int64_t k = 0; k < g0->k; k++) fill_rows(y, k, lout, p->bias);
        return SG_OK;
    }
    if (p->w_taps) return run_thin_shifted(p, n, x, y);
    struct sg_conv_geom g = *g0;
    g.n = n;
    g.c = p->cc;
    g.k = p->kk;
    const int gather = p->cc != g0->c, scatter = p->kk != g0->k;
    const int nt = max_threads();
    const size_t col = p->is_fc ? 0 : sg_conv_workspace(&g, nt);
    const size_t nx = gather ? sgi_round16((size_t)p->cc * lin) : 0;
    const size_t ny = scatter ? sgi_round16((size_t)p->kk * lout) : 0;
    enum sg_status st = ws_need(p, nx + ny + col + 16);
    if (st != SG_OK) return st;
    float *xs = gather ? p->ws : (float *)x, *ys = scatter ? p->ws + nx : y;
    float *cw = p->ws + nx + ny;
    if (gather) {
#pragma omp parallel for schedule(static) if (p->cc * lin > 65536)
        for (int32_t j = 0; j < p->cc; j++)
            memcpy(xs + (size_t)j * lin, x + (size_t)p->c_idx[j] * lin, lin * sizeof(float));
    }
    if (p->is_fc)
        sg_fc_forward(n, p->cc, p->kk, xs, p->w, p->bias_thin, ys);
    else
        sg_conv_forward(&g, xs, p->w, p->bias_thin, ys, cw, nt);
    if (scatter) {
        /* walk the filters once: kept rows come from ys in order, the rest is bias */
        int32_t j = 0;
        for (int64_t k = 0; k < g0->k; k++) {
            if (j < p->kk && p->k_idx[j] == k)
                memcpy(y + (size_t)k * lout, ys + (size_t)j++ * lout, lout * sizeof(float));
            else
                fill_rows(y, k, lout, p->bias);
        }
    }
    return SG_OK;
}

enum sg_status sg_conv_plan_run(struct sg_conv_plan *p, int n, const float *x, float *y) {
    if (n <= 0 || n > (1 << 24)) return sgi_error(SG_ERR_ARG, "plan run: batch %d", n);
    size_t lin, lout;
    if (!sgi_mul((size_t)n, (size_t)p->g.h * p->g.w, &lin) ||
        !sgi_mul((size_t)n, (size_t)p->g.p * p->g.q, &lout) ||
        !sgi_mul(lin, (size_t)p->g.c, &lin) || !sgi_mul(lout, (size_t)p->g.k, &lout) ||
        lin > ((size_t)1 << 40) || lout > ((size_t)1 << 40))
        return sgi_error(SG_ERR_LIMIT, "plan run: batch %d makes the tensors too large", n);
    switch (p->kind) {
    case SG_KIND_DENSE: {
        if (p->is_fc) {
            sg_fc_forward(n, p->g.c, p->g.k, x, p->w, p->bias, y);
            return SG_OK;
        }
        struct sg_conv_geom g = p->g;
        g.n = n;
        const int nt = max_threads();
        enum sg_status st = ws_need(p, sg_conv_workspace(&g, nt) + 16);
        if (st != SG_OK) return st;
        sg_conv_forward(&g, x, p->w, p->bias, y, p->ws, nt);
        return SG_OK;
    }
    case SG_KIND_THIN: return run_thin(p, n, x, y);
    case SG_KIND_WINOGRAD: {
        /* lane offsets are int32 within one channel's planes */
        if ((int64_t)n * p->g.h * p->g.w > INT32_MAX || (int64_t)n * p->g.p * p->g.q > INT32_MAX)
            return sgi_error(SG_ERR_LIMIT, "winograd: batch %d makes a channel exceed 2^31", n);
        const int nt = max_threads();
        const size_t shared = sgi_wino_shared(p, n, nt);
        size_t total;
        if (!sgi_mul(sgi_wino_scratch(p), (size_t)nt, &total) || total + shared < total)
            return sgi_error(SG_ERR_LIMIT, "plan run: scratch size overflows");
        enum sg_status st = ws_need(p, total + shared);
        if (st != SG_OK) return st;
        sgi_wino_run(p, n, x, y, p->ws, nt);
        return SG_OK;
    }
    default: break;
    }
    if (p->use_csr) {
        sgi_csr_run(p, n, x, y);
        return SG_OK;
    }
    const int nt = max_threads();
    const size_t per = sgi_blk_scratch(p, sgi_tile_width((int64_t)n * p->g.p * p->g.q));
    size_t total;
    if (!sgi_mul(per, (size_t)nt, &total))
        return sgi_error(SG_ERR_LIMIT, "plan run: scratch size overflows");
    enum sg_status st = ws_need(p, total);
    if (st != SG_OK) return st;
    sgi_blk_run(p, n, x, y, p->ws, nt);
    return SG_OK;
}
