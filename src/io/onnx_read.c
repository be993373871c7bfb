/* ONNX reading: the ModelProto is parsed by protobuf-c code generated from Debian's
 * onnx.proto; this file validates what the parser cannot (shapes against data sizes,
 * data types) and decodes constant tensors to float. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/onnx.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ONNX raw_data is little-endian; this reader copies it as is"
#endif

/* ---- string map ---- */
static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int strmap_grow(struct sgi_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **key = calloc(cap, sizeof *key);
    int32_t *val = calloc(cap, sizeof *val);
    if (!key || !val) {
        free(key), free(val);
        return 0;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = hash_str(m->key[i]) & (cap - 1);
            while (key[j]) j = (j + 1) & (cap - 1);
            key[j] = m->key[i];
            val[j] = m->val[i];
        }
    free(m->key), free(m->val);
    m->key = key;
    m->val = val;
    m->cap = cap;
    return 1;
}

int sgi_strmap_put(struct sgi_strmap *m, const char *key, int32_t val) {
    if ((m->n + 1) * 2 > m->cap && !strmap_grow(m)) return 0;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->key[j] && strcmp(m->key[j], key) != 0) j = (j + 1) & (m->cap - 1);
    if (!m->key[j]) m->n++;
    m->key[j] = key;
    m->val[j] = val;
    return 1;
}

int32_t sgi_strmap_get(const struct sgi_strmap *m, const char *key) {
    if (!m->cap) return -1;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->key[j]) {
        if (strcmp(m->key[j], key) == 0) return m->val[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void sgi_strmap_free(struct sgi_strmap *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* ---- data types ---- */
const char *sgi_onnx_dtype_name(int32_t dt) {
    static const char *const names[] = {"undefined", "float32", "uint8",   "int8",    "uint16",
                                        "int16",     "int32",   "int64",   "string",  "bool",
                                        "float16",   "float64", "uint32",  "uint64",  "complex64",
                                        "complex128", "bfloat16"};
    return dt >= 0 && dt < (int32_t)(sizeof names / sizeof names[0]) ? names[dt] : "unknown";
}

size_t sgi_onnx_dtype_size(int32_t dt) {
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: return 16;
    default: return 0;
    }
}

/* ---- tensors ---- */
#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

static const char *tname(const Onnx__TensorProto *t) { return t->name && *t->name ? t->name : "?"; }

enum sg_status sgi_onnx_tensor_check(const Onnx__TensorProto *t, const char *what, int *rank,
                                     int64_t *dims, size_t *count) {
    if (t->n_dims > SGI_ONNX_MAX_RANK)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %zu (at most %d)", what,
                         tname(t), t->n_dims, SGI_ONNX_MAX_RANK);
    uint64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        const int64_t d = t->dims[i];
        if (d < 0) return BAD("%s: tensor '%s' has a negative dimension (%lld)", what, tname(t), (long long)d);
        if (d > 0 && n > SGI_ONNX_MAX_ELEMS / (uint64_t)d)
            return sgi_error(SG_ERR_LIMIT, "%s: tensor '%s' has more than 2^36 elements", what,
                             tname(t));
        n *= (uint64_t)d;
        dims[i] = d;
    }
    *rank = (int)t->n_dims;
    *count = (size_t)n;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: tensor '%s' keeps its data in an external file: not supported "
                         "(save the model with its weights inside)",
                         what, tname(t));
    if (t->segment)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: tensor '%s' is segmented: not supported", what,
                         tname(t));
    const int32_t dt = t->data_type;
    if (t->has_raw_data) {
        const size_t es = sgi_onnx_dtype_size(dt);
        if (es == 0)
            return BAD("%s: tensor '%s' of type %s (%d) cannot use raw_data", what, tname(t),
                       sgi_onnx_dtype_name(dt), dt);
        if (t->raw_data.len / es != n || t->raw_data.len % es)
            return BAD("%s: tensor '%s': raw_data has %zu bytes, its shape needs %llu x %zu",
                       what, tname(t), t->raw_data.len, (unsigned long long)n, es);
        return SG_OK;
    }
    size_t have;
    uint64_t want = n;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: have = t->n_float_data, want = 2 * n; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: have = t->n_double_data, want = 2 * n; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: have = t->n_uint64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: have = t->n_string_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: have = t->n_int32_data; break;
    default:
        return BAD("%s: tensor '%s' has unknown data type %d", what, tname(t), dt);
    }
    if (have != want)
        return BAD("%s: tensor '%s' (%s) holds %zu values, its shape needs %llu", what, tname(t),
                   sgi_onnx_dtype_name(dt), have, (unsigned long long)want);
    return SG_OK;
}

