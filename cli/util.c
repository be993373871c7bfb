/* Errors, progress line, tables and shared loading helpers of the CLI. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *fmt, ...) {
    va_list ap;
    cli_progress_done();
    fprintf(stderr, "sparsegrain: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail_status(enum sg_status st) {
    const char *msg = sg_last_error();
    return cli_fail("%s", *msg ? msg : sg_status_name(st));
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    cli_progress_done();
    fprintf(stderr, "sparsegrain: warning: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- progress ---- */
static volatile sig_atomic_t g_stop;
static int g_tty = -1, g_line_open;
static double g_last;

static void on_sigint(int sig) {
    (void)sig;
    if (g_stop) _exit(130); /* second Ctrl-C: leave now */
    g_stop = 1;
}

int cli_is_tty(void) {
    if (g_tty < 0) g_tty = isatty(STDERR_FILENO) && !getenv("SG_NO_PROGRESS");
    return g_tty;
}

void cli_progress_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void) { return g_stop != 0; }

static void fmt_time(char *out, size_t cap, double s) {
    if (s < 0) {
        snprintf(out, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

int cli_progress_cb(void *ctx, const struct sg_progress *p) {
    const char *prefix = ctx ? (const char *)ctx : "";
    if (cli_is_tty()) {
        double now = sg_now();
        if (now - g_last >= 0.1 || p->step == p->total) {
            g_last = now;
            char eta[32];
            fmt_time(eta, sizeof eta, p->eta_s);
            char ep[32] = "";
            if (p->epochs > 0) snprintf(ep, sizeof ep, "epoch %d/%d  ", p->epoch, p->epochs);
            char acc[32] = "";
            if (p->accuracy >= 0) snprintf(acc, sizeof acc, "  acc %.2f%%", 100 * p->accuracy);
            fprintf(stderr, "\r\033[K%s%s %sbatch %lld/%lld  loss %.4f%s  %.0f img/s  left %s",
                    prefix, p->stage, ep, (long long)p->step, (long long)p->total, p->loss, acc,
                    p->images_per_s, eta);
            fflush(stderr);
            g_line_open = 1;
        }
    }
    return g_stop != 0;
}

void cli_progress_note(const char *fmt, ...) {
    if (!cli_is_tty()) return;
    va_list ap;
    fprintf(stderr, "\r\033[K");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    g_line_open = 1;
}

void cli_progress_done(void) {
    if (g_line_open) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        g_line_open = 0;
    }
}

/* ---- tables ---- */
void cli_table_init(struct cli_table *t, int ncols) {
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

void cli_table_rowf(struct cli_table *t, const char *const *cells) {
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, (size_t)cap * t->ncols * sizeof *c);
        if (!c) return;
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[(size_t)t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

void cli_table_row(struct cli_table *t, ...) {
    const char *cells[64];
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->ncols && i < 64; i++) cells[i] = va_arg(ap, const char *);
    va_end(ap);
    cli_table_rowf(t, cells);
}

void cli_table_print(const struct cli_table *t, FILE *f, int csv) {
    int width[64] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols && c < 64; c++) {
            int n = (int)strlen(t->cells[(size_t)r * t->ncols + c]);
            if (n > width[c]) width[c] = n;
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * t->ncols + c];
            if (csv) {
                int quote = strpbrk(s, ",\"\n") != NULL;
                if (c) fputc(',', f);
                if (quote) {
                    fputc('"', f);
                    for (const char *p = s; *p; p++) {
                        if (*p == '"') fputc('"', f);
                        fputc(*p, f);
                    }
                    fputc('"', f);
                } else {
                    fputs(s, f);
                }
            } else {
                int last = c == t->ncols - 1;
                if (c) fputs("  ", f);
                if ((t->right_align >> c) & 1) fprintf(f, "%*s", width[c], s);
                else if (last) fputs(s, f);
                else fprintf(f, "%-*s", width[c], s);
            }
        }
        fputc('\n', f);
        if (!csv && r == 0 && t->nrows > 1) { /* rule under the header */
            int total = 0;
            for (int c = 0; c < t->ncols; c++) total += width[c] + (c ? 2 : 0);
            for (int i = 0; i < total; i++) fputc('-', f);
            fputc('\n', f);
        }
    }
}

