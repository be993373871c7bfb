/* Internals of the sparse layer plans (sparse_plan.c builds and dispatches,
 * sparse_block.c runs the block-sparse kinds, sparse_csr.c the CSR rows).
 * Not installed; the public side is include/sparsegrain/infer.h. */
#ifndef SPARSEGRAIN_NN_SPARSE_PLAN_H
#define SPARSEGRAIN_NN_SPARSE_PLAN_H

#include "core/sgi.h"
#include "sparsegrain/infer.h"

/* ---- 16-float vectors: AVX-512 intrinsics when the compiler targets them, two
 * AVX2 registers on AVX2 builds, else GCC vector extensions (same results up to
 * rounding: no fused multiply-add, since ISO C mode turns contraction off) ---- */
#define SGV_W 16
#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 sgv;
static inline sgv sgv_zero(void) { return _mm512_setzero_ps(); }
static inline sgv sgv_set1(float a) { return _mm512_set1_ps(a); }
static inline sgv sgv_load(const float *p) { return _mm512_load_ps(p); }
static inline sgv sgv_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline void sgv_store(float *p, sgv v) { _mm512_store_ps(p, v); }
static inline void sgv_storeu(float *p, sgv v) { _mm512_storeu_ps(p, v); }
static inline sgv sgv_fma(sgv a, sgv b, sgv c) { return _mm512_fmadd_ps(a, b, c); }
static inline sgv sgv_add(sgv a, sgv b) { return _mm512_add_ps(a, b); }
static inline sgv sgv_sub(sgv a, sgv b) { return _mm512_sub_ps(a, b); }
static inline sgv sgv_mul(sgv a, sgv b) { return _mm512_mul_ps(a, b); }
/* First n lanes (0 <= n <= 16); the others read nothing and are 0. */
static inline sgv sgv_loadu_n(const float *p, int n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
static inline void sgv_storeu_n(float *p, sgv v, int n) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
/* Lanes [lo, hi) of the 16 floats at byte address a (0 <= lo <= hi <= 16), others 0;
 * only the lanes in range are read, so a may point before or after the array.
 * An address, not a pointer: forming a pointer outside its array is undefined. */
static inline sgv sgv_load_range(uintptr_t a, int lo, int hi) {
    const __mmask16 m = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    return _mm512_maskz_loadu_ps(m, (const void *)a);
}
#elif defined(__AVX2__) && defined(__FMA__)
#define SGV_AVX2 1
/* Two 8-float halves (one AVX2 register each): the packed weights and tiles keep the
 * 16-float layout. A 64-byte GCC vector type here went through the stack (GCC has no
 * machine mode for it on AVX2): 2-20x slower than dense. */
#include <immintrin.h>
typedef struct {
    __m256 lo, hi;
} sgv;
static inline sgv sgv_zero(void) { return (sgv){_mm256_setzero_ps(), _mm256_setzero_ps()}; }
static inline sgv sgv_set1(float a) {
    const __m256 v = _mm256_set1_ps(a);
    return (sgv){v, v};
}
static inline sgv sgv_load(const float *p) { return (sgv){_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
static inline sgv sgv_loadu(const float *p) { return (sgv){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
static inline void sgv_store(float *p, sgv v) { _mm256_store_ps(p, v.lo), _mm256_store_ps(p + 8, v.hi); }
static inline void sgv_storeu(float *p, sgv v) { _mm256_storeu_ps(p, v.lo), _mm256_storeu_ps(p + 8, v.hi); }
static inline sgv sgv_fma(sgv a, sgv b, sgv c) {
    return (sgv){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
static inline sgv sgv_add(sgv a, sgv b) { return (sgv){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
static inline sgv sgv_sub(sgv a, sgv b) { return (sgv){_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
static inline sgv sgv_mul(sgv a, sgv b) { return (sgv){_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
/* Lanes [lo, hi) of the 8 at index base (masks of sgi_lanes8; a masked-off lane is
 * neither read nor written, so the address may lie outside the array) */
static inline __m256i sgv_mask8(int base, int lo, int hi) {
    return _mm256_andnot_si256(sgi_lanes8(lo - base), sgi_lanes8(hi - base));
}
static inline sgv sgv_load_range(uintptr_t a, int lo, int hi) {
    return (sgv){_mm256_maskload_ps((const float *)a, sgv_mask8(0, lo, hi)),
                 _mm256_maskload_ps((const float *)(a + 32), sgv_mask8(8, lo, hi))};
}
static inline sgv sgv_loadu_n(const float *p, int n) { return sgv_load_range((uintptr_t)p, 0, n); }
static inline void sgv_storeu_n(float *p, sgv v, int n) {
    _mm256_maskstore_ps(p, sgv_mask8(0, 0, n), v.lo);
    _mm256_maskstore_ps((float *)((uintptr_t)p + 32), sgv_mask8(8, 0, n), v.hi);
}
#else
typedef float sgv __attribute__((vector_size(64)));
static inline sgv sgv_zero(void) { return (sgv){0}; }
static inline sgv sgv_set1(float a) { return (sgv){0} + a; }
static inline sgv sgv_load(const float *p) { sgv v; memcpy(&v, p, sizeof v); return v; }
static inline sgv sgv_loadu(const float *p) { sgv v; memcpy(&v, p, sizeof v); return v; }
static inline void sgv_store(float *p, sgv v) { memcpy(p, &v, sizeof v); }
static inline void sgv_storeu(float *p, sgv v) { memcpy(p, &v, sizeof v); }
static inline sgv sgv_fma(sgv a, sgv b, sgv c) { return a * b + c; }
static inline sgv sgv_add(sgv a, sgv b) { return a + b; }
static inline sgv sgv_sub(sgv a, sgv b) { return a - b; }
static inline sgv sgv_mul(sgv a, sgv b) { return a * b; }
static inline sgv sgv_loadu_n(const float *p, int n) {
    float t[SGV_W] = {0};
    memcpy(t, p, (size_t)n * sizeof *t);
    return sgv_loadu(t);
}
static inline void sgv_storeu_n(float *p, sgv v, int n) {
    float t[SGV_W];
    sgv_storeu(t, v);
    memcpy(p, t, (size_t)n * sizeof *t);
}
static inline sgv sgv_load_range(uintptr_t a, int lo, int hi) {
    float t[SGV_W] = {0};
    for (int i = lo; i < hi; i++) t[i] = *(const float *)(a + 4 * (uintptr_t)i);
    return sgv_loadu(t);
}
#endif

/* Filters per chunk of the block kinds: the chunk's output tile (SGI_KC x up to
 * 48 floats = 24 KB) stays in L1 while every input channel streams past it
 * (64, 128 and 512 measured within 10% of each other on VGG-16 layers; 128 best). */
#define SGI_KC 128

/* Block-sparse weights (kinds kernel, vector, fine, nm), input-stationary: for
 * each chunk of SGI_KC filters, a list of groups (an input channel for kernel, a
 * row or column of it for vector, one tap of it for fine, a block of M channels
 * for nm); each group lists the filters of the chunk that use it ("entries",
 * u16 indices relative to the chunk) with their weights. A group with no entry
 * is not stored. Fine-grained weights are thus stored column-wise (CSC of the
 * C*R*S columns), which keeps every inner loop free of data-dependent trip
 * counts: a per-filter list of taps mispredicted at every entry (5x slower). */
struct sgi_blk {
    int32_t nchunk;
    int64_t ngroups, nentries, nvalues;
    int64_t *chunk_g;   /* [nchunk+1] groups of chunk i: [chunk_g[i], chunk_g[i+1]) */
    int32_t *g_c;       /* [ngroups] input channel (nm: first channel of the block) */
    int32_t *g_t0;      /* [ngroups] first tap r*S+s of the group (vector, fine), else 0 */
    int64_t *g_e;       /* [ngroups+1] entries of group i: [g_e[i], g_e[i+1]) */
    uint16_t *e_k;      /* [nentries] filter, relative to the chunk's first */
    uint8_t *meta;      /* nm: per (entry, tap) nm_mb bytes of packed channel indices */
    float *w;           /* [nvalues] (G per entry; nm: R*S*N per entry) */
    int G, tstride;     /* taps per group: kernel R*S, stride 1; vector rows S, 1;
                           columns R, S; fine 1 */
    int nm_n, nm_m, nm_bits, nm_mb;
};

/* CSR rows for 1x1 stride-1 convolutions and fully connected layers: row k has
 * values [rp[k], rp[k+1]); each value's column is the previous one's plus dc (the
 * first is relative to column 0). A gap beyond 65535 inserts filler values of 0. */
struct sgi_csr {
    int64_t *rp;        /* [K+1] */
    uint16_t *dc;       /* [nvalues] column deltas */
    float *w;           /* [nvalues] */
    int64_t nvalues;
};

/* Sparse Winograd F(4x4,3x3) (sparse_wino.c, products in sparse_wino_mm.c): the
 * kept (filter, channel) kernels as sparse rows per filter (rp: where each row's
 * entries would start in filter order, so rp[k] == rp[k+1] for a pruned filter),
 * transformed: u[xi][q] for each of the 36 points, the entries q stored block of
 * channels by block, each block's rows in order (seg). When every kept filter
 * uses every used channel (filter and channel pruning) the rows are stored dense
 * instead (ud), SGI_WRB at a time. */
#define SGI_WRB 24  /* dense rows: padding unit (the register blocks are 6 and 8 rows) */
struct sgi_wino {
    int64_t nnz;        /* kept kernels */
    int64_t *rp;        /* [K+1] */
    uint16_t *col;      /* [nnz] position of the channel among the used ones (16-bit: the
                           products read four per load; at most 65536 channels) */
    float *u;           /* sparse: [36][nnz] */
    int32_t *chans;     /* [nch] used input channels */
    int64_t nch;
    int64_t wcb, nb;    /* sparse rows: channels per block (V[xi] of a block in L1), blocks */
    int64_t nrows;      /* sparse: K */
    int64_t *seg;       /* sparse: [nb][K+1] row k's entries in block b are [seg[b*(K+1)+k],
                           seg[b*(K+1)+k+1]): the entries (u, col) block by block, row by row */
    int dense;          /* rows stored dense */
    int64_t nk, kp;     /* dense: kept filters, and rounded up to SGI_WRB */
    int32_t *krow;      /* dense: [kp] filter of each row, -1 for padding */
    float *ud;          /* dense: [36][kp][nch] */
    /* the direct tail's raw 3x3 kernels, by channel within blocks of SGI_WTRB
     * rows: block b's channel j has entries [tcp[b*(nch+1)+j], tcp[b*(nch+1)+j+1])
     * (its rows in order), each a row in the block and 9 weights */
    int64_t *tcp;
    uint8_t *trow;
    float *tg9;
};

struct sg_conv_plan {
    struct sg_conv_geom g; /* n unused */
    int is_fc;
    enum sg_conv_kind kind;
    struct sg_conv_plan_info info;
    float *bias;           /* [K] or NULL */
    /* dense */
    float *w;              /* dense: [K][C/g][R][S]; thin: [K'][C'][R][S] */
    /* thin */
    int32_t kk, cc;        /* kept filters and channels */
    int32_t *k_idx, *c_idx;
    float *bias_thin;      /* [K'] or NULL */
    int w_taps;            /* thin, stride 1: w is tap-major [R*S][K'][C'] (shifted sgemms) */
    int32_t *k_pos;        /* with w_taps: [K] position of filter k among the kept, or -1 */
    /* sparse */
    int use_csr;
    struct sgi_blk blk;
    struct sgi_csr csr;
    struct sgi_wino wino;
    /* scratch grown on demand (run is not reentrant) */
    float *ws;
    size_t ws_len;         /* floats */
};

/* Floats of scratch the block kinds need per thread for tile width TW. */
size_t sgi_blk_scratch(const struct sg_conv_plan *p, int tw);
/* Runs a block kind: y[K][n*P*Q]; scratch holds nthreads * sgi_blk_scratch floats. */
void sgi_blk_run(const struct sg_conv_plan *p, int n, const float *x, float *y, float *scratch,
                 int nthreads);
/* Builds p->blk from dense weights wm (masked: pruned entries are exactly 0) and
 * the keep test kept[i] (1 kept). */
enum sg_status sgi_blk_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept);
void sgi_blk_free(struct sgi_blk *b);

void sgi_csr_run(const struct sg_conv_plan *p, int n, const float *x, float *y);
enum sg_status sgi_csr_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept);
void sgi_csr_free(struct sgi_csr *c);

int sgi_wino_fits(const struct sg_conv_geom *g, int is_fc);
enum sg_status sgi_wino_build(struct sg_conv_plan *p, const float *wm, const uint8_t *kept);
void sgi_wino_free(struct sgi_wino *w);
size_t sgi_wino_scratch(const struct sg_conv_plan *p); /* floats per thread */
/* floats shared by the threads (after their nthreads scratch) for a batch of n */
size_t sgi_wino_shared(const struct sg_conv_plan *p, int n, int nthreads);
/* Floats between the points xi of V[36][nch][16T] (and likewise of M): one line
 * more than the data, so that the 36 points of a tile do not all fall into the
 * same cache set (the data is a multiple of 4 KB for most layers). */
static inline int64_t sgi_wino_pad(int64_t floats) { return floats + SGV_W; }
/* Products for filters [k0, k1) (sparse) or dense rows [r0, r1) at the points
 * xi in [x0, x1), for T vectors of tiles: V[36][nch][16T] (sgi_wino_pad(nch*16T)
 * floats apart per xi) -> M[xi][filter or row - first][16T], ms floats apart per xi. */
/* Points the sparse products take per pass over the rows (1 or 2: x0 and x1 then
 * even). */
int sgi_wino_points_per_pass(const struct sgi_wino *w, int T);
void sgi_wino_sparse_product(const struct sgi_wino *w, int64_t k0, int64_t k1, int x0, int x1,
                             const float *V, float *M, int64_t ms, int T);
void sgi_wino_dense_product(const struct sgi_wino *w, int64_t r0, int64_t r1, int x0, int x1,
                            const float *V, float *M, int64_t ms, int T);
void sgi_wino_run(const struct sg_conv_plan *p, int n, const float *x, float *y, float *scratch,
                  int nthreads);
/* The direct tail (sparse_wino_tail.c): at most SGI_WTAIL tiles past the last
 * full vector. The build takes the rows' raw kernels (rows: filters, or kept
 * dense rows) row by row, in filter and channel order (sparse [nnz][9] with their
 * channel positions col, dense [kp][nch][9]). Windows W[tile][9][16] of tiles [t0, t0+nt) of one channel's
 * planes xc; the block of SGI_WTRB rows from r0 (filters, or dense rows) of
 * those tiles into y, from the windows of every used channel (nt*144 floats
 * apart). */
#define SGI_WTAIL 2 /* VGG-16's 28x28 layers (one tile past): 0.885x the layer's
                       * time at kernel density 0.3 (fastest of 12 interleaved rounds,
                       * 256 and 512 channels); its 56x56 ones (four past, one chunk
                       * shared instead of whole chunks): 1.05-1.06x, so not there */
#define SGI_WTRB 64
enum sg_status sgi_wino_tail_build(struct sgi_wino *w, int64_t rows, const float *g9, const uint16_t *col);
void sgi_wino_tail_windows(const struct sg_conv_geom *g, const float *xc, int64_t t0, int nt, float *W);
void sgi_wino_tail_rows(const struct sg_conv_plan *p, int n, int64_t r0, int nt, int64_t t0, const float *W,
                        float *y);

/* Tile width (floats, a multiple of 16 up to 48) for L output columns: the one
 * wasting the fewest lanes in the last tile, wider on ties. */
int sgi_tile_width(int64_t L);

#endif
