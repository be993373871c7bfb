/* ONNX export. A model imported from ONNX is written back into its own graph: each
 * parameter's tensor gets the model's (masked) values in the tensor's own data type and
 * layout, everything else is kept byte for byte in meaning. Any other model gets a
 * graph built from our nodes (opset 13), or, when it has no graph, a graph that holds
 * only its tensors as initializers. */
#include <math.h>

#include "io/onnx.h"

#define OPSET 13
#define IR_VERSION 7 /* the IR that opset 13 came with */

/* Every message we build lives in this pool and is freed at once. */
struct pool {
    void **p;
    size_t n, cap;
    int failed;
};
static void *pool_alloc(struct pool *P, size_t size) {
    if (P->failed) return NULL;
    if (P->n == P->cap) {
        size_t cap = P->cap ? P->cap * 2 : 256;
        void **np = realloc(P->p, cap * sizeof *np);
        if (!np) return P->failed = 1, NULL;
        P->p = np;
        P->cap = cap;
    }
    void *q = calloc(1, size ? size : 1);
    if (!q) return P->failed = 1, NULL;
    return P->p[P->n++] = q;
}
static char *pool_str(struct pool *P, const char *s) {
    char *d = pool_alloc(P, strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}
static void pool_free(struct pool *P) {
    for (size_t i = 0; i < P->n; i++) free(P->p[i]);
    free(P->p);
    memset(P, 0, sizeof *P);
}

/* ---- writing back into the original graph ---- */
struct saved { /* a tensor's data fields before we replaced them */
    Onnx__TensorProto *t;
    protobuf_c_boolean has_raw_data;
    ProtobufCBinaryData raw_data;
    size_t n_float_data, n_int32_data, n_double_data, n_int64_data, n_uint64_data;
};

static void put_value(uint8_t *raw, size_t i, int32_t dt, float v) {
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(raw + 4 * i, &v, 4); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        double d = v;
        memcpy(raw + 8 * i, &d, 8);
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
        uint16_t h = sgi_float_to_half(v);
        raw[2 * i] = (uint8_t)h, raw[2 * i + 1] = (uint8_t)(h >> 8);
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: {
        uint32_t b;
        memcpy(&b, &v, 4);
        b = (b + 0x7fffu + ((b >> 16) & 1)) >> 16; /* nearest even (NaN stays NaN-ish) */
        raw[2 * i] = (uint8_t)b, raw[2 * i + 1] = (uint8_t)(b >> 8);
        break;
    }
    default: SG_ASSERT(!"not a float type");
    }
}

static int32_t qv(const Onnx__TensorProto *t, size_t i) {
    int32_t v = t->has_raw_data ? t->raw_data.data[i] : t->int32_data[i];
    return t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? (int8_t)(uint8_t)v : (uint8_t)v;
}

/* The values of parameter p in the layout of its tensor, encoded in the tensor's type. */
static enum sg_status encode_param(const struct sg_model *m, int32_t p,
                                   const struct sgi_onnx_src *s, const struct sgi_onnx_const *c,
                                   const char *what, uint8_t **out, size_t *out_len) {
    const struct sg_param *pp = &m->params[p];
    const float *w = m->arena + pp->offset;
    const size_t n = c->count;
    const int32_t dt = c->t->data_type;
    const size_t es = c->dq_scale ? 1 : sgi_onnx_dtype_size(dt);
    if (n != pp->count && !(n == 1 && !s->transpose))
        return sgi_error(SG_ERR_MISMATCH, "%s: parameter '%s' has %zu values, its ONNX tensor %zu",
                         what, pp->name, pp->count, n);
    if (n != pp->count)
        for (size_t j = 1; j < pp->count; j++)
            if (w[j] != w[0])
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "%s: '%s' now differs per channel but its ONNX tensor '%s' is "
                                 "one broadcast value",
                                 what, pp->name, c->name);
    uint8_t *raw = malloc(n * es > 0 ? n * es : 1);
    if (!raw) return sgi_error(SG_ERR_NOMEM, "out of memory");
    const size_t K = (size_t)pp->dims[0], C = pp->count / K;
    const size_t ns = c->dq_scale ? (c->dq_scale->n_dims ? (size_t)c->dq_scale->dims[0] : 1) : 0;
    size_t inner = 1;
    if (ns > 1)
        for (int d = (int)c->dq_axis + 1; d < c->rank; d++) inner *= (size_t)c->dims[d];
    for (size_t i = 0; i < n; i++) {
        /* tensor element i holds parameter element j */
        const size_t j = s->transpose ? (i % K) * C + i / K : i;
        float v = w[j];
        if (s->scale != 1.0f) v /= s->scale;
        if (!c->dq_scale) {
            put_value(raw, i, dt, v);
            continue;
        }
        /* requantise: unchanged weights give back their original q exactly, pruned
         * ones the zero point */
        const size_t k = ns > 1 ? (i / inner) % ns : 0;
        const Onnx__TensorProto *st = c->dq_scale;
        float sc;
        if (st->has_raw_data) memcpy(&sc, st->raw_data.data + 4 * k, 4);
        else sc = st->float_data[k];
        const int32_t z = c->dq_zero ? qv(c->dq_zero, k) : 0;
        long q = sc != 0.0f ? lrintf(v / sc) + z : z;
        const int is_s8 = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
        const long lo = is_s8 ? -128 : 0, hi = is_s8 ? 127 : 255;
        q = q < lo ? lo : q > hi ? hi : q;
        raw[i] = (uint8_t)(int8_t)q;
    }
    *out = raw;
    *out_len = n * es;
    return SG_OK;
}

