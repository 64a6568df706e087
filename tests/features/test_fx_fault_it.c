/*
 * test_fx_fault_it - the fault suite (issue 13) on hvs-features, through the harness
 * (tests/support/hvs_fault.h). The test writes its own seeded, messy input (deterministic given
 * FX_SEED): 3 buildings, each the building entity and 4 apartments, 7 days of hourly aggregates
 * with revisions (1 and 2, changed values, 1-30 h after the original), late aggregates (2-12 h,
 * out of order), exact duplicates and gaps (single entity-hours, and two whole hours of one
 * building); weather per building in issued_at order (as the weather worker publishes it):
 * forecasts every 6 h for the next 48 h, each hour's observation 1 h + a few minutes after the
 * hour, some observations 3-20 h late (after the 2 h weather wait: a flagged "weak" vector goes
 * out first, then its upgrade), some never published, some re-published later (same or
 * corrected values), a 10 h outage of one building's weather (its observations back-filled at
 * the end); a few bad records among them (dead letters of the reference). Both topics are
 * produced completely before the first run.
 *
 * The real process runs against a real redis-server and hvs-devbroker: once undisturbed (the
 * reference, a shared fixture), twice more undisturbed (once as the reference, once with small
 * fetches so that the two topics interleave finely: the vectors must not depend on how the two
 * inputs interleave), then once per fault. Every run must end with the same latest
 * FeatureVector per (building, apartment, target hour) and the same dead letters (original
 * topic, partition, offset, reason, key, value, error text).
 *
 * What is compared: the whole vector as hvsctl tail prints it (doubles with 17 significant
 * digits, so equal text is an equal double; NaN - a missing feature - prints as null), nothing
 * dropped: no field is volatile. `revision` is the rank (the highest is the latest; absent in the
 * older schema = 0) and is compared too: it is derived from the inputs (the aggregate's revision
 * and whether the observed weather was in), the same in every run. `alerts` is not compared: the
 * DATA_QUALITY counters of a building-day live in the process only (not in Redis), so a restart
 * counts a day again and raises its alerts at other points, and an alert carries the wall clock
 * (updated_at).
 *
 * Settings as the aggregator's suite: --batch 20 (many batches, so faults land mid-stream),
 * --idle-timeout 1h (no wall-clock watermark advance: a run's result must not depend on how long
 * a fault kept it idle), session timeout 4 s, heartbeat 500 ms, stall timeout 10 s, fetch wait
 * 10 ms; the pauses are 10 s, the broker outage 15 s.
 *
 * The poison case publishes the poison set around its own copy of both streams and checks every
 * poisoned record is dead-lettered with its reason while the vectors equal the reference.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_fault.h"
#include "hvs_test.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0 1732492800000LL /* 2024-11-25T00:00:00Z, a Monday */
#define HOURS (7 * 24)     /* of aggregates */
#define NB 3               /* buildings */
#define NE 5               /* entities per building: the building and 4 apartments */
#define FX_SEED 13ULL

static const char *const BLD[NB] = {"fx_b1", "fx_b2", "fx_b3"};
static const char *const REGION[NB] = {"CH-ZH", "CH-GE", "CH-LU"};
static const char *const APT[NE] = {NULL, "apt_1", "apt_2", "apt_3", "apt_4"};
/* fx_b2's weather is down for 10 h (issue time): nothing is published, then the observations
 * that fell due are back-filled */
#define OUTAGE_B 1
#define OUTAGE_FROM (T0 + 80 * HOUR)
#define OUTAGE_TO (T0 + 90 * HOUR)

/* ---- the stage ---------------------------------------------------------------------------- */

static bool fx_key(const json_t *v, char *key, size_t len) {
    const char *b = json_string_value(json_object_get(v, "building_id"));
    const char *apt = json_string_value(json_object_get(v, "apartment_id"));
    if (!b)
        return false;
    snprintf(key, len, "%s/%s/%lld", b, apt ? apt : "-",
             (long long)json_integer_value(json_object_get(v, "target_hour")));
    return true;
}

static const hvs_fault_stage_t STAGE = {
    .name = "features",
    .exe = HVS_TEST_FEATURES,
    .args = "--batch 20 --idle-timeout 1h --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"aggregates.hourly", "weather.hourly"},
    .outputs = {"features.hourly"},
    .dead_letters = {"aggregates.hourly.dlq", "weather.hourly.dlq"},
    .key = fx_key,
    .rank = hvs_fault_rank_revision,
    .comparable = NULL, /* the whole vector (see the top of the file) */
};

/* ---- the seeded input --------------------------------------------------------------------- */

