/* Thread count shared by OpenBLAS and our OpenMP loops, and a monotonic clock. */
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "sgi.h"

static int g_threads = 1;

void sg_set_threads(int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    if (n > 256) n = 256;
    g_threads = n;
    sgi_blas_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int sg_get_threads(void) { return g_threads; }

double sg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
