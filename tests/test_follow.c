/* A pruned filter is gone (src/prune/follow.c), brute force on the built-in
 * LeNet-5, VGG-7 (batch norm) and ResNet-8 (residual adds): after filter or channel
 * pruning every empty filter has its bias and batch-norm entries masked and its
 * activation is exactly 0 in training and evaluation; the weights masked on top of
 * the selection only multiply 0 or feed nobody (the network with them restored
 * computes the same outputs); each layer's own selection is the one plain layer
 * pruning makes; retraining revives nothing. */
#include "harness.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

#define HW 16
#define NB 12

/* Biases, batch-norm parameters and running statistics away from their initial
 * 0/1, so that a forgotten bias or shift shows. */
static struct sg_model *build(const char *name, uint64_t seed) {
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build(name, 1, HW, HW, 10, seed, &m));
    sg_rng r;
    sg_rng_seed(&r, seed * 7 + 1);
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        float *d = sg_param_data(m, p);
        for (size_t i = 0; i < pp->count; i++) {
            const float u = (float)sg_rng_uniform(&r);
            if (pp->kind == SG_PARAM_BIAS || pp->kind == SG_PARAM_BN_BETA ||
                pp->kind == SG_PARAM_BN_MEAN)
                d[i] = 0.5f * (u - 0.5f);
            else if (pp->kind == SG_PARAM_BN_GAMMA || pp->kind == SG_PARAM_BN_VAR)
                d[i] = 0.5f + u;
        }
    }
    return m;
}

static struct sg_model *clone(const struct sg_model *m) {
    struct sg_model *c = NULL;
    CHECK_OK(sg_model_clone(m, &c));
    return c;
}

static float *input(uint64_t seed) {
    float *x = malloc(sizeof *x * NB * HW * HW);
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (int i = 0; i < NB * HW * HW; i++) x[i] = sg_rng_normal(&r);
    return x;
}

/* Runs a forward pass; returns the executor (caller frees) for node outputs. */
static struct sg_exec *run(struct sg_model *m, const float *x, int train) {
    struct sg_exec *e = NULL;
    CHECK_OK(sg_exec_new(m, NB, train, &e));
    sg_rng r;
    sg_rng_seed(&r, 9);
    CHECK_OK(sg_forward(m, e, x, NB, train, train ? &r : NULL));
    return e;
}

static void logits(struct sg_model *m, const float *x, int train, float *out) {
    struct sg_exec *e = run(m, x, train);
    sg_exec_logits(e, out);
    sg_exec_free(e);
}

static int filter_empty(struct sg_model *m, int32_t p, int64_t k) {
    const struct sg_param *pp = &m->params[p];
    const size_t per = pp->count / (size_t)pp->dims[0];
    const uint8_t *mk = sg_param_mask(m, p) + (size_t)k * per;
    for (size_t i = 0; i < per; i++)
        if (mk[i]) return 0;
    return 1;
}

/* Every empty filter of every conv/fc: bias masked and zero, the BN that reads it
 * masked, its conv output and BN output exactly 0 in train and eval mode.
 * Returns the number of empty filters. */
