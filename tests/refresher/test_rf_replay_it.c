/*
 * test_rf_replay_it - a replay gives the refresher's live refreshes whatever the relative speed
 * of its two inputs (issue 18; docs/design.md section 8 "Inputs", stage.h "Input alignment").
 *
 * Two buildings x 6 days of 15-minute totals and hourly baselines (issued at the hour, 72 points,
 * each issue a little different) run through hvs-refresher (real redis-server and
 * hvs-devbroker) three ways at once, each with its own worker, topics and redis-server, no
 * refresh model (the online correction: its fit reads the ring's 128 hours):
 *   interleaved      the worker runs while the history is published hour by hour as the
 *                    pipeline makes it (the baseline of hour T, then T's quarters), each hour
 *                    read before the next is sent;
 *   quarters_ahead   all the quarters published, then all the baselines, then the worker
 *                    started on the lot, fetching 4 KB per partition: a baseline is ~20 times a
 *                    quarter's size, so the consumer reads the quarters days ahead;
 *   baselines_ahead  the baselines first (8 points: all the refresher keeps), then the quarters
 *                    padded with eight long-named rooms (ignored by the refresher), the same
 *                    fetch: the baselines run days ahead.
 * The latest refresh of every (building, tick), read back from each run's forecasts.refreshed,
 * must be identical, value by value, and every tick must have one. Without the alignment
 * (HVS_STAGE_HOLD in workers/refresher/main.c) a run ahead claims ring slots of hours the ticks
 * behind still read, and the two replays differ from the live run.
 */
#include <jansson.h>
#include <math.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define QTR (15 * 60000LL)
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC */
#define NB 2
#define HOURS (6 * 24)
#define TICKS (HOURS * 4) /* per building: from T0 to the last quarter's start */
#define RUNS 3

static hvs_test_proc_t broker, redis[RUNS], w[RUNS];
static char base_env[1024], env[RUNS][2048], logpath[RUNS][256];
static int port[RUNS];
static const char *const run_names[RUNS] = {"interleaved", "quarters_ahead", "baselines_ahead"};
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_fc, *enc_bld;
static json_t *runs[RUNS];
static size_t totals[RUNS];
static double took[RUNS];
static const double area[NB] = {1200.0, 800.0};

static const char *bld(int b) { return b ? "rp_b2" : "rp_b1"; }

/* The served baseline of hour x as issued at `issued` (each issue a little different), and the
 * actual: a daily shape, a persistent error the online fit can learn, some noise. */
static double base_of(int b, hvs_ms_t x, hvs_ms_t issued) {
    int h = (int)((x / HOUR) % 24);
    return 40.0 + 10 * b + 1.5 * abs(h - 12) + 0.25 * (double)((x - issued) / HOUR);
}
static double actual_of(int b, hvs_ms_t x) {
    long i = (long)((x - T0) / HOUR);
    return base_of(b, x, x) + 6.0 * sin(0.11 * (double)i + b) + 0.8 * (double)((i * 7919) % 13 - 6);
}
static const double QW[4] = {0.2, 0.3, 0.25, 0.25};

static void send_json(hvs_encoder_t *enc, const char *topic, const char *key, const char *json) {
    hvs_err_t err = {0};
    const void *buf;
    size_t len;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, &len, &err) == 0,
        "encode %s: %s (%.200s)", topic, err.msg, json);
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0,
                "send %s: %s", topic, err.msg);
}

static void flush(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

/* Quarter j of hour i of building b to run k's topic (padded with rooms for baselines_ahead). */
static void send_quarter(int k, int b, int i, int j) {
    char json[4096], rooms[2400] = "", topic[64];
    if (k == 2)
        for (int r = 0; r < 8; r++)
            snprintf(rooms + strlen(rooms), sizeof rooms - strlen(rooms),
                     "%s{\"room\":\"room_%d_with_a_rather_long_name_as_some_devices_send\","
                     "\"temp_mean_c\":null,\"temp_min_c\":null,\"temp_max_c\":null,"
                     "\"temp_std_c\":null,\"setpoint_mean_c\":null,\"valve_mean_pct\":null,"
                     "\"readings_seen\":0,\"temp_changes\":0}",
                     r ? "," : "", r);
    hvs_ms_t x = T0 + i * HOUR, ws = x + j * QTR;
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":null,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%.17g,"
             "\"hot_water_litres\":2.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":1,\"readings_seen\":1,\"reporting_apartments\":2,"
             "\"known_apartments\":2,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld,"
             "\"rooms\":[%s]}",
             bld(b), (long long)ws, (long long)(ws + QTR), QTR, actual_of(b, x) * QW[j],
             (long long)(ws + QTR), rooms);
    snprintf(topic, sizeof topic, "q.%s", run_names[k]);
    send_json(enc_agg, topic, bld(b), json);
}

