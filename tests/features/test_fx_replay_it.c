/*
 * test_fx_replay_it - a replay gives the same feature vectors as live operation whatever the
 * relative speed of the two inputs (issue 18, "weather history gets lost in a replay").
 *
 * Two buildings (the building series and one apartment each) x 31 days of hourly aggregates and
 * weather (per hour: a forecast 6 h ahead, then the previous hour's observation, in issue order)
 * run through hvs-features (real redis-server and hvs-devbroker) three ways at once, each with
 * its own worker, topics and redis-server:
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

#define RUNS 4 /* the three ways, and the live run without weather */

static hvs_test_proc_t broker, redis[RUNS], w[RUNS];
static char base_env[1024], env[RUNS][2048], logpath[RUNS][256];
static const char *const run_names[RUNS] = {"interleaved", "before", "after", "nowx"};
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld;
static json_t *runs[RUNS];
static size_t totals[RUNS];
static double took[RUNS];

static double heat(int b, bool apt, int i) {
    return (apt ? 0.6 : 1.4) + 0.1 * b + 0.02 * (i % 24) + 0.0005 * i;
}
static double obs_temp(int b, int i) { return 1.0 + b + 0.03 * (i % 97) - 0.4 * ((i % 24) < 6); }

/* The history is encoded once (JSON -> Avro is the slow part) and the bytes sent to each run's
 * topics. */
typedef struct cached {
    void *buf;
    size_t len;
} cached_t;
static cached_t agg_cache[HOURS][NB][2], wx_cache[HOURS + 1][NB][2];

static void send_json(hvs_encoder_t *enc, const char *topic, const char *key, const char *json,
                      cached_t *c) {
    hvs_err_t err = {0};
    if (!c || !c->buf) {
        avro_value_t *v = hvs_encoder_value(enc);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                        hvs_encoder_encode(enc, &buf, &len, &err) == 0,
                    "encode %s: %s (%s)", topic, err.msg, json);
        if (!c) {
            HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                          len, &err) == 0,
                        "send %s: %s", topic, err.msg);
            return;
        }
        HVS_REQUIRE((c->buf = malloc(len)) != NULL, "oom");
        memcpy(c->buf, buf, len);
        c->len = len;
    }
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), c->buf,
                                  c->len, &err) == 0,
                "send %s: %s", topic, err.msg);
}

static void flush(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

static void send_agg(const char *topic, int b, bool apt, int i) {
    char json[4096] = "", bld[16];
    cached_t *c = &agg_cache[i][b][apt];
    /* eight rooms with long names: an aggregate is several times a weather record's size, so a
     * consumer fetching both by bytes reads the weather weeks ahead of the aggregates */
    char rooms[2400] = "";
    for (int r = 0; r < 8; r++)
        snprintf(rooms + strlen(rooms), sizeof rooms - strlen(rooms),
                 "%s{\"room\":\"room_%d_with_a_rather_long_name_as_some_devices_send\","
                 "\"temp_mean_c\":null,\"temp_min_c\":null,\"temp_max_c\":null,"
                 "\"temp_std_c\":null,\"setpoint_mean_c\":null,\"valve_mean_pct\":null,"
                 "\"readings_seen\":0,\"temp_changes\":0}",
                 r ? "," : "", r);
    hvs_ms_t ws = T0 + i * HOUR;
    snprintf(bld, sizeof bld, "bldg_r%d", b);
    snprintf(
        json, sizeof json,
        "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,\"window_end\":%lld,"
        "\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%.6f,\"hot_water_litres\":10.0,"
        "\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,\"room_temp_max_c\":21.5,"
        "\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,\"readings_expected\":4,"
        "\"readings_seen\":4,\"reporting_apartments\":%s,\"known_apartments\":%s,"
        "\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld,\"rooms\":[%s]}",
        bld, apt ? "\"apt_1\"" : "null", (long long)ws, (long long)(ws + HOUR), HOUR,
        heat(b, apt, i), apt ? "null" : "1", apt ? "null" : "1", (long long)(ws + HOUR), rooms);
    send_json(enc_agg, topic, bld, json, c);
}

static void send_wx(const char *topic, int b, hvs_ms_t hour, hvs_ms_t issued, bool observed,
                    double temp, cached_t *c) {
    char json[1024], bld[16];
    snprintf(bld, sizeof bld, "bldg_r%d", b);
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.3f,"
             "\"relative_humidity_pct\":80.0,\"cloud_cover_pct\":50.0,"
             "\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,\"provider\":\"test\"}",
             bld, (long long)hour, (long long)issued, observed ? "OBSERVED" : "FORECAST", temp);
    send_json(enc_wx, topic, bld, json, c);
}

/* Step i of building b's weather, in issue order: the forecast of hour i + 6 issued at i, the
 * observation of hour i - 1 issued at i + 20 min. */
