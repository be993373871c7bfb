/* core: RNG, byte buffers and cursors, checked file reads, atomic writes. */
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/sgi.h"
#include "core/sgi_kv.h"
#include "harness.h"

SG_TEST(rng_is_deterministic_and_uniform) {
    sg_rng a, b;
    sg_rng_seed(&a, 42);
    sg_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) CHECK(sg_rng_next(&a) == sg_rng_next(&b));
    sg_rng_seed(&a, 7);
    double sum = 0, sq = 0;
    int counts[10] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = sg_rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
        counts[sg_rng_below(&a, 10)]++;
        float z = sg_rng_normal(&a);
        sum += z;
        sq += (double)z * z;
    }
    for (int k = 0; k < 10; k++) CHECK(abs(counts[k] - n / 10) < n / 100);
    CHECK_NEAR(sum / n, 0.0, 0.02);
    CHECK_NEAR(sq / n, 1.0, 0.02);
}

SG_TEST(rng_shuffle_is_a_permutation) {
    sg_rng r;
    sg_rng_seed(&r, 3);
    uint32_t idx[1000];
    int seen[1000] = {0};
    for (int i = 0; i < 1000; i++) idx[i] = (uint32_t)i;
    sg_rng_shuffle(&r, idx, 1000);
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        moved += idx[i] != (uint32_t)i;
    }
    for (int i = 0; i < 1000; i++) CHECK(seen[i] == 1);
    CHECK(moved > 900);
}

SG_TEST(buf_and_cursor_round_trip) {
    struct sgi_buf b = {0};
    sgi_buf_u32(&b, 0xdeadbeef);
    sgi_buf_u64(&b, 0x0123456789abcdefull);
    sgi_buf_f32(&b, -1.5f);
    sgi_buf_f64(&b, 3.25);
    sgi_buf_str(&b, "conv2");
    sgi_buf_pad(&b, 8);
    CHECK(b.len % 8 == 0 && !b.failed);
    struct sgi_cur c;
    sgi_cur_init(&c, b.data, b.len, "buf");
    CHECK(sgi_cur_u32(&c) == 0xdeadbeef);
    CHECK(sgi_cur_u64(&c) == 0x0123456789abcdefull);
    CHECK(sgi_cur_f32(&c) == -1.5f);
    CHECK(sgi_cur_f64(&c) == 3.25);
    char s[8];
    CHECK(sgi_cur_str(&c, s, sizeof s) && strcmp(s, "conv2") == 0);
    CHECK(!c.bad);
    /* a read past the end is sticky and returns zeros */
    sgi_cur_init(&c, b.data, 6, "short");
    CHECK(sgi_cur_u32(&c) == 0xdeadbeef);
    CHECK(sgi_cur_u64(&c) == 0 && c.bad);
    CHECK(sgi_cur_u8(&c) == 0 && c.bad);
    /* a string longer than its destination is refused */
    sgi_cur_init(&c, b.data + 24, b.len - 24, "s");
    CHECK(!sgi_cur_str(&c, s, 4) && c.bad);
    sgi_buf_free(&b);
}

SG_TEST(file_read_plain_gzip_and_limits) {
    char path[512], gz[512];
    snprintf(path, sizeof path, "%s/plain.bin", sgt_tmpdir());
    snprintf(gz, sizeof gz, "%s/plain.bin.gz", sgt_tmpdir());
    uint8_t data[5000];
    for (int i = 0; i < 5000; i++) data[i] = (uint8_t)(i * 7);
    CHECK_OK(sg_file_write_atomic(path, data, sizeof data));
    gzFile f = gzopen(gz, "wb");
    CHECK(f);
    CHECK(gzwrite(f, data, sizeof data) == (int)sizeof data);
    gzclose(f);
    uint8_t *out;
    size_t n;
    CHECK_OK(sg_file_read(path, 1 << 20, 1, &out, &n));
    CHECK(n == 5000 && memcmp(out, data, n) == 0);
    free(out);
    CHECK_OK(sg_file_read(gz, 1 << 20, 1, &out, &n));
    CHECK(n == 5000 && memcmp(out, data, n) == 0);
    free(out);
    CHECK_ERR(sg_file_read(path, 100, 1, &out, &n), SG_ERR_LIMIT);
    CHECK_ERR(sg_file_read(gz, 4000, 1, &out, &n), SG_ERR_LIMIT);
    CHECK(strstr(sg_last_error(), "plain.bin.gz"));
    /* a truncated gzip stream is a format error */
    uint8_t *raw;
    size_t rawn;
    CHECK_OK(sg_file_read(gz, 1 << 20, 0, &raw, &rawn));
    CHECK_OK(sg_file_write_atomic(gz, raw, rawn / 2));
    free(raw);
    CHECK_ERR(sg_file_read(gz, 1 << 20, 1, &out, &n), SG_ERR_FORMAT);
    CHECK_ERR(sg_file_read("/nonexistent/x", 10, 1, &out, &n), SG_ERR_IO);
    CHECK(strstr(sg_last_error(), "/nonexistent/x"));
}

