/* The table of formats and what every format shares: configuration checks,
 * the stream frame (CRC-32, value metadata, padding), tiles, and the public
 * size / encode / decode / validate entry points. */
#include <ctype.h>
#include <errno.h>

#include "storage_int.h"

int sgi_storage_generic;

static const struct sgi_format_ops *const FORMATS[SG_FORMAT_COUNT] = {
    [SG_FORMAT_DENSE] = &sgi_format_dense, [SG_FORMAT_RELIDX] = &sgi_format_relidx,
    [SG_FORMAT_GROUP] = &sgi_format_group, [SG_FORMAT_CSR] = &sgi_format_csr,
    [SG_FORMAT_BITMAP] = &sgi_format_bitmap, [SG_FORMAT_RLE4] = &sgi_format_rle4,
    [SG_FORMAT_NM] = &sgi_format_nm, [SG_FORMAT_BCSR] = &sgi_format_bcsr,
};

const char *sg_format_name(enum sg_format f) {
    return (unsigned)f < SG_FORMAT_COUNT ? FORMATS[f]->name : "?";
}

const char *sg_format_summary(enum sg_format f) {
    return (unsigned)f < SG_FORMAT_COUNT ? FORMATS[f]->summary : "?";
}

int sg_format_from_name(const char *name) {
    for (int i = 0; i < SG_FORMAT_COUNT; i++)
        if (strcmp(name, FORMATS[i]->name) == 0) return i;
    return -1;
}

void sg_storage_cfg_default(struct sg_storage_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->values = SG_VALUES_F32;
    cfg->codebook_bits = 8;
    cfg->kmeans_iters = 100;
    cfg->index_bits = SG_INDEX_BITS_PAPER;
    cfg->tile = (struct sg_tile){1, 1, 1, 1};
    cfg->kc = 8;
    cfg->nm_n = 2;
    cfg->nm_m = 4;
}

enum sg_status sg_storage_tile_parse(const char *name, struct sg_tile *out) {
    static const struct {
        const char *name;
        struct sg_tile t;
    } NAMED[] = {
        {"fine", {1, 1, 1, 1}},   {"vector", {1, 1, 1, 0}}, {"vector:row", {1, 1, 1, 0}},
        {"vector:col", {1, 1, 0, 1}}, {"kernel", {1, 1, 0, 0}}, {"filter", {1, 0, 0, 0}},
        {"channel", {0, 1, 0, 0}},
    };
    /* N:M masks (as pruning records them, "nm:2:4" or "2:4") have no tile: every
     * kept weight is its own group */
    if (strncmp(name, "nm:", 3) == 0 || (isdigit((unsigned char)name[0]) && strchr(name, ':'))) {
        *out = (struct sg_tile){1, 1, 1, 1};
        return SG_OK;
    }
    for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0]; i++)
        if (strcmp(name, NAMED[i].name) == 0) {
            *out = NAMED[i].t;
            return SG_OK;
        }
    if (strncmp(name, "block:", 6) == 0) {
        int64_t d[4];
        const char *p = name + 6;
        for (int i = 0; i < 4; i++) {
            char *end;
            errno = 0;
            if (!isdigit((unsigned char)*p)) break;
            long long x = strtoll(p, &end, 10);
            if (errno || x < 0 || x > ((int64_t)1 << 40)) break;
            d[i] = x;
            p = end;
            if (i < 3) {
                if (*p != 'x') break;
                p++;
            } else if (*p == 0) {
                *out = (struct sg_tile){d[0], d[1], d[2], d[3]};
                return SG_OK;
            }
        }
    }
    return sgi_error(SG_ERR_ARG,
                     "unknown granularity '%s' (fine, vector, kernel, filter, channel or "
                     "block:KxCxRxS with 0 meaning the whole dimension)",
                     name);
}

double sg_size_ratio(const struct sg_size *s, int64_t weights) {
    return s->bytes > 0 ? 4.0 * (double)weights / (double)s->bytes : 0.0;
}

