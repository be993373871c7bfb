/* The inference executor: a layer plan per conv/fc node (dense, or the sparse
 * kernel its mask suggests, or whichever was faster when measured), plugged into
 * nn's graph walk (sg_exec_new_hooked), which runs every other op.
 * The auto engine's choices are cached beside the model in PATH.engine, a small
 * text file keyed by the model file's size, modification time and a CRC of its
 * masks, and by the batch and thread count the times were measured at. */
#include <float.h>
#include <math.h>
#include <sys/stat.h>

#include "infer/sparse_plan.h"

static const char *const ENGINE_NAMES[SG_ENGINE_COUNT] = {"dense", "sparse", "auto"};

const char *sg_engine_name(enum sg_engine e) {
    return (unsigned)e < SG_ENGINE_COUNT ? ENGINE_NAMES[e] : "?";
}

int sg_engine_from_name(const char *s) {
    for (int i = 0; i < SG_ENGINE_COUNT; i++)
        if (strcmp(ENGINE_NAMES[i], s) == 0) return i;
    return -1;
}

void sg_infer_cfg_default(struct sg_infer_cfg *c) {
    memset(c, 0, sizeof *c);
    c->engine = SG_ENGINE_SPARSE;
    c->batch = 256;
    c->auto_repeats = 3;
    c->kernel = SG_KIND_AUTO;
}

struct layer {
    int32_t node;
    struct sg_conv_plan *plan;
    struct sg_conv_plan *dense; /* auto: the dense plan measured against plan, until settle */
    struct sg_infer_layer info;
};

struct sg_infer {
    const struct sg_model *m;
    struct sg_infer_cfg cfg;
    struct sg_exec *e; /* the graph walk and activations; conv/fc through run_layer */
    int32_t nl;
    struct layer *layers;
    int32_t *layer_of; /* node -> layer index, -1 for other ops */
    enum sg_cache_state cache;
    char cache_note[256];
};

static const float *param(const struct sg_model *m, int32_t i) {
    return i >= 0 ? m->arena + m->params[i].offset : NULL;
}

static struct sg_conv_geom layer_geom(const struct sg_model *m, const struct sg_node *n) {
    const struct sg_node *x = &m->nodes[n->in[0]];
    if (n->op == SG_OP_FC) {
        struct sg_conv_geom g = {1, x->c * x->h * x->w, 1, 1, n->k, 1, 1, 1, 1, 0, 0, 0, 0,
                                 1, 1, 1, 1, 1};
        return g;
    }
    struct sg_conv_geom g = {1,     x->c,  x->h,  x->w,  n->k,  n->kh,     n->kw, n->sh, n->sw,
                             n->pt, n->pl, n->pb, n->pr, n->dh, n->dw, n->groups, n->h,  n->w};
    return g;
}

void sg_infer_free(struct sg_infer *inf) {
    if (!inf) return;
    sg_exec_free(inf->e);
    for (int32_t i = 0; i < inf->nl; i++) {
        sg_conv_plan_free(inf->layers[i].plan);
        sg_conv_plan_free(inf->layers[i].dense);
    }
    free(inf->layers);
    free(inf->layer_of);
    free(inf);
}

static enum sg_status build_plan(const struct sg_model *m, const struct sg_node *nd,
                                 enum sg_conv_kind kind, struct sg_conv_plan **out) {
    const struct sg_conv_geom g = layer_geom(m, nd);
    const struct sg_param *wp = &m->params[nd->param[0]];
    enum sg_status st = sg_conv_plan_new(&g, nd->op == SG_OP_FC, param(m, nd->param[0]),
                                         m->mask + wp->offset, param(m, nd->param[1]), kind,
                                         NULL, out);
    return st == SG_OK ? SG_OK : sgi_error_prefix(st, nd->name);
}

/* ---- the auto engine's cache ---- */
struct cache_key {
    uint64_t size, mtime_ns;
    uint32_t mask_crc;
    int batch, threads;
};

static int cache_key_of(const struct sg_infer *inf, struct cache_key *k) {
    struct stat st;
    if (!inf->cfg.model_path || stat(inf->cfg.model_path, &st) != 0) return 0;
    const struct sg_model *m = inf->m;
    k->size = (uint64_t)st.st_size;
    k->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    k->mask_crc = 0;
    for (int32_t i = 0; i < m->n_params; i++)
        if (m->params[i].kind == SG_PARAM_WEIGHT && m->params[i].layer != SG_LAYER_NONE)
            k->mask_crc = sgi_crc32(k->mask_crc, m->mask + m->params[i].offset, m->params[i].count);
    k->batch = inf->cfg.batch;
    k->threads = sg_get_threads();
    return 1;
}

