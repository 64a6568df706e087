/*
 * test_rf_fault_it - the fault suite (issue 13) on hvs-refresher, through the harness
 * (tests/support/hvs_fault.h). The test writes its own seeded, messy input (deterministic given
 * RF_SEED): 5 buildings, 4 days of 15-minute building totals on aggregates.15m, each quarter
 * published 2 minutes after it ended but: revisions (revision 1, another value, 15 min - 3 h
 * after an original sent on time), late quarters (30 min - 3.5 h, out of order), exact
 * duplicates (up to 2 h later, of quarters not revised) and a few quarters never sent;
 * apartment rows among them (ignored by the refresher); hourly baselines on forecasts.baseline
 * (issued on the hour, published 5 minutes later, 72 points with an interval; a few never
 * published), by forecast/global v2 for three buildings (refresh/global v1, published APPROVED
 * on `models` before any run, corrects them), forecast/archetype:passive for one and the rules
 * for one (no refresh model of their scope: the online fit); a few bad records (an hourly
 * window, a negative heating, another building's key, a REFRESHED forecast): dead letters of
 * every run. Every input is produced before the first run, so each run interleaves the two
 * topics as its consumer happens to (the reference read every partition's aggregates before
 * its baselines). Late inputs stay within HVS_RF_REISSUE (4 h): a tick an input later than
 * that could change is made again only that far back from the last tick, so beyond it the
 * latest refresh would depend on where the batches ended; and the refresher keeps the last
 * value it reads of a quarter (revision numbers are not compared), so no older revision comes
 * after a newer one.
 *
 * The real process runs against a real redis-server and hvs-devbroker: once undisturbed (the
 * reference), once more undisturbed, then once per fault (kill -9 three times, Redis restarted
 * empty, Redis flushed, Redis flushed then the member killed while it rebuilds, the broker
 * down for 15 s) and the poison set. Every run must end with the same latest refresh per
 * (building, issued_at) - the whole Forecast record as hvsctl tail prints it: nothing in it is
 * wall-clock - and the same dead letters.
 *
 * What it found, fixed in the refresher: ticks were made once the quarters reached t + the
 * baseline wait even while the partition's baselines were still to be read, and only the 4
 * newest baselines were kept (the reference published 84 of 1915 refreshes); the first tick's
 * place was kept in memory only (kill -9 and the broker outage lost whole partitions); a
 * rebuild made quietly ticks the baseline wait's fallback or its own live inputs had made
 * (never published, or a stale version left as the latest); with the ticks made as each input is
 * applied, a partition-wide baseline watermark let one building's tick go before its own
 * baseline of the hour (136 of 1835 latest refreshes differed between two undisturbed runs), and
 * the baselines "still to read" did not count those polled in the batch but not handled yet (728
 * ticks made without a baseline). rebuild_kill9 failed about one run in two, as the
 * forecaster's did, until the runner's next rebuild replayed quietly only up to the killed one's
 * targets (stage_state.c); it runs in CI since.
 *
 * Settings: the worker's defaults but --batch 50 (many batches, so faults land mid-stream),
 * session timeout 4 s, heartbeat 500 ms, stall timeout 10 s, fetch wait 10 ms.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_fault.h"
#include "hvs_test.h"
#include "refresh_model.h"

#define MIN 60000LL
#define QTR (15 * MIN)
#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC, a Monday */
#define DAYS 4
#define NB 5
#define RF_SEED 23ULL

typedef struct bld {
    const char *id;
    double area, scale, bias; /* scale: mean kWh per hour; bias: the actuals' over the baseline */
    const char *model;        /* the baselines' model_name */
    int version;
} bld_t;

static const bld_t blds[NB] = {
    {"rff_b1", 1200, 60, 0.15, "forecast/global", 2},
    {"rff_b2", 2500, 140, -0.08, "forecast/global", 2},
    {"rff_b3", 800, 35, 0.0, "forecast/global", 2},
    {"rff_b4", 600, 20, 0.25, "forecast/archetype:passive", 1},
    {"rff_b5", 1500, 75, -0.12, "rules", 0},
};

/* refresh/global v1 */
static const double C0[3] = {0.0004, 0.0002, 0.0001};
static const double CL[3][3] = {{0.55, 0.2, 0.1}, {0.35, 0.2, 0.1}, {0.25, 0.15, 0.1}};

/* ---- the stage ---------------------------------------------------------------------------- */

static bool rf_key(const json_t *v, char *key, size_t len) {
    const char *b = json_string_value(json_object_get(v, "building_id"));
    if (!b)
        return false;
    snprintf(key, len, "%s/%lld", b,
             (long long)json_integer_value(json_object_get(v, "issued_at")));
    return true;
}

