/* Thinning: the smaller dense model without the channels that are exactly 0 or
 * that nothing reads (pruned filters, with their biases and batch-norm entries, and
 * the consumers' matching input channels).
 *
 * The channels of all tensors fall into classes that must be removed together:
 * an elementwise op (relu, pools, batch norm, dropout) ties its input channel c to
 * its output channel c, an add ties channel c of every addend to its own, a
 * concatenation and a flatten tie with their offsets, a depthwise convolution ties
 * input and output channel c. A class is removed when each of its members is zero
 * or unused (sgi_follow_run in exact mode, on a copy: only rules that change no
 * output) and none is pinned: the network's input and output, a softmax (it mixes
 * channels) and a grouped convolution (its groups must stay equal) pin theirs.
 * A conv or fc layer starts a new class at its output. */
#include <stdarg.h>

#include "prune_internal.h"

enum pin { PIN_NONE = 0, PIN_INPUT, PIN_OUTPUT, PIN_SOFTMAX, PIN_GROUPED, PIN_LIVE };

static const char *pin_text(enum pin p) {
    switch (p) {
    case PIN_INPUT: return "the network input";
    case PIN_OUTPUT: return "the network output";
    case PIN_SOFTMAX: return "a softmax";
    case PIN_GROUPED: return "a grouped convolution (its groups stay equal)";
    default: return "a channel that is neither zero nor unused";
    }
}

struct uf {
    size_t *parent;
    uint8_t *pin;      /* per slot: enum pin */
    int32_t *slot_node;
};

static size_t find(size_t *p, size_t a) {
    while (p[a] != a) a = p[a] = p[p[a]];
    return a;
}

static void unite(size_t *p, size_t a, size_t b) {
    a = find(p, a), b = find(p, b);
    if (a == b) return;
    if (a < b) p[b] = a;
    else p[a] = b;
}

static int depthwise(const struct sg_model *m, const struct sg_node *nd) {
    return nd->op == SG_OP_CONV && nd->groups > 1 && nd->groups == nd->k &&
           nd->groups == m->nodes[nd->in[0]].c;
}

void sg_thin_result_free(struct sg_thin_result *r) {
    if (!r) return;
    free(r->layers);
    free(r->notes);
    memset(r, 0, sizeof *r);
}