static void send_wx_step(const char *topic, int b, int i) {
    hvs_ms_t t = T0 + i * HOUR;
    if (i + 6 < HOURS)
        send_wx(topic, b, t + 6 * HOUR, t, false, obs_temp(b, i + 6) - 1.5, &wx_cache[i][b][0]);
    if (i >= 1)
        send_wx(topic, b, t - HOUR, t + 20 * 60000, true, obs_temp(b, i - 1), &wx_cache[i][b][1]);
}

static void send_agg_step(const char *topic, int b, int i) {
    if (i < HOURS) {
        send_agg(topic, b, false, i);
        send_agg(topic, b, true, i);
    }
}

/* ---- the world: services, the inputs, the four workers at once ------------------------------- */

static void start_worker(int k, const char *idle) {
    const char *r = run_names[k];
    snprintf(
        env[k], sizeof env[k],
        "%s HVS_REDIS_URL=%s HVS_TOPIC_AGGREGATES_HOURLY=agg.%s HVS_TOPIC_WEATHER_HOURLY=wx.%s "
        "HVS_TOPIC_FEATURES_HOURLY=feat.%s HVS_TOPIC_ALERTS=alerts.%s",
        base_env, redis[k].addr, r, r, r, r);
    snprintf(logpath[k], sizeof logpath[k], "/tmp/hvs-test-fx-replay-%d-%s.log", (int)getpid(), r);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=fx-replay-%s %s %s --batch 500 --idle-timeout %s", env[k], r,
             k == 1 ? "HVS_KAFKA_MAX_PARTITION_FETCH_BYTES=4096" : "", HVS_TEST_FEATURES, idle);
    HVS_REQUIRE(hvs_test_spawn(&w[k], cmd, logpath[k]) == 0, "spawn hvs-features");
}

/* The latest vector (highest revision) per entity-hour of run k's features topic; *total
 * messages. */
static json_t *vectors(int k, size_t *total) {
    char topic[64];
    snprintf(topic, sizeof topic, "feat.%s", run_names[k]);
    json_t *msgs = hvs_test_tail_json(base_env, topic, NULL), *latest = json_object();
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

static long log_count(int k, const char *what) {
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "grep -c '%s' %s", what, logpath[k]);
    hvs_test_run(cmd, NULL, 0, &out, NULL);
    long n = out ? atol(out) : -1;
    free(out);
    return n;
}

static void teardown(void) {
    for (int k = 0; k < RUNS; k++) {
        hvs_test_proc_stop(&w[k]);
        json_decref(runs[k]);
        if (hvs_test_failed == 0 && logpath[k][0])
            unlink(logpath[k]);
        else if (logpath[k][0])
            fprintf(stderr, "features log: %s\n", logpath[k]);
    }
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    for (int k = 0; k < RUNS; k++)
        hvs_test_proc_stop(&redis[k]);
    for (int i = 0; i <= HOURS; i++)
        for (int b = 0; b < NB; b++)
            for (int e = 0; e < 2; e++) {
                free(wx_cache[i][b][e].buf);
                if (i < HOURS)
                    free(agg_cache[i][b][e].buf);
            }
}

static void services(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    for (int k = 0; k < RUNS; k++)
        HVS_REQUIRE(hvs_test_redis_start(&redis[k], 0) == 0, "redis");
    snprintf(base_env, sizeof base_env,
             "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_HTTP_PORT=-1 "
             "HVS_LOG_LEVEL=info",
             broker.addr);
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
        send_json(enc_bld, "topology", bld, json, NULL);
    }
    flush();
}

