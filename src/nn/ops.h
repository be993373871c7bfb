/* Forward/backward kernels on raw pointers. Activations are channel-major:
 * X[C][N][H][W]. Backward functions ADD into dx (the caller zeroes it once), so a
 * tensor read by several nodes collects all their gradients; parameter gradients
 * are overwritten. Those with a `set` argument write dx instead when it is set (the
 * tensor's only reader: its zeroing is saved), with the bits of adding to 0. Every kernel has a plain reference in tests/test_ops.c. */
#ifndef SPARSEGRAIN_NN_OPS_H
#define SPARSEGRAIN_NN_OPS_H

#include "sparsegrain/nn.h"

/* Floats of workspace for geometry g run on `threads` threads (column slices of
 * the batch and per-thread weight-gradient sums). */
size_t sgi_conv_workspace(const struct sg_conv_geom *g, int threads);
void sgi_conv_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                      const float *b, float *y, float *ws, int threads);
/* dx may be NULL (input gradient not needed); db may be NULL (no bias). */
void sgi_conv_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                       const float *dy, float *dx, float *dw, float *db, float *ws, int threads);

/* 3x3 stride-1 convolutions through Winograd F(2x2,3x3) or F(4x4,3x3) for all
 * three training passes (src/nn/wino_train.c); sgi_conv_forward/backward take
 * this path when sgi_wino_train_ok(g): 3x3, stride 1, 4+ input channels, outputs
 * 10+ wide, or 7+ on a side where the tile rule takes F(4x4). sgi_wino_train_enable(0) turns it off, 2 takes it whatever the output
 * width, 1 is the default (benchmarks, tests). The tile size is a fixed rule of
 * the shape (sgi_wino_train_tile_of); sgi_wino_train_tile(2 or 4) forces one,
 * 0 restores the rule (benchmarks, tests). */
int sgi_wino_train_ok(const struct sg_conv_geom *g);
/* The shapes the Winograd passes can run at all (what sgi_wino_train_ok asks
 * without the width rule): the kernel-masked products use them on small outputs
 * too, where the dense layer runs through im2col. */
int sgi_wino_train_shape_ok(const struct sg_conv_geom *g);
void sgi_wino_train_enable(int on);
void sgi_wino_train_tile(int m);
int sgi_wino_train_tile_of(const struct sg_conv_geom *g);
/* Benchmarks only (bench/train_profile.c SG_FREE_KEPT=1): on, the kernel-masked
 * passes skip their kept-pair products (the transforms, output transforms and the
 * rest of the step run as usual, the outputs are wrong): the step's time with
 * those products at no cost, the bound of what any product kernel could save. */
void sgi_wino_train_free_kept(int on);
int sgi_kept_products_free(void); /* the im2col kernel-mask passes too (conv.c) */
/* Images per slice of the forward pass (benchmarks: bench/wino_split.c). */
int sgi_wino_train_slice_images(const struct sg_conv_geom *g, int threads);
size_t sgi_wino_train_workspace(const struct sg_conv_geom *g, int threads);
void sgi_wino_train_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            float *y, float *ws, int threads);
/* dw = the weight gradient; dx (may be NULL) += the input gradient */
void sgi_wino_train_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *ws, int threads);
/* The kept kernels of a kernel-masked layer, both ways: filter k keeps the
 * input channels fi[fp[k]..fp[k+1]) (ascending), channel c feeds the filters
 * bi[bp[c]..bp[c+1]) (ascending). The _kept passes multiply only those kernels
 * (in the Winograd domain, or on the im2col columns) and sum weight gradients
 * only for them (the others come out 0); kp NULL: the dense passes. */
struct sgi_kept {
    const int32_t *fp, *fi, *bp, *bi;
};
/* The kept-pair products (src/nn/kept_mm.c); lists as struct sgi_kept's forward
 * pair: row r keeps the columns li[lp[r] .. lp[r+1]), ascending.
 * sgi_kept_mm:    m[r ldm + 0..T) = sum over the kept j of row r of u[r ldu + li[j]]
 *                 v[li[j] ldv + 0..T), rows 0..rows
 * sgi_kept_wgrad: acc[j] += sum over t < T of d[r ldd + t] v[li[j] ldv + t], every
 *                 row r and its kept j (acc compact, in list order)
 * sgi_kept_expand: pts blocks of lp[k] compact sums -> pts blocks of k x c, in place
 *                 (the removed pairs 0; acc holds pts * k * c floats) */
