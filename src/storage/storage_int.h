/* Internals of the storage module: bit writer and reader, value coder, the
 * resolved per-layer context and the table of format operations. */
#ifndef SPARSEGRAIN_STORAGE_INT_H
#define SPARSEGRAIN_STORAGE_INT_H

#include "core/sgi.h"
#include "sparsegrain/storage.h"

/* ---- bit writer: LSB first, 64-bit accumulator, 32 bits stored at a time ---- */
struct sgi_bw {
    uint8_t *p, *end; /* next byte to store, end of the buffer */
    uint64_t acc;     /* pending bits, the oldest in bit 0 */
    int n;            /* pending bit count, < 32 between calls */
};

static inline void sgi_bw_init(struct sgi_bw *w, uint8_t *p, uint8_t *end) {
    w->p = p;
    w->end = end;
    w->acc = 0;
    w->n = 0;
}

/* Appends the low nb bits of v (0 <= nb <= 32; v must fit). */
static inline void sgi_bw_put(struct sgi_bw *w, uint32_t v, int nb) {
    w->acc |= (uint64_t)v << w->n;
    w->n += nb;
    if (w->n >= 32) {
        /* The size pass fixed the buffer length; running past it is a bug. */
        SG_ASSERT(w->end - w->p >= 4);
        const uint32_t lo = (uint32_t)w->acc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(w->p, &lo, 4);
#else
        w->p[0] = (uint8_t)lo, w->p[1] = (uint8_t)(lo >> 8);
        w->p[2] = (uint8_t)(lo >> 16), w->p[3] = (uint8_t)(lo >> 24);
#endif
        w->p += 4;
        w->acc >>= 32;
        w->n -= 32;
    }
}

/* Fields up to 64 bits (counts, pointers of wide layers). */
static inline void sgi_bw_put64(struct sgi_bw *w, uint64_t v, int nb) {
    if (nb <= 32) {
        sgi_bw_put(w, (uint32_t)v, nb);
    } else {
        sgi_bw_put(w, (uint32_t)v, 32);
        sgi_bw_put(w, (uint32_t)(v >> 32), nb - 32);
    }
}

