/* ONNX: inference on the ONNX node test vectors (Debian libonnx-testdata), round trips
 * of every built-in network, quantised and float16 weights, and damaged or hostile
 * files. */
#include <sys/stat.h>

#include "harness.h"
#include "io/onnx.h"
#include "sparsegrain/io.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *buf;
    enum sg_status st = sg_file_read(path, (size_t)1 << 30, 0, &buf, len);
    return st == SG_OK ? buf : NULL;
}

/* Float values of a test vector (float32 only). */
static float *tensor_floats(const char *path, size_t *n, int *rank) {
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf) return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!t || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        if (t) onnx__tensor_proto__free_unpacked(t, NULL);
        return NULL;
    }
    size_t cnt = 1;
    for (size_t i = 0; i < t->n_dims; i++) cnt *= (size_t)t->dims[i];
    float *out = malloc(cnt * sizeof *out + 1);
    if (t->has_raw_data) memcpy(out, t->raw_data.data, cnt * 4);
    else memcpy(out, t->float_data, cnt * 4);
    *n = cnt;
    *rank = (int)t->n_dims;
    onnx__tensor_proto__free_unpacked(t, NULL);
    return out;
}

/* Node tests feed weights as graph inputs; this turns inputs 1.. into initializers
 * (from input_<i>.pb) and flattens a non-2-D output so the model ends in a vector.
 * Returns the packed model. */
static uint8_t *node_test_model(const char *dir, size_t *out_len, int out_rank) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    size_t len;
    uint8_t *buf = slurp(path, &len);
    CHECK(buf);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    CHECK(mp && mp->graph);
    Onnx__GraphProto *g = mp->graph;
    Onnx__TensorProto *extra[8];
    size_t n_extra = 0;
    for (size_t i = 1; i < g->n_input && n_extra < 8; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, i);
        size_t l;
        uint8_t *b = slurp(path, &l);
        CHECK(b);
        Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, l, b);
        free(b);
        CHECK(t);
        t->name = g->input[i]->name; /* borrowed; restored below */
        extra[n_extra++] = t;
    }
    Onnx__TensorProto **old_init = g->initializer;
    size_t old_n = g->n_initializer;
    Onnx__TensorProto **ni = malloc((old_n + n_extra + 1) * sizeof *ni);
    if (old_n) memcpy(ni, old_init, old_n * sizeof *ni);
    memcpy(ni + old_n, extra, n_extra * sizeof *ni);
    g->initializer = ni;
    g->n_initializer = old_n + n_extra;
    /* Flatten(axis=1) after the output */
    Onnx__NodeProto flat = ONNX__NODE_PROTO__INIT;
    Onnx__AttributeProto axis = ONNX__ATTRIBUTE_PROTO__INIT;
    Onnx__AttributeProto *ap = &axis;
    char *fin[1], *fout[1] = {(char *)"sg_flat"};
    char *old_out = g->output[0]->name;
    Onnx__NodeProto **nodes = malloc((g->n_node + 1) * sizeof *nodes);
    Onnx__NodeProto **old_nodes = g->node;
    size_t old_nn = g->n_node;
    memcpy(nodes, g->node, g->n_node * sizeof *nodes);
    if (out_rank != 2) {
        fin[0] = old_out;
        flat.op_type = (char *)"Flatten";
        flat.n_input = 1, flat.input = fin;
        flat.n_output = 1, flat.output = fout;
        axis.name = (char *)"axis";
        axis.has_type = 1, axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        axis.has_i = 1, axis.i = 1;
        flat.n_attribute = 1, flat.attribute = &ap;
        nodes[g->n_node++] = &flat;
        g->node = nodes;
        g->output[0]->name = fout[0];
    }
    *out_len = onnx__model_proto__get_packed_size(mp);
    uint8_t *out = malloc(*out_len);
    onnx__model_proto__pack(mp, out);
    g->output[0]->name = old_out;
    g->node = old_nodes;
    g->n_node = old_nn;
    g->initializer = old_init;
    g->n_initializer = old_n;
    for (size_t i = 0; i < n_extra; i++) {
        extra[i]->name = NULL;
        onnx__tensor_proto__free_unpacked(extra[i], NULL);
    }
    free(ni);
    free(nodes);
    onnx__model_proto__free_unpacked(mp, NULL);
    return out;
}

struct node_case {
    const char *name;
    const char *skip; /* NULL: must run and match; else why it cannot run */
};

