/* TF.js weights: the real face-api face recognition model, every dtype and layout on
 * a synthetic manifest, and hostile manifests and shards. */
#include <sys/stat.h>

#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/io.h"

#define FACE_DIR "data/node_modules/@vladmandic/face-api/model"

static void put(const char *dir, const char *name, const void *data, size_t len) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(sg_file_write_atomic(path, data, len));
}

SG_TEST(tfjs_face_api_recognition_model) {
    struct stat sb;
    const char *man = FACE_DIR "/face_recognition_model-weights_manifest.json";
    if (stat(man, &sb) != 0) {
        printf("    skipped: %s is missing (scripts/install-deps.sh installs it)\n", man);
        return;
    }
    struct sg_model *m;
    CHECK_OK(sg_model_load_any(man, &m));
    CHECK(!sg_model_runnable(m));
    CHECK_EQ_INT(m->n_params, 117);
    int conv = 0, conv3 = 0, fc = 0;
    size_t total = 0;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        total += pp->count;
        if (pp->layer == SG_LAYER_CONV) conv++, conv3 += pp->dims[2] == 3 && pp->dims[3] == 3;
        if (pp->layer == SG_LAYER_FC) fc++;
    }
    CHECK_EQ_INT(conv, 29); /* 28 of them 3x3, the stem 7x7 */
    CHECK_EQ_INT(conv3, 28);
    CHECK_EQ_INT(fc, 1);
    CHECK_EQ_INT(total, 5614592);
    /* the stem kernel: HWIO 7x7x3x32 -> OIHW 32x3x7x7; its first weight is byte 0 of
     * the shard, uint8 quantised: w = q * scale + min */
    int32_t p0 = sg_model_find_param(m, "conv32_down/conv/filters");
    CHECK(p0 >= 0 && m->params[p0].dims[0] == 32 && m->params[p0].dims[1] == 3);
    size_t len;
    uint8_t *bin;
    CHECK_OK(sg_file_read(FACE_DIR "/face_recognition_model.bin", (size_t)1 << 30, 0, &bin, &len));
    CHECK_EQ_INT(len, 6444032);
    const double scale = 0.0005260649557207145, mn = -0.07101876902229645;
    const float *w = sg_param_data(m, p0);
    CHECK(w[0] == (float)(bin[0] * scale + mn));
    /* W[o=1][i=0][h=0][w=0] is HWIO element (0,0,0,1): byte 1 */
    CHECK(w[3 * 7 * 7] == (float)(bin[1] * scale + mn));
    /* W[o=0][i=1][0][0] is HWIO (0,0,1,0): byte 32 */
    CHECK(w[7 * 7] == (float)(bin[32] * scale + mn));
    /* fc: [256][128] in TF.js -> W[128][256] */
    int32_t pf = sg_model_find_param(m, "fc");
    CHECK(pf >= 0 && m->params[pf].dims[0] == 128 && m->params[pf].dims[1] == 256);
    free(bin);
    sg_model_free(m);
}

SG_TEST(tfjs_dtypes_and_layouts) {
    const char *dir = sgt_tmpdir();
    /* group 1 (two shards): a 1x2x2x3 conv kernel in float16 quantisation, a 2x1x2x2
     * depthwise kernel uint16-quantised; group 2: a 2x3 dense kernel float32, an int32 */
    uint8_t s1[64], s2[64];
    size_t n1 = 0, n2 = 0;
    for (int i = 0; i < 12; i++) { /* conv: value i as float16 */
        float f = (float)i;
        uint32_t b;
        memcpy(&b, &f, 4);
        uint16_t h = i ? (uint16_t)(((b >> 16) & 0x8000) | (((b >> 23) - 112) << 10) | ((b >> 13) & 0x3ff)) : 0;
        s1[n1++] = (uint8_t)h, s1[n1++] = (uint8_t)(h >> 8);
    }
    for (int i = 0; i < 8; i++) s1[n1++] = (uint8_t)(i * 10), s1[n1++] = 1; /* q = 256 + 10i */
    const float dense[6] = {1, 2, 3, 4, 5, 6};
    memcpy(s2, dense, 24), n2 = 24;
    const int32_t ints[2] = {7, 8};
    memcpy(s2 + n2, ints, 8), n2 += 8;
    put(dir, "a.bin", s1, 10);
    put(dir, "sub_b.bin", s1 + 10, n1 - 10);
    put(dir, "c.bin", s2, n2);
    const char *man =
        "[{\"paths\": [\"a.bin\", \"sub_b.bin\"], \"weights\": ["
        " {\"name\": \"conv/kernel\", \"shape\": [1, 2, 2, 3], \"dtype\": \"float32\","
        "  \"quantization\": {\"dtype\": \"float16\"}},"
        " {\"name\": \"dw/depthwise_kernel\", \"shape\": [2, 1, 2, 2], \"dtype\": \"float32\","
        "  \"quantization\": {\"dtype\": \"uint16\", \"scale\": 0.5, \"min\": -100}}]},"
        " {\"paths\": [\"c.bin\"], \"weights\": ["
        " {\"name\": \"dense/kernel\", \"shape\": [2, 3], \"dtype\": \"float32\"},"
        " {\"name\": \"steps\", \"shape\": [2], \"dtype\": \"int32\"}]}]";
    put(dir, "m.json", man, strlen(man));
    char path[600];
    snprintf(path, sizeof path, "%s/m.json", dir);
    struct sg_model *m;
    CHECK_OK(sg_tfjs_load(path, &m));
    CHECK_EQ_INT(m->n_params, 3); /* the int32 tensor is skipped */
    /* conv HWIO [1][2][2][3] -> OIHW [3][2][1][2]: W[o][i][0][x] = K[0][x][i][o] = x*6+i*3+o */
    const struct sg_param *c = &m->params[0];
    CHECK(c->dims[0] == 3 && c->dims[1] == 2 && c->dims[2] == 1 && c->dims[3] == 2);
    const float *w = sg_param_data(m, 0);
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 2; i++)
            for (int x = 0; x < 2; x++) CHECK(w[(o * 2 + i) * 2 + x] == (float)(x * 6 + i * 3 + o));
    /* depthwise [H=2][W=1][I=2][M=2] -> [I*M=4][1][2][1]: W[i*M+k][0][h][0] = K[h][0][i][k] */
    const struct sg_param *d = &m->params[1];
    CHECK(d->dims[0] == 4 && d->dims[1] == 1 && d->dims[2] == 2 && d->dims[3] == 1);
    w = sg_param_data(m, 1);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            for (int h = 0; h < 2; h++) {
                int q = 256 + 10 * ((h * 2 + i) * 2 + k);
                CHECK(w[(i * 2 + k) * 2 + h] == (float)(q * 0.5 - 100));
            }
    /* dense [in=2][out=3] -> [3][2] */
    w = sg_param_data(m, 2);
    CHECK(m->params[2].dims[0] == 3 && m->params[2].layer == SG_LAYER_FC);
    CHECK(w[0] == 1 && w[1] == 4 && w[2] == 2 && w[5] == 6);
    sg_model_free(m);
}

