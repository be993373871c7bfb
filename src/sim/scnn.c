/* The fast SCNN simulator: PT-IS-CP-sparse, one layer, one image.
 *
 * Plan (built once per layer, src/sim/scnn_plan.c): the input plane is split evenly over the PE grid,
 * the output plane likewise (a PE owns the outputs it will hold as the next
 * layer's input); each PE's accumulator region is the bounding box of the outputs
 * its inputs reach plus the outputs it owns, and every PE uses one layout RH x RW
 * per output channel (the largest region), so entry address = kk*RH*RW + row*RW +
 * col and bank = address mod A. Weights of each (channel group, input channel)
 * are one compressed stream in (k, r, s) order, cut into vectors of F non-zeros;
 * each PE's activations of a channel are one stream in row-major tile order, cut
 * into vectors of I. Then, per group and per PE, the loop nest of the paper:
 * input channel > activation vector > weight vector. Threads take whole groups
 * when there are many, else the PEs of one group; sums are folded in PE order
 * either way, so results do not depend on the thread count.
 * Three paths give the same counts (the tests compare each with ref.c): scalar
 * steps that add every product at its accumulator address; vector steps (AVX-512,
 * stride 1) whose bank loads come from conflict detection, with the layer's output
 * from a direct convolution (src/sim/scnn_values.c); and, for the row and kernel windows,
 * bitmap windows that count each distinct kernel pattern of a channel once per PE
 * (run_pe_kbits, PEs in parallel). docs/scnn-model.md defines every count;
 * src/sim/ref.c recomputes them slowly. */
#include "sim/scnn_plan.h"

/* 0 makes every layer take the scalar steps (the tests compare both paths). */
int sgi_scnn_simd = 1;
const int sgi_scnn_vector_build = SCNN_SIMD;

/* What one PE does for one group. */
struct pe_out {
    int64_t cycles, steps, stalls, products, formed, acc, merge_adds, wreads, wireads, areads,
        aireads, psum_reads, psum_writes, flush;
};
/* One kernel pattern's counts on one PE (bitmap windows): eight int64 in one
 * cache line, so a group's sum over its patterns is a short loop; psum reads and
 * writes and merge adds follow from products and window sums. */
enum { KP_CYCLES, KP_STALLS, KP_PRODUCTS, KP_FORMED, KP_SUMS, KP_FLUSH, KPAT_N = 8 };
struct kpat {
    union {
        struct {
            int64_t cycles, stalls, products, formed, sums, flush;
        };
        int64_t f[KPAT_N];
    };
};
struct scratch {
    uint32_t *stamp;      /* per address: last step that touched it (merged mode) */
    uint32_t *bank_stamp; /* per bank: last step that touched it */
    uint32_t *bank;       /* per bank: accesses in that step */
    uint32_t step;
    size_t n_stamp;
    /* row/kernel windows: per (kernel row,) local address, the window that last
     * touched it; the accumulator addresses of the window sums to flush */
    uint32_t *wstamp;
    int32_t *touched;
    uint32_t *flush_bank; /* per (kernel, bank): window sums flushed */
    uint32_t *flush_kmax; /* per kernel: the most of them in one bank */
    uint32_t win;
    size_t n_wstamp;
    struct vact *vacts; /* the vector steps: a channel's activation vectors */
    uint64_t *abits, *ubits; /* window bitmaps: per tile row, per region row */
    struct kpat *pst;        /* per distinct kernel pattern of a channel: its counts */
    struct rowmemo *memo; /* row window: per (kernel row, row pattern), this channel's */
    size_t n_memo;
    uint32_t memo_id;
};
/* The current activation vector, unpacked into locals that no store can alias, so
 * the compiler keeps them in registers across the scatter's stores. */
#define MAX_I 64
struct avec {
    int32_t hh[MAX_I], ww[MAX_I], base[MAX_I];
    double v[MAX_I];
    int n;
};

/* A <- the n activations at a (one activation vector). */
static inline void avec_fill(struct avec *A, const struct sgi_scnn_act *a, int n) {
    A->n = n;
    for (int i = 0; i < n; i++) {
        A->hh[i] = a[i].hh;
        A->ww[i] = a[i].ww;
        A->base[i] = a[i].base;
        A->v[i] = a[i].v;
    }
}

/* The accumulator address that activation i times a weight (at rr, ss, with base wb
 * and kbase kb) lands on, or -1 when the product falls outside the PE's outputs or
 * between strides. unit (stride 1) is a constant in each caller. */
static inline __attribute__((always_inline)) int32_t
out_addr(const struct avec *A, int i, int32_t rr, int32_t ss, int32_t wb, int32_t kb, uint32_t P,
         uint32_t Q, int sh, int sw, int RW, int rp0, int rq0, const int unit) {
    if (unit) {
        const int32_t p = A->hh[i] - rr, q = A->ww[i] - ss;
        if ((uint32_t)p >= P || (uint32_t)q >= Q) return -1;
        return A->base[i] + wb;
    }
    const int32_t pn = A->hh[i] - rr, qn = A->ww[i] - ss;
    if (pn < 0 || qn < 0 || pn % sh || qn % sw) return -1;
    const int32_t p = pn / sh, q = qn / sw;
    if ((uint32_t)p >= P || (uint32_t)q >= Q) return -1;
    return kb + (p - rp0) * RW + (q - rq0);
}

/* One multiplier-array step; unit and merged are constants in each caller, so the
 * compiler emits four specialised loops. Returns the step's cycles. Products are
 * visited weight by weight; the counts do not depend on the order. */
static inline __attribute__((always_inline)) int64_t
step(const struct sgi_scnn_plan *pl, const struct sgi_scnn_pe *t, const struct avec *A, const struct sgi_scnn_wt *wv,
     int nw, double *restrict acc, struct scratch *sc, struct pe_out *o, const int unit,
     const int merged, const int full4) {
    const uint32_t P = (uint32_t)pl->g->p, Q = (uint32_t)pl->g->q;
    const int sh = pl->g->sh, sw = pl->g->sw, RW = pl->RW, rp0 = t->rp0, rq0 = t->rq0;
    const uint16_t *restrict bank_of = pl->bank_of;
    uint32_t *restrict stamp = sc->stamp, *restrict bst = sc->bank_stamp, *restrict bcnt = sc->bank;
    uint32_t id = ++sc->step;
    if (id == 0) { /* wrapped: forget every stamp */
        memset(stamp, 0, sc->n_stamp * sizeof *stamp);
        memset(bst, 0, (size_t)pl->c->banks * sizeof *bst);
        id = sc->step = 1;
    }
    /* full4: a full 4 x 4 step (the default array), constant trip counts that the
     * compiler unrolls, so the loop branches cannot be mispredicted */
    const int na = full4 ? 4 : A->n;
    if (full4) nw = 4;
    uint32_t maxload = 0;
    int64_t valid = 0, distinct = 0;
    for (int j = 0; j < nw; j++) {
        const int32_t rr = wv[j].rr, ss = wv[j].ss, wb = wv[j].base, kb = wv[j].kbase;
        const double w = wv[j].v;
        for (int i = 0; i < na; i++) {
            const int32_t addr = out_addr(A, i, rr, ss, wb, kb, P, Q, sh, sw, RW, rp0, rq0, unit);
            if (addr < 0) continue;
            acc[addr] += A->v[i] * w;
            valid++;
            uint32_t fresh = 1; /* a new access to the banks */
            if (merged) {       /* masks, not branches: repeats are data */
                fresh = stamp[addr] != id;
                stamp[addr] = id;
                distinct += fresh;
            }
            const uint32_t b = bank_of[addr];
            const uint32_t l = (bcnt[b] & -(uint32_t)(bst[b] == id)) + fresh;
            bst[b] = id;
            bcnt[b] = l;
            maxload = l > maxload ? l : maxload;
        }
    }
    o->products += valid;
    o->formed += (int64_t)na * nw;
    o->acc += merged ? distinct : valid;
    if (merged) o->merge_adds += valid - distinct;
    return maxload > 1 ? (int64_t)maxload : 1;
}

