/*
 * test_features_it - hvs-features as a process against a real redis-server and hvs-devbroker.
 * Topology, nine days of hourly aggregates (two apartments and the building) and weather (a
 * forecast 6 h ahead and the observation after each hour) go in as Avro; what comes out is read
 * back with hvsctl and from Redis and checked against values worked out here:
 *   every entity-hour gets a vector; its target is that hour's heating, use_lag_24 the heating
 *   of 24 h before, temperature_c the observation, as_of the observation's issue time, and
 *   apartment_id null for the building; a day where 20 % of the hours have no weather gives
 *   those vectors null (missing, never 0) temperatures with the missing_weather flag and a
 *   DATA_QUALITY alert on `alerts`; every kind of bad input lands in its topic's dead letters
 *   with its reason; the state is in Redis; and after Redis loses everything (FLUSHALL) a
 *   restarted worker rebuilds it from the inputs: vectors of new hours have their lags and
 *   rolling stats, old hours are not published again.
 */
#include <jansson.h>
#include <math.h>

#include "agg_topics.h"
#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */
#define DAYS 9
#define STORM_DAY 5

static hvs_test_proc_t redis, broker;
static char env[1024], logpath[256];
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld;

static double heat(const char *apt, int i) {
    return (apt[0] == '-' ? 1.5 : apt[4] == '1' ? 0.5 : 0.8) + 0.01 * (i % 24) + 0.001 * i;
}
static double obs_temp(int i) { return 2.0 + 0.02 * i - 0.5 * ((i % 24) < 6); }
static bool storm_hour(int i) { return i / 24 == STORM_DAY && (i % 24) % 5 == 0; }

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

/* key NULL: a record without a key */
static void send_raw(const char *topic, const char *key, const void *buf, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0,
                                  buf, len, &err) == 0,
                "send: %s", err.msg);
}

/* An Aggregate of `json` with its building_id replaced by `bld` (bytes JSON cannot carry),
 * sent with `key`. */
static void send_agg_patched(const char *json, const char *bld, const char *key) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc_agg), f;
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                    avro_value_get_by_name(v, "building_id", &f, NULL) == 0 &&
                    avro_value_set_string(&f, bld) == 0 &&
                    hvs_encoder_encode(enc_agg, &buf, &len, &err) == 0,
                "patched aggregate: %s", err.msg);
    send_raw("aggregates.hourly", key, buf, len);
}

static void agg_json(char *buf, size_t cap, const char *bld, const char *apt, hvs_ms_t ws,
                     int64_t size, const char *heat_text) {
    char a[128];
    if (apt)
        snprintf(a, sizeof a, "\"%s\"", apt);
    else
        snprintf(a, sizeof a, "null");
    snprintf(
        buf, cap,
        "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,\"window_end\":%lld,"
        "\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%s,\"hot_water_litres\":10.0,"
        "\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,\"room_temp_max_c\":21.5,"
        "\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,\"readings_expected\":4,"
        "\"readings_seen\":4,\"reporting_apartments\":%s,\"known_apartments\":%s,"
        "\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
        bld, a, (long long)ws, (long long)(ws + size), (long long)size, heat_text,
        apt ? "null" : "2", apt ? "null" : "2", (long long)(ws + size));
}

static void send_agg(const char *apt, int i) {
    char json[2048], h[32];
    snprintf(h, sizeof h, "%.6f", heat(apt ? apt : "-", i));
    agg_json(json, sizeof json, "bldg_f", apt, T0 + i * HOUR, HOUR, h);
    send_json(enc_agg, "aggregates.hourly", "bldg_f", json);
}

static void send_wx(hvs_ms_t hour, hvs_ms_t issued, bool observed, const char *temp) {
    char json[1024];
    snprintf(
        json, sizeof json,
        "{\"building_id\":\"bldg_f\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
        "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%s,\"relative_humidity_pct\":80.0,"
        "\"cloud_cover_pct\":50.0,\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,"
        "\"provider\":\"test\"}",
        (long long)hour, (long long)issued, observed ? "OBSERVED" : "FORECAST", temp);
    send_json(enc_wx, "weather.hourly", "bldg_f", json);
}

