/*
 * test_fx_replay_it - a replay gives the same feature vectors as live operation whatever the
 * relative speed of the two inputs (issue 18, "weather history gets lost in a replay").
 *
 * Two buildings (the building series and one apartment each) x 31 days of hourly aggregates and
 * weather (per hour: a forecast 6 h ahead, then the previous hour's observation, in issue order)
 * run through hvs-features (real redis-server and hvs-devbroker) three ways, each on its own
 * topics and a flushed Redis:
 *   interleaved  the worker runs while the history is published hour by hour (live-like);
 *   before       all the weather published, then all the aggregates, then the worker started:
 *                whichever input the consumer reads first runs weeks ahead of the other (past
 *                the 14-day weather ring when it is the weather);
 *   after        the worker runs, reads all the aggregates, and only then gets the weather.
 * The latest vector of every entity-hour (read back from the features topic) must be identical,
 * value by value, in the three; each entity-hour gets exactly one vector (none went out early
 * without its weather), none is flagged missing_weather and its temperature is the observation;
 * no DATA_QUALITY alert. Then live with a weather feed that never comes: the vectors still go out,
 * flagged missing_weather, once the idle timeout has passed.
 */
#include <jansson.h>
#include <math.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */
#define NB 2
#define HOURS (31 * 24)
#define ENTITIES (NB * 2)

static hvs_test_proc_t redis, broker, w;
static char base_env[1024], logpath[256];
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld;
static json_t *runs[3];

static double heat(int b, bool apt, int i) {
    return (apt ? 0.6 : 1.4) + 0.1 * b + 0.02 * (i % 24) + 0.0005 * i;
}
static double obs_temp(int b, int i) { return 1.0 + b + 0.03 * (i % 97) - 0.4 * ((i % 24) < 6); }

static void send_json(hvs_encoder_t *enc, const char *topic, const char *key, const char *json) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                    hvs_encoder_encode(enc, &buf, &len, &err) == 0 &&
                    hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                      len, &err) == 0,
                "send %s: %s (%s)", topic, err.msg, json);
}

static void flush(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

static void send_agg(const char *topic, int b, bool apt, int i) {
    char json[2048], bld[16];
    hvs_ms_t ws = T0 + i * HOUR;
    snprintf(bld, sizeof bld, "bldg_r%d", b);
    snprintf(
        json, sizeof json,
        "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,\"window_end\":%lld,"
        "\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%.6f,\"hot_water_litres\":10.0,"
        "\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,\"room_temp_max_c\":21.5,"
        "\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,\"readings_expected\":4,"
        "\"readings_seen\":4,\"reporting_apartments\":%s,\"known_apartments\":%s,"
        "\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
        bld, apt ? "\"apt_1\"" : "null", (long long)ws, (long long)(ws + HOUR), HOUR,
        heat(b, apt, i), apt ? "null" : "1", apt ? "null" : "1", (long long)(ws + HOUR));
    send_json(enc_agg, topic, bld, json);
}

static void send_wx(const char *topic, int b, hvs_ms_t hour, hvs_ms_t issued, bool observed,
                    double temp) {
    char json[1024], bld[16];
    snprintf(bld, sizeof bld, "bldg_r%d", b);
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.3f,"
             "\"relative_humidity_pct\":80.0,\"cloud_cover_pct\":50.0,"
             "\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,\"provider\":\"test\"}",
             bld, (long long)hour, (long long)issued, observed ? "OBSERVED" : "FORECAST", temp);
    send_json(enc_wx, topic, bld, json);
}

/* Step i of building b's weather, in issue order: the forecast of hour i + 6 issued at i, the
 * observation of hour i - 1 issued at i + 20 min. */
static void send_wx_step(const char *topic, int b, int i) {
    hvs_ms_t t = T0 + i * HOUR;
    if (i + 6 < HOURS)
        send_wx(topic, b, t + 6 * HOUR, t, false, obs_temp(b, i + 6) - 1.5);
    if (i >= 1)
        send_wx(topic, b, t - HOUR, t + 20 * 60000, true, obs_temp(b, i - 1));
}

static void send_agg_step(const char *topic, int b, int i) {
    if (i < HOURS) {
        send_agg(topic, b, false, i);
        send_agg(topic, b, true, i);
    }
}

/* ---- the worker, per run ------------------------------------------------------------------- */

static char env[2048];

static void run_env(const char *run) {
    snprintf(env, sizeof env,
             "%s HVS_TOPIC_AGGREGATES_HOURLY=agg.%s HVS_TOPIC_WEATHER_HOURLY=wx.%s "
             "HVS_TOPIC_FEATURES_HOURLY=feat.%s HVS_TOPIC_ALERTS=alerts.%s",
             base_env, run, run, run, run);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-fx-replay-%d-%s.log", (int)getpid(), run);
}

