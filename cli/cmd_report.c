/* sparsegrain report: the study folder as one self-contained HTML page. This file
 * gathers what the page shows (points, settings, the no-loss models' structure
 * and mask pictures, optional storage and SCNN tables); src/report/html.c lays
 * it out and knows nothing of models or files. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"

int32_t draw_default_layer(const struct sg_model *m); /* cmd_draw.c */

static const struct cli_opt OPTS[] = {
    {"output", 'o', "FILE", "HTML file to write (default: DIR/report.html)", NULL},
    {"log-x", 0, NULL, "draw the density axis on a log scale only (default: linear and log charts)", NULL},
    {"linear-x", 0, NULL, "draw the density axis on a linear scale only", NULL},
    {"band", 0, "KIND", "spread over seeds: minmax (lowest to highest seed) or std (mean +- 1 std)",
     "minmax"},
    {"tolerance", 0, "PP", "no-loss tolerance in percentage points (default: the study's)", NULL},
    {"no-masks", 0, NULL, "leave out the pictures of the no-loss models' masks", NULL},
    {"json", 0, NULL, "print what was written as one JSON object", NULL},
    {0},
};

static const char *join(const char *dir, const char *file) {
    static char ring[4][4096];
    static int at;
    char *b = ring[at++ % 4];
    if (file[0] == '/') snprintf(b, sizeof ring[0], "%s", file);
    else snprintf(b, sizeof ring[0], "%s/%s", dir, file);
    return b;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A point's model file: relative to the study folder, except a baseline given
 * with `study --baseline FILE`, which is recorded as the user wrote it. */
static const char *model_path(const char *dir, const char *file) {
    const char *p = join(dir, file);
    return exists(p) || !exists(file) ? p : file;
}

/* The per-layer structure of one model (as `stats` computes it). */
static int structure_of(struct sg_model *m, const struct sg_point *pt, struct sg_layer_structure **out, int *n_out) {
    static const enum sg_granularity G[SG_STRUCT_GRANS] = {SG_GRAN_FINE, SG_GRAN_VECTOR, SG_GRAN_KERNEL,
                                                           SG_GRAN_FILTER, SG_GRAN_CHANNEL};
    int32_t n = sg_model_weight_params(m, NULL);
    int32_t *idx = malloc(sizeof *idx * (size_t)(n > 0 ? n : 1));
    struct sg_layer_structure *ls = calloc((size_t)(n > 0 ? n : 1), sizeof *ls);
    if (!idx || !ls) {
        free(idx), free(ls);
        return cli_fail("out of memory");
    }
    sg_model_weight_params(m, idx);
    for (int32_t i = 0; i < n; i++) {
        const struct sg_param *p = &m->params[idx[i]];
        struct sg_layer_structure *l = &ls[i];
        snprintf(l->name, sizeof l->name, "%s", p->name);
        char *dot = strrchr(l->name, '.');
        if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
        l->is_fc = p->layer == SG_LAYER_FC;
        l->ndim = p->ndim;
        for (int d = 0; d < p->ndim && d < 4; d++) l->dims[d] = p->dims[d];
        l->weights = (int64_t)p->count;
        for (int k = 0; k < pt->n_layers; k++) l->pruned |= strcmp(pt->layer[k], l->name) == 0;
        struct sg_wview v = sg_model_wview(m, idx[i]);
        for (int g = 0; g < SG_STRUCT_GRANS; g++) {
            struct sg_prune_spec sp;
            sg_prune_spec_default(&sp);
            sp.gran = G[g];
            l->density[g] = sg_group_density(&v, &sp);
        }
    }
    free(idx);
    *out = ls;
    *n_out = n;
    return 0;
}

/* The layer every mask picture shows: the same for all granularities. */
static int32_t layer_by_name(const struct sg_model *m, const char *name) {
    int32_t n = sg_model_weight_params(m, NULL);
    for (int32_t i = 0; i < m->n_params && n > 0; i++)
        if (m->params[i].kind == SG_PARAM_WEIGHT && strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

static int mask_picture(struct sg_model *m, int32_t p, struct sg_report_model *rm, uint8_t **png) {
    struct sg_wview v = sg_model_wview(m, p);
    const int64_t maxk = 64, K = v.k < maxk ? v.k : maxk, C = v.c < maxk ? v.c : maxk;
    int scale = 1; /* up to 4 px per weight while the picture stays within 280 x 720 */
    while (scale < 4 && C * (v.s * (scale + 1) + 1) + 1 <= 280 && K * (v.r * (scale + 1) + 1) + 1 <= 720) scale++;
    struct sg_mask_image_cfg cfg = {.scale = scale, .max_k = maxk, .max_c = maxk};
    struct sg_image img;
    int64_t sk, sc;
    size_t len;
    enum sg_status st = sg_mask_image(&v, &cfg, &img, &sk, &sc);
    if (st == SG_OK) st = sg_png_encode(&img, png, &len);
    if (st != SG_OK) {
        sg_image_free(&img);
        cli_warn("%s: no mask picture: %s", rm->file, sg_last_error());
        return 0;
    }
    rm->png = *png;
    rm->png_len = len;
    rm->png_w = img.w;
    rm->png_h = img.h;
    snprintf(rm->png_layer, sizeof rm->png_layer, "%s", v.name);
    char *dot = strrchr(rm->png_layer, '.');
    if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
    if (sk < v.k || sc < v.c)
        snprintf(rm->png_note, sizeof rm->png_note, "first %lld of %lld filters, %lld of %lld channels",
                 (long long)sk, (long long)v.k, (long long)sc, (long long)v.c);
    sg_image_free(&img);
    return 0;
}

static int run(struct cli_args *a) {
    const char *dir = a->pos[0];
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return cli_fail("%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cli_fail("%s is not a folder; give the folder a study wrote (sparsegrain study -o DIR)", dir);
    char pts_path[4096];
    snprintf(pts_path, sizeof pts_path, "%s", join(dir, "points.jsonl"));
    if (!exists(pts_path))
        return cli_fail("%s is not a study folder: it has no points.jsonl (make one with "
                        "'sparsegrain study -o %s')", dir, dir);
    char out_default[4096];
    snprintf(out_default, sizeof out_default, "%s/report.html", dir);
    const char *out = cli_has(a, "output") ? cli_str(a, "output") : out_default;
    if (cli_flag(a, "log-x") && cli_flag(a, "linear-x")) cli_usage_error(a, "give --log-x or --linear-x, not both");
    const char *band = cli_str(a, "band");
    if (strcmp(band, "minmax") && strcmp(band, "std")) cli_usage_error(a, "unknown --band '%s' (minmax, std)", band);

    int rc = 1;
    struct sg_points pts = {0};
    char *settings = NULL, *html = NULL, *command = NULL;
    struct sg_csv *storage = NULL, *scnn = NULL, *infer = NULL;
    struct sg_report_model *models = NULL;
    struct sg_layer_structure **layers = NULL;
    uint8_t **pngs = NULL;
    struct sg_noloss *nl = NULL;
    int n_nl = 0, n_models = 0;
    size_t valid, len = 0;

    enum sg_status st = sg_points_load(pts_path, &pts, &valid);
    if (st != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    if (stat(pts_path, &sb) == 0 && (size_t)sb.st_size > valid)
        cli_warn("%s: ignoring a damaged last line (a study cut short; rerunning the study repairs it)", pts_path);
    if (pts.n == 0) {
        cli_fail("%s: no points yet; let the study finish a step first", pts_path);
        goto done;
    }
    /* settings: study.json as written, and the tolerance it used */
    double tol = NAN;
    {
        uint8_t *buf;
        size_t blen;
        const char *sp = join(dir, "study.json");
        if (exists(sp)) {
            if ((st = sg_file_read(sp, 1 << 20, 0, &buf, &blen)) != SG_OK) {
                cli_fail_status(st);
                goto done;
            }
            settings = malloc(blen + 1);
            if (!settings) {
                free(buf);
                cli_fail("out of memory");
                goto done;
            }
            memcpy(settings, buf, blen);
            settings[blen] = 0;
            free(buf);
            cJSON *js = cJSON_Parse(settings);
            const cJSON *t = js ? cJSON_GetObjectItemCaseSensitive(js, "tolerance") : NULL;
            if (cJSON_IsNumber(t)) tol = t->valuedouble;
            else cli_warn("%s: not a JSON object with a tolerance", sp);
            cJSON_Delete(js);
        } else {
            cli_warn("%s: no study.json; the settings section will be empty", sp);
        }
    }
    if (cli_has(a, "tolerance")) tol = cli_num(a, "tolerance", 0, 100) / 100.0;
    if (!isfinite(tol) || tol < 0 || tol >= 1) {
        cli_warn("no tolerance in study.json: using 0.1 pp (--tolerance to change)");
        tol = 0.001;
    }
    if ((st = sg_study_noloss(&pts, tol, &nl, &n_nl)) != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    /* the seed whose no-loss models are described: the lowest with a baseline */
    int seed = -1;
    const struct sg_point *base = NULL;
    for (int i = 0; i < pts.n; i++) {
        const struct sg_point *p = &pts.p[i];
        if (!strcmp(p->gran, "dense") && !p->control[0] && p->step == 0 && (seed < 0 || p->seed < seed))
            seed = p->seed, base = p;
    }
    if (base) { /* the command line that ran the study lives in the baseline's metadata */
        struct sg_model *m;
        if (sg_model_load_any(model_path(dir, base->file), &m) == SG_OK) {
            const char *s = sg_meta_get(m, "study");
            if (s && *s) command = strdup(s);
            sg_model_free(m);
        } else {
            cli_warn("%s", sg_last_error());
        }
    }
    models = calloc((size_t)n_nl + 1, sizeof *models);
    layers = calloc((size_t)n_nl + 1, sizeof *layers);
    pngs = calloc((size_t)n_nl + 1, sizeof *pngs);
    if (!models || !layers || !pngs) {
        cli_fail("out of memory");
        goto done;
    }
    char mask_layer[SG_NAME_MAX] = "";
    for (int g = 0; g < n_nl; g++) {
        if (!nl[g].seeds) continue;
        struct sg_report_model *rm = &models[n_models++];
        snprintf(rm->gran, sizeof rm->gran, "%s", nl[g].gran);
        rm->seed = seed;
        const struct sg_point *p = seed >= 0 ? sg_study_noloss_point(&pts, nl[g].gran, seed, tol) : NULL;
        if (!p) {
            if (seed < 0) snprintf(rm->note, sizeof rm->note, "The study has no dense baseline yet.");
            else snprintf(rm->note, sizeof rm->note, "No pruned point of seed %d met the tolerance: there is no "
                          "no-loss model to describe.", seed);
            continue;
        }
        rm->step = p->step;
        rm->density = p->density;
        rm->top1 = p->top1;
        snprintf(rm->file, sizeof rm->file, "%s", p->file);
        struct sg_model *m;
        if (sg_model_load_any(model_path(dir, p->file), &m) != SG_OK) {
            snprintf(rm->note, sizeof rm->note, "%.150s", sg_last_error());
            cli_warn("%s", sg_last_error());
            continue;
        }
        if (structure_of(m, p, &layers[g], &rm->n_layers)) {
            sg_model_free(m);
            goto done;
        }
        rm->layers = layers[g];
        if (!cli_flag(a, "no-masks")) {
            int32_t li = mask_layer[0] ? layer_by_name(m, mask_layer) : draw_default_layer(m);
            if (li >= 0) {
                if (!mask_layer[0]) snprintf(mask_layer, sizeof mask_layer, "%s", m->params[li].name);
                mask_picture(m, li, rm, &pngs[g]);
            }
        }
        sg_model_free(m);
    }
    /* tables other stages add to the folder */
    char stp[4096], scp[4096], inp[4096];
    snprintf(stp, sizeof stp, "%s", join(dir, "storage.csv"));
    snprintf(scp, sizeof scp, "%s", join(dir, "scnn.csv"));
    snprintf(inp, sizeof inp, "%s", join(dir, "infer.csv"));
    if (exists(stp) && sg_csv_load(stp, &storage) != SG_OK)
        cli_warn("%s; the storage section is left out", sg_last_error());
    if (exists(scp) && sg_csv_load(scp, &scnn) != SG_OK)
        cli_warn("%s; the SCNN section is left out", sg_last_error());
    if (exists(inp) && sg_csv_load(inp, &infer) != SG_OK)
        cli_warn("%s; the inference speed section is left out", sg_last_error());

    struct sg_report_env env;
    sg_report_env_probe(&env);
    struct sg_report_input in = {
        .dir = dir, .pts = &pts, .tol = tol, .settings_json = settings, .command = command, .env = &env,
        .models = models, .n_models = n_models, .storage = storage, .scnn = scnn, .infer = infer,
        .axes = cli_flag(a, "log-x") ? SG_REPORT_LOG_X : cli_flag(a, "linear-x") ? SG_REPORT_LINEAR_X
                                                                               : SG_REPORT_LINEAR_X | SG_REPORT_LOG_X,
        .band_std = strcmp(band, "std") == 0,
    };
    if ((st = sg_report_html(&in, &html, &len)) != SG_OK || (st = sg_file_write_atomic(out, html, len)) != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    char *dot = strrchr(mask_layer, '.');
    if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        sg_json_key(&j, "bytes"), sg_json_int(&j, (int64_t)len);
        sg_json_key(&j, "points"), sg_json_int(&j, pts.n);
        sg_json_key(&j, "tolerance"), sg_json_num(&j, tol);
        sg_json_key(&j, "storage"), sg_json_bool(&j, storage != NULL);
        sg_json_key(&j, "scnn"), sg_json_bool(&j, scnn != NULL);
        sg_json_key(&j, "infer"), sg_json_bool(&j, infer != NULL);
        sg_json_key(&j, "mask_layer"), sg_json_str(&j, mask_layer);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("wrote %s (%.1f KB): %d points, %d granularities%s%s\n", out, (double)len / 1024, pts.n, n_models,
               mask_layer[0] ? ", mask pictures of layer " : "", mask_layer);
        if (storage) printf("  storage section from %s\n", stp);
        if (scnn) printf("  SCNN section from %s\n", scp);
        if (infer) printf("  inference speed section from %s\n", inp);
    }
    rc = 0;
done:
    for (int g = 0; g < n_nl && layers; g++) free(layers[g]);
    for (int g = 0; g < n_nl && pngs; g++) free(pngs[g]);
    free(layers), free(pngs), free(models), free(nl), free(settings), free(html), free(command);
    sg_csv_free(storage);
    sg_csv_free(scnn);
    sg_csv_free(infer);
    sg_points_free(&pts);
    return rc;
}

const struct cli_cmd cmd_report = {
    "report", "the study folder as one HTML page: curves, tables, mask pictures, settings", "DIR [options]",
    "Reads a study folder (points.jsonl, study.json, the models of the no-loss points,\n"
    "and storage.csv, scnn.csv and infer.csv when present) and writes one self-contained HTML page\n"
    "with inline SVG charts: accuracy against density per granularity with the spread\n"
    "over seeds, the no-loss density table, the per-layer sparsity structure and a mask\n"
    "picture of each no-loss model, and the settings that produced the results. The\n"
    "page needs no network and prints well. docs/report.md describes every section.",
    OPTS, 1, 1, run,
};