static int64_t check_dead_channels(struct sg_model *m, const float *x) {
    int64_t empty = 0;
    for (int train = 0; train <= 1; train++) {
        struct sg_exec *e = run(m, x, train);
        for (int32_t i = 1; i < m->n_nodes; i++) {
            const struct sg_node *nd = &m->nodes[i];
            if (nd->op != SG_OP_CONV && nd->op != SG_OP_FC) continue;
            for (int64_t k = 0; k < nd->k; k++) {
                if (!filter_empty(m, nd->param[0], k)) continue;
                empty += !train;
                if (nd->param[1] >= 0) {
                    CHECK(!sg_param_mask(m, nd->param[1])[k]);
                    CHECK(sg_param_data(m, nd->param[1])[k] == 0.0f);
                }
                int n;
                const float *y = sg_exec_output(e, i, &n);
                const size_t plane = (size_t)n * nd->h * nd->w;
                for (size_t j = 0; j < plane; j++)
                    CHECK_MSG(y[k * plane + j] == 0.0f, "%s channel %lld is %g (train %d)",
                              nd->name, (long long)k, y[k * plane + j], train);
                /* a batch norm reading it */
                for (int32_t b = i + 1; b < m->n_nodes; b++) {
                    const struct sg_node *bn = &m->nodes[b];
                    if (bn->op != SG_OP_BN || bn->in[0] != i) continue;
                    CHECK(!sg_param_mask(m, bn->param[0])[k] && !sg_param_mask(m, bn->param[1])[k]);
                    const float *z = sg_exec_output(e, b, &n);
                    for (size_t j = 0; j < plane; j++)
                        CHECK_MSG(z[k * plane + j] == 0.0f, "%s channel %lld is %g (train %d)",
                                  bn->name, (long long)k, z[k * plane + j], train);
                }
            }
        }
        sg_exec_free(e);
    }
    for (size_t i = 0; i < m->arena_len; i++)
        if (!m->mask[i]) CHECK(m->arena[i] == 0.0f);
    return empty;
}

/* The selection alone: each layer in scope pruned by sg_prune_layer_density. */
static struct sg_model *selection_only(const struct sg_model *m0, const struct sg_prune_cfg *pc,
                                       double d) {
    struct sg_model *s = clone(m0);
    struct sg_prune_spec buf;
    for (int32_t p = 0; p < s->n_params; p++) {
        const struct sg_prune_spec *sp = sg_prune_scope(s, pc, p, &buf);
        if (!sp) continue;
        struct sg_wview v = sg_model_wview(s, p);
        CHECK_OK(sg_prune_layer_density(sp, &v, d));
    }
    return s;
}

struct outcome {
    int64_t empty, implied;
};

/* Prunes a fresh `name` at granularity gran to density d and checks everything
 * above; returns counts for the caller's own checks, and the models. */
static struct outcome check(const char *name, enum sg_granularity gran, enum sg_fc_mode fc,
                            double d, struct sg_model **pruned, struct sg_model **sel) {
    struct sg_model *m0 = build(name, 11);
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = gran;
    pc.fc = fc;
    struct sg_model *s = selection_only(m0, &pc, d);
    struct sg_model *m = clone(m0);
    struct sg_prune_result r;
    CHECK_OK(sg_prune_model(m, &pc, d, &r));
    float *x = input(3);
    struct outcome o = {0, 0};
    o.empty = check_dead_channels(m, x);

    /* every weight kept is kept by the selection; the rest of the selection's kept
     * weights are the implied zeros; the density counts them as pruned */
    size_t kept = 0, weights = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        for (size_t i = 0; i < pp->count; i++) {
            const uint8_t a = sg_param_mask(m, p)[i], b = sg_param_mask(s, p)[i];
            CHECK(!a || b);
            if (pp->kind == SG_PARAM_WEIGHT && b && !a) o.implied++;
        }
        struct sg_prune_spec buf;
        if (!sg_prune_scope(m, &pc, p, &buf)) continue;
        weights += pp->count;
        for (size_t i = 0; i < pp->count; i++) kept += sg_param_mask(m, p)[i];
    }
    CHECK_EQ_INT(r.kept, kept);
    CHECK_EQ_INT(r.weights, weights);

    /* the implied zeros multiply 0 or feed nobody: restored to their values before
     * pruning, the outputs are the same */
    struct sg_model *back = clone(m);
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind != SG_PARAM_WEIGHT) continue;
        for (size_t i = 0; i < pp->count; i++)
            if (sg_param_mask(s, p)[i] && !sg_param_mask(m, p)[i]) {
                sg_param_mask(back, p)[i] = 1;
                sg_param_data(back, p)[i] = sg_param_data(m0, p)[i];
            }
    }
    for (int train = 0; train <= 1; train++) {
        float a[NB * 10], b[NB * 10];
        logits(m, x, train, a);
        logits(back, x, train, b);
        const double err = sgt_max_rel_err(a, b, NB * 10);
        CHECK_MSG(err < 1e-5, "%s %s: restoring the implied zeros changes the logits by %g "
                              "(train %d)", name, sg_granularity_name(gran), err, train);
    }
    free(x);
    sg_model_free(back);
    sg_model_free(m0);
    *pruned = m;
    *sel = s;
    return o;
}

