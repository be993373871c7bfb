/* The SCNN dataflow walked directly, slowly and obviously, to check src/sim/scnn.c.
 *
 * Written from the definitions in docs/scnn-model.md without sharing code with the
 * fast simulator: ownership is found by searching the parts, an output position
 * is found by trying every output row and column, repeated addresses in a step
 * are found by comparing pairs, outputs are summed straight into one array in
 * walk order. Cost grows like products x (P + Q): small layers only. */
#include "sim/simi.h"

struct item {
    int k, r, s, h, w; /* weights use k, r, s; activations h, w */
    float v;
    int64_t went, ient; /* weights: value and index entries charged to this one */
};

/* The part (of `parts`) that holds position x of n under the even split. */
static int part_of(int x, int n, int parts) {
    for (int i = 0; i < parts; i++) {
        int64_t lo = (int64_t)i * n / parts, hi = (int64_t)(i + 1) * n / parts;
        if (x >= lo && x < hi) return i;
    }
    SG_ASSERT(0);
    return -1;
}

/* Output row p reached from input row h through some kernel row? */
static int hits(int h, int p, int pad, int r, int dil, int stride) {
    for (int k = 0; k < r; k++)
        if (p * stride == h + pad - k * dil) return 1;
    return 0;
}

static int reached(int part, int parts, int n_in, int p, int pad, int r, int dil, int stride) {
    for (int h = 0; h < n_in; h++)
        if (part_of(h, n_in, parts) == part && hits(h, p, pad, r, dil, stride)) return 1;
    return 0;
}

/* Zero-run entries of a stream, one value at a time. */
struct runs {
    int64_t zeros, nnz, fillers;
};
static void runs_add(struct runs *u, int nonzero, int bits) {
    const int64_t max_run = ((int64_t)1 << bits) - 1;
    if (!nonzero) {
        u->zeros++;
        return;
    }
    while (u->zeros > max_run) { /* a filler entry stands for max_run zeros and itself */
        u->fillers++;
        u->zeros -= max_run + 1;
    }
    u->zeros = 0;
    u->nnz++;
}

/* Weight vectors: lists of indices into the stream; returns the count. */
static int make_vectors(const struct sg_scnn_config *c, const struct item *wl, int n, int *first,
                        int *len) {
    int nv = 0;
    if (c->fetch == SG_SCNN_FETCH_STREAM) {
        for (int i = 0; i < n; i += c->f, nv++) {
            first[nv] = i;
            len[nv] = n - i < c->f ? n - i : c->f;
        }
        return nv;
    }
    int open = 0; /* a vector is being filled */
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && wl[j].k == wl[i].k && wl[j].r == wl[i].r) j++;
        /* the row [i, j) in pieces of at most F */
        for (int p = i; p < j;) {
            int piece = j - p < c->f ? j - p : c->f;
            if (!open || len[nv - 1] + piece > c->f) {
                first[nv] = p;
                len[nv] = 0;
                nv++;
                open = 1;
            }
            len[nv - 1] += piece;
            p += piece;
        }
        i = j;
    }
    return nv;
}

/* The weight items of one (group, channel) block in stream order, each with the
 * stream entries charged to it: per-weight index: itself and the fillers before
 * it; group index: the first kept weight of a group carries the group's index
 * (with fillers for the all-zero groups before it) and all its values; dense:
 * one value, no index. Returns the item count; *vent, *ient the block's sums. */
