/* Benchmark helper: loads a model with sg_model_load_any and prints the seconds it
 * took and what was loaded.   sg_load MODEL
 * Used by bench/onnx_load_bench.sh; not part of the product. */
#include <stdio.h>

#include "sparsegrain/sparsegrain.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: sg_load MODEL\n");
        return 2;
    }
    struct sg_model *m;
    const double t0 = sg_now();
    if (sg_model_load_any(argv[1], &m) != SG_OK) {
        fprintf(stderr, "sg_load: %s\n", sg_last_error());
        return 1;
    }
    const double t1 = sg_now();
    printf("%.6f s, %d nodes, %d tensors, %zu floats, %s\n", t1 - t0, m->n_nodes, m->n_params,
           m->arena_len, sg_model_runnable(m) ? "runnable" : "weights only");
    sg_model_free(m);
    return 0;
}
