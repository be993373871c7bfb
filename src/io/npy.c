/* NumPy .npy arrays and .npz archives of them (format: numpy.lib.format).
 * Export writes every parameter and its mask; import makes a weights-only model:
 * 4-D arrays are conv weights W[K][C][R][S], 2-D arrays fully connected weights
 * W[K][C], everything else is kept as it is (SG_PARAM_OTHER, or a bias when the
 * name ends in "bias"). "<name>.mask" arrays (uint8 or bool) are the masks of "<name>". */
#include "io/half.h"
#include "io/zip.h"
#include "sparsegrain/io.h"

#define MAX_RANK 8
#define MAX_ELEMS ((uint64_t)1 << 36)
#define MAX_FILE ((size_t)64 << 30)

#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

/* DT_STR: a unicode string ('<U<n>', n UTF-32 code units), read only as the input
 * preprocessing's text (SG_INPUT_NORM_KEY). */
enum dtype { DT_F16, DT_F32, DT_F64, DT_U8, DT_BOOL, DT_STR };
static const size_t DT_SIZE[] = {2, 4, 8, 1, 1, 4};
#define MAX_STR 256 /* code units of a string array */

struct npy {
    enum dtype dt;
    int rank;
    int64_t dims[MAX_RANK];
    size_t count;
    size_t item;         /* bytes of one element: DT_SIZE[dt], 4 n for '<U<n>' */
    const uint8_t *data; /* count * item bytes */
};

/* ---- header: a Python dict literal such as
 *      {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }             ---- */
struct lex {
    const char *p, *end;
};
static void skip_ws(struct lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n')) l->p++;
}
static int eat(struct lex *l, char c) {
    skip_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}
static int quoted(struct lex *l, char *out, size_t cap) {
    skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return 0;
    const char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (n + 1 >= cap) return 0;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return 0;
    l->p++;
    out[n] = 0;
    return 1;
}
static int word(struct lex *l, const char *w) {
    skip_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
        l->p += n;
        return 1;
    }
    return 0;
}

static enum sg_status parse_header(const char *h, size_t len, const char *what, struct npy *a) {
    struct lex l = {h, h + len};
    int have_descr = 0, have_fo = 0, have_shape = 0;
    char key[32], descr[16];
    if (!eat(&l, '{')) return BAD("%s: .npy header is not a dict", what);
    while (!eat(&l, '}')) {
        if (!quoted(&l, key, sizeof key) || !eat(&l, ':'))
            return BAD("%s: .npy header: expected 'key': value", what);
        if (strcmp(key, "descr") == 0) {
            if (!quoted(&l, descr, sizeof descr))
                return BAD("%s: .npy header: descr is not a simple type string", what);
            if (strcmp(descr, "<f2") == 0) a->dt = DT_F16;
            else if (strcmp(descr, "<f4") == 0) a->dt = DT_F32;
            else if (strcmp(descr, "<f8") == 0) a->dt = DT_F64;
            else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0) a->dt = DT_U8;
            else if (strcmp(descr, "|b1") == 0) a->dt = DT_BOOL;
            else if (descr[0] == '<' && descr[1] == 'U' && descr[2] >= '1' && descr[2] <= '9' &&
                     strspn(descr + 2, "0123456789") == strlen(descr + 2) &&
                     atoi(descr + 2) <= MAX_STR)
                a->dt = DT_STR, a->item = 4 * (size_t)atoi(descr + 2);
            else
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "%s: arrays of type '%s' are not supported (float16, float32, "
                                 "float64 little-endian; uint8 or bool masks)",
                                 what, descr);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (word(&l, "True"))
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "%s: Fortran-order arrays are not supported (save "
                                 "np.ascontiguousarray(a))",
                                 what);
            if (!word(&l, "False")) return BAD("%s: .npy header: bad fortran_order", what);
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!eat(&l, '(')) return BAD("%s: .npy header: shape is not a tuple", what);
            a->rank = 0;
            uint64_t n = 1;
            while (!eat(&l, ')')) {
                skip_ws(&l);
                if (l.p < l.end && *l.p == '-')
                    return BAD("%s: .npy header: negative dimension", what);
                uint64_t v = 0;
                int digits = 0;
                while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
                    if (v > MAX_ELEMS) return sgi_error(SG_ERR_LIMIT, "%s: dimension too large", what);
                    v = v * 10 + (uint64_t)(*l.p++ - '0');
                    digits++;
                }
                if (!digits) return BAD("%s: .npy header: bad shape", what);
                if (word(&l, "L")) { /* Python 2 long */ }
                if (a->rank == MAX_RANK)
                    return sgi_error(SG_ERR_UNSUPPORTED, "%s: more than %d dimensions", what, MAX_RANK);
                if (v > MAX_ELEMS || (v && n > MAX_ELEMS / v))
                    return sgi_error(SG_ERR_LIMIT, "%s: more than 2^36 elements", what);
                n *= v;
                a->dims[a->rank++] = (int64_t)v;
                if (!eat(&l, ',')) {
                    if (!eat(&l, ')')) return BAD("%s: .npy header: bad shape", what);
                    break;
                }
            }
            a->count = (size_t)n;
            have_shape = 1;
        } else {
            return BAD("%s: .npy header: unknown key '%s'", what, key);
        }
        if (!eat(&l, ',')) {
            if (!eat(&l, '}')) return BAD("%s: .npy header: expected ',' or '}'", what);
            break;
        }
    }
    if (!have_descr || !have_fo || !have_shape)
        return BAD("%s: .npy header lacks descr, fortran_order or shape", what);
    return SG_OK;
}

