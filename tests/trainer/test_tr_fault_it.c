/*
 * test_tr_fault_it - the fault suite (issue 13) on hvs-trainer, through the harness
 * (tests/support/hvs_fault.h).
 *
 * What it checks: that the models the trainer publishes do not depend on how its consumption
 * was disturbed. The trainer's state is its training window and its labels in Redis (design
 * section 5); its outputs are the ModelVersion records of a training round on `models`. A round
 * starts once the inputs are caught up (HVS_TRAIN_EVERY of event time after the last: the
 * first round of a run comes when the whole stream is read), so every run trains once, at its
 * end, on the window it holds then: after kill -9, a worker paused past its session timeout,
 * Redis restarted empty, flushed (the window rebuilt by replaying the inputs over the training
 * window) or paused, a killed rebuild, a broker outage or the poison set, that window - and
 * therefore every record - must be the undisturbed run's, and the run's log must show one
 * scheduled round. The records are compared whole, the compressed XGBoost bytes, metrics,
 * folds, training profile and gate decision included; only the wall-clock fields are dropped
 * (created_at, decided_at, params.train_seconds). Dead letters are compared too. (It found a
 * restarted trainer, or one whose assignment was lost, taking an idle poll before the group's
 * assignment for caught up: it trained every scope on the window as far as its last commit.)
 *
 * The stream (deterministic given TR_SEED), written once before the first run: 3 buildings in
 * 2 archetypes with 2 apartments each, 16 days of hourly building and apartment aggregates
 * with revisions (another value 1-20 h later), exact duplicates, late hours (2-10 h, out of
 * order) and a few hours never sent; hourly observations (a few late or never published) and
 * 6-hourly forecast runs 30 h ahead; technicians' verdicts on three apartments' days (one
 * overturned later, an UNSURE that labels nothing) on alerts.feedback; alerts that are not
 * MODEL_DRIFT on `alerts` (read and ignored); bad records of every input.
 * The undisturbed run publishes v1 of forecast, anomaly-residual (global and both
 * archetypes), anomaly-classifier/global and refresh/<scope> of each approved forecast.
 *
 * Left out, by design (see tests/trainer/CMakeLists.txt): MODEL_DRIFT alerts in the stream (a
 * drift run starts at once, on the window read so far: its model depends on batch boundaries),
 * a Redis loss on a window older than the topics' retention (a rebuild can only replay what the
 * topics still hold; here they hold it all), and the second member (the trainer is a single
 * member holding the whole window). kill9_during_round (kill -9 in the middle of the round)
 * reproduces a gap, out of CI (label known_gap): the restarted member runs the whole round
 * again and publishes what it had published as new versions (design section 12).
 *
 * Settings: a small model (40 rounds of depth-3 trees on one thread, 2 folds of 3 days, 6
 * horizons), --batch 300 (many batches, so faults land mid-stream), session timeout 4 s.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_fault.h"
#include "hvs_test.h"

#define MIN 60000LL
#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC, a Monday */
#define DAYS 16
#define NB 3
#define NAPT 2
#define TR_SEED 29ULL

typedef struct bld {
    const char *id, *archetype;
    double area;
} bld_t;

static const bld_t blds[NB] = {
    {"trf_b1", "passive", 900},
    {"trf_b2", "passive", 1500},
    {"trf_b3", "older", 1100},
};

/* ---- the stage ---------------------------------------------------------------------------- */

static bool tr_key(const json_t *v, char *key, size_t len) {
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *ver = json_object_get(v, "version");
    if (!name || !json_is_integer(ver))
        return false;
    snprintf(key, len, "%s#%lld", name, (long long)json_integer_value(ver));
    return true;
}

/* The record without its wall-clock fields: when it was made and decided, how long it took. */
static json_t *tr_comparable(const json_t *v) {
    json_t *c = json_deep_copy(v);
    json_object_del(c, "created_at");
    json_object_del(c, "decided_at");
    json_object_del(json_object_get(c, "params"), "train_seconds");
    return c;
}

/* The round has ended: the trainer writes hvs:tr:last (the newest hour it trained up to) once
 * its queue of runs is empty. A run can take seconds on a loaded machine, with no output
 * meanwhile: the harness's quiet time alone would end the run in the middle of the round. */
