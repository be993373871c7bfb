/* Kernel-masked training passes (src/nn/conv_kernel.c) against the dense ones
 * on VGG-7's 3x3 layers at batch 64 (Winograd) and two layers that run through
 * im2col (LeNet-5's 5x5 layer, a 3x3 stride-2 layer): one thread, CPU time, fastest
 * of R rounds with the two alternating, at several shares of kept kernels
 * (random kernel masks). Prints forward and backward (both gradients) ms; where the
 * image-lane path runs the layer (src/nn/conv_lanes.c), also the im2col kept path's.
 * Usage: kernel_mask_bench [ROUNDS [SHARE...]]  (default 5; 0.2 0.3 0.45 0.6)
 * Built by: cc -O2 -fopenmp -Iinclude -Isrc bench/kernel_mask_bench.c
 *   build/libsparsegrain.a -lprotobuf-c -lcjson -lz -lpng -lm -ldl */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/sgi.h"
#include "nn/ops.h"
#include "sparsegrain/nn.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 5;
    double shares[16] = {0.2, 0.3, 0.45, 0.6};
    int ns = 4;
    if (argc > 2) {
        ns = 0;
        for (int a = 2; a < argc && ns < 16; a++) shares[ns++] = atof(argv[a]);
    }
    sg_set_threads(1);
    sgi_conv_kernel_shares(1.0, 1.0); /* the kernel path at every share */
    /* batch, in, out, input side, kernel side, stride, pad: VGG-7's four Winograd
     * layers; LeNet-5's 5x5 layer at the one-thread shard of a batch of 64 and a
     * 3x3 stride-2 layer (ResNet-8's shape), which run through im2col; three stride-1
     * 5x5 and 7x7 layers of other sizes (SG_LAYERS_FROM=4: from LeNet-5's layer on) */
    const int L[9][7] = {{64, 32, 32, 28, 3, 1, 1}, {64, 32, 64, 14, 3, 1, 1}, {64, 64, 64, 14, 3, 1, 1},
                         {64, 64, 128, 7, 3, 1, 1}, {32, 20, 50, 12, 5, 1, 0}, {32, 16, 32, 28, 3, 2, 1},
                         {32, 32, 64, 16, 5, 1, 2}, {32, 64, 64, 14, 5, 1, 2}, {32, 8, 32, 28, 7, 1, 3}};
    const int nl = getenv("SG_LAYERS_FROM") ? atoi(getenv("SG_LAYERS_FROM")) : 0;
    printf("layer                share  fwd_dense fwd_kernel  bwd_dense bwd_kernel (ms)\n");
    for (int l = nl; l < 9; l++) {
        const int pd = L[l][6];
        struct sg_conv_geom g = {L[l][0], L[l][1], L[l][3], L[l][3], L[l][2], L[l][4], L[l][4], L[l][5], L[l][5],
                                 pd, pd, pd, pd, 1, 1, 1, 0, 0};
        if (sg_conv_geom_finish(&g) != SG_OK) return 1;
        const int rs = g.r * g.s;
        const size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.k * g.p * g.q;
        const size_t nw = (size_t)g.k * g.c * rs;
        float *x = sgi_alloc(nx, 4), *w = sgi_alloc(nw, 4), *y = sgi_alloc(ny, 4), *dy = sgi_alloc(ny, 4);
        float *dx = sgi_alloc(nx, 4), *dw = sgi_alloc(nw, 4), *b = sgi_alloc((size_t)g.k, 4);
        float *db = sgi_alloc((size_t)g.k, 4), *ws = sgi_alloc(sgi_conv_workspace(&g, 1) + 16, 4);
        uint8_t *mask = malloc(nw);
        sg_rng r;
        sg_rng_seed(&r, 3);
        for (size_t i = 0; i < nx; i++) x[i] = sg_rng_uniform(&r) - 0.5f;
        for (size_t i = 0; i < ny; i++) dy[i] = sg_rng_uniform(&r) - 0.5f;
        for (int k = 0; k < g.k; k++) b[k] = 0;
        struct sgi_thin_buf tb = {0};
        for (int s = 0; s < ns; s++) {
            for (size_t kc = 0; kc < (size_t)g.k * g.c; kc++) {
                const uint8_t keep = sg_rng_uniform(&r) < shares[s];
                for (int j = 0; j < rs; j++) {
                    mask[kc * rs + j] = keep;
                    w[kc * rs + j] = keep ? sg_rng_uniform(&r) - 0.5f : 0.0f;
                }
            }
            double best[6] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9};
            const int lanes = sgi_conv_lanes_ok(&g);
            for (int rd = 0; rd < rounds; rd++) {
                double t0 = now();
                sgi_conv_forward(&g, x, w, b, y, ws, 1);
                double t1 = now();
                if (!sgi_conv_kernel_forward(&g, x, w, mask, b, y, ws, 1, &tb)) return 1;
                double t2 = now();
                sgi_conv_backward(&g, x, w, dy, dx, dw, db, ws, 1);
                double t3 = now();
                if (!sgi_conv_kernel_backward(&g, x, w, mask, dy, dx, 0, dw, db, ws, 1, &tb)) return 1;
                double t4 = now(), t5 = t4, t6 = t4;
                if (lanes) { /* the same passes on the im2col kept path */
                    sgi_conv_lanes_enable(0);
                    if (!sgi_conv_kernel_forward(&g, x, w, mask, b, y, ws, 1, &tb)) return 1;
                    t5 = now();
                    if (!sgi_conv_kernel_backward(&g, x, w, mask, dy, dx, 0, dw, db, ws, 1, &tb)) return 1;
                    t6 = now();
                    sgi_conv_lanes_enable(1);
                }
                const double d[6] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5};
                for (int i = 0; i < 6; i++)
                    if (d[i] < best[i]) best[i] = d[i];
            }
            printf("%3d->%-3d %dx%d/%d %2dx%-2d  %5.2f  %9.3f %10.3f  %9.3f %10.3f", g.c, g.k, g.r, g.s,
                   g.sh, g.p, g.q, shares[s], best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3);
            if (lanes) printf("   (im2col kept: %.3f / %.3f)", best[4] * 1e3, best[5] * 1e3);
            printf("\n");
        }
        sgi_thin_buf_free(&tb);
        free(x), free(w), free(y), free(dy), free(dx), free(dw), free(b), free(db), free(ws), free(mask);
    }
    return 0;
}
