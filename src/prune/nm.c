/* N:M pruning: in every run of M weights along C (fixed k, r, s), keep the N best
 * live ones, ties to the lower c. A short last run of L < M keeps min(N, L).
 *
 * Magnitude criteria rank |w| (dead weights score -1). The rank of member j is the
 * number of members that beat it (higher score, or equal and earlier); it keeps
 * when rank < N. Two layouts, both streaming through memory once:
 *   RS == 1 (fully connected): a run is M consecutive weights; runs of a filter row
 *           are processed many at a time, M a compile-time constant for 2, 4, 8;
 *   RS > 1: the runs of one (k, c0) block lie in one chunk of M*RS weights, member
 *           j of run rs at j*RS + rs; ranks are computed with rs innermost.
 * The random criterion ranks a fixed pseudo-random score per weight instead. */
#include "prune_internal.h"

/* The rank rule for one run of scores a[0..len): keeps the members whose rank is
 * below keep. */
static inline __attribute__((always_inline)) void nm_run(float *restrict w, uint8_t *restrict mk,
                                                        int64_t stride, const float *a,
                                                        int64_t len, int64_t keep) {
    for (int64_t j = 0; j < len; j++) {
        int r = 0;
        for (int64_t o = 0; o < len; o++) r += (a[o] > a[j]) | ((a[o] == a[j]) & (o < j));
        const uint8_t kp = r < keep;
        mk[j * stride] = kp;
        w[j * stride] = kp ? w[j * stride] : 0.0f;
    }
}

/* Full runs of a constant M along a contiguous row (RS == 1): vectorises across runs. */
static inline __attribute__((always_inline)) void nm_row(float *restrict w, uint8_t *restrict mk,
                                                        int64_t runs, int M, int N) {
    for (int64_t g = 0; g < runs; g++) {
        float a[8];
        for (int j = 0; j < M; j++) a[j] = mk[g * M + j] ? fabsf(w[g * M + j]) : -1.0f;
        for (int j = 0; j < M; j++) {
            int r = 0;
            for (int o = 0; o < M; o++) r += (a[o] > a[j]) | ((a[o] == a[j]) & (o < j));
            const uint8_t kp = r < N;
            mk[g * M + j] = kp;
            w[g * M + j] = kp ? w[g * M + j] : 0.0f;
        }
    }
}

static void nm_row_any(float *restrict w, uint8_t *restrict mk, int64_t runs, int M, int N) {
    switch (M) {
    case 2: nm_row(w, mk, runs, 2, N); break;
    case 4: nm_row(w, mk, runs, 4, N); break;
    case 8: nm_row(w, mk, runs, 8, N); break;
    default:
        for (int64_t g = 0; g < runs; g++) {
            float a[16];
            for (int j = 0; j < M; j++) a[j] = mk[g * M + j] ? fabsf(w[g * M + j]) : -1.0f;
            nm_run(w + g * M, mk + g * M, 1, a, M, N);
        }
    }
}

/* One (k, c0) block of len runs members, RS > 1 or M > 16: rank[] counts, rs innermost. */
static void nm_block(float *restrict w, uint8_t *restrict mk, const float *restrict sc,
                     uint16_t *restrict rank, int64_t len, int64_t RS, int64_t keep) {
    const int64_t n = len * RS;
    for (int64_t i = 0; i < n; i++) rank[i] = 0;
    for (int64_t j = 0; j < len; j++)
        for (int64_t o = 0; o < len; o++) {
            const float *so = sc + o * RS, *sj = sc + j * RS;
            uint16_t *rj = rank + j * RS;
            if (o < j)
                for (int64_t rs = 0; rs < RS; rs++) rj[rs] += so[rs] >= sj[rs];
            else if (o > j)
                for (int64_t rs = 0; rs < RS; rs++) rj[rs] += so[rs] > sj[rs];
        }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t kp = rank[i] < keep;
        mk[i] = kp;
        w[i] = kp ? w[i] : 0.0f;
    }
}

enum sg_status sgi_prune_nm(const struct sg_prune_spec *s, struct sg_wview *v) {
    const int64_t K = v->k, C = v->c, RS = v->r * v->s, M = s->nm_m;
    const uint64_t lh = sgi_name_hash(v->name);
    const int random = s->crit == SG_CRIT_RANDOM;
    enum sg_status st = SG_OK;
#pragma omp parallel if (K * C * RS > 65536)
    {
        float *sc = sgi_alloc((size_t)(M * RS), sizeof *sc);
        uint16_t *rank = sgi_alloc((size_t)(M * RS), sizeof *rank);
        if (!sc || !rank) {
#pragma omp atomic write
            st = SG_ERR_NOMEM;
        }
#pragma omp for schedule(static)
        for (int64_t k = 0; k < K; k++) {
            if (!sc || !rank) continue;
            int64_t c0 = 0;
            if (RS == 1 && !random && M <= 16) { /* the full runs of the row at once */
                const int64_t full = C / M;
                nm_row_any(v->w + k * C, v->mask + k * C, full, (int)M,
                           (int)(s->nm_n < M ? s->nm_n : M));
                c0 = full * M;
            }
            for (; c0 < C; c0 += M) {
                const int64_t len = C - c0 < M ? C - c0 : M, n = len * RS;
                const int64_t base = (k * C + c0) * RS, keep = s->nm_n < len ? s->nm_n : len;
                float *restrict w = v->w + base;
                uint8_t *restrict mk = v->mask + base;
                if (random)
                    for (int64_t i = 0; i < n; i++)
                        sc[i] = mk[i] ? sgi_random_score(s->seed, lh, (uint64_t)(base + i)) : -1.0f;
                else
                    for (int64_t i = 0; i < n; i++) sc[i] = mk[i] ? fabsf(w[i]) : -1.0f;
                if (RS < 8 && len <= 16) { /* short runs: one run at a time, in registers */
                    for (int64_t rs = 0; rs < RS; rs++) {
                        float a[16];
                        for (int64_t j = 0; j < len; j++) a[j] = sc[j * RS + rs];
                        nm_run(w + rs, mk + rs, RS, a, len, keep);
                    }
                } else {
                    nm_block(w, mk, sc, rank, len, RS, keep);
                }
            }
        }
        free(sc), free(rank);
    }
    return st == SG_OK ? SG_OK : sgi_error(st, "out of memory pruning %s", v->name);
}
