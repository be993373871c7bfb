/* nn ops: forward against naive references, backward against finite differences. */
#include <float.h>

#include "harness.h"
#include "nn/graph.h"
#include "core/sgi_kv.h"
#include "sparsegrain/nn.h"

static void fill(sg_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * sg_rng_normal(r);
}

/* NCHW <-> CNHW */
static void to_cnhw(const float *x, float *y, int n, int c, int hw) {
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(y + ((size_t)ch * n + b) * hw, x + ((size_t)b * c + ch) * hw, hw * sizeof *y);
}

static void check_conv(struct sg_conv_geom g, uint64_t seed) {
    CHECK_OK(sg_conv_geom_finish(&g));
    sg_rng r;
    sg_rng_seed(&r, seed);
    const int cg = g.c / g.groups;
    size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.k * cg * g.r * g.s,
           ny = (size_t)g.n * g.k * g.p * g.q;
    float *x = malloc(nx * 4), *xc = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(g.k * 4);
    float *yref = malloc(ny * 4), *yc = malloc(ny * 4), *y = malloc(ny * 4);
    float *col = sgt_nan_floats(sgi_conv_workspace(&g, 2) + 1);
    fill(&r, x, nx, 1);
    fill(&r, w, nw, 0.5f);
    fill(&r, b, g.k, 1);
    sg_conv2d_ref(&g, x, w, b, yref);
    to_cnhw(x, xc, g.n, g.c, g.h * g.w);
    sgi_conv_forward(&g, xc, w, b, yc, col, 2);
    to_cnhw(yref, y, g.n, g.k, g.p * g.q); /* reference in CNHW */
    double err = sgt_max_rel_err(yc, y, ny);
    CHECK_MSG(err < 1e-5, "conv n%d c%d %dx%d k%d %dx%d s%d,%d p%d,%d,%d,%d d%d g%d: rel err %g",
              g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.dh,
              g.groups, err);
    free(x), free(xc), free(w), free(b), free(yref), free(yc), free(y), free(col);
}

