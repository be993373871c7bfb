/* sparsegrain bench-gpu: every granularity on a GPU, through the library that serves it
 * (docs/gpu.md). The masks come from the pruning library; their conversion to the GPU
 * formats is plain C (src/gpu/formats.c); the timing and the check against dense run in
 * the optional CUDA part (src/gpu/cuda/bench.cu, `make CUDA=1`). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sparsegrain/gpu.h"

#define DEFAULT_GRANS "dense,filter,channel,2:4,block:8,block:16,block:32,fine,vector,kernel"

static const struct cli_opt OPTS[] = {
    {"net", 0, "NAME", "layer shapes: vgg16, resnet50, alexnet, googlenet, densenet121 (grouped "
                       "layers are skipped)", "vgg16"},
    {"layers", 'l', "LIST", "comma-separated layer names (default: all, FC layers included)", NULL},
    {"only", 0, "KIND", "all, conv or fc: the layers of that kind only", "all"},
    {"granularity", 'g', "LIST", "dense, filter, channel, 2:4, block:B (B x B blocks of the GEMM "
                                 "matrix: BSR and Blocked-ELL), fine, vector, kernel", DEFAULT_GRANS},
    {"density", 'D', "LIST", "kept fractions (2:4 and dense ignore it)", "0.5,0.3,0.1,0.05"},
    {"dtype", 0, "T", "fp16, bf16, tf32 or fp32 (cuSPARSELt: fp16 and bf16)", "fp16"},
    {"batch", 'b', "N", "images per run (FC layers: the GEMM's N)", "8"},
    {"warmup", 0, "N", "untimed runs before timing", "3"},
    {"repeat", 'r', "N", "timed runs; the median counts", "10"},
    {"seed", 's', "N", "seed of the weights and inputs", "1"},
    {"same-shapes", 0, NULL, "time a layer whose shape an earlier layer has only once: its rows are "
                             "copies, marked in the note (ResNet-50's repeated blocks)", NULL},
    {"tag", 0, "TEXT", "a label for the CSV rows (e.g. the commit)", ""},
    {"csv", 0, NULL, "print CSV rows (bench/results/gpu.csv's columns), one layer at a time", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    {"dry-run", 0, NULL, "no GPU: prune and convert every operand, and check that each decodes back "
                         "to the layer's masked weights", NULL},
    {0},
};

enum gk { G_DENSE, G_FILTER, G_CHANNEL, G_24, G_BLOCK, G_FINE, G_VECTOR, G_KERNEL };
struct gran {
    enum gk kind;
    int bs;
    char name[24];
};

struct row {
    const char *layer;
    int64_t m, kd, n;       /* GEMM: filters, R*S*C, N*P*Q */
    char gran[24], format[16];
    double target, density; /* kept / weights */
    struct sg_gpu_result r;
    double dense_ms;
};

static int parse_grans(struct cli_args *a, struct gran *g, int max) {
    const char *s = cli_str(a, "granularity");
    int n = 0;
    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char t[24];
        if (len == 0 || len >= sizeof t) cli_usage_error(a, "--granularity: bad list '%s'", cli_str(a, "granularity"));
        memcpy(t, s, len);
        t[len] = 0;
        if (n == max) cli_usage_error(a, "--granularity: more than %d entries", max);
        struct gran *x = &g[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", t);
        if (!strcmp(t, "dense")) x->kind = G_DENSE;
        else if (!strcmp(t, "filter")) x->kind = G_FILTER;
        else if (!strcmp(t, "channel")) x->kind = G_CHANNEL;
        else if (!strcmp(t, "2:4") || !strcmp(t, "nm:2:4")) x->kind = G_24, snprintf(x->name, sizeof x->name, "2:4");
        else if (!strcmp(t, "fine")) x->kind = G_FINE;
        else if (!strcmp(t, "vector")) x->kind = G_VECTOR;
        else if (!strcmp(t, "kernel")) x->kind = G_KERNEL;
        else if (!strncmp(t, "block:", 6) && (x->bs = atoi(t + 6)) > 0) {
            if (x->bs != 8 && x->bs != 16 && x->bs != 32 && x->bs != 4 && x->bs != 64)
                cli_usage_error(a, "--granularity %s: block sizes are 4, 8, 16, 32, 64", t);
            x->kind = G_BLOCK;
        } else
            cli_usage_error(a, "unknown granularity '%s' (dense, filter, channel, 2:4, block:B, fine, vector, kernel)", t);
        s += len + (e ? 1 : 0);
    }
    return n;
}

