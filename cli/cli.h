/* Command-line front end: the only place that parses argv, prints for humans,
 * shows progress or exits. Each sub-command lives in cmd_<name>.c and exports a
 * struct cli_cmd listed in main.c. */
#ifndef SPARSEGRAIN_CLI_H
#define SPARSEGRAIN_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sparsegrain/sparsegrain.h"

struct cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 if none */
    const char *arg;  /* NULL for a flag, else the argument's placeholder ("N", "FILE") */
    const char *help;
    const char *def; /* default shown in --help and returned by cli_str, or NULL */
};

#define CLI_MAX_POS 16
struct cli_args {
    const char *cmd;
    const struct cli_opt *opts;
    const char *val[64]; /* per option: its value ("" for a set flag), NULL if absent */
    const char *pos[CLI_MAX_POS];
    int npos;
    char *argv_line; /* the whole command line, for provenance */
};

struct cli_cmd {
    const char *name;
    const char *summary;  /* one line for the tool's --help */
    const char *usage;    /* "MODEL [options]" */
    const char *details;  /* paragraph(s) for the command's --help, or NULL */
    const struct cli_opt *opts; /* terminated by {0} */
    int min_pos, max_pos;
    int (*run)(struct cli_args *a);
};

/* Parsing (exits 2 on usage errors, 0 after printing --help). */
void cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a);
_Noreturn void cli_usage_error(const struct cli_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *cli_str(const struct cli_args *a, const char *name); /* value or default or NULL */
int cli_has(const struct cli_args *a, const char *name);         /* given on the command line */
int cli_flag(const struct cli_args *a, const char *name);
long cli_int(const struct cli_args *a, const char *name, long lo, long hi);
double cli_num(const struct cli_args *a, const char *name, double lo, double hi);
/* Comma-separated list of numbers; returns the count (exits 2 on bad input). */
int cli_num_list(const struct cli_args *a, const char *name, double *out, int max, double lo,
                 double hi);

/* Errors: "sparsegrain: error: <detail>" on stderr; returns 1 for `return cli_fail(...)`. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail_status(enum sg_status st); /* uses sg_last_error() */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress line on a terminal (stderr), nothing when stderr is not a tty.
 * Ctrl-C sets a flag that makes the callback ask the library to stop. */
void cli_progress_init(void);
int cli_progress_cb(void *ctx, const struct sg_progress *p);
void cli_progress_done(void);
void cli_progress_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_interrupted(void);
int cli_is_tty(void);

/* Aligned text tables, or CSV. */
struct cli_table {
    int ncols, nrows, cap;
    char **cells; /* row-major, nrows * ncols */
    unsigned right_align; /* bit per column */
};
void cli_table_init(struct cli_table *t, int ncols);
void cli_table_row(struct cli_table *t, ...); /* ncols strings */
void cli_table_rowf(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *f, int csv);
void cli_table_free(struct cli_table *t);
const char *cli_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* ring of buffers */

/* Shared helpers. */
/* Loads any model file (printing the error; 0 on success) and gives it the command's
 * --input-norm, when the command has that option and it was given. */
int cli_load_model(const char *path, struct sg_model **m);
/* Input preprocessing from --input-norm (CLI_INPUT_NORM_OPT in the command's table;
 * parsed with the arguments), or NULL when not given. */
const struct sg_preproc *cli_input_norm(void);
/* Sets m's preprocessing to --input-norm when given (checked against its input). */
int cli_apply_input_norm(struct sg_model *m, const char *path);
/* Once per run, on stderr: which preprocessing a model that states none gets from d
 * and how to change it (nothing for built-in networks, which `train` made). */
void cli_input_note(const struct sg_model *m, const char *path, const struct sg_dataset *d);
/* What m->preproc means, in words (ring buffer, as cli_fmt). */
const char *cli_preproc_words(const struct sg_preproc *p);
#define CLI_INPUT_NORM_OPT                                                                    \
    {"input-norm", 0, "SPEC", "input preprocessing the model was trained with: none (pixels " \
     "in [0,1]), dataset (the data set's mean/std) or MEAN,STD[,...] as Normalize(mean, "     \
     "std), optionally :raw (pixels 0..255) and :bgr; default: what the model file says",     \
     NULL}
/* The storage formats' names, comma separated, into buf (for messages). */
const char *cli_format_names(char *buf, size_t cap);
/* Fails (printing which ops are missing) unless the model's graph can run. */
int cli_need_runnable(const struct sg_model *m, const char *path);
/* Data set from --data/--data-dir, defaulting to the model's "data" metadata. */
int cli_load_data(const struct cli_args *a, const struct sg_model *m, int train,
                  struct sg_dataset **d);
/* --threads N, or for 0 the cores idle when the command starts (cli_auto_threads). */
void cli_set_threads(const struct cli_args *a);
int cli_auto_threads(void);
void cli_print_json(struct sg_json *j); /* prints and frees */
/* 1 when name is one of the comma-separated list's items, or list is NULL (every name). */
int cli_list_has(const char *list, const char *name);
int cli_has_suffix(const char *s, const char *suffix); /* case-insensitive */
int cli_parse_augment(const char *s);                  /* enum sg_augment or -1 */
/* The names of a library enum, comma separated, from its name table: table is
 * "criterion", "fc", "schedule", "augment", "format", "engine", "model",
 * "prune-schedule" or "sparse-kind" (auto and the sparse kinds); NULL if unknown. Option help texts may say {table}: --help fills in the list. */
const char *cli_names(const char *table);
/* text with every {table} replaced by cli_names(table), into buf. */
const char *cli_expand_names(const char *text, char *buf, size_t cap);
/* --criterion and --fc as enum values (usage error, listing the names, if unknown). */
int cli_parse_criterion(const struct cli_args *a);
int cli_parse_fc(const struct cli_args *a);

#endif

/* Pruning options shared by prune, sensitivity and study (cli/prune_opts.c). The
 * command's option table must contain CLI_PRUNE_OPTS. */
#define CLI_PRUNE_OPTS                                                                        \
    {"granularity", 'g', "G", "fine, vector, kernel, filter, channel, block:KxCxRxS, nm:N:M", \
     "fine"},                                                                                 \
    {"vector-axis", 0, "AXIS", "vector groups run along rows (S) or columns (R)", "row"},     \
    {"criterion", 0, "C", "group saliency: {criterion}", "l1"},                               \
    {"include-first", 0, NULL, "prune the first conv layer too (default: keep it dense)",     \
     NULL},                                                                                   \
    {"fc", 0, "MODE", "fully connected layers: {fc} (as conv)", NULL},                        \
    {"selection", 0, "SEL", "layer (same density per layer) or global (one threshold)",       \
     "layer"},                                                                                \
    {"profile", 0, "FILE", "per-layer densities (CSV with layer,density; see sensitivity)",   \
     NULL},                                                                                   \
    {"prune-seed", 0, "N", "seed of the random criterion", "1"}
void cli_prune_cfg(const struct cli_args *a, struct sg_prune_cfg *pc, enum sg_fc_mode fc_default,
                   struct sg_profile **profile_out);
/* Training options shared by commands that retrain (CLI_TRAIN_OPTS in their table).
 * cli/train_opts.c is the one parser of training options: cli_train_cfg reads
 * batch, lr, momentum, weight-decay and augment, and seed and max-images when the
 * command's table has them; lr is -1 when the table gives no default and the user
 * none (the caller picks sg_model_default_lr). cli_train_schedule_cfg adds a full
 * run's epochs, schedule (learning rate) and step-every. */
#define CLI_TRAIN_OPTS                                                                        \
    {"batch", 'b', "N", "batch size", "64"},                                                  \
    {"lr", 0, "X", "learning rate of (re)training", "0.01"},                                  \
    {"momentum", 0, "X", "SGD momentum", "0.9"},                                              \
    {"weight-decay", 0, "X", "L2 weight decay", "5e-4"},                                      \
    {"augment", 0, "KIND", "{augment}", "none"},                                              \
    {"max-images", 0, "N", "training images per epoch (0 = all)", "0"}
void cli_train_cfg(const struct cli_args *a, struct sg_train_cfg *tc);
void cli_train_schedule_cfg(const struct cli_args *a, struct sg_train_cfg *tc);
/* Quantises m (sg_quantize_model) and, when train and tc->epochs > 0, fine-tunes
 * it with shared weights (cli/quantize.c). */
enum sg_status cli_quantize(struct sg_model *m, int conv_bits, int fc_bits, int kmeans,
                            const struct sg_dataset *train, const struct sg_train_cfg *tc);
