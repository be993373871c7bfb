/* GPU formats (plain C, no GPU): every encoding decodes back to the masked matrix it
 * came from, sizes match a brute-force count, padding and edge cases (empty rows, full
 * matrices, sizes that are not a multiple of the block), corrupt arrays are refused;
 * the 16-bit float conversions against known bit patterns. */
#include "harness.h"
#include "sparsegrain/gpu.h"
#include "sparsegrain/prune.h"

/* rows x cols random values; mask with the given density, then row `empty` all pruned
 * (when >= 0); pruned weights get random values too, so decode must drop them. */
static void make(int64_t rows, int64_t cols, double density, int64_t empty, uint64_t seed, float *a, uint8_t *m) {
    sg_rng r;
    sg_rng_seed(&r, seed);
    for (int64_t i = 0; i < rows * cols; i++) {
        a[i] = sg_rng_normal(&r);
        if (a[i] == 0.0f) a[i] = 1.0f;
        m[i] = sg_rng_uniform(&r) < density;
    }
    if (empty >= 0 && empty < rows) memset(m + empty * cols, 0, (size_t)cols);
}

static void check_masked(const float *a, const uint8_t *m, const float *d, int64_t n) {
    for (int64_t i = 0; i < n; i++) CHECK_MSG(d[i] == (m[i] ? a[i] : 0.0f), "entry %lld: %g, want %g", (long long)i, d[i], m[i] ? a[i] : 0.0f);
}

static const int64_t SHAPES[][2] = {{1, 1}, {7, 5}, {16, 16}, {33, 70}, {64, 96}, {5, 129}};
static const double DENS[] = {0.0, 0.05, 0.3, 0.7, 1.0};

SG_TEST(gpu_csr_roundtrip) {
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (size_t d = 0; d < sizeof DENS / sizeof DENS[0]; d++) {
            const int64_t R = SHAPES[s][0], C = SHAPES[s][1];
            float *a = malloc(R * C * sizeof *a), *o = malloc(R * C * sizeof *o);
            uint8_t *m = malloc(R * C);
            make(R, C, DENS[d], R / 2, 10 * s + d, a, m);
            struct sg_gpu_csr c;
            CHECK_OK(sg_gpu_csr_encode(a, m, R, C, &c));
            int64_t nnz = 0;
            for (int64_t i = 0; i < R * C; i++) nnz += m[i];
            CHECK_EQ_INT(c.nnz, nnz);
            CHECK_EQ_INT(c.row_ptr[R / 2 + 1] - c.row_ptr[R / 2], 0); /* the empty row */
            CHECK_OK(sg_gpu_csr_decode(&c, o));
            check_masked(a, m, o, R * C);
            if (c.nnz >= 2 && c.row_ptr[1] >= 2) { /* corrupt: columns out of order */
                int32_t t = c.col[0];
                c.col[0] = c.col[1], c.col[1] = t;
                CHECK_ERR(sg_gpu_csr_decode(&c, o), SG_ERR_FORMAT);
            }
            c.row_ptr[R] = (int32_t)c.nnz + 1;
            CHECK_ERR(sg_gpu_csr_decode(&c, o), SG_ERR_FORMAT);
            sg_gpu_csr_free(&c);
            sg_gpu_csr_free(&c); /* freeing twice is harmless */
            free(a), free(o), free(m);
        }
}

/* brute-force count of bs x bs blocks holding a kept weight */
static int64_t live_blocks(const uint8_t *m, int64_t R, int64_t C, int bs, int64_t *max_row) {
    int64_t n = 0;
    *max_row = 0;
    for (int64_t bi = 0; bi * bs < R; bi++) {
        int64_t row = 0;
        for (int64_t bj = 0; bj * bs < C; bj++) {
            int live = 0;
            for (int64_t i = bi * bs; i < R && i < (bi + 1) * bs; i++)
                for (int64_t j = bj * bs; j < C && j < (bj + 1) * bs; j++) live |= m[i * C + j];
            row += live;
        }
        n += row;
        if (row > *max_row) *max_row = row;
    }
    return n;
}

