/* The GPU section's table: bench-gpu's per-layer rows (gpu.csv) summed over the layers
 * of each network, per GPU, dtype, granularity, format and target density. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sgi.h"
#include "sparsegrain/report.h"

static const char *const NEED[] = {"gpu", "net", "dtype", "layer", "granularity", "format", "target_density",
                                   "density", "m", "k", "n", "ms", "dense_ms", "ok", "peak_tflops"};
enum { GPU, NET, DTYPE, LAYER, GRAN, FORMAT, TARGET, DENSITY, M, K, N, MS, DENSE_MS, OK, PEAK, NNEED };

struct acc {
    int first;   /* row that opened the group */
    int layers, ok;
    double ms, dense_ms, dense_ms_ok, flop_kept, flop_dense, peak;
};

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

enum sg_status sg_report_gpu_summary(const struct sg_csv *t, const char *what, struct sg_csv **out) {
    *out = NULL;
    int col[NNEED];
    for (int i = 0; i < NNEED; i++)
        if ((col[i] = sg_csv_col(t, NEED[i])) < 0)
            return sgi_error(SG_ERR_FORMAT, "%s: no column '%s'; give the CSV that 'sparsegrain bench-gpu --csv' "
                                            "writes (bench/results/gpu.csv)", what, NEED[i]);
    if (t->nrows == 0) return sgi_error(SG_ERR_FORMAT, "%s: no rows", what);
    struct acc *a = calloc((size_t)t->nrows, sizeof *a);
    int *grp = calloc((size_t)t->nrows, sizeof *grp);
    if (!a || !grp) {
        free(a), free(grp);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    static const int KEY[] = {GPU, NET, DTYPE, GRAN, FORMAT, TARGET};
    int ng = 0;
    for (int r = 0; r < t->nrows; r++) {
        int g;
        for (g = 0; g < ng; g++) {
            int same = 1;
            for (size_t k = 0; k < sizeof KEY / sizeof KEY[0] && same; k++)
                same = !strcmp(sg_csv_get(t, r, col[KEY[k]]), sg_csv_get(t, a[g].first, col[KEY[k]]));
            if (same) break;
        }
        if (g == ng) a[ng++].first = r;
        double m, k, n, d, ms, dms, ok = 0, peak = 0;
        if (!sg_csv_num(t, r, col[M], &m) || !sg_csv_num(t, r, col[K], &k) || !sg_csv_num(t, r, col[N], &n) ||
            !sg_csv_num(t, r, col[DENSITY], &d) || !sg_csv_num(t, r, col[DENSE_MS], &dms)) {
            free(a), free(grp);
            return sgi_error(SG_ERR_FORMAT, "%s: row %d: m, k, n, density or dense_ms is not a number", what, r + 2);
        }
        sg_csv_num(t, r, col[OK], &ok);
        sg_csv_num(t, r, col[PEAK], &peak);
        struct acc *x = &a[g];
        x->layers++;
        x->dense_ms += dms;
        x->peak = peak;
        if (ok == 1 && sg_csv_num(t, r, col[MS], &ms) && ms > 0) {
            x->ok++;
            x->ms += ms;
            x->dense_ms_ok += dms;
            x->flop_kept += 2 * m * k * n * d;
            x->flop_dense += 2 * m * k * n;
        }
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(a), free(grp);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    fprintf(f, "gpu,net,dtype,granularity,format,variant,target_density,layers,layers_ok,ms,dense_ms,speedup,"
               "tflops_kept,tflops_dense_equiv,frac_peak\n");
    for (int g = 0; g < ng; g++) {
        const struct acc *x = &a[g];
        for (size_t k = 0; k < sizeof KEY / sizeof KEY[0] - 1; k++) {
            csv_field(f, sg_csv_get(t, x->first, col[KEY[k]]));
            fputc(',', f);
        }
        char variant[96];
        snprintf(variant, sizeof variant, "%s %s", sg_csv_get(t, x->first, col[GRAN]),
                 sg_csv_get(t, x->first, col[FORMAT]));
        csv_field(f, variant);
        fprintf(f, ",%s,%d,%d,", sg_csv_get(t, x->first, col[TARGET]), x->layers, x->ok);
        if (x->ok == x->layers) /* totals only where every layer ran */
            fprintf(f, "%.4f,%.4f,%.3f,%.2f,%.2f,%.4f\n", x->ms, x->dense_ms, x->dense_ms / x->ms,
                    x->flop_kept / (x->ms * 1e9), x->flop_dense / (x->ms * 1e9),
                    x->peak > 0 ? x->flop_kept / (x->ms * 1e9) / x->peak : 0);
        else
            fprintf(f, ",%.4f,,,,\n", x->dense_ms);
    }
    fclose(f);
    free(a), free(grp);
    enum sg_status st = sg_csv_parse(text, len, what, out);
    free(text);
    return st;
}