/* A few SGD steps on synthetic images: masks unchanged, pruned entries (biases
 * and BN shifts included) still exactly 0, dead channels still 0. */
static void retrain_keeps_zeros(struct sg_model *m) {
    static uint8_t px[48 * HW * HW], lab[48];
    for (int i = 0; i < 48 * HW * HW; i++) px[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < 48; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "synthetic", .n = 48, .c = 1, .h = HW, .w = HW, .classes = 10,
                           .mean = 120, .std = 70};
    d.pixels = px;
    d.labels = lab;
    uint8_t *mask0 = malloc(m->arena_len);
    memcpy(mask0, m->mask, m->arena_len);
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = 16;
    tc.lr = 0.05f;
    tc.weight_decay = 1e-3f;
    struct sg_train_state *st;
    CHECK_OK(sg_train_state_new(m, &st));
    CHECK_OK(sg_train(m, &d, &tc, st));
    CHECK(memcmp(m->mask, mask0, m->arena_len) == 0);
    for (size_t i = 0; i < m->arena_len; i++)
        if (!m->mask[i]) CHECK(m->arena[i] == 0.0f && st->velocity[i] == 0.0f);
    float *x = input(5);
    check_dead_channels(m, x);
    free(x);
    /* pruning again at a higher density revives nothing */
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    CHECK_OK(sg_prune_model(m, &pc, 0.9, NULL));
    for (size_t i = 0; i < m->arena_len; i++) CHECK(m->mask[i] <= mask0[i]);
    free(mask0);
    sg_train_state_free(st);
}

SG_TEST(follow_filter_lenet5) {
    struct sg_model *m, *s;
    /* conv2 loses half its filters; fc1 loses the 1x1 features they fed */
    struct outcome o = check("lenet5", SG_GRAN_FILTER, SG_FC_DENSE, 0.5, &m, &s);
    CHECK_EQ_INT(o.empty, 25);
    const int32_t fc1 = sg_model_find_param(m, "fc1.weight");
    size_t fc_zero = 0;
    for (size_t i = 0; i < m->params[fc1].count; i++) fc_zero += !sg_param_mask(m, fc1)[i];
    CHECK_EQ_INT(fc_zero, 25 * 500); /* 16x16 input: conv2's output is 1x1 after pool2 */
    CHECK_EQ_INT(o.implied, 25 * 500);
    retrain_keeps_zeros(m);
    sg_model_free(m);
    sg_model_free(s);
}

SG_TEST(follow_filter_vgg7) {
    struct sg_model *m, *s;
    struct outcome o = check("vgg7", SG_GRAN_FILTER, SG_FC_DENSE, 0.4, &m, &s);
    /* conv2..conv5 keep round(0.4 K) filters; conv3..conv5 and fc1 lose the inputs
     * of the filters before them */
    CHECK_EQ_INT(o.empty, (32 - 13) + (64 - 26) * 2 + (128 - 51));
    const int32_t c3 = sg_model_find_param(m, "conv3.weight");
    for (int64_t k = 0; k < 64; k++) {
        if (filter_empty(s, c3, k)) continue;
        /* a kept filter of conv3 reads exactly the kept channels of conv2 */
        for (int64_t c = 0; c < 32; c++) {
            const int live = !filter_empty(m, sg_model_find_param(m, "conv2.weight"), c);
            for (int j = 0; j < 9; j++)
                CHECK(sg_param_mask(m, c3)[(k * 32 + c) * 9 + j] == live);
        }
    }
    CHECK_EQ_INT(o.implied, 26 * 19 * 9 + 26 * 38 * 9 + 51 * 38 * 9 + 256 * 77 * 4);
    retrain_keeps_zeros(m);
    sg_model_free(m);
    sg_model_free(s);
}

