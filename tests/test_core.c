/* core: RNG, byte buffers and cursors, checked file reads, atomic writes. */
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/sgi.h"
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