static const struct node_case NODE_CASES[] = {
    {"test_basic_conv_with_padding", NULL},
    {"test_basic_conv_without_padding", NULL},
    {"test_conv_with_autopad_same", NULL},
    {"test_conv_with_strides_and_asymmetric_padding", NULL},
    {"test_conv_with_strides_no_padding", NULL},
    {"test_conv_with_strides_padding", NULL},
    {"test_maxpool_1d_default", NULL},
    {"test_maxpool_2d_ceil", NULL},
    {"test_maxpool_2d_default", NULL},
    {"test_maxpool_2d_pads", NULL},
    {"test_maxpool_2d_precomputed_pads", NULL},
    {"test_maxpool_2d_precomputed_same_upper", NULL},
    {"test_maxpool_2d_precomputed_strides", NULL},
    {"test_maxpool_2d_same_lower", NULL},
    {"test_maxpool_2d_same_upper", NULL},
    {"test_maxpool_2d_strides", NULL},
    {"test_maxpool_2d_dilations", "pool dilations are not supported"},
    {"test_maxpool_2d_uint8", "uint8 activations"},
    {"test_maxpool_3d_default", "3-D pooling"},
    {"test_maxpool_with_argmax_2d_precomputed_pads", "the Indices output"},
    {"test_maxpool_with_argmax_2d_precomputed_strides", "the Indices output"},
    {"test_averagepool_1d_default", NULL},
    {"test_averagepool_2d_ceil", NULL},
    {"test_averagepool_2d_default", NULL},
    {"test_averagepool_2d_pads", NULL},
    {"test_averagepool_2d_pads_count_include_pad", NULL},
    {"test_averagepool_2d_precomputed_pads", NULL},
    {"test_averagepool_2d_precomputed_pads_count_include_pad", NULL},
    {"test_averagepool_2d_precomputed_same_upper", NULL},
    {"test_averagepool_2d_precomputed_strides", NULL},
    {"test_averagepool_2d_same_lower", NULL},
    {"test_averagepool_2d_same_upper", NULL},
    {"test_averagepool_2d_strides", NULL},
    {"test_averagepool_3d_default", "3-D pooling"},
    {"test_globalaveragepool", NULL},
    {"test_globalaveragepool_precomputed", NULL},
    {"test_batchnorm_epsilon", NULL},
    {"test_batchnorm_example", NULL},
    {"test_batchnorm_epsilon_training_mode", "training_mode=1"},
    {"test_batchnorm_example_training_mode", "training_mode=1"},
    {"test_gemm_alpha", NULL},
    {"test_gemm_beta", NULL},
    {"test_gemm_default_no_bias", NULL},
    {"test_gemm_default_scalar_bias", NULL},
    {"test_gemm_default_single_elem_vector_bias", NULL},
    {"test_gemm_default_vector_bias", NULL},
    {"test_gemm_default_zero_bias", NULL},
    {"test_gemm_transposeB", NULL},
    {"test_gemm_all_attributes", "transA=1 (the activation transposed)"},
    {"test_gemm_transposeA", "transA=1 (the activation transposed)"},
    {"test_gemm_default_matrix_bias", "C is a full M x N matrix, not a per-output bias"},
    {"test_matmul_2d", NULL},
    {"test_relu", NULL},
    {"test_add", "the second operand is a data input (one-input models; Add is covered by the "
                 "PyTorch residual nets in tests/cli/onnx.sh)"},
    {"test_add_bcast", "broadcast Add with a constant"},
    {"test_add_uint8", "uint8 activations"},
    {"test_flatten_axis1", NULL},
    {"test_flatten_default_axis", NULL},
    {"test_flatten_negative_axis3", NULL},
    {"test_flatten_axis0", "Flatten at an axis other than 1"},
    {"test_flatten_axis2", "Flatten at an axis other than 1"},
    {"test_flatten_axis3", "Flatten at an axis other than 1"},
    {"test_flatten_negative_axis1", "Flatten at an axis other than 1"},
    {"test_flatten_negative_axis2", "Flatten at an axis other than 1"},
    {"test_flatten_negative_axis4", "Flatten at an axis other than 1"},
    {"test_concat_2d_axis_1", "two data inputs (Concat is covered by tests/cli/onnx.sh)"},
    {"test_concat_3d_axis_1", "two data inputs (Concat is covered by tests/cli/onnx.sh)"},
    {"test_concat_2d_axis_0", "Concat along the batch axis"},
    {"test_softmax_example", NULL},
    {"test_softmax_large_number", NULL},
    {"test_softmax_axis_1", "softmax over one axis of a 3-D tensor"},
    {"test_softmax_default_axis", "softmax over the last axis of a 3-D tensor"},
    {"test_softmax_negative_axis", "softmax over the last axis of a 3-D tensor"},
    {"test_dropout_default", NULL},
    {"test_dropout_default_ratio", NULL},
    {"test_dropout_random_old", NULL},
    {"test_dropout_default_mask", "the mask output"},
    {"test_dropout_default_old", "a 1-D input"},
    {"test_identity", NULL},
    {"test_reshape_reduced_dims", NULL},
    {"test_reshape_reordered_all_dims", "a Reshape that is not a flatten"},
    {"test_reshape_extended_dims", "a Reshape that is not a flatten"},
};

