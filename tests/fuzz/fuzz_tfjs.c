/* TF.js weights: a manifest and its shard bytes. Input: a 4-byte little-endian
 * length n, then n bytes of manifest JSON, then the shard bytes of every group back
 * to back (sg_tfjs_load_mem). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t n = sgi_ld32(data);
    if (n > size - 4) n = size - 4;
    uint8_t *man = fuzz_copy(data + 4, n), *shards = fuzz_copy(data + 4 + n, size - 4 - n);
    struct sg_model *m = NULL;
    if (sg_tfjs_load_mem(man, n, shards, size - 4 - n, "fuzz.json", &m) == SG_OK) {
        size_t w, k;
        sg_model_count(m, &w, &k);
        FUZZ_CHECK(k <= w);
        uint8_t *out;
        size_t out_len;
        FUZZ_CHECK(sg_model_serialize(m, NULL, &out, &out_len) == SG_OK);
        struct sg_model *m2 = NULL;
        FUZZ_CHECK(sg_model_deserialize(out, out_len, "again.sgm", &m2, NULL) == SG_OK);
        sg_model_free(m2);
        free(out);
    }
    sg_model_free(m);
    free(man);
    free(shards);
    return 0;
}
