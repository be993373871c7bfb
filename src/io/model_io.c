/* Choosing a model format from a file name. */
#include "core/sgi.h"
#include "sparsegrain/io.h"

enum sg_status sg_model_load_any(const char *path, struct sg_model **out) {
    if (sgi_has_suffix(path, ".sgm")) return sg_model_load(path, out);
    return sgi_error(SG_ERR_UNSUPPORTED, "%s: unknown model format (expected .sgm)", path);
}

enum sg_status sg_model_save_any(const struct sg_model *m, const char *path) {
    if (sgi_has_suffix(path, ".sgm")) return sg_model_save(m, path, NULL);
    return sgi_error(SG_ERR_UNSUPPORTED, "%s: unknown output format (expected .sgm)", path);
}
