/* sparsegrain thin: write the smaller dense model without the pruned filters and
 * channels (sg_thin, src/prune/thin.c). */
#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"output", 'o', "FILE", "thinned model to write: .sgm or .onnx (the suffix picks the format)",
     NULL},
    {"csv", 0, NULL, "print the per-layer table as CSV", NULL},
    {"json", 0, NULL, "print one JSON object (layers, totals, notes)", NULL},
    {0},
};

static const char *arrow(int64_t a, int64_t b) {
    return a == b ? cli_fmt("%lld", (long long)a) : cli_fmt("%lld -> %lld", (long long)a, (long long)b);
}

static int run(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "--output FILE is required");
    const int onnx = cli_has_suffix(out, ".onnx");
    if (!onnx && !cli_has_suffix(out, ".sgm"))
        cli_usage_error(a, "'%s': the output must end in .sgm or .onnx", out);
    struct sg_model *m, *t;
    if (cli_load_model(a->pos[0], &m)) return 1;
    struct sg_thin_result r;
    enum sg_status st = sg_thin(m, &t, &r);
    sg_model_free(m);
    if (st != SG_OK) return cli_fail("%s: %s", a->pos[0], sg_last_error());
    st = onnx ? sg_onnx_save(t, out, 0) : sg_model_save(t, out, NULL);
    sg_model_free(t);
    if (st != SG_OK) {
        sg_thin_result_free(&r);
        return cli_fail_status(st);
    }
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "input"), sg_json_str(&j, a->pos[0]);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        sg_json_key(&j, "changed"), sg_json_bool(&j, r.changed);
        sg_json_key(&j, "layers"), sg_json_arr(&j);
        for (int32_t l = 0; l < r.n_layers; l++) {
            const struct sg_thin_layer *L = &r.layers[l];
            sg_json_obj(&j);
            sg_json_key(&j, "layer"), sg_json_str(&j, L->name);
            const char *keys[4] = {"inputs", "filters", "weights", "kept"};
            const int64_t *v[4] = {L->in, L->out, L->weights, L->kept};
            for (int k = 0; k < 4; k++) {
                sg_json_key(&j, keys[k]), sg_json_arr(&j);
                sg_json_int(&j, v[k][0]), sg_json_int(&j, v[k][1]);
                sg_json_end(&j);
            }
            sg_json_end(&j);
        }
        sg_json_end(&j);
        const char *keys[4] = {"parameters", "weights", "kept", "filters"};
        const int64_t *v[4] = {r.params, r.weights, r.kept, r.channels};
        for (int k = 0; k < 4; k++) {
            sg_json_key(&j, keys[k]), sg_json_arr(&j);
            sg_json_int(&j, v[k][0]), sg_json_int(&j, v[k][1]);
            sg_json_end(&j);
        }
        sg_json_key(&j, "kept_channels"), sg_json_arr(&j);
        for (int32_t i = 0; i < r.n_notes; i++) sg_json_str(&j, r.notes[i]);
        sg_json_end(&j);
        sg_json_end(&j);
        cli_print_json(&j);
        sg_thin_result_free(&r);
        return 0;
    }
    struct cli_table tb;
    cli_table_init(&tb, 5);
    tb.right_align = ~1u;
    cli_table_row(&tb, "layer", "inputs", "filters", "weights", "kept");
    for (int32_t l = 0; l < r.n_layers; l++) {
        const struct sg_thin_layer *L = &r.layers[l];
        cli_table_row(&tb, L->name, arrow(L->in[0], L->in[1]), arrow(L->out[0], L->out[1]),
                      arrow(L->weights[0], L->weights[1]), arrow(L->kept[0], L->kept[1]));
    }
    cli_table_row(&tb, "total", "", arrow(r.channels[0], r.channels[1]),
                  arrow(r.weights[0], r.weights[1]), arrow(r.kept[0], r.kept[1]));
    cli_table_print(&tb, stdout, cli_flag(a, "csv"));
    cli_table_free(&tb);
    for (int32_t i = 0; i < r.n_notes; i++) printf("kept: %s\n", r.notes[i]);
    if (!r.changed)
        printf("%s: nothing to thin (no filter or channel is zero or unused); %s is an identical "
               "copy\n", a->pos[0], out);
    else
        printf("%s -> %s: %lld of %lld parameters (%.2fx smaller), conv/fc weights %lld -> %lld "
               "(density %.4f -> %.4f)\n",
               a->pos[0], out, (long long)r.params[1], (long long)r.params[0],
               (double)r.params[0] / (double)r.params[1], (long long)r.weights[0],
               (long long)r.weights[1], r.weights[0] ? (double)r.kept[0] / (double)r.weights[0] : 1.0,
               r.weights[1] ? (double)r.kept[1] / (double)r.weights[1] : 1.0);
    sg_thin_result_free(&r);
    return 0;
}

const struct cli_cmd cmd_thin = {
    "thin",
    "write the smaller dense model without the pruned filters and channels",
    "MODEL -o OUT.sgm|OUT.onnx [options]",
    "Removes every filter and channel that is exactly zero or that nothing reads\n"
    "(filters pruned by `prune -g filter`, or the producers of channels pruned by\n"
    "`-g channel`), with their biases and batch-norm entries and the next layers'\n"
    "matching input channels (a flatten's H*W columns in a fully connected layer).\n"
    "Channels meeting at a residual add go only where every addend's channel is\n"
    "zero; concatenations keep their offsets; the network's input and output keep\n"
    "every channel. Each zero channel that has to stay is listed with the reason.\n"
    "The outputs equal MODEL's (float rounding aside); masks of the kept weights,\n"
    "metadata and the input preprocessing are kept. A model with nothing to remove\n"
    "is copied as it is. MODEL may be any format with a graph (.sgm, .onnx).",
    OPTS, 1, 1, run,
};