#define CACHE_MAGIC "sparsegrain-engine-cache 1"

/* Applies a cache file when it matches this model, batch and thread count in
 * every line; returns 1 when it did. The file is untrusted: a line that does
 * not parse, or any difference, makes the whole file stale. */
static int cache_read(struct sg_infer *inf, const char *path, const struct cache_key *k) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (sg_file_read(path, (size_t)1 << 20, 0, &buf, &len) != SG_OK) {
        sg_clear_error();
        return 0;
    }
    char *text = malloc(len + 1);
    if (!text) {
        free(buf);
        return 0;
    }
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    int ok = 0, line_no = 0, lay = 0;
    struct cache_key f;
    memset(&f, 0, sizeof f);
    char *save = NULL;
    int *engines = malloc((size_t)(inf->nl + 1) * sizeof *engines);
    double *td = malloc((size_t)(inf->nl + 1) * sizeof *td);
    double *ts = malloc((size_t)(inf->nl + 1) * sizeof *ts);
    if (!engines || !td || !ts) goto done;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), line_no++) {
        char name[SG_NAME_MAX], eng[16], kind[16];
        unsigned long long a;
        unsigned x;
        int b;
        double d, s;
        if (line_no == 0) {
            if (strcmp(ln, CACHE_MAGIC) != 0) goto done;
        } else if (sscanf(ln, "model_bytes %llu", &a) == 1) {
            f.size = a;
        } else if (sscanf(ln, "model_mtime_ns %llu", &a) == 1) {
            f.mtime_ns = a;
        } else if (sscanf(ln, "mask_crc %x", &x) == 1) {
            f.mask_crc = x;
        } else if (sscanf(ln, "batch %d", &b) == 1) {
            f.batch = b;
        } else if (sscanf(ln, "threads %d", &b) == 1) {
            f.threads = b;
        } else if (sscanf(ln, "layer %95s %15s %15s %lf %lf", name, eng, kind, &d, &s) == 5) {
            if (lay >= inf->nl) goto done;
            const struct layer *l = &inf->layers[lay];
            const int e = sg_engine_from_name(eng);
            /* layers whose sparse plan is dense anyway are not measured: -1 */
            const int measured = l->info.plan.kind != SG_KIND_DENSE;
            if (strcmp(name, inf->m->nodes[l->node].name) != 0 ||
                (e != SG_ENGINE_DENSE && e != SG_ENGINE_SPARSE) ||
                strcmp(kind, sg_conv_kind_name(l->info.plan.kind)) != 0 ||
                (measured ? !(d > 0 && s > 0 && d < 1e6 && s < 1e6) : d != -1 || s != -1))
                goto done;
            engines[lay] = e, td[lay] = d, ts[lay] = s;
            lay++;
        } else if (strcmp(ln, "end") == 0) {
            ok = 1;
            break;
        } else {
            goto done;
        }
    }
    ok = ok && lay == inf->nl && f.size == k->size && f.mtime_ns == k->mtime_ns &&
         f.mask_crc == k->mask_crc && f.batch == k->batch && f.threads == k->threads;
    if (ok)
        for (int i = 0; i < lay; i++) {
            inf->layers[i].info.engine = (enum sg_engine)engines[i];
            inf->layers[i].info.auto_dense_s = td[i];
            inf->layers[i].info.auto_sparse_s = ts[i];
            inf->layers[i].info.from_cache = 1;
        }
done:
    free(text);
    free(engines);
    free(td);
    free(ts);
    return ok;
}

static enum sg_status cache_write(const struct sg_infer *inf, const char *path,
                                  const struct cache_key *k) {
    struct sgi_buf b = {0};
    sgi_buf_printf(&b, "%s\nmodel_bytes %llu\nmodel_mtime_ns %llu\nmask_crc %08x\nbatch %d\n"
                       "threads %d\n",
                   CACHE_MAGIC, (unsigned long long)k->size, (unsigned long long)k->mtime_ns,
                   k->mask_crc, k->batch, k->threads);
    for (int32_t i = 0; i < inf->nl; i++) {
        const struct sg_infer_layer *l = &inf->layers[i].info;
        sgi_buf_printf(&b, "layer %s %s %s %.9g %.9g\n", inf->m->nodes[l->node].name,
                       sg_engine_name(l->engine), sg_conv_kind_name(l->plan.kind),
                       l->auto_dense_s, l->auto_sparse_s);
    }
    sgi_buf_printf(&b, "end\n");
    enum sg_status st = b.failed ? sgi_error(SG_ERR_NOMEM, "out of memory")
                                 : sg_file_write_atomic(path, b.data, b.len);
    sgi_buf_free(&b);
    return st;
}

