/* sparsegrain/infer.h - fast CPU inference that exploits each pruning granularity.
 *
 * Two levels. A *plan* turns one conv or fully connected layer (weights, mask,
 * bias) into the kernel that suits its sparsity structure, once; running it is
 * then a pure function of the input. An *inference executor* walks a model graph
 * with a plan per conv/fc layer and the ordinary kernels for every other op.
 *
 *     // one layer: W[K][C][R][S] with its mask; x and y are channel-major [C][N][H][W]
 *     struct sg_conv_geom g = {.n = 1, .c = 64, .h = 56, .w = 56, .k = 128, .r = 3, .s = 3,
 *                              .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1,
 *                              .dh = 1, .dw = 1, .groups = 1};
 *     sg_conv_geom_finish(&g);
 *     struct sg_conv_plan *p;
 *     sg_conv_plan_new(&g, 0, w, mask, bias, SG_KIND_AUTO, &p);   // kind chosen from the mask
 *     sg_conv_plan_run(p, 1, x, y);
 *     sg_conv_plan_free(p);
 *
 *     // a whole model, picking dense or sparse per layer by measurement
 *     struct sg_infer_cfg cfg;
 *     sg_infer_cfg_default(&cfg);
 *     cfg.engine = SG_ENGINE_AUTO;
 *     cfg.batch = 256;
 *     cfg.model_path = "vgg7-kernel.sgm";   // auto caches its choice in vgg7-kernel.sgm.engine
 *     struct sg_infer *inf;
 *     sg_infer_new(m, &cfg, &inf);
 *     struct sg_infer_result r;
 *     sg_infer_evaluate(inf, test_set, &r);  // r.top1, r.images_per_s
 *     sg_infer_free(inf);
 *
 * Kernels (enum sg_conv_kind): dense (our im2col + sgemm); thin (filter and
 * channel pruning: a physically smaller dense layer over the kept filters and the
 * input channels that still have weights); kernel (1 x R*S blocks), vector (1 x S
 * or R x 1 blocks), nm (N of every M along C, values plus packed indices) and
 * fine (CSR of single weights) are block-sparse products against a tile of the
 * im2col matrix built in L1 on the fly; winograd (3x3 stride-1 layers) is
 * Winograd F(4x4,3x3) where each kept 3x3 kernel is one sparse entry shared by
 * the 36 transform points (kernel, filter and channel pruning). Every kind
 * computes the same function for every mask (a kind that does not match the
 * mask stores the zeros it needs), so any kind may be forced (winograd only on
 * 3x3 stride-1 layers); SG_KIND_AUTO picks the one that matches the mask.
 * Winograd rounds differently from a direct sum: differences of about 1e-5 of
 * the output's largest magnitude, against about 1e-6 for the other kinds.
 *
 * Ownership: a plan copies what it needs from the weights; the caller's arrays
 * may be freed after sg_conv_plan_new. A plan owns scratch memory and is not
 * safe to run from two threads at once. The executor keeps a pointer to the
 * model (non-conv parameters such as batch norm are read at run time): the model
 * must outlive it and its weights must not change (rebuild the executor).
 * Threads: kernels use OpenMP with the count set by sg_set_threads; results do
 * not depend on it for the sparse kinds (every output is summed by one thread in
 * a fixed order) and, for dense and thin, are deterministic for a given count.
 * Limits: sparse kinds need groups == 1 (other convolutions run dense);
 * winograd needs a 3x3 kernel, stride 1, no dilation, and n*H*W < 2^31; the nm
 * kind needs N * ceil(log2 M) <= 32 and 2 <= M <= 256; dimensions up to 2^24
 * and 2^34 weights per layer.
 */
#ifndef SPARSEGRAIN_INFER_H
#define SPARSEGRAIN_INFER_H

#include "sparsegrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are written in engine cache files: explicit, append-only. */
enum sg_conv_kind {
    SG_KIND_DENSE = 0,  /* im2col + sgemm on all weights */
    SG_KIND_THIN = 1,   /* dense on the kept filters x kept input channels */
    SG_KIND_KERNEL = 2, /* 1 x (R*S) blocks: per filter its kept input channels */
    SG_KIND_VECTOR = 3, /* 1 x S blocks (rows), or R x 1 with vector columns */
    SG_KIND_NM = 4,     /* N of every M weights along C: values + packed indices */
    SG_KIND_FINE = 5,   /* single weights (per-tap groups; 1x1 and fc: CSR rows, u16 deltas) */
    SG_KIND_AUTO = 6,   /* not a kernel: choose from the mask (sg_conv_plan_new) */
    SG_KIND_WINOGRAD = 7, /* 3x3 stride 1: Winograd F(4x4,3x3) over the kept kernels */
    SG_KIND_COUNT
};
const char *sg_conv_kind_name(enum sg_conv_kind k);
int sg_conv_kind_from_name(const char *s); /* -1 if unknown */

struct sg_conv_plan;

/* Optional knobs of sg_conv_plan_new (NULL = defaults). */
struct sg_conv_plan_opts {
    int nm_m;        /* nm: group length M along C; 0 = detect (4 if nothing fits) */
    int vector_cols; /* vector: 1 = R x 1 column blocks, 0 = 1 x S rows, -1 = detect */
};

/* g: the layer geometry (g->n is ignored, the batch is given at run time; p, q
 * must be filled by sg_conv_geom_finish). is_fc: a fully connected layer, g has
 * c = inputs, k = outputs, h = w = r = s = 1. w: W[K][C/groups][R][S]; mask may
 * be NULL (then non-zero weights are the kept ones), else weights whose mask is
 * 0 are treated as 0. bias may be NULL. */
