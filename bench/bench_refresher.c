/*
 * bench_refresher - the 15-minute tick of hvs-refresher for NB buildings (issue 17: 100 000 in at
 * most 5 s) and the read path while the ticks write (a building's latest refresh by one GET:
 * p99 at most 1 ms at 10 000 reads/s).
 *
 * In process, the worker's own code on real services: the engine (engine.h) on one partition
 * (one member holding every building: the worst case), refresh/global (hvs-linear, as the
 * trainer publishes it) serving, each refresh through the worker's emit (output.h: latest JSON,
 * Avro record sent on a real librdkafka producer to hvs-devbroker) and the state through
 * state.h into a real redis-server (the latest JSONs pipelined in chunks, then the state in one
 * MULTI/EXEC, as the worker's write_state and the stage runner write them). A warm-up
 * of 4 hours (quarters and hourly baselines, quiet: nothing published) fills the lags; then
 * BENCH_RF_TICKS ticks are timed, each from the input that makes it ready to its NB refreshes
 * acknowledged by the broker and its state written; the quarters of the period between two
 * ticks (NB inputs in batches of 5000, each batch's ring slots written in one transaction, as
 * the worker's default HVS_RF_BATCH) and the hourly baselines are timed apart.
 * Meanwhile a reader thread (its own hiredis connection) GETs a random building's
 * hvs:{B}:rf:latest every 100 us (10 000/s) and records each latency.
 * BENCH_RF_BUILDINGS (default 100000), BENCH_RF_TICKS (default 8).
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "output.h"
#include "refresh_model.h"
#include "state.h"

#define MIN 60000LL
#define HOUR 3600000LL
#define Q RF_QUARTER_MS
#define T0 1736640000000LL /* 2025-01-12 00:00 UTC */

static int NB = 100000, NT = 8;
#define BATCH 5000 /* the worker's HVS_RF_BATCH: one state transaction per batch */
static hvs_model_ref_t *ref;
static rf_output_t *out;
static hvs_producer_t *prod;
static bool warm = true;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double area(int b) { return 600 + (b % 17) * 150; }
static double baseline_kwh(int b, hvs_ms_t h) {
    return area(b) * 0.02 * (1 + 0.3 * sin(2 * M_PI * (double)(h % 86400000) / 86400000));
}
static double actual_kwh(int b, hvs_ms_t h) {
    return baseline_kwh(b, h) * (1 + 0.1 * sin((double)(h - T0) / (11.0 * HOUR) + b));
}

static int info(void *opaque, const char *building, rf_info_t *o) {
    (void)opaque;
    *o = (rf_info_t){area(atoi(building + 1)), "old_poorly_insulated"};
    return 0;
}
static hvs_model_ref_t *acquire(void *opaque, const char *name) {
    (void)opaque;
    if (strcmp(name, "refresh/global") != 0)
        return NULL;
    atomic_fetch_add(&ref->refs, 1);
    return ref;
}
static bool quiet(void *opaque, int32_t p) {
    (void)opaque, (void)p;
    return warm;
}
static int emit(void *opaque, rf_building_t *b, const rf_refresh_t *r, bool q, hvs_err_t *err) {
    (void)opaque;
    return rf_output_emit(out, prod, "forecasts.refreshed", b, r, q, err);
}

static char (*ids)[16];

static void feed_quarters(rf_t *g, hvs_ms_t start, int from, int to) {
    hvs_err_t err = {0};
    for (int b = from; b < to; b++)
        HVS_REQUIRE(rf_on_quarter(g, 0, ids[b], start, actual_kwh(b, start - start % HOUR) / 4,
                                  true, &err) == 0,
                    "quarter: %s", err.msg);
}

static void feed_baselines(rf_t *g, hvs_ms_t t) {
    hvs_err_t err = {0};
    hvs_ms_t th[8];
    double y[8], lo[8], hi[8];
    for (int b = 0; b < NB; b++) {
        for (int i = 0; i < 8; i++) {
            th[i] = t + i * HOUR;
            y[i] = baseline_kwh(b, th[i]);
            lo[i] = 0.8 * y[i], hi[i] = 1.2 * y[i];
        }
        rf_baseline_in_t in = {t, "forecast/global", 4, 8, th, y, lo, hi};
        HVS_REQUIRE(rf_on_baseline(g, 0, ids[b], &in, true, &err) == 0, "baseline: %s", err.msg);
    }
}

/* What the worker's write_state does once a batch's outputs are acknowledged: the latest
 * refreshes apart, then the state in one transaction (the runner's, with the offsets). */
