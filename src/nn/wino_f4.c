/* Winograd F(4x4,3x3) tile transforms for the training passes (driven by
 * src/nn/wino_train.c; layout in src/nn/wino.h): 6x6 input tiles at stride 4,
 * interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray 2016):
 *   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]          [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]          [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]          [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
 *         [0  4  0 -5 0 1]       [   0    0    1 ]
 * (y = A^T [(G g) . (B^T d)] is the correlation y_i = sum_r g_r d_(i+r), checked
 * against the direct convolution in tests/test_wino_train.c). The dy tiles of the
 * weight gradient go through A (6x4), the summed points through G^T (3x6).
 * As in F(2x2): the input rows of a chunk of bands are split by column phase
 * (column mod 4), so that entry (i, j) of every tile of the chunk is one array
 * read at a fixed shift; the 2-D transforms then run on 16 tiles at a time
 * with all their points in registers (one load and one store per point). The
 * stored tiles have no padding tile (wino.h): with AVX-512 the input transform
 * never makes it (a band's column past its last tile is kept aside and blended
 * into the shifted reads), other builds drop it as they write V; the others
 * never make it. With
 * AVX-512 the phase splits of input and dy rows and the interleaving of output
 * rows take one permutation per 4 tiles, with AVX2 two permutations and two
 * unpacks per 4 tiles (the helpers below); other builds run plain loops there
 * (slower: src/nn/wino_train.c's tile rule uses F(4x4) less without them). */
#include "core/sgi.h"
#include "nn/wino.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
/* the vector forms of the phase splits, the blends and the masked ends */
#define F4_VEC 1
#else
#define F4_VEC 0
#endif

/* Longest band-chunk row of temporaries: bands * (tq + 1) <= SGI_WINO_CHUNK, or
 * one band of up to 2048 / 4 + 1 tiles. */
#define RCAP 520
/* Phase arrays: one band more, one entry of slack for the shifted reads, and a
 * vector for the last block's reads. */
#define PCAP (SGI_WINO_CHUNK + 2 * RCAP + 8 + 16)

/* Bands per chunk with about 128 slots (tiles, or tiles and padding tiles) of
 * per a band: the temporaries of a chunk stay in L1 (512 slots measured
 * 1.1-1.3x slower on VGG-7's layers, 64 the same). At least one band. */
static int ck_bands(int bc, int per) {
    const int b = 128 / per;
    return b < 1 ? 1 : b < bc ? b : bc;
}

/* ck_bands for the transforms that read or write whole 16-tile blocks of a
 * channel's row (dy's, the output's and with AVX-512 the input's: tq tiles a
 * band, no padding tile): the count rounded down to a multiple of
 * 16 / gcd(tq, 16) bands where that leaves one, so that every chunk, and so
 * every block, starts on a cache line of the row (VGG-7's 28x28 layers: 16
 * bands of 7 tiles instead of 18). */
static int ck_bands_aligned(int bc, int tq) {
    int u = 16;
    while (tq % u) u /= 2; /* gcd(tq, 16) */
    u = 16 / u;
    const int b = ck_bands(bc, tq);
    return b >= u ? b / u * u : b;
}

/* A slice's planes of one channel are a few KiB (x is [C][N][H][W]): too short
 * for the hardware prefetcher to follow from one channel to the next. While
 * channel c is worked on, the planes of channel c + PF_AHEAD are fetched in
 * order, line by line, one share of them with each of the channel's bands
 * (share gb of parts): a plane read from memory then arrives in L1 in time.
 * Measured on an AMD EPYC (Zen 5) with the input transform of VGG-7's conv2 at a
 * slice of 3 images and x in memory: 89-117 us without prefetching, 94-103
 * fetching the same rows of the next channel (the way before), 47-57 this way
 * with two channels ahead (55-65 one ahead); 30-32 with x in cache. No change on
 * an Intel Xeon with 2 MB of L2 a core (docs/performance.md, "Eighth pass"). */
#define PF_AHEAD 2
static inline void prefetch_share(const float *p, size_t nfl, int gb, int parts, int write) {
    if (!p) return;
    const size_t lines = (nfl + 15) / 16, per = (lines + (size_t)parts - 1) / (size_t)parts;
    const size_t lo = (size_t)gb * per, hi = lo + per < lines ? lo + per : lines;
    for (size_t l = lo; l < hi; l++) {
        if (write)
            __builtin_prefetch(p + 16 * l, 1, 3);
        else
            __builtin_prefetch(p + 16 * l, 0, 3);
    }
}

/* The planes of channel c + PF_AHEAD of a [ch][n][hw] array, images n0.. (NULL
 * past the last channel). */
static inline const float *ahead_planes(const float *a, const int *map, int c, int ch, int n, int n0,
                                        size_t hw) {
    const int ca = c + PF_AHEAD;
    return ca < ch ? a + ((size_t)(map ? map[ca] : ca) * n + n0) * hw : NULL;
}

/* Sixteen tiles as one vector (one AVX-512 register, two AVX2 ones): every
 * transform works on 16 tiles at a time, all of a tile's points in registers
 * or in L1, one load and one store per point. */
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));
#define VW 16

/* The 1-D transforms as statement macros over any vector type: v16f, or vnf
 * (below) where a 16-lane vector is not a register. */
/* r = B^T d (6 points), with the shared terms of the rows. */
#define BT6(d, r)                                                                        \
    do {                                                                                 \
        const __typeof__((d)[0]) a_ = (d)[4] - 4.0f * (d)[2], b_ = (d)[3] - 4.0f * (d)[1]; \
        const __typeof__((d)[0]) c_ = (d)[4] - (d)[2], e_ = 2.0f * ((d)[3] - (d)[1]);    \
        (r)[0] = 4.0f * (d)[0] - 5.0f * (d)[2] + (d)[4];                                 \
        (r)[1] = a_ + b_;                                                                \
        (r)[2] = a_ - b_;                                                                \
        (r)[3] = c_ + e_;                                                                \
        (r)[4] = c_ - e_;                                                                \
        (r)[5] = 4.0f * (d)[1] - 5.0f * (d)[3] + (d)[5];                                 \
    } while (0)
