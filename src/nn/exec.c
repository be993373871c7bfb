/* Running a model: per-node activation and gradient buffers, the one graph walk
 * (forward and backward over the DAG, each node through the op table of nn/graph.c),
 * softmax cross-entropy. Training and the sparse inference engine share it: the
 * engine plugs its layer plans in through the layer hook. */
#include <float.h>
#include <math.h>
#include <time.h>

#include "nn/graph.h"

void sg_exec_free(struct sg_exec *e) {
    if (!e) return;
    for (int32_t i = 0; i < e->m->n_nodes; i++) {
        if (e->out) free(e->out[i]);
        if (e->grad) free(e->grad[i]);
        if (e->arg) free(e->arg[i]);
        if (e->aux) free(e->aux[i]);
    }
    free(e->out);
    free(e->grad);
    free(e->arg);
    free(e->aux);
    free(e->col);
    free(e->t_fwd);
    free(e->t_bwd);
    if (e->dead)
        for (int32_t i = 0; i < e->m->n_nodes; i++) free(e->dead[i]);
    free(e->dead);
    free(e->ndead);
    free(e->thinned);
    free(e->live);
    free(e->rows);
    free(e->fc_ws);
    if (e->fcs)
        for (int32_t i = 0; i < e->m->n_nodes; i++) free(e->fcs[i]);
    free(e->fcs);
    free(e->fcs_len);
    free(e->fcs_on);
    free(e->fuse);
    free(e->pfuse);
    free(e->cpool);
    free(e->cpooled);
    free(e->pscr);
    free(e->gset);
    sgi_thin_buf_free(&e->thin);
    free(e);
}

void sg_exec_profile(struct sg_exec *e, int on) {
    e->t_cpu = on == 2;
    if (on && !e->t_fwd) {
        e->t_fwd = calloc((size_t)e->m->n_nodes, sizeof(double));
        e->t_bwd = calloc((size_t)e->m->n_nodes, sizeof(double));
    }
}

void sg_exec_profile_get(const struct sg_exec *e, int32_t node, double *fwd, double *bwd) {
    *fwd = e->t_fwd ? e->t_fwd[node] : 0;
    *bwd = e->t_bwd ? e->t_bwd[node] : 0;
}

