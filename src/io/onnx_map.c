/* ONNX graph -> sg_model. Two outcomes:
 *  - runnable: every node maps to our ops (docs/file-format.md lists the mapping);
 *  - weights only (n_nodes == 0): some op or attribute has no counterpart. Conv, Gemm
 *    and MatMul weights are still found through the node that reads them, so their
 *    layout and layer kind are known; the metadata key "unsupported_ops" (or
 *    "not_runnable" for other reasons) tells the user why the model cannot run.
 * Either way the original bytes stay in m->ext for export. */
#include "io/onnx.h"
#include "nn/model.h"

#define DEAD (-2) /* activation downstream of an op we cannot map */
#define MAX_SPATIAL 65536

struct mapper {
    struct sgi_onnx_graph *G;
    const char *what;
    struct sg_model *m;
    int weights_only;
    struct sgi_strmap act;   /* activation name -> node << 3 | rank, or DEAD */
    struct sgi_strmap uses;  /* tensor name -> number of readers (graph outputs count) */
    struct sgi_strmap alias; /* Identity output -> index of the Identity node */
    int32_t *const_param;    /* per constant: parameter made from it, -1 */
    int32_t *param_const;    /* per parameter: its constant */
    struct sgi_onnx_src *src;
    int32_t cap_src;
    int32_t *fusable;        /* per node: 1 = fc made from MatMul that may take a bias */
    int32_t cap_fusable;
    struct sgi_strmap padded; /* tensor -> index in pads: zero padding still to apply */
    int32_t (*pads)[4];      /* top, left, bottom, right */
    int32_t n_pads, cap_pads;
    int64_t batch;           /* static batch size of the graph input, -1 if symbolic */
    char unsup[400];         /* op types (with attributes) we lack, comma separated */
    char why[400];           /* first other reason the graph cannot run */
    enum sg_status hard;     /* status of an error that stops the import */
};

#define ACT(node, rank) ((int32_t)(node) << 3 | (rank))

