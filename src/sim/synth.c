/* Synthetic layers for the network-shape study: normal weights pruned at a
 * granularity by L1 norm (through src/prune), and activations with non-zeros at
 * random positions. */
#include <math.h>

#include "sim/simi.h"
#include "sparsegrain/prune.h"

static const char *const GRAN_NAMES[SG_SCNN_GRAN_COUNT] = {"fine", "vector", "kernel", "filter"};

const char *sg_scnn_gran_name(enum sg_scnn_gran g) {
    return (unsigned)g < SG_SCNN_GRAN_COUNT ? GRAN_NAMES[g] : "?";
}
int sg_scnn_gran_from_name(const char *s) {
    for (int i = 0; i < SG_SCNN_GRAN_COUNT; i++)
        if (s && strcmp(s, GRAN_NAMES[i]) == 0) return i;
    return -1;
}

enum sg_status sg_scnn_prune_groups(float *w, int64_t k, int64_t c, int64_t r, int64_t s,
                                    enum sg_scnn_gran gran, double density, int64_t *kept) {
    if (k < 1 || c < 1 || r < 1 || s < 1 || (unsigned)gran >= SG_SCNN_GRAN_COUNT ||
        !(density >= 0.0 && density <= 1.0))
        return sgi_error(SG_ERR_ARG, "prune: shape %lldx%lldx%lldx%lld, granularity %d, density %g",
                         (long long)k, (long long)c, (long long)r, (long long)s, (int)gran, density);
    /* the pruning library's selection (L1 saliency, exact counts, ties by position) */
    static const enum sg_granularity MAP[SG_SCNN_GRAN_COUNT] = {SG_GRAN_FINE, SG_GRAN_VECTOR,
                                                               SG_GRAN_KERNEL, SG_GRAN_FILTER};
    const int64_t n = k * c * r * s;
    uint8_t *mask = sgi_alloc((size_t)n, 1);
    if (!mask) return SG_ERR_NOMEM;
    memset(mask, 1, (size_t)n);
    struct sg_wview v = {"synthetic", k, c, r, s, w, mask, 0};
    struct sg_prune_spec spec;
    sg_prune_spec_default(&spec);
    spec.gran = MAP[gran];
    enum sg_status st = sg_prune_layer_density(&spec, &v, density);
    if (st == SG_OK && kept) {
        int64_t nk = 0;
        for (int64_t i = 0; i < n; i++) nk += w[i] != 0.0f;
        *kept = nk;
    }
    free(mask);
    return st;
}

/* Normal weights, never exactly zero, so the kept count is the pruning's alone. */
void sgi_scnn_synth_weights(float *w, size_t n, sg_rng *rng) {
    for (size_t i = 0; i < n; i++) {
        float v = sg_rng_normal(rng);
        w[i] = v != 0.0f ? v : 1e-3f;
    }
}

/* round(density * n) non-zeros at uniformly random positions; values |N(0,1)|
 * as after a ReLU, or signed N(0,1) for a dense network input (signed != 0). */
enum sg_status sgi_scnn_synth_acts(float *x, size_t n, double density, int signed_vals,
                                   sg_rng *rng) {
    if (n > UINT32_MAX) return sgi_error(SG_ERR_LIMIT, "activation tensor of %zu elements", n);
    size_t nz = (size_t)llround(density * (double)n);
    if (nz > n) nz = n;
    memset(x, 0, n * sizeof *x);
    uint32_t *idx = sgi_alloc(n, sizeof *idx);
    if (!idx) return SG_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    /* partial Fisher-Yates: the first nz slots are a uniform random subset */
    for (size_t i = 0; i < nz; i++) {
        size_t j = i + (size_t)sg_rng_below(rng, (uint64_t)(n - i));
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    for (size_t i = 0; i < nz; i++) {
        float v = sg_rng_normal(rng);
        if (!signed_vals) v = fabsf(v);
        x[idx[i]] = v != 0.0f ? v : 1e-3f;
    }
    free(idx);
    return SG_OK;
}
