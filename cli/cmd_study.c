/* sparsegrain study: the paper's experiment. Train (or take) a dense baseline, then
 * for every granularity and seed walk the density grid with iterative pruning and
 * retraining, recording every point; tables of curves and no-loss densities. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dist.h"
#include "study.h"

static const struct cli_opt OPTS[] = {
    {"model", 'm', "NAME", "built-in network: {model}", "lenet5"},
    {"data", 'd', "NAME", "data set: mnist or fashion", "mnist"},
    {"data-dir", 0, "DIR", "folder with IDX files", NULL},
    {"granularities", 'g', "LIST", "granularities to compare", "fine,vector,kernel,filter"},
    {"densities", 0, "LIST", "density grid (1 = the baseline)",
     "1,0.7,0.5,0.4,0.3,0.2,0.15,0.1,0.07,0.05"},
    {"extend", 0, "LIST", "densities tried below the grid while a granularity keeps its "
                          "accuracy ('none' to stop at the grid)",
     "0.03,0.02,0.01,0.005,0.002,0.001"},
    {"retrain-epochs", 'r', "N", "masked retraining after each pruning step", "1"},
    {"baseline-epochs", 0, "N", "epochs of the dense baseline (cosine schedule)", "15"},
    {"baseline", 0, "FILE", "use this trained dense model instead of training one", NULL},
    {"seeds", 0, "N", "independent repetitions (baseline, shuffling)", "1"},
    {"tolerance", 0, "PP", "no loss = top-1 >= baseline - PP percentage points", "0.1"},
    {"control", 0, "KIND", "also run Liu et al.'s control: reinit (no-loss mask, weights "
                           "re-initialised, trained as long)",
     NULL},
    {"quantize", 0, "LIST", "codebook bits to quantise each no-loss model to (quantize.csv)",
     "8,6,5,4"},
    {"scnn-images", 0, "N", "test images run through the SCNN model (0 = skip; scnn.csv)", "16"},
    {"scnn-density", 0, "X", "matched-density SCNN comparison at the grid point nearest X", "0.3"},
    {"infer-batch", 0, "N", "batch of the CPU inference speed of each no-loss model, dense vs "
                            "sparse kernels (0 = skip; infer.csv)", "256"},
    {"criterion", 0, "C", "group saliency: {criterion} (seeded by the study seed)", "l1"},
    {"schedule", 0, "S", "iterative (prune each step's model further), oneshot or agp (from the "
                         "baseline at every step, retrained as many epochs)", "iterative"},
    {"selection", 0, "SEL", "layer (same density per layer) or global (one threshold)", "layer"},
    {"profile", 0, "FILE", "relative per-layer densities (CSV layer,density, e.g. from "
                           "sensitivity), scaled to each step's density", NULL},
    {"fc", 0, "MODE", "fully connected layers: {fc}", "dense"},
    {"include-first", 0, NULL, "prune the first conv layer too", NULL},
    {"lr", 0, "X", "baseline learning rate (default 0.05 with batch norm, else 0.01)", NULL},
    {"retrain-lr", 0, "X", "learning rate of each retraining step (cosine to 0)", "0.01"},
    {"batch", 'b', "N", "batch size", "64"},
    {"momentum", 0, "X", "SGD momentum", "0.9"},
    {"weight-decay", 0, "X", "L2 weight decay", "5e-4"},
    {"augment", 0, "KIND", "{augment}", "none"},
    {"quick", 0, NULL, "a 6000-image subset, 2 baseline epochs and a short grid (~1 minute)", NULL},
    {"train-images", 0, "N", "use the first N training images (0 = all; --quick: 6000)", "0"},
    {"val-images", 0, "N", "validation split held out of the training images: it takes every "
                           "decision, the test set only reports (0 = none; --quick: 1000)", "5000"},
    {"test-images", 0, "N", "report on N test images sampled at random, seeded (0 = all; "
                            "--quick: 2000)", "0"},
    {"jobs", 'j', "N", "chains run at once, one thread each (0 = one per core; over MPI: per "
                       "rank, its share of the cores)", "0"},
    {"threads", 't', "N", "threads of each baseline's training; --jobs / N baselines train at "
                          "once (0 = --jobs / --seeds, at least 1: one seed's baseline on every "
                          "core; over MPI: rank 0's share of the cores)", "0"},
    {"output", 'o', "DIR", "study folder (created; rerun to resume)", NULL},
    {"json", 0, NULL, "print the no-loss table as one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int parse_list(const struct cli_args *a, const char *name, double *out, int max) {
    return cli_num_list(a, name, out, max, 0, 1);
}

/* The settings that decide the results; a rerun must match them. */
static void settings_json(const struct study *st, const struct cli_args *a, struct sg_json *j) {
    sg_json_init(j);
    sg_json_obj(j);
    sg_json_key(j, "model"), sg_json_str(j, st->model_name);
    sg_json_key(j, "data"), sg_json_str(j, st->train->name);
    sg_json_key(j, "baseline"), sg_json_str(j, st->baseline_file ? st->baseline_file : "");
    sg_json_key(j, "granularities"), sg_json_arr(j);
    for (int i = 0; i < st->ngran; i++) sg_json_str(j, st->grans[i]);
    sg_json_end(j);
    sg_json_key(j, "grid"), sg_json_arr(j);
    for (int i = 0; i < st->ngrid; i++) sg_json_num(j, st->grid[i]);
    sg_json_end(j);
    sg_json_key(j, "extend"), sg_json_arr(j);
    for (int i = 0; i < st->next; i++) sg_json_num(j, st->ext[i]);
    sg_json_end(j);
    sg_json_key(j, "retrain_epochs"), sg_json_int(j, st->retrain_epochs);
    sg_json_key(j, "baseline_epochs"), sg_json_int(j, st->baseline_epochs);
    sg_json_key(j, "seeds"), sg_json_int(j, st->seeds);
    sg_json_key(j, "tolerance"), sg_json_num(j, st->tol);
    sg_json_key(j, "criterion"), sg_json_str(j, sg_criterion_name(st->pc.spec.crit));
    sg_json_key(j, "fc"), sg_json_str(j, sg_fc_mode_name(st->pc.fc));
    sg_json_key(j, "include_first"), sg_json_bool(j, st->pc.include_first);
    sg_json_key(j, "schedule"), sg_json_str(j, sg_schedule_name(st->schedule));
    sg_json_key(j, "selection"), sg_json_str(j, st->profile ? "profile" : sg_selection_name(st->pc.sel));
    sg_json_key(j, "profile"), sg_json_str(j, st->profile_file ? st->profile_file : "");
    sg_json_key(j, "lr"), sg_json_num(j, st->lr_base);
    sg_json_key(j, "retrain_lr"), sg_json_num(j, st->lr_retrain);
    sg_json_key(j, "batch"), sg_json_int(j, st->tc.batch);
    sg_json_key(j, "momentum"), sg_json_num(j, st->tc.momentum);
    sg_json_key(j, "weight_decay"), sg_json_num(j, st->tc.weight_decay);
    sg_json_key(j, "augment"), sg_json_str(j, cli_str(a, "augment"));
    sg_json_key(j, "train_images"), sg_json_int(j, st->train->n);
    sg_json_key(j, "val_images"), sg_json_int(j, st->val_images);
    sg_json_key(j, "test_images"), sg_json_int(j, st->test->n);
    sg_json_key(j, "test_sample"), sg_json_str(j, st->test_sample ? "random" : "all");
    sg_json_key(j, "control"), sg_json_str(j, st->control_reinit ? "reinit" : "");
    sg_json_end(j);
}

