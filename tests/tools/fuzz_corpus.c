/* Writes the seed corpora of the fuzz targets (tests/fuzz/) from valid files our own
 * code makes: small on purpose (libFuzzer mutates faster and deeper on small inputs).
 *     fuzz_corpus OUT_DIR MNIST_DIR
 * OUT_DIR/<target>/ receives the seeds; tests/fuzz/make-corpus.sh runs this and adds
 * what needs other tools (a deflated .npz, a study's points and CSV tables).
 * Not part of the product. */
#include <errno.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/sgi.h"
#include "io/onnx.h"
#include "io/zip.h"
#include "sparsegrain/sparsegrain.h"

static const char *g_out;

static void die(const char *what) {
    fprintf(stderr, "fuzz_corpus: %s: %s\n", what, sg_last_error());
    exit(1);
}

/* OUT/<target>/<name> = prefix (plen bytes) + data. */
static void seed(const char *target, const char *name, const void *prefix, size_t plen,
                 const void *data, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_out, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", g_out, target, name);
    uint8_t *buf = malloc(plen + len + 1);
    if (plen) memcpy(buf, prefix, plen);
    if (len) memcpy(buf + plen, data, len);
    if (sg_file_write_atomic(path, buf, plen + len) != SG_OK) die(path);
    free(buf);
}

/* ---- models ---- */
static int32_t node(struct sg_model *m, enum sg_op op, const char *name, int32_t a, int32_t b) {
    struct sg_node n;
    sg_node_init(&n, op, name);
    if (a >= 0) n.in[n.n_in++] = a;
    if (b >= 0) n.in[n.n_in++] = b;
    int32_t i = sg_model_add(m, &n);
    if (i < 0) die(name);
    return i;
}

/* Every op in a few hundred weights: conv (bias, pad, groups), bn, relu, pools, add,
 * concat, gap, flatten, fc, dropout, softmax. */
static struct sg_model *tiny_model(int variant) {
    struct sg_model *m = sg_model_new("tiny", 2, 6, 6);
    int32_t x = node(m, SG_OP_INPUT, "input", -1, -1);
    int32_t c1 = node(m, SG_OP_CONV, "conv1", x, -1);
    m->nodes[c1].k = 4, m->nodes[c1].kh = m->nodes[c1].kw = 3;
    m->nodes[c1].pt = m->nodes[c1].pl = m->nodes[c1].pb = m->nodes[c1].pr = 1;
    m->nodes[c1].has_bias = 1;
    int32_t b1 = node(m, SG_OP_BN, "bn1", c1, -1);
    int32_t r1 = node(m, SG_OP_RELU, "relu1", b1, -1);
    int32_t c2 = node(m, SG_OP_CONV, "conv2", r1, -1);
    m->nodes[c2].k = 4, m->nodes[c2].kh = m->nodes[c2].kw = 3, m->nodes[c2].groups = 2;
    m->nodes[c2].pt = m->nodes[c2].pl = m->nodes[c2].pb = m->nodes[c2].pr = 1;
    int32_t s = node(m, SG_OP_ADD, "add", r1, c2);
    int32_t p;
    if (variant == 0) {
        p = node(m, SG_OP_MAXPOOL, "pool", s, -1);
        m->nodes[p].kh = m->nodes[p].kw = m->nodes[p].sh = m->nodes[p].sw = 2;
    } else {
        p = node(m, SG_OP_AVGPOOL, "pool", s, -1);
        m->nodes[p].kh = m->nodes[p].kw = 3, m->nodes[p].sh = m->nodes[p].sw = 2;
        m->nodes[p].ceil_mode = 1, m->nodes[p].count_include_pad = 0;
    }
    int32_t cat = node(m, SG_OP_CONCAT, "concat", p, p);
    int32_t f;
    if (variant == 0) {
        f = node(m, SG_OP_FLATTEN, "flatten", cat, -1);
    } else {
        int32_t g = node(m, SG_OP_GAP, "gap", cat, -1);
        f = node(m, SG_OP_FLATTEN, "flatten", g, -1);
    }
    int32_t fc = node(m, SG_OP_FC, "fc", f, -1);
    m->nodes[fc].k = 3, m->nodes[fc].has_bias = 1;
    int32_t d = node(m, SG_OP_DROPOUT, "dropout", fc, -1);
    m->nodes[d].p = 0.5f;
    int32_t sm = node(m, SG_OP_SOFTMAX, "softmax", d, -1);
    m->output = sm;
    if (sg_model_finalize(m) != SG_OK) die("tiny model");
    sg_model_init_weights(m, 5 + (uint64_t)variant);
    return m;
}

