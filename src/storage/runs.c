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
                                    struct sgi_bw *w) {
    const uint8_t *m = L->v->mask;
    const float *x = L->v->w;
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t next = 0;
    SGI_FOR_KEPT(m, L->n, i, {
        put_entry(w, i - next, L->ib, &L->vc, sgi_vc_code(&L->vc, x[i]));
        next = i + 1;
    });
    return SG_OK;
}

static enum sg_status relidx_decode(const struct sgi_layer *L, struct sgi_br *r, float *w,
                                    uint8_t *mask) {
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
    return SG_OK;
}

const struct sgi_format_ops sgi_format_relidx = {
    "relidx", "relative index (Deep Compression): b-bit zero run + value per kept weight", 1,
    relidx_size, relidx_encode, relidx_decode,
};

/* ---- rle4: SCNN's order. For each block of Kc filters (the last may be
 * shorter), for each input channel c, the Kc x R x S weights with k outermost.
 * Runs continue across blocks. ---- */
struct scnn_order {
    int64_t C, RS, K, kc;
};

/* Flat K x C x R x S index of position q in SCNN order. */
static inline int64_t scnn_flat(const struct scnn_order *o, int64_t q) {
    const int64_t full = o->kc * o->C * o->RS; /* positions in a full block of filters */
    const int64_t kg = q / full, rem = q - kg * full;
    const int64_t kcg = o->K - kg * o->kc < o->kc ? o->K - kg * o->kc : o->kc;
    const int64_t c = rem / (kcg * o->RS), rem2 = rem - c * kcg * o->RS;
    const int64_t kl = rem2 / o->RS, rs = rem2 - kl * o->RS;
    return ((kg * o->kc + kl) * o->C + c) * o->RS + rs;
}

/* Runs BODY for every kept weight in SCNN order, with q its position in that
 * order and flat its K x C x R x S index. */
#define SCNN_FOR_KEPT(L, q, flat, BODY)                                                    \
    do {                                                                               \
        const int64_t RS_ = (L)->r * (L)->s, C_ = (L)->c, K_ = (L)->k, KC_ = (L)->kc;     \
        const uint8_t *m_ = (L)->v->mask;                                              \
        int64_t q0_ = 0;                                                               \
        for (int64_t k0_ = 0; k0_ < K_; k0_ += KC_) {                                  \
            const int64_t k1_ = k0_ + KC_ < K_ ? k0_ + KC_ : K_;                       \
            for (int64_t c_ = 0; c_ < C_; c_++)                                        \
                for (int64_t k_ = k0_; k_ < k1_; k_++, q0_ += RS_) {                   \
                    const int64_t base_ = (k_ * C_ + c_) * RS_;                        \
                    SGI_FOR_KEPT(m_ + base_, RS_, j_, {                                \
                        const int64_t q = q0_ + j_, flat = base_ + j_;                 \
                        BODY;                                                          \
                    });                                                                \
                }                                                                      \
        }                                                                              \
    } while (0)

static enum sg_status rle4_size(const struct sgi_layer *L, struct sg_size *sz) {
    int64_t kept = 0, fill[17] = {0}, next = 0;
    SCNN_FOR_KEPT(L, q, flat, {
        (void)flat;
        add_run(fill, L->ib, q - next);
        kept++;
        next = q + 1;
    });
    finish_single(L, kept, fill, sz);
    return SG_OK;
}

static enum sg_status rle4_encode(const struct sgi_layer *L, const struct sg_size *sz,
                                  struct sgi_bw *w) {
    const float *x = L->v->w;
    sgi_bw_put64(w, (uint64_t)sz->entries, 64);
    int64_t next = 0;
    SCNN_FOR_KEPT(L, q, flat, {
        put_entry(w, q - next, L->ib, &L->vc, sgi_vc_code(&L->vc, x[flat]));
        next = q + 1;
    });
    return SG_OK;
}

static enum sg_status rle4_decode(const struct sgi_layer *L, struct sgi_br *r, float *w,
                                  uint8_t *mask) {
    uint64_t count;
    enum sg_status st = read_count(L, r, L->n, L->ib, &count);
    if (st != SG_OK) return st;
    const struct scnn_order o = {L->c, L->r * L->s, L->k, L->kc};
    uint64_t pos = 0;
    for (uint64_t e = 0; e < count; e++) {
        pos += sgi_br_get(r, L->ib);
        if (pos >= (uint64_t)L->n)
            return sgi_error(SG_ERR_FORMAT, "entry %llu lands past the last weight",
                             (unsigned long long)e);
        const uint32_t code = sgi_br_get(r, L->vc.bits);
        if (w) sgi_store(&L->vc, w, mask, scnn_flat(&o, (int64_t)pos), code);
        pos++;
    }
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

static enum sg_status group_size(const struct sgi_layer *L, struct sg_size *sz) {
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
                                   struct sgi_bw *w) {
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
    return SG_OK;
}

static enum sg_status group_decode(const struct sgi_layer *L, struct sgi_br *r, float *w,
                                   uint8_t *mask) {
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
    return SG_OK;
}

const struct sgi_format_ops sgi_format_group = {
    "group", "coarse relative index: b-bit run of tiles + the tile's values per kept tile", 1,
    group_size, group_encode, group_decode,
};
