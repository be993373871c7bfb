/* Fine-masked fc layers on their kept weights (src/nn/fc_sparse.c) give the bits of
 * the dense kernels on the masked weights: the forward (bias included) and the input
 * gradient added to a dx holding values and -0, with every input feature live and
 * with some features dead (zero in x; their dx rows untouched), at batches 1 to 64
 * (vector tails), rows that are no multiple of four, kept shares 0.05 to 0.5, and
 * empty rows and columns. */
#include <math.h>

#include "harness.h"
#include "nn/ops.h"

/* The dense kernels (the whole layer, or its live features) into y0 and dx0, then the
 * sparse ones planned in ws into y1 and dx1 */
static void both_ways(int n, int c, int k, const int *lv, int nl, const float *x, const float *w,
                      const float *b, const float *dy, float *y0, float *y1, float *dx0,
                      float *dx1, float *dw, void *ws) {
    if (lv) {
        sgi_fc_forward_live(n, c, k, lv, nl, x, w, b, y0);
        sgi_fc_backward_live(n, c, k, lv, nl, x, w, dy, dx0, dw, NULL);
    } else {
        sgi_fc_forward(n, c, k, x, w, b, y0);
        sgi_fc_backward(n, c, k, x, w, dy, dx0, dw, NULL);
    }
    sgi_fc_forward_sparse(n, c, k, x, w, b, y1, ws);
    sgi_fc_dx_sparse(n, c, k, lv, nl, w, dy, dx1, ws);
}

static void check_fc(int n, int c, int k, double keep, int with_live, uint64_t seed) {
    float probe[64];
    if (!sgi_fc_sparse_plan(1, 1, 1, (const uint8_t[]){0}, NULL, 0, probe)) return; /* AVX-512 builds */
    sg_rng r;
    sg_rng_seed(&r, seed);
    float *x = malloc((size_t)c * n * 4), *w = malloc((size_t)k * c * 4), *b = malloc((size_t)k * 4);
    float *dy = malloc((size_t)k * n * 4), *y0 = malloc((size_t)k * n * 4), *y1 = malloc((size_t)k * n * 4);
    float *dx0 = malloc((size_t)c * n * 4), *dx1 = malloc((size_t)c * n * 4), *dw = malloc((size_t)k * c * 4);
    uint8_t *mk = malloc((size_t)k * c);
    int *live = malloc((size_t)c * sizeof *live), nl = 0;
    for (int i = 0; i < c; i++)
        if (!with_live || (i / 5) % 3 != 1) live[nl++] = i; /* runs of 5 dead features */
    for (size_t i = 0; i < (size_t)c * n; i++) x[i] = sg_rng_normal(&r);
    for (int t = 0, q = 0; t < c; t++) { /* dead features are 0 */
        if (q < nl && live[q] == t) { q++; continue; }
        memset(x + (size_t)t * n, 0, (size_t)n * 4);
    }
    for (size_t i = 0; i < (size_t)k * c; i++) {
        const int row = (int)(i / c), col = (int)(i % c);
        mk[i] = row != 1 && col != 2 && sg_rng_uniform(&r) < keep; /* row 1, column 2 empty */
        w[i] = mk[i] ? sg_rng_normal(&r) : 0.0f;
    }
    for (int i = 0; i < k; i++) b[i] = sg_rng_normal(&r);
    for (size_t i = 0; i < (size_t)k * n; i++) dy[i] = sg_rng_normal(&r);
    for (size_t i = 0; i < (size_t)c * n; i++) dx0[i] = i % 7 == 3 ? -0.0f : sg_rng_normal(&r);
    memcpy(dx1, dx0, (size_t)c * n * 4);
    const int *lv = with_live ? live : NULL;
    float *ws = sgt_nan_floats(sgi_fc_sparse_ws(n, c, k));
    CHECK(sgi_fc_sparse_plan(n, c, k, mk, lv, nl, ws) == (n <= 64));
    both_ways(n, c, k, lv, nl, x, w, b, dy, y0, y1, dx0, dx1, dw, ws);
    CHECK_MSG(memcmp(y0, y1, (size_t)k * n * 4) == 0, "y: n %d c %d k %d keep %.2f live %d", n, c, k,
              keep, with_live);
    CHECK_MSG(memcmp(dx0, dx1, (size_t)c * n * 4) == 0, "dx: n %d c %d k %d keep %.2f live %d", n, c,
              k, keep, with_live);
    free(x), free(w), free(b), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(dw), free(mk);
    free(live), free(ws);
}

