/* A convolution's passes against its filter count: what a filter mask can save on
 * an im2col layer. The forward and backward (weight and input gradient) of one
 * layer at K = 5, 15, 30 and the full count, best of REPS; the time
 * that does not fall with K (im2col, col2im and the columns' traffic) is what a
 * thinned layer keeps. Default: LeNet-5's conv2 (20 -> 50, 5x5 valid, 12x12) at
 * batch 64. THREADS=n in the environment: n threads (default 1).
 * Usage: conv_k_sweep [C H W K R BATCH [REPS]]; built as bench/train_profile.c:
 *   make build/libsparsegrain.a && cc -O2 -march=native -fopenmp -Iinclude -Isrc \
 *     bench/conv_k_sweep.c build/libsparsegrain.a -lprotobuf-c -lcjson -lz -lpng -lm -ldl \
 *     -o build/conv_k_sweep */
#include <stdio.h>
#include <stdlib.h>

#include "core/sgi.h"
#include "nn/ops.h"
#include "sparsegrain/nn.h"

int main(int argc, char **argv) {
    const int C = argc > 6 ? atoi(argv[1]) : 20, H = argc > 6 ? atoi(argv[2]) : 12,
              W = argc > 6 ? atoi(argv[3]) : 12, K = argc > 6 ? atoi(argv[4]) : 50,
              R = argc > 6 ? atoi(argv[5]) : 5, N = argc > 6 ? atoi(argv[6]) : 64,
              reps = argc > 7 ? atoi(argv[7]) : 30;
    if (C < 1 || H < R || W < R || K < 1 || R < 1 || N < 1 || reps < 1) {
        fprintf(stderr, "usage: conv_k_sweep [C H W K R BATCH [REPS]]\n");
        return 2;
    }
    const int nt = getenv("THREADS") ? atoi(getenv("THREADS")) : 1;
    if (nt < 1) {
        fprintf(stderr, "conv_k_sweep: THREADS must be 1 or more\n");
        return 2;
    }
    sg_set_threads(nt);
    const int ks[4] = {K < 5 ? K : 5, K < 15 ? K : 15, K < 30 ? K : 30, K};
    printf("conv %d -> K, %dx%d kernels, %dx%d input, batch %d, %d thread(s), ms (best of %d)\n", C,
           R, R, H, W, N, nt, reps);
    printf("%5s %8s %8s\n", "K", "forward", "backward");
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    for (int ki = 0; ki < 4; ki++) {
        const int k = ks[ki];
        struct sg_conv_geom g = {N, C, H, W, k, R, R, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
        if (sg_conv_geom_finish(&g) != SG_OK) return 1;
        const size_t xs = (size_t)N * C * H * W, ys = (size_t)N * k * g.p * g.q,
                     wsz = (size_t)k * C * R * R;
        float *x = sgi_alloc(xs, 4), *dx = sgi_alloc(xs, 4), *y = sgi_alloc(ys, 4),
              *dy = sgi_alloc(ys, 4), *w = sgi_alloc(wsz, 4), *dw = sgi_alloc(wsz, 4),
              *ws = sgi_alloc(sgi_conv_workspace(&g, nt) + 16, 4);
        if (!x || !dx || !y || !dy || !w || !dw || !ws) return 1;
        for (size_t i = 0; i < xs; i++) x[i] = (float)sg_rng_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < wsz; i++) w[i] = (float)sg_rng_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < ys; i++) dy[i] = (float)sg_rng_uniform(&rng) - 0.5f;
        double bf = 1e30, bb = 1e30;
        for (int r = 0; r < reps; r++) {
            const double t0 = sg_now();
            sgi_conv_forward(&g, x, w, NULL, y, ws, nt);
            const double t1 = sg_now();
            sgi_conv_backward(&g, x, w, dy, dx, dw, NULL, ws, nt);
            const double t2 = sg_now();
            if (t1 - t0 < bf) bf = t1 - t0;
            if (t2 - t1 < bb) bb = t2 - t1;
        }
        printf("%5d %8.3f %8.3f\n", k, bf * 1e3, bb * 1e3);
        free(x), free(dx), free(y), free(dy), free(w), free(dw), free(ws);
    }
    return 0;
}
