/* Built-in networks and weight initialisation. */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/nn.h"

static const char *const BUILTIN[] = {"lenet300", "lenet5", "vgg7", "resnet8", NULL};

const char *const *sg_model_builtin_names(void) { return BUILTIN; }

/* Small builder: each helper appends one node after `prev` and returns its index. */
static int32_t add(struct sg_model *m, enum sg_op op, const char *name, int32_t prev) {
    struct sg_node n;
    sg_node_init(&n, op, name);
    if (prev >= 0) {
        n.n_in = 1;
        n.in[0] = prev;
    }
    return sg_model_add(m, &n);
}

static int32_t conv(struct sg_model *m, const char *name, int32_t prev, int k, int ks, int stride,
                    int pad, int bias) {
    int32_t i = add(m, SG_OP_CONV, name, prev);
    if (i < 0) return i;
    struct sg_node *n = &m->nodes[i];
    n->k = k;
    n->kh = n->kw = ks;
    n->sh = n->sw = stride;
    n->pt = n->pl = n->pb = n->pr = pad;
    n->has_bias = bias;
    return i;
}

static int32_t fc(struct sg_model *m, const char *name, int32_t prev, int k) {
    int32_t i = add(m, SG_OP_FC, name, prev);
    if (i >= 0) {
        m->nodes[i].k = k;
        m->nodes[i].has_bias = 1;
    }
    return i;
}

static int32_t pool(struct sg_model *m, const char *name, int32_t prev, int k) {
    int32_t i = add(m, SG_OP_MAXPOOL, name, prev);
    if (i >= 0) {
        m->nodes[i].kh = m->nodes[i].kw = k;
        m->nodes[i].sh = m->nodes[i].sw = k;
    }
    return i;
}

/* conv (no bias) + BN + optional ReLU */
static int32_t cbr(struct sg_model *m, const char *name, int32_t prev, int k, int ks, int stride,
                   int relu) {
    char nm[SG_NAME_MAX];
    int32_t c = conv(m, name, prev, k, ks, stride, ks / 2, 0);
    snprintf(nm, sizeof nm, "%s_bn", name);
    int32_t b = add(m, SG_OP_BN, nm, c);
    if (!relu) return b;
    snprintf(nm, sizeof nm, "%s_relu", name);
    return add(m, SG_OP_RELU, nm, b);
}

static int32_t basic_block(struct sg_model *m, const char *name, int32_t prev, int cin, int k,
                           int stride) {
    char nm[SG_NAME_MAX];
    snprintf(nm, sizeof nm, "%s_conv1", name);
    int32_t a = cbr(m, nm, prev, k, 3, stride, 1);
    snprintf(nm, sizeof nm, "%s_conv2", name);
    int32_t b = cbr(m, nm, a, k, 3, 1, 0);
    int32_t sc = prev;
    if (stride != 1 || cin != k) {
        snprintf(nm, sizeof nm, "%s_proj", name);
        sc = cbr(m, nm, prev, k, 1, stride, 0);
    }
    snprintf(nm, sizeof nm, "%s_add", name);
    int32_t s = add(m, SG_OP_ADD, nm, b);
    if (s < 0) return s;
    m->nodes[s].n_in = 2;
    m->nodes[s].in[1] = sc;
    snprintf(nm, sizeof nm, "%s_relu", name);
    return add(m, SG_OP_RELU, nm, s);
}

