/* The op table: for every op its name, shape inference, forward and backward, the
 * one place an op is defined. The graph walks (src/nn/exec.c) and shape inference
 * (src/nn/model.c) go through it; conv and fc run through the executor's layer hook
 * when it has one (the sparse inference engine, src/infer/), else through the
 * training kernels of nn/ops.h. */
#include "nn/graph.h"
#include "core/sgi_kv.h"

/* ---- shapes ---- */

/* Pool/conv output extent; 0 when the window does not fit. */
static int out_extent(int in, int k, int stride, int p0, int p1, int dil, int ceil_mode) {
    /* in 64 bits: a file may give a dilation and kernel whose span overflows an int */
    const int64_t span = (int64_t)dil * (k - 1) + 1;
    const int64_t avail = (int64_t)in + p0 + p1 - span;
    if (avail < 0 || stride <= 0) return 0;
    int64_t o = ceil_mode ? (avail + stride - 1) / stride + 1 : avail / stride + 1;
    /* ceil mode: the last window must start inside the input or left padding */
    if (ceil_mode && (o - 1) * stride >= (int64_t)in + p0) o--;
    return o > INT32_MAX ? 0 : (int)o;
}

enum sg_status sg_conv_geom_finish(struct sg_conv_geom *g) {
    if (g->n <= 0 || g->c <= 0 || g->h <= 0 || g->w <= 0 || g->k <= 0 || g->r <= 0 ||
        g->s <= 0 || g->sh <= 0 || g->sw <= 0 || g->dh <= 0 || g->dw <= 0 || g->groups <= 0 ||
        g->pt < 0 || g->pl < 0 || g->pb < 0 || g->pr < 0 || g->c % g->groups ||
        g->k % g->groups)
        return sgi_error(SG_ERR_ARG, "invalid convolution geometry");
    g->p = out_extent(g->h, g->r, g->sh, g->pt, g->pb, g->dh, 0);
    g->q = out_extent(g->w, g->s, g->sw, g->pl, g->pr, g->dw, 0);
    if (g->p <= 0 || g->q <= 0)
        return sgi_error(SG_ERR_ARG, "convolution window larger than its padded input");
    return SG_OK;
}

struct sg_conv_geom sgi_conv_geom_of(const struct sg_model *m, const struct sg_node *n,
                                     int batch) {
    const struct sg_node *x = &m->nodes[n->in[0]];
    struct sg_conv_geom g = {batch, x->c, x->h, x->w, n->k, n->kh, n->kw, n->sh, n->sw, n->pt,
                             n->pl, n->pb, n->pr, n->dh, n->dw, n->groups, n->h, n->w};
    return g;
}

static enum sg_status conv_shape(const struct sg_model *m, struct sg_node *n,
                                 const struct sg_node *x) {
    struct sg_conv_geom g = {1, x->c, x->h, x->w, n->k, n->kh, n->kw, n->sh, n->sw, n->pt,
                             n->pl, n->pb, n->pr, n->dh, n->dw, n->groups, 0, 0};
    if (sg_conv_geom_finish(&g) != SG_OK)
        return sgi_error(SG_ERR_ARG,
                         "node '%s': conv %dx%d stride %d,%d groups %d does not fit input "
                         "%dx%dx%d",
                         n->name, n->kh, n->kw, n->sh, n->sw, n->groups, x->c, x->h, x->w);
    n->c = n->k;
    n->h = g.p;
    n->w = g.q;
    return SG_OK;
}

static enum sg_status fc_shape(const struct sg_model *m, struct sg_node *n,
                               const struct sg_node *x) {
    if (n->k <= 0) return sgi_error(SG_ERR_ARG, "node '%s': fc needs k > 0", n->name);
    if (x->h != 1 || x->w != 1)
        return sgi_error(SG_ERR_ARG, "node '%s': fc input is %dx%dx%d, flatten it first",
                         n->name, x->c, x->h, x->w);
    n->c = n->k;
    return SG_OK;
}

static enum sg_status pool_shape(const struct sg_model *m, struct sg_node *n,
                                 const struct sg_node *x) {
    if (n->kh <= 0 || n->kw <= 0 || n->pt < 0 || n->pl < 0 || n->pb < 0 || n->pr < 0 ||
        n->pt >= n->kh || n->pb >= n->kh || n->pl >= n->kw || n->pr >= n->kw)
        return sgi_error(SG_ERR_ARG, "node '%s': bad pool window or padding", n->name);
    n->h = out_extent(x->h, n->kh, n->sh, n->pt, n->pb, 1, n->ceil_mode);
    n->w = out_extent(x->w, n->kw, n->sw, n->pl, n->pr, 1, n->ceil_mode);
    if (n->h <= 0 || n->w <= 0)
        return sgi_error(SG_ERR_ARG, "node '%s': pool window larger than input %dx%d", n->name,
                         x->h, x->w);
    return SG_OK;
}

static enum sg_status gap_shape(const struct sg_model *m, struct sg_node *n,
                                const struct sg_node *x) {
    n->h = n->w = 1;
    return SG_OK;
}

