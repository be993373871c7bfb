/* Formats without runs: dense, bitmap and N:M. */
#include "storage_int.h"

/* ---- dense: every weight in K x C x R x S order, pruned ones as the reserved code ---- */
static enum sg_status dense_size(const struct sgi_layer *L, struct sg_size *sz) {
    sz->values = L->n;
    sz->value_bits = L->n * L->vc.bits;
    return SG_OK;
}

static enum sg_status dense_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                   struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    for (int64_t i = 0; i < L->n; i++)
        sgi_bw_put(w, sgi_vc_slot(&L->vc, m[i], x[i]), L->vc.bits);
    *wp = wl;
    return SG_OK;
}

static enum sg_status dense_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                   uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    if ((uint64_t)L->n * (uint64_t)L->vc.bits > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated: %lld values need %llu bits, %llu left",
                         (long long)L->n, (unsigned long long)L->n * L->vc.bits,
                         (unsigned long long)sgi_br_left(r));
    for (int64_t i = 0; i < L->n; i++) sgi_store(&L->vc, w, mask, i, sgi_br_get(r, L->vc.bits));
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_dense = {
    "dense", "every weight; pruned ones as the reserved code", 0,
    dense_size, dense_encode, dense_decode,
};

/* ---- bitmap: n mask bits (weight i is bit i), then the kept values in order ---- */
static enum sg_status bitmap_size(const struct sgi_layer *L, struct sg_size *sz) {
    const uint8_t *m = L->v->mask;
    int64_t kept = 0;
    SGI_FOR_KEPT(m, L->n, i, (void)i, kept++);
    sz->values = kept;
    sz->value_bits = kept * L->vc.bits;
    sz->index_bits = L->n;
    return SG_OK;
}

static enum sg_status bitmap_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                    struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    for (int64_t i = 0; i < L->n; i += 32) {
        const int nb = L->n - i < 32 ? (int)(L->n - i) : 32;
        uint32_t bits = 0;
        for (int j = 0; j < nb; j++) bits |= (uint32_t)(m[i + j] != 0) << j;
        sgi_bw_put(w, bits, nb);
    }
    SGI_FOR_KEPT(m, L->n, i, sgi_bw_put(w, sgi_vc_code(&L->vc, x[i]), L->vc.bits));
    *wp = wl;
    return SG_OK;
}

