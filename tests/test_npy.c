/* NumPy .npy/.npz: bit-exact export and import, numpy's own layouts (compressed
 * entries, zip64 fields), and damaged or hostile files. */
#include <zlib.h>

#include "core/sgi.h"
#include "harness.h"
#include "io/zip.h"
#include "sparsegrain/io.h"

static struct sg_model *pruned_model(const char *name, uint64_t seed) {
    struct sg_model *m;
    CHECK_OK(sg_model_build(name, 1, 28, 28, 10, seed, &m));
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (size_t i = 0; i < m->arena_len; i++)
        if (sg_rng_uniform(&r) < 0.3) m->mask[i] = 0;
    sg_model_apply_masks(m);
    return m;
}

SG_TEST(npz_round_trip_of_builtins_is_bit_exact) {
    const char *const *names = sg_model_builtin_names();
    for (int t = 0; names[t]; t++) {
        struct sg_model *m = pruned_model(names[t], 21 + t), *m2;
        uint8_t *buf;
        size_t len;
        CHECK_OK(sg_npz_serialize(m, &buf, &len));
        CHECK_OK(sg_npy_load_mem(buf, len, "m.npz", &m2));
        CHECK_EQ_INT(m2->n_params, m->n_params);
        for (int32_t p = 0; p < m->n_params; p++) {
            const struct sg_param *a = &m->params[p], *b = &m2->params[p];
            CHECK(strcmp(a->name, b->name) == 0 && a->ndim == b->ndim && a->count == b->count);
            CHECK(memcmp(a->dims, b->dims, sizeof a->dims) == 0);
            if (a->kind == SG_PARAM_WEIGHT) CHECK(a->layer == b->layer);
            CHECK(memcmp(m->arena + a->offset, m2->arena + b->offset, a->count * 4) == 0);
            CHECK(memcmp(m->mask + a->offset, m2->mask + b->offset, a->count) == 0);
        }
        /* the archive is what numpy.savez writes: stored entries with valid CRCs */
        struct sgi_zip_entry *e;
        size_t n;
        CHECK_OK(sgi_zip_list(buf, len, "m.npz", &e, &n));
        CHECK_EQ_INT(n, 2 * (size_t)m->n_params);
        CHECK(strcmp(e[0].name, "conv1.weight.npy") == 0 || strcmp(e[0].name, "fc1.weight.npy") == 0);
        free(e);
        free(buf);
        sg_model_free(m), sg_model_free(m2);
    }
}

/* A .npy array by hand. */
static size_t make_npy(uint8_t *out, const char *header, const void *data, size_t bytes) {
    size_t hl = strlen(header);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)hl, out[9] = (uint8_t)(hl >> 8);
    memcpy(out + 10, header, hl);
    memcpy(out + 10 + hl, data, bytes);
    return 10 + hl + bytes;
}

SG_TEST(npy_reads_float_types_and_layouts) {
    uint8_t buf[512];
    struct sg_model *m;
    double d[6] = {1, -2, 3.5, 0, 5, 6};
    size_t n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", d,
                        sizeof d);
    CHECK_OK(sg_npy_load_mem(buf, n, "dir/fc.weight.npy", &m));
    CHECK(strcmp(m->params[0].name, "fc.weight") == 0);
    CHECK(m->params[0].layer == SG_LAYER_FC && m->params[0].dims[0] == 2 && m->params[0].dims[1] == 3);
    CHECK(sg_param_data(m, 0)[2] == 3.5f && sg_param_mask(m, 0)[3] == 0 && sg_param_mask(m, 0)[4] == 1);
    sg_model_free(m);
    uint16_t h[4] = {0x3c00, 0xc000, 0x3800, 0x0001}; /* 1, -2, 0.5, 2^-24 */
    n = make_npy(buf, "{'shape': (1, 1, 2, 2), 'fortran_order': False, 'descr': '<f2'}", h, sizeof h);
    CHECK_OK(sg_npy_load_mem(buf, n, "k.npy", &m));
    CHECK(m->params[0].layer == SG_LAYER_CONV);
    CHECK(sg_param_data(m, 0)[1] == -2.0f && sg_param_data(m, 0)[3] == 5.9604644775390625e-8f);
    sg_model_free(m);
}

