/* The report: SVG charts are well-formed XML with their series, the CSV reader
 * handles quoting and rejects malformed tables, mask pictures have the expected
 * pixels (through the library and through `sparsegrain draw`), and the HTML page
 * is well-formed with the numbers of the study's tables. XML checks use xmllint
 * (Debian libxml2-utils, installed by scripts/install-deps.sh). */
#include <png.h>
#include <unistd.h>

#include "harness.h"
#include "sparsegrain/sparsegrain.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", sgt_tmpdir(), name);
    CHECK_OK(sg_file_write_atomic(path, text, strlen(text)));
    return path;
}

/* xmllint exit code on a file (html: its HTML parser), -1 when xmllint is missing. */
static int xmllint(const char *path, int html) {
    if (system("command -v xmllint >/dev/null 2>&1") != 0) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "xmllint --noout %s '%s' 2>'%s.err'", html ? "--html" : "", path, path);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

static void check_xml(const char *name, const char *text) {
    const char *p = write_tmp(name, text);
    int rc = xmllint(p, 0);
    if (rc < 0) {
        fprintf(stderr, "    (xmllint not installed: well-formedness not checked)\n");
        return;
    }
    CHECK_MSG(rc == 0, "%s is not well-formed XML (xmllint exit %d, see %s.err)", name, rc, p);
}

/* ---- SVG ---- */

