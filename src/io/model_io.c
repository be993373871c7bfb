/* Choosing a model format from a file name, or from its first bytes: the one model
 * loader, for every format we read (.sgm, .sgz, ONNX, NumPy, TF.js). */
#include <ctype.h>
#include <errno.h>

#include "core/sgi.h"
#include "sparsegrain/io.h"

enum fmt { FMT_UNKNOWN, FMT_SGM, FMT_SGZ, FMT_ONNX, FMT_NPZ, FMT_NPY, FMT_TFJS };

static enum fmt by_suffix(const char *path) {
    if (sgi_has_suffix(path, ".sgm")) return FMT_SGM;
    if (sgi_has_suffix(path, ".sgz")) return FMT_SGZ;
    if (sgi_has_suffix(path, ".onnx")) return FMT_ONNX;
    if (sgi_has_suffix(path, ".npz")) return FMT_NPZ;
    if (sgi_has_suffix(path, ".npy")) return FMT_NPY;
    if (sgi_has_suffix(path, ".json")) return FMT_TFJS;
    return FMT_UNKNOWN;
}

/* The magic numbers of the formats; ONNX has none, but a ModelProto almost always
 * starts with field 1 (ir_version, varint: 0x08) and a small value. */
static enum fmt sniff(const char *path) {
    uint8_t b[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return FMT_UNKNOWN;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n >= 8 && memcmp(b, SG_SGM_MAGIC, 8) == 0) return FMT_SGM;
    if (n >= 8 && memcmp(b, SG_SGZ_MAGIC, 8) == 0) return FMT_SGZ;
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) return FMT_NPY;
    if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) return FMT_NPZ;
    if (n >= 2 && b[0] == 0x08 && b[1] > 0 && b[1] < 0x20) return FMT_ONNX;
    for (size_t i = 0; i < n; i++)
        if (!isspace(b[i])) return b[i] == '[' || b[i] == '{' ? FMT_TFJS : FMT_UNKNOWN;
    return FMT_UNKNOWN;
}

enum sg_status sg_model_load_any(const char *path, struct sg_model **out) {
    *out = NULL;
    enum fmt f = by_suffix(path);
    if (f == FMT_UNKNOWN) f = sniff(path);
    switch (f) {
    case FMT_SGM: return sg_model_load(path, out);
    case FMT_SGZ: return sg_sgz_read(path, out, NULL);
    case FMT_ONNX: return sg_onnx_load(path, out);
    case FMT_NPZ:
    case FMT_NPY: return sg_npy_load(path, out);
    case FMT_TFJS: return sg_tfjs_load(path, out);
    default: break;
    }
    FILE *f2 = fopen(path, "rb");
    if (!f2) return sgi_error(SG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t b[4] = {0};
    const size_t n = fread(b, 1, sizeof b, f2);
    fclose(f2);
    if (n == 4 && b[0] == 0 && b[1] == 0 && b[2] == 0x08 && b[3] >= 1 && b[3] <= 4)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: an IDX data file (images or labels), not a model; data folders "
                         "go to --data-dir",
                         path);
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: gzip-compressed, not a model (expected .sgm, .onnx, .npz, .npy or "
                         "a TF.js weights manifest .json)",
                         path);
    return sgi_error(SG_ERR_UNSUPPORTED,
                     "%s: unknown model format (expected .sgm, .onnx, .npz, .npy or a TF.js "
                     "weights manifest .json)",
                     path);
}

enum sg_status sg_model_save_any(const struct sg_model *m, const char *path) {
    switch (by_suffix(path)) {
    case FMT_SGM: return sg_model_save(m, path, NULL);
    case FMT_ONNX: return sg_onnx_save(m, path, 0);
    case FMT_NPZ: return sg_npz_save(m, path);
    default: break;
    }
    return sgi_error(SG_ERR_UNSUPPORTED, "%s: unknown output format (expected .sgm, .onnx or .npz)",
                     path);
}
