/* prune: masks against a brute-force reference for every granularity x criterion,
 * exact counts, group invariance, idempotence, nesting, selection, schedules, and
 * masked weights staying zero through training. */
#include <math.h>

#include "harness.h"
#include "prune/prune_internal.h" /* sgi_band_sigmas */
#include "sparsegrain/prune.h"

struct layer {
    struct sg_wview v;
    float *w0; /* original weights */
};

static struct layer make_layer(int64_t k, int64_t c, int64_t r, int64_t s, uint64_t seed,
                               int quantised) {
    struct layer L;
    int64_t n = k * c * r * s;
    L.v = (struct sg_wview){"layer", k, c, r, s, malloc(n * 4), malloc(n), 0};
    L.w0 = malloc(n * 4);
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        float x = sg_rng_normal(&rng);
        if (quantised) x = roundf(x * 2) / 2; /* many exact ties */
        L.v.w[i] = L.w0[i] = x;
        L.v.mask[i] = 1;
    }
    return L;
}

static void free_layer(struct layer *L) {
    free(L->v.w), free(L->v.mask), free(L->w0);
}

/* Brute force: enumerate groups by their tile coordinates, list members in flat
 * order, score them, rank by (score desc, group index asc). */
static void reference_mask(const struct sg_prune_spec *sp, const struct sg_wview *v,
                           const float *w, const uint8_t *mask_in, int64_t keep, uint8_t *out) {
    const int64_t K = v->k, C = v->c, R = v->r, S = v->s, N = K * C * R * S;
    if (sp->gran == SG_GRAN_NM) {
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t s = 0; s < S; s++)
                    for (int64_t c0 = 0; c0 < C; c0 += sp->nm_m) {
                        int64_t len = C - c0 < sp->nm_m ? C - c0 : sp->nm_m;
                        int64_t kk = sp->nm_n < len ? sp->nm_n : len;
                        for (int64_t j = 0; j < len; j++) {
                            int64_t ij = ((k * C + c0 + j) * R + r) * S + s;
                            float sj = mask_in[ij] ? fabsf(w[ij]) : -1;
                            int64_t better = 0;
                            for (int64_t o = 0; o < len; o++) {
                                int64_t io = ((k * C + c0 + o) * R + r) * S + s;
                                float so = mask_in[io] ? fabsf(w[io]) : -1;
                                better += so > sj || (so == sj && o < j);
                            }
                            out[ij] = better < kk;
                        }
                    }
        return;
    }
    struct sg_tile t = sg_prune_tile(sp, v);
    int64_t nk = (K + t.k - 1) / t.k, nc = (C + t.c - 1) / t.c, nr = (R + t.r - 1) / t.r,
            ns = (S + t.s - 1) / t.s, G = nk * nc * nr * ns;
    float *score = malloc(G * 4);
    int64_t *gid = malloc(N * 8);
    for (int64_t g = 0; g < G; g++) {
        int64_t kb = g / (nc * nr * ns), cb = g / (nr * ns) % nc, rb = g / ns % nr, sb = g % ns;
        float l1 = 0, l2 = 0, mx = 0;
        int live = 0, size = 0;
        for (int64_t i = 0; i < N; i++) { /* members in flat order */
            int64_t k = i / (C * R * S), c = i / (R * S) % C, r = i / S % R, s = i % S;
            if (k / t.k != kb || c / t.c != cb || r / t.r != rb || s / t.s != sb) continue;
            gid[i] = g;
            float a = fabsf(w[i]);
            l1 += a;
            l2 += a * a;
            mx = a > mx ? a : mx;
            live |= mask_in[i];
            size++;
        }
        float sc = l1;
        if (sp->crit == SG_CRIT_L2) sc = sqrtf(l2);
        if (sp->crit == SG_CRIT_MAX) sc = mx;
        if (sp->crit == SG_CRIT_MEAN) sc = l1 / (float)size;
        score[g] = live ? sc : -1;
    }
    for (int64_t i = 0; i < N; i++) {
        int64_t g = gid[i], better = 0;
        for (int64_t o = 0; o < G; o++) better += score[o] > score[g] || (score[o] == score[g] && o < g);
        out[i] = better < keep;
    }
    free(score), free(gid);
}

static const char *const SPECS[] = {"fine", "vector", "vector:col", "kernel", "filter", "channel",
                                    "block:2x3x1x2", "block:1x4x1x1", "nm:2:4", "nm:1:3"};
static const int64_t SHAPES[][4] = {{5, 3, 3, 3}, {4, 6, 1, 1}, {7, 1, 5, 5},
                                    {6, 10, 3, 2}, {3, 7, 2, 3}, {1, 5, 3, 3}};