static int weight_items(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                        const float *w, int ch, int k0, int k1, struct item *wl, int64_t *vent,
                        int64_t *ient, int64_t *fillers) {
    const int dense = c->arch == SG_SCNN_ARCH_DCNN, R = g->r, S = g->s, C = g->c;
    const int grouped = !dense && c->index == SG_SCNN_INDEX_GROUP &&
                        c->index_unit != SG_SCNN_UNIT_WEIGHT;
    int n = 0;
    struct runs u = {0, 0, 0};
    int64_t empty_groups = 0;
    *vent = *ient = 0;
    for (int k = k0; k < k1; k++)
        for (int r = 0; r < R; r++)
            for (int t = 0; t < S; t++) {
                float v = w[(((size_t)k * C + ch) * R + r) * S + t];
                const int64_t before = u.fillers;
                runs_add(&u, dense || v != 0.0f, c->index_bits);
                /* the group this weight belongs to */
                int gfirst = 1, gkept = 0, glast = 0, gsize = 1;
                if (grouped) {
                    int r0 = c->index_unit == SG_SCNN_UNIT_ROW ? r : 0;
                    int r1 = c->index_unit == SG_SCNN_UNIT_ROW ? r + 1 : R;
                    gsize = (r1 - r0) * S;
                    int seen_before = 0;
                    for (int rr = r0; rr < r1; rr++)
                        for (int tt = 0; tt < S; tt++) {
                            float z = w[(((size_t)k * C + ch) * R + rr) * S + tt];
                            if (z != 0.0f) {
                                gkept = 1;
                                if (rr * S + tt < r * S + t) seen_before = 1;
                            }
                        }
                    gfirst = !seen_before;
                    glast = r * S + t == (r1 - 1) * S + S - 1;
                    if (!gkept && glast) empty_groups++;
                }
                if (!dense && v == 0.0f) continue;
                struct item it = {k, r, t, 0, 0, v, 0, 0};
                if (dense) {
                    it.went = 1;
                } else if (!grouped) {
                    it.went = it.ient = 1 + (u.fillers - before);
                } else if (gfirst) {
                    int64_t f = 0;
                    const int64_t max_run = ((int64_t)1 << c->index_bits) - 1;
                    for (int64_t z = empty_groups; z > max_run; z -= max_run + 1) f++;
                    it.ient = 1 + f;
                    it.went = gsize;
                    empty_groups = 0;
                }
                *vent += it.went;
                *ient += it.ient;
                wl[n++] = it;
            }
    *fillers = u.fillers;
    return n;
}

/* Distinct values among n keys, by comparing each with the ones before it. */
static int64_t count_distinct(const int64_t *key, int64_t n) {
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++) {
        int seen = 0;
        for (int64_t j = 0; j < i && !seen; j++) seen = key[j] == key[i];
        d += !seen;
    }
    return d;
}

/* One layer's walk: the configuration, the operands, the derived sizes and the
 * scratch arrays every stage shares. */
struct ref {
    const struct sg_scnn_config *c;
    const struct sg_conv_geom *g;
    const float *w, *x;
    struct sg_scnn_stats *st;
    int PR, PC, npe, dense, kmajor;
    int64_t ib, vb, ebits;
    int RH, RW, kc; /* region layout, output channels per group */
    int64_t area;
    int *rmin, *cmin;     /* each PE's region origin */
    int64_t *halo_per_k;  /* each PE's halo outputs per output channel */
    double *ysum;         /* outputs, summed in walk order */
    struct item *al, *wl; /* one PE's activations, one block's weights */
    int *vfirst, *vlen;   /* weight vectors */
    int *bank, *addr, *maxnav;
    int64_t *pe_cycles;
    int64_t *wkey, *waddr, *pair; /* window products: key, accumulator address, pair */
};

static void ref_free(struct ref *R) {
    free(R->rmin), free(R->cmin), free(R->halo_per_k), free(R->ysum), free(R->al), free(R->wl);
    free(R->vfirst), free(R->vlen), free(R->bank), free(R->pe_cycles), free(R->addr);
    free(R->maxnav), free(R->wkey), free(R->waddr), free(R->pair);
}

static enum sg_status ref_init(struct ref *R, const struct sg_scnn_config *c,
                               const struct sg_conv_geom *g, const float *w, const float *x,
                               struct sg_scnn_stats *st) {
    const int K = g->k, C = g->c, H = g->h, W = g->w;
    memset(R, 0, sizeof *R);
    R->c = c, R->g = g, R->w = w, R->x = x, R->st = st;
    R->PR = c->pe_rows, R->PC = c->pe_cols, R->npe = R->PR * R->PC;
    R->dense = c->arch == SG_SCNN_ARCH_DCNN;
    R->kmajor = c->accumulate == SG_SCNN_ACC_ROW || c->accumulate == SG_SCNN_ACC_KERNEL;
    R->ib = R->dense ? 0 : c->index_bits, R->vb = c->value_bits, R->ebits = R->vb + R->ib;
    const int64_t nprod_max = (int64_t)H * W * K * g->r * g->s + 1;
    const size_t nw = (size_t)K * g->r * g->s + 1;
    R->rmin = calloc((size_t)R->npe, sizeof(int)), R->cmin = calloc((size_t)R->npe, sizeof(int));
    R->halo_per_k = calloc((size_t)R->npe, sizeof(int64_t));
    R->ysum = calloc((size_t)K * g->p * g->q, sizeof(double));
    R->al = malloc(sizeof(struct item) * ((size_t)H * W + 1));
    R->wl = malloc(sizeof(struct item) * nw);
    R->vfirst = malloc(sizeof(int) * nw);
    R->vlen = malloc(sizeof(int) * nw);
    R->bank = calloc((size_t)c->banks, sizeof(int));
    R->pe_cycles = calloc((size_t)R->npe, sizeof(int64_t));
    R->addr = malloc(sizeof(int) * (size_t)c->f * c->i);
    R->maxnav = calloc((size_t)C, sizeof(int));
    R->wkey = malloc(sizeof(int64_t) * (size_t)nprod_max);
    R->waddr = malloc(sizeof(int64_t) * (size_t)nprod_max);
    R->pair = malloc(sizeof(int64_t) * (size_t)nprod_max);
    if (!R->rmin || !R->cmin || !R->halo_per_k || !R->ysum || !R->al || !R->wl || !R->vfirst ||
        !R->vlen || !R->bank || !R->pe_cycles || !R->addr || !R->maxnav || !R->wkey ||
        !R->waddr || !R->pair)
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    return SG_OK;
}

