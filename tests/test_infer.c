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
                                          SG_KIND_AUTO};
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
    for (size_t i = 0; i < NKINDS + 3; i++) {
        enum sg_conv_kind kind = i < NKINDS ? KINDS[i] : i == NKINDS + 2 ? SG_KIND_NM
                                                                           : SG_KIND_VECTOR;
        struct sg_conv_plan_opts o = {i == NKINDS + 2 ? 2 : 0, i == NKINDS ? 0 : i == NKINDS + 1 ? 1 : -1};
        struct sg_conv_plan *p;
        CHECK_OK(sg_conv_plan_new(&g, is_fc, w, mask, b, kind, &o, &p));
        for (size_t t = 0; t < ny; t++) y[t] = NAN; /* every output must be written */
        CHECK_OK(sg_conv_plan_run(p, g.n, xc, y));
        struct sg_conv_plan_info info;
        sg_conv_plan_get_info(p, &info);
        double err = sgt_max_rel_err(y, yrefc, ny);
        CHECK_MSG(err < 2e-5,
                  "%s n%d c%d %dx%d k%d %dx%d s%d p%d d%d %s@%g kind %s (ran %s): rel err %g",
                  is_fc ? "fc" : "conv", g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.sh, g.pt, g.dh,
                  spec_text, density, sg_conv_kind_name(kind), sg_conv_kind_name(info.kind), err);
        /* a second run reuses the scratch and must give the same bits */
        float *y2 = malloc(ny * 4);
        CHECK_OK(sg_conv_plan_run(p, g.n, xc, y2));
        CHECK(memcmp(y, y2, ny * 4) == 0);
        /* a smaller batch than the first run */
        if (g.n > 1) {
            CHECK_OK(sg_conv_plan_run(p, 1, x, y2)); /* n = 1: NCHW is CNHW */
            struct sg_conv_geom g1 = g;
            g1.n = 1;
            float *r1 = malloc((size_t)g.k * g.p * g.q * 4);
            sg_conv2d_ref(&g1, x, w, b, r1);
            CHECK(sgt_max_rel_err(y2, r1, (size_t)g.k * g.p * g.q) < 2e-5);
            free(r1);
        }
        free(y2);
        if (kind != SG_KIND_DENSE && kind != SG_KIND_THIN && kind != SG_KIND_AUTO) {
            CHECK(info.stored >= info.nnz);
        }
        sg_conv_plan_free(p);
    }
    free(x), free(xc), free(w), free(b), free(yref), free(yrefc), free(y), free(mask);
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
