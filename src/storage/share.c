/* Weight sharing for quantised fine-tuning (Han et al., Deep Compression, 2016):
 * after quantisation the kept weights of a layer take a few distinct values; each
 * value is a cluster. Fine-tuning updates weights freely for a step, then every
 * cluster is set to the mean of its members: the centroid moves by the members'
 * mean update and the layer stays within its codebook. */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/storage.h"

struct sg_share {
    int64_t n;          /* weights in the layer */
    int32_t k;          /* clusters */
    int32_t *assign;    /* per weight: cluster, -1 for pruned */
    double *sum;        /* scratch: per cluster */
    int64_t *count;
};

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

enum sg_status sg_share_new(const struct sg_wview *v, int max_clusters, struct sg_share **out) {
    *out = NULL;
    const int64_t n = sg_wview_count(v);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) kept += v->mask[i] != 0;
    float *vals = sgi_alloc((size_t)(kept ? kept : 1), sizeof *vals);
    struct sg_share *s = calloc(1, sizeof *s);
    if (!vals || !s) {
        free(vals), free(s);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    int64_t j = 0;
    for (int64_t i = 0; i < n; i++)
        if (v->mask[i]) vals[j++] = v->w[i];
    qsort(vals, (size_t)kept, sizeof *vals, cmp_float);
    int64_t k = 0;
    for (int64_t i = 0; i < kept; i++)
        if (k == 0 || vals[i] != vals[k - 1]) vals[k++] = vals[i];
    if (k > max_clusters) {
        free(vals), free(s);
        return sgi_error(SG_ERR_ARG, "%s: %lld distinct weights, more than the %d of its codebook "
                                     "(quantise it first)",
                         v->name, (long long)k, max_clusters);
    }
    s->n = n;
    s->k = (int32_t)k;
    s->assign = sgi_alloc((size_t)n, sizeof *s->assign);
    s->sum = sgi_zalloc((size_t)(k ? k : 1), sizeof *s->sum);
    s->count = sgi_zalloc((size_t)(k ? k : 1), sizeof *s->count);
    if (!s->assign || !s->sum || !s->count) {
        free(vals);
        sg_share_free(s);
        return SG_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!v->mask[i]) {
            s->assign[i] = -1;
            continue;
        }
        int64_t lo = 0, hi = k - 1; /* binary search: w[i] is one of vals */
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (vals[mid] < v->w[i]) lo = mid + 1;
            else hi = mid;
        }
        s->assign[i] = (int32_t)lo;
    }
    free(vals);
    *out = s;
    return SG_OK;
}

void sg_share_project(struct sg_share *s, struct sg_wview *v) {
    memset(s->sum, 0, (size_t)s->k * sizeof *s->sum);
    memset(s->count, 0, (size_t)s->k * sizeof *s->count);
    for (int64_t i = 0; i < s->n; i++)
        if (s->assign[i] >= 0) {
            s->sum[s->assign[i]] += v->w[i];
            s->count[s->assign[i]]++;
        }
    for (int64_t i = 0; i < s->n; i++) {
        const int32_t c = s->assign[i];
        v->w[i] = c >= 0 ? (float)(s->sum[c] / (double)s->count[c]) : 0.0f;
    }
}

int32_t sg_share_clusters(const struct sg_share *s) { return s->k; }

void sg_share_free(struct sg_share *s) {
    if (!s) return;
    free(s->assign);
    free(s->sum);
    free(s->count);
    free(s);
}

enum sg_status sg_quantize_model(struct sg_model *m, int conv_bits, int fc_bits, int kmeans) {
    if (conv_bits < 1 || conv_bits > 16 || fc_bits < 1 || fc_bits > 16)
        return sgi_error(SG_ERR_ARG, "quantisation to %d/%d bits (1 to 16 allowed)", conv_bits,
                         fc_bits);
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind != SG_PARAM_WEIGHT || pp->layer == SG_LAYER_NONE) continue;
        struct sg_storage_cfg cfg;
        sg_storage_cfg_default(&cfg);
        cfg.values = SG_VALUES_CODEBOOK;
        cfg.codebook_bits = pp->layer == SG_LAYER_FC ? fc_bits : conv_bits;
        cfg.kmeans_iters = kmeans ? 100 : 0;
        struct sg_wview v = sg_model_wview(m, p);
        enum sg_status st = sg_quantize_layer(&v, &cfg);
        if (st != SG_OK) return st;
    }
    return SG_OK;
}
