/* The machine's sgemm rate through the same OpenBLAS sparsegrain uses: the
 * "fraction of the machine's limit" that training benchmarks report against.
 * Usage: sgemm_peak N THREADS  ->  prints GFLOP/s (best of 5). */
#include <stdio.h>
#include <stdlib.h>

#include "core/sgi.h"

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    sg_set_threads(argc > 2 ? atoi(argv[2]) : 2);
    float *a = sgi_alloc((size_t)n * n, 4), *b = sgi_alloc((size_t)n * n, 4), *c = sgi_alloc((size_t)n * n, 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.2f;
    sgi_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = sg_now();
        sgi_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = sg_now() - t0;
        if (t < best) best = t;
    }
    printf("%.1f\n", 2.0 * n * n * (double)n / best / 1e9);
    free(a), free(b), free(c);
    return 0;
}