static enum sg_status flatten_shape(const struct sg_model *m, struct sg_node *n,
                                    const struct sg_node *x) {
    if ((int64_t)x->c * x->h * x->w > SG_MAX_ACTIVATION)
        return sgi_error(SG_ERR_LIMIT, "node '%s': %dx%dx%d values per sample (at most %d)",
                         n->name, x->c, x->h, x->w, SG_MAX_ACTIVATION);
    n->c = x->c * x->h * x->w;
    n->h = n->w = 1;
    return SG_OK;
}

static enum sg_status add_shape(const struct sg_model *m, struct sg_node *n,
                                const struct sg_node *x) {
    for (int i = 1; i < n->n_in; i++) {
        const struct sg_node *y = &m->nodes[n->in[i]];
        if (y->c != x->c || y->h != x->h || y->w != x->w)
            return sgi_error(SG_ERR_MISMATCH, "node '%s': add of %dx%dx%d and %dx%dx%d",
                             n->name, x->c, x->h, x->w, y->c, y->h, y->w);
    }
    return SG_OK;
}

static enum sg_status concat_shape(const struct sg_model *m, struct sg_node *n,
                                   const struct sg_node *x) {
    for (int i = 1; i < n->n_in; i++) {
        const struct sg_node *y = &m->nodes[n->in[i]];
        if (y->h != x->h || y->w != x->w)
            return sgi_error(SG_ERR_MISMATCH, "node '%s': concat of %dx%d and %dx%d maps",
                             n->name, x->h, x->w, y->h, y->w);
        if ((int64_t)n->c + y->c > SG_MAX_ACTIVATION)
            return sgi_error(SG_ERR_LIMIT, "node '%s': concat of more than %d channels",
                             n->name, SG_MAX_ACTIVATION);
        n->c += y->c;
    }
    return SG_OK;
}

static enum sg_status dropout_shape(const struct sg_model *m, struct sg_node *n,
                                    const struct sg_node *x) {
    if (!(n->p >= 0 && n->p < 1))
        return sgi_error(SG_ERR_ARG, "node '%s': dropout p = %g", n->name, n->p);
    return SG_OK;
}

static enum sg_status bn_shape(const struct sg_model *m, struct sg_node *n,
                               const struct sg_node *x) {
    if (!(n->eps > 0)) return sgi_error(SG_ERR_ARG, "node '%s': BN eps %g", n->name, n->eps);
    return SG_OK;
}

/* ---- forward and backward ---- */

static float *param_of(struct sg_model *m, int32_t p) {
    return p >= 0 ? sg_param_data(m, p) : NULL;
}
static float *grad_of(const struct sgi_step *s, int32_t p) {
    return p >= 0 ? s->grad + s->m->params[p].offset : NULL;
}

/* Filter c of a conv's weights wp (per weights a filter) has no kept weight. */
static int filter_pruned(const struct sg_model *m, const struct sg_param *wp, size_t per, int c) {
    const uint8_t *mk = m->mask + wp->offset + (size_t)c * per;
    size_t t = 0;
    while (t < per && !mk[t]) t++;
    return t == per;
}

/* A convolution run with the max pool after it (exec.c's cpool) in this training
 * step: the layer takes the direct path that conv.c fuses with the pool, where every
 * filter keeps a weight or is dead (weights and bias masked: conv_dead; with one input
 * channel a kernel is a filter, so no kernel mask thins it). The dead filters (LeNet-5's
 * conv1 under a channel mask on conv2) are not run: their pooled channel is 0, as
 * maxpool_runs writes it. The pool's output and argmax are written, the layer's own
 * output is not. 1 when it ran. */
static int conv_dead(const struct sgi_step *s, const struct sg_node *cn, uint8_t *dead);
static int conv_pool_forward(const struct sgi_step *s, const struct sg_conv_geom *g,
                             const float *w) {
    struct sg_exec *e = s->e;
    const int32_t pool = e->cpool ? e->cpool[s->i] : 0;
    if (e->cpooled) e->cpooled[s->i] = 0;
    if (pool <= 0 || !s->train) return 0;
    const struct sg_param *wp = &s->m->params[s->nd->param[0]];
    int pruned = 0, nd = 0;
    for (int k = 0; k < g->k; k++) pruned += filter_pruned(s->m, wp, (size_t)g->c * g->r * g->s, k);
    if (pruned) { /* every pruned filter dead, or the layer runs thinned */
        if (!e->dead || !e->dead[s->i] || !sgi_conv_pool_dead_ok(g)) return 0;
        nd = conv_dead(s, s->nd, e->dead[s->i]);
        if (nd != pruned) return 0;
    }
    const struct sgi_pool pg = sgi_pool_of(s->m, &s->m->nodes[pool], s->n);
    sgi_conv_pool_forward(g, s->x, w, param_of(s->m, s->nd->param[1]), nd ? e->dead[s->i] : NULL,
                          &pg, e->out[pool], e->arg[pool], e->col, e->threads);
    e->cpooled[s->i] = 1;
    if (e->thinned) e->thinned[s->i] = 0;
    if (e->ndead) e->ndead[s->i] = nd;
    return 1;
}

