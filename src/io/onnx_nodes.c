/* One ONNX node onto our ops (the table of supported ops and attributes is in
 * docs/file-format.md), and the graph's data input; the mapper's state and toolkit
 * are in onnx_mapper.h / onnx_map.c. */
#include "io/onnx_mapper.h"

/* Every mapping below follows one convention: it returns SG_OK, or the status of
 * an error that stops the import (text set); *mapped (1 on entry) goes to 0 when
 * the node cannot run here, with the reason recorded (sgi_om_lack, sgi_om_cannot),
 * and sgi_om_map_node then marks the node's outputs DEAD. */

/* The node cannot be mapped; the reason is recorded. */
static enum sg_status unmapped(int *mapped) {
    *mapped = 0;
    return SG_OK;
}

/* After a toolkit call reported a hard error (-1): the import stops with mp->hard. */
static enum sg_status hard(const struct mapper *mp) { return mp->hard; }

static enum sg_status set_outputs(struct mapper *mp, const Onnx__NodeProto *n, int32_t v) {
    return sgi_om_set_outputs(mp, n, v) ? SG_OK : sgi_error(SG_ERR_NOMEM, "out of memory");
}

/* Appends nd; *ni its index. A node whose shape cannot run records why (unmapped). */
static enum sg_status add_node(struct mapper *mp, struct sg_node *nd, int rank,
                               const Onnx__NodeProto *n, int *mapped, int32_t *ni) {
    *ni = sgi_om_add_node(mp, nd, rank, n);
    if (*ni >= 0) return SG_OK;
    return mp->why[0] ? unmapped(mapped) : hard(mp);
}

/* The activation input 0 reads (*x, *rank); unmapped when it is dead or missing. */
static int need_x(struct mapper *mp, const Onnx__NodeProto *n, int32_t *x, int *rank) {
    return sgi_om_get_act(mp, n, 0, x, rank) == 0;
}

/* Constant input idx as a float tensor (*ci): 1 found, 0 unmapped (reason recorded),
 * -1 hard error. */
static int want(struct mapper *mp, const Onnx__NodeProto *n, size_t idx, const char *role,
                int32_t *ci) {
    return sgi_om_want_const(mp, n, idx, role, ci);
}

/* A parameter made from constant ci for node ni's slot; SG_OK or hard. */
static enum sg_status add_param(struct mapper *mp, int32_t ci, enum sg_param_kind kind,
                                enum sg_layer_kind layer, int32_t ni, int slot, int ndim,
                                const int64_t *dims, int transpose, float scale) {
    const int32_t p = sgi_om_new_param(mp, ci, kind, layer, ni, ndim, dims, transpose, scale);
    if (p < 0) return hard(mp);
    mp->m->nodes[ni].param[slot] = p;
    return SG_OK;
}

/* Flatten/Reshape-as-flatten: a no-op on a [C][1][1] input (only the rank changes). */
static enum sg_status flatten(struct mapper *mp, const Onnx__NodeProto *n, int32_t x,
                              int32_t index, int *mapped) {
    const struct sg_node *xn = &mp->m->nodes[x];
    if (xn->h == 1 && xn->w == 1) return set_outputs(mp, n, ACT(x, 2));
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_FLATTEN, n, index, x);
    int32_t ni;
    const enum sg_status st = add_node(mp, &nd, 2, n, mapped, &ni);
    /* a flatten that cannot be added stops the import (as it always has) */
    if (st == SG_OK && !*mapped) return hard(mp);
    return st;
}

/* One-input ops with no attributes we read: the node as it is. */
static enum sg_status simple(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                             enum sg_op op, int32_t x, int rank, int *mapped) {
    struct sg_node nd;
    sgi_om_init_node(&nd, op, n, i, x);
    int32_t ni;
    return add_node(mp, &nd, rank, n, mapped, &ni);
}

/* ---- one function per ONNX op ---- */

