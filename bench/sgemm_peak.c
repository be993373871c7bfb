/* The machine's sgemm rate through the same OpenBLAS sparsegrain uses: the
 * "fraction of the machine's limit" that training benchmarks report against.
 * Usage: sgemm_peak N THREADS [wall|cpu]  ->  prints GFLOP/s (best of 5). "cpu" times
 * the calling thread's CPU time (THREADS 1): on a shared machine it leaves out the
 * time spent waiting for a core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sgi.h"

static int g_cpu;
static double now(void) {
    if (!g_cpu) return sg_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    g_cpu = argc > 3 && strcmp(argv[3], "cpu") == 0;
    const char *core = sg_blas_coretype(); /* as the CLI does */
    if (core && !getenv("OPENBLAS_CORETYPE")) setenv("OPENBLAS_CORETYPE", core, 0);
    if (sg_blas_load() != SG_OK) {
        fprintf(stderr, "sgemm_peak: %s\n", sg_last_error());
        return 1;
    }
    sg_set_threads(argc > 2 ? atoi(argv[2]) : 2);
    float *a = sgi_alloc((size_t)n * n, 4), *b = sgi_alloc((size_t)n * n, 4), *c = sgi_alloc((size_t)n * n, 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.2f;
    sgi_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        sgi_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%.1f\n", 2.0 * n * n * (double)n / best / 1e9);
    free(a), free(b), free(c);
    return 0;
}
