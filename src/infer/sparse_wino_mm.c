/* The products of the sparse Winograd convolution (sparse_wino.c runs the
 * transforms around them): for each of the 36 points xi, M[k][xi] = sum over the
 * kept channels c of filter k of U[xi][k][c] V[xi][c], where V[xi][c] is a row of
 * TL = 16*T tiles (T = 1..4 vectors) and M[k][xi] likewise.
 *
 * Why two kernels. This core issues two fused multiply-adds and two 16-float
 * loads per cycle, about 2.2 loads of any kind (measured: a loop of one load per
 * multiply-add runs at 85% of the multiply-add peak). A sparse row reads one V
 * vector per multiply-add, a broadcast of U per T vectors and a channel position
 * per T vectors (16-bit, four per load): (T + 1.25) / T loads per multiply-add,
 * so the sparse rows (kernel pruning) are load-bound, and only reach that when V
 * comes from L1: its channels are taken in blocks (w->wcb channels, chosen at
 * build time so that a block's V[xi] is at most 32 KB for the chunks of a batch
 * of one: 128 channels for 3 or 4 vectors, 512 for one), a block's V[xi] serving
 * every filter. The entries (weights and positions) are stored block by block,
 * each block's rows in order, so that they stream in the order the products read
 * them: stored by rows, each block's pass read every row's run a row apart, and
 * VGG-16's 28x28 layers (4 blocks) took 1.12x the time, its 56x56 ones (2) 1.03x
 * (kernel 0.3, 16 interleaved rounds). (Positions read one per load as 32-bit
 * integers measured 3-8% slower, on 256 and 512 channels and T = 1..4.) When
 * every kept filter
 * uses the same channels (filter and channel pruning) the product is dense and a
 * register block of RB filters x T vectors shares each V vector among RB filters
 * and each U broadcast among T vectors: (RB + T) / (RB * T) loads per
 * multiply-add, compute-bound. */
#include <string.h>

#include "infer/sparse_plan.h"

#define AI static inline __attribute__((always_inline))

/* One row segment: filter k's kept channels in [p0, p1) added into Mk[TL]
 * (zeroed first when first). NP partial sums per vector (NP = 2, 4 or 8) keep
 * NP*T independent chains of multiply-adds in flight (4-cycle latency, two per
 * cycle: 8 chains fill the pipes; T = 1 with 4 took 1.08-1.15x the time of 8 on
 * VGG-16's 14x14 layers, fastest of ten interleaved runs). The 16-bit channel
 * positions are read four at a time. The address of
 * a V row is formed once in a register (the empty asm keeps the compiler from
 * folding it into each multiply-add as base + index*4: a three-operand
 * instruction with an indexed memory operand is split into two micro-ops at
 * rename on Intel cores, Intel's optimization manual, "micro-fusion"): 4-10%
 * faster products for T >= 2 in an interleaved A/B on 128 to 512 channels; for
 * T = 1 the extra address add per multiply-add does not pay. XP = 2 takes two
 * points per pass, sharing the positions and the loop: when the channels are
 * few (a row of 64 channels at density 0.3 has about 19 entries, and the loop's
 * mispredicted exit and the partial sums' reduction are paid per row and
 * point), and the two points' V fit in 32 KB of L1: VGG-16's 64-channel layers
 * (conv1_2, conv2_1) at kernel density 0.3 took 0.95-0.97x the time (fastest of
 * 30 interleaved rounds). */