static enum sg_status map_constant(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                   int *mapped) {
    if (n->n_output && sgi_onnx_const_find(mp->G, n->output[0]) >= 0) return SG_OK;
    return unmapped(mapped); /* value_ints etc.: not a weight */
}

static enum sg_status map_dequantize(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                     int *mapped) {
    if (n->n_output && sgi_onnx_const_find(mp->G, n->output[0]) >= 0) return SG_OK;
    sgi_om_lack(mp, "%s", n->op_type);
    return unmapped(mapped);
}

static enum sg_status map_identity(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                   int *mapped) {
    if (!sgi_om_has_input(n, 0) || n->n_output < 1) return unmapped(mapped);
    if (sgi_om_find_const(mp, n->input[0]) >= 0) return SG_OK; /* resolved through mp->alias */
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    return sgi_om_set_outputs(mp, n, ACT(x, rank)) ? SG_OK : hard(mp);
}

static enum sg_status map_conv(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                               int *mapped) {
    struct sg_model *m = mp->m;
    int32_t x, pad[4], wci, bci = -1;
    int rank, r;
    if (sgi_om_get_act_pad(mp, n, 0, &x, &rank, pad) != 0) return unmapped(mapped);
    if (rank < 3 || rank > 4) {
        sgi_om_lack(mp, "Conv(%dD)", rank - 2);
        return unmapped(mapped);
    }
    if ((r = want(mp, n, 1, "weight", &wci)) <= 0) return r < 0 ? hard(mp) : unmapped(mapped);
    const struct sgi_onnx_const *wc = &mp->G->consts[wci];
    if (wc->rank != rank) {
        sgi_om_cannot(mp, "node '%s': weight '%s' has rank %d, input rank %d",
                      sgi_om_node_name(n), wc->name, wc->rank, rank);
        return unmapped(mapped);
    }
    const struct sg_node *xn = &m->nodes[x];
    const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
    struct win w;
    if (!sgi_om_window(mp, n, rank - 2, in, wc->dims + 2, 1, &w)) return unmapped(mapped);
    w.p0[0] += pad[0], w.p0[1] += pad[1], w.p1[0] += pad[2], w.p1[1] += pad[3];
    int64_t g = sgi_om_attr_i(n, "group", 1);
    if (g < 1 || g > wc->dims[0] || wc->dims[0] > (1 << 24) || wc->dims[1] > (1 << 24)) {
        sgi_om_cannot(mp, "node '%s': group %lld with %lld filters", sgi_om_node_name(n),
                      (long long)g, (long long)wc->dims[0]);
        return unmapped(mapped);
    }
    if (sgi_om_has_input(n, 2)) {
        if ((r = want(mp, n, 2, "bias", &bci)) <= 0) return r < 0 ? hard(mp) : unmapped(mapped);
        if (mp->G->consts[bci].count != (size_t)wc->dims[0]) {
            sgi_om_cannot(mp, "node '%s': bias has %zu values for %lld filters",
                          sgi_om_node_name(n), mp->G->consts[bci].count, (long long)wc->dims[0]);
            return unmapped(mapped);
        }
    }
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_CONV, n, i, x);
    nd.k = (int32_t)wc->dims[0];
    sgi_om_set_window(&nd, &w);
    nd.groups = (int32_t)g;
    nd.has_bias = bci >= 0;
    int32_t ni;
    enum sg_status st = add_node(mp, &nd, rank, n, mapped, &ni);
    if (st != SG_OK || !*mapped) return st;
    const int64_t d[4] = {wc->dims[0], wc->dims[1], w.k[0], w.k[1]};
    st = add_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_CONV, ni, 0, 4, d, 0, 1.0f);
    if (st == SG_OK && bci >= 0)
        st = add_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, 1, d, 0, 1.0f);
    return st;
}