static bool tr_settled(hvs_fault_run_t *run) {
    hvs_redis_t *r = NULL;
    hvs_err_t err = {0};
    redisReply *rep = NULL;
    bool done = hvs_redis_connect(run->redis.addr, NULL, &r, &err) == 0 &&
                hvs_redis_command(r, &rep, &err, "GET hvs:tr:last") == 0 && rep &&
                rep->type == REDIS_REPLY_STRING && strtoll(rep->str, NULL, 10) == T0 + DAYS * DAY;
    if (rep)
        freeReplyObject(rep);
    hvs_redis_destroy(r);
    return done;
}

static const hvs_fault_stage_t STAGE = {
    .name = "trainer",
    .exe = HVS_TEST_TRAINER,
    .args = "--window 30d --apartment-window 30d --every 7d --mature-days 5d --building-days 100d "
            "--folds 2 --fold-days 3 --min-train-days 7 --horizons 1,2,3,6,12,24 --per-hour 2 "
            "--rounds 40 --eta 0.2 --max-depth 3 --nthread 1 --min-labels 3 --top-k 1 "
            "--batch 300 --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500 OMP_WAIT_POLICY=PASSIVE",
    .inputs = {"aggregates.hourly", "weather.hourly", "alerts.feedback", "alerts"},
    .outputs = {"models"},
    .dead_letters = {"aggregates.hourly.dlq", "weather.hourly.dlq", "alerts.feedback.dlq",
                     "alerts.dlq"},
    .output_partitions = 1, /* `models` has one */
    .key = tr_key,
    .rank = NULL, /* the later message */
    .comparable = tr_comparable,
    .settled = tr_settled,
};

/* ---- the seeded world ------------------------------------------------------------------------ */

/* A uniform draw in [0, 1) for (a, b) and what it decides (salt). */
static double u(int64_t a, int64_t b, int salt) {
    return hvs_test_draw(TR_SEED, salt, (const int64_t[]){a, b}, 2);
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
    return 3 + 4 * sin(2 * M_PI * (hr - 9) / 24) + 6 * sin(2 * M_PI * d / 11);
}

static double true_ghi(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24);
    return hr >= 7 && hr <= 16 ? 400 * sin(M_PI * (hr - 6.5) / 10.5) : 0;
}

/* bld b's apartment a (-1: the building) in hour h at revision rev. trf_b1's apt_1 heats
 * twice as much on every 4th day from day 1 (a stuck valve): the days technicians confirm. */
static bool fault_day(int b, int a, int day) { return b == 0 && a == 1 && day % 4 == 1; }

static bool labelled(int b, int a) { return b == 0 || (b == 1 && a == 0); }

static double heat(int b, int a, hvs_ms_t h, int rev) {
    double base = blds[b].area *
                  (0.0025 * fmax(0, 18 - true_temp(h)) + 0.006 - 0.000004 * true_ghi(h)) *
                  (1 + 0.16 * (u(b * 10 + a + 1, h / HOUR, S_NOISE) - 0.5)) * (1 + 0.1 * rev);
    if (a < 0)
        return base;
    return base / 20 * (1 + 0.1 * a) * (fault_day(b, a, (int)((h - T0) / DAY)) ? 2 : 1);
}

static struct { int gaps, late, revs, dups, obs_late, obs_missing, runs, verdicts; } made;

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld, *enc_fb, *enc_alert;
static hvs_fault_recs_t aggs, wxs, fbs, alerts;

static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
    return buf;
}

static void add_json(hvs_fault_recs_t *rs, hvs_encoder_t *enc, int64_t at, const char *key,
                     const char *json) {
    size_t len;
    const void *buf = encode_json(enc, json, &len);
    hvs_fault_recs_add(rs, at, key, buf, len);
}

/* An aggregate (apt NULL: the building's row) of window [ws, ws + size). */
static void add_agg(const char *key, const char *bld, const char *apt, hvs_ms_t ws, int64_t size,
                    int rev, double kwh, hvs_ms_t at) {
    char json[2048], a[64];
    snprintf(a, sizeof a, apt ? "\"%s\"" : "null", apt);
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":%d,\"heating_kwh\":%.17g,"
             "\"hot_water_litres\":10.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":4,\"readings_seen\":4,\"reporting_apartments\":null,"
             "\"known_apartments\":null,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             bld, a, (long long)ws, (long long)(ws + size), (long long)size, rev, kwh,
             (long long)at);
    add_json(&aggs, enc_agg, at, key, json);
}

