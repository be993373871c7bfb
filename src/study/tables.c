/* The study's tables from its points: accuracy-vs-density curves and the no-loss
 * density per granularity (the paper's main table). */
#include <math.h>
#include <stdarg.h>

#include "core/sgi.h"
#include "sparsegrain/study.h"

static int is_pruned_curve(const struct sg_point *p) {
    return strcmp(p->gran, "dense") != 0 && p->control[0] == 0;
}

static int find_name(char (*names)[48], int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

/* Paper order first (fine, vector, kernel, filter), then ours, then anything else. */
static int gran_rank(const char *g) {
    static const char *const order[] = {"fine", "vector", "vector:col", "kernel", "filter",
                                        "channel", "block", "nm"};
    for (int i = 0; i < 8; i++)
        if (strncmp(g, order[i], strlen(order[i])) == 0 &&
            (g[strlen(order[i])] == 0 || (i >= 6 && g[strlen(order[i])] == ':')))
            return i;
    return 8;
}

static int cmp_gran(const void *a, const void *b) {
    const char *x = a, *y = b;
    int c = gran_rank(x) - gran_rank(y);
    return c ? c : strcmp(x, y);
}

/* One column of a row: the walks of every seed against one reference. */
static void fill_col(const struct sg_points *pts, const char *gran, const int *seeds, int ns,
                     double tol, enum sg_reference ref, struct sg_noloss_col *c, double *dens) {
    memset(c, 0, sizeof *c);
    double top = 0, val = 0;
    int nval = 0;
    for (int k = 0; k < ns; k++) {
        struct sg_walk w;
        sg_study_walk(pts, gran, seeds[k], tol, ref, &w);
        dens[k] = w.density;
        c->never_met += w.end == SG_WALK_NEVER_MET;
        c->grid_short += w.end == SG_WALK_GRID_SHORT;
        c->no_ref += w.end == SG_WALK_NO_REFERENCE;
        const struct sg_point *at = w.point ? w.point : sg_points_find(pts, "dense", "", seeds[k], 0);
        top += at->top1;
        if (isfinite(at->val_top1)) val += at->val_top1, nval++;
    }
    sg_interval_of(dens, ns, &c->d);
    c->top1 = ns ? top / ns : NAN;
    c->val_top1 = nval ? val / nval : NAN;
    struct sg_walk w;
    c->walk_mean = sg_study_walk_mean(pts, gran, seeds, ns, tol, ref, &w) ? w.density : NAN;
}

enum sg_status sg_study_noloss(const struct sg_points *pts, double tol, struct sg_noloss **out,
                               int *nout) {
    *out = NULL;
    *nout = 0;
    char(*grans)[48] = calloc((size_t)pts->n + 1, sizeof *grans);
    int ng = 0;
    for (int i = 0; grans && i < pts->n; i++)
        if (is_pruned_curve(&pts->p[i]) && find_name(grans, ng, pts->p[i].gran) < 0)
            strcpy(grans[ng++], pts->p[i].gran);
    if (grans) qsort(grans, (size_t)ng, sizeof *grans, cmp_gran);
    struct sg_noloss *rows = calloc((size_t)ng + 1, sizeof *rows);
    int *seeds = calloc((size_t)pts->n + 1, sizeof *seeds);
    double *fair = NULL; /* [granularity][seed]: allocated once the seeds are known */
    double *tmp = calloc((size_t)pts->n + 1, sizeof *tmp);
    if (!grans || !rows || !seeds || !tmp) {
        free(grans), free(rows), free(seeds), free(fair), free(tmp);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    /* the seeds with a baseline, in increasing order */
    int ns = 0;
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (strcmp(p->gran, "dense") || p->control[0] || p->step != 0) continue;
        int at = ns;
        for (int k = 0; k < ns; k++)
            if (seeds[k] == p->seed) at = -1;
        if (at < 0) continue;
        while (at > 0 && seeds[at - 1] > p->seed) seeds[at] = seeds[at - 1], at--;
        seeds[at] = p->seed;
        ns++;
    }
    const size_t stride = (size_t)ns + 1;
    fair = calloc((size_t)(ng + 1) * stride, sizeof *fair);
    if (!fair) {
        free(grans), free(rows), free(seeds), free(tmp);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    double bt = 0, bv = 0;
    int nbv = 0;
    for (int k = 0; k < ns; k++) {
        const struct sg_point *b = sg_points_find(pts, "dense", "", seeds[k], 0);
        bt += b->top1;
        if (isfinite(b->val_top1)) bv += b->val_top1, nbv++;
    }
    for (int g = 0; g < ng; g++) {
        struct sg_noloss *r = &rows[g];
        strcpy(r->gran, grans[g]);
        /* the seeds of this granularity that have a baseline */
        int gs[1024], n = 0;
        for (int k = 0; k < ns && n < 1024; k++) {
            struct sg_walk w;
            if (sg_study_walk(pts, grans[g], seeds[k], tol, SG_REF_BASELINE, &w)) gs[n++] = seeds[k];
        }
        r->seeds = n;
        r->baseline_top1 = ns ? bt / ns : NAN;
        r->baseline_val_top1 = nbv ? bv / nbv : NAN;
        r->diff.half = NAN;
        strcpy(r->verdict, "-");
        if (!n) continue;
        fill_col(pts, grans[g], gs, n, tol, SG_REF_BASELINE, &r->base, tmp);
        /* the fair column, kept per seed (indexed by the global seed order) for pairing */
        double *fd = fair + (size_t)g * stride;
        for (int k = 0; k < ns; k++) fd[k] = NAN;
        fill_col(pts, grans[g], gs, n, tol, SG_REF_RETRAINED, &r->fair, tmp);
        for (int j = 0, k = 0; j < n; j++) {
            while (seeds[k] != gs[j]) k++;
            fd[k] = tmp[j];
        }
        r->mean = r->fair.d.mean, r->min = r->fair.d.min, r->max = r->fair.d.max;
        r->std = r->fair.d.std, r->ci = r->fair.d.half;
        r->never_lost = r->fair.grid_short, r->never_met = r->fair.never_met;
        r->top1 = r->fair.top1, r->val_top1 = r->fair.val_top1;
    }
    /* paired by seed against the first row that has seeds */
    int ref = -1;
    for (int g = 0; g < ng && ref < 0; g++)
        if (rows[g].seeds) ref = g;
    for (int g = 0; ref >= 0 && g < ng; g++) {
        struct sg_noloss *r = &rows[g];
        if (!r->seeds) continue;
        strcpy(r->vs, grans[ref]);
        const double *a = fair + (size_t)g * stride;
        const double *b = fair + (size_t)ref * stride;
        int m = 0;
        for (int k = 0; k < ns; k++)
            if (isfinite(a[k]) && isfinite(b[k])) tmp[m++] = a[k] - b[k];
        sg_interval_of(tmp, m, &r->diff);
        snprintf(r->verdict, sizeof r->verdict, "%s", g == ref ? "-" : sg_verdict(&r->diff));
    }
    free(grans), free(seeds), free(fair), free(tmp);
    *out = rows;
    *nout = ng;
    return SG_OK;
}

static int cmp_point(const void *x, const void *y) {
    const struct sg_point *a = x, *b = y;
    int c = strcmp(a->gran, "dense") == 0 ? -1 : 0;
    c += strcmp(b->gran, "dense") == 0 ? 1 : 0;
    if (!c) c = cmp_gran(a->gran, b->gran);
    if (!c) c = strcmp(a->control, b->control);
    if (!c) c = (a->step > b->step) - (a->step < b->step);
    if (!c) c = (a->seed > b->seed) - (a->seed < b->seed);
    return c;
}

/* A sorted copy of the points (dense first, paper order, control, step, seed). */
static enum sg_status sorted_copy(const struct sg_points *in, struct sg_points *out) {
    *out = *in;
    out->p = malloc(sizeof *out->p * (size_t)(in->n > 0 ? in->n : 1));
    if (!out->p) return sgi_error(SG_ERR_NOMEM, "out of memory");
    if (in->n) memcpy(out->p, in->p, sizeof *out->p * (size_t)in->n);
    qsort(out->p, (size_t)in->n, sizeof *out->p, cmp_point);
    out->cap = in->n;
    return SG_OK;
}

/* Curves: mean and spread of top-1 per (granularity, control, step), one row per
 * group in the order its first point appears in the sorted points. */
enum sg_status sg_study_curves(const struct sg_points *pts_in, struct sg_curve **out, int *nout) {
    *out = NULL;
    *nout = 0;
    struct sg_points pts;
    enum sg_status st = sorted_copy(pts_in, &pts);
    if (st != SG_OK) return st;
    uint8_t *done = calloc((size_t)pts.n + 1, 1);
    struct sg_curve *rows = calloc((size_t)pts.n + 1, sizeof *rows);
    if (!done || !rows) {
        free(done), free(rows), free(pts.p);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    int nr = 0;
    for (int i = 0; i < pts.n; i++) {
        if (done[i]) continue;
        const struct sg_point *a = &pts.p[i];
        double s = 0, sq = 0, mn = INFINITY, mx = -INFINITY, dens = 0, loss = 0, val = 0;
        int n = 0, epochs = 0, nval = 0;
        for (int j = i; j < pts.n; j++) {
            const struct sg_point *p = &pts.p[j];
            if (done[j] || strcmp(p->gran, a->gran) || strcmp(p->control, a->control) ||
                p->step != a->step)
                continue;
            done[j] = 1;
            s += p->top1, sq += p->top1 * p->top1, mn = fmin(mn, p->top1), mx = fmax(mx, p->top1);
            dens += p->density, loss += p->loss, epochs = p->epochs, n++;
            if (isfinite(p->val_top1)) val += p->val_top1, nval++;
        }
        struct sg_curve *r = &rows[nr++];
        snprintf(r->gran, sizeof r->gran, "%s", a->gran);
        snprintf(r->control, sizeof r->control, "%s", a->control);
        r->step = a->step;
        r->target = a->target;
        r->seeds = n;
        r->density = dens / n;
        r->mean = s / n;
        r->std = n > 1 ? sqrt(fmax(0, (sq - s * s / n) / (n - 1))) : 0;
        r->min = mn;
        r->max = mx;
        r->loss = loss / n;
        r->val_mean = nval ? val / nval : NAN;
        r->epochs = epochs;
    }
    free(done);
    free(pts.p);
    *out = rows;
    *nout = nr;
    return SG_OK;
}

const struct sg_point *sg_study_noloss_point(const struct sg_points *pts, const char *gran, int seed,
                                             double tol) {
    struct sg_walk w;
    if (!sg_study_walk(pts, gran, seed, tol, SG_REF_RETRAINED, &w)) return NULL;
    return w.point;
}

/* printf into one of a few rotating buffers (for one table row at a time). */
static const char *tmpf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tmpf(const char *fmt, ...) {
    static _Thread_local char ring[8][64];
    static _Thread_local int at;
    char *b = ring[at++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof ring[0], fmt, ap);
    va_end(ap);
    return b;
}

/* A number for a CSV cell: empty when not a number. */
static const char *num6(char *b, double x) {
    if (!isfinite(x)) return "";
    snprintf(b, 32, "%.6f", x);
    return b;
}

/* The note of a column: which seeds ended how. */
static void col_note(char *out, size_t cap, const struct sg_noloss_col *c, int seeds) {
    size_t n = 0;
    out[0] = 0;
#define NOTE(count, text)                                                                      \
    if ((count) && n < cap)                                                                    \
        n += (size_t)snprintf(out + n, cap - n, "%s" text "%s", n ? "; " : "",                  \
                              (count) == seeds ? "" : tmpf(" (%d of %d seeds)", (count), seeds))
    NOTE(c->never_met, "never met: no pruned point met the tolerance");
    NOTE(c->grid_short, "grid too short: never lost accuracy");
    NOTE(c->no_ref, "no dense reference further down");
#undef NOTE
}

static enum sg_status write_curves(const struct sg_points *pts, struct sgi_buf *b) {
    char v[32];
    struct sg_curve *rows;
    int n;
    enum sg_status st = sg_study_curves(pts, &rows, &n);
    if (st != SG_OK) return st;
    sgi_buf_printf(b, "granularity,control,step,target,seeds,density,top1_mean,top1_std,top1_min,"
                      "top1_max,val_top1_mean,loss_mean,epochs\n");
    for (int i = 0; i < n; i++) {
        const struct sg_curve *r = &rows[i];
        sgi_buf_printf(b, "%s,%s,%d,%g,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%s,%.6f,%d\n", r->gran,
                       r->control, r->step, r->target, r->seeds, r->density, r->mean, r->std, r->min,
                       r->max, num6(v, r->val_mean), r->loss, r->epochs);
    }
    free(rows);
    return SG_OK;
}

enum sg_status sg_study_write_tables(const struct sg_points *pts_in, double tol, const char *dir) {
    struct sg_points pts;
    enum sg_status st = sorted_copy(pts_in, &pts);
    if (st != SG_OK) return st;
    struct sgi_buf b = {0};
    char path[4096];
    st = write_curves(&pts, &b);
    snprintf(path, sizeof path, "%s/curves.csv", dir);
    if (st == SG_OK) st = b.failed ? SG_ERR_NOMEM : sg_file_write_atomic(path, b.data, b.len);
    sgi_buf_free(&b);
    struct sg_noloss *rows = NULL;
    int n = 0;
    if (st == SG_OK) st = sg_study_noloss(&pts, tol, &rows, &n);
    if (st == SG_OK) {
        sgi_buf_printf(&b, "granularity,seeds,no_loss_density,ci95,std,min,max,mean_curve,"
                           "top1_at_no_loss,val_top1_at_no_loss,vs,diff_mean,diff_ci95,verdict,note,"
                           "vs_baseline_density,vs_baseline_ci95,vs_baseline_mean_curve,"
                           "vs_baseline_note,baseline_top1,baseline_val_top1,tolerance\n");
        for (int i = 0; i < n; i++) {
            const struct sg_noloss *r = &rows[i];
            if (!r->seeds) continue;
            char note[256], bnote[256], c[10][32];
            col_note(note, sizeof note, &r->fair, r->seeds);
            col_note(bnote, sizeof bnote, &r->base, r->seeds);
            sgi_buf_printf(&b, "%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,\"%s\",%s,%s,%s,\"%s\","
                               "%s,%s,%g\n",
                           r->gran, r->seeds, num6(c[0], r->mean), num6(c[1], r->ci),
                           num6(c[2], r->std), num6(c[3], r->min), num6(c[4], r->max),
                           num6(c[5], r->fair.walk_mean), num6(c[6], r->top1),
                           num6(c[7], r->val_top1), r->vs, num6(c[8], r->diff.mean),
                           num6(c[9], r->diff.half), r->verdict, note,
                           tmpf("%.6f", r->base.d.mean),
                           isfinite(r->base.d.half) ? tmpf("%.6f", r->base.d.half) : "",
                           isfinite(r->base.walk_mean) ? tmpf("%.6f", r->base.walk_mean) : "",
                           bnote, tmpf("%.6f", r->baseline_top1),
                           isfinite(r->baseline_val_top1) ? tmpf("%.6f", r->baseline_val_top1) : "",
                           tol);
        }
        snprintf(path, sizeof path, "%s/no_loss.csv", dir);
        st = b.failed ? SG_ERR_NOMEM : sg_file_write_atomic(path, b.data, b.len);
    }
    sgi_buf_free(&b);
    free(rows);
    free(pts.p);
    return st;
}
