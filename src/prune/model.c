/* Pruning whole models: which layers are in scope, per-layer, global and profile
 * selection, and the metadata a pruned model carries. */
#include <math.h>

#include "prune_internal.h"

void sg_prune_cfg_default(struct sg_prune_cfg *c) {
    memset(c, 0, sizeof *c);
    sg_prune_spec_default(&c->spec);
    c->fc = SG_FC_FINE;
    c->sel = SG_SEL_LAYER;
}

static int is_weight(const struct sg_param *p) {
    return p->kind == SG_PARAM_WEIGHT && p->layer != SG_LAYER_NONE;
}

/* Weight p is the output layer's: the conv or fc node that the network's output reads
 * through single-input ops (softmax, flatten, pooling, ...); its filters are the classes. */
static int is_output_layer(const struct sg_model *m, int32_t p) {
    int32_t i = m->output;
    while (i > 0 && m->nodes[i].op != SG_OP_CONV && m->nodes[i].op != SG_OP_FC &&
           m->nodes[i].n_in == 1)
        i = m->nodes[i].in[0];
    return i > 0 && (m->nodes[i].op == SG_OP_CONV || m->nodes[i].op == SG_OP_FC) &&
           m->nodes[i].param[0] == p;
}

const struct sg_prune_spec *sg_prune_scope(const struct sg_model *m, const struct sg_prune_cfg *c,
                                           int32_t p, struct sg_prune_spec *fine_buf) {
    const struct sg_param *pp = &m->params[p];
    if (!is_weight(pp)) return NULL;
    /* filter pruning removes output units: never the network's outputs (the classes);
     * the output layer stays dense but for the weights that read pruned units (follow.c) */
    const int prunes_classes = c->spec.gran == SG_GRAN_FILTER && is_output_layer(m, p);
    if (pp->layer == SG_LAYER_FC) {
        if (c->fc == SG_FC_DENSE) return NULL;
        if (c->fc == SG_FC_SAME) return prunes_classes ? NULL : &c->spec;
        *fine_buf = c->spec;
        fine_buf->gran = SG_GRAN_FINE;
        return fine_buf;
    }
    if (!c->include_first) {
        for (int32_t i = 0; i < m->n_params; i++)
            if (is_weight(&m->params[i]) && m->params[i].layer == SG_LAYER_CONV) {
                if (i == p) return NULL; /* the first conv layer stays dense */
                break;
            }
    }
    return prunes_classes ? NULL : &c->spec;
}

void sg_prune_measure(const struct sg_model *m, const struct sg_prune_cfg *c,
                      struct sg_prune_result *r) {
    memset(r, 0, sizeof *r);
    struct sg_prune_spec buf;
    for (int32_t p = 0; p < m->n_params; p++) {
        if (!sg_prune_scope(m, c, p, &buf)) continue;
        const struct sg_param *pp = &m->params[p];
        const uint8_t *mk = m->mask + pp->offset;
        size_t kept = 0;
        for (size_t i = 0; i < pp->count; i++) kept += mk[i] != 0;
        r->weights += pp->count;
        r->kept += kept;
        r->layers++;
    }
    r->density = r->weights ? (double)r->kept / (double)r->weights : 1.0;
}

static double profile_density(const struct sg_profile *pf, const char *layer, int *found) {
    for (int i = 0; i < pf->n; i++)
        if (strcmp(pf->names[i], layer) == 0) {
            *found = 1;
            return pf->density[i];
        }
    *found = 0;
    return 1.0;
}

/* One threshold across layers. Scores are made comparable by dividing by the
 * group size (L1 -> mean |w|, L2 -> RMS); the target counts weights, so each group
 * weighs its size. N:M layers keep their fixed ratio and are left out. */