SG_TEST(report_svg_line_chart_is_xml_with_its_series) {
    const double x[] = {1, 0.5, 0.25, 0.1, 0.05}, y[] = {99.1, 99.0, NAN, 98.2, 97.0};
    const double lo[] = {98.9, 98.8, 98.5, 97.9, 96.0}, hi[] = {99.3, 99.2, 99.0, 98.6, 97.5};
    const double cx[] = {0.1}, cy[] = {98.9};
    /* names that need escaping, and a byte that is not UTF-8 */
    struct sg_series s[3] = {
        {.name = "kernel <2-D> & \"R x S\"", .n = 5, .x = x, .y = y, .lo = lo, .hi = hi, .color = 2,
         .marker = SG_MARK_DIAMOND},
        {.name = "bad \xff byte", .n = 5, .x = x, .y = hi, .color = -1, .dash = 1, .marker = SG_MARK_SQUARE,
         .hollow = 1},
        {.name = "control", .n = 1, .x = cx, .y = cy, .color = 2, .marker = SG_MARK_CROSS, .no_line = 1},
    };
    const struct sg_refline ref[1] = {{.label = "baseline 99.10% 'a'", .y = 99.1, .color = 6}};
    for (int log_x = 0; log_x <= 1; log_x++) {
        struct sg_line_chart c = {.id = "t1", .title = "top-1 & density", .x_label = "density", .y_label = "top-1 (%)",
                                  .log_x = log_x, .x_min = NAN, .x_max = NAN, .y_min = NAN, .y_max = NAN,
                                  .series = s, .n_series = 3, .ref = ref, .n_ref = 1};
        char *svg;
        CHECK_OK(sg_svg_line_chart(&c, &svg));
        check_xml(log_x ? "line-log.svg" : "line-lin.svg", svg);
        CHECK(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
        /* two lines and one markers-only series */
        CHECK_EQ_INT(count(svg, "<path class=\"series\""), 2);
        CHECK_EQ_INT(count(svg, "<g class=\"series\""), 1);
        CHECK_EQ_INT(count(svg, "class=\"band\""), 1);
        CHECK_EQ_INT(count(svg, "class=\"refline\""), 1);
        CHECK(strstr(svg, "kernel &lt;2-D&gt; &amp; &quot;R x S&quot;"));
        CHECK(strstr(svg, "bad \xef\xbf\xbd byte"));
        CHECK(!strstr(svg, "\xff"));
        /* the gap at the NaN: the line is two pieces */
        const char *line = strstr(svg, "<path class=\"series\" data-series=\"0\"");
        CHECK(line);
        const char *d = strstr(line, " d=\"");
        int moves = 0;
        for (const char *p = d + 4; *p != '"'; p++) moves += *p == 'M';
        CHECK_EQ_INT(moves, 2);
        if (log_x) { /* ticks at decades, 2 and 5 when there are few decades */
            CHECK(strstr(svg, ">0.05</text>"));
            CHECK(strstr(svg, ">0.1</text>"));
            CHECK(strstr(svg, ">0.2</text>"));
            CHECK(strstr(svg, ">1</text>"));
        } else {
            CHECK(strstr(svg, ">0.0</text>"));
            CHECK(strstr(svg, ">1.0</text>"));
        }
        free(svg);
    }
}

SG_TEST(report_svg_line_chart_fixed_range_clips) {
    const double x[] = {0.5, 0.1}, y[] = {99, 50};
    struct sg_series s = {.name = "a", .n = 2, .x = x, .y = y, .marker = SG_MARK_CIRCLE};
    struct sg_line_chart c = {.id = "z", .x_min = 0, .x_max = 1, .y_min = 98, .y_max = 100, .series = &s,
                              .n_series = 1};
    char *svg;
    CHECK_OK(sg_svg_line_chart(&c, &svg));
    check_xml("clip.svg", svg);
    CHECK(strstr(svg, "clip-path=\"url(#z-clip)\""));
    CHECK(strstr(svg, ">98.0</text>") && strstr(svg, ">100.0</text>"));
    CHECK(!strstr(svg, ">50"));
    free(svg);
}

SG_TEST(report_svg_rejects_bad_input) {
    const double x[] = {1}, y[] = {1};
    struct sg_series s = {.name = "a", .n = 1, .x = x, .y = NULL};
    struct sg_line_chart c = {.series = &s, .n_series = 1, .x_min = NAN, .x_max = NAN, .y_min = NAN, .y_max = NAN};
    char *svg = (char *)1;
    CHECK_ERR(sg_svg_line_chart(&c, &svg), SG_ERR_ARG);
    CHECK(svg == NULL);
    s.y = y;
    c.id = "a\"b";
    CHECK_ERR(sg_svg_line_chart(&c, &svg), SG_ERR_ARG);
    c.id = NULL;
    c.width = 10;
    CHECK_ERR(sg_svg_line_chart(&c, &svg), SG_ERR_ARG);
    c.width = 0;
    c.log_x = 1;
    c.x_min = -1;
    CHECK_ERR(sg_svg_line_chart(&c, &svg), SG_ERR_ARG);
    struct sg_bar_chart b = {0};
    CHECK_ERR(sg_svg_bar_chart(&b, &svg), SG_ERR_ARG);
}

SG_TEST(report_svg_bar_charts_are_xml_with_their_series) {
    const char *cats[] = {"fine / relidx", "kernel / group & co", "filter"};
    const char *ser[] = {"value_bits", "index_bits", "filler_bits", "meta_bits"};
    const double v[] = {80000, 10000, 400, 96, 440000, 2200, 0, 96, 1e6, NAN, -1, 5};
    for (int variant = 0; variant < 4; variant++) {
        struct sg_bar_chart c = {.id = "b", .title = "bits", .value_label = "bits", .stacked = variant & 1,
                                 .horizontal = variant >> 1, .n_cats = 3, .cats = cats, .n_series = 4,
                                 .series = ser, .v = v, .unit = "bits", .totals = 1};
        char *svg;
        CHECK_OK(sg_svg_bar_chart(&c, &svg));
        char name[32];
        snprintf(name, sizeof name, "bar%d.svg", variant);
        check_xml(name, svg);
        CHECK_EQ_INT(count(svg, "<g class=\"series\""), 4);
        /* NaN and negative values draw nothing: 12 values, 10 bars */
        CHECK_EQ_INT(count(svg, "<rect class=\"bar\""), 10);
        CHECK(strstr(svg, "kernel / group &amp; co"));
        CHECK(strstr(svg, "fine / relidx, value_bits: 80k bits"));
        if (variant & 1) CHECK(strstr(svg, ">90.5k</text>")); /* the total of the first bar */
        free(svg);
    }
}

SG_TEST(report_palette_and_numbers) {
    CHECK(strcmp(sg_palette(0), "#0072B2") == 0);
    CHECK(strcmp(sg_palette(SG_PALETTE_N), sg_palette(0)) == 0);
    CHECK(sg_palette(-1)[0] == '#');
}

/* ---- CSV ---- */

SG_TEST(report_csv_parses_quotes_and_pads_short_rows) {
    const char *text = "\xef\xbb\xbfgranularity,format,ratio,note\r\n"
                       "fine,relidx,8.84,\"a, b\"\r\n"
                       "\n"
                       "kernel,\"gr\"\"oup\",1.81\n"
                       "filter,csr,x,\"two\nlines\"";
    struct sg_csv *t;
    CHECK_OK(sg_csv_parse(text, strlen(text), "t.csv", &t));
    CHECK_EQ_INT(t->ncols, 4);
    CHECK_EQ_INT(t->nrows, 3);
    CHECK_EQ_INT(sg_csv_col(t, "granularity"), 0);
    CHECK_EQ_INT(sg_csv_col(t, "nope"), -1);
    CHECK(strcmp(sg_csv_get(t, 0, 3), "a, b") == 0);
    CHECK(strcmp(sg_csv_get(t, 1, 1), "gr\"oup") == 0);
    CHECK(strcmp(sg_csv_get(t, 1, 3), "") == 0); /* padded */
    CHECK(strcmp(sg_csv_get(t, 2, 3), "two\nlines") == 0);
    CHECK(strcmp(sg_csv_get(t, 9, 0), "") == 0);
    double v = 0;
    CHECK(sg_csv_num(t, 0, 2, &v) && v == 8.84);
    CHECK(!sg_csv_num(t, 2, 2, &v));
    CHECK(!sg_csv_num(t, 1, 3, &v));
    sg_csv_free(t);
    sg_csv_free(NULL);
}

SG_TEST(report_csv_rejects_malformed_tables) {
    struct sg_csv *t = (struct sg_csv *)1;
    CHECK_ERR(sg_csv_parse("a,b\n1,2,3\n", 10, "long.csv", &t), SG_ERR_FORMAT);
    CHECK(t == NULL);
    CHECK(strstr(sg_last_error(), "long.csv: line 2"));
    CHECK_ERR(sg_csv_parse("a,b\n\"open,2\n", 12, "q.csv", &t), SG_ERR_FORMAT);
    CHECK_ERR(sg_csv_parse("", 0, "e.csv", &t), SG_ERR_FORMAT);
    CHECK_ERR(sg_csv_parse("a\0b\n", 4, "nul.csv", &t), SG_ERR_FORMAT);
    char wide[3000] = "";
    for (int i = 0; i < 300; i++) strcat(wide, "c,");
    CHECK_ERR(sg_csv_parse(wide, strlen(wide), "wide.csv", &t), SG_ERR_LIMIT);
    char path[512];
    snprintf(path, sizeof path, "%s/absent.csv", sgt_tmpdir());
    CHECK(sg_csv_load(path, &t) != SG_OK);
}

/* ---- mask pictures ---- */

/* A 2x2x3x3 layer with one pattern per kernel: (k0,c0) all kept, (k0,c1) only
 * the middle row (a vector), (k1,c0) nothing (a pruned kernel), (k1,c1) the
 * diagonal (fine). w = 0.1 * (position + 1), so the largest kept weight is the
 * last one, 3.6. */
static void hand_layer(float *w, uint8_t *mask) {
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 2; c++)
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) {
                    int i = ((k * 2 + c) * 3 + r) * 3 + s;
                    int kept = (k == 0 && c == 0) || (k == 0 && c == 1 && r == 1) || (k == 1 && c == 1 && r == s);
                    mask[i] = (uint8_t)kept;
                    w[i] = kept ? 0.1f * (float)(i + 1) : 0.0f;
                }
}

