/* A pruned layer in the GPU libraries' formats (see sparsegrain/gpu.h for the layouts):
 * CSR, BSR, Blocked-ELL, 2:4 values + metadata, thinned dense; and the 16-bit floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sgi.h"
#include "sparsegrain/gpu.h"

static const char *const DTYPES[SG_GPU_DTYPE_COUNT] = {"fp32", "tf32", "fp16", "bf16"};
const char *sg_gpu_dtype_name(enum sg_gpu_dtype t) {
    return (unsigned)t < SG_GPU_DTYPE_COUNT ? DTYPES[t] : "?";
}
int sg_gpu_dtype_from_name(const char *s) {
    for (int i = 0; i < SG_GPU_DTYPE_COUNT; i++)
        if (s && strcmp(s, DTYPES[i]) == 0) return i;
    return -1;
}

uint16_t sg_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1); /* nearest even; overflow rounds to inf */
    return (uint16_t)(x >> 16);
}
float sg_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}
void sg_gpu_to_half(enum sg_gpu_dtype t, const float *x, size_t n, uint16_t *out) {
    if (t == SG_GPU_BF16)
        for (size_t i = 0; i < n; i++) out[i] = sg_f32_to_bf16(x[i]);
    else
        for (size_t i = 0; i < n; i++) out[i] = sg_f32_to_f16(x[i]);
}

#define DIM_MAX ((int64_t)INT32_MAX)

static enum sg_status check_dims(int64_t rows, int64_t cols, int bs) {
    if (rows < 0 || cols < 0 || rows > DIM_MAX - 64 || cols > DIM_MAX - 64)
        return sgi_error(SG_ERR_LIMIT, "gpu format: %lld x %lld matrix is outside 0..2^31 (32-bit indices)",
                         (long long)rows, (long long)cols);
    if (bs < 1 || bs > 64) return sgi_error(SG_ERR_ARG, "gpu format: block size %d is outside 1..64", bs);
    if (!sgi_alloc_ok((size_t)rows, (size_t)cols + 64))
        return sgi_error(SG_ERR_LIMIT, "gpu format: %lld x %lld matrix is too large", (long long)rows,
                         (long long)cols);
    return SG_OK;
}

size_t sg_gpu_matrix_size(const struct sg_wview *v, int64_t cpad) {
    return (size_t)v->k * (size_t)(v->r * v->s) * (size_t)cpad;
}

enum sg_status sg_gpu_matrix(const struct sg_wview *v, int64_t cpad, float *a, uint8_t *am) {
    if (cpad < v->c) return sgi_error(SG_ERR_ARG, "%s: padded channels %lld < C %lld", v->name, (long long)cpad,
                                      (long long)v->c);
    const int64_t rs = v->r * v->s, cols = rs * cpad;
    for (int64_t k = 0; k < v->k; k++) {
        if (a) memset(a + k * cols, 0, (size_t)cols * sizeof *a);
        if (am) memset(am + k * cols, 0, (size_t)cols);
        for (int64_t c = 0; c < v->c; c++)
            for (int64_t j = 0; j < rs; j++) {
                const int64_t src = (k * v->c + c) * rs + j, dst = k * cols + j * cpad + c;
                const int kept = v->mask ? v->mask[src] != 0 : 1;
                if (a) a[dst] = kept ? v->w[src] : 0.0f;
                if (am) am[dst] = (uint8_t)kept;
            }
    }
    return SG_OK;
}

static int kept_at(const float *a, const uint8_t *am, size_t i) { return am ? am[i] != 0 : a[i] != 0.0f; }