SG_TEST(prune_masks_match_brute_force) {
    int cases = 0;
    for (size_t si = 0; si < sizeof SPECS / sizeof SPECS[0]; si++)
        for (int crit = 0; crit < SG_CRIT_COUNT; crit++) {
            if (crit == SG_CRIT_RANDOM) continue; /* reference below uses magnitudes */
            for (size_t sh = 0; sh < sizeof SHAPES / sizeof SHAPES[0]; sh++)
                for (int quant = 0; quant < 2; quant++) {
                    struct sg_prune_spec sp;
                    sg_prune_spec_default(&sp);
                    CHECK_OK(sg_prune_spec_parse(SPECS[si], &sp));
                    sp.crit = (enum sg_criterion)crit;
                    if (sp.gran == SG_GRAN_NM && crit != SG_CRIT_L1) continue;
                    struct layer L = make_layer(SHAPES[sh][0], SHAPES[sh][1], SHAPES[sh][2],
                                                SHAPES[sh][3], 100 + sh * 7 + quant, quant);
                    int64_t n = sg_wview_count(&L.v), G = sg_prune_groups(&sp, &L.v);
                    /* start from an existing partial mask: dead groups must rank last */
                    for (int64_t i = 0; i < n; i += 5) L.v.mask[i] = 0, L.v.w[i] = 0;
                    uint8_t *m0 = malloc(n), *ref = malloc(n);
                    memcpy(m0, L.v.mask, n);
                    float *w = malloc(n * 4);
                    memcpy(w, L.v.w, n * 4);
                    for (int64_t keep = 0; keep <= G; keep += G > 6 ? G / 6 : 1) {
                        memcpy(L.v.mask, m0, n);
                        memcpy(L.v.w, w, n * 4);
                        CHECK_OK(sg_prune_layer(&sp, &L.v, keep));
                        reference_mask(&sp, &L.v, w, m0, keep, ref);
                        for (int64_t i = 0; i < n; i++) ref[i] &= m0[i]; /* nothing revives */
                        for (int64_t i = 0; i < n; i++) {
                            CHECK_MSG(L.v.mask[i] == ref[i],
                                      "%s %s shape %lldx%lldx%lldx%lld keep %lld: element %lld "
                                      "mask %d, reference %d",
                                      SPECS[si], sg_criterion_name(sp.crit), (long long)L.v.k,
                                      (long long)L.v.c, (long long)L.v.r, (long long)L.v.s,
                                      (long long)keep, (long long)i, L.v.mask[i], ref[i]);
                            CHECK(L.v.mask[i] ? L.v.w[i] == w[i] : L.v.w[i] == 0.0f);
                        }
                        cases++;
                    }
                    free(m0), free(ref), free(w);
                    free_layer(&L);
                }
        }
    CHECK(cases > 500);
}

/* Random criterion, every tile: exact kept count, constant within groups,
 * idempotent, and nested as density falls. */
SG_TEST(prune_counts_groups_idempotence_nesting) {
    for (size_t si = 0; si < 8; si++)
        for (int crit = 0; crit < SG_CRIT_COUNT; crit++)
            for (size_t sh = 0; sh < sizeof SHAPES / sizeof SHAPES[0]; sh++) {
                struct sg_prune_spec sp;
                sg_prune_spec_default(&sp);
                CHECK_OK(sg_prune_spec_parse(SPECS[si], &sp));
                sp.crit = (enum sg_criterion)crit;
                sp.seed = 9;
                struct layer L = make_layer(SHAPES[sh][0], SHAPES[sh][1], SHAPES[sh][2],
                                            SHAPES[sh][3], 7 + sh, 1);
                int64_t n = sg_wview_count(&L.v), G = sg_prune_groups(&sp, &L.v);
                uint8_t *prev = malloc(n);
                memset(prev, 1, n);
                const double dens[] = {0.8, 0.5, 0.31, 0.1, 0.0};
                for (int di = 0; di < 5; di++) {
                    CHECK_OK(sg_prune_layer_density(&sp, &L.v, dens[di]));
                    /* kept groups: count distinct groups with mask 1 */
                    struct sg_tile t = sg_prune_tile(&sp, &L.v);
                    int64_t nc = (L.v.c + t.c - 1) / t.c, nr = (L.v.r + t.r - 1) / t.r,
                            ns = (L.v.s + t.s - 1) / t.s;
                    int8_t *gm = malloc(G);
                    memset(gm, -1, G);
                    int64_t kept = 0;
                    for (int64_t i = 0; i < n; i++) {
                        int64_t k = i / (L.v.c * L.v.r * L.v.s), c = i / (L.v.r * L.v.s) % L.v.c,
                                r = i / L.v.s % L.v.r, s = i % L.v.s;
                        int64_t g = (((k / t.k) * nc + c / t.c) * nr + r / t.r) * ns + s / t.s;
                        if (gm[g] < 0) {
                            gm[g] = (int8_t)L.v.mask[i];
                            kept += L.v.mask[i];
                        }
                        CHECK_MSG(gm[g] == L.v.mask[i], "mask not constant within a group");
                        CHECK(!L.v.mask[i] || prev[i]); /* nested */
                    }
                    CHECK_EQ_INT(kept, (int64_t)floor(dens[di] * G + 0.5));
                    free(gm);
                    memcpy(prev, L.v.mask, n);
                    uint8_t *again = malloc(n);
                    CHECK_OK(sg_prune_layer_density(&sp, &L.v, dens[di]));
                    memcpy(again, L.v.mask, n);
                    CHECK(memcmp(again, prev, n) == 0); /* idempotent */
                    free(again);
                }
                free(prev);
                free_layer(&L);
            }
}

