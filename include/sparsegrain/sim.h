/* sparsegrain/sim.h - a model of the SCNN sparse CNN accelerator (Parashar et al.,
 * ISCA 2017): cycles, per-buffer memory references and energy of a convolution
 * whose weights and input activations are stored compressed.
 *
 *     struct sg_scnn_config cfg;
 *     sg_scnn_config_default(&cfg);             // 8x8 PEs, 4x4 multipliers, 32 banks
 *     cfg.accumulate = SG_SCNN_ACC_MERGED;
 *     struct sg_conv_geom g = {1, C, H, W, K, R, S, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
 *     sg_conv_geom_finish(&g);                  // fills g.p, g.q (nn.h)
 *     float *y = malloc(sizeof(float) * K * g.p * g.q);
 *     struct sg_scnn_stats st;
 *     if (sg_scnn_layer(&cfg, &g, w, x, y, &st) != SG_OK) { ... sg_last_error() ... }
 *     // w: W[K][C][R][S] (zero = pruned), x: one image [C][H][W] (zeros skipped),
 *     // y: [K][P][Q] pre-activation sums, equal to sg_conv2d_ref(&g, x, w, NULL, y)
 *     printf("%lld cycles, %lld memory references, %.3g pJ\n", (long long)st.cycles,
 *            (long long)sg_scnn_memory_refs(&st), st.energy.total);
 *
 * Whole networks: sg_scnn_run_net() simulates the paper's ImageNet layer shapes
 * with synthetic weights pruned at a granularity and synthetic activations;
 * sg_scnn_run_model() runs a trained model on real images and simulates each
 * convolution with its real input activations. Both return a struct sg_scnn_run
 * (free with sg_scnn_run_free).
 *
 * The model (dataflow PT-IS-CP-sparse, every count and every assumption we had to
 * make where SCNN is not public) is documented in docs/scnn-model.md; the field
 * comments below give each count's definition in one line.
 * Ownership: the caller owns w, x and y. Limits: one image per call (g->n == 1),
 * groups == 1 (sg_scnn_run_* split grouped layers), planes and channels < 2^31,
 * a PE's partial sums of one output channel must fit the accumulator buffer.
 * Determinism: counts are integers and outputs are summed in a fixed order, so
 * results do not depend on the thread count.
 */
#ifndef SPARSEGRAIN_SIM_H
#define SPARSEGRAIN_SIM_H

#include "sparsegrain/core.h"
#include "sparsegrain/data.h"
#include "sparsegrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The merge window: how products reach the accumulator banks (--merge). */
enum sg_scnn_accum {
    SG_SCNN_ACC_PRODUCT = 0, /* every product is a read-add-write of one entry (SCNN) */
    SG_SCNN_ACC_MERGED = 1,  /* "step": products of one step with the same output are summed */
    SG_SCNN_ACC_ROW = 2,     /* kernel-major loop; products of one kernel row and one
                              * activation row are summed in the partial-sum buffer */
    SG_SCNN_ACC_KERNEL = 3,  /* kernel-major loop; all products of one kernel W[k][c] on the
                              * PE's tile are summed in the partial-sum buffer */
    SG_SCNN_ACC_COUNT
};
#define SG_SCNN_ACC_STEP SG_SCNN_ACC_MERGED
/* Which accelerator: SCNN (compressed, zeros skipped) or a dense one of the same
 * size (same PE grid, multipliers, buffers; every weight and activation is an
 * entry, every pair is multiplied, no indices). */
enum sg_scnn_arch { SG_SCNN_ARCH_SCNN = 0, SG_SCNN_ARCH_DCNN = 1, SG_SCNN_ARCH_COUNT };
/* Weight-stream index: one per non-zero weight (SCNN) or one per kept group
 * (kernel row or kernel, c->index_gran) with the group's values dense behind it. */
