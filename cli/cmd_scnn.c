/* sparsegrain scnn: cycles, memory references and energy on the SCNN accelerator
 * model, for a trained model on real images or for the paper's ImageNet shapes. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparsegrain/sim.h"

static const struct cli_opt OPTS[] = {
    {"net", 'n', "NAME", "ImageNet shapes: alexnet, vgg16, googlenet, resnet50, densenet121", NULL},
    {"granularity", 'g', "G", "pruning granularity fine, vector, kernel, filter (MODEL: see below)", "fine"},
    {"weight-density", 0, "X", "kept fraction of each pruned layer's weights", "0.35"},
    {"act-density", 0, "X", "--net: non-zero fraction of each layer's input", "0.4"},
    {"seed", 's', "N", "--net: seed of the synthetic weights and activations", "1"},
    {"prune-first", 0, NULL, "prune the first conv layer too (--net: and sparsify its input)", NULL},
    {"layers", 'l', "A,B", "simulate only these layers (names as in the table)", NULL},
    {"fc", 0, NULL, "also simulate fully connected layers (1x1 on a 1x1 plane)", NULL},
    {"data", 'd', "NAME", "MODEL: data set mnist or fashion (default: the model's)", NULL},
    {"data-dir", 0, "DIR", "MODEL: folder with t10k-{images,labels} IDX files", NULL},
    {"images", 'i', "N", "MODEL: test images to run (the first N)", "16"},
    {"arch", 0, "A", "scnn (compressed, zeros skipped) or dcnn (dense accelerator of the same size)", "scnn"},
    {"merge", 'm', "W", "merge window: product (none), step, row or kernel (see below)", "product"},
    {"accumulate", 'a', "MODE", "old name of --merge (merged = step)", NULL},
    {"index", 0, "I", "weight-stream index per weight or per kept group (group)", "weight"},
    {"psum-entries", 0, "N", "partial-sum buffer of the row/kernel windows (0 = one window)", "0"},
    {"layer-densities", 0, "A,B", "--net: weight density of every layer in table order (-1 = dense)", NULL},
    {"layer-act-densities", 0, "A,B", "--net: activation density of every layer (-1 = dense)", NULL},
    {"fetch", 'f', "ORDER", "weight vectors: stream or aligned (kernel rows kept whole)", "stream"},
    {"pe", 0, "RxC", "PE grid", "8x8"},
    {"mult", 0, "FxI", "multiplier array: F weights x I activations", "4x4"},
    {"banks", 0, "N", "accumulator banks", "32"},
    {"bank-entries", 0, "N", "partial sums per bank", "32"},
    {"kc", 0, "N", "output channels per group (0 = as many as fit the banks)", "0"},
    {"iaram", 0, "BYTES", "input activation RAM per PE", "10240"},
    {"oaram", 0, "BYTES", "output activation RAM per PE", "10240"},
    {"wfifo", 0, "N", "weight FIFO depth in entries", "50"},
    {"index-bits", 0, "N", "zero-run index width", "4"},
    {"value-bits", 0, "N", "weight and activation width", "16"},
    {"acc-bits", 0, "N", "accumulator entry width", "24"},
    {"energy", 'e', "FILE", "energy table (JSON: mult_pj, add_pj, *_bit_pj, source)", NULL},
    {"verify", 0, NULL, "check every output against the dense reference convolution", NULL},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static const char DETAILS[] =
    "Either MODEL (a trained .sgm run on real test images; every convolution is fed its\n"
    "real input activations) or --net NAME (the paper's ImageNet layer shapes with random\n"
    "normal weights pruned to --weight-density at --granularity by L1 norm, and random\n"
    "activation positions at --act-density). See docs/scnn-model.md for the model.\n"
    "With MODEL, --granularity or --weight-density prunes a copy of the model one-shot by\n"
    "L1 norm before the run (no retraining: accuracy is not matched), so granularities\n"
    "can be compared with real activations.\n"
    "Merge windows: product = every product is an accumulator read-add-write (SCNN);\n"
    "step = products of one multiplier step on one output are summed first; row and\n"
    "kernel = a kernel-major loop sums the products of one kernel row x input row, or\n"
    "of a whole kernel on the PE's tile, in a partial-sum buffer before the banks.\n"
    "--index group (--net, or MODEL with --granularity): one index per kept kernel row\n"
    "(vector) or kernel (kernel, filter); fine keeps one per weight.\n"
    "memory refs = weight + weight index + activation + activation index reads +\n"
    "accumulator reads (incl. drain) and writes + output writes + 3 x halo sums (on-chip\n"
    "SRAM accesses; the partial-sum buffer (psum refs) and DRAM are reported separately).";

static void parse_pair(const struct cli_args *a, const char *opt, int *x, int *y, int max) {
    const char *s = cli_str(a, opt);
    char tail;
    if (sscanf(s, "%dx%d%c", x, y, &tail) != 2 || *x < 1 || *y < 1 || *x > max || *y > max)
        cli_usage_error(a, "--%s must look like 8x8 (each side 1..%d), got '%s'", opt, max, s);
}

/* Comma-separated densities: each in [0, 1], or -1 (the layer stays dense). */
static int parse_list(const struct cli_args *a, const char *opt, double *v, int max) {
    const char *s = cli_str(a, opt);
    int n = 0;
    while (*s) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || !(x == -1 || (x >= 0 && x <= 1)) || n == max)
            cli_usage_error(a, "--%s: a comma-separated list of densities in [0, 1] or -1, "
                            "got '%s'", opt, cli_str(a, opt));
        v[n++] = x;
        s = end;
        if (*s == ',') s++;
        else if (*s) cli_usage_error(a, "--%s: unexpected '%s'", opt, s);
    }
    return n;
}