/* ---- tiles ---- */
void sgi_grid_init(struct sgi_grid *g, const struct sgi_layer *L) {
    const int64_t dim[4] = {L->k, L->c, L->r, L->s};
    g->units = 1;
    for (int d = 0; d < 4; d++) {
        g->dim[d] = dim[d];
        g->t[d] = L->tile[d];
        g->nt[d] = (dim[d] + g->t[d] - 1) / g->t[d];
        g->units *= g->nt[d];
    }
}

static inline int64_t ext_of(const struct sgi_grid *g, int d, int64_t i) {
    const int64_t left = g->dim[d] - i * g->t[d];
    return left < g->t[d] ? left : g->t[d];
}

int64_t sgi_grid_vol(const struct sgi_grid *g, int64_t u) {
    int64_t v = 1;
    for (int d = 3; d >= 0; d--) {
        if (g->nt[d] == 1) { /* one tile along d: no division */
            v *= g->dim[d];
            continue;
        }
        v *= ext_of(g, d, u % g->nt[d]);
        u /= g->nt[d];
    }
    return v;
}

void sgi_grid_unit(const struct sgi_grid *g, int64_t u, int64_t *off, int64_t ext[4]) {
    int64_t first[4];
    for (int d = 3; d >= 0; d--) {
        const int64_t i = g->nt[d] == 1 ? 0 : u % g->nt[d];
        if (g->nt[d] != 1) u /= g->nt[d];
        first[d] = i * g->t[d];
        ext[d] = ext_of(g, d, i);
    }
    *off = ((first[0] * g->dim[1] + first[1]) * g->dim[2] + first[2]) * g->dim[3] + first[3];
}

/* ---- run formats ---- */
void sgi_runs_size(int64_t kept, int64_t kept_vol, int64_t fill, int64_t fill_vol, int b,
                   int vbits, struct sg_size *sz) {
    sz->values = kept_vol;
    sz->entries = kept + fill;
    sz->fillers = fill;
    sz->value_bits = kept_vol * vbits;
    sz->index_bits = kept * b;
    sz->filler_bits = fill * b + fill_vol * vbits;
    sz->meta_bits = 64; /* the entry count */
    sz->index_width = b;
}

int sgi_runs_best(int64_t kept, int64_t kept_vol, const int64_t fill[17],
                  const int64_t fill_vol[17], int vbits) {
    int best = 1;
    int64_t best_bits = INT64_MAX;
    for (int b = 1; b <= 16; b++) {
        const int64_t bits = kept * b + fill[b] * b + fill_vol[b] * vbits;
        if (bits < best_bits) best_bits = bits, best = b;
    }
    (void)kept_vol; /* the same for every b */
    return best;
}