/* Stores the pending bits, zero-padded to a whole byte. */
static inline void sgi_bw_flush(struct sgi_bw *w) {
    while (w->n > 0) {
        SG_ASSERT(w->p < w->end);
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
}

/* ---- bit reader over untrusted bytes: never reads outside [base, end) ---- */
struct sgi_br {
    const uint8_t *base, *p, *end;
    uint64_t acc; /* bits [0, n) are the next ones; bits above n repeat bytes at p */
    int n;
    int bad; /* sticky: a read went past the end (the value read is garbage) */
};

static inline void sgi_br_init(struct sgi_br *r, const uint8_t *p, size_t len) {
    r->base = r->p = p;
    r->end = p + len;
    r->acc = 0;
    r->n = 0;
    r->bad = 0;
}

static inline void sgi_br_refill(struct sgi_br *r) {
    if (r->end - r->p >= 8) { /* branch-free refill to 56..63 bits */
        r->acc |= sgi_ld64(r->p) << r->n;
        r->p += (63 - r->n) >> 3;
        r->n |= 56;
    } else {
        while (r->n <= 56 && r->p < r->end) {
            r->acc |= (uint64_t)*r->p++ << r->n;
            r->n += 8;
        }
    }
}

/* Reads nb bits (0 <= nb <= 32). */
static inline uint32_t sgi_br_get(struct sgi_br *r, int nb) {
    if (r->n < nb) {
        sgi_br_refill(r);
        if (SGI_UNLIKELY(r->n < nb)) {
            r->bad = 1;
            r->acc = 0;
            r->n = nb;
        }
    }
    const uint32_t v = (uint32_t)(r->acc & ((1ull << nb) - 1));
    r->acc >>= nb;
    r->n -= nb;
    return v;
}

static inline uint64_t sgi_br_get64(struct sgi_br *r, int nb) {
    if (nb <= 32) return sgi_br_get(r, nb);
    const uint64_t lo = sgi_br_get(r, 32);
    return lo | (uint64_t)sgi_br_get(r, nb - 32) << 32;
}

/* Bits consumed so far, and bits left in the buffer. */
static inline uint64_t sgi_br_pos(const struct sgi_br *r) {
    return (uint64_t)(r->p - r->base) * 8 - (uint64_t)r->n;
}
static inline uint64_t sgi_br_left(const struct sgi_br *r) {
    return (uint64_t)(r->end - r->base) * 8 - sgi_br_pos(r);
}

/* Bits needed to write every value in [0, x]: 0 for 0, else floor(log2 x) + 1. */
static inline int sgi_bits_for(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* Index of the first non-zero byte of m[i, n), or n: skips 8 pruned weights at a time. */
static inline int64_t sgi_next_kept(const uint8_t *m, int64_t i, int64_t n) {
    while (i < n && (i & 7)) {
        if (m[i]) return i;
        i++;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, m + i, 8);
        if (x) return i + (__builtin_ctzll(x) >> 3);
        i += 8;
    }
#endif
    while (i < n && !m[i]) i++;
    return i;
}

/* Runs the statements after (m, n, i) with i = the index of every non-zero byte
 * of m[0, n), in order; eight mask bytes at a time, so a sparse mask costs one
 * branch per kept weight rather than one per weight. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SGI_FOR_KEPT(m, n, i, ...)                                                         \
    do {                                                                               \
        const uint8_t *fkm_ = (m);                                                       \
        const int64_t fkn_ = (n);                                                        \
        int64_t fkb_ = 0;                                                                \
        for (; fkb_ + 8 <= fkn_; fkb_ += 8) {                                                \
            uint64_t fkx_;                                                               \
            memcpy(&fkx_, fkm_ + fkb_, 8);                                                   \
            /* bit 7 of each byte: set when the byte is non-zero */                    \
            uint64_t fknz_ = (((fkx_ & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full) | fkx_) & \
                           0x8080808080808080ull;                                      \
            while (fknz_) {                                                              \
                const int64_t i = fkb_ + (__builtin_ctzll(fknz_) >> 3);                    \
                fknz_ &= fknz_ - 1;                                                        \
                __VA_ARGS__;                                                           \
            }                                                                          \
        }                                                                              \
        for (; fkb_ < fkn_; fkb_++)                                                          \
            if (fkm_[fkb_]) {                                                              \
                const int64_t i = fkb_;                                                  \
                __VA_ARGS__;                                                           \
            }                                                                          \
    } while (0)
#else
#define SGI_FOR_KEPT(m, n, i, ...)                                                         \
    do {                                                                               \
        const uint8_t *fkm_ = (m);                                                       \
        for (int64_t i = 0; i < (n); i++)                                              \
            if (fkm_[i]) {                                                               \
                __VA_ARGS__;                                                           \
            }                                                                          \
    } while (0)
#endif

/* ---- value coder (quant.c) ---- */
struct sgi_vc {
    enum sg_values kind;
    int bits;          /* width of a value slot */
    uint32_t reserved; /* the "pruned" code: fillers and pruned slots of stored tiles */
    float scale;       /* q8: value = code * scale */
    int ncodes;        /* codebook: 2^k - 1 shared values */
    float *codebook;   /* ncodes values, sorted (encoder) or as read (decoder), then a 0
                          so the reserved code can be looked up without a branch */
    int64_t meta_bits; /* in the stream: q8 32, codebook 32 * ncodes */
};

/* Widths and the reserved code only (sizes, decoding before the metadata). */
enum sg_status sgi_vc_shape(struct sgi_vc *vc, const struct sg_storage_cfg *cfg);
/* Widths plus the scale or codebook fitted to the kept weights of v. */
enum sg_status sgi_vc_fit(struct sgi_vc *vc, const struct sg_wview *v,
                          const struct sg_storage_cfg *cfg);
void sgi_vc_free(struct sgi_vc *vc);
void sgi_vc_write_meta(const struct sgi_vc *vc, struct sgi_bw *w);
/* Reads the scale or codebook; checks they are finite. */
enum sg_status sgi_vc_read_meta(struct sgi_vc *vc, struct sgi_br *r, const char *what);
uint32_t sgi_vc_code_slow(const struct sgi_vc *vc, float x); /* q8 and codebook */