static void add_note(struct sg_thin_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_note(struct sg_thin_result *r, const char *fmt, ...) {
    if (r->n_notes % 16 == 0) {
        char(*nn)[256] = realloc(r->notes, (size_t)(r->n_notes + 16) * sizeof *nn);
        if (!nn) return; /* a note lost to memory pressure loses no correctness */
        r->notes = nn;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

static int64_t mask_count(const struct sg_model *m, int32_t p) {
    int64_t k = 0;
    for (size_t i = 0; i < m->params[p].count; i++) k += m->mask[m->params[p].offset + i] != 0;
    return k;
}

/* Builds the thinned model from m (the analysed copy) and drop[][]. */
static enum sg_status build(const struct sg_model *m, uint8_t **drop, int64_t *newc,
                            struct sg_model **out) {
    struct sg_model *t = sg_model_new(m->arch, m->in_c, m->in_h, m->in_w);
    if (!t) return SG_ERR_NOMEM;
    enum sg_status st = SG_OK;
    /* param -> (node, slot) */
    int32_t *pnode = malloc(sizeof *pnode * (size_t)(m->n_params + 1));
    int8_t *pslot = malloc((size_t)m->n_params + 1);
    int32_t **keep = calloc((size_t)m->n_nodes, sizeof *keep);
    if (!pnode || !pslot || !keep) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t p = 0; p < m->n_params; p++) pnode[p] = -1, pslot[p] = -1;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        for (int s = 0; s < 4; s++)
            if (m->nodes[i].param[s] >= 0) {
                pnode[m->nodes[i].param[s]] = i;
                pslot[m->nodes[i].param[s]] = (int8_t)s;
            }
        keep[i] = malloc(sizeof **keep * (size_t)(newc[i] + 1));
        if (!keep[i]) {
            st = sgi_error(SG_ERR_NOMEM, "out of memory");
            goto done;
        }
        int64_t at = 0;
        for (int32_t c = 0; c < m->nodes[i].c; c++)
            if (!drop[i][c]) keep[i][at++] = c;
    }
    for (int32_t i = 0; i < m->n_nodes; i++) {
        struct sg_node nd = m->nodes[i];
        if (nd.op == SG_OP_CONV || nd.op == SG_OP_FC) nd.k = (int32_t)newc[i];
        if (depthwise(m, &m->nodes[i])) nd.groups = (int32_t)newc[i];
        if (sg_model_add(t, &nd) < 0) {
            st = SG_ERR_ARG;
            goto done;
        }
    }
    t->output = m->output;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        int64_t d[4] = {pp->dims[0], pp->dims[1], pp->dims[2], pp->dims[3]};
        const int32_t i = pnode[p];
        if (i >= 0) {
            const struct sg_node *nd = &m->nodes[i];
            const struct sg_node *x = &m->nodes[nd->in[0]];
            if ((nd->op == SG_OP_CONV || nd->op == SG_OP_FC) && pslot[p] == 0) {
                d[0] = newc[i];
                if (nd->op == SG_OP_FC) d[1] = newc[nd->in[0]] * x->h * x->w;
                else if (nd->groups == 1) d[1] = newc[nd->in[0]];
            } else if ((nd->op == SG_OP_CONV || nd->op == SG_OP_FC || nd->op == SG_OP_BN) &&
                       pp->ndim == 1) {
                d[0] = newc[i];
            }
        }
        if (sg_model_add_param(t, pp->name, pp->kind, pp->layer, i, pp->ndim, d) != p) {
            st = SG_ERR_ARG;
            goto done;
        }
    }
    if ((st = sg_model_finalize(t)) != SG_OK) goto done;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p], *tp = &t->params[p];
        const float *src = m->arena + pp->offset;
        const uint8_t *smk = m->mask + pp->offset;
        float *dst = t->arena + tp->offset;
        uint8_t *dmk = t->mask + tp->offset;
        const int32_t i = pnode[p];
        const struct sg_node *nd = i >= 0 ? &m->nodes[i] : NULL;
        if (nd && (nd->op == SG_OP_CONV || nd->op == SG_OP_FC) && pslot[p] == 0) {
            const int32_t xi = nd->in[0];
            const int64_t hw = nd->op == SG_OP_FC ? (int64_t)m->nodes[xi].h * m->nodes[xi].w : 1;
            const int64_t cg = pp->dims[1], rs = pp->ndim == 4 ? pp->dims[2] * pp->dims[3] : 1;
            const int64_t tcg = tp->dims[1];
            const int thin_in = nd->op == SG_OP_FC || nd->groups == 1;
            for (int64_t k = 0; k < newc[i]; k++) {
                const int64_t ok = keep[i][k];
                for (int64_t u = 0; u < tcg; u++) {
                    /* the old input unit: kept channel u / hw with its position u % hw */
                    const int64_t ou = thin_in ? keep[xi][u / hw] * hw + u % hw : u;
                    memcpy(dst + (k * tcg + u) * rs, src + (ok * cg + ou) * rs,
                           sizeof *dst * (size_t)rs);
                    memcpy(dmk + (k * tcg + u) * rs, smk + (ok * cg + ou) * rs, (size_t)rs);
                }
            }
        } else if (nd && tp->count != pp->count) { /* per-channel vectors */
            for (size_t c = 0; c < tp->count; c++) {
                dst[c] = src[keep[i][c]];
                dmk[c] = smk[keep[i][c]];
            }
        } else {
            memcpy(dst, src, sizeof *dst * pp->count);
            memcpy(dmk, smk, pp->count);
        }
    }
    t->n_meta = m->n_meta;
    memcpy(t->meta, m->meta, sizeof t->meta);
    t->preproc = m->preproc;
done:
    if (keep)
        for (int32_t i = 0; i < m->n_nodes; i++) free(keep[i]);
    free(keep), free(pnode), free(pslot);
    if (st != SG_OK) {
        sg_model_free(t);
        return st;
    }
    *out = t;
    return SG_OK;
}