void sgi_kept_mm(int rows, int T, const float *u, size_t ldu, const int32_t *lp,
                 const int32_t *li, const float *v, size_t ldv, float *m, size_t ldm);
void sgi_kept_wgrad(int rows, int T, const float *d, size_t ldd, const int32_t *lp,
                    const int32_t *li, const float *v, size_t ldv, float *acc);
void sgi_kept_expand(int pts, int k, int c, const int32_t *lp, const int32_t *li, float *acc);
/* Kernel masks on im2col columns (AVX-512 builds; kept_mm.c): col holds the
 * c*rs rows (T columns, T apart) of a slice, w the k x c*rs weights (rows c*rs
 * apart), (bp, bi) the filters that keep each channel (struct sgi_kept).
 * forward: y[k][0..T) (rows ldy apart) = the kept kernels' products (written)
 * dgrad:   dcol[c rs + i][0..T) = sum over the filters kk keeping c of
 *          w[kk ldw + c rs + i] dy[kk ldy + ...] (written, every row)
 * wgrad:   dw[kk ldw + c rs + i] += sum over t of dy[kk ldy + t] col[c rs + i][t],
 *          the kept kernels only */
void sgi_kept_cols_forward(int k, int c, int rs, int T, const float *w, const int32_t *bp,
                           const int32_t *bi, const float *col, float *y, size_t ldy);
void sgi_kept_cols_dgrad(int c, int rs, int T, const float *w, size_t ldw, const int32_t *bp,
                         const int32_t *bi, const float *dy, size_t ldy, float *dcol);
void sgi_kept_cols_wgrad(int c, int rs, int T, const float *dy, size_t ldy, const int32_t *bp,
                         const int32_t *bi, const float *col, float *dw, size_t ldw);
void sgi_wino_train_forward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const struct sgi_kept *kp, float *y, float *ws, int threads);
/* set_dx: dx written (with the bits of adding to zeros), not added to */
void sgi_wino_train_backward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                  const struct sgi_kept *kp, const float *dy, float *dx,
                                  int set_dx, float *dw, float *ws, int threads);
/* The same on channels picked out of whole tensors (thinned layers): g is the
 * thin layer (c kept channels, k kept filters), its channel b is cmap[b] of x and
 * dx, its filter a is kmap[a] of y and dy (NULL: identity); the forward adds to y
 * when accumulate; w and dw are the compact K x C x 3 x 3 arrays. */
void sgi_wino_train_forward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                const float *x, const float *w, const struct sgi_kept *kp,
                                int accumulate, float *y, float *ws, int threads);
void sgi_wino_train_backward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                 const float *x, const float *w, const struct sgi_kept *kp,
                                 const float *dy, float *dx, int set_dx, float *dw, float *ws,
                                 int threads); /* set_dx only with cmap NULL */
/* sgi_conv_forward/backward with the kept kernels kp (NULL: dense); with kp the
 * layer runs through Winograd wherever its shape allows (sgi_wino_train_shape_ok,
 * small outputs included), else through im2col on the kept kernels' rows where
 * sgi_conv_kept_cols_ok (AVX-512 and AVX2 builds; one group, more than one input channel,
 * not 1x1); otherwise kp is ignored (dense kernels). */
int sgi_conv_kept_cols_ok(const struct sg_conv_geom *g);
/* Kept-kernel passes in image lanes (src/nn/conv_lanes.c): stride-1 layers of 3, 5
 * or 7 columns a kernel, one group, more than one channel (AVX-512 builds), where
 * sgi_conv_lanes_ok and sgi_conv_lanes_is_on; sgi_conv_forward_kept and
 * sgi_conv_backward_kept take them for kept lists on shapes Winograd does not run.
 * forward: y written (no bias); backward: dw written, dx added to (NULL: none). */
int sgi_conv_lanes_ok(const struct sg_conv_geom *g);
void sgi_conv_lanes_enable(int on); /* 0: the im2col kept path (tests, benchmarks) */
size_t sgi_conv_lanes_workspace(const struct sg_conv_geom *g, int threads);
void sgi_conv_lanes_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            const struct sgi_kept *kp, float *y, float *ws, int threads);
void sgi_conv_lanes_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const struct sgi_kept *kp, const float *dy, float *dx, float *dw,
                             float *ws, int threads);
struct sgi_pool;
/* A one-channel layer of those shapes with a 2x2 max pool after it (sgi_conv_pool_forward;
 * where sgi_conv_lanes_pool_ok): filters kk[0 .. nk) (kk NULL: 0 .. nk), bias b (NULL:
 * none), each output plane pooled in cells into py and parg, the rest not written.
 * ws: sgi_conv_lanes_workspace. */
