/* The ONNX-to-model mapper's state and toolkit, shared by onnx_map.c (the mapper: its
 * reasons, attributes, tensors, parameters, windows and nodes; weights-only mode; the
 * import as a whole) and onnx_nodes.c (one ONNX node onto our ops, and the graph
 * input). Internal to src/io. */
#ifndef SG_IO_ONNX_MAPPER_H
#define SG_IO_ONNX_MAPPER_H
#include "io/onnx.h"

#define DEAD (-2) /* activation downstream of an op we cannot map */
#define MAX_SPATIAL 65536

struct mapper {
    struct sgi_onnx_graph *G;
    const char *what;
    struct sg_model *m;
    int weights_only;
    struct sgi_strmap act;   /* activation name -> node << 3 | rank, or DEAD */
    struct sgi_strmap uses;  /* tensor name -> number of readers (graph outputs count) */
    struct sgi_strmap alias; /* Identity output -> index of the Identity node */
    int32_t *const_param;    /* per constant: parameter made from it, -1 */
    int32_t *param_const;    /* per parameter: its constant */
    struct sgi_onnx_src *src;
    int32_t cap_src;
    int32_t *fusable;        /* per node: 1 = fc made from MatMul that may take a bias */
    int32_t cap_fusable;
    struct sgi_strmap padded; /* tensor -> index in pads: zero padding still to apply */
    int32_t (*pads)[4];      /* top, left, bottom, right */
    int32_t n_pads, cap_pads;
    int64_t batch;           /* static batch size of the graph input, -1 if symbolic */
    char unsup[400];         /* op types (with attributes) we lack, comma separated */
    char why[400];           /* first other reason the graph cannot run */
    enum sg_status hard;     /* status of an error that stops the import */
};

#define ACT(node, rank) ((int32_t)(node) << 3 | (rank))

struct win {
    int64_t k[2], s[2], d[2], p0[2], p1[2]; /* per spatial axis: kernel, stride, dilation, pads */
};

/* onnx_map.c: the toolkit. */
/* Why the graph cannot run: an op type (with its attribute) we lack, each recorded
 * once, in mp->unsup; any other first reason in mp->why. */
void sgi_om_lack(struct mapper *mp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sgi_om_cannot(struct mapper *mp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Attributes: the value or def; attr_s copies into buf ("" when absent); attr_ints
 * returns the count (0 when absent), -1 when more than max. */
int64_t sgi_om_attr_i(const Onnx__NodeProto *n, const char *name, int64_t def);
float sgi_om_attr_f(const Onnx__NodeProto *n, const char *name, float def);
const char *sgi_om_attr_s(const Onnx__NodeProto *n, const char *name, char *buf, size_t cap);
int sgi_om_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max);
const char *sgi_om_node_name(const Onnx__NodeProto *n);
/* Tensors: the constant a name refers to (through Identity nodes), or -1; whether
 * input i is given; the activation node input i reads: 0 and *node, *rank (and the
 * zero padding still to apply, *pad) set, 1 when dead, -1 when nothing produces it
 * (reason recorded); set_outputs gives every output of n the activation v. */
int32_t sgi_om_find_const(const struct mapper *mp, const char *name);
int sgi_om_has_input(const Onnx__NodeProto *n, size_t i);
int sgi_om_get_act_pad(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                       int *rank, int32_t *pad);
int sgi_om_get_act(struct mapper *mp, const Onnx__NodeProto *n, size_t i, int32_t *node,
                   int *rank);
int sgi_om_set_outputs(struct mapper *mp, const Onnx__NodeProto *n, int32_t v);
/* Parameters: a new parameter made from constant ci (see onnx_map.c), and the
 * constant input i must be (1 found, 0 reason recorded, -1 hard error). */
int32_t sgi_om_new_param(struct mapper *mp, int32_t ci, enum sg_param_kind kind,
                         enum sg_layer_kind layer, int32_t node, int ndim, const int64_t *dims,
                         int transpose, float scale);
int sgi_om_want_const(struct mapper *mp, const Onnx__NodeProto *n, size_t i, const char *role,
                      int32_t *ci);
/* Windows of Conv and pools (1, or 0 with the problem recorded), and nodes. */
int sgi_om_window(struct mapper *mp, const Onnx__NodeProto *n, int sp, const int64_t *in,
                  const int64_t *kdef, int dilations_ok, struct win *w);
void sgi_om_set_window(struct sg_node *nd, const struct win *w);
int32_t sgi_om_add_node(struct mapper *mp, struct sg_node *nd, int rank, const Onnx__NodeProto *n);
void sgi_om_init_node(struct sg_node *nd, enum sg_op op, const Onnx__NodeProto *n, int32_t index,
                      int32_t x);

/* onnx_nodes.c: a {name, function} table with one function per ONNX op. Maps node i:
 * SG_OK (a node we cannot map records why and marks its outputs DEAD), or the status
 * of an error that stops the import (text set). */
enum sg_status sgi_om_map_node(struct mapper *mp, int32_t i);
/* The graph's data input: 1 mapped, 0 not runnable (reason recorded), -1 no memory. */
int sgi_om_map_input(struct mapper *mp);

#endif
