/* Batch-level parallelism in training (src/nn/train.c): a model without
 * active dropout runs each thread's share of the batch through its own
 * one-thread executor and adds the gradients by share; BN's batch statistics are
 * then summed over the threads' shards (sgi_bn_forward_sync/sgi_bn_backward_sync). A few SGD steps of
 * LeNet-5 on two and three threads (odd batches, then a short last batch of 3)
 * equal one thread's within float tolerance (two steps: after more, a max-pool
 * tie may go the other way under the other summation order, as noted in
 * tests/test_conv_thin.c); the same thread count gives bit-identical
 * models; masks hold (pruned weights stay exactly 0). */
#include "harness.h"
#include "nn/ops.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

/* n synthetic 28x28 images in px[n * 784] (pixels from the multiplier mul), label
 * (i * lstep) % 10 in lab[n] */
static struct sg_dataset synthetic28(uint8_t *px, uint8_t *lab, int n, uint32_t mul, int lstep) {
    for (int i = 0; i < n * 784; i++) px[i] = (uint8_t)((i * mul) >> 24);
    for (int i = 0; i < n; i++) lab[i] = (uint8_t)((i * lstep) % 10);
    struct sg_dataset d = {.name = "synthetic", .n = n, .c = 1, .h = 28, .w = 28, .classes = 10,
                           .mean = 120, .std = 70};
    d.pixels = px;
    d.labels = lab;
    return d;
}

static struct sg_model *trained_as(const char *arch, int threads, int batch, int last, int prune) {
    enum { MAXN = 64 };
    const int N = batch + last; /* two steps, the second of `last` images */
    static uint8_t px[MAXN * 784], lab[MAXN];
    struct sg_dataset d = synthetic28(px, lab, N, 2654435761u, 1);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build(arch, 1, 28, 28, 10, 3, &m));
    if (prune) {
        struct sg_prune_cfg pc;
        sg_prune_cfg_default(&pc);
        struct sg_prune_result r;
        CHECK_OK(sg_prune_model(m, &pc, 0.4, &r));
    }
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = batch;
    tc.lr = 0.02f;
    tc.schedule = SG_LR_CONSTANT;
    sg_set_threads(threads);
    CHECK_OK(sg_train(m, &d, &tc, NULL));
    sg_set_threads(1);
    return m;
}

static struct sg_model *trained(int threads, int batch, int prune) {
    return trained_as("lenet5", threads, batch, 3, prune);
}

SG_TEST(batch_parallel_equals_one_thread) {
    const int batches[] = {25, 37};
    for (int bi = 0; bi < 2; bi++)
        for (int threads = 2; threads <= 3; threads++) {
            const int prune = bi == 1;
            struct sg_model *a = trained(1, batches[bi], prune);
            struct sg_model *b = trained(threads, batches[bi], prune);
            struct sg_model *c = trained(threads, batches[bi], prune);
            for (int32_t p = 0; p < a->n_params; p++) {
                const struct sg_param *pp = &a->params[p];
                const double err =
                    sgt_max_rel_err(a->arena + pp->offset, b->arena + pp->offset, pp->count);
                CHECK_MSG(err < 1e-4, "batch %d, %d threads: %s differs by %g", batches[bi],
                          threads, pp->name, err);
            }
            CHECK(memcmp(b->arena, c->arena, b->arena_len * sizeof(float)) == 0);
            for (size_t i = 0; i < b->arena_len; i++)
                if (!b->mask[i]) CHECK(b->arena[i] == 0.0f);
            sg_model_free(a), sg_model_free(b), sg_model_free(c);
        }
}

/* With BN (ResNet-8: BN + ReLU fused, residual adds, stride-2 and 1x1 layers; VGG-7:
 * max pools after fused BN + ReLU) the batch statistics are summed over the team.
 * One step of 19 images on two and three threads (shards of 6-10; pruned, so dead
 * channels are skipped, and not) equals one thread's within float tolerance,
 * running statistics included; BN shifts within 5e-2 of their largest entry only:
 * their gradient is a sum over the batch that cancels to a few digits, and one
 * thread on the same 19 images in another order differs from itself by up to
 * 7e-3 there (with the Winograd products' own AVX-512 kernel, whose sums round
 * differently from OpenBLAS's, ResNet-8 on three pruned shards measured 3.4e-2 on
 * one shift while every weight stayed within 1e-4). Two steps, the second of 2 images (shards of one image on two
 * threads; on three, one executor shared by the threads): the whole model within
 * 1e-2 of its largest entry only, because on so small a batch an activation at a
 * ReLU's kink (a residual sum that cancels to 1e-7) falls on either side under
 * another summation order, and the gradients behind it move (ResNet-8 with 3
 * single-image shards: one such entry, 3% of a weight gradient, everything else
 * within 1e-5). The same thread count gives bit-identical models; masks hold. */