/* One step of a kernel-major window (row or kernel): every product is added into
 * the partial-sum buffer (a write; plus a read when the window already holds a
 * sum for that output); the buffer has `banks` banks, bank = local address mod A.
 * A window's first product on an output appends its accumulator address to
 * sc->touched. Returns the step's cycles. */
static inline __attribute__((always_inline)) int64_t
step_psum(const struct sgi_scnn_plan *pl, const struct sgi_scnn_pe *t, const struct avec *A, const struct sgi_scnn_wt *wv,
          int nw, double *restrict acc, struct scratch *sc, struct pe_out *o, int *ntouched,
          const int unit, const int rowwin) {
    const uint32_t P = (uint32_t)pl->g->p, Q = (uint32_t)pl->g->q;
    const int sh = pl->g->sh, sw = pl->g->sw, RW = pl->RW, rp0 = t->rp0, rq0 = t->rq0;
    const int32_t region = (int32_t)sc->n_stamp;
    const uint16_t *restrict bank_of = pl->bank_of;
    uint32_t *restrict wst = sc->wstamp, *restrict bst = sc->bank_stamp, *restrict bcnt = sc->bank;
    int32_t *restrict touched = sc->touched;
    uint32_t id = ++sc->step;
    if (id == 0) {
        memset(bst, 0, (size_t)pl->c->banks * sizeof *bst);
        id = sc->step = 1;
    }
    const uint32_t win = sc->win;
    uint32_t maxload = 0;
    int64_t valid = 0, distinct = 0;
    int nt = *ntouched;
    for (int j = 0; j < nw; j++) {
        const int32_t rr = wv[j].rr, ss = wv[j].ss, wb = wv[j].base, kb = wv[j].kbase;
        const int32_t koff = rowwin ? wv[j].r * region : 0;
        const double w = wv[j].v;
        for (int i = 0; i < A->n; i++) {
            const int32_t addr = out_addr(A, i, rr, ss, wb, kb, P, Q, sh, sw, RW, rp0, rq0, unit);
            if (addr < 0) continue;
            acc[addr] += A->v[i] * w;
            valid++;
            const int32_t local = addr - kb;
            const uint32_t fresh = wst[koff + addr] != win;
            wst[koff + addr] = win;
            distinct += fresh;
            touched[nt] = addr;
            nt += (int)fresh;
            const uint32_t b = bank_of[local];
            const uint32_t l = (bcnt[b] & -(uint32_t)(bst[b] == id)) + 1;
            bst[b] = id;
            bcnt[b] = l;
            maxload = l > maxload ? l : maxload;
        }
    }
    *ntouched = nt;
    o->products += valid;
    o->formed += (int64_t)A->n * nw;
    o->psum_writes += valid;
    o->psum_reads += valid - distinct;
    o->merge_adds += valid - distinct;
    return maxload > 1 ? (int64_t)maxload : 1;
}

#if SCNN_SIMD
/* The vector steps (AVX-512): the F x I products of a step are the lanes
 * l = j I + i of one register (F I <= 16), so a step's bank loads come from one
 * conflict-detection instruction instead of a chain of counter updates through
 * memory. Only the accumulator values (and the row/kernel windows' stamps) are
 * updated lane by lane, in the scalar steps' order, so the outputs, like the
 * counts, are the scalar steps' exactly. Used for stride 1 and a power-of-two
 * number of banks; the tests compare both paths. */
struct vctx {
    __m512i ia, iw, sent, P, Q, bmask;
    __mmask16 amask[17], wmask[17]; /* lanes with i < n, lanes with j < n */
    uint8_t li[16], lj[16];
};

static void vctx_init(const struct sgi_scnn_plan *pl, struct vctx *vc) {
    const int F = pl->c->f, I = pl->c->i;
    int32_t ia[16], iw[16], sent[16];
    for (int l = 0; l < 16; l++) {
        ia[l] = l < F * I ? l % I : 0;
        iw[l] = l < F * I ? l / I : 0;
        sent[l] = 0x40000000 + l; /* distinct from every key and from each other */
        vc->li[l] = (uint8_t)ia[l];
        vc->lj[l] = (uint8_t)iw[l];
    }
    for (int n = 0; n <= 16; n++) {
        unsigned am = 0, wm = 0;
        for (int l = 0; l < F * I; l++) {
            am |= (unsigned)(l % I < n) << l;
            wm |= (unsigned)(l / I < n) << l;
        }
        vc->amask[n] = (__mmask16)am;
        vc->wmask[n] = (__mmask16)wm;
    }
    vc->ia = _mm512_loadu_si512(ia);
    vc->iw = _mm512_loadu_si512(iw);
    vc->sent = _mm512_loadu_si512(sent);
    vc->P = _mm512_set1_epi32(pl->g->p);
    vc->Q = _mm512_set1_epi32(pl->g->q);
    vc->bmask = _mm512_set1_epi32(pl->c->banks - 1);
}

/* The most lanes that hold one key (sentinels are distinct), at least 1. */
static inline __attribute__((always_inline)) int64_t vmaxload(__m512i key) {
    const __m512i cf = _mm512_conflict_epi32(key);
    if (!_mm512_test_epi32_mask(cf, cf)) return 1;
#ifdef __AVX512VPOPCNTDQ__
    const __m512i pc = _mm512_popcnt_epi32(cf);
#else /* the conflict masks have 16 bits: two bytes' popcounts by nibble lookup */
    const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                                              2, 3, 3, 4));
    const __m512i lo = _mm512_set1_epi8(0x0f);
    const __m512i b = _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_and_si512(cf, lo)),
                                      _mm512_shuffle_epi8(lut, _mm512_and_si512(
                                                                   _mm512_srli_epi32(cf, 4), lo)));
    const __m512i pc = _mm512_and_si512(_mm512_add_epi32(b, _mm512_srli_epi32(b, 8)),
                                        _mm512_set1_epi32(0xff));
