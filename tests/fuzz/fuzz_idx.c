/* IDX image and label files, raw or gzip-compressed (sg_idx_parse behind the same
 * gzip inflation sg_idx_read uses). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fuzz_copy(data, size), *raw = NULL;
    size_t len = size;
    const uint8_t *in = buf;
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        /* the limit of sg_idx_read is 4 GiB; a small one here keeps runs fast */
        if (sgi_gunzip("fuzz.idx.gz", buf, size, (size_t)16 << 20, &raw, &len) != SG_OK) {
            free(buf);
            return 0;
        }
        in = raw;
    }
    int nd;
    int64_t dims[4];
    const uint8_t *payload;
    if (sg_idx_parse(in, len, "fuzz.idx", &nd, dims, &payload) == SG_OK) {
        FUZZ_CHECK(nd >= 1 && nd <= 4);
        size_t count = 1;
        for (int i = 0; i < nd; i++) count *= (size_t)dims[i];
        FUZZ_CHECK(payload >= in && (size_t)(payload - in) + count == len);
        /* touch every byte the caller may read */
        unsigned sum = 0;
        for (size_t i = 0; i < count; i++) sum += payload[i];
        (void)sum;
    }
    free(raw);
    free(buf);
    return 0;
}
