/* sparsegrain/nn.h - models (a DAG of ops), parameters with masks, forward,
 * backward, SGD training and evaluation.
 *
 *     struct sg_model *m;
 *     sg_model_build("lenet5", 1, 28, 28, 10, 1234, &m);   // built-in network
 *     struct sg_train_cfg cfg;
 *     sg_train_cfg_default(&cfg);
 *     cfg.epochs = 15;
 *     sg_train(m, &train_set, &cfg, NULL);                  // masked SGD
 *     struct sg_eval_result r;
 *     sg_evaluate(m, &test_set, 256, &r);                   // r.top1 in [0, 1]
 *     sg_model_save(m, "lenet5.sgm");                       // see io.h
 *     sg_model_free(m);
 *
 * Parameters live in one arena (m->arena) and every parameter has a mask of the
 * same length in a parallel arena (m->mask, 1 = kept, 0 = pruned). Invariant kept
 * by every function here: arena[i] == 0 wherever mask[i] == 0, so forward passes
 * use the masked weights without multiplying; backward masks the gradient and the
 * optimizer keeps pruned weights and their momentum exactly zero.
 *
 * Activations inside the engine are stored channel-major, X[C][N][H][W] ("CNHW"),
 * so a convolution over a whole batch is one GEMM. Inputs given to sg_forward
 * are ordinary NCHW; logits come back as [N][classes].
 *
 * Weight layouts: conv W[K][C/groups][R][S] (OIHW, as PyTorch and ONNX), fully
 * connected W[K][C]. A model may have no graph at all (weights imported from a
 * file whose ops we cannot run): then only weights-only commands apply.
 */
#ifndef SPARSEGRAIN_NN_H
#define SPARSEGRAIN_NN_H

#include "sparsegrain/core.h"
#include "sparsegrain/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Op codes are stored in .sgm files: explicit values, append-only. */
enum sg_op {
    SG_OP_INPUT = 0,   /* the network input, [C][H][W] per sample */
    SG_OP_CONV = 1,    /* params: weight [K][C/g][R][S], bias [K] (optional) */
    SG_OP_FC = 2,      /* params: weight [K][C], bias [K] (optional); input must be flat */
    SG_OP_RELU = 3,
    SG_OP_MAXPOOL = 4, /* kh x kw window, stride, padding (pads never win the max) */
    SG_OP_AVGPOOL = 5, /* count_include_pad selects the divisor */
    SG_OP_GAP = 6,     /* global average pool to [C][1][1] */
    SG_OP_BN = 7,      /* params: gamma, beta, running mean, running var [C] */
    SG_OP_ADD = 8,     /* elementwise sum of all inputs (same shape) */
    SG_OP_FLATTEN = 9, /* [C][H][W] -> [C*H*W][1][1], PyTorch order */
    SG_OP_DROPOUT = 10,
    SG_OP_CONCAT = 11,  /* along channels */
    SG_OP_SOFTMAX = 12, /* over channels; identity for the loss (which applies its own) */
    SG_OP_COUNT
};
const char *sg_op_name(enum sg_op op);

enum sg_param_kind {
    SG_PARAM_WEIGHT = 0,
    SG_PARAM_BIAS = 1,
    SG_PARAM_BN_GAMMA = 2,
    SG_PARAM_BN_BETA = 3,
    SG_PARAM_BN_MEAN = 4, /* running statistics: not trained by SGD */
    SG_PARAM_BN_VAR = 5,
    SG_PARAM_OTHER = 6,   /* imported tensor that is not a layer weight */
    SG_PARAM_KIND_COUNT
};

/* What kind of layer a weight belongs to (decides its pruning scope). */
enum sg_layer_kind { SG_LAYER_NONE = 0, SG_LAYER_CONV = 1, SG_LAYER_FC = 2 };

#define SG_NAME_MAX 96
/* Values of one sample at any node's output (C*H*W): shape inference refuses more. */
#define SG_MAX_ACTIVATION ((1 << 30) - 1)
#define SG_MAX_INPUTS 16

struct sg_node {
    char name[SG_NAME_MAX];
    enum sg_op op;
    int32_t n_in, in[SG_MAX_INPUTS]; /* producers; every in[i] < this node's index */
    int32_t k;                       /* conv/fc: output channels */
    int32_t kh, kw;                  /* conv/pool window */
    int32_t sh, sw;                  /* strides */
    int32_t pt, pl, pb, pr;          /* padding top, left, bottom, right */
    int32_t dh, dw;                  /* dilations (conv) */
    int32_t groups;                  /* conv groups */
    int32_t has_bias;                /* conv/fc: finalize creates a bias [K] if param[1] < 0 */
    int32_t ceil_mode;               /* pools: output size rounds up */
    int32_t count_include_pad;       /* avgpool divisor */
    float eps, momentum;             /* BN: running = (1-momentum)*running + momentum*batch */
    float p;                         /* dropout probability */
    int32_t param[4];                /* indices into m->params, -1 if unused */
    int32_t c, h, w;                 /* output shape of one sample (set by sg_model_finalize) */
};

