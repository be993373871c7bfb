/* storage: every format x tile x value coding round-trips bit for bit, sizes are
 * the encoded lengths, damaged streams are refused, hand-computed cases. */
#include "core/sgi.h"
#include "harness.h"
#include "sparsegrain/io.h"
#include "sparsegrain/storage.h"
#include "storage/storage_int.h" /* sgi_storage_generic */

/* ---- helpers ---- */
struct tl {
    struct sg_wview v;
    float *w;
    uint8_t *m;
};

static struct tl tl_new(int64_t k, int64_t c, int64_t r, int64_t s) {
    struct tl t;
    const size_t n = (size_t)(k * c * r * s);
    t.w = calloc(n, sizeof *t.w);
    t.m = calloc(n, 1);
    CHECK(t.w && t.m);
    t.v = (struct sg_wview){"test", k, c, r, s, t.w, t.m, 0};
    return t;
}

static void tl_free(struct tl *t) {
    free(t->w);
    free(t->m);
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Random weights; mask kept with probability density per weight (tile NULL)
 * or per tile of the given extents (0 = whole dim). Pruned weights are 0. */
static void tl_fill(struct tl *t, uint64_t seed, double density, const struct sg_tile *tile) {
    sg_rng r;
    sg_rng_seed(&r, seed);
    const struct sg_wview *v = &t->v;
    int64_t tk = 1, tc = 1, tr = 1, ts = 1;
    if (tile) {
        tk = tile->k ? tile->k : v->k, tc = tile->c ? tile->c : v->c;
        tr = tile->r ? tile->r : v->r, ts = tile->s ? tile->s : v->s;
    }
    int64_t i = 0;
    for (int64_t k = 0; k < v->k; k++)
        for (int64_t c = 0; c < v->c; c++)
            for (int64_t rr = 0; rr < v->r; rr++)
                for (int64_t s = 0; s < v->s; s++, i++) {
                    const uint64_t id = (((uint64_t)(k / tk) * 1000003 + (uint64_t)(c / tc)) * 1009 +
                                         (uint64_t)(rr / tr)) * 1013 + (uint64_t)(s / ts);
                    const double u = (double)(mix(seed * 7919 + id) >> 11) / 9007199254740992.0;
                    t->m[i] = u < density;
                    const float x = sg_rng_normal(&r) * 0.1f;
                    t->w[i] = t->m[i] ? x : 0.0f;
                }
}

/* Drops kept weights until every group of M along C keeps at most N. */
static void tl_make_nm(struct tl *t, int n, int m) {
    const struct sg_wview *v = &t->v;
    const int64_t RS = v->r * v->s;
    for (int64_t k = 0; k < v->k; k++)
        for (int64_t c0 = 0; c0 < v->c; c0 += m)
            for (int64_t rs = 0; rs < RS; rs++) {
                int kept = 0;
                for (int64_t c = c0; c < c0 + m && c < v->c; c++) {
                    const int64_t at = (k * v->c + c) * RS + rs;
                    if (t->m[at] && ++kept > n) t->m[at] = 0, t->w[at] = 0;
                }
            }
}

static int uses_index(enum sg_format f) {
    return f == SG_FORMAT_RELIDX || f == SG_FORMAT_GROUP || f == SG_FORMAT_RLE4;
}

static struct sg_storage_cfg decode_cfg(enum sg_format f, const struct sg_storage_cfg *cfg,
                                        const struct sg_size *sz) {
    struct sg_storage_cfg d = *cfg;
    if (uses_index(f)) d.index_bits = sz->index_width;
    return d;
}

/* Encode, check the size against sg_storage_size and the stream, validate,
 * decode, compare with sg_quantize_layer bit for bit. Returns the size. */
static struct sg_size round_trip(enum sg_format f, const struct tl *t,
                                 const struct sg_storage_cfg *cfg, const char *ctx) {
    uint8_t *blob;
    size_t len;
    struct sg_size sz, sz2;
    enum sg_status st = sg_encode(f, &t->v, cfg, &blob, &len, &sz);
    CHECK_MSG(st == SG_OK, "%s: encode %s: %s", ctx, sg_format_name(f), sg_last_error());
    CHECK_OK(sg_storage_size(f, &t->v, cfg, &sz2));
    CHECK_MSG(memcmp(&sz, &sz2, sizeof sz) == 0, "%s: %s: size differs from encode", ctx,
              sg_format_name(f));
    CHECK_MSG((int64_t)len == sz.bytes, "%s: %s: %zu bytes written, %lld reported", ctx,
              sg_format_name(f), len, (long long)sz.bytes);
    CHECK(sz.value_bits + sz.index_bits + sz.filler_bits + sz.meta_bits + sz.pad_bits ==
          8 * sz.bytes);
    CHECK(sz.pad_bits >= 0 && sz.pad_bits < 8);
    const struct sg_storage_cfg dc = decode_cfg(f, cfg, &sz);
    st = sg_validate(f, blob, len, &dc, &t->v);
    CHECK_MSG(st == SG_OK, "%s: validate %s: %s", ctx, sg_format_name(f), sg_last_error());
    struct tl out = tl_new(t->v.k, t->v.c, t->v.r, t->v.s), ref = tl_new(t->v.k, t->v.c, t->v.r, t->v.s);
    const size_t n = (size_t)sg_wview_count(&t->v);
    memset(out.w, 0x5a, n * 4); /* garbage: the decoder must overwrite everything */
    memset(out.m, 0x5a, n);
    st = sg_decode(f, blob, len, &dc, &out.v);
    CHECK_MSG(st == SG_OK, "%s: decode %s: %s", ctx, sg_format_name(f), sg_last_error());
    memcpy(ref.w, t->w, n * 4);
    memcpy(ref.m, t->m, n);
    CHECK_OK(sg_quantize_layer(&ref.v, cfg));
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(out.m[i] == (t->m[i] != 0), "%s: %s: mask differs at %zu", ctx,
                  sg_format_name(f), i);
        CHECK_MSG(memcmp(&out.w[i], &ref.w[i], 4) == 0, "%s: %s: value differs at %zu: %g vs %g",
                  ctx, sg_format_name(f), i, (double)out.w[i], (double)ref.w[i]);
    }
    tl_free(&out);
    tl_free(&ref);
    sg_blob_free(blob);
    return sz;
}