enum sg_scnn_index { SG_SCNN_INDEX_WEIGHT = 0, SG_SCNN_INDEX_GROUP = 1, SG_SCNN_INDEX_COUNT };
/* How the F non-zero weights of a step are taken from the compressed stream. */
enum sg_scnn_fetch {
    SG_SCNN_FETCH_STREAM = 0,  /* F consecutive non-zeros of the stream (SCNN) */
    SG_SCNN_FETCH_ALIGNED = 1, /* a kernel row's non-zeros are never split over two steps */
    SG_SCNN_FETCH_COUNT
};
const char *sg_scnn_accum_name(enum sg_scnn_accum a);
int sg_scnn_accum_from_name(const char *s); /* -1 if unknown */
const char *sg_scnn_fetch_name(enum sg_scnn_fetch f);
int sg_scnn_fetch_from_name(const char *s);
const char *sg_scnn_arch_name(enum sg_scnn_arch a);
int sg_scnn_arch_from_name(const char *s);
const char *sg_scnn_index_name(enum sg_scnn_index i);
int sg_scnn_index_from_name(const char *s);

/* Energy per event in picojoules. Default: 45 nm numbers of M. Horowitz,
 * "Computing's energy problem (and what we can do about it)", ISSCC 2014.
 * The per-bit energy of an on-chip buffer depends on its size: a buffer of B
 * bytes costs sram_bit_pj * (B / sram_ref_bytes)^sram_exponent per bit unless
 * its own *_bit_pj is set (>= 0; the default -1 means "derive from the size"). */
struct sg_energy_table {
    char source[160];   /* where the numbers come from */
    double mult_pj;     /* one 16-bit multiply (every product the array forms) */
    double add_pj;      /* one 16-bit add (accumulate, merge, halo add) */
    double sram_bit_pj; /* per bit of an SRAM of sram_ref_bytes */
    double sram_ref_bytes;
    double sram_exponent; /* per-bit energy ~ size^exponent */
    double weight_bit_pj; /* per bit read from the weight FIFO (-1: from its size) */
    double act_bit_pj;  /* per bit read from the IARAM (-1: from its size) */
    double acc_bit_pj;  /* per bit read or written in one accumulator bank (-1: from its size) */
    double psum_bit_pj; /* per bit of the partial-sum buffer (-1: from its size) */
    double out_bit_pj;  /* per bit written to the OARAM (-1: from its size) */
    double halo_bit_pj; /* per bit of a halo sum: sender read + owner read and write
                         * (-1: three accumulator-bank bit accesses) */
    double xbar_pj;     /* one product routed through the scatter crossbar */
    double decode_pj;   /* one zero-run index decoded (weights and activations) */
    double dram_bit_pj; /* per bit moved to or from DRAM */
};
void sg_energy_table_default(struct sg_energy_table *t);
/* Reads a JSON object whose keys are the field names above ("mult_pj", ...,
 * "source"); keys left out keep their current value in *t, unknown keys and
 * negative or non-numeric values are errors. */
enum sg_status sg_energy_table_load(const char *path, struct sg_energy_table *t);
/* The same from bytes in memory (what names the source in messages). */
enum sg_status sg_energy_table_parse(const char *json, size_t len, const char *what,
                                     struct sg_energy_table *t);

struct sg_scnn_config {
    int pe_rows, pe_cols;     /* PE grid (8 x 8) */
    int f, i;                 /* multiplier array: F weights x I activations (4 x 4) */
    int banks;                /* accumulator banks A (32) */
    int bank_entries;         /* partial sums per bank (32) */
    int kc;                   /* output channels per group; 0 = the most that fit the banks */
    int64_t iaram_bytes;      /* input activation RAM per PE (10240) */
    int64_t oaram_bytes;      /* output activation RAM per PE (10240) */
    int wfifo_entries;        /* weight FIFO depth in compressed entries (50) */
    int index_bits;           /* zero-run index width (4) */
    int value_bits;           /* weight and activation value width (16) */
    int acc_bits;             /* accumulator entry width (24) */
    enum sg_scnn_accum accumulate; /* the merge window */
    enum sg_scnn_fetch fetch;
    enum sg_scnn_arch arch;   /* SCNN or the dense baseline DCNN */
    enum sg_scnn_index index; /* weight-stream index per weight or per kept group */
    enum sg_scnn_gran_unit {  /* the group of --index group */
        SG_SCNN_UNIT_WEIGHT = 0, SG_SCNN_UNIT_ROW = 1, SG_SCNN_UNIT_KERNEL = 2
    } index_unit;
    int psum_entries;         /* partial-sum buffer of the row/kernel windows; 0 = sized to the
                               * layer's largest window (a smaller one that cannot hold a
                               * window is an error) */
    int act_in_dram;          /* 1: the input comes from DRAM; 0: it stays on chip (DRAM only
                               * for what exceeds a PE's IARAM) */
    int act_out_dram;         /* 1: outputs go to DRAM; 0: only what exceeds the OARAM */
    int relu;                 /* post-processing applies ReLU before compressing outputs (1) */
    struct sg_energy_table energy;
};
void sg_scnn_config_default(struct sg_scnn_config *c);
enum sg_status sg_scnn_config_check(const struct sg_scnn_config *c);

