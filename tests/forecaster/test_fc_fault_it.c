/*
 * test_fc_fault_it - the fault suite (issue 13) on hvs-forecaster, through the harness
 * (tests/support/hvs_fault.h). The test writes its own seeded, messy input (deterministic given
 * FC_SEED): 3 buildings (two old, one commissioned 12 days before the data: the rules serve it),
 * 8 days of hourly building aggregates with revisions (revision 1, another value, 1-20 h after
 * the original), late aggregates (2-10 h, out of order), exact duplicates (up to 3 h later) and
 * a few hours never sent; hourly observations (10 minutes after the hour, a few 3-12 h late or
 * never published) and 6-hourly forecast runs (issued 2 h after the run, 80 h ahead); apartment
 * rows among the aggregates (ignored by the forecaster); a few bad records (a 15-minute window,
 * a negative heating, another building's key, a 200 degC observation): dead letters of every
 * run. forecast/global v1, trained here by the trainer's own code, is published APPROVED on
 * `models` before any run, so every run serves the same version. Both inputs are produced
 * completely before the first run.
 *
 * The real process runs against a real redis-server and hvs-devbroker: once undisturbed (the
 * reference), once more undisturbed, then once per fault (kill -9 three times, Redis restarted
 * empty, Redis flushed, the broker down for 15 s) and the poison set. Every run must end with
 * the same latest Forecast per (building, issued_at) - the whole record as hvsctl tail prints
 * it: nothing in a Forecast is wall-clock, so nothing is dropped - and the same dead letters.
 *
 * What it found, fixed in the forecaster: a building's first issue time depended on how far
 * the aggregates were read ahead of the weather; stale_weather was judged from the newest four
 * runs seen; an issue made without its building's weather once the aggregates reached T +
 * HVS_FC_WEATHER_WAIT depended on how far the aggregates topic was read ahead (the wait is now
 * measured on the partition's weather stream); a late or revised hour changed issues already
 * made (they are made again); a rebuild made quietly an issue the replay had not made ready
 * (quiet now means: ready on the replayed inputs alone).

 * Settings: the worker's defaults (the weather wait of 3 h included) but --batch 50 (many
 * batches, so faults land mid-stream), session timeout 4 s, heartbeat 500 ms, stall timeout
 * 10 s, fetch wait 10 ms.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fc_version.h"
#include "history.h"
#include "hvs/featstore.h"
#include "hvs/kafka.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_fault.h"
#include "hvs_test.h"
#include "train.h"

#define MIN 60000LL
#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC, a Monday */
#define TRAIN_DAYS 30
#define DAYS 8
#define NB 3
#define FC_SEED 17ULL

typedef struct bld {
    const char *id, *archetype;
    double area;
    hvs_ms_t commissioning;
} bld_t;

static const bld_t blds[NB] = {
    {"fcf_b1", "modern_high_density", 1200, 1577836800000LL},
    {"fcf_b2", "old_poorly_insulated", 2000, 1577836800000LL},
    {"fcf_b3", "passive", 700, T0 - 12 * DAY}, /* young: rules */
};

/* ---- the stage ---------------------------------------------------------------------------- */

static bool fc_key(const json_t *v, char *key, size_t len) {
    const char *b = json_string_value(json_object_get(v, "building_id"));
    if (!b)
        return false;
    snprintf(key, len, "%s/%lld", b,
             (long long)json_integer_value(json_object_get(v, "issued_at")));
    return true;
}

static const hvs_fault_stage_t STAGE = {
    .name = "forecaster",
    .exe = HVS_TEST_FORECASTER,
    .args = "--batch 50 --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"aggregates.hourly", "weather.hourly"},
    .outputs = {"forecasts.baseline"},
    .dead_letters = {"aggregates.hourly.dlq", "weather.hourly.dlq"},
    .key = fc_key,
    .rank = NULL,       /* the later message: a replay publishes the same forecast again */
    .comparable = NULL, /* the whole forecast */
};

/* ---- the seeded world ------------------------------------------------------------------------ */

static double u(int64_t a, int64_t b, int salt) {
    return hvs_test_draw(FC_SEED, salt, (const int64_t[]){a, b}, 2);
}