SG_TEST(nm_keeps_n_of_every_m_along_c) {
    struct sg_prune_spec sp;
    sg_prune_spec_default(&sp);
    CHECK_OK(sg_prune_spec_parse("2:4", &sp));
    CHECK(sp.gran == SG_GRAN_NM && sp.nm_n == 2 && sp.nm_m == 4);
    struct layer L = make_layer(3, 10, 3, 3, 5, 0);
    CHECK_OK(sg_prune_layer_density(&sp, &L.v, 0.5));
    for (int64_t k = 0; k < 3; k++)
        for (int64_t rs = 0; rs < 9; rs++)
            for (int64_t c0 = 0; c0 < 10; c0 += 4) {
                int kept = 0;
                for (int64_t c = c0; c < c0 + 4 && c < 10; c++) kept += L.v.mask[(k * 10 + c) * 9 + rs];
                CHECK_EQ_INT(kept, 2); /* the short last run of 2 keeps both */
            }
    free_layer(&L);
}

SG_TEST(select_kth_matches_sorting) {
    sg_rng r;
    sg_rng_seed(&r, 11);
    const size_t sizes[] = {1, 2, 17, 1000, 70000, 300000};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t n = sizes[t];
        float *x = malloc(n * 4), *sorted = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            float v = sg_rng_normal(&r);
            if (i % 3 == 0) v = roundf(v * 4); /* duplicates, negatives, zeros */
            x[i] = sorted[i] = v;
        }
        int cmp(const void *a, const void *b);
        qsort(sorted, n, 4, cmp);
        const size_t ks[] = {1, n / 3 + 1, n / 2 + 1, n};
        for (int j = 0; j < 4; j++) {
            size_t k = ks[j] > n ? n : ks[j];
            float th;
            size_t above;
            sg_select_kth(x, n, k, &th, &above);
            CHECK(th == sorted[k - 1]); /* descending order: k-th largest */
            size_t ab = 0;
            for (size_t i = 0; i < n; i++) ab += x[i] > th;
            CHECK_EQ_INT(above, ab);
        }
        free(x), free(sorted);
    }
}

int cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

SG_TEST(schedules_follow_their_formulas) {
    struct sg_sched agp = {SG_SCHED_AGP, 1.0, 0.1, 10, 0.8};
    for (int i = 0; i <= 100; i++) {
        double t = i / 100.0, want;
        if (t >= 0.8) want = 0.1;
        else {
            double j = floor(t / 0.8 * 10 + 1e-12), u = 1 - j / 10;
            want = 1 - (0.9 + (0.0 - 0.9) * u * u * u); /* s_f + (s_i - s_f)(1 - ...)^3 */
        }
        CHECK_NEAR(sg_sched_density(&agp, t), want, 1e-12);
    }
    CHECK_NEAR(sg_sched_density(&agp, 0), 1.0, 1e-12);
    struct sg_sched it = {SG_SCHED_ITERATIVE, 1.0, 0.125, 3, 0};
    CHECK_NEAR(sg_sched_density(&it, 0.0), 1.0, 1e-12);
    CHECK_NEAR(sg_sched_density(&it, 0.2), 0.5, 1e-12);
    CHECK_NEAR(sg_sched_density(&it, 0.5), 0.25, 1e-12);
    CHECK_NEAR(sg_sched_density(&it, 1.0), 0.125, 1e-12);
    struct sg_sched os = {SG_SCHED_ONESHOT, 1.0, 0.3, 1, 0};
    CHECK_NEAR(sg_sched_density(&os, 0.0), 0.3, 1e-12);
}

