/* Quantisation with optional weight-shared fine-tuning, for quantize and study. */
#include "cli.h"

struct share_ctx {
    struct sg_share **share;
    int32_t *params;
    int32_t n;
};

static enum sg_status project(void *ctx, struct sg_model *m, double pos) {
    (void)pos;
    struct share_ctx *c = ctx;
    for (int32_t i = 0; i < c->n; i++) {
        struct sg_wview v = sg_model_wview(m, c->params[i]);
        sg_share_project(c->share[i], &v);
    }
    return SG_OK;
}

enum sg_status cli_quantize(struct sg_model *m, int conv_bits, int fc_bits, int kmeans,
                            const struct sg_dataset *train, const struct sg_train_cfg *tc_in) {
    enum sg_status st = sg_quantize_model(m, conv_bits, fc_bits, kmeans);
    if (st != SG_OK || !train || tc_in->epochs <= 0) return st;
    struct share_ctx c = {0};
    c.n = sg_model_weight_params(m, NULL);
    c.params = calloc((size_t)c.n + 1, sizeof *c.params);
    c.share = calloc((size_t)c.n + 1, sizeof *c.share);
    if (!c.params || !c.share) st = SG_ERR_NOMEM;
    if (st == SG_OK) sg_model_weight_params(m, c.params);
    for (int32_t i = 0; i < c.n && st == SG_OK; i++) {
        struct sg_wview v = sg_model_wview(m, c.params[i]);
        const int bits = m->params[c.params[i]].layer == SG_LAYER_FC ? fc_bits : conv_bits;
        st = sg_share_new(&v, (1 << bits) - 1, &c.share[i]);
    }
    if (st == SG_OK) {
        /* before every batch (and once at the end) the weights return to their codebook */
        struct sg_train_cfg tc = *tc_in;
        tc.on_batch = project;
        tc.on_batch_ctx = &c;
        st = sg_train(m, train, &tc, NULL);
        if (st == SG_OK) project(&c, m, 0);
    }
    for (int32_t i = 0; c.share && i < c.n; i++) sg_share_free(c.share[i]);
    free(c.share);
    free(c.params);
    return st;
}