SG_TEST(follow_filter_resnet8) {
    struct sg_model *m, *s;
    struct outcome o = check("resnet8", SG_GRAN_FILTER, SG_FC_DENSE, 0.5, &m, &s);
    CHECK(o.empty > 0);
    /* through an add only where every addend is 0: block1's second conv has empty
     * filters, but the identity shortcut carries conv1 (dense), so nothing after
     * the add loses weights */
    const int32_t b1 = sg_model_find_param(m, "block1_conv2.weight");
    int64_t dead = 0;
    for (int64_t k = 0; k < 16; k++) dead += filter_empty(m, b1, k);
    CHECK_EQ_INT(dead, 8);
    const char *after[] = {"block2_conv1.weight", "block2_proj.weight"};
    for (int t = 0; t < 2; t++) {
        const int32_t p = sg_model_find_param(m, after[t]);
        CHECK(memcmp(sg_param_mask(m, p), sg_param_mask(s, p), m->params[p].count) == 0);
    }
    /* inside a block the first conv's empty filters take the second conv's inputs */
    const int32_t a1 = sg_model_find_param(m, "block1_conv1.weight");
    for (int64_t c = 0; c < 16; c++)
        if (filter_empty(m, a1, c))
            for (int64_t k = 0; k < 16; k++)
                for (int j = 0; j < 9; j++) CHECK(!sg_param_mask(m, b1)[(k * 16 + c) * 9 + j]);
    retrain_keeps_zeros(m);
    sg_model_free(m);
    sg_model_free(s);
}

SG_TEST(follow_channel_takes_producer_filters) {
    /* LeNet-5: conv2 loses input channels; conv1 (outside the scope) loses the
     * filters that only fed them, with their biases */
    struct sg_model *m, *s;
    check("lenet5", SG_GRAN_CHANNEL, SG_FC_DENSE, 0.5, &m, &s);
    const int32_t c1 = sg_model_find_param(m, "conv1.weight"), c2 = sg_model_find_param(m, "conv2.weight");
    int64_t gone = 0;
    for (int64_t c = 0; c < 20; c++) {
        int read = 0;
        for (int64_t k = 0; k < 50; k++)
            for (int j = 0; j < 25; j++) read |= sg_param_mask(m, c2)[(k * 20 + c) * 25 + j];
        CHECK(filter_empty(m, c1, c) == !read);
        gone += !read;
    }
    CHECK_EQ_INT(gone, 10);
    sg_model_free(m);
    sg_model_free(s);
    /* VGG-7 and ResNet-8: the same checks (outputs, dead channels) hold */
    check("vgg7", SG_GRAN_CHANNEL, SG_FC_DENSE, 0.4, &m, &s);
    const int32_t v2 = sg_model_find_param(m, "conv2.weight");
    int64_t empty = 0;
    for (int64_t k = 0; k < 32; k++) empty += filter_empty(m, v2, k);
    CHECK_EQ_INT(empty, 32 - 13); /* conv3 keeps round(0.4 * 32) = 13 of its inputs */
    sg_model_free(m);
    sg_model_free(s);
    check("resnet8", SG_GRAN_CHANNEL, SG_FC_SAME, 0.5, &m, &s);
    retrain_keeps_zeros(m);
    sg_model_free(m);
    sg_model_free(s);
}