static enum sg_status bitmap_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                    uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    if ((uint64_t)L->n > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated in the bitmap (%lld bits)", (long long)L->n);
    int64_t kept = 0;
    for (int64_t i = 0; i < L->n; i += 32) {
        const int nb = L->n - i < 32 ? (int)(L->n - i) : 32;
        const uint32_t bits = sgi_br_get(r, nb);
        kept += __builtin_popcount(bits);
        if (mask)
            for (int j = 0; j < nb; j++) mask[i + j] = (bits >> j) & 1;
    }
    if ((uint64_t)kept * (uint64_t)L->vc.bits > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated: %lld kept values, %llu bits left",
                         (long long)kept, (unsigned long long)sgi_br_left(r));
    int64_t i = mask ? sgi_next_kept(mask, 0, L->n) : 0;
    for (int64_t e = 0; e < kept; e++) {
        const uint32_t code = sgi_br_get(r, L->vc.bits);
        if (code == L->vc.reserved)
            return sgi_error(SG_ERR_FORMAT, "kept value %lld holds the pruned code", (long long)e);
        if (w) {
            w[i] = sgi_vc_value(&L->vc, code);
            i = sgi_next_kept(mask, i + 1, L->n);
        }
    }
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_bitmap = {
    "bitmap", "one bit per weight + the kept values", 0,
    bitmap_size, bitmap_encode, bitmap_decode,
};

/* ---- nm: groups of M consecutive weights along C, for k, then group g along C,
 * then r, s. The last group of a row is C mod M long when M does not divide C;
 * a group of Mg weights keeps at most Ng = min(N, Mg). Each group stores the
 * rank of its Ng-subset of positions (combinatorial number system, sum of
 * C(p_i, i + 1) over the sorted positions) in bits_for(C(Mg, Ng) - 1) bits,
 * then Ng value slots; a group keeping fewer than Ng pads the subset with its
 * first pruned positions, stored as the reserved code. ---- */
struct nm_tab {
    uint64_t c[33][33]; /* binomial coefficients */
};

static void nm_tab_init(struct nm_tab *t) {
    memset(t, 0, sizeof *t);
    for (int n = 0; n <= 32; n++) {
        t->c[n][0] = 1;
        for (int k = 1; k <= n; k++) t->c[n][k] = t->c[n - 1][k - 1] + (k < n ? t->c[n - 1][k] : 0);
    }
}

struct nm_shape {
    int64_t groups_per_row; /* along C, including a partial one */
    int m_last, n_last;     /* size and kept quota of the last group */
    int mb_full, mb_last;   /* rank widths */
};

static void nm_shape(const struct sgi_layer *L, const struct nm_tab *t, struct nm_shape *sh) {
    const int64_t M = L->nm_m, N = L->nm_n;
    sh->groups_per_row = (L->c + M - 1) / M;
    sh->m_last = (int)(L->c - (sh->groups_per_row - 1) * M);
    sh->n_last = sh->m_last < N ? sh->m_last : (int)N;
    sh->mb_full = sgi_bits_for(t->c[M][N] - 1);
    sh->mb_last = sgi_bits_for(t->c[sh->m_last][sh->n_last] - 1);
}

/* Checks that no group keeps more than its quota (the first offender is named). */
static enum sg_status nm_check(const struct sgi_layer *L) {
    const uint8_t *m = L->v->mask;
    const int64_t C = L->c, RS = L->r * L->s, M = L->nm_m;
    for (int64_t k = 0; k < L->k; k++)
        for (int64_t c0 = 0; c0 < C; c0 += M) {
            const int64_t mg = C - c0 < M ? C - c0 : M, ng = mg < L->nm_n ? mg : L->nm_n;
            for (int64_t rs = 0; rs < RS; rs++) {
                const uint8_t *p = m + (k * C + c0) * RS + rs;
                int64_t kept = 0;
                for (int64_t j = 0; j < mg; j++) kept += p[j * RS] != 0;
                if (kept > ng)
                    return sgi_error(SG_ERR_ARG,
                                     "%s: not %d:%d sparse: filter %lld, channels %lld..%lld at "
                                     "(%lld, %lld) keep %lld weights",
                                     L->name, L->nm_n, L->nm_m, (long long)k, (long long)c0,
                                     (long long)(c0 + mg - 1), (long long)(rs / L->s),
                                     (long long)(rs % L->s), (long long)kept);
            }
        }
    return SG_OK;
}

static enum sg_status nm_size(const struct sgi_layer *L, struct sg_size *sz) {
    enum sg_status st = nm_check(L);
    if (st != SG_OK) return st;
    struct nm_tab t;
    struct nm_shape sh;
    nm_tab_init(&t);
    nm_shape(L, &t, &sh);
    const int64_t rows = L->k * L->r * L->s, full = sh.groups_per_row - 1;
    sz->entries = rows * sh.groups_per_row;
    sz->values = rows * (full * L->nm_n + sh.n_last);
    sz->value_bits = sz->values * L->vc.bits;
    sz->index_bits = rows * (full * sh.mb_full + sh.mb_last);
    return SG_OK;
}

static enum sg_status nm_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    struct nm_tab t;
    struct nm_shape sh;
    nm_tab_init(&t);
    nm_shape(L, &t, &sh);
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    const int64_t C = L->c, RS = L->r * L->s, M = L->nm_m;
    for (int64_t k = 0; k < L->k; k++)
        for (int64_t g = 0; g < sh.groups_per_row; g++) {
            const int last = g == sh.groups_per_row - 1;
            const int mg = last ? sh.m_last : (int)M, ng = last ? sh.n_last : L->nm_n;
            const int mb = last ? sh.mb_last : sh.mb_full;
            for (int64_t rs = 0; rs < RS; rs++) {
                const int64_t base = (k * C + g * M) * RS + rs;
                int pos[32], np = 0, kept = 0;
                for (int j = 0; j < mg; j++) kept += m[base + j * RS] != 0;
                int pad = ng - kept; /* nm_check ran in the size pass: pad >= 0 */
                for (int j = 0; j < mg; j++) {
                    if (m[base + j * RS]) {
                        pos[np++] = j;
                    } else if (pad > 0) { /* the first pruned positions fill the quota */
                        pos[np++] = j;
                        pad--;
                    }
                }
                uint64_t rank = 0;
                for (int i = 0; i < np; i++) rank += t.c[pos[i]][i + 1];
                sgi_bw_put(w, (uint32_t)rank, mb);
                for (int i = 0; i < np; i++) {
                    const int64_t at = base + (int64_t)pos[i] * RS;
                    sgi_bw_put(w, sgi_vc_slot(&L->vc, m[at], x[at]), L->vc.bits);
                }
            }
        }
    (void)sz;
    *wp = wl;
    return SG_OK;
}

static enum sg_status nm_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    struct nm_tab t;
    struct nm_shape sh;
    nm_tab_init(&t);
    nm_shape(L, &t, &sh);
    const int64_t C = L->c, RS = L->r * L->s, M = L->nm_m;
    const int64_t rows = L->k * RS, full = sh.groups_per_row - 1;
    const uint64_t need = (uint64_t)rows * (uint64_t)(full * (sh.mb_full + L->nm_n * L->vc.bits) +
                                                      sh.mb_last + sh.n_last * L->vc.bits);
    if (need > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated: %llu bits needed, %llu left",
                         (unsigned long long)need, (unsigned long long)sgi_br_left(r));
    for (int64_t k = 0; k < L->k; k++)
        for (int64_t g = 0; g < sh.groups_per_row; g++) {
            const int last = g == sh.groups_per_row - 1;
            const int mg = last ? sh.m_last : (int)M, ng = last ? sh.n_last : L->nm_n;
            const int mb = last ? sh.mb_last : sh.mb_full;
            for (int64_t rs = 0; rs < RS; rs++) {
                uint64_t rank = sgi_br_get(r, mb);
                if (rank >= t.c[mg][ng])
                    return sgi_error(SG_ERR_FORMAT, "filter %lld, group %lld: subset rank %llu of "
                                     "%llu", (long long)k, (long long)g, (unsigned long long)rank,
                                     (unsigned long long)t.c[mg][ng]);
                int pos[32], p = mg;
                for (int i = ng; i >= 1; i--) { /* largest p with C(p, i) <= rank */
                    p--;
                    while (t.c[p][i] > rank) p--;
                    rank -= t.c[p][i];
                    pos[i - 1] = p;
                }
                const int64_t base = (k * C + g * M) * RS + rs;
                for (int i = 0; i < ng; i++)
                    sgi_store(&L->vc, w, mask, base + (int64_t)pos[i] * RS,
                              sgi_br_get(r, L->vc.bits));
            }
        }
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_nm = {
    "nm", "N:M along C: subset code + N value slots per group of M", 0,
    nm_size, nm_encode, nm_decode,
};
