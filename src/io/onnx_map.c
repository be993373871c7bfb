/* ONNX graph -> sg_model. Two outcomes:
 *  - runnable: every node maps to our ops (docs/file-format.md lists the mapping);
 *  - weights only (n_nodes == 0): some op or attribute has no counterpart. Conv, Gemm
 *    and MatMul weights are still found through the node that reads them, so their
 *    layout and layer kind are known; the metadata key "unsupported_ops" (or
 *    "not_runnable" for other reasons) tells the user why the model cannot run.
 * Either way the original bytes stay in m->ext for export. */
#include "io/onnx_mapper.h"

/* ---- reasons ---- */
void sgi_om_lack(struct mapper *mp, const char *fmt, ...) {
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

void sgi_om_cannot(struct mapper *mp, const char *fmt, ...) {
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
int64_t sgi_om_attr_i(const Onnx__NodeProto *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}
float sgi_om_attr_f(const Onnx__NodeProto *n, const char *name, float def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}
/* Copies a string attribute into buf ("" when absent). */
const char *sgi_om_attr_s(const Onnx__NodeProto *n, const char *name, char *buf, size_t cap) {
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
int sgi_om_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max) {
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->n_ints) return 0;
    if (a->n_ints > (size_t)max) return -1;
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

const char *sgi_om_node_name(const Onnx__NodeProto *n) {
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
int32_t sgi_om_find_const(const struct mapper *mp, const char *name) {
    return sgi_onnx_const_find(mp->G, resolve(mp, name));
}
int sgi_om_has_input(const Onnx__NodeProto *n, size_t i) {
    return i < n->n_input && n->input[i] && *n->input[i];
}

/* Activation read by a node: 0 and *node, *rank set; 1 when dead; -1 when nothing
 * produces it (reason recorded). */
int sgi_om_get_act_pad(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                       int *rank, int32_t *pad) {
    const char *name = i < n->n_input ? n->input[i] : NULL;
    int32_t v = name ? sgi_strmap_get(&mp->act, name) : -1;
    if (v == DEAD) return 1;
    const int32_t pi = name && v >= 0 ? sgi_strmap_get(&mp->padded, name) : -1;
    if (pad) memset(pad, 0, 4 * sizeof *pad);
    if (pi >= 0) {
        if (!pad) { /* only Conv and AveragePool can absorb a Pad */
            sgi_om_lack(mp, "Pad(before %s)", n->op_type);
            return 1;
        }
        memcpy(pad, mp->pads[pi], 4 * sizeof *pad);
    }
    if (v < 0) {
        if (name && sgi_om_find_const(mp, name) >= 0)
            sgi_om_lack(mp, "%s(constant input)", n->op_type);
        else
            sgi_om_cannot(mp, "node '%s' reads tensor '%s' that no earlier node produces",
                          sgi_om_node_name(n), name ? name : "");
        return -1;
    }
    *node = v >> 3;
    *rank = v & 7;
    return 0;
}

int sgi_om_get_act(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                   int *rank) {
    return sgi_om_get_act_pad(mp, n, i, node, rank, NULL);
}

int sgi_om_set_outputs(struct mapper *mp, const Onnx__NodeProto *n, int32_t v) {
    for (size_t i = 0; i < n->n_output; i++)
        if (n->output[i] && *n->output[i])
            if (!sgi_strmap_put(&mp->act, n->output[i], i == 0 ? v : DEAD)) return 0;
    return 1;
}

/* ---- parameters ---- */
int32_t sgi_om_new_param(struct mapper *mp, int32_t ci, enum sg_param_kind kind,
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
int sgi_om_want_const(struct mapper *mp, const Onnx__NodeProto *n, size_t i, const char *role,
                      int32_t *ci) {
    *ci = sgi_om_has_input(n, i) ? sgi_om_find_const(mp, n->input[i]) : -1;
    if (*ci < 0) {
        sgi_om_lack(mp, "%s(non-constant %s)", n->op_type, role);
        return 0;
    }
    const struct sgi_onnx_const *c = &mp->G->consts[*ci];
    if (!c->is_float) {
        mp->hard = SG_ERR_UNSUPPORTED;
        sgi_error(SG_ERR_UNSUPPORTED,
                  "%s: %s '%s' of node '%s' (%s) is %s without a DequantizeLinear (scale and zero "
                  "point): not supported",
                  mp->what, role, c->name, sgi_om_node_name(n), n->op_type,
                  sgi_onnx_dtype_name(c->t->data_type));
        return -1;
    }
    /* a tensor read by several nodes (exporters deduplicate equal initializers) gives
     * each node its own copy; export checks that the copies still agree */
    return 1;
}

/* ---- spatial attributes of Conv and pools ---- */

/* sp spatial axes (1 or 2); in[] their input extents; kdef the kernel from the weight
 * (NULL: kernel_shape is required). Returns 1, or 0 with the problem recorded. */
int sgi_om_window(struct mapper *mp, const Onnx__NodeProto *n, int sp, const int64_t *in,
                  const int64_t *kdef, int dilations_ok, struct win *w) {
    int64_t v[4];
    int cnt;
    for (int i = 0; i < 2; i++) w->k[i] = w->s[i] = w->d[i] = 1, w->p0[i] = w->p1[i] = 0;
    cnt = sgi_om_attr_ints(n, "kernel_shape", v, 2);
    if (cnt == sp) {
        for (int i = 0; i < sp; i++) w->k[i] = v[i];
        if (kdef)
            for (int i = 0; i < sp; i++)
                if (v[i] != kdef[i]) {
                    sgi_om_cannot(mp, "node '%s': kernel_shape does not match the weight",
                                  sgi_om_node_name(n));
                    return 0;
                }
    } else if (cnt == 0 && kdef) {
        for (int i = 0; i < sp; i++) w->k[i] = kdef[i];
    } else {
        sgi_om_cannot(mp, "node '%s': kernel_shape has %d values for %d spatial axes",
                      sgi_om_node_name(n), cnt, sp);
        return 0;
    }
    if ((cnt = sgi_om_attr_ints(n, "strides", v, 2)) != 0) {
        if (cnt != sp) return sgi_om_cannot(mp, "node '%s': bad strides", sgi_om_node_name(n)), 0;
        for (int i = 0; i < sp; i++) w->s[i] = v[i];
    }
    if ((cnt = sgi_om_attr_ints(n, "dilations", v, 2)) != 0) {
        if (cnt != sp) return sgi_om_cannot(mp, "node '%s': bad dilations", sgi_om_node_name(n)), 0;
        for (int i = 0; i < sp; i++) {
            w->d[i] = v[i];
            if (v[i] != 1 && !dilations_ok) {
                sgi_om_lack(mp, "%s(dilations)", n->op_type);
                return 0;
            }
        }
    }
    if ((cnt = sgi_om_attr_ints(n, "pads", v, 4)) != 0) {
        if (cnt != 2 * sp) return sgi_om_cannot(mp, "node '%s': bad pads", sgi_om_node_name(n)), 0;
        for (int i = 0; i < sp; i++) w->p0[i] = v[i], w->p1[i] = v[sp + i];
    }
    for (int i = 0; i < sp; i++)
        if (w->k[i] < 1 || w->k[i] > MAX_SPATIAL || w->s[i] < 1 || w->s[i] > MAX_SPATIAL ||
            w->d[i] < 1 || w->d[i] > MAX_SPATIAL || w->p0[i] < 0 || w->p0[i] > MAX_SPATIAL ||
            w->p1[i] < 0 || w->p1[i] > MAX_SPATIAL) {
            sgi_om_cannot(mp, "node '%s': kernel, stride, dilation or pad out of range",
                          sgi_om_node_name(n));
            return 0;
        }
    char ap[32];
    sgi_om_attr_s(n, "auto_pad", ap, sizeof ap);
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
        sgi_om_cannot(mp, "node '%s': unknown auto_pad '%s'", sgi_om_node_name(n), ap);
        return 0;
    }
    if (sp == 1) { /* 1-D: the single axis is our width */
        w->k[1] = w->k[0], w->s[1] = w->s[0], w->d[1] = w->d[0];
        w->p0[1] = w->p0[0], w->p1[1] = w->p1[0];
        w->k[0] = w->s[0] = w->d[0] = 1, w->p0[0] = w->p1[0] = 0;
    }
    return 1;
}

void sgi_om_set_window(struct sg_node *nd, const struct win *w) {
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
int32_t sgi_om_add_node(struct mapper *mp, struct sg_node *nd, int rank, const Onnx__NodeProto *n) {
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
        sgi_om_cannot(mp, "node '%s': window larger than its %dx%d input", nd->name, x->h, x->w);
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
    if (!sgi_om_set_outputs(mp, n, ACT(i, rank)))
        return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
    return i;
}

void sgi_om_init_node(struct sg_node *nd, enum sg_op op, const Onnx__NodeProto *n, int32_t index,
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
            int32_t ci = sgi_om_has_input(n, t) ? sgi_om_find_const(mp, n->input[t]) : -1;
            if (ci < 0 || mp->const_param[ci] >= 0) continue;
            const struct sgi_onnx_const *c = &mp->G->consts[ci];
            if (c->count == 0) continue;
            const int is_weight =
                t == 1 && (conv ? (c->rank == 3 || c->rank == 4) : !bn && c->rank == 2);
            if (!c->is_float) {
                if (!is_weight) continue;
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "%s: weight '%s' of node '%s' (%s) is %s without a "
                                 "DequantizeLinear (scale and zero point): not supported",
                                 mp->what, c->name, sgi_om_node_name(n), op,
                                 sgi_onnx_dtype_name(c->t->data_type));
            }
            int32_t p;
            if (is_weight && conv) {
                const int64_t d[4] = {c->dims[0], c->dims[1], c->rank == 4 ? c->dims[2] : 1,
                                      c->dims[c->rank - 1]};
                p = sgi_om_new_param(mp, ci, SG_PARAM_WEIGHT, SG_LAYER_CONV, -1, 4, d, 0, 1.0f);
            } else if (is_weight) { /* Gemm (transB) or MatMul: stored as W[K][C] */
                const int transb = gemm && sgi_om_attr_i(n, "transB", 0);
                const int64_t d[2] = {transb ? c->dims[0] : c->dims[1],
                                      transb ? c->dims[1] : c->dims[0]};
                p = sgi_om_new_param(mp, ci, SG_PARAM_WEIGHT, SG_LAYER_FC, -1, 2, d, !transb, 1.0f);
            } else if (bn && c->rank == 1) {
                const int64_t d[1] = {c->dims[0]};
                p = sgi_om_new_param(mp, ci, (enum sg_param_kind)(SG_PARAM_BN_GAMMA + (int)t - 1),
                              SG_LAYER_NONE, -1, 1, d, 0, 1.0f);
            } else if (!bn && t == 2 && c->rank >= 1 && c->rank <= 2 &&
                       c->count == (size_t)c->dims[c->rank - 1]) {
                const int64_t d[1] = {(int64_t)c->count};
                p = sgi_om_new_param(mp, ci, SG_PARAM_BIAS, SG_LAYER_NONE, -1, 1, d, 0, 1.0f);
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
        if (sgi_om_new_param(mp, ci, kind, layer, -1, nd, d, 0, 1.0f) < 0) return SG_ERR_ARG;
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
    int r = sgi_om_map_input(mp);
    if (r < 0) return sgi_error(SG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; r > 0 && i < g->n_node; i++) {
        const enum sg_status st = sgi_om_map_node(mp, (int32_t)i);
        if (st != SG_OK) return st; /* text set */
    }
    if (r == 0 || mp->unsup[0] || mp->why[0]) return SG_OK;
    if (g->n_output < 1) {
        sgi_om_cannot(mp, "the graph has no output");
        return SG_OK;
    }
    int32_t v = sgi_strmap_get(&mp->act, g->output[0]->name ? g->output[0]->name : "");
    if (v < 0) {
        sgi_om_cannot(mp, "output '%s' is not computed from the input", g->output[0]->name);
        return SG_OK;
    }
    mp->m->output = v >> 3;
    if (sg_model_finalize_unfilled(mp->m) != SG_OK) sgi_om_cannot(mp, "%s", sg_last_error());
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
        if ((st = sg_model_finalize_unfilled(mp.m)) != SG_OK) goto fail;
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
    for (size_t i = 0; i < G->model->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = G->model->metadata_props[i];
        if (!kv->key || strcmp(kv->key, SG_INPUT_NORM_KEY) != 0) continue;
        if ((st = sg_preproc_parse(kv->value ? kv->value : "", &m->preproc)) == SG_OK)
            st = sg_preproc_check(&m->preproc, m->in_c);
        if (st != SG_OK) goto fail; /* SG_ERR_ARG: becomes a format error naming the file */
    }

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
                         what, strchr(ops, ',') ? "ops" : "op", ops,
                         strchr(ops, ',') ? "are" : "is");
    return sgi_error(SG_ERR_UNSUPPORTED, "%s: cannot run: %s (weights-only commands work)", what,
                     why ? why : "the file holds weights only, no graph");
}
