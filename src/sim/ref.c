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

enum sg_status sg_scnn_layer_ref(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                 const float *w, const float *x, float *y,
                                 struct sg_scnn_stats *st) {
    memset(st, 0, sizeof *st);
    enum sg_status s = sgi_scnn_check_layer(c, g);
    if (s != SG_OK) return s;
    const int PR = c->pe_rows, PC = c->pe_cols, npe = PR * PC;
    const int K = g->k, C = g->c, H = g->h, W = g->w, R = g->r, S = g->s, P = g->p, Q = g->q;
    const int64_t ebits = c->value_bits + c->index_bits;
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
    if (!rmin || !cmin || !halo_per_k || !ysum || !al || !wl || !vfirst || !vlen || !bank ||
        !pe_cycles || !addr) {
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

    /* weight streams (they do not depend on the PE) */
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        st->groups++;
        for (int ch = 0; ch < C; ch++) {
            struct runs u = {0, 0, 0};
            for (int k = k0; k < k1; k++)
                for (int r = 0; r < R; r++)
                    for (int t = 0; t < S; t++)
                        runs_add(&u, w[(((size_t)k * C + ch) * R + r) * S + t] != 0.0f,
                                 c->index_bits);
            st->weight_nnz += u.nnz;
            st->weight_fillers += u.fillers;
            st->dram_weight_bits += (u.nnz + u.fillers) * ebits;
            if (u.nnz + u.fillers > c->wfifo_entries) st->wfifo_overflow++;
        }
    }
    /* activation streams */
    for (int e = 0; e < npe; e++) {
        int64_t bits = 0;
        for (int ch = 0; ch < C; ch++) {
            struct runs u = {0, 0, 0};
            for (int h = 0; h < H; h++)
                for (int ww = 0; ww < W; ww++)
                    if (part_of(h, H, PR) == e / PC && part_of(ww, W, PC) == e % PC)
                        runs_add(&u, x[((size_t)ch * H + h) * W + ww] != 0.0f, c->index_bits);
            st->act_nnz += u.nnz;
            st->act_fillers += u.fillers;
            bits += (u.nnz + u.fillers) * ebits;
        }
        st->dram_act_in_bits += bits;
        if (bits > c->iaram_bytes * 8) st->iaram_overflow++;
    }

    /* the loop nest: group > PE > input channel > activation vector > weight vector */
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int k1 = k0 + kc < K ? k0 + kc : K;
        int64_t slowest = 0, halo_max = 0;
        for (int e = 0; e < npe; e++) {
            pe_cycles[e] = 0;
            for (int ch = 0; ch < C; ch++) {
                int na = 0, nw = 0;
                struct runs ua = {0, 0, 0}, uw = {0, 0, 0};
                for (int h = 0; h < H; h++)
                    for (int ww = 0; ww < W; ww++) {
                        if (part_of(h, H, PR) != e / PC || part_of(ww, W, PC) != e % PC) continue;
                        float v = x[((size_t)ch * H + h) * W + ww];
                        runs_add(&ua, v != 0.0f, c->index_bits);
                        if (v != 0.0f) al[na++] = (struct item){0, 0, 0, h, ww, v};
                    }
                for (int k = k0; k < k1; k++)
                    for (int r = 0; r < R; r++)
                        for (int t = 0; t < S; t++) {
                            float v = w[(((size_t)k * C + ch) * R + r) * S + t];
                            runs_add(&uw, v != 0.0f, c->index_bits);
                            if (v != 0.0f) wl[nw++] = (struct item){k, r, t, 0, 0, v};
                        }
                if (na == 0 || nw == 0) continue;
                const int nv = make_vectors(c, wl, nw, vfirst, vlen);
                const int nav = (na + c->i - 1) / c->i;
                st->act_reads += ua.nnz + ua.fillers;
                st->weight_reads += (int64_t)nav * (uw.nnz + uw.fillers);
                for (int a0 = 0; a0 < na; a0 += c->i) {
                    const int a1 = a0 + c->i < na ? a0 + c->i : na;
                    for (int v = 0; v < nv; v++) {
                        int n = 0; /* valid products of this step */
                        for (int ai = a0; ai < a1; ai++)
                            for (int wi = vfirst[v]; wi < vfirst[v] + vlen[v]; wi++) {
                                const struct item *A = &al[ai], *Wt = &wl[wi];
                                st->products_formed++;
                                int p = -1, q = -1;
                                for (int pp = 0; pp < P; pp++)
                                    if (pp * g->sh == A->h + g->pt - Wt->r * g->dh) p = pp;
                                for (int qq = 0; qq < Q; qq++)
                                    if (qq * g->sw == A->w + g->pl - Wt->s * g->dw) q = qq;
                                if (p < 0 || q < 0) continue;
                                ysum[((size_t)Wt->k * P + p) * Q + q] += (double)A->v * Wt->v;
                                addr[n++] = (int)((Wt->k - k0) * area + (p - rmin[e]) * RW +
                                                  (q - cmin[e]));
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
                        pe_cycles[e] += maxload;
                        st->conflict_stalls += maxload - 1;
                        st->acc_reads += accesses;
                        st->acc_writes += accesses;
                        st->merge_adds += n - accesses;
                    }
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
    st->weight_index_reads = st->weight_reads;
    st->act_index_reads = st->act_reads;

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
                    runs_add(&u, c->relu ? v > 0.0f : v != 0.0f, c->index_bits);
                }
            st->out_nnz += u.nnz;
            st->out_fillers += u.fillers;
            st->out_writes += u.nnz + u.fillers;
            bits += (u.nnz + u.fillers) * ebits;
        }
        st->dram_act_out_bits += bits;
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
    free(vlen), free(bank), free(pe_cycles), free(addr);
    return s;
}