/* The profile's clock: wall time, or (mode 2) the calling thread's CPU time. */
static double prof_now(const struct sg_exec *e) {
    if (!e->t_cpu) return sg_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int g_fuse_on = 1, g_pool_fuse_on = 1, g_conv_pool_on = 1;

void sgi_bn_relu_fuse_enable(int on) { g_fuse_on = on; }
static int g_gset_on = 1;
void sgi_grad_set_enable(int on) { g_gset_on = on; }
void sgi_bn_pool_fuse_enable(int on) { g_pool_fuse_on = on; }
void sgi_conv_pool_fuse_enable(int on) { g_conv_pool_on = on; }
static int g_poison;
void sgi_exec_poison(int on) { g_poison = on; }

/* BN nodes whose only consumer is a ReLU (conv-BN-ReLU): fuse[bn] = relu,
 * fuse[relu] = -bn; of those, the ones whose ReLU is read by one max pool alone:
 * pfuse[bn] = pool, pfuse[pool] = -bn. Convolutions on the network input read by one
 * 2x2 max pool alone, of a shape that conv.c runs with the pool (sgi_conv_pool_ok at
 * this batch: LeNet-5's conv1 and pool1): cpool[conv] = pool, cpool[pool] = -conv.
 * 0 when out of memory. */
static int fuse_plan(const struct sg_model *m, int batch, int32_t **fuse, int32_t **pfuse,
                     int32_t **cpool) {
    const size_t nn = (size_t)m->n_nodes;
    int32_t *f = calloc(nn, sizeof *f), *pf = calloc(nn, sizeof *pf), *cp = calloc(nn, sizeof *cp);
    int32_t *uses = calloc(nn, sizeof *uses), *last = calloc(nn, sizeof *last);
    if (!f || !pf || !cp || !uses || !last) {
        free(f), free(pf), free(cp), free(uses), free(last);
        return 0;
    }
    for (int32_t j = 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++) {
            const int32_t i = m->nodes[j].in[k];
            if (i < 0 || i >= m->n_nodes) continue;
            uses[i]++;
            last[i] = j;
        }
    for (int32_t i = 1; g_fuse_on && i < m->n_nodes; i++) {
        const int32_t j = last[i];
        if (m->nodes[i].op != SG_OP_BN || uses[i] != 1 || i == m->output) continue;
        if (m->nodes[j].op != SG_OP_RELU || m->nodes[j].n_in != 1 || j <= i) continue;
        f[i] = j;
        f[j] = -i;
    }
    for (int32_t i = 1; g_pool_fuse_on && i < m->n_nodes; i++) {
        const int32_t r = f[i], p = r > 0 ? last[r] : 0;
        if (r <= 0 || uses[r] != 1 || r == m->output || p <= r) continue;
        if (m->nodes[p].op != SG_OP_MAXPOOL || m->nodes[p].n_in != 1) continue;
        pf[i] = p;
        pf[p] = -i;
    }
    for (int32_t i = 1; g_conv_pool_on && i < m->n_nodes; i++) {
        const struct sg_node *c = &m->nodes[i];
        const int32_t p = last[i];
        if (c->op != SG_OP_CONV || c->in[0] != 0 || uses[i] != 1 || i == m->output || p <= i)
            continue;
        if (m->nodes[p].op != SG_OP_MAXPOOL || m->nodes[p].n_in != 1) continue;
        const struct sg_conv_geom g = sgi_conv_geom_of(m, c, batch);
        const struct sgi_pool pg = sgi_pool_of(m, &m->nodes[p], batch);
        if (!sgi_conv_pool_ok(&g, &pg)) continue;
        cp[i] = p;
        cp[p] = -i;
    }
    free(uses), free(last);
    *fuse = f, *pfuse = pf, *cpool = cp;
    return 1;
}

/* Which backward steps write their input's gradient instead of adding to it. The
 * backward walks the nodes from the loss node down, so a tensor's reader with the
 * highest index (at or before the loss node) is the first to touch its gradient:
 * where that reader is a BN, max pool, flatten, conv or ReLU (one input) or a
 * two-input add, it writes 0 + v where it would have added v to the zeroed
 * gradient (the same bits), and the zeroing, a pass over memory as large as the
 * activation, goes; the other readers add to it as before. An add reading one
 * tensor twice writes it at its first input and adds at its second. NULL when out
 * of memory. */
static uint8_t *gset_plan(const struct sg_model *m, int32_t loss_node) {
    uint8_t *f = calloc((size_t)m->n_nodes, 1);
    int32_t *first = calloc((size_t)m->n_nodes, sizeof *first); /* 0: no reader runs */
    if (!f || !first) {
        free(f), free(first);
        return NULL;
    }
    for (int32_t j = 1; j <= loss_node && j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++) {
            const int32_t i = m->nodes[j].in[k];
            if (i > 0 && i < j) first[i] = j;
        }
    for (int32_t j = 1; j <= loss_node && j < m->n_nodes; j++) {
        const struct sg_node *nd = &m->nodes[j];
        if (nd->op == SG_OP_ADD && nd->n_in == 2) {
            for (int k = 0; k < 2; k++) {
                const int32_t a = nd->in[k];
                if (a <= 0 || a >= j || first[a] != j || (k == 1 && nd->in[0] == a)) continue;
                f[j] |= k ? SGI_SETS_DX1 : SGI_SETS_DX;
                f[a] |= SGI_NO_CLEAR;
            }
            continue;
        }
        const int32_t i = nd->in[0];
        if (nd->n_in != 1 || i <= 0 || i >= j || first[i] != j) continue;
        if (nd->op != SG_OP_BN && nd->op != SG_OP_MAXPOOL && nd->op != SG_OP_FLATTEN &&
            nd->op != SG_OP_CONV && nd->op != SG_OP_RELU)
            continue;
        f[j] |= SGI_SETS_DX;
        f[i] |= SGI_NO_CLEAR;
    }
    free(first);
    return f;
}

static enum sg_status exec_new(const struct sg_model *m, int batch, int train, int fuse,
                               const struct sg_layer_hook *hook, struct sg_exec **out) {
    *out = NULL;
    if (!sg_model_runnable(m))
        return sgi_error(SG_ERR_UNSUPPORTED, "model '%s' has no runnable graph (weights only)",
                         m->arch);
    if (batch <= 0 || batch > (1 << 20)) return sgi_error(SG_ERR_ARG, "batch size %d", batch);
    enum sg_status bst = sg_blas_load(); /* conv and fc multiply through OpenBLAS */
    if (bst != SG_OK) return bst;
    struct sg_exec *e = calloc(1, sizeof *e);
    if (!e) return sgi_error(SG_ERR_NOMEM, "out of memory");
    e->m = m;
    e->threads = sg_get_threads();
    e->cap = batch;
    e->train = train;
    if (hook) e->hook = *hook;
    const size_t nn = (size_t)m->n_nodes;
    e->out = calloc(nn, sizeof *e->out);
    e->grad = calloc(nn, sizeof *e->grad);
    e->arg = calloc(nn, sizeof *e->arg);
    e->aux = calloc(nn, sizeof *e->aux);
    if (!e->out || !e->grad || !e->arg || !e->aux) goto nomem;
    e->loss_node = m->output;
    if (m->nodes[m->output].op == SG_OP_SOFTMAX) e->loss_node = m->nodes[m->output].in[0];
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *n = &m->nodes[i];
        const size_t sz = sgi_node_size(n, batch);
        if (!(e->out[i] = sgi_alloc(sz, sizeof(float)))) goto nomem;
        if (train && i > 0 && !(e->grad[i] = sgi_alloc(sz, sizeof(float)))) goto nomem;
        if (g_poison) /* tests: what is read before it is written shows as NaN */
            for (size_t j = 0; j < sz; j++) {
                e->out[i][j] = NAN;
                if (e->grad[i]) e->grad[i][j] = NAN;
            }
        if (n->op == SG_OP_MAXPOOL && !(e->arg[i] = sgi_alloc(sz, sizeof(int32_t)))) goto nomem;
        if (n->op == SG_OP_BN && !(e->aux[i] = sgi_alloc(2 * (size_t)n->c, sizeof(float))))
            goto nomem;
        if (n->op == SG_OP_DROPOUT && train && !(e->aux[i] = sgi_alloc(sz, sizeof(float))))
            goto nomem;
        if (n->op == SG_OP_CONV && !e->hook.forward) {
            struct sg_conv_geom g = sgi_conv_geom_of(m, n, batch);
            size_t ws = sgi_conv_workspace(&g, e->threads);
            if (ws > e->col_len) e->col_len = ws;
        }
    }
    if (e->col_len && !(e->col = sgi_alloc(e->col_len, sizeof(float)))) goto nomem;
    if (train && !hook && g_gset_on && !(e->gset = gset_plan(m, e->loss_node))) goto nomem;
    if (train && fuse && !hook) {
        if (!fuse_plan(m, batch, &e->fuse, &e->pfuse, &e->cpool)) goto nomem;
        e->dead = calloc(nn, sizeof *e->dead);
        e->ndead = calloc(nn, sizeof *e->ndead);
        e->thinned = calloc(nn, 1);
        e->cpooled = calloc(nn, 1);
        if (!e->dead || !e->ndead || !e->thinned || !e->cpooled) goto nomem;
        for (int32_t i = 0; i < m->n_nodes; i++)
            if (e->fuse[i] > 0 && !(e->dead[i] = calloc((size_t)m->nodes[i].c, 1))) goto nomem;
        for (int32_t i = 0; i < m->n_nodes; i++) { /* convs that a max pool reads */
            const int32_t in = m->nodes[i].in[0];
            if (m->nodes[i].op == SG_OP_MAXPOOL && in > 0 && m->nodes[in].op == SG_OP_CONV &&
                !e->dead[in] && !(e->dead[in] = calloc((size_t)m->nodes[in].c, 1)))
                goto nomem;
        }
        for (int32_t i = 0; i < m->n_nodes; i++) /* fc layers reading a flatten */
            if (m->nodes[i].op == SG_OP_FC && m->nodes[m->nodes[i].in[0]].c > e->live_cap)
                e->live_cap = m->nodes[m->nodes[i].in[0]].c;
        if (e->live_cap && !(e->live = malloc((size_t)e->live_cap * sizeof *e->live))) goto nomem;
        int rows_cap = 0;
        for (int32_t i = 0; i < m->n_nodes; i++)
            if (m->nodes[i].op == SG_OP_FC && m->nodes[i].k > rows_cap) rows_cap = m->nodes[i].k;
        if (rows_cap && !(e->rows = malloc((size_t)rows_cap * sizeof *e->rows))) goto nomem;
        size_t pm = 0;
        for (int32_t i = 0; i < m->n_nodes; i++)
            if (e->pfuse[i] > 0) {
                const size_t mm = (size_t)batch * m->nodes[i].h * m->nodes[i].w;
                if (mm > pm) pm = mm;
            }
        e->pslots = e->threads > 1 ? e->threads : 1;
        if (pm && !(e->pscr = sgi_alloc(pm * (size_t)e->pslots, sizeof(float)))) goto nomem;
    }
    *out = e;
    return SG_OK;
nomem:
    sg_exec_free(e);
    return sgi_error(SG_ERR_NOMEM, "out of memory for activations of batch %d", batch);
}