/* a max pool that its convolution ran (conv_pool_forward) has nothing left to do */
static int conv_pooled(const struct sgi_step *s) {
    const struct sg_exec *e = s->e;
    return e->cpool && e->cpool[s->i] < 0 && e->cpooled[-e->cpool[s->i]];
}

/* conv and fc: the hook's kernel when the executor has one, else the training kernel */
static enum sg_status conv_forward(const struct sgi_step *s) {
    const struct sg_exec *e = s->e;
    if (e->hook.forward) return e->hook.forward(e->hook.ctx, s->i, s->n, s->x, s->y);
    struct sg_conv_geom g = sgi_conv_geom_of(s->m, s->nd, s->n);
    const float *w = sg_param_data(s->m, s->nd->param[0]);
    const uint8_t *mask = s->m->mask + s->m->params[s->nd->param[0]].offset;
    if (conv_pool_forward(s, &g, w)) return SG_OK;
    const int thin = sgi_conv_thin_forward(&g, s->x, w, mask, param_of(s->m, s->nd->param[1]),
                                           s->y, e->threads, &s->e->thin);
    if (e->thinned) e->thinned[s->i] = (uint8_t)thin;
    if (thin) return SG_OK;
    if (sgi_conv_kernel_forward(&g, s->x, w, mask, param_of(s->m, s->nd->param[1]), s->y, e->col,
                                e->threads, &s->e->thin))
        return SG_OK;
    sgi_conv_forward(&g, s->x, sg_param_data(s->m, s->nd->param[0]),
                     param_of(s->m, s->nd->param[1]), s->y, e->col, e->threads);
    return SG_OK;
}

static void conv_backward(const struct sgi_step *s) {
    struct sg_conv_geom g = sgi_conv_geom_of(s->m, s->nd, s->n);
    const uint8_t *mask = s->m->mask + s->m->params[s->nd->param[0]].offset;
    const float *w = sg_param_data(s->m, s->nd->param[0]);
    float *dw = grad_of(s, s->nd->param[0]), *db = grad_of(s, s->nd->param[1]);
    /* dx written, not added to, where this node is its only reader (exec.c's gset_plan):
     * each path writes it or zeroes it first */
    const int set = s->set_dx && s->dx;
    /* a dead filter's output gradient (its channel skipped by the pool after it) */
    const struct sg_exec *e = s->e;
    if (e->cpooled && e->cpooled[s->i]) { /* on the network input: no dx */
        const int32_t pool = e->cpool[s->i];
        const struct sgi_pool pg = sgi_pool_of(s->m, &s->m->nodes[pool], s->n);
        sgi_conv_pool_wgrad(&g, s->x, e->ndead && e->ndead[s->i] ? e->dead[s->i] : NULL, &pg,
                            e->grad[pool], e->arg[pool], dw, db, e->col, e->threads);
        return;
    }
    const uint8_t *dead = e->dead && e->dead[s->i] && e->ndead[s->i] ? e->dead[s->i] : NULL;
    if (sgi_conv_thin_backward(&g, s->x, w, mask, dead, s->dy, s->dx, set, dw, db, e->threads,
                               &s->e->thin))
        return;
    if (dead && e->thinned && e->thinned[s->i]) { /* out of memory there: the pool left them */
        const size_t yp = (size_t)g.n * g.p * g.q;
        for (int k = 0; k < g.k; k++)
            if (dead[k]) memset((float *)s->dy + (size_t)k * yp, 0, yp * sizeof *s->dy);
    }
    if (sgi_conv_kernel_backward(&g, s->x, w, mask, s->dy, s->dx, set, dw, db, s->e->col,
                                 s->e->threads, &s->e->thin))
        return;
    sgi_conv_backward_kept(&g, s->x, w, NULL, s->dy, s->dx, set, dw, db, s->e->col, s->e->threads);
}

/* a ReLU fused into the BN before it (fuse -1) has nothing left to do */
static int fused_relu(const struct sgi_step *s) { return s->e->fuse && s->e->fuse[s->i] < 0; }

static enum sg_status relu_forward(const struct sgi_step *s) {
    if (!fused_relu(s)) sgi_relu_forward(s->sz, s->x, s->y);
    return SG_OK;
}

static void relu_backward(const struct sgi_step *s) {
    if (s->dx && !fused_relu(s))
        sgi_relu_backward(s->sz, s->e->out[s->i], s->dy, s->dx, s->set_dx);
}

static int g_dead_on = 1;

void sgi_dead_channels_enable(int on) { g_dead_on = on; }

/* Filters of a conv (run by the training kernels) whose every weight and bias is
 * masked: their output channel is exactly 0 (masked entries are 0), and no
 * gradient that reaches it is ever used (the filter's weight and bias gradients
 * are masked; its zero weights carry nothing to the input). */
