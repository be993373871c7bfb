/* Synthetic layers for the network-shape study: normal weights pruned at a
 * granularity by L1 norm, and activations with non-zeros at random positions.
 * The pruning here is a small local helper (top groups by L1 norm to an exact
 * count); the pruning subsystem (src/prune) offers the full method. */
#include <math.h>

#include "sim/simi.h"

static const char *const GRAN_NAMES[SG_SCNN_GRAN_COUNT] = {"fine", "vector", "kernel", "filter"};

const char *sg_scnn_gran_name(enum sg_scnn_gran g) {
    return (unsigned)g < SG_SCNN_GRAN_COUNT ? GRAN_NAMES[g] : "?";
}
int sg_scnn_gran_from_name(const char *s) {
    for (int i = 0; i < SG_SCNN_GRAN_COUNT; i++)
        if (s && strcmp(s, GRAN_NAMES[i]) == 0) return i;
    return -1;
}

/* The k-th largest (k >= 1) of v[0..n), reordering v: quickselect, expected O(n)
 * (a full sort of the 2.4M weights of a VGG layer took most of a benchmark run). */
static double kth_largest(double *v, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the answer is in v[lo, hi) of the descending order */
    const size_t want = k - 1;
    while (hi - lo > 1) {
        double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
        double piv = (a > b) == (b > c) ? b : (a > b) == (a > c) ? c : a; /* median of 3 */
        /* three-way partition: [lo, lt) > piv, [lt, gt) == piv, [gt, hi) < piv */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            double t = v[i];
            if (t > piv) {
                v[i++] = v[lt];
                v[lt++] = t;
            } else if (t < piv) {
                v[i] = v[--gt];
                v[gt] = t;
            } else {
                i++;
            }
        }
        if (want < lt) hi = lt;
        else if (want >= gt) lo = gt;
        else return piv;
    }
    return v[lo];
}

enum sg_status sg_scnn_prune_groups(float *w, int64_t k, int64_t c, int64_t r, int64_t s,
                                    enum sg_scnn_gran gran, double density, int64_t *kept) {
    if (k < 1 || c < 1 || r < 1 || s < 1 || (unsigned)gran >= SG_SCNN_GRAN_COUNT ||
        !(density >= 0.0 && density <= 1.0))
        return sgi_error(SG_ERR_ARG, "prune: shape %lldx%lldx%lldx%lld, granularity %d, density %g",
                         (long long)k, (long long)c, (long long)r, (long long)s, (int)gran, density);
    /* groups are contiguous runs of W[K][C][R][S] for all four granularities */
    const int64_t gsize = gran == SG_SCNN_GRAN_FINE     ? 1
                          : gran == SG_SCNN_GRAN_VECTOR ? s
                          : gran == SG_SCNN_GRAN_KERNEL ? r * s
                                                        : c * r * s;
    const int64_t n = k * c * r * s, ng = n / gsize;
    double *score = sgi_alloc((size_t)ng, sizeof *score), *tmp = sgi_alloc((size_t)ng, sizeof *tmp);
    if (!score || !tmp) {
        free(score), free(tmp);
        return SG_ERR_NOMEM;
    }
    for (int64_t g = 0; g < ng; g++) {
        double l1 = 0;
        for (int64_t i = 0; i < gsize; i++) l1 += fabs((double)w[g * gsize + i]);
        tmp[g] = score[g] = l1;
    }
    int64_t keep = (int64_t)llround(density * (double)ng);
    if (keep > ng) keep = ng;
    /* keep every group above the threshold, then ties in position order */
    const double thr = keep > 0 ? kth_largest(tmp, (size_t)ng, (size_t)keep) : INFINITY;
    int64_t above = 0;
    for (int64_t g = 0; g < ng; g++) above += score[g] > thr;
    int64_t ties = keep - above;
    for (int64_t g = 0; g < ng; g++) {
        int keep_it = score[g] > thr || (score[g] == thr && ties-- > 0);
        if (!keep_it) memset(w + g * gsize, 0, sizeof *w * (size_t)gsize);
    }
    free(score), free(tmp);
    if (kept) {
        int64_t nk = 0;
        for (int64_t i = 0; i < n; i++) nk += w[i] != 0.0f;
        *kept = nk;
    }
    return SG_OK;
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
