/* The .sgm container: header, tagged sections, CRC-32 trailer (docs/file-format.md). */
#include "core/sgi.h"
#include "sparsegrain/io.h"

#define SGM_MAGIC SG_SGM_MAGIC
#define MAX_NODES (1 << 20)
#define MAX_PARAMS (1 << 20)
#define MAX_ELEMS ((uint64_t)1 << 36)
#define MAX_FILE ((size_t)64 << 30)
#define FLAG_OPTIM 1u

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
enum {
    TAG_ARCH = TAG('A', 'R', 'C', 'H'),
    TAG_PRMS = TAG('P', 'R', 'M', 'S'),
    TAG_DATA = TAG('D', 'A', 'T', 'A'),
    TAG_MASK = TAG('M', 'A', 'S', 'K'),
    TAG_META = TAG('M', 'E', 'T', 'A'),
    TAG_OPTM = TAG('O', 'P', 'T', 'M'),
    TAG_INPT = TAG('I', 'N', 'P', 'T'),
    TAG_END = TAG('E', 'N', 'D', ' '),
};

/* ---- writing ---- */
static size_t section_begin(struct sgi_buf *b, uint32_t tag) {
    sgi_buf_u32(b, tag);
    sgi_buf_u32(b, 0);
    size_t at = b->len;
    sgi_buf_u64(b, 0); /* patched by section_end */
    return at;
}

static void section_end(struct sgi_buf *b, size_t at) {
    if (b->failed) return;
    uint64_t len = b->len - at - 8;
    for (int i = 0; i < 8; i++) b->data[at + i] = (uint8_t)(len >> (8 * i));
    sgi_buf_pad(b, 8);
}

static void put_node(struct sgi_buf *b, const struct sg_node *n) {
    sgi_buf_str(b, n->name);
    sgi_buf_u32(b, (uint32_t)n->op);
    sgi_buf_u32(b, (uint32_t)n->n_in);
    for (int i = 0; i < n->n_in; i++) sgi_buf_i32(b, n->in[i]);
    const int32_t ints[] = {n->k,  n->kh, n->kw, n->sh, n->sw,     n->pt,
                            n->pl, n->pb, n->pr, n->dh, n->dw,     n->groups,
                            n->ceil_mode, n->count_include_pad, n->has_bias};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) sgi_buf_i32(b, ints[i]);
    sgi_buf_f32(b, n->eps);
    sgi_buf_f32(b, n->momentum);
    sgi_buf_f32(b, n->p);
    for (int i = 0; i < 4; i++) sgi_buf_i32(b, n->param[i]);
}