enum sg_status sg_thin(const struct sg_model *m0, struct sg_model **out, struct sg_thin_result *r) {
    *out = NULL;
    memset(r, 0, sizeof *r);
    if (!sg_model_runnable(m0))
        return sgi_error(SG_ERR_UNSUPPORTED, "the model has no graph we can run (weights only): "
                                             "thinning needs to know which layer reads which");
    struct sg_model *m;
    enum sg_status st = sg_model_clone(m0, &m);
    if (st != SG_OK) return st;
    struct sgi_follow f = {0};
    size_t total = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) total += (size_t)m->nodes[i].c;
    size_t *base = malloc(sizeof *base * ((size_t)m->n_nodes + 1));
    size_t *parent = malloc(sizeof *parent * (total + 1));
    uint8_t *pin = calloc(total + 1, 1), *dropbuf = calloc(total + 1, 1);
    uint8_t **drop = calloc((size_t)m->n_nodes, sizeof *drop);
    int64_t *newc = calloc((size_t)m->n_nodes, sizeof *newc);
    int32_t *blocker = malloc(sizeof *blocker * (total + 1));
    uint8_t *why = calloc(total + 1, 1);
    if (!why || !base || !parent || !pin || !dropbuf || !drop || !newc || !blocker) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = sgi_follow_run(m, 1, &f)) != SG_OK) goto done;
    for (size_t i = 0, at = 0; i < (size_t)m->n_nodes; i++) {
        base[i] = at;
        drop[i] = dropbuf + at;
        at += (size_t)m->nodes[i].c;
    }
    for (size_t s = 0; s < total; s++) parent[s] = s;
    for (int32_t c = 0; c < m->nodes[0].c; c++) pin[base[0] + c] = PIN_INPUT;
    for (int32_t c = 0; c < m->nodes[m->output].c; c++) pin[base[m->output] + c] = PIN_OUTPUT;
    for (int32_t i = 1; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        const int32_t xi = nd->in[0];
        const struct sg_node *x = &m->nodes[xi];
        switch (nd->op) {
        case SG_OP_CONV:
            if (depthwise(m, nd)) {
                for (int32_t c = 0; c < nd->c; c++) unite(parent, base[xi] + c, base[i] + c);
            } else if (nd->groups > 1) {
                for (int32_t c = 0; c < x->c; c++) pin[base[xi] + c] = PIN_GROUPED;
                for (int32_t c = 0; c < nd->c; c++) pin[base[i] + c] = PIN_GROUPED;
            }
            break;
        case SG_OP_FC:
            break;
        case SG_OP_RELU:
        case SG_OP_MAXPOOL:
        case SG_OP_AVGPOOL:
        case SG_OP_GAP:
        case SG_OP_DROPOUT:
        case SG_OP_BN:
            for (int32_t c = 0; c < nd->c; c++) unite(parent, base[xi] + c, base[i] + c);
            break;
        case SG_OP_ADD:
            for (int t = 0; t < nd->n_in; t++)
                for (int32_t c = 0; c < nd->c; c++) unite(parent, base[nd->in[t]] + c, base[i] + c);
            break;
        case SG_OP_CONCAT: {
            int32_t off = 0;
            for (int t = 0; t < nd->n_in; t++) {
                const int32_t ct = m->nodes[nd->in[t]].c;
                for (int32_t c = 0; c < ct; c++) unite(parent, base[nd->in[t]] + c, base[i] + off + c);
                off += ct;
            }
            break;
        }
        case SG_OP_FLATTEN: {
            const int64_t hw = (int64_t)x->h * x->w;
            for (int64_t j = 0; j < nd->c; j++) unite(parent, base[xi] + (size_t)(j / hw), base[i] + (size_t)j);
            break;
        }
        default: /* softmax and anything else: channels stay */
            for (int t = 0; t < nd->n_in; t++)
                for (int32_t c = 0; c < m->nodes[nd->in[t]].c; c++)
                    pin[base[nd->in[t]] + c] = PIN_SOFTMAX;
            for (int32_t c = 0; c < nd->c; c++) pin[base[i] + c] = PIN_SOFTMAX;
            break;
        }
    }
    /* a class goes when every member is zero or unused and none is pinned; blocker
     * is the first member (in node order) that keeps it */
    for (size_t s = 0; s < total; s++) blocker[s] = -1;
    for (int32_t i = 0; i < m->n_nodes; i++)
        for (int32_t c = 0; c < m->nodes[i].c; c++) {
            const size_t s = base[i] + c, root = find(parent, s);
            const int cand = (f.dead[i][c] || f.unused[i][c]) && !pin[s];
            if (!cand && blocker[root] < 0) {
                blocker[root] = i;
                why[root] = pin[s] ? pin[s] : PIN_LIVE;
            }
        }
    for (int32_t i = 0; i < m->n_nodes; i++) {
        int64_t kept = 0, stay = 0;
        for (int32_t c = 0; c < m->nodes[i].c; c++) {
            const size_t root = find(parent, base[i] + c);
            drop[i][c] = blocker[root] < 0;
            kept += !drop[i][c];
            stay += !drop[i][c] && (f.dead[i][c] || f.unused[i][c]);
        }
        newc[i] = kept;
        const struct sg_node *nd = &m->nodes[i];
        if (kept == 0) {
            st = sgi_error(SG_ERR_UNSUPPORTED,
                           "every channel of '%s' is zero or unused: the network's output no "
                           "longer depends on its input; nothing sensible to write", nd->name);
            goto done;
        }
        if (stay && (nd->op == SG_OP_CONV || nd->op == SG_OP_FC)) {
            /* name what keeps them: the first blocker among this layer's classes */
            int32_t b = -1;
            uint8_t reason = PIN_LIVE;
            for (int32_t c = 0; c < nd->c && b < 0; c++)
                if (!drop[i][c] && (f.dead[i][c] || f.unused[i][c])) {
                    const size_t root = find(parent, base[i] + c);
                    b = blocker[root];
                    reason = why[root];
                }
            if (b == i)
                add_note(r, "%s: %lld zero or unused channel%s kept: it is %s", nd->name,
                         (long long)stay, stay == 1 ? "" : "s", pin_text((enum pin)reason));
            else
                add_note(r, "%s: %lld zero or unused channel%s kept: tied to '%s' (%s)", nd->name,
                         (long long)stay, stay == 1 ? "" : "s", b >= 0 ? m->nodes[b].name : "?",
                         pin_text((enum pin)reason));
        }
    }
    /* the per-layer table */
    for (int32_t i = 0; i < m->n_nodes; i++)
        if ((m->nodes[i].op == SG_OP_CONV || m->nodes[i].op == SG_OP_FC) && m->nodes[i].param[0] >= 0)
            r->n_layers++;
    r->layers = calloc((size_t)r->n_layers + 1, sizeof *r->layers);
    if (!r->layers) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = build(m, drop, newc, out)) != SG_OK) goto done;
    const struct sg_model *t = *out;
    for (int32_t i = 0, l = 0; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        if ((nd->op != SG_OP_CONV && nd->op != SG_OP_FC) || nd->param[0] < 0) continue;
        struct sg_thin_layer *L = &r->layers[l++];
        const int32_t p = nd->param[0];
        snprintf(L->name, sizeof L->name, "%s", nd->name);
        L->out[0] = nd->k, L->out[1] = newc[i];
        L->in[0] = m->params[p].dims[1], L->in[1] = t->params[p].dims[1];
        L->weights[0] = (int64_t)m0->params[p].count, L->weights[1] = (int64_t)t->params[p].count;
        L->kept[0] = mask_count(m0, p), L->kept[1] = mask_count(t, p);
        r->weights[0] += L->weights[0], r->weights[1] += L->weights[1];
        r->kept[0] += L->kept[0], r->kept[1] += L->kept[1];
        r->channels[0] += L->out[0], r->channels[1] += L->out[1];
    }
    for (int32_t p = 0; p < m->n_params; p++) {
        r->params[0] += (int64_t)m0->params[p].count;
        r->params[1] += (int64_t)t->params[p].count;
    }
    r->changed = r->params[0] != r->params[1];
    if (r->changed) {
        sg_meta_set(*out, "thinned", "%lld of %lld parameters", (long long)r->params[1],
                    (long long)r->params[0]);
    } else { /* nothing to thin: the copy is the model itself, masks included */
        sg_model_free(*out);
        *out = NULL;
        st = sg_model_clone(m0, out);
    }
done:
    sgi_follow_free(&f);
    free(base), free(parent), free(pin), free(dropbuf), free(drop), free(newc), free(blocker), free(why);
    sg_model_free(m);
    if (st != SG_OK) {
        sg_model_free(*out);
        *out = NULL;
        sg_thin_result_free(r);
    }
    return st;
}