/* A uniform [0, 1) drawn from (seed, a, b, c, salt): independent of the order things are
 * generated in. */
static double u(int64_t a, int64_t b, int64_t c, int salt) {
    return hvs_test_draw(FX_SEED, salt, (const int64_t[]){a, b, c}, 3);
}

enum {
    S_GAP = 1,
    S_ARRIVE,
    S_LATE,
    S_LATE_BY,
    S_REV,
    S_REV_AT,
    S_REV2,
    S_REV2_AT,
    S_DUP,
    S_DUP_AT,
    S_HEAT,
    S_WATER,
    S_ROOM,
    S_TEMP,
    S_FC,
    S_OBS_MISS,
    S_OBS_AT,
    S_OBS_LATE,
    S_OBS_LATE_BY,
    S_REPUB,
    S_REPUB_AT,
    S_REPUB_FIX,
    S_CLOUD,
};

/* What the generator made, for the log. */
static struct {
    int gaps, late, rev1, rev2, dups, forecasts, obs, obs_late, obs_missing, repub, backfilled;
} made;

typedef struct rec {
    hvs_ms_t at; /* when the real pipeline would publish it */
    int seq;     /* generation order: ties */
    char key[32];
    char json[1024];
} rec_t;

typedef struct recs {
    rec_t *r;
    size_t n, cap;
} recs_t;

static rec_t *rec_add(recs_t *rs, hvs_ms_t at, const char *key) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 4096;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        HVS_REQUIRE(rs->r, "out of memory");
    }
    rec_t *r = &rs->r[rs->n];
    r->at = at;
    r->seq = (int)rs->n++;
    snprintf(r->key, sizeof r->key, "%s", key);
    return r;
}