/* The baseline of building b issued at hour i to run k's topic (8 points for baselines_ahead, the
 * refresher keeps no more). */
static void send_baseline(int k, int b, int i) {
    static char json[65536];
    char topic[64];
    hvs_ms_t issued = T0 + i * HOUR;
    int n = k == 2 ? 8 : 72;
    size_t o = (size_t)snprintf(json, sizeof json,
                                "{\"building_id\":\"%s\",\"issued_at\":%lld,\"kind\":\"BASELINE\","
                                "\"points\":[",
                                bld(b), (long long)issued);
    for (int p = 0; p < n; p++) {
        hvs_ms_t th = issued + p * HOUR;
        double y = base_of(b, th, issued);
        o += (size_t)snprintf(json + o, sizeof json - o,
                              "%s{\"target_hour\":%lld,\"horizon_h\":%d,\"yhat_kwh\":%.17g,"
                              "\"yhat_lower_kwh\":%.17g,\"yhat_upper_kwh\":%.17g,"
                              "\"correction_kwh\":null}",
                              p ? "," : "", (long long)th, p + 1, y, y - 8, y + 12);
    }
    snprintf(json + o, sizeof json - o,
             "],\"model_name\":\"forecast/global\",\"model_version\":2,"
             "\"baseline_version\":null,\"baseline_issued_at\":null,"
             "\"out_of_distribution\":false,\"flags\":[]}");
    snprintf(topic, sizeof topic, "b.%s", run_names[k]);
    send_json(enc_fc, topic, bld(b), json);
}

static double metric(int k, const char *name) {
    char url[128], *text = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port[k]);
    if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) != 200 || !text) {
        free(text);
        return -1;
    }
    double v = hvs_test_metric(text, name);
    free(text);
    return v;
}

/* Until run k's worker handled `agg` quarters and `fc` baselines (at most 30 s). */
static void wait_inputs(int k, double agg, double fc) {
    for (int i = 0; i < 6000; i++) {
        if (metric(k, "hvs_refresher_inputs_total{topic=\"aggregates\"}") >= agg &&
            metric(k, "hvs_refresher_inputs_total{topic=\"baselines\"}") >= fc)
            return;
        usleep(2000);
    }
    HVS_REQUIRE(false, "%s: the worker did not read %g quarters and %g baselines", run_names[k],
                agg, fc);
}

static void start_worker(int k) {
    const char *r = run_names[k];
    port[k] = hvs_test_free_port();
    snprintf(env[k], sizeof env[k],
             "%s HVS_REDIS_URL=%s HVS_TOPIC_AGGREGATES_15M=q.%s HVS_TOPIC_FORECASTS_BASELINE=b.%s "
             "HVS_TOPIC_FORECASTS_REFRESHED=r.%s",
             base_env, redis[k].addr, r, r, r);
    snprintf(logpath[k], sizeof logpath[k], "/tmp/hvs-test-rf-replay-%d-%s.log", (int)getpid(), r);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_HTTP_PORT=%d HVS_KAFKA_GROUP=rf-replay-%s %s %s --batch 500", env[k],
             port[k], r, k ? "HVS_KAFKA_MAX_PARTITION_FETCH_BYTES=4096" : "", HVS_TEST_REFRESHER);
    HVS_REQUIRE(hvs_test_spawn(&w[k], cmd, logpath[k]) == 0, "spawn hvs-refresher");
}

/* The latest refresh per (building, tick) of run k; *total messages. */
static json_t *refreshes(int k, size_t *total) {
    char topic[64];
    snprintf(topic, sizeof topic, "r.%s", run_names[k]);
    json_t *msgs = hvs_test_tail_json(base_env, topic, NULL), *latest = json_object();
    HVS_REQUIRE(msgs, "hvsctl tail %s", topic);
    size_t i;
    json_t *m;
    *total = json_array_size(msgs);
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        char key[200];
        snprintf(key, sizeof key, "%s/%lld", json_string_value(json_object_get(v, "building_id")),
                 (long long)json_integer_value(json_object_get(v, "issued_at")));
        json_object_set(latest, key, v);
    }
    json_decref(msgs);
    return latest;
}

static void teardown(void) {
    for (int k = 0; k < RUNS; k++) {
        hvs_test_proc_stop(&w[k]);
        json_decref(runs[k]);
        if (hvs_test_failed == 0 && logpath[k][0])
            unlink(logpath[k]);
        else if (logpath[k][0])
            fprintf(stderr, "refresher log: %s\n", logpath[k]);
    }
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_fc);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    for (int k = 0; k < RUNS; k++)
        hvs_test_proc_stop(&redis[k]);
}

