/* SGD with momentum and weight decay under a mask, learning-rate schedules, the
 * training loop (resumable at epoch boundaries) and evaluation. */
#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "core/sgi.h"
#include "nn/graph.h"
#include "sparsegrain/nn.h"

static const char *const SCHED_NAMES[SG_LR_SCHEDULE_COUNT] = {"constant", "step", "cosine"};

const char *sg_lr_schedule_name(enum sg_lr_schedule s) {
    return (unsigned)s < SG_LR_SCHEDULE_COUNT ? SCHED_NAMES[s] : "?";
}

int sg_lr_schedule_from_name(const char *name) {
    for (int i = 0; i < SG_LR_SCHEDULE_COUNT; i++)
        if (strcmp(name, SCHED_NAMES[i]) == 0) return i;
    return -1;
}

void sg_train_cfg_default(struct sg_train_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 10;
    cfg->batch = 64;
    cfg->lr = 0.05f;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 5e-4f;
    cfg->schedule = SG_LR_COSINE;
    cfg->step_every = 5;
    cfg->step_gamma = 0.1f;
    cfg->lr_min = 0.0f;
    cfg->seed = 1;
    cfg->stage = "train";
}

float sg_train_lr(const struct sg_train_cfg *cfg, double pos) {
    double lr = cfg->lr;
    switch (cfg->schedule) {
    case SG_LR_STEP:
        if (cfg->step_every > 0) lr *= pow(cfg->step_gamma, floor(pos / cfg->step_every));
        break;
    case SG_LR_COSINE:
        if (cfg->epochs > 0) {
            double t = pos / cfg->epochs;
            if (t > 1) t = 1;
            lr = cfg->lr_min + 0.5 * (cfg->lr - cfg->lr_min) * (1 + cos(M_PI * t));
        }
        break;
    default: break;
    }
    if (cfg->warmup_epochs > 0 && pos < cfg->warmup_epochs)
        lr *= (pos + 1.0 / 64) / cfg->warmup_epochs;
    return (float)lr;
}

enum sg_status sg_train_state_new(const struct sg_model *m, struct sg_train_state **out) {
    struct sg_train_state *st = calloc(1, sizeof *st);
    if (!st) return sgi_error(SG_ERR_NOMEM, "out of memory");
    st->len = m->arena_len;
    st->velocity = sgi_zalloc(m->arena_len, sizeof(float));
    if (!st->velocity) {
        free(st);
        return SG_ERR_NOMEM;
    }
    *out = st;
    return SG_OK;
}

void sg_train_state_free(struct sg_train_state *st) {
    if (!st) return;
    free(st->velocity);
    free(st);
}

/* v = mu v + g + wd w; w -= lr v; pruned entries of weights stay exactly 0.
 * g is the sum over T gradients grads[t] weighted by share[t], added in thread
 * order (T 1: grads[0] itself), computed where it is used: the batch-parallel
 * threads' gradients are never added into one array first (that took a write and
 * a read of the whole arena per step, and a parallel region of its own), but chunk
 * by chunk on the stack. One parallel region; each parameter split between the
 * threads in chunks of SGD_CHUNK entries.
 *
 * With AVX-512 a chunk is worked on in blocks of 16 entries (a cache line of
 * weights: parameters start 64-byte aligned, model.c), and a block whose 16 mask
 * entries are all 0 is skipped, its lines neither requested nor touched: the update
 * would write its weights +0 (they are: masked weights are +0 from the start,
 * sg_model_apply_masks, and +0 stays +0 under (w - lr v) * 0) and its velocity +-0,
 * which nothing reads (a masked entry's update multiplies it by 0). A filter-pruned
 * model's masked blocks are most of it (LeNet-5 at 0.3: conv2's dropped filters and
 * the fc1 columns that read their channels, pruning's follow rule). The weights keep
 * their bits; a masked entry's velocity may keep an old value where the dense
 * update wrote +-0. */
#define SGD_CHUNK 512
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define SGD_BLOCKS 1
#else
#define SGD_BLOCKS 0
#endif

/* sum (=, +=) g * share; "0 + g * share" is the first term of the sum as the
 * threads' gradients were once added (one multiply-add onto +0), so a -0 product
 * still gives +0 */
