/* Compressed sparse rows: csr (rows = filters, columns = C*R*S weights) and
 * bcsr (rows = tile rows along K, columns = tiles along C, R, S in row-major
 * order; a stored block holds all its weights, pruned ones as the reserved
 * code). Layout: the stored count (64 bits), one row end per row of
 * bits_for(count) bits (row 0 starts at 0), then per stored entry its column of
 * bits_for(columns - 1) bits followed by its value slots. With 1x1x1x1 tiles
 * bcsr is byte for byte csr. */
#include "storage_int.h"

static void csr_like_size(int64_t rows, int64_t cols, int64_t stored, int64_t slots, int vbits,
                          struct sg_size *sz) {
    sz->values = slots;
    sz->entries = stored;
    sz->value_bits = slots * vbits;
    sz->index_bits = stored * sgi_bits_for((uint64_t)(cols - 1));
    sz->meta_bits = 64 + rows * sgi_bits_for((uint64_t)stored);
}

/* Reads the count and the row ends into ends[rows] (NULL: check only). */
static enum sg_status read_rows(struct sgi_br *r, int64_t rows, int64_t max_stored,
                                int64_t min_entry_bits, uint64_t *count, uint64_t *ends) {
    if (sgi_br_left(r) < 64) return sgi_error(SG_ERR_FORMAT, "truncated before the count");
    *count = sgi_br_get64(r, 64);
    if (*count > (uint64_t)max_stored)
        return sgi_error(SG_ERR_FORMAT, "%llu entries for %lld positions",
                         (unsigned long long)*count, (long long)max_stored);
    const int pw = sgi_bits_for(*count);
    const uint64_t need = (uint64_t)rows * pw + *count * (uint64_t)min_entry_bits;
    if (need > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated: %llu bits needed, %llu left",
                         (unsigned long long)need, (unsigned long long)sgi_br_left(r));
    uint64_t prev = 0;
    for (int64_t i = 0; i < rows; i++) {
        const uint64_t e = sgi_br_get64(r, pw);
        if (e < prev || e > *count)
            return sgi_error(SG_ERR_FORMAT, "row %lld ends at entry %llu (previous row at %llu, "
                             "%llu entries)", (long long)i, (unsigned long long)e,
                             (unsigned long long)prev, (unsigned long long)*count);
        if (ends) ends[i] = e;
        prev = e;
    }
    if (prev != *count)
        return sgi_error(SG_ERR_FORMAT, "the last row ends at entry %llu of %llu",
                         (unsigned long long)prev, (unsigned long long)*count);
    return SG_OK;
}

/* ---- csr ---- */
static enum sg_status csr_size(const struct sgi_layer *L, struct sg_size *sz) {
    const uint8_t *m = L->v->mask;
    int64_t nnz = 0;
    SGI_FOR_KEPT(m, L->n, i, (void)i, nnz++);
    csr_like_size(L->k, L->c * L->r * L->s, nnz, nnz, L->vc.bits, sz);
    return SG_OK;
}

static enum sg_status csr_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                 struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    const int64_t cols = L->c * L->r * L->s;
    const int pw = sgi_bits_for((uint64_t)sz->entries), cw = sgi_bits_for((uint64_t)(cols - 1));
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t end = 0;
    for (int64_t k = 0; k < L->k; k++) {
        const uint8_t *row = m + k * cols;
        SGI_FOR_KEPT(row, cols, j, (void)j, end++);
        sgi_bw_put64(w, (uint64_t)end, pw);
    }
    for (int64_t k = 0; k < L->k; k++) {
        const uint8_t *row = m + k * cols;
        SGI_FOR_KEPT(row, cols, j, {
            sgi_bw_put64(w, (uint64_t)j, cw);
            sgi_bw_put(w, sgi_vc_code(&L->vc, x[k * cols + j]), L->vc.bits);
        });
    }
    *wp = wl;
    return SG_OK;
}

static enum sg_status csr_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                 uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    const int64_t cols = L->c * L->r * L->s;
    const int cw = sgi_bits_for((uint64_t)(cols - 1));
    uint64_t count, *ends = sgi_alloc((size_t)L->k, sizeof *ends);
    if (!ends) return SG_ERR_NOMEM;
    enum sg_status st = read_rows(r, L->k, L->n, cw + L->vc.bits, &count, ends);
    uint64_t e = 0;
    for (int64_t k = 0; st == SG_OK && k < L->k; k++) {
        uint64_t prev = 0;
        for (uint64_t first = e; e < ends[k]; e++) {
            const uint64_t j = sgi_br_get64(r, cw);
            const uint32_t code = sgi_br_get(r, L->vc.bits);
            /* columns strictly increase within a row: no weight is stored twice */
            if (j >= (uint64_t)cols || (e > first && j <= prev)) {
                st = sgi_error(SG_ERR_FORMAT, "row %lld: column %llu (previous %llu, %lld columns)",
                               (long long)k, (unsigned long long)j, (unsigned long long)prev,
                               (long long)cols);
                break;
            }
            if (code == L->vc.reserved) {
                st = sgi_error(SG_ERR_FORMAT, "row %lld column %llu holds the pruned code",
                               (long long)k, (unsigned long long)j);
                break;
            }
            sgi_store(&L->vc, w, mask, k * cols + (int64_t)j, code);
            prev = j;
        }
    }
    free(ends);
    *rp = rl;
    return st;
}

