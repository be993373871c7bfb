/* One-layer pruning for tilings whose groups are contiguous runs of L weights in
 * the flat K*C*R*S order, numbered in that order: fine (L = 1), kernel rows
 * (L = S), kernels (L = R*S), filters (L = C*R*S), and blocks of those shapes.
 *
 * First try band.c (a sampled threshold band, a read-only pass, a write pass);
 * when its band misses, two passes over the weights, scores recomputed on the fly
 * (no score array):
 *   1. a histogram of the top 16 bits of every group's score key, per chunk;
 *   2. groups whose top bits are above the boundary bucket keep, those below are
 *      pruned, and groups in the bucket keep for now and are collected in position
 *      order; the bucket is then resolved exactly on its low 16 bits, ties in
 *      position order, and the groups that lose are pruned.
 * The kept set is exactly the one sg_prune_layer's general path computes: the
 * `keep` best scores, ties broken by position. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "prune_internal.h"

#define NB 65536                /* buckets of the top 16 bits of a key */
#define MAX_CANDIDATES (1 << 24) /* beyond this the general path is cheaper */
#define PAR_MIN 65536

struct flat {
    const struct sg_prune_spec *s;
    struct sg_wview *v;
    int64_t len; /* weights per group */
    uint64_t lh; /* name hash for the random criterion */
};

/* Length of the contiguous run every group is, or 0 when the tiling is not flat:
 * the tile must be 1 in a leading run of dimensions and full in the rest. */
static int64_t flat_len(const struct sg_tile *t, const struct sg_wview *v) {
    const int64_t tile[4] = {t->k, t->c, t->r, t->s}, full[4] = {v->k, v->c, v->r, v->s};
    int64_t len = 1;
    int in_full = 0;
    for (int d = 0; d < 4; d++) {
        if (tile[d] == full[d] && full[d] > 1) {
            in_full = 1;
            len *= full[d];
        } else if (tile[d] == 1 || full[d] == 1) {
            if (in_full && full[d] > 1) return 0;
        } else {
            return 0;
        }
    }
    return len;
}

static inline uint32_t group_key(const struct flat *f, int64_t g) {
    const int64_t L = f->len;
    float sum, mx;
    uint8_t live;
    sgi_run_stats(f->v->w + g * L, f->v->mask + g * L, L, f->s->crit == SG_CRIT_L2, &sum, &mx,
                  &live);
    const float sc =
        sgi_group_score(f->s->crit, sum, mx, (float)L, f->s->seed, f->lh, (uint64_t)g);
    return sgi_fkey(live ? sc : -1.0f);
}

/* Pass 2 for single weights, in blocks: a branch-free loop that keeps, prunes or
 * (boundary bucket) provisionally keeps every weight, then a scan of the block's
 * top halves for the few in the boundary bucket. */
static size_t weights_pass2(float *restrict w, uint8_t *restrict mk, int64_t lo, int64_t hi,
                            uint32_t bucket, int64_t *cand, uint16_t *low, size_t at) {
    enum { BLK = 1024 };
    uint32_t key[BLK];
    for (int64_t b0 = lo; b0 < hi; b0 += BLK) {
        const int64_t len = hi - b0 < BLK ? hi - b0 : BLK;
        float *wb = w + b0;
        uint8_t *mb = mk + b0;
        for (int64_t i = 0; i < len; i++) {
            const uint32_t k = sgi_weight_key(wb, mb, i);
            const uint32_t kp = (k >> 16) >= bucket;
            uint32_t u;
            memcpy(&u, &wb[i], 4);
            u &= 0u - kp;
            memcpy(&wb[i], &u, 4);
            mb[i] = (uint8_t)kp;
            key[i] = k;
        }
        for (int64_t i = 0; i < len; i++)
            if (__builtin_expect((key[i] >> 16) == bucket, 0)) {
                cand[at] = b0 + i;
                low[at++] = (uint16_t)(key[i] & 0xffff);
            }
    }
    return at;
}

static inline void set_group(const struct flat *f, int64_t g, uint8_t kp) {
    const int64_t L = f->len;
    float *w = f->v->w + g * L;
    uint8_t *mk = f->v->mask + g * L;
    for (int64_t j = 0; j < L; j++) {
        mk[j] = kp;
        w[j] = kp ? w[j] : 0.0f;
    }
}

static int thread_count(int64_t weights) {
#ifdef _OPENMP
    if (weights >= PAR_MIN) {
        const int nt = omp_get_max_threads();
        return nt > 64 ? 64 : nt;
    }
#endif
    (void)weights;
    return 1;
}

