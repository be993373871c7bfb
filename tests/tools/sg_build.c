/* Test helper: writes a built-in network with random weights, optionally with a
 * random fraction of every tensor pruned (mask 0, weight 0).
 *     sg_build NAME OUT.sgm [PRUNED_FRACTION]
 * Used by tests/cli/onnx.sh; not part of the product. */
#include <stdio.h>
#include <stdlib.h>

#include "sparsegrain/sparsegrain.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: sg_build NAME OUT.sgm [PRUNED_FRACTION]\n");
        return 2;
    }
    struct sg_model *m;
    if (sg_model_build(argv[1], 1, 28, 28, 10, 42, &m) != SG_OK) {
        fprintf(stderr, "sg_build: %s\n", sg_last_error());
        return 1;
    }
    const double frac = argc == 4 ? atof(argv[3]) : 0.0;
    sg_rng r;
    sg_rng_seed(&r, 7);
    for (int32_t p = 0; p < m->n_params; p++)
        if (m->params[p].kind == SG_PARAM_WEIGHT) {
            uint8_t *mk = sg_param_mask(m, p);
            for (size_t i = 0; i < m->params[p].count; i++)
                if (sg_rng_uniform(&r) < frac) mk[i] = 0;
        }
    sg_model_apply_masks(m);
    if (sg_model_save(m, argv[2], NULL) != SG_OK) {
        fprintf(stderr, "sg_build: %s\n", sg_last_error());
        return 1;
    }
    sg_model_free(m);
    return 0;
}
