/* Status names and the per-thread error message. */
#include "sgi.h"

static _Thread_local char g_msg[1024];

const char *sg_status_name(enum sg_status st) {
    switch (st) {
    case SG_OK: return "ok";
    case SG_ERR_NOMEM: return "out of memory";
    case SG_ERR_IO: return "I/O error";
    case SG_ERR_FORMAT: return "malformed input";
    case SG_ERR_ARG: return "invalid argument";
    case SG_ERR_UNSUPPORTED: return "unsupported";
    case SG_ERR_LIMIT: return "limit exceeded";
    case SG_ERR_INTERRUPTED: return "interrupted";
    case SG_ERR_MISMATCH: return "mismatch";
    }
    return "unknown status";
}

const char *sg_last_error(void) { return g_msg; }

void sg_clear_error(void) { g_msg[0] = 0; }

enum sg_status sgi_error(enum sg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

void sgi_error_keep(char *keep, size_t n) {
#pragma omp critical(sgi_error_keep)
    if (!keep[0]) snprintf(keep, n, "%s", g_msg);
}

enum sg_status sgi_error_prefix(enum sg_status st, const char *prefix) {
    char tmp[sizeof g_msg];
    memcpy(tmp, g_msg, sizeof tmp);
    size_t n = strlen(prefix);
    if (n > sizeof g_msg - 3) n = sizeof g_msg - 3;
    memcpy(g_msg, prefix, n);
    memcpy(g_msg + n, ": ", 2);
    size_t rest = sizeof g_msg - n - 3;
    size_t m = strlen(tmp);
    if (m > rest) m = rest;
    memcpy(g_msg + n + 2, tmp, m);
    g_msg[n + 2 + m] = 0;
    return st;
}

_Noreturn void sgi_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "sparsegrain: internal error: %s:%d: assertion '%s' failed\n", file, line,
            expr);
    fflush(stderr);
    abort();
}
