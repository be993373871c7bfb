/* The op table and the executor's state, shared by the graph walk (exec.c), shape
 * inference (model.c) and the table itself (graph.c). Internal to src/nn. */
#ifndef SPARSEGRAIN_NN_GRAPH_H
#define SPARSEGRAIN_NN_GRAPH_H

#include "core/sgi.h"
#include "nn/ops.h"

struct sg_exec {
    const struct sg_model *m;
    int cap, train, n;
    int32_t loss_node; /* node holding the logits (the output, or a final softmax's input) */
    float **out, **grad;
    int32_t **arg; /* maxpool argmax */
    float **aux;   /* BN: mean and invstd [2C]; dropout: per-element scale */
    float *col;            /* convolution workspace (none when a hook runs conv) */
    size_t col_len;
    int threads;           /* thread count the workspace was sized for */
    double *t_fwd, *t_bwd; /* seconds per node, accumulated when profiling */
    int t_cpu;             /* profiling in the calling thread's CPU time */
    struct sg_layer_hook hook; /* conv/fc kernels; forward NULL: the training kernels */
    struct sgi_thin_buf thin;  /* masked convolutions on kept filters/channels (conv_thin.c) */
    /* BN + ReLU in one pass (sgi_exec_new_train's executors): fuse[bn] = the ReLU node that is
     * its only consumer, fuse[relu] = -bn (nothing left to do); 0 elsewhere */
    int32_t *fuse;
    /* fused BN nodes: dead[bn][c] = 1 where channel c is exactly 0 in this training
     * step (a conv filter with every weight masked, its bias and the BN shift 0),
     * so BN, ReLU and a max pool after them skip it; ndead[bn] of them (0 outside
     * a training forward). Conv nodes that a max pool reads directly (LeNet-5):
     * dead[conv][c] = 1 where filter c has every weight and its bias masked, which
     * the pool skips (graph.c, pool_dead) */
    uint8_t **dead;
    int *ndead;
    /* thinned[conv] = 1 where this step's forward ran the conv thinned (conv_thin.c): its
     * backward then reads the output gradient of kept filters only (and sums none for a
     * dead filter's bias), so a max pool after it need not clear a dead channel's */
    uint8_t *thinned;
    /* the live input features of the fc layer running (graph.c, fc_live), live_cap long */
    int *live;
    int live_cap;
    /* its outputs with a kept weight (graph.c, fc_rows), as long as the widest fc layer
     * (NULL: not a training executor), and the compact copies' workspace (grown as needed) */
    int *rows;
    float *fc_ws;
    size_t fc_ws_len;
    /* fine-masked fc layers on their kept weights (graph.c, fc_sparse): fcs[fc] holds the
     * lists this step's forward made (fcs_on[fc] = 1) for its backward; NULL until one runs */
    float **fcs;
    size_t *fcs_len;
    uint8_t *fcs_on;
    /* a max pool that is the fused ReLU's only reader runs inside the BN in training
     * (ops.h, struct sgi_bn_pool): pfuse[bn] = the pool, pfuse[pool] = -bn; the ReLU's
     * output then is never written. pscr: pslots rows of the largest such BN's m */
    int32_t *pfuse;
    /* a convolution on the network input whose only reader is a 2x2 max pool runs with the
     * pool in training (conv.c, sgi_conv_pool_*): cpool[conv] = the pool, cpool[pool] =
     * -conv; cpooled[conv] = 1 where this step's forward did (the conv's own output and
     * gradient are then never written: the pool's are) */
    int32_t *cpool;
    uint8_t *cpooled;
    float *pscr;
    int pslots;
    /* sg_train's batch-level parallelism with BN: this executor holds one thread's
     * shard of the batch; BN's statistics are the team's (ops.h); NULL otherwise */
    struct sgi_bn_sync *sync;
    int loss_div; /* > 0: the loss gradient is divided by this batch, not the shard's */
    /* training: gset[j] & SGI_SETS_DX: node j's backward writes its input's gradient
     * (the first to touch it in the backward, and the op can), so sg_backward does not zero
     * that gradient first (gset[i] & SGI_NO_CLEAR); NULL: every gradient added to */
    uint8_t *gset;
};
#define SGI_SETS_DX 1
#define SGI_NO_CLEAR 2
#define SGI_SETS_DX1 4 /* an add: its second input's gradient written too */

/* A training executor for sg_train's own loop: BN + ReLU fused and dead channels
 * skipped (see fuse and dead above), so a fused BN's own output is never stored
 * and sg_exec_output must not be asked for it; sg_exec_new's executors store every
 * node's output. */
enum sg_status sgi_exec_new_train(const struct sg_model *m, int batch, struct sg_exec **out);

/* One node's step of a forward or backward walk. */
struct sgi_step {
    struct sg_model *m;
    struct sg_exec *e;
    int32_t i;                     /* the node */
    const struct sg_node *nd, *xn; /* it and its first input */
    const float *x;                /* the first input's activation */
    int n;                         /* batch */
    size_t sz;                     /* floats of the node's output at this batch */
    /* forward */
    float *y;
    int train;
    sg_rng *rng; /* dropout in training */
    /* backward */
    const float *dy; /* gradient of the output */
    float *dx;       /* gradient of the first input; NULL for the network input */
    int set_dx;      /* write dx rather than add to it (SGI_SETS_DX) */
    float *grad;     /* parameter gradients, arena-parallel */
};

/* What an op is: one entry per enum sg_op. Adding an op means one entry here, its
 * ONNX mapping (src/io/onnx_nodes.c) and its tests. */
struct sgi_op_def {
    const char *name;
    int variadic; /* 1: two or more inputs (add, concat); 0: exactly one (input: none) */
    /* The output shape of n; on entry n->c, h, w are its first input's. NULL: the same. */
    enum sg_status (*shape)(const struct sg_model *m, struct sg_node *n,
                            const struct sg_node *x);
    enum sg_status (*forward)(const struct sgi_step *s);
    void (*backward)(const struct sgi_step *s); /* NULL: the op has nothing to train through */
};
extern const struct sgi_op_def sgi_ops[SG_OP_COUNT];

/* The convolution geometry of conv node n at a batch. */
struct sg_conv_geom sgi_conv_geom_of(const struct sg_model *m, const struct sg_node *n,
                                     int batch);

#endif
