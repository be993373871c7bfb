/* Dense 3x3 stride-1 convolutions for training through Winograd F(2x2,3x3), all
 * three passes, on channel-major activations X[C][N][H][W]:
 *   forward       y  = A^T [ (G w G^T) . (B^T x B) ] A          per 2x2 output tile
 *   input grad    dx = the forward of dy with the 180-degree turned, transposed
 *                      filters and padding 2 - pad (a full correlation)
 *   weight grad   dw = G^T [ sum over tiles (A dy A^T) . (B^T x B) ] G
 * The weight gradient is the forward's bilinear form read the other way: for
 * y_i = sum_r g_r x_(i+r) = A^T[(G g) . (B^T x)], sum_i d_i y_i = g . G^T[(A d) . (B^T x)],
 * so z_r = sum_i d_i x_(i+r) = G^T[(A d) . (B^T x)]. The sum over tiles runs in the
 * transformed domain: 16 GEMMs K x C x tiles, one transform at the end.
 * Every product of the 16 points is one sgemm over a slice of the batch; threads
 * take whole slices (single-threaded GEMMs in their own cache), and the weight
 * gradient sums per thread are added in thread order: results depend on the thread
 * count, never on timing. Checked against the im2col kernels and the direct
 * reference in tests/test_wino_train.c. */
#include "core/sgi.h"
#include "nn/ops.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* Floats the transformed input and output of one slice may take (per thread):
 * the GEMMs then read and write them from L2/L3 rather than memory. */
#define SLICE_FLOATS ((size_t)384 << 10)

static int g_wino_on = 1;

void sgi_wino_train_enable(int on) { g_wino_on = on; }

