/* After the chains: measurements of each granularity's no-loss model (matched
 * accuracy) that need no training: compressed storage in every format
 * (storage.csv), accuracy after quantisation (quantize.csv), the SCNN model
 * (scnn.csv) and CPU inference speed with dense and sparse kernels (infer.csv);
 * for filter and channel pruning also of the thinned model. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "study.h"

/* The no-loss point of (granularity, seed): the study's walk, on the validation
 * split, against the dense chain retrained for the same epochs (NULL when not even
 * the first pruned point passed: the no-loss model is then the dense one). */
static const struct sg_point *noloss_point(const struct study *st, const struct sg_points *pts,
                                           const char *gran, int seed) {
    return sg_study_noloss_point(pts, gran, seed, st->tol);
}

struct vcase {
    const char *name;
    enum sg_values values;
    int bits;
};
/* float32 as trained, half precision, linear 8-bit, and Deep Compression's
 * k-means codebooks (8 bits as for conv layers, 4 bits) */
static const struct vcase VALUES[] = {{"f32", SG_VALUES_F32, 32},
                                      {"f16", SG_VALUES_F16, 16},
                                      {"q8", SG_VALUES_Q8, 8},
                                      {"codebook8", SG_VALUES_CODEBOOK, 8},
                                      {"codebook4", SG_VALUES_CODEBOOK, 4}};
#define NVALUES ((int)(sizeof VALUES / sizeof VALUES[0]))

/* Per granularity and value coding: the smallest storage of the pruned layers
 * over formats at the no-loss point, summed over seeds (for the verdict). */
struct best {
    double bytes, model_bytes, index_share; /* sums over seeds of each seed's smallest */
    double dense_bytes, model_dense;        /* the pruned layers, the model, dense at 32 bits */
    double cur, cur_model, cur_share;       /* the current seed's smallest so far */
    char format[16];                        /* the format of the last seed's smallest */
    int last_seed, count;                   /* seeds counted */
};

/* The point of (granularity, seed) whose achieved density is closest to d (a
 * granularity's achieved density can differ from the target: whole groups). */
static const struct sg_point *point_near(const struct sg_points *pts, const char *gran, int seed,
                                         double d) {
    const struct sg_point *best = NULL;
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (strcmp(p->gran, gran) || p->control[0] || p->seed != seed || p->step == 0) continue;
        if (!best || fabs(p->density - d) < fabs(best->density - d)) best = p;
    }
    return best;
}

/* The cumulative decomposition of issue 21: plain SCNN, + the row window, + the
 * kernel window (instead of the row window), + one index per kept group. */
struct scnn_mode {
    const char *name;
    enum sg_scnn_accum acc;
    enum sg_scnn_index index;
};
static const struct scnn_mode MODES[] = {{"plain", SG_SCNN_ACC_PRODUCT, SG_SCNN_INDEX_WEIGHT},
                                         {"+row", SG_SCNN_ACC_ROW, SG_SCNN_INDEX_WEIGHT},
                                         {"+kernel", SG_SCNN_ACC_KERNEL, SG_SCNN_INDEX_WEIGHT},
                                         {"+group", SG_SCNN_ACC_KERNEL, SG_SCNN_INDEX_GROUP}};

/* The group of --index group for a study granularity: a kept kernel row (vector),
 * a kept kernel (kernel; filter and channel pruning keep whole kernels), else one
 * index per weight. */
static enum sg_scnn_gran_unit scnn_unit(const char *gran) {
    if (strcmp(gran, "vector") == 0) return SG_SCNN_UNIT_ROW;
    if (!strcmp(gran, "kernel") || !strcmp(gran, "filter") || !strcmp(gran, "channel"))
        return SG_SCNN_UNIT_KERNEL;
    return SG_SCNN_UNIT_WEIGHT;
}

