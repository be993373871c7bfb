/* The fast SCNN simulator: PT-IS-CP-sparse, one layer, one image.
 *
 * Plan (built once per layer): the input plane is split evenly over the PE grid,
 * the output plane likewise (a PE owns the outputs it will hold as the next
 * layer's input); each PE's accumulator region is the bounding box of the outputs
 * its inputs reach plus the outputs it owns, and every PE uses one layout RH x RW
 * per output channel (the largest region), so entry address = kk*RH*RW + row*RW +
 * col and bank = address mod A. Weights of each (channel group, input channel)
 * are one compressed stream in (k, r, s) order, cut into vectors of F non-zeros;
 * each PE's activations of a channel are one stream in row-major tile order, cut
 * into vectors of I. Then, per group and per PE, the loop nest of the paper:
 * input channel > activation vector > weight vector. Threads take whole groups
 * when there are many, else the PEs of one group; sums are folded in PE order
 * either way, so results do not depend on the thread count.
 * Three paths give the same counts (the tests compare each with ref.c): scalar
 * steps that add every product at its accumulator address; vector steps (AVX-512,
 * stride 1) whose bank loads come from conflict detection, with the layer's output
 * from a direct convolution (layer_values); and, for the row and kernel windows,
 * bitmap windows that count each distinct kernel pattern of a channel once per PE
 * (run_pe_kbits, PEs in parallel). docs/scnn-model.md defines every count;
 * src/sim/ref.c recomputes them slowly. */
#include "sim/simi.h"

#if defined(__AVX512F__) && defined(__AVX512CD__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
#include <immintrin.h>
#define SCNN_SIMD 1
#else
#define SCNN_SIMD 0
#endif

/* 0 makes every layer take the scalar steps (the tests compare both paths). */
int sgi_scnn_simd = 1;
const int sgi_scnn_vector_build = SCNN_SIMD;

struct act {
    int32_t hh, ww; /* input row + top pad, column + left pad */
    int32_t base;   /* stride 1: address part of the activation */
    float v;
};
struct wt {
    int32_t rr, ss; /* r * dil_h, s * dil_w */
    int32_t base;   /* stride 1: kk*area - rr*RW - ss */
    int32_t kbase;  /* kk*area */
    int32_t r;      /* kernel row (the row window's key) */
    int32_t went, ient; /* value and index entries of the stream charged to this weight
                         * (itself, fillers before it; --index group: its whole group) */
    float v;
};
struct pe {
    int h0, h1, w0, w1;     /* input tile */
    int p0, p1, q0, q1;     /* owned outputs */
    int rp0, rp1, rq0, rq1; /* accumulator region (bounding box) */
    int64_t halo_area;      /* reached outputs owned by another PE, per output channel */
};
struct plan {
    const struct sg_scnn_config *c;
    const struct sg_conv_geom *g;
    int npe, kc, ngroups, RH, RW, area;
    int kmode;                 /* row or kernel window: kernel-major loop, psum buffer */
    int dense;                 /* --arch dcnn */
    struct pe *pe;
    int64_t *aoff, *a_entries; /* per (pe, c) */
    int *maxnav;               /* per c: the most activation vectors of any PE */
    struct act *acts;
    int64_t *woff, *w_entries, *wi_entries, *voff; /* per (group, c) */
    struct wt *wts;
    int32_t *vstart;            /* vector starts relative to woff, nv + 1 per (group, c) */
    uint16_t *bank_of;          /* per address */
    /* the vector steps: per weight (parallel to wts) rr, ss, base, kbase */
    int32_t *w_rr, *w_ss, *w_base, *w_kb;
    int simd;  /* this layer takes the vector steps */
    int kbits; /* and counts the row/kernel windows from bitmaps */
    /* kbits: the distinct kernel patterns of each channel [pat_off[c], pat_off[c + 1]);
     * per stream (group, channel) the patterns it holds (relative to the channel's
     * first) and how often: ent_len[gc] entries from ent_off[gc] on */
    int64_t *pat_off, *ent_off; /* ent_off: start of each stream's list, ent_len its length */
    /* each pattern's weights (rr, ss, local base -rr RW - ss, kernel row) from
     * pat_w[p] on, and its vector starts (relative) from pat_vs[p] on, nvec pat_nv[p] */
    int32_t *c_rr, *c_ss, *c_lb, *c_r, *c_vs, *pat_w, *pat_vs, *pat_nv;
    int32_t *ent_len, *ent_pat, *ent_cnt;
    const float *x; /* the layer's input (the vector steps' values) */
};

/* Entries of a compressed stream: non-zeros plus fillers for zero runs that do not
 * fit the index (a run z needs z >> index_bits fillers; trailing zeros are free). */
