/*
 * test_aggregator_it - hvs-aggregator as a process against a real redis-server and hvs-devbroker.
 * A hand-built stream (readings ingested with hvsctl, broken messages produced raw) goes in;
 * what comes out is read back from the topics with hvsctl and from Redis, and compared with
 * values worked out by hand from the attribution rule:
 *   exact hourly and 15-minute aggregates (alive intervals, lost reports spread, meter
 *   replacement, duplicates and reordering ignored), a late reading producing revision 1,
 *   a too-late one and every kind of bad input dead-lettered with its own reason, the state in
 *   Redis, a restart that publishes nothing twice, and the unknown building/apartment policy.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg_topics.h"
#include "hvs/kafka.h"
#include "hvs/reading.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "persist.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */

static hvs_test_proc_t redis, broker;
static char env[1024], logpath[256];

static char *line(char *buf, size_t len, const char *apt, hvs_ms_t t, const char *readings) {
    char ts[40];
    hvs_time_format_iso8601(t, ts, sizeof ts);
    snprintf(buf, len,
             "{\"timestamp_str\":\"%s\",\"building_id\":\"bldg_t\",\"apartment_id\":\"%s\","
             "\"readings\":[%s]}\n",
             ts, apt, readings);
    return buf;
}

#define HEAT(v) "{\"sensor_type\":\"heating_energy_kwh\",\"value\":" #v "}"
#define WATER(v) "{\"sensor_type\":\"hot_water_litres\",\"value\":" #v "}"
#define ROOM(s, r, v) "{\"sensor_type\":\"" s "\",\"room_name\":\"" r "\",\"value\":" #v "}"

static void ingest(const char *text) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s %s ingest - 2>&1", env, HVS_TEST_HVSCTL);
    char *out = NULL;
    int rc = hvs_test_run(cmd, text, strlen(text), &out, NULL);
    HVS_CHECK(rc == 0, "ingest: %s", out ? out : "");
    free(out);
}

static void good_stream(void) {
    char buf[600], text[20000] = "";
#define ADD(apt, t, r) strcat(text, line(buf, sizeof buf, apt, T0 + (t), r))
    ADD("apt_a", 0,
        HEAT(100.0) "," WATER(1000.0) "," ROOM("room_temp_c", "living",
                                               20.0) "," ROOM("setpoint_temp_c", "living", 21.0));
    ADD("apt_b", 0, HEAT(500.0) "," ROOM("room_temp_c", "bed", 19.0));
    ADD("apt_a", 15 * MIN, HEAT(100.5));
    ADD("apt_b", 15 * MIN, HEAT(500.2));
    ADD("apt_a", 45 * MIN, ROOM("setpoint_temp_c", "living", 20.0));
    ADD("apt_a", 60 * MIN, HEAT(102.0) "," WATER(1010.0));
    ADD("apt_a", 60 * MIN, HEAT(102.0) "," WATER(1010.0));                       /* duplicate */
    ADD("apt_a", 30 * MIN, HEAT(101.0) "," ROOM("room_temp_c", "living", 21.0)); /* reordered */
    ADD("apt_a", 90 * MIN, HEAT(103.0));
    for (int k = 1; k <= 9; k++) {
        char r[100];
        snprintf(r, sizeof r, "{\"sensor_type\":\"heating_energy_kwh\",\"value\":%.1f}",
                 103.0 + 0.5 * k);
        ADD("apt_a", 90 * MIN + k * 30 * MIN, r);
        if (k == 5) {
            ADD("apt_b", 4 * HOUR + 15 * MIN, HEAT(508.2)); /* 8 kWh in 4 h without a report */
            ADD("apt_b", 4 * HOUR + 30 * MIN, HEAT(0.3));   /* new meter */
        }
    }
    ADD("apt_b", 6 * HOUR, HEAT(1.3));
    ingest(text);
}