/* SCNN on real activations of the test images, every step of the decomposition. */
static int scnn_rows(const struct study *st, FILE *f, const struct sg_point *p, const char *match) {
    struct sg_model *m = NULL;
    if (cli_load_model(study_path(st, "%s", p->file), &m)) return 1;
    int rc = 0;
    for (size_t k = 0; k < sizeof MODES / sizeof MODES[0] && !rc; k++) {
        struct sg_scnn_config c;
        sg_scnn_config_default(&c);
        c.accumulate = MODES[k].acc;
        c.index = MODES[k].index;
        c.index_unit = c.index == SG_SCNN_INDEX_GROUP ? scnn_unit(p->gran) : SG_SCNN_UNIT_WEIGHT;
        struct sg_scnn_model_opts o;
        memset(&o, 0, sizeof o);
        o.images = st->scnn_images;
        struct sg_scnn_run *run = NULL;
        enum sg_status s = sg_scnn_run_model(&c, m, st->test, &o, NULL, NULL, &run);
        if (s != SG_OK) {
            rc = cli_fail_status(s);
            break;
        }
        const struct sg_scnn_stats *t = &run->total;
        fprintf(f, "%s,%s,%d,%.6f,%.6f,%s,%s,%s,%s,%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,"
                   "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.6g\n",
                p->gran, match, p->seed, p->density, p->top1, MODES[k].name,
                sg_scnn_accum_name(c.accumulate), sg_scnn_index_name(c.index),
                sg_scnn_fetch_name(c.fetch), run->images, (long long)t->cycles,
                (long long)t->products, (long long)t->weight_reads, (long long)t->weight_index_reads,
                (long long)t->act_reads, (long long)t->act_index_reads, (long long)t->acc_reads,
                (long long)t->acc_writes, (long long)t->out_writes, (long long)t->halo,
                (long long)t->psum_reads, (long long)t->psum_writes,
                (long long)(sg_scnn_dram_bits(t) / 8), (long long)sg_scnn_memory_refs(t),
                (long long)sg_scnn_memory_bits(&c, t), (long long)sg_scnn_psum_refs(t),
                t->energy.total);
        sg_scnn_run_free(run);
    }
    sg_model_free(m);
    return rc;
}

/* Images/s of model m (no-loss point p) on the test set with every layer dense,
 * then with the sparse kernel each mask suggests: the better of two passes over the
 * whole test set (the first also warms the caches; a third pass cost a fifth of a
 * LeNet-5 study's post-processing). Speed is measured on a shared machine as it is. */
static int infer_rows(const struct study *st, FILE *f, const struct sg_model *m,
                      const struct sg_point *p) {
    static const enum sg_engine ENGINES[] = {SG_ENGINE_DENSE, SG_ENGINE_SPARSE};
    double dense_ips = 0;
    for (size_t e = 0; e < sizeof ENGINES / sizeof ENGINES[0]; e++) {
        struct sg_infer_cfg cfg;
        sg_infer_cfg_default(&cfg);
        cfg.engine = ENGINES[e];
        cfg.batch = st->infer_batch;
        struct sg_infer *inf = NULL;
        struct sg_infer_result r, best = {0};
        enum sg_status s = sg_infer_new(m, &cfg, &inf);
        for (int pass = 0; pass < 2 && s == SG_OK; pass++) {
            s = sg_infer_evaluate(inf, st->test, &r);
            if (s == SG_OK && r.images_per_s > best.images_per_s) best = r;
        }
        if (s != SG_OK) {
            sg_infer_free(inf);
            return cli_fail("%s: %s", p->file, sg_last_error());
        }
        if (ENGINES[e] == SG_ENGINE_DENSE) dense_ips = best.images_per_s;
        /* what ran: layer:kernel for every conv/fc layer */
        fprintf(f, "%s,%d,%.6f,%.6f,%s,%d,%d,%lld,%.6f,%.1f,%.5f,%.3f,", p->gran, p->seed,
                p->density, p->top1, sg_engine_name(ENGINES[e]), st->infer_batch, sg_get_threads(),
                (long long)best.n, best.top1, best.images_per_s,
                best.n ? 1e3 * best.seconds / best.n : 0.0,
                dense_ips > 0 ? best.images_per_s / dense_ips : 0.0);
        for (int32_t i = 0; i < sg_infer_layer_count(inf); i++) {
            struct sg_infer_layer l;
            sg_infer_layer_get(inf, i, &l);
            fprintf(f, "%s%s:%s", i ? " " : "", l.name,
                    l.engine == SG_ENGINE_DENSE ? "dense" : sg_conv_kind_name(l.plan.kind));
        }
        fprintf(f, "\n");
        sg_infer_free(inf);
    }
    return 0;
}

/* storage.csv's rows of model m (no-loss point p, labelled `label`): the pruned
 * layers in every format and value coding, and the whole model. best (NULL: rows
 * only) collects the smallest per value coding for the verdict. */