void cli_table_free(struct cli_table *t) {
    for (int i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

const char *cli_fmt(const char *fmt, ...) {
    static char ring[64][128];
    static int at;
    char *b = ring[at++ % 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 128, fmt, ap);
    va_end(ap);
    return b;
}

/* ---- shared helpers ---- */
int cli_load_model(const char *path, struct sg_model **m) {
    enum sg_status st = sg_model_load_any(path, m);
    if (st != SG_OK) return cli_fail_status(st);
    if (cli_apply_input_norm(*m, path)) {
        sg_model_free(*m);
        *m = NULL;
        return 1;
    }
    return 0;
}

int cli_apply_input_norm(struct sg_model *m, const char *path) {
    const struct sg_preproc *p = cli_input_norm();
    if (!p) return 0;
    if (sg_preproc_check(p, m->in_c) != SG_OK)
        return cli_fail("%s: --input-norm: %s", path, sg_last_error());
    m->preproc = *p;
    return 0;
}

static int builtin_arch(const char *arch) {
    for (const char *const *n = sg_model_builtin_names(); *n; n++)
        if (strcmp(*n, arch) == 0) return 1;
    return 0;
}

void cli_input_note(const struct sg_model *m, const char *path, const struct sg_dataset *d) {
    static int told;
    if (told || m->preproc.stated || builtin_arch(m->arch) || !sg_model_runnable(m)) return;
    told = 1;
    fprintf(stderr,
            "sparsegrain: note: %s does not say how its inputs were preprocessed: applying the\n"
            "  data set's standardisation (mean %.4f, std %.4f of %s's training images). If it\n"
            "  was trained on other inputs, give --input-norm none (pixels in [0, 1]) or MEAN,STD\n"
            "  (as Normalize(mean, std)); 'sparsegrain export %s -o OUT --input-norm SPEC'\n"
            "  records it in a file.\n",
            path, d->mean, d->std, d->name, path);
}

const char *cli_preproc_words(const struct sg_preproc *p) {
    char spec[256], nums[192] = "";
    sg_preproc_format(p, spec, sizeof spec);
    if (!p->stated)
        return "not stated (commands apply the data set's standardisation, what `train` used; "
               "set it with --input-norm)";
    const char *bgr = p->order == SG_CHANNELS_BGR ? ", channels reversed" : "";
    if (p->kind == SG_NORM_DATASET)
        return p->n ? cli_fmt("%s (standardised as in training: (pixel/255 - %.6g) / %.6g%s)",
                              spec, (double)p->mean[0], (double)p->std[0], bgr)
                    : cli_fmt("%s (the mean and std of the data set's training images%s)", spec,
                              bgr);
    const char *px = p->range == 1 ? "pixel" : "pixel/255";
    if (p->n == 1 && p->mean[0] == 0 && p->std[0] == 1)
        return cli_fmt("%s (%s%s)", spec, p->range == 1 ? "pixels 0..255" : "pixels in [0, 1]", bgr);
    if (p->n == 1)
        return cli_fmt("%s ((%s - %.6g) / %.6g%s)", spec, px, (double)p->mean[0],
                       (double)p->std[0], bgr);
    for (int c = 0; c < p->n; c++)
        snprintf(nums + strlen(nums), sizeof nums - strlen(nums), "%s%.6g/%.6g", c ? ", " : "",
                 (double)p->mean[c], (double)p->std[c]);
    return cli_fmt("%s ((%s - mean) / std per channel: %s%s)", spec, px, nums, bgr);
}

int cli_need_runnable(const struct sg_model *m, const char *path) {
    enum sg_status st = sg_model_check_runnable(m, path);
    return st == SG_OK ? 0 : cli_fail_status(st);
}

int cli_load_data(const struct cli_args *a, const struct sg_model *m, int train,
                  struct sg_dataset **d) {
    const char *name = cli_str(a, "data");
    const char *dir = cli_str(a, "data-dir");
    if (!name && m) name = sg_meta_get(m, "data");
    if (!name && dir) name = "custom";
    if (!name) return cli_fail("no data set given: use --data mnist|fashion or --data-dir DIR");
    enum sg_status st = sg_dataset_load(name, dir, train, d);
    if (st != SG_OK) return cli_fail_status(st);
    /* a model that runs must fit the images (checked here once for every command) */
    const struct sg_dataset *x = *d;
    if (m && sg_model_runnable(m) && (x->c != m->in_c || x->h != m->in_h || x->w != m->in_w)) {
        cli_fail("%s: %dx%dx%d images, but model '%s' expects %dx%dx%d (trained on other data?)",
                 x->source, x->c, x->h, x->w, m->arch, m->in_c, m->in_h, m->in_w);
        sg_dataset_free(*d);
        *d = NULL;
        return 1;
    }
    if (m) cli_input_note(m, a->npos > 0 ? a->pos[0] : "the model", x);
    return 0;
}

/* Cores idle right now, from two samples of /proc/stat 100 ms apart. OpenMP
 * threads wait for each other at every parallel region, so a thread whose core
 * is taken by another process stalls the others for a whole scheduler slice: on
 * a busy machine fewer threads are much faster than all cores (a LeNet-5 epoch
 * took 60x longer with 2 threads beside two busy processes). */
static int idle_cores(int cores) {
    unsigned long long a[10], b[10];
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen("/proc/stat", "r");
        unsigned long long *v = pass ? b : a;
        memset(v, 0, 10 * sizeof *v);
        if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) {
            if (f) fclose(f);
            return cores;
        }
        fclose(f);
        if (!pass) usleep(100000);
    }
    unsigned long long total = 0, idle = (b[3] - a[3]) + (b[4] - a[4]);
    for (int i = 0; i < 8; i++) total += b[i] - a[i];
    if (total == 0) return cores;
    int n = (int)((double)idle / (double)total * cores + 0.5);
    return n < 1 ? 1 : n > cores ? cores : n;
}

int cli_auto_threads(void) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    int cores = c > 0 ? (int)c : 1;
    return cores > 1 ? idle_cores(cores) : 1;
}

void cli_set_threads(const struct cli_args *a) {
    const char *s = cli_str(a, "threads");
    int n = s ? (int)cli_int(a, "threads", 0, 256) : 0;
    sg_set_threads(n > 0 ? n : cli_auto_threads());
}

void cli_print_json(struct sg_json *j) {
    printf("%s\n", sg_json_cstr(j));
    sg_json_free(j);
}

int cli_list_has(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int cli_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int cli_parse_augment(const char *s) { return sg_augment_from_name(s); }

const char *cli_format_names(char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; i < SG_FORMAT_COUNT; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "",
                 sg_format_name((enum sg_format)i));
    return buf;
}