/* Regions: bounding box of reached or owned outputs; the layout is the largest. */
static void ref_regions(struct ref *R) {
    const struct sg_conv_geom *g = R->g;
    const int PR = R->PR, PC = R->PC, H = g->h, W = g->w, P = g->p, Q = g->q;
    R->RH = 1, R->RW = 1;
    for (int e = 0; e < R->npe; e++) {
        const int pi = e / PC, pj = e % PC;
        int r0 = P, r1 = -1, c0 = Q, c1 = -1;
        for (int p = 0; p < P; p++)
            if (reached(pi, PR, H, p, g->pt, g->r, g->dh, g->sh) || part_of(p, P, PR) == pi) {
                r0 = p < r0 ? p : r0;
                r1 = p > r1 ? p : r1;
            }
        for (int q = 0; q < Q; q++)
            if (reached(pj, PC, W, q, g->pl, g->s, g->dw, g->sw) || part_of(q, Q, PC) == pj) {
                c0 = q < c0 ? q : c0;
                c1 = q > c1 ? q : c1;
            }
        R->rmin[e] = r1 >= 0 ? r0 : 0;
        R->cmin[e] = c1 >= 0 ? c0 : 0;
        if (r1 >= 0 && r1 - r0 + 1 > R->RH) R->RH = r1 - r0 + 1;
        if (c1 >= 0 && c1 - c0 + 1 > R->RW) R->RW = c1 - c0 + 1;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++)
                if (reached(pi, PR, H, p, g->pt, g->r, g->dh, g->sh) &&
                    reached(pj, PC, W, q, g->pl, g->s, g->dw, g->sw) &&
                    !(part_of(p, P, PR) == pi && part_of(q, Q, PC) == pj))
                    R->halo_per_k[e]++;
    }
    R->area = (int64_t)R->RH * R->RW;
}

/* Kc (given or the most that fit the accumulator) and the partial-sum buffer. */
static enum sg_status ref_kc(struct ref *R) {
    const struct sg_scnn_config *c = R->c;
    const int K = R->g->k;
    const int64_t area = R->area, cap = (int64_t)c->banks * c->bank_entries;
    int kc = 0;
    if (c->kc > 0) {
        kc = c->kc < K ? c->kc : K;
        if (kc * area > cap)
            return sgi_error(SG_ERR_ARG, "Kc %d does not fit the accumulator", c->kc);
    } else {
        for (int k = K; k >= 1 && !kc; k--)
            if (k * area <= cap) kc = k;
        if (!kc) return sgi_error(SG_ERR_LIMIT, "one output channel does not fit the accumulator");
    }
    R->kc = R->st->kc = kc;
    if (R->kmajor) {
        const int64_t need = c->accumulate == SG_SCNN_ACC_ROW ? R->RW : area;
        if (c->psum_entries > 0 && c->psum_entries < need)
            return sgi_error(SG_ERR_ARG, "partial-sum buffer too small");
        R->st->psum_entries = c->psum_entries > 0 ? c->psum_entries : need;
    }
    return SG_OK;
}