/* Gemm and MatMul: a fully connected layer (MatMul's bias may come from a later Add) */
static enum sg_status linear(struct mapper *mp, const Onnx__NodeProto *n, int32_t i, int gemm,
                             int *mapped) {
    struct sg_model *m = mp->m;
    const char *op = n->op_type;
    int32_t x, wci, bci = -1;
    int rank, r;
    if (gemm && sgi_om_attr_i(n, "transA", 0)) {
        sgi_om_lack(mp, "Gemm(transA=1)");
        return unmapped(mapped);
    }
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    const struct sg_node *xn = &m->nodes[x];
    if (rank != 2 && !(xn->h == 1 && xn->w == 1)) {
        sgi_om_lack(mp, "%s(%dD input)", op, rank);
        return unmapped(mapped);
    }
    if ((r = want(mp, n, 1, "weight", &wci)) <= 0) return r < 0 ? hard(mp) : unmapped(mapped);
    const struct sgi_onnx_const *bc = &mp->G->consts[wci];
    if (bc->rank != 2) {
        sgi_om_lack(mp, "%s(%dD weight)", op, bc->rank);
        return unmapped(mapped);
    }
    const int transb = gemm && sgi_om_attr_i(n, "transB", 0);
    const int64_t kk = transb ? bc->dims[0] : bc->dims[1], cc = transb ? bc->dims[1] : bc->dims[0];
    const float alpha = gemm ? sgi_om_attr_f(n, "alpha", 1.0f) : 1.0f;
    const float beta = gemm ? sgi_om_attr_f(n, "beta", 1.0f) : 1.0f;
    if (gemm && sgi_om_has_input(n, 2) && beta != 0.0f) {
        if ((r = want(mp, n, 2, "bias", &bci)) <= 0) return r < 0 ? hard(mp) : unmapped(mapped);
        const struct sgi_onnx_const *cb = &mp->G->consts[bci];
        int vec = cb->count == 1 || (cb->count == (size_t)kk &&
                                     (cb->rank == 1 || (cb->rank == 2 && cb->dims[0] == 1)));
        if (!vec) {
            sgi_om_lack(mp, "Gemm(matrix C)");
            return unmapped(mapped);
        }
    }
    if (kk < 1 || kk > (1 << 24) || cc < 1) {
        sgi_om_cannot(mp, "node '%s': weight of shape %lldx%lld", sgi_om_node_name(n),
                      (long long)bc->dims[0], (long long)bc->dims[1]);
        return unmapped(mapped);
    }
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_FC, n, i, x);
    nd.k = (int32_t)kk;
    nd.has_bias = bci >= 0;
    int32_t ni;
    enum sg_status st = add_node(mp, &nd, 2, n, mapped, &ni);
    if (st != SG_OK || !*mapped) return st;
    const int64_t d[2] = {kk, cc};
    st = add_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_FC, ni, 0, 2, d, !transb, alpha);
    if (st == SG_OK && bci >= 0)
        st = add_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, 1, d, 0, beta);
    if (st != SG_OK) return st;
    /* MatMul + Add(constant [K]) is how some exporters write a biased linear layer */
    mp->fusable[ni] = !gemm && n->n_output == 1 && sgi_strmap_get(&mp->uses, n->output[0]) == 1;
    return SG_OK;
}

static enum sg_status map_gemm(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                               int *mapped) {
    return linear(mp, n, i, 1, mapped);
}

static enum sg_status map_matmul(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                 int *mapped) {
    return linear(mp, n, i, 0, mapped);
}

static enum sg_status map_relu(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                               int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    return simple(mp, n, i, SG_OP_RELU, x, rank, mapped);
}

static enum sg_status map_gap(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                              int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    if (rank < 3) {
        sgi_om_cannot(mp, "node '%s': GlobalAveragePool of a %dD tensor", sgi_om_node_name(n),
                      rank);
        return unmapped(mapped);
    }
    return simple(mp, n, i, SG_OP_GAP, x, rank, mapped);
}