/* One layer's buffers: the weights, a pruned copy, the GEMM matrices. */
struct work {
    struct sg_wview v;
    float *w0, *w, *a, *ref;
    uint8_t *mask, *am;
    size_t nw, na;
};

static int work_alloc(struct work *x, const struct sg_scnn_shape *s, int64_t cmax) {
    memset(x, 0, sizeof *x);
    x->nw = (size_t)s->k * s->c * s->r * s->s;
    x->na = (size_t)s->k * s->r * s->s * (size_t)cmax;
    x->w0 = malloc(x->nw * sizeof *x->w0), x->w = malloc(x->nw * sizeof *x->w);
    x->mask = malloc(x->nw), x->am = malloc(x->na);
    x->a = malloc(x->na * sizeof *x->a), x->ref = malloc(x->nw * sizeof *x->ref);
    if (!x->w0 || !x->w || !x->mask || !x->am || !x->a || !x->ref) return cli_fail("out of memory for layer %s", s->name);
    x->v = (struct sg_wview){s->name, s->k, s->c, s->r, s->s, x->w, x->mask, s->is_fc};
    return 0;
}
static void work_free(struct work *x) {
    free(x->w0), free(x->w), free(x->mask), free(x->am), free(x->a), free(x->ref);
}

/* Prunes the fresh weights with spec (NULL: dense) at density; fills ref (cpad = C). */
static int prune(struct work *x, const char *spec, double density) {
    memcpy(x->w, x->w0, x->nw * sizeof *x->w);
    memset(x->mask, 1, x->nw);
    if (spec) {
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        if (sg_prune_spec_parse(spec, &sp) != SG_OK || sg_prune_layer_density(&sp, &x->v, density) != SG_OK)
            return cli_fail("%s: %s", x->v.name, sg_last_error());
    }
    if (sg_gpu_matrix(&x->v, x->v.c, x->ref, NULL) != SG_OK) return cli_fail_status(SG_ERR_ARG);
    return 0;
}

static double kept_fraction(const struct work *x) {
    size_t n = 0;
    for (size_t i = 0; i < x->nw; i++) n += x->mask[i] != 0;
    return (double)n / (double)x->nw;
}

struct out {
    int csv, json, dry;
    const char *net, *tag, *gpu, *dtype, *date;
    int batch;
    double peak;
    struct row *rows;
    int n, cap;
};

static void csv_row(const struct out *o, const struct row *w) {
    const double ms = w->r.ms, nd = (double)w->m * w->kd * w->n;
    printf("%s,%s,\"%s\",%s,%s,%lld,%lld,%lld,%d,%s,%s,%s,\"%s\",%g,%.6f,", o->date, o->tag, o->gpu, o->net, w->layer,
           (long long)w->m, (long long)w->kd, (long long)w->n, o->batch, o->dtype, w->gran, w->format, w->r.lib,
           w->target, w->density);
    if (w->r.ok)
        printf("%.6f,%.6f,%.4f,%.3f,%.3f,%.1f,%.4f,%.3g,1,", ms, w->dense_ms, w->dense_ms / ms,
               2 * nd * w->density / (ms * 1e9), 2 * nd / (ms * 1e9), o->peak, 2 * nd * w->density / (ms * 1e9) / o->peak,
               w->r.max_rel_err);
    else
        printf(",%.6f,,,,%.1f,,,0,", w->dense_ms, o->peak);
    printf("\"");
    for (const char *p = w->r.note; *p; p++) putchar(*p == '"' ? '\'' : *p);
    printf("\"\n");
}

