/* sparsegrain export: write a model (any readable format) as .onnx, .npz or .sgm. */
#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"output", 'o', "FILE", "file to write: .onnx, .npz or .sgm (the suffix picks the format)", NULL},
    {"masks", 0, NULL, "ONNX: also store each mask as a uint8 initializer '<tensor>.mask'", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "--output FILE is required");
    const int onnx = cli_has_suffix(out, ".onnx");
    if (!onnx && !cli_has_suffix(out, ".npz") && !cli_has_suffix(out, ".sgm"))
        cli_usage_error(a, "'%s': the output must end in .onnx, .npz or .sgm", out);
    if (cli_flag(a, "masks") && !onnx) cli_usage_error(a, "--masks applies to .onnx output only");
    struct sg_model *m;
    if (cli_load_model(a->pos[0], &m)) return 1;
    enum sg_status st = onnx ? sg_onnx_save(m, out, cli_flag(a, "masks") ? SG_ONNX_MASKS : 0)
                             : sg_model_save_any(m, out);
    size_t weights, kept;
    sg_model_count(m, &weights, &kept);
    const int runnable = sg_model_runnable(m);
    sg_model_free(m);
    if (st != SG_OK) return cli_fail_status(st);
    printf("%s -> %s: %zu conv/fc weights, density %.4f%s\n", a->pos[0], out, weights,
           weights ? (double)kept / weights : 1.0, runnable ? "" : " (weights only)");
    return 0;
}

const struct cli_cmd cmd_export = {
    "export",
    "write a model as ONNX, NumPy .npz or .sgm",
    "MODEL -o OUT.onnx|OUT.npz|OUT.sgm [options]",
    "MODEL may be .sgm, .onnx, .npz, .npy or a TF.js weights manifest (.json).\n"
    "A model read from ONNX is written back into its own graph with the pruned\n"
    "(masked) weights; other models get a graph built from their layers (opset 13).\n"
    ".npz holds every tensor as '<name>' (float32) and '<name>.mask' (uint8).",
    OPTS, 1, 1, run,
};
