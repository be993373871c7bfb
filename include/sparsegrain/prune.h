/* sparsegrain/prune.h - pruning at every granularity.
 *
 * Four independent axes, each an enum with a name table:
 *   granularity  which weights form a group (fine, vector, kernel, filter, channel,
 *                block, nm); all weights of a group are kept or removed together;
 *   criterion    the saliency of a group (l1, l2, max, mean, random);
 *   selection    how targets are set: the same density per layer, one global
 *                threshold, or a per-layer profile;
 *   schedule     the density at time t (oneshot, iterative, agp).
 *
 *     struct sg_prune_cfg pc;
 *     sg_prune_cfg_default(&pc);                 // fine, l1, per layer, conv except first
 *     pc.spec.gran = SG_GRAN_KERNEL;
 *     struct sg_prune_result r;
 *     sg_prune_model(m, &pc, 0.3, &r);            // masks and zeroed weights in m
 *     // r.density: kept / weights over the pruned layers
 *
 * Selection keeps exactly round(density * groups) groups per layer, ties broken
 * by position (the lower flat index wins), in time linear in the weights (radix
 * select, no sort). A group whose mask is already all zero scores below every
 * live group, so repeated pruning at falling densities only removes groups.
 * Masks are constant within every group. The model invariant (pruned weights are
 * 0) holds afterwards.
 */
#ifndef SPARSEGRAIN_PRUNE_H
#define SPARSEGRAIN_PRUNE_H

#include "sparsegrain/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stored in model metadata by name; values append-only. */
enum sg_granularity {
    SG_GRAN_FINE = 0,    /* one weight */
    SG_GRAN_VECTOR = 1,  /* one kernel row W[k,c,r,:] (or column W[k,c,:,s]) */
    SG_GRAN_KERNEL = 2,  /* W[k,c,:,:] */
    SG_GRAN_FILTER = 3,  /* W[k,:,:,:] */
    SG_GRAN_CHANNEL = 4, /* W[:,c,:,:] */
    SG_GRAN_BLOCK = 5,   /* a bk x bc x br x bs tile */
    SG_GRAN_NM = 6,      /* N of every M consecutive weights along C */
    SG_GRAN_COUNT
};
enum sg_criterion {
    SG_CRIT_L1 = 0,
    SG_CRIT_L2 = 1,
    SG_CRIT_MAX = 2,
    SG_CRIT_MEAN = 3,
    SG_CRIT_RANDOM = 4, /* control: a fixed random ranking (seeded) */
    SG_CRIT_COUNT
};
enum sg_selection { SG_SEL_LAYER = 0, SG_SEL_GLOBAL = 1, SG_SEL_PROFILE = 2, SG_SEL_COUNT };
enum sg_schedule { SG_SCHED_ONESHOT = 0, SG_SCHED_ITERATIVE = 1, SG_SCHED_AGP = 2, SG_SCHED_COUNT };
/* What happens to fully connected layers. */
enum sg_fc_mode { SG_FC_DENSE = 0, SG_FC_FINE = 1, SG_FC_SAME = 2, SG_FC_COUNT };

const char *sg_granularity_name(enum sg_granularity g);
int sg_granularity_from_name(const char *s); /* -1 if unknown */
const char *sg_criterion_name(enum sg_criterion c);
int sg_criterion_from_name(const char *s);
const char *sg_selection_name(enum sg_selection s);
int sg_selection_from_name(const char *s);
const char *sg_schedule_name(enum sg_schedule s);
int sg_schedule_from_name(const char *s);
const char *sg_fc_mode_name(enum sg_fc_mode f);
int sg_fc_mode_from_name(const char *s);

struct sg_prune_spec {
    enum sg_granularity gran;
    int vector_cols;       /* vector: 0 = rows (along S), 1 = columns (along R) */
    struct sg_tile block;  /* block: tile shape (components <= 0 mean "whole extent") */
    int nm_n, nm_m;        /* nm: keep nm_n of every nm_m */
    enum sg_criterion crit;
    uint64_t seed;         /* random criterion */
};
void sg_prune_spec_default(struct sg_prune_spec *s);
/* Parses "fine", "vector", "kernel", "filter", "channel", "block:1x4x1x1", "nm:2:4",
 * "2:4" into s (criterion and seed untouched). */
enum sg_status sg_prune_spec_parse(const char *text, struct sg_prune_spec *s);
/* Canonical text of a spec ("kernel", "block:1x4x1x1", "nm:2:4", "vector:col"). */
void sg_prune_spec_format(const struct sg_prune_spec *s, char *buf, size_t cap);

/* The group tile of a granularity on a layer (not for nm). */
struct sg_tile sg_prune_tile(const struct sg_prune_spec *s, const struct sg_wview *v);
/* Groups of a layer under s (nm: groups of M along C). */
int64_t sg_prune_groups(const struct sg_prune_spec *s, const struct sg_wview *v);
/* Group scores, n = sg_prune_groups entries. Dead groups (mask all 0) score -1. */
enum sg_status sg_prune_scores(const struct sg_prune_spec *s, const struct sg_wview *v,
                               float *scores);
/* Keeps the `keep` best groups of one layer (nm: ignores keep, keeps N of M),
 * writes the mask and zeroes pruned weights. */
enum sg_status sg_prune_layer(const struct sg_prune_spec *s, struct sg_wview *v, int64_t keep);
/* Same, with keep = round(density * groups). */
enum sg_status sg_prune_layer_density(const struct sg_prune_spec *s, struct sg_wview *v,
                                      double density);

/* Threshold selection in linear time: finds t with count(x > t) < k <= count(x >= t)
 * over x[0..n) (any finite floats); *above = count(x > t). k in [1, n]. */
