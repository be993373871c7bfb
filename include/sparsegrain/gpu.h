/* sparsegrain/gpu.h - a pruned layer in the formats NVIDIA's GPU libraries take.
 *
 * A conv layer is an implicit GEMM: Y[K][N*P*Q] = W[K][R*S*C] x B[R*S*C][N*P*Q], where
 * B holds the input patches (im2col). The weight matrix's columns are taken in
 * (r, s, c) order with C padded to `cpad` (zero columns): then an N:M group of our
 * pruning library (M consecutive channels at one k, r, s) is M consecutive columns, and
 * a block tile bs x bs x 1 x 1 is one bs x bs block of the matrix, which is what the
 * sparse tensor cores (2:4) and cuSPARSE's blocked formats need. An FC layer is the same
 * with R = S = 1.
 *
 *     float *a = malloc(sg_gpu_matrix_size(&v, cpad) * sizeof *a);
 *     uint8_t *am = malloc(sg_gpu_matrix_size(&v, cpad));
 *     sg_gpu_matrix(&v, cpad, a, am);          // K x R*S*cpad, row-major, masked
 *     struct sg_gpu_bsr b;
 *     if (sg_gpu_bsr_encode(a, am, v.k, v.r * v.s * cpad, 16, &b) == SG_OK) {
 *         ...                                   // b.row_ptr, b.col, b.val to the device
 *         sg_gpu_bsr_free(&b);
 *     }
 *
 * Formats (each has encode, decode back to the dense matrix, free; decode checks the
 * arrays and fails with SG_ERR_FORMAT on any inconsistency, so it also serves as a
 * validator):
 *   CSR          row_ptr[rows+1], col[nnz], val[nnz]; zero-based, columns ascending
 *                (cusparseCreateCsr).
 *   BSR          the matrix padded to multiples of bs; row_ptr[mb+1], col[nnzb],
 *                val[nnzb][bs][bs] row-major inside a block (cusparseCreateBsr with
 *                CUSPARSE_ORDER_ROW); a block is stored when any of its weights is kept.
 *   Blocked-ELL  the matrix padded to multiples of bs; every block row has ell_cols/bs
 *                slots (the longest block row); col_ind[mb][ell_cols/bs] holds block
 *                columns, -1 for an empty slot; val is rows_p x ell_cols, row-major
 *                (cusparseCreateBlockedEll).
 *   2:4          at most 2 kept weights in every group of 4 consecutive columns; val
 *                is rows x cols_p/2 (the kept values of each group, in column order,
 *                zero-filled when a group keeps fewer than 2) and meta holds 2-bit
 *                positions: one nibble per group (first position in bits 0-1, second in
 *                bits 2-3, ascending), two groups per byte, low nibble first. This is the
 *                logical form that NVIDIA documents for sparse tensor cores; cuSPARSELt
 *                itself takes the dense 2:4 matrix and compresses it on the device into
 *                an opaque layout (cusparseLtSpMMACompress), so the benchmark hands it
 *                the dense matrix and this form serves to check our masks and sizes.
 *   thin         filter and channel pruning as a smaller dense matrix: the kept rows
 *                (filters) or kept channels, with their indices.
 *
 * Ownership: each encode fills a struct whose arrays the matching free releases;
 * free of a zeroed struct is a no-op. Limits: rows and columns below 2^31 (int32
 * indices, as cuSPARSE's 32-bit index type), bs in {1..64}.
 *
 * The benchmark's device part (sg_gpu_bench_*) exists only in a build made with
 * `make CUDA=1`; otherwise sg_gpu_available() fails with SG_ERR_UNSUPPORTED and says how
 * to build it. */
#ifndef SPARSEGRAIN_GPU_H
#define SPARSEGRAIN_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "sparsegrain/core.h"
#include "sparsegrain/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- value types ---- */
enum sg_gpu_dtype { SG_GPU_FP32 = 0, SG_GPU_TF32 = 1, SG_GPU_FP16 = 2, SG_GPU_BF16 = 3, SG_GPU_DTYPE_COUNT };
const char *sg_gpu_dtype_name(enum sg_gpu_dtype t);
int sg_gpu_dtype_from_name(const char *s); /* -1 if unknown */
/* bfloat16, round to nearest even; NaN stays NaN, overflow gives inf (binary16:
 * sg_f32_to_f16 and sg_f16_to_f32 of storage.h). */
