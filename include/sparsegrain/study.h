/* sparsegrain/study.h - the granularity study's results: points (one pruned and
 * retrained model each), the no-loss walk, intervals over seeds, paired verdicts
 * and the tables (curves.csv, no_loss.csv). Pure functions of the points: the CLI
 * (cli/cmd_study.c) trains and prunes, this module decides and tabulates, and the
 * report (report.h) shows the same numbers.
 *
 * Protocol (../shared/PAPER.md section 4): every decision reads a point's
 * validation top-1 (a split held out from the training images); the test top-1
 * only reports. The no-loss density of a chain is found by walking down it from
 * the first pruned step and stopping at the first failure; the primary reference
 * is the dense chain retrained for the same epochs, step by step.
 *
 *     struct sg_noloss *rows; int n;
 *     sg_study_noloss(&pts, 0.001, &rows, &n);   // one row per granularity
 *     printf("%s %.3f +- %.3f %s\n", rows[0].gran, rows[0].mean, rows[0].ci, rows[0].verdict);
 */
#ifndef SPARSEGRAIN_STUDY_H
#define SPARSEGRAIN_STUDY_H

#include "sparsegrain/core.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"
#include "sparsegrain/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_POINT_MAX_LAYERS 64
/* A study's points: at most this many (a point takes about 4 KB in memory), from a
 * points.jsonl of at most SG_POINTS_MAX_BYTES. */
#define SG_POINTS_MAX (1 << 18)
#define SG_POINTS_MAX_BYTES ((size_t)256 << 20)
/* One measured point of a study: a model after pruning to `target` and retraining. */
struct sg_point {
    char model[32], data[32];
    char gran[48];    /* granularity text ("kernel", "block:1x4x1x1"), "dense" for references */
    char crit[16];    /* criterion */
    char control[16]; /* "" or "reinit" (Liu et al.'s control: same mask, weights retrained from scratch) */
    int seed, step;   /* step 0 is the dense baseline */
    int epochs;       /* total training epochs behind the point */
    double target;    /* target density of the step */
    double density;   /* achieved: kept / weights over the pruned layers */
    double top1, top5, loss, seconds; /* on the test set (reported) */
    double val_top1;  /* on the validation split (decides); NaN when the study had none */
    int n_layers;
    char layer[SG_POINT_MAX_LAYERS][48];
    double layer_density[SG_POINT_MAX_LAYERS];
    char file[160];   /* model file, relative to the study folder */
};
struct sg_points {
    int n, cap;
    struct sg_point *p;
};
/* Appends one point as a JSON object to j. */
void sg_point_json(const struct sg_point *p, struct sg_json *j);
/* Reads points.jsonl. A malformed last line (a write cut short by a crash) ends
 * the read: *valid is the length of the well-formed prefix. A malformed line in
 * the middle is an error. A missing file gives zero points. Points written before
 * the validation split existed read with val_top1 = NaN. */
enum sg_status sg_points_load(const char *path, struct sg_points *out, size_t *valid);
/* The same over text[0..len) already in memory (what names it in messages). */
enum sg_status sg_points_parse(const char *text, size_t len, const char *what,
                               struct sg_points *out, size_t *valid);
enum sg_status sg_points_add(struct sg_points *pts, const struct sg_point *p);
void sg_points_free(struct sg_points *pts);

/* The accuracy a decision reads: validation top-1, or test top-1 for a point of
 * a study without a validation split. */
double sg_point_decision(const struct sg_point *p);
/* The point of (gran, control, seed, step), or NULL. */
const struct sg_point *sg_points_find(const struct sg_points *pts, const char *gran,
                                      const char *control, int seed, int step);

/* ---- statistics over seeds ---- */
/* The 0.975 quantile of Student's t with df degrees of freedom (df >= 1). */
double sg_t975(int df);
struct sg_interval {
    int n;
    double mean, std, min, max;
    double half; /* half-width of the 95% confidence interval of the mean (t); NaN if n < 2 */
};
void sg_interval_of(const double *x, int n, struct sg_interval *out);
/* Verdict on paired differences a - b (mean and 95% half-width): "lower" when the
 * whole interval is below 0, "higher" above, "tie" when it holds 0, "-" with
 * fewer than two pairs (no interval). */
const char *sg_verdict(const struct sg_interval *diff);

