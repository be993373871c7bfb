/* BN followed by its only consumer, a ReLU, runs as one pass forward and one
 * backward (src/nn/ops.c, planned in src/nn/exec.c): the same arithmetic as the
 * two nodes, so a few SGD steps of VGG-7 and ResNet-8 (conv-BN-ReLU everywhere;
 * ResNet's BN before an add is not fused) give bit-identical models fused and
 * unfused, on one and two threads. The gradients themselves are checked against
 * finite differences in tests/test_ops.c (grad_batchnorm_relu_fused). */
#include "harness.h"
#include "core/sgi_kv.h"
#include "nn/ops.h"
#include "sparsegrain/data.h"
#include "nn/graph.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

/* 100 synthetic 16x16 images (pixels from a multiplicative hash), labels 0..9. */
static struct sg_dataset synthetic(uint8_t *px, uint8_t *lab, uint32_t mul) {
    for (int i = 0; i < 100 * 256; i++) px[i] = (uint8_t)(((uint32_t)i * mul) >> 24);
    for (int i = 0; i < 100; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "synthetic", .n = 100, .c = 1, .h = 16, .w = 16, .classes = 10,
                           .mean = 120, .std = 70};
    d.pixels = px;
    d.labels = lab;
    return d;
}

/* One epoch at a constant rate on the given threads (100 images: with batch 32 or 64,
 * a short last batch). */
static struct sg_train_cfg one_epoch(int batch, int threads) {
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = batch;
    tc.lr = 0.02f;
    tc.schedule = SG_LR_CONSTANT;
    sg_set_threads(threads);
    return tc;
}

static struct sg_model *trained(const char *arch, int fuse, int threads, int batch) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 2654435761u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build(arch, 1, 16, 16, 10, 7, &m));
    struct sg_train_cfg tc = one_epoch(batch, threads);
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

/* Gradients written by the first reader to touch them in the backward (exec.c's
 * gset_plan: a BN, pool, flatten, conv or ReLU, or an add for each addend) give the
 * bits of zeroing every gradient and adding to it: a few steps, so stale buffers
 * would show. */
SG_TEST(gradients_written_by_their_reader_equal_zeroed) {
    const char *archs[] = {"lenet5", "vgg7", "resnet8"};
    for (int a = 0; a < 3; a++)
        for (int threads = 1; threads <= 2; threads++) {
            struct sg_model *on = trained(archs[a], 1, threads, 32);
            sgi_grad_set_enable(0);
            struct sg_model *off = trained(archs[a], 1, threads, 32);
            sgi_grad_set_enable(1);
            CHECK_MSG(memcmp(on->arena, off->arena, on->arena_len * sizeof(float)) == 0,
                      "%s, %d threads: gradients written by their reader differ from zeroed ones",
                      archs[a], threads);
            sg_model_free(on), sg_model_free(off);
        }
}

/* Dead channels: a filter-pruned VGG-7 whose pruned filters' biases and BN shifts
 * are 0 and masked (what pruning does to an empty filter) has channels that are
 * exactly 0; BN, ReLU and the max pools skip them. Training with the skipping
 * equals training without it bit for bit, and the skipping does happen. */
static void zero_dead_filters(struct sg_model *m) {
    for (int32_t i = 1; i < m->n_nodes; i++) {
        const struct sg_node *bn = &m->nodes[i];
        if (bn->op != SG_OP_BN) continue;
        const struct sg_node *cv = &m->nodes[bn->in[0]];
        if (cv->op != SG_OP_CONV) continue;
        const struct sg_param *wp = &m->params[cv->param[0]];
        const size_t per = wp->count / (size_t)cv->k;
        for (int c = 0; c < cv->k; c++) {
            size_t t = 0;
            while (t < per && !m->mask[wp->offset + (size_t)c * per + t]) t++;
            if (t < per) continue;
            if (cv->param[1] >= 0) {
                m->arena[m->params[cv->param[1]].offset + c] = 0;
                m->mask[m->params[cv->param[1]].offset + c] = 0;
            }
            m->arena[m->params[bn->param[1]].offset + c] = 0;
            m->mask[m->params[bn->param[1]].offset + c] = 0;
        }
    }
}

