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

enum sg_status sg_scnn_layer_ref(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                 const float *w, const float *x, float *y,
                                 struct sg_scnn_stats *st) {
    memset(st, 0, sizeof *st);
    enum sg_status s = sgi_scnn_check_layer(c, g);
    if (s != SG_OK) return s;
    const int PR = c->pe_rows, PC = c->pe_cols, npe = PR * PC;
    const int K = g->k, C = g->c, H = g->h, W = g->w, R = g->r, S = g->s, P = g->p, Q = g->q;
    const int dense = c->arch == SG_SCNN_ARCH_DCNN;
    const int kmajor = c->accumulate == SG_SCNN_ACC_ROW || c->accumulate == SG_SCNN_ACC_KERNEL;
    const int64_t ib = dense ? 0 : c->index_bits, vb = c->value_bits, ebits = vb + ib;
    const int64_t nprod_max = (int64_t)H * W * K * R * S + 1;
    int *rmin = calloc((size_t)npe, sizeof(int)), *cmin = calloc((size_t)npe, sizeof(int));
    int64_t *halo_per_k = calloc((size_t)npe, sizeof(int64_t));
    double *ysum = calloc((size_t)K * P * Q, sizeof(double));
    struct item *al = malloc(sizeof(struct item) * ((size_t)H * W + 1));
    struct item *wl = malloc(sizeof(struct item) * ((size_t)K * R * S + 1));
    int *vfirst = malloc(sizeof(int) * ((size_t)K * R * S + 1));
    int *vlen = malloc(sizeof(int) * ((size_t)K * R * S + 1));
    int *bank = calloc((size_t)c->banks, sizeof(int));
    int64_t *pe_cycles = calloc((size_t)npe, sizeof(int64_t));
    int *addr = malloc(sizeof(int) * (size_t)c->f * c->i);
    int *maxnav = calloc((size_t)C, sizeof(int));
    int64_t *wkey = malloc(sizeof(int64_t) * (size_t)nprod_max); /* window products: key */
    int64_t *waddr = malloc(sizeof(int64_t) * (size_t)nprod_max); /* and accumulator address */
    int64_t *pair = malloc(sizeof(int64_t) * (size_t)nprod_max);
    if (!rmin || !cmin || !halo_per_k || !ysum || !al || !wl || !vfirst || !vlen || !bank ||
        !pe_cycles || !addr || !maxnav || !wkey || !waddr || !pair) {
        s = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }

    /* regions: bounding box of reached or owned outputs; the layout is the largest */
    int RH = 1, RW = 1;
    for (int e = 0; e < npe; e++) {
        const int pi = e / PC, pj = e % PC;
        int r0 = P, r1 = -1, c0 = Q, c1 = -1;
        for (int p = 0; p < P; p++)
            if (reached(pi, PR, H, p, g->pt, R, g->dh, g->sh) || part_of(p, P, PR) == pi) {
                r0 = p < r0 ? p : r0;
                r1 = p > r1 ? p : r1;
            }
        for (int q = 0; q < Q; q++)
            if (reached(pj, PC, W, q, g->pl, S, g->dw, g->sw) || part_of(q, Q, PC) == pj) {
                c0 = q < c0 ? q : c0;
                c1 = q > c1 ? q : c1;
            }
        rmin[e] = r1 >= 0 ? r0 : 0;
        cmin[e] = c1 >= 0 ? c0 : 0;
        if (r1 >= 0 && r1 - r0 + 1 > RH) RH = r1 - r0 + 1;
        if (c1 >= 0 && c1 - c0 + 1 > RW) RW = c1 - c0 + 1;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++)
                if (reached(pi, PR, H, p, g->pt, R, g->dh, g->sh) &&
                    reached(pj, PC, W, q, g->pl, S, g->dw, g->sw) &&
                    !(part_of(p, P, PR) == pi && part_of(q, Q, PC) == pj))
                    halo_per_k[e]++;
    }
    const int64_t area = (int64_t)RH * RW, cap = (int64_t)c->banks * c->bank_entries;
    int kc = 0;
    if (c->kc > 0) {
        kc = c->kc < K ? c->kc : K;
        if (kc * area > cap) {
            s = sgi_error(SG_ERR_ARG, "Kc %d does not fit the accumulator", c->kc);
            goto done;
        }
    } else {
        for (int k = K; k >= 1 && !kc; k--)
            if (k * area <= cap) kc = k;
        if (!kc) {
            s = sgi_error(SG_ERR_LIMIT, "one output channel does not fit the accumulator");
            goto done;
        }
    }
    st->kc = kc;
    if (kmajor) {
        const int64_t need = c->accumulate == SG_SCNN_ACC_ROW ? RW : area;
        if (c->psum_entries > 0 && c->psum_entries < need) {
            s = sgi_error(SG_ERR_ARG, "partial-sum buffer too small");
            goto done;
        }
        st->psum_entries = c->psum_entries > 0 ? c->psum_entries : need;
    }

    /* activation streams; the most activation vectors of a channel over the PEs */
    for (int e = 0; e < npe; e++) {
        int64_t bits = 0;
        for (int ch = 0; ch < C; ch++) {
            struct runs u = {0, 0, 0};
            int n = 0;
            for (int h = 0; h < H; h++)
                for (int ww = 0; ww < W; ww++)
                    if (part_of(h, H, PR) == e / PC && part_of(ww, W, PC) == e % PC) {
                        const int nz = x[((size_t)ch * H + h) * W + ww] != 0.0f;
                        st->act_nnz += nz;
                        runs_add(&u, dense || nz, c->index_bits);
                        n += dense || nz;
                    }
            const int nav = (n + c->i - 1) / c->i;
            if (nav > maxnav[ch]) maxnav[ch] = nav;
            st->act_fillers += u.fillers;
            bits += (u.nnz + u.fillers) * ebits;
        }
        if (c->act_in_dram) st->dram_act_in_bits += bits;
        else if (bits > c->iaram_bytes * 8) st->dram_act_in_bits += bits - c->iaram_bytes * 8;
        if (bits > c->iaram_bytes * 8) st->iaram_overflow++;
    }

    /* weight streams (they do not depend on the PE) and the FIFO: it holds
     * wfifo_entries vectors; a longer block is fetched again for every further
     * activation vector of the PE with the most */
    for (int i = 0; i < K * C * R * S; i++) st->weight_nnz += w[i] != 0.0f;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        st->groups++;
        for (int ch = 0; ch < C; ch++) {
            int64_t vent, ient, fill;
            const int nw = weight_items(c, g, w, ch, k0, k1, wl, &vent, &ient, &fill);
            st->weight_fillers += fill;
            st->dram_weight_bits += vent * vb + ient * ib;
            /* blocks: the whole list, or (kernel-major windows) each kernel's part */
            for (int b0 = 0; b0 < nw;) {
                int b1 = kmajor ? b0 : nw;
                while (kmajor && b1 < nw && wl[b1].k == wl[b0].k) b1++;
                const int64_t nvec = make_vectors(c, wl + b0, b1 - b0, vfirst, vlen);
                int64_t bits = 0;
                for (int i = b0; i < b1; i++) bits += wl[i].went * vb + wl[i].ient * ib;
                if (nvec > st->wfifo_vectors) st->wfifo_vectors = nvec;
                if (nvec > c->wfifo_entries) {
                    st->wfifo_overflow++;
                    if (maxnav[ch] > 1) st->dram_weight_refetch_bits += (maxnav[ch] - 1) * bits;
                }
                b0 = b1;
            }
        }
    }

    /* the loop nest: group > PE > input channel > (kernel-major windows: kernel >)
     * activation vector > weight vector */
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        int64_t slowest = 0, halo_max = 0;
        for (int e = 0; e < npe; e++) {
            pe_cycles[e] = 0;
            for (int ch = 0; ch < C; ch++) {
                int na = 0;
                struct runs ua = {0, 0, 0};
                for (int h = 0; h < H; h++)
                    for (int ww = 0; ww < W; ww++) {
                        if (part_of(h, H, PR) != e / PC || part_of(ww, W, PC) != e % PC) continue;
                        float v = x[((size_t)ch * H + h) * W + ww];
                        runs_add(&ua, dense || v != 0.0f, c->index_bits);
                        if (dense || v != 0.0f) al[na++] = (struct item){0, 0, 0, h, ww, v, 0, 0};
                    }
                int64_t vent, ient, fill;
                const int nw = weight_items(c, g, w, ch, k0, k1, wl, &vent, &ient, &fill);
                if (na == 0 || nw == 0) continue;
                const int nav = (na + c->i - 1) / c->i;
                for (int b0 = 0; b0 < nw;) { /* one pass, or one per kernel */
                    int b1 = kmajor ? b0 : nw;
                    while (kmajor && b1 < nw && wl[b1].k == wl[b0].k) b1++;
                    const struct item *wb = wl + b0;
                    const int nv = make_vectors(c, wb, b1 - b0, vfirst, vlen);
                    int64_t bv = 0, bi = 0;
                    for (int i = b0; i < b1; i++) bv += wl[i].went, bi += wl[i].ient;
                    st->act_reads += ua.nnz + ua.fillers;
                    st->act_index_reads += dense ? 0 : ua.nnz + ua.fillers;
                    st->weight_reads += (int64_t)nav * bv;
                    st->weight_index_reads += (int64_t)nav * bi;
                    int64_t nprod = 0; /* kernel-major: products of this kernel so far */
                    for (int a0 = 0; a0 < na; a0 += c->i) {
                        const int a1 = a0 + c->i < na ? a0 + c->i : na;
                        for (int v = 0; v < nv; v++) {
                            int n = 0; /* valid products of this step */
                            for (int ai = a0; ai < a1; ai++)
                                for (int wi = vfirst[v]; wi < vfirst[v] + vlen[v]; wi++) {
                                    const struct item *A = &al[ai], *Wt = &wb[wi];
                                    st->products_formed++;
                                    int p = -1, q = -1;
                                    for (int pp = 0; pp < P; pp++)
                                        if (pp * g->sh == A->h + g->pt - Wt->r * g->dh) p = pp;
                                    for (int qq = 0; qq < Q; qq++)
                                        if (qq * g->sw == A->w + g->pl - Wt->s * g->dw) q = qq;
                                    if (p < 0 || q < 0) continue;
                                    ysum[((size_t)Wt->k * P + p) * Q + q] += (double)A->v * Wt->v;
                                    const int local = (int)((p - rmin[e]) * RW + (q - cmin[e]));
                                    addr[n++] = kmajor ? local
                                                       : (int)((Wt->k - k0) * area + local);
                                    if (kmajor) {
                                        /* window: the kernel, or (row) kernel row x input row */
                                        wkey[nprod] = c->accumulate == SG_SCNN_ACC_ROW
                                                          ? (int64_t)Wt->r * H + A->h
                                                          : 0;
                                        waddr[nprod] = (Wt->k - k0) * area + local;
                                        nprod++;
                                    }
                                }
                            st->steps++;
                            st->products += n;
                            memset(bank, 0, sizeof(int) * (size_t)c->banks);
                            int64_t accesses = 0;
                            for (int i = 0; i < n; i++) {
                                int seen = 0;
                                if (c->accumulate == SG_SCNN_ACC_MERGED)
                                    for (int j = 0; j < i; j++) seen |= addr[j] == addr[i];
                                if (seen) continue;
                                accesses++;
                                bank[addr[i] % c->banks]++;
                            }
                            int maxload = 1;
                            for (int b = 0; b < c->banks; b++) maxload = bank[b] > maxload ? bank[b] : maxload;
                            if (dense) maxload = 1;
                            pe_cycles[e] += maxload;
                            st->conflict_stalls += maxload - 1;
                            if (kmajor) {
                                st->psum_writes += n;
                            } else {
                                st->acc_reads += accesses;
                                st->acc_writes += accesses;
                                st->merge_adds += n - accesses;
                            }
                        }
                    }
                    if (kmajor) { /* window sums: distinct (window, output) pairs */
                        for (int64_t i = 0; i < nprod; i++) pair[i] = wkey[i] * (K * area + 1) + waddr[i];
                        const int64_t d = count_distinct(pair, nprod);
                        st->psum_reads += nprod - d;
                        st->merge_adds += nprod - d;
                        st->acc_reads += d;
                        st->acc_writes += d;
                        /* flush: the most window sums one bank receives */
                        memset(bank, 0, sizeof(int) * (size_t)c->banks);
                        int most = 0;
                        for (int64_t i = 0; i < nprod; i++) {
                            int first = 1;
                            for (int64_t j = 0; j < i && first; j++) first = pair[j] != pair[i];
                            if (!first) continue;
                            int l = ++bank[waddr[i] % c->banks];
                            most = l > most ? l : most;
                        }
                        st->flush_cycles += most;
                        pe_cycles[e] += most;
                    }
                    b0 = b1;
                }
            }
            if (pe_cycles[e] > slowest) slowest = pe_cycles[e];
            const int64_t halo = halo_per_k[e] * (k1 - k0);
            st->halo += halo;
            if (halo > halo_max) halo_max = halo;
        }
        for (int e = 0; e < npe; e++) st->idle_pe_cycles += slowest - pe_cycles[e];
        st->compute_cycles += slowest;
        st->halo_cycles += halo_max;
    }
    st->cycles = st->compute_cycles + st->halo_cycles;
    st->mult_slots = st->steps * c->f * c->i;

    /* post-processing: drain, ReLU, compress the owned outputs */
    float *out = y ? y : malloc(sizeof(float) * ((size_t)K * P * Q + 1));
    if (!out) {
        s = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)K * P * Q; i++) out[i] = (float)ysum[i];
    for (int e = 0; e < npe; e++) {
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
                    runs_add(&u, dense || nz, c->index_bits);
                }
            st->out_fillers += u.fillers;
            st->out_writes += u.nnz + u.fillers;
            bits += (u.nnz + u.fillers) * ebits;
        }
        if (c->act_out_dram) st->dram_act_out_bits += bits;
        else if (bits > c->oaram_bytes * 8) st->dram_act_out_bits += bits - c->oaram_bytes * 8;
        if (bits > c->oaram_bytes * 8) st->oaram_overflow++;
    }
    if (!y) free(out);
    st->acc_reads += st->acc_drain;
    st->weights = (int64_t)K * C * R * S;
    st->acts = (int64_t)C * H * W;
    st->outs = (int64_t)K * P * Q;
    sg_scnn_energy_of(c, st);
done:
    free(rmin), free(cmin), free(halo_per_k), free(ysum), free(al), free(wl), free(vfirst);
    free(vlen), free(bank), free(pe_cycles), free(addr), free(maxnav), free(wkey), free(waddr);
    free(pair);
    return s;
}