/* Broken messages straight onto readings.raw, each a different kind of bad input. */
static void bad_messages(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_reading_codec_t *codec = NULL;
    hvs_producer_t *p = NULL;
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_CHECK(hvs_serde_new(NULL, &s, &err) == 0 &&
                  hvs_encoder_new(s, HVS_SCHEMA_READING, "readings.raw", &enc, &err) == 0 &&
                  hvs_reading_codec_new(s, &codec, &err) == 0 &&
                  hvs_producer_new(&kc, &p, &err) == 0,
              "setup: %s", err.msg);
    struct {
        const char *sensor;
        double value;
        hvs_ms_t t;
    } cases[] = {
        {"heating_energy_kwh", NAN, T0 + 2 * HOUR},   /* non_finite */
        {"heating_energy_kwh", -5.0, T0 + 2 * HOUR},  /* value_out_of_range */
        {"gas_m3", 1.0, T0 + 2 * HOUR},               /* unknown_sensor */
        {"heating_energy_kwh", 1.0, 915148800000LL},  /* 1999: timestamp_too_old */
        {"heating_energy_kwh", 1.0, 4102444800000LL}, /* 2100: timestamp_in_future */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hvs_reading_t r = {0};
        snprintf(r.building_id, sizeof r.building_id, "bldg_t");
        snprintf(r.apartment_id, sizeof r.apartment_id, "apt_a");
        snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "%s", cases[i].sensor);
        r.v[0].value = cases[i].value;
        r.n = 1;
        r.timestamp = cases[i].t;
        const void *buf;
        size_t len;
        HVS_CHECK(hvs_reading_to_avro(codec, &r, NULL, HVS_MS_NONE, hvs_encoder_value(enc), &err) ==
                          0 &&
                      hvs_encoder_encode(enc, &buf, &len, &err) == 0 &&
                      hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, "bldg_t", 6, buf,
                                        len, &err) == 0,
                  "case %zu: %s", i, err.msg);
        if (i == 0) {
            /* the same bytes cut short, and with a wrong magic byte */
            HVS_CHECK(hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, "bldg_t", 6, buf,
                                        len - 3, &err) == 0,
                      "truncated");
            HVS_CHECK(hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, "bldg_t", 6,
                                        "hello world", 11, &err) == 0,
                      "bad magic");
        }
    }
    HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_producer_destroy(p);
    hvs_reading_codec_destroy(codec);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(s);
}

static void start_aggregator(hvs_test_proc_t *agg, const char *group, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=%s %s --idle-timeout 1h --batch 7 %s", env,
             group, HVS_TEST_AGGREGATOR, extra ? extra : "");
    HVS_CHECK(hvs_test_spawn(agg, cmd, logpath) == 0, "spawn aggregator");
}

/* Wait until `topic` holds at least n messages; returns them (or what there is after 60 s). */
static json_t *wait_for(const char *topic, size_t n) {
    int64_t deadline = hvs_test_now_ms() + 30000;
    json_t *m = NULL;
    do {
        if (m) {
            json_decref(m);
            usleep(300000);
        }
        m = hvs_test_tail_json(env, topic, NULL);
    } while (m && json_array_size(m) < n && hvs_test_now_ms() < deadline);
    return m;
}

static json_t *find(json_t *final, const char *apt, hvs_ms_t size, hvs_ms_t ws);

/* Wait until the final aggregates of `topic` satisfy done(final) (up to 30 s); returns the
 * messages, and the final map in *final_out. */
static json_t *wait_final(const char *topic, bool (*done)(json_t *), json_t **final_out) {
    int64_t deadline = hvs_test_now_ms() + 30000;
    for (;;) {
        json_t *m = hvs_test_tail_json(env, topic, NULL), *f = json_object();
        if (m)
            agg_test_final(f, m);
        if (m && done(f)) {
            /* what one batch publishes is flushed together: give its tail a moment, read again */
            json_decref(m);
            json_decref(f);
            usleep(500000);
            m = hvs_test_tail_json(env, topic, NULL);
            f = json_object();
            if (m)
                agg_test_final(f, m);
        }
        if ((m && done(f)) || hvs_test_now_ms() > deadline) {
            *final_out = f;
            return m;
        }
        json_decref(m);
        json_decref(f);
        usleep(300000);
    }
}

static bool five_hours(json_t *f) { return json_object_size(f) >= 15; }
static bool quarters_done(json_t *f) { return json_object_size(f) >= 23; }
static bool revised(json_t *f) {
    json_t *a = find(f, "apt_a", HOUR, T0);
    return a && json_integer_value(json_object_get(a, "revision")) >= 1 &&
           json_number_value(json_object_get(a, "room_temp_max_c")) == 23.0;
}