#endif
    return (int64_t)_mm512_reduce_max_epi32(pc) + 1;
}

/* The activation vector A in lanes. */
struct vact {
    __m512i hh, ww, base;
    __mmask16 m;
};
static inline __attribute__((always_inline)) void vact_load(const struct vctx *vc,
                                                            const struct avec *A,
                                                            struct vact *va) {
    va->hh = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->hh));
    va->ww = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->ww));
    va->base = _mm512_permutexvar_epi32(vc->ia, _mm512_loadu_si512(A->base));
    va->m = vc->amask[A->n];
}

/* A channel's na activations as ceil(na / I) vectors in lanes, into va[0..). */
static void vact_load_all(const struct vctx *vc, struct avec *A, const struct sgi_scnn_act *a, int na, int I,
                          struct vact *va) {
    for (int x = 0; x * I < na; x++) {
        avec_fill(A, a + x * I, na - x * I < I ? na - x * I : I);
        vact_load(vc, A, &va[x]);
    }
}

/* Valid lanes and their accumulator addresses for weights [w0, w0 + nw). */
static inline __attribute__((always_inline)) __mmask16
vaddr(const struct sgi_scnn_plan *pl, const struct vctx *vc, const struct vact *va, int32_t w0, int nw,
      __m512i *addr, __m512i *kb) {
    const __mmask16 lm = (__mmask16)((1u << nw) - 1);
    const __m512i rr = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_rr + w0));
    const __m512i ss = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_ss + w0));
    const __m512i wb =
        _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_base + w0));
    if (kb) *kb = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, pl->w_kb + w0));
    *addr = _mm512_add_epi32(va->base, wb);
    return va->m & vc->wmask[nw] &
           _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va->hh, rr), vc->P) &
           _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va->ww, ss), vc->Q);
}

/* step() in lanes (stride 1). */
static inline __attribute__((always_inline)) int64_t
vstep(const struct sgi_scnn_plan *pl, const struct vctx *vc, const struct vact *va, const struct avec *A,
      const struct sgi_scnn_wt *wv, int32_t w0, int nw, double *restrict acc, struct pe_out *o,
      const int merged) {
    __m512i addr;
    const __mmask16 valid = vaddr(pl, vc, va, w0, nw, &addr, NULL);
    const int64_t nvalid = __builtin_popcount(valid);
    __mmask16 fresh = valid;
    if (merged) {
        const __m512i ca = _mm512_conflict_epi32(_mm512_mask_blend_epi32(valid, vc->sent, addr));
        fresh = _mm512_mask_testn_epi32_mask(valid, ca, ca);
    }
    const int64_t distinct = __builtin_popcount(fresh);
    o->products += nvalid;
    o->formed += (int64_t)A->n * nw;
    o->acc += distinct;
    if (merged) o->merge_adds += nvalid - distinct;
    if (distinct <= 1) return 1;
    return vmaxload(_mm512_mask_blend_epi32(fresh, vc->sent, _mm512_and_si512(addr, vc->bmask)));
}

/* step_psum() in lanes (stride 1), with window stamps (no bitmaps). */
static inline __attribute__((always_inline)) int64_t
vstep_psum(const struct sgi_scnn_plan *pl, const struct vctx *vc, const struct vact *va,
           const struct sgi_scnn_act *ap, int an, const struct sgi_scnn_wt *wv, int32_t w0, int nw,
           double *restrict acc, struct scratch *sc, struct pe_out *o, int *ntouched,
           const int rowwin) {
    __m512i addr, kb;
    const __mmask16 valid = vaddr(pl, vc, va, w0, nw, &addr, &kb);
    const int32_t *wb = pl->w_base + w0;
    const int32_t region = (int32_t)sc->n_stamp;
    uint32_t *restrict wst = sc->wstamp;
    int32_t *restrict touched = sc->touched;
    const uint32_t win = sc->win;
    int nt = *ntouched;
    int64_t distinct = 0;
    for (unsigned m = valid; m; m &= m - 1) {
        const int l = __builtin_ctz(m), i = vc->li[l], j = vc->lj[l];
        const struct sgi_scnn_wt *w = &wv[j];
        const int32_t a = ap[i].base + wb[j], key = (rowwin ? w->r * region : 0) + a;
        const uint32_t fresh = wst[key] != win;
        wst[key] = win;
        distinct += fresh;
        touched[nt] = a;
        nt += (int)fresh;
    }
    *ntouched = nt;
    const int64_t nvalid = __builtin_popcount(valid);
    o->products += nvalid;
    o->formed += (int64_t)an * nw;
    o->psum_writes += nvalid;
    o->psum_reads += nvalid - distinct;
    o->merge_adds += nvalid - distinct;
    if (nvalid <= 1) return 1;
    return vmaxload(_mm512_mask_blend_epi32(
        valid, vc->sent, _mm512_and_si512(_mm512_sub_epi32(addr, kb), vc->bmask)));
}

/* The row and kernel windows counted from bitmaps (stride 1, tile width and
 * region width at most 64, banks a power of two at most 64): the PE's non-zero
 * activations of a channel are one 64-bit word per tile row; a weight at (rr, ss)
 * moves them to the outputs its products reach, so the union over a window's
 * weights is the set of window sums (the distinct outputs the plain set count of
 * the reference finds), and the count of those per accumulator bank gives the
 * flush. One union per kernel (kernel window) or per kernel row (row window). */
struct wbits {
    const uint64_t *abits; /* per tile row h - h0: the non-zero activations at w - w0 */
    uint64_t *u;           /* per region row: the window's outputs at q - rq0 */
    uint64_t qmask;        /* region columns inside the output plane */
    int d0;                /* region column of tile column 0 for weight column 0 */
    __m512i c0, c1;        /* per bit position 0-31, 32-63 (after rotation): sums */
};

static inline __attribute__((always_inline)) void
wbits_or(const struct sgi_scnn_plan *pl, const struct sgi_scnn_pe *t, struct wbits *b, int rr, int ss) {
    const struct sg_conv_geom *g = pl->g;
    const int d = b->d0 - ss, pofs = g->pt - rr - t->rp0; /* region row of tile row h */
    if (d >= 64 || d <= -64) return; /* every product falls outside the region */
    int h0 = t->h0, h1 = t->h1;
    if (h0 + g->pt - rr < 0) h0 = rr - g->pt;
    if (h1 + g->pt - rr > g->p) h1 = g->p + rr - g->pt;
    for (int h = h0; h < h1; h++) {
        const uint64_t a = b->abits[h - t->h0];
        b->u[h + pofs] |= (d >= 0 ? a << d : a >> -d) & b->qmask;
    }
}

/* Adds the union's sums to the window count and to the per-bit counters
 * (rotated so that bit position mod banks is the bank); clears the union. */