static enum sg_status prune_global(struct sg_model *m, const struct sg_prune_cfg *c,
                                   double density) {
    struct sg_prune_spec buf;
    size_t total_groups = 0;
    uint64_t total_weights = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_prune_spec *s = sg_prune_scope(m, c, p, &buf);
        if (!s || s->gran == SG_GRAN_NM) continue;
        struct sg_wview v = sg_model_wview(m, p);
        total_groups += (size_t)sg_prune_groups(s, &v);
        total_weights += (uint64_t)sg_wview_count(&v);
    }
    if (total_groups == 0) return SG_OK;
    float *sc = sgi_alloc(total_groups, sizeof *sc);
    uint32_t *wt = sgi_alloc(total_groups, sizeof *wt);
    uint8_t *kp = sgi_alloc(total_groups, 1);
    enum sg_status st = SG_OK;
    if (!sc || !wt || !kp) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    size_t at = 0;
    for (int32_t p = 0; p < m->n_params && st == SG_OK; p++) {
        const struct sg_prune_spec *s = sg_prune_scope(m, c, p, &buf);
        if (!s || s->gran == SG_GRAN_NM) continue;
        struct sg_wview v = sg_model_wview(m, p);
        const int64_t n = sg_prune_groups(s, &v);
        st = sg_prune_scores(s, &v, sc + at);
        const struct sg_tile t = sg_prune_tile(s, &v);
        for (int64_t g = 0; g < n; g++) {
            /* clipped edge tiles are rare; the nominal size is close enough to weigh */
            const int64_t size = t.k * t.c * t.r * t.s;
            wt[at + g] = (uint32_t)size;
            if (sc[at + g] >= 0) {
                if (s->crit == SG_CRIT_L1) sc[at + g] /= (float)size;
                else if (s->crit == SG_CRIT_L2) sc[at + g] /= sqrtf((float)size);
            }
        }
        at += (size_t)n;
    }
    if (st != SG_OK) goto done;
    const uint64_t target = (uint64_t)floor(density * (double)total_weights + 0.5);
    if (target == 0) {
        memset(kp, 0, total_groups);
    } else {
        uint32_t t;
        uint64_t above;
        sgi_select_key(sc, wt, total_groups, target, &t, &above);
        /* groups at the threshold: keep them in order while the target is not met */
        for (size_t i = 0; i < total_groups; i++) {
            const uint32_t k = sgi_fkey(sc[i]);
            kp[i] = k > t;
            if (k == t && above < target) {
                kp[i] = 1;
                above += wt[i];
            }
        }
    }
    at = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_prune_spec *s = sg_prune_scope(m, c, p, &buf);
        if (!s || s->gran == SG_GRAN_NM) continue;
        struct sg_wview v = sg_model_wview(m, p);
        uint8_t *old = sgi_mask_save(&v);
        if (!old) {
            st = SG_ERR_NOMEM;
            goto done;
        }
        sgi_apply_groups(s, &v, kp + at);
        sgi_mask_keep_zeros(&v, old); /* nothing pruned before comes back */
        free(old);
        at += (size_t)sg_prune_groups(s, &v);
    }
    /* N:M layers in a global run still get their N:M structure */
    for (int32_t p = 0; p < m->n_params && st == SG_OK; p++) {
        const struct sg_prune_spec *s = sg_prune_scope(m, c, p, &buf);
        if (s && s->gran == SG_GRAN_NM) {
            struct sg_wview v = sg_model_wview(m, p);
            st = sg_prune_layer(s, &v, 0);
        }
    }
done:
    free(sc), free(wt), free(kp);
    return st;
}