/* A weather record of `hour` issued at `issued` (observed, or a forecast). */
static void add_wx(const char *key, const char *bld, hvs_ms_t hour, hvs_ms_t issued, bool observed,
                   double temp) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"latitude\":47.37,\"longitude\":8.54,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.17g,"
             "\"relative_humidity_pct\":70.0,\"cloud_cover_pct\":40.0,"
             "\"shortwave_radiation_wm2\":%.17g,\"wind_speed_ms\":3.0,\"provider\":\"test\"}",
             bld, (long long)hour, (long long)issued, observed ? "OBSERVED" : "FORECAST", temp,
             true_ghi(hour));
    add_json(&wxs, enc_wx, issued, key, json);
}

/* A technician's verdict on the ANOMALY alert of (bld b, apt a, day d). */
static void add_verdict(int b, int a, int day, const char *label, hvs_ms_t at) {
    int64_t y;
    int m, dd;
    hvs_time_civil_from_days((T0 + day * DAY) / DAY, &y, &m, &dd);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"alert_id\":\"apt_%d#%04lld-%02d-%02d#ANOMALY\",\"building_id\":\"%s\","
             "\"apartment_id\":\"apt_%d\",\"technician_id\":\"tech_%d\",\"label\":\"%s\","
             "\"root_cause\":null,\"comment\":null,\"labelled_at\":%lld}",
             a, (long long)y, m, dd, blds[b].id, a, day % 3, label, (long long)at);
    add_json(&fbs, enc_fb, at, blds[b].id, json);
    made.verdicts++;
}

/* An alert on `alerts` that is not MODEL_DRIFT (the trainer reads and ignores it). */
static void add_alert(int b, const char *type, const char *model, hvs_ms_t at) {
    char json[1024], mj[96];
    snprintf(mj, sizeof mj, model ? "\"%s\"" : "null", model);
    snprintf(json, sizeof json,
             "{\"alert_id\":\"%s#2025-01-10#%s\",\"building_id\":\"%s\",\"apartment_id\":null,"
             "\"type\":\"%s\",\"status\":\"UNSEEN\",\"severity\":\"WARNING\",\"score\":0.4,"
             "\"rank\":null,\"summary\":\"test\",\"evidence\":{},\"model\":%s,\"first_seen\":%lld,"
             "\"updated_at\":%lld,\"team\":null}",
             blds[b].id, type, blds[b].id, type, mj, (long long)at, (long long)at);
    add_json(&alerts, enc_alert, at, blds[b].id, json);
}

