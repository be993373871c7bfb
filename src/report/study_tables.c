/* The study's tables from its points: accuracy-vs-density curves and the no-loss
 * density per granularity (the paper's main table). */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/report.h"

static int is_pruned_curve(const struct sg_point *p) {
    return strcmp(p->gran, "dense") != 0 && p->control[0] == 0;
}

/* The dense point of a seed at a step (step 0 = baseline), or NULL. */
static const struct sg_point *dense_at(const struct sg_points *pts, int seed, int step) {
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (strcmp(p->gran, "dense") == 0 && p->control[0] == 0 && p->seed == seed &&
            p->step == step)
            return p;
    }
    return NULL;
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

enum sg_status sg_study_noloss(const struct sg_points *pts, double tol, struct sg_noloss **out,
                               int *nout) {
    *out = NULL;
    *nout = 0;
    char(*grans)[48] = calloc((size_t)pts->n + 1, sizeof *grans);
    int ng = 0;
    for (int i = 0; i < pts->n; i++)
        if (is_pruned_curve(&pts->p[i]) && find_name(grans, ng, pts->p[i].gran) < 0)
            strcpy(grans[ng++], pts->p[i].gran);
    qsort(grans, (size_t)ng, sizeof *grans, cmp_gran);
    struct sg_noloss *rows = calloc((size_t)ng + 1, sizeof *rows);
    if (!grans || !rows) {
        free(grans), free(rows);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    for (int g = 0; g < ng; g++) {
        struct sg_noloss *r = &rows[g];
        strcpy(r->gran, grans[g]);
        double sum = 0, sq = 0, top = 0, fair_sum = 0, base_sum = 0;
        int fair_n = 0;
        r->min = INFINITY;
        r->max = -INFINITY;
        r->never_lost = 1;
        r->never_met = 1;
        int seeds[1024], ns = 0;
        for (int i = 0; i < pts->n; i++) {
            const struct sg_point *p = &pts->p[i];
            if (!is_pruned_curve(p) || strcmp(p->gran, grans[g]) != 0) continue;
            int seen = 0;
            for (int k = 0; k < ns; k++) seen |= seeds[k] == p->seed;
            if (!seen && ns < 1024) seeds[ns++] = p->seed;
        }
        for (int k = 0; k < ns; k++) {
            const struct sg_point *base = dense_at(pts, seeds[k], 0);
            if (!base) continue;
            double best = 1.0, best_top1 = base->top1, fair = 1.0;
            int lost = 0, met = 0, fair_ok = 0;
            for (int i = 0; i < pts->n; i++) {
                const struct sg_point *p = &pts->p[i];
                if (!is_pruned_curve(p) || strcmp(p->gran, grans[g]) || p->seed != seeds[k] ||
                    p->step == 0)
                    continue;
                if (p->top1 >= base->top1 - tol - 1e-12) {
                    met = 1;
                    if (p->density < best) best = p->density, best_top1 = p->top1;
                } else {
                    lost = 1;
                }
                const struct sg_point *ref = dense_at(pts, seeds[k], p->step);
                if (ref) {
                    fair_ok = 1;
                    if (p->top1 >= ref->top1 - tol - 1e-12 && p->density < fair) fair = p->density;
                }
            }
            r->never_lost &= !lost;
            r->never_met &= !met;
            r->seeds++;
            sum += best;
            sq += best * best;
            top += best_top1;
            base_sum += base->top1;
            r->min = fmin(r->min, best);
            r->max = fmax(r->max, best);
            if (fair_ok) fair_sum += fair, fair_n++;
        }
        if (r->seeds == 0) continue;
        r->mean = sum / r->seeds;
        r->std = r->seeds > 1 ? sqrt(fmax(0, (sq - sum * sum / r->seeds) / (r->seeds - 1))) : 0;
        r->top1 = top / r->seeds;
        r->baseline_top1 = base_sum / r->seeds;
        r->fair_mean = fair_n ? fair_sum / fair_n : -1;
    }
    free(grans);
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
        double s = 0, sq = 0, mn = INFINITY, mx = -INFINITY, dens = 0, loss = 0;
        int n = 0, epochs = 0;
        for (int j = i; j < pts.n; j++) {
            const struct sg_point *p = &pts.p[j];
            if (done[j] || strcmp(p->gran, a->gran) || strcmp(p->control, a->control) ||
                p->step != a->step)
                continue;
            done[j] = 1;
            s += p->top1, sq += p->top1 * p->top1, mn = fmin(mn, p->top1), mx = fmax(mx, p->top1);
            dens += p->density, loss += p->loss, epochs = p->epochs, n++;
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
    const struct sg_point *base = dense_at(pts, seed, 0), *best = NULL;
    if (!base) return NULL;
    /* the same rule as sg_study_noloss: strictly below the best so far, from 1 down */
    double best_d = 1.0;
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (!is_pruned_curve(p) || strcmp(p->gran, gran) || p->seed != seed || p->step == 0) continue;
        if (p->top1 >= base->top1 - tol - 1e-12 && p->density < best_d) best_d = p->density, best = p;
    }
    return best;
}

static enum sg_status write_curves(const struct sg_points *pts, struct sgi_buf *b) {
    struct sg_curve *rows;
    int n;
    enum sg_status st = sg_study_curves(pts, &rows, &n);
    if (st != SG_OK) return st;
    sgi_buf_printf(b, "granularity,control,step,target,seeds,density,top1_mean,top1_std,top1_min,"
                      "top1_max,loss_mean,epochs\n");
    for (int i = 0; i < n; i++) {
        const struct sg_curve *r = &rows[i];
        sgi_buf_printf(b, "%s,%s,%d,%g,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%d\n", r->gran, r->control,
                       r->step, r->target, r->seeds, r->density, r->mean, r->std, r->min, r->max,
                       r->loss, r->epochs);
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
        sgi_buf_printf(&b, "granularity,seeds,no_loss_density,min,max,std,top1_at_no_loss,"
                           "baseline_top1,no_loss_density_vs_dense_same_epochs,tolerance,note\n");
        for (int i = 0; i < n; i++) {
            const struct sg_noloss *r = &rows[i];
            if (!r->seeds) continue;
            const char *note = r->never_met ? "no pruned point met the tolerance"
                               : r->never_lost ? "never lost accuracy on this grid"
                                               : "";
            sgi_buf_printf(&b, "%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%g,%s\n", r->gran,
                           r->seeds, r->mean, r->min, r->max, r->std, r->top1, r->baseline_top1,
                           r->fair_mean, tol, note);
        }
        snprintf(path, sizeof path, "%s/no_loss.csv", dir);
        st = b.failed ? SG_ERR_NOMEM : sg_file_write_atomic(path, b.data, b.len);
    }
    sgi_buf_free(&b);
    free(rows);
    free(pts.p);
    return st;
}