enum sg_status sg_model_serialize(const struct sg_model *m, const struct sg_train_state *st,
                                  uint8_t **out, size_t *out_len) {
    struct sgi_buf b = {0};
    size_t total = 0;
    for (int32_t i = 0; i < m->n_params; i++) total += m->params[i].count;
    sgi_buf_reserve(&b, total * 5 + total / 8 + 4096 + (st ? total * 4 : 0));
    sgi_buf_put(&b, SGM_MAGIC "\0", 8);
    sgi_buf_u32(&b, SG_SGM_VERSION);
    sgi_buf_u32(&b, st ? FLAG_OPTIM : 0);
    sgi_buf_u64(&b, 0); /* file size, patched at the end */

    size_t at = section_begin(&b, TAG_ARCH);
    sgi_buf_str(&b, m->arch);
    sgi_buf_i32(&b, m->in_c);
    sgi_buf_i32(&b, m->in_h);
    sgi_buf_i32(&b, m->in_w);
    sgi_buf_i32(&b, m->n_classes);
    sgi_buf_i32(&b, m->output);
    sgi_buf_u32(&b, (uint32_t)m->n_nodes);
    for (int32_t i = 0; i < m->n_nodes; i++) put_node(&b, &m->nodes[i]);
    section_end(&b, at);

    at = section_begin(&b, TAG_PRMS);
    sgi_buf_u32(&b, (uint32_t)m->n_params);
    for (int32_t i = 0; i < m->n_params; i++) {
        const struct sg_param *p = &m->params[i];
        sgi_buf_str(&b, p->name);
        sgi_buf_u32(&b, (uint32_t)p->kind);
        sgi_buf_u32(&b, (uint32_t)p->layer);
        sgi_buf_i32(&b, p->node);
        sgi_buf_u32(&b, (uint32_t)p->ndim);
        for (int d = 0; d < p->ndim; d++) sgi_buf_u64(&b, (uint64_t)p->dims[d]);
    }
    section_end(&b, at);

    at = section_begin(&b, TAG_DATA);
    for (int32_t i = 0; i < m->n_params; i++)
        sgi_buf_put(&b, m->arena + m->params[i].offset, m->params[i].count * sizeof(float));
    section_end(&b, at);

    at = section_begin(&b, TAG_MASK);
    for (int32_t i = 0; i < m->n_params; i++) {
        const uint8_t *mk = m->mask + m->params[i].offset;
        const size_t cnt = m->params[i].count;
        for (size_t j = 0; j < cnt; j += 8) {
            uint8_t byte = 0;
            for (size_t t = 0; t < 8 && j + t < cnt; t++) byte |= (uint8_t)((mk[j + t] != 0) << t);
            sgi_buf_u8(&b, byte);
        }
    }
    section_end(&b, at);

    at = section_begin(&b, TAG_META);
    sgi_buf_u32(&b, (uint32_t)m->n_meta);
    for (int i = 0; i < m->n_meta; i++) {
        sgi_buf_str(&b, m->meta[i].key);
        sgi_buf_str(&b, m->meta[i].value);
    }
    section_end(&b, at);

    if (m->preproc.stated) { /* absent: the file does not say (what older files mean) */
        const struct sg_preproc *pp = &m->preproc;
        at = section_begin(&b, TAG_INPT);
        sgi_buf_i32(&b, pp->kind);
        sgi_buf_i32(&b, pp->order);
        sgi_buf_i32(&b, pp->n);
        sgi_buf_f32(&b, pp->range);
        for (int i = 0; i < pp->n; i++) sgi_buf_f32(&b, pp->mean[i]);
        for (int i = 0; i < pp->n; i++) sgi_buf_f32(&b, pp->std[i]);
        section_end(&b, at);
    }

    if (st) {
        at = section_begin(&b, TAG_OPTM);
        sgi_buf_u32(&b, (uint32_t)st->epochs_done);
        sgi_buf_f64(&b, st->last_loss);
        sgi_buf_f64(&b, st->last_acc);
        for (int32_t i = 0; i < m->n_params; i++)
            sgi_buf_put(&b, st->velocity + m->params[i].offset, m->params[i].count * sizeof(float));
        section_end(&b, at);
    }
    at = section_begin(&b, TAG_END);
    section_end(&b, at);
    if (b.failed) {
        sgi_buf_free(&b);
        return sgi_error(SG_ERR_NOMEM, "out of memory serialising the model");
    }
    const uint64_t size = b.len + 4;
    for (int i = 0; i < 8; i++) b.data[16 + i] = (uint8_t)(size >> (8 * i));
    sgi_buf_u32(&b, sgi_crc32(0, b.data, b.len));
    if (b.failed) {
        sgi_buf_free(&b);
        return sgi_error(SG_ERR_NOMEM, "out of memory serialising the model");
    }
    *out = b.data;
    *out_len = b.len;
    return SG_OK;
}

enum sg_status sg_model_save(const struct sg_model *m, const char *path,
                             const struct sg_train_state *st) {
    uint8_t *buf;
    size_t len;
    enum sg_status s = sg_model_serialize(m, st, &buf, &len);
    if (s != SG_OK) return s;
    s = sg_file_write_atomic(path, buf, len);
    free(buf);
    return s;
}

/* ---- reading ---- */
struct section {
    const uint8_t *p;
    size_t len;
    int present;
};

#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