/* ---- reasons ---- */
static void lack(struct mapper *mp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lack(struct mapper *mp, const char *fmt, ...) {
    char item[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    /* each op type once */
    const char *p = mp->unsup;
    const size_t n = strlen(item);
    while ((p = strstr(p, item)) != NULL) {
        if ((p == mp->unsup || p[-1] == ' ') && (p[n] == ',' || p[n] == 0)) return;
        p += n;
    }
    size_t len = strlen(mp->unsup);
    if (len + n + 8 >= sizeof mp->unsup) {
        if (!strstr(mp->unsup, "...")) snprintf(mp->unsup + len, sizeof mp->unsup - len, ", ...");
        return;
    }
    snprintf(mp->unsup + len, sizeof mp->unsup - len, "%s%s", len ? ", " : "", item);
}

static void cannot(struct mapper *mp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cannot(struct mapper *mp, const char *fmt, ...) {
    if (mp->why[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mp->why, sizeof mp->why, fmt, ap);
    va_end(ap);
}

/* ---- attributes ---- */
static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}
static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}
static float attr_f(const Onnx__NodeProto *n, const char *name, float def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}
/* Copies a string attribute into buf ("" when absent). */
static const char *attr_s(const Onnx__NodeProto *n, const char *name, char *buf, size_t cap) {
    const Onnx__AttributeProto *a = attr(n, name);
    buf[0] = 0;
    if (a && a->has_s) {
        size_t len = a->s.len < cap - 1 ? a->s.len : cap - 1;
        memcpy(buf, a->s.data, len);
        buf[len] = 0;
    }
    return buf;
}
/* Number of ints (0 when absent), -1 when more than max. */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max) {
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->n_ints) return 0;
    if (a->n_ints > (size_t)max) return -1;
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

static const char *node_name(const Onnx__NodeProto *n) {
    if (n->name && *n->name) return n->name;
    if (n->n_output && n->output[0] && *n->output[0]) return n->output[0];
    return n->op_type ? n->op_type : "?";
}

/* ---- tensors ---- */
/* Follows Identity nodes back to the tensor they copy. */
static const char *resolve(const struct mapper *mp, const char *name) {
    for (int depth = 0; depth < 64 && name && *name; depth++) {
        int32_t i = sgi_strmap_get(&mp->alias, name);
        if (i < 0) break;
        name = mp->G->g->node[i]->input[0];
    }
    return name;
}
static int32_t find_const(const struct mapper *mp, const char *name) {
    return sgi_onnx_const_find(mp->G, resolve(mp, name));
}
static int has_input(const Onnx__NodeProto *n, size_t i) {
    return i < n->n_input && n->input[i] && *n->input[i];
}

/* Activation read by a node: 0 and *node, *rank set; 1 when dead; -1 when nothing
 * produces it (reason recorded). */
static int get_act_pad(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                       int *rank, int32_t *pad) {
    const char *name = i < n->n_input ? n->input[i] : NULL;
    int32_t v = name ? sgi_strmap_get(&mp->act, name) : -1;
    if (v == DEAD) return 1;
    const int32_t pi = name && v >= 0 ? sgi_strmap_get(&mp->padded, name) : -1;
    if (pad) memset(pad, 0, 4 * sizeof *pad);
    if (pi >= 0) {
        if (!pad) { /* only Conv and AveragePool can absorb a Pad */
            lack(mp, "Pad(before %s)", n->op_type);
            return 1;
        }
        memcpy(pad, mp->pads[pi], 4 * sizeof *pad);
    }
    if (v < 0) {
        if (name && find_const(mp, name) >= 0)
            lack(mp, "%s(constant input)", n->op_type);
        else
            cannot(mp, "node '%s' reads tensor '%s' that no earlier node produces", node_name(n),
                   name ? name : "");
        return -1;
    }
    *node = v >> 3;
    *rank = v & 7;
    return 0;
}

static int get_act(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                   int *rank) {
    return get_act_pad(mp, n, i, node, rank, NULL);
}

static int set_outputs(struct mapper *mp, const Onnx__NodeProto *n, int32_t v) {
    for (size_t i = 0; i < n->n_output; i++)
        if (n->output[i] && *n->output[i])
            if (!sgi_strmap_put(&mp->act, n->output[i], i == 0 ? v : DEAD)) return 0;
    return 1;
}

/* ---- parameters ---- */
static int32_t new_param(struct mapper *mp, int32_t ci, enum sg_param_kind kind,
                         enum sg_layer_kind layer, int32_t node, int ndim, const int64_t *dims,
                         int transpose, float scale) {
    struct sg_model *m = mp->m;
    const struct sgi_onnx_const *c = &mp->G->consts[ci];
    char name[SG_NAME_MAX];
    if (strlen(c->name) < SG_NAME_MAX && mp->const_param[ci] < 0)
        snprintf(name, sizeof name, "%s", c->name);
    else
        snprintf(name, sizeof name, "%.80s~%d", c->name, m->n_params);
    int32_t p = sg_model_add_param(m, name, kind, layer, node, ndim, dims);
    if (p < 0) return -1;
    if (p >= mp->cap_src) {
        int32_t cap = mp->cap_src ? mp->cap_src * 2 : 64;
        struct sgi_onnx_src *s = realloc(mp->src, (size_t)cap * sizeof *s);
        int32_t *pc = realloc(mp->param_const, (size_t)cap * sizeof *pc);
        if (s) {
            memset(s + mp->cap_src, 0, (size_t)(cap - mp->cap_src) * sizeof *s);
            mp->src = s;
        }
        if (pc) mp->param_const = pc;
        if (!s || !pc) {
            sgi_error(SG_ERR_NOMEM, "out of memory");
            return -1;
        }
        mp->cap_src = cap;
    }
    mp->src[p].tensor = strdup(c->name);
    mp->src[p].transpose = transpose;
    mp->src[p].scale = scale;
    mp->param_const[p] = ci;
    mp->const_param[ci] = p;
    if (!mp->src[p].tensor) {
        sgi_error(SG_ERR_NOMEM, "out of memory");
        return -1;
    }
    return p;
}

/* A float constant of a known element count for a node of the runnable graph. */
static int want_const(struct mapper *mp, const Onnx__NodeProto *n, size_t i, const char *role,
                      int32_t *ci) {
    *ci = has_input(n, i) ? find_const(mp, n->input[i]) : -1;
    if (*ci < 0) {
        lack(mp, "%s(non-constant %s)", n->op_type, role);
        return 0;
    }
    const struct sgi_onnx_const *c = &mp->G->consts[*ci];
    if (!c->is_float) {
        mp->hard = SG_ERR_UNSUPPORTED;
        sgi_error(SG_ERR_UNSUPPORTED,
                  "%s: %s '%s' of node '%s' (%s) is %s without a DequantizeLinear (scale and zero "
                  "point): not supported",
                  mp->what, role, c->name, node_name(n), n->op_type,
                  sgi_onnx_dtype_name(c->t->data_type));
        return -1;
    }
    /* a tensor read by several nodes (exporters deduplicate equal initializers) gives
     * each node its own copy; export checks that the copies still agree */
    return 1;
}

/* ---- spatial attributes of Conv and pools ---- */
struct win {
    int64_t k[2], s[2], d[2], p0[2], p1[2]; /* per spatial axis: kernel, stride, dilation, pads */
};

/* sp spatial axes (1 or 2); in[] their input extents; kdef the kernel from the weight
 * (NULL: kernel_shape is required). Returns 1, or 0 with the problem recorded. */
static int window(struct mapper *mp, const Onnx__NodeProto *n, int sp, const int64_t *in,
                  const int64_t *kdef, int dilations_ok, struct win *w) {
    int64_t v[4];
    int cnt;
    for (int i = 0; i < 2; i++) w->k[i] = w->s[i] = w->d[i] = 1, w->p0[i] = w->p1[i] = 0;
    cnt = attr_ints(n, "kernel_shape", v, 2);
    if (cnt == sp) {
        for (int i = 0; i < sp; i++) w->k[i] = v[i];
        if (kdef)
            for (int i = 0; i < sp; i++)
                if (v[i] != kdef[i]) {
                    cannot(mp, "node '%s': kernel_shape does not match the weight", node_name(n));
                    return 0;
                }
    } else if (cnt == 0 && kdef) {
        for (int i = 0; i < sp; i++) w->k[i] = kdef[i];
    } else {
        cannot(mp, "node '%s': kernel_shape has %d values for %d spatial axes", node_name(n), cnt,
               sp);
        return 0;
    }
    if ((cnt = attr_ints(n, "strides", v, 2)) != 0) {
        if (cnt != sp) return cannot(mp, "node '%s': bad strides", node_name(n)), 0;
        for (int i = 0; i < sp; i++) w->s[i] = v[i];
    }
    if ((cnt = attr_ints(n, "dilations", v, 2)) != 0) {
        if (cnt != sp) return cannot(mp, "node '%s': bad dilations", node_name(n)), 0;
        for (int i = 0; i < sp; i++) {
            w->d[i] = v[i];
            if (v[i] != 1 && !dilations_ok) {
                lack(mp, "%s(dilations)", n->op_type);
                return 0;
            }
        }
    }
    if ((cnt = attr_ints(n, "pads", v, 4)) != 0) {
        if (cnt != 2 * sp) return cannot(mp, "node '%s': bad pads", node_name(n)), 0;
        for (int i = 0; i < sp; i++) w->p0[i] = v[i], w->p1[i] = v[sp + i];
    }
    for (int i = 0; i < sp; i++)
        if (w->k[i] < 1 || w->k[i] > MAX_SPATIAL || w->s[i] < 1 || w->s[i] > MAX_SPATIAL ||
            w->d[i] < 1 || w->d[i] > MAX_SPATIAL || w->p0[i] < 0 || w->p0[i] > MAX_SPATIAL ||
            w->p1[i] < 0 || w->p1[i] > MAX_SPATIAL) {
            cannot(mp, "node '%s': kernel, stride, dilation or pad out of range", node_name(n));
            return 0;
        }
    char ap[32];
    attr_s(n, "auto_pad", ap, sizeof ap);
    if (strcmp(ap, "VALID") == 0) {
        for (int i = 0; i < sp; i++) w->p0[i] = w->p1[i] = 0;
    } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        /* output = ceil(in / stride); the odd pad goes at the end (UPPER) or start (LOWER) */
        for (int i = 0; i < sp; i++) {
            int64_t out = (in[i] + w->s[i] - 1) / w->s[i];
            int64_t total = (out - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - in[i];
            if (total < 0) total = 0;
            w->p0[i] = ap[5] == 'U' ? total / 2 : total - total / 2;
            w->p1[i] = total - w->p0[i];
        }
    } else if (ap[0] && strcmp(ap, "NOTSET") != 0) {
        cannot(mp, "node '%s': unknown auto_pad '%s'", node_name(n), ap);
        return 0;
    }
    if (sp == 1) { /* 1-D: the single axis is our width */
        w->k[1] = w->k[0], w->s[1] = w->s[0], w->d[1] = w->d[0];
        w->p0[1] = w->p0[0], w->p1[1] = w->p1[0];
        w->k[0] = w->s[0] = w->d[0] = 1, w->p0[0] = w->p1[0] = 0;
    }
    return 1;
}

static void set_window(struct sg_node *nd, const struct win *w) {
    nd->kh = (int32_t)w->k[0], nd->kw = (int32_t)w->k[1];
    nd->sh = (int32_t)w->s[0], nd->sw = (int32_t)w->s[1];
    nd->dh = (int32_t)w->d[0], nd->dw = (int32_t)w->d[1];
    nd->pt = (int32_t)w->p0[0], nd->pl = (int32_t)w->p0[1];
    nd->pb = (int32_t)w->p1[0], nd->pr = (int32_t)w->p1[1];
}

/* Output extent, as sg_model_finalize computes it (0 when the window does not fit). */
static int32_t extent(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d,
                      int ceil_mode) {
    int64_t span = d * (k - 1) + 1, avail = in + p0 + p1 - span;
    if (avail < 0) return 0;
    int64_t o = ceil_mode ? (avail + s - 1) / s + 1 : avail / s + 1;
    if (ceil_mode && (o - 1) * s >= in + p0) o--;
    return (int32_t)o;
}

/* Appends a node whose output shape we track as we go (finalize checks it again). */
static int32_t add_node(struct mapper *mp, struct sg_node *nd, int rank, const Onnx__NodeProto *n) {
    struct sg_model *m = mp->m;
    const struct sg_node *x = &m->nodes[nd->in[0]];
    nd->c = x->c, nd->h = x->h, nd->w = x->w;
    switch (nd->op) {
    case SG_OP_CONV:
        nd->c = nd->k;
        nd->h = extent(x->h, nd->kh, nd->sh, nd->pt, nd->pb, nd->dh, 0);
        nd->w = extent(x->w, nd->kw, nd->sw, nd->pl, nd->pr, nd->dw, 0);
        break;
    case SG_OP_MAXPOOL:
    case SG_OP_AVGPOOL:
        nd->h = extent(x->h, nd->kh, nd->sh, nd->pt, nd->pb, 1, nd->ceil_mode);
        nd->w = extent(x->w, nd->kw, nd->sw, nd->pl, nd->pr, 1, nd->ceil_mode);
        break;
    case SG_OP_GAP: nd->h = nd->w = 1; break;
    case SG_OP_FLATTEN: nd->c = x->c * x->h * x->w, nd->h = nd->w = 1; break;
    case SG_OP_FC: nd->c = nd->k, nd->h = nd->w = 1; break;
    case SG_OP_CONCAT:
        for (int i = 1; i < nd->n_in; i++) nd->c += m->nodes[nd->in[i]].c;
        break;
    default: break;
    }
    if (nd->h <= 0 || nd->w <= 0) {
        cannot(mp, "node '%s': window larger than its %dx%d input", nd->name, x->h, x->w);
        return -1;
    }
    int32_t i = sg_model_add(m, nd);
    if (i < 0) return -1;
    if (i >= mp->cap_fusable) {
        int32_t cap = mp->cap_fusable ? mp->cap_fusable * 2 : 64;
        int32_t *f = realloc(mp->fusable, (size_t)cap * sizeof *f);
        if (!f) return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
        memset(f + mp->cap_fusable, 0, (size_t)(cap - mp->cap_fusable) * sizeof *f);
        mp->fusable = f;
        mp->cap_fusable = cap;
    }
    if (!set_outputs(mp, n, ACT(i, rank))) return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
    return i;
}

static void init_node(struct sg_node *nd, enum sg_op op, const Onnx__NodeProto *n, int32_t index,
                      int32_t x) {
    char name[SG_NAME_MAX];
    const char *nm = n->name && *n->name ? n->name : NULL;
    if (nm && strlen(nm) < SG_NAME_MAX) snprintf(name, sizeof name, "%s", nm);
    else if (nm) snprintf(name, sizeof name, "%.80s~%d", nm, index);
    else snprintf(name, sizeof name, "%.60s_%d", n->op_type, index);
    sg_node_init(nd, op, name);
    nd->n_in = 1;
    nd->in[0] = x;
}

/* Flatten/Reshape-as-flatten: a no-op on a [C][1][1] input (only the rank changes). */
static int flatten(struct mapper *mp, const Onnx__NodeProto *n, int32_t x, int32_t index) {
    const struct sg_node *xn = &mp->m->nodes[x];
    if (xn->h == 1 && xn->w == 1) {
        if (!set_outputs(mp, n, ACT(x, 2))) return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
        return 0;
    }
    struct sg_node nd;
    init_node(&nd, SG_OP_FLATTEN, n, index, x);
    return add_node(mp, &nd, 2, n) < 0 ? -1 : 0;
}

/* Maps node i. Returns -1 on a hard error (error text set), 0 otherwise: a node we
 * cannot map records why and marks its outputs DEAD. */
static int map_node(struct mapper *mp, int32_t i) {
    const Onnx__NodeProto *n = mp->G->g->node[i];
    struct sg_model *m = mp->m;
    const char *op = n->op_type ? n->op_type : "";
    int32_t x = -1, ci = -1;
    int rank = 0, r;
    struct sg_node nd;
    struct win w;
#define DEAD_OUT() (set_outputs(mp, n, DEAD) ? 0 : (sgi_error(SG_ERR_NOMEM, "out of memory"), -1))
#define NEED_X()                                                                               \
    do {                                                                                       \
        if (get_act(mp, n, 0, &x, &rank) != 0) return DEAD_OUT();                              \
    } while (0)
#define WANT(idx, role)                                                                        \
    do {                                                                                       \
        int ok_ = want_const(mp, n, idx, role, &ci);                                           \
        if (ok_ < 0) return -1;                                                                \
        if (ok_ == 0) return DEAD_OUT();                                                       \
    } while (0)

    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0) {
        lack(mp, "%s:%s", n->domain, op);
        return DEAD_OUT();
    }
    if (strcmp(op, "Constant") == 0 || strcmp(op, "DequantizeLinear") == 0) {
        if (n->n_output && sgi_onnx_const_find(mp->G, n->output[0]) >= 0) return 0;
        if (strcmp(op, "Constant") == 0) return DEAD_OUT(); /* value_ints etc.: not a weight */
        lack(mp, "%s", op);
        return DEAD_OUT();
    }
    if (strcmp(op, "Identity") == 0) {
        if (!has_input(n, 0) || n->n_output < 1) return DEAD_OUT();
        if (find_const(mp, n->input[0]) >= 0) return 0; /* resolved through mp->alias */
        NEED_X();
        return set_outputs(mp, n, ACT(x, rank)) ? 0 : -1;
    }
    if (strcmp(op, "Conv") == 0) {
        int32_t pad[4];
        if (get_act_pad(mp, n, 0, &x, &rank, pad) != 0) return DEAD_OUT();
        if (rank < 3 || rank > 4) {
            lack(mp, "Conv(%dD)", rank - 2);
            return DEAD_OUT();
        }
        WANT(1, "weight");
        const struct sgi_onnx_const *wc = &mp->G->consts[ci];
        const int32_t wci = ci;
        if (wc->rank != rank) {
            cannot(mp, "node '%s': weight '%s' has rank %d, input rank %d", node_name(n), wc->name,
                   wc->rank, rank);
            return DEAD_OUT();
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
        if (!window(mp, n, rank - 2, in, wc->dims + 2, 1, &w)) return DEAD_OUT();
        w.p0[0] += pad[0], w.p0[1] += pad[1], w.p1[0] += pad[2], w.p1[1] += pad[3];
        int64_t g = attr_i(n, "group", 1);
        if (g < 1 || g > wc->dims[0] || wc->dims[0] > (1 << 24) || wc->dims[1] > (1 << 24)) {
            cannot(mp, "node '%s': group %lld with %lld filters", node_name(n), (long long)g,
                   (long long)wc->dims[0]);
            return DEAD_OUT();
        }
        int32_t bci = -1;
        if (has_input(n, 2)) {
            WANT(2, "bias");
            bci = ci;
            if (mp->G->consts[bci].count != (size_t)wc->dims[0]) {
                cannot(mp, "node '%s': bias has %zu values for %lld filters", node_name(n),
                       mp->G->consts[bci].count, (long long)wc->dims[0]);
                return DEAD_OUT();
            }
        }
        init_node(&nd, SG_OP_CONV, n, i, x);
        nd.k = (int32_t)wc->dims[0];
        set_window(&nd, &w);
        nd.groups = (int32_t)g;
        nd.has_bias = bci >= 0;
        int32_t ni = add_node(mp, &nd, rank, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        const int64_t d[4] = {wc->dims[0], wc->dims[1], w.k[0], w.k[1]};
        int32_t p = new_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_CONV, ni, 4, d, 0, 1.0f);
        if (p < 0) return -1;
        m->nodes[ni].param[0] = p;
        if (bci >= 0) {
            const int64_t b[1] = {d[0]};
            if ((p = new_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, b, 0, 1.0f)) < 0)
                return -1;
            m->nodes[ni].param[1] = p;
        }
        return 0;
    }
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0) {
        const int gemm = op[0] == 'G';
        if (gemm && attr_i(n, "transA", 0)) {
            lack(mp, "Gemm(transA=1)");
            return DEAD_OUT();
        }
        NEED_X();
        const struct sg_node *xn = &m->nodes[x];
        if (rank != 2 && !(xn->h == 1 && xn->w == 1)) {
            lack(mp, "%s(%dD input)", op, rank);
            return DEAD_OUT();
        }
        WANT(1, "weight");
        const struct sgi_onnx_const *bc = &mp->G->consts[ci];
        const int32_t wci = ci;
        if (bc->rank != 2) {
            lack(mp, "%s(%dD weight)", op, bc->rank);
            return DEAD_OUT();
        }
        const int transb = gemm && attr_i(n, "transB", 0);
        const int64_t kk = transb ? bc->dims[0] : bc->dims[1], cc = transb ? bc->dims[1] : bc->dims[0];
        const float alpha = gemm ? attr_f(n, "alpha", 1.0f) : 1.0f;
        const float beta = gemm ? attr_f(n, "beta", 1.0f) : 1.0f;
        int32_t bci = -1;
        if (gemm && has_input(n, 2) && beta != 0.0f) {
            WANT(2, "bias");
            bci = ci;
            const struct sgi_onnx_const *cb = &mp->G->consts[bci];
            int vec = cb->count == 1 || (cb->count == (size_t)kk &&
                                         (cb->rank == 1 || (cb->rank == 2 && cb->dims[0] == 1)));
            if (!vec) {
                lack(mp, "Gemm(matrix C)");
                return DEAD_OUT();
            }
        }
        if (kk < 1 || kk > (1 << 24) || cc < 1) {
            cannot(mp, "node '%s': weight of shape %lldx%lld", node_name(n),
                   (long long)bc->dims[0], (long long)bc->dims[1]);
            return DEAD_OUT();
        }
        init_node(&nd, SG_OP_FC, n, i, x);
        nd.k = (int32_t)kk;
        nd.has_bias = bci >= 0;
        int32_t ni = add_node(mp, &nd, 2, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        const int64_t d[2] = {kk, cc};
        int32_t p = new_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_FC, ni, 2, d, !transb, alpha);
        if (p < 0) return -1;
        m->nodes[ni].param[0] = p;
        if (bci >= 0) {
            const int64_t b[1] = {kk};
            if ((p = new_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, b, 0, beta)) < 0)
                return -1;
            m->nodes[ni].param[1] = p;
        }
        /* MatMul + Add(constant [K]) is how some exporters write a biased linear layer */
        mp->fusable[ni] = !gemm && n->n_output == 1 && sgi_strmap_get(&mp->uses, n->output[0]) == 1;
        return 0;
    }
    if (strcmp(op, "Relu") == 0 || strcmp(op, "GlobalAveragePool") == 0) {
        NEED_X();
        const int gap = op[0] == 'G';
        if (gap && rank < 3) {
            cannot(mp, "node '%s': GlobalAveragePool of a %dD tensor", node_name(n), rank);
            return DEAD_OUT();
        }
        init_node(&nd, gap ? SG_OP_GAP : SG_OP_RELU, n, i, x);
        return add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0) {
        const int maxp = op[0] == 'M';
        if (maxp && n->n_output > 1 && n->output[1] && *n->output[1]) {
            lack(mp, "MaxPool(Indices output)");
            return DEAD_OUT();
        }
        int32_t pad[4];
        if (get_act_pad(mp, n, 0, &x, &rank, maxp ? NULL : pad) != 0) return DEAD_OUT();
        if (rank < 3 || rank > 4) {
            lack(mp, "%s(%dD)", op, rank - 2);
            return DEAD_OUT();
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
        if (!window(mp, n, rank - 2, in, NULL, 0, &w)) return DEAD_OUT();
        init_node(&nd, maxp ? SG_OP_MAXPOOL : SG_OP_AVGPOOL, n, i, x);
        set_window(&nd, &w);
        nd.ceil_mode = attr_i(n, "ceil_mode", 0) != 0;
        if (!maxp) nd.count_include_pad = attr_i(n, "count_include_pad", 0) != 0;
        if (!maxp && (pad[0] | pad[1] | pad[2] | pad[3])) {
            /* explicit zeros count in the average: fold them as counted padding */
            const int own = nd.pt | nd.pl | nd.pb | nd.pr;
            if (nd.ceil_mode || (own && !nd.count_include_pad)) {
                lack(mp, "Pad(before AveragePool)");
                return DEAD_OUT();
            }
            nd.pt += pad[0], nd.pl += pad[1], nd.pb += pad[2], nd.pr += pad[3];
            nd.count_include_pad = 1;
        }
        if (nd.pt >= nd.kh || nd.pb >= nd.kh || nd.pl >= nd.kw || nd.pr >= nd.kw) {
            lack(mp, "%s(pads >= kernel)", op);
            return DEAD_OUT();
        }
        return add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "BatchNormalization") == 0) {
        if (attr_i(n, "training_mode", 0) || attr_i(n, "spatial", 1) == 0) {
            lack(mp, "BatchNormalization(training_mode)");
            return DEAD_OUT();
        }
        for (size_t o = 1; o < n->n_output; o++)
            if (n->output[o] && *n->output[o]) {
                lack(mp, "BatchNormalization(training outputs)");
                return DEAD_OUT();
            }
        NEED_X();
        int32_t cis[4];
        static const char *const roles[4] = {"scale", "B", "mean", "var"};
        for (int t = 0; t < 4; t++) {
            WANT((size_t)t + 1, roles[t]);
            cis[t] = ci;
            if (mp->G->consts[ci].count != (size_t)m->nodes[x].c) {
                cannot(mp, "node '%s': %s has %zu values for %d channels", node_name(n), roles[t],
                       mp->G->consts[ci].count, m->nodes[x].c);
                return DEAD_OUT();
            }
            for (int u = 0; u < t; u++)
                if (cis[u] == ci) {
                    cannot(mp, "node '%s' reads tensor '%s' twice", node_name(n),
                           mp->G->consts[ci].name);
                    return DEAD_OUT();
                }
        }
        init_node(&nd, SG_OP_BN, n, i, x);
        nd.eps = attr_f(n, "epsilon", 1e-5f);
        /* ONNX: running = momentum * running + (1 - momentum) * batch; ours is the
         * PyTorch convention, the weight of the batch statistic */
        nd.momentum = 1.0f - attr_f(n, "momentum", 0.9f);
        int32_t ni = add_node(mp, &nd, rank, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        for (int t = 0; t < 4; t++) {
            const int64_t d[1] = {m->nodes[x].c};
            int32_t p = new_param(mp, cis[t], (enum sg_param_kind)(SG_PARAM_BN_GAMMA + t),
                                  SG_LAYER_NONE, ni, 1, d, 0, 1.0f);
            if (p < 0) return -1;
            m->nodes[ni].param[t] = p;
        }
        return 0;
    }
    if (strcmp(op, "Add") == 0 || strcmp(op, "Sum") == 0 || strcmp(op, "Concat") == 0) {
        const int concat = op[0] == 'C';
        if (n->n_input < 1 || n->n_input > SG_MAX_INPUTS) {
            lack(mp, "%s(%zu inputs)", op, n->n_input);
            return DEAD_OUT();
        }
        /* MatMul output + constant bias */
        if (!concat && n->n_input == 2) {
            for (int side = 0; side < 2; side++) {
                int32_t v = sgi_strmap_get(&mp->act, n->input[side]);
                int32_t bc = find_const(mp, n->input[1 - side]);
                if (v < 0 || bc < 0) continue;
                int32_t fc = v >> 3;
                const struct sgi_onnx_const *c = &mp->G->consts[bc];
                if (fc >= mp->cap_fusable || !mp->fusable[fc] || c->count != (size_t)m->nodes[fc].k || !c->is_float ||
                    mp->const_param[bc] >= 0 || c->rank > 2 || (c->rank == 2 && c->dims[0] != 1))
                    continue;
                const int64_t d[1] = {m->nodes[fc].k};
                int32_t p = new_param(mp, bc, SG_PARAM_BIAS, SG_LAYER_NONE, fc, 1, d, 0, 1.0f);
                if (p < 0) return -1;
                m->nodes[fc].param[1] = p;
                m->nodes[fc].has_bias = 1;
                mp->fusable[fc] = 0;
                return set_outputs(mp, n, v) ? 0 : -1;
            }
        }
        int32_t ins[SG_MAX_INPUTS];
        int r0 = 0;
        for (size_t t = 0; t < n->n_input; t++) {
            if ((r = get_act(mp, n, t, &ins[t], &rank)) != 0) return DEAD_OUT();
            if (t == 0) r0 = rank;
            else if (rank != r0) {
                lack(mp, "%s(broadcast)", op);
                return DEAD_OUT();
            }
        }
        if (concat) {
            int64_t axis = attr_i(n, "axis", 1);
            if (axis < 0) axis += r0;
            if (axis != 1) {
                lack(mp, "Concat(axis=%lld)", (long long)axis);
                return DEAD_OUT();
            }
        }
        if (n->n_input == 1) return set_outputs(mp, n, ACT(ins[0], r0)) ? 0 : -1;
        init_node(&nd, concat ? SG_OP_CONCAT : SG_OP_ADD, n, i, ins[0]);
        nd.n_in = (int32_t)n->n_input;
        for (size_t t = 0; t < n->n_input; t++) nd.in[t] = ins[t];
        return add_node(mp, &nd, r0, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "Pad") == 0) {
        NEED_X();
        char mode[32];
        attr_s(n, "mode", mode, sizeof mode);
        if (mode[0] && strcmp(mode, "constant") != 0) {
            lack(mp, "Pad(mode=%s)", mode);
            return DEAD_OUT();
        }
        int64_t pv[8];
        size_t np = 0;
        float value = 0.0f;
        if (mp->G->opset < 11) {
            int cnt = attr_ints(n, "pads", pv, 8);
            np = cnt < 0 ? 9 : (size_t)cnt;
            value = attr_f(n, "value", 0.0f);
        } else {
            int32_t pc = has_input(n, 1) ? find_const(mp, n->input[1]) : -1;
            if (pc < 0 || sgi_onnx_const_ints(mp->G, pc, pv, 8, &np) != SG_OK || has_input(n, 3)) {
                lack(mp, "Pad(non-constant pads)");
                return DEAD_OUT();
            }
            if (has_input(n, 2)) {
                int32_t vc = find_const(mp, n->input[2]);
                if (vc < 0 || mp->G->consts[vc].count != 1 || !mp->G->consts[vc].is_float ||
                    sgi_onnx_const_float(mp->G, vc, &value) != SG_OK)
                    value = 1.0f;
            }
        }
        if (np != 2 * (size_t)rank || value != 0.0f || rank < 3) {
            lack(mp, "Pad(non-zero value or not spatial)");
            return DEAD_OUT();
        }
        int32_t pad[4] = {0, 0, 0, 0}; /* top, left, bottom, right */
        for (int d = 0; d < rank; d++) {
            const int64_t a = pv[d], b = pv[rank + d];
            if (a < 0 || b < 0 || a > MAX_SPATIAL || b > MAX_SPATIAL || (d < 2 && (a || b))) {
                lack(mp, "Pad(negative, batch or channel)");
                return DEAD_OUT();
            }
            if (d == rank - 1) pad[1] = (int32_t)a, pad[3] = (int32_t)b;
            else if (d == 2) pad[0] = (int32_t)a, pad[2] = (int32_t)b;
        }
        if (!set_outputs(mp, n, ACT(x, rank))) return -1;
        if (!(pad[0] | pad[1] | pad[2] | pad[3])) return 0;
        if (mp->n_pads == mp->cap_pads) {
            int32_t cap = mp->cap_pads ? mp->cap_pads * 2 : 16;
            int32_t(*pp)[4] = realloc(mp->pads, (size_t)cap * sizeof *pp);
            if (!pp) return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
            mp->pads = pp;
            mp->cap_pads = cap;
        }
        memcpy(mp->pads[mp->n_pads], pad, sizeof pad);
        return sgi_strmap_put(&mp->padded, n->output[0], mp->n_pads++) ? 0 : -1;
    }
    if (strcmp(op, "Flatten") == 0) {
        NEED_X();
        int64_t axis = attr_i(n, "axis", 1);
        if (axis < 0) axis += rank;
        if (axis != 1) {
            lack(mp, "Flatten(axis=%lld)", (long long)axis);
            return DEAD_OUT();
        }
        return flatten(mp, n, x, i) < 0 ? -1 : 0;
    }
    if (strcmp(op, "Reshape") == 0) {
        NEED_X();
        int64_t shape[8];
        size_t ns = 0;
        if (mp->G->opset < 5) {
            int cnt = attr_ints(n, "shape", shape, 8);
            ns = cnt < 0 ? 9 : (size_t)cnt;
        } else {
            int32_t sc = has_input(n, 1) ? find_const(mp, n->input[1]) : -1;
            if (sc < 0) {
                lack(mp, "Reshape(non-constant shape)");
                return DEAD_OUT();
            }
            if (sgi_onnx_const_ints(mp->G, sc, shape, 8, &ns) != SG_OK) ns = 9;
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t chw = (int64_t)xn->c * xn->h * xn->w;
        const int allowzero = attr_i(n, "allowzero", 0) != 0;
        int ok = ns == 2 && (shape[1] == chw || (shape[1] == -1 && shape[0] != -1)) &&
                 ((shape[0] == 0 && !allowzero) || shape[0] == -1 ||
                  (mp->batch > 0 && shape[0] == mp->batch));
        if (!ok) {
            lack(mp, "Reshape(not a flatten)");
            return DEAD_OUT();
        }
        return flatten(mp, n, x, i) < 0 ? -1 : 0;
    }
    if (strcmp(op, "Dropout") == 0) {
        if (n->n_output > 1 && n->output[1] && *n->output[1] &&
            sgi_strmap_get(&mp->uses, n->output[1]) > 0) {
            lack(mp, "Dropout(mask output)");
            return DEAD_OUT();
        }
        NEED_X();
        float p = 0.5f;
        if (mp->G->opset < 12) {
            p = attr_f(n, "ratio", 0.5f);
        } else if (has_input(n, 1)) {
            int32_t rc = find_const(mp, n->input[1]);
            if (rc < 0 || mp->G->consts[rc].count != 1 || !mp->G->consts[rc].is_float) {
                lack(mp, "Dropout(non-constant ratio)");
                return DEAD_OUT();
            }
            if (sgi_onnx_const_float(mp->G, rc, &p) != SG_OK) return -1;
        }
        if (has_input(n, 2)) {
            int32_t tc = find_const(mp, n->input[2]);
            int64_t tm;
            if (tc < 0 || mp->G->consts[tc].t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ||
                mp->G->consts[tc].count != 1) {
                lack(mp, "Dropout(training_mode)");
                return DEAD_OUT();
            }
            const Onnx__TensorProto *t = mp->G->consts[tc].t;
            tm = t->has_raw_data ? t->raw_data.data[0] : t->int32_data[0];
            if (tm) {
                lack(mp, "Dropout(training_mode)");
                return DEAD_OUT();
            }
        }
        if (!(p >= 0 && p < 1)) {
            cannot(mp, "node '%s': dropout ratio %g", node_name(n), p);
            return DEAD_OUT();
        }
        init_node(&nd, SG_OP_DROPOUT, n, i, x);
        nd.p = p;
        return add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "Softmax") == 0) {
        NEED_X();
        int64_t axis = attr_i(n, "axis", mp->G->opset < 13 ? 1 : -1);
        if (axis < 0) axis += rank;
        const struct sg_node *xn = &m->nodes[x];
        if (axis != 1 || !(rank == 2 || (xn->h == 1 && xn->w == 1))) {
            lack(mp, "Softmax(axis=%lld of %dD)", (long long)axis, rank);
            return DEAD_OUT();
        }
        init_node(&nd, SG_OP_SOFTMAX, n, i, x);
        return add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    lack(mp, "%s", op[0] ? op : "(no op type)");
    return DEAD_OUT();
#undef NEED_X
#undef WANT
#undef DEAD_OUT
}

/* The graph's data input: the one graph input without an initializer. */
static int map_input(struct mapper *mp) {
    const Onnx__GraphProto *g = mp->G->g;
    const Onnx__ValueInfoProto *in = NULL;
    int n_data = 0;
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && sgi_onnx_const_find(mp->G, g->input[i]->name) < 0) {
            if (!in) in = g->input[i];
            n_data++;
        }
    if (n_data != 1) {
        cannot(mp, "the graph has %d data inputs (sparsegrain models have one)", n_data);
        return 0;
    }
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape ||
        tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        cannot(mp, "input '%s' is not a float32 tensor of known rank", in->name);
        return 0;
    }
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    int64_t d[4] = {0, 1, 1, 1};
    const int rank = (int)sh->n_dim;
    if (rank < 2 || rank > 4) {
        cannot(mp, "input '%s' has rank %d (sparsegrain takes N x C [x H] x W)", in->name, rank);
        return 0;
    }
    for (int i = 0; i < rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[i];
        int64_t v = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? dm->dim_value : -1;
        if (i == 0) {
            mp->batch = v > 0 ? v : -1;
            continue;
        }
        if (v <= 0 || v > (1 << 24)) {
            cannot(mp, "input '%s': dimension %d is not a fixed size", in->name, i);
            return 0;
        }
        d[i] = v;
    }
    /* [N][C] -> C x 1 x 1; [N][C][L] -> C x 1 x L */
    struct sg_model *m = mp->m;
    m->in_c = (int32_t)d[1];
    m->in_h = rank == 4 ? (int32_t)d[2] : 1;
    m->in_w = rank == 4 ? (int32_t)d[3] : rank == 3 ? (int32_t)d[2] : 1;
    if ((int64_t)m->in_c * m->in_h * m->in_w > (1 << 28)) {
        cannot(mp, "input '%s' is too large", in->name);
        return 0;
    }
    struct sg_node nd;
    char name[SG_NAME_MAX];
    snprintf(name, sizeof name, "%.*s", SG_NAME_MAX - 1, in->name);
    sg_node_init(&nd, SG_OP_INPUT, name);
    nd.c = m->in_c, nd.h = m->in_h, nd.w = m->in_w;
    if (sg_model_add(m, &nd) < 0) return -1;
    if (!sgi_strmap_put(&mp->act, in->name, ACT(0, rank))) return -1;
    return 1;
}