/* Activation streams; the most activation vectors of a channel over the PEs. */
static void ref_act_streams(struct ref *R) {
    const struct sg_scnn_config *c = R->c;
    struct sg_scnn_stats *st = R->st;
    const int C = R->g->c, H = R->g->h, W = R->g->w, PR = R->PR, PC = R->PC, dense = R->dense;
    for (int e = 0; e < R->npe; e++) {
        int64_t bits = 0;
        for (int ch = 0; ch < C; ch++) {
            struct runs u = {0, 0, 0};
            int n = 0;
            for (int h = 0; h < H; h++)
                for (int ww = 0; ww < W; ww++)
                    if (part_of(h, H, PR) == e / PC && part_of(ww, W, PC) == e % PC) {
                        const int nz = R->x[((size_t)ch * H + h) * W + ww] != 0.0f;
                        st->act_nnz += nz;
                        runs_add(&u, dense || nz, c->index_bits);
                        n += dense || nz;
                    }
            const int nav = (n + c->i - 1) / c->i;
            if (nav > R->maxnav[ch]) R->maxnav[ch] = nav;
            st->act_fillers += u.fillers;
            bits += (u.nnz + u.fillers) * R->ebits;
        }
        if (c->act_in_dram) st->dram_act_in_bits += bits;
        else if (bits > c->iaram_bytes * 8) st->dram_act_in_bits += bits - c->iaram_bytes * 8;
        if (bits > c->iaram_bytes * 8) st->iaram_overflow++;
    }
}

/* Weight streams (they do not depend on the PE) and the FIFO: it holds
 * wfifo_entries vectors; a longer block is fetched again for every further
 * activation vector of the PE with the most. */
static void ref_weight_streams(struct ref *R) {
    const struct sg_scnn_config *c = R->c;
    const struct sg_conv_geom *g = R->g;
    struct sg_scnn_stats *st = R->st;
    const int K = g->k, C = g->c, kc = R->kc, kmajor = R->kmajor;
    const struct item *wl = R->wl;
    for (int i = 0; i < K * C * g->r * g->s; i++) st->weight_nnz += R->w[i] != 0.0f;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        st->groups++;
        for (int ch = 0; ch < C; ch++) {
            int64_t vent, ient, fill;
            const int nw = weight_items(c, g, R->w, ch, k0, k1, R->wl, &vent, &ient, &fill);
            st->weight_fillers += fill;
            st->dram_weight_bits += vent * R->vb + ient * R->ib;
            /* blocks: the whole list, or (kernel-major windows) each kernel's part */
            for (int b0 = 0; b0 < nw;) {
                int b1 = kmajor ? b0 : nw;
                while (kmajor && b1 < nw && wl[b1].k == wl[b0].k) b1++;
                const int64_t nvec = make_vectors(c, wl + b0, b1 - b0, R->vfirst, R->vlen);
                int64_t bits = 0;
                for (int i = b0; i < b1; i++) bits += wl[i].went * R->vb + wl[i].ient * R->ib;
                if (nvec > st->wfifo_vectors) st->wfifo_vectors = nvec;
                if (nvec > c->wfifo_entries) {
                    st->wfifo_overflow++;
                    if (R->maxnav[ch] > 1)
                        st->dram_weight_refetch_bits += (R->maxnav[ch] - 1) * bits;
                }
                b0 = b1;
            }
        }
    }
}

/* One step of PE e: activations [a0, a1) of al times weight vector v of block wb;
 * sums the products into ysum, charges the accumulator (or, kernel-major, records
 * each product's window in wkey/waddr from *nprod on). */