static enum sg_status read_node(struct sgi_cur *c, struct sg_node *n, const char *what,
                                int32_t index) {
    memset(n, 0, sizeof *n);
    if (!sgi_cur_str(c, n->name, sizeof n->name))
        return BAD("%s: node %d: bad name", what, index);
    uint32_t op = sgi_cur_u32(c), nin = sgi_cur_u32(c);
    if (op >= SG_OP_COUNT) return BAD("%s: node %d ('%s'): unknown op %u", what, index, n->name, op);
    if (nin > SG_MAX_INPUTS)
        return BAD("%s: node %d ('%s'): %u inputs (at most %d)", what, index, n->name, nin,
                   SG_MAX_INPUTS);
    n->op = (enum sg_op)op;
    n->n_in = (int32_t)nin;
    for (uint32_t i = 0; i < nin; i++) n->in[i] = sgi_cur_i32(c);
    int32_t *ints[] = {&n->k,  &n->kh, &n->kw, &n->sh, &n->sw,     &n->pt,
                       &n->pl, &n->pb, &n->pr, &n->dh, &n->dw,     &n->groups,
                       &n->ceil_mode, &n->count_include_pad, &n->has_bias};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) *ints[i] = sgi_cur_i32(c);
    n->eps = sgi_cur_f32(c);
    n->momentum = sgi_cur_f32(c);
    n->p = sgi_cur_f32(c);
    for (int i = 0; i < 4; i++) n->param[i] = sgi_cur_i32(c);
    if (c->bad) return BAD("%s: node %d: truncated", what, index);
    /* bound every attribute so later arithmetic cannot overflow */
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (*ints[i] < 0 || *ints[i] > (1 << 24))
            return BAD("%s: node %d ('%s'): attribute out of range (%d)", what, index, n->name,
                       *ints[i]);
    if ((n->op == SG_OP_CONV || n->op == SG_OP_MAXPOOL || n->op == SG_OP_AVGPOOL) &&
        (n->kh < 1 || n->kw < 1 || n->sh < 1 || n->sw < 1 || n->dh < 1 || n->dw < 1 ||
         n->groups < 1 || n->kh > 4096 || n->kw > 4096))
        return BAD("%s: node %d ('%s'): bad window or stride", what, index, n->name);
    return SG_OK;
}

/* The header (magic, version, size) and the checksum over the whole file. */
static enum sg_status check_file(const uint8_t *buf, size_t len, const char *what,
                                 const struct sgi_map *map, uint32_t *flags) {
    if (len < 28 || memcmp(buf, SGM_MAGIC "\0", 8) != 0)
        return BAD("%s: not a sparsegrain model (.sgm) file", what);
    uint32_t version = sgi_ld32(buf + 8);
    *flags = sgi_ld32(buf + 12);
    uint64_t size = sgi_ld64(buf + 16);
    if (version != SG_SGM_VERSION)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: .sgm version %u (this build reads version %d)",
                         what, version, SG_SGM_VERSION);
    if (size != len)
        return BAD("%s: truncated or padded: header says %llu bytes, file has %zu", what,
                   (unsigned long long)size, len);
    uint32_t crc = 0;
    for (size_t at = 0, chunk = (size_t)16 << 20; at < len - 4; at += chunk) {
        const size_t k = len - 4 - at < chunk ? len - 4 - at : chunk;
        crc = sgi_crc32(crc, buf + at, k);
        sgi_map_release(map, buf + at, k);
    }
    if (crc != sgi_ld32(buf + len - 4))
        return BAD("%s: checksum mismatch (the file is corrupted)", what);
    return SG_OK;
}

struct sections {
    struct section arch, prms, data, mask, meta, optm, inpt;
};

/* The sections between the header and the checksum, up to END. */
static enum sg_status find_sections(const uint8_t *buf, size_t len, const char *what,
                                    uint32_t flags, struct sections *S) {
    memset(S, 0, sizeof *S);
    struct sgi_cur c;
    sgi_cur_init(&c, buf + 24, len - 28, what);
    int ended = 0;
    while (!ended) {
        uint32_t tag = sgi_cur_u32(&c);
        sgi_cur_u32(&c);
        uint64_t slen = sgi_cur_u64(&c);
        if (c.bad || slen > sgi_cur_left(&c)) return BAD("%s: section runs past the end", what);
        const uint8_t *p = sgi_cur_bytes(&c, (size_t)slen);
        size_t pad = (8 - (c.off + 24) % 8) % 8;
        if (pad > sgi_cur_left(&c)) return BAD("%s: section padding runs past the end", what);
        c.off += pad;
        struct section *s = NULL;
        switch (tag) {
        case TAG_ARCH: s = &S->arch; break;
        case TAG_PRMS: s = &S->prms; break;
        case TAG_DATA: s = &S->data; break;
        case TAG_MASK: s = &S->mask; break;
        case TAG_META: s = &S->meta; break;
        case TAG_OPTM: s = &S->optm; break;
        case TAG_INPT: s = &S->inpt; break;
        case TAG_END: ended = 1; break;
        default: break; /* unknown sections are skipped: newer writers may add some */
        }
        if (s) {
            if (s->present) return BAD("%s: duplicate section", what);
            s->p = p;
            s->len = (size_t)slen;
            s->present = 1;
        }
    }
    if (sgi_cur_left(&c) != 0) return BAD("%s: %zu bytes after the END section", what, sgi_cur_left(&c));
    if (!S->arch.present || !S->prms.present || !S->data.present || !S->mask.present)
        return BAD("%s: missing a required section (ARCH, PRMS, DATA, MASK)", what);
    if (((flags & FLAG_OPTIM) != 0) != S->optm.present)
        return BAD("%s: optimizer flag and OPTM section disagree", what);
    return SG_OK;
}