/* ---- value codings ---- */
SG_TEST(storage_half_conversion_exact) {
    static const struct {
        float x;
        uint16_t h;
    } T[] = {
        {0.0f, 0x0000},          {-0.0f, 0x8000},           {1.0f, 0x3c00},
        {-2.0f, 0xc000},         {0.1f, 0x2e66},            {65504.0f, 0x7bff},
        {65519.0f, 0x7bff},      {65520.0f, 0x7c00},        {1e6f, 0x7c00},
        {-1e30f, 0xfc00},        {0x1p-14f, 0x0400},        {0x1p-24f, 0x0001},
        {0x1p-25f, 0x0000},      {0x1.8p-25f, 0x0001},      {0x3p-25f, 0x0002},
        {0x1p-26f, 0x0000},      {0x3ffp-24f, 0x03ff},      {0x7ffp-25f, 0x0400},
        {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x3p-11f, 0x3c02}, {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
        {-0x1p-15f, 0x8200},     {3.140625f, 0x4248},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        CHECK_MSG(sg_f32_to_f16(T[i].x) == T[i].h, "f32_to_f16(%a) = 0x%04x, wanted 0x%04x",
                  (double)T[i].x, sg_f32_to_f16(T[i].x), T[i].h);
    CHECK(sg_f32_to_f16(INFINITY) == 0x7c00 && sg_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((sg_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (sg_f32_to_f16(NAN) & 0x3ff) != 0);
    /* every half survives half -> float -> half */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads are not kept */
        CHECK_MSG(sg_f32_to_f16(sg_f16_to_f32((uint16_t)h)) == h, "half 0x%04x", h);
    }
    CHECK(sg_f16_to_f32(0x0001) == 0x1p-24f && sg_f16_to_f32(0x7bff) == 65504.0f);
#if defined(__FLT16_MAX__)
    /* against the compiler's conversion (round to nearest even) on random bit patterns */
    sg_rng r;
    sg_rng_seed(&r, 5);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)sg_rng_next(&r);
        if (i & 1) u = (u & 0x8fffffffu) | 0x30000000u; /* many near the half range */
        float x;
        memcpy(&x, &u, 4);
        if (isnan(x)) continue;
        _Float16 y = (_Float16)x;
        uint16_t want;
        memcpy(&want, &y, 2);
        CHECK_MSG(sg_f32_to_f16(x) == want, "%a: 0x%04x, compiler 0x%04x", (double)x,
                  sg_f32_to_f16(x), want);
    }
#endif
}

SG_TEST(storage_kmeans_hand_computed) {
    /* init 0, 10, 20; midpoints 5, 15: {0,1,5} {6,7} {20} (5 is a tie: lower) -> 2, 6.5, 20;
     * midpoints 4.25, 13.25: {0,1} {5,6,7} {20} -> 0.5, 6, 20; then nothing moves. */
    const float x[] = {20, 6, 0, 7, 1, 5};
    float c[3];
    int it;
    CHECK_OK(sg_kmeans_1d(x, 6, 3, 100, c, &it));
    CHECK(c[0] == 0.5f && c[1] == 6.0f && c[2] == 20.0f);
    CHECK_EQ_INT(it, 3);
    CHECK_OK(sg_kmeans_1d(x, 6, 3, 1, c, &it)); /* one step only */
    CHECK(c[0] == 2.0f && c[1] == 6.5f && c[2] == 20.0f);
    CHECK_OK(sg_kmeans_1d(x, 6, 3, 0, c, &it)); /* linear codebook */
    CHECK(c[0] == 0.0f && c[1] == 10.0f && c[2] == 20.0f && it == 0);
    /* through the layer: 2-bit codebook = 3 shared values + the pruned code */
    struct tl t = tl_new(1, 7, 1, 1);
    for (int i = 0; i < 6; i++) t.w[i] = x[i], t.m[i] = 1;
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.values = SG_VALUES_CODEBOOK;
    cfg.codebook_bits = 2;
    CHECK_OK(sg_quantize_layer(&t.v, &cfg));
    const float want[7] = {20, 6, 0.5f, 6, 0.5f, 6, 0};
    for (int i = 0; i < 7; i++) CHECK(t.w[i] == want[i]);
    round_trip(SG_FORMAT_RELIDX, &t, &cfg, "kmeans");
    tl_free(&t);
}

SG_TEST(storage_q8_hand_computed) {
    struct tl t = tl_new(1, 1, 1, 5);
    const float x[5] = {-1.0f, 0.5f, 0.25f, 1.0f, 0.001f};
    for (int i = 0; i < 5; i++) t.w[i] = x[i], t.m[i] = 1;
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.values = SG_VALUES_Q8;
    CHECK_OK(sg_quantize_layer(&t.v, &cfg));
    const float scale = 1.0f / 127.0f;
    /* 63.5 rounds to even (64); 31.75 -> 32; 0.127 -> 0 but the weight stays kept */
    CHECK(t.w[0] == -127 * scale && t.w[1] == 64 * scale && t.w[2] == 32 * scale &&
          t.w[3] == 127 * scale && t.w[4] == 0.0f);
    for (int i = 0; i < 5; i++) t.w[i] = x[i];
    for (int f = 0; f < SG_FORMAT_COUNT; f++) round_trip((enum sg_format)f, &t, &cfg, "q8");
    t.w[2] = NAN;
    uint8_t *blob;
    size_t len;
    CHECK_ERR(sg_encode(SG_FORMAT_CSR, &t.v, &cfg, &blob, &len, NULL), SG_ERR_ARG);
    cfg.values = SG_VALUES_F32; /* f32 keeps NaN (canonical) */
    round_trip(SG_FORMAT_CSR, &t, &cfg, "nan");
    tl_free(&t);
}

/* ---- round trips ---- */
SG_TEST(storage_round_trip_every_format_tile_and_value_coding) {
    static const int64_t shapes[][4] = {{6, 5, 3, 3}, {7, 1, 5, 5}, {10, 12, 1, 1}, {5, 9, 2, 3},
                                        {1, 1, 1, 1}, {13, 4, 3, 1}};
    static const struct sg_tile tiles[] = {{1, 1, 1, 1}, {1, 1, 1, 0}, {1, 1, 0, 0}, {1, 0, 0, 0},
                                           {0, 1, 0, 0}, {2, 3, 2, 2}, {3, 2, 1, 1}};
    static const double dens[] = {0.0, 0.04, 0.3, 0.75, 1.0};
    struct sg_storage_cfg cfg;
    int64_t cases = 0;
    for (sgi_storage_generic = 0; sgi_storage_generic < 2; sgi_storage_generic++)
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++)
            for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++)
                for (int structured = 0; structured < 2; structured++) {
                    struct tl t = tl_new(shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3]);
                    tl_fill(&t, 100 * si + 10 * ti + di, dens[di], structured ? &tiles[ti] : NULL);
                    for (int vc = 0; vc < SG_VALUES_COUNT; vc++)
                        for (int f = 0; f < SG_FORMAT_COUNT; f++) {
                            sg_storage_cfg_default(&cfg);
                            cfg.values = (enum sg_values)vc;
                            cfg.codebook_bits = 3 + (int)ti % 3;
                            cfg.tile = tiles[ti];
                            cfg.kc = 1 + (int)(si + ti) % 4;
                            cfg.index_bits = uses_index((enum sg_format)f)
                                                 ? (int)((di + ti + vc) % 5) - 1 /* paper, auto, 1..3 */
                                                 : SG_INDEX_BITS_PAPER;
                            char ctx[160];
                            snprintf(ctx, sizeof ctx, "shape %zu tile %zu density %.2f %s %s b=%d",
                                     si, ti, dens[di], structured ? "tiled" : "fine",
                                     sg_values_name(cfg.values), cfg.index_bits);
                            struct tl u = t;
                            struct tl nm = {0};
                            if (f == SG_FORMAT_NM) { /* the mask must be N:M: use a compliant copy */
                                nm = tl_new(t.v.k, t.v.c, t.v.r, t.v.s);
                                memcpy(nm.w, t.w, (size_t)sg_wview_count(&t.v) * 4);
                                memcpy(nm.m, t.m, (size_t)sg_wview_count(&t.v));
                                cfg.nm_n = 1 + (int)ti % 3, cfg.nm_m = cfg.nm_n + 1 + (int)si % 3;
                                tl_make_nm(&nm, cfg.nm_n, cfg.nm_m);
                                u = nm;
                            }
                            round_trip((enum sg_format)f, &u, &cfg, ctx);
                            if (f == SG_FORMAT_NM) tl_free(&nm);
                            cases++;
                        }
                    tl_free(&t);
                }
    CHECK(cases > 16000);
}