/* o = A^T s (6 points to 4 outputs). */
#define AT6(s, o)                                                                        \
    do {                                                                                 \
        const __typeof__((s)[0]) a_ = (s)[1] + (s)[2], b_ = (s)[1] - (s)[2];             \
        const __typeof__((s)[0]) c_ = (s)[3] + (s)[4], d_ = (s)[3] - (s)[4];             \
        (o)[0] = (s)[0] + a_ + c_;                                                       \
        (o)[1] = b_ + 2.0f * d_;                                                         \
        (o)[2] = a_ + 4.0f * c_;                                                         \
        (o)[3] = b_ + 8.0f * d_ + (s)[5];                                                \
    } while (0)
/* o = A s (4 outputs' gradients to 6 points). */
#define A4(s, o)                                                                         \
    do {                                                                                 \
        const __typeof__((s)[0]) p_ = (s)[0] + (s)[2], q_ = (s)[1] + (s)[3];             \
        const __typeof__((s)[0]) p2_ = (s)[0] + 4.0f * (s)[2];                           \
        const __typeof__((s)[0]) q2_ = 2.0f * (s)[1] + 8.0f * (s)[3];                    \
        (o)[0] = (s)[0];                                                                 \
        (o)[1] = p_ + q_;                                                                \
        (o)[2] = p_ - q_;                                                                \
        (o)[3] = p2_ + q2_;                                                              \
        (o)[4] = p2_ - q2_;                                                              \
        (o)[5] = (s)[3];                                                                 \
    } while (0)
static inline void bt6(const v16f d[6], v16f r[6]) { BT6(d, r); }
static inline void at6(const v16f s[6], v16f o[4]) { AT6(s, o); }
static inline void a4(const v16f s[4], v16f o[6]) { A4(s, o); }

/* The machine's own vector: on AVX2 a v16f is no register, and GCC moves one it
 * must keep in memory (an array of them, as a transform's second stage reads)
 * in 16-byte pieces that 32-byte loads then read back, where store forwarding
 * fails. Full blocks of 16 tiles therefore go as VW / VN blocks of vnf; every
 * lane gets the same operations (the same bits). */
#if defined(__AVX2__) && !defined(__AVX512F__)
typedef float vnf __attribute__((vector_size(32), aligned(4), may_alias));
#define VN 8
#else
typedef v16f vnf;
#define VN VW
#endif

#if F4_VEC
/* (v16f values cross these inline helpers: GCC warns that, without AVX-512, such
 * a function would pass them differently from an AVX-512 build's) */
#pragma GCC diagnostic ignored "-Wpsabi"
/* Which of 16 lanes (bit u: lane u); __mmask16 on AVX-512. */
typedef uint16_t m16;
static inline m16 m16_below(int n) { return n >= 16 ? (m16)0xFFFF : n <= 0 ? (m16)0 : (m16)((1u << n) - 1); }

#ifdef __AVX512F__
static inline v16f from512(__m512 z) { v16f r; memcpy(&r, &z, sizeof r); return r; }
static inline __m512 to512(v16f v) { __m512 z; memcpy(&z, &v, sizeof z); return z; }
/* the 16 lanes at p, 0 outside k (nothing read there) */
static inline v16f load16_m(const float *p, m16 k) { return from512(_mm512_maskz_loadu_ps(k, p)); }
/* the lanes k of v stored at p (nothing written elsewhere) */
static inline void store16_m(float *p, v16f v, m16 k) { _mm512_mask_storeu_ps(p, k, to512(v)); }
/* lanes k from b, the others from a (all of a is read, of b only lanes k) */
static inline v16f blend16(const float *a, const float *b, m16 k) {
    return from512(_mm512_mask_loadu_ps(_mm512_loadu_ps(a), k, b));
}
/* the 16 columns at src (0 outside k), 4 tiles of 4, split into their column
 * phases: e_j[0..4) = column j of each tile; the stores write 4 floats each */
static inline void split16(const float *src, m16 k, float *e0, float *e1, float *e2, float *e3) {
    const __m512i split4 = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512 q = _mm512_permutexvar_ps(split4, _mm512_maskz_loadu_ps(k, src));
    _mm_storeu_ps(e0, _mm512_castps512_ps128(q));
    _mm_storeu_ps(e1, _mm512_extractf32x4_ps(q, 1));
    _mm_storeu_ps(e2, _mm512_extractf32x4_ps(q, 2));
    _mm_storeu_ps(e3, _mm512_extractf32x4_ps(q, 3));
}
/* split16's inverse: 4 tiles' phases e_j[0..4) interleaved into the 16 columns at
 * dst, lanes k only (=, += when accumulate is 1, = 0 + v when 2) */
static inline void join16(const float *e0, const float *e1, const float *e2, const float *e3,
                          float *dst, m16 k, int accumulate) {
    const __m512i split4 = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512 z = _mm512_castps128_ps512(_mm_loadu_ps(e0));
    z = _mm512_insertf32x4(z, _mm_loadu_ps(e1), 1);
    z = _mm512_insertf32x4(z, _mm_loadu_ps(e2), 2);
    z = _mm512_insertf32x4(z, _mm_loadu_ps(e3), 3);
    z = _mm512_permutexvar_ps(split4, z);
    if (accumulate == 1) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(k, dst));
    else if (accumulate == 2) z = _mm512_add_ps(z, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(dst, k, z);
}
#else
/* AVX2: the 16 lanes as two vectors of 8, the masks as two vectors of lanes
 * (sgi_bits8 of each half). */