static void add_scaled(float *restrict sum, const float *restrict g, float share, int len,
                       int first) {
    if (first)
        for (int j = 0; j < len; j++) sum[j] = 0.0f + g[j] * share;
    else
        for (int j = 0; j < len; j++) sum[j] += g[j] * share;
}

static void update(float *restrict w, float *restrict v, const float *restrict g,
                   const uint8_t *restrict mk, int len, float lr, float mu, float decay) {
    for (int i = 0; i < len; i++) {
        const float keep = mk[i] ? 1.0f : 0.0f;
        const float vi = (mu * v[i] + g[i] + decay * w[i]) * keep;
        v[i] = vi;
        w[i] = (w[i] - lr * vi) * keep;
    }
}

/* The chunk [i0, i0 + len) of a parameter whose entries start at w, v, mk and at
 * offset `at` of each gradient: add_scaled and update, on the stack. */
static void update_chunk(float *w, float *v, const uint8_t *mk, const float *const *grads,
                         size_t at, const float *share, int T, int len, float lr, float mu,
                         float decay) {
    const float *g = grads[0] + at;
    float sum[SGD_CHUNK];
    if (T > 1) { /* the threads' gradients added in thread order */
        for (int t = 0; t < T; t++) add_scaled(sum, grads[t] + at, share[t], len, t == 0);
        g = sum;
    }
    update(w, v, g, mk, len, lr, mu, decay);
}

static int g_sgd_skip = 1;
void sgi_sgd_skip_enable(int on) { g_sgd_skip = on; }

#if SGD_BLOCKS
/* The kept entries of the 16 at mk, as a lane mask */
static __mmask16 kept16(const uint8_t *mk) {
    return _mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)mk), _mm_set1_epi8(-1));
}

/* A whole block of 16 with kept entries k: update_chunk's operations in its order,
 * one vector each. */
static void update_block(float *w, float *v, __mmask16 k, const float *const *grads, size_t at,
                         const float *share, int T, float lr, float mu, float decay) {
    __m512 g = _mm512_loadu_ps(grads[0] + at);
    if (T > 1) {
        g = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(g, _mm512_set1_ps(share[0])));
        for (int t = 1; t < T; t++)
            g = _mm512_add_ps(g, _mm512_mul_ps(_mm512_loadu_ps(grads[t] + at),
                                               _mm512_set1_ps(share[t])));
    }
    const __m512 keep = _mm512_maskz_mov_ps(k, _mm512_set1_ps(1.0f));
    const __m512 wv = _mm512_loadu_ps(w);
    __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(mu), _mm512_loadu_ps(v)), g);
    vi = _mm512_mul_ps(_mm512_add_ps(vi, _mm512_mul_ps(_mm512_set1_ps(decay), wv)), keep);
    _mm512_storeu_ps(v, vi);
    _mm512_storeu_ps(w, _mm512_mul_ps(_mm512_sub_ps(wv, _mm512_mul_ps(_mm512_set1_ps(lr), vi)), keep));
}
#endif

/* Requests the cache lines of a chunk [a, a + len): a thread's five or more streams
 * (weights, velocity, mask, each thread's gradient), cold after the backward, were
 * left to the hardware prefetcher at a cost (LeNet-5's 431,000 parameters on two
 * threads of the AMD EPYC: 0.36 ms a step, 0.22 with the next chunk requested while
 * this one is worked on). With blocks, only the lines of blocks with a kept entry
 * (the chunk's mask was requested a chunk earlier), and the mask of the chunk after. */
static void prefetch_chunk(const float *w, const float *v, const uint8_t *mk,
                           const float *const *grads, size_t off, int T, ptrdiff_t a, int len,
                           ptrdiff_t cnt) {
    const int blocks = SGD_BLOCKS && g_sgd_skip; /* sgd_step's loop over blocks runs */
    for (int q = 0; q < len; q += 16) {
#if SGD_BLOCKS
        if (blocks && len - q >= 16 && !kept16(mk + a + q)) continue;
#endif
        __builtin_prefetch(w + a + q, 1);
        __builtin_prefetch(v + a + q, 1);
        for (int t = 0; t < T; t++) __builtin_prefetch(grads[t] + off + a + q, 0);
    }
    /* the mask of this chunk (plain loop) or of the chunk after it (blocks: this one's
     * was requested a chunk earlier, for the test above) */
    const ptrdiff_t m0 = blocks ? a + SGD_CHUNK : a, m1 = m0 + (blocks ? SGD_CHUNK : len);
    for (ptrdiff_t q = m0; q < m1 && q < cnt; q += 64)
        __builtin_prefetch(mk + q, 0);
}

