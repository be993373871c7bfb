/* Winograd F(2x2,3x3) tile transforms for the training passes (driven by
 * src/nn/wino_train.c; layout in src/nn/wino.h): 4x4 input tiles at stride 2,
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]  (interpolation points 0, 1, -1 and infinity).
 * The input rows of a chunk of bands are split by row parity into even and odd
 * columns, so that entry (i, j) of every tile of the chunk is one array read at a
 * fixed shift, and every transform is elementwise over the tiles of the chunk. */
#include "core/sgi.h"
#include "nn/wino.h"

#define NO_LIBCALLS SGI_NO_LIBCALLS
#define tiles_of(op, oq) sgi_wino_tiles(op, oq, 2, 1)
#define bands_per_chunk sgi_wino_bands

/* V[16][ch][T] of images n0..n0+nb: tiles of an op x oq output over an input plane
 * of h x w read from (2 ty - pt, 2 tx - pl). Per chunk of tile bands: the padded
 * input rows split by row parity into even and odd columns (E, O: L = tq + 1
 * entries a row), so that entry (i, j) of every tile of the chunk is one of these
 * arrays read at a fixed shift; then B^T d B elementwise over the whole chunk. */
NO_LIBCALLS static void input_tiles(const float *x, const int *map, int ch, int n, int h, int w,
                                    int n0, int nb, int op, int oq, int pt, int pl, float *v) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, vs = sgi_wino_pstride(ch, T);
    /* [parity][band][L] with one band and one entry of slack for the shifted reads */
    const int cap = (bc + 1) * L + 1;
    float ee[2][cap], oo[2][cap];
    float r[4][4][bc * L];
    for (int par = 0; par < 2; par++)
        for (int t = 0; t < cap; t++) ee[par][t] = oo[par][t] = 0;
    for (int c = 0; c < ch; c++)
        for (int b = 0; b < nb; b++) {
            const float *plane = x + ((size_t)(map ? map[c] : c) * n + n0 + b) * h * w;
            float *vc = v + (size_t)c * sgi_wino_ld(T) + (size_t)b * ti;
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

/* M[16][ch][T] -> y[ch][n][op][oq] (= when accumulate is 0, += when 1, = 0 + v when
 * 2): A^T m A per tile, clipped at the
 * edge; elementwise over a chunk of tiles, then the four outputs of every tile
 * interleaved into the rows. */
NO_LIBCALLS static void output_tiles(const float *mt, const int *map, int ch, int n, int n0, int nb,
                                     int op, int oq, int accumulate, float *y) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, ms = sgi_wino_pstride(ch, T);
    float t2[2][4][bc * L], o[2][2][bc * L];
    for (int c = 0; c < ch; c++)
        for (int b = 0; b < nb; b++) {
            float *plane = y + ((size_t)(map ? map[c] : c) * n + n0 + b) * op * oq;
            const float *mc = mt + (size_t)c * sgi_wino_ld(T) + (size_t)b * ti;
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
                        if (accumulate == 2) { /* 0 + v: adding to a zeroed y */
                            for (int t = 0; t < full; t++)
                                dst[2 * t] = 0.0f + e[t], dst[2 * t + 1] = 0.0f + od[t];
                            if (oq & 1) dst[oq - 1] = 0.0f + e[full];
                        } else if (accumulate) {
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

/* u[p * us], p = 0..15: G f G^T of one 3x3 kernel f, G rows [1 0 0], [1/2 1/2 1/2],
 * [1/2 -1/2 1/2], [0 0 1]. */
static void g_kernel(const float f[3][3], float *u, size_t us) {
    float t[4][3];
    for (int s = 0; s < 3; s++) {
        t[0][s] = f[0][s];
        t[1][s] = 0.5f * (f[0][s] + f[1][s] + f[2][s]);
        t[2][s] = 0.5f * (f[0][s] - f[1][s] + f[2][s]);
        t[3][s] = f[2][s];
    }
    for (int i = 0; i < 4; i++) {
        u[(i * 4 + 0) * us] = t[i][0];
        u[(i * 4 + 1) * us] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[(i * 4 + 2) * us] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[(i * 4 + 3) * us] = t[i][2];
    }
}

/* dy tiles: A d A^T of the 2x2 tiles of dy[k][n][p][q] (zero beyond the edge and
 * in the padding tile of every band) into D[16][k][T]: per chunk of bands, the
 * four entries of every tile gathered over the tiles, then rows
 * A d = [d0, d0 + d1, d0 - d1, -d1] and the same on columns. */
NO_LIBCALLS static void grad_tiles(const float *dy, const int *map, int k, int n, int op, int oq,
                                   int n0, int nb, float *dt) {
    const int tp = (op + 1) / 2, tq = (oq + 1) / 2, L = tq + 1, bc = bands_per_chunk(tq);
    const size_t ti = tiles_of(op, oq), T = (size_t)nb * ti, ds = sgi_wino_pstride(k, T);
    float g[2][2][bc * L], r[4][2][bc * L];
    for (int c = 0; c < k; c++)
        for (int b = 0; b < nb; b++) {
            const float *plane = dy + ((size_t)(map ? map[c] : c) * n + n0 + b) * op * oq;
            float *dc = dt + (size_t)c * sgi_wino_ld(T) + (size_t)b * ti;
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

const struct sgi_wino_tf sgi_wino_f2 = {2, 4, 1, input_tiles, output_tiles, grad_tiles,
                                        g_kernel, NULL, weight_grad_out};
