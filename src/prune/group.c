/* Groups of a layer: tiles of W[K][C][R][S] (or N of M along C), their scores,
 * and applying per-group decisions to the mask. */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "prune_internal.h"

static int64_t clampd(int64_t d, int64_t extent) { return d <= 0 || d > extent ? extent : d; }

struct sg_tile sg_prune_tile(const struct sg_prune_spec *s, const struct sg_wview *v) {
    struct sg_tile t = {1, 1, 1, 1};
    switch (s->gran) {
    case SG_GRAN_VECTOR:
        if (s->vector_cols) t.r = v->r;
        else t.s = v->s;
        break;
    case SG_GRAN_KERNEL: t.r = v->r, t.s = v->s; break;
    case SG_GRAN_FILTER: t.c = v->c, t.r = v->r, t.s = v->s; break;
    case SG_GRAN_CHANNEL: t.k = v->k, t.r = v->r, t.s = v->s; break;
    case SG_GRAN_BLOCK:
        t.k = clampd(s->block.k, v->k), t.c = clampd(s->block.c, v->c);
        t.r = clampd(s->block.r, v->r), t.s = clampd(s->block.s, v->s);
        break;
    default: break;
    }
    return t;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t sg_prune_groups(const struct sg_prune_spec *s, const struct sg_wview *v) {
    if (s->gran == SG_GRAN_NM) return v->k * ceil_div(v->c, s->nm_m) * v->r * v->s;
    struct sg_tile t = sg_prune_tile(s, v);
    return ceil_div(v->k, t.k) * ceil_div(v->c, t.c) * ceil_div(v->r, t.r) * ceil_div(v->s, t.s);
}

/* Flat group index of element (k, c, r, s) for a tile. */
struct tiling {
    int64_t gk, gc, gr, gs, nc, nr, ns;
};

static struct tiling tiling_of(const struct sg_tile *t, const struct sg_wview *v) {
    struct tiling g = {t->k, t->c, t->r, t->s, ceil_div(v->c, t->c), ceil_div(v->r, t->r),
                       ceil_div(v->s, t->s)};
    return g;
}

/* A group's members lie in contiguous runs of the flat K*C*R*S order: S-long
 * chunks of a row (vector), whole R*S kernels (kernel), whole C*R*S filters
 * (filter), gs-long pieces (tiles narrower than S). Walking runs instead of
 * elements keeps divisions out of the inner loops, which then vectorise; work is
 * split over filters (or, for tiles spanning all filters, over channels) so no two
 * threads touch the same group. */
enum run_op { RUN_SCORE, RUN_APPLY, RUN_NONZERO };
/* What the score needs besides liveness (sums and maxima are computed for every
 * run; the 1x1 channel rows skip what is not needed). */
enum run_want { RUN_WANT_SUM, RUN_WANT_MAX, RUN_WANT_NONE };
struct run_acc {
    float *sum, *mx;
    uint8_t *live;
    int l2;
    enum run_want want;
};

static inline void run_do(enum run_op op, float *restrict w, uint8_t *restrict mk, int64_t len,
                          int64_t g, void *ctx, const uint8_t *keep) {
    if (op == RUN_APPLY) {
        const uint8_t kp = keep[g];
        memset(mk, kp, (size_t)len);
        if (!kp) memset(w, 0, (size_t)len * sizeof *w);
    } else if (op == RUN_SCORE) {
        struct run_acc *a = ctx;
        float sm, mx;
        uint8_t lv;
        sgi_run_stats(w, mk, len, a->l2, &sm, &mx, &lv);
        a->sum[g] += sm;
        a->mx[g] = mx > a->mx[g] ? mx : a->mx[g];
        a->live[g] |= lv;
    } else {
        uint8_t *nz = ctx, any = 0;
        for (int64_t i = 0; i < len; i++) any |= w[i] != 0.0f;
        nz[g] |= any;
    }
}

/* One weight per group along a row (1x1 channels): separate restrict-qualified
 * streams so the loops vectorise; each group still accumulates in filter order,
 * and only the statistic the criterion reads. */
static void apply_row(float *restrict w, uint8_t *restrict mk, const uint8_t *restrict keep,
                      int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        mk[i] = keep[i];
        w[i] = keep[i] ? w[i] : 0.0f;
    }
}

