/* Sparse inference: every kernel kind against the naive reference convolution of
 * the masked weights (and our dense path), on many shapes and densities, for
 * masks of every granularity; thinning; the executor against sg_forward. */
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "nn/ops.h"
#include "sparsegrain/infer.h"
#include "sparsegrain/io.h"
#include "sparsegrain/prune.h"

static void fill(sg_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * sg_rng_normal(r);
}

/* NCHW <-> CNHW */
static void to_cnhw(const float *x, float *y, int n, int c, size_t hw) {
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(y + ((size_t)ch * n + b) * hw, x + ((size_t)b * c + ch) * hw, hw * sizeof *y);
}

static const enum sg_conv_kind KINDS[] = {SG_KIND_DENSE, SG_KIND_THIN,  SG_KIND_KERNEL,
                                          SG_KIND_VECTOR, SG_KIND_NM,   SG_KIND_FINE,
                                          SG_KIND_AUTO,   SG_KIND_WINOGRAD};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

/* Prunes random weights of geometry g at spec/density, then checks every kind
 * (and both vector axes, and nm with M = 2 and 4) against sg_conv2d_ref. */
static void check_layer(struct sg_conv_geom g, int is_fc, const char *spec_text, double density,
                        uint64_t seed) {
    if (is_fc) {
        g.h = g.w = g.r = g.s = 1;
        g.sh = g.sw = g.dh = g.dw = g.groups = 1;
        g.pt = g.pl = g.pb = g.pr = 0;
    }
    CHECK_OK(sg_conv_geom_finish(&g));
    sg_rng r;
    sg_rng_seed(&r, seed);
    const size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.k * g.c * g.r * g.s,
                 ny = (size_t)g.n * g.k * g.p * g.q;
    float *x = malloc(nx * 4), *xc = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(g.k * 4);
    float *yref = malloc(ny * 4), *yrefc = malloc(ny * 4), *y = malloc(ny * 4);
    uint8_t *mask = malloc(nw);
    fill(&r, x, nx, 1);
    fill(&r, w, nw, 0.5f);
    fill(&r, b, (size_t)g.k, 1);
    memset(mask, 1, nw);
    struct sg_prune_spec sp;
    sg_prune_spec_default(&sp);
    CHECK_OK(sg_prune_spec_parse(spec_text, &sp));
    struct sg_wview v = {"layer", g.k, g.c, g.r, g.s, w, mask, is_fc};
    CHECK_OK(sg_prune_layer_density(&sp, &v, density));
    sg_conv2d_ref(&g, x, w, b, yref);
    to_cnhw(x, xc, g.n, g.c, (size_t)g.h * g.w);
    to_cnhw(yref, yrefc, g.n, g.k, (size_t)g.p * g.q);
    /* batch 1 (the first image): NCHW and CNHW coincide */
    struct sg_conv_geom g1 = g;
    g1.n = 1;
    float *r1 = malloc((size_t)g.k * g.p * g.q * 4);
    sg_conv2d_ref(&g1, x, w, b, r1);
    for (size_t i = 0; i < NKINDS + 3; i++) {
        enum sg_conv_kind kind = i < NKINDS ? KINDS[i] : i == NKINDS + 2 ? SG_KIND_NM
                                                                           : SG_KIND_VECTOR;
        struct sg_conv_plan_opts o = {i == NKINDS + 2 ? 2 : 0, i == NKINDS ? 0 : i == NKINDS + 1 ? 1 : -1};
        struct sg_conv_plan *p;
        const int wino_fits = !is_fc && g.r == 3 && g.s == 3 && g.sh == 1 && g.sw == 1 &&
                              g.dh == 1 && g.dw == 1;
        if (kind == SG_KIND_WINOGRAD && !wino_fits) {
            CHECK_ERR(sg_conv_plan_new(&g, is_fc, w, mask, b, kind, &o, &p), SG_ERR_UNSUPPORTED);
            continue;
        }
        CHECK_OK(sg_conv_plan_new(&g, is_fc, w, mask, b, kind, &o, &p));
        for (size_t t = 0; t < ny; t++) y[t] = NAN; /* every output must be written */
        CHECK_OK(sg_conv_plan_run(p, g.n, xc, y));
        struct sg_conv_plan_info info;
        sg_conv_plan_get_info(p, &info);
        /* Winograd F(4x4,3x3) rounds through factors up to 8 and 1/24 */
        const double tol = info.kind == SG_KIND_WINOGRAD ? 1e-4 : 2e-5;
        double err = sgt_max_rel_err(y, yrefc, ny);
        CHECK_MSG(err < tol,
                  "%s n%d c%d %dx%d k%d %dx%d s%d p%d d%d %s@%g kind %s (ran %s): rel err %g",
                  is_fc ? "fc" : "conv", g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.sh, g.pt, g.dh,
                  spec_text, density, sg_conv_kind_name(kind), sg_conv_kind_name(info.kind), err);
        /* a second run reuses the scratch and must give the same bits */
        float *y2 = malloc(ny * 4);
        CHECK_OK(sg_conv_plan_run(p, g.n, xc, y2));
        CHECK(memcmp(y, y2, ny * 4) == 0);
        /* the sparse kinds sum each output on one thread in a fixed order: the
         * same bits on 1 and 3 threads (the dense ones are OpenBLAS's sgemm) */
        if (info.kind != SG_KIND_DENSE && info.kind != SG_KIND_THIN) {
            for (int th = 1; th <= 3; th += 2) {
                sg_set_threads(th);
                CHECK_OK(sg_conv_plan_run(p, g.n, xc, y2));
                CHECK_MSG(memcmp(y, y2, ny * 4) == 0, "kind %s: other bits on %d threads",
                          sg_conv_kind_name(info.kind), th);
            }
            sg_set_threads(2);
        }
        /* a smaller batch than the first run */
        if (g.n > 1) {
            CHECK_OK(sg_conv_plan_run(p, 1, x, y2));
            CHECK(sgt_max_rel_err(y2, r1, (size_t)g.k * g.p * g.q) < tol);
        }
        free(y2);
        if (kind != SG_KIND_DENSE && kind != SG_KIND_THIN && kind != SG_KIND_AUTO) {
            CHECK(info.stored >= info.nnz);
        }
        sg_conv_plan_free(p);
    }
    free(x), free(xc), free(w), free(b), free(yref), free(yrefc), free(y), free(mask), free(r1);
}

