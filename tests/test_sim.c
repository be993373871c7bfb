/* SCNN model: hand-computed counts for tiny layers, the fast simulator against the
 * brute-force walk on random layers, outputs against the dense convolution. */
#include <math.h>

#include "harness.h"
#include "sim/simi.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/sim.h"

/* The tiny layer of the hand-computed tests: one 4x4 input channel x = 1..16,
 * one 3x3 filter w = 1..9, no padding, stride 1 -> a 2x2 output. All positive,
 * so every output survives the ReLU. */
static void tiny(struct sg_conv_geom *g, float *x, float *w) {
    struct sg_conv_geom t = {1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    *g = t;
    CHECK_OK(sg_conv_geom_finish(g));
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
    for (int i = 0; i < 9; i++) w[i] = (float)(i + 1);
}

static void check_output(const struct sg_conv_geom *g, const float *x, const float *w,
                         const float *y) {
    size_t ny = (size_t)g->k * g->p * g->q;
    float *ref = malloc(ny * sizeof *ref);
    sg_conv2d_ref(g, x, w, NULL, ref);
    double e = sgt_max_rel_err(y, ref, ny);
    CHECK_MSG(e <= SG_SCNN_VERIFY_TOL, "output differs from sg_conv2d_ref: rel err %g", e);
    free(ref);
}

/* One PE, F = I = 4, stream fetch.
 * Activations: 16 non-zeros -> 4 vectors, vector j = input row j.
 * Weights (k, r, s order): 9 non-zeros -> vectors v0 = {(0,0) (0,1) (0,2) (1,0)},
 * v1 = {(1,1) (1,2) (2,0) (2,1)}, v2 = {(2,2)}.  steps = 4 x 3 = 12.
 * products formed = 16 x 9 = 144; useful = K C R S P Q = 9 x 4 = 36.
 * Output (p, q) = (h - r, w - s). Region = the 2x2 output, address p*2 + q = bank.
 * Product mode, cycles of each step = most products on one bank:
 *   v0: row 0: (0,0) x3, (0,1) x3 -> 3; row 1: + (1,0)->(0,0),(0,1) once -> 3;
 *       row 2: only (1,0) -> (1,0),(1,1) -> 1; row 3: nothing valid -> 1.   = 8
 *   v1: row 0: nothing -> 1; row 1: (0,0) x2, (0,1) x2 -> 2; row 2: every output
 *       x2 -> 2; row 3: (1,0) x2, (1,1) x2 -> 2.                             = 7
 *   v2: 1 per step.                                                         = 4
 *   cycles = 19, stalls = 19 - 12 = 7.
 * Merged mode: distinct outputs per step v0: 2 + 4 + 2 + 0, v1: 0 + 2 + 4 + 2,
 *   v2: 0 + 0 + 2 + 2 -> 20 accumulator writes, 36 - 20 = 16 merge adds, and at
 *   most one access per bank per step -> 12 cycles.
 * Reads: weights 4 act vectors x 9 entries = 36, activations 16; drain 4 outputs,
 * so acc_reads = writes + 4. DRAM: 9, 16 and 4 entries of 16 + 4 bits. */
SG_TEST(sim_hand_one_pe) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.kc, 1);
    CHECK_EQ_INT(st.groups, 1);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.products_formed, 144);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.mult_slots, 12 * 16);
    CHECK_EQ_INT(st.cycles, 19);
    CHECK_EQ_INT(st.conflict_stalls, 7);
    CHECK_EQ_INT(st.acc_writes, 36);
    CHECK_EQ_INT(st.acc_reads, 40);
    CHECK_EQ_INT(st.acc_drain, 4);
    CHECK_EQ_INT(st.merge_adds, 0);
    CHECK_EQ_INT(st.weight_reads, 36);
    CHECK_EQ_INT(st.weight_index_reads, 36);
    CHECK_EQ_INT(st.act_reads, 16);
    CHECK_EQ_INT(st.act_index_reads, 16);
    CHECK_EQ_INT(st.halo, 0);
    CHECK_EQ_INT(st.out_writes, 4);
    CHECK_EQ_INT(st.dram_weight_bits, 9 * 20);
    CHECK_EQ_INT(st.dram_act_in_bits, 16 * 20);
    CHECK_EQ_INT(st.dram_act_out_bits, 4 * 20);
    CHECK_EQ_INT(sg_scnn_memory_refs(&st), 36 + 36 + 16 + 16 + 40 + 36 + 4 + 0);

    c.accumulate = SG_SCNN_ACC_MERGED;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.acc_writes, 20);
    CHECK_EQ_INT(st.acc_reads, 24);
    CHECK_EQ_INT(st.merge_adds, 16);
    CHECK_EQ_INT(st.cycles, 12);
    CHECK_EQ_INT(st.conflict_stalls, 0);
}

/* The merge windows on the same layer (one filter, so the kernel-major loop keeps
 * the vectors v0 v1 v2 and the 12 steps of sim_hand_one_pe). Every product goes
 * to the partial-sum buffer (36 writes), whose banks are the region's addresses,
 * so the steps take the product mode's 19 cycles.
 * Kernel window: the filter's products reach the 4 outputs -> 4 accumulator
 * writes (reads 4 + drain 4), 36 - 4 = 32 psum reads and merge adds; the flush
 * puts one sum in each of 4 banks: 1 cycle -> 20 cycles. Buffer: the 2x2 region.
 * Row window (kernel row r x input row h): 6 windows with useful products
 * (h - r in {0, 1}), each 3 x 4 pairs of which 6 land on 2 outputs -> 12 writes,
 * 24 psum reads; the flush sends 3 sums to each output's bank: 3 cycles -> 22.
 * Buffer: one output row (2 entries). */
