/* The SCNN simulator's layer plan (src/sim/scnn_plan.h): the input plane split
 * evenly over the PE grid, the output plane likewise; each PE's accumulator region
 * (the bounding box of the outputs its inputs reach plus those it owns, one layout
 * RH x RW for every PE); the output-channel group size; each PE's activations of a
 * channel as one stream cut into vectors of I; the weights of each (group, input
 * channel) as one compressed stream in (k, r, s) order cut into vectors of F
 * non-zeros; and, for the bitmap windows, each channel's distinct kernel patterns.
 * The counts of the streams (entries, fillers, bits) go into the layer's stats. */
#include "sim/scnn_plan.h"

static void reach(int lo, int hi, int pad, int r, int dil, int stride, int n_out, uint8_t *out) {
    memset(out, 0, (size_t)n_out);
    for (int h = lo; h < hi; h++)
        for (int k = 0; k < r; k++) {
            int num = h + pad - k * dil;
            if (num >= 0 && num % stride == 0 && num / stride < n_out) out[num / stride] = 1;
        }
}

/* Bounding box of reached and owned positions; count of reached and reached-owned. */
static void span(const uint8_t *re, int n, int own0, int own1, int *lo, int *hi, int64_t *nre,
                 int64_t *nown) {
    int a = own0 < own1 ? own0 : n, b = own0 < own1 ? own1 : 0;
    *nre = *nown = 0;
    for (int p = 0; p < n; p++)
        if (re[p]) {
            a = p < a ? p : a;
            b = p + 1 > b ? p + 1 : b;
            ++*nre;
            *nown += p >= own0 && p < own1;
        }
    if (a >= b) a = b = 0;
    *lo = a;
    *hi = b;
}

static void split(int n, int parts, int i, int *lo, int *hi) {
    *lo = (int)((int64_t)i * n / parts);
    *hi = (int)((int64_t)(i + 1) * n / parts);
}

/* PE tiles, regions and the layout RH x RW. */
enum sg_status sgi_scnn_plan_tiles(struct sgi_scnn_plan *pl) {
    const struct sg_scnn_config *c = pl->c;
    const struct sg_conv_geom *g = pl->g;
    pl->npe = c->pe_rows * c->pe_cols;
    pl->pe = sgi_zalloc((size_t)pl->npe, sizeof *pl->pe);
    uint8_t *rr = sgi_alloc((size_t)g->p + 1, 1), *rc = sgi_alloc((size_t)g->q + 1, 1);
    if (!pl->pe || !rr || !rc) {
        free(rr), free(rc);
        return SG_ERR_NOMEM;
    }
    pl->RH = pl->RW = 0;
    for (int i = 0; i < c->pe_rows; i++)
        for (int j = 0; j < c->pe_cols; j++) {
            struct sgi_scnn_pe *e = &pl->pe[i * c->pe_cols + j];
            split(g->h, c->pe_rows, i, &e->h0, &e->h1);
            split(g->w, c->pe_cols, j, &e->w0, &e->w1);
            split(g->p, c->pe_rows, i, &e->p0, &e->p1);
            split(g->q, c->pe_cols, j, &e->q0, &e->q1);
            reach(e->h0, e->h1, g->pt, g->r, g->dh, g->sh, g->p, rr);
            reach(e->w0, e->w1, g->pl, g->s, g->dw, g->sw, g->q, rc);
            int64_t nr, nro, nc, nco;
            span(rr, g->p, e->p0, e->p1, &e->rp0, &e->rp1, &nr, &nro);
            span(rc, g->q, e->q0, e->q1, &e->rq0, &e->rq1, &nc, &nco);
            e->halo_area = nr * nc - nro * nco;
            if (e->rp1 - e->rp0 > pl->RH) pl->RH = e->rp1 - e->rp0;
            if (e->rq1 - e->rq0 > pl->RW) pl->RW = e->rq1 - e->rq0;
        }
    free(rr), free(rc);
    if (pl->RH < 1) pl->RH = 1;
    if (pl->RW < 1) pl->RW = 1;
    return SG_OK;
}

