/* .sgz: a model whose conv/fc weights are encoded in one storage format
 * (docs/file-format.md, section ".sgz", documents every byte).
 *
 * The architecture, parameter table and metadata are the ARCH, PRMS and META
 * sections of the model's .sgm serialisation, copied verbatim, so the .sgm
 * reader validates them and whatever .sgm learns to store comes along. Reading
 * rebuilds a .sgm image with zero DATA and MASK sections around them, parses it,
 * and then fills the arena from the encoded layers and the raw other tensors. */
#include "sparsegrain/io.h"
#include "core/sgi.h"

#define SGZ_MAGIC SG_SGZ_MAGIC
#define SGZ_VERSION 1
#define SGZ_HEADER 128
#define SGZ_ENTRY 16
#define SGM_HEADER 24
#define MAX_FILE ((size_t)64 << 30)
#define MAX_ELEMS ((uint64_t)1 << 36) /* as .sgm */

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
static const uint32_t TAG_DATA = TAG('D', 'A', 'T', 'A'), TAG_MASK = TAG('M', 'A', 'S', 'K'),
                      TAG_OPTM = TAG('O', 'P', 'T', 'M'), TAG_END = TAG('E', 'N', 'D', ' ');

static void st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t pad8(size_t off) { return (8 - off % 8) % 8; }

/* Which params are encoded layers: is_layer[p] = 1. */
static enum sg_status layer_flags(const struct sg_model *m, uint8_t **flags, int32_t **idx,
                                  int32_t *n) {
    *n = sg_model_weight_params(m, NULL);
    *flags = sgi_zalloc((size_t)m->n_params + 1, 1);
    *idx = sgi_alloc((size_t)*n + 1, sizeof **idx);
    if (!*flags || !*idx) {
        free(*flags), free(*idx);
        *flags = NULL, *idx = NULL;
        return SG_ERR_NOMEM;
    }
    sg_model_weight_params(m, *idx);
    for (int32_t i = 0; i < *n; i++) (*flags)[(*idx)[i]] = 1;
    return SG_OK;
}

static uint64_t other_bytes_of(const struct sg_param *p) { return p->count * 4 + (p->count + 7) / 8; }

