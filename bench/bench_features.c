/*
 * bench_features - feature vectors per second.
 *   1. In process: the engine (features.h compute + the worker's state machine) and the Avro
 *      encoding of every vector, 20 buildings x 50 apartments x 10 days of hours: vectors/s and
 *      microseconds per vector, the one-core figure of the definition itself. Then the same
 *      with every vector waiting for its weather (its entry encoded for Redis, then released).
 *      A digest of all their bytes is printed (the outputs must not change with the code's speed).
 *      BENCH_RUNS=0 stops here.
 *   2. The process: the same hours (with their weather) on hvs-devbroker as Avro, consumed
 *      BENCH_RUNS times (default 3), each run by a fresh hvs-features in its own consumer group
 *      on an emptied Redis (redis-server on the same machine). Each run is timed end to end:
 *      from its first input consumed (/metrics) to the moment the stage's stored offsets
 *      (hvs:stage:features:<P> o:<topic>, written in one transaction with the state once the
 *      batch's vectors were acknowledged) reach the end of every partition of both inputs.
 *      Prints per run and as medians: vectors/s, the worker's CPU seconds per 100 k vectors
 *      over that interval (all its threads), its peak RSS (VmHWM), batch latency, the consume
 *      loop by phase, and Redis bytes per entity of state.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvs_test.h"
#include "vectors.h"

#define HOUR 3600000LL
#define T0 1733011200000LL
#define NB 20
#define NA 50
#define HOURS 240

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double heat(int b, int a, int i) { return 0.3 + 0.01 * ((a + b + i) % 24) + 0.001 * a; }

typedef struct counter {
    fx_output_t *out;
    size_t n, bytes;
    uint64_t digest; /* FNV-1a of every vector's bytes: a change of the outputs shows */
    uint64_t set;    /* the sum of each vector's own FNV-1a: the same vectors in any order */
} counter_t;

static int count_vector(void *o, const fx_vector_t *v, hvs_err_t *err) {
    counter_t *c = o;
    const void *buf;
    size_t len;
    int rc = fx_output_encode(c->out, v, &buf, &len, err);
    c->n++;
    c->bytes += len;
    uint64_t own = 14695981039346656037ull;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char byte = ((const unsigned char *)buf)[i];
        c->digest = (c->digest ^ byte) * 1099511628211ull;
        own = (own ^ byte) * 1099511628211ull;
    }
    c->set += own;
    return rc;
}

/* The vectors' set digest. waiting: each hour's weather comes after the building's aggregates, so every vector waits
 * for its observation with its entity part kept, and the building's waiting entries are encoded
 * into a Redis batch (not sent) before the weather releases them: what a batch boundary between
 * the two costs. Returns the digest. */
static uint64_t in_process(hvs_serde_t *s, bool waiting) {
    fx_config_t conf = {.weather_wait = 2 * HOUR,
                        .upgrade_window = 48 * HOUR,
                        .default_region = "CH-ZH",
                        .dq_limit = 0.05,
                        .dq_min_vectors = 24,
                        .ndq = 1};
    conf.dq_features[0] = hvs_features_index("temperature_c");
    fx_t *g = fx_new(&conf, NULL);
    counter_t c = {.digest = 14695981039346656037ull};
    hvs_err_t err = {0};
    HVS_REQUIRE(fx_output_new(s, "features.hourly", &c.out, &err) == 0, "output");
    fx_sink_t sink = {count_vector, NULL, &c};
    hvs_redis_batch_t *rb = hvs_redis_batch_new();
    HVS_REQUIRE(rb, "redis batch");
    size_t saved = 0;
    double t0 = mono();
    for (int i = 0; i < HOURS; i++) {
        hvs_ms_t h = T0 + i * HOUR;
        for (int b = 0; b < NB; b++) {
            fx_weather_t w = {.hour = h, .rec = {h + HOUR + 60000, true, 3.0, 80, 50, 100, 3}};
            snprintf(w.building, sizeof w.building, "bldg_%02d", b);
            if (!waiting)
                fx_on_weather(g, b % 12, &w, h + HOUR, false, &sink, &err);
            for (int a = 0; a <= NA; a++) {
                fx_aggregate_t ag = {.hour = {h, heat(b, a, i), 10, 21, 21.5, 0.5, 0}};
                snprintf(ag.building, sizeof ag.building, "bldg_%02d", b);
                if (a == NA)
                    snprintf(ag.entity, sizeof ag.entity, "-");
                else
                    snprintf(ag.entity, sizeof ag.entity, "apt_%02d", a);
                HVS_REQUIRE(fx_on_aggregate(g, b % 12, &ag, h + HOUR + 60000, false, &sink, &err) ==
                                0,
                            "engine: %s", err.msg);
            }
            if (waiting) {
                fx_building_t *fb = fx_building(g, w.building, b % 12, false);
                HVS_REQUIRE(fb && fx_save_pending(rb, fb, &err) == 0, "save: %s", err.msg);
                saved += fb->npend;
                hvs_redis_batch_reset(rb);
                HVS_REQUIRE(fx_on_weather(g, b % 12, &w, h + HOUR, false, &sink, &err) == 0,
                            "weather: %s", err.msg);
            }
        }
    }
    double dt = mono() - t0;
    printf("in process%s: vectors digest %016llx (as a set %016llx)\n", waiting ? ", waiting" : "",
           (unsigned long long)c.digest, (unsigned long long)c.set);
    printf(
        "in process%s, %d buildings x %d apartments (+ building) x %d h: %zu vectors in %.2f s = "
        "%.0f vectors/s (%.1f us each, Avro %zu bytes each)\n",
        waiting ? " (every vector waits for its weather, its entry saved)" : "", NB, NA, HOURS, c.n,
        dt, c.n / dt, dt * 1e6 / c.n, c.bytes / (c.n ? c.n : 1));
    HVS_CHECK(c.n == (size_t)NB * (NA + 1) * HOURS, "every entity-hour");
    if (waiting)
        HVS_CHECK(saved == c.n, "every vector waited and was saved: %zu", saved);
    hvs_redis_batch_destroy(rb);
    fx_output_destroy(c.out);
    fx_destroy(g);
    return c.set;
}