SG_TEST(npz_reads_compressed_numpy_archives) {
    /* what numpy.savez_compressed writes: deflated entries */
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i - 4.0f;
    uint8_t npy[512];
    size_t nl = make_npy(npy, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", w, sizeof w);
    uint8_t def[1024];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = npy, zs.avail_in = (uInt)nl, zs.next_out = def, zs.avail_out = sizeof def;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    const size_t dl = zs.total_out;
    deflateEnd(&zs);
    /* write a stored archive, then patch its one entry to deflate */
    struct sgi_zip_writer z;
    memset(&z, 0, sizeof z);
    sgi_zip_add(&z, "w.npy", def, dl, NULL, 0);
    uint8_t *zip;
    size_t zl;
    CHECK_OK(sgi_zip_finish(&z, &zip, &zl));
    const uint32_t crc = sgi_crc32(0, npy, nl);
    uint8_t *cd = memmem(zip, zl, "PK\x01\x02", 4);
    CHECK(cd);
    for (int k = 0; k < 2; k++) {
        uint8_t *h = k ? cd + 2 : zip; /* local header fields sit 2 bytes earlier */
        h[8] = 8;                      /* method: deflate */
        for (int i = 0; i < 4; i++) h[14 + i] = (uint8_t)(crc >> (8 * i));
        for (int i = 0; i < 4; i++) h[22 + i] = (uint8_t)(nl >> (8 * i));
    }
    struct sg_model *m;
    CHECK_OK(sg_npy_load_mem(zip, zl, "c.npz", &m));
    CHECK(memcmp(m->arena, w, sizeof w) == 0);
    sg_model_free(m);
    /* damaged deflate stream */
    zip[30 + 5 + 3] ^= 0xff;
    CHECK_ERR(sg_npy_load_mem(zip, zl, "c.npz", &m), SG_ERR_FORMAT);
    free(zip);
}

SG_TEST(npy_rejects_hostile_headers) {
    uint8_t buf[512];
    float f[4] = {1, 2, 3, 4};
    struct sg_model *m;
    struct {
        const char *header;
        enum sg_status want;
        const char *says;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", SG_OK, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", SG_ERR_FORMAT, "need 24"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", SG_ERR_FORMAT, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
         SG_ERR_LIMIT, "2^36"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,4), }",
         SG_ERR_UNSUPPORTED, "dimensions"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", SG_ERR_UNSUPPORTED, "'<i8'"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", SG_ERR_UNSUPPORTED, "'>f4'"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", SG_ERR_UNSUPPORTED, "Fortran"},
        {"{'descr': '<f4', 'shape': (2, 2), }", SG_ERR_FORMAT, "lacks"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", SG_ERR_FORMAT, "'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2", SG_ERR_FORMAT, NULL},
        {"['descr']", SG_ERR_FORMAT, NULL},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (16,), }", SG_ERR_UNSUPPORTED, "uint8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_npy(buf, cases[i].header, f, sizeof f);
        enum sg_status st = sg_npy_load_mem(buf, n, "h.npy", &m);
        CHECK_MSG(st == cases[i].want, "case %zu: %s (%s)", i, sg_status_name(st), sg_last_error());
        if (st == SG_OK) sg_model_free(m);
        else CHECK_MSG(strstr(sg_last_error(), "h.npy") &&
                           (!cases[i].says || strstr(sg_last_error(), cases[i].says)),
                       "case %zu: %s", i, sg_last_error());
    }
    /* header length past the end */
    size_t n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, 16);
    buf[8] = 0xff, buf[9] = 0xff;
    CHECK_ERR(sg_npy_load_mem(buf, n, "h.npy", &m), SG_ERR_FORMAT);
    /* every truncation */
    buf[8] = (uint8_t)strlen("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"), buf[9] = 0;
    for (size_t cut = 0; cut < n; cut++) {
        enum sg_status st = sg_npy_load_mem(buf, cut, "h.npy", &m);
        CHECK(st != SG_OK);
    }
}

SG_TEST(npz_rejects_damaged_archives) {
    struct sg_model *m = pruned_model("lenet5", 4), *m2;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_npz_serialize(m, &buf, &len));
    for (size_t cut = 0; cut < len; cut += cut < 200 ? 1 : 4099)
        CHECK(sg_npy_load_mem(buf, cut, "d.npz", &m2) != SG_OK);
    /* bit flips: CRC-32, structure and header checks catch them; none may crash */
    sg_rng r;
    sg_rng_seed(&r, 3);
    int caught = 0;
    for (int k = 0; k < 300; k++) {
        size_t at = (size_t)sg_rng_below(&r, len);
        uint8_t old = buf[at];
        buf[at] ^= (uint8_t)(1 + sg_rng_below(&r, 255));
        if (sg_npy_load_mem(buf, len, "d.npz", &m2) == SG_OK) sg_model_free(m2);
        else caught++;
        buf[at] = old;
    }
    CHECK(caught > 250);
    /* central directory offset past the end */
    uint8_t *eocd = buf + len - 22;
    CHECK(sgi_ld32(eocd) == 0x06054b50u);
    eocd[16] = 0xf0, eocd[17] = 0xff, eocd[18] = 0xff, eocd[19] = 0x7f;
    CHECK_ERR(sg_npy_load_mem(buf, len, "d.npz", &m2), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "past the end"));
    free(buf);
    sg_model_free(m);
}