struct runc {
    int64_t z, nnz, fill;
};
static inline void run_push(struct runc *r, int nonzero, int bits) {
    if (nonzero) {
        r->fill += r->z >> bits;
        r->z = 0;
        r->nnz++;
    } else {
        r->z++;
    }
}

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
static enum sg_status plan_tiles(struct plan *pl) {
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
            struct pe *e = &pl->pe[i * c->pe_cols + j];
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

static enum sg_status choose_kc(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
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
    struct plan pl = {.c = c, .g = g};
    st = plan_tiles(&pl);
    if (st == SG_OK) st = choose_kc(c, g, pl.RH, pl.RW, kc);
    free(pl.pe);
    return st;
}

/* Activation streams of every PE and channel: the streams' lengths (PEs in
 * parallel), their offsets, then the streams (PEs in parallel). */
static enum sg_status plan_acts(struct plan *pl, const float *x, struct sg_scnn_stats *st) {
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
        const struct pe *t = &pl->pe[e];
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
        const struct pe *t = &pl->pe[e];
        int64_t bits = 0, fill = 0;
        for (int ch = 0; ch < g->c; ch++) {
            size_t k = (size_t)pl->aoff[(size_t)e * g->c + ch];
            struct runc rc = {0, 0, 0};
            for (int h = t->h0; h < t->h1; h++)
                for (int w = t->w0; w < t->w1; w++) {
                    float v = x[((size_t)ch * g->h + h) * g->w + w];
                    run_push(&rc, pl->dense || v != 0.0f, pl->c->index_bits);
                    if (v == 0.0f && !pl->dense) continue;
                    struct act *a = &pl->acts[k++];
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
static int32_t cut_vectors(const struct plan *pl, const int32_t *row_of, const int32_t *kern_of,
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
static void fifo_block(const struct plan *pl, int64_t nvec, int64_t bits, int ch,
                       struct sg_scnn_stats *st) {
    if (nvec > st->wfifo_vectors) st->wfifo_vectors = nvec;
    if (nvec <= pl->c->wfifo_entries) return;
    st->wfifo_overflow++;
    if (pl->maxnav[ch] > 1) st->dram_weight_refetch_bits += (int64_t)(pl->maxnav[ch] - 1) * bits;
}

/* Weight streams of every (group, channel): the streams' lengths, their
 * offsets, then the streams in parallel, each cutting its vectors into room for
 * as many as it has weights (+1); the vector starts are then moved together. */
static enum sg_status plan_weights(struct plan *pl, const float *w, struct sg_scnn_stats *st) {
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
                        struct wt *t = &pl->wts[n + m];
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
static enum sg_status plan_patterns(struct plan *pl) {
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
            const struct wt *w = pl->wts + pl->woff[gc];
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
                const struct wt *w = pl->wts + pl->woff[gc];
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

/* What one PE does for one group. */
struct pe_out {
    int64_t cycles, steps, stalls, products, formed, acc, merge_adds, wreads, wireads, areads,
        aireads, psum_reads, psum_writes, flush;
};
/* One kernel pattern's counts on one PE (bitmap windows): eight int64 in one
 * cache line, so a group's sum over its patterns is a short loop; psum reads and
 * writes and merge adds follow from products and window sums. */
enum { KP_CYCLES, KP_STALLS, KP_PRODUCTS, KP_FORMED, KP_SUMS, KP_FLUSH, KPAT_N = 8 };
struct kpat {
    union {
        struct {
            int64_t cycles, stalls, products, formed, sums, flush;
        };
        int64_t f[KPAT_N];
    };
};
struct scratch {
    uint32_t *stamp;      /* per address: last step that touched it (merged mode) */
    uint32_t *bank_stamp; /* per bank: last step that touched it */
    uint32_t *bank;       /* per bank: accesses in that step */
    uint32_t step;
    size_t n_stamp;
    /* row/kernel windows: per (kernel row,) local address, the window that last
     * touched it; the accumulator addresses of the window sums to flush */
    uint32_t *wstamp;
    int32_t *touched;
    uint32_t *flush_bank; /* per (kernel, bank): window sums flushed */
    uint32_t *flush_kmax; /* per kernel: the most of them in one bank */
    uint32_t win;
    size_t n_wstamp;
    struct vact *vacts; /* the vector steps: a channel's activation vectors */
    uint64_t *abits, *ubits; /* window bitmaps: per tile row, per region row */
    struct kpat *pst;        /* per distinct kernel pattern of a channel: its counts */
    struct rowmemo *memo; /* row window: per (kernel row, row pattern), this channel's */
    size_t n_memo;
    uint32_t memo_id;
};
/* The current activation vector, unpacked into locals that no store can alias, so
 * the compiler keeps them in registers across the scatter's stores. */
#define MAX_I 64
struct avec {
    int32_t hh[MAX_I], ww[MAX_I], base[MAX_I];
    double v[MAX_I];
    int n;
};

/* A <- the n activations at a (one activation vector). */
static inline void avec_fill(struct avec *A, const struct act *a, int n) {
    A->n = n;
    for (int i = 0; i < n; i++) {
        A->hh[i] = a[i].hh;
        A->ww[i] = a[i].ww;
        A->base[i] = a[i].base;
        A->v[i] = a[i].v;
    }
}

/* The accumulator address that activation i times a weight (at rr, ss, with base wb
 * and kbase kb) lands on, or -1 when the product falls outside the PE's outputs or
 * between strides. unit (stride 1) is a constant in each caller. */
static inline __attribute__((always_inline)) int32_t
out_addr(const struct avec *A, int i, int32_t rr, int32_t ss, int32_t wb, int32_t kb, uint32_t P,
         uint32_t Q, int sh, int sw, int RW, int rp0, int rq0, const int unit) {
    if (unit) {
        const int32_t p = A->hh[i] - rr, q = A->ww[i] - ss;
        if ((uint32_t)p >= P || (uint32_t)q >= Q) return -1;
        return A->base[i] + wb;
    }
    const int32_t pn = A->hh[i] - rr, qn = A->ww[i] - ss;
    if (pn < 0 || qn < 0 || pn % sh || qn % sw) return -1;
    const int32_t p = pn / sh, q = qn / sw;
    if ((uint32_t)p >= P || (uint32_t)q >= Q) return -1;
    return kb + (p - rp0) * RW + (q - rq0);
}

/* One multiplier-array step; unit and merged are constants in each caller, so the
 * compiler emits four specialised loops. Returns the step's cycles. Products are
 * visited weight by weight; the counts do not depend on the order. */
static inline __attribute__((always_inline)) int64_t
step(const struct plan *pl, const struct pe *t, const struct avec *A, const struct wt *wv,
     int nw, double *restrict acc, struct scratch *sc, struct pe_out *o, const int unit,
     const int merged, const int full4) {
    const uint32_t P = (uint32_t)pl->g->p, Q = (uint32_t)pl->g->q;
    const int sh = pl->g->sh, sw = pl->g->sw, RW = pl->RW, rp0 = t->rp0, rq0 = t->rq0;
    const uint16_t *restrict bank_of = pl->bank_of;
    uint32_t *restrict stamp = sc->stamp, *restrict bst = sc->bank_stamp, *restrict bcnt = sc->bank;
    uint32_t id = ++sc->step;
    if (id == 0) { /* wrapped: forget every stamp */
        memset(stamp, 0, sc->n_stamp * sizeof *stamp);
        memset(bst, 0, (size_t)pl->c->banks * sizeof *bst);
        id = sc->step = 1;
    }
    /* full4: a full 4 x 4 step (the default array), constant trip counts that the
     * compiler unrolls, so the loop branches cannot be mispredicted */
    const int na = full4 ? 4 : A->n;
    if (full4) nw = 4;
    uint32_t maxload = 0;
    int64_t valid = 0, distinct = 0;
    for (int j = 0; j < nw; j++) {
        const int32_t rr = wv[j].rr, ss = wv[j].ss, wb = wv[j].base, kb = wv[j].kbase;
        const double w = wv[j].v;
        for (int i = 0; i < na; i++) {
            const int32_t addr = out_addr(A, i, rr, ss, wb, kb, P, Q, sh, sw, RW, rp0, rq0, unit);
            if (addr < 0) continue;
            acc[addr] += A->v[i] * w;
            valid++;
            uint32_t fresh = 1; /* a new access to the banks */
            if (merged) {       /* masks, not branches: repeats are data */
                fresh = stamp[addr] != id;
                stamp[addr] = id;
                distinct += fresh;
            }
            const uint32_t b = bank_of[addr];
            const uint32_t l = (bcnt[b] & -(uint32_t)(bst[b] == id)) + fresh;
            bst[b] = id;
            bcnt[b] = l;
            maxload = l > maxload ? l : maxload;
        }
    }
    o->products += valid;
    o->formed += (int64_t)na * nw;
    o->acc += merged ? distinct : valid;
    if (merged) o->merge_adds += valid - distinct;
    return maxload > 1 ? (int64_t)maxload : 1;
}

/* One step of a kernel-major window (row or kernel): every product is added into
 * the partial-sum buffer (a write; plus a read when the window already holds a
 * sum for that output); the buffer has `banks` banks, bank = local address mod A.
 * A window's first product on an output appends its accumulator address to
 * sc->touched. Returns the step's cycles. */
static inline __attribute__((always_inline)) int64_t
step_psum(const struct plan *pl, const struct pe *t, const struct avec *A, const struct wt *wv,
          int nw, double *restrict acc, struct scratch *sc, struct pe_out *o, int *ntouched,
          const int unit, const int rowwin) {
    const uint32_t P = (uint32_t)pl->g->p, Q = (uint32_t)pl->g->q;
    const int sh = pl->g->sh, sw = pl->g->sw, RW = pl->RW, rp0 = t->rp0, rq0 = t->rq0;
    const int32_t region = (int32_t)sc->n_stamp;
    const uint16_t *restrict bank_of = pl->bank_of;
    uint32_t *restrict wst = sc->wstamp, *restrict bst = sc->bank_stamp, *restrict bcnt = sc->bank;
    int32_t *restrict touched = sc->touched;
    uint32_t id = ++sc->step;
    if (id == 0) {
        memset(bst, 0, (size_t)pl->c->banks * sizeof *bst);
        id = sc->step = 1;
    }
    const uint32_t win = sc->win;
    uint32_t maxload = 0;
    int64_t valid = 0, distinct = 0;
    int nt = *ntouched;
    for (int j = 0; j < nw; j++) {
        const int32_t rr = wv[j].rr, ss = wv[j].ss, wb = wv[j].base, kb = wv[j].kbase;
        const int32_t koff = rowwin ? wv[j].r * region : 0;
        const double w = wv[j].v;
        for (int i = 0; i < A->n; i++) {
            const int32_t addr = out_addr(A, i, rr, ss, wb, kb, P, Q, sh, sw, RW, rp0, rq0, unit);
            if (addr < 0) continue;
            acc[addr] += A->v[i] * w;
            valid++;
            const int32_t local = addr - kb;
            const uint32_t fresh = wst[koff + addr] != win;
            wst[koff + addr] = win;
            distinct += fresh;
            touched[nt] = addr;
            nt += (int)fresh;
            const uint32_t b = bank_of[local];
            const uint32_t l = (bcnt[b] & -(uint32_t)(bst[b] == id)) + 1;
            bst[b] = id;
            bcnt[b] = l;
            maxload = l > maxload ? l : maxload;
        }
    }
    *ntouched = nt;
    o->products += valid;
    o->formed += (int64_t)A->n * nw;
    o->psum_writes += valid;
    o->psum_reads += valid - distinct;
    o->merge_adds += valid - distinct;
    return maxload > 1 ? (int64_t)maxload : 1;
}

#if SCNN_SIMD
/* The vector steps (AVX-512): the F x I products of a step are the lanes
 * l = j I + i of one register (F I <= 16), so a step's bank loads come from one
 * conflict-detection instruction instead of a chain of counter updates through
 * memory. Only the accumulator values (and the row/kernel windows' stamps) are
 * updated lane by lane, in the scalar steps' order, so the outputs, like the
 * counts, are the scalar steps' exactly. Used for stride 1 and a power-of-two
 * number of banks; the tests compare both paths. */
struct vctx {
    __m512i ia, iw, sent, P, Q, bmask;
    __mmask16 amask[17], wmask[17]; /* lanes with i < n, lanes with j < n */
    uint8_t li[16], lj[16];
};

static void vctx_init(const struct plan *pl, struct vctx *vc) {
    const int F = pl->c->f, I = pl->c->i;
    int32_t ia[16], iw[16], sent[16];
    for (int l = 0; l < 16; l++) {
        ia[l] = l < F * I ? l % I : 0;
        iw[l] = l < F * I ? l / I : 0;
        sent[l] = 0x40000000 + l; /* distinct from every key and from each other */
        vc->li[l] = (uint8_t)ia[l];
        vc->lj[l] = (uint8_t)iw[l];
    }
    for (int n = 0; n <= 16; n++) {
        unsigned am = 0, wm = 0;
        for (int l = 0; l < F * I; l++) {
            am |= (unsigned)(l % I < n) << l;
            wm |= (unsigned)(l / I < n) << l;
        }
        vc->amask[n] = (__mmask16)am;
        vc->wmask[n] = (__mmask16)wm;
    }
    vc->ia = _mm512_loadu_si512(ia);
    vc->iw = _mm512_loadu_si512(iw);
    vc->sent = _mm512_loadu_si512(sent);
    vc->P = _mm512_set1_epi32(pl->g->p);
    vc->Q = _mm512_set1_epi32(pl->g->q);
    vc->bmask = _mm512_set1_epi32(pl->c->banks - 1);
}

/* The most lanes that hold one key (sentinels are distinct), at least 1. */
static inline __attribute__((always_inline)) int64_t vmaxload(__m512i key) {
    const __m512i cf = _mm512_conflict_epi32(key);
    if (!_mm512_test_epi32_mask(cf, cf)) return 1;
#ifdef __AVX512VPOPCNTDQ__
    const __m512i pc = _mm512_popcnt_epi32(cf);
#else /* the conflict masks have 16 bits: two bytes' popcounts by nibble lookup */
    const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                                              2, 3, 3, 4));
    const __m512i lo = _mm512_set1_epi8(0x0f);
    const __m512i b = _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_and_si512(cf, lo)),
                                      _mm512_shuffle_epi8(lut, _mm512_and_si512(
                                                                   _mm512_srli_epi32(cf, 4), lo)));
    const __m512i pc = _mm512_and_si512(_mm512_add_epi32(b, _mm512_srli_epi32(b, 8)),
                                        _mm512_set1_epi32(0xff));
#endif
    return (int64_t)_mm512_reduce_max_epi32(pc) + 1;
}

/* The activation vector A in lanes. */
struct vact {
    __m512i hh, ww, base;
    __mmask16 m;
};
static inline __attribute__((always_inline)) void vact_load(const struct vctx *vc,
                                                            const struct avec *A,
                                                            struct vact *va) {
    va->hh = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->hh));
    va->ww = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->ww));
    va->base = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->base));
    va->m = vc->amask[A->n];
}