/* 1 when adding an initializer called name would change what the graph computes: a
 * node or graph input reads that name without an initializer of it (a node or the
 * graph produces it, or nothing does), or a node writes it. */
static int name_taken(const Onnx__GraphProto *g, const char *name) {
    int init = 0;
    for (size_t i = 0; i < g->n_initializer && !init; i++)
        init = g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0;
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && strcmp(g->input[i]->name, name) == 0 && !init) return 1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_output; k++)
            if (n->output[k] && strcmp(n->output[k], name) == 0) return 1;
        for (size_t k = 0; k < n->n_input && !init; k++)
            if (n->input[k] && strcmp(n->input[k], name) == 0) return 1;
    }
    return 0;
}

/* The model's metadata_props: those of `old` (a graph written back) except our input
 * preprocessing entry, then that entry when the model states one. NULL: out of memory. */
static Onnx__StringStringEntryProto **meta_props(struct pool *P, const struct sg_model *m,
                                                  Onnx__StringStringEntryProto **old, size_t n_old,
                                                  size_t *n_out) {
    Onnx__StringStringEntryProto **v = pool_alloc(P, (n_old + 1) * sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n_old; i++)
        if (!old[i]->key || strcmp(old[i]->key, SG_INPUT_NORM_KEY) != 0) v[k++] = old[i];
    if (m->preproc.stated) {
        char text[256];
        Onnx__StringStringEntryProto *e = pool_alloc(P, sizeof *e);
        if (!e) return NULL;
        onnx__string_string_entry_proto__init(e);
        e->key = pool_str(P, SG_INPUT_NORM_KEY);
        e->value = pool_str(P, sg_preproc_format(&m->preproc, text, sizeof text));
        if (!e->key || !e->value) return NULL;
        v[k++] = e;
    }
    *n_out = k;
    return v;
}

/* Every parameter's tensor gets the model's (masked) values as raw data; the old
 * fields are kept in sv (*n_sv of them) for restore_tensors. */