/* The expected colour of pixel (x, y) of the hand layer at scale 2. */
static void expected_pixel(const float *w, const uint8_t *mask, int x, int y, uint8_t rgb[3]) {
    if (x % 7 == 0 || y % 7 == 0) {
        rgb[0] = rgb[1] = rgb[2] = 0xc8;
        return;
    }
    int k = y / 7, c = x / 7, r = (y % 7 - 1) / 2, s = (x % 7 - 1) / 2;
    int i = ((k * 2 + c) * 3 + r) * 3 + s;
    if (!mask[i]) {
        rgb[0] = rgb[1] = rgb[2] = 255;
        return;
    }
    double mx = 0; /* the same arithmetic as the library: |w| / max kept |w| in double */
    for (int q = 0; q < 36; q++)
        if (mask[q] && fabs((double)w[q]) > mx) mx = fabs((double)w[q]);
    sg_mask_color(fabs((double)w[i]) / mx, rgb);
}

static void check_hand_picture(const uint8_t *rgb, int w, int h, const float *wt, const uint8_t *mask) {
    CHECK_EQ_INT(w, 15); /* 2 kernels of 3 x 2 px plus 3 grid lines */
    CHECK_EQ_INT(h, 15);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t want[3];
            expected_pixel(wt, mask, x, y, want);
            const uint8_t *got = rgb + 3 * (y * w + x);
            CHECK_MSG(memcmp(got, want, 3) == 0, "pixel (%d, %d) is %02x%02x%02x, wanted %02x%02x%02x", x, y,
                      got[0], got[1], got[2], want[0], want[1], want[2]);
        }
    /* two pixels by hand: the largest weight is viridis' darkest, a pruned kernel is white */
    CHECK(memcmp(rgb + 3 * (13 * 15 + 13), "\x44\x01\x54", 3) == 0);
    CHECK(memcmp(rgb + 3 * (8 * 15 + 1), "\xff\xff\xff", 3) == 0);
}

