/* Study points as JSON lines: writing one, reading a file of them, finding one. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/study.h"

void sg_point_json(const struct sg_point *p, struct sg_json *j) {
    sg_json_obj(j);
    sg_json_key(j, "model"), sg_json_str(j, p->model);
    sg_json_key(j, "data"), sg_json_str(j, p->data);
    sg_json_key(j, "granularity"), sg_json_str(j, p->gran);
    sg_json_key(j, "criterion"), sg_json_str(j, p->crit);
    sg_json_key(j, "control"), sg_json_str(j, p->control);
    sg_json_key(j, "seed"), sg_json_int(j, p->seed);
    sg_json_key(j, "step"), sg_json_int(j, p->step);
    sg_json_key(j, "target"), sg_json_num(j, p->target);
    sg_json_key(j, "density"), sg_json_num(j, p->density);
    sg_json_key(j, "layers"), sg_json_obj(j);
    for (int i = 0; i < p->n_layers; i++) sg_json_key(j, p->layer[i]), sg_json_num(j, p->layer_density[i]);
    sg_json_end(j);
    sg_json_key(j, "top1"), sg_json_num(j, p->top1);
    sg_json_key(j, "val_top1"), sg_json_num(j, p->val_top1);
    sg_json_key(j, "top5"), sg_json_num(j, p->top5);
    sg_json_key(j, "loss"), sg_json_num(j, p->loss);
    sg_json_key(j, "epochs"), sg_json_int(j, p->epochs);
    sg_json_key(j, "seconds"), sg_json_num(j, p->seconds);
    sg_json_key(j, "file"), sg_json_str(j, p->file);
    sg_json_end(j);
}

static int get_str(const cJSON *o, const char *k, char *dst, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) return 0;
    strcpy(dst, v->valuestring);
    return 1;
}

static int get_num(const cJSON *o, const char *k, double *dst) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNull(v)) {
        *dst = 0.0 / 0.0;
        return 1;
    }
    if (!cJSON_IsNumber(v)) return 0;
    *dst = v->valuedouble;
    return 1;
}

/* An integer field: a JSON number with an integral value that fits an int (the
 * conversion of anything else to int would be undefined). */
static int get_int(const cJSON *o, const char *k, int *dst) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX) ||
        v->valuedouble != floor(v->valuedouble))
        return 0;
    *dst = (int)v->valuedouble;
    return 1;
}

static int parse_point(const char *line, struct sg_point *p) {
    memset(p, 0, sizeof *p);
    cJSON *o = cJSON_Parse(line);
    if (!o) return 0;
    int ok = cJSON_IsObject(o) && get_str(o, "model", p->model, sizeof p->model) &&
             get_str(o, "data", p->data, sizeof p->data) &&
             get_str(o, "granularity", p->gran, sizeof p->gran) &&
             get_str(o, "criterion", p->crit, sizeof p->crit) &&
             get_str(o, "control", p->control, sizeof p->control) && get_int(o, "seed", &p->seed) &&
             get_int(o, "step", &p->step) && get_num(o, "target", &p->target) &&
             get_num(o, "density", &p->density) && get_num(o, "top1", &p->top1) &&
             get_num(o, "top5", &p->top5) && get_num(o, "loss", &p->loss) &&
             get_int(o, "epochs", &p->epochs) && get_num(o, "seconds", &p->seconds) &&
             get_str(o, "file", p->file, sizeof p->file);
    /* points written before the validation split have none */
    p->val_top1 = 0.0 / 0.0;
    if (ok && cJSON_GetObjectItemCaseSensitive(o, "val_top1")) ok = get_num(o, "val_top1", &p->val_top1);
    if (ok) {
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers"), *it;
        if (!cJSON_IsObject(layers)) ok = 0;
        else
            cJSON_ArrayForEach(it, layers) {
                if (p->n_layers == SG_POINT_MAX_LAYERS || !cJSON_IsNumber(it) ||
                    strlen(it->string) >= sizeof p->layer[0]) {
                    ok = 0;
                    break;
                }
                strcpy(p->layer[p->n_layers], it->string);
                p->layer_density[p->n_layers++] = it->valuedouble;
            }
    }
    cJSON_Delete(o);
    return ok;
}

enum sg_status sg_points_add(struct sg_points *pts, const struct sg_point *p) {
    if (pts->n >= SG_POINTS_MAX)
        return sgi_error(SG_ERR_LIMIT, "more than %d points in one study", SG_POINTS_MAX);
    if (pts->n == pts->cap) {
        int cap = pts->cap ? pts->cap * 2 : 64;
        struct sg_point *np = realloc(pts->p, (size_t)cap * sizeof *np);
        if (!np) return sgi_error(SG_ERR_NOMEM, "out of memory");
        pts->p = np;
        pts->cap = cap;
    }
    pts->p[pts->n++] = *p;
    return SG_OK;
}

void sg_points_free(struct sg_points *pts) {
    free(pts->p);
    memset(pts, 0, sizeof *pts);
}

enum sg_status sg_points_parse(const char *text, size_t len, const char *what,
                               struct sg_points *out, size_t *valid) {
    memset(out, 0, sizeof *out);
    *valid = 0;
    char *buf = malloc(len + 1); /* each line is parsed NUL-terminated in place */
    if (!buf) return sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
    if (len) memcpy(buf, text, len);
    buf[len] = 0;
    enum sg_status st = SG_OK;
    size_t off = 0;
    int lineno = 0;
    while (off < len) {
        char *nl = memchr(buf + off, '\n', len - off);
        lineno++;
        struct sg_point p;
        if (!nl) break; /* an unterminated last line was cut short */
        *nl = 0;
        if (!parse_point(buf + off, &p)) {
            if ((size_t)(nl - buf) + 1 == len) break; /* damaged last line */
            st = sgi_error(SG_ERR_FORMAT, "%s: line %d is not a valid point", what, lineno);
            break;
        }
        if ((st = sg_points_add(out, &p)) != SG_OK) {
            st = sgi_error_prefix(st, what);
            break;
        }
        off = (size_t)(nl - buf) + 1;
        *valid = off;
    }
    free(buf);
    if (st != SG_OK) {
        sg_points_free(out);
        *valid = 0;
    }
    return st;
}

enum sg_status sg_points_load(const char *path, struct sg_points *out, size_t *valid) {
    memset(out, 0, sizeof *out);
    *valid = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return SG_OK; /* no points yet */
    fclose(f);
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_file_read(path, SG_POINTS_MAX_BYTES, 0, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_points_parse((const char *)buf, len, path, out, valid);
    free(buf);
    return st;
}

double sg_point_decision(const struct sg_point *p) {
    return isfinite(p->val_top1) ? p->val_top1 : p->top1;
}

const struct sg_point *sg_points_find(const struct sg_points *pts, const char *gran,
                                      const char *control, int seed, int step) {
    for (int i = 0; i < pts->n; i++) {
        const struct sg_point *p = &pts->p[i];
        if (p->seed == seed && p->step == step && !strcmp(p->gran, gran) && !strcmp(p->control, control))
            return p;
    }
    return NULL;
}