SG_TEST(follow_fc_rows_and_fine) {
    /* fc rows (filter granularity on fc layers): a removed row of fc1 takes its bias
     * and fc2's column */
    struct sg_model *m, *s;
    check("lenet5", SG_GRAN_FILTER, SG_FC_SAME, 0.3, &m, &s);
    const int32_t f1 = sg_model_find_param(m, "fc1.weight"), f2 = sg_model_find_param(m, "fc2.weight");
    for (int64_t k = 0; k < 500; k++)
        if (filter_empty(m, f1, k))
            for (int64_t j = 0; j < 10; j++) CHECK(!sg_param_mask(m, f2)[j * 500 + k]);
    /* fc2's filters are the classes: out of scope, it keeps every one and loses only the
     * columns that read fc1's removed rows */
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    pc.fc = SG_FC_SAME;
    struct sg_prune_spec buf;
    CHECK(sg_prune_scope(m, &pc, f1, &buf) != NULL);
    CHECK(sg_prune_scope(m, &pc, f2, &buf) == NULL);
    pc.spec.gran = SG_GRAN_CHANNEL; /* input neurons of the classifier may go */
    CHECK(sg_prune_scope(m, &pc, f2, &buf) != NULL);
    for (int64_t j = 0; j < 10; j++) {
        CHECK(!filter_empty(m, f2, j));
        for (int64_t k = 0; k < 500; k++)
            CHECK(sg_param_mask(m, f2)[j * 500 + k] == !filter_empty(m, f1, k));
    }
    sg_model_free(m);
    sg_model_free(s);
    /* fine pruning: outputs with the implied zeros restored agree too */
    check("vgg7", SG_GRAN_FINE, SG_FC_FINE, 0.02, &m, &s);
    sg_model_free(m);
    sg_model_free(s);
}

/* ---- thinning (src/prune/thin.c) ---- */

static void same_outputs(struct sg_model *a, struct sg_model *b, const char *what) {
    float *x = input(21);
    for (int train = 0; train <= 1; train++) {
        float la[NB * 10], lb[NB * 10];
        logits(a, x, train, la);
        logits(b, x, train, lb);
        const double err = sgt_max_rel_err(lb, la, NB * 10);
        CHECK_MSG(err < 1e-5, "%s: thinned logits differ by %g (train %d)", what, err, train);
        for (int n = 0; n < NB; n++) {
            int ia = 0, ib = 0;
            for (int j = 1; j < 10; j++) {
                if (la[n * 10 + j] > la[n * 10 + ia]) ia = j;
                if (lb[n * 10 + j] > lb[n * 10 + ib]) ib = j;
            }
            CHECK_MSG(ia == ib, "%s: sample %d argmax %d vs %d", what, n, ia, ib);
        }
    }
    free(x);
}

static const struct sg_thin_layer *thin_layer(const struct sg_thin_result *r, const char *name) {
    for (int32_t l = 0; l < r->n_layers; l++)
        if (strcmp(r->layers[l].name, name) == 0) return &r->layers[l];
    sgt_fail(__FILE__, __LINE__, "no layer %s in the thinning table", name);
}

static int64_t live_filters(struct sg_model *m, const char *param) {
    const int32_t p = sg_model_find_param(m, param);
    int64_t n = 0;
    for (int64_t k = 0; k < m->params[p].dims[0]; k++) n += !filter_empty(m, p, k);
    return n;
}

static struct sg_model *thin_checked(struct sg_model *m, const char *what, struct sg_thin_result *r) {
    const int followed = strstr(what, "by hand") == NULL;
    struct sg_model *t = NULL;
    CHECK_OK(sg_thin(m, &t, r));
    same_outputs(m, t, what);
    CHECK(r->params[1] < r->params[0]);
    CHECK(r->changed);
    if (followed) CHECK_EQ_INT(r->kept[1], r->kept[0]); /* every kept weight survives */
    size_t w, k;
    sg_model_count(t, &w, &k);
    CHECK_EQ_INT(w, r->weights[1]);
    CHECK(t->preproc.stated == m->preproc.stated);
    CHECK(sg_meta_get(t, "thinned") != NULL);
    return t;
}