/* Prunes about half of every weight tensor (random, fixed seed). */
static void prune_half(struct sg_model *m, uint64_t seed) {
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind == SG_PARAM_WEIGHT) {
            uint8_t *mk = sg_param_mask(m, p);
            for (size_t i = 0; i < m->params[p].count; i++) mk[i] = sg_rng_uniform(&r) < 0.5;
        }
    sg_model_apply_masks(m);
}

static struct sg_model *builtin(const char *name, int c, int h, int w) {
    struct sg_model *m;
    if (sg_model_build(name, c, h, w, 10, 1, &m) != SG_OK) die(name);
    prune_half(m, 3);
    return m;
}

/* ---- targets ---- */
static void idx_seeds(const char *mnist) {
    const char *files[2] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
    for (int f = 0; f < 2; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", mnist, files[f]);
        int nd;
        int64_t dims[4];
        uint8_t *data;
        size_t len;
        if (sg_idx_read(path, &nd, dims, &data, &len) != SG_OK) die(path);
        /* the first 3 images or labels, with the header saying so */
        const size_t per = (size_t)(len / (size_t)dims[0]), keep = 3;
        uint8_t *out = malloc(4 + 4 * (size_t)nd + keep * per);
        out[0] = out[1] = 0, out[2] = 8, out[3] = (uint8_t)nd;
        for (int i = 0; i < nd; i++) {
            const uint32_t d = i == 0 ? (uint32_t)keep : (uint32_t)dims[i];
            out[4 + 4 * i] = (uint8_t)(d >> 24), out[5 + 4 * i] = (uint8_t)(d >> 16);
            out[6 + 4 * i] = (uint8_t)(d >> 8), out[7 + 4 * i] = (uint8_t)d;
        }
        memcpy(out + 4 + 4 * nd, data, keep * per);
        const size_t olen = 4 + 4 * (size_t)nd + keep * per;
        seed("fuzz_idx", f ? "labels-3.idx" : "images-3.idx", NULL, 0, out, olen);
        /* gzip of the same bytes */
        uLong zcap = compressBound(olen) + 64;
        uint8_t *z = malloc(zcap);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        zs.next_in = out, zs.avail_in = (uInt)olen, zs.next_out = z, zs.avail_out = (uInt)zcap;
        deflate(&zs, Z_FINISH);
        seed("fuzz_idx", f ? "labels-3.idx.gz" : "images-3.idx.gz", NULL, 0, z, zs.total_out);
        deflateEnd(&zs);
        free(z);
        free(out);
        free(data);
    }
}

static void sgm_seed(const char *name, const struct sg_model *m, int with_state) {
    struct sg_train_state *st = NULL;
    if (with_state && sg_train_state_new(m, &st) != SG_OK) die("train state");
    if (st) {
        st->epochs_done = 2;
        for (size_t i = 0; i < st->len; i++) st->velocity[i] = 0.001f * (float)(i % 7);
    }
    uint8_t *buf;
    size_t len;
    if (sg_model_serialize(m, st, &buf, &len) != SG_OK) die(name);
    const uint8_t repair = 1;
    seed("fuzz_sgm", name, &repair, 1, buf, len);
    free(buf);
    sg_train_state_free(st);
}