SG_TEST(storage_extremes_and_exact_run_lengths) {
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    for (int b = 1; b <= 6; b++) {
        const int64_t L = ((int64_t)1 << b) - 1;
        for (int64_t run = L - 1; run <= L + 2; run++) {
            if (run < 0) continue;
            /* kept at 0, then at 1 + run (a run of exactly `run` zeros), and last */
            struct tl t = tl_new(1, 1, 1, 2 * run + 4);
            const int64_t n = 2 * run + 4;
            t.m[0] = 1, t.w[0] = 0.5f;
            t.m[1 + run] = 1, t.w[1 + run] = -0.25f;
            t.m[n - 1] = 1, t.w[n - 1] = 2.0f;
            cfg.index_bits = b;
            for (int f = 0; f < SG_FORMAT_COUNT; f++) {
                if (f == SG_FORMAT_NM) continue; /* C = 1: covered below */
                struct sg_size sz = round_trip((enum sg_format)f, &t, &cfg, "runs");
                if (f == SG_FORMAT_RELIDX) {
                    /* fillers: floor(run / 2^b) for the middle run, likewise for the last */
                    const int64_t last_run = n - 1 - (2 + run);
                    CHECK_EQ_INT(sz.fillers, (run >> b) + (last_run >> b));
                    CHECK_EQ_INT(sz.entries, 3 + sz.fillers);
                }
            }
            tl_free(&t);
        }
    }
    /* all pruned, none pruned, one kept weight at the very end; 1x1 and C = 1 */
    const int64_t shapes[][4] = {{4, 3, 3, 3}, {8, 16, 1, 1}, {3, 1, 5, 5}, {1, 1, 1, 17}};
    for (int si = 0; si < 4; si++)
        for (int kind = 0; kind < 3; kind++) {
            struct tl t = tl_new(shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3]);
            const int64_t n = sg_wview_count(&t.v);
            for (int64_t i = 0; i < n; i++) {
                t.m[i] = kind == 1 || (kind == 2 && i == n - 1);
                t.w[i] = t.m[i] ? (float)(i % 7) - 3.0f : 0.0f; /* includes kept zeros */
            }
            for (int b = 1; b <= 16; b += 5)
                for (int vc = 0; vc < SG_VALUES_COUNT; vc++)
                    for (int f = 0; f < SG_FORMAT_COUNT; f++) {
                        sg_storage_cfg_default(&cfg);
                        cfg.index_bits = b;
                        cfg.values = (enum sg_values)vc;
                        cfg.codebook_bits = 1 + b % 4;
                        cfg.tile = (struct sg_tile){2, 0, 2, 3};
                        cfg.nm_n = cfg.nm_m = 4; /* 4:4 accepts any mask */
                        struct sg_size sz = round_trip((enum sg_format)f, &t, &cfg, "extreme");
                        if (kind == 0 && f != SG_FORMAT_DENSE && f != SG_FORMAT_NM)
                            CHECK(sz.value_bits == 0);
                    }
            tl_free(&t);
        }
}

