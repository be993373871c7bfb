/* sparsegrain bench-conv: dense against sparse convolution on the paper's layer
 * shapes, with random weights pruned at one granularity and density. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sparsegrain/infer.h"

static const struct cli_opt OPTS[] = {
    {"net", 0, "NAME", "layer table: vgg16 (224x224 input, 13 conv layers 3x3, pad 1)", "vgg16"},
    {"layers", 'l', "LIST", "comma-separated layer names (default: all)", NULL},
    {"granularity", 'g', "G", "fine, vector, vector:col, kernel, filter, channel, nm:N:M", "kernel"},
    {"density", 'D', "X", "kept fraction of each layer's weights (nm: ignored, N/M)", "0.3"},
    {"kind", 0, "K", "sparse kernel: auto (from the mask), thin, kernel, vector, nm, fine, winograd",
     "auto"},
    {"batch", 'b', "N", "images per run", "1"},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "2"},
    {"repeat", 'r', "N", "timed runs of each kernel; the fastest counts", "5"},
    {"clock", 0, "C", "wall, or cpu: this thread's CPU time (needs --threads 1; leaves out "
                      "time spent waiting for a core on a shared machine)", "wall"},
    {"seed", 's', "N", "seed of the weights and inputs", "1"},
    {"json", 0, NULL, "print one JSON object", NULL},
    {0},
};

struct layer {
    const char *name;
    int c, k, hw;
};
/* VGG-16 (Simonyan and Zisserman 2015, configuration D): every conv is 3x3, pad 1, stride 1. */
static const struct layer VGG16[] = {
    {"conv1_1", 3, 64, 224},    {"conv1_2", 64, 64, 224},   {"conv2_1", 64, 128, 112},
    {"conv2_2", 128, 128, 112}, {"conv3_1", 128, 256, 56},  {"conv3_2", 256, 256, 56},
    {"conv3_3", 256, 256, 56},  {"conv4_1", 256, 512, 28},  {"conv4_2", 512, 512, 28},
    {"conv4_3", 512, 512, 28},  {"conv5_1", 512, 512, 14},  {"conv5_2", 512, 512, 14},
    {"conv5_3", 512, 512, 14},
};
#define NLAYERS ((int)(sizeof VGG16 / sizeof VGG16[0]))

static int g_cpu_clock;