SG_TEST(conv_forward_matches_reference) {
    /* n c h w k r s sh sw pt pl pb pr dh dw groups */
    struct sg_conv_geom cases[] = {
        {2, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {3, 4, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 3, 10, 10, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 6, 8, 8, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* pointwise path */
        {2, 6, 8, 8, 4, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2, 0, 0},  /* strided 1x1, groups */
        {1, 4, 11, 9, 8, 3, 2, 1, 2, 2, 0, 1, 1, 2, 1, 2, 0, 0}, /* asym pads, dilation */
        {2, 6, 7, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 0, 0},  /* depthwise */
        {1, 2, 5, 5, 3, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* 1x1 output */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(cases[i], 10 + i);
}

SG_TEST(pool_forward_matches_reference) {
    sg_rng r;
    sg_rng_seed(&r, 5);
    struct sgi_pool cases[] = {
        {6, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 4, 4, 1},
        {4, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 4, 5, 1},
        {4, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 4, 5, 0},
        {3, 5, 5, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1},
        /* windows and strides unlike across and down, padding on two sides */
        {3, 7, 10, 2, 3, 1, 2, 1, 0, 0, 1, 7, 5, 1},
        {2, 9, 6, 3, 2, 2, 1, 0, 1, 1, 0, 4, 6, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct sgi_pool g = cases[t];
        size_t nx = (size_t)g.planes * g.h * g.w, ny = (size_t)g.planes * g.p * g.q;
        float *x = malloc(nx * 4), *ymax = malloc(ny * 4), *yavg = malloc(ny * 4);
        int32_t *arg = malloc(ny * 4);
        fill(&r, x, nx, 1);
        sgi_maxpool_forward(&g, x, ymax, arg);
        sgi_avgpool_forward(&g, x, yavg);
        for (int pl = 0; pl < g.planes; pl++)
            for (int p = 0; p < g.p; p++)
                for (int q = 0; q < g.q; q++) {
                    float mx = -FLT_MAX;
                    double s = 0;
                    int cnt = 0, cntpad = 0;
                    for (int i = 0; i < g.kh; i++)
                        for (int j = 0; j < g.kw; j++) {
                            int ih = p * g.sh - g.pt + i, iw = q * g.sw - g.pl + j;
                            if (ih < g.h + g.pb && iw < g.w + g.pr) cntpad++;
                            if (ih < 0 || iw < 0 || ih >= g.h || iw >= g.w) continue;
                            float v = x[((size_t)pl * g.h + ih) * g.w + iw];
                            mx = v > mx ? v : mx;
                            s += v;
                            cnt++;
                        }
                    size_t o = ((size_t)pl * g.p + p) * g.q + q;
                    CHECK(ymax[o] == mx);
                    CHECK(x[(size_t)pl * g.h * g.w + arg[o]] == mx);
                    CHECK_NEAR(yavg[o], s / (g.count_include_pad ? cntpad : cnt), 1e-5);
                }
        free(x), free(ymax), free(yavg), free(arg);
    }
}

/* The 2x2 stride-2 fast path (AVX-512: 16 windows a vector, masked tails) against
 * the plain rule on rows of 4, 12, 16, 20 and 33 windows and odd extents, with many
 * ties: the same maximum and the same argmax (the first of equal values in a row,
 * the top row unless the bottom one is strictly larger). */
SG_TEST(maxpool_2x2_fast_path_ties_and_tails) {
    sg_rng r;
    sg_rng_seed(&r, 77);
    const int shapes[][3] = {{8, 8, 4}, {24, 24, 12}, {32, 33, 16}, {40, 41, 20}, {9, 66, 33}, {3, 3, 1}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        struct sgi_pool g = {5, shapes[t][0], shapes[t][1], 2, 2, 2, 2, 0, 0, 0, 0,
                             shapes[t][0] / 2, shapes[t][2], 1};
        size_t nx = (size_t)g.planes * g.h * g.w, ny = (size_t)g.planes * g.p * g.q;
        float *x = malloc(nx * 4), *y = malloc((ny + 16) * 4);
        int32_t *arg = malloc((ny + 16) * 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(sg_rng_uniform(&r) * 4) - 1.5f; /* ties */
        for (int k = 0; k < 16; k++) y[ny + k] = 42, arg[ny + k] = 42; /* nothing written past */
        sgi_maxpool_forward(&g, x, y, arg);
        for (int pl = 0; pl < g.planes; pl++)
            for (int p = 0; p < g.p; p++)
                for (int q = 0; q < g.q; q++) {
                    const float *xp = x + (size_t)pl * g.h * g.w;
                    int i0 = 2 * p * g.w + 2 * q, i1 = i0 + g.w;
                    if (xp[i0 + 1] > xp[i0]) i0++;
                    if (xp[i1 + 1] > xp[i1]) i1++;
                    const int best = xp[i1] > xp[i0] ? i1 : i0;
                    const size_t o = ((size_t)pl * g.p + p) * g.q + q;
                    CHECK_MSG(y[o] == xp[best] && arg[o] == best,
                              "%dx%d -> %dx%d plane %d (%d,%d): %g@%d, want %g@%d", g.h, g.w, g.p,
                              g.q, pl, p, q, (double)y[o], arg[o], (double)xp[best], best);
                }
        for (int k = 0; k < 16; k++) CHECK(y[ny + k] == 42 && arg[ny + k] == 42);
        free(x), free(y), free(arg);
    }
}

/* ---- gradients: small graphs, analytic gradient of the loss vs central differences ---- */

typedef int32_t (*graph_fn)(struct sg_model *m, int32_t x);

static int32_t node(struct sg_model *m, enum sg_op op, const char *name, int32_t prev) {
    struct sg_node n;
    sg_node_init(&n, op, name);
    n.n_in = 1;
    n.in[0] = prev;
    return sg_model_add(m, &n);
}

static int32_t conv_node(struct sg_model *m, const char *name, int32_t prev, int k, int ks,
                         int stride, int pad, int groups) {
    int32_t i = node(m, SG_OP_CONV, name, prev);
    struct sg_node *n = &m->nodes[i];
    n->k = k;
    n->kh = n->kw = ks;
    n->sh = n->sw = stride;
    n->pt = n->pl = n->pb = n->pr = pad;
    n->groups = groups;
    n->has_bias = 1;
    return i;
}

/* Hash of the piecewise-linear pattern of the last forward: which ReLU outputs are
 * positive and where each max-pool window has its maximum. A finite difference
 * that crosses a kink says nothing about the derivative, so such points are skipped. */
static uint64_t pattern(const struct sg_model *m, const struct sg_exec *e) {
    uint64_t h = 1469598103934665603ull;
    int n;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        if (nd->op == SG_OP_RELU) {
            const float *y = sg_exec_output(e, i, &n);
            for (size_t t = 0; t < (size_t)nd->c * nd->h * nd->w * n; t++)
                h = (h ^ (y[t] > 0)) * 1099511628211ull;
        } else if (nd->op == SG_OP_MAXPOOL) {
            const struct sg_node *xn = &m->nodes[nd->in[0]];
            const float *x = sg_exec_output(e, nd->in[0], &n);
            for (int pl = 0; pl < xn->c * n; pl++)
                for (int p = 0; p < nd->h; p++)
                    for (int q = 0; q < nd->w; q++) {
                        int best = -1;
                        float bv = -FLT_MAX;
                        for (int a = 0; a < nd->kh; a++)
                            for (int b = 0; b < nd->kw; b++) {
                                int ih = p * nd->sh - nd->pt + a, iw = q * nd->sw - nd->pl + b;
                                if (ih < 0 || iw < 0 || ih >= xn->h || iw >= xn->w) continue;
                                float v = x[((size_t)pl * xn->h + ih) * xn->w + iw];
                                if (v > bv) bv = v, best = ih * xn->w + iw;
                            }
                        h = (h ^ (uint64_t)best) * 1099511628211ull;
                    }
        }
    }
    return h;
}

static double loss_at(struct sg_model *m, struct sg_exec *e, const float *x, int n,
                      const uint8_t *y, uint64_t *pat) {
    CHECK_OK(sg_forward(m, e, x, n, 1, NULL));
    if (pat) *pat = pattern(m, e);
    return sg_exec_loss(e, y, NULL, NULL);
}

/* Builds input(c,h,w) -> body -> flatten -> fc(classes); checks every parameter's
 * gradient (all of them for small tensors, a sample otherwise). */
static void gradcheck(const char *what, int c, int h, int w, graph_fn body, uint64_t seed) {
    struct sg_model *m = sg_model_new(what, c, h, w);
    struct sg_node in;
    sg_node_init(&in, SG_OP_INPUT, "input");
    int32_t x = sg_model_add(m, &in);
    x = body(m, x);
    x = node(m, SG_OP_FLATTEN, "flatten", x);
    int32_t f = node(m, SG_OP_FC, "fc", x);
    m->nodes[f].k = 5;
    m->nodes[f].has_bias = 1;
    CHECK_OK(sg_model_finalize(m));
    sg_model_init_weights(m, seed);
    sg_rng r;
    sg_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < m->arena_len; i++) /* non-trivial BN parameters and biases */
        if (m->arena[i] == 0.0f || m->arena[i] == 1.0f) m->arena[i] += 0.3f * sg_rng_normal(&r);
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind == SG_PARAM_BN_VAR) {
            float *v = sg_param_data(m, p);
            for (size_t i = 0; i < m->params[p].count; i++) v[i] = fabsf(v[i]) + 0.5f;
        }
    const int n = 3;
    float *xin = malloc(sizeof(float) * n * c * h * w);
    fill(&r, xin, (size_t)n * c * h * w, 1);
    uint8_t y[3] = {1, 4, 0};
    struct sg_exec *e;
    CHECK_OK(sgi_exec_new_train(m, n, &e)); /* the training loop's executor: BN + ReLU fused */
    float *grad = malloc(m->arena_len * 4);
    /* BN running statistics change in every training forward: keep a copy and restore */
    float *saved = malloc(m->arena_len * 4);
    memcpy(saved, m->arena, m->arena_len * 4);
    uint64_t base, pp1, pm1;
    loss_at(m, e, xin, n, y, &base);
    for (size_t i = 0; i < m->arena_len; i++) grad[i] = NAN; /* every entry written or cleared */
    CHECK_OK(sg_backward(m, e, grad));
    for (size_t i = 0; i < m->arena_len; i++)
        CHECK_MSG(isfinite(grad[i]), "%s: gradient %zu unset", what, i);
    int checked = 0, bad = 0, skipped = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind == SG_PARAM_BN_MEAN || pp->kind == SG_PARAM_BN_VAR) continue;
        size_t stride = pp->count > 40 ? pp->count / 40 : 1;
        for (size_t i = 0; i < pp->count; i += stride) {
            const size_t at = pp->offset + i;
            const float eps = 1e-3f;
            memcpy(m->arena, saved, m->arena_len * 4);
            m->arena[at] = saved[at] + eps;
            double lp = loss_at(m, e, xin, n, y, &pp1);
            memcpy(m->arena, saved, m->arena_len * 4);
            m->arena[at] = saved[at] - eps;
            double lm = loss_at(m, e, xin, n, y, &pm1);
            if (pp1 != base || pm1 != base) {
                skipped++;
                continue;
            }
            double fd = (lp - lm) / (2 * eps), an = grad[at];
            double tol = 2e-3 + 1e-2 * fabs(fd);
            checked++;
            if (fabs(fd - an) > tol) {
                bad++;
                fprintf(stderr, "    %s %s[%zu]: analytic %.6g, numeric %.6g\n", what, pp->name, i,
                        an, fd);
            }
        }
    }
    memcpy(m->arena, saved, m->arena_len * 4);
    CHECK_MSG(bad == 0, "%s: %d of %d gradients differ", what, bad, checked);
    CHECK_MSG(checked >= 3 * skipped, "%s: %d checked, %d skipped at kinks", what, checked,
              skipped);
    free(xin), free(grad), free(saved);
    sg_exec_free(e);
    sg_model_free(m);
}

static int32_t g_conv(struct sg_model *m, int32_t x) { return conv_node(m, "c", x, 4, 3, 1, 1, 1); }
static int32_t g_conv_stride(struct sg_model *m, int32_t x) {
    x = conv_node(m, "c1", x, 4, 3, 2, 1, 1);
    return conv_node(m, "c2", x, 4, 2, 1, 0, 2);
}
static int32_t g_conv_1x1(struct sg_model *m, int32_t x) {
    x = conv_node(m, "c1", x, 4, 3, 1, 0, 1);
    return conv_node(m, "c2", x, 6, 1, 1, 0, 2);
}
static int32_t g_relu(struct sg_model *m, int32_t x) {
    return node(m, SG_OP_RELU, "r", conv_node(m, "c", x, 4, 3, 1, 1, 1));
}
static int32_t g_maxpool(struct sg_model *m, int32_t x) {
    int32_t p = node(m, SG_OP_MAXPOOL, "p", conv_node(m, "c", x, 3, 3, 1, 1, 1));
    m->nodes[p].kh = m->nodes[p].kw = 3;
    m->nodes[p].sh = m->nodes[p].sw = 2;
    m->nodes[p].pt = m->nodes[p].pl = m->nodes[p].pb = m->nodes[p].pr = 1;
    return p;
}
static int32_t g_avgpool(struct sg_model *m, int32_t x) {
    int32_t p = node(m, SG_OP_AVGPOOL, "p", conv_node(m, "c", x, 3, 3, 1, 1, 1));
    m->nodes[p].kh = m->nodes[p].kw = 3;
    m->nodes[p].sh = m->nodes[p].sw = 2;
    m->nodes[p].pt = m->nodes[p].pl = m->nodes[p].pb = m->nodes[p].pr = 1;
    m->nodes[p].count_include_pad = 0;
    return p;
}
static int32_t g_gap(struct sg_model *m, int32_t x) {
    return node(m, SG_OP_GAP, "g", conv_node(m, "c", x, 6, 3, 1, 1, 1));
}
static int32_t g_bn(struct sg_model *m, int32_t x) {
    return node(m, SG_OP_BN, "bn", conv_node(m, "c", x, 4, 3, 1, 1, 1));
}
/* conv-BN-ReLU: BN and ReLU run fused in one pass (training executors) */
static int32_t g_bn_relu(struct sg_model *m, int32_t x) {
    return node(m, SG_OP_RELU, "r", node(m, SG_OP_BN, "bn", conv_node(m, "c", x, 4, 3, 1, 1, 1)));
}
/* a BN that feeds a ReLU and an add: not fused (its own output is read) */
static int32_t g_bn_two_uses(struct sg_model *m, int32_t x) {
    int32_t b = node(m, SG_OP_BN, "bn", conv_node(m, "c", x, 4, 3, 1, 1, 1));
    int32_t r = node(m, SG_OP_RELU, "r", b);
    int32_t s = node(m, SG_OP_ADD, "add", r);
    m->nodes[s].n_in = 2;
    m->nodes[s].in[1] = b;
    return s;
}
static int32_t g_residual(struct sg_model *m, int32_t x) {
    int32_t a = conv_node(m, "a", x, 4, 3, 1, 1, 1);
    int32_t b = node(m, SG_OP_RELU, "r", a);
    int32_t c = conv_node(m, "b", b, 4, 3, 1, 1, 1);
    int32_t s = node(m, SG_OP_ADD, "add", c);
    m->nodes[s].n_in = 2;
    m->nodes[s].in[1] = a; /* a feeds two consumers: gradients must add up */
    return s;
}
/* an add of one tensor to itself: its gradient written at the first input, added at the second */
static int32_t g_add_self(struct sg_model *m, int32_t x) {
    int32_t a = conv_node(m, "a", x, 4, 3, 1, 1, 1);
    int32_t s = node(m, SG_OP_ADD, "add", a);
    m->nodes[s].n_in = 2;
    m->nodes[s].in[1] = a;
    return node(m, SG_OP_RELU, "r", s);
}
static int32_t g_concat(struct sg_model *m, int32_t x) {
    int32_t a = conv_node(m, "a", x, 3, 3, 1, 1, 1);
    int32_t b = conv_node(m, "b", x, 2, 1, 1, 0, 1);
    int32_t c = node(m, SG_OP_CONCAT, "cat", a);
    m->nodes[c].n_in = 2;
    m->nodes[c].in[1] = b;
    return c;
}
static int32_t g_fc_stack(struct sg_model *m, int32_t x) {
    x = node(m, SG_OP_FLATTEN, "f0", conv_node(m, "c", x, 2, 3, 1, 0, 1));
    int32_t f = node(m, SG_OP_FC, "fc0", x);
    m->nodes[f].k = 7;
    m->nodes[f].has_bias = 1;
    return node(m, SG_OP_SOFTMAX, "sm", node(m, SG_OP_RELU, "r", f));
}

SG_TEST(grad_conv) { gradcheck("conv", 2, 6, 5, g_conv, 1); }
SG_TEST(grad_conv_stride_groups) { gradcheck("conv_stride", 2, 7, 7, g_conv_stride, 2); }
SG_TEST(grad_conv_pointwise) { gradcheck("conv_1x1", 2, 6, 6, g_conv_1x1, 3); }
SG_TEST(grad_relu) { gradcheck("relu", 2, 5, 5, g_relu, 4); }
SG_TEST(grad_maxpool) { gradcheck("maxpool", 2, 7, 6, g_maxpool, 5); }
SG_TEST(grad_avgpool) { gradcheck("avgpool", 2, 7, 6, g_avgpool, 6); }
SG_TEST(grad_gap) { gradcheck("gap", 2, 5, 4, g_gap, 7); }
SG_TEST(grad_batchnorm) { gradcheck("bn", 2, 4, 4, g_bn, 8); }
SG_TEST(grad_batchnorm_relu_fused) { gradcheck("bn_relu", 2, 5, 5, g_bn_relu, 12); }
SG_TEST(grad_batchnorm_two_uses) { gradcheck("bn_two_uses", 2, 5, 4, g_bn_two_uses, 13); }
SG_TEST(grad_residual_add) { gradcheck("residual", 2, 5, 5, g_residual, 9); }
SG_TEST(grad_add_self) { gradcheck("add_self", 2, 5, 5, g_add_self, 15); }
SG_TEST(grad_concat) { gradcheck("concat", 2, 5, 5, g_concat, 10); }
SG_TEST(grad_fc_softmax) { gradcheck("fc_softmax", 1, 6, 6, g_fc_stack, 11); }

SG_TEST(builtin_models_have_the_published_shapes) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 1, &m));
    size_t total = 0;
    for (int32_t i = 0; i < m->n_params; i++) total += m->params[i].count;
    CHECK_EQ_INT(total, 431080); /* Caffe LeNet-5 */
    CHECK(sg_model_find_param(m, "conv2.weight") >= 0);
    CHECK_EQ_INT(m->params[sg_model_find_param(m, "conv2.weight")].dims[1], 20);
    CHECK_EQ_INT(m->n_classes, 10);
    sg_model_free(m);
    CHECK_OK(sg_model_build("lenet300", 1, 28, 28, 10, 1, &m));
    total = 0;
    for (int32_t i = 0; i < m->n_params; i++) total += m->params[i].count;
    CHECK_EQ_INT(total, 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
    sg_model_free(m);
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 1, &m));
    CHECK_EQ_INT(m->params[sg_model_find_param(m, "fc1.weight")].dims[1], 128 * 3 * 3);
    sg_model_free(m);
    CHECK_OK(sg_model_build("resnet8", 1, 28, 28, 10, 1, &m));
    CHECK(sg_model_find_param(m, "block2_proj.weight") >= 0);
    CHECK(sg_model_find_param(m, "block1_proj.weight") < 0);
    CHECK_EQ_INT(m->nodes[m->output].c, 10);
    sg_model_free(m);
    CHECK_ERR(sg_model_build("alexnet", 1, 28, 28, 10, 1, &m), SG_ERR_ARG);
}

