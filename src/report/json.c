/* A small streaming JSON writer. */
#include <math.h>

#include "core/sgi.h"
#include "sparsegrain/report.h"

static void put(struct sg_json *j, const char *s, size_t n) {
    if (j->failed) return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) {
            j->failed = 1;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
}

static void puts_(struct sg_json *j, const char *s) { put(j, s, strlen(s)); }

void sg_json_init(struct sg_json *j) {
    memset(j, 0, sizeof *j);
    j->first[0] = 1;
}

/* Separator before a value (not after a key). */
static void sep(struct sg_json *j) {
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (!j->first[j->depth]) puts_(j, ", ");
    j->first[j->depth] = 0;
}

static void open_(struct sg_json *j, const char *c) {
    sep(j);
    puts_(j, c);
    if (j->depth + 1 >= (int)sizeof j->first) {
        j->failed = 1; /* nesting deeper than any document we write */
        return;
    }
    j->depth++;
    j->first[j->depth] = 1;
    j->close[j->depth] = c[0] == '{' ? '}' : ']';
}

void sg_json_obj(struct sg_json *j) { open_(j, "{"); }
void sg_json_arr(struct sg_json *j) { open_(j, "["); }

void sg_json_end(struct sg_json *j) {
    if (j->depth == 0) return;
    put(j, &j->close[j->depth], 1);
    j->depth--;
}

void sg_json_escape(struct sg_json *j, const char *s) {
    puts_(j, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        switch (*p) {
        case '"': puts_(j, "\\\""); break;
        case '\\': puts_(j, "\\\\"); break;
        case '\n': puts_(j, "\\n"); break;
        case '\t': puts_(j, "\\t"); break;
        case '\r': puts_(j, "\\r"); break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                puts_(j, tmp);
            } else {
                put(j, (const char *)p, 1);
            }
        }
    }
    puts_(j, "\"");
}

void sg_json_key(struct sg_json *j, const char *key) {
    sep(j);
    sg_json_escape(j, key);
    puts_(j, ": ");
    j->after_key = 1;
}

void sg_json_str(struct sg_json *j, const char *s) {
    sep(j);
    sg_json_escape(j, s);
}

void sg_json_num(struct sg_json *j, double v) {
    sep(j);
    if (!isfinite(v)) {
        puts_(j, "null");
        return;
    }
    char tmp[40];
    for (int prec = 6; prec <= 17; prec++) { /* shortest form that reads back exactly */
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    puts_(j, tmp);
}

void sg_json_int(struct sg_json *j, int64_t v) {
    sep(j);
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    puts_(j, tmp);
}

void sg_json_bool(struct sg_json *j, int v) {
    sep(j);
    puts_(j, v ? "true" : "false");
}

void sg_json_null(struct sg_json *j) {
    sep(j);
    puts_(j, "null");
}

void sg_json_raw(struct sg_json *j, const char *json) {
    sep(j);
    puts_(j, json);
}

const char *sg_json_cstr(const struct sg_json *j) { return j->buf ? j->buf : ""; }

void sg_json_free(struct sg_json *j) {
    free(j->buf);
    memset(j, 0, sizeof *j);
}
