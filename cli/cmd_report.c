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
    {"gpu", 0, "FILE", "add a GPU section from bench-gpu's CSV rows (bench/results/gpu.csv)", NULL},
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

/* What the report is made of, gathered step by step by run(). */
struct rep {
    const char *dir;
    struct sg_points pts;
    double tol;
    char *settings, *command, *html;
    size_t len;
    struct sg_csv *storage, *scnn, *infer, *gpu_rows, *gpu;
    char stp[4096], scp[4096], inp[4096]; /* their paths */
    struct sg_noloss *nl;
    int n_nl, n_models, seed;
    struct sg_report_model *models;
    struct sg_layer_structure **layers;
    uint8_t **pngs;
    char mask_layer[SG_NAME_MAX];
};

static void rep_free(struct rep *r) {
    for (int g = 0; g < r->n_nl && r->layers; g++) free(r->layers[g]);
    for (int g = 0; g < r->n_nl && r->pngs; g++) free(r->pngs[g]);
    free(r->layers), free(r->pngs), free(r->models), free(r->nl), free(r->settings);
    free(r->html), free(r->command);
    sg_csv_free(r->storage);
    sg_csv_free(r->scnn);
    sg_csv_free(r->infer);
    sg_csv_free(r->gpu_rows);
    sg_csv_free(r->gpu);
    sg_points_free(&r->pts);
}

/* study.json as written, and the tolerance it used (NAN when it has none). */
static int read_settings(struct rep *r) {
    r->tol = NAN;
    uint8_t *buf;
    size_t blen;
    const char *sp = join(r->dir, "study.json");
    if (!exists(sp)) {
        cli_warn("%s: no study.json; the settings section will be empty", sp);
        return 0;
    }
    enum sg_status st = sg_file_read(sp, 1 << 20, 0, &buf, &blen);
    if (st != SG_OK) return cli_fail_status(st);
    r->settings = malloc(blen + 1);
    if (!r->settings) {
        free(buf);
        return cli_fail("out of memory");
    }
    memcpy(r->settings, buf, blen);
    r->settings[blen] = 0;
    free(buf);
    cJSON *js = cJSON_Parse(r->settings);
    const cJSON *t = js ? cJSON_GetObjectItemCaseSensitive(js, "tolerance") : NULL;
    if (cJSON_IsNumber(t)) r->tol = t->valuedouble;
    else cli_warn("%s: not a JSON object with a tolerance", sp);
    cJSON_Delete(js);
    return 0;
}

/* The seed whose no-loss models are described (the lowest with a baseline), and the
 * command line that ran the study, from the baseline's metadata. */
static void baseline_of(struct rep *r) {
    r->seed = -1;
    const struct sg_point *base = NULL;
    for (int i = 0; i < r->pts.n; i++) {
        const struct sg_point *p = &r->pts.p[i];
        if (!strcmp(p->gran, "dense") && !p->control[0] && p->step == 0 &&
            (r->seed < 0 || p->seed < r->seed))
            r->seed = p->seed, base = p;
    }
    if (!base) return;
    struct sg_model *m;
    if (sg_model_load_any(model_path(r->dir, base->file), &m) == SG_OK) {
        const char *s = sg_meta_get(m, "study");
        if (s && *s) r->command = strdup(s);
        sg_model_free(m);
    } else {
        cli_warn("%s", sg_last_error());
    }
}

/* Each granularity's no-loss model: its layers' structure and a mask picture. */
static int describe_models(const struct cli_args *a, struct rep *r) {
    r->models = calloc((size_t)r->n_nl + 1, sizeof *r->models);
    r->layers = calloc((size_t)r->n_nl + 1, sizeof *r->layers);
    r->pngs = calloc((size_t)r->n_nl + 1, sizeof *r->pngs);
    if (!r->models || !r->layers || !r->pngs) return cli_fail("out of memory");
    const int seed = r->seed;
    for (int g = 0; g < r->n_nl; g++) {
        if (!r->nl[g].seeds) continue;
        struct sg_report_model *rm = &r->models[r->n_models++];
        snprintf(rm->gran, sizeof rm->gran, "%s", r->nl[g].gran);
        rm->seed = seed;
        const struct sg_point *p =
            seed >= 0 ? sg_study_noloss_point(&r->pts, r->nl[g].gran, seed, r->tol) : NULL;
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
        if (sg_model_load_any(model_path(r->dir, p->file), &m) != SG_OK) {
            snprintf(rm->note, sizeof rm->note, "%.150s", sg_last_error());
            cli_warn("%s", sg_last_error());
            continue;
        }
        if (structure_of(m, p, &r->layers[g], &rm->n_layers)) {
            sg_model_free(m);
            return 1;
        }
        rm->layers = r->layers[g];
        if (!cli_flag(a, "no-masks")) {
            char *ml = r->mask_layer;
            int32_t li = ml[0] ? layer_by_name(m, ml) : draw_default_layer(m);
            if (li >= 0) {
                if (!ml[0]) snprintf(ml, sizeof r->mask_layer, "%s", m->params[li].name);
                mask_picture(m, li, rm, &r->pngs[g]);
            }
        }
        sg_model_free(m);
    }
    return 0;
}