static inline v16f from256(__m256 lo, __m256 hi) {
    v16f r;
    memcpy(&r, &lo, sizeof lo);
    memcpy((char *)&r + sizeof lo, &hi, sizeof hi);
    return r;
}
static inline v16f load16_m(const float *p, m16 k) {
    return from256(_mm256_maskload_ps(p, sgi_bits8(k)), _mm256_maskload_ps(p + 8, sgi_bits8(k >> 8)));
}
static inline void store16_m(float *p, v16f v, m16 k) {
    __m256 h[2];
    memcpy(h, &v, sizeof h);
    _mm256_maskstore_ps(p, sgi_bits8(k), h[0]);
    _mm256_maskstore_ps(p + 8, sgi_bits8(k >> 8), h[1]);
}
static inline v16f blend16(const float *a, const float *b, m16 k) {
    const __m256i lo = sgi_bits8(k), hi = sgi_bits8(k >> 8);
    return from256(_mm256_blendv_ps(_mm256_loadu_ps(a), _mm256_maskload_ps(b, lo), _mm256_castsi256_ps(lo)),
                   _mm256_blendv_ps(_mm256_loadu_ps(a + 8), _mm256_maskload_ps(b + 8, hi), _mm256_castsi256_ps(hi)));
}
/* tiles t0 t1 in a, t2 t3 in b: one permutation each puts a tile pair's phases
 * side by side ([t0.0 t1.0 t0.1 t1.1 | t0.2 t1.2 t0.3 t1.3]), unpacking their
 * 64-bit pairs gives [phase 0 | phase 2] and [phase 1 | phase 3] */
static inline void split16(const float *src, m16 k, float *e0, float *e1, float *e2, float *e3) {
    const __m256i pair = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256 a, b;
    if (k == 0xFFFF) { /* plain loads inside the row */
        a = _mm256_loadu_ps(src);
        b = _mm256_loadu_ps(src + 8);
    } else {
        a = _mm256_maskload_ps(src, sgi_bits8(k));
        b = _mm256_maskload_ps(src + 8, sgi_bits8(k >> 8));
    }
    a = _mm256_permutevar8x32_ps(a, pair);
    b = _mm256_permutevar8x32_ps(b, pair);
    const __m256 p02 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
    const __m256 p13 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
    _mm_storeu_ps(e0, _mm256_castps256_ps128(p02));
    _mm_storeu_ps(e2, _mm256_extractf128_ps(p02, 1));
    _mm_storeu_ps(e1, _mm256_castps256_ps128(p13));
    _mm_storeu_ps(e3, _mm256_extractf128_ps(p13, 1));
}
static inline void join16(const float *e0, const float *e1, const float *e2, const float *e3,
                          float *dst, m16 k, int accumulate) {
    const __m256i unpair = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256 p02 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(e0)), _mm_loadu_ps(e2), 1);
    const __m256 p13 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(e1)), _mm_loadu_ps(e3), 1);
    __m256 a = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(p02), _mm256_castps_pd(p13)));
    __m256 b = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(p02), _mm256_castps_pd(p13)));
    a = _mm256_permutevar8x32_ps(a, unpair);
    b = _mm256_permutevar8x32_ps(b, unpair);
    if (accumulate == 2) {
        a = _mm256_add_ps(a, _mm256_setzero_ps());
        b = _mm256_add_ps(b, _mm256_setzero_ps());
    }
    if (k == 0xFFFF) { /* plain stores where they can (a masked store takes many uops on some AMD cores) */
        if (accumulate == 1) {
            a = _mm256_add_ps(a, _mm256_loadu_ps(dst));
            b = _mm256_add_ps(b, _mm256_loadu_ps(dst + 8));
        }
        _mm256_storeu_ps(dst, a);
        _mm256_storeu_ps(dst + 8, b);
        return;
    }
    const __m256i lo = sgi_bits8(k), hi = sgi_bits8(k >> 8);
    if (accumulate == 1) {
        a = _mm256_add_ps(a, _mm256_maskload_ps(dst, lo));
        b = _mm256_add_ps(b, _mm256_maskload_ps(dst + 8, hi));
    }
    _mm256_maskstore_ps(dst, lo, a);
    _mm256_maskstore_ps(dst + 8, hi, b);
}
#endif
/* blend16 and store16_m on the machine's vector (vnf): lanes of k from its low bits */
#ifdef __AVX512F__
#define blendn blend16
#define storen_m store16_m
#else
static inline vnf from8(__m256 z) { vnf r; memcpy(&r, &z, sizeof r); return r; }
static inline vnf blendn(const float *a, const float *b, m16 k) {
    const __m256i lo = sgi_bits8(k);
    return from8(_mm256_blendv_ps(_mm256_loadu_ps(a), _mm256_maskload_ps(b, lo), _mm256_castsi256_ps(lo)));
}
static inline void storen_m(float *p, vnf v, m16 k) {
    __m256 z;
    memcpy(&z, &v, sizeof z);
    _mm256_maskstore_ps(p, sgi_bits8(k), z);
}
#endif
#endif

#if !F4_VEC
/* dst = src without the last of every L entries (nbnd bands of L - 1 tiles). */
static inline void drop_padding(const float *restrict src, int L, int nbnd, float *restrict dst) {
    const int tq = L - 1;
    for (int bd = 0; bd < nbnd; bd++)
        for (int t = 0; t < tq; t++) dst[bd * tq + t] = src[bd * L + t];
}
#endif