void sg_select_kth(const float *x, size_t n, size_t k, float *t, size_t *above);

/* ---- whole models ---- */
struct sg_profile { /* per-layer target densities (selection "profile") */
    int n;
    char (*names)[SG_NAME_MAX];
    double *density;
};
enum sg_status sg_profile_load(const char *path, struct sg_profile **out);
void sg_profile_free(struct sg_profile *p);

struct sg_prune_cfg {
    struct sg_prune_spec spec; /* conv layers in scope */
    enum sg_fc_mode fc;        /* fully connected layers */
    int include_first;         /* prune the first conv layer too */
    enum sg_selection sel;
    const struct sg_profile *profile; /* SG_SEL_PROFILE */
};
void sg_prune_cfg_default(struct sg_prune_cfg *c);

/* The spec that applies to weight parameter p, or NULL when p stays dense (the first
 * conv layer unless include_first, fc layers as fc says, and under filter granularity
 * the output layer, whose filters are the network's outputs). */
const struct sg_prune_spec *sg_prune_scope(const struct sg_model *m, const struct sg_prune_cfg *c,
                                           int32_t p, struct sg_prune_spec *fine_buf);

struct sg_prune_result {
    size_t weights, kept; /* over the pruned layers */
    double density;       /* kept / weights */
    int layers;           /* layers pruned */
};
/* Prunes every layer in scope to `density` (per layer or globally), or to the
 * profile's densities. Records the configuration in the model's metadata. */
enum sg_status sg_prune_model(struct sg_model *m, const struct sg_prune_cfg *c, double density,
                              struct sg_prune_result *r);
/* Density over the layers in scope (for reporting a schedule's progress). */
void sg_prune_measure(const struct sg_model *m, const struct sg_prune_cfg *c,
                      struct sg_prune_result *r);

/* ---- following pruned structure through the graph ----
 * Run by sg_prune_model after every selection (call it after sg_prune_layer on a
 * whole model). A conv filter or fc row with no kept weight is gone: its bias and
 * the gamma and beta of a batch norm it reaches through ops that keep 0 at 0 are
 * masked, so its channel is exactly 0 in training and evaluation. Weights that
 * read a channel that is always 0 (after relu, pools, flatten, concat, dropout,
 * such a batch norm, or an add whose every addend is 0) are masked, and so is a
 * filter whose output no kept weight reads (channel pruning takes the producer's
 * filter when nothing else consumes it). Only masks go from 1 to 0; the
 * invariant holds. Models without a graph are left alone. */
struct sg_prune_follow {
    int64_t filters;  /* conv/fc output channels that are now exactly 0 */
    int64_t consumer; /* weights masked here because their input channel is 0 */
    int64_t producer; /* weights masked here because nothing reads their output */
    int64_t params;   /* biases and batch-norm gamma/beta entries masked here */
};
enum sg_status sg_prune_follow(struct sg_model *m, struct sg_prune_follow *out); /* out may be NULL */

/* ---- thinning: the smaller dense model ----
 * sg_thin writes into *out a model without the channels that are exactly 0 or that
 * nothing reads: pruned filters with their biases and batch-norm entries, and the
 * consumers' matching input channels (fc inputs of a flatten: the channel's H*W
 * columns). Outputs equal m's (within float rounding) in training and evaluation.
 * Channels tied by an add (residual) go only where every addend's channel goes;
 * concatenations map their offsets; the network's input and output, softmax inputs
 * and grouped (not depthwise) convolutions keep theirs; each kept zero channel of a
 * layer gives a line in r->notes. Masks of the kept weights, metadata and the input
 * preprocessing are carried over ("thinned" is added to the metadata). With nothing
 * to remove, *out is a copy of m and r->changed is 0. Errors: a model without a
 * graph, a layer all of whose channels would go. Free r with sg_thin_result_free. */
struct sg_thin_layer {
    char name[SG_NAME_MAX];  /* the conv/fc node */
    int64_t in[2], out[2];   /* input channels per group (fc: inputs) and filters, before/after */
    int64_t weights[2];      /* weight elements before/after */
    int64_t kept[2];         /* unmasked weight elements before/after */
};
struct sg_thin_result {
    int32_t n_layers;
    struct sg_thin_layer *layers; /* conv/fc layers in graph order */
    int64_t params[2];            /* all parameter elements before/after */
    int64_t weights[2], kept[2];  /* conv/fc weight elements, and unmasked ones */
    int64_t channels[2];          /* conv/fc output channels */
    int changed;                  /* 0: nothing to remove */
    int32_t n_notes;
    char (*notes)[256];           /* zero or unused channels that stay, and why */
};
enum sg_status sg_thin(const struct sg_model *m, struct sg_model **out, struct sg_thin_result *r);
void sg_thin_result_free(struct sg_thin_result *r);

/* ---- schedules: density at progress t in [0, 1] ---- */
struct sg_sched {
    enum sg_schedule kind;
    double d0, d1;  /* start and final density */
    int steps;      /* iterative: number of equal steps in log density; agp: pruning steps */
    double t_end;   /* agp: fraction of the run after which density stays at d1 */
};
/* oneshot: d1 for every t; iterative: d0 * (d1/d0)^(ceil(t*steps)/steps);
 * agp (Zhu and Gupta 2017): sparsity s(t) = s1 + (s0 - s1)(1 - t/t_end)^3 up to
 * t_end, evaluated at the start of each of `steps` equal pruning intervals. */
double sg_sched_density(const struct sg_sched *s, double t);

/* ---- structure statistics ---- */
/* Fraction of groups holding at least one non-zero weight, at granularity g
 * (block/nm use spec). Fine: non-zero weights / weights. */
double sg_group_density(const struct sg_wview *v, const struct sg_prune_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