static json_t *find(json_t *final, const char *apt, hvs_ms_t size, hvs_ms_t ws) {
    char key[200];
    snprintf(key, sizeof key, "bldg_t/%s/%lld/%lld", apt, (long long)size, (long long)ws);
    return json_object_get(final, key);
}

static double num(json_t *v, const char *f) {
    json_t *x = json_object_get(v, f);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static bool has_flag(json_t *v, const char *flag) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(v, "flags"), i, f) {
        if (strcmp(json_string_value(f), flag) == 0)
            return true;
    }
    return false;
}

#define NEAR(a, b) (fabs((a) - (b)) < 1e-6)

/* ---- the world, in stages: each brought about once, on first use, in order --------------- */

enum { FIRST_RUN = 1, LATE_DATA, RESTARTED, UNKNOWN_POLICY, POISONED };
static int stage;
static hvs_test_proc_t agg;
static json_t *hourly, *quarters, *final; /* the first run's messages and final windows */
static json_int_t bl_rev;                 /* the building's 00h revision after the first run */
static size_t before;                     /* hourly messages before the late data */
static json_t *h2, *f2, *dlq;             /* after the late data */
static json_t *h3;                        /* hourly messages after the restart */
static json_t *dlq2;                      /* dead letters after the second deployment */
static json_t *dlq3, *final3;             /* after the poisoned batch: dead letters, windows */
static bool poison_alive;                 /* the third deployment still ran after it */
static char *poison_keys;                 /* KEYS * of its Redis db, one per line */

static void teardown(void) {
    hvs_test_proc_stop(&agg);
    json_decref(hourly);
    json_decref(quarters);
    json_decref(final);
    json_decref(h2);
    json_decref(f2);
    json_decref(h3);
    json_decref(dlq);
    json_decref(dlq2);
    json_decref(dlq3);
    json_decref(final3);
    free(poison_keys);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "aggregator log: %s\n", logpath);
}

static void to_stage(int want);

/* Services, the hand-built stream and the broken messages, the aggregator until the first
 * 5 hours x (2 apartments + building) + 23 quarter hours are final. */
static void first_run(void) {
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-aggregator-%d.log", (int)getpid());
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_test_cleanup(teardown);
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1",
             broker.addr, redis.addr);
    good_stream();
    bad_messages();
    start_aggregator(&agg, "hvs-aggregator", NULL);
    /* the readings' order (apt_b's lost reports arrive after apt_a's later hours closed) makes
     * revisions on the way */
    json_t *fq;
    hourly = wait_final("aggregates.hourly", five_hours, &final);
    quarters = wait_final("aggregates.15m", quarters_done, &fq);
    agg_test_final(final, quarters);
    json_decref(fq);
    bl_rev = json_integer_value(json_object_get(find(final, "-", HOUR, T0), "revision"));
}

/* Late: a temperature at 00:45 (inside lateness) revises apt_a; one 3 days back is too late.
 * Then every dead letter is awaited and the aggregator stopped. */
static void late_data(void) {
    char buf[600], text[2000] = "";
    strcat(text,
           line(buf, sizeof buf, "apt_a", T0 + 45 * MIN, ROOM("room_temp_c", "living", 23.0)));
    strcat(text, line(buf, sizeof buf, "apt_a", T0 - 72 * HOUR, HEAT(90.0)));
    ingest(text);
    before = json_array_size(hourly);
    h2 = wait_final("aggregates.hourly", revised, &f2);
    dlq = wait_for("readings.dlq", 8);
    hvs_test_proc_stop(&agg);
}

/* A restart picks up from Redis and the committed offsets. It runs with one ConfigMap's worth
 * of other settings in its environment (issue 18): another worker's HVS_FC_HORIZON, accepted
 * silently, and a user's HVS_SRC, warned about once; it must start and run all the same. */
static bool restart_alive;
static char restart_log[16384];

static void restart(void) {
    struct stat st;
    off_t from = stat(logpath, &st) == 0 ? st.st_size : 0;
    start_aggregator(&agg, "hvs-aggregator HVS_FC_HORIZON=48 HVS_SRC=/home/me/src", NULL);
    sleep(6);
    int status;
    restart_alive = !hvs_test_proc_exited(&agg, &status);
    hvs_test_proc_stop(&agg);
    h3 = hvs_test_tail_json(env, "aggregates.hourly", NULL);
    FILE *f = fopen(logpath, "r");
    if (f && fseeko(f, from, SEEK_SET) == 0) {
        size_t n = fread(restart_log, 1, sizeof restart_log - 1, f);
        restart_log[n] = '\0';
    }
    if (f)
        fclose(f);
}