static enum sg_status swap_weights(const struct sg_model *m, const struct sgi_onnx_ext *e,
                                   const struct sgi_onnx_graph *G, const char *what,
                                   struct saved *sv, int32_t *n_sv, uint8_t **bufs) {
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sgi_onnx_src *s = &e->src[p];
        if (!s->tensor) continue;
        const int32_t ci = sgi_onnx_const_find(G, s->tensor);
        if (ci < 0) return sgi_error(SG_ERR_FORMAT, "the ONNX graph lost tensor '%s'", s->tensor);
        const struct sgi_onnx_const *c = &G->consts[ci];
        size_t len = 0;
        enum sg_status st = encode_param(m, p, s, c, what, &bufs[p], &len);
        if (st != SG_OK) return st;
        Onnx__TensorProto *t = (Onnx__TensorProto *)c->t;
        int32_t seen = -1; /* a tensor read by several layers: their copies must agree */
        for (int32_t k = 0; k < *n_sv; k++)
            if (sv[k].t == t) seen = k;
        if (seen >= 0) {
            if (sv[seen].t->raw_data.len != len || memcmp(sv[seen].t->raw_data.data, bufs[p], len))
                return sgi_error(SG_ERR_UNSUPPORTED,
                                 "tensor '%s' is shared by several layers whose weights now differ "
                                 "(pruned differently?): it cannot be written back into one tensor",
                                 c->name);
            continue;
        }
        struct saved *v = &sv[(*n_sv)++];
        v->t = t;
        v->has_raw_data = t->has_raw_data;
        v->raw_data = t->raw_data;
        v->n_float_data = t->n_float_data, v->n_int32_data = t->n_int32_data;
        v->n_double_data = t->n_double_data, v->n_int64_data = t->n_int64_data;
        v->n_uint64_data = t->n_uint64_data;
        t->has_raw_data = 1;
        t->raw_data.data = bufs[p];
        t->raw_data.len = len;
        t->n_float_data = t->n_int32_data = t->n_double_data = t->n_int64_data = 0;
        t->n_uint64_data = 0;
    }
    return SG_OK;
}

/* The parsed model's own fields back, before it is freed. */
static void restore_tensors(struct saved *sv, int32_t n_sv) {
    for (int32_t k = 0; k < n_sv; k++) {
        Onnx__TensorProto *t = sv[k].t;
        t->has_raw_data = sv[k].has_raw_data;
        t->raw_data = sv[k].raw_data;
        t->n_float_data = sv[k].n_float_data, t->n_int32_data = sv[k].n_int32_data;
        t->n_double_data = sv[k].n_double_data, t->n_int64_data = sv[k].n_int64_data;
        t->n_uint64_data = sv[k].n_uint64_data;
    }
}

/* The initializers without masks written before ("<tensor>.mask" of a parameter's
 * tensor, unless the graph uses it as a parameter itself); returns their count. */
static size_t kept_initializers(const struct sg_model *m, const struct sgi_onnx_ext *e,
                                Onnx__TensorProto **old_init, size_t old_n_init,
                                Onnx__TensorProto **ni) {
    size_t k = 0;
    for (size_t i = 0; i < old_n_init; i++) {
        const char *nm = old_init[i]->name ? old_init[i]->name : "";
        size_t l = strlen(nm);
        int drop = 0, param = 0;
        for (int32_t p = 0; p < m->n_params && !param; p++)
            param = e->src[p].tensor && strcmp(e->src[p].tensor, nm) == 0;
        if (!param && l > 5 && strcmp(nm + l - 5, ".mask") == 0)
            for (int32_t p = 0; p < m->n_params && !drop; p++)
                drop = e->src[p].tensor && strncmp(e->src[p].tensor, nm, l - 5) == 0 &&
                       e->src[p].tensor[l - 5] == 0;
        if (!drop) ni[k++] = old_init[i];
    }
    return k;
}

/* SG_ONNX_MASKS: each mask in the layout of its tensor as a uint8 initializer
 * "<tensor>.mask", replacing masks written before; g's initializer list is replaced
 * (memory from P). */