/* Naive NCHW backward: dw[k][c][r][s] = sum dy * x, dx[n][c][h][w] = sum dy * w, db = sum dy. */
static void conv_backward_ref(const struct sg_conv_geom *g, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db) {
    const int cg = g->c / g->groups, kg = g->k / g->groups;
    memset(dx, 0, sizeof(float) * g->n * g->c * g->h * g->w);
    memset(dw, 0, sizeof(float) * g->k * cg * g->r * g->s);
    memset(db, 0, sizeof(float) * g->k);
    for (int n = 0; n < g->n; n++)
        for (int k = 0; k < g->k; k++)
            for (int p = 0; p < g->p; p++)
                for (int q = 0; q < g->q; q++) {
                    const float d = dy[(((size_t)n * g->k + k) * g->p + p) * g->q + q];
                    db[k] += d;
                    for (int cc = 0; cc < cg; cc++)
                        for (int r = 0; r < g->r; r++)
                            for (int s = 0; s < g->s; s++) {
                                int ih = p * g->sh - g->pt + r * g->dh, iw = q * g->sw - g->pl + s * g->dw;
                                if (ih < 0 || iw < 0 || ih >= g->h || iw >= g->w) continue;
                                size_t xi = (((size_t)n * g->c + (k / kg) * cg + cc) * g->h + ih) * g->w + iw;
                                size_t wi = (((size_t)k * cg + cc) * g->r + r) * g->s + s;
                                dw[wi] += d * x[xi];
                                dx[xi] += d * w[wi];
                            }
                }
}

