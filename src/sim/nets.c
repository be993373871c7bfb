/* The paper's ImageNet networks as layer shapes, from the published architectures:
 *   alexnet     Krizhevsky et al. 2012 as in Caffe's bvlc_alexnet (227x227 input,
 *               conv2/4/5 in two groups);
 *   vgg16       Simonyan and Zisserman 2015, configuration D;
 *   googlenet   Szegedy et al. 2015, Table 1 (inception v1);
 *   resnet50    He et al. 2016, Table 1, with the stride-2 downsampling on the first
 *               1x1 convolution of a stage and on its projection (the original
 *               Caffe model; torchvision's "v1.5" moves it to the 3x3);
 *   densenet121 Huang et al. 2017, Table 1: growth 32, bottleneck 4 x 32 = 128,
 *               compression 0.5.
 * Input sizes are those each layer sees after the pooling layers between them.
 * relu marks layers whose output goes straight through a ReLU (ResNet's last 1x1
 * of a block and its projection feed the addition; DenseNet's convolutions feed a
 * concatenation followed by BN-ReLU, so post-processing cannot apply it). */
#include "sim/simi.h"

static const char *const NAMES[] = {"alexnet", "vgg16", "googlenet", "resnet50", "densenet121",
                                    NULL};
const char *const *sg_scnn_net_names(void) { return NAMES; }

struct tab {
    struct sg_scnn_shape *l;
    int n, cap, bad;
};

static void add(struct tab *t, const char *name, int c, int k, int r, int hw, int stride, int pad,
                int groups, int relu) {
    if (t->bad) return;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        struct sg_scnn_shape *l = realloc(t->l, sizeof *l * (size_t)cap);
        if (!l) {
            t->bad = 1;
            return;
        }
        t->l = l;
        t->cap = cap;
    }
    struct sg_scnn_shape *s = &t->l[t->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->c = c, s->k = k, s->r = s->s = r, s->h = s->w = hw;
    s->stride = stride, s->pad = pad, s->groups = groups, s->relu = relu;
    s->is_fc = 0;
}

static void fc(struct tab *t, const char *name, int c, int k, int relu) {
    add(t, name, c, k, 1, 1, 1, 0, 1, relu);
    if (!t->bad) t->l[t->n - 1].is_fc = 1;
}

static void alexnet(struct tab *t) {
    add(t, "conv1", 3, 96, 11, 227, 4, 0, 1, 1);  /* -> 55, pool -> 27 */
    add(t, "conv2", 48, 256, 5, 27, 1, 2, 2, 1);  /* -> 27, pool -> 13 */
    add(t, "conv3", 256, 384, 3, 13, 1, 1, 1, 1);
    add(t, "conv4", 192, 384, 3, 13, 1, 1, 2, 1);
    add(t, "conv5", 192, 256, 3, 13, 1, 1, 2, 1); /* pool -> 6 */
    fc(t, "fc6", 256 * 6 * 6, 4096, 1);
    fc(t, "fc7", 4096, 4096, 1);
    fc(t, "fc8", 4096, 1000, 0);
}

static void vgg16(struct tab *t) {
    static const struct {
        const char *name;
        int c, k, hw;
    } L[] = {
        {"conv1_1", 3, 64, 224},    {"conv1_2", 64, 64, 224},   {"conv2_1", 64, 128, 112},
        {"conv2_2", 128, 128, 112}, {"conv3_1", 128, 256, 56},  {"conv3_2", 256, 256, 56},
        {"conv3_3", 256, 256, 56},  {"conv4_1", 256, 512, 28},  {"conv4_2", 512, 512, 28},
        {"conv4_3", 512, 512, 28},  {"conv5_1", 512, 512, 14},  {"conv5_2", 512, 512, 14},
        {"conv5_3", 512, 512, 14},
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) add(t, L[i].name, L[i].c, L[i].k, 3, L[i].hw, 1, 1, 1, 1);
    fc(t, "fc6", 512 * 7 * 7, 4096, 1);
    fc(t, "fc7", 4096, 4096, 1);
    fc(t, "fc8", 4096, 1000, 0);
}

static int inception(struct tab *t, const char *id, int c, int hw, int n1, int n3r, int n3,
                     int n5r, int n5, int pp) {
    char b[48];
#define NM(suffix) (snprintf(b, sizeof b, "inception_%s/%s", id, suffix), b)
    add(t, NM("1x1"), c, n1, 1, hw, 1, 0, 1, 1);
    add(t, NM("3x3_reduce"), c, n3r, 1, hw, 1, 0, 1, 1);
    add(t, NM("3x3"), n3r, n3, 3, hw, 1, 1, 1, 1);
    add(t, NM("5x5_reduce"), c, n5r, 1, hw, 1, 0, 1, 1);
    add(t, NM("5x5"), n5r, n5, 5, hw, 1, 2, 1, 1);
    add(t, NM("pool_proj"), c, pp, 1, hw, 1, 0, 1, 1); /* after a 3x3 stride-1 max pool */
#undef NM
    return n1 + n3 + n5 + pp;
}

