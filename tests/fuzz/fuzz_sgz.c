/* .sgz compressed model files (sg_sgz_deserialize: header, layer table, the .sgm
 * sections of the architecture, raw other tensors, one encoded stream per layer). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* byte 0: bit 0 repairs the file's size field and CRC-32, bit 1 also the CRC-32 of
     * every layer stream the layer table points at */
    const int repair = data[0] & 1, repair_streams = data[0] & 2;
    uint8_t *buf = fuzz_copy(data + 1, size - 1);
    const size_t len = size - 1;
    if (repair && len >= 132) {
        if (repair_streams) {
            const uint32_t n = sgi_ld32(buf + 88);
            const uint64_t arch = sgi_ld64(buf + 96), other = sgi_ld64(buf + 104);
            uint64_t at = 128 + (uint64_t)n * 16 + arch + other;
            for (uint32_t i = 0; i < n && 128 + (uint64_t)i * 16 + 16 <= len; i++) {
                const uint64_t l = sgi_ld64(buf + 128 + (size_t)i * 16 + 8);
                if (l < 4 || at > len - 4 || l > len - 4 - at) break;
                fuzz_st32(buf + at, sgi_crc32(0, buf + at + 4, (size_t)l - 4));
                at += l;
            }
        }
        fuzz_st64(buf + 16, len);
        fuzz_st32(buf + len - 4, sgi_crc32(0, buf, len - 4));
    }
    struct sg_model *m = NULL;
    struct sg_sgz_info info;
    if (sg_sgz_deserialize(buf, len, "fuzz.sgz", &m, &info) == SG_OK) {
        FUZZ_CHECK(info.file_bytes == len);
        FUZZ_CHECK(info.layer_bytes + info.overhead_bytes == info.file_bytes);
        fuzz_sgm_round_trip(m);
    }
    sg_model_free(m);
    free(buf);
    return 0;
}