static int add_row(struct out *o, const struct row *w) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 256;
        struct row *r = realloc(o->rows, sizeof *r * (size_t)cap);
        if (!r) return cli_fail("out of memory");
        o->rows = r, o->cap = cap;
    }
    o->rows[o->n++] = *w;
    return 0;
}

/* --dry-run: the operand, decoded back, must equal the layer's masked matrix (ref with
 * its channels padded to the operand's cpad); 2:4 operands must encode as 2:4. */
static int dry_check(const struct sg_scnn_shape *s, const struct sg_gpu_op *op, char *note, size_t cap) {
    const int64_t k = s->k, rs = (int64_t)s->r * s->s, C = s->c;
    const int64_t cpad = op->kind == SG_GPUK_THIN ? C : op->cpad, cols = rs * cpad;
    const size_t n = (size_t)k * (size_t)cols;
    float *d = calloc(n + 1, sizeof *d), *want = calloc(n + 1, sizeof *want);
    enum sg_status st = SG_OK;
    if (!d || !want) {
        free(d), free(want);
        snprintf(note, cap, "out of memory");
        return 0;
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < rs; j++)
            for (int64_t c = 0; c < C; c++) want[i * cols + j * cpad + c] = op->ref[(i * rs + j) * C + c];
    switch (op->kind) {
    case SG_GPUK_DENSE: memcpy(d, op->a, n * sizeof *d); break;
    case SG_GPUK_24: {
        struct sg_gpu_24 t;
        if ((st = sg_gpu_24_encode(op->a, NULL, k, cols, &t)) == SG_OK) st = sg_gpu_24_decode(&t, d);
        sg_gpu_24_free(&t);
        break;
    }
    case SG_GPUK_THIN: st = sg_gpu_thin_decode(op->thin, d); break;
    case SG_GPUK_CSR: st = sg_gpu_csr_decode(op->csr, d); break;
    case SG_GPUK_BSR: st = sg_gpu_bsr_decode(op->bsr, d); break;
    case SG_GPUK_BELL: st = sg_gpu_bell_decode(op->bell, d); break;
    default: st = SG_ERR_ARG;
    }
    int ok = st == SG_OK && memcmp(d, want, n * sizeof *d) == 0;
    snprintf(note, cap, "%s", st != SG_OK ? sg_last_error() : ok ? "" : "decodes to another matrix");
    free(d), free(want);
    return ok;
}

static int run_op(struct sg_gpu_bench *b, struct out *o, const struct sg_scnn_shape *s, const struct sg_gpu_shape *g,
                  const struct gran *gr, const char *format, double target, double density, const struct sg_gpu_op *op,
                  double dense_ms, struct row *w) {
    memset(w, 0, sizeof *w);
    w->layer = s->name;
    w->m = s->k, w->kd = (int64_t)s->r * s->s * s->c, w->n = g->n * g->p * g->q;
    snprintf(w->gran, sizeof w->gran, "%s", gr ? gr->name : "dense");
    snprintf(w->format, sizeof w->format, "%s", format);
    w->target = target, w->density = density;
    if (o->dry) {
        w->r.ok = dry_check(s, op, w->r.note, sizeof w->r.note);
        w->r.ms = NAN;
        snprintf(w->r.lib, sizeof w->r.lib, "dry run");
    } else if (sg_gpu_bench_run(b, op, &w->r) != SG_OK)
        return cli_fail("%s %s: %s", s->name, w->gran, sg_last_error());
    w->dense_ms = dense_ms > 0 ? dense_ms : w->r.ms;
    if (o->csv) {
        csv_row(o, w);
        fflush(stdout);
    }
    return add_row(o, w);
}