static void start_worker(const char *run, const char *idle) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=fx-replay-%s %s --batch 500 --idle-timeout %s", env, run,
             HVS_TEST_FEATURES, idle);
    HVS_REQUIRE(hvs_test_spawn(&w, cmd, logpath) == 0, "spawn hvs-features");
}

static void flush_redis(void) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "connect");
    hvs_redis_command(r, NULL, &err, "FLUSHALL");
    hvs_redis_destroy(r);
}

/* The latest vector (highest revision) per entity-hour of topic feat.<run>; *total messages. */
static json_t *vectors(const char *run, size_t *total) {
    char topic[64];
    snprintf(topic, sizeof topic, "feat.%s", run);
    json_t *msgs = hvs_test_tail_json(env, topic, NULL), *latest = json_object();
    size_t i;
    json_t *m;
    *total = json_array_size(msgs);
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        const char *apt = json_string_value(json_object_get(v, "apartment_id"));
        char key[200];
        snprintf(key, sizeof key, "%s/%s/%lld",
                 json_string_value(json_object_get(v, "building_id")), apt ? apt : "-",
                 (long long)json_integer_value(json_object_get(v, "target_hour")));
        json_t *old = json_object_get(latest, key);
        if (!old || json_integer_value(json_object_get(v, "revision")) >=
                        json_integer_value(json_object_get(old, "revision")))
            json_object_set(latest, key, v);
    }
    json_decref(msgs);
    return latest;
}

static json_t *wait_vectors(const char *run, size_t want, int max_ms, size_t *total) {
    int64_t end = hvs_test_now_ms() + max_ms;
    for (;;) {
        json_t *v = vectors(run, total);
        if (json_object_size(v) >= want || hvs_test_now_ms() > end)
            return v;
        json_decref(v);
        usleep(150000);
    }
}

static long log_count(const char *what) {
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "grep -c '%s' %s", what, logpath);
    hvs_test_run(cmd, NULL, 0, &out, NULL);
    long n = out ? atol(out) : -1;
    free(out);
    return n;
}

static bool flagged(json_t *v, const char *flag) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(v, "quality_flags"), i,
                       f) if (json_is_string(f) &&
                              strcmp(json_string_value(f), flag) == 0) return true;
    return false;
}

static double feat(json_t *v, const char *name) {
    json_t *x = json_array_get(json_object_get(v, "values"), (size_t)hvs_features_index(name));
    return json_is_number(x) ? json_number_value(x) : NAN;
}

/* ---- services and the three runs ------------------------------------------------------------ */

static void teardown(void) {
    hvs_test_proc_stop(&w);
    for (int k = 0; k < 3; k++)
        json_decref(runs[k]);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_failed)
        fprintf(stderr, "features logs: /tmp/hvs-test-fx-replay-%d-*.log\n", (int)getpid());
}

static void services(void) {
    static bool up;
    if (up)
        return;
    up = true;
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    snprintf(base_env, sizeof base_env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1 HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &enc_agg, &err) ==
                0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, "weather.hourly", &enc_wx, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0,
        "setup: %s", err.msg);
    for (int b = 0; b < NB; b++) {
        char json[1024], bld[16];
        snprintf(bld, sizeof bld, "bldg_r%d", b);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"passive\",\"commissioning_date\":"
                 "1700000000000,\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":500.0,"
                 "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[{\"apartment_id\":\"apt_1\",\"area_m2\":70.0,\"floor\":1,"
                 "\"rooms\":[],\"occupied_since\":null}],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 bld);
        send_json(enc_bld, "topology", bld, json);
    }
    flush();
}

static const char *const run_names[3] = {"interleaved", "before", "after"};

