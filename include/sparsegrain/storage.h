/* sparsegrain/storage.h - compressed weight storage: sparse formats with real
 * encoders and decoders and value quantisation (a whole model in one format, the
 * .sgz file, is in sparsegrain/io.h).
 *
 * A layer (struct sg_wview, W[K][C][R][S] with its mask) is encoded into one
 * byte stream per format. Every size this module reports is the length of that
 * stream, broken down into value, index, filler, metadata and padding bits:
 *
 *     struct sg_storage_cfg cfg;
 *     sg_storage_cfg_default(&cfg);            // f32 values, b_i = 4 conv / 5 fc
 *     cfg.tile = (struct sg_tile){1, 1, 0, 0}; // kernel groups (0 = whole dim)
 *     uint8_t *blob; size_t len; struct sg_size sz;
 *     if (sg_encode(SG_FORMAT_GROUP, &view, &cfg, &blob, &len, &sz) != SG_OK)
 *         ... sg_last_error() ...
 *     // len == sz.bytes; sz.value_bits + ... + sz.pad_bits == 8 * len
 *     cfg.index_bits = sz.index_width;         // the decoder needs the b_i used
 *     struct sg_wview out = view;              // same shape, caller's buffers
 *     out.w = w2; out.mask = m2;
 *     sg_decode(SG_FORMAT_GROUP, blob, len, &cfg, &out);  // mask and values exact
 *     sg_blob_free(blob);
 *
 * Stream layout shared by all formats (docs/file-format.md has every field):
 * a 4-byte CRC-32 of the rest of the stream, then a bit stream written least
 * significant bit first: the value coding's metadata (8-bit scale or codebook),
 * the format's own fields, the entries, and zero bits up to the next byte. The
 * shape and the configuration are not in the stream (the .sgz header has them).
 *
 * Values: 32-bit float (lossless), IEEE half (round to nearest even), 8-bit
 * linear symmetric (per-layer scale, codes -127..127) or k-bit codebook indices
 * (k-means per layer, 2^k - 1 shared values). In every coding one code is
 * reserved for "pruned": it fills zero runs (filler entries) and the pruned
 * positions inside a stored group, so decoding restores the mask exactly even
 * when a kept weight is 0 (f32 0xFFFFFFFF, f16 0xFFFF, 8-bit -128, codebook
 * 2^k - 1; NaN weights are stored as the canonical quiet NaN).
 *
 * Ownership: sg_encode's blob is released with sg_blob_free; decode writes into
 * the caller's out->w and out->mask (K*C*R*S each). The library never prints.
 * Limits: 2^40 weights per layer, index widths 1..16, codebooks of 1..16 bits,
 * N:M with 1 <= N <= M <= 32.
 */
#ifndef SPARSEGRAIN_STORAGE_H
#define SPARSEGRAIN_STORAGE_H

#include "sparsegrain/core.h"
#include "sparsegrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stored in .sgz files: explicit values, append-only. */
enum sg_format {
    SG_FORMAT_DENSE = 0,  /* every weight, pruned ones as the reserved code */
    SG_FORMAT_RELIDX = 1, /* Deep Compression: b_i-bit zero run + value per kept weight */
    SG_FORMAT_GROUP = 2,  /* one b_i-bit run (counted in tiles) per kept tile, tile values dense */
    SG_FORMAT_CSR = 3,    /* rows = filters; row ends + absolute column index per kept weight */
    SG_FORMAT_BITMAP = 4, /* one bit per weight + the kept values */
    SG_FORMAT_RLE4 = 5,   /* SCNN: zero runs (4 bits by default) over the Kc x R x S blocks */
    SG_FORMAT_NM = 6,     /* N:M along C: combination code + N value slots per group of M */
    SG_FORMAT_BCSR = 7,   /* block CSR, the tile is the block */
    SG_FORMAT_COUNT
};
const char *sg_format_name(enum sg_format f); /* "dense", "relidx", ... */
int sg_format_from_name(const char *name);    /* -1 if unknown */
const char *sg_format_summary(enum sg_format f);

/* Value codings. Stored in .sgz files: explicit values, append-only. */
enum sg_values {
    SG_VALUES_F32 = 0,
    SG_VALUES_F16 = 1,
    SG_VALUES_Q8 = 2,       /* linear symmetric, scale = max|w| / 127 */
    SG_VALUES_CODEBOOK = 3, /* k-bit indices into a per-layer k-means codebook */
    SG_VALUES_COUNT
};
const char *sg_values_name(enum sg_values v); /* "f32", "f16", "q8", "codebook" */
int sg_values_from_name(const char *name);    /* -1 if unknown */

#define SG_INDEX_BITS_AUTO 0   /* per layer, the b_i in 1..16 giving the fewest bytes */
#define SG_INDEX_BITS_PAPER -1 /* the paper's defaults: 4 conv, 5 fc (rle4: 4) */
#define SG_STORAGE_MAX_WEIGHTS ((int64_t)1 << 40)

