/* TF.js weights: a weights manifest (JSON, parsed with cJSON) lists groups of tensors;
 * each group's tensors lie back to back in the concatenation of its .bin shards.
 * Conversion to our layouts (docs/file-format.md):
 *   4-D conv kernel  [H][W][I][O]  -> W[O][I][H][W]            (conv layer)
 *   4-D depthwise    [H][W][I][M]  -> W[I*M][1][H][W]           (name has "depthwise")
 *   2-D dense kernel [in][out]     -> W[out][in]               (fc layer)
 *   other float tensors as stored (1-D ending in "bias"/"biases": biases).
 * Quantised tensors are dequantised: w = q * scale + min (uint8, uint16), or read as
 * float16. int32, bool and string tensors hold no weights and are skipped. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>

#include "core/sgi.h"
#include "io/half.h"
#include "sparsegrain/io.h"

#define MAX_MANIFEST ((size_t)64 << 20)
#define MAX_SHARDS ((size_t)64 << 30)
#define MAX_ELEMS ((uint64_t)1 << 36)
#define MAX_RANK 8

#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

enum stored { ST_F32, ST_F16, ST_U8, ST_U16, ST_I32, ST_BOOL, ST_C64, ST_STRING };
static const size_t ST_SIZE[] = {4, 2, 1, 2, 4, 1, 8, 0};

struct tensor {
    char name[SG_NAME_MAX];
    int rank;
    int64_t dims[MAX_RANK];
    size_t count;
    enum stored st;
    double scale, min;  /* uint8/uint16: w = q * scale + min */
    size_t group, offset, bytes; /* where in the group's shard bytes */
    int param;
    int depthwise;
};

static int name_has(const char *s, const char *w) {
    for (; *s; s++) {
        size_t i = 0;
        while (w[i] && tolower((unsigned char)s[i]) == w[i]) i++;
        if (!w[i]) return 1;
    }
    return 0;
}
static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* A shard path must stay beside the manifest: relative, without "..". */
static int safe_path(const char *p) {
    if (!*p || p[0] == '/' || strchr(p, '\\')) return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n + (e != NULL);
    }
    return 1;
}

static enum sg_status parse_weight(const cJSON *w, const char *what, size_t index,
                                   struct tensor *t) {
    memset(t, 0, sizeof *t);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(w, "name");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(w, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(w, "dtype");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(w, "quantization");
    if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsString(dtype))
        return BAD("%s: weight %zu lacks a name, shape or dtype", what, index);
    const char *nm = name->valuestring;
    if (strlen(nm) < SG_NAME_MAX) snprintf(t->name, sizeof t->name, "%s", nm);
    else snprintf(t->name, sizeof t->name, "%.80s~%zu", nm, index);
    const int rank = cJSON_GetArraySize(shape);
    if (rank > MAX_RANK)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' has %d dimensions (at most %d)", what, nm,
                         rank, MAX_RANK);
    uint64_t n = 1;
    const cJSON *d;
    int r = 0;
    cJSON_ArrayForEach(d, shape) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (!(v >= 0) || v != floor(v) || v > (double)MAX_ELEMS)
            return BAD("%s: '%s': dimension %d is not a size", what, nm, r);
        uint64_t u = (uint64_t)v;
        if (u && n > MAX_ELEMS / u) return sgi_error(SG_ERR_LIMIT, "%s: '%s' has more than 2^36 elements", what, nm);
        n *= u;
        t->dims[r++] = (int64_t)u;
    }
    t->rank = r;
    t->count = (size_t)n;
    const char *dt = dtype->valuestring;
    if (strcmp(dt, "float32") == 0) t->st = ST_F32;
    else if (strcmp(dt, "int32") == 0) t->st = ST_I32;
    else if (strcmp(dt, "bool") == 0) t->st = ST_BOOL;
    else if (strcmp(dt, "complex64") == 0) t->st = ST_C64;
    else if (strcmp(dt, "string") == 0) t->st = ST_STRING;
    else return sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' has unknown dtype '%s'", what, nm, dt);
    if (q) {
        const cJSON *qd = cJSON_GetObjectItemCaseSensitive(q, "dtype");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(q, "scale");
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(q, "min");
        if (!cJSON_IsObject(q) || !cJSON_IsString(qd))
            return BAD("%s: '%s': quantization without a dtype", what, nm);
        if (strcmp(qd->valuestring, "float16") == 0) {
            t->st = ST_F16;
        } else if (strcmp(qd->valuestring, "uint8") == 0 || strcmp(qd->valuestring, "uint16") == 0) {
            if (!cJSON_IsNumber(sc) || !cJSON_IsNumber(mn) || !isfinite(sc->valuedouble) ||
                !isfinite(mn->valuedouble))
                return BAD("%s: '%s': %s quantization needs a numeric scale and min", what, nm,
                           qd->valuestring);
            t->st = qd->valuestring[4] == '8' ? ST_U8 : ST_U16;
            t->scale = sc->valuedouble;
            t->min = mn->valuedouble;
        } else {
            return sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s': quantization dtype '%s' is not "
                             "supported (uint8, uint16, float16)", what, nm, qd->valuestring);
        }
    }
    t->bytes = t->count * ST_SIZE[t->st];
    t->param = -1;
    return SG_OK;
}

