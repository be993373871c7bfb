/* Linear-time selection: three radix passes (11, 11 and 10 bits of the key) with
 * per-thread histograms, then a deterministic parallel marking pass. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "prune_internal.h"

#define PAR_MIN 65536 /* below this, threads cost more than they save */

/* Histogram of ((key >> shift) & (nb-1)) over elements whose key >> (shift+bits)
 * equals prefix (all elements on the first pass). */
static void histogram(const float *x, const uint32_t *weight, size_t n, int shift, int bits,
                      int first, uint32_t prefix, uint64_t *hist) {
    const uint32_t nb = 1u << bits;
    memset(hist, 0, nb * sizeof *hist);
#pragma omp parallel if (n >= PAR_MIN)
    {
        uint64_t local[2048];
        memset(local, 0, nb * sizeof *local);
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < n; i++) {
            const uint32_t k = sgi_fkey(x[i]);
            if (!first && (k >> (shift + bits)) != prefix) continue;
            local[(k >> shift) & (nb - 1)] += weight ? weight[i] : 1;
        }
#pragma omp critical
        for (uint32_t b = 0; b < nb; b++) hist[b] += local[b];
    }
}

void sgi_select_key(const float *x, const uint32_t *weight, size_t n, uint64_t target,
                    uint32_t *t, uint64_t *above) {
    static const int shifts[3] = {21, 10, 0}, bits[3] = {11, 11, 10};
    uint64_t hist[2048];
    uint32_t prefix = 0;
    uint64_t acc = 0; /* weight strictly above the current prefix range */
    for (int pass = 0; pass < 3; pass++) {
        histogram(x, weight, n, shifts[pass], bits[pass], pass == 0, prefix, hist);
        const int nb = 1 << bits[pass];
        int b = nb - 1;
        for (; b > 0; b--) {
            if (acc + hist[b] >= target) break;
            acc += hist[b];
        }
        prefix = (prefix << bits[pass]) | (uint32_t)b;
    }
    *t = prefix;
    *above = acc;
}

void sgi_mark_kept(const float *x, size_t n, uint32_t t, uint64_t ties, uint8_t *keep) {
    int nt = 1;
#ifdef _OPENMP
    nt = n >= PAR_MIN ? omp_get_max_threads() : 1;
    if (nt > 64) nt = 64;
#endif
    uint64_t tie_count[65] = {0};
    /* pass 1: ties per chunk; pass 2: each chunk knows how many ties precede it */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id = 0, cnt = 1;
#ifdef _OPENMP
        id = omp_get_thread_num();
        cnt = omp_get_num_threads();
#endif
        const size_t lo = n * (size_t)id / (size_t)cnt, hi = n * (size_t)(id + 1) / (size_t)cnt;
        uint64_t c = 0;
        for (size_t i = lo; i < hi; i++) c += sgi_fkey(x[i]) == t;
        tie_count[id + 1] = c;
#pragma omp barrier
        uint64_t before = 0;
        for (int j = 0; j <= id; j++) before += tie_count[j];
        for (size_t i = lo; i < hi; i++) {
            const uint32_t k = sgi_fkey(x[i]);
            uint8_t kp = k > t;
            if (k == t) kp = before++ < ties;
            keep[i] = kp;
        }
    }
}

void sg_select_kth(const float *x, size_t n, size_t k, float *t, size_t *above) {
    SG_ASSERT(k >= 1 && k <= n);
    uint32_t key;
    uint64_t ab;
    sgi_select_key(x, NULL, n, k, &key, &ab);
    uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
    memcpy(t, &u, 4);
    *above = (size_t)ab;
}