/* A channel's na activations as ceil(na / I) vectors in lanes, into va[0..). */
static void vact_load_all(const struct vctx *vc, struct avec *A, const struct act *a, int na, int I,
                          struct vact *va) {
    for (int x = 0; x * I < na; x++) {
        avec_fill(A, a + x * I, na - x * I < I ? na - x * I : I);
        vact_load(vc, A, &va[x]);
    }
}

/* Valid lanes and their accumulator addresses for weights [w0, w0 + nw). */
static inline __attribute__((always_inline)) __mmask16
vaddr(const struct plan *pl, const struct vctx *vc, const struct vact *va, int32_t w0, int nw,
      __m512i *addr, __m512i *kb) {
    const __mmask16 lm = (__mmask16)((1u << nw) - 1);
    const __m512i rr = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_rr + w0));
    const __m512i ss = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_ss + w0));
    const __m512i wb =
        _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_base + w0));
    if (kb) *kb = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_kb + w0));
    *addr = _mm512_add_epi32(va->base, wb);
    return va->m & vc->wmask[nw] &
           _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va->hh, rr), vc->P) &
           _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va->ww, ss), vc->Q);
}

/* step() in lanes (stride 1). */
static inline __attribute__((always_inline)) int64_t
vstep(const struct plan *pl, const struct vctx *vc, const struct vact *va, const struct avec *A,
      const struct wt *wv, int32_t w0, int nw, double *restrict acc, struct pe_out *o,
      const int merged) {
    __m512i addr;
    const __mmask16 valid = vaddr(pl, vc, va, w0, nw, &addr, NULL);
    const int64_t nvalid = __builtin_popcount(valid);
    __mmask16 fresh = valid;
    if (merged) {
        const __m512i ca = _mm512_conflict_epi32(_mm512_mask_blend_epi32(valid, vc->sent, addr));
        fresh = _mm512_mask_testn_epi32_mask(valid, ca, ca);
    }
    const int64_t distinct = __builtin_popcount(fresh);
    o->products += nvalid;
    o->formed += (int64_t)A->n * nw;
    o->acc += distinct;
    if (merged) o->merge_adds += nvalid - distinct;
    if (distinct <= 1) return 1;
    return vmaxload(_mm512_mask_blend_epi32(fresh, vc->sent, _mm512_and_si512(addr, vc->bmask)));
}

/* step_psum() in lanes (stride 1), with window stamps (no bitmaps). */
static inline __attribute__((always_inline)) int64_t
vstep_psum(const struct plan *pl, const struct vctx *vc, const struct vact *va,
           const struct act *ap, int an, const struct wt *wv, int32_t w0, int nw,
           double *restrict acc, struct scratch *sc, struct pe_out *o, int *ntouched,
           const int rowwin) {
    __m512i addr, kb;
    const __mmask16 valid = vaddr(pl, vc, va, w0, nw, &addr, &kb);
    const int32_t *wb = pl->w_base + w0;
    const int32_t region = (int32_t)sc->n_stamp;
    uint32_t *restrict wst = sc->wstamp;
    int32_t *restrict touched = sc->touched;
    const uint32_t win = sc->win;
    int nt = *ntouched;
    int64_t distinct = 0;
    for (unsigned m = valid; m; m &= m - 1) {
        const int l = __builtin_ctz(m), i = vc->li[l], j = vc->lj[l];
        const struct wt *w = &wv[j];
        const int32_t a = ap[i].base + wb[j], key = (rowwin ? w->r * region : 0) + a;
        const uint32_t fresh = wst[key] != win;
        wst[key] = win;
        distinct += fresh;
        touched[nt] = a;
        nt += (int)fresh;
    }
    *ntouched = nt;
    const int64_t nvalid = __builtin_popcount(valid);
    o->products += nvalid;
    o->formed += (int64_t)an * nw;
    o->psum_writes += nvalid;
    o->psum_reads += nvalid - distinct;
    o->merge_adds += nvalid - distinct;
    if (nvalid <= 1) return 1;
    return vmaxload(_mm512_mask_blend_epi32(
        valid, vc->sent, _mm512_and_si512(_mm512_sub_epi32(addr, kb), vc->bmask)));
}

/* The row and kernel windows counted from bitmaps (stride 1, tile width and
 * region width at most 64, banks a power of two at most 64): the PE's non-zero
 * activations of a channel are one 64-bit word per tile row; a weight at (rr, ss)
 * moves them to the outputs its products reach, so the union over a window's
 * weights is the set of window sums (the distinct outputs the plain set count of
 * the reference finds), and the count of those per accumulator bank gives the
 * flush. One union per kernel (kernel window) or per kernel row (row window). */
struct wbits {
    const uint64_t *abits; /* per tile row h - h0: the non-zero activations at w - w0 */
    uint64_t *u;           /* per region row: the window's outputs at q - rq0 */
    uint64_t qmask;        /* region columns inside the output plane */
    int d0;                /* region column of tile column 0 for weight column 0 */
    __m512i c0, c1;        /* per bit position 0-31, 32-63 (after rotation): sums */
};

static inline __attribute__((always_inline)) void
wbits_or(const struct plan *pl, const struct pe *t, struct wbits *b, int rr, int ss) {
    const struct sg_conv_geom *g = pl->g;
    const int d = b->d0 - ss, pofs = g->pt - rr - t->rp0; /* region row of tile row h */
    if (d >= 64 || d <= -64) return; /* every product falls outside the region */
    int h0 = t->h0, h1 = t->h1;
    if (h0 + g->pt - rr < 0) h0 = rr - g->pt;
    if (h1 + g->pt - rr > g->p) h1 = g->p + rr - g->pt;
    for (int h = h0; h < h1; h++) {
        const uint64_t a = b->abits[h - t->h0];
        b->u[h + pofs] |= (d >= 0 ? a << d : a >> -d) & b->qmask;
    }
}