/* Energy of a layer, pJ, by where it is spent (sums to total). */
struct sg_scnn_energy {
    double mult, add, weight, act, acc, psum, out, halo, xbar, decode, dram, total;
};

/* Counts of one layer (or a sum of layers). "entries" are compressed stream
 * entries: a non-zero value or a filler zero, each with its zero-run index. */
struct sg_scnn_stats {
    int64_t kc;               /* output channels per group (of the last layer added) */
    int64_t groups;           /* output-channel groups (summed over layers) */
    int64_t cycles;           /* compute_cycles + halo_cycles */
    int64_t compute_cycles;   /* sum over groups of the slowest PE's step cycles */
    int64_t halo_cycles;      /* sum over groups of the most halo sums one PE sends */
    int64_t steps;            /* multiplier-array steps, all PEs */
    int64_t conflict_stalls;  /* sum over steps of (cycles of the step - 1) */
    int64_t idle_pe_cycles;   /* sum over groups and PEs of (slowest PE - this PE) */
    int64_t products;         /* products landing on a real output (the useful ones) */
    int64_t products_formed;  /* all F x I pairs formed, including discarded ones */
    int64_t mult_slots;       /* steps * F * I */
    int64_t weight_reads;     /* weight values read from the FIFO (entries, per pass) */
    int64_t weight_index_reads; /* their zero-run indices */
    int64_t act_reads;        /* activation values read from the IARAM (entries) */
    int64_t act_index_reads;  /* their zero-run indices */
    int64_t acc_reads;        /* accumulator reads: accumulate + drain */
    int64_t acc_writes;       /* accumulator writes (read-add-write) */
    int64_t acc_drain;        /* reads of owned sums by post-processing (in acc_reads) */
    int64_t merge_adds;       /* step/row/kernel windows: adds done before the banks */
    int64_t psum_reads;       /* row/kernel windows: partial-sum buffer reads (a product
                               * added to a sum already there) */
    int64_t psum_writes;      /* row/kernel windows: partial-sum buffer writes (every product) */
    int64_t psum_entries;     /* partial-sum buffer size used (largest over layers) */
    int64_t flush_cycles;     /* row/kernel: cycles writing window sums into the banks
                               * (part of compute_cycles) */
    int64_t out_writes;       /* compressed output entries written to the OARAM */
    int64_t halo;             /* partial sums sent to the PE owning their output; each is
                               * three accumulator accesses (sender read, owner read + write) */
    int64_t dram_weight_bits; /* compressed weights, read once per layer */
    int64_t dram_act_in_bits; /* compressed input activations, read once */
    int64_t dram_act_out_bits; /* compressed outputs, written once (or their spill) */
    int64_t dram_weight_refetch_bits; /* weight blocks longer than the FIFO, fetched again
                               * for every further activation vector (in dram bits) */
    int64_t wfifo_vectors;    /* longest weight block in FIFO entries (F-wide vectors) */
    int64_t weights, weight_nnz, weight_fillers; /* dense count, non-zeros, fillers */
    int64_t acts, act_nnz, act_fillers;
    int64_t outs, out_nnz, out_fillers;
    int64_t iaram_overflow;   /* PEs whose compressed input exceeds the IARAM */
    int64_t oaram_overflow;   /* PEs whose compressed output exceeds the OARAM */
    int64_t wfifo_overflow;   /* weight blocks (group and channel; row/kernel windows: one
                               * kernel) longer than the FIFO: refetched, see above */
    struct sg_scnn_energy energy;
};
/* On-chip SRAM references: weight + weight_index + act + act_index + acc_reads
 * + acc_writes + out_writes + 3 x halo (DRAM and the partial-sum buffer are not
 * included: see sg_scnn_psum_refs). */