/* Unknown policy: topology knows bldg_t with apt_a only; a second deployment (own group,
 * own Redis db) dead-letters apt_b and a building nobody knows. */
static void unknown_policy(void) {
    char topo[1600];
    snprintf(
        topo, sizeof topo,
        "{\"building_id\":\"bldg_t\",\"archetype\":\"old_poorly_insulated\",\"commissioning_date\":0,"
        "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":100.0,\"construction_year\":1960,"
        "\"insulation\":\"poor\",\"holiday_region\":\"CH-ZH\",\"apartments\":[{\"apartment_id\":"
        "\"apt_a\",\"rooms\":[]}],\"updated_at\":0}");
    hvs_serde_t *s = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_producer_t *p = NULL;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    const void *b;
    size_t blen;
    HVS_CHECK(
        hvs_serde_new(NULL, &s, &err) == 0 &&
            hvs_encoder_new(s, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0 &&
            hvs_serde_value_from_json(s, hvs_encoder_value(enc), topo, strlen(topo), &err) == 0 &&
            hvs_encoder_encode(enc, &b, &blen, &err) == 0 && hvs_producer_new(&kc, &p, &err) == 0 &&
            hvs_producer_send(p, "topology", RD_KAFKA_PARTITION_UA, "bldg_t", 6, b, blen, &err) ==
                0 &&
            hvs_producer_flush(p, 10000, &err) == 0,
        "topology: %s", err.msg);
    hvs_producer_destroy(p);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(s);
    char buf[600], l2[600];
    snprintf(l2, sizeof l2, "%s", line(buf, sizeof buf, "apt_x", T0 + HOUR, HEAT(5.0)));
    char *at = strstr(l2, "bldg_t");
    memcpy(at, "bldg_z", 6);
    ingest(l2);
    char redis_db1[200], extra[300];
    snprintf(redis_db1, sizeof redis_db1, "%s/1", redis.addr);
    snprintf(extra, sizeof extra, "--unknown dlq");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_REDIS_URL=%s HVS_KAFKA_GROUP=agg-dlq %s --idle-timeout 1h %s", env,
             redis_db1, HVS_TEST_AGGREGATOR, extra);
    HVS_CHECK(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn");
    /* 8 + apt_b's 5 readings and the unknown building, plus the first run's bad ones again */
    dlq2 = wait_for("readings.dlq", 8 + 8 + 6);
    hvs_test_proc_stop(&agg);
}

/* The poison reasons a deployment of the aggregator dead-lettered so far (bad_id, key_mismatch). */
static size_t poison_hits(json_t *d, const char *reason) {
    size_t k, hits = 0;
    json_t *x;
    json_array_foreach(d, k, x) {
        json_t *v = json_object_get(x, "value");
        const char *r = json_string_value(json_object_get(v, "error_code"));
        const char *wk = json_string_value(json_object_get(v, "worker"));
        hits += r && wk && strcmp(r, reason) == 0 && strcmp(wk, "aggregator") == 0;
    }
    return hits;
}

static bool good_buildings_out(json_t *f) {
    return json_object_get(f, "bldg_p1/-/3600000/1733097600000") &&
           json_object_get(f, "bldg_p2/-/3600000/1733097600000");
}

/* Poison (issue 13): readings of two good buildings around four poisoned ones, all produced raw
 * (hvsctl would refuse them): a building id with braces (it used to write another building's
 * hash-tagged keys and crash-loop the batch uncommitted), one with invalid UTF-8, a reading
 * without a Kafka key and one whose key names another building. A third deployment (own group,
 * Redis db 2) must dead-letter the four and save and publish the good buildings of the batch. */
static void poisoned(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_reading_codec_t *codec = NULL;
    hvs_producer_t *p = NULL;
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_READING, "readings.raw", &enc, &err) == 0 &&
                    hvs_reading_codec_new(s, &codec, &err) == 0 &&
                    hvs_producer_new(&kc, &p, &err) == 0,
                "setup: %s", err.msg);
    struct {
        const char *building, *key; /* key NULL: none */
        int hour;
    } rs[] = {
        {"bldg_p1", "bldg_p1", 0}, {"bldg_{p1}", "bldg_{p1}", 0},   /* braces */
        {"bldg_p2", "bldg_p2", 0}, {"bldg_p\xff", "bldg_p\xff", 0}, /* invalid UTF-8 */
        {"bldg_p1", "bldg_p1", 1}, {"bldg_p1", NULL, 1},            /* no key */
        {"bldg_p2", "bldg_p2", 1}, {"bldg_p2", "bldg_p1", 1},       /* another building's key */
        {"bldg_p1", "bldg_p1", 2}, {"bldg_p2", "bldg_p2", 2},
        {"bldg_p1", "bldg_p1", 3}, {"bldg_p2", "bldg_p2", 3},
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        hvs_reading_t r = {0};
        snprintf(r.building_id, sizeof r.building_id, "%s", rs[i].building);
        snprintf(r.apartment_id, sizeof r.apartment_id, "apt_1");
        snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "heating_energy_kwh");
        r.v[0].value = 10.0 + rs[i].hour;
        r.n = 1;
        r.timestamp = T0 + rs[i].hour * HOUR;
        const void *buf;
        size_t len;
        const char *key = rs[i].key;
        HVS_CHECK(hvs_reading_to_avro(codec, &r, NULL, HVS_MS_NONE, hvs_encoder_value(enc), &err) ==
                          0 &&
                      hvs_encoder_encode(enc, &buf, &len, &err) == 0 &&
                      hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, key,
                                        key ? strlen(key) : 0, buf, len, &err) == 0,
                  "poison %zu: %s", i, err.msg);
    }
    HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_producer_destroy(p);
    hvs_reading_codec_destroy(codec);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(s);
    char redis_db2[200], cmd[2048];
    snprintf(redis_db2, sizeof redis_db2, "%s/2", redis.addr);
    snprintf(cmd, sizeof cmd,
             "env %s HVS_REDIS_URL=%s HVS_KAFKA_GROUP=agg-poison %s --idle-timeout 1h", env,
             redis_db2, HVS_TEST_AGGREGATOR);
    HVS_CHECK(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn");
    json_t *h = wait_final("aggregates.hourly", good_buildings_out, &final3);
    json_decref(h);
    for (int64_t deadline = hvs_test_now_ms() + 30000;;) {
        json_decref(dlq3);
        dlq3 = hvs_test_tail_json(env, "readings.dlq", NULL);
        if ((poison_hits(dlq3, "bad_id") >= 2 && poison_hits(dlq3, "key_mismatch") >= 2) ||
            hvs_test_now_ms() > deadline)
            break;
        usleep(300000);
    }
    sleep(2); /* a batch's state is written after its outputs: let the write land */
    int status = 0;
    poison_alive = !hvs_test_proc_exited(&agg, &status);
    hvs_test_proc_stop(&agg);
    snprintf(cmd, sizeof cmd, "redis-cli -u %s --no-raw KEYS '*'", redis_db2);
    hvs_test_run(cmd, NULL, 0, &poison_keys, NULL);
}