AI void seg_row(const float *u, int64_t us, const uint16_t *col, int64_t p0, int64_t p1, const float *Vx,
                int64_t vs, float *Mk, int64_t mst, int first, const int T, const int NP, const int XP) {
    const int64_t TL = (int64_t)T * SGV_W;
    sgv a[2][8][4];
    for (int x = 0; x < XP; x++)
        for (int q = 0; q < NP; q++)
            for (int t = 0; t < T; t++)
                a[x][q][t] = q == 0 && !first ? sgv_load(Mk + x * mst + t * SGV_W) : sgv_zero();
    int64_t p = p0;
    const int G = NP > 4 ? NP : 4; /* entries per step */
    for (; p + G <= p1; p += G) {
        for (int h = 0; h < G; h += 4) {
            uint64_t c4;
            memcpy(&c4, col + p + h, sizeof c4);
            for (int e = 0; e < 4; e++) {
                const int64_t off = (int64_t)(c4 >> 16 * e & 0xFFFF) * TL;
                for (int x = 0; x < XP; x++) {
                    const sgv uv = sgv_set1(u[x * us + p + h + e]);
                    const float *v = Vx + x * vs + off;
                    if (T > 1 || XP > 1) __asm__("" : "+r"(v)); /* see seg_row's comment */
                    sgv *acc = a[x][(h + e) % NP];
                    for (int t = 0; t < T; t++) acc[t] = sgv_fma(uv, sgv_load(v + t * SGV_W), acc[t]);
                }
            }
        }
    }
    for (; p < p1; p++)
        for (int x = 0; x < XP; x++) {
            const sgv uv = sgv_set1(u[x * us + p]);
            const float *v = Vx + x * vs + (int64_t)col[p] * TL;
            for (int t = 0; t < T; t++) a[x][0][t] = sgv_fma(uv, sgv_load(v + t * SGV_W), a[x][0][t]);
        }
    for (int x = 0; x < XP; x++)
        for (int t = 0; t < T; t++) {
            sgv s = a[x][0][t];
            for (int q = 1; q < NP; q++) s = sgv_add(s, a[x][q][t]);
            sgv_store(Mk + x * mst + t * SGV_W, s);
        }
}

/* Rows [k0, k1) at the points [x0, x1): block by block (a block's V[xi] in L1),
 * each row's run of the block as stored (the rows' runs one after another). */
AI void sparse_block(const struct sgi_wino *w, int64_t k0, int64_t k1, int x0, int x1, const float *V,
                     float *M, int64_t ms, const int T, const int NP, const int XP) {
    const int64_t TL = (int64_t)T * SGV_W, nb = w->nb, K1 = w->nrows + 1, vs = sgi_wino_pad(w->nch * TL);
    for (int xi = x0; xi < x1; xi += XP) {
        const float *u = w->u + (int64_t)xi * w->nnz, *Vx = V + (int64_t)xi * vs;
        float *Mx = M + xi * ms;
        for (int64_t b = 0; b < nb; b++) {
            const int64_t *s = w->seg + b * K1;
            for (int64_t k = k0; k < k1; k++) {
                if (w->rp[k] == w->rp[k + 1]) continue; /* pruned filter: bias only */
                if (s[k] == s[k + 1] && b > 0) continue;
                seg_row(u, w->nnz, w->col, s[k], s[k + 1], Vx, vs, Mx + (k - k0) * TL, ms, b == 0, T, NP, XP);
            }
        }
    }
}

int sgi_wino_points_per_pass(const struct sgi_wino *w, int T) {
    return !w->dense && w->nb == 1 && w->nch * T * SGV_W * 4 * 2 <= 32768 ? 2 : 1;
}

void sgi_wino_sparse_product(const struct sgi_wino *w, int64_t k0, int64_t k1, int x0, int x1,
                             const float *V, float *M, int64_t ms, int T) {
    if (sgi_wino_points_per_pass(w, T) == 2) {
        switch (T) {
        case 1: sparse_block(w, k0, k1, x0, x1, V, M, ms, 1, 4, 2); break;
        case 2: sparse_block(w, k0, k1, x0, x1, V, M, ms, 2, 2, 2); break;
        case 3: sparse_block(w, k0, k1, x0, x1, V, M, ms, 3, 2, 2); break;
        default: sparse_block(w, k0, k1, x0, x1, V, M, ms, 4, 1, 2); break;
        }
        return;
    }
    switch (T) {
    case 1: sparse_block(w, k0, k1, x0, x1, V, M, ms, 1, 8, 1); break;
    case 2: sparse_block(w, k0, k1, x0, x1, V, M, ms, 2, 4, 1); break;
    case 3: sparse_block(w, k0, k1, x0, x1, V, M, ms, 3, 2, 1); break;
    default: sparse_block(w, k0, k1, x0, x1, V, M, ms, 4, 2, 1); break;
    }
}

