/* The tile transforms of the Winograd training passes (src/nn/wino_train.c
 * drives them): F(2x2,3x3) in src/nn/wino_f2.c (4x4 points), F(4x4,3x3) in
 * src/nn/wino_f4.c (6x6 points). Both lay out the tiles of a slice of nb images
 * the same way: per image, ceil(op/m) bands of ceil(oq/m) tiles; F(2x2) adds a
 * padding tile to every band (its outputs are dropped, its dy tile is zero), so
 * that all its transforms run over whole chunks of bands with contiguous,
 * shifted reads; F(4x4) computes the input transform that way but stores the
 * tiles without padding (the GEMMs, 36 points, then carry no waste).
 * Transformed arrays are [a*a points][ch][T], T = nb * sgi_wino_tiles(op, oq, m, pad),
 * channel rows sgi_wino_ld(T) floats apart (T rounded up to 16: every row starts
 * on a cache line, so the products' loads and stores of 16 tiles are aligned),
 * points sgi_wino_pstride(ch, T) floats apart. */
#ifndef SPARSEGRAIN_NN_WINO_H
#define SPARSEGRAIN_NN_WINO_H

#include <stddef.h>

#include "core/sgi.h"

/* Tiles of one image for an op x oq output and m x m output tiles, with (pad 1)
 * or without (pad 0) a padding tile a band. */
static inline size_t sgi_wino_tiles(int op, int oq, int m, int pad) {
    return (size_t)((op + m - 1) / m) * ((oq + m - 1) / m + pad);
}

/* Floats from one channel's row of T tiles to the next: T rounded up to 16. The
 * entries past T are never read. Misaligned rows (T = 147 on VGG-7's conv2 at
 * the usual slice) cost the Intel Xeon much more than the AMD EPYC: aligned, the
 * dy transform of that slice went 56.5 -> 34.7 us there (22.2 -> 19.3 on the AMD
 * EPYC) and the products about a tenth faster (bench/wino_split). */
static inline size_t sgi_wino_ld(size_t T) { return sgi_round16(T); }

/* Floats from one point's [ch][T] array to the next: a cache line more than
 * ch * ld(T), so that the 16 or 36 points of a tile, written and read together,
 * do not fall on the same L1 set when that is a multiple of 4 KiB. */
static inline size_t sgi_wino_pstride(size_t ch, size_t T) { return ch * sgi_wino_ld(T) + 16; }

/* Tiles per chunk of bands the transforms work on: the gathered inputs and the
 * outputs stay in L1/L2 and on the stack. */
#define SGI_WINO_CHUNK 512

static inline int sgi_wino_bands(int tq) {
    const int b = SGI_WINO_CHUNK / (tq + 1);
    return b < 1 ? 1 : b;
}

/* The transforms copy short rows: plain loops, kept from becoming libc memset
 * and memcpy calls (GCC's loop-idiom pass), which cost more than the copy here. */
#define SGI_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* One tile size's transforms. */
struct sgi_wino_tf {
    int m, a; /* output tiles m x m, a = m + 2 points a side */
    int pad;  /* 1: a padding tile ends every band */
    /* V[a*a][ch][T] = B^T d B of the tiles of images n0..n0+nb of x[][n][h][w]
     * (channel c read from plane map[c]), tile (ty, tx) read from (m ty - pt, m tx - pl) */
    void (*input)(const float *x, const int *map, int ch, int n, int h, int w, int n0, int nb,
                  int op, int oq, int pt, int pl, float *v);
    /* M[a*a][ch][T] -> y[map[c]][n][op][oq] (= when accumulate is 0, += when 1, = 0 + v
     * when 2: the bits of adding to a zeroed y, not read): A^T m A */
    void (*output)(const float *mt, const int *map, int ch, int n, int n0, int nb, int op, int oq,
                   int accumulate, float *y);
    /* D[a*a][k][T] = A d A^T of the m x m tiles of dy[map[c]][n][op][oq] */
    void (*grad)(const float *dy, const int *map, int k, int n, int op, int oq, int n0, int nb,
                 float *dt);
    /* u[p * us] = (G g G^T)[p] of one 3x3 kernel g, p = 0 .. a*a-1 (sgi_wino_weights runs it
     * over every kernel) */
    void (*kernel)(const float g[3][3], float *u, size_t us);
    /* the same on 16 kernels at a time, g[r * 3 + s][kernel] -> u[p][kernel] (NULL: use kernel) */
    void (*kernel16)(const float g[9][16], float u[][16]);
    /* dw[k][c][3][3] = G^T m G of the summed points m[a*a][k][c] */
    void (*weight_grad)(const float *m, int k, int c, float *dw);
};

extern const struct sgi_wino_tf sgi_wino_f2, sgi_wino_f4;

/* U[a*a][ko][ki] = G g G^T of the 3x3 kernels of w[k][c]; dgrad reads w[k][c] as the
 * 180-degree turned filter of (ko = c, ki = k). */
void sgi_wino_weights(const struct sgi_wino_tf *tf, const float *w, int k, int c, int dgrad,
                      float *u);

/* 1 (default): the backward runs the input gradient slice by slice inside the
 * weight gradient's loop where the two passes slice alike (same bits; dy then
 * read from cache the second time); 0: the two passes one after the other
 * (tests and benchmarks compare them). */
void sgi_wino_train_fuse_backward(int on);

#endif