static int rec_cmp(const void *a, const void *b) {
    const rec_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The true outdoor temperature of building b at hour index i (from T0). */
static double truth_temp(int b, int64_t i) {
    double hod = (double)((i % 24 + 24) % 24);
    return 2.0 + 1.5 * b - 0.03 * (double)i + 4.0 * sin(2 * M_PI * (hod - 9) / 24) +
           0.6 * (u(b, i, 0, S_TEMP) - 0.5);
}

static double cloud(int b, int64_t i) { return floor(100 * u(b, i / 3, 0, S_CLOUD)); }

static double ghi(int b, int64_t i) {
    double hod = (double)((i % 24 + 24) % 24);
    double sun = hod >= 8 && hod <= 16 ? 350 * sin(M_PI * (hod - 7) / 10) : 0;
    return floor(sun * (1 - cloud(b, i) / 150));
}

/* A Weather record of building `bld` whose other values are those of building index b. */
static void wx_json(char *buf, size_t cap, const char *bld, int b, hvs_ms_t hour, hvs_ms_t issued,
                    bool observed, double temp, double rh) {
    int64_t i = (hour - T0) / HOUR;
    snprintf(buf, cap,
             "{\"building_id\":\"%s\",\"latitude\":%.2f,\"longitude\":%.2f,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.2f,"
             "\"relative_humidity_pct\":%.1f,\"cloud_cover_pct\":%.0f,"
             "\"shortwave_radiation_wm2\":%.0f,\"wind_speed_ms\":%.1f,\"provider\":\"test\"}",
             bld, 46.2 + b, 6.1 + b, (long long)hour, (long long)issued,
             observed ? "OBSERVED" : "FORECAST", temp, rh, cloud(b, i), ghi(b, i),
             2.0 + 3.0 * u(b, i, 1, S_CLOUD));
}

static bool in_outage(int b, hvs_ms_t issued) {
    return b == OUTAGE_B && issued >= OUTAGE_FROM && issued < OUTAGE_TO;
}

static double humidity(int b, hvs_ms_t hour) {
    return floor(60 + 30 * u(b, (hour - T0) / HOUR, 2, S_CLOUD));
}

static void add_wx(recs_t *rs, int b, hvs_ms_t hour, hvs_ms_t issued, bool observed, double temp,
                   double rh) {
    rec_t *r = rec_add(rs, issued, BLD[b]);
    wx_json(r->json, sizeof r->json, BLD[b], b, hour, issued, observed, temp, rh);
}

/* Weather of every building, in issued_at order. */
static void gen_weather(recs_t *rs) {
    for (int b = 0; b < NB; b++) {
        /* forecasts every 6 h (a few minutes past) for the next 48 h, from a day before T0 */
        for (hvs_ms_t issue = T0 - 24 * HOUR + 12 * MIN; issue <= T0 + HOURS * HOUR;
             issue += 6 * HOUR) {
            if (in_outage(b, issue))
                continue;
            hvs_ms_t first = issue - issue % HOUR + HOUR;
            for (hvs_ms_t h = first; h < first + 48 * HOUR; h += HOUR) {
                int64_t i = (h - T0) / HOUR;
                double lead = (double)(h - issue) / (double)HOUR;
                double err = (lead / 24.0) * 2.0 * (u(b, i, issue / HOUR, S_FC) - 0.5);
                add_wx(rs, b, h, issue, false, truth_temp(b, i) + err, humidity(b, h));
                made.forecasts++;
            }
        }
        /* observations */
        hvs_ms_t backfill = OUTAGE_TO + 4 * MIN;
        for (int64_t i = 0; i < HOURS; i++) {
            hvs_ms_t hour = T0 + i * HOUR;
            if (u(b, i, 0, S_OBS_MISS) < 0.04) {
                made.obs_missing++;
                continue; /* never published */
            }
            hvs_ms_t issued = hour + HOUR + 2 * MIN + (hvs_ms_t)(7 * MIN * u(b, i, 0, S_OBS_AT));
            if (u(b, i, 0, S_OBS_LATE) < 0.06) {
                issued = hour + HOUR + 3 * HOUR +
                         (hvs_ms_t)(17 * HOUR * u(b, i, 0, S_OBS_LATE_BY)) + 5 * MIN;
                made.obs_late++;
            }
            if (in_outage(b, issued)) {
                issued = backfill += MIN;
                made.backfilled++;
            }
            add_wx(rs, b, hour, issued, true, truth_temp(b, i), humidity(b, hour));
            made.obs++;
            if (u(b, i, 0, S_REPUB) < 0.05) { /* published again: same or corrected values */
                hvs_ms_t again = issued + HOUR + (hvs_ms_t)(5 * HOUR * u(b, i, 0, S_REPUB_AT));
                if (in_outage(b, again)) {
                    again = backfill += MIN;
                    made.backfilled++;
                }
                double fix = u(b, i, 0, S_REPUB_FIX) < 0.5 ? 0 : 0.4;
                add_wx(rs, b, hour, again, true, truth_temp(b, i) + fix, humidity(b, hour));
                made.repub++;
            }
        }
    }
    /* bad records (dead letters of every run): an observation issued before its hour ended, a
     * forecast with 140 % humidity, an observation keyed by another building */
    add_wx(rs, 0, T0 + 40 * HOUR, T0 + 40 * HOUR + 30 * MIN, true, 1.0, 80);
    add_wx(rs, 1, T0 + 90 * HOUR, T0 + 60 * HOUR + 12 * MIN, false, 1.0, 140);
    add_wx(rs, 2, T0 + 100 * HOUR, T0 + 101 * HOUR + 3 * MIN, true, truth_temp(2, 100), 80);
    snprintf(rs->r[rs->n - 1].key, sizeof rs->r[0].key, "%s", BLD[1]);
    qsort(rs->r, rs->n, sizeof *rs->r, rec_cmp);
}

static void agg_json(char *buf, size_t cap, const char *bld, const char *apt, hvs_ms_t ws,
                     int64_t size, int rev, double heat, double water, double room, double sp,
                     hvs_ms_t emitted, bool late) {
    char a[64], rt[96], gap[32];
    if (apt)
        snprintf(a, sizeof a, "\"%s\"", apt);
    else
        snprintf(a, sizeof a, "null");
    if (isnan(room)) {
        snprintf(rt, sizeof rt, "null,\"room_temp_min_c\":null,\"room_temp_max_c\":null");
        snprintf(gap, sizeof gap, "null");
    } else {
        snprintf(rt, sizeof rt, "%.3f,\"room_temp_min_c\":%.3f,\"room_temp_max_c\":%.3f", room,
                 room - 0.4, room + 0.3);
        snprintf(gap, sizeof gap, "%.3f", sp - room);
    }
    snprintf(buf, cap,
             "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":%d,\"heating_kwh\":%.4f,"
             "\"hot_water_litres\":%.2f,\"room_temp_mean_c\":%s,\"setpoint_mean_c\":%.1f,"
             "\"comfort_gap_mean_c\":%s,\"readings_expected\":4,\"readings_seen\":%d,"
             "\"reporting_apartments\":%s,\"known_apartments\":%s,\"quality\":\"%s\","
             "\"flags\":[%s],\"emitted_at\":%lld}",
             bld, a, (long long)ws, (long long)(ws + size), (long long)size, rev, heat, water, rt,
             sp, gap, isnan(room) ? 2 : 4, apt ? "null" : "4", apt ? "null" : "4",
             isnan(room) ? "PARTIAL" : "COMPLETE", late ? "\"late_data\"" : "", (long long)emitted);
}

static void add_agg(recs_t *rs, int b, int e, int64_t i, int rev, hvs_ms_t at, bool late) {
    double t = truth_temp(b, i);
    double base = e == 0 ? 6.0 : 0.8 + 0.2 * e;
    double heat = base * fmax(0, 18 - t) / 15 * (0.9 + 0.2 * u(b, e, i, S_HEAT)) * (1 + 0.08 * rev);
    double water = (e == 0 ? 120 : 25) * u(b, e, i, S_WATER) + 5 * rev;
    double room = u(b, e, i, S_ROOM) < 0.01 ? NAN : 20.5 + u(b, e, i, S_ROOM) + 0.2 * rev;
    double sp = 21.0 + 0.5 * (e % 2);
    rec_t *r = rec_add(rs, at, BLD[b]);
    agg_json(r->json, sizeof r->json, BLD[b], APT[e], T0 + i * HOUR, HOUR, rev, heat, water, room,
             sp, at, late);
}

/* Aggregates of every building and entity, in the order the aggregator would publish them. */
static void gen_aggregates(recs_t *rs) {
    for (int b = 0; b < NB; b++)
        for (int64_t i = 0; i < HOURS; i++)
            for (int e = 0; e < NE; e++) {
                if ((b == 2 && (i == 100 || i == 101)) || u(b, e, i, S_GAP) < 0.02) {
                    made.gaps++;
                    continue; /* never sent */
                }
                hvs_ms_t end = T0 + (i + 1) * HOUR;
                hvs_ms_t at = end + 3 * MIN + (hvs_ms_t)(10 * MIN * u(b, e, i, S_ARRIVE));
                bool late = u(b, e, i, S_LATE) < 0.05;
                if (late)
                    at = end + 2 * HOUR + (hvs_ms_t)(10 * HOUR * u(b, e, i, S_LATE_BY));
                made.late += late;
                add_agg(rs, b, e, i, 0, at, late);
                if (u(b, e, i, S_REV) < 0.06) {
                    hvs_ms_t at1 = at + HOUR + (hvs_ms_t)(19 * HOUR * u(b, e, i, S_REV_AT));
                    add_agg(rs, b, e, i, 1, at1, true);
                    made.rev1++;
                    if (u(b, e, i, S_REV2) < 0.4) {
                        add_agg(rs, b, e, i, 2,
                                at1 + HOUR + (hvs_ms_t)(9 * HOUR * u(b, e, i, S_REV2_AT)), true);
                        made.rev2++;
                    }
                }
            }
    size_t n = rs->n;
    for (size_t k = 0; k < n; k++) /* exact duplicates, up to 3 h later */
        if (u((int64_t)k, 0, 0, S_DUP) < 0.02) {
            rec_t copy = rs->r[k];
            rec_t *r = rec_add(rs, copy.at + (hvs_ms_t)(3 * HOUR * u((int64_t)k, 0, 0, S_DUP_AT)),
                               copy.key);
            snprintf(r->json, sizeof r->json, "%s", copy.json);
            made.dups++;
        }
    /* bad records (dead letters of every run): a 15-minute window, a negative heating, a room
     * at 75 degC, an aggregate keyed by another building */
    rec_t *r = rec_add(rs, T0 + 31 * HOUR + 4 * MIN, BLD[0]);
    agg_json(r->json, sizeof r->json, BLD[0], "apt_2", T0 + 30 * HOUR, 15 * MIN, 0, 0.2, 3, 21, 21,
             r->at, false);
    r = rec_add(rs, T0 + 51 * HOUR + 4 * MIN, BLD[1]);
    agg_json(r->json, sizeof r->json, BLD[1], "apt_1", T0 + 50 * HOUR, HOUR, 0, -2.5, 3, 21, 21,
             r->at, false);
    r = rec_add(rs, T0 + 91 * HOUR + 4 * MIN, BLD[0]);
    agg_json(r->json, sizeof r->json, BLD[0], "apt_3", T0 + 90 * HOUR, HOUR, 0, 1.0, 3, 75, 21,
             r->at, false);
    r = rec_add(rs, T0 + 71 * HOUR + 4 * MIN, BLD[0]);
    agg_json(r->json, sizeof r->json, BLD[2], NULL, T0 + 70 * HOUR, HOUR, 0, 4.0, 3, 21, 21, r->at,
             false);
    qsort(rs->r, rs->n, sizeof *rs->r, rec_cmp);
}

/* The reasons of the bad records above, by input. */
#define NATURAL_AGG 4
#define NATURAL_WX 3
static const char *const NATURAL_REASONS[] = {"bad_window", "value_out_of_range",
                                              "value_out_of_range", "key_mismatch"};
static const char *const NATURAL_WX_REASONS[] = {"value_out_of_range", "value_out_of_range",
                                                 "key_mismatch"};

/* ---- producing ---------------------------------------------------------------------------- */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld;
static recs_t aggs, wxs;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    free(aggs.r);
    free(wxs.r);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

/* JSON -> Avro with its wire header (valid until the encoder's next use). */
static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
    return buf;
}