/* ---- CSR ---- */
enum sg_status sg_gpu_csr_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols,
                                 struct sg_gpu_csr *out) {
    memset(out, 0, sizeof *out);
    enum sg_status st = check_dims(rows, cols, 1);
    if (st != SG_OK) return st;
    int64_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) nnz += kept_at(a, am, i);
    if (nnz > DIM_MAX) return sgi_error(SG_ERR_LIMIT, "gpu csr: %lld kept weights exceed 32-bit indices", (long long)nnz);
    out->rows = rows, out->cols = cols, out->nnz = nnz;
    out->row_ptr = sgi_alloc((size_t)rows + 1, sizeof *out->row_ptr);
    out->col = sgi_alloc((size_t)nnz + 1, sizeof *out->col);
    out->val = sgi_alloc((size_t)nnz + 1, sizeof *out->val);
    if (!out->row_ptr || !out->col || !out->val) {
        sg_gpu_csr_free(out);
        return sgi_error(SG_ERR_NOMEM, "gpu csr: out of memory for %lld entries", (long long)nnz);
    }
    int64_t n = 0;
    for (int64_t i = 0; i < rows; i++) {
        out->row_ptr[i] = (int32_t)n;
        for (int64_t j = 0; j < cols; j++)
            if (kept_at(a, am, (size_t)(i * cols + j))) out->col[n] = (int32_t)j, out->val[n++] = a[i * cols + j];
    }
    out->row_ptr[rows] = (int32_t)n;
    return SG_OK;
}

enum sg_status sg_gpu_csr_decode(const struct sg_gpu_csr *c, float *a) {
    if (c->rows < 0 || c->cols < 0 || !c->row_ptr || c->row_ptr[0] != 0 || c->row_ptr[c->rows] != c->nnz)
        return sgi_error(SG_ERR_FORMAT, "gpu csr: row pointers do not span 0..nnz");
    memset(a, 0, (size_t)c->rows * (size_t)c->cols * sizeof *a);
    for (int64_t i = 0; i < c->rows; i++) {
        if (c->row_ptr[i + 1] < c->row_ptr[i])
            return sgi_error(SG_ERR_FORMAT, "gpu csr: row pointers fall at row %lld", (long long)i);
        for (int64_t e = c->row_ptr[i]; e < c->row_ptr[i + 1]; e++) {
            if (c->col[e] < 0 || c->col[e] >= c->cols || (e > c->row_ptr[i] && c->col[e] <= c->col[e - 1]))
                return sgi_error(SG_ERR_FORMAT, "gpu csr: column %d of row %lld out of range or order", c->col[e],
                                 (long long)i);
            a[i * c->cols + c->col[e]] = c->val[e];
        }
    }
    return SG_OK;
}

void sg_gpu_csr_free(struct sg_gpu_csr *c) {
    if (!c) return;
    free(c->row_ptr), free(c->col), free(c->val);
    memset(c, 0, sizeof *c);
}

/* ---- blocks ---- */
static int block_live(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs, int64_t bi,
                      int64_t bj) {
    for (int64_t i = bi * bs; i < (bi + 1) * bs && i < rows; i++)
        for (int64_t j = bj * bs; j < (bj + 1) * bs && j < cols; j++)
            if (kept_at(a, am, (size_t)(i * cols + j))) return 1;
    return 0;
}

/* Copies block (bi, bj) into dst with row stride ld, masked, zero beyond the edges. */
static void block_copy(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs, int64_t bi,
                       int64_t bj, float *dst, int64_t ld) {
    for (int64_t y = 0; y < bs; y++)
        for (int64_t x = 0; x < bs; x++) {
            const int64_t i = bi * bs + y, j = bj * bs + x;
            dst[y * ld + x] = i < rows && j < cols && kept_at(a, am, (size_t)(i * cols + j)) ? a[i * cols + j] : 0.0f;
        }
}

/* Writes a block back, failing when a non-zero lies in the padding. */
static enum sg_status block_put(const float *src, int64_t ld, int bs, int64_t bi, int64_t bj, float *a,
                                int64_t rows, int64_t cols, const char *what) {
    for (int64_t y = 0; y < bs; y++)
        for (int64_t x = 0; x < bs; x++) {
            const int64_t i = bi * bs + y, j = bj * bs + x;
            const float v = src[y * ld + x];
            if (i < rows && j < cols) a[i * cols + j] = v;
            else if (v != 0.0f)
                return sgi_error(SG_ERR_FORMAT, "gpu %s: non-zero padding in block (%lld, %lld)", what,
                                 (long long)bi, (long long)bj);
        }
    return SG_OK;
}