static void storage_rows(FILE *f, struct sg_model *m, const struct sg_prune_cfg *pcp,
                         struct sg_tile tile, const struct sg_point *p, const char *label,
                         int seed, struct best *best) {
    for (size_t vc = 0; vc < sizeof VALUES / sizeof VALUES[0]; vc++)
        for (int fmt = 0; fmt < SG_FORMAT_COUNT; fmt++) {
            struct sg_storage_cfg cfg;
            sg_storage_cfg_default(&cfg);
            cfg.values = VALUES[vc].values;
            cfg.codebook_bits = VALUES[vc].bits;
            cfg.index_bits = SG_INDEX_BITS_AUTO;
            cfg.tile = tile;
            if (pcp->spec.gran == SG_GRAN_NM) cfg.nm_n = pcp->spec.nm_n, cfg.nm_m = pcp->spec.nm_m;
            struct sg_size tot = {0};
            int64_t weights = 0, kept = 0, ok = 1, rest = 0;
            struct sg_prune_spec buf;
            for (int32_t i = 0; i < m->n_params && ok; i++) {
                if (!sg_prune_scope(m, pcp, i, &buf)) {
                    rest += (int64_t)m->params[i].count; /* stored dense */
                    continue;
                }
                struct sg_wview v = sg_model_wview(m, i);
                struct sg_size sz;
                if (sg_storage_size((enum sg_format)fmt, &v, &cfg, &sz) != SG_OK) {
                    ok = 0; /* e.g. nm on a mask that is not N:M */
                    break;
                }
                weights += sg_wview_count(&v);
                for (int64_t k = 0; k < sg_wview_count(&v); k++) kept += v.mask[k] != 0;
                tot.value_bits += sz.value_bits, tot.index_bits += sz.index_bits;
                tot.filler_bits += sz.filler_bits, tot.meta_bits += sz.meta_bits;
                tot.bytes += sz.bytes;
            }
            if (!ok) continue;
            /* the whole model: the layers left dense (biases, batch norm, the
             * first conv, fc by default) at the same value width (a codebook's
             * indices for a codebook) next to the pruned layers' encoding */
            const double model_bytes = (double)tot.bytes + (double)rest * VALUES[vc].bits / 8.0;
            const double model_dense = 4.0 * (double)(weights + rest);
            const double ishare = tot.bytes ? (double)(tot.index_bits + tot.filler_bits) /
                                                  (8.0 * (double)tot.bytes) : 0;
            fprintf(f, "%s,%d,%.6f,%.6f,%s,%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.4f,%.4f,"
                       "%lld,%.0f,%.4f\n",
                    label, seed, p->density, p->top1, sg_format_name((enum sg_format)fmt),
                    VALUES[vc].name, (long long)weights, (long long)kept,
                    (long long)tot.value_bits, (long long)tot.index_bits,
                    (long long)tot.filler_bits, (long long)tot.meta_bits,
                    (long long)tot.bytes, sg_size_ratio(&tot, weights), ishare,
                    (long long)(weights + rest), model_bytes, model_dense / model_bytes);
            if (!best) continue; /* rows only */
            struct best *b = &best[vc];
            if (b->last_seed != seed) { /* the first format of this seed */
                b->last_seed = seed;
                b->count++;
                b->bytes += (double)tot.bytes, b->model_bytes += model_bytes;
                b->index_share += ishare;
                snprintf(b->format, sizeof b->format, "%s", sg_format_name((enum sg_format)fmt));
                b->dense_bytes = 4.0 * (double)weights;
                b->model_dense = model_dense;
                b->cur = (double)tot.bytes, b->cur_model = model_bytes, b->cur_share = ishare;
            } else if ((double)tot.bytes < b->cur) { /* a smaller format for this seed */
                b->bytes += (double)tot.bytes - b->cur;
                b->model_bytes += model_bytes - b->cur_model;
                b->index_share += ishare - b->cur_share;
                b->cur = (double)tot.bytes, b->cur_model = model_bytes, b->cur_share = ishare;
                snprintf(b->format, sizeof b->format, "%s", sg_format_name((enum sg_format)fmt));
            }
        }
}

/* Filter and channel pruning remove whole channels: the thinned model of the
 * no-loss point (sg_thin; saved next to it as models/<point>-thin.sgm) is measured
 * too, its rows labelled "<granularity> (thinned)": storage, CPU inference and
 * SCNN at matched accuracy. */