struct sg_param {
    char name[SG_NAME_MAX]; /* "conv2.weight" */
    enum sg_param_kind kind;
    enum sg_layer_kind layer; /* for weights: conv or fc */
    int32_t node;             /* owning node, -1 in a weights-only model */
    int32_t ndim;             /* 1..4 */
    int64_t dims[4];          /* conv: K, C/g, R, S; fc: K, C */
    size_t offset, count;     /* position in the arenas, number of elements */
};

#define SG_META_MAX 64
struct sg_meta_kv {
    char key[48];
    char value[464];
};

struct sg_model {
    char arch[32];                    /* "lenet5", "onnx", "tfjs", ... */
    int32_t in_c, in_h, in_w;         /* input shape of one sample (0 if unknown) */
    int32_t n_classes;                /* output width (0 if unknown) */
    int32_t n_nodes, cap_nodes;
    struct sg_node *nodes;            /* topological order; nodes[0] is the input */
    int32_t output;                   /* node giving the logits */
    int32_t n_params, cap_params;
    struct sg_param *params;
    size_t arena_len;                 /* elements in arena and mask */
    float *arena;                     /* every parameter, contiguous */
    uint8_t *mask;                    /* 1 kept, 0 pruned; same length */
    int32_t n_meta;
    struct sg_meta_kv meta[SG_META_MAX]; /* training/pruning history, key -> value */
    struct sg_preproc preproc;        /* how image bytes become its input (data.h); every
                                         function that feeds it images applies this */
    void *ext;                        /* importer data (e.g. the ONNX graph) */
    void (*ext_free)(void *ext);
    void *(*ext_clone)(const void *ext); /* NULL: clones drop ext */
};

/* ---- building ---- */
struct sg_model *sg_model_new(const char *arch, int in_c, int in_h, int in_w);
void sg_model_free(struct sg_model *m);
/* Appends a node; returns its index or -1 (error text set). Attributes not
 * relevant to the op are ignored; use sg_node_init for defaults. */
void sg_node_init(struct sg_node *n, enum sg_op op, const char *name);
int32_t sg_model_add(struct sg_model *m, const struct sg_node *n);
/* Appends a parameter of the given shape (allocation happens in finalize). */
int32_t sg_model_add_param(struct sg_model *m, const char *name, enum sg_param_kind kind,
                           enum sg_layer_kind layer, int32_t node, int ndim,
                           const int64_t *dims);
/* Infers shapes, checks every node, creates params for nodes that lack them,
 * allocates the arenas (masks all 1) when they are not allocated yet. */
enum sg_status sg_model_finalize(struct sg_model *m);
/* sg_model_finalize, except that arenas it allocates are left as they come: for a
 * model reader that then writes every element of the arena and the mask, padding
 * between parameters included (zero weight, mask 1). A 100 MB model's fresh pages
 * are then touched once, by the threads that fill them, not first by one thread
 * clearing them. */
enum sg_status sg_model_finalize_unfilled(struct sg_model *m);
/* Initialises weights (He normal; the last layer LeCun normal), biases 0, BN 1/0/0/1. */
void sg_model_init_weights(struct sg_model *m, uint64_t seed);
/* Built-in networks: "lenet300", "lenet5", "vgg7", "resnet8". */
enum sg_status sg_model_build(const char *name, int in_c, int in_h, int in_w, int n_classes,
                              uint64_t seed, struct sg_model **out);
/* NULL-terminated list of built-in names. */
const char *const *sg_model_builtin_names(void);
/* A learning rate that trains this architecture stably from scratch (0.05 with
 * batch normalisation, 0.01 without). */
float sg_model_default_lr(const struct sg_model *m);
enum sg_status sg_model_clone(const struct sg_model *m, struct sg_model **out);

/* ---- parameters and masks ---- */
static inline float *sg_param_data(struct sg_model *m, int32_t i) {
    return m->arena + m->params[i].offset;
}
static inline uint8_t *sg_param_mask(struct sg_model *m, int32_t i) {
    return m->mask + m->params[i].offset;
}
int32_t sg_model_find_param(const struct sg_model *m, const char *name);
/* Zeroes every weight whose mask is 0 (restores the invariant). */
void sg_model_apply_masks(struct sg_model *m);
/* Total elements and kept elements over weights of conv/fc layers. */
void sg_model_count(const struct sg_model *m, size_t *weights, size_t *kept);
/* View of weight parameter p (kind SG_PARAM_WEIGHT, layer conv or fc). */
struct sg_wview sg_model_wview(struct sg_model *m, int32_t p);
/* Indices of the conv/fc weight parameters in graph order; returns the count.
 * out may be NULL to count only. */