/* Hours [from, to): the building's weather then its aggregates. */
static void send_hours(int from, int to) {
    for (int i = from; i < to; i++) {
        hvs_ms_t h = T0 + i * HOUR;
        char t[32];
        if (!storm_hour(i)) {
            snprintf(t, sizeof t, "%.3f", obs_temp(i) - 1.0);
            send_wx(h, h - 6 * HOUR, false, t);
            snprintf(t, sizeof t, "%.3f", obs_temp(i));
            send_wx(h, h + HOUR + 20 * 60000, true, t);
        }
        send_agg("apt_1", i);
        send_agg("apt_2", i);
        send_agg(NULL, i);
    }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

static int bad_inputs(void) {
    char json[2048];
    int n = 0;
    /* aggregates: a 15-minute window, a negative heating, braces in an apartment id, garbage */
    agg_json(json, sizeof json, "bldg_f", "apt_1", T0 + 5 * HOUR, 900000, "1.0");
    send_json(enc_agg, "aggregates.hourly", "bldg_f", json), n++;
    agg_json(json, sizeof json, "bldg_f", "apt_1", T0 + 5 * HOUR, HOUR, "-3.0");
    send_json(enc_agg, "aggregates.hourly", "bldg_f", json), n++;
    agg_json(json, sizeof json, "bldg_f", "apt_{x}", T0 + 5 * HOUR, HOUR, "1.0");
    send_json(enc_agg, "aggregates.hourly", "bldg_f", json), n++;
    send_raw("aggregates.hourly", "bldg_f", "\x00\x00\x00\x00\x04\x02", 6), n++; /* truncated */
    /* a NaN heating (Avro carries NaN; JSON cannot: patched into the value) */
    agg_json(json, sizeof json, "bldg_f", "apt_1", T0 + 6 * HOUR, HOUR, "1.0");
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc_agg), f, b;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0, "json");
    avro_value_get_by_name(v, "heating_kwh", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_double(&b, NAN);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(enc_agg, &buf, &len, &err) == 0, "encode");
    send_raw("aggregates.hourly", "bldg_f", buf, len), n++;
    /* weather: an absurd temperature, an hour not on the hour, an observation before its end */
    send_wx(T0 + 7 * HOUR, T0 + 8 * HOUR + 60000, true, "200.0"), n++;
    send_wx(T0 + 7 * HOUR + 60000, T0 + 8 * HOUR + 60000, true, "3.0"), n++;
    send_wx(T0 + 7 * HOUR, T0 + 7 * HOUR + 60000, true, "3.0"), n++;
    /* ids and keys (issue 13): a building id with braces, one with invalid UTF-8, an aggregate
     * without a Kafka key, weather whose key names another building */
    agg_json(json, sizeof json, "bldg_{f}", "apt_1", T0 + 5 * HOUR, HOUR, "1.0");
    send_json(enc_agg, "aggregates.hourly", "bldg_{f}", json), n++;
    agg_json(json, sizeof json, "bldg_f", "apt_1", T0 + 5 * HOUR, HOUR, "1.0");
    send_agg_patched(json, "bldg_f\xc3", "bldg_f\xc3"), n++;
    send_agg_patched(json, "bldg_f", NULL), n++;
    snprintf(json, sizeof json,
             "{\"building_id\":\"bldg_f\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"OBSERVED\",\"temperature_c\":3.0,"
             "\"relative_humidity_pct\":80.0,\"cloud_cover_pct\":50.0,"
             "\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,\"provider\":\"test\"}",
             (long long)(T0 + 7 * HOUR), (long long)(T0 + 8 * HOUR + 60000));
    send_json(enc_wx, "weather.hourly", "bldg_g", json), n++;
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush");
    return n;
}

static void start_worker(hvs_test_proc_t *w) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=fx-it %s --batch 500 --idle-timeout 1h", env,
             HVS_TEST_FEATURES);
    HVS_REQUIRE(hvs_test_spawn(w, cmd, logpath) == 0, "spawn hvs-features");
}