static void sgd_step(struct sg_model *m, const float *const *grads, const float *share, int T,
                     float *vel, float lr, float mu, float wd) {
    const ptrdiff_t total = (ptrdiff_t)m->arena_len;
#pragma omp parallel if (total > 65536)
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind == SG_PARAM_BN_MEAN || pp->kind == SG_PARAM_BN_VAR ||
            pp->kind == SG_PARAM_OTHER)
            continue;
        float *w = m->arena + pp->offset, *v = vel + pp->offset;
        const uint8_t *mk = m->mask + pp->offset;
        const float decay = pp->kind == SG_PARAM_WEIGHT ? wd : 0.0f;
        const ptrdiff_t cnt = (ptrdiff_t)pp->count;
#pragma omp for schedule(static) nowait
        for (ptrdiff_t i0 = 0; i0 < cnt; i0 += SGD_CHUNK) {
            const int len = (int)(cnt - i0 < SGD_CHUNK ? cnt - i0 : SGD_CHUNK);
            if (i0 + SGD_CHUNK < cnt)
                prefetch_chunk(w, v, mk, grads, pp->offset, T, i0 + SGD_CHUNK,
                               (int)(cnt - i0 - SGD_CHUNK < SGD_CHUNK ? cnt - i0 - SGD_CHUNK
                                                                      : SGD_CHUNK),
                               cnt);
            int q = 0;
#if SGD_BLOCKS
            for (; g_sgd_skip && q + 16 <= len; q += 16) {
                const ptrdiff_t i = i0 + q;
                const __mmask16 k = kept16(mk + i);
                if (k)
                    update_block(w + i, v + i, k, grads, pp->offset + (size_t)i, share, T, lr,
                                 mu, decay);
            }
#endif
            if (q < len) /* the whole chunk, or a block's tail */
                update_chunk(w + i0 + q, v + i0 + q, mk + i0 + q, grads,
                             pp->offset + (size_t)(i0 + q), share, T, len - q, lr, mu, decay);
        }
    }
}

/* One data-parallel step of a worker (see struct sg_train_cfg): forward and
 * backward on its shard of the batch x[nb], then the sum over workers of the
 * weighted gradient, batch-norm running statistics, loss and correct count.
 * Returns the batch's mean loss and correct count, the same on every worker. */
static enum sg_status shard_step(struct sg_model *m, struct sg_exec *e,
                                 const struct sg_train_cfg *cfg, const float *x, const uint8_t *y,
                                 int nb, size_t img, sg_rng *drop, float *grad, double *loss,
                                 int *top1) {
    const int lo = (int)((int64_t)nb * cfg->shard / cfg->shards);
    const int cnt = (int)((int64_t)nb * (cfg->shard + 1) / cfg->shards) - lo;
    const size_t len = m->arena_len;
    double l = 0;
    int c = 0;
    enum sg_status s;
    if (cnt > 0) { /* the last batch of an epoch may leave a worker without images */
        if ((s = sg_forward(m, e, x + (size_t)lo * img, cnt, 1, drop)) != SG_OK) return s;
        l = sg_exec_loss(e, y + lo, &c, NULL);
        /* a loss that is not finite on one shard must not stop this worker alone:
         * the sum below carries it to every worker, which then stop together */
        if ((s = sg_backward(m, e, grad)) != SG_OK) return s;
    } else {
        memset(grad, 0, len * sizeof *grad);
    }
    /* sg_backward gives the mean over this shard; the sum over shards of
     * gradient x cnt / nb is the mean over the batch, as in one process. Running
     * statistics (no gradient) travel the same way: a weighted mean of the
     * workers' updates, the exact update with the batch mean for the running mean. */
    const float share = (float)cnt / (float)nb;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        float *g = grad + pp->offset;
        const float *w = m->arena + pp->offset;
        const int stat = pp->kind == SG_PARAM_BN_MEAN || pp->kind == SG_PARAM_BN_VAR;
        for (size_t i = 0; i < pp->count; i++) g[i] = (stat ? w[i] : g[i]) * share;
    }
    grad[len] = (float)(l * cnt);
    grad[len + 1] = (float)c;
    grad[len + 2] = 0; /* the stop vote: reduce may raise it */
    if ((s = cfg->reduce(cfg->reduce_ctx, grad, len + 3)) != SG_OK) return s;
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sg_param *pp = &m->params[p];
        if (pp->kind == SG_PARAM_BN_MEAN || pp->kind == SG_PARAM_BN_VAR)
            memcpy(m->arena + pp->offset, grad + pp->offset, pp->count * sizeof *grad);
    }
    if (grad[len + 2] > 0) return sgi_error(SG_ERR_INTERRUPTED, "training interrupted");
    *loss = grad[len] / nb;
    *top1 = (int)lrintf(grad[len + 1]);
    return SG_OK;
}

