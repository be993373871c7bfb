/* Option parsing from each command's table; --help is generated from it. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int opt_index(const struct cli_opt *opts, const char *name) {
    for (int i = 0; opts[i].name; i++)
        if (strcmp(opts[i].name, name) == 0) return i;
    return -1;
}

static int short_index(const struct cli_opt *opts, char c) {
    for (int i = 0; opts[i].name; i++)
        if (opts[i].short_name == c) return i;
    return -1;
}

void cli_usage_error(const struct cli_args *a, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sparsegrain: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'sparsegrain %s --help')\n", a && a->cmd ? a->cmd : "");
    exit(2);
}

static void print_help(const struct cli_cmd *cmd) {
    printf("usage: sparsegrain %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->details) printf("\n%s\n", cmd->details);
    if (!cmd->opts || !cmd->opts[0].name) return;
    printf("\noptions:\n");
    for (int i = 0; cmd->opts[i].name; i++) {
        const struct cli_opt *o = &cmd->opts[i];
        char left[80];
        int n = snprintf(left, sizeof left, "  %s%c%s--%s%s%s", o->short_name ? "-" : "",
                         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ",
                         o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (!o->short_name) n = snprintf(left, sizeof left, "      --%s%s%s", o->name,
                                         o->arg ? " " : "", o->arg ? o->arg : "");
        char help[512];
        printf("%s%*s%s", left, n < 30 ? 30 - n : 1, "",
               cli_expand_names(o->help, help, sizeof help));
        if (o->def) printf(" (default %s)", o->def);
        printf("\n");
    }
}

/* --input-norm applies to every model the command loads (cli_load_model), so a
 * command never has to pass it along. */
static struct sg_preproc g_input_norm;
static int g_have_input_norm;

const struct sg_preproc *cli_input_norm(void) { return g_have_input_norm ? &g_input_norm : NULL; }

static void input_norm_option(const struct cli_args *a) {
    const int i = a->opts ? opt_index(a->opts, "input-norm") : -1;
    if (i < 0 || !a->val[i]) return;
    if (sg_preproc_parse(a->val[i], &g_input_norm) != SG_OK)
        cli_usage_error(a, "--input-norm: %s", sg_last_error());
    g_have_input_norm = 1;
}

void cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd->name;
    a->opts = cmd->opts;
    size_t line = 16;
    for (int i = 0; i < argc; i++) line += strlen(argv[i]) + 3;
    a->argv_line = calloc(1, line);
    if (a->argv_line) {
        strcat(a->argv_line, "sparsegrain");
        for (int i = 0; i < argc; i++) {
            strcat(a->argv_line, " ");
            strcat(a->argv_line, argv[i]);
        }
    }
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            print_help(cmd);
            exit(0);
        }
        int idx = -1;
        const char *inline_val = NULL;
        if (!only_pos && s[0] == '-' && s[1] == '-' && s[2]) {
            char name[64];
            const char *eq = strchr(s + 2, '=');
            size_t n = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            if (n >= sizeof name) cli_usage_error(a, "unknown option '%s'", s);
            memcpy(name, s + 2, n);
            name[n] = 0;
            idx = cmd->opts ? opt_index(cmd->opts, name) : -1;
            if (idx < 0) cli_usage_error(a, "unknown option '--%s' for '%s'", name, cmd->name);
            if (eq) inline_val = eq + 1;
        } else if (!only_pos && s[0] == '-' && s[1] && !s[2] &&
                   !(s[1] >= '0' && s[1] <= '9')) {
            idx = cmd->opts ? short_index(cmd->opts, s[1]) : -1;
            if (idx < 0) cli_usage_error(a, "unknown option '%s' for '%s'", s, cmd->name);
        } else {
            if (a->npos >= CLI_MAX_POS || a->npos >= cmd->max_pos)
                cli_usage_error(a, "unexpected argument '%s'", s);
            a->pos[a->npos++] = s;
            continue;
        }
        const struct cli_opt *o = &cmd->opts[idx];
        if (!o->arg) {
            if (inline_val) cli_usage_error(a, "option '--%s' takes no value", o->name);
            a->val[idx] = "";
        } else if (inline_val) {
            a->val[idx] = inline_val;
        } else {
            if (i + 1 >= argc) cli_usage_error(a, "option '--%s' needs a value (%s)", o->name, o->arg);
            a->val[idx] = argv[++i];
        }
    }
    if (a->npos < cmd->min_pos)
        cli_usage_error(a, "'%s' needs %s", cmd->name, cmd->usage);
    input_norm_option(a);
}

static int need_index(const struct cli_args *a, const char *name) {
    int i = a->opts ? opt_index(a->opts, name) : -1;
    if (i < 0) {
        fprintf(stderr, "sparsegrain: internal error: command '%s' has no option '%s'\n", a->cmd,
                name);
        abort();
    }
    return i;
}

const char *cli_str(const struct cli_args *a, const char *name) {
    int i = need_index(a, name);
    return a->val[i] ? a->val[i] : a->opts[i].def;
}

int cli_has(const struct cli_args *a, const char *name) { return a->val[need_index(a, name)] != NULL; }

int cli_flag(const struct cli_args *a, const char *name) { return cli_has(a, name); }

long cli_int(const struct cli_args *a, const char *name, long lo, long hi) {
    const char *s = cli_str(a, name);
    if (!s) cli_usage_error(a, "option '--%s' is required", name);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        cli_usage_error(a, "--%s must be an integer from %ld to %ld, got '%s'", name, lo, hi, s);
    return v;
}

static double parse_num(const struct cli_args *a, const char *name, const char *s, double lo,
                        double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        cli_usage_error(a, "--%s must be a number from %g to %g, got '%s'", name, lo, hi, s);
    return v;
}

double cli_num(const struct cli_args *a, const char *name, double lo, double hi) {
    const char *s = cli_str(a, name);
    if (!s) cli_usage_error(a, "option '--%s' is required", name);
    return parse_num(a, name, s, lo, hi);
}

int cli_num_list(const struct cli_args *a, const char *name, double *out, int max, double lo,
                 double hi) {
    const char *s = cli_str(a, name);
    if (!s || !*s) cli_usage_error(a, "option '--%s' needs a comma-separated list", name);
    int n = 0;
    char buf[64];
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len == 0 || len >= sizeof buf) cli_usage_error(a, "--%s: bad list '%s'", name, cli_str(a, name));
        if (n >= max) cli_usage_error(a, "--%s: more than %d values", name, max);
        memcpy(buf, s, len);
        buf[len] = 0;
        out[n++] = parse_num(a, name, buf, lo, hi);
        s += len + (c ? 1 : 0);
        if (c && !*s) cli_usage_error(a, "--%s: trailing comma", name);
    }
    return n;
}