/* Swaps plan and dense in the layers measured against a dense plan. */
static void swap_plans(struct sg_infer *inf) {
    for (int32_t i = 0; i < inf->nl; i++) {
        struct layer *l = &inf->layers[i];
        if (!l->dense) continue;
        struct sg_conv_plan *t = l->plan;
        l->plan = l->dense;
        l->dense = t;
    }
}

/* Measures dense against sparse for every layer whose sparse plan is not dense
 * itself, inside the network: forward passes of a random batch at the configured
 * size, every such layer dense in one pass and sparse in the next (alternating, so
 * that both meet the machine's same moments), after a warm-up pass of each; a
 * layer's time is its fastest over the passes, and it keeps the faster plan (the
 * dense one waits in l->dense for settle).
 * Timed alone on a warm input a layer can look faster sparse than it runs between
 * the layers around it: on an AVX2 build VGG-7's conv3 and conv4 did, and the
 * network auto chose that way was no faster than dense. */
static enum sg_status measure(struct sg_infer *inf) {
    const struct sg_model *m = inf->m;
    const int B = inf->cfg.batch, rep = inf->cfg.auto_repeats > 0 ? inf->cfg.auto_repeats : 1;
    double *td = sgi_alloc((size_t)inf->nl * 2, sizeof *td), *ts = td ? td + inf->nl : NULL;
    const size_t nx = (size_t)B * m->in_c * m->in_h * m->in_w;
    float *x = sgi_alloc(nx, sizeof *x);
    enum sg_status st = SG_OK;
    if (!td || !x) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    int any = 0;
    for (int32_t i = 0; i < inf->nl && st == SG_OK; i++) {
        struct layer *l = &inf->layers[i];
        td[i] = ts[i] = INFINITY;
        if (l->info.plan.kind == SG_KIND_DENSE) continue;
        st = build_plan(m, &m->nodes[l->node], SG_KIND_DENSE, &l->dense);
        any = 1;
    }
    if (st != SG_OK || !any) goto done;
    sg_rng r;
    sg_rng_seed(&r, 12345);
    for (size_t i = 0; i < nx; i++) x[i] = sg_rng_normal(&r);
    for (int pass = 0; pass <= rep && st == SG_OK; pass++) /* pass 0: the warm-up */
        for (int dense = 1; dense >= 0 && st == SG_OK; dense--) {
            if (dense) swap_plans(inf);
            for (int32_t i = 0; i < inf->nl; i++) inf->layers[i].info.seconds = 0;
            st = sg_infer_forward(inf, x, B);
            if (dense) swap_plans(inf);
            for (int32_t i = 0; i < inf->nl && pass > 0; i++) {
                double *t = dense ? &td[i] : &ts[i];
                if (inf->layers[i].info.seconds < *t) *t = inf->layers[i].info.seconds;
            }
        }
    for (int32_t i = 0; i < inf->nl && st == SG_OK; i++) {
        struct layer *l = &inf->layers[i];
        if (!l->dense) continue;
        l->info.auto_dense_s = td[i];
        l->info.auto_sparse_s = ts[i];
        l->info.engine = ts[i] < td[i] ? SG_ENGINE_SPARSE : SG_ENGINE_DENSE;
    }
done:
    for (int32_t i = 0; i < inf->nl; i++) {
        inf->layers[i].info.seconds = 0; /* the layer times -v shows are the evaluation's */
        inf->layers[i].info.calls = 0;
    }
    free(td);
    free(x);
    return st;
}

/* After the choice: layers that run dense get a dense plan (the one measure built,
 * or a new one when the choice came from the cache); unused dense plans go. */
static enum sg_status settle(struct sg_infer *inf) {
    for (int32_t i = 0; i < inf->nl; i++) {
        struct layer *l = &inf->layers[i];
        if (l->info.engine == SG_ENGINE_DENSE && l->info.plan.kind != SG_KIND_DENSE) {
            struct sg_conv_plan *d = l->dense;
            l->dense = NULL;
            if (!d) {
                enum sg_status st = build_plan(inf->m, &inf->m->nodes[l->node], SG_KIND_DENSE, &d);
                if (st != SG_OK) return st;
            }
            sg_conv_plan_free(l->plan);
            l->plan = d;
            sg_conv_plan_get_info(d, &l->info.plan);
        }
        sg_conv_plan_free(l->dense);
        l->dense = NULL;
    }
    return SG_OK;
}