/* Latest vector per entity-hour, and how many messages in all. */
static json_t *vectors(size_t *total) {
    json_t *msgs = hvs_test_tail_json(env, "features.hourly", NULL), *latest = json_object();
    size_t i;
    json_t *m;
    *total = json_array_size(msgs);
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        const char *apt = json_string_value(json_object_get(v, "apartment_id"));
        char key[200];
        snprintf(key, sizeof key, "%s/%lld", apt ? apt : "-",
                 (long long)json_integer_value(json_object_get(v, "target_hour")));
        json_object_set(latest, key, v);
    }
    json_decref(msgs);
    return latest;
}

static json_t *wait_vectors(size_t want, size_t *total) {
    for (int i = 0; i < 600; i++) {
        json_t *v = vectors(total);
        if (json_object_size(v) >= want)
            return v;
        json_decref(v);
        usleep(200000);
    }
    return vectors(total);
}

/* A topic once it holds at least n messages (the bad inputs may come after the last vector). */
static json_t *wait_topic(const char *topic, size_t n) {
    for (int i = 0; i < 150; i++) {
        json_t *m = hvs_test_tail_json(env, topic, NULL);
        if (json_array_size(m) >= n)
            return m;
        json_decref(m);
        usleep(200000);
    }
    return hvs_test_tail_json(env, topic, NULL);
}

static double feat(json_t *v, const char *name) {
    json_t *x = json_array_get(json_object_get(v, "values"), (size_t)hvs_features_index(name));
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static json_t *vec(json_t *all, const char *apt, int i) {
    char key[200];
    snprintf(key, sizeof key, "%s/%lld", apt, (long long)(T0 + i * HOUR));
    return json_object_get(all, key);
}

static long long count_keys(const char *pattern) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    long long n = -1;
    if (hvs_redis_connect(redis.addr, NULL, &r, &err))
        return -1;
    redisReply *rep = NULL;
    if (hvs_redis_command(r, &rep, &err, "KEYS %s", pattern) == 0 && rep &&
        rep->type == REDIS_REPLY_ARRAY)
        n = (long long)rep->elements;
    if (rep)
        freeReplyObject(rep);
    hvs_redis_destroy(r);
    return n;
}

static long long redis_int(const char *fmt, const char *arg) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    long long n = -1;
    if (hvs_redis_connect(redis.addr, NULL, &r, &err))
        return -1;
    redisReply *rep = NULL;
    if (hvs_redis_command(r, &rep, &err, fmt, arg) == 0 && rep && rep->type == REDIS_REPLY_INTEGER)
        n = rep->integer;
    if (rep)
        freeReplyObject(rep);
    hvs_redis_destroy(r);
    return n;
}

/* ---- the world, in stages: each brought about once, on first use, in order --------------- */

enum { FIRST_RUN = 1, REBUILT };
static int stage;
static hvs_test_proc_t w;
static int nbad;
static json_t *all;   /* latest vector per entity-hour */
static json_t *first; /* ... as the first run left them (before Redis lost everything) */
static size_t total;  /* vectors published in all */
static size_t before; /* ... before Redis lost everything */

static void teardown(void) {
    hvs_test_proc_stop(&w);
    json_decref(all);
    json_decref(first);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "features log: %s\n", logpath);
}

/* Services; topology, nine days and the bad inputs; the worker (left running) until every
 * entity-hour has a vector. */
static void first_run(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1 HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-features-%d.log", (int)getpid());
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
    send_json(
        enc_bld, "topology", "bldg_f",
        "{\"building_id\":\"bldg_f\",\"archetype\":\"passive\",\"commissioning_date\":1700000000000,"
        "\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":900.0,\"construction_year\":2015,"
        "\"insulation\":null,\"holiday_region\":\"CH-ZH\",\"apartments\":[{\"apartment_id\":\"apt_1\","
        "\"area_m2\":70.0,\"floor\":1,\"rooms\":[],\"occupied_since\":null},{\"apartment_id\":\"apt_2\","
        "\"area_m2\":70.0,\"floor\":2,\"rooms\":[],\"occupied_since\":null}],"
        "\"updated_at\":1700000000000,\"deleted\":false}");
    send_hours(0, DAYS * 24);
    nbad = bad_inputs();
    start_worker(&w);
    all = wait_vectors(3 * DAYS * 24, &total);
}

