/* sparsegrain storage: bytes of every conv/fc layer in each sparse format,
 * measured by encoding it, with the breakdown into value, index, filler and
 * metadata bits and the compression ratio against dense float32. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparsegrain/storage.h"

/* Options shared with encode (cmd_encode.c lists the same names). */
#define STORAGE_OPTS                                                                            \
    {"granularity", 'g', "NAME",                                                                \
     "tile of group/bcsr: fine, vector, kernel, filter, channel, block:KxCxRxS (0 = whole "     \
     "dim); default: the model's 'granularity' metadata, else fine", NULL},                    \
    {"value-bits", 0, "N", "value width: 32 (float), 16 (IEEE half), 8 (linear, per-layer scale)", \
     "32"},                                                                                     \
    {"codebook-bits", 0, "K", "k-bit indices into a per-layer k-means codebook instead", NULL}, \
    {"kmeans-iters", 0, "N", "codebook: Lloyd iterations at most (0 = linear codebook)", "100"}, \
    {"index-bits", 0, "N", "relidx/group/rle4 index width: 1..16, auto (best per layer) or "    \
     "paper (4 conv, 5 fc; rle4 4)", "paper"},                                                  \
    {"kc", 0, "N", "rle4: output channels per SCNN block (Kc)", "8"},                          \
    {"nm", 0, "N:M", "nm: at most N kept in every M consecutive weights along C", "2:4"}