enum sg_status sg_sgz_serialize(const struct sg_model *m, enum sg_format f,
                                const struct sg_storage_cfg *cfg, uint8_t **out, size_t *out_len,
                                struct sg_sgz_info *info) {
    *out = NULL;
    *out_len = 0;
    if ((unsigned)f >= SG_FORMAT_COUNT) return sgi_error(SG_ERR_ARG, "unknown format %d", (int)f);
    uint8_t *sgm = NULL, *flags = NULL, **blobs = NULL;
    int32_t *idx = NULL, n = 0;
    size_t sgm_len = 0, *lens = NULL;
    struct sg_size *sizes = NULL;
    struct sgi_buf b = {0};
    enum sg_status st = sg_model_serialize(m, NULL, &sgm, &sgm_len);
    if (st != SG_OK || (st = layer_flags(m, &flags, &idx, &n)) != SG_OK) goto done;
    blobs = calloc((size_t)n + 1, sizeof *blobs);
    lens = calloc((size_t)n + 1, sizeof *lens);
    sizes = calloc((size_t)n + 1, sizeof *sizes);
    if (!blobs || !lens || !sizes) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory encoding the model");
        goto done;
    }
    uint64_t layer_bytes = 0, other = 0, elems = 0, mask_bytes = 0;
    for (int32_t i = 0; i < n; i++) {
        /* the view is only read: sg_model_wview takes a mutable model for training's sake */
        struct sg_wview v = sg_model_wview((struct sg_model *)m, idx[i]);
        if ((st = sg_encode(f, &v, cfg, &blobs[i], &lens[i], &sizes[i])) != SG_OK) goto done;
        layer_bytes += lens[i];
    }
    for (int32_t p = 0; p < m->n_params; p++) {
        elems += m->params[p].count;
        mask_bytes += (m->params[p].count + 7) / 8;
        if (!flags[p]) other += other_bytes_of(&m->params[p]);
    }
    /* the ARCH, PRMS, META (and any newer) sections of our own .sgm image */
    struct sgi_buf arch = {0};
    for (size_t off = SGM_HEADER; off + 16 <= sgm_len;) {
        const uint32_t tag = sgi_ld32(sgm + off);
        const size_t total = 16 + (size_t)sgi_ld64(sgm + off + 8);
        const size_t whole = total + pad8(off + total);
        SG_ASSERT(off + whole <= sgm_len);
        if (tag == TAG_END) break;
        if (tag != TAG_DATA && tag != TAG_MASK && tag != TAG_OPTM) sgi_buf_put(&arch, sgm + off, whole);
        off += whole;
    }
    if (arch.failed) {
        sgi_buf_free(&arch);
        st = sgi_error(SG_ERR_NOMEM, "out of memory copying the architecture");
        goto done;
    }
    const uint64_t table = (uint64_t)n * SGZ_ENTRY;
    const uint64_t file = SGZ_HEADER + table + arch.len + other + layer_bytes + 4;
    sgi_buf_reserve(&b, (size_t)file);
    uint8_t h[SGZ_HEADER] = {0};
    memcpy(h, SGZ_MAGIC "\0", 8);
    st32(h + 8, SGZ_VERSION);
    st32(h + 12, (uint32_t)f);
    st64(h + 16, file);
    st32(h + 24, (uint32_t)cfg->values);
    st32(h + 28, (uint32_t)cfg->codebook_bits);
    st32(h + 32, (uint32_t)cfg->kmeans_iters);
    st32(h + 36, (uint32_t)cfg->index_bits);
    st64(h + 40, (uint64_t)cfg->tile.k);
    st64(h + 48, (uint64_t)cfg->tile.c);
    st64(h + 56, (uint64_t)cfg->tile.r);
    st64(h + 64, (uint64_t)cfg->tile.s);
    st32(h + 72, (uint32_t)cfg->kc);
    st32(h + 76, (uint32_t)cfg->nm_n);
    st32(h + 80, (uint32_t)cfg->nm_m);
    st32(h + 84, sgi_ld32(sgm + 8)); /* .sgm version of the copied sections */
    st32(h + 88, (uint32_t)n);
    st32(h + 92, (uint32_t)m->n_params);
    st64(h + 96, arch.len);
    st64(h + 104, other);
    st64(h + 112, elems);
    st64(h + 120, mask_bytes);
    sgi_buf_put(&b, h, sizeof h);
    for (int32_t i = 0; i < n; i++) {
        sgi_buf_u32(&b, (uint32_t)idx[i]);
        sgi_buf_u32(&b, (uint32_t)sizes[i].index_width);
        sgi_buf_u64(&b, lens[i]);
    }
    sgi_buf_put(&b, arch.data, arch.len);
    sgi_buf_free(&arch);
    for (int32_t p = 0; p < m->n_params; p++) {
        if (flags[p]) continue;
        const struct sg_param *pp = &m->params[p];
        for (size_t j = 0; j < pp->count; j++) sgi_buf_f32(&b, m->arena[pp->offset + j]);
        const uint8_t *mk = m->mask + pp->offset;
        for (size_t j = 0; j < pp->count; j += 8) {
            uint8_t byte = 0;
            for (size_t t = 0; t < 8 && j + t < pp->count; t++) byte |= (uint8_t)((mk[j + t] != 0) << t);
            sgi_buf_u8(&b, byte);
        }
    }
    for (int32_t i = 0; i < n; i++) sgi_buf_put(&b, blobs[i], lens[i]);
    if (!b.failed) sgi_buf_u32(&b, sgi_crc32(0, b.data, b.len));
    if (b.failed) {
        st = sgi_error(SG_ERR_NOMEM, "out of memory assembling the .sgz image");
        goto done;
    }
    SG_ASSERT(b.len == file);
    if (info) {
        *info = (struct sg_sgz_info){f, n, file, layer_bytes, file - layer_bytes, SGZ_HEADER, table,
                                     file - layer_bytes - SGZ_HEADER - table - other - 4, other, 4};
    }
    *out = b.data;
    *out_len = b.len;
    b.data = NULL;
