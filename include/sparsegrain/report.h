/* sparsegrain/report.h - results for machines and for people: a JSON writer,
 * a CSV reader (study points and tables: study.h), SVG charts, the HTML report and PNG
 * pictures of masks. This module knows only result structs: it never loads a
 * model or touches the pruning code (the CLI computes and passes what it shows).
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

/* Study points and tables moved to sparsegrain/study.h (included below). */
struct sg_points;

/* ---- CSV tables (RFC 4180: quoted fields, "" escapes, CRLF or LF) ---- */
struct sg_csv {
    int ncols, nrows;  /* nrows excludes the header */
    char **cell;       /* [(nrows + 1) * ncols]; row 0 is the header; never NULL entries */
};
/* Rows shorter than the header are padded with ""; longer rows are an error.
 * Limits: 64 MiB, 256 columns, 1,000,000 rows. `what` names the text in errors. */
enum sg_status sg_csv_parse(const char *text, size_t len, const char *what, struct sg_csv **out);
enum sg_status sg_csv_load(const char *path, struct sg_csv **out);
void sg_csv_free(struct sg_csv *t);
int sg_csv_col(const struct sg_csv *t, const char *name);          /* -1 if absent */
const char *sg_csv_get(const struct sg_csv *t, int row, int col);  /* row 0 = first data row */
/* 1 and *v when the cell is a finite number ("" and text give 0). */
int sg_csv_num(const struct sg_csv *t, int row, int col, double *v);

/* ---- SVG charts ----
 * Charts are self-contained <svg> elements (their own <style>, system sans-serif
 * fonts) that render alike as files and inline in HTML. Every data series is a
 * <path class="series"> (line charts) or a <g class="series"> (bar charts) with a
 * <title> for hover text; markers and bars carry their values in <title> too.
 * Colours come from the Okabe-Ito palette (safe for the common colour-vision
 * deficiencies), and lines also differ by marker and dash so that a grey print
 * keeps them apart. All text is XML-escaped; invalid UTF-8 becomes U+FFFD.
 *
 *     double x[] = {1, 0.5, 0.25}, y[] = {99.1, 99.0, 98.2};
 *     struct sg_series s = {.name = "kernel", .n = 3, .x = x, .y = y, .color = 2,
 *                           .marker = SG_MARK_DIAMOND};
 *     struct sg_line_chart c = {.title = "LeNet-5", .x_label = "density",
 *                               .y_label = "top-1 (%)", .log_x = 1, .series = &s,
 *                               .n_series = 1, .x_min = NAN, .x_max = NAN,
 *                               .y_min = NAN, .y_max = NAN};
 *     char *svg;
 *     if (sg_svg_line_chart(&c, &svg) == SG_OK) { fputs(svg, f); free(svg); }
 */
#define SG_PALETTE_N 8
/* Palette colour i (mod SG_PALETTE_N) as "#rrggbb"; i < 0 gives the neutral grey. */
const char *sg_palette(int i);

enum sg_marker {
    SG_MARK_NONE = 0,
    SG_MARK_CIRCLE = 1,
    SG_MARK_SQUARE = 2,
    SG_MARK_DIAMOND = 3,
    SG_MARK_TRIANGLE = 4,
    SG_MARK_DOWN = 5,  /* triangle pointing down */
    SG_MARK_CROSS = 6, /* an x: never filled */
    SG_MARK_COUNT
};

struct sg_series {
    const char *name;         /* legend text */
    int n;                    /* points */
    const double *x, *y;      /* n values; non-finite (or x <= 0 on a log axis) leave a gap */
    const double *lo, *hi;    /* shaded band around the line (n values each), or NULL */
    int color;                /* palette index; < 0 = grey */
    int dash;                 /* 0 solid, 1 dashed, 2 dotted */
    enum sg_marker marker;
    int hollow;               /* markers drawn open (white fill) */
    int no_line;              /* markers only */
    const char *const *tip;   /* per point hover text, or NULL (then "name: x, y") */
};
/* A horizontal reference line (a baseline, a tolerance), listed in the legend. */
struct sg_refline {
    const char *label;
    double y;
    int color; /* palette index; < 0 = grey */
    int dash;
};
struct sg_line_chart {
    const char *id;               /* prefix for element ids, unique in a page (NULL: "c") */
    const char *title;            /* drawn on top, NULL for none */
    const char *x_label, *y_label; /* axis titles, with units */
    int width, height;            /* pixels; 0 = 900 x 440 */
    int log_x;                    /* logarithmic x axis (decades, with 2 and 5 between) */
    double x_min, x_max;          /* NaN = from the data */
    double y_min, y_max;          /* NaN = from the data; data outside is clipped */
    const char *y_suffix;         /* appended to y tick labels ("%"), or NULL */
    const struct sg_series *series;
    int n_series;
    const struct sg_refline *ref;
    int n_ref;
};
enum sg_status sg_svg_line_chart(const struct sg_line_chart *c, char **svg);

struct sg_bar_chart {
    const char *id, *title;
    const char *value_label;      /* axis title of the values, with units */
    const char *cat_label;        /* axis title of the categories, or NULL */
    int width, height;            /* 0 = automatic from the number of bars */
    int stacked;                  /* 1: series stack in one bar; 0: bars side by side */
    int horizontal;               /* 1: bars run left to right, one row per category */
    int n_cats;
    const char *const *cats;      /* category labels */
    int n_series;
    const char *const *series;    /* legend labels (stack segments or group members) */
    const int *colors;            /* palette index per series, or NULL for 0, 1, 2, ... */
    const double *v;              /* [n_cats][n_series]; non-finite or negative = no bar */
    const char *unit;             /* appended to values in hover text ("bits"), or NULL */
    int totals;                   /* stacked: write each bar's total at its end */
    int no_legend;                /* the category labels already say it all */
};
enum sg_status sg_svg_bar_chart(const struct sg_bar_chart *c, char **svg);