static inline __attribute__((always_inline)) int64_t
wbits_take(const struct sgi_scnn_plan *pl, struct wbits *b, int32_t kbase) {
    const int RH = pl->RH, RW = pl->RW, nbm = pl->c->banks - 1;
    int64_t n = 0;
    for (int lr = 0; lr < RH; lr++) {
        const uint64_t u = b->u[lr];
        if (!u) continue;
        b->u[lr] = 0;
        n += __builtin_popcountll(u);
        const unsigned o = (unsigned)(kbase + lr * RW) & (unsigned)nbm;
        const uint64_t x = o ? (u << o) | (u >> (64 - o)) : u;
        b->c0 = _mm512_sub_epi16(b->c0, _mm512_movm_epi16((__mmask32)(uint32_t)x));
        b->c1 = _mm512_sub_epi16(b->c1, _mm512_movm_epi16((__mmask32)(uint32_t)(x >> 32)));
    }
    return n;
}

/* The most sums one bank received (counters folded mod banks); clears them. */
static inline __attribute__((always_inline)) int64_t wbits_most(const struct sgi_scnn_plan *pl,
                                                                struct wbits *b) {
    const int nb = pl->c->banks;
    if (nb >= 32) { /* one bank per lane (64: two registers), or pairs of lanes (32) */
        const __m512i lo = _mm512_set1_epi32(0xffff);
        __m512i m;
        if (nb == 32) {
            const __m512i c = _mm512_add_epi16(b->c0, b->c1);
            m = _mm512_max_epu32(_mm512_and_si512(c, lo), _mm512_srli_epi32(c, 16));
        } else {
            m = _mm512_max_epu32(
                _mm512_max_epu32(_mm512_and_si512(b->c0, lo), _mm512_srli_epi32(b->c0, 16)),
                _mm512_max_epu32(_mm512_and_si512(b->c1, lo), _mm512_srli_epi32(b->c1, 16)));
        }
        b->c0 = b->c1 = _mm512_setzero_si512();
        return (int64_t)_mm512_reduce_max_epu32(m);
    }
    uint16_t c[64];
    _mm512_storeu_si512(c, b->c0);
    _mm512_storeu_si512(c + 32, b->c1);
    b->c0 = b->c1 = _mm512_setzero_si512();
    int64_t most = 0;
    for (int k = 0; k < nb; k++) {
        int64_t sum = 0;
        for (int i = k; i < 64; i += nb) sum += c[i];
        most = sum > most ? sum : most;
    }
    return most;
}
#endif

/* The kernel-major loop of the row and kernel windows: input channel > kernel >
 * activation vector > that kernel's weight vectors; the window sums are written
 * into the accumulator banks when the kernel is done (one access each; the flush
 * takes as many cycles as the most sums one bank receives). */
static void run_pe_kmajor(const struct sgi_scnn_plan *pl, int gi, int e, double *acc, struct scratch *sc,
                          struct pe_out *out, const int unit, const int rowwin, const int simd) {
    const struct sg_conv_geom *g = pl->g;
    const struct sgi_scnn_pe *t = &pl->pe[e];
    const int I = pl->c->i, nb = pl->c->banks;
    const size_t nws = sc->n_wstamp;
    const uint16_t *bank_of = pl->bank_of;
    struct pe_out o;
    memset(&o, 0, sizeof o);
    struct avec A;
    memset(&A, 0, sizeof A);
#if SCNN_SIMD
    struct vctx vc;
    if (simd) vctx_init(pl, &vc);
#endif
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch, gc = (size_t)gi * g->c + ch;
        const struct sgi_scnn_act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        const struct sgi_scnn_wt *w = pl->wts + pl->woff[gc];
        const int32_t *vs = pl->vstart + pl->voff[gc];
        const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
        if (na == 0 || nv == 0) continue;
        const int nav = (na + I - 1) / I;
        int64_t kernels = 0; /* kernels with weights: one activation pass each */
        for (int v = 0; v < nv; v++) kernels += v == 0 || w[vs[v]].kbase != w[vs[v - 1]].kbase;
        o.areads += kernels * pl->a_entries[pc];
        o.aireads += pl->dense ? 0 : kernels * pl->a_entries[pc];
        o.wreads += (int64_t)nav * pl->w_entries[gc];
        o.wireads += (int64_t)nav * pl->wi_entries[gc];
        o.steps += (int64_t)nav * nv;
#if SCNN_SIMD
        struct vact *va = sc->vacts;
        if (simd) vact_load_all(&vc, &A, a, na, I, va); /* once for all kernels */
#endif
        for (int v0 = 0; v0 < nv;) { /* kernel by kernel: vectors [v0, v1) */
            int v1 = v0 + 1;
            while (v1 < nv && w[vs[v1]].kbase == w[vs[v0]].kbase) v1++;
            if (++sc->win == 0) { /* wrapped: forget every window stamp */
                memset(sc->wstamp, 0, nws * sizeof *sc->wstamp);
                sc->win = 1;
            }
            int nt = 0;
#if SCNN_SIMD
            if (simd) {
                const int32_t w0 = (int32_t)pl->woff[gc];
                for (int x = 0; x < nav; x++) {
                    const int an = na - x * I < I ? na - x * I : I;
                    for (int v = v0; v < v1; v++) {
                        int64_t cyc = vstep_psum(pl, &vc, &va[x], a + (size_t)x * I, an, w + vs[v],
                                                 w0 + vs[v], vs[v + 1] - vs[v], acc, sc, &o, &nt,
                                                 rowwin);
                        if (pl->dense) cyc = 1;
                        o.cycles += cyc;
                        o.stalls += cyc - 1;
                    }
                }
            } else
#endif
            {
                for (int ai = 0; ai < na; ai += I) {
                    avec_fill(&A, a + ai, na - ai < I ? na - ai : I);
                    for (int v = v0; v < v1; v++) {
                        int64_t cyc = step_psum(pl, t, &A, w + vs[v], vs[v + 1] - vs[v], acc, sc,
                                                &o, &nt, unit, rowwin);
                        if (pl->dense) cyc = 1;
                        o.cycles += cyc;
                        o.stalls += cyc - 1;
                    }
                }
            }
            /* flush: one accumulator read-add-write per window sum; it takes the
             * most sums one bank receives */
            uint32_t *cnt = sc->flush_bank, most = 0;
            memset(cnt, 0, (size_t)nb * sizeof *cnt);
            for (int x = 0; x < nt; x++) {
                const uint32_t l = ++cnt[bank_of[sc->touched[x]]];
                most = l > most ? l : most;
            }
            o.acc += nt;
            o.flush += most;
            o.cycles += most;
            v0 = v1;
        }
    }
    *out = o;
}

#if SCNN_SIMD
/* The row window's counts of one kernel row's weights (a row pattern) on one PE
 * and channel: its window sums and its per-bit bank counters. A kernel's row
 * windows are separate unions, so its counts are the sum of its rows'; each row
 * pattern of a channel is counted once per PE (memo stamped with the channel). */