/* m pruned by whole filters to 0.3 by L1, as `sparsegrain prune` does (first layer
 * with include_first; fc layers as fc says). */
static void filter_pruned(struct sg_model *m, int include_first, enum sg_fc_mode fc) {
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    pc.include_first = include_first;
    pc.fc = fc;
    struct sg_prune_result pr;
    CHECK_OK(sg_prune_model(m, &pc, 0.3, &pr));
}

static struct sg_model *pruned_trained(int dead_on, int threads, int *found) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 2246822519u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("vgg7", 1, 16, 16, 10, 9, &m));
    filter_pruned(m, 0, SG_FC_FINE);
    zero_dead_filters(m);
    if (found) { /* one training forward: how many channels are found dead */
        struct sg_exec *e = NULL;
        CHECK_OK(sgi_exec_new_train(m, 4, &e));
        float *x = calloc(4 * 256, sizeof *x);
        for (int i = 0; i < 4 * 256; i++) x[i] = (float)(i % 7) - 3;
        sg_rng r;
        sg_rng_seed(&r, 1);
        float *saved = malloc(m->arena_len * sizeof *saved);
        memcpy(saved, m->arena, m->arena_len * sizeof *saved); /* running statistics move */
        CHECK_OK(sg_forward(m, e, x, 4, 1, &r));
        memcpy(m->arena, saved, m->arena_len * sizeof *saved);
        *found = 0;
        for (int32_t i = 0; i < m->n_nodes; i++) *found += e->ndead ? e->ndead[i] : 0;
        sg_exec_free(e);
        free(x), free(saved);
    }
    struct sg_train_cfg tc = one_epoch(32, threads);
    sgi_dead_channels_enable(dead_on);
    sgi_exec_poison(1); /* a skipped channel that someone reads shows as NaN */
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_exec_poison(0);
    sgi_dead_channels_enable(1);
    return m;
}

/* a and b (trained with a fast path on and off) hold the same bits, and a's pruned
 * weights are exactly 0; frees both. */
static void check_same_pruned(struct sg_model *a, struct sg_model *b, const char *what, int threads) {
    CHECK_MSG(memcmp(a->arena, b->arena, a->arena_len * sizeof(float)) == 0,
              "%d threads: %s changed the model", threads, what);
    for (size_t i = 0; i < a->arena_len; i++)
        if (!a->mask[i]) CHECK(a->arena[i] == 0.0f);
    sg_model_free(a), sg_model_free(b);
}

SG_TEST(dead_channels_skipped_exactly) {
    for (int threads = 1; threads <= 2; threads++) {
        int found = 0;
        struct sg_model *a = pruned_trained(1, threads, &found), *b = pruned_trained(0, threads, NULL);
        CHECK_MSG(found > 10, "%d dead channels found", found);
        check_same_pruned(a, b, "skipping dead channels", threads);
    }
}

/* Without BN (LeNet-5: conv -> max pool), a filter whose every weight and bias is
 * masked outputs exactly 0, and the pool reading it skips the channel forward and
 * backward (graph.c, pool_dead). Filter-pruned at 0.3 with the first layer too, the
 * biases set first (a freshly built model's are 0) so that pruning's masks, not
 * chance, make them 0; one dead filter of conv2 gets its bias back (unmasked,
 * 0.5) with fc1's weights that read its channel: not dead, its output the constant
 * bias, whose gradient the pool must carry. Thinned layers and the dense masked
 * kernels, one and two threads: the same bits with the skipping on and off. */
