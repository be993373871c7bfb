/* sparsegrain eval: loss, top-1 and top-5 accuracy of a model on a test set. */
#include "cli.h"

#define EVAL_STR_(x) #x
#define EVAL_STR(x) EVAL_STR_(x) /* the default chunk, SG_EVAL_BATCH, as text */

static const struct cli_opt OPTS[] = {
    {"data", 'd', "NAME", "data set: mnist or fashion (default: the one the model was trained on)", NULL},
    {"data-dir", 0, "DIR", "folder with t10k-{images,labels} IDX files", NULL},
    {"batch", 'b', "N", "images a forward takes on each thread", EVAL_STR(SG_EVAL_BATCH)},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    cli_set_threads(a);
    struct sg_model *m = NULL;
    struct sg_dataset *d = NULL;
    int rc = 1;
    if (cli_load_model(a->pos[0], &m) || cli_need_runnable(m, a->pos[0]) ||
        cli_load_data(a, m, 0, &d))
        goto done;
    struct sg_eval_result r;
    enum sg_status st = sg_evaluate(m, d, (int)cli_int(a, "batch", 1, 65536), &r);
    if (st != SG_OK) {
        cli_fail("%s: %s", a->pos[0], sg_last_error());
        goto done;
    }
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "model"), sg_json_str(&j, a->pos[0]);
        sg_json_key(&j, "data"), sg_json_str(&j, d->name);
        sg_json_key(&j, "top1"), sg_json_num(&j, r.top1);
        sg_json_key(&j, "top5"), sg_json_num(&j, r.top5);
        sg_json_key(&j, "loss"), sg_json_num(&j, r.loss);
        sg_json_key(&j, "n"), sg_json_int(&j, r.n);
        sg_json_key(&j, "seconds"), sg_json_num(&j, r.seconds);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("%s on %s (%lld images): loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%.2f s)\n",
               a->pos[0], d->name, (long long)r.n, r.loss, 100 * r.top1, 100 * r.top5,
               r.seconds);
    }
    rc = 0;
done:
    sg_model_free(m);
    sg_dataset_free(d);
    return rc;
}

const struct cli_cmd cmd_eval = {
    "eval", "evaluate a model: loss, top-1 and top-5 accuracy", "MODEL [options]", NULL,
    OPTS, 1, 1, run,
};