static int conv_dead(const struct sgi_step *s, const struct sg_node *cn, uint8_t *dead) {
    if (!g_dead_on || s->e->hook.forward || cn->groups != 1) return 0;
    const struct sg_model *m = s->m;
    const struct sg_param *wp = &m->params[cn->param[0]];
    const struct sg_param *bp = cn->param[1] >= 0 ? &m->params[cn->param[1]] : NULL;
    const size_t per = wp->count / (size_t)cn->k;
    int nd = 0;
    for (int c = 0; c < cn->k; c++) {
        dead[c] = 0;
        if (bp && (m->mask[bp->offset + c] || m->arena[bp->offset + c] != 0.0f)) continue;
        if (filter_pruned(m, wp, per, c)) dead[c] = 1, nd++;
    }
    return nd;
}

/* The dead channels of max pool `pool`'s input: those of the BN whose fused ReLU
 * feeds it (their gradient is never read: the fused BN gates it by the ReLU's 0
 * output), or those of the conv it reads (found at the pool's forward, kept for the
 * backward); NULL when none is known. */
static const uint8_t *dead_before_pool(const struct sg_exec *e, int32_t pool) {
    const int32_t in = e->m->nodes[pool].in[0];
    if (e->fuse && e->fuse[in] < 0) {
        const int32_t bn = -e->fuse[in];
        return e->ndead[bn] ? e->dead[bn] : NULL;
    }
    if (!e->dead || !e->dead[in] || e->m->nodes[in].op != SG_OP_CONV) return NULL;
    return e->ndead[in] ? e->dead[in] : NULL;
}

static const uint8_t *pool_dead(const struct sgi_step *s, int backward) {
    const struct sg_exec *e = s->e;
    const int32_t in = s->nd->in[0];
    if (!backward && !(e->fuse && e->fuse[in] < 0) && e->dead && e->dead[in] &&
        s->xn->op == SG_OP_CONV)
        e->ndead[in] = s->train ? conv_dead(s, s->xn, e->dead[in]) : 0;
    return dead_before_pool(e, s->i);
}

/* Fully connected layers reading a flatten of such a pool: its dead channels' features
 * are 0 (the pool writes 0 there), so the products skip them (ops.c, the _live
 * kernels). The live features go to e->live; their count, or -1 to run the whole
 * layer (nothing dead, or too little to pay). */
#define FC_LIVE_SHARE 0.8
#define FC_LIVE_RUN 16
static int fc_live(const struct sgi_step *s) {
#if !SGI_KV
    return -1; /* the live kernels are the own GEMM's vector ones (sgi_sgemm_own_ks) */
#endif
    struct sg_exec *e = s->e;
    if (!g_dead_on || !e->live || e->hook.forward || s->xn->op != SG_OP_FLATTEN) return -1;
    const int32_t pool = s->xn->in[0];
    const struct sg_node *pn = &s->m->nodes[pool];
    if (pn->op != SG_OP_MAXPOOL) return -1;
    const uint8_t *dead = dead_before_pool(e, pool);
    const int f = pn->h * pn->w;
    if (!dead || (int64_t)pn->c * f != s->xn->c || s->xn->c > e->live_cap) return -1;
    int nl = 0, runs = 0;
    for (int c = 0; c < pn->c; c++)
        if (!dead[c]) {
            runs += c == 0 || dead[c - 1];
            for (int j = 0; j < f; j++) e->live[nl++] = c * f + j;
        }
    /* the backward multiplies run by run: runs shorter than a vector (VGG-7's 3x3
     * planes, 9 floats) cost more than the dense layer (0.43-0.51 ms against
     * 0.35-0.41 for VGG-7's fc1 under a filter mask at 0.3, two threads) */
    return nl <= FC_LIVE_SHARE * s->xn->c && nl >= FC_LIVE_RUN * runs ? nl : -1;
}

/* The outputs of an fc layer with a kept weight, into e->rows: their count, or -1 to
 * run every row (no mask, or too few rows without a kept weight to pay). A row
 * whose every weight is masked is exactly 0 (a pruned filter: graph walks of
 * src/prune/follow.c mask its bias too, and the weights that read it). Then the
 * layer runs on compact copies of its kept block (ops.c, the _thin kernels),
 * which also skips reading the dead rows' weights; LeNet-5's fc1 at batch 64 pruned
 * with the convolutions (`--fc same`, filter 0.3: 150 of 500 outputs, 240 of 800 inputs
 * live), one thread on the AMD EPYC: forward 0.16-0.19 -> 0.09-0.12 ms, backward
 * 0.29-0.30 -> 0.15-0.17 (docs/performance.md, "Eighteenth pass"). */
static int g_fc_rows_on = 1;

void sgi_fc_rows_enable(int on) { g_fc_rows_on = on; }

static int fc_rows(const struct sgi_step *s, int nl) {
    struct sg_exec *e = s->e;
    if (!g_dead_on || !g_fc_rows_on || !e->rows || e->hook.forward) return -1;
    const struct sg_param *wp = &s->m->params[s->nd->param[0]];
    const int k = s->nd->k, c = s->xn->c;
    const uint8_t *mk = s->m->mask + wp->offset;
    int nr = 0;
    for (int r = 0; r < k; r++) { /* a row ends at its first kept weight; the scan, at too many */
        const uint8_t *mr = mk + (size_t)r * c;
        int t = 0;
        while (t < c && !mr[t]) t++;
        if (t == c) continue;
        if (nr + 1 > FC_LIVE_SHARE * k) return -1;
        e->rows[nr++] = r;
    }
    const size_t need = sgi_fc_thin_ws(s->n, nr, nl >= 0 ? nl : c);
    if (need > e->fc_ws_len) {
        free(e->fc_ws);
        e->fc_ws_len = 0;
        if (!(e->fc_ws = sgi_alloc(need, sizeof(float)))) return -1;
        e->fc_ws_len = need;
    }
    return nr;
}