uint16_t sg_f32_to_bf16(float f);
float sg_bf16_to_f32(uint16_t h);
/* n values to 16-bit storage of type t (SG_GPU_FP16 or SG_GPU_BF16). */
void sg_gpu_to_half(enum sg_gpu_dtype t, const float *x, size_t n, uint16_t *out);

/* ---- the layer as a GEMM operand ---- */
static inline int64_t sg_gpu_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
/* Entries of the K x R*S*cpad matrix (cpad >= C). */
size_t sg_gpu_matrix_size(const struct sg_wview *v, int64_t cpad);
/* W[k][c][r][s] to a[k][(r*S + s)*cpad + c] row-major, and its mask to am (either may be
 * NULL); padded channels are 0. */
enum sg_status sg_gpu_matrix(const struct sg_wview *v, int64_t cpad, float *a, uint8_t *am);

/* ---- formats ---- */
struct sg_gpu_csr {
    int64_t rows, cols, nnz;
    int32_t *row_ptr; /* rows + 1 */
    int32_t *col;     /* nnz, ascending in a row */
    float *val;       /* nnz */
};
struct sg_gpu_bsr {
    int64_t rows, cols; /* the matrix encoded */
    int bs;
    int64_t mb, kb, nnzb; /* block rows, block columns (padded), stored blocks */
    int32_t *row_ptr;     /* mb + 1 */
    int32_t *col;         /* nnzb */
    float *val;           /* nnzb * bs * bs, row-major in a block */
};
struct sg_gpu_bell {
    int64_t rows, cols; /* the matrix encoded */
    int bs;
    int64_t rows_p, cols_p; /* padded to multiples of bs */
    int64_t ell_cols;       /* slots per block row * bs */
    int32_t *col_ind;       /* rows_p/bs x ell_cols/bs, -1 for empty */
    float *val;             /* rows_p x ell_cols */
};
struct sg_gpu_24 {
    int64_t rows, cols; /* the matrix encoded */
    int64_t cols_p;     /* cols padded to a multiple of 8 */
    float *val;         /* rows x cols_p/2 */
    uint8_t *meta;      /* rows x cols_p/8 bytes: a nibble per group of 4 */
};
struct sg_gpu_thin {
    int64_t rows, cols;       /* the full matrix */
    int64_t keep_rows, keep_ch; /* kept filters and kept channels */
    int64_t rs, cpad;         /* columns are (r*S+s)*cpad + c */
    int32_t *row_idx;         /* keep_rows kept filters */
    int32_t *ch_idx;          /* keep_ch kept channels */
    float *val;               /* keep_rows x rs*keep_ch, (r*S+s)*keep_ch + j */
};

/* a: rows x cols row-major values; am: its mask (1 kept). Weights with mask 0 are left
 * out whatever their value; kept zeros stay stored. */
enum sg_status sg_gpu_csr_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols,
                                 struct sg_gpu_csr *out);
enum sg_status sg_gpu_csr_decode(const struct sg_gpu_csr *c, float *a);
void sg_gpu_csr_free(struct sg_gpu_csr *c);

enum sg_status sg_gpu_bsr_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs,
                                 struct sg_gpu_bsr *out);
enum sg_status sg_gpu_bsr_decode(const struct sg_gpu_bsr *b, float *a); /* rows x cols */
void sg_gpu_bsr_free(struct sg_gpu_bsr *b);

enum sg_status sg_gpu_bell_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs,
                                  struct sg_gpu_bell *out);
enum sg_status sg_gpu_bell_decode(const struct sg_gpu_bell *b, float *a);
void sg_gpu_bell_free(struct sg_gpu_bell *b);

/* Fails with SG_ERR_ARG naming the row and group when a group keeps more than 2. */
enum sg_status sg_gpu_24_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols,
                                struct sg_gpu_24 *out);
enum sg_status sg_gpu_24_decode(const struct sg_gpu_24 *s, float *a);
void sg_gpu_24_free(struct sg_gpu_24 *s);

/* A layer's matrix (K x rs*cpad, from sg_gpu_matrix) with its all-pruned filters
 * (by_rows) or all-pruned channels (!by_rows) left out. */