SG_TEST(sim_hand_merge_windows) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    struct sg_scnn_stats st;
    c.accumulate = SG_SCNN_ACC_KERNEL;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.psum_writes, 36);
    CHECK_EQ_INT(st.psum_reads, 32);
    CHECK_EQ_INT(st.merge_adds, 32);
    CHECK_EQ_INT(st.acc_writes, 4);
    CHECK_EQ_INT(st.acc_reads, 8);
    CHECK_EQ_INT(st.flush_cycles, 1);
    CHECK_EQ_INT(st.cycles, 20);
    CHECK_EQ_INT(st.psum_entries, 4);
    CHECK_EQ_INT(st.act_reads, 16);
    CHECK_EQ_INT(st.weight_reads, 36);
    CHECK_EQ_INT(sg_scnn_psum_refs(&st), 68);
    CHECK_EQ_INT(sg_scnn_memory_refs(&st), 36 + 36 + 16 + 16 + 8 + 4 + 4);
    c.accumulate = SG_SCNN_ACC_ROW;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.psum_writes, 36);
    CHECK_EQ_INT(st.psum_reads, 24);
    CHECK_EQ_INT(st.acc_writes, 12);
    CHECK_EQ_INT(st.flush_cycles, 3);
    CHECK_EQ_INT(st.cycles, 22);
    CHECK_EQ_INT(st.psum_entries, 2);
    /* a buffer that cannot hold one window is an error, not a silent overflow */
    c.psum_entries = 1;
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_ARG);
}

/* Group index on the same layer: the kept kernel is one index and 9 values
 * (kernel unit) or 3 indices of 3 values (row unit); read once per activation
 * vector (4): index reads 4 or 12, value reads 36; DRAM 9 x 16 + 1 or 3 x 4 bits.
 * A pruned row (w[3..5] = 0) under the row unit: 2 kept rows -> 2 indices, 6
 * values; under per-weight indices 6 entries with 6 indices. */
SG_TEST(sim_hand_group_index) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    c.index = SG_SCNN_INDEX_GROUP;
    c.index_unit = SG_SCNN_UNIT_KERNEL;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.weight_reads, 36);
    CHECK_EQ_INT(st.weight_index_reads, 4);
    CHECK_EQ_INT(st.dram_weight_bits, 9 * 16 + 4);
    c.index_unit = SG_SCNN_UNIT_ROW;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK_EQ_INT(st.weight_index_reads, 12);
    CHECK_EQ_INT(st.dram_weight_bits, 9 * 16 + 3 * 4);
    w[3] = w[4] = w[5] = 0;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.weight_reads, 4 * 6);
    CHECK_EQ_INT(st.weight_index_reads, 4 * 2);
    c.index = SG_SCNN_INDEX_WEIGHT;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK_EQ_INT(st.weight_reads, 4 * 6);
    CHECK_EQ_INT(st.weight_index_reads, 4 * 6);
}

/* DCNN on the tiny layer with a zero activation and a zero weight: a dense array
 * multiplies every pair anyway: 144 formed, 36 useful (K C R S P Q), 12 steps
 * and 12 cycles (no bank stalls in the dense design), no index reads, dense
 * DRAM traffic of 16-bit values. SCNN on the same data skips the zeros. */
SG_TEST(sim_hand_dcnn) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    x[5] = 0;
    w[4] = 0;
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    c.arch = SG_SCNN_ARCH_DCNN;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.products_formed, 144);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.cycles, 12);
    CHECK_EQ_INT(st.weight_reads, 36);
    CHECK_EQ_INT(st.weight_index_reads, 0);
    CHECK_EQ_INT(st.act_reads, 16);
    CHECK_EQ_INT(st.act_index_reads, 0);
    CHECK_EQ_INT(st.dram_weight_bits, 9 * 16);
    CHECK_EQ_INT(st.dram_act_in_bits, 16 * 16);
    CHECK_EQ_INT(st.dram_act_out_bits, 4 * 16);
    c.arch = SG_SCNN_ARCH_SCNN;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK(st.products < 36 && st.products_formed < 144);
}

/* Aligned fetch on the same layer: a kernel row (3 non-zeros) never shares a
 * vector with the next row (3 + 3 > F), so the vectors are the three rows.
 * Steps 4 x 3 = 12. Row r with input row h is useful iff 0 <= h - r < 2: 6 steps,
 * each 6 products on 2 outputs (3 each); the other 6 steps do nothing.
 * Product mode: 6 x 3 + 6 x 1 = 24 cycles, 36 writes.
 * Merged: 6 x 2 = 12 writes, 24 merge adds, 12 cycles. */
SG_TEST(sim_hand_aligned) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    c.fetch = SG_SCNN_FETCH_ALIGNED;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.cycles, 24);
    CHECK_EQ_INT(st.acc_writes, 36);
    c.accumulate = SG_SCNN_ACC_MERGED;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK_EQ_INT(st.acc_writes, 12);
    CHECK_EQ_INT(st.merge_adds, 24);
    CHECK_EQ_INT(st.cycles, 12);
}

/* 2x2 PEs on the tiny layer: each PE holds a 2x2 input tile (one activation
 * vector) and owns one output; every PE's inputs reach all 4 outputs, so it sends
 * 3 halo sums: halo = 4 x 3 = 12, halo cycles = 3. Steps 4 PEs x 1 x 3 = 12.
 * Weights read: 4 PEs x 1 vector pass x 9 = 36; activations 16.
 * Product mode, (cycles of v0, v1, v2) per PE, from the products per output:
 *   PE(0,0) inputs (0..1, 0..1): v0 -> (0,0) x3, (0,1) x2, (1,0) x2, (1,1) x1 = 3;
 *           v1 -> (0,0) x1 = 1; v2 -> none = 1; total 5, 9 products
 *   PE(0,1) inputs (0..1, 2..3): 2 + 2 + 1 = 5;  PE(1,0): 1 + 3 + 1 = 5;
 *   PE(1,1): 1 + 3 + 1 = 5.  Each PE forms 9 useful products (36 in all).
 *   cycles = max 5 + halo 3 = 8; stalls 4 x 2 = 8; no idle PE.
 * Merged: distinct outputs per PE 5, 6, 6, 7 -> 24 writes; every step 1 cycle,
 *   cycles = 3 + 3 = 6. */
SG_TEST(sim_hand_two_by_two) {
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 2;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.steps, 12);
    CHECK_EQ_INT(st.products, 36);
    CHECK_EQ_INT(st.halo, 12);
    CHECK_EQ_INT(st.halo_cycles, 3);
    CHECK_EQ_INT(st.compute_cycles, 5);
    CHECK_EQ_INT(st.cycles, 8);
    CHECK_EQ_INT(st.conflict_stalls, 8);
    CHECK_EQ_INT(st.idle_pe_cycles, 0);
    CHECK_EQ_INT(st.weight_reads, 36);
    CHECK_EQ_INT(st.act_reads, 16);
    CHECK_EQ_INT(st.acc_writes, 36);
    CHECK_EQ_INT(st.acc_drain, 4);
    CHECK_EQ_INT(st.out_writes, 4);
    c.accumulate = SG_SCNN_ACC_MERGED;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_EQ_INT(st.acc_writes, 24);
    CHECK_EQ_INT(st.merge_adds, 12);
    CHECK_EQ_INT(st.cycles, 6);
}

