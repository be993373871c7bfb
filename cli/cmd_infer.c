/* sparsegrain infer: top-1 accuracy and speed of a model on a test set, with the
 * dense kernels, the sparse kernel each layer's mask suggests, or per layer the
 * faster of the two (measured once, cached beside the model). */
#include <string.h>

#include "cli.h"

static const struct cli_opt OPTS[] = {
    {"data", 'd', "NAME", "data set: mnist or fashion (default: the one the model was trained on)", NULL},
    {"data-dir", 0, "DIR", "folder with t10k-{images,labels} IDX files", NULL},
    {"engine", 'e', "E", "dense, sparse (the kernel each mask suggests) or auto (faster per layer)", "auto"},
    {"kernel", 'k', "K", "sparse kernel for every layer: auto (from its mask), thin, kernel, "
                         "vector, nm, fine, winograd", "auto"},
    {"batch", 'b', "N", "images per forward pass", "256"},
    {"threads", 't', "N", "threads (0 = the cores idle at start)", "0"},
    {"repeat", 'r', "N", "auto: timed runs per engine and layer (the fastest counts)", "3"},
    {"no-cache", 0, NULL, "auto: measure again and do not read or write MODEL.engine", NULL},
    {"max-images", 0, "N", "test images to use (0 = all)", "0"},
    {"verbose", 'v', NULL, "per-layer kernel, engine, density and time", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    CLI_INPUT_NORM_OPT,
    {0},
};

static int run(struct cli_args *a) {
    const int engine = sg_engine_from_name(cli_str(a, "engine"));
    if (engine < 0)
        cli_usage_error(a, "unknown --engine '%s' (%s)", cli_str(a, "engine"), cli_names("engine"));
    const int kernel = sg_conv_kind_from_name(cli_str(a, "kernel"));
    if (kernel < 0 || kernel == SG_KIND_DENSE)
        cli_usage_error(a, "unknown --kernel '%s' (%s)", cli_str(a, "kernel"),
                        cli_names("sparse-kind"));
    const int batch = (int)cli_int(a, "batch", 1, 65536);
    const int repeat = (int)cli_int(a, "repeat", 1, 1000);
    const long max_images = cli_int(a, "max-images", 0, 1L << 31);
    cli_set_threads(a);
    struct sg_model *m = NULL;
    struct sg_dataset *d = NULL, *view = NULL;
    struct sg_infer *inf = NULL;
    int rc = 1;
    if (cli_load_model(a->pos[0], &m) || cli_need_runnable(m, a->pos[0]) ||
        cli_load_data(a, m, 0, &d))
        goto done;
    const struct sg_dataset *test = d;
    if (max_images > 0 && max_images < d->n) {
        enum sg_status st = sg_dataset_view(d, 0, max_images, &view);
        if (st != SG_OK) {
            cli_fail_status(st);
            goto done;
        }
        test = view;
    }
    struct sg_infer_cfg cfg;
    sg_infer_cfg_default(&cfg);
    cfg.engine = (enum sg_engine)engine;
    cfg.batch = batch;
    cfg.auto_repeats = repeat;
    cfg.kernel = (enum sg_conv_kind)kernel;
    cfg.model_path = cli_flag(a, "no-cache") ? NULL : a->pos[0];
    if (engine == SG_ENGINE_AUTO) cli_progress_note("measuring dense and sparse per layer ...");
    enum sg_status st = sg_infer_new(m, &cfg, &inf);
    cli_progress_done();
    struct sg_infer_result r;
    if (st == SG_OK) {
        cli_progress_note("inference on %s ...", test->name);
        st = sg_infer_evaluate(inf, test, &r);
        cli_progress_done();
    }
    if (st != SG_OK) {
        cli_fail("%s: %s", a->pos[0], sg_last_error());
        goto done;
    }
    const char *note;
    const enum sg_cache_state cache = sg_infer_cache_state(inf, &note);
    if (cache == SG_CACHE_FAILED) cli_warn("engine cache not saved: %s", note);
    static const char *const CACHE[] = {"unused", "read", "written", "failed"};
    const int32_t nl = sg_infer_layer_count(inf);
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "model"), sg_json_str(&j, a->pos[0]);
        sg_json_key(&j, "data"), sg_json_str(&j, test->name);
        sg_json_key(&j, "engine"), sg_json_str(&j, sg_engine_name((enum sg_engine)engine));
        sg_json_key(&j, "batch"), sg_json_int(&j, batch);
        sg_json_key(&j, "threads"), sg_json_int(&j, sg_get_threads());
        sg_json_key(&j, "n"), sg_json_int(&j, r.n);
        sg_json_key(&j, "top1"), sg_json_num(&j, r.top1);
        sg_json_key(&j, "top5"), sg_json_num(&j, r.top5);
        sg_json_key(&j, "seconds"), sg_json_num(&j, r.seconds);
        sg_json_key(&j, "images_per_s"), sg_json_num(&j, r.images_per_s);
        sg_json_key(&j, "ms_per_image"), sg_json_num(&j, r.n ? 1e3 * r.seconds / r.n : 0);
        sg_json_key(&j, "ms_per_batch"), sg_json_num(&j, r.ms_per_batch);
        sg_json_key(&j, "cache"), sg_json_str(&j, CACHE[cache]);
        sg_json_key(&j, "layers"), sg_json_arr(&j);
        for (int32_t i = 0; i < nl; i++) {
            struct sg_infer_layer l;
            sg_infer_layer_get(inf, i, &l);
            sg_json_obj(&j);
            sg_json_key(&j, "name"), sg_json_str(&j, l.name);
            sg_json_key(&j, "engine"), sg_json_str(&j, sg_engine_name(l.engine));
            sg_json_key(&j, "kernel"), sg_json_str(&j, sg_conv_kind_name(l.plan.kind));
            sg_json_key(&j, "density"), sg_json_num(&j, l.density);
            sg_json_key(&j, "seconds"), sg_json_num(&j, l.seconds);
            if (l.auto_dense_s >= 0) {
                sg_json_key(&j, "auto_dense_s"), sg_json_num(&j, l.auto_dense_s);
                sg_json_key(&j, "auto_sparse_s"), sg_json_num(&j, l.auto_sparse_s);
            }
            sg_json_end(&j);
        }
        sg_json_end(&j);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        printf("%s on %s (%lld images, batch %d, %d threads, engine %s): top-1 %.2f%%  "
               "%.4f ms/image (%.3f ms/batch)  %.0f images/s\n",
               a->pos[0], test->name, (long long)r.n, batch, sg_get_threads(),
               sg_engine_name((enum sg_engine)engine), 100 * r.top1,
               r.n ? 1e3 * r.seconds / r.n : 0.0, r.ms_per_batch, r.images_per_s);
        if (cli_flag(a, "verbose")) {
            struct cli_table t;
            cli_table_init(&t, 7);
            t.right_align = 0x78;
            cli_table_row(&t, "layer", "kernel", "engine", "density", "ms/batch", "auto dense ms",
                          "auto sparse ms");
            for (int32_t i = 0; i < nl; i++) {
                struct sg_infer_layer l;
                sg_infer_layer_get(inf, i, &l);
                const int meas = l.auto_dense_s >= 0;
                cli_table_row(&t, l.name, sg_conv_kind_name(l.plan.kind), sg_engine_name(l.engine),
                              cli_fmt("%.3f", l.density),
                              cli_fmt("%.3f", l.calls ? 1e3 * l.seconds / l.calls : 0.0),
                              meas ? cli_fmt("%.3f", 1e3 * l.auto_dense_s) : "-",
                              meas ? cli_fmt("%.3f", 1e3 * l.auto_sparse_s) : "-");
            }
            cli_table_print(&t, stdout, 0);
            cli_table_free(&t);
            if (engine == SG_ENGINE_AUTO)
                printf("engine choices: %s (%s.engine)\n",
                       cache == SG_CACHE_READ      ? "read from the cache"
                       : cache == SG_CACHE_UNUSED  ? "measured, not cached"
                                                   : "measured",
                       a->pos[0]);
        }
    }
    rc = 0;
done:
    sg_infer_free(inf);
    sg_dataset_free(view);
    sg_dataset_free(d);
    sg_model_free(m);
    return rc;
}

const struct cli_cmd cmd_infer = {
    "infer",
    "fast inference with kernels that exploit each layer's sparsity",
    "MODEL [options]",
    "Runs the test set through the model and prints top-1 accuracy, latency per image and\n"
    "images/s (time spent in forward passes only). Each conv and fc layer runs dense\n"
    "(im2col + sgemm, as 'eval'), or with the sparse kernel its mask suggests (thin for\n"
    "filter/channel pruning, kernel, vector, nm or fine), or with --engine auto the faster\n"
    "of the two, measured once per layer at this batch and thread count and cached in\n"
    "MODEL.engine (refreshed when the model file or the masks change).",
    OPTS, 1, 1, run,
};