static const struct cli_opt OPTS[] = {
    {"formats", 'f', "LIST", "comma-separated formats, or all", "all"},
    STORAGE_OPTS,
    {"csv", 0, NULL, "print the table as CSV", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    {0},
};

/* Reads the shared options into cfg (exits 2 on usage errors). Also used by
 * encode, which declares it extern: cli.h is shared with other subsystems. */
int cli_storage_cfg(const struct cli_args *a, const struct sg_model *m, struct sg_storage_cfg *cfg);

int cli_storage_cfg(const struct cli_args *a, const struct sg_model *m, struct sg_storage_cfg *cfg) {
    sg_storage_cfg_default(cfg);
    const char *g = cli_str(a, "granularity");
    if (g) {
        if (sg_storage_tile_parse(g, &cfg->tile) != SG_OK) cli_usage_error(a, "%s", sg_last_error());
    } else if (m && (g = sg_meta_get(m, "granularity")) != NULL) {
        if (sg_storage_tile_parse(g, &cfg->tile) != SG_OK) {
            cli_warn("model metadata granularity '%s' is not a tile this command knows; using "
                     "fine (give --granularity)", g);
            cfg->tile = (struct sg_tile){1, 1, 1, 1};
        }
    }
    if (cli_has(a, "codebook-bits")) {
        if (cli_has(a, "value-bits"))
            cli_usage_error(a, "give --value-bits or --codebook-bits, not both");
        cfg->values = SG_VALUES_CODEBOOK;
        cfg->codebook_bits = (int)cli_int(a, "codebook-bits", 1, 16);
    } else {
        const long vb = cli_int(a, "value-bits", 8, 32);
        if (vb != 32 && vb != 16 && vb != 8) cli_usage_error(a, "--value-bits must be 32, 16 or 8");
        cfg->values = vb == 32 ? SG_VALUES_F32 : vb == 16 ? SG_VALUES_F16 : SG_VALUES_Q8;
    }
    cfg->kmeans_iters = (int)cli_int(a, "kmeans-iters", 0, 100000);
    const char *ib = cli_str(a, "index-bits");
    if (strcmp(ib, "auto") == 0) cfg->index_bits = SG_INDEX_BITS_AUTO;
    else if (strcmp(ib, "paper") == 0) cfg->index_bits = SG_INDEX_BITS_PAPER;
    else cfg->index_bits = (int)cli_int(a, "index-bits", 1, 16);
    cfg->kc = (int)cli_int(a, "kc", 1, 1 << 20);
    int n, mm;
    char tail;
    if (sscanf(cli_str(a, "nm"), "%d:%d%c", &n, &mm, &tail) != 2 || n < 1 || n > mm || mm > 32)
        cli_usage_error(a, "--nm must be N:M with 1 <= N <= M <= 32, got '%s'", cli_str(a, "nm"));
    cfg->nm_n = n, cfg->nm_m = mm;
    return 0;
}

/* ---- per-format totals ---- */
struct cell {
    int ok;          /* 0: the format does not apply (reason in why) */
    struct sg_size s;
    char why[160];
};

static void add_size(struct sg_size *t, const struct sg_size *s) {
    t->values += s->values, t->entries += s->entries, t->fillers += s->fillers;
    t->value_bits += s->value_bits, t->index_bits += s->index_bits;
    t->filler_bits += s->filler_bits, t->meta_bits += s->meta_bits, t->pad_bits += s->pad_bits;
    t->bytes += s->bytes;
}

static void json_size(struct sg_json *j, const struct cell *c, int64_t weights, int with_width) {
    if (!c->ok) {
        sg_json_null(j);
        return;
    }
    sg_json_obj(j);
    sg_json_key(j, "values"), sg_json_int(j, c->s.values);
    sg_json_key(j, "value_bits"), sg_json_int(j, c->s.value_bits);
    sg_json_key(j, "index_bits"), sg_json_int(j, c->s.index_bits);
    sg_json_key(j, "filler_bits"), sg_json_int(j, c->s.filler_bits);
    sg_json_key(j, "meta_bits"), sg_json_int(j, c->s.meta_bits);
    sg_json_key(j, "pad_bits"), sg_json_int(j, c->s.pad_bits);
    sg_json_key(j, "fillers"), sg_json_int(j, c->s.fillers);
    if (with_width) sg_json_key(j, "index_width"), sg_json_int(j, c->s.index_width);
    sg_json_key(j, "bytes"), sg_json_int(j, c->s.bytes);
    sg_json_key(j, "ratio"), sg_json_num(j, sg_size_ratio(&c->s, weights));
    sg_json_end(j);
}

static int parse_formats(const struct cli_args *a, int *on) {
    const char *s = cli_str(a, "formats");
    memset(on, 0, SG_FORMAT_COUNT * sizeof *on);
    if (strcmp(s, "all") == 0) {
        for (int f = 0; f < SG_FORMAT_COUNT; f++) on[f] = 1;
        return 0;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const int f = sg_format_from_name(t);
        if (f < 0) {
            char known[256];
            cli_usage_error(a, "unknown format '%s' (%s, or all)", t,
                            cli_format_names(known, sizeof known));
        }
        on[f] = 1;
    }
    return 0;
}

static const char *tile_str(const struct sg_wview *v, const struct sg_tile *t) {
    const int64_t d[4] = {v->k, v->c, v->r, v->s}, x[4] = {t->k, t->c, t->r, t->s};
    int64_t r[4];
    for (int i = 0; i < 4; i++) r[i] = x[i] == 0 || x[i] > d[i] ? d[i] : x[i];
    return cli_fmt("%lldx%lldx%lldx%lld", (long long)r[0], (long long)r[1], (long long)r[2],
                   (long long)r[3]);
}

/* Every layer encoded in every chosen format: the sizes, per layer and in total. */
struct sizes {
    struct sg_model *m;
    struct sg_storage_cfg cfg;
    int on[SG_FORMAT_COUNT];
    int32_t n, *idx;   /* conv/fc weight parameters */
    struct cell *cells; /* [n][SG_FORMAT_COUNT] */
    struct cell total[SG_FORMAT_COUNT];
    int64_t weights;
};

/* Encodes for real: the reported bytes are the streams' lengths. Returns 0 or 1. */
static int encode_all(const struct cli_args *a, struct sizes *z, int json) {
    const int n = z->n;
    int32_t *idx = z->idx;
    struct sg_model *m = z->m;
    const int *on = z->on;
    struct cell *cells = z->cells, *total = z->total;
    sg_model_weight_params(m, idx);
    for (int f = 0; f < SG_FORMAT_COUNT; f++) total[f] = (struct cell){on[f], {0}, ""};
    for (int32_t i = 0; i < n; i++) {
        struct sg_wview v = sg_model_wview(m, idx[i]);
        z->weights += sg_wview_count(&v);
        for (int f = 0; f < SG_FORMAT_COUNT; f++) {
            if (!on[f]) continue;
            struct cell *c = &cells[(size_t)i * SG_FORMAT_COUNT + f];
            uint8_t *blob;
            size_t len;
            enum sg_status st = sg_encode((enum sg_format)f, &v, &z->cfg, &blob, &len, &c->s);
            if (st == SG_ERR_ARG) { /* e.g. a mask that is not N:M: the format does not apply */
                snprintf(c->why, sizeof c->why, "%s", sg_last_error());
                if (!json) cli_warn("%s: %s", sg_format_name((enum sg_format)f), c->why);
                total[f].ok = 0;
                continue;
            }
            if (st != SG_OK) return cli_fail("%s: %s", a->pos[0], sg_last_error());
            sg_blob_free(blob);
            c->ok = 1;
            add_size(&total[f].s, &c->s);
        }
    }
    return 0;
}

static void print_json(const struct cli_args *a, const struct sizes *z) {
    const int n = z->n;
    const int32_t *idx = z->idx;
    struct sg_model *m = z->m;
    const int *on = z->on;
    const struct cell *cells = z->cells, *total = z->total;
    const struct sg_storage_cfg cfg = z->cfg;
    const int64_t weights = z->weights;
    struct sg_json j;
    sg_json_init(&j);
    sg_json_obj(&j);
    sg_json_key(&j, "model"), sg_json_str(&j, a->pos[0]);
    sg_json_key(&j, "values"), sg_json_str(&j, sg_values_name(cfg.values));
    sg_json_key(&j, "value_width"),
        sg_json_int(&j, cfg.values == SG_VALUES_F32 ? 32 : cfg.values == SG_VALUES_F16 ? 16
                        : cfg.values == SG_VALUES_Q8 ? 8 : cfg.codebook_bits);
    sg_json_key(&j, "layers"), sg_json_arr(&j);
    for (int32_t i = 0; i < n; i++) {
        struct sg_wview v = sg_model_wview(m, idx[i]);
        const int64_t w = sg_wview_count(&v);
        int64_t kept = 0;
        for (int64_t e = 0; e < w; e++) kept += v.mask[e] != 0;
        sg_json_obj(&j);
        sg_json_key(&j, "name"), sg_json_str(&j, v.name);
        sg_json_key(&j, "shape"), sg_json_arr(&j);
        sg_json_int(&j, v.k), sg_json_int(&j, v.c), sg_json_int(&j, v.r), sg_json_int(&j, v.s);
        sg_json_end(&j);
        sg_json_key(&j, "tile"), sg_json_str(&j, tile_str(&v, &cfg.tile));
        sg_json_key(&j, "weights"), sg_json_int(&j, w);
        sg_json_key(&j, "kept"), sg_json_int(&j, kept);
        sg_json_key(&j, "dense_f32_bytes"), sg_json_int(&j, 4 * w);
        int best = -1;
        for (int f = 0; f < SG_FORMAT_COUNT; f++) {
            const struct cell *c = &cells[(size_t)i * SG_FORMAT_COUNT + f];
            if (on[f] && c->ok && (best < 0 || c->s.bytes < cells[(size_t)i * SG_FORMAT_COUNT + best].s.bytes))
                best = f;
        }
        sg_json_key(&j, "best");
        if (best >= 0) sg_json_str(&j, sg_format_name((enum sg_format)best));
        else sg_json_null(&j);
        sg_json_key(&j, "formats"), sg_json_obj(&j);
        for (int f = 0; f < SG_FORMAT_COUNT; f++)
            if (on[f]) {
                sg_json_key(&j, sg_format_name((enum sg_format)f));
                json_size(&j, &cells[(size_t)i * SG_FORMAT_COUNT + f], w, 1);
            }
        sg_json_end(&j);
        sg_json_end(&j);
    }
    sg_json_end(&j);
    sg_json_key(&j, "weights"), sg_json_int(&j, weights);
    sg_json_key(&j, "total"), sg_json_obj(&j);
    for (int f = 0; f < SG_FORMAT_COUNT; f++)
        if (on[f]) {
            sg_json_key(&j, sg_format_name((enum sg_format)f));
            json_size(&j, &total[f], weights, 0);
        }
    sg_json_end(&j);
    sg_json_end(&j);
    cli_print_json(&j);
}

static void print_table(const struct cli_args *a, const struct sizes *z, int csv) {
    const int n = z->n;
    const int32_t *idx = z->idx;
    struct sg_model *m = z->m;
    const int *on = z->on;
    const struct cell *cells = z->cells, *total = z->total;
    const struct sg_storage_cfg cfg = z->cfg;
    const int64_t weights = z->weights;
    struct cli_table t;
    cli_table_init(&t, 12);
    t.right_align = 0x7f8; /* b_i .. ratio */
    cli_table_row(&t, "layer", "tile", "format", "b_i", "values", "value bits", "index bits",
                  "filler bits", "meta bits", "bytes", "ratio", "best");
    for (int32_t i = 0; i <= n; i++) {
        const int is_total = i == n;
        struct sg_wview v = {0};
        if (!is_total) v = sg_model_wview(m, idx[i]);
        const int64_t w = is_total ? weights : sg_wview_count(&v);
        const struct cell *row = is_total ? total : &cells[(size_t)i * SG_FORMAT_COUNT];
        int best = -1;
        for (int f = 0; f < SG_FORMAT_COUNT; f++)
            if (on[f] && row[f].ok && (best < 0 || row[f].s.bytes < row[best].s.bytes)) best = f;
        for (int f = 0; f < SG_FORMAT_COUNT; f++) {
            if (!on[f]) continue;
            const struct cell *c = &row[f];
            const char *name = is_total ? "total" : v.name;
            const char *tile = is_total ? "" : tile_str(&v, &cfg.tile);
            if (!c->ok) {
                cli_table_row(&t, name, tile, sg_format_name((enum sg_format)f), "", "", "", "",
                              "", "", "n/a", "", "");
                continue;
            }
            cli_table_row(&t, name, tile, sg_format_name((enum sg_format)f),
                          c->s.index_width && !is_total ? cli_fmt("%d", c->s.index_width) : "",
                          cli_fmt("%lld", (long long)c->s.values),
                          cli_fmt("%lld", (long long)c->s.value_bits),
                          cli_fmt("%lld", (long long)c->s.index_bits),
                          cli_fmt("%lld", (long long)c->s.filler_bits),
                          cli_fmt("%lld", (long long)c->s.meta_bits),
                          cli_fmt("%lld", (long long)c->s.bytes),
                          cli_fmt("%.2f", sg_size_ratio(&c->s, w)), f == best ? "*" : "");
        }
    }
    if (!csv) {
        printf("%s: %d conv/fc layers, %lld weights; values %s", a->pos[0], n, (long long)weights,
               sg_values_name(cfg.values));
        if (cfg.values == SG_VALUES_CODEBOOK) printf(" (%d bits)", cfg.codebook_bits);
        printf("; ratio = dense float32 bytes / bytes; bytes are encoded stream lengths\n\n");
    }
    cli_table_print(&t, stdout, csv);
    cli_table_free(&t);
}

static int run(struct cli_args *a) {
    struct sizes z = {0};
    if (cli_load_model(a->pos[0], &z.m)) return 1;
    cli_storage_cfg(a, z.m, &z.cfg);
    parse_formats(a, z.on);
    const int json = cli_flag(a, "json"), csv = cli_flag(a, "csv");
    z.n = sg_model_weight_params(z.m, NULL);
    z.idx = calloc((size_t)z.n + 1, sizeof *z.idx);
    z.cells = calloc((size_t)z.n * SG_FORMAT_COUNT + 1, sizeof *z.cells);
    int rc = !z.idx || !z.cells ? cli_fail("out of memory") : encode_all(a, &z, json);
    if (rc == 0 && json) print_json(a, &z);
    else if (rc == 0) print_table(a, &z, csv);
    free(z.idx);
    free(z.cells);
    sg_model_free(z.m);
    return rc;
}

const struct cli_cmd cmd_storage = {
    "storage", "bytes of each layer in every sparse storage format (encoded for real)",
    "MODEL [options]",
    "Encodes every conv/fc weight tensor in each format and reports the stream length split\n"
    "into value, index, filler and metadata bits (meta: CRC-32, counts, row pointers, 8-bit\n"
    "scale or codebook). '*' marks the smallest format of each layer. The tile column is the\n"
    "group/bcsr tile after clipping to the layer: for 1x1 layers vector and kernel tiles are\n"
    "1x1x1x1, the same as fine. n/a: the format does not apply (nm on a mask that is not N:M).",
    OPTS, 1, 1, run,
};
