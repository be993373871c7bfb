/* .sgm: bit-exact round trips and rejection of damaged files. */
#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/io.h"

static struct sg_model *pruned_model(const char *name, uint64_t seed) {
    struct sg_model *m;
    CHECK_OK(sg_model_build(name, 1, 28, 28, 10, seed, &m));
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (size_t i = 0; i < m->arena_len; i++)
        if (sg_rng_uniform(&r) < 0.3) m->mask[i] = 0;
    sg_model_apply_masks(m);
    CHECK_OK(sg_meta_set(m, "data", "mnist"));
    CHECK_OK(sg_meta_set(m, "top1", "%.4f", 0.9912));
    return m;
}

SG_TEST(sgm_round_trip_is_bit_exact) {
    const char *names[] = {"lenet300", "lenet5", "vgg7", "resnet8"};
    for (int t = 0; t < 4; t++) {
        struct sg_model *m = pruned_model(names[t], 3 + t), *m2;
        char path[512];
        snprintf(path, sizeof path, "%s/%s.sgm", sgt_tmpdir(), names[t]);
        CHECK_OK(sg_model_save(m, path, NULL));
        CHECK_OK(sg_model_load(path, &m2));
        CHECK(m2->arena_len == m->arena_len && m2->n_nodes == m->n_nodes);
        for (int32_t p = 0; p < m->n_params; p++) {
            size_t o = m->params[p].offset, c = m->params[p].count;
            CHECK(memcmp(m->arena + o, m2->arena + o, c * 4) == 0);
            CHECK(memcmp(m->mask + o, m2->mask + o, c) == 0);
        }
        CHECK(strcmp(sg_meta_get(m2, "top1"), "0.9912") == 0);
        for (int32_t i = 0; i < m->n_nodes; i++)
            CHECK(memcmp(&m->nodes[i], &m2->nodes[i], sizeof m->nodes[i]) == 0);
        uint8_t *a, *b;
        size_t na, nb;
        CHECK_OK(sg_model_serialize(m, NULL, &a, &na));
        CHECK_OK(sg_model_serialize(m2, NULL, &b, &nb));
        CHECK(na == nb && memcmp(a, b, na) == 0);
        free(a), free(b);
        sg_model_free(m);
        sg_model_free(m2);
    }
}

SG_TEST(sgm_keeps_optimizer_state) {
    struct sg_model *m = pruned_model("lenet5", 9), *m2;
    struct sg_train_state *st, *st2;
    CHECK_OK(sg_train_state_new(m, &st));
    for (size_t i = 0; i < st->len; i++) st->velocity[i] = (float)i * 1e-3f;
    st->epochs_done = 7;
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt.sgm", sgt_tmpdir());
    CHECK_OK(sg_model_save(m, path, st));
    CHECK_OK(sg_model_load_state(path, &m2, &st2));
    CHECK(st2 && st2->epochs_done == 7);
    for (int32_t p = 0; p < m->n_params; p++) {
        size_t o = m->params[p].offset;
        CHECK(memcmp(st->velocity + o, st2->velocity + o, m->params[p].count * 4) == 0);
    }
    sg_train_state_free(st), sg_train_state_free(st2);
    sg_model_free(m), sg_model_free(m2);
}

SG_TEST(sgm_rejects_damage_without_crashing) {
    struct sg_model *m = pruned_model("resnet8", 5), *m2;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    /* every truncation */
    for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 997))
        CHECK_ERR(sg_model_deserialize(buf, cut, "t.sgm", &m2, NULL), SG_ERR_FORMAT);
    /* bit flips anywhere are caught by the checksum */
    for (size_t at = 0; at < len; at += 131) {
        buf[at] ^= 0x10;
        enum sg_status st = sg_model_deserialize(buf, len, "t.sgm", &m2, NULL);
        CHECK(st == SG_ERR_FORMAT || st == SG_ERR_UNSUPPORTED);
        buf[at] ^= 0x10;
    }
    CHECK_OK(sg_model_deserialize(buf, len, "t.sgm", &m2, NULL));
    sg_model_free(m2);
    /* a foreign file */
    CHECK_ERR(sg_model_deserialize((const uint8_t *)"\x89PNG\r\n\x1a\n0123456789abcdefghijkl", 28,
                                   "x.png", &m2, NULL),
              SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "x.png") && strstr(sg_last_error(), "not a sparsegrain"));
    free(buf);
    sg_model_free(m);
}

/* Structural lies with a valid checksum: the reader must not trust sizes. */
SG_TEST(sgm_rejects_hostile_headers) {
    struct sg_model *m = pruned_model("lenet5", 2), *m2;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    /* find conv1.weight's first dimension (u64 20 after its name) and make it huge */
    const char *key = "conv1.weight";
    uint8_t *p = memmem(buf, len, key, strlen(key));
    CHECK(p);
    uint8_t *dim = p + strlen(key) + 4 * 4; /* kind, layer, node, ndim */
    CHECK(sgi_ld64(dim) == 20);
    const uint64_t big = (uint64_t)1 << 40;
    for (int i = 0; i < 8; i++) dim[i] = (uint8_t)(big >> (8 * i));
    uint32_t crc = sgi_crc32(0, buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
    CHECK_ERR(sg_model_deserialize(buf, len, "h.sgm", &m2, NULL), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "h.sgm"));
    free(buf);
    sg_model_free(m);
}