/* Adds the union's sums to the window count and to the per-bit counters
 * (rotated so that bit position mod banks is the bank); clears the union. */
static inline __attribute__((always_inline)) int64_t
wbits_take(const struct plan *pl, struct wbits *b, int32_t kbase) {
    const int RH = pl->RH, RW = pl->RW, nbm = pl->c->banks - 1;
    int64_t n = 0;
    for (int lr = 0; lr < RH; lr++) {
        const uint64_t u = b->u[lr];
        if (!u) continue;
        b->u[lr] = 0;
        n += __builtin_popcountll(u);
        const unsigned o = (unsigned)(kbase + lr * RW) & (unsigned)nbm;
        const uint64_t x = o ? (u << o) | (u >> (64 - o)) : u;
        b->c0 = _mm512_sub_epi16(b->c0, _mm512_movm_epi16((__mmask32)(uint32_t)x));
        b->c1 = _mm512_sub_epi16(b->c1, _mm512_movm_epi16((__mmask32)(uint32_t)(x >> 32)));
    }
    return n;
}

/* The most sums one bank received (counters folded mod banks); clears them. */
static inline __attribute__((always_inline)) int64_t wbits_most(const struct plan *pl,
                                                                struct wbits *b) {
    const int nb = pl->c->banks;
    if (nb >= 32) { /* one bank per lane (64: two registers), or pairs of lanes (32) */
        const __m512i lo = _mm512_set1_epi32(0xffff);
        __m512i m;
        if (nb == 32) {
            const __m512i c = _mm512_add_epi16(b->c0, b->c1);
            m = _mm512_max_epu32(_mm512_and_si512(c, lo), _mm512_srli_epi32(c, 16));
        } else {
            m = _mm512_max_epu32(
                _mm512_max_epu32(_mm512_and_si512(b->c0, lo), _mm512_srli_epi32(b->c0, 16)),
                _mm512_max_epu32(_mm512_and_si512(b->c1, lo), _mm512_srli_epi32(b->c1, 16)));
        }
        b->c0 = b->c1 = _mm512_setzero_si512();
        return (int64_t)_mm512_reduce_max_epu32(m);
    }
    uint16_t c[64];
    _mm512_storeu_si512(c, b->c0);
    _mm512_storeu_si512(c + 32, b->c1);
    b->c0 = b->c1 = _mm512_setzero_si512();
    int64_t most = 0;
    for (int k = 0; k < nb; k++) {
        int64_t sum = 0;
        for (int i = k; i < 64; i += nb) sum += c[i];
        most = sum > most ? sum : most;
    }
    return most;
}
#endif

/* The kernel-major loop of the row and kernel windows: input channel > kernel >
 * activation vector > that kernel's weight vectors; the window sums are written
 * into the accumulator banks when the kernel is done (one access each; the flush
 * takes as many cycles as the most sums one bank receives). */
static void run_pe_kmajor(const struct plan *pl, int gi, int e, double *acc, struct scratch *sc,
                          struct pe_out *out, const int unit, const int rowwin, const int simd) {
    const struct sg_conv_geom *g = pl->g;
    const struct pe *t = &pl->pe[e];
    const int I = pl->c->i, nb = pl->c->banks;
    const size_t nws = sc->n_wstamp;
    const uint16_t *bank_of = pl->bank_of;
    struct pe_out o;
    memset(&o, 0, sizeof o);
    struct avec A;
    memset(&A, 0, sizeof A);
#if SCNN_SIMD
    struct vctx vc;
    if (simd) vctx_init(pl, &vc);
#endif
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch, gc = (size_t)gi * g->c + ch;
        const struct act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        const struct wt *w = pl->wts + pl->woff[gc];
        const int32_t *vs = pl->vstart + pl->voff[gc];
        const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
        if (na == 0 || nv == 0) continue;
        const int nav = (na + I - 1) / I;
        int64_t kernels = 0; /* kernels with weights: one activation pass each */
        for (int v = 0; v < nv; v++) kernels += v == 0 || w[vs[v]].kbase != w[vs[v - 1]].kbase;
        o.areads += kernels * pl->a_entries[pc];
        o.aireads += pl->dense ? 0 : kernels * pl->a_entries[pc];
        o.wreads += (int64_t)nav * pl->w_entries[gc];
        o.wireads += (int64_t)nav * pl->wi_entries[gc];
        o.steps += (int64_t)nav * nv;
#if SCNN_SIMD
        struct vact *va = sc->vacts;
        if (simd) vact_load_all(&vc, &A, a, na, I, va); /* once for all kernels */
#endif
        for (int v0 = 0; v0 < nv;) { /* kernel by kernel: vectors [v0, v1) */
            int v1 = v0 + 1;
            while (v1 < nv && w[vs[v1]].kbase == w[vs[v0]].kbase) v1++;
            if (++sc->win == 0) { /* wrapped: forget every window stamp */
                memset(sc->wstamp, 0, nws * sizeof *sc->wstamp);
                sc->win = 1;
            }
            int nt = 0;
#if SCNN_SIMD
            if (simd) {
                const int32_t w0 = (int32_t)pl->woff[gc];
                for (int x = 0; x < nav; x++) {
                    const int an = na - x * I < I ? na - x * I : I;
                    for (int v = v0; v < v1; v++) {
                        int64_t cyc = vstep_psum(pl, &vc, &va[x], a + (size_t)x * I, an, w + vs[v],
                                                 w0 + vs[v], vs[v + 1] - vs[v], acc, sc, &o, &nt,
                                                 rowwin);
                        if (pl->dense) cyc = 1;
                        o.cycles += cyc;
                        o.stalls += cyc - 1;
                    }
                }
            } else
#endif
            {
                for (int ai = 0; ai < na; ai += I) {
                    avec_fill(&A, a + ai, na - ai < I ? na - ai : I);
                    for (int v = v0; v < v1; v++) {
                        int64_t cyc = step_psum(pl, t, &A, w + vs[v], vs[v + 1] - vs[v], acc, sc,
                                                &o, &nt, unit, rowwin);
                        if (pl->dense) cyc = 1;
                        o.cycles += cyc;
                        o.stalls += cyc - 1;
                    }
                }
            }
            /* flush: one accumulator read-add-write per window sum; it takes the
             * most sums one bank receives */
            uint32_t *cnt = sc->flush_bank, most = 0;
            memset(cnt, 0, (size_t)nb * sizeof *cnt);
            for (int x = 0; x < nt; x++) {
                const uint32_t l = ++cnt[bank_of[sc->touched[x]]];
                most = l > most ? l : most;
            }
            o.acc += nt;
            o.flush += most;
            o.cycles += most;
            v0 = v1;
        }
    }
    *out = o;
}

#if SCNN_SIMD
/* The row window's counts of one kernel row's weights (a row pattern) on one PE
 * and channel: its window sums and its per-bit bank counters. A kernel's row
 * windows are separate unions, so its counts are the sum of its rows'; each row
 * pattern of a channel is counted once per PE (memo stamped with the channel). */
struct rowmemo {
    __m512i c0, c1;
    int64_t sums;
    uint32_t stamp;
};
#define ROWMEMO_MAX_S 5 /* row patterns of at most 5 columns: 32 per kernel row */

/* One kernel pattern's counts on one PE (bitmap windows): its steps with every
 * activation vector of the channel, its window sums and its flush, into *o.
 * memo (row window only, or NULL): the channel's row patterns, stamp id. */