static const double DENSITIES[] = {0, 0.05, 0.3, 0.7, 1};
static const char *const GRANS[] = {"fine", "vector", "vector:col", "kernel", "filter", "channel",
                                    "nm:2:4"};

static void check_all(struct sg_conv_geom g, int is_fc, uint64_t seed) {
    for (size_t gi = 0; gi < sizeof GRANS / sizeof GRANS[0]; gi++)
        for (size_t d = 0; d < sizeof DENSITIES / sizeof DENSITIES[0]; d++)
            check_layer(g, is_fc, GRANS[gi], DENSITIES[d], seed + 100 * gi + d);
}

/* n c h w k r s sh sw pt pl pb pr dh dw groups */
SG_TEST(infer_kernels_3x3_padded) {
    check_all((struct sg_conv_geom){2, 8, 9, 11, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 0, 1);
}
SG_TEST(infer_kernels_1x1) {
    check_all((struct sg_conv_geom){3, 12, 5, 6, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 0, 2);
}
SG_TEST(infer_kernels_5x5_unpadded) {
    check_all((struct sg_conv_geom){2, 6, 12, 12, 9, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 0, 3);
}
SG_TEST(infer_kernels_stride2) {
    check_all((struct sg_conv_geom){2, 5, 13, 10, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 0, 4);
    check_all((struct sg_conv_geom){2, 8, 8, 8, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 0, 5);
}
SG_TEST(infer_kernels_c1) {
    check_all((struct sg_conv_geom){3, 1, 12, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 0, 6);
    check_all((struct sg_conv_geom){1, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 0, 7);
}
SG_TEST(infer_kernels_many_filters_and_odd_shapes) {
    /* K = 130: three chunks of 64 with a short last one; asymmetric padding, dilation,
     * a 3x2 kernel */
    check_all((struct sg_conv_geom){1, 10, 7, 7, 130, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 0, 8);
    check_all((struct sg_conv_geom){2, 4, 11, 9, 19, 3, 2, 1, 2, 2, 0, 1, 1, 2, 1, 1, 0, 0}, 0, 9);
}
SG_TEST(infer_kernels_fc) {
    check_all((struct sg_conv_geom){1, 300, 1, 1, 37, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 1, 10);
    check_all((struct sg_conv_geom){40, 70, 1, 1, 10, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 1, 11);
}

SG_TEST(infer_fc_long_gaps_use_fillers) {
    /* a row whose kept columns are 70000 apart needs filler values */
    struct sg_conv_geom g = {2, 140001, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    const size_t C = 140001;
    float *w = calloc(2 * C, 4), *x = malloc(2 * C * 4), y[4];
    sg_rng r;
    sg_rng_seed(&r, 3);
    fill(&r, x, 2 * C, 1);
    w[0] = 1, w[70000] = 2, w[140000] = 3, w[C + 139999] = -1;
    struct sg_conv_plan *p;
    CHECK_OK(sg_conv_plan_new(&g, 1, w, NULL, NULL, SG_KIND_FINE, NULL, &p));
    CHECK_OK(sg_conv_plan_run(p, 2, x, y));
    for (int b = 0; b < 2; b++) {
        CHECK_NEAR(y[b], x[b] + 2 * x[70000 * 2 + b] + 3 * x[140000 * 2 + b], 1e-4);
        CHECK_NEAR(y[2 + b], -x[139999 * 2 + b], 1e-6);
    }
    struct sg_conv_plan_info info;
    sg_conv_plan_get_info(p, &info);
    CHECK_EQ_INT(info.nnz, 4);
    CHECK_EQ_INT(info.stored, 8); /* gaps of 70000 need one filler, 139999 two */
    sg_conv_plan_free(p);
    free(w), free(x);
}

/* ---- the executor ---- */

/* Prunes every conv and fc weight of m at spec/density (the first conv layer too). */
static void prune_all(struct sg_model *m, const char *spec_text, double density) {
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    CHECK_OK(sg_prune_spec_parse(spec_text, &pc.spec));
    pc.include_first = 1;
    pc.fc = SG_FC_SAME;
    CHECK_OK(sg_prune_model(m, &pc, density, NULL));
}

/* BN statistics away from the identity, so that a wrong channel shows. */
static void randomise_bn(struct sg_model *m, uint64_t seed) {
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (int32_t i = 0; i < m->n_params; i++) {
        const struct sg_param *p = &m->params[i];
        float *d = sg_param_data(m, i);
        for (size_t j = 0; j < p->count; j++) {
            if (p->kind == SG_PARAM_BN_MEAN || p->kind == SG_PARAM_BN_BETA || p->kind == SG_PARAM_BIAS)
                d[j] = 0.2f * sg_rng_normal(&r);
            else if (p->kind == SG_PARAM_BN_VAR || p->kind == SG_PARAM_BN_GAMMA)
                d[j] = 0.5f + (float)sg_rng_uniform(&r);
        }
    }
}

/* Logits of sg_infer (engine e, kernel kind) against sg_forward on the same batch. */
static void check_executor_kind(struct sg_model *m, enum sg_engine e, enum sg_conv_kind kind,
                                const char *what) {
    const int n = 3;
    const size_t img = (size_t)m->in_c * m->in_h * m->in_w, k = (size_t)m->n_classes;
    float *x = malloc(n * img * 4), *a = malloc(n * k * 4), *b = malloc(n * k * 4);
    sg_rng r;
    sg_rng_seed(&r, 77);
    fill(&r, x, n * img, 1);
    struct sg_exec *ex;
    CHECK_OK(sg_exec_new(m, n, 0, &ex));
    CHECK_OK(sg_forward(m, ex, x, n, 0, NULL));
    sg_exec_logits(ex, a);
    struct sg_infer_cfg cfg;
    sg_infer_cfg_default(&cfg);
    cfg.engine = e;
    cfg.batch = n;
    cfg.auto_repeats = 1;
    cfg.kernel = kind;
    struct sg_infer *inf;
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_OK(sg_infer_forward(inf, x, n));
    sg_infer_logits(inf, b);
    const double err = sgt_max_rel_err(b, a, n * k);
    CHECK_MSG(err < 1e-4, "%s %s engine %s: logits rel err %g", m->arch, what, sg_engine_name(e), err);
    /* every intermediate conv/fc output matches too */
    for (int32_t i = 0; i < sg_infer_layer_count(inf); i++) {
        struct sg_infer_layer l;
        sg_infer_layer_get(inf, i, &l);
        const struct sg_node *nd = &m->nodes[l.node];
        const size_t sz = (size_t)nd->c * nd->h * nd->w * n;
        const double le = sgt_max_rel_err(sg_infer_output(inf, l.node, NULL),
                                          sg_exec_output(ex, l.node, NULL), sz);
        CHECK_MSG(le < 1e-4, "%s %s engine %s layer %s (%s): rel err %g", m->arch, what,
                  sg_engine_name(e), l.name, sg_conv_kind_name(l.plan.kind), le);
    }
    sg_infer_free(inf);
    sg_exec_free(ex);
    free(x), free(a), free(b);
}

static void check_executor(struct sg_model *m, enum sg_engine e, const char *what) {
    check_executor_kind(m, e, SG_KIND_AUTO, what);
}

SG_TEST(infer_executor_matches_forward_on_builtin_nets) {
    const char *const nets[] = {"lenet300", "lenet5", "vgg7", "resnet8"};
    const char *const grans[] = {"fine", "vector", "kernel", "filter", "channel", "nm:2:4"};
    for (size_t i = 0; i < 4; i++)
        for (size_t g = 0; g < 6; g++) {
            struct sg_model *m;
            CHECK_OK(sg_model_build(nets[i], 1, 28, 28, 10, 5 + i, &m));
            randomise_bn(m, 9 + g);
            prune_all(m, grans[g], 0.3);
            /* dense and auto do not depend on the granularity: one is enough */
            for (int e = 0; e < SG_ENGINE_COUNT; e++)
                if (e == SG_ENGINE_SPARSE || g == 2) check_executor(m, (enum sg_engine)e, grans[g]);
            sg_model_free(m);
        }
}

SG_TEST(infer_thinning_a_filter_pruned_model) {
    /* filter pruning: every conv layer runs as a smaller dense layer (thin), and
     * the network computes what the masked dense network computes */
    struct sg_model *m;
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 3, &m));
    randomise_bn(m, 4);
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    pc.include_first = 1;
    CHECK_OK(sg_prune_model(m, &pc, 0.4, NULL));
    struct sg_infer_cfg cfg;
    sg_infer_cfg_default(&cfg);
    cfg.batch = 4;
    cfg.kernel = SG_KIND_THIN; /* auto would pick Winograd for the 3x3 layers */
    struct sg_infer *inf;
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    int thin = 0;
    for (int32_t i = 0; i < sg_infer_layer_count(inf); i++) {
        struct sg_infer_layer l;
        sg_infer_layer_get(inf, i, &l);
        if (m->nodes[l.node].op != SG_OP_CONV) continue;
        CHECK_MSG(l.plan.kind == SG_KIND_THIN, "%s runs %s", l.name, sg_conv_kind_name(l.plan.kind));
        CHECK(l.plan.kept_filters < m->nodes[l.node].k);
        CHECK_EQ_INT(l.plan.stored, l.plan.nnz); /* physically smaller: no zero stored */
        thin++;
    }
    CHECK_EQ_INT(thin, 5);
    sg_infer_free(inf);
    check_executor_kind(m, SG_ENGINE_SPARSE, SG_KIND_THIN, "filter 0.4 thin");
    check_executor_kind(m, SG_ENGINE_SPARSE, SG_KIND_WINOGRAD, "filter 0.4 winograd");
    check_executor(m, SG_ENGINE_SPARSE, "filter 0.4 auto");
    sg_model_free(m);
}

SG_TEST(infer_auto_cache_is_written_read_and_invalidated) {
    char path[512], cache[600];
    snprintf(path, sizeof path, "%s/l5.sgm", sgt_tmpdir());
    snprintf(cache, sizeof cache, "%s.engine", path);
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 1, &m));
    prune_all(m, "kernel", 0.3);
    CHECK_OK(sg_model_save(m, path, NULL));
    struct sg_infer_cfg cfg;
    sg_infer_cfg_default(&cfg);
    cfg.engine = SG_ENGINE_AUTO;
    cfg.batch = 8;
    cfg.auto_repeats = 1;
    cfg.model_path = path;
    struct sg_infer *inf;
    const char *note;
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_WRITTEN);
    int engines[8], nl = sg_infer_layer_count(inf);
    for (int i = 0; i < nl; i++) {
        struct sg_infer_layer l;
        sg_infer_layer_get(inf, i, &l);
        engines[i] = l.engine;
        CHECK(l.auto_dense_s > 0 && l.auto_sparse_s > 0);
        CHECK(l.calls == 0 && l.seconds == 0); /* the measuring passes leave no layer time */
    }
    /* the layers' times are the forward passes' after it */
    float *x = calloc(8 * 28 * 28, sizeof *x);
    CHECK(x != NULL);
    CHECK_OK(sg_infer_forward(inf, x, 8));
    free(x);
    for (int i = 0; i < nl; i++) {
        struct sg_infer_layer l;
        sg_infer_layer_get(inf, i, &l);
        CHECK(l.calls == 1 && l.seconds > 0);
    }
    sg_infer_free(inf);
    /* read back: the same choices, from the file */
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_READ);
    for (int i = 0; i < nl; i++) {
        struct sg_infer_layer l;
        sg_infer_layer_get(inf, i, &l);
        CHECK_EQ_INT(l.engine, engines[i]);
        CHECK(l.from_cache);
    }
    sg_infer_free(inf);
    /* another batch size: measured again */
    cfg.batch = 4;
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_WRITTEN);
    sg_infer_free(inf);
    /* a corrupted file is measured again and rewritten, never trusted */
    static const char *const bad[] = {"", "garbage\n", "sparsegrain-engine-cache 1\nlayer x\n",
                                      "sparsegrain-engine-cache 1\nbatch 4\nend\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_OK(sg_file_write_atomic(cache, bad[i], strlen(bad[i])));
        CHECK_OK(sg_infer_new(m, &cfg, &inf));
        CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_WRITTEN);
        sg_infer_free(inf);
    }
    /* the model file changes (new masks, saved again): the cache is stale */
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_READ);
    sg_infer_free(inf);
    prune_all(m, "kernel", 0.2);
    CHECK_OK(sg_model_save(m, path, NULL));
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_WRITTEN);
    sg_infer_free(inf);
    /* a cache that cannot be written (a directory is in the way): inference still
     * works, with a note saying why */
    CHECK(remove(cache) == 0 && mkdir(cache, 0700) == 0);
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_FAILED);
    CHECK(note && *note);
    sg_infer_free(inf);
    /* no model file to key on: measured, nothing written */
    snprintf(path, sizeof path, "%s/no/such/dir/l5.sgm", sgt_tmpdir());
    CHECK_OK(sg_infer_new(m, &cfg, &inf));
    CHECK_EQ_INT(sg_infer_cache_state(inf, &note), SG_CACHE_UNUSED);
    sg_infer_free(inf);
    sg_model_free(m);
}

