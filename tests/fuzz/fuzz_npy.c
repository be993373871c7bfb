/* NumPy .npy arrays and .npz archives (sg_npy_load_mem picks by the magic). An
 * accepted file becomes a weights-only model that .npz export writes and the reader
 * accepts again. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fuzz_copy(data, size);
    struct sg_model *m = NULL;
    if (sg_npy_load_mem(buf, size, "fuzz.npz", &m) == SG_OK) {
        uint8_t *out;
        size_t out_len;
        if (sg_npz_serialize(m, &out, &out_len) == SG_OK) {
            struct sg_model *m2 = NULL;
            FUZZ_CHECK(sg_npy_load_mem(out, out_len, "again.npz", &m2) == SG_OK);
            FUZZ_CHECK(m2->n_params == m->n_params);
            sg_model_free(m2);
            free(out);
        }
    }
    sg_model_free(m);
    free(buf);
    return 0;
}