int32_t sg_model_weight_params(const struct sg_model *m, int32_t *out);
/* 1 when the model has a graph we can run. */
int sg_model_runnable(const struct sg_model *m);

/* ---- metadata (free-form history stored in the model file) ---- */
const char *sg_meta_get(const struct sg_model *m, const char *key); /* NULL if absent */
enum sg_status sg_meta_set(struct sg_model *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- execution ---- */
struct sg_exec; /* activations and workspaces for a given batch capacity */
enum sg_status sg_exec_new(const struct sg_model *m, int batch, int train, struct sg_exec **out);
void sg_exec_free(struct sg_exec *e);
/* The kernel of the conv and fc nodes, for an inference executor: forward(ctx, node,
 * n, x, y) computes node `node` on n samples, channel-major x [C][n][H][W] into y
 * [K][n][P][Q] (fc: [C][n] into [K][n]), and returns SG_OK or an error (set). Every
 * other op, and the graph walk, are the executor's own. The sparse inference engine
 * (sparsegrain/infer.h) runs a layer plan per node through it. */
struct sg_layer_hook {
    enum sg_status (*forward)(void *ctx, int32_t node, int n, const float *x, float *y);
    void *ctx;
};
/* An inference executor (train 0) whose conv and fc nodes run through *hook (copied;
 * ctx must outlive the executor); it needs no convolution workspace. */
enum sg_status sg_exec_new_hooked(const struct sg_model *m, int batch,
                                  const struct sg_layer_hook *hook, struct sg_exec **out);
/* x: [n][in_c][in_h][in_w], n <= batch capacity. train selects BN batch
 * statistics and active dropout (dropout draws from rng; NULL in eval). */
enum sg_status sg_forward(struct sg_model *m, struct sg_exec *e, const float *x, int n, int train,
                          sg_rng *rng);
/* Copies logits of the last forward into out[n][n_classes]. */
void sg_exec_logits(const struct sg_exec *e, float *out);
/* Output of a node after forward, CNHW: [c][n][h][w]; *n_out = batch used. */
const float *sg_exec_output(const struct sg_exec *e, int32_t node, int *n_out);
/* Softmax cross-entropy of the last forward; returns the mean loss, counts
 * correct top-1 (and top-5 when top5 != NULL) and, when train, seeds backward. */
double sg_exec_loss(struct sg_exec *e, const uint8_t *labels, int *top1, int *top5);
/* Backward pass: gradients of the mean loss into grad (arena-parallel, overwritten). */
enum sg_status sg_backward(struct sg_model *m, struct sg_exec *e, float *grad);

/* Per-node timing (for benchmarks): after sg_exec_profile(e, 1), every forward
 * and backward adds the seconds spent in each node (wall time; with 2, the calling
 * thread's CPU time, meaningful for one-thread runs on a shared machine). */
void sg_exec_profile(struct sg_exec *e, int on);
void sg_exec_profile_get(const struct sg_exec *e, int32_t node, double *fwd, double *bwd);

/* ---- training ---- */
enum sg_lr_schedule { SG_LR_CONSTANT = 0, SG_LR_STEP = 1, SG_LR_COSINE = 2, SG_LR_SCHEDULE_COUNT };
const char *sg_lr_schedule_name(enum sg_lr_schedule s);
int sg_lr_schedule_from_name(const char *name); /* -1 if unknown */

struct sg_train_state;

struct sg_train_cfg {
    int epochs;               /* total epochs of this run (the schedule spans them) */
    int batch;
    float lr, momentum, weight_decay;
    enum sg_lr_schedule schedule;
    int step_every;           /* SG_LR_STEP: epochs between decays */
    float step_gamma;         /* SG_LR_STEP: factor per decay */
    float lr_min;             /* SG_LR_COSINE: final learning rate */
    int warmup_epochs;        /* linear warmup (0 = none) */
    enum sg_augment augment;
    uint64_t seed;            /* shuffling, dropout and augmentation */
    int64_t max_images;       /* per epoch, 0 = all */
    sg_progress_fn progress;  /* called every few batches; may stop the run */
    void *progress_ctx;
    const char *stage;        /* label passed to progress, default "train" */
    /* Called before every batch with the position in epochs (e.g. to prune on a
     * schedule; the trainer itself knows nothing of pruning). A callback that masks
     * an entry sets its weight to +0, as sg_prune_model does: the update skips
     * blocks of masked entries without touching them. */
    enum sg_status (*on_batch)(void *ctx, struct sg_model *m, double epoch_pos);
    void *on_batch_ctx;
    /* Called after each finished epoch (e.g. to write a checkpoint). */
    enum sg_status (*on_epoch)(void *ctx, struct sg_model *m, const struct sg_train_state *st);
    void *on_epoch_ctx;
    /* Synchronous data parallelism; the trainer knows nothing of the transport (the
     * CLI plugs in MPI). When reduce is set and shards > 1, this worker runs forward
     * and backward on shard `shard` of every batch (contiguous slices whose sizes
     * differ by at most one) and calls reduce(ctx, buf, n), which must replace
     * buf[0..n) by its element-wise sum over all workers, the same on each. buf is
     * the arena-parallel gradient already weighted by shard / batch (so the sum is
     * the batch mean), batch-norm running statistics weighted the same way (so every
     * worker keeps the same ones), then three floats: the shard's loss sum, its
     * correct count and a stop vote (0; reduce may set it to 1 to stop every worker
     * at this batch with SG_ERR_INTERRUPTED). Every worker must call sg_train with
     * the same model, data, configuration and seed. Each worker normalises batch
     * norm with its shard's statistics; dropout draws from a per-shard stream. */
    int shard, shards;
    enum sg_status (*reduce)(void *ctx, float *buf, size_t n);
    void *reduce_ctx;
};

/* Optimizer state; enough to resume a run exactly where an epoch ended. */
struct sg_train_state {
    int epochs_done;
    size_t len;      /* arena length */
    float *velocity; /* momentum buffer, arena-parallel */
    double last_loss, last_acc; /* of the last finished epoch (training set) */
};
void sg_train_cfg_default(struct sg_train_cfg *cfg);
enum sg_status sg_train_state_new(const struct sg_model *m, struct sg_train_state **out);
void sg_train_state_free(struct sg_train_state *st);
/* Trains for cfg->epochs epochs, starting after st->epochs_done (resume) when st
 * is given. Pruned weights stay exactly zero. Images are preprocessed by
 * m->preproc; when it is not stated, training records the one it applies (the data
 * set's standardisation with its statistics) as stated in m->preproc. */
enum sg_status sg_train(struct sg_model *m, const struct sg_dataset *d,
                        const struct sg_train_cfg *cfg, struct sg_train_state *st);
/* Learning rate at a fractional epoch position under cfg. */
float sg_train_lr(const struct sg_train_cfg *cfg, double epoch_pos);

struct sg_eval_result {
    double top1, top5, loss; /* fractions in [0, 1]; mean loss */
    int64_t n;
    double seconds;
};
/* Images a forward of sg_evaluate takes per thread when its batch is 0 or less: small
 * enough for every layer's output to stay in the core's cache. */
#define SG_EVAL_BATCH 32
/* Images are preprocessed by m->preproc and go through the model in chunks of batch
 * (<= 0: SG_EVAL_BATCH), the threads (sg_set_threads) taking chunks in turn, each
 * with its own one-thread executor. The result does not depend on the thread count;
 * products through OpenBLAS (builds without AVX-512) may round a logit differently by
 * chunk size. */
enum sg_status sg_evaluate(struct sg_model *m, const struct sg_dataset *d, int batch,
                           struct sg_eval_result *r);
/* SG_OK when m->preproc can feed d's images to m (else SG_ERR_MISMATCH naming both). */
enum sg_status sg_model_check_preproc(const struct sg_model *m, const struct sg_dataset *d);

/* ---- reference kernels (plain loops, NCHW), used by tests and the simulator ---- */
struct sg_conv_geom {
    int n, c, h, w;       /* input */
    int k, r, s;          /* filters and kernel size */
    int sh, sw, pt, pl, pb, pr, dh, dw, groups;
    int p, q;             /* output height and width (filled by sg_conv_geom_finish) */
};
/* Computes p and q; returns SG_ERR_ARG when the geometry is impossible. */
enum sg_status sg_conv_geom_finish(struct sg_conv_geom *g);
/* y[n][k][p][q] = sum w[k][c][r][s] * x[n][c][..] + b[k] (b may be NULL); double accumulation. */
void sg_conv2d_ref(const struct sg_conv_geom *g, const float *x, const float *w, const float *b,
                   float *y);

/* ---- the training kernels, forward, on channel-major activations ----
 * x [C][n][H][W] -> y [K][n][P][Q] (the executor's layout), im2col + OpenBLAS; for
 * other modules that run a dense layer outside a graph (the sparse inference
 * engine's dense and thin plans). ws holds sg_conv_workspace(g, threads) floats;
 * call sg_blas_load first. */
size_t sg_conv_workspace(const struct sg_conv_geom *g, int threads);
void sg_conv_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                     const float *b, float *y, float *ws, int threads);
/* y[K][n] = W[K][C] x[C][n] + b (b may be NULL) */
void sg_fc_forward(int n, int c, int k, const float *x, const float *w, const float *b,
                   float *y);

#ifdef __cplusplus
}
#endif
#endif