static int dtype_is_float(int32_t dt) {
    return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

/* Float value i of a checked float-typed tensor. */
static void float_values(const Onnx__TensorProto *t, float *out, size_t n) {
    const int32_t dt = t->data_type;
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        if (n) memcpy(out, raw ? (const void *)raw : (const void *)t->float_data, n * 4);
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        for (size_t i = 0; i < n; i++) {
            double d;
            if (raw) memcpy(&d, raw + 8 * i, 8);
            else d = t->double_data[i];
            out[i] = (float)d;
        }
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        for (size_t i = 0; i < n; i++)
            out[i] = sgi_half_to_float(raw ? (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8)
                                           : (uint16_t)t->int32_data[i]);
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
        for (size_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)(raw ? (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8)
                                        : (uint16_t)t->int32_data[i])
                         << 16;
            memcpy(out + i, &b, 4);
        }
        break;
    default: SG_ASSERT(!"not a float type");
    }
}

/* Integer value i of a checked int8/uint8 tensor. */
static int32_t q_value(const Onnx__TensorProto *t, size_t i) {
    int32_t v = t->has_raw_data ? t->raw_data.data[i] : t->int32_data[i];
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8) v = (int8_t)(uint8_t)v;
    else v = (uint8_t)v;
    return v;
}

enum sg_status sgi_onnx_const_float(const struct sgi_onnx_graph *G, int32_t ci, float *out) {
    const struct sgi_onnx_const *c = &G->consts[ci];
    if (!c->is_float)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: tensor '%s' is %s without a DequantizeLinear (scale and zero "
                         "point): not supported as a weight",
                         G->what, c->name, sgi_onnx_dtype_name(c->t->data_type));
    if (!c->dq_scale) {
        float_values(c->t, out, c->count);
        return SG_OK;
    }
    /* w = (q - zero) * scale, per tensor or per slice along dq_axis */
    const size_t ns = c->dq_scale->n_dims ? (size_t)c->dq_scale->dims[0] : 1;
    float sbuf[1];
    float *scale = ns > 1 ? sgi_alloc(ns, sizeof *scale) : sbuf;
    if (!scale) return SG_ERR_NOMEM;
    float_values(c->dq_scale, scale, ns);
    size_t inner = 1;
    if (ns > 1)
        for (int d = (int)c->dq_axis + 1; d < c->rank; d++) inner *= (size_t)c->dims[d];
    for (size_t i = 0; i < c->count; i++) {
        const size_t k = ns > 1 ? (i / inner) % ns : 0;
        const int32_t z = c->dq_zero ? q_value(c->dq_zero, k) : 0;
        out[i] = (float)(q_value(c->t, i) - z) * scale[k];
    }
    if (scale != sbuf) free(scale);
    return SG_OK;
}