static inline uint32_t sgi_vc_code(const struct sgi_vc *vc, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    switch (vc->kind) {
    case SG_VALUES_F32:
        /* NaN payloads are not kept: the all-ones NaN is the reserved code */
        return (u & 0x7fffffffu) > 0x7f800000u ? 0x7fc00000u : u;
    case SG_VALUES_F16: {
        if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7e00u;
        return sg_f32_to_f16(x);
    }
    default: return sgi_vc_code_slow(vc, x);
    }
}

/* The value of a code other than the reserved one. */
static inline float sgi_vc_value(const struct sgi_vc *vc, uint32_t code) {
    switch (vc->kind) {
    case SG_VALUES_F32: {
        float f;
        memcpy(&f, &code, 4);
        return f;
    }
    case SG_VALUES_F16: return sg_f16_to_f32((uint16_t)code);
    case SG_VALUES_Q8: return (float)(int8_t)(uint8_t)code * vc->scale;
    default: return vc->codebook[code];
    }
}

/* ---- a layer with its configuration resolved ---- */
struct sgi_layer {
    const char *name;        /* for messages */
    const struct sg_wview *v; /* shape; w and mask when encoding */
    int64_t k, c, r, s, n;   /* n = k*c*r*s */
    struct sgi_vc vc;
    int ib;                  /* index width 1..16; 0 = choose in size (auto) */
    int64_t tile[4];         /* resolved: 1 <= tile[d] <= dim d */
    int64_t kc;              /* rle4 block height, 1..k */
    int nm_n, nm_m;
};

/* Tiles of W in row-major order of tile coordinates (tk, tc, tr, ts); a unit
 * is one tile, clipped at the tensor's far edges. */
struct sgi_grid {
    int64_t dim[4], t[4], nt[4]; /* tensor dims, tile extents, tiles per dim */
    int64_t units;
};
void sgi_grid_init(struct sgi_grid *g, const struct sgi_layer *L);
/* Weights in unit u. */
int64_t sgi_grid_vol(const struct sgi_grid *g, int64_t u);
/* First element and extents of unit u (the unit's rows are contiguous runs of
 * ext[3] weights at off + ((k*C + c)*R + r)*S for k, c, r below ext[0..2]). */
void sgi_grid_unit(const struct sgi_grid *g, int64_t u, int64_t *off, int64_t ext[4]);
/* Runs BODY for every unit in order, with u its index, off its first element and
 * e[4] its extents (no divisions: the hot loops of group and bcsr). */
#define SGI_GRID_FOR(g, u, off, e, BODY)                                                   \
    do {                                                                               \
        int64_t u = 0, e[4];                                                           \
        const int64_t C_ = (g)->dim[1], R_ = (g)->dim[2], S_ = (g)->dim[3];            \
        for (int64_t a_ = 0; a_ < (g)->nt[0]; a_++) {                                  \
            const int64_t k0_ = a_ * (g)->t[0];                                        \
            e[0] = (g)->dim[0] - k0_ < (g)->t[0] ? (g)->dim[0] - k0_ : (g)->t[0];      \
            for (int64_t b_ = 0; b_ < (g)->nt[1]; b_++) {                              \
                const int64_t c0_ = b_ * (g)->t[1];                                    \
                e[1] = C_ - c0_ < (g)->t[1] ? C_ - c0_ : (g)->t[1];                    \
                for (int64_t c_ = 0; c_ < (g)->nt[2]; c_++) {                          \
                    const int64_t r0_ = c_ * (g)->t[2];                                \
                    e[2] = R_ - r0_ < (g)->t[2] ? R_ - r0_ : (g)->t[2];                \
                    for (int64_t d_ = 0; d_ < (g)->nt[3]; d_++, u++) {                 \
                        const int64_t s0_ = d_ * (g)->t[3];                            \
                        e[3] = S_ - s0_ < (g)->t[3] ? S_ - s0_ : (g)->t[3];            \
                        const int64_t off = ((k0_ * C_ + c0_) * R_ + r0_) * S_ + s0_;  \
                        BODY;                                                          \
                    }                                                                  \
                }                                                                      \
            }                                                                          \
        }                                                                              \
    } while (0)

/* Runs the statements after (g, off, e, at, len) for each contiguous segment of
 * the tile at off with extents e, in K, C, R, S order: at is the segment's first
 * element, len its length. Dimensions the tile spans fully merge into longer
 * segments (a 1x1xRxS kernel is one segment of R*S). */