SG_TEST(spec_text_round_trips) {
    const char *ok[] = {"fine", "vector", "vector:col", "kernel", "filter", "channel",
                        "block:1x4x1x1", "nm:2:4"};
    for (int i = 0; i < 8; i++) {
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        CHECK_OK(sg_prune_spec_parse(ok[i], &sp));
        char buf[64];
        sg_prune_spec_format(&sp, buf, sizeof buf);
        CHECK_MSG(strcmp(buf, ok[i]) == 0, "%s -> %s", ok[i], buf);
    }
    const char *bad[] = {"kernal", "block:1x4x1", "block:0x1x1x1", "nm:5:4", "nm:2", "fine:3",
                         "vector:diag"};
    for (int i = 0; i < 7; i++) {
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        CHECK_ERR(sg_prune_spec_parse(bad[i], &sp), SG_ERR_ARG);
    }
    CHECK(sg_granularity_from_name("kernel") == SG_GRAN_KERNEL);
    CHECK(sg_criterion_from_name("random") == SG_CRIT_RANDOM);
    CHECK(sg_fc_mode_from_name("same") == SG_FC_SAME);
}

SG_TEST(model_scope_and_global_selection) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 3, &m));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_KERNEL;
    pc.fc = SG_FC_DENSE;
    struct sg_prune_result r;
    CHECK_OK(sg_prune_model(m, &pc, 0.3, &r));
    CHECK_EQ_INT(r.layers, 4); /* conv2..conv5: the first conv and the fc layers stay dense */
    CHECK_NEAR(r.density, 0.3, 0.01);
    int32_t c1 = sg_model_find_param(m, "conv1.weight"), f1 = sg_model_find_param(m, "fc1.weight");
    for (size_t i = 0; i < m->params[c1].count; i++) CHECK(sg_param_mask(m, c1)[i]);
    for (size_t i = 0; i < m->params[f1].count; i++) CHECK(sg_param_mask(m, f1)[i]);
    CHECK(strcmp(sg_meta_get(m, "granularity"), "kernel") == 0);
    sg_model_free(m);

    /* global: one threshold on mean |w| over kernels; total kept weights match */
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 3, &m));
    float *w0 = malloc(m->arena_len * 4);
    memcpy(w0, m->arena, m->arena_len * 4);
    pc.sel = SG_SEL_GLOBAL;
    pc.include_first = 1;
    pc.fc = SG_FC_FINE;
    CHECK_OK(sg_prune_model(m, &pc, 0.2, &r));
    CHECK_EQ_INT(r.layers, 7);
    CHECK_NEAR(r.density, 0.2, 0.002);
    /* one threshold: every kept group's mean |w| (kernels in conv, single weights in
     * fc) is at least every pruned group's, among the groups the selection decides
     * (sg_prune_follow then masks those of empty filters, those reading a channel
     * whose filter is empty and those computing a channel nobody reads: VGG-7 is a
     * chain of its weight layers) */
    int32_t wl[8];
    const int32_t nw = sg_model_weight_params(m, wl);
    CHECK_EQ_INT(nw, 7);
    float min_kept = INFINITY, max_pruned = 0;
    for (int32_t l = 0; l < nw; l++) {
        const int32_t p = wl[l];
        const struct sg_param *pp = &m->params[p];
        const size_t gsize = pp->layer == SG_LAYER_CONV ? (size_t)(pp->dims[2] * pp->dims[3]) : 1;
        const size_t cin = (size_t)pp->dims[1], kout = (size_t)pp->dims[0];
        const size_t hw = l > 0 ? cin / (size_t)m->params[wl[l - 1]].dims[0] : 1;
        for (size_t g = 0; g < pp->count / gsize; g++) {
            const size_t k = g / cin, c = (g % cin) / hw;
            int follow = 1; /* filter k empty? */
            for (size_t j = 0; j < cin * gsize; j++) follow &= !m->mask[pp->offset + k * cin * gsize + j];
            if (l > 0) { /* the producer's filter c empty? */
                const struct sg_param *q = &m->params[wl[l - 1]];
                const size_t per = q->count / (size_t)q->dims[0];
                int empty = 1;
                for (size_t j = 0; j < per; j++) empty &= !m->mask[q->offset + c * per + j];
                follow |= empty;
            }
            if (l + 1 < nw) { /* channel k read by the next layer? */
                const struct sg_param *q = &m->params[wl[l + 1]];
                const size_t qc = (size_t)q->dims[1], qg = q->count / ((size_t)q->dims[0] * qc);
                const size_t qhw = qc / kout;
                int read = 0;
                for (size_t f = 0; f < (size_t)q->dims[0] && !read; f++)
                    for (size_t j = 0; j < qhw * qg; j++)
                        read |= m->mask[q->offset + (f * qc + k * qhw) * qg + j];
                follow |= !read;
            }
            float mean = 0;
            for (size_t j = 0; j < gsize; j++) mean += fabsf(w0[pp->offset + g * gsize + j]);
            mean /= (float)gsize;
            if (m->mask[pp->offset + g * gsize]) min_kept = fminf(min_kept, mean);
            else if (!follow) max_pruned = fmaxf(max_pruned, mean);
        }
    }
    CHECK_MSG(min_kept >= max_pruned * (1 - 1e-6f), "kept %g < pruned %g", min_kept, max_pruned);
    free(w0);
    sg_model_free(m);
}