/* MaxPool and AveragePool */
static enum sg_status pool(struct mapper *mp, const Onnx__NodeProto *n, int32_t i, int maxp,
                           int *mapped) {
    const char *op = n->op_type;
    if (maxp && n->n_output > 1 && n->output[1] && *n->output[1]) {
        sgi_om_lack(mp, "MaxPool(Indices output)");
        return unmapped(mapped);
    }
    int32_t x, pad[4];
    int rank;
    if (sgi_om_get_act_pad(mp, n, 0, &x, &rank, maxp ? NULL : pad) != 0) return unmapped(mapped);
    if (rank < 3 || rank > 4) {
        sgi_om_lack(mp, "%s(%dD)", op, rank - 2);
        return unmapped(mapped);
    }
    const struct sg_node *xn = &mp->m->nodes[x];
    const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
    struct win w;
    if (!sgi_om_window(mp, n, rank - 2, in, NULL, 0, &w)) return unmapped(mapped);
    struct sg_node nd;
    sgi_om_init_node(&nd, maxp ? SG_OP_MAXPOOL : SG_OP_AVGPOOL, n, i, x);
    sgi_om_set_window(&nd, &w);
    nd.ceil_mode = sgi_om_attr_i(n, "ceil_mode", 0) != 0;
    if (!maxp) nd.count_include_pad = sgi_om_attr_i(n, "count_include_pad", 0) != 0;
    if (!maxp && (pad[0] | pad[1] | pad[2] | pad[3])) {
        /* explicit zeros count in the average: fold them as counted padding */
        const int own = nd.pt | nd.pl | nd.pb | nd.pr;
        if (nd.ceil_mode || (own && !nd.count_include_pad)) {
            sgi_om_lack(mp, "Pad(before AveragePool)");
            return unmapped(mapped);
        }
        nd.pt += pad[0], nd.pl += pad[1], nd.pb += pad[2], nd.pr += pad[3];
        nd.count_include_pad = 1;
    }
    if (nd.pt >= nd.kh || nd.pb >= nd.kh || nd.pl >= nd.kw || nd.pr >= nd.kw) {
        sgi_om_lack(mp, "%s(pads >= kernel)", op);
        return unmapped(mapped);
    }
    int32_t ni;
    return add_node(mp, &nd, rank, n, mapped, &ni);
}

static enum sg_status map_maxpool(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    return pool(mp, n, i, 1, mapped);
}

static enum sg_status map_avgpool(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    return pool(mp, n, i, 0, mapped);
}

static enum sg_status map_bn(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                             int *mapped) {
    struct sg_model *m = mp->m;
    if (sgi_om_attr_i(n, "training_mode", 0) || sgi_om_attr_i(n, "spatial", 1) == 0) {
        sgi_om_lack(mp, "BatchNormalization(training_mode)");
        return unmapped(mapped);
    }
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o]) {
            sgi_om_lack(mp, "BatchNormalization(training outputs)");
            return unmapped(mapped);
        }
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    int32_t cis[4];
    static const char *const roles[4] = {"scale", "B", "mean", "var"};
    for (int t = 0; t < 4; t++) {
        int32_t ci;
        const int r = want(mp, n, (size_t)t + 1, roles[t], &ci);
        if (r <= 0) return r < 0 ? hard(mp) : unmapped(mapped);
        cis[t] = ci;
        if (mp->G->consts[ci].count != (size_t)m->nodes[x].c) {
            sgi_om_cannot(mp, "node '%s': %s has %zu values for %d channels",
                          sgi_om_node_name(n), roles[t], mp->G->consts[ci].count, m->nodes[x].c);
            return unmapped(mapped);
        }
        for (int u = 0; u < t; u++)
            if (cis[u] == ci) {
                sgi_om_cannot(mp, "node '%s' reads tensor '%s' twice", sgi_om_node_name(n),
                              mp->G->consts[ci].name);
                return unmapped(mapped);
            }
    }
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_BN, n, i, x);
    nd.eps = sgi_om_attr_f(n, "epsilon", 1e-5f);
    /* ONNX: running = momentum * running + (1 - momentum) * batch; ours is the
     * PyTorch convention, the weight of the batch statistic */
    nd.momentum = 1.0f - sgi_om_attr_f(n, "momentum", 0.9f);
    int32_t ni;
    enum sg_status st = add_node(mp, &nd, rank, n, mapped, &ni);
    if (st != SG_OK || !*mapped) return st;
    for (int t = 0; t < 4 && st == SG_OK; t++) {
        const int64_t d[1] = {m->nodes[x].c};
        st = add_param(mp, cis[t], (enum sg_param_kind)(SG_PARAM_BN_GAMMA + t), SG_LAYER_NONE,
                       ni, t, 1, d, 0, 1.0f);
    }
    return st;
}

