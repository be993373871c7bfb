/* Multiply-accumulates per image of a forward pass (conv and fully connected layers)
 * and weights, for the built-in networks on 28x28 images and for the paper's five
 * ImageNet shape sets (src/sim/nets.c). bench/mpi_bench.sh uses them to turn measured
 * training speed into GMAC/s and to extrapolate study costs to ImageNet.
 *     net_macs            one line per network: name macs weights */
#include <stdio.h>
#include <stdlib.h>

#include "sparsegrain/sparsegrain.h"

int main(void) {
    const char *builtin[] = {"lenet5", "vgg7", "resnet8", NULL};
    for (int i = 0; builtin[i]; i++) {
        struct sg_model *m;
        if (sg_model_build(builtin[i], 1, 28, 28, 10, 1, &m) != SG_OK) {
            fprintf(stderr, "net_macs: %s\n", sg_last_error());
            return 1;
        }
        double macs = 0, weights = 0;
        for (int32_t n = 0; n < m->n_nodes; n++) {
            const struct sg_node *nd = &m->nodes[n];
            if (nd->op != SG_OP_CONV && nd->op != SG_OP_FC) continue;
            const struct sg_param *w = &m->params[nd->param[0]];
            macs += (double)w->count * (nd->op == SG_OP_CONV ? (double)nd->h * nd->w : 1.0);
            weights += (double)w->count;
        }
        printf("%s %.0f %.0f\n", builtin[i], macs, weights);
        sg_model_free(m);
    }
    for (const char *const *net = sg_scnn_net_names(); *net; net++) {
        struct sg_scnn_shape *l;
        int n;
        if (sg_scnn_net_layers(*net, &l, &n) != SG_OK) {
            fprintf(stderr, "net_macs: %s\n", sg_last_error());
            return 1;
        }
        double macs = 0, weights = 0;
        for (int i = 0; i < n; i++) {
            const double p = (l[i].h + 2.0 * l[i].pad - l[i].r) / l[i].stride + 1;
            const double q = (l[i].w + 2.0 * l[i].pad - l[i].s) / l[i].stride + 1;
            const double wt = (double)l[i].k * l[i].c * l[i].r * l[i].s;
            macs += wt * (l[i].is_fc ? 1 : (int)p * (int)q);
            weights += wt;
        }
        printf("%s %.0f %.0f\n", *net, macs, weights);
        free(l);
    }
    return 0;
}