SG_TEST(batch_parallel_bn_equals_one_thread) {
    const char *archs[] = {"resnet8", "vgg7"};
    for (int ai = 0; ai < 2; ai++)
        for (int threads = 2; threads <= 3; threads++)
            for (int last = 0; last <= 2; last += 2) {
                const int prune = threads == 3;
                struct sg_model *a = trained_as(archs[ai], 1, 19, last, prune);
                struct sg_model *b = trained_as(archs[ai], threads, 19, last, prune);
                struct sg_model *c = trained_as(archs[ai], threads, 19, last, prune);
                if (last == 0) {
                    for (int32_t p = 0; p < a->n_params; p++) {
                        const struct sg_param *pp = &a->params[p];
                        const double err = sgt_max_rel_err(a->arena + pp->offset,
                                                           b->arena + pp->offset, pp->count);
                        const int shift = pp->kind == SG_PARAM_BN_BETA;
                        CHECK_MSG(err < (shift ? 5e-2 : 1e-4), "%s, %d threads: %s differs by %g",
                                  archs[ai], threads, pp->name, err);
                    }
                } else {
                    const double err = sgt_max_rel_err(a->arena, b->arena, a->arena_len);
                    CHECK_MSG(err < 1e-2, "%s, %d threads, two steps: differs by %g", archs[ai],
                              threads, err);
                }
                CHECK(memcmp(b->arena, c->arena, b->arena_len * sizeof(float)) == 0);
                for (size_t i = 0; i < b->arena_len; i++)
                    if (!b->mask[i]) CHECK(b->arena[i] == 0.0f);
                sg_model_free(a), sg_model_free(b), sg_model_free(c);
            }
}

/* The SGD update skips blocks of 16 masked entries (train.c; AVX-512 builds, one vector
 * a block; other builds run the plain loop either way): the same weights, bit for bit, as
 * the plain loop over every entry, for a filter-pruned LeNet-5 (most of conv2 and fc1
 * masked in whole blocks) on one and two threads, three steps; also when the state's
 * velocity is not 0 where pruning then masks (a dense step first, pruning, then the same
 * state on): the skipped entries keep their old velocity, which no weight ever reads.
 * The velocity of every kept entry equal too. */
static void skip_trained(int skip, int threads, struct sg_model **out, struct sg_train_state **sto) {
    enum { N = 48 };
    static uint8_t px[N * 784], lab[N];
    struct sg_dataset d = synthetic28(px, lab, N, 2246822519u, 3);
    struct sg_model *m = NULL;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, 7, &m));
    struct sg_train_state *st = NULL;
    CHECK_OK(sg_train_state_new(m, &st));
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = 16;
    tc.lr = 0.02f;
    tc.schedule = SG_LR_CONSTANT;
    sg_set_threads(threads);
    sgi_sgd_skip_enable(skip);
    tc.max_images = 16; /* one dense step: velocity everywhere */
    CHECK_OK(sg_train(m, &d, &tc, st));
    struct sg_prune_cfg pc;
    sg_prune_cfg_default(&pc);
    pc.spec.gran = SG_GRAN_FILTER;
    struct sg_prune_result r;
    CHECK_OK(sg_prune_model(m, &pc, 0.3, &r));
    tc.max_images = 0;
    tc.epochs = 2; /* the state has done one: three steps of 16 */
    CHECK_OK(sg_train(m, &d, &tc, st));
    sgi_sgd_skip_enable(1);
    sg_set_threads(1);
    *out = m;
    *sto = st;
}