enum sg_status sg_gpu_bsr_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs,
                                 struct sg_gpu_bsr *out) {
    memset(out, 0, sizeof *out);
    enum sg_status st = check_dims(rows, cols, bs);
    if (st != SG_OK) return st;
    const int64_t mb = (rows + bs - 1) / bs, kb = (cols + bs - 1) / bs;
    int64_t nnzb = 0;
    for (int64_t bi = 0; bi < mb; bi++)
        for (int64_t bj = 0; bj < kb; bj++) nnzb += block_live(a, am, rows, cols, bs, bi, bj);
    out->rows = rows, out->cols = cols, out->bs = bs, out->mb = mb, out->kb = kb, out->nnzb = nnzb;
    out->row_ptr = sgi_alloc((size_t)mb + 1, sizeof *out->row_ptr);
    out->col = sgi_alloc((size_t)nnzb + 1, sizeof *out->col);
    out->val = sgi_alloc((size_t)nnzb * bs * bs + 1, sizeof *out->val);
    if (!out->row_ptr || !out->col || !out->val) {
        sg_gpu_bsr_free(out);
        return sgi_error(SG_ERR_NOMEM, "gpu bsr: out of memory for %lld blocks", (long long)nnzb);
    }
    int64_t n = 0;
    for (int64_t bi = 0; bi < mb; bi++) {
        out->row_ptr[bi] = (int32_t)n;
        for (int64_t bj = 0; bj < kb; bj++)
            if (block_live(a, am, rows, cols, bs, bi, bj)) {
                out->col[n] = (int32_t)bj;
                block_copy(a, am, rows, cols, bs, bi, bj, out->val + (size_t)n * bs * bs, bs);
                n++;
            }
    }
    out->row_ptr[mb] = (int32_t)n;
    return SG_OK;
}

enum sg_status sg_gpu_bsr_decode(const struct sg_gpu_bsr *b, float *a) {
    if (b->bs < 1 || b->mb != (b->rows + b->bs - 1) / b->bs || b->kb != (b->cols + b->bs - 1) / b->bs ||
        !b->row_ptr || b->row_ptr[0] != 0 || b->row_ptr[b->mb] != b->nnzb)
        return sgi_error(SG_ERR_FORMAT, "gpu bsr: shape or row pointers inconsistent");
    memset(a, 0, (size_t)b->rows * (size_t)b->cols * sizeof *a);
    for (int64_t bi = 0; bi < b->mb; bi++)
        for (int64_t e = b->row_ptr[bi]; e < b->row_ptr[bi + 1]; e++) {
            if (b->col[e] < 0 || b->col[e] >= b->kb || (e > b->row_ptr[bi] && b->col[e] <= b->col[e - 1]))
                return sgi_error(SG_ERR_FORMAT, "gpu bsr: block column %d of block row %lld out of range or order",
                                 b->col[e], (long long)bi);
            enum sg_status st = block_put(b->val + (size_t)e * b->bs * b->bs, b->bs, b->bs, bi, b->col[e], a,
                                          b->rows, b->cols, "bsr");
            if (st != SG_OK) return st;
        }
    return SG_OK;
}

void sg_gpu_bsr_free(struct sg_gpu_bsr *b) {
    if (!b) return;
    free(b->row_ptr), free(b->col), free(b->val);
    memset(b, 0, sizeof *b);
}

enum sg_status sg_gpu_bell_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols, int bs,
                                  struct sg_gpu_bell *out) {
    memset(out, 0, sizeof *out);
    enum sg_status st = check_dims(rows, cols, bs);
    if (st != SG_OK) return st;
    const int64_t mb = (rows + bs - 1) / bs, kb = (cols + bs - 1) / bs;
    int64_t slots = 0;
    for (int64_t bi = 0; bi < mb; bi++) {
        int64_t n = 0;
        for (int64_t bj = 0; bj < kb; bj++) n += block_live(a, am, rows, cols, bs, bi, bj);
        if (n > slots) slots = n;
    }
    if (slots == 0) slots = 1; /* cuSPARSE needs at least one slot; it holds -1 */
    out->rows = rows, out->cols = cols, out->bs = bs;
    out->rows_p = mb * bs, out->cols_p = kb * bs, out->ell_cols = slots * bs;
    out->col_ind = sgi_alloc((size_t)mb * (size_t)slots, sizeof *out->col_ind);
    out->val = sgi_zalloc((size_t)out->rows_p * (size_t)out->ell_cols, sizeof *out->val);
    if (!out->col_ind || !out->val) {
        sg_gpu_bell_free(out);
        return sgi_error(SG_ERR_NOMEM, "gpu blocked-ell: out of memory for %lld x %lld", (long long)out->rows_p,
                         (long long)out->ell_cols);
    }
    for (int64_t bi = 0; bi < mb; bi++) {
        int64_t n = 0;
        for (int64_t bj = 0; bj < kb; bj++)
            if (block_live(a, am, rows, cols, bs, bi, bj)) {
                out->col_ind[bi * slots + n] = (int32_t)bj;
                block_copy(a, am, rows, cols, bs, bi, bj, out->val + (size_t)bi * bs * out->ell_cols + n * bs,
                           out->ell_cols);
                n++;
            }
        for (; n < slots; n++) out->col_ind[bi * slots + n] = -1;
    }
    return SG_OK;
}