static int progress(void *ctx, const struct sg_progress *p) {
    (void)ctx;
    cli_progress_note("scnn: %lld/%lld", (long long)p->step, (long long)p->total);
    return cli_interrupted();
}

static const char *si(double v) {
    if (v >= 1e12) return cli_fmt("%.3gT", v / 1e12);
    if (v >= 1e9) return cli_fmt("%.3gG", v / 1e9);
    if (v >= 1e6) return cli_fmt("%.3gM", v / 1e6);
    if (v >= 1e4) return cli_fmt("%.3gk", v / 1e3);
    return cli_fmt("%.0f", v);
}

static void json_refs(struct sg_json *j, const struct sg_scnn_stats *s) {
    sg_json_key(j, "refs"), sg_json_obj(j);
    sg_json_key(j, "weight"), sg_json_int(j, s->weight_reads);
    sg_json_key(j, "weight_index"), sg_json_int(j, s->weight_index_reads);
    sg_json_key(j, "act"), sg_json_int(j, s->act_reads);
    sg_json_key(j, "act_index"), sg_json_int(j, s->act_index_reads);
    sg_json_key(j, "acc_read"), sg_json_int(j, s->acc_reads);
    sg_json_key(j, "acc_write"), sg_json_int(j, s->acc_writes);
    sg_json_key(j, "out_write"), sg_json_int(j, s->out_writes);
    sg_json_key(j, "halo"), sg_json_int(j, 3 * s->halo);
    sg_json_key(j, "dram"), sg_json_int(j, (sg_scnn_dram_bits(s) + 7) / 8);
    sg_json_key(j, "psum_read"), sg_json_int(j, s->psum_reads);
    sg_json_key(j, "psum_write"), sg_json_int(j, s->psum_writes);
    sg_json_end(j);
}