/* ---- configuration ---- */
static enum sg_status layer_init(struct sgi_layer *L, enum sg_format f, const struct sg_wview *v,
                                 const struct sg_storage_cfg *cfg, int fit, int decoding) {
    memset(L, 0, sizeof *L);
    L->name = v && v->name ? v->name : "layer";
    if ((unsigned)f >= SG_FORMAT_COUNT) return sgi_error(SG_ERR_ARG, "unknown format %d", (int)f);
    if (!v || !cfg) return sgi_error(SG_ERR_ARG, "storage: no layer or configuration given");
    L->v = v;
    L->k = v->k, L->c = v->c, L->r = v->r, L->s = v->s;
    if (L->k < 1 || L->c < 1 || L->r < 1 || L->s < 1)
        return sgi_error(SG_ERR_ARG, "%s: shape %lldx%lldx%lldx%lld has an empty dimension",
                         L->name, (long long)L->k, (long long)L->c, (long long)L->r,
                         (long long)L->s);
    size_t n;
    if (!sgi_mul((size_t)L->k, (size_t)L->c, &n) || !sgi_mul(n, (size_t)L->r, &n) ||
        !sgi_mul(n, (size_t)L->s, &n) || n > (size_t)SG_STORAGE_MAX_WEIGHTS)
        return sgi_error(SG_ERR_LIMIT, "%s: more than 2^40 weights in one layer", L->name);
    L->n = (int64_t)n;
    const int64_t dim[4] = {L->k, L->c, L->r, L->s},
                  t[4] = {cfg->tile.k, cfg->tile.c, cfg->tile.r, cfg->tile.s};
    for (int d = 0; d < 4; d++) {
        if (t[d] < 0) return sgi_error(SG_ERR_ARG, "negative tile extent %lld", (long long)t[d]);
        L->tile[d] = t[d] == 0 || t[d] > dim[d] ? dim[d] : t[d];
    }
    if (cfg->kc < 1) return sgi_error(SG_ERR_ARG, "rle4: Kc = %d (must be >= 1)", cfg->kc);
    L->kc = cfg->kc < L->k ? cfg->kc : L->k;
    if (cfg->nm_n < 1 || cfg->nm_n > cfg->nm_m || cfg->nm_m > 32)
        return sgi_error(SG_ERR_ARG, "N:M = %d:%d (need 1 <= N <= M <= 32)", cfg->nm_n, cfg->nm_m);
    L->nm_n = cfg->nm_n, L->nm_m = cfg->nm_m;
    if (FORMATS[f]->uses_index_bits) {
        if (cfg->index_bits == SG_INDEX_BITS_PAPER)
            L->ib = f == SG_FORMAT_RLE4 ? 4 : v->is_fc ? 5 : 4;
        else if (cfg->index_bits == SG_INDEX_BITS_AUTO && !decoding)
            L->ib = 0;
        else if (cfg->index_bits >= 1 && cfg->index_bits <= 16)
            L->ib = cfg->index_bits;
        else
            return sgi_error(SG_ERR_ARG, "%s: index width %d (1..16%s)", L->name, cfg->index_bits,
                             decoding ? "; a decoder needs the width the encoder chose" : ", auto");
    }
    return fit ? sgi_vc_fit(&L->vc, v, cfg) : sgi_vc_shape(&L->vc, cfg);
}

/* Adds the frame to a format's size: CRC-32, value metadata, byte padding. */
static void frame_size(const struct sgi_layer *L, struct sg_size *sz) {
    sz->meta_bits += 32 + L->vc.meta_bits;
    const int64_t bits = sz->value_bits + sz->index_bits + sz->filler_bits + sz->meta_bits;
    sz->pad_bits = (8 - bits % 8) % 8;
    sz->bytes = (bits + sz->pad_bits) / 8;
}

static enum sg_status size_of(enum sg_format f, struct sgi_layer *L, struct sg_size *sz) {
    memset(sz, 0, sizeof *sz);
    enum sg_status st = FORMATS[f]->size(L, sz);
    if (st != SG_OK) return st;
    if (FORMATS[f]->uses_index_bits) L->ib = sz->index_width;
    frame_size(L, sz);
    return SG_OK;
}

enum sg_status sg_storage_size(enum sg_format f, const struct sg_wview *v,
                               const struct sg_storage_cfg *cfg, struct sg_size *out) {
    struct sgi_layer L;
    enum sg_status st = layer_init(&L, f, v, cfg, 0, 0);
    if (st == SG_OK) st = size_of(f, &L, out);
    sgi_vc_free(&L.vc);
    return st;
}

void sg_blob_free(uint8_t *blob) { free(blob); }