enum sg_status sgi_exec_new_train(const struct sg_model *m, int batch, struct sg_exec **out) {
    return exec_new(m, batch, 1, 1, NULL, out);
}

enum sg_status sg_exec_new(const struct sg_model *m, int batch, int train, struct sg_exec **out) {
    return exec_new(m, batch, train, 0, NULL, out);
}

enum sg_status sg_exec_new_hooked(const struct sg_model *m, int batch,
                                  const struct sg_layer_hook *hook, struct sg_exec **out) {
    *out = NULL;
    if (!hook || !hook->forward) return sgi_error(SG_ERR_ARG, "layer hook without a forward");
    return exec_new(m, batch, 0, 0, hook, out);
}

enum sg_status sg_forward(struct sg_model *m, struct sg_exec *e, const float *x, int n, int train,
                          sg_rng *rng) {
    if (n <= 0 || n > e->cap)
        return sgi_error(SG_ERR_ARG, "batch of %d images, capacity %d", n, e->cap);
    if (train && !e->train)
        return sgi_error(SG_ERR_ARG, "training forward on an inference executor");
    e->n = n;
    sgi_to_channel_major(x, n, m->in_c, (size_t)m->in_h * m->in_w, e->out[0]);
    for (int32_t i = 1; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        const struct sgi_step st = {.m = m, .e = e, .i = i, .nd = nd, .xn = &m->nodes[nd->in[0]],
                                    .x = e->out[nd->in[0]], .n = n, .sz = sgi_node_size(nd, n),
                                    .y = e->out[i], .train = train, .rng = rng};
        const double t0 = e->t_fwd ? prof_now(e) : 0;
        const struct sgi_op_def *op = (unsigned)nd->op < SG_OP_COUNT ? &sgi_ops[nd->op] : NULL;
        if (!op || !op->forward)
            return sgi_error(SG_ERR_UNSUPPORTED, "op %s in forward", sg_op_name(nd->op));
        enum sg_status r = op->forward(&st);
        if (r != SG_OK) return r;
        if (e->t_fwd) e->t_fwd[i] += prof_now(e) - t0;
    }
    return SG_OK;
}

