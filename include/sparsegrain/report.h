/* sparsegrain/report.h - machine-readable output: a JSON writer (and, as the
 * report subsystem grows, CSV, SVG and HTML writers).
 *
 *     struct sg_json j;
 *     sg_json_init(&j);
 *     sg_json_obj(&j);
 *     sg_json_key(&j, "top1"); sg_json_num(&j, 0.9915);
 *     sg_json_key(&j, "n");    sg_json_int(&j, 10000);
 *     sg_json_end(&j);
 *     fputs(sg_json_str(&j), stdout);   // {"top1": 0.9915, "n": 10000}
 *     sg_json_free(&j);
 *
 * Non-finite numbers are written as null (JSON has no NaN).
 */
#ifndef SPARSEGRAIN_REPORT_H
#define SPARSEGRAIN_REPORT_H

#include <stdint.h>

#include "sparsegrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sg_json {
    char *buf;
    size_t len, cap;
    int depth;
    uint8_t first[64]; /* per nesting level: no element written yet */
    char close[64];    /* per nesting level: '}' or ']' */
    uint8_t after_key;
    int failed;
};
void sg_json_init(struct sg_json *j);
void sg_json_obj(struct sg_json *j);
void sg_json_arr(struct sg_json *j);
void sg_json_end(struct sg_json *j); /* closes the innermost object or array */
void sg_json_key(struct sg_json *j, const char *key);
void sg_json_str(struct sg_json *j, const char *s);
void sg_json_num(struct sg_json *j, double v); /* shortest round-trip form */
void sg_json_int(struct sg_json *j, int64_t v);
void sg_json_bool(struct sg_json *j, int v);
void sg_json_null(struct sg_json *j);
/* Inserts already-formatted JSON as one value. */
void sg_json_raw(struct sg_json *j, const char *json);
const char *sg_json_cstr(const struct sg_json *j);
void sg_json_free(struct sg_json *j);
/* Appends s to out as a JSON string literal (with quotes). */
void sg_json_escape(struct sg_json *j, const char *s);

/* ---- study results ---- */
#define SG_POINT_MAX_LAYERS 64
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
    double top1, top5, loss, seconds;
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
 * the middle is an error. A missing file gives zero points. */
enum sg_status sg_points_load(const char *path, struct sg_points *out, size_t *valid);
enum sg_status sg_points_add(struct sg_points *pts, const struct sg_point *p);
void sg_points_free(struct sg_points *pts);

/* Per granularity: the lowest density whose top-1 stays within tol (a fraction) of
 * the reference, for every seed; mean and spread over seeds. */
struct sg_noloss {
    char gran[48];
    int seeds;
    double mean, min, max, std; /* of the per-seed no-loss densities */
    int never_lost;             /* every point met the tolerance (the grid ended first) */
    int never_met;              /* not even the first pruned point met it */
    double top1;                /* mean top-1 at the no-loss points */
    double fair_mean;           /* same, against the dense model trained as long (-1 if none) */
    double baseline_top1;       /* mean over seeds */
};
/* Computes the no-loss table over granularities (controls and "dense" excluded). */
enum sg_status sg_study_noloss(const struct sg_points *pts, double tol, struct sg_noloss **out,
                               int *n);
/* Writes curves.csv and no_loss.csv into dir (atomically). */
enum sg_status sg_study_write_tables(const struct sg_points *pts, double tol, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