static enum sg_status add_masks(const struct sg_model *m, const struct sgi_onnx_ext *e,
                                const struct sgi_onnx_graph *G, struct pool *P,
                                Onnx__TensorProto **old_init, size_t old_n_init) {
    Onnx__GraphProto *g = (Onnx__GraphProto *)G->g;
    Onnx__TensorProto **ni = pool_alloc(P, (old_n_init + (size_t)m->n_params) * sizeof *ni);
    if (!ni) return sgi_error(SG_ERR_NOMEM, "out of memory");
    size_t k = kept_initializers(m, e, old_init, old_n_init, ni);
    for (int32_t p = 0; p < m->n_params; p++) {
        const struct sgi_onnx_src *s = &e->src[p];
        const struct sg_param *pp = &m->params[p];
        if (!s->tensor) continue;
        const struct sgi_onnx_const *c = &G->consts[sgi_onnx_const_find(G, s->tensor)];
        if (c->count != pp->count) continue; /* broadcast: nothing to mask */
        int dup = 0;
        for (int32_t q = 0; q < p && !dup; q++)
            dup = e->src[q].tensor && strcmp(e->src[q].tensor, s->tensor) == 0;
        if (dup) continue;
        Onnx__TensorProto *t = pool_alloc(P, sizeof *t);
        uint8_t *mk = pool_alloc(P, pp->count);
        char *name = pool_alloc(P, strlen(s->tensor) + 6);
        int64_t *dims = pool_alloc(P, (size_t)(c->rank ? c->rank : 1) * sizeof *dims);
        if (!t || !mk || !name || !dims) return sgi_error(SG_ERR_NOMEM, "out of memory");
        onnx__tensor_proto__init(t);
        sprintf(name, "%s.mask", s->tensor);
        int kept = 0; /* an initializer we keep (a parameter) has that name already */
        for (size_t i = 0; i < k && !kept; i++)
            kept = ni[i]->name && strcmp(ni[i]->name, name) == 0;
        if (kept || name_taken(g, name))
            return sgi_error(SG_ERR_UNSUPPORTED,
                             "cannot add the mask '%s': the graph already uses that name for "
                             "another tensor (export without --masks)",
                             name);
        t->name = name;
        t->has_data_type = 1;
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
        t->n_dims = (size_t)c->rank;
        memcpy(dims, c->dims, (size_t)c->rank * sizeof *dims);
        t->dims = dims;
        const uint8_t *src = m->mask + pp->offset;
        const size_t K = (size_t)pp->dims[0], C = pp->count / K;
        for (size_t i = 0; i < pp->count; i++) mk[i] = src[s->transpose ? (i % K) * C + i / K : i];
        t->has_raw_data = 1;
        t->raw_data.data = mk;
        t->raw_data.len = pp->count;
        ni[k++] = t;
    }
    g->initializer = ni;
    g->n_initializer = k;
    return SG_OK;
}

static enum sg_status write_back(const struct sg_model *m, const struct sgi_onnx_ext *e,
                                 unsigned flags, uint8_t **out, size_t *out_len) {
    const char *what = "model";
    if (e->n_src != m->n_params)
        return sgi_error(SG_ERR_MISMATCH,
                         "the model has %d parameters, its ONNX graph %d: cannot write it back",
                         m->n_params, e->n_src);
    struct sgi_onnx_graph G;
    enum sg_status st = sgi_onnx_open(e->bytes, e->len, what, &G);
    if (st != SG_OK) return st;
    struct saved *sv = calloc((size_t)m->n_params + 1, sizeof *sv);
    uint8_t **bufs = calloc((size_t)m->n_params + 1, sizeof *bufs);
    int32_t n_sv = 0;
    struct pool P = {0};
    Onnx__GraphProto *g = (Onnx__GraphProto *)G.g;
    Onnx__TensorProto **old_init = g->initializer;
    const size_t old_n_init = g->n_initializer;
    Onnx__ModelProto *model = (Onnx__ModelProto *)G.model;
    Onnx__StringStringEntryProto **old_props = model->metadata_props;
    const size_t old_n_props = model->n_metadata_props;
    if (!sv || !bufs) st = sgi_error(SG_ERR_NOMEM, "out of memory");
    if (st == SG_OK) st = swap_weights(m, e, &G, what, sv, &n_sv, bufs);
    if (st == SG_OK && (flags & SG_ONNX_MASKS)) st = add_masks(m, e, &G, &P, old_init, old_n_init);
    if (st == SG_OK) {
        size_t n_props;
        Onnx__StringStringEntryProto **props = meta_props(&P, m, old_props, old_n_props, &n_props);
        uint8_t *buf = NULL;
        size_t size = 0;
        if (props) {
            model->metadata_props = props;
            model->n_metadata_props = n_props;
            size = onnx__model_proto__get_packed_size(G.model);
            buf = malloc(size ? size : 1);
        }
        if (buf) {
            onnx__model_proto__pack(G.model, buf);
            *out = buf;
            *out_len = size;
        } else {
            st = sgi_error(SG_ERR_NOMEM, "out of memory");
        }
    }
    /* give the parsed model its own fields back before it is freed */
    g->initializer = old_init;
    g->n_initializer = old_n_init;
    model->metadata_props = old_props;
    model->n_metadata_props = old_n_props;
    restore_tensors(sv, n_sv);
    if (bufs)
        for (int32_t p = 0; p < m->n_params; p++) free(bufs[p]);
    free(bufs);
    free(sv);
    pool_free(&P);
    sgi_onnx_close(&G);
    return st;
}