void sg_exec_logits(const struct sg_exec *e, float *out) {
    const int k = e->m->nodes[e->m->output].c, n = e->n;
    const float *z = e->out[e->m->output];
    for (int b = 0; b < n; b++)
        for (int i = 0; i < k; i++) out[(size_t)b * k + i] = z[(size_t)i * n + b];
}

const float *sg_exec_output(const struct sg_exec *e, int32_t node, int *n_out) {
    if (n_out) *n_out = e->n;
    return node >= 0 && node < e->m->n_nodes ? e->out[node] : NULL;
}

double sg_exec_loss(struct sg_exec *e, const uint8_t *labels, int *top1, int *top5) {
    const int k = e->m->nodes[e->loss_node].c, n = e->n;
    const int dn = e->loss_div > 0 ? e->loss_div : n; /* the gradient's batch */
    const float *z = e->out[e->loss_node];
    float *dz = e->train ? e->grad[e->loss_node] : NULL;
    double loss = 0;
    int c1 = 0, c5 = 0;
    for (int b = 0; b < n; b++) {
        float mx = -FLT_MAX;
        for (int i = 0; i < k; i++) mx = fmaxf(mx, z[(size_t)i * n + b]);
        double s = 0;
        for (int i = 0; i < k; i++) s += exp((double)z[(size_t)i * n + b] - mx);
        const int y = labels[b] < k ? labels[b] : 0;
        const float zy = z[(size_t)y * n + b];
        loss += log(s) + mx - zy;
        int above = 0; /* classes scoring strictly higher than the label (ties count as correct) */
        for (int i = 0; i < k; i++) above += z[(size_t)i * n + b] > zy;
        c1 += above == 0;
        c5 += above < 5;
        if (dz)
            for (int i = 0; i < k; i++) {
                const double p = exp((double)z[(size_t)i * n + b] - mx) / s;
                dz[(size_t)i * n + b] = (float)((p - (i == y)) / dn);
            }
    }
    if (top1) *top1 = c1;
    if (top5) *top5 = c5;
    return loss / n;
}

