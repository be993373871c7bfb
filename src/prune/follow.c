/* Following pruned structure through the graph: a filter with no kept weight is
 * gone with its bias and batch-norm entries, a channel that is a constant zero
 * takes the weights that read it, and a channel that nothing reads takes the
 * filter that computes it (docs/pruning.md, "What filter and channel pruning
 * remove").
 *
 * Two walks per round over the nodes (topological order), repeated until no mask
 * changes (masks only go from 1 to 0, so this ends):
 *   forward  dead[i][c]: node i's output channel c is exactly 0 for every input,
 *            in training and in evaluation. A conv/fc filter whose every weight is
 *            masked has its bias masked and is dead; a batch norm whose input
 *            channel is dead has gamma and beta masked; ops that map 0 to 0 pass
 *            deadness on; an add is dead where all its addends are. A conv/fc
 *            weight that reads a dead channel multiplies 0: it is masked.
 *   backward unused[i][c]: no kept weight and no output depends on node i's
 *            channel c. A conv/fc filter whose output is unused is masked with its
 *            bias; a batch-norm channel that is unused has gamma and beta masked.
 * Every mask cleared by the walks except the bias and batch-norm shift of a
 * filter left without weights leaves the network's output unchanged; that one
 * rule is part of pruning the filter. */
#include "prune_internal.h"

/* Masks element i of parameter p; 1 when it was kept. */
static int clear(struct sgi_follow *w, int32_t p, size_t i) {
    if (p < 0) return 0;
    const size_t o = w->m->params[p].offset + i;
    w->m->arena[o] = 0.0f;
    if (!w->m->mask[o]) return 0;
    w->m->mask[o] = 0;
    w->changed = 1;
    return 1;
}

static int kept(const struct sg_model *m, int32_t p, size_t i) {
    return p >= 0 && m->mask[m->params[p].offset + i];
}

/* The layout of a conv/fc node's weight: K filters of cg input units times rs;
 * unit u of filter k reads input channel (grp(k) * cg + u) / hw. */
struct layer {
    int32_t w, b;
    int64_t k, cg, rs, kpg, hw;
};

static int layer_of(const struct sg_model *m, const struct sg_node *nd, struct layer *L) {
    if ((nd->op != SG_OP_CONV && nd->op != SG_OP_FC) || nd->param[0] < 0) return 0;
    const struct sg_node *x = &m->nodes[nd->in[0]];
    const struct sg_param *p = &m->params[nd->param[0]];
    L->w = nd->param[0];
    L->b = nd->param[1];
    L->k = p->dims[0];
    L->cg = p->dims[1];
    L->rs = p->ndim == 4 ? p->dims[2] * p->dims[3] : 1;
    const int64_t groups = nd->op == SG_OP_CONV && nd->groups > 0 ? nd->groups : 1;
    L->kpg = L->k / groups;
    L->hw = nd->op == SG_OP_FC ? (int64_t)x->h * x->w : 1;
    return L->k == nd->k && L->kpg > 0 && L->k * L->cg * L->rs == (int64_t)p->count;
}

static int64_t in_channel(const struct layer *L, int64_t k, int64_t u) {
    return ((k / L->kpg) * L->cg + u) / L->hw;
}

static int filter_empty(const struct sg_model *m, const struct layer *L, int64_t k) {
    const uint8_t *mk = m->mask + m->params[L->w].offset + (size_t)(k * L->cg * L->rs);
    for (int64_t i = 0; i < L->cg * L->rs; i++)
        if (mk[i]) return 0;
    return 1;
}

static void forward(struct sgi_follow *w) {
    struct sg_model *m = w->m;
    for (int32_t i = 1; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        uint8_t *d = w->dead[i];
        const uint8_t *x = w->dead[nd->in[0]];
        const struct sg_node *xn = &m->nodes[nd->in[0]];
        memset(d, 0, (size_t)nd->c);
        struct layer L;
        switch (nd->op) {
        case SG_OP_CONV:
        case SG_OP_FC:
            if (!layer_of(m, nd, &L)) break;
            for (int64_t k = 0; k < L.k; k++) {
                for (int64_t u = 0; u < L.cg; u++)
                    if (x[in_channel(&L, k, u)])
                        for (int64_t r = 0; r < L.rs; r++)
                            w->st.consumer += clear(w, L.w, (size_t)((k * L.cg + u) * L.rs + r));
                if (!filter_empty(m, &L, k)) continue;
                if (!w->exact) w->st.params += clear(w, L.b, (size_t)k);
                d[k] = L.b < 0 || sg_param_data(m, L.b)[k] == 0.0f;
            }
            break;
        case SG_OP_BN:
            for (int32_t c = 0; c < nd->c; c++) {
                if (x[c] && !w->exact) {
                    w->st.params += clear(w, nd->param[0], (size_t)c);
                    w->st.params += clear(w, nd->param[1], (size_t)c);
                }
                d[c] = sg_param_data(m, nd->param[0])[c] == 0.0f &&
                       sg_param_data(m, nd->param[1])[c] == 0.0f;
            }
            break;
        case SG_OP_RELU:
        case SG_OP_MAXPOOL:
        case SG_OP_AVGPOOL:
        case SG_OP_GAP:
        case SG_OP_DROPOUT:
            memcpy(d, x, (size_t)nd->c);
            break;
        case SG_OP_FLATTEN: {
            const int64_t hw = (int64_t)xn->h * xn->w;
            for (int64_t j = 0; j < nd->c; j++) d[j] = x[j / hw];
            break;
        }
        case SG_OP_ADD:
            memcpy(d, x, (size_t)nd->c);
            for (int t = 1; t < nd->n_in; t++)
                for (int32_t c = 0; c < nd->c; c++) d[c] &= w->dead[nd->in[t]][c];
            break;
        case SG_OP_CONCAT: {
            int32_t off = 0;
            for (int t = 0; t < nd->n_in; t++) {
                const int32_t ct = m->nodes[nd->in[t]].c;
                memcpy(d + off, w->dead[nd->in[t]], (size_t)ct);
                off += ct;
            }
            break;
        }
        default: /* softmax and anything new: nothing is known to be zero */
            break;
        }
    }
}