/* Both execution paths (threads over batch slices; one slice at a time with all
 * threads) and 1 thread, forward and backward, against the naive loops. */
SG_TEST(conv_paths_match_reference_forward_and_backward) {
    struct sg_conv_geom cases[] = {
        {40, 3, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* many slices */
        {9, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, /* LeNet conv2 */
        {3, 4, 9, 9, 6, 3, 3, 2, 2, 1, 0, 1, 1, 1, 1, 2, 0, 0},     /* few slices, groups */
        {17, 6, 7, 7, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},    /* pointwise */
        /* stride 2 (the vector row gather and scatter): ResNet's 3x3 and 1x1
         * projection shapes, odd and wide rows (more than 16 output columns),
         * asymmetric and wide padding, a stride-2 row with stride-1 height */
        {5, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {4, 5, 15, 15, 7, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {3, 3, 9, 71, 4, 3, 3, 2, 2, 1, 2, 0, 3, 1, 1, 1, 0, 0},
        {2, 2, 6, 66, 3, 3, 5, 1, 2, 0, 0, 1, 1, 1, 1, 1, 0, 0},
        {2, 2, 5, 40, 3, 3, 3, 2, 2, 3, 5, 3, 5, 1, 2, 1, 0, 0},
        {2, 3, 7, 7, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0}, /* stride 3: the scalar rows */
        /* stride 2, rows of at most 16 outputs (one masked vector per row): 16 exactly
         * (an odd input row of 31), wide left padding with dilation, padding past the
         * right edge, 1x1 with an odd input */
        {3, 2, 5, 31, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 3, 6, 20, 4, 3, 3, 2, 2, 2, 4, 1, 3, 1, 2, 1, 0, 0},
        {2, 2, 7, 9, 3, 2, 3, 2, 2, 0, 0, 2, 5, 1, 1, 1, 0, 0},
        {3, 4, 13, 13, 5, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        /* stride 2, 3 wide with left padding 1 (a kernel row's taps added at once):
         * rows of more than 32 input columns, no right padding on an odd row; a 1x1
         * projection on a row of more than 32 */
        {2, 3, 6, 66, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 2, 9, 9, 3, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 0, 0},
        {2, 3, 5, 67, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        /* stride 1 with output rows as wide as the input's (the plane path): ResNet's
         * 7x7, uneven and tall padding, 5x5, 1x3, groups */
        {20, 64, 7, 7, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {3, 5, 6, 7, 4, 3, 3, 1, 1, 0, 1, 2, 1, 1, 1, 1, 0, 0},
        {2, 2, 4, 6, 3, 3, 3, 1, 1, 3, 1, 0, 1, 1, 1, 1, 0, 0},
        {2, 3, 8, 8, 4, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0},
        {2, 3, 5, 9, 4, 1, 3, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0},
        {4, 6, 7, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, 0},
        /* stride-1 rows narrower than the input that read no horizontal padding (the
         * row path with the vertical range found once): padding above and below, 8
         * floats a row and not, a vertical stride and dilation, padding on one side
         * only (its other columns take the general rows), a kernel row with no output
         * row inside the input */
        {3, 4, 10, 12, 5, 3, 3, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0},
        {2, 3, 9, 12, 4, 5, 5, 1, 1, 2, 0, 2, 0, 1, 1, 1, 0, 0},
        {2, 3, 11, 12, 4, 3, 3, 2, 1, 2, 0, 2, 0, 2, 1, 1, 0, 0},
        {2, 2, 6, 10, 3, 3, 3, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0},
        {2, 2, 2, 9, 3, 3, 3, 1, 1, 4, 0, 0, 0, 1, 1, 1, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct sg_conv_geom g = cases[ci];
        CHECK_OK(sg_conv_geom_finish(&g));
        sg_rng r;
        sg_rng_seed(&r, 40 + ci);
        const int cg = g.c / g.groups;
        size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.k * cg * g.r * g.s,
               ny = (size_t)g.n * g.k * g.p * g.q;
        float *x = malloc(nx * 4), *xc = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4),
              *dyc = malloc(ny * 4), *y = malloc(ny * 4), *yref = malloc(ny * 4), *yrefc = malloc(ny * 4);
        float *dx = malloc(nx * 4), *dxref = malloc(nx * 4), *dxrefc = malloc(nx * 4), *dw = malloc(nw * 4),
              *dwref = malloc(nw * 4), *db = malloc(g.k * 4), *dbref = malloc(g.k * 4);
        fill(&r, x, nx, 1), fill(&r, w, nw, 0.3f), fill(&r, dy, ny, 1);
        to_cnhw(x, xc, g.n, g.c, g.h * g.w);
        to_cnhw(dy, dyc, g.n, g.k, g.p * g.q);
        sg_conv2d_ref(&g, x, w, NULL, yref);
        to_cnhw(yref, yrefc, g.n, g.k, g.p * g.q);
        conv_backward_ref(&g, x, w, dy, dxref, dwref, dbref);
        to_cnhw(dxref, dxrefc, g.n, g.c, g.h * g.w);
        for (int threads = 1; threads <= 2; threads++) {
            float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
            sgi_conv_forward(&g, xc, w, NULL, y, ws, threads);
            CHECK_MSG(sgt_max_rel_err(y, yrefc, ny) < 1e-5, "case %zu threads %d: forward", ci, threads);
            memset(dx, 0, nx * 4);
            sgi_conv_backward(&g, xc, w, dyc, dx, dw, db, ws, threads);
            CHECK_MSG(sgt_max_rel_err(dx, dxrefc, nx) < 1e-5, "case %zu threads %d: dx", ci, threads);
            CHECK_MSG(sgt_max_rel_err(dw, dwref, nw) < 1e-5, "case %zu threads %d: dw", ci, threads);
            CHECK_MSG(sgt_max_rel_err(db, dbref, g.k) < 1e-5, "case %zu threads %d: db", ci, threads);
            free(ws);
        }
        free(x), free(xc), free(w), free(dy), free(dyc), free(y), free(yref), free(yrefc);
        free(dx), free(dxref), free(dxrefc), free(dw), free(dwref), free(db), free(dbref);
    }
}

/* One input channel (the direct path of nn/conv.c: a padded plane, wide rows,
 * four filters by 64 outputs a block, 16 on AVX2): forward with and without bias, the weight
 * gradient alone (dx NULL, as for a first layer: the direct path) and with the
 * input gradient (im2col), on 1, 2 and 3 threads (a thread with no sample), against
 * the naive loops; K and R*S not multiples of the blocks, padding on any side,
 * 1x1 outputs and kernels, rows wider than a block; stride 2 and dilation (not
 * the direct path) alongside. */
SG_TEST(conv_one_channel_direct_matches_reference) {
    struct sg_conv_geom cases[] = {
        {9, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* LeNet-5 conv1 */
        {5, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},  /* VGG-7 conv1 */
        {3, 1, 7, 13, 7, 3, 2, 1, 1, 2, 0, 1, 3, 1, 1, 1, 0, 0},
        {2, 1, 5, 5, 1, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {4, 1, 6, 11, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {3, 1, 9, 9, 10, 7, 3, 1, 1, 3, 1, 3, 1, 1, 1, 1, 0, 0},
        {2, 1, 4, 100, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {1, 1, 3, 3, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0},
        {2, 1, 9, 9, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 1, 9, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct sg_conv_geom g = cases[ci];
        CHECK_OK(sg_conv_geom_finish(&g));
        sg_rng r;
        sg_rng_seed(&r, 90 + ci);
        size_t nx = (size_t)g.n * g.h * g.w, nw = (size_t)g.k * g.r * g.s,
               ny = (size_t)g.n * g.k * g.p * g.q;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(g.k * 4), *dy = malloc(ny * 4),
              *dyc = malloc(ny * 4), *y = malloc(ny * 4), *y0 = malloc(ny * 4),
              *yref = malloc(ny * 4), *yrefc = malloc(ny * 4);
        float *dx = malloc(nx * 4), *dxref = malloc(nx * 4), *dw = malloc(nw * 4),
              *dwref = malloc(nw * 4), *db = malloc(g.k * 4), *dbref = malloc(g.k * 4);
        fill(&r, x, nx, 1), fill(&r, w, nw, 0.3f), fill(&r, b, g.k, 1), fill(&r, dy, ny, 1);
        to_cnhw(dy, dyc, g.n, g.k, g.p * g.q); /* one channel: x is the same either way */
        sg_conv2d_ref(&g, x, w, b, yref);
        to_cnhw(yref, yrefc, g.n, g.k, g.p * g.q);
        conv_backward_ref(&g, x, w, dy, dxref, dwref, dbref);
        for (int threads = 1; threads <= 3; threads++) {
            float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
            sgi_conv_forward(&g, x, w, b, y, ws, threads);
            CHECK_MSG(sgt_max_rel_err(y, yrefc, ny) < 1e-5, "case %zu threads %d: forward", ci,
                      threads);
            sgi_conv_forward(&g, x, w, NULL, y0, ws, threads);
            for (int k = 0; k < g.k; k++)
                for (size_t i = 0; i < (size_t)g.n * g.p * g.q; i++) {
                    const size_t at = (size_t)k * g.n * g.p * g.q + i;
                    if (y[at] != y0[at] + b[k]) {
                        CHECK_MSG(0, "case %zu: bias not added once at %zu", ci, at);
                        k = g.k;
                        break;
                    }
                }
            for (int with_dx = 0; with_dx <= 1; with_dx++) {
                memset(dx, 0, nx * 4);
                for (size_t i = 0; i < nw; i++) dw[i] = 1e30f; /* overwritten, not added to */
                sgi_conv_backward(&g, x, w, dyc, with_dx ? dx : NULL, dw, db, ws, threads);
                if (with_dx)
                    CHECK_MSG(sgt_max_rel_err(dx, dxref, nx) < 1e-5, "case %zu threads %d: dx", ci,
                              threads);
                CHECK_MSG(sgt_max_rel_err(dw, dwref, nw) < 1e-5, "case %zu threads %d dx %d: dw",
                          ci, threads, with_dx);
                CHECK_MSG(sgt_max_rel_err(db, dbref, g.k) < 1e-5, "case %zu threads %d: db", ci,
                          threads);
            }
            free(ws);
        }
        free(x), free(w), free(b), free(dy), free(dyc), free(y), free(y0), free(yref), free(yrefc);
        free(dx), free(dxref), free(dw), free(dwref), free(db), free(dbref);
    }
}

/* The input gradient of stride-1 layers without padding through im2col (col2im: LeNet-5's
 * conv2 takes a path of its own for 8-float rows; AVX-512 builds run such layers in
 * image lanes unless told not to) has the bits of its definition: each
 * dx entry is what it held plus, in (r, s) order, the column entries dcol = W^T dy
 * (each one fused multiply-add chain over the filters in order, as the GEMM computes
 * them) of the taps that cover it. Added to a dx holding
 * values and -0 (-0 plus a tap's -0 stays -0: no +0 may be added in between), 1 and 2
 * threads, rows of 12, 16 and 17, kernels not square. */
SG_TEST(conv_input_gradient_adds_taps_in_order) {
    struct sg_conv_geom cases[] = {
        {3, 4, 12, 12, 5, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* LeNet-5's conv2, thinner */
        {2, 3, 9, 16, 4, 3, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {2, 2, 6, 17, 3, 2, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct sg_conv_geom g = cases[ci];
        CHECK_OK(sg_conv_geom_finish(&g));
        sg_rng r;
        sg_rng_seed(&r, 510 + ci);
        const int C = g.c, K = g.k, R = g.r, S = g.s, P = g.p, Q = g.q, H = g.h, W = g.w, N = g.n;
        const size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * S, ny = (size_t)N * K * P * Q;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), *d0 = malloc(nx * 4),
              *dx = malloc(nx * 4), *want = malloc(nx * 4), *dw = malloc(nw * 4);
        fill(&r, x, nx, 1), fill(&r, w, nw, 0.5f), fill(&r, dy, ny, 1), fill(&r, d0, nx, 1);
        for (size_t i = 0; i < nx; i += 7) d0[i] = -0.0f;
        /* [C][N][H][W] and [K][N][P][Q]: the layouts the kernels take */
        memcpy(want, d0, nx * 4);
        for (int c = 0; c < C; c++)
            for (int n = 0; n < N; n++)
                for (int ih = 0; ih < H; ih++)
                    for (int iw = 0; iw < W; iw++) {
                        float v = want[(((size_t)c * N + n) * H + ih) * W + iw];
                        for (int rr = 0; rr < R; rr++)
                            for (int ss = 0; ss < S; ss++) {
                                const int p = ih - rr, q = iw - ss;
                                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                                float acc = 0.0f;
                                for (int k = 0; k < K; k++)
                                    acc = fmaf(w[(((size_t)k * C + c) * R + rr) * S + ss],
                                               dy[(((size_t)k * N + n) * P + p) * Q + q], acc);
                                v += acc;
                            }
                        want[(((size_t)c * N + n) * H + ih) * W + iw] = v;
                    }
        sgi_conv_lanes_enable(0); /* im2col's bits (the lanes path: test_conv_lanes.c) */
        for (int threads = 1; threads <= 2; threads++) {
            float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
            memcpy(dx, d0, nx * 4);
            sgi_conv_backward(&g, x, w, dy, dx, dw, NULL, ws, threads);
            CHECK_MSG(memcmp(dx, want, nx * 4) == 0, "case %zu, %d threads: dx", ci, threads);
            free(ws);
        }
        sgi_conv_lanes_enable(1);
        free(x), free(w), free(dy), free(d0), free(dx), free(want), free(dw);
    }
}

SG_TEST(grad_conv_one_channel) { gradcheck("conv_c1", 1, 6, 5, g_conv, 14); }

/* Max-pool backward, 2x2 stride 2: written (set: dx filled with junk first; the
 * vector path) equals zeroing and adding dy at the argmax bit for bit, the
 * uncovered last row and column of odd extents included; and adding (set 0) adds
 * to what dx held. A 3x3 stride-2 pool (overlapping windows, the scalar path)
 * alongside. */
SG_TEST(maxpool_backward_set_and_add) {
    sg_rng r;
    sg_rng_seed(&r, 78);
    const int shapes[][4] = {{8, 8, 2, 2}, {24, 24, 2, 2}, {32, 33, 2, 2}, {40, 41, 2, 2},
                             {9, 66, 2, 2}, {3, 3, 2, 2}, {9, 9, 3, 2}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int h = shapes[t][0], w = shapes[t][1], k = shapes[t][2], st = shapes[t][3];
        struct sgi_pool g = {5, h, w, k, k, st, st, 0, 0, 0, 0, (h - k) / st + 1, (w - k) / st + 1, 1};
        size_t nx = (size_t)g.planes * h * w, ny = (size_t)g.planes * g.p * g.q;
        float *x = malloc(nx * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4);
        float *dx = malloc(nx * 4), *ref = malloc(nx * 4), *base = malloc(nx * 4);
        int32_t *arg = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(sg_rng_uniform(&r) * 4) - 1.5f;
        fill(&r, dy, ny, 1);
        dy[0] = -0.0f; /* 0 + -0 is +0 */
        fill(&r, base, nx, 1);
        sgi_maxpool_forward(&g, x, y, arg);
        memset(ref, 0, nx * 4);
        for (int pl = 0; pl < g.planes; pl++)
            for (size_t i = 0; i < (size_t)g.p * g.q; i++)
                ref[(size_t)pl * h * w + arg[(size_t)pl * g.p * g.q + i]] += dy[(size_t)pl * g.p * g.q + i];
        for (size_t i = 0; i < nx; i++) dx[i] = 42.0f;
        sgi_maxpool_backward(&g, dy, arg, dx, 1);
        CHECK_MSG(memcmp(dx, ref, nx * 4) == 0, "%dx%d k%d s%d: set differs", h, w, k, st);
        memcpy(dx, base, nx * 4);
        sgi_maxpool_backward(&g, dy, arg, dx, 0);
        int bad = 0;
        for (int pl = 0; pl < g.planes; pl++)
            for (size_t i = 0; i < (size_t)h * w; i++) {
                const size_t at = (size_t)pl * h * w + i;
                float want = base[at];
                for (size_t o = 0; o < (size_t)g.p * g.q; o++)
                    if ((size_t)arg[(size_t)pl * g.p * g.q + o] == i) want += dy[(size_t)pl * g.p * g.q + o];
                bad += dx[at] != want;
            }
        CHECK_MSG(bad == 0, "%dx%d k%d s%d: add differs at %d", h, w, k, st, bad);
        free(x), free(y), free(dy), free(dx), free(ref), free(base), free(arg);
    }
}

/* A one-channel convolution with its 2x2 max pool in one pass (ops.h,
 * sgi_conv_pool_*): the pool's output and argmax, dW and db with the bits of the two
 * ops one after the other (conv forward, pool forward; pool backward written, conv
 * weight gradient); ties in the pooled windows (integer inputs and weights), a -0
 * output gradient, odd outputs whose last row and column no window covers, padding,
 * batches not a multiple of the sample groups (8 for the direct path, 16 for the image
 * lanes' forward: 3x3, 5x5, 7x7 kernels) and filters not of the filter blocks; 1, 2
 * and 3 threads; and, in every other case, dead filters (weights and bias 0, flagged):
 * not run, their pooled channel 0, dw and db 0, the live filters' results unchanged. */
SG_TEST(conv_pool_fused_matches_the_two_ops) {
    struct sg_conv_geom cases[] = {
        {9, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},  /* LeNet-5 conv1 */
        {3, 1, 9, 12, 7, 3, 2, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0},    /* 9 x 11 outputs */
        {17, 1, 6, 6, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {1, 1, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {20, 1, 13, 13, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, /* 13 x 13: lanes, two groups */
        {33, 1, 12, 11, 6, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 1, 0, 0}, /* 12 x 11, 7x7 padded */
        {16, 1, 10, 10, 9, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0}, /* 10 x 10: 25 pooled */
        {32, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, /* LeNet-5 at its batch */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct sg_conv_geom g = cases[ci];
        CHECK_OK(sg_conv_geom_finish(&g));
        struct sgi_pool pg = {g.k * g.n, g.p, g.q, 2, 2, 2, 2, 0, 0, 0, 0, g.p / 2, g.q / 2, 1};
        if (!sgi_conv_pool_ok(&g, &pg)) { /* a build without the direct path */
            CHECK(!SGI_KV);
            continue;
        }
        sg_rng r;
        sg_rng_seed(&r, 300 + ci);
        const size_t nx = (size_t)g.n * g.h * g.w, rs = (size_t)g.r * g.s, nw = (size_t)g.k * rs,
                     ny = (size_t)g.n * g.k * g.p * g.q, np = (size_t)pg.planes * pg.p * pg.q,
                     run = (size_t)g.n * pg.p * pg.q;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(g.k * 4), *y = malloc(ny * 4),
              *dyc = malloc(ny * 4), *py0 = malloc(np * 4), *py1 = malloc(np * 4),
              *pdy = malloc(np * 4), *dw0 = malloc(nw * 4), *dw1 = malloc(nw * 4),
              *db0 = malloc(g.k * 4), *db1 = malloc(g.k * 4);
        int32_t *arg0 = malloc(np * 4), *arg1 = malloc(np * 4);
        uint8_t *dead = malloc((size_t)g.k);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(sg_rng_uniform(&r) * 3);
        for (size_t i = 0; i < nw; i++) w[i] = (float)(int)(sg_rng_uniform(&r) * 3) - 1.0f;
        fill(&r, b, g.k, 1), fill(&r, pdy, np, 1);
        pdy[0] = -0.0f; /* 0 + -0 is +0 */
        const int with_dead = ci % 2 == 1 && g.k > 1;
        for (int k = 0; k < g.k; k++) {
            dead[k] = with_dead && k % 3 == 1;
            if (dead[k]) {
                b[k] = 0.0f;
                memset(w + (size_t)k * rs, 0, rs * 4);
            }
        }
        for (int threads = 1; threads <= 3; threads++) {
            float *ws = sgt_nan_floats(sgi_conv_workspace(&g, threads) + 16);
            sgi_conv_forward(&g, x, w, b, y, ws, threads);
            sgi_maxpool_forward(&pg, y, py0, arg0);
            sgi_maxpool_backward(&pg, pdy, arg0, dyc, 1);
            sgi_conv_backward(&g, x, w, dyc, NULL, dw0, db0, ws, threads);
            for (size_t i = 0; i < np; i++) py1[i] = NAN, arg1[i] = -1;
            sgi_conv_pool_forward(&g, x, w, b, with_dead ? dead : NULL, &pg, py1, arg1, ws, threads);
            for (size_t i = 0; i < nw; i++) dw1[i] = NAN;
            for (int k = 0; k < g.k; k++) db1[k] = NAN;
            sgi_conv_pool_wgrad(&g, x, with_dead ? dead : NULL, &pg, pdy, arg1, dw1, db1, ws, threads);
            for (int k = 0; k < g.k; k++) {
                const float *a = py1 + (size_t)k * run;
                const int32_t *ai = arg1 + (size_t)k * run;
                if (dead[k]) {
                    int zero = db1[k] == 0.0f;
                    for (size_t i = 0; i < run; i++) zero &= a[i] == 0.0f && ai[i] == 0;
                    for (size_t i = 0; i < rs; i++) zero &= dw1[(size_t)k * rs + i] == 0.0f;
                    CHECK_MSG(zero, "case %zu threads %d: dead filter %d", ci, threads, k);
                    continue;
                }
                CHECK_MSG(memcmp(py0 + (size_t)k * run, a, run * 4) == 0 &&
                              memcmp(arg0 + (size_t)k * run, ai, run * 4) == 0,
                          "case %zu threads %d: pooled output of filter %d", ci, threads, k);
                CHECK_MSG(memcmp(dw0 + (size_t)k * rs, dw1 + (size_t)k * rs, rs * 4) == 0,
                          "case %zu threads %d: dw of filter %d", ci, threads, k);
                CHECK_MSG(memcmp(db0 + k, db1 + k, 4) == 0, "case %zu threads %d: db of filter %d",
                          ci, threads, k);
            }
            free(ws);
        }
        free(x), free(w), free(b), free(y), free(dyc), free(py0), free(py1), free(pdy);
        free(dw0), free(dw1), free(db0), free(db1), free(arg0), free(arg1), free(dead);
    }
}

/* The buffers of an n x c -> k fully connected test, in the order x, w, b, dy, y0, y1,
 * dw0, dw1, dx0, dx1, dxi, db0, db1 (sizes from their roles). */
static void fc_bufs(int n, int c, int k, float **bufs[13]) {
    const size_t nc = (size_t)n * c, kc = (size_t)k * c, kn = (size_t)k * n;
    const size_t len[13] = {nc, kc, (size_t)k, kn, kn, kn, kc, kc, nc, nc, nc, (size_t)k, (size_t)k};
    for (int i = 0; i < 13; i++) *bufs[i] = malloc(sizeof(float) * len[i]);
}

/* Fully connected layers on their live input features (ops.h, sgi_fc_*_live): with
 * the other features 0, the same bits as the whole layer; dW's dead columns written 0
 * (over NaN), dx's dead rows left as they were. Runs of live features of 1 to 40
 * (panels of 32, tails of 16 and less), the first and last features dead or live; one
 * thread, and two (the backward's runs shared by the threads). */
SG_TEST(fc_live_features_match_whole_layer) {
    static const int dims[][3] = {{32, 800, 500}, {7, 90, 13}, {16, 41, 40}, {1, 5, 3}};
    sg_rng r;
    sg_rng_seed(&r, 17);
    for (int th = 1; th <= 2; th++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (int pat = 0; pat < 3; pat++) {
                sg_set_threads(th);
                const int n = dims[di][0], c = dims[di][1], k = dims[di][2];
                float *x, *w, *b, *dy, *y0, *y1, *dw0, *dw1, *dx0, *dx1, *dxi, *db0, *db1;
                float **bufs[] = {&x, &w, &b, &dy, &y0, &y1, &dw0, &dw1, &dx0, &dx1, &dxi, &db0, &db1};
                fc_bufs(n, c, k, bufs);
                int *live = malloc(sizeof(int) * (size_t)c), nl = 0;
                for (int f = 0; f < c; f++) { /* runs of dead and live features */
                    const int run = pat == 0 ? 16 : pat == 1 ? 1 + f / 7 % 5 : 3 + f % 40 / 13;
                    if ((f / run + pat) % 3 != 1) live[nl++] = f;
                }
                for (int i = 0; i < c * n; i++) x[i] = 0.0f;
                for (int t = 0; t < nl; t++)
                    for (int j = 0; j < n; j++) x[(size_t)live[t] * n + j] = (float)sg_rng_uniform(&r) - 0.5f;
                for (int i = 0; i < k * c; i++) w[i] = (float)sg_rng_uniform(&r) - 0.5f, dw1[i] = NAN;
                for (int i = 0; i < k; i++) b[i] = (float)sg_rng_uniform(&r);
                for (int i = 0; i < k * n; i++) dy[i] = (float)sg_rng_uniform(&r) - 0.5f;
                for (int i = 0; i < c * n; i++) dx0[i] = dx1[i] = dxi[i] = (float)sg_rng_uniform(&r);
                sgi_fc_forward(n, c, k, x, w, b, y0);
                sgi_fc_forward_live(n, c, k, live, nl, x, w, b, y1);
                sgi_fc_backward(n, c, k, x, w, dy, dx0, dw0, db0);
                sgi_fc_backward_live(n, c, k, live, nl, x, w, dy, dx1, dw1, db1);
    #if SGI_KV /* the own kernels: the same bits (the whole layer's dW on AVX2 goes to OpenBLAS) */
                CHECK_MSG(memcmp(y0, y1, sizeof(float) * (size_t)k * n) == 0, "%dx%dx%d: forward", n, c, k);
                for (int t = 0; t < nl; t++)
                    CHECK_MSG(memcmp(dx0 + (size_t)live[t] * n, dx1 + (size_t)live[t] * n, sizeof(float) * n) == 0,
                              "%dx%dx%d: dx of feature %d", n, c, k, live[t]);
    #else
                for (int i = 0; i < k * n; i++) CHECK(fabsf(y0[i] - y1[i]) < 1e-4f);
                for (int t = 0; t < nl; t++)
                    for (int j = 0; j < n; j++)
                        CHECK(fabsf(dx0[(size_t)live[t] * n + j] - dx1[(size_t)live[t] * n + j]) < 1e-4f);
    #endif
    #ifdef __AVX512F__
                CHECK_MSG(memcmp(dw0, dw1, sizeof(float) * (size_t)k * c) == 0, "%dx%dx%d: dW", n, c, k);
    #else
                for (int i = 0; i < k * c; i++) CHECK(fabsf(dw0[i] - dw1[i]) < 1e-4f);
    #endif
                for (int f = 0, t = 0; f < c; f++) {
                    const int is_live = t < nl && live[t] == f;
                    t += is_live;
                    for (int i = 0; i < k && !is_live; i++) CHECK(dw1[(size_t)i * c + f] == 0.0f);
                    for (int j = 0; j < n && !is_live; j++) /* untouched */
                        CHECK(dx1[(size_t)f * n + j] == dxi[(size_t)f * n + j]);
                }
                CHECK(memcmp(db0, db1, sizeof(float) * (size_t)k) == 0);
                for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]);
                free(live);
            }
}

/* Fully connected layers on their kept rows (ops.h, sgi_fc_*_thin): the other rows of W
 * exactly 0, with all input features live or some dead (0 in x). The same bits as the
 * whole layer where its products are the own kernels' (AVX-512), within rounding
 * otherwise (dW on the kept rows: the whole layer computes the dead rows' too, which
 * training masks); y's dead rows = the bias, dW's other entries written 0 (over NaN), dx's
 * dead rows left as they were. Kept rows at the start, the end, in runs and alone. */
SG_TEST(fc_thin_rows_match_whole_layer) {
    static const int dims[][3] = {{32, 800, 500}, {7, 90, 13}, {16, 41, 40}, {1, 5, 3}, {64, 300, 100}};
    sg_rng r;
    sg_rng_seed(&r, 23);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (int pat = 0; pat < 4; pat++) {
            const int n = dims[di][0], c = dims[di][1], k = dims[di][2], all = pat >= 2;
            float *x, *w, *b, *dy, *y0, *y1, *dw0, *dw1, *dx0, *dx1, *dxi, *db0, *db1;
            float **bufs[] = {&x, &w, &b, &dy, &y0, &y1, &dw0, &dw1, &dx0, &dx1, &dxi, &db0, &db1};
            fc_bufs(n, c, k, bufs);
            int *live = malloc(sizeof(int) * (size_t)c), *rows = malloc(sizeof(int) * (size_t)k);
            int nl = 0, nr = 0;
            for (int f = 0; f < c; f++)
                if (all || (f / (1 + f % 3) + pat) % 3 != 1) live[nl++] = f;
            for (int i = 0; i < k; i++) /* every third row kept, or runs of two of five */
                if (pat % 2 ? i % 5 < 2 : i % 3 == (int)(di % 3)) rows[nr++] = i;
            if (nr == 0) rows[nr++] = k - 1;
            for (int i = 0; i < c * n; i++) x[i] = 0.0f;
            for (int t = 0; t < nl; t++)
                for (int j = 0; j < n; j++) x[(size_t)live[t] * n + j] = (float)sg_rng_uniform(&r) - 0.5f;
            for (int i = 0; i < k * c; i++) w[i] = 0.0f, dw1[i] = NAN;
            for (int t = 0; t < nr; t++)
                for (int f = 0; f < c; f++) w[(size_t)rows[t] * c + f] = (float)sg_rng_uniform(&r) - 0.5f;
            for (int i = 0; i < k; i++) b[i] = (float)sg_rng_uniform(&r);
            for (int i = 0; i < k * n; i++) dy[i] = (float)sg_rng_uniform(&r) - 0.5f;
            for (int i = 0; i < c * n; i++) dx0[i] = dx1[i] = dxi[i] = (float)sg_rng_uniform(&r);
            float *ws = malloc(sizeof(float) * sgi_fc_thin_ws(n, nr, all ? c : nl));
            sgi_fc_forward(n, c, k, x, w, b, y0);
            sgi_fc_forward_thin(n, c, k, rows, nr, all ? NULL : live, nl, x, w, b, y1, ws);
            sgi_fc_backward(n, c, k, x, w, dy, dx0, dw0, db0);
            sgi_fc_backward_thin(n, c, k, rows, nr, all ? NULL : live, nl, x, w, dy, dx1, dw1, db1, ws);
            int bad = 0;
#ifdef __AVX512F__
            bad += memcmp(y0, y1, sizeof(float) * (size_t)k * n) != 0;
            for (int t = 0; t < nr; t++) /* kept rows (the dead rows' are masked in training) */
                bad += memcmp(dw0 + (size_t)rows[t] * c, dw1 + (size_t)rows[t] * c, sizeof(float) * c) != 0;
            for (int t = 0; t < nl; t++)
                bad += memcmp(dx0 + (size_t)live[t] * n, dx1 + (size_t)live[t] * n, sizeof(float) * n) != 0;
#else
            for (int i = 0; i < k * n; i++) bad += !(fabsf(y0[i] - y1[i]) < 1e-4f);
            for (int t = 0; t < nr; t++)
                for (int f = 0; f < c; f++)
                    bad += !(fabsf(dw0[(size_t)rows[t] * c + f] - dw1[(size_t)rows[t] * c + f]) < 1e-4f);
            for (int t = 0; t < nl; t++)
                for (int j = 0; j < n; j++)
                    bad += !(fabsf(dx0[(size_t)live[t] * n + j] - dx1[(size_t)live[t] * n + j]) < 1e-4f);
#endif
            CHECK_MSG(bad == 0, "%dx%dx%d pattern %d: %d differences", n, c, k, pat, bad);
            for (int t = 0, i = 0; i < k; i++) { /* dead rows: y = b, dW = 0 */
                const int kept = t < nr && rows[t] == i;
                t += kept;
                for (int j = 0; j < n && !kept; j++) CHECK(y1[(size_t)i * n + j] == b[i]);
                for (int f = 0; f < c && !kept; f++) CHECK(dw1[(size_t)i * c + f] == 0.0f);
            }
            for (int f = 0, t = 0; f < c; f++) { /* dead features: dW 0, dx untouched */
                const int is_live = t < nl && live[t] == f;
                t += is_live;
                for (int i = 0; i < k && !is_live; i++) CHECK(dw1[(size_t)i * c + f] == 0.0f);
                for (int j = 0; j < n && !is_live; j++) CHECK(dx1[(size_t)f * n + j] == dxi[(size_t)f * n + j]);
            }
            CHECK(memcmp(db0, db1, sizeof(float) * (size_t)k) == 0);
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]);
            free(live), free(rows), free(ws);
        }
}