static void score_row(const float *restrict w, const uint8_t *restrict mk, int64_t n,
                      const struct run_acc *a, int64_t g) {
    float *restrict sum = a->sum + g, *restrict mx = a->mx + g;
    uint8_t *restrict live = a->live + g;
    for (int64_t i = 0; i < n; i++) live[i] |= mk[i];
    if (a->want == RUN_WANT_MAX) {
        for (int64_t i = 0; i < n; i++) {
            const float x = fabsf(w[i]);
            mx[i] = x > mx[i] ? x : mx[i];
        }
    } else if (a->want == RUN_WANT_SUM) {
        if (a->l2)
            for (int64_t i = 0; i < n; i++) sum[i] += fabsf(w[i]) * fabsf(w[i]);
        else
            for (int64_t i = 0; i < n; i++) sum[i] += fabsf(w[i]);
    }
}

/* Runs of filter k, channels [c0, c1). */
static void runs_of(const struct sg_wview *v, const struct tiling *tg, int64_t k, int64_t c0,
                    int64_t c1, enum run_op op, void *ctx, const uint8_t *keep) {
    const int64_t C = v->c, R = v->r, S = v->s, kb = k / tg->gk;
    float *wk = v->w + k * C * R * S;
    uint8_t *mk = v->mask + k * C * R * S;
    if (tg->gc >= C && tg->gr >= R && tg->gs >= S && c0 == 0 && c1 == C) {
        run_do(op, wk, mk, C * R * S, kb, ctx, keep); /* a whole filter is one run */
        return;
    }
    if (R * S == 1 && tg->gc == 1) { /* 1x1 weights, one group per channel: no runs */
        const int64_t g0 = kb * tg->nc;
        if (op == RUN_APPLY) {
            apply_row(wk + c0, mk + c0, keep + g0 + c0, c1 - c0);
        } else if (op == RUN_SCORE) {
            const struct run_acc *a = ctx;
            score_row(wk + c0, mk + c0, c1 - c0, a, g0 + c0);
        } else {
            uint8_t *nz = ctx;
            for (int64_t c = c0; c < c1; c++) nz[g0 + c] |= wk[c] != 0.0f;
        }
        return;
    }
    for (int64_t c = c0; c < c1; c++) {
        const int64_t gkc = (kb * tg->nc + c / tg->gc) * tg->nr;
        float *wc = wk + c * R * S;
        uint8_t *mc = mk + c * R * S;
        if (tg->gr >= R && tg->gs >= S) {
            run_do(op, wc, mc, R * S, gkc * tg->ns, ctx, keep);
            continue;
        }
        for (int64_t r = 0; r < R; r++) {
            const int64_t grow = (gkc + r / tg->gr) * tg->ns;
            for (int64_t s0 = 0, sb = 0; s0 < S; s0 += tg->gs, sb++)
                run_do(op, wc + r * S + s0, mc + r * S + s0, S - s0 < tg->gs ? S - s0 : tg->gs,
                       grow + sb, ctx, keep);
        }
    }
}

static void for_each_run(const struct sg_wview *v, const struct tiling *tg, enum run_op op,
                         void *ctx, const uint8_t *keep) {
    const int64_t K = v->k, C = v->c, total = K * C * v->r * v->s;
    if (tg->gk == 1) {
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int64_t k = 0; k < K; k++) runs_of(v, tg, k, 0, C, op, ctx, keep);
    } else if (tg->gc == 1) {
        /* groups span filters (channel): each thread owns a range of channels and
         * walks the filters in order, so every group still accumulates in filter
         * order (the same sums at any thread count) and memory is read in rows */
#pragma omp parallel if (total > 65536)
        {
            int id = 0, nt = 1;
#ifdef _OPENMP
            id = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
            const int64_t c0 = C * id / nt, c1 = C * (id + 1) / nt;
            if (c1 > c0)
                for (int64_t k = 0; k < K; k++) runs_of(v, tg, k, c0, c1, op, ctx, keep);
        }
    } else { /* blocks of gk filters never share a group with another block */
        const int64_t nkb = (K + tg->gk - 1) / tg->gk;
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int64_t kb = 0; kb < nkb; kb++)
            for (int64_t k = kb * tg->gk; k < K && k < (kb + 1) * tg->gk; k++)
                runs_of(v, tg, k, 0, C, op, ctx, keep);
    }
}

