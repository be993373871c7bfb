/* SVG charts written by hand: line charts (linear or log x, bands, reference
 * lines, markers) and bar charts (grouped or stacked, vertical or horizontal).
 * Layout is computed from estimated text widths, because an SVG file cannot ask
 * the renderer how wide a string is; the estimates err on the wide side. */
#include <math.h>

#include "report_internal.h"

/* ---- text ---- */

/* Length of a valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static int utf8_len(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    /* overlong 3- and 4-byte forms, surrogates and values above U+10FFFF */
    if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) return 0;
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) return 0;
    return n;
}

void sgi_xml_text(struct sgi_buf *b, const char *s) {
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            sgi_buf_put(b, rep, strlen(rep));
            p++;
            continue;
        }
        if (*p < 0x20) { /* XML 1.0 forbids most control characters */
            if (*p == '\t' || *p == '\n') sgi_buf_put(b, p, 1);
            p++;
            continue;
        }
        int n = utf8_len(p);
        if (n == 0) {
            sgi_buf_put(b, "\xef\xbf\xbd", 3);
            p++;
            continue;
        }
        sgi_buf_put(b, p, (size_t)n);
        p += n;
    }
}

void sgi_xml_printf(struct sgi_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sgi_xml_text(b, small);
        return;
    }
    char *big = malloc((size_t)n + 1); /* long text: never cut inside a character */
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sgi_xml_text(b, big);
    free(big);
}

/* Characters (code points) in s. */
static size_t ulen(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
    return n;
}

/* Estimated width of s in pixels at a font size: 0.6 em per character is a little
 * wider than the average of common sans-serif faces, so labels never collide. */
static double text_w(const char *s, double size) { return s ? 0.6 * size * (double)ulen(s) : 0; }

void sgi_fmt_num(char *out, size_t cap, double v, int sig) {
    if (!isfinite(v)) {
        snprintf(out, cap, "n/a");
        return;
    }
    static const char *const suf[] = {"", "k", "M", "G", "T", "P"};
    int e = 0;
    double a = fabs(v);
    while (a >= 1e4 && e < 5) a /= 1000, v /= 1000, e++;
    snprintf(out, cap, "%.*g%s", sig, v, suf[e]);
}

/* ---- palette ---- */

/* Okabe and Ito (2008), "Color Universal Design": distinguishable under the
 * common colour-vision deficiencies. Yellow is last: it is weak on white. */
static const char *const PALETTE[SG_PALETTE_N] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                  "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define GREY "#6b6b6b"

const char *sg_palette(int i) { return i < 0 ? GREY : PALETTE[i % SG_PALETTE_N]; }

static const char *dash_attr(int dash) {
    return dash == 1 ? " stroke-dasharray=\"7 4\"" : dash == 2 ? " stroke-dasharray=\"2 3\"" : "";
}

/* ---- ticks ---- */

/* Heckbert's "nice numbers" (Graphics Gems, 1990): 1, 2 or 5 times a power of 10. */
static double nice(double x, int round_) {
    double e = floor(log10(x)), f = x / pow(10, e), nf;
    if (round_) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

#define MAX_TICKS 64
struct ticks {
    int n;
    double v[MAX_TICKS];
    int major[MAX_TICKS]; /* labelled */
    int decimals;         /* linear: decimals of the labels */
    double lo, hi;        /* the axis domain */
    int log;
};

/* Linear ticks about `want` apart over [lo, hi]; when `expand`, the domain grows
 * to whole ticks. */
static void lin_ticks(double lo, double hi, int want, int expand, struct ticks *t) {
    memset(t, 0, sizeof *t);
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.05 : 1;
        lo -= d, hi += d;
    }
    double step = nice(nice(hi - lo, 0) / (want - 1), 1);
    if (expand) {
        lo = floor(lo / step + 1e-9) * step;
        hi = ceil(hi / step - 1e-9) * step;
    }
    t->lo = lo, t->hi = hi;
    t->decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6 && t->n < MAX_TICKS; v += step) {
        t->v[t->n] = fabs(v) < step * 1e-9 ? 0 : v;
        t->major[t->n++] = 1;
    }
}

/* Log ticks: every decade, with 2 and 5 (or 2, 3, 5) labelled when there are few
 * decades and the other integers as unlabelled minor ticks. */
static void log_ticks(double lo, double hi, int expand, struct ticks *t) {
    memset(t, 0, sizeof *t);
    t->log = 1;
    if (!(lo > 0)) lo = hi > 0 ? hi / 10 : 0.1;
    if (!(hi > lo)) hi = lo * 10;
    if (expand) {
        lo = pow(10, floor(log10(lo) + 1e-9));
        hi = pow(10, ceil(log10(hi) - 1e-9));
    }
    t->lo = lo, t->hi = hi;
    double decades = log10(hi / lo);
    for (int e = (int)floor(log10(lo)) - 1; e <= (int)ceil(log10(hi)); e++)
        for (int m = 1; m <= 9; m++) {
            double v = m * pow(10, e);
            if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9) || t->n == MAX_TICKS) continue;
            int major = m == 1 || (decades <= 1.01 && (m == 2 || m == 3 || m == 5)) ||
                        (decades <= 3.01 && (m == 2 || m == 5));
            t->v[t->n] = v;
            t->major[t->n++] = major;
        }
}