static const hvs_fault_stage_t STAGE = {
    .name = "refresher",
    .exe = HVS_TEST_REFRESHER,
    .args = "--batch 50 --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"aggregates.15m", "forecasts.baseline"},
    .outputs = {"forecasts.refreshed"},
    .dead_letters = {"aggregates.15m.dlq", "forecasts.baseline.dlq"},
    .key = rf_key,
    .rank = NULL,       /* the later message: a tick made again is published after the first */
    .comparable = NULL, /* the whole refresh */
};

/* ---- the seeded world ------------------------------------------------------------------------ */

static double u(int64_t a, int64_t b, int salt) {
    return hvs_test_draw(RF_SEED, salt, (const int64_t[]){a, b}, 2);
}

enum {
    S_GAP = 1,
    S_LATE,
    S_LATE_BY,
    S_REV,
    S_REV_AT,
    S_DUP,
    S_DUP_AT,
    S_NOISE,
    S_QNOISE,
    S_BASE_MISS,
    S_FC
};

/* The building's expected heat of hour x (what the baselines aim at): a daily shape with a
 * morning peak, a slow swing over the days. */
static double shape(int b, hvs_ms_t x) {
    double hod = (double)((x / HOUR) % 24), d = (double)(x - T0) / DAY;
    return blds[b].scale *
           (1 + 0.35 * cos(2 * M_PI * (hod - 7) / 24) + 0.1 * sin(2 * M_PI * (d + b) / 5));
}

/* The actual of quarter j of hour x, revision rev. */
static double quarter(int b, hvs_ms_t x, int j, int rev) {
    double hour = shape(b, x) * (1 + blds[b].bias) * (1 + 0.1 * (u(b, x / HOUR, S_NOISE) - 0.5));
    double w = 0.25 * (1 + 0.12 * (u(b * 4 + j, x / HOUR, S_QNOISE) - 0.5));
    return hour * w * (1 + 0.1 * rev);
}

/* The baseline issued at `issued` for hour x. */
static double baseline(int b, hvs_ms_t issued, hvs_ms_t x) {
    double lead = (double)(x - issued) / HOUR;
    return shape(b, x) * (1 + 0.002 * lead * (u(issued / HOUR, x / HOUR, S_FC + b) - 0.5));
}

static struct { int gaps, late, revs, dups, apt_rows, baselines, base_missing; } made;

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_fc, *enc_bld;
static hvs_fault_recs_t aggs, fcs;

static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%.300s)", err.msg, json);
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
             "\"hot_water_litres\":2.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":1,\"readings_seen\":1,\"reporting_apartments\":%s,"
             "\"known_apartments\":%s,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             bld, a, (long long)ws, (long long)(ws + size), (long long)size, rev, kwh,
             apt ? "null" : "2", apt ? "null" : "2", (long long)emitted);
}

/* A Forecast of building b issued at `issued`: 72 hourly points from the hour. */
static void fc_json(char *buf, size_t cap, int b, const char *bld, hvs_ms_t issued,
                    const char *kind) {
    size_t o = (size_t)snprintf(buf, cap,
                                "{\"building_id\":\"%s\",\"issued_at\":%lld,\"kind\":\"%s\","
                                "\"points\":[",
                                bld, (long long)issued, kind);
    for (int i = 0; i < 72 && o < cap; i++) {
        hvs_ms_t th = issued + i * HOUR;
        double y = baseline(b, issued, th);
        o += (size_t)snprintf(buf + o, cap - o,
                              "%s{\"target_hour\":%lld,\"horizon_h\":%d,\"yhat_kwh\":%.17g,"
                              "\"yhat_lower_kwh\":%.17g,\"yhat_upper_kwh\":%.17g,"
                              "\"correction_kwh\":null}",
                              i ? "," : "", (long long)th, i + 1, y, 0.85 * y, 1.2 * y);
    }
    if (o < cap)
        snprintf(buf + o, cap - o,
                 "],\"model_name\":\"%s\",\"model_version\":%d,\"baseline_version\":null,"
                 "\"baseline_issued_at\":null,\"out_of_distribution\":false,\"flags\":[%s]}",
                 blds[b].model, blds[b].version, blds[b].version ? "" : "\"rules_only\"");
}

static void add_agg(const char *key, const char *bld, const char *apt, hvs_ms_t ws, int64_t size,
                    int rev, double kwh, hvs_ms_t at) {
    char json[2048];
    size_t len;
    agg_json(json, sizeof json, bld, apt, ws, size, rev, kwh, at);
    const void *buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&aggs, at, key, buf, len);
}

static void add_fc(const char *key, int b, const char *bld, hvs_ms_t issued, const char *kind,
                   hvs_ms_t at) {
    static char json[65536];
    size_t len;
    fc_json(json, sizeof json, b, bld, issued, kind);
    const void *buf = encode_json(enc_fc, json, &len);
    hvs_fault_recs_add(&fcs, at, key, buf, len);
}