static void gen(void) {
    for (int b = 0; b < NB; b++) {
        const char *id = blds[b].id;
        for (int64_t i = 0; i < DAYS * 24; i++) {
            hvs_ms_t h = T0 + i * HOUR, end = h + HOUR;
            for (int a = -1; a < NAPT; a++) {
                char apt[16];
                snprintf(apt, sizeof apt, "apt_%d", a);
                int ent = b * 10 + a + 1; /* the draws of this series */
                /* never the first or last hour: every run's window has the same ends */
                if (i > 0 && i < DAYS * 24 - 1 && u(ent, i, S_GAP) < 0.02) {
                    made.gaps++;
                    continue;
                }
                hvs_ms_t at = end + (a < 0 ? 3 : 4) * MIN;
                if (i > 0 && i < DAYS * 24 - 1 && u(ent, i, S_LATE) < 0.04) {
                    at = end + 2 * HOUR + (hvs_ms_t)(8 * HOUR * u(ent, i, S_LATE_BY));
                    made.late++;
                }
                const char *ap = a < 0 ? NULL : apt;
                add_agg(id, id, ap, h, HOUR, 0, heat(b, a, h, 0), at);
                if (u(ent, i, S_REV) < 0.05) {
                    hvs_ms_t at1 = at + HOUR + (hvs_ms_t)(19 * HOUR * u(ent, i, S_REV_AT));
                    add_agg(id, id, ap, h, HOUR, 1, heat(b, a, h, 1), at1);
                    made.revs++;
                }
                if (u(ent, i, S_DUP) < 0.03) {
                    add_agg(id, id, ap, h, HOUR, 0, heat(b, a, h, 0),
                            at + (hvs_ms_t)(3 * HOUR * u(ent, i, S_DUP_AT)));
                    made.dups++;
                }
            }
            /* the observation (not of the last hour: its absence is the same in every run) */
            if (u(b, i, S_OBS_MISS) < 0.02) {
                made.obs_missing++;
            } else {
                hvs_ms_t issued = end + 10 * MIN;
                if (u(b, i, S_OBS_LATE) < 0.03) {
                    issued = end + 3 * HOUR + (hvs_ms_t)(9 * HOUR * u(b, i, S_OBS_LATE_BY));
                    made.obs_late++;
                }
                add_wx(id, id, h, issued, true, true_temp(h));
            }
            /* a forecast run every 6 hours, 30 hours ahead, issued 2 h after its run */
            if (i % 6 == 0) {
                for (int l = 1; l <= 30; l++) {
                    hvs_ms_t t = h + l * HOUR;
                    double e = 0.05 * l * (u(i, l, S_FC) - 0.5);
                    add_wx(id, id, t, h + 2 * HOUR, false, true_temp(t) + e);
                }
                made.runs++;
            }
        }
    }
    /* trf_b1's apartments and trf_b2's apt_0 looked at every day from day 1: a fault day is a
     * true positive, any other a false alarm, given the morning after */
    for (int d = 1; d < DAYS; d++)
        for (int b = 0; b < 2; b++)
            for (int a = 0; a < NAPT; a++)
                if (labelled(b, a))
                    add_verdict(b, a, d, fault_day(b, a, d) ? "TRUE_POSITIVE" : "FALSE_POSITIVE",
                                T0 + (d + 1) * DAY + 9 * HOUR);
    /* one verdict overturned a day later (the latest wins); an UNSURE labels nothing */
    add_verdict(0, 0, 3, "FALSE_POSITIVE", T0 + 4 * DAY + 9 * HOUR);
    add_verdict(0, 0, 3, "TRUE_POSITIVE", T0 + 5 * DAY + 9 * HOUR);
    add_verdict(1, 1, 6, "UNSURE", T0 + 7 * DAY + 9 * HOUR);
    /* alerts the trainer reads but has nothing to do with */
    add_alert(1, "DATA_QUALITY", NULL, T0 + 3 * DAY);
    add_alert(2, "FORECAST_LOW_CONFIDENCE", "forecast/global:1", T0 + 9 * DAY);
}

/* The bad records (dead letters of every run) and their reasons, by input. */
static const char *const NATURAL[][2] = {
    {"aggregates.hourly", "not_hourly"}, {"aggregates.hourly", "key_mismatch"},
    {"aggregates.hourly", "bad_magic"},  {"weather.hourly", "not_hourly"},
    {"alerts.feedback", "bad_alert_id"}, {"alerts.feedback", "key_mismatch"},
    {"alerts.feedback", "empty_value"},  {"alerts", "bad_magic"},
};
#define NNATURAL (sizeof NATURAL / sizeof NATURAL[0])

static void add_raw(hvs_fault_recs_t *rs, int64_t at, const char *key, const void *v, size_t len) {
    hvs_fault_recs_add(rs, at, key, v, len);
}

static void gen_bad(void) {
    static const char junk[] = "\x7f\x01\x02\x03not avro at all";
    add_agg(blds[0].id, blds[0].id, NULL, T0 + 30 * HOUR, 15 * MIN, 0, 2.0, T0 + 31 * HOUR + MIN);
    add_agg(blds[2].id, blds[1].id, NULL, T0 + 70 * HOUR, HOUR, 0, 4.0, T0 + 71 * HOUR + MIN);
    add_raw(&aggs, T0 + 100 * HOUR, blds[1].id, junk, sizeof junk - 1);
    add_wx(blds[1].id, blds[1].id, T0 + 90 * HOUR + 30 * MIN, T0 + 91 * HOUR + 5 * MIN, true, 4.0);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"alert_id\":\"apt_0#ANOMALY\",\"building_id\":\"%s\",\"apartment_id\":\"apt_0\","
             "\"technician_id\":\"t\",\"label\":\"TRUE_POSITIVE\",\"root_cause\":null,"
             "\"comment\":null,\"labelled_at\":%lld}",
             blds[0].id, (long long)(T0 + 6 * DAY));
    add_json(&fbs, enc_fb, T0 + 6 * DAY, blds[0].id, json);
    snprintf(json, sizeof json,
             "{\"alert_id\":\"apt_0#2025-01-08#ANOMALY\",\"building_id\":\"%s\","
             "\"apartment_id\":\"apt_0\",\"technician_id\":\"t\",\"label\":\"TRUE_POSITIVE\","
             "\"root_cause\":null,\"comment\":null,\"labelled_at\":%lld}",
             blds[0].id, (long long)(T0 + 8 * DAY));
    add_json(&fbs, enc_fb, T0 + 8 * DAY, blds[1].id, json); /* another building's key */
    add_raw(&fbs, T0 + 10 * DAY, blds[0].id, NULL, 0);
    add_raw(&alerts, T0 + 11 * DAY, blds[2].id, junk, sizeof junk - 1);
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
    hvs_encoder_destroy(enc_fb);
    hvs_encoder_destroy(enc_alert);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_fault_recs_free(&aggs);
    hvs_fault_recs_free(&wxs);
    hvs_fault_recs_free(&fbs);
    hvs_fault_recs_free(&alerts);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