SG_TEST(tfjs_rejects_hostile_manifests) {
    const char *dir = sgt_tmpdir();
    uint8_t bin[16] = {0};
    put(dir, "w.bin", bin, sizeof bin);
    struct {
        const char *json;
        enum sg_status want;
        const char *says;
    } cases[] = {
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [2, 2], \"dtype\": \"float32\"}]}]",
         SG_OK, NULL},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [2, 3], \"dtype\": \"float32\"}]}]",
         SG_ERR_FORMAT, "runs past the end"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [2], \"dtype\": \"float32\"}]}]",
         SG_ERR_FORMAT, "the shards hold 16 bytes"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [-4], \"dtype\": \"float32\"}]}]",
         SG_ERR_FORMAT, "not a size"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [1e15, 1e15], \"dtype\": \"float32\"}]}]",
         SG_ERR_FORMAT, NULL},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [65536, 65536, 65536], \"dtype\": \"float32\"}]}]",
         SG_ERR_LIMIT, "2^36"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float64\"}]}]",
         SG_ERR_UNSUPPORTED, "float64"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [16], \"dtype\": \"float32\", "
         "\"quantization\": {\"dtype\": \"uint8\"}}]}]",
         SG_ERR_FORMAT, "scale and min"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [16], \"dtype\": \"float32\", "
         "\"quantization\": {\"dtype\": \"int4\", \"scale\": 1, \"min\": 0}}]}]",
         SG_ERR_UNSUPPORTED, "int4"},
        {"[{\"paths\": [\"../w.bin\"], \"weights\": []}]", SG_ERR_FORMAT, "relative"},
        {"[{\"paths\": [\"/etc/passwd\"], \"weights\": []}]", SG_ERR_FORMAT, "relative"},
        {"[{\"paths\": [\"missing.bin\"], \"weights\": []}]", SG_ERR_IO, "missing.bin"},
        {"[{\"weights\": []}]", SG_ERR_FORMAT, "paths"},
        {"{\"format\": \"graph-model\"}", SG_ERR_FORMAT, "not a TF.js weights manifest"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\"", SG_ERR_FORMAT, "not valid JSON"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [4, \"x\"], \"dtype\": \"float32\"}]}]",
         SG_ERR_FORMAT, "not a size"},
        {"[{\"paths\": [\"w.bin\"], \"weights\": [{\"name\": \"s\", \"shape\": [5], \"dtype\": \"string\"}]}]",
         SG_ERR_FORMAT, "string tensor"},
    };
    char path[600];
    snprintf(path, sizeof path, "%s/h.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(dir, "h.json", cases[i].json, strlen(cases[i].json));
        struct sg_model *m;
        enum sg_status st = sg_tfjs_load(path, &m);
        CHECK_MSG(st == cases[i].want, "case %zu: %s (%s)", i, sg_status_name(st), sg_last_error());
        if (st == SG_OK) sg_model_free(m);
        else CHECK_MSG(strstr(sg_last_error(), "h.json") &&
                           (!cases[i].says || strstr(sg_last_error(), cases[i].says)),
                       "case %zu: %s", i, sg_last_error());
    }
}
