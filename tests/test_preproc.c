/* Input preprocessing: the text form, the byte -> float arithmetic (against PyTorch's
 * float32 steps and the old standardisation), and the field in .sgm, .onnx and .npz. */
#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/io.h"

static struct sg_preproc parsed(const char *spec) {
    struct sg_preproc p;
    CHECK_OK(sg_preproc_parse(spec, &p));
    return p;
}

SG_TEST(preproc_text_form_round_trips) {
    static const char *const specs[][2] = {
        {"none", "none"},
        {"0,1", "none"},
        {"dataset", "dataset"},
        {"dataset=0.13066047,0.3081078", "dataset=0.13066047,0.3081078"},
        {"0.1307,0.3081", "0.1307,0.3081"},
        {"0.5,0.5", "0.5,0.5"},
        {"0.485,0.456,0.406,0.229,0.224,0.225", "0.485,0.456,0.406,0.229,0.224,0.225"},
        {"104,117,123,1,1,1:raw:bgr", "104,117,123,1,1,1:raw:bgr"},
        {"none:raw", "none:raw"},
        {"dataset:bgr", "dataset:bgr"},
        {"1e-3,2.5:rgb", "0.001,2.5"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct sg_preproc p = parsed(specs[i][0]), q;
        CHECK(p.stated == 1);
        char text[256];
        sg_preproc_format(&p, text, sizeof text);
        CHECK_MSG(strcmp(text, specs[i][1]) == 0, "'%s' formats as '%s', wanted '%s'", specs[i][0],
                  text, specs[i][1]);
        CHECK_OK(sg_preproc_parse(text, &q));
        CHECK(sg_preproc_equal(&p, &q));
    }
    struct sg_preproc p = parsed("0.485,0.456,0.406,0.229,0.224,0.225:bgr");
    CHECK(p.kind == SG_NORM_FIXED && p.n == 3 && p.range == 255 && p.order == SG_CHANNELS_BGR);
    CHECK(p.mean[2] == (float)0.406 && p.std[0] == (float)0.229);
    CHECK(parsed("1,2:raw").range == 1);
    /* numbers print with the fewest digits that read back to the same float */
    for (int k = 0; k < 1000; k++) {
        struct sg_preproc r;
        memset(&r, 0, sizeof r);
        r.kind = SG_NORM_FIXED, r.n = 1, r.range = 255;
        r.mean[0] = (float)k / 997.0f - 0.3f, r.std[0] = 0.01f + (float)k / 331.0f;
        char text[256];
        sg_preproc_format(&r, text, sizeof text);
        struct sg_preproc back = parsed(text);
        CHECK_MSG(back.mean[0] == r.mean[0] && back.std[0] == r.std[0], "%s", text);
    }
    static const char *const bad[] = {"",          "abc",         "0.1",       "0.1,0",
                                      "0.1,-1",    "1,2,3",       "none:xyz",  "dataset:raw",
                                      "nan,1",     "1,inf",       "0.1,0.2,",  "dataset=1",
                                      "1,2,3,4,5,6,7,8,9,10", "none:", "1e40,1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sg_preproc q;
        CHECK_MSG(sg_preproc_parse(bad[i], &q) == SG_ERR_ARG, "'%s' was accepted", bad[i]);
        CHECK(strstr(sg_last_error(), "input preprocessing"));
    }
    /* per-channel values must match the image's channels */
    p = parsed("0.4,0.5,0.6,0.2,0.2,0.2");
    CHECK_OK(sg_preproc_check(&p, 3));
    CHECK_ERR(sg_preproc_check(&p, 1), SG_ERR_ARG);
    p = parsed("0.4,0.2");
    CHECK_OK(sg_preproc_check(&p, 3));
}

/* A 2x2 image of 3 channels whose bytes cover 0, 1, 254, 255 and values between. */
static void tiny_rgb(struct sg_dataset *d, uint8_t *px, uint8_t *lab) {
    static const uint8_t v[12] = {0, 1, 2, 3, 64, 127, 128, 200, 230, 253, 254, 255};
    memcpy(px, v, sizeof v);
    lab[0] = 1;
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "tiny");
    d->n = 1, d->c = 3, d->h = 2, d->w = 2, d->classes = 2;
    d->pixels = px, d->labels = lab;
    d->mean = 0.25f, d->std = 0.3f;
}