/* Batch-level parallelism: with several threads, a model whose steps need no
 * statistics over the whole batch (no BN, no active dropout: LeNet-5, LeNet-300)
 * runs each thread's share of the batch through its own one-thread executor, the
 * whole forward and backward in one parallel region; the gradients are then added
 * weighted by share, in thread order (results depend on the thread count, never
 * on timing). Layers this small are not worth sharing between threads: every
 * parallel region costs a synchronisation, and on a shared machine a thread
 * waiting for its core stalls the other at every one of them. */
/* Models with BN share its batch statistics between the threads' shards instead
 * (struct sgi_bn_sync: one barrier per BN forward, one per backward, where
 * sharing every layer between the threads meets at every node). Returns 0 (the
 * threads share each layer), 1 (no BN) or 2 (BN statistics over the team). */
static int g_bp_bn = 1;

void sgi_batch_parallel_bn_enable(int on) { g_bp_bn = on; }

static int batch_parallel_ok(const struct sg_model *m, int threads, int bs) {
    if (threads < 2 || bs < 2 * threads) return 0;
    int bn = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *n = &m->nodes[i];
        if (n->op == SG_OP_DROPOUT && n->p > 0) return 0;
        bn |= n->op == SG_OP_BN;
    }
    return !bn ? 1 : g_bp_bn ? 2 : 0;
}

struct bp_state {
    int t;               /* threads */
    struct sg_exec **e;  /* one one-thread executor each */
    float **grad;        /* one gradient each */
    struct sgi_bn_sync *sync; /* with BN: one per thread, sharing part */
    double *part;
};

static void bp_free(struct bp_state *b) {
    for (int i = 0; b->e && i < b->t; i++) sg_exec_free(b->e[i]);
    for (int i = 0; b->grad && i < b->t; i++) free(b->grad[i]);
    free(b->e), free(b->grad), free(b->sync), free(b->part);
    memset(b, 0, sizeof *b);
}

