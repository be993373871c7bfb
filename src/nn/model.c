/* The model: nodes in topological order, parameters in one arena with a parallel
 * mask arena, shape inference (each op's part in the op table, nn/graph.c), metadata. */
#include <stdarg.h>

#include "core/sgi.h"
#include "nn/graph.h"
#include "sparsegrain/nn.h"

struct sg_model *sg_model_new(const char *arch, int in_c, int in_h, int in_w) {
    struct sg_model *m = calloc(1, sizeof *m);
    if (!m) {
        sgi_error(SG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->in_c = in_c;
    m->in_h = in_h;
    m->in_w = in_w;
    m->output = -1;
    return m;
}

void sg_model_free(struct sg_model *m) {
    if (!m) return;
    if (m->ext && m->ext_free) m->ext_free(m->ext);
    free(m->nodes);
    free(m->params);
    free(m->arena);
    free(m->mask);
    free(m);
}

void sg_node_init(struct sg_node *n, enum sg_op op, const char *name) {
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->kh = n->kw = 1;
    n->sh = n->sw = 1;
    n->dh = n->dw = 1;
    n->groups = 1;
    n->count_include_pad = 1;
    n->eps = 1e-5f;
    n->momentum = 0.1f;
    for (int i = 0; i < 4; i++) n->param[i] = -1;
}

int32_t sg_model_add(struct sg_model *m, const struct sg_node *n) {
    if ((unsigned)n->op >= SG_OP_COUNT) {
        sgi_error(SG_ERR_ARG, "node '%s': unknown op %d", n->name, (int)n->op);
        return -1;
    }
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] < 0 || n->in[i] >= m->n_nodes) {
            sgi_error(SG_ERR_ARG, "node '%s': input %d refers to node %d (only %d exist)",
                      n->name, i, n->in[i], m->n_nodes);
            return -1;
        }
    if (m->n_nodes == m->cap_nodes) {
        int32_t cap = m->cap_nodes ? m->cap_nodes * 2 : 16;
        struct sg_node *nn = realloc(m->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            sgi_error(SG_ERR_NOMEM, "out of memory");
            return -1;
        }
        m->nodes = nn;
        m->cap_nodes = cap;
    }
    m->nodes[m->n_nodes] = *n;
    return m->n_nodes++;
}