SG_TEST(thin_filter_pruned_builtins) {
    struct sg_model *m, *s, *t;
    struct sg_thin_result r;
    /* LeNet-5: conv2 keeps 25 filters, fc1 its 25 inputs */
    check("lenet5", SG_GRAN_FILTER, SG_FC_DENSE, 0.5, &m, &s);
    t = thin_checked(m, "lenet5", &r);
    CHECK_EQ_INT(thin_layer(&r, "conv2")->out[1], 25);
    CHECK_EQ_INT(thin_layer(&r, "fc1")->in[0], 50);
    CHECK_EQ_INT(thin_layer(&r, "fc1")->in[1], 25);
    CHECK_EQ_INT(thin_layer(&r, "conv1")->out[1], 20);
    CHECK_EQ_INT(r.n_notes, 0);
    sg_thin_result_free(&r);
    sg_model_free(t), sg_model_free(m), sg_model_free(s);

    /* VGG-7 (batch norm): every pruned filter goes with its BN entries */
    check("vgg7", SG_GRAN_FILTER, SG_FC_DENSE, 0.4, &m, &s);
    t = thin_checked(m, "vgg7", &r);
    const char *conv[] = {"conv2", "conv3", "conv4", "conv5"};
    const int64_t want[] = {13, 26, 26, 51};
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s.weight", conv[i]);
        CHECK_EQ_INT(thin_layer(&r, conv[i])->out[1], want[i]);
        CHECK_EQ_INT(live_filters(m, name), want[i]);
        snprintf(name, sizeof name, "%s_bn.gamma", conv[i]);
        CHECK_EQ_INT(t->params[sg_model_find_param(t, name)].count, want[i]);
    }
    CHECK_EQ_INT(thin_layer(&r, "fc1")->in[1], 51 * 4);
    CHECK_EQ_INT(r.n_notes, 0);
    sg_thin_result_free(&r);
    sg_model_free(t), sg_model_free(m), sg_model_free(s);

    /* ResNet-8: the zero filters before an add with a live shortcut stay (and say
     * so); the first conv of each block thins */
    check("resnet8", SG_GRAN_FILTER, SG_FC_DENSE, 0.5, &m, &s);
    t = thin_checked(m, "resnet8", &r);
    CHECK_EQ_INT(thin_layer(&r, "block1_conv1")->out[1], 8);
    CHECK_EQ_INT(thin_layer(&r, "block1_conv2")->in[1], 8);
    CHECK_EQ_INT(thin_layer(&r, "block1_conv2")->out[1], 16);
    int noted = 0;
    for (int32_t i = 0; i < r.n_notes; i++)
        noted |= strncmp(r.notes[i], "block1_conv2: 8 zero", 20) == 0 && strstr(r.notes[i], "'conv1'");
    CHECK_MSG(noted, "no note on block1_conv2 (first: %s)", r.n_notes ? r.notes[0] : "none");
    sg_thin_result_free(&r);
    sg_model_free(t), sg_model_free(m), sg_model_free(s);
}

SG_TEST(thin_channel_pruned_and_after_training) {
    struct sg_model *m, *s, *t;
    struct sg_thin_result r;
    check("vgg7", SG_GRAN_CHANNEL, SG_FC_DENSE, 0.4, &m, &s);
    retrain_keeps_zeros(m);
    t = thin_checked(m, "vgg7 channel", &r);
    CHECK_EQ_INT(thin_layer(&r, "conv3")->in[1], 13);
    CHECK_EQ_INT(thin_layer(&r, "conv2")->out[1], 13);
    sg_thin_result_free(&r);
    sg_model_free(t), sg_model_free(m), sg_model_free(s);
    check("resnet8", SG_GRAN_CHANNEL, SG_FC_SAME, 0.5, &m, &s);
    t = thin_checked(m, "resnet8 channel", &r);
    sg_thin_result_free(&r);
    sg_model_free(t), sg_model_free(m), sg_model_free(s);
}