/* MatMul output + constant bias: the bias joins the fc node (*fused 1). */
static enum sg_status fuse_bias(struct mapper *mp, const Onnx__NodeProto *n, int *fused) {
    struct sg_model *m = mp->m;
    *fused = 0;
    for (int side = 0; side < 2; side++) {
        int32_t v = sgi_strmap_get(&mp->act, n->input[side]);
        int32_t bc = sgi_om_find_const(mp, n->input[1 - side]);
        if (v < 0 || bc < 0) continue;
        int32_t fc = v >> 3;
        const struct sgi_onnx_const *c = &mp->G->consts[bc];
        if (fc >= mp->cap_fusable || !mp->fusable[fc] || c->count != (size_t)m->nodes[fc].k ||
            !c->is_float || mp->const_param[bc] >= 0 || c->rank > 2 ||
            (c->rank == 2 && c->dims[0] != 1))
            continue;
        const int64_t d[1] = {m->nodes[fc].k};
        enum sg_status st = add_param(mp, bc, SG_PARAM_BIAS, SG_LAYER_NONE, fc, 1, 1, d, 0, 1.0f);
        if (st != SG_OK) return st;
        m->nodes[fc].has_bias = 1;
        mp->fusable[fc] = 0;
        *fused = 1;
        return sgi_om_set_outputs(mp, n, v) ? SG_OK : hard(mp);
    }
    return SG_OK;
}

/* Add, Sum and Concat: elementwise sum or concatenation along channels */
static enum sg_status join(struct mapper *mp, const Onnx__NodeProto *n, int32_t i, int concat,
                           int *mapped) {
    const char *op = n->op_type;
    if (n->n_input < 1 || n->n_input > SG_MAX_INPUTS) {
        sgi_om_lack(mp, "%s(%zu inputs)", op, n->n_input);
        return unmapped(mapped);
    }
    if (!concat && n->n_input == 2) {
        int fused;
        enum sg_status st = fuse_bias(mp, n, &fused);
        if (st != SG_OK || fused) return st;
    }
    int32_t ins[SG_MAX_INPUTS];
    int r0 = 0, rank;
    for (size_t t = 0; t < n->n_input; t++) {
        if (sgi_om_get_act(mp, n, t, &ins[t], &rank) != 0) return unmapped(mapped);
        if (t == 0) {
            r0 = rank;
        } else if (rank != r0) {
            sgi_om_lack(mp, "%s(broadcast)", op);
            return unmapped(mapped);
        }
    }
    if (concat) {
        int64_t axis = sgi_om_attr_i(n, "axis", 1);
        if (axis < 0) axis += r0;
        if (axis != 1) {
            sgi_om_lack(mp, "Concat(axis=%lld)", (long long)axis);
            return unmapped(mapped);
        }
    }
    if (n->n_input == 1) return sgi_om_set_outputs(mp, n, ACT(ins[0], r0)) ? SG_OK : hard(mp);
    struct sg_node nd;
    sgi_om_init_node(&nd, concat ? SG_OP_CONCAT : SG_OP_ADD, n, i, ins[0]);
    nd.n_in = (int32_t)n->n_input;
    for (size_t t = 0; t < n->n_input; t++) nd.in[t] = ins[t];
    int32_t ni;
    return add_node(mp, &nd, r0, n, mapped, &ni);
}

