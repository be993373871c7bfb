/* Internals of the ONNX reader and writer (src/io/onnx_*.c). Not installed.
 *
 * onnx_wire.c  walks the protobuf wire format: a structural check before protobuf-c, and
 *              a lean copy of the ModelProto without the initializers' raw_data bytes.
 * onnx_read.c  parses a ModelProto (protobuf-c code generated from Debian's onnx.proto),
 *              collects every constant (initializers, Constant nodes, DequantizeLinear of
 *              constant int8/uint8 tensors) and decodes constant tensors to float.
 * onnx_map.c   maps the graph to an sg_model (runnable), or else to a weights-only model.
 * onnx_fill.c  fills the model's arenas from the constants.
 * onnx_write.c writes a model back: into its original graph, or as a graph built from
 *              our nodes.
 */
#ifndef SPARSEGRAIN_IO_ONNX_H
#define SPARSEGRAIN_IO_ONNX_H

#include "core/sgi.h"
#include "io/half.h"
#include "onnx.pb-c.h"
#include "sparsegrain/io.h"

#define SGI_ONNX_MAX_RANK 8
#define SGI_ONNX_MAX_ELEMS ((uint64_t)1 << 36) /* as .sgm: 256 GB of floats */
#define SGI_ONNX_MAX_FILE ((size_t)64 << 30)

/* String -> int32 map (open addressing); keys are borrowed, not copied. */
struct sgi_strmap {
    size_t cap, n;
    const char **key;
    int32_t *val;
};
int sgi_strmap_put(struct sgi_strmap *m, const char *key, int32_t val); /* 0: out of memory */
int32_t sgi_strmap_get(const struct sgi_strmap *m, const char *key);    /* -1 if absent */
void sgi_strmap_free(struct sgi_strmap *m);

/* A constant tensor of the graph. DequantizeLinear of a constant int8/uint8 tensor is a
 * constant too: its value is (q - zero) * scale, and `t` is the quantized tensor. */
struct sgi_onnx_const {
    const char *name;             /* tensor name in the graph (the DequantizeLinear output) */
    const Onnx__TensorProto *t;   /* the stored data */
    const Onnx__TensorProto *dq_scale, *dq_zero; /* DequantizeLinear inputs, or NULL */
    int64_t dq_axis;
    int rank;                     /* of t */
    int64_t dims[SGI_ONNX_MAX_RANK];
    size_t count;                 /* elements */
    int is_float;                 /* decodes to float (float types or dequantised) */
};

struct sgi_onnx_graph {
    const char *what;             /* file name for messages */
    Onnx__ModelProto *model;      /* unpacked; owned */
    const uint8_t *file;          /* the parsed bytes: the initializers' raw_data points */
    size_t file_len;              /*   into them (never freed with the model) */
    int file_mapped;              /* file is a read-only file mapping: its pages may be
                                   * released once copied (sgi_map_release) */
    const Onnx__GraphProto *g;
    int64_t opset;                /* of the default domain */
    struct sgi_onnx_const *consts;
    int32_t n_consts;
    struct sgi_strmap const_idx;  /* name -> index in consts */
};

/* onnx_wire.c. Why buf is not a well-formed message of type d, or NULL. */
const char *sgi_onnx_wire_check(const uint8_t *buf, size_t len,
                                const ProtobufCMessageDescriptor *d);
/* Where one initializer's raw_data lies in the file (off SIZE_MAX: it has none). */
struct sgi_onnx_raw {
    size_t off, len;
};
/* A checked ModelProto with one graph, copied without the bytes of its initializers'
 * raw_data (the fields stay, empty): msg unpacks to the same model, whose initializer
 * k then takes its bytes from raw[k]. */
struct sgi_onnx_lean {
    struct sgi_buf msg;
    struct sgi_onnx_raw *raw;     /* one per initializer, in order */
    size_t n, cap;
};
/* 1: done; 0: not done (L is empty): the model is not that simple, its initializers'
 * raw_data is less than half the file, or memory ran out. */
int sgi_onnx_wire_lean(const uint8_t *buf, size_t len, struct sgi_onnx_lean *L);
void sgi_onnx_lean_free(struct sgi_onnx_lean *L);

/* Parses buf and collects the constants. On failure nothing needs closing. */
enum sg_status sgi_onnx_open(const uint8_t *buf, size_t len, const char *what,
                             struct sgi_onnx_graph *G);
void sgi_onnx_close(struct sgi_onnx_graph *G);
/* Index of the constant named name, -1 if the tensor is not a constant. */
static inline int32_t sgi_onnx_const_find(const struct sgi_onnx_graph *G, const char *name) {
    return name && *name ? sgi_strmap_get(&G->const_idx, name) : -1;
}
/* Decodes constant ci to count floats (count must equal its element count). */
enum sg_status sgi_onnx_const_float(const struct sgi_onnx_graph *G, int32_t ci, float *out);
/* Decodes an integer constant (int64/int32) of at most max elements. */
enum sg_status sgi_onnx_const_ints(const struct sgi_onnx_graph *G, int32_t ci, int64_t *out,
                                   size_t max, size_t *n);
/* Checks a TensorProto's shape and data size; fills rank, dims and count. */
enum sg_status sgi_onnx_tensor_check(const Onnx__TensorProto *t, const char *what, int *rank,
                                     int64_t *dims, size_t *count);
const char *sgi_onnx_dtype_name(int32_t dt);
/* Bytes per element of a data type stored in raw_data, 0 if not a fixed-size type. */
size_t sgi_onnx_dtype_size(int32_t dt);

/* Where a parameter of an imported model came from, so export can write it back. */
struct sgi_onnx_src {
    char *tensor;      /* the initializer or Constant output holding the data (NULL: none) */
    int32_t transpose; /* the parameter is W[K][C], the tensor holds [C][K] */
    float scale;       /* parameter = scale * tensor (Gemm alpha/beta), else 1 */
};

/* What an ONNX-imported model keeps in m->ext. */
struct sgi_onnx_ext {
    uint8_t *bytes;    /* the original ModelProto */
    size_t len;
    int mapped;        /* bytes is a read-only mapping of the file (munmap), else malloc */
    int32_t n_src;     /* = the model's n_params at import */
    struct sgi_onnx_src *src;
};
void sgi_onnx_ext_free(void *ext);
void *sgi_onnx_ext_clone(const void *ext);

/* onnx_map.c: builds the model; takes ownership of bytes (kept in m->ext, released
 * with sgi_onnx_release on failure). */
enum sg_status sgi_onnx_to_model(struct sgi_onnx_graph *G, uint8_t *bytes, size_t len, int mapped,
                                 struct sg_model **out);
void sgi_onnx_release(uint8_t *bytes, size_t len, int mapped);
/* onnx_fill.c: fills every element of m's arena and mask (left unfilled by
 * sg_model_finalize_unfilled): parameter p from constant param_const[p] as src[p] says. */
enum sg_status sgi_onnx_fill(const struct sgi_onnx_graph *G, struct sg_model *m,
                             const int32_t *param_const, const struct sgi_onnx_src *src);

#endif