static inline __attribute__((always_inline)) void
kbits_kernel(const struct plan *pl, const struct pe *t, const struct vctx *vc,
             const struct vact *va, int na, int64_t p, struct wbits *wb, struct kpat *o,
             struct rowmemo *memo, uint32_t id, const int rowwin) {
    const struct sg_conv_geom *g = pl->g;
    const int I = pl->c->i, nav = (na + I - 1) / I;
    const int32_t *rr = pl->c_rr + pl->pat_w[p], *ss = pl->c_ss + pl->pat_w[p];
    const int32_t *lb = pl->c_lb + pl->pat_w[p], *kr = pl->c_r + pl->pat_w[p];
    const int32_t *vs = pl->c_vs + pl->pat_vs[p];
    const int nv = pl->pat_nv[p];
    int64_t an_sum = 0; /* the activations of all vectors: na */
    for (int x = 0; x < nav; x++) an_sum += na - x * I < I ? na - x * I : I;
    o->formed += an_sum * vs[nv];
    /* weight vector outside, activation vector inside: the weights' lanes once */
    for (int v = 0; v < nv; v++) {
        const int j = vs[v], nw = vs[v + 1] - j;
        const __mmask16 lm = (__mmask16)((1u << nw) - 1);
        const __m512i vr = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, rr + j));
        const __m512i vsn = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, ss + j));
        const __m512i vl = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, lb + j));
        const __mmask16 wm = vc->wmask[nw];
        for (int x = 0; x < nav; x++) {
            const __mmask16 valid = va[x].m & wm &
                                    _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va[x].hh, vr), vc->P) &
                                    _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va[x].ww, vsn), vc->Q);
            const int64_t nvalid = __builtin_popcount(valid);
            o->products += nvalid;
            int64_t cyc = 1;
            if (nvalid > 1 && !pl->dense)
                cyc = vmaxload(_mm512_mask_blend_epi32(
                    valid, vc->sent, _mm512_and_si512(_mm512_add_epi32(va[x].base, vl), vc->bmask)));
            o->cycles += cyc;
            o->stalls += cyc - 1;
        }
    }
    int64_t sums = 0;
    const int nkw = vs[nv];
    if (rowwin && memo) {
        __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
        const int dw = g->dw;
        for (int j0 = 0; j0 < nkw;) {
            int j1 = j0;
            unsigned sp = 0; /* the row's columns s = ss / dw */
            for (; j1 < nkw && kr[j1] == kr[j0]; j1++) sp |= 1u << (dw == 1 ? ss[j1] : ss[j1] / dw);
            struct rowmemo *m = &memo[((size_t)kr[j0] << ROWMEMO_MAX_S) + sp];
            if (m->stamp != id) { /* the row pattern's union, counted alone */
                for (int j = j0; j < j1; j++) wbits_or(pl, t, wb, rr[j], ss[j]);
                m->sums = wbits_take(pl, wb, 0);
                m->c0 = wb->c0, m->c1 = wb->c1;
                wb->c0 = wb->c1 = _mm512_setzero_si512();
                m->stamp = id;
            }
            sums += m->sums;
            c0 = _mm512_add_epi16(c0, m->c0);
            c1 = _mm512_add_epi16(c1, m->c1);
            j0 = j1;
        }
        wb->c0 = c0, wb->c1 = c1;
    } else {
        for (int j = 0; j < nkw; j++) {
            if (rowwin && j > 0 && kr[j] != kr[j - 1]) sums += wbits_take(pl, wb, 0);
            wbits_or(pl, t, wb, rr[j], ss[j]);
        }
        sums += wbits_take(pl, wb, 0);
    }
    const int64_t most = wbits_most(pl, wb);
    o->sums += sums;
    o->flush += most;
    o->cycles += most;
}

/* The row and kernel windows with bitmaps (pl->kbits): one PE, every channel and
 * every group, channel-major. A kernel's counts depend only on which of its
 * positions hold weights (its vectors, products, banks, window sums and flush;
 * not the values or the output channel: the flush's most-loaded bank is the same
 * for any rotation of the banks), so each distinct pattern of a channel
 * (plan_patterns) is counted once and added as often as a group holds it. The
 * counts are run_pe_kmajor's (the tests compare them); outs[gi * npe + e]
 * receives group gi's. */
static void run_pe_kbits(const struct plan *pl, int e, struct scratch *sc, struct pe_out *outs,
                         const int rowwin) {
    const struct sg_conv_geom *g = pl->g;
    const struct pe *t = &pl->pe[e];
    const int I = pl->c->i;
    struct avec A;
    memset(&A, 0, sizeof A);
    struct vctx vc;
    vctx_init(pl, &vc);
    struct wbits wb;
    memset(&wb, 0, sizeof wb);
    wb.u = sc->ubits;
    wb.d0 = t->w0 + g->pl - t->rq0;
    const int qn = g->q - t->rq0 < pl->RW ? g->q - t->rq0 : pl->RW;
    wb.qmask = qn >= 64 ? ~0ull : (1ull << qn) - 1;
    wb.c0 = wb.c1 = _mm512_setzero_si512();
    struct vact *va = sc->vacts;
    for (int gi = 0; gi < pl->ngroups; gi++) memset(&outs[(size_t)gi * pl->npe + e], 0, sizeof *outs);
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch;
        const struct act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        if (na == 0) continue;
        const int nav = (na + I - 1) / I;
        vact_load_all(&vc, &A, a, na, I, va);
        /* the non-zero activations, a word per tile row */
        memset(sc->abits, 0, (size_t)(t->h1 - t->h0) * sizeof *sc->abits);
        for (int i = 0; i < na; i++)
            sc->abits[a[i].hh - g->pt - t->h0] |= 1ull << (a[i].ww - g->pl - t->w0);
        wb.abits = sc->abits;
        /* each distinct kernel pattern of the channel, once */
        const int64_t p0 = pl->pat_off[ch], np = pl->pat_off[ch + 1] - p0;
        if (++sc->memo_id == 0) { /* wrapped: forget every memo stamp */
            for (size_t i = 0; sc->memo && i < sc->n_memo; i++) sc->memo[i].stamp = 0;
            sc->memo_id = 1;
        }
        for (int64_t p = 0; p < np; p++) {
            memset(&sc->pst[p], 0, sizeof sc->pst[p]);
            kbits_kernel(pl, t, &vc, va, na, p0 + p, &wb, &sc->pst[p], sc->memo, sc->memo_id,
                         rowwin);
        }
        for (int gi = 0; gi < pl->ngroups; gi++) {
            struct pe_out *o = &outs[(size_t)gi * pl->npe + e];
            const size_t gc = (size_t)gi * g->c + ch;
            const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
            if (nv == 0) continue;
            int64_t kernels = 0; /* kernels with weights: one activation pass each */
            int64_t f[KPAT_N] = {0};
            for (int64_t x = pl->ent_off[gc]; x < pl->ent_off[gc] + pl->ent_len[gc]; x++) {
                const int64_t n = pl->ent_cnt[x];
                const int64_t *d = sc->pst[pl->ent_pat[x]].f;
                for (size_t k = 0; k < KPAT_N; k++) f[k] += n * d[k];
                kernels += n;
            }
            /* every product is a partial-sum write; all but a window's first on an
             * output also a read and a merge add; the window sums go to the banks */
            const int64_t products = f[KP_PRODUCTS], sums = f[KP_SUMS];
            o->cycles += f[KP_CYCLES];
            o->stalls += f[KP_STALLS];
            o->products += products;
            o->formed += f[KP_FORMED];
            o->flush += f[KP_FLUSH];
            o->acc += sums;
            o->psum_writes += products;
            o->psum_reads += products - sums;
            o->merge_adds += products - sums;
            o->areads += kernels * pl->a_entries[pc];
            o->aireads += pl->dense ? 0 : kernels * pl->a_entries[pc];
            o->wreads += (int64_t)nav * pl->w_entries[gc];
            o->wireads += (int64_t)nav * pl->wi_entries[gc];
            o->steps += (int64_t)nav * nv;
        }
    }
}
#endif

static void run_pe(const struct plan *pl, int gi, int e, double *acc, struct scratch *sc,
                   struct pe_out *out, const int unit, const int merged, const int simd) {
    const struct sg_conv_geom *g = pl->g;
    const struct pe *t = &pl->pe[e];
    const int I = pl->c->i;
    /* counted locally: neighbouring PEs' results share cache lines */
    struct pe_out o;
    memset(&o, 0, sizeof o);
    struct avec A;
    memset(&A, 0, sizeof A);
#if SCNN_SIMD
    struct vctx vc;
    struct vact va;
    if (simd) vctx_init(pl, &vc);
#endif
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch, gc = (size_t)gi * g->c + ch;
        const struct act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        const struct wt *w = pl->wts + pl->woff[gc];
        const int32_t *vs = pl->vstart + pl->voff[gc];
        const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
        if (na == 0 || nv == 0) continue; /* nothing to multiply: the channel is skipped */
        const int nav = (na + I - 1) / I;
        o.areads += pl->a_entries[pc];
        o.aireads += pl->dense ? 0 : pl->a_entries[pc];
        o.wreads += (int64_t)nav * pl->w_entries[gc];
        o.wireads += (int64_t)nav * pl->wi_entries[gc];
        o.steps += (int64_t)nav * nv;
        for (int ai = 0; ai < na; ai += I) {
            avec_fill(&A, a + ai, na - ai < I ? na - ai : I);
#if SCNN_SIMD
            if (simd) {
                vact_load(&vc, &A, &va);
                const int32_t w0 = (int32_t)pl->woff[gc];
                for (int v = 0; v < nv; v++) {
                    int64_t cyc = vstep(pl, &vc, &va, &A, w + vs[v], w0 + vs[v], vs[v + 1] - vs[v],
                                        acc, &o, merged);
                    if (pl->dense) cyc = 1;
                    o.cycles += cyc;
                    o.stalls += cyc - 1;
                }
                continue;
            }
#endif
            const int full_a = A.n == 4 && pl->c->f == 4;
            for (int v = 0; v < nv; v++) {
                const int nw = vs[v + 1] - vs[v];
                int64_t cyc =
                    full_a && nw == 4
                        ? step(pl, t, &A, w + vs[v], nw, acc, sc, &o, unit, merged, 1)
                        : step(pl, t, &A, w + vs[v], nw, acc, sc, &o, unit, merged, 0);
                if (pl->dense) cyc = 1; /* a dense array's accumulation is scheduled */
                o.cycles += cyc;
                o.stalls += cyc - 1;
            }
        }
    }
    *out = o;
}