SG_TEST(atomic_writer_keeps_old_file_until_commit) {
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", sgt_tmpdir());
    CHECK_OK(sg_file_write_atomic(path, "old", 3));
    struct sg_writer *w;
    CHECK_OK(sg_writer_open(path, &w));
    CHECK_OK(sg_writer_write(w, "new contents", 12));
    uint8_t *out;
    size_t n;
    CHECK_OK(sg_file_read(path, 100, 0, &out, &n));
    CHECK(n == 3 && memcmp(out, "old", 3) == 0);
    free(out);
    sg_writer_abort(w);
    CHECK_OK(sg_file_read(path, 100, 0, &out, &n));
    CHECK(n == 3);
    free(out);
    CHECK_OK(sg_writer_open(path, &w));
    CHECK_OK(sg_writer_write(w, "new contents", 12));
    CHECK_OK(sg_writer_commit(w));
    CHECK_OK(sg_file_read(path, 100, 0, &out, &n));
    CHECK(n == 12 && memcmp(out, "new contents", 12) == 0);
    free(out);
    CHECK_ERR(sg_writer_open("/nonexistent/dir/file", &w), SG_ERR_IO);
}

SG_TEST(crc32_matches_known_value) {
    /* CRC-32 of "123456789" is 0xCBF43926 (the standard check value). */
    CHECK(sgi_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(sgi_crc32(sgi_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
}

/* C = alpha op(A) op(B) + beta C in double, the reference for sgi_sgemm_own. */
static void gemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < k; t++)
                s += (double)(ta ? a[(size_t)t * lda + i] : a[(size_t)i * lda + t]) *
                     (tb ? b[(size_t)j * ldb + t] : b[(size_t)t * ldb + j]);
            float *cij = c + (size_t)i * ldc + j;
            *cij = (float)(alpha * s + (beta != 0.0f ? (double)beta * *cij : 0.0));
        }
}

/* The own GEMM (vector kernels, transposed copies for A B^T) against double loops:
 * every transpose pair, tail rows and columns (m not a multiple of 6, n not of 32),
 * padded leading dimensions, alpha and beta; and a product computed in column
 * slices gives the bits of the whole (each entry one sum in a fixed order). The
 * slice check holds for the own kernels only (AVX-512, or AVX2 with FMA): a build
 * without them runs OpenBLAS, whose blocking follows n. */