int64_t sg_scnn_memory_refs(const struct sg_scnn_stats *s);
/* Partial-sum buffer accesses: psum_reads + psum_writes. */
int64_t sg_scnn_psum_refs(const struct sg_scnn_stats *s);
/* Bits moved by the references of sg_scnn_memory_refs (values value_bits, indices
 * index_bits, accumulator and halo sums acc_bits, outputs value + index bits). */
int64_t sg_scnn_memory_bits(const struct sg_scnn_config *c, const struct sg_scnn_stats *s);
/* Per-bit energy of a buffer of `bytes` under table t (the size rule above). */
double sg_energy_bit_pj(const struct sg_energy_table *t, double bytes);
int64_t sg_scnn_dram_bits(const struct sg_scnn_stats *s);
/* products / mult_slots: how full the steps are (0 when no step ran). */
double sg_scnn_utilisation(const struct sg_scnn_stats *s);
void sg_scnn_stats_add(struct sg_scnn_stats *sum, const struct sg_scnn_stats *s);
/* Fills s->energy from the counts and a table. */
void sg_scnn_energy_of(const struct sg_scnn_config *c, struct sg_scnn_stats *s);

/* Simulates one convolution for one image. w: [K][C][R][S], a weight is stored
 * iff it is non-zero (masked weights must be zero, as nn.h keeps them); x:
 * [C][H][W]; y: [K][P][Q] receives the sums before bias and activation (may be
 * NULL). Fully connected layers: C inputs as a C x 1 x 1 plane, R = S = 1. */
enum sg_status sg_scnn_layer(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                             const float *w, const float *x, float *y, struct sg_scnn_stats *st);
/* The same counts from a slow, direct walk over the dataflow (an independent
 * implementation used by the tests). */
enum sg_status sg_scnn_layer_ref(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                                 const float *w, const float *x, float *y,
                                 struct sg_scnn_stats *st);
/* Kc the simulator uses for this layer (c->kc, or the most that fit). */
enum sg_status sg_scnn_pick_kc(const struct sg_scnn_config *c, const struct sg_conv_geom *g,
                               int *kc);

/* Tolerance of --verify: max |y - ref| / max |ref| (outputs are summed in double
 * in another order than sg_conv2d_ref, then rounded to float). */
#define SG_SCNN_VERIFY_TOL 1e-5

/* ---- the paper's ImageNet networks, by shape ---- */
struct sg_scnn_shape {
    char name[48];
    int c, k, r, s;   /* input channels (per group), filters, kernel */
    int h, w;         /* input plane */
    int stride, pad;  /* symmetric */
    int groups;       /* AlexNet's two-GPU layers have 2 */
    int relu;         /* a ReLU follows directly (post-processing applies it) */
    int is_fc;        /* fully connected, simulated as 1x1 on a 1x1 plane */
};
/* NULL-terminated: alexnet, vgg16, googlenet, resnet50, densenet121. */
const char *const *sg_scnn_net_names(void);
/* Layer table of a network (conv layers, then FC layers); free() *out. */
enum sg_status sg_scnn_net_layers(const char *net, struct sg_scnn_shape **out, int *n);