int sgi_wino_train_ok(const struct sg_conv_geom *g) {
    /* auto: not on small outputs, where the 2x2 tiles waste a large share
     * (7x7: 64 outputs computed for 49) and im2col is as fast (measured on VGG-7) */
    if (g_wino_on == 1 && g->q < 10) return 0;
    return g_wino_on && g->r == 3 && g->s == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 &&
           g->dw == 1 && g->groups == 1 && g->pt <= 2 && g->pl <= 2 && g->p > 0 && g->q > 0 &&
           g->w <= 2048 && g->q <= 2048 && g->c >= 4;
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Tiles of one image for an op x oq output: bands of ceil(op/2) rows of
 * ceil(oq/2) + 1 tiles. The last tile of a band pads the row so that the
 * transforms run over whole chunks of bands with contiguous, shifted reads; the
 * GEMMs carry it (its outputs are dropped, its dy tile is zero). */
static size_t tiles_of(int op, int oq) { return (size_t)((op + 1) / 2) * ((oq + 1) / 2 + 1); }

/* Images per slice for a transform over an output of op x oq with cin input and
 * cout output channels, at most n / threads (rounded up) so that every thread
 * gets work. */
static int slice_images(int n, int op, int oq, int cin, int cout, int threads) {
    const size_t tiles = tiles_of(op, oq);
    const size_t per = 16 * tiles * (size_t)(cin + cout);
    static size_t lim = 0;
    if (!lim) lim = getenv("SG_WSLICE") ? (size_t)atol(getenv("SG_WSLICE")) << 10 : SLICE_FLOATS;
    int nb = (int)(lim / (per ? per : 1));
    if (nb < 1) nb = 1;
    const int fair = (n + threads - 1) / threads;
    if (nb > fair) nb = fair;
    return nb;
}

/* The transforms copy short rows: plain loops, kept from becoming libc memset and
 * memcpy calls (GCC's loop-idiom pass), which cost more than the copy here. */
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* Tiles per chunk of bands the transforms work on: the 16 gathered inputs and the
 * outputs stay in L1/L2 and on the stack. */
#define CHUNK_TILES 512

static int bands_per_chunk(int tq) {
    const int b = CHUNK_TILES / (tq + 1);
    return b < 1 ? 1 : b;
}

/* V[16][ch][T] of images n0..n0+nb: tiles of an op x oq output over an input plane
 * of h x w read from (2 ty - pt, 2 tx - pl). Per chunk of tile bands: the padded
 * input rows split by row parity into even and odd columns (E, O: L = tq + 1
 * entries a row), so that entry (i, j) of every tile of the chunk is one of these
 * arrays read at a fixed shift; then B^T d B elementwise over the whole chunk. */
NO_LIBCALLS static void input_tiles(const float *x, const int *map, int ch, int n, int h, int w,
                                    int n0, int nb, int op, int oq, int pt, int pl, float *v) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, vs = (size_t)ch * T;
    /* [parity][band][L] with one band and one entry of slack for the shifted reads */
    const int cap = (bc + 1) * L + 1;
    float ee[2][cap], oo[2][cap];
    float r[4][4][bc * L];
    for (int par = 0; par < 2; par++)
        for (int t = 0; t < cap; t++) ee[par][t] = oo[par][t] = 0;
    for (int c = 0; c < ch; c++)
        for (int b = 0; b < nb; b++) {
            const float *plane = x + ((size_t)(map ? map[c] : c) * n + n0 + b) * h * w;
            float *vc = v + (size_t)c * T + (size_t)b * ti;
            for (int ty0 = 0; ty0 < tp; ty0 += bc) {
                const int nbnd = tp - ty0 < bc ? tp - ty0 : bc, nr = 2 * nbnd + 2, nt = nbnd * L;
                for (int rr = 0; rr < nr; rr++) {
                    const int ih = 2 * ty0 - pt + rr;
                    float *e = ee[rr & 1] + (rr >> 1) * L, *o = oo[rr & 1] + (rr >> 1) * L;
                    if (ih < 0 || ih >= h) {
                        for (int t = 0; t < L; t++) e[t] = o[t] = 0;
                        continue;
                    }
                    const float *src = plane + (size_t)ih * w;
                    /* t in [lo, hi): both columns 2t - pl and 2t + 1 - pl inside */
                    int lo = (pl + 1) / 2, hi = (w + pl) / 2;
                    if (lo > L) lo = L;
                    if (hi > L) hi = L;
                    if (hi < lo) hi = lo;
                    for (int t = 0; t < lo; t++) {
                        const int i0 = 2 * t - pl, i1 = i0 + 1;
                        e[t] = i0 >= 0 && i0 < w ? src[i0] : 0.0f;
                        o[t] = i1 >= 0 && i1 < w ? src[i1] : 0.0f;
                    }
                    const float *sp = src - pl;
                    for (int t = lo; t < hi; t++) e[t] = sp[2 * t], o[t] = sp[2 * t + 1];
                    for (int t = hi; t < L; t++) {
                        const int i0 = 2 * t - pl, i1 = i0 + 1;
                        e[t] = i0 >= 0 && i0 < w ? src[i0] : 0.0f;
                        o[t] = i1 >= 0 && i1 < w ? src[i1] : 0.0f;
                    }
                }
                /* rows of B^T over the tile rows i: row 2 bd + i is parity i & 1,
                 * band bd + i / 2; columns j: E, O, E shifted, O shifted */
                for (int j = 0; j < 4; j++) {
                    const int sh = j >> 1;
                    const float *a = (j & 1) ? oo[0] : ee[0], *bq = (j & 1) ? oo[1] : ee[1];
                    const float *d0 = a + sh, *d1 = bq + sh, *d2 = a + L + sh, *d3 = bq + L + sh;
                    float *r0 = r[0][j], *r1 = r[1][j], *r2 = r[2][j], *r3 = r[3][j];
                    for (int t = 0; t < nt; t++) {
                        r0[t] = d0[t] - d2[t];
                        r1[t] = d1[t] + d2[t];
                        r2[t] = d2[t] - d1[t];
                        r3[t] = d1[t] - d3[t];
                    }
                }
                float *vt = vc + (size_t)ty0 * L;
                for (int i = 0; i < 4; i++) {
                    const float *a0 = r[i][0], *a1 = r[i][1], *a2 = r[i][2], *a3 = r[i][3];
                    float *v0 = vt + (i * 4 + 0) * vs, *v1 = vt + (i * 4 + 1) * vs;
                    float *v2 = vt + (i * 4 + 2) * vs, *v3 = vt + (i * 4 + 3) * vs;
                    for (int t = 0; t < nt; t++) {
                        v0[t] = a0[t] - a2[t];
                        v1[t] = a1[t] + a2[t];
                        v2[t] = a2[t] - a1[t];
                        v3[t] = a1[t] - a3[t];
                    }
                }
            }
        }
}