static void choose_auto(struct sg_infer *inf, enum sg_status *st) {
    struct cache_key k = {0};
    const int keyed = cache_key_of(inf, &k);
    char path[4096];
    if (keyed) {
        snprintf(path, sizeof path, "%s.engine", inf->cfg.model_path);
        if (cache_read(inf, path, &k)) {
            inf->cache = SG_CACHE_READ;
            return;
        }
    }
    if ((*st = measure(inf)) != SG_OK || !keyed) return;
    if (cache_write(inf, path, &k) == SG_OK) {
        inf->cache = SG_CACHE_WRITTEN;
    } else {
        inf->cache = SG_CACHE_FAILED;
        snprintf(inf->cache_note, sizeof inf->cache_note, "%s", sg_last_error());
        sg_clear_error();
    }
}

/* The layer hook: conv/fc node `node` through its plan, timed. */
static enum sg_status run_layer(void *ctx, int32_t node, int n, const float *x, float *y) {
    struct sg_infer *inf = ctx;
    struct layer *l = &inf->layers[inf->layer_of[node]];
    const double t0 = sg_now();
    enum sg_status st = sg_conv_plan_run(l->plan, n, x, y);
    if (st != SG_OK) return sgi_error_prefix(st, inf->m->nodes[node].name);
    l->info.seconds += sg_now() - t0;
    l->info.calls++;
    return SG_OK;
}

enum sg_status sg_infer_new(const struct sg_model *m, const struct sg_infer_cfg *cfg,
                            struct sg_infer **out) {
    *out = NULL;
    if (!sg_model_runnable(m))
        return sgi_error(SG_ERR_UNSUPPORTED, "model '%s' has no runnable graph (weights only)",
                         m->arch);
    if (cfg->batch <= 0 || cfg->batch > (1 << 20))
        return sgi_error(SG_ERR_ARG, "batch size %d", cfg->batch);
    if ((unsigned)cfg->engine >= SG_ENGINE_COUNT)
        return sgi_error(SG_ERR_ARG, "unknown engine %d", (int)cfg->engine);
    if ((unsigned)cfg->kernel >= SG_KIND_COUNT)
        return sgi_error(SG_ERR_ARG, "unknown kernel kind %d", (int)cfg->kernel);
    struct sg_infer *inf = calloc(1, sizeof *inf);
    if (!inf) return sgi_error(SG_ERR_NOMEM, "out of memory");
    inf->m = m;
    inf->cfg = *cfg;
    const size_t nn = (size_t)m->n_nodes;
    inf->layer_of = sgi_alloc(nn, sizeof *inf->layer_of);
    inf->layers = calloc(nn, sizeof *inf->layers);
    enum sg_status st = SG_OK;
    if (!inf->layer_of || !inf->layers) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const struct sg_layer_hook hook = {run_layer, inf};
    if ((st = sg_exec_new_hooked(m, cfg->batch, &hook, &inf->e)) != SG_OK) {
        if (st == SG_ERR_NOMEM)
            st = sgi_error(SG_ERR_NOMEM, "out of memory for the activations of batch %d",
                           cfg->batch);
        goto fail;
    }
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *n = &m->nodes[i];
        inf->layer_of[i] = -1;
        if ((n->op != SG_OP_CONV && n->op != SG_OP_FC) || n->param[0] < 0) continue;
        struct layer *l = &inf->layers[inf->nl];
        l->node = i;
        const enum sg_conv_kind kind = cfg->engine == SG_ENGINE_DENSE ? SG_KIND_DENSE : cfg->kernel;
        st = build_plan(m, n, kind, &l->plan);
        if (st == SG_ERR_UNSUPPORTED && kind != SG_KIND_AUTO) { /* a forced kind that cannot */
            sg_clear_error();
            st = build_plan(m, n, SG_KIND_AUTO, &l->plan);
        }
        if (st != SG_OK) goto fail;
        sg_conv_plan_get_info(l->plan, &l->info.plan);
        l->info.name = n->name;
        l->info.node = i;
        l->info.density = l->info.plan.weights ? (double)l->info.plan.nnz / l->info.plan.weights : 0;
        l->info.engine = l->info.plan.kind == SG_KIND_DENSE ? SG_ENGINE_DENSE : SG_ENGINE_SPARSE;
        l->info.auto_dense_s = l->info.auto_sparse_s = -1;
        inf->layer_of[i] = inf->nl++;
    }
    if (cfg->engine == SG_ENGINE_AUTO) {
        choose_auto(inf, &st);
        if (st == SG_OK) st = settle(inf);
        if (st != SG_OK) goto fail;
    }
    *out = inf;
    return SG_OK;