enum sg_status sg_encode(enum sg_format f, const struct sg_wview *v,
                         const struct sg_storage_cfg *cfg, uint8_t **out, size_t *len,
                         struct sg_size *size) {
    *out = NULL;
    *len = 0;
    struct sgi_layer L;
    struct sg_size sz;
    uint8_t *buf = NULL;
    enum sg_status st = layer_init(&L, f, v, cfg, 1, 0);
    if (st != SG_OK || (st = size_of(f, &L, &sz)) != SG_OK) goto done;
    if (!(buf = sgi_alloc((size_t)sz.bytes, 1))) {
        st = SG_ERR_NOMEM;
        goto done;
    }
    struct sgi_bw w;
    sgi_bw_init(&w, buf + 4, buf + sz.bytes);
    sgi_vc_write_meta(&L.vc, &w);
    if ((st = FORMATS[f]->encode(&L, &sz, &w)) != SG_OK) goto done;
    sgi_bw_flush(&w);
    /* the size pass and the writer must agree to the byte: anything else is a bug */
    SG_ASSERT(w.p == buf + sz.bytes);
    const uint32_t crc = sgi_crc32(0, buf + 4, (size_t)sz.bytes - 4);
    for (int i = 0; i < 4; i++) buf[i] = (uint8_t)(crc >> (8 * i));
    *out = buf;
    *len = (size_t)sz.bytes;
    buf = NULL;
    if (size) *size = sz;
done:
    free(buf);
    sgi_vc_free(&L.vc);
    return st;
}

/* Decodes (w, mask given) or validates (both NULL). */
static enum sg_status decode(enum sg_format f, const uint8_t *blob, size_t len,
                             const struct sg_storage_cfg *cfg, const struct sg_wview *v, float *w,
                             uint8_t *mask) {
    struct sgi_layer L;
    enum sg_status st = layer_init(&L, f, v, cfg, 0, 1);
    if (st != SG_OK) return st;
    char what[160];
    snprintf(what, sizeof what, "%s: %s stream", L.name, FORMATS[f]->name);
    if (!blob || len < 4) {
        st = sgi_error(SG_ERR_FORMAT, "%s: %zu bytes, shorter than its 4-byte checksum", what, len);
        goto done;
    }
    if (sgi_ld32(blob) != sgi_crc32(0, blob + 4, len - 4)) {
        st = sgi_error(SG_ERR_FORMAT, "%s: checksum mismatch (the data is corrupted)", what);
        goto done;
    }
    struct sgi_br r;
    sgi_br_init(&r, blob + 4, len - 4);
    if ((st = sgi_vc_read_meta(&L.vc, &r, what)) != SG_OK) goto done;
    if (w) {
        memset(w, 0, (size_t)L.n * sizeof *w);
        memset(mask, 0, (size_t)L.n);
    }
    if ((st = FORMATS[f]->decode(&L, &r, w, mask)) != SG_OK) {
        st = sgi_error_prefix(st, what);
        goto done;
    }
    if (r.bad) {
        st = sgi_error(SG_ERR_FORMAT, "%s: truncated (%zu bytes)", what, len);
        goto done;
    }
    /* exactly the bytes the content needs, padded with zero bits */
    const uint64_t used = sgi_br_pos(&r), left = sgi_br_left(&r);
    if (left >= 8) {
        st = sgi_error(SG_ERR_FORMAT, "%s: %llu bytes after the end of the data", what,
                       (unsigned long long)(left / 8));
        goto done;
    }
    if (sgi_br_get(&r, (int)left) != 0) {
        st = sgi_error(SG_ERR_FORMAT, "%s: non-zero padding after bit %llu", what,
                       (unsigned long long)used);
        goto done;
    }
done:
    sgi_vc_free(&L.vc);
    return st;
}

enum sg_status sg_decode(enum sg_format f, const uint8_t *blob, size_t len,
                         const struct sg_storage_cfg *cfg, struct sg_wview *out) {
    if (!out || !out->w || !out->mask)
        return sgi_error(SG_ERR_ARG, "sg_decode: no output buffers");
    enum sg_status st = decode(f, blob, len, cfg, out, out->w, out->mask);
    /* never hand back half a layer; ARG and LIMIT mean the shape itself was refused */
    if (st != SG_OK && st != SG_ERR_ARG && st != SG_ERR_LIMIT) {
        const size_t n = (size_t)(out->k * out->c * out->r * out->s);
        memset(out->w, 0, n * sizeof *out->w);
        memset(out->mask, 0, n);
    }
    return st;
}

enum sg_status sg_validate(enum sg_format f, const uint8_t *blob, size_t len,
                           const struct sg_storage_cfg *cfg, const struct sg_wview *v) {
    return decode(f, blob, len, cfg, v, NULL, NULL);
}