/* The history through the worker one way; its latest vectors in runs[k]. */
static void run(int k) {
    services();
    if (runs[k])
        return;
    const char *name = run_names[k];
    int64_t t0 = hvs_test_now_ms();
    flush_redis();
    run_env(name);
    char agg[64], wx[64];
    snprintf(agg, sizeof agg, "agg.%s", name);
    snprintf(wx, sizeof wx, "wx.%s", name);
    if (k == 0) { /* live-like: the worker reads the hours as they come */
        start_worker(name, "30s");
        for (int i = 0; i <= HOURS; i++) {
            for (int b = 0; b < NB; b++) {
                send_wx_step(wx, b, i);
                send_agg_step(agg, b, i);
            }
            if (i % 96 == 0)
                flush();
        }
        flush();
    } else if (k == 1) { /* the weather backfilled first, the worker started on the lot */
        for (int i = 0; i <= HOURS; i++)
            for (int b = 0; b < NB; b++)
                send_wx_step(wx, b, i);
        flush();
        for (int i = 0; i <= HOURS; i++)
            for (int b = 0; b < NB; b++)
                send_agg_step(agg, b, i);
        flush();
        start_worker(name, "30s");
    } else { /* the aggregates first, read by a running worker; the weather only after them */
        start_worker(name, "30s");
        for (int i = 0; i <= HOURS; i++)
            for (int b = 0; b < NB; b++)
                send_agg_step(agg, b, i);
        flush();
        usleep(1500000); /* the worker reads them meanwhile */
        for (int i = 0; i <= HOURS; i++)
            for (int b = 0; b < NB; b++)
                send_wx_step(wx, b, i);
        flush();
    }
    size_t total = 0;
    runs[k] = wait_vectors(name, ENTITIES * HOURS, 20000, &total);
    usleep(300000); /* anything more (a vector sent twice) would show now */
    json_decref(vectors(name, &total));
    hvs_test_proc_stop(&w);
    printf("%s: %zu entity-hours, %zu vectors, %.1f s\n", name, json_object_size(runs[k]), total,
           (double)(hvs_test_now_ms() - t0) / 1000.0);
    HVS_CHECK(json_object_size(runs[k]) == ENTITIES * HOURS,
              "%s: every entity-hour has a vector: %zu", name, json_object_size(runs[k]));
    HVS_CHECK(total == ENTITIES * HOURS,
              "%s: one vector per entity-hour (none sent early without its weather): %zu", name,
              total);
    size_t i = 0, missing = 0, wrong = 0;
    const char *key;
    json_t *v;
    json_object_foreach(runs[k], key, v) {
        missing += flagged(v, "missing_weather");
        int h = (int)((json_integer_value(json_object_get(v, "target_hour")) - T0) / HOUR);
        int b = json_string_value(json_object_get(v, "building_id"))[6] - '0';
        wrong += fabs(feat(v, "temperature_c") - obs_temp(b, h)) > 1e-9;
        i++;
    }
    HVS_CHECK(missing == 0, "%s: %zu vectors flagged missing_weather", name, missing);
    HVS_CHECK(wrong == 0, "%s: %zu vectors without their hour's observed temperature", name, wrong);
    long alerts = log_count("feature vectors of");
    HVS_CHECK(alerts == 0, "%s: %ld DATA_QUALITY alerts in the log", name, alerts);
    if (hvs_test_failed == 0)
        unlink(logpath);
}

static void compare(int a, int b) {
    run(a), run(b);
    size_t diff = 0;
    const char *key;
    json_t *v;
    json_object_foreach(runs[a], key, v) {
        json_t *o = json_object_get(runs[b], key);
        if (!o || !json_equal(o, v)) {
            if (diff++ < 3) {
                char *s1 = json_dumps(v, JSON_COMPACT),
                     *s2 = o ? json_dumps(o, JSON_COMPACT) : NULL;
                fprintf(stderr, "%s: %s\n  %s: %s\n", run_names[a], s1, run_names[b],
                        s2 ? s2 : "(none)");
                free(s1), free(s2);
            }
        }
    }
    HVS_CHECK(diff == 0 && json_object_size(runs[a]) == json_object_size(runs[b]),
              "%s and %s: %zu of %zu vectors differ", run_names[a], run_names[b], diff,
              json_object_size(runs[a]));
}

static void test_interleaved(void) { run(0); }
static void test_weather_before(void) { compare(0, 1); }
static void test_weather_after(void) { compare(0, 2); }

/* Live, the weather never comes: once caught up and idle for the timeout, the vectors go out
 * flagged missing_weather (the wait is bounded). */
static void test_missing_weather_live(void) {
    services();
    run_env("nowx");
    flush_redis();
    start_worker("nowx", "2s");
    for (int i = 0; i < 48; i++)
        send_agg_step("agg.nowx", 0, i);
    flush();
    /* hours 0..45: their wait (HVS_FEAT_WEATHER_WAIT, 2 h past the hour's end) is behind the
     * aggregates' watermark (48 h) once the missing weather counts as idle; 46 and 47 still wait
     * (their turn comes as wall time passes) */
    size_t total = 0;
    json_t *v = wait_vectors("nowx", 2 * 46, 15000, &total);
    hvs_test_proc_stop(&w);
    HVS_CHECK(json_object_size(v) == 2 * 46, "every entity-hour whose wait passed went out: %zu",
              json_object_size(v));
    size_t missing = 0;
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
        missing += flagged(x, "missing_weather") && isnan(feat(x, "temperature_c"));
    HVS_CHECK(missing == json_object_size(v), "%zu of %zu flagged missing_weather", missing,
              json_object_size(v));
    json_decref(v);
    if (hvs_test_failed == 0)
        unlink(logpath);
}

static const hvs_test_case_t cases[] = {
    {"interleaved", test_interleaved},
    {"weather_before_same_vectors", test_weather_before},
    {"weather_after_same_vectors", test_weather_after},
    {"missing_weather_live", test_missing_weather_live},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