static uint8_t *read_png(const char *path, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    CHECK_MSG(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    im.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(im));
    CHECK(buf);
    CHECK_MSG(png_image_finish_read(&im, NULL, buf, 0, NULL), "%s: %s", path, im.message);
    *w = (int)im.width;
    *h = (int)im.height;
    return buf;
}

SG_TEST(report_mask_picture_has_the_expected_pixels) {
    float w[36];
    uint8_t mask[36];
    hand_layer(w, mask);
    struct sg_wview v = {"hand", 2, 2, 3, 3, w, mask, 0};
    struct sg_mask_image_cfg cfg = {.scale = 2};
    struct sg_image img;
    int64_t sk, sc;
    CHECK_OK(sg_mask_image(&v, &cfg, &img, &sk, &sc));
    CHECK_EQ_INT(sk, 2);
    CHECK_EQ_INT(sc, 2);
    check_hand_picture(img.rgb, img.w, img.h, w, mask);
    /* and through PNG and back */
    char path[512];
    snprintf(path, sizeof path, "%s/hand.png", sgt_tmpdir());
    CHECK_OK(sg_png_write(path, &img));
    int pw, ph;
    uint8_t *back = read_png(path, &pw, &ph);
    check_hand_picture(back, pw, ph, w, mask);
    free(back);
    sg_image_free(&img);
    /* cropping: one filter, one channel */
    cfg.max_k = cfg.max_c = 1;
    CHECK_OK(sg_mask_image(&v, &cfg, &img, &sk, &sc));
    CHECK_EQ_INT(img.w, 8);
    CHECK_EQ_INT(sk, 1);
    sg_image_free(&img);
    cfg.scale = 0;
    CHECK_ERR(sg_mask_image(&v, &cfg, &img, &sk, &sc), SG_ERR_ARG);
    cfg.scale = 256;
    cfg.max_k = cfg.max_c = 0;
    v.k = v.c = 100000; /* refused before any weight is read */
    CHECK_ERR(sg_mask_image(&v, &cfg, &img, &sk, &sc), SG_ERR_LIMIT);
    sg_image_free(NULL);
}

SG_TEST(report_mask_colors_are_sequential) {
    uint8_t a[3], b[3];
    sg_mask_color(1, a);
    CHECK(memcmp(a, "\x44\x01\x54", 3) == 0);
    sg_mask_color(0, b);
    CHECK(memcmp(b, "\xbb\xdf\x27", 3) == 0); /* 90% along viridis: clearly not white */
    /* luminance falls as the magnitude grows */
    double last = 1e9;
    for (int i = 0; i <= 20; i++) {
        sg_mask_color(i / 20.0, a);
        double lum = 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
        CHECK(lum <= last + 1e-9);
        last = lum;
    }
    sg_mask_color(NAN, a);
    CHECK(memcmp(a, b, 3) == 0);
}