enum sg_status sgi_onnx_const_ints(const struct sgi_onnx_graph *G, int32_t ci, int64_t *out,
                                   size_t max, size_t *n) {
    const struct sgi_onnx_const *c = &G->consts[ci];
    const Onnx__TensorProto *t = c->t;
    if (c->dq_scale || (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
                        t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32))
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, expected int64", G->what,
                         c->name, sgi_onnx_dtype_name(t->data_type));
    if (c->count > max)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu values (at most %zu here)",
                         G->what, c->name, c->count, max);
    const int is64 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    for (size_t i = 0; i < c->count; i++) {
        if (t->has_raw_data) {
            if (is64) {
                memcpy(&out[i], t->raw_data.data + 8 * i, 8);
            } else {
                int32_t v;
                memcpy(&v, t->raw_data.data + 4 * i, 4);
                out[i] = v;
            }
        } else {
            out[i] = is64 ? t->int64_data[i] : t->int32_data[i];
        }
    }
    *n = c->count;
    return SG_OK;
}

/* ---- the graph's constants ---- */
static enum sg_status add_const(struct sgi_onnx_graph *G, const char *name,
                                const Onnx__TensorProto *t, int32_t *cap) {
    if (!name || !*name) return BAD("%s: a constant tensor has no name", G->what);
    if (G->n_consts == *cap) {
        int32_t nc = *cap ? *cap * 2 : 64;
        struct sgi_onnx_const *p = realloc(G->consts, (size_t)nc * sizeof *p);
        if (!p) return sgi_error(SG_ERR_NOMEM, "out of memory");
        G->consts = p;
        *cap = nc;
    }
    struct sgi_onnx_const *c = &G->consts[G->n_consts];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->t = t;
    enum sg_status st = sgi_onnx_tensor_check(t, G->what, &c->rank, c->dims, &c->count);
    if (st != SG_OK) return st;
    c->is_float = dtype_is_float(t->data_type);
    /* a later definition (a Constant node) shadows an initializer of the same name */
    if (!sgi_strmap_put(&G->const_idx, c->name, G->n_consts))
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    G->n_consts++;
    return SG_OK;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* DequantizeLinear(x, scale[, zero]) with constant int8/uint8 x: a constant float tensor. */
static enum sg_status add_dequant(struct sgi_onnx_graph *G, const Onnx__NodeProto *n,
                                  int32_t *cap) {
    if (n->n_input < 2 || n->n_output < 1) return SG_OK;
    const int32_t xi = sgi_onnx_const_find(G, n->input[0]);
    const int32_t si = sgi_onnx_const_find(G, n->input[1]);
    const int32_t zi = n->n_input > 2 ? sgi_onnx_const_find(G, n->input[2]) : -1;
    if (xi < 0 || si < 0 || (n->n_input > 2 && *n->input[2] && zi < 0)) return SG_OK;
    const struct sgi_onnx_const x = G->consts[xi], s = G->consts[si];
    const char *node = n->name && *n->name ? n->name : n->output[0];
    const int32_t dt = x.t->data_type;
    if ((dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT8 && dt != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8) ||
        x.dq_scale)
        return SG_OK; /* int32 and others: not a weight encoding we decode */
    if (s.t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || s.dq_scale || s.rank > 1)
        return BAD("%s: DequantizeLinear '%s': scale must be a float32 scalar or vector", G->what,
                   node);
    const Onnx__AttributeProto *a = find_attr(n, "axis");
    int64_t axis = a && a->has_i ? a->i : 1;
    if (axis < 0) axis += x.rank;
    if (s.count != 1 && (s.rank != 1 || axis < 0 || axis >= x.rank || (int64_t)s.count != x.dims[axis]))
        return BAD("%s: DequantizeLinear '%s': %zu scales do not match axis %lld of '%s'",
                   G->what, node, s.count, (long long)axis, x.name);
    if (zi >= 0) {
        const struct sgi_onnx_const *z = &G->consts[zi];
        if (z->t->data_type != dt || z->count != s.count || z->dq_scale)
            return BAD("%s: DequantizeLinear '%s': zero point does not match the scale or the "
                       "data type",
                       G->what, node);
    }
    enum sg_status st = add_const(G, n->output[0], x.t, cap);
    if (st != SG_OK) return st;
    struct sgi_onnx_const *c = &G->consts[G->n_consts - 1];
    c->dq_scale = s.t;
    c->dq_zero = zi >= 0 ? G->consts[zi].t : NULL;
    c->dq_axis = s.count > 1 ? axis : 0;
    c->is_float = 1;
    return SG_OK;
}

static void *pb_alloc(void *data, size_t size) {
    (void)data;
    return size >= ((size_t)8 << 20) ? sgi_alloc(size, 1) : malloc(size);
}

/* data: the graph, whose initializers' raw_data may point into its file */
static void pb_free(void *data, void *p) {
    const struct sgi_onnx_graph *G = data;
    if (G && (uintptr_t)p - (uintptr_t)G->file < G->file_len) return;
    free(p);
}

void sgi_onnx_close(struct sgi_onnx_graph *G) {
    if (G->model) {
        ProtobufCAllocator alloc = {pb_alloc, pb_free, G};
        onnx__model_proto__free_unpacked(G->model, &alloc);
    }
    free(G->consts);
    sgi_strmap_free(&G->const_idx);
    memset(G, 0, sizeof *G);
}

/* protobuf-c copies every bytes field, the weights too, into fresh memory that the
 * kernel must clear first; the weights are unpacked lean (onnx_wire.c) and read in
 * place instead. What the lean copy does not cover unpacks as it is, and protobuf-c's
 * own copies come from sgi_alloc (large ones on huge pages). */
static Onnx__ModelProto *unpack(struct sgi_onnx_graph *G, const uint8_t *buf, size_t len) {
    ProtobufCAllocator alloc = {pb_alloc, pb_free, G};
    struct sgi_onnx_lean L;
    if (sgi_onnx_wire_lean(buf, len, &L)) {
        Onnx__ModelProto *m = onnx__model_proto__unpack(&alloc, L.msg.len, L.msg.data);
        Onnx__GraphProto *g = m ? m->graph : NULL;
        if (g && g->n_initializer == L.n) {
            G->file = buf;
            G->file_len = len;
            for (size_t k = 0; k < L.n; k++) {
                const struct sgi_onnx_raw *r = &L.raw[k];
                Onnx__TensorProto *t = g->initializer[k];
                if (r->off == SIZE_MAX) continue;
                SG_ASSERT(t->has_raw_data && !t->raw_data.data);
                t->raw_data.len = r->len;
                t->raw_data.data = r->len ? (uint8_t *)buf + r->off : NULL;
            }
            sgi_onnx_lean_free(&L);
            return m;
        }
        if (m) onnx__model_proto__free_unpacked(m, &alloc);
        sgi_onnx_lean_free(&L);
    }
    return onnx__model_proto__unpack(&alloc, len, buf);
}

enum sg_status sgi_onnx_open(const uint8_t *buf, size_t len, const char *what,
                             struct sgi_onnx_graph *G) {
    memset(G, 0, sizeof *G);
    G->what = what;
    const char *why = sgi_onnx_wire_check(buf, len, &onnx__model_proto__descriptor);
    if (why) return BAD("%s: not an ONNX model (the protobuf is malformed: %s)", what, why);
    G->model = unpack(G, buf, len);
    if (!G->model)
        return BAD("%s: not an ONNX model (the protobuf does not parse: truncated or corrupted?)",
                   what);
    enum sg_status st = SG_OK;
    const Onnx__GraphProto *g = G->model->graph;
    if (!g) {
        st = BAD("%s: the ONNX model has no graph", what);
        goto fail;
    }
    G->g = g;
    G->opset = 1;
    for (size_t i = 0; i < G->model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = G->model->opset_import[i];
        if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0)
            G->opset = o->has_version ? o->version : 1;
    }
    int32_t cap = 0;
    if (g->n_initializer > (1u << 24) || g->n_node > (1u << 24)) {
        st = sgi_error(SG_ERR_LIMIT, "%s: more than 2^24 nodes or initializers", what);
        goto fail;
    }
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((st = add_const(G, g->initializer[i]->name, g->initializer[i], &cap)) != SG_OK) goto fail;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type) continue;
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0) continue;
        if (strcmp(n->op_type, "Constant") == 0 && n->n_output == 1) {
            const Onnx__AttributeProto *a = find_attr(n, "value");
            if (a && a->t && (st = add_const(G, n->output[0], a->t, &cap)) != SG_OK) goto fail;
        } else if (strcmp(n->op_type, "DequantizeLinear") == 0) {
            if ((st = add_dequant(G, n, &cap)) != SG_OK) goto fail;
        }
    }
    return SG_OK;