SG_TEST(infer_rejects_bad_arguments) {
    struct sg_conv_geom g = {1, 4, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    float w[4 * 3 * 9] = {0}, x[4 * 25], y[3 * 25];
    memset(x, 0, sizeof x);
    struct sg_conv_plan *p;
    struct sg_conv_geom bad = g;
    bad.p = 7; /* inconsistent output size */
    CHECK_ERR(sg_conv_plan_new(&bad, 0, w, NULL, NULL, SG_KIND_AUTO, NULL, &p), SG_ERR_ARG);
    CHECK(p == NULL);
    CHECK_ERR(sg_conv_plan_new(&g, 0, w, NULL, NULL, (enum sg_conv_kind)99, NULL, &p), SG_ERR_ARG);
    struct sg_conv_geom grp = g;
    grp.c = 4, grp.k = 4, grp.groups = 2;
    float w2[4 * 2 * 9] = {1};
    CHECK_ERR(sg_conv_plan_new(&grp, 0, w2, NULL, NULL, SG_KIND_KERNEL, NULL, &p), SG_ERR_UNSUPPORTED);
    CHECK_OK(sg_conv_plan_new(&grp, 0, w2, NULL, NULL, SG_KIND_AUTO, NULL, &p)); /* dense */
    struct sg_conv_plan_info info;
    sg_conv_plan_get_info(p, &info);
    CHECK_EQ_INT(info.kind, SG_KIND_DENSE);
    sg_conv_plan_free(p);
    CHECK_OK(sg_conv_plan_new(&g, 0, w, NULL, NULL, SG_KIND_AUTO, NULL, &p));
    CHECK_ERR(sg_conv_plan_run(p, 0, x, y), SG_ERR_ARG);
    CHECK_OK(sg_conv_plan_run(p, 1, x, y)); /* all weights zero: output zero */
    for (int i = 0; i < 75; i++) CHECK(y[i] == 0.0f);
    sg_conv_plan_free(p);
    sg_conv_plan_free(NULL);
    sg_infer_free(NULL);
    CHECK_EQ_INT(sg_conv_kind_from_name("kernel"), SG_KIND_KERNEL);
    CHECK_EQ_INT(sg_conv_kind_from_name("bogus"), -1);
    CHECK_EQ_INT(sg_engine_from_name("auto"), SG_ENGINE_AUTO);
    for (int k = 0; k < SG_KIND_COUNT; k++)
        CHECK_EQ_INT(sg_conv_kind_from_name(sg_conv_kind_name((enum sg_conv_kind)k)), k);
}

/* Winograd layers given whole: geometry, pruning, density, seed. */
struct wino_case {
    struct sg_conv_geom g;
    const char *spec;
    double d;
    uint64_t seed;
};

static void check_wino_cases(const struct wino_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) check_layer(c[i].g, 0, c[i].spec, c[i].d, c[i].seed);
}