static enum sg_status map_add(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                              int *mapped) {
    return join(mp, n, i, 0, mapped);
}

static enum sg_status map_concat(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                 int *mapped) {
    return join(mp, n, i, 1, mapped);
}

/* Pad: constant zeros on the spatial axes, remembered and folded into the Conv or
 * AveragePool that reads the output. */
static enum sg_status map_pad(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                              int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    char mode[32];
    sgi_om_attr_s(n, "mode", mode, sizeof mode);
    if (mode[0] && strcmp(mode, "constant") != 0) {
        sgi_om_lack(mp, "Pad(mode=%s)", mode);
        return unmapped(mapped);
    }
    int64_t pv[8];
    size_t np = 0;
    float value = 0.0f;
    if (mp->G->opset < 11) {
        int cnt = sgi_om_attr_ints(n, "pads", pv, 8);
        np = cnt < 0 ? 9 : (size_t)cnt;
        value = sgi_om_attr_f(n, "value", 0.0f);
    } else {
        int32_t pc = sgi_om_has_input(n, 1) ? sgi_om_find_const(mp, n->input[1]) : -1;
        if (pc < 0 || sgi_onnx_const_ints(mp->G, pc, pv, 8, &np) != SG_OK ||
            sgi_om_has_input(n, 3)) {
            sgi_om_lack(mp, "Pad(non-constant pads)");
            return unmapped(mapped);
        }
        if (sgi_om_has_input(n, 2)) {
            int32_t vc = sgi_om_find_const(mp, n->input[2]);
            if (vc < 0 || mp->G->consts[vc].count != 1 || !mp->G->consts[vc].is_float ||
                sgi_onnx_const_float(mp->G, vc, &value) != SG_OK)
                value = 1.0f;
        }
    }
    if (np != 2 * (size_t)rank || value != 0.0f || rank < 3) {
        sgi_om_lack(mp, "Pad(non-zero value or not spatial)");
        return unmapped(mapped);
    }
    int32_t pad[4] = {0, 0, 0, 0}; /* top, left, bottom, right */
    for (int d = 0; d < rank; d++) {
        const int64_t a = pv[d], b = pv[rank + d];
        if (a < 0 || b < 0 || a > MAX_SPATIAL || b > MAX_SPATIAL || (d < 2 && (a || b))) {
            sgi_om_lack(mp, "Pad(negative, batch or channel)");
            return unmapped(mapped);
        }
        if (d == rank - 1) pad[1] = (int32_t)a, pad[3] = (int32_t)b;
        else if (d == 2) pad[0] = (int32_t)a, pad[2] = (int32_t)b;
    }
    if (!sgi_om_set_outputs(mp, n, ACT(x, rank))) return hard(mp);
    if (!(pad[0] | pad[1] | pad[2] | pad[3])) return SG_OK;
    if (mp->n_pads == mp->cap_pads) {
        int32_t cap = mp->cap_pads ? mp->cap_pads * 2 : 16;
        int32_t(*pp)[4] = realloc(mp->pads, (size_t)cap * sizeof *pp);
        if (!pp) {
            sgi_error(SG_ERR_NOMEM, "out of memory");
            return hard(mp);
        }
        mp->pads = pp;
        mp->cap_pads = cap;
    }
    memcpy(mp->pads[mp->n_pads], pad, sizeof pad);
    return sgi_strmap_put(&mp->padded, n->output[0], mp->n_pads++) ? SG_OK : hard(mp);
}

