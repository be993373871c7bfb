/* Internals shared across the library (sgi_ prefix): error setting, asserts,
 * checked allocation, growable byte buffers and bounds-checked readers.
 * Not installed; public API is in include/sparsegrain/. */
#ifndef SPARSEGRAIN_SGI_H
#define SPARSEGRAIN_SGI_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsegrain/core.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__)
#define SGI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SGI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SGI_PRINTF(a, b)
#define SGI_UNLIKELY(x) (x)
#endif

/* Sets the per-thread message and returns st, so callers write
 *     return sgi_error(SG_ERR_FORMAT, "%s: truncated at byte %zu", path, off); */
enum sg_status sgi_error(enum sg_status st, const char *fmt, ...) SGI_PRINTF(2, 3);
/* Prefixes the current message with "<prefix>: " (adds context on the way up). */
enum sg_status sgi_error_prefix(enum sg_status st, const char *prefix);
/* Threads of a team that may fail: this thread's (thread-local) message copied into
 * keep[n] unless another's is there already, so that the caller can report it. */
void sgi_error_keep(char *keep, size_t n);

/* Bugs only: prints file:line and aborts. Never for input validation. */
#define SG_ASSERT(x)                                                                   \
    do {                                                                               \
        if (SGI_UNLIKELY(!(x))) sgi_assert_fail(#x, __FILE__, __LINE__);               \
    } while (0)
_Noreturn void sgi_assert_fail(const char *expr, const char *file, int line);

/* Overflow-checked arithmetic on sizes: return 0 on overflow. */
static inline int sgi_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int sgi_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* n rounded up to a multiple of 16 (of floats: whole 64-byte cache lines). */
static inline size_t sgi_round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Sums kept in 16 float lanes, as native vectors: one of 16 lanes on AVX-512
 * builds, SGI_VH = 2 of SGI_VL = 8 elsewhere (lane k of the 16 is lane k % SGI_VL
 * of vector k / SGI_VL: the same operations in the same order on either build).
 * GCC lowers a 64-byte vector type without AVX-512 through the stack, and its
 * comparisons lane by lane in scalar code (BN's gated sums ran 3x slower on AVX2). */
#ifdef __AVX512F__
#define SGI_VL 16
#else
#define SGI_VL 8
#endif
#define SGI_VH (16 / SGI_VL)
typedef float sgi_vf __attribute__((vector_size(SGI_VL * 4), aligned(4), may_alias));
typedef int32_t sgi_vi __attribute__((vector_size(SGI_VL * 4), aligned(4), may_alias));

#ifdef __AVX2__
#include <immintrin.h>
/* The first n of 8 float lanes as an AVX2 mask (every bit of lane i set where i < n),
 * for masked loads and stores of a vector's tail. */
static inline __m256i sgi_lanes8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* Lane i of 8 set where bit i of bits is (bits above 7 ignored): a 16-lane mask's
 * halves as AVX2 masks, bits & 255 and bits >> 8. */
static inline __m256i sgi_bits8(unsigned bits) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(bits & 255u)), sel), sel);
}
#endif

/* 1 when n * size bytes neither overflow nor exceed sg_alloc_limit(); else 0 with
 * the SG_ERR_NOMEM message set. For sizes a file claims, before allocating them. */
int sgi_alloc_ok(size_t n, size_t size);
/* Allocation that sets SG_ERR_NOMEM text on failure. Aligned to 64 bytes;
 * release with free(). n * size is overflow-checked and bounded by sg_alloc_limit(). */
void *sgi_alloc(size_t n, size_t size);
void *sgi_zalloc(size_t n, size_t size);

