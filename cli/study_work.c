/* Study workers: forked processes that train baselines, walk the density grid of
 * a granularity (prune, retrain, evaluate, append the point) and run controls.
 * Each finished point is appended to points.jsonl with one write and an fsync,
 * after its model file is in place, so a killed study resumes exactly there. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "study.h"

const char *study_path(const struct study *st, const char *fmt, ...) {
    static char ring[8][4096];
    static int at;
    char *b = ring[at++ % 8];
    int n = snprintf(b, sizeof ring[0], "%s/", st->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof ring[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

int study_load_points(const struct study *st, struct sg_points *pts) {
    const char *path = study_path(st, "points.jsonl");
    size_t valid;
    enum sg_status s = sg_points_load(path, pts, &valid);
    if (s != SG_OK) return cli_fail_status(s);
    struct stat sb;
    if (stat(path, &sb) == 0 && (size_t)sb.st_size > valid) {
        /* a line cut short by a crash: drop it so appends start on a fresh line */
        if (truncate(path, (off_t)valid) != 0)
            return cli_fail("%s: cannot drop a damaged last line: %s", path, strerror(errno));
    }
    return 0;
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = (a + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull ^ (b * 0x94d049bb133111ebull);
    return z ^ (z >> 31);
}

/* ---- progress shared between workers and the parent ---- */
struct slot {
    char label[80];
    double frac; /* of the current task step */
    int active;
};
#define STUDY_MAX_SEEDS 1000
enum { TASK_FREE, TASK_TAKEN, TASK_DONE };
struct board {
    struct slot slot[64];
    int points; /* points appended in this run */
    int failed; /* a worker's task failed: the others stop waiting */
    int depth[STUDY_MAX_SEEDS + 1]; /* per seed: the deepest pruned step recorded */
    int ref[STUDY_MAX_SEEDS + 1];   /* per seed: the dense reference's last step */
    unsigned char state[]; /* per task: free, taken or done (what `after` waits for) */
};
static struct board *g_board;
static int g_worker;

static int worker_progress(void *ctx, const struct sg_progress *p) {
    (void)ctx;
    if (g_board) {
        struct slot *s = &g_board->slot[g_worker];
        double f = p->total > 0 ? (double)p->step / (double)p->total : 0;
        if (p->epochs > 0) f = ((p->epoch - 1) + f) / p->epochs;
        s->frac = f;
    }
    return cli_interrupted();
}

static void set_label(const char *fmt, ...) {
    if (!g_board) return;
    struct slot *s = &g_board->slot[g_worker];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->label, sizeof s->label, fmt, ap);
    va_end(ap);
    s->frac = 0;
    s->active = 1;
}

/* ---- points ---- */
/* A worker of a rank other than 0 hands its point to its parent, which sends it to
 * rank 0 (study_dist.c). One record is smaller than PIPE_BUF, so one write is atomic
 * even with several workers on the pipe. */