static enum sg_status map_flatten(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    int64_t axis = sgi_om_attr_i(n, "axis", 1);
    if (axis < 0) axis += rank;
    if (axis != 1) {
        sgi_om_lack(mp, "Flatten(axis=%lld)", (long long)axis);
        return unmapped(mapped);
    }
    return flatten(mp, n, x, i, mapped);
}

/* Reshape: only as a flatten ([N][C*H*W]) */
static enum sg_status map_reshape(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    int64_t shape[8];
    size_t ns = 0;
    if (mp->G->opset < 5) {
        int cnt = sgi_om_attr_ints(n, "shape", shape, 8);
        ns = cnt < 0 ? 9 : (size_t)cnt;
    } else {
        int32_t sc = sgi_om_has_input(n, 1) ? sgi_om_find_const(mp, n->input[1]) : -1;
        if (sc < 0) {
            sgi_om_lack(mp, "Reshape(non-constant shape)");
            return unmapped(mapped);
        }
        if (sgi_onnx_const_ints(mp->G, sc, shape, 8, &ns) != SG_OK) ns = 9;
    }
    const struct sg_node *xn = &mp->m->nodes[x];
    const int64_t chw = (int64_t)xn->c * xn->h * xn->w;
    const int allowzero = sgi_om_attr_i(n, "allowzero", 0) != 0;
    int ok = ns == 2 && (shape[1] == chw || (shape[1] == -1 && shape[0] != -1)) &&
             ((shape[0] == 0 && !allowzero) || shape[0] == -1 ||
              (mp->batch > 0 && shape[0] == mp->batch));
    if (!ok) {
        sgi_om_lack(mp, "Reshape(not a flatten)");
        return unmapped(mapped);
    }
    return flatten(mp, n, x, i, mapped);
}

static enum sg_status map_dropout(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    if (n->n_output > 1 && n->output[1] && *n->output[1] &&
        sgi_strmap_get(&mp->uses, n->output[1]) > 0) {
        sgi_om_lack(mp, "Dropout(mask output)");
        return unmapped(mapped);
    }
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    float p = 0.5f;
    if (mp->G->opset < 12) {
        p = sgi_om_attr_f(n, "ratio", 0.5f);
    } else if (sgi_om_has_input(n, 1)) {
        int32_t rc = sgi_om_find_const(mp, n->input[1]);
        if (rc < 0 || mp->G->consts[rc].count != 1 || !mp->G->consts[rc].is_float) {
            sgi_om_lack(mp, "Dropout(non-constant ratio)");
            return unmapped(mapped);
        }
        if (sgi_onnx_const_float(mp->G, rc, &p) != SG_OK) return hard(mp);
    }
    if (sgi_om_has_input(n, 2)) {
        int32_t tc = sgi_om_find_const(mp, n->input[2]);
        if (tc < 0 || mp->G->consts[tc].t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ||
            mp->G->consts[tc].count != 1) {
            sgi_om_lack(mp, "Dropout(training_mode)");
            return unmapped(mapped);
        }
        const Onnx__TensorProto *t = mp->G->consts[tc].t;
        const int64_t tm = t->has_raw_data ? t->raw_data.data[0] : t->int32_data[0];
        if (tm) {
            sgi_om_lack(mp, "Dropout(training_mode)");
            return unmapped(mapped);
        }
    }
    if (!(p >= 0 && p < 1)) {
        sgi_om_cannot(mp, "node '%s': dropout ratio %g", sgi_om_node_name(n), p);
        return unmapped(mapped);
    }
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_DROPOUT, n, i, x);
    nd.p = p;
    int32_t ni;
    return add_node(mp, &nd, rank, n, mapped, &ni);
}

