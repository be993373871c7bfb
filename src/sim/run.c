/* Whole networks through the SCNN model: the paper's ImageNet shapes with
 * synthetic data, or a trained model with real activations from real images. */
#include <math.h>

#include "sim/simi.h"

void sg_scnn_run_free(struct sg_scnn_run *r) {
    if (!r) return;
    free(r->layers);
    free(r);
}

/* Is name in the comma-separated list? (NULL list: everything is.) */
static int listed(const char *list, const char *name) {
    if (!list) return 1;
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Every name of the list must exist: a typo must not silently simulate nothing. */
static enum sg_status check_list(const char *list, const char *const *names, int n,
                                 const char *what) {
    if (!list) return SG_OK;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = strlen(names[i]) == len && strncmp(names[i], p, len) == 0;
        if (!found)
            return sgi_error(SG_ERR_ARG, "unknown layer '%.*s' in the layer list of %s (first "
                             "layer: %s)", (int)len, p, what, n ? names[0] : "none");
        if (!e) break;
        p = e + 1;
    }
    return SG_OK;
}

static double max_rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* Simulates a (possibly grouped) layer for one image, each conv group after the
 * other; g describes the whole layer (g->c all input channels). */
static enum sg_status sim_layer(const struct sg_scnn_config *cfg, const struct sg_conv_geom *g,
                                const float *w, const float *x, int verify,
                                struct sg_scnn_layer_result *res) {
    struct sg_conv_geom gg = *g;
    gg.c = g->c / g->groups;
    gg.k = g->k / g->groups;
    gg.groups = 1;
    gg.n = 1;
    enum sg_status s = sg_conv_geom_finish(&gg);
    if (s != SG_OK) return s;
    res->geom = gg;
    res->groups = g->groups;
    const size_t ny = (size_t)gg.k * gg.p * gg.q, nw = (size_t)gg.k * gg.c * gg.r * gg.s,
                 nx = (size_t)gg.c * gg.h * gg.w;
    float *y = sgi_alloc(ny, sizeof *y), *yref = verify ? sgi_alloc(ny, sizeof *yref) : NULL;
    if (!y || (verify && !yref)) {
        free(y), free(yref);
        return SG_ERR_NOMEM;
    }
    for (int gi = 0; gi < g->groups && s == SG_OK; gi++) {
        const float *wg = w + (size_t)gi * nw, *xg = x + (size_t)gi * nx;
        struct sg_scnn_stats st;
        s = sg_scnn_layer(cfg, &gg, wg, xg, y, &st);
        if (s != SG_OK) break;
        sg_scnn_stats_add(&res->st, &st);
        if (verify) {
            sg_conv2d_ref(&gg, xg, wg, NULL, yref);
            double e = max_rel_err(y, yref, ny);
            if (!(e <= res->max_rel_err)) res->max_rel_err = e;
            res->verified = 1;
        }
    }
    free(y), free(yref);
    return s;
}

static int report(sg_progress_fn fn, void *ctx, int64_t step, int64_t total) {
    if (!fn) return 0;
    struct sg_progress p = {"scnn", step, total, 0, 0, 0.0, -1.0, 0.0, -1.0};
    return fn(ctx, &p);
}

/* A filter's stream per input channel is one kernel. */
enum sg_scnn_gran_unit sg_scnn_index_unit(enum sg_scnn_gran g) {
    return g == SG_SCNN_GRAN_FINE ? SG_SCNN_UNIT_WEIGHT
           : g == SG_SCNN_GRAN_VECTOR ? SG_SCNN_UNIT_ROW : SG_SCNN_UNIT_KERNEL;
}

static void finish_densities(struct sg_scnn_layer_result *r) {
    r->weight_density = r->st.weights ? (double)r->st.weight_nnz / (double)r->st.weights : 0;
    r->act_density = r->st.acts ? (double)r->st.act_nnz / (double)r->st.acts : 0;
}

/* One layer's synthetic weights (pruned) and input. The generator is seeded by
 * the layer's table position, so layers can be made in any order, each by one
 * thread, and give what a serial run gives. */
