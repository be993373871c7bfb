/* Masked retraining on the thinned path (src/nn/conv_thin.c) equals the dense
 * masked path: a few SGD steps of a small VGG-7 under filter, channel and kernel
 * masks (and of LeNet-5, whose 5x5 layer runs through im2col, under kernel masks) give the same weights within fp tolerance, the same masks, pruned weights
 * exactly zero; and the same seed and thread count give bit-identical models.
 * Two steps: the two paths sum in different orders (differences of 1e-6), and
 * after a few more steps one ReLU or max-pool tie may go the other way on one
 * path and move a BN shift by 1e-3 relative (seen at step 3 here); the dense path
 * on one thread against two shows the same kind of drift. With F(4x4) tiles,
 * whose rounding is about ten times F(2x2)'s, such a tie went the other way at
 * step 2 and at step 1 of a batch of 96 (one channel of conv1_bn.beta off by
 * 1e-2 of the largest shift, the other channels within 1e-5; weights within
 * 5e-6), and with F(2x2) once the sparse products' sums were regrouped (4e-4):
 * BN shifts are held to 2e-2, everything else to 1e-4. Layer by layer the two
 * paths agree within 1e-5 (tests/test_conv_kernel.c, below). */
#include <math.h>

#include "harness.h"
#include "nn/ops.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

static const char *g_arch = "vgg7";

static struct sg_model *pruned_vgg(enum sg_granularity gran, double density) {
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build(g_arch, 1, 16, 16, 10, 5, &m));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = gran;
    struct sg_prune_result r;
    CHECK_OK(sg_prune_model(m, &pc, density, &r));
    return m;
}

static int g_tile;

static void train_few(struct sg_model *m, int thin, int threads) {
    static uint8_t px[96 * 256], lab[96];
    for (int i = 0; i < 96 * 256; i++) px[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < 96; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "synthetic", .n = 96, .c = 1, .h = 16, .w = 16, .classes = 10,
                           .mean = 120, .std = 70};
    d.pixels = px;
    d.labels = lab;
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = 48; /* two steps: see the top of the file */
    tc.lr = 0.02f;
    tc.schedule = SG_LR_CONSTANT;
    sg_set_threads(threads);
    sgi_conv_thin_enable(thin);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_conv_thin_enable(1);
}

static double g_density = 0.3;

static void check_gran1(enum sg_granularity gran) {
    struct sg_model *a = pruned_vgg(gran, g_density), *b = pruned_vgg(gran, g_density);
    uint8_t *mask0 = malloc(a->arena_len);
    memcpy(mask0, a->mask, a->arena_len);
    train_few(a, 1, 2);
    train_few(b, 0, 2);
    CHECK(memcmp(a->mask, mask0, a->arena_len) == 0);
    for (size_t i = 0; i < a->arena_len; i++)
        if (!a->mask[i]) CHECK(a->arena[i] == 0.0f && b->arena[i] == 0.0f);
    for (int32_t p = 0; p < a->n_params; p++) {
        const struct sg_param *pp = &a->params[p];
        const double err = sgt_max_rel_err(a->arena + pp->offset, b->arena + pp->offset, pp->count);
        const int shift = strstr(pp->name, "_bn.beta") != NULL;
        CHECK_MSG(err < (shift ? 2e-2 : 1e-4),
                  "%s F(%dx%d): param %d (%s) differs from the dense masked path by %g",
                  sg_granularity_name(gran), g_tile, g_tile, p, pp->name, err);
    }
    /* the same seed and threads: bit-identical */
    struct sg_model *c = pruned_vgg(gran, g_density);
    train_few(c, 1, 2);
    CHECK(memcmp(a->arena, c->arena, a->arena_len * sizeof(float)) == 0);
    sg_model_free(a), sg_model_free(b), sg_model_free(c);
    free(mask0);
}