static void sgz_seeds(const struct sg_model *m, const char *tag) {
    for (int f = 0; f < SG_FORMAT_COUNT; f++) {
        struct sg_storage_cfg cfg;
        sg_storage_cfg_default(&cfg);
        cfg.kc = 2;
        if (f == SG_FORMAT_GROUP || f == SG_FORMAT_BCSR) cfg.tile = (struct sg_tile){1, 1, 0, 0};
        if (f == SG_FORMAT_NM) continue; /* needs an N:M mask: below */
        uint8_t *buf;
        size_t len;
        if (sg_sgz_serialize(m, (enum sg_format)f, &cfg, &buf, &len, NULL) != SG_OK) die("sgz");
        char name[64];
        snprintf(name, sizeof name, "%s-%s.sgz", tag, sg_format_name((enum sg_format)f));
        const uint8_t repair = 3;
        seed("fuzz_sgz", name, &repair, 1, buf, len);
        free(buf);
    }
    /* other value codings in one format each */
    const enum sg_values vals[3] = {SG_VALUES_F16, SG_VALUES_Q8, SG_VALUES_CODEBOOK};
    for (int i = 0; i < 3; i++) {
        struct sg_storage_cfg cfg;
        sg_storage_cfg_default(&cfg);
        cfg.values = vals[i];
        cfg.codebook_bits = 4;
        cfg.index_bits = SG_INDEX_BITS_AUTO;
        uint8_t *buf;
        size_t len;
        if (sg_sgz_serialize(m, SG_FORMAT_RELIDX, &cfg, &buf, &len, NULL) != SG_OK) die("sgz");
        char name[64];
        snprintf(name, sizeof name, "%s-relidx-%s.sgz", tag, sg_values_name(vals[i]));
        const uint8_t repair = 3;
        seed("fuzz_sgz", name, &repair, 1, buf, len);
        free(buf);
    }
}

/* as_model = 0: only its initializers (a large model slows the model target down) */
static void onnx_seed(const char *name, const struct sg_model *m, unsigned flags, int as_model) {
    uint8_t *buf;
    size_t len;
    if (sg_onnx_serialize(m, flags, &buf, &len) != SG_OK) die(name);
    if (as_model) seed("fuzz_onnx_model", name, NULL, 0, buf, len);
    /* its initializers, one TensorProto each, for the tensor target */
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp || !mp->graph) die("unpack");
    for (size_t i = 0; i < mp->graph->n_initializer && i < 4; i++) {
        Onnx__TensorProto *t = mp->graph->initializer[i];
        size_t tl = onnx__tensor_proto__get_packed_size(t);
        uint8_t *tb = malloc(tl + 1);
        onnx__tensor_proto__pack(t, tb);
        char tname[128];
        snprintf(tname, sizeof tname, "%s-init%zu.pb", name, i);
        const uint8_t mode = (uint8_t)(i & 1);
        seed("fuzz_onnx_tensor", tname, &mode, 1, tb, tl);
        free(tb);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}

/* TensorProtos of the types the reader decodes, in typed fields and raw_data. */
static void tensor_seeds(void) {
    int64_t dims[2] = {2, 3};
    float f[6] = {1, -2, 0, 3.5f, 0, -0.25f};
    double d[6] = {1, -2, 0, 3.5, 0, -0.25};
    int32_t i32[6] = {1, 2, 0, 60000, 0, 255};
    int64_t i64[6] = {1, -2, 0, 3, 0, 7};
    uint8_t raw[48];
    for (int k = 0; k < 48; k++) raw[k] = (uint8_t)(k * 37 + 11);
    struct { int dt, field, es; } kinds[] = {
        {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, 4},   {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, 4},
        {ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, 8},  {ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 0, 8},
        {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1, 2}, {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 0, 2},
        {ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16, 0, 2}, {ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 0, 1},
        {ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 1, 1},   {ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, 8},
        {ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, 4},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
        t.name = "w";
        t.has_data_type = 1;
        t.data_type = kinds[k].dt;
        t.n_dims = 2;
        t.dims = dims;
        if (!kinds[k].field) {
            t.has_raw_data = 1;
            t.raw_data.data = raw;
            t.raw_data.len = 6 * (size_t)kinds[k].es;
        } else if (kinds[k].dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            t.n_float_data = 6, t.float_data = f;
        } else if (kinds[k].dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
            t.n_double_data = 6, t.double_data = d;
        } else if (kinds[k].dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
            t.n_int64_data = 6, t.int64_data = i64;
        } else {
            t.n_int32_data = 6, t.int32_data = i32;
        }
        size_t tl = onnx__tensor_proto__get_packed_size(&t);
        uint8_t *tb = malloc(tl + 1);
        onnx__tensor_proto__pack(&t, tb);
        char name[64];
        snprintf(name, sizeof name, "%s-%s.pb", sgi_onnx_dtype_name(kinds[k].dt),
                 kinds[k].field ? "typed" : "raw");
        const uint8_t mode = (uint8_t)(k & 1);
        seed("fuzz_onnx_tensor", name, &mode, 1, tb, tl);
        free(tb);
    }
}

