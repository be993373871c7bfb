/* Groups of a layer: tiles of W[K][C][R][S] (or N of M along C), their scores,
 * and applying per-group decisions to the mask. */
#include <math.h>

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

/* A fixed pseudo-random score per (layer, group): the ranking is the same at every
 * density, so random masks are nested like magnitude masks. */
static float random_score(uint64_t seed, uint64_t layer, uint64_t g) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull ^ layer * 0xc2b2ae3d27d4eb4full ^ g;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1.0p-24f;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
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

enum sg_status sg_prune_scores(const struct sg_prune_spec *s, const struct sg_wview *v,
                               float *scores) {
    const int64_t K = v->k, C = v->c, R = v->r, S = v->s;
    const float *w = v->w;
    const uint8_t *mk = v->mask;
    const uint64_t lh = name_hash(v->name);
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
            float sc = s->crit == SG_CRIT_RANDOM ? random_score(s->seed, lh, (uint64_t)i)
                                                 : fabsf(w[i]);
            scores[i] = mk[i] ? sc : -1.0f;
        }
        return SG_OK;
    }
    const struct tiling tg = tiling_of(&t, v);
    float *sum = sgi_zalloc((size_t)n, sizeof *sum), *mx = sgi_zalloc((size_t)n, sizeof *mx);
    uint32_t *live = sgi_zalloc((size_t)n, sizeof *live);
    if (!sum || !mx || !live) {
        free(sum), free(mx), free(live);
        return SG_ERR_NOMEM;
    }
    const int l2 = s->crit == SG_CRIT_L2;
    const int64_t nkb = ceil_div(K, t.k);
    /* parallel over blocks of filters: different kb never share a group */
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t kb = 0; kb < nkb; kb++)
        for (int64_t k = kb * t.k; k < K && k < (kb + 1) * t.k; k++)
            for (int64_t c = 0; c < C; c++) {
                const int64_t gkc = (kb * tg.nc + c / tg.gc) * tg.nr;
                const float *wr = w + (k * C + c) * R * S;
                const uint8_t *mr = mk + (k * C + c) * R * S;
                for (int64_t r = 0; r < R; r++) {
                    const int64_t grow = (gkc + r / tg.gr) * tg.ns;
                    for (int64_t q = 0; q < S; q++) {
                        const int64_t g = grow + q / tg.gs;
                        const float a = fabsf(wr[r * S + q]);
                        sum[g] += l2 ? a * a : a;
                        mx[g] = a > mx[g] ? a : mx[g];
                        live[g] |= mr[r * S + q];
                    }
                }
            }
    for (int64_t g = 0; g < n; g++) {
        float sc;
        switch (s->crit) {
        case SG_CRIT_L2: sc = sqrtf(sum[g]); break;
        case SG_CRIT_MAX: sc = mx[g]; break;
        case SG_CRIT_RANDOM: sc = random_score(s->seed, lh, (uint64_t)g); break;
        case SG_CRIT_MEAN: {
            /* tiles at the edges are clipped: divide by the real member count */
            const int64_t kb = g / (tg.nc * tg.nr * tg.ns), cb = g / (tg.nr * tg.ns) % tg.nc;
            const int64_t rb = g / tg.ns % tg.nr, sb = g % tg.ns;
            const int64_t size = (K - kb * t.k < t.k ? K - kb * t.k : t.k) *
                                 (C - cb * t.c < t.c ? C - cb * t.c : t.c) *
                                 (R - rb * t.r < t.r ? R - rb * t.r : t.r) *
                                 (S - sb * t.s < t.s ? S - sb * t.s : t.s);
            sc = sum[g] / (float)size;
            break;
        }
        default: sc = sum[g]; break;
        }
        scores[g] = live[g] ? sc : -1.0f;
    }
    free(sum), free(mx), free(live);
    return SG_OK;
}

void sgi_apply_groups(const struct sg_prune_spec *s, struct sg_wview *v, const uint8_t *keep) {
    const int64_t K = v->k, C = v->c, R = v->r, S = v->s;
    const struct sg_tile t = sg_prune_tile(s, v);
    const struct tiling tg = tiling_of(&t, v);
    const int64_t total = K * C * R * S;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++) {
            const int64_t gkc = ((k / tg.gk) * tg.nc + c / tg.gc) * tg.nr;
            float *wr = v->w + (k * C + c) * R * S;
            uint8_t *mr = v->mask + (k * C + c) * R * S;
            for (int64_t r = 0; r < R; r++) {
                const int64_t grow = (gkc + r / tg.gr) * tg.ns;
                for (int64_t q = 0; q < S; q++) {
                    const uint8_t kp = keep[grow + q / tg.gs];
                    mr[r * S + q] = kp;
                    if (!kp) wr[r * S + q] = 0.0f;
                }
            }
        }
}

/* N:M: in every run of M weights along C (fixed k, r, s), keep the N best live
 * ones (ties: lower c first). A short last run of L < M keeps min(N, L). */
static enum sg_status prune_nm(const struct sg_prune_spec *s, struct sg_wview *v) {
    const int64_t K = v->k, C = v->c, RS = v->r * v->s, M = s->nm_m;
    const uint64_t lh = name_hash(v->name);
#pragma omp parallel for schedule(static) if (K * C * RS > 65536)
    for (int64_t k = 0; k < K; k++)
        for (int64_t c0 = 0; c0 < C; c0 += M)
            for (int64_t rs = 0; rs < RS; rs++) {
                const int64_t len = C - c0 < M ? C - c0 : M;
                float sc[256];
                int64_t idx[256];
                for (int64_t j = 0; j < len; j++) {
                    idx[j] = (k * C + c0 + j) * RS + rs;
                    const float a = s->crit == SG_CRIT_RANDOM
                                        ? random_score(s->seed, lh, (uint64_t)idx[j])
                                        : fabsf(v->w[idx[j]]);
                    sc[j] = v->mask[idx[j]] ? a : -1.0f;
                }
                const int64_t keep = s->nm_n < len ? s->nm_n : len;
                for (int64_t j = 0; j < len; j++) { /* rank = members that beat j */
                    int64_t rank = 0;
                    for (int64_t o = 0; o < len; o++)
                        rank += sc[o] > sc[j] || (sc[o] == sc[j] && o < j);
                    const uint8_t kp = rank < keep;
                    v->mask[idx[j]] = kp;
                    if (!kp) v->w[idx[j]] = 0.0f;
                }
            }
    return SG_OK;
}

enum sg_status sg_prune_layer(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep) {
    if (s->gran == SG_GRAN_NM) return prune_nm(s, v);
    const int64_t n = sg_prune_groups(s, v);
    if (keep < 0) keep = 0;
    if (keep > n) keep = n;
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
    const int64_t C = v->c, R = v->r, S = v->s;
    for (int64_t k = 0; k < v->k; k++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t q = 0; q < S; q++)
                    if (v->w[((k * C + c) * R + r) * S + q] != 0.0f)
                        nz[(((k / tg.gk) * tg.nc + c / tg.gc) * tg.nr + r / tg.gr) * tg.ns +
                           q / tg.gs] = 1;
    int64_t cnt = 0;
    for (int64_t g = 0; g < n; g++) cnt += nz[g];
    free(nz);
    return (double)cnt / (double)n;
}