/* Bytes of a string tensor: each string is a u32 length and its bytes. */
static int string_bytes(const uint8_t *p, size_t left, size_t count, size_t *bytes) {
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        if (left - off < 4) return 0;
        uint32_t n = sgi_ld32(p + off);
        off += 4;
        if (n > left - off) return 0;
        off += n;
    }
    *bytes = off;
    return 1;
}

static float value(const struct tensor *t, const uint8_t *p, size_t i) {
    switch (t->st) {
    case ST_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case ST_F16: return sgi_half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    case ST_U8: return (float)(p[i] * t->scale + t->min);
    case ST_U16: return (float)((p[2 * i] | p[2 * i + 1] << 8) * t->scale + t->min);
    default: SG_ASSERT(!"not a float tensor");
    }
    return 0;
}

static enum sg_status read_group(const char *dir, const cJSON *paths, const char *what,
                                 uint8_t **out, size_t *len) {
    struct sgi_buf b = {0};
    const cJSON *p;
    char path[4096];
    cJSON_ArrayForEach(p, paths) {
        if (!cJSON_IsString(p) || !safe_path(p->valuestring)) {
            sgi_buf_free(&b);
            return BAD("%s: shard path %s%s%s must be relative to the manifest, without '..'",
                       what, cJSON_IsString(p) ? "'" : "", cJSON_IsString(p) ? p->valuestring : "(not a string)",
                       cJSON_IsString(p) ? "'" : "");
        }
        if ((size_t)snprintf(path, sizeof path, "%s%s", dir, p->valuestring) >= sizeof path) {
            sgi_buf_free(&b);
            return BAD("%s: shard path too long", what);
        }
        uint8_t *data;
        size_t n;
        enum sg_status st = sg_file_read(path, MAX_SHARDS - b.len, 0, &data, &n);
        if (st != SG_OK) {
            sgi_buf_free(&b);
            return sgi_error_prefix(st, what);
        }
        sgi_buf_put(&b, data, n);
        free(data);
        if (b.failed) {
            sgi_buf_free(&b);
            return sgi_error(SG_ERR_NOMEM, "out of memory reading shards of %s", what);
        }
    }
    *out = b.data;
    *len = b.len;
    return SG_OK;
}

static enum sg_status convert(struct sg_model *m, const struct tensor *t, const uint8_t *p) {
    float *w = sg_param_data(m, t->param);
    const struct sg_param *pp = &m->params[t->param];
    if (t->rank == 4 && t->depthwise) { /* [H][W][I][M] -> [I*M][1][H][W] */
        const size_t H = (size_t)t->dims[0], W = (size_t)t->dims[1], I = (size_t)t->dims[2],
                     M = (size_t)t->dims[3];
        for (size_t h = 0; h < H; h++)
            for (size_t x = 0; x < W; x++)
                for (size_t i = 0; i < I; i++)
                    for (size_t k = 0; k < M; k++)
                        w[((i * M + k) * H + h) * W + x] = value(t, p, ((h * W + x) * I + i) * M + k);
    } else if (t->rank == 4) { /* [H][W][I][O] -> [O][I][H][W] */
        const size_t H = (size_t)t->dims[0], W = (size_t)t->dims[1], I = (size_t)t->dims[2],
                     O = (size_t)t->dims[3];
        for (size_t h = 0; h < H; h++)
            for (size_t x = 0; x < W; x++)
                for (size_t i = 0; i < I; i++)
                    for (size_t o = 0; o < O; o++)
                        w[((o * I + i) * H + h) * W + x] = value(t, p, ((h * W + x) * I + i) * O + o);
    } else if (t->rank == 2) { /* [in][out] -> [out][in] */
        const size_t I = (size_t)t->dims[0], O = (size_t)t->dims[1];
        for (size_t i = 0; i < I; i++)
            for (size_t o = 0; o < O; o++) w[o * I + i] = value(t, p, i * O + o);
    } else {
        for (size_t i = 0; i < t->count; i++) w[i] = value(t, p, i);
    }
    if (pp->kind == SG_PARAM_WEIGHT) {
        uint8_t *mk = sg_param_mask(m, t->param);
        for (size_t i = 0; i < pp->count; i++) mk[i] = w[i] != 0.0f;
    }
    return SG_OK;
}