/* M[16][ch][T] -> y[ch][n][op][oq] (= or +=): A^T m A per tile, clipped at the
 * edge; elementwise over a chunk of tiles, then the four outputs of every tile
 * interleaved into the rows. */
NO_LIBCALLS static void output_tiles(const float *mt, const int *map, int ch, int n, int n0, int nb,
                                     int op, int oq, int accumulate, float *y) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, ms = (size_t)ch * T;
    float t2[2][4][bc * L], o[2][2][bc * L];
    for (int c = 0; c < ch; c++)
        for (int b = 0; b < nb; b++) {
            float *plane = y + ((size_t)(map ? map[c] : c) * n + n0 + b) * op * oq;
            const float *mc = mt + (size_t)c * T + (size_t)b * ti;
            for (int ty0 = 0; ty0 < tp; ty0 += bc) {
                const int nbnd = tp - ty0 < bc ? tp - ty0 : bc, nt = nbnd * L;
                const float *m = mc + (size_t)ty0 * L;
                for (int j = 0; j < 4; j++) {
                    const float *m0 = m + (0 * 4 + j) * ms, *m1 = m + (1 * 4 + j) * ms;
                    const float *m2 = m + (2 * 4 + j) * ms, *m3 = m + (3 * 4 + j) * ms;
                    for (int t = 0; t < nt; t++) {
                        t2[0][j][t] = m0[t] + m1[t] + m2[t];
                        t2[1][j][t] = m1[t] - m2[t] - m3[t];
                    }
                }
                for (int a = 0; a < 2; a++)
                    for (int t = 0; t < nt; t++) {
                        o[a][0][t] = t2[a][0][t] + t2[a][1][t] + t2[a][2][t];
                        o[a][1][t] = t2[a][1][t] - t2[a][2][t] - t2[a][3][t];
                    }
                for (int bd = 0; bd < nbnd; bd++)
                    for (int a = 0; a < 2; a++) {
                        const int p = 2 * (ty0 + bd) + a;
                        if (p >= op) continue;
                        float *dst = plane + (size_t)p * oq;
                        const float *e = o[a][0] + bd * L, *od = o[a][1] + bd * L;
                        const int full = oq / 2;
                        if (accumulate) {
                            for (int t = 0; t < full; t++) dst[2 * t] += e[t], dst[2 * t + 1] += od[t];
                            if (oq & 1) dst[oq - 1] += e[full];
                        } else {
                            for (int t = 0; t < full; t++) dst[2 * t] = e[t], dst[2 * t + 1] = od[t];
                            if (oq & 1) dst[oq - 1] = e[full];
                        }
                    }
            }
        }
}

/* U[16][ko][ki] = G g G^T of the 3x3 kernels g; `dgrad` reads w[k][c] as the
 * 180-degree turned filter of (ko = c, ki = k). */
static void weight_transform(const float *w, int k, int c, int dgrad, float *u) {
    const int ko_n = dgrad ? c : k, ki_n = dgrad ? k : c;
    const size_t us = (size_t)ko_n * ki_n;
#pragma omp parallel for schedule(static) if ((size_t)k * c > 4096)
    for (int ko = 0; ko < ko_n; ko++)
        for (int ki = 0; ki < ki_n; ki++) {
            const float *g = dgrad ? w + ((size_t)ki * c + ko) * 9 : w + ((size_t)ko * c + ki) * 9;
            float f[3][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) f[r][s] = dgrad ? g[(2 - r) * 3 + 2 - s] : g[r * 3 + s];
            float t[4][3];
            for (int s = 0; s < 3; s++) {
                t[0][s] = f[0][s];
                t[1][s] = 0.5f * (f[0][s] + f[1][s] + f[2][s]);
                t[2][s] = 0.5f * (f[0][s] - f[1][s] + f[2][s]);
                t[3][s] = f[2][s];
            }
            float *o = u + (size_t)ko * ki_n + ki;
            for (int i = 0; i < 4; i++) {
                o[(i * 4 + 0) * us] = t[i][0];
                o[(i * 4 + 1) * us] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                o[(i * 4 + 2) * us] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                o[(i * 4 + 3) * us] = t[i][2];
            }
        }
}