static void send_msg(hvs_producer_t *p, const char *topic, const char *key, const void *buf,
                     size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &err) == 0,
        "send: %s", err.msg);
}

/* Aggregates and weather straight from Avro values (no JSON on the hot path). */
static size_t produce(hvs_serde_t *s, const char *brokers) {
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "bench"};
    hvs_producer_t *p;
    hvs_encoder_t *ea, *ew;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &ea, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_WEATHER, "weather.hourly", &ew, &err) == 0,
                "setup: %s", err.msg);
    size_t n = 0;
    for (int i = 0; i < HOURS; i++) {
        hvs_ms_t h = T0 + i * HOUR;
        for (int b = 0; b < NB; b++) {
            char bid[32], json[1024];
            snprintf(bid, sizeof bid, "bldg_%02d", b);
            snprintf(
                json, sizeof json,
                "{\"building_id\":\"%s\",\"latitude\":47.0,\"longitude\":8.0,\"hour\":%lld,"
                "\"issued_at\":%lld,\"kind\":\"OBSERVED\",\"temperature_c\":3.0,"
                "\"relative_humidity_pct\":80.0,\"cloud_cover_pct\":50.0,"
                "\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,\"provider\":\"bench\"}",
                bid, (long long)h, (long long)(h + HOUR + 60000));
            const void *buf;
            size_t len;
            HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(ew), json, strlen(json),
                                                  &err) == 0 &&
                            hvs_encoder_encode(ew, &buf, &len, &err) == 0,
                        "weather: %s", err.msg);
            send_msg(p, "weather.hourly", bid, buf, len);
            for (int a = 0; a <= NA; a++) {
                char apt[48];
                if (a == NA)
                    snprintf(apt, sizeof apt, "null");
                else
                    snprintf(apt, sizeof apt, "\"apt_%02d\"", a);
                snprintf(
                    json, sizeof json,
                    "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
                    "\"window_end\":%lld,\"window_size_ms\":3600000,\"revision\":0,"
                    "\"heating_kwh\":%.4f,\"hot_water_litres\":10.0,\"room_temp_mean_c\":21.0,"
                    "\"room_temp_min_c\":20.5,\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,"
                    "\"comfort_gap_mean_c\":0.5,\"readings_expected\":4,\"readings_seen\":4,"
                    "\"reporting_apartments\":null,\"known_apartments\":null,"
                    "\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
                    bid, apt, (long long)h, (long long)(h + HOUR), heat(b, a, i),
                    (long long)(h + HOUR));
                HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(ea), json, strlen(json),
                                                      &err) == 0 &&
                                hvs_encoder_encode(ea, &buf, &len, &err) == 0,
                            "aggregate: %s", err.msg);
                send_msg(p, "aggregates.hourly", bid, buf, len);
                n++;
            }
        }
    }
    HVS_REQUIRE(hvs_producer_flush(p, 60000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(ea);
    hvs_encoder_destroy(ew);
    hvs_producer_destroy(p);
    return n;
}

#define MAX_RUNS 9

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_serde_t *s;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    uint64_t direct = in_process(s, false);
    uint64_t waited = in_process(s, true);
    HVS_CHECK(direct == waited, "the same vectors whether the weather came first or last");
    const char *runs_env = getenv("BENCH_RUNS");
    int runs = runs_env ? atoi(runs_env) : 3;
    if (runs_env && runs == 0) { /* BENCH_RUNS=0: the in-process part alone */
        hvs_serde_destroy(s);
        return hvs_test_done();
    }
    if (runs < 1 || runs > MAX_RUNS)
        runs = 3;

    hvs_test_proc_t redis, broker, fx;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    size_t n = produce(s, broker.addr);
    long long n_wx = (long long)HOURS * NB; /* weather messages, one per building-hour */
    double rate[MAX_RUNS], cpu100k[MAX_RUNS], rss[MAX_RUNS], kb_ent[MAX_RUNS];
    int done = 0;
    for (int run = 0; run < runs; run++) {
        HVS_REQUIRE(hvs_test_redis_flushall(&redis) == 0, "FLUSHALL");
        double mem0 = hvs_test_redis_used(&redis);
        int port = hvs_test_free_port();
        char cmd[2048], log[] = "/tmp/hvs-bench-fx-XXXXXX";
        close(mkstemp(log));
        /* BENCH_WRAP (e.g. "perf record -e cpu-clock -g -o fx.perf") runs the worker under a
         * profiler; not an HVS_* name, which the worker would refuse. */
        const char *wrap = getenv("BENCH_WRAP");
        /* BENCH_FEATURES_BIN: another hvs-features build (e.g. an older commit's) to compare */
        const char *bin = getenv("BENCH_FEATURES_BIN");
        snprintf(cmd, sizeof cmd,
                 "env HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
                 "HVS_KAFKA_GROUP=bench-fx-%d HVS_HTTP_PORT=%d HVS_LOG_LEVEL=error %s %s",
                 broker.addr, redis.addr, run, port, wrap ? wrap : "",
                 bin ? bin : HVS_TEST_FEATURES);
        HVS_REQUIRE(hvs_test_spawn(&fx, cmd, log) == 0, "spawn");
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
        int64_t t_first = 0, t_last = 0, deadline = hvs_test_now_ms() + 400000;
        double cpu_first = 0;
        long long got_a = 0, got_w = 0;
        /* the clock starts at the first input consumed (either topic) */
        while (hvs_test_now_ms() < deadline && !t_first) {
            char *text = NULL;
            if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200 &&
                hvs_test_metric(text, "hvs_features_inputs_total{topic=\"aggregates\"}") +
                        hvs_test_metric(text, "hvs_features_inputs_total{topic=\"weather\"}") >
                    0) {
                t_first = hvs_test_now_ms();
                cpu_first = hvs_test_cpu_seconds(fx.pid);
            }
            free(text);
            if (!t_first)
                usleep(2000);
        }
        /* ... and stops when the offsets stored with the state (after the last vectors were
         * acknowledged) reach the end of both inputs */
        while (t_first && hvs_test_now_ms() < deadline) {
            got_a = hvs_test_stage_offsets(redis.addr, "features", "aggregates.hourly");
            got_w = hvs_test_stage_offsets(redis.addr, "features", "weather.hourly");
            if (got_a >= (long long)n && got_w >= n_wx) {
                t_last = hvs_test_now_ms();
                break;
            }
            usleep(2000);
        }
        double cpu = hvs_test_cpu_seconds(fx.pid) - cpu_first;
        double peak = hvs_test_status_kb(fx.pid, "VmHWM") / 1024.0;
        char *text = NULL;
        hvs_test_http("GET", url, NULL, 0, &text, NULL, 0);
        double vec = text ? hvs_test_metric(text, "hvs_features_vectors_total") : 0;
        HVS_CHECK(t_last > 0,
                  "run %d: stored offsets reached %lld of %zu aggregates, %lld of %lld "
                  "weather",
                  run + 1, got_a, n, got_w, n_wx);
        HVS_CHECK(vec >= (double)n, "run %d: %.0f vectors of %zu", run + 1, vec, n);
        if (t_last > 0) {
            double dt = (double)(t_last - t_first) / 1000.0;
            rate[done] = (double)n / dt;
            cpu100k[done] = cpu / ((double)n / 1e5);
            rss[done] = peak;
            kb_ent[done] = (hvs_test_redis_used(&redis) - mem0) / (NB * (NA + 1)) / 1e3;
            printf("run %d: %zu vectors in %.2f s = %.0f vectors/s; worker CPU %.2f s = %.3f "
                   "CPU-s per 100 k vectors; peak RSS %.1f MB; Redis %.1f KB per entity\n",
                   run + 1, n, dt, rate[done], cpu, cpu100k[done], peak, kb_ent[done]);
            hvs_test_redis_kinds(redis.addr, "       Redis by key kind", NB * (NA + 1), "entity");
            done++;
        }
        if (text) {
            printf("       batch (poll to commit, up to 5000 inputs): p50 <= %.3f s, p99 <= %.3f "
                   "s\n       ",
                   hvs_test_hist_quantile(text, "hvs_features_batch_seconds", 0.5),
                   hvs_test_hist_quantile(text, "hvs_features_batch_seconds", 0.99));
            hvs_test_print_phases(text, "features");
        }
        free(text);
        hvs_test_proc_stop(&fx);
        unlink(log);
    }
    if (done > 0)
        printf("hvs-features, %d buildings x %d apartments (+ building) x %d h, median of %d "
               "run(s), end to end (first input consumed to last offsets stored): %.0f "
               "vectors/s, %.3f CPU-s per 100 k vectors, peak RSS %.1f MB, Redis %.1f KB per "
               "entity (%d-hour rings)\n",
               NB, NA, HOURS, done, hvs_test_median(rate, done), hvs_test_median(cpu100k, done),
               hvs_test_median(rss, done), hvs_test_median(kb_ent, done), HVS_FS_HOURS);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_serde_destroy(s);
    return hvs_test_done();
}
