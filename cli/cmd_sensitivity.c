/* sparsegrain sensitivity: accuracy when one layer alone is pruned, and the
 * per-layer density profile that this implies. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    CLI_PRUNE_OPTS,
    {"densities", 0, "LIST", "densities to try per layer", "0.9,0.7,0.5,0.4,0.3,0.2,0.1,0.05"},
    {"tolerance", 0, "PP", "allowed top-1 drop in percentage points for the profile", "0.5"},
    {"data", 'd', "NAME", "data set to evaluate on (test split)", NULL},
    {"data-dir", 0, "DIR", "folder with IDX files", NULL},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"output", 'o', "FILE", "write the profile CSV (layer,density,top1@...)", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    struct sg_prune_cfg pc;
    cli_prune_cfg(a, &pc, SG_FC_FINE, NULL);
    if (pc.sel != SG_SEL_LAYER) cli_usage_error(a, "sensitivity prunes one layer at a time; --selection and --profile do not apply");
    double dens[64];
    int nd = cli_num_list(a, "densities", dens, 64, 0, 1);
    for (int i = 0; i < nd; i++)
        if (dens[i] <= 0) cli_usage_error(a, "--densities must be in (0, 1], got %g", dens[i]);
    double tol = cli_num(a, "tolerance", 0, 100) / 100.0;
    cli_set_threads(a);
    struct sg_model *m = NULL, *work = NULL;
    struct sg_dataset *test = NULL;
    int rc = 1;
    if (cli_load_model(a->pos[0], &m) || cli_need_runnable(m, a->pos[0]) ||
        cli_load_data(a, m, 0, &test))
        goto done;
    struct sg_eval_result r;
    enum sg_status st = sg_evaluate(m, test, 0, &r);
    if (st != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    const double base = r.top1;
    int32_t np = sg_model_weight_params(m, NULL), nl = 0;
    int32_t *idx = malloc(sizeof *idx * (size_t)(np ? np : 1));
    double *acc = malloc(sizeof *acc * (size_t)(np ? np : 1) * (size_t)nd);
    double *chosen = malloc(sizeof *chosen * (size_t)(np ? np : 1));
    struct sg_prune_spec buf;
    for (int32_t p = 0; p < m->n_params; p++)
        if (sg_prune_scope(m, &pc, p, &buf)) idx[nl++] = p;
    if ((st = sg_model_clone(m, &work)) != SG_OK) {
        cli_fail_status(st);
        goto done2;
    }
    for (int32_t l = 0; l < nl; l++) {
        const struct sg_prune_spec *sp = sg_prune_scope(m, &pc, idx[l], &buf);
        chosen[l] = 1.0;
        for (int di = 0; di < nd; di++) {
            cli_progress_note("sensitivity: %s at density %.3f", m->params[idx[l]].name, dens[di]);
            memcpy(work->arena, m->arena, m->arena_len * sizeof(float));
            memcpy(work->mask, m->mask, m->arena_len);
            struct sg_wview v = sg_model_wview(work, idx[l]);
            if ((st = sg_prune_layer_density(sp, &v, dens[di])) != SG_OK ||
                (st = sg_prune_follow(work, NULL)) != SG_OK || /* as sg_prune_model does */
                (st = sg_evaluate(work, test, 0, &r)) != SG_OK) {
                cli_fail_status(st);
                goto done2;
            }
            acc[l * nd + di] = r.top1;
            if (r.top1 >= base - tol - 1e-12 && dens[di] < chosen[l]) chosen[l] = dens[di];
        }
    }
    cli_progress_done();
    /* table and profile: layer, chosen density, accuracy at every density */
    struct cli_table t;
    cli_table_init(&t, 2 + nd);
    t.right_align = ~1u;
    const char *hdr[66];
    hdr[0] = "layer";
    hdr[1] = "density";
    for (int di = 0; di < nd; di++) hdr[2 + di] = cli_fmt("top1@%g", dens[di]);
    cli_table_rowf(&t, hdr);
    for (int32_t l = 0; l < nl; l++) {
        const char *row[66];
        static char name[SG_NAME_MAX];
        snprintf(name, sizeof name, "%s", m->params[idx[l]].name);
        char *dot = strrchr(name, '.');
        if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
        row[0] = name;
        row[1] = cli_fmt("%g", chosen[l]);
        for (int di = 0; di < nd; di++) row[2 + di] = cli_fmt("%.4f", acc[l * nd + di]);
        cli_table_rowf(&t, row);
    }
    const char *out = cli_str(a, "output");
    if (out) {
        char *csv = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&csv, &len);
        fprintf(f, "# sensitivity of %s on %s: baseline top-1 %.4f, tolerance %.2f pp, %s\n",
                a->pos[0], test->name, base, tol * 100, cli_str(a, "granularity"));
        cli_table_print(&t, f, 1);
        fclose(f);
        st = sg_file_write_atomic(out, csv, len);
        free(csv);
        if (st != SG_OK) {
            cli_fail_status(st);
            cli_table_free(&t);
            goto done2;
        }
    }
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "baseline_top1"), sg_json_num(&j, base);
        sg_json_key(&j, "tolerance"), sg_json_num(&j, tol);
        sg_json_key(&j, "densities"), sg_json_arr(&j);
        for (int di = 0; di < nd; di++) sg_json_num(&j, dens[di]);
        sg_json_end(&j);
        sg_json_key(&j, "layers"), sg_json_arr(&j);
        for (int32_t l = 0; l < nl; l++) {
            sg_json_obj(&j);
            sg_json_key(&j, "name"), sg_json_str(&j, m->params[idx[l]].name);
            sg_json_key(&j, "density"), sg_json_num(&j, chosen[l]);
            sg_json_key(&j, "top1"), sg_json_arr(&j);
            for (int di = 0; di < nd; di++) sg_json_num(&j, acc[l * nd + di]);
            sg_json_end(&j);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("baseline top-1 %.2f%% on %s; density = lowest with a drop of at most %.2f pp\n\n",
               100 * base, test->name, tol * 100);
        cli_table_print(&t, stdout, 0);
        if (out) printf("\nwrote %s (use it with --profile)\n", out);
    }
    cli_table_free(&t);
    rc = 0;
done2:
    free(idx), free(acc), free(chosen);
done:
    sg_model_free(work);
    sg_model_free(m);
    sg_dataset_free(test);
    return rc;
}

const struct cli_cmd cmd_sensitivity = {
    "sensitivity", "per-layer accuracy when that layer alone is pruned (no retraining)",
    "MODEL [options]",
    "Prunes each layer in scope alone at every density of the list, evaluates, and\n"
    "picks per layer the lowest density whose top-1 stays within the tolerance of the\n"
    "unpruned model. With -o the result is a profile for 'prune --profile FILE'.",
    OPTS, 1, 1, run,
};