static void run_pe_any(const struct plan *pl, int gi, int e, double *acc, struct scratch *sc,
                       struct pe_out *o) {
    const int unit = pl->g->sh == 1 && pl->g->sw == 1;
    const int merged = pl->c->accumulate == SG_SCNN_ACC_MERGED;
    if (pl->kmode) {
        const int rowwin = pl->c->accumulate == SG_SCNN_ACC_ROW;
        if (pl->simd && rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 1, 1);
        else if (pl->simd) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 0, 1);
        else if (unit && rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 1, 0);
        else if (unit) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 0, 0);
        else if (rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 0, 1, 0);
        else run_pe_kmajor(pl, gi, e, acc, sc, o, 0, 0, 0);
    } else if (pl->simd && merged) run_pe(pl, gi, e, acc, sc, o, 1, 1, 1);
    else if (pl->simd) run_pe(pl, gi, e, acc, sc, o, 1, 0, 1);
    else if (unit && merged) run_pe(pl, gi, e, acc, sc, o, 1, 1, 0);
    else if (unit) run_pe(pl, gi, e, acc, sc, o, 1, 0, 0);
    else if (merged) run_pe(pl, gi, e, acc, sc, o, 0, 1, 0);
    else run_pe(pl, gi, e, acc, sc, o, 0, 0, 0);
}

static void plan_free(struct plan *pl) {
    free(pl->pe), free(pl->aoff), free(pl->a_entries), free(pl->acts), free(pl->woff);
    free(pl->w_entries), free(pl->voff), free(pl->wts), free(pl->vstart), free(pl->bank_of);
    free(pl->wi_entries), free(pl->maxnav);
    free(pl->w_rr), free(pl->w_ss), free(pl->w_base), free(pl->w_kb);
    free(pl->pat_off), free(pl->ent_off), free(pl->ent_len);
    free(pl->ent_pat), free(pl->ent_cnt);
    free(pl->c_rr), free(pl->c_ss), free(pl->c_lb), free(pl->c_r), free(pl->c_vs), free(pl->pat_w);
    free(pl->pat_vs), free(pl->pat_nv);
}

#if SCNN_SIMD
/* The outputs of a layer whose steps do not add values (the vector steps): the
 * direct convolution in double, each output the sum of its products in one fixed
 * order (input channel, kernel row, kernel column: the nonzero weights of its
 * filter in storage order), whatever the thread count. They equal the dataflow's
 * sums up to the order of the additions; the scalar steps add every product at its
 * accumulator address and the tests check both against the reference convolution.
 * Output-stationary: nr rows x nz 8-wide column blocks of one filter stay in
 * registers while its weights go by; the input is zero padded (a product with a
 * padding zero adds +-0, which leaves every sum as it is: a sum that starts at +0
 * is never -0). Each product of two floats is exact in double, so a fused
 * multiply-add rounds as the separate add does. Stride 1 only. */
static inline __attribute__((always_inline)) void
lv_block(const float *xp, const int32_t *off, const float *wv, int n, int WP, float *yo, int Q,
         int nq, const int nr, const int nz) {
    __m512d acc[8];
    for (int i = 0; i < nr * nz; i++) acc[i] = _mm512_setzero_pd();
    for (int j = 0; j < n; j++) {
        const float *px = xp + off[j];
        const __m512d wj = _mm512_set1_pd((double)wv[j]);
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < nz; i++)
                acc[r * nz + i] = _mm512_fmadd_pd(
                    wj, _mm512_cvtps_pd(_mm256_loadu_ps(px + (size_t)r * WP + 8 * i)), acc[r * nz + i]);
    }
    for (int r = 0; r < nr; r++)
        for (int i = 0; i < nz; i++) {
            const int m = nq - 8 * i;
            const __mmask8 mk = m >= 8 ? (__mmask8)0xff : (__mmask8)((1u << m) - 1);
            _mm256_mask_storeu_ps(yo + (size_t)r * Q + 8 * i, mk, _mm512_cvtpd_ps(acc[r * nz + i]));
        }
}

static enum sg_status layer_values(const struct sg_conv_geom *g, const float *w, const float *x,
                                   float *y) {
    const int P = g->p, Q = g->q, QB = (Q + 31) & ~31;
    const int HP = P + (g->r - 1) * g->dh, WP = QB + (g->s - 1) * g->dw;
    const size_t crs = (size_t)g->c * g->r * g->s;
    if ((int64_t)g->c * HP * WP > INT32_MAX)
        return sgi_error(SG_ERR_LIMIT, "layer input of %lld padded values (at most %d)",
                         (long long)g->c * HP * WP, INT32_MAX);
    float *xp = sgi_alloc((size_t)g->c * HP * WP, sizeof *xp);
    int64_t *koff = sgi_alloc((size_t)g->k + 1, sizeof *koff);
    int32_t *off = NULL; /* offsets into xp: 8 bytes a weight with its value */
    float *wv = NULL;
    if (!xp || !koff) {
        free(xp), free(koff);
        return SG_ERR_NOMEM;
    }
    /* padded row i holds input row i - pt, padded column j input column j - pl */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < g->c; c++)
        for (int i = 0; i < HP; i++) {
            float *row = xp + ((size_t)c * HP + i) * WP;
            const int h = i - g->pt;
            memset(row, 0, (size_t)WP * sizeof *row);
            if (h < 0 || h >= g->h) continue;
            const int j0 = g->pl, j1 = g->pl + g->w < WP ? g->pl + g->w : WP;
            if (j1 > j0) memcpy(row + j0, x + ((size_t)c * g->h + h) * g->w, (size_t)(j1 - j0) * sizeof *row);
        }
    /* each filter's nonzero weights in storage order: value and input offset */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->k; k++) {
        int64_t n = 0;
        for (size_t i = 0; i < crs; i++) n += w[(size_t)k * crs + i] != 0.0f;
        koff[k] = n;
    }
    int64_t nnz = 0;
    for (int k = 0; k <= g->k; k++) {
        const int64_t n = k < g->k ? koff[k] : 0;
        koff[k] = nnz;
        nnz += n;
    }
    off = sgi_alloc((size_t)nnz + 1, sizeof *off);
    wv = sgi_alloc((size_t)nnz + 1, sizeof *wv);
    if (!off || !wv) {
        free(xp), free(koff), free(off), free(wv);
        return SG_ERR_NOMEM;
    }
    const int C = g->c, R = g->r, S = g->s, dh = g->dh, dw = g->dw;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->k; k++) {
        int64_t n = koff[k];
        const float *wk = w + (size_t)k * crs;
        int32_t *restrict ko = off;
        float *restrict kw = wv;
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++) {
                    const float v = *wk++;
                    if (v == 0.0f) continue;
                    ko[n] = (int32_t)(((int64_t)c * HP + (int64_t)r * dh) * WP + (int64_t)s * dw);
                    kw[n++] = v;
                }
    }
    /* tasks: a block of rows and columns for a chunk of filters (filters inside, so
     * the input rows of a block stay in cache while the filters go by) */
    const int nqb = (Q + 31) / 32, QL = Q - (nqb - 1) * 32; /* the last block's width */
    const int nzl = (QL + 7) / 8, nz0 = nqb > 1 ? 4 : nzl;
    const int nr = nz0 == 1 ? 8 : nz0 == 2 ? 4 : 2; /* 6 to 8 accumulators */
    const int npb = (P + nr - 1) / nr, KCH = 32, nkc = (g->k + KCH - 1) / KCH;
    const int64_t ntask = (int64_t)npb * nqb * nkc;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; task++) {
        const int kc = (int)(task % nkc), qb = (int)(task / nkc % nqb), pb = (int)(task / nkc / nqb);
        const int q0 = qb * 32, nq = Q - q0 < 32 ? Q - q0 : 32, nz = (nq + 7) / 8;
        const int p0 = pb * nr, p1 = p0 + nr < P ? p0 + nr : P;
        const int k1 = (kc + 1) * KCH < g->k ? (kc + 1) * KCH : g->k;
        for (int k = kc * KCH; k < k1; k++) {
            const int32_t *ko = off + koff[k];
            const float *kw = wv + koff[k];
            const int n = (int)(koff[k + 1] - koff[k]);
            float *yk = y + (size_t)k * P * Q;
            for (int p = p0; p < p1;) {
                const float *b = xp + (size_t)p * WP + q0;
                float *yo = yk + (size_t)p * Q + q0;
                const int left = p1 - p;
                if (nz == 1 && left >= 8) lv_block(b, ko, kw, n, WP, yo, Q, nq, 8, 1), p += 8;
                else if (nz == 2 && left >= 4) lv_block(b, ko, kw, n, WP, yo, Q, nq, 4, 2), p += 4;
                else if (nz == 3 && left >= 2) lv_block(b, ko, kw, n, WP, yo, Q, nq, 2, 3), p += 2;
                else if (nz == 4 && left >= 2) lv_block(b, ko, kw, n, WP, yo, Q, nq, 2, 4), p += 2;
                else {
                    if (nz == 1) lv_block(b, ko, kw, n, WP, yo, Q, nq, 1, 1);
                    else if (nz == 2) lv_block(b, ko, kw, n, WP, yo, Q, nq, 1, 2);
                    else if (nz == 3) lv_block(b, ko, kw, n, WP, yo, Q, nq, 1, 3);
                    else lv_block(b, ko, kw, n, WP, yo, Q, nq, 1, 4);
                    p++;
                }
            }
        }
    }
    free(xp), free(koff), free(off), free(wv);
    return SG_OK;
}
#endif

