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
        fuzz_sgm_round_trip(m);
    }
    sg_model_free(m);
    free(man);
    free(shards);
    return 0;
}