/* Redis loses everything; a new day arrives; the worker, restarted, rebuilds its state. */
static void rebuild(void) {
    hvs_test_proc_stop(&w);
    before = total;
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "connect");
    hvs_redis_command(r, NULL, &err, "FLUSHALL");
    hvs_redis_destroy(r);
    send_hours(DAYS * 24, DAYS * 24 + 24);
    start_worker(&w);
    first = all;
    all = wait_vectors(3 * (DAYS + 1) * 24, &total);
}

/* Brings the world to stage `want` (the stages before it first); a case that needs an earlier
 * stage than the world has reached cannot run (the world only moves on). */
static void to_stage(int want) {
    HVS_REQUIRE(stage <= want, "this case needs stage %d, already at %d (run it earlier)", want,
                stage);
    static void (*const steps[])(void) = {NULL, first_run, rebuild};
    while (stage < want)
        steps[++stage]();
}

/* ---- cases --------------------------------------------------------------------------------- */

static void test_every_entity_hour(void) {
    to_stage(FIRST_RUN);
    HVS_CHECK(json_object_size(all) == 3 * DAYS * 24, "every entity-hour has a vector: %zu",
              json_object_size(all));
}

/* a plain hour: target, lags, weather, as_of, version; the rolling mean computed here */
static void test_plain_hour(void) {
    to_stage(FIRST_RUN);
    int i = 190;
    json_t *v = vec(all, "apt_2", i);
    if (getenv("FX_DEBUG")) {
        char *d = json_dumps(v, JSON_COMPACT);
        fprintf(stderr, "vector: %s\n", d);
        free(d);
    }
    HVS_CHECK(v && fabs(json_real_value(json_object_get(v, "target")) - heat("apt_2", i)) < 1e-9 &&
                  fabs(feat(v, "use_lag_24") - heat("apt_2", i - 24)) < 1e-9 &&
                  fabs(feat(v, "use_lag_168") - heat("apt_2", i - 168)) < 1e-9 &&
                  fabs(feat(v, "temperature_c") - obs_temp(i)) < 1e-9 &&
                  feat(v, "weather_is_forecast") == 0 &&
                  json_integer_value(json_object_get(v, "as_of")) ==
                      T0 + (i + 1) * HOUR + 20 * 60000 &&
                  strcmp(json_string_value(json_object_get(v, "feature_set_version")),
                         hvs_features_version()) == 0 &&
                  json_array_size(json_object_get(v, "names")) == HVS_FEATURES_COUNT,
              "apt_2 hour %d: target, lags, weather, as_of, version", i);
    /* rolling 24 h mean over the 24 hours before, computed here */
    double s = 0;
    for (int k = i - 24; k < i; k++)
        s += heat("apt_2", k);
    HVS_CHECK(v && fabs(feat(v, "use_roll_24_mean") - s / 24) < 1e-9, "rolling mean %g vs %g",
              v ? feat(v, "use_roll_24_mean") : 0, s / 24);
}

static void test_building_vector(void) {
    to_stage(FIRST_RUN);
    int i = 190;
    json_t *bv = vec(all, "-", i);
    HVS_CHECK(bv && json_is_null(json_object_get(bv, "apartment_id")) &&
                  fabs(json_real_value(json_object_get(bv, "target")) - heat("-", i)) < 1e-9,
              "building vector");
}

/* the storm day: 5 of 24 hours without weather */
static void test_storm_day_missing_weather(void) {
    to_stage(FIRST_RUN);
    int nulls = 0, flagged = 0, zeros = 0;
    for (int k = STORM_DAY * 24; k < STORM_DAY * 24 + 24; k++) {
        const char *ents[] = {"apt_1", "apt_2", "-"};
        for (int e = 0; e < 3; e++) {
            json_t *x = vec(all, ents[e], k);
            json_t *t = json_array_get(json_object_get(x, "values"),
                                       (size_t)hvs_features_index("temperature_c"));
            nulls += json_is_null(t);
            zeros += json_is_number(t) && json_number_value(t) == 0;
            size_t fi;
            json_t *fl;
            json_array_foreach(json_object_get(x, "quality_flags"), fi, fl)
                flagged += strcmp(json_string_value(fl), "missing_weather") == 0;
        }
    }
    HVS_CHECK(nulls == 15 && flagged == 15 && zeros == 0,
              "storm day: %d null temperatures, %d flagged, %d zeros (want 15, 15, 0)", nulls,
              flagged, zeros);
}

