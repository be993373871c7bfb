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
 * suffix (.sgm today; other formats register here as they are added).
 * Limits: 2^20 nodes and parameters, 2^36 elements, 64 GiB files.
 */
#ifndef SPARSEGRAIN_IO_H
#define SPARSEGRAIN_IO_H

#include "sparsegrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_SGM_VERSION 1

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

/* Format dispatch by suffix. */
enum sg_status sg_model_load_any(const char *path, struct sg_model **out);
enum sg_status sg_model_save_any(const struct sg_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
