/* One ONNX TensorProto alone: unpacked by the generated protobuf-c code, checked by
 * sgi_onnx_tensor_check, then imported as the only initializer of a model (byte 0,
 * bit 0: or as the value of a Constant node), which decodes it to float. */
#include "fuzz.h"
#include "io/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int as_constant = data[0] & 1;
    uint8_t *buf = fuzz_copy(data + 1, size - 1);
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size - 1, buf);
    free(buf);
    if (!t) return 0;
    int rank;
    int64_t dims[SGI_ONNX_MAX_RANK];
    size_t count;
    if (sgi_onnx_tensor_check(t, "fuzz.pb", &rank, dims, &count) == SG_OK)
        FUZZ_CHECK(rank >= 0 && rank <= SGI_ONNX_MAX_RANK);

    /* a model around it: graph { initializer: t } or graph { node: Constant(value=t) } */
    char *name = t->name;
    if (!name || !*name) t->name = "w";
    Onnx__AttributeProto attr = ONNX__ATTRIBUTE_PROTO__INIT;
    attr.name = "value";
    attr.has_type = 1;
    attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    attr.t = t;
    Onnx__AttributeProto *attrs[1] = {&attr};
    char *outs[1] = {t->name};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = "Constant";
    node.n_output = 1;
    node.output = outs;
    node.n_attribute = 1;
    node.attribute = attrs;
    Onnx__NodeProto *nodes[1] = {&node};
    Onnx__TensorProto *inits[1] = {t};
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "fuzz";
    if (as_constant) {
        g.n_node = 1;
        g.node = nodes;
    } else {
        g.n_initializer = 1;
        g.initializer = inits;
    }
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    op.domain = "";
    op.has_version = 1;
    op.version = 13;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = 1;
    mp.ir_version = 7;
    mp.graph = &g;
    mp.n_opset_import = 1;
    mp.opset_import = ops;
    const size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *packed = malloc(len ? len : 1);
    onnx__model_proto__pack(&mp, packed);
    t->name = name; /* free_unpacked frees what unpack allocated, not our literal */
    onnx__tensor_proto__free_unpacked(t, NULL);

    struct sg_model *m = NULL;
    if (sg_onnx_load_mem(packed, len, "fuzz.onnx", &m) == SG_OK) {
        size_t w, k;
        sg_model_count(m, &w, &k);
        FUZZ_CHECK(k <= w);
    }
    sg_model_free(m);
    free(packed);
    return 0;
}