/* A fine-masked fc layer whose kept weights are few enough (ops.h, sgi_fc_sparse_plan)
 * on a one-thread training executor (sg_train's batch-parallel threads; the dense product
 * shares a layer between threads, the sparse one does not): the forward lists them and
 * returns the lists, which the backward of the same step takes again; NULL: run the dense
 * kernels. The same bits either way. */
static float *fc_sparse(const struct sgi_step *s, int nl, int nr, int backward) {
    struct sg_exec *e = s->e;
    if (backward) return e->fcs && e->fcs_on[s->i] ? e->fcs[s->i] : NULL;
    if (e->fcs) e->fcs_on[s->i] = 0;
    if (nr >= 0 || !s->train || !g_dead_on || !s->m->mask || e->threads > 1 || e->hook.forward)
        return NULL;
    const int32_t nn = s->m->n_nodes;
    if (!e->fcs) {
        e->fcs = calloc((size_t)nn, sizeof *e->fcs);
        e->fcs_len = calloc((size_t)nn, sizeof *e->fcs_len);
        e->fcs_on = calloc((size_t)nn, 1);
        if (!e->fcs || !e->fcs_len || !e->fcs_on) {
            free(e->fcs), free(e->fcs_len), free(e->fcs_on);
            e->fcs = NULL, e->fcs_len = NULL, e->fcs_on = NULL;
            return NULL;
        }
    }
    const int k = s->nd->k, c = s->xn->c;
    const size_t need = sgi_fc_sparse_ws(s->n, c, k);
    if (need > e->fcs_len[s->i]) {
        free(e->fcs[s->i]);
        e->fcs_len[s->i] = 0;
        if (!(e->fcs[s->i] = sgi_alloc(need, sizeof(float)))) return NULL;
        memset(e->fcs[s->i], 0, 64); /* no plan made yet (the lists are reused across steps) */
        e->fcs_len[s->i] = need;
    }
    const uint8_t *mk = s->m->mask + s->m->params[s->nd->param[0]].offset;
    if (!sgi_fc_sparse_plan(s->n, c, k, mk, nl >= 0 ? e->live : NULL, nl, e->fcs[s->i])) return NULL;
    e->fcs_on[s->i] = 1;
    return e->fcs[s->i];
}

static enum sg_status fc_forward(const struct sgi_step *s) {
    struct sg_exec *e = s->e;
    if (e->hook.forward) return e->hook.forward(e->hook.ctx, s->i, s->n, s->x, s->y);
    const float *w = sg_param_data(s->m, s->nd->param[0]), *b = param_of(s->m, s->nd->param[1]);
    const int nl = s->train ? fc_live(s) : -1, nr = fc_rows(s, nl);
    const void *ls = fc_sparse(s, nl, nr, 0);
    if (ls)
        sgi_fc_forward_sparse(s->n, s->xn->c, s->nd->k, s->x, w, b, s->y, ls);
    else if (nr >= 0)
        sgi_fc_forward_thin(s->n, s->xn->c, s->nd->k, e->rows, nr, nl >= 0 ? e->live : NULL, nl,
                            s->x, w, b, s->y, e->fc_ws);
    else if (nl >= 0)
        sgi_fc_forward_live(s->n, s->xn->c, s->nd->k, e->live, nl, s->x, w, b, s->y);
    else
        sgi_fc_forward(s->n, s->xn->c, s->nd->k, s->x, w, b, s->y);
    return SG_OK;
}

static void fc_backward(const struct sgi_step *s) {
    const float *w = sg_param_data(s->m, s->nd->param[0]);
    float *dw = grad_of(s, s->nd->param[0]), *db = grad_of(s, s->nd->param[1]);
    const int nl = fc_live(s), nr = fc_rows(s, nl);
    float *ls = fc_sparse(s, nl, nr, 1);
    if (ls) { /* the weight gradient dense (on the live features), the input gradient sparse */
        const int *live = nl >= 0 ? s->e->live : NULL;
        if (live)
            sgi_fc_backward_live(s->n, s->xn->c, s->nd->k, live, nl, s->x, w, s->dy, NULL, dw, db);
        else
            sgi_fc_backward(s->n, s->xn->c, s->nd->k, s->x, w, s->dy, NULL, dw, db);
        if (s->dx)
            sgi_fc_dx_sparse(s->n, s->xn->c, s->nd->k, live, nl, w, s->dy, s->dx, ls);
    } else if (nr >= 0)
        sgi_fc_backward_thin(s->n, s->xn->c, s->nd->k, s->e->rows, nr, nl >= 0 ? s->e->live : NULL,
                             nl, s->x, w, s->dy, s->dx, dw, db, s->e->fc_ws);
    else if (nl >= 0)
        sgi_fc_backward_live(s->n, s->xn->c, s->nd->k, s->e->live, nl, s->x, w, s->dy, s->dx, dw,
                             db);
    else
        sgi_fc_backward(s->n, s->xn->c, s->nd->k, s->x, w, s->dy, s->dx, dw, db);
}