static void googlenet(struct tab *t) {
    add(t, "conv1/7x7_s2", 3, 64, 7, 224, 2, 3, 1, 1); /* -> 112, pool -> 56 */
    add(t, "conv2/3x3_reduce", 64, 64, 1, 56, 1, 0, 1, 1);
    add(t, "conv2/3x3", 64, 192, 3, 56, 1, 1, 1, 1);    /* pool -> 28 */
    int c = inception(t, "3a", 192, 28, 64, 96, 128, 16, 32, 32);
    c = inception(t, "3b", c, 28, 128, 128, 192, 32, 96, 64); /* pool -> 14 */
    c = inception(t, "4a", c, 14, 192, 96, 208, 16, 48, 64);
    c = inception(t, "4b", c, 14, 160, 112, 224, 24, 64, 64);
    c = inception(t, "4c", c, 14, 128, 128, 256, 24, 64, 64);
    c = inception(t, "4d", c, 14, 112, 144, 288, 32, 64, 64);
    c = inception(t, "4e", c, 14, 256, 160, 320, 32, 128, 128); /* pool -> 7 */
    c = inception(t, "5a", c, 7, 256, 160, 320, 32, 128, 128);
    c = inception(t, "5b", c, 7, 384, 192, 384, 48, 128, 128); /* avg pool -> 1 */
    fc(t, "loss3/classifier", c, 1000, 0);
}

static void resnet50(struct tab *t) {
    add(t, "conv1", 3, 64, 7, 224, 2, 3, 1, 1); /* -> 112, pool -> 56 */
    static const struct {
        const char *id;
        int blocks, mid, hw_in, stride;
    } S[] = {{"2", 3, 64, 56, 1}, {"3", 4, 128, 56, 2}, {"4", 6, 256, 28, 2}, {"5", 3, 512, 14, 2}};
    int c = 64;
    char b[48];
    for (int i = 0; i < 4; i++) {
        const int out = 4 * S[i].mid, hw = S[i].hw_in / S[i].stride;
        for (int j = 0; j < S[i].blocks; j++) {
            const char blk = (char)('a' + j);
            const int st = j == 0 ? S[i].stride : 1, hin = j == 0 ? S[i].hw_in : hw;
            if (j == 0) {
                snprintf(b, sizeof b, "res%s%c_branch1", S[i].id, blk);
                add(t, b, c, out, 1, hin, st, 0, 1, 0);
            }
            snprintf(b, sizeof b, "res%s%c_branch2a", S[i].id, blk);
            add(t, b, c, S[i].mid, 1, hin, st, 0, 1, 1);
            snprintf(b, sizeof b, "res%s%c_branch2b", S[i].id, blk);
            add(t, b, S[i].mid, S[i].mid, 3, hw, 1, 1, 1, 1);
            snprintf(b, sizeof b, "res%s%c_branch2c", S[i].id, blk);
            add(t, b, S[i].mid, out, 1, hw, 1, 0, 1, 0);
            c = out;
        }
    }
    fc(t, "fc1000", c, 1000, 0);
}

static void densenet121(struct tab *t) {
    add(t, "conv0", 3, 64, 7, 224, 2, 3, 1, 1); /* -> 112, pool -> 56 */
    static const int layers[4] = {6, 12, 24, 16}, hw[4] = {56, 28, 14, 7};
    int c = 64;
    char b[48];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < layers[i]; j++) {
            snprintf(b, sizeof b, "denseblock%d/layer%d/conv1", i + 1, j + 1);
            add(t, b, c, 128, 1, hw[i], 1, 0, 1, 0);
            snprintf(b, sizeof b, "denseblock%d/layer%d/conv2", i + 1, j + 1);
            add(t, b, 128, 32, 3, hw[i], 1, 1, 1, 0);
            c += 32;
        }
        if (i < 3) { /* 1x1 convolution at the block's resolution, then 2x2 average pool */
            snprintf(b, sizeof b, "transition%d/conv", i + 1);
            add(t, b, c, c / 2, 1, hw[i], 1, 0, 1, 0);
            c /= 2;
        }
    }
    fc(t, "classifier", c, 1000, 0);
}

enum sg_status sg_scnn_net_layers(const char *net, struct sg_scnn_shape **out, int *n) {
    *out = NULL;
    *n = 0;
    struct tab t = {0};
    if (!net) net = "";
    if (strcmp(net, "alexnet") == 0) alexnet(&t);
    else if (strcmp(net, "vgg16") == 0) vgg16(&t);
    else if (strcmp(net, "googlenet") == 0) googlenet(&t);
    else if (strcmp(net, "resnet50") == 0) resnet50(&t);
    else if (strcmp(net, "densenet121") == 0) densenet121(&t);
    else
        return sgi_error(SG_ERR_ARG,
                         "unknown network '%s' (alexnet, vgg16, googlenet, resnet50, densenet121)",
                         net);
    if (t.bad) {
        free(t.l);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    *out = t.l;
    *n = t.n;
    return SG_OK;
}