SG_TEST(preproc_math_matches_pytorch_and_the_old_standardisation) {
    struct sg_dataset d;
    uint8_t px[12], lab[1], y;
    tiny_rgb(&d, px, lab);
    uint32_t idx = 0;
    float x[12];
    /* fixed, per channel, channels reversed: ToTensor's x / 255 then Normalize's
     * (x - mean) / std, each rounded to float32 */
    struct sg_preproc p = parsed("0.485,0.456,0.406,0.229,0.224,0.225:bgr");
    sg_dataset_batch(&d, &p, &idx, 1, SG_AUG_NONE, NULL, x, &y);
    CHECK(y == 1);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) {
            const uint8_t b = px[(2 - c) * 4 + i]; /* model channel c reads image channel 2-c */
            volatile float t = (float)b / 255.0f;
            volatile float u = t - p.mean[c];
            const float want = u / p.std[c];
            CHECK_MSG(x[c * 4 + i] == want, "channel %d pixel %d: %.9g, wanted %.9g", c, i,
                      (double)x[c * 4 + i], (double)want);
            /* and within float rounding of the exact value */
            const double exact = ((double)b / 255.0 - (double)p.mean[c]) / (double)p.std[c];
            CHECK_NEAR(x[c * 4 + i], exact, 1e-6 * (1 + fabs(exact)));
        }
    /* none: pixels in [0, 1] exactly as b / 255 */
    p = parsed("none");
    sg_dataset_batch(&d, &p, &idx, 1, SG_AUG_NONE, NULL, x, &y);
    for (int i = 0; i < 12; i++) CHECK(x[i] == (float)px[i] / 255.0f);
    CHECK(x[0] == 0.0f && x[11] == 1.0f);
    /* raw: bytes as they are, then the mean and deviation in those units */
    p = parsed("128,64:raw");
    sg_dataset_batch(&d, &p, &idx, 1, SG_AUG_NONE, NULL, x, &y);
    for (int i = 0; i < 12; i++) CHECK(x[i] == ((float)px[i] - 128.0f) / 64.0f);
    /* the data set's standardisation: bit for bit the arithmetic sparsegrain always
     * used, whether the statistics come from the data (NULL, "dataset", a model
     * file that says nothing) or were recorded by training */
    float old[12], y2[12];
    const float scale = 1.0f / (255.0f * d.std), shift = -d.mean / d.std;
    for (int i = 0; i < 12; i++) old[i] = px[i] * scale + shift;
    struct sg_preproc unstated;
    memset(&unstated, 0, sizeof unstated);
    struct sg_preproc rec = parsed("dataset=0.25,0.3");
    const struct sg_preproc *all[] = {NULL, &unstated, &rec};
    p = parsed("dataset");
    for (int k = -1; k < 3; k++) {
        sg_dataset_batch(&d, k < 0 ? &p : all[k], &idx, 1, SG_AUG_NONE, NULL, y2, &y);
        CHECK(memcmp(y2, old, sizeof old) == 0);
    }
    /* recorded statistics win over the feeding data set's */
    d.mean = 0.5f;
    sg_dataset_batch(&d, &rec, &idx, 1, SG_AUG_NONE, NULL, y2, &y);
    CHECK(memcmp(y2, old, sizeof old) == 0);
    sg_dataset_batch(&d, NULL, &idx, 1, SG_AUG_NONE, NULL, y2, &y);
    CHECK(y2[0] != old[0]);
}

