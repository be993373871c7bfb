/* Zero-run formats: relidx (Deep Compression), group (one run per kept tile)
 * and rle4 (SCNN's order). An entry is a b-bit run r (units skipped since the
 * previous entry) and the slots of the unit it lands on. A run longer than
 * L = 2^b - 1 first emits fillers: index L and reserved slots for the unit L
 * places ahead, so each filler advances L + 1 units and a run r needs
 * floor(r / 2^b) of them. Zeros after the last kept unit are implicit: the
 * stream starts with its entry count (64 bits). The decoder treats fillers like
 * any entry: their reserved slots decode as pruned. */
#include "storage_int.h"

static inline void put_entry(struct sgi_bw *w, int64_t run, int b, const struct sgi_vc *vc,
                             uint32_t code) {
    const int64_t lmax = ((int64_t)1 << b) - 1;
    while (run > lmax) {
        sgi_bw_put(w, (uint32_t)lmax, b);
        sgi_bw_put(w, vc->reserved, vc->bits);
        run -= lmax + 1;
    }
    sgi_bw_put(w, (uint32_t)run, b);
    sgi_bw_put(w, code, vc->bits);
}

/* Collects fillers per width for a run r of single-slot units. */
static inline void add_run(int64_t fill[17], int b_fixed, int64_t r) {
    if (b_fixed) {
        fill[b_fixed] += r >> b_fixed;
    } else {
        for (int b = 1; b <= 16; b++) fill[b] += r >> b;
    }
}

static void finish_single(const struct sgi_layer *L, int64_t kept, const int64_t fill[17],
                          struct sg_size *sz) {
    const int b = L->ib ? L->ib : sgi_runs_best(kept, kept, fill, fill, L->vc.bits);
    sgi_runs_size(kept, kept, fill[b], fill[b], b, L->vc.bits, sz);
}

/* Reads and checks the entry count; every entry needs at least b + min_slot bits. */
static enum sg_status read_count(const struct sgi_layer *L, struct sgi_br *r, int64_t units,
                                 int b, uint64_t *count) {
    if (sgi_br_left(r) < 64) return sgi_error(SG_ERR_FORMAT, "truncated before the entry count");
    *count = sgi_br_get64(r, 64);
    if (*count > (uint64_t)units)
        return sgi_error(SG_ERR_FORMAT, "%llu entries for %lld positions",
                         (unsigned long long)*count, (long long)units);
    if (*count * (uint64_t)(b + L->vc.bits) > sgi_br_left(r))
        return sgi_error(SG_ERR_FORMAT, "truncated: %llu entries need %llu bits, %llu left",
                         (unsigned long long)*count,
                         (unsigned long long)(*count * (uint64_t)(b + L->vc.bits)),
                         (unsigned long long)sgi_br_left(r));
    return SG_OK;
}

/* ---- relidx: units are weights in K x C x R x S order ---- */
static enum sg_status relidx_size(const struct sgi_layer *L, struct sg_size *sz) {
    const uint8_t *m = L->v->mask;
    int64_t kept = 0, fill[17] = {0}, next = 0;
    SGI_FOR_KEPT(m, L->n, i, {
        add_run(fill, L->ib, i - next);
        kept++;
        next = i + 1;
    });
    finish_single(L, kept, fill, sz);
    return SG_OK;
}

static enum sg_status relidx_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                    struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t next = 0;
    SGI_FOR_KEPT(m, L->n, i, {
        put_entry(w, i - next, L->ib, &L->vc, sgi_vc_code(&L->vc, x[i]));
        next = i + 1;
    });
    *wp = wl;
    return SG_OK;
}