/* ---- weights only ---- */
static int is_mask_of_const(const struct mapper *mp, const char *name) {
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 5, ".mask") != 0) return 0;
    char base[512];
    if (n - 5 >= sizeof base) return 0;
    memcpy(base, name, n - 5);
    base[n - 5] = 0;
    return sgi_onnx_const_find(mp->G, base) >= 0;
}

static enum sg_status weights_only(struct mapper *mp) {
    const Onnx__GraphProto *g = mp->G->g;
    struct sg_model *m = mp->m;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        const char *op = n->op_type ? n->op_type : "";
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0) continue;
        const int conv = strcmp(op, "Conv") == 0, gemm = strcmp(op, "Gemm") == 0;
        const int matmul = strcmp(op, "MatMul") == 0, bn = strcmp(op, "BatchNormalization") == 0;
        if (!conv && !gemm && !matmul && !bn) continue;
        for (size_t t = 1; t < n->n_input && t < 5; t++) {
            int32_t ci = has_input(n, t) ? find_const(mp, n->input[t]) : -1;
            if (ci < 0 || mp->const_param[ci] >= 0) continue;
            const struct sgi_onnx_const *c = &mp->G->consts[ci];
            if (c->count == 0) continue;
            const int is_weight = t == 1 && (conv ? (c->rank == 3 || c->rank == 4) : !bn && c->rank == 2);
            if (!c->is_float) {
                if (!is_weight) continue;
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "%s: weight '%s' of node '%s' (%s) is %s without a "
                                 "DequantizeLinear (scale and zero point): not supported",
                                 mp->what, c->name, node_name(n), op,
                                 sgi_onnx_dtype_name(c->t->data_type));
            }
            int32_t p;
            if (is_weight && conv) {
                const int64_t d[4] = {c->dims[0], c->dims[1], c->rank == 4 ? c->dims[2] : 1,
                                      c->dims[c->rank - 1]};
                p = new_param(mp, ci, SG_PARAM_WEIGHT, SG_LAYER_CONV, -1, 4, d, 0, 1.0f);
            } else if (is_weight) { /* Gemm (transB) or MatMul: stored as W[K][C] */
                const int transb = gemm && attr_i(n, "transB", 0);
                const int64_t d[2] = {transb ? c->dims[0] : c->dims[1],
                                      transb ? c->dims[1] : c->dims[0]};
                p = new_param(mp, ci, SG_PARAM_WEIGHT, SG_LAYER_FC, -1, 2, d, !transb, 1.0f);
            } else if (bn && c->rank == 1) {
                const int64_t d[1] = {c->dims[0]};
                p = new_param(mp, ci, (enum sg_param_kind)(SG_PARAM_BN_GAMMA + (int)t - 1),
                              SG_LAYER_NONE, -1, 1, d, 0, 1.0f);
            } else if (!bn && t == 2 && c->rank >= 1 && c->rank <= 2 &&
                       c->count == (size_t)c->dims[c->rank - 1]) {
                const int64_t d[1] = {(int64_t)c->count};
                p = new_param(mp, ci, SG_PARAM_BIAS, SG_LAYER_NONE, -1, 1, d, 0, 1.0f);
            } else {
                continue; /* left for the generic pass */
            }
            if (p < 0) return SG_ERR_ARG;
        }
    }
    /* every other float constant, as it is stored */
    for (int32_t ci = 0; ci < mp->G->n_consts; ci++) {
        const struct sgi_onnx_const *c = &mp->G->consts[ci];
        if (mp->const_param[ci] >= 0 || !c->is_float || c->count == 0) continue;
        if (sgi_onnx_const_find(mp->G, c->name) != ci) continue; /* shadowed */
        if (is_mask_of_const(mp, c->name)) continue;
        int64_t d[4] = {1, 1, 1, 1};
        int nd = c->rank < 1 ? 1 : c->rank > 4 ? 4 : c->rank;
        for (int r = 0; r < c->rank; r++) {
            int slot = r - (c->rank - nd); /* leading axes fold into the first */
            d[slot < 0 ? 0 : slot] *= c->dims[r];
        }
        /* a graph of initializers only (what we write for a weights-only model) has
         * no nodes to tell the layout: the .npz convention applies */
        enum sg_param_kind kind = SG_PARAM_OTHER;
        enum sg_layer_kind layer = SG_LAYER_NONE;
        if (g->n_node == 0 && (c->rank == 4 || c->rank == 2)) {
            kind = SG_PARAM_WEIGHT;
            layer = c->rank == 4 ? SG_LAYER_CONV : SG_LAYER_FC;
        } else if (g->n_node == 0 && c->rank == 1) {
            size_t l = strlen(c->name);
            if (l >= 4 && strcmp(c->name + l - 4, "bias") == 0) kind = SG_PARAM_BIAS;
            if (l >= 6 && strcmp(c->name + l - 6, "biases") == 0) kind = SG_PARAM_BIAS;
        }
        if (new_param(mp, ci, kind, layer, -1, nd, d, 0, 1.0f) < 0) return SG_ERR_ARG;
    }
    (void)m;
    return SG_OK;
}