static void send_recs(const recs_t *rs, hvs_encoder_t *enc, const char *topic) {
    hvs_err_t err = {0};
    for (size_t k = 0; k < rs->n; k++) {
        size_t len;
        const void *buf = encode_json(enc, rs->r[k].json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, rs->r[k].key,
                                      strlen(rs->r[k].key), buf, len, &err) == 0,
                    "send to %s: %s", topic, err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void publish_stream(const char *agg_topic, const char *wx_topic) {
    send_recs(&wxs, enc_wx, wx_topic);
    send_recs(&aggs, enc_agg, agg_topic);
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"multi_family\","
                 "\"commissioning_date\":%lld,\"latitude\":%.2f,\"longitude\":%.2f,"
                 "\"heated_area_m2\":600.0,\"construction_year\":%d,\"insulation\":null,"
                 "\"holiday_region\":\"%s\",\"apartments\":["
                 "{\"apartment_id\":\"apt_1\",\"area_m2\":60.0,\"floor\":0,\"rooms\":[],"
                 "\"occupied_since\":null},{\"apartment_id\":\"apt_2\",\"area_m2\":70.0,"
                 "\"floor\":1,\"rooms\":[],\"occupied_since\":null},{\"apartment_id\":\"apt_3\","
                 "\"area_m2\":80.0,\"floor\":2,\"rooms\":[],\"occupied_since\":null},"
                 "{\"apartment_id\":\"apt_4\",\"area_m2\":90.0,\"floor\":3,\"rooms\":[],"
                 "\"occupied_since\":null}],\"updated_at\":1700000000000,\"deleted\":false}",
                 BLD[b], (long long)(T0 - (hvs_ms_t)(200 + 400 * b) * 24 * HOUR), 46.2 + b, 6.1 + b,
                 1990 + 10 * b, REGION[b]);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, BLD[b],
                                      strlen(BLD[b]), buf, len, &err) == 0,
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
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, NULL, &enc_agg, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, NULL, &enc_wx, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0,
                "setup: %s", err.msg);
    gen_aggregates(&aggs);
    gen_weather(&wxs);
    printf("  input: %zu aggregates (%d gaps, %d late, %d + %d revisions, %d duplicates), %zu "
           "weather records (%d forecasts, %d observations: %d late, %d never published, %d "
           "re-published, %d back-filled after the outage), bad records %d + %d\n",
           aggs.n, made.gaps, made.late, made.rev1, made.rev2, made.dups, wxs.n, made.forecasts,
           made.obs, made.obs_late, made.obs_missing, made.repub, made.backfilled, NATURAL_AGG,
           NATURAL_WX);
    publish_topology();
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

