/* .sgm model files (sg_model_deserialize, with optimizer state). A file the reader
 * accepts must serialise and read back to the same bytes (checked up to 64 KiB: the
 * seeds of the built-in networks are larger, and their weights add no structure). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* byte 0: bit 0 repairs the size field and the CRC-32 of the rest */
    const int repair = data[0] & 1;
    uint8_t *buf = fuzz_copy(data + 1, size - 1);
    const size_t len = size - 1;
    if (repair && len >= 28) {
        fuzz_st64(buf + 16, len);
        fuzz_st32(buf + len - 4, sgi_crc32(0, buf, len - 4));
    }
    struct sg_model *m = NULL;
    struct sg_train_state *ts = NULL;
    if (sg_model_deserialize(buf, len, "fuzz.sgm", &m, &ts) == SG_OK && len <= 65536) {
        uint8_t *out;
        size_t out_len;
        FUZZ_CHECK(sg_model_serialize(m, ts, &out, &out_len) == SG_OK);
        struct sg_model *m2 = NULL;
        struct sg_train_state *ts2 = NULL;
        FUZZ_CHECK(sg_model_deserialize(out, out_len, "again.sgm", &m2, &ts2) == SG_OK);
        uint8_t *out2;
        size_t out2_len;
        FUZZ_CHECK(sg_model_serialize(m2, ts2, &out2, &out2_len) == SG_OK);
        FUZZ_CHECK(out_len == out2_len && memcmp(out, out2, out_len) == 0);
        /* what every command does first with a loaded model */
        size_t w, k;
        sg_model_count(m, &w, &k);
        FUZZ_CHECK(k <= w);
        sg_model_check_runnable(m, "fuzz.sgm");
        fuzz_forward(m);
        free(out);
        free(out2);
        sg_train_state_free(ts2);
        sg_model_free(m2);
    }
    sg_train_state_free(ts);
    sg_model_free(m);
    free(buf);
    return 0;
}