/* ---- the no-loss walk ---- */
enum sg_reference {
    SG_REF_RETRAINED, /* the dense chain retrained for the same epochs, at the same step */
    SG_REF_BASELINE,  /* the seed's dense baseline (step 0) */
};
enum sg_walk_end {
    SG_WALK_LOST,        /* a point failed: the walk stopped there */
    SG_WALK_NEVER_MET,   /* the first pruned point failed: density 1 */
    SG_WALK_GRID_SHORT,  /* every point passed: the true value is lower */
    SG_WALK_NO_REFERENCE, /* a step had no reference point: the walk stopped there */
    SG_WALK_INCOMPLETE    /* mean walk: some seeds' chains stopped before this step */
};
struct sg_walk {
    const struct sg_point *point; /* the no-loss point, NULL when none passed */
    double density;               /* its achieved density, 1 when none passed */
    int step;                     /* its step, 0 when none passed */
    enum sg_walk_end end;
};
/* Walks one chain (gran, seed) down from step 1: a point passes when its decision
 * accuracy is at least the reference's minus tol (a fraction); the first failure
 * (or a missing step) ends the walk, so a lucky point below a failure never counts.
 * Returns 0 when the seed has no baseline or the chain has no point, 1 otherwise. */
int sg_study_walk(const struct sg_points *pts, const char *gran, int seed, double tol,
                  enum sg_reference ref, struct sg_walk *w);
/* The same walk on the curve of means over the given seeds (a step counts only
 * where every seed has it and its reference). */
int sg_study_walk_mean(const struct sg_points *pts, const char *gran, const int *seeds, int nseeds,
                       double tol, enum sg_reference ref, struct sg_walk *w);

/* ---- the chain's decisions (the CLI runs the chains; these decide) ---- */
/* Whether the pruned chain (gran, seed) goes on below the grid after step `last`:
 * its point there passes against the seed's baseline on the validation split. */
int sg_study_extend(const struct sg_points *pts, const char *gran, int seed, int last, double tol);
/* How many steps the dense reference chain of a seed runs: the grid's `ngrid`, or
 * as deep as the deepest pruned chain of the seed went below it. */
int sg_study_reference_steps(const struct sg_points *pts, int seed, int ngrid);
/* A relative per-layer profile (rel: e.g. from sensitivity) scaled so that the
 * layers in scope of m under pc together keep `target` of their weights (a layer
 * capped at 1). out->names and out->density are allocated (sg_profile_free). */
enum sg_status sg_study_scale_profile(const struct sg_profile *rel, const struct sg_model *m,
                                      const struct sg_prune_cfg *pc, double target,
                                      struct sg_profile **out);

/* Per granularity: the no-loss densities of its seeds and what they mean. */
struct sg_noloss_col {
    struct sg_interval d;  /* per-seed no-loss densities */
    double walk_mean;      /* the walk on the mean curve over seeds */
    int never_met;         /* seeds whose first pruned point failed */
    int grid_short;        /* seeds that never lost accuracy: the grid ended first */
    int no_ref;            /* seeds whose walk ran out of reference points */
    double top1, val_top1; /* mean test and validation top-1 at the no-loss points */
};
struct sg_noloss {
    char gran[48];
    int seeds;
    /* primary: against the dense chain retrained for the same epochs (the fair
     * reference); mirrored in the flat fields below for the report */
    struct sg_noloss_col fair;
    /* against each seed's baseline (the model pruning started from) */
    struct sg_noloss_col base;
    double mean, min, max, std, ci; /* = fair.d (ci: 95% half-width, NaN with one seed) */
    int never_lost, never_met;      /* seeds with fair.grid_short, fair.never_met */
    double top1, val_top1;          /* = fair.top1, fair.val_top1 */
    double baseline_top1, baseline_val_top1; /* means over seeds */
    /* paired by seed against the first granularity of the table (vs): the
     * differences of fair no-loss densities, and "lower", "tie", "higher" or "-" */
    char vs[48];
    struct sg_interval diff;
    char verdict[8];
};
/* Computes the no-loss table over granularities (controls and "dense" excluded),
 * in the paper's order (fine, vector, kernel, filter, then others). */
enum sg_status sg_study_noloss(const struct sg_points *pts, double tol, struct sg_noloss **out,
                               int *n);
/* Writes curves.csv and no_loss.csv into dir (atomically). */
enum sg_status sg_study_write_tables(const struct sg_points *pts, double tol, const char *dir);

/* One row of curves.csv: mean and spread of top-1 over seeds at one
 * (granularity, control, step). sg_study_curves returns them in the file's order
 * (dense first, then the paper's granularities, then step). */
struct sg_curve {
    char gran[48], control[16];
    int step, seeds, epochs;
    double target;                  /* target density of the step */
    double density;                 /* mean achieved density (1 for dense references) */
    double mean, std, min, max;     /* test top-1 over seeds, fractions */
    double val_mean;                /* validation top-1, mean over seeds (NaN if none) */
    double loss;                    /* mean test loss */
};
enum sg_status sg_study_curves(const struct sg_points *pts, struct sg_curve **out, int *n);
/* The no-loss point of one granularity and seed on the primary walk (against the
 * dense chain retrained as long), or NULL when no pruned point passed. */
const struct sg_point *sg_study_noloss_point(const struct sg_points *pts, const char *gran,
                                             int seed, double tol);

#ifdef __cplusplus
}
#endif
#endif
