/* Shared bits of the libFuzzer targets in tests/fuzz/ (one target per file).
 *
 * Each target feeds the bytes to one reader through its in-memory entry point and
 * checks what the library promises beyond "no crash": a reader that accepts an
 * input returns something the writers can serialise and the reader accepts again.
 * FUZZ_CHECK aborts (a crash libFuzzer reports) when such a promise breaks. The
 * library itself never prints; failures of the reader are expected and ignored.
 *
 * Files guarded by a CRC-32 (.sgm, .sgz, storage streams) would stop almost every
 * mutation at the checksum, so those targets repair the checksum (and the length
 * field) of a copy when the input asks for it, and fuzz the parser behind it too. */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sgi.h"
#include "sparsegrain/sparsegrain.h"

#define FUZZ_CHECK(c)                                                                  \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed; last error: %s\n", __FILE__, \
                    __LINE__, #c, sg_last_error());                                    \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A heap copy of the input (so that ASan sees reads past its end). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (p && size) memcpy(p, data, size);
    return p;
}

static inline void fuzz_st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fuzz_st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* An accepted model is an ordinary one: it serialises to .sgm and reads back. */
static inline void fuzz_sgm_round_trip(const struct sg_model *m) {
    uint8_t *out;
    size_t out_len;
    FUZZ_CHECK(sg_model_serialize(m, NULL, &out, &out_len) == SG_OK);
    struct sg_model *m2 = NULL;
    FUZZ_CHECK(sg_model_deserialize(out, out_len, "again.sgm", &m2, NULL) == SG_OK);
    sg_model_free(m2);
    free(out);
}

/* Runs one forward pass of a runnable model on a zero image and a backward pass, when
 * the work is small (a fuzzed file may describe any geometry; what matters is that
 * odd strides, pads, dilations, groups and pools compute without crashing, not that
 * a huge legitimate network finishes within the time limit). */
static inline void fuzz_forward(struct sg_model *m) {
    if (!sg_model_runnable(m) || sg_model_check_runnable(m, "fuzz") != SG_OK) return;
    double work = 0;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *n = &m->nodes[i];
        const double out = (double)n->c * n->h * n->w;
        work += out;
        if (n->op == SG_OP_CONV || n->op == SG_OP_MAXPOOL || n->op == SG_OP_AVGPOOL)
            work += out * n->kh * n->kw * (n->op == SG_OP_CONV && n->n_in > 0 && n->groups > 0
                                               ? (double)m->nodes[n->in[0]].c / n->groups
                                               : 1);
        if (n->op == SG_OP_FC && n->n_in > 0)
            work += (double)n->k * m->nodes[n->in[0]].c * m->nodes[n->in[0]].h *
                    m->nodes[n->in[0]].w;
    }
    if (work > 2e6) return;
    struct sg_exec *e;
    if (sg_exec_new(m, 2, 1, &e) != SG_OK) return;
    const size_t in = (size_t)m->in_c * m->in_h * m->in_w * 2;
    float *x = calloc(in ? in : 1, sizeof *x);
    float *grad = calloc(m->arena_len ? m->arena_len : 1, sizeof *grad);
    uint8_t labels[2] = {0, 0};
    sg_rng r;
    sg_rng_seed(&r, 1);
    if (x && grad && sg_forward(m, e, x, 2, 1, &r) == SG_OK) {
        sg_exec_loss(e, labels, NULL, NULL);
        sg_backward(m, e, grad);
    }
    free(x);
    free(grad);
    sg_exec_free(e);
}

/* A file may legitimately describe a large model (a .sgz layer of 2^36 pruned weights
 * encodes in a few bytes): the library's allocation limit keeps what such inputs ask
 * for below libFuzzer's 2 GB, as a service that reads strangers' files would set it.
 * Readers must check sizes against the limit before allocating; one that does not
 * trips libFuzzer's malloc limit and is reported. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    sg_set_alloc_limit((size_t)256 << 20);
    return 0;
}

#endif
