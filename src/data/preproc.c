/* Input preprocessing: the text form (parse, format), checks, and the byte -> float table. */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/data.h"

/* Shortest decimal that reads back (through double, as Python and strtod do) as f. */
static void put_num(char *buf, size_t cap, float f) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) return;
    }
}

/* Comma-separated finite numbers into v[0..max); returns the count or -1. */
static int numbers(const char *s, size_t len, float *v, int max) {
    char tmp[512];
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    int n = 0;
    char *p = tmp;
    for (;;) {
        char *end;
        double d = strtod(p, &end);
        if (end == p || !isfinite(d) || fabs(d) > 3e38 || n == max) return -1;
        v[n++] = (float)d;
        if (*end == 0) return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

#define PARSE_HELP                                                                             \
    "(none, dataset, MEAN,STD or per channel M1,..,MC,S1,..,SC, optionally followed by :raw " \
    "and :bgr)"

enum sg_status sg_preproc_parse(const char *spec, struct sg_preproc *out) {
    struct sg_preproc p;
    memset(&p, 0, sizeof p);
    p.stated = 1;
    p.range = 255;
    const char *colon = strchr(spec, ':');
    const size_t base = colon ? (size_t)(colon - spec) : strlen(spec);
    float v[2 * SG_PREPROC_MAX_CH + 1];
    if (base == 4 && strncmp(spec, "none", 4) == 0) {
        p.kind = SG_NORM_FIXED;
        p.n = 1;
        p.mean[0] = 0, p.std[0] = 1;
    } else if (base == 7 && strncmp(spec, "dataset", 7) == 0) {
        p.kind = SG_NORM_DATASET;
    } else if (base > 8 && strncmp(spec, "dataset=", 8) == 0) {
        if (numbers(spec + 8, base - 8, v, 3) != 2)
            return sgi_error(SG_ERR_ARG, "input preprocessing '%s': dataset= takes MEAN,STD", spec);
        p.kind = SG_NORM_DATASET;
        p.n = 1;
        p.mean[0] = v[0], p.std[0] = v[1];
    } else {
        int k = numbers(spec, base, v, 2 * SG_PREPROC_MAX_CH + 1);
        if (k > 2 * SG_PREPROC_MAX_CH)
            return sgi_error(SG_ERR_ARG, "input preprocessing '%s': at most %d channels", spec,
                             SG_PREPROC_MAX_CH);
        if (k < 2 || k % 2)
            return sgi_error(SG_ERR_ARG, "input preprocessing '%s': expected %s", spec, PARSE_HELP);
        p.kind = SG_NORM_FIXED;
        p.n = k / 2;
        for (int c = 0; c < p.n; c++) p.mean[c] = v[c], p.std[c] = v[p.n + c];
    }
    for (const char *f = colon; f; f = strchr(f + 1, ':')) {
        const char *e = strchr(f + 1, ':');
        const size_t len = e ? (size_t)(e - f - 1) : strlen(f + 1);
        if (len == 3 && strncmp(f + 1, "raw", 3) == 0 && p.kind == SG_NORM_FIXED) p.range = 1;
        else if (len == 3 && strncmp(f + 1, "bgr", 3) == 0) p.order = SG_CHANNELS_BGR;
        else if (len == 3 && strncmp(f + 1, "rgb", 3) == 0) p.order = SG_CHANNELS_RGB;
        else
            return sgi_error(SG_ERR_ARG, "input preprocessing '%s': unknown suffix ':%.*s' %s",
                             spec, (int)len, f + 1,
                             p.kind == SG_NORM_DATASET ? "(dataset takes :bgr only)"
                                                       : "(known: :raw, :bgr)");
    }
    enum sg_status st = sg_preproc_check(&p, 0);
    if (st != SG_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sg_last_error());
        return sgi_error(st, "input preprocessing '%s': %s", spec, why);
    }
    *out = p;
    return SG_OK;
}

const char *sg_preproc_format(const struct sg_preproc *p, char *buf, size_t cap) {
    char num[32];
    buf[0] = 0;
    size_t at = 0;
#define PUT(...) (at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, __VA_ARGS__))
    if (p->kind == SG_NORM_DATASET) {
        PUT("dataset");
        if (p->n >= 1) {
            put_num(num, sizeof num, p->mean[0]);
            PUT("=%s", num);
            put_num(num, sizeof num, p->std[0]);
            PUT(",%s", num);
        }
    } else if (p->n == 1 && p->mean[0] == 0 && p->std[0] == 1) {
        PUT("none");
    } else {
        for (int i = 0; i < 2 * p->n && i < 2 * SG_PREPROC_MAX_CH; i++) {
            put_num(num, sizeof num, i < p->n ? p->mean[i] : p->std[i - p->n]);
            PUT("%s%s", i ? "," : "", num);
        }
    }
    if (p->kind == SG_NORM_FIXED && p->range != 255) PUT(":raw");
    if (p->order == SG_CHANNELS_BGR) PUT(":bgr");
#undef PUT
    return buf;
}

enum sg_status sg_preproc_check(const struct sg_preproc *p, int channels) {
    if (p->kind < 0 || p->kind >= SG_NORM_COUNT || p->order < 0 || p->order >= SG_CHANNELS_COUNT)
        return sgi_error(SG_ERR_ARG, "unknown normalisation kind %d or channel order %d", p->kind,
                         p->order);
    if (p->n < 0 || p->n > SG_PREPROC_MAX_CH || (p->kind == SG_NORM_FIXED && p->n == 0) ||
        (p->kind == SG_NORM_DATASET && p->n > 1))
        return sgi_error(SG_ERR_ARG, "%d means and deviations for a %s normalisation", p->n,
                         p->kind == SG_NORM_FIXED ? "fixed" : "data set");
    if (p->kind == SG_NORM_FIXED && !(p->range == 1 || p->range == 255))
        return sgi_error(SG_ERR_ARG, "pixel range %g (1 or 255)", (double)p->range);
    for (int c = 0; c < p->n; c++)
        if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || !(p->std[c] > 0))
            return sgi_error(SG_ERR_ARG, "channel %d: mean %g and deviation %g (the deviation must "
                             "be positive, both finite)", c, (double)p->mean[c], (double)p->std[c]);
    if (channels > 0 && p->n > 1 && p->n != channels)
        return sgi_error(SG_ERR_ARG, "%d means and deviations for %d-channel images (give one "
                         "pair, or one mean and one deviation per channel)", p->n, channels);
    return SG_OK;
}

int sg_preproc_equal(const struct sg_preproc *a, const struct sg_preproc *b) {
    if (a->kind != b->kind || a->order != b->order || a->n != b->n) return 0;
    if (a->kind == SG_NORM_FIXED && a->range != b->range) return 0;
    for (int c = 0; c < a->n && c < SG_PREPROC_MAX_CH; c++)
        if (a->mean[c] != b->mean[c] || a->std[c] != b->std[c]) return 0;
    return 1;
}

void sg_preproc_table(const struct sg_preproc *p, const struct sg_dataset *d, int channels,
                      float *table) {
    for (int c = 0; c < channels; c++) {
        float *t = table + (size_t)c * 256;
        const int i = p->n > 1 ? c : 0;
        if (p->kind == SG_NORM_DATASET) {
            const float m = p->n ? p->mean[0] : d->mean, s = p->n ? p->std[0] : d->std;
            const float scale = 1.0f / (255.0f * s), shift = -m / s;
            for (int v = 0; v < 256; v++) t[v] = v * scale + shift;
        } else {
            const float range = p->range, m = p->mean[i], s = p->std[i];
            for (int v = 0; v < 256; v++) t[v] = ((float)v / range - m) / s;
        }
    }
}
