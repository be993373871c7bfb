/* ONNX loading without copying the weights: the lean copy of a ModelProto
 * (src/io/onnx_wire.c) unpacks to the same model as the file, and protobuf's rules for
 * repeated fields still hold. */
#include "harness.h"
#include "io/onnx.h"
#include "sparsegrain/io.h"

static uint8_t *serialized(const char *name, uint64_t seed, size_t *len) {
    struct sg_model *m;
    CHECK_OK(sg_model_build(name, 3, 32, 32, 10, seed, &m));
    sg_model_init_weights(m, seed);
    uint8_t *buf;
    CHECK_OK(sg_onnx_serialize(m, SG_ONNX_MASKS, &buf, len));
    sg_model_free(m);
    return buf;
}

static uint8_t *packed(const Onnx__ModelProto *mp, size_t *len) {
    *len = onnx__model_proto__get_packed_size(mp);
    uint8_t *out = malloc(*len + 1);
    CHECK(onnx__model_proto__pack(mp, out) == *len);
    return out;
}

SG_TEST(onnx_lean_copy_unpacks_like_the_file) {
    size_t len, raw = 0;
    uint8_t *buf = serialized("vgg7", 3, &len);
    Onnx__ModelProto *full = onnx__model_proto__unpack(NULL, len, buf);
    CHECK(full && full->graph);
    struct sgi_onnx_lean L;
    CHECK(sgi_onnx_wire_lean(buf, len, &L) == 1);
    CHECK_EQ_INT(L.n, full->graph->n_initializer);
    for (size_t k = 0; k < L.n; k++) {
        const Onnx__TensorProto *t = full->graph->initializer[k];
        CHECK(L.raw[k].off != SIZE_MAX && t->has_raw_data && L.raw[k].len == t->raw_data.len);
        CHECK(memcmp(buf + L.raw[k].off, t->raw_data.data, t->raw_data.len) == 0);
        raw += L.raw[k].len;
    }
    CHECK(L.msg.len + raw <= len); /* the weights are not in the copy */
    sgi_onnx_lean_free(&L);
    /* opened lean: the weights point into the file, and the model packs as the file */
    struct sgi_onnx_graph G;
    CHECK_OK(sgi_onnx_open(buf, len, "vgg7.onnx", &G));
    CHECK(G.file == buf && G.g->n_initializer > 0);
    for (size_t k = 0; k < G.g->n_initializer; k++) {
        const uint8_t *d = G.g->initializer[k]->raw_data.data;
        CHECK(d > buf && d < buf + len);
    }
    size_t la, lb;
    uint8_t *a = packed(G.model, &la), *b = packed(full, &lb);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    free(a), free(b);
    sgi_onnx_close(&G);
    onnx__model_proto__free_unpacked(full, NULL);
    free(buf);
}

/* ModelProto { graph { initializer { dims 1, data_type float, name "w", raw_data A,
 * raw_data B } } }: protobuf keeps the last raw_data. */
SG_TEST(onnx_lean_copy_keeps_protobuf_rules) {
    const uint8_t t[] = {0x08, 0x01, 0x10, 0x01, 0x42, 0x01, 'w', 0x4a, 0x02, 0xaa, 0xbb,
                         0x4a, 0x04, 0x00, 0x00, 0x80, 0x3f}; /* B = 1.0f */
    uint8_t mp[64];
    size_t n = 0;
    mp[n++] = 0x08, mp[n++] = 7;                       /* ir_version */
    mp[n++] = 0x3a, mp[n++] = (uint8_t)(sizeof t + 2); /* graph */
    mp[n++] = 0x2a, mp[n++] = (uint8_t)sizeof t;       /* initializer */
    memcpy(mp + n, t, sizeof t), n += sizeof t;
    struct sgi_onnx_graph G;
    CHECK_OK(sgi_onnx_open(mp, n, "two.onnx", &G));
    CHECK(G.file == mp && G.n_consts == 1);
    const Onnx__TensorProto *w = G.consts[0].t;
    CHECK(w->has_raw_data && w->raw_data.len == 4 && w->raw_data.data == mp + n - 4);
    float v;
    CHECK_OK(sgi_onnx_const_float(&G, 0, &v));
    CHECK(v == 1.0f);
    sgi_onnx_close(&G);
    /* a second graph field merges into the first: protobuf-c does that, unlean */
    const uint8_t g2[] = {0x3a, 0x04, 0x12, 0x02, 'g', '2'}; /* graph { name "g2" } */
    memcpy(mp + n, g2, sizeof g2), n += sizeof g2;
    struct sgi_onnx_lean L;
    CHECK(sgi_onnx_wire_lean(mp, n, &L) == 0);
    CHECK_OK(sgi_onnx_open(mp, n, "merged.onnx", &G));
    CHECK(G.file == NULL && G.n_consts == 1 && strcmp(G.g->name, "g2") == 0);
    CHECK_OK(sgi_onnx_const_float(&G, 0, &v));
    CHECK(v == 1.0f);
    sgi_onnx_close(&G);
}