/* Brings the world to stage `want` (the stages before it first); a case that needs an earlier
 * stage than the world has reached cannot run (the world only moves on). */
static void to_stage(int want) {
    HVS_REQUIRE(stage <= want, "this case needs stage %d, already at %d (run it earlier)", want,
                stage);
    static void (*const steps[])(void) = {NULL,    first_run,      late_data,
                                          restart, unknown_policy, poisoned};
    while (stage < want)
        steps[++stage]();
}

/* ---- cases --------------------------------------------------------------------------------- */

static void test_first_run_windows(void) {
    to_stage(FIRST_RUN);
    HVS_CHECK(json_object_size(final) == 15 + 23, "first run: %zu windows",
              json_object_size(final));
}

/* The first hour of apt_a, worked out by hand. */
static void test_first_hour_by_hand(void) {
    to_stage(FIRST_RUN);
    json_t *a0 = find(final, "apt_a", HOUR, T0);
    HVS_CHECK(a0 && NEAR(num(a0, "heating_kwh"), 2.0) && NEAR(num(a0, "hot_water_litres"), 10.0),
              "apt_a 00h heat %g water %g", num(a0, "heating_kwh"), num(a0, "hot_water_litres"));
    HVS_CHECK(a0 && NEAR(num(a0, "room_temp_mean_c"), 20.5) &&
                  NEAR(num(a0, "setpoint_mean_c"), 20.75) &&
                  NEAR(num(a0, "comfort_gap_mean_c"), 0.25) && num(a0, "readings_seen") == 4,
              "apt_a 00h gauges %g %g %g seen %g", num(a0, "room_temp_mean_c"),
              num(a0, "setpoint_mean_c"), num(a0, "comfort_gap_mean_c"), num(a0, "readings_seen"));
    HVS_CHECK(a0 && strcmp(json_string_value(json_object_get(a0, "quality")), "COMPLETE") == 0,
              "apt_a quality");
}

