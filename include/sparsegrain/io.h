/* sparsegrain/io.h - model files.
 *
 *     struct sg_model *m;
 *     if (sg_model_load("lenet5.sgm", &m) != SG_OK) { ... sg_last_error() ... }
 *     sg_model_save(m, "copy.sgm", NULL);      // atomic: temp file + fsync + rename
 *
 * .sgm is our versioned container (docs/file-format.md documents every byte):
 * architecture, named tensors with masks, metadata, optionally the optimizer
 * state for resuming training, and a CRC-32 over the whole file. Loading checks
 * sizes, offsets, shapes and the checksum and names the file in every error.
 *
 * sg_model_load_any / sg_model_save_any choose the format from the file name
 * suffix, or, for an unknown suffix, from the first bytes of the file:
 *   .sgm   our container (read and write)
 *   .sgz   our container with the conv/fc weights encoded in one storage format
 *          (read; sg_sgz_write writes it, see below)
 *   .onnx  ONNX (read and write): a graph whose ops we all have becomes a runnable
 *          model; any other graph becomes a weights-only model (n_nodes == 0) whose
 *          metadata "unsupported_ops" lists what we lack. A model read from ONNX
 *          keeps the original graph (m->ext): writing it to .onnx again puts the
 *          masked weights back into that same graph.
 *   .npz   NumPy zip (write: every tensor and its mask; read: weights only)
 *   .npy   one NumPy array (read: weights only)
 *   .json  a TF.js weights manifest with its .bin shards (read: weights only)
 * The model's input preprocessing (m->preproc, data.h) travels in every format that
 * can hold it: .sgm its INPT section, .onnx the metadata_props entry SG_INPUT_NORM_KEY,
 * .npz a string array of that name; both hold sg_preproc_format's text. A file
 * without it loads with the preprocessing not stated.
 * Layouts on import: 4-D tensors are conv weights W[K][C][R][S] (OIHW), 2-D tensors
 * fully connected weights W[K][C]; TF.js HWIO kernels and [in][out] dense kernels are
 * transposed to these. docs/file-format.md has the details of every mapping.
 *
 *     struct sg_model *m;
 *     if (sg_model_load_any("resnet.onnx", &m) != SG_OK) { ... sg_last_error() ... }
 *     if (sg_model_check_runnable(m, "resnet.onnx") != SG_OK) { weights-only commands }
 *     sg_model_save_any(m, "pruned.onnx");
 *
 * Limits: 2^20 nodes and parameters, 2^36 elements, 64 GiB files.
 */
#ifndef SPARSEGRAIN_IO_H
#define SPARSEGRAIN_IO_H

#include "sparsegrain/nn.h"
#include "sparsegrain/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_SGM_VERSION 1
/* ONNX metadata_props key and .npz array name of the input preprocessing's text form. */
#define SG_INPUT_NORM_KEY "sparsegrain.input_norm"
/* The first 8 bytes of each of our containers (the string and its NUL), the one
 * definition every reader, writer and sniffer uses. */
#define SG_SGM_MAGIC "SGMODEL"
#define SG_SGZ_MAGIC "SGZMODL"

/* st may be NULL; when given, the optimizer state is stored too (for --resume). */
enum sg_status sg_model_save(const struct sg_model *m, const char *path,
                             const struct sg_train_state *st);
enum sg_status sg_model_load(const char *path, struct sg_model **out);
/* Loads model and optimizer state; *st is NULL when the file has none. */
enum sg_status sg_model_load_state(const char *path, struct sg_model **out,
                                   struct sg_train_state **st);
/* In-memory forms (what = name used in messages). */
enum sg_status sg_model_serialize(const struct sg_model *m, const struct sg_train_state *st,
                                  uint8_t **buf, size_t *len);
enum sg_status sg_model_deserialize(const uint8_t *buf, size_t len, const char *what,
                                    struct sg_model **out, struct sg_train_state **st);

/* Format dispatch by suffix (load: by content when the suffix is unknown). */
enum sg_status sg_model_load_any(const char *path, struct sg_model **out);
enum sg_status sg_model_save_any(const struct sg_model *m, const char *path);
/* SG_OK when m can run forward; otherwise SG_ERR_UNSUPPORTED with a message such as
 * "model.onnx: cannot run: ops Resize, Sigmoid are not supported (weights-only
 * commands work)". what names the file in the message. */