/* ---- fast simulator == brute-force walk ---- */

static void fill_sparse(sg_rng *r, float *v, size_t n, double density, int positive) {
    for (size_t i = 0; i < n; i++) {
        float z = sg_rng_normal(r);
        if (positive) z = fabsf(z) + 0.01f;
        v[i] = sg_rng_uniform(r) < density ? (z != 0.0f ? z : 0.5f) : 0.0f;
    }
}

static void check_same(const struct sg_scnn_stats *a, const struct sg_scnn_stats *b,
                       const char *what) {
#define SAME(f)                                                                        \
    CHECK_MSG(a->f == b->f, "%s: " #f " fast %lld, reference %lld", what, (long long)a->f, \
              (long long)b->f)
    SAME(kc); SAME(groups); SAME(cycles); SAME(compute_cycles); SAME(halo_cycles); SAME(steps);
    SAME(conflict_stalls); SAME(idle_pe_cycles); SAME(products); SAME(products_formed);
    SAME(mult_slots); SAME(weight_reads); SAME(weight_index_reads); SAME(act_reads);
    SAME(act_index_reads); SAME(acc_reads); SAME(acc_writes); SAME(acc_drain); SAME(merge_adds);
    SAME(out_writes); SAME(halo); SAME(dram_weight_bits); SAME(dram_act_in_bits);
    SAME(dram_act_out_bits); SAME(weights); SAME(weight_nnz); SAME(weight_fillers); SAME(acts);
    SAME(act_nnz); SAME(act_fillers); SAME(outs); SAME(out_nnz); SAME(out_fillers);
    SAME(iaram_overflow); SAME(oaram_overflow); SAME(wfifo_overflow);
    SAME(psum_reads); SAME(psum_writes); SAME(psum_entries); SAME(flush_cycles);
    SAME(dram_weight_refetch_bits); SAME(wfifo_vectors);
#undef SAME
    CHECK_NEAR(a->energy.total, b->energy.total, 1e-9 * fabs(b->energy.total) + 1e-9);
}

struct rcase {
    struct sg_conv_geom g;
    int pr, pc, f, i, banks, entries, kc, index_bits;
    double wd, ad;
};

static void compare_case(const struct rcase *t, uint64_t seed) {
    struct sg_conv_geom g = t->g;
    CHECK_OK(sg_conv_geom_finish(&g));
    sg_rng r;
    sg_rng_seed(&r, seed);
    size_t nw = (size_t)g.k * g.c * g.r * g.s, nx = (size_t)g.c * g.h * g.w,
           ny = (size_t)g.k * g.p * g.q;
    float *w = malloc(nw * 4), *x = malloc(nx * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4);
    fill_sparse(&r, w, nw, t->wd, 0);
    fill_sparse(&r, x, nx, t->ad, 1);
    /* every merge window x fetch order, then the index modes, the dense
     * architecture and on-chip activations on the product and kernel windows */
    for (int mode = 0; mode < SG_SCNN_ACC_COUNT * SG_SCNN_FETCH_COUNT + 8; mode++) {
            int acc, fe, arch = 0, index = 0, unit = 0, onchip = 0;
            if (mode < SG_SCNN_ACC_COUNT * SG_SCNN_FETCH_COUNT) {
                acc = mode / SG_SCNN_FETCH_COUNT, fe = mode % SG_SCNN_FETCH_COUNT;
            } else {
                const int m = mode - SG_SCNN_ACC_COUNT * SG_SCNN_FETCH_COUNT;
                acc = m % 2 ? SG_SCNN_ACC_KERNEL : SG_SCNN_ACC_PRODUCT;
                fe = SG_SCNN_FETCH_ALIGNED;
                if (m / 2 == 0) index = 1, unit = SG_SCNN_UNIT_ROW;
                if (m / 2 == 1) index = 1, unit = SG_SCNN_UNIT_KERNEL;
                if (m / 2 == 2) arch = SG_SCNN_ARCH_DCNN;
                if (m / 2 == 3) onchip = 1, acc = m % 2 ? SG_SCNN_ACC_ROW : SG_SCNN_ACC_MERGED;
            }
            struct sg_scnn_config c;
            sg_scnn_config_default(&c);
            c.pe_rows = t->pr, c.pe_cols = t->pc, c.f = t->f, c.i = t->i;
            if (t->banks) c.banks = t->banks;
            if (t->entries) c.bank_entries = t->entries;
            if (t->index_bits) c.index_bits = t->index_bits;
            c.kc = t->kc;
            c.wfifo_entries = 6;
            c.iaram_bytes = c.oaram_bytes = 40;
            c.accumulate = (enum sg_scnn_accum)acc;
            c.fetch = (enum sg_scnn_fetch)fe;
            c.arch = (enum sg_scnn_arch)arch;
            c.index = (enum sg_scnn_index)index;
            c.index_unit = (enum sg_scnn_gran_unit)unit;
            c.act_in_dram = c.act_out_dram = !onchip;
            struct sg_scnn_stats a, b;
            CHECK_OK(sg_scnn_layer(&c, &g, w, x, y1, &a));
            CHECK_OK(sg_scnn_layer_ref(&c, &g, w, x, y2, &b));
            char what[200];
            snprintf(what, sizeof what,
                     "c%d %dx%d k%d %dx%d s%d,%d pad %d,%d,%d,%d dil %d PEs %dx%d FxI %dx%d %s %s "
                     "%s index %s/%d onchip %d",
                     g.c, g.h, g.w, g.k, g.r, g.s, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.dh, t->pr,
                     t->pc, t->f, t->i, sg_scnn_accum_name(c.accumulate),
                     sg_scnn_fetch_name(c.fetch), sg_scnn_arch_name(c.arch),
                     sg_scnn_index_name(c.index), unit, onchip);
            check_same(&a, &b, what);
            check_output(&g, x, w, y1);
            CHECK_MSG(sgt_max_rel_err(y2, y1, ny) <= SG_SCNN_VERIFY_TOL, "%s: ref output", what);
        }
    free(w), free(x), free(y1), free(y2);
}