/* Five hours of both apartments and the building. */
static void test_hourly_heat_exact(void) {
    to_stage(FIRST_RUN);
    double want_a[] = {2.0, 1.5, 1.0, 1.0, 1.0};
    double want_b[] = {1.7, 2.0, 2.0, 2.0, 0.8};
    for (int h = 0; h < 5; h++) {
        json_t *a = find(final, "apt_a", HOUR, T0 + h * HOUR),
               *b = find(final, "apt_b", HOUR, T0 + h * HOUR);
        json_t *bl = find(final, "-", HOUR, T0 + h * HOUR);
        HVS_CHECK(a && NEAR(num(a, "heating_kwh"), want_a[h]), "apt_a h%d: %g", h,
                  num(a, "heating_kwh"));
        HVS_CHECK(b && NEAR(num(b, "heating_kwh"), want_b[h]), "apt_b h%d: %g", h,
                  num(b, "heating_kwh"));
        HVS_CHECK(bl && NEAR(num(bl, "heating_kwh"), want_a[h] + want_b[h]) &&
                      num(bl, "reporting_apartments") == 2,
                  "building h%d: %g", h, num(bl, "heating_kwh"));
    }
}

static void test_lost_reports_and_meter_replacement(void) {
    to_stage(FIRST_RUN);
    json_t *b0 = find(final, "apt_b", HOUR, T0), *b4 = find(final, "apt_b", HOUR, T0 + 4 * HOUR);
    HVS_CHECK(b0 && strcmp(json_string_value(json_object_get(b0, "quality")), "INTERPOLATED") == 0,
              "lost reports interpolated");
    HVS_CHECK(b4 && has_flag(b4, "meter_replaced"), "meter replacement flagged");
}

static void test_windows_closed_by_watermark(void) {
    to_stage(FIRST_RUN);
    HVS_CHECK(!find(final, "apt_a", HOUR, T0 + 5 * HOUR),
              "05h not closed yet (watermark 06:00 - 15 min)");
    json_t *q0 = find(final, "-", 15 * MIN, T0),
           *q23 = find(final, "-", 15 * MIN, T0 + 5 * HOUR + 30 * MIN);
    HVS_CHECK(q0 && NEAR(num(q0, "heating_kwh"), 0.7), "15m 00:00: %g", num(q0, "heating_kwh"));
    HVS_CHECK(q23 && !find(final, "-", 15 * MIN, T0 + 5 * HOUR + 45 * MIN),
              "15m closed through 05:45");
}

static void test_late_reading_revises_hour(void) {
    to_stage(LATE_DATA);
    json_t *a0 = find(f2, "apt_a", HOUR, T0), *bl0 = find(f2, "-", HOUR, T0);
    HVS_CHECK(a0 && num(a0, "revision") == 1 && NEAR(num(a0, "room_temp_mean_c"), 21.0) &&
                  num(a0, "room_temp_max_c") == 23.0 && has_flag(a0, "late_data") &&
                  NEAR(num(a0, "heating_kwh"), 2.0),
              "revision 1: rev %g mean %g max %g", num(a0, "revision"), num(a0, "room_temp_mean_c"),
              num(a0, "room_temp_max_c"));
    HVS_CHECK(bl0 && num(bl0, "revision") == (double)bl_rev + 1, "building window revised too");
    /* 23 degC holds from 00:45 on (no later temperature), so apt_a's five hours change, and the
     * building's with them: exactly those ten are re-published. */
    json_t *a3 = find(f2, "apt_a", HOUR, T0 + 3 * HOUR);
    HVS_CHECK(a3 && num(a3, "room_temp_mean_c") == 23.0 && num(a3, "revision") == 1, "carried: %g",
              num(a3, "room_temp_mean_c"));
    HVS_CHECK(json_array_size(h2) == before + 10, "only the changed windows re-published: %zu",
              json_array_size(h2) - before);
}

