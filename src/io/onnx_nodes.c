/* One ONNX node onto our ops (the table of supported ops and attributes is in
 * docs/file-format.md), and the graph's data input; the mapper's state and toolkit
 * are in onnx_mapper.h / onnx_map.c. */
#include "io/onnx_mapper.h"

/* Flatten/Reshape-as-flatten: a no-op on a [C][1][1] input (only the rank changes). */
static int flatten(struct mapper *mp, const Onnx__NodeProto *n, int32_t x, int32_t index) {
    const struct sg_node *xn = &mp->m->nodes[x];
    if (xn->h == 1 && xn->w == 1) {
        if (!sgi_om_set_outputs(mp, n, ACT(x, 2)))
            return sgi_error(SG_ERR_NOMEM, "out of memory"), -1;
        return 0;
    }
    struct sg_node nd;
    sgi_om_init_node(&nd, SG_OP_FLATTEN, n, index, x);
    return sgi_om_add_node(mp, &nd, 2, n) < 0 ? -1 : 0;
}

/* Maps node i. Returns -1 on a hard error (error text set), 0 otherwise: a node we
 * cannot map records why and marks its outputs DEAD. */
int sgi_om_map_node(struct mapper *mp, int32_t i) {
    const Onnx__NodeProto *n = mp->G->g->node[i];
    struct sg_model *m = mp->m;
    const char *op = n->op_type ? n->op_type : "";
    int32_t x = -1, ci = -1;
    int rank = 0, r;
    struct sg_node nd;
    struct win w;
#define DEAD_OUT()                                                                                 \
    (sgi_om_set_outputs(mp, n, DEAD) ? 0 : (sgi_error(SG_ERR_NOMEM, "out of memory"), -1))
#define NEED_X()                                                                                   \
    do {                                                                                           \
        if (sgi_om_get_act(mp, n, 0, &x, &rank) != 0) return DEAD_OUT();                           \
    } while (0)
#define WANT(idx, role)                                                                            \
    do {                                                                                           \
        int ok_ = sgi_om_want_const(mp, n, idx, role, &ci);                                        \
        if (ok_ < 0) return -1;                                                                    \
        if (ok_ == 0) return DEAD_OUT();                                                           \
    } while (0)

    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0) {
        sgi_om_lack(mp, "%s:%s", n->domain, op);
        return DEAD_OUT();
    }
    if (strcmp(op, "Constant") == 0 || strcmp(op, "DequantizeLinear") == 0) {
        if (n->n_output && sgi_onnx_const_find(mp->G, n->output[0]) >= 0) return 0;
        if (strcmp(op, "Constant") == 0) return DEAD_OUT(); /* value_ints etc.: not a weight */
        sgi_om_lack(mp, "%s", op);
        return DEAD_OUT();
    }
    if (strcmp(op, "Identity") == 0) {
        if (!sgi_om_has_input(n, 0) || n->n_output < 1) return DEAD_OUT();
        if (sgi_om_find_const(mp, n->input[0]) >= 0) return 0; /* resolved through mp->alias */
        NEED_X();
        return sgi_om_set_outputs(mp, n, ACT(x, rank)) ? 0 : -1;
    }
    if (strcmp(op, "Conv") == 0) {
        int32_t pad[4];
        if (sgi_om_get_act_pad(mp, n, 0, &x, &rank, pad) != 0) return DEAD_OUT();
        if (rank < 3 || rank > 4) {
            sgi_om_lack(mp, "Conv(%dD)", rank - 2);
            return DEAD_OUT();
        }
        WANT(1, "weight");
        const struct sgi_onnx_const *wc = &mp->G->consts[ci];
        const int32_t wci = ci;
        if (wc->rank != rank) {
            sgi_om_cannot(mp, "node '%s': weight '%s' has rank %d, input rank %d",
                          sgi_om_node_name(n), wc->name, wc->rank, rank);
            return DEAD_OUT();
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
        if (!sgi_om_window(mp, n, rank - 2, in, wc->dims + 2, 1, &w)) return DEAD_OUT();
        w.p0[0] += pad[0], w.p0[1] += pad[1], w.p1[0] += pad[2], w.p1[1] += pad[3];
        int64_t g = sgi_om_attr_i(n, "group", 1);
        if (g < 1 || g > wc->dims[0] || wc->dims[0] > (1 << 24) || wc->dims[1] > (1 << 24)) {
            sgi_om_cannot(mp, "node '%s': group %lld with %lld filters", sgi_om_node_name(n),
                          (long long)g, (long long)wc->dims[0]);
            return DEAD_OUT();
        }
        int32_t bci = -1;
        if (sgi_om_has_input(n, 2)) {
            WANT(2, "bias");
            bci = ci;
            if (mp->G->consts[bci].count != (size_t)wc->dims[0]) {
                sgi_om_cannot(mp, "node '%s': bias has %zu values for %lld filters",
                              sgi_om_node_name(n), mp->G->consts[bci].count,
                              (long long)wc->dims[0]);
                return DEAD_OUT();
            }
        }
        sgi_om_init_node(&nd, SG_OP_CONV, n, i, x);
        nd.k = (int32_t)wc->dims[0];
        sgi_om_set_window(&nd, &w);
        nd.groups = (int32_t)g;
        nd.has_bias = bci >= 0;
        int32_t ni = sgi_om_add_node(mp, &nd, rank, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        const int64_t d[4] = {wc->dims[0], wc->dims[1], w.k[0], w.k[1]};
        int32_t p = sgi_om_new_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_CONV, ni, 4, d, 0, 1.0f);
        if (p < 0) return -1;
        m->nodes[ni].param[0] = p;
        if (bci >= 0) {
            const int64_t b[1] = {d[0]};
            if ((p = sgi_om_new_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, b, 0, 1.0f)) <
                0)
                return -1;
            m->nodes[ni].param[1] = p;
        }
        return 0;
    }
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0) {
        const int gemm = op[0] == 'G';
        if (gemm && sgi_om_attr_i(n, "transA", 0)) {
            sgi_om_lack(mp, "Gemm(transA=1)");
            return DEAD_OUT();
        }
        NEED_X();
        const struct sg_node *xn = &m->nodes[x];
        if (rank != 2 && !(xn->h == 1 && xn->w == 1)) {
            sgi_om_lack(mp, "%s(%dD input)", op, rank);
            return DEAD_OUT();
        }
        WANT(1, "weight");
        const struct sgi_onnx_const *bc = &mp->G->consts[ci];
        const int32_t wci = ci;
        if (bc->rank != 2) {
            sgi_om_lack(mp, "%s(%dD weight)", op, bc->rank);
            return DEAD_OUT();
        }
        const int transb = gemm && sgi_om_attr_i(n, "transB", 0);
        const int64_t kk = transb ? bc->dims[0] : bc->dims[1],
                      cc = transb ? bc->dims[1] : bc->dims[0];
        const float alpha = gemm ? sgi_om_attr_f(n, "alpha", 1.0f) : 1.0f;
        const float beta = gemm ? sgi_om_attr_f(n, "beta", 1.0f) : 1.0f;
        int32_t bci = -1;
        if (gemm && sgi_om_has_input(n, 2) && beta != 0.0f) {
            WANT(2, "bias");
            bci = ci;
            const struct sgi_onnx_const *cb = &mp->G->consts[bci];
            int vec = cb->count == 1 || (cb->count == (size_t)kk &&
                                         (cb->rank == 1 || (cb->rank == 2 && cb->dims[0] == 1)));
            if (!vec) {
                sgi_om_lack(mp, "Gemm(matrix C)");
                return DEAD_OUT();
            }
        }
        if (kk < 1 || kk > (1 << 24) || cc < 1) {
            sgi_om_cannot(mp, "node '%s': weight of shape %lldx%lld", sgi_om_node_name(n),
                   (long long)bc->dims[0], (long long)bc->dims[1]);
            return DEAD_OUT();
        }
        sgi_om_init_node(&nd, SG_OP_FC, n, i, x);
        nd.k = (int32_t)kk;
        nd.has_bias = bci >= 0;
        int32_t ni = sgi_om_add_node(mp, &nd, 2, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        const int64_t d[2] = {kk, cc};
        int32_t p =
            sgi_om_new_param(mp, wci, SG_PARAM_WEIGHT, SG_LAYER_FC, ni, 2, d, !transb, alpha);
        if (p < 0) return -1;
        m->nodes[ni].param[0] = p;
        if (bci >= 0) {
            const int64_t b[1] = {kk};
            if ((p = sgi_om_new_param(mp, bci, SG_PARAM_BIAS, SG_LAYER_NONE, ni, 1, b, 0, beta)) <
                0)
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
            sgi_om_cannot(mp, "node '%s': GlobalAveragePool of a %dD tensor", sgi_om_node_name(n),
                          rank);
            return DEAD_OUT();
        }
        sgi_om_init_node(&nd, gap ? SG_OP_GAP : SG_OP_RELU, n, i, x);
        return sgi_om_add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0) {
        const int maxp = op[0] == 'M';
        if (maxp && n->n_output > 1 && n->output[1] && *n->output[1]) {
            sgi_om_lack(mp, "MaxPool(Indices output)");
            return DEAD_OUT();
        }
        int32_t pad[4];
        if (sgi_om_get_act_pad(mp, n, 0, &x, &rank, maxp ? NULL : pad) != 0) return DEAD_OUT();
        if (rank < 3 || rank > 4) {
            sgi_om_lack(mp, "%s(%dD)", op, rank - 2);
            return DEAD_OUT();
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t in[2] = {rank == 4 ? xn->h : xn->w, xn->w};
        if (!sgi_om_window(mp, n, rank - 2, in, NULL, 0, &w)) return DEAD_OUT();
        sgi_om_init_node(&nd, maxp ? SG_OP_MAXPOOL : SG_OP_AVGPOOL, n, i, x);
        sgi_om_set_window(&nd, &w);
        nd.ceil_mode = sgi_om_attr_i(n, "ceil_mode", 0) != 0;
        if (!maxp) nd.count_include_pad = sgi_om_attr_i(n, "count_include_pad", 0) != 0;
        if (!maxp && (pad[0] | pad[1] | pad[2] | pad[3])) {
            /* explicit zeros count in the average: fold them as counted padding */
            const int own = nd.pt | nd.pl | nd.pb | nd.pr;
            if (nd.ceil_mode || (own && !nd.count_include_pad)) {
                sgi_om_lack(mp, "Pad(before AveragePool)");
                return DEAD_OUT();
            }
            nd.pt += pad[0], nd.pl += pad[1], nd.pb += pad[2], nd.pr += pad[3];
            nd.count_include_pad = 1;
        }
        if (nd.pt >= nd.kh || nd.pb >= nd.kh || nd.pl >= nd.kw || nd.pr >= nd.kw) {
            sgi_om_lack(mp, "%s(pads >= kernel)", op);
            return DEAD_OUT();
        }
        return sgi_om_add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "BatchNormalization") == 0) {
        if (sgi_om_attr_i(n, "training_mode", 0) || sgi_om_attr_i(n, "spatial", 1) == 0) {
            sgi_om_lack(mp, "BatchNormalization(training_mode)");
            return DEAD_OUT();
        }
        for (size_t o = 1; o < n->n_output; o++)
            if (n->output[o] && *n->output[o]) {
                sgi_om_lack(mp, "BatchNormalization(training outputs)");
                return DEAD_OUT();
            }
        NEED_X();
        int32_t cis[4];
        static const char *const roles[4] = {"scale", "B", "mean", "var"};
        for (int t = 0; t < 4; t++) {
            WANT((size_t)t + 1, roles[t]);
            cis[t] = ci;
            if (mp->G->consts[ci].count != (size_t)m->nodes[x].c) {
                sgi_om_cannot(mp, "node '%s': %s has %zu values for %d channels",
                              sgi_om_node_name(n), roles[t], mp->G->consts[ci].count,
                              m->nodes[x].c);
                return DEAD_OUT();
            }
            for (int u = 0; u < t; u++)
                if (cis[u] == ci) {
                    sgi_om_cannot(mp, "node '%s' reads tensor '%s' twice", sgi_om_node_name(n),
                           mp->G->consts[ci].name);
                    return DEAD_OUT();
                }
        }
        sgi_om_init_node(&nd, SG_OP_BN, n, i, x);
        nd.eps = sgi_om_attr_f(n, "epsilon", 1e-5f);
        /* ONNX: running = momentum * running + (1 - momentum) * batch; ours is the
         * PyTorch convention, the weight of the batch statistic */
        nd.momentum = 1.0f - sgi_om_attr_f(n, "momentum", 0.9f);
        int32_t ni = sgi_om_add_node(mp, &nd, rank, n);
        if (ni < 0) return mp->why[0] ? DEAD_OUT() : -1;
        for (int t = 0; t < 4; t++) {
            const int64_t d[1] = {m->nodes[x].c};
            int32_t p = sgi_om_new_param(mp, cis[t], (enum sg_param_kind)(SG_PARAM_BN_GAMMA + t),
                                  SG_LAYER_NONE, ni, 1, d, 0, 1.0f);
            if (p < 0) return -1;
            m->nodes[ni].param[t] = p;
        }
        return 0;
    }
    if (strcmp(op, "Add") == 0 || strcmp(op, "Sum") == 0 || strcmp(op, "Concat") == 0) {
        const int concat = op[0] == 'C';
        if (n->n_input < 1 || n->n_input > SG_MAX_INPUTS) {
            sgi_om_lack(mp, "%s(%zu inputs)", op, n->n_input);
            return DEAD_OUT();
        }
        /* MatMul output + constant bias */
        if (!concat && n->n_input == 2) {
            for (int side = 0; side < 2; side++) {
                int32_t v = sgi_strmap_get(&mp->act, n->input[side]);
                int32_t bc = sgi_om_find_const(mp, n->input[1 - side]);
                if (v < 0 || bc < 0) continue;
                int32_t fc = v >> 3;
                const struct sgi_onnx_const *c = &mp->G->consts[bc];
                if (fc >= mp->cap_fusable || !mp->fusable[fc] ||
                    c->count != (size_t)m->nodes[fc].k || !c->is_float ||
                    mp->const_param[bc] >= 0 || c->rank > 2 || (c->rank == 2 && c->dims[0] != 1))
                    continue;
                const int64_t d[1] = {m->nodes[fc].k};
                int32_t p =
                    sgi_om_new_param(mp, bc, SG_PARAM_BIAS, SG_LAYER_NONE, fc, 1, d, 0, 1.0f);
                if (p < 0) return -1;
                m->nodes[fc].param[1] = p;
                m->nodes[fc].has_bias = 1;
                mp->fusable[fc] = 0;
                return sgi_om_set_outputs(mp, n, v) ? 0 : -1;
            }
        }
        int32_t ins[SG_MAX_INPUTS];
        int r0 = 0;
        for (size_t t = 0; t < n->n_input; t++) {
            if ((r = sgi_om_get_act(mp, n, t, &ins[t], &rank)) != 0) return DEAD_OUT();
            if (t == 0) r0 = rank;
            else if (rank != r0) {
                sgi_om_lack(mp, "%s(broadcast)", op);
                return DEAD_OUT();
            }
        }
        if (concat) {
            int64_t axis = sgi_om_attr_i(n, "axis", 1);
            if (axis < 0) axis += r0;
            if (axis != 1) {
                sgi_om_lack(mp, "Concat(axis=%lld)", (long long)axis);
                return DEAD_OUT();
            }
        }
        if (n->n_input == 1) return sgi_om_set_outputs(mp, n, ACT(ins[0], r0)) ? 0 : -1;
        sgi_om_init_node(&nd, concat ? SG_OP_CONCAT : SG_OP_ADD, n, i, ins[0]);
        nd.n_in = (int32_t)n->n_input;
        for (size_t t = 0; t < n->n_input; t++) nd.in[t] = ins[t];
        return sgi_om_add_node(mp, &nd, r0, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "Pad") == 0) {
        NEED_X();
        char mode[32];
        sgi_om_attr_s(n, "mode", mode, sizeof mode);
        if (mode[0] && strcmp(mode, "constant") != 0) {
            sgi_om_lack(mp, "Pad(mode=%s)", mode);
            return DEAD_OUT();
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
                return DEAD_OUT();
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
            return DEAD_OUT();
        }
        int32_t pad[4] = {0, 0, 0, 0}; /* top, left, bottom, right */
        for (int d = 0; d < rank; d++) {
            const int64_t a = pv[d], b = pv[rank + d];
            if (a < 0 || b < 0 || a > MAX_SPATIAL || b > MAX_SPATIAL || (d < 2 && (a || b))) {
                sgi_om_lack(mp, "Pad(negative, batch or channel)");
                return DEAD_OUT();
            }
            if (d == rank - 1) pad[1] = (int32_t)a, pad[3] = (int32_t)b;
            else if (d == 2) pad[0] = (int32_t)a, pad[2] = (int32_t)b;
        }
        if (!sgi_om_set_outputs(mp, n, ACT(x, rank))) return -1;
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
        int64_t axis = sgi_om_attr_i(n, "axis", 1);
        if (axis < 0) axis += rank;
        if (axis != 1) {
            sgi_om_lack(mp, "Flatten(axis=%lld)", (long long)axis);
            return DEAD_OUT();
        }
        return flatten(mp, n, x, i) < 0 ? -1 : 0;
    }
    if (strcmp(op, "Reshape") == 0) {
        NEED_X();
        int64_t shape[8];
        size_t ns = 0;
        if (mp->G->opset < 5) {
            int cnt = sgi_om_attr_ints(n, "shape", shape, 8);
            ns = cnt < 0 ? 9 : (size_t)cnt;
        } else {
            int32_t sc = sgi_om_has_input(n, 1) ? sgi_om_find_const(mp, n->input[1]) : -1;
            if (sc < 0) {
                sgi_om_lack(mp, "Reshape(non-constant shape)");
                return DEAD_OUT();
            }
            if (sgi_onnx_const_ints(mp->G, sc, shape, 8, &ns) != SG_OK) ns = 9;
        }
        const struct sg_node *xn = &m->nodes[x];
        const int64_t chw = (int64_t)xn->c * xn->h * xn->w;
        const int allowzero = sgi_om_attr_i(n, "allowzero", 0) != 0;
        int ok = ns == 2 && (shape[1] == chw || (shape[1] == -1 && shape[0] != -1)) &&
                 ((shape[0] == 0 && !allowzero) || shape[0] == -1 ||
                  (mp->batch > 0 && shape[0] == mp->batch));
        if (!ok) {
            sgi_om_lack(mp, "Reshape(not a flatten)");
            return DEAD_OUT();
        }
        return flatten(mp, n, x, i) < 0 ? -1 : 0;
    }
    if (strcmp(op, "Dropout") == 0) {
        if (n->n_output > 1 && n->output[1] && *n->output[1] &&
            sgi_strmap_get(&mp->uses, n->output[1]) > 0) {
            sgi_om_lack(mp, "Dropout(mask output)");
            return DEAD_OUT();
        }
        NEED_X();
        float p = 0.5f;
        if (mp->G->opset < 12) {
            p = sgi_om_attr_f(n, "ratio", 0.5f);
        } else if (sgi_om_has_input(n, 1)) {
            int32_t rc = sgi_om_find_const(mp, n->input[1]);
            if (rc < 0 || mp->G->consts[rc].count != 1 || !mp->G->consts[rc].is_float) {
                sgi_om_lack(mp, "Dropout(non-constant ratio)");
                return DEAD_OUT();
            }
            if (sgi_onnx_const_float(mp->G, rc, &p) != SG_OK) return -1;
        }
        if (sgi_om_has_input(n, 2)) {
            int32_t tc = sgi_om_find_const(mp, n->input[2]);
            int64_t tm;
            if (tc < 0 || mp->G->consts[tc].t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ||
                mp->G->consts[tc].count != 1) {
                sgi_om_lack(mp, "Dropout(training_mode)");
                return DEAD_OUT();
            }
            const Onnx__TensorProto *t = mp->G->consts[tc].t;
            tm = t->has_raw_data ? t->raw_data.data[0] : t->int32_data[0];
            if (tm) {
                sgi_om_lack(mp, "Dropout(training_mode)");
                return DEAD_OUT();
            }
        }
        if (!(p >= 0 && p < 1)) {
            sgi_om_cannot(mp, "node '%s': dropout ratio %g", sgi_om_node_name(n), p);
            return DEAD_OUT();
        }
        sgi_om_init_node(&nd, SG_OP_DROPOUT, n, i, x);
        nd.p = p;
        return sgi_om_add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    if (strcmp(op, "Softmax") == 0) {
        NEED_X();
        int64_t axis = sgi_om_attr_i(n, "axis", mp->G->opset < 13 ? 1 : -1);
        if (axis < 0) axis += rank;
        const struct sg_node *xn = &m->nodes[x];
        if (axis != 1 || !(rank == 2 || (xn->h == 1 && xn->w == 1))) {
            sgi_om_lack(mp, "Softmax(axis=%lld of %dD)", (long long)axis, rank);
            return DEAD_OUT();
        }
        sgi_om_init_node(&nd, SG_OP_SOFTMAX, n, i, x);
        return sgi_om_add_node(mp, &nd, rank, n) < 0 ? (mp->why[0] ? DEAD_OUT() : -1) : 0;
    }
    sgi_om_lack(mp, "%s", op[0] ? op : "(no op type)");
    return DEAD_OUT();
#undef NEED_X
#undef WANT
#undef DEAD_OUT
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