#define SGI_TILE_SEGS(g, off, e, at, len, ...)                                             \
    do {                                                                               \
        const int64_t tsC_ = (g)->dim[1], tsR_ = (g)->dim[2], tsS_ = (g)->dim[3];      \
        int64_t len = (e)[3], tsn0_ = (e)[0], tsn1_ = (e)[1], tsn2_ = (e)[2];          \
        if ((e)[3] == tsS_) {                                                          \
            len *= tsn2_, tsn2_ = 1;                                                   \
            if ((e)[2] == tsR_) {                                                      \
                len *= tsn1_, tsn1_ = 1;                                               \
                if ((e)[1] == tsC_) len *= tsn0_, tsn0_ = 1;                           \
            }                                                                          \
        }                                                                              \
        for (int64_t tsa_ = 0; tsa_ < tsn0_; tsa_++)                                   \
            for (int64_t tsb_ = 0; tsb_ < tsn1_; tsb_++)                               \
                for (int64_t tsc_ = 0; tsc_ < tsn2_; tsc_++) {                         \
                    const int64_t at = (off) + ((tsa_ * tsC_ + tsb_) * tsR_ + tsc_) * tsS_; \
                    __VA_ARGS__;                                                       \
                }                                                                      \
    } while (0)

/* 1 when some weight of the unit at off with extents e is kept. */
static inline int sgi_unit_any(const struct sgi_grid *g, const uint8_t *mask, int64_t off,
                               const int64_t e[4]) {
    SGI_TILE_SEGS(g, off, e, at, len, {
        if (sgi_next_kept(mask + at, 0, len) < len) return 1;
    });
    return 0;
}


/* Run formats (relidx, group, rle4): size for index width b, given the kept
 * units, their value slots, and fillers with their value slots. */
void sgi_runs_size(int64_t kept, int64_t kept_vol, int64_t fill, int64_t fill_vol, int b,
                   int vbits, struct sg_size *sz);
/* Fewest entry bits over b = 1..16 (ties: the smaller b). */
int sgi_runs_best(int64_t kept, int64_t kept_vol, const int64_t fill[17],
                  const int64_t fill_vol[17], int vbits);

/* Tests set this to 1 to run group and bcsr through their general tile code even
 * for 1x1x1x1 tiles (which otherwise take the relidx and csr paths that give the
 * same bytes). */
extern int sgi_storage_generic;

/* ---- the table of formats (formats.c), one entry per enum sg_format ---- */
struct sgi_format_ops {
    const char *name;
    const char *summary;
    int uses_index_bits; /* relidx, group, rle4 */
    /* Fills the format's part of the size (values, entries, fillers, value,
     * index, filler bits; meta_bits of its own fields) and index_width; when
     * L->ib == 0 it chooses the width. May fail (nm: mask not N:M). */
    enum sg_status (*size)(const struct sgi_layer *L, struct sg_size *sz);
    /* Writes the format's fields and entries after the value metadata; sz is
     * what size returned for L. */
    enum sg_status (*encode)(const struct sgi_layer *L, const struct sg_size *sz,
                             struct sgi_bw *w);
    /* Reads them; w and mask are zeroed by the caller, or both NULL (validate). */
    enum sg_status (*decode)(const struct sgi_layer *L, struct sgi_br *r, float *w,
                             uint8_t *mask);
};
extern const struct sgi_format_ops sgi_format_dense, sgi_format_relidx, sgi_format_group,
    sgi_format_csr, sgi_format_bitmap, sgi_format_rle4, sgi_format_nm, sgi_format_bcsr;

/* Stores a decoded slot: the reserved code means pruned (w and mask stay 0). */
static inline void sgi_store(const struct sgi_vc *vc, float *w, uint8_t *mask, int64_t at,
                             uint32_t code) {
    if (w) { /* without a branch on the (data-dependent) kept flag */
        const int keep = code != vc->reserved;
        const float v = sgi_vc_value(vc, code); /* the codebook has a 0 behind its end */
        w[at] = keep ? v : 0.0f;
        mask[at] = (uint8_t)keep;
    }
}

/* The slot of weight x under mask byte m: its code, or the reserved code. */
static inline uint32_t sgi_vc_slot(const struct sgi_vc *vc, uint8_t m, float x) {
    const uint32_t c = sgi_vc_code(vc, x);
    return m ? c : vc->reserved;
}

#endif