/* Runs of live channels [c0, c1) of a pool, the dead ones between them: forward
 * writes 0 (a dead channel's max), backward skips them. */
static void maxpool_runs(const struct sgi_step *s, int backward) {
    struct sgi_pool g = sgi_pool_of(s->m, s->nd, s->n);
    const uint8_t *dead = pool_dead(s, backward);
    int32_t *arg = s->e->arg[s->i];
    if (!dead) {
        if (backward)
            sgi_maxpool_backward(&g, s->dy, arg, s->dx, s->set_dx);
        else
            sgi_maxpool_forward(&g, s->x, s->y, arg);
        return;
    }
    const int C = s->nd->c, n = s->n;
    const size_t in_pl = (size_t)g.h * g.w, out_pl = (size_t)g.p * g.q;
    /* a dead channel's input gradient is left alone where only a thinned conv reads it
     * (it reads kept filters' gradients only: conv_thin.c, dead) */
    const int32_t in = s->nd->in[0];
    const int skip_clear = backward && s->e->thinned && s->xn->op == SG_OP_CONV &&
                           !(s->e->fuse && s->e->fuse[in] < 0) && s->e->thinned[in];
    for (int c0 = 0; c0 < C;) {
        int c1 = c0;
        const int d = dead[c0];
        while (c1 < C && dead[c1] == d) c1++;
        const size_t ii = (size_t)c0 * n * in_pl, oo = (size_t)c0 * n * out_pl;
        struct sgi_pool r = g;
        r.planes = (c1 - c0) * n;
        if (d) {
            if (!backward) memset(s->y + oo, 0, (size_t)r.planes * out_pl * sizeof *s->y);
            else if (s->set_dx && !skip_clear)
                memset(s->dx + ii, 0, (size_t)r.planes * in_pl * sizeof *s->dx);
        } else if (backward) {
            sgi_maxpool_backward(&r, s->dy + oo, arg + oo, s->dx + ii, s->set_dx);
        } else {
            sgi_maxpool_forward(&r, s->x + ii, s->y + oo, arg + oo);
        }
        c0 = c1;
    }
}

/* A pool run inside the BN before it (training; bn_pool_node). */
static int pool_fused(const struct sgi_step *s) { return s->e->pfuse && s->e->pfuse[s->i] < 0; }

static enum sg_status maxpool_forward(const struct sgi_step *s) {
    if (!(s->train && (pool_fused(s) || conv_pooled(s)))) maxpool_runs(s, 0);
    return SG_OK;
}

static void maxpool_backward(const struct sgi_step *s) {
    if (s->dx && !pool_fused(s) && !conv_pooled(s)) maxpool_runs(s, 1);
}

/* average pool and global average pool */
static enum sg_status avgpool_forward(const struct sgi_step *s) {
    struct sgi_pool g = sgi_pool_of(s->m, s->nd, s->n);
    sgi_avgpool_forward(&g, s->x, s->y);
    return SG_OK;
}

static void avgpool_backward(const struct sgi_step *s) {
    if (!s->dx) return;
    struct sgi_pool g = sgi_pool_of(s->m, s->nd, s->n);
    sgi_avgpool_backward(&g, s->dy, s->dx);
}

/* Channels of a fused BN that are exactly 0 in this training step: its input is a
 * conv (run by the training kernels) whose filter c has no kept weight and a zero
 * bias, and its shift beta[c] is 0. The conv then outputs exactly 0 (masked
 * weights are 0), the batch mean and variance are 0, BN outputs beta = 0, the
 * ReLU 0, and the ReLU's gate zeroes every gradient on the way back. */
static int find_dead(const struct sgi_step *s, const float *beta, uint8_t *dead) {
    const struct sg_node *xn = s->xn;
    if (!g_dead_on || xn->op != SG_OP_CONV || s->e->hook.forward || xn->groups != 1) return 0;
    const struct sg_model *m = s->m;
    const struct sg_param *wp = &m->params[xn->param[0]];
    const float *bias = xn->param[1] >= 0 ? m->arena + m->params[xn->param[1]].offset : NULL;
    const size_t per = wp->count / (size_t)xn->k;
    int nd = 0;
    for (int c = 0; c < s->nd->c; c++) {
        dead[c] = 0;
        if (beta[c] != 0.0f || (bias && bias[c] != 0.0f)) continue;
        if (filter_pruned(m, wp, per, c)) dead[c] = 1, nd++;
    }
    return nd;
}

/* The max pool fused after BN node s->i in training (exec.c's pfuse), or 0. */
static int32_t bn_pool_node(const struct sgi_step *s) {
    return s->e->pfuse && s->e->pfuse[s->i] > 0 ? s->e->pfuse[s->i] : 0;
}

