/* sparsegrain import: convert a foreign weights file into one of our formats. */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"output", 'o', "FILE", "file to write: .sgm, .onnx or .npz (the suffix picks the format)", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    const char *kind = a->pos[0], *in = a->pos[1];
    const char *out = cli_str(a, "output");
    if (strcmp(kind, "tfjs") != 0)
        cli_usage_error(a, "unknown source format '%s' (supported: tfjs)", kind);
    if (!out) cli_usage_error(a, "--output FILE is required");
    if (!cli_has_suffix(out, ".sgm") && !cli_has_suffix(out, ".onnx") && !cli_has_suffix(out, ".npz"))
        cli_usage_error(a, "'%s': the output must end in .sgm, .onnx or .npz", out);
    struct sg_model *m;
    enum sg_status st = sg_tfjs_load(in, &m);
    if (st != SG_OK) return cli_fail_status(st);
    if (cli_apply_input_norm(m, in)) {
        sg_model_free(m);
        return 1;
    }
    st = sg_model_save_any(m, out);
    size_t weights, kept, layers = (size_t)sg_model_weight_params(m, NULL);
    sg_model_count(m, &weights, &kept);
    const int n_params = m->n_params;
    sg_model_free(m);
    if (st != SG_OK) return cli_fail_status(st);
    printf("%s -> %s: %d tensors, %zu conv/fc layers with %zu weights (density %.4f)\n", in, out,
           n_params, layers, weights, weights ? (double)kept / weights : 1.0);
    return 0;
}

const struct cli_cmd cmd_import = {
    "import",
    "convert TF.js weights (manifest + shards) to .sgm, .onnx or .npz",
    "tfjs MANIFEST.json -o OUT [options]",
    "Reads a TF.js weights manifest and its .bin shards (paths relative to the\n"
    "manifest), dequantises uint8/uint16 weights (w = q * scale + min) and float16,\n"
    "and converts layouts: conv kernels HWIO -> OIHW, depthwise HWIM -> (I*M)x1xHxW,\n"
    "dense [in][out] -> [out][in]. The result holds weights only (no graph).\n"
    "Weights-only commands also take the manifest directly as MODEL.",
    OPTS, 2, 2, run,
};