static void json_stats(struct sg_json *j, const struct sg_scnn_config *c,
                       const struct sg_scnn_stats *s) {
    sg_json_key(j, "cycles"), sg_json_int(j, s->cycles);
    sg_json_key(j, "products"), sg_json_int(j, s->products);
    sg_json_key(j, "memory_refs"), sg_json_int(j, sg_scnn_memory_refs(s));
    sg_json_key(j, "memory_bits"), sg_json_int(j, sg_scnn_memory_bits(c, s));
    sg_json_key(j, "psum_refs"), sg_json_int(j, sg_scnn_psum_refs(s));
    sg_json_key(j, "psum_bits"), sg_json_int(j, sg_scnn_psum_refs(s) * c->acc_bits);
    sg_json_key(j, "halo_sums"), sg_json_int(j, s->halo);
    json_refs(j, s);
    sg_json_key(j, "energy_pj"), sg_json_num(j, s->energy.total);
    sg_json_key(j, "energy"), sg_json_obj(j);
    sg_json_key(j, "mult"), sg_json_num(j, s->energy.mult);
    sg_json_key(j, "add"), sg_json_num(j, s->energy.add);
    sg_json_key(j, "weight"), sg_json_num(j, s->energy.weight);
    sg_json_key(j, "act"), sg_json_num(j, s->energy.act);
    sg_json_key(j, "acc"), sg_json_num(j, s->energy.acc);
    sg_json_key(j, "psum"), sg_json_num(j, s->energy.psum);
    sg_json_key(j, "out"), sg_json_num(j, s->energy.out);
    sg_json_key(j, "halo"), sg_json_num(j, s->energy.halo);
    sg_json_key(j, "xbar"), sg_json_num(j, s->energy.xbar);
    sg_json_key(j, "decode"), sg_json_num(j, s->energy.decode);
    sg_json_key(j, "dram"), sg_json_num(j, s->energy.dram);
    sg_json_end(j);
    sg_json_key(j, "flush_cycles"), sg_json_int(j, s->flush_cycles);
    sg_json_key(j, "psum_entries"), sg_json_int(j, s->psum_entries);
    sg_json_key(j, "compute_cycles"), sg_json_int(j, s->compute_cycles);
    sg_json_key(j, "halo_cycles"), sg_json_int(j, s->halo_cycles);
    sg_json_key(j, "steps"), sg_json_int(j, s->steps);
    sg_json_key(j, "conflict_stalls"), sg_json_int(j, s->conflict_stalls);
    sg_json_key(j, "idle_pe_cycles"), sg_json_int(j, s->idle_pe_cycles);
    sg_json_key(j, "products_formed"), sg_json_int(j, s->products_formed);
    sg_json_key(j, "utilisation"), sg_json_num(j, sg_scnn_utilisation(s));
    sg_json_key(j, "merge_adds"), sg_json_int(j, s->merge_adds);
    sg_json_key(j, "acc_drain"), sg_json_int(j, s->acc_drain);
    sg_json_key(j, "dram_bits"), sg_json_obj(j);
    sg_json_key(j, "weights"), sg_json_int(j, s->dram_weight_bits);
    sg_json_key(j, "act_in"), sg_json_int(j, s->dram_act_in_bits);
    sg_json_key(j, "act_out"), sg_json_int(j, s->dram_act_out_bits);
    sg_json_key(j, "weight_refetch"), sg_json_int(j, s->dram_weight_refetch_bits);
    sg_json_end(j);
    sg_json_key(j, "weight_nnz"), sg_json_int(j, s->weight_nnz);
    sg_json_key(j, "act_nnz"), sg_json_int(j, s->act_nnz);
    sg_json_key(j, "iaram_overflow_pes"), sg_json_int(j, s->iaram_overflow);
    sg_json_key(j, "oaram_overflow_pes"), sg_json_int(j, s->oaram_overflow);
    sg_json_key(j, "wfifo_overflow_blocks"), sg_json_int(j, s->wfifo_overflow);
    sg_json_key(j, "wfifo_vectors_max"), sg_json_int(j, s->wfifo_vectors);
}

