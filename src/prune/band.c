/* One-layer pruning of contiguous groups (flat.c's tilings) in two streaming
 * passes when a sample predicts the threshold well, which it does for any layer
 * whose scores are not arranged against the sample:
 *   0. the keys of a sample (blocks of SB groups spread evenly over the layer) give
 *      bounds lo <= hi that hold the keep-th best key with a wide margin;
 *   1. one read-only pass counts the groups whose key is above hi and copies the
 *      key and position of the few in [lo, hi] into per-chunk buffers;
 *   2. if the keep-th best lies in the band (above < keep <= above + band, no
 *      buffer full), it is found there exactly, and one pass writes every mask
 *      and weight.
 * In the band, a group is ranked by key << 32 | ~position: that order is the kept
 * order (best key first, ties to the lower position), and the kept set is every
 * group at or above the need-th best of the band in it, exactly what the
 * histogram method and the general path select. When the band misses, nothing
 * has been written and the caller takes the exact histogram path; so it does when
 * the band would be wide or its buffers cannot be had (SG_ERR_UNSUPPORTED for all).
 * Groups are scored by sgi_run_stats, as everywhere else, with the group length a
 * compile-time constant for the common lengths so the loops vectorise. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "prune_internal.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define SB 32          /* groups per sample block */
#define BLK 512        /* groups scored at a time */
#define MIN_GROUPS 16384

double sgi_band_sigmas = 8.0;

struct band {
    const struct sg_prune_spec *s;
    struct sg_wview *v;
    int64_t L;
    uint64_t lh;
    int single; /* one weight per group, scored by magnitude: sgi_weight_key */
};

#define INLINE static inline __attribute__((always_inline))

/* Keys of groups g0 .. g0+cnt, each sgi_fkey(live ? score : -1). */
INLINE void keys_lc(const float *restrict w, const uint8_t *restrict mk, int64_t g0, int cnt,
                    int64_t L, enum sg_criterion crit, uint64_t seed, uint64_t lh,
                    uint32_t *restrict key) {
    for (int i = 0; i < cnt; i++) {
        float sum, mx;
        uint8_t live;
        sgi_run_stats(w + (g0 + i) * L, mk + (g0 + i) * L, L, crit == SG_CRIT_L2, &sum, &mx,
                      &live);
        const float sc = sgi_group_score(crit, sum, mx, (float)L, seed, lh, (uint64_t)(g0 + i));
        key[i] = sgi_fkey(live ? sc : -1.0f);
    }
}

#define KEYS_CRIT(LL)                                                                              \
    switch (b->s->crit) {                                                                          \
    case SG_CRIT_L2: keys_lc(w, mk, g0, cnt, LL, SG_CRIT_L2, 0, 0, key); break;                    \
    case SG_CRIT_MAX: keys_lc(w, mk, g0, cnt, LL, SG_CRIT_MAX, 0, 0, key); break;                  \
    case SG_CRIT_MEAN: keys_lc(w, mk, g0, cnt, LL, SG_CRIT_MEAN, 0, 0, key); break;                \
    case SG_CRIT_RANDOM:                                                                           \
        keys_lc(w, mk, g0, cnt, LL, SG_CRIT_RANDOM, b->s->seed, b->lh, key);                       \
        break;                                                                                     \
    default: keys_lc(w, mk, g0, cnt, LL, SG_CRIT_L1, 0, 0, key); break;                            \
    }

static void keys_of(const struct band *b, int64_t g0, int cnt, uint32_t *restrict key) {
    const float *w = b->v->w;
    const uint8_t *mk = b->v->mask;
    if (b->single) {
        for (int i = 0; i < cnt; i++) key[i] = sgi_weight_key(w, mk, g0 + i);
        return;
    }
    switch (b->L) {
    case 1: KEYS_CRIT(1) break;
    case 2: KEYS_CRIT(2) break;
    case 3: KEYS_CRIT(3) break;
    case 5: KEYS_CRIT(5) break;
    case 9: KEYS_CRIT(9) break;
    default: KEYS_CRIT(b->L) break;
    }
}