/* Where the shard bytes come from: files beside the manifest (dir), or one block in
 * memory holding every group's shards back to back (blob). */
struct source {
    const char *dir;
    const uint8_t *blob;
    size_t blob_len, used;
};

/* What a file that is not JSON is, when its first bytes tell (for the message). */
static const char *file_kind(const char *t, size_t len) {
    if (len >= 8 && memcmp(t, SG_SGM_MAGIC, 8) == 0) return "a sparsegrain model (.sgm)";
    if (len >= 8 && memcmp(t, SG_SGZ_MAGIC, 8) == 0) return "a compressed sparsegrain model (.sgz)";
    if (len >= 6 && memcmp(t, "\x93NUMPY", 6) == 0) return "a NumPy array (.npy)";
    if (len >= 4 && memcmp(t, "PK\x03\x04", 4) == 0) return "a zip archive (.npz?)";
    if (len >= 4 && t[0] == 0 && t[1] == 0 && t[2] == 8) return "an IDX data file";
    if (len >= 2 && (uint8_t)t[0] == 0x1f && (uint8_t)t[1] == 0x8b) return "gzip data";
    if (memchr(t, 0, len)) return "a binary file";
    return NULL;
}

/* A parameter per float tensor, in our layouts' shapes (HWIO conv kernels and [in][out]
 * dense kernels become OIHW and [out][in]; convert() moves the values later); the
 * other tensors are counted in *skipped. */
static enum sg_status add_params(struct sg_model *m, struct tensor *ts, size_t n_t,
                                 const char *manifest, size_t *skipped) {
    for (size_t i = 0; i < n_t; i++) {
        struct tensor *t = &ts[i];
        if (t->st == ST_I32 || t->st == ST_BOOL || t->st == ST_STRING || t->st == ST_C64 || !t->count) {
            (*skipped)++;
            continue;
        }
        enum sg_param_kind kind = SG_PARAM_OTHER;
        enum sg_layer_kind layer = SG_LAYER_NONE;
        int64_t d[4] = {1, 1, 1, 1};
        int nd = t->rank < 1 ? 1 : t->rank > 4 ? 4 : t->rank;
        if (t->rank == 4) {
            t->depthwise = name_has(t->name, "depthwise");
            kind = SG_PARAM_WEIGHT;
            layer = SG_LAYER_CONV;
            d[0] = t->depthwise ? t->dims[2] * t->dims[3] : t->dims[3];
            d[1] = t->depthwise ? 1 : t->dims[2];
            d[2] = t->dims[0];
            d[3] = t->dims[1];
        } else if (t->rank == 2) {
            kind = SG_PARAM_WEIGHT;
            layer = SG_LAYER_FC;
            d[0] = t->dims[1];
            d[1] = t->dims[0];
        } else {
            for (int r = 0; r < t->rank; r++) {
                int slot = r - (t->rank - nd); /* leading axes fold into the first */
                d[slot < 0 ? 0 : slot] *= t->dims[r];
            }
            if (t->rank == 1 && (ends_with(t->name, "bias") || ends_with(t->name, "biases")))
                kind = SG_PARAM_BIAS;
        }
        if ((t->param = sg_model_add_param(m, t->name, kind, layer, -1, nd, d)) < 0)
            return sgi_error_prefix(SG_ERR_FORMAT, manifest);
    }
    return SG_OK;
}