struct rowmemo {
    __m512i c0, c1;
    int64_t sums;
    uint32_t stamp;
};
#define ROWMEMO_MAX_S 5 /* row patterns of at most 5 columns: 32 per kernel row */

/* One kernel pattern's counts on one PE (bitmap windows): its steps with every
 * activation vector of the channel, its window sums and its flush, into *o.
 * memo (row window only, or NULL): the channel's row patterns, stamp id. */
static inline __attribute__((always_inline)) void
kbits_kernel(const struct sgi_scnn_plan *pl, const struct sgi_scnn_pe *t, const struct vctx *vc,
             const struct vact *va, int na, int64_t p, struct wbits *wb, struct kpat *o,
             struct rowmemo *memo, uint32_t id, const int rowwin) {
    const struct sg_conv_geom *g = pl->g;
    const int I = pl->c->i, nav = (na + I - 1) / I;
    const int32_t *rr = pl->c_rr + pl->pat_w[p], *ss = pl->c_ss + pl->pat_w[p];
    const int32_t *lb = pl->c_lb + pl->pat_w[p], *kr = pl->c_r + pl->pat_w[p];
    const int32_t *vs = pl->c_vs + pl->pat_vs[p];
    const int nv = pl->pat_nv[p];
    int64_t an_sum = 0; /* the activations of all vectors: na */
    for (int x = 0; x < nav; x++) an_sum += na - x * I < I ? na - x * I : I;
    o->formed += an_sum * vs[nv];
    /* weight vector outside, activation vector inside: the weights' lanes once */
    for (int v = 0; v < nv; v++) {
        const int j = vs[v], nw = vs[v + 1] - j;
        const __mmask16 lm = (__mmask16)((1u << nw) - 1);
        const __m512i vr = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, rr + j));
        const __m512i vsn = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, ss + j));
        const __m512i vl = _mm512_permutexvar_epi32(vc->iw, _mm512_maskz_loadu_epi32(lm, lb + j));
        const __mmask16 wm = vc->wmask[nw];
        for (int x = 0; x < nav; x++) {
            const __mmask16 valid = va[x].m & wm &
                                    _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va[x].hh, vr), vc->P) &
                                    _mm512_cmplt_epu32_mask(_mm512_sub_epi32(va[x].ww, vsn), vc->Q);
            const int64_t nvalid = __builtin_popcount(valid);
            o->products += nvalid;
            int64_t cyc = 1;
            if (nvalid > 1 && !pl->dense)
                cyc = vmaxload(_mm512_mask_blend_epi32(
                    valid, vc->sent, _mm512_and_si512(_mm512_add_epi32(va[x].base, vl), vc->bmask)));
            o->cycles += cyc;
            o->stalls += cyc - 1;
        }
    }
    int64_t sums = 0;
    const int nkw = vs[nv];
    if (rowwin && memo) {
        __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
        const int dw = g->dw;
        for (int j0 = 0; j0 < nkw;) {
            int j1 = j0;
            unsigned sp = 0; /* the row's columns s = ss / dw */
            for (; j1 < nkw && kr[j1] == kr[j0]; j1++) sp |= 1u << (dw == 1 ? ss[j1] : ss[j1] / dw);
            struct rowmemo *m = &memo[((size_t)kr[j0] << ROWMEMO_MAX_S) + sp];
            if (m->stamp != id) { /* the row pattern's union, counted alone */
                for (int j = j0; j < j1; j++) wbits_or(pl, t, wb, rr[j], ss[j]);
                m->sums = wbits_take(pl, wb, 0);
                m->c0 = wb->c0, m->c1 = wb->c1;
                wb->c0 = wb->c1 = _mm512_setzero_si512();
                m->stamp = id;
            }
            sums += m->sums;
            c0 = _mm512_add_epi16(c0, m->c0);
            c1 = _mm512_add_epi16(c1, m->c1);
            j0 = j1;
        }
        wb->c0 = c0, wb->c1 = c1;
    } else {
        for (int j = 0; j < nkw; j++) {
            if (rowwin && j > 0 && kr[j] != kr[j - 1]) sums += wbits_take(pl, wb, 0);
            wbits_or(pl, t, wb, rr[j], ss[j]);
        }
        sums += wbits_take(pl, wb, 0);
    }
    const int64_t most = wbits_most(pl, wb);
    o->sums += sums;
    o->flush += most;
    o->cycles += most;
}

/* The row and kernel windows with bitmaps (pl->kbits): one PE, every channel and
 * every group, channel-major. A kernel's counts depend only on which of its
 * positions hold weights (its vectors, products, banks, window sums and flush;
 * not the values or the output channel: the flush's most-loaded bank is the same
 * for any rotation of the banks), so each distinct pattern of a channel
 * (plan_patterns) is counted once and added as often as a group holds it. The
 * counts are run_pe_kmajor's (the tests compare them); outs[gi * npe + e]
 * receives group gi's. */