/* "seeds: 3 in the folder, 1 now; ..." for the settings that differ (into out). */
static void settings_diff(const char *old, size_t len, const char *now, char *out, size_t cap) {
    cJSON *a = cJSON_ParseWithLength(old, len), *b = cJSON_Parse(now);
    size_t n = 0;
    out[0] = 0;
    for (const cJSON *v = b ? b->child : NULL; v && n < cap; v = v->next) {
        const cJSON *w = a ? cJSON_GetObjectItemCaseSensitive(a, v->string) : NULL;
        char *sv = cJSON_PrintUnformatted(v), *sw = w ? cJSON_PrintUnformatted(w) : NULL;
        if (sv && (!sw || strcmp(sv, sw) != 0))
            n += (size_t)snprintf(out + n, cap - n, "%s%s: %s in the folder, %s now", n ? "; " : "",
                                  v->string, sw ? sw : "none", sv);
        cJSON_free(sv), cJSON_free(sw);
    }
    if (!out[0]) snprintf(out, cap, "the folder's study.json is not one this version writes");
    cJSON_Delete(a), cJSON_Delete(b);
}

/* Writes DIR/study.json, or checks that an existing one matches. */
static int check_settings(const struct study *st, const struct cli_args *a) {
    struct sg_json j;
    settings_json(st, a, &j);
    const char *path = study_path(st, "study.json");
    uint8_t *old;
    size_t len;
    int rc = 0;
    if (sg_file_read(path, 1 << 20, 0, &old, &len) == SG_OK) {
        size_t n = strlen(sg_json_cstr(&j));
        while (len && (old[len - 1] == '\n')) len--;
        if (len != n || memcmp(old, sg_json_cstr(&j), n) != 0) {
            char diff[512];
            settings_diff((const char *)old, len, sg_json_cstr(&j), diff, sizeof diff);
            rc = cli_fail("%s: this folder holds a study with other settings (%s); use the same "
                          "arguments to resume it, or another folder\n  folder: %.*s\n  now:    %s",
                          path, diff, (int)len, (const char *)old, sg_json_cstr(&j));
        }
        free(old);
    } else {
        char *txt = malloc(strlen(sg_json_cstr(&j)) + 2);
        sprintf(txt, "%s\n", sg_json_cstr(&j));
        if (sg_file_write_atomic(path, txt, strlen(txt)) != SG_OK) rc = cli_fail_status(SG_ERR_IO);
        free(txt);
    }
    sg_json_free(&j);
    return rc;
}

