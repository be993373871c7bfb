/* The granularity study (cmd_study.c: settings and phases; study_work.c: the
 * workers that train baselines and walk the density grid). */
#ifndef SPARSEGRAIN_CLI_STUDY_H
#define SPARSEGRAIN_CLI_STUDY_H

#include "cli.h"

#define STUDY_MAX_GRANS 16
#define STUDY_MAX_GRID 64

struct study {
    const char *dir;
    const char *model_name;
    const char *baseline_file; /* --baseline: one dense model for every seed */
    char grans[STUDY_MAX_GRANS][48];
    int ngran;
    double grid[STUDY_MAX_GRID]; /* densities below 1, falling */
    int ngrid;
    double ext[STUDY_MAX_GRID]; /* extension below the grid, used while no loss */
    int next;
    int retrain_epochs, baseline_epochs, seeds, jobs, threads;
    int val_images;  /* validation split held out of the training images (0 = none) */
    int test_sample; /* --quick/--test-images: a seeded random sample of the test set */
    double tol; /* fraction */
    int control_reinit;
    int scnn_images;     /* test images through the SCNN model (0 = no SCNN stage) */
    double scnn_density; /* matched-density comparison: the grid point nearest this */
    int infer_batch;     /* batch of the inference-speed stage (0 = no infer.csv) */
    float lr_base, lr_retrain;
    struct sg_train_cfg tc; /* batch, momentum, decay, augmentation, max images */
    struct sg_prune_cfg pc; /* criterion, scope, selection; granularity set per chain */
    enum sg_schedule schedule;         /* iterative (down the grid), oneshot or agp (from the
                                          baseline at every step, as many epochs) */
    const struct sg_profile *profile;  /* --profile: relative per-layer densities, scaled
                                          to each step's density (NULL: same for every layer) */
    const char *profile_file;
    char storage_verdict[2048]; /* study_post: one sentence on storage at matched accuracy */
    int post_threads; /* threads of each post-processing item: 1 in one process, where the
                         items run in the chains' workers as soon as their seed is done;
                         over MPI --threads, on rank 0 after the chains */
    double qbits[16]; /* --quantize: codebook bits of quantize.csv */
    int nq;
    struct sg_dataset *train, *test;
    const char *argv_line;
    /* Set in a run over several MPI ranks (study_dist.c); NULL and -1 otherwise. */
    const struct sg_points *known; /* the points as the phase began: workers read no file */
    int point_fd;                  /* workers write finished points here (struct sg_point
                                      records) instead of appending to points.jsonl */
    int (*poll)(struct study *st); /* called while workers run; nonzero stops them */
};

/* One unit of work for a worker. */
enum task_kind { TASK_BASELINE, TASK_CHAIN, TASK_CONTROL, TASK_POST };
struct task {
    enum task_kind kind;
    char gran[48]; /* "dense" for the reference chain; TASK_POST: the granularity */
    int seed;
    int after; /* 1 + the index (in the same list) of a task that must finish first; 0: none */
    int follow; /* the dense reference in one process (no MPI): runs the steps its seed's
                   pruned chains have reached (and the grid), is put back when it has caught
                   up with them, and ends once they have all finished */
};

/* Runs tasks over `workers` forked processes with `threads` threads each; shows
 * progress; returns 0 or 1. A free worker takes the first task in list order that can
 * run (its `after` task finished; a follower with a step to run or nothing left to
 * wait for), so no worker waits while another task could run; the list order is the
 * priority. Results depend on the thread count of
 * a task (float sums in another order), never on how many workers run, so the study
 * runs chains single-threaded whatever --jobs is, and baselines with --threads,
 * --jobs / --threads of them at once. */
int study_run_tasks(struct study *st, const struct task *tasks, int n, int workers, int threads,
                    const char *phase);
/* A seed's training images and validation split (held out of them, the same for
 * every chain of the seed); *train is st->train and *val NULL without a split. */
int study_seed_data(const struct study *st, int seed, struct sg_dataset **train,
                    struct sg_dataset **val);
/* Path of a study file (into a static ring buffer). */
const char *study_path(const struct study *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Storage in every format (storage.csv), accuracy after quantising to each of
 * qbits (quantize.csv), SCNN memory references on real activations (scnn.csv)
 * and CPU inference speed, dense against sparse kernels (infer.csv), of every
 * granularity's no-loss model; SCNN also at a matched density. */
int study_post(struct study *st, const struct sg_points *pts);
/* One (granularity, seed) item of study_post ahead of time, in a worker of the chain
 * phase once the seed's chains have all finished: its rows into DIR/.post-<item>.*
 * (each written whole, then renamed), which study_post takes instead of measuring
 * again. On st->post_threads threads, as the chains. */
int study_post_item(const struct study *st, const char *gran, int seed);
/* Loads points.jsonl (dropping a damaged last line for good). */
int study_load_points(const struct study *st, struct sg_points *pts);
/* Appends one point to points.jsonl: one write, then fsync (the model file must be
 * complete before). */
int study_append_point(const struct study *st, const struct sg_point *p);

/* ---- over MPI (study_dist.c; used when dist_size() > 1) ---- */
/* After rank 0 prepared the folder (setup_rc is its verdict): the verdict, the
 * baseline thread count and rank 0's points reach every rank, and every rank checks
 * that it sees the study folder. Collective; returns 0 or 1 on every rank alike. */
int study_dist_setup(struct study *st, int setup_rc, struct sg_points *pts);
/* One phase over the ranks: task i runs on rank i mod ranks, in `workers` forked
 * workers of `threads` threads there (as study_run_tasks); finished points travel to
 * rank 0, which appends them; then every rank holds the points file's new content in
 * pts. Returns 0; a failure anywhere ends the job (dist_abort). */
int study_dist_phase(struct study *st, const struct task *tasks, int n, int workers, int threads,
                     const char *phase, struct sg_points *pts);

#endif