static struct sgi_bn_pool bn_pool_of(const struct sgi_step *s, int32_t p) {
    struct sgi_bn_pool bp = {.g = sgi_pool_of(s->m, &s->m->nodes[p], s->n), .y = s->e->out[p],
                             .arg = s->e->arg[p], .dy = s->e->grad ? s->e->grad[p] : NULL,
                             .scratch = s->e->pscr, .slots = s->e->pslots};
    bp.g.planes = s->n; /* one channel's */
    return bp;
}

static enum sg_status bn_forward(const struct sgi_step *s) {
    const struct sg_node *nd = s->nd;
    struct sg_model *m = s->m;
    const size_t mm = (size_t)s->n * nd->h * nd->w;
    float *gm = sg_param_data(m, nd->param[0]), *bt = sg_param_data(m, nd->param[1]);
    float *rm = sg_param_data(m, nd->param[2]), *rv = sg_param_data(m, nd->param[3]);
    float *aux = s->e->aux[s->i];
    /* fused with the ReLU after it: straight into the ReLU's output */
    const int32_t r = s->e->fuse ? s->e->fuse[s->i] : 0;
    float *y = r > 0 ? s->e->out[r] : s->y;
    const uint8_t *dead = NULL;
    if (r > 0) {
        s->e->ndead[s->i] = s->train ? find_dead(s, bt, s->e->dead[s->i]) : 0;
        if (s->e->ndead[s->i]) dead = s->e->dead[s->i];
    }
    const int32_t p = s->train ? bn_pool_node(s) : 0;
    const struct sgi_bn_pool bp = p ? bn_pool_of(s, p) : (struct sgi_bn_pool){0};
    if (s->train && s->e->sync)
        sgi_bn_forward_sync(s->e->sync, nd->c, mm, (size_t)s->e->sync->n_all * nd->h * nd->w,
                            nd->eps, nd->momentum, s->x, gm, bt, rm, rv, aux, aux + nd->c, y,
                            r > 0, dead, p ? &bp : NULL);
    else if (s->train)
        sgi_bn_forward_train(nd->c, mm, nd->eps, nd->momentum, s->x, gm, bt, rm, rv, aux,
                             aux + nd->c, y, r > 0, dead, p ? &bp : NULL);
    else
        sgi_bn_forward_eval(nd->c, mm, nd->eps, s->x, gm, bt, rm, rv, y, r > 0);
    return SG_OK;
}

static void bn_backward(const struct sgi_step *s) {
    const struct sg_node *nd = s->nd;
    const float *aux = s->e->aux[s->i];
    const int32_t r = s->e->fuse ? s->e->fuse[s->i] : 0;
    const uint8_t *dead = r > 0 && s->e->ndead[s->i] ? s->e->dead[s->i] : NULL;
    const int32_t p = bn_pool_node(s);
    const struct sgi_bn_pool bp = p ? bn_pool_of(s, p) : (struct sgi_bn_pool){0};
    if (s->e->sync) {
        sgi_bn_backward_sync(s->e->sync, nd->c, (size_t)s->n * nd->h * nd->w,
                             (size_t)s->e->sync->n_all * nd->h * nd->w, s->x,
                             sg_param_data(s->m, nd->param[0]), sg_param_data(s->m, nd->param[1]),
                             aux, aux + nd->c, r > 0, r > 0 ? s->e->grad[r] : s->dy, s->dx,
                             grad_of(s, nd->param[0]), grad_of(s, nd->param[1]), dead, s->set_dx,
                             p ? &bp : NULL);
        return;
    }
    sgi_bn_backward(nd->c, (size_t)s->n * nd->h * nd->w, s->x, sg_param_data(s->m, nd->param[0]),
                    sg_param_data(s->m, nd->param[1]), aux, aux + nd->c, r > 0,
                    r > 0 ? s->e->grad[r] : s->dy, s->dx, grad_of(s, nd->param[0]),
                    grad_of(s, nd->param[1]), dead, s->set_dx, p ? &bp : NULL);
}

static enum sg_status add_forward(const struct sgi_step *s) {
    float *y = s->y;
    memcpy(y, s->x, s->sz * sizeof *y);
    for (int j = 1; j < s->nd->n_in; j++) {
        const float *xj = s->e->out[s->nd->in[j]];
        for (size_t t = 0; t < s->sz; t++) y[t] += xj[t];
    }
    return SG_OK;
}

static void add_backward(const struct sgi_step *s) {
    const uint8_t gs = s->e->gset ? s->e->gset[s->i] : 0;
    for (int j = 0; j < s->nd->n_in; j++) {
        if (s->nd->in[j] == 0) continue;
        float *dxj = s->e->grad[s->nd->in[j]];
        if (j < 2 && (gs & (j ? SGI_SETS_DX1 : SGI_SETS_DX))) /* the bits of adding to 0 */
            for (size_t t = 0; t < s->sz; t++) dxj[t] = 0.0f + s->dy[t];
        else
            for (size_t t = 0; t < s->sz; t++) dxj[t] += s->dy[t];
    }
}

