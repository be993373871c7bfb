/* Filling an imported model's arenas from the graph's constants (onnx_map.c decides
 * which constant feeds which parameter, and how).
 *
 * Loading is bound by memory traffic: a 100 MB model is 100 MB of fresh pages that the
 * kernel clears on first touch, then fills with a copy. So the arenas arrive untouched
 * (sg_model_finalize_unfilled), float32 tensors used as they are stored are copied in
 * chunks by all threads, so that clearing and copying spread over the cores, and each
 * chunk's mask is computed while the chunk is still in cache. Everything else (other
 * data types, transposed, scaled, broadcast, dequantised tensors, stored masks) goes
 * through sgi_onnx_const_float one parameter at a time. */
#include "io/onnx.h"

#define CHUNK ((size_t)1 << 16) /* floats: 256 KB of weights and 64 KB of mask */

/* restrict: a uint8_t store may alias anything, which otherwise keeps this loop scalar
 * (re-reading the count on every byte) */
static void mask_nonzero(uint8_t *restrict mk, const float *restrict w, size_t n) {
    for (size_t j = 0; j < n; j++) mk[j] = w[j] != 0.0f;
}

/* Mask computed from the weights: conv/fc weights, whose zeros count as pruned. */
static int masks_from_zeros(const struct sg_param *pp) {
    return pp->kind == SG_PARAM_WEIGHT && pp->layer != SG_LAYER_NONE;
}

/* End of parameter p's slot in the arena: it is padded up to the next one. */
static size_t slot_end(const struct sg_model *m, int32_t p) {
    return p + 1 < m->n_params ? m->params[p + 1].offset : m->arena_len;
}

/* The "<name>.mask" tensor our exporter writes next to a weight tensor, if usable. */
static const struct sgi_onnx_const *stored_mask(const struct sgi_onnx_graph *G,
                                                const struct sgi_onnx_const *c, size_t count) {
    char mname[SG_NAME_MAX + 600];
    snprintf(mname, sizeof mname, "%s.mask", c->name);
    const int32_t mi = sgi_onnx_const_find(G, mname);
    const struct sgi_onnx_const *mc = mi >= 0 ? &G->consts[mi] : NULL;
    if (mc && mc->count == c->count && c->count == count &&
        (mc->t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
         mc->t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL))
        return mc;
    return NULL;
}

/* The float32 values parameter p takes as they are, or NULL. */
static const void *plain_values(const struct sgi_onnx_graph *G, const struct sg_param *pp,
                                const struct sgi_onnx_const *c, const struct sgi_onnx_src *s) {
    const Onnx__TensorProto *t = c->t;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || c->dq_scale || s->transpose ||
        s->scale != 1.0f || c->count != pp->count || stored_mask(G, c, pp->count))
        return NULL;
    return t->has_raw_data ? (const void *)t->raw_data.data : (const void *)t->float_data;
}

/* Parameter p the general way; its padding too. */
static enum sg_status fill_one(const struct sgi_onnx_graph *G, struct sg_model *m, int32_t p,
                               int32_t ci, const struct sgi_onnx_src *s, float **tmp,
                               size_t *tmp_len) {
    const struct sg_param *pp = &m->params[p];
    const struct sgi_onnx_const *c = &G->consts[ci];
    float *dst = sg_param_data(m, p);
    uint8_t *mk = sg_param_mask(m, p);
    const float *val = dst;
    if (s->transpose || c->count != pp->count) {
        if (c->count > *tmp_len) {
            free(*tmp);
            *tmp_len = c->count;
            if (!(*tmp = sgi_alloc(*tmp_len, sizeof **tmp))) return SG_ERR_NOMEM;
        }
        val = *tmp;
    }
    enum sg_status st = sgi_onnx_const_float(G, ci, (float *)val);
    if (st != SG_OK) return st;
    const size_t K = (size_t)pp->dims[0], C = pp->count / K;
    if (s->transpose) { /* the tensor is [C][K] */
        for (size_t k = 0; k < K; k++)
            for (size_t j = 0; j < C; j++) dst[k * C + j] = val[j * K + k];
    } else if (val != dst) {
        for (size_t j = 0; j < pp->count; j++) dst[j] = val[0]; /* broadcast bias */
    }
    if (s->scale != 1.0f)
        for (size_t j = 0; j < pp->count; j++) dst[j] *= s->scale;
    const struct sgi_onnx_const *mc = stored_mask(G, c, pp->count);
    if (mc) {
        for (size_t j = 0; j < pp->count; j++) {
            size_t from = s->transpose ? (j % C) * K + j / C : j;
            mk[j] = (mc->t->has_raw_data ? mc->t->raw_data.data[from] : mc->t->int32_data[from]) != 0;
            if (!mk[j]) dst[j] = 0.0f; /* the invariant: pruned weights are zero */
        }
    } else if (masks_from_zeros(pp)) {
        mask_nonzero(mk, dst, pp->count);
    } else {
        memset(mk, 1, pp->count);
    }
    const size_t pad = slot_end(m, p) - pp->offset - pp->count;
    memset(dst + pp->count, 0, pad * sizeof *dst);
    memset(mk + pp->count, 1, pad);
    return SG_OK;
}