static enum sg_status bp_new(const struct sg_model *m, int threads, int bs, int bn,
                             struct bp_state *b) {
    b->t = threads;
    b->e = calloc((size_t)threads, sizeof *b->e);
    b->grad = calloc((size_t)threads, sizeof *b->grad);
    if (!b->e || !b->grad) return sgi_error(SG_ERR_NOMEM, "out of memory");
    if (bn) {
        int cmax = 1;
        for (int32_t i = 0; i < m->n_nodes; i++)
            if (m->nodes[i].op == SG_OP_BN && m->nodes[i].c > cmax) cmax = m->nodes[i].c;
        b->sync = calloc((size_t)threads, sizeof *b->sync);
        b->part = sgi_zalloc((size_t)2 * threads * SGI_BN_SLOT(cmax), sizeof *b->part);
        if (!b->sync || !b->part) return sgi_error(SG_ERR_NOMEM, "out of memory");
        for (int i = 0; i < threads; i++)
            b->sync[i] = (struct sgi_bn_sync){.t = i, .T = threads, .cmax = cmax, .part = b->part};
    }
    const int per = (bs + threads - 1) / threads;
    for (int i = 0; i < threads; i++) {
        enum sg_status s = sgi_exec_new_train(m, per, &b->e[i]);
        if (s != SG_OK) return s;
        b->e[i]->threads = 1;
        if (bn) b->e[i]->sync = &b->sync[i];
        if (!(b->grad[i] = sgi_alloc(m->arena_len, sizeof(float))))
            return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    return SG_OK;
}

/* One step on x[nb]: the mean loss and correct count; the batch's mean gradient
 * is the sum of the threads' gradients b->grad[t] (masked entries 0, as
 * sg_backward gives) weighted by share[t], which sgd_step adds. */
static enum sg_status bp_step(struct sg_model *m, struct bp_state *b, const float *x,
                              const uint8_t *y, int nb, size_t img, float *share, double *loss,
                              int *top1) {
    const int T = b->t;
    double ls[T];
    int cs[T], cnt[T];
    enum sg_status st[T];
    /* With BN (b->sync; every shard non-empty, see sg_train) every thread meets the
     * others at each BN, so each runs on its own thread of one team of T, and the
     * loss gradient is divided by the whole batch: the shards' gradients then add
     * up to the batch's. */
    for (int t = 0; b->sync && t < T; t++) {
        b->sync[t].n_all = nb, b->sync[t].seq = 0;
        b->e[t]->loss_div = nb;
    }
    int whole_team = 1;
    char why[512] = ""; /* the first failing thread's (thread-local) message */
#pragma omp parallel num_threads(T)
    {
        int nt = 1, me = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads(), me = omp_get_thread_num();
#endif
        if (nt != T) {
            /* a smaller team than asked for: without BN the threads take the
             * shards in turn; with BN nobody starts (the barriers need T) */
#pragma omp single
            whole_team = 0;
        }
        if (whole_team || !b->sync)
            for (int t = me; t < T; t += nt) {
                const int lo = (int)((int64_t)nb * t / T), n = (int)((int64_t)nb * (t + 1) / T) - lo;
                cnt[t] = n, ls[t] = 0, cs[t] = 0, st[t] = SG_OK;
                if (n <= 0) {
                    memset(b->grad[t], 0, m->arena_len * sizeof(float));
                    continue;
                }
                st[t] = sg_forward(m, b->e[t], x + (size_t)lo * img, n, 1, NULL);
                if (st[t] == SG_OK) {
                    ls[t] = sg_exec_loss(b->e[t], y + lo, &cs[t], NULL);
                    st[t] = sg_backward(m, b->e[t], b->grad[t]);
                }
                if (st[t] != SG_OK) sgi_error_keep(why, sizeof why);
            }
    }
    if (!whole_team && b->sync) return SG_ERR_UNSUPPORTED; /* sg_train runs it another way */
    double l = 0;
    int c = 0;
    for (int t = 0; t < T; t++) {
        if (st[t] != SG_OK) return sgi_error(st[t], "%s", why);
        l += ls[t] * cnt[t];
        c += cs[t];
    }
    for (int t = 0; t < T; t++) share[t] = b->sync ? 1.0f : (float)cnt[t] / (float)nb;
    *loss = l / nb;
    *top1 = c;
    return SG_OK;
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 31);
}