/* Writes groups g0 .. g0+cnt: kept when packed(key, position) >= t. */
INLINE void apply_l(float *restrict w, uint8_t *restrict mk, int64_t g0, int cnt, int64_t L,
                    const uint32_t *restrict key, uint32_t tk, uint32_t pc) {
    uint8_t kp[BLK];
    for (int i = 0; i < cnt; i++)
        kp[i] = (uint8_t)((key[i] > tk) | ((key[i] == tk) & ((uint32_t)(g0 + i) <= pc)));
    w += g0 * L, mk += g0 * L;
    for (int i = 0; i < cnt; i++)
        for (int64_t j = 0; j < L; j++) {
            const uint8_t k = kp[i];
            uint32_t u;
            memcpy(&u, &w[i * L + j], 4);
            u &= 0u - (uint32_t)k;
            memcpy(&w[i * L + j], &u, 4);
            mk[i * L + j] = k;
        }
}

static void apply_of(const struct band *b, int64_t g0, int cnt, const uint32_t *key, uint32_t tk,
                     uint32_t pc) {
    float *w = b->v->w;
    uint8_t *mk = b->v->mask;
    switch (b->L) {
    case 1: apply_l(w, mk, g0, cnt, 1, key, tk, pc); break;
    case 2: apply_l(w, mk, g0, cnt, 2, key, tk, pc); break;
    case 3: apply_l(w, mk, g0, cnt, 3, key, tk, pc); break;
    case 5: apply_l(w, mk, g0, cnt, 5, key, tk, pc); break;
    case 9: apply_l(w, mk, g0, cnt, 9, key, tk, pc); break;
    default: apply_l(w, mk, g0, cnt, b->L, key, tk, pc); break;
    }
}

/* The rank-th largest (1-based) of x[0..n), by 8-bit digits from the top; x is
 * left as it was, tmp (n entries) is scratch. Linear time, for small sets. */
static uint64_t select_u64(const uint64_t *x, size_t n, size_t rank, uint64_t *tmp) {
    const uint64_t *src = x;
    for (int shift = 56; shift >= 0 && n > 1; shift -= 8) {
        size_t h[256] = {0};
        for (size_t i = 0; i < n; i++) h[(src[i] >> shift) & 255]++;
        int d = 255;
        for (; d > 0 && h[d] < rank; d--) rank -= h[d];
        if (h[d] == n) continue; /* every element shares this digit */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if ((int)((src[i] >> shift) & 255) == d) tmp[m++] = src[i];
        src = tmp, n = m;
    }
    return src[0];
}

/* The bucket of a 65536-bin histogram holding the rank-th largest; *rank becomes
 * the rank within the bucket. */
static int bucket_of(const uint32_t *h, int64_t *rank) {
    int b = 65535;
    for (; b > 0 && h[b] < *rank; b--) *rank -= h[b];
    return b;
}

/* The keys of ranks r1 <= r2 (1-based, largest first) among x[0..n): top 16 bits
 * from one histogram, low 16 bits from a histogram of each boundary bucket. */
static void select2_u32(const uint32_t *x, int64_t n, int64_t r1, int64_t r2, uint32_t *h,
                        uint32_t *k1, uint32_t *k2) {
    memset(h, 0, 65536 * sizeof *h);
    for (int64_t i = 0; i < n; i++) h[x[i] >> 16]++;
    int64_t rr2 = r2;
    const uint32_t b1 = (uint32_t)bucket_of(h, &r1), b2 = (uint32_t)bucket_of(h, &rr2);
    const uint32_t bs[2] = {b1, b2};
    int64_t rs[2] = {r1, rr2};
    uint32_t *out[2] = {k1, k2};
    for (int j = 0; j < 2; j++) {
        memset(h, 0, 65536 * sizeof *h);
        for (int64_t i = 0; i < n; i++)
            if (x[i] >> 16 == bs[j]) h[x[i] & 0xffff]++;
        *out[j] = bs[j] << 16 | (uint32_t)bucket_of(h, &rs[j]);
    }
}