static enum sg_status relidx_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                    uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    uint64_t count;
    enum sg_status st = read_count(L, r, L->n, L->ib, &count);
    if (st != SG_OK) return st;
    uint64_t pos = 0;
    for (uint64_t e = 0; e < count; e++) {
        pos += sgi_br_get(r, L->ib);
        if (pos >= (uint64_t)L->n)
            return sgi_error(SG_ERR_FORMAT, "entry %llu lands past the last weight",
                             (unsigned long long)e);
        sgi_store(&L->vc, w, mask, (int64_t)pos, sgi_br_get(r, L->vc.bits));
        pos++;
    }
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_relidx = {
    "relidx", "relative index (Deep Compression): b-bit zero run + value per kept weight", 1,
    relidx_size, relidx_encode, relidx_decode,
};

/* ---- rle4: SCNN's order. For each block of Kc filters (the last may be
 * shorter), for each input channel c, the Kc x R x S weights with k outermost.
 * Runs continue across blocks. ---- */
struct scnn {
    int64_t C, RS, K, kc;
    uint8_t *blk; /* the mask of one Kc x R x S block, gathered */
    int64_t *off; /* block position j -> offset from W[k0][c][0][0] */
};

static enum sg_status scnn_init(struct scnn *o, const struct sgi_layer *L) {
    o->C = L->c, o->RS = L->r * L->s, o->K = L->k, o->kc = L->kc;
    const int64_t n = o->kc * o->RS;
    o->blk = sgi_alloc((size_t)n, 1);
    o->off = sgi_alloc((size_t)n, sizeof *o->off);
    if (!o->blk || !o->off) {
        free(o->blk), free(o->off);
        return SG_ERR_NOMEM;
    }
    for (int64_t j = 0; j < n; j++) o->off[j] = (j / o->RS) * o->C * o->RS + j % o->RS;
    return SG_OK;
}

static void scnn_free(struct scnn *o) { free(o->blk), free(o->off); }

/* Runs the statements after (o, mask, q, flat) for every kept weight in SCNN
 * order, with q its position in that order and flat its K x C x R x S index.
 * Each block's mask is gathered first, so even fc layers (R = S = 1, where a
 * block is Kc bytes C apart) are scanned 8 mask bytes at a time. */
#define SCNN_FOR_KEPT(o, mask, q, flat, ...)                                               \
    do {                                                                               \
        int64_t q0_ = 0;                                                               \
        for (int64_t k0_ = 0; k0_ < (o)->K; k0_ += (o)->kc) {                          \
            const int64_t kcg_ = (o)->K - k0_ < (o)->kc ? (o)->K - k0_ : (o)->kc;      \
            const int64_t blen_ = kcg_ * (o)->RS, cstep_ = (o)->C * (o)->RS;            \
            for (int64_t c_ = 0; c_ < (o)->C; c_++, q0_ += blen_) {                    \
                const int64_t base_ = (k0_ * (o)->C + c_) * (o)->RS;                   \
                if ((o)->RS == 1)                                                      \
                    for (int64_t kl_ = 0; kl_ < kcg_; kl_++)                           \
                        (o)->blk[kl_] = (mask)[base_ + kl_ * cstep_];                  \
                else                                                                   \
                    for (int64_t kl_ = 0; kl_ < kcg_; kl_++)                           \
                        memcpy((o)->blk + kl_ * (o)->RS, (mask) + base_ + kl_ * cstep_, \
                               (size_t)(o)->RS);                                       \
                SGI_FOR_KEPT((o)->blk, blen_, j_, {                                    \
                    const int64_t q = q0_ + j_, flat = base_ + (o)->off[j_];           \
                    __VA_ARGS__;                                                       \
                });                                                                    \
            }                                                                          \
        }                                                                              \
    } while (0)

static enum sg_status rle4_size(const struct sgi_layer *L, struct sg_size *sz) {
    struct scnn o;
    if (scnn_init(&o, L) != SG_OK) return SG_ERR_NOMEM;
    int64_t kept = 0, fill[17] = {0}, next = 0;
    SCNN_FOR_KEPT(&o, L->v->mask, q, flat, {
        (void)flat;
        add_run(fill, L->ib, q - next);
        kept++;
        next = q + 1;
    });
    scnn_free(&o);
    finish_single(L, kept, fill, sz);
    return SG_OK;
}