SG_TEST(storage_relidx_filler_count_hand_computed) {
    /* 40 weights kept at 3, 20, 39; b = 3 (runs up to 7): runs 3, 16, 18 need
     * 0, 2, 2 fillers. Bits: index 3*3, values 3*32, fillers 4*(3+32), meta
     * 32 (CRC) + 64 (count) = 341, padded to 43 bytes. */
    struct tl t = tl_new(1, 1, 1, 40);
    const int at[3] = {3, 20, 39};
    for (int i = 0; i < 3; i++) t.m[at[i]] = 1, t.w[at[i]] = 1.0f + i;
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.index_bits = 3;
    struct sg_size sz = round_trip(SG_FORMAT_RELIDX, &t, &cfg, "hand");
    CHECK_EQ_INT(sz.fillers, 4);
    CHECK_EQ_INT(sz.entries, 7);
    CHECK_EQ_INT(sz.index_bits, 9);
    CHECK_EQ_INT(sz.value_bits, 96);
    CHECK_EQ_INT(sz.filler_bits, 140);
    CHECK_EQ_INT(sz.meta_bits, 96);
    CHECK_EQ_INT(sz.pad_bits, 3);
    CHECK_EQ_INT(sz.bytes, 43);
    /* the first entries in the stream: count 7, then (run 3, 1.0f), (7, pruned), (7, pruned) */
    uint8_t *blob;
    size_t len;
    CHECK_OK(sg_encode(SG_FORMAT_RELIDX, &t.v, &cfg, &blob, &len, NULL));
    CHECK(blob[4] == 7 && blob[5] == 0 && blob[11] == 0);
    uint64_t bits = 0; /* bits 0..63 after the count: 3 | f32(1.0) << 3 | ... */
    for (int i = 0; i < 8; i++) bits |= (uint64_t)blob[12 + i] << (8 * i);
    CHECK((bits & 7) == 3);
    CHECK(((bits >> 3) & 0xffffffffu) == 0x3f800000u);
    CHECK(((bits >> 35) & 7) == 7 && ((bits >> 38) & 0x3ffffff) == 0x3ffffff);
    sg_blob_free(blob);
    /* rle4 visits W[K][C][1][1] in SCNN order: K=3, C=2, Kc=2 gives flat 0,2,1,3,4,5 */
    struct tl s = tl_new(3, 2, 1, 1);
    s.m[1] = 1, s.w[1] = 4.0f; /* filter 0, channel 1: third in SCNN order */
    cfg.kc = 2;
    cfg.index_bits = 1; /* run 2 at b = 1: one filler */
    sz = round_trip(SG_FORMAT_RLE4, &s, &cfg, "scnn");
    CHECK_EQ_INT(sz.fillers, 1);
    sz = round_trip(SG_FORMAT_RELIDX, &s, &cfg, "flat"); /* run 1 in flat order: no filler */
    CHECK_EQ_INT(sz.fillers, 0);
    s.m[1] = 0, s.m[2] = 1, s.w[1] = 0, s.w[2] = 1.0f; /* filter 1, channel 0: second in SCNN order */
    sz = round_trip(SG_FORMAT_RLE4, &s, &cfg, "scnn"); /* run 1: no filler */
    CHECK_EQ_INT(sz.fillers, 0);
    sz = round_trip(SG_FORMAT_RELIDX, &s, &cfg, "flat"); /* run 2: one filler */
    CHECK_EQ_INT(sz.fillers, 1);
    tl_free(&s);
    tl_free(&t);
}