enum sg_status sg_gpu_bell_decode(const struct sg_gpu_bell *b, float *a) {
    const int bs = b->bs;
    if (bs < 1 || b->rows_p != (b->rows + bs - 1) / bs * bs || b->cols_p != (b->cols + bs - 1) / bs * bs ||
        b->ell_cols < bs || b->ell_cols % bs)
        return sgi_error(SG_ERR_FORMAT, "gpu blocked-ell: shape inconsistent");
    const int64_t mb = b->rows_p / bs, kb = b->cols_p / bs, slots = b->ell_cols / bs;
    memset(a, 0, (size_t)b->rows * (size_t)b->cols * sizeof *a);
    for (int64_t bi = 0; bi < mb; bi++)
        for (int64_t n = 0; n < slots; n++) {
            const int32_t bj = b->col_ind[bi * slots + n];
            const float *src = b->val + (size_t)bi * bs * b->ell_cols + n * bs;
            if (bj < 0) {
                if (bj != -1) return sgi_error(SG_ERR_FORMAT, "gpu blocked-ell: column index %d", bj);
                for (int y = 0; y < bs; y++)
                    for (int x = 0; x < bs; x++)
                        if (src[y * b->ell_cols + x] != 0.0f)
                            return sgi_error(SG_ERR_FORMAT, "gpu blocked-ell: values in the empty slot %lld of block row %lld",
                                             (long long)n, (long long)bi);
                continue;
            }
            if (bj >= kb || (n > 0 && (b->col_ind[bi * slots + n - 1] < 0 || bj <= b->col_ind[bi * slots + n - 1])))
                return sgi_error(SG_ERR_FORMAT, "gpu blocked-ell: block column %d of block row %lld out of range or order",
                                 bj, (long long)bi);
            enum sg_status st = block_put(src, b->ell_cols, bs, bi, bj, a, b->rows, b->cols, "blocked-ell");
            if (st != SG_OK) return st;
        }
    return SG_OK;
}

void sg_gpu_bell_free(struct sg_gpu_bell *b) {
    if (!b) return;
    free(b->col_ind), free(b->val);
    memset(b, 0, sizeof *b);
}