SG_TEST(onnx_node_tests_match_reference_outputs) {
    struct stat sb;
    if (stat(NODE_DIR, &sb) != 0) {
        printf("    skipped: %s is missing (Debian libonnx-testdata)\n", NODE_DIR);
        return;
    }
    int ran = 0, skipped = 0;
    double worst = 0;
    for (size_t c = 0; c < sizeof NODE_CASES / sizeof NODE_CASES[0]; c++) {
        const struct node_case *nc = &NODE_CASES[c];
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%s/%s", NODE_DIR, nc->name);
        size_t nx, ny;
        int rx, ry;
        snprintf(path, sizeof path, "%s/test_data_set_0/input_0.pb", dir);
        float *x = tensor_floats(path, &nx, &rx);
        snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
        float *y = tensor_floats(path, &ny, &ry);
        if (!x || !y) {
            CHECK_MSG(nc->skip, "%s: test vectors are not float32", nc->name);
            printf("    skip  %-52s %s\n", nc->name, nc->skip);
            skipped++;
            free(x), free(y);
            continue;
        }
        size_t len;
        uint8_t *buf = node_test_model(dir, &len, ry);
        struct sg_model *m;
        enum sg_status st = sg_onnx_load_mem(buf, len, nc->name, &m);
        free(buf);
        if (nc->skip) {
            /* the skip must be real: the import works, the graph does not run */
            CHECK_MSG(st != SG_OK || !sg_model_runnable(m), "%s runs now: update the table",
                      nc->name);
            const char *why = st == SG_OK ? (sg_meta_get(m, "unsupported_ops")
                                                 ? sg_meta_get(m, "unsupported_ops")
                                                 : sg_meta_get(m, "not_runnable"))
                                          : sg_last_error();
            printf("    skip  %-52s %s [%s]\n", nc->name, nc->skip, why ? why : "");
            if (st == SG_OK) sg_model_free(m);
            skipped++;
            free(x), free(y);
            continue;
        }
        CHECK_MSG(st == SG_OK, "%s: %s", nc->name, sg_last_error());
        CHECK_MSG(sg_model_check_runnable(m, nc->name) == SG_OK, "%s", sg_last_error());
        const size_t per = (size_t)m->in_c * m->in_h * m->in_w;
        const int n = (int)(nx / per);
        CHECK_EQ_INT((size_t)n * per, nx);
        CHECK_EQ_INT((size_t)n * m->n_classes, ny);
        struct sg_exec *e;
        CHECK_OK(sg_exec_new(m, n, 0, &e));
        CHECK_OK(sg_forward(m, e, x, n, 0, NULL));
        float *out = malloc(ny * sizeof *out);
        sg_exec_logits(e, out);
        double err = sgt_max_rel_err(out, y, ny);
        CHECK_MSG(err <= 1e-4, "%s: max relative error %g", nc->name, err);
        if (err > worst) worst = err;
        printf("    run   %-52s max rel err %.2g\n", nc->name, err);
        ran++;
        free(out);
        sg_exec_free(e);
        sg_model_free(m);
        free(x), free(y);
    }
    printf("    %d node tests run (worst relative error %.2g), %d skipped\n", ran, worst, skipped);
    CHECK(ran >= 50);
}

/* ---- round trips ---- */
static struct sg_model *pruned_model(const char *name, uint64_t seed) {
    struct sg_model *m;
    CHECK_OK(sg_model_build(name, 1, 28, 28, 10, seed, &m));
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (size_t i = 0; i < m->arena_len; i++)
        if (sg_rng_uniform(&r) < 0.3) m->mask[i] = 0;
    /* BN statistics away from 0/1 so that a mix-up would show */
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind != SG_PARAM_WEIGHT) {
            float *d = sg_param_data(m, p);
            for (size_t j = 0; j < m->params[p].count; j++)
                d[j] = 0.5f + (float)sg_rng_uniform(&r);
        }
    sg_model_apply_masks(m);
    return m;
}

/* Tensors and masks of every parameter equal bit for bit (the arena's alignment
 * padding is not part of any tensor). */
static void same_tensors(const struct sg_model *a, const struct sg_model *b, int masks) {
    CHECK_EQ_INT(a->n_params, b->n_params);
    for (int32_t p = 0; p < a->n_params; p++) {
        const size_t oa = a->params[p].offset, ob = b->params[p].offset, n = a->params[p].count;
        CHECK_EQ_INT(n, b->params[p].count);
        CHECK_MSG(memcmp(a->arena + oa, b->arena + ob, n * 4) == 0, "%s differs", a->params[p].name);
        if (masks)
            CHECK_MSG(memcmp(a->mask + oa, b->mask + ob, n) == 0, "mask of %s differs",
                      a->params[p].name);
    }
}

static void same_forward(struct sg_model *a, struct sg_model *b, int exact) {
    const int n = 3;
    const size_t per = (size_t)a->in_c * a->in_h * a->in_w;
    float *x = malloc(per * n * sizeof *x), *ya = malloc(10 * n * sizeof *ya),
          *yb = malloc(10 * n * sizeof *yb);
    sg_rng r;
    sg_rng_seed(&r, 7);
    for (size_t i = 0; i < per * n; i++) x[i] = sg_rng_normal(&r);
    struct sg_exec *ea, *eb;
    CHECK_OK(sg_exec_new(a, n, 0, &ea));
    CHECK_OK(sg_exec_new(b, n, 0, &eb));
    CHECK_OK(sg_forward(a, ea, x, n, 0, NULL));
    CHECK_OK(sg_forward(b, eb, x, n, 0, NULL));
    sg_exec_logits(ea, ya);
    sg_exec_logits(eb, yb);
    if (exact) CHECK(memcmp(ya, yb, 10 * n * sizeof *ya) == 0);
    else CHECK(sgt_max_rel_err(yb, ya, 10 * (size_t)n) < 1e-5);
    sg_exec_free(ea), sg_exec_free(eb);
    free(x), free(ya), free(yb);
}