SG_TEST(gpu_bsr_bell_roundtrip) {
    static const int BS[] = {1, 8, 16, 32};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (size_t d = 0; d < sizeof DENS / sizeof DENS[0]; d++)
            for (size_t b = 0; b < 4; b++) {
                const int64_t R = SHAPES[s][0], C = SHAPES[s][1];
                const int bs = BS[b];
                float *a = malloc(R * C * sizeof *a), *o = malloc(R * C * sizeof *o);
                uint8_t *m = malloc(R * C);
                make(R, C, DENS[d], 0, 100 + 10 * s + d, a, m);
                int64_t maxr;
                const int64_t nb = live_blocks(m, R, C, bs, &maxr);
                struct sg_gpu_bsr x;
                CHECK_OK(sg_gpu_bsr_encode(a, m, R, C, bs, &x));
                CHECK_EQ_INT(x.nnzb, nb);
                CHECK_EQ_INT(x.mb, (R + bs - 1) / bs);
                for (int64_t e = 0; e < x.nnzb * bs * bs; e++) (void)x.val[e];
                memset(o, 0x7f, R * C * sizeof *o);
                CHECK_OK(sg_gpu_bsr_decode(&x, o));
                check_masked(a, m, o, R * C);
                if ((R % bs || C % bs) && x.nnzb) { /* a value in the padding is refused */
                    const int64_t last = x.nnzb - 1;
                    x.val[last * bs * bs + bs * bs - 1] = 1.0f;
                    if (x.col[last] == x.kb - 1 || x.row_ptr[x.mb - 1] <= last) {
                        enum sg_status st = sg_gpu_bsr_decode(&x, o);
                        const int pad_row = x.row_ptr[x.mb - 1] <= last && R % bs;
                        const int pad_col = x.col[last] == x.kb - 1 && C % bs;
                        if (pad_row || pad_col) CHECK_EQ_INT(st, SG_ERR_FORMAT);
                    }
                }
                sg_gpu_bsr_free(&x);

                struct sg_gpu_bell e;
                CHECK_OK(sg_gpu_bell_encode(a, m, R, C, bs, &e));
                CHECK_EQ_INT(e.ell_cols, (maxr ? maxr : 1) * bs);
                CHECK_EQ_INT(e.rows_p % bs, 0);
                CHECK_EQ_INT(e.cols_p % bs, 0);
                int64_t slots = 0;
                for (int64_t i = 0; i < e.rows_p / bs * (e.ell_cols / bs); i++) slots += e.col_ind[i] >= 0;
                CHECK_EQ_INT(slots, nb);
                CHECK_OK(sg_gpu_bell_decode(&e, o));
                check_masked(a, m, o, R * C);
                e.col_ind[0] = (int32_t)(e.cols_p / bs); /* past the last block column */
                CHECK_ERR(sg_gpu_bell_decode(&e, o), SG_ERR_FORMAT);
                sg_gpu_bell_free(&e);
                free(a), free(o), free(m);
            }
}

