/* sparsegrain encode / decode: a model to and from a .sgz file whose conv/fc
 * weights are stored in one sparse format (docs/file-format.md, ".sgz"). */
#include <string.h>

#include "cli.h"
#include "sparsegrain/storage.h"

/* cmd_storage.c: the storage options shared by both commands. */
int cli_storage_cfg(const struct cli_args *a, const struct sg_model *m, struct sg_storage_cfg *cfg);

static const struct cli_opt ENCODE_OPTS[] = {
    {"format", 'f', "NAME", "dense, relidx, group, csr, bitmap, rle4, nm or bcsr", NULL},
    {"granularity", 'g', "NAME",
     "tile of group/bcsr: fine, vector, kernel, filter, channel, block:KxCxRxS (0 = whole "
     "dim); default: the model's 'granularity' metadata, else fine", NULL},
    {"value-bits", 0, "N", "value width: 32 (float, lossless), 16 (IEEE half), 8 (linear)", "32"},
    {"codebook-bits", 0, "K", "k-bit indices into a per-layer k-means codebook instead", NULL},
    {"kmeans-iters", 0, "N", "codebook: Lloyd iterations at most (0 = linear codebook)", "100"},
    {"index-bits", 0, "N", "relidx/group/rle4 index width: 1..16, auto or paper", "paper"},
    {"kc", 0, "N", "rle4: output channels per SCNN block (Kc)", "8"},
    {"nm", 0, "N:M", "nm: at most N kept in every M consecutive weights along C", "2:4"},
    {"output", 'o', "FILE", "compressed model to write (.sgz)", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    {0},
};

static void json_info(struct sg_json *j, const struct sg_sgz_info *in) {
    sg_json_key(j, "format"), sg_json_str(j, sg_format_name(in->format));
    sg_json_key(j, "layers"), sg_json_int(j, in->n_layers);
    sg_json_key(j, "bytes"), sg_json_int(j, (int64_t)in->file_bytes);
    sg_json_key(j, "layer_bytes"), sg_json_int(j, (int64_t)in->layer_bytes);
    sg_json_key(j, "overhead_bytes"), sg_json_int(j, (int64_t)in->overhead_bytes);
    sg_json_key(j, "overhead"), sg_json_obj(j);
    sg_json_key(j, "header"), sg_json_int(j, (int64_t)in->header_bytes);
    sg_json_key(j, "table"), sg_json_int(j, (int64_t)in->table_bytes);
    sg_json_key(j, "arch"), sg_json_int(j, (int64_t)in->arch_bytes);
    sg_json_key(j, "other"), sg_json_int(j, (int64_t)in->other_bytes);
    sg_json_key(j, "crc"), sg_json_int(j, (int64_t)in->crc_bytes);
    sg_json_end(j);
}

static void print_info(const char *verb, const char *path, const struct sg_sgz_info *in) {
    printf("%s %s: %llu bytes = %llu in %d %s layer streams (what 'storage' reports) + %llu "
           "overhead (header %llu, layer table %llu, architecture %llu, other tensors %llu, "
           "checksum %llu)\n",
           verb, path, (unsigned long long)in->file_bytes, (unsigned long long)in->layer_bytes,
           in->n_layers, sg_format_name(in->format), (unsigned long long)in->overhead_bytes,
           (unsigned long long)in->header_bytes, (unsigned long long)in->table_bytes,
           (unsigned long long)in->arch_bytes, (unsigned long long)in->other_bytes,
           (unsigned long long)in->crc_bytes);
}

static int run_encode(struct cli_args *a) {
    const char *out = cli_str(a, "output"), *fname = cli_str(a, "format");
    if (!out) cli_usage_error(a, "give the output file with -o FILE.sgz");
    if (!fname) cli_usage_error(a, "give the format with --format NAME");
    const int f = sg_format_from_name(fname);
    if (f < 0) {
        char known[256];
        cli_usage_error(a, "unknown format '%s' (%s)", fname, cli_format_names(known, sizeof known));
    }
    struct sg_model *m;
    if (cli_load_model(a->pos[0], &m)) return 1;
    struct sg_storage_cfg cfg;
    cli_storage_cfg(a, m, &cfg);
    struct sg_sgz_info info;
    enum sg_status st = sg_sgz_write(m, (enum sg_format)f, &cfg, out, &info);
    sg_model_free(m);
    if (st != SG_OK) return cli_fail("%s: %s", a->pos[0], sg_last_error());
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "file"), sg_json_str(&j, out);
        json_info(&j, &info);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        print_info("wrote", out, &info);
    }
    return 0;
}

const struct cli_cmd cmd_encode = {
    "encode", "write a model with its weights in one sparse format (.sgz)", "MODEL --format NAME -o FILE.sgz [options]",
    "Values are 32-bit floats by default, so 'decode' restores the model bit for bit; with\n"
    "--value-bits 16|8 or --codebook-bits K it restores the quantised weights exactly.\n"
    "The file is the per-layer streams that 'storage' reports plus a documented overhead.",
    ENCODE_OPTS, 1, 1, run_encode,
};

static const struct cli_opt DECODE_OPTS[] = {
    {"output", 'o', "FILE", "model file to write (.sgm)", NULL},
    {"json", 0, NULL, "print one JSON object", NULL},
    {0},
};

static int run_decode(struct cli_args *a) {
    const char *out = cli_str(a, "output");
    if (!out) cli_usage_error(a, "give the output file with -o FILE.sgm");
    struct sg_model *m;
    struct sg_sgz_info info;
    enum sg_status st = sg_sgz_read(a->pos[0], &m, &info);
    if (st != SG_OK) return cli_fail_status(st);
    st = sg_model_save_any(m, out);
    sg_model_free(m);
    if (st != SG_OK) return cli_fail("%s: %s", out, sg_last_error());
    if (cli_flag(a, "json")) {
        struct sg_json j;
        sg_json_init(&j);
        sg_json_obj(&j);
        sg_json_key(&j, "file"), sg_json_str(&j, a->pos[0]);
        sg_json_key(&j, "output"), sg_json_str(&j, out);
        json_info(&j, &info);
        sg_json_end(&j);
        cli_print_json(&j);
    } else {
        print_info("read", a->pos[0], &info);
        printf("wrote %s\n", out);
    }
    return 0;
}

const struct cli_cmd cmd_decode = {
    "decode", "restore a model (.sgm) from a compressed .sgz file", "FILE.sgz -o FILE.sgm",
    NULL, DECODE_OPTS, 1, 1, run_decode,
};