SG_TEST(onnx_round_trip_of_builtins_is_bit_exact) {
    const char *const *names = sg_model_builtin_names();
    for (int t = 0; names[t]; t++) {
        struct sg_model *m = pruned_model(names[t], 11 + t), *m2, *m3;
        uint8_t *buf;
        size_t len;
        /* with masks: every tensor and every mask comes back */
        CHECK_OK(sg_onnx_serialize(m, SG_ONNX_MASKS, &buf, &len));
        CHECK_OK(sg_onnx_load_mem(buf, len, names[t], &m2));
        free(buf);
        CHECK_MSG(sg_model_runnable(m2), "%s: %s", names[t], sg_meta_get(m2, "unsupported_ops"));
        CHECK_EQ_INT(m2->n_params, m->n_params);
        CHECK_EQ_INT(m2->n_nodes, m->n_nodes);
        CHECK_EQ_INT(m2->arena_len, m->arena_len);
        for (int32_t p = 0; p < m->n_params; p++) {
            const struct sg_param *a = &m->params[p], *b = &m2->params[p];
            CHECK_MSG(strcmp(a->name, b->name) == 0, "%s vs %s", a->name, b->name);
            CHECK(a->kind == b->kind && a->layer == b->layer && a->ndim == b->ndim);
            CHECK(memcmp(a->dims, b->dims, sizeof a->dims) == 0 && a->offset == b->offset);
        }
        same_tensors(m, m2, 1);
        for (int32_t i = 0; i < m->n_nodes; i++) {
            struct sg_node a = m->nodes[i], b = m2->nodes[i];
            CHECK_NEAR(a.momentum, b.momentum, 1e-6);
            a.momentum = b.momentum = 0;
            CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "%s: node %s differs", names[t], a.name);
        }
        same_forward(m, m2, 1);
        /* .sgm -> .onnx -> .sgm: the .sgm holds the same tensors */
        char path[600];
        snprintf(path, sizeof path, "%s/%s.sgm", sgt_tmpdir(), names[t]);
        CHECK_OK(sg_model_save(m2, path, NULL));
        CHECK_OK(sg_model_load(path, &m3));
        same_tensors(m, m3, 1);
        sg_model_free(m3);
        sg_model_free(m2);
        /* without masks: weights exact, weight masks from the zeros */
        CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
        CHECK_OK(sg_onnx_load_mem(buf, len, names[t], &m2));
        free(buf);
        same_tensors(m, m2, 0);
        for (int32_t p = 0; p < m->n_params; p++)
            if (m->params[p].kind == SG_PARAM_WEIGHT)
                CHECK(memcmp(sg_param_mask(m, p), sg_param_mask(m2, p), m->params[p].count) == 0);
        sg_model_free(m2);
        sg_model_free(m);
    }
}

SG_TEST(onnx_write_back_keeps_graph_and_pruned_zeros) {
    struct sg_model *m = pruned_model("resnet8", 5), *m2, *m3;
    uint8_t *buf, *buf2;
    size_t len, len2;
    CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
    CHECK_OK(sg_onnx_load_mem(buf, len, "r.onnx", &m2));
    CHECK(m2->ext != NULL);
    /* prune more: every second kept weight of the first conv */
    int32_t p = sg_model_find_param(m2, "conv1.weight");
    CHECK(p >= 0);
    uint8_t *mk = sg_param_mask(m2, p);
    for (size_t j = 0; j < m2->params[p].count; j += 2) mk[j] = 0;
    sg_model_apply_masks(m2);
    struct sg_model *c;
    CHECK_OK(sg_model_clone(m2, &c)); /* the clone keeps the graph too */
    CHECK(c->ext != NULL);
    CHECK_OK(sg_onnx_serialize(c, SG_ONNX_MASKS, &buf2, &len2));
    CHECK_OK(sg_onnx_load_mem(buf2, len2, "r2.onnx", &m3));
    same_tensors(m2, m3, 1);
    for (size_t j = 0; j < m3->params[p].count; j += 2) CHECK(sg_param_data(m3, p)[j] == 0.0f);
    same_forward(m2, m3, 1);
    /* writing it back again with masks replaces the masks, not adds a second set */
    free(buf);
    CHECK_OK(sg_onnx_serialize(m3, SG_ONNX_MASKS, &buf, &len));
    CHECK_EQ_INT(len, len2);
    free(buf), free(buf2);
    sg_model_free(c), sg_model_free(m), sg_model_free(m2), sg_model_free(m3);
}