static struct sg_model *lenet_dead_trained(int dead_on, int thin, int threads, int *found) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 2246822519u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("lenet5", 1, 16, 16, 10, 9, &m));
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind == SG_PARAM_BIAS)
            for (size_t i = 0; i < m->params[p].count; i++)
                m->arena[m->params[p].offset + i] = 0.01f * (float)((i % 7) + 1);
    filter_pruned(m, 1, SG_FC_FINE);
    const struct sg_node *c2 = NULL;
    for (int32_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, "conv2")) c2 = &m->nodes[i];
    const struct sg_param *bp = &m->params[c2->param[1]];
    int revived = -1;
    for (int c = 0; c < c2->k && revived < 0; c++)
        if (!m->mask[bp->offset + c]) revived = c;
    CHECK(revived >= 0);
    m->mask[bp->offset + revived] = 1;
    m->arena[bp->offset + revived] = 0.5f;
    for (int32_t i = 0; i < m->n_nodes; i++) /* and fc1's weights that read it (1x1 after pool2) */
        if (!strcmp(m->nodes[i].name, "fc1")) {
            const struct sg_param *wp = &m->params[m->nodes[i].param[0]];
            const size_t in = wp->count / (size_t)m->nodes[i].k;
            for (int k = 0; k < m->nodes[i].k; k++) {
                m->mask[wp->offset + (size_t)k * in + revived] = 1;
                m->arena[wp->offset + (size_t)k * in + revived] = 0.01f * (float)((k % 5) - 2);
            }
        }
    if (found) { /* one training forward: the dead channels found */
        struct sg_exec *e = NULL;
        CHECK_OK(sgi_exec_new_train(m, 4, &e));
        float *x = calloc(4 * 256, sizeof *x);
        for (int i = 0; i < 4 * 256; i++) x[i] = (float)(i % 7) - 3;
        CHECK_OK(sg_forward(m, e, x, 4, 1, NULL));
        *found = 0;
        for (int32_t i = 0; i < m->n_nodes; i++) *found += e->ndead ? e->ndead[i] : 0;
        const float *y2 = e->out[c2 - m->nodes]; /* the revived filter's output: its bias */
        for (int t = 0; t < 4 * c2->h * c2->w; t++)
            CHECK(y2[(size_t)revived * 4 * c2->h * c2->w + t] == 0.5f);
        sg_exec_free(e);
        free(x);
    }
    struct sg_train_cfg tc = one_epoch(32, threads);
    sgi_dead_channels_enable(dead_on);
    sgi_conv_thin_enable(thin);
    sgi_exec_poison(1); /* a skipped channel that someone reads shows as NaN */
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_exec_poison(0);
    sgi_dead_channels_enable(1);
    sgi_conv_thin_enable(1);
    CHECK_MSG(m->arena[bp->offset + revived] != 0.5f, "the revived bias did not train");
    return m;
}

SG_TEST(dead_conv_channels_before_pools_skipped_exactly) {
    int found = 0;
    sg_model_free(lenet_dead_trained(1, 1, 1, &found));
    /* conv1 keeps 6 of 20 filters, conv2 15 of 50 (one of the 35 revived) */
    CHECK_MSG(found == 14 + 34, "%d dead channels found", found);
    for (int threads = 1; threads <= 2; threads++)
        for (int thin = 0; thin <= 1; thin++) {
            struct sg_model *a = lenet_dead_trained(1, thin, threads, NULL);
            struct sg_model *b = lenet_dead_trained(0, thin, threads, NULL);
            check_same_pruned(a, b, thin ? "skipping dead channels (thinned layers)"
                                         : "skipping dead channels (dense masked layers)",
                              threads);
        }
}

/* The max pool after a fused BN + ReLU runs inside the BN (ops.h, struct
 * sgi_bn_pool: the ReLU's output never stored, the pool's gradient turned back into
 * the ReLU's channel by channel): VGG-7 on 16x16 and 14x14 images (pools 14 -> 7 ->
 * 3 -> 1 leave a row and a column out), one and two threads, the threads sharing
 * the batch or each layer, trains to the bits of the pool run as its own node. */
