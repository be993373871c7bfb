/* BN followed by its only consumer, a ReLU, runs as one pass forward and one
 * backward (src/nn/ops.c, planned in src/nn/exec.c): the same arithmetic as the
 * two nodes, so a few SGD steps of VGG-7 and ResNet-8 (conv-BN-ReLU everywhere;
 * ResNet's BN before an add is not fused) give bit-identical models fused and
 * unfused, on one and two threads. The gradients themselves are checked against
 * finite differences in tests/test_ops.c (grad_batchnorm_relu_fused). */
#include "harness.h"
#include "nn/ops.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"

static struct sg_model *trained(const char *arch, int fuse, int threads, int batch) {
    static uint8_t px[100 * 256], lab[100];
    for (int i = 0; i < 100 * 256; i++) px[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < 100; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "synthetic", .n = 100, .c = 1, .h = 16, .w = 16, .classes = 10,
                           .mean = 120, .std = 70};
    d.pixels = px;
    d.labels = lab;
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build(arch, 1, 16, 16, 10, 7, &m));
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = batch; /* 100 images: a short last batch */
    tc.lr = 0.02f;
    tc.schedule = SG_LR_CONSTANT;
    sg_set_threads(threads);
    sgi_bn_relu_fuse_enable(fuse);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_bn_relu_fuse_enable(1);
    return m;
}

static void check_arch(const char *arch) {
    for (int threads = 1; threads <= 2; threads++) {
        struct sg_model *a = trained(arch, 1, threads, 32), *b = trained(arch, 0, threads, 32);
        CHECK_MSG(memcmp(a->arena, b->arena, a->arena_len * sizeof(float)) == 0,
                  "%s, %d threads: fused BN+ReLU differs from BN then ReLU", arch, threads);
        sg_model_free(a), sg_model_free(b);
    }
}

SG_TEST(bn_relu_fused_equals_unfused_vgg7) { check_arch("vgg7"); }
SG_TEST(bn_relu_fused_equals_unfused_resnet8) { check_arch("resnet8"); }