/* ---- graphs made by hand ---- */
struct gb { /* a tiny graph builder over protobuf-c structs (static storage) */
    Onnx__ModelProto mp;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto ops, *opsp;
    Onnx__NodeProto nodes[8], *np[8];
    Onnx__TensorProto inits[8], *ip[8];
    Onnx__ValueInfoProto in, out, *inp, *outp;
    Onnx__TypeProto tp;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sh;
    Onnx__TensorShapeProto__Dimension dims[4], *dp[4];
    Onnx__AttributeProto attrs[16], *ap[16];
    int n_attr;
    int64_t idims[8][4];
};

static void gb_init(struct gb *b, int64_t opset, const int64_t *in_dims) {
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->mp);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->ops);
    b->ops.has_version = 1, b->ops.version = opset;
    b->opsp = &b->ops;
    b->mp.has_ir_version = 1, b->mp.ir_version = 7;
    b->mp.n_opset_import = 1, b->mp.opset_import = &b->opsp;
    b->mp.graph = &b->g;
    onnx__value_info_proto__init(&b->in);
    onnx__value_info_proto__init(&b->out);
    onnx__type_proto__init(&b->tp);
    onnx__type_proto__tensor__init(&b->tt);
    onnx__tensor_shape_proto__init(&b->sh);
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&b->dims[i]);
        b->dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        b->dims[i].dim_value = in_dims[i];
        b->dp[i] = &b->dims[i];
    }
    b->sh.n_dim = 4, b->sh.dim = b->dp;
    b->tt.has_elem_type = 1, b->tt.elem_type = 1, b->tt.shape = &b->sh;
    b->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, b->tp.tensor_type = &b->tt;
    b->in.name = (char *)"x", b->in.type = &b->tp;
    b->inp = &b->in;
    b->out.name = (char *)"y";
    b->outp = &b->out;
    b->g.n_input = 1, b->g.input = &b->inp;
    b->g.n_output = 1, b->g.output = &b->outp;
    b->g.node = b->np;
    b->g.initializer = b->ip;
}

static Onnx__NodeProto *gb_node(struct gb *b, const char *op, char **in, size_t n_in, char **out) {
    Onnx__NodeProto *n = &b->nodes[b->g.n_node];
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->input = in, n->n_input = n_in;
    n->output = out, n->n_output = 1;
    n->attribute = &b->ap[b->n_attr];
    b->np[b->g.n_node++] = n;
    return n;
}

static void gb_attr_ints(struct gb *b, Onnx__NodeProto *n, const char *name, int64_t *v, size_t cnt) {
    Onnx__AttributeProto *a = &b->attrs[b->n_attr];
    onnx__attribute_proto__init(a);
    a->name = (char *)name, a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->ints = v, a->n_ints = cnt;
    b->ap[b->n_attr++] = a;
    n->n_attribute++;
}

static Onnx__TensorProto *gb_init_tensor(struct gb *b, const char *name, int dt, int ndim,
                                         const int64_t *dims, const void *raw, size_t bytes) {
    Onnx__TensorProto *t = &b->inits[b->g.n_initializer];
    onnx__tensor_proto__init(t);
    t->name = (char *)name, t->has_data_type = 1, t->data_type = dt;
    memcpy(b->idims[b->g.n_initializer], dims, (size_t)ndim * sizeof *dims);
    t->dims = b->idims[b->g.n_initializer], t->n_dims = (size_t)ndim;
    t->has_raw_data = 1, t->raw_data.data = (uint8_t *)raw, t->raw_data.len = bytes;
    b->ip[b->g.n_initializer++] = t;
    return t;
}

static uint8_t *gb_pack(struct gb *b, size_t *len) {
    *len = onnx__model_proto__get_packed_size(&b->mp);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(&b->mp, buf);
    return buf;
}

/* Conv whose weight is DequantizeLinear(int8, per-channel scale, zero point), bias a
 * float16 Constant node: the values, and requantisation on export. */
