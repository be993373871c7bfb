/* ONNX ModelProto (sg_onnx_load_mem: protobuf parse, constants, graph mapping). An
 * accepted model is exported again (into its own graph, with and without masks) and
 * the export must read back with the same parameters. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fuzz_copy(data, size);
    struct sg_model *m = NULL;
    if (sg_onnx_load_mem(buf, size, "fuzz.onnx", &m) == SG_OK) {
        size_t w, k;
        sg_model_count(m, &w, &k);
        FUZZ_CHECK(k <= w);
        sg_model_check_runnable(m, "fuzz.onnx");
        fuzz_forward(m);
        for (unsigned flags = 0; flags <= SG_ONNX_MASKS; flags++) {
            uint8_t *out;
            size_t out_len;
            if (sg_onnx_serialize(m, flags, &out, &out_len) != SG_OK) continue;
            struct sg_model *m2 = NULL;
            FUZZ_CHECK(sg_onnx_load_mem(out, out_len, "again.onnx", &m2) == SG_OK);
            FUZZ_CHECK(m2->n_params == m->n_params);
            sg_model_free(m2);
            free(out);
        }
    }
    sg_model_free(m);
    free(buf);
    return 0;
}
