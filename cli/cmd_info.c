/* sparsegrain info: architecture, per-layer shapes, parameters and density. */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"json", 0, NULL, "print one JSON object", NULL},
    {0},
};

static size_t kept_of(struct sg_model *m, int32_t p) {
    const float *d = sg_param_data(m, p);
    const uint8_t *mk = sg_param_mask(m, p);
    size_t k = 0;
    for (size_t i = 0; i < m->params[p].count; i++) k += mk[i] && d[i] != 0.0f;
    return k;
}

static const char *shape_str(const struct sg_param *p) {
    char b[96] = "";
    for (int d = 0; d < p->ndim; d++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? "x" : "", (long long)p->dims[d]);
    return cli_fmt("%s", b);
}

static int run(struct cli_args *a) {
    struct sg_model *m;
    if (cli_load_model(a->pos[0], &m)) return 1;
    size_t weights, kept, total = 0;
    sg_model_count(m, &weights, &kept);
    for (int32_t i = 0; i < m->n_params; i++) total += m->params[i].count;
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "arch"), sg_json_str(&j, m->arch);
        sg_json_key(&j, "input"), sg_json_arr(&j);
        sg_json_int(&j, m->in_c), sg_json_int(&j, m->in_h), sg_json_int(&j, m->in_w);
        sg_json_end(&j);
        sg_json_key(&j, "classes"), sg_json_int(&j, m->n_classes);
        char spec[256];
        sg_json_key(&j, "input_norm"), sg_json_str(&j, sg_preproc_format(&m->preproc, spec, sizeof spec));
        sg_json_key(&j, "input_norm_stated"), sg_json_bool(&j, m->preproc.stated);
        sg_json_key(&j, "parameters"), sg_json_int(&j, (int64_t)total);
        sg_json_key(&j, "weights"), sg_json_int(&j, (int64_t)weights);
        sg_json_key(&j, "kept"), sg_json_int(&j, (int64_t)kept);
        sg_json_key(&j, "density"), sg_json_num(&j, weights ? (double)kept / weights : 1.0);
        sg_json_key(&j, "nodes"), sg_json_arr(&j);
        for (int32_t i = 0; i < m->n_nodes; i++) {
            const struct sg_node *n = &m->nodes[i];
            sg_json_obj(&j);
            sg_json_key(&j, "name"), sg_json_str(&j, n->name);
            sg_json_key(&j, "op"), sg_json_str(&j, sg_op_name(n->op));
            sg_json_key(&j, "inputs"), sg_json_arr(&j);
            for (int k = 0; k < n->n_in; k++) sg_json_str(&j, m->nodes[n->in[k]].name);
            sg_json_end(&j);
            sg_json_key(&j, "output"), sg_json_arr(&j);
            sg_json_int(&j, n->c), sg_json_int(&j, n->h), sg_json_int(&j, n->w);
            sg_json_end(&j);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_key(&j, "params"), sg_json_arr(&j);
        for (int32_t i = 0; i < m->n_params; i++) {
            const struct sg_param *p = &m->params[i];
            sg_json_obj(&j);
            sg_json_key(&j, "name"), sg_json_str(&j, p->name);
            sg_json_key(&j, "shape"), sg_json_arr(&j);
            for (int d = 0; d < p->ndim; d++) sg_json_int(&j, p->dims[d]);
            sg_json_end(&j);
            sg_json_key(&j, "count"), sg_json_int(&j, (int64_t)p->count);
            sg_json_key(&j, "density"), sg_json_num(&j, (double)kept_of(m, i) / p->count);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_key(&j, "meta"), sg_json_obj(&j);
        for (int i = 0; i < m->n_meta; i++) sg_json_key(&j, m->meta[i].key), sg_json_str(&j, m->meta[i].value);
        sg_json_end(&j);
        sg_json_end(&j);
        cli_print_json(&j);
        sg_model_free(m);
        return 0;
    }
    printf("%s: %s, input %dx%dx%d, %d classes, %zu parameters\n", a->pos[0], m->arch, m->in_c,
           m->in_h, m->in_w, m->n_classes, total);
    printf("conv/fc weights: %zu, kept %zu (density %.4f)\n", weights, kept,
           weights ? (double)kept / weights : 1.0);
    printf("input preprocessing: %s\n\n", cli_preproc_words(&m->preproc));
    struct cli_table t;
    cli_table_init(&t, 5);
    t.right_align = 0x1c;
    cli_table_row(&t, "node", "op", "output", "params", "density");
    for (int32_t i = 0; i < m->n_nodes; i++) {
        const struct sg_node *n = &m->nodes[i];
        size_t np = 0, nk = 0, nw = 0;
        for (int k = 0; k < 4; k++)
            if (n->param[k] >= 0) {
                const struct sg_param *p = &m->params[n->param[k]];
                np += p->count;
                if (p->kind == SG_PARAM_WEIGHT) {
                    nw += p->count;
                    nk += kept_of(m, n->param[k]);
                }
            }
        cli_table_row(&t, n->name, sg_op_name(n->op), cli_fmt("%dx%dx%d", n->c, n->h, n->w),
                      np ? cli_fmt("%zu", np) : "", nw ? cli_fmt("%.4f", (double)nk / nw) : "");
    }
    if (m->n_nodes == 0) { /* weights only: list the tensors */
        cli_table_free(&t);
        cli_table_init(&t, 4);
        t.right_align = 0xc;
        cli_table_row(&t, "tensor", "shape", "count", "density");
        for (int32_t i = 0; i < m->n_params; i++)
            cli_table_row(&t, m->params[i].name, shape_str(&m->params[i]),
                          cli_fmt("%zu", m->params[i].count),
                          cli_fmt("%.4f", (double)kept_of(m, i) / m->params[i].count));
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    if (m->n_meta) {
        printf("\n");
        for (int i = 0; i < m->n_meta; i++) printf("%-10s %s\n", m->meta[i].key, m->meta[i].value);
    }
    sg_model_free(m);
    return 0;
}

const struct cli_cmd cmd_info = {
    "info", "architecture, per-layer shapes, parameters and density of a model", "MODEL [options]",
    NULL, OPTS, 1, 1, run,
};