SG_TEST(onnx_quantised_and_float16_weights) {
    struct gb b;
    const int64_t xin[4] = {1, 1, 3, 3};
    gb_init(&b, 13, xin);
    int8_t q[2 * 1 * 2 * 2] = {-3, 0, 5, 127, 10, -128, 2, 4};
    float scale[2] = {0.5f, 0.25f};
    int8_t zero[2] = {1, -2};
    uint16_t bias_h[2] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
    const int64_t dq[4] = {2, 1, 2, 2}, d1[1] = {2};
    gb_init_tensor(&b, "wq", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 4, dq, q, sizeof q);
    gb_init_tensor(&b, "ws", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, d1, scale, sizeof scale);
    gb_init_tensor(&b, "wz", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, d1, zero, sizeof zero);
    char *dq_in[3] = {(char *)"wq", (char *)"ws", (char *)"wz"}, *dq_out[1] = {(char *)"w"};
    Onnx__NodeProto *dqn = gb_node(&b, "DequantizeLinear", dq_in, 3, dq_out);
    Onnx__AttributeProto axis = ONNX__ATTRIBUTE_PROTO__INIT, *axp = &axis;
    axis.name = (char *)"axis", axis.has_i = 1, axis.i = 0, axis.has_type = 1;
    axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    dqn->attribute = &axp, dqn->n_attribute = 1;
    Onnx__TensorProto bt = ONNX__TENSOR_PROTO__INIT;
    bt.has_data_type = 1, bt.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    int64_t bd[1] = {2};
    bt.dims = bd, bt.n_dims = 1, bt.has_raw_data = 1;
    bt.raw_data.data = (uint8_t *)bias_h, bt.raw_data.len = 4;
    Onnx__AttributeProto val = ONNX__ATTRIBUTE_PROTO__INIT, *valp = &val;
    val.name = (char *)"value", val.t = &bt, val.has_type = 1;
    val.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    char *c_out[1] = {(char *)"bias"};
    Onnx__NodeProto *cn = gb_node(&b, "Constant", NULL, 0, c_out);
    cn->attribute = &valp, cn->n_attribute = 1;
    char *conv_in[3] = {(char *)"x", (char *)"w", (char *)"bias"}, *conv_out[1] = {(char *)"c"};
    gb_node(&b, "Conv", conv_in, 3, conv_out);
    char *gap_out[1] = {(char *)"g"}, *flat_out[1] = {(char *)"y"};
    gb_node(&b, "GlobalAveragePool", conv_out, 1, gap_out);
    gb_node(&b, "Flatten", gap_out, 1, flat_out);
    size_t len;
    uint8_t *buf = gb_pack(&b, &len);
    struct sg_model *m, *m2;
    CHECK_OK(sg_onnx_load_mem(buf, len, "q.onnx", &m));
    CHECK_MSG(sg_model_runnable(m), "%s", sg_meta_get(m, "unsupported_ops"));
    int32_t pw = sg_model_find_param(m, "w"), pb = sg_model_find_param(m, "bias");
    CHECK(pw >= 0 && pb >= 0);
    const float *w = sg_param_data(m, pw);
    for (int i = 0; i < 8; i++) CHECK(w[i] == (float)(q[i] - zero[i / 4]) * scale[i / 4]);
    CHECK(sg_param_data(m, pb)[0] == 1.0f && sg_param_data(m, pb)[1] == -2.0f);
    CHECK(sg_param_mask(m, pw)[0] == 1 && sg_param_mask(m, pw)[1] == 1); /* q=0, zp=1: -0.5 */
    /* prune w[0], change the bias, write back: int8 keeps its type (q = zero point) */
    sg_param_mask(m, pw)[0] = 0;
    sg_param_data(m, pb)[1] = 0.5f;
    sg_model_apply_masks(m);
    uint8_t *out;
    size_t out_len;
    CHECK_OK(sg_onnx_serialize(m, 0, &out, &out_len));
    CHECK_OK(sg_onnx_load_mem(out, out_len, "q2.onnx", &m2));
    same_tensors(m, m2, 0);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, out_len, out);
    CHECK(mp);
    const Onnx__TensorProto *t = mp->graph->initializer[0];
    CHECK(t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 && t->raw_data.len == 8);
    CHECK((int8_t)t->raw_data.data[0] == zero[0]);
    for (int i = 1; i < 8; i++) CHECK((int8_t)t->raw_data.data[i] == q[i]);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(out), free(buf);
    sg_model_free(m), sg_model_free(m2);
}

SG_TEST(onnx_unsupported_ops_give_weights_only_model) {
    struct gb b;
    const int64_t xin[4] = {1, 2, 4, 4};
    gb_init(&b, 13, xin);
    float w[3 * 2 * 3 * 3], fcw[5 * 3];
    for (int i = 0; i < 18 * 3; i++) w[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < 15; i++) fcw[i] = (float)i;
    const int64_t dw[4] = {3, 2, 3, 3}, dfc[2] = {3, 5};
    gb_init_tensor(&b, "conv.w", 1, 4, dw, w, sizeof w);
    gb_init_tensor(&b, "mm.w", 1, 2, dfc, fcw, sizeof fcw); /* MatMul: [C][K] */
    char *i1[2] = {(char *)"x", (char *)"conv.w"}, *o1[1] = {(char *)"c"};
    gb_node(&b, "Conv", i1, 2, o1);
    char *o2[1] = {(char *)"s"}, *o3[1] = {(char *)"r"};
    gb_node(&b, "Sigmoid", o1, 1, o2);
    gb_node(&b, "Resize", o2, 1, o3);
    char *i4[2] = {(char *)"r", (char *)"mm.w"}, *o4[1] = {(char *)"y"};
    gb_node(&b, "MatMul", i4, 2, o4);
    size_t len;
    uint8_t *buf = gb_pack(&b, &len);
    struct sg_model *m;
    CHECK_OK(sg_onnx_load_mem(buf, len, "model.onnx", &m));
    CHECK(!sg_model_runnable(m));
    CHECK_ERR(sg_model_check_runnable(m, "model.onnx"), SG_ERR_UNSUPPORTED);
    CHECK_MSG(strcmp(sg_last_error(), "model.onnx: cannot run: ops Sigmoid, Resize are not "
                                      "supported (weights-only commands work)") == 0,
              "%s", sg_last_error());
    CHECK_EQ_INT(m->n_params, 2);
    CHECK(m->params[0].layer == SG_LAYER_CONV && m->params[0].dims[0] == 3);
    CHECK(m->params[1].layer == SG_LAYER_FC && m->params[1].dims[0] == 5 && m->params[1].dims[1] == 3);
    /* W[K][C] = B^T */
    CHECK(sg_param_data(m, 1)[1] == fcw[5] && sg_param_data(m, 1)[3] == fcw[1]);
    /* export writes the same graph back, transposed back */
    uint8_t *out;
    size_t out_len;
    CHECK_OK(sg_onnx_serialize(m, 0, &out, &out_len));
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, out_len, out);
    CHECK(mp && mp->graph->n_node == 4);
    CHECK(memcmp(mp->graph->initializer[1]->raw_data.data, fcw, sizeof fcw) == 0);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(out), free(buf);
    sg_model_free(m);
}