/* ---- cases -------------------------------------------------------------------------------- */

static void test_reference(void) {
    need_reference();
    size_t keys = json_object_size(ref->latest);
    HVS_CHECK(keys > 9 * NB * NE * HOURS / 10, "reference: %zu entity-hours with a vector of %d",
              keys, NB * NE * HOURS);
    HVS_CHECK(ref->nout > keys, "reference: %zu vectors for %zu entity-hours (upgrades, revisions)",
              ref->nout, keys);
    HVS_CHECK(json_object_size(ref->dead) == NATURAL_AGG + NATURAL_WX,
              "reference: %zu dead letters (want %d)", json_object_size(ref->dead),
              NATURAL_AGG + NATURAL_WX);
    for (int k = 0; k < NATURAL_AGG; k++) {
        size_t want = 0;
        for (int j = 0; j < NATURAL_AGG; j++)
            want += strcmp(NATURAL_REASONS[j], NATURAL_REASONS[k]) == 0;
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "aggregates.hourly", NATURAL_REASONS[k]) ==
                      want,
                  "reference: aggregates dead-lettered as %s", NATURAL_REASONS[k]);
    }
    for (int k = 0; k < NATURAL_WX; k++) {
        size_t want = 0;
        for (int j = 0; j < NATURAL_WX; j++)
            want += strcmp(NATURAL_WX_REASONS[j], NATURAL_WX_REASONS[k]) == 0;
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "weather.hourly", NATURAL_WX_REASONS[k]) ==
                      want,
                  "reference: weather dead-lettered as %s", NATURAL_WX_REASONS[k]);
    }
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
}