static int thinned_rows(const struct study *st, FILE *f, FILE *ic, FILE *sc,
                        const struct sg_model *m, const struct sg_prune_cfg *pc, struct sg_tile tile,
                        const struct sg_point *p, int seed) {
    struct sg_model *t = NULL;
    struct sg_thin_result r;
    enum sg_status s = sg_thin(m, &t, &r);
    if (s != SG_OK) return cli_fail("%s: %s", study_path(st, "%s", p->file), sg_last_error());
    sg_thin_result_free(&r);
    struct sg_point q = *p;
    snprintf(q.gran, sizeof q.gran, "%s (thinned)", p->gran);
    const size_t len = strlen(p->file);
    snprintf(q.file, sizeof q.file, "%.*s-thin.sgm", (int)(len > 4 ? len - 4 : len), p->file);
    int rc = 0;
    cli_progress_note("thinned model: %s s%d", p->gran, seed);
    if ((s = sg_model_save(t, study_path(st, "%s", q.file), NULL)) != SG_OK) rc = cli_fail_status(s);
    if (!rc) storage_rows(f, t, pc, tile, &q, q.gran, seed, NULL);
    if (!rc && st->infer_batch > 0) rc = infer_rows(st, ic, t, &q);
    if (!rc && st->scnn_images > 0) rc = scnn_rows(st, sc, &q, "accuracy");
    sg_model_free(t);
    return rc;
}

/* One sentence on the paper's second finding, from storage.csv's numbers: the
 * bytes of the pruned layers at each granularity's no-loss density (the smallest
 * format, mean over seeds) with 8-bit codebook values, and whether a coarser
 * granularity than fine stores them in fewer bytes. */
static void storage_verdict(struct study *st, struct best (*best)[NVALUES]) {
    const int vc = 3; /* codebook8 */
    char *o = st->storage_verdict;
    size_t cap = sizeof st->storage_verdict, n = 0;
    int fine = -1, smallest = -1;
    for (int g = 0; g < st->ngran; g++) {
        if (!best[g][vc].count) continue;
        if (!strcmp(st->grans[g], "fine")) fine = g;
        if (smallest < 0 || best[g][vc].bytes / best[g][vc].count <
                                best[smallest][vc].bytes / best[smallest][vc].count)
            smallest = g;
    }
    if (smallest < 0) {
        snprintf(o, cap, "Storage at matched accuracy: no granularity has a no-loss point, so there is "
                         "nothing to compare (storage.csv is empty).");
        return;
    }
    n += (size_t)snprintf(o + n, cap - n, "Storage at matched accuracy (the pruned layers at each "
                                          "granularity's no-loss density, smallest format, 8-bit "
                                          "codebook values; storage.csv):");
    for (int g = 0; g < st->ngran && n < cap; g++) {
        const struct best *b = &best[g][vc];
        if (!b->count)
            n += (size_t)snprintf(o + n, cap - n, " %s never met (stays dense);", st->grans[g]);
        else
            n += (size_t)snprintf(o + n, cap - n,
                                  " %s %.1f KB (%s, %.1fx of dense f32, index %.0f%%; whole model "
                                  "%.1fx);",
                                  st->grans[g], b->bytes / b->count / 1024, b->format,
                                  b->dense_bytes / (b->bytes / b->count),
                                  100 * b->index_share / b->count,
                                  b->model_dense / (b->model_bytes / b->count));
    }
    if (n < cap && fine >= 0 && smallest != fine)
        snprintf(o + n, cap - n, " %s is smallest, %.2fx fewer bytes than fine: coarser groups win "
                                 "at matched accuracy here.", st->grans[smallest],
                 (best[fine][vc].bytes / best[fine][vc].count) /
                     (best[smallest][vc].bytes / best[smallest][vc].count));
    else if (n < cap && fine >= 0)
        snprintf(o + n, cap - n, " fine is smallest: its lower density outweighs the index saving of "
                                 "coarser groups here.");
    else if (n < cap)
        snprintf(o + n, cap - n, " %s is smallest (fine has no no-loss point to compare with).",
                 st->grans[smallest]);
}

/* The measurements of one granularity and seed: storage (rows, and with best the
 * sums for the verdict), quantisation, CPU inference and SCNN of its no-loss model,
 * and of the thinned model for filter and channel pruning; rows into f, q, sc, ic. */