enum sg_status sg_prune_model(struct sg_model *m, const struct sg_prune_cfg *c, double density,
                              struct sg_prune_result *r) {
    if (c->sel != SG_SEL_PROFILE && !(density >= 0 && density <= 1))
        return sgi_error(SG_ERR_ARG, "density %g is outside [0, 1]", density);
    if (c->sel == SG_SEL_PROFILE && !c->profile)
        return sgi_error(SG_ERR_ARG, "profile selection without a profile");
    struct sg_prune_spec buf;
    enum sg_status st = SG_OK;
    if (c->sel == SG_SEL_GLOBAL) {
        st = prune_global(m, c, density);
    } else {
        for (int32_t p = 0; p < m->n_params && st == SG_OK; p++) {
            const struct sg_prune_spec *s = sg_prune_scope(m, c, p, &buf);
            if (!s) continue;
            struct sg_wview v = sg_model_wview(m, p);
            double d = density;
            if (c->sel == SG_SEL_PROFILE) {
                int found;
                const char *layer = m->params[p].name;
                d = profile_density(c->profile, layer, &found);
                if (!found) {
                    /* profiles name layers ("conv2") or their weights ("conv2.weight") */
                    char base[SG_NAME_MAX];
                    snprintf(base, sizeof base, "%s", layer);
                    char *dot = strrchr(base, '.');
                    if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
                    d = profile_density(c->profile, base, &found);
                }
                if (!found)
                    return sgi_error(SG_ERR_ARG, "the profile has no density for layer '%s'",
                                     layer);
            }
            st = sg_prune_layer_density(s, &v, d);
        }
    }
    /* a pruned filter takes its bias, BN entries and its consumers' weights along */
    if (st == SG_OK) st = sg_prune_follow(m, NULL);
    if (st != SG_OK) return st;
    struct sg_prune_result res;
    sg_prune_measure(m, c, &res);
    if (r) *r = res;
    char spec[64];
    sg_prune_spec_format(&c->spec, spec, sizeof spec);
    sg_meta_set(m, "granularity", "%s", spec);
    sg_meta_set(m, "criterion", "%s", sg_criterion_name(c->spec.crit));
    sg_meta_set(m, "selection", "%s", sg_selection_name(c->sel));
    sg_meta_set(m, "scope", "conv%s, fc %s", c->include_first ? "" : " except the first",
                sg_fc_mode_name(c->fc));
    sg_meta_set(m, "density", "%.6f", res.density);
    return SG_OK;
}

/* ---- profiles: CSV with a header naming "layer" and "density" columns ---- */
void sg_profile_free(struct sg_profile *p) {
    if (!p) return;
    free(p->names);
    free(p->density);
    free(p);
}

enum sg_status sg_profile_load(const char *path, struct sg_profile **out) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    /* a line per layer: 1 MB is thousands of layers (the table below has a name slot
     * per line) */
    enum sg_status st = sg_file_read(path, 1 << 20, 0, &buf, &len);
    if (st != SG_OK) return st;
    struct sg_profile *p = calloc(1, sizeof *p);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    if (p) {
        p->names = calloc(lines, sizeof *p->names);
        p->density = calloc(lines, sizeof *p->density);
    }
    if (!p || !p->names || !p->density) {
        free(buf);
        sg_profile_free(p);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    int col_layer = -1, col_density = -1, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[ll - 1] = 0;
        if (!*line || *line == '#') continue;
        char *fields[64];
        int nf = 0;
        for (char *f = line; nf < 64;) {
            fields[nf++] = f;
            char *comma = strchr(f, ',');
            if (!comma) break;
            *comma = 0;
            f = comma + 1;
        }
        if (col_layer < 0) {
            for (int i = 0; i < nf; i++) {
                if (strcmp(fields[i], "layer") == 0) col_layer = i;
                if (strcmp(fields[i], "density") == 0) col_density = i;
            }
            if (col_layer < 0 || col_density < 0) {
                st = sgi_error(SG_ERR_FORMAT, "%s: line %d: expected a header with 'layer' and "
                                              "'density' columns",
                               path, lineno);
                goto fail;
            }
            continue;
        }
        if (nf <= col_layer || nf <= col_density) {
            st = sgi_error(SG_ERR_FORMAT, "%s: line %d: too few fields", path, lineno);
            goto fail;
        }
        char *end;
        double d = strtod(fields[col_density], &end);
        if (end == fields[col_density] || *end || !(d >= 0 && d <= 1)) {
            st = sgi_error(SG_ERR_FORMAT, "%s: line %d: density '%s' is not a number in [0, 1]",
                           path, lineno, fields[col_density]);
            goto fail;
        }
        if (strlen(fields[col_layer]) >= SG_NAME_MAX) {
            st = sgi_error(SG_ERR_FORMAT, "%s: line %d: layer name too long", path, lineno);
            goto fail;
        }
        strcpy(p->names[p->n], fields[col_layer]);
        p->density[p->n++] = d;
    }
    if (col_layer < 0) {
        st = sgi_error(SG_ERR_FORMAT, "%s: empty profile", path);
        goto fail;
    }
    free(buf);
    *out = p;
    return SG_OK;
fail:
    free(buf);
    sg_profile_free(p);
    return st;
}