/* The gradient zeroed before a backward, but for the parameters that their
 * node's backward writes in full whatever it reads: a fully connected layer's
 * weights and bias (products with beta 0, sums stored), below the loss node. At
 * LeNet-5's size the whole arena's clearing cost as much as a pool's pass. */
static void clear_grad(const struct sg_model *m, const struct sg_exec *e, float *grad) {
    size_t at = 0; /* cleared or skipped up to here; parameters lie in order, padded */
    for (int32_t p = 0; p < m->n_params; p++) {
        const size_t off = m->params[p].offset, cnt = m->params[p].count;
        if (off < at || off + cnt > m->arena_len) { /* not the arena's layout: all of it */
            memset(grad, 0, m->arena_len * sizeof *grad);
            return;
        }
        int full = 0;
        for (int32_t i = 1; i <= e->loss_node && !full; i++)
            full = m->nodes[i].op == SG_OP_FC &&
                   (m->nodes[i].param[0] == p || m->nodes[i].param[1] == p);
        const size_t end = full ? off : off + cnt;
        memset(grad + at, 0, (end - at) * sizeof *grad);
        at = off + cnt;
    }
    memset(grad + at, 0, (m->arena_len - at) * sizeof *grad);
}

enum sg_status sg_backward(struct sg_model *m, struct sg_exec *e, float *grad) {
    if (!e->train) return sgi_error(SG_ERR_ARG, "backward on an inference executor");
    const int n = e->n;
    clear_grad(m, e, grad);
    for (int32_t i = 1; i < e->loss_node; i++)
        if (!(e->fuse && e->fuse[i] > 0) && /* a fused BN's own gradient is never used */
            !(e->gset && (e->gset[i] & SGI_NO_CLEAR))) /* its reader writes it */
            memset(e->grad[i], 0, sgi_node_size(&m->nodes[i], n) * sizeof(float));
    for (int32_t i = e->loss_node; i >= 1; i--) {
        const struct sg_node *nd = &m->nodes[i];
        const struct sgi_step st = {.m = m, .e = e, .i = i, .nd = nd, .xn = &m->nodes[nd->in[0]],
                                    .x = e->out[nd->in[0]], .n = n, .sz = sgi_node_size(nd, n),
                                    .dy = e->grad[i],
                                    .dx = nd->in[0] > 0 ? e->grad[nd->in[0]] : NULL,
                                    .set_dx = e->gset && (e->gset[i] & SGI_SETS_DX),
                                    .grad = grad};
        const double t0 = e->t_bwd ? prof_now(e) : 0;
        const struct sgi_op_def *op = (unsigned)nd->op < SG_OP_COUNT ? &sgi_ops[nd->op] : NULL;
        if (!op || !op->backward)
            return sgi_error(SG_ERR_UNSUPPORTED, "op %s in backward", sg_op_name(nd->op));
        op->backward(&st);
        if (e->t_bwd) e->t_bwd[i] += prof_now(e) - t0;
    }
    /* The gradient of a pruned parameter is zero: masked weights, and the biases and
     * batch-norm gamma/beta of pruned filters, never move. Running statistics are
     * not trained by gradients. */
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind == SG_PARAM_BN_MEAN || pp->kind == SG_PARAM_BN_VAR ||
            pp->kind == SG_PARAM_OTHER)
            continue;
        float *g = grad + pp->offset;
        const uint8_t *mk = m->mask + pp->offset;
        if (!memchr(mk, 0, pp->count)) continue; /* nothing masked (a byte scan, no pass over g) */
        for (size_t t = 0; t < pp->count; t++) g[t] = mk[t] ? g[t] : 0.0f;
    }
    return SG_OK;
}