done:
    for (int32_t i = 0; blobs && i < n; i++) sg_blob_free(blobs[i]);
    free(blobs), free(lens), free(sizes), free(idx), free(flags), free(sgm);
    sgi_buf_free(&b);
    return st;
}

enum sg_status sg_sgz_write(const struct sg_model *m, enum sg_format f,
                            const struct sg_storage_cfg *cfg, const char *path,
                            struct sg_sgz_info *info) {
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_sgz_serialize(m, f, cfg, &buf, &len, info);
    if (st != SG_OK) return sgi_error_prefix(st, path);
    st = sg_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

/* ---- reading ---- */
#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

/* What the PRMS section says of one parameter. */
struct pinfo {
    uint32_t kind, layer, ndim;
    int64_t dims[4];
};

/* Elements, mask bytes and parameter shapes the PRMS section describes, found
 * before anything is allocated: weights may compress to almost nothing, so the file
 * size does not bound the model, and a damaged count must not turn into a huge
 * allocation. *params (to free) has *n_params entries. */
static enum sg_status arch_params(const uint8_t *arch, uint64_t len, const char *what,
                                  uint64_t *elems, uint64_t *mask_bytes, struct pinfo **params,
                                  uint32_t *n_params) {
    const uint32_t TAG_PRMS = TAG('P', 'R', 'M', 'S');
    *elems = *mask_bytes = 0;
    *params = NULL;
    *n_params = 0;
    for (uint64_t off = 0; off + 16 <= len;) {
        const uint64_t slen = sgi_ld64(arch + off + 8);
        if (slen > len - off - 16) break;
        if (sgi_ld32(arch + off) == TAG_PRMS) {
            struct sgi_cur c;
            sgi_cur_init(&c, arch + off + 16, (size_t)slen, what);
            const uint32_t n = sgi_cur_u32(&c);
            /* each parameter takes at least 28 bytes of the section */
            if (c.bad || n > (1u << 20) || n > slen / 28)
                return BAD("%s: %u parameters do not fit the parameter table", what, n);
            struct pinfo *pi = calloc(n ? n : 1, sizeof *pi);
            if (!pi) return sgi_error(SG_ERR_NOMEM, "out of memory");
            for (uint32_t i = 0; i < n && !c.bad; i++) {
                sgi_cur_bytes(&c, sgi_cur_u32(&c)); /* name */
                pi[i].kind = sgi_cur_u32(&c);
                pi[i].layer = sgi_cur_u32(&c);
                sgi_cur_u32(&c); /* node */
                const uint32_t ndim = pi[i].ndim = sgi_cur_u32(&c);
                uint64_t cnt = 1;
                for (uint32_t d = 0; d < ndim && d < 4; d++) {
                    const uint64_t v = sgi_cur_u64(&c);
                    if (v == 0 || v > MAX_ELEMS || cnt > MAX_ELEMS / v) cnt = MAX_ELEMS + 1;
                    else cnt *= v;
                    pi[i].dims[d] = (int64_t)v;
                }
                if (ndim < 1 || ndim > 4 || cnt > MAX_ELEMS || *elems + cnt > MAX_ELEMS) {
                    free(pi);
                    return BAD("%s: parameter %u has a bad shape", what, i);
                }
                *elems += cnt;
                *mask_bytes += (cnt + 7) / 8;
            }
            if (c.bad) {
                free(pi);
                return BAD("%s: truncated parameter table", what);
            }
            *params = pi;
            *n_params = n;
            return SG_OK;
        }
        off += 16 + slen + pad8((size_t)(SGM_HEADER + off + 16 + slen));
    }
    return BAD("%s: no parameter table in the architecture", what);
}

/* Every layer stream checked (sg_validate) against the shape the parameter table
 * gives it, before the model is allocated: a damaged or lying file fails here, at the
 * cost of its own bytes, whatever size it claims. */
static enum sg_status check_streams(const uint8_t *tab, uint32_t n, const uint8_t *streams,
                                    enum sg_format f, struct sg_storage_cfg cfg,
                                    const struct pinfo *pi, uint32_t n_params, const char *what) {
    const int uses = f == SG_FORMAT_RELIDX || f == SG_FORMAT_GROUP || f == SG_FORMAT_RLE4;
    uint32_t next = 0; /* layers are the conv/fc weights in parameter order */
    const uint8_t *s = streams;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t p = sgi_ld32(tab + i * SGZ_ENTRY), width = sgi_ld32(tab + i * SGZ_ENTRY + 4);
        const uint64_t l = sgi_ld64(tab + i * SGZ_ENTRY + 8);
        while (next < n_params &&
               !(pi[next].kind == SG_PARAM_WEIGHT && pi[next].layer != SG_LAYER_NONE))
            next++;
        if (p != next || next >= n_params)
            return BAD("%s: layer %u is parameter %u, not a conv/fc weight in order", what, i, p);
        next++;
        if (uses ? width < 1 || width > 16 : width != 0)
            return BAD("%s: layer %u: index width %u", what, i, width);
        cfg.index_bits = uses ? (int)width : SG_INDEX_BITS_PAPER;
        const struct pinfo *q = &pi[p];
        /* the view sg_model_wview makes of this parameter */
        struct sg_wview v = {"layer", q->dims[0], q->ndim >= 2 ? q->dims[1] : 1, 1, 1, NULL, NULL,
                             q->layer == SG_LAYER_FC};
        if (q->ndim == 4) v.r = q->dims[2], v.s = q->dims[3];
        else if (q->ndim == 3) v.s = q->dims[2];
        enum sg_status st = sg_validate(f, s, (size_t)l, &cfg, &v);
        if (st != SG_OK) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s: layer %u", what, i);
            return sgi_error_prefix(st == SG_ERR_ARG ? SG_ERR_FORMAT : st, msg);
        }
        s += l;
    }
    return SG_OK;
}