/* The standard cases (hvs_fault.h), each a run compared with the reference. */
static void standard(hvs_fault_run_t *(*fn)(hvs_fault_world_t *, const hvs_fault_run_t *)) {
    need_reference();
    hvs_fault_run_free(fn(&world, ref));
}

static void kill9(uint64_t seed) {
    need_reference();
    hvs_fault_run_free(hvs_fault_case_kill9(&world, ref, seed));
}

static void test_undisturbed_again(void) { standard(hvs_fault_case_again); }
static void test_undisturbed_small_fetches(void) { standard(hvs_fault_case_small_fetches); }
static void test_kill9_seed_11(void) { kill9(11); }
static void test_kill9_seed_23(void) { kill9(23); }
static void test_kill9_seed_37(void) { kill9(37); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }
static void test_redis_pause(void) { standard(hvs_fault_case_redis_pause); }
static void test_worker_pause(void) { standard(hvs_fault_case_worker_pause); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }

/* The broker refuses writes for longer than the flush timeout (lowered to 3 s): a batch's flush
 * times out, the worker exits unwritten and uncommitted, is restarted and replays. */
static void test_broker_down_past_flush(void) {
    need_reference();
    hvs_fault_case_flush_timeout(&world, ref, "HVS_FEAT_FLUSH_TIMEOUT=3s");
}

/* A second member joins mid-stream and leaves later: partition P of both inputs moves together
 * (the runner's range assignor for several inputs), its state is loaded where it lands. */
static void test_second_member(void) {
    need_reference();
    hvs_fault_run_t *run = hvs_fault_case_second_member(&world, ref);
    HVS_CHECK(hvs_fault_log_count(run, "not co-partitioned") == 0,
              "second-member: partition P of both inputs always on one member");
    hvs_fault_run_free(run);
}

/* ---- the poison set ---------------------------------------------------------------------- */

#define NPOISON 64
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;
static const hvs_ms_t PT = T0 + 50 * HOUR; /* an hour inside the stream */

static void add(hvs_fault_producer_t *p, int input, const char *topic, const char *what,
                const char *reason, const char *key, size_t keylen, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = input};
    hvs_fault_produce(p, topic, key, keylen, value, len, &x->partition, &x->offset);
}

/* A good record of building "pz_b" (in no other record: a poison that got through would show as
 * extra vectors) as JSON. */
static void pz_agg(char *json, size_t cap, const char *bld, const char *apt, hvs_ms_t ws,
                   int64_t size, int rev, double heat, double room) {
    agg_json(json, cap, bld, apt, ws, size, rev, heat, 10, room, 21, ws + size + MIN, false);
}

static void pz_wx(char *json, size_t cap, const char *bld, hvs_ms_t hour, hvs_ms_t issued,
                  bool observed, double temp, double rh) {
    wx_json(json, cap, bld, 0, hour, issued, observed, temp, rh);
}

/* Encode json with field `name` (a string, or the double branch of a nullable double) patched:
 * what JSON cannot carry (NaN, bytes that are not UTF-8). */
static const void *encode_patched(hvs_encoder_t *enc, const char *json, const char *name,
                                  const char *s, double d, size_t *len) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc), f, br;
    const void *buf;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                    avro_value_get_by_name(v, name, &f, NULL) == 0,
                "patch %s: %s", name, err.msg);
    if (s) {
        if (avro_value_get_type(&f) == AVRO_UNION) {
            avro_value_set_branch(&f, 1, &br);
            avro_value_set_string(&br, s);
        } else {
            avro_value_set_string(&f, s);
        }
    } else {
        avro_value_set_branch(&f, 1, &br);
        avro_value_set_double(&br, d);
    }
    HVS_REQUIRE(hvs_encoder_encode(enc, &buf, len, &err) == 0, "encode: %s", err.msg);
    return buf;
}

/* The decoder's poisons (part 0, before the stream) on one input: `enc` encodes that input's
 * records from `good`, `other` another record type from `other_json`. */
