/* The SCNN simulator's layer plan, shared by the files that build it and run it
 * (src/sim/scnn_plan.c: tiles, activation and weight streams, kernel patterns;
 * src/sim/scnn.c: the PEs' loop nests and the layer; src/sim/scnn_values.c: the
 * layer's outputs on the vector steps and the output compression). Internal. */
#ifndef SPARSEGRAIN_SCNN_PLAN_H
#define SPARSEGRAIN_SCNN_PLAN_H

#include "sim/simi.h"

#if defined(__AVX512F__) && defined(__AVX512CD__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
#include <immintrin.h>
#define SCNN_SIMD 1
#else
#define SCNN_SIMD 0
#endif

struct sgi_scnn_act {
    int32_t hh, ww; /* input row + top pad, column + left pad */
    int32_t base;   /* stride 1: address part of the activation */
    float v;
};
struct sgi_scnn_wt {
    int32_t rr, ss; /* r * dil_h, s * dil_w */
    int32_t base;   /* stride 1: kk*area - rr*RW - ss */
    int32_t kbase;  /* kk*area */
    int32_t r;      /* kernel row (the row window's key) */
    int32_t went, ient; /* value and index entries of the stream charged to this weight
                         * (itself, fillers before it; --index group: its whole group) */
    float v;
};
struct sgi_scnn_pe {
    int h0, h1, w0, w1;     /* input tile */
    int p0, p1, q0, q1;     /* owned outputs */
    int rp0, rp1, rq0, rq1; /* accumulator region (bounding box) */
    int64_t halo_area;      /* reached outputs owned by another PE, per output channel */
};
struct sgi_scnn_plan {
    const struct sg_scnn_config *c;
    const struct sg_conv_geom *g;
    int npe, kc, ngroups, RH, RW, area;
    int kmode;                 /* row or kernel window: kernel-major loop, psum buffer */
    int dense;                 /* --arch dcnn */
    struct sgi_scnn_pe *pe;
    int64_t *aoff, *a_entries; /* per (pe, c) */
    int *maxnav;               /* per c: the most activation vectors of any PE */
    struct sgi_scnn_act *acts;
    int64_t *woff, *w_entries, *wi_entries, *voff; /* per (group, c) */
    struct sgi_scnn_wt *wts;
    int32_t *vstart;            /* vector starts relative to woff, nv + 1 per (group, c) */
    uint16_t *bank_of;          /* per address */
    /* the vector steps: per weight (parallel to wts) rr, ss, base, kbase */
    int32_t *w_rr, *w_ss, *w_base, *w_kb;
    int simd;  /* this layer takes the vector steps */
    int kbits; /* and counts the row/kernel windows from bitmaps */
    /* kbits: the distinct kernel patterns of each channel [pat_off[c], pat_off[c + 1]);
     * per stream (group, channel) the patterns it holds (relative to the channel's
     * first) and how often: ent_len[gc] entries from ent_off[gc] on */
    int64_t *pat_off, *ent_off; /* ent_off: start of each stream's list, ent_len its length */
    /* each pattern's weights (rr, ss, local base -rr RW - ss, kernel row) from
     * pat_w[p] on, and its vector starts (relative) from pat_vs[p] on, nvec pat_nv[p] */
    int32_t *c_rr, *c_ss, *c_lb, *c_r, *c_vs, *pat_w, *pat_vs, *pat_nv;
    int32_t *ent_len, *ent_pat, *ent_cnt;
    const float *x; /* the layer's input (the vector steps' values) */
};

/* Entries of a compressed stream: non-zeros plus fillers for zero runs that do not
 * fit the index (a run z needs z >> index_bits fillers; trailing zeros are free). */
struct runc {
    int64_t z, nnz, fill;
};
static inline void run_push(struct runc *r, int nonzero, int bits) {
    if (nonzero) {
        r->fill += r->z >> bits;
        r->z = 0;
        r->nnz++;
    } else {
        r->z++;
    }
}

/* The plan's parts, in the order sg_scnn_layer builds them (scnn_plan.c): the PE
 * tiles and accumulator regions, the group size, the activation streams (with
 * their counts in st), the weight streams, and (bitmap windows) the distinct
 * kernel patterns; sgi_scnn_plan_free frees whatever was built. */
enum sg_status sgi_scnn_plan_tiles(struct sgi_scnn_plan *pl);
enum sg_status sgi_scnn_choose_kc(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                  int RH, int RW, int *kc);
enum sg_status sgi_scnn_plan_acts(struct sgi_scnn_plan *pl, const float *x, struct sg_scnn_stats *st);
enum sg_status sgi_scnn_plan_weights(struct sgi_scnn_plan *pl, const float *w,
                                     struct sg_scnn_stats *st);
enum sg_status sgi_scnn_plan_patterns(struct sgi_scnn_plan *pl);
void sgi_scnn_plan_free(struct sgi_scnn_plan *pl);

#if SCNN_SIMD
/* y = the layer's outputs when the vector steps ran (they add no values): the
 * direct convolution, stride 1 (scnn_values.c). */
enum sg_status sgi_scnn_layer_values(const struct sg_conv_geom *g, const float *w, const float *x,
                                     float *y);
#endif
/* The output compression: each PE's owned outputs (after ReLU if asked) into st. */
enum sg_status sgi_scnn_count_outputs(const struct sgi_scnn_plan *pl, const float *y,
                                      struct sg_scnn_stats *st);

#endif
