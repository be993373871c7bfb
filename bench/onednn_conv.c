/* The best dense convolution on this machine for bench/conv_vs_onednn.sh: oneDNN
 * (Debian's libdnnl, benchmark-only; the product never links it) on VGG-16's conv
 * layers, batch N, f32, forward inference. oneDNN picks the algorithm
 * (dnnl_convolution_auto: direct or Winograd) and the memory layouts (format
 * "any": blocked layouts; reorders from plain NCHW are not timed, which favours
 * oneDNN); Winograd is also tried explicitly and the faster of the two is
 * reported. Timing: the fastest of --repeat runs after one warm-up.
 *
 * Build: cc -O2 bench/onednn_conv.c -ldnnl -o build/onednn_conv
 * Usage: onednn_conv [--batch N] [--repeat N] [--clock wall|cpu] [LAYER...]
 * (threads: OMP_NUM_THREADS; --clock cpu times the calling thread only, so it
 * needs OMP_NUM_THREADS=1)
 * Prints "layer ms impl" lines. */
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    int c, k, hw;
} VGG16[] = {
    {"conv1_1", 3, 64, 224},    {"conv1_2", 64, 64, 224},   {"conv2_1", 64, 128, 112},
    {"conv2_2", 128, 128, 112}, {"conv3_1", 128, 256, 56},  {"conv3_2", 256, 256, 56},
    {"conv3_3", 256, 256, 56},  {"conv4_1", 256, 512, 28},  {"conv4_2", 512, 512, 28},
    {"conv4_3", 512, 512, 28},  {"conv5_1", 512, 512, 14},  {"conv5_2", 512, 512, 14},
    {"conv5_3", 512, 512, 14},
};

#define CHECK(x)                                                                        \
    do {                                                                                \
        dnnl_status_t s_ = (x);                                                         \
        if (s_ != dnnl_success) {                                                       \
            fprintf(stderr, "onednn_conv: %s failed (status %d)\n", #x, (int)s_);        \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static int g_cpu; /* --clock cpu: the calling thread's CPU time (OMP_NUM_THREADS=1) */

static double now(void) {
    struct timespec t;
    clock_gettime(g_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static dnnl_memory_t make_mem(const dnnl_memory_desc_t *md, dnnl_engine_t eng, unsigned seed) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    void *p;
    CHECK(dnnl_memory_get_data_handle(m, &p));
    const size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    float *f = p;
    for (size_t i = 0; i < n; i++) { /* random in [-1, 1): the values do not matter for speed */
        seed = seed * 1664525u + 1013904223u;
        f[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
    return m;
}

/* Time of one algorithm on one layer, or -1 if oneDNN has no implementation. */
static double time_conv(dnnl_engine_t eng, dnnl_stream_t st, int n, int c, int k, int hw,
                        dnnl_alg_kind_t alg, int repeat, const char **impl) {
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t sd = {n, c, hw, hw}, wd = {k, c, 3, 3}, bd = {k}, dd = {n, k, hw, hw};
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_format_tag_any));
    dnnl_dims_t strides = {1, 1}, pad = {1, 1};
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, alg, &src, &wei, &bia,
                                             &dst, strides, pad, pad));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL) != dnnl_success) return -1;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    dnnl_memory_t ms = make_mem(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eng, 1);
    dnnl_memory_t mw = make_mem(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), eng, 2);
    dnnl_memory_t mb = make_mem(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), eng, 3);
    dnnl_memory_t md = make_mem(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), eng, 4);
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb},
                               {DNNL_ARG_DST, md}};
    double best = INFINITY;
    for (int i = 0; i <= repeat; i++) {
        const double t0 = now();
        CHECK(dnnl_primitive_execute(prim, st, 4, args));
        CHECK(dnnl_stream_wait(st));
        const double t = now() - t0;
        if (i > 0 && t < best) best = t; /* run 0 is the warm-up */
    }
    /* impl points into pd: copy before destroying it */
    static char name[2][128];
    static int which;
    snprintf(name[which], sizeof name[which], "%s", *impl);
    *impl = name[which];
    which ^= 1;
    dnnl_primitive_destroy(prim);
    dnnl_memory_destroy(ms), dnnl_memory_destroy(mw), dnnl_memory_destroy(mb), dnnl_memory_destroy(md);
    dnnl_primitive_desc_destroy(pd);
    return best;
}

int main(int argc, char **argv) {
    int batch = 1, repeat = 5, first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
        if (first + 1 >= argc) break;
        if (strcmp(argv[first], "--batch") == 0) batch = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "--repeat") == 0) repeat = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "--clock") == 0) g_cpu = strcmp(argv[first + 1], "cpu") == 0;
        else {
            fprintf(stderr, "usage: onednn_conv [--batch N] [--repeat N] [--clock wall|cpu] [LAYER...]\n");
            return 2;
        }
    }
    if (batch < 1 || repeat < 1) return 2;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    for (size_t i = 0; i < sizeof VGG16 / sizeof VGG16[0]; i++) {
        int want = first >= argc;
        for (int a = first; a < argc; a++) want |= strcmp(argv[a], VGG16[i].name) == 0;
        if (!want) continue;
        const char *ia = "", *iw = "";
        const double ta = time_conv(eng, st, batch, VGG16[i].c, VGG16[i].k, VGG16[i].hw,
                                    dnnl_convolution_auto, repeat, &ia);
        const double tw = time_conv(eng, st, batch, VGG16[i].c, VGG16[i].k, VGG16[i].hw,
                                    dnnl_convolution_winograd, repeat, &iw);
        const int wino = tw > 0 && tw < ta;
        printf("%s %.4f %s\n", VGG16[i].name, 1e3 * (wino ? tw : ta), wino ? iw : ia);
        fflush(stdout);
    }
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}