/* ---- growable byte buffer for writers ---- */
struct sgi_buf {
    uint8_t *data;
    size_t len, cap;
    int failed; /* sticky: set on allocation failure */
};
void sgi_buf_reserve(struct sgi_buf *b, size_t extra);
void sgi_buf_put(struct sgi_buf *b, const void *p, size_t n);
void sgi_buf_u8(struct sgi_buf *b, uint8_t v);
void sgi_buf_u32(struct sgi_buf *b, uint32_t v); /* little-endian */
void sgi_buf_u64(struct sgi_buf *b, uint64_t v);
void sgi_buf_i32(struct sgi_buf *b, int32_t v);
void sgi_buf_f32(struct sgi_buf *b, float v);
void sgi_buf_f64(struct sgi_buf *b, double v);
void sgi_buf_str(struct sgi_buf *b, const char *s); /* u32 length + bytes */
void sgi_buf_pad(struct sgi_buf *b, size_t align);  /* zero bytes up to a multiple */
void sgi_buf_printf(struct sgi_buf *b, const char *fmt, ...) SGI_PRINTF(2, 3);
void sgi_buf_free(struct sgi_buf *b);

/* ---- bounds-checked reader over untrusted bytes ---- */
struct sgi_cur {
    const uint8_t *p;
    size_t len, off;
    const char *what; /* file name for messages */
    int bad;          /* sticky: a read went past the end */
};
static inline void sgi_cur_init(struct sgi_cur *c, const void *p, size_t len, const char *what) {
    c->p = (const uint8_t *)p;
    c->len = len;
    c->off = 0;
    c->what = what;
    c->bad = 0;
}
int sgi_cur_need(struct sgi_cur *c, size_t n); /* 1 if n bytes remain, else marks bad */
uint8_t sgi_cur_u8(struct sgi_cur *c);
uint32_t sgi_cur_u32(struct sgi_cur *c);
uint64_t sgi_cur_u64(struct sgi_cur *c);
int32_t sgi_cur_i32(struct sgi_cur *c);
float sgi_cur_f32(struct sgi_cur *c);
double sgi_cur_f64(struct sgi_cur *c);
const uint8_t *sgi_cur_bytes(struct sgi_cur *c, size_t n); /* NULL if short */
/* Reads a u32-length string into dst (NUL-terminated); fails if >= cap. */
int sgi_cur_str(struct sgi_cur *c, char *dst, size_t cap);
static inline size_t sgi_cur_left(const struct sgi_cur *c) { return c->len - c->off; }

/* Little-endian loads/stores. */
static inline uint32_t sgi_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sgi_ld64(const uint8_t *p) {
    return (uint64_t)sgi_ld32(p) | (uint64_t)sgi_ld32(p + 4) << 32;
}
static inline uint32_t sgi_ld32be(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Inflates gzip data in[0..inlen) (what = name for messages); SG_ERR_LIMIT when the
 * result would exceed max_bytes. *out is released with free(). */
enum sg_status sgi_gunzip(const char *what, const uint8_t *in, size_t inlen, size_t max_bytes,
                          uint8_t **out, size_t *len);

/* A whole regular file mapped read-only (private), for readers of large files that
 * consume it front to back: sgi_map_release(m, p, n) tells the kernel the bytes at
 * p..p+n are done with, so they leave this process's resident set (they stay in the
 * page cache), and a 550 MB model loads with its own size in memory, not twice it.
 * The file must not be truncated by another process while mapped (SIGBUS); our
 * writers replace files by rename, which leaves a mapped inode intact. */
struct sgi_map {
    const uint8_t *p;
    size_t len;
    size_t maplen; /* 0: p is not a mapping (empty file) */
};
enum sg_status sgi_file_map(const char *path, size_t max_bytes, struct sgi_map *m);
void sgi_map_release(const struct sgi_map *m, const void *p, size_t n);
void sgi_file_unmap(struct sgi_map *m);
/* memcpy(dst, src, n) from a mapping m (or from plain memory when m is NULL), in
 * chunks, releasing each source chunk once copied. */
void sgi_map_copy(const struct sgi_map *m, void *dst, const void *src, size_t n);

/* Inside an OpenMP parallel region: this thread's number and the team's size (0 and 1
 * without OpenMP). Loops that take chunks id, id + team, ... do every chunk whatever
 * team the runtime gives (fewer threads than asked when nested, say). */
static inline void sgi_omp_team(int *id, int *team) {
#ifdef _OPENMP
    *id = omp_get_thread_num(), *team = omp_get_num_threads();
#else
    *id = 0, *team = 1;
#endif
}

/* The threads for a parallel region started here: sg_get_threads(), or 1 inside one
 * already (sg_train's batch-parallel threads, each with a one-thread executor): a
 * nested region runs on one thread and still costs its start. */
static inline int sgi_region_threads(void) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    return sg_get_threads();
}

