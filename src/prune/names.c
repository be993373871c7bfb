/* Names of the pruning axes and the text form of a pruning spec. */
#include <ctype.h>

#include "core/sgi.h"
#include "sparsegrain/prune.h"

static const char *const GRAN[SG_GRAN_COUNT] = {"fine", "vector", "kernel", "filter",
                                                 "channel", "block", "nm"};
static const char *const CRIT[SG_CRIT_COUNT] = {"l1", "l2", "max", "mean", "random"};
static const char *const SEL[SG_SEL_COUNT] = {"layer", "global", "profile"};
static const char *const SCHED[SG_SCHED_COUNT] = {"oneshot", "iterative", "agp"};
static const char *const FC[SG_FC_COUNT] = {"dense", "fine", "same"};

static int find(const char *const *t, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i], s) == 0) return i;
    return -1;
}

const char *sg_granularity_name(enum sg_granularity g) {
    return (unsigned)g < SG_GRAN_COUNT ? GRAN[g] : "?";
}
int sg_granularity_from_name(const char *s) { return find(GRAN, SG_GRAN_COUNT, s); }
const char *sg_criterion_name(enum sg_criterion c) {
    return (unsigned)c < SG_CRIT_COUNT ? CRIT[c] : "?";
}
int sg_criterion_from_name(const char *s) { return find(CRIT, SG_CRIT_COUNT, s); }
const char *sg_selection_name(enum sg_selection s) {
    return (unsigned)s < SG_SEL_COUNT ? SEL[s] : "?";
}
int sg_selection_from_name(const char *s) { return find(SEL, SG_SEL_COUNT, s); }
const char *sg_schedule_name(enum sg_schedule s) {
    return (unsigned)s < SG_SCHED_COUNT ? SCHED[s] : "?";
}
int sg_schedule_from_name(const char *s) { return find(SCHED, SG_SCHED_COUNT, s); }
const char *sg_fc_mode_name(enum sg_fc_mode f) { return (unsigned)f < SG_FC_COUNT ? FC[f] : "?"; }
int sg_fc_mode_from_name(const char *s) { return find(FC, SG_FC_COUNT, s); }

void sg_prune_spec_default(struct sg_prune_spec *s) {
    memset(s, 0, sizeof *s);
    s->gran = SG_GRAN_FINE;
    s->crit = SG_CRIT_L1;
    s->nm_n = 2;
    s->nm_m = 4;
    s->block = (struct sg_tile){1, 1, 1, 1};
    s->seed = 1;
}

static int parse_int(const char **p, int64_t *out) {
    if (!isdigit((unsigned char)**p)) return 0;
    int64_t v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v > (1 << 30)) return 0;
        (*p)++;
    }
    *out = v;
    return 1;
}

enum sg_status sg_prune_spec_parse(const char *text, struct sg_prune_spec *s) {
    const char *colon = strchr(text, ':');
    char head[32];
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= sizeof head) n = sizeof head - 1;
    memcpy(head, text, n);
    head[n] = 0;
    const char *rest = colon ? colon + 1 : NULL;
    int64_t a, b;
    /* "2:4" is shorthand for nm:2:4 */
    const char *p = text;
    if (parse_int(&p, &a) && *p == ':' && (p++, parse_int(&p, &b)) && !*p) {
        head[0] = 0;
        strcpy(head, "nm");
        rest = text;
    }
    int g = sg_granularity_from_name(head);
    if (g < 0)
        return sgi_error(SG_ERR_ARG,
                         "unknown granularity '%s' (fine, vector, kernel, filter, channel, "
                         "block:KxCxRxS, nm:N:M)",
                         text);
    s->gran = (enum sg_granularity)g;
    if (g == SG_GRAN_VECTOR) {
        s->vector_cols = 0;
        if (rest && strcmp(rest, "col") == 0) s->vector_cols = 1;
        else if (rest && strcmp(rest, "row") != 0)
            return sgi_error(SG_ERR_ARG, "vector axis '%s': use vector:row or vector:col", rest);
    } else if (g == SG_GRAN_BLOCK) {
        int64_t d[4];
        p = rest ? rest : "";
        for (int i = 0; i < 4; i++) {
            if (!parse_int(&p, &d[i]) || d[i] < 1 || (i < 3 && *p++ != 'x'))
                return sgi_error(SG_ERR_ARG, "block shape '%s': expected block:KxCxRxS, e.g. block:1x4x1x1",
                                 rest ? rest : "");
        }
        if (*p) return sgi_error(SG_ERR_ARG, "block shape '%s': trailing text", rest);
        s->block = (struct sg_tile){d[0], d[1], d[2], d[3]};
    } else if (g == SG_GRAN_NM) {
        p = rest ? rest : "";
        if (!parse_int(&p, &a) || *p++ != ':' || !parse_int(&p, &b) || *p || a < 1 || b < 1 ||
            a > b || b > 256)
            return sgi_error(SG_ERR_ARG, "N:M '%s': expected nm:N:M with 1 <= N <= M <= 256, e.g. 2:4",
                             rest ? rest : "");
        s->nm_n = (int)a;
        s->nm_m = (int)b;
    } else if (rest) {
        return sgi_error(SG_ERR_ARG, "granularity '%s' takes no parameter", text);
    }
    return SG_OK;
}

void sg_prune_spec_format(const struct sg_prune_spec *s, char *buf, size_t cap) {
    switch (s->gran) {
    case SG_GRAN_VECTOR: snprintf(buf, cap, s->vector_cols ? "vector:col" : "vector"); break;
    case SG_GRAN_BLOCK:
        snprintf(buf, cap, "block:%lldx%lldx%lldx%lld", (long long)s->block.k, (long long)s->block.c,
                 (long long)s->block.r, (long long)s->block.s);
        break;
    case SG_GRAN_NM: snprintf(buf, cap, "nm:%d:%d", s->nm_n, s->nm_m); break;
    default: snprintf(buf, cap, "%s", sg_granularity_name(s->gran)); break;
    }
}