fail:
    sgi_onnx_close(G);
    return st;
}

/* ---- what an imported model keeps ---- */
void sgi_onnx_release(uint8_t *bytes, size_t len, int mapped) {
    if (mapped) munmap(bytes, len);
    else free(bytes);
}

void sgi_onnx_ext_free(void *p) {
    struct sgi_onnx_ext *e = p;
    if (!e) return;
    for (int32_t i = 0; i < e->n_src; i++) free(e->src[i].tensor);
    free(e->src);
    sgi_onnx_release(e->bytes, e->len, e->mapped);
    free(e);
}

void *sgi_onnx_ext_clone(const void *p) {
    const struct sgi_onnx_ext *e = p;
    struct sgi_onnx_ext *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->bytes = malloc(e->len ? e->len : 1);
    c->src = calloc(e->n_src ? (size_t)e->n_src : 1, sizeof *c->src);
    if (!c->bytes || !c->src) goto fail;
    memcpy(c->bytes, e->bytes, e->len);
    c->len = e->len;
    c->n_src = e->n_src;
    for (int32_t i = 0; i < e->n_src; i++) {
        c->src[i] = e->src[i];
        c->src[i].tensor = NULL;
        if (e->src[i].tensor && !(c->src[i].tensor = strdup(e->src[i].tensor))) goto fail;
    }
    return c;
fail:
    sgi_onnx_ext_free(c);
    return NULL;
}