/* The same hand-made layer saved as a .sgm, drawn by the command line tool. */
SG_TEST(report_draw_command_draws_a_hand_made_mask) {
    const char *sg = getenv("SG");
    if (!sg || access(sg, X_OK) != 0) {
        fprintf(stderr, "    (SG is not set: run through tests/run.sh to test the draw command)\n");
        return;
    }
    struct sg_model *m = sg_model_new("hand", 2, 5, 5);
    struct sg_node in, cv;
    sg_node_init(&in, SG_OP_INPUT, "input");
    int32_t x = sg_model_add(m, &in);
    sg_node_init(&cv, SG_OP_CONV, "conv");
    cv.n_in = 1, cv.in[0] = x, cv.k = 2, cv.kh = cv.kw = 3, cv.sh = cv.sw = 1, cv.groups = 1;
    int32_t y = sg_model_add(m, &cv);
    CHECK(y >= 0);
    struct sg_node fl;
    sg_node_init(&fl, SG_OP_FLATTEN, "flatten");
    fl.n_in = 1, fl.in[0] = y;
    CHECK(sg_model_add(m, &fl) >= 0);
    CHECK_OK(sg_model_finalize(m));
    int32_t p = sg_model_find_param(m, "conv.weight");
    CHECK(p >= 0);
    CHECK_EQ_INT(m->params[p].count, 36);
    hand_layer(sg_param_data(m, p), sg_param_mask(m, p));
    char model[512], png[512], cmd[2048];
    snprintf(model, sizeof model, "%s/hand.sgm", sgt_tmpdir());
    snprintf(png, sizeof png, "%s/hand-cli.png", sgt_tmpdir());
    CHECK_OK(sg_model_save(m, model, NULL));
    snprintf(cmd, sizeof cmd, "'%s' draw '%s' --scale 2 -o '%s' > '%s.out'", sg, model, png, png);
    CHECK_EQ_INT(system(cmd), 0);
    int w, h;
    uint8_t *rgb = read_png(png, &w, &h);
    float wt[36];
    uint8_t mask[36];
    hand_layer(wt, mask);
    check_hand_picture(rgb, w, h, wt, mask);
    free(rgb);
    /* a layer that does not exist is an error that names the ones that do */
    snprintf(cmd, sizeof cmd, "'%s' draw '%s' --layer nope -o '%s' 2> '%s.err'", sg, model, png, png);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    sg_model_free(m);
}

/* ---- the page ---- */

static struct sg_point pt(const char *gran, const char *control, int seed, int step, double target, double dens,
                          double top1) {
    struct sg_point p;
    memset(&p, 0, sizeof p);
    snprintf(p.model, sizeof p.model, "lenet5");
    snprintf(p.data, sizeof p.data, "mnist");
    snprintf(p.gran, sizeof p.gran, "%s", gran);
    snprintf(p.crit, sizeof p.crit, "l1");
    snprintf(p.control, sizeof p.control, "%s", control);
    p.seed = seed, p.step = step, p.target = target, p.density = dens, p.top1 = top1;
    p.val_top1 = NAN; /* no validation split: decisions read top1 */
    p.top5 = 1, p.loss = 0.1 + 0.01 * step, p.epochs = 2 + step;
    p.n_layers = 1;
    snprintf(p.layer[0], sizeof p.layer[0], "conv2");
    p.layer_density[0] = dens;
    snprintf(p.file, sizeof p.file, "models/%s-s%d-%02d.sgm", gran, seed, step);
    return p;
}

/* Two seeds, two granularities, the dense reference and a control. */
static void sample_points(struct sg_points *pts) {
    memset(pts, 0, sizeof *pts);
    const double tg[] = {1, 0.5, 0.25, 0.1};
    for (int seed = 1; seed <= 2; seed++) {
        double d = seed * 0.001;
        struct sg_point p = pt("dense", "", seed, 0, 1, 1, 0.99 - d);
        CHECK_OK(sg_points_add(pts, &p));
        for (int s = 1; s <= 3; s++) {
            p = pt("dense", "", seed, s, tg[s], 1, 0.991 - d);
            CHECK_OK(sg_points_add(pts, &p));
            p = pt("fine", "", seed, s, tg[s], tg[s], 0.9905 - d - 0.0005 * s);
            CHECK_OK(sg_points_add(pts, &p));
            p = pt("filter", "", seed, s, tg[s], tg[s] + 0.01, 0.99 - d - 0.01 * s);
            CHECK_OK(sg_points_add(pts, &p));
        }
        p = pt("fine", "reinit", seed, 3, 0.1, 0.1, 0.97);
        CHECK_OK(sg_points_add(pts, &p));
    }
}