/* A .sgm image: header, the copied sections, zero DATA and MASK, END, CRC. */
static enum sg_status skeleton(const uint8_t *arch, uint64_t arch_len, uint32_t sgm_version,
                               uint64_t elems, uint64_t mask_bytes, uint8_t **out, size_t *len) {
    size_t at = SGM_HEADER + (size_t)arch_len;
    const size_t data_at = at, data_len = (size_t)elems * 4;
    at += 16 + data_len + pad8(data_len);
    const size_t mask_at = at;
    at += 16 + (size_t)mask_bytes + pad8((size_t)mask_bytes);
    const size_t end_at = at;
    at += 16 + 4;
    /* the model needs as much again (arena and masks): both must fit the limit */
    if (!sgi_alloc_ok(at, 1) || !sgi_alloc_ok(elems, 5)) return SG_ERR_NOMEM;
    uint8_t *p = calloc(1, at); /* mostly zeros: let the kernel supply them lazily */
    if (!p) return sgi_error(SG_ERR_NOMEM, "out of memory: %zu bytes for the model image", at);
    memcpy(p, SG_SGM_MAGIC "\0", 8);
    st32(p + 8, sgm_version);
    st64(p + 16, at);
    memcpy(p + SGM_HEADER, arch, (size_t)arch_len);
    st32(p + data_at, TAG_DATA);
    st64(p + data_at + 8, data_len);
    st32(p + mask_at, TAG_MASK);
    st64(p + mask_at + 8, mask_bytes);
    st32(p + end_at, TAG_END);
    st32(p + at - 4, sgi_crc32(0, p, at - 4));
    *out = p;
    *len = at;
    return SG_OK;
}