static const char *col_note(const struct sg_noloss_col *c, int seeds) {
    static char buf[256];
    size_t n = 0;
    buf[0] = 0;
#define NOTE(count, text)                                                                      \
    if ((count) && n < sizeof buf)                                                             \
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s" text "%s", n ? "; " : "",          \
                              (count) == seeds ? "" : cli_fmt(" (%d of %d seeds)", (count), seeds))
    NOTE(c->never_met, "never met");
    NOTE(c->grid_short, "grid too short");
    NOTE(c->no_ref, "no reference further down");
#undef NOTE
    return buf;
}

static void json_col(struct sg_json *j, const struct sg_noloss_col *c) {
    sg_json_obj(j);
    sg_json_key(j, "density"), sg_json_num(j, c->d.mean);
    sg_json_key(j, "ci95"), sg_json_num(j, c->d.half);
    sg_json_key(j, "std"), sg_json_num(j, c->d.std);
    sg_json_key(j, "min"), sg_json_num(j, c->d.min);
    sg_json_key(j, "max"), sg_json_num(j, c->d.max);
    sg_json_key(j, "mean_curve"), sg_json_num(j, c->walk_mean);
    sg_json_key(j, "top1"), sg_json_num(j, c->top1);
    sg_json_key(j, "val_top1"), sg_json_num(j, c->val_top1);
    sg_json_key(j, "never_met"), sg_json_int(j, c->never_met);
    sg_json_key(j, "grid_too_short"), sg_json_int(j, c->grid_short);
    sg_json_key(j, "no_reference"), sg_json_int(j, c->no_ref);
    sg_json_end(j);
}

static void print_noloss(const struct study *st, const struct sg_points *pts, int json) {
    struct sg_noloss *rows;
    int n;
    if (sg_study_noloss(pts, st->tol, &rows, &n) != SG_OK) return;
    if (json) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "dir"), sg_json_str(&j, st->dir);
        sg_json_key(&j, "tolerance"), sg_json_num(&j, st->tol);
        sg_json_key(&j, "val_images"), sg_json_int(&j, st->val_images);
        sg_json_key(&j, "no_loss"), sg_json_arr(&j);
        for (int i = 0; i < n; i++) {
            if (!rows[i].seeds) continue;
            sg_json_obj(&j);
            sg_json_key(&j, "granularity"), sg_json_str(&j, rows[i].gran);
            sg_json_key(&j, "seeds"), sg_json_int(&j, rows[i].seeds);
            sg_json_key(&j, "vs_dense_retrained"), json_col(&j, &rows[i].fair);
            sg_json_key(&j, "vs_baseline"), json_col(&j, &rows[i].base);
            sg_json_key(&j, "baseline_top1"), sg_json_num(&j, rows[i].baseline_top1);
            sg_json_key(&j, "baseline_val_top1"), sg_json_num(&j, rows[i].baseline_val_top1);
            sg_json_key(&j, "paired_vs"), sg_json_str(&j, rows[i].vs);
            sg_json_key(&j, "paired_diff"), sg_json_num(&j, rows[i].diff.mean);
            sg_json_key(&j, "paired_ci95"), sg_json_num(&j, rows[i].diff.half);
            sg_json_key(&j, "verdict"), sg_json_str(&j, rows[i].verdict);
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_key(&j, "storage_verdict"), sg_json_str(&j, st->storage_verdict);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        struct cli_table t;
        cli_table_init(&t, 7);
        t.right_align = 0x1e;
        const char *vs = n ? rows[0].vs : "";
        cli_table_row(&t, "granularity", "no-loss density", "test top-1", "val top-1",
                      "vs baseline", cli_fmt("vs %s", vs), "note");
        for (int i = 0; i < n; i++) {
            const struct sg_noloss *r = &rows[i];
            if (!r->seeds) continue;
            const char *d = r->seeds > 1 ? cli_fmt("%.4f \xc2\xb1 %.4f", r->mean, r->ci)
                                         : cli_fmt("%.4f", r->mean);
            const char *bd = r->seeds > 1 ? cli_fmt("%.4f \xc2\xb1 %.4f", r->base.d.mean, r->base.d.half)
                                          : cli_fmt("%.4f", r->base.d.mean);
            cli_table_row(&t, r->gran, d, cli_fmt("%.2f%%", 100 * r->top1),
                          isfinite(r->val_top1) ? cli_fmt("%.2f%%", 100 * r->val_top1) : "-", bd,
                          r->verdict, col_note(&r->fair, r->seeds));
        }
        printf("no-loss density: walking down each chain, the last point before the first whose "
               "validation\ntop-1 falls below the dense model retrained for the same epochs minus "
               "%.2f pp (vs baseline:\nagainst the model pruning started from). ",
               100 * st->tol);
        if (rows && n && rows[0].seeds > 1)
            printf("Mean \xc2\xb1 95%% CI (t) over %d seeds; the verdict pairs seeds:\na difference "
                   "whose interval holds 0 is a tie.%s\n\n",
                   rows[0].seeds,
                   st->baseline_file ? " The seeds share one --baseline: the spread excludes "
                                       "baseline variation." : "");
        else
            printf("One seed: no interval and no verdict\n(--seeds N for both).\n\n");
        cli_table_print(&t, stdout, 0);
        if (st->storage_verdict[0]) { /* wrapped at 90 columns */
            const char *v = st->storage_verdict;
            putchar('\n');
            while (*v) {
                size_t len = strlen(v), cut = len;
                if (len > 90) {
                    cut = 90;
                    while (cut > 0 && v[cut] != ' ') cut--;
                    if (cut == 0) cut = 90;
                }
                printf("%.*s\n", (int)cut, v);
                v += cut;
                while (*v == ' ') v++;
            }
        }
        printf("\nresults in %s/: points.jsonl, curves.csv, no_loss.csv, storage.csv, "
               "quantize.csv, scnn.csv, infer.csv, models/\n", st->dir);
        cli_table_free(&t);
    }
    free(rows);
}