SG_TEST(sgemm_own_matches_reference_and_slices) {
    static const int shapes[][3] = {{1, 1, 1},   {5, 7, 3},    {6, 32, 16},  {13, 70, 37},
                                    {7, 33, 64}, {50, 64, 25}, {32, 100, 200}, {19, 17, 300}};
    sg_rng r;
    sg_rng_seed(&r, 5);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ab = 0; ab < 2; ab++) {
                    const int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
                    const float alpha = ab ? 0.75f : 1.0f, beta = ab ? 0.5f : 0.0f;
                    float *a = malloc(sizeof(float) * (size_t)lda * (ta ? k : m));
                    float *b = malloc(sizeof(float) * (size_t)ldb * (tb ? n : k));
                    float *c = malloc(sizeof(float) * (size_t)ldc * m), *cr = malloc(sizeof(float) * (size_t)ldc * m);
                    float *cs = malloc(sizeof(float) * (size_t)ldc * m);
                    for (int i = 0; i < lda * (ta ? k : m); i++) a[i] = (float)sg_rng_uniform(&r) - 0.5f;
                    for (int i = 0; i < ldb * (tb ? n : k); i++) b[i] = (float)sg_rng_uniform(&r) - 0.5f;
                    for (int i = 0; i < ldc * m; i++) c[i] = cr[i] = cs[i] = (float)sg_rng_uniform(&r);
                    sgi_sgemm_own(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cr, ldc);
                    double err = 0;
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            const double d = fabs((double)c[(size_t)i * ldc + j] - cr[(size_t)i * ldc + j]);
                            if (d > err) err = d;
                        }
                        for (int j = n; j < ldc; j++) /* the padding stays untouched */
                            CHECK(c[(size_t)i * ldc + j] == cr[(size_t)i * ldc + j]);
                    }
                    CHECK_MSG(err < 1e-5 * (1 + sqrt((double)k)), "op %d%d %dx%dx%d: err %g", ta, tb, m, n, k, err);
                    const int own = SGI_KV; /* every shape here is narrow (src/core/gemm.c) */
                    if (own && !ta) { /* column slices of 11 (B's columns, C's columns) */
                        for (int j0 = 0; j0 < n; j0 += 11) {
                            const int nj = n - j0 < 11 ? n - j0 : 11;
                            sgi_sgemm_own(ta, tb, m, nj, k, alpha, a, lda, tb ? b + (size_t)j0 * ldb : b + j0, ldb,
                                          beta, cs + j0, ldc);
                        }
                        CHECK_MSG(memcmp(c, cs, sizeof(float) * (size_t)ldc * m) == 0,
                                  "op %d%d %dx%dx%d: slices differ from the whole", ta, tb, m, n, k);
                    }
                    free(a), free(b), free(c), free(cr), free(cs);
                }
}

/* sgi_mean_m2 (one pass over memory, blocks joined by Chan's formula) against the
 * two-pass sums in double: lengths with tails of every kind (under a block, a block
 * and a vector's tail, several blocks), data with a mean far above its spread
 * (where E[x^2] - E[x]^2 in float would lose every digit), and constant data (the
 * sum of squares exactly 0). Joining parts with sgi_moments_join equals the whole. */
SG_TEST(mean_m2_matches_two_pass_double) {
    const size_t lens[] = {1, 15, 17, 100, 4096, 4113, 9000, 25088};
    sg_rng r;
    sg_rng_seed(&r, 11);
    static float x[25088];
    for (int kind = 0; kind < 3; kind++)
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const size_t n = lens[li];
            for (size_t i = 0; i < n; i++)
                x[i] = kind == 0   ? sg_rng_normal(&r)
                       : kind == 1 ? 1000.0f + 0.5f * sg_rng_normal(&r)
                                   : 3.25f;
            double s = 0, q = 0;
            for (size_t i = 0; i < n; i++) s += x[i];
            const double mu = s / (double)n;
            for (size_t i = 0; i < n; i++) q += ((double)x[i] - mu) * ((double)x[i] - mu);
            double gm, gq;
            sgi_mean_m2(x, n, &gm, &gq);
            CHECK_MSG(fabs(gm - mu) <= 1e-6 * (fabs(mu) + 1), "kind %d n %zu: mean %.9g, %.9g",
                      kind, n, gm, mu);
            if (kind == 2) CHECK_MSG(gq == 0.0, "constant data: m2 %g", gq);
            else
                CHECK_MSG(fabs(gq - q) <= 1e-5 * q + 1e-12, "kind %d n %zu: m2 %.9g, two-pass %.9g",
                          kind, n, gq, q);
            /* two parts joined */
            const size_t h = n / 3;
            double pn = 0, pm = 0, pq = 0, am, aq, bm, bq;
            sgi_mean_m2(x, h ? h : 1, &am, &aq);
            if (h) sgi_moments_join(&pn, &pm, &pq, (double)h, am, aq);
            sgi_mean_m2(x + h, n - h, &bm, &bq);
            sgi_moments_join(&pn, &pm, &pq, (double)(n - h), bm, bq);
            CHECK(pn == (double)n);
            CHECK_MSG(fabs(pm - mu) <= 1e-6 * (fabs(mu) + 1) && fabs(pq - q) <= 1e-5 * q + 1e-12,
                      "kind %d n %zu joined: %.9g %.9g against %.9g %.9g", kind, n, pm, pq, mu, q);
        }
}
