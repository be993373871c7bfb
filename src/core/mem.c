/* Checked allocation, growable byte buffers, bounds-checked cursors, CRC-32. */
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "sgi.h"

#define HUGE_PAGE ((size_t)2 << 20)

static size_t g_alloc_limit; /* 0: not set yet (the default) */

static size_t default_limit(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)1 << 47;
    return (size_t)pages * (size_t)page;
}

void sg_set_alloc_limit(size_t bytes) { __atomic_store_n(&g_alloc_limit, bytes, __ATOMIC_RELAXED); }

size_t sg_alloc_limit(void) {
    static size_t deflt; /* computed once; every thread computes the same value */
    size_t l = __atomic_load_n(&g_alloc_limit, __ATOMIC_RELAXED);
    if (!l && !(l = __atomic_load_n(&deflt, __ATOMIC_RELAXED))) {
        l = default_limit();
        __atomic_store_n(&deflt, l, __ATOMIC_RELAXED);
    }
    return l;
}

int sgi_alloc_ok(size_t n, size_t size) {
    size_t bytes;
    if (!sgi_mul(n, size, &bytes) || bytes > SIZE_MAX - 64) {
        sgi_error(SG_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return 0;
    }
    if (bytes > sg_alloc_limit()) {
        sgi_error(SG_ERR_NOMEM,
                  "allocation of %zu bytes exceeds the memory limit of %zu bytes (the machine's "
                  "memory, or sg_set_alloc_limit)",
                  bytes, sg_alloc_limit());
        return 0;
    }
    return 1;
}

void *sgi_alloc(size_t n, size_t size) {
    if (!sgi_alloc_ok(n, size)) return NULL;
    size_t bytes = n * size;
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p;
    if (rounded >= HUGE_PAGE) {
        /* large blocks (weights, activations, gradients, file images) on 2 MB pages
         * where the kernel allows it, rounded up to whole pages (under 2 MB more,
         * at most the block again): first touch then costs one fault per 2 MB
         * instead of one per 4 KB, which dominated loading a 100 MB model and the
         * first training step (VGG-7's buffers are 1.6-6.4 MB at batch 64: the
         * first one-thread step at batch 32 took 121 ms with 4 KB pages below 8 MB,
         * 80-88 with only the whole 2 MB pages inside each block madvised, 65
         * rounded up; the later steps 17) */
        rounded = (rounded + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        p = aligned_alloc(HUGE_PAGE, rounded);
#ifdef MADV_HUGEPAGE
        if (p) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    } else {
        p = aligned_alloc(64, rounded);
    }
    if (!p) sgi_error(SG_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *sgi_zalloc(size_t n, size_t size) {
    void *p = sgi_alloc(n, size);
    if (p) memset(p, 0, n * size > 0 ? n * size : 1);
    return p;
}

/* ---- sgi_buf ---- */
void sgi_buf_reserve(struct sgi_buf *b, size_t extra) {
    if (b->failed) return;
    size_t need;
    if (!sgi_add(b->len, extra, &need)) {
        b->failed = 1;
        return;
    }
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        sgi_error(SG_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
        return;
    }
    b->data = d;
    b->cap = cap;
}

void sgi_buf_put(struct sgi_buf *b, const void *p, size_t n) {
    sgi_buf_reserve(b, n);
    if (b->failed) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

void sgi_buf_u8(struct sgi_buf *b, uint8_t v) { sgi_buf_put(b, &v, 1); }
void sgi_buf_u32(struct sgi_buf *b, uint32_t v) {
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sgi_buf_put(b, t, 4);
}
void sgi_buf_u64(struct sgi_buf *b, uint64_t v) {
    sgi_buf_u32(b, (uint32_t)v);
    sgi_buf_u32(b, (uint32_t)(v >> 32));
}
void sgi_buf_i32(struct sgi_buf *b, int32_t v) { sgi_buf_u32(b, (uint32_t)v); }
void sgi_buf_f32(struct sgi_buf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    sgi_buf_u32(b, u);
}
void sgi_buf_f64(struct sgi_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    sgi_buf_u64(b, u);
}
void sgi_buf_str(struct sgi_buf *b, const char *s) {
    size_t n = strlen(s);
    sgi_buf_u32(b, (uint32_t)n);
    sgi_buf_put(b, s, n);
}
void sgi_buf_pad(struct sgi_buf *b, size_t align) {
    static const uint8_t z[64];
    size_t r = b->len % align;
    if (r) sgi_buf_put(b, z, align - r);
}
void sgi_buf_printf(struct sgi_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sgi_buf_reserve(b, (size_t)n + 1);
    if (b->failed) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
void sgi_buf_free(struct sgi_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- sgi_cur ---- */
int sgi_cur_need(struct sgi_cur *c, size_t n) {
    if (c->bad || n > c->len - c->off) {
        c->bad = 1;
        return 0;
    }
    return 1;
}
uint8_t sgi_cur_u8(struct sgi_cur *c) {
    if (!sgi_cur_need(c, 1)) return 0;
    return c->p[c->off++];
}
uint32_t sgi_cur_u32(struct sgi_cur *c) {
    if (!sgi_cur_need(c, 4)) return 0;
    uint32_t v = sgi_ld32(c->p + c->off);
    c->off += 4;
    return v;
}
uint64_t sgi_cur_u64(struct sgi_cur *c) {
    if (!sgi_cur_need(c, 8)) return 0;
    uint64_t v = sgi_ld64(c->p + c->off);
    c->off += 8;
    return v;
}
int32_t sgi_cur_i32(struct sgi_cur *c) { return (int32_t)sgi_cur_u32(c); }
float sgi_cur_f32(struct sgi_cur *c) {
    uint32_t u = sgi_cur_u32(c);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
double sgi_cur_f64(struct sgi_cur *c) {
    uint64_t u = sgi_cur_u64(c);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
const uint8_t *sgi_cur_bytes(struct sgi_cur *c, size_t n) {
    if (!sgi_cur_need(c, n)) return NULL;
    const uint8_t *p = c->p + c->off;
    c->off += n;
    return p;
}
int sgi_cur_str(struct sgi_cur *c, char *dst, size_t cap) {
    uint32_t n = sgi_cur_u32(c);
    if (c->bad || (size_t)n >= cap) {
        c->bad = 1;
        return 0;
    }
    const uint8_t *p = sgi_cur_bytes(c, n);
    if (!p) return 0;
    memcpy(dst, p, n);
    dst[n] = 0;
    return 1;
}

uint32_t sgi_crc32(uint32_t crc, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) { /* zlib's length is a uInt */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

int sgi_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != tolower((unsigned char)suffix[i])) return 0;
    return 1;
}

const char *sgi_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Blocks of 1024 summed in 16 float lanes (sgi_vf: one or two vectors), blocks
 * added in double: error stays at float rounding of a 1024-term sum, not of n terms.
 * Lane k's sum, then the tail, then the lanes 0..15 added in order. (As a float
 * array GCC 12 unrolled the lanes into 16 scalar chains.) */
double sgi_sum(const float *x, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; i += 1024) {
        const size_t end = i + 1024 < n ? i + 1024 : n;
        sgi_vf acc[SGI_VH] = {{0}};
        size_t j = i;
        for (; j + 16 <= end; j += 16)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) acc[h] += *(const sgi_vf *)(x + j + h * SGI_VL);
        float part = 0;
        for (; j < end; j++) part += x[j];
        for (int h = 0; h < SGI_VH; h++)
            for (int k = 0; k < SGI_VL; k++) part += acc[h][k];
        total += part;
    }
    return total;
}

/* Chan et al.'s update: (n, mean, m2) of a set joined by a block's (nb, mb, m2b). */
void sgi_moments_join(double *n, double *mean, double *m2, double nb, double mb, double m2b) {
    const double t = *n + nb;
    if (t <= 0) return;
    const double delta = mb - *mean;
    *mean += delta * nb / t;
    *m2 += m2b + delta * delta * *n * nb / t;
    *n = t;
}

void sgi_mean_m2(const float *x, size_t n, double *mean, double *m2) {
    double cn = 0, cmean = 0, cm2 = 0;
    for (size_t i = 0; i < n; i += 4096) {
        const size_t end = i + 4096 < n ? i + 4096 : n, nb = end - i;
        /* the block's sum (from memory), then its squared deviations (from L1); four
         * and two vectors of lanes, so that the additions do not wait on each other */
        sgi_vf s0[SGI_VH] = {{0}}, s1[SGI_VH] = {{0}}, s2[SGI_VH] = {{0}}, s3[SGI_VH] = {{0}};
        size_t j = i;
        for (; j + 64 <= end; j += 64)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) {
                const float *xj = x + j + h * SGI_VL;
                s0[h] += *(const sgi_vf *)xj;
                s1[h] += *(const sgi_vf *)(xj + 16);
                s2[h] += *(const sgi_vf *)(xj + 32);
                s3[h] += *(const sgi_vf *)(xj + 48);
            }
        for (; j + 16 <= end; j += 16)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) s0[h] += *(const sgi_vf *)(x + j + h * SGI_VL);
        const size_t tail = j;
        float part = 0;
        for (; j < end; j++) part += x[j];
        for (int h = 0; h < SGI_VH; h++) {
            s0[h] += s1[h] + (s2[h] + s3[h]);
            for (int k = 0; k < SGI_VL; k++) part += s0[h][k];
        }
        /* deviations d from the rounded block mean mb; their sum d1 corrects it (the
         * block's mean is mb + d1 / nb, its squared deviations d2 - d1^2 / nb), which
         * matters where the mean is large against the spread */
        const float mb = part / (float)nb;
        const sgi_vf vmb = (sgi_vf){0} + mb;
        sgi_vf a0[SGI_VH] = {{0}}, a1[SGI_VH] = {{0}}, q0[SGI_VH] = {{0}}, q1[SGI_VH] = {{0}};
        for (j = i; j + 32 <= end; j += 32)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) {
                const sgi_vf d0 = *(const sgi_vf *)(x + j + h * SGI_VL) - vmb;
                const sgi_vf e0 = *(const sgi_vf *)(x + j + 16 + h * SGI_VL) - vmb;
                a0[h] += d0, a1[h] += e0;
                q0[h] += d0 * d0, q1[h] += e0 * e0;
            }
        for (; j < tail; j += 16)
#pragma GCC unroll 2
            for (int h = 0; h < SGI_VH; h++) {
                const sgi_vf d0 = *(const sgi_vf *)(x + j + h * SGI_VL) - vmb;
                a0[h] += d0;
                q0[h] += d0 * d0;
            }
        float d1 = 0, d2 = 0;
        for (; j < end; j++) d1 += x[j] - mb, d2 += (x[j] - mb) * (x[j] - mb);
        for (int h = 0; h < SGI_VH; h++) {
            a0[h] += a1[h], q0[h] += q1[h];
            for (int k = 0; k < SGI_VL; k++) d1 += a0[h][k], d2 += q0[h][k];
        }
        const double c1 = (double)d1 / (double)nb;
        double m2b = (double)d2 - (double)d1 * c1;
        if (m2b < 0) m2b = 0;
        sgi_moments_join(&cn, &cmean, &cm2, (double)nb, (double)mb + c1, m2b);
    }
    *mean = cmean;
    *m2 = cm2;
}