struct synth {
    int i; /* table position */
    struct sg_conv_geom g;
    float *w, *x;
    enum sg_status s;
    int prefix; /* the error is the layer's data's: prefix the layer name */
    char msg[1024];
};

size_t sgi_scnn_synth_chunk = (size_t)1 << 25;

static size_t synth_elems(const struct sg_scnn_shape *l) {
    return (size_t)l->k * l->c * l->r * l->s + (size_t)l->c * l->groups * l->h * l->w;
}

static void synth_layer(const struct sg_scnn_net_opts *o, const struct sg_scnn_shape *l,
                        struct synth *y) {
    const int i = y->i;
    struct sg_conv_geom g = {1, l->c * l->groups, l->h, l->w, l->k, l->r, l->s, l->stride,
                             l->stride, l->pad, l->pad, l->pad, l->pad, 1, 1, l->groups, 0, 0};
    enum sg_status s = sg_conv_geom_finish(&g);
    y->g = g;
    if (s == SG_OK) {
        const size_t nw = (size_t)l->k * l->c * l->r * l->s, nx = (size_t)g.c * g.h * g.w;
        y->w = sgi_alloc(nw, sizeof *y->w);
        y->x = sgi_alloc(nx, sizeof *y->x);
        if (!y->w || !y->x) s = SG_ERR_NOMEM;
        const int dense_first = i == 0 && !o->prune_first;
        const double wd = o->layer_density ? o->layer_density[i] : o->weight_density;
        const double ad = o->layer_act_density ? o->layer_act_density[i] : o->act_density;
        if (s == SG_OK && (!(wd <= 1) || !(ad <= 1)))
            s = sgi_error(SG_ERR_ARG, "%s: densities must be at most 1", l->name);
        if (s == SG_OK) {
            sg_rng rng;
            sg_rng_seed(&rng, o->seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull));
            y->prefix = 1;
            sgi_scnn_synth_weights(y->w, nw, &rng);
            if (!dense_first && wd >= 0)
                s = sg_scnn_prune_groups(y->w, l->k, l->c, l->r, l->s, o->gran, wd, NULL);
            if (s == SG_OK)
                s = sgi_scnn_synth_acts(y->x, nx, dense_first || ad < 0 ? 1.0 : ad, dense_first,
                                        &rng);
        }
    }
    y->s = s;
    if (s != SG_OK) { /* the message is this thread's: keep it for the caller */
        snprintf(y->msg, sizeof y->msg, "%s", sg_last_error());
        free(y->w), free(y->x);
        y->w = y->x = NULL;
    }
}