fail:
    sg_infer_free(inf);
    return st;
}

enum sg_status sg_infer_forward(struct sg_infer *inf, const float *x, int n) {
    /* an executor without training never writes the model */
    return sg_forward((struct sg_model *)inf->m, inf->e, x, n, 0, NULL);
}

void sg_infer_logits(const struct sg_infer *inf, float *out) { sg_exec_logits(inf->e, out); }

const float *sg_infer_output(const struct sg_infer *inf, int32_t node, int *n_out) {
    return sg_exec_output(inf->e, node, n_out);
}

enum sg_status sg_infer_evaluate(struct sg_infer *inf, const struct sg_dataset *d,
                                 struct sg_infer_result *r) {
    const struct sg_model *m = inf->m;
    memset(r, 0, sizeof *r);
    if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        return sgi_error(SG_ERR_MISMATCH,
                         "data set '%s' has %dx%dx%d images, model '%s' expects %dx%dx%d", d->name,
                         d->c, d->h, d->w, m->arch, m->in_c, m->in_h, m->in_w);
    if (d->classes > m->n_classes)
        return sgi_error(SG_ERR_MISMATCH, "data set '%s' has %d classes, model outputs %d",
                         d->name, d->classes, m->n_classes);
    enum sg_status ps = sg_model_check_preproc(m, d);
    if (ps != SG_OK) return ps;
    const int batch = inf->cfg.batch;
    const size_t img = (size_t)d->c * d->h * d->w;
    /* ranks come from the logits (a final softmax keeps the order) */
    int32_t zn = m->output;
    if (m->nodes[zn].op == SG_OP_SOFTMAX) zn = m->nodes[zn].in[0];
    const int k = m->nodes[zn].c;
    float *x = sgi_alloc((size_t)batch * img, sizeof *x);
    uint32_t *idx = sgi_alloc((size_t)batch, sizeof *idx);
    uint8_t *y = sgi_alloc((size_t)batch, 1);
    enum sg_status st = SG_OK;
    if (!x || !idx || !y) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    int64_t c1 = 0, c5 = 0, batches = 0;
    double secs = 0;
    for (int64_t b0 = 0; b0 < d->n; b0 += batch) {
        const int nb = (int)(d->n - b0 < batch ? d->n - b0 : batch);
        for (int i = 0; i < nb; i++) idx[i] = (uint32_t)(b0 + i);
        sg_dataset_batch(d, &m->preproc, idx, nb, SG_AUG_NONE, NULL, x, y);
        const double t0 = sg_now();
        if ((st = sg_infer_forward(inf, x, nb)) != SG_OK) goto done;
        secs += sg_now() - t0;
        batches++;
        const float *z = sg_exec_output(inf->e, zn, NULL);
        for (int b = 0; b < nb; b++) {
            const int lab = y[b] < k ? y[b] : 0;
            const float zy = z[(size_t)lab * nb + b];
            int above = 0; /* classes scoring strictly higher (ties count as correct) */
            for (int i = 0; i < k; i++) above += z[(size_t)i * nb + b] > zy;
            c1 += above == 0;
            c5 += above < 5;
        }
    }
    r->n = d->n;
    r->top1 = d->n ? (double)c1 / d->n : 0;
    r->top5 = d->n ? (double)c5 / d->n : 0;
    r->seconds = secs;
    r->images_per_s = secs > 0 ? d->n / secs : 0;
    r->ms_per_batch = batches ? 1e3 * secs / batches : 0;
done:
    free(x);
    free(idx);
    free(y);
    return st;
}

int32_t sg_infer_layer_count(const struct sg_infer *inf) { return inf->nl; }

void sg_infer_layer_get(const struct sg_infer *inf, int32_t i, struct sg_infer_layer *out) {
    *out = inf->layers[i].info;
}

enum sg_cache_state sg_infer_cache_state(const struct sg_infer *inf, const char **note) {
    if (note) *note = inf->cache_note;
    return inf->cache;
}