/* ARCH: the model with its nodes (*n_classes as the header says). */
static enum sg_status read_arch(const struct section *arch, const char *what,
                                struct sg_model **out, int32_t *n_classes) {
    struct sgi_cur c;
    sgi_cur_init(&c, arch->p, arch->len, what);
    char name[32];
    if (!sgi_cur_str(&c, name, sizeof name)) return BAD("%s: bad architecture name", what);
    int32_t in_c = sgi_cur_i32(&c), in_h = sgi_cur_i32(&c), in_w = sgi_cur_i32(&c);
    *n_classes = sgi_cur_i32(&c);
    const int32_t output = sgi_cur_i32(&c);
    uint32_t n_nodes = sgi_cur_u32(&c);
    if (c.bad) return BAD("%s: truncated ARCH section", what);
    if (in_c < 0 || in_h < 0 || in_w < 0 || in_c > 65536 || in_h > 65536 || in_w > 65536 ||
        n_nodes > MAX_NODES || *n_classes < 0)
        return BAD("%s: input shape %dx%dx%d or node count %u out of range", what, in_c, in_h,
                   in_w, n_nodes);
    struct sg_model *m = *out = sg_model_new(name, in_c, in_h, in_w);
    if (!m) return SG_ERR_NOMEM;
    for (uint32_t i = 0; i < n_nodes; i++) {
        struct sg_node n;
        enum sg_status st = read_node(&c, &n, what, (int32_t)i);
        if (st != SG_OK) return st;
        if (sg_model_add(m, &n) < 0) return sgi_error_prefix(SG_ERR_FORMAT, what);
    }
    if (sgi_cur_left(&c) != 0)
        return BAD("%s: ARCH section has %zu extra bytes", what, sgi_cur_left(&c));
    if (n_nodes > 0 && (output < 0 || output >= (int32_t)n_nodes))
        return BAD("%s: output node %d out of range", what, output);
    m->output = n_nodes > 0 ? output : -1;
    return SG_OK;
}

/* PRMS: the parameter table (*elems: elements in all). */
static enum sg_status read_prms(const struct section *prms, const char *what, struct sg_model *m,
                                uint64_t *elems) {
    struct sgi_cur c;
    sgi_cur_init(&c, prms->p, prms->len, what);
    const int32_t n_nodes = m->n_nodes;
    uint32_t n_params = sgi_cur_u32(&c);
    if (n_params > MAX_PARAMS) return BAD("%s: %u parameters (limit %d)", what, n_params, MAX_PARAMS);
    *elems = 0;
    for (uint32_t i = 0; i < n_params; i++) {
        char pname[SG_NAME_MAX];
        if (!sgi_cur_str(&c, pname, sizeof pname)) return BAD("%s: parameter %u: bad name", what, i);
        uint32_t kind = sgi_cur_u32(&c), layer = sgi_cur_u32(&c);
        int32_t node = sgi_cur_i32(&c);
        uint32_t ndim = sgi_cur_u32(&c);
        int64_t dims[4] = {1, 1, 1, 1};
        if (c.bad || kind >= SG_PARAM_KIND_COUNT || layer > SG_LAYER_FC || ndim < 1 || ndim > 4 ||
            node < -1 || node >= n_nodes)
            return BAD("%s: parameter '%s': bad kind, layer, node or rank", what, pname);
        uint64_t cnt = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint64_t v = sgi_cur_u64(&c);
            if (v == 0 || v > MAX_ELEMS || cnt > MAX_ELEMS / v)
                return BAD("%s: parameter '%s': dimension %llu out of range", what, pname,
                           (unsigned long long)v);
            cnt *= v;
            dims[d] = (int64_t)v;
        }
        *elems += cnt;
        if (*elems > MAX_ELEMS)
            return BAD("%s: more than %llu parameters in total", what, (unsigned long long)MAX_ELEMS);
        if (sg_model_add_param(m, pname, (enum sg_param_kind)kind, (enum sg_layer_kind)layer, node,
                               (int)ndim, dims) < 0)
            return sgi_error_prefix(SG_ERR_FORMAT, what);
    }
    if (c.bad || sgi_cur_left(&c) != 0) return BAD("%s: PRMS section size mismatch", what);
    for (int32_t i = 0; i < m->n_nodes; i++)
        for (int j = 0; j < 4; j++)
            if (m->nodes[i].param[j] < -1 || m->nodes[i].param[j] >= (int32_t)n_params)
                return BAD("%s: node '%s' refers to parameter %d", what, m->nodes[i].name,
                           m->nodes[i].param[j]);
    return SG_OK;
}