/* The slice layout of one transform-GEMM-transform pass. */
struct pass {
    int n, cin, cout, h, w, op, oq, pt, pl, nb, nslices;
    const int *imap, *omap; /* channel maps of input and output (NULL: identity) */
    size_t T, vlen, mlen; /* tiles of a full slice; floats of V and M per thread */
};

static struct pass pass_of(int n, int cin, int cout, int h, int w, int op, int oq, int pt, int pl,
                           int threads) {
    struct pass p = {n, cin, cout, h, w, op, oq, pt, pl, 0, 0, NULL, NULL, 0, 0, 0};
    p.nb = slice_images(n, op, oq, cin, cout, threads);
    p.nslices = (n + p.nb - 1) / p.nb;
    p.T = (size_t)p.nb * tiles_of(op, oq);
    p.vlen = round16(16 * (size_t)cin * p.T);
    p.mlen = round16(16 * (size_t)cout * p.T);
    return p;
}

static size_t kc_len(const struct sg_conv_geom *g) { return round16(16 * (size_t)g->k * g->c); }

size_t sgi_wino_train_workspace(const struct sg_conv_geom *g, int threads) {
    if (threads < 1) threads = 1;
    const struct pass f = pass_of(g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    const struct pass d = pass_of(g->n, g->k, g->c, g->p, g->q, g->h, g->w, 2 - g->pt, 2 - g->pl, threads);
    /* forward / input gradient: U, then per thread V and M; weight gradient: per
     * thread V, D (the dy tiles, as long as M) and a K x C sum of 16 points */
    size_t a = f.vlen + f.mlen, b = d.vlen + d.mlen, c = f.vlen + f.mlen + kc_len(g);
    size_t per = a > b ? a : b;
    if (c > per) per = c;
    return kc_len(g) + (size_t)threads * per;
}

/* Sixteen floats as one unaligned vector (two on AVX2, one on AVX-512). */
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

static inline float hsum16(v16f a) {
#ifdef __AVX512F__
    __m512 r;
    memcpy(&r, &a, sizeof r);
    return _mm512_reduce_add_ps(r);
#else
    float s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
#endif
}

/* m[ko][T] = sum over the kept ki of ko (li[lp[ko]..lp[ko+1])) of u[ko][ki] v[ki][T]:
 * the kernel-masked product, one broadcast weight times 128 tiles held in 8
 * vectors (8 independent chains), then 16 tiles, then single tiles. */
static void sparse_mm(int cout, int cin, int T, const float *u, const int32_t *lp,
                      const int32_t *li, const float *v, float *m) {
    for (int ko = 0; ko < cout; ko++) {
        const float *uk = u + (size_t)ko * cin;
        float *mk = m + (size_t)ko * T;
        const int32_t j0 = lp[ko], j1 = lp[ko + 1];
        int t = 0;
        for (; t + 128 <= T; t += 128) {
            v16f a[8] = {0};
            for (int32_t j = j0; j < j1; j++) {
                const float w = uk[li[j]];
                const float *vr = v + (size_t)li[j] * T + t;
                for (int q = 0; q < 8; q++) a[q] += w * *(const v16f *)(vr + 16 * q);
            }
            for (int q = 0; q < 8; q++) *(v16f *)(mk + t + 16 * q) = a[q];
        }
        for (; t + 16 <= T; t += 16) {
            v16f a = {0};
            for (int32_t j = j0; j < j1; j++)
                a += uk[li[j]] * *(const v16f *)(v + (size_t)li[j] * T + t);
            *(v16f *)(mk + t) = a;
        }
#ifdef __AVX512F__
        if (t < T) { /* the last 1..15 tiles: masked loads and store */
            const __mmask16 mt = (__mmask16)((1u << (T - t)) - 1);
            __m512 a = _mm512_setzero_ps();
            for (int32_t j = j0; j < j1; j++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(uk[li[j]]),
                                    _mm512_maskz_loadu_ps(mt, v + (size_t)li[j] * T + t), a);
            _mm512_mask_storeu_ps(mk + t, mt, a);
        }
#else
        for (; t < T; t++) {
            float a = 0;
            for (int32_t j = j0; j < j1; j++) a += uk[li[j]] * v[(size_t)li[j] * T + t];
            mk[t] = a;
        }
#endif
    }
}

/* acc[k][c] (= when first, else +=) sum over t of d[k][t] v[c][t], for the kept
 * pairs only (the others stay 0): the kernel-masked weight gradient. */
static void sparse_wgrad(int k, int c, int T, const float *d, const float *v, const int32_t *lp,
                         const int32_t *li, int first, float *acc) {
    if (first) memset(acc, 0, (size_t)k * c * sizeof *acc);
    for (int kk = 0; kk < k; kk++) {
        const float *dr = d + (size_t)kk * T;
        for (int32_t j = lp[kk]; j < lp[kk + 1]; j++) {
            const float *vr = v + (size_t)li[j] * T;
            v16f a[4] = {0};
            int t = 0;
            for (; t + 64 <= T; t += 64)
                for (int q = 0; q < 4; q++)
                    a[q] += *(const v16f *)(dr + t + 16 * q) * *(const v16f *)(vr + t + 16 * q);
            for (; t + 16 <= T; t += 16) a[0] += *(const v16f *)(dr + t) * *(const v16f *)(vr + t);
#ifdef __AVX512F__
            if (t < T) {
                const __mmask16 mt = (__mmask16)((1u << (T - t)) - 1);
                __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(mt, dr + t),
                                         _mm512_maskz_loadu_ps(mt, vr + t));
                v16f pv;
                memcpy(&pv, &p, sizeof pv);
                a[1] += pv;
            }
            const float s = hsum16((a[0] + a[1]) + (a[2] + a[3]));
#else
            float s = hsum16((a[0] + a[1]) + (a[2] + a[3]));
            for (; t < T; t++) s += dr[t] * vr[t];
#endif
            acc[(size_t)kk * c + li[j]] += s;
        }
    }
}