static void test_storm_day_alert(void) {
    to_stage(FIRST_RUN);
    json_t *alerts = wait_topic("alerts", 1);
    int dq = 0;
    size_t ai;
    json_t *am;
    char want_id[64];
    snprintf(want_id, sizeof want_id, "bldg_f#2024-12-%02d#DATA_QUALITY", 1 + STORM_DAY);
    json_array_foreach(alerts, ai, am) {
        json_t *av = json_object_get(am, "value");
        const char *id = json_string_value(json_object_get(av, "alert_id"));
        json_t *evd = json_object_get(av, "evidence");
        if (id && strcmp(id, want_id) == 0 &&
            strcmp(json_string_value(json_object_get(evd, "feature")), "temperature_c") == 0 &&
            atof(json_string_value(json_object_get(evd, "missing_rate"))) > 0.05)
            dq++;
    }
    HVS_CHECK(dq >= 1 && json_array_size(alerts) == (size_t)dq, "DATA_QUALITY %s: %d of %zu alerts",
              want_id, dq, json_array_size(alerts));
    json_decref(alerts);
}

/* dead letters, each with its reason */
static void test_bad_input_dead_lettered(void) {
    to_stage(FIRST_RUN);
    size_t ai;
    json_t *am;
    json_t *dl = wait_topic("aggregates.hourly.dlq", 8), *dw = wait_topic("weather.hourly.dlq", 4);
    const char *want_a[] = {"bad_window", "value_out_of_range", "bad_id", "truncated",
                            "non_finite"};
    const char *want_w[] = {"value_out_of_range", "bad_window", "value_out_of_range"};
    for (size_t k = 0; k < 5; k++) {
        int hits = 0;
        json_array_foreach(dl, ai, am)
            hits += strcmp(json_string_value(
                               json_object_get(json_object_get(am, "value"), "error_code")),
                           want_a[k]) == 0;
        HVS_CHECK(hits >= 1, "aggregates dead letter %s", want_a[k]);
    }
    /* ids: braces in an apartment id and in a building id, invalid UTF-8; no key */
    int bad_id = 0, mismatch = 0;
    json_array_foreach(dl, ai, am) {
        const char *r = json_string_value(
            json_object_get(json_object_get(am, "value"), "error_code"));
        bad_id += r && strcmp(r, "bad_id") == 0;
        mismatch += r && strcmp(r, "key_mismatch") == 0;
    }
    HVS_CHECK(bad_id == 3 && mismatch == 1, "aggregates: %d bad_id (want 3), %d key_mismatch",
              bad_id, mismatch);
    int range = 0, window = 0, wmismatch = 0;
    json_array_foreach(dw, ai, am) {
        const char *r = json_string_value(
            json_object_get(json_object_get(am, "value"), "error_code"));
        range += r && strcmp(r, want_w[0]) == 0;
        window += r && strcmp(r, want_w[1]) == 0;
        wmismatch += r && strcmp(r, "key_mismatch") == 0;
    }
    HVS_CHECK(range == 2 && window == 1 && wmismatch == 1,
              "weather dead letters: %d value_out_of_range, %d bad_window, %d key_mismatch", range,
              window, wmismatch);
    HVS_CHECK(json_array_size(dl) == 8 && json_array_size(dw) == 4 &&
                  (int)json_array_size(dl) + (int)json_array_size(dw) == nbad,
              "dead letters: %zu aggregates, %zu weather", json_array_size(dl),
              json_array_size(dw));
    json_decref(dl);
    json_decref(dw);
}

static void test_state_in_redis(void) {
    to_stage(FIRST_RUN);
    /* DAYS whole UTC days: DAYS blocks of 24 slots (the ring's blocks start at UTC midnights) */
    HVS_CHECK(redis_int("HLEN %s", "hvs:{bldg_f}:fs:h:apt_1") == DAYS &&
                  redis_int("SCARD %s", "hvs:{bldg_f}:fs:ents") == 3 &&
                  count_keys("hvs:fs:epoch:*") == 1,
              "rings, entity set and epoch marker in Redis");
}

