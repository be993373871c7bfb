/* Regression tests for what the fuzz targets (tests/fuzz/) and the limits audit found:
 * one test per bug, named after the reader, each with the smallest input that showed
 * it. Readers must answer hostile input with an error naming the file, never a crash,
 * a hang or an allocation the input does not justify. */
#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/sparsegrain.h"

/* ---- ONNX ---- */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* protobuf-c accepted the over-long tag 0x85 0x00 (field number 0) as an unknown
 * field and wrote it back as 0x05, which no parser reads: export made a broken file. */
SG_TEST(onnx_field_number_zero_is_refused) {
    const uint8_t bad[] = {0x3a, 0x00, 0x42, 0x00, 0x85, 0x00, 0x3a, 0x02, 0x6a, 0x00};
    struct sg_model *m;
    CHECK_ERR(sg_onnx_load_mem(bad, sizeof bad, "zero.onnx", &m), SG_ERR_FORMAT);
    CHECK_MSG(strstr(sg_last_error(), "zero.onnx") && strstr(sg_last_error(), "field number"),
              "%s", sg_last_error());
}

/* protobuf-c unpacks nested messages by recursion without a limit: 200000 levels of
 * graph > node > attribute > graph (a 2.4 MB file) overflowed the stack (SIGSEGV).
 * 2000 levels show the refusal without building megabytes here. */
SG_TEST(onnx_deep_nesting_is_refused) {
    const size_t depth = 2000, cap = depth * 40 + 64;
    uint8_t *a = malloc(cap), *b = malloc(cap), tmp[16];
    CHECK(a && b);
    size_t len = 0;
    static const int fields[3] = {6, 5, 1}; /* AttributeProto.g, NodeProto.attribute, GraphProto.node */
    for (size_t lvl = 0; lvl < depth; lvl++)
        for (int f = 0; f < 3; f++) {
            size_t h = put_varint(tmp, (uint64_t)fields[f] << 3 | 2);
            h += put_varint(tmp + h, len);
            memcpy(b, tmp, h);
            memcpy(b + h, a, len);
            len += h;
            uint8_t *t = a;
            a = b, b = t;
        }
    size_t h = put_varint(tmp, 7 << 3 | 2); /* ModelProto.graph */
    h += put_varint(tmp + h, len);
    memcpy(b, tmp, h);
    memcpy(b + h, a, len);
    len += h;
    struct sg_model *m;
    CHECK_ERR(sg_onnx_load_mem(b, len, "deep.onnx", &m), SG_ERR_FORMAT);
    CHECK_MSG(strstr(sg_last_error(), "nested"), "%s", sg_last_error());
    free(a);
    free(b);
}

/* ---- points.jsonl ---- */
/* "seed", "step" and "epochs" were converted from any JSON number with (int): 1e300
 * or -1e20 is undefined behaviour (UBSan: float-cast-overflow). Now they must be
 * integers that fit an int. */
static const char POINT_HEAD[] =
    "{\"model\": \"lenet5\", \"data\": \"mnist\", \"granularity\": \"fine\", \"criterion\": "
    "\"l1\", \"control\": \"\", ";
static const char POINT_TAIL[] =
    "\"target\": 0.5, \"density\": 0.5, \"layers\": {\"conv1.weight\": 0.5}, \"top1\": 0.9, "
    "\"top5\": 1, \"loss\": 0.3, \"seconds\": 1.5, \"file\": \"models/a.sgm\"}\n";

static enum sg_status parse_two(const char *ints, struct sg_points *pts, size_t *valid) {
    char text[2048];
    snprintf(text, sizeof text, "%s%s%s%s\"seed\": 1, \"step\": 1, \"epochs\": 2, %s", POINT_HEAD,
             ints, POINT_TAIL, POINT_HEAD, POINT_TAIL);
    return sg_points_parse(text, strlen(text), "p.jsonl", pts, valid);
}