/* An OpenMP region whose team is one thread (an if clause that fails, a region inside
 * another, one thread set) still starts and ends a team: 2-5 us on the 2-core AMD EPYC
 * VM (a futex system call each, more when both threads do it at once), and a one-thread
 * LeNet-5 training step, as each of sg_train's batch-parallel threads runs one, started
 * 40-80 of them (products, im2col, pools, ReLUs): 0.1-0.3 ms a step. SGI_PAR_FOR(nt,
 * for-statement) shares the loop between nt threads (`omp parallel for
 * schedule(static)`) when nt > 1 and no region runs here, and otherwise runs it as it is,
 * with no region: the same iterations either way. Not for loops that read their thread
 * number (omp_get_thread_num() outside a region is the enclosing team's). */
#define SGI_PAR_FOR(nt, ...)                                                               \
    do {                                                                                   \
        const int sgi_nt_ = (nt);                                                          \
        if (sgi_nt_ > 1 && sgi_region_threads() > 1) {                                     \
            _Pragma("omp parallel for schedule(static) num_threads(sgi_nt_)") __VA_ARGS__  \
        } else {                                                                           \
            __VA_ARGS__                                                                    \
        }                                                                                  \
    } while (0)

/* [*a, *b): the iterations of [0, n) that thread t of a team of T takes under
 * `schedule(static)` (libgomp's split: the first n % T threads one more), for a loop
 * run in a region or, t 0 of 1, without one. */
static inline void sgi_static_range(int n, int t, int T, int *a, int *b) {
    const int q = n / T, r = n % T;
    *a = t * q + (t < r ? t : r);
    *b = *a + q + (t < r);
}

/* CRC-32 (zlib polynomial), incremental: crc = sgi_crc32(crc, p, n), start at 0. */
uint32_t sgi_crc32(uint32_t crc, const void *p, size_t n);

/* Row-major single-precision GEMM through OpenBLAS (src/core/blas.c):
 * C = alpha op(A) op(B) + beta C. */
void sgi_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);
void sgi_blas_threads(int n);
/* The same product through the library's own AVX-512 kernels (src/core/gemm.c):
 * op(A) B and A B^T; A^T B^T and builds without AVX-512 go to sgi_sgemm. Each entry
 * of C is one sum in a fixed order, whatever the shapes, slices and thread count. */
void sgi_sgemm_own(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* C = alpha sum over t < nk of A[:, ks[t]] B[ks[t], :] + beta C (A m x K, B K x n,
 * both row-major, not transposed): the product over the rows of B in ks (fully
 * connected layers skip the input features that dead channels hold at 0). The
 * kernels of sgi_sgemm_own with the k they visit read from ks: where the rows left
 * out of B are 0, the same bits as the whole product. */
void sgi_sgemm_own_ks(int m, int n, const int *ks, int nk, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc);

/* Sum of x[0..n) accumulated in double, fast (independent partial sums). */
double sgi_sum(const float *x, size_t n);
/* The mean of x[0..n) and the sum of squared deviations from it, in one pass over
 * memory: blocks of 4096 summed, then their deviations from the block's mean read
 * again from L1, the blocks joined in double (sgi_moments_join). As accurate as two
 * passes over the whole (each block's deviations are about its own mean). */
void sgi_mean_m2(const float *x, size_t n, double *mean, double *m2);
/* (n, mean, m2) of a set joined with a part's (nb, mb, m2b) (Chan et al., 1979). */
void sgi_moments_join(double *n, double *mean, double *m2, double nb, double mb, double m2b);

/* Path helpers. */
int sgi_has_suffix(const char *s, const char *suffix); /* case-insensitive */
const char *sgi_basename(const char *path);

#endif