const struct sgi_format_ops sgi_format_csr = {
    "csr", "CSR: rows = filters, row ends + absolute column index per kept weight", 0,
    csr_size, csr_encode, csr_decode,
};

/* ---- bcsr: struct sgi_grid units; unit u = row * columns + column ---- */
/* 1x1x1x1 blocks: the bcsr stream is the csr stream, so take the fast path. */
static int fine_tile(const struct sgi_layer *L) {
    return !sgi_storage_generic && L->tile[0] == 1 && L->tile[1] == 1 && L->tile[2] == 1 &&
           L->tile[3] == 1;
}

static enum sg_status bcsr_size(const struct sgi_layer *L, struct sg_size *sz) {
    if (fine_tile(L)) return csr_size(L, sz);
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    int64_t nb = 0, slots = 0;
    SGI_GRID_FOR(&g, u, off, e, {
        if (sgi_unit_any(&g, L->v->mask, off, e)) {
            nb++;
            slots += e[0] * e[1] * e[2] * e[3];
        }
    });
    csr_like_size(g.nt[0], g.units / g.nt[0], nb, slots, L->vc.bits, sz);
    return SG_OK;
}

static enum sg_status bcsr_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                  struct sgi_bw *wp) {
    if (fine_tile(L)) return csr_encode(L, sz, wp);
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    const int64_t rows = g.nt[0], cols = g.units / rows;
    const int pw = sgi_bits_for((uint64_t)sz->entries), cw = sgi_bits_for((uint64_t)(cols - 1));
    int64_t *ends = sgi_zalloc((size_t)rows, sizeof *ends);
    if (!ends) return SG_ERR_NOMEM;
    SGI_GRID_FOR(&g, u, off, e, { ends[u / cols] += sgi_unit_any(&g, L->v->mask, off, e); });
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    for (int64_t i = 0, end = 0; i < rows; i++) {
        end += ends[i];
        sgi_bw_put64(w, (uint64_t)end, pw);
    }
    free(ends);
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    SGI_GRID_FOR(&g, u, off, e, {
        if (sgi_unit_any(&g, m, off, e)) {
            sgi_bw_put64(w, (uint64_t)(u % cols), cw);
            SGI_TILE_SEGS(&g, off, e, at, len, {
                for (int64_t i = at; i < at + len; i++)
                    sgi_bw_put(w, sgi_vc_slot(&L->vc, m[i], x[i]), L->vc.bits);
            });
        }
    });
    *wp = wl;
    return SG_OK;
}

static enum sg_status bcsr_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                  uint8_t *mask) {
    if (fine_tile(L)) return csr_decode(L, rp, w, mask);
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    const int64_t rows = g.nt[0], cols = g.units / rows;
    const int cw = sgi_bits_for((uint64_t)(cols - 1));
    uint64_t count, *ends = sgi_alloc((size_t)rows, sizeof *ends);
    if (!ends) return SG_ERR_NOMEM;
    enum sg_status st = read_rows(r, rows, g.units, cw + L->vc.bits, &count, ends);
    uint64_t e = 0;
    for (int64_t i = 0; st == SG_OK && i < rows; i++) {
        uint64_t prev = 0;
        for (uint64_t first = e; e < ends[i] && st == SG_OK; e++) {
            const uint64_t j = sgi_br_get64(r, cw);
            if (j >= (uint64_t)cols || (e > first && j <= prev)) {
                st = sgi_error(SG_ERR_FORMAT, "block row %lld: column %llu (previous %llu, %lld "
                               "columns)", (long long)i, (unsigned long long)j,
                               (unsigned long long)prev, (long long)cols);
                break;
            }
            prev = j;
            int64_t off, ext[4];
            sgi_grid_unit(&g, i * cols + (int64_t)j, &off, ext);
            if ((uint64_t)(ext[0] * ext[1] * ext[2] * ext[3]) * (uint64_t)L->vc.bits >
                sgi_br_left(r)) {
                st = sgi_error(SG_ERR_FORMAT, "truncated in block %llu", (unsigned long long)e);
                break;
            }
            SGI_TILE_SEGS(&g, off, ext, at, len, {
                for (int64_t x = at; x < at + len; x++)
                    sgi_store(&L->vc, w, mask, x, sgi_br_get(r, L->vc.bits));
            });
        }
    }
    free(ends);
    *rp = rl;
    return st;
}

const struct sgi_format_ops sgi_format_bcsr = {
    "bcsr", "block CSR: the tile is the block; row ends + block column + block values", 0,
    bcsr_size, bcsr_encode, bcsr_decode,
};