enum sg_status sgi_prune_flat(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep) {
    if (s->gran == SG_GRAN_NM) return SG_ERR_UNSUPPORTED;
    const struct sg_tile t = sg_prune_tile(s, v);
    const int64_t L = flat_len(&t, v), total = sg_wview_count(v);
    /* long groups (filters) are few: scoring them once into a small array beats
     * scoring them twice here */
    if (L == 0 || L > 32 || total == 0) return SG_ERR_UNSUPPORTED;
    const int64_t n = total / L;
    if (n >= (int64_t)UINT32_MAX) return SG_ERR_UNSUPPORTED; /* per-thread counts are 32-bit */
    struct flat f = {s, v, L, sgi_name_hash(v->name)};
    if (keep <= 0 || keep >= n) { /* everything goes, or everything stays */
        const uint8_t kp = keep > 0;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
        for (int64_t g = 0; g < n; g++) set_group(&f, g, kp);
        return SG_OK;
    }
    const int nt = thread_count(total);
    const enum sg_status bst = sgi_prune_band(s, v, L, keep, nt);
    if (bst != SG_ERR_UNSUPPORTED) return bst;
    const int single = L == 1 && (s->crit == SG_CRIT_L1 || s->crit == SG_CRIT_MAX ||
                                  s->crit == SG_CRIT_MEAN);
    uint32_t *hist = sgi_zalloc((size_t)nt * NB, sizeof *hist);
    uint32_t *hist2 = single ? sgi_zalloc((size_t)nt * NB, sizeof *hist2) : NULL;
    uint64_t *sum = sgi_zalloc(NB, sizeof *sum);
    if (!hist || !sum || (single && !hist2)) {
        free(hist), free(hist2), free(sum);
        return SG_ERR_NOMEM;
    }
    /* pass 1: a histogram per chunk (pass 2 uses the same chunks). A thread takes
     * chunks id, id + team, ...: every chunk is done even when the runtime gives
     * fewer threads than asked (nested in another parallel region, say). */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id, team;
        sgi_omp_team(&id, &team);
        for (int c = id; c < nt; c += team) {
            uint32_t *h = hist + (size_t)c * NB;
            const int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
            if (single) {
                /* two histograms, alternate weights: neighbours often share a bucket
                 * and one counter would serialise on its own increments */
                uint32_t *h2 = hist2 + (size_t)c * NB;
                int64_t i = lo;
                for (; i + 2 <= hi; i += 2) {
                    h[sgi_weight_key(v->w, v->mask, i) >> 16]++;
                    h2[sgi_weight_key(v->w, v->mask, i + 1) >> 16]++;
                }
                for (; i < hi; i++) h[sgi_weight_key(v->w, v->mask, i) >> 16]++;
                for (int j = 0; j < NB; j++) h[j] += h2[j];
            } else {
                for (int64_t g = lo; g < hi; g++) h[group_key(&f, g) >> 16]++;
            }
        }
    }
    free(hist2);
    for (int i = 0; i < nt; i++)
        for (int b = 0; b < NB; b++) sum[b] += hist[(size_t)i * NB + b];
    int b = NB - 1;
    uint64_t above = 0;
    for (; b > 0; b--) {
        if (above + sum[b] >= (uint64_t)keep) break;
        above += sum[b];
    }
    const uint64_t in_bucket = sum[b], need = (uint64_t)keep - above;
    free(sum);
    if (in_bucket > MAX_CANDIDATES) {
        free(hist);
        return SG_ERR_UNSUPPORTED;
    }
    int64_t *cand = sgi_alloc(in_bucket ? in_bucket : 1, sizeof *cand);
    uint16_t *low = sgi_alloc(in_bucket ? in_bucket : 1, sizeof *low);
    if (!cand || !low) {
        free(hist), free(cand), free(low);
        return SG_ERR_NOMEM;
    }
    /* pass 2: decide every group outside the boundary bucket, collect the rest */
    const uint32_t bucket = (uint32_t)b;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id, team;
        sgi_omp_team(&id, &team);
        for (int c = id; c < nt; c += team) {
            size_t at = 0; /* candidates of the chunks before this one */
            for (int i = 0; i < c; i++) at += hist[(size_t)i * NB + bucket];
            const int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
            if (single) {
                weights_pass2(v->w, v->mask, lo, hi, bucket, cand, low, at);
                continue;
            }
            for (int64_t g = lo; g < hi; g++) {
                const uint32_t k = group_key(&f, g), top = k >> 16;
                if (top == bucket) {
                    cand[at] = g;
                    low[at++] = (uint16_t)(k & 0xffff);
                }
                set_group(&f, g, top >= bucket);
            }
        }
    }
    free(hist);
    /* resolve the bucket: the `need` best low halves, ties in position order */
    if (need < in_bucket) {
        uint64_t *h2 = sgi_zalloc(NB, sizeof *h2);
        if (!h2) {
            free(cand), free(low);
            return SG_ERR_NOMEM;
        }
        for (uint64_t i = 0; i < in_bucket; i++) h2[low[i]]++;
        int t2 = NB - 1;
        uint64_t acc = 0;
        for (; t2 > 0; t2--) {
            if (acc + h2[t2] >= need) break;
            acc += h2[t2];
        }
        uint64_t ties = need - acc;
        free(h2);
        for (uint64_t i = 0; i < in_bucket; i++) {
            int kp = low[i] > t2;
            if (low[i] == t2 && ties > 0) kp = 1, ties--;
            if (!kp) set_group(&f, cand[i], 0);
        }
    }
    free(cand), free(low);
    return SG_OK;
}