SG_TEST(preproc_shifted_in_pixels_are_preprocessed_black) {
    uint8_t px[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90}, lab[1] = {0}, y;
    struct sg_dataset d = {.name = "tiny", .n = 1, .c = 1, .h = 3, .w = 3, .classes = 1,
                           .mean = 0.1f, .std = 0.2f};
    d.pixels = px, d.labels = lab;
    struct sg_preproc p = parsed("0.5,0.25");
    const float black = (0.0f - 0.5f) / 0.25f;
    sg_rng r;
    sg_rng_seed(&r, 3);
    uint32_t idx = 0;
    int saw = 0;
    for (int t = 0; t < 40; t++) {
        float x[9];
        sg_dataset_batch(&d, &p, &idx, 1, SG_AUG_SHIFT, &r, x, &y);
        for (int i = 0; i < 9; i++) {
            int known = x[i] == black;
            for (int v = 0; v < 9; v++) known |= x[i] == ((float)px[v] / 255.0f - 0.5f) / 0.25f;
            CHECK(known);
            saw |= x[i] == black;
        }
    }
    CHECK(saw);
}

static struct sg_model *small_model(void) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet300", 1, 28, 28, 10, 5, &m));
    return m;
}

SG_TEST(preproc_survives_sgm_onnx_and_npz) {
    static const char *const specs[] = {"none", "0.1307,0.3081", "dataset",
                                        "dataset=0.13066047,0.3081078", "3,50:raw:bgr"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct sg_model *m = small_model(), *back;
        m->preproc = parsed(specs[i]);
        uint8_t *buf;
        size_t len;
        CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
        CHECK(memmem(buf, len, "INPT", 4));
        CHECK_OK(sg_model_deserialize(buf, len, "p.sgm", &back, NULL));
        CHECK(back->preproc.stated && sg_preproc_equal(&back->preproc, &m->preproc));
        free(buf);
        /* ONNX: built from our layers, and written back into a graph read from ONNX */
        CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
        struct sg_model *o, *o2;
        CHECK_OK(sg_onnx_load_mem(buf, len, "p.onnx", &o));
        free(buf);
        CHECK(o->preproc.stated && sg_preproc_equal(&o->preproc, &m->preproc));
        o->preproc = parsed("0.2,0.7");
        CHECK_OK(sg_onnx_serialize(o, 0, &buf, &len));
        CHECK_OK(sg_onnx_load_mem(buf, len, "p2.onnx", &o2));
        free(buf);
        CHECK(sg_preproc_equal(&o2->preproc, &o->preproc)); /* replaced, not added */
        /* .npz */
        struct sg_model *z;
        CHECK_OK(sg_npz_serialize(m, &buf, &len));
        CHECK_OK(sg_npy_load_mem(buf, len, "p.npz", &z));
        free(buf);
        CHECK(z->preproc.stated && sg_preproc_equal(&z->preproc, &m->preproc));
        CHECK(z->n_params == m->n_params); /* the text is no tensor */
        sg_model_free(m), sg_model_free(back), sg_model_free(o), sg_model_free(o2);
        sg_model_free(z);
    }
    /* a model that says nothing writes nothing, and reads back saying nothing */
    struct sg_model *m = small_model(), *back;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    CHECK(!memmem(buf, len, "INPT", 4));
    CHECK_OK(sg_model_deserialize(buf, len, "q.sgm", &back, NULL));
    CHECK(!back->preproc.stated && back->preproc.kind == SG_NORM_DATASET && back->preproc.n == 0);
    free(buf);
    sg_model_free(back);
    CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
    CHECK(!memmem(buf, len, SG_INPUT_NORM_KEY, strlen(SG_INPUT_NORM_KEY)));
    CHECK_OK(sg_onnx_load_mem(buf, len, "q.onnx", &back));
    CHECK(!back->preproc.stated);
    free(buf);
    sg_model_free(back);
    CHECK_OK(sg_npz_serialize(m, &buf, &len));
    CHECK(!memmem(buf, len, SG_INPUT_NORM_KEY, strlen(SG_INPUT_NORM_KEY)));
    free(buf);
    sg_model_free(m);
}