SG_TEST(storage_group_equals_relidx_on_fine_tiles) {
    struct sg_storage_cfg cfg;
    sgi_storage_generic = 1; /* group and bcsr through their tile code, not the fast paths */
    for (int seed = 0; seed < 40; seed++) {
        struct tl t = tl_new(3 + seed % 5, 1 + seed % 7, 1 + seed % 3, 1 + seed % 4);
        tl_fill(&t, (uint64_t)seed, 0.02 + 0.05 * (seed % 10), NULL);
        for (int b = 0; b <= 16; b += 1 + seed % 3) {
            sg_storage_cfg_default(&cfg);
            cfg.index_bits = b; /* 0 = auto: must choose the same width */
            cfg.values = (enum sg_values)(seed % SG_VALUES_COUNT);
            uint8_t *a, *g, *c, *bc;
            size_t na, ng, nc, nbc;
            struct sg_size sa, sg;
            CHECK_OK(sg_encode(SG_FORMAT_RELIDX, &t.v, &cfg, &a, &na, &sa));
            CHECK_OK(sg_encode(SG_FORMAT_GROUP, &t.v, &cfg, &g, &ng, &sg));
            CHECK(memcmp(&sa, &sg, sizeof sa) == 0);
            CHECK(na == ng && memcmp(a, g, na) == 0);
            /* block CSR with 1x1x1x1 blocks is CSR */
            CHECK_OK(sg_encode(SG_FORMAT_CSR, &t.v, &cfg, &c, &nc, NULL));
            CHECK_OK(sg_encode(SG_FORMAT_BCSR, &t.v, &cfg, &bc, &nbc, NULL));
            CHECK(nc == nbc && memcmp(c, bc, nc) == 0);
            sg_blob_free(a), sg_blob_free(g), sg_blob_free(c), sg_blob_free(bc);
        }
        tl_free(&t);
    }
}

