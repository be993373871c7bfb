/* sparsegrain draw: a picture of a layer's weights and mask (PNG). */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"layer", 'l', "NAME", "layer to draw (default: the most pruned conv layer, else the largest conv)",
     NULL},
    {"scale", 's', "N", "pixels per weight (default: the largest that keeps the picture within 1600 px)",
     NULL},
    {"max-kernels", 0, "N", "draw at most N filters (rows) and N input channels (columns)", "64"},
    {"output", 'o', "FILE", "PNG file to write", NULL},
    {0},
};

/* Shared with cmd_report.c, which draws the same layer of every no-loss model:
 * the conv layer with the lowest fraction of kept weights (the first of equals;
 * not merely the first with a pruned weight: channel pruning of one layer also
 * masks the filters of the layer before, see docs/pruning.md), else the conv layer
 * with the most weights, else the first weight; -1 when the model has no conv/fc
 * weights. */
int32_t draw_default_layer(const struct sg_model *m) {
    int32_t n = sg_model_weight_params(m, NULL);
    if (n <= 0) return -1;
    int32_t *idx = malloc(sizeof *idx * (size_t)n);
    if (!idx) return -1;
    sg_model_weight_params(m, idx);
    int32_t pick = -1, largest = -1;
    double best = 1.0;
    for (int32_t i = 0; i < n; i++) {
        const struct sg_param *p = &m->params[idx[i]];
        if (p->layer != SG_LAYER_CONV) continue;
        size_t kept = 0;
        for (size_t k = 0; k < p->count; k++) kept += m->mask[p->offset + k] != 0;
        const double d = (double)kept / (double)p->count;
        if (d < best) best = d, pick = idx[i];
    }
    if (pick < 0) {
        for (int32_t i = 0; i < n; i++)
            if (m->params[idx[i]].layer == SG_LAYER_CONV &&
                (largest < 0 || m->params[idx[i]].count > m->params[largest].count))
                largest = idx[i];
        pick = largest >= 0 ? largest : idx[0];
    }
    free(idx);
    return pick;
}

/* Finds a weight by layer name ("conv2") or parameter name ("conv2.weight"). */
static int32_t find_layer(const struct sg_model *m, const char *name) {
    int32_t n = sg_model_weight_params(m, NULL);
    int32_t *idx = malloc(sizeof *idx * (size_t)(n > 0 ? n : 1));
    if (!idx) return -1;
    sg_model_weight_params(m, idx);
    int32_t found = -1;
    const size_t len = strlen(name);
    for (int32_t i = 0; i < n && found < 0; i++) {
        const char *pn = m->params[idx[i]].name;
        if (strcmp(pn, name) == 0 || (strncmp(pn, name, len) == 0 && strcmp(pn + len, ".weight") == 0))
            found = idx[i];
    }
    if (found < 0) {
        fprintf(stderr, "sparsegrain: error: no conv or fc layer '%s'; the model has:", name);
        for (int32_t i = 0; i < n; i++) fprintf(stderr, " %s", m->params[idx[i]].name);
        fputc('\n', stderr);
    }
    free(idx);
    return found;
}

static int run(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "give the PNG file with -o FILE");
    const int64_t maxk = cli_int(a, "max-kernels", 1, 1 << 20);
    struct sg_model *m;
    if (cli_load_model(a->pos[0], &m)) return 1;
    int rc = 1;
    struct sg_image img = {0};
    const int32_t p = cli_has(a, "layer") ? find_layer(m, cli_str(a, "layer")) : draw_default_layer(m);
    if (p < 0) {
        if (!cli_has(a, "layer")) cli_fail("%s: the model has no conv or fully connected weights", a->pos[0]);
        goto done;
    }
    struct sg_wview v = sg_model_wview(m, p);
    const int64_t K = v.k < maxk ? v.k : maxk, C = v.c < maxk ? v.c : maxk;
    int scale;
    if (cli_has(a, "scale")) {
        scale = (int)cli_int(a, "scale", 1, 64);
    } else { /* the largest scale that stays within 1600 x 1600 pixels, at least 1 */
        scale = 1;
        while (scale < 16 && C * (v.s * (scale + 1) + 1) + 1 <= 1600 && K * (v.r * (scale + 1) + 1) + 1 <= 1600)
            scale++;
    }
    struct sg_mask_image_cfg cfg = {.scale = scale, .max_k = maxk, .max_c = maxk};
    int64_t sk, sc;
    enum sg_status st = sg_mask_image(&v, &cfg, &img, &sk, &sc);
    if (st == SG_OK) st = sg_png_write(out, &img);
    if (st != SG_OK) {
        cli_fail_status(st);
        goto done;
    }
    if (sk < v.k || sc < v.c)
        fprintf(stderr, "sparsegrain: note: %s has %lld filters x %lld input channels; the picture shows the "
                        "first %lld x %lld (--max-kernels)\n",
                v.name, (long long)v.k, (long long)v.c, (long long)sk, (long long)sc);
    size_t kept = 0;
    const size_t total = (size_t)sg_wview_count(&v);
    for (size_t i = 0; i < total; i++) kept += v.mask[i] != 0;
    printf("wrote %s: %s, %lldx%lldx%lldx%lld (K x C x R x S), density %.4f, %dx%d pixels at %d px per weight\n",
           out, v.name, (long long)v.k, (long long)v.c, (long long)v.r, (long long)v.s,
           total ? (double)kept / (double)total : 0.0, img.w, img.h, scale);
    rc = 0;
done:
    sg_image_free(&img);
    sg_model_free(m);
    return rc;
}

const struct cli_cmd cmd_draw = {
    "draw", "picture of a layer's weights: kept weights by magnitude, pruned ones white (PNG)",
    "MODEL -o FILE.png [options]",
    "Draws one layer's weight tensor W[K][C][R][S]: rows are filters (K), columns are\n"
    "input channels (C), each cell is one R x S kernel at --scale pixels per weight,\n"
    "with a grey line around every kernel. Kept weights are coloured by |w| relative to\n"
    "the largest shown (reversed viridis: dark = large), pruned weights are white, so\n"
    "fine, vector, kernel and filter pruning look as different as they are (the paper's\n"
    "Figure 1). Large layers show their first --max-kernels filters and channels.",
    OPTS, 1, 1, run,
};