SG_TEST(sim_matches_reference_random) {
    /* g: n c h w k r s sh sw pt pl pb pr dh dw groups */
    static const struct rcase cases[] = {
        {{1, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 2, 4, 4, 0, 0, 0, 0, 0.4, 0.5},
        {{1, 2, 9, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 3, 4, 4, 0, 0, 0, 0, 0.6, 0.6},
        {{1, 3, 10, 10, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 3, 3, 4, 4, 0, 0, 0, 0, 0.5, 0.5},
        {{1, 6, 8, 8, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 2, 2, 4, 4, 0, 0, 0, 0, 0.3, 0.4},
        {{1, 4, 8, 8, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 2, 2, 4, 4, 0, 0, 0, 0, 0.7, 0.7},
        {{1, 2, 11, 9, 3, 3, 2, 1, 2, 2, 0, 1, 1, 2, 1, 1, 0, 0}, 2, 2, 2, 3, 0, 0, 0, 0, 0.6, 0.6},
        {{1, 2, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 4, 4, 4, 4, 0, 0, 0, 0, 0.8, 0.9},
        {{1, 2, 12, 12, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0}, 3, 2, 4, 4, 8, 16, 2, 0, 0.5, 0.5},
        {{1, 3, 7, 7, 6, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 1, 1, 4, 4, 6, 12, 0, 2, 0.15, 0.1},
        {{1, 9, 1, 1, 11, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 2, 2, 4, 4, 0, 0, 4, 0, 0.5, 0.7},
        {{1, 2, 13, 13, 4, 11, 11, 4, 4, 0, 0, 0, 0, 1, 1, 1, 0, 0}, 2, 2, 4, 4, 0, 0, 0, 0, 0.3, 0.5},
    };
    /* every path of the fast simulator: the scalar steps (0), the vector steps with
     * bitmap windows (1) and with window stamps (2); without AVX-512 all are scalar */
    for (int simd = 0; simd <= 2; simd++) {
        sgi_scnn_simd = simd;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) compare_case(&cases[i], 100 + i);
    }
    sgi_scnn_simd = 1;
}

/* A whole network (the vector steps, bitmap windows, several groups per layer)
 * gives identical counts and energy with 1 and 2 threads, in every merge window. */
SG_TEST(sim_net_thread_count_invariant) {
    for (int acc = 0; acc < SG_SCNN_ACC_COUNT; acc++) {
        struct sg_scnn_config c;
        sg_scnn_config_default(&c);
        c.accumulate = (enum sg_scnn_accum)acc;
        struct sg_scnn_net_opts o = {.net = "vgg16", .gran = SG_SCNN_GRAN_FINE,
                                     .weight_density = 0.3, .act_density = 0.4, .seed = 2,
                                     .layers = "conv5_1"};
        struct sg_scnn_run *r1, *r2;
        sg_set_threads(1);
        CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &r1));
        sg_set_threads(2);
        CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &r2));
        for (int i = 0; i < r1->n; i++) {
            check_same(&r1->layers[i].st, &r2->layers[i].st, "net threads");
            CHECK_EQ_INT(r1->layers[i].st.groups, 8);
        }
        CHECK(memcmp(&r1->total.energy, &r2->total.energy, sizeof r1->total.energy) == 0);
        sg_scnn_run_free(r1);
        sg_scnn_run_free(r2);
    }
}

/* The layers' data are made in parallel (run.c): layers with conv groups give
 * the same counts made one at a time by 1 thread and together by 2, and a bad
 * density found by a worker thread is reported with the layer's name. */
SG_TEST(sim_net_synth_parallel) {
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.accumulate = SG_SCNN_ACC_ROW;
    struct sg_scnn_net_opts o = {.net = "alexnet", .gran = SG_SCNN_GRAN_VECTOR,
                                 .weight_density = 0.3, .act_density = 0.4, .seed = 5,
                                 .layers = "conv2,conv3,conv4,conv5"};
    struct sg_scnn_run *r1, *r2;
    const size_t chunk = sgi_scnn_synth_chunk;
    sg_set_threads(1);
    sgi_scnn_synth_chunk = 1; /* one layer at a time */
    CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &r1));
    sg_set_threads(2);
    sgi_scnn_synth_chunk = chunk; /* all four together */
    CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &r2));
    CHECK_EQ_INT(r1->n, 4);
    CHECK_EQ_INT(r2->n, r1->n);
    for (int i = 0; i < r1->n && i < r2->n; i++) {
        CHECK(strcmp(r1->layers[i].name, r2->layers[i].name) == 0);
        check_same(&r1->layers[i].st, &r2->layers[i].st, r1->layers[i].name);
        CHECK(r1->layers[i].weight_density == r2->layers[i].weight_density);
        CHECK(r1->layers[i].act_density == r2->layers[i].act_density);
    }
    CHECK(memcmp(&r1->total.energy, &r2->total.energy, sizeof r1->total.energy) == 0);
    sg_scnn_run_free(r1);
    sg_scnn_run_free(r2);
    double wd[8] = {0.3, 0.3, 1.5, 0.3, 0.3, 0.3, 0.3, 0.3};
    o.layer_density = wd;
    o.n_layer_density = 8;
    o.layers = "conv3,conv4";
    CHECK_ERR(sg_scnn_run_net(&c, &o, NULL, NULL, &r1), SG_ERR_ARG);
    CHECK_MSG(strstr(sg_last_error(), "conv3") != NULL, "message: %s", sg_last_error());
    sg_set_threads(1);
}

/* The vector steps' outputs (layer_values: output-stationary, zero-padded input,
 * register blocks of 1 to 8 rows and 8 to 32 columns) are bit for bit the direct
 * convolution in double summed in (input channel, kernel row, kernel column)
 * order, for widths that end anywhere in a block, padding and dilation. */