/* ---- public entry points ---- */
enum sg_status sg_onnx_load_mem(const uint8_t *buf, size_t len, const char *what,
                                struct sg_model **out) {
    *out = NULL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return sgi_error(SG_ERR_NOMEM, "out of memory");
    memcpy(copy, buf, len);
    struct sgi_onnx_graph G;
    enum sg_status st = sgi_onnx_open(copy, len, what, &G);
    if (st != SG_OK) {
        free(copy);
        return st;
    }
    st = sgi_onnx_to_model(&G, copy, len, 0, out); /* owns copy from here */
    sgi_onnx_close(&G);
    return st;
}

/* The file mapped read-only (no copy: the initializers' bytes are read from the
 * mapping, which stays as the model's original bytes); a plain read where mapping
 * fails. */
static enum sg_status map_file(const char *path, uint8_t **out, size_t *len, int *mapped) {
    *mapped = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sgi_error(SG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        if ((uint64_t)sb.st_size > SGI_ONNX_MAX_FILE) {
            close(fd);
            return sgi_error(SG_ERR_LIMIT, "%s: %lld bytes (at most %zu)", path,
                             (long long)sb.st_size, SGI_ONNX_MAX_FILE);
        }
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *out = p;
            *len = (size_t)sb.st_size;
            *mapped = 1;
            return SG_OK;
        }
    }
    close(fd);
    return sg_file_read(path, SGI_ONNX_MAX_FILE, 0, out, len);
}

enum sg_status sg_onnx_load(const char *path, struct sg_model **out) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    int mapped;
    enum sg_status st = map_file(path, &buf, &len, &mapped);
    if (st != SG_OK) return st;
    struct sgi_onnx_graph G;
    if ((st = sgi_onnx_open(buf, len, path, &G)) != SG_OK) {
        sgi_onnx_release(buf, len, mapped);
        return st;
    }
    G.file_mapped = mapped && G.file == buf;
    st = sgi_onnx_to_model(&G, buf, len, mapped, out);
    sgi_onnx_close(&G);
    return st;
}