enum {
    S_GAP = 1,
    S_LATE,
    S_LATE_BY,
    S_REV,
    S_REV_AT,
    S_DUP,
    S_DUP_AT,
    S_OBS_MISS,
    S_OBS_LATE,
    S_OBS_LATE_BY,
    S_NOISE,
    S_FC
};

static double true_temp(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24), d = (double)(h - T0) / DAY;
    return 4 + 4 * sin(2 * M_PI * (hr - 9) / 24) + 5 * sin(2 * M_PI * d / 9);
}

static double true_ghi(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24);
    return hr >= 7 && hr <= 16 ? 450 * sin(M_PI * (hr - 6.5) / 10.5) : 0;
}

static double heat(int b, hvs_ms_t h, int rev) {
    return blds[b].area * (0.0025 * fmax(0, 18 - true_temp(h)) + 0.006 - 0.000004 * true_ghi(h)) *
           (1 + 0.16 * (u(b, h / HOUR, S_NOISE) - 0.5)) * (1 + 0.1 * rev);
}

static hvs_feat_wx_t observed(hvs_ms_t h, hvs_ms_t issued) {
    return (hvs_feat_wx_t){issued, true, true_temp(h), 70, 40, true_ghi(h), 3};
}

static hvs_feat_wx_t forecast(hvs_ms_t r, hvs_ms_t h) {
    double lead = (double)(h - r) / HOUR;
    double e = 0.04 * lead * (u(r / HOUR, h / HOUR, S_FC) - 0.5);
    return (hvs_feat_wx_t){r + 2 * HOUR, false, true_temp(h) + e, 70, 40, true_ghi(h), 3};
}

static struct { int gaps, late, revs, dups, obs_late, obs_missing, runs, apt_rows; } made;

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld, *enc_model;
static hvs_fault_recs_t aggs, wxs;

static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
    return buf;
}

static void agg_json(char *buf, size_t cap, const char *bld, const char *apt, hvs_ms_t ws,
                     int64_t size, int rev, double kwh, hvs_ms_t emitted) {
    char a[64];
    if (apt)
        snprintf(a, sizeof a, "\"%s\"", apt);
    else
        snprintf(a, sizeof a, "null");
    snprintf(buf, cap,
             "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":%d,\"heating_kwh\":%.17g,"
             "\"hot_water_litres\":10.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":4,\"readings_seen\":4,\"reporting_apartments\":%s,"
             "\"known_apartments\":%s,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             bld, a, (long long)ws, (long long)(ws + size), (long long)size, rev, kwh,
             apt ? "null" : "2", apt ? "null" : "2", (long long)emitted);
}

static void wx_json(char *buf, size_t cap, const char *bld, hvs_ms_t hour, const hvs_feat_wx_t *w) {
    snprintf(buf, cap,
             "{\"building_id\":\"%s\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.17g,"
             "\"relative_humidity_pct\":%.17g,\"cloud_cover_pct\":%.17g,"
             "\"shortwave_radiation_wm2\":%.17g,\"wind_speed_ms\":%.17g,\"provider\":\"test\"}",
             bld, (long long)hour, (long long)w->issued_at, w->observed ? "OBSERVED" : "FORECAST",
             w->temp, w->rh, w->cloud, w->ghi, w->wind);
}

static void add_agg(const char *key, const char *bld, const char *apt, hvs_ms_t ws, int64_t size,
                    int rev, double kwh, hvs_ms_t at) {
    char json[2048];
    size_t len;
    agg_json(json, sizeof json, bld, apt, ws, size, rev, kwh, at);
    const void *buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&aggs, at, key, buf, len);
}

static void add_wx(const char *key, const char *bld, hvs_ms_t hour, const hvs_feat_wx_t *w) {
    char json[2048];
    size_t len;
    wx_json(json, sizeof json, bld, hour, w);
    const void *buf = encode_json(enc_wx, json, &len);
    hvs_fault_recs_add(&wxs, w->issued_at, key, buf, len);
}