static void mapper_reset(struct mapper *mp) {
    sg_model_free(mp->m);
    mp->m = NULL;
    for (int32_t p = 0; p < mp->cap_src; p++) free(mp->src[p].tensor);
    free(mp->src);
    free(mp->param_const);
    free(mp->fusable);
    mp->src = NULL, mp->param_const = NULL, mp->fusable = NULL;
    mp->cap_src = mp->cap_fusable = 0;
    sgi_strmap_free(&mp->act);
    sgi_strmap_free(&mp->padded);
    free(mp->pads);
    mp->pads = NULL;
    mp->n_pads = mp->cap_pads = 0;
    for (int32_t i = 0; i < mp->G->n_consts; i++) mp->const_param[i] = -1;
}

static enum sg_status build_runnable(struct mapper *mp) {
    const Onnx__GraphProto *g = mp->G->g;
    if (!(mp->m = sg_model_new("onnx", 0, 0, 0))) return SG_ERR_NOMEM;
    int r = map_input(mp);
    if (r < 0) return sgi_error(SG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; r > 0 && i < g->n_node; i++)
        if (map_node(mp, (int32_t)i) < 0) return mp->hard; /* text set */
    if (r == 0 || mp->unsup[0] || mp->why[0]) return SG_OK;
    if (g->n_output < 1) {
        cannot(mp, "the graph has no output");
        return SG_OK;
    }
    int32_t v = sgi_strmap_get(&mp->act, g->output[0]->name ? g->output[0]->name : "");
    if (v < 0) {
        cannot(mp, "output '%s' is not computed from the input", g->output[0]->name);
        return SG_OK;
    }
    mp->m->output = v >> 3;
    if (sgi_model_finalize_unfilled(mp->m) != SG_OK) cannot(mp, "%s", sg_last_error());
    return SG_OK;
}