enum sg_status sgi_scnn_choose_kc(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                int RH, int RW, int *kc) {
    const int64_t cap = (int64_t)c->banks * c->bank_entries, area = (int64_t)RH * RW;
    if (area > cap)
        return sgi_error(SG_ERR_LIMIT,
                         "the partial sums of one output channel of a PE (%dx%d) do not fit "
                         "the accumulator (%d banks x %d entries); use a larger PE grid or "
                         "more entries per bank",
                         RH, RW, c->banks, c->bank_entries);
    if (c->kc > 0) {
        *kc = c->kc < g->k ? c->kc : g->k;
        if (*kc * area > cap)
            return sgi_error(SG_ERR_ARG,
                             "Kc = %d output channels x %dx%d partial sums exceed the "
                             "accumulator (%lld entries); at most Kc = %lld fits",
                             c->kc, RH, RW, (long long)cap, (long long)(cap / area));
        return SG_OK;
    }
    int64_t k = cap / area;
    *kc = (int)(k < g->k ? k : g->k);
    return SG_OK;
}

enum sg_status sg_scnn_pick_kc(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                               int *kc) {
    enum sg_status st = sgi_scnn_check_layer(c, g);
    if (st != SG_OK) return st;
    struct sgi_scnn_plan pl = {.c = c, .g = g};
    st = sgi_scnn_plan_tiles(&pl);
    if (st == SG_OK) st = sgi_scnn_choose_kc(c, g, pl.RH, pl.RW, kc);
    free(pl.pe);
    return st;
}

/* Activation streams of every PE and channel: the streams' lengths (PEs in
 * parallel), their offsets, then the streams (PEs in parallel). */
enum sg_status sgi_scnn_plan_acts(struct sgi_scnn_plan *pl, const float *x, struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const size_t npc = (size_t)pl->npe * g->c;
    pl->x = x;
    pl->aoff = sgi_alloc(npc + 1, sizeof *pl->aoff);
    pl->a_entries = sgi_alloc(npc, sizeof *pl->a_entries);
    pl->maxnav = sgi_zalloc((size_t)g->c + 1, sizeof *pl->maxnav);
    int64_t *pe_nnz = sgi_alloc((size_t)pl->npe, sizeof *pe_nnz);
    int64_t *pe_fill = sgi_alloc((size_t)pl->npe, sizeof *pe_fill);
    int64_t *pe_bits = sgi_alloc((size_t)pl->npe, sizeof *pe_bits);
    enum sg_status s = SG_OK;
    if (!pl->aoff || !pl->a_entries || !pl->maxnav || !pe_nnz || !pe_fill || !pe_bits) {
        s = SG_ERR_NOMEM;
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int e = 0; e < pl->npe; e++) {
        const struct sgi_scnn_pe *t = &pl->pe[e];
        int64_t nz = 0;
        for (int ch = 0; ch < g->c; ch++) {
            int64_t m = 0, mz = 0;
            for (int h = t->h0; h < t->h1; h++)
                for (int w = t->w0; w < t->w1; w++) mz += x[((size_t)ch * g->h + h) * g->w + w] != 0.0f;
            m = pl->dense ? (int64_t)(t->h1 - t->h0) * (t->w1 - t->w0) : mz;
            pl->aoff[(size_t)e * g->c + ch] = m;
            nz += mz;
        }
        pe_nnz[e] = nz; /* the tiles cover the plane: the non-zeros of x */
    }
    int64_t n = 0;
    for (size_t i = 0; i < npc; i++) {
        const int64_t m = pl->aoff[i];
        pl->aoff[i] = n;
        n += m;
    }
    pl->aoff[npc] = n;
    pl->acts = sgi_alloc((size_t)n + 1, sizeof *pl->acts);
    if (!pl->acts) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    const int64_t ebits = pl->c->value_bits + (pl->dense ? 0 : pl->c->index_bits);
#pragma omp parallel for schedule(dynamic, 1)
    for (int e = 0; e < pl->npe; e++) {
        const struct sgi_scnn_pe *t = &pl->pe[e];
        int64_t bits = 0, fill = 0;
        for (int ch = 0; ch < g->c; ch++) {
            size_t k = (size_t)pl->aoff[(size_t)e * g->c + ch];
            struct runc rc = {0, 0, 0};
            for (int h = t->h0; h < t->h1; h++)
                for (int w = t->w0; w < t->w1; w++) {
                    float v = x[((size_t)ch * g->h + h) * g->w + w];
                    run_push(&rc, pl->dense || v != 0.0f, pl->c->index_bits);
                    if (v == 0.0f && !pl->dense) continue;
                    struct sgi_scnn_act *a = &pl->acts[k++];
                    a->hh = h + g->pt;
                    a->ww = w + g->pl;
                    a->base = (a->hh - t->rp0) * pl->RW + (a->ww - t->rq0);
                    a->v = v;
                }
            pl->a_entries[(size_t)e * g->c + ch] = rc.nnz + rc.fill;
            fill += rc.fill;
            bits += (rc.nnz + rc.fill) * ebits;
        }
        pe_fill[e] = fill;
        pe_bits[e] = bits;
    }
    const int64_t cap = pl->c->iaram_bytes * 8;
    for (int e = 0; e < pl->npe; e++) {
        for (int ch = 0; ch < g->c; ch++) {
            const size_t pc = (size_t)e * g->c + ch;
            const int nav = (int)((pl->aoff[pc + 1] - pl->aoff[pc] + pl->c->i - 1) / pl->c->i);
            if (nav > pl->maxnav[ch]) pl->maxnav[ch] = nav;
        }
        const int64_t bits = pe_bits[e];
        st->act_fillers += pe_fill[e];
        st->dram_act_in_bits += pl->c->act_in_dram ? bits : (bits > cap ? bits - cap : 0);
        st->iaram_overflow += bits > cap;
        st->act_nnz += pe_nnz[e];
    }
done:
    free(pe_nnz), free(pe_fill), free(pe_bits);
    return s;
}