static int bench_layer(struct sg_gpu_bench *b, struct out *o, const struct sg_scnn_shape *s, int batch,
                       const struct gran *grans, int ng, const double *dens, int nd, uint64_t seed) {
    struct sg_gpu_shape g = {batch, s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad, 0, 0};
    g.p = (s->h + 2 * s->pad - s->r) / s->stride + 1;
    g.q = (s->w + 2 * s->pad - s->s) / s->stride + 1;
    struct work x;
    const int64_t cmax = sg_gpu_round_up(s->c, 64);
    int rc = 1;
    if (work_alloc(&x, s, cmax)) goto done;
    sg_rng r;
    sg_rng_seed(&r, seed);
    const float sd = sqrtf(2.0f / (float)(s->c * s->r * s->s)); /* He normal */
    for (size_t i = 0; i < x.nw; i++) x.w0[i] = sd * sg_rng_normal(&r);
    if (!o->dry && sg_gpu_bench_layer(b, &g) != SG_OK) {
        cli_fail("%s: %s", s->name, sg_last_error());
        goto done;
    }
    /* dense first: every speed-up is against it */
    struct row w;
    if (prune(&x, NULL, 1)) goto done;
    struct sg_gpu_op op = {SG_GPUK_DENSE, x.ref, s->c, x.ref, NULL, NULL, NULL, NULL};
    if (run_op(b, o, s, &g, NULL, "dense", 1, 1, &op, 0, &w)) goto done;
    if (!w.r.ok) {
        cli_fail("%s: dense failed on the GPU (%s)", s->name, w.r.note);
        goto done;
    }
    const double dense_ms = w.r.ms;
    for (int gi = 0; gi < ng; gi++) {
        const struct gran *gr = &grans[gi];
        if (gr->kind == G_DENSE) continue;
        const int nden = gr->kind == G_24 ? 1 : nd;
        for (int di = 0; di < nden; di++) {
            const double d = gr->kind == G_24 ? 0.5 : dens[di];
            char spec[48];
            switch (gr->kind) {
            case G_24: snprintf(spec, sizeof spec, "nm:2:4"); break;
            case G_BLOCK: snprintf(spec, sizeof spec, "block:%dx%dx1x1", gr->bs, gr->bs); break;
            default: snprintf(spec, sizeof spec, "%s", gr->name);
            }
            cli_progress_note("%s %s %g ...", s->name, gr->name, d);
            if (prune(&x, spec, d)) goto done;
            const double kept = kept_fraction(&x);
            if (gr->kind == G_FILTER || gr->kind == G_CHANNEL) {
                struct sg_gpu_thin t;
                if (sg_gpu_thin_encode(x.ref, NULL, s->k, (int64_t)s->r * s->s, s->c, gr->kind == G_FILTER, &t) != SG_OK) {
                    cli_fail("%s: %s", s->name, sg_last_error());
                    goto done;
                }
                op = (struct sg_gpu_op){SG_GPUK_THIN, x.ref, s->c, NULL, &t, NULL, NULL, NULL};
                int e = run_op(b, o, s, &g, gr, "dense-thin", d, kept, &op, dense_ms, &w);
                sg_gpu_thin_free(&t);
                if (e) goto done;
            } else if (gr->kind == G_24) {
                const int64_t cpad = sg_gpu_round_up(s->c, 4);
                if (sg_gpu_matrix(&x.v, cpad, x.a, x.am) != SG_OK) goto fail;
                op = (struct sg_gpu_op){SG_GPUK_24, x.ref, cpad, x.a, NULL, NULL, NULL, NULL};
                if (run_op(b, o, s, &g, gr, "2:4", d, kept, &op, dense_ms, &w)) goto done;
            } else if (gr->kind == G_BLOCK) {
                const int64_t cpad = sg_gpu_round_up(s->c, gr->bs), cols = (int64_t)s->r * s->s * cpad;
                if (sg_gpu_matrix(&x.v, cpad, x.a, x.am) != SG_OK) goto fail;
                struct sg_gpu_bsr bsr;
                struct sg_gpu_bell bell;
                if (sg_gpu_bsr_encode(x.a, x.am, s->k, cols, gr->bs, &bsr) != SG_OK) goto fail;
                op = (struct sg_gpu_op){SG_GPUK_BSR, x.ref, cpad, NULL, NULL, NULL, &bsr, NULL};
                int e = run_op(b, o, s, &g, gr, "bsr", d, kept, &op, dense_ms, &w);
                sg_gpu_bsr_free(&bsr);
                if (e) goto done;
                if (sg_gpu_bell_encode(x.a, x.am, s->k, cols, gr->bs, &bell) != SG_OK) goto fail;
                op = (struct sg_gpu_op){SG_GPUK_BELL, x.ref, cpad, NULL, NULL, NULL, NULL, &bell};
                e = run_op(b, o, s, &g, gr, "blocked-ell", d, kept, &op, dense_ms, &w);
                sg_gpu_bell_free(&bell);
                if (e) goto done;
            } else { /* fine, vector, kernel */
                if (sg_gpu_matrix(&x.v, s->c, x.a, x.am) != SG_OK) goto fail;
                struct sg_gpu_csr csr;
                if (sg_gpu_csr_encode(x.a, x.am, s->k, (int64_t)s->r * s->s * s->c, &csr) != SG_OK) goto fail;
                op = (struct sg_gpu_op){SG_GPUK_CSR, x.ref, s->c, NULL, NULL, &csr, NULL, NULL};
                int e = run_op(b, o, s, &g, gr, "csr", d, kept, &op, dense_ms, &w);
                sg_gpu_csr_free(&csr);
                if (e) goto done;
            }
        }
    }
    rc = 0;
    goto done;
fail:
    cli_fail("%s: %s", s->name, sg_last_error());
done:
    work_free(&x);
    return rc;
}