SG_TEST(thin_nothing_and_errors) {
    /* a dense model: an identical copy */
    struct sg_model *m = build("vgg7", 3), *t = NULL;
    struct sg_thin_result r;
    CHECK_OK(sg_thin(m, &t, &r));
    CHECK(!r.changed);
    CHECK_EQ_INT(r.params[0], r.params[1]);
    CHECK_EQ_INT(t->arena_len, m->arena_len);
    CHECK(memcmp(t->arena, m->arena, m->arena_len * sizeof *m->arena) == 0);
    CHECK(memcmp(t->mask, m->mask, m->arena_len) == 0);
    sg_thin_result_free(&r);
    sg_model_free(t);
    /* an empty filter whose bias is not 0 (a model pruned by hand, without
     * sg_prune_follow) is a constant channel: it stays */
    struct sg_model *l = build("lenet5", 4);
    const int32_t c2 = sg_model_find_param(l, "conv2.weight");
    for (size_t i = 0; i < 3 * 500; i++) sg_param_mask(l, c2)[i] = 0, sg_param_data(l, c2)[i] = 0;
    CHECK_OK(sg_thin(l, &t, &r));
    CHECK(!r.changed);
    sg_thin_result_free(&r);
    sg_model_free(t);
    /* ... and goes once it is 0 */
    for (int k = 0; k < 3; k++) sg_param_data(l, sg_model_find_param(l, "conv2.bias"))[k] = 0;
    t = thin_checked(l, "lenet5 by hand", &r);
    CHECK_EQ_INT(thin_layer(&r, "conv2")->out[1], 47);
    sg_thin_result_free(&r);
    sg_model_free(t);
    /* every filter of a layer gone: refused, naming it */
    for (size_t i = 0; i < l->params[c2].count; i++) sg_param_mask(l, c2)[i] = 0, sg_param_data(l, c2)[i] = 0;
    memset(sg_param_data(l, sg_model_find_param(l, "conv2.bias")), 0, 50 * sizeof(float));
    CHECK_ERR(sg_thin(l, &t, &r), SG_ERR_UNSUPPORTED);
    CHECK(strstr(sg_last_error(), "'conv") != NULL);
    CHECK(t == NULL);
    sg_model_free(l);
    /* weights only: refused */
    struct sg_model *w = sg_model_new("npy", 0, 0, 0);
    int64_t d[2] = {4, 4};
    CHECK(sg_model_add_param(w, "w", SG_PARAM_WEIGHT, SG_LAYER_FC, -1, 2, d) == 0);
    CHECK_OK(sg_model_finalize(w));
    CHECK_ERR(sg_thin(w, &t, &r), SG_ERR_UNSUPPORTED);
    sg_model_free(w);
    sg_model_free(m);
}

/* A hand-built graph: two convs concatenated (channel offsets), a depthwise conv
 * with BN on the concatenation, a conv, global average pool, fc. Filters removed
 * from both branches go with the depthwise channels and the consumer's inputs at
 * the right offsets. */