static void print_json(const struct cli_args *a, const struct sg_scnn_config *c,
                       const struct sg_scnn_run *run, const char *data_name) {
    struct sg_json j;
    sg_json_init(&j);
    sg_json_obj(&j);
    sg_json_key(&j, "config"), sg_json_obj(&j);
    if (cli_has(a, "net")) {
        sg_json_key(&j, "net"), sg_json_str(&j, cli_str(a, "net"));
        sg_json_key(&j, "granularity"), sg_json_str(&j, cli_str(a, "granularity"));
        sg_json_key(&j, "weight_density"), sg_json_num(&j, cli_num(a, "weight-density", 0, 1));
        sg_json_key(&j, "act_density"), sg_json_num(&j, cli_num(a, "act-density", 0, 1));
        sg_json_key(&j, "seed"), sg_json_int(&j, cli_int(a, "seed", 0, 0x7fffffffL));
        sg_json_key(&j, "prune_first"), sg_json_bool(&j, cli_flag(a, "prune-first"));
    } else {
        sg_json_key(&j, "model"), sg_json_str(&j, a->pos[0]);
        sg_json_key(&j, "data"), sg_json_str(&j, data_name);
        sg_json_key(&j, "images"), sg_json_int(&j, run->images);
        const int pr = cli_has(a, "granularity") || cli_has(a, "weight-density");
        sg_json_key(&j, "pruned_one_shot"), sg_json_bool(&j, pr);
        if (pr) {
            sg_json_key(&j, "granularity"), sg_json_str(&j, cli_str(a, "granularity"));
            sg_json_key(&j, "weight_density"), sg_json_num(&j, cli_num(a, "weight-density", 0, 1));
            sg_json_key(&j, "prune_first"), sg_json_bool(&j, cli_flag(a, "prune-first"));
        }
    }
    sg_json_key(&j, "pe"), sg_json_str(&j, cli_fmt("%dx%d", c->pe_rows, c->pe_cols));
    sg_json_key(&j, "mult"), sg_json_str(&j, cli_fmt("%dx%d", c->f, c->i));
    sg_json_key(&j, "banks"), sg_json_int(&j, c->banks);
    sg_json_key(&j, "bank_entries"), sg_json_int(&j, c->bank_entries);
    sg_json_key(&j, "kc"), sg_json_int(&j, c->kc);
    sg_json_key(&j, "iaram_bytes"), sg_json_int(&j, c->iaram_bytes);
    sg_json_key(&j, "oaram_bytes"), sg_json_int(&j, c->oaram_bytes);
    sg_json_key(&j, "wfifo_entries"), sg_json_int(&j, c->wfifo_entries);
    sg_json_key(&j, "index_bits"), sg_json_int(&j, c->index_bits);
    sg_json_key(&j, "value_bits"), sg_json_int(&j, c->value_bits);
    sg_json_key(&j, "acc_bits"), sg_json_int(&j, c->acc_bits);
    sg_json_key(&j, "arch"), sg_json_str(&j, sg_scnn_arch_name(c->arch));
    sg_json_key(&j, "merge"), sg_json_str(&j, sg_scnn_accum_name(c->accumulate));
    sg_json_key(&j, "accumulate"), sg_json_str(&j, sg_scnn_accum_name(c->accumulate));
    sg_json_key(&j, "index"), sg_json_str(&j, sg_scnn_index_name(c->index));
    sg_json_key(&j, "psum_entries"), sg_json_int(&j, c->psum_entries);
    sg_json_key(&j, "fetch"), sg_json_str(&j, sg_scnn_fetch_name(c->fetch));
    sg_json_key(&j, "fc"), sg_json_bool(&j, cli_flag(a, "fc"));
    sg_json_key(&j, "energy_table"), sg_json_obj(&j);
    const struct sg_energy_table *t = &c->energy;
    sg_json_key(&j, "source"), sg_json_str(&j, t->source);
    /* the per-bit energies in use (derived from the buffer sizes unless set) */
    struct sgi_bits { double weight, act, acc, psum, out, halo; } b;
    const double pe = run->total.psum_entries;
    const double vb = c->value_bits, ib = c->index_bits, ab = c->acc_bits;
#define PICK(f, bytes) (t->f >= 0 ? t->f : sg_energy_bit_pj(t, (bytes)))
    b.weight = PICK(weight_bit_pj, (double)c->wfifo_entries * c->f * (vb + ib) / 8);
    b.act = PICK(act_bit_pj, (double)c->iaram_bytes);
    b.acc = PICK(acc_bit_pj, (double)c->bank_entries * ab / 8);
    b.psum = PICK(psum_bit_pj, pe / c->banks * ab / 8);
    b.out = PICK(out_bit_pj, (double)c->oaram_bytes);
    b.halo = t->halo_bit_pj >= 0 ? t->halo_bit_pj : 3 * b.acc;
#undef PICK
    sg_json_key(&j, "mult_pj"), sg_json_num(&j, t->mult_pj);
    sg_json_key(&j, "add_pj"), sg_json_num(&j, t->add_pj);
    sg_json_key(&j, "sram_bit_pj"), sg_json_num(&j, t->sram_bit_pj);
    sg_json_key(&j, "sram_ref_bytes"), sg_json_num(&j, t->sram_ref_bytes);
    sg_json_key(&j, "sram_exponent"), sg_json_num(&j, t->sram_exponent);
    sg_json_key(&j, "weight_bit_pj"), sg_json_num(&j, b.weight);
    sg_json_key(&j, "act_bit_pj"), sg_json_num(&j, b.act);
    sg_json_key(&j, "acc_bit_pj"), sg_json_num(&j, b.acc);
    sg_json_key(&j, "psum_bit_pj"), sg_json_num(&j, b.psum);
    sg_json_key(&j, "out_bit_pj"), sg_json_num(&j, b.out);
    sg_json_key(&j, "halo_bit_pj"), sg_json_num(&j, b.halo);
    sg_json_key(&j, "xbar_pj"), sg_json_num(&j, t->xbar_pj);
    sg_json_key(&j, "decode_pj"), sg_json_num(&j, t->decode_pj);
    sg_json_key(&j, "dram_bit_pj"), sg_json_num(&j, t->dram_bit_pj);
    sg_json_end(&j);
    sg_json_end(&j);
    sg_json_key(&j, "layers"), sg_json_arr(&j);
    for (int i = 0; i < run->n; i++) {
        const struct sg_scnn_layer_result *l = &run->layers[i];
        const struct sg_conv_geom *g = &l->geom;
        sg_json_obj(&j);
        sg_json_key(&j, "name"), sg_json_str(&j, l->name);
        sg_json_key(&j, "shape"), sg_json_obj(&j);
        sg_json_key(&j, "c"), sg_json_int(&j, (int64_t)g->c * l->groups);
        sg_json_key(&j, "k"), sg_json_int(&j, (int64_t)g->k * l->groups);
        sg_json_key(&j, "r"), sg_json_int(&j, g->r);
        sg_json_key(&j, "s"), sg_json_int(&j, g->s);
        sg_json_key(&j, "h"), sg_json_int(&j, g->h);
        sg_json_key(&j, "w"), sg_json_int(&j, g->w);
        sg_json_key(&j, "p"), sg_json_int(&j, g->p);
        sg_json_key(&j, "q"), sg_json_int(&j, g->q);
        sg_json_key(&j, "stride"), sg_json_int(&j, g->sh);
        sg_json_key(&j, "groups"), sg_json_int(&j, l->groups);
        sg_json_end(&j);
        sg_json_key(&j, "kc"), sg_json_int(&j, l->st.kc);
        sg_json_key(&j, "weight_density"), sg_json_num(&j, l->weight_density);
        sg_json_key(&j, "act_density"), sg_json_num(&j, l->act_density);
        json_stats(&j, c, &l->st);
        if (l->verified) sg_json_key(&j, "max_rel_err"), sg_json_num(&j, l->max_rel_err);
        sg_json_end(&j);
    }
    sg_json_end(&j);
    sg_json_key(&j, "total"), sg_json_obj(&j);
    json_stats(&j, c, &run->total);
    sg_json_end(&j);
    sg_json_end(&j);
    cli_print_json(&j);
}

