/*
 * rng.h - deterministic randomness for the simulator.
 *
 * Two kinds, both reproducible from the run's --seed alone:
 *   - streams (sim_rng_t, xoshiro256**): one per entity (building, apartment, room, delivery
 *     channel), seeded by hashing (run seed, entity id, purpose), so an entity's draws do not
 *     depend on how many draws other entities made or in which order entities are visited;
 *   - stateless noise (sim_noise_*): a value for any (seed, key, time) computed on demand, for
 *     processes that must be readable at any instant in any order (weather, forecasts served
 *     over HTTP for an arbitrary hour).
 *
 * Ownership: plain values, no allocation. Thread-safety: a stream belongs to one thread; the
 * stateless functions are pure. Errors: none (every input is valid).
 */
#ifndef HVS_SIM_RNG_H
#define HVS_SIM_RNG_H

#include <stdint.h>

typedef struct sim_rng {
    uint64_t s[4];
} sim_rng_t;

/* 64-bit mix (splitmix64 finaliser): a good hash of one word. */
uint64_t sim_mix64(uint64_t x);
/* Hash a string into a word, chained from h (use 0 to start). */
uint64_t sim_hash_str(uint64_t h, const char *s);
/* Hash words into one: sim_hash(seed, a, b) etc. */
uint64_t sim_hash2(uint64_t a, uint64_t b);
uint64_t sim_hash3(uint64_t a, uint64_t b, uint64_t c);

/* Seed a stream from a key (usually sim_hash of seed, entity, purpose). */
void sim_rng_seed(sim_rng_t *r, uint64_t key);
uint64_t sim_rng_next(sim_rng_t *r);
double sim_rng_u01(sim_rng_t *r); /* [0, 1) */
double sim_rng_uniform(sim_rng_t *r, double lo, double hi);
int sim_rng_int(sim_rng_t *r, int lo, int hi); /* [lo, hi] inclusive */
double sim_rng_normal(sim_rng_t *r);           /* N(0, 1) */
int sim_rng_bernoulli(sim_rng_t *r, double p); /* 1 with probability p */
double sim_rng_exponential(sim_rng_t *r, double mean);
int sim_rng_poisson(sim_rng_t *r, double mean); /* for small means (< 30) */

/* Stateless: a uniform [0, 1) and a N(0, 1) value for a key. */
double sim_noise_u01(uint64_t key);
double sim_noise_normal(uint64_t key);
/*
 * Smooth noise in time: zero-mean, unit-variance-ish value at time t (any unit) whose
 * correlation length is `scale` (same unit), by cubic interpolation between N(0,1) knots placed
 * every `scale` and keyed by (key, knot index). Continuous in t, so a process built from a few
 * octaves of it has weather-like multi-day and intra-day structure.
 */
double sim_noise_smooth(uint64_t key, double t, double scale);

#endif