static enum sg_status map_softmax(struct mapper *mp, const Onnx__NodeProto *n, int32_t i,
                                  int *mapped) {
    int32_t x;
    int rank;
    if (!need_x(mp, n, &x, &rank)) return unmapped(mapped);
    int64_t axis = sgi_om_attr_i(n, "axis", mp->G->opset < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    const struct sg_node *xn = &mp->m->nodes[x];
    if (axis != 1 || !(rank == 2 || (xn->h == 1 && xn->w == 1))) {
        sgi_om_lack(mp, "Softmax(axis=%lld of %dD)", (long long)axis, rank);
        return unmapped(mapped);
    }
    return simple(mp, n, i, SG_OP_SOFTMAX, x, rank, mapped);
}

/* The ONNX ops we map (docs/file-format.md lists their attributes). */
static const struct {
    const char *name;
    enum sg_status (*map)(struct mapper *mp, const Onnx__NodeProto *n, int32_t i, int *mapped);
} ONNX_OPS[] = {
    {"Constant", map_constant},
    {"DequantizeLinear", map_dequantize},
    {"Identity", map_identity},
    {"Conv", map_conv},
    {"Gemm", map_gemm},
    {"MatMul", map_matmul},
    {"Relu", map_relu},
    {"GlobalAveragePool", map_gap},
    {"MaxPool", map_maxpool},
    {"AveragePool", map_avgpool},
    {"BatchNormalization", map_bn},
    {"Add", map_add},
    {"Sum", map_add},
    {"Concat", map_concat},
    {"Pad", map_pad},
    {"Flatten", map_flatten},
    {"Reshape", map_reshape},
    {"Dropout", map_dropout},
    {"Softmax", map_softmax},
};

enum sg_status sgi_om_map_node(struct mapper *mp, int32_t i) {
    const Onnx__NodeProto *n = mp->G->g->node[i];
    const char *op = n->op_type ? n->op_type : "";
    int mapped = 1;
    enum sg_status st = SG_OK;
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0) {
        sgi_om_lack(mp, "%s:%s", n->domain, op);
        mapped = 0;
    } else {
        size_t k = 0;
        const size_t count = sizeof ONNX_OPS / sizeof ONNX_OPS[0];
        while (k < count && strcmp(op, ONNX_OPS[k].name) != 0) k++;
        if (k < count) {
            st = ONNX_OPS[k].map(mp, n, i, &mapped);
        } else {
            sgi_om_lack(mp, "%s", op[0] ? op : "(no op type)");
            mapped = 0;
        }
    }
    if (st == SG_OK && !mapped) st = set_outputs(mp, n, DEAD);
    return st;
}

/* The graph's data input: the one graph input without an initializer. */
int sgi_om_map_input(struct mapper *mp) {
    const Onnx__GraphProto *g = mp->G->g;
    const Onnx__ValueInfoProto *in = NULL;
    int n_data = 0;
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && sgi_onnx_const_find(mp->G, g->input[i]->name) < 0) {
            if (!in) in = g->input[i];
            n_data++;
        }
    if (n_data != 1) {
        sgi_om_cannot(mp, "the graph has %d data inputs (sparsegrain models have one)", n_data);
        return 0;
    }
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape ||
        tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        sgi_om_cannot(mp, "input '%s' is not a float32 tensor of known rank", in->name);
        return 0;
    }
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    int64_t d[4] = {0, 1, 1, 1};
    const int rank = (int)sh->n_dim;
    if (rank < 2 || rank > 4) {
        sgi_om_cannot(mp, "input '%s' has rank %d (sparsegrain takes N x C [x H] x W)", in->name,
                      rank);
        return 0;
    }
    for (int i = 0; i < rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[i];
        int64_t v = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                        ? dm->dim_value
                        : -1;
        if (i == 0) {
            mp->batch = v > 0 ? v : -1;
            continue;
        }
        if (v <= 0 || v > (1 << 24)) {
            sgi_om_cannot(mp, "input '%s': dimension %d is not a fixed size", in->name, i);
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
        sgi_om_cannot(mp, "input '%s' is too large", in->name);
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