/* after FLUSHALL and a new day: the new hours computed from full lags */
static void test_rebuild_keeps_lags(void) {
    to_stage(REBUILT);
    int i = DAYS * 24 + 12;
    json_t *v = vec(all, "apt_1", i);
    HVS_CHECK(v && fabs(feat(v, "use_lag_24") - heat("apt_1", i - 24)) < 1e-9 &&
                  fabs(feat(v, "use_lag_168") - heat("apt_1", i - 168)) < 1e-9 &&
                  !isnan(feat(v, "use_roll_168_mean")),
              "after the rebuild: lags from before the flush (%g, %g)",
              v ? feat(v, "use_lag_24") : 0, v ? feat(v, "use_lag_168") : 0);
}

/* The messages published after the rebuild are the new day's vectors, and nothing of an hour
 * before the flush but a vector equal to the one published then: a batch published and not
 * yet committed when the first run stopped comes again, unchanged (at least once); a replayed
 * hour must not be published at all, and none differs. */
static void test_rebuild_publishes_no_old_hour(void) {
    to_stage(REBUILT);
    json_t *msgs = hvs_test_tail_json(env, "features.hourly", NULL), *fresh = json_object();
    size_t again = 0, differ = 0;
    for (size_t i = before; i < json_array_size(msgs); i++) {
        json_t *v = json_object_get(json_array_get(msgs, i), "value");
        long long h = json_integer_value(json_object_get(v, "target_hour"));
        const char *apt = json_string_value(json_object_get(v, "apartment_id"));
        char key[200];
        snprintf(key, sizeof key, "%s/%lld", apt ? apt : "-", h);
        if (h >= T0 + DAYS * 24 * HOUR) {
            json_object_set_new(fresh, key, json_true());
        } else if (json_equal(v, json_object_get(first, key))) {
            again++;
        } else if (differ++ < 3) {
            char *d = json_dumps(v, JSON_COMPACT);
            fprintf(stderr, "  %s published again, not as before: %s\n", key, d ? d : "?");
            free(d);
        }
    }
    printf("  after the rebuild: %zu messages: %zu of the new day's entity-hours, %zu earlier "
           "vectors again unchanged, %zu changed\n",
           json_array_size(msgs) - before, json_object_size(fresh), again, differ);
    HVS_CHECK(differ == 0, "no vector of an hour before the flush changed: %zu", differ);
    HVS_CHECK(json_object_size(fresh) == 3 * 24, "the new day's vectors: %zu of %d",
              json_object_size(fresh), 3 * 24);
    HVS_CHECK(again < 3 * DAYS * 24 / 4, "at most a batch's worth again (%zu)", again);
    json_decref(fresh);
    json_decref(msgs);
}

static void test_rebuild_restores_redis_state(void) {
    to_stage(REBUILT);
    HVS_CHECK(redis_int("HLEN %s", "hvs:{bldg_f}:fs:h:apt_1") >= DAYS &&
                  count_keys("hvs:fs:epoch:*") == 1,
              "state rebuilt in Redis");
}

static void test_rebuild_logged(void) {
    to_stage(REBUILT);
    hvs_test_proc_stop(&w);
    char grep[512], *out = NULL;
    snprintf(grep, sizeof grep, "grep -c 'rebuilding by replaying' %s", logpath);
    hvs_test_run(grep, NULL, 0, &out, NULL);
    HVS_CHECK(out && atoi(out) >= 1, "the worker said it rebuilt: %s", out ? out : "");
    free(out);
}

static const hvs_test_case_t cases[] = {
    {"every_entity_hour_has_vector", test_every_entity_hour},
    {"plain_hour_target_lags_weather", test_plain_hour},
    {"building_vector", test_building_vector},
    {"storm_day_missing_weather_null_and_flagged", test_storm_day_missing_weather},
    {"storm_day_data_quality_alert", test_storm_day_alert},
    {"bad_input_dead_lettered", test_bad_input_dead_lettered},
    {"state_in_redis", test_state_in_redis},
    {"rebuild_keeps_lags", test_rebuild_keeps_lags},
    {"rebuild_publishes_no_old_hour", test_rebuild_publishes_no_old_hour},
    {"rebuild_restores_redis_state", test_rebuild_restores_redis_state},
    {"rebuild_logged", test_rebuild_logged},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