static enum sg_status rle4_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                  struct sgi_bw *wp) {
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    struct scnn o;
    if (scnn_init(&o, L) != SG_OK) return SG_ERR_NOMEM;
    const float *x = L->v->w;
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t next = 0;
    SCNN_FOR_KEPT(&o, L->v->mask, q, flat, {
        put_entry(w, q - next, L->ib, &L->vc, sgi_vc_code(&L->vc, x[flat]));
        next = q + 1;
    });
    scnn_free(&o);
    *wp = wl;
    return SG_OK;
}

static enum sg_status rle4_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                  uint8_t *mask) {
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    uint64_t count;
    enum sg_status st = read_count(L, r, L->n, L->ib, &count);
    if (st != SG_OK) return st;
    struct scnn o;
    if (scnn_init(&o, L) != SG_OK) return SG_ERR_NOMEM;
    /* the block holding position pos: filters k0.., channel c, positions q0..q0+blen */
    int64_t k0 = 0, c = 0, q0 = 0, blen = (o.kc < o.K ? o.kc : o.K) * o.RS;
    uint64_t pos = 0;
    for (uint64_t e = 0; e < count; e++) {
        pos += sgi_br_get(r, L->ib);
        if (pos >= (uint64_t)L->n) {
            scnn_free(&o);
            return sgi_error(SG_ERR_FORMAT, "entry %llu lands past the last weight",
                             (unsigned long long)e);
        }
        while ((int64_t)pos >= q0 + blen) { /* positions only grow: blocks are passed once */
            q0 += blen;
            if (++c == o.C) {
                c = 0;
                k0 += o.kc;
                blen = (o.K - k0 < o.kc ? o.K - k0 : o.kc) * o.RS;
            }
        }
        const uint32_t code = sgi_br_get(r, L->vc.bits);
        sgi_store(&L->vc, w, mask, (k0 * o.C + c) * o.RS + o.off[(int64_t)pos - q0], code);
        pos++;
    }
    scnn_free(&o);
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_rle4 = {
    "rle4", "SCNN: zero runs (4 bits by default) over Kc x R x S blocks per input channel", 1,
    rle4_size, rle4_encode, rle4_decode,
};

/* ---- group: units are tiles (struct sgi_grid order); a kept tile stores all
 * its weights, pruned ones as the reserved code. With 1x1x1x1 tiles the stream
 * is byte for byte the relidx stream. ---- */
static int grid_uniform(const struct sgi_grid *g) {
    for (int d = 0; d < 4; d++)
        if (g->dim[d] % g->t[d]) return 0;
    return 1;
}

/* Slots of the fillers a run of r empty units after unit `next` needs at width b. */
static int64_t filler_slots(const struct sgi_grid *g, int uniform, int64_t next, int64_t r,
                            int b) {
    const int64_t nf = r >> b;
    if (uniform) return nf * (g->t[0] * g->t[1] * g->t[2] * g->t[3]);
    int64_t slots = 0;
    for (int64_t t = 1; t <= nf; t++) slots += sgi_grid_vol(g, next + (t << b) - 1);
    return slots;
}

/* 1x1x1x1 tiles: the group stream is the relidx stream, so take the fast path. */
static int fine_tile(const struct sgi_layer *L) {
    return !sgi_storage_generic && L->tile[0] == 1 && L->tile[1] == 1 && L->tile[2] == 1 &&
           L->tile[3] == 1;
}

static enum sg_status group_size(const struct sgi_layer *L, struct sg_size *sz) {
    if (fine_tile(L)) return relidx_size(L, sz);
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    const int uniform = grid_uniform(&g);
    const uint8_t *mask = L->v->mask;
    int64_t nk = 0, kvol = 0, fill[17] = {0}, fvol[17] = {0}, next = 0;
    SGI_GRID_FOR(&g, u, off, e, {
        if (sgi_unit_any(&g, mask, off, e)) {
            const int64_t r = u - next;
            for (int b = L->ib ? L->ib : 1; b <= (L->ib ? L->ib : 16); b++) {
                fill[b] += r >> b;
                fvol[b] += filler_slots(&g, uniform, next, r, b);
            }
            nk++;
            kvol += e[0] * e[1] * e[2] * e[3];
            next = u + 1;
        }
    });
    const int b = L->ib ? L->ib : sgi_runs_best(nk, kvol, fill, fvol, L->vc.bits);
    sgi_runs_size(nk, kvol, fill[b], fvol[b], b, L->vc.bits, sz);
    return SG_OK;
}

/* Writes the slots of the tile at off with extents e: pruned weights as the reserved code. */
static inline void put_tile(const struct sgi_layer *L, const struct sgi_grid *g, int64_t off,
                            const int64_t e[4], struct sgi_bw *w) {
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    SGI_TILE_SEGS(g, off, e, at, len, {
        for (int64_t i = at; i < at + len; i++)
            sgi_bw_put(w, sgi_vc_slot(&L->vc, m[i], x[i]), L->vc.bits);
    });
}

static enum sg_status group_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                   struct sgi_bw *wp) {
    if (fine_tile(L)) return relidx_encode(L, sz, wp);
    struct sgi_bw wl = *wp, *w = &wl; /* in registers: the output bytes may alias *wp */
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    const int b = L->ib;
    const int64_t lmax = ((int64_t)1 << b) - 1;
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t next = 0;
    SGI_GRID_FOR(&g, u, off, e, {
        if (sgi_unit_any(&g, L->v->mask, off, e)) {
            int64_t run = u - next;
            while (run > lmax) { /* a filler: index lmax + the tile it lands on, all pruned */
                sgi_bw_put(w, (uint32_t)lmax, b);
                const int64_t slots = sgi_grid_vol(&g, next + lmax);
                for (int64_t i = 0; i < slots; i++) sgi_bw_put(w, L->vc.reserved, L->vc.bits);
                run -= lmax + 1;
                next += lmax + 1;
            }
            sgi_bw_put(w, (uint32_t)run, b);
            put_tile(L, &g, off, e, w);
            next = u + 1;
        }
    });
    *wp = wl;
    return SG_OK;
}