static void test_bad_input_dead_lettered(void) {
    to_stage(LATE_DATA);
    const char *want[] = {"non_finite",          "truncated",      "bad_magic",
                          "value_out_of_range",  "unknown_sensor", "timestamp_too_old",
                          "timestamp_in_future", "too_late"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k, hits = 0;
        json_t *d;
        json_array_foreach(dlq, k, d) {
            json_t *dv = json_object_get(d, "value");
            const char *r = json_string_value(json_object_get(dv, "error_code"));
            const char *wk = json_string_value(json_object_get(dv, "worker"));
            hits += r && wk && strcmp(r, want[i]) == 0 && strcmp(wk, "aggregator") == 0;
        }
        HVS_CHECK(hits == 1, "dead letter %s: %zu", want[i], hits);
    }
    HVS_CHECK(json_array_size(dlq) == 8, "dead letters: %zu", json_array_size(dlq));
}

/* State in Redis, read back. */
static void test_state_in_redis(void) {
    to_stage(LATE_DATA);
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    redisReply *rep = NULL;
    HVS_CHECK(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "redis: %s", err.msg);
    if (r && hvs_redis_command(r, &rep, &err, "HGET hvs:{bldg_t}:agg:meta t60") == 0) {
        HVS_CHECK(rep->type == REDIS_REPLY_STRING && atoll(rep->str) == T0 + 5 * HOUR,
                  "through(1h) in Redis: %s", rep->str ? rep->str : "nil");
        freeReplyObject(rep);
    }
    /* apt_a's readings span the 7 hours from T0: its series directory plus their blocks, which
     * read back (format 1) as those hours' instants */
    if (r && hvs_redis_command(r, &rep, &err, "HGETALL hvs:{bldg_t}:agg:s:apt_a") == 0) {
        size_t blocks = 1;
        for (int h = 1; h < 7; h++)
            blocks += agg_persist_block_of(T0 + h * HOUR) !=
                      agg_persist_block_of(T0 + (h - 1) * HOUR);
        HVS_CHECK(rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 * (1 + blocks),
                  "apt_a: %zu fields, want the directory and %zu blocks", rep->elements / 2,
                  blocks);
        agg_apartment_t a = {.id = "apt_a"};
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
                bool dir = strcmp(rep->element[i]->str, "d") == 0;
                if (dir != (pass == 0))
                    continue;
                const redisReply *v = rep->element[i + 1];
                int rc = dir ? agg_persist_parse_series(&a, v->str, v->len, &err)
                             : agg_persist_parse_bucket(&a, v->str, v->len, &err);
                HVS_CHECK(rc == 0, "apt_a field %s: %s", rep->element[i]->str, err.msg);
            }
        HVS_CHECK(a.samples.ninst > 0 && a.samples.inst[0] >= T0 &&
                      agg_samples_last(&a.samples) < T0 + 7 * HOUR &&
                      agg_samples_find(&a.samples, AGG_TEMP, "living") != NULL,
                  "apt_a's samples read back: %zu instants", a.samples.ninst);
        agg_samples_fini(&a.samples);
        freeReplyObject(rep);
    }
    /* the markers of apt_a's hours from T0 (a block start) packed in one field: format 1,
     * offset 0, revision 1 for the revised window */
    if (r && hvs_redis_command(r, &rep, &err, "HGET hvs:{bldg_t}:agg:mk 60:%lld:apt_a",
                               (long long)(T0 / HOUR)) == 0) {
        HVS_CHECK(rep->type == REDIS_REPLY_STRING && rep->len > 11 && rep->str[0] == 1 &&
                      rep->str[1] == 0 && rep->str[2] == 1,
                  "marker of the revised window: %zu bytes", rep->len);
        freeReplyObject(rep);
    }
    hvs_redis_destroy(r);
}

/* A restart picks up from Redis and the committed offsets: nothing is published twice. */
static void test_restart_publishes_nothing_twice(void) {
    to_stage(RESTARTED);
    HVS_CHECK(h3 && json_array_size(h3) == json_array_size(h2),
              "after restart: %zu hourly, %zu before", h3 ? json_array_size(h3) : 0,
              json_array_size(h2));
    HVS_CHECK(restart_alive, "the aggregator with HVS_FC_HORIZON and HVS_SRC set stopped early");
    const char *warn = strstr(restart_log, "outside every known prefix");
    HVS_CHECK(warn && strstr(warn, "HVS_SRC") && !strstr(restart_log, "invalid configuration"),
              "one warning naming HVS_SRC in: %.2000s", restart_log);
    HVS_CHECK(warn && !strstr(warn + 1, "outside every known prefix"), "warned once");
}