static void tick_label(const struct ticks *t, double v, char *out, size_t cap) {
    double big = fmax(fabs(t->lo), fabs(t->hi));
    if (t->log) snprintf(out, cap, "%g", v);
    else if (big >= 1e4) sgi_fmt_num(out, cap, v, 3);
    else snprintf(out, cap, "%.*f", t->decimals, v);
}

/* ---- shared pieces ---- */

static void svg_open(struct sgi_buf *b, const char *id, const char *title, int w, int h) {
    sgi_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sg-chart\" id=\"");
    sgi_xml_text(b, id);
    sgi_buf_printf(b, "\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-labelledby=\"", w,
                   h, w, h);
    sgi_xml_text(b, id);
    sgi_buf_printf(b, "-title\">\n<title id=\"");
    sgi_xml_text(b, id);
    sgi_buf_printf(b, "-title\">");
    sgi_xml_text(b, title ? title : "chart");
    sgi_buf_printf(b,
                   "</title>\n<style>"
                   ".sg-chart text{font-family:" SGI_FONT_STACK ";fill:#222}"
                   ".sg-chart .tick{font-size:12px;fill:#444}"
                   ".sg-chart .axis-label{font-size:13px;fill:#222}"
                   ".sg-chart .chart-title{font-size:15px;font-weight:600}"
                   ".sg-chart .legend text{font-size:12.5px}"
                   ".sg-chart .value{font-size:11px;fill:#333}"
                   "</style>\n"
                   "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
                   w, h);
    if (title && *title) {
        sgi_buf_printf(b, "<text class=\"chart-title\" x=\"%d\" y=\"22\">", 12);
        sgi_xml_text(b, title);
        sgi_buf_printf(b, "</text>\n");
    }
}

static void marker(struct sgi_buf *b, enum sg_marker m, double x, double y, const char *col,
                   int hollow, const char *tip) {
    const double r = 4.6;
    char style[128];
    if (m == SG_MARK_CROSS)
        snprintf(style, sizeof style, "fill=\"none\" stroke=\"%s\" stroke-width=\"2\"", col);
    else if (hollow)
        snprintf(style, sizeof style, "fill=\"#ffffff\" stroke=\"%s\" stroke-width=\"1.8\"", col);
    else
        snprintf(style, sizeof style, "fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\"", col);
    switch (m) {
    case SG_MARK_NONE: return;
    case SG_MARK_CIRCLE: sgi_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" %s>", x, y, r, style); break;
    case SG_MARK_SQUARE:
        sgi_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" %s>", x - r * 0.85,
                       y - r * 0.85, r * 1.7, r * 1.7, style);
        break;
    case SG_MARK_DIAMOND:
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" %s>", x, y - r * 1.25,
                       x + r * 1.25, y, x, y + r * 1.25, x - r * 1.25, y, style);
        break;
    case SG_MARK_TRIANGLE:
    case SG_MARK_DOWN: {
        double s = m == SG_MARK_TRIANGLE ? 1 : -1;
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" %s>", x, y - s * r * 1.3,
                       x + r * 1.2, y + s * r * 0.8, x - r * 1.2, y + s * r * 0.8, style);
        break;
    }
    case SG_MARK_CROSS:
    default:
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" %s>", x - r, y - r,
                       x + r, y + r, x - r, y + r, x + r, y - r, style);
        break;
    }
    if (tip) {
        sgi_buf_printf(b, "<title>");
        sgi_xml_text(b, tip);
        sgi_buf_printf(b, "</title>");
    }
    const char *close = m == SG_MARK_CIRCLE ? "</circle>" : m == SG_MARK_SQUARE ? "</rect>" : "</path>";
    sgi_buf_printf(b, "%s\n", close);
}

/* ---- line charts ---- */

struct map {
    double x0, x1, y0, y1; /* plot area in pixels (y0 top) */
    double pad_x, pad_y;   /* inner margin so markers at the domain's edge stay inside */
    const struct ticks *tx, *ty;
};

static double map_x(const struct map *m, double v) {
    const struct ticks *t = m->tx;
    double f = t->log ? log10(v / t->lo) / log10(t->hi / t->lo) : (v - t->lo) / (t->hi - t->lo);
    return m->x0 + m->pad_x + f * (m->x1 - m->x0 - 2 * m->pad_x);
}

static double map_y(const struct map *m, double v) {
    const struct ticks *t = m->ty;
    double f = (v - t->lo) / (t->hi - t->lo);
    return m->y1 - m->pad_y - f * (m->y1 - m->y0 - 2 * m->pad_y);
}

static int usable_x(const struct sg_line_chart *c, double x) { return isfinite(x) && (!c->log_x || x > 0); }