/* One pass: y[cout][n][op][oq] (=, or += when accumulate) = the Winograd
 * correlation of x[cin][n][h][w] with the transformed filters u[16][cout][cin]. */
static void run_pass(const struct pass *p, const float *x, const float *u, float *y,
                     int accumulate, const int32_t *lp, const int32_t *li, float *ws,
                     int threads) {
    const size_t per = p->vlen + p->mlen;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int sl = 0; sl < p->nslices; sl++) {
        int t = 0, team = 1;
        sgi_omp_team(&t, &team);
        float *v = ws + (size_t)t * per, *mm = v + p->vlen;
        const int n0 = sl * p->nb, nb = p->n - n0 < p->nb ? p->n - n0 : p->nb;
        const int T = nb * (int)tiles_of(p->op, p->oq);
        input_tiles(x, p->imap, p->cin, p->n, p->h, p->w, n0, nb, p->op, p->oq, p->pt, p->pl, v);
        for (int e = 0; e < 16; e++)
            if (lp)
                sparse_mm(p->cout, p->cin, T, u + (size_t)e * p->cout * p->cin, lp, li,
                          v + (size_t)e * p->cin * T, mm + (size_t)e * p->cout * T);
            else
                sgi_sgemm(0, 0, p->cout, T, p->cin, 1.0f, u + (size_t)e * p->cout * p->cin,
                          p->cin, v + (size_t)e * p->cin * T, T, 0.0f,
                          mm + (size_t)e * p->cout * T, T);
        output_tiles(mm, p->omap, p->cout, p->n, n0, nb, p->op, p->oq, accumulate, y);
    }
}

void sgi_wino_train_forward(const struct sg_conv_geom *g, const float *x, const float *w,
                            float *y, float *ws, int threads) {
    sgi_wino_train_forward_kept(g, x, w, NULL, y, ws, threads);
}