SG_TEST(report_curves_match_curves_csv) {
    struct sg_points pts;
    sample_points(&pts);
    CHECK_OK(sg_study_write_tables(&pts, 0.001, sgt_tmpdir()));
    char path[512];
    snprintf(path, sizeof path, "%s/curves.csv", sgt_tmpdir());
    struct sg_csv *t;
    CHECK_OK(sg_csv_load(path, &t));
    struct sg_curve *c;
    int n;
    CHECK_OK(sg_study_curves(&pts, &c, &n));
    CHECK_EQ_INT(n, t->nrows);
    for (int i = 0; i < n; i++) {
        char s[64];
        CHECK(strcmp(sg_csv_get(t, i, 0), c[i].gran) == 0);
        CHECK(strcmp(sg_csv_get(t, i, 1), c[i].control) == 0);
        snprintf(s, sizeof s, "%.6f", c[i].mean);
        CHECK(strcmp(sg_csv_get(t, i, sg_csv_col(t, "top1_mean")), s) == 0);
        snprintf(s, sizeof s, "%.6f", c[i].max);
        CHECK(strcmp(sg_csv_get(t, i, sg_csv_col(t, "top1_max")), s) == 0);
    }
    CHECK(strcmp(c[0].gran, "dense") == 0 && c[0].step == 0 && c[0].seeds == 2);
    /* the no-loss point: fine keeps the tolerance down to 0.1 for seed 1 */
    const struct sg_point *p = sg_study_noloss_point(&pts, "fine", 1, 0.002);
    CHECK(p && p->step == 3);
    CHECK(sg_study_noloss_point(&pts, "filter", 1, 0.001) == NULL);
    CHECK(sg_study_noloss_point(&pts, "fine", 7, 0.001) == NULL);
    free(c);
    sg_csv_free(t);
    sg_points_free(&pts);
}

SG_TEST(report_html_is_well_formed_and_has_its_sections) {
    struct sg_points pts;
    sample_points(&pts);
    struct sg_report_env env;
    sg_report_env_probe(&env);
    CHECK(strcmp(env.version, SG_VERSION_STRING) == 0);
    CHECK(env.date[0] && env.os[0] && env.cpu[0]);
    const struct sg_layer_structure layers[2] = {
        {.name = "conv1", .ndim = 4, .dims = {20, 1, 5, 5}, .weights = 500, .density = {1, 1, 1, 1, 1}},
        {.name = "conv2 <&>", .ndim = 4, .dims = {50, 20, 5, 5}, .weights = 25000, .pruned = 1,
         .density = {0.1, 0.3, 0.8, 1, 1}}};
    const uint8_t fake_png[] = {0x89, 'P', 'N', 'G'}; /* embedded as given */
    struct sg_report_model models[2] = {
        {.gran = "fine", .seed = 1, .step = 3, .density = 0.1, .top1 = 0.988, .file = "models/fine-s1-03.sgm",
         .n_layers = 2, .layers = layers, .png = fake_png, .png_len = 4, .png_w = 10, .png_h = 20,
         .png_layer = "conv2"},
        {.gran = "filter", .note = "No pruned point met the tolerance."},
    };
    const char *settings = "{\"model\": \"lenet5\", \"grid\": [0.5, 0.25, 0.1], \"tolerance\": 0.001, "
                           "\"retrain_epochs\": 1, \"criterion\": \"l1\"}";
    const char *storage_csv = "granularity,format,value_bits,index_bits,total_bits,ratio,extra\n"
                              "fine,relidx,800,100,900,8.9,x & y\nfilter,relidx,2000,10,2010,1.99,\n";
    struct sg_csv *storage;
    CHECK_OK(sg_csv_parse(storage_csv, strlen(storage_csv), "storage.csv", &storage));
    struct sg_report_input in = {.dir = "study", .pts = &pts, .tol = 0.001, .settings_json = settings,
                                 .command = "sparsegrain study --quick -o study", .env = &env, .models = models,
                                 .n_models = 2};
    char *html;
    size_t len;
    CHECK_OK(sg_report_html(&in, &html, &len));
    CHECK_EQ_INT(len, strlen(html));
    check_xml("report.html", html);
    const char *p = write_tmp("report2.html", html);
    if (xmllint(p, 1) >= 0) CHECK_EQ_INT(xmllint(p, 1), 0);
    CHECK(strstr(html, "<!DOCTYPE html>"));
    CHECK(!strstr(html, "<script"));
    CHECK(!strstr(html, "src=\"http") && !strstr(html, "href=\"http") && !strstr(html, "@import"));
    CHECK(strstr(html, "id=\"acc-lin\"") && strstr(html, "id=\"acc-log\""));
    CHECK(strstr(html, "@media print"));
    CHECK(strstr(html, "conv2 &lt;&amp;&gt;"));
    CHECK(strstr(html, "data:image/png;base64,iVBORw=="));
    CHECK(strstr(html, "No pruned point met the tolerance."));
    CHECK(strstr(html, "sparsegrain study --quick -o study"));
    CHECK(strstr(html, env.cpu));
    CHECK(!strstr(html, "id=\"storage\"") && !strstr(html, "id=\"scnn\""));
    /* the accuracy chart: fine and filter, the dense reference, the fine control */
    const char *lin = strstr(html, "id=\"acc-lin\"");
    const char *end = strstr(lin, "</svg>");
    int lines = 0, marks = 0;
    for (const char *q = strstr(lin, "<path class=\"series\""); q && q < end; q = strstr(q + 1, "<path class=\"series\""))
        lines++;
    for (const char *q = strstr(lin, "<g class=\"series\""); q && q < end; q = strstr(q + 1, "<g class=\"series\""))
        marks++;
    CHECK_EQ_INT(lines, 3);
    CHECK_EQ_INT(marks, 1);
    /* the no-loss row of fine: its exact value and its shown value */
    CHECK(strstr(html, "<tr data-key=\"fine\">"));
    CHECK(strstr(html, "data-col=\"baseline_top1\" data-v=\"0.988500\">98.85%</td>"));
    free(html);
    /* storage table: only when given, unknown columns shown, total_bits not stacked */
    in.storage = storage;
    in.axes = SG_REPORT_LOG_X;
    in.band_std = 1;
    CHECK_OK(sg_report_html(&in, &html, &len));
    check_xml("report-storage.html", html);
    CHECK(strstr(html, "<section id=\"storage\">"));
    CHECK(!strstr(html, "id=\"acc-lin\"") && strstr(html, "id=\"acc-log\""));
    CHECK(strstr(html, "<td>x &amp; y</td>"));
    CHECK(strstr(html, "data-col=\"ratio\" data-v=\"1.99\">1.99</td>"));
    const char *stack = strstr(html, "id=\"storage-stack-0\"");
    CHECK(stack);
    end = strstr(stack, "</svg>");
    int segs = 0;
    for (const char *q = strstr(stack, "<g class=\"series\""); q && q < end; q = strstr(q + 1, "<g class=\"series\""))
        segs++;
    CHECK_EQ_INT(segs, 2); /* value_bits and index_bits; not total_bits */
    CHECK(strstr(html, "id=\"storage-grouped-0-1\""));
    free(html);
    sg_csv_free(storage);
    /* bad input */
    in.tol = 2;
    CHECK_ERR(sg_report_html(&in, &html, &len), SG_ERR_ARG);
    sg_points_free(&pts);
}