static void gen(void) {
    for (int b = 0; b < NB; b++) {
        const char *id = blds[b].id;
        for (int64_t i = 0; i < DAYS * 24; i++) {
            hvs_ms_t h = T0 + i * HOUR, end = h + HOUR;
            /* the building row (not the first hour: every run starts the same) */
            if (i > 0 && u(b, i, S_GAP) < 0.02) {
                made.gaps++;
            } else {
                hvs_ms_t at = end + 3 * MIN;
                if (i > 0 && u(b, i, S_LATE) < 0.04) {
                    at = end + 2 * HOUR + (hvs_ms_t)(8 * HOUR * u(b, i, S_LATE_BY));
                    made.late++;
                }
                add_agg(id, id, NULL, h, HOUR, 0, heat(b, h, 0), at);
                if (u(b, i, S_REV) < 0.05) {
                    hvs_ms_t at1 = at + HOUR + (hvs_ms_t)(19 * HOUR * u(b, i, S_REV_AT));
                    add_agg(id, id, NULL, h, HOUR, 1, heat(b, h, 1), at1);
                    made.revs++;
                }
                if (u(b, i, S_DUP) < 0.03) {
                    add_agg(id, id, NULL, h, HOUR, 0, heat(b, h, 0),
                            at + (hvs_ms_t)(3 * HOUR * u(b, i, S_DUP_AT)));
                    made.dups++;
                }
            }
            /* an apartment's row: not the forecaster's */
            if (i % 5 == 0) {
                add_agg(id, id, "apt_1", h, HOUR, 0, 0.4, end + 4 * MIN);
                made.apt_rows++;
            }
            /* the observation */
            if (u(b, i, S_OBS_MISS) < 0.03) {
                made.obs_missing++;
            } else {
                hvs_ms_t issued = end + 10 * MIN;
                if (u(b, i, S_OBS_LATE) < 0.04) {
                    issued = end + 3 * HOUR + (hvs_ms_t)(9 * HOUR * u(b, i, S_OBS_LATE_BY));
                    made.obs_late++;
                }
                hvs_feat_wx_t w = observed(h, issued);
                add_wx(id, id, h, &w);
            }
            /* the run of every 6th hour */
            if (i % 6 == 0) {
                for (int l = 1; l <= 80; l++) {
                    hvs_feat_wx_t w = forecast(h, h + l * HOUR);
                    add_wx(id, id, h + l * HOUR, &w);
                }
                made.runs++;
            }
        }
    }
}

/* The bad records (dead letters of every run) and their reasons, by input. */
#define NATURAL_AGG 3
#define NATURAL_WX 1
static const char *const NATURAL_REASONS[] = {"bad_window", "value_out_of_range", "key_mismatch"};

static void gen_bad(void) {
    add_agg(blds[0].id, blds[0].id, NULL, T0 + 30 * HOUR, 15 * MIN, 0, 2.0, T0 + 31 * HOUR + MIN);
    add_agg(blds[1].id, blds[1].id, NULL, T0 + 50 * HOUR, HOUR, 0, -2.5, T0 + 51 * HOUR + MIN);
    add_agg(blds[0].id, blds[2].id, NULL, T0 + 70 * HOUR, HOUR, 0, 4.0, T0 + 71 * HOUR + MIN);
    hvs_feat_wx_t w = observed(T0 + 90 * HOUR, T0 + 91 * HOUR + 5 * MIN);
    w.temp = 200;
    add_wx(blds[1].id, blds[1].id, T0 + 90 * HOUR, &w);
}

/* ---- the version --------------------------------------------------------------------------- */

static hvs_calendar_t *cal;

static int tr_info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque;
    for (int b = 0; b < NB; b++)
        if (!strcmp(blds[b].id, building)) {
            *out = (tr_building_info_t){blds[b].area, blds[b].commissioning, cal, NULL};
            return 0;
        }
    return -1;
}

/* forecast/global v1 trained on the 30 days before T0 of the two old buildings, published
 * APPROVED before any run. */
