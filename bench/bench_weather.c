/*
 * bench_weather - one hvs-weather polling 10 000 locations (10 000 Building records on
 * topology) from the simulator's Open-Meteo server on loopback (96 hours per answer: past_days
 * 1, forecast_days 3), hvs-devbroker and everything on the same machine, at the default
 * concurrency (16) and at 48. Per round, from the worker's /metrics: seconds from round start to
 * its last answer, requests/s, HTTP attempt latency p50/p99 (upper bounds of the histogram's
 * buckets), the worker's CPU time; then its resident memory.
 *   round 1: every answer is new: parse, validate, publish all 960 000 hours;
 *   round 2: the same answers again: identical bodies, nothing parsed or published.
 * The simulator's clock is frozen at the end of its short run, so round 2's answers are
 * byte-identical (the unchanged path); its clock URL stamps the records.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define NLOC 10000
#define HOURS 96

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB (sizeof bounds / sizeof bounds[0])

static char *get(const char *url) {
    char *out = NULL;
    if (hvs_test_http("GET", url, NULL, 0, &out, NULL, 0) != 200) {
        free(out);
        return NULL;
    }
    return out;
}

static double sample(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p && (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

/* Cumulative bucket counts of hvs_weather_request_seconds (+Inf last). */
static void buckets(const char *text, double *c) {
    for (size_t i = 0; i <= NB; i++) {
        char name[128];
        if (i < NB)
            snprintf(name, sizeof name, "hvs_weather_request_seconds_bucket{le=\"%g\"}", bounds[i]);
        else
            snprintf(name, sizeof name, "hvs_weather_request_seconds_bucket{le=\"+Inf\"}");
        c[i] = sample(text, name);
    }
}

/* Quantile q of the observations between two snapshots: the upper bound of its bucket (ms). */
static double quantile(const double *before, const double *after, double q) {
    double total = after[NB] - before[NB];
    for (size_t i = 0; i < NB && total > 0; i++)
        if (after[i] - before[i] >= q * total)
            return bounds[i] * 1000;
    return -1;
}

static void produce_topology(const char *brokers) {
    hvs_serde_t *serde;
    hvs_encoder_t *enc;
    hvs_producer_t *prod;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "bench", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0,
                "kafka: %s", err.msg);
    for (int i = 0; i < NLOC; i++) {
        char json[768], id[32];
        snprintf(id, sizeof id, "bldg_%05d", i);
        /* a 100 x 100 grid over Switzerland, 3-4 km apart */
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern_high_density\","
                 "\"commissioning_date\":1577836800000,\"latitude\":%.4f,\"longitude\":%.4f,"
                 "\"heated_area_m2\":null,\"construction_year\":null,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 id, 45.9 + 0.03 * (i % 100), 6.0 + 0.04 * (i / 100));
        avro_value_t *v = hvs_encoder_value(enc);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                        hvs_encoder_encode(enc, &buf, &len, &err) == 0 &&
                        hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, id, strlen(id),
                                          buf, len, &err) == 0,
                    "building %d: %s", i, err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
}

/* Wait until the round counter reaches `round`; the metrics text then (caller frees). */
static char *wait_round(const char *url, int round, int timeout_s) {
    int64_t deadline = hvs_test_now_ms() + (int64_t)timeout_s * 1000;
    while (hvs_test_now_ms() < deadline) {
        char *t = get(url);
        if (t && sample(t, "hvs_weather_round_seconds_count") >= round)
            return t;
        free(t);
        usleep(50000);
    }
    return NULL;
}