enum sg_status sg_conv_plan_new(const struct sg_conv_geom *g, int is_fc, const float *w,
                                const uint8_t *mask, const float *bias, enum sg_conv_kind kind,
                                const struct sg_conv_plan_opts *opts, struct sg_conv_plan **out);
void sg_conv_plan_free(struct sg_conv_plan *p);
/* y[K][n][P][Q] = conv(x[C][n][H][W]) + bias, channel-major (fc: y[K][n] = W x[C][n] + b).
 * x and y must not overlap. */
enum sg_status sg_conv_plan_run(struct sg_conv_plan *p, int n, const float *x, float *y);
/* The kind SG_KIND_AUTO would choose for this mask, without building a plan. */
enum sg_conv_kind sg_conv_plan_suggest(const struct sg_conv_geom *g, int is_fc, const float *w,
                                       const uint8_t *mask);

struct sg_conv_plan_info {
    enum sg_conv_kind kind;
    int64_t weights;         /* K * C/groups * R * S */
    int64_t nnz;             /* kept (non-zero) weights */
    int64_t kept_filters;    /* filters with a kept weight */
    int64_t kept_channels;   /* input channels with a kept weight in some filter */
    int64_t stored;          /* weights the kernel multiplies (nnz plus zeros kept in blocks) */
    int nm_n, nm_m;          /* nm kind */
    int vector_cols;         /* vector kind: 1 when blocks are columns */
    size_t bytes;            /* memory of the plan's weights and indices */
};
void sg_conv_plan_get_info(const struct sg_conv_plan *p, struct sg_conv_plan_info *info);

/* ---- the inference executor ---- */
enum sg_engine {
    SG_ENGINE_DENSE = 0,  /* every layer dense, as sg_forward */
    SG_ENGINE_SPARSE = 1, /* every conv/fc layer with the kernel its mask suggests */
    SG_ENGINE_AUTO = 2,   /* per layer the faster of the two, measured */
    SG_ENGINE_COUNT
};
const char *sg_engine_name(enum sg_engine e);
int sg_engine_from_name(const char *s); /* -1 if unknown */

struct sg_infer_cfg {
    enum sg_engine engine;
    int batch;              /* largest batch a forward takes (and the batch auto measures) */
    const char *model_path; /* auto: the model's file; the choice is cached in PATH.engine.
                               NULL: measure every time, write nothing */
    int auto_repeats;       /* auto: timed runs per engine and layer (best is kept) */
    enum sg_conv_kind kernel; /* sparse/auto: SG_KIND_AUTO (from each mask), or a kind forced
                                 on every conv/fc layer that supports it (others: auto) */
};
/* sparse, batch 256, no cache, 3 repeats, kernel auto */
void sg_infer_cfg_default(struct sg_infer_cfg *c);

struct sg_infer;
/* Builds the plans (and, with auto, measures or reads the cache). */
enum sg_status sg_infer_new(const struct sg_model *m, const struct sg_infer_cfg *cfg,
                            struct sg_infer **out);
void sg_infer_free(struct sg_infer *inf);
/* x: [n][in_c][in_h][in_w] (NCHW), n <= cfg.batch. */
enum sg_status sg_infer_forward(struct sg_infer *inf, const float *x, int n);
/* Logits of the last forward into out[n][n_classes]. */
void sg_infer_logits(const struct sg_infer *inf, float *out);
/* Output of a node after the last forward, channel-major [c][n][h][w]. */
const float *sg_infer_output(const struct sg_infer *inf, int32_t node, int *n_out);

struct sg_infer_result {
    double top1, top5;     /* fractions */
    int64_t n;             /* images */
    double seconds;        /* in sg_infer_forward only (no data loading or normalising) */
    double images_per_s;   /* n / seconds */
    double ms_per_batch;   /* seconds / batches, in ms */
};
/* Top-1/top-5 over the whole data set in batches of cfg.batch (ties count as
 * correct, as sg_evaluate). */
enum sg_status sg_infer_evaluate(struct sg_infer *inf, const struct sg_dataset *d,
                                 struct sg_infer_result *r);

/* Per conv/fc layer: what runs and how long it took. */
struct sg_infer_layer {
    const char *name;         /* node name */
    int32_t node;
    enum sg_engine engine;    /* SG_ENGINE_DENSE or SG_ENGINE_SPARSE */
    struct sg_conv_plan_info plan;
    double density;           /* nnz / weights */
    double auto_dense_s;      /* auto: best measured time of each engine, -1 if not measured */
    double auto_sparse_s;
    int from_cache;           /* auto: the choice came from the cache file */
    double seconds;           /* accumulated in forwards since sg_infer_new */
    int64_t calls;
};
int32_t sg_infer_layer_count(const struct sg_infer *inf);
void sg_infer_layer_get(const struct sg_infer *inf, int32_t i, struct sg_infer_layer *out);
/* What happened to the auto engine's cache file. A cache that cannot be read
 * (missing, stale, malformed) is measured again and rewritten; one that cannot be
 * written leaves inference working and says why in the note. */
enum sg_cache_state {
    SG_CACHE_UNUSED = 0,  /* engine is not auto, or no model_path */
    SG_CACHE_READ = 1,    /* every choice came from the file */
    SG_CACHE_WRITTEN = 2, /* measured now and saved */
    SG_CACHE_FAILED = 3,  /* measured now; saving failed (see the note) */
};
enum sg_cache_state sg_infer_cache_state(const struct sg_infer *inf, const char **note);

#ifdef __cplusplus
}
#endif
#endif