SG_TEST(masked_weights_stay_zero_through_training) {
    const char *dir = sgt_mnist_dir();
    CHECK_MSG(dir, "MNIST is not installed");
    struct sg_dataset *d, *sub;
    CHECK_OK(sg_dataset_load("mnist", dir, 1, &d));
    CHECK_OK(sg_dataset_view(d, 0, 1024, &sub));
    struct sg_model *m;
    CHECK_OK(sg_model_build("resnet8", 1, 28, 28, 10, 4, &m));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_VECTOR;
    pc.fc = SG_FC_FINE;
    CHECK_OK(sg_prune_model(m, &pc, 0.25, NULL));
    uint8_t *before = malloc(m->arena_len);
    memcpy(before, m->mask, m->arena_len);
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = 32;
    struct sg_train_state *st;
    CHECK_OK(sg_train_state_new(m, &st));
    CHECK_OK(sg_train(m, sub, &tc, st));
    size_t zeros = 0;
    for (size_t i = 0; i < m->arena_len; i++) {
        CHECK(m->mask[i] == before[i]);
        if (!m->mask[i]) {
            CHECK(m->arena[i] == 0.0f);
            CHECK(st->velocity[i] == 0.0f);
            zeros++;
        }
    }
    CHECK(zeros > 10000);
    free(before);
    sg_train_state_free(st);
    sg_model_free(m);
    sg_dataset_free(sub);
    sg_dataset_free(d);
}

/* Training works at all: LeNet-5 on 3000 MNIST images for one epoch is far above
 * chance (10%) on 1000 test images it never saw. */
SG_TEST(short_training_run_learns) {
    const char *dir = sgt_mnist_dir();
    CHECK_MSG(dir, "MNIST is not installed");
    struct sg_dataset *tr, *te, *trs, *tes;
    CHECK_OK(sg_dataset_load("mnist", dir, 1, &tr));
    CHECK_OK(sg_dataset_load("mnist", dir, 0, &te));
    CHECK_OK(sg_dataset_view(tr, 0, 3000, &trs));
    CHECK_OK(sg_dataset_view(te, 0, 1000, &tes));
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 1, &m));
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.lr = sg_model_default_lr(m);
    CHECK_OK(sg_train(m, trs, &tc, NULL));
    struct sg_eval_result r;
    CHECK_OK(sg_evaluate(m, tes, 250, &r));
    CHECK_MSG(r.top1 > 0.85, "top-1 %.3f after one epoch on 3000 images", r.top1);
    sg_model_free(m);
    sg_dataset_free(trs), sg_dataset_free(tes), sg_dataset_free(tr), sg_dataset_free(te);
}

/* Large layers take the threaded paths (two-pass flat selection with a resolved
 * boundary bucket, channel ranges per thread): masks against a sorted reference,
 * with ties (quantised weights) and without, at 1 and 2 threads. */