void sgi_wino_train_forward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                 const struct sgi_kept *kp, float *y, float *ws, int threads) {
    sgi_wino_train_forward_map(g, NULL, NULL, x, w, kp, 0, y, ws, threads);
}

void sgi_wino_train_forward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                const float *x, const float *w, const struct sgi_kept *kp,
                                int accumulate, float *y, float *ws, int threads) {
    if (threads < 1) threads = 1;
    struct pass p = pass_of(g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    p.imap = cmap, p.omap = kmap;
    weight_transform(w, g->k, g->c, 0, ws);
    run_pass(&p, x, ws, y, accumulate, kp ? kp->fp : NULL, kp ? kp->fi : NULL, ws + kc_len(g),
             threads);
}

/* dy tiles: A d A^T of the 2x2 tiles of dy[k][n][p][q] (zero beyond the edge and
 * in the padding tile of every band) into D[16][k][T]: per chunk of bands, the
 * four entries of every tile gathered over the tiles, then rows
 * A d = [d0, d0 + d1, d0 - d1, -d1] and the same on columns. */
NO_LIBCALLS static void grad_tiles(const float *dy, const int *map, int k, int n, int op, int oq,
                                   int n0, int nb, float *dt) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, ds = (size_t)k * T;
    float g[2][2][bc * L], r[4][2][bc * L];
    for (int c = 0; c < k; c++)
        for (int b = 0; b < nb; b++) {
            const float *plane = dy + ((size_t)(map ? map[c] : c) * n + n0 + b) * op * oq;
            float *dc = dt + (size_t)c * T + (size_t)b * ti;
            for (int ty0 = 0; ty0 < tp; ty0 += bc) {
                const int nbnd = tp - ty0 < bc ? tp - ty0 : bc, nt = nbnd * L;
                for (int bd = 0; bd < nbnd; bd++)
                    for (int a = 0; a < 2; a++) {
                        const int p = 2 * (ty0 + bd) + a;
                        float *e = g[a][0] + bd * L, *o = g[a][1] + bd * L;
                        if (p >= op) {
                            for (int t = 0; t < L; t++) e[t] = o[t] = 0;
                            continue;
                        }
                        const float *src = plane + (size_t)p * oq;
                        const int full = oq / 2;
                        for (int t = 0; t < full; t++) e[t] = src[2 * t], o[t] = src[2 * t + 1];
                        for (int t = full; t < L; t++) e[t] = o[t] = 0;
                        if (oq & 1) e[full] = src[oq - 1];
                    }
                for (int j = 0; j < 2; j++)
                    for (int t = 0; t < nt; t++) {
                        const float a0 = g[0][j][t], a1 = g[1][j][t];
                        r[0][j][t] = a0, r[1][j][t] = a0 + a1, r[2][j][t] = a0 - a1, r[3][j][t] = -a1;
                    }
                float *dtt = dc + (size_t)ty0 * L;
                for (int i = 0; i < 4; i++) {
                    const float *e = r[i][0], *o = r[i][1];
                    float *d0 = dtt + (i * 4 + 0) * ds, *d1 = dtt + (i * 4 + 1) * ds;
                    float *d2 = dtt + (i * 4 + 2) * ds, *d3 = dtt + (i * 4 + 3) * ds;
                    for (int t = 0; t < nt; t++) {
                        d0[t] = e[t];
                        d1[t] = e[t] + o[t];
                        d2[t] = e[t] - o[t];
                        d3[t] = -o[t];
                    }
                }
            }
        }
}