static enum sg_status parse_npy(const uint8_t *buf, size_t len, const char *what, struct npy *a) {
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return BAD("%s: not a .npy array", what);
    const int major = buf[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = (size_t)(buf[8] | buf[9] << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return BAD("%s: truncated .npy header", what);
        hlen = sgi_ld32(buf + 8);
        start = 12;
    } else {
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: .npy version %d", what, major);
    }
    if (hlen > len - start) return BAD("%s: .npy header runs past the end", what);
    enum sg_status st = parse_header((const char *)buf + start, hlen, what, a);
    if (st != SG_OK) return st;
    if (a->dt != DT_STR) a->item = DT_SIZE[a->dt];
    const size_t off = start + hlen, need = a->count * a->item;
    if (len - off != need)
        return BAD("%s: array data has %zu bytes, shape and type need %zu", what, len - off, need);
    a->data = buf + off;
    return SG_OK;
}

/* ---- import ---- */
struct item {
    char name[SG_NAME_MAX];
    struct npy a;
    uint8_t *owned; /* inflated entry */
    int mask_of;    /* item index this mask belongs to, -1 */
    int param;
};

static void to_float(const struct npy *a, float *out) {
    for (size_t i = 0; i < a->count; i++) {
        const uint8_t *p = a->data + i * a->item;
        switch (a->dt) {
        case DT_F16: out[i] = sgi_half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case DT_F32: memcpy(out + i, p, 4); break;
        case DT_F64: {
            double d;
            memcpy(&d, p, 8);
            out[i] = (float)d;
            break;
        }
        default: out[i] = p[0]; break;
        }
    }
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The input preprocessing's text: one ASCII string, checked once the model's input is known. */
static enum sg_status read_preproc(const struct npy *a, const char *what, struct sg_preproc *pp) {
    char text[MAX_STR + 1];
    size_t len = 0;
    if (a->count != 1) return BAD("%s: '" SG_INPUT_NORM_KEY "' holds %zu strings, not one", what, a->count);
    for (size_t i = 0; i < a->item / 4; i++) {
        const uint32_t u = sgi_ld32(a->data + 4 * i);
        if (u == 0) break; /* numpy pads shorter strings with zeros */
        if (u > 126 || u < 32) return BAD("%s: '" SG_INPUT_NORM_KEY "' is not plain text", what);
        text[len++] = (char)u;
    }
    text[len] = 0;
    enum sg_status st = sg_preproc_parse(text, pp);
    return st == SG_OK ? SG_OK : sgi_error_prefix(SG_ERR_FORMAT, what);
}

static enum sg_status build(struct item *it, size_t n, const char *what, struct sg_model **out) {
    struct sg_model *m = sg_model_new("npy", 0, 0, 0);
    if (!m) return SG_ERR_NOMEM;
    enum sg_status st = SG_OK;
    for (size_t i = 0; i < n; i++) {
        it[i].mask_of = -1;
        it[i].param = -1;
        if (it[i].a.dt == DT_STR) {
            if (strcmp(it[i].name, SG_INPUT_NORM_KEY) != 0) {
                st = sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' is a string array (of those only '"
                               SG_INPUT_NORM_KEY "' is read)", what, it[i].name);
                goto fail;
            }
            if ((st = read_preproc(&it[i].a, what, &m->preproc)) != SG_OK) goto fail;
            continue;
        }
        if (it[i].a.dt != DT_U8 && it[i].a.dt != DT_BOOL) continue;
        if (ends_with(it[i].name, ".mask")) {
            size_t bl = strlen(it[i].name) - 5;
            for (size_t j = 0; j < n; j++)
                if (strlen(it[j].name) == bl && strncmp(it[j].name, it[i].name, bl) == 0)
                    it[i].mask_of = (int)j;
        }
        if (it[i].mask_of < 0) {
            st = sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' is a uint8/bool array but not the mask "
                           "('<name>.mask') of a float array", what, it[i].name);
            goto fail;
        }
        if (it[it[i].mask_of].a.count != it[i].a.count) {
            st = BAD("%s: mask '%s' has %zu values, its array %zu", what, it[i].name,
                     it[i].a.count, it[it[i].mask_of].a.count);
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct npy *a = &it[i].a;
        if (it[i].mask_of >= 0 || a->count == 0 || a->dt == DT_STR) continue;
        enum sg_param_kind kind = SG_PARAM_OTHER;
        enum sg_layer_kind layer = SG_LAYER_NONE;
        int64_t d[4] = {1, 1, 1, 1};
        int nd = a->rank < 1 ? 1 : a->rank > 4 ? 4 : a->rank;
        for (int r = 0; r < a->rank; r++) {
            int slot = r - (a->rank - nd); /* leading axes fold into the first */
            d[slot < 0 ? 0 : slot] *= a->dims[r];
        }
        if (a->rank == 4) kind = SG_PARAM_WEIGHT, layer = SG_LAYER_CONV;
        else if (a->rank == 2) kind = SG_PARAM_WEIGHT, layer = SG_LAYER_FC;
        else if (a->rank == 1 && ends_with(it[i].name, "bias")) kind = SG_PARAM_BIAS;
        if ((it[i].param = sg_model_add_param(m, it[i].name, kind, layer, -1, nd, d)) < 0) {
            st = sgi_error_prefix(SG_ERR_FORMAT, what);
            goto fail;
        }
    }
    if ((st = sg_model_finalize(m)) != SG_OK) goto fail;
    for (size_t i = 0; i < n; i++)
        if (it[i].param >= 0) {
            const struct sg_param *pp = &m->params[it[i].param];
            float *w = sg_param_data(m, it[i].param);
            uint8_t *mk = sg_param_mask(m, it[i].param);
            to_float(&it[i].a, w);
            if (pp->kind == SG_PARAM_WEIGHT)
                for (size_t j = 0; j < pp->count; j++) mk[j] = w[j] != 0.0f;
        }
    for (size_t i = 0; i < n; i++)
        if (it[i].mask_of >= 0 && it[it[i].mask_of].param >= 0) {
            uint8_t *mk = sg_param_mask(m, it[it[i].mask_of].param);
            for (size_t j = 0; j < it[i].a.count; j++) mk[j] = it[i].a.data[j] != 0;
        }
    sg_model_apply_masks(m);
    sg_meta_set(m, "format", "npy");
    *out = m;
    return SG_OK;
fail:
    sg_model_free(m);
    return st;
}

static void entry_name(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src);
    size_t n = strlen(dst);
    if (n > 4 && strcmp(dst + n - 4, ".npy") == 0) dst[n - 4] = 0;
}