static enum sg_status build(const char *name, int classes, struct sg_model *m) {
    int32_t x = add(m, SG_OP_INPUT, "input", -1);
    if (strcmp(name, "lenet300") == 0) {
        x = add(m, SG_OP_FLATTEN, "flatten", x);
        x = fc(m, "fc1", x, 300);
        x = add(m, SG_OP_RELU, "relu1", x);
        x = fc(m, "fc2", x, 100);
        x = add(m, SG_OP_RELU, "relu2", x);
        x = fc(m, "fc3", x, classes);
    } else if (strcmp(name, "lenet5") == 0) {
        /* Caffe's LeNet: no ReLU after the convolutions */
        x = conv(m, "conv1", x, 20, 5, 1, 0, 1);
        x = pool(m, "pool1", x, 2);
        x = conv(m, "conv2", x, 50, 5, 1, 0, 1);
        x = pool(m, "pool2", x, 2);
        x = add(m, SG_OP_FLATTEN, "flatten", x);
        x = fc(m, "fc1", x, 500);
        x = add(m, SG_OP_RELU, "relu1", x);
        x = fc(m, "fc2", x, classes);
    } else if (strcmp(name, "vgg7") == 0) {
        x = cbr(m, "conv1", x, 32, 3, 1, 1);
        x = cbr(m, "conv2", x, 32, 3, 1, 1);
        x = pool(m, "pool1", x, 2);
        x = cbr(m, "conv3", x, 64, 3, 1, 1);
        x = cbr(m, "conv4", x, 64, 3, 1, 1);
        x = pool(m, "pool2", x, 2);
        x = cbr(m, "conv5", x, 128, 3, 1, 1);
        x = pool(m, "pool3", x, 2);
        x = add(m, SG_OP_FLATTEN, "flatten", x);
        x = fc(m, "fc1", x, 256);
        x = add(m, SG_OP_RELU, "relu_fc1", x);
        x = fc(m, "fc2", x, classes);
    } else if (strcmp(name, "resnet8") == 0) {
        x = cbr(m, "conv1", x, 16, 3, 1, 1);
        x = basic_block(m, "block1", x, 16, 16, 1);
        x = basic_block(m, "block2", x, 16, 32, 2);
        x = basic_block(m, "block3", x, 32, 64, 2);
        x = add(m, SG_OP_GAP, "gap", x);
        x = fc(m, "fc", x, classes);
    } else {
        return sgi_error(SG_ERR_ARG, "unknown model '%s' (built-in: lenet300, lenet5, vgg7, resnet8)",
                         name);
    }
    return x < 0 ? SG_ERR_ARG : SG_OK;
}

enum sg_status sg_model_build(const char *name, int in_c, int in_h, int in_w, int n_classes,
                              uint64_t seed, struct sg_model **out) {
    *out = NULL;
    if (in_c <= 0 || in_h <= 0 || in_w <= 0 || n_classes <= 0)
        return sgi_error(SG_ERR_ARG, "model input %dx%dx%d with %d classes", in_c, in_h, in_w,
                         n_classes);
    struct sg_model *m = sg_model_new(name, in_c, in_h, in_w);
    if (!m) return SG_ERR_NOMEM;
    enum sg_status st = build(name, n_classes, m);
    if (st == SG_OK) st = sg_model_finalize(m);
    if (st != SG_OK) {
        sg_model_free(m);
        return st;
    }
    sg_model_init_weights(m, seed);
    *out = m;
    return SG_OK;
}

void sg_model_init_weights(struct sg_model *m, uint64_t seed) {
    sg_rng r;
    sg_rng_seed(&r, seed);
    int32_t last = -1;
    for (int32_t i = 0; i < m->n_params; i++)
        if (m->params[i].kind == SG_PARAM_WEIGHT) last = i;
    for (int32_t i = 0; i < m->n_params; i++) {
        const struct sg_param *p = &m->params[i];
        float *d = sg_param_data(m, i);
        float v = 0.0f;
        switch (p->kind) {
        case SG_PARAM_WEIGHT: {
            /* fan_in = C/g * R * S; He normal for ReLU layers, LeCun normal for the last */
            double fan_in = (double)p->count / (double)p->dims[0];
            double sd = sqrt((i == last ? 1.0 : 2.0) / fan_in);
            for (size_t j = 0; j < p->count; j++) d[j] = (float)(sd * sg_rng_normal(&r));
            continue;
        }
        case SG_PARAM_BN_GAMMA:
        case SG_PARAM_BN_VAR: v = 1.0f; break;
        case SG_PARAM_OTHER: continue;
        default: v = 0.0f; break;
        }
        for (size_t j = 0; j < p->count; j++) d[j] = v;
    }
    sg_model_apply_masks(m);
}

float sg_model_default_lr(const struct sg_model *m) {
    /* nets without normalisation (LeNet) diverge above ~0.01 with SGD + momentum 0.9 */
    for (int32_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == SG_OP_BN) return 0.05f;
    return 0.01f;
}