static void gen(void) {
    for (int b = 0; b < NB; b++) {
        const char *id = blds[b].id;
        for (int64_t i = 0; i < DAYS * 24; i++) {
            hvs_ms_t x = T0 + i * HOUR;
            /* the baseline issued on the hour (not the first: every run starts the same) */
            if (i > 0 && u(b, i, S_BASE_MISS) < 0.03) {
                made.base_missing++;
            } else {
                add_fc(id, b, id, x, "BASELINE", x + 5 * MIN);
                made.baselines++;
            }
            for (int j = 0; j < 4; j++) {
                int64_t qi = i * 4 + j;
                hvs_ms_t ws = x + j * QTR, end = ws + QTR;
                /* an apartment's row: not the refresher's */
                if (qi % 7 == 3) {
                    add_agg(id, id, "apt_1", ws, QTR, 0, 0.3, end + 3 * MIN);
                    made.apt_rows++;
                }
                if (qi > 0 && u(b, qi, S_GAP) < 0.01) {
                    made.gaps++;
                    continue;
                }
                hvs_ms_t at = end + 2 * MIN;
                bool late = qi > 0 && u(b, qi, S_LATE) < 0.03;
                if (late) {
                    at = end + 30 * MIN + (hvs_ms_t)(3 * HOUR * u(b, qi, S_LATE_BY));
                    made.late++;
                }
                add_agg(id, id, NULL, ws, QTR, 0, quarter(b, x, j, 0), at);
                /* a revision of a quarter sent on time, at most 3 h 17 min after its end; an
                 * exact duplicate of one never revised (the refresher keeps the last value it
                 * reads: an older revision read after a newer one would be taken) */
                if (!late && u(b, qi, S_REV) < 0.04) {
                    hvs_ms_t at1 = at + 15 * MIN + (hvs_ms_t)(3 * HOUR * u(b, qi, S_REV_AT));
                    add_agg(id, id, NULL, ws, QTR, 1, quarter(b, x, j, 1), at1);
                    made.revs++;
                } else if (u(b, qi, S_DUP) < 0.03) {
                    add_agg(id, id, NULL, ws, QTR, 0, quarter(b, x, j, 0),
                            at + (hvs_ms_t)(2 * HOUR * u(b, qi, S_DUP_AT)));
                    made.dups++;
                }
            }
        }
    }
}

/* The bad records (dead letters of every run) and their reasons, by input. */
#define NATURAL_AGG 3
#define NATURAL_FC 1
static const char *const NATURAL_REASONS[] = {"bad_window", "value_out_of_range", "key_mismatch"};

static void gen_bad(void) {
    add_agg(blds[0].id, blds[0].id, NULL, T0 + 30 * HOUR, HOUR, 0, 20.0, T0 + 31 * HOUR + MIN);
    add_agg(blds[1].id, blds[1].id, NULL, T0 + 50 * HOUR, QTR, 0, -2.5, T0 + 50 * HOUR + QTR + MIN);
    add_agg(blds[0].id, blds[2].id, NULL, T0 + 70 * HOUR, QTR, 0, 4.0, T0 + 70 * HOUR + QTR + MIN);
    add_fc(blds[3].id, 3, blds[3].id, T0 + 40 * HOUR, "REFRESHED", T0 + 40 * HOUR + 6 * MIN);
}

/* ---- producing ------------------------------------------------------------------------------ */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_fc);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_fault_recs_free(&aggs);
    hvs_fault_recs_free(&fcs);
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

static void publish_stream(const char *agg_topic, const char *fc_topic) {
    send_recs(&fcs, fc_topic);
    send_recs(&aggs, agg_topic);
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"passive\",\"commissioning_date\":"
                 "1577836800000,\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":%.1f,"
                 "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[],\"updated_at\":1700000000000,\"deleted\":false}",
                 blds[b].id, blds[b].area);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, blds[b].id,
                                      strlen(blds[b].id), buf, len, &err) == 0,
                    "topology: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