static void run_pe_kbits(const struct sgi_scnn_plan *pl, int e, struct scratch *sc, struct pe_out *outs,
                         const int rowwin) {
    const struct sg_conv_geom *g = pl->g;
    const struct sgi_scnn_pe *t = &pl->pe[e];
    const int I = pl->c->i;
    struct avec A;
    memset(&A, 0, sizeof A);
    struct vctx vc;
    vctx_init(pl, &vc);
    struct wbits wb;
    memset(&wb, 0, sizeof wb);
    wb.u = sc->ubits;
    wb.d0 = t->w0 + g->pl - t->rq0;
    const int qn = g->q - t->rq0 < pl->RW ? g->q - t->rq0 : pl->RW;
    wb.qmask = qn >= 64 ? ~0ull : (1ull << qn) - 1;
    wb.c0 = wb.c1 = _mm512_setzero_si512();
    struct vact *va = sc->vacts;
    for (int gi = 0; gi < pl->ngroups; gi++) memset(&outs[(size_t)gi * pl->npe + e], 0, sizeof *outs);
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch;
        const struct sgi_scnn_act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        if (na == 0) continue;
        const int nav = (na + I - 1) / I;
        vact_load_all(&vc, &A, a, na, I, va);
        /* the non-zero activations, a word per tile row */
        memset(sc->abits, 0, (size_t)(t->h1 - t->h0) * sizeof *sc->abits);
        for (int i = 0; i < na; i++)
            sc->abits[a[i].hh - g->pt - t->h0] |= 1ull << (a[i].ww - g->pl - t->w0);
        wb.abits = sc->abits;
        /* each distinct kernel pattern of the channel, once */
        const int64_t p0 = pl->pat_off[ch], np = pl->pat_off[ch + 1] - p0;
        if (++sc->memo_id == 0) { /* wrapped: forget every memo stamp */
            for (size_t i = 0; sc->memo && i < sc->n_memo; i++) sc->memo[i].stamp = 0;
            sc->memo_id = 1;
        }
        for (int64_t p = 0; p < np; p++) {
            memset(&sc->pst[p], 0, sizeof sc->pst[p]);
            kbits_kernel(pl, t, &vc, va, na, p0 + p, &wb, &sc->pst[p], sc->memo, sc->memo_id,
                         rowwin);
        }
        for (int gi = 0; gi < pl->ngroups; gi++) {
            struct pe_out *o = &outs[(size_t)gi * pl->npe + e];
            const size_t gc = (size_t)gi * g->c + ch;
            const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
            if (nv == 0) continue;
            int64_t kernels = 0; /* kernels with weights: one activation pass each */
            int64_t f[KPAT_N] = {0};
            for (int64_t x = pl->ent_off[gc]; x < pl->ent_off[gc] + pl->ent_len[gc]; x++) {
                const int64_t n = pl->ent_cnt[x];
                const int64_t *d = sc->pst[pl->ent_pat[x]].f;
                for (size_t k = 0; k < KPAT_N; k++) f[k] += n * d[k];
                kernels += n;
            }
            /* every product is a partial-sum write; all but a window's first on an
             * output also a read and a merge add; the window sums go to the banks */
            const int64_t products = f[KP_PRODUCTS], sums = f[KP_SUMS];
            o->cycles += f[KP_CYCLES];
            o->stalls += f[KP_STALLS];
            o->products += products;
            o->formed += f[KP_FORMED];
            o->flush += f[KP_FLUSH];
            o->acc += sums;
            o->psum_writes += products;
            o->psum_reads += products - sums;
            o->merge_adds += products - sums;
            o->areads += kernels * pl->a_entries[pc];
            o->aireads += pl->dense ? 0 : kernels * pl->a_entries[pc];
            o->wreads += (int64_t)nav * pl->w_entries[gc];
            o->wireads += (int64_t)nav * pl->wi_entries[gc];
            o->steps += (int64_t)nav * nv;
        }
    }
}
#endif

static void run_pe(const struct sgi_scnn_plan *pl, int gi, int e, double *acc, struct scratch *sc,
                   struct pe_out *out, const int unit, const int merged, const int simd) {
    const struct sg_conv_geom *g = pl->g;
    const struct sgi_scnn_pe *t = &pl->pe[e];
    const int I = pl->c->i;
    /* counted locally: neighbouring PEs' results share cache lines */
    struct pe_out o;
    memset(&o, 0, sizeof o);
    struct avec A;
    memset(&A, 0, sizeof A);
#if SCNN_SIMD
    struct vctx vc;
    struct vact va;
    if (simd) vctx_init(pl, &vc);
#endif
    for (int ch = 0; ch < g->c; ch++) {
        const size_t pc = (size_t)e * g->c + ch, gc = (size_t)gi * g->c + ch;
        const struct sgi_scnn_act *a = pl->acts + pl->aoff[pc];
        const int na = (int)(pl->aoff[pc + 1] - pl->aoff[pc]);
        const struct sgi_scnn_wt *w = pl->wts + pl->woff[gc];
        const int32_t *vs = pl->vstart + pl->voff[gc];
        const int nv = (int)(pl->voff[gc + 1] - pl->voff[gc]) - 1;
        if (na == 0 || nv == 0) continue; /* nothing to multiply: the channel is skipped */
        const int nav = (na + I - 1) / I;
        o.areads += pl->a_entries[pc];
        o.aireads += pl->dense ? 0 : pl->a_entries[pc];
        o.wreads += (int64_t)nav * pl->w_entries[gc];
        o.wireads += (int64_t)nav * pl->wi_entries[gc];
        o.steps += (int64_t)nav * nv;
        for (int ai = 0; ai < na; ai += I) {
            avec_fill(&A, a + ai, na - ai < I ? na - ai : I);
#if SCNN_SIMD
            if (simd) {
                vact_load(&vc, &A, &va);
                const int32_t w0 = (int32_t)pl->woff[gc];
                for (int v = 0; v < nv; v++) {
                    int64_t cyc = vstep(pl, &vc, &va, &A, w + vs[v], w0 + vs[v], vs[v + 1] - vs[v],
                                        acc, &o, merged);
                    if (pl->dense) cyc = 1;
                    o.cycles += cyc;
                    o.stalls += cyc - 1;
                }
                continue;
            }
#endif
            const int full_a = A.n == 4 && pl->c->f == 4;
            for (int v = 0; v < nv; v++) {
                const int nw = vs[v + 1] - vs[v];
                int64_t cyc =
                    full_a && nw == 4
                        ? step(pl, t, &A, w + vs[v], nw, acc, sc, &o, unit, merged, 1)
                        : step(pl, t, &A, w + vs[v], nw, acc, sc, &o, unit, merged, 0);
                if (pl->dense) cyc = 1; /* a dense array's accumulation is scheduled */
                o.cycles += cyc;
                o.stalls += cyc - 1;
            }
        }
    }
    *out = o;
}

static void run_pe_any(const struct sgi_scnn_plan *pl, int gi, int e, double *acc, struct scratch *sc,
                       struct pe_out *o) {
    const int unit = pl->g->sh == 1 && pl->g->sw == 1;
    const int merged = pl->c->accumulate == SG_SCNN_ACC_MERGED;
    if (pl->kmode) {
        const int rowwin = pl->c->accumulate == SG_SCNN_ACC_ROW;
        if (pl->simd && rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 1, 1);
        else if (pl->simd) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 0, 1);
        else if (unit && rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 1, 0);
        else if (unit) run_pe_kmajor(pl, gi, e, acc, sc, o, 1, 0, 0);
        else if (rowwin) run_pe_kmajor(pl, gi, e, acc, sc, o, 0, 1, 0);
        else run_pe_kmajor(pl, gi, e, acc, sc, o, 0, 0, 0);
    } else if (pl->simd && merged) run_pe(pl, gi, e, acc, sc, o, 1, 1, 1);
    else if (pl->simd) run_pe(pl, gi, e, acc, sc, o, 1, 0, 1);
    else if (unit && merged) run_pe(pl, gi, e, acc, sc, o, 1, 1, 0);
    else if (unit) run_pe(pl, gi, e, acc, sc, o, 1, 0, 0);
    else if (merged) run_pe(pl, gi, e, acc, sc, o, 0, 1, 0);
    else run_pe(pl, gi, e, acc, sc, o, 0, 0, 0);
}

/* Adds a PE's partial sums of group gi into the layer output and clears them.
 * Callers go through the PEs of a group in order, so the sums do not depend on
 * the thread count; different groups write different output channels. */