static enum sg_status flatten_forward(const struct sgi_step *s) {
    sgi_flatten_forward(s->xn->c, s->n, s->xn->h * s->xn->w, s->x, s->y);
    return SG_OK;
}

static void flatten_backward(const struct sgi_step *s) {
    if (s->dx) sgi_flatten_backward(s->xn->c, s->n, s->xn->h * s->xn->w, s->dy, s->dx, s->set_dx);
}

/* identity except in training, where each element is kept with probability 1 - p */
static enum sg_status dropout_forward(const struct sgi_step *s) {
    const float p = s->nd->p;
    if (!(s->train && p > 0)) {
        memcpy(s->y, s->x, s->sz * sizeof *s->y);
        return SG_OK;
    }
    if (!s->rng) return sgi_error(SG_ERR_ARG, "dropout in training needs an rng");
    float *mk = s->e->aux[s->i];
    const float keep = 1.0f / (1.0f - p);
    for (size_t t = 0; t < s->sz; t++) {
        mk[t] = sg_rng_uniform(s->rng) >= p ? keep : 0.0f;
        s->y[t] = s->x[t] * mk[t];
    }
    return SG_OK;
}

static void dropout_backward(const struct sgi_step *s) {
    if (!s->dx) return;
    if (s->nd->p > 0) {
        const float *mk = s->e->aux[s->i];
        for (size_t t = 0; t < s->sz; t++) s->dx[t] += s->dy[t] * mk[t];
    } else {
        for (size_t t = 0; t < s->sz; t++) s->dx[t] += s->dy[t];
    }
}

static enum sg_status concat_forward(const struct sgi_step *s) {
    size_t off = 0;
    for (int j = 0; j < s->nd->n_in; j++) {
        const size_t part = sgi_node_size(&s->m->nodes[s->nd->in[j]], s->n);
        memcpy(s->y + off, s->e->out[s->nd->in[j]], part * sizeof *s->y);
        off += part;
    }
    return SG_OK;
}

static void concat_backward(const struct sgi_step *s) {
    size_t off = 0;
    for (int j = 0; j < s->nd->n_in; j++) {
        const size_t part = sgi_node_size(&s->m->nodes[s->nd->in[j]], s->n);
        if (s->nd->in[j] > 0) {
            float *dxj = s->e->grad[s->nd->in[j]];
            for (size_t t = 0; t < part; t++) dxj[t] += s->dy[off + t];
        }
        off += part;
    }
}

static enum sg_status softmax_forward(const struct sgi_step *s) {
    sgi_softmax_forward(s->nd->c, s->n, s->x, s->y);
    return SG_OK;
}

static void softmax_backward(const struct sgi_step *s) {
    if (s->dx) sgi_softmax_backward(s->nd->c, s->n, s->e->out[s->i], s->dy, s->dx);
}

/* The input node has no entry points: the walks copy the images into it. */
const struct sgi_op_def sgi_ops[SG_OP_COUNT] = {
    [SG_OP_INPUT] = {"input", 0, NULL, NULL, NULL},
    [SG_OP_CONV] = {"conv", 0, conv_shape, conv_forward, conv_backward},
    [SG_OP_FC] = {"fc", 0, fc_shape, fc_forward, fc_backward},
    [SG_OP_RELU] = {"relu", 0, NULL, relu_forward, relu_backward},
    [SG_OP_MAXPOOL] = {"maxpool", 0, pool_shape, maxpool_forward, maxpool_backward},
    [SG_OP_AVGPOOL] = {"avgpool", 0, pool_shape, avgpool_forward, avgpool_backward},
    [SG_OP_GAP] = {"gap", 0, gap_shape, avgpool_forward, avgpool_backward},
    [SG_OP_BN] = {"bn", 0, bn_shape, bn_forward, bn_backward},
    [SG_OP_ADD] = {"add", 1, add_shape, add_forward, add_backward},
    [SG_OP_FLATTEN] = {"flatten", 0, flatten_shape, flatten_forward, flatten_backward},
    [SG_OP_DROPOUT] = {"dropout", 0, dropout_shape, dropout_forward, dropout_backward},
    [SG_OP_CONCAT] = {"concat", 1, concat_shape, concat_forward, concat_backward},
    [SG_OP_SOFTMAX] = {"softmax", 0, NULL, softmax_forward, softmax_backward},
};

const char *sg_op_name(enum sg_op op) {
    return (unsigned)op < SG_OP_COUNT ? sgi_ops[op].name : "?";
}

/* The training kernels for other modules (sparsegrain/nn.h): nn/ops.h stays internal. */
size_t sg_conv_workspace(const struct sg_conv_geom *g, int threads) {
    return sgi_conv_workspace(g, threads);
}

void sg_conv_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                     const float *b, float *y, float *ws, int threads) {
    sgi_conv_forward(g, x, w, b, y, ws, threads);
}

void sg_fc_forward(int n, int c, int k, const float *x, const float *w, const float *b,
                   float *y) {
    sgi_fc_forward(n, c, k, x, w, b, y);
}
