/* The SCNN layer's outputs on the vector steps (the direct convolution) and the
 * compression of each PE's owned outputs (src/sim/scnn_plan.h). */
#include "sim/scnn_plan.h"

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

enum sg_status sgi_scnn_layer_values(const struct sg_conv_geom *g, const float *w, const float *x,
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
enum sg_status sgi_scnn_count_outputs(const struct sgi_scnn_plan *pl, const float *y, struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const int64_t ebits = pl->c->value_bits + (pl->dense ? 0 : pl->c->index_bits);
    int64_t *pc = sgi_alloc((size_t)pl->npe * 3, sizeof *pc); /* per PE: nnz, fillers, bits */
    if (!pc) return SG_ERR_NOMEM;
#pragma omp parallel for schedule(dynamic, 1)
    for (int e = 0; e < pl->npe; e++) {
        const struct sgi_scnn_pe *t = &pl->pe[e];
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