int sgi_conv_lanes_pool_ok(const struct sg_conv_geom *g);
void sgi_conv_lanes_pool_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const float *b, const int *kk, int nk, const struct sgi_pool *pg,
                                 float *py, int32_t *parg, float *ws, int threads);
void sgi_conv_add_bias(const struct sg_conv_geom *g, const float *b, float *y); /* y[k] += b[k] */
void sgi_conv_forward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                           const struct sgi_kept *kp, const float *b, float *y, float *ws,
                           int threads);
void sgi_conv_backward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                            const struct sgi_kept *kp, const float *dy, float *dx, int set_dx,
                            float *dw, float *db, float *ws, int threads);
/* (set_dx: dx written, not added to, with the bits of adding to a zeroed dx: the
 * Winograd pass writes it, the other paths zero it first) */

struct sgi_pool;
/* A convolution on the network input with a 2x2 max pool as its only reader (LeNet-5's
 * conv1 and pool1), in one pass (training executors, graph.c): where
 * sgi_conv_pool_ok (one input channel, stride 1, AVX-512 or AVX2 build; pg the pool's
 * geometry at g's batch), sgi_conv_pool_forward writes the pool's output py and argmax
 * parg, as sgi_conv_forward and sgi_maxpool_forward would, and never the layer's
 * output; each plane is pooled while it is in cache. sgi_conv_pool_wgrad takes the
 * pool's output gradient pdy and gives dw and db (NULL: none) as sgi_maxpool_backward
 * (set) and sgi_conv_backward (no dx) would, each plane's gradient built where the
 * weight gradient reads it. The same bits as the two ops. dead (NULL: none; K flags,
 * where sgi_conv_pool_dead_ok): filters whose weights and bias are all masked (zero),
 * which are not run: their pooled channel is written 0 (argmax 0), as the pool writes a
 * dead channel, and their dw and db are 0, as the thinned layer gives them
 * (conv_thin.c). ws: sgi_conv_workspace. */
int sgi_conv_pool_ok(const struct sg_conv_geom *g, const struct sgi_pool *pg);
int sgi_conv_pool_dead_ok(const struct sg_conv_geom *g);
void sgi_conv_pool_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                           const float *b, const uint8_t *dead, const struct sgi_pool *pg,
                           float *py, int32_t *parg, float *ws, int threads);
void sgi_conv_pool_wgrad(const struct sg_conv_geom *g, const float *x, const uint8_t *dead,
                         const struct sgi_pool *pg, const float *pdy, const int32_t *parg,
                         float *dw, float *db, float *ws, int threads);

/* Masked convolutions on the kept filters and channels only (src/nn/conv_thin.c):
 * when the mask removes whole filters W[k,:,:,:] or input channels W[:,c,:,:] and
 * so at least a fifth of the work, these run a thinner dense layer and return 1;
 * otherwise they do nothing and return 0 (run the dense kernel). The buffer grows
 * on demand and is kept between calls (free with sgi_thin_buf_free). Same
 * contract as sgi_conv_forward/backward (dx added to, bias of a pruned filter
 * still applied and its gradient computed). */
struct sgi_thin_buf {
    float *p;
    size_t len;
    int *kept;
    int kept_cap;
    int32_t *lists; /* kernel masks: the kept-kernel lists (conv_kernel.c) */
    size_t lists_cap;
};
void sgi_thin_buf_free(struct sgi_thin_buf *tb);
void sgi_conv_thin_enable(int on); /* 0: always dense (tests, benchmarks) */
int sgi_conv_thin_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                          const uint8_t *mask, const float *b, float *y, int threads,
                          struct sgi_thin_buf *tb);
/* set_dx: dx written (the bits of adding to zeros), not added to. dead (NULL: none):
 * filters whose every weight and bias is masked and whose output gradient is all 0,
 * or left unwritten by the pool after the layer (graph.c): their bias gradient is
 * written 0 without reading dy there (the other dead filters' dy is never read:
 * they are not kept) */
int sgi_conv_thin_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                           const uint8_t *mask, const uint8_t *dead, const float *dy, float *dx,
                           int set_dx, float *dw, float *db, int threads, struct sgi_thin_buf *tb);