/* ---- damaged and hostile files ---- */
SG_TEST(onnx_rejects_damage_without_crashing) {
    struct sg_model *m = pruned_model("lenet5", 3), *m2;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_onnx_serialize(m, SG_ONNX_MASKS, &buf, &len));
    /* truncations: an error, or (cut at a field boundary) a smaller valid model */
    int errors = 0;
    for (size_t cut = 0; cut < len; cut += cut < 400 ? 1 : 1009) {
        enum sg_status st = sg_onnx_load_mem(buf, cut, "t.onnx", &m2);
        if (st == SG_OK) {
            sg_model_free(m2);
        } else {
            errors++;
            CHECK(strstr(sg_last_error(), "t.onnx"));
        }
    }
    CHECK(errors > 0);
    /* byte flips anywhere */
    sg_rng r;
    sg_rng_seed(&r, 1);
    for (int k = 0; k < 400; k++) {
        size_t at = (size_t)sg_rng_below(&r, len);
        uint8_t old = buf[at];
        buf[at] ^= (uint8_t)(1 + sg_rng_below(&r, 255));
        if (sg_onnx_load_mem(buf, len, "f.onnx", &m2) == SG_OK) sg_model_free(m2);
        buf[at] = old;
    }
    CHECK_ERR(sg_onnx_load_mem((const uint8_t *)"\x89PNG\r\n\x1a\nabcdefgh", 16, "x.png", &m2),
              SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "x.png") && strstr(sg_last_error(), "not an ONNX model"));
    free(buf);
    sg_model_free(m);
}

static enum sg_status load_one_init(Onnx__TensorProto *t) {
    struct gb b;
    const int64_t xin[4] = {1, 1, 2, 2};
    gb_init(&b, 13, xin);
    b.ip[0] = t;
    b.g.n_initializer = 1;
    size_t len;
    uint8_t *buf = gb_pack(&b, &len);
    struct sg_model *m = NULL;
    enum sg_status st = sg_onnx_load_mem(buf, len, "h.onnx", &m);
    sg_model_free(m);
    free(buf);
    return st;
}

SG_TEST(onnx_rejects_hostile_tensors) {
    float data[4] = {1, 2, 3, 4};
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[4] = {2, 2, 1, 1};
    t.name = (char *)"w", t.has_data_type = 1, t.data_type = 1;
    t.dims = dims, t.n_dims = 2;
    t.has_raw_data = 1, t.raw_data.data = (uint8_t *)data, t.raw_data.len = 16;
    CHECK_OK(load_one_init(&t));
    dims[0] = (int64_t)1 << 40, dims[1] = (int64_t)1 << 40; /* huge */
    CHECK_ERR(load_one_init(&t), SG_ERR_LIMIT);
    CHECK(strstr(sg_last_error(), "h.onnx") && strstr(sg_last_error(), "'w'"));
    dims[0] = -2, dims[1] = 2; /* negative */
    CHECK_ERR(load_one_init(&t), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "negative"));
    dims[0] = 3; /* raw_data too short for the shape */
    CHECK_ERR(load_one_init(&t), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "raw_data has 16 bytes"));
    dims[0] = 2;
    t.raw_data.len = 15;
    CHECK_ERR(load_one_init(&t), SG_ERR_FORMAT);
    t.raw_data.len = 16;
    t.data_type = 99; /* unknown type */
    CHECK_ERR(load_one_init(&t), SG_ERR_FORMAT);
    t.data_type = 1;
    t.has_raw_data = 0; /* typed field of the wrong length */
    t.float_data = data, t.n_float_data = 3;
    CHECK_ERR(load_one_init(&t), SG_ERR_FORMAT);
    t.n_float_data = 4;
    CHECK_OK(load_one_init(&t));
    t.has_data_location = 1, t.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    CHECK_ERR(load_one_init(&t), SG_ERR_UNSUPPORTED);
    CHECK(strstr(sg_last_error(), "external"));
    t.n_dims = 9; /* rank */
    CHECK_ERR(load_one_init(&t), SG_ERR_UNSUPPORTED);
}

