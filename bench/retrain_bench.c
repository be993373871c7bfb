/* One epoch of masked retraining per granularity and density against a dense
 * epoch, the same run, rounds interleaved. The model is built (weights from the
 * seed) and pruned by L1 as `sparsegrain prune` does by default (first conv and
 * fc layers: see prune.h); the retraining then runs sg_train under the masks,
 * with the fast paths on (thinned and kernel-sparse layers, dead channels skipped
 * by BN, ReLU and pools) and off (dense masked kernels). A freshly built model's
 * biases and BN shifts are 0, so a pruned filter's channel is dead here, as it is
 * in a pretrained model once pruning masks those parameters. Timing does not
 * depend on which weights survive, only on how many and in what shape.
 * Usage: retrain_bench MODEL DATA IMAGES THREADS ROUNDS [GRAN@DENSITY...] (none: the dense epoch alone)
 * Prints CSV: gran,density,path,seconds_min,seconds_max (dense rows: gran dense).
 * BENCH_CPU=1 times process CPU time instead of wall time: with one thread on a
 * machine shared with other work, that leaves out the waits for a core.
 * BENCH_BN_PARALLEL=0: BN models share each layer between the threads (see main).
 * SG_FREE_KEPT=1: kernel-masked layers skip their kept-pair products (wrong models):
 * the epoch with those products at no cost, the bound of any product kernel.
 * BENCH_STEADY=1: sg_train runs two epochs and the second is timed (from the end of
 * the first, through on_epoch), leaving out sg_train's setup and first step (about
 * 30 ms on the 2-core AMD EPYC VM, mostly first-touch page faults at some 10 us
 * each): 6% of a two-thread dense LeNet-5 epoch of 6,400 images, 12% of one of 3,200,
 * under 1% of a full 60,000-image one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/ops.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

static double clock_s(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("BENCH_CPU") && atoi(getenv("BENCH_CPU"));
    if (!cpu) return sg_now();
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct mark {
    double t;
};

/* the end of the first epoch */
static enum sg_status on_epoch(void *ctx, struct sg_model *m, const struct sg_train_state *st) {
    (void)m;
    if (st->epochs_done == 1) ((struct mark *)ctx)->t = clock_s();
    return SG_OK;
}

static double epoch(const char *arch, const struct sg_dataset *d, int images, const char *gran,
                    double density, int thin) {
    struct sg_model *m = NULL;
    if (sg_model_build(arch, d->c, d->h, d->w, 10, 1, &m) != SG_OK) return -1;
    if (gran) {
        struct sg_prune_cfg pc;
        sg_prune_cfg_default(&pc);
        struct sg_prune_result pr;
        if (sg_prune_spec_parse(gran, &pc.spec) != SG_OK ||
            sg_prune_model(m, &pc, density, &pr) != SG_OK) {
            sg_model_free(m);
            return -1;
        }
    }
    struct sg_train_cfg tc;
    sg_train_cfg_default(&tc);
    tc.epochs = 1;
    tc.batch = 64;
    tc.lr = 0.01f;
    tc.schedule = SG_LR_CONSTANT;
    tc.max_images = images;
    const int steady = getenv("BENCH_STEADY") && atoi(getenv("BENCH_STEADY"));
    struct mark mk = {0};
    if (steady) tc.epochs = 2, tc.on_epoch = on_epoch, tc.on_epoch_ctx = &mk;
    sgi_conv_thin_enable(thin); /* thinned and kernel-sparse layers */
    sgi_dead_channels_enable(thin);
    const double t0 = clock_s();
    enum sg_status s = sg_train(m, d, &tc, NULL);
    const double t = clock_s() - (steady ? mk.t : t0);
    sgi_conv_thin_enable(1);
    sgi_dead_channels_enable(1);
    sg_model_free(m);
    return s == SG_OK ? t : -1;
}

int main(int argc, char **argv) {
    if (argc < 6) { /* no GRAN@DENSITY: the dense epoch alone */
        fprintf(stderr, "usage: retrain_bench MODEL DATA IMAGES THREADS ROUNDS [GRAN@DENSITY...]\n");
        return 2;
    }
    const int images = atoi(argv[3]), rounds = atoi(argv[5]);
    sg_set_threads(atoi(argv[4]));
    /* BENCH_BN_PARALLEL=0: models with BN share every layer between the threads
     * (the code before BN's statistics were shared between the threads' shards) */
    if (getenv("BENCH_BN_PARALLEL")) sgi_batch_parallel_bn_enable(atoi(getenv("BENCH_BN_PARALLEL")));
    if (getenv("SG_FREE_KEPT") && atoi(getenv("SG_FREE_KEPT"))) {
        sgi_wino_train_free_kept(1); /* a timing bound: the models it trains are wrong */
        fprintf(stderr, "SG_FREE_KEPT: kept-pair products skipped (wrong models; a timing bound)\n");
    }
    struct sg_dataset *d = NULL;
    if (sg_dataset_load(argv[2], NULL, 1, &d) != SG_OK) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    const int ncfg = argc - 6;
    /* per config: thin and dense masked; plus the dense epoch */
    double (*best)[2] = calloc((size_t)ncfg + 1, sizeof *best), (*worst)[2] = calloc((size_t)ncfg + 1, sizeof *worst);
    for (int i = 0; i <= ncfg; i++) best[i][0] = best[i][1] = 1e30;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i <= ncfg; i++)
            for (int path = 0; path < (i < ncfg ? 2 : 1); path++) {
                double t;
                if (i == ncfg) {
                    t = epoch(argv[1], d, images, NULL, 1, 1);
                } else {
                    char spec[64];
                    snprintf(spec, sizeof spec, "%s", argv[6 + i]);
                    char *colon = strrchr(spec, '@');
                    if (!colon) {
                        fprintf(stderr, "config '%s': GRAN@DENSITY\n", spec);
                        return 2;
                    }
                    *colon = 0;
                    t = epoch(argv[1], d, images, spec, atof(colon + 1), path == 0);
                }
                if (t < 0) {
                    fprintf(stderr, "%s\n", sg_last_error());
                    return 1;
                }
                if (t < best[i][path]) best[i][path] = t;
                if (t > worst[i][path]) worst[i][path] = t;
            }
    printf("gran,density,path,seconds_min,seconds_max\n");
    for (int i = 0; i < ncfg; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s", argv[6 + i]);
        char *colon = strrchr(spec, '@');
        *colon = 0;
        printf("%s,%s,fast,%.3f,%.3f\n", spec, colon + 1, best[i][0], worst[i][0]);
        printf("%s,%s,dense-masked,%.3f,%.3f\n", spec, colon + 1, best[i][1], worst[i][1]);
    }
    printf("dense,1,dense,%.3f,%.3f\n", best[ncfg][0], worst[ncfg][0]);
    sg_dataset_free(d);
    free(best), free(worst);
    return 0;
}
