/* sparsegrain prune: prune a model at a granularity, optionally retraining on a schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    CLI_PRUNE_OPTS,
    {"density", 'D', "X", "target density of the pruned layers (kept / weights)", NULL},
    {"sparsity", 0, "X", "target sparsity (1 - density)", NULL},
    {"schedule", 0, "S", "oneshot, iterative or agp (needs --retrain-epochs)", "oneshot"},
    {"steps", 0, "N", "iterative: pruning steps; agp: pruning events", "3"},
    {"retrain-epochs", 'r', "N", "epochs of masked retraining (per step for iterative)", "0"},
    {"data", 'd', "NAME", "data set for retraining and evaluation (mnist, fashion)", NULL},
    {"data-dir", 0, "DIR", "folder with IDX files", NULL},
    CLI_TRAIN_OPTS,
    {"seed", 's', "N", "seed of shuffling during retraining", "1"},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"output", 'o', "FILE", "output model (.sgm; other formats by suffix)", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

struct agp_ctx {
    struct sg_prune_cfg *pc;
    struct sg_sched sched;
    int epochs;
    double last;
};

static enum sg_status agp_step(void *ctx, struct sg_model *m, double pos) {
    struct agp_ctx *c = ctx;
    double d = sg_sched_density(&c->sched, pos / c->epochs);
    if (d != c->last) { /* prune only when the schedule moves */
        c->last = d;
        return sg_prune_model(m, c->pc, d, NULL);
    }
    return SG_OK;
}

static int evaluate(struct sg_model *m, const struct sg_dataset *test, double *top1) {
    struct sg_eval_result r;
    enum sg_status st = sg_evaluate(m, test, 0, &r);
    if (st != SG_OK) return cli_fail_status(st);
    *top1 = r.top1;
    return 0;
}