SG_TEST(gpu_24_from_nm_pruning) {
    /* a conv layer pruned 2:4 along C by the pruning library, laid out (r, s, c) with C
     * padded to a multiple of 4: every group of 4 columns keeps at most 2 */
    static const int64_t LAYERS[][4] = {{16, 8, 3, 3}, {5, 3, 3, 3}, {8, 6, 1, 1}, {4, 4, 7, 7}};
    for (size_t l = 0; l < 4; l++) {
        const int64_t K = LAYERS[l][0], C = LAYERS[l][1], R = LAYERS[l][2], S = LAYERS[l][3];
        const int64_t n = K * C * R * S, cpad = sg_gpu_round_up(C, 4), cols = R * S * cpad;
        float *w = malloc(n * sizeof *w), *a = malloc(K * cols * sizeof *a), *o = malloc(K * cols * sizeof *o);
        uint8_t *mk = malloc(n), *am = malloc(K * cols);
        sg_rng r;
        sg_rng_seed(&r, 7 + l);
        for (int64_t i = 0; i < n; i++) w[i] = sg_rng_normal(&r);
        memset(mk, 1, n);
        struct sg_wview v = {"l", K, C, R, S, w, mk, R == 1};
        struct sg_prune_spec sp;
        sg_prune_spec_default(&sp);
        CHECK_OK(sg_prune_spec_parse("2:4", &sp));
        CHECK_OK(sg_prune_layer_density(&sp, &v, 0.5));
        CHECK_EQ_INT(sg_gpu_matrix_size(&v, cpad), K * cols);
        CHECK_OK(sg_gpu_matrix(&v, cpad, a, am));
        /* the layout: a[k][(r*S+s)*cpad + c] = W[k][c][r][s] */
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < cpad; c++)
                for (int64_t j = 0; j < R * S; j++) {
                    const float want = c < C ? w[(k * C + c) * R * S + j] : 0.0f;
                    CHECK(a[k * cols + j * cpad + c] == want);
                    CHECK(am[k * cols + j * cpad + c] == (c < C ? mk[(k * C + c) * R * S + j] : 0));
                }
        struct sg_gpu_24 s;
        CHECK_OK(sg_gpu_24_encode(a, am, K, cols, &s));
        CHECK_EQ_INT(s.cols_p % 8, 0);
        CHECK_OK(sg_gpu_24_decode(&s, o));
        check_masked(a, am, o, K * cols);
        s.meta[0] = (uint8_t)((s.meta[0] & 0xf0) | (2 | 1 << 2)); /* positions 2, 1: not ascending */
        CHECK_ERR(sg_gpu_24_decode(&s, o), SG_ERR_FORMAT);
        sg_gpu_24_free(&s);
        /* three kept in one group is not 2:4 */
        am[0] = am[1] = am[2] = 1;
        CHECK_ERR(sg_gpu_24_encode(a, am, K, cols, &s), SG_ERR_ARG);
        CHECK(strstr(sg_last_error(), "not 2:4") != NULL);
        free(w), free(a), free(o), free(mk), free(am);
    }
    /* hand-made: one row [a 0 0 b | 0 0 0 0 | 0 0 c 0 | d e] (10 columns, padded to 16) */
    const float a[10] = {1, 0, 0, 2, 0, 0, 0, 0, 0, 0};
    float b[10];
    memcpy(b, a, sizeof b);
    b[8 + 0] = 4, b[9] = 5, b[6] = 3;
    const uint8_t m[10] = {1, 0, 0, 1, 0, 0, 1, 0, 1, 1};
    struct sg_gpu_24 s;
    CHECK_OK(sg_gpu_24_encode(b, m, 1, 10, &s));
    CHECK_EQ_INT(s.cols_p, 16);
    CHECK(s.val[0] == 1 && s.val[1] == 2 && s.val[2] == 3 && s.val[3] == 0 && s.val[4] == 4 && s.val[5] == 5);
    CHECK_EQ_INT(s.meta[0], (0 | 3 << 2) | (2 | 3 << 2) << 4);
    CHECK_EQ_INT(s.meta[1] & 15, 0 | 1 << 2);
    float o[10];
    CHECK_OK(sg_gpu_24_decode(&s, o));
    check_masked(b, m, o, 10);
    sg_gpu_24_free(&s);
}

SG_TEST(gpu_thin_filter_channel) {
    const int64_t K = 12, C = 10, R = 3, S = 3, n = K * C * R * S;
    for (int by_rows = 0; by_rows < 2; by_rows++)
        for (size_t d = 0; d < 3; d++) {
            const double dens[] = {0.0, 0.3, 1.0};
            float *w = malloc(n * sizeof *w);
            uint8_t *mk = malloc(n);
            sg_rng r;
            sg_rng_seed(&r, 3 + d);
            for (int64_t i = 0; i < n; i++) w[i] = sg_rng_normal(&r);
            memset(mk, 1, n);
            struct sg_wview v = {"l", K, C, R, S, w, mk, 0};
            struct sg_prune_spec sp;
            sg_prune_spec_default(&sp);
            CHECK_OK(sg_prune_spec_parse(by_rows ? "filter" : "channel", &sp));
            CHECK_OK(sg_prune_layer_density(&sp, &v, dens[d]));
            const int64_t cpad = 16, cols = R * S * cpad;
            float *a = malloc(K * cols * sizeof *a), *o = malloc(K * cols * sizeof *o);
            uint8_t *am = malloc(K * cols);
            CHECK_OK(sg_gpu_matrix(&v, cpad, a, am));
            struct sg_gpu_thin t;
            CHECK_OK(sg_gpu_thin_encode(a, am, K, R * S, cpad, by_rows, &t));
            const int64_t groups = by_rows ? K : C, kept = (int64_t)llround(dens[d] * (double)groups);
            if (by_rows) {
                CHECK_EQ_INT(t.keep_rows, kept);
                CHECK_EQ_INT(t.keep_ch, cpad);
            } else {
                CHECK_EQ_INT(t.keep_ch, kept);
                CHECK_EQ_INT(t.keep_rows, K);
            }
            CHECK_OK(sg_gpu_thin_decode(&t, o));
            check_masked(a, am, o, K * cols);
            if (t.keep_rows >= 2) {
                t.row_idx[1] = t.row_idx[0];
                CHECK_ERR(sg_gpu_thin_decode(&t, o), SG_ERR_FORMAT);
            }
            sg_gpu_thin_free(&t);
            free(w), free(mk), free(a), free(o), free(am);
        }
}