/* dw[k][c][3][3] = G^T m G of the summed points m[16][k][c]. */
static void weight_grad_out(const float *m, int k, int c, float *dw) {
    const size_t ms = (size_t)k * c;
    for (int kk = 0; kk < k; kk++)
        for (int cc = 0; cc < c; cc++) {
            const float *a = m + (size_t)kk * c + cc;
            float t[3][4]; /* G^T rows: [1 .5 .5 0], [0 .5 -.5 0], [0 .5 .5 1] */
            for (int j = 0; j < 4; j++) {
                const float a0 = a[(0 * 4 + j) * ms], a1 = a[(1 * 4 + j) * ms];
                const float a2 = a[(2 * 4 + j) * ms], a3 = a[(3 * 4 + j) * ms];
                t[0][j] = a0 + 0.5f * (a1 + a2);
                t[1][j] = 0.5f * (a1 - a2);
                t[2][j] = 0.5f * (a1 + a2) + a3;
            }
            float *o = dw + ((size_t)kk * c + cc) * 9;
            for (int r = 0; r < 3; r++) {
                o[r * 3 + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
                o[r * 3 + 1] = 0.5f * (t[r][1] - t[r][2]);
                o[r * 3 + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
            }
        }
}

void sgi_wino_train_backward(const struct sg_conv_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *ws, int threads) {
    sgi_wino_train_backward_kept(g, x, w, NULL, dy, dx, dw, ws, threads);
}

void sgi_wino_train_backward_kept(const struct sg_conv_geom *g, const float *x, const float *w,
                                  const struct sgi_kept *kp, const float *dy, float *dx,
                                  float *dw, float *ws, int threads) {
    sgi_wino_train_backward_map(g, NULL, NULL, x, w, kp, dy, dx, dw, ws, threads);
}

void sgi_wino_train_backward_map(const struct sg_conv_geom *g, const int *cmap, const int *kmap,
                                 const float *x, const float *w, const struct sgi_kept *kp,
                                 const float *dy, float *dx, float *dw, float *ws, int threads) {
    if (threads < 1) threads = 1;
    /* weight gradient: per thread V (x tiles), D (dy tiles) and its 16-point sum */
    const struct pass f = pass_of(g->n, g->c, g->k, g->h, g->w, g->p, g->q, g->pt, g->pl, threads);
    const size_t kc = kc_len(g), per = f.vlen + f.mlen + kc;
    float *base = ws + kc;
    int used = 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, team = 1;
        sgi_omp_team(&t, &team);
#pragma omp single
        used = team;
        float *v = base + (size_t)t * per, *d = v + f.vlen, *acc = d + f.mlen;
        int first = 1;
#pragma omp for schedule(static)
        for (int sl = 0; sl < f.nslices; sl++) {
            const int n0 = sl * f.nb, nb = g->n - n0 < f.nb ? g->n - n0 : f.nb;
            const int T = nb * (int)tiles_of(g->p, g->q);
            input_tiles(x, cmap, g->c, g->n, g->h, g->w, n0, nb, g->p, g->q, g->pt, g->pl, v);
            grad_tiles(dy, kmap, g->k, g->n, g->p, g->q, n0, nb, d);
            for (int e = 0; e < 16; e++)
                if (kp)
                    sparse_wgrad(g->k, g->c, T, d + (size_t)e * g->k * T, v + (size_t)e * g->c * T,
                                 kp->fp, kp->fi, first, acc + (size_t)e * g->k * g->c);
                else
                    sgi_sgemm(0, 1, g->k, g->c, T, 1.0f, d + (size_t)e * g->k * T, T,
                              v + (size_t)e * g->c * T, T, first ? 0.0f : 1.0f,
                              acc + (size_t)e * g->k * g->c, g->c);
            first = 0;
        }
        if (first) memset(acc, 0, 16 * (size_t)g->k * g->c * sizeof *acc);
    }
    /* the threads' sums in thread order, into the first one's */
    const size_t len = 16 * (size_t)g->k * g->c;
    for (int t = 1; t < used; t++) {
        float *a0 = base + f.vlen + f.mlen;
        const float *at = base + (size_t)t * per + f.vlen + f.mlen;
        for (size_t i = 0; i < len; i++) a0[i] += at[i];
    }
    weight_grad_out(base + f.vlen + f.mlen, g->k, g->c, dw);
    if (!dx) return;
    /* input gradient: the forward of dy with turned filters */
    struct pass d = pass_of(g->n, g->k, g->c, g->p, g->q, g->h, g->w, 2 - g->pt, 2 - g->pl, threads);
    d.imap = kmap, d.omap = cmap;
    weight_transform(w, g->k, g->c, 1, ws);
    run_pass(&d, dy, ws, dx, 1, kp ? kp->bp : NULL, kp ? kp->bi : NULL, ws + kc, threads);
}
