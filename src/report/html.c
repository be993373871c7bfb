/* The study report: one self-contained HTML page (inline SVG and CSS, no
 * scripts, nothing from the network) built from result structs. The page is
 * also well-formed XML, so tests can check it with both an XML and an HTML
 * parser. Every number in a table carries the exact value of the CSV file it
 * comes from in a data-v attribute (same format as the CSV), so a test can
 * compare the page with the files cell by cell. */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "report_internal.h"

/* ---- environment ---- */

void sg_report_env_probe(struct sg_report_env *e) {
    memset(e, 0, sizeof *e);
    snprintf(e->version, sizeof e->version, "%s", SG_VERSION_STRING);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(e->date, sizeof e->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else snprintf(e->date, sizeof e->date, "unknown");
    struct utsname u;
    if (uname(&u) == 0) snprintf(e->os, sizeof e->os, "%s %s %s", u.sysname, u.release, u.machine);
    else snprintf(e->os, sizeof e->os, "unknown");
    snprintf(e->cpu, sizeof e->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            const char *v = strchr(line, ':');
            if (!v) continue;
            v++;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(e->cpu, sizeof e->cpu, "%s", v);
            e->cpu[strcspn(e->cpu, "\n")] = 0;
            break;
        }
        fclose(f);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    e->cores = n > 0 ? (int)n : 0;
}

/* ---- small writers ---- */

static void txt(struct sgi_buf *b, const char *s) { sgi_xml_text(b, s); }

/* A numeric cell: shown text, plus the CSV column and exact CSV text. */
static void td_num(struct sgi_buf *b, const char *col, const char *exact, const char *shown) {
    sgi_buf_printf(b, "<td class=\"num\"");
    if (col) {
        sgi_buf_printf(b, " data-col=\"");
        txt(b, col);
        sgi_buf_printf(b, "\" data-v=\"");
        txt(b, exact);
        sgi_buf_printf(b, "\"");
    }
    sgi_buf_printf(b, ">");
    txt(b, shown);
    sgi_buf_printf(b, "</td>");
}

static void td_text(struct sgi_buf *b, const char *s) {
    sgi_buf_printf(b, "<td>");
    txt(b, s);
    sgi_buf_printf(b, "</td>");
}

static const char *fmt6(char *buf, size_t cap, double v) {
    if (!isfinite(v)) snprintf(buf, cap, "%s", ""); /* as the CSV files write it */
    else snprintf(buf, cap, "%.6f", v);
    return buf;
}

/* ---- what the page needs from the points ---- */

#define MAX_GRANS 32
struct ctx {
    struct sgi_buf *b;
    const struct sg_report_input *in;
    struct sg_curve *curves;
    int n_curves;
    struct sg_noloss *nl;
    int n_nl;
    char grans[MAX_GRANS][48]; /* pruned granularities in paper order: colour i, marker i */
    int n_grans;
    int have_base;
    double base_mean, base_min, base_max, base_std; /* dense step 0, top-1 fraction */
    int seeds;
    cJSON *settings;
    int fig; /* figure counter */
};

static int gran_index(const struct ctx *c, const char *g) {
    for (int i = 0; i < c->n_grans; i++)
        if (strcmp(c->grans[i], g) == 0) return i;
    return -1;
}

static enum sg_marker gran_marker(int i) {
    static const enum sg_marker M[] = {SG_MARK_CIRCLE, SG_MARK_SQUARE, SG_MARK_DIAMOND, SG_MARK_TRIANGLE,
                                       SG_MARK_DOWN};
    return M[(i < 0 ? 0 : i) % 5];
}

static const char *setting_str(const struct ctx *c, const char *key) {
    const cJSON *v = c->settings ? cJSON_GetObjectItemCaseSensitive(c->settings, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double setting_num(const struct ctx *c, const char *key) {
    const cJSON *v = c->settings ? cJSON_GetObjectItemCaseSensitive(c->settings, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---- charts of accuracy against density ---- */

/* Series data kept alive until the chart is written. */
struct acc_series {
    double *x, *y, *lo, *hi;
    char **tip;
    char name[96];
};

static void acc_release(struct acc_series *s);

static void acc_free(struct acc_series *s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) acc_release(&s[i]);
    free(s);
}

/* Frees a slot that ended up empty so that the next series can use it. */
static void acc_release(struct acc_series *s) {
    free(s->x), free(s->y), free(s->lo), free(s->hi);
    if (s->tip)
        for (int k = 0; s->tip[k]; k++) free(s->tip[k]);
    free(s->tip);
    memset(s, 0, sizeof *s);
}

static int acc_alloc(struct acc_series *s, int n) {
    s->x = calloc((size_t)n + 1, sizeof(double));
    s->y = calloc((size_t)n + 1, sizeof(double));
    s->lo = calloc((size_t)n + 1, sizeof(double));
    s->hi = calloc((size_t)n + 1, sizeof(double));
    s->tip = calloc((size_t)n + 2, sizeof(char *));
    return s->x && s->y && s->lo && s->hi && s->tip;
}

static char *tip_of(const char *name, const struct sg_curve *r, double x_shown, const char *x_what) {
    char buf[320];
    if (r->seeds > 1)
        snprintf(buf, sizeof buf, "%s: %s %.4f, top-1 %.2f%% (mean of %d seeds, %.2f to %.2f%%, std %.2f), "
                                  "%d epochs",
                 name, x_what, x_shown, 100 * r->mean, r->seeds, 100 * r->min, 100 * r->max, 100 * r->std,
                 r->epochs);
    else
        snprintf(buf, sizeof buf, "%s: %s %.4f, top-1 %.2f%%, %d epochs", name, x_what, x_shown, 100 * r->mean,
                 r->epochs);
    return strdup(buf);
}

static void band_of(const struct ctx *c, double mean, double mn, double mx, double sd, double *lo, double *hi) {
    if (c->in->band_std) *lo = 100 * (mean - sd), *hi = 100 * (mean + sd);
    else *lo = 100 * mn, *hi = 100 * mx;
}

/* Builds the series: one per granularity (starting at the dense baseline), the
 * dense reference trained as long, and the reinit controls (markers only). */
static enum sg_status acc_build(const struct ctx *c, struct acc_series **out, struct sg_series **sv, int *ns) {
    const int cap = 2 * c->n_grans + 2;
    struct acc_series *a = calloc((size_t)cap, sizeof *a);
    struct sg_series *s = calloc((size_t)cap, sizeof *s);
    if (!a || !s) {
        free(a), free(s);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    const struct sg_curve *base = NULL;
    for (int i = 0; i < c->n_curves; i++)
        if (!strcmp(c->curves[i].gran, "dense") && !c->curves[i].control[0] && c->curves[i].step == 0)
            base = &c->curves[i];
    for (int g = 0; g < c->n_grans; g++) {
        struct acc_series *q = &a[n];
        if (!acc_alloc(q, c->n_curves + 1)) goto nomem;
        snprintf(q->name, sizeof q->name, "%s", c->grans[g]);
        int k = 0;
        if (base) { /* every chain starts from the dense baseline */
            q->x[k] = 1, q->y[k] = 100 * base->mean;
            band_of(c, base->mean, base->min, base->max, base->std, &q->lo[k], &q->hi[k]);
            q->tip[k] = tip_of("dense baseline", base, 1, "density");
            if (!q->tip[k++]) goto nomem;
        }
        for (int i = 0; i < c->n_curves; i++) {
            const struct sg_curve *r = &c->curves[i];
            if (strcmp(r->gran, c->grans[g]) || r->control[0] || r->step == 0) continue;
            q->x[k] = r->density, q->y[k] = 100 * r->mean;
            band_of(c, r->mean, r->min, r->max, r->std, &q->lo[k], &q->hi[k]);
            if (!(q->tip[k++] = tip_of(c->grans[g], r, r->density, "density"))) goto nomem;
        }
        s[n] = (struct sg_series){.name = q->name, .n = k, .x = q->x, .y = q->y, .lo = c->seeds > 1 ? q->lo : NULL,
                                  .hi = c->seeds > 1 ? q->hi : NULL, .color = g, .marker = gran_marker(g),
                                  .tip = (const char *const *)q->tip};
        n++;
    }
    { /* the dense model trained as long as each step, drawn at that step's target */
        struct acc_series *q = &a[n];
        if (!acc_alloc(q, c->n_curves + 1)) goto nomem;
        snprintf(q->name, sizeof q->name, "dense, trained as long");
        int k = 0;
        for (int i = 0; i < c->n_curves; i++) {
            const struct sg_curve *r = &c->curves[i];
            if (strcmp(r->gran, "dense") || r->control[0] || r->step == 0) continue;
            q->x[k] = r->target, q->y[k] = 100 * r->mean;
            band_of(c, r->mean, r->min, r->max, r->std, &q->lo[k], &q->hi[k]);
            if (!(q->tip[k++] = tip_of("dense, trained as long as the pruned step", r, r->target, "at target")))
                goto nomem;
        }
        if (k > 0) {
            s[n] = (struct sg_series){.name = q->name, .n = k, .x = q->x, .y = q->y, .color = -1, .dash = 1,
                                      .marker = SG_MARK_SQUARE, .hollow = 1,
                                      .tip = (const char *const *)q->tip};
            n++;
        } else {
            acc_release(q);
        }
    }
    for (int g = 0; g < c->n_grans; g++) { /* Liu et al.'s control */
        struct acc_series *q = &a[n];
        if (!acc_alloc(q, c->n_curves + 1)) goto nomem;
        snprintf(q->name, sizeof q->name, "%s, reinit control", c->grans[g]);
        int k = 0;
        for (int i = 0; i < c->n_curves; i++) {
            const struct sg_curve *r = &c->curves[i];
            if (strcmp(r->gran, c->grans[g]) || strcmp(r->control, "reinit")) continue;
            q->x[k] = r->density, q->y[k] = 100 * r->mean;
            if (!(q->tip[k++] = tip_of(q->name, r, r->density, "density"))) goto nomem;
        }
        if (k > 0) {
            s[n] = (struct sg_series){.name = q->name, .n = k, .x = q->x, .y = q->y, .color = g,
                                      .marker = SG_MARK_CROSS, .no_line = 1, .tip = (const char *const *)q->tip};
            n++;
        } else {
            acc_release(q);
        }
    }
    *out = a;
    *sv = s;
    *ns = n;
    return SG_OK;
nomem:
    acc_free(a, cap);
    free(s);
    return sgi_error(SG_ERR_NOMEM, "out of memory");
}

static void figure_open(struct ctx *c, const char *id) {
    sgi_buf_printf(c->b, "<figure id=\"fig-%s\">\n", id);
}

static void figure_close(struct ctx *c, const char *caption_html_escaped_text) {
    c->fig++;
    sgi_buf_printf(c->b, "<figcaption><strong>Figure %d.</strong> ", c->fig);
    txt(c->b, caption_html_escaped_text);
    sgi_buf_printf(c->b, "</figcaption>\n</figure>\n");
}

static enum sg_status section_accuracy(struct ctx *c) {
    struct sgi_buf *b = c->b;
    const struct sg_report_input *in = c->in;
    const double tol_pp = 100 * in->tol;
    const char *model = in->pts->n ? in->pts->p[0].model : "";
    sgi_buf_printf(b, "<section id=\"accuracy\">\n<h2>1. Accuracy against density</h2>\n<p>");
    double rep = setting_num(c, "retrain_epochs");
    sgi_xml_printf(b, "Every granularity starts from the dense baseline and steps down the density grid: prune to "
                      "the next density by %s saliency, then retrain ",
                   setting_str(c, "criterion") ? setting_str(c, "criterion") : "group");
    if (isfinite(rep)) sgi_xml_printf(b, "for %.0f epoch%s ", rep, rep == 1 ? "" : "s");
    sgi_xml_printf(b, "with the mask fixed (iterative pruning, Han et al. 2015). Density is kept weights over the "
                      "weights of the pruned layers");
    if (in->pts->n) {
        const struct sg_point *p = NULL;
        for (int i = 0; i < in->pts->n && !p; i++)
            if (in->pts->p[i].n_layers) p = &in->pts->p[i];
        if (p) {
            sgi_xml_printf(b, " (");
            for (int i = 0; i < p->n_layers; i++) sgi_xml_printf(b, "%s%s", i ? ", " : "", p->layer[i]);
            sgi_xml_printf(b, ")");
        }
    }
    sgi_xml_printf(b, "; other layers stay dense. ");
    if (c->seeds > 1)
        sgi_xml_printf(b, "Lines are means over %d seeds; the shaded bands show %s. ", c->seeds,
                       in->band_std ? "the mean plus and minus one standard deviation" : "the lowest and highest seed");
    sgi_buf_printf(b, "</p>\n");
    struct acc_series *a = NULL;
    struct sg_series *s = NULL;
    int ns = 0;
    enum sg_status st = acc_build(c, &a, &s, &ns);
    if (st != SG_OK) return st;
    struct sg_refline ref[2];
    char l0[96], l1[96];
    int nref = 0;
    if (c->have_base) {
        snprintf(l0, sizeof l0, "dense baseline %.2f%%", 100 * c->base_mean);
        snprintf(l1, sizeof l1, "no-loss limit (\xe2\x88\x92%.2g pp)", tol_pp);
        ref[nref++] = (struct sg_refline){.label = l0, .y = 100 * c->base_mean, .color = 6, .dash = 0};
        ref[nref++] = (struct sg_refline){.label = l1, .y = 100 * c->base_mean - tol_pp, .color = -1, .dash = 2};
    }
    const unsigned axes = in->axes ? in->axes : SG_REPORT_LINEAR_X | SG_REPORT_LOG_X;
    char title[160];
    const char *data = in->pts->n ? in->pts->p[0].data : "";
    struct sg_line_chart ch = {.x_label = "density (kept weights / weights in pruned layers)",
                               .y_label = "top-1 accuracy (%)", .y_suffix = NULL, .series = s, .n_series = ns,
                               .ref = ref, .n_ref = nref, .x_min = NAN, .x_max = NAN, .y_min = NAN, .y_max = NAN};
    /* y range of the data, for the zoom */
    double ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < s[i].n; k++) {
            if (isfinite(s[i].y[k])) ymin = fmin(ymin, s[i].y[k]), ymax = fmax(ymax, s[i].y[k]);
            if (s[i].hi && isfinite(s[i].hi[k])) ymax = fmax(ymax, s[i].hi[k]);
        }
    if (axes & SG_REPORT_LINEAR_X) {
        snprintf(title, sizeof title, "%s on %s: top-1 against density", model, data);
        ch.id = "acc-lin", ch.title = title, ch.log_x = 0, ch.x_min = 0, ch.x_max = 1;
        figure_open(c, "acc-lin");
        if ((st = sgi_svg_line_chart(b, &ch)) != SG_OK) goto out;
        figure_close(c, "Top-1 accuracy on the test set against density, one line per granularity. The dense "
                        "baseline (solid) and the no-loss limit (dotted, baseline minus the tolerance) are "
                        "horizontal lines. Grey hollow squares: the dense model retrained for as many epochs as the "
                        "pruned model of that step, drawn at the step's target density (the fair reference). "
                        "Crosses, when present: Liu et al.'s control (the no-loss mask, weights re-initialised and "
                        "trained from scratch).");
    }
    if (axes & SG_REPORT_LOG_X) {
        snprintf(title, sizeof title, "%s on %s: top-1 against density (log scale)", model, data);
        ch.id = "acc-log", ch.title = title, ch.log_x = 1, ch.x_min = NAN, ch.x_max = NAN;
        figure_open(c, "acc-log");
        if ((st = sgi_svg_line_chart(b, &ch)) != SG_OK) goto out;
        figure_close(c, "The same data on a logarithmic density axis, which spreads out the low densities where the "
                        "granularities part ways.");
    }
    /* A zoom on the band around the baseline when the full charts are stretched by
     * points far below it: the no-loss decision happens within a few tenths of a point. */
    if (c->have_base && isfinite(ymin)) {
        const double lo = 100 * c->base_mean - fmax(1.0, 8 * tol_pp);
        if (ymin < lo) {
            snprintf(title, sizeof title, "%s on %s: close to the baseline", model, data);
            ch.id = "acc-zoom", ch.title = title, ch.log_x = (axes & SG_REPORT_LOG_X) != 0;
            ch.x_min = ch.log_x ? NAN : 0, ch.x_max = ch.log_x ? NAN : 1;
            ch.y_min = lo, ch.y_max = fmax(ymax, 100 * c->base_mean) + 0.1 * (100 * c->base_mean - lo);
            figure_open(c, "acc-zoom");
            if ((st = sgi_svg_line_chart(b, &ch)) != SG_OK) goto out;
            char cap[256];
            snprintf(cap, sizeof cap, "A zoom on the top %.2g percentage points: lines leaving the bottom have "
                                      "lost more than that.", 100 * c->base_mean - lo);
            figure_close(c, cap);
        }
    }
    sgi_buf_printf(b, "</section>\n");
out:
    acc_free(a, 2 * c->n_grans + 2);
    free(s);
    return st;
}

/* ---- the no-loss table ---- */

static enum sg_status section_noloss(struct ctx *c) {
    struct sgi_buf *b = c->b;
    const double tol = c->in->tol;
    char e[64], s[64];
    sgi_buf_printf(b, "<section id=\"no-loss\">\n<h2>2. No-loss density</h2>\n<p>");
    sgi_xml_printf(b, "The paper's main table: for each granularity and seed, walk down its curve from the first "
                      "pruned step and stop at the first point whose validation top-1 falls below the reference's "
                      "minus %.2g percentage points; the no-loss density is the last point passed (a lucky point "
                      "below a failure does not count). The reference is the dense model retrained for the same "
                      "number of epochs, step by step (the fair comparison); \"vs baseline\" walks against the "
                      "model pruning started from. Mean, 95%% confidence interval (t) and range over seeds; the "
                      "verdict compares each granularity with the first, paired by seed: a difference whose "
                      "interval holds 0 is a tie. Top-1 is on the test set, which takes no decision. The numbers "
                      "are those of no_loss.csv.",
                   100 * tol);
    sgi_buf_printf(b, "</p>\n<table id=\"t-noloss\">\n<thead><tr><th>granularity</th><th class=\"num\">seeds</th>"
                      "<th class=\"num\">no-loss density</th><th class=\"num\">95%% CI</th><th class=\"num\">min</th>"
                      "<th class=\"num\">max</th><th class=\"num\">test top-1 there</th>"
                      "<th class=\"num\">val top-1 there</th><th class=\"num\">baseline top-1</th>"
                      "<th class=\"num\">vs baseline</th><th>verdict</th><th>note</th></tr></thead>\n<tbody>\n");
    int shown = 0;
    for (int i = 0; i < c->n_nl; i++) {
        const struct sg_noloss *r = &c->nl[i];
        if (!r->seeds) continue;
        shown++;
        sgi_buf_printf(b, "<tr data-key=\"");
        txt(b, r->gran);
        sgi_buf_printf(b, "\"><td><span class=\"swatch\" style=\"background:%s\"></span>",
                       sg_palette(gran_index(c, r->gran)));
        txt(b, r->gran);
        sgi_buf_printf(b, "</td>");
        snprintf(s, sizeof s, "%d", r->seeds);
        td_num(b, "seeds", s, s);
        snprintf(s, sizeof s, "%.4f", r->mean);
        td_num(b, "no_loss_density", fmt6(e, sizeof e, r->mean), s);
        if (isfinite(r->ci)) snprintf(s, sizeof s, "%.4f", r->ci);
        else snprintf(s, sizeof s, "\xe2\x80\x93");
        td_num(b, "ci95", fmt6(e, sizeof e, r->ci), s);
        snprintf(s, sizeof s, "%.4f", r->min);
        td_num(b, "min", fmt6(e, sizeof e, r->min), s);
        snprintf(s, sizeof s, "%.4f", r->max);
        td_num(b, "max", fmt6(e, sizeof e, r->max), s);
        snprintf(s, sizeof s, "%.2f%%", 100 * r->top1);
        td_num(b, "top1_at_no_loss", fmt6(e, sizeof e, r->top1), s);
        if (isfinite(r->val_top1)) snprintf(s, sizeof s, "%.2f%%", 100 * r->val_top1);
        else snprintf(s, sizeof s, "\xe2\x80\x93");
        td_num(b, "val_top1_at_no_loss", fmt6(e, sizeof e, r->val_top1), s);
        snprintf(s, sizeof s, "%.2f%%", 100 * r->baseline_top1);
        td_num(b, "baseline_top1", fmt6(e, sizeof e, r->baseline_top1), s);
        snprintf(s, sizeof s, "%.4f", r->base.d.mean);
        td_num(b, "vs_baseline_density", fmt6(e, sizeof e, r->base.d.mean), s);
        sgi_buf_printf(b, "<td>");
        if (strcmp(r->verdict, "-") != 0) {
            txt(b, r->verdict);
            sgi_xml_printf(b, " %s %s (%+.4f \xc2\xb1 %.4f)", strcmp(r->verdict, "tie") ? "than" : "with",
                           r->vs, r->diff.mean, r->diff.half);
        } else {
            txt(b, "\xe2\x80\x93");
        }
        sgi_buf_printf(b, "</td><td class=\"note\">");
        if (r->fair.never_met) sgi_xml_printf(b, "never met (%d of %d seeds): 1 (dense) is counted. ", r->fair.never_met, r->seeds);
        if (r->fair.grid_short) sgi_xml_printf(b, "grid too short (%d of %d seeds): never lost accuracy, the true value is lower. ", r->fair.grid_short, r->seeds);
        if (r->fair.no_ref) sgi_xml_printf(b, "no dense reference further down (%d of %d seeds). ", r->fair.no_ref, r->seeds);
        sgi_buf_printf(b, "</td></tr>\n");
    }
    sgi_buf_printf(b, "</tbody>\n</table>\n");
    if (!shown) {
        sgi_buf_printf(b, "<p class=\"note\">No granularity has a dense baseline to compare with yet.</p>\n");
    } else {
        /* the same numbers as bars: one colour per granularity, as in the curves */
        const char **cats = calloc((size_t)shown, sizeof *cats);
        char(*names)[80] = calloc((size_t)shown, sizeof *names);
        double *v = calloc((size_t)shown * (size_t)shown, sizeof *v);
        int *cols = calloc((size_t)shown, sizeof *cols);
        if (!cats || !v || !cols || !names) {
            free(cats), free(v), free(cols), free(names);
            return sgi_error(SG_ERR_NOMEM, "out of memory");
        }
        int k = 0;
        for (int i = 0; i < shown * shown; i++) v[i] = NAN;
        for (int i = 0; i < c->n_nl; i++) {
            if (!c->nl[i].seeds) continue;
            cats[k] = c->nl[i].never_lost ? names[k] : c->nl[i].gran;
            if (c->nl[i].never_lost) snprintf(names[k], sizeof names[k], "%s (never lost)", c->nl[i].gran);
            cols[k] = gran_index(c, c->nl[i].gran);
            v[(size_t)k * shown + k] = c->nl[i].mean;
            k++;
        }
        struct sg_bar_chart bc = {.id = "noloss-bars", .title = "No-loss density per granularity (lower is better)",
                                  .value_label = "no-loss density (mean over seeds)", .stacked = 1, .horizontal = 1,
                                  .n_cats = shown, .cats = cats, .n_series = shown, .series = cats, .colors = cols,
                                  .v = v, .totals = 1, .width = 760, .no_legend = 1};
        figure_open(c, "noloss-bars");
        enum sg_status st = sgi_svg_bar_chart(b, &bc);
        free(cats), free(v), free(cols), free(names);
        if (st != SG_OK) return st;
        figure_close(c, "The no-loss densities of the table; a granularity marked \"never lost\" could go lower.");
    }
    sgi_buf_printf(b, "</section>\n");
    return SG_OK;
}

/* ---- per-layer structure of the no-loss models ---- */

static const char *const STRUCT_NAMES[SG_STRUCT_GRANS] = {"fine", "vector", "kernel", "filter", "channel"};

static void section_structure(struct ctx *c) {
    struct sgi_buf *b = c->b;
    const struct sg_report_input *in = c->in;
    sgi_buf_printf(b, "<section id=\"structure\">\n<h2>3. Sparsity structure of the no-loss models</h2>\n<p>");
    txt(b, "For each granularity's no-loss model, per layer: the fraction of groups that still hold a non-zero "
           "weight when the weights are grouped at each granularity (as sparsegrain stats prints it). At the "
           "granularity it was pruned at, a layer's group density equals its weight density; at coarser ones it "
           "is higher, because a group survives when any of its weights does. Layers marked * are 1x1 or fully "
           "connected: there fine, vector and kernel groups coincide.");
    sgi_buf_printf(b, "</p>\n");
    for (int m = 0; m < in->n_models; m++) {
        const struct sg_report_model *md = &in->models[m];
        sgi_buf_printf(b, "<h3 id=\"structure-");
        for (const char *p = md->gran; *p; p++) sgi_buf_u8(b, (uint8_t)((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '-'));
        sgi_buf_printf(b, "\"><span class=\"swatch\" style=\"background:%s\"></span>", sg_palette(gran_index(c, md->gran)));
        txt(b, md->gran);
        sgi_buf_printf(b, "</h3>\n");
        if (md->n_layers == 0) {
            sgi_buf_printf(b, "<p class=\"note\">");
            txt(b, md->note[0] ? md->note : "no model");
            sgi_buf_printf(b, "</p>\n");
            continue;
        }
        sgi_buf_printf(b, "<p class=\"meta\">");
        sgi_xml_printf(b, "seed %d, step %d: density %.4f, top-1 %.2f%%; file %s", md->seed, md->step, md->density,
                       100 * md->top1, md->file);
        sgi_buf_printf(b, "</p>\n<table class=\"structure\" data-gran=\"");
        txt(b, md->gran);
        sgi_buf_printf(b, "\">\n<thead><tr><th>layer</th><th>kind</th><th>shape (K x C x R x S)</th>"
                          "<th class=\"num\">weights</th><th>pruned</th>");
        for (int g = 0; g < SG_STRUCT_GRANS; g++) sgi_buf_printf(b, "<th class=\"num\">%s</th>", STRUCT_NAMES[g]);
        sgi_buf_printf(b, "</tr></thead>\n<tbody>\n");
        for (int i = 0; i < md->n_layers; i++) {
            const struct sg_layer_structure *l = &md->layers[i];
            char shape[96] = "", s[64], e[64];
            for (int d = 0; d < l->ndim && d < 4; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "",
                         (long long)l->dims[d]);
            const int pw = l->ndim < 4 || (l->dims[2] == 1 && l->dims[3] == 1);
            if (pw) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "*");
            sgi_buf_printf(b, "<tr>");
            td_text(b, l->name);
            td_text(b, l->is_fc ? "fc" : "conv");
            td_text(b, shape);
            snprintf(s, sizeof s, "%lld", (long long)l->weights);
            td_num(b, "weights", s, s);
            td_text(b, l->pruned ? "yes" : "no");
            for (int g = 0; g < SG_STRUCT_GRANS; g++) {
                snprintf(s, sizeof s, "%.4f", l->density[g]);
                td_num(b, STRUCT_NAMES[g], fmt6(e, sizeof e, l->density[g]), s);
            }
            sgi_buf_printf(b, "</tr>\n");
        }
        sgi_buf_printf(b, "</tbody>\n</table>\n");
    }
    if (in->n_models == 0) sgi_buf_printf(b, "<p class=\"note\">No models were given.</p>\n");
    sgi_buf_printf(b, "</section>\n");
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(struct sgi_buf *b, const uint8_t *p, size_t n) {
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = B64[v >> 18 & 63], q[1] = B64[v >> 12 & 63];
        q[2] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? B64[v & 63] : '=';
        sgi_buf_put(b, q, 4);
    }
}

static void section_masks(struct ctx *c, int number) {
    struct sgi_buf *b = c->b;
    const struct sg_report_input *in = c->in;
    int any = 0;
    for (int m = 0; m < in->n_models; m++) any |= in->models[m].png != NULL;
    if (!any) return;
    sgi_buf_printf(b, "<section id=\"masks\">\n<h2>%d. What each granularity removes</h2>\n<p>", number);
    txt(b, "The weights of one layer of each no-loss model: rows are filters (K), columns input channels (C), "
           "each cell one R x S kernel. Kept weights are coloured by magnitude (dark = large, viridis), pruned "
           "weights are white. The paper's Figure 1, for real weights. Made by sparsegrain draw.");
    sgi_buf_printf(b, "</p>\n<div class=\"masks\">\n");
    for (int m = 0; m < in->n_models; m++) {
        const struct sg_report_model *md = &in->models[m];
        if (!md->png) continue;
        sgi_buf_printf(b, "<figure class=\"mask\"><img width=\"%d\" height=\"%d\" alt=\"", md->png_w, md->png_h);
        sgi_xml_printf(b, "mask of %s at %s granularity", md->png_layer, md->gran);
        sgi_buf_printf(b, "\" src=\"data:image/png;base64,");
        base64(b, md->png, md->png_len);
        sgi_buf_printf(b, "\"/><figcaption><strong>");
        txt(b, md->gran);
        sgi_buf_printf(b, "</strong> ");
        sgi_xml_printf(b, "%s, density %.3f%s%s", md->png_layer, md->density, md->png_note[0] ? "; " : "",
                       md->png_note);
        sgi_buf_printf(b, "</figcaption></figure>\n");
    }
    sgi_buf_printf(b, "</div>\n</section>\n");
}

/* ---- generic CSV sections (storage, SCNN) ---- */

#define MAX_LIST 8
#define MAX_BARS 200
struct csv_grouped {
    const char *value, *cat, *series; /* columns */
    const char *title, *label;        /* chart title and value axis */
};
struct csv_view {
    const char *id, *heading, *intro;
    const char *label_cols[MAX_LIST]; /* joined with " / " to label a stacked bar */
    const char *facet_cols[MAX_LIST]; /* one chart per distinct combination */
    const char *stack_prefix, *stack_suffix;
    const char *stack_exclude[MAX_LIST];
    const char *stack_title, *stack_label, *stack_unit;
    struct csv_grouped grouped[2];
};

static int in_list(const char *const *l, const char *s) {
    for (int i = 0; i < MAX_LIST && l[i]; i++)
        if (strcmp(l[i], s) == 0) return 1;
    return 0;
}

static int is_stack_col(const struct csv_view *v, const char *name) {
    size_t n = strlen(name);
    if (in_list(v->stack_exclude, name)) return 0;
    if (v->stack_prefix && strncmp(name, v->stack_prefix, strlen(v->stack_prefix)) == 0 &&
        n > strlen(v->stack_prefix))
        return 1;
    if (v->stack_suffix && n > strlen(v->stack_suffix) &&
        strcmp(name + n - strlen(v->stack_suffix), v->stack_suffix) == 0)
        return 1;
    return 0;
}

/* The facet key of a row: the values of the facet columns the table has. */
static void facet_key(const struct sg_csv *t, const int *fc, int nf, int row, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < nf; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s = %s", i ? ", " : "", t->cell[fc[i]],
                 sg_csv_get(t, row, fc[i]));
}

static enum sg_status csv_charts(struct ctx *c, const struct sg_csv *t, const struct csv_view *v) {
    struct sgi_buf *b = c->b;
    int fc[MAX_LIST], nf = 0, lc[MAX_LIST], nl = 0;
    for (int i = 0; i < MAX_LIST && v->facet_cols[i]; i++)
        if ((fc[nf] = sg_csv_col(t, v->facet_cols[i])) >= 0) nf++;
    for (int i = 0; i < MAX_LIST && v->label_cols[i]; i++)
        if ((lc[nl] = sg_csv_col(t, v->label_cols[i])) >= 0) nl++;
    int *sc = calloc((size_t)t->ncols + 1, sizeof *sc), ns = 0;
    char *facet_done = calloc((size_t)t->nrows + 1, 1);
    int *rows = calloc((size_t)t->nrows + 1, sizeof *rows);
    /* names: stack column names, later the distinct categories and series */
    const char **names = calloc(2 * ((size_t)t->nrows + 1) + (size_t)t->ncols, sizeof *names);
    char **labels = calloc((size_t)t->nrows + 1, sizeof *labels);
    double *vals = NULL;
    enum sg_status st = SG_OK;
    if (!sc || !facet_done || !rows || !names || !labels) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < t->ncols; i++)
        if (is_stack_col(v, t->cell[i])) sc[ns++] = i;
    char key[512], key2[512];
    int chart = 0;
    for (int r0 = 0; r0 < t->nrows; r0++) {
        if (facet_done[r0]) continue;
        facet_key(t, fc, nf, r0, key, sizeof key);
        int nr = 0;
        for (int r = r0; r < t->nrows; r++) {
            facet_key(t, fc, nf, r, key2, sizeof key2);
            if (strcmp(key, key2) == 0) facet_done[r] = 1, rows[nr++] = r;
        }
        if (nf) {
            sgi_buf_printf(b, "<h3>");
            txt(b, key);
            sgi_buf_printf(b, "</h3>\n");
        }
        /* stacked: one bar per row, one segment per stack column (a chart of
         * hundreds of bars says nothing the table does not) */
        if (ns > 0 && nr > MAX_BARS) {
            sgi_buf_printf(b, "<p class=\"note\">%d rows are too many bars for a chart; the table lists them.</p>\n", nr);
        } else if (ns > 0) {
            size_t cells;
            if (!sgi_mul((size_t)nr, (size_t)ns, &cells) || !(vals = calloc(cells + 1, sizeof *vals))) {
                st = sgi_error(SG_ERR_NOMEM, "out of memory");
                goto out;
            }
            for (int i = 0; i < nr; i++) {
                char lab[256] = "";
                for (int k = 0; k < nl; k++)
                    snprintf(lab + strlen(lab), sizeof lab - strlen(lab), "%s%s", k ? " / " : "",
                             sg_csv_get(t, rows[i], lc[k]));
                if (!nl) snprintf(lab, sizeof lab, "row %d", rows[i] + 1);
                if (!(labels[i] = strdup(lab))) {
                    st = sgi_error(SG_ERR_NOMEM, "out of memory");
                    goto out;
                }
                for (int k = 0; k < ns; k++)
                    if (!sg_csv_num(t, rows[i], sc[k], &vals[(size_t)i * ns + k])) vals[(size_t)i * ns + k] = NAN;
            }
            for (int k = 0; k < ns; k++) names[k] = t->cell[sc[k]];
            char id[48];
            snprintf(id, sizeof id, "%s-stack-%d", v->id, chart);
            struct sg_bar_chart bc = {.id = id, .title = v->stack_title, .value_label = v->stack_label,
                                      .stacked = 1, .horizontal = 1, .n_cats = nr, .cats = (const char *const *)labels,
                                      .n_series = ns, .series = names, .v = vals, .unit = v->stack_unit,
                                      .totals = 1, .width = 860};
            figure_open(c, id);
            st = sgi_svg_bar_chart(b, &bc);
            for (int i = 0; i < nr; i++) free(labels[i]), labels[i] = NULL;
            free(vals), vals = NULL;
            if (st != SG_OK) goto out;
            char cap[512];
            snprintf(cap, sizeof cap, "%s for each row of %s.csv%s%s%s: one segment per column %s %s%s, the "
                                      "total at the end of each bar.",
                     v->stack_title, v->id, nf ? " (" : "", key, nf ? ")" : "",
                     v->stack_prefix ? "starting with" : "ending in", v->stack_prefix ? v->stack_prefix : "",
                     v->stack_suffix ? v->stack_suffix : "");
            figure_close(c, cap);
            chart++;
        }
        /* grouped: a value per (category, series), e.g. ratio per format and granularity */
        for (int g = 0; g < 2; g++) {
            const struct csv_grouped *gr = &v->grouped[g];
            if (!gr->value) continue;
            const int cv = sg_csv_col(t, gr->value), cc = sg_csv_col(t, gr->cat);
            const int cs = gr->series ? sg_csv_col(t, gr->series) : -1;
            if (cv < 0 || cc < 0) continue;
            /* distinct categories and series in order of appearance */
            int ncat = 0, nser = 0;
            const char **cats = names, **sers = names + t->nrows + 1;
            for (int i = 0; i < nr; i++) {
                const char *x = sg_csv_get(t, rows[i], cc), *y = cs >= 0 ? sg_csv_get(t, rows[i], cs) : gr->value;
                int k;
                for (k = 0; k < ncat && strcmp(cats[k], x); k++) {}
                if (k == ncat) cats[ncat++] = x;
                for (k = 0; k < nser && strcmp(sers[k], y); k++) {}
                if (k == nser) sers[nser++] = y;
            }
            if (ncat > MAX_BARS || nser > 64) continue;
            size_t cells;
            if (!sgi_mul((size_t)ncat, (size_t)nser, &cells) || !(vals = calloc(cells + 1, sizeof *vals))) {
                st = sgi_error(SG_ERR_NOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < cells; i++) vals[i] = NAN;
            for (int i = 0; i < nr; i++) {
                const char *x = sg_csv_get(t, rows[i], cc), *y = cs >= 0 ? sg_csv_get(t, rows[i], cs) : gr->value;
                int a = 0, s = 0;
                while (a < ncat && strcmp(cats[a], x)) a++;
                while (s < nser && strcmp(sers[s], y)) s++;
                if (s < nser && !sg_csv_num(t, rows[i], cv, &vals[(size_t)a * nser + s])) vals[(size_t)a * nser + s] = NAN;
            }
            int *cols = calloc((size_t)nser + 1, sizeof *cols);
            if (!cols) {
                st = sgi_error(SG_ERR_NOMEM, "out of memory");
                goto out;
            }
            /* granularities keep the colours they have in every other chart */
            for (int s = 0, other = c->n_grans; s < nser; s++) {
                int gi = gran_index(c, sers[s]);
                cols[s] = gi >= 0 ? gi : other++;
            }
            char id[48];
            snprintf(id, sizeof id, "%s-grouped-%d-%d", v->id, g, chart);
            struct sg_bar_chart bc = {.id = id, .title = gr->title, .value_label = gr->label, .cat_label = gr->cat,
                                      .n_cats = ncat, .cats = cats, .n_series = nser, .series = sers,
                                      .colors = cols, .v = vals, .width = 860};
            figure_open(c, id);
            st = sgi_svg_bar_chart(b, &bc);
            free(cols);
            free(vals), vals = NULL;
            if (st != SG_OK) goto out;
            char cap[512];
            snprintf(cap, sizeof cap, "Column %s of %s.csv by %s%s%s%s%s%s.", gr->value, v->id, gr->cat,
                     cs >= 0 ? " and " : "", cs >= 0 ? gr->series : "", nf ? " (" : "", key, nf ? ")" : "");
            figure_close(c, cap);
            chart++;
        }
    }
out:
    if (labels)
        for (int i = 0; i < t->nrows; i++) free(labels[i]);
    free(labels), free(vals), free(sc), free(facet_done), free(rows), free(names);
    return st;
}

static int looks_numeric(const struct sg_csv *t, int col) {
    int num = 0, text = 0;
    for (int r = 0; r < t->nrows; r++) {
        double v;
        if (sg_csv_num(t, r, col, &v)) num++;
        else if (*sg_csv_get(t, r, col)) text++;
    }
    return num > 0 && text == 0;
}

#define CSV_TABLE_MAX_ROWS 500
/* The SCNN section's verdict, generated from scnn.csv: for each comparison (match)
 * and coarse granularity, the ratio fine / coarse of memory references (summed
 * over seeds) under each step of the decomposition, the step that moves it most,
 * and the energy ratio of the last step. A ratio within 2% of 1 is a tie (the
 * model is deterministic; seeds and one-shot pruning move ratios by about that). */
#define SCNN_TIE 0.02
static void scnn_verdict(struct sgi_buf *b, const struct sg_csv *t) {
    const int cg = sg_csv_col(t, "granularity"), cm = sg_csv_col(t, "match"),
              cmo = sg_csv_col(t, "mode"), cr = sg_csv_col(t, "memory_refs"),
              ce = sg_csv_col(t, "energy_pj");
    if (cg < 0 || cm < 0 || cmo < 0 || cr < 0 || ce < 0 || t->nrows == 0) return;
    enum { MAXV = 16 };
    const char *matches[MAXV], *modes[MAXV], *grans[MAXV];
    int nmat = 0, nmod = 0, ngr = 0;
    for (int r = 0; r < t->nrows; r++) {
        const char *v[3] = {sg_csv_get(t, r, cm), sg_csv_get(t, r, cmo), sg_csv_get(t, r, cg)};
        const char **l[3] = {matches, modes, grans};
        int *n[3] = {&nmat, &nmod, &ngr};
        for (int k = 0; k < 3; k++) {
            int found = 0;
            for (int i = 0; i < *n[k]; i++) found |= strcmp(l[k][i], v[k]) == 0;
            if (!found && *n[k] < MAXV) l[k][(*n[k])++] = v[k];
        }
    }
    int fine = -1;
    for (int i = 0; i < ngr; i++)
        if (strcmp(grans[i], "fine") == 0) fine = i;
    if (fine < 0 || ngr < 2 || nmod < 1) return;
    /* sum[match][mode][gran][refs, energy] */
    double(*sum)[MAXV][MAXV][2] = calloc(MAXV, sizeof *sum);
    if (!sum) return;
    for (int r = 0; r < t->nrows; r++) {
        int a = -1, m = -1, g = -1;
        for (int i = 0; i < nmat; i++) a = strcmp(matches[i], sg_csv_get(t, r, cm)) ? a : i;
        for (int i = 0; i < nmod; i++) m = strcmp(modes[i], sg_csv_get(t, r, cmo)) ? m : i;
        for (int i = 0; i < ngr; i++) g = strcmp(grans[i], sg_csv_get(t, r, cg)) ? g : i;
        if (a < 0 || m < 0 || g < 0) continue;
        sum[a][m][g][0] += strtod(sg_csv_get(t, r, cr), NULL);
        sum[a][m][g][1] += strtod(sg_csv_get(t, r, ce), NULL);
    }
    sgi_buf_printf(b, "<p><strong>Verdict.</strong> ");
    txt(b, "Memory references fine / coarse (summed over seeds; within 2% of 1 is a tie)");
    int first = 1;
    for (int a = 0; a < nmat; a++)
        for (int g = 0; g < ngr; g++) {
            if (g == fine) continue;
            double ratio[MAXV];
            int ok = 1;
            for (int m = 0; m < nmod; m++) {
                ok &= sum[a][m][g][0] > 0 && sum[a][m][fine][0] > 0;
                ratio[m] = ok ? sum[a][m][fine][0] / sum[a][m][g][0] : 0;
            }
            if (!ok) continue;
            sgi_xml_printf(b, "%s at matched %s, fine/%s is ", first ? ":" : ";", matches[a], grans[g]);
            first = 0;
            for (int m = 0; m < nmod; m++)
                sgi_xml_printf(b, "%s%.2f (%s%s)", m ? ", " : "", ratio[m], modes[m],
                               fabs(ratio[m] - 1) <= SCNN_TIE ? ", a tie"
                               : ratio[m] < 1           ? ", fine needs fewer"
                                                        : "");
            int best = -1;
            double jump = 0;
            for (int m = 1; m < nmod; m++)
                if (ratio[m] - ratio[m - 1] > jump) jump = ratio[m] - ratio[m - 1], best = m;
            if (best > 0 && jump > SCNN_TIE)
                sgi_xml_printf(b, ", the largest step from %s (%+.2f)", modes[best], jump);
            const double e = sum[a][nmod - 1][fine][1] / (sum[a][nmod - 1][g][1] > 0 ? sum[a][nmod - 1][g][1] : 1);
            sgi_xml_printf(b, ", energy %.2f%s under %s", e, fabs(e - 1) <= SCNN_TIE ? " (a tie)" : "",
                           modes[nmod - 1]);
        }
    sgi_buf_printf(b, ".</p>\n");
    free(sum);
}

static enum sg_status section_csv(struct ctx *c, const struct sg_csv *t, const struct csv_view *v, int number,
                                  const char *file) {
    struct sgi_buf *b = c->b;
    sgi_buf_printf(b, "<section id=\"%s\">\n<h2>%d. ", v->id, number);
    txt(b, v->heading);
    sgi_buf_printf(b, "</h2>\n<p>");
    txt(b, v->intro);
    sgi_xml_printf(b, " Source: %s (%d rows, %d columns).", file, t->nrows, t->ncols);
    sgi_buf_printf(b, "</p>\n");
    if (strcmp(v->id, "scnn") == 0) scnn_verdict(b, t);
    enum sg_status st = csv_charts(c, t, v);
    if (st != SG_OK) return st;
    sgi_buf_printf(b, "<div class=\"wide\"><table id=\"t-%s\" class=\"csv\">\n<thead><tr>", v->id);
    uint8_t *num = calloc((size_t)t->ncols + 1, 1);
    if (!num) return sgi_error(SG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < t->ncols; i++) {
        num[i] = (uint8_t)looks_numeric(t, i);
        sgi_buf_printf(b, "<th%s>", num[i] ? " class=\"num\"" : "");
        txt(b, t->cell[i]);
        sgi_buf_printf(b, "</th>");
    }
    sgi_buf_printf(b, "</tr></thead>\n<tbody>\n");
    for (int r = 0; r < t->nrows && r < CSV_TABLE_MAX_ROWS; r++) {
        sgi_buf_printf(b, "<tr>");
        for (int i = 0; i < t->ncols; i++) {
            const char *s = sg_csv_get(t, r, i);
            if (num[i]) td_num(b, t->cell[i], s, s); /* verbatim: the file's own digits */
            else td_text(b, s);
        }
        sgi_buf_printf(b, "</tr>\n");
    }
    sgi_buf_printf(b, "</tbody>\n</table></div>\n");
    if (t->nrows > CSV_TABLE_MAX_ROWS)
        sgi_buf_printf(b, "<p class=\"note\">The first %d of %d rows; the file has them all.</p>\n",
                       CSV_TABLE_MAX_ROWS, t->nrows);
    sgi_buf_printf(b, "</section>\n");
    free(num);
    return SG_OK;
}

static const struct csv_view STORAGE_VIEW = {
    .id = "storage",
    .heading = "Storage with indices at matched accuracy",
    .intro = "The size of each granularity's no-loss model in each sparse format: value, index, filler and "
             "metadata bits, measured from the encoded bytes, and the compression ratio against dense float32. "
             "Coarse groups need one index per group (index saving), which is the paper's second finding. Rows "
             "\"filter (thinned)\" and \"channel (thinned)\" are those no-loss models after sparsegrain thin "
             "removed the pruned channels: a smaller dense model (its weights column counts what is left).",
    .label_cols = {"granularity", "format"},
    .facet_cols = {"match", "value_coding"},
    .stack_suffix = "_bits",
    .stack_exclude = {"total_bits", "dense_bits", "index_bits_per_entry", "b_i"},
    .stack_title = "Stored bits by kind",
    .stack_label = "bits",
    .stack_unit = "bits",
    .grouped = {{.value = "ratio", .cat = "format", .series = "granularity",
                 .title = "Compression ratio per format and granularity (higher is better)",
                 .label = "compression ratio (dense float32 / stored)"}},
};

static const struct csv_view SCNN_VIEW = {
    .id = "scnn",
    .heading = "SCNN memory references and energy",
    .intro = "Memory references per on-chip buffer and energy of the SCNN accelerator model for each "
             "granularity with the test images' real activations, at matched accuracy (each granularity's "
             "no-loss density) and at a common density (the control). Each row names the step of the "
             "cumulative decomposition that produced it: plain (SCNN as published: every product an "
             "accumulator read-add-write, one index per weight), +row (a kernel-major loop summing each "
             "kernel row's products in a partial-sum buffer), +kernel (the whole-kernel window instead) and "
             "+group (also one index per kept kernel row or kernel). memory_refs counts on-chip SRAM accesses "
             "without the partial-sum buffer (psum_refs); memory_bits the bits they move; energy_pj includes "
             "both and DRAM (docs/scnn-model.md). The paper's third finding: coarse-grained sparsity needs "
             "about 2x fewer references than fine-grained.",
    .label_cols = {"granularity", "mode"},
    .facet_cols = {"match", "at"},
    .stack_prefix = "refs_",
    .stack_exclude = {"refs_total"},
    .stack_title = "Memory references by buffer",
    .stack_label = "memory references",
    .stack_unit = "references",
    .grouped = {{.value = "energy_pj", .cat = "granularity", .series = "mode",
                 .title = "Energy per granularity", .label = "energy (pJ)"},
                {.value = "memory_refs", .cat = "granularity", .series = "mode",
                 .title = "Memory references per granularity", .label = "memory references (all buffers)"}},
};

static const struct csv_view INFER_VIEW = {
    .id = "infer",
    .heading = "CPU inference speed at matched accuracy",
    .intro = "Images per second of each granularity's no-loss model on the test set, on the processor that ran "
             "the study: every layer with the dense kernel (im2col and sgemm), then every conv and fc layer with "
             "the sparse kernel its mask suggests (thin for filter pruning, kernel, vector, nm or fine blocks; the "
             "kernels column names them). top1_infer is the accuracy the sparse kernels give. Speed is measured "
             "on the machine as it was (best of three passes), so it varies with its load. Rows \"filter "
             "(thinned)\" and \"channel (thinned)\" run the thinned model (sparsegrain thin): what removing the "
             "pruned channels gives with plain dense kernels.",
    .label_cols = {"granularity", "engine"},
    .grouped = {{.value = "images_per_s", .cat = "granularity", .series = "engine",
                 .title = "Images/s per granularity, dense and sparse kernels (higher is better)",
                 .label = "images/s"},
                {.value = "speedup_vs_dense", .cat = "granularity", .series = "engine",
                 .title = "Speed of the sparse kernels relative to the dense ones", .label = "speedup (x)"}},
};

static const struct csv_view GPU_VIEW = {
    .id = "gpu",
    .heading = "GPU speed of each granularity",
    .intro = "sparsegrain bench-gpu's rows summed over each network's layers: every granularity pruned at each "
             "density with random weights and run through the GPU library that serves its format (cuDNN and "
             "cuBLAS for dense and the thinner layers of filter and channel pruning, cuSPARSELt for 2:4, cuSPARSE "
             "BSR and Blocked-ELL for blocks, cuSPARSE CSR for fine, vector and kernel). Times are the median of "
             "the library call alone (CUDA events); speed-up is against the fastest dense library on the same "
             "layers; tflops_kept counts the kept work only. docs/gpu.md describes the method.",
    .label_cols = {"variant"},
    .facet_cols = {"gpu", "net", "dtype"},
    .grouped = {{.value = "speedup", .cat = "target_density", .series = "variant",
                 .title = "Speed-up over dense per target density (higher is better; 1 = dense)",
                 .label = "speed-up over dense (x)"}},
};

/* ---- all points ---- */

static void section_points(struct ctx *c, int number) {
    struct sgi_buf *b = c->b;
    sgi_buf_printf(b, "<section id=\"points\">\n<h2>%d. Every measured point</h2>\n<p>", number);
    txt(b, "The rows of curves.csv: top-1 (mean, standard deviation, lowest and highest over seeds) at every step "
           "of every chain. Granularity dense, step 0 is the baseline; dense steps 1 and on are the dense model "
           "retrained as long as the pruned models of that step; control reinit is Liu et al.'s control.");
    sgi_buf_printf(b, "</p>\n<div class=\"wide\"><table id=\"t-curves\">\n<thead><tr><th>granularity</th>"
                      "<th>control</th><th class=\"num\">step</th><th class=\"num\">target</th>"
                      "<th class=\"num\">seeds</th><th class=\"num\">density</th><th class=\"num\">top-1 mean</th>"
                      "<th class=\"num\">std</th><th class=\"num\">min</th><th class=\"num\">max</th>"
                      "<th class=\"num\">test loss</th><th class=\"num\">epochs</th></tr></thead>\n<tbody>\n");
    char s[64], e[64];
    for (int i = 0; i < c->n_curves; i++) {
        const struct sg_curve *r = &c->curves[i];
        sgi_buf_printf(b, "<tr data-key=\"");
        sgi_xml_printf(b, "%s|%s|%d", r->gran, r->control, r->step);
        sgi_buf_printf(b, "\">");
        td_text(b, r->gran);
        td_text(b, r->control);
        snprintf(s, sizeof s, "%d", r->step);
        td_num(b, "step", s, s);
        snprintf(s, sizeof s, "%g", r->target);
        td_num(b, "target", s, s);
        snprintf(s, sizeof s, "%d", r->seeds);
        td_num(b, "seeds", s, s);
        snprintf(s, sizeof s, "%.4f", r->density);
        td_num(b, "density", fmt6(e, sizeof e, r->density), s);
        snprintf(s, sizeof s, "%.2f%%", 100 * r->mean);
        td_num(b, "top1_mean", fmt6(e, sizeof e, r->mean), s);
        snprintf(s, sizeof s, "%.2f", 100 * r->std);
        td_num(b, "top1_std", fmt6(e, sizeof e, r->std), s);
        snprintf(s, sizeof s, "%.2f%%", 100 * r->min);
        td_num(b, "top1_min", fmt6(e, sizeof e, r->min), s);
        snprintf(s, sizeof s, "%.2f%%", 100 * r->max);
        td_num(b, "top1_max", fmt6(e, sizeof e, r->max), s);
        snprintf(s, sizeof s, "%.4f", r->loss);
        td_num(b, "loss_mean", fmt6(e, sizeof e, r->loss), s);
        snprintf(s, sizeof s, "%d", r->epochs);
        td_num(b, "epochs", s, s);
        sgi_buf_printf(b, "</tr>\n");
    }
    sgi_buf_printf(b, "</tbody>\n</table></div>\n<p class=\"note\">");
    txt(b, "Top-1 std is in percentage points.");
    sgi_buf_printf(b, "</p>\n</section>\n");
}

/* ---- settings and provenance ---- */

static void section_settings(struct ctx *c, int number) {
    struct sgi_buf *b = c->b;
    const struct sg_report_input *in = c->in;
    sgi_buf_printf(b, "<section id=\"settings\">\n<h2>%d. Settings and provenance</h2>\n<p>", number);
    txt(b, "What produced these results, so that every figure can be traced back and rerun.");
    sgi_buf_printf(b, "</p>\n<h3>Command</h3>\n<pre class=\"cmd\">");
    txt(b, in->command && *in->command ? in->command : "(not recorded in the baseline model)");
    sgi_buf_printf(b, "</pre>\n<h3>Study settings (study.json)</h3>\n");
    if (c->settings && cJSON_IsObject(c->settings)) {
        sgi_buf_printf(b, "<table id=\"t-settings\">\n<thead><tr><th>setting</th><th>value</th></tr></thead>\n<tbody>\n");
        const cJSON *it;
        cJSON_ArrayForEach(it, c->settings) {
            sgi_buf_printf(b, "<tr><td>");
            txt(b, it->string);
            sgi_buf_printf(b, "</td><td>");
            if (cJSON_IsString(it)) {
                txt(b, *it->valuestring ? it->valuestring : "\xe2\x80\x93");
            } else {
                char *s = cJSON_PrintUnformatted(it);
                txt(b, s ? s : "?");
                free(s);
            }
            sgi_buf_printf(b, "</td></tr>\n");
        }
        sgi_buf_printf(b, "</tbody>\n</table>\n");
    } else if (in->settings_json) {
        sgi_buf_printf(b, "<pre>");
        txt(b, in->settings_json);
        sgi_buf_printf(b, "</pre>\n");
    } else {
        sgi_buf_printf(b, "<p class=\"note\">No study.json in the folder.</p>\n");
    }
    sgi_buf_printf(b, "<h3>Report</h3>\n<table id=\"t-env\">\n<tbody>\n");
    const struct sg_report_env *e = in->env;
    const char *rows[][2] = {
        {"sparsegrain", e ? e->version : SG_VERSION_STRING},
        {"report written", e ? e->date : "unknown"},
        {"operating system", e ? e->os : "unknown"},
        {"CPU", e ? e->cpu : "unknown"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sgi_buf_printf(b, "<tr><td>%s</td>", rows[i][0]);
        td_text(b, rows[i][1]);
        sgi_buf_printf(b, "</tr>\n");
    }
    if (e && e->cores) sgi_buf_printf(b, "<tr><td>cores</td><td>%d</td></tr>\n", e->cores);
    sgi_buf_printf(b, "<tr><td>study folder</td>");
    td_text(b, in->dir ? in->dir : "");
    sgi_buf_printf(b, "</tr>\n<tr><td>points</td><td>%d</td></tr>\n</tbody>\n</table>\n<p class=\"note\">", in->pts->n);
    txt(b, "The machine described is the one that wrote this report; the study's own timings are in points.jsonl.");
    sgi_buf_printf(b, "</p>\n</section>\n");
}

/* ---- the page ---- */

static const char CSS[] =
    ":root{--fg:#1d1d1f;--muted:#5b5f66;--rule:#d9dae0;--accent:#0072B2}"
    "html{background:#fff}"
    "body{font-family:" SGI_FONT_STACK ";color:var(--fg);max-width:1100px;margin:0 auto;"
    "padding:28px 36px 56px;line-height:1.5;font-size:15px}"
    "h1{font-size:27px;margin:0 0 4px;letter-spacing:-0.01em}"
    "h2{font-size:20px;margin:44px 0 10px;padding-bottom:5px;border-bottom:1px solid var(--rule)}"
    "h3{font-size:16px;margin:26px 0 8px}"
    ".sub{color:var(--muted);margin:0 0 18px}"
    ".callout{background:#f3f7fb;border-left:4px solid var(--accent);padding:10px 16px;margin:18px 0}"
    ".callout p{margin:4px 0}"
    "nav ol{columns:2;margin:6px 0 0;padding-left:22px}"
    "nav a{color:var(--accent);text-decoration:none}"
    "figure{margin:18px 0 26px}"
    "figcaption{color:var(--muted);font-size:13.5px;max-width:820px;margin-top:4px}"
    "svg.sg-chart{max-width:100%;height:auto;display:block}"
    "table{border-collapse:collapse;font-size:13.5px;margin:8px 0 14px}"
    "th,td{padding:4px 10px;border-bottom:1px solid #ebebef;text-align:left;vertical-align:top}"
    "thead th{background:#f5f5f7;font-weight:600;border-bottom:1px solid var(--rule)}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.note,p.note{color:#7a4a00;font-size:13px}"
    ".meta{color:var(--muted);font-size:13.5px;margin:0 0 4px}"
    ".swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:7px;"
    "vertical-align:baseline}"
    ".wide{overflow-x:auto}"
    "pre{white-space:pre-wrap;word-break:break-all;background:#f5f5f7;padding:8px 12px;font-size:12.5px;"
    "border-radius:4px}"
    ".masks{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}"
    ".masks figure{margin:6px 0}"
    ".masks img{image-rendering:pixelated;border:1px solid #d0d0d0;max-width:100%;height:auto}"
    "footer{margin-top:48px;color:var(--muted);font-size:12.5px;border-top:1px solid var(--rule);"
    "padding-top:8px}"
    "@media print{body{max-width:none;padding:0;font-size:10.5pt}nav{display:none}"
    "h2{break-after:avoid;margin-top:24px}figure,table,.callout{break-inside:avoid}"
    "a{color:inherit;text-decoration:none}.wide{overflow:visible}"
    "@page{margin:16mm}}";

static void summary(struct ctx *c) {
    struct sgi_buf *b = c->b;
    const struct sg_report_input *in = c->in;
    if (!c->have_base || !c->n_nl) return;
    sgi_buf_printf(b, "<div class=\"callout\" id=\"summary\"><p>");
    sgi_xml_printf(b, "Dense baseline: %.2f%% top-1", 100 * c->base_mean);
    if (c->seeds > 1) sgi_xml_printf(b, " (mean of %d seeds)", c->seeds);
    sgi_xml_printf(b, ". No-loss density (walking down each curve until validation top-1 first falls more "
                      "than %.2g pp below the dense model retrained for the same epochs): ", 100 * in->tol);
    int k = 0, lost_none = 0;
    for (int i = 0; i < c->n_nl; i++) {
        const struct sg_noloss *r = &c->nl[i];
        if (!r->seeds) continue;
        sgi_xml_printf(b, "%s%s %s%.3g", k++ ? ", " : "", r->gran, r->never_lost ? "below " : "", r->mean);
        if (r->seeds > 1 && isfinite(r->ci)) sgi_xml_printf(b, " \xc2\xb1 %.3g", r->ci);
        if (strcmp(r->verdict, "-") != 0) sgi_xml_printf(b, " (%s %s %s)", r->verdict,
                                                      strcmp(r->verdict, "tie") ? "than" : "with", r->vs);
        if (r->never_met) sgi_xml_printf(b, " (never met)");
        lost_none += r->never_lost != 0;
    }
    sgi_buf_printf(b, ".</p>");
    if (lost_none) {
        sgi_buf_printf(b, "<p>");
        txt(b, "\"below\": the granularity kept its accuracy down to the end of the density grid, so its real "
               "limit is lower; rerun the study with a longer grid (--densities, --extend) to find it.");
        sgi_buf_printf(b, "</p>");
    }
    sgi_buf_printf(b, "</div>\n");
}

enum sg_status sg_report_html(const struct sg_report_input *in, char **html, size_t *len) {
    *html = NULL;
    if (len) *len = 0;
    if (!in || !in->pts) return sgi_error(SG_ERR_ARG, "report: no points");
    if (!(in->tol >= 0 && in->tol < 1)) return sgi_error(SG_ERR_ARG, "report: tolerance %g is not in [0, 1)", in->tol);
    if (in->n_models < 0 || (in->n_models > 0 && !in->models)) return sgi_error(SG_ERR_ARG, "report: models missing");
    struct sgi_buf b = {0};
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.b = &b;
    c.in = in;
    enum sg_status st = sg_study_curves(in->pts, &c.curves, &c.n_curves);
    if (st == SG_OK) st = sg_study_noloss(in->pts, in->tol, &c.nl, &c.n_nl);
    if (st != SG_OK) goto out;
    for (int i = 0; i < c.n_nl && c.n_grans < MAX_GRANS; i++) snprintf(c.grans[c.n_grans++], 48, "%s", c.nl[i].gran);
    for (int i = 0; i < c.n_curves; i++) {
        const struct sg_curve *r = &c.curves[i];
        if (!strcmp(r->gran, "dense") && !r->control[0] && r->step == 0) {
            c.have_base = 1;
            c.base_mean = r->mean, c.base_min = r->min, c.base_max = r->max, c.base_std = r->std;
            c.seeds = r->seeds;
        }
        if (r->seeds > c.seeds) c.seeds = r->seeds;
    }
    if (in->settings_json) c.settings = cJSON_Parse(in->settings_json);
    const char *model = in->pts->n ? in->pts->p[0].model : "?", *data = in->pts->n ? in->pts->p[0].data : "?";
    sgi_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
                       "<meta name=\"generator\" content=\"sparsegrain %s\"/>\n<title>",
                   SG_VERSION_STRING);
    sgi_xml_printf(&b, "Granularity of sparsity: %s on %s", model, data);
    sgi_buf_printf(&b, "</title>\n<style>%s</style>\n</head>\n<body>\n<header>\n<h1>", CSS);
    sgi_xml_printf(&b, "Granularity of sparsity: %s on %s", model, data);
    sgi_buf_printf(&b, "</h1>\n<p class=\"sub\">");
    sgi_xml_printf(&b, "Study folder %s \xc2\xb7 %d points \xc2\xb7 %d seed%s \xc2\xb7 written %s by sparsegrain %s",
                   in->dir ? in->dir : "?", in->pts->n, c.seeds, c.seeds == 1 ? "" : "s",
                   in->env ? in->env->date : "?", SG_VERSION_STRING);
    sgi_buf_printf(&b, "</p>\n</header>\n");
    summary(&c);
    int any_png = 0;
    for (int m = 0; m < in->n_models; m++) any_png |= in->models[m].png != NULL;
    /* sections 1-3 always; the others are numbered as they appear */
    const int n_masks = 4, n_storage = n_masks + any_png, n_scnn = n_storage + (in->storage != NULL);
    const int n_infer = n_scnn + (in->scnn != NULL), n_gpu = n_infer + (in->infer != NULL);
    const int n_points = n_gpu + (in->gpu != NULL);
    sgi_buf_printf(&b, "<nav><strong>Contents</strong><ol>"
                       "<li><a href=\"#accuracy\">Accuracy against density</a></li>"
                       "<li><a href=\"#no-loss\">No-loss density</a></li>"
                       "<li><a href=\"#structure\">Sparsity structure of the no-loss models</a></li>");
    if (any_png) sgi_buf_printf(&b, "<li><a href=\"#masks\">What each granularity removes</a></li>");
    if (in->storage) sgi_buf_printf(&b, "<li><a href=\"#storage\">Storage with indices</a></li>");
    if (in->scnn) sgi_buf_printf(&b, "<li><a href=\"#scnn\">SCNN memory references and energy</a></li>");
    if (in->infer) sgi_buf_printf(&b, "<li><a href=\"#infer\">CPU inference speed</a></li>");
    if (in->gpu) sgi_buf_printf(&b, "<li><a href=\"#gpu\">GPU speed of each granularity</a></li>");
    sgi_buf_printf(&b, "<li><a href=\"#points\">Every measured point</a></li>"
                       "<li><a href=\"#settings\">Settings and provenance</a></li></ol></nav>\n<main>\n");
    if ((st = section_accuracy(&c)) != SG_OK) goto out;
    if ((st = section_noloss(&c)) != SG_OK) goto out;
    section_structure(&c);
    if (any_png) section_masks(&c, n_masks);
    if (in->storage && (st = section_csv(&c, in->storage, &STORAGE_VIEW, n_storage, "storage.csv")) != SG_OK) goto out;
    if (in->scnn && (st = section_csv(&c, in->scnn, &SCNN_VIEW, n_scnn, "scnn.csv")) != SG_OK) goto out;
    if (in->infer && (st = section_csv(&c, in->infer, &INFER_VIEW, n_infer, "infer.csv")) != SG_OK) goto out;
    if (in->gpu && (st = section_csv(&c, in->gpu, &GPU_VIEW, n_gpu, "gpu.csv, summed over layers")) != SG_OK) goto out;
    section_points(&c, n_points);
    section_settings(&c, n_points + 1);
    sgi_buf_printf(&b, "</main>\n<footer>");
    sgi_xml_printf(&b, "Written by sparsegrain %s. Method: Mao, Han, Pool et al., \"Exploring the Regularity of "
                       "Sparse Structure in Convolutional Neural Networks\" (2017). Charts use the Okabe-Ito "
                       "palette and differ by marker and dash as well as colour.",
                   SG_VERSION_STRING);
    sgi_buf_printf(&b, "</footer>\n</body>\n</html>\n");
    sgi_buf_u8(&b, 0);
    if (b.failed) st = sgi_error(SG_ERR_NOMEM, "out of memory writing the report");
out:
    free(c.curves);
    free(c.nl);
    cJSON_Delete(c.settings);
    if (st != SG_OK) {
        sgi_buf_free(&b);
        return st;
    }
    *html = (char *)b.data;
    if (len) *len = b.len - 1;
    return SG_OK;
}