/* Cuts the non-zeros [0, n) of one (group, channel) stream into vectors. */
static int32_t cut_vectors(const struct sgi_scnn_plan *pl, const int32_t *row_of, const int32_t *kern_of,
                           int32_t n, int32_t *starts) {
    const int f = pl->c->f;
    int32_t nv = 0;
    if (pl->c->fetch == SG_SCNN_FETCH_STREAM) {
        /* kernel-major windows: a vector never straddles two kernels */
        for (int32_t i = 0, fill = f; i < n; i++) {
            if (fill == f || (pl->kmode && kern_of[i] != kern_of[i - 1])) {
                starts[nv++] = i;
                fill = 0;
            }
            fill++;
        }
    } else { /* aligned: a row's pieces (at most F non-zeros) never straddle vectors */
        int fill = f;
        for (int32_t i = 0; i < n;) {
            int32_t j = i;
            while (j < n && row_of[j] == row_of[i]) j++;
            for (int32_t p = i; p < j; p += f) {
                int piece = j - p < f ? (int)(j - p) : f;
                if (fill + piece > f || (pl->kmode && p == i && i > 0 && kern_of[i] != kern_of[i - 1])) {
                    starts[nv++] = p;
                    fill = 0;
                }
                fill += piece;
            }
            i = j;
        }
    }
    starts[nv] = n;
    return nv;
}

/* FIFO check of one block of nvec vectors and `bits` bits: a block longer than
 * the FIFO is fetched again from the weight source for every further activation
 * vector of the PE that has the most (all PEs take the same broadcast). */
static void fifo_block(const struct sgi_scnn_plan *pl, int64_t nvec, int64_t bits, int ch,
                       struct sg_scnn_stats *st) {
    if (nvec > st->wfifo_vectors) st->wfifo_vectors = nvec;
    if (nvec <= pl->c->wfifo_entries) return;
    st->wfifo_overflow++;
    if (pl->maxnav[ch] > 1) st->dram_weight_refetch_bits += (int64_t)(pl->maxnav[ch] - 1) * bits;
}

/* Weight streams of every (group, channel): the streams' lengths, their
 * offsets, then the streams in parallel, each cutting its vectors into room for
 * as many as it has weights (+1); the vector starts are then moved together. */