/* Totals over layers per (granularity, format, target density). */
struct total {
    char gran[24], format[16];
    double target, ms, dense_ms, flop_kept, flop_dense;
    int layers, ok;
};

static int totals(const struct out *o, struct total **out) {
    struct total *t = calloc((size_t)o->n + 1, sizeof *t);
    if (!t) return -1;
    int n = 0;
    for (int i = 0; i < o->n; i++) {
        const struct row *w = &o->rows[i];
        int j = 0;
        while (j < n && (strcmp(t[j].gran, w->gran) || strcmp(t[j].format, w->format) || t[j].target != w->target)) j++;
        if (j == n) {
            snprintf(t[n].gran, sizeof t[n].gran, "%s", w->gran);
            snprintf(t[n].format, sizeof t[n].format, "%s", w->format);
            t[n++].target = w->target;
        }
        const double nd = 2.0 * (double)w->m * w->kd * w->n;
        t[j].layers++;
        t[j].dense_ms += w->dense_ms;
        if (w->r.ok) t[j].ok++, t[j].ms += w->r.ms, t[j].flop_kept += nd * w->density, t[j].flop_dense += nd;
    }
    *out = t;
    return n;
}

static void print_json(const struct out *o, const char *libs) {
    struct sg_json j;
    sg_json_init(&j);
    sg_json_obj(&j);
    sg_json_key(&j, "gpu"), sg_json_str(&j, o->gpu);
    sg_json_key(&j, "libraries"), sg_json_str(&j, libs);
    sg_json_key(&j, "net"), sg_json_str(&j, o->net);
    sg_json_key(&j, "dtype"), sg_json_str(&j, o->dtype);
    sg_json_key(&j, "batch"), sg_json_int(&j, o->batch);
    sg_json_key(&j, "peak_tflops"), sg_json_num(&j, o->peak);
    sg_json_key(&j, "timing"), sg_json_str(&j, "CUDA events around the library call; median of repeat runs after warm-up");
    sg_json_key(&j, "rows"), sg_json_arr(&j);
    for (int i = 0; i < o->n; i++) {
        const struct row *w = &o->rows[i];
        const double nd = 2.0 * (double)w->m * w->kd * w->n;
        sg_json_obj(&j);
        sg_json_key(&j, "layer"), sg_json_str(&j, w->layer);
        sg_json_key(&j, "m"), sg_json_int(&j, w->m);
        sg_json_key(&j, "k"), sg_json_int(&j, w->kd);
        sg_json_key(&j, "n"), sg_json_int(&j, w->n);
        sg_json_key(&j, "granularity"), sg_json_str(&j, w->gran);
        sg_json_key(&j, "format"), sg_json_str(&j, w->format);
        sg_json_key(&j, "library"), sg_json_str(&j, w->r.lib);
        sg_json_key(&j, "target_density"), sg_json_num(&j, w->target);
        sg_json_key(&j, "density"), sg_json_num(&j, w->density);
        sg_json_key(&j, "ok"), sg_json_bool(&j, w->r.ok);
        sg_json_key(&j, "dense_ms"), sg_json_num(&j, w->dense_ms);
        if (w->r.ok) {
            sg_json_key(&j, "ms"), sg_json_num(&j, w->r.ms);
            sg_json_key(&j, "speedup"), sg_json_num(&j, w->dense_ms / w->r.ms);
            sg_json_key(&j, "tflops_kept"), sg_json_num(&j, nd * w->density / (w->r.ms * 1e9));
            sg_json_key(&j, "tflops_dense_equiv"), sg_json_num(&j, nd / (w->r.ms * 1e9));
            sg_json_key(&j, "frac_peak"), sg_json_num(&j, nd * w->density / (w->r.ms * 1e9) / o->peak);
            sg_json_key(&j, "max_rel_err"), sg_json_num(&j, w->r.max_rel_err);
        }
        sg_json_key(&j, "note"), sg_json_str(&j, w->r.note);
        sg_json_end(&j);
    }
    sg_json_end(&j);
    struct total *t;
    int nt = totals(o, &t);
    sg_json_key(&j, "totals"), sg_json_arr(&j);
    for (int i = 0; i < nt; i++) {
        sg_json_obj(&j);
        sg_json_key(&j, "granularity"), sg_json_str(&j, t[i].gran);
        sg_json_key(&j, "format"), sg_json_str(&j, t[i].format);
        sg_json_key(&j, "target_density"), sg_json_num(&j, t[i].target);
        sg_json_key(&j, "layers"), sg_json_int(&j, t[i].layers);
        sg_json_key(&j, "layers_ok"), sg_json_int(&j, t[i].ok);
        sg_json_key(&j, "ms"), sg_json_num(&j, t[i].ms);
        sg_json_key(&j, "dense_ms"), sg_json_num(&j, t[i].dense_ms);
        sg_json_end(&j);
    }
    if (nt >= 0) free(t);
    sg_json_end(&j);
    sg_json_end(&j);
    cli_print_json(&j);
}