static void run(const char *env, int sim_port, int concurrency) {
    int port = hvs_test_free_port();
    char cmd[2048], log[] = "/tmp/hvs-bench-weather-XXXXXX", url[128];
    int fd = mkstemp(log);
    HVS_REQUIRE(fd >= 0, "log");
    close(fd);
    /* rounds 60 s apart: round 1 (the publishing one) must end before round 2 starts */
    /* BENCH_WRAP (e.g. "perf record -g -o wx.perf") runs the worker under a profiler */
    const char *wrap = getenv("BENCH_WRAP");
    snprintf(cmd, sizeof cmd,
             "env %s HVS_HTTP_PORT=%d HVS_LOG_LEVEL=warn %s %s --url http://127.0.0.1:%d "
             "--clock-url http://127.0.0.1:%d/v1/status --poll-interval 60s --spread 0 "
             "--concurrency %d --provider simulator",
             env, port, wrap ? wrap : "", HVS_TEST_WEATHER, sim_port, sim_port, concurrency);
    hvs_test_proc_t wx;
    HVS_REQUIRE(hvs_test_spawn(&wx, cmd, log) == 0, "hvs-weather");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    double b0[NB + 1] = {0}, b1[NB + 1], b2[NB + 1];
    double cpu0 = hvs_test_cpu_seconds(wx.pid);
    char *t1 = wait_round(url, 1, 300);
    HVS_REQUIRE(t1, "round 1 did not finish (log %s)", log);
    double cpu1 = hvs_test_cpu_seconds(wx.pid);
    buckets(t1, b1);
    double s1 = sample(t1, "hvs_weather_last_round_seconds");
    double good = sample(t1, "hvs_weather_polls_total{result=\"good\"}");
    double recs = sample(t1, "hvs_weather_records_total{kind=\"OBSERVED\"}") +
                  sample(t1, "hvs_weather_records_total{kind=\"FORECAST\"}");
    char *t2 = wait_round(url, 2, 300);
    HVS_REQUIRE(t2, "round 2 did not finish (log %s)", log);
    double cpu2 = hvs_test_cpu_seconds(wx.pid);
    buckets(t2, b2);
    double s2 = sample(t2, "hvs_weather_last_round_seconds");
    double unchanged = sample(t2, "hvs_weather_polls_total{result=\"unchanged\"}");
    double recs2 = sample(t2, "hvs_weather_records_total{kind=\"OBSERVED\"}") +
                   sample(t2, "hvs_weather_records_total{kind=\"FORECAST\"}");
    long rss = hvs_test_status_kb(wx.pid, "VmRSS");
    HVS_CHECK(good == NLOC && recs == (double)NLOC * HOURS, "round 1: %g good polls, %g records",
              good, recs);
    HVS_CHECK(unchanged == NLOC && recs2 == recs, "round 2: %g unchanged, %g new records",
              unchanged, recs2 - recs);
    printf("bench_weather: concurrency %d, %d locations\n", concurrency, NLOC);
    printf("  round 1 (new answers: parse, validate, publish %.0f records): %.2f s, %.0f "
           "requests/s, attempt latency p50 <= %g ms, p99 <= %g ms, worker CPU %.2f s\n",
           recs, s1, NLOC / s1, quantile(b0, b1, 0.5), quantile(b0, b1, 0.99), cpu1 - cpu0);
    printf("  round 2 (identical answers, nothing published): %.2f s, %.0f requests/s, attempt "
           "latency p50 <= %g ms, p99 <= %g ms, worker CPU %.2f s\n",
           s2, NLOC / s2, quantile(b1, b2, 0.5), quantile(b1, b2, 0.99), cpu2 - cpu1);
    printf("  worker resident memory after round 2: %.1f MB (%.1f KB per location)\n",
           (double)rss / 1024.0, (double)rss / NLOC);
    fflush(stdout);
    free(t1);
    free(t2);
    hvs_test_proc_stop(&wx);
    unlink(log);
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t broker, sim;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    char env[512], cmd[1024], simlog[] = "/tmp/hvs-bench-weather-sim-XXXXXX";
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr);
    int fd = mkstemp(simlog);
    HVS_REQUIRE(fd >= 0, "log");
    close(fd);
    int sim_port = hvs_test_free_port();
    snprintf(cmd, sizeof cmd,
             "env HVS_HTTP_PORT=-1 %s --out jsonl --clean --start 2025-01-10T00:00:00Z "
             "--days 0.5 --buildings 1 --serve-weather %d > /dev/null",
             HVS_TEST_SIMULATOR, sim_port);
    HVS_REQUIRE(hvs_test_spawn(&sim, cmd, simlog) == 0, "simulator");
    char status[128];
    snprintf(status, sizeof status, "http://127.0.0.1:%d/v1/status", sim_port);
    int64_t deadline = hvs_test_now_ms() + 30000;
    char *st = NULL;
    while (hvs_test_now_ms() < deadline &&
           !((st = get(status)) && strstr(st, "2025-01-10T12:00:00.000Z"))) {
        free(st);
        st = NULL;
        usleep(50000);
    }
    HVS_REQUIRE(st, "simulator clock");
    free(st);
    produce_topology(broker.addr);
    run(env, sim_port, 16);
    run(env, sim_port, 48);
    hvs_test_proc_stop(&sim);
    hvs_test_proc_stop(&broker);
    unlink(simlog);
    return hvs_test_done();
}