static struct sg_model *pool_trained(int pool_fuse, int threads, int hw, int batch_par) {
    static uint8_t px[100 * 256], lab[100];
    for (int i = 0; i < 100 * hw * hw; i++) px[i] = (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
    for (int i = 0; i < 100; i++) lab[i] = (uint8_t)(i % 10);
    struct sg_dataset d = {.name = "synthetic", .n = 100, .c = 1, .h = hw, .w = hw, .classes = 10,
                           .mean = 120, .std = 70, .pixels = px, .labels = lab};
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("vgg7", 1, hw, hw, 10, 5, &m));
    struct sg_train_cfg tc = one_epoch(32, threads);
    sgi_bn_pool_fuse_enable(pool_fuse);
    sgi_batch_parallel_bn_enable(batch_par);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_bn_pool_fuse_enable(1);
    sgi_batch_parallel_bn_enable(1);
    return m;
}

SG_TEST(bn_pool_fused_equals_unfused_vgg7) {
    struct sg_model *m = NULL; /* the fusion does happen: VGG-7's three pools */
    CHECK_OK(sg_model_build("vgg7", 1, 16, 16, 10, 5, &m));
    struct sg_exec *e = NULL;
    CHECK_OK(sgi_exec_new_train(m, 4, &e));
    int fused = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) fused += e->pfuse && e->pfuse[i] > 0;
    CHECK_MSG(fused == 3, "%d pools fused", fused);
    sg_exec_free(e), sg_model_free(m);
    for (int hw = 14; hw <= 16; hw += 2)
        for (int threads = 1; threads <= 2; threads++)
            for (int bp = 0; bp <= (threads > 1); bp++) {
                struct sg_model *a = pool_trained(1, threads, hw, bp);
                struct sg_model *b = pool_trained(0, threads, hw, bp);
                CHECK_MSG(memcmp(a->arena, b->arena, a->arena_len * sizeof(float)) == 0,
                          "%dx%d, %d threads%s: the pool fused into BN + ReLU differs", hw, hw,
                          threads, bp ? " (batch shared)" : "");
                sg_model_free(a), sg_model_free(b);
            }
}

/* Filter-pruned fc layers (the fc layers pruned at the convolutions' granularity:
 * whole outputs of fc1 gone; fc2's are the classes, never pruned) run on their kept
 * rows (graph.c, fc_rows): one epoch of LeNet-5 with that on and off, one and two
 * threads, gives the same bits (fc1's 50 inputs at 16x16: the own kernels on AVX2 too). */
static struct sg_model *lenet_fc_rows_trained(int rows_on, int threads) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 2246822519u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("lenet5", 1, 16, 16, 10, 9, &m));
    filter_pruned(m, 0, SG_FC_SAME);
    int dead_rows = 0; /* fc1's outputs with no kept weight */
    for (int32_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, "fc1")) {
            const struct sg_param *wp = &m->params[m->nodes[i].param[0]];
            const size_t in = wp->count / (size_t)m->nodes[i].k;
            for (int k = 0; k < m->nodes[i].k; k++) {
                size_t t = 0;
                while (t < in && !m->mask[wp->offset + (size_t)k * in + t]) t++;
                dead_rows += t == in;
            }
        }
    CHECK_MSG(dead_rows >= 300, "fc1: %d outputs pruned", dead_rows);
    struct sg_train_cfg tc = one_epoch(32, threads);
    sgi_fc_rows_enable(rows_on);
    sgi_exec_poison(1);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_exec_poison(0);
    sgi_fc_rows_enable(1);
    return m;
}

SG_TEST(fc_kept_rows_train_exactly) {
    for (int threads = 1; threads <= 2; threads++) {
        struct sg_model *a = lenet_fc_rows_trained(1, threads), *b = lenet_fc_rows_trained(0, threads);
        check_same_pruned(a, b, "fc1 on its kept rows", threads);
    }
}