#if F4_VEC
/* V[36][ch][T] of images n0..n0+nb (AVX-512 or AVX2). The slice's bands of a channel
 * (image b's band bd is band b tp + bd, its tiles contiguous in V) go in chunks
 * of bc bands, across images (bc tq a multiple of 16 where ck_bands_aligned
 * finds one). Per band its six input rows are split into the four column
 * phases, ph[i][j][t] = entry (i, j) of the band's tile t (column 4t + j - pl),
 * tq entries a band and no padding slot, so that entries 0-3 of 16 tiles of the
 * chunk are one aligned load; entries 4 and 5 are phases 0 and 1 read one
 * entry on, except at a band's last tile, whose are the column tile past the
 * band, kept aside in ph[i][4] and ph[i][5] and blended in with a mask. Each
 * point of 16 transformed tiles is one aligned store. Rows are read with
 * masked loads (zero outside the image, no padded copy), 4 tiles (16 columns)
 * at a time split by one permutation; the stores may run 4 entries into the
 * next band (written after) or the slack. Rows shared by two bands are split
 * twice. (Before, the arrays kept a padding slot a band and each block dropped
 * its padding tiles with a compress and a masked, unaligned store a point;
 * docs/performance.md, "Ninth pass".) */
SGI_NO_LIBCALLS static void input_tiles(const float *x, const int *map, int ch, int n, int h, int w,
                                        int n0, int nb, int op, int oq, int pt, int pl, float *v) {
    const int tp = (op + 3) / 4, tq = (oq + 3) / 4, L = tq + 1, bc0 = sgi_wino_bands(tq);
    const int bc = ck_bands_aligned(bc0, tq);
    const size_t ti = sgi_wino_tiles(op, oq, 4, 0), T = (size_t)nb * ti, vs = sgi_wino_pstride(ch, T);
    /* a chunk's entries, 4 of spill, the last block's reads (one entry on);
     * a multiple of 16: every array starts on a cache line */
    enum { PH = RCAP + 2 * VW + 8 };
    float ph[6][6][PH] __attribute__((aligned(64)));
    SG_ASSERT(bc * L <= RCAP && w + pl <= 4 * L);
    const int used = sgi_round16((size_t)bc * tq) + VW;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            for (int t = 0; t < used; t++) ph[i][j][t] = 0;
    /* which of 16 tiles from tile t end a band: the same for every chunk
     * (chunks start at a band) */
    m16 end_of[RCAP / VW + 2];
    for (int blk = 0; blk * VW < bc * tq; blk++) {
        m16 k = 0;
        for (int u = 0; u < VW; u++) k |= (m16)(((blk * VW + u) % tq == tq - 1) << u);
        end_of[blk] = k;
    }
    /* which of the 16 columns 4t - pl .. 4t - pl + 15 are inside a row */
    m16 in_of[RCAP / 4 + 1];
    for (int t = 0; t < L; t += 4) {
        m16 k = 0;
        for (int u = 0; u < VW; u++) k |= (m16)((4 * t - pl + u >= 0 && 4 * t - pl + u < w) << u);
        in_of[t / 4] = k;
    }
    const int nbands = nb * tp;
    for (int c = 0; c < ch; c++) {
        const float *cplane = x + ((size_t)(map ? map[c] : c) * n + n0) * h * w;
        const float *nplane = ahead_planes(x, map, c, ch, n, n0, (size_t)h * w);
        float *vc = v + (size_t)c * sgi_wino_ld(T);
        for (int g0 = 0; g0 < nbands; g0 += bc) {
            const int nbnd = nbands - g0 < bc ? nbands - g0 : bc, nt = nbnd * tq;
            for (int bd = 0; bd < nbnd; bd++) {
                const int gb = g0 + bd, img = gb / tp, band = gb % tp;
                const float *plane = cplane + (size_t)img * h * w;
                prefetch_share(nplane, (size_t)nb * h * w, gb, nbands, 0);
                for (int i = 0; i < 6; i++) {
                    const int ih = 4 * band - pt + i, off = bd * tq;
                    float *e0 = ph[i][0] + off, *e1 = ph[i][1] + off;
                    float *e2 = ph[i][2] + off, *e3 = ph[i][3] + off;
                    if (ih < 0 || ih >= h) {
                        for (int t = 0; t < tq; t++) e0[t] = e1[t] = e2[t] = e3[t] = 0;
                        ph[i][4][off + tq - 1] = ph[i][5][off + tq - 1] = 0;
                        continue;
                    }
                    /* columns 4t - pl .. 4t - pl + 15 (zero outside the row):
                     * phases 0-3 of tiles t .. t + 3, phases 4 and 5 of tiles
                     * t - 1 .. t + 2 */
                    const float *src = plane + (size_t)ih * w - pl;
                    for (int t = 0; t < L; t += 4)
                        split16(src + 4 * t, in_of[t / 4], e0 + t, e1 + t, e2 + t, e3 + t);
                    /* phases 0 and 1 of the column tile past the band, before
                     * the next band's split overwrites them */
                    ph[i][4][off + tq - 1] = e0[tq];
                    ph[i][5][off + tq - 1] = e1[tq];
                }
            }
            float *vt = vc + (size_t)g0 * tq;
            for (int t = 0; t < nt; t += VW) {
                const m16 end = end_of[t / VW], low = m16_below(nt - t);
                float *vd = vt + t;
                /* VW / VN blocks of the machine's vectors; on AVX2 a half past
                 * the chunk's end is skipped (its stores would write nothing) */
                for (int hh = 0; hh < VW && hh < nt - t; hh += VN) {
                    const m16 eh = (m16)(end >> hh), lh = (m16)(low >> hh);
                    vnf r[6][6];
#pragma GCC unroll 6
                    for (int j = 0; j < 6; j++) {
                        vnf d[6], o6[6];
#pragma GCC unroll 6
                        for (int i = 0; i < 6; i++) {
                            if (j < 4) {
                                d[i] = *(const vnf *)(ph[i][j] + t + hh);
                            } else {
                                d[i] = blendn(ph[i][j - 4] + t + hh + 1, ph[i][j] + t + hh, eh);
                            }
                        }
                        BT6(d, o6);
                        for (int i = 0; i < 6; i++) r[i][j] = o6[i];
                    }
                    if (nt - t - hh >= VN) {
#pragma GCC unroll 6
                        for (int i = 0; i < 6; i++) {
                            vnf o6[6];
                            BT6(r[i], o6);
#pragma GCC unroll 6
                            for (int j = 0; j < 6; j++) *(vnf *)(vd + (size_t)(i * 6 + j) * vs + hh) = o6[j];
                        }
                    } else {
                        for (int i = 0; i < 6; i++) {
                            vnf o6[6];
                            BT6(r[i], o6);
                            for (int j = 0; j < 6; j++) storen_m(vd + (size_t)(i * 6 + j) * vs + hh, o6[j], lh);
                        }
                    }
                }
            }
        }
    }
}
#else
/* V[36][ch][T] of images n0..n0+nb. Per chunk of tile bands the padded input
 * rows are split into four column phases ph[row mod 4][col mod 4] (L = tq + 1
 * entries a row, row r at band r / 4): entry (i, j) of the tiles of the chunk is
 * ph[i & 3][j & 3] read from (i >> 2) L + (j >> 2). */