static inline uint64_t packed(uint32_t key, uint32_t g) { return (uint64_t)key << 32 | ~g; }

/* Counts the keys above hi into *ab and appends the keys in [lo, hi] (lo + width
 * = hi) and their positions g0 + i to kb, pb from m on, writing up to cnt entries
 * past the ones it keeps; returns the new m. */
static int64_t collect(const uint32_t *restrict key, int cnt, uint32_t g0, uint32_t hi,
                       uint32_t lo, uint32_t width, int64_t *ab, uint32_t *restrict kb,
                       uint32_t *restrict pb, int64_t m) {
    int i = 0;
    int64_t above = 0;
#if defined(__AVX512F__)
    const __m512i hv = _mm512_set1_epi32((int)hi), lv = _mm512_set1_epi32((int)lo),
                  wv = _mm512_set1_epi32((int)width);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= cnt; i += 16) {
        const __m512i k = _mm512_loadu_si512(key + i);
        const __mmask16 gt = _mm512_cmpgt_epu32_mask(k, hv);
        const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, lv), wv);
        above += __builtin_popcount((unsigned)gt);
        _mm512_mask_compressstoreu_epi32(kb + m, in, k);
        const __m512i pos = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(g0 + (uint32_t)i)));
        _mm512_mask_compressstoreu_epi32(pb + m, in, pos);
        m += __builtin_popcount((unsigned)in);
    }
#endif
    for (; i < cnt; i++) { /* branch-free: write every key, keep the ones in the band */
        above += key[i] > hi;
        kb[m] = key[i];
        pb[m] = g0 + (uint32_t)i;
        m += key[i] - lo <= width;
    }
    *ab += above;
    return m;
}

/* Pass 1 for single weights (b->single) over groups [g0, g1): keys computed in
 * registers, then counted and collected as collect() does; returns the new m, or
 * cap + 1 when the buffers would overflow. */
static int64_t count_single(const float *restrict w, const uint8_t *restrict mk, int64_t g0,
                            int64_t g1, uint32_t hi, uint32_t lo, uint32_t width, int64_t *ab,
                            uint32_t *restrict kb, uint32_t *restrict pb, int64_t cap) {
    int64_t m = 0, above = 0, g = g0;
#if defined(__AVX512F__)
    const __m512i hv = _mm512_set1_epi32((int)hi), lv = _mm512_set1_epi32((int)lo),
                  wv = _mm512_set1_epi32((int)width), abs_mask = _mm512_set1_epi32(0x7fffffff),
                  top = _mm512_set1_epi32((int)0x80000000u), dead = _mm512_set1_epi32(0x407fffff);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; g + 16 <= g1; g += 16) {
        if (m + 16 > cap) return cap + 1;
        const __m512i u = _mm512_loadu_si512(w + g);
        const __m512i mb = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(mk + g)));
        const __mmask16 live = _mm512_test_epi32_mask(mb, mb);
        const __m512i k = _mm512_mask_or_epi32(dead, live, _mm512_and_si512(u, abs_mask), top);
        const __mmask16 gt = _mm512_cmpgt_epu32_mask(k, hv);
        const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, lv), wv);
        above += __builtin_popcount((unsigned)gt);
        _mm512_mask_compressstoreu_epi32(kb + m, in, k);
        const __m512i pos = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(uint32_t)g));
        _mm512_mask_compressstoreu_epi32(pb + m, in, pos);
        m += __builtin_popcount((unsigned)in);
    }
