/* ONNX loading without copying the weights: the lean copy of a ModelProto
 * (src/io/onnx_wire.c) unpacks to the same model as the file, protobuf's rules for
 * repeated fields still hold, and the arenas filled in parallel chunks
 * (src/io/onnx_fill.c) hold every weight, mask and padding element. */
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

static size_t put_varint(uint8_t *o, uint64_t v) {
    size_t n = 0;
    for (; v > 0x7f; v >>= 7) o[n++] = (uint8_t)(v | 0x80);
    o[n++] = (uint8_t)v;
    return n;
}

/* ModelProto { ir_version 7, graph { initializer { dims 64, data_type float, name "w",
 * raw_data A (2 bytes), raw_data B (64 x 1.0f) } } }, the second graph field
 * graph { name "g2" } appended when two_graphs. */
static size_t two_raw_data(uint8_t *mp, int two_graphs) {
    uint8_t t[300], g[310];
    size_t tl = 0, gl = 0, n = 0;
    t[tl++] = 0x08, t[tl++] = 64, t[tl++] = 0x10, t[tl++] = 1;
    t[tl++] = 0x42, t[tl++] = 1, t[tl++] = 'w';
    t[tl++] = 0x4a, t[tl++] = 2, t[tl++] = 0xaa, t[tl++] = 0xbb;
    t[tl++] = 0x4a, tl += put_varint(t + tl, 256);
    for (int i = 0; i < 64; i++) t[tl++] = 0, t[tl++] = 0, t[tl++] = 0x80, t[tl++] = 0x3f;
    g[gl++] = 0x2a, gl += put_varint(g + gl, tl);
    memcpy(g + gl, t, tl), gl += tl;
    mp[n++] = 0x08, mp[n++] = 7;
    mp[n++] = 0x3a, n += put_varint(mp + n, gl);
    memcpy(mp + n, g, gl), n += gl;
    if (two_graphs) {
        const uint8_t g2[] = {0x3a, 0x04, 0x12, 0x02, 'g', '2'};
        memcpy(mp + n, g2, sizeof g2), n += sizeof g2;
    }
    return n;
}

/* protobuf keeps the last of repeated raw_data fields, and merges repeated graphs */
SG_TEST(onnx_lean_copy_keeps_protobuf_rules) {
    uint8_t mp[400];
    size_t n = two_raw_data(mp, 0);
    struct sgi_onnx_graph G;
    float v[64];
    CHECK_OK(sgi_onnx_open(mp, n, "two.onnx", &G));
    CHECK(G.file == mp && G.n_consts == 1);
    const Onnx__TensorProto *w = G.consts[0].t;
    CHECK(w->has_raw_data && w->raw_data.len == 256 && w->raw_data.data == mp + n - 256);
    CHECK_OK(sgi_onnx_const_float(&G, 0, v));
    CHECK(v[0] == 1.0f && v[63] == 1.0f);
    sgi_onnx_close(&G);
    /* the second graph field merges into the first: protobuf-c does that, unlean */
    n = two_raw_data(mp, 1);
    struct sgi_onnx_lean L;
    CHECK(sgi_onnx_wire_lean(mp, n, &L) == 0);
    CHECK_OK(sgi_onnx_open(mp, n, "merged.onnx", &G));
    CHECK(G.file == NULL && G.n_consts == 1 && strcmp(G.g->name, "g2") == 0);
    CHECK_OK(sgi_onnx_const_float(&G, 0, v));
    CHECK(v[0] == 1.0f && v[63] == 1.0f);
    sgi_onnx_close(&G);
    /* weights in typed fields: nothing to leave out, the model unpacks whole */
    uint8_t *buf;
    size_t len;
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 1, &m));
    sg_model_init_weights(m, 1);
    CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
    Onnx__ModelProto *full = onnx__model_proto__unpack(NULL, len, buf);
    CHECK(full && full->graph);
    for (size_t k = 0; k < full->graph->n_initializer; k++) {
        Onnx__TensorProto *t = full->graph->initializer[k];
        if (!t->has_raw_data || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) continue;
        t->n_float_data = t->raw_data.len / 4;
        t->float_data = (float *)t->raw_data.data; /* borrowed; restored below */
        t->has_raw_data = 0;
    }
    size_t tl;
    uint8_t *typed = packed(full, &tl);
    for (size_t k = 0; k < full->graph->n_initializer; k++) {
        Onnx__TensorProto *t = full->graph->initializer[k];
        if (t->float_data == (float *)t->raw_data.data) t->float_data = NULL, t->n_float_data = 0;
    }
    onnx__model_proto__free_unpacked(full, NULL);
    CHECK(sgi_onnx_wire_lean(typed, tl, &L) == 0);
    struct sg_model *m2;
    CHECK_OK(sg_onnx_load_mem(typed, tl, "typed.onnx", &m2));
    CHECK(m2->arena_len == m->arena_len);
    CHECK(memcmp(m2->arena, m->arena, m->arena_len * sizeof *m->arena) == 0);
    sg_model_free(m2);
    sg_model_free(m);
    free(typed);
    free(buf);
}

/* Every arena element is written: weights as stored, weight masks from their zeros,
 * other masks 1, padding between parameters zero with mask 1, as sg_model_finalize
 * leaves it. vgg7 has tensors of several fill chunks. */
SG_TEST(onnx_load_fills_every_arena_element) {
    const char *const names[] = {"resnet8", "vgg7"};
    for (int i = 0; i < 2; i++) {
        struct sg_model *m, *ref;
        CHECK_OK(sg_model_build(names[i], 3, 32, 32, 10, 5 + (uint64_t)i, &ref));
        sg_model_init_weights(ref, 5 + (uint64_t)i);
        for (int32_t p = 0; p < ref->n_params; p++)
            if (ref->params[p].kind == SG_PARAM_WEIGHT)
                for (size_t j = (size_t)p % 7; j < ref->params[p].count; j += 7)
                    sg_param_mask(ref, p)[j] = 0;
        sg_model_apply_masks(ref);
        uint8_t *buf;
        size_t len;
        CHECK_OK(sg_onnx_serialize(ref, 0, &buf, &len));
        CHECK_OK(sg_onnx_load_mem(buf, len, names[i], &m));
        free(buf);
        CHECK(sg_model_runnable(m) && m->arena_len == ref->arena_len);
        CHECK(memcmp(m->arena, ref->arena, m->arena_len * sizeof *m->arena) == 0);
        CHECK(memcmp(m->mask, ref->mask, m->arena_len) == 0);
        sg_model_free(ref);
        sg_model_free(m);
    }
}