enum sg_status sg_model_check_runnable(const struct sg_model *m, const char *what);

/* ---- ONNX ---- */
#define SG_ONNX_MASKS 1u /* export: add each mask as a uint8 initializer "<tensor>.mask" */
enum sg_status sg_onnx_load(const char *path, struct sg_model **out);
enum sg_status sg_onnx_load_mem(const uint8_t *buf, size_t len, const char *what,
                                struct sg_model **out);
enum sg_status sg_onnx_save(const struct sg_model *m, const char *path, unsigned flags);
enum sg_status sg_onnx_serialize(const struct sg_model *m, unsigned flags, uint8_t **buf,
                                 size_t *len);

/* ---- NumPy ---- */
/* Every parameter as "<name>.npy" (float32, its shape) and "<name>.mask.npy" (uint8). */
enum sg_status sg_npz_save(const struct sg_model *m, const char *path);
enum sg_status sg_npz_serialize(const struct sg_model *m, uint8_t **buf, size_t *len);
/* A weights-only model from a .npz (every float array) or a .npy (one array; its name
 * is the file name without .npy). Arrays "<name>.mask" become the masks of "<name>". */
enum sg_status sg_npy_load(const char *path, struct sg_model **out);
enum sg_status sg_npy_load_mem(const uint8_t *buf, size_t len, const char *what,
                               struct sg_model **out);

/* ---- TF.js ---- */
/* A weights-only model from a TF.js weights manifest and its shards (paths relative
 * to the manifest). */
enum sg_status sg_tfjs_load(const char *manifest, struct sg_model **out);
/* The same from memory: manifest[0..len) is the JSON text, shards[0..shards_len) the
 * bytes of every group's shards back to back, in manifest order (paths are not opened;
 * what names the input in messages). */
enum sg_status sg_tfjs_load_mem(const uint8_t *manifest, size_t len, const uint8_t *shards,
                                size_t shards_len, const char *what, struct sg_model **out);

/* ---- .sgz: a whole model, weights encoded in one format ---- */
/*     sg_sgz_write(model, SG_FORMAT_GROUP, &cfg, "m.sgz", &info);   // sparsegrain/storage.h's cfg
 *     sg_sgz_read("m.sgz", &model2, &info);
 * The architecture and metadata are the .sgm sections; the weights are the
 * storage module's streams (docs/file-format.md, section ".sgz"). */
struct sg_sgz_info {
    enum sg_format format;
    int32_t n_layers;      /* encoded conv/fc weights */
    uint64_t file_bytes;   /* == layer_bytes + overhead_bytes */
    uint64_t layer_bytes;  /* sum of the streams: what sg_storage_size reports */
    uint64_t overhead_bytes; /* header + table + arch + other + crc below */
    uint64_t header_bytes;   /* 128 */
    uint64_t table_bytes;    /* 16 per layer */
    uint64_t arch_bytes;     /* architecture, parameter table, metadata (.sgm sections) */
    uint64_t other_bytes;    /* non-weight parameters raw: 4 bytes + 1 mask bit each */
    uint64_t crc_bytes;      /* 4 */
};
enum sg_status sg_sgz_serialize(const struct sg_model *m, enum sg_format f,
                                const struct sg_storage_cfg *cfg, uint8_t **buf, size_t *len,
                                struct sg_sgz_info *info);
/* Atomic write (temporary file, fsync, rename); info may be NULL. */
enum sg_status sg_sgz_write(const struct sg_model *m, enum sg_format f,
                            const struct sg_storage_cfg *cfg, const char *path,
                            struct sg_sgz_info *info);
enum sg_status sg_sgz_deserialize(const uint8_t *buf, size_t len, const char *what,
                                  struct sg_model **out, struct sg_sgz_info *info);
enum sg_status sg_sgz_read(const char *path, struct sg_model **out, struct sg_sgz_info *info);

#ifdef __cplusplus
}
#endif
#endif