static void publish_model(void) {
    tr_history_t *h = tr_history_new(TRAIN_DAYS * 24 + 48, 0);
    HVS_REQUIRE(h, "history");
    for (int b = 0; b < 2; b++)
        for (hvs_ms_t t = T0 - TRAIN_DAYS * DAY; t < T0; t += HOUR) {
            hvs_feat_hour_t a = {t, heat(b, t, 0), 10.0, 21.0, 21.5, 0.5, 0, NAN, NAN, 0, 0};
            tr_history_put_hour(h, blds[b].id, HVS_FS_BUILDING, &a);
            hvs_feat_wx_t o = observed(t, t + HOUR + 10 * MIN);
            tr_history_put_weather(h, blds[b].id, t, &o);
            if ((t / HOUR) % 6 == 0)
                for (int l = 1; l <= 80; l++) {
                    hvs_feat_wx_t f = forecast(t, t + l * HOUR);
                    tr_history_put_weather(h, blds[b].id, t + l * HOUR, &f);
                }
        }
    fc_version_spec_t spec = {
        "forecast/global", NULL, T0 - (TRAIN_DAYS - 1) * DAY, T0, 1, 60, 4, 1, tr_info};
    void *buf;
    size_t len;
    hvs_err_t err = {0};
    fc_version_make(h, &spec, serde, &buf, &len, NULL);
    char key[256];
    hvs_registry_key(key, sizeof key, "forecast/global", 1);
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s: %s", key, err.msg);
    free(buf);
    tr_history_destroy(h);
}

/* ---- producing ------------------------------------------------------------------------------ */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_encoder_destroy(enc_model);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_calendar_destroy(cal);
    hvs_fault_recs_free(&aggs);
    hvs_fault_recs_free(&wxs);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

static void send_recs(const hvs_fault_recs_t *rs, const char *topic) {
    hvs_err_t err = {0};
    for (size_t k = 0; k < rs->n; k++)
        HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, rs->r[k].key,
                                      strlen(rs->r[k].key), rs->r[k].buf, rs->r[k].len, &err) == 0,
                    "send to %s: %s", topic, err.msg);
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void publish_stream(const char *agg_topic, const char *wx_topic) {
    send_recs(&wxs, wx_topic);
    send_recs(&aggs, agg_topic);
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"%s\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":%.1f,"
                 "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[],\"updated_at\":1700000000000,\"deleted\":false}",
                 blds[b].id, blds[b].archetype, (long long)blds[b].commissioning, blds[b].area);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, blds[b].id,
                                      strlen(blds[b].id), buf, len, &err) == 0,
                    "topology: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void need_world(void) {
    if (have_world)
        return;
    hvs_fault_world_start(&world, &STAGE, NULL);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = world.broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_calendar_new("CH-ZH", &cal, &err) == 0 && hvs_serde_new(NULL, &serde, &err) == 0 &&
            hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, NULL, &enc_agg, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, NULL, &enc_wx, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc_model, &err) == 0,
        "setup: %s", err.msg);
    gen();
    gen_bad();
    hvs_fault_recs_sort(&aggs);
    hvs_fault_recs_sort(&wxs);
    printf("  input: %zu aggregates (%d gaps, %d late, %d revisions, %d duplicates, %d apartment "
           "rows), %zu weather records (%d runs, %d observations late, %d never published), bad "
           "records %d + %d\n",
           aggs.n, made.gaps, made.late, made.revs, made.dups, made.apt_rows, wxs.n, made.runs,
           made.obs_late, made.obs_missing, NATURAL_AGG, NATURAL_WX);
    publish_topology();
    publish_model(); /* before any worker starts: every run serves v1 from its first batch */
    publish_stream("aggregates.hourly", "weather.hourly");
    have_world = true;
}

static void need_reference(void) {
    need_world();
    if (ref)
        return;
    ref = hvs_fault_run(&world, "ref", NULL);
    HVS_REQUIRE(ref->finished, "the reference run did not catch up");
}

/* ---- cases ------------------------------------------------------------------------------------ */

/* The reference is not vacuous: every building forecast at every hour from its first aggregate
 * to its last (192 issue times), by v1 or the rules by age, and the bad records dead-lettered. */
