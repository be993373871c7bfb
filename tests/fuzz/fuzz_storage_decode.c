/* Every storage format's sg_validate and sg_decode. The first 16 bytes choose the
 * format, the configuration and the layer shape; the rest is the stream (bit 7 of
 * byte 0 repairs its CRC-32). Checked promises: sg_validate succeeds exactly when
 * sg_decode does; a failed decode leaves no half-decoded layer; a decoded layer
 * encodes (f32, f16) to a stream that decodes to the same weights and mask. */
#include <math.h>

#include "fuzz.h"

#define HDR 16

static int same(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < HDR) return 0;
    const uint8_t *h = data;
    const enum sg_format f = (enum sg_format)(h[0] % SG_FORMAT_COUNT);
    const int repair = h[0] & 0x80;
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.values = (enum sg_values)(h[1] % SG_VALUES_COUNT);
    cfg.codebook_bits = 1 + h[2] % 16;
    cfg.index_bits = h[3] % 18 - 1; /* -1 (paper), 0 (auto: refused by decode), 1..16 */
    cfg.tile = (struct sg_tile){h[4] % 6, h[5] % 6, h[6] % 4, h[7] % 4}; /* 0: whole dim */
    cfg.kc = 1 + h[8] % 16;
    cfg.nm_m = 1 + h[9] % 8;
    cfg.nm_n = 1 + h[10] % cfg.nm_m;
    /* shapes up to 16 x 16 x 4 x 4 (4096 weights): small enough for fast runs */
    struct sg_wview v = {.name = "fuzz", .k = 1 + h[11] % 16, .c = 1 + h[12] % 16,
                         .r = 1 + h[13] % 4, .s = 1 + h[14] % 4, .is_fc = h[15] & 1};
    const size_t n = (size_t)(v.k * v.c * v.r * v.s);
    const size_t len = size - HDR;
    uint8_t *blob = fuzz_copy(data + HDR, len);
    if (repair && len >= 4) fuzz_st32(blob, sgi_crc32(0, blob + 4, len - 4));

    const enum sg_status vs = sg_validate(f, blob, len, &cfg, &v);
    float *w = malloc(n * sizeof *w);
    uint8_t *mask = malloc(n);
    memset(w, 0x5a, n * sizeof *w); /* not zero: a failed decode must clear them */
    memset(mask, 0x5a, n);
    struct sg_wview out = v;
    out.w = w;
    out.mask = mask;
    const enum sg_status ds = sg_decode(f, blob, len, &cfg, &out);
    FUZZ_CHECK((vs == SG_OK) == (ds == SG_OK));
    if (ds != SG_OK && ds != SG_ERR_ARG && ds != SG_ERR_LIMIT)
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(w[i] == 0.0f && mask[i] == 0);
    if (ds == SG_OK) {
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(mask[i] <= 1 && (mask[i] || w[i] == 0.0f));
        if (cfg.values == SG_VALUES_F32 || cfg.values == SG_VALUES_F16) {
            struct sg_storage_cfg c2 = cfg;
            if (cfg.index_bits == 0) c2.index_bits = SG_INDEX_BITS_PAPER;
            uint8_t *re;
            size_t re_len;
            struct sg_size sz;
            if (sg_encode(f, &out, &c2, &re, &re_len, &sz) == SG_OK) {
                FUZZ_CHECK((int64_t)re_len == sz.bytes);
                float *w2 = malloc(n * sizeof *w2);
                uint8_t *m2 = malloc(n);
                struct sg_wview back = v;
                back.w = w2;
                back.mask = m2;
                if (sz.index_width) c2.index_bits = sz.index_width;
                FUZZ_CHECK(sg_decode(f, re, re_len, &c2, &back) == SG_OK);
                FUZZ_CHECK(memcmp(m2, mask, n) == 0 && same(w2, w, n));
                free(w2);
                free(m2);
                sg_blob_free(re);
            }
        }
    }
    free(w);
    free(mask);
    free(blob);
    return 0;
}