static void ref_step(struct ref *R, int e, int k0, const struct item *wb, int v, int a0, int a1,
                     int64_t *nprod) {
    const struct sg_scnn_config *c = R->c;
    const struct sg_conv_geom *g = R->g;
    struct sg_scnn_stats *st = R->st;
    const int P = g->p, Q = g->q, kmajor = R->kmajor;
    int n = 0; /* valid products of this step */
    for (int ai = a0; ai < a1; ai++)
        for (int wi = R->vfirst[v]; wi < R->vfirst[v] + R->vlen[v]; wi++) {
            const struct item *A = &R->al[ai], *Wt = &wb[wi];
            st->products_formed++;
            int p = -1, q = -1;
            for (int pp = 0; pp < P; pp++)
                if (pp * g->sh == A->h + g->pt - Wt->r * g->dh) p = pp;
            for (int qq = 0; qq < Q; qq++)
                if (qq * g->sw == A->w + g->pl - Wt->s * g->dw) q = qq;
            if (p < 0 || q < 0) continue;
            R->ysum[((size_t)Wt->k * P + p) * Q + q] += (double)A->v * Wt->v;
            const int local = (int)((p - R->rmin[e]) * R->RW + (q - R->cmin[e]));
            R->addr[n++] = kmajor ? local : (int)((Wt->k - k0) * R->area + local);
            if (kmajor) {
                /* window: the kernel, or (row) kernel row x input row */
                R->wkey[*nprod] =
                    c->accumulate == SG_SCNN_ACC_ROW ? (int64_t)Wt->r * g->h + A->h : 0;
                R->waddr[*nprod] = (Wt->k - k0) * R->area + local;
                (*nprod)++;
            }
        }
    st->steps++;
    st->products += n;
    memset(R->bank, 0, sizeof(int) * (size_t)c->banks);
    int64_t accesses = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        if (c->accumulate == SG_SCNN_ACC_MERGED)
            for (int j = 0; j < i; j++) seen |= R->addr[j] == R->addr[i];
        if (seen) continue;
        accesses++;
        R->bank[R->addr[i] % c->banks]++;
    }
    int maxload = 1;
    for (int b = 0; b < c->banks; b++) maxload = R->bank[b] > maxload ? R->bank[b] : maxload;
    if (R->dense) maxload = 1;
    R->pe_cycles[e] += maxload;
    st->conflict_stalls += maxload - 1;
    if (kmajor) {
        st->psum_writes += n;
    } else {
        st->acc_reads += accesses;
        st->acc_writes += accesses;
        st->merge_adds += n - accesses;
    }
}

/* Kernel-major: the window sums of nprod products, distinct (window, output) pairs,
 * added into the accumulator and flushed (the most one bank receives). */
static void ref_window_sums(struct ref *R, int e, int64_t nprod) {
    const struct sg_scnn_config *c = R->c;
    struct sg_scnn_stats *st = R->st;
    int64_t *pair = R->pair;
    for (int64_t i = 0; i < nprod; i++)
        pair[i] = R->wkey[i] * (R->g->k * R->area + 1) + R->waddr[i];
    const int64_t d = count_distinct(pair, nprod);
    st->psum_reads += nprod - d;
    st->merge_adds += nprod - d;
    st->acc_reads += d;
    st->acc_writes += d;
    memset(R->bank, 0, sizeof(int) * (size_t)c->banks);
    int most = 0;
    for (int64_t i = 0; i < nprod; i++) {
        int first = 1;
        for (int64_t j = 0; j < i && first; j++) first = pair[j] != pair[i];
        if (!first) continue;
        int l = ++R->bank[R->waddr[i] % c->banks];
        most = l > most ? l : most;
    }
    st->flush_cycles += most;
    R->pe_cycles[e] += most;
}

/* PE e, input channel ch, output channels [k0, k1): activation vector > weight
 * vector, one pass over the block or (kernel-major windows) one per kernel. */
static void ref_pe_channel(struct ref *R, int e, int ch, int k0, int k1) {
    const struct sg_scnn_config *c = R->c;
    struct sg_scnn_stats *st = R->st;
    const int H = R->g->h, W = R->g->w, dense = R->dense, kmajor = R->kmajor;
    int na = 0;
    struct runs ua = {0, 0, 0};
    for (int h = 0; h < H; h++)
        for (int ww = 0; ww < W; ww++) {
            if (part_of(h, H, R->PR) != e / R->PC || part_of(ww, W, R->PC) != e % R->PC) continue;
            float v = R->x[((size_t)ch * H + h) * W + ww];
            runs_add(&ua, dense || v != 0.0f, c->index_bits);
            if (dense || v != 0.0f) R->al[na++] = (struct item){0, 0, 0, h, ww, v, 0, 0};
        }
    int64_t vent, ient, fill;
    const struct item *wl = R->wl;
    const int nw = weight_items(c, R->g, R->w, ch, k0, k1, R->wl, &vent, &ient, &fill);
    if (na == 0 || nw == 0) return;
    const int nav = (na + c->i - 1) / c->i;
    for (int b0 = 0; b0 < nw;) {
        int b1 = kmajor ? b0 : nw;
        while (kmajor && b1 < nw && wl[b1].k == wl[b0].k) b1++;
        const struct item *wb = wl + b0;
        const int nv = make_vectors(c, wb, b1 - b0, R->vfirst, R->vlen);
        int64_t bv = 0, bi = 0;
        for (int i = b0; i < b1; i++) bv += wl[i].went, bi += wl[i].ient;
        st->act_reads += ua.nnz + ua.fillers;
        st->act_index_reads += dense ? 0 : ua.nnz + ua.fillers;
        st->weight_reads += (int64_t)nav * bv;
        st->weight_index_reads += (int64_t)nav * bi;
        int64_t nprod = 0; /* kernel-major: products of this kernel so far */
        for (int a0 = 0; a0 < na; a0 += c->i) {
            const int a1 = a0 + c->i < na ? a0 + c->i : na;
            for (int v = 0; v < nv; v++) ref_step(R, e, k0, wb, v, a0, a1, &nprod);
        }
        if (kmajor) ref_window_sums(R, e, nprod);
        b0 = b1;
    }
}