enum sg_status sgi_onnx_to_model(struct sgi_onnx_graph *G, uint8_t *bytes, size_t len, int mapped,
                                 struct sg_model **out) {
    *out = NULL;
    struct mapper mp;
    memset(&mp, 0, sizeof mp);
    mp.G = G;
    mp.what = G->what;
    mp.batch = -1;
    mp.hard = SG_ERR_FORMAT;
    enum sg_status st = SG_OK;
    const Onnx__GraphProto *g = G->g;
    mp.const_param = sgi_alloc(G->n_consts ? (size_t)G->n_consts : 1, sizeof *mp.const_param);
    if (!mp.const_param) {
        sgi_onnx_release(bytes, len, mapped);
        return SG_ERR_NOMEM;
    }
    for (int32_t i = 0; i < G->n_consts; i++) mp.const_param[i] = -1;
    /* readers of every tensor, and Identity aliases of constants */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t t = 0; t < n->n_input; t++) {
            if (!n->input[t] || !*n->input[t]) continue;
            int32_t u = sgi_strmap_get(&mp.uses, n->input[t]);
            if (!sgi_strmap_put(&mp.uses, n->input[t], u < 0 ? 1 : u + 1)) goto nomem;
        }
        if (n->op_type && strcmp(n->op_type, "Identity") == 0 && n->n_input >= 1 &&
            n->n_output >= 1 && n->output[0] && *n->output[0] &&
            !sgi_strmap_put(&mp.alias, n->output[0], (int32_t)i))
            goto nomem;
    }
    for (size_t i = 0; i < g->n_output; i++) {
        const char *nm = g->output[i]->name ? g->output[i]->name : "";
        int32_t u = sgi_strmap_get(&mp.uses, nm);
        if (!sgi_strmap_put(&mp.uses, nm, u < 0 ? 1 : u + 1)) goto nomem;
    }

    if ((st = build_runnable(&mp)) != SG_OK) goto fail;
    mp.weights_only = mp.unsup[0] || mp.why[0] || mp.m->n_nodes == 0;
    if (mp.weights_only) {
        int32_t in_c = mp.m->in_c, in_h = mp.m->in_h, in_w = mp.m->in_w;
        mapper_reset(&mp);
        if (!(mp.m = sg_model_new("onnx", in_c, in_h, in_w))) goto nomem;
        if ((st = weights_only(&mp)) != SG_OK) goto fail;
        if ((st = sgi_model_finalize_unfilled(mp.m)) != SG_OK) goto fail;
    }
    if ((st = sgi_onnx_fill(G, mp.m, mp.param_const, mp.src)) != SG_OK) goto fail;
    struct sg_model *m = mp.m;
    sg_meta_set(m, "format", "onnx");
    sg_meta_set(m, "onnx_opset", "%lld", (long long)G->opset);
    if (G->model->producer_name && *G->model->producer_name)
        sg_meta_set(m, "onnx_producer", "%.200s %.40s", G->model->producer_name,
                    G->model->producer_version ? G->model->producer_version : "");
    if (mp.unsup[0]) sg_meta_set(m, "unsupported_ops", "%s", mp.unsup);
    else if (mp.weights_only) sg_meta_set(m, "not_runnable", "%s", mp.why[0] ? mp.why : "no graph");

    struct sgi_onnx_ext *e = calloc(1, sizeof *e);
    if (!e) goto nomem;
    e->bytes = bytes;
    e->len = len;
    e->mapped = mapped;
    e->n_src = m->n_params;
    e->src = mp.src; /* ownership moves; entries past n_params are unused */
    if (m->n_params < mp.cap_src)
        for (int32_t p = m->n_params; p < mp.cap_src; p++) mp.src[p].tensor = NULL;
    mp.src = NULL;
    mp.cap_src = 0;
    m->ext = e;
    m->ext_free = sgi_onnx_ext_free;
    m->ext_clone = sgi_onnx_ext_clone;
    mp.m = NULL;
    *out = m;
    mapper_reset(&mp);
    free(mp.const_param);
    sgi_strmap_free(&mp.uses);
    sgi_strmap_free(&mp.alias);
    return SG_OK;
nomem:
    st = sgi_error(SG_ERR_NOMEM, "out of memory");
fail:
    if (st == SG_ERR_ARG) st = sgi_error_prefix(SG_ERR_FORMAT, G->what);
    mapper_reset(&mp);
    free(mp.const_param);
    sgi_strmap_free(&mp.uses);
    sgi_strmap_free(&mp.alias);
    sgi_onnx_release(bytes, len, mapped);
    return st;
}

enum sg_status sg_model_check_runnable(const struct sg_model *m, const char *what) {
    if (sg_model_runnable(m)) return SG_OK;
    const char *ops = sg_meta_get(m, "unsupported_ops");
    const char *why = sg_meta_get(m, "not_runnable");
    if (ops)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: cannot run: %s %s %s not supported (weights-only commands work)",
                         what, strchr(ops, ',') ? "ops" : "op", ops, strchr(ops, ',') ? "are" : "is");
    return sgi_error(SG_ERR_UNSUPPORTED, "%s: cannot run: %s (weights-only commands work)", what,
                     why ? why : "the file holds weights only, no graph");
}
