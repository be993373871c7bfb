/* sparsegrain quantize: weights to a k-bit codebook per layer, masks kept,
 * optionally fine-tuned with weight sharing (Deep Compression). */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"bits", 'k', "K", "codebook bits of conv layers (2^K - 1 shared values per layer)", "8"},
    {"fc-bits", 0, "K", "codebook bits of fully connected layers (default: --bits)", NULL},
    {"codebook", 0, "KIND", "kmeans (Deep Compression) or linear (evenly spaced)", "kmeans"},
    {"fine-tune-epochs", 'r', "N", "retraining with shared weights after quantising", "0"},
    {"data", 'd', "NAME", "data set for fine-tuning and evaluation", NULL},
    {"data-dir", 0, "DIR", "folder with IDX files", NULL},
    CLI_TRAIN_OPTS,
    {"seed", 's', "N", "seed of shuffling", "1"},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"output", 'o', "FILE", "output model", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "give the output model with -o FILE");
    const int bits = (int)cli_int(a, "bits", 1, 16);
    const int fc_bits = cli_has(a, "fc-bits") ? (int)cli_int(a, "fc-bits", 1, 16) : bits;
    const char *cb = cli_str(a, "codebook");
    if (strcmp(cb, "kmeans") && strcmp(cb, "linear"))
        cli_usage_error(a, "--codebook must be kmeans or linear, not '%s'", cb);
    const int epochs = (int)cli_int(a, "fine-tune-epochs", 0, 100000);
    struct sg_train_cfg tc;
    cli_train_cfg(a, &tc);
    if (!cli_has(a, "lr")) tc.lr = 0.001f; /* fine-tuning: a tenth of retraining's rate */
    tc.epochs = epochs;
    tc.seed = (uint64_t)cli_int(a, "seed", 0, 0x7fffffffL);
    tc.stage = "fine-tune";
    cli_set_threads(a);
    struct sg_model *m = NULL;
    struct sg_dataset *train = NULL, *test = NULL;
    int rc = 1;
    double before = -1, after = -1;
    struct sg_eval_result r;
    if (cli_load_model(a->pos[0], &m)) goto done;
    const int want_data = epochs > 0 || cli_has(a, "data") || cli_has(a, "data-dir");
    if (want_data) {
        if (cli_need_runnable(m, a->pos[0]) || (epochs && cli_load_data(a, m, 1, &train)) ||
            cli_load_data(a, m, 0, &test))
            goto done;
        if (sg_evaluate(m, test, 0, &r) != SG_OK) {
            cli_fail_status(SG_ERR_ARG);
            goto done;
        }
        before = r.top1;
    }
    enum sg_status st = cli_quantize(m, bits, fc_bits, strcmp(cb, "kmeans") == 0, train, &tc);
    cli_progress_done();
    if (st != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    if (test) {
        if (sg_evaluate(m, test, 0, &r) != SG_OK) {
            cli_fail_status(SG_ERR_ARG);
            goto done;
        }
        after = r.top1;
        sg_meta_set(m, "top1", "%.4f", after);
    }
    sg_meta_set(m, "quantized", "%s codebook, %d bits conv, %d bits fc%s", cb, bits, fc_bits,
                epochs ? ", fine-tuned" : "");
    if ((st = sg_model_save_any(m, out)) != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "bits"), sg_json_int(&j, bits);
        sg_json_key(&j, "fc_bits"), sg_json_int(&j, fc_bits);
        sg_json_key(&j, "codebook"), sg_json_str(&j, cb);
        sg_json_key(&j, "fine_tune_epochs"), sg_json_int(&j, epochs);
        if (before >= 0) sg_json_key(&j, "top1_before"), sg_json_num(&j, before);
        if (after >= 0) sg_json_key(&j, "top1"), sg_json_num(&j, after);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("quantised conv weights to %d bits and fc weights to %d bits (%s codebook per layer)%s\n",
               bits, fc_bits, cb, epochs ? cli_fmt(", fine-tuned %d epochs", epochs) : "");
        if (before >= 0) printf("top-1 %.2f%% before, %.2f%% after\n", 100 * before, 100 * after);
        printf("wrote %s\n", out);
    }
    rc = 0;
done:
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    return rc;
}

const struct cli_cmd cmd_quantize = {
    "quantize", "quantise weights to a k-bit codebook per layer (masks kept), optionally fine-tuned",
    "MODEL -o OUT [options]",
    "Every conv and fc layer's kept weights are replaced by the nearest of 2^K - 1\n"
    "shared values (k-means or evenly spaced, per layer): what the storage command's\n"
    "--codebook-bits K stores. With --fine-tune-epochs the shared values are retrained:\n"
    "after every step each cluster is set to the mean of its members.",
    OPTS, 1, 1, run,
};