/* ---- 2:4 ---- */
enum sg_status sg_gpu_24_encode(const float *a, const uint8_t *am, int64_t rows, int64_t cols,
                                struct sg_gpu_24 *out) {
    memset(out, 0, sizeof *out);
    enum sg_status st = check_dims(rows, cols, 1);
    if (st != SG_OK) return st;
    const int64_t cp = (cols + 7) / 8 * 8, groups = cp / 4;
    out->rows = rows, out->cols = cols, out->cols_p = cp;
    out->val = sgi_zalloc((size_t)rows * (size_t)(cp / 2) + 1, sizeof *out->val);
    out->meta = sgi_zalloc((size_t)rows * (size_t)(cp / 8) + 1, 1);
    if (!out->val || !out->meta) {
        sg_gpu_24_free(out);
        return sgi_error(SG_ERR_NOMEM, "gpu 2:4: out of memory for %lld x %lld", (long long)rows, (long long)cols);
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t g = 0; g < groups; g++) {
            int pos[4], n = 0;
            for (int j = 0; j < 4; j++) {
                const int64_t c = g * 4 + j;
                if (c < cols && kept_at(a, am, (size_t)(i * cols + c))) {
                    if (n == 2) {
                        sg_gpu_24_free(out);
                        return sgi_error(SG_ERR_ARG, "not 2:4: row %lld keeps more than 2 of columns %lld..%lld",
                                         (long long)i, (long long)(g * 4), (long long)(g * 4 + 3));
                    }
                    pos[n++] = j;
                }
            }
            /* fill up to two distinct ascending positions with zeros */
            if (n == 0) pos[0] = 0, pos[1] = 1;
            else if (n == 1) {
                if (pos[0] == 3) pos[1] = 3, pos[0] = 2;
                else pos[1] = pos[0] + 1;
            }
            float *v = out->val + i * (cp / 2) + g * 2;
            for (int e = 0; e < 2; e++) {
                const int64_t c = g * 4 + pos[e];
                v[e] = c < cols && kept_at(a, am, (size_t)(i * cols + c)) ? a[i * cols + c] : 0.0f;
            }
            const uint8_t nib = (uint8_t)(pos[0] | pos[1] << 2);
            out->meta[i * (cp / 8) + g / 2] |= (uint8_t)(g & 1 ? nib << 4 : nib);
        }
    return SG_OK;
}

enum sg_status sg_gpu_24_decode(const struct sg_gpu_24 *s, float *a) {
    if (s->cols_p % 8 || s->cols_p < s->cols || s->cols_p > s->cols + 7)
        return sgi_error(SG_ERR_FORMAT, "gpu 2:4: padded width %lld for %lld columns", (long long)s->cols_p,
                         (long long)s->cols);
    const int64_t cp = s->cols_p;
    memset(a, 0, (size_t)s->rows * (size_t)s->cols * sizeof *a);
    for (int64_t i = 0; i < s->rows; i++)
        for (int64_t g = 0; g < cp / 4; g++) {
            const uint8_t m = s->meta[i * (cp / 8) + g / 2], nib = g & 1 ? m >> 4 : m & 15;
            const int p0 = nib & 3, p1 = nib >> 2;
            if (p0 >= p1)
                return sgi_error(SG_ERR_FORMAT, "gpu 2:4: positions %d, %d of row %lld group %lld not ascending", p0,
                                 p1, (long long)i, (long long)g);
            const float *v = s->val + i * (cp / 2) + g * 2;
            const int p[2] = {p0, p1};
            for (int e = 0; e < 2; e++) {
                const int64_t c = g * 4 + p[e];
                if (c < s->cols) a[i * s->cols + c] = v[e];
                else if (v[e] != 0.0f)
                    return sgi_error(SG_ERR_FORMAT, "gpu 2:4: non-zero padding in row %lld", (long long)i);
            }
        }
    return SG_OK;
}

void sg_gpu_24_free(struct sg_gpu_24 *s) {
    if (!s) return;
    free(s->val), free(s->meta);
    memset(s, 0, sizeof *s);
}

/* ---- thinned dense ---- */
enum sg_status sg_gpu_thin_encode(const float *a, const uint8_t *am, int64_t k, int64_t rs, int64_t cpad,
                                  int by_rows, struct sg_gpu_thin *out) {
    memset(out, 0, sizeof *out);
    const int64_t cols = rs * cpad;
    enum sg_status st = check_dims(k, cols, 1);
    if (st != SG_OK) return st;
    if (rs < 1 || cpad < 1) return sgi_error(SG_ERR_ARG, "gpu thin: rs %lld, cpad %lld", (long long)rs, (long long)cpad);
    out->rows = k, out->cols = cols, out->rs = rs, out->cpad = cpad;
    out->row_idx = sgi_alloc((size_t)k + 1, sizeof *out->row_idx);
    out->ch_idx = sgi_alloc((size_t)cpad + 1, sizeof *out->ch_idx);
    if (!out->row_idx || !out->ch_idx) goto nomem;
    for (int64_t i = 0; i < k; i++) {
        int live = !by_rows;
        for (int64_t j = 0; j < cols && !live; j++) live = kept_at(a, am, (size_t)(i * cols + j));
        if (live) out->row_idx[out->keep_rows++] = (int32_t)i;
    }
    for (int64_t c = 0; c < cpad; c++) {
        int live = by_rows;
        for (int64_t i = 0; i < k && !live; i++)
            for (int64_t j = 0; j < rs && !live; j++) live = kept_at(a, am, (size_t)(i * cols + j * cpad + c));
        if (live) out->ch_idx[out->keep_ch++] = (int32_t)c;
    }
    out->val = sgi_alloc((size_t)out->keep_rows * (size_t)(rs * out->keep_ch) + 1, sizeof *out->val);
    if (!out->val) goto nomem;
    for (int64_t i = 0; i < out->keep_rows; i++)
        for (int64_t j = 0; j < rs; j++)
            for (int64_t c = 0; c < out->keep_ch; c++) {
                const size_t src = (size_t)(out->row_idx[i] * cols + j * cpad + out->ch_idx[c]);
                out->val[(i * rs + j) * out->keep_ch + c] = kept_at(a, am, src) ? a[src] : 0.0f;
            }
    return SG_OK;
nomem:
    sg_gpu_thin_free(out);
    return sgi_error(SG_ERR_NOMEM, "gpu thin: out of memory for %lld x %lld", (long long)k, (long long)cols);
}

