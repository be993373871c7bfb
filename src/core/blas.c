/* OpenBLAS, loaded at first use. OpenBLAS picks its kernels from the CPU when it
 * is loaded; on CPUs it does not know (0.3.21 and recent Xeons) it falls back to
 * SSE3 "Prescott" kernels, 5x slower. sg_blas_coretype names the kernel family
 * from the CPU's features, for the program to put in OPENBLAS_CORETYPE before the
 * first use (the library leaves the environment alone). The OpenMP build of
 * OpenBLAS is preferred so that its threads and ours are one pool. A missing
 * OpenBLAS is an error of sg_blas_load, which the entry points that multiply
 * (executors, plans) call first; the library never prints or aborts. */
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>

#include "sgi.h"

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);
static sgemm_fn g_sgemm;
static void (*g_set_threads)(int);
static char *(*g_corename)(void);
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_lib[256];

static void load(void) {
    static const char *const cands[] = {
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        NULL,
    };
    for (int i = 0; cands[i]; i++) {
        void *h = dlopen(cands[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        g_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
        g_set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
        g_corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
        if (g_sgemm) {
            snprintf(g_lib, sizeof g_lib, "%s", cands[i]);
            return;
        }
        dlclose(h);
    }
}

const char *sg_blas_coretype(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2")) return "Haswell";
    return NULL;
}

enum sg_status sg_blas_load(void) {
    pthread_once(&g_once, load);
    if (g_sgemm) return SG_OK;
    return sgi_error(SG_ERR_UNSUPPORTED, "cannot load OpenBLAS (libopenblas.so.0); install "
                                         "libopenblas0-openmp (scripts/install-deps.sh does)");
}

/* Without OpenBLAS (every entry point that reaches a GEMM checked sg_blas_load and
 * failed first, so this only runs for a caller that ignored that): plain loops,
 * the same product, slowly. */
static void sgemm_plain(int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb, float beta, float *c,
                        int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < k; t++)
                s += (double)(trans_a ? a[(size_t)t * lda + i] : a[(size_t)i * lda + t]) *
                     (trans_b ? b[(size_t)j * ldb + t] : b[(size_t)t * ldb + j]);
            float *cij = &c[(size_t)i * ldc + j];
            *cij = (float)(alpha * s + (beta != 0.0f ? beta * *cij : 0.0f));
        }
}

void sgi_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    pthread_once(&g_once, load);
    if (!g_sgemm) {
        sgemm_plain(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    g_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgi_blas_threads(int n) {
    pthread_once(&g_once, load);
    if (g_set_threads) g_set_threads(n);
}

const char *sg_blas_info(void) {
    static char info[320];
    pthread_once(&g_once, load);
    if (!g_sgemm) return "none (OpenBLAS not found)";
    snprintf(info, sizeof info, "%s (%s)", g_lib, g_corename ? g_corename() : "?");
    return info;
}