/* Creates the folder, checks or writes study.json, loads the points so far (rank 0
 * alone in a run over MPI). */
static int prepare_folder(struct study *st, const struct cli_args *a, struct sg_points *pts) {
    if (mkdir(st->dir, 0755) != 0 && errno != EEXIST)
        return cli_fail("%s: cannot create the study folder: %s", st->dir, strerror(errno));
    if (mkdir(study_path(st, "models"), 0755) != 0 && errno != EEXIST)
        return cli_fail("%s: cannot create: %s", study_path(st, "models"), strerror(errno));
    return check_settings(st, a) || study_load_points(st, pts);
}

/* One phase: forked workers here, or spread over the MPI ranks. */
static int run_phase(struct study *st, const struct task *tasks, int n, int workers, int threads,
                     const char *phase, struct sg_points *pts) {
    if (dist_size() > 1) return study_dist_phase(st, tasks, n, workers, threads, phase, pts);
    return study_run_tasks(st, tasks, n, workers, threads, phase);
}

/* --granularities: each a prune spec that can walk a density grid. */
static void parse_grans(struct study *st, const struct cli_args *a) {
    const char *s = cli_str(a, "granularities");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        if (sg_prune_spec_parse(tok, &sp) != SG_OK) cli_usage_error(a, "%s", sg_last_error());
        if (sp.gran == SG_GRAN_NM)
            cli_usage_error(a, "%s keeps a fixed density (%d of %d): it has no place on a density "
                               "grid; prune it with `sparsegrain prune -g %s` and compare at that "
                               "density", tok, sp.nm_n, sp.nm_m, tok);
        if (st->ngran == STUDY_MAX_GRANS) cli_usage_error(a, "too many granularities");
        sg_prune_spec_format(&sp, st->grans[st->ngran++], sizeof st->grans[0]);
    }
    if (!st->ngran) cli_usage_error(a, "--granularities is empty");
}

/* --densities (falling, below 1) and --extend (below the grid). */
static void parse_grid(struct study *st, const struct cli_args *a, int quick) {
    double grid[STUDY_MAX_GRID];
    int ng = parse_list(a, "densities", grid, STUDY_MAX_GRID);
    if (quick && !cli_has(a, "densities")) {
        const double q[] = {1, 0.5, 0.25, 0.1};
        ng = 4;
        memcpy(grid, q, sizeof q);
    }
    for (int i = 0; i < ng; i++) {
        if (grid[i] >= 1) continue;
        if (grid[i] <= 0) cli_usage_error(a, "--densities must be in (0, 1]");
        if (st->ngrid && grid[i] >= st->grid[st->ngrid - 1])
            cli_usage_error(a, "--densities must fall (got %g after %g)", grid[i],
                            st->grid[st->ngrid - 1]);
        st->grid[st->ngrid++] = grid[i];
    }
    if (!st->ngrid) cli_usage_error(a, "--densities has no density below 1");
    if (strcmp(cli_str(a, "extend"), "none") != 0 && !(quick && !cli_has(a, "extend"))) {
        double ext[STUDY_MAX_GRID];
        int ne = parse_list(a, "extend", ext, STUDY_MAX_GRID);
        for (int i = 0; i < ne; i++)
            if (ext[i] > 0 && ext[i] < (st->next ? st->ext[st->next - 1] : st->grid[st->ngrid - 1]))
                st->ext[st->next++] = ext[i];
    }
}