static void print_table(const struct cli_args *a, const struct sg_scnn_config *c,
                        const struct sg_scnn_run *run, const char *what) {
    printf("%s model: %s; PEs %dx%d, F x I %dx%d, %d banks x %d entries, merge %s, "
           "fetch %s, index %s\n",
           c->arch == SG_SCNN_ARCH_DCNN ? "DCNN (dense)" : "SCNN", what, c->pe_rows, c->pe_cols,
           c->f, c->i, c->banks, c->bank_entries, sg_scnn_accum_name(c->accumulate),
           sg_scnn_fetch_name(c->fetch), sg_scnn_index_name(c->index));
    printf("energy table: %s\n\n", c->energy.source);
    const int verify = cli_flag(a, "verify");
    struct cli_table t;
    cli_table_init(&t, verify ? 18 : 17);
    t.right_align = ~1u;
    const char *head[18] = {"layer",  "Kc",     "w.dens", "a.dens", "cycles", "products",
                            "util",   "weight", "w.idx",  "act",    "a.idx",  "acc.rd",
                            "acc.wr", "out.wr", "halo",   "memrefs", "energy uJ", "max err"};
    cli_table_rowf(&t, head);
    for (int i = 0; i <= run->n; i++) {
        const struct sg_scnn_stats *s = i < run->n ? &run->layers[i].st : &run->total;
        const struct sg_scnn_layer_result *l = i < run->n ? &run->layers[i] : NULL;
        double wd = s->weights ? (double)s->weight_nnz / s->weights : 0;
        double ad = s->acts ? (double)s->act_nnz / s->acts : 0;
        const char *cells[18] = {
            l ? l->name : "total", l ? cli_fmt("%lld", (long long)s->kc) : "",
            cli_fmt("%.3f", wd), cli_fmt("%.3f", ad), si((double)s->cycles),
            si((double)s->products), cli_fmt("%.3f", sg_scnn_utilisation(s)),
            si((double)s->weight_reads), si((double)s->weight_index_reads),
            si((double)s->act_reads), si((double)s->act_index_reads), si((double)s->acc_reads),
            si((double)s->acc_writes), si((double)s->out_writes), si((double)s->halo),
            si((double)sg_scnn_memory_refs(s)), cli_fmt("%.4g", s->energy.total / 1e6),
            l ? (l->verified ? cli_fmt("%.2g", l->max_rel_err) : "-") : ""};
        cli_table_rowf(&t, cells);
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    const struct sg_scnn_stats *s = &run->total;
    const double e = s->energy.total > 0 ? s->energy.total : 1;
    printf("\ntotal: %lld cycles, %lld products, %lld on-chip memory references (%.4g MB moved), "
           "%lld partial-sum buffer accesses, DRAM %.4g MB, %.4g uJ\n",
           (long long)s->cycles, (long long)s->products, (long long)sg_scnn_memory_refs(s),
           (double)sg_scnn_memory_bits(c, s) / 8e6, (long long)sg_scnn_psum_refs(s),
           (double)sg_scnn_dram_bits(s) / 8e6, s->energy.total / 1e6);
    printf("energy: mult %.1f%%, add %.1f%%, weight FIFO %.1f%%, IARAM %.1f%%, accumulators "
           "%.1f%%, partial sums %.1f%%, OARAM %.1f%%, halo %.1f%%, crossbar %.1f%%, index "
           "decode %.1f%%, DRAM %.1f%%\n",
           100 * s->energy.mult / e, 100 * s->energy.add / e, 100 * s->energy.weight / e,
           100 * s->energy.act / e, 100 * s->energy.acc / e, 100 * s->energy.psum / e,
           100 * s->energy.out / e, 100 * s->energy.halo / e, 100 * s->energy.xbar / e,
           100 * s->energy.decode / e, 100 * s->energy.dram / e);
    if (s->iaram_overflow || s->oaram_overflow || s->wfifo_overflow)
        printf("note: %lld PE-layers exceed the IARAM, %lld the OARAM (the excess goes to DRAM "
               "between layers), %lld weight blocks the FIFO (fetched again: %.4g MB)\n",
               (long long)s->iaram_overflow, (long long)s->oaram_overflow,
               (long long)s->wfifo_overflow, (double)s->dram_weight_refetch_bits / 8e6);
}

static int run(struct cli_args *a) {
    const int use_net = cli_has(a, "net");
    if (use_net == (a->npos == 1))
        cli_usage_error(a, "give either a MODEL file or --net NAME");
    static const char *const NET_ONLY[] = {"act-density", "seed", "layer-densities",
                                           "layer-act-densities", NULL};
    static const char *const MODEL_ONLY[] = {"data", "data-dir", "images", NULL};
    for (const char *const *o = use_net ? MODEL_ONLY : NET_ONLY; *o; o++)
        if (cli_has(a, *o))
            cli_usage_error(a, "--%s applies only %s", *o, use_net ? "to a MODEL" : "with --net");
    if (use_net) { /* an unknown name is a usage error (exit 2), with the list */
        const char *const *names = sg_scnn_net_names();
        int known = 0;
        char list[200] = "";
        for (int i = 0; names[i]; i++) {
            known |= strcmp(names[i], cli_str(a, "net")) == 0;
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
        }
        if (!known) cli_usage_error(a, "unknown network '%s' (%s)", cli_str(a, "net"), list);
    }
    cli_set_threads(a);

    struct sg_scnn_config c;
    sg_scnn_config_default(&c);
    parse_pair(a, "pe", &c.pe_rows, &c.pe_cols, 1024);
    parse_pair(a, "mult", &c.f, &c.i, 64);
    c.banks = (int)cli_int(a, "banks", 1, 4096);
    c.bank_entries = (int)cli_int(a, "bank-entries", 1, 1 << 20);
    c.kc = (int)cli_int(a, "kc", 0, 1 << 30);
    c.iaram_bytes = cli_int(a, "iaram", 0, 1L << 40);
    c.oaram_bytes = cli_int(a, "oaram", 0, 1L << 40);
    c.wfifo_entries = (int)cli_int(a, "wfifo", 0, 1 << 30);
    c.index_bits = (int)cli_int(a, "index-bits", 1, 16);
    c.value_bits = (int)cli_int(a, "value-bits", 1, 64);
    c.acc_bits = (int)cli_int(a, "acc-bits", 1, 64);
    if (cli_has(a, "accumulate") && cli_has(a, "merge"))
        cli_usage_error(a, "give --merge or its old name --accumulate, not both");
    const char *mw = cli_has(a, "accumulate") ? cli_str(a, "accumulate") : cli_str(a, "merge");
    int acc = sg_scnn_accum_from_name(mw);
    if (acc < 0) cli_usage_error(a, "--merge must be product, step, row or kernel (merged = step)");
    c.accumulate = (enum sg_scnn_accum)acc;
    int arch = sg_scnn_arch_from_name(cli_str(a, "arch"));
    if (arch < 0) cli_usage_error(a, "--arch must be scnn or dcnn");
    c.arch = (enum sg_scnn_arch)arch;
    int ix = sg_scnn_index_from_name(cli_str(a, "index"));
    if (ix < 0) cli_usage_error(a, "--index must be weight or group");
    c.index = (enum sg_scnn_index)ix;
    c.psum_entries = (int)cli_int(a, "psum-entries", 0, 1 << 24);
    int fe = sg_scnn_fetch_from_name(cli_str(a, "fetch"));
    if (fe < 0) cli_usage_error(a, "--fetch must be stream or aligned");
    c.fetch = (enum sg_scnn_fetch)fe;
    enum sg_status st;
    if (cli_has(a, "energy") && (st = sg_energy_table_load(cli_str(a, "energy"), &c.energy)) != SG_OK)
        return cli_fail_status(st);
    if ((st = sg_scnn_config_check(&c)) != SG_OK) return cli_fail_status(st);

    struct sg_scnn_run *r = NULL;
    struct sg_model *m = NULL;
    struct sg_dataset *d = NULL;
    const char *what;
    if (use_net) {
        int gr = sg_scnn_gran_from_name(cli_str(a, "granularity"));
        if (gr < 0) cli_usage_error(a, "--granularity must be fine, vector, kernel or filter");
        struct sg_scnn_net_opts o = {cli_str(a, "net"), (enum sg_scnn_gran)gr,
                                     cli_num(a, "weight-density", 0, 1),
                                     cli_num(a, "act-density", 0, 1),
                                     (uint64_t)cli_int(a, "seed", 0, 0x7fffffffL),
                                     cli_str(a, "layers"), cli_flag(a, "fc"),
                                     cli_flag(a, "prune-first"), cli_flag(a, "verify"),
                                     NULL, 0, NULL, 0};
        double wlist[512], alist[512];
        if (cli_has(a, "layer-densities")) {
            o.n_layer_density = parse_list(a, "layer-densities", wlist, 512);
            o.layer_density = wlist;
        }
        if (cli_has(a, "layer-act-densities")) {
            o.n_layer_act_density = parse_list(a, "layer-act-densities", alist, 512);
            o.layer_act_density = alist;
        }
        st = sg_scnn_run_net(&c, &o, progress, NULL, &r);
        what = cli_fmt("%s, %s pruning, weight density %g, activation density %g, seed %lld",
                       o.net, sg_scnn_gran_name(o.gran), o.weight_density, o.act_density,
                       (long long)o.seed);
    } else {
        if (cli_load_model(a->pos[0], &m)) return 1;
        if (cli_load_data(a, m, 0, &d)) {
            sg_model_free(m);
            return 1;
        }
        struct sg_scnn_model_opts o = {.images = (int)cli_int(a, "images", 1, 1 << 20),
                                       .layers = cli_str(a, "layers"),
                                       .include_fc = cli_flag(a, "fc"),
                                       .verify = cli_flag(a, "verify"),
                                       .prune = cli_has(a, "granularity") || cli_has(a, "weight-density"),
                                       .weight_density = cli_num(a, "weight-density", 0, 1),
                                       .prune_first = cli_flag(a, "prune-first")};
        int gr = sg_scnn_gran_from_name(cli_str(a, "granularity"));
        if (gr < 0) cli_usage_error(a, "--granularity must be fine, vector, kernel or filter");
        o.gran = (enum sg_scnn_gran)gr;
        if (o.prune_first && !o.prune)
            cli_usage_error(a, "--prune-first with a MODEL needs --granularity or --weight-density");
        if (o.images > d->n) o.images = (int)d->n;
        st = sg_scnn_run_model(&c, m, d, &o, progress, NULL, &r);
        what = o.prune ? cli_fmt("%s on %d %s test images, pruned one-shot: %s %g", a->pos[0],
                                 o.images, d->name, sg_scnn_gran_name(o.gran), o.weight_density)
                       : cli_fmt("%s on %d %s test images (real activations)", a->pos[0],
                                 o.images, d->name);
    }
    cli_progress_done();
    int rc = 0;
    if (st != SG_OK) {
        rc = cli_fail_status(st);
        goto done;
    }
    if (cli_flag(a, "json")) print_json(a, &c, r, d ? d->name : "");
    else print_table(a, &c, r, what);
    for (int i = 0; i < r->n; i++)
        if (r->layers[i].verified && !(r->layers[i].max_rel_err <= SG_SCNN_VERIFY_TOL))
            rc = cli_fail("layer %s: simulated output differs from the dense reference "
                          "convolution (max relative error %g > %g)",
                          r->layers[i].name, r->layers[i].max_rel_err, SG_SCNN_VERIFY_TOL);
done:
    sg_scnn_run_free(r);
    sg_model_free(m);
    sg_dataset_free(d);
    return rc;
}

const struct cli_cmd cmd_scnn = {
    "scnn", "cycles, memory references and energy on the SCNN sparse accelerator model",
    "[MODEL] [options]", DETAILS, OPTS, 0, 1, run,
};