enum sg_status sg_train(struct sg_model *m, const struct sg_dataset *d,
                        const struct sg_train_cfg *cfg, struct sg_train_state *st_in) {
    if (!sg_model_runnable(m))
        return sgi_error(SG_ERR_UNSUPPORTED, "model '%s' has no runnable graph", m->arch);
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        return sgi_error(SG_ERR_MISMATCH,
                         "%s: %dx%dx%d images, but model '%s' expects %dx%dx%d (trained on "
                         "other data?)",
                         d->source, d->c, d->h, d->w, m->arch, m->in_c, m->in_h, m->in_w);
    if (d->classes > m->n_classes)
        return sgi_error(SG_ERR_MISMATCH, "%s: labels of %d classes, but model '%s' outputs %d",
                         d->source, d->classes, m->arch, m->n_classes);
    if (cfg->batch <= 0 || cfg->epochs < 0 || !(cfg->lr >= 0))
        return sgi_error(SG_ERR_ARG, "batch %d, epochs %d, lr %g", cfg->batch, cfg->epochs,
                         cfg->lr);
    enum sg_status ps = sg_model_check_preproc(m, d);
    if (ps != SG_OK) return ps;
    if (!m->preproc.stated) { /* record what this training applies */
        m->preproc.stated = 1;
        if (m->preproc.kind == SG_NORM_DATASET && m->preproc.n == 0) {
            m->preproc.n = 1;
            m->preproc.mean[0] = d->mean;
            m->preproc.std[0] = d->std;
        }
    }
    const int dp = cfg->reduce && cfg->shards > 1;
    if (dp && (cfg->shard < 0 || cfg->shard >= cfg->shards))
        return sgi_error(SG_ERR_ARG, "data-parallel shard %d of %d", cfg->shard, cfg->shards);
    struct sg_train_state *st = st_in, *own = NULL;
    if (!st) {
        enum sg_status s = sg_train_state_new(m, &own);
        if (s != SG_OK) return s;
        st = own;
    }
    if (st->len != m->arena_len) {
        sg_train_state_free(own);
        return sgi_error(SG_ERR_MISMATCH, "optimizer state does not match the model");
    }
    const int64_t n_all = d->n;
    const int64_t n_ep = cfg->max_images > 0 && cfg->max_images < n_all ? cfg->max_images : n_all;
    const int bs = cfg->batch;
    const size_t img = (size_t)d->c * d->h * d->w;
    struct sg_exec *e = NULL;
    struct bp_state bp = {0};
    float *bp_share = NULL; /* the threads' shares of a batch-parallel step */
    uint32_t *idx = sgi_alloc((size_t)n_all, sizeof *idx);
    float *x = sgi_alloc((size_t)bs * img, sizeof *x);
    /* data parallel: three more floats ride along with the gradient (see nn.h) */
    float *grad = sgi_alloc(m->arena_len + (dp ? 3 : 0), sizeof *grad);
    uint8_t *y = sgi_alloc((size_t)bs, 1);
    enum sg_status status = SG_OK;
    if (!idx || !x || !grad || !y) {
        status = SG_ERR_NOMEM;
        goto done;
    }
    const int bp_kind = dp ? 0 : batch_parallel_ok(m, sg_get_threads(), bs);
    if (bp_kind) {
        if ((status = bp_new(m, sg_get_threads(), bs, bp_kind == 2, &bp)) != SG_OK) goto done;
        if (!(bp_share = calloc((size_t)bp.t, sizeof *bp_share))) {
            status = SG_ERR_NOMEM;
            goto done;
        }
    } else if ((status = sgi_exec_new_train(m, bs, &e)) != SG_OK) {
        goto done;
    }
    sg_model_apply_masks(m);
    const int64_t nbatches = (n_ep + bs - 1) / bs;
    for (int epoch = st->epochs_done; epoch < cfg->epochs; epoch++) {
        sg_rng shuf, aug, drop;
        sg_rng_seed(&shuf, mix(cfg->seed, (uint64_t)epoch * 2 + 1));
        sg_rng_seed(&aug, mix(cfg->seed, (uint64_t)epoch * 2 + 2));
        /* Data-parallel workers augment the whole batch from the shared stream (so
         * an image is shifted as in one process) but drop out independently. */
        sg_rng_seed(&drop, mix(mix(cfg->seed, (uint64_t)epoch * 2 + 2), (uint64_t)cfg->shard + 1));
        for (int64_t i = 0; i < n_all; i++) idx[i] = (uint32_t)i;
        sg_rng_shuffle(&shuf, idx, (size_t)n_all);
        double loss_sum = 0, t0 = sg_now();
        int64_t correct = 0, seen = 0;
        for (int64_t b = 0; b < nbatches; b++) {
            const int nb = (int)((b + 1) * bs <= n_ep ? bs : n_ep - b * bs);
            if (cfg->on_batch &&
                (status = cfg->on_batch(cfg->on_batch_ctx, m, epoch + (double)b / nbatches)) != SG_OK)
                goto done;
            sg_dataset_batch(d, &m->preproc, idx + b * bs, nb, cfg->augment, &aug, x, y);
            int top1 = 0;
            double loss = 0;
            /* With BN, a batch too small to give every thread an image (the last of
             * an epoch), or a team smaller than asked for, runs through one executor
             * shared by the threads instead */
            int use_bp = bp_kind && (!bp.sync || nb >= bp.t);
            if (use_bp) {
                status = bp_step(m, &bp, x, y, nb, img, bp_share, &loss, &top1);
                if (status == SG_ERR_UNSUPPORTED && bp.sync)
                    use_bp = 0, status = SG_OK;
                else if (status != SG_OK)
                    goto done;
            }
            if (!dp && !use_bp && !e && (status = sgi_exec_new_train(m, bs, &e)) != SG_OK)
                goto done;
            if (dp) {
                if ((status = shard_step(m, e, cfg, x, y, nb, img, &drop, grad, &loss, &top1)) != SG_OK)
                    goto done;
            } else if (!use_bp) {
                if ((status = sg_forward(m, e, x, nb, 1, &aug)) != SG_OK) goto done;
                loss = sg_exec_loss(e, y, &top1, NULL);
            }
            if (!isfinite(loss)) {
                status = sgi_error(SG_ERR_ARG,
                                   "training diverged at epoch %d batch %lld (loss %g); lower "
                                   "the learning rate",
                                   epoch + 1, (long long)b, loss);
                goto done;
            }
            if (!dp && !use_bp && (status = sg_backward(m, e, grad)) != SG_OK) goto done;
            const float lr = sg_train_lr(cfg, epoch + (double)b / nbatches);
            if (use_bp)
                sgd_step(m, (const float *const *)bp.grad, bp_share, bp.t, st->velocity, lr,
                         cfg->momentum, cfg->weight_decay);
            else
                sgd_step(m, (const float *const *)&grad, NULL, 1, st->velocity, lr,
                         cfg->momentum, cfg->weight_decay);
            loss_sum += loss * nb;
            correct += top1;
            seen += nb;
            if (cfg->progress) {
                const double el = sg_now() - t0;
                struct sg_progress p = {cfg->stage ? cfg->stage : "train",
                                        b + 1,
                                        nbatches,
                                        epoch + 1,
                                        cfg->epochs,
                                        loss_sum / seen,
                                        (double)correct / seen,
                                        seen / (el > 1e-9 ? el : 1e-9),
                                        el / (b + 1) * (nbatches - b - 1) +
                                            el / (b + 1) * nbatches * (cfg->epochs - epoch - 1)};
                if (cfg->progress(cfg->progress_ctx, &p)) {
                    status = sgi_error(SG_ERR_INTERRUPTED, "training interrupted");
                    goto done;
                }
            }
        }
        st->epochs_done = epoch + 1;
        st->last_loss = loss_sum / (seen ? seen : 1);
        st->last_acc = (double)correct / (seen ? seen : 1);
        if (cfg->on_epoch && (status = cfg->on_epoch(cfg->on_epoch_ctx, m, st)) != SG_OK)
            goto done;
    }
done:
    sg_exec_free(e);
    bp_free(&bp);
    free(bp_share);
    free(idx);
    free(x);
    free(grad);
    free(y);
    sg_train_state_free(own);
    return status;
}