/* Pruning granularity of the synthetic weights (the paper's four). */
enum sg_scnn_gran {
    SG_SCNN_GRAN_FINE = 0,   /* one weight */
    SG_SCNN_GRAN_VECTOR = 1, /* one kernel row W[k][c][r][:] */
    SG_SCNN_GRAN_KERNEL = 2, /* W[k][c][:][:] */
    SG_SCNN_GRAN_FILTER = 3, /* W[k][:][:][:] */
    SG_SCNN_GRAN_COUNT
};
const char *sg_scnn_gran_name(enum sg_scnn_gran g);
int sg_scnn_gran_from_name(const char *s);
/* The group of --index group for a pruning granularity: fine -> one weight,
 * vector -> kernel row, kernel and filter -> kernel (set cfg.index_unit from it
 * when a trained model's granularity is known). */
enum sg_scnn_gran_unit sg_scnn_index_unit(enum sg_scnn_gran g);
/* Keeps the round(density * groups) groups of largest L1 norm (ties: lower
 * position first) and zeroes the rest; *kept receives the kept weights. */
enum sg_status sg_scnn_prune_groups(float *w, int64_t k, int64_t c, int64_t r, int64_t s,
                                    enum sg_scnn_gran gran, double density, int64_t *kept);

struct sg_scnn_net_opts {
    const char *net;           /* one of sg_scnn_net_names() */
    enum sg_scnn_gran gran;
    double weight_density;     /* kept fraction of each pruned layer's weights */
    double act_density;        /* non-zero fraction of each layer's input */
    uint64_t seed;             /* weights and activation positions */
    const char *layers;        /* comma-separated names to run, NULL = all */
    int include_fc;            /* also simulate the FC layers */
    int prune_first;           /* prune the first conv and sparsify its input too */
    int verify;                /* compare each output with sg_conv2d_ref */
    /* Per-layer weight densities (NULL: weight_density everywhere): n_layer_density
     * values in table order (FC layers included); a value < 0 keeps the layer dense. */
    const double *layer_density;
    int n_layer_density;
    const double *layer_act_density; /* the same for activation densities (NULL: act_density) */
    int n_layer_act_density;
};

struct sg_scnn_layer_result {
    char name[SG_NAME_MAX];
    struct sg_conv_geom geom;   /* one group of the layer */
    int groups;                 /* conv groups simulated one after the other */
    double weight_density, act_density; /* measured */
    int verified;               /* 1 when compared with the reference */
    double max_rel_err;         /* worst over images and groups */
    struct sg_scnn_stats st;    /* summed over groups and images */
};
struct sg_scnn_run {
    int n;                              /* layers */
    struct sg_scnn_layer_result *layers;
    int images;                         /* 1 for sg_scnn_run_net */
    struct sg_scnn_stats total;
};
void sg_scnn_run_free(struct sg_scnn_run *r);

/* Progress: stage "scnn", step = layers (or layer-images) done of total. */
enum sg_status sg_scnn_run_net(const struct sg_scnn_config *c, const struct sg_scnn_net_opts *o,
                               sg_progress_fn progress, void *ctx, struct sg_scnn_run **out);
struct sg_scnn_model_opts {
    int images;          /* the first `images` images of the data set */
    const char *layers;  /* comma-separated node names to simulate, NULL = all */
    int include_fc;      /* also simulate the FC layers */
    int verify;          /* compare each output with sg_conv2d_ref */
    /* Optional one-shot pruning of a copy of the model before the run (no
     * retraining, so accuracy is not matched): every conv layer but the first
     * (unless prune_first) to weight_density at gran, by L1 norm. */
    int prune;
    enum sg_scnn_gran gran;
    double weight_density;
    int prune_first;
};
/* Runs the images through m (evaluation mode) and simulates every convolution
 * (and FC layer) with its real input activations; counts are summed over images.
 * The post-processing ReLU is applied when a ReLU node reads the layer. m is not
 * changed (pruning, if asked, works on a copy). */
enum sg_status sg_scnn_run_model(const struct sg_scnn_config *c, struct sg_model *m,
                                 const struct sg_dataset *d, const struct sg_scnn_model_opts *o,
                                 sg_progress_fn progress, void *ctx, struct sg_scnn_run **out);

#ifdef __cplusplus
}
#endif
#endif