static void fold_pe(const struct sgi_scnn_plan *pl, int gi, int e, double *acc, double *ysum) {
    const struct sg_conv_geom *g = pl->g;
    const struct sgi_scnn_pe *t = &pl->pe[e];
    const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
    for (int kk = 0; kk < kcg; kk++)
        for (int p = t->rp0; p < t->rp1; p++)
            for (int q = t->rq0; q < t->rq1; q++) {
                double *a = &acc[(size_t)kk * pl->area + (size_t)(p - t->rp0) * pl->RW + (q - t->rq0)];
                ysum[((size_t)(k0 + kk) * g->p + p) * g->q + q] += *a;
                *a = 0.0;
            }
}

/* The counts of group gi from its PEs' results. */
static void group_stats(const struct sgi_scnn_plan *pl, int gi, const struct pe_out *outs,
                        struct sg_scnn_stats *st) {
    const struct sg_conv_geom *g = pl->g;
    const int k0 = gi * pl->kc, kcg = g->k - k0 < pl->kc ? g->k - k0 : pl->kc;
    int64_t slowest = 0, halo_max = 0;
    for (int e = 0; e < pl->npe; e++) {
        const struct pe_out *o = &outs[e];
        slowest = o->cycles > slowest ? o->cycles : slowest;
        const int64_t halo = pl->pe[e].halo_area * kcg;
        halo_max = halo > halo_max ? halo : halo_max;
        st->halo += halo;
        st->steps += o->steps;
        st->conflict_stalls += o->stalls;
        st->products += o->products;
        st->products_formed += o->formed;
        st->acc_writes += o->acc;
        st->acc_reads += o->acc;
        st->merge_adds += o->merge_adds;
        st->weight_reads += o->wreads;
        st->weight_index_reads += o->wireads;
        st->act_reads += o->areads;
        st->act_index_reads += o->aireads;
        st->psum_reads += o->psum_reads;
        st->psum_writes += o->psum_writes;
        st->flush_cycles += o->flush;
    }
    for (int e = 0; e < pl->npe; e++) st->idle_pe_cycles += slowest - outs[e].cycles;
    st->compute_cycles += slowest;
    st->halo_cycles += halo_max;
}

static void scratch_init(const struct sgi_scnn_plan *pl, size_t region, struct scratch *sc) {
    memset(sc, 0, sizeof *sc);
    sc->n_stamp = region;
    sc->stamp = sgi_zalloc(region, sizeof(uint32_t));
    sc->bank_stamp = sgi_zalloc((size_t)pl->c->banks, sizeof(uint32_t));
    sc->bank = sgi_zalloc((size_t)pl->c->banks, sizeof(uint32_t));
    sc->n_wstamp = (size_t)(pl->c->accumulate == SG_SCNN_ACC_ROW ? pl->g->r : 1) * region;
    sc->wstamp = sgi_zalloc(sc->n_wstamp, sizeof(uint32_t));
    sc->touched = sgi_alloc(sc->n_wstamp + 1, sizeof(int32_t));
    sc->flush_bank = sgi_zalloc((size_t)pl->kc * pl->c->banks, sizeof(uint32_t));
    sc->flush_kmax = sgi_zalloc((size_t)pl->kc, sizeof(uint32_t));
#if SCNN_SIMD
    if (pl->simd && pl->kmode) {
        int most = 1;
        for (int ch = 0; ch < pl->g->c; ch++) most = pl->maxnav[ch] > most ? pl->maxnav[ch] : most;
        sc->vacts = sgi_alloc((size_t)most, sizeof(struct vact));
    }
    if (pl->kbits) {
        int rows = 1;
        for (int e = 0; e < pl->npe; e++)
            rows = pl->pe[e].h1 - pl->pe[e].h0 > rows ? pl->pe[e].h1 - pl->pe[e].h0 : rows;
        sc->abits = sgi_alloc((size_t)rows, sizeof *sc->abits);
        sc->ubits = sgi_zalloc((size_t)pl->RH, sizeof *sc->ubits);
        int64_t most = 1;
        for (int ch = 0; ch < pl->g->c; ch++)
            most = pl->pat_off[ch + 1] - pl->pat_off[ch] > most ? pl->pat_off[ch + 1] - pl->pat_off[ch]
                                                               : most;
        sc->pst = sgi_alloc((size_t)most, sizeof *sc->pst);
        if (pl->c->accumulate == SG_SCNN_ACC_ROW && pl->g->s <= ROWMEMO_MAX_S) {
            sc->n_memo = (size_t)pl->g->r << ROWMEMO_MAX_S;
            sc->memo = sgi_zalloc(sc->n_memo, sizeof *sc->memo);
            if (!sc->memo) sc->n_memo = 0; /* counted without the memo */
        }
    }
#endif
}
static int scratch_ok(const struct sgi_scnn_plan *pl, const struct scratch *sc) {
    return sc->stamp && sc->bank_stamp && sc->bank && sc->wstamp && sc->touched && sc->flush_bank &&
           sc->flush_kmax && (sc->vacts || !(pl->simd && pl->kmode)) &&
           ((sc->abits && sc->ubits && sc->pst) || !pl->kbits);
}
static void scratch_free(struct scratch *sc) {
    free(sc->stamp), free(sc->bank_stamp), free(sc->bank), free(sc->wstamp), free(sc->touched);
    free(sc->flush_bank), free(sc->flush_kmax), free(sc->vacts), free(sc->abits), free(sc->ubits);
    free(sc->pst), free(sc->memo);
}

/* Many groups: one task per group (its PEs in order); no barrier between groups,
 * which matters when the machine is shared and a waiting thread loses its core. */
static int run_by_group(const struct sgi_scnn_plan *pl, size_t region, double *ysum,
                        struct sg_scnn_stats *gst) {
    int failed = 0;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        double *acc = sgi_zalloc(region, sizeof *acc);
        struct pe_out *outs = sgi_zalloc((size_t)pl->npe, sizeof *outs);
        const int ok = scratch_ok(pl, &sc) && acc && outs;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int gi = 0; gi < pl->ngroups; gi++) {
            if (!ok) continue;
            for (int e = 0; e < pl->npe; e++) {
                run_pe_any(pl, gi, e, acc, &sc, &outs[e]);
                if (!pl->simd) fold_pe(pl, gi, e, acc, ysum);
            }
            group_stats(pl, gi, outs, &gst[gi]);
        }
        scratch_free(&sc), free(acc), free(outs);
    }
    return failed;
}

/* Few groups: the PEs of each group in parallel, then a serial fold in PE order. */
static int run_by_pe(const struct sgi_scnn_plan *pl, size_t region, double *accs, struct pe_out *outs,
                     double *ysum, struct sg_scnn_stats *gst) {
    int failed = 0;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        if (!scratch_ok(pl, &sc)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        for (int gi = 0; gi < pl->ngroups && !failed; gi++) {
#pragma omp for schedule(dynamic, 1)
            for (int e = 0; e < pl->npe; e++)
                run_pe_any(pl, gi, e, accs + (size_t)e * region, &sc, &outs[e]);
#pragma omp single
            {
                for (int e = 0; e < pl->npe && !pl->simd; e++)
                    fold_pe(pl, gi, e, accs + (size_t)e * region, ysum);
                group_stats(pl, gi, outs, &gst[gi]);
            }
        }
        scratch_free(&sc);
    }
    return failed;
}