SGI_NO_LIBCALLS static void input_tiles(const float *x, const int *map, int ch, int n, int h, int w,
                                        int n0, int nb, int op, int oq, int pt, int pl, float *v) {
    const int tp = (op + 3) / 4, tq = (oq + 3) / 4, L = tq + 1, bc = sgi_wino_bands(tq);
    const size_t ti = sgi_wino_tiles(op, oq, 4, 0), T = (size_t)nb * ti, vs = sgi_wino_pstride(ch, T);
    const int cap = (bc + 1) * L + 1;
    float ph[4][4][PCAP];
    float ob[36][RCAP + VW];
    SG_ASSERT(cap + VW <= PCAP && bc * L <= RCAP);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < cap + VW; t++) ph[a][b][t] = 0; /* + the last block's reads */
    int lo = (pl + 3) / 4, hi = (w + pl) / 4; /* t in [lo, hi): columns 4t - pl .. 4t + 3 - pl inside */
    if (lo > L) lo = L;
    if (hi > L) hi = L;
    if (hi < lo) hi = lo;
    for (int c = 0; c < ch; c++)
        for (int b = 0; b < nb; b++) {
            const float *plane = x + ((size_t)(map ? map[c] : c) * n + n0 + b) * h * w;
            float *vc = v + (size_t)c * sgi_wino_ld(T) + (size_t)b * ti;
            for (int ty0 = 0; ty0 < tp; ty0 += bc) {
                const int nbnd = tp - ty0 < bc ? tp - ty0 : bc, nr = 4 * nbnd + 2, nt = nbnd * L;
                for (int rr = 0; rr < nr; rr++) {
                    const int ih = 4 * ty0 - pt + rr, off = (rr >> 2) * L;
                    float *e0 = ph[rr & 3][0] + off, *e1 = ph[rr & 3][1] + off;
                    float *e2 = ph[rr & 3][2] + off, *e3 = ph[rr & 3][3] + off;
                    if (ih < 0 || ih >= h) {
                        for (int t = 0; t < L; t++) e0[t] = e1[t] = e2[t] = e3[t] = 0;
                        continue;
                    }
                    const float *src = plane + (size_t)ih * w;
                    for (int t = 0; t < lo; t++) {
                        const int i0 = 4 * t - pl;
                        e0[t] = i0 >= 0 && i0 < w ? src[i0] : 0.0f;
                        e1[t] = i0 + 1 >= 0 && i0 + 1 < w ? src[i0 + 1] : 0.0f;
                        e2[t] = i0 + 2 >= 0 && i0 + 2 < w ? src[i0 + 2] : 0.0f;
                        e3[t] = i0 + 3 >= 0 && i0 + 3 < w ? src[i0 + 3] : 0.0f;
                    }
                    const float *sp = src - pl;
                    for (int t = lo; t < hi; t++)
                        e0[t] = sp[4 * t], e1[t] = sp[4 * t + 1], e2[t] = sp[4 * t + 2],
                        e3[t] = sp[4 * t + 3];
                    for (int t = hi; t < L; t++) {
                        const int i0 = 4 * t - pl;
                        e0[t] = i0 >= 0 && i0 < w ? src[i0] : 0.0f;
                        e1[t] = i0 + 1 >= 0 && i0 + 1 < w ? src[i0 + 1] : 0.0f;
                        e2[t] = i0 + 2 >= 0 && i0 + 2 < w ? src[i0 + 2] : 0.0f;
                        e3[t] = i0 + 3 >= 0 && i0 + 3 < w ? src[i0 + 3] : 0.0f;
                    }
                }
                float *vt = vc + (size_t)ty0 * tq;
                /* the padded chunk (shifted reads stay inside ph), then without padding */
                for (int t = 0; t < nt; t += VW) {
                    v16f r[6][6];
#pragma GCC unroll 6
                    for (int j = 0; j < 6; j++) {
                        v16f d[6], o6[6];
#pragma GCC unroll 6
                        for (int i = 0; i < 6; i++)
                            d[i] = *(const v16f *)(ph[i & 3][j & 3] + (i >> 2) * L + (j >> 2) + t);
                        bt6(d, o6);
                        for (int i = 0; i < 6; i++) r[i][j] = o6[i];
                    }
                    for (int i = 0; i < 6; i++) {
                        v16f o6[6];
                        bt6(r[i], o6);
                        for (int j = 0; j < 6; j++) *(v16f *)(ob[i * 6 + j] + t) = o6[j];
                    }
                }
                for (int e = 0; e < 36; e++) drop_padding(ob[e], L, nbnd, vt + (size_t)e * vs);
            }
        }
}

#endif

