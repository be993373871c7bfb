/* xoshiro256** (Blackman and Vigna) seeded through splitmix64. */
#include <math.h>

#include "sgi.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sg_rng_seed(sg_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sg_rng_next(sg_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sg_rng_uniform(sg_rng *r) { return (double)(sg_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t sg_rng_below(sg_rng *r, uint64_t n) {
    SG_ASSERT(n > 0);
    uint64_t lim = -n % n; /* 2^64 mod n: reject the biased low values */
    for (;;) {
        uint64_t x = sg_rng_next(r);
        if (x >= lim) return x % n;
    }
}

float sg_rng_normal(sg_rng *r) {
    double u1 = sg_rng_uniform(r), u2 = sg_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void sg_rng_shuffle(sg_rng *r, uint32_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)sg_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