static enum sg_status group_decode(const struct sgi_layer *L, struct sgi_br *rp, float *w,
                                   uint8_t *mask) {
    if (fine_tile(L)) return relidx_decode(L, rp, w, mask);
    struct sgi_br rl = *rp, *r = &rl; /* in registers: mask stores may alias *rp */
    struct sgi_grid g;
    sgi_grid_init(&g, L);
    uint64_t count;
    enum sg_status st = read_count(L, r, g.units, L->ib, &count);
    if (st != SG_OK) return st;
    uint64_t pos = 0;
    for (uint64_t e = 0; e < count && !r->bad; e++) {
        pos += sgi_br_get(r, L->ib);
        if (pos >= (uint64_t)g.units)
            return sgi_error(SG_ERR_FORMAT, "entry %llu lands past the last tile",
                             (unsigned long long)e);
        int64_t off, ext[4];
        sgi_grid_unit(&g, (int64_t)pos, &off, ext);
        if ((uint64_t)(ext[0] * ext[1] * ext[2] * ext[3]) * (uint64_t)L->vc.bits > sgi_br_left(r))
            return sgi_error(SG_ERR_FORMAT, "truncated in entry %llu", (unsigned long long)e);
        SGI_TILE_SEGS(&g, off, ext, at, len, {
            for (int64_t i = at; i < at + len; i++)
                sgi_store(&L->vc, w, mask, i, sgi_br_get(r, L->vc.bits));
        });
        pos++;
    }
    *rp = rl;
    return SG_OK;
}

const struct sgi_format_ops sgi_format_group = {
    "group", "coarse relative index: b-bit run of tiles + the tile's values per kept tile", 1,
    group_size, group_encode, group_decode,
};