static double clock_s(void) {
    if (!g_cpu_clock) return sg_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Fastest of `repeat` runs after one warm-up run, in seconds. */
static double best_time(struct sg_conv_plan *p, int n, const float *x, float *y, int repeat,
                        enum sg_status *st) {
    double best = INFINITY;
    if ((*st = sg_conv_plan_run(p, n, x, y)) != SG_OK) return best;
    for (int i = 0; i < repeat; i++) {
        const double t0 = clock_s();
        if ((*st = sg_conv_plan_run(p, n, x, y)) != SG_OK) return best;
        const double t = clock_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

struct row {
    const struct layer *l;
    double density, dense_s, sparse_s, err, gflop;
    struct sg_conv_plan_info info;
};

static int bench_layer(const struct layer *l, const struct sg_prune_spec *sp, double density,
                       int kind, int batch, int repeat, uint64_t seed, struct row *out) {
    struct sg_conv_geom g = {batch, l->c, l->hw, l->hw, l->k, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    if (sg_conv_geom_finish(&g) != SG_OK) return cli_fail_status(SG_ERR_ARG);
    const size_t nw = (size_t)g.k * g.c * 9, nx = (size_t)batch * g.c * g.h * g.w,
                 ny = (size_t)batch * g.k * g.p * g.q;
    float *w = malloc(nw * sizeof *w), *b = malloc((size_t)g.k * sizeof *b);
    float *x = malloc(nx * sizeof *x), *yd = malloc(ny * sizeof *yd), *ys = malloc(ny * sizeof *ys);
    uint8_t *mask = malloc(nw);
    struct sg_conv_plan *pd = NULL, *ps = NULL;
    int rc = 1;
    if (!w || !b || !x || !yd || !ys || !mask) {
        cli_fail("out of memory for layer %s", l->name);
        goto done;
    }
    sg_rng r;
    sg_rng_seed(&r, seed);
    const float sd = sqrtf(2.0f / (float)(g.c * 9)); /* He normal */
    for (size_t i = 0; i < nw; i++) w[i] = sd * sg_rng_normal(&r);
    for (int i = 0; i < g.k; i++) b[i] = 0.1f * sg_rng_normal(&r);
    for (size_t i = 0; i < nx; i++) x[i] = sg_rng_normal(&r); /* CNHW */
    memset(mask, 1, nw);
    struct sg_wview v = {l->name, g.k, g.c, 3, 3, w, mask, 0};
    enum sg_status st = sg_prune_layer_density(sp, &v, density);
    if (st == SG_OK) st = sg_conv_plan_new(&g, 0, w, mask, b, SG_KIND_DENSE, NULL, &pd);
    if (st == SG_OK) st = sg_conv_plan_new(&g, 0, w, mask, b, (enum sg_conv_kind)kind, NULL, &ps);
    if (st != SG_OK) {
        cli_fail("%s: %s", l->name, sg_last_error());
        goto done;
    }
    out->l = l;
    out->dense_s = best_time(pd, batch, x, yd, repeat, &st);
    if (st == SG_OK) out->sparse_s = best_time(ps, batch, x, ys, repeat, &st);
    if (st != SG_OK) {
        cli_fail("%s: %s", l->name, sg_last_error());
        goto done;
    }
    double md = 0, mb = 1e-6;
    for (size_t i = 0; i < ny; i++) {
        md = fmax(md, fabs((double)ys[i] - yd[i]));
        mb = fmax(mb, fabs((double)yd[i]));
    }
    out->err = md / mb;
    sg_conv_plan_get_info(ps, &out->info);
    out->density = (double)out->info.nnz / (double)out->info.weights;
    out->gflop = 2.0 * g.k * g.c * 9.0 * g.p * g.q * batch / 1e9;
    rc = 0;
done:
    sg_conv_plan_free(pd);
    sg_conv_plan_free(ps);
    free(w), free(b), free(x), free(yd), free(ys), free(mask);
    return rc;
}

static int run(struct cli_args *a) {
    if (strcmp(cli_str(a, "net"), "vgg16") != 0)
        cli_usage_error(a, "unknown --net '%s' (vgg16 is built in)", cli_str(a, "net"));
    struct sg_prune_spec sp;
    sg_prune_spec_default(&sp);
    if (sg_prune_spec_parse(cli_str(a, "granularity"), &sp) != SG_OK)
        cli_usage_error(a, "%s", sg_last_error());
    const double density = cli_num(a, "density", 0, 1);
    const int kind = sg_conv_kind_from_name(cli_str(a, "kind"));
    if (kind < 0 || kind == SG_KIND_DENSE)
        cli_usage_error(a, "unknown --kind '%s' (%s)", cli_str(a, "kind"), cli_names("sparse-kind"));
    const int batch = (int)cli_int(a, "batch", 1, 4096);
    const int repeat = (int)cli_int(a, "repeat", 1, 1000);
    const uint64_t seed = (uint64_t)cli_int(a, "seed", 0, 1L << 40);
    const char *list = cli_str(a, "layers");
    for (const char *p = list; p && *p;) { /* every listed name must exist */
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < NLAYERS; i++)
            found |= strlen(VGG16[i].name) == len && strncmp(p, VGG16[i].name, len) == 0;
        if (!found) cli_usage_error(a, "unknown layer '%.*s' in --layers", (int)len, p);
        if (!e) break;
        p = e + 1;
    }
    const char *clk = cli_str(a, "clock");
    if (strcmp(clk, "cpu") == 0) g_cpu_clock = 1;
    else if (strcmp(clk, "wall") != 0) cli_usage_error(a, "unknown --clock '%s' (wall, cpu)", clk);
    if (g_cpu_clock && cli_int(a, "threads", 0, 256) != 1)
        cli_usage_error(a, "--clock cpu measures one thread: give --threads 1");
    cli_set_threads(a);
    struct row rows[NLAYERS];
    int nr = 0;
    for (int i = 0; i < NLAYERS; i++) {
        if (!cli_list_has(list, VGG16[i].name)) continue;
        cli_progress_note("%s ...", VGG16[i].name);
        if (bench_layer(&VGG16[i], &sp, density, kind, batch, repeat, seed + (uint64_t)i,
                        &rows[nr]))
            return 1;
        nr++;
    }
    cli_progress_done();
    char gran[64];
    sg_prune_spec_format(&sp, gran, sizeof gran);
    double td = 0, ts = 0, tf = 0;
    for (int i = 0; i < nr; i++) td += rows[i].dense_s, ts += rows[i].sparse_s, tf += rows[i].gflop;
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "net"), sg_json_str(&j, "vgg16");
        sg_json_key(&j, "granularity"), sg_json_str(&j, gran);
        sg_json_key(&j, "target_density"), sg_json_num(&j, density);
        sg_json_key(&j, "batch"), sg_json_int(&j, batch);
        sg_json_key(&j, "threads"), sg_json_int(&j, sg_get_threads());
        sg_json_key(&j, "repeat"), sg_json_int(&j, repeat);
        sg_json_key(&j, "timing"), sg_json_str(&j, "fastest of repeat runs after one warm-up");
        sg_json_key(&j, "clock"), sg_json_str(&j, g_cpu_clock ? "cpu" : "wall");
        sg_json_key(&j, "blas"), sg_json_str(&j, sg_blas_info());
        sg_json_key(&j, "layers"), sg_json_arr(&j);
        for (int i = 0; i < nr; i++) {
            const struct row *w = &rows[i];
            sg_json_obj(&j);
            sg_json_key(&j, "layer"), sg_json_str(&j, w->l->name);
            sg_json_key(&j, "c"), sg_json_int(&j, w->l->c);
            sg_json_key(&j, "k"), sg_json_int(&j, w->l->k);
            sg_json_key(&j, "hw"), sg_json_int(&j, w->l->hw);
            sg_json_key(&j, "kind"), sg_json_str(&j, sg_conv_kind_name(w->info.kind));
            sg_json_key(&j, "density"), sg_json_num(&j, w->density);
            sg_json_key(&j, "dense_ms"), sg_json_num(&j, 1e3 * w->dense_s);
            sg_json_key(&j, "sparse_ms"), sg_json_num(&j, 1e3 * w->sparse_s);
            sg_json_key(&j, "speedup"), sg_json_num(&j, w->dense_s / w->sparse_s);
            sg_json_key(&j, "dense_gflops"), sg_json_num(&j, w->gflop / w->dense_s);
            sg_json_key(&j, "max_rel_err"), sg_json_num(&j, w->err);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_key(&j, "dense_ms"), sg_json_num(&j, 1e3 * td);
        sg_json_key(&j, "sparse_ms"), sg_json_num(&j, 1e3 * ts);
        sg_json_key(&j, "speedup"), sg_json_num(&j, td / ts);
        sg_json_end(&j);
        cli_print_json(&j);
        return 0;
    }
    printf("VGG-16 conv layers, %s at density %g, batch %d, %d threads (fastest of %d runs, %s)\n",
           gran, density, batch, sg_get_threads(), repeat,
           g_cpu_clock ? "thread CPU time" : "wall clock");
    struct cli_table t;
    cli_table_init(&t, 9);
    t.right_align = 0x1fe;
    cli_table_row(&t, "layer", "C", "K", "HxW", "kernel", "density", "dense ms", "sparse ms",
                  "speedup");
    for (int i = 0; i < nr; i++) {
        const struct row *w = &rows[i];
        cli_table_row(&t, w->l->name, cli_fmt("%d", w->l->c), cli_fmt("%d", w->l->k),
                      cli_fmt("%dx%d", w->l->hw, w->l->hw), sg_conv_kind_name(w->info.kind),
                      cli_fmt("%.3f", w->density), cli_fmt("%.3f", 1e3 * w->dense_s),
                      cli_fmt("%.3f", 1e3 * w->sparse_s),
                      cli_fmt("%.2fx", w->dense_s / w->sparse_s));
    }
    cli_table_row(&t, "total", "", "", "", "", "", cli_fmt("%.3f", 1e3 * td),
                  cli_fmt("%.3f", 1e3 * ts), cli_fmt("%.2fx", td / ts));
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    double worst = 0;
    for (int i = 0; i < nr; i++) worst = fmax(worst, rows[i].err);
    printf("dense: %.1f GFLOP/s over these layers; largest relative difference sparse vs dense "
           "%.2g\n",
           tf / td, worst);
    return 0;
}

const struct cli_cmd cmd_bench_conv = {
    "bench-conv",
    "time dense against sparse convolution on VGG-16's layer shapes",
    "--granularity G --density D [options]",
    "Random weights (He normal) are pruned with the pruning library at the given granularity\n"
    "and density, then the dense kernel (im2col + sgemm) and the sparse kernel chosen for the\n"
    "mask run on the same random input; times are the fastest of --repeat runs after a warm-up.",
    OPTS, 0, 0, run,
};