static void services(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    for (int k = 0; k < RUNS; k++)
        HVS_REQUIRE(hvs_test_redis_start(&redis[k], 0) == 0, "redis");
    snprintf(base_env, sizeof base_env,
             "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info", broker.addr);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.15m", &enc_agg, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_FORECAST, "forecasts.baseline", &enc_fc, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0,
        "setup: %s", err.msg);
    for (int b = 0; b < NB; b++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern_high_density\","
                 "\"commissioning_date\":1577836800000,\"latitude\":47.37,\"longitude\":8.54,"
                 "\"heated_area_m2\":%.1f,\"construction_year\":2015,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 bld(b), area[b]);
        send_json(enc_bld, "topology", bld(b), json);
    }
    flush();
}

/* Everything, once: the three runs side by side (their waits overlap). */
static void world(void) {
    static bool done;
    if (done)
        return;
    done = true;
    int64_t t0 = hvs_test_now_ms();
    services();
    for (int i = 0; i < HOURS; i++) /* quarters_ahead: the quarters first */
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < 4; j++)
                send_quarter(1, b, i, j);
    for (int i = 0; i < HOURS; i++) /* baselines_ahead: the baselines first */
        for (int b = 0; b < NB; b++)
            send_baseline(2, b, i);
    flush();
    for (int i = 0; i < HOURS; i++)
        for (int b = 0; b < NB; b++) {
            send_baseline(1, b, i);
            for (int j = 0; j < 4; j++)
                send_quarter(2, b, i, j);
        }
    flush();
    for (int k = 0; k < RUNS; k++)
        start_worker(k);
    /* interleaved: the baselines of hour i, then its quarters, read before the next hour */
    for (int i = 0; i < HOURS; i++) {
        for (int b = 0; b < NB; b++)
            send_baseline(0, b, i);
        for (int j = 0; j < 4; j++)
            for (int b = 0; b < NB; b++)
                send_quarter(0, b, i, j);
        flush();
        wait_inputs(0, (double)NB * 4 * (i + 1), (double)NB * (i + 1));
    }
    int64_t end = hvs_test_now_ms() + 60000; /* returns as soon as complete */
    for (int k = 0; k < RUNS; k++) {
        for (;;) {
            runs[k] = refreshes(k, &totals[k]);
            if (json_object_size(runs[k]) >= (size_t)NB * TICKS || hvs_test_now_ms() > end)
                break;
            json_decref(runs[k]);
            usleep(150000);
        }
        took[k] = (double)(hvs_test_now_ms() - t0) / 1000.0;
    }
    for (int k = 0; k < RUNS; k++) {
        wait_inputs(k, (double)NB * 4 * HOURS, (double)NB * HOURS);
        hvs_test_proc_stop(&w[k]);
        json_decref(runs[k]);
        runs[k] = refreshes(k, &totals[k]);
        printf("%s: %zu (building, tick), %zu refreshes, all in by %.1f s\n", run_names[k],
               json_object_size(runs[k]), totals[k], took[k]);
    }
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* Run k: every tick of both buildings refreshed, online. */
static void check_run(int k) {
    world();
    HVS_CHECK(json_object_size(runs[k]) == (size_t)NB * TICKS,
              "%s: %zu of %d (building, tick) refreshed", run_names[k], json_object_size(runs[k]),
              NB * TICKS);
}

/* Runs a and b: the same latest refreshes, value by value. */
static void compare(int a, int b) {
    check_run(a);
    check_run(b);
    size_t diff = 0;
    const char *key;
    json_t *v;
    json_object_foreach(runs[a], key, v) {
        json_t *o = json_object_get(runs[b], key);
        if (!o || !json_equal(o, v)) {
            if (diff < 20)
                fprintf(stderr, "differs: %s\n", key);
            if (diff++ < 3) {
                char *s1 = json_dumps(v, JSON_COMPACT);
                char *s2 = o ? json_dumps(o, JSON_COMPACT) : NULL;
                fprintf(stderr, "%s: %s\n  %s: %s\n", run_names[a], s1, run_names[b],
                        s2 ? s2 : "(none)");
                free(s1), free(s2);
            }
        }
    }
    HVS_CHECK(diff == 0 && json_object_size(runs[a]) == json_object_size(runs[b]),
              "%s and %s: %zu of %zu latest refreshes differ", run_names[a], run_names[b], diff,
              json_object_size(runs[a]));
}

static void test_interleaved(void) {
    check_run(0);
    /* live, each tick once: nothing was late */
    HVS_CHECK(totals[0] == (size_t)NB * TICKS, "interleaved: %zu refreshes published", totals[0]);
}
static void test_quarters_ahead(void) { compare(0, 1); }
static void test_baselines_ahead(void) { compare(0, 2); }

static const hvs_test_case_t cases[] = {
    {"interleaved", test_interleaved},
    {"quarters_ahead_same_refreshes", test_quarters_ahead},
    {"baselines_ahead_same_refreshes", test_baselines_ahead},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