SG_TEST(fc_sparse_same_bits_as_dense) {
    uint64_t seed = 900;
    {   /* the default declines a mask keeping half its weights */
        uint8_t mk[64];
        for (int i = 0; i < 64; i++) mk[i] = (uint8_t)(i & 1);
        float *ws = sgt_nan_floats(sgi_fc_sparse_ws(4, 16, 4));
        CHECK(!sgi_fc_sparse_plan(4, 16, 4, mk, NULL, 0, ws));
        free(ws);
    }
    sgi_fc_sparse_share(1.0); /* every share, to check the bits */
    const int ns[] = {1, 7, 16, 32, 33, 48, 64};
    const double keeps[] = {0.05, 0.3, 0.5};
    for (int li = 0; li <= 1; li++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t q = 0; q < 3; q++) {
                check_fc(ns[a], 45, 37, keeps[q], li, seed++);
                check_fc(ns[a], 80, 6, keeps[q], li, seed++);
            }
    check_fc(32, 800, 50, 0.3, 0, seed++); /* LeNet-5's fc1 shape, fewer rows: 4 tiles */
    check_fc(32, 800, 50, 0.3, 1, seed++);
    check_fc(5, 3000, 9, 0.2, 0, seed++); /* tiles of 1,600 */
    sgi_fc_sparse_share(-1);
}

/* The lists are made once per mask and taken again while the mask (and the live set)
 * is the one listed: a plan in the same workspace after the mask changed, after the
 * live set changed, or at another batch size lists again, and the products follow the
 * new mask bit for bit; a plan after a declined one (too many kept) lists too. */
SG_TEST(fc_sparse_plan_follows_the_mask) {
    float probe[64];
    if (!sgi_fc_sparse_plan(1, 1, 1, (const uint8_t[]){0}, NULL, 0, probe)) return; /* AVX-512 builds */
    enum { C = 90, K = 21, N = 33 };
    sg_rng r;
    sg_rng_seed(&r, 4242);
    static float x[C * N], w[K * C], dy[K * N], y0[K * N], y1[K * N], dx0[C * N], dx1[C * N], dw[K * C];
    static uint8_t mk[K * C];
    int live[C], nl = 0;
    for (int i = 0; i < C; i++)
        if (i % 4 != 1) live[nl++] = i;
    for (size_t i = 0; i < (size_t)C * N; i++) x[i] = (i / N) % 4 == 1 ? 0.0f : sg_rng_normal(&r);
    for (size_t i = 0; i < (size_t)K * N; i++) dy[i] = sg_rng_normal(&r);
    const size_t wsn = sgi_fc_sparse_ws(N, C, K) > sgi_fc_sparse_ws(16, C, K) ? sgi_fc_sparse_ws(N, C, K)
                                                                           : sgi_fc_sparse_ws(16, C, K);
    float *ws = sgt_nan_floats(wsn);
    memset(ws, 0, 64);
    sgi_fc_sparse_share(0.3);
    /* rounds: 0 a mask; 1 the same (taken again); 2 changed; 3 the live set on; 4 batch 16;
     * 5 too dense (declined); 6 sparse again */
    for (int round = 0; round < 7; round++) {
        const double keep = round == 5 ? 0.6 : 0.2;
        if (round != 1 && round != 3 && round != 4)
            for (size_t i = 0; i < (size_t)K * C; i++) {
                mk[i] = sg_rng_uniform(&r) < keep;
                w[i] = mk[i] ? sg_rng_normal(&r) : 0.0f;
            }
        const int n = round == 4 ? 16 : N, with_live = round >= 3;
        const int *lv = with_live ? live : NULL;
        for (size_t i = 0; i < (size_t)C * N; i++) dx0[i] = dx1[i] = (float)(i % 5);
        const int planned = sgi_fc_sparse_plan(n, C, K, mk, lv, nl, ws);
        CHECK_MSG(planned == (round != 5), "round %d planned %d", round, planned);
        if (!planned) continue;
        both_ways(n, C, K, lv, nl, x, w, NULL, dy, y0, y1, dx0, dx1, dw, ws);
        CHECK_MSG(memcmp(y0, y1, (size_t)K * n * 4) == 0, "round %d: y", round);
        CHECK_MSG(memcmp(dx0, dx1, (size_t)C * n * 4) == 0, "round %d: dx", round);
    }
    sgi_fc_sparse_share(-1);
    free(ws);
}