/* M[36][ch][T] -> y[ch][n][op][oq] (= when accumulate is 0, += when 1, = 0 + v when
 * 2: the bits of adding to a zeroed y without reading it): A^T m A per tile, clipped at the
 * edge; one output row of the tiles at a time, its four column phases
 * interleaved into the row. */
SGI_NO_LIBCALLS static void output_tiles(const float *mt, const int *map, int ch, int n, int n0,
                                         int nb, int op, int oq, int accumulate, float *y) {
    const int tp = (op + 3) / 4, tq = (oq + 3) / 4, L = tq + 1, bc0 = sgi_wino_bands(tq);
    const int bc = ck_bands_aligned(bc0, tq);
    const size_t ti = sgi_wino_tiles(op, oq, 4, 0), T = (size_t)nb * ti, ms = sgi_wino_pstride(ch, T);
    const int full = oq / 4, rem = oq % 4;
    float o[4][4][RCAP + VW] __attribute__((aligned(64)));
#ifndef __AVX512F__
    float tail[36][VW];
#endif
    (void)L;
#if F4_VEC
    (void)full, (void)rem;
#endif
    SG_ASSERT(bc * L <= RCAP);
    /* a chunk is bc consecutive bands of the slice (image b's band bd is band
     * b tp + bd; their tiles are contiguous in M), so that images with few
     * tiles share 16-tile blocks and only a channel's last block is partial */
    const int nbands = nb * tp;
    for (int c = 0; c < ch; c++) {
        float *cplane = y + ((size_t)(map ? map[c] : c) * n + n0) * op * oq;
        const float *nplane = ahead_planes(y, map, c, ch, n, n0, (size_t)op * oq);
        const float *mc = mt + (size_t)c * sgi_wino_ld(T);
        for (int g0 = 0; g0 < nbands; g0 += bc) {
            const int nbnd = nbands - g0 < bc ? nbands - g0 : bc, nt = nbnd * tq;
            const float *m = mc + (size_t)g0 * tq;
            for (int t = 0; t < nt; t += VW) {
                const float *mp[36];
                for (int e = 0; e < 36; e++) mp[e] = m + (size_t)e * ms + t;
#ifdef __AVX512F__
                /* the last block's reads masked: nothing read past the chunk */
                const m16 lk = m16_below(nt - t);
#define LOADM(e, hh) load16_m(mp[e], lk)
#else
                /* the last block through a zero-padded copy: no reads past M */
                if (t + VW > nt) {
                    for (int e = 0; e < 36; e++) {
                        for (int u = 0; u < VW; u++) tail[e][u] = t + u < nt ? mp[e][u] : 0.0f;
                        mp[e] = tail[e];
                    }
                }
#define LOADM(e, hh) (*(const vnf *)(mp[e] + (hh)))
#endif
                for (int hh = 0; hh < VW; hh += VN) { /* VW / VN blocks of the machine's vectors */
                    vnf t2[4][6];
                    for (int j = 0; j < 6; j++) {
                        vnf s6[6], o4[4];
                        for (int i = 0; i < 6; i++) s6[i] = LOADM(i * 6 + j, hh);
                        AT6(s6, o4);
                        for (int a = 0; a < 4; a++) t2[a][j] = o4[a];
                    }
                    for (int a = 0; a < 4; a++) {
                        vnf o4[4];
                        AT6(t2[a], o4);
                        for (int q = 0; q < 4; q++) *(vnf *)(o[a][q] + t + hh) = o4[q];
                    }
                }
#undef LOADM
            }
            for (int bd = 0; bd < nbnd; bd++) {
                const int gb = g0 + bd, img = gb / tp, band = gb % tp;
                float *plane = cplane + (size_t)img * op * oq;
                prefetch_share(nplane, (size_t)nb * op * oq, gb, nbands, 1);
                for (int a = 0; a < 4; a++) {
                    const int p = 4 * band + a;
                    if (p >= op) break;
                    float *dst = plane + (size_t)p * oq;
                    const float *o0 = o[a][0] + bd * tq, *o1 = o[a][1] + bd * tq;
                    const float *o2 = o[a][2] + bd * tq, *o3 = o[a][3] + bd * tq;
#if F4_VEC
                    /* 4 tiles at a time: their 4 phases interleaved (a 4x4
                     * transpose), the row's end masked */
                    for (int t = 0; 4 * t < oq; t += 4)
                        join16(o0 + t, o1 + t, o2 + t, o3 + t, dst + 4 * t, m16_below(oq - 4 * t), accumulate);
                    continue;
#endif
                    if (accumulate == 2) { /* 0 + v */
                        for (int t = 0; t < full; t++)
                            dst[4 * t] = 0.0f + o0[t], dst[4 * t + 1] = 0.0f + o1[t],
                            dst[4 * t + 2] = 0.0f + o2[t], dst[4 * t + 3] = 0.0f + o3[t];
                        if (rem > 0) dst[4 * full] = 0.0f + o0[full];
                        if (rem > 1) dst[4 * full + 1] = 0.0f + o1[full];
                        if (rem > 2) dst[4 * full + 2] = 0.0f + o2[full];
                    } else if (accumulate) {
                        for (int t = 0; t < full; t++)
                            dst[4 * t] += o0[t], dst[4 * t + 1] += o1[t], dst[4 * t + 2] += o2[t],
                                dst[4 * t + 3] += o3[t];
                        if (rem > 0) dst[4 * full] += o0[full];
                        if (rem > 1) dst[4 * full + 1] += o1[full];
                        if (rem > 2) dst[4 * full + 2] += o2[full];
                    } else {
                        for (int t = 0; t < full; t++)
                            dst[4 * t] = o0[t], dst[4 * t + 1] = o1[t], dst[4 * t + 2] = o2[t],
                            dst[4 * t + 3] = o3[t];
                        if (rem > 0) dst[4 * full] = o0[full];
                        if (rem > 1) dst[4 * full + 1] = o1[full];
                        if (rem > 2) dst[4 * full + 2] = o2[full];
                    }
                }
            }
        }
    }
}

