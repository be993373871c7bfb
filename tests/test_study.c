/* The study's decisions on hand-made point sets: the no-loss walk (a lucky point
 * below a failure never counts), the reference chain, intervals, paired verdicts,
 * validation accuracy deciding while test accuracy reports. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "sparsegrain/sparsegrain.h"

static void add(struct sg_points *pts, const char *gran, int seed, int step, double dens,
                double val, double test) {
    struct sg_point p;
    memset(&p, 0, sizeof p);
    snprintf(p.model, sizeof p.model, "lenet5");
    snprintf(p.data, sizeof p.data, "mnist");
    snprintf(p.gran, sizeof p.gran, "%s", gran);
    snprintf(p.crit, sizeof p.crit, "l1");
    p.seed = seed, p.step = step, p.target = dens, p.density = dens;
    p.val_top1 = val, p.top1 = test;
    snprintf(p.file, sizeof p.file, "models/%s-s%d-%02d.sgm", gran, seed, step);
    CHECK_OK(sg_points_add(pts, &p));
}

/* dense: baseline 0.99 and a retrained reference 0.992 at every step 1..n */
static void dense_chain(struct sg_points *pts, int seed, int n, double base, double ref) {
    add(pts, "dense", seed, 0, 1, base, base);
    for (int s = 1; s <= n; s++) add(pts, "dense", seed, s, 1, ref, ref);
}

static const double grid[] = {0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03};