static int post_item(const struct study *st, const struct sg_points *pts, int g, int seed, FILE *f,
                     FILE *q, FILE *sc, FILE *ic, struct best *best, const double *qbits, int nq) {
    const struct sg_point *p = noloss_point(st, pts, st->grans[g], seed);
    if (!p) { /* no matched-accuracy model; the common-density control still runs */
        const struct sg_point *md =
            st->scnn_images > 0 ? point_near(pts, st->grans[g], seed, st->scnn_density) : NULL;
        if (!md) return 0;
        cli_progress_note("SCNN model: %s s%d", md->gran, seed);
        return scnn_rows(st, sc, md, "density");
    }
    struct sg_model *m = NULL;
    if (cli_load_model(study_path(st, "%s", p->file), &m)) return 1;
    int rc = 0;
    struct sg_prune_cfg pc = st->pc;
    sg_prune_spec_parse(st->grans[g], &pc.spec);
    struct sg_tile tile = {1, 1, 1, 1};
    sg_storage_tile_parse(st->grans[g], &tile);
    cli_progress_note("storage and quantisation: %s s%d at density %.4f", p->gran, seed, p->density);
    /* storage of the pruned layers in every format */
    storage_rows(f, m, &pc, tile, p, p->gran, seed, best);
    /* accuracy after quantising every conv/fc layer, no fine-tuning */
    for (int b = 0; b < nq && !rc; b++) {
        struct sg_model *qm = NULL;
        struct sg_eval_result r;
        if (sg_model_clone(m, &qm) != SG_OK ||
            sg_quantize_model(qm, (int)qbits[b], (int)qbits[b], 1) != SG_OK ||
            sg_evaluate(qm, st->test, 0, &r) != SG_OK) {
            rc = cli_fail_status(SG_ERR_ARG);
        } else {
            fprintf(q, "%s,%d,%.6f,%d,%.6f,%.6f,%.4f\n", p->gran, seed, p->density, (int)qbits[b],
                    r.top1, p->top1, 100 * (p->top1 - r.top1));
        }
        sg_model_free(qm);
    }
    if (!rc && st->infer_batch > 0) {
        cli_progress_note("CPU inference: %s s%d, dense and sparse kernels", p->gran, seed);
        rc = infer_rows(st, ic, m, p);
    }
    /* SCNN: at matched accuracy (the no-loss model) and matched density */
    if (!rc && st->scnn_images > 0) {
        cli_progress_note("SCNN model: %s s%d", p->gran, seed);
        const struct sg_point *md = point_near(pts, st->grans[g], seed, st->scnn_density);
        rc = scnn_rows(st, sc, p, "accuracy") || (md && scnn_rows(st, sc, md, "density"));
    }
    if (!rc && (pc.spec.gran == SG_GRAN_FILTER || pc.spec.gran == SG_GRAN_CHANNEL))
        rc = thinned_rows(st, f, ic, sc, m, &pc, tile, p, seed);
    sg_model_free(m);
    return rc;
}

/* The storage sums of one item for the verdict (the rows themselves came from a worker). */
static int post_best(const struct study *st, const struct sg_points *pts, int g, int seed,
                     FILE *devnull, struct best *best) {
    const struct sg_point *p = noloss_point(st, pts, st->grans[g], seed);
    if (!p) return 0;
    struct sg_model *m = NULL;
    if (cli_load_model(study_path(st, "%s", p->file), &m)) return 1;
    struct sg_prune_cfg pc = st->pc;
    sg_prune_spec_parse(st->grans[g], &pc.spec);
    struct sg_tile tile = {1, 1, 1, 1};
    sg_storage_tile_parse(st->grans[g], &tile);
    storage_rows(devnull, m, &pc, tile, p, p->gran, seed, best);
    sg_model_free(m);
    return 0;
}

static const char *const PART[4] = {"storage", "quantize", "scnn", "infer"};

/* Appends the file to out and removes it; 0 or 1. */
static int take_part(const char *path, FILE *out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (sg_file_read(path, (size_t)1 << 30, 0, &buf, &len) != SG_OK)
        return cli_fail("%s: %s", path, sg_last_error());
    fwrite(buf, 1, len, out);
    free(buf);
    unlink(path);
    return 0;
}

/* Whether item i's rows are in DIR/.post-<i>.* already (study_post_item). */
static int item_done(const struct study *st, int i) {
    for (int k = 0; k < 4; k++)
        if (access(study_path(st, ".post-%d.%s", i, PART[k]), F_OK) != 0) return 0;
    return 1;
}