/* D[36][k][T] = A d A^T of the 4x4 tiles of dy[k][n][op][oq] (zero beyond the
 * edge and in the padding tile of every band): per chunk of bands the rows of
 * dy split into column phases g[row mod 4][col mod 4], then A on rows and columns. */
SGI_NO_LIBCALLS static void grad_tiles(const float *dy, const int *map, int k, int n, int op,
                                       int oq, int n0, int nb, float *dt) {
    const int tp = (op + 3) / 4, tq = (oq + 3) / 4, L = tq + 1, bc0 = sgi_wino_bands(tq);
    const int bc = ck_bands_aligned(bc0, tq);
    const size_t ti = sgi_wino_tiles(op, oq, 4, 0), T = (size_t)nb * ti, ds = sgi_wino_pstride(k, T);
    const int full = oq / 4, rem = oq % 4;
    float g[4][4][RCAP + VW];
#if F4_VEC
    (void)full, (void)rem;
#endif
    for (int a = 0; a < 4; a++) /* entries past a chunk are read (and dropped) by its last block */
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < RCAP + VW; t++) g[a][b][t] = 0;
    (void)L;
    SG_ASSERT(bc * L <= RCAP);
    /* chunks of bc consecutive bands of the slice (image b's band bd is band
     * b tp + bd; their tiles are contiguous in D): only a channel's last block
     * is partial */
    const int nbands = nb * tp;
    for (int c = 0; c < k; c++) {
        const float *cplane = dy + ((size_t)(map ? map[c] : c) * n + n0) * op * oq;
        const float *nplane = ahead_planes(dy, map, c, k, n, n0, (size_t)op * oq);
        float *dc = dt + (size_t)c * sgi_wino_ld(T);
        for (int g0 = 0; g0 < nbands; g0 += bc) {
            const int nbnd = nbands - g0 < bc ? nbands - g0 : bc, nt = nbnd * tq;
            for (int bd = 0; bd < nbnd; bd++) {
                const int gb = g0 + bd, img = gb / tp, band = gb % tp;
                const float *plane = cplane + (size_t)img * op * oq;
                prefetch_share(nplane, (size_t)nb * op * oq, gb, nbands, 0);
                for (int a = 0; a < 4; a++) {
                    const int p = 4 * band + a;
                    float *e0 = g[a][0] + bd * tq, *e1 = g[a][1] + bd * tq;
                    float *e2 = g[a][2] + bd * tq, *e3 = g[a][3] + bd * tq;
                    if (p >= op) {
                        for (int t = 0; t < tq; t++) e0[t] = e1[t] = e2[t] = e3[t] = 0;
                        continue;
                    }
                    const float *src = plane + (size_t)p * oq;
#if F4_VEC
                    /* 4 tiles at a time split into phases, zeros past the
                     * row's end; the stores may run 3 entries into the next
                     * band (written after) or past the chunk */
                    for (int t = 0; t < tq; t += 4)
                        split16(src + 4 * t, m16_below(oq - 4 * t), e0 + t, e1 + t, e2 + t, e3 + t);
                    continue;
#endif
                    for (int t = 0; t < full; t++)
                        e0[t] = src[4 * t], e1[t] = src[4 * t + 1], e2[t] = src[4 * t + 2],
                        e3[t] = src[4 * t + 3];
                    for (int t = full; t < tq; t++) e0[t] = e1[t] = e2[t] = e3[t] = 0;
                    if (rem > 0) e0[full] = src[4 * full];
                    if (rem > 1) e1[full] = src[4 * full + 1];
                    if (rem > 2) e2[full] = src[4 * full + 2];
                }
            }
            float *dtt = dc + (size_t)g0 * tq;
            for (int t = 0; t < nt; t += VW) {
                if (t + VW <= nt) {
                    for (int hh = 0; hh < VW; hh += VN) {
                        vnf r[6][4];
                        for (int j = 0; j < 4; j++) {
                            vnf s4[4], o6[6];
                            for (int a = 0; a < 4; a++) s4[a] = *(const vnf *)(g[a][j] + t + hh);
                            A4(s4, o6);
                            for (int e = 0; e < 6; e++) r[e][j] = o6[e];
                        }
                        for (int e = 0; e < 6; e++) {
                            vnf o6[6];
                            A4(r[e], o6);
                            for (int f = 0; f < 6; f++)
                                *(vnf *)(dtt + (size_t)(e * 6 + f) * ds + t + hh) = o6[f];
                        }
                    }
                    continue;
                }
                /* the chunk's last, partial block: no writes past the chunk */
                v16f r[6][4];
                for (int j = 0; j < 4; j++) {
                    v16f s4[4], o6[6];
                    for (int a = 0; a < 4; a++) s4[a] = *(const v16f *)(g[a][j] + t);
                    a4(s4, o6);
                    for (int e = 0; e < 6; e++) r[e][j] = o6[e];
                }
#if F4_VEC
                const m16 lk = m16_below(nt - t);
#endif
                for (int e = 0; e < 6; e++) {
                    v16f o6[6];
                    a4(r[e], o6);
                    for (int f = 0; f < 6; f++) {
                        float *dst = dtt + (size_t)(e * 6 + f) * ds + t;
#if F4_VEC
                        store16_m(dst, o6[f], lk);
#else
                        float tmp[VW];
                        memcpy(tmp, &o6[f], sizeof tmp);
                        for (int u = 0; t + u < nt; u++) dst[u] = tmp[u];
#endif
                    }
                }
            }
        }
    }
}

