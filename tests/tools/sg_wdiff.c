/* Test helper: how far apart are the weights of two models of the same shape?
 *     sg_wdiff A.sgm B.sgm [MAX_REL]
 * Prints, over every parameter tensor (weights, biases, batch-norm parameters and
 * statistics): the largest absolute difference, the largest difference relative to
 * the tensor's largest |value| in B (the "max relative error" of tests/cli/mpi.sh),
 * and the largest element-wise relative difference among elements with |b| above
 * 1% of their tensor's largest |value| (near-zero elements make that ratio
 * meaningless). Masks must be identical. With MAX_REL, exits 1 when the
 * tensor-relative error exceeds it. Used by tests/cli/mpi.sh; not part of the product. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsegrain/sparsegrain.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: sg_wdiff A.sgm B.sgm [MAX_REL]\n");
        return 2;
    }
    struct sg_model *a = NULL, *b = NULL;
    if (sg_model_load_any(argv[1], &a) != SG_OK || sg_model_load_any(argv[2], &b) != SG_OK) {
        fprintf(stderr, "sg_wdiff: %s\n", sg_last_error());
        return 1;
    }
    if (a->arena_len != b->arena_len || a->n_params != b->n_params) {
        fprintf(stderr, "sg_wdiff: the models differ in shape\n");
        return 1;
    }
    double max_abs = 0, max_rel = 0, max_elem = 0;
    const char *worst = "";
    size_t mask_diff = 0;
    for (int32_t p = 0; p < a->n_params; p++) {
        const struct sg_param *pp = &b->params[p];
        const float *x = a->arena + pp->offset, *y = b->arena + pp->offset;
        double scale = 0, d = 0;
        for (size_t i = 0; i < pp->count; i++) scale = fmax(scale, fabs(y[i]));
        for (size_t i = 0; i < pp->count; i++) {
            const double e = fabs((double)x[i] - y[i]);
            d = fmax(d, e);
            if (fabs(y[i]) > 0.01 * scale) max_elem = fmax(max_elem, e / fabs(y[i]));
            mask_diff += a->mask[pp->offset + i] != b->mask[pp->offset + i];
        }
        max_abs = fmax(max_abs, d);
        const double rel = scale > 0 ? d / scale : d;
        if (rel > max_rel) max_rel = rel, worst = pp->name;
    }
    printf("max_abs %.3g  max_rel %.3g (%s)  max_elementwise_rel %.3g  mask_differences %zu\n",
           max_abs, max_rel, worst, max_elem, mask_diff);
    const int bad = mask_diff != 0 || (argc == 4 && !(max_rel <= atof(argv[3])));
    sg_model_free(a);
    sg_model_free(b);
    return bad;
}