static void npy_seeds(const struct sg_model *m) {
    uint8_t *buf;
    size_t len;
    if (sg_npz_serialize(m, &buf, &len) != SG_OK) die("npz");
    seed("fuzz_npy", "tiny.npz", NULL, 0, buf, len);
    /* its first arrays alone, as .npy files */
    struct sgi_zip_entry *e;
    size_t n;
    if (sgi_zip_list(buf, len, "tiny.npz", &e, &n) != SG_OK) die("zip");
    for (size_t i = 0; i < n && i < 4; i++) {
        const uint8_t *d;
        uint8_t *owned;
        if (sgi_zip_extract(&e[i], "tiny.npz", &d, &owned) != SG_OK) die("zip");
        seed("fuzz_npy", e[i].name, NULL, 0, d, (size_t)e[i].size);
        free(owned);
    }
    free(e);
    free(buf);
}

/* A synthetic manifest with every stored type and layout the loader knows; the seed
 * is a 4-byte manifest length, the manifest, then the shard bytes. */
static void tfjs_seeds(void) {
    static const char *man =
        "[{\"paths\": [\"group1-shard1of1.bin\"], \"weights\": ["
        "{\"name\": \"conv/kernel\", \"shape\": [3, 3, 2, 4], \"dtype\": \"float32\"},"
        "{\"name\": \"conv/bias\", \"shape\": [4], \"dtype\": \"float32\"},"
        "{\"name\": \"dw/depthwise_kernel\", \"shape\": [3, 3, 2, 1], \"dtype\": \"float32\","
        " \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.01, \"min\": -1.2}},"
        "{\"name\": \"dense/kernel\", \"shape\": [8, 3], \"dtype\": \"float32\","
        " \"quantization\": {\"dtype\": \"float16\"}},"
        "{\"name\": \"steps\", \"shape\": [], \"dtype\": \"int32\"},"
        "{\"name\": \"labels\", \"shape\": [2], \"dtype\": \"string\"},"
        "{\"name\": \"scale16\", \"shape\": [2, 2], \"dtype\": \"float32\","
        " \"quantization\": {\"dtype\": \"uint16\", \"scale\": 0.001, \"min\": 0}}]}]";
    struct sgi_buf b = {0};
    for (int i = 0; i < 3 * 3 * 2 * 4 + 4; i++) sgi_buf_f32(&b, 0.05f * (float)(i % 9) - 0.2f);
    for (int i = 0; i < 18; i++) sgi_buf_u8(&b, (uint8_t)(i * 13));
    for (int i = 0; i < 24; i++) {
        uint16_t h = sg_f32_to_f16(0.1f * (float)(i % 5) - 0.2f);
        sgi_buf_u8(&b, (uint8_t)h), sgi_buf_u8(&b, (uint8_t)(h >> 8));
    }
    sgi_buf_u32(&b, 7);
    sgi_buf_u32(&b, 3), sgi_buf_put(&b, "cat", 3);
    sgi_buf_u32(&b, 3), sgi_buf_put(&b, "dog", 3);
    for (int i = 0; i < 4; i++) sgi_buf_u8(&b, (uint8_t)(i * 50)), sgi_buf_u8(&b, 1);
    struct sgi_buf in = {0};
    sgi_buf_u32(&in, (uint32_t)strlen(man));
    sgi_buf_put(&in, man, strlen(man));
    sgi_buf_put(&in, b.data, b.len);
    /* check the seed is valid */
    struct sg_model *m;
    if (sg_tfjs_load_mem((const uint8_t *)man, strlen(man), b.data, b.len, "seed.json", &m) != SG_OK)
        die("tfjs seed");
    sg_model_free(m);
    seed("fuzz_tfjs", "synthetic.bin", NULL, 0, in.data, in.len);
    /* a model.json wrapper with two groups */
    static const char *man2 =
        "{\"format\": \"layers-model\", \"weightsManifest\": ["
        "{\"paths\": [\"a.bin\"], \"weights\": [{\"name\": \"k\", \"shape\": [2, 2], \"dtype\": \"float32\"}]},"
        "{\"paths\": [\"b1.bin\", \"b2.bin\"], \"weights\": [{\"name\": \"c\", \"shape\": [1, 1, 1, 2], \"dtype\": \"float32\"}]}]}";
    sgi_buf_free(&in);
    sgi_buf_u32(&in, (uint32_t)strlen(man2));
    sgi_buf_put(&in, man2, strlen(man2));
    for (int i = 0; i < 6; i++) sgi_buf_f32(&in, (float)i - 2.5f);
    seed("fuzz_tfjs", "model-json.bin", NULL, 0, in.data, in.len);
    sgi_buf_free(&in);
    sgi_buf_free(&b);
}