#endif
    for (; g < g1; g++) {
        if (m + 1 > cap) return cap + 1;
        const uint32_t k = sgi_weight_key(w, mk, g);
        above += k > hi;
        kb[m] = k;
        pb[m] = (uint32_t)g;
        m += k - lo <= width;
    }
    *ab += above;
    return m;
}

/* Pass 2 for single weights over [g0, g1): one loop, keys in registers. */
static void apply_single(float *restrict w, uint8_t *restrict mk, int64_t g0, int64_t g1,
                         uint32_t tk, uint32_t pc) {
    for (int64_t g = g0; g < g1; g++) {
        const uint32_t k = sgi_weight_key(w, mk, g);
        const uint32_t kp = (k > tk) | ((k == tk) & ((uint32_t)g <= pc));
        uint32_t u;
        memcpy(&u, &w[g], 4);
        u &= 0u - kp;
        memcpy(&w[g], &u, 4);
        mk[g] = (uint8_t)kp;
    }
}

enum sg_status sgi_prune_band(const struct sg_prune_spec *s, struct sg_wview *v, int64_t L,
                              int64_t keep, int nt) {
    const int64_t n = sg_wview_count(v) / L;
    if (n < MIN_GROUPS || n >= (int64_t)UINT32_MAX) return SG_ERR_UNSUPPORTED;
    const struct band b = {s, v, L, sgi_name_hash(v->name),
                           L == 1 && (s->crit == SG_CRIT_L1 || s->crit == SG_CRIT_MAX ||
                                      s->crit == SG_CRIT_MEAN)};
    /* 0: the sample: nb blocks of SB groups, spread evenly, at least 65536 keys
     * (or every group), at most 1/256 of the groups beyond that */
    int64_t nb = n / (SB * 256);
    if (nb < 65536 / SB) nb = 65536 / SB;
    if (nb > n / SB) nb = n / SB;
    const int64_t span = n / nb, real = nb * SB;
    uint32_t *smp = sgi_alloc((size_t)real + 65536, sizeof *smp);
    if (!smp) return SG_ERR_UNSUPPORTED;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t i = 0; i < nb; i++) {
        /* each block at a hashed offset in its span, running into the next one:
         * every group is as likely to be sampled, whatever period the layout has */
        const uint64_t z = ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ull;
        int64_t g0 = i * span + (int64_t)((z >> 32) % (uint64_t)span);
        if (g0 > n - SB) g0 = n - SB;
        keys_of(&b, g0, SB, smp + i * SB);
    }
    const double p = (double)keep / (double)n, r = p * (double)real;
    const double margin = sgi_band_sigmas * (sqrt(r * (1 - p)) + 8);
    const int64_t r_hi = (int64_t)(r - margin), r_lo = (int64_t)(r + margin) + 1;
    uint32_t hi = UINT32_MAX, lo = 0, k1, k2;
    select2_u32(smp, real, r_hi < 1 ? 1 : r_hi, r_lo > real ? real : r_lo, smp + real, &k1, &k2);
    if (r_hi >= 1) hi = k1;
    if (r_lo <= real) lo = k2;
    /* 1: count above hi, collect [lo, hi]; every chunk may hold twice the expected
     * band, and a block more (collect writes past the band it keeps) */
    int64_t in_smp = 0; /* sample keys in the band: its expected share of the layer */
    for (int64_t i = 0; i < real; i++) in_smp += smp[i] - lo <= hi - lo;
    const double frac = (double)(in_smp + 64) / (double)real;
    free(smp);
    if (frac > 0.125) return SG_ERR_UNSUPPORTED; /* a wide band saves little */
    int64_t cap = (int64_t)(2 * frac * (double)n) + 2 * BLK;
    if (cap > n / nt + 2 * BLK) cap = n / nt + 2 * BLK; /* no chunk holds more */
    uint32_t *kb = sgi_alloc((size_t)(cap * nt), sizeof *kb);
    uint32_t *pb = sgi_alloc((size_t)(cap * nt), sizeof *pb);
    int64_t *above = sgi_zalloc((size_t)nt, sizeof *above);
    int64_t *got = sgi_zalloc((size_t)nt, sizeof *got);
    if (!kb || !pb || !above || !got) {
        free(kb), free(pb), free(above), free(got);
        return SG_ERR_UNSUPPORTED;
    }
    const uint32_t width = hi - lo;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id, team;
        sgi_omp_team(&id, &team);
        for (int c = id; c < nt; c += team) {
            const int64_t glo = n * c / nt, ghi = n * (c + 1) / nt;
            int64_t ab = 0, m = 0;
            uint32_t key[BLK];
            if (b.single) {
                m = count_single(v->w, v->mask, glo, ghi, hi, lo, width, &ab, kb + c * cap,
                                 pb + c * cap, cap);
                above[c] = ab, got[c] = m;
                continue;
            }
            for (int64_t g0 = glo; g0 < ghi; g0 += BLK) {
                const int cnt = ghi - g0 < BLK ? (int)(ghi - g0) : BLK;
                if (m + BLK > cap) { /* full: the band missed, stop here */
                    m = cap + 1;
                    break;
                }
                keys_of(&b, g0, cnt, key);
                m = collect(key, cnt, (uint32_t)g0, hi, lo, width, &ab, kb + c * cap,
                            pb + c * cap, m);
            }
            above[c] = ab, got[c] = m;
        }
    }
    int64_t ab = 0, inband = 0, full = 0;
    for (int c = 0; c < nt; c++) ab += above[c], inband += got[c], full |= got[c] > cap;
    free(above);
    if (full || ab >= keep || ab + inband < keep) {
        free(kb), free(pb), free(got);
        return SG_ERR_UNSUPPORTED;
    }
    /* the band's need-th best: a histogram of key - lo at the resolution that fits
     * 65536 bins, then the boundary bin exactly on packed (key, position) */
    int shift = 0;
    while ((width >> shift) > 65535) shift++;
    uint32_t *h = sgi_zalloc(65536, sizeof *h);
    if (!h) {
        free(kb), free(pb), free(got);
        return SG_ERR_UNSUPPORTED;
    }
    for (int c = 0; c < nt; c++)
        for (int64_t i = c * cap; i < c * cap + got[c]; i++) h[(kb[i] - lo) >> shift]++;
    int64_t need = keep - ab;
    const uint32_t bin = (uint32_t)bucket_of(h, &need);
    free(h);
    int64_t m = 0;
    uint64_t *sel = sgi_alloc((size_t)inband * 2, sizeof *sel);
    if (!sel) {
        free(kb), free(pb), free(got);
        return SG_ERR_UNSUPPORTED;
    }
    for (int c = 0; c < nt; c++)
        for (int64_t i = c * cap; i < c * cap + got[c]; i++)
            if (((kb[i] - lo) >> shift) == bin) sel[m++] = packed(kb[i], pb[i]);
    free(kb), free(pb), free(got);
    const uint64_t t = select_u64(sel, (size_t)m, (size_t)need, sel + m);
    free(sel);
    const uint32_t tk = (uint32_t)(t >> 32), pc = ~(uint32_t)t;
    /* 2: write every group */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id, team;
        sgi_omp_team(&id, &team);
        for (int c = id; c < nt; c += team) {
            const int64_t glo = n * c / nt, ghi = n * (c + 1) / nt;
            if (b.single) {
                apply_single(v->w, v->mask, glo, ghi, tk, pc);
                continue;
            }
            uint32_t key[BLK];
            for (int64_t g0 = glo; g0 < ghi; g0 += BLK) {
                const int cnt = ghi - g0 < BLK ? (int)(ghi - g0) : BLK;
                keys_of(&b, g0, cnt, key);
                apply_of(&b, g0, cnt, key, tk, pc);
            }
        }
    }
    return SG_OK;
}