/* u = G f G^T of one 3x3 kernel f, written at stride us. */
static void g_kernel(const float f[3][3], float *u, size_t us) {
    float t[6][3];
    for (int s = 0; s < 3; s++) {
        const float a = f[0][s], b = f[1][s], c = f[2][s];
        t[0][s] = 0.25f * a;
        t[1][s] = -(a + b + c) / 6.0f;
        t[2][s] = -(a - b + c) / 6.0f;
        t[3][s] = a / 24.0f + b / 12.0f + c / 6.0f;
        t[4][s] = a / 24.0f - b / 12.0f + c / 6.0f;
        t[5][s] = c;
    }
    for (int i = 0; i < 6; i++) {
        const float a = t[i][0], b = t[i][1], c = t[i][2];
        float *o = u + (size_t)i * 6 * us;
        o[0 * us] = 0.25f * a;
        o[1 * us] = -(a + b + c) / 6.0f;
        o[2 * us] = -(a - b + c) / 6.0f;
        o[3 * us] = a / 24.0f + b / 12.0f + c / 6.0f;
        o[4 * us] = a / 24.0f - b / 12.0f + c / 6.0f;
        o[5 * us] = c;
    }
}

/* G^T m G of 16 kernels whose point p is a[p * stride .. + 16), into o[r * 3 + s][kernel];
 * G^T rows [1/4 -1/6 -1/6 1/24 1/24 0], [0 -1/6 1/6 1/12 -1/12 0], [0 -1/6 -1/6 1/6 1/6 1]. */
static void gtmg16(const float *a, size_t stride, float o[9][VW]) {
    v16f t[3][6];
    for (int j = 0; j < 6; j++) {
        const v16f a0 = *(const v16f *)(a + (0 * 6 + j) * stride), a1 = *(const v16f *)(a + (1 * 6 + j) * stride);
        const v16f a2 = *(const v16f *)(a + (2 * 6 + j) * stride), a3 = *(const v16f *)(a + (3 * 6 + j) * stride);
        const v16f a4 = *(const v16f *)(a + (4 * 6 + j) * stride), a5 = *(const v16f *)(a + (5 * 6 + j) * stride);
        t[0][j] = 0.25f * a0 - (a1 + a2) / 6.0f + (a3 + a4) / 24.0f;
        t[1][j] = (a2 - a1) / 6.0f + (a3 - a4) / 12.0f;
        t[2][j] = (a3 + a4 - a1 - a2) / 6.0f + a5;
    }
    for (int r = 0; r < 3; r++) {
        const v16f *q = t[r];
        *(v16f *)o[r * 3 + 0] = 0.25f * q[0] - (q[1] + q[2]) / 6.0f + (q[3] + q[4]) / 24.0f;
        *(v16f *)o[r * 3 + 1] = (q[2] - q[1]) / 6.0f + (q[3] - q[4]) / 12.0f;
        *(v16f *)o[r * 3 + 2] = (q[3] + q[4] - q[1] - q[2]) / 6.0f + q[5];
    }
}

/* dw[k][c][3][3] = G^T m G of the summed points m[36][k][c], 16 kernels at a time
 * (their points are contiguous in m; one kernel at a time its 45 divisions took 3%
 * of a VGG-7 step); the last K C mod 16 through a zero-padded copy of their points. */
static void weight_grad_out(const float *m, int k, int c, float *dw) {
    const size_t ms = (size_t)k * c;
    for (size_t kc0 = 0; kc0 < ms; kc0 += VW) {
        const int nk = ms - kc0 < VW ? (int)(ms - kc0) : VW;
        float o[9][VW] __attribute__((aligned(64)));
        if (nk == VW) {
            gtmg16(m + kc0, ms, o);
        } else {
            float tail[36][VW] __attribute__((aligned(64))) = {{0}};
            for (int p = 0; p < 36; p++)
                for (int u = 0; u < nk; u++) tail[p][u] = m[(size_t)p * ms + kc0 + u];
            gtmg16(tail[0], VW, o);
        }
        float *d = dw + kc0 * 9;
        for (int u = 0; u < nk; u++)
            for (int rs = 0; rs < 9; rs++) d[u * 9 + rs] = o[rs][u];
    }
}

/* g_kernel on 16 kernels at a time, f[r * 3 + s][kernel] -> u[point][kernel]:
 * the same operations lane by lane (its divisions were a tenth of a layer's
 * time when run one kernel at a time). */
static void g_kernel16(const float f[9][16], float u[][16]) {
    v16f t[6][3];
    for (int s = 0; s < 3; s++) {
        const v16f a = *(const v16f *)f[s], b = *(const v16f *)f[3 + s], c = *(const v16f *)f[6 + s];
        t[0][s] = 0.25f * a;
        t[1][s] = -(a + b + c) / 6.0f;
        t[2][s] = -(a - b + c) / 6.0f;
        t[3][s] = a / 24.0f + b / 12.0f + c / 6.0f;
        t[4][s] = a / 24.0f - b / 12.0f + c / 6.0f;
        t[5][s] = c;
    }
    for (int i = 0; i < 6; i++) {
        const v16f a = t[i][0], b = t[i][1], c = t[i][2];
        *(v16f *)u[i * 6 + 0] = 0.25f * a;
        *(v16f *)u[i * 6 + 1] = -(a + b + c) / 6.0f;
        *(v16f *)u[i * 6 + 2] = -(a - b + c) / 6.0f;
        *(v16f *)u[i * 6 + 3] = a / 24.0f + b / 12.0f + c / 6.0f;
        *(v16f *)u[i * 6 + 4] = a / 24.0f - b / 12.0f + c / 6.0f;
        *(v16f *)u[i * 6 + 5] = c;
    }
}

const struct sgi_wino_tf sgi_wino_f4 = {4, 6, 0, input_tiles, output_tiles, grad_tiles,
                                        g_kernel, g_kernel16, weight_grad_out};
