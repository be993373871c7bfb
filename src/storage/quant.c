/* Value codings: IEEE half, 8-bit linear, k-means codebooks, and the coder the
 * formats use to turn a weight into a fixed-width code and back. */
#include <math.h>

#include "storage_int.h"

static const char *const VALUE_NAMES[SG_VALUES_COUNT] = {"f32", "f16", "q8", "codebook"};

const char *sg_values_name(enum sg_values v) {
    return (unsigned)v < SG_VALUES_COUNT ? VALUE_NAMES[v] : "?";
}

int sg_values_from_name(const char *name) {
    for (int i = 0; i < SG_VALUES_COUNT; i++)
        if (strcmp(name, VALUE_NAMES[i]) == 0) return i;
    return -1;
}

/* ---- IEEE binary16 ---- */
uint16_t sg_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u; /* NaN: quiet, payload dropped */
    if (a >= 0x47800000u) return sign | 0x7c00u; /* >= 2^16 (and inf): overflow */
    if (a < 0x38800000u) { /* below 2^-14: a half subnormal or zero */
        const uint32_t e = a >> 23;
        /* the value is mant * 2^(e-150); in units of 2^-24 that is mant >> (126 - e) */
        const uint32_t shift = 126 - e;
        if (e == 0 || shift > 24) return sign; /* below half a unit: rounds to 0 */
        const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
        uint32_t q = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++; /* may carry into the normals: fine */
        return sign | (uint16_t)q;
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 mantissa bits, round */
    uint32_t h = (a >> 13) - ((127u - 15u) << 10);
    const uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry may reach inf: right */
    return sign | (uint16_t)h;
}