SG_TEST(points_integer_fields_must_fit_an_int) {
    struct sg_points pts;
    size_t valid;
    CHECK_OK(parse_two("\"seed\": 3, \"step\": 2, \"epochs\": 7, ", &pts, &valid));
    CHECK_EQ_INT(pts.n, 2);
    CHECK(pts.p[0].seed == 3 && pts.p[0].step == 2 && pts.p[0].epochs == 7);
    sg_points_free(&pts);
    const char *bad[] = {"\"seed\": 1e300, \"step\": 2, \"epochs\": 7, ",
                         "\"seed\": 1, \"step\": -1e20, \"epochs\": 7, ",
                         "\"seed\": 1, \"step\": 2, \"epochs\": 2.5, ",
                         "\"seed\": 1, \"step\": 2, \"epochs\": null, "};
    for (int i = 0; i < 4; i++) {
        CHECK_ERR(parse_two(bad[i], &pts, &valid), SG_ERR_FORMAT);
        CHECK(strstr(sg_last_error(), "p.jsonl: line 1"));
        CHECK(pts.n == 0 && valid == 0);
    }
}

/* ---- .sgm and the model's shape inference ---- */
/* input -> conv -> flatten -> fc, serialised after `edit` changed a node, then read */
static enum sg_status sgm_with(void (*edit)(struct sg_model *m), struct sg_model **out) {
    struct sg_model *m = sg_model_new("t", 1, 6, 6);
    struct sg_node n;
    sg_node_init(&n, SG_OP_INPUT, "input");
    CHECK(sg_model_add(m, &n) == 0);
    sg_node_init(&n, SG_OP_CONV, "conv");
    n.n_in = 1, n.in[0] = 0, n.k = 2, n.kh = n.kw = 3;
    CHECK(sg_model_add(m, &n) == 1);
    sg_node_init(&n, SG_OP_FLATTEN, "flatten");
    n.n_in = 1, n.in[0] = 1;
    CHECK(sg_model_add(m, &n) == 2);
    sg_node_init(&n, SG_OP_FC, "fc");
    n.n_in = 1, n.in[0] = 2, n.k = 3, n.has_bias = 1;
    CHECK(sg_model_add(m, &n) == 3);
    CHECK_OK(sg_model_finalize(m));
    edit(m);
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_model_serialize(m, NULL, &buf, &len));
    sg_model_free(m);
    enum sg_status st = sg_model_deserialize(buf, len, "e.sgm", out, NULL);
    free(buf);
    return st;
}

static void fc_groups_zero(struct sg_model *m) { m->nodes[3].groups = 0; }
static void input_huge(struct sg_model *m) { m->in_c = m->in_h = m->in_w = 65536; }
static void dilation_huge(struct sg_model *m) {
    m->nodes[1].dh = 1 << 24; /* dh * (kh - 1) overflowed an int */
    m->nodes[1].kh = 4096;
}

/* fuzz_sgz: a fully connected node with groups = 0 (ignored by fc, not checked by
 * the reader) made shape inference divide by zero (SIGFPE). */
SG_TEST(sgm_fc_groups_zero_is_ignored) {
    struct sg_model *m;
    CHECK_OK(sgm_with(fc_groups_zero, &m));
    CHECK_EQ_INT(m->params[m->nodes[3].param[0]].dims[1], 2 * 4 * 4);
    sg_model_free(m);
}

/* An input of 65536^3 values per sample (C*H*W overflows an int in flatten and in
 * activation sizes) is refused up front; a
 * dilation of 2^24 with a 4096 kernel overflowed the window span. */
SG_TEST(sgm_shape_arithmetic_cannot_overflow) {
    struct sg_model *m;
    CHECK_ERR(sgm_with(input_huge, &m), SG_ERR_FORMAT);
    CHECK_MSG(strstr(sg_last_error(), "e.sgm") && strstr(sg_last_error(), "values per sample"),
              "%s", sg_last_error());
    CHECK_ERR(sgm_with(dilation_huge, &m), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "e.sgm"));
}
