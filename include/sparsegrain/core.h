/* sparsegrain/core.h - status codes, errors, RNG, threads, checked file I/O.
 *
 * Every fallible library call returns enum sg_status (SG_OK = 0, negative on
 * failure) and leaves a human-readable message in a per-thread buffer:
 *
 *     struct sg_model *m;
 *     enum sg_status st = sg_model_load("lenet5.sgm", &m);
 *     if (st != SG_OK) {
 *         fprintf(stderr, "error: %s\n", sg_last_error());
 *         return 1;
 *     }
 *
 * Files are written atomically through struct sg_writer: the bytes go to a
 * temporary file beside the target, which is fsync'ed and renamed over the
 * target on commit, so a crash never leaves a half-written file.
 *
 *     struct sg_writer *w;
 *     if (sg_writer_open(path, &w) == SG_OK) {
 *         sg_writer_write(w, buf, len);
 *         st = sg_writer_commit(w);      // frees w in every case
 *     }
 *
 * Ownership: buffers returned through out-parameters belong to the caller and
 * are released with free() unless a matching sg_x_free exists.
 * Limits: sg_file_read refuses files larger than the caller's max_bytes.
 */
#ifndef SPARSEGRAIN_CORE_H
#define SPARSEGRAIN_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_VERSION_STRING "0.1.0"

enum sg_status {
    SG_OK = 0,
    SG_ERR_NOMEM = -1,       /* an allocation failed */
    SG_ERR_IO = -2,          /* open/read/write/rename failed */
    SG_ERR_FORMAT = -3,      /* a file or blob is malformed */
    SG_ERR_ARG = -4,         /* an argument is out of range or inconsistent */
    SG_ERR_UNSUPPORTED = -5, /* valid input we cannot handle (op, dtype, ...) */
    SG_ERR_LIMIT = -6,       /* input exceeds a documented limit */
    SG_ERR_INTERRUPTED = -7, /* the caller asked to stop */
    SG_ERR_MISMATCH = -8,    /* shapes or architectures do not match */
};

const char *sg_status_name(enum sg_status st);
/* The message of the last failure on this thread ("" if none). */
const char *sg_last_error(void);
void sg_clear_error(void);

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */
typedef struct sg_rng {
    uint64_t s[4];
} sg_rng;

void sg_rng_seed(sg_rng *r, uint64_t seed);
uint64_t sg_rng_next(sg_rng *r);
double sg_rng_uniform(sg_rng *r);             /* [0, 1) */
uint64_t sg_rng_below(sg_rng *r, uint64_t n); /* [0, n), unbiased; n > 0 */
float sg_rng_normal(sg_rng *r);               /* N(0, 1), Box-Muller */
/* Fisher-Yates shuffle of idx[0..n). */
void sg_rng_shuffle(sg_rng *r, uint32_t *idx, size_t n);

/* ---- threads: OpenBLAS and our own parallel loops ---- */
void sg_set_threads(int n); /* n <= 0: number of online cores */
int sg_get_threads(void);
/* The BLAS library in use and its kernel family, e.g. "...libopenblas.so.0 (SkylakeX)". */
const char *sg_blas_info(void);
/* Loads OpenBLAS (once); SG_ERR_UNSUPPORTED, with a message saying what to install,
 * when it is missing. Executors and layer plans call it before their first GEMM. */
enum sg_status sg_blas_load(void);
/* The OpenBLAS kernel family that suits this CPU ("SkylakeX", "Haswell") or NULL.
 * OpenBLAS 0.3.21 does not know recent Xeons and falls back to 5x slower kernels:
 * a program sets OPENBLAS_CORETYPE to this, when the user has not, before the first
 * BLAS call (the library never touches the environment). */
const char *sg_blas_coretype(void);

/* Monotonic wall time in seconds. */
double sg_now(void);

/* ---- memory limit ----
 * No single allocation of the library may exceed this many bytes: a larger request
 * fails with SG_ERR_NOMEM and a message naming the limit, before any memory is taken.
 * Readers of untrusted files check the sizes a file claims against it before they
 * allocate. The default is the machine's physical memory; 0 restores it. A program
 * that opens files from strangers on a shared machine may set less. */
void sg_set_alloc_limit(size_t bytes);
size_t sg_alloc_limit(void);

/* ---- checked file I/O ---- */
/* Reads a whole file; gzip files (magic 1f 8b) are inflated when gunzip != 0.
 * Fails with SG_ERR_LIMIT when the (inflated) size exceeds max_bytes. */
enum sg_status sg_file_read(const char *path, size_t max_bytes, int gunzip, uint8_t **out,
                            size_t *len);

struct sg_writer;
enum sg_status sg_writer_open(const char *path, struct sg_writer **out);
enum sg_status sg_writer_write(struct sg_writer *w, const void *buf, size_t len);
/* fsync + rename over the target; frees w whatever the outcome. */
enum sg_status sg_writer_commit(struct sg_writer *w);
/* Removes the temporary file; frees w. sg_writer_abort(NULL) is a no-op. */
void sg_writer_abort(struct sg_writer *w);
/* Writes len bytes to path atomically (open + write + commit). */
enum sg_status sg_file_write_atomic(const char *path, const void *buf, size_t len);

/* ---- weight tensors as every subsystem sees them ---- */
/* A layer's weights viewed as W[K][C][R][S], row-major (fully connected: R = S = 1;
 * grouped conv: C is the channels per group). mask has the same length (1 kept,
 * 0 pruned); pruned weights are 0 in w. */
struct sg_wview {
    const char *name;
    int64_t k, c, r, s;
    float *w;
    uint8_t *mask;
    int is_fc;
};
static inline int64_t sg_wview_count(const struct sg_wview *v) { return v->k * v->c * v->r * v->s; }

/* A pruning group as a tile of W[K][C][R][S], gk x gc x gr x gs; tiles at the
 * tensor's edges are clipped. fine 1x1x1x1, vector (rows) 1x1x1xS, vector
 * (columns) 1x1xRx1, kernel 1x1xRxS, filter 1xCxRxS, channel Kx1xRxS. */
struct sg_tile {
    int64_t k, c, r, s;
};

/* ---- progress reporting (the library never prints) ---- */
struct sg_progress {
    const char *stage;  /* "train", "retrain", "eval", ... */
    int64_t step, total;  /* batches done / in this stage */
    int epoch, epochs;    /* 1-based epoch and total, 0 if not applicable */
    double loss;          /* running mean loss of the stage */
    double accuracy;      /* running top-1 fraction, -1 if unknown */
    double images_per_s;
    double eta_s;         /* estimated seconds left in the stage, -1 if unknown */
};
/* Returning non-zero asks the library to stop (SG_ERR_INTERRUPTED). */
typedef int (*sg_progress_fn)(void *ctx, const struct sg_progress *p);

#ifdef __cplusplus
}
#endif
#endif