/* Checks DATA and MASK against the table before the arenas are allocated, finalizes
 * the model, then fills the arenas. */
static enum sg_status read_arenas(const struct sections *S, const char *what,
                                  const struct sgi_map *map, struct sg_model *m, uint64_t elems,
                                  int32_t n_classes) {
    const int32_t n_params = m->n_params;
    size_t mask_bytes = 0;
    for (int32_t i = 0; i < m->n_params; i++) mask_bytes += (m->params[i].count + 7) / 8;
    if (S->data.len != elems * 4 || S->mask.len != mask_bytes)
        return BAD("%s: DATA (%zu bytes) or MASK (%zu bytes) does not match the parameter table "
                   "(%llu elements)",
                   what, S->data.len, S->mask.len, (unsigned long long)elems);
    if (S->optm.present && S->optm.len != 4 + 16 + elems * 4)
        return BAD("%s: OPTM section size mismatch", what);
    if (sg_model_finalize(m) != SG_OK) return sgi_error_prefix(SG_ERR_FORMAT, what);
    if (m->n_params != n_params) return BAD("%s: a node lacks the parameters it needs", what);
    if (m->n_nodes > 0 && m->n_classes != n_classes)
        return BAD("%s: header says %d classes, the graph outputs %d", what, n_classes,
                   m->n_classes);
    m->n_classes = n_classes;
    const uint8_t *dp = S->data.p, *mp = S->mask.p;
    for (int32_t i = 0; i < m->n_params; i++) {
        const size_t cnt = m->params[i].count;
        sgi_map_copy(map, m->arena + m->params[i].offset, dp, cnt * 4);
        dp += cnt * 4;
    }
    for (int32_t i = 0; i < m->n_params; i++) {
        const size_t cnt = m->params[i].count;
        uint8_t *mk = m->mask + m->params[i].offset;
        for (size_t j = 0; j < cnt; j++) mk[j] = (mp[j / 8] >> (j % 8)) & 1;
        sgi_map_release(map, mp, (cnt + 7) / 8);
        mp += (cnt + 7) / 8;
    }
    sg_model_apply_masks(m);
    return SG_OK;
}

static enum sg_status read_meta(const struct section *meta, const char *what, struct sg_model *m) {
    struct sgi_cur c;
    sgi_cur_init(&c, meta->p, meta->len, what);
    uint32_t nm = sgi_cur_u32(&c);
    if (nm > SG_META_MAX) return BAD("%s: %u metadata entries (limit %d)", what, nm, SG_META_MAX);
    for (uint32_t i = 0; i < nm; i++)
        if (!sgi_cur_str(&c, m->meta[i].key, sizeof m->meta[i].key) ||
            !sgi_cur_str(&c, m->meta[i].value, sizeof m->meta[i].value))
            return BAD("%s: bad metadata entry %u", what, i);
    m->n_meta = (int32_t)nm;
    return SG_OK;
}