/* Tables other stages add to the folder, when present. */
static void load_tables(struct rep *r) {
    snprintf(r->stp, sizeof r->stp, "%s", join(r->dir, "storage.csv"));
    snprintf(r->scp, sizeof r->scp, "%s", join(r->dir, "scnn.csv"));
    snprintf(r->inp, sizeof r->inp, "%s", join(r->dir, "infer.csv"));
    if (exists(r->stp) && sg_csv_load(r->stp, &r->storage) != SG_OK)
        cli_warn("%s; the storage section is left out", sg_last_error());
    if (exists(r->scp) && sg_csv_load(r->scp, &r->scnn) != SG_OK)
        cli_warn("%s; the SCNN section is left out", sg_last_error());
    if (exists(r->inp) && sg_csv_load(r->inp, &r->infer) != SG_OK)
        cli_warn("%s; the inference speed section is left out", sg_last_error());
}

static void print_result(const struct cli_args *a, struct rep *r, const char *out) {
    char *dot = strrchr(r->mask_layer, '.');
    if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        sg_json_key(&j, "bytes"), sg_json_int(&j, (int64_t)r->len);
        sg_json_key(&j, "points"), sg_json_int(&j, r->pts.n);
        sg_json_key(&j, "tolerance"), sg_json_num(&j, r->tol);
        sg_json_key(&j, "storage"), sg_json_bool(&j, r->storage != NULL);
        sg_json_key(&j, "scnn"), sg_json_bool(&j, r->scnn != NULL);
        sg_json_key(&j, "infer"), sg_json_bool(&j, r->infer != NULL);
        sg_json_key(&j, "gpu"), sg_json_bool(&j, r->gpu != NULL);
        sg_json_key(&j, "mask_layer"), sg_json_str(&j, r->mask_layer);
        sg_json_end(&j);
        cli_print_json(&j);
        return;
    }
    printf("wrote %s (%.1f KB): %d points, %d granularities%s%s\n", out, (double)r->len / 1024,
           r->pts.n, r->n_models, r->mask_layer[0] ? ", mask pictures of layer " : "",
           r->mask_layer);
    if (r->storage) printf("  storage section from %s\n", r->stp);
    if (r->scnn) printf("  SCNN section from %s\n", r->scp);
    if (r->infer) printf("  inference speed section from %s\n", r->inp);
    if (r->gpu) printf("  GPU section from %s\n", cli_str(a, "gpu"));
}

/* Everything after the checks of the command line; 0 or 1. */
static int make_report(const struct cli_args *a, struct rep *r, const char *pts_path,
                       const char *out, const char *band) {
    size_t valid;
    struct stat sb;
    enum sg_status st = sg_points_load(pts_path, &r->pts, &valid);
    if (st != SG_OK) return cli_fail_status(st);
    if (stat(pts_path, &sb) == 0 && (size_t)sb.st_size > valid)
        cli_warn("%s: ignoring a damaged last line (a study cut short; rerunning the study repairs it)", pts_path);
    if (r->pts.n == 0) return cli_fail("%s: no points yet; let the study finish a step first", pts_path);
    if (read_settings(r)) return 1;
    if (cli_has(a, "tolerance")) r->tol = cli_num(a, "tolerance", 0, 100) / 100.0;
    if (!isfinite(r->tol) || r->tol < 0 || r->tol >= 1) {
        cli_warn("no tolerance in study.json: using 0.1 pp (--tolerance to change)");
        r->tol = 0.001;
    }
    if ((st = sg_study_noloss(&r->pts, r->tol, &r->nl, &r->n_nl)) != SG_OK)
        return cli_fail_status(st);
    baseline_of(r);
    if (describe_models(a, r)) return 1;
    load_tables(r);
    if (cli_has(a, "gpu") && ((st = sg_csv_load(cli_str(a, "gpu"), &r->gpu_rows)) != SG_OK ||
                              (st = sg_report_gpu_summary(r->gpu_rows, cli_str(a, "gpu"), &r->gpu)) != SG_OK))
        return cli_fail_status(st);
    struct sg_report_env env;
    sg_report_env_probe(&env);
    struct sg_report_input in = {
        .dir = r->dir, .pts = &r->pts, .tol = r->tol, .settings_json = r->settings,
        .command = r->command, .env = &env, .models = r->models, .n_models = r->n_models,
        .storage = r->storage, .scnn = r->scnn, .infer = r->infer, .gpu = r->gpu,
        .axes = cli_flag(a, "log-x") ? SG_REPORT_LOG_X : cli_flag(a, "linear-x") ? SG_REPORT_LINEAR_X
                                                                               : SG_REPORT_LINEAR_X | SG_REPORT_LOG_X,
        .band_std = strcmp(band, "std") == 0,
    };
    if ((st = sg_report_html(&in, &r->html, &r->len)) != SG_OK ||
        (st = sg_file_write_atomic(out, r->html, r->len)) != SG_OK)
        return cli_fail_status(st);
    print_result(a, r, out);
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
    struct rep r = {.dir = dir};
    int rc = make_report(a, &r, pts_path, out, band);
    rep_free(&r);
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