/* Pruning scope and criterion (the granularity comes with each chain), the pruning
 * schedule and selection, and the training settings through the shared parser (the
 * study's own --schedule is the pruning schedule: the learning rate always follows a
 * cosine, so cli_train_schedule_cfg has no place here). */
static void parse_prune_train(struct study *st, const struct cli_args *a) {
    sg_prune_cfg_default(&st->pc);
    st->pc.spec.crit = (enum sg_criterion)cli_parse_criterion(a);
    st->pc.fc = (enum sg_fc_mode)cli_parse_fc(a);
    st->pc.include_first = cli_flag(a, "include-first");
    int sched = sg_schedule_from_name(cli_str(a, "schedule"));
    if (sched < 0)
        cli_usage_error(a, "unknown --schedule '%s' (iterative, oneshot, agp)",
                        cli_str(a, "schedule"));
    st->schedule = (enum sg_schedule)sched;
    int sel = sg_selection_from_name(cli_str(a, "selection"));
    if (sel < 0 || sel == SG_SEL_PROFILE)
        cli_usage_error(a, "unknown --selection '%s' (layer, global; --profile FILE for a profile)",
                        cli_str(a, "selection"));
    st->pc.sel = (enum sg_selection)sel;
    /* batch, momentum, decay, augmentation; tc.lr (-1 without --lr) and tc.progress
     * are replaced by every task (study_work.c) */
    cli_train_cfg(a, &st->tc);
    st->lr_retrain = (float)cli_num(a, "retrain-lr", 0, 100);
}

/* Every option that needs no data. */
static void parse_options(struct study *st, const struct cli_args *a) {
    st->dir = cli_str(a, "output");
    if (!st->dir) cli_usage_error(a, "give the study folder with -o DIR");
    st->argv_line = a->argv_line ? a->argv_line : "";
    st->model_name = cli_str(a, "model");
    const int quick = cli_flag(a, "quick");
    parse_grans(st, a);
    parse_grid(st, a, quick);
    st->scnn_images = (int)cli_int(a, "scnn-images", 0, 100000);
    st->scnn_density = cli_num(a, "scnn-density", 0, 1);
    st->infer_batch = (int)cli_int(a, "infer-batch", 0, 65536);
    st->retrain_epochs = (int)cli_int(a, "retrain-epochs", 0, 10000);
    st->baseline_epochs = (int)cli_int(a, "baseline-epochs", 1, 10000);
    if (quick && !cli_has(a, "retrain-epochs")) st->retrain_epochs = 1;
    if (quick && !cli_has(a, "baseline-epochs")) st->baseline_epochs = 2;
    st->seeds = (int)cli_int(a, "seeds", 1, 1000);
    st->tol = cli_num(a, "tolerance", 0, 100) / 100.0;
    st->baseline_file = cli_str(a, "baseline");
    if (cli_has(a, "input-norm") && !st->baseline_file)
        cli_usage_error(a, "--input-norm applies to a given --baseline (trained models record theirs)");
    if (cli_has(a, "control")) {
        if (strcmp(cli_str(a, "control"), "reinit") != 0)
            cli_usage_error(a, "unknown --control '%s' (reinit)", cli_str(a, "control"));
        st->control_reinit = 1;
    }
    parse_prune_train(st, a);
    if (strcmp(cli_str(a, "quantize"), "none") != 0)
        st->nq = cli_num_list(a, "quantize", st->qbits, 16, 1, 16);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    st->jobs = (int)cli_int(a, "jobs", 0, 64);
    if (st->jobs == 0) st->jobs = cores > 0 ? (int)cores : 1;
    /* rows do not depend on --jobs, but the baseline's do on --threads. The default
     * shares the --jobs cores among the seeds' baselines, which train at once: one
     * seed on 2 cores trains its lone baseline on both (the chains after it take one
     * core each), three seeds train on one thread each, packed with the chains. It
     * depends on the core count and --seeds, never on the load; an explicit value
     * keeps results comparable between machines. */
    st->threads = (int)cli_int(a, "threads", 0, 256);
    if (st->threads == 0) st->threads = st->jobs / st->seeds > 1 ? st->jobs / st->seeds : 1;
}

/* The data sets and their subsets: the first N training images, N test images
 * sampled at random with a fixed seed (--quick: 6000 training, 2000 test); the
 * caller frees st->train/st->test where they differ from the full sets. */
