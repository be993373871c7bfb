/* data: IDX reader on the real MNIST and Fashion-MNIST files, and on broken copies. */
#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/data.h"

SG_TEST(mnist_real_files_load) {
    const char *dir = sgt_mnist_dir();
    CHECK_MSG(dir, "MNIST is not installed (run scripts/install-deps.sh)");
    struct sg_dataset *tr, *te;
    CHECK_OK(sg_dataset_load("mnist", dir, 1, &tr));
    CHECK_OK(sg_dataset_load("mnist", dir, 0, &te));
    CHECK_EQ_INT(tr->n, 60000);
    CHECK_EQ_INT(te->n, 10000);
    CHECK(tr->h == 28 && tr->w == 28 && tr->c == 1 && tr->classes == 10);
    CHECK(tr->labels[0] == 5 && tr->labels[1] == 0 && tr->labels[2] == 4);
    CHECK(te->labels[0] == 7 && te->labels[1] == 2 && te->labels[2] == 1);
    /* the usual MNIST normalisation constants: mean 0.1307, std 0.3081 */
    CHECK_NEAR(tr->mean, 0.1307, 1e-3);
    CHECK_NEAR(tr->std, 0.3081, 1e-3);
    CHECK(te->mean == tr->mean && te->std == tr->std);
    float x[2 * 784];
    uint8_t y[2];
    uint32_t idx[2] = {0, 59999};
    sg_dataset_batch(tr, NULL, idx, 2, 0, NULL, x, y);
    CHECK(y[0] == 5 && y[1] == tr->labels[59999]);
    CHECK_NEAR(x[0], -tr->mean / tr->std, 1e-6); /* a black corner pixel */
    sg_dataset_free(tr);
    sg_dataset_free(te);
}

SG_TEST(fashion_real_gzip_files_load) {
    const char *dir = sgt_fashion_dir();
    CHECK_MSG(dir, "Fashion-MNIST is not installed (run scripts/install-deps.sh)");
    struct sg_dataset *te;
    CHECK_OK(sg_dataset_load("fashion", dir, 0, &te));
    CHECK_EQ_INT(te->n, 10000);
    int counts[10] = {0};
    for (int64_t i = 0; i < te->n; i++) counts[te->labels[i]]++;
    for (int k = 0; k < 10; k++) CHECK_EQ_INT(counts[k], 1000); /* exactly 1000 per class */
    sg_dataset_free(te);
}

SG_TEST(augmentation_shifts_and_flips) {
    struct sg_dataset d = {.name = "tiny", .n = 1, .c = 1, .h = 3, .w = 3, .classes = 1,
                           .mean = 0, .std = 1.0f / 255.0f};
    uint8_t px[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, lab[1] = {0};
    d.pixels = px;
    d.labels = lab;
    float x[9];
    uint8_t y;
    uint32_t idx = 0;
    sg_rng r;
    sg_rng_seed(&r, 1);
    int saw_flip = 0, saw_shift = 0;
    for (int t = 0; t < 50; t++) {
        sg_dataset_batch(&d, NULL, &idx, 1, 2 /* flip */, &r, x, &y);
        if (x[0] == 3 && x[2] == 1 && x[4] == 5) saw_flip = 1;
        else CHECK(x[0] == 1 && x[8] == 9);
        sg_dataset_batch(&d, NULL, &idx, 1, 1 /* shift */, &r, x, &y);
        float s = 0;
        for (int i = 0; i < 9; i++) s += x[i];
        if (s < 45) saw_shift = 1;
    }
    CHECK(saw_flip && saw_shift);
}

static void write_file(const char *path, const void *p, size_t n) {
    CHECK_OK(sg_file_write_atomic(path, p, n));
}

SG_TEST(idx_rejects_broken_files) {
    char path[512];
    snprintf(path, sizeof path, "%s/x.idx", sgt_tmpdir());
    int nd;
    int64_t dims[4];
    uint8_t *data;
    size_t len;
    const uint8_t good[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    write_file(path, good, sizeof good);
    CHECK_OK(sg_idx_read(path, &nd, dims, &data, &len));
    CHECK(nd == 2 && dims[0] == 2 && dims[1] == 3 && len == 6 && data[5] == 6);
    free(data);
    write_file(path, good, sizeof good - 1); /* truncated data */
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "x.idx") && strstr(sg_last_error(), "truncated"));
    write_file(path, good, 9); /* truncated header */
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_FORMAT);
    uint8_t bad[sizeof good];
    memcpy(bad, good, sizeof good);
    bad[0] = 0x50; /* foreign magic */
    write_file(path, bad, sizeof bad);
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_FORMAT);
    memcpy(bad, good, sizeof good);
    bad[2] = 0x0d; /* float elements */
    write_file(path, bad, sizeof bad);
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_UNSUPPORTED);
    /* a header claiming 2^31 x 2^31 elements: refused without allocating */
    const uint8_t huge[] = {0, 0, 8, 2, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 1};
    write_file(path, huge, sizeof huge);
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_LIMIT);
    const uint8_t zero_dim[] = {0, 0, 8, 1, 0, 0, 0, 0};
    write_file(path, zero_dim, sizeof zero_dim);
    CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_FORMAT);
    /* a truncated copy of the real gzip labels */
    const char *fd = sgt_fashion_dir();
    if (fd) {
        char src[512];
        snprintf(src, sizeof src, "%s/t10k-labels-idx1-ubyte.gz", fd);
        uint8_t *raw;
        size_t rn;
        CHECK_OK(sg_file_read(src, 1 << 20, 0, &raw, &rn));
        snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", sgt_tmpdir());
        write_file(path, raw, rn - 100);
        free(raw);
        CHECK_ERR(sg_idx_read(path, &nd, dims, &data, &len), SG_ERR_FORMAT);
    }
    struct sg_dataset *d;
    CHECK_ERR(sg_dataset_load("mnist", sgt_tmpdir(), 1, &d), SG_ERR_IO);
    CHECK(strstr(sg_last_error(), "train-images-idx3-ubyte"));
    CHECK_ERR(sg_dataset_load("cifar", NULL, 1, &d), SG_ERR_ARG);
}

SG_TEST(validation_split_is_seeded_and_disjoint) {
    const char *dir = sgt_mnist_dir();
    CHECK_MSG(dir, "MNIST is not installed");
    struct sg_dataset *d, *tr, *va, *tr2, *va2;
    CHECK_OK(sg_dataset_load("mnist", dir, 0, &d)); /* the 10k test file is enough here */
    CHECK_OK(sg_dataset_split(d, 1000, 7, &tr, &va));
    CHECK(tr->n == 9000 && va->n == 1000);
    CHECK_OK(sg_dataset_split(d, 1000, 7, &tr2, &va2));
    CHECK(memcmp(va->pixels, va2->pixels, 1000 * 784) == 0);
    /* every image is in exactly one part: label histograms add up */
    int h[10] = {0};
    for (int64_t i = 0; i < d->n; i++) h[d->labels[i]]++;
    for (int64_t i = 0; i < tr->n; i++) h[tr->labels[i]]--;
    for (int64_t i = 0; i < va->n; i++) h[va->labels[i]]--;
    for (int k = 0; k < 10; k++) CHECK(h[k] == 0);
    CHECK_ERR(sg_dataset_split(d, 10000, 7, &tr2, &va2), SG_ERR_ARG);
    sg_dataset_free(tr), sg_dataset_free(va), sg_dataset_free(tr2), sg_dataset_free(va2);
    sg_dataset_free(d);
}