/* Ids become url(#...) references: keep them to characters that need no escaping. */
static int valid_id(const char *id) {
    if (!id) return 1;
    if (strlen(id) > 64) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static enum sg_status check_line(const struct sg_line_chart *c) {
    if (!valid_id(c->id)) return sgi_error(SG_ERR_ARG, "line chart: id '%.64s' is not [A-Za-z0-9_-]{1,64}", c->id);
    if (c->n_series < 0 || (c->n_series > 0 && !c->series) || c->n_ref < 0 || (c->n_ref > 0 && !c->ref))
        return sgi_error(SG_ERR_ARG, "line chart: series or reference lines missing");
    if ((c->width && (c->width < 240 || c->width > 8000)) || (c->height && (c->height < 160 || c->height > 8000)))
        return sgi_error(SG_ERR_ARG, "line chart: size %dx%d outside 240x160 .. 8000x8000", c->width,
                         c->height);
    for (int i = 0; i < c->n_series; i++) {
        const struct sg_series *s = &c->series[i];
        if (s->n < 0 || (s->n > 0 && (!s->x || !s->y)) || (!s->lo != !s->hi) ||
            (unsigned)s->marker >= SG_MARK_COUNT)
            return sgi_error(SG_ERR_ARG, "line chart: series %d is inconsistent", i);
    }
    return SG_OK;
}

/* A line chart's scales and layout, computed before drawing. */
struct line_layout {
    struct ticks tx, ty;
    struct map m; /* m.tx, m.ty point at tx, ty above */
    const char *id;
    int W, Hh, n_leg; /* width, height (grown for the legend), legend entries */
    double legend_w;
};

/* Data bounds, ticks, and the plot area left by the labels and the legend. */
static enum sg_status line_layout(const struct sg_line_chart *c, struct line_layout *L) {
    const int W = c->width ? c->width : 900, H = c->height ? c->height : 440;
    L->id = c->id && *c->id ? c->id : "c";
    /* data bounds */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < c->n_series; i++) {
        const struct sg_series *s = &c->series[i];
        for (int k = 0; k < s->n; k++) {
            if (!usable_x(c, s->x[k])) continue;
            const double ys[3] = {s->y[k], s->lo ? s->lo[k] : NAN, s->hi ? s->hi[k] : NAN};
            int any = 0;
            for (int q = 0; q < 3; q++)
                if (isfinite(ys[q])) ylo = fmin(ylo, ys[q]), yhi = fmax(yhi, ys[q]), any = 1;
            if (any) xlo = fmin(xlo, s->x[k]), xhi = fmax(xhi, s->x[k]);
        }
    }
    for (int i = 0; i < c->n_ref; i++)
        if (isfinite(c->ref[i].y)) ylo = fmin(ylo, c->ref[i].y), yhi = fmax(yhi, c->ref[i].y);
    if (!isfinite(xlo)) xlo = c->log_x ? 0.1 : 0, xhi = 1;
    if (!isfinite(ylo)) ylo = 0, yhi = 1;
    const int fx0 = isfinite(c->x_min), fx1 = isfinite(c->x_max);
    const int fy0 = isfinite(c->y_min), fy1 = isfinite(c->y_max);
    if (fx0) xlo = c->x_min;
    if (fx1) xhi = c->x_max;
    if (fy0) ylo = c->y_min;
    if (fy1) yhi = c->y_max;
    if (c->log_x && !(xlo > 0)) return sgi_error(SG_ERR_ARG, "line chart: log axis needs x > 0");
        if (c->log_x) log_ticks(xlo, xhi, !(fx0 && fx1), &L->tx);
    else lin_ticks(xlo, xhi, 7, !(fx0 && fx1), &L->tx);
    lin_ticks(ylo, yhi, 7, !(fy0 && fy1), &L->ty);

    /* layout */
    double ytw = 0;
    char lab[64];
    for (int i = 0; i < L->ty.n; i++) {
        tick_label(&L->ty, L->ty.v[i], lab, sizeof lab);
        if (c->y_suffix) snprintf(lab + strlen(lab), sizeof lab - strlen(lab), "%s", c->y_suffix);
        ytw = fmax(ytw, text_w(lab, 12));
    }
    double legend_w = 0;
    for (int i = 0; i < c->n_series; i++) legend_w = fmax(legend_w, text_w(c->series[i].name, 12.5));
    for (int i = 0; i < c->n_ref; i++) legend_w = fmax(legend_w, text_w(c->ref[i].label, 12.5));
    const int n_leg = c->n_series + c->n_ref;
    if (n_leg) legend_w += 40;
    legend_w = fmin(legend_w, W * 0.4);
    int Hh = H;
    const double top0 = c->title && *c->title ? 38 : 14;
    if (!c->height && top0 + 8 + 22.0 * n_leg + 8 > Hh) Hh = (int)(top0 + 16 + 22.0 * n_leg); /* legend fits */
    struct map *m = &L->m;
    m->x0 = 14 + (c->y_label ? 20 : 0) + ytw + 8;
    m->x1 = W - 16 - (n_leg ? legend_w + 14 : 0);
    m->y0 = top0;
    m->y1 = Hh - 22 - (c->x_label ? 22 : 0);
    m->pad_x = 12, m->pad_y = 8;
    m->tx = &L->tx, m->ty = &L->ty;
    if (m->x1 - m->x0 < 80 || m->y1 - m->y0 < 60)
        return sgi_error(SG_ERR_ARG, "line chart: %dx%d leaves no room for the plot", W, H);

    L->W = W, L->Hh = Hh, L->n_leg = n_leg, L->legend_w = legend_w;
    return SG_OK;
}

