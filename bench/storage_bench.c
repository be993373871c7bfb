/* Encode and decode throughput of every storage format on VGG-16's weight
 * shapes (138,344,128 weights), against memcpy of the same bytes.
 *
 * Throughput is dense input bytes (4 per weight) per second, on one thread
 * (the encoders are single-threaded). The weights are random normal; masks:
 *   fine    each weight kept with probability 0.3
 *   kernel  each 3x3 kernel kept with probability 0.3 (fc layers: fine)
 *   2:4     2 of every 4 weights along C kept (50%), the only mask nm accepts
 * Every decode is checked against the input (untimed). Times are the best of
 * --reps runs; malloc keeps freed blocks (no mmap/trim), so from the second run
 * on the encoders' output buffers are recycled memory, as in a steady state:
 * the first touch of fresh pages costs about 1 ns per byte in this VM.
 *
 * usage: storage_bench [--values f32|f16|q8] [--reps N] [--csv FILE --commit C --machine M
 *                      --load L] (L: the machine's load average, recorded with the rows) */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sparsegrain/storage.h"

static const int64_t VGG16[][4] = {
    {64, 3, 3, 3},     {64, 64, 3, 3},   {128, 64, 3, 3},  {128, 128, 3, 3}, {256, 128, 3, 3},
    {256, 256, 3, 3},  {256, 256, 3, 3}, {512, 256, 3, 3}, {512, 512, 3, 3}, {512, 512, 3, 3},
    {512, 512, 3, 3},  {512, 512, 3, 3}, {512, 512, 3, 3}, {4096, 25088, 1, 1},
    {4096, 4096, 1, 1}, {1000, 4096, 1, 1},
};
#define NL ((int)(sizeof VGG16 / sizeof VGG16[0]))

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "storage_bench: %s: %s\n", what, sg_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    const char *csv = NULL, *commit = "?", *machine = "?", *values = "f32", *load = "?";
    int reps = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--csv") == 0) csv = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--commit") == 0) commit = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--machine") == 0) machine = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--values") == 0) values = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--load") == 0) load = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: storage_bench [--values f32|f16|q8] [--reps N] [--csv FILE "
                            "--commit C --machine M]\n");
            return 2;
        }
    }
    mallopt(M_MMAP_MAX, 0); /* every block from the heap, which is never trimmed */
    mallopt(M_TRIM_THRESHOLD, -1);
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    const int vc = sg_values_from_name(values);
    if (vc < 0 || vc == SG_VALUES_CODEBOOK) {
        fprintf(stderr, "storage_bench: --values f32, f16 or q8\n");
        return 2;
    }
    cfg.values = (enum sg_values)vc;
    cfg.tile = (struct sg_tile){1, 1, 0, 0}; /* group and bcsr: kernel tiles */
    if (reps < 1) reps = 1;

    int64_t off[NL + 1], n = 0;
    for (int l = 0; l < NL; l++) {
        off[l] = n;
        n += VGG16[l][0] * VGG16[l][1] * VGG16[l][2] * VGG16[l][3];
    }
    off[NL] = n;
    float *w = malloc((size_t)n * 4), *w2 = malloc((size_t)n * 4), *dw = malloc((size_t)n * 4);
    uint8_t *mask = malloc((size_t)n), *m2 = malloc((size_t)n);
    uint8_t **blob = calloc(NL, sizeof *blob);
    size_t *len = calloc(NL, sizeof *len);
    if (!w || !w2 || !dw || !mask || !m2 || !blob || !len) {
        fprintf(stderr, "storage_bench: out of memory for %lld weights\n", (long long)n);
        return 1;
    }
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    for (int64_t i = 0; i < n; i++) w[i] = sg_rng_normal(&rng) * 0.02f;
    memset(dw, 0, (size_t)n * 4); /* touch every page before timing */
    memset(m2, 0, (size_t)n);

    /* memory bandwidth limit: memcpy of the dense weights, best of 3 */
    double best_copy = 1e30;
    for (int r = 0; r < 3; r++) {
        const double t0 = now();
        memcpy(w2, w, (size_t)n * 4);
        const double dt = now() - t0;
        if (dt < best_copy) best_copy = dt;
    }
    const double gb = (double)n * 4 / 1e9, copy_gbps = gb / best_copy;
    printf("VGG-16 shapes: %lld weights (%.3f GB dense float32), values %s, 1 thread, load "
           "average %s before the run\n", (long long)n, gb, values, load);
    printf("memcpy of %.3f GB: %.3f s, %.2f GB/s\n\n", gb, best_copy, copy_gbps);
    printf("%-7s %-7s %11s %7s %9s %9s %9s %9s\n", "mask", "format", "MB", "ratio", "enc GB/s",
           "dec GB/s", "enc/cpy", "dec/cpy");
    FILE *out = NULL;
    if (csv) {
        out = fopen(csv, "a");
        if (!out) {
            perror(csv);
            return 1;
        }
        fseek(out, 0, SEEK_END);
        if (ftell(out) == 0)
            fprintf(out, "date,commit,machine,load1,weights,mask,format,values,encoded_bytes,"
                         "encode_gbps,decode_gbps,memcpy_gbps\n");
    }
    char date[32];
    const time_t tt = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));

    static const char *const MASKS[] = {"fine", "kernel", "2:4"};
    for (int mk = 0; mk < 3; mk++) {
        for (int l = 0; l < NL; l++) {
            const int64_t K = VGG16[l][0], C = VGG16[l][1], RS = VGG16[l][2] * VGG16[l][3];
            uint8_t *lm = mask + off[l];
            if (mk == 2) { /* 2 of the 4 channels c0..c0+3, drawn per (k, c0, r, s) */
                memset(lm, 0, (size_t)(K * C * RS));
                for (int64_t k = 0; k < K; k++)
                    for (int64_t c0 = 0; c0 < C; c0 += 4)
                        for (int64_t j = 0; j < RS; j++) {
                            const int64_t a = (int64_t)sg_rng_below(&rng, 4),
                                          b = (a + 1 + (int64_t)sg_rng_below(&rng, 3)) % 4;
                            if (c0 + a < C) lm[(k * C + c0 + a) * RS + j] = 1;
                            if (c0 + b < C) lm[(k * C + c0 + b) * RS + j] = 1;
                        }
                continue;
            }
            for (int64_t kc = 0; kc < K * C; kc++) {
                uint8_t *m = lm + kc * RS;
                if (mk == 1 && RS > 1) memset(m, sg_rng_uniform(&rng) < 0.3, (size_t)RS);
                else
                    for (int64_t j = 0; j < RS; j++) m[j] = sg_rng_uniform(&rng) < 0.3;
            }
        }
        float *wm = w2; /* masked copy: pruned weights are 0 as in a model */
        for (int64_t i = 0; i < n; i++) wm[i] = mask[i] ? w[i] : 0.0f;
        for (int f = 0; f < SG_FORMAT_COUNT; f++) {
            double enc = 1e30, dec = 1e30;
            size_t bytes = 0;
            int na = 0;
            for (int r = 0; r < reps && !na; r++) {
                double t0 = now();
                bytes = 0;
                for (int l = 0; l < NL; l++) {
                    struct sg_wview v = {"bench", VGG16[l][0], VGG16[l][1], VGG16[l][2],
                                         VGG16[l][3], wm + off[l], mask + off[l], l >= 13};
                    sg_blob_free(blob[l]);
                    blob[l] = NULL;
                    struct sg_size sz;
                    enum sg_status st = sg_encode((enum sg_format)f, &v, &cfg, &blob[l], &len[l], &sz);
                    if (st == SG_ERR_ARG && f == SG_FORMAT_NM) {
                        na = 1;
                        break;
                    }
                    if (st != SG_OK) die("encode");
                    bytes += len[l];
                }
                double dt = now() - t0;
                if (na) break;
                if (dt < enc) enc = dt;
                /* decode into a separate, already touched arena; compare untimed */
                t0 = now();
                for (int l = 0; l < NL; l++) {
                    struct sg_wview v = {"bench", VGG16[l][0], VGG16[l][1], VGG16[l][2],
                                         VGG16[l][3], dw + off[l], m2 + off[l], l >= 13};
                    struct sg_storage_cfg dc = cfg;
                    if (f == SG_FORMAT_RELIDX || f == SG_FORMAT_GROUP || f == SG_FORMAT_RLE4)
                        dc.index_bits = SG_INDEX_BITS_PAPER; /* what the encoder used */
                    if (sg_decode((enum sg_format)f, blob[l], len[l], &dc, &v) != SG_OK)
                        die("decode");
                }
                dt = now() - t0;
                if (dt < dec) dec = dt;
                if (memcmp(m2, mask, (size_t)n) != 0) die("decoded mask differs");
                if (cfg.values == SG_VALUES_F32 && memcmp(dw, wm, (size_t)n * 4) != 0)
                    die("decoded values differ");
            }
            if (na) {
                printf("%-7s %-7s %11s\n", MASKS[mk], sg_format_name((enum sg_format)f), "n/a");
                continue;
            }
            printf("%-7s %-7s %11.1f %7.2f %9.3f %9.3f %8.1f%% %8.1f%%\n", MASKS[mk],
                   sg_format_name((enum sg_format)f), bytes / 1e6, 4.0 * n / bytes, gb / enc,
                   gb / dec, 100 * (gb / enc) / copy_gbps, 100 * (gb / dec) / copy_gbps);
            fflush(stdout);
            if (out)
                fprintf(out, "%s,%s,\"%s\",%s,%lld,%s,%s,%s,%zu,%.4f,%.4f,%.4f\n", date, commit,
                        machine, load, (long long)n, MASKS[mk], sg_format_name((enum sg_format)f),
                        values, bytes, gb / enc, gb / dec, copy_gbps);
        }
    }
    if (out) fclose(out);
    for (int l = 0; l < NL; l++) sg_blob_free(blob[l]);
    free(blob), free(len), free(w), free(w2), free(dw), free(mask), free(m2);
    return 0;
}