/* A table far longer than a chart can show: the table is kept, the chart is not. */
SG_TEST(report_html_long_csv_table_without_a_chart) {
    struct sg_points pts;
    sample_points(&pts);
    char *text = malloc(300 * 64 + 64);
    CHECK(text);
    strcpy(text, "granularity,format,value_bits,ratio\n");
    for (int i = 0; i < 300; i++) sprintf(text + strlen(text), "fine,f%d,%d,%d.5\n", i, 1000 + i, i % 9);
    struct sg_csv *t;
    CHECK_OK(sg_csv_parse(text, strlen(text), "storage.csv", &t));
    struct sg_report_input in = {.pts = &pts, .tol = 0.001, .storage = t};
    char *html;
    CHECK_OK(sg_report_html(&in, &html, NULL));
    check_xml("long.html", html);
    CHECK(strstr(html, "300 rows are too many bars for a chart"));
    CHECK(!strstr(html, "id=\"storage-stack-0\""));
    CHECK(!strstr(html, "id=\"storage-grouped-0-0\""));
    CHECK_EQ_INT(count(html, "<td>fine</td><td>f"), 300);
    free(html);
    sg_csv_free(t);
    free(text);
    sg_points_free(&pts);
}

SG_TEST(report_html_without_points_or_baseline) {
    struct sg_points pts = {0};
    struct sg_report_input in = {.pts = &pts, .tol = 0.001};
    char *html;
    CHECK_OK(sg_report_html(&in, &html, NULL));
    check_xml("empty.html", html);
    free(html);
    struct sg_point p = pt("kernel", "", 1, 1, 0.5, 0.5, 0.9); /* a point without its baseline */
    CHECK_OK(sg_points_add(&pts, &p));
    CHECK_OK(sg_report_html(&in, &html, NULL));
    check_xml("nobase.html", html);
    free(html);
    sg_points_free(&pts);
}
