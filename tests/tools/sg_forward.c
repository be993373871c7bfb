/* Test helper: runs a model's forward pass on a NumPy input and writes the output.
 *     sg_forward MODEL INPUT.npy OUTPUT.npy
 * INPUT is float32 N x C x H x W (or N x C for flat inputs); OUTPUT is float32 N x K,
 * the model's output node in inference mode. Used by tests/cli/onnx.sh to compare
 * with PyTorch; not part of the product. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsegrain/sparsegrain.h"

static int fail(const char *what) {
    fprintf(stderr, "sg_forward: %s: %s\n", what, sg_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: sg_forward MODEL INPUT.npy OUTPUT.npy\n");
        return 2;
    }
    struct sg_model *m = NULL, *in = NULL;
    if (sg_model_load_any(argv[1], &m) != SG_OK) return fail(argv[1]);
    if (sg_model_check_runnable(m, argv[1]) != SG_OK) return fail(argv[1]);
    if (sg_npy_load(argv[2], &in) != SG_OK) return fail(argv[2]);
    const struct sg_param *p = &in->params[0];
    const int n = (int)p->dims[0];
    if ((size_t)n * m->in_c * m->in_h * m->in_w != p->count) {
        fprintf(stderr, "sg_forward: input has %zu values, the model takes %d x %dx%dx%d\n",
                p->count, n, m->in_c, m->in_h, m->in_w);
        return 1;
    }
    struct sg_exec *e;
    if (sg_exec_new(m, n, 0, &e) != SG_OK) return fail("exec");
    if (sg_forward(m, e, in->arena + p->offset, n, 0, NULL) != SG_OK) return fail("forward");
    const int k = m->n_classes;
    float *out = malloc((size_t)n * k * sizeof *out);
    if (!out) return 1;
    sg_exec_logits(e, out);
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, k);
    int total = (10 + dl + 1 + 63) / 64 * 64;
    FILE *f = fopen(argv[3], "wb");
    if (!f) return 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 0xff),
                             (unsigned char)((total - 10) >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)dl, f);
    for (int i = 10 + dl; i < total - 1; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(out, sizeof *out, (size_t)n * k, f);
    if (fclose(f) != 0) return 1;
    free(out);
    sg_exec_free(e);
    sg_model_free(in);
    sg_model_free(m);
    return 0;
}