static int run(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "give the output model with -o FILE");
    if (cli_has(a, "density") && cli_has(a, "sparsity"))
        cli_usage_error(a, "give --density or --sparsity, not both");
    struct sg_profile *profile = NULL;
    struct sg_prune_cfg pc;
    cli_prune_cfg(a, &pc, SG_FC_FINE, &profile);
    double density = 1.0;
    if (cli_has(a, "density")) density = cli_num(a, "density", 0, 1);
    else if (cli_has(a, "sparsity")) density = 1 - cli_num(a, "sparsity", 0, 1);
    else if (pc.sel != SG_SEL_PROFILE && pc.spec.gran != SG_GRAN_NM)
        cli_usage_error(a, "give the target with --density X (or --sparsity X)");
    if (cli_has(a, "sparsity") && !(density > 0))
        cli_usage_error(a, "--sparsity must be in [0, 1) (the density, 1 - sparsity, in (0, 1])");
    if (pc.spec.gran == SG_GRAN_NM && !cli_has(a, "density") && !cli_has(a, "sparsity"))
        density = (double)pc.spec.nm_n / pc.spec.nm_m;
    if (density <= 0 && pc.sel != SG_SEL_PROFILE)
        cli_usage_error(a, "--density must be in (0, 1]");
    int sched = sg_schedule_from_name(cli_str(a, "schedule"));
    if (sched < 0)
        cli_usage_error(a, "unknown --schedule '%s' (%s)", cli_str(a, "schedule"),
                        cli_names("prune-schedule"));
    const int steps = (int)cli_int(a, "steps", 1, 1000);
    const int retrain = (int)cli_int(a, "retrain-epochs", 0, 100000);
    if (sched != SG_SCHED_ONESHOT && retrain == 0)
        cli_usage_error(a, "--schedule %s needs --retrain-epochs N", cli_str(a, "schedule"));
    if (pc.sel == SG_SEL_PROFILE && sched != SG_SCHED_ONESHOT)
        cli_usage_error(a, "a --profile prunes in one shot (optionally with retraining)");
    cli_set_threads(a);

    struct sg_model *m = NULL;
    struct sg_dataset *train = NULL, *test = NULL;
    int rc = 1;
    double top1_before = -1, top1_after = -1;
    if (cli_load_model(a->pos[0], &m)) goto done;
    int want_data = retrain > 0 || cli_has(a, "data") || cli_has(a, "data-dir");
    if (want_data) {
        if (cli_need_runnable(m, a->pos[0])) {
            fprintf(stderr, "(prune without --retrain-epochs and --data to prune its weights)\n");
            goto done;
        }
        if ((retrain && cli_load_data(a, m, 1, &train)) || cli_load_data(a, m, 0, &test)) goto done;
        if (evaluate(m, test, &top1_before)) goto done;
    }
    struct sg_train_cfg tc;
    cli_train_cfg(a, &tc);
    tc.seed = (uint64_t)cli_int(a, "seed", 0, 0x7fffffffL);
    struct sg_prune_result pr;
    sg_prune_measure(m, &pc, &pr);
    const double d0 = pr.density;
    enum sg_status st = SG_OK;
    if (sched == SG_SCHED_AGP) {
        struct agp_ctx ac = {&pc, {SG_SCHED_AGP, d0, density, steps, 0.75}, retrain, -1};
        tc.epochs = retrain;
        tc.on_batch = agp_step;
        tc.on_batch_ctx = &ac;
        tc.stage = "agp";
        st = sg_train(m, train, &tc, NULL);
        if (st == SG_OK) st = sg_prune_model(m, &pc, density, &pr); /* metadata, exact target */
    } else {
        const int nstep = sched == SG_SCHED_ITERATIVE ? steps : 1;
        struct sg_sched s = {(enum sg_schedule)sched, d0, density, nstep, 0};
        for (int j = 1; j <= nstep && st == SG_OK; j++) {
            double d = sg_sched_density(&s, (double)j / nstep);
            st = sg_prune_model(m, &pc, d, &pr);
            if (st == SG_OK && retrain) {
                char stage[32];
                snprintf(stage, sizeof stage, "retrain %d/%d d=%.3f", j, nstep, d);
                tc.stage = stage;
                tc.epochs = retrain;
                st = sg_train(m, train, &tc, NULL);
            }
        }
    }
    cli_progress_done();
    if (st != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    sg_prune_measure(m, &pc, &pr);
    if (test && evaluate(m, test, &top1_after)) goto done;
    if (top1_after >= 0) sg_meta_set(m, "top1", "%.4f", top1_after);
    if (retrain) sg_meta_set(m, "retrain", "%s, %d epochs%s", cli_str(a, "schedule"), retrain,
                             sched == SG_SCHED_ITERATIVE ? " per step" : "");
    if ((st = sg_model_save_any(m, out)) != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    char spec[64];
    sg_prune_spec_format(&pc.spec, spec, sizeof spec);
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "granularity"), sg_json_str(&j, spec);
        sg_json_key(&j, "criterion"), sg_json_str(&j, sg_criterion_name(pc.spec.crit));
        sg_json_key(&j, "layers"), sg_json_int(&j, pr.layers);
        sg_json_key(&j, "weights"), sg_json_int(&j, (int64_t)pr.weights);
        sg_json_key(&j, "kept"), sg_json_int(&j, (int64_t)pr.kept);
        sg_json_key(&j, "density"), sg_json_num(&j, pr.density);
        if (top1_before >= 0) sg_json_key(&j, "top1_before"), sg_json_num(&j, top1_before);
        if (top1_after >= 0) sg_json_key(&j, "top1"), sg_json_num(&j, top1_after);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("pruned %d layers at %s granularity (%s): %zu of %zu weights kept, density %.4f\n",
               pr.layers, spec, sg_criterion_name(pc.spec.crit), pr.kept, pr.weights, pr.density);
        if (top1_before >= 0)
            printf("top-1 %.2f%% before, %.2f%% after\n", 100 * top1_before, 100 * top1_after);
        printf("wrote %s\n", out);
    }
    rc = 0;
done:
    sg_profile_free(profile);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    return rc;
}

const struct cli_cmd cmd_prune = {
    "prune", "prune a model at a granularity (one-shot, iterative or AGP with retraining)",
    "MODEL -o OUT [options]",
    "Keeps the most salient groups of every layer in scope (conv layers except the\n"
    "first, and fc layers at fine granularity, unless told otherwise). Pruned weights\n"
    "are zero and masked: retraining never revives them.",
    OPTS, 1, 1, run,
};