/* Clip path, grid, axes, tick labels and axis labels. */
static void line_axes(struct sgi_buf *b, const struct sg_line_chart *c,
                      const struct line_layout *L) {
    const struct map m = L->m;
    const struct ticks tx = L->tx, ty = L->ty;
    const char *id = L->id;
    const int Hh = L->Hh;
    char lab[64];
    sgi_buf_printf(b, "<defs><clipPath id=\"%s-clip\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                      "height=\"%.1f\"/></clipPath></defs>\n",
                   id, m.x0, m.y0, m.x1 - m.x0, m.y1 - m.y0);
    /* grid and ticks */
    sgi_buf_printf(b, "<g class=\"grid\" fill=\"none\">\n");
    for (int i = 0; i < tx.n; i++) {
        double x = map_x(&m, tx.v[i]);
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", x, m.y0, m.y1,
                       tx.major[i] ? "#e3e3e3" : "#f1f1f1");
    }
    for (int i = 0; i < ty.n; i++)
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#e3e3e3\" stroke-width=\"1\"/>\n", m.x0,
                       map_y(&m, ty.v[i]), m.x1);
    sgi_buf_printf(b, "</g>\n<g class=\"axes\">\n");
    sgi_buf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#444\" stroke-width=\"1\"/>\n",
                   m.x0, m.y0, m.y1, m.x1);
    for (int i = 0; i < tx.n; i++) {
        double x = map_x(&m, tx.v[i]);
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fv%d\" stroke=\"#444\"/>\n", x, m.y1, tx.major[i] ? 5 : 3);
        if (!tx.major[i]) continue;
        tick_label(&tx, tx.v[i], lab, sizeof lab);
        sgi_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x,
                       m.y1 + 19, lab);
    }
    for (int i = 0; i < ty.n; i++) {
        double y = map_y(&m, ty.v[i]);
        tick_label(&ty, ty.v[i], lab, sizeof lab);
        sgi_buf_printf(b, "<path d=\"M%.1f %.1fh-5\" stroke=\"#444\"/>\n", m.x0, y);
        sgi_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s", m.x0 - 8, y + 4, lab);
        sgi_xml_text(b, c->y_suffix);
        sgi_buf_printf(b, "</text>\n");
    }
    if (c->x_label) {
        sgi_buf_printf(b, "<text class=\"axis-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                       (m.x0 + m.x1) / 2, Hh - 10);
        sgi_xml_text(b, c->x_label);
        sgi_buf_printf(b, "</text>\n");
    }
    if (c->y_label) {
        double cy = (m.y0 + m.y1) / 2;
        sgi_buf_printf(b, "<text class=\"axis-label\" x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                          "transform=\"rotate(-90 18 %.1f)\">",
                       cy, cy);
        sgi_xml_text(b, c->y_label);
        sgi_buf_printf(b, "</text>\n");
    }
    sgi_buf_printf(b, "</g>\n<g clip-path=\"url(#%s-clip)\">\n", id);
}

/* Reference lines, spread bands, lines and markers, in that order (no line hides
 * another series' marker), inside the clip path. */