SG_TEST(storage_auto_index_width_is_the_minimum) {
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    const struct sg_tile tiles[] = {{1, 1, 1, 1}, {1, 1, 0, 0}, {2, 3, 2, 2}};
    for (int seed = 0; seed < 12; seed++) {
        struct tl t = tl_new(9, 7, 3, 3);
        tl_fill(&t, (uint64_t)seed + 50, 0.01 + 0.08 * seed, seed % 2 ? &tiles[1] : NULL);
        for (int f = SG_FORMAT_RELIDX; f <= SG_FORMAT_RLE4; f++) {
            if (!uses_index((enum sg_format)f)) continue;
            for (int ti = 0; ti < 3; ti++) {
                cfg.tile = tiles[ti];
                cfg.index_bits = SG_INDEX_BITS_AUTO;
                struct sg_size best, s;
                CHECK_OK(sg_storage_size((enum sg_format)f, &t.v, &cfg, &best));
                int64_t min_bits = INT64_MAX;
                for (int b = 1; b <= 16; b++) {
                    cfg.index_bits = b;
                    CHECK_OK(sg_storage_size((enum sg_format)f, &t.v, &cfg, &s));
                    const int64_t bits = 8 * s.bytes - s.pad_bits;
                    if (bits < min_bits) min_bits = bits;
                }
                CHECK_EQ_INT(8 * best.bytes - best.pad_bits, min_bits);
                cfg.index_bits = SG_INDEX_BITS_AUTO;
                round_trip((enum sg_format)f, &t, &cfg, "auto");
            }
        }
        tl_free(&t);
    }
}

SG_TEST(storage_nm_metadata_and_compliance) {
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg); /* 2:4 */
    struct tl t = tl_new(4, 10, 3, 3); /* C = 10: two full groups of 4 and one of 2 */
    tl_fill(&t, 3, 0.5, NULL);
    tl_make_nm(&t, 2, 4);
    struct sg_size sz = round_trip(SG_FORMAT_NM, &t, &cfg, "nm");
    /* per (k, r, s): 2 groups x (3 bits: C(4,2) = 6) + one group of 2 keeping 2 (C(2,2) = 1: 0 bits) */
    CHECK_EQ_INT(sz.index_bits, 4 * 9 * (2 * 3 + 0));
    CHECK_EQ_INT(sz.values, 4 * 9 * (2 * 2 + 2));
    /* three kept in one group of four: not 2:4 */
    t.m[0] = t.m[9] = t.m[18] = 1; /* channels 0, 1, 2 of filter 0 at (0, 0) */
    t.w[0] = t.w[9] = t.w[18] = 1.0f;
    uint8_t *blob;
    size_t len;
    CHECK_ERR(sg_encode(SG_FORMAT_NM, &t.v, &cfg, &blob, &len, NULL), SG_ERR_ARG);
    CHECK(strstr(sg_last_error(), "not 2:4") != NULL);
    CHECK_ERR(sg_storage_size(SG_FORMAT_NM, &t.v, &cfg, &sz), SG_ERR_ARG);
    tl_free(&t);
}

/* ---- damaged streams ---- */
static void fix_crc(uint8_t *b, size_t len) {
    const uint32_t c = sgi_crc32(0, b + 4, len - 4);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(c >> (8 * i));
}