SG_TEST(study_walk_stops_at_the_first_failure) {
    struct sg_points pts = {0};
    dense_chain(&pts, 1, 6, 0.990, 0.990);
    /* passes at 0.5, 0.3, fails at 0.2, a lucky pass at 0.1 and 0.05 */
    const double val[] = {0, 0.990, 0.9895, 0.980, 0.990, 0.9905};
    for (int s = 1; s <= 5; s++) add(&pts, "fine", 1, s, grid[s], val[s], 0.5);
    struct sg_walk w;
    CHECK(sg_study_walk(&pts, "fine", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.step, 2);
    CHECK_NEAR(w.density, 0.3, 1e-12);
    CHECK_EQ_INT(w.end, SG_WALK_LOST);
    CHECK(w.point && w.point->step == 2);
    /* a first point that fails: never met, density 1 */
    add(&pts, "filter", 1, 1, 0.5, 0.95, 0.95);
    add(&pts, "filter", 1, 2, 0.3, 0.995, 0.995); /* lucky */
    CHECK(sg_study_walk(&pts, "filter", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.end, SG_WALK_NEVER_MET);
    CHECK_NEAR(w.density, 1, 0);
    CHECK(w.point == NULL);
    /* every point passes: grid too short */
    for (int s = 1; s <= 6; s++) add(&pts, "vector", 1, s, grid[s], 0.99, 0.99);
    CHECK(sg_study_walk(&pts, "vector", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.end, SG_WALK_GRID_SHORT);
    CHECK_NEAR(w.density, 0.03, 1e-12);
    /* no baseline for the seed */
    CHECK(!sg_study_walk(&pts, "fine", 2, 0.001, SG_REF_BASELINE, &w));
    sg_points_free(&pts);
}

SG_TEST(study_walk_decides_on_validation_not_test) {
    struct sg_points pts = {0};
    dense_chain(&pts, 1, 3, 0.99, 0.99);
    /* test top-1 says the chain failed at step 2; validation says it held to step 3 */
    add(&pts, "kernel", 1, 1, 0.5, 0.99, 0.99);
    add(&pts, "kernel", 1, 2, 0.3, 0.99, 0.90);
    add(&pts, "kernel", 1, 3, 0.2, 0.95, 0.99);
    struct sg_walk w;
    CHECK(sg_study_walk(&pts, "kernel", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.step, 2);
    /* without a validation split the test top-1 decides */
    for (int i = 0; i < pts.n; i++) pts.p[i].val_top1 = NAN;
    CHECK(sg_study_walk(&pts, "kernel", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.step, 1);
    sg_points_free(&pts);
}

SG_TEST(study_walk_against_the_retrained_reference) {
    struct sg_points pts = {0};
    /* the retrained dense model gains 0.5 pp: the fair walk fails earlier */
    dense_chain(&pts, 1, 4, 0.985, 0.990);
    add(&pts, "fine", 1, 1, 0.5, 0.990, 0.990);
    add(&pts, "fine", 1, 2, 0.3, 0.987, 0.987);
    add(&pts, "fine", 1, 3, 0.2, 0.986, 0.986);
    add(&pts, "fine", 1, 4, 0.1, 0.983, 0.983);
    struct sg_walk w;
    CHECK(sg_study_walk(&pts, "fine", 1, 0.001, SG_REF_BASELINE, &w));
    CHECK_EQ_INT(w.step, 3);
    CHECK(sg_study_walk(&pts, "fine", 1, 0.001, SG_REF_RETRAINED, &w));
    CHECK_EQ_INT(w.step, 1);
    CHECK_EQ_INT(w.end, SG_WALK_LOST);
    /* a chain longer than its reference: the walk stops where the reference ends */
    add(&pts, "vector", 1, 1, 0.5, 0.990, 0.990);
    add(&pts, "vector", 1, 2, 0.3, 0.990, 0.990);
    add(&pts, "vector", 1, 3, 0.2, 0.990, 0.990);
    add(&pts, "vector", 1, 4, 0.1, 0.990, 0.990);
    add(&pts, "vector", 1, 5, 0.05, 0.990, 0.990);
    CHECK(sg_study_walk(&pts, "vector", 1, 0.001, SG_REF_RETRAINED, &w));
    CHECK_EQ_INT(w.step, 4);
    CHECK_EQ_INT(w.end, SG_WALK_NO_REFERENCE);
    sg_points_free(&pts);
}

SG_TEST(study_intervals_and_t_quantiles) {
    CHECK_NEAR(sg_t975(1), 12.706, 1e-3);
    CHECK_NEAR(sg_t975(4), 2.776, 1e-3);
    CHECK_NEAR(sg_t975(1000), 1.960, 1e-3);
    const double x[] = {0.1, 0.2, 0.3, 0.4, 0.5};
    struct sg_interval iv;
    sg_interval_of(x, 5, &iv);
    CHECK_NEAR(iv.mean, 0.3, 1e-12);
    CHECK_NEAR(iv.std, sqrt(0.025), 1e-12);
    CHECK_NEAR(iv.half, 2.776 * sqrt(0.025) / sqrt(5.0), 1e-9);
    CHECK_NEAR(iv.min, 0.1, 0);
    CHECK_NEAR(iv.max, 0.5, 0);
    sg_interval_of(x, 1, &iv);
    CHECK(isnan(iv.half));
    CHECK(strcmp(sg_verdict(&iv), "-") == 0);
    const double lo[] = {-0.1, -0.12, -0.09}, mixed[] = {-0.1, 0.1, 0.02}, same[] = {0, 0, 0};
    sg_interval_of(lo, 3, &iv);
    CHECK(strcmp(sg_verdict(&iv), "lower") == 0);
    sg_interval_of(mixed, 3, &iv);
    CHECK(strcmp(sg_verdict(&iv), "tie") == 0);
    sg_interval_of(same, 3, &iv);
    CHECK(strcmp(sg_verdict(&iv), "tie") == 0);
}

SG_TEST(study_noloss_table_pairs_seeds) {
    struct sg_points pts = {0};
    /* three seeds; fine holds to step 4 or 5; filter to step 1 or 2 (a lucky point
     * under filter's failure at step 4 of seed 2 must not count) */
    for (int seed = 1; seed <= 3; seed++) {
        dense_chain(&pts, seed, 6, 0.99, 0.99);
        int fine_last = seed == 2 ? 5 : 4, filter_last = seed == 3 ? 2 : 1;
        for (int s = 1; s <= 6; s++) add(&pts, "fine", seed, s, grid[s], s <= fine_last ? 0.99 : 0.97, 0.99);
        for (int s = 1; s <= 4; s++) {
            double v = s <= filter_last ? 0.99 : 0.97;
            if (seed == 2 && s == 4) v = 0.995;
            add(&pts, "filter", seed, s, grid[s], v, 0.98);
        }
    }
    struct sg_noloss *rows;
    int n;
    CHECK_OK(sg_study_noloss(&pts, 0.001, &rows, &n));
    CHECK_EQ_INT(n, 2);
    CHECK(strcmp(rows[0].gran, "fine") == 0 && strcmp(rows[1].gran, "filter") == 0);
    CHECK_EQ_INT(rows[0].seeds, 3);
    CHECK_NEAR(rows[0].mean, (0.1 + 0.05 + 0.1) / 3, 1e-12);
    CHECK_NEAR(rows[1].mean, (0.5 + 0.5 + 0.3) / 3, 1e-12);
    CHECK_NEAR(rows[1].max, 0.5, 1e-12);
    CHECK(isfinite(rows[0].ci) && rows[0].ci > 0);
    CHECK_EQ_INT(rows[0].never_lost, 0);
    CHECK(strcmp(rows[1].vs, "fine") == 0);
    CHECK(strcmp(rows[1].verdict, "higher") == 0);
    CHECK(strcmp(rows[0].verdict, "-") == 0);
    CHECK_NEAR(rows[1].top1, 0.98, 1e-12);   /* test top-1 reports */
    CHECK_NEAR(rows[1].val_top1, 0.99, 1e-12); /* validation decided */
    /* the walk on the mean curve: fine's mean fails at step 5 (two of three seeds lost) */
    CHECK_NEAR(rows[0].fair.walk_mean, 0.1, 1e-12);
    free(rows);
    sg_points_free(&pts);
}

SG_TEST(study_points_keep_validation_accuracy) {
    struct sg_points pts = {0};
    add(&pts, "fine", 3, 2, 0.3, 0.9876, 0.9811);
    struct sg_json j;
    sg_json_init(&j);
    sg_point_json(&pts.p[0], &j);
    char line[8192];
    snprintf(line, sizeof line, "%s\n", sg_json_cstr(&j));
    sg_json_free(&j);
    struct sg_points back;
    size_t valid;
    CHECK_OK(sg_points_parse(line, strlen(line), "test", &back, &valid));
    CHECK_EQ_INT(back.n, 1);
    CHECK_NEAR(back.p[0].val_top1, 0.9876, 1e-9);
    CHECK_NEAR(back.p[0].top1, 0.9811, 1e-9);
    sg_points_free(&back);
    /* a point written before the split existed reads with no validation accuracy */
    const char *old = "{\"model\":\"lenet5\",\"data\":\"mnist\",\"granularity\":\"fine\",\"criterion\":\"l1\","
                      "\"control\":\"\",\"seed\":1,\"step\":1,\"target\":0.5,\"density\":0.5,\"layers\":{},"
                      "\"top1\":0.99,\"top5\":1,\"loss\":0.1,\"epochs\":3,\"seconds\":1,\"file\":\"x\"}\n";
    CHECK_OK(sg_points_parse(old, strlen(old), "old", &back, &valid));
    CHECK_EQ_INT(back.n, 1);
    CHECK(isnan(back.p[0].val_top1));
    CHECK_NEAR(sg_point_decision(&back.p[0]), 0.99, 0);
    sg_points_free(&back);
    sg_points_free(&pts);
}

/* The validation split of a seed: disjoint from the training part, together all
 * of the images, the same for the same seed, another for another seed. */
SG_TEST(study_validation_split_is_disjoint_and_seeded) {
    struct sg_dataset d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "synthetic");
    d.n = 1000, d.c = 1, d.h = 2, d.w = 2, d.classes = 10, d.mean = 0, d.std = 1;
    d.pixels = malloc(4000), d.labels = malloc(1000);
    for (int i = 0; i < 1000; i++) { /* image i is unique: its index in its first two bytes */
        d.pixels[4 * i] = (uint8_t)(i & 255), d.pixels[4 * i + 1] = (uint8_t)(i >> 8);
        d.pixels[4 * i + 2] = d.pixels[4 * i + 3] = 0;
        d.labels[i] = (uint8_t)(i % 10);
    }
    struct sg_dataset *tr, *va, *tr2, *va2, *tr3, *va3;
    CHECK_OK(sg_dataset_split(&d, 200, 7, &tr, &va));
    CHECK_OK(sg_dataset_split(&d, 200, 7, &tr2, &va2));
    CHECK_OK(sg_dataset_split(&d, 200, 8, &tr3, &va3));
    CHECK_EQ_INT(tr->n, 800);
    CHECK_EQ_INT(va->n, 200);
    int seen[1000] = {0};
    for (int64_t i = 0; i < tr->n; i++) seen[tr->pixels[4 * i] | tr->pixels[4 * i + 1] << 8] |= 1;
    for (int64_t i = 0; i < va->n; i++) seen[va->pixels[4 * i] | va->pixels[4 * i + 1] << 8] |= 2;
    int both = 0, none = 0;
    for (int i = 0; i < 1000; i++) both += seen[i] == 3, none += seen[i] == 0;
    CHECK_EQ_INT(both, 0);
    CHECK_EQ_INT(none, 0);
    CHECK(memcmp(va->pixels, va2->pixels, 800) == 0);
    CHECK(memcmp(va->pixels, va3->pixels, 800) != 0);
    sg_dataset_free(tr), sg_dataset_free(va), sg_dataset_free(tr2), sg_dataset_free(va2);
    sg_dataset_free(tr3), sg_dataset_free(va3);
    free(d.pixels), free(d.labels);
}

/* The chain's decisions: the extension below the grid reads the validation
 * accuracy against the baseline; the dense reference runs as deep as the deepest
 * pruned chain of its seed; a profile scales to each step's density. */
SG_TEST(study_reference_extends_below_the_grid) {
    struct sg_points pts = {0};
    dense_chain(&pts, 1, 3, 0.99, 0.99); /* a grid of 3 steps */
    dense_chain(&pts, 2, 3, 0.99, 0.99);
    for (int s = 1; s <= 5; s++) add(&pts, "fine", 1, s, grid[s], 0.99, 0.90); /* 2 below the grid */
    for (int s = 1; s <= 3; s++) add(&pts, "kernel", 1, s, grid[s], 0.99, 0.99);
    for (int s = 1; s <= 4; s++) add(&pts, "filter", 2, s, grid[s], 0.99, 0.99);
    CHECK_EQ_INT(sg_study_reference_steps(&pts, 1, 3), 5);
    CHECK_EQ_INT(sg_study_reference_steps(&pts, 2, 3), 4);
    CHECK_EQ_INT(sg_study_reference_steps(&pts, 3, 3), 3);
    /* until the reference catches up, the fair walk stops where it ends */
    struct sg_walk w;
    CHECK(sg_study_walk(&pts, "fine", 1, 0.001, SG_REF_RETRAINED, &w));
    CHECK_EQ_INT(w.step, 3);
    CHECK_EQ_INT(w.end, SG_WALK_NO_REFERENCE);
    add(&pts, "dense", 1, 4, 1, 0.99, 0.99);
    add(&pts, "dense", 1, 5, 1, 0.99, 0.99);
    CHECK(sg_study_walk(&pts, "fine", 1, 0.001, SG_REF_RETRAINED, &w));
    CHECK_EQ_INT(w.step, 5);
    CHECK_EQ_INT(w.end, SG_WALK_GRID_SHORT);
    /* extension: validation decides (fine's test top-1 is far below, its validation is not) */
    CHECK(sg_study_extend(&pts, "fine", 1, 5, 0.001));
    add(&pts, "fine", 1, 6, 0.03, 0.97, 0.99);
    CHECK(!sg_study_extend(&pts, "fine", 1, 6, 0.001));
    CHECK(!sg_study_extend(&pts, "fine", 1, 7, 0.001)); /* no such point */
    sg_points_free(&pts);
}

SG_TEST(study_profile_scales_to_each_density) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 1, &m));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.fc = SG_FC_FINE; /* conv2, fc1, fc2 in scope */
    char names[3][SG_NAME_MAX] = {"conv2", "fc1.weight", "fc2"};
    double dens[3] = {1, 0.5, 0.5};
    struct sg_profile rel = {3, names, dens};
    for (double t = 0.1; t < 0.6; t += 0.2) {
        struct sg_profile *p;
        CHECK_OK(sg_study_scale_profile(&rel, m, &pc, t, &p));
        CHECK_EQ_INT(p->n, 3);
        double w = 0, kept = 0;
        for (int k = 0; k < p->n; k++) {
            const int32_t i = sg_model_find_param(m, p->names[k]);
            CHECK(i >= 0);
            w += (double)m->params[i].count, kept += (double)m->params[i].count * p->density[k];
        }
        CHECK_NEAR(kept / w, t, 1e-9);
        CHECK_NEAR(p->density[1] / p->density[0], 0.5, 1e-9);
        sg_profile_free(p);
    }
    /* a layer the profile does not name is an error that names it */
    struct sg_profile short_rel = {1, names, dens};
    struct sg_profile *p;
    CHECK_ERR(sg_study_scale_profile(&short_rel, m, &pc, 0.5, &p), SG_ERR_ARG);
    CHECK(strstr(sg_last_error(), "fc1") != NULL);
    sg_model_free(m);
}