/* The loop nest: group > PE > input channel > (kernel-major windows: kernel >)
 * activation vector > weight vector; a group takes as long as its slowest PE. */
static void ref_compute(struct ref *R) {
    struct sg_scnn_stats *st = R->st;
    const int K = R->g->k, C = R->g->c, kc = R->kc;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        int64_t slowest = 0, halo_max = 0;
        for (int e = 0; e < R->npe; e++) {
            R->pe_cycles[e] = 0;
            for (int ch = 0; ch < C; ch++) ref_pe_channel(R, e, ch, k0, k1);
            if (R->pe_cycles[e] > slowest) slowest = R->pe_cycles[e];
            const int64_t halo = R->halo_per_k[e] * (k1 - k0);
            st->halo += halo;
            if (halo > halo_max) halo_max = halo;
        }
        for (int e = 0; e < R->npe; e++) st->idle_pe_cycles += slowest - R->pe_cycles[e];
        st->compute_cycles += slowest;
        st->halo_cycles += halo_max;
    }
    st->cycles = st->compute_cycles + st->halo_cycles;
    st->mult_slots = st->steps * R->c->f * R->c->i;
}

/* Post-processing: drain, ReLU, compress the owned outputs (out holds them). */
static void ref_outputs(struct ref *R, const float *out) {
    const struct sg_scnn_config *c = R->c;
    struct sg_scnn_stats *st = R->st;
    const int K = R->g->k, P = R->g->p, Q = R->g->q, PR = R->PR, PC = R->PC;
    for (int e = 0; e < R->npe; e++) {
        int64_t bits = 0;
        for (int k = 0; k < K; k++) {
            struct runs u = {0, 0, 0};
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    if (part_of(p, P, PR) != e / PC || part_of(q, Q, PC) != e % PC) continue;
                    float v = out[((size_t)k * P + p) * Q + q];
                    st->acc_drain++;
                    const int nz = c->relu ? v > 0.0f : v != 0.0f;
                    st->out_nnz += nz;
                    runs_add(&u, R->dense || nz, c->index_bits);
                }
            st->out_fillers += u.fillers;
            st->out_writes += u.nnz + u.fillers;
            bits += (u.nnz + u.fillers) * R->ebits;
        }
        if (c->act_out_dram) st->dram_act_out_bits += bits;
        else if (bits > c->oaram_bytes * 8) st->dram_act_out_bits += bits - c->oaram_bytes * 8;
        if (bits > c->oaram_bytes * 8) st->oaram_overflow++;
    }
}

enum sg_status sg_scnn_layer_ref(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                 const float *w, const float *x, float *y,
                                 struct sg_scnn_stats *st) {
    memset(st, 0, sizeof *st);
    enum sg_status s = sgi_scnn_check_layer(c, g);
    if (s != SG_OK) return s;
    struct ref R;
    s = ref_init(&R, c, g, w, x, st);
    if (s != SG_OK) goto done;
    ref_regions(&R);
    s = ref_kc(&R);
    if (s != SG_OK) goto done;
    ref_act_streams(&R);
    ref_weight_streams(&R);
    ref_compute(&R);
    const size_t nout = (size_t)g->k * g->p * g->q;
    float *out = y ? y : malloc(sizeof(float) * (nout + 1));
    if (!out) {
        s = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nout; i++) out[i] = (float)R.ysum[i];
    ref_outputs(&R, out);
    if (!y) free(out);
    st->acc_reads += st->acc_drain;
    st->weights = (int64_t)g->k * g->c * g->r * g->s;
    st->acts = (int64_t)g->c * g->h * g->w;
    st->outs = (int64_t)nout;
    sg_scnn_energy_of(c, st);
done:
    ref_free(&R);
    return s;
}