enum sg_status sg_gpu_thin_decode(const struct sg_gpu_thin *t, float *a) {
    if (t->keep_rows < 0 || t->keep_rows > t->rows || t->keep_ch < 0 || t->keep_ch > t->cpad ||
        t->cols != t->rs * t->cpad)
        return sgi_error(SG_ERR_FORMAT, "gpu thin: kept counts outside the matrix");
    memset(a, 0, (size_t)t->rows * (size_t)t->cols * sizeof *a);
    for (int64_t i = 0; i < t->keep_rows; i++) {
        const int32_t r = t->row_idx[i];
        if (r < 0 || r >= t->rows || (i && r <= t->row_idx[i - 1]))
            return sgi_error(SG_ERR_FORMAT, "gpu thin: filter index %d out of range or order", r);
    }
    for (int64_t c = 0; c < t->keep_ch; c++) {
        const int32_t ch = t->ch_idx[c];
        if (ch < 0 || ch >= t->cpad || (c && ch <= t->ch_idx[c - 1]))
            return sgi_error(SG_ERR_FORMAT, "gpu thin: channel index %d out of range or order", ch);
    }
    for (int64_t i = 0; i < t->keep_rows; i++)
        for (int64_t j = 0; j < t->rs; j++)
            for (int64_t c = 0; c < t->keep_ch; c++)
                a[t->row_idx[i] * t->cols + j * t->cpad + t->ch_idx[c]] = t->val[(i * t->rs + j) * t->keep_ch + c];
    return SG_OK;
}

void sg_gpu_thin_free(struct sg_gpu_thin *t) {
    if (!t) return;
    free(t->row_idx), free(t->ch_idx), free(t->val);
    memset(t, 0, sizeof *t);
}

#ifndef SG_CUDA
enum sg_status sg_gpu_available(char *name, size_t cap) {
    if (name && cap) name[0] = 0;
    return sgi_error(SG_ERR_UNSUPPORTED, "this build of sparsegrain has no GPU part; build it with 'make CUDA=1' "
                                         "(needs nvcc, cuBLAS, cuSPARSE and cuDNN; docs/gpu.md)");
}
enum sg_status sg_gpu_bench_open(const struct sg_gpu_bench_cfg *cfg, struct sg_gpu_bench **out) {
    *out = NULL;
    return sg_gpu_available(NULL, 0);
}
void sg_gpu_bench_close(struct sg_gpu_bench *b) {}
const char *sg_gpu_bench_device(const struct sg_gpu_bench *b) { return ""; }
const char *sg_gpu_bench_libs(const struct sg_gpu_bench *b) { return ""; }
double sg_gpu_bench_peak(const struct sg_gpu_bench *b) { return 0; }
enum sg_status sg_gpu_bench_layer(struct sg_gpu_bench *b, const struct sg_gpu_shape *g) {
    return sg_gpu_available(NULL, 0);
}
enum sg_status sg_gpu_bench_run(struct sg_gpu_bench *b, const struct sg_gpu_op *op, struct sg_gpu_result *r) {
    return sg_gpu_available(NULL, 0);
}
#endif
