/* Where a Winograd training layer's time goes: the transforms against the rest
 * (the per-point products, the weight transforms and, in the backward, the
 * transposes of V and the weight gradient's way back), for VGG-7's four 3x3 layers
 * on one thread at a thread's share of the batch.
 * Usage: wino_split [BATCH [REPS]]   (defaults 32 and 20); built as bench/train_profile.c:
 *   make build/libsparsegrain.a && cc -O2 -fopenmp -Iinclude -Isrc bench/wino_split.c \
 *     build/libsparsegrain.a -lprotobuf-c -lcjson -lz -lpng -lm -ldl -o build/wino_split
 * Each pass is timed whole (sgi_wino_train_forward / _backward) and each
 * transform alone over the same slices (the library's slice rule), best of REPS
 * sweeps, everything warm (repeated); "rest" = whole - transforms, with its rate
 * in GFLOP/s of the transformed-domain products (36 K C multiply-adds a tile).
 * DENSITY (third argument, default 1): below 1, the passes run kernel-masked
 * (sgi_wino_train_*_kept) with that share of the (filter, channel) pairs kept at
 * random; GF/s then counts the kept pairs' products only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sgi.h"
#include "nn/ops.h"
#include "nn/wino.h"
#include "sparsegrain/nn.h"

static float *rnd(size_t n, sg_rng *r) {
    float *a = sgi_alloc(n + 64, sizeof *a);
    if (!a) exit(1);
    for (size_t i = 0; i < n + 64; i++) a[i] = sg_rng_uniform(r) - 0.5f;
    return a;
}

static double best_of(int reps, double *acc) {
    double b = 1e30;
    for (int i = 0; i < reps; i++)
        if (acc[i] < b) b = acc[i];
    return b * 1e3;
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 20;
    const double dens = argc > 3 ? atof(argv[3]) : 1.0;
    if (n < 1 || reps < 1 || reps > 1000 || !(dens > 0 && dens <= 1)) {
        fprintf(stderr, "usage: wino_split [BATCH [REPS [DENSITY]]]\n");
        return 2;
    }
    sg_set_threads(1);
    const int layers[4][4] = {{32, 32, 28, 28}, {32, 64, 14, 14}, {64, 64, 14, 14}, {64, 128, 7, 7}};
    const char *names[4] = {"conv2", "conv3", "conv4", "conv5"};
    sg_rng r;
    sg_rng_seed(&r, 3);
    printf("VGG-7 Winograd layers, batch %d, one thread, kernel density %.2f, ms (best of %d)\n", n, dens,
           reps);
    printf("%-6s %4s | %7s %7s %7s %7s %6s | %7s %7s %7s %7s %7s %7s %6s\n", "layer", "tile", "fwd",
           "in(x)", "out(y)", "rest", "GF/s", "bwd", "grad", "in(x)", "in(dy)", "out(dx)", "rest",
           "GF/s");
    for (int li = 0; li < 4; li++) {
        struct sg_conv_geom g = {n, layers[li][0], layers[li][2], layers[li][3], layers[li][1], 3, 3, 1, 1,
                                 1, 1, 1, 1, 1, 1, 1, 0, 0};
        if (sg_conv_geom_finish(&g) != SG_OK || !sgi_wino_train_shape_ok(&g)) return 1;
        const struct sgi_wino_tf *tf = sgi_wino_train_tile_of(&g) == 4 ? &sgi_wino_f4 : &sgi_wino_f2;
        const int nb = sgi_wino_train_slice_images(&g, 1), ns = (n + nb - 1) / nb;
        const size_t T = (size_t)nb * sgi_wino_tiles(g.p, g.q, tf->m, tf->pad);
        const size_t pts = (size_t)tf->a * tf->a;
        const size_t cmax = g.c > g.k ? g.c : g.k;
        float *x = rnd((size_t)n * g.c * g.h * g.w, &r), *w = rnd((size_t)g.k * g.c * 9, &r);
        float *y = rnd((size_t)n * g.k * g.p * g.q, &r), *dy = rnd((size_t)n * g.k * g.p * g.q, &r);
        float *dx = rnd((size_t)n * g.c * g.h * g.w, &r), *dw = rnd((size_t)g.k * g.c * 9, &r);
        float *ws = rnd(sgi_wino_train_workspace(&g, 1), &r);
        float *v = rnd(pts * sgi_wino_pstride(cmax, T), &r);
        /* the kept kernels at random, their weights 0 elsewhere; the lists as training
         * makes them (sgi_conv_kernel_lists) */
        uint8_t *mask = calloc((size_t)g.k * g.c * 9, 1);
        for (size_t i = 0; i < (size_t)g.k * g.c; i++) {
            const int on = sg_rng_uniform(&r) < dens;
            memset(mask + i * 9, on, 9);
            if (!on) memset(w + i * 9, 0, 9 * sizeof *w);
        }
        struct sgi_thin_buf tb = {0};
        struct sgi_kept kps = {0};
        if (dens < 1 && !sgi_conv_kernel_lists(&g, mask, 1.0, &tb, &kps)) return 1;
        const struct sgi_kept *kp = dens < 1 ? &kps : NULL;
        const size_t kept = dens < 1 ? (size_t)kps.fp[g.k] : (size_t)g.k * g.c;
        double t[8][1000];
        for (int rep = 0; rep < reps; rep++) {
            double a = sg_now();
            sgi_wino_train_forward_kept(&g, x, w, kp, y, ws, 1);
            t[0][rep] = sg_now() - a;
            a = sg_now();
            sgi_wino_train_backward_kept(&g, x, w, kp, dy, dx, 0, dw, ws, 1);
            t[1][rep] = sg_now() - a;
            for (int k = 2; k < 8; k++) t[k][rep] = 0;
            for (int sl = 0; sl < ns; sl++) {
                const int n0 = sl * nb, m = n - n0 < nb ? n - n0 : nb;
                a = sg_now();
                tf->input(x, NULL, g.c, n, g.h, g.w, n0, m, g.p, g.q, g.pt, g.pl, v);
                t[2][rep] += sg_now() - a;
                a = sg_now();
                tf->output(v, NULL, g.k, n, n0, m, g.p, g.q, 0, y);
                t[3][rep] += sg_now() - a;
                a = sg_now();
                tf->grad(dy, NULL, g.k, n, g.p, g.q, n0, m, v);
                t[4][rep] += sg_now() - a;
                a = sg_now();
                tf->input(dy, NULL, g.k, n, g.p, g.q, n0, m, g.h, g.w, 2 - g.pt, 2 - g.pl, v);
                t[5][rep] += sg_now() - a;
                a = sg_now();
                tf->output(v, NULL, g.c, n, n0, m, g.h, g.w, 1, dx);
                t[6][rep] += sg_now() - a;
            }
        }
        const double fw = best_of(reps, t[0]), bw = best_of(reps, t[1]), in = best_of(reps, t[2]);
        const double out = best_of(reps, t[3]), gr = best_of(reps, t[4]), indy = best_of(reps, t[5]);
        const double outdx = best_of(reps, t[6]);
        const double tiles = (double)n * sgi_wino_tiles(g.p, g.q, tf->m, tf->pad);
        const double flop = 2.0 * pts * (double)kept * tiles; /* one pass of products */
        const double frest = fw - in - out, brest = bw - gr - in - indy - outdx;
        printf("%-6s %4d | %7.3f %7.3f %7.3f %7.3f %6.0f | %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f %6.0f\n",
               names[li], tf->m, fw, in, out, frest, flop / frest / 1e6, bw, gr, in, indy, outdx, brest,
               2 * flop / brest / 1e6);
        free(x), free(w), free(y), free(dy), free(dx), free(dw), free(ws), free(v);
        sgi_thin_buf_free(&tb);
        free(mask);
        if (getenv("SHOW_T")) printf("  T %zu nb %d\n", T, nb);
    }
    return 0;
}