enum sg_status sg_npy_load_mem(const uint8_t *buf, size_t len, const char *what,
                               struct sg_model **out) {
    *out = NULL;
    enum sg_status st;
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0) {
        struct item it;
        memset(&it, 0, sizeof it);
        const char *base = sgi_basename(what);
        if (strlen(base) >= SG_NAME_MAX + 4)
            return sgi_error(SG_ERR_LIMIT, "%s: file name too long for a tensor name", what);
        entry_name(it.name, sizeof it.name, base);
        if ((st = parse_npy(buf, len, what, &it.a)) != SG_OK) return st;
        if (it.a.dt == DT_U8 || it.a.dt == DT_BOOL || it.a.dt == DT_STR)
            return sgi_error(SG_ERR_UNSUPPORTED, "%s: a uint8/bool/string array holds no weights",
                             what);
        return build(&it, 1, what, out);
    }
    struct sgi_zip_entry *ents;
    size_t n;
    if ((st = sgi_zip_list(buf, len, what, &ents, &n)) != SG_OK) return st;
    struct item *it = calloc(n ? n : 1, sizeof *it);
    if (!it) {
        free(ents);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    char ewhat[1024];
    for (size_t i = 0; i < n && st == SG_OK; i++) {
        if (!ends_with(ents[i].name, ".npy")) {
            st = BAD("%s: entry '%s' is not a .npy array", what, ents[i].name);
            break;
        }
        if (strlen(ents[i].name) >= SG_NAME_MAX + 4) {
            st = sgi_error(SG_ERR_LIMIT, "%s: array name '%s' is too long (at most %d characters)",
                           what, ents[i].name, SG_NAME_MAX - 1);
            break;
        }
        entry_name(it[i].name, sizeof it[i].name, ents[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(it[j].name, it[i].name) == 0) st = BAD("%s: two arrays named '%s'", what, it[i].name);
        if (st != SG_OK) break;
        const uint8_t *data;
        snprintf(ewhat, sizeof ewhat, "%s: %s", what, ents[i].name);
        if ((st = sgi_zip_extract(&ents[i], what, &data, &it[i].owned)) != SG_OK) break;
        st = parse_npy(data, (size_t)ents[i].size, ewhat, &it[i].a);
    }
    if (st == SG_OK) st = build(it, n, what, out);
    for (size_t i = 0; i < n; i++) free(it[i].owned);
    free(it);
    free(ents);
    return st;
}

enum sg_status sg_npy_load(const char *path, struct sg_model **out) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_file_read(path, MAX_FILE, 0, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_npy_load_mem(buf, len, path, out);
    free(buf);
    return st;
}

/* ---- export ---- */
/* Header of a version 1.0 .npy whose data starts at a multiple of 64 bytes. */
static size_t npy_header(char *h, size_t cap, const char *descr, const int64_t *dims, int ndim) {
    char dict[256], shape[160] = "";
    for (int i = 0; i < ndim; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld,%s",
                 (long long)dims[i], i + 1 < ndim ? " " : "");
    if (ndim > 1) shape[strlen(shape) - 1] = 0; /* (3, 4) but (3,) */
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, shape);
    size_t total = 10 + (size_t)n + 1;
    total = (total + 63) / 64 * 64;
    SG_ASSERT(total <= cap);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    const size_t hlen = total - 10;
    h[8] = (char)(hlen & 0xff);
    h[9] = (char)(hlen >> 8);
    memcpy(h + 10, dict, (size_t)n);
    memset(h + 10 + n, ' ', hlen - (size_t)n - 1);
    h[total - 1] = '\n';
    return total;
}