static int relay_point(const struct study *st, const struct sg_point *p) {
    _Static_assert(sizeof *p <= PIPE_BUF, "a point must fit one atomic pipe write");
    ssize_t w;
    do w = write(st->point_fd, p, sizeof *p);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof *p) return cli_fail("cannot pass a point to the rank: %s", strerror(errno));
    if (g_board) __atomic_add_fetch(&g_board->points, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* The progress a follower reads: the deepest pruned step and the reference's last. */
static void note_depth(const struct sg_point *p) {
    if (!g_board || p->control[0] || p->seed < 1 || p->seed > STUDY_MAX_SEEDS) return;
    int *at = strcmp(p->gran, "dense") == 0 ? &g_board->ref[p->seed] : &g_board->depth[p->seed];
    int v = __atomic_load_n(at, __ATOMIC_ACQUIRE);
    while (p->step > v && !__atomic_compare_exchange_n(at, &v, p->step, 0, __ATOMIC_ACQ_REL,
                                                       __ATOMIC_ACQUIRE)) {
    }
}

static int append_point(const struct study *st, const struct sg_point *p) {
    int rc = st->point_fd >= 0 ? relay_point(st, p) : study_append_point(st, p);
    if (!rc) note_depth(p);
    return rc;
}

int study_append_point(const struct study *st, const struct sg_point *p) {
    struct sg_json j;
    sg_json_init(&j);
    sg_point_json(p, &j);
    const char *path = study_path(st, "points.jsonl");
    int rc = 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    size_t len = strlen(sg_json_cstr(&j));
    char *line = malloc(len + 2);
    if (fd < 0 || !line) {
        rc = cli_fail("%s: cannot append: %s", path, strerror(errno));
    } else {
        memcpy(line, sg_json_cstr(&j), len);
        line[len] = '\n';
        /* one write: concurrent appenders never interleave inside a line */
        if (write(fd, line, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0)
            rc = cli_fail("%s: write failed: %s", path, strerror(errno));
    }
    if (fd >= 0) close(fd);
    free(line);
    sg_json_free(&j);
    if (!rc && g_board) __atomic_add_fetch(&g_board->points, 1, __ATOMIC_SEQ_CST);
    return rc;
}

static void fill_point(const struct study *st, struct sg_model *m, const struct sg_prune_cfg *pc,
                       struct sg_point *p, const char *gran, int seed, int step, double target) {
    memset(p, 0, sizeof *p);
    p->val_top1 = NAN;
    snprintf(p->model, sizeof p->model, "%s", m->arch);
    snprintf(p->data, sizeof p->data, "%s", st->test->name);
    snprintf(p->gran, sizeof p->gran, "%s", gran);
    snprintf(p->crit, sizeof p->crit, "%s", sg_criterion_name(pc->spec.crit));
    p->seed = seed;
    p->step = step;
    p->target = target;
    struct sg_prune_result r;
    sg_prune_measure(m, pc, &r);
    p->density = r.density;
    struct sg_prune_spec buf;
    for (int32_t i = 0; i < m->n_params && p->n_layers < SG_POINT_MAX_LAYERS; i++) {
        if (!sg_prune_scope(m, pc, i, &buf)) continue;
        const struct sg_param *pp = &m->params[i];
        snprintf(p->layer[p->n_layers], sizeof p->layer[0], "%s", pp->name);
        char *dot = strrchr(p->layer[p->n_layers], '.');
        if (dot && strcmp(dot, ".weight") == 0) *dot = 0;
        size_t kept = 0;
        for (size_t k = 0; k < pp->count; k++) kept += m->mask[pp->offset + k] != 0;
        p->layer_density[p->n_layers++] = (double)kept / (double)pp->count;
    }
}

/* Test accuracy (reported) and, with a validation split, validation accuracy
 * (what every decision reads). */
static int evaluate(const struct study *st, struct sg_model *m, const struct sg_dataset *val,
                    struct sg_point *p) {
    struct sg_eval_result r;
    enum sg_status s = sg_evaluate(m, st->test, 0, &r);
    if (s != SG_OK) return cli_fail_status(s);
    p->top1 = r.top1;
    p->top5 = r.top5;
    p->loss = r.loss;
    p->val_top1 = NAN;
    if (val) {
        if ((s = sg_evaluate(m, val, 0, &r)) != SG_OK) return cli_fail_status(s);
        p->val_top1 = r.top1;
    }
    return 0;
}

/* A seed's training images and its validation split, held out of them: the same
 * for every chain of the seed (the split is seeded by the seed alone), disjoint
 * from what the seed's models train on. Without a split (--val-images 0) every
 * training image trains and *val is NULL. */
int study_seed_data(const struct study *st, int seed, struct sg_dataset **train,
                    struct sg_dataset **val) {
    *train = (struct sg_dataset *)st->train;
    *val = NULL;
    if (st->val_images <= 0) return 0;
    enum sg_status s = sg_dataset_split(st->train, st->val_images, mix((uint64_t)seed, 0x7A11DA7Eull),
                                        train, val);
    if (s != SG_OK) {
        *train = NULL;
        return cli_fail_status(s);
    }
    return 0;
}

static void seed_data_free(const struct study *st, struct sg_dataset *train, struct sg_dataset *val) {
    if (train && train != st->train) sg_dataset_free(train);
    sg_dataset_free(val);
}

/* ---- baseline ---- */
static enum sg_status ckpt(void *ctx, struct sg_model *m, const struct sg_train_state *s) {
    sg_meta_set(m, "epochs", "%d", s->epochs_done);
    return sg_model_save(m, (const char *)ctx, s);
}

static int task_baseline(const struct study *st, int seed) {
    const char *file = study_path(st, "models/baseline-s%d.sgm", seed);
    char path[4096];
    snprintf(path, sizeof path, "%s", file);
    struct sg_model *m = NULL;
    struct sg_train_state *ts = NULL;
    struct stat sb;
    enum sg_status s;
    struct sg_dataset *train, *val;
    if (study_seed_data(st, seed, &train, &val)) return 1;
    set_label("baseline s%d", seed);
    const double t0 = sg_now();
    if (stat(path, &sb) == 0) { /* resume an interrupted baseline */
        s = sg_model_load_state(path, &m, &ts);
    } else {
        s = sg_model_build(st->model_name, st->train->c, st->train->h, st->train->w,
                           st->train->classes, (uint64_t)seed, &m);
    }
    if (s == SG_OK && !ts && !sg_meta_get(m, "complete")) s = sg_train_state_new(m, &ts);
    if (s != SG_OK) {
        sg_model_free(m);
        seed_data_free(st, train, val);
        return cli_fail_status(s);
    }
    if (ts) {
        struct sg_train_cfg tc = st->tc;
        tc.epochs = st->baseline_epochs;
        tc.lr = st->lr_base;
        tc.schedule = SG_LR_COSINE;
        tc.seed = (uint64_t)seed;
        tc.progress = worker_progress;
        tc.on_epoch = ckpt;
        tc.on_epoch_ctx = path;
        sg_meta_set(m, "data", "%s", st->train->name);
        sg_meta_set(m, "study", "%s", st->argv_line);
        s = sg_train(m, train, &tc, ts);
        if (s == SG_OK) {
            sg_meta_set(m, "complete", "1");
            sg_meta_set(m, "epochs", "%d", st->baseline_epochs);
            s = sg_model_save(m, path, NULL);
        }
        sg_train_state_free(ts);
        if (s != SG_OK) {
            sg_model_free(m);
            seed_data_free(st, train, val);
            return s == SG_ERR_INTERRUPTED ? 1 : cli_fail_status(s);
        }
    }
    struct sg_point p;
    fill_point(st, m, &st->pc, &p, "dense", seed, 0, 1.0);
    p.density = 1.0;
    p.epochs = st->baseline_epochs;
    snprintf(p.file, sizeof p.file, "models/baseline-s%d.sgm", seed);
    int rc = evaluate(st, m, val, &p);
    p.seconds = sg_now() - t0; /* this run's share: a resumed baseline's last epochs */
    rc = rc || append_point(st, &p);
    sg_model_free(m);
    seed_data_free(st, train, val);
    return rc;
}

/* ---- a chain: one granularity (or the dense reference) down the grid ---- */
#define find_point sg_points_find

/* The points a task starts from: the file, or in a run over MPI ranks the copy
 * rank 0 sent when the phase began (the file is rank 0's alone). */
static enum sg_status known_points(const struct study *st, struct sg_points *pts) {
    size_t valid;
    if (!st->known) return sg_points_load(study_path(st, "points.jsonl"), pts, &valid);
    memset(pts, 0, sizeof *pts);
    for (int i = 0; i < st->known->n; i++) {
        enum sg_status s = sg_points_add(pts, &st->known->p[i]);
        if (s != SG_OK) {
            sg_points_free(pts);
            return s;
        }
    }
    return SG_OK;
}

static int load_baseline(const struct study *st, int seed, struct sg_model **m) {
    const char *path = st->baseline_file ? st->baseline_file
                                         : study_path(st, "models/baseline-s%d.sgm", seed);
    return cli_load_model(path, m);
}

/* The pruning configuration of a chain: the study's, with its granularity and a
 * random criterion seeded by the study seed. */
static int chain_cfg(const struct study *st, const char *gran, int seed, struct sg_prune_cfg *pc) {
    *pc = st->pc;
    pc->spec.seed = mix((uint64_t)seed, 0x5A1E7CEull);
    if (strcmp(gran, "dense") != 0 && sg_prune_spec_parse(gran, &pc->spec) != SG_OK)
        return cli_fail_status(SG_ERR_ARG);
    return 0;
}

/* Prunes to one step's density under the study's selection. */
static enum sg_status prune_step(const struct study *st, struct sg_model *m, const struct sg_prune_cfg *pc,
                                 double target) {
    if (!st->profile) return sg_prune_model(m, pc, target, NULL);
    struct sg_profile *prof;
    enum sg_status s = sg_study_scale_profile(st->profile, m, pc, target, &prof);
    if (s != SG_OK) return s; /* names the layer the profile lacks */
    struct sg_prune_cfg c = *pc;
    c.sel = SG_SEL_PROFILE;
    c.profile = prof;
    s = sg_prune_model(m, &c, target, NULL);
    sg_profile_free(prof);
    return s;
}

/* AGP: the cubic schedule from dense to the step's density over the retraining. */
struct agp_ctx {
    const struct study *st;
    const struct sg_prune_cfg *pc;
    struct sg_sched sched;
    int epochs;
    double last;
};

static enum sg_status agp_step(void *ctx, struct sg_model *m, double pos) {
    struct agp_ctx *c = ctx;
    const double d = sg_sched_density(&c->sched, pos / c->epochs);
    if (d == c->last) return SG_OK; /* prune only when the schedule moves */
    c->last = d;
    return prune_step(c->st, m, c->pc, d);
}

/* A chain: prune to the next density, retrain with the mask fixed, evaluate,
 * save, append; resumes after its last point. A pruned chain goes on below the
 * grid (--extend) while its validation top-1 stays within the tolerance of the
 * baseline's; the dense reference chain follows the deepest pruned chain of its
 * seed step for step, so the fair reference exists wherever a pruned point does. */
static int task_chain(const struct study *st, const char *gran, int seed) {
    struct sg_points pts;
    if (known_points(st, &pts) != SG_OK) return cli_fail_status(SG_ERR_FORMAT);
    const int dense = strcmp(gran, "dense") == 0;
    struct sg_prune_cfg pc;
    if (chain_cfg(st, gran, seed, &pc)) {
        sg_points_free(&pts);
        return 1;
    }
    const struct sg_point *base = find_point(&pts, "dense", "", seed, 0);
    if (!base) {
        sg_points_free(&pts);
        return cli_fail("%s: no baseline point for seed %d", study_path(st, "points.jsonl"), seed);
    }
    const int base_epochs = base->epochs;
    /* resume after the last finished step */
    int last = 0;
    while (find_point(&pts, gran, "", seed, last + 1)) last++;
    const int total_steps = dense ? sg_study_reference_steps(&pts, seed, st->ngrid) : st->ngrid + st->next;
    if (last >= total_steps || (!dense && last >= st->ngrid && !sg_study_extend(&pts, gran, seed, last, st->tol))) {
        sg_points_free(&pts); /* done, or lost accuracy below the grid */
        return 0;
    }
    struct sg_model *m = NULL;
    struct sg_dataset *train = NULL, *val = NULL;
    int rc = study_seed_data(st, seed, &train, &val);
    if (!rc && last > 0) {
        enum sg_status s = sg_model_load(study_path(st, "%s", find_point(&pts, gran, "", seed, last)->file), &m);
        if (s != SG_OK) rc = cli_fail_status(s);
    } else if (!rc) {
        rc = load_baseline(st, seed, &m);
    }
    int total = total_steps;
    for (int step = last + 1; !rc; step++) {
        if (step > total) {
            /* the dense reference in one process reads how far the pruned chains of
             * its seed have gone since it started (they append as they go) */
            if (!dense || st->known) break;
            sg_points_free(&pts);
            if (known_points(st, &pts) != SG_OK) {
                rc = cli_fail_status(SG_ERR_FORMAT);
                break;
            }
            total = sg_study_reference_steps(&pts, seed, st->ngrid);
            if (step > total) break;
        }
        const double target = step <= st->ngrid ? st->grid[step - 1] : st->ext[step - st->ngrid - 1];
        /* the extension runs only while accuracy holds */
        if (!dense && step > st->ngrid && !sg_study_extend(&pts, gran, seed, step - 1, st->tol)) break;
        set_label("%s s%d d=%.3g", gran, seed, dense ? 1.0 : target);
        const double t0 = sg_now();
        enum sg_status s = SG_OK;
        /* iterative: from the last step's model; oneshot and agp: from the baseline,
         * retrained as many epochs as the iterative chain has behind this step */
        const int from_base = !dense && st->schedule != SG_SCHED_ITERATIVE;
        const int epochs = from_base ? step * st->retrain_epochs : st->retrain_epochs;
        if (from_base) {
            sg_model_free(m);
            m = NULL;
            if (load_baseline(st, seed, &m)) {
                rc = 1;
                break;
            }
        }
        struct agp_ctx ac = {st, &pc, {SG_SCHED_AGP, 1.0, target, 10, 0.75}, epochs, 1.0};
        if (!dense && !(st->schedule == SG_SCHED_AGP && epochs > 0)) s = prune_step(st, m, &pc, target);
        if (s == SG_OK && epochs > 0) {
            struct sg_train_cfg tc = st->tc;
            tc.epochs = epochs;
            tc.lr = st->lr_retrain;
            tc.schedule = SG_LR_COSINE;
            tc.seed = mix((uint64_t)seed, (uint64_t)step);
            tc.progress = worker_progress;
            if (!dense && st->schedule == SG_SCHED_AGP) {
                tc.on_batch = agp_step;
                tc.on_batch_ctx = &ac;
            }
            s = sg_train(m, train, &tc, NULL);
            /* agp ends at the schedule's final density; the exact target as a last step */
            if (s == SG_OK && tc.on_batch) s = prune_step(st, m, &pc, target);
        }
        if (s != SG_OK) {
            rc = s == SG_ERR_INTERRUPTED ? 1 : cli_fail_status(s);
            break;
        }
        struct sg_point p;
        fill_point(st, m, &pc, &p, gran, seed, step, target);
        if (dense) p.density = 1.0;
        p.epochs = base_epochs + step * st->retrain_epochs;
        snprintf(p.file, sizeof p.file, "models/%s-s%d-%02d.sgm", gran, seed, step);
        for (char *c = p.file; *c; c++)
            if (*c == ':') *c = '_';
        if ((rc = evaluate(st, m, val, &p))) break;
        p.seconds = sg_now() - t0;
        sg_meta_set(m, "top1", "%.4f", p.top1);
        sg_meta_set(m, "study_step", "%d", step);
        if ((s = sg_model_save(m, study_path(st, "%s", p.file), NULL)) != SG_OK) {
            rc = cli_fail_status(s);
            break;
        }
        if ((rc = append_point(st, &p))) break;
        if (sg_points_add(&pts, &p) != SG_OK) rc = 1;
    }
    sg_model_free(m);
    seed_data_free(st, train, val);
    sg_points_free(&pts);
    return rc;
}

/* ---- the control: the no-loss mask with re-initialised weights, trained from scratch ---- */
static int task_control(const struct study *st, const char *gran, int seed) {
    struct sg_points pts;
    if (known_points(st, &pts) != SG_OK) return cli_fail_status(SG_ERR_FORMAT);
    int rc = 0;
    /* the mask of the no-loss point, decided on the validation split */
    const struct sg_point *best = sg_study_noloss_point(&pts, gran, seed, st->tol);
    if (!best || find_point(&pts, gran, "reinit", seed, best->step)) { /* nothing to do */
        sg_points_free(&pts);
        return 0;
    }
    struct sg_model *m = NULL;
    struct sg_dataset *train = NULL, *val = NULL;
    if (study_seed_data(st, seed, &train, &val)) {
        sg_points_free(&pts);
        return 1;
    }
    set_label("control %s s%d d=%.3g", gran, seed, best->target);
    enum sg_status s = sg_model_load(study_path(st, "%s", best->file), &m);
    if (s == SG_OK) {
        sg_model_init_weights(m, mix((uint64_t)seed, 0xC0417201ull)); /* keeps the mask */
        struct sg_train_cfg tc = st->tc;
        tc.epochs = best->epochs;
        tc.lr = st->lr_base;
        tc.schedule = SG_LR_COSINE;
        tc.seed = mix((uint64_t)seed, 7919);
        tc.progress = worker_progress;
        const double t0 = sg_now();
        s = sg_train(m, train, &tc, NULL);
        if (s == SG_OK) {
            struct sg_prune_cfg pc;
            chain_cfg(st, gran, seed, &pc);
            struct sg_point p;
            fill_point(st, m, &pc, &p, gran, seed, best->step, best->target);
            snprintf(p.control, sizeof p.control, "reinit");
            p.epochs = best->epochs;
            snprintf(p.file, sizeof p.file, "models/%s-s%d-%02d-reinit.sgm", gran, seed, best->step);
            for (char *c = p.file; *c; c++)
                if (*c == ':') *c = '_';
            rc = evaluate(st, m, val, &p);
            p.seconds = sg_now() - t0;
            if (!rc && (s = sg_model_save(m, study_path(st, "%s", p.file), NULL)) != SG_OK)
                rc = cli_fail_status(s);
            if (!rc) rc = append_point(st, &p);
        }
    }
    if (s != SG_OK && !rc) rc = s == SG_ERR_INTERRUPTED ? 1 : cli_fail_status(s);
    sg_model_free(m);
    seed_data_free(st, train, val);
    sg_points_free(&pts);
    return rc;
}

static int run_task(const struct study *st, const struct task *t) {
    switch (t->kind) {
    case TASK_BASELINE: return task_baseline(st, t->seed);
    case TASK_CHAIN: return task_chain(st, t->gran, t->seed);
    case TASK_CONTROL: return task_control(st, t->gran, t->seed);
    case TASK_POST: set_label("post %s s%d", t->gran, t->seed); return study_post_item(st, t->gran, t->seed);
    }
    return 1;
}

static void fmt_eta(char *b, size_t cap, double s) {
    long t = (long)(s + 0.5);
    snprintf(b, cap, "%ld:%02ld", t / 60, t % 60);
}

static int task_is(const struct task *t, int seed) {
    return t->kind == TASK_CHAIN && t->seed == seed && strcmp(t->gran, "dense") != 0;
}

/* Whether every pruned chain of the follower's seed in this list has finished. */
static int chains_done(const struct task *tasks, int n, int seed) {
    for (int j = 0; j < n; j++)
        if (task_is(&tasks[j], seed) && __atomic_load_n(&g_board->state[j], __ATOMIC_ACQUIRE) != TASK_DONE)
            return 0;
    return 1;
}

/* Whether free task i can run now: its `after` task has finished; a follower also
 * needs a step to run (on the grid or reached by a pruned chain of its seed) or
 * nothing left to wait for. */
static int task_ready(const struct study *st, const struct task *tasks, int n, int i) {
    const struct task *t = &tasks[i];
    if (t->after && __atomic_load_n(&g_board->state[t->after - 1], __ATOMIC_ACQUIRE) != TASK_DONE)
        return 0;
    if (!t->follow || t->seed < 1 || t->seed > STUDY_MAX_SEEDS) return 1;
    int need = __atomic_load_n(&g_board->depth[t->seed], __ATOMIC_ACQUIRE);
    if (need < st->ngrid) need = st->ngrid;
    return __atomic_load_n(&g_board->ref[t->seed], __ATOMIC_ACQUIRE) < need ||
           chains_done(tasks, n, t->seed);
}

/* A worker with shared memory: takes the first ready task in list order (the order
 * is the priority), runs it, marks it done (a follower that caught up with chains
 * still running goes back to the list), and sleeps while nothing is ready. */
static int worker_loop(const struct study *st, const struct task *tasks, int n) {
    for (;;) {
        if (cli_interrupted() || __atomic_load_n(&g_board->failed, __ATOMIC_ACQUIRE)) return 1;
        int pick = -1, left = 0;
        for (int i = 0; i < n && pick < 0; i++) {
            unsigned char v = __atomic_load_n(&g_board->state[i], __ATOMIC_ACQUIRE);
            if (v != TASK_DONE) left = 1;
            if (v != TASK_FREE || !task_ready(st, tasks, n, i)) continue;
            unsigned char want = TASK_FREE;
            if (__atomic_compare_exchange_n(&g_board->state[i], &want, TASK_TAKEN, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                pick = i;
        }
        if (pick < 0) {
            if (!left) return 0;
            g_board->slot[g_worker].active = 0;
            usleep(50000);
            continue;
        }
        const struct task *t = &tasks[pick];
        /* a follower is complete when its seed's chains had all finished before it
         * read the points (their points are in the file before they are marked done) */
        const int last_run = !t->follow || chains_done(tasks, n, t->seed);
        if (run_task(st, t)) {
            __atomic_store_n(&g_board->failed, 1, __ATOMIC_RELEASE);
            return 1;
        }
        __atomic_store_n(&g_board->state[pick], last_run ? TASK_DONE : TASK_FREE, __ATOMIC_RELEASE);
    }
}

/* The board's progress of the followers' seeds, from the points so far. */
static void board_depths(const struct study *st) {
    struct sg_points pts;
    if (known_points(st, &pts) != SG_OK) return; /* the tasks will say why */
    for (int i = 0; i < pts.n; i++) note_depth(&pts.p[i]);
    sg_points_free(&pts);
}

int study_run_tasks(struct study *st, const struct task *tasks, int n, int workers, int threads,
                    const char *phase) {
    if (n == 0) return 0;
    if (workers > n) workers = n;
    if (workers > 64) workers = 64;
    if (workers < 1) workers = 1;
    const size_t board_size = sizeof *g_board + (size_t)n;
    g_board = mmap(NULL, board_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_board == MAP_FAILED) g_board = NULL;
    else memset(g_board, 0, board_size);
    for (int i = 0; i < n && g_board; i++)
        if (tasks[i].follow) {
            board_depths(st);
            break;
        }
    /* without shared memory a worker cannot see another's progress: one worker runs
     * the tasks in order, which keeps every `after` satisfied */
    if (!g_board) workers = 1;
    fflush(stdout);
    fflush(stderr);
    pid_t pids[64];
    for (int w = 0; w < workers; w++) {
        pid_t pid = fork();
        if (pid < 0) return cli_fail("cannot start a worker: %s", strerror(errno));
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* a killed study takes its workers along */
            if (getppid() == 1) _exit(1);
            g_worker = w;
            sg_set_threads(threads);
            int rc = 0;
            if (g_board) {
                rc = worker_loop(st, tasks, n);
            } else {
                /* one worker in list order; the followers once more when every
                 * pruned chain has finished (before the first post-processing item) */
                int again = 0;
                for (int i = 0; i <= n && !rc && !cli_interrupted(); i++) {
                    if (!again && (i == n || tasks[i].kind == TASK_POST)) {
                        again = 1;
                        for (int j = 0; j < n && !rc; j++)
                            if (tasks[j].follow) rc = run_task(st, &tasks[j]);
                    }
                    if (i < n && !rc) rc = run_task(st, &tasks[i]);
                }
            }
            if (g_board) g_board->slot[w].active = 0;
            fflush(stdout);
            _exit(rc || cli_interrupted() ? 1 : 0);
        }
        pids[w] = pid;
    }
    int alive = workers, failed = 0;
    const double t0 = sg_now();
    while (alive > 0) {
        if (st->poll && !failed && st->poll(st)) { /* the ranks' traffic failed */
            for (int w = 0; w < workers; w++) kill(pids[w], SIGTERM);
            failed = 1;
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            alive--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (!failed)
                    for (int w = 0; w < workers; w++) kill(pids[w], SIGTERM); /* stop the others */
                failed = 1;
            }
            continue;
        }
        if (pid < 0 && errno != EINTR) break;
        if (g_board && cli_is_tty()) {
            char line[1024];
            int len = snprintf(line, sizeof line, "%s: %d points", phase, g_board->points);
            for (int w = 0; w < workers && len < (int)sizeof line - 100; w++)
                if (g_board->slot[w].active)
                    len += snprintf(line + len, sizeof line - (size_t)len, "  [%s %2.0f%%]",
                                    g_board->slot[w].label, 100 * g_board->slot[w].frac);
            char el[32];
            fmt_eta(el, sizeof el, sg_now() - t0);
            cli_progress_note("%s  %s", line, el);
        }
        usleep(200000);
    }
    cli_progress_done();
    if (g_board) munmap(g_board, board_size);
    g_board = NULL;
    if (cli_interrupted())
        return cli_fail("interrupted; run the same command again to resume where it stopped");
    return failed;
}
