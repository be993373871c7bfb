/* sparsegrain stats: per-layer sparsity structure at every granularity. */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"json", 0, NULL, "print one JSON object", NULL},
    {"csv", 0, NULL, "print CSV", NULL},
    {0},
};

#define NG 5
static const enum sg_granularity GRANS[NG] = {SG_GRAN_FINE, SG_GRAN_VECTOR, SG_GRAN_KERNEL,
                                              SG_GRAN_FILTER, SG_GRAN_CHANNEL};

static int run(struct cli_args *a) {
    struct sg_model *m;
    if (cli_load_model(a->pos[0], &m)) return 1;
    int32_t n = sg_model_weight_params(m, NULL);
    int32_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    sg_model_weight_params(m, idx);
    double tot_groups[NG] = {0}, tot_nz[NG] = {0};
    int64_t tot_w = 0;
    double (*dens)[NG] = malloc((size_t)(n ? n : 1) * sizeof *dens);
    for (int32_t i = 0; i < n; i++) {
        struct sg_wview v = sg_model_wview(m, idx[i]);
        tot_w += sg_wview_count(&v);
        for (int g = 0; g < NG; g++) {
            struct sg_prune_spec sp;
            sg_prune_spec_default(&sp);
            sp.gran = GRANS[g];
            dens[i][g] = sg_group_density(&v, &sp);
            double groups = (double)sg_prune_groups(&sp, &v);
            tot_groups[g] += groups;
            tot_nz[g] += dens[i][g] * groups;
        }
    }
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "layers"), sg_json_arr(&j);
        for (int32_t i = 0; i < n; i++) {
            const struct sg_param *p = &m->params[idx[i]];
            sg_json_obj(&j);
            char name[SG_NAME_MAX];
            snprintf(name, sizeof name, "%s", p->name);
            char *dot = strrchr(name, '.');
            if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
            sg_json_key(&j, "name"), sg_json_str(&j, name);
            sg_json_key(&j, "kind"), sg_json_str(&j, p->layer == SG_LAYER_FC ? "fc" : "conv");
            sg_json_key(&j, "shape"), sg_json_arr(&j);
            for (int d = 0; d < p->ndim; d++) sg_json_int(&j, p->dims[d]);
            sg_json_end(&j);
            sg_json_key(&j, "weights"), sg_json_int(&j, (int64_t)p->count);
            sg_json_key(&j, "density"), sg_json_obj(&j);
            for (int g = 0; g < NG; g++)
                sg_json_key(&j, sg_granularity_name(GRANS[g])), sg_json_num(&j, dens[i][g]);
            sg_json_end(&j);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_key(&j, "total"), sg_json_obj(&j);
        sg_json_key(&j, "weights"), sg_json_int(&j, tot_w);
        sg_json_key(&j, "density"), sg_json_obj(&j);
        for (int g = 0; g < NG; g++)
            sg_json_key(&j, sg_granularity_name(GRANS[g])),
                sg_json_num(&j, tot_groups[g] ? tot_nz[g] / tot_groups[g] : 0);
        sg_json_end(&j);
        sg_json_end(&j);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        struct cli_table t;
        cli_table_init(&t, 9);
        t.right_align = 0x1fc;
        cli_table_row(&t, "layer", "kind", "shape", "weights", "fine", "vector", "kernel", "filter",
                      "channel");
        int pointwise = 0;
        for (int32_t i = 0; i < n; i++) {
            const struct sg_param *p = &m->params[idx[i]];
            char shape[64] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "",
                         (long long)p->dims[d]);
            int pw = p->ndim < 4 || (p->dims[2] == 1 && p->dims[3] == 1);
            pointwise |= pw;
            char name[SG_NAME_MAX];
            snprintf(name, sizeof name, "%s", p->name);
            char *dot = strrchr(name, '.');
            if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
            cli_table_row(&t, name, p->layer == SG_LAYER_FC ? "fc" : "conv",
                          cli_fmt("%s%s", shape, pw ? "*" : ""), cli_fmt("%zu", p->count),
                          cli_fmt("%.4f", dens[i][0]), cli_fmt("%.4f", dens[i][1]),
                          cli_fmt("%.4f", dens[i][2]), cli_fmt("%.4f", dens[i][3]),
                          cli_fmt("%.4f", dens[i][4]));
        }
        cli_table_row(&t, "total", "", "", cli_fmt("%lld", (long long)tot_w),
                      cli_fmt("%.4f", tot_nz[0] / tot_groups[0]), cli_fmt("%.4f", tot_nz[1] / tot_groups[1]),
                      cli_fmt("%.4f", tot_nz[2] / tot_groups[2]), cli_fmt("%.4f", tot_nz[3] / tot_groups[3]),
                      cli_fmt("%.4f", tot_nz[4] / tot_groups[4]));
        if (!cli_flag(a, "csv"))
            printf("fraction of groups holding a non-zero weight, per granularity\n\n");
        cli_table_print(&t, stdout, cli_flag(a, "csv"));
        if (pointwise && !cli_flag(a, "csv"))
            printf("\n* 1x1 (or fully connected): vector, kernel and fine groups coincide\n");
        cli_table_free(&t);
    }
    free(idx);
    free(dens);
    sg_model_free(m);
    return 0;
}

const struct cli_cmd cmd_stats = {
    "stats", "sparsity structure: per layer, the density at every granularity", "MODEL [options]",
    "For each conv/fc layer: its shape, its weights, and the fraction of groups that\n"
    "hold at least one non-zero weight at each granularity (fine = non-zero weights /\n"
    "weights). Works on any model, pruned by sparsegrain or not.",
    OPTS, 1, 1, run,
};