/* Kernel-masked convolutions (src/nn/conv_kernel.c): a layer whose mask keeps at
 * most a fixed share of its K x C kernels (Winograd layers 0.5 forward, 0.35
 * backward; im2col layers 0.7, backward 0.35 for kernels of under 16 weights; a
 * kernel is kept when any of its R*S weights is) multiplies only the kept kernels, in the
 * Winograd domain (3x3 stride-1 layers) or on the im2col columns (other shapes
 * with sgi_conv_kept_cols_ok), forward and input gradient, and sums weight
 * gradients only for them; return 1, or 0 (nothing done) where that does not apply. ws: the
 * dense workspace (sgi_conv_workspace). Same contract as sgi_conv_forward/backward;
 * the weight gradient of a dropped kernel is 0. sgi_conv_thin_enable(0) turns
 * this off too. */
int sgi_conv_kernel_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            const uint8_t *mask, const float *b, float *y, float *ws,
                            int threads, struct sgi_thin_buf *tb);
int sgi_conv_kernel_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const uint8_t *mask, const float *dy, float *dx, int set_dx,
                             float *dw, float *db, float *ws, int threads,
                             struct sgi_thin_buf *tb); /* set_dx as sgi_conv_thin_backward */
/* The kept-kernel lists of a K x C x R x S mask (a kernel is kept when any of its
 * R*S entries is) into kp, held in tb->lists: 0 when more than kept_max of the
 * kernels are kept (or the lists cannot be allocated). */
int sgi_conv_kernel_lists(const struct sg_conv_geom *g, const uint8_t *mask, double kept_max,
                          struct sgi_thin_buf *tb, struct sgi_kept *kp);
/* The lists of the thinned layer t of layer g (its filter a is g's kk[a], its
 * channel b is g's cc[b]) where a kernel path runs t's shape and keeps few enough
 * kernels for the forward (bwd 0) or backward (1) pass; 0 otherwise. */
int sgi_conv_kernel_thin_lists(const struct sg_conv_geom *g, const struct sg_conv_geom *t,
                               const uint8_t *mask, const int *kk, const int *cc, int bwd,
                               struct sgi_thin_buf *tb, struct sgi_kept *kp);
/* The largest shares of kept kernels the forward and the backward take the
 * kernel-masked path at, every shape (benchmarks, tests; negative: the defaults,
 * which depend on the path). */
void sgi_conv_kernel_shares(double fwd, double bwd);
int sgi_conv_thin_is_on(void);

/* y[K][N] = W[K][C] x[C][N] + b */
void sgi_fc_forward(int n, int c, int k, const float *x, const float *w, const float *b,
                    float *y);
void sgi_fc_backward(int n, int c, int k, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);
/* The same where only the input features live[0..nl) (ascending) may be nonzero:
 * products over those alone; dW's other columns set to 0, dx's other rows untouched.
 * With AVX-512, the same bits as the two above. */
void sgi_fc_forward_live(int n, int c, int k, const int *live, int nl, const float *x,
                         const float *w, const float *b, float *y);
void sgi_fc_backward_live(int n, int c, int k, const int *live, int nl, const float *x,
                          const float *w, const float *dy, float *dx, float *dw, float *db);

/* The same on the live outputs rows[0..nr) (ascending: the other rows of W have no
 * kept weight) and live inputs live[0..nl) (NULL: all c): y's other rows 0 + b, dW's
 * other entries 0, dx's live rows added to. ws: sgi_fc_thin_ws(n, nr, nl) floats (nl = c
 * when live is NULL). With AVX-512, the same bits as sgi_fc_forward and sgi_fc_backward. */
/* Fine-masked fc layers on their kept weights (src/nn/fc_sparse.c; AVX-512 builds):
 * sgi_fc_sparse_plan lists the kept (and live) weights of the mask in ws
 * (sgi_fc_sparse_ws(n, c, k) floats) and returns 1 where their share is low enough to
 * pay and n is at most 64 (0: run the dense kernels). Then, with the same ws and mask,
 * the forward writes y = W x + b and sgi_fc_dx_sparse adds W^T dy to dx's (live) rows,
 * with the bits of the dense kernels (the weight gradient is theirs). The lists stay in
 * ws with a copy of the mask: a later plan in the same ws with the same mask, live set,
 * n and share takes them again (zero ws's first 64 bytes before its first plan). */
size_t sgi_fc_sparse_ws(int n, int c, int k);
int sgi_fc_sparse_plan(int n, int c, int k, const uint8_t *mask, const int *live, int nl,
                       void *ws);