SG_TEST(gpu_half_conversions) {
    /* binary16: known patterns, rounding to nearest even, subnormals, overflow, NaN */
    CHECK_EQ_INT(sg_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(sg_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(sg_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(sg_f32_to_f16(65520.0f), 0x7c00); /* rounds up to inf */
    CHECK_EQ_INT(sg_f32_to_f16(5.9604645e-8f), 0x0001);
    CHECK_EQ_INT(sg_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  /* tie to even (down) */
    CHECK_EQ_INT(sg_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  /* tie to even (up) */
    CHECK((sg_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (sg_f32_to_f16(NAN) & 0x3ff));
    CHECK(sg_f16_to_f32(0x3555) == 0.333251953125f);
    /* bfloat16 */
    CHECK_EQ_INT(sg_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(sg_f32_to_bf16(-3.0f), 0xc040);
    CHECK_EQ_INT(sg_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80); /* tie to even (down) */
    CHECK_EQ_INT(sg_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82); /* tie to even (up) */
    CHECK_EQ_INT(sg_f32_to_bf16(3.3895314e38f), 0x7f7f); /* the largest */
    CHECK_EQ_INT(sg_f32_to_bf16(3.4028235e38f), 0x7f80); /* past it: inf */
    CHECK((sg_f32_to_bf16(NAN) & 0x7f80) == 0x7f80 && (sg_f32_to_bf16(NAN) & 0x7f));
    CHECK(sg_bf16_to_f32(0x4049) == 3.140625f);
    /* every finite 16-bit pattern survives a round trip through float */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) != 0x7c00) CHECK_EQ_INT(sg_f32_to_f16(sg_f16_to_f32((uint16_t)h)), h);
        if ((h & 0x7f80) != 0x7f80) CHECK_EQ_INT(sg_f32_to_bf16(sg_bf16_to_f32((uint16_t)h)), h);
    }
    float x[3] = {1.0f, -2.0f, 0.5f};
    uint16_t y[3];
    sg_gpu_to_half(SG_GPU_BF16, x, 3, y);
    CHECK(y[0] == 0x3f80 && y[1] == 0xc000 && y[2] == 0x3f00);
    sg_gpu_to_half(SG_GPU_FP16, x, 3, y);
    CHECK(y[0] == 0x3c00 && y[1] == 0xc000 && y[2] == 0x3800);
    CHECK_EQ_INT(sg_gpu_dtype_from_name("bf16"), SG_GPU_BF16);
    CHECK_EQ_INT(sg_gpu_dtype_from_name("int8"), -1);
    CHECK(strcmp(sg_gpu_dtype_name(SG_GPU_TF32), "tf32") == 0);
}

SG_TEST(gpu_limits_and_no_device) {
    struct sg_gpu_csr c;
    float a[1] = {1};
    uint8_t m[1] = {1};
    CHECK_ERR(sg_gpu_csr_encode(a, m, (int64_t)1 << 32, 1, &c), SG_ERR_LIMIT);
    struct sg_gpu_bsr b;
    CHECK_ERR(sg_gpu_bsr_encode(a, m, 1, 1, 0, &b), SG_ERR_ARG);
    CHECK_ERR(sg_gpu_bsr_encode(a, m, 1, 1, 65, &b), SG_ERR_ARG);
#ifndef SG_CUDA
    char name[64] = "x";
    CHECK_ERR(sg_gpu_available(name, sizeof name), SG_ERR_UNSUPPORTED);
    CHECK(strstr(sg_last_error(), "make CUDA=1") != NULL);
    CHECK(name[0] == 0);
#endif
}
