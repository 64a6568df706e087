/* rng.c - see rng.h. xoshiro256** by Blackman and Vigna, seeded through splitmix64. */
#include "rng.h"

#include <math.h>

uint64_t sim_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t sim_hash_str(uint64_t h, const char *s) {
    /* FNV-1a over the bytes, then mixed with the chain value. */
    uint64_t f = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        f = (f ^ (unsigned char)*s) * 0x100000001b3ULL;
    return sim_mix64(h ^ sim_mix64(f));
}

uint64_t sim_hash2(uint64_t a, uint64_t b) {
    return sim_mix64(sim_mix64(a) ^ (b + 0x632be59bd9b4e019ULL));
}
uint64_t sim_hash3(uint64_t a, uint64_t b, uint64_t c) { return sim_hash2(sim_hash2(a, b), c); }

void sim_rng_seed(sim_rng_t *r, uint64_t key) {
    uint64_t x = key;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        r->s[i] = sim_mix64(x);
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1; /* the all-zero state is a fixed point */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_next(sim_rng_t *r) {
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

static inline double u01_of(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

double sim_rng_u01(sim_rng_t *r) { return u01_of(sim_rng_next(r)); }

double sim_rng_uniform(sim_rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * sim_rng_u01(r);
}

int sim_rng_int(sim_rng_t *r, int lo, int hi) {
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)((int64_t)hi - lo + 1);
    return lo + (int)(sim_rng_next(r) % span);
}

/* Box-Muller from two uniforms; one value per call keeps the stream's draw count simple. */
static double normal_of(double u1, double u2) {
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double sim_rng_normal(sim_rng_t *r) {
    double u1 = sim_rng_u01(r), u2 = sim_rng_u01(r);
    return normal_of(u1, u2);
}

int sim_rng_bernoulli(sim_rng_t *r, double p) { return sim_rng_u01(r) < p; }

double sim_rng_exponential(sim_rng_t *r, double mean) { return -mean * log(1.0 - sim_rng_u01(r)); }

int sim_rng_poisson(sim_rng_t *r, double mean) {
    if (mean <= 0)
        return 0;
    double l = exp(-mean), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= sim_rng_u01(r);
    } while (p > l && k < 1000);
    return k - 1;
}

double sim_noise_u01(uint64_t key) { return u01_of(sim_mix64(key)); }

double sim_noise_normal(uint64_t key) {
    return normal_of(u01_of(sim_mix64(key)), u01_of(sim_mix64(key ^ 0x5851f42d4c957f2dULL)));
}

double sim_noise_smooth(uint64_t key, double t, double scale) {
    double x = t / scale;
    double f = floor(x);
    int64_t i = (int64_t)f;
    double u = x - f;
    double p0 = sim_noise_normal(sim_hash2(key, (uint64_t)(i - 1)));
    double p1 = sim_noise_normal(sim_hash2(key, (uint64_t)i));
    double p2 = sim_noise_normal(sim_hash2(key, (uint64_t)(i + 1)));
    double p3 = sim_noise_normal(sim_hash2(key, (uint64_t)(i + 2)));
    /* Catmull-Rom through the knots; dividing by ~0.8 restores roughly unit variance lost to
     * interpolating between independent knots. */
    double v = 0.5 * ((2 * p1) + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u * u +
                      (-p0 + 3 * p1 - 3 * p2 + p3) * u * u * u);
    return v / 0.8;
}