void sgi_fc_sparse_enable(int on); /* 0: never (tests, benchmarks) */
void sgi_fc_sparse_share(double most); /* the largest kept share taken (tests; < 0: the default) */
void sgi_fc_forward_sparse(int n, int c, int k, const float *x, const float *w, const float *b,
                           float *y, const void *ws);
void sgi_fc_dx_sparse(int n, int c, int k, const int *live, int nl, const float *w,
                      const float *dy, float *dx, void *ws);
size_t sgi_fc_thin_ws(int n, int nr, int nl);
void sgi_fc_forward_thin(int n, int c, int k, const int *rows, int nr, const int *live, int nl,
                         const float *x, const float *w, const float *b, float *y, float *ws);
void sgi_fc_backward_thin(int n, int c, int k, const int *rows, int nr, const int *live, int nl,
                          const float *x, const float *w, const float *dy, float *dx, float *dw,
                          float *db, float *ws);

struct sgi_pool {
    int planes, h, w;          /* planes = C * N */
    int kh, kw, sh, sw, pt, pl, pb, pr;
    int p, q;                  /* output extent */
    int count_include_pad;
};
/* Images x[N][C][H*W] (the callers' layout) to channel-major y[C][N][H*W]. */
void sgi_to_channel_major(const float *x, int n, int c, size_t hw, float *y);

/* Floats of node n's activation at a batch. */
static inline size_t sgi_node_size(const struct sg_node *n, int batch) {
    return (size_t)n->c * n->h * n->w * (size_t)batch;
}

/* The pooling geometry of node n (max, average or global average pool) at a batch. */
struct sgi_pool sgi_pool_of(const struct sg_model *m, const struct sg_node *n, int batch);
void sgi_maxpool_forward(const struct sgi_pool *g, const float *x, float *y, int32_t *arg);
void sgi_maxpool_backward(const struct sgi_pool *g, const float *dy, const int32_t *arg,
                          float *dx, int set);
/* One plane of a max pool (x: g->h x g->w, y and arg: g->p x g->q), in the calling
 * thread: what sgi_maxpool_forward does to each plane. */
void sgi_maxpool_plane(const struct sgi_pool *g, const float *x, float *y, int32_t *arg);
/* One plane of sgi_maxpool_backward (set: dx written), in the calling thread. */
void sgi_maxpool_back_plane(const struct sgi_pool *g, const float *dy, const int32_t *arg,
                            float *dx, int set);
int sgi_pool_is_2x2(const struct sgi_pool *g); /* 2x2 windows, stride 2, no padding */
void sgi_avgpool_forward(const struct sgi_pool *g, const float *x, float *y);
void sgi_avgpool_backward(const struct sgi_pool *g, const float *dy, float *dx);

/* BN over x[C][M] (M = N*H*W). Train: batch statistics into mean/invstd and the
 * running averages updated; eval: running statistics. relu 1: a ReLU that follows
 * is fused in (y is its output, BN's own is not stored). Backward: ry non-NULL is
 * that fused ReLU's output and dy its output gradient (one pass instead of two).
 * dead (NULL: none): channels known to be exactly 0 with beta 0 and a fused ReLU,
 * skipped (forward writes 0 and updates the running statistics as for a zero
 * channel; backward gives 0 parameter gradients and adds nothing to dx): exactly
 * what the full computation gives. */
/* A max pool fused after BN + ReLU in training (the pool the ReLU's only reader):
 * each channel's ReLU output goes to a scratch row of m floats (in cache) and is
 * pooled from there, so it never goes to memory; backward rebuilds the channel's
 * ReLU gradient from the pool's output gradient and argmax into the same scratch.
 * The values are those of the three nodes run one after the other. */
struct sgi_bn_pool {
    struct sgi_pool g; /* one channel's planes (planes = the batch) */
    float *y;          /* the pool's output [C][planes][p*q] */
    int32_t *arg;      /* its argmax, as sgi_maxpool_forward writes it */
    const float *dy;   /* backward: the gradient of the pool's output */
    float *scratch;    /* slots x m floats: one row per thread */
    int slots;
};
/* pool: NULL, or the pool fused after (then relu is set and y is not written). */
void sgi_bn_forward_train(int c, size_t m, float eps, float momentum, const float *x,
                          const float *gamma, const float *beta, float *rmean, float *rvar,
                          float *mean, float *invstd, float *y, int relu, const uint8_t *dead,
                          const struct sgi_bn_pool *pool);