/* Elements [from, to) of parameter p's slot, from the plain values v; when v lies in
 * the file mapping map, the pages copied leave the resident set (so a model loads in
 * its own size of memory, not that plus the file's). */
static void fill_plain(struct sg_model *m, int32_t p, const uint8_t *v, size_t from, size_t to,
                       const struct sgi_map *map) {
    const struct sg_param *pp = &m->params[p];
    float *dst = sg_param_data(m, p);
    uint8_t *mk = sg_param_mask(m, p);
    const size_t end = to < pp->count ? to : pp->count;
    if (from < end) {
        memcpy(dst + from, v + 4 * from, (end - from) * sizeof *dst);
        sgi_map_release(map, v + 4 * from, (end - from) * sizeof *dst);
        if (masks_from_zeros(pp)) mask_nonzero(mk + from, dst + from, end - from);
        else memset(mk + from, 1, end - from);
    }
    const size_t pad = end > from ? end : from;
    if (pad < to) { /* the padding after the parameter */
        memset(dst + pad, 0, (to - pad) * sizeof *dst);
        memset(mk + pad, 1, to - pad);
    }
}

enum sg_status sgi_onnx_fill(const struct sgi_onnx_graph *G, struct sg_model *m,
                             const int32_t *param_const, const struct sgi_onnx_src *src) {
    enum sg_status st = SG_OK;
    float *tmp = NULL;
    size_t tmp_len = 0, n_chunks = 0;
    const void **plain = calloc(m->n_params ? (size_t)m->n_params : 1, sizeof *plain);
    if (!plain) return sgi_error(SG_ERR_NOMEM, "out of memory");
    for (int32_t p = 0; p < m->n_params && st == SG_OK; p++) {
        const struct sg_param *pp = &m->params[p];
        const struct sgi_onnx_const *c = &G->consts[param_const[p]];
        if (c->count != pp->count && !(c->count == 1 && !src[p].transpose))
            st = sgi_error(SG_ERR_FORMAT, "%s: tensor '%s' has %zu values, '%s' needs %zu",
                           G->what, c->name, c->count, pp->name, pp->count);
        else if ((plain[p] = plain_values(G, pp, c, &src[p])))
            n_chunks += (slot_end(m, p) - pp->offset + CHUNK - 1) / CHUNK;
        else
            st = fill_one(G, m, p, param_const[p], &src[p], &tmp, &tmp_len);
    }
    free(tmp);
    struct chunk {
        int32_t p;
        size_t from, to;
    } *ch = st == SG_OK ? malloc((n_chunks ? n_chunks : 1) * sizeof *ch) : NULL;
    if (st == SG_OK && !ch) st = sgi_error(SG_ERR_NOMEM, "out of memory");
    if (st == SG_OK) {
        size_t n = 0;
        for (int32_t p = 0; p < m->n_params; p++) {
            const size_t len = plain[p] ? slot_end(m, p) - m->params[p].offset : 0;
            for (size_t a = 0; a < len; a += CHUNK)
                ch[n++] = (struct chunk){p, a, a + CHUNK < len ? a + CHUNK : len};
        }
        SG_ASSERT(n == n_chunks);
        /* static: each thread takes one contiguous run of the arena, so two threads
         * rarely fault on the same 2 MB page (finer interleaving was 1.5x slower) */
        const struct sgi_map map = {G->file, G->file_len, G->file_len};
        const struct sgi_map *mapp = G->file_mapped ? &map : NULL;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            fill_plain(m, ch[i].p, plain[ch[i].p], ch[i].from, ch[i].to, mapp);
    }
    free(ch);
    free(plain);
    return st;
}