static int load_data(struct study *st, const struct cli_args *a, struct sg_dataset **train_all,
                     struct sg_dataset **test_all) {
    if (cli_load_data(a, NULL, 1, train_all) || cli_load_data(a, NULL, 0, test_all)) return 1;
    st->train = *train_all;
    st->test = *test_all;
    const int quick = cli_flag(a, "quick");
    int64_t ntr = cli_int(a, "train-images", 0, 1L << 31), nte = cli_int(a, "test-images", 0, 1L << 31);
    if (quick && !cli_has(a, "train-images")) ntr = 6000;
    if (quick && !cli_has(a, "test-images")) nte = 2000;
    if (ntr > 0 && ntr < (*train_all)->n) {
        struct sg_dataset *v;
        if (sg_dataset_view(*train_all, 0, ntr, &v) != SG_OK) return cli_fail_status(SG_ERR_ARG), 1;
        st->train = v;
    }
    if (nte > 0 && nte < (*test_all)->n) {
        struct sg_dataset *rest, *sample;
        if (sg_dataset_split(*test_all, nte, 0x7E57ull, &rest, &sample) != SG_OK)
            return cli_fail_status(SG_ERR_ARG), 1;
        sg_dataset_free(rest);
        snprintf(sample->name, sizeof sample->name, "%s", (*test_all)->name);
        st->test = sample;
        st->test_sample = 1;
    }
    st->val_images = (int)cli_int(a, "val-images", 0, 1L << 30);
    if (quick && !cli_has(a, "val-images")) st->val_images = 1000;
    if (st->val_images >= st->train->n)
        cli_usage_error(a, "--val-images %d leaves no training images (%lld in %s)", st->val_images,
                        (long long)st->train->n, st->train->name);
    return 0;
}

/* The --profile, and the baseline's learning rate, which depends on the architecture. */
static int load_profile_lr(struct study *st, const struct cli_args *a,
                           struct sg_profile **profile) {
    if (cli_has(a, "profile")) {
        st->profile_file = cli_str(a, "profile");
        if (sg_profile_load(st->profile_file, profile) != SG_OK)
            return cli_fail_status(SG_ERR_FORMAT), 1;
        st->profile = *profile;
    }
    struct sg_model *probe;
    if (sg_model_build(st->model_name, st->train->c, st->train->h, st->train->w,
                       st->train->classes, 1, &probe) != SG_OK)
        cli_usage_error(a, "%s", sg_last_error());
    st->lr_base = st->tc.lr >= 0 ? st->tc.lr : sg_model_default_lr(probe);
    sg_model_free(probe);
    return 0;
}

/* Over MPI, rank 0 prepares the folder and owns points.jsonl; every rank runs its
 * share of each phase (*in_phases: a failure from here on ends the whole job). */
static int setup_folder(struct study *st, const struct cli_args *a, struct sg_points *pts,
                        int *ranks, int *in_phases) {
    if (dist_init()) return 1;
    *ranks = dist_size();
    if (*ranks > 1) {
        const int rank = dist_rank();
        /* ranks that share a machine share its cores; rank 0's baseline thread
         * count holds on every rank */
        if (cli_int(a, "jobs", 0, 64) == 0) st->jobs = dist_cores();
        if (cli_int(a, "threads", 0, 256) == 0) st->threads = dist_cores();
        if (study_dist_setup(st, rank == 0 ? prepare_folder(st, a, pts) : 0, pts)) return 1;
        *in_phases = 1;
        return 0;
    }
    return prepare_folder(st, a, pts);
}

/* A given --baseline: evaluated and recorded as the seed's step 0 in points.jsonl. */
static int record_baseline(struct study *st, int seed, struct sg_points *pts) {
    struct sg_model *m;
    if (cli_load_model(st->baseline_file, &m)) return 1;
    cli_input_note(m, st->baseline_file, st->test);
    struct sg_eval_result r, rv = {0};
    struct sg_dataset *tr = NULL, *val = NULL;
    enum sg_status s = sg_evaluate(m, st->test, 0, &r);
    if (s == SG_OK && study_seed_data(st, seed, &tr, &val)) s = SG_ERR_ARG;
    if (s == SG_OK && val) s = sg_evaluate(m, val, 0, &rv);
    if (tr != st->train) sg_dataset_free(tr);
    sg_dataset_free(val);
    if (s != SG_OK) {
        sg_model_free(m);
        return cli_fail("%s: %s", st->baseline_file, sg_last_error()), 1;
    }
    struct sg_point p;
    memset(&p, 0, sizeof p);
    snprintf(p.model, sizeof p.model, "%s", m->arch);
    snprintf(p.data, sizeof p.data, "%s", st->test->name);
    strcpy(p.gran, "dense");
    snprintf(p.crit, sizeof p.crit, "%s", sg_criterion_name(st->pc.spec.crit));
    p.seed = seed;
    p.target = p.density = 1;
    p.top1 = r.top1, p.top5 = r.top5, p.loss = r.loss;
    p.val_top1 = st->val_images ? rv.top1 : NAN;
    const char *ep = sg_meta_get(m, "epochs");
    p.epochs = ep ? atoi(ep) : st->baseline_epochs;
    snprintf(p.file, sizeof p.file, "%s", st->baseline_file);
    sg_points_add(pts, &p);
    struct sg_json j;
    sg_json_init(&j);
    sg_point_json(&p, &j);
    FILE *fp = fopen(study_path(st, "points.jsonl"), "a");
    if (!fp) {
        sg_model_free(m);
        sg_json_free(&j);
        return cli_fail("%s: cannot append", study_path(st, "points.jsonl")), 1;
    }
    fprintf(fp, "%s\n", sg_json_cstr(&j));
    fflush(fp);
    fsync(fileno(fp));
    fclose(fp);
    sg_json_free(&j);
    sg_model_free(m);
    return 0;
}