SG_TEST(storage_validate_rejects_damaged_streams) {
    struct sg_storage_cfg cfg;
    sg_rng r;
    sg_rng_seed(&r, 77);
    const struct sg_tile tiles[] = {{1, 1, 1, 1}, {1, 1, 0, 0}, {2, 2, 2, 1}};
    for (int f = 0; f < SG_FORMAT_COUNT; f++)
        for (int vc = 0; vc < SG_VALUES_COUNT; vc++)
            for (int ti = 0; ti < 3; ti++) {
                sg_storage_cfg_default(&cfg);
                cfg.values = (enum sg_values)vc;
                cfg.codebook_bits = 3;
                cfg.tile = tiles[ti];
                cfg.index_bits = 2 + ti;
                cfg.nm_n = 2, cfg.nm_m = 3;
                struct tl t = tl_new(5, 7, 3, 2);
                tl_fill(&t, (uint64_t)(f * 100 + vc * 10 + ti), 0.35, ti ? &tiles[ti] : NULL);
                tl_make_nm(&t, 2, 3);
                uint8_t *blob;
                size_t len;
                struct sg_size sz;
                CHECK_OK(sg_encode((enum sg_format)f, &t.v, &cfg, &blob, &len, &sz));
                const struct sg_storage_cfg dc = decode_cfg((enum sg_format)f, &cfg, &sz);
                uint8_t *b = malloc(len + 16);
                struct tl out = tl_new(5, 7, 3, 2);
                /* every truncation */
                for (size_t l = 0; l < len; l++) {
                    memcpy(b, blob, l);
                    CHECK_MSG(sg_validate((enum sg_format)f, b, l, &dc, &t.v) == SG_ERR_FORMAT,
                              "%s: truncated to %zu of %zu accepted", sg_format_name(f), l, len);
                    CHECK(sg_decode((enum sg_format)f, b, l, &dc, &out.v) == SG_ERR_FORMAT);
                }
                /* oversized: extra bytes, with and without a matching checksum */
                for (size_t extra = 1; extra <= 9; extra += 8) {
                    memcpy(b, blob, len);
                    memset(b + len, 0, extra);
                    CHECK(sg_validate((enum sg_format)f, b, len + extra, &dc, &t.v) == SG_ERR_FORMAT);
                    fix_crc(b, len + extra);
                    CHECK_MSG(sg_validate((enum sg_format)f, b, len + extra, &dc, &t.v) ==
                                  SG_ERR_FORMAT, "%s: %zu extra bytes accepted", sg_format_name(f),
                              extra);
                }
                /* every single bit flip: the checksum catches it */
                for (size_t bit = 0; bit < 8 * len; bit++) {
                    memcpy(b, blob, len);
                    b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    CHECK_MSG(sg_validate((enum sg_format)f, b, len, &dc, &t.v) == SG_ERR_FORMAT,
                              "%s: flip of bit %zu accepted", sg_format_name(f), bit);
                }
                /* structural damage behind a valid checksum: never a crash, and
                 * validate agrees with decode */
                for (int trial = 0; trial < 300; trial++) {
                    memcpy(b, blob, len);
                    const int flips = 1 + (int)sg_rng_below(&r, 3);
                    for (int k = 0; k < flips && len > 4; k++) {
                        const size_t bit = 32 + sg_rng_below(&r, 8 * (len - 4));
                        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    }
                    fix_crc(b, len);
                    const enum sg_status sv = sg_validate((enum sg_format)f, b, len, &dc, &t.v);
                    const enum sg_status sd = sg_decode((enum sg_format)f, b, len, &dc, &out.v);
                    CHECK(sv == sd && (sv == SG_OK || sv == SG_ERR_FORMAT));
                }
                free(b);
                tl_free(&out);
                sg_blob_free(blob);
                tl_free(&t);
            }
}

/* ---- .sgz ---- */
static struct sg_model *pruned_lenet(uint64_t seed, int nm) {
    struct sg_model *m;
    CHECK_OK(sg_model_build("lenet5", 1, 28, 28, 10, seed, &m));
    sg_rng r;
    sg_rng_seed(&r, seed);
    int32_t idx[16];
    const int32_t n = sg_model_weight_params(m, idx);
    for (int32_t i = 0; i < n; i++) {
        struct sg_wview v = sg_model_wview(m, idx[i]);
        for (int64_t j = 0; j < sg_wview_count(&v); j++) v.mask[j] = sg_rng_uniform(&r) < 0.3;
        if (nm) { /* 2:4 along C */
            struct tl t = {v, v.w, v.mask};
            tl_make_nm(&t, 2, 4);
        }
    }
    m->mask[m->params[1].offset] = 0; /* a pruned bias must survive too */
    sg_model_apply_masks(m);
    CHECK_OK(sg_meta_set(m, "data", "mnist"));
    return m;
}