float sg_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int ee = 1;
            while (!(m & 0x400u)) {
                m <<= 1;
                ee--;
            }
            u = sign | (uint32_t)(ee + 112) << 23 | (m & 0x3ffu) << 13;
        }
    } else {
        u = sign | (e + 112) << 23 | m << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- 1-D k-means ---- */
/* Order-preserving map of finite floats to unsigned keys. */
static inline uint32_t fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}
static inline float fkey_inv(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* LSD radix sort in three 11-bit passes: linear, so codebooks of large layers
 * are fitted in about the time of a few passes over the weights. */
static enum sg_status sort_floats(const float *x, size_t n, float *out) {
    uint32_t *a = sgi_alloc(n, 4), *b = sgi_alloc(n, 4);
    size_t *cnt = sgi_alloc(2048, sizeof *cnt);
    if (!a || !b || !cnt) {
        free(a), free(b), free(cnt);
        return SG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) a[i] = fkey(x[i]);
    for (int pass = 0; pass < 3; pass++) {
        const int sh = 11 * pass;
        memset(cnt, 0, 2048 * sizeof *cnt);
        for (size_t i = 0; i < n; i++) cnt[(a[i] >> sh) & 2047]++;
        size_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            const size_t t = cnt[d];
            cnt[d] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) b[cnt[(a[i] >> sh) & 2047]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++) out[i] = fkey_inv(a[i]);
    free(a), free(b), free(cnt);
    return SG_OK;
}

/* First index in xs[lo, hi) whose value is > v. */
static size_t upper_bound(const float *xs, size_t lo, size_t hi, double v) {
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if ((double)xs[mid] <= v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

enum sg_status sg_kmeans_1d(const float *x, size_t n, int k, int max_iters, float *centroids,
                            int *iters) {
    if (iters) *iters = 0;
    if (k < 1 || k > 65535 || max_iters < 0)
        return sgi_error(SG_ERR_ARG, "k-means: %d centroids or %d iterations out of range", k,
                         max_iters);
    if (n == 0) {
        memset(centroids, 0, (size_t)k * sizeof *centroids);
        return SG_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return sgi_error(SG_ERR_ARG, "k-means: value %zu is not finite (%g)", i, (double)x[i]);
    float *xs = sgi_alloc(n, sizeof *xs);
    double *ps = sgi_alloc(n + 1, sizeof *ps), *c = sgi_alloc((size_t)k, sizeof *c);
    size_t *bound = sgi_alloc((size_t)k, sizeof *bound);
    enum sg_status st = SG_ERR_NOMEM;
    if (!xs || !ps || !c || !bound || (st = sort_floats(x, n, xs)) != SG_OK) goto done;
    ps[0] = 0;
    for (size_t i = 0; i < n; i++) ps[i + 1] = ps[i] + xs[i];
    const double lo = xs[0], hi = xs[n - 1];
    for (int j = 0; j < k; j++) c[j] = k == 1 ? (lo + hi) / 2 : lo + (hi - lo) * j / (k - 1);
    for (int it = 0; it < max_iters; it++) {
        /* clusters are intervals between midpoints: compute them all before moving any */
        size_t start = 0;
        for (int j = 0; j < k; j++) {
            bound[j] = j == k - 1 ? n : upper_bound(xs, start, n, (c[j] + c[j + 1]) / 2);
            start = bound[j];
        }
        int changed = 0;
        start = 0;
        for (int j = 0; j < k; j++) {
            if (bound[j] > start) {
                const double mean = (ps[bound[j]] - ps[start]) / (double)(bound[j] - start);
                changed |= mean != c[j];
                c[j] = mean;
            }
            start = bound[j];
        }
        if (iters) *iters = it + 1;
        if (!changed) break;
    }
    for (int j = 0; j < k; j++) centroids[j] = (float)c[j];
    st = SG_OK;
done:
    free(xs), free(ps), free(c), free(bound);
    return st;
}

/* ---- the value coder ---- */
enum sg_status sgi_vc_shape(struct sgi_vc *vc, const struct sg_storage_cfg *cfg) {
    memset(vc, 0, sizeof *vc);
    vc->kind = cfg->values;
    switch (cfg->values) {
    case SG_VALUES_F32: vc->bits = 32, vc->reserved = 0xffffffffu; break;
    case SG_VALUES_F16: vc->bits = 16, vc->reserved = 0xffffu; break;
    case SG_VALUES_Q8:
        vc->bits = 8, vc->reserved = 0x80u; /* -128: codes are -127..127 */
        vc->meta_bits = 32;
        break;
    case SG_VALUES_CODEBOOK:
        if (cfg->codebook_bits < 1 || cfg->codebook_bits > 16)
            return sgi_error(SG_ERR_ARG, "codebook of %d bits (1..16)", cfg->codebook_bits);
        if (cfg->kmeans_iters < 0 || cfg->kmeans_iters > 100000)
            return sgi_error(SG_ERR_ARG, "%d k-means iterations (0..100000)", cfg->kmeans_iters);
        vc->bits = cfg->codebook_bits;
        vc->reserved = (1u << vc->bits) - 1; /* the last code marks pruned slots */
        vc->ncodes = (int)vc->reserved;
        vc->meta_bits = 32 * (int64_t)vc->ncodes;
        break;
    default: return sgi_error(SG_ERR_ARG, "unknown value coding %d", (int)cfg->values);
    }
    return SG_OK;
}

enum sg_status sgi_vc_fit(struct sgi_vc *vc, const struct sg_wview *v,
                          const struct sg_storage_cfg *cfg) {
    enum sg_status st = sgi_vc_shape(vc, cfg);
    if (st != SG_OK) return st;
    const size_t n = (size_t)sg_wview_count(v);
    const char *name = v->name ? v->name : "layer";
    if (vc->kind == SG_VALUES_Q8) {
        float amax = 0;
        for (size_t i = 0; i < n; i++)
            if (v->mask[i]) {
                if (!isfinite(v->w[i]))
                    return sgi_error(SG_ERR_ARG, "%s: weight %zu is %g; 8-bit values need finite "
                                     "weights", name, i, (double)v->w[i]);
                amax = fmaxf(amax, fabsf(v->w[i]));
            }
        vc->scale = amax / 127.0f;
    } else if (vc->kind == SG_VALUES_CODEBOOK) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) kept += v->mask[i] != 0;
        float *x = sgi_alloc(kept, sizeof *x);
        vc->codebook = sgi_zalloc((size_t)vc->ncodes + 1, sizeof *vc->codebook);
        if (!x || !vc->codebook) {
            free(x);
            sgi_vc_free(vc);
            return SG_ERR_NOMEM;
        }
        for (size_t i = 0, j = 0; i < n; i++)
            if (v->mask[i]) x[j++] = v->w[i];
        st = sg_kmeans_1d(x, kept, vc->ncodes, cfg->kmeans_iters, vc->codebook, NULL);
        free(x);
        if (st != SG_OK) {
            sgi_vc_free(vc);
            return sgi_error_prefix(st, name);
        }
    }
    return SG_OK;
}

void sgi_vc_free(struct sgi_vc *vc) {
    free(vc->codebook);
    vc->codebook = NULL;
}

void sgi_vc_write_meta(const struct sgi_vc *vc, struct sgi_bw *w) {
    uint32_t u;
    if (vc->kind == SG_VALUES_Q8) {
        memcpy(&u, &vc->scale, 4);
        sgi_bw_put(w, u, 32);
    } else if (vc->kind == SG_VALUES_CODEBOOK) {
        for (int j = 0; j < vc->ncodes; j++) {
            memcpy(&u, &vc->codebook[j], 4);
            sgi_bw_put(w, u, 32);
        }
    }
}

enum sg_status sgi_vc_read_meta(struct sgi_vc *vc, struct sgi_br *r, const char *what) {
    if (sgi_br_left(r) < (uint64_t)vc->meta_bits)
        return sgi_error(SG_ERR_FORMAT, "%s: truncated in the value metadata (%lld bits needed)",
                         what, (long long)vc->meta_bits);
    if (vc->kind == SG_VALUES_Q8) {
        uint32_t u = sgi_br_get(r, 32);
        memcpy(&vc->scale, &u, 4);
        if (!isfinite(vc->scale) || vc->scale < 0)
            return sgi_error(SG_ERR_FORMAT, "%s: 8-bit scale %g is not a finite non-negative "
                             "number", what, (double)vc->scale);
    } else if (vc->kind == SG_VALUES_CODEBOOK) {
        vc->codebook = sgi_zalloc((size_t)vc->ncodes + 1, sizeof *vc->codebook);
        if (!vc->codebook) return SG_ERR_NOMEM;
        for (int j = 0; j < vc->ncodes; j++) {
            uint32_t u = sgi_br_get(r, 32);
            memcpy(&vc->codebook[j], &u, 4);
            if (!isfinite(vc->codebook[j]))
                return sgi_error(SG_ERR_FORMAT, "%s: codebook entry %d is not finite", what, j);
        }
    }
    return SG_OK;
}

uint32_t sgi_vc_code_slow(const struct sgi_vc *vc, float x) {
    if (vc->kind == SG_VALUES_Q8) {
        if (vc->scale == 0) return 0;
        double q = nearbyint((double)x / vc->scale);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        return (uint8_t)(int8_t)q;
    }
    /* codebook: nearest entry of the sorted codebook, ties to the lower one */
    int lo = 0, hi = vc->ncodes;
    while (lo < hi) { /* first entry >= x */
        const int mid = (lo + hi) / 2;
        if (vc->codebook[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    if (lo == vc->ncodes) return (uint32_t)(lo - 1);
    if (lo == 0) return 0;
    const double below = (double)x - vc->codebook[lo - 1], above = (double)vc->codebook[lo] - x;
    return (uint32_t)(below <= above ? lo - 1 : lo);
}

enum sg_status sg_quantize_layer(struct sg_wview *v, const struct sg_storage_cfg *cfg) {
    struct sgi_vc vc;
    enum sg_status st = sgi_vc_fit(&vc, v, cfg);
    if (st != SG_OK) return st;
    const size_t n = (size_t)sg_wview_count(v);
    for (size_t i = 0; i < n; i++)
        v->w[i] = v->mask[i] ? sgi_vc_value(&vc, sgi_vc_code(&vc, v->w[i])) : 0.0f;
    sgi_vc_free(&vc);
    return SG_OK;
}
