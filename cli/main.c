/* sparsegrain: the command table and dispatch. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One line per command: the order of --help. */
extern const struct cli_cmd cmd_study, cmd_train, cmd_eval, cmd_info, cmd_prune, cmd_stats,
    cmd_sensitivity;
extern const struct cli_cmd cmd_quantize, cmd_storage, cmd_encode, cmd_decode, cmd_export,
    cmd_import, cmd_scnn, cmd_report, cmd_draw, cmd_thin;
extern const struct cli_cmd cmd_infer, cmd_bench_conv, cmd_bench_gpu;

static const struct cli_cmd *const COMMANDS[] = {
    &cmd_study,
    &cmd_train,
    &cmd_eval,
    &cmd_info,
    &cmd_prune,
    &cmd_stats,
    &cmd_thin,
    &cmd_sensitivity,
    &cmd_infer,
    &cmd_bench_conv,
    &cmd_bench_gpu,
    &cmd_quantize,
    &cmd_storage,
    &cmd_encode,
    &cmd_decode,
    &cmd_scnn,
    &cmd_report,
    &cmd_draw,
    &cmd_export,
    &cmd_import,
    NULL,
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: sparsegrain COMMAND [options]\n\n"
            "Trains and prunes CNNs at every granularity (fine, vector, kernel, filter, ...),\n"
            "measures accuracy, compressed storage and accelerator memory traffic.\n\n"
            "commands:\n");
    for (int i = 0; COMMANDS[i]; i++)
        fprintf(f, "  %-14s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fprintf(f, "\n'sparsegrain COMMAND --help' describes a command's options.\n"
               "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv) {
    /* Past a file-size limit (ulimit -f) a write fails with EFBIG and the command reports
     * it (leaving no temporary file), instead of the default: killed by SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    /* OpenBLAS reads its kernel family when it loads: name the one that suits this CPU
     * unless the user or the machine chose one (the library leaves the environment to
     * the program). */
    const char *core = sg_blas_coretype();
    if (core && !getenv("OPENBLAS_CORETYPE")) setenv("OPENBLAS_CORETYPE", core, 0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("sparsegrain %s\n", SG_VERSION_STRING);
        return 0;
    }
    for (int i = 0; COMMANDS[i]; i++)
        if (strcmp(argv[1], COMMANDS[i]->name) == 0) {
            struct cli_args a;
            cli_parse(COMMANDS[i], argc - 1, argv + 1, &a);
            cli_progress_init();
            int rc = COMMANDS[i]->run(&a);
            cli_progress_done();
            free(a.argv_line);
            return rc;
        }
    fprintf(stderr, "sparsegrain: error: unknown command '%s' (see 'sparsegrain --help')\n",
            argv[1]);
    return 2;
}