static void save(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *rb) {
    hvs_err_t err = {0};
    HVS_REQUIRE(rf_state_save_latest(g, r, rb, HOUR, &err) == 0, "latest: %s", err.msg);
    hvs_redis_batch_reset(rb);
    HVS_REQUIRE(rf_state_save(g, rb, &err) == 0 && hvs_redis_batch_exec_atomic(r, rb, &err) == 0 &&
                    hvs_redis_batch_check(rb, &err) == 0,
                "state: %s", err.msg);
}

/* ---- the reader ----------------------------------------------------------------------------- */

static atomic_bool reading;
static double *lat;
static size_t nlat, caplat;
static const char *redis_host;
static int redis_port;

static void *reader(void *arg) {
    (void)arg;
    redisContext *c = redisConnect(redis_host, redis_port);
    HVS_REQUIRE(c && !c->err, "reader connect");
    unsigned seed = 7;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = mono();
    size_t empty = 0;
    while (atomic_load(&reading) && nlat < caplat) {
        /* paced, sleeping: a spinning reader would take a core from the ticks */
        next.tv_nsec += 100000;
        if (next.tv_nsec >= 1000000000)
            next.tv_sec++, next.tv_nsec -= 1000000000;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        char key[64];
        snprintf(key, sizeof key, "hvs:{%s}:rf:latest", ids[rand_r(&seed) % (unsigned)NB]);
        double a = mono();
        redisReply *r = redisCommand(c, "GET %s", key);
        lat[nlat++] = (mono() - a) * 1e3;
        HVS_REQUIRE(r, "GET: %s", c->errstr);
        empty += r->type != REDIS_REPLY_STRING;
        freeReplyObject(r);
    }
    printf("reader: %zu GETs in %.1f s (%.0f/s), %zu without a value\n", nlat, mono() - t0,
           nlat / (mono() - t0), empty);
    redisFree(c);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double pct(double *v, size_t n, double p) {
    return n ? v[(size_t)fmin((double)n - 1, floor(p * (double)n))] : NAN;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    if (getenv("BENCH_RF_BUILDINGS"))
        NB = atoi(getenv("BENCH_RF_BUILDINGS"));
    if (getenv("BENCH_RF_TICKS"))
        NT = atoi(getenv("BENCH_RF_TICKS"));
    HVS_REQUIRE(NB > 0 && NT > 0, "BENCH_RF_BUILDINGS, BENCH_RF_TICKS");
    static const double coef[3][5] = {
        {0.0005, 0, 0.6, 0.2, 0.1}, {0.0003, 0, 0.4, 0.2, 0.1}, {0, 0, 0.3, 0.15, 0.1}};
    ref = hvs_test_refresh_ref("refresh/global", 1, coef);
    HVS_REQUIRE((ids = calloc((size_t)NB, sizeof *ids)), "oom");
    for (int b = 0; b < NB; b++)
        snprintf(ids[b], sizeof ids[b], "b%06d", b);

    hvs_test_proc_t rs, broker;
    HVS_REQUIRE(hvs_test_redis_start(&rs, 0) == 0 && hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_err_t err = {0};
    hvs_serde_t *s;
    hvs_redis_t *r;
    hvs_redis_batch_t *rb = hvs_redis_batch_new();
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "bench"};
    HVS_REQUIRE(rb && hvs_serde_new(NULL, &s, &err) == 0 &&
                    rf_output_new(s, "forecasts.refreshed", &out, &err) == 0 &&
                    hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_redis_connect(rs.addr, NULL, &r, &err) == 0,
                "setup: %s", err.msg);
    rf_config_t c = {.grace = 15 * MIN,
                     .baseline_wait = 2 * HOUR,
                     .reissue = 4 * HOUR,
                     .forget = 0.98,
                     .ridge = 0.1,
                     .online_min = 24};
    rf_callbacks_t cb = {info, acquire, quiet, emit, NULL, NULL};
    rf_t *g;
    HVS_REQUIRE(rf_new(&c, &cb, &g, &err) == 0, "rf_new");

    /* warm-up: 4 hours, quiet; the state written as batches would */
    double t0 = mono();
    hvs_ms_t t = T0;
    feed_baselines(g, t);
    for (; t < T0 + 4 * HOUR; t += Q) {
        feed_quarters(g, t, 0, NB);
        if ((t + Q) % HOUR == 0)
            feed_baselines(g, t + Q);
        save(g, r, rb);
    }
    rf_flush(g, &err);
    redisReply *info_mem;
    HVS_REQUIRE(hvs_redis_command(r, &info_mem, &err, "INFO memory") == 0, "INFO");
    const char *um = strstr(info_mem->str, "used_memory:");
    double used = um ? atof(um + 12) : NAN;
    freeReplyObject(info_mem);
    printf("warm-up: %d buildings x 4 h (16 quarters, 5 baselines each), %llu ticks, in %.1f s; "
           "Redis %.1f MB = %.2f KB per building\n",
           NB, (unsigned long long)rf_stats(g)->ticks, mono() - t0, used / 1e6, used / NB / 1e3);

    /* the timed ticks, with the reader going */
    warm = false;
    caplat = (size_t)NT * 200000;
    HVS_REQUIRE((lat = malloc(caplat * sizeof *lat)), "oom");
    char host[sizeof rs.addr];
    snprintf(host, sizeof host, "%.100s", rs.addr + strlen("redis://"));
    char *colon = strrchr(host, ':');
    HVS_REQUIRE(colon, "redis address %s", rs.addr);
    *colon = 0;
    redis_host = host, redis_port = atoi(colon + 1);
    atomic_store(&reading, true);
    pthread_t th;
    HVS_REQUIRE(pthread_create(&th, NULL, reader, NULL) == 0, "reader");
    double *tick = calloc((size_t)NT, sizeof *tick), *ingest = calloc((size_t)NT, sizeof *ingest);
    double base_s = 0, phase[3] = {0};
    int nbase = 0;
    uint64_t made0 = rf_stats(g)->refreshes;
    for (int k = 0; k < NT; k++, t += Q) {
        /* the first input of the period makes tick t - 15 min ready */
        uint64_t before = rf_stats(g)->refreshes;
        double a = mono();
        feed_quarters(g, t, 0, 1);
        double made = mono();
        save(g, r, rb);
        double saved = mono();
        HVS_REQUIRE(hvs_producer_flush(prod, 60000, &err) == 0, "flush: %s", err.msg);
        tick[k] = mono() - a;
        phase[0] += made - a, phase[1] += saved - made, phase[2] += mono() - saved;
        HVS_CHECK(rf_stats(g)->refreshes - before == (uint64_t)NB, "tick %d: %llu refreshes", k,
                  (unsigned long long)(rf_stats(g)->refreshes - before));
        a = mono();
        for (int from = 1; from < NB; from += BATCH) {
            feed_quarters(g, t, from, from + BATCH < NB ? from + BATCH : NB);
            save(g, r, rb);
        }
        ingest[k] = mono() - a;
        if ((t + Q) % HOUR == 0) {
            a = mono();
            feed_baselines(g, t + Q);
            save(g, r, rb);
            base_s += mono() - a, nbase++;
        }
        rf_flush(g, &err);
    }
    atomic_store(&reading, false);
    pthread_join(th, NULL);
    qsort(tick, (size_t)NT, sizeof *tick, cmp_d);
    qsort(ingest, (size_t)NT, sizeof *ingest, cmp_d);
    qsort(lat, nlat, sizeof *lat, cmp_d);
    printf("tick, %d buildings (refreshes made, encoded, sent and acknowledged; the latest JSONs "
           "pipelined, the state in one MULTI/EXEC): p50 %.2f s, p99 %.2f s over %d ticks = %.0f "
           "refreshes/s\n",
           NB, pct(tick, (size_t)NT, 0.5), pct(tick, (size_t)NT, 0.99), NT,
           NB / pct(tick, (size_t)NT, 0.5));
    printf("tick phases (mean): refreshes made and sent %.2f s, state written %.2f s, producer "
           "flushed %.2f s\n",
           phase[0] / NT, phase[1] / NT, phase[2] / NT);
    printf(
        "quarters between ticks (%d inputs, ring slots written per 5000): p50 %.2f s = %.0f inputs/s; "
        "hourly baselines: %.2f s per round\n",
        NB - 1, pct(ingest, (size_t)NT, 0.5), (NB - 1) / pct(ingest, (size_t)NT, 0.5),
        nbase ? base_s / nbase : NAN);
    printf("read path (GET hvs:{B}:rf:latest while the ticks write): p50 %.3f ms, p99 %.3f ms, "
           "p99.9 %.3f ms, max %.3f ms over %zu reads\n",
           pct(lat, nlat, 0.5), pct(lat, nlat, 0.99), pct(lat, nlat, 0.999),
           nlat ? lat[nlat - 1] : NAN, nlat);
    HVS_CHECK(rf_stats(g)->refreshes - made0 == (uint64_t)NB * (uint64_t)NT, "every tick made");
    free(tick);
    free(ingest);
    free(lat);
    rf_destroy(g);
    hvs_registry_release(ref);
    hvs_producer_destroy(prod);
    rf_output_destroy(out);
    hvs_redis_batch_destroy(rb);
    hvs_redis_destroy(r);
    hvs_serde_destroy(s);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&rs);
    free(ids);
    return hvs_test_done();
}