/* Header bytes of fuzz_storage_decode.c followed by a stream encoded with them. */
static void storage_seeds(void) {
    struct { int f, values, ib, tile[4], kc, nm_n, nm_m, k, c, r, s, fc; } cases[] = {
        {SG_FORMAT_DENSE, SG_VALUES_F32, -1, {1, 1, 1, 1}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_RELIDX, SG_VALUES_F32, 4, {1, 1, 1, 1}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_RELIDX, SG_VALUES_F16, 2, {1, 1, 1, 1}, 8, 2, 4, 8, 6, 1, 1, 1},
        {SG_FORMAT_GROUP, SG_VALUES_F32, 3, {1, 1, 0, 0}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_GROUP, SG_VALUES_Q8, 2, {1, 0, 0, 0}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_CSR, SG_VALUES_F32, -1, {1, 1, 1, 1}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_BITMAP, SG_VALUES_CODEBOOK, -1, {1, 1, 1, 1}, 8, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_RLE4, SG_VALUES_F32, 4, {1, 1, 1, 1}, 2, 2, 4, 4, 3, 3, 3, 0},
        {SG_FORMAT_NM, SG_VALUES_F32, -1, {1, 1, 1, 1}, 8, 2, 4, 4, 8, 1, 1, 1},
        {SG_FORMAT_BCSR, SG_VALUES_F32, -1, {2, 2, 1, 1}, 8, 2, 4, 4, 4, 3, 3, 0},
        {SG_FORMAT_BCSR, SG_VALUES_F16, -1, {1, 1, 0, 0}, 8, 2, 4, 4, 3, 3, 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t k = cases[i].k, c = cases[i].c, r = cases[i].r, s = cases[i].s;
        const size_t n = (size_t)(k * c * r * s);
        float *w = malloc(n * sizeof *w);
        uint8_t *mk = malloc(n);
        sg_rng g;
        sg_rng_seed(&g, 100 + i);
        for (size_t j = 0; j < n; j++) {
            w[j] = sg_rng_normal(&g);
            mk[j] = sg_rng_uniform(&g) < 0.4;
        }
        if (cases[i].f == SG_FORMAT_NM) /* at most 2 kept in each 4 along C */
            for (size_t j = 0; j < n; j++) mk[j] = (j % 4) < 2 && (j % 3);
        if (cases[i].f == SG_FORMAT_GROUP || cases[i].f == SG_FORMAT_BCSR) /* whole tiles */
            for (size_t j = 0; j < n; j++) mk[j] = (j / (size_t)(r * s)) % 3 != 1;
        for (size_t j = 0; j < n; j++)
            if (!mk[j]) w[j] = 0;
        struct sg_wview v = {"seed", k, c, r, s, w, mk, cases[i].fc};
        struct sg_storage_cfg cfg;
        sg_storage_cfg_default(&cfg);
        cfg.values = (enum sg_values)cases[i].values;
        cfg.codebook_bits = 3;
        cfg.index_bits = cases[i].ib;
        cfg.tile = (struct sg_tile){cases[i].tile[0], cases[i].tile[1], cases[i].tile[2], cases[i].tile[3]};
        cfg.kc = cases[i].kc;
        cfg.nm_n = cases[i].nm_n, cfg.nm_m = cases[i].nm_m;
        uint8_t *blob;
        size_t len;
        if (sg_encode((enum sg_format)cases[i].f, &v, &cfg, &blob, &len, NULL) != SG_OK) die("encode");
        const uint8_t h[16] = {(uint8_t)(cases[i].f | 0x80), (uint8_t)cases[i].values,
                               (uint8_t)(cfg.codebook_bits - 1), (uint8_t)(cases[i].ib + 1),
                               (uint8_t)cases[i].tile[0], (uint8_t)cases[i].tile[1],
                               (uint8_t)cases[i].tile[2], (uint8_t)cases[i].tile[3],
                               (uint8_t)(cases[i].kc - 1), (uint8_t)(cases[i].nm_m - 1),
                               (uint8_t)(cases[i].nm_n - 1), (uint8_t)(k - 1), (uint8_t)(c - 1),
                               (uint8_t)(r - 1), (uint8_t)(s - 1), (uint8_t)cases[i].fc};
        char name[64];
        snprintf(name, sizeof name, "%02zu-%s-%s.bin", i, sg_format_name((enum sg_format)cases[i].f),
                 sg_values_name((enum sg_values)cases[i].values));
        seed("fuzz_storage_decode", name, h, 16, blob, len);
        sg_blob_free(blob);
        free(w);
        free(mk);
    }
}

static void energy_seeds(void) {
    struct sg_energy_table t;
    sg_energy_table_default(&t);
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "{\"source\": \"%s\", \"mult_pj\": %.17g, \"add_pj\": %.17g, "
                     "\"weight_bit_pj\": %.17g, \"act_bit_pj\": %.17g, \"acc_bit_pj\": %.17g, "
                     "\"out_bit_pj\": %.17g, \"halo_bit_pj\": %.17g, \"dram_bit_pj\": %.17g}\n",
                     t.source, t.mult_pj, t.add_pj, t.weight_bit_pj, t.act_bit_pj, t.acc_bit_pj,
                     t.out_bit_pj, t.halo_bit_pj, t.dram_bit_pj);
    seed("fuzz_energy", "default.json", NULL, 0, buf, (size_t)n);
    const char *part = "{\"mult_pj\": 0.2, \"dram_bit_pj\": 1e1}";
    seed("fuzz_energy", "partial.json", NULL, 0, part, strlen(part));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_corpus OUT_DIR MNIST_DIR\n");
        return 2;
    }
    g_out = argv[1];
    if (mkdir(g_out, 0755) != 0 && errno != EEXIST) die(g_out);
    idx_seeds(argv[2]);
    struct sg_model *t0 = tiny_model(0), *t1 = tiny_model(1);
    prune_half(t1, 9);
    struct sg_model *lenet5 = builtin("lenet5", 1, 16, 16), *resnet8 = builtin("resnet8", 1, 8, 8);
    sgm_seed("tiny.sgm", t0, 0);
    sgm_seed("tiny-pruned-state.sgm", t1, 1);
    sgm_seed("lenet5-16x16.sgm", lenet5, 0);
    sgm_seed("resnet8-8x8.sgm", resnet8, 0);
    {
        struct sg_model *l300 = builtin("lenet300", 1, 1, 1), *vgg7 = builtin("vgg7", 1, 8, 8);
        sgm_seed("lenet300-1x1.sgm", l300, 0);
        sgm_seed("vgg7-8x8.sgm", vgg7, 0);
        sg_model_free(l300), sg_model_free(vgg7);
    }
    sgz_seeds(t1, "tiny");
    onnx_seed("tiny.onnx", t0, 0, 1);
    onnx_seed("tiny-masks.onnx", t1, SG_ONNX_MASKS, 1);
    onnx_seed("resnet8-8x8.onnx", resnet8, 0, 0);
    tensor_seeds();
    npy_seeds(t1);
    /* a weights-only model (from .npz) exported: a graph of initializers only */
    {
        uint8_t *buf;
        size_t len;
        struct sg_model *w;
        if (sg_npz_serialize(t0, &buf, &len) != SG_OK || sg_npy_load_mem(buf, len, "t.npz", &w) != SG_OK)
            die("weights only");
        onnx_seed("weights-only.onnx", w, 0, 1);
        sg_model_free(w);
        free(buf);
    }
    tfjs_seeds();
    storage_seeds();
    energy_seeds();
    sg_model_free(t0), sg_model_free(t1), sg_model_free(lenet5), sg_model_free(resnet8);
    return 0;
}