static void poison_wire(hvs_fault_producer_t *p, int input, const char *topic, hvs_encoder_t *enc,
                        const char *good, hvs_encoder_t *other, const char *other_json) {
    static unsigned char big[900 * 1024];
    unsigned char buf[4096];
    size_t len;
    uint64_t x = 42 + (uint64_t)input;
    for (size_t i = 0; i < 64; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    buf[0] = 0x7f; /* not the magic byte 0 */
    add(p, input, topic, "random bytes", "bad_magic", "pz_b", 4, buf, 64);
    const void *b = encode_json(enc, good, &len);
    HVS_REQUIRE(len <= sizeof buf, "encoded size");
    memcpy(buf, b, len);
    buf[0] = 1;
    add(p, input, topic, "bad magic", "bad_magic", "pz_b", 4, buf, len);
    memcpy(buf, b, len);
    buf[1] = 0, buf[2] = 0x0f, buf[3] = 0x42, buf[4] = 0x3f; /* id 999999 */
    add(p, input, topic, "unknown schema id", "unknown_schema_id", "pz_b", 4, buf, len);
    memcpy(buf, b, len);
    add(p, input, topic, "truncated", "truncated", "pz_b", 4, buf, len - 3);
    add(p, input, topic, "header only", "truncated", "pz_b", 4, buf, 5);
    const void *o = encode_json(other, other_json, &len);
    add(p, input, topic, "another record type", "schema_mismatch", "pz_b", 4, o, len);
    b = encode_json(enc, good, &len); /* a good record followed by 900 KB of zeros */
    memcpy(big, b, len);
    memset(big + len, 0, sizeof big - len);
    add(p, input, topic, "900 KB value", "trailing_bytes", "pz_b", 4, big, sizeof big);
    add(p, input, topic, "null value", "empty_value", "pz_b", 4, NULL, 0);
}

static void poison_aggregates(hvs_fault_producer_t *p, const char *topic) {
    char json[2048];
    size_t len;
    const void *b;
#define AGG(what, reason, key)                                                                     \
    b = encode_json(enc_agg, json, &len);                                                          \
    add(p, 0, topic, what, reason, key, strlen(key), b, len)
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, HOUR, 0, -5, 21);
    AGG("negative heating", "value_out_of_range", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, HOUR, 0, 1, 1e6);
    AGG("room at 1e6 degC", "value_out_of_range", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, HOUR, 0, 1e300, 21);
    AGG("heating 1e300 kWh", "value_out_of_range", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, HOUR, -1, 1, 21);
    AGG("revision -1", "value_out_of_range", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, 15 * MIN, 0, 1, 21);
    AGG("15-minute window", "bad_window", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT + MIN, HOUR, 0, 1, 21);
    AGG("window not on the hour", "bad_window", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", 4102444800000LL, HOUR, 0, 1, 21);
    AGG("year 2100", "timestamp_in_future", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "apt_1", 915148800000LL, HOUR, 0, 1, 21);
    AGG("year 1999", "timestamp_too_old", "pz_b");
    pz_agg(json, sizeof json, "pz_b", "-", PT, HOUR, 0, 1, 21);
    AGG("apartment \"-\"", "bad_id", "pz_b");
    pz_agg(json, sizeof json, "pz_{b}", "apt_1", PT, HOUR, 0, 1, 21);
    AGG("building id with braces", "bad_id", "pz_{b}");
    pz_agg(json, sizeof json, "", "apt_1", PT, HOUR, 0, 1, 21);
    AGG("empty building id", "bad_id", "");
    char id[301];
    memset(id, 'q', 300);
    id[300] = '\0';
    pz_agg(json, sizeof json, id, "apt_1", PT, HOUR, 0, 1, 21);
    AGG("300-byte building id", "id_too_long", id);
    pz_agg(json, sizeof json, "pz_b", "apt_1", PT, HOUR, 0, 1, 21);
    b = encode_json(enc_agg, json, &len);
    add(p, 0, topic, "no key", "key_mismatch", NULL, 0, b, len);
    AGG("another building's key", "key_mismatch", "pz_c");
#undef AGG
    b = encode_patched(enc_agg, json, "heating_kwh", NULL, NAN, &len);
    add(p, 0, topic, "NaN heating", "non_finite", "pz_b", 4, b, len);
    b = encode_patched(enc_agg, json, "room_temp_mean_c", NULL, INFINITY, &len);
    add(p, 0, topic, "+Inf room temperature", "non_finite", "pz_b", 4, b, len);
    b = encode_patched(enc_agg, json, "apartment_id", "apt_\xff", 0, &len);
    add(p, 0, topic, "apartment id not UTF-8", "bad_id", "pz_b", 4, b, len);
    b = encode_patched(enc_agg, json, "building_id", "pz_b\xc3", 0, &len);
    add(p, 0, topic, "building id not UTF-8", "bad_id", "pz_b\xc3", 5, b, len);
}

static void poison_weather(hvs_fault_producer_t *p, const char *topic) {
    char json[2048];
    size_t len;
    const void *b;
#define WX(what, reason, key)                                                                      \
    b = encode_json(enc_wx, json, &len);                                                           \
    add(p, 1, topic, what, reason, key, strlen(key), b, len)
    pz_wx(json, sizeof json, "pz_b", PT, PT + HOUR + MIN, true, 200, 80);
    WX("200 degC", "value_out_of_range", "pz_b");
    pz_wx(json, sizeof json, "pz_b", PT, PT + HOUR + MIN, true, 3, 150);
    WX("humidity 150 %", "value_out_of_range", "pz_b");
    pz_wx(json, sizeof json, "pz_b", PT, PT + 30 * MIN, true, 3, 80);
    WX("observed before the hour ended", "value_out_of_range", "pz_b");
    pz_wx(json, sizeof json, "pz_b", PT + MIN, PT + HOUR + MIN, true, 3, 80);
    WX("hour not on the hour", "bad_window", "pz_b");
    pz_wx(json, sizeof json, "pz_b", 4102444800000LL, 4102444800000LL + HOUR + MIN, true, 3, 80);
    WX("year 2100", "timestamp_in_future", "pz_b");
    pz_wx(json, sizeof json, "pz_b", 915148800000LL, 915148800000LL + HOUR + MIN, true, 3, 80);
    WX("year 1999", "timestamp_too_old", "pz_b");
    pz_wx(json, sizeof json, "pz_{b}", PT, PT + HOUR + MIN, true, 3, 80);
    WX("building id with braces", "bad_id", "pz_{b}");
    char id[301];
    memset(id, 'q', 300);
    id[300] = '\0';
    pz_wx(json, sizeof json, id, PT, PT + HOUR + MIN, true, 3, 80);
    WX("300-byte building id", "id_too_long", id);
    pz_wx(json, sizeof json, "pz_b", PT, PT + HOUR + MIN, true, 3, 80);
    b = encode_json(enc_wx, json, &len);
    add(p, 1, topic, "no key", "key_mismatch", NULL, 0, b, len);
    WX("another building's key", "key_mismatch", "pz_c");
#undef WX
    b = encode_patched(enc_wx, json, "temperature_c", NULL, NAN, &len);
    add(p, 1, topic, "NaN temperature", "non_finite", "pz_b", 4, b, len);
    b = encode_patched(enc_wx, json, "wind_speed_ms", NULL, INFINITY, &len);
    add(p, 1, topic, "+Inf wind", "non_finite", "pz_b", 4, b, len);
    b = encode_patched(enc_wx, json, "building_id", "pz_b\xff", 0, &len);
    add(p, 1, topic, "building id not UTF-8", "bad_id", "pz_b\xff", 5, b, len);
}

static void test_poison(void) {
    need_reference();
    const char *topics[2] = {"poison.aggregates.hourly", "poison.weather.hourly"};
    for (int t = 0; t < 2; t++)
        hvs_fault_topic_create(&world, topics[t], HVS_TOPIC_DEFAULT_PARTITIONS);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    char good_agg[2048], good_wx[2048];
    pz_agg(good_agg, sizeof good_agg, "pz_b", "apt_1", PT, HOUR, 0, 1, 21);
    pz_wx(good_wx, sizeof good_wx, "pz_b", PT, PT + HOUR + MIN, true, 3, 80);
    poison_wire(p, 0, topics[0], enc_agg, good_agg, enc_wx, good_wx);
    poison_wire(p, 1, topics[1], enc_wx, good_wx, enc_agg, good_agg);
    size_t first_half = npoisons;
    publish_stream(topics[0], topics[1]);
    poison_aggregates(p, topics[0]);
    poison_weather(p, topics[1]);
    hvs_fault_producer_free(p);

    hvs_fault_opts_t o = {.inputs = {topics[0], topics[1]}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    /* the wire poisons went before the stream's records: they moved by them */
    for (size_t i = 0; i < first_half; i++)
        poisons[i].before = true;
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"undisturbed_again", test_undisturbed_again},
    {"undisturbed_small_fetches", test_undisturbed_small_fetches},
    {"kill9_three_times_seed_11", test_kill9_seed_11},
    {"kill9_three_times_seed_23", test_kill9_seed_23},
    {"kill9_three_times_seed_37", test_kill9_seed_37},
    {"redis_restart", test_redis_restart},
    {"redis_flush", test_redis_flush},
    {"rebuild_kill9", test_rebuild_kill9},
    {"redis_pause", test_redis_pause},
    {"worker_pause", test_worker_pause},
    {"broker_down", test_broker_down},
    {"broker_down_past_flush_timeout", test_broker_down_past_flush},
    {"second_member", test_second_member},
    {"poison", test_poison},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