enum sg_status sg_scnn_run_net(const struct sg_scnn_config *c, const struct sg_scnn_net_opts *o,
                               sg_progress_fn progress, void *ctx, struct sg_scnn_run **out) {
    *out = NULL;
    if ((unsigned)o->gran >= SG_SCNN_GRAN_COUNT || !(o->weight_density >= 0 && o->weight_density <= 1) ||
        !(o->act_density >= 0 && o->act_density <= 1))
        return sgi_error(SG_ERR_ARG, "granularity or densities out of range (densities in [0, 1])");
    enum sg_status s = sg_scnn_config_check(c);
    if (s != SG_OK) return s;
    struct sg_scnn_shape *L;
    int n;
    if ((s = sg_scnn_net_layers(o->net, &L, &n)) != SG_OK) return s;
    const char **names = sgi_alloc((size_t)n + 1, sizeof *names);
    struct sg_scnn_run *run = calloc(1, sizeof *run);
    if (!names || !run) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) names[i] = L[i].name;
    if ((s = check_list(o->layers, names, n, o->net)) != SG_OK) goto done;
    if ((o->layer_density && o->n_layer_density != n) ||
        (o->layer_act_density && o->n_layer_act_density != n)) {
        s = sgi_error(SG_ERR_ARG, "%s has %d layers, %d weight and %d activation densities given",
                      o->net, n, o->layer_density ? o->n_layer_density : n,
                      o->layer_act_density ? o->n_layer_act_density : n);
        goto done;
    }
    run->images = 1;
    run->layers = sgi_zalloc((size_t)n, sizeof *run->layers);
    if (!run->layers) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    int total = 0, last = 0;
    for (int i = 0; i < n; i++) {
        total += listed(o->layers, L[i].name) && (!L[i].is_fc || o->include_fc);
        if (!L[i].is_fc || o->include_fc) last = i;
    }
    /* the layers' synthetic data in parallel, a chunk of layers at a time, then
     * the layers simulated in table order */
    struct synth *sy = sgi_zalloc((size_t)n, sizeof *sy);
    int *order = sgi_alloc((size_t)n + 1, sizeof *order);
    if (!sy || !order) {
        free(sy), free(order);
        s = SG_ERR_NOMEM;
        goto done;
    }
    int nsel = 0;
    for (int i = 0; i < n; i++)
        if (listed(o->layers, L[i].name) && (!L[i].is_fc || o->include_fc)) sy[nsel++].i = i;
    for (int a = 0; a < nsel && s == SG_OK;) {
        int b = a;
        size_t elems = 0;
        while (b < nsel && (b == a || elems + synth_elems(&L[sy[b].i]) <= sgi_scnn_synth_chunk))
            elems += synth_elems(&L[sy[b++].i]);
        /* largest first, so the last task to start is a small one */
        for (int j = a; j < b; j++) order[j - a] = j;
        for (int j = 1; j < b - a; j++)
            for (int x = j; x > 0 && synth_elems(&L[sy[order[x]].i]) >
                                         synth_elems(&L[sy[order[x - 1]].i]); x--) {
                int t = order[x];
                order[x] = order[x - 1];
                order[x - 1] = t;
            }
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < b - a; j++) synth_layer(o, &L[sy[order[j]].i], &sy[order[j]]);
        for (int j = a; j < b && s == SG_OK; j++) {
            struct synth *y = &sy[j];
            const int i = y->i;
            const struct sg_scnn_shape *l = &L[i];
            if (y->s != SG_OK) {
                s = sgi_error(y->s, "%s", y->msg);
                if (y->prefix) sgi_error_prefix(s, l->name);
                break;
            }
            struct sg_scnn_layer_result *r = &run->layers[run->n];
            snprintf(r->name, sizeof r->name, "%s", l->name);
            struct sg_scnn_config cl = *c;
            cl.relu = l->relu;
            /* activations stay on chip between layers; the network's input comes from
             * DRAM and its last output goes there (by table position, so a layer subset
             * counts what the full run counts) */
            cl.act_in_dram = i == 0;
            cl.act_out_dram = i == last;
            if (c->index == SG_SCNN_INDEX_GROUP) cl.index_unit = sg_scnn_index_unit(o->gran);
            s = sim_layer(&cl, &y->g, y->w, y->x, o->verify, r);
            free(y->w), free(y->x);
            y->w = y->x = NULL;
            if (s != SG_OK) {
                sgi_error_prefix(s, l->name);
                break;
            }
            finish_densities(r);
            sg_scnn_stats_add(&run->total, &r->st);
            run->n++;
            if (report(progress, ctx, run->n, total)) s = sgi_error(SG_ERR_INTERRUPTED, "interrupted");
        }
        a = b;
    }
    for (int j = 0; j < nsel; j++) free(sy[j].w), free(sy[j].x);
    free(sy), free(order);
done:
    free(L);
    free(names);
    if (s == SG_OK) *out = run;
    else sg_scnn_run_free(run);
    return s;
}

/* The layers of a model the simulator takes: conv (and FC) nodes, in graph order. */
static int sim_node(const struct sg_model *m, int32_t i, int include_fc) {
    const struct sg_node *nd = &m->nodes[i];
    return (nd->op == SG_OP_CONV || (nd->op == SG_OP_FC && include_fc)) && nd->param[0] >= 0;
}

static int feeds_relu(const struct sg_model *m, int32_t i) {
    for (int32_t j = i + 1; j < m->n_nodes; j++)
        if (m->nodes[j].op == SG_OP_RELU && m->nodes[j].n_in == 1 && m->nodes[j].in[0] == i)
            return 1;
    return 0;
}