static void send_recs(const hvs_fault_recs_t *rs, const char *topic) {
    hvs_err_t err = {0};
    for (size_t k = 0; k < rs->n; k++)
        HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, rs->r[k].key,
                                      strlen(rs->r[k].key), rs->r[k].len ? rs->r[k].buf : NULL,
                                      rs->r[k].len, &err) == 0,
                    "send to %s: %s", topic, err.msg);
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

/* The stream into the four inputs (topics[i]: the stage's inputs[i] or a copy). */
static void publish_stream(const char *const topics[4]) {
    send_recs(&wxs, topics[1]);
    send_recs(&aggs, topics[0]);
    send_recs(&fbs, topics[2]);
    send_recs(&alerts, topics[3]);
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"%s\",\"commissioning_date\":"
                 "1577836800000,\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":%.1f,"
                 "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[{\"apartment_id\":\"apt_0\",\"area_m2\":60.0},"
                 "{\"apartment_id\":\"apt_1\",\"area_m2\":66.0}],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 blds[b].id, blds[b].archetype, blds[b].area);
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
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, NULL, &enc_agg, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, NULL, &enc_wx, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_FEEDBACK, NULL, &enc_fb, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_ALERT, NULL, &enc_alert, &err) == 0,
                "setup: %s", err.msg);
    gen();
    gen_bad();
    hvs_fault_recs_sort(&aggs);
    hvs_fault_recs_sort(&wxs);
    hvs_fault_recs_sort(&fbs);
    hvs_fault_recs_sort(&alerts);
    printf("  input: %zu aggregates (%d gaps, %d late, %d revisions, %d duplicates), %zu weather "
           "records (%d runs, %d observations late, %d never published), %zu verdicts, %zu "
           "alerts, bad records %zu\n",
           aggs.n, made.gaps, made.late, made.revs, made.dups, wxs.n, made.runs, made.obs_late,
           made.obs_missing, fbs.n, alerts.n, NNATURAL);
    publish_topology(); /* followed from the beginning by every member */
    const char *const topics[4] = {STAGE.inputs[0], STAGE.inputs[1], STAGE.inputs[2],
                                   STAGE.inputs[3]};
    publish_stream(topics);
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

/* One scheduled round in the run's log: a round started before the stream was read (an idle
 * poll before the group's assignment taken for caught up) would be a second, or the only one
 * on a partial window. */
static void one_round(const hvs_fault_run_t *run) {
    size_t n = hvs_fault_log_count(run, "training every model (scheduled)");
    HVS_CHECK(n == 1, "%s: %zu scheduled rounds (want 1)", run->name, n);
}

static const char *const TRAINED[] = {
    "forecast/global",
    "forecast/archetype:passive",
    "forecast/archetype:older",
    "anomaly-residual/global",
    "anomaly-residual/archetype:passive",
    "anomaly-residual/archetype:older",
    "anomaly-classifier/global",
};
#define NTRAINED (sizeof TRAINED / sizeof TRAINED[0])

static const char *param(const json_t *rec, const char *name) {
    return json_string_value(json_object_get(json_object_get(rec, "params"), name));
}

/* The reference is not vacuous: one round at the end of the stream, v1 of every scope trained
 * on the whole window (train_end = the stream's last hour), refresh/<scope> exactly for the
 * approved forecasts, fitted from them; the classifier evaluated on the labels as they stand
 * after the overturned verdict; every bad record dead-lettered with its reason. */