/* Phase 1: the baselines (one per seed), trained or a given one recorded. */
static int phase_baselines(struct study *st, struct task *tasks, struct sg_points *pts) {
    int ntask = 0;
    for (int s = 1; s <= st->seeds; s++) {
        int have = 0;
        for (int i = 0; i < pts->n; i++)
            have |= !strcmp(pts->p[i].gran, "dense") && pts->p[i].step == 0 && pts->p[i].seed == s;
        if (!have) tasks[ntask++] = (struct task){TASK_BASELINE, "dense", s, 0, 0};
    }
    if (st->baseline_file) {
        /* rank 0 owns the file */
        for (int i = 0; i < ntask && dist_rank() == 0; i++)
            if (record_baseline(st, tasks[i].seed, pts)) return 1;
        ntask = 0;
    }
    /* as many baselines at once as --jobs has room for at --threads each: a
     * baseline's result depends on --threads alone, never on how many run beside it */
    int workers = st->jobs / (st->threads > 0 ? st->threads : 1);
    if (workers < 1) workers = 1;
    return run_phase(st, tasks, ntask, workers, st->threads, "baseline", pts);
}

/* The index of seed s's dense reference in tasks[0..n). */
static int follower_at(const struct task *tasks, int n, int s) {
    for (int i = 0; i < n; i++)
        if (tasks[i].follow && tasks[i].seed == s) return i;
    return -1;
}

/* The four phases: baselines, chains, the dense reference below the grid (over MPI;
 * in one process the reference follows its seed's chains in phase 2), controls.
 * With one-thread baselines in one process (no MPI, no --baseline), the first two
 * are one list: baselines first, then the chains, each ready once its seed's
 * baseline has finished, so that no core idles while the last baselines train (3
 * seeds on 2 cores). */
static int run_phases(struct study *st, struct sg_points *pts, int ranks) {
    int ntask = 0, cap = 3 * st->seeds * (st->ngran + 2) + 4, rc = 1;
    struct task *tasks = calloc((size_t)cap, sizeof *tasks);
    int *base_at = calloc((size_t)st->seeds + 1, sizeof *base_at); /* 1 + the index of seed s's baseline */
    const int merged = ranks == 1 && st->threads == 1 && !st->baseline_file;
    if (merged) {
        for (int s = 1; s <= st->seeds; s++) {
            int have = 0;
            for (int i = 0; i < pts->n; i++)
                have |= !strcmp(pts->p[i].gran, "dense") && pts->p[i].step == 0 && pts->p[i].seed == s;
            if (!have) {
                tasks[ntask] = (struct task){TASK_BASELINE, "dense", s, 0, 0};
                base_at[s] = ++ntask;
            }
        }
    } else if (phase_baselines(st, tasks, pts)) {
        goto done;
    }
    /* phase 2: the chains. In one process the list order is the priority (a free
     * worker takes the first task that can run): each seed's dense reference first,
     * a follower that runs whatever steps its seed's pruned chains have reached and
     * is put back when it has caught up (so it needs no phase of its own below the
     * grid), then the pruned chains granularity by granularity over the seeds: the
     * deep chains (fine) first, the shallow ones (filter) last, which packs the
     * cores to the end (scripts/study_sim.py replays a study through this schedule).
     * Over MPI the ranks share no progress: the pruned chains, then the dense
     * references as far as the grid, then phase 3. */
    if (ranks == 1) {
        for (int s = 1; s <= st->seeds; s++)
            tasks[ntask++] = (struct task){TASK_CHAIN, "dense", s, base_at[s], 1};
        for (int g = 0; g < st->ngran; g++)
            for (int s = 1; s <= st->seeds; s++) {
                tasks[ntask] = (struct task){TASK_CHAIN, "", s, base_at[s], 0};
                snprintf(tasks[ntask++].gran, sizeof tasks[0].gran, "%s", st->grans[g]);
            }
    } else {
        for (int s = 1; s <= st->seeds; s++)
            for (int g = 0; g < st->ngran; g++) {
                tasks[ntask] = (struct task){TASK_CHAIN, "", s, base_at[s], 0};
                snprintf(tasks[ntask++].gran, sizeof tasks[0].gran, "%s", st->grans[g]);
            }
        for (int s = 1; s <= st->seeds; s++)
            tasks[ntask++] = (struct task){TASK_CHAIN, "dense", s, base_at[s], 0};
    }
    /* in one process the post-processing items run on one thread, as the chains:
     * each (granularity, seed) item joins the list last, ready once its seed's
     * reference has finished, so it fills a core that the last chains leave (one
     * seed: 4 pruned chains and the reference on 2 cores leave one idle for a chain's
     * length) */
    if (ranks == 1)
        for (int g = 0; g < st->ngran; g++)
            for (int s = 1; s <= st->seeds; s++) {
                tasks[ntask] = (struct task){TASK_POST, "", s, 1 + follower_at(tasks, ntask, s), 0};
                snprintf(tasks[ntask++].gran, sizeof tasks[0].gran, "%s", st->grans[g]);
            }
    if (run_phase(st, tasks, ntask, st->jobs, 1, merged ? "baselines and chains" : "study", pts))
        goto done;
    /* phase 3: the dense reference follows the pruned chains below the grid */
    if (dist_rank() == 0 || ranks == 1) {
        sg_points_free(pts);
        if (study_load_points(st, pts)) goto done;
    }
    ntask = 0;
    for (int s = 1; s <= st->seeds; s++) {
        int have = 0;
        while (sg_points_find(pts, "dense", "", s, have + 1)) have++;
        if (have < sg_study_reference_steps(pts, s, st->ngrid))
            tasks[ntask++] = (struct task){TASK_CHAIN, "dense", s, 0, 0};
    }
    if (run_phase(st, tasks, ntask, st->jobs, 1, "reference", pts)) goto done;
    /* phase 4: controls */
    if (st->control_reinit) {
        ntask = 0;
        for (int s = 1; s <= st->seeds; s++)
            for (int g = 0; g < st->ngran; g++) {
                tasks[ntask] = (struct task){TASK_CONTROL, "", s, 0, 0};
                snprintf(tasks[ntask++].gran, sizeof tasks[0].gran, "%s", st->grans[g]);
            }
        if (run_phase(st, tasks, ntask, st->jobs, 1, "control", pts)) goto done;
    }
    rc = 0;
done:
    free(tasks);
    free(base_at);
    return rc;
}