static struct sg_conv_geom node_geom(const struct sg_model *m, const struct sg_node *nd) {
    const struct sg_node *in = &m->nodes[nd->in[0]];
    if (nd->op == SG_OP_FC) {
        struct sg_conv_geom g = {1, in->c * in->h * in->w, 1, 1, nd->k, 1, 1, 1, 1,
                                 0, 0, 0, 0, 1, 1, 1, 0, 0};
        return g;
    }
    struct sg_conv_geom g = {1,      in->c,  in->h,  in->w,  nd->k,  nd->kh, nd->kw,
                             nd->sh, nd->sw, nd->pt, nd->pl, nd->pb, nd->pr, nd->dh,
                             nd->dw, nd->groups, 0, 0};
    return g;
}

/* One-shot pruning of a copy: conv weights only (FC stays dense, as in the
 * paper's granularity study), masks follow the zeros so the copy stays valid. */
static enum sg_status prune_copy(const struct sg_model *m, const struct sg_scnn_model_opts *o,
                                 struct sg_model **out) {
    if ((unsigned)o->gran >= SG_SCNN_GRAN_COUNT || !(o->weight_density >= 0 && o->weight_density <= 1))
        return sgi_error(SG_ERR_ARG, "pruning: granularity or density out of range");
    enum sg_status s = sg_model_clone(m, out);
    if (s != SG_OK) return s;
    struct sg_model *mm = *out;
    int first = 1;
    for (int32_t i = 0; i < mm->n_nodes && s == SG_OK; i++) {
        const struct sg_node *nd = &mm->nodes[i];
        if (nd->op != SG_OP_CONV || nd->param[0] < 0) continue;
        const int skip = first && !o->prune_first;
        first = 0;
        if (skip) continue;
        const struct sg_param *p = &mm->params[nd->param[0]];
        float *w = sg_param_data(mm, nd->param[0]);
        uint8_t *mask = sg_param_mask(mm, nd->param[0]);
        s = sg_scnn_prune_groups(w, p->dims[0], p->dims[1], p->dims[2], p->dims[3], o->gran,
                                 o->weight_density, NULL);
        for (size_t j = 0; s == SG_OK && j < p->count; j++) mask[j] = mask[j] && w[j] != 0.0f;
    }
    if (s != SG_OK) {
        sg_model_free(mm);
        *out = NULL;
    }
    return s;
}