#if SCNN_SIMD
/* Bitmap windows: the PEs in parallel, each over all groups (run_pe_kbits), then
 * the groups' counts in group order. */
static int run_kbits(const struct sgi_scnn_plan *pl, size_t region, struct sg_scnn_stats *gst) {
    int failed = 0;
    struct pe_out *outs = sgi_zalloc((size_t)pl->ngroups * pl->npe, sizeof *outs);
    if (!outs) return 1;
    const int rowwin = pl->c->accumulate == SG_SCNN_ACC_ROW;
#pragma omp parallel
    {
        struct scratch sc;
        scratch_init(pl, region, &sc);
        const int ok = scratch_ok(pl, &sc);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int e = 0; e < pl->npe; e++) {
            if (!ok) continue;
            if (rowwin) run_pe_kbits(pl, e, &sc, outs, 1);
            else run_pe_kbits(pl, e, &sc, outs, 0);
        }
        scratch_free(&sc);
    }
    for (int gi = 0; gi < pl->ngroups && !failed; gi++)
        group_stats(pl, gi, outs + (size_t)gi * pl->npe, &gst[gi]);
    free(outs);
    return failed;
}
#endif

enum sg_status sg_scnn_layer(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                             const float *w, const float *x, float *y, struct sg_scnn_stats *st) {
    memset(st, 0, sizeof *st);
    enum sg_status s = sgi_scnn_check_layer(c, g);
    if (s != SG_OK) return s;
    struct sgi_scnn_plan pl = {.c = c, .g = g};
    double *ysum = NULL, *accs = NULL;
    float *yown = NULL;
    struct pe_out *outs = NULL;
    struct sg_scnn_stats *gst = NULL;
    if ((s = sgi_scnn_plan_tiles(&pl)) != SG_OK || (s = sgi_scnn_choose_kc(c, g, pl.RH, pl.RW, &pl.kc)) != SG_OK)
        goto done;
    pl.area = pl.RH * pl.RW;
    pl.ngroups = (g->k + pl.kc - 1) / pl.kc;
    pl.kmode = c->accumulate == SG_SCNN_ACC_ROW || c->accumulate == SG_SCNN_ACC_KERNEL;
    pl.dense = c->arch == SG_SCNN_ARCH_DCNN;
    /* the vector steps: stride 1, F I <= 16 lanes, bank = address & (banks - 1) */
    pl.simd = SCNN_SIMD && sgi_scnn_simd && g->sh == 1 && g->sw == 1 && c->f * c->i <= 16 &&
              (c->banks & (c->banks - 1)) == 0;
    if (pl.simd && pl.kmode && c->banks <= 64 && pl.RW <= 64) {
        int wmax = 0;
        for (int e = 0; e < pl.npe; e++)
            wmax = pl.pe[e].w1 - pl.pe[e].w0 > wmax ? pl.pe[e].w1 - pl.pe[e].w0 : wmax;
        /* 2: the vector steps with window stamps (the tests compare) */
        pl.kbits = wmax <= 64 && g->r * g->s <= 64 && sgi_scnn_simd < 2;
    }
    if (pl.kmode) { /* the partial-sum buffer holds one window: a kernel's region or a row */
        const int need = c->accumulate == SG_SCNN_ACC_ROW ? pl.RW : pl.area;
        if (c->psum_entries > 0 && c->psum_entries < need) {
            s = sgi_error(SG_ERR_ARG, "a %s window needs a partial-sum buffer of %d entries here "
                          "(%dx%d region per output channel); --psum-entries is %d",
                          sg_scnn_accum_name(c->accumulate), need, pl.RH, pl.RW, c->psum_entries);
            goto done;
        }
        st->psum_entries = c->psum_entries > 0 ? c->psum_entries : need;
    }
    const size_t region = (size_t)pl.kc * pl.area, ny = (size_t)g->k * g->p * g->q;
    pl.bank_of = sgi_alloc(region, sizeof *pl.bank_of);
    /* the scalar steps add their products into ysum; the vector steps' outputs come
     * from layer_values */
    if (!pl.simd) ysum = sgi_alloc(ny, sizeof *ysum);
    accs = sgi_zalloc((size_t)pl.npe * region, sizeof *accs);
    outs = sgi_zalloc((size_t)pl.npe, sizeof *outs);
    if (!y) y = yown = sgi_alloc(ny, sizeof *y);
    if (!pl.bank_of || (!pl.simd && !ysum) || !accs || !outs || !y) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    if (ysum) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < ny; i++) ysum[i] = 0.0;
    }
    for (size_t i = 0; i < region; i++) pl.bank_of[i] = (uint16_t)(i % (size_t)c->banks);
    if ((s = sgi_scnn_plan_acts(&pl, x, st)) != SG_OK || (s = sgi_scnn_plan_weights(&pl, w, st)) != SG_OK) goto done;
    if (pl.kbits && (s = sgi_scnn_plan_patterns(&pl)) != SG_OK) goto done;

    /* per-group counts, summed in group order below */
    gst = sgi_zalloc((size_t)pl.ngroups, sizeof *gst);
    if (!gst) {
        s = SG_ERR_NOMEM;
        goto done;
    }
    int failed;
#if SCNN_SIMD
    if (pl.kbits)
        failed = run_kbits(&pl, region, gst);
    else
#endif
        failed = pl.ngroups >= 4 * sg_get_threads() ? run_by_group(&pl, region, ysum, gst)
                                                    : run_by_pe(&pl, region, accs, outs, ysum, gst);
    if (failed) {
        s = sgi_error(SG_ERR_NOMEM, "out of memory");
        goto done;
    }
#if SCNN_SIMD
    if (pl.simd && (s = sgi_scnn_layer_values(g, w, x, y)) != SG_OK) goto done; /* no values added */
#endif
    if (!pl.simd) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < ny; i++) y[i] = (float)ysum[i];
    }
    for (int gi = 0; gi < pl.ngroups; gi++) sg_scnn_stats_add(st, &gst[gi]);

    st->kc = pl.kc;
    st->groups = pl.ngroups;
    st->cycles = st->compute_cycles + st->halo_cycles;
    st->mult_slots = st->steps * c->f * c->i;
    st->acc_drain = (int64_t)ny; /* every output is drained once by the PE owning it */
    st->acc_reads += st->acc_drain;
    st->weights = (int64_t)g->k * g->c * g->r * g->s;
    st->acts = (int64_t)g->c * g->h * g->w;
    st->outs = (int64_t)ny;
    if ((s = sgi_scnn_count_outputs(&pl, y, st)) != SG_OK) goto done;
    sg_scnn_energy_of(c, st);
done:
    sgi_scnn_plan_free(&pl);
    free(ysum), free(accs), free(outs), free(yown), free(gst);
    return s;
}