int32_t sg_model_add_param(struct sg_model *m, const char *name, enum sg_param_kind kind,
                           enum sg_layer_kind layer, int32_t node, int ndim,
                           const int64_t *dims) {
    if (m->arena) {
        sgi_error(SG_ERR_ARG, "parameter '%s' added after the arena was allocated", name);
        return -1;
    }
    if (ndim < 1 || ndim > 4) {
        sgi_error(SG_ERR_ARG, "parameter '%s': %d dimensions (1 to 4 allowed)", name, ndim);
        return -1;
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        if (dims[i] <= 0 || !sgi_mul(count, (size_t)dims[i], &count)) {
            sgi_error(SG_ERR_ARG, "parameter '%s': bad dimension %lld", name, (long long)dims[i]);
            return -1;
        }
    if (m->n_params == m->cap_params) {
        int32_t cap = m->cap_params ? m->cap_params * 2 : 16;
        struct sg_param *np = realloc(m->params, (size_t)cap * sizeof *np);
        if (!np) {
            sgi_error(SG_ERR_NOMEM, "out of memory");
            return -1;
        }
        m->params = np;
        m->cap_params = cap;
    }
    struct sg_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind;
    p->layer = layer;
    p->node = node;
    p->ndim = ndim;
    for (int i = 0; i < 4; i++) p->dims[i] = i < ndim ? dims[i] : 1;
    p->count = count;
    return m->n_params++;
}

int32_t sg_model_find_param(const struct sg_model *m, const char *name) {
    for (int32_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

static enum sg_status need_params(struct sg_model *m, int32_t ni) {
    struct sg_node *n = &m->nodes[ni];
    const struct sg_node *x = &m->nodes[n->in[0]];
    char name[SG_NAME_MAX + 16];
    if (n->op == SG_OP_CONV || n->op == SG_OP_FC) {
        int64_t cin = n->op == SG_OP_CONV ? x->c : (int64_t)x->c * x->h * x->w;
        /* fc ignores groups (a model file may hold anything there) */
        const int64_t groups = n->op == SG_OP_CONV ? n->groups : 1;
        if (n->param[0] < 0) {
            int64_t d[4] = {n->k, cin / groups, n->kh, n->kw};
            snprintf(name, sizeof name, "%s.weight", n->name);
            n->param[0] = sg_model_add_param(m, name, SG_PARAM_WEIGHT,
                                             n->op == SG_OP_CONV ? SG_LAYER_CONV : SG_LAYER_FC,
                                             ni, n->op == SG_OP_CONV ? 4 : 2, d);
            n = &m->nodes[ni];
            if (n->param[0] < 0) return SG_ERR_ARG;
        }
        if (n->has_bias && n->param[1] < 0) {
            int64_t d[1] = {n->k};
            snprintf(name, sizeof name, "%s.bias", n->name);
            n->param[1] = sg_model_add_param(m, name, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, d);
            n = &m->nodes[ni];
            if (n->param[1] < 0) return SG_ERR_ARG;
        }
        const struct sg_param *w = &m->params[n->param[0]];
        int64_t want[4] = {n->k, cin / groups, n->op == SG_OP_CONV ? n->kh : 1,
                           n->op == SG_OP_CONV ? n->kw : 1};
        int64_t have[4] = {w->dims[0], w->dims[1], w->ndim == 4 ? w->dims[2] : 1,
                           w->ndim == 4 ? w->dims[3] : 1};
        for (int i = 0; i < 4; i++)
            if (want[i] != have[i])
                return sgi_error(SG_ERR_MISMATCH,
                                 "node '%s': weight '%s' has shape %lldx%lldx%lldx%lld, the graph "
                                 "needs %lldx%lldx%lldx%lld",
                                 n->name, w->name, (long long)have[0], (long long)have[1],
                                 (long long)have[2], (long long)have[3], (long long)want[0],
                                 (long long)want[1], (long long)want[2], (long long)want[3]);
        if (n->param[1] >= 0 && m->params[n->param[1]].count != (size_t)n->k)
            return sgi_error(SG_ERR_MISMATCH, "node '%s': bias has %zu elements, wanted %d",
                             n->name, m->params[n->param[1]].count, n->k);
    } else if (n->op == SG_OP_BN) {
        static const char *const suffix[4] = {"gamma", "beta", "running_mean", "running_var"};
        for (int i = 0; i < 4; i++) {
            if (n->param[i] < 0) {
                int64_t d[1] = {x->c};
                snprintf(name, sizeof name, "%s.%s", n->name, suffix[i]);
                n->param[i] = sg_model_add_param(m, name, (enum sg_param_kind)(SG_PARAM_BN_GAMMA + i),
                                                 SG_LAYER_NONE, ni, 1, d);
                n = &m->nodes[ni];
                if (n->param[i] < 0) return SG_ERR_ARG;
            }
            if (m->params[n->param[i]].count != (size_t)x->c)
                return sgi_error(SG_ERR_MISMATCH, "node '%s': %s has %zu elements, wanted %d",
                                 n->name, suffix[i], m->params[n->param[i]].count, x->c);
        }
    }
    return SG_OK;
}

static enum sg_status infer_shape(struct sg_model *m, int32_t ni) {
    struct sg_node *n = &m->nodes[ni];
    if (n->op == SG_OP_INPUT) {
        if (ni != 0 || n->n_in != 0)
            return sgi_error(SG_ERR_ARG, "node '%s': the input must be node 0", n->name);
        n->c = m->in_c;
        n->h = m->in_h;
        n->w = m->in_w;
        if ((int64_t)n->c * n->h * n->w > SG_MAX_ACTIVATION)
            return sgi_error(SG_ERR_LIMIT, "input %dx%dx%d has more than %d values per sample",
                             n->c, n->h, n->w, SG_MAX_ACTIVATION);
        return SG_OK;
    }
    if (ni == 0) return sgi_error(SG_ERR_ARG, "node 0 ('%s') must be the input", n->name);
    if ((unsigned)n->op >= SG_OP_COUNT)
        return sgi_error(SG_ERR_ARG, "node '%s': unknown op %d", n->name, (int)n->op);
    const struct sgi_op_def *op = &sgi_ops[n->op];
    const int need_in = op->variadic ? 2 : 1;
    if (n->n_in < need_in || (need_in == 1 && n->n_in != 1))
        return sgi_error(SG_ERR_ARG, "node '%s' (%s): %d inputs", n->name, sg_op_name(n->op),
                         n->n_in);
    const struct sg_node *x = &m->nodes[n->in[0]];
    n->c = x->c;
    n->h = x->h;
    n->w = x->w;
    if (op->shape) {
        enum sg_status st = op->shape(m, n, x);
        if (st != SG_OK) return st;
    }
    if ((int64_t)n->c * n->h * n->w > SG_MAX_ACTIVATION)
        return sgi_error(SG_ERR_LIMIT, "node '%s': output %dx%dx%d has more than %d values per "
                         "sample", n->name, n->c, n->h, n->w, SG_MAX_ACTIVATION);
    return SG_OK;
}

static enum sg_status finalize(struct sg_model *m, int init) {
    if (m->n_nodes > 0) {
        if (m->in_c <= 0 || m->in_h <= 0 || m->in_w <= 0)
            return sgi_error(SG_ERR_ARG, "model input shape %dx%dx%d is not set", m->in_c,
                             m->in_h, m->in_w);
        for (int32_t i = 0; i < m->n_nodes; i++) {
            enum sg_status st = infer_shape(m, i);
            if (st == SG_OK) st = need_params(m, i);
            if (st != SG_OK) return st;
        }
        if (m->output < 0) m->output = m->n_nodes - 1;
        const struct sg_node *o = &m->nodes[m->output];
        if (o->h != 1 || o->w != 1)
            return sgi_error(SG_ERR_ARG, "output node '%s' is %dx%dx%d, not a vector", o->name,
                             o->c, o->h, o->w);
        m->n_classes = o->c;
    }
    size_t off = 0;
    for (int32_t i = 0; i < m->n_params; i++) {
        struct sg_param *p = &m->params[i];
        if (m->arena) {
            if (p->offset != off)
                return sgi_error(SG_ERR_ARG, "parameter '%s' is not where the arena says", p->name);
        }
        p->offset = off;
        /* keep each tensor 64-byte aligned */
        size_t padded = sgi_round16(p->count);
        if (!sgi_add(off, padded, &off)) return sgi_error(SG_ERR_LIMIT, "parameters overflow");
    }
    if (!m->arena) {
        m->arena_len = off;
        m->arena = sgi_alloc(off, sizeof(float));
        m->mask = sgi_alloc(off, 1);
        if (!m->arena || !m->mask) return SG_ERR_NOMEM;
        if (!init) return SG_OK;
        memset(m->arena, 0, (off ? off : 1) * sizeof(float));
        memset(m->mask, 1, off ? off : 1);
        for (int32_t i = 0; i < m->n_params; i++)
            if (m->params[i].kind == SG_PARAM_BN_GAMMA || m->params[i].kind == SG_PARAM_BN_VAR) {
                float *d = sg_param_data(m, i);
                for (size_t j = 0; j < m->params[i].count; j++) d[j] = 1.0f;
            }
    } else if (m->arena_len != off) {
        return sgi_error(SG_ERR_ARG, "arena holds %zu elements, parameters need %zu",
                         m->arena_len, off);
    }
    return SG_OK;
}

enum sg_status sg_model_finalize(struct sg_model *m) { return finalize(m, 1); }

enum sg_status sg_model_finalize_unfilled(struct sg_model *m) { return finalize(m, 0); }

void sg_model_apply_masks(struct sg_model *m) {
    for (size_t i = 0; i < m->arena_len; i++)
        if (!m->mask[i]) m->arena[i] = 0.0f;
}

void sg_model_count(const struct sg_model *m, size_t *weights, size_t *kept) {
    size_t w = 0, k = 0;
    for (int32_t i = 0; i < m->n_params; i++) {
        const struct sg_param *p = &m->params[i];
        if (p->kind != SG_PARAM_WEIGHT || p->layer == SG_LAYER_NONE) continue;
        w += p->count;
        const uint8_t *mk = m->mask + p->offset;
        const float *d = m->arena + p->offset;
        for (size_t j = 0; j < p->count; j++) k += mk[j] && d[j] != 0.0f;
    }
    if (weights) *weights = w;
    if (kept) *kept = k;
}

struct sg_wview sg_model_wview(struct sg_model *m, int32_t p) {
    const struct sg_param *pp = &m->params[p];
    struct sg_wview v = {pp->name, pp->dims[0], pp->dims[1], 1, 1, sg_param_data(m, p),
                         sg_param_mask(m, p), pp->layer == SG_LAYER_FC};
    if (pp->ndim == 4) {
        v.r = pp->dims[2];
        v.s = pp->dims[3];
    } else if (pp->ndim == 1) {
        v.c = 1;
    } else if (pp->ndim == 3) { /* conv1d-like: K x C x S */
        v.s = pp->dims[2];
    }
    return v;
}

int32_t sg_model_weight_params(const struct sg_model *m, int32_t *out) {
    int32_t n = 0;
    for (int32_t i = 0; i < m->n_params; i++)
        if (m->params[i].kind == SG_PARAM_WEIGHT && m->params[i].layer != SG_LAYER_NONE) {
            if (out) out[n] = i;
            n++;
        }
    return n;
}

int sg_model_runnable(const struct sg_model *m) { return m->n_nodes > 0 && m->output >= 0; }

const char *sg_meta_get(const struct sg_model *m, const char *key) {
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0) return m->meta[i].value;
    return NULL;
}

enum sg_status sg_meta_set(struct sg_model *m, const char *key, const char *fmt, ...) {
    if (strlen(key) >= sizeof m->meta[0].key)
        return sgi_error(SG_ERR_ARG, "metadata key '%s' is too long", key);
    int i;
    for (i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0) break;
    if (i == m->n_meta) {
        if (m->n_meta == SG_META_MAX)
            return sgi_error(SG_ERR_LIMIT, "more than %d metadata entries", SG_META_MAX);
        m->n_meta++;
        snprintf(m->meta[i].key, sizeof m->meta[i].key, "%s", key);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->meta[i].value, sizeof m->meta[i].value, fmt, ap);
    va_end(ap);
    return SG_OK;
}

enum sg_status sg_model_clone(const struct sg_model *m, struct sg_model **out) {
    *out = NULL;
    struct sg_model *c = malloc(sizeof *c);
    if (!c) return sgi_error(SG_ERR_NOMEM, "out of memory");
    *c = *m;
    c->ext = m->ext && m->ext_clone ? m->ext_clone(m->ext) : NULL;
    if (!c->ext) c->ext_free = NULL;
    c->nodes = m->n_nodes ? sgi_alloc((size_t)m->n_nodes, sizeof *c->nodes) : NULL;
    c->params = m->n_params ? sgi_alloc((size_t)m->n_params, sizeof *c->params) : NULL;
    c->arena = sgi_alloc(m->arena_len, sizeof(float));
    c->mask = sgi_alloc(m->arena_len, 1);
    if ((m->n_nodes && !c->nodes) || (m->n_params && !c->params) || !c->arena || !c->mask) {
        c->ext = NULL;
        sg_model_free(c);
        return SG_ERR_NOMEM;
    }
    c->cap_nodes = m->n_nodes;
    c->cap_params = m->n_params;
    if (m->n_nodes) memcpy(c->nodes, m->nodes, (size_t)m->n_nodes * sizeof *c->nodes);
    if (m->n_params) memcpy(c->params, m->params, (size_t)m->n_params * sizeof *c->params);
    memcpy(c->arena, m->arena, m->arena_len * sizeof(float));
    memcpy(c->mask, m->mask, m->arena_len);
    *out = c;
    return SG_OK;
}