enum sg_status sgi_scnn_plan_weights(struct sgi_scnn_plan *pl, const float *w, struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const struct sg_scnn_config *c = pl->c;
    const size_t ngc = (size_t)pl->ngroups * g->c, rs = (size_t)g->r * g->s;
    pl->woff = sgi_alloc(ngc + 1, sizeof *pl->woff);
    pl->w_entries = sgi_alloc(ngc, sizeof *pl->w_entries);
    pl->wi_entries = sgi_alloc(ngc, sizeof *pl->wi_entries);
    pl->voff = sgi_alloc(ngc + 1, sizeof *pl->voff);
    int64_t *gc_nnz = sgi_alloc(ngc + 1, sizeof *gc_nnz);
    if (!pl->woff || !pl->w_entries || !pl->wi_entries || !pl->voff || !gc_nnz) {
        free(gc_nnz);
        return SG_ERR_NOMEM;
    }
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t gc = 0; gc < ngc; gc++) {
        const int gi = (int)(gc / (size_t)g->c), ch = (int)(gc % (size_t)g->c);
        const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
        int64_t nz = 0;
        for (int kk = 0; kk < kcg; kk++) {
            const float *wk = w + ((size_t)(k0 + kk) * g->c + ch) * rs;
            for (size_t j = 0; j < rs; j++) nz += wk[j] != 0.0f;
        }
        gc_nnz[gc] = nz;
        pl->woff[gc] = pl->dense ? (int64_t)kcg * (int64_t)rs : nz;
    }
    size_t nnz = 0;
    for (size_t gc = 0; gc < ngc; gc++) {
        const int64_t m = pl->woff[gc];
        pl->woff[gc] = (int64_t)nnz;
        nnz += (size_t)m;
        st->weight_nnz += gc_nnz[gc];
    }
    pl->woff[ngc] = (int64_t)nnz;
    free(gc_nnz);
    pl->wts = sgi_alloc(nnz + 1, sizeof *pl->wts);
    pl->vstart = sgi_alloc(nnz + ngc + 1, sizeof *pl->vstart);
    pl->w_rr = sgi_alloc(nnz + 16, sizeof *pl->w_rr);
    pl->w_ss = sgi_alloc(nnz + 16, sizeof *pl->w_ss);
    pl->w_base = sgi_alloc(nnz + 16, sizeof *pl->w_base);
    pl->w_kb = sgi_alloc(nnz + 16, sizeof *pl->w_kb);
    if (!pl->wts || !pl->vstart || !pl->w_rr || !pl->w_ss || !pl->w_base || !pl->w_kb)
        return SG_ERR_NOMEM;
    const int vb = c->value_bits, ib = pl->dense ? 0 : c->index_bits;
    /* --index group: one index per kept group of `gsize` weights in stream order */
    const int grouped = !pl->dense && c->index == SG_SCNN_INDEX_GROUP &&
                        c->index_unit != SG_SCNN_UNIT_WEIGHT;
    const int gsize = c->index_unit == SG_SCNN_UNIT_ROW ? g->s : (int)rs;
    int failed = 0;