/* Rank 0 after the phases: the tables, the later stages, the printed summary. */
static int write_results(struct study *st, const struct cli_args *a, struct sg_points *pts) {
    sg_points_free(pts);
    if (study_load_points(st, pts)) return 1;
    if (sg_study_write_tables(pts, st->tol, st->dir) != SG_OK) return cli_fail_status(SG_ERR_IO), 1;
    if (study_post(st, pts)) return 1;
    print_noloss(st, pts, cli_flag(a, "json"));
    return 0;
}

static int run(struct cli_args *a) {
    struct study st;
    memset(&st, 0, sizeof st);
    st.point_fd = -1;
    parse_options(&st, a);

    int rc = 1, ranks = 1, in_phases = 0;
    struct sg_dataset *train_all = NULL, *test_all = NULL;
    struct sg_profile *profile = NULL;
    struct sg_points pts = {0};
    if (load_data(&st, a, &train_all, &test_all) || load_profile_lr(&st, a, &profile)) goto done;
    if (setup_folder(&st, a, &pts, &ranks, &in_phases)) goto done;
    st.post_threads = ranks > 1 ? st.threads : 1;
    if (run_phases(&st, &pts, ranks)) goto done;
    in_phases = 0;
    /* rank 0 writes the tables and runs the later stages */
    rc = dist_rank() != 0 ? 0 : write_results(&st, a, &pts);
done:
    sg_points_free(&pts);
    if (st.train != train_all) sg_dataset_free(st.train);
    if (st.test != test_all) sg_dataset_free(st.test);
    sg_dataset_free(train_all);
    sg_dataset_free(test_all);
    sg_profile_free(profile);
    if (ranks > 1) {
        /* a rank that fails inside the phases leaves the others waiting for it */
        if (rc && in_phases) dist_abort(1);
        dist_finish(); /* the others wait here, asleep, while rank 0 finishes */
    }
    return rc;
}

const struct cli_cmd cmd_study = {
    "study", "the granularity study: accuracy vs density for every granularity (the main job)",
    "-o DIR [options]",
    "Trains a dense baseline (or takes --baseline), then for every granularity and seed\n"
    "prunes step by step down the density grid, retraining with the mask fixed after\n"
    "each step, and records top-1 at every point. A dense reference chain is retrained\n"
    "for the same epochs without pruning (the fair comparison). Below the grid the\n"
    "chain goes on (--extend) while accuracy holds. Every finished point is appended to\n"
    "DIR/points.jsonl at once: interrupted, the same command resumes where it stopped.\n"
    "Writes DIR/curves.csv and DIR/no_loss.csv and prints the no-loss table.",
    OPTS, 0, 0, run,
};