/* RB dense rows (U[RB][nch], row stride nch) against V[nch][TL] into M[RB][TL]. */
AI void dense_rows(const float *U, int64_t nch, const float *Vx, float *M, const int T, const int RB) {
    const int64_t TL = (int64_t)T * SGV_W;
    sgv a[8][4];
    for (int j = 0; j < RB; j++)
        for (int t = 0; t < T; t++) a[j][t] = sgv_zero();
    for (int64_t c = 0; c < nch; c++) {
        sgv v[4];
        for (int t = 0; t < T; t++) v[t] = sgv_load(Vx + c * TL + t * SGV_W);
        for (int j = 0; j < RB; j++) {
            const sgv uv = sgv_set1(U[j * nch + c]);
            for (int t = 0; t < T; t++) a[j][t] = sgv_fma(uv, v[t], a[j][t]);
        }
    }
    for (int j = 0; j < RB; j++)
        for (int t = 0; t < T; t++) sgv_store(M + j * TL + t * SGV_W, a[j][t]);
}

/* The last kept rows, fewer than a register block (n = 1..7): a block of n rows
 * rather than RB rows of which RB - n are padding (VGG-16 conv1_2 at filter
 * density 0.3 keeps 19 filters: 3 blocks of 6 and one of 1, not 4 of 6). */
AI void dense_tail(const float *U, int64_t nch, const float *Vx, float *M, const int T, int n) {
    switch (n) {
    case 1: dense_rows(U, nch, Vx, M, T, 1); break;
    case 2: dense_rows(U, nch, Vx, M, T, 2); break;
    case 3: dense_rows(U, nch, Vx, M, T, 3); break;
    case 4: dense_rows(U, nch, Vx, M, T, 4); break;
    case 5: dense_rows(U, nch, Vx, M, T, 5); break;
    case 6: dense_rows(U, nch, Vx, M, T, 6); break;
    default: dense_rows(U, nch, Vx, M, T, 7); break;
    }
}

AI void dense_block(const struct sgi_wino *w, int64_t r0, int64_t r1, int x0, int x1, const float *V,
                    float *M, int64_t ms, const int T, const int RB) {
    const int64_t TL = (int64_t)T * SGV_W, nch = w->nch;
    if (r1 > w->nk) r1 = w->nk; /* padding rows past the last kept filter: not computed */
    for (int xi = x0; xi < x1; xi++) {
        const float *Vx = V + (int64_t)xi * sgi_wino_pad(nch * TL);
        for (int64_t r = r0; r < r1; r += RB) {
            const float *U = w->ud + ((int64_t)xi * w->kp + r) * nch;
            float *Mr = M + xi * ms + (r - r0) * TL;
            if (r + RB <= r1)
                dense_rows(U, nch, Vx, Mr, T, RB);
            else
                dense_tail(U, nch, Vx, Mr, T, (int)(r1 - r));
        }
    }
}

/* Rows per register block for T vectors: RB x T accumulators and T vectors of V
 * in registers (8 x 2 + 2, 6 x 4 + 4 of 32). */
#define DENSE_RB(T) ((T) <= 2 ? 8 : 6)

/* Rows [r0, r1) of the dense U (r0 a multiple of DENSE_RB(T)); rows
 * past the kept filters are padding, not computed. */
void sgi_wino_dense_product(const struct sgi_wino *w, int64_t r0, int64_t r1, int x0, int x1,
                            const float *V, float *M, int64_t ms, int T) {
    switch (T) {
    case 1: dense_block(w, r0, r1, x0, x1, V, M, ms, 1, DENSE_RB(1)); break;
    case 2: dense_block(w, r0, r1, x0, x1, V, M, ms, 2, DENSE_RB(2)); break;
    case 3: dense_block(w, r0, r1, x0, x1, V, M, ms, 3, DENSE_RB(3)); break;
    default: dense_block(w, r0, r1, x0, x1, V, M, ms, 4, DENSE_RB(4)); break;
    }
}