enum sg_status sg_gpu_thin_encode(const float *a, const uint8_t *am, int64_t k, int64_t rs, int64_t cpad,
                                  int by_rows, struct sg_gpu_thin *out);
enum sg_status sg_gpu_thin_decode(const struct sg_gpu_thin *t, float *a); /* k x rs*cpad */
void sg_gpu_thin_free(struct sg_gpu_thin *t);

/* ---- the benchmark's device part (make CUDA=1) ----
 * One layer at a time: sg_gpu_bench_layer makes a random NHWC input on the device;
 * each sg_gpu_bench_run uploads one operand, builds its im2col matrix (not timed),
 * times the library call alone with CUDA events (warm-up runs, then the median of
 * `repeat` runs; the libraries' own algorithm searches run before and are not timed)
 * and compares the output on the device with a dense GEMM (fp32 accumulation and
 * output) of the layer's masked weights `ref`. A library that refuses an operand
 * (unsupported type or shape) gives ok = 0 and a note, not an error; errors are what
 * leaves the device unusable. */
/* SG_OK when this build has the GPU part and a GPU answers; name gets the GPU's model. */
enum sg_status sg_gpu_available(char *name, size_t cap);

struct sg_gpu_shape {
    int64_t n, c, h, w;    /* input batch, channels, plane */
    int64_t k, r, s;       /* filters, kernel */
    int64_t stride, pad;
    int64_t p, q;          /* output plane */
};
struct sg_gpu_bench_cfg {
    enum sg_gpu_dtype dtype;
    int warmup, repeat;    /* untimed runs, timed runs (the median counts) */
    uint64_t seed;         /* of the random inputs */
};
enum sg_gpu_kind {
    SG_GPUK_DENSE = 0, /* a: cuBLAS GEMM, and cuDNN convolution when cpad == C */
    SG_GPUK_THIN = 1,  /* thin: the smaller dense layer through cuBLAS and cuDNN */
    SG_GPUK_24 = 2,    /* a (2:4 along the columns): cuSPARSELt */
    SG_GPUK_BSR = 3,   /* bsr: cuSPARSE SpMM */
    SG_GPUK_BELL = 4,  /* bell: cuSPARSE SpMM (Blocked-ELL) */
    SG_GPUK_CSR = 5,   /* csr: cuSPARSE SpMM */
    SG_GPUK_COUNT
};
struct sg_gpu_op {
    enum sg_gpu_kind kind;
    const float *ref;  /* K x R*S*C masked weights, (r, s, c) columns: the reference */
    int64_t cpad;      /* the operand's columns are (r*S + s)*cpad + c (not thin) */
    const float *a;    /* dense, 2:4: K x R*S*cpad */
    const struct sg_gpu_thin *thin;
    const struct sg_gpu_csr *csr;
    const struct sg_gpu_bsr *bsr;
    const struct sg_gpu_bell *bell;
};
struct sg_gpu_result {
    int ok;              /* ran and matched the reference */
    double ms;           /* median time of the library call */
    double max_rel_err;  /* max |y - ref| / max |ref| */
    char lib[64];        /* the library and variant that was fastest */
    char note[256];      /* why not ok; variants that were refused */
};
struct sg_gpu_bench;
enum sg_status sg_gpu_bench_open(const struct sg_gpu_bench_cfg *cfg, struct sg_gpu_bench **out);
void sg_gpu_bench_close(struct sg_gpu_bench *b);
const char *sg_gpu_bench_device(const struct sg_gpu_bench *b); /* the GPU's model */
const char *sg_gpu_bench_libs(const struct sg_gpu_bench *b);   /* library versions, cuSPARSELt's state */
/* Measured dense peak of this dtype: cuBLAS on an 8192^3 GEMM, TFLOP/s. */
double sg_gpu_bench_peak(const struct sg_gpu_bench *b);
enum sg_status sg_gpu_bench_layer(struct sg_gpu_bench *b, const struct sg_gpu_shape *g);
enum sg_status sg_gpu_bench_run(struct sg_gpu_bench *b, const struct sg_gpu_op *op, struct sg_gpu_result *r);

#ifdef __cplusplus
}
#endif
#endif