static const float *g_score;
static int by_score_then_index(const void *a, const void *b) {
    const int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (g_score[i] != g_score[j]) return g_score[i] > g_score[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

SG_TEST(prune_large_layers_match_sorted_reference) {
    static const char *const specs[] = {"fine", "vector", "kernel", "filter",
                                        "channel", "vector:col", "block:1x4x1x1"};
    const int64_t K = 64, C = 128, R = 3, S = 3, N = K * C * R * S;
    for (int quant = 0; quant < 2; quant++)
        for (size_t si = 0; si < sizeof specs / sizeof specs[0]; si++)
            for (int crit = 0; crit < 2; crit++) {
                struct sg_prune_spec sp;
                sg_prune_spec_default(&sp);
                CHECK_OK(sg_prune_spec_parse(specs[si], &sp));
                sp.crit = crit ? SG_CRIT_MAX : SG_CRIT_L1;
                struct layer L = make_layer(K, C, R, S, 300 + si, quant);
                const struct sg_tile t = sg_prune_tile(&sp, &L.v);
                /* sums of unquantised floats depend on order: only short groups then */
                if (!quant && crit == 0 && t.k * t.c * t.r * t.s > S) {
                    free_layer(&L);
                    continue;
                }
                for (int64_t i = 0; i < N; i += 7) L.v.mask[i] = 0, L.v.w[i] = 0;
                const int64_t G = sg_prune_groups(&sp, &L.v);
                float *score = calloc(G, 4), *w = malloc(N * 4);
                uint8_t *live = calloc(G, 1), *m0 = malloc(N);
                int64_t *order = malloc(G * 8), *gid = malloc(N * 8);
                memcpy(w, L.v.w, N * 4), memcpy(m0, L.v.mask, N);
                const int64_t nc = (C + t.c - 1) / t.c, nr = (R + t.r - 1) / t.r,
                              ns = (S + t.s - 1) / t.s;
                for (int64_t i = 0; i < N; i++) { /* members in flat order */
                    const int64_t k = i / (C * R * S), c = i / (R * S) % C, r = i / S % R,
                                  s = i % S;
                    const int64_t g = ((k / t.k * nc + c / t.c) * nr + r / t.r) * ns + s / t.s;
                    gid[i] = g;
                    const float a = fabsf(w[i]);
                    score[g] = crit ? (a > score[g] ? a : score[g]) : score[g] + a;
                    live[g] |= m0[i];
                }
                for (int64_t g = 0; g < G; g++) {
                    if (!live[g]) score[g] = -1;
                    order[g] = g;
                }
                g_score = score;
                qsort(order, G, 8, by_score_then_index);
                uint8_t *kept = malloc(G);
                const int64_t keeps[] = {1, G * 3 / 10, G * 7 / 10, G - 1};
                for (int th = 1; th <= 2; th++) {
                    sg_set_threads(th);
                    for (size_t ki = 0; ki < 4; ki++) {
                        memcpy(L.v.w, w, N * 4), memcpy(L.v.mask, m0, N);
                        CHECK_OK(sg_prune_layer(&sp, &L.v, keeps[ki]));
                        memset(kept, 0, G);
                        for (int64_t j = 0; j < keeps[ki]; j++) kept[order[j]] = 1;
                        int64_t bad = 0;
                        for (int64_t i = 0; i < N; i++)
                            bad += L.v.mask[i] != (kept[gid[i]] && m0[i]) ||
                                   (L.v.mask[i] ? L.v.w[i] != w[i] : L.v.w[i] != 0.0f);
                        CHECK_MSG(bad == 0, "%s %s quant %d threads %d keep %lld: %lld wrong",
                                  specs[si], sg_criterion_name(sp.crit), quant, th,
                                  (long long)keeps[ki], (long long)bad);
                    }
                }
                sg_set_threads(0);
                free(kept), free(score), free(w), free(live), free(m0), free(order), free(gid);
                free_layer(&L);
            }
}

/* N:M on layers large enough for the threaded row paths (1x1 rows with M of 2, 4,
 * 8 and others, C not a multiple of M; 3x3 kernels), with and without ties and
 * dead weights, against the brute-force reference. */
SG_TEST(nm_large_layers_match_brute_force) {
    static const char *const specs[] = {"nm:2:4", "nm:1:2", "nm:3:8", "nm:1:3", "nm:5:16"};
    static const int64_t shapes[][4] = {{40, 4099, 1, 1}, {64, 4096, 1, 1}, {32, 130, 3, 3}};
    for (size_t si = 0; si < sizeof specs / sizeof specs[0]; si++)
        for (size_t sh = 0; sh < 3; sh++)
            for (int quant = 0; quant < 2; quant++) {
                struct sg_prune_spec sp;
                sg_prune_spec_default(&sp);
                CHECK_OK(sg_prune_spec_parse(specs[si], &sp));
                struct layer L = make_layer(shapes[sh][0], shapes[sh][1], shapes[sh][2],
                                            shapes[sh][3], 500 + sh, quant);
                const int64_t n = sg_wview_count(&L.v);
                if (n <= 0) continue; /* never: the shapes are fixed */
                for (int64_t i = 0; i < n; i += 11) L.v.mask[i] = 0, L.v.w[i] = 0;
                uint8_t *m0 = malloc(n), *ref = malloc(n);
                float *w = malloc(n * 4);
                memcpy(m0, L.v.mask, n), memcpy(w, L.v.w, n * 4);
                reference_mask(&sp, &L.v, w, m0, 0, ref);
                for (int64_t i = 0; i < n; i++) ref[i] &= m0[i]; /* dead weights stay dead */
                for (int th = 1; th <= 2; th++) {
                    sg_set_threads(th);
                    memcpy(L.v.w, w, n * 4), memcpy(L.v.mask, m0, n);
                    CHECK_OK(sg_prune_layer(&sp, &L.v, 0));
                    int64_t bad = 0;
                    for (int64_t i = 0; i < n; i++)
                        bad += L.v.mask[i] != ref[i] ||
                               (L.v.mask[i] ? L.v.w[i] != w[i] : L.v.w[i] != 0.0f);
                    CHECK_MSG(bad == 0, "%s shape %d quant %d threads %d: %lld wrong", specs[si],
                              (int)sh, quant, th, (long long)bad);
                }
                sg_set_threads(0);
                free(m0), free(ref), free(w);
                free_layer(&L);
            }
}

/* Layers with enough groups for the sampled band (band.c), and channels (rows of
 * 1x1 weights, threaded), every criterion: masks against sg_prune_scores ranked
 * by sorting. Patterns: normal weights, quantised ones (many ties), all equal (a
 * band too wide to use), weights large with the period of the sample blocks, and
 * a band too narrow to hold the threshold. Misses must fall back to the exact
 * histogram path with the same result. */
static int64_t gid(const struct sg_prune_spec *sp, const struct sg_wview *v, int64_t i) {
    const struct sg_tile t = sg_prune_tile(sp, v);
    const int64_t C = v->c, R = v->r, S = v->s, nc = (C + t.c - 1) / t.c,
                  nr = (R + t.r - 1) / t.r, ns = (S + t.s - 1) / t.s;
    const int64_t k = i / (C * R * S), c = i / (R * S) % C, r = i / S % R, s = i % S;
    return ((k / t.k * nc + c / t.c) * nr + r / t.r) * ns + s / t.s;
}

static void check_against_sorted(const struct sg_prune_spec *sp, struct layer *L,
                                 const int64_t *keeps, int nk, const char *what) {
    const int64_t N = sg_wview_count(&L->v), G = sg_prune_groups(sp, &L->v);
    float *score = malloc(G * 4), *w = malloc(N * 4);
    uint8_t *m0 = malloc(N);
    int64_t *order = malloc(G * 8), *rank = malloc(G * 8), *g_of = malloc(N * 8);
    memcpy(w, L->v.w, N * 4), memcpy(m0, L->v.mask, N);
    CHECK_OK(sg_prune_scores(sp, &L->v, score));
    for (int64_t g = 0; g < G; g++) order[g] = g;
    g_score = score;
    qsort(order, G, 8, by_score_then_index);
    for (int64_t j = 0; j < G; j++) rank[order[j]] = j;
    for (int64_t i = 0; i < N; i++) g_of[i] = gid(sp, &L->v, i);
    for (int th = 1; th <= 2; th++) {
        sg_set_threads(th);
        for (int ki = 0; ki < nk; ki++) {
            const int64_t keep = keeps[ki];
            CHECK_OK(sg_prune_layer(sp, &L->v, keep));
            int64_t bad = 0;
            for (int64_t i = 0; i < N; i++)
                bad += L->v.mask[i] != (rank[g_of[i]] < keep && m0[i]) ||
                       (L->v.mask[i] ? L->v.w[i] != w[i] : L->v.w[i] != 0.0f);
            CHECK_MSG(bad == 0, "%s %s %s %lldx%lldx%lldx%lld threads %d keep %lld: %lld wrong",
                      sg_granularity_name(sp->gran), sg_criterion_name(sp->crit), what,
                      (long long)L->v.k, (long long)L->v.c, (long long)L->v.r, (long long)L->v.s,
                      th, (long long)keep, (long long)bad);
            memcpy(L->v.w, w, N * 4), memcpy(L->v.mask, m0, N);
        }
    }
    sg_set_threads(0);
    free(score), free(w), free(m0), free(order), free(rank), free(g_of);
}

SG_TEST(prune_large_layers_every_criterion) {
    static const char *const specs[] = {"fine", "vector", "kernel", "vector:col", "channel"};
    static const int64_t shapes[][4] = {
        {128, 128, 3, 3}, {200, 400, 1, 1}, {32, 128, 5, 5}, {24, 1024, 1, 7}};
    for (size_t sh = 0; sh < 4; sh++)
        for (int pat = 0; pat < 4; pat++) {
            struct layer L = make_layer(shapes[sh][0], shapes[sh][1], shapes[sh][2],
                                        shapes[sh][3], 700 + sh, pat == 1);
            const int64_t N = sg_wview_count(&L.v);
            if (pat == 2)
                for (int64_t i = 0; i < N; i++) L.v.w[i] = 0.5f;
            for (int64_t i = 0; i < N; i += 13) L.v.mask[i] = 0, L.v.w[i] = 0;
            for (size_t si = 0; si < 5; si++)
                for (int crit = 0; crit < SG_CRIT_COUNT; crit++) {
                    /* every criterion on normal weights; fewer on the rest, and only
                     * the band's granularities on equal weights and a narrow band */
                    if ((pat == 1 && crit != SG_CRIT_L1 && crit != SG_CRIT_RANDOM) ||
                        (pat >= 2 && (crit != SG_CRIT_L1 || si >= 3)))
                        continue;
                    sgi_band_sigmas = pat == 3 ? 0 : 8; /* 3: a band too narrow to hit */
                    struct sg_prune_spec sp;
                    sg_prune_spec_default(&sp);
                    CHECK_OK(sg_prune_spec_parse(specs[si], &sp));
                    sp.crit = (enum sg_criterion)crit;
                    sp.seed = 5;
                    const int64_t G = sg_prune_groups(&sp, &L.v);
                    const int64_t keeps[] = {1, G / 100, G * 3 / 10, G * 9 / 10, G - 1};
                    check_against_sorted(&sp, &L, keeps, 5,
                                         pat == 0   ? "normal"
                                         : pat == 1 ? "ties"
                                         : pat == 2 ? "equal"
                                                    : "narrow band");
                }
            free_layer(&L);
        }
    sgi_band_sigmas = 8;
    /* 2048 x 2048: a sample of 2048 blocks of 32 weights, one block per 2048
     * weights; the first 32 of every 2048 are the largest */
    struct layer L = make_layer(2048, 2048, 1, 1, 77, 0);
    for (int64_t i = 0; i < 2048 * 2048; i++)
        L.v.w[i] = i % 2048 < 32 ? 10 + fabsf(L.v.w[i]) : L.v.w[i];
    struct sg_prune_spec sp;
    sg_prune_spec_default(&sp);
    const int64_t keeps[] = {2048 * 2048 * 3 / 10, 2048 * 2048 / 100};
    check_against_sorted(&sp, &L, keeps, 2, "against the sample");
    free_layer(&L);
}

/* Whatever is asked of a pruned model, no pruned weight comes back: pruning again
 * at a higher density, at a coarser granularity, with a global threshold, with a
 * profile, with N:M, or with a random ranking. */
static size_t revived(const struct sg_model *m, const uint8_t *before) {
    size_t n = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        for (size_t i = 0; i < pp->count; i++) {
            const size_t at = pp->offset + i;
            n += !before[at] && (m->mask[at] || m->arena[at] != 0.0f);
        }
    }
    return n;
}

SG_TEST(prune_never_revives_a_pruned_group) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 5, &m));
    const size_t total = m->arena_len;
    uint8_t *before = malloc(total);
    struct sg_profile prof = {0};
    char names[16][SG_NAME_MAX];
    double dens[16];
    prof.names = names, prof.density = dens;
    for (int32_t p = 0; p < m->n_params && prof.n < 16; p++)
        if (strstr(m->params[p].name, ".weight")) {
            snprintf(names[prof.n], SG_NAME_MAX, "%s", m->params[p].name);
            dens[prof.n++] = 0.9;
        }
    struct step {
        const char *gran;
        enum sg_selection sel;
        enum sg_criterion crit;
        double density;
    } steps[] = {
        {"fine", SG_SEL_LAYER, SG_CRIT_L1, 0.5},     {"fine", SG_SEL_LAYER, SG_CRIT_L1, 0.8},
        {"kernel", SG_SEL_LAYER, SG_CRIT_L1, 0.7},   {"filter", SG_SEL_LAYER, SG_CRIT_L2, 0.9},
        {"vector", SG_SEL_GLOBAL, SG_CRIT_L1, 0.95}, {"kernel", SG_SEL_PROFILE, SG_CRIT_MAX, 0},
        {"nm:2:4", SG_SEL_LAYER, SG_CRIT_L1, 1},     {"fine", SG_SEL_LAYER, SG_CRIT_RANDOM, 0.9},
        {"block:1x2x1x1", SG_SEL_GLOBAL, SG_CRIT_RANDOM, 0.99},
    };
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        memcpy(before, m->mask, total);
        struct sg_prune_cfg c;
        sg_prune_cfg_default(&c);
        CHECK_OK(sg_prune_spec_parse(steps[k].gran, &c.spec));
        c.spec.crit = steps[k].crit;
        c.spec.seed = 11;
        c.sel = steps[k].sel;
        c.profile = &prof;
        c.include_first = 1;
        c.fc = SG_FC_SAME;
        CHECK_OK(sg_prune_model(m, &c, steps[k].density, NULL));
        CHECK_MSG(revived(m, before) == 0, "step %zu (%s): %zu pruned weights came back", k,
                  steps[k].gran, revived(m, before));
    }
    free(before);
    sg_model_free(m);
}