static void line_data(struct sgi_buf *b, const struct sg_line_chart *c,
                      const struct line_layout *L) {
    const struct map m = L->m;
    /* reference lines under the data */
    for (int i = 0; i < c->n_ref; i++) {
        const struct sg_refline *r = &c->ref[i];
        if (!isfinite(r->y)) continue;
        sgi_buf_printf(b, "<path class=\"refline\" d=\"M%.1f %.1fH%.1f\" stroke=\"%s\" stroke-width=\"1.5\"%s>"
                          "<title>",
                       m.x0, map_y(&m, r->y), m.x1, sg_palette(r->color), dash_attr(r->dash));
        sgi_xml_text(b, r->label);
        sgi_buf_printf(b, "</title></path>\n");
    }
    /* bands, then lines, then markers: no line hides another series' marker */
    for (int i = 0; i < c->n_series; i++) {
        const struct sg_series *s = &c->series[i];
        if (!s->lo) continue;
        sgi_buf_printf(b, "<path class=\"band\" fill=\"%s\" fill-opacity=\"0.16\" stroke=\"none\" d=\"",
                       sg_palette(s->color));
        int k = 0;
        while (k < s->n) { /* one closed shape per run of usable points */
            int e = k;
            while (e < s->n && usable_x(c, s->x[e]) && isfinite(s->lo[e]) && isfinite(s->hi[e])) e++;
            if (e > k) {
                for (int q = k; q < e; q++)
                    sgi_buf_printf(b, "%c%.1f %.1f", q == k ? 'M' : 'L', map_x(&m, s->x[q]), map_y(&m, s->hi[q]));
                for (int q = e - 1; q >= k; q--)
                    sgi_buf_printf(b, "L%.1f %.1f", map_x(&m, s->x[q]), map_y(&m, s->lo[q]));
                sgi_buf_printf(b, "Z");
            }
            k = e + 1;
        }
        sgi_buf_printf(b, "\"><title>");
        sgi_xml_printf(b, "%s: spread", s->name ? s->name : "");
        sgi_buf_printf(b, "</title></path>\n");
    }
    for (int i = 0; i < c->n_series; i++) {
        const struct sg_series *s = &c->series[i];
        if (s->no_line) continue;
        sgi_buf_printf(b, "<path class=\"series\" data-series=\"%d\" fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2.4\" stroke-linejoin=\"round\" stroke-linecap=\"round\"%s d=\"",
                       i, sg_palette(s->color), dash_attr(s->dash));
        int pen = 0;
        for (int k = 0; k < s->n; k++) {
            if (!usable_x(c, s->x[k]) || !isfinite(s->y[k])) {
                pen = 0;
                continue;
            }
            sgi_buf_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', map_x(&m, s->x[k]), map_y(&m, s->y[k]));
            pen = 1;
        }
        sgi_buf_printf(b, "\"><title>");
        sgi_xml_text(b, s->name);
        sgi_buf_printf(b, "</title></path>\n");
    }
    for (int i = 0; i < c->n_series; i++) {
        const struct sg_series *s = &c->series[i];
        if (s->marker == SG_MARK_NONE && !s->no_line) continue;
        /* a markers-only series is a series of its own for whoever counts them */
        if (s->no_line) sgi_buf_printf(b, "<g class=\"series\" data-series=\"%d\">\n", i);
        else sgi_buf_printf(b, "<g class=\"markers\" data-series=\"%d\">\n", i);
        for (int k = 0; k < s->n; k++) {
            if (!usable_x(c, s->x[k]) || !isfinite(s->y[k])) continue;
            char tip[256];
            if (s->tip && s->tip[k]) snprintf(tip, sizeof tip, "%s", s->tip[k]);
            else snprintf(tip, sizeof tip, "%s: x = %g, y = %g", s->name ? s->name : "", s->x[k], s->y[k]);
            marker(b, s->marker == SG_MARK_NONE ? SG_MARK_CIRCLE : s->marker, map_x(&m, s->x[k]),
                   map_y(&m, s->y[k]), sg_palette(s->color), s->hollow, tip);
        }
        sgi_buf_printf(b, "</g>\n");
    }
    sgi_buf_printf(b, "</g>\n");
}

/* The legend, right of the plot, top-aligned. */
static void line_legend(struct sgi_buf *b, const struct sg_line_chart *c,
                        const struct line_layout *L) {
    const struct map m = L->m;
    const int n_leg = L->n_leg;
    const double legend_w = L->legend_w;
    if (n_leg) {
        double lx = m.x1 + 16, ly = m.y0 + 8;
        sgi_buf_printf(b, "<g class=\"legend\">\n");
        for (int i = 0; i < n_leg; i++, ly += 22) {
            const int is_ref = i >= c->n_series;
            const struct sg_series *s = is_ref ? NULL : &c->series[i];
            const struct sg_refline *r = is_ref ? &c->ref[i - c->n_series] : NULL;
            const char *col = sg_palette(is_ref ? r->color : s->color);
            const char *name = is_ref ? r->label : s->name;
            sgi_buf_printf(b, "<g class=\"legend-item\">");
            if (is_ref || !s->no_line)
                sgi_buf_printf(b, "<path d=\"M%.1f %.1fh28\" stroke=\"%s\" stroke-width=\"%s\"%s/>", lx, ly,
                               col, is_ref ? "1.5" : "2.4", dash_attr(is_ref ? r->dash : s->dash));
            if (s && (s->marker != SG_MARK_NONE || s->no_line))
                marker(b, s->marker == SG_MARK_NONE ? SG_MARK_CIRCLE : s->marker, lx + 14, ly, col, s->hollow,
                       NULL);
            /* a long name is cut to the legend's width; the hover text keeps it whole */
            char shown[128];
            snprintf(shown, sizeof shown, "%s", name ? name : "");
            size_t maxc = (size_t)((legend_w - 40) / (0.6 * 12.5));
            if (maxc >= 4 && ulen(shown) > maxc) {
                size_t at = 0, seen = 0;
                while (shown[at] && seen < maxc - 1) {
                    at++;
                    while ((shown[at] & 0xc0) == 0x80) at++;
                    seen++;
                }
                snprintf(shown + at, sizeof shown - at, "\xe2\x80\xa6");
            }
            sgi_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", lx + 36, ly + 4.5);
            sgi_xml_text(b, shown);
            sgi_buf_printf(b, "<title>");
            sgi_xml_text(b, name);
            sgi_buf_printf(b, "</title></text></g>\n");
        }
        sgi_buf_printf(b, "</g>\n");
    }
}

enum sg_status sgi_svg_line_chart(struct sgi_buf *b, const struct sg_line_chart *c) {
    enum sg_status st = check_line(c);
    if (st != SG_OK) return st;
    struct line_layout L;
    if ((st = line_layout(c, &L)) != SG_OK) return st;
    svg_open(b, L.id, c->title, L.W, L.Hh);
    line_axes(b, c, &L);
    line_data(b, c, &L);
    line_legend(b, c, &L);
    sgi_buf_printf(b, "</svg>\n");
    return b->failed ? sgi_error(SG_ERR_NOMEM, "out of memory writing a chart") : SG_OK;
}