enum sg_status sg_model_check_preproc(const struct sg_model *m, const struct sg_dataset *d) {
    if (sg_preproc_check(&m->preproc, d->c) == SG_OK) return SG_OK;
    char why[256];
    snprintf(why, sizeof why, "%s", sg_last_error());
    return sgi_error(SG_ERR_MISMATCH, "model '%s' cannot take the %d-channel images of %s: its "
                     "input preprocessing has %s", m->arch, d->c, d->source, why);
}

/* Evaluation: the images in chunks of `batch` (default SG_EVAL_BATCH), each thread
 * with its own one-thread executor taking chunks in turn. Small chunks keep every
 * layer's output in the core's cache (at 500 images a chunk LeNet-5's first layer
 * alone wrote 23 MB), and threads that share no layer need no meeting point. Every
 * chunk runs on one thread (a data set of fewer chunks than threads leaves threads
 * idle; OpenBLAS inside the team is single-threaded), so a chunk's logits do not
 * depend on the thread count, and the loss is summed chunk by chunk in chunk order:
 * the result is the same for any thread count. With
 * the library's own AVX-512 products each logit is one chain whatever the chunk size
 * too; through OpenBLAS it may round differently by chunk size. */
enum sg_status sg_evaluate(struct sg_model *m, const struct sg_dataset *d, int batch,
                           struct sg_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        return sgi_error(SG_ERR_MISMATCH,
                         "%s: %dx%dx%d images, but model '%s' expects %dx%dx%d (trained on "
                         "other data?)",
                         d->source, d->c, d->h, d->w, m->arch, m->in_c, m->in_h, m->in_w);
    if (d->classes > m->n_classes)
        return sgi_error(SG_ERR_MISMATCH, "%s: labels of %d classes, but model '%s' outputs %d",
                         d->source, d->classes, m->arch, m->n_classes);
    if (batch <= 0) batch = SG_EVAL_BATCH;
    enum sg_status st = sg_model_check_preproc(m, d);
    if (st != SG_OK) return st;
    const size_t img = (size_t)d->c * d->h * d->w;
    const int64_t chunks = (d->n + batch - 1) / batch;
    /* a team of T threads even for fewer chunks (the idle ones take none): inside an
     * active team the layers and OpenBLAS run on one thread each, as in training */
    int T = sg_get_threads();
    if (T < 1) T = 1;
    const int E = T > chunks ? (chunks > 0 ? (int)chunks : 1) : T; /* executors in use */
    struct sg_exec *e[T];
    float *x[T];
    uint32_t *idx[T];
    uint8_t *y[T];
    enum sg_status sts[T];
    int64_t c1[T], c5[T];
    memset(e, 0, sizeof e), memset(x, 0, sizeof x), memset(idx, 0, sizeof idx), memset(y, 0, sizeof y);
    double *closs = sgi_alloc(chunks > 0 ? (size_t)chunks : 1, sizeof *closs);
    if (!closs) return SG_ERR_NOMEM;
    for (int t = 0; t < T; t++) sts[t] = SG_OK, c1[t] = c5[t] = 0;
    for (int t = 0; t < E; t++) {
        if ((st = sg_exec_new(m, batch, 0, &e[t])) != SG_OK) goto done;
        e[t]->threads = 1; /* a chunk on one thread, whatever the team: the same bits */
        x[t] = sgi_alloc((size_t)batch * img, sizeof *x[t]);
        idx[t] = sgi_alloc((size_t)batch, sizeof *idx[t]);
        y[t] = sgi_alloc((size_t)batch, 1);
        if (!x[t] || !idx[t] || !y[t]) {
            st = SG_ERR_NOMEM;
            goto done;
        }
    }
    char why[512] = "";
    const double t0 = sg_now();
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int me = 0, nt = 1;
        sgi_omp_team(&me, &nt);
        for (int64_t k = me; me < E && k < chunks && sts[me] == SG_OK; k += nt) {
            const int64_t b0 = k * batch;
            const int nb = (int)(d->n - b0 < batch ? d->n - b0 : batch);
            for (int i = 0; i < nb; i++) idx[me][i] = (uint32_t)(b0 + i);
            sg_dataset_batch(d, &m->preproc, idx[me], nb, SG_AUG_NONE, NULL, x[me], y[me]);
            if ((sts[me] = sg_forward(m, e[me], x[me], nb, 0, NULL)) != SG_OK) {
                sgi_error_keep(why, sizeof why); /* the caller reports it */
                break;
            }
            int t1, t5;
            closs[k] = sg_exec_loss(e[me], y[me], &t1, &t5) * nb;
            c1[me] += t1;
            c5[me] += t5;
        }
    }
    double loss = 0;
    int64_t n1 = 0, n5 = 0;
    for (int t = 0; t < T; t++) {
        if (sts[t] != SG_OK && st == SG_OK) st = sts[t];
        n1 += c1[t], n5 += c5[t];
    }
    if (st != SG_OK) {
        sgi_error(st, "%s", why);
        goto done;
    }
    for (int64_t k = 0; k < chunks; k++) loss += closs[k];
    r->n = d->n;
    r->top1 = d->n ? (double)n1 / d->n : 0;
    r->top5 = d->n ? (double)n5 / d->n : 0;
    r->loss = d->n ? loss / d->n : 0;
    r->seconds = sg_now() - t0;
done:
    for (int t = 0; t < E; t++) {
        sg_exec_free(e[t]);
        free(x[t]);
        free(idx[t]);
        free(y[t]);
    }
    free(closs);
    return st;
}