/* LeNet-5's conv1 and pool1 in one pass (exec.c's cpool, conv.c's sgi_conv_pool_*):
 * one epoch with the fusion on and off gives the same bits, dense, with conv2
 * filter-pruned (conv1 untouched: fused) and with conv2 channel-pruned (conv1 loses the
 * filters conv2 stopped reading, dead: fused with those filters skipped, against the
 * thinned layer and the pool); one thread, two sharing the batch (batch 32), and two
 * sharing each layer (batch 3: the bias gradient summed after the weight gradient). */
static struct sg_model *lenet_conv_pool_trained(int on, int threads, int batch, int gran) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 2246822519u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("lenet5", 1, 16, 16, 10, 9, &m));
    if (gran >= 0) {
        struct sg_prune_cfg pc;
        sg_prune_cfg_default(&pc);
        pc.spec.gran = (enum sg_granularity)gran;
        struct sg_prune_result pr;
        CHECK_OK(sg_prune_model(m, &pc, 0.3, &pr));
    }
    struct sg_train_cfg tc = one_epoch(batch, threads);
    if (batch < 8) tc.lr = 0.002f; /* steps on 3 images at 0.02 diverge, fused or not */
    sgi_conv_pool_fuse_enable(on);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_conv_pool_fuse_enable(1);
    return m;
}

SG_TEST(conv_pool_fused_equals_unfused_lenet5) {
    struct sg_model *m = NULL; /* the fusion does happen: conv1 and pool1 */
    CHECK_OK(sg_model_build("lenet5", 1, 16, 16, 10, 9, &m));
    struct sg_exec *e = NULL;
    CHECK_OK(sgi_exec_new_train(m, 4, &e));
    int fused = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) fused += e->cpool && e->cpool[i] > 0;
    CHECK_MSG(fused == SGI_KV, "%d convolutions fused with their pool", fused);
    sg_exec_free(e), sg_model_free(m);
    const int grans[] = {-1, SG_GRAN_FILTER, SG_GRAN_CHANNEL};
    const int runs[][2] = {{1, 32}, {2, 32}, {2, 3}}; /* threads, batch */
    for (int gi = 0; gi < 3; gi++)
        for (int r = 0; r < 3; r++) {
            struct sg_model *a = lenet_conv_pool_trained(1, runs[r][0], runs[r][1], grans[gi]);
            struct sg_model *b = lenet_conv_pool_trained(0, runs[r][0], runs[r][1], grans[gi]);
            char what[96];
            snprintf(what, sizeof what, "fusing conv1 and pool1 (granularity %d, batch %d)",
                     grans[gi], runs[r][1]);
            check_same_pruned(a, b, what, runs[r][0]);
        }
}

/* Fine-masked fc layers on their kept weights (fc_sparse.c): one epoch of LeNet-5 with
 * its fc layers fine-pruned to 0.1 (conv2 filter-pruned, so fc1 also reads dead
 * features: the live lists) trains to the same bits with the sparse products on and
 * off, on one thread and on two sharing the batch (each a one-thread executor). */
static struct sg_model *lenet_fc_sparse_trained(int on, int threads) {
    static uint8_t px[100 * 256], lab[100];
    struct sg_dataset d = synthetic(px, lab, 3266489917u);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("lenet5", 1, 16, 16, 10, 9, &m));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    struct sg_prune_result pr;
    CHECK_OK(sg_prune_model(m, &pc, 0.1, &pr));
    struct sg_train_cfg tc = one_epoch(32, threads);
    sgi_fc_sparse_enable(on);
    sgi_exec_poison(1);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sgi_exec_poison(0);
    sgi_fc_sparse_enable(1);
    return m;
}

SG_TEST(fc_sparse_trains_exactly) {
    for (int threads = 1; threads <= 2; threads++) {
        struct sg_model *a = lenet_fc_sparse_trained(1, threads), *b = lenet_fc_sparse_trained(0, threads);
        check_same_pruned(a, b, "fc layers on their kept weights", threads);
    }
}