/* ---- bar charts ---- */

static double bar_val(const struct sg_bar_chart *c, int cat, int s) {
    double v = c->v[(size_t)cat * (size_t)c->n_series + (size_t)s];
    return isfinite(v) && v > 0 ? v : 0;
}

static int bar_has(const struct sg_bar_chart *c, int cat, int s) {
    double v = c->v[(size_t)cat * (size_t)c->n_series + (size_t)s];
    return isfinite(v) && v >= 0;
}

/* A bar chart's value ticks and layout, computed before drawing. */
struct bar_layout {
    struct ticks tv;
    struct map m;
    const char *id;
    int W, H, legend, per_cat; /* size; legend drawn; bars per category */
    double slot, rot;          /* pixels per category; category label slant (degrees) */
};

/* Pixel position of value v on the value axis. */
static double vpos(const struct sg_bar_chart *c, const struct bar_layout *L, double v) {
    const struct map *m = &L->m;
    const double v0 = c->horizontal ? m->x0 : m->y1, vlen = c->horizontal ? m->x1 - m->x0 : m->y1 - m->y0;
    return c->horizontal ? v0 + v / L->tv.hi * vlen : v0 - v / L->tv.hi * vlen;
}

/* Checks, value ticks, and the plot area left by labels and the legend. */
static enum sg_status bar_layout(const struct sg_bar_chart *c, struct bar_layout *L) {
    if (c->n_cats < 1 || c->n_series < 1 || !c->cats || !c->series || !c->v)
        return sgi_error(SG_ERR_ARG, "bar chart: no categories or no series");
    if (!valid_id(c->id)) return sgi_error(SG_ERR_ARG, "bar chart: id '%.64s' is not [A-Za-z0-9_-]{1,64}", c->id);
    if (c->n_cats > 4096 || c->n_series > 256)
        return sgi_error(SG_ERR_ARG, "bar chart: %d categories x %d series is more than a chart can show",
                         c->n_cats, c->n_series);
    L->id = c->id && *c->id ? c->id : "b";
    double vmax = 0;
    for (int k = 0; k < c->n_cats; k++) {
        double sum = 0;
        for (int s = 0; s < c->n_series; s++) {
            sum = c->stacked ? sum + bar_val(c, k, s) : fmax(sum, bar_val(c, k, s));
        }
        vmax = fmax(vmax, sum);
    }
    struct ticks *tv = &L->tv;
    lin_ticks(0, vmax > 0 ? vmax : 1, 6, 1, tv);
    if (c->stacked && c->totals) {
        /* leave room after the longest bar for its total */
        lin_ticks(0, (vmax > 0 ? vmax : 1) * 1.12, 6, 1, tv);
    }
    double cat_w = 0;
    for (int k = 0; k < c->n_cats; k++) cat_w = fmax(cat_w, text_w(c->cats[k], 12));
    double legend_w = 0;
    for (int s = 0; s < c->n_series; s++) legend_w = fmax(legend_w, text_w(c->series[s], 12.5));
    const int legend = L->legend = !c->no_legend && (c->n_series > 1 || !c->stacked);
    if (legend) legend_w += 30;
    double vtw = 0;
    char lab[64];
    for (int i = 0; i < tv->n; i++) {
        tick_label(tv, tv->v[i], lab, sizeof lab);
        vtw = fmax(vtw, text_w(lab, 12));
    }
    const int per_cat = L->per_cat = c->stacked ? 1 : c->n_series;
    const double top = c->title && *c->title ? 38 : 14;
    int W = c->width ? c->width : 760, H;
    struct map *m = &L->m;
    double slot, rot = 0;
    if (c->horizontal) {
        cat_w = fmin(cat_w, 260);
        const double bar_h = c->stacked ? 20 : 14;
        slot = bar_h * per_cat + 10;
        H = c->height ? c->height : (int)(top + slot * c->n_cats + 56 + (c->value_label ? 0 : -18));
        m->x0 = 14 + (c->cat_label ? 20 : 0) + cat_w + 8;
        m->x1 = W - 16 - (legend ? legend_w + 14 : 0);
        m->y0 = top;
        m->y1 = H - 28 - (c->value_label ? 20 : 0);
        slot = (m->y1 - m->y0) / c->n_cats;
    } else {
        H = c->height ? c->height : 360;
        m->x0 = 14 + (c->value_label ? 20 : 0) + vtw + 8;
        m->x1 = W - 16 - (legend ? legend_w + 14 : 0);
        slot = (m->x1 - m->x0) / c->n_cats;
        if (cat_w > slot * 0.95) rot = 35; /* slanted labels when they would collide */
        m->y0 = top;
        m->y1 = H - 26 - (c->cat_label ? 20 : 0) - (rot ? fmin(cat_w, 200) * sin(rot * M_PI / 180) : 0);
    }
    if (legend && !c->height && top + 8 + 22.0 * c->n_series + 8 > m->y1) { /* room for the legend */
        const double grow = top + 16 + 22.0 * c->n_series - m->y1;
        H += (int)ceil(grow);
        m->y1 += grow;
        if (c->horizontal) slot = (m->y1 - m->y0) / c->n_cats;
    }
    if (W < 240 || W > 8000 || H < 120 || H > 30000 || m->x1 - m->x0 < 60 || m->y1 - m->y0 < 40)
        return sgi_error(SG_ERR_ARG, "bar chart: %dx%d pixels leave no room for %d bars", W, H, c->n_cats);
    m->pad_x = m->pad_y = 0;
    L->W = W, L->H = H, L->slot = slot, L->rot = rot;
    return SG_OK;
}