#pragma omp parallel
    {
        int32_t *row_of = sgi_alloc((size_t)pl->kc * rs + 1, sizeof *row_of);
        int32_t *kern_of = sgi_alloc((size_t)pl->kc * rs + 1, sizeof *kern_of);
        struct sg_scnn_stats ls; /* this thread's streams' counts (integers: any order) */
        memset(&ls, 0, sizeof ls);
        if (!row_of || !kern_of) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (size_t gc = 0; gc < ngc; gc++) {
            if (!row_of || !kern_of) continue;
            const int gi = (int)(gc / (size_t)g->c), ch = (int)(gc % (size_t)g->c);
            const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
            const size_t n = (size_t)pl->woff[gc], nv = (size_t)pl->woff[gc] + gc;
            struct runc rc = {0, 0, 0};
            int64_t zgroups = 0, vent = 0, ient = 0;
            int32_t m = 0;
            for (int kk = 0; kk < kcg; kk++) {
                const float *wk = w + ((size_t)(k0 + kk) * g->c + ch) * rs;
                for (size_t j0 = 0; j0 < rs; j0 += (size_t)gsize) {
                    int kept = 0; /* the group (when grouped) has a non-zero */
                    if (grouped)
                        for (int j = 0; j < gsize; j++) kept |= wk[j0 + (size_t)j] != 0.0f;
                    int first = 1;
                    for (int j = 0; j < gsize && j0 + (size_t)j < rs; j++) {
                        const int r = (int)((j0 + (size_t)j) / (size_t)g->s);
                        const int s2 = (int)((j0 + (size_t)j) % (size_t)g->s);
                        float v = wk[j0 + (size_t)j];
                        const int64_t fill0 = rc.fill;
                        run_push(&rc, pl->dense || v != 0.0f, c->index_bits);
                        if (v == 0.0f && !pl->dense) continue;
                        struct sgi_scnn_wt *t = &pl->wts[n + m];
                        t->rr = r * g->dh;
                        t->ss = s2 * g->dw;
                        t->r = r;
                        t->kbase = kk * pl->area;
                        t->base = t->kbase - t->rr * pl->RW - t->ss;
                        t->v = v;
                        pl->w_rr[n + m] = t->rr;
                        pl->w_ss[n + m] = t->ss;
                        pl->w_base[n + m] = t->base;
                        pl->w_kb[n + m] = t->kbase;
                        if (pl->dense) {
                            t->went = 1, t->ient = 0;
                        } else if (!grouped) {
                            t->went = t->ient = 1 + (int32_t)(rc.fill - fill0);
                        } else if (first) { /* the group's index, its fillers, its values */
                            t->ient = 1 + (int32_t)(zgroups >> c->index_bits);
                            t->went = gsize;
                            zgroups = 0;
                        } else {
                            t->went = t->ient = 0;
                        }
                        first = 0;
                        vent += t->went, ient += t->ient;
                        row_of[m] = kk * g->r + r;
                        kern_of[m] = kk;
                        m++;
                    }
                    if (grouped && !kept) zgroups++;
                }
            }
            const int32_t nvec = cut_vectors(pl, row_of, kern_of, m, pl->vstart + nv);
            /* the FIFO holds F-wide vectors: a (group, channel) block, or with a
             * kernel-major window one kernel's vectors */
            if (!pl->kmode) {
                fifo_block(pl, nvec, vent * vb + ient * ib, ch, &ls);
            } else {
                const int32_t *vs = pl->vstart + nv;
                for (int32_t v = 0; v < nvec;) {
                    int32_t v1 = v;
                    int64_t bits = 0;
                    while (v1 < nvec && pl->wts[n + vs[v1]].kbase == pl->wts[n + vs[v]].kbase) v1++;
                    for (int32_t x = vs[v]; x < vs[v1]; x++)
                        bits += (int64_t)pl->wts[n + x].went * vb + (int64_t)pl->wts[n + x].ient * ib;
                    fifo_block(pl, v1 - v, bits, ch, &ls);
                    v = v1;
                }
            }
            pl->voff[gc] = nvec; /* for now: the stream's vector count */
            pl->w_entries[gc] = vent;
            pl->wi_entries[gc] = ient;
            ls.weight_fillers += rc.fill;
            ls.dram_weight_bits += vent * vb + ient * ib;
        }
#pragma omp critical(sgi_scnn_plan_weights)
        {
            if (ls.wfifo_vectors > st->wfifo_vectors) st->wfifo_vectors = ls.wfifo_vectors;
            st->wfifo_overflow += ls.wfifo_overflow;
            st->dram_weight_refetch_bits += ls.dram_weight_refetch_bits;
            st->weight_fillers += ls.weight_fillers;
            st->dram_weight_bits += ls.dram_weight_bits;
        }
        free(row_of), free(kern_of);
    }
    if (failed) return SG_ERR_NOMEM;
    /* the vector starts together: stream gc's nvec + 1 starts from its room on */
    size_t nv = 0;
    for (size_t gc = 0; gc < ngc; gc++) {
        const size_t cnt = (size_t)pl->voff[gc] + 1, from = (size_t)pl->woff[gc] + gc;
        if (from != nv) memmove(pl->vstart + nv, pl->vstart + from, cnt * sizeof *pl->vstart);
        pl->voff[gc] = (int64_t)nv;
        nv += cnt;
    }
    pl->voff[ngc] = (int64_t)nv;
    return SG_OK;
}

/* kbits: the distinct kernel patterns (positions that hold weights) of each
 * channel over all groups, and each stream's (pattern, count) list. Channels in
 * parallel: each writes from offsets that bound what it can need (a pattern and a
 * list entry per kernel at most), then the per-pattern arrays are moved together. */