static void backward(struct sgi_follow *w) {
    struct sg_model *m = w->m;
    for (int32_t i = 0; i < m->n_nodes; i++) memset(w->unused[i], 1, (size_t)m->nodes[i].c);
    memset(w->unused[m->output], 0, (size_t)m->nodes[m->output].c);
    for (int32_t i = m->n_nodes - 1; i >= 1; i--) {
        const struct sg_node *nd = &m->nodes[i];
        const uint8_t *u = w->unused[i];
        uint8_t *x = w->unused[nd->in[0]];
        const struct sg_node *xn = &m->nodes[nd->in[0]];
        struct layer L;
        switch (nd->op) {
        case SG_OP_CONV:
        case SG_OP_FC:
            if (!layer_of(m, nd, &L)) { /* unknown layout: every input counts as read */
                memset(x, 0, (size_t)xn->c);
                break;
            }
            for (int64_t k = 0; k < L.k; k++) {
                const size_t base = (size_t)(k * L.cg * L.rs);
                if (u[k]) {
                    for (int64_t j = 0; j < L.cg * L.rs; j++)
                        w->st.producer += clear(w, L.w, base + (size_t)j);
                    w->st.params += clear(w, L.b, (size_t)k);
                    continue;
                }
                const uint8_t *mk = m->mask + m->params[L.w].offset + base;
                for (int64_t c = 0; c < L.cg; c++)
                    for (int64_t r = 0; r < L.rs; r++)
                        if (mk[c * L.rs + r]) {
                            x[in_channel(&L, k, c)] = 0;
                            break;
                        }
            }
            break;
        case SG_OP_BN:
            for (int32_t c = 0; c < nd->c; c++) {
                if (u[c]) {
                    w->st.params += clear(w, nd->param[0], (size_t)c);
                    w->st.params += clear(w, nd->param[1], (size_t)c);
                }
                /* gamma 0: the output is beta whatever comes in */
                if (!u[c] && kept(m, nd->param[0], (size_t)c)) x[c] = 0;
            }
            break;
        case SG_OP_RELU:
        case SG_OP_MAXPOOL:
        case SG_OP_AVGPOOL:
        case SG_OP_GAP:
        case SG_OP_DROPOUT:
            for (int32_t c = 0; c < nd->c; c++) x[c] &= u[c];
            break;
        case SG_OP_FLATTEN: {
            const int64_t hw = (int64_t)xn->h * xn->w;
            for (int64_t j = 0; j < nd->c; j++) x[j / hw] &= u[j];
            break;
        }
        case SG_OP_ADD:
            for (int t = 0; t < nd->n_in; t++)
                for (int32_t c = 0; c < nd->c; c++) w->unused[nd->in[t]][c] &= u[c];
            break;
        case SG_OP_CONCAT: {
            int32_t off = 0;
            for (int t = 0; t < nd->n_in; t++) {
                const int32_t ct = m->nodes[nd->in[t]].c;
                for (int32_t c = 0; c < ct; c++) w->unused[nd->in[t]][c] &= u[off + c];
                off += ct;
            }
            break;
        }
        default: { /* softmax mixes channels: any output read reads every input */
            int any = 0;
            for (int32_t c = 0; c < nd->c; c++) any |= !u[c];
            for (int t = 0; t < nd->n_in; t++)
                if (any) memset(w->unused[nd->in[t]], 0, (size_t)m->nodes[nd->in[t]].c);
            break;
        }
        }
    }
}

void sgi_follow_free(struct sgi_follow *w) {
    free(w->buf);
    free(w->dead);
    w->buf = NULL;
    w->dead = w->unused = NULL;
}

enum sg_status sgi_follow_run(struct sg_model *m, int exact, struct sgi_follow *w) {
    memset(w, 0, sizeof *w);
    w->m = m;
    w->exact = exact;
    size_t total = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) total += (size_t)m->nodes[i].c;
    w->dead = calloc((size_t)m->n_nodes * 2 + 1, sizeof *w->dead);
    w->buf = sgi_alloc(2 * total + 1, 1);
    if (!w->dead || !w->buf) {
        sgi_follow_free(w);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    w->unused = w->dead + m->n_nodes;
    size_t at = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        w->dead[i] = w->buf + at;
        w->unused[i] = w->buf + total + at;
        at += (size_t)m->nodes[i].c;
    }
    memset(w->dead[0], 0, (size_t)m->nodes[0].c); /* the input is never known to be 0 */
    do {
        w->changed = 0;
        forward(w);
        backward(w);
    } while (w->changed);
    forward(w); /* dead channels of the final masks */
    for (int32_t i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].op == SG_OP_CONV || m->nodes[i].op == SG_OP_FC)
            for (int32_t c = 0; c < m->nodes[i].c; c++) w->st.filters += w->dead[i][c];
    return SG_OK;
}

enum sg_status sg_prune_follow(struct sg_model *m, struct sg_prune_follow *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!sg_model_runnable(m)) return SG_OK; /* weights only: no graph to follow */
    struct sgi_follow w;
    enum sg_status st = sgi_follow_run(m, 0, &w);
    if (st != SG_OK) return st;
    if (out) *out = w.st;
    sgi_follow_free(&w);
    return SG_OK;
}
