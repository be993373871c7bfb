/* A tiny test harness: SG_TEST(name) { ... } registers a test; every test runs
 * in its own forked process, so a crash fails one test, not the run. */
#ifndef SG_TEST_HARNESS_H
#define SG_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsegrain/core.h"

typedef void (*sgt_fn)(void);
void sgt_register(const char *name, const char *file, sgt_fn fn);
_Noreturn void sgt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Absolute path of a fixture under the source tree, or NULL when absent. */
const char *sgt_mnist_dir(void);
const char *sgt_fashion_dir(void);
/* A fresh temporary directory for this test (removed by the runner). */
const char *sgt_tmpdir(void);

#define SG_TEST(name)                                                                  \
    static void name(void);                                                            \
    __attribute__((constructor)) static void sgt_reg_##name(void) {                   \
        sgt_register(#name, __FILE__, name);                                           \
    }                                                                                  \
    static void name(void)

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) sgt_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                       \
    } while (0)
#define CHECK_MSG(c, ...)                                                              \
    do {                                                                               \
        if (!(c)) sgt_fail(__FILE__, __LINE__, __VA_ARGS__);                           \
    } while (0)
#define CHECK_OK(expr)                                                                 \
    do {                                                                               \
        enum sg_status st_ = (expr);                                                   \
        if (st_ != SG_OK)                                                              \
            sgt_fail(__FILE__, __LINE__, "%s returned %s: %s", #expr,                  \
                     sg_status_name(st_), sg_last_error());                            \
    } while (0)
#define CHECK_ERR(expr, want)                                                          \
    do {                                                                               \
        enum sg_status st_ = (expr);                                                   \
        if (st_ != (want))                                                             \
            sgt_fail(__FILE__, __LINE__, "%s returned %s, wanted %s (%s)", #expr,      \
                     sg_status_name(st_), sg_status_name(want), sg_last_error());      \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                             \
    do {                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                            \
        if (a_ != b_) sgt_fail(__FILE__, __LINE__, "%s == %lld, wanted %s == %lld", #a, a_, #b, b_); \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                     \
        if (!(fabs(a_ - b_) <= (tol)))                                                 \
            sgt_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| > %g", #a, a_, #b, b_, \
                     (double)(tol));                                                   \
    } while (0)

/* Max relative error between two arrays: max |a-b| / max(1e-6, max |b|). */
double sgt_max_rel_err(const float *a, const float *b, size_t n);

/* n floats (malloc'd), every one a NaN: a workspace whose stale contents must not
 * reach a result (a padding lane read as 0 times a NaN would). */
float *sgt_nan_floats(size_t n);

#endif
