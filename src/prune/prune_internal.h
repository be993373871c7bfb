/* Internals of src/prune shared between its files. */
#ifndef SPARSEGRAIN_PRUNE_INTERNAL_H
#define SPARSEGRAIN_PRUNE_INTERNAL_H

#include "core/sgi.h"
#include "sparsegrain/prune.h"

/* Order-preserving map of a float to an unsigned key (total order; -0 < +0). */
static inline uint32_t sgi_fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
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

/* round(density * groups), clamped to [0, groups]. */
int64_t sgi_keep_count(double density, int64_t groups);

#endif