/* The value axis (grid, ticks), category labels and axis labels. */
static void bar_axes(struct sgi_buf *b, const struct sg_bar_chart *c, const struct bar_layout *L) {
    const struct map m = L->m;
    const double slot = L->slot;
    const struct ticks tv = L->tv;
    const double rot = L->rot;
    const int H = L->H;
    char lab[64];
    /* value axis: grid and ticks */
    sgi_buf_printf(b, "<g class=\"grid\" fill=\"none\">\n");
    for (int i = 0; i < tv.n; i++) {
        double p = vpos(c, L, tv.v[i]);
        if (c->horizontal) sgi_buf_printf(b, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"#e3e3e3\"/>\n", p, m.y0, m.y1);
        else sgi_buf_printf(b, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#e3e3e3\"/>\n", m.x0, p, m.x1);
    }
    sgi_buf_printf(b, "</g>\n<g class=\"axes\">\n");
    sgi_buf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#444\"/>\n", m.x0, m.y0, m.y1, m.x1);
    for (int i = 0; i < tv.n; i++) {
        double p = vpos(c, L, tv.v[i]);
        tick_label(&tv, tv.v[i], lab, sizeof lab);
        if (c->horizontal)
            sgi_buf_printf(b, "<path d=\"M%.1f %.1fv5\" stroke=\"#444\"/><text class=\"tick\" x=\"%.1f\" "
                              "y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                           p, m.y1, p, m.y1 + 19, lab);
        else
            sgi_buf_printf(b, "<path d=\"M%.1f %.1fh-5\" stroke=\"#444\"/><text class=\"tick\" x=\"%.1f\" "
                              "y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                           m.x0, p, m.x0 - 8, p + 4, lab);
    }
    /* category labels */
    for (int k = 0; k < c->n_cats; k++) {
        double mid = c->horizontal ? m.y0 + slot * (k + 0.5) : m.x0 + slot * (k + 0.5);
        char shown[96];
        snprintf(shown, sizeof shown, "%s", c->cats[k]);
        size_t maxc = (size_t)((c->horizontal ? 260 : 200) / (0.6 * 12));
        if (ulen(shown) > maxc) {
            size_t at = 0, seen = 0;
            while (shown[at] && seen < maxc - 1) {
                at++;
                while ((shown[at] & 0xc0) == 0x80) at++;
                seen++;
            }
            snprintf(shown + at, sizeof shown - at, "\xe2\x80\xa6");
        }
        if (c->horizontal)
            sgi_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", m.x0 - 8, mid + 4);
        else if (rot)
            sgi_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                              "transform=\"rotate(-%.0f %.1f %.1f)\">",
                           mid, m.y1 + 16, rot, mid, m.y1 + 16);
        else
            sgi_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", mid, m.y1 + 19);
        sgi_xml_text(b, shown);
        sgi_buf_printf(b, "<title>");
        sgi_xml_text(b, c->cats[k]);
        sgi_buf_printf(b, "</title></text>\n");
    }
    if (c->value_label) {
        if (c->horizontal) {
            sgi_buf_printf(b, "<text class=\"axis-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                           (m.x0 + m.x1) / 2, H - 10);
        } else {
            double cy = (m.y0 + m.y1) / 2;
            sgi_buf_printf(b, "<text class=\"axis-label\" x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                              "transform=\"rotate(-90 18 %.1f)\">",
                           cy, cy);
        }
        sgi_xml_text(b, c->value_label);
        sgi_buf_printf(b, "</text>\n");
    }
    if (c->cat_label) {
        if (c->horizontal) {
            double cy = (m.y0 + m.y1) / 2;
            sgi_buf_printf(b, "<text class=\"axis-label\" x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                              "transform=\"rotate(-90 18 %.1f)\">",
                           cy, cy);
        } else {
            sgi_buf_printf(b, "<text class=\"axis-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                           (m.x0 + m.x1) / 2, H - 8);
        }
        sgi_xml_text(b, c->cat_label);
        sgi_buf_printf(b, "</text>\n");
    }
    sgi_buf_printf(b, "</g>\n");
}

/* The bars, one group per series, and the totals of stacked bars. */
static void bar_bars(struct sgi_buf *b, const struct sg_bar_chart *c, const struct bar_layout *L) {
    const struct map m = L->m;
    const double slot = L->slot;
    const int per_cat = L->per_cat;
    /* bars, one group per series */
    /* bars no thicker than 26 (horizontal) or 56 px (vertical): a few wide slabs read as boxes */
    const double tmax = c->horizontal ? 26 : 56;
    const double thick = fmin(c->stacked ? slot * 0.8 : slot * (c->horizontal ? 0.8 : 0.76) / per_cat, tmax);
    const double group = thick * per_cat;
    for (int s = 0; s < c->n_series; s++) {
        const char *col = sg_palette(c->colors ? c->colors[s] : s);
        sgi_buf_printf(b, "<g class=\"series\" data-series=\"%d\" fill=\"%s\"><title>", s, col);
        sgi_xml_text(b, c->series[s]);
        sgi_buf_printf(b, "</title>\n");
        for (int k = 0; k < c->n_cats; k++) {
            if (!bar_has(c, k, s)) continue;
            double start = 0;
            if (c->stacked)
                for (int q = 0; q < s; q++) start += bar_val(c, k, q);
            const double v = bar_val(c, k, s);
            const double mid = (c->horizontal ? m.y0 : m.x0) + slot * (k + 0.5);
            const double off = c->stacked ? -thick / 2 : -group / 2 + thick * s;
            double a = vpos(c, L, start), e = vpos(c, L, start + v);
            double lo = fmin(a, e), len = fabs(e - a);
            const double gap = c->stacked ? 0 : fmin(2, thick * 0.15); /* air between neighbours */
            if (c->horizontal)
                sgi_buf_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
                               lo, mid + off + gap / 2, len, thick - gap);
            else
                sgi_buf_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
                               mid + off + gap / 2, lo, thick - gap, len);
            char num[48];
            sgi_fmt_num(num, sizeof num, c->v[(size_t)k * c->n_series + s], 4);
            sgi_buf_printf(b, "<title>");
            sgi_xml_printf(b, "%s, %s: %s%s%s", c->cats[k], c->series[s], num, c->unit ? " " : "",
                           c->unit ? c->unit : "");
            sgi_buf_printf(b, "</title></rect>\n");
        }
        sgi_buf_printf(b, "</g>\n");
    }
    if (c->stacked && c->totals) {
        sgi_buf_printf(b, "<g class=\"totals\">\n");
        for (int k = 0; k < c->n_cats; k++) {
            double sum = 0;
            for (int s = 0; s < c->n_series; s++) sum += bar_val(c, k, s);
            char num[48];
            sgi_fmt_num(num, sizeof num, sum, 3);
            const double mid = (c->horizontal ? m.y0 : m.x0) + slot * (k + 0.5);
            if (c->horizontal)
                sgi_buf_printf(b, "<text class=\"value\" x=\"%.1f\" y=\"%.1f\">%s</text>\n", vpos(c, L, sum) + 5, mid + 4,
                               num);
            else
                sgi_buf_printf(b, "<text class=\"value\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                               mid, vpos(c, L, sum) - 5, num);
        }
        sgi_buf_printf(b, "</g>\n");
    }
}

static void bar_legend(struct sgi_buf *b, const struct sg_bar_chart *c,
                       const struct bar_layout *L) {
    const struct map m = L->m;
    if (L->legend) {
        double lx = m.x1 + 16, ly = m.y0 + 8;
        sgi_buf_printf(b, "<g class=\"legend\">\n");
        for (int s = 0; s < c->n_series; s++, ly += 22) {
            sgi_buf_printf(b, "<g class=\"legend-item\"><rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" "
                              "fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
                           lx, ly - 7, sg_palette(c->colors ? c->colors[s] : s), lx + 22, ly + 4.5);
            sgi_xml_text(b, c->series[s]);
            sgi_buf_printf(b, "</text></g>\n");
        }
        sgi_buf_printf(b, "</g>\n");
    }
}

enum sg_status sgi_svg_bar_chart(struct sgi_buf *b, const struct sg_bar_chart *c) {
    struct bar_layout L;
    enum sg_status st = bar_layout(c, &L);
    if (st != SG_OK) return st;
    svg_open(b, L.id, c->title, L.W, L.H);
    bar_axes(b, c, &L);
    bar_bars(b, c, &L);
    bar_legend(b, c, &L);
    sgi_buf_printf(b, "</svg>\n");
    return b->failed ? sgi_error(SG_ERR_NOMEM, "out of memory writing a chart") : SG_OK;
}

static enum sg_status finish(struct sgi_buf *b, enum sg_status st, char **out) {
    *out = NULL;
    if (st == SG_OK) sgi_buf_u8(b, 0);
    if (st == SG_OK && b->failed) st = sgi_error(SG_ERR_NOMEM, "out of memory writing a chart");
    if (st != SG_OK) {
        sgi_buf_free(b);
        return st;
    }
    *out = (char *)b->data;
    return SG_OK;
}

enum sg_status sg_svg_line_chart(const struct sg_line_chart *c, char **svg) {
    struct sgi_buf b = {0};
    return finish(&b, sgi_svg_line_chart(&b, c), svg);
}

enum sg_status sg_svg_bar_chart(const struct sg_bar_chart *c, char **svg) {
    struct sgi_buf b = {0};
    return finish(&b, sgi_svg_bar_chart(&b, c), svg);
}
