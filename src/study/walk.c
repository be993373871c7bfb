/* The no-loss walk down one chain, intervals over seeds and paired verdicts. */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/study.h"

double sg_t975(int df) {
    static const double t[31] = {NAN,    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
                                 2.306,  2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                                 2.120,  2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
                                 2.064,  2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < 1) return NAN;
    if (df <= 30) return t[df];
    if (df <= 40) return 2.042 + (2.021 - 2.042) * (df - 30) / 10.0;
    if (df <= 60) return 2.021 + (2.000 - 2.021) * (df - 40) / 20.0;
    if (df <= 120) return 2.000 + (1.980 - 2.000) * (df - 60) / 60.0;
    return 1.960;
}

void sg_interval_of(const double *x, int n, struct sg_interval *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->half = NAN;
    if (n <= 0) {
        out->mean = out->std = out->min = out->max = NAN;
        return;
    }
    double s = 0;
    out->min = INFINITY;
    out->max = -INFINITY;
    for (int i = 0; i < n; i++) s += x[i], out->min = fmin(out->min, x[i]), out->max = fmax(out->max, x[i]);
    out->mean = s / n;
    if (n < 2) return;
    double sq = 0;
    for (int i = 0; i < n; i++) sq += (x[i] - out->mean) * (x[i] - out->mean);
    out->std = sqrt(sq / (n - 1));
    out->half = sg_t975(n - 1) * out->std / sqrt((double)n);
}

const char *sg_verdict(const struct sg_interval *d) {
    if (d->n < 2 || !isfinite(d->half)) return "-";
    /* a margin for the rounding of densities that are equal by construction */
    if (d->mean - d->half > 1e-12) return "higher";
    if (d->mean + d->half < -1e-12) return "lower";
    return "tie";
}

static const struct sg_point *reference(const struct sg_points *pts, int seed, int step,
                                        enum sg_reference ref) {
    return sg_points_find(pts, "dense", "", seed, ref == SG_REF_BASELINE ? 0 : step);
}

static int passes(double acc, double ref, double tol) {
    return acc >= ref - tol - 1e-12;
}

int sg_study_walk(const struct sg_points *pts, const char *gran, int seed, double tol,
                  enum sg_reference ref, struct sg_walk *w) {
    return sg_study_walk_mean(pts, gran, &seed, 1, tol, ref, w);
}

int sg_study_walk_mean(const struct sg_points *pts, const char *gran, const int *seeds, int nseeds,
                       double tol, enum sg_reference ref, struct sg_walk *w) {
    memset(w, 0, sizeof *w);
    w->density = 1;
    w->end = SG_WALK_NEVER_MET;
    if (nseeds < 1) return 0;
    int max_step = 0;
    for (int k = 0; k < nseeds; k++) {
        if (!sg_points_find(pts, "dense", "", seeds[k], 0)) return 0;
        for (int i = 0; i < pts->n; i++) {
            const struct sg_point *p = &pts->p[i];
            if (p->seed == seeds[k] && !p->control[0] && !strcmp(p->gran, gran) && p->step > max_step)
                max_step = p->step;
        }
    }
    if (max_step == 0) return 0;
    for (int step = 1;; step++) {
        double acc = 0, racc = 0, dens = 0;
        int have = 0, have_ref = 1;
        const struct sg_point *first = NULL;
        for (int k = 0; k < nseeds; k++) {
            const struct sg_point *p = sg_points_find(pts, gran, "", seeds[k], step);
            const struct sg_point *r = reference(pts, seeds[k], step, ref);
            if (!p) continue;
            have++;
            if (!r) {
                have_ref = 0;
                continue;
            }
            if (!first) first = p;
            acc += sg_point_decision(p), racc += sg_point_decision(r), dens += p->density;
        }
        if (have == 0) { /* every chain ends here without a failure */
            w->end = step == 1 ? SG_WALK_INCOMPLETE : SG_WALK_GRID_SHORT;
            return 1;
        }
        if (have < nseeds) { /* some chains stopped earlier: no mean here */
            w->end = SG_WALK_INCOMPLETE;
            return 1;
        }
        if (!have_ref) {
            w->end = SG_WALK_NO_REFERENCE;
            return 1;
        }
        if (!passes(acc / nseeds, racc / nseeds, tol)) {
            w->end = step == 1 ? SG_WALK_NEVER_MET : SG_WALK_LOST;
            return 1;
        }
        w->point = nseeds == 1 ? first : NULL;
        w->density = dens / nseeds;
        w->step = step;
    }
}

/* ---- the chain's decisions ---- */
int sg_study_extend(const struct sg_points *pts, const char *gran, int seed, int last, double tol) {
    const struct sg_point *base = sg_points_find(pts, "dense", "", seed, 0);
    const struct sg_point *p = sg_points_find(pts, gran, "", seed, last);
    return base && p && passes(sg_point_decision(p), sg_point_decision(base), tol);
}

int sg_study_reference_steps(const struct sg_points *pts, int seed, int ngrid) {
    int steps = ngrid;
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (p->seed == seed && !p->control[0] && strcmp(p->gran, "dense") != 0 && p->step > steps)
            steps = p->step;
    }
    return steps;
}

enum sg_status sg_study_scale_profile(const struct sg_profile *rel, const struct sg_model *m,
                                      const struct sg_prune_cfg *pc, double target,
                                      struct sg_profile **out) {
    *out = NULL;
    struct sg_profile *o = calloc(1, sizeof *o);
    if (!o) return sgi_error(SG_ERR_NOMEM, "out of memory");
    o->names = calloc((size_t)m->n_params + 1, sizeof *o->names);
    o->density = calloc((size_t)m->n_params + 1, sizeof *o->density);
    if (!o->names || !o->density) {
        sg_profile_free(o);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    double w = 0, wp = 0;
    struct sg_prune_spec buf;
    for (int32_t i = 0; i < m->n_params; i++) {
        if (!sg_prune_scope(m, pc, i, &buf)) continue;
        /* profiles name layers ("conv2") or their weights ("conv2.weight") */
        char base[SG_NAME_MAX];
        snprintf(base, sizeof base, "%s", m->params[i].name);
        char *dot = strrchr(base, '.');
        if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
        double d = -1;
        for (int k = 0; k < rel->n && d < 0; k++)
            if (!strcmp(rel->names[k], m->params[i].name) || !strcmp(rel->names[k], base))
                d = rel->density[k];
        if (d < 0) {
            sg_profile_free(o);
            return sgi_error(SG_ERR_ARG, "the profile has no density for layer '%s'", base);
        }
        snprintf(o->names[o->n], SG_NAME_MAX, "%s", m->params[i].name);
        o->density[o->n++] = d;
        w += (double)m->params[i].count, wp += (double)m->params[i].count * d;
    }
    const double scale = wp > 0 ? target * w / wp : 0;
    for (int k = 0; k < o->n; k++) o->density[k] = fmin(1.0, o->density[k] * scale);
    *out = o;
    return SG_OK;
}