static void test_reference(void) {
    need_reference();
    int per[NB] = {0}, wrong_model = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ref->latest, k, v) {
        const char *b = json_string_value(json_object_get(v, "building_id"));
        const char *m = json_string_value(json_object_get(v, "model_name"));
        for (int i = 0; i < NB; i++)
            if (hvs_test_streq(b, blds[i].id)) {
                per[i]++;
                wrong_model += !hvs_test_streq(m, i == 2 ? "rules" : "forecast/global");
            }
    }
    for (int i = 0; i < NB; i++)
        HVS_CHECK(per[i] >= DAYS * 24 - 2 && per[i] <= DAYS * 24,
                  "reference: %s forecast at %d issue times (want %d, the last two may wait)",
                  blds[i].id, per[i], DAYS * 24);
    HVS_CHECK(wrong_model == 0, "reference: %d forecasts by the wrong model", wrong_model);
    HVS_CHECK(json_object_size(ref->dead) == NATURAL_AGG + NATURAL_WX,
              "reference: %zu dead letters (want %d)", json_object_size(ref->dead),
              NATURAL_AGG + NATURAL_WX);
    for (int i = 0; i < NATURAL_AGG; i++)
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "aggregates.hourly", NATURAL_REASONS[i]) == 1,
                  "reference: an aggregate dead-lettered as %s", NATURAL_REASONS[i]);
    HVS_CHECK(hvs_fault_count_reason(ref->dead, "weather.hourly", "value_out_of_range") == 1,
              "reference: the 200 degC observation dead-lettered");
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
    printf("  reference: %zu forecasts published, %zu issue times, %.1f s\n", ref->nout,
           json_object_size(ref->latest), (double)ref->ms / 1000);
}

static void standard(hvs_fault_run_t *(*fn)(hvs_fault_world_t *, const hvs_fault_run_t *)) {
    need_reference();
    hvs_fault_run_t *run = fn(&world, ref);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

static void test_undisturbed_again(void) { standard(hvs_fault_case_again); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }

static void test_kill9_seed_11(void) {
    need_reference();
    hvs_fault_run_t *run = hvs_fault_case_kill9(&world, ref, 11);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

/* ---- the poison set -------------------------------------------------------------------------- */

#define NPOISON 16
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;
static const hvs_ms_t PT = T0 + 50 * HOUR;

static void add(hvs_fault_producer_t *p, int input, const char *topic, const char *what,
                const char *reason, const char *key, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = input};
    hvs_fault_produce(p, topic, key, key ? strlen(key) : 0, value, len, &x->partition, &x->offset);
}

static void test_poison(void) {
    need_reference();
    const char *topics[2] = {"poison.aggregates.hourly", "poison.weather.hourly"};
    for (int t = 0; t < 2; t++)
        hvs_fault_topic_create(&world, topics[t], HVS_TOPIC_DEFAULT_PARTITIONS);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    unsigned char junk[48];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(0x7f + 29 * i);
    char json[2048];
    size_t len;
    /* before the stream: records of building "pz_b" (in no other record) */
    add(p, 0, topics[0], "random bytes", "bad_magic", "pz_b", junk, sizeof junk);
    add(p, 1, topics[1], "random bytes", "bad_magic", "pz_b", junk, sizeof junk);
    agg_json(json, sizeof json, "pz_b", NULL, PT, HOUR, 0, 1.0, PT + HOUR);
    const void *b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "truncated", "truncated", "pz_b", b, len - 3);
    add(p, 0, topics[0], "null value", "empty_value", "pz_b", NULL, 0);
    size_t first_half = npoisons;
    publish_stream(topics[0], topics[1]);
    /* after it */
    agg_json(json, sizeof json, "pz_b", NULL, PT, HOUR, 0, 1.0, PT + HOUR);
    b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "another building's key", "key_mismatch", "pz_c", b, len);
    agg_json(json, sizeof json, "pz_b", NULL, PT + MIN, HOUR, 0, 1.0, PT + HOUR);
    b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "window not on the hour", "bad_window", "pz_b", b, len);
    hvs_feat_wx_t w = observed(PT, PT + 30 * MIN);
    wx_json(json, sizeof json, "pz_b", PT, &w);
    b = encode_json(enc_wx, json, &len);
    add(p, 1, topics[1], "observed before the hour ended", "value_out_of_range", "pz_b", b, len);
    hvs_fault_producer_free(p);

    hvs_fault_opts_t o = {.inputs = {topics[0], topics[1]}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    for (size_t i = 0; i < first_half; i++)
        poisons[i].before = true;
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"undisturbed_again", test_undisturbed_again},
    {"kill9_three_times_seed_11", test_kill9_seed_11},
    {"redis_restart", test_redis_restart},
    {"redis_flush", test_redis_flush},
    {"broker_down", test_broker_down},
    {"rebuild_kill9", test_rebuild_kill9},
    {"poison", test_poison},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