SG_TEST(sim_vector_outputs_exact) {
    if (!sgi_scnn_vector_build) return;
    /* g: n c h w k r s sh sw pt pl pb pr dh dw groups */
    static const struct sg_conv_geom gs[] = {
        {1, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {1, 4, 19, 37, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {1, 2, 13, 70, 4, 5, 3, 1, 1, 2, 0, 1, 2, 1, 2, 1, 0, 0},
        {1, 5, 6, 23, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {1, 3, 11, 8, 2, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0, 0},
        {1, 2, 3, 1, 2, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0},
    };
    for (size_t t = 0; t < sizeof gs / sizeof gs[0]; t++) {
        struct sg_conv_geom g = gs[t];
        CHECK_OK(sg_conv_geom_finish(&g));
        sg_rng r;
        sg_rng_seed(&r, 40 + t);
        const size_t nw = (size_t)g.k * g.c * g.r * g.s, nx = (size_t)g.c * g.h * g.w,
                     ny = (size_t)g.k * g.p * g.q;
        float *w = malloc(nw * 4), *x = malloc(nx * 4), *y = malloc(ny * 4);
        double *ref = calloc(ny, sizeof *ref);
        fill_sparse(&r, w, nw, 0.6, 0);
        fill_sparse(&r, x, nx, 0.7, 0);
        for (int k = 0; k < g.k; k++)
            for (int p = 0; p < g.p; p++)
                for (int q = 0; q < g.q; q++) {
                    double sum = 0.0;
                    for (int c = 0; c < g.c; c++)
                        for (int i = 0; i < g.r; i++)
                            for (int j = 0; j < g.s; j++) {
                                const double wv = w[(((size_t)k * g.c + c) * g.r + i) * g.s + j];
                                const int h = p + i * g.dh - g.pt, ww = q + j * g.dw - g.pl;
                                if (wv == 0.0 || h < 0 || h >= g.h || ww < 0 || ww >= g.w) continue;
                                sum += wv * (double)x[((size_t)c * g.h + h) * g.w + ww];
                            }
                    ref[((size_t)k * g.p + p) * g.q + q] = sum;
                }
        for (int threads = 1; threads <= 2; threads++) {
            struct sg_scnn_config c;
            sg_scnn_config_default(&c);
            c.pe_rows = c.pe_cols = 2;
            struct sg_scnn_stats st;
            sg_set_threads(threads);
            CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
            size_t bad = 0;
            for (size_t i = 0; i < ny; i++) bad += memcmp(&y[i], &(float){(float)ref[i]}, 4) != 0;
            CHECK_MSG(bad == 0, "case %zu, %d threads: %zu of %zu outputs differ", t, threads, bad, ny);
        }
        sg_set_threads(1);
        free(w), free(x), free(y), free(ref);
    }
}

/* Dense weights and activations, no padding: every product is useful and their
 * number is K C R S P Q, for any stride and any PE grid. */
SG_TEST(sim_dense_product_count) {
    static const struct sg_conv_geom gs[] = {
        {1, 3, 12, 12, 4, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {1, 2, 13, 11, 3, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0},
        {1, 5, 9, 9, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0},
    };
    for (size_t t = 0; t < sizeof gs / sizeof gs[0]; t++) {
        struct sg_conv_geom g = gs[t];
        CHECK_OK(sg_conv_geom_finish(&g));
        size_t nw = (size_t)g.k * g.c * g.r * g.s, nx = (size_t)g.c * g.h * g.w;
        float *w = malloc(nw * 4), *x = malloc(nx * 4), *y = malloc((size_t)g.k * g.p * g.q * 4);
        sg_rng r;
        sg_rng_seed(&r, 7 + t);
        fill_sparse(&r, w, nw, 1.0, 1);
        fill_sparse(&r, x, nx, 1.0, 1);
        struct sg_scnn_config c;
        sg_scnn_config_default(&c);
        c.pe_rows = 3, c.pe_cols = 2;
        struct sg_scnn_stats st;
        CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
        CHECK_EQ_INT(st.products, (int64_t)g.k * g.c * g.r * g.s * g.p * g.q);
        CHECK_EQ_INT(st.weight_nnz, (int64_t)nw);
        CHECK_EQ_INT(st.act_nnz, (int64_t)nx);
        check_output(&g, x, w, y);
        /* DCNN on the same dense layer: the same products; every step takes one
         * cycle, so a group takes max over PEs of sum over channels of
         * ceil(tile / I) x ceil(Kc R S / F) cycles, plus the halo exchange */
        c.arch = SG_SCNN_ARCH_DCNN;
        struct sg_scnn_stats d;
        CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &d));
        check_output(&g, x, w, y);
        CHECK_EQ_INT(d.products, st.products);
        int64_t cyc = 0;
        for (int k0 = 0; k0 < g.k; k0 += (int)d.kc) {
            const int kcg = g.k - k0 < d.kc ? g.k - k0 : (int)d.kc;
            int64_t most = 0;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 2; j++) {
                    const int64_t th = (int64_t)(i + 1) * g.h / 3 - (int64_t)i * g.h / 3;
                    const int64_t tw = (int64_t)(j + 1) * g.w / 2 - (int64_t)j * g.w / 2;
                    const int64_t pe = g.c * ((th * tw + 3) / 4) * ((kcg * g.r * g.s + 3) / 4);
                    most = pe > most ? pe : most;
                }
            cyc += most;
        }
        CHECK_EQ_INT(d.compute_cycles, cyc);
        CHECK_EQ_INT(d.conflict_stalls, 0);
        free(w), free(x), free(y);
    }
}

/* With padding the useful products are the (k, c, r, s, p, q) whose input lies
 * inside the plane. */
SG_TEST(sim_dense_padded_products) {
    struct sg_conv_geom g = {1, 2, 7, 6, 3, 3, 3, 2, 1, 1, 2, 1, 0, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    int64_t want = 0;
    for (int p = 0; p < g.p; p++)
        for (int q = 0; q < g.q; q++)
            for (int r = 0; r < g.r; r++)
                for (int s = 0; s < g.s; s++) {
                    int h = p * g.sh - g.pt + r, w = q * g.sw - g.pl + s;
                    want += h >= 0 && h < g.h && w >= 0 && w < g.w;
                }
    want *= (int64_t)g.k * g.c;
    float w[54], x[84], y[3 * 4 * 8];
    for (int i = 0; i < 54; i++) w[i] = 1.0f + i;
    for (int i = 0; i < 84; i++) x[i] = 0.5f + i;
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK_EQ_INT(st.products, want);
    check_output(&g, x, w, y);
}

SG_TEST(sim_all_zero_inputs) {
    struct sg_conv_geom g = {1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    float w[4 * 3 * 9], x[3 * 64], y[4 * 64];
    sg_rng r;
    sg_rng_seed(&r, 3);
    for (int zero_w = 0; zero_w < 2; zero_w++) {
        fill_sparse(&r, w, sizeof w / 4, zero_w ? 0.0 : 0.5, 0);
        fill_sparse(&r, x, sizeof x / 4, zero_w ? 0.5 : 0.0, 1);
        struct sg_scnn_config c;
        sg_scnn_config_default(&c);
        c.pe_rows = c.pe_cols = 2;
        struct sg_scnn_stats st, ref;
        CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
        CHECK_OK(sg_scnn_layer_ref(&c, &g, w, x, y, &ref));
        check_same(&st, &ref, zero_w ? "zero weights" : "zero activations");
        CHECK_EQ_INT(st.steps, 0);
        CHECK_EQ_INT(st.products, 0);
        CHECK_EQ_INT(st.compute_cycles, 0);
        CHECK_EQ_INT(st.out_writes, 0);
        CHECK_EQ_INT(st.acc_writes, 0);
        CHECK_EQ_INT(st.acc_drain, 4 * 64);
        for (int i = 0; i < 4 * 64; i++) CHECK(y[i] == 0.0f);
    }
}

/* A fully connected layer is a 1x1 convolution of a C x 1 x 1 plane: one PE
 * holds the whole input, the others idle. */
SG_TEST(sim_fc_as_1x1) {
    struct sg_conv_geom g = {1, 40, 1, 1, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    float w[24 * 40], x[40], y[24];
    sg_rng r;
    sg_rng_seed(&r, 9);
    fill_sparse(&r, w, 24 * 40, 0.5, 0);
    fill_sparse(&r, x, 40, 0.5, 1);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    struct sg_scnn_stats st, ref;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    check_output(&g, x, w, y);
    CHECK_OK(sg_scnn_layer_ref(&c, &g, w, x, y, &ref));
    check_same(&st, &ref, "fc");
    CHECK_EQ_INT(st.halo, 0);
    CHECK_EQ_INT(st.kc, 24);
    CHECK_EQ_INT(st.idle_pe_cycles, 63 * st.compute_cycles);
}

/* The same layer on 1 and 2 threads: identical counts and identical output bits.
 * With Kc = 3 the layer has 6 groups: one thread runs it group by group, two
 * threads PE by PE (fewer than 4 groups per thread), so both paths are compared. */
SG_TEST(sim_thread_count_invariant) {
    struct sg_conv_geom g = {1, 8, 20, 20, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    size_t nw = (size_t)16 * 8 * 9, nx = (size_t)8 * 400, ny = (size_t)16 * 400;
    float *w = malloc(nw * 4), *x = malloc(nx * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4);
    sg_rng r;
    sg_rng_seed(&r, 11);
    fill_sparse(&r, w, nw, 0.4, 0);
    fill_sparse(&r, x, nx, 0.5, 1);
    for (int kc = 0; kc <= 3; kc += 3)
        for (int acc = 0; acc < SG_SCNN_ACC_COUNT; acc++) {
            struct sg_scnn_config c;
            sg_scnn_config_default(&c);
            c.accumulate = (enum sg_scnn_accum)acc;
            c.kc = kc;
            struct sg_scnn_stats a, b, ref;
            sg_set_threads(1);
            CHECK_OK(sg_scnn_layer(&c, &g, w, x, y1, &a));
            sg_set_threads(2);
            CHECK_OK(sg_scnn_layer(&c, &g, w, x, y2, &b));
            check_same(&a, &b, "threads");
            CHECK(memcmp(y1, y2, ny * 4) == 0);
            CHECK_EQ_INT(a.groups, kc ? 6 : 1);
            CHECK_OK(sg_scnn_layer_ref(&c, &g, w, x, y2, &ref));
            check_same(&a, &ref, "reference");
        }
    free(w), free(x), free(y1), free(y2);
}

SG_TEST(sim_rejects_bad_layers) {
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    float w[64] = {0}, x[64] = {0}, y[64];
    struct sg_scnn_stats st;
    struct sg_conv_geom g = {1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_UNSUPPORTED); /* groups */
    g.groups = 1;
    g.n = 2;
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_ARG);
    g.n = 1;
    c.pe_rows = c.pe_cols = 1;
    c.banks = 2, c.bank_entries = 4; /* 8 entries, a 4x4 output needs 16 */
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_LIMIT);
    c.banks = 4, c.bank_entries = 4, c.kc = 2; /* 2 x 16 > 16 */
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_ARG);
    CHECK(strstr(sg_last_error(), "Kc") != NULL);
    sg_scnn_config_default(&c);
    c.f = 0;
    CHECK_ERR(sg_scnn_layer(&c, &g, w, x, y, &st), SG_ERR_ARG);
}

/* Long zero runs: with 2-bit indices a run of z zeros costs z >> 2 fillers. */
SG_TEST(sim_fillers) {
    struct sg_conv_geom g = {1, 1, 1, 20, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    CHECK_OK(sg_conv_geom_finish(&g));
    float x[20] = {0}, w[1] = {2.0f}, y[20];
    x[0] = 1, x[9] = 1, x[19] = 1; /* runs 0, 8, 9 -> fillers 0 + 2 + 2 */
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    c.index_bits = 2;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    CHECK_EQ_INT(st.act_nnz, 3);
    CHECK_EQ_INT(st.act_fillers, 4);
    CHECK_EQ_INT(st.act_reads, 7);
    CHECK_EQ_INT(st.out_fillers, 4);
    CHECK_EQ_INT(st.dram_act_in_bits, 7 * 18);
}

SG_TEST(sim_energy_table) {
    struct sg_energy_table t;
    sg_energy_table_default(&t);
    CHECK_NEAR(t.mult_pj, 1.1, 1e-12);
    CHECK_NEAR(t.sram_bit_pj, 10.0 / 64, 1e-12);
    CHECK(t.weight_bit_pj < 0); /* derived from the buffer's size */
    /* per-bit energy ~ sqrt(size): 8 KB gives the table's figure, 2 KB half of it */
    CHECK_NEAR(sg_energy_bit_pj(&t, 8192), 10.0 / 64, 1e-12);
    CHECK_NEAR(sg_energy_bit_pj(&t, 2048), 5.0 / 64, 1e-12);
    const char *ok = "{\"mult_pj\": 0.5, \"source\": \"test\"}";
    CHECK_OK(sg_energy_table_parse(ok, strlen(ok), "t.json", &t));
    CHECK_NEAR(t.mult_pj, 0.5, 1e-12);
    CHECK_NEAR(t.add_pj, 0.4, 1e-12); /* untouched keys keep their values */
    CHECK(strcmp(t.source, "test") == 0);
    const char *bad[] = {"{\"mul_pj\": 1}", "{\"add_pj\": -1}", "{\"add_pj\": \"1\"}", "[1]",
                         "{\"add_pj\": 1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sg_energy_table u = t;
        CHECK_ERR(sg_energy_table_parse(bad[i], strlen(bad[i]), "bad.json", &u), SG_ERR_FORMAT);
        CHECK(strstr(sg_last_error(), "bad.json") != NULL);
        CHECK(u.mult_pj == t.mult_pj);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/e.json", sgt_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("{\"dram_bit_pj\": 0}", f);
    fclose(f);
    CHECK_OK(sg_energy_table_load(path, &t));
    CHECK(t.dram_bit_pj == 0.0);

    /* the hand layer's energy, term by term */
    struct sg_conv_geom g;
    float x[16], w[9], y[4];
    tiny(&g, x, w);
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.pe_rows = c.pe_cols = 1;
    struct sg_scnn_stats st;
    CHECK_OK(sg_scnn_layer(&c, &g, w, x, y, &st));
    /* buffers: weight FIFO 50 vectors of 4 x 20 bits = 500 B, IARAM and OARAM
     * 10240 B, one accumulator bank 32 x 24 bits = 96 B */
    const double b8k = 10.0 / 64;
    const double bw = b8k * sqrt(500.0 / 8192), bio = b8k * sqrt(10240.0 / 8192),
                 bacc = b8k * sqrt(96.0 / 8192);
    CHECK_NEAR(st.energy.mult, 144 * 1.1, 1e-9);
    CHECK_NEAR(st.energy.add, 36 * 0.4, 1e-9);
    CHECK_NEAR(st.energy.weight, 36 * (16 + 4) * bw, 1e-9);
    CHECK_NEAR(st.energy.act, 16 * 20 * bio, 1e-9);
    CHECK_NEAR(st.energy.acc, (40 + 36) * 24 * bacc, 1e-9);
    CHECK_NEAR(st.energy.out, 4 * 20 * bio, 1e-9);
    CHECK_NEAR(st.energy.xbar, 36 * 0.1, 1e-9);
    CHECK_NEAR(st.energy.decode, (36 + 16) * 0.03, 1e-9);
    CHECK_NEAR(st.energy.psum, 0, 1e-12);
    CHECK_NEAR(st.energy.dram, (9 + 16 + 4) * 20 * 1300.0 / 64, 1e-9);
    CHECK_NEAR(st.energy.total,
               st.energy.mult + st.energy.add + st.energy.weight + st.energy.act +
                   st.energy.acc + st.energy.psum + st.energy.out + st.energy.halo +
                   st.energy.xbar + st.energy.decode + st.energy.dram,
               1e-9);
}

/* ---- networks, pruning helper, runners ---- */

static void net_totals(const char *net, int *nconv, int64_t *macs, int64_t *params) {
    struct sg_scnn_shape *L;
    int n;
    CHECK_OK(sg_scnn_net_layers(net, &L, &n));
    *nconv = 0, *macs = 0, *params = 0;
    for (int i = 0; i < n; i++) {
        if (L[i].is_fc) continue;
        struct sg_conv_geom g = {1, L[i].c * L[i].groups, L[i].h, L[i].w, L[i].k, L[i].r, L[i].s,
                                 L[i].stride, L[i].stride, L[i].pad, L[i].pad, L[i].pad, L[i].pad,
                                 1, 1, L[i].groups, 0, 0};
        CHECK_OK(sg_conv_geom_finish(&g));
        ++*nconv;
        *params += (int64_t)L[i].k * L[i].c * L[i].r * L[i].s;
        *macs += (int64_t)L[i].k * L[i].c * L[i].r * L[i].s * g.p * g.q;
    }
    free(L);
}

/* Layer counts and multiply-accumulates against the published figures: VGG-16
 * 15.35 G, AlexNet (two groups) 666 M with 2.33 M conv weights, ResNet-50 3.8 G,
 * GoogLeNet 1.5 G, DenseNet-121 2.9 G. */
SG_TEST(sim_net_tables) {
    int n;
    int64_t macs, params;
    net_totals("vgg16", &n, &macs, &params);
    CHECK_EQ_INT(n, 13);
    CHECK_EQ_INT(macs, 15346630656LL);
    CHECK_EQ_INT(params, 14710464);
    net_totals("alexnet", &n, &macs, &params);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(macs, 665784864);
    CHECK_EQ_INT(params, 2332704);
    net_totals("resnet50", &n, &macs, &params);
    CHECK_EQ_INT(n, 53);
    CHECK_MSG(macs > 3.7e9 && macs < 3.95e9, "resnet50 %lld MACs", (long long)macs);
    net_totals("googlenet", &n, &macs, &params);
    CHECK_EQ_INT(n, 57);
    CHECK_MSG(macs > 1.4e9 && macs < 1.6e9, "googlenet %lld MACs", (long long)macs);
    net_totals("densenet121", &n, &macs, &params);
    CHECK_EQ_INT(n, 120);
    CHECK_MSG(macs > 2.8e9 && macs < 2.95e9, "densenet121 %lld MACs", (long long)macs);
    struct sg_scnn_shape *L;
    CHECK_ERR(sg_scnn_net_layers("vgg19", &L, &n), SG_ERR_ARG);
    for (const char *const *p = sg_scnn_net_names(); *p; p++) {
        CHECK_OK(sg_scnn_net_layers(*p, &L, &n));
        free(L);
    }
}

SG_TEST(sim_prune_groups) {
    const int64_t K = 6, C = 5, R = 3, S = 3, n = K * C * R * S;
    float *w = malloc(sizeof(float) * n), *w0 = malloc(sizeof(float) * n);
    sg_rng r;
    sg_rng_seed(&r, 21);
    for (int gr = 0; gr < SG_SCNN_GRAN_COUNT; gr++) {
        for (int64_t i = 0; i < n; i++) w0[i] = w[i] = sg_rng_normal(&r);
        const int64_t gs = gr == 0 ? 1 : gr == 1 ? S : gr == 2 ? R * S : C * R * S, ng = n / gs;
        int64_t kept;
        CHECK_OK(sg_scnn_prune_groups(w, K, C, R, S, (enum sg_scnn_gran)gr, 0.35, &kept));
        CHECK_EQ_INT(kept, llround(0.35 * ng) * gs);
        double min_kept = 1e30, max_pruned = 0;
        for (int64_t g = 0; g < ng; g++) {
            int nz = 0;
            double l1 = 0;
            for (int64_t i = 0; i < gs; i++) {
                nz += w[g * gs + i] != 0.0f;
                l1 += fabs(w0[g * gs + i]);
                CHECK(w[g * gs + i] == 0.0f || w[g * gs + i] == w0[g * gs + i]);
            }
            CHECK(nz == 0 || nz == gs); /* all or nothing within a group */
            if (nz) min_kept = l1 < min_kept ? l1 : min_kept;
            else max_pruned = l1 > max_pruned ? l1 : max_pruned;
        }
        CHECK(min_kept >= max_pruned);
    }
    CHECK_ERR(sg_scnn_prune_groups(w, K, C, R, S, SG_SCNN_GRAN_FINE, 1.5, NULL), SG_ERR_ARG);
    CHECK(sg_scnn_gran_from_name("kernel") == SG_SCNN_GRAN_KERNEL);
    CHECK(sg_scnn_gran_from_name("block") == -1);
    free(w), free(w0);
}

/* AlexNet conv4 and conv5 (two groups each) at kernel granularity, verified. */
SG_TEST(sim_run_net_subset) {
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    struct sg_scnn_net_opts o = {.net = "alexnet", .gran = SG_SCNN_GRAN_KERNEL,
                                 .weight_density = 0.35, .act_density = 0.4, .seed = 1,
                                 .layers = "conv4,conv5", .verify = 1};
    struct sg_scnn_run *run;
    CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &run));
    CHECK_EQ_INT(run->n, 2);
    CHECK(strcmp(run->layers[0].name, "conv4") == 0);
    CHECK_EQ_INT(run->layers[0].groups, 2);
    CHECK_EQ_INT(run->layers[0].geom.c, 192);
    CHECK_EQ_INT(run->layers[0].geom.k, 192);
    int64_t products = 0;
    for (int i = 0; i < run->n; i++) {
        const struct sg_scnn_layer_result *l = &run->layers[i];
        CHECK(l->verified);
        CHECK_MSG(l->max_rel_err <= SG_SCNN_VERIFY_TOL, "%s: err %g", l->name, l->max_rel_err);
        CHECK_NEAR(l->weight_density, 0.35, 1e-3);
        CHECK_NEAR(l->act_density, 0.4, 1e-3);
        products += l->st.products;
    }
    CHECK_EQ_INT(run->total.products, products);
    /* the same seed gives the same run */
    struct sg_scnn_run *again;
    o.verify = 0;
    CHECK_OK(sg_scnn_run_net(&c, &o, NULL, NULL, &again));
    CHECK_EQ_INT(again->total.cycles, run->total.cycles);
    CHECK_EQ_INT(sg_scnn_memory_refs(&again->total), sg_scnn_memory_refs(&run->total));
    sg_scnn_run_free(again);
    sg_scnn_run_free(run);
    o.layers = "conv9";
    CHECK_ERR(sg_scnn_run_net(&c, &o, NULL, NULL, &run), SG_ERR_ARG);
    CHECK(strstr(sg_last_error(), "conv9") != NULL);
}

/* A small model on real MNIST images: every conv layer's real input, verified. */
SG_TEST(sim_run_model_mnist) {
    const char *dir = sgt_mnist_dir();
    if (!dir) {
        printf("    (MNIST not found: skipped)\n");
        return;
    }
    struct sg_dataset *d;
    CHECK_OK(sg_dataset_load("mnist", dir, 0, &d));
    struct sg_model *m;
    CHECK_OK(sg_model_build("vgg7", 1, 28, 28, 10, 5, &m));
    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    c.accumulate = SG_SCNN_ACC_MERGED;
    struct sg_scnn_model_opts o = {.images = 2, .layers = "conv1,conv2,conv5", .verify = 1};
    struct sg_scnn_run *run;
    CHECK_OK(sg_scnn_run_model(&c, m, d, &o, NULL, NULL, &run));
    CHECK_EQ_INT(run->n, 3);
    CHECK_EQ_INT(run->images, 2);
    for (int i = 0; i < run->n; i++)
        CHECK_MSG(run->layers[i].verified && run->layers[i].max_rel_err <= SG_SCNN_VERIFY_TOL,
                  "%s: err %g", run->layers[i].name, run->layers[i].max_rel_err);
    CHECK_NEAR(run->layers[0].act_density, 1.0, 0.01); /* a normalised image has no zeros */
    CHECK(run->layers[1].act_density < 0.9);           /* after BN + ReLU */
    CHECK_EQ_INT(run->layers[0].st.acts, 2 * 28 * 28);
    sg_scnn_run_free(run);
    /* one-shot kernel pruning of a copy: conv1 stays dense, the others at 0.25, the
     * model itself is untouched */
    size_t w0, k0;
    sg_model_count(m, &w0, &k0);
    o.prune = 1, o.gran = SG_SCNN_GRAN_KERNEL, o.weight_density = 0.25;
    CHECK_OK(sg_scnn_run_model(&c, m, d, &o, NULL, NULL, &run));
    CHECK_NEAR(run->layers[0].weight_density, 1.0, 1e-9);
    CHECK_NEAR(run->layers[1].weight_density, 0.25, 1e-3);
    CHECK_NEAR(run->layers[2].weight_density, 0.25, 1e-3);
    for (int i = 0; i < run->n; i++)
        CHECK_MSG(run->layers[i].max_rel_err <= SG_SCNN_VERIFY_TOL, "%s pruned: err %g",
                  run->layers[i].name, run->layers[i].max_rel_err);
    size_t w1, k1;
    sg_model_count(m, &w1, &k1);
    CHECK(w1 == w0 && k1 == k0);
    sg_scnn_run_free(run);
    sg_model_free(m);
    sg_dataset_free(d);
}