struct sg_storage_cfg {
    enum sg_values values;
    int codebook_bits;   /* SG_VALUES_CODEBOOK: k in 1..16 (2^k - 1 shared values) */
    int kmeans_iters;    /* codebook: Lloyd iterations at most; 0 = linear codebook */
    int index_bits;      /* relidx, group, rle4: 1..16, SG_INDEX_BITS_AUTO or _PAPER */
    struct sg_tile tile; /* group, bcsr: tile extents, 0 = the whole dimension */
    int kc;              /* rle4: output channels per block (SCNN's Kc), >= 1 */
    int nm_n, nm_m;      /* nm: at most N kept weights in every M consecutive along C */
};
/* f32, codebook 8 bits / 100 iterations, b_i paper, fine tile, Kc 8, 2:4. */
void sg_storage_cfg_default(struct sg_storage_cfg *cfg);
/* Granularity name -> tile: fine 1x1x1x1, vector 1x1x1xS, kernel 1x1xRxS,
 * filter 1xCxRxS, channel Kx1xRxS, block:KxCxRxS (numbers; 0 = whole dim). */
enum sg_status sg_storage_tile_parse(const char *name, struct sg_tile *out);

/* Sizes in bits; value + index + filler + meta + pad bits == 8 * bytes. */
struct sg_size {
    int64_t values;      /* value slots of non-filler entries (kept weights; whole tiles
                            for group and bcsr; N per group for nm; every weight for dense) */
    int64_t entries;     /* index entries: runs (incl. fillers), csr/bcsr columns, nm groups */
    int64_t fillers;     /* filler entries (relidx, group, rle4) */
    int64_t value_bits;  /* values * value width */
    int64_t index_bits;  /* where the values are: runs, columns, bitmap bits, N:M codes */
    int64_t filler_bits; /* filler entries: their index and (reserved) value slots */
    int64_t meta_bits;   /* CRC-32, counts, row pointers, 8-bit scale, codebook */
    int64_t pad_bits;    /* zero bits up to a whole byte (0..7) */
    int64_t bytes;       /* length of the encoded stream */
    int index_width;     /* b_i used (relidx, group, rle4), else 0 */
};
/* Dense float32 bytes (4 * weights) / bytes. */
double sg_size_ratio(const struct sg_size *s, int64_t weights);

/* Size of v's encoding without encoding it (same numbers as sg_encode). */
enum sg_status sg_storage_size(enum sg_format f, const struct sg_wview *v,
                               const struct sg_storage_cfg *cfg, struct sg_size *out);
/* Encodes v (values quantised per cfg->values). *out is released with
 * sg_blob_free; size may be NULL. Fails with SG_ERR_ARG when the mask does not
 * fit the format (nm: more than N kept in a group) or values are not finite
 * (8-bit, codebook). */
enum sg_status sg_encode(enum sg_format f, const struct sg_wview *v,
                         const struct sg_storage_cfg *cfg, uint8_t **out, size_t *len,
                         struct sg_size *size);
void sg_blob_free(uint8_t *blob);
/* Decodes into out->w and out->mask (shape taken from out). cfg->index_bits
 * must be the width the encoder used (1..16) or SG_INDEX_BITS_PAPER. Untrusted
 * input: checksum, counts, positions and the exact length are checked. */
enum sg_status sg_decode(enum sg_format f, const uint8_t *blob, size_t len,
                         const struct sg_storage_cfg *cfg, struct sg_wview *out);
/* Integrity check of an untrusted stream for the shape in v (v->w, v->mask are
 * not used): SG_OK exactly when sg_decode would succeed. */
enum sg_status sg_validate(enum sg_format f, const uint8_t *blob, size_t len,
                           const struct sg_storage_cfg *cfg, const struct sg_wview *v);

/* ---- value coding ---- */
/* Replaces each kept weight by the value the decoder returns for cfg->values
 * (f32: NaN canonicalised; f16 rounding; 8-bit; codebook); pruned weights
 * become 0. decode(encode(v)) == quantize(v) bit for bit. */
enum sg_status sg_quantize_layer(struct sg_wview *v, const struct sg_storage_cfg *cfg);
/* IEEE binary16 conversions; float -> half rounds to nearest, ties to even. */
uint16_t sg_f32_to_f16(float x);
float sg_f16_to_f32(uint16_t h);
/* 1-D k-means (Lloyd) of x[0..n) into k sorted centroids, initialised evenly
 * between min and max; a value at a midpoint joins the lower centroid; an empty
 * cluster keeps its centroid. Returns the iterations run through *iters (may be
 * NULL). n == 0 gives zeros. */
enum sg_status sg_kmeans_1d(const float *x, size_t n, int k, int max_iters, float *centroids,
                            int *iters);

/* ---- weight sharing (quantised fine-tuning, Deep Compression) ---- */
struct sg_share;
/* Clusters the kept weights of an already quantised layer by value (at most
 * max_clusters distinct values, else SG_ERR_ARG). */
enum sg_status sg_share_new(const struct sg_wview *v, int max_clusters, struct sg_share **out);
/* Sets every cluster to the mean of its members' current values (pruned stay 0). */
void sg_share_project(struct sg_share *s, struct sg_wview *v);
int32_t sg_share_clusters(const struct sg_share *s);
/* Quantises every conv/fc weight of m in place to a per-layer codebook of
 * 2^bits - 1 values (conv_bits for conv, fc_bits for fc layers), k-means or
 * linear; masks are kept. Exactly what the codebook value coding stores. */
enum sg_status sg_quantize_model(struct sg_model *m, int conv_bits, int fc_bits, int kmeans);
void sg_share_free(struct sg_share *s);

#ifdef __cplusplus
}
#endif
#endif