static void print_text(const struct out *o, const char *libs) {
    printf("%s on %s, %s, batch %d; dense peak %.0f TFLOP/s (cuBLAS 8192^3, measured)\n%s\n", o->net, o->gpu, o->dtype,
           o->batch, o->peak, libs);
    struct cli_table t;
    cli_table_init(&t, 11);
    t.right_align = 0x3f8;
    cli_table_row(&t, "layer", "granularity", "format", "density", "ms", "dense ms", "speed-up", "TFLOP/s kept",
                  "dense-eq", "of peak", "library");
    for (int i = 0; i < o->n; i++) {
        const struct row *w = &o->rows[i];
        const double nd = 2.0 * (double)w->m * w->kd * w->n, ms = w->r.ms;
        if (w->r.ok)
            cli_table_row(&t, w->layer, w->gran, w->format, cli_fmt("%.3f", w->density), cli_fmt("%.4f", ms),
                          cli_fmt("%.4f", w->dense_ms), cli_fmt("%.2fx", w->dense_ms / ms),
                          cli_fmt("%.1f", nd * w->density / (ms * 1e9)), cli_fmt("%.1f", nd / (ms * 1e9)),
                          cli_fmt("%.1f%%", 100 * nd * w->density / (ms * 1e9) / o->peak), w->r.lib);
        else
            cli_table_row(&t, w->layer, w->gran, w->format, cli_fmt("%.3f", w->density), "-", cli_fmt("%.4f", w->dense_ms),
                          "-", "-", "-", "-", "failed (see below)");
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    struct total *tt;
    int nt = totals(o, &tt);
    printf("\ntotal over the layers\n");
    cli_table_init(&t, 9);
    t.right_align = 0x1f8;
    cli_table_row(&t, "granularity", "format", "target", "layers", "ms", "dense ms", "speed-up", "TFLOP/s kept",
                  "dense-eq");
    for (int i = 0; i < nt; i++) {
        const struct total *x = &tt[i];
        const int all = x->ok == x->layers;
        cli_table_row(&t, x->gran, x->format, cli_fmt("%g", x->target), cli_fmt("%d/%d", x->ok, x->layers),
                      all ? cli_fmt("%.3f", x->ms) : "-", cli_fmt("%.3f", x->dense_ms),
                      all ? cli_fmt("%.2fx", x->dense_ms / x->ms) : "-",
                      all ? cli_fmt("%.1f", x->flop_kept / (x->ms * 1e9)) : "-",
                      all ? cli_fmt("%.1f", x->flop_dense / (x->ms * 1e9)) : "-");
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    if (nt >= 0) free(tt);
    for (int i = 0; i < o->n; i++)
        if (o->rows[i].r.note[0])
            printf("note: %s %s %s %g: %s\n", o->rows[i].layer, o->rows[i].gran, o->rows[i].format, o->rows[i].target,
                   o->rows[i].r.note);
}

static int run(struct cli_args *a) {
    const char *net = cli_str(a, "net");
    struct sg_scnn_shape *layers = NULL;
    int nl = 0;
    if (sg_scnn_net_layers(net, &layers, &nl) != SG_OK) cli_usage_error(a, "%s", sg_last_error());
    const char *list = cli_str(a, "layers");
    for (const char *p = list; p && *p;) { /* every listed name must exist */
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < nl; i++) found |= strlen(layers[i].name) == len && strncmp(p, layers[i].name, len) == 0;
        if (!found) {
            free(layers);
            cli_usage_error(a, "unknown layer '%.*s' in --layers for %s", (int)len, p, net);
        }
        if (!e) break;
        p = e + 1;
    }
    const char *only = cli_str(a, "only");
    if (strcmp(only, "all") && strcmp(only, "conv") && strcmp(only, "fc")) {
        free(layers);
        cli_usage_error(a, "unknown --only '%s' (all, conv, fc)", only);
    }
    struct gran grans[32];
    const int ng = parse_grans(a, grans, 32);
    double dens[16];
    const int nd = cli_num_list(a, "density", dens, 16, 1e-6, 1);
    const int dt = sg_gpu_dtype_from_name(cli_str(a, "dtype"));
    if (dt < 0) cli_usage_error(a, "unknown --dtype '%s' (fp16, bf16, tf32, fp32)", cli_str(a, "dtype"));
    if (cli_flag(a, "csv") && cli_flag(a, "json")) cli_usage_error(a, "give --csv or --json, not both");
    struct sg_gpu_bench_cfg cfg = {(enum sg_gpu_dtype)dt, (int)cli_int(a, "warmup", 0, 1000),
                                   (int)cli_int(a, "repeat", 1, 10000), (uint64_t)cli_int(a, "seed", 0, 1L << 40)};
    const int batch = (int)cli_int(a, "batch", 1, 4096);

    struct sg_gpu_bench *b = NULL;
    const int dry = cli_flag(a, "dry-run");
    if (dry && (cli_flag(a, "csv") || cli_flag(a, "json"))) cli_usage_error(a, "--dry-run prints a text summary only");
    if (!dry && sg_gpu_bench_open(&cfg, &b) != SG_OK) {
        free(layers);
        return cli_fail("%s", sg_last_error());
    }
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    struct out o = {cli_flag(a, "csv"), cli_flag(a, "json"), dry, net, cli_str(a, "tag"),
                    dry ? "none" : sg_gpu_bench_device(b), sg_gpu_dtype_name((enum sg_gpu_dtype)dt), date, batch,
                    dry ? 0 : sg_gpu_bench_peak(b), NULL, 0, 0};
    const double t_start = sg_now();
    if (o.csv)
        printf("date,tag,gpu,net,layer,m,k,n,batch,dtype,granularity,format,library,target_density,density,ms,"
               "dense_ms,speedup,tflops_kept,tflops_dense_equiv,peak_tflops,frac_peak,max_rel_err,ok,note\n");
    int rc = 0;
    const int reuse = cli_flag(a, "same-shapes");
    for (int i = 0; i < nl && rc == 0; i++) {
        if (!cli_list_has(list, layers[i].name)) continue;
        if ((!strcmp(only, "conv") && layers[i].is_fc) || (!strcmp(only, "fc") && !layers[i].is_fc)) continue;
        if (layers[i].groups != 1) {
            cli_warn("%s: grouped convolution (%d groups) is left out", layers[i].name, layers[i].groups);
            continue;
        }
        int same = -1;
        for (int j = 0; j < i && reuse && same < 0; j++) {
            const struct sg_scnn_shape *x = &layers[j], *y = &layers[i];
            if (x->c == y->c && x->k == y->k && x->r == y->r && x->s == y->s && x->h == y->h && x->w == y->w &&
                x->stride == y->stride && x->pad == y->pad && x->groups == y->groups)
                same = j;
        }
        const int n0 = o.n;
        int first = -1, last = -1;
        for (int r = 0; r < n0 && same >= 0; r++)
            if (o.rows[r].layer == layers[same].name) {
                if (first < 0) first = r;
                last = r;
            }
        if (first >= 0) { /* the rows of the earlier layer of this shape, copied */
            for (int r = first; r <= last && rc == 0; r++) {
                struct row w = o.rows[r];
                w.layer = layers[i].name;
                char note[sizeof w.r.note];
                snprintf(note, sizeof note, "same shape as %s, not timed again%s%s", layers[same].name,
                         w.r.note[0] ? "; " : "", w.r.note);
                snprintf(w.r.note, sizeof w.r.note, "%s", note);
                if (o.csv) csv_row(&o, &w);
                rc = add_row(&o, &w);
            }
            fflush(stdout);
            continue;
        }
        rc = bench_layer(b, &o, &layers[i], batch, grans, ng, dens, nd, cfg.seed + (uint64_t)i);
    }
    cli_progress_done();
    if (rc == 0 && dry) {
        int bad = 0;
        for (int i = 0; i < o.n; i++)
            if (!o.rows[i].r.ok) {
                bad++;
                printf("MISMATCH %s %s %s %g: %s\n", o.rows[i].layer, o.rows[i].gran, o.rows[i].format,
                       o.rows[i].target, o.rows[i].r.note);
            }
        printf("dry run of %s: %d operands pruned, converted and decoded back in %.1f s on the host; %d differ from "
               "the masked weights\n", net, o.n, sg_now() - t_start, bad);
        rc = bad ? 1 : 0;
    } else if (rc == 0 && o.json) print_json(&o, sg_gpu_bench_libs(b));
    else if (rc == 0 && !o.csv) print_text(&o, sg_gpu_bench_libs(b));
    free(o.rows);
    free(layers);
    if (b) sg_gpu_bench_close(b);
    return rc;
}

const struct cli_cmd cmd_bench_gpu = {
    "bench-gpu",
    "time every granularity on a GPU (cuDNN, cuBLAS, cuSPARSE, cuSPARSELt; make CUDA=1)",
    "[--net vgg16|resnet50|...] [--granularity LIST] [--density LIST] [options]",
    "Random weights (He normal) of each layer are pruned by the pruning library at each\n"
    "granularity and density and converted to the format the GPU library for it takes:\n"
    "dense and filter/channel (a thinner dense layer) through cuDNN and cuBLAS, 2:4 through\n"
    "cuSPARSELt, block:B through cuSPARSE BSR and Blocked-ELL, fine/vector/kernel through\n"
    "cuSPARSE CSR. Each library call is timed alone with CUDA events (median of --repeat\n"
    "runs after --warmup) and its output checked against a dense GEMM of the same masked\n"
    "weights on the device. Needs a build with the GPU part (make CUDA=1; docs/gpu.md).",
    OPTS, 0, 0, run,
};