/* Rewrites the CRC so that only the structure is wrong. */
static void fix_crc(uint8_t *buf, size_t len) {
    uint32_t crc = sgi_crc32(0, buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

SG_TEST(preproc_damaged_fields_are_rejected) {
    struct sg_model *m = small_model(), *back;
    m->preproc = parsed("0.1307,0.3081");
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    uint8_t *p = memmem(buf, len, "INPT", 4);
    CHECK(p);
    uint8_t *body = p + 16; /* tag, reserved, u64 length */
    const int32_t lies[][2] = {{0, 7}, {4, 9}, {8, 5}, {8, -1}, {8, 0}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        uint8_t save[4];
        memcpy(save, body + lies[i][0], 4);
        for (int k = 0; k < 4; k++) body[lies[i][0] + k] = (uint8_t)((uint32_t)lies[i][1] >> (8 * k));
        fix_crc(buf, len);
        CHECK_ERR(sg_model_deserialize(buf, len, "bad.sgm", &back, NULL), SG_ERR_FORMAT);
        CHECK(strstr(sg_last_error(), "bad.sgm"));
        memcpy(body + lies[i][0], save, 4);
    }
    /* a negative deviation */
    float neg = -0.3081f;
    memcpy(body + 20, &neg, 4); /* kind, order, n, range, mean[0], std[0] */
    fix_crc(buf, len);
    CHECK_ERR(sg_model_deserialize(buf, len, "neg.sgm", &back, NULL), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "neg.sgm") && strstr(sg_last_error(), "deviation"));
    free(buf);
    /* three channels' values for a one-channel model */
    m->preproc = parsed("0.4,0.5,0.6,0.2,0.2,0.2");
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    CHECK_ERR(sg_model_deserialize(buf, len, "rgb.sgm", &back, NULL), SG_ERR_FORMAT);
    free(buf);
    CHECK_OK(sg_onnx_serialize(m, 0, &buf, &len));
    CHECK_ERR(sg_onnx_load_mem(buf, len, "rgb.onnx", &back), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "rgb.onnx"));
    free(buf);
    sg_model_free(m);
}

/* MNIST-shaped noise: training records what it applied, evaluation uses the model's. */
SG_TEST(preproc_training_records_and_evaluation_applies_it) {
    enum { N = 256 };
    static uint8_t px[N * 784], lab[N];
    sg_rng r;
    sg_rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(sg_rng_below(&r, 4) ? 0 : 255);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "noise", .n = N, .c = 1, .h = 28, .w = 28, .classes = 10,
                           .mean = 0.25f, .std = 0.43f};
    d.pixels = px, d.labels = lab;
    struct sg_model *m = small_model();
    struct sg_eval_result before, after, other;
    CHECK_OK(sg_evaluate(m, &d, 64, &before)); /* not stated: the data set's */
    CHECK(!m->preproc.stated);
    struct sg_train_cfg cfg;
    sg_train_cfg_default(&cfg);
    cfg.epochs = 0;
    CHECK_OK(sg_train(m, &d, &cfg, NULL));
    CHECK(m->preproc.stated && m->preproc.kind == SG_NORM_DATASET && m->preproc.n == 1);
    CHECK(m->preproc.mean[0] == d.mean && m->preproc.std[0] == d.std);
    CHECK_OK(sg_evaluate(m, &d, 64, &after));
    CHECK(after.loss == before.loss && after.top1 == before.top1);
    /* fed other data, the model keeps its recorded statistics */
    struct sg_dataset d2 = d;
    d2.mean = 0.5f;
    CHECK_OK(sg_evaluate(m, &d2, 64, &other));
    CHECK(other.loss == after.loss);
    m->preproc = parsed("none");
    CHECK_OK(sg_evaluate(m, &d, 64, &other));
    CHECK(fabs(other.loss - after.loss) > 1e-3);
    /* a stated preprocessing is kept by training */
    CHECK_OK(sg_train(m, &d, &cfg, NULL));
    CHECK(m->preproc.kind == SG_NORM_FIXED && m->preproc.n == 1 && m->preproc.mean[0] == 0);
    /* per-channel values that do not fit the images: an error, not a crash */
    m->preproc = parsed("0.1,0.2,0.3,0.4");
    CHECK_ERR(sg_evaluate(m, &d, 64, &other), SG_ERR_MISMATCH);
    CHECK_ERR(sg_train(m, &d, &cfg, NULL), SG_ERR_MISMATCH);
    sg_model_free(m);
}