/* INPT: the input preprocessing the model states. */
static enum sg_status read_inpt(const struct section *inpt, const char *what, struct sg_model *m) {
    struct sg_preproc *pp = &m->preproc;
    struct sgi_cur c;
    sgi_cur_init(&c, inpt->p, inpt->len, what);
    pp->kind = sgi_cur_i32(&c);
    pp->order = sgi_cur_i32(&c);
    pp->n = sgi_cur_i32(&c);
    pp->range = sgi_cur_f32(&c);
    if (c.bad || pp->n < 0 || pp->n > SG_PREPROC_MAX_CH) return BAD("%s: bad INPT section", what);
    for (int i = 0; i < pp->n; i++) pp->mean[i] = sgi_cur_f32(&c);
    for (int i = 0; i < pp->n; i++) pp->std[i] = sgi_cur_f32(&c);
    pp->stated = 1;
    if (c.bad || sgi_cur_left(&c) != 0) return BAD("%s: INPT section size mismatch", what);
    if (sg_preproc_check(pp, m->in_c) != SG_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sg_last_error());
        return BAD("%s: input preprocessing: %s", what, why);
    }
    return SG_OK;
}

static enum sg_status read_optm(const struct section *optm, const char *what,
                                const struct sgi_map *map, const struct sg_model *m,
                                struct sg_train_state **out) {
    struct sg_train_state *ts;
    enum sg_status st = sg_train_state_new(m, &ts);
    if (st != SG_OK) return st;
    *out = ts;
    struct sgi_cur c;
    sgi_cur_init(&c, optm->p, optm->len, what);
    ts->epochs_done = (int)sgi_cur_u32(&c);
    ts->last_loss = sgi_cur_f64(&c);
    ts->last_acc = sgi_cur_f64(&c);
    if (ts->epochs_done < 0 || ts->epochs_done > 1000000)
        return BAD("%s: optimizer state claims %d epochs", what, ts->epochs_done);
    for (int32_t i = 0; i < m->n_params; i++) {
        const size_t cnt = m->params[i].count;
        sgi_map_copy(map, ts->velocity + m->params[i].offset, sgi_cur_bytes(&c, cnt * 4), cnt * 4);
    }
    return SG_OK;
}

/* map: the mapping buf lies in (NULL for plain memory); the bulk sections are copied
 * out of it front to back and released as they go (sgi_map_release). */
static enum sg_status parse(const uint8_t *buf, size_t len, const char *what,
                            const struct sgi_map *map, struct sg_model **out,
                            struct sg_train_state **st_out) {
    *out = NULL;
    if (st_out) *st_out = NULL;
    uint32_t flags = 0;
    struct sections S;
    enum sg_status st = check_file(buf, len, what, map, &flags);
    if (st == SG_OK) st = find_sections(buf, len, what, flags, &S);
    if (st != SG_OK) return st;
    struct sg_model *m = NULL;
    struct sg_train_state *ts = NULL;
    int32_t n_classes = 0;
    uint64_t elems = 0;
    st = read_arch(&S.arch, what, &m, &n_classes);
    if (st == SG_OK) st = read_prms(&S.prms, what, m, &elems);
    if (st == SG_OK) st = read_arenas(&S, what, map, m, elems, n_classes);
    if (st == SG_OK && S.meta.present) st = read_meta(&S.meta, what, m);
    if (st == SG_OK && S.inpt.present) st = read_inpt(&S.inpt, what, m);
    if (st == SG_OK && S.optm.present && st_out) st = read_optm(&S.optm, what, map, m, &ts);
    if (st != SG_OK) {
        sg_train_state_free(ts);
        sg_model_free(m);
        return st;
    }
    *out = m;
    if (st_out) *st_out = ts;
    return SG_OK;
}

enum sg_status sg_model_deserialize(const uint8_t *buf, size_t len, const char *what,
                                    struct sg_model **out, struct sg_train_state **st) {
    return parse(buf, len, what, NULL, out, st);
}

enum sg_status sg_model_load_state(const char *path, struct sg_model **out,
                                   struct sg_train_state **st) {
    struct sgi_map map;
    enum sg_status s = sgi_file_map(path, MAX_FILE, &map);
    if (s != SG_OK) return s;
    s = parse(map.p, map.len, path, &map, out, st);
    sgi_file_unmap(&map);
    return s;
}

enum sg_status sg_model_load(const char *path, struct sg_model **out) {
    return sg_model_load_state(path, out, NULL);
}
