/* SCNN configuration: defaults (Parashar et al. 2017, Table 3), checks, enum names,
 * and the statistics helpers every other file in src/sim shares. */
#include "sim/simi.h"

static const char *const ACC_NAMES[SG_SCNN_ACC_COUNT] = {"product", "step", "row", "kernel"};
static const char *const FETCH_NAMES[SG_SCNN_FETCH_COUNT] = {"stream", "aligned"};
static const char *const ARCH_NAMES[SG_SCNN_ARCH_COUNT] = {"scnn", "dcnn"};
static const char *const INDEX_NAMES[SG_SCNN_INDEX_COUNT] = {"weight", "group"};

const char *sg_scnn_accum_name(enum sg_scnn_accum a) {
    return (unsigned)a < SG_SCNN_ACC_COUNT ? ACC_NAMES[a] : "?";
}
int sg_scnn_accum_from_name(const char *s) {
    if (s && strcmp(s, "merged") == 0) return SG_SCNN_ACC_MERGED; /* the old name of "step" */
    for (int i = 0; i < SG_SCNN_ACC_COUNT; i++)
        if (s && strcmp(s, ACC_NAMES[i]) == 0) return i;
    return -1;
}
const char *sg_scnn_arch_name(enum sg_scnn_arch a) {
    return (unsigned)a < SG_SCNN_ARCH_COUNT ? ARCH_NAMES[a] : "?";
}
int sg_scnn_arch_from_name(const char *s) {
    for (int i = 0; i < SG_SCNN_ARCH_COUNT; i++)
        if (s && strcmp(s, ARCH_NAMES[i]) == 0) return i;
    return -1;
}
const char *sg_scnn_index_name(enum sg_scnn_index a) {
    return (unsigned)a < SG_SCNN_INDEX_COUNT ? INDEX_NAMES[a] : "?";
}
int sg_scnn_index_from_name(const char *s) {
    for (int i = 0; i < SG_SCNN_INDEX_COUNT; i++)
        if (s && strcmp(s, INDEX_NAMES[i]) == 0) return i;
    return -1;
}
const char *sg_scnn_fetch_name(enum sg_scnn_fetch f) {
    return (unsigned)f < SG_SCNN_FETCH_COUNT ? FETCH_NAMES[f] : "?";
}
int sg_scnn_fetch_from_name(const char *s) {
    for (int i = 0; i < SG_SCNN_FETCH_COUNT; i++)
        if (s && strcmp(s, FETCH_NAMES[i]) == 0) return i;
    return -1;
}

void sg_scnn_config_default(struct sg_scnn_config *c) {
    memset(c, 0, sizeof *c);
    c->pe_rows = c->pe_cols = 8;
    c->f = c->i = 4;
    c->banks = 32; /* A = 2 F I */
    c->bank_entries = 32;
    c->kc = 0;
    c->iaram_bytes = c->oaram_bytes = 10 * 1024;
    c->wfifo_entries = 50;
    c->index_bits = 4;
    c->value_bits = 16;
    c->acc_bits = 24; /* our assumption: 16-bit products summed with 8 guard bits */
    c->accumulate = SG_SCNN_ACC_PRODUCT;
    c->fetch = SG_SCNN_FETCH_STREAM;
    c->arch = SG_SCNN_ARCH_SCNN;
    c->index = SG_SCNN_INDEX_WEIGHT;
    c->index_unit = SG_SCNN_UNIT_WEIGHT;
    c->psum_entries = 0;
    c->act_in_dram = c->act_out_dram = 1;
    c->relu = 1;
    sg_energy_table_default(&c->energy);
}

enum sg_status sg_scnn_config_check(const struct sg_scnn_config *c) {
    if (c->pe_rows < 1 || c->pe_cols < 1 || c->pe_rows > 1024 || c->pe_cols > 1024)
        return sgi_error(SG_ERR_ARG, "PE grid %dx%d: each side must be 1..1024", c->pe_rows,
                         c->pe_cols);
    if (c->f < 1 || c->i < 1 || c->f > 64 || c->i > 64)
        return sgi_error(SG_ERR_ARG, "multiplier array %dx%d: F and I must be 1..64", c->f, c->i);
    if (c->banks < 1 || c->banks > 4096 || c->bank_entries < 1 || c->bank_entries > (1 << 20))
        return sgi_error(SG_ERR_ARG,
                         "accumulator: %d banks of %d entries (banks 1..4096, entries 1..2^20)",
                         c->banks, c->bank_entries);
    if (c->kc < 0) return sgi_error(SG_ERR_ARG, "Kc %d: give 0 (automatic) or a positive count", c->kc);
    if (c->iaram_bytes < 0 || c->oaram_bytes < 0 || c->wfifo_entries < 0)
        return sgi_error(SG_ERR_ARG, "buffer sizes must not be negative");
    if (c->index_bits < 1 || c->index_bits > 16 || c->value_bits < 1 || c->value_bits > 64 ||
        c->acc_bits < 1 || c->acc_bits > 64)
        return sgi_error(SG_ERR_ARG, "widths: index 1..16, value and accumulator 1..64 bits");
    if ((unsigned)c->accumulate >= SG_SCNN_ACC_COUNT || (unsigned)c->fetch >= SG_SCNN_FETCH_COUNT ||
        (unsigned)c->arch >= SG_SCNN_ARCH_COUNT || (unsigned)c->index >= SG_SCNN_INDEX_COUNT ||
        (unsigned)c->index_unit > SG_SCNN_UNIT_KERNEL)
        return sgi_error(SG_ERR_ARG, "unknown merge window, fetch order, architecture or index mode");
    if (c->psum_entries < 0 || c->psum_entries > (1 << 24))
        return sgi_error(SG_ERR_ARG, "partial-sum buffer of %d entries: give 0 (sized to the "
                         "window) or 1..2^24", c->psum_entries);
    return SG_OK;
}