enum sg_status sg_prune_scores(const struct sg_prune_spec *s, const struct sg_wview *v,
                               float *scores) {
    const int64_t K = v->k, C = v->c, R = v->r, S = v->s;
    const float *w = v->w;
    const uint8_t *mk = v->mask;
    const uint64_t lh = sgi_name_hash(v->name);
    if (s->gran == SG_GRAN_NM) {
        /* groups run along C; a group's members score individually, but we report
         * the group's L1 here (used by statistics, not by nm selection) */
        const int64_t M = s->nm_m, ncg = ceil_div(C, M), n = sg_prune_groups(s, v);
        for (int64_t g = 0; g < n; g++) scores[g] = 0;
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t rs = 0; rs < R * S; rs++) {
                    const int64_t i = (k * C + c) * R * S + rs;
                    scores[(k * ncg + c / M) * R * S + rs] += fabsf(w[i]);
                }
        return SG_OK;
    }
    const struct sg_tile t = sg_prune_tile(s, v);
    const int64_t n = sg_prune_groups(s, v), total = K * C * R * S;
    if (t.k == 1 && t.c == 1 && t.r == 1 && t.s == 1) { /* fine: the weight is the group */
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int64_t i = 0; i < total; i++) {
            float sc = s->crit == SG_CRIT_RANDOM ? sgi_random_score(s->seed, lh, (uint64_t)i)
                                                 : fabsf(w[i]);
            scores[i] = mk[i] ? sc : -1.0f;
        }
        return SG_OK;
    }
    float *sum = sgi_zalloc((size_t)n, sizeof *sum), *mx = sgi_zalloc((size_t)n, sizeof *mx);
    uint8_t *live = sgi_zalloc((size_t)n, 1);
    if (!sum || !mx || !live) {
        free(sum), free(mx), free(live);
        return SG_ERR_NOMEM;
    }
    const struct tiling tg = tiling_of(&t, v);
    struct run_acc acc = {sum, mx, live, s->crit == SG_CRIT_L2,
                          s->crit == SG_CRIT_MAX      ? RUN_WANT_MAX
                          : s->crit == SG_CRIT_RANDOM ? RUN_WANT_NONE
                                                      : RUN_WANT_SUM};
    for_each_run(v, &tg, RUN_SCORE, &acc, NULL);
    for (int64_t g = 0; g < n; g++) {
        int64_t size = 1;
        if (s->crit == SG_CRIT_MEAN) {
            /* tiles at the edges are clipped: divide by the real member count */
            const int64_t kb = g / (tg.nc * tg.nr * tg.ns), cb = g / (tg.nr * tg.ns) % tg.nc;
            const int64_t rb = g / tg.ns % tg.nr, sb = g % tg.ns;
            size = (K - kb * t.k < t.k ? K - kb * t.k : t.k) *
                   (C - cb * t.c < t.c ? C - cb * t.c : t.c) *
                   (R - rb * t.r < t.r ? R - rb * t.r : t.r) *
                   (S - sb * t.s < t.s ? S - sb * t.s : t.s);
        }
        const float sc = sgi_group_score(s->crit, sum[g], mx[g], (float)size, s->seed, lh,
                                         (uint64_t)g);
        scores[g] = live[g] ? sc : -1.0f;
    }
    free(sum), free(mx), free(live);
    return SG_OK;
}

void sgi_apply_groups(const struct sg_prune_spec *s, struct sg_wview *v, const uint8_t *keep) {
    const struct sg_tile t = sg_prune_tile(s, v);
    const struct tiling tg = tiling_of(&t, v);
    for_each_run(v, &tg, RUN_APPLY, NULL, keep);
}

