/* A CSV reader for the tables other stages of a study write (storage.csv,
 * scnn.csv): RFC 4180 quoting, LF or CRLF line ends, a header row. The text is
 * untrusted, so every size is bounded and every row is checked. */
#include <errno.h>
#include <math.h>

#include "report_internal.h"

#define CSV_MAX_BYTES ((size_t)64 << 20)
#define CSV_MAX_COLS 256
#define CSV_MAX_ROWS 1000000
#define CSV_MAX_CELLS (1 << 22) /* a cell costs about 40 bytes: 160 MB at most */

struct row {
    char **f;
    int n, cap;
};

static int row_push(struct row *r, struct sgi_buf *field) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        char **f = realloc(r->f, sizeof *f * (size_t)cap);
        if (!f) return 0;
        r->f = f;
        r->cap = cap;
    }
    sgi_buf_u8(field, 0);
    if (field->failed) return 0;
    char *s = strdup((const char *)field->data);
    if (!s) return 0;
    r->f[r->n++] = s;
    field->len = 0;
    return 1;
}

static void row_clear(struct row *r) {
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

void sg_csv_free(struct sg_csv *t) {
    if (!t) return;
    if (t->cell)
        for (size_t i = 0; i < (size_t)(t->nrows + 1) * (size_t)t->ncols; i++) free(t->cell[i]);
    free(t->cell);
    free(t);
}

/* Appends a finished row to the table (header first); pads short rows. */
static enum sg_status add_row(struct sg_csv *t, size_t *cap_rows, struct row *r, const char *what,
                              int line) {
    if (t->ncols == 0) { /* the header decides the width */
        if (r->n > CSV_MAX_COLS)
            return sgi_error(SG_ERR_LIMIT, "%s: %d columns (at most %d)", what, r->n, CSV_MAX_COLS);
        t->ncols = r->n;
    } else if (r->n > t->ncols) {
        return sgi_error(SG_ERR_FORMAT, "%s: line %d has %d fields, the header %d", what, line, r->n,
                         t->ncols);
    } else if (t->nrows >= CSV_MAX_ROWS || (size_t)(t->nrows + 2) * (size_t)t->ncols > CSV_MAX_CELLS) {
        return sgi_error(SG_ERR_LIMIT, "%s: more than %d rows or %d cells", what, CSV_MAX_ROWS,
                         CSV_MAX_CELLS);
    }
    struct sgi_buf empty = {0};
    while (r->n < t->ncols) /* a short row: the missing fields are empty */
        if (!row_push(r, &empty)) {
            sgi_buf_free(&empty);
            return sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
        }
    sgi_buf_free(&empty);
    size_t rows = (size_t)t->nrows + (t->cell ? 1 : 0); /* rows stored so far */
    if (rows + 1 > *cap_rows) {
        size_t cap = *cap_rows ? *cap_rows * 2 : 16, bytes;
        if (!sgi_mul(cap, (size_t)t->ncols * sizeof(char *), &bytes))
            return sgi_error(SG_ERR_LIMIT, "%s: too large", what);
        char **c = realloc(t->cell, bytes);
        if (!c) return sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
        t->cell = c;
        *cap_rows = cap;
    }
    for (int i = 0; i < t->ncols; i++) t->cell[rows * t->ncols + i] = r->f[i];
    r->n = 0; /* the fields now belong to the table */
    if (rows > 0) t->nrows++;
    return SG_OK;
}

enum sg_status sg_csv_parse(const char *text, size_t len, const char *what, struct sg_csv **out) {
    *out = NULL;
    if (len > CSV_MAX_BYTES)
        return sgi_error(SG_ERR_LIMIT, "%s: %zu bytes (at most %zu)", what, len, CSV_MAX_BYTES);
    struct sg_csv *t = calloc(1, sizeof *t);
    if (!t) return sgi_error(SG_ERR_NOMEM, "out of memory");
    struct row r = {0};
    struct sgi_buf field = {0};
    size_t cap_rows = 0, i = 0;
    int line = 1, quoted = 0, had_field = 0;
    enum sg_status st = SG_OK;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) i = 3; /* a UTF-8 byte-order mark */
    while (i < len && st == SG_OK) {
        char ch = text[i];
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < len && text[i + 1] == '"') {
                    sgi_buf_u8(&field, '"');
                    i += 2;
                    continue;
                }
                quoted = 0;
                i++;
                continue;
            }
            if (ch == '\n') line++;
            sgi_buf_u8(&field, (uint8_t)ch);
            i++;
            continue;
        }
        if (ch == '"' && field.len == 0) {
            quoted = had_field = 1;
            i++;
        } else if (ch == ',') {
            if (!row_push(&r, &field)) st = sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
            had_field = 1;
            i++;
        } else if (ch == '\n' || ch == '\r') {
            if (ch == '\r' && i + 1 < len && text[i + 1] == '\n') i++;
            i++;
            if (had_field || field.len || r.n) { /* blank lines are skipped */
                if (!row_push(&r, &field)) st = sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
                else st = add_row(t, &cap_rows, &r, what, line);
            }
            had_field = 0;
            line++;
        } else if (ch == 0) {
            st = sgi_error(SG_ERR_FORMAT, "%s: line %d holds a NUL byte (not a text file?)", what, line);
        } else {
            sgi_buf_u8(&field, (uint8_t)ch);
            had_field = 1;
            i++;
        }
        if (field.failed && st == SG_OK) st = sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
    }
    if (st == SG_OK && quoted) st = sgi_error(SG_ERR_FORMAT, "%s: a quoted field is not closed", what);
    if (st == SG_OK && (had_field || field.len || r.n)) { /* no newline after the last row */
        if (!row_push(&r, &field)) st = sgi_error(SG_ERR_NOMEM, "out of memory reading %s", what);
        else st = add_row(t, &cap_rows, &r, what, line);
    }
    if (st == SG_OK && t->ncols == 0) st = sgi_error(SG_ERR_FORMAT, "%s: empty (no header row)", what);
    row_clear(&r);
    free(r.f);
    sgi_buf_free(&field);
    if (st != SG_OK) {
        sg_csv_free(t);
        return st;
    }
    *out = t;
    return SG_OK;
}

enum sg_status sg_csv_load(const char *path, struct sg_csv **out) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    enum sg_status st = sg_file_read(path, CSV_MAX_BYTES, 0, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_csv_parse((const char *)buf, len, path, out);
    free(buf);
    return st;
}

int sg_csv_col(const struct sg_csv *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cell[i], name) == 0) return i;
    return -1;
}

const char *sg_csv_get(const struct sg_csv *t, int row, int col) {
    if (row < 0 || row >= t->nrows || col < 0 || col >= t->ncols) return "";
    return t->cell[(size_t)(row + 1) * t->ncols + col];
}

int sg_csv_num(const struct sg_csv *t, int row, int col, double *v) {
    const char *s = sg_csv_get(t, row, col);
    while (*s == ' ') s++;
    if (!*s) return 0;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (*end == ' ') end++;
    if (*end || errno == ERANGE || !isfinite(x)) return 0;
    *v = x;
    return 1;
}