/* Post-processing: each PE compresses the outputs it owns (after ReLU if asked).
 * PEs in parallel; their counts are added in PE order. */
static enum sg_status count_outputs(const struct plan *pl, const float *y, struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const int64_t ebits = pl->c->value_bits + (pl->dense ? 0 : pl->c->index_bits);
    int64_t *pc = sgi_alloc((size_t)pl->npe * 3, sizeof *pc); /* per PE: nnz, fillers, bits */
    if (!pc) return SG_ERR_NOMEM;
#pragma omp parallel for schedule(dynamic, 1)
    for (int e = 0; e < pl->npe; e++) {
        const struct pe *t = &pl->pe[e];
        int64_t bits = 0, nnz = 0, fill = 0;
        for (int k = 0; k < g->k; k++) {
            struct runc rc = {0, 0, 0};
            for (int p = t->p0; p < t->p1; p++)
                for (int q = t->q0; q < t->q1; q++) {
                    float v = y[((size_t)k * g->p + p) * g->q + q];
                    const int nz = pl->c->relu ? v > 0.0f : v != 0.0f;
                    nnz += nz;
                    run_push(&rc, pl->dense || nz, pl->c->index_bits);
                }
            fill += rc.fill;
            bits += (rc.nnz + rc.fill) * ebits;
        }
        pc[3 * e] = nnz, pc[3 * e + 1] = fill, pc[3 * e + 2] = bits;
    }
    const int64_t cap = pl->c->oaram_bytes * 8;
    for (int e = 0; e < pl->npe; e++) {
        const int64_t bits = pc[3 * e + 2];
        st->out_nnz += pc[3 * e];
        st->out_fillers += pc[3 * e + 1];
        st->out_writes += bits / ebits;
        st->dram_act_out_bits += pl->c->act_out_dram ? bits : (bits > cap ? bits - cap : 0);
        st->oaram_overflow += bits > cap;
    }
    free(pc);
    return SG_OK;
}

/* Adds a PE's partial sums of group gi into the layer output and clears them.
 * Callers go through the PEs of a group in order, so the sums do not depend on
 * the thread count; different groups write different output channels. */
static void fold_pe(const struct plan *pl, int gi, int e, double *acc, double *ysum) {
    const struct sg_conv_geom *g = pl->g;
    const struct pe *t = &pl->pe[e];
    const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
    for (int kk = 0; kk < kcg; kk++)
        for (int p = t->rp0; p < t->rp1; p++)
            for (int q = t->rq0; q < t->rq1; q++) {
                double *a = &acc[(size_t)kk * pl->area + (size_t)(p - t->rp0) * pl->RW + (q - t->rq0)];
                ysum[((size_t)(k0 + kk) * g->p + p) * g->q + q] += *a;
                *a = 0.0;
            }
}

/* The counts of group gi from its PEs' results. */
static void group_stats(const struct plan *pl, int gi, const struct pe_out *outs,
                        struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
    int64_t slowest = 0, halo_max = 0;
    for (int e = 0; e < pl->npe; e++) {
        const struct pe_out *o = &outs[e];
        slowest = o->cycles > slowest ? o->cycles : slowest;
        const int64_t halo = pl->pe[e].halo_area * kcg;
        halo_max = halo > halo_max ? halo : halo_max;
        st->halo += halo;
        st->steps += o->steps;
        st->conflict_stalls += o->stalls;
        st->products += o->products;
        st->products_formed += o->formed;
        st->acc_writes += o->acc;
        st->acc_reads += o->acc;
        st->merge_adds += o->merge_adds;
        st->weight_reads += o->wreads;
        st->weight_index_reads += o->wireads;
        st->act_reads += o->areads;
        st->act_index_reads += o->aireads;
        st->psum_reads += o->psum_reads;
        st->psum_writes += o->psum_writes;
        st->flush_cycles += o->flush;
    }
    for (int e = 0; e < pl->npe; e++) st->idle_pe_cycles += slowest - outs[e].cycles;
    st->compute_cycles += slowest;
    st->halo_cycles += halo_max;
}

static void scratch_init(const struct plan *pl, size_t region, struct scratch *sc) {
    memset(sc, 0, sizeof *sc);
    sc->n_stamp = region;
    sc->stamp = sgi_zalloc(region, sizeof(uint32_t));
    sc->bank_stamp = sgi_zalloc((size_t)pl->c->banks, sizeof(uint32_t));
    sc->bank = sgi_zalloc((size_t)pl->c->banks, sizeof(uint32_t));
    sc->n_wstamp = (size_t)(pl->c->accumulate == SG_SCNN_ACC_ROW ? pl->g->r : 1) * region;
    sc->wstamp = sgi_zalloc(sc->n_wstamp, sizeof(uint32_t));
    sc->touched = sgi_alloc(sc->n_wstamp + 1, sizeof(int32_t));
    sc->flush_bank = sgi_zalloc((size_t)pl->kc * pl->c->banks, sizeof(uint32_t));
    sc->flush_kmax = sgi_zalloc((size_t)pl->kc, sizeof(uint32_t));
#if SCNN_SIMD
    if (pl->simd && pl->kmode) {
        int most = 1;
        for (int ch = 0; ch < pl->g->c; ch++) most = pl->maxnav[ch] > most ? pl->maxnav[ch] : most;
        sc->vacts = sgi_alloc((size_t)most, sizeof(struct vact));
    }
    if (pl->kbits) {
        int rows = 1;
        for (int e = 0; e < pl->npe; e++)
            rows = pl->pe[e].h1 - pl->pe[e].h0 > rows ? pl->pe[e].h1 - pl->pe[e].h0 : rows;
        sc->abits = sgi_alloc((size_t)rows, sizeof *sc->abits);
        sc->ubits = sgi_zalloc((size_t)pl->RH, sizeof *sc->ubits);
        int64_t most = 1;
        for (int ch = 0; ch < pl->g->c; ch++)
            most = pl->pat_off[ch + 1] - pl->pat_off[ch] > most ? pl->pat_off[ch + 1] - pl->pat_off[ch]
                                                               : most;
        sc->pst = sgi_alloc((size_t)most, sizeof *sc->pst);
        if (pl->c->accumulate == SG_SCNN_ACC_ROW && pl->g->s <= ROWMEMO_MAX_S) {
            sc->n_memo = (size_t)pl->g->r << ROWMEMO_MAX_S;
            sc->memo = sgi_zalloc(sc->n_memo, sizeof *sc->memo);
            if (!sc->memo) sc->n_memo = 0; /* counted without the memo */
        }
    }
#endif
}
static int scratch_ok(const struct plan *pl, const struct scratch *sc) {
    return sc->stamp && sc->bank_stamp && sc->bank && sc->wstamp && sc->touched && sc->flush_bank &&
           sc->flush_kmax && (sc->vacts || !(pl->simd && pl->kmode)) &&
           ((sc->abits && sc->ubits && sc->pst) || !pl->kbits);
}
static void scratch_free(struct scratch *sc) {
    free(sc->stamp), free(sc->bank_stamp), free(sc->bank), free(sc->wstamp), free(sc->touched);
    free(sc->flush_bank), free(sc->flush_kmax), free(sc->vacts), free(sc->abits), free(sc->ubits);
    free(sc->pst), free(sc->memo);
}