SG_TEST(sgd_skipping_masked_blocks_keeps_the_bits) {
    for (int threads = 1; threads <= 2; threads++) {
        struct sg_model *a, *b;
        struct sg_train_state *sa, *sb;
        skip_trained(1, threads, &a, &sa);
        skip_trained(0, threads, &b, &sb);
        size_t blocks = 0, stale = 0;
        for (int32_t p = 0; p < a->n_params; p++) {
            const struct sg_param *pp = &a->params[p];
            for (size_t i = 0; i + 16 <= pp->count; i += 16) {
                size_t kept = 0;
                for (int j = 0; j < 16; j++) kept += a->mask[pp->offset + i + j];
                blocks += !kept;
            }
        }
        CHECK_MSG(blocks > 10000, "%zu whole masked blocks", blocks);
        CHECK(memcmp(a->mask, b->mask, a->arena_len) == 0);
        CHECK_MSG(memcmp(a->arena, b->arena, a->arena_len * sizeof(float)) == 0,
                  "%d threads: skipping masked blocks changed the weights", threads);
        for (size_t i = 0; i < a->arena_len; i++) {
            if (a->mask[i]) {
                CHECK(memcmp(&sa->velocity[i], &sb->velocity[i], 4) == 0);
            } else {
                stale += sa->velocity[i] != 0.0f;
                CHECK(a->arena[i] == 0.0f);
            }
        }
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
        /* the dense first step left velocity where pruning masked, and the blocks kept it */
        CHECK_MSG(stale > 1000, "%zu masked entries with an old velocity", stale);
#else
        /* no blocks (train.c's SGD_BLOCKS): both ran the plain loop, which writes +-0 */
        CHECK_MSG(stale == 0, "%zu masked entries with a velocity", stale);
#endif
        sg_train_state_free(sa), sg_train_state_free(sb);
        sg_model_free(a), sg_model_free(b);
    }
}

/* sg_evaluate: each thread takes chunks of the data set with its own executor. Top-1,
 * top-5 and the loss are the same on one, two and three threads, bit for bit (a chunk
 * is computed alike whichever thread takes it). Against the whole set in one forward
 * of one executor, for chunks of 1, 7, the default and the whole set: top-1 and top-5
 * within one image and the loss within 1e-6. With the library's own AVX-512 products
 * every logit is one chain whatever the chunk and they agree exactly; products through
 * OpenBLAS (builds without AVX-512) may round a logit differently by chunk size (the
 * sanitizer build: LeNet-5's loss 2e-8 apart at chunks of 1). */
SG_TEST(evaluate_same_for_any_threads_and_chunk) {
    enum { N = 75 };
    static uint8_t px[N * 784], lab[N];
    struct sg_dataset d = synthetic28(px, lab, N, 2654435761u, 7);
    const char *archs[] = {"lenet5", "vgg7", "resnet8"};
    for (int ai = 0; ai < 3; ai++) {
        struct sg_model *m = NULL;
        CHECK_OK(sg_model_build(archs[ai], 1, 28, 28, 10, 5, &m));
        /* reference: one executor, one forward of the whole set */
        sg_set_threads(1);
        struct sg_exec *e = NULL;
        CHECK_OK(sg_exec_new(m, N, 0, &e));
        static float x[N * 784];
        static uint32_t idx[N];
        uint8_t y[N];
        for (int i = 0; i < N; i++) idx[i] = (uint32_t)i;
        sg_dataset_batch(&d, &m->preproc, idx, N, SG_AUG_NONE, NULL, x, y);
        CHECK_OK(sg_forward(m, e, x, N, 0, NULL));
        int t1, t5;
        const double ref_loss = sg_exec_loss(e, y, &t1, &t5);
        sg_exec_free(e);
        const int chunks[] = {1, 7, 0, 500};
        for (int ci = 0; ci < 4; ci++) {
            struct sg_eval_result r1 = {0};
            for (int threads = 1; threads <= 3; threads++) {
                struct sg_eval_result r;
                sg_set_threads(threads);
                CHECK_OK(sg_evaluate(m, &d, chunks[ci], &r));
                CHECK(r.n == N);
                CHECK_MSG(fabs(r.top1 * N - t1) <= 1.001 && fabs(r.top5 * N - t5) <= 1.001,
                          "%s, chunk %d, %d threads: top-1 %g top-5 %g, one forward %g %g",
                          archs[ai], chunks[ci], threads, r.top1, r.top5, (double)t1 / N,
                          (double)t5 / N);
                CHECK_MSG(fabs(r.loss - ref_loss) <= 1e-6 * fabs(ref_loss),
                          "%s, chunk %d: loss %.17g, one forward %.17g", archs[ai], chunks[ci],
                          r.loss, ref_loss);
                if (threads == 1) r1 = r;
                else
                    CHECK_MSG(r.loss == r1.loss && r.top1 == r1.top1 && r.top5 == r1.top5,
                              "%s, chunk %d, %d threads: loss %.17g top-1 %g, one thread %.17g %g",
                              archs[ai], chunks[ci], threads, r.loss, r.top1, r1.loss, r1.top1);
            }
        }
        sg_set_threads(1);
        sg_model_free(m);
    }
}