static void test_reference(void) {
    need_reference();
    const char *k;
    json_t *v;
    size_t approved_fc = 0, refreshes = 0, wrong_end = 0;
    json_object_foreach(ref->latest, k, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        HVS_CHECK(json_integer_value(json_object_get(v, "version")) == 1, "reference: %s", k);
        long long end = (long long)json_integer_value(json_object_get(v, "train_end"));
        wrong_end += strncmp(name, "refresh/", 8) != 0 && end != T0 + DAYS * DAY;
        const char *status = json_string_value(json_object_get(v, "status"));
        if (!strncmp(name, "forecast/", 9) && hvs_test_streq(status, "APPROVED")) {
            approved_fc++;
            char rname[200], base[220];
            snprintf(rname, sizeof rname, "refresh/%s#1", name + 9);
            snprintf(base, sizeof base, "%s:1", name);
            json_t *r = json_object_get(ref->latest, rname);
            HVS_CHECK(r && hvs_test_streq(param(r, "baseline"), base),
                      "reference: %s fitted from approved %s v1 (baseline %s)", rname, name,
                      r ? hvs_test_str(param(r, "baseline")) : "-");
        }
        refreshes += !strncmp(name, "refresh/", 8);
    }
    for (size_t i = 0; i < NTRAINED; i++) {
        char key[200];
        snprintf(key, sizeof key, "%s#1", TRAINED[i]);
        json_t *r = json_object_get(ref->latest, key);
        HVS_CHECK(r != NULL, "reference: %s published", key);
        HVS_CHECK(!r || json_string_length(json_object_get(r, "model_bytes")) > 100,
                  "reference: %s carries its model", key);
    }
    HVS_CHECK(wrong_end == 0, "reference: %zu versions not trained up to the stream's end",
              wrong_end);
    HVS_CHECK(approved_fc >= 1 && refreshes == approved_fc,
              "reference: %zu refresh versions for %zu approved forecasts", refreshes, approved_fc);
    HVS_CHECK(json_object_size(ref->latest) == NTRAINED + refreshes,
              "reference: %zu versions (want %zu + %zu refresh)", json_object_size(ref->latest),
              NTRAINED, refreshes);
    /* the classifier's labels: the verdicts on the 6 held-out days (days 10..15); the day-3
     * verdict overturned to a fault is outside them, UNSURE labels nothing */
    json_t *cls = json_object_get(ref->latest, "anomaly-classifier/global#1");
    int want_lab = 0, want_fault = 0;
    for (int d = DAYS - 6; d < DAYS; d++)
        for (int b = 0; b < 2; b++)
            for (int a = 0; a < NAPT; a++)
                if (labelled(b, a))
                    want_lab++, want_fault += fault_day(b, a, d);
    HVS_CHECK(cls && atoi(hvs_test_str(param(cls, "labelled_days"))) == want_lab &&
                  atoi(hvs_test_str(param(cls, "fault_days"))) == want_fault,
              "reference: classifier evaluated on %s labelled days (want %d), %s faults (want %d)",
              cls ? hvs_test_str(param(cls, "labelled_days")) : "-", want_lab,
              cls ? hvs_test_str(param(cls, "fault_days")) : "-", want_fault);
    HVS_CHECK(json_object_size(ref->dead) == NNATURAL, "reference: %zu dead letters (want %zu)",
              json_object_size(ref->dead), NNATURAL);
    for (size_t i = 0; i < NNATURAL; i++)
        HVS_CHECK(hvs_fault_count_reason(ref->dead, NATURAL[i][0], NATURAL[i][1]) == 1,
                  "reference: a record of %s dead-lettered as %s", NATURAL[i][0], NATURAL[i][1]);
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
    one_round(ref);
    printf("  reference: %zu versions (%zu refresh), %.1f s\n", json_object_size(ref->latest),
           refreshes, (double)ref->ms / 1000);
}