/* Many groups: one task per group (its PEs in order); no barrier between groups,
 * which matters when the machine is shared and a waiting thread loses its core. */
static int run_by_group(const struct plan *pl, size_t region, double *ysum,
                        struct sg_scnn_stats *gst) {
    int failed = 0;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        double *acc = sgi_zalloc(region, sizeof *acc);
        struct pe_out *outs = sgi_zalloc((size_t)pl->npe, sizeof *outs);
        const int ok = scratch_ok(pl, &sc) && acc && outs;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int gi = 0; gi < pl->ngroups; gi++) {
            if (!ok) continue;
            for (int e = 0; e < pl->npe; e++) {
                run_pe_any(pl, gi, e, acc, &sc, &outs[e]);
                if (!pl->simd) fold_pe(pl, gi, e, acc, ysum);
            }
            group_stats(pl, gi, outs, &gst[gi]);
        }
        scratch_free(&sc), free(acc), free(outs);
    }
    return failed;
}

/* Few groups: the PEs of each group in parallel, then a serial fold in PE order. */
static int run_by_pe(const struct plan *pl, size_t region, double *accs, struct pe_out *outs,
                     double *ysum, struct sg_scnn_stats *gst) {
    int failed = 0;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        if (!scratch_ok(pl, &sc)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        for (int gi = 0; gi < pl->ngroups && !failed; gi++) {
#pragma omp for schedule(dynamic, 1)
            for (int e = 0; e < pl->npe; e++)
                run_pe_any(pl, gi, e, accs + (size_t)e * region, &sc, &outs[e]);
#pragma omp single
            {
                for (int e = 0; e < pl->npe && !pl->simd; e++)
                    fold_pe(pl, gi, e, accs + (size_t)e * region, ysum);
                group_stats(pl, gi, outs, &gst[gi]);
            }
        }
        scratch_free(&sc);
    }
    return failed;
}

#if SCNN_SIMD
/* Bitmap windows: the PEs in parallel, each over all groups (run_pe_kbits), then
 * the groups' counts in group order. */
static int run_kbits(const struct plan *pl, size_t region, struct sg_scnn_stats *gst) {
    int failed = 0;
    struct pe_out *outs = sgi_zalloc((size_t)pl->ngroups * pl->npe, sizeof *outs);
    if (!outs) return 1;
    const int rowwin = pl->c->accumulate == SG_SCNN_ACC_ROW;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        const int ok = scratch_ok(pl, &sc);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int e = 0; e < pl->npe; e++) {
            if (!ok) continue;
            if (rowwin) run_pe_kbits(pl, e, &sc, outs, 1);
            else run_pe_kbits(pl, e, &sc, outs, 0);
        }
        scratch_free(&sc);
    }
    for (int gi = 0; gi < pl->ngroups && !failed; gi++)
        group_stats(pl, gi, outs + (size_t)gi * pl->npe, &gst[gi]);
    free(outs);
    return failed;
}
#endif

enum sg_status sg_scnn_layer(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                             const float *w, const float *x, float *y, struct sg_scnn_stats *st) {
    memset(st, 0, sizeof *st);
    enum sg_status s = sgi_scnn_check_layer(c, g);
    if (s != SG_OK) return s;
    struct plan pl = {.c = c, .g = g};
    double *ysum = NULL, *accs = NULL;
    float *yown = NULL;
    struct pe_out *outs = NULL;
    struct sg_scnn_stats *gst = NULL;
    if ((s = plan_tiles(&pl)) != SG_OK || (s = choose_kc(c, g, pl.RH, pl.RW, &pl.kc)) != SG_OK)
        goto done;
    pl.area = pl.RH * pl.RW;
    pl.ngroups = (g->k + pl.kc - 1) / pl.kc;
    pl.kmode = c->accumulate == SG_SCNN_ACC_ROW || c->accumulate == SG_SCNN_ACC_KERNEL;
    pl.dense = c->arch == SG_SCNN_ARCH_DCNN;
    /* the vector steps: stride 1, F I <= 16 lanes, bank = address & (banks - 1) */
    pl.simd = SCNN_SIMD && sgi_scnn_simd && g->sh == 1 && g->sw == 1 && c->f * c->i <= 16 &&
              (c->banks & (c->banks - 1)) == 0;
    if (pl.simd && pl.kmode && c->banks <= 64 && pl.RW <= 64) {
        int wmax = 0;
        for (int e = 0; e < pl.npe; e++)
            wmax = pl.pe[e].w1 - pl.pe[e].w0 > wmax ? pl.pe[e].w1 - pl.pe[e].w0 : wmax;
        /* 2: the vector steps with window stamps (the tests compare) */
        pl.kbits = wmax <= 64 && g->r * g->s <= 64 && sgi_scnn_simd < 2;
    }
    if (pl.kmode) { /* the partial-sum buffer holds one window: a kernel's region or a row */
        const int need = c->accumulate == SG_SCNN_ACC_ROW ? pl.RW : pl.area;
        if (c->psum_entries > 0 && c->psum_entries < need) {
            s = sgi_error(SG_ERR_ARG, "a %s window needs a partial-sum buffer of %d entries here "
                          "(%dx%d region per output channel); --psum-entries is %d",
                          sg_scnn_accum_name(c->accumulate), need, pl.RH, pl.RW, c->psum_entries);
            goto done;
        }
        st->psum_entries = c->psum_entries > 0 ? c->psum_entries : need;
    }
    const size_t region = (size_t)pl.kc * pl.area, ny = (size_t)g->k * g->p * g->q;
    pl.bank_of = sgi_alloc(region, sizeof *pl.bank_of);
    /* the scalar steps add their products into ysum; the vector steps' outputs come
     * from layer_values */
    if (!pl.simd) ysum = sgi_alloc(ny, sizeof *ysum);
    accs = sgi_zalloc((size_t)pl.npe * region, sizeof *accs);
    outs = sgi_zalloc((size_t)pl.npe, sizeof *outs);
    if (!y) y = yown = sgi_alloc(ny, sizeof *y);
    if (!pl.bank_of || (!pl.simd && !ysum) || !accs || !outs || !y) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    if (ysum) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < ny; i++) ysum[i] = 0.0;
    }
    for (size_t i = 0; i < region; i++) pl.bank_of[i] = (uint16_t)(i % (size_t)c->banks);
    if ((s = plan_acts(&pl, x, st)) != SG_OK || (s = plan_weights(&pl, w, st)) != SG_OK) goto done;
    if (pl.kbits && (s = plan_patterns(&pl)) != SG_OK) goto done;

    /* per-group counts, summed in group order below */
    gst = sgi_zalloc((size_t)pl.ngroups, sizeof *gst);
    if (!gst) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    int failed;
#if SCNN_SIMD
    if (pl.kbits)
        failed = run_kbits(&pl, region, gst);
    else
#endif
        failed = pl.ngroups >= 4 * sg_get_threads() ? run_by_group(&pl, region, ysum, gst)
                                                    : run_by_pe(&pl, region, accs, outs, ysum, gst);
    if (failed) {
        s = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
#if SCNN_SIMD
    if (pl.simd && (s = layer_values(g, w, x, y)) != SG_OK) goto done; /* no values added */
#endif
    if (!pl.simd) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < ny; i++) y[i] = (float)ysum[i];
    }
    for (int gi = 0; gi < pl.ngroups; gi++) sg_scnn_stats_add(st, &gst[gi]);

    st->kc = pl.kc;
    st->groups = pl.ngroups;
    st->cycles = st->compute_cycles + st->halo_cycles;
    st->mult_slots = st->steps * c->f * c->i;
    st->acc_drain = (int64_t)ny; /* every output is drained once by the PE owning it */
    st->acc_reads += st->acc_drain;
    st->weights = (int64_t)g->k * g->c * g->r * g->s;
    st->acts = (int64_t)g->c * g->h * g->w;
    st->outs = (int64_t)ny;
    if ((s = count_outputs(&pl, y, st)) != SG_OK) goto done;
    sg_scnn_energy_of(c, st);
done:
    plan_free(&pl);
    free(ysum), free(accs), free(outs), free(yown), free(gst);
    return s;
}