static enum sg_status load(const char *text, size_t len, const char *manifest,
                           struct source *src, struct sg_model **out) {
    *out = NULL;
    enum sg_status st = SG_OK;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *kind = file_kind(text, len);
        if (kind) return BAD("%s: %s, not a TF.js weights manifest (JSON)", manifest, kind);
        return BAD("%s: not valid JSON (a TF.js weights manifest is JSON text)", manifest);
    }
    const cJSON *groups = root;
    if (cJSON_IsObject(root)) /* a model.json: its manifest is inside */
        groups = cJSON_GetObjectItemCaseSensitive(root, "weightsManifest");
    struct tensor *ts = NULL;
    uint8_t **owned = NULL;
    const uint8_t **shards = NULL;
    size_t *shard_len = NULL, n_t = 0, n_g = 0, skipped = 0;
    struct sg_model *m = NULL;
    if (!cJSON_IsArray(groups)) {
        st = BAD("%s: not a TF.js weights manifest (expected a list of {paths, weights} groups)",
                 manifest);
        goto done;
    }
    n_g = (size_t)cJSON_GetArraySize(groups);
    size_t cap_t = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(g, "weights");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(g, "paths");
        if (!cJSON_IsArray(ws) || !cJSON_IsArray(ps)) {
            st = BAD("%s: a group lacks its 'paths' or 'weights' list", manifest);
            goto done;
        }
        cap_t += (size_t)cJSON_GetArraySize(ws);
    }
    if (cap_t > (1u << 20)) {
        st = sgi_error(SG_ERR_LIMIT, "%s: more than 2^20 weights", manifest);
        goto done;
    }
    ts = calloc(cap_t ? cap_t : 1, sizeof *ts);
    owned = calloc(n_g ? n_g : 1, sizeof *owned);
    shards = calloc(n_g ? n_g : 1, sizeof *shards);
    shard_len = calloc(n_g ? n_g : 1, sizeof *shard_len);
    if (!ts || !owned || !shards || !shard_len) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t gi = 0;
    cJSON_ArrayForEach(g, groups) {
        if (src->dir) {
            if ((st = read_group(src->dir, cJSON_GetObjectItemCaseSensitive(g, "paths"), manifest,
                                 &owned[gi], &shard_len[gi])) != SG_OK)
                goto done;
            shards[gi] = owned[gi];
        } else { /* the group's bytes start where the previous group's ended */
            shards[gi] = src->blob ? src->blob + src->used : (const uint8_t *)"";
            shard_len[gi] = src->blob_len - src->used;
        }
        size_t off = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(g, "weights")) {
            struct tensor *t = &ts[n_t];
            if ((st = parse_weight(w, manifest, n_t, t)) != SG_OK) goto done;
            if (t->st == ST_STRING &&
                !string_bytes(shards[gi] + off, shard_len[gi] - off, t->count, &t->bytes)) {
                st = BAD("%s: string tensor '%s' runs past the end of its shards", manifest, t->name);
                goto done;
            }
            if (t->bytes > shard_len[gi] - off) {
                st = BAD("%s: '%s' (%zu bytes at offset %zu) runs past the end of its shards "
                         "(%zu bytes)", manifest, t->name, t->bytes, off, shard_len[gi]);
                goto done;
            }
            t->group = gi;
            t->offset = off;
            off += t->bytes;
            n_t++;
        }
        if (!src->dir) {
            shard_len[gi] = off;
            src->used += off;
        } else if (off != shard_len[gi]) {
            st = BAD("%s: group %zu: the shards hold %zu bytes, the manifest describes %zu",
                     manifest, gi, shard_len[gi], off);
            goto done;
        }
        gi++;
    }
    if (!src->dir && src->used != src->blob_len) {
        st = BAD("%s: the shards hold %zu bytes, the manifest describes %zu", manifest,
                 src->blob_len, src->used);
        goto done;
    }
    if (!(m = sg_model_new("tfjs", 0, 0, 0))) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    if ((st = add_params(m, ts, n_t, manifest, &skipped)) != SG_OK) goto done;
    if ((st = sg_model_finalize(m)) != SG_OK) goto done;
    for (size_t i = 0; i < n_t; i++)
        if (ts[i].param >= 0) convert(m, &ts[i], shards[ts[i].group] + ts[i].offset);
    sg_model_apply_masks(m);
    sg_meta_set(m, "format", "tfjs");
    if (skipped) sg_meta_set(m, "tfjs_skipped", "%zu int32/bool/string/complex/empty tensors", skipped);
    *out = m;
    m = NULL;
done:
    sg_model_free(m);
    if (owned)
        for (size_t i = 0; i < n_g; i++) free(owned[i]);
    free(owned);
    free(shards);
    free(shard_len);
    free(ts);
    cJSON_Delete(root);
    return st;
}

enum sg_status sg_tfjs_load(const char *manifest, struct sg_model **out) {
    *out = NULL;
    uint8_t *text;
    size_t len;
    enum sg_status st = sg_file_read(manifest, MAX_MANIFEST, 0, &text, &len);
    if (st != SG_OK) return st;
    char dir[4096] = "";
    const char *slash = strrchr(manifest, '/');
    if (slash) {
        if ((size_t)(slash - manifest + 1) >= sizeof dir) {
            free(text);
            return BAD("%s: path too long", manifest);
        }
        memcpy(dir, manifest, (size_t)(slash - manifest + 1));
        dir[slash - manifest + 1] = 0;
    }
    struct source src = {.dir = dir};
    st = load((const char *)text, len, manifest, &src, out);
    free(text);
    return st;
}

enum sg_status sg_tfjs_load_mem(const uint8_t *manifest, size_t len, const uint8_t *shards,
                                size_t shards_len, const char *what, struct sg_model **out) {
    *out = NULL;
    if (len > MAX_MANIFEST)
        return sgi_error(SG_ERR_LIMIT, "%s: manifest of %zu bytes (at most %zu)", what, len,
                         MAX_MANIFEST);
    struct source src = {.blob = shards, .blob_len = shards_len};
    return load((const char *)manifest, len, what, &src, out);
}