/* Everything, once: the four runs side by side (their waits overlap). */
static void world(void) {
    static bool done;
    if (done)
        return;
    done = true;
    int64_t t0 = hvs_test_now_ms();
    services();
    /* before: the weather backfilled first, then the aggregates, the worker started on the lot */
    for (int i = 0; i <= HOURS; i++)
        for (int b = 0; b < NB; b++)
            send_wx_step("wx.before", b, i);
    flush();
    for (int i = 0; i <= HOURS; i++)
        for (int b = 0; b < NB; b++)
            send_agg_step("agg.before", b, i);
    /* after: the aggregates first, read by the running worker, the weather only after them */
    for (int i = 0; i <= HOURS; i++)
        for (int b = 0; b < NB; b++)
            send_agg_step("agg.after", b, i);
    flush();
    for (int k = 0; k < RUNS; k++)
        start_worker(k, k == 3 ? "2s" : "30s");
    /* interleaved: live-like, read as it comes; nowx: the weather never comes */
    for (int i = 0; i <= HOURS; i++) {
        for (int b = 0; b < NB; b++) {
            send_wx_step("wx.interleaved", b, i);
            send_agg_step("agg.interleaved", b, i);
        }
        if (i < 48)
            send_agg_step("agg.nowx", 0, i);
        if (i % 96 == 0)
            flush();
    }
    flush();
    for (int i = 0; i < 100 && log_count(2, "partitions assigned") < 1; i++)
        usleep(100000);
    usleep(1000000); /* the worker reads the aggregates meanwhile */
    for (int i = 0; i <= HOURS; i++)
        for (int b = 0; b < NB; b++)
            send_wx_step("wx.after", b, i);
    flush();
    /* until every entity-hour has a vector (nowx: those whose wait passed, below) */
    size_t want[RUNS] = {ENTITIES * HOURS, ENTITIES * HOURS, ENTITIES * HOURS, 2 * 46};
    int64_t end = hvs_test_now_ms() + 120000; /* returns as soon as complete */
    for (int k = 0; k < RUNS; k++) {
        for (;;) {
            runs[k] = vectors(k, &totals[k]);
            if (json_object_size(runs[k]) >= want[k] || hvs_test_now_ms() > end)
                break;
            json_decref(runs[k]);
            usleep(150000);
        }
        took[k] = (double)(hvs_test_now_ms() - t0) / 1000.0;
    }
    usleep(300000); /* anything more (a vector sent twice) would show now */
    for (int k = 0; k < RUNS; k++) {
        hvs_test_proc_stop(&w[k]);
        json_decref(runs[k]);
        runs[k] = vectors(k, &totals[k]);
        printf("%s: %zu entity-hours, %zu vectors, all in by %.1f s\n", run_names[k],
               json_object_size(runs[k]), totals[k], took[k]);
    }
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

/* ---- cases ---------------------------------------------------------------------------------- */

/* Run k: every entity-hour once, with its observation; no DATA_QUALITY alert. */
static void check_run(int k) {
    world();
    const char *name = run_names[k];
    HVS_CHECK(json_object_size(runs[k]) == ENTITIES * HOURS,
              "%s: every entity-hour has a vector: %zu", name, json_object_size(runs[k]));
    HVS_CHECK(totals[k] == ENTITIES * HOURS,
              "%s: one vector per entity-hour (none sent early without its weather): %zu", name,
              totals[k]);
    size_t missing = 0, wrong = 0;
    const char *key;
    json_t *v;
    json_object_foreach(runs[k], key, v) {
        missing += flagged(v, "missing_weather");
        int h = (int)((json_integer_value(json_object_get(v, "target_hour")) - T0) / HOUR);
        int b = json_string_value(json_object_get(v, "building_id"))[6] - '0';
        wrong += !(fabs(feat(v, "temperature_c") - obs_temp(b, h)) <= 1e-9);
    }
    HVS_CHECK(missing == 0, "%s: %zu vectors flagged missing_weather", name, missing);
    HVS_CHECK(wrong == 0, "%s: %zu vectors without their hour's observed temperature", name, wrong);
    long alerts = log_count(k, "feature vectors of");
    HVS_CHECK(alerts == 0, "%s: %ld DATA_QUALITY alerts in the log", name, alerts);
}

/* Runs a and b: the same latest vectors, value by value. */
static void compare(int a, int b) {
    check_run(a);
    check_run(b);
    size_t diff = 0;
    const char *key;
    json_t *v;
    json_object_foreach(runs[a], key, v) {
        json_t *o = json_object_get(runs[b], key);
        if (!o || !json_equal(o, v)) {
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
              "%s and %s: %zu of %zu vectors differ", run_names[a], run_names[b], diff,
              json_object_size(runs[a]));
}

static void test_interleaved(void) { check_run(0); }
static void test_weather_before(void) { compare(0, 1); }
static void test_weather_after(void) { compare(0, 2); }

/* Live, the weather never comes: once caught up and idle for the timeout (2 s), the vectors go
 * out flagged missing_weather: hours 0..45, whose wait (HVS_FEAT_WEATHER_WAIT, 2 h past the
 * hour's end) the aggregates' watermark (48 h) has passed; 46 and 47 wait for more time. */
static void test_missing_weather_live(void) {
    world();
    json_t *v = runs[3];
    HVS_CHECK(json_object_size(v) == 2 * 46, "every entity-hour whose wait passed went out: %zu",
              json_object_size(v));
    size_t missing = 0;
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
        missing += flagged(x, "missing_weather") && isnan(feat(x, "temperature_c"));
    HVS_CHECK(missing == json_object_size(v), "%zu of %zu flagged missing_weather", missing,
              json_object_size(v));
}

static const hvs_test_case_t cases[] = {
    {"interleaved", test_interleaved},
    {"weather_before_same_vectors", test_weather_before},
    {"weather_after_same_vectors", test_weather_after},
    {"missing_weather_live", test_missing_weather_live},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