enum sg_status sg_sgz_deserialize(const uint8_t *buf, size_t len, const char *what,
                                  struct sg_model **out, struct sg_sgz_info *info) {
    *out = NULL;
    if (len < SGZ_HEADER + 4 || memcmp(buf, SGZ_MAGIC "\0", 8) != 0)
        return BAD("%s: not a sparsegrain compressed model (.sgz) file", what);
    const uint32_t version = sgi_ld32(buf + 8);
    if (version != SGZ_VERSION)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: .sgz version %u (this build reads version %d)",
                         what, version, SGZ_VERSION);
    if (sgi_ld64(buf + 16) != len)
        return BAD("%s: truncated or padded: header says %llu bytes, file has %zu", what,
                   (unsigned long long)sgi_ld64(buf + 16), len);
    if (sgi_ld32(buf + len - 4) != sgi_crc32(0, buf, len - 4))
        return BAD("%s: checksum mismatch (the file is corrupted)", what);
    const uint32_t f = sgi_ld32(buf + 12);
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.values = (enum sg_values)sgi_ld32(buf + 24);
    cfg.codebook_bits = (int32_t)sgi_ld32(buf + 28);
    cfg.kmeans_iters = (int32_t)sgi_ld32(buf + 32);
    cfg.tile = (struct sg_tile){(int64_t)sgi_ld64(buf + 40), (int64_t)sgi_ld64(buf + 48),
                                (int64_t)sgi_ld64(buf + 56), (int64_t)sgi_ld64(buf + 64)};
    cfg.kc = (int32_t)sgi_ld32(buf + 72);
    cfg.nm_n = (int32_t)sgi_ld32(buf + 76);
    cfg.nm_m = (int32_t)sgi_ld32(buf + 80);
    const uint32_t sgm_version = sgi_ld32(buf + 84), n = sgi_ld32(buf + 88),
                   n_params = sgi_ld32(buf + 92);
    const uint64_t arch_len = sgi_ld64(buf + 96), other = sgi_ld64(buf + 104),
                   elems = sgi_ld64(buf + 112), mask_bytes = sgi_ld64(buf + 120);
    if (f >= SG_FORMAT_COUNT || (unsigned)cfg.values >= SG_VALUES_COUNT)
        return BAD("%s: unknown format %u or value coding %u", what, f, (unsigned)cfg.values);
    if (sgm_version != SG_SGM_VERSION)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: architecture stored as .sgm version %u (this "
                         "build reads version %d)", what, sgm_version, SG_SGM_VERSION);
    if (n > n_params || n_params > (1u << 20) || elems > MAX_ELEMS || mask_bytes > elems ||
        arch_len % 8)
        return BAD("%s: header counts out of range (%u layers, %u parameters, %llu elements)",
                   what, n, n_params, (unsigned long long)elems);
    const uint64_t body = len - SGZ_HEADER - 4;
    const uint64_t table = (uint64_t)n * SGZ_ENTRY;
    if (table > body || arch_len > body - table || other > body - table - arch_len)
        return BAD("%s: sections run past the end of the file", what);
    const uint8_t *tab = buf + SGZ_HEADER, *arch = tab + table, *oth = arch + arch_len,
                  *streams = oth + other;
    uint64_t stream_total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t l = sgi_ld64(tab + i * SGZ_ENTRY + 8);
        if (l > body || stream_total + l > body - table - arch_len - other)
            return BAD("%s: layer %u's stream runs past the end of the file", what, i);
        stream_total += l;
    }
    if (stream_total != body - table - arch_len - other)
        return BAD("%s: %llu bytes after the last layer", what,
                   (unsigned long long)(body - table - arch_len - other - stream_total));

    uint64_t want_elems, want_mask;
    struct pinfo *pi;
    uint32_t n_pi;
    enum sg_status st = arch_params(arch, arch_len, what, &want_elems, &want_mask, &pi, &n_pi);
    if (st != SG_OK) return st;
    if (want_elems != elems || want_mask != mask_bytes) {
        free(pi);
        return BAD("%s: header says %llu parameter values, the parameter table %llu", what,
                   (unsigned long long)elems, (unsigned long long)want_elems);
    }
    st = check_streams(tab, n, streams, (enum sg_format)f, cfg, pi, n_pi, what);
    free(pi);
    if (st != SG_OK) return st;
    uint8_t *img = NULL, *flags = NULL;
    int32_t *idx = NULL, nw = 0;
    size_t img_len = 0;
    struct sg_model *m = NULL;
    if ((st = skeleton(arch, arch_len, sgm_version, elems, mask_bytes, &img, &img_len)) != SG_OK)
        return st;
    st = sg_model_deserialize(img, img_len, what, &m, NULL);
    free(img);
    if (st != SG_OK) return st;
    if ((uint32_t)m->n_params != n_params) {
        st = BAD("%s: %d parameters in the architecture, %u in the header", what, m->n_params,
                 n_params);
        goto fail;
    }
    if ((st = layer_flags(m, &flags, &idx, &nw)) != SG_OK) goto fail;
    if ((uint32_t)nw != n) {
        st = BAD("%s: %u encoded layers for %d conv/fc weights", what, n, nw);
        goto fail;
    }
    uint64_t want_other = 0;
    for (int32_t p = 0; p < m->n_params; p++)
        if (!flags[p]) want_other += other_bytes_of(&m->params[p]);
    if (want_other != other) {
        st = BAD("%s: other tensors take %llu bytes, the parameter table needs %llu", what,
                 (unsigned long long)other, (unsigned long long)want_other);
        goto fail;
    }
    for (int32_t p = 0; p < m->n_params; p++) {
        if (flags[p]) continue;
        const struct sg_param *pp = &m->params[p];
        for (size_t j = 0; j < pp->count; j++) {
            const uint32_t u = sgi_ld32(oth + 4 * j);
            memcpy(&m->arena[pp->offset + j], &u, 4);
        }
        oth += 4 * pp->count;
        for (size_t j = 0; j < pp->count; j++) m->mask[pp->offset + j] = (oth[j / 8] >> (j % 8)) & 1;
        oth += (pp->count + 7) / 8;
    }
    const uint8_t *s = streams;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t p = sgi_ld32(tab + i * SGZ_ENTRY), width = sgi_ld32(tab + i * SGZ_ENTRY + 4);
        const uint64_t l = sgi_ld64(tab + i * SGZ_ENTRY + 8);
        if ((int32_t)p != idx[i]) {
            st = BAD("%s: layer %u is parameter %u, the architecture says %d", what, i, p, idx[i]);
            goto fail;
        }
        struct sg_wview v = sg_model_wview(m, idx[i]);
        cfg.index_bits = (int)width;
        const int uses = f == SG_FORMAT_RELIDX || f == SG_FORMAT_GROUP || f == SG_FORMAT_RLE4;
        if (uses ? width < 1 || width > 16 : width != 0) {
            st = BAD("%s: layer '%s': index width %u", what, v.name, width);
            goto fail;
        }
        if (!uses) cfg.index_bits = SG_INDEX_BITS_PAPER;
        if ((st = sg_decode((enum sg_format)f, s, (size_t)l, &cfg, &v)) != SG_OK) {
            st = sgi_error_prefix(st == SG_ERR_ARG ? SG_ERR_FORMAT : st, what);
            goto fail;
        }
        s += l;
    }
    sg_model_apply_masks(m);
    if (info) {
        const uint64_t lb = stream_total;
        *info = (struct sg_sgz_info){(enum sg_format)f, (int32_t)n, len, lb, len - lb, SGZ_HEADER,
                                     table, arch_len, other, 4};
    }
    free(flags), free(idx);
    *out = m;
    return SG_OK;
fail:
    free(flags), free(idx);
    sg_model_free(m);
    return st;
}

enum sg_status sg_sgz_read(const char *path, struct sg_model **out, struct sg_sgz_info *info) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    enum sg_status st = sg_file_read(path, MAX_FILE, 0, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_sgz_deserialize(buf, len, path, out, info);
    free(buf);
    return st;
}