int study_post_item(const struct study *st, const char *gran, int seed) {
    int g = 0;
    while (g < st->ngran && strcmp(st->grans[g], gran) != 0) g++;
    if (g == st->ngran) return cli_fail("post-processing: no granularity '%s'", gran);
    const int i = g * st->seeds + seed - 1;
    struct sg_points pts;
    size_t valid;
    enum sg_status s = sg_points_load(study_path(st, "points.jsonl"), &pts, &valid);
    if (s != SG_OK) return cli_fail_status(s);
    FILE *fp[4] = {0};
    char tmp[4][4096];
    int rc = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        snprintf(tmp[k], sizeof tmp[k], "%s", study_path(st, ".post-%d.%s.tmp", i, PART[k]));
        if (!(fp[k] = fopen(tmp[k], "w"))) rc = cli_fail("%s: cannot write: %s", tmp[k], strerror(errno));
    }
    if (!rc) rc = post_item(st, &pts, g, seed, fp[0], fp[1], fp[2], fp[3], NULL, st->qbits, st->nq);
    for (int k = 0; k < 4; k++)
        if (fp[k] && fclose(fp[k]) != 0 && !rc) rc = cli_fail("%s: write failed", tmp[k]);
    /* the four parts complete, then renamed: study_post takes an item whose four
     * files exist and measures the others */
    for (int k = 0; k < 4 && !rc; k++)
        if (rename(tmp[k], study_path(st, ".post-%d.%s", i, PART[k])) != 0)
            rc = cli_fail("%s: cannot rename: %s", tmp[k], strerror(errno));
    for (int k = 0; k < 4 && rc; k++) unlink(tmp[k]);
    sg_points_free(&pts);
    return rc;
}

/* The items (granularity, seed) over `workers` forked processes: each writes its
 * rows to DIR/.post-<item>.<part>; then the rows are gathered in item order, the
 * same files as one process writes (only infer.csv's timings differ). The
 * inference speed is then measured beside the other workers' work, one worker a
 * core, as the chains train. */
static int post_parallel(struct study *st, const struct sg_points *pts, int workers, FILE *out[4],
                         struct best (*best)[NVALUES], const double *qbits, int nq) {
    const int items = st->ngran * st->seeds;
    int *next = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (next == MAP_FAILED) return -1; /* the caller runs them in order */
    *next = 0;
    if (workers > items) workers = items;
    fflush(stdout);
    fflush(stderr);
    pid_t pids[64];
    int started = 0, failed = 0;
    for (int w = 0; w < workers && w < 64; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            failed = cli_fail("cannot start a worker: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1) _exit(1);
            sg_set_threads(st->post_threads);
            int rc = 0;
            for (;;) {
                const int i = __atomic_fetch_add(next, 1, __ATOMIC_SEQ_CST);
                if (i >= items || rc || cli_interrupted()) break;
                if (item_done(st, i)) continue; /* measured during the chains */
                FILE *fp[4];
                for (int k = 0; k < 4; k++) {
                    fp[k] = fopen(study_path(st, ".post-%d.%s", i, PART[k]), "w");
                    if (!fp[k]) rc = cli_fail("%s: cannot write: %s",
                                              study_path(st, ".post-%d.%s", i, PART[k]), strerror(errno));
                }
                if (!rc)
                    rc = post_item(st, pts, i / st->seeds, i % st->seeds + 1, fp[0], fp[1], fp[2],
                                   fp[3], NULL, qbits, nq);
                for (int k = 0; k < 4; k++)
                    if (fp[k] && fclose(fp[k]) != 0) rc = cli_fail("%s: write failed", PART[k]);
            }
            fflush(stdout);
            _exit(rc || cli_interrupted() ? 1 : 0);
        }
        pids[started++] = pid;
    }
    for (int alive = started; alive > 0;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        alive--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (!failed)
                for (int w = 0; w < started; w++) kill(pids[w], SIGTERM);
            failed = 1;
        }
    }
    munmap(next, sizeof(int));
    FILE *devnull = fopen("/dev/null", "w");
    if (!devnull) failed = cli_fail("/dev/null: %s", strerror(errno));
    for (int i = 0; i < items; i++) {
        for (int k = 0; k < 4; k++) {
            const char *path = study_path(st, ".post-%d.%s", i, PART[k]);
            if (failed) unlink(path);
            else failed = take_part(path, out[k]);
        }
        if (!failed) failed = post_best(st, pts, i / st->seeds, i % st->seeds + 1, devnull,
                                        best[i / st->seeds]);
    }
    if (devnull) fclose(devnull);
    if (cli_interrupted())
        return cli_fail("interrupted; run the same command again to resume where it stopped");
    return failed ? 1 : 0;
}

