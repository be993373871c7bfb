/* sparsegrain train: train a built-in network, checkpointing every epoch; with
 * --distributed under mpirun/srun, synchronous data-parallel SGD over the ranks. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dist.h"

static const struct cli_opt OPTS[] = {
    {"model", 'm', "NAME", "built-in network: {model}", "lenet5"},
    {"data", 'd', "NAME", "data set: mnist or fashion", "mnist"},
    {"data-dir", 0, "DIR", "folder with {train,t10k}-{images,labels} IDX files", NULL},
    {"epochs", 'e', "N", "epochs", "15"},
    {"batch", 'b', "N", "batch size", "64"},
    {"lr", 0, "X", "initial learning rate (default 0.05 with batch norm, else 0.01)", NULL},
    {"momentum", 0, "X", "SGD momentum", "0.9"},
    {"weight-decay", 0, "X", "L2 weight decay (conv and fc weights)", "5e-4"},
    {"schedule", 0, "NAME", "learning-rate schedule: {schedule}", "cosine"},
    {"step-every", 0, "N", "step schedule: epochs between decays", "5"},
    {"augment", 0, "KIND", "augmentation: {augment}", "none"},
    {"seed", 's', "N", "seed of initialisation, shuffling and augmentation", "1"},
    {"threads", 't', "N", "threads (0 = the cores idle at start; --distributed: the "
                               "CPUs the rank is bound to, or its share of the cores)", "0"},
    {"max-images", 0, "N", "images per epoch (0 = the whole training set)", "0"},
    {"val", 0, "N", "hold out N training images (seeded) and report accuracy on them", "0"},
    {"resume", 0, NULL, "continue an interrupted run from its last finished epoch", NULL},
    {"output", 'o', "FILE", "model file to write (.sgm)", NULL},
    {"json", 0, NULL, "print one JSON object with the result", NULL},
    {"distributed", 0, NULL, "data-parallel over the MPI ranks (mpirun/srun; make MPI=1): each "
                             "rank takes its share of every batch", NULL},
    {"check-sync", 0, NULL, "distributed: check before every batch that weights, masks and "
                            "momentum are the same on every rank (for tests)", NULL},
    {"input-norm", 0, "SPEC", "input preprocessing to train with (as in 'eval --help'); "
                              "default: the data set's standardisation. Recorded in the model",
     NULL},
    {0},
};

struct ckpt {
    const char *path;
    const char *argv_line;
};

static enum sg_status save_ckpt(void *ctx, struct sg_model *m, const struct sg_train_state *st) {
    const struct ckpt *c = ctx;
    sg_meta_set(m, "epochs", "%d", st->epochs_done);
    return sg_model_save(m, c->path, st);
}

/* ---- distributed training: the MPI side of the trainer's data-parallel hook ---- */
struct dp {
    int failed;                    /* an MPI call failed (its error is printed) */
    const struct sg_train_state *st;
    int check;                     /* --check-sync */
    struct ckpt *ck;               /* rank 0: where checkpoints go; NULL elsewhere */
};