enum sg_status sg_npz_serialize(const struct sg_model *m, uint8_t **buf, size_t *len) {
    struct sgi_zip_writer z;
    memset(&z, 0, sizeof z);
    size_t total = 0;
    for (int32_t i = 0; i < m->n_params; i++) total += m->params[i].count * 5 + 512;
    sgi_buf_reserve(&z.out, total);
    char head[512], name[SG_NAME_MAX + 16];
    for (int32_t i = 0; i < m->n_params; i++) {
        const struct sg_param *p = &m->params[i];
        size_t hl = npy_header(head, sizeof head, "<f4", p->dims, p->ndim);
        snprintf(name, sizeof name, "%s.npy", p->name);
        sgi_zip_add(&z, name, head, hl, m->arena + p->offset, p->count * sizeof(float));
        hl = npy_header(head, sizeof head, "|u1", p->dims, p->ndim);
        snprintf(name, sizeof name, "%s.mask.npy", p->name);
        sgi_zip_add(&z, name, head, hl, m->mask + p->offset, p->count);
    }
    if (m->preproc.stated) { /* a 0-d unicode array: np.load(f)[key] prints the text */
        char text[MAX_STR], descr[16];
        uint8_t u32[4 * MAX_STR];
        const size_t n = strlen(sg_preproc_format(&m->preproc, text, sizeof text));
        memset(u32, 0, sizeof u32);
        for (size_t i = 0; i < n; i++) u32[4 * i] = (uint8_t)text[i]; /* UTF-32LE of ASCII */
        snprintf(descr, sizeof descr, "<U%zu", n);
        size_t hl = npy_header(head, sizeof head, descr, NULL, 0);
        sgi_zip_add(&z, SG_INPUT_NORM_KEY ".npy", head, hl, u32, 4 * n);
    }
    return sgi_zip_finish(&z, buf, len);
}

enum sg_status sg_npz_save(const struct sg_model *m, const char *path) {
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_npz_serialize(m, &buf, &len);
    if (st != SG_OK) return sgi_error_prefix(st, path);
    st = sg_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}