/* ---- pictures of masks ---- */
struct sg_image {
    int w, h;
    uint8_t *rgb; /* [h][w][3] */
};
void sg_image_free(struct sg_image *img);
/* The sequential map used for weight magnitude: t in [0, 1] -> viridis, reversed
 * and cut at 90% so the smallest kept weight stays clearly darker than white
 * (t = 1, the largest magnitude, is the darkest). */
void sg_mask_color(double t, uint8_t rgb[3]);
#define SG_MASK_GRID_RGB 0xc8c8c8 /* lines between kernels */
struct sg_mask_image_cfg {
    int scale;          /* pixels per weight, >= 1 */
    int64_t max_k;      /* filters shown (rows), the first ones; <= 0 = all */
    int64_t max_c;      /* input channels shown (columns); <= 0 = all */
};
/* A layer's weights as a picture: one cell per (filter k, input channel c) holding
 * the R x S kernel at `scale` pixels per weight, 1-pixel grid lines around every
 * kernel; kept weights coloured by |w| / max |w| (over the shown kept weights),
 * pruned ones white. *shown_k, *shown_c: the rows and columns drawn. The image is
 * limited to 32768 pixels a side (SG_ERR_LIMIT beyond). */
enum sg_status sg_mask_image(const struct sg_wview *v, const struct sg_mask_image_cfg *cfg,
                             struct sg_image *img, int64_t *shown_k, int64_t *shown_c);
/* PNG (8-bit RGB) in memory (*out: free()) or atomically to a file. */
enum sg_status sg_png_encode(const struct sg_image *img, uint8_t **out, size_t *len);
enum sg_status sg_png_write(const char *path, const struct sg_image *img);

/* ---- the HTML report ----
 *
 *     struct sg_report_env env;
 *     sg_report_env_probe(&env);                  // version, date, OS, CPU, cores
 *     struct sg_report_input in = {.dir = "study", .pts = &pts, .tol = 0.001, .env = &env,
 *                                  .axes = SG_REPORT_LINEAR_X | SG_REPORT_LOG_X};
 *     char *html; size_t len;
 *     if (sg_report_html(&in, &html, &len) == SG_OK) { sg_file_write_atomic(p, html, len); free(html); }
 *
 * One self-contained page: inline SVG and CSS, no scripts, fonts or anything else
 * from the network; it prints (@media print). The page is well-formed XML as well
 * as HTML, so both XML and HTML parsers can check it. Sections for storage and
 * SCNN appear only when their tables are given; docs/report.md lists the columns
 * they use (unknown columns are shown in the tables, not drawn). */
struct sg_report_env {
    char version[32]; /* SG_VERSION_STRING */
    char date[40];    /* UTC, ISO 8601 */
    char os[160];     /* uname: system, release, machine */
    char cpu[160];    /* model name from /proc/cpuinfo */
    int cores;        /* online */
};
/* Fills e; fields it cannot learn are "unknown" (never fails). */
void sg_report_env_probe(struct sg_report_env *e);

#define SG_STRUCT_GRANS 5 /* fine, vector, kernel, filter, channel (as `stats`) */
struct sg_layer_structure {
    char name[96];
    int is_fc;
    int ndim;
    int64_t dims[4];
    int64_t weights;
    int pruned;                        /* in the study's pruning scope */
    double density[SG_STRUCT_GRANS];   /* fraction of groups with a non-zero weight */
};
/* A model the report describes: a granularity's no-loss model (or a note why
 * there is none) with its per-layer structure and, optionally, a mask picture. */
struct sg_report_model {
    char gran[48];
    char note[160];          /* shown instead of the table when n_layers == 0 */
    int seed, step;
    double density, top1;    /* of the point */
    char file[160];          /* relative to the study folder */
    int n_layers;
    const struct sg_layer_structure *layers;
    const uint8_t *png;      /* mask picture (PNG bytes), or NULL */
    size_t png_len;
    int png_w, png_h;        /* its size in pixels */
    char png_layer[96];      /* the layer drawn */
    char png_note[96];       /* e.g. "first 64 of 256 filters", or "" */
};

#define SG_REPORT_LINEAR_X 1u
#define SG_REPORT_LOG_X 2u
struct sg_report_input {
    const char *dir;                 /* study folder as the user named it (shown only) */
    const struct sg_points *pts;     /* points.jsonl */
    double tol;                      /* no-loss tolerance, a fraction */
    const char *settings_json;       /* study.json text, or NULL */
    const char *command;             /* the study's command line, or NULL */
    const struct sg_report_env *env; /* or NULL */
    const struct sg_report_model *models;
    int n_models;
    const struct sg_csv *storage;    /* DIR/storage.csv, or NULL */
    const struct sg_csv *scnn;       /* DIR/scnn.csv, or NULL */
    const struct sg_csv *infer;      /* DIR/infer.csv, or NULL */
    const struct sg_csv *gpu;        /* sg_report_gpu_summary of a gpu.csv, or NULL */
    unsigned axes;                   /* SG_REPORT_LINEAR_X | SG_REPORT_LOG_X (0 = both) */
    int band_std;                    /* bands show mean +- std instead of min..max */
};
/* bench-gpu's per-layer rows (bench/results/gpu.csv) summed per GPU, network, dtype,
 * granularity, format and target density, for the report's GPU section; totals only
 * where every layer ran and matched dense. `what` names the table in errors. */
enum sg_status sg_report_gpu_summary(const struct sg_csv *rows, const char *what, struct sg_csv **out);
/* Builds the page into *html (NUL-terminated, free()). */
enum sg_status sg_report_html(const struct sg_report_input *in, char **html, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