SG_TEST(storage_sgz_round_trip_and_size) {
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    for (int f = 0; f < SG_FORMAT_COUNT; f++)
        for (int vc = 0; vc < 2; vc++) {
            struct sg_model *m = pruned_lenet(11 + (uint64_t)f, f == SG_FORMAT_NM), *m2;
            cfg.values = vc ? SG_VALUES_Q8 : SG_VALUES_F32;
            cfg.index_bits = f == SG_FORMAT_GROUP ? SG_INDEX_BITS_AUTO : SG_INDEX_BITS_PAPER;
            cfg.tile = (struct sg_tile){1, 1, 0, 0};
            uint8_t *buf, *a, *b;
            size_t len, na, nb;
            struct sg_sgz_info info, info2;
            CHECK_OK(sg_sgz_serialize(m, (enum sg_format)f, &cfg, &buf, &len, &info));
            /* file = the per-layer sizes sg_storage_size reports + the documented overhead */
            int32_t idx[16];
            const int32_t n = sg_model_weight_params(m, idx);
            uint64_t layers = 0, other = 0;
            for (int32_t i = 0; i < n; i++) {
                struct sg_wview v = sg_model_wview(m, idx[i]);
                struct sg_size sz;
                CHECK_OK(sg_storage_size((enum sg_format)f, &v, &cfg, &sz));
                layers += (uint64_t)sz.bytes;
            }
            for (int32_t p = 0; p < m->n_params; p++)
                if (m->params[p].kind != SG_PARAM_WEIGHT)
                    other += m->params[p].count * 4 + (m->params[p].count + 7) / 8;
            CHECK_EQ_INT(info.layer_bytes, layers);
            CHECK_EQ_INT(info.other_bytes, other);
            CHECK_EQ_INT(len, info.file_bytes);
            CHECK_EQ_INT(len, layers + 128 + 16 * (uint64_t)n + info.arch_bytes + other + 4);
            CHECK_OK(sg_sgz_deserialize(buf, len, "mem.sgz", &m2, &info2));
            CHECK(memcmp(&info, &info2, sizeof info) == 0);
            if (!vc) { /* f32: the .sgm images are identical */
                CHECK_OK(sg_model_serialize(m, NULL, &a, &na));
                CHECK_OK(sg_model_serialize(m2, NULL, &b, &nb));
                CHECK_MSG(na == nb && memcmp(a, b, na) == 0, "%s: models differ", sg_format_name(f));
                free(a), free(b);
            } else { /* 8-bit: exactly the quantised weights, same masks */
                for (int32_t i = 0; i < n; i++) {
                    struct sg_wview v = sg_model_wview(m, idx[i]), v2 = sg_model_wview(m2, idx[i]);
                    CHECK_OK(sg_quantize_layer(&v, &cfg));
                    CHECK(memcmp(v.w, v2.w, (size_t)sg_wview_count(&v) * 4) == 0);
                    CHECK(memcmp(v.mask, v2.mask, (size_t)sg_wview_count(&v)) == 0);
                }
            }
            char path[512];
            snprintf(path, sizeof path, "%s/m.sgz", sgt_tmpdir());
            CHECK_OK(sg_sgz_write(m2, (enum sg_format)f, &cfg, path, NULL));
            sg_model_free(m2);
            CHECK_OK(sg_sgz_read(path, &m2, NULL));
            sg_model_free(m2);
            free(buf);
            sg_model_free(m);
        }
}

SG_TEST(storage_sgz_rejects_damaged_files) {
    struct sg_model *m = pruned_lenet(5, 0), *m2 = NULL;
    struct sg_storage_cfg cfg;
    sg_storage_cfg_default(&cfg);
    cfg.values = SG_VALUES_CODEBOOK;
    cfg.codebook_bits = 5;
    uint8_t *buf;
    size_t len;
    CHECK_OK(sg_sgz_serialize(m, SG_FORMAT_GROUP, &cfg, &buf, &len, NULL));
    uint8_t *b = malloc(len + 64);
    sg_rng r;
    sg_rng_seed(&r, 9);
    for (int i = 0; i < 300; i++) { /* truncations, the first 300 bytes and random ones */
        const size_t l = i < 150 ? (size_t)i : (size_t)sg_rng_below(&r, len);
        memcpy(b, buf, l);
        CHECK(sg_sgz_deserialize(b, l, "cut.sgz", &m2, NULL) == SG_ERR_FORMAT && !m2);
    }
    memcpy(b, buf, len);
    memset(b + len, 0, 64);
    CHECK(sg_sgz_deserialize(b, len + 64, "big.sgz", &m2, NULL) == SG_ERR_FORMAT);
    CHECK(strstr(sg_last_error(), "big.sgz") != NULL);
    for (int i = 0; i < 300; i++) { /* flips: the file checksum */
        memcpy(b, buf, len);
        const size_t bit = sg_rng_below(&r, 8 * len);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(sg_sgz_deserialize(b, len, "flip.sgz", &m2, NULL) != SG_OK && !m2);
    }
    /* flips behind a valid checksum in the header, table and architecture: no crash */
    for (int i = 0; i < 400; i++) {
        memcpy(b, buf, len);
        const size_t bit = sg_rng_below(&r, 8 * (len < 1200 ? len - 4 : 1200));
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        const uint32_t c = sgi_crc32(0, b, len - 4);
        for (int k = 0; k < 4; k++) b[len - 4 + k] = (uint8_t)(c >> (8 * k));
        enum sg_status st = sg_sgz_deserialize(b, len, "fuzz.sgz", &m2, NULL);
        if (st == SG_OK) sg_model_free(m2);
        else CHECK(m2 == NULL);
        m2 = NULL;
    }
    free(b);
    free(buf);
    sg_model_free(m);
}