static enum sg_status prune_layer(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep);

uint8_t *sgi_mask_save(const struct sg_wview *v) {
    const size_t n = (size_t)sg_wview_count(v);
    uint8_t *old = sgi_alloc(n ? n : 1, 1);
    if (old && n) memcpy(old, v->mask, n);
    return old;
}

void sgi_mask_keep_zeros(struct sg_wview *v, const uint8_t *old) {
    const int64_t n = sg_wview_count(v);
    for (int64_t i = 0; i < n; i++)
        if (!old[i]) v->mask[i] = 0, v->w[i] = 0.0f;
}

/* A weight pruned before stays pruned: whatever the new selection keeps, the new
 * mask is the old one AND the new one (pruning again at a higher density, or at a
 * coarser granularity whose kept groups hold pruned weights, revives nothing). */
enum sg_status sg_prune_layer(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep) {
    uint8_t *old = sgi_mask_save(v);
    if (!old) return SG_ERR_NOMEM;
    enum sg_status st = prune_layer(s, v, keep);
    if (st == SG_OK) sgi_mask_keep_zeros(v, old);
    free(old);
    return st;
}

static enum sg_status prune_layer(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep) {
    if (s->gran == SG_GRAN_NM) return sgi_prune_nm(s, v);
    const int64_t n = sg_prune_groups(s, v);
    if (keep < 0) keep = 0;
    if (keep > n) keep = n;
    enum sg_status fst = sgi_prune_flat(s, v, keep);
    if (fst != SG_ERR_UNSUPPORTED) return fst;
    float *scores = sgi_alloc((size_t)n, sizeof *scores);
    uint8_t *kp = sgi_alloc((size_t)n, 1);
    if (!scores || !kp) {
        free(scores), free(kp);
        return SG_ERR_NOMEM;
    }
    enum sg_status st = sg_prune_scores(s, v, scores);
    if (st == SG_OK) {
        if (keep == 0) {
            memset(kp, 0, (size_t)n);
        } else {
            uint32_t t;
            uint64_t above;
            sgi_select_key(scores, NULL, (size_t)n, (uint64_t)keep, &t, &above);
            sgi_mark_kept(scores, (size_t)n, t, (uint64_t)keep - above, kp);
        }
        sgi_apply_groups(s, v, kp);
    }
    free(scores);
    free(kp);
    return st;
}

int64_t sgi_keep_count(double density, int64_t groups) {
    double k = floor(density * (double)groups + 0.5);
    return k < 0 ? 0 : k > (double)groups ? groups : (int64_t)k;
}

enum sg_status sg_prune_layer_density(const struct sg_prune_spec *s, struct sg_wview *v,
                                      double density) {
    if (!(density >= 0 && density <= 1))
        return sgi_error(SG_ERR_ARG, "density %g outside [0, 1]", density);
    return sg_prune_layer(s, v, sgi_keep_count(density, sg_prune_groups(s, v)));
}

double sg_group_density(const struct sg_wview *v, const struct sg_prune_spec *spec) {
    const int64_t total = sg_wview_count(v);
    if (total == 0) return 0;
    if (spec->gran == SG_GRAN_FINE || spec->gran == SG_GRAN_NM) {
        int64_t nz = 0;
        for (int64_t i = 0; i < total; i++) nz += v->w[i] != 0.0f;
        return (double)nz / (double)total;
    }
    const struct sg_tile t = sg_prune_tile(spec, v);
    const struct tiling tg = tiling_of(&t, v);
    const int64_t n = sg_prune_groups(spec, v);
    uint8_t *nz = sgi_zalloc((size_t)n, 1);
    if (!nz) return -1;
    for_each_run(v, &tg, RUN_NONZERO, nz, NULL);
    int64_t cnt = 0;
    for (int64_t g = 0; g < n; g++) cnt += nz[g];
    free(nz);
    return (double)cnt / (double)n;
}
