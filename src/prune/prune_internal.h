/* Internals of src/prune shared between its files. */
#ifndef SPARSEGRAIN_PRUNE_INTERNAL_H
#define SPARSEGRAIN_PRUNE_INTERNAL_H

#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/prune.h"

/* Order-preserving map of a float to an unsigned key (total order; -0 < +0). */
static inline uint32_t sgi_fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Single weights scored by magnitude (l1, max and mean agree when a group is one
 * weight): the key sgi_fkey(mk[i] ? |w[i]| : -1) straight from the weight and its
 * mask, without branches (|w| has a clear sign bit), a loop the compiler keeps tight. */
static inline uint32_t sgi_weight_key(const float *w, const uint8_t *mk, int64_t i) {
    uint32_t u;
    memcpy(&u, &w[i], 4);
    const uint32_t live = 0u - (uint32_t)(mk[i] != 0);
    return (live & ((u & 0x7fffffffu) | 0x80000000u)) | (~live & 0x407fffffu);
}

/* Radix selection on keys: finds the key t such that the weight of elements with
 * key > t is < target <= the weight of elements with key >= t. weight may be NULL
 * (every element weighs 1). Returns t and the weight strictly above it. */
void sgi_select_key(const float *x, const uint32_t *weight, size_t n, uint64_t target,
                    uint32_t *t, uint64_t *above);

/* Marks keep[i] = 1 for elements with key > t and for the first `ties` elements
 * (in index order) with key == t; 0 for the rest. Parallel, deterministic. */
void sgi_mark_kept(const float *x, size_t n, uint32_t t, uint64_t ties, uint8_t *keep);

/* Writes the mask of a layer from per-group decisions and zeroes pruned weights. */
void sgi_apply_groups(const struct sg_prune_spec *s, struct sg_wview *v, const uint8_t *keep);
/* A copy of v's mask (free()), and the rule that applies it after a new
 * selection: what was pruned before stays pruned (mask and weight zero). */
uint8_t *sgi_mask_save(const struct sg_wview *v);
void sgi_mask_keep_zeros(struct sg_wview *v, const uint8_t *old);

/* Score statistics of one contiguous run of weights: sum of |w| (or w^2), max |w|,
 * and whether any member is unmasked. Runs of 16 or more use 16 independent lanes
 * (a single accumulator would not vectorise); every caller uses this one function,
 * so a group scores the same bits whichever path prunes it. */
static inline void sgi_run_stats(const float *restrict w, const uint8_t *restrict mk, int64_t len,
                                 int l2, float *sum, float *mx, uint8_t *live) {
    float sm = 0, m = 0;
    uint8_t lv = 0;
    int64_t i = 0;
    if (len >= 16) {
        float ls[16] = {0}, lm[16] = {0};
        for (; i + 16 <= len; i += 16)
            for (int j = 0; j < 16; j++) {
                const float x = fabsf(w[i + j]);
                ls[j] += l2 ? x * x : x;
                lm[j] = x > lm[j] ? x : lm[j];
            }
        for (; i < len; i++) {
            const float x = fabsf(w[i]);
            sm += l2 ? x * x : x;
            m = x > m ? x : m;
        }
        for (int j = 0; j < 16; j++) {
            sm += ls[j];
            m = lm[j] > m ? lm[j] : m;
        }
    } else {
        for (; i < len; i++) {
            const float x = fabsf(w[i]);
            sm += l2 ? x * x : x;
            m = x > m ? x : m;
        }
    }
    for (i = 0; i < len; i++) lv |= mk[i];
    *sum = sm, *mx = m, *live = lv;
}

/* A fixed pseudo-random score per (layer, group): the ranking is the same at every
 * density, so random masks are nested like magnitude masks. */
static inline float sgi_random_score(uint64_t seed, uint64_t layer, uint64_t g) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull ^ layer * 0xc2b2ae3d27d4eb4full ^ g;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1.0p-24f;
}

/* The saliency of one group under a criterion, from its statistics: sum of |w| (of
 * w^2 for l2), largest |w|, member count (for mean), and the group's index with the
 * seed and layer hash (for random). The one definition of a criterion: group tiles,
 * flat groups and bands all call it, so a group scores the same bits on every path. */
static inline __attribute__((always_inline)) float
sgi_group_score(enum sg_criterion crit, float sum, float mx, float size, uint64_t seed,
                uint64_t lh, uint64_t g) {
    switch (crit) {
    case SG_CRIT_L2: return sqrtf(sum);
    case SG_CRIT_MAX: return mx;
    case SG_CRIT_MEAN: return sum / size;
    case SG_CRIT_RANDOM: return sgi_random_score(seed, lh, g);
    default: return sum;
    }
}

static inline uint64_t sgi_name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* One-layer pruning in two passes when every group is a contiguous run of weights
 * numbered in flat order (see flat.c). Returns SG_ERR_UNSUPPORTED when the tiling is
 * not of that kind or the boundary bucket is too crowded; the caller then takes the
 * general path. */
enum sg_status sgi_prune_flat(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep);

/* The same selection from a sampled threshold band in two streaming passes (see
 * band.c); SG_ERR_UNSUPPORTED, with nothing written, when the band misses. */
enum sg_status sgi_prune_band(const struct sg_prune_spec *s, struct sg_wview *v, int64_t len,
                              int64_t keep, int nt);
/* The band's half-width in standard deviations of the sampled rank (8; tests set
 * it to 0 to make the band miss). */
extern double sgi_band_sigmas;

/* N:M pruning of one layer (see nm.c). */
enum sg_status sgi_prune_nm(const struct sg_prune_spec *s, struct sg_wview *v);

/* The walks of follow.c, kept for thin.c: dead[i][c] (node i's channel c is exactly
 * 0) and unused[i][c] (nothing depends on it) at the fixed point. exact 0: the
 * pruning rules (an empty filter loses its bias and BN shift); exact 1: only rules
 * that change no output (an empty filter is dead only where its bias is 0, a batch
 * norm only where gamma and beta are 0). Masks change in m either way. */
struct sgi_follow {
    struct sg_model *m;
    int exact, changed;
    uint8_t **dead, **unused; /* [node][channel] */
    uint8_t *buf;
    struct sg_prune_follow st;
};
enum sg_status sgi_follow_run(struct sg_model *m, int exact, struct sgi_follow *w);
void sgi_follow_free(struct sgi_follow *w);

/* round(density * groups), clamped to [0, groups]. */
int64_t sgi_keep_count(double density, int64_t groups);

#endif
