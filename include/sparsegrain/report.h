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

#ifdef __cplusplus
}
#endif
#endif