SG_TEST(infer_auto_kind_by_kept_channels) {
    /* channel pruning of a 3x3 stride-1 layer keeps whole kernels of kc channels:
     * kernel rows for 1 or 2, Winograd from 3 up (never the thin sgemm, whose
     * inner dimension kc*9 is too short); filter pruning of an RGB layer runs
     * Winograd; a 5x5 layer (no Winograd) thins */
    static const struct {
        int c, k, r, kc, kf;
        enum sg_conv_kind want;
    } C[] = {{64, 16, 3, 1, 16, SG_KIND_KERNEL},  {64, 16, 3, 2, 16, SG_KIND_KERNEL},
             {64, 16, 3, 3, 16, SG_KIND_WINOGRAD}, {64, 16, 3, 13, 16, SG_KIND_WINOGRAD},
             {3, 16, 3, 3, 5, SG_KIND_WINOGRAD},   {64, 16, 5, 13, 16, SG_KIND_THIN}};
    /* partly kept kernels (vector and fine pruning) of a 3x3 stride-1 layer: Winograd
     * from 16 used channels; the direct kinds below that and for 5x5; whole kernels
     * (kernel pruning): Winograd from 3 */
    static const struct {
        int c, r;
        const char *spec;
        enum sg_conv_kind want;
    } P[] = {{64, 3, "vector", SG_KIND_WINOGRAD}, {64, 3, "fine", SG_KIND_WINOGRAD},
             {8, 3, "vector", SG_KIND_VECTOR},    {8, 3, "fine", SG_KIND_FINE},
             {64, 5, "fine", SG_KIND_FINE},
             /* whole kernels: Winograd from 3 used channels (an RGB layer), kernel
              * rows at 5x5 */
             {3, 3, "kernel", SG_KIND_WINOGRAD},  {8, 3, "kernel", SG_KIND_WINOGRAD},
             {8, 5, "kernel", SG_KIND_KERNEL}};
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        const int pad = P[i].r / 2;
        struct sg_conv_geom g = {1, P[i].c, 20, 20, 16, P[i].r, P[i].r, 1, 1, pad, pad, pad, pad, 1, 1, 1, 0, 0};
        CHECK_OK(sg_conv_geom_finish(&g));
        const size_t nw = (size_t)g.k * g.c * g.r * g.s;
        float *w = malloc(nw * sizeof *w);
        uint8_t *mask = malloc(nw);
        sg_rng r;
        sg_rng_seed(&r, 7 + i);
        fill(&r, w, nw, 1);
        memset(mask, 1, nw);
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        CHECK_OK(sg_prune_spec_parse(P[i].spec, &sp));
        struct sg_wview v = {"layer", g.k, g.c, g.r, g.s, w, mask, 0};
        CHECK_OK(sg_prune_layer_density(&sp, &v, 0.3));
        const enum sg_conv_kind got = sg_conv_plan_suggest(&g, 0, w, mask);
        CHECK_MSG(got == P[i].want, "c%d %dx%d %s@0.3: %s, want %s", P[i].c, P[i].r, P[i].r, P[i].spec,
                  sg_conv_kind_name(got), sg_conv_kind_name(P[i].want));
        free(w), free(mask);
    }
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        const int pad = C[i].r / 2;
        struct sg_conv_geom g = {1, C[i].c, 20, 20, C[i].k, C[i].r, C[i].r, 1, 1, pad, pad, pad, pad, 1, 1, 1, 0, 0};
        CHECK_OK(sg_conv_geom_finish(&g));
        const size_t nw = (size_t)g.k * g.c * g.r * g.s, per = (size_t)g.r * g.s;
        float *w = malloc(nw * sizeof *w);
        uint8_t *mask = calloc(nw, 1);
        for (size_t j = 0; j < nw; j++) w[j] = 0.01f * (float)(j % 97 + 1);
        for (int k = 0; k < C[i].kf; k++) /* the first kf filters keep the first kc channels */
            memset(mask + ((size_t)k * g.c) * per, 1, (size_t)C[i].kc * per);
        const enum sg_conv_kind got = sg_conv_plan_suggest(&g, 0, w, mask);
        CHECK_MSG(got == C[i].want, "c%d k%d %dx%d kc %d kf %d: %s, want %s", C[i].c, C[i].k, C[i].r, C[i].r,
                  C[i].kc, C[i].kf, sg_conv_kind_name(got), sg_conv_kind_name(C[i].want));
        free(w), free(mask);
    }
}