int study_post(struct study *st, const struct sg_points *pts) {
    const double *qbits = st->qbits;
    const int nq = st->nq;
    char *csv = NULL, *qcsv = NULL;
    size_t len = 0, qlen = 0;
    char *scsv = NULL, *icsv = NULL;
    size_t slen = 0, ilen = 0;
    FILE *f = open_memstream(&csv, &len), *q = open_memstream(&qcsv, &qlen),
         *sc = open_memstream(&scsv, &slen), *ic = open_memstream(&icsv, &ilen);
    if (!f || !q || !sc || !ic) return cli_fail("out of memory");
    fprintf(ic, "granularity,seed,density,top1,engine,batch,threads,images,top1_infer,images_per_s,"
                "ms_per_image,speedup_vs_dense,kernels\n");
    if (st->infer_batch > 0) sg_set_threads(st->post_threads);
    fprintf(sc, "granularity,match,seed,density,top1,mode,accumulate,index,fetch,images,cycles,"
                "products,refs_weight,refs_weight_index,refs_act,refs_act_index,refs_acc_read,"
                "refs_acc_write,refs_out_write,refs_halo,psum_read,psum_write,dram_bytes,"
                "memory_refs,memory_bits,psum_refs,energy_pj\n");
    fprintf(f, "granularity,seed,density,top1,format,value_coding,weights,kept,value_bits,index_bits,"
               "filler_bits,meta_bits,bytes,ratio,index_share,model_params,model_bytes,model_ratio\n");
    struct best(*best)[NVALUES] = calloc((size_t)st->ngran, sizeof *best);
    if (!best) return cli_fail("out of memory");
    fprintf(q, "granularity,seed,density,bits,top1,top1_unquantized,drop_pp\n");
    int rc = -1;
    /* as many items at once as --jobs has room for at post_threads each */
    const int workers = st->jobs / (st->post_threads > 0 ? st->post_threads : 1);
    if (workers > 1 && st->ngran * st->seeds > 1) {
        FILE *out[4] = {f, q, sc, ic};
        rc = post_parallel(st, pts, workers, out, best, qbits, nq);
    }
    if (rc < 0) { /* in this process, in order */
        rc = 0;
        FILE *devnull = NULL;
        FILE *out[4] = {f, q, sc, ic};
        for (int g = 0; g < st->ngran && !rc; g++)
            for (int seed = 1; seed <= st->seeds && !rc; seed++) {
                const int i = g * st->seeds + seed - 1;
                if (!item_done(st, i)) {
                    rc = post_item(st, pts, g, seed, f, q, sc, ic, best[g], qbits, nq);
                    continue;
                }
                /* measured during the chains (study_post_item) */
                for (int k = 0; k < 4 && !rc; k++)
                    rc = take_part(study_path(st, ".post-%d.%s", i, PART[k]), out[k]);
                if (!rc && !devnull && !(devnull = fopen("/dev/null", "w")))
                    rc = cli_fail("/dev/null: %s", strerror(errno));
                if (!rc) rc = post_best(st, pts, g, seed, devnull, best[g]);
            }
        if (devnull) fclose(devnull);
    }
    if (!rc) storage_verdict(st, best);
    free(best);
    fclose(f);
    fclose(q);
    fclose(sc);
    fclose(ic);
    if (!rc && st->infer_batch > 0 &&
        sg_file_write_atomic(study_path(st, "infer.csv"), icsv, ilen) != SG_OK)
        rc = cli_fail_status(SG_ERR_IO);
    free(icsv);
    if (!rc && st->scnn_images > 0 &&
        sg_file_write_atomic(study_path(st, "scnn.csv"), scsv, slen) != SG_OK)
        rc = cli_fail_status(SG_ERR_IO);
    free(scsv);
    cli_progress_done();
    if (!rc && sg_file_write_atomic(study_path(st, "storage.csv"), csv, len) != SG_OK)
        rc = cli_fail_status(SG_ERR_IO);
    if (!rc && nq && sg_file_write_atomic(study_path(st, "quantize.csv"), qcsv, qlen) != SG_OK)
        rc = cli_fail_status(SG_ERR_IO);
    free(csv);
    free(qcsv);
    return rc;
}