static void standard(hvs_fault_run_t *(*fn)(hvs_fault_world_t *, const hvs_fault_run_t *)) {
    need_reference();
    hvs_fault_run_t *run = fn(&world, ref);
    one_round(run);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

static void test_undisturbed_again(void) { standard(hvs_fault_case_again); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_redis_pause(void) { standard(hvs_fault_case_redis_pause); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }
static void test_worker_pause(void) { standard(hvs_fault_case_worker_pause); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }

static void test_kill9_seed_11(void) {
    need_reference();
    hvs_fault_run_t *run = hvs_fault_case_kill9(&world, ref, 11);
    one_round(run);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

/* Once the stream is read, kill -9 the member after the round's first published version (the
 * round runs after the last commit, so no progress-drawn point lands in it). A known gap: the
 * restart runs the round again, so forecast/global v2 (the same model, PENDING_APPROVAL) is a
 * key the reference does not have. */
static void kill_in_round(hvs_fault_run_t *run, void *arg) {
    (void)arg;
    for (int64_t end = hvs_test_now_ms() + 60000; hvs_test_now_ms() < end;) {
        if (hvs_fault_log_count(run, "\"model version published\"") >= 1) {
            hvs_fault_kill9(run, NULL);
            return;
        }
        hvs_fault_wait(run, 5);
    }
    HVS_CHECK(false, "%s: no version published within 60 s", run->name);
}

static void test_kill9_during_round(void) {
    need_reference();
    hvs_fault_opts_t o = {.npoints = 1};
    o.points[0] = (hvs_fault_point_t){1.0, "kill -9 in the training round", kill_in_round, NULL};
    hvs_fault_run_t *run = hvs_fault_run(&world, "kill9-round", &o);
    hvs_fault_check_same(ref, run);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

/* ---- the poison set -------------------------------------------------------------------------- */

#define NPOISON 16
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;

static void add_poison(hvs_fault_producer_t *p, int input, const char *topic, const char *what,
                       const char *reason, const char *key, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = input};
    hvs_fault_produce(p, topic, key, key ? strlen(key) : 0, value, len, &x->partition, &x->offset);
}

static void test_poison(void) {
    need_reference();
    const char *const topics[4] = {"poison.aggregates.hourly", "poison.weather.hourly",
                                   "poison.alerts.feedback", "poison.alerts"};
    for (int t = 0; t < 4; t++)
        hvs_fault_topic_create(&world, topics[t], HVS_TOPIC_DEFAULT_PARTITIONS);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    unsigned char junk[48];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(0x7f + 29 * i);
    /* before the stream: records of building "pz_b" (in no other record) */
    for (int t = 0; t < 4; t++)
        add_poison(p, t, topics[t], "random bytes", "bad_magic", "pz_b", junk, sizeof junk);
    add_agg("pz_b", "pz_b", NULL, T0 + 50 * HOUR, HOUR, 0, 1.0, T0 + 51 * HOUR);
    const hvs_fault_rec_t *a = &aggs.r[aggs.n - 1]; /* taken back out below */
    add_poison(p, 0, topics[0], "truncated", "truncated", "pz_b", a->buf, a->len - 3);
    add_poison(p, 2, topics[2], "null value", "empty_value", "pz_b", NULL, 0);
    size_t first_half = npoisons;
    publish_stream(topics);
    /* after it: a valid hour under another building's key, a feedback without a technician */
    add_poison(p, 0, topics[0], "another building's key", "key_mismatch", "pz_c", a->buf, a->len);
    free(aggs.r[--aggs.n].buf);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"alert_id\":\"apt_0#2025-01-08#ANOMALY\",\"building_id\":\"pz_b\","
             "\"apartment_id\":\"apt_0\",\"technician_id\":\"\",\"label\":\"TRUE_POSITIVE\","
             "\"root_cause\":null,\"comment\":null,\"labelled_at\":%lld}",
             (long long)(T0 + 8 * DAY));
    size_t len;
    const void *b = encode_json(enc_fb, json, &len);
    add_poison(p, 2, topics[2], "feedback without technician", "missing_technician_id", "pz_b", b,
               len);
    hvs_fault_producer_free(p);

    hvs_fault_opts_t o = {.inputs = {topics[0], topics[1], topics[2], topics[3]}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    for (size_t i = 0; i < first_half; i++)
        poisons[i].before = true;
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    one_round(run);
    printf("  %s: %.1f s\n", run->name, (double)run->ms / 1000);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"undisturbed_again", test_undisturbed_again},
    {"kill9_three_times_seed_11", test_kill9_seed_11},
    {"redis_restart", test_redis_restart},
    {"redis_flush", test_redis_flush},
    {"redis_pause", test_redis_pause},
    {"worker_pause", test_worker_pause},
    {"broker_down", test_broker_down},
    {"rebuild_kill9", test_rebuild_kill9},
    {"poison", test_poison},
    {"kill9_during_round", test_kill9_during_round},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