/* refresh/global v1, APPROVED, before any run: every run serves it from its first batch. */
static void publish_model(void) {
    void *buf;
    size_t len;
    hvs_err_t err = {0};
    hvs_test_refresh_record_lags(serde, "refresh/global", 1, C0, CL, &buf, &len);
    char key[128];
    HVS_REQUIRE(hvs_registry_key(key, sizeof key, "refresh/global", 1) > 0, "key");
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s: %s", key, err.msg);
    free(buf);
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
                    hvs_encoder_new(serde, HVS_SCHEMA_FORECAST, NULL, &enc_fc, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0,
                "setup: %s", err.msg);
    gen();
    gen_bad();
    hvs_fault_recs_sort(&aggs);
    hvs_fault_recs_sort(&fcs);
    printf("  input: %zu aggregates (%d gaps, %d late, %d revisions, %d duplicates, %d apartment "
           "rows), %zu forecasts (%d baselines, %d never published), bad records %d + %d\n",
           aggs.n, made.gaps, made.late, made.revs, made.dups, made.apt_rows, fcs.n, made.baselines,
           made.base_missing, NATURAL_AGG, NATURAL_FC);
    publish_topology();
    publish_model();
    publish_stream("aggregates.15m", "forecasts.baseline");
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

/* The reference is not vacuous: every building refreshed at every tick from the first quarter's
 * end to the last but one (the last two may wait for their grace: 382..383 of 383), by
 * refresh/global v1 for the forecast/global buildings and online for the others, some flagged
 * missing_actuals; the bad records dead-lettered. */
static void test_reference(void) {
    need_reference();
    int per[NB] = {0}, wrong_model = 0, missing = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ref->latest, k, v) {
        const char *b = json_string_value(json_object_get(v, "building_id"));
        const char *m = json_string_value(json_object_get(v, "model_name"));
        bool online = false;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(v, "flags"), i, f) {
            online |= hvs_test_streq(json_string_value(f), "online_correction");
            missing += hvs_test_streq(json_string_value(f), "missing_actuals");
        }
        for (int x = 0; x < NB; x++)
            if (hvs_test_streq(b, blds[x].id)) {
                per[x]++;
                bool global = x < 3;
                wrong_model += !hvs_test_streq(m, global ? "refresh/global" : "online") ||
                               online == global;
            }
    }
    int ticks = DAYS * 96; /* from the first baseline's issue (the first quarter's start) */
    for (int i = 0; i < NB; i++)
        HVS_CHECK(per[i] >= ticks - 1 && per[i] <= ticks,
                  "reference: %s refreshed at %d ticks (want %d, the last may wait)", blds[i].id,
                  per[i], ticks);
    HVS_CHECK(wrong_model == 0, "reference: %d refreshes by the wrong model", wrong_model);
    HVS_CHECK(missing > 0, "reference: no refresh flagged missing_actuals");
    HVS_CHECK(json_object_size(ref->dead) == NATURAL_AGG + NATURAL_FC,
              "reference: %zu dead letters (want %d)", json_object_size(ref->dead),
              NATURAL_AGG + NATURAL_FC);
    for (int i = 0; i < NATURAL_AGG; i++)
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "aggregates.15m", NATURAL_REASONS[i]) == 1,
                  "reference: an aggregate dead-lettered as %s", NATURAL_REASONS[i]);
    HVS_CHECK(hvs_fault_count_reason(ref->dead, "forecasts.baseline", "not_baseline") == 1,
              "reference: the REFRESHED forecast dead-lettered");
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
    printf("  reference: %zu refreshes published, %zu (building, tick), %d flagged "
           "missing_actuals, %.1f s\n",
           ref->nout, json_object_size(ref->latest), missing, (double)ref->ms / 1000);
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
    const char *topics[2] = {"poison.aggregates.15m", "poison.forecasts.baseline"};
    for (int t = 0; t < 2; t++)
        hvs_fault_topic_create(&world, topics[t], HVS_TOPIC_DEFAULT_PARTITIONS);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    unsigned char junk[48];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(0x7f + 29 * i);
    static char json[65536];
    size_t len;
    /* before the stream: records of building "pz_b" (in no other record) */
    add(p, 0, topics[0], "random bytes", "bad_magic", "pz_b", junk, sizeof junk);
    add(p, 1, topics[1], "random bytes", "bad_magic", "pz_b", junk, sizeof junk);
    agg_json(json, sizeof json, "pz_b", NULL, PT, QTR, 0, 1.0, PT + QTR);
    const void *b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "truncated", "truncated", "pz_b", b, len - 3);
    add(p, 0, topics[0], "null value", "empty_value", "pz_b", NULL, 0);
    size_t first_half = npoisons;
    publish_stream(topics[0], topics[1]);
    /* after it */
    agg_json(json, sizeof json, "pz_b", NULL, PT, QTR, 0, 1.0, PT + QTR);
    b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "another building's key", "key_mismatch", "pz_c", b, len);
    agg_json(json, sizeof json, "pz_b", NULL, PT + MIN, QTR, 0, 1.0, PT + QTR);
    b = encode_json(enc_agg, json, &len);
    add(p, 0, topics[0], "window not on the quarter", "bad_window", "pz_b", b, len);
    fc_json(json, sizeof json, 0, "pz_b", PT, "REFRESHED");
    b = encode_json(enc_fc, json, &len);
    add(p, 1, topics[1], "a refreshed forecast", "not_baseline", "pz_b", b, len);
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