SG_TEST(thin_concat_offsets_and_depthwise) {
    struct sg_model *m = sg_model_new("concat", 2, HW, HW);
    struct sg_node n;
    int32_t x = 0, a, b, c, dw;
    sg_node_init(&n, SG_OP_INPUT, "input");
    CHECK(sg_model_add(m, &n) == 0);
    sg_node_init(&n, SG_OP_CONV, "a");
    n.n_in = 1, n.in[0] = x, n.k = 4, n.kh = n.kw = 3, n.pt = n.pl = n.pb = n.pr = 1, n.has_bias = 1;
    a = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_CONV, "b");
    n.n_in = 1, n.in[0] = x, n.k = 6, n.kh = n.kw = 1, n.has_bias = 1;
    b = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_CONCAT, "cat");
    n.n_in = 2, n.in[0] = a, n.in[1] = b;
    c = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_CONV, "dw");
    n.n_in = 1, n.in[0] = c, n.k = 10, n.groups = 10, n.kh = n.kw = 3, n.pt = n.pl = n.pb = n.pr = 1;
    n.has_bias = 1;
    dw = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_BN, "dw_bn");
    n.n_in = 1, n.in[0] = dw;
    int32_t t = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_RELU, "dw_relu");
    n.n_in = 1, n.in[0] = t;
    t = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_CONV, "c");
    n.n_in = 1, n.in[0] = t, n.k = 5, n.kh = n.kw = 3, n.has_bias = 1;
    t = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_GAP, "gap");
    n.n_in = 1, n.in[0] = t;
    t = sg_model_add(m, &n);
    sg_node_init(&n, SG_OP_FC, "fc");
    n.n_in = 1, n.in[0] = t, n.k = 10, n.has_bias = 1;
    CHECK(sg_model_add(m, &n) >= 0);
    CHECK_OK(sg_model_finalize(m));
    sg_model_init_weights(m, 5);
    sg_rng r;
    sg_rng_seed(&r, 3);
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind == SG_PARAM_BIAS || m->params[p].kind == SG_PARAM_BN_BETA ||
            m->params[p].kind == SG_PARAM_BN_MEAN)
            for (size_t i = 0; i < m->params[p].count; i++)
                sg_param_data(m, p)[i] = (float)sg_rng_uniform(&r) - 0.5f;
    /* prune filter 1 of a and filters 0 and 4 of b (concat channels 1, 4, 8) */
    const int kill[3][2] = {{0, 1}, {1, 0}, {1, 4}};
    for (int j = 0; j < 3; j++) {
        const int32_t p = m->nodes[kill[j][0] ? b : a].param[0];
        const size_t per = m->params[p].count / (size_t)m->params[p].dims[0];
        for (size_t i = 0; i < per; i++) {
            sg_param_mask(m, p)[kill[j][1] * per + i] = 0;
            sg_param_data(m, p)[kill[j][1] * per + i] = 0;
        }
    }
    struct sg_prune_follow fs;
    CHECK_OK(sg_prune_follow(m, &fs));
    CHECK_EQ_INT(fs.filters, 6); /* a1, b0, b4 and their depthwise channels */
    CHECK_EQ_INT(fs.consumer, 3 * 9 + 3 * 5 * 9); /* dw's 3 filters, c's 3 inputs */
    /* the dead channels are 0 and restoring c's weights changes nothing (check()'s
     * way, by hand) */
    float *xin = malloc(sizeof *xin * NB * 2 * HW * HW);
    for (int i = 0; i < NB * 2 * HW * HW; i++) xin[i] = sg_rng_normal(&r);
    struct sg_model *th = NULL;
    struct sg_thin_result tr;
    CHECK_OK(sg_thin(m, &th, &tr));
    CHECK(tr.changed);
    CHECK_EQ_INT(thin_layer(&tr, "a")->out[1], 3);
    CHECK_EQ_INT(thin_layer(&tr, "b")->out[1], 4);
    CHECK_EQ_INT(thin_layer(&tr, "dw")->out[1], 7);
    CHECK_EQ_INT(thin_layer(&tr, "c")->in[1], 7);
    CHECK_EQ_INT(th->nodes[dw].groups, 7);
    for (int train = 0; train <= 1; train++) {
        float la[NB * 10], lb[NB * 10];
        struct sg_exec *e1 = NULL, *e2 = NULL;
        CHECK_OK(sg_exec_new(m, NB, train, &e1));
        CHECK_OK(sg_exec_new(th, NB, train, &e2));
        CHECK_OK(sg_forward(m, e1, xin, NB, train, NULL));
        CHECK_OK(sg_forward(th, e2, xin, NB, train, NULL));
        sg_exec_logits(e1, la);
        sg_exec_logits(e2, lb);
        const double err = sgt_max_rel_err(lb, la, NB * 10);
        CHECK_MSG(err < 1e-5, "concat: thinned logits differ by %g (train %d)", err, train);
        sg_exec_free(e1), sg_exec_free(e2);
    }
    free(xin);
    sg_thin_result_free(&tr);
    sg_model_free(th);
    sg_model_free(m);
}