static enum sg_status dp_reduce(void *ctx, float *buf, size_t n) {
    struct dp *d = ctx;
    /* the stop vote: a rank that saw Ctrl-C (or mpirun's SIGTERM) stops everyone at
     * the same batch, so no rank waits for one that left */
    buf[n - 1] = cli_interrupted() ? 1.0f : 0.0f;
    if (dist_allreduce_sum_f32(buf, n)) {
        d->failed = 1;
        return SG_ERR_IO;
    }
    return SG_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* --check-sync: the same weights (with batch-norm statistics), masks and momentum
 * on every rank, bit for bit; the ranks learn the verdict together. */
static enum sg_status dp_check(struct dp *d, struct sg_model *m, const char *when) {
    uint64_t h = fnv(0xcbf29ce484222325ull, m->arena, m->arena_len * sizeof(float));
    h = fnv(h, m->mask, m->arena_len);
    if (d->st) h = fnv(h, d->st->velocity, d->st->len * sizeof(float));
    int64_t v[2] = {(int64_t)(h >> 1), -(int64_t)(h >> 1)};
    if (dist_allreduce_max_i64(v, 2)) {
        d->failed = 1;
        return SG_ERR_IO;
    }
    if (v[0] != -v[1]) {
        if (dist_rank() == 0)
            cli_fail("--check-sync: the ranks hold different weights, masks or momentum %s", when);
        return SG_ERR_MISMATCH;
    }
    return SG_OK;
}

static enum sg_status dp_on_batch(void *ctx, struct sg_model *m, double epoch_pos) {
    return dp_check(ctx, m, cli_fmt("before the batch at epoch %.4f", epoch_pos + 1));
}

static enum sg_status dp_on_epoch(void *ctx, struct sg_model *m, const struct sg_train_state *st) {
    struct dp *d = ctx;
    enum sg_status s = d->check ? dp_check(d, m, cli_fmt("after epoch %d", st->epochs_done)) : SG_OK;
    return s == SG_OK && d->ck ? save_ckpt(d->ck, m, st) : s;
}

/* Rank 0's progress line; a rank stops only through the vote in dp_reduce. */
static int dp_progress(void *ctx, const struct sg_progress *p) {
    cli_progress_cb(ctx, p);
    return 0;
}

/* Rank 0's model, momentum and epoch count on every rank (a resumed run starts from
 * rank 0's checkpoint, whether or not the others can read that file). */
static int dp_share_state(struct sg_model *m, struct sg_train_state *st) {
    int64_t hdr[2] = {(int64_t)m->arena_len, st->epochs_done};
    int64_t mine = hdr[0];
    if (dist_bcast(hdr, sizeof hdr, 0)) return 1;
    if (hdr[0] != mine)
        return cli_fail("rank %d: the model has %lld parameters, rank 0's has %lld", dist_rank(),
                        (long long)mine, (long long)hdr[0]);
    st->epochs_done = (int)hdr[1];
    return dist_bcast(m->arena, m->arena_len * sizeof(float), 0) ||
           dist_bcast(m->mask, m->arena_len, 0) ||
           dist_bcast(st->velocity, st->len * sizeof(float), 0);
}

/* --val N: hold out N training images (seeded, the same on every rank). */
static int split_val(const struct cli_args *a, uint64_t seed, struct sg_dataset **train,
                     struct sg_dataset **val) {
    const int64_t nval = cli_int(a, "val", 0, 1L << 31);
    if (nval <= 0) return 0;
    struct sg_dataset *tr, *va;
    enum sg_status s = sg_dataset_split(*train, nval, seed, &tr, &va);
    if (s != SG_OK) return cli_fail_status(s), 1;
    sg_dataset_free(*train);
    *train = tr;
    *val = va;
    return 0;
}

/* ---- the run, serial or distributed, over shared steps ---- */
struct job {
    const char *out;
    struct sg_train_cfg cfg;
    float lr; /* --lr, or -1: the model's default */
    int ranks, rank;
};

/* The options; usage errors exit. */
static void parse(const struct cli_args *a, struct job *j) {
    j->out = cli_str(a, "output");
    if (!j->out) cli_usage_error(a, "give the output model file with -o FILE.sgm");
    const char *const *names = sg_model_builtin_names();
    int known = 0;
    for (int i = 0; names[i]; i++) known |= strcmp(names[i], cli_str(a, "model")) == 0;
    if (!known)
        cli_usage_error(a, "unknown model '%s' (built-in: %s)", cli_str(a, "model"),
                        cli_names("model"));
    if (!cli_has_suffix(j->out, ".sgm"))
        cli_usage_error(a, "-o %s: training writes .sgm files", j->out);
    cli_train_cfg(a, &j->cfg);
    cli_train_schedule_cfg(a, &j->cfg);
    j->lr = j->cfg.lr;
}

static enum sg_status build(const struct cli_args *a, const struct job *j,
                            const struct sg_dataset *train, struct sg_model **m,
                            struct sg_train_state **st) {
    enum sg_status s = sg_model_build(cli_str(a, "model"), train->c, train->h, train->w,
                                      train->classes, j->cfg.seed, m);
    return s == SG_OK ? sg_train_state_new(*m, st) : s;
}

/* The model to train: the checkpoint of --resume, or a new one. Returns 0, 1 on
 * failure (printed), or 2 when the file is already trained (nothing to do). */
static int resume_or_build(const struct cli_args *a, const struct job *j,
                           const struct sg_dataset *train, struct sg_model **m,
                           struct sg_train_state **st) {
    struct stat sb;
    if (!(cli_flag(a, "resume") && stat(j->out, &sb) == 0)) {
        enum sg_status s = build(a, j, train, m, st);
        if (s != SG_OK) return cli_fail_status(s);
        return cli_apply_input_norm(*m, j->out) ? 1 : 0;
    }
    enum sg_status s = sg_model_load_state(j->out, m, st);
    if (s != SG_OK) return cli_fail_status(s);
    if (strcmp((*m)->arch, cli_str(a, "model")) != 0)
        return cli_fail("%s: holds a '%s' model, not '%s'; cannot resume", j->out, (*m)->arch,
                        cli_str(a, "model"));
    if (cli_input_norm() && !sg_preproc_equal(cli_input_norm(), &(*m)->preproc)) {
        char was[256];
        return cli_fail("%s: was trained with input preprocessing %s; cannot resume with another",
                        j->out, sg_preproc_format(&(*m)->preproc, was, sizeof was));
    }
    if (!*st) {
        const char *ep = sg_meta_get(*m, "epochs");
        if (ep && atoi(ep) >= j->cfg.epochs) {
            fprintf(stderr, "%s: already trained for %s epochs; nothing to resume\n", j->out, ep);
            return 2;
        }
        return cli_fail("%s: has no optimizer state to resume from", j->out);
    }
    cli_progress_note("resuming %s after epoch %d of %d\n", j->out, (*st)->epochs_done,
                      j->cfg.epochs);
    return 0;
}

/* The learning rate and the model's provenance, before training. */
static void prepare(const struct cli_args *a, struct job *j, struct sg_model *m,
                    const struct sg_dataset *train) {
    j->cfg.lr = j->lr >= 0 ? j->lr : sg_model_default_lr(m);
    sg_meta_set(m, "data", "%s", train->name);
    sg_meta_set(m, "seed", "%llu", (unsigned long long)j->cfg.seed);
    sg_meta_set(m, "train", "%s", a->argv_line ? a->argv_line : "");
}

/* After sg_train on the rank that reports: 0, or 1 with the failure printed. */
static int trained(const struct cli_args *a, enum sg_status s, const struct sg_train_state *st) {
    if (s == SG_ERR_INTERRUPTED)
        return cli_fail("interrupted after epoch %d; '%s --resume' continues from there",
                        st->epochs_done, a->argv_line ? a->argv_line : "sparsegrain train");
    return s == SG_OK ? 0 : cli_fail_status(s);
}

static void print_json(const struct cli_args *a, const struct job *j, const struct sg_model *m,
                       const struct sg_train_state *st, const struct sg_dataset *test,
                       const struct sg_eval_result *r, const struct sg_eval_result *rv,
                       double secs) {
    struct sg_json js;
    sg_json_init(&js);
    sg_json_obj(&js);
    sg_json_key(&js, "model"), sg_json_str(&js, m->arch);
    sg_json_key(&js, "data"), sg_json_str(&js, test->name);
    sg_json_key(&js, "epochs"), sg_json_int(&js, st ? st->epochs_done : j->cfg.epochs);
    sg_json_key(&js, "top1"), sg_json_num(&js, r->top1);
    sg_json_key(&js, "top5"), sg_json_num(&js, r->top5);
    sg_json_key(&js, "loss"), sg_json_num(&js, r->loss);
    sg_json_key(&js, "n"), sg_json_int(&js, r->n);
    if (rv) sg_json_key(&js, "val_top1"), sg_json_num(&js, rv->top1);
    sg_json_key(&js, "train_seconds"), sg_json_num(&js, secs);
    if (j->ranks > 1) {
        double ar, wait;
        int64_t calls;
        dist_allreduce_stats(&ar, &wait, &calls);
        sg_json_key(&js, "ranks"), sg_json_int(&js, j->ranks);
        sg_json_key(&js, "threads_per_rank"), sg_json_int(&js, sg_get_threads());
        sg_json_key(&js, "steps"), sg_json_int(&js, calls);
        sg_json_key(&js, "allreduce_seconds"), sg_json_num(&js, ar);
        sg_json_key(&js, "allreduce_wait_seconds"), sg_json_num(&js, wait);
    }
    sg_json_key(&js, "output"), sg_json_str(&js, j->out);
    sg_json_end(&js);
    cli_print_json(&js);
}

/* Evaluates on the test (and validation) images, writes the final file (no optimizer
 * state) and prints the result. Returns 0 or 1. */
static int report(const struct cli_args *a, const struct job *j, struct sg_model *m,
                  const struct sg_train_state *st, const struct sg_dataset *test,
                  const struct sg_dataset *val, double secs) {
    struct sg_eval_result r, rv = {0};
    enum sg_status s = sg_evaluate(m, test, 0, &r);
    if (s == SG_OK && val) s = sg_evaluate(m, val, 0, &rv);
    if (s != SG_OK) return cli_fail_status(s);
    if (val)
        sg_meta_set(m, "val_top1", "%.4f (%lld held-out training images)", rv.top1,
                    (long long)rv.n);
    sg_meta_set(m, "epochs", "%d", st ? st->epochs_done : j->cfg.epochs);
    sg_meta_set(m, "top1", "%.4f", r.top1);
    sg_meta_set(m, "loss", "%.5f", r.loss);
    if ((s = sg_model_save(m, j->out, NULL)) != SG_OK) return cli_fail_status(s);
    if (cli_flag(a, "json")) {
        print_json(a, j, m, st, test, &r, val ? &rv : NULL, secs);
        return 0;
    }
    printf("%s on %s: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld test images)\n", m->arch,
           test->name, 100 * r.top1, 100 * r.top5, r.loss, (long long)r.n);
    if (val)
        printf("validation (%lld held-out training images): top-1 %.2f%%\n", (long long)rv.n,
               100 * rv.top1);
    if (st && st->epochs_done) printf("trained %d epochs\n", st->epochs_done);
    printf("wrote %s\n", j->out);
    return 0;
}

static int run_serial(struct cli_args *a, struct job *j) {
    struct sg_dataset *train = NULL, *test = NULL, *val = NULL;
    struct sg_model *m = NULL;
    struct sg_train_state *st = NULL;
    int rc = cli_load_data(a, NULL, 1, &train) || cli_load_data(a, NULL, 0, &test) ||
             split_val(a, j->cfg.seed, &train, &val);
    if (!rc) rc = resume_or_build(a, j, train, &m, &st);
    double secs = 0; /* training time of this run (excluding loading and evaluation) */
    if (rc == 0) {
        prepare(a, j, m, train);
        struct ckpt ck = {j->out, a->argv_line};
        j->cfg.on_epoch = save_ckpt;
        j->cfg.on_epoch_ctx = &ck;
        j->cfg.progress = cli_progress_cb;
        const double t0 = sg_now();
        enum sg_status s = sg_train(m, train, &j->cfg, st);
        cli_progress_done();
        rc = trained(a, s, st);
        secs = sg_now() - t0;
    }
    if (rc != 1) rc = report(a, j, m, st, test, val, secs); /* 0, or 2: already trained */
    sg_train_state_free(st);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_dataset_free(val);
    return rc;
}

/* Rank 0 tells the others what to do before training: */
enum { GO_STOP = 0, GO_TRAIN = 1, GO_REPORT = 2 };

/* Synchronous data parallelism over the MPI ranks. Rank 0 alone reads the checkpoint,
 * evaluates and writes; every rank trains on its shard of each batch. */
static int run_distributed(struct cli_args *a, struct job *j) {
    const int rank = j->rank;
    struct sg_dataset *train = NULL, *test = NULL, *val = NULL;
    struct sg_model *m = NULL;
    struct sg_train_state *st = NULL;
    int rc = 1, go = GO_TRAIN, told = 0;
    /* every rank splits off the same validation images, so the shards agree */
    if (cli_load_data(a, NULL, 1, &train) || (rank == 0 && cli_load_data(a, NULL, 0, &test)) ||
        split_val(a, j->cfg.seed, &train, &val))
        dist_abort(1);
    enum sg_status s = build(a, j, train, &m, &st);
    if (s != SG_OK) {
        cli_fail_status(s);
        dist_abort(1);
    }
    if (cli_apply_input_norm(m, j->out)) dist_abort(1);
    if (rank != 0) {
        if (dist_bcast(&go, sizeof go, 0)) dist_abort(1);
        told = 1;
        if (go == GO_TRAIN && dp_share_state(m, st)) dist_abort(1);
    } else {
        sg_model_free(m);
        sg_train_state_free(st);
        m = NULL;
        st = NULL;
        const int r = resume_or_build(a, j, train, &m, &st);
        if (r != 1) {
            go = r == 2 ? GO_REPORT : GO_TRAIN;
            if (dist_bcast(&go, sizeof go, 0) || (go == GO_TRAIN && dp_share_state(m, st)))
                dist_abort(1);
            told = 1;
        }
    }
    double secs = 0;
    if (told && go == GO_TRAIN) {
        prepare(a, j, m, train);
        struct ckpt ck = {j->out, a->argv_line};
        struct dp dp = {0, st, cli_flag(a, "check-sync"), rank == 0 ? &ck : NULL};
        j->cfg.shard = rank;
        j->cfg.shards = j->ranks;
        j->cfg.reduce = dp_reduce;
        j->cfg.reduce_ctx = &dp;
        j->cfg.on_epoch = dp_on_epoch;
        j->cfg.on_epoch_ctx = &dp;
        if (dp.check) j->cfg.on_batch = dp_on_batch, j->cfg.on_batch_ctx = &dp;
        j->cfg.progress = rank == 0 ? dp_progress : NULL;
        const double t0 = sg_now();
        s = sg_train(m, train, &j->cfg, st);
        cli_progress_done();
        if (s != SG_OK && s != SG_ERR_INTERRUPTED) {
            /* one rank's failure (a checkpoint it could not write, a lost peer) leaves
             * the others inside a reduction: end them all */
            if (!dp.failed && s != SG_ERR_MISMATCH) cli_fail("rank %d: %s", rank, sg_last_error());
            if (s != SG_ERR_MISMATCH) dist_abort(1); /* a mismatch every rank saw: end in order */
        }
        if (rank != 0) rc = s == SG_OK ? 0 : 1;
        else if (s != SG_ERR_MISMATCH) rc = trained(a, s, st);
        secs = sg_now() - t0;
        if (rc == 0 && rank == 0) rc = report(a, j, m, st, test, val, secs);
    } else if (told && go == GO_REPORT) {
        rc = rank == 0 ? report(a, j, m, st, test, val, secs) : 0;
    }
    sg_train_state_free(st);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_dataset_free(val);
    /* rank 0 failed before telling the others what to do: tell them to stop */
    if (rank == 0 && !told) {
        go = GO_STOP;
        if (dist_bcast(&go, sizeof go, 0)) dist_abort(1);
    }
    dist_finish(); /* the others wait here while rank 0 evaluates and writes */
    return rc;
}

static int run(struct cli_args *a) {
    struct job j = {0};
    parse(a, &j);
    const int distributed = cli_flag(a, "distributed");
    if (distributed && !dist_available())
        return cli_fail("--distributed needs the MPI build ('make MPI=1') started by mpirun or srun");
    if (dist_init()) return 1;
    j.ranks = dist_size(), j.rank = dist_rank();
    if (j.ranks > 1 && !distributed) {
        if (j.rank == 0)
            cli_fail("started as %d MPI ranks: add --distributed to train one model over them "
                     "(otherwise every rank would train the same model into the same file)",
                     j.ranks);
        dist_finish();
        return 1;
    }
    if (j.ranks > 1 && cli_int(a, "threads", 0, 256) == 0) {
        sg_set_threads(dist_cores()); /* ranks that share a machine share its cores */
    } else {
        cli_set_threads(a);
    }
    return j.ranks > 1 ? run_distributed(a, &j) : run_serial(a, &j);
}

const struct cli_cmd cmd_train = {
    "train", "train a built-in network (checkpoints every epoch; --resume continues)",
    "-o FILE.sgm [options]",
    "Trains with SGD (momentum, weight decay) under the model's masks. After every\n"
    "epoch the model and optimizer state are written to the output file (atomically),\n"
    "so an interrupted run continues with --resume. The finished file holds the\n"
    "test accuracy in its metadata.",
    OPTS, 0, 0, run,
};