int64_t sg_scnn_memory_refs(const struct sg_scnn_stats *s) {
    return s->weight_reads + s->weight_index_reads + s->act_reads + s->act_index_reads +
           s->acc_reads + s->acc_writes + s->out_writes + 3 * s->halo;
}

int64_t sg_scnn_psum_refs(const struct sg_scnn_stats *s) {
    return s->psum_reads + s->psum_writes;
}

int64_t sg_scnn_memory_bits(const struct sg_scnn_config *c, const struct sg_scnn_stats *s) {
    const int64_t vb = c->value_bits, ib = c->index_bits, ab = c->acc_bits;
    return (s->weight_reads + s->act_reads) * vb + (s->weight_index_reads + s->act_index_reads) * ib +
           (s->acc_reads + s->acc_writes + 3 * s->halo) * ab + s->out_writes * (vb + ib);
}

int64_t sg_scnn_dram_bits(const struct sg_scnn_stats *s) {
    return s->dram_weight_bits + s->dram_act_in_bits + s->dram_act_out_bits +
           s->dram_weight_refetch_bits;
}

double sg_scnn_utilisation(const struct sg_scnn_stats *s) {
    return s->mult_slots ? (double)s->products / (double)s->mult_slots : 0.0;
}

void sg_scnn_stats_add(struct sg_scnn_stats *a, const struct sg_scnn_stats *s) {
    a->kc = s->kc;
    if (s->psum_entries > a->psum_entries) a->psum_entries = s->psum_entries;
    if (s->wfifo_vectors > a->wfifo_vectors) a->wfifo_vectors = s->wfifo_vectors;
    a->psum_reads += s->psum_reads, a->psum_writes += s->psum_writes;
    a->flush_cycles += s->flush_cycles, a->dram_weight_refetch_bits += s->dram_weight_refetch_bits;
    a->energy.psum += s->energy.psum, a->energy.xbar += s->energy.xbar;
    a->energy.decode += s->energy.decode;
#define ADD(f) a->f += s->f
    ADD(groups), ADD(cycles), ADD(compute_cycles), ADD(halo_cycles), ADD(steps);
    ADD(conflict_stalls), ADD(idle_pe_cycles), ADD(products), ADD(products_formed);
    ADD(mult_slots), ADD(weight_reads), ADD(weight_index_reads), ADD(act_reads);
    ADD(act_index_reads), ADD(acc_reads), ADD(acc_writes), ADD(acc_drain), ADD(merge_adds);
    ADD(out_writes), ADD(halo), ADD(dram_weight_bits), ADD(dram_act_in_bits);
    ADD(dram_act_out_bits), ADD(weights), ADD(weight_nnz), ADD(weight_fillers), ADD(acts);
    ADD(act_nnz), ADD(act_fillers), ADD(outs), ADD(out_nnz), ADD(out_fillers);
    ADD(iaram_overflow), ADD(oaram_overflow), ADD(wfifo_overflow);
    ADD(energy.mult), ADD(energy.add), ADD(energy.weight), ADD(energy.act), ADD(energy.acc);
    ADD(energy.out), ADD(energy.halo), ADD(energy.dram), ADD(energy.total);
#undef ADD
}

enum sg_status sgi_scnn_check_layer(const struct sg_scnn_config *c, const struct sg_conv_geom *g) {
    enum sg_status st = sg_scnn_config_check(c);
    if (st != SG_OK) return st;
    if ((int64_t)c->banks * c->bank_entries > ((int64_t)1 << 24))
        return sgi_error(SG_ERR_LIMIT, "accumulator of %d x %d entries: at most 2^24 modelled",
                         c->banks, c->bank_entries);
    if (g->n != 1)
        return sgi_error(SG_ERR_ARG, "the SCNN model takes one image per layer call, got n = %d",
                         g->n);
    if (g->groups != 1)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "grouped convolution (groups = %d): simulate each group separately",
                         g->groups);
    struct sg_conv_geom chk = *g;
    if (sg_conv_geom_finish(&chk) != SG_OK) return SG_ERR_ARG;
    if (chk.p != g->p || chk.q != g->q)
        return sgi_error(SG_ERR_ARG, "geometry: output %dx%d given, %dx%d expected (call "
                         "sg_conv_geom_finish)", g->p, g->q, chk.p, chk.q);
    /* int-indexed loops: keep every extent and every per-channel plane well below 2^31 */
    const int64_t lim = (int64_t)1 << 30;
    if ((int64_t)g->h * g->w >= lim || (int64_t)g->p * g->q >= lim ||
        (int64_t)g->r * g->s >= lim || (int64_t)g->k * g->r * g->s >= lim)
        return sgi_error(SG_ERR_LIMIT, "layer too large for the model (planes and kernels "
                         "below 2^30 elements)");
    return SG_OK;
}