/* with F(2x2) and with F(4x4) tiles on the Winograd layers */
static void check_gran(enum sg_granularity gran) {
    for (int m = 2; m <= 4; m += 2) {
        sgi_wino_train_tile(m);
        g_tile = m;
        check_gran1(gran);
    }
    sgi_wino_train_tile(0);
    g_tile = 0;
}

SG_TEST(thin_retrain_filter_equals_dense_masked) { check_gran(SG_GRAN_FILTER); }
SG_TEST(thin_retrain_channel_equals_dense_masked) { check_gran(SG_GRAN_CHANNEL); }
SG_TEST(thin_retrain_kernel_equals_dense_masked) { check_gran(SG_GRAN_KERNEL); }

/* LeNet-5's 5x5 layer under a kernel mask: the kept rows of its im2col columns
 * (no BN: batch-parallel threads, each with its own one-thread executor) */
SG_TEST(thin_retrain_kernel_im2col_equals_dense_masked) {
    g_arch = "lenet5";
    check_gran1(SG_GRAN_KERNEL);
    g_density = 0.1; /* whole filters empty too: thinned, then kernel-masked */
    check_gran1(SG_GRAN_KERNEL);
    g_density = 0.3;
    g_arch = "vgg7";
}

SG_TEST(thin_conv_matches_masked_dense_kernels) {
    /* one layer, odd shapes, 5x5 and 3x3; masked: filters 1 and 3 and channel 2
     * (mode 0), filters 1 and 3 only (1: x and dx in place), channels 2 and 4 only
     * (2: y and dy in place) */
    for (int mode = 0; mode < 6; mode++)
    for (int ks = 3; ks <= 7; ks += 2) {
        /* modes 3 and 4: mode 0 with F(2x2), then F(4x4) tiles; 5: mode 0 with about
         * half the kernels of the thinned layer dropped too (the thinned layer's
         * kernel path: Winograd, Winograd on small outputs, im2col columns) */
        sgi_wino_train_tile(mode < 3 || mode == 5 ? 0 : mode == 3 ? 2 : 4);
        sgi_conv_kernel_shares(mode == 5 ? 1.0 : -1, mode == 5 ? 1.0 : -1);
        /* ks 7: a 3x3 layer wide enough for Winograd (12 wide, 7 channels, 5 kept
         * in mode 0): the kept planes read and written in place through channel maps */
        struct sg_conv_geom g = {3, ks == 7 ? 7 : 5, 9, ks == 7 ? 12 : 7, 6, ks == 7 ? 3 : ks,
                                 ks == 7 ? 3 : ks, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        CHECK_OK(sg_conv_geom_finish(&g));
        sg_rng r;
        sg_rng_seed(&r, (uint64_t)ks);
        if (ks == 7) CHECK(sgi_wino_train_ok(&g));
        const size_t rs = (size_t)g.r * g.s, nw = (size_t)g.k * g.c * rs;
        const size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.k * g.p * g.q;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), b[6];
        uint8_t *mk = malloc(nw);
        for (size_t i = 0; i < nx; i++) x[i] = sg_rng_normal(&r);
        for (size_t i = 0; i < ny; i++) dy[i] = sg_rng_normal(&r);
        for (int k = 0; k < 6; k++) b[k] = sg_rng_normal(&r);
        int drop = 0;
        for (size_t i = 0; i < nw; i++) {
            const int k = (int)(i / (g.c * rs)), c = (int)(i / rs % g.c);
            const int fk = k == 1 || k == 3;
            if (i % rs == 0) drop = mode == 5 && sg_rng_uniform(&r) < 0.5;
            mk[i] = mode == 0 || mode > 2 ? !(fk || c == 2) : mode == 1 ? !fk : !(c == 2 || c == 4);
            mk[i] &= !drop;
            w[i] = mk[i] ? sg_rng_normal(&r) : 0.0f;
        }
        float *y[2], *dx[2], *dw[2], db[2][6];
        struct sgi_thin_buf tb = {0};
        for (int i = 0; i < 2; i++) {
            y[i] = malloc(ny * 4), dx[i] = calloc(nx, 4), dw[i] = malloc(nw * 4);
            if (i == 0) {
                CHECK(sgi_conv_thin_forward(&g, x, w, mk, b, y[0], 2, &tb));
                CHECK(sgi_conv_thin_backward(&g, x, w, mk, NULL, dy, dx[0], 0, dw[0], db[0], 2, &tb));
                /* dx written (set_dx): every entry, the bits of adding to zeros */
                float *ds = malloc(nx * 4), dws[6 * 64 * 9], dbs[6];
                for (size_t t = 0; t < nx; t++) ds[t] = NAN;
                CHECK(nw <= sizeof dws / sizeof dws[0]);
                CHECK(sgi_conv_thin_backward(&g, x, w, mk, NULL, dy, ds, 1, dws, dbs, 2, &tb));
                CHECK(memcmp(ds, dx[0], nx * 4) == 0);
                /* filters 1 and 3 dead (modes 0 and 1: every weight masked), their output
                 * gradient never written (NaN): the same dx and dw, their db 0 */
                if (mode <= 1) {
                    const size_t yp = (size_t)g.n * g.p * g.q;
                    float *dyn = malloc(ny * 4), *dxn = calloc(nx, 4), dbn[6];
                    memcpy(dyn, dy, ny * 4);
                    for (size_t t = 0; t < yp; t++) dyn[1 * yp + t] = dyn[3 * yp + t] = NAN;
                    const uint8_t dead[6] = {0, 1, 0, 1, 0, 0};
                    CHECK(sgi_conv_thin_backward(&g, x, w, mk, dead, dyn, dxn, 0, dws, dbn, 2, &tb));
                    CHECK(memcmp(dxn, dx[0], nx * 4) == 0);
                    CHECK(memcmp(dws, dw[0], nw * 4) == 0);
                    for (int k = 0; k < 6; k++)
                        CHECK(k == 1 || k == 3 ? dbn[k] == 0.0f : dbn[k] == db[0][k]);
                    free(dyn), free(dxn);
                }
                free(ds);
            } else {
                float *ws = sgt_nan_floats(sgi_conv_workspace(&g, 2) + 1);
                sgi_conv_forward(&g, x, w, b, y[1], ws, 2);
                sgi_conv_backward(&g, x, w, dy, dx[1], dw[1], db[1], ws, 2);
                for (size_t t = 0; t < nw; t++) dw[1][t] *= mk[t];
                free(ws);
            }
        }
        /* mode 5: where no kernel path runs the thinned layer (a 5x5 layer without
         * AVX-512), its dropped kernels' gradients are the dense ones (the update
         * masks them; the kernel paths give 0, tests/test_conv_kernel.c) */
        if (mode == 5)
            for (size_t t = 0; t < nw; t++) dw[0][t] *= mk[t];
        CHECK(sgt_max_rel_err(y[0], y[1], ny) < 1e-5);
        CHECK(sgt_max_rel_err(dx[0], dx[1], nx) < 1e-5);
        CHECK_MSG(sgt_max_rel_err(dw[0], dw[1], nw) < 1e-5, "mode %d ks %d: dw %g", mode, ks,
                  sgt_max_rel_err(dw[0], dw[1], nw));
        CHECK(sgt_max_rel_err(db[0], db[1], 6) < 1e-6);
        /* a mask that keeps almost everything: the dense kernel runs instead */
        memset(mk, 1, nw);
        CHECK(!sgi_conv_thin_forward(&g, x, w, mk, b, y[0], 2, &tb));
        sgi_thin_buf_free(&tb);
        for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]);
        free(x), free(w), free(dy), free(mk);
        sgi_wino_train_tile(0);
        sgi_conv_kernel_shares(-1, -1);
    }
}