enum sg_status sg_scnn_run_model(const struct sg_scnn_config *c, struct sg_model *m_in,
                                 const struct sg_dataset *d, const struct sg_scnn_model_opts *o,
                                 sg_progress_fn progress, void *ctx, struct sg_scnn_run **out) {
    *out = NULL;
    enum sg_status s = sg_scnn_config_check(c);
    if (s != SG_OK) return s;
    struct sg_model *m = m_in, *pruned = NULL;
    if (o->prune) {
        if ((s = prune_copy(m_in, o, &pruned)) != SG_OK) return s;
        m = pruned;
    }
    if (!sg_model_runnable(m))
        s = sgi_error(SG_ERR_UNSUPPORTED, "model '%s' has no runnable graph", m->arch);
    else if (d->c != m->in_c || d->h != m->in_h || d->w != m->in_w)
        s = sgi_error(SG_ERR_MISMATCH,
                      "%s: %dx%dx%d images, but model '%s' expects %dx%dx%d (trained on other "
                      "data?)",
                      d->source, d->c, d->h, d->w, m->arch, m->in_c, m->in_h, m->in_w);
    else if (o->images < 1 || o->images > d->n)
        s = sgi_error(SG_ERR_ARG, "images: %d asked, the data set has %lld", o->images,
                      (long long)d->n);
    if (s == SG_OK) s = sg_model_check_preproc(m, d);
    if (s != SG_OK) {
        sg_model_free(pruned);
        return s;
    }
    const int32_t nn = m->n_nodes;
    int32_t *sel = sgi_alloc((size_t)nn + 1, sizeof *sel);
    const char **names = sgi_alloc((size_t)nn + 1, sizeof *names);
    struct sg_scnn_run *run = calloc(1, sizeof *run);
    struct sg_exec *e = NULL;
    const int batch = o->images < 32 ? o->images : 32;
    float *xb = sgi_alloc((size_t)batch * d->c * d->h * d->w, sizeof *xb);
    uint8_t *yb = sgi_alloc((size_t)batch, 1);
    uint32_t *idx = sgi_alloc((size_t)batch, sizeof *idx);
    float *xin = NULL;
    if (!sel || !names || !run || !xb || !yb || !idx) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    int nsel = 0, nnames = 0;
    int32_t first_sim = -1, last_sim = -1;
    size_t xmax = 1;
    for (int32_t i = 0; i < nn; i++) {
        if (!sim_node(m, i, o->include_fc)) continue;
        if (first_sim < 0) first_sim = i;
        last_sim = i;
        names[nnames++] = m->nodes[i].name;
        if (!listed(o->layers, m->nodes[i].name)) continue;
        sel[nsel++] = i;
        const struct sg_node *in = &m->nodes[m->nodes[i].in[0]];
        size_t nx = (size_t)in->c * in->h * in->w;
        xmax = nx > xmax ? nx : xmax;
    }
    if ((s = check_list(o->layers, names, nnames, m->arch)) != SG_OK) goto done;
    if (nsel == 0) {
        s = sgi_error(SG_ERR_ARG, "model '%s' has no convolution to simulate", m->arch);
        goto done;
    }
    run->layers = sgi_zalloc((size_t)nsel, sizeof *run->layers);
    xin = sgi_alloc(xmax, sizeof *xin);
    if (!run->layers || !xin || (s = sg_exec_new(m, batch, 0, &e)) != SG_OK) {
        if (s == SG_OK) s = SG_ERR_NOMEM;
        goto done;
    }
    run->n = nsel;
    run->images = o->images;
    const int64_t total = (int64_t)nsel * o->images;
    int64_t done_steps = 0;
    for (int b0 = 0; b0 < o->images && s == SG_OK; b0 += batch) {
        const int nb = o->images - b0 < batch ? o->images - b0 : batch;
        for (int b = 0; b < nb; b++) idx[b] = (uint32_t)(b0 + b);
        sg_dataset_batch(d, &m->preproc, idx, nb, SG_AUG_NONE, NULL, xb, yb);
        if ((s = sg_forward(m, e, xb, nb, 0, NULL)) != SG_OK) break;
        for (int li = 0; li < nsel && s == SG_OK; li++) {
            const struct sg_node *nd = &m->nodes[sel[li]];
            const struct sg_node *in = &m->nodes[nd->in[0]];
            struct sg_conv_geom g = node_geom(m, nd);
            int nout = 0;
            const float *act = sg_exec_output(e, nd->in[0], &nout);
            const size_t hw = (size_t)in->h * in->w;
            struct sg_scnn_config cl = *c;
            cl.relu = feeds_relu(m, sel[li]);
            cl.act_in_dram = sel[li] == first_sim;
            cl.act_out_dram = sel[li] == last_sim;
            if (o->prune && c->index == SG_SCNN_INDEX_GROUP) cl.index_unit = sg_scnn_index_unit(o->gran);
            struct sg_scnn_layer_result *r = &run->layers[li];
            snprintf(r->name, sizeof r->name, "%s", nd->name);
            for (int b = 0; b < nb && s == SG_OK; b++) {
                for (int ch = 0; ch < in->c; ch++) /* CNHW -> this image's [C][H][W] */
                    memcpy(xin + (size_t)ch * hw, act + ((size_t)ch * nout + b) * hw,
                           hw * sizeof *xin);
                s = sim_layer(&cl, &g, sg_param_data(m, nd->param[0]), xin, o->verify, r);
                if (s != SG_OK) sgi_error_prefix(s, nd->name);
                if (s == SG_OK && report(progress, ctx, ++done_steps, total))
                    s = sgi_error(SG_ERR_INTERRUPTED, "interrupted");
            }
        }
    }
    for (int li = 0; li < run->n && s == SG_OK; li++) {
        finish_densities(&run->layers[li]);
        sg_scnn_stats_add(&run->total, &run->layers[li].st);
    }
done:
    sg_exec_free(e);
    sg_model_free(pruned);
    free(sel), free(names), free(xb), free(yb), free(idx), free(xin);
    if (s == SG_OK) *out = run;
    else sg_scnn_run_free(run);
    return s;
}