enum sg_status sgi_scnn_plan_patterns(struct sgi_scnn_plan *pl) {
    const struct sg_conv_geom *g = pl->g;
    const size_t ngc = (size_t)pl->ngroups * g->c;
    /* per channel: kernels with weights, weights, vector starts (+1 per kernel) */
    int64_t *k0 = sgi_alloc((size_t)g->c + 1, sizeof *k0), *w0 = sgi_alloc((size_t)g->c + 1, sizeof *w0),
            *v0s = sgi_alloc((size_t)g->c + 1, sizeof *v0s);
    enum sg_status st = SG_OK;
    if (!k0 || !w0 || !v0s) {
        st = SG_ERR_NOMEM;
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 16)
    for (int ch = 0; ch < g->c; ch++) {
        int64_t nk = 0, nw = 0, nvv = 0;
        for (int gi = 0; gi < pl->ngroups; gi++) {
            const size_t gc = (size_t)gi * g->c + ch;
            const struct sgi_scnn_wt *w = pl->wts + pl->woff[gc];
            const int32_t *vs = pl->vstart + pl->voff[gc];
            const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
            for (int v = 0; v < nv; v++) nk += v == 0 || w[vs[v]].kbase != w[vs[v - 1]].kbase;
            nw += pl->woff[gc + 1] - pl->woff[gc];
            nvv += nv;
        }
        k0[ch] = nk, w0[ch] = nw, v0s[ch] = nvv + nk;
    }
    int64_t tk = 0, tw = 0, tv = 0;
    for (int ch = 0; ch <= g->c; ch++) {
        const int64_t a = ch < g->c ? k0[ch] : 0, b = ch < g->c ? w0[ch] : 0, c = ch < g->c ? v0s[ch] : 0;
        k0[ch] = tk, w0[ch] = tw, v0s[ch] = tv;
        tk += a, tw += b, tv += c;
    }
    const size_t nk = (size_t)tk; /* kernels with weights, in all */
    size_t hn = 16;
    while (hn < 2 * (size_t)g->k) hn *= 2;
    pl->pat_off = sgi_alloc((size_t)g->c + 1, sizeof *pl->pat_off);
    pl->ent_off = sgi_alloc(ngc + 1, sizeof *pl->ent_off);
    pl->ent_len = sgi_alloc(ngc + 1, sizeof *pl->ent_len);
    pl->ent_pat = sgi_alloc(nk + 1, sizeof *pl->ent_pat);
    pl->ent_cnt = sgi_alloc(nk + 1, sizeof *pl->ent_cnt);
    pl->c_rr = sgi_alloc((size_t)tw + 1, sizeof *pl->c_rr);
    pl->c_ss = sgi_alloc((size_t)tw + 1, sizeof *pl->c_ss);
    pl->c_lb = sgi_alloc((size_t)tw + 1, sizeof *pl->c_lb);
    pl->c_r = sgi_alloc((size_t)tw + 1, sizeof *pl->c_r);
    pl->c_vs = sgi_alloc((size_t)tv + 1, sizeof *pl->c_vs);
    pl->pat_w = sgi_alloc(nk + 1, sizeof *pl->pat_w);
    pl->pat_vs = sgi_alloc(nk + 1, sizeof *pl->pat_vs);
    pl->pat_nv = sgi_alloc(nk + 1, sizeof *pl->pat_nv);
    if (!pl->pat_off || !pl->ent_off || !pl->ent_len || !pl->ent_pat || !pl->ent_cnt || !pl->c_rr ||
        !pl->c_ss || !pl->c_lb || !pl->c_r || !pl->c_vs || !pl->pat_w || !pl->pat_vs ||
        !pl->pat_nv) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    int failed = 0;
#pragma omp parallel
    {
        uint64_t *pats = sgi_alloc((size_t)g->k + 1, sizeof *pats);
        int32_t *hval = sgi_alloc(hn, sizeof *hval), *cnt = sgi_zalloc((size_t)g->k + 1, sizeof *cnt);
        int32_t *seen = sgi_alloc((size_t)g->k + 1, sizeof *seen);
        const int ok = pats && hval && cnt && seen;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int ch = 0; ch < g->c; ch++) {
            if (!ok) continue;
            const int64_t pbase = k0[ch]; /* this channel's patterns from here */
            int64_t np = 0, ne = k0[ch], cw = w0[ch], cv = v0s[ch];
            for (size_t i = 0; i < hn; i++) hval[i] = -1;
            for (int gi = 0; gi < pl->ngroups; gi++) {
                const size_t gc = (size_t)gi * g->c + ch;
                pl->ent_off[gc] = ne;
                const struct sgi_scnn_wt *w = pl->wts + pl->woff[gc];
                const int32_t *vs = pl->vstart + pl->voff[gc];
                const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
                int nseen = 0;
                for (int v0 = 0; v0 < nv;) {
                    int v1 = v0 + 1;
                    while (v1 < nv && w[vs[v1]].kbase == w[vs[v0]].kbase) v1++;
                    uint64_t pat = 0;
                    for (int j = vs[v0]; j < vs[v1]; j++) pat |= 1ull << (w[j].r * g->s + w[j].ss / g->dw);
                    size_t h = (size_t)((pat * 0x9E3779B97F4A7C15ull) >> 20) & (hn - 1);
                    while (hval[h] >= 0 && pats[hval[h]] != pat) h = (h + 1) & (hn - 1);
                    if (hval[h] < 0) { /* a new pattern of this channel */
                        hval[h] = (int32_t)np;
                        pats[np] = pat;
                        pl->pat_w[pbase + np] = (int32_t)cw;
                        pl->pat_vs[pbase + np] = (int32_t)cv;
                        pl->pat_nv[pbase + np] = v1 - v0;
                        for (int j = vs[v0]; j < vs[v1]; j++, cw++) {
                            pl->c_rr[cw] = w[j].rr;
                            pl->c_ss[cw] = w[j].ss;
                            pl->c_lb[cw] = -w[j].rr * pl->RW - w[j].ss;
                            pl->c_r[cw] = w[j].r;
                        }
                        for (int v = v0; v <= v1; v++) pl->c_vs[cv++] = vs[v] - vs[v0];
                        np++;
                    }
                    const int32_t id = hval[h];
                    if (cnt[id]++ == 0) seen[nseen++] = id;
                    v0 = v1;
                }
                for (int i = 0; i < nseen; i++) {
                    pl->ent_pat[ne] = seen[i];
                    pl->ent_cnt[ne++] = cnt[seen[i]];
                    cnt[seen[i]] = 0;
                }
                pl->ent_len[gc] = nseen;
            }
            pl->pat_off[ch] = np; /* for now: the channel's pattern count */
        }
        free(pats), free(hval), free(cnt), free(seen);
    }
    if (failed) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    /* the channels' patterns together: [pat_off[c], pat_off[c + 1]) */
    int64_t np = 0;
    for (int ch = 0; ch < g->c; ch++) {
        const int64_t n = pl->pat_off[ch], from = k0[ch];
        if (from != np) {
            memmove(pl->pat_w + np, pl->pat_w + from, (size_t)n * sizeof *pl->pat_w);
            memmove(pl->pat_vs + np, pl->pat_vs + from, (size_t)n * sizeof *pl->pat_vs);
            memmove(pl->pat_nv + np, pl->pat_nv + from, (size_t)n * sizeof *pl->pat_nv);
        }
        pl->pat_off[ch] = np;
        np += n;
    }
    pl->pat_off[g->c] = np;
    pl->ent_off[ngc] = tk;
done:
    free(k0), free(w0), free(v0s);
    return st;
}

void sgi_scnn_plan_free(struct sgi_scnn_plan *pl) {
    free(pl->pe), free(pl->aoff), free(pl->a_entries), free(pl->acts), free(pl->woff);
    free(pl->w_entries), free(pl->voff), free(pl->wts), free(pl->vstart), free(pl->bank_of);
    free(pl->wi_entries), free(pl->maxnav);
    free(pl->w_rr), free(pl->w_ss), free(pl->w_base), free(pl->w_kb);
    free(pl->pat_off), free(pl->ent_off), free(pl->ent_len);
    free(pl->ent_pat), free(pl->ent_cnt);
    free(pl->c_rr), free(pl->c_ss), free(pl->c_lb), free(pl->c_r), free(pl->c_vs), free(pl->pat_w);
    free(pl->pat_vs), free(pl->pat_nv);
}