SG_TEST(onnx_int8_weight_without_scale_names_the_dtype) {
    struct gb b;
    const int64_t xin[4] = {1, 1, 3, 3};
    gb_init(&b, 13, xin);
    int8_t q[4] = {1, 2, 3, 4};
    const int64_t d[4] = {1, 1, 2, 2};
    gb_init_tensor(&b, "w8", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 4, d, q, 4);
    char *in[2] = {(char *)"x", (char *)"w8"}, *out[1] = {(char *)"y"};
    gb_node(&b, "Conv", in, 2, out);
    size_t len;
    uint8_t *buf = gb_pack(&b, &len);
    struct sg_model *m;
    CHECK_ERR(sg_onnx_load_mem(buf, len, "i8.onnx", &m), SG_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(sg_last_error(), "i8.onnx") && strstr(sg_last_error(), "int8") &&
                  strstr(sg_last_error(), "w8"),
              "%s", sg_last_error());
    free(buf);
}

SG_TEST(onnx_hostile_attributes_do_not_crash) {
    static int64_t vals[][4] = {{1000000000, 3}, {0, 3}, {-5, 3}, {3, 3}};
    static const char *names[] = {"kernel_shape", "strides", "pads", "dilations", "group"};
    for (int a = 0; a < 5; a++)
        for (int v = 0; v < 4; v++) {
            struct gb b;
            const int64_t xin[4] = {1, 1, 5, 5};
            gb_init(&b, 13, xin);
            float w[9] = {0};
            const int64_t d[4] = {1, 1, 3, 3};
            gb_init_tensor(&b, "w", 1, 4, d, w, sizeof w);
            char *in[2] = {(char *)"x", (char *)"w"}, *c[1] = {(char *)"c"}, *y[1] = {(char *)"y"};
            Onnx__NodeProto *n = gb_node(&b, "Conv", in, 2, c);
            int64_t pv[4] = {vals[v][0], vals[v][0], vals[v][0], vals[v][0]};
            gb_attr_ints(&b, n, names[a], pv, a == 2 ? 4 : a == 4 ? 1 : 2);
            gb_node(&b, "Flatten", c, 1, y);
            size_t len;
            uint8_t *buf = gb_pack(&b, &len);
            struct sg_model *m;
            if (sg_onnx_load_mem(buf, len, "a.onnx", &m) == SG_OK) {
                if (v == 3 && a < 2) CHECK(sg_model_runnable(m)); /* sane values */
                sg_model_free(m);
            }
            free(buf);
        }
}

/* Exporters deduplicate equal initializers: two convs reading one weight tensor get a
 * copy each; writing back works while the copies agree and is refused otherwise. */
SG_TEST(onnx_shared_weight_tensor) {
    struct gb b;
    const int64_t xin[4] = {1, 2, 4, 4};
    gb_init(&b, 13, xin);
    float w[2 * 2 * 3 * 3];
    for (int i = 0; i < 36; i++) w[i] = 0.1f * (float)(i % 5) - 0.2f;
    const int64_t d[4] = {2, 2, 3, 3};
    gb_init_tensor(&b, "w", 1, 4, d, w, sizeof w);
    char *i1[2] = {(char *)"x", (char *)"w"}, *o1[1] = {(char *)"c1"};
    char *i2[2] = {(char *)"c1", (char *)"w"}, *o2[1] = {(char *)"c2"}, *o3[1] = {(char *)"y"};
    int64_t pads[4] = {1, 1, 1, 1};
    gb_attr_ints(&b, gb_node(&b, "Conv", i1, 2, o1), "pads", pads, 4);
    gb_attr_ints(&b, gb_node(&b, "Conv", i2, 2, o2), "pads", pads, 4);
    gb_node(&b, "GlobalAveragePool", o2, 1, o3);
    size_t len;
    uint8_t *buf = gb_pack(&b, &len), *out;
    size_t out_len;
    struct sg_model *m;
    CHECK_OK(sg_onnx_load_mem(buf, len, "s.onnx", &m));
    CHECK_MSG(sg_model_runnable(m), "%s", sg_meta_get(m, "not_runnable"));
    CHECK_EQ_INT(m->n_params, 2);
    CHECK(strcmp(m->params[0].name, "w") == 0 && strcmp(m->params[1].name, "w~1") == 0);
    CHECK_OK(sg_onnx_serialize(m, SG_ONNX_MASKS, &out, &out_len));
    free(out);
    sg_param_mask(m, 1)[0] = 0; /* prune one copy only */
    sg_model_apply_masks(m);
    CHECK_ERR(sg_onnx_serialize(m, 0, &out, &out_len), SG_ERR_UNSUPPORTED);
    CHECK(strstr(sg_last_error(), "shared"));
    free(buf);
    sg_model_free(m);
}