/* BN over a batch shared by a team of threads (sg_train's batch-level parallelism):
 * each thread holds its shard x[C][m] of the batch in its own one-thread executor,
 * and the batch statistics are sums over the team's shards, added in thread order
 * (so the result depends on the thread count, never on timing). Called by every
 * thread of the OpenMP team, BN node after BN node in the same order: each phase
 * writes this thread's partial sums into the shared buffer, meets the others at a
 * barrier and reads all of them (forward one phase, each shard's mean and squared
 * deviations joined by Chan's formula; backward one). Two buffer sets used in turn
 * make one barrier per phase enough (a thread writes a set again only after every
 * thread has passed the barrier that follows its last read). */
/* A thread's slot: two values per channel and the shard's size. */
#define SGI_BN_SLOT(cmax) (2 * (size_t)(cmax) + 1)
struct sgi_bn_sync {
    int t, T;       /* this thread, threads in the team */
    int n_all;      /* images in the whole batch (the shards' sum) */
    int cmax;       /* channels per thread in each buffer set */
    double *part;   /* shared by the team: [2][T][SGI_BN_SLOT(cmax)] */
    unsigned seq;   /* phases so far (the same on every thread) */
};
/* Forward: m of this shard, m_all of the whole batch (n_all * H * W); the running
 * averages are updated by thread 0 only. */
void sgi_bn_forward_sync(struct sgi_bn_sync *sy, int c, size_t m, size_t m_all, float eps,
                         float momentum, const float *x, const float *gamma, const float *beta,
                         float *rmean, float *rvar, float *mean, float *invstd, float *y,
                         int relu, const uint8_t *dead, const struct sgi_bn_pool *pool);
/* Backward: dx from the batch's sums; dgamma and dbeta get this shard's share (the
 * team's parameter gradients are added afterwards). */
void sgi_bn_backward_sync(struct sgi_bn_sync *sy, int c, size_t m, size_t m_all, const float *x,
                          const float *gamma, const float *beta, const float *mean,
                          const float *invstd, int relu, const float *dy, float *dx,
                          float *dgamma, float *dbeta, const uint8_t *dead, int set,
                          const struct sgi_bn_pool *pool);
void sgi_bn_forward_eval(int c, size_t m, float eps, const float *x, const float *gamma,
                         const float *beta, const float *rmean, const float *rvar, float *y,
                         int relu);
/* relu: a ReLU fused after the BN (dy is its output gradient); its gate is recomputed
 * from x, gamma, beta, mean and invstd as the forward computed it, bit for bit */
void sgi_bn_backward(int c, size_t m, const float *x, const float *gamma, const float *beta,
                     const float *mean, const float *invstd, int relu, const float *dy,
                     float *dx, float *dgamma, float *dbeta, const uint8_t *dead, int set,
                     const struct sgi_bn_pool *pool); /* dy unused when pool */
void sgi_dead_channels_enable(int on); /* 0: never skip dead channels (tests, benchmarks) */
void sgi_fc_rows_enable(int on); /* 0: fc layers never run on their kept rows alone (graph.c) */
/* 0: models with BN train with the threads sharing every layer, not the batch (train.c;
 * tests, benchmarks) */
void sgi_batch_parallel_bn_enable(int on);
/* 0: the SGD update runs its plain loop over every entry, no blocks skipped (train.c; tests) */
void sgi_sgd_skip_enable(int on);

void sgi_bn_relu_fuse_enable(int on); /* 0: BN and ReLU as two nodes (tests, benchmarks) */
/* 0: every gradient zeroed and added to, none written by its first reader (tests) */
void sgi_grad_set_enable(int on);
/* 1: executors made from now on fill every output and gradient buffer with NaN first, so
 * that a kernel reading what no one wrote shows (exec.c; tests) */
void sgi_exec_poison(int on);
/* 0: a max pool after a fused BN + ReLU runs as its own node (tests, benchmarks) */
void sgi_bn_pool_fuse_enable(int on);
/* 0: a convolution and the max pool after it run as two nodes (tests, benchmarks) */
void sgi_conv_pool_fuse_enable(int on);
void sgi_relu_forward(size_t n, const float *x, float *y);
void sgi_relu_backward(size_t n, const float *y, const float *dy, float *dx, int set);
/* [C][N][HW] <-> [C*HW][N] */
void sgi_flatten_forward(int c, int n, int hw, const float *x, float *y);
void sgi_flatten_backward(int c, int n, int hw, const float *dy, float *dx, int set);
/* softmax over the K rows of x[K][N], per column */
void sgi_softmax_forward(int k, int n, const float *x, float *y);
void sgi_softmax_backward(int k, int n, const float *y, const float *dy, float *dx);

#endif
