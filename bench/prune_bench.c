/* Pruning speed on VGG-16's weight tensors (138M weights, random normal): every
 * granularity at density 0.3, one layer after another as sg_prune_model does,
 * against a memcpy of the same bytes (one thread, the reference of the x memcpy
 * column), and against a memcpy split over the same threads as the pruning, so
 * the comparison is also shown like for like. Every buffer is warm (touched
 * before timing) for both. Prints one CSV line per granularity:
 *   granularity,seconds,memcpy_seconds,ratio,ratio_to_threaded_memcpy
 * Usage: prune_bench THREADS REPS [GRANULARITY] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/sgi.h"
#include "sparsegrain/prune.h"

static const int64_t VGG16[][4] = {
    {64, 3, 3, 3},     {64, 64, 3, 3},    {128, 64, 3, 3},   {128, 128, 3, 3}, {256, 128, 3, 3},
    {256, 256, 3, 3},  {256, 256, 3, 3},  {512, 256, 3, 3},  {512, 512, 3, 3}, {512, 512, 3, 3},
    {512, 512, 3, 3},  {512, 512, 3, 3},  {512, 512, 3, 3},  {4096, 25088, 1, 1},
    {4096, 4096, 1, 1}, {1000, 4096, 1, 1}};
#define NL (int)(sizeof VGG16 / sizeof VGG16[0])

/* dst <- src split over the threads, one contiguous piece each */
static void copy_threaded(void *dst, const void *src, size_t bytes, int threads) {
#pragma omp parallel num_threads(threads)
    {
        int id = 0, nt = 1;
#ifdef _OPENMP
        id = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        const size_t lo = bytes * (size_t)id / (size_t)nt;
        const size_t hi = bytes * (size_t)(id + 1) / (size_t)nt;
        memcpy((char *)dst + lo, (const char *)src + lo, hi - lo);
    }
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    sg_set_threads(threads);
    const int reps = argc > 2 ? atoi(argv[2]) : 3;
    size_t total = 0, off[NL + 1];
    for (int l = 0; l < NL; l++) {
        off[l] = total;
        total += (size_t)(VGG16[l][0] * VGG16[l][1] * VGG16[l][2] * VGG16[l][3]);
    }
    off[NL] = total;
    float *w0 = sgi_alloc(total, 4), *w = sgi_alloc(total, 4);
    uint8_t *mask = sgi_alloc(total, 1);
    if (!w0 || !w || !mask) return 1;
    sg_rng r;
    sg_rng_seed(&r, 1);
    for (size_t i = 0; i < total; i++) w0[i] = sg_rng_normal(&r);
    memcpy(w, w0, total * 4); /* touch every page before timing */
    memset(mask, 1, total);
    double best_copy = 1e9;
    for (int k = 0; k < reps; k++) {
        double t0 = sg_now();
        memcpy(w, w0, total * 4);
        double t = sg_now() - t0;
        if (t < best_copy) best_copy = t;
    }
    double best_tcopy = 1e9;
    for (int k = 0; k < reps; k++) {
        double t0 = sg_now();
        copy_threaded(w, w0, total * 4, threads);
        double t = sg_now() - t0;
        if (t < best_tcopy) best_tcopy = t;
    }
    fprintf(stderr,
            "%zu weights (%.0f MB), memcpy %.3f s (%.1f GB/s); on %d threads %.3f s (%.1f GB/s)\n",
            total, total * 4 / 1e6, best_copy, total * 8 / best_copy / 1e9, threads, best_tcopy,
            total * 8 / best_tcopy / 1e9);
    const char *grans[] = {"fine", "vector", "kernel", "filter", "channel", "nm:2:4"};
    printf("granularity,seconds,memcpy_seconds,ratio,ratio_to_threaded_memcpy\n");
    for (size_t g = 0; g < sizeof grans / sizeof grans[0]; g++) {
        if (argc > 3 && strcmp(argv[3], grans[g]) != 0) continue;
        struct sg_prune_spec spec;
        sg_prune_spec_default(&spec);
        sg_prune_spec_parse(grans[g], &spec);
        double best = 1e9;
        for (int k = 0; k < reps; k++) {
            memcpy(w, w0, total * 4);
            memset(mask, 1, total);
            double t0 = sg_now();
            for (int l = 0; l < NL; l++) {
                struct sg_wview v = {"layer", VGG16[l][0], VGG16[l][1], VGG16[l][2], VGG16[l][3],
                                     w + off[l], mask + off[l], VGG16[l][2] == 1};
                if (sg_prune_layer_density(&spec, &v, 0.3) != SG_OK) {
                    fprintf(stderr, "%s\n", sg_last_error());
                    return 1;
                }
            }
            double t = sg_now() - t0;
            if (t < best) best = t;
        }
        printf("%s,%.4f,%.4f,%.2f,%.2f\n", grans[g], best, best_copy, best / best_copy,
               best / best_tcopy);
    }
    free(w0), free(w), free(mask);
    return 0;
}