static void test_unknown_policy_dead_letters(void) {
    to_stage(UNKNOWN_POLICY);
    size_t k, unknown_apt = 0, unknown_bld = 0;
    json_t *d;
    json_array_foreach(dlq2, k, d) {
        const char *rs = json_string_value(
            json_object_get(json_object_get(d, "value"), "error_code"));
        unknown_apt += rs && strcmp(rs, "unknown_apartment") == 0;
        unknown_bld += rs && strcmp(rs, "unknown_building") == 0;
    }
    HVS_CHECK(unknown_apt == 5 && unknown_bld == 1, "unknown apartment %zu, building %zu",
              unknown_apt, unknown_bld);
}

/* Each poisoned reading dead-lettered with its reason; the worker did not stop. */
static void test_poison_dead_lettered(void) {
    to_stage(POISONED);
    HVS_CHECK(poison_hits(dlq3, "bad_id") == 2, "bad_id (braces, invalid UTF-8): %zu",
              poison_hits(dlq3, "bad_id"));
    HVS_CHECK(poison_hits(dlq3, "key_mismatch") == 2, "key_mismatch (no key, another's): %zu",
              poison_hits(dlq3, "key_mismatch"));
    size_t k, brace = 0;
    json_t *d;
    json_array_foreach(dlq3, k, d) {
        const char *t = json_string_value(
            json_object_get(json_object_get(d, "value"), "error_text"));
        brace += t && strstr(t, "'{' at byte 5") != NULL;
    }
    HVS_CHECK(brace == 1, "the brace's dead letter names the field and offset: %zu", brace);
    HVS_CHECK(poison_alive, "the aggregator kept running through the poisoned batch");
}

/* The good buildings of the poisoned batch: published, and saved under their own keys only. */
static void test_poison_good_buildings_saved(void) {
    to_stage(POISONED);
    json_t *b1 = json_object_get(final3, "bldg_p1/-/3600000/1733097600000"),
           *b2 = json_object_get(final3, "bldg_p2/-/3600000/1733097600000");
    HVS_CHECK(b1 && NEAR(num(b1, "heating_kwh"), 1.0), "bldg_p1 00h: %g", num(b1, "heating_kwh"));
    HVS_CHECK(b2 && NEAR(num(b2, "heating_kwh"), 1.0), "bldg_p2 00h: %g", num(b2, "heating_kwh"));
    const char *keys = poison_keys ? poison_keys : "";
    HVS_CHECK(strstr(keys, "hvs:{bldg_p1}:agg:meta") && strstr(keys, "hvs:{bldg_p2}:agg:meta") &&
                  strstr(keys, "hvs:{bldg_p1}:agg:s:apt_1"),
              "good buildings saved: %s", keys);
    /* nothing under a poisoned id, no empty key */
    HVS_CHECK(!strstr(keys, "bldg_{") && !strstr(keys, "{p1}") && !strstr(keys, "\\xff") &&
                  !strstr(keys, "\"\""),
              "no key of a poisoned id: %s", keys);
}

static const hvs_test_case_t cases[] = {
    {"first_run_windows", test_first_run_windows},
    {"first_hour_by_hand", test_first_hour_by_hand},
    {"hourly_heat_exact", test_hourly_heat_exact},
    {"lost_reports_and_meter_replacement", test_lost_reports_and_meter_replacement},
    {"windows_closed_by_watermark", test_windows_closed_by_watermark},
    {"late_reading_revises_hour", test_late_reading_revises_hour},
    {"bad_input_dead_lettered", test_bad_input_dead_lettered},
    {"state_in_redis", test_state_in_redis},
    {"restart_publishes_nothing_twice", test_restart_publishes_nothing_twice},
    {"unknown_policy_dead_letters", test_unknown_policy_dead_letters},
    {"poison_dead_lettered", test_poison_dead_lettered},
    {"poison_good_buildings_saved", test_poison_good_buildings_saved},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
