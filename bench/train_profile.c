/* Where the time of a training step goes: per node, forward and backward, and for
 * every convolution its three passes separately (forward, weight gradient alone,
 * weight + input gradient), on random data at a batch.
 * Usage: train_profile MODEL C H W BATCH STEPS THREADS [WINOGRAD 0|1 [GRANULARITY DENSITY [THIN 0|1]]]
 * (SG_WINO_TILE=2 or 4 forces the Winograd tile size; SG_FREE_KEPT=1 skips the
 * kernel-masked layers' kept-pair products, the step's time with them free; SG_FC_SAME=1 prunes the
 * fc layers at the granularity of the convolutions, not fine-grained; SG_LANES=0 runs the
 * stride-1 layers that take image lanes through im2col, as before; GRANULARITY DENSITY: prune the model first, as `sparsegrain prune` does by default,
 * and time masked retraining steps.)
 * Prints one row per node: name, op, forward ms, backward ms (per step, min over
 * rounds), and for convolutions fwd / wgrad / dgrad ms and direct-conv GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/sgi.h"
#include "nn/graph.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"

/* With one thread, the passes are timed in the thread's CPU time: on a machine
 * shared with other work that leaves out the time spent waiting for the core. */
static int g_cpu;
static double now(void) {
    if (!g_cpu) return sg_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: train_profile MODEL C H W BATCH STEPS THREADS\n");
        return 2;
    }
    const int c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]), bs = atoi(argv[5]);
    const int steps = atoi(argv[6]);
    sg_set_threads(atoi(argv[7]));
    if (argc > 8) sgi_wino_train_enable(atoi(argv[8]));
    if (getenv("SG_WINO_TILE")) sgi_wino_train_tile(atoi(getenv("SG_WINO_TILE"))); /* 2 or 4 */
    if (getenv("SG_FREE_KEPT") && atoi(getenv("SG_FREE_KEPT"))) {
        sgi_wino_train_free_kept(1);
        fprintf(stderr, "SG_FREE_KEPT: kept-pair products skipped (wrong outputs; a timing bound)\n");
    }
    if (getenv("SG_LANES")) sgi_conv_lanes_enable(atoi(getenv("SG_LANES"))); /* 0: im2col */
    g_cpu = sg_get_threads() == 1;
    struct sg_model *m = NULL;
    if (sg_model_build(argv[1], c, h, w, 10, 1, &m) != SG_OK) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    if (argc > 10) {
        struct sg_prune_cfg pc;
        sg_prune_cfg_default(&pc);
        if (getenv("SG_FC_SAME") && atoi(getenv("SG_FC_SAME"))) pc.fc = SG_FC_SAME;
        if (getenv("SG_FC_ROWS")) sgi_fc_rows_enable(atoi(getenv("SG_FC_ROWS")));
        if (sg_prune_spec_parse(argv[9], &pc.spec) != SG_OK) {
            fprintf(stderr, "%s\n", sg_last_error());
            return 1;
        }
        struct sg_prune_result pr;
        if (sg_prune_model(m, &pc, atof(argv[10]), &pr) != SG_OK) {
            fprintf(stderr, "%s\n", sg_last_error());
            return 1;
        }
        if (argc > 11) sgi_conv_thin_enable(atoi(argv[11]));
    }
    struct sg_exec *e = NULL;
    if (sgi_exec_new_train(m, bs, &e) != SG_OK) return 1; /* as sg_train runs it */
    float *x = sgi_alloc((size_t)bs * c * h * w, 4), *grad = sgi_alloc(m->arena_len, 4);
    uint8_t *y = sgi_alloc((size_t)bs, 1);
    sg_rng r;
    sg_rng_seed(&r, 7);
    for (size_t i = 0; i < (size_t)bs * c * h * w; i++) x[i] = sg_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < bs; i++) y[i] = (uint8_t)(i % 10);
    /* warm up (the first step: every buffer touched for the first time), then profile */
    const double tw = now();
    sg_forward(m, e, x, bs, 1, &r);
    sg_exec_loss(e, y, NULL, NULL);
    sg_backward(m, e, grad);
    const double first_ms = (now() - tw) * 1e3;
    sg_exec_profile(e, g_cpu ? 2 : 1);
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        sg_forward(m, e, x, bs, 1, &r);
        sg_exec_loss(e, y, NULL, NULL);
        sg_backward(m, e, grad);
    }
    const double step_ms = (now() - t0) * 1e3 / steps;
    double tf = 0, tb = 0;
    printf("%-12s %-8s %9s %9s | %8s %8s %8s %8s\n", "node", "op", "fwd_ms", "bwd_ms", "c_fwd",
           "c_wgrad", "c_dgrad", "GFLOP/s");
    const size_t wsl = 1 << 24;
    float *ws = sgi_alloc(wsl, 4);
    for (int32_t i = 1; i < m->n_nodes; i++) {
        const struct sg_node *nd = &m->nodes[i];
        double f, b;
        sg_exec_profile_get(e, i, &f, &b);
        f = f * 1e3 / steps, b = b * 1e3 / steps;
        tf += f, tb += b;
        printf("%-12s %-8s %9.3f %9.3f", nd->name, sg_op_name(nd->op), f, b);
        if (nd->op == SG_OP_CONV) {
            const struct sg_node *xn = &m->nodes[nd->in[0]];
            struct sg_conv_geom g = {bs, xn->c, xn->h, xn->w, nd->k, nd->kh, nd->kw, nd->sh, nd->sw,
                                     nd->pt, nd->pl, nd->pb, nd->pr, nd->dh, nd->dw, nd->groups, nd->h, nd->w};
            const size_t xs = (size_t)bs * g.c * g.h * g.w, ys = (size_t)bs * g.k * g.p * g.q;
            float *xx = sgi_alloc(xs, 4), *dx = sgi_alloc(xs, 4), *yy = sgi_alloc(ys, 4);
            float *ww = sgi_alloc((size_t)g.k * g.c * g.r * g.s, 4), *dw = sgi_alloc((size_t)g.k * g.c * g.r * g.s, 4);
            for (size_t t = 0; t < xs; t++) xx[t] = sg_rng_uniform(&r);
            for (size_t t = 0; t < ys; t++) yy[t] = sg_rng_uniform(&r);
            for (size_t t = 0; t < (size_t)g.k * g.c * g.r * g.s; t++) ww[t] = sg_rng_uniform(&r);
            double bf = 1e9, bw = 1e9, bb = 1e9;
            for (int rep = 0; rep < 7; rep++) {
                double a = now();
                sgi_conv_forward(&g, xx, ww, NULL, yy, ws, sg_get_threads());
                double b1 = now();
                sgi_conv_backward(&g, xx, ww, yy, NULL, dw, NULL, ws, sg_get_threads());
                double b2 = now();
                sgi_conv_backward(&g, xx, ww, yy, dx, dw, NULL, ws, sg_get_threads());
                double b3 = now();
                if (b1 - a < bf) bf = b1 - a;
                if (b2 - b1 < bw) bw = b2 - b1;
                if (b3 - b2 - (b2 - b1) < bb) bb = b3 - b2 - (b2 - b1);
            }
            const double macs = (double)bs * g.k * g.p * g.q * g.c / g.groups * g.r * g.s;
            printf(" | %8.3f %8.3f %8.3f %8.1f", bf * 1e3, bw * 1e3, bb * 1e3,
                   3 * 2 * macs / (bf + bw + (bb > 0 ? bb : 0)) / 1e9);
            free(xx), free(dx), free(yy), free(ww), free(dw);
        }
        printf("\n");
    }
    printf("total per step: %.2f ms (nodes fwd %.2f + bwd %.2f; rest %.2f; first step %.1f)\n",
           step_ms, tf, tb, step_ms - tf - tb, first_ms);
    free(ws);
    return 0;
}