SG_TEST(infer_winograd_on_larger_layers) {
    /* several tile rows and chunks, ragged edges (P, Q not multiples of 4), batch 3,
     * asymmetric padding, C > 256 (narrower chunks), wide images without and with
     * wide left padding */
    static const struct wino_case C[] = {
        {{3, 24, 30, 29, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.3, 21},
        {{1, 300, 9, 10, 70, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1, 0, 0}, "filter", 0.5, 22},
        {{2, 16, 6, 6, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, "channel", 0.4, 23},
        /* segments of many tiles (rows 12 tiles wide or more) with no left padding,
         * and with two */
        {{2, 10, 23, 53, 12, 3, 3, 1, 1, 2, 0, 0, 2, 1, 1, 1, 0, 0}, "kernel", 0.4, 24},
        {{1, 6, 20, 61, 9, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1, 1, 0, 0}, "filter", 0.5, 25},
        /* vectors of several short tile rows (segments, 8 tiles wide or less) whose
         * outputs end on a tile's last column (Q a multiple of 4): VGG-16's 28x28
         * and 14x14 shapes, 16 and 8 wide, no padding, batch 2 and 3 (segments
         * across images) */
        {{2, 12, 28, 28, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.3, 26},
        {{1, 9, 14, 14, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "filter", 0.5, 27},
        {{3, 5, 16, 16, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.5, 28},
        {{2, 7, 10, 10, 6, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, "channel", 0.6, 29}};
    check_wino_cases(C, sizeof C / sizeof C[0]);
}

SG_TEST(infer_winograd_chunks_and_dense_rows) {
    /* tile rows a multiple of 4 tiles wide (contiguous output rows) and not; tiles
     * to lanes in one or several segments (tile rows of 1 to 17 tiles), ragged
     * right edges; chunks of 1 to 4 vectors of tiles and one shared chunk; dense rows (filter, channel)
     * with a kept count that is not a multiple of the register block; C = 1; more
     * than SGI_WCB channels (several channel blocks of the sparse rows) */
    static const struct {
        int n, c, hw, k;
        const char *spec;
        double d;
    } L[] = {{1, 1, 33, 7, "filter", 0.6},  {1, 5, 32, 13, "kernel", 0.3}, {1, 7, 64, 29, "filter", 0.3},
             {2, 9, 17, 31, "channel", 0.5}, {1, 130, 15, 50, "kernel", 0.3}, {1, 70, 28, 40, "filter", 0.4},
             {3, 3, 31, 5, "kernel", 0.5},  {1, 200, 12, 64, "kernel", 0.2}, {1, 6, 50, 11, "kernel", 0.4},
             {2, 4, 70, 9, "filter", 0.5},  {1, 17, 47, 6, "kernel", 0.6}, {2, 1, 64, 3, "channel", 1},
             /* one chunk shared by the threads: products by point, output
              * transforms in pieces of 16 rows (31 kept rows: a ragged last piece;
              * 15: one piece), kept counts not a multiple of the register block */
             {1, 64, 14, 100, "filter", 0.31}, {1, 40, 28, 50, "filter", 0.3},
             /* whole chunks whose sparse rows span two filter blocks (FBS = 256) */
             {1, 20, 56, 300, "kernel", 0.3},
             /* sparse rows in several channel blocks (128 channels for the chunks
              * of 3 vectors of a 28x28 layer; 512 for the one vector of a 14x14
              * layer, also at batch 3, whose chunks are wider) */
             {1, 300, 28, 24, "kernel", 0.3}, {3, 600, 14, 9, "kernel", 0.4},
             /* rows with no kept channel in the first block (density 0.01) */
             {1, 300, 28, 200, "kernel", 0.01}};
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++)
        check_layer((struct sg_conv_geom){L[i].n, L[i].c, L[i].hw, L[i].hw + (int)(i % 2), L[i].k, 3, 3, 1, 1, 1, 1,
                                          1, 1, 1, 1, 1, 0, 0},
                    0, L[i].spec, L[i].d, 30 + i);
}

SG_TEST(infer_winograd_direct_tail) {
    /* 1 or 2 tiles past the last full vector of 16 are summed directly: a shared
     * chunk with one tail tile (VGG-16's 28x28), clipped at the right and bottom
     * edges (26x26), with dense rows (filter, channel pruning), batch 2 (two tail
     * tiles across images), whole chunks (60x60: 14 vectors and one tile; 56x60
     * unpadded rows: 13 and two) whose tail rows are taken as the threads
     * finish; and four tiles past (56x56), more than SGI_WTAIL: a partial vector */
    static const struct wino_case C[] = {
        {{1, 20, 28, 28, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.3, 51},
        {{1, 9, 26, 26, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "filter", 0.5, 52},
        {{1, 13, 26, 26, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.4, 53},
        {{2, 6, 28, 28, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "channel", 0.5, 54},
        {{1, 16, 56, 56, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.3, 55},
        {{1, 20, 60, 60, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "kernel", 0.3, 56},
        {{1, 12, 58, 60, 40, 3, 3, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0}, "filter", 0.4, 57}};
    check_wino_cases(C, sizeof C / sizeof C[0]);
}

SG_TEST(infer_winograd_pruned_planes) {
    /* the planes of pruned filters are filled once per run, split evenly over the
     * threads at any float (not plane) boundary: planes whose size is not a
     * multiple of 16 floats, batch > 1, a few kept filters, kernel pruning sparse
     * enough to empty whole rows, and layers large enough to run on several
     * threads */
    static const struct wino_case C[] = {
        {{2, 9, 37, 19, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "filter", 0.2, 41},
        {{1, 20, 45, 33, 40, 3, 3, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0}, "kernel", 0.05, 42},
        {{3, 1, 13, 11, 9, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, "filter", 0.4, 43},
        {{1, 3, 64, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "filter", 0.3, 44}};
    check_wino_cases(C, sizeof C / sizeof C[0]);
}