/* ---- a graph built from our nodes ---- */
struct builder {
    struct pool P;
    const struct sg_model *m;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    char **tensor;   /* per our node: name of its output tensor */
    char **flat;     /* per our node: name of its rank-2 form, once made */
    int *rank;       /* per our node: 2 or 4 */
};

static int push(struct builder *B, void *x, int init) {
    void ***arr = init ? (void ***)&B->inits : (void ***)&B->nodes;
    size_t *n = init ? &B->n_inits : &B->n_nodes, *cap = init ? &B->cap_inits : &B->cap_nodes;
    if (!x) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **a = pool_alloc(&B->P, nc * sizeof *a);
        if (!a) return 0;
        if (*n) memcpy(a, *arr, *n * sizeof *a);
        *arr = a; /* the old array stays in the pool until the end */
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return 1;
}

static Onnx__AttributeProto *attr_ints(struct builder *B, const char *name, const int64_t *v,
                                       size_t n) {
    Onnx__AttributeProto *a = pool_alloc(&B->P, sizeof *a);
    int64_t *d = pool_alloc(&B->P, n * sizeof *d);
    if (!a || !d) return NULL;
    onnx__attribute_proto__init(a);
    a->name = pool_str(&B->P, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(d, v, n * sizeof *d);
    a->n_ints = n;
    a->ints = d;
    return a;
}
static Onnx__AttributeProto *attr_int(struct builder *B, const char *name, int64_t v) {
    Onnx__AttributeProto *a = pool_alloc(&B->P, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = pool_str(&B->P, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    return a;
}
static Onnx__AttributeProto *attr_float(struct builder *B, const char *name, float v) {
    Onnx__AttributeProto *a = pool_alloc(&B->P, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = pool_str(&B->P, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
    return a;
}

/* A node with inputs in[0..n_in) and one output. */
static Onnx__NodeProto *node(struct builder *B, const char *op, const char *name,
                             const char *const *in, size_t n_in, const char *out) {
    Onnx__NodeProto *nd = pool_alloc(&B->P, sizeof *nd);
    char **ins = pool_alloc(&B->P, (n_in ? n_in : 1) * sizeof *ins);
    char **outs = pool_alloc(&B->P, sizeof *outs);
    Onnx__AttributeProto **attrs = pool_alloc(&B->P, 8 * sizeof *attrs);
    if (!nd || !ins || !outs || !attrs) return NULL;
    onnx__node_proto__init(nd);
    nd->op_type = pool_str(&B->P, op);
    nd->name = pool_str(&B->P, name);
    for (size_t i = 0; i < n_in; i++) ins[i] = pool_str(&B->P, in[i]);
    nd->n_input = n_in;
    nd->input = ins;
    outs[0] = pool_str(&B->P, out);
    nd->n_output = 1;
    nd->output = outs;
    nd->attribute = attrs;
    return push(B, nd, 0) ? nd : NULL;
}
static int add_attr(Onnx__NodeProto *nd, Onnx__AttributeProto *a) {
    if (!nd || !a || nd->n_attribute >= 8) return 0;
    nd->attribute[nd->n_attribute++] = a;
    return 1;
}

/* An initializer viewing data (not copied: pack copies it). */
static int init_tensor(struct builder *B, const char *name, int32_t dt, const int64_t *dims,
                       int ndim, const void *data, size_t bytes) {
    Onnx__TensorProto *t = pool_alloc(&B->P, sizeof *t);
    int64_t *d = pool_alloc(&B->P, (size_t)(ndim ? ndim : 1) * sizeof *d);
    if (!t || !d) return 0;
    onnx__tensor_proto__init(t);
    t->name = pool_str(&B->P, name);
    t->has_data_type = 1;
    t->data_type = dt;
    memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = bytes;
    return push(B, t, 1);
}

static int param_init(struct builder *B, int32_t p, unsigned flags) {
    const struct sg_param *pp = &B->m->params[p];
    if (!init_tensor(B, pp->name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, pp->dims, pp->ndim,
                     B->m->arena + pp->offset, pp->count * sizeof(float)))
        return 0;
    if (!(flags & SG_ONNX_MASKS)) return 1;
    char name[SG_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s.mask", pp->name);
    return init_tensor(B, name, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, pp->dims, pp->ndim,
                       B->m->mask + pp->offset, pp->count);
}

static Onnx__ValueInfoProto *value_info(struct builder *B, const char *name, const int64_t *dims,
                                        int ndim) {
    Onnx__ValueInfoProto *v = pool_alloc(&B->P, sizeof *v);
    Onnx__TypeProto *tp = pool_alloc(&B->P, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = pool_alloc(&B->P, sizeof *tt);
    Onnx__TensorShapeProto *sh = pool_alloc(&B->P, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = pool_alloc(&B->P, (size_t)ndim * sizeof *dd);
    if (!v || !tp || !tt || !sh || !dd) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = pool_alloc(&B->P, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) { /* the batch */
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = pool_str(&B->P, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        dd[i] = d;
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = dd;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = pool_str(&B->P, name);
    v->type = tp;
    return v;
}

/* Name of node i's output as a rank-2 tensor (a Flatten is added when needed). */
static const char *as_rank2(struct builder *B, int32_t i) {
    if (B->rank[i] == 2) return B->tensor[i];
    if (B->flat[i]) return B->flat[i];
    char name[SG_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s/flat", B->tensor[i]);
    const char *in[1] = {B->tensor[i]};
    Onnx__NodeProto *nd = node(B, "Flatten", name, in, 1, name);
    if (!add_attr(nd, attr_int(B, "axis", 1))) return NULL;
    return B->flat[i] = pool_str(&B->P, name);
}

static enum sg_status build_graph(struct builder *B, unsigned flags, Onnx__GraphProto *g) {
    const struct sg_model *m = B->m;
    const int32_t nn = m->n_nodes;
    B->tensor = pool_alloc(&B->P, ((size_t)nn + 1) * sizeof *B->tensor);
    B->flat = pool_alloc(&B->P, ((size_t)nn + 1) * sizeof *B->flat);
    B->rank = pool_alloc(&B->P, ((size_t)nn + 1) * sizeof *B->rank);
    if (!B->tensor || !B->flat || !B->rank) return SG_ERR_NOMEM;
    struct sgi_strmap seen = {0};
    enum sg_status st = SG_OK;
    char buf[SG_NAME_MAX + 32];
    for (int32_t i = 0; i < nn; i++) {
        const struct sg_node *n = &m->nodes[i];
        /* tensor names must be unique (SSA); node names usually are */
        const char *tn = n->name;
        if (sgi_strmap_get(&seen, tn) >= 0 || sg_model_find_param(m, tn) >= 0 || !*tn) {
            snprintf(buf, sizeof buf, "%s#%d", n->name, i);
            tn = buf;
        }
        if (!(B->tensor[i] = pool_str(&B->P, tn)) || !sgi_strmap_put(&seen, B->tensor[i], i)) {
            st = SG_ERR_NOMEM;
            break;
        }
        B->rank[i] = 4;
        const char *x = n->n_in ? B->tensor[n->in[0]] : NULL;
        const int xr = n->n_in ? B->rank[n->in[0]] : 4;
        const char *in[SG_MAX_INPUTS + 4];
        Onnx__NodeProto *nd = NULL;
        int ok = 1;
        if (n->op != SG_OP_INPUT && n->op != SG_OP_FC && n->op != SG_OP_FLATTEN &&
            n->op != SG_OP_RELU && n->op != SG_OP_DROPOUT && n->op != SG_OP_SOFTMAX &&
            n->op != SG_OP_ADD && n->op != SG_OP_CONCAT && n->op != SG_OP_BN && xr == 2) {
            st = sgi_error(SG_ERR_UNSUPPORTED, "node '%s' (%s) reads a flattened tensor: no ONNX form",
                           n->name, sg_op_name(n->op));
            break;
        }
        switch (n->op) {
        case SG_OP_INPUT: break;
        case SG_OP_CONV: {
            in[0] = x;
            in[1] = m->params[n->param[0]].name;
            if (n->param[1] >= 0) in[2] = m->params[n->param[1]].name;
            nd = node(B, "Conv", n->name, in, n->param[1] >= 0 ? 3 : 2, B->tensor[i]);
            const int64_t k[2] = {n->kh, n->kw}, s[2] = {n->sh, n->sw}, d[2] = {n->dh, n->dw};
            const int64_t p[4] = {n->pt, n->pl, n->pb, n->pr};
            ok = add_attr(nd, attr_ints(B, "kernel_shape", k, 2)) &&
                 add_attr(nd, attr_ints(B, "strides", s, 2)) &&
                 add_attr(nd, attr_ints(B, "pads", p, 4)) &&
                 add_attr(nd, attr_ints(B, "dilations", d, 2)) &&
                 add_attr(nd, attr_int(B, "group", n->groups));
            break;
        }
        case SG_OP_FC:
            in[0] = as_rank2(B, n->in[0]);
            in[1] = m->params[n->param[0]].name;
            if (n->param[1] >= 0) in[2] = m->params[n->param[1]].name;
            nd = node(B, "Gemm", n->name, in, n->param[1] >= 0 ? 3 : 2, B->tensor[i]);
            ok = in[0] && add_attr(nd, attr_int(B, "transB", 1));
            B->rank[i] = 2;
            break;
        case SG_OP_RELU:
        case SG_OP_SOFTMAX:
            nd = node(B, n->op == SG_OP_RELU ? "Relu" : "Softmax", n->name, &x, 1, B->tensor[i]);
            if (n->op == SG_OP_SOFTMAX) ok = add_attr(nd, attr_int(B, "axis", 1));
            B->rank[i] = xr;
            break;
        case SG_OP_MAXPOOL:
        case SG_OP_AVGPOOL: {
            nd = node(B, n->op == SG_OP_MAXPOOL ? "MaxPool" : "AveragePool", n->name, &x, 1,
                      B->tensor[i]);
            const int64_t k[2] = {n->kh, n->kw}, s[2] = {n->sh, n->sw};
            const int64_t p[4] = {n->pt, n->pl, n->pb, n->pr};
            ok = add_attr(nd, attr_ints(B, "kernel_shape", k, 2)) &&
                 add_attr(nd, attr_ints(B, "strides", s, 2)) &&
                 add_attr(nd, attr_ints(B, "pads", p, 4));
            if (ok && n->ceil_mode) ok = add_attr(nd, attr_int(B, "ceil_mode", 1));
            if (ok && n->op == SG_OP_AVGPOOL)
                ok = add_attr(nd, attr_int(B, "count_include_pad", n->count_include_pad != 0));
            break;
        }
        case SG_OP_GAP: nd = node(B, "GlobalAveragePool", n->name, &x, 1, B->tensor[i]); break;
        case SG_OP_BN:
            in[0] = x;
            for (int t = 0; t < 4; t++) in[t + 1] = m->params[n->param[t]].name;
            nd = node(B, "BatchNormalization", n->name, in, 5, B->tensor[i]);
            ok = add_attr(nd, attr_float(B, "epsilon", n->eps)) &&
                 add_attr(nd, attr_float(B, "momentum", 1.0f - n->momentum));
            B->rank[i] = xr;
            break;
        case SG_OP_ADD:
        case SG_OP_CONCAT: {
            int any2 = 0;
            for (int t = 0; t < n->n_in; t++) any2 |= B->rank[n->in[t]] == 2;
            for (int t = 0; t < n->n_in; t++)
                if (!(in[t] = any2 ? as_rank2(B, n->in[t]) : B->tensor[n->in[t]])) ok = 0;
            const char *op = n->op == SG_OP_CONCAT ? "Concat" : n->n_in == 2 ? "Add" : "Sum";
            if (ok) nd = node(B, op, n->name, in, (size_t)n->n_in, B->tensor[i]);
            if (ok && n->op == SG_OP_CONCAT) ok = add_attr(nd, attr_int(B, "axis", 1));
            B->rank[i] = any2 ? 2 : 4;
            break;
        }
        case SG_OP_FLATTEN:
            nd = node(B, "Flatten", n->name, &x, 1, B->tensor[i]);
            ok = add_attr(nd, attr_int(B, "axis", 1));
            B->rank[i] = 2;
            break;
        case SG_OP_DROPOUT: {
            /* opset 13 takes the ratio as an input; inference ignores it */
            snprintf(buf, sizeof buf, "%s.ratio", B->tensor[i]);
            float *r = pool_alloc(&B->P, sizeof *r);
            if (!r) break;
            *r = n->p;
            in[0] = x;
            in[1] = buf;
            ok = init_tensor(B, buf, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0, r, 4);
            nd = node(B, "Dropout", n->name, in, 2, B->tensor[i]);
            B->rank[i] = xr;
            break;
        }
        default:
            st = sgi_error(SG_ERR_UNSUPPORTED, "op %s has no ONNX export", sg_op_name(n->op));
            break;
        }
        if (st != SG_OK) break;
        if (B->P.failed || !ok || (n->op != SG_OP_INPUT && !nd)) {
            st = SG_ERR_NOMEM;
            break;
        }
    }
    for (int32_t p = 0; st == SG_OK && p < m->n_params; p++)
        if (!param_init(B, p, flags)) st = SG_ERR_NOMEM;
    sgi_strmap_free(&seen);
    if (st != SG_OK) return st == SG_ERR_NOMEM ? sgi_error(st, "out of memory") : st;
    const int64_t din[4] = {0, m->in_c, m->in_h, m->in_w};
    const struct sg_node *o = &m->nodes[m->output];
    const int64_t dout[4] = {0, o->c, o->h, o->w};
    Onnx__ValueInfoProto **gi = pool_alloc(&B->P, sizeof *gi);
    Onnx__ValueInfoProto **go = pool_alloc(&B->P, sizeof *go);
    if (!gi || !go) return sgi_error(SG_ERR_NOMEM, "out of memory");
    gi[0] = value_info(B, B->tensor[0], din, 4);
    go[0] = value_info(B, B->tensor[m->output], dout, B->rank[m->output]);
    if (!gi[0] || !go[0]) return sgi_error(SG_ERR_NOMEM, "out of memory");
    g->n_input = 1, g->input = gi;
    g->n_output = 1, g->output = go;
    return SG_OK;
}

static enum sg_status build_new(const struct sg_model *m, unsigned flags, uint8_t **out,
                                size_t *out_len) {
    struct builder B;
    memset(&B, 0, sizeof B);
    B.m = m;
    Onnx__ModelProto mp;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto ops;
    Onnx__OperatorSetIdProto *opsp = &ops;
    onnx__model_proto__init(&mp);
    onnx__graph_proto__init(&g);
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = OPSET;
    mp.has_ir_version = 1;
    mp.ir_version = IR_VERSION;
    mp.producer_name = (char *)"sparsegrain";
    mp.producer_version = (char *)SG_VERSION_STRING;
    mp.n_opset_import = 1;
    mp.opset_import = &opsp;
    mp.graph = &g;
    g.name = (char *)(m->arch[0] ? m->arch : "sparsegrain");
    enum sg_status st = SG_OK;
    if (sg_model_runnable(m)) {
        st = build_graph(&B, flags, &g);
    } else { /* weights only: the tensors, no nodes */
        for (int32_t p = 0; st == SG_OK && p < m->n_params; p++)
            if (!param_init(&B, p, flags)) st = sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    if (st == SG_OK && !(mp.metadata_props = meta_props(&B.P, m, NULL, 0, &mp.n_metadata_props)))
        st = sgi_error(SG_ERR_NOMEM, "out of memory");
    if (st == SG_OK) {
        g.n_node = B.n_nodes, g.node = B.nodes;
        g.n_initializer = B.n_inits, g.initializer = B.inits;
        const size_t size = onnx__model_proto__get_packed_size(&mp);
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf) {
            st = sgi_error(SG_ERR_NOMEM, "out of memory");
        } else {
            onnx__model_proto__pack(&mp, buf);
            *out = buf;
            *out_len = size;
        }
    }
    pool_free(&B.P);
    return st;
}

enum sg_status sg_onnx_serialize(const struct sg_model *m, unsigned flags, uint8_t **out,
                                 size_t *len) {
    *out = NULL;
    *len = 0;
    if (m->ext && m->ext_free == sgi_onnx_ext_free)
        return write_back(m, (const struct sgi_onnx_ext *)m->ext, flags, out, len);
    return build_new(m, flags, out, len);
}

enum sg_status sg_onnx_save(const struct sg_model *m, const char *path, unsigned flags) {
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_onnx_serialize(m, flags, &buf, &len);
    if (st != SG_OK) return sgi_error_prefix(st, path);
    st = sg_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}
