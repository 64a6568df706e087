/*
 * test_refresher_it - hvs-refresher as a process against a real redis-server and hvs-devbroker.
 * Three buildings in topology (heated areas 1000, 2000 and 500 m2); hourly baselines on
 * forecasts.baseline (forecast/global v3, issued on every hour, 72 points with lower and upper)
 * whose hour X is base(X) = level + slope x |hour of day - 12| whatever the issue, and 15-minute
 * building totals on aggregates.15m whose hour's actual is base(X) + 20 (rf_b1: a constant bias
 * of 20 % of its level), exactly base(X) (rf_b2), or base(X) + a 5-hour saw (rf_b3), split over
 * the quarters 1/8, 1/2, 1/8, 1/4 (every value exact in a float). The stream goes in hour by
 * hour, the baselines issued at the hour before its quarters, each hour read by the worker
 * before the next is sent: so which baseline each tick serves does not depend on how the worker
 * interleaves the two topics (test_rf_fault_it lets it interleave them as it likes). What comes
 * out is read back with hvsctl and from Redis and checked against values worked out here (never
 * by the refresher's own code):
 *   online          days 0-2 without a refresh model: every building refreshed at every
 *                   15-minute tick from its first baseline's issue to the last but one, flag
 *                   online_correction (and uncorrected while the fit has fewer than 24 hours of
 *                   errors); from then on the biased building's hours without measured
 *                   quarters are its true actual within 1e-6 kWh, the exact building's
 *                   correction is 0, intervals move with the point, baseline_issued_at and
 *                   baseline_version name the baseline of the tick's hour, and horizon 1 of a
 *                   tick k quarters into its hour is the measured quarters + (baseline +
 *                   correction) x (4 - k) / 4;
 *   bad_input       an hourly window, a negative heating, another building's key, a REFRESHED
 *                   forecast, target hours not ascending and undecodable bytes land in the dead
 *                   letters with their reasons; the ticks after them still come;
 *   missing_and_late one quarter of rf_b3 is not sent with day 2: the ticks that read it are
 *                   flagged missing_actuals (and only those); sent after the stream, the ticks
 *                   from its end to the last are made again: a second record for each, with
 *                   the quarter measured, not flagged;
 *   refresh_model   refresh/global v1 (hvs-linear, per heated m2, known coefficients per
 *                   horizon over err_lag_1..3) published APPROVED before day 3: every refresh of
 *                   day 3 names it and its correction is the coefficients applied to the last
 *                   three hours' errors per m2, times the area;
 *   latest_in_redis hvs:{B}:rf:latest is the newest refresh published, as JSON, with a TTL of
 *                   at most HVS_RF_LATEST_TTL (1 h).
 * Cases share one world, built in stages as they need it (the worker runs throughout).
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "refresh_model.h"

#define MIN 60000LL
#define QTR (15 * MIN)
#define HOUR HVS_MS_HOUR
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC: the first quarter streamed */
#define NB 3
#define BASE_VERSION 3
#define STAGE1A_END (T0 + 48 * HOUR) /* days 0-1 */
#define STAGE1_END (T0 + 72 * HOUR)  /* day 2, after the bad inputs */
#define STAGE2_END (T0 + 84 * HOUR)  /* day 3's first 12 h, refresh/global v1 serving */
#define MISSING_B 2                  /* rf_b3's quarter 1 of hour 69: sent late */
#define MISSING_H (T0 + 69 * HOUR)
#define MISSING_Q 1
#define LO_OFF 10.0 /* baseline interval: [base - 10, base + 15] */
#define HI_OFF 15.0
#define ONLINE_MIN 24 /* HVS_RF_ONLINE_MIN's default */

typedef struct bld {
    const char *id;
    double area, level, slope;
} bld_t;

static const bld_t blds[NB] = {
    {"rf_b1", 1000, 100, 2}, /* actual = base + 20 */
    {"rf_b2", 2000, 150, 3}, /* actual = base */
    {"rf_b3", 500, 60, 1},   /* actual = base + saw */
};
static const double QW[4] = {0.125, 0.5, 0.125, 0.25}; /* each quarter's share of its hour */

/* refresh/global v1: per horizon, the intercept and the coefficients of err_lag_1..3 (per m2) */
static const double C0[3] = {0.001, 0.0005, 0.0002};
static const double CL[3][3] = {{0.6, 0.2, 0.1}, {0.4, 0.2, 0.1}, {0.3, 0.1, 0.1}};

/* ---- the synthetic world --------------------------------------------------------------------- */

static int hour_of_day(hvs_ms_t x) { return (int)((x / HOUR) % 24); }

static double base_of(int b, hvs_ms_t x) {
    return blds[b].level + blds[b].slope * abs(hour_of_day(x) - 12);
}

static double actual_of(int b, hvs_ms_t x) {
    if (b == 0)
        return base_of(b, x) + 20;
    if (b == 1)
        return base_of(b, x);
    return base_of(b, x) + 4.0 * (double)((x / HOUR) % 5) - 6;
}

static double quarter_of(int b, hvs_ms_t x, int j) { return actual_of(b, x) * QW[j]; }

/* The error of hour x per m2 (every hour is complete by the time a tick reads it, once the late
 * quarter came). */
static double err_m2(int b, hvs_ms_t x) { return (actual_of(b, x) - base_of(b, x)) / blds[b].area; }

static hvs_ms_t floor_hour(hvs_ms_t t) { return t / HOUR * HOUR; }

/* ---- services and producing ------------------------------------------------------------------ */

static hvs_test_proc_t redis, broker, worker;
static char env[1024], logpath[256];
static int http_port;
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_fc, *enc_bld;

static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%.300s)", err.msg, json);
    return buf;
}

static void send_raw(const char *topic, const char *key, const void *buf, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0,
                                  buf, len, &err) == 0,
                "send to %s: %s", topic, err.msg);
}

static void flush(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void agg_json(char *buf, size_t cap, const char *bld, hvs_ms_t ws, int64_t size,
                     double kwh) {
    snprintf(buf, cap,
             "{\"building_id\":\"%s\",\"apartment_id\":null,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%.17g,"
             "\"hot_water_litres\":2.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":1,\"readings_seen\":1,\"reporting_apartments\":2,"
             "\"known_apartments\":2,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             bld, (long long)ws, (long long)(ws + size), (long long)size, kwh,
             (long long)(ws + size));
}

static void send_quarter(int b, hvs_ms_t x, int j) {
    char json[2048];
    size_t len;
    agg_json(json, sizeof json, blds[b].id, x + j * QTR, QTR, quarter_of(b, x, j));
    const void *buf = encode_json(enc_agg, json, &len);
    send_raw("aggregates.15m", blds[b].id, buf, len);
}

/* A Forecast's JSON: `n` points from target hour `first`, one hour apart unless `swap` (the
 * first two exchanged: not ascending). */
static int base_version = BASE_VERSION; /* the baselines' model_version (republished_baselines) */

static void fc_json(char *buf, size_t cap, int b, hvs_ms_t issued, const char *kind, int n,
                    bool swap) {
    size_t o = (size_t)snprintf(buf, cap,
                                "{\"building_id\":\"%s\",\"issued_at\":%lld,\"kind\":\"%s\","
                                "\"points\":[",
                                blds[b].id, (long long)issued, kind);
    for (int i = 0; i < n && o < cap; i++) {
        int k = swap && i < 2 ? 1 - i : i;
        hvs_ms_t th = issued + k * HOUR;
        double y = base_of(b, th);
        o += (size_t)snprintf(buf + o, cap - o,
                              "%s{\"target_hour\":%lld,\"horizon_h\":%d,\"yhat_kwh\":%.17g,"
                              "\"yhat_lower_kwh\":%.17g,\"yhat_upper_kwh\":%.17g,"
                              "\"correction_kwh\":null}",
                              i ? "," : "", (long long)th, k + 1, y, y - LO_OFF, y + HI_OFF);
    }
    if (o < cap)
        snprintf(buf + o, cap - o,
                 "],\"model_name\":\"forecast/global\",\"model_version\":%d,"
                 "\"baseline_version\":null,\"baseline_issued_at\":null,"
                 "\"out_of_distribution\":false,\"flags\":[]}",
                 base_version);
}

static void send_baseline(int b, hvs_ms_t issued) {
    static char json[65536];
    size_t len;
    fc_json(json, sizeof json, b, issued, "BASELINE", 72, false);
    const void *buf = encode_json(enc_fc, json, &len);
    send_raw("forecasts.baseline", blds[b].id, buf, len);
}

static double metric(const char *name);
static long long sent_agg, sent_fc; /* messages produced to each input, bad ones included */

/* Until the worker handled every message produced to its inputs (at most 30 s). */
static void wait_inputs(void) {
    for (int i = 0; i < 6000; i++) {
        if (metric("hvs_refresher_inputs_total{topic=\"aggregates\"}") >= (double)sent_agg &&
            metric("hvs_refresher_inputs_total{topic=\"baselines\"}") >= (double)sent_fc)
            return;
        usleep(5000);
    }
    HVS_REQUIRE(false, "the worker did not read %lld aggregates and %lld forecasts", sent_agg,
                sent_fc);
}

/* Hours [from, to) as the pipeline publishes them: the baselines issued at the hour, then the
 * hour's quarters (each once it ended, building by building within a quarter) but the missing
 * one; each hour read by the worker before the next is sent, so every tick finds the baseline
 * of its hour and no hour's quarters wait for a baseline (which input the worker happens to
 * read ahead of the other would otherwise decide which baseline a tick serves). */
static void send_hours(hvs_ms_t from, hvs_ms_t to) {
    for (hvs_ms_t x = from; x < to; x += HOUR) {
        for (int b = 0; b < NB; b++)
            send_baseline(b, x), sent_fc++;
        for (int j = 0; j < 4; j++)
            for (int b = 0; b < NB; b++)
                if (!(b == MISSING_B && x == MISSING_H && j == MISSING_Q))
                    send_quarter(b, x, j), sent_agg++;
        flush();
        wait_inputs();
    }
}

static void send_topology(void) {
    for (int b = 0; b < NB; b++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern_high_density\","
                 "\"commissioning_date\":1577836800000,\"latitude\":47.37,\"longitude\":8.54,"
                 "\"heated_area_m2\":%.1f,\"construction_year\":2015,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 blds[b].id, blds[b].area);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        send_raw("topology", blds[b].id, buf, len);
    }
    flush();
}

/* refresh/global v1, APPROVED (tests/support/refresh_model.h), with the coefficients above. */
static void publish_refresh_model(void) {
    void *buf;
    size_t len;
    hvs_test_refresh_record_lags(serde, "refresh/global", 1, C0, CL, &buf, &len);
    char key[128];
    HVS_REQUIRE(hvs_registry_key(key, sizeof key, "refresh/global", 1) > 0, "key");
    send_raw("models", key, buf, len);
    flush();
    free(buf);
}

/* ---- reading back ------------------------------------------------------------------------------ */

static double metric(const char *name) {
    char url[128], *text = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", http_port);
    if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) != 200 || !text) {
        free(text);
        return -1;
    }
    double v = hvs_test_metric(text, name);
    free(text);
    return v;
}

/* Wait until the metric reaches want (at most 120 s, 15 s without a change): its last value. */
static double wait_metric(const char *name, double want) {
    double v = -1, last = -1;
    int64_t since = hvs_test_now_ms();
    for (int i = 0; i < 1200; i++) {
        if ((v = metric(name)) >= want)
            return v;
        if (v != last)
            last = v, since = hvs_test_now_ms();
        if (hvs_test_proc_exited(&worker, NULL) || hvs_test_now_ms() - since > 15000)
            break;
        usleep(100000);
    }
    return v;
}

static bool log_has(const char *text) {
    for (int i = 0; i < 300; i++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "grep -qF '%s' %s", text, logpath);
        if (hvs_test_run(cmd, NULL, 0, NULL, NULL) == 0)
            return true;
        usleep(100000);
    }
    return false;
}

static long long ival(const json_t *o, const char *k) {
    return (long long)json_integer_value(json_object_get(o, k));
}

static double dval(const json_t *o, const char *k) {
    json_t *x = json_object_get(o, k);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static json_t *refreshes; /* building -> [Forecast values, in order of publication] */
static size_t nrefreshes;

static void read_refreshes(void) {
    json_decref(refreshes);
    refreshes = json_object();
    json_t *msgs = hvs_test_tail_json(env, "forecasts.refreshed", NULL);
    HVS_REQUIRE(msgs, "hvsctl tail forecasts.refreshed");
    nrefreshes = json_array_size(msgs);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        const char *b = json_string_value(json_object_get(v, "building_id"));
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(m, "key")), b);
        if (!b)
            continue;
        json_t *arr = json_object_get(refreshes, b);
        if (!arr)
            json_object_set_new(refreshes, b, arr = json_array());
        json_array_append(arr, v);
    }
    json_decref(msgs);
}

/* The nth (0: first, -1: last) refresh of building b as of t. */
static const json_t *refresh_at(int b, hvs_ms_t t, int nth) {
    json_t *arr = json_object_get(refreshes, blds[b].id), *v, *last = NULL;
    size_t i;
    int seen = 0;
    json_array_foreach(arr, i, v) {
        if (ival(v, "issued_at") != t)
            continue;
        if (seen++ == nth)
            return v;
        last = v;
    }
    return nth < 0 ? last : NULL;
}

static int versions_at(int b, hvs_ms_t t) {
    json_t *arr = json_object_get(refreshes, blds[b].id), *v;
    size_t i;
    int n = 0;
    json_array_foreach(arr, i, v) n += ival(v, "issued_at") == t;
    return n;
}

static bool has_flag(const json_t *v, const char *flag) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(v, "flags"), i, f) {
        if (hvs_test_streq(json_string_value(f), flag))
            return true;
    }
    return false;
}

static void dump(const char *what, const json_t *v) {
    if (hvs_test_failed > 30)
        return;
    char *s = json_dumps(v, JSON_COMPACT);
    fprintf(stderr, "  %s: %.1200s\n", what, s ? s : "(none)");
    free(s);
}

/*
 * What a refresh of building b as of t must be, given the correction c[h] the test expects for
 * horizons 1..3 (kWh): for each point, the baseline of its hour (the baseline issued at
 * floor_hour(t) states base_of) + c; horizon 1 of a tick k quarters into its hour the measured
 * quarters + (base + c) x (4 - k) / 4 with the interval's offsets scaled alike. Counts the
 * points that differ by more than tol (kWh); `missing_q` is a quarter the worker did not have
 * (-1: none), estimated as a quarter of (base + c).
 */
static int check_points(const json_t *v, int b, hvs_ms_t t, const double *c, double tol,
                        int missing_q) {
    hvs_ms_t h0 = floor_hour(t);
    json_t *pts = json_object_get(v, "points");
    int bad = json_array_size(pts) != 3;
    for (int h = 1; h <= 3 && !bad; h++) {
        json_t *p = json_array_get(pts, (size_t)h - 1);
        hvs_ms_t x = h0 + (h - 1) * HOUR;
        double base = base_of(b, x), y = base + c[h - 1], rest = 1;
        if (h == 1 && t > h0) {
            int k = (int)((t - h0) / QTR);
            double known = 0;
            for (int j = 0; j < k; j++)
                known += j == missing_q ? (base + c[0]) / 4 : quarter_of(b, x, j);
            rest = (4.0 - k) / 4;
            y = known + y * rest;
        }
        bad |= ival(p, "target_hour") != x || ival(p, "horizon_h") != h;
        bad |= fabs(dval(p, "yhat_kwh") - y) > tol;
        bad |= fabs(dval(p, "yhat_lower_kwh") - (y - LO_OFF * rest)) > tol;
        bad |= fabs(dval(p, "yhat_upper_kwh") - (y + HI_OFF * rest)) > tol;
        bad |= fabs(dval(p, "correction_kwh") - (y - base)) > tol;
    }
    bad |= ival(v, "baseline_issued_at") != h0 || ival(v, "baseline_version") != BASE_VERSION;
    bad |= !hvs_test_streq(json_string_value(json_object_get(v, "kind")), "REFRESHED");
    bad |= !hvs_test_streq(json_string_value(json_object_get(v, "building_id")), blds[b].id);
    if (bad) {
        char what[160];
        snprintf(what, sizeof what, "%s as of %+.2f h: expected corrections %.9g %.9g %.9g",
                 blds[b].id, (double)(t - T0) / HOUR, c[0], c[1], c[2]);
        dump(what, v);
    }
    return bad;
}

/* ---- the world, in stages --------------------------------------------------------------------- */

static int stage; /* 1: days 0-2 online; 2: the late quarter; 3: refresh/global v1 and day 3 */
static int nbad_agg, nbad_fc;
static double refreshes_made; /* hvs_refresher_refreshes_total expected so far */

static void teardown(void) {
    hvs_test_proc_stop(&worker);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    json_decref(refreshes);
    hvs_encoder_destroy(enc_agg), hvs_encoder_destroy(enc_fc), hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "refresher log: %s\n", logpath);
}

/* One bad record of each kind, keys and times of the stream's buildings. */
static void bad_inputs(void) {
    char json[65536];
    size_t len;
    hvs_ms_t x = T0 + 50 * HOUR;
    /* an hourly window on the 15-minute topic */
    agg_json(json, sizeof json, "rf_b1", x, HOUR, 40.0);
    const void *enc = encode_json(enc_agg, json, &len);
    send_raw("aggregates.15m", "rf_b1", enc, len), nbad_agg++, sent_agg++;
    /* a negative heating */
    agg_json(json, sizeof json, "rf_b2", x, QTR, -2.5);
    enc = encode_json(enc_agg, json, &len);
    send_raw("aggregates.15m", "rf_b2", enc, len), nbad_agg++, sent_agg++;
    /* rf_b1's quarter under rf_b2's key (were it used, rf_b1's hour 50 would be off) */
    agg_json(json, sizeof json, "rf_b1", x, QTR, 99.0);
    enc = encode_json(enc_agg, json, &len);
    send_raw("aggregates.15m", "rf_b2", enc, len), nbad_agg++, sent_agg++;
    /* a refreshed forecast on the baseline topic */
    fc_json(json, sizeof json, 0, x, "REFRESHED", 3, false);
    enc = encode_json(enc_fc, json, &len);
    send_raw("forecasts.baseline", "rf_b1", enc, len), nbad_fc++, sent_fc++;
    /* target hours not ascending */
    fc_json(json, sizeof json, 1, x, "BASELINE", 72, true);
    enc = encode_json(enc_fc, json, &len);
    send_raw("forecasts.baseline", "rf_b2", enc, len), nbad_fc++, sent_fc++;
    /* undecodable bytes */
    unsigned char junk[40];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(0x7f + 13 * i);
    send_raw("forecasts.baseline", "rf_b3", junk, sizeof junk), nbad_fc++, sent_fc++;
    flush();
}

/* Refreshes of the ticks from..to (inclusive), every building. */
static double ticks_between(hvs_ms_t from, hvs_ms_t to) {
    return (double)NB * (double)((to - from) / QTR + 1);
}

static void expect_refreshes(double n) {
    refreshes_made += n;
    double got = wait_metric("hvs_refresher_refreshes_total", refreshes_made);
    HVS_CHECK(got == refreshes_made, "refreshes_total %g, expected %g", got, refreshes_made);
}

static void stage_online(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    http_port = hvs_test_free_port();
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-refresher-%d.log", (int)getpid());
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.15m", &enc_agg, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_FORECAST, "forecasts.baseline", &enc_fc, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0,
        "setup: %s", err.msg);
    send_topology();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s HVS_HTTP_PORT=%d HVS_KAFKA_GROUP=rf-it %s --batch 100", env,
             http_port, HVS_TEST_REFRESHER);
    HVS_REQUIRE(hvs_test_spawn(&worker, cmd, logpath) == 0, "spawn hvs-refresher");
    send_hours(T0, STAGE1A_END);
    /* ticks from the first baseline's issue to the last but one (the last waits for its
     * grace) */
    expect_refreshes(ticks_between(T0, STAGE1A_END - QTR));
    bad_inputs();
    send_hours(STAGE1A_END, STAGE1_END);
    expect_refreshes(ticks_between(STAGE1A_END, STAGE1_END - QTR));
    read_refreshes();
}

/* rf_b3's missing quarter, after its ticks were made: they are made again. */
static void stage_late(void) {
    read_refreshes(); /* the first versions, for missing_and_late */
    send_quarter(MISSING_B, MISSING_H, MISSING_Q), sent_agg++;
    flush();
    expect_refreshes((double)((STAGE1_END - QTR - (MISSING_H + (MISSING_Q + 1) * QTR)) / QTR + 1));
    read_refreshes();
}

static void stage_model(void) {
    publish_refresh_model();
    HVS_REQUIRE(log_has("refresh/global:1 now serves"), "refresh/global v1 swapped in");
    send_hours(STAGE1_END, STAGE2_END);
    expect_refreshes(ticks_between(STAGE1_END, STAGE2_END - QTR));
    read_refreshes();
}

static json_t *first_versions; /* building -> its refreshes before the late quarter */

static void need(int want) {
    HVS_REQUIRE(stage <= want, "the world is past stage %d", want);
    if (stage < 1 && want >= 1)
        stage_online(), stage = 1;
    if (stage < 2 && want >= 2) {
        first_versions = json_deep_copy(refreshes);
        stage_late(), stage = 2;
    }
    if (stage < 3 && want >= 3)
        stage_model(), stage = 3;
}

/* ---- cases ------------------------------------------------------------------------------------ */

static void test_online(void) {
    need(1);
    int n = (int)((STAGE1_END - QTR - T0) / QTR + 1);
    for (int b = 0; b < NB; b++) {
        json_t *arr = json_object_get(refreshes, blds[b].id), *v;
        size_t i;
        int k = 0;
        json_array_foreach(arr, i, v) k += ival(v, "issued_at") <= STAGE1_END - QTR;
        /* rf_b3's ticks made again after its late quarter are missing_and_late's */
        if (b != MISSING_B || stage < 2)
            HVS_CHECK(k == n, "%s: %d refreshes of days 0-2, expected %d", blds[b].id, k, n);
    }
    /* every tick once, online: uncorrected while fewer than 24 hours of errors were known,
     * missing_actuals while the lags reach before the first hour */
    int missing = 0, twice = 0, wrong_flags = 0, bad = 0, checked = 0;
    for (int b = 0; b < 2; b++)
        for (hvs_ms_t t = T0; t <= STAGE1_END - QTR; t += QTR) {
            const json_t *v = refresh_at(b, t, 0);
            if (!v) {
                missing++;
                continue;
            }
            twice += versions_at(b, t) != 1;
            bool fitted = floor_hour(t) >= T0 + ONLINE_MIN * HOUR;
            bool lags_before = floor_hour(t) < T0 + 3 * HOUR;
            json_t *flags = json_object_get(v, "flags");
            wrong_flags += !has_flag(v, "online_correction") ||
                           has_flag(v, "uncorrected") == fitted ||
                           has_flag(v, "missing_actuals") != lags_before ||
                           json_array_size(flags) != 1u + !fitted + lags_before;
            wrong_flags += !hvs_test_streq(json_string_value(json_object_get(v, "model_name")),
                                           "online") ||
                           ival(v, "model_version") != 0;
            /* fitted: the biased building's error is a constant 20 kWh (the fit's intercept,
             * lags 0), the exact one's 0; before, no correction */
            double c = fitted && b == 0 ? 20 : 0, cs[3] = {c, c, c};
            bad += check_points(v, b, t, cs, 1e-6, -1);
            checked++;
        }
    HVS_CHECK(missing == 0 && twice == 0, "%d ticks without a refresh, %d with several", missing,
              twice);
    HVS_CHECK(wrong_flags == 0, "%d refreshes with the wrong flags or model", wrong_flags);
    HVS_CHECK(bad == 0, "%d of %d refreshes of rf_b1/rf_b2 not as expected", bad, checked);
    /* the biased building, once fitted, at every hour not measured yet: its true actual */
    int off = 0, n1 = 0;
    double worst = 0;
    for (hvs_ms_t t = T0 + ONLINE_MIN * HOUR; t <= STAGE1_END - QTR; t += QTR) {
        const json_t *v = refresh_at(0, t, 0);
        json_t *pts = json_object_get(v, "points");
        for (int h = t == floor_hour(t) ? 1 : 2; h <= 3; h++) {
            const json_t *p = json_array_get(pts, (size_t)h - 1);
            double want = actual_of(0, floor_hour(t) + (h - 1) * HOUR);
            double d = fabs(dval(p, "yhat_kwh") - want);
            worst = fmax(worst, d);
            off += !(d <= 1e-6);
            n1++;
        }
    }
    HVS_CHECK(off == 0 && n1 > 300, "rf_b1: %d of %d unmeasured hours off its actual (worst %g)",
              off, n1, worst);
    /* the tick 30 minutes into an hour: horizon 1 = two quarters measured + half the hour's
     * baseline + correction (rf_b1 at hour 40: 5/8 of the actual + (base + 20) / 2) */
    hvs_ms_t t = T0 + 40 * HOUR + 30 * MIN;
    const json_t *v = refresh_at(0, t, 0);
    json_t *p = json_array_get(json_object_get(v, "points"), 0);
    double base = base_of(0, t - 30 * MIN), want = quarter_of(0, t - 30 * MIN, 0) +
                                                   quarter_of(0, t - 30 * MIN, 1) +
                                                   (base + 20) * 0.5;
    HVS_CHECK_NEAR(dval(p, "yhat_kwh"), want, 1e-6);
    HVS_CHECK_NEAR(dval(p, "yhat_lower_kwh"), want - LO_OFF * 0.5, 1e-6);
    HVS_CHECK_NEAR(dval(p, "yhat_upper_kwh"), want + HI_OFF * 0.5, 1e-6);
    HVS_CHECK_NEAR(dval(p, "correction_kwh"), want - base, 1e-6);
    /* the saw building: refreshed every tick, online, and corrected once fitted */
    int b3 = 0;
    for (hvs_ms_t u = T0 + ONLINE_MIN * HOUR; u < MISSING_H - 4 * HOUR; u += QTR) {
        const json_t *w = refresh_at(2, u, 0);
        b3 += w && has_flag(w, "online_correction") && !has_flag(w, "uncorrected") &&
              !has_flag(w, "missing_actuals");
    }
    HVS_CHECK_EQ_INT(b3, (MISSING_H - 4 * HOUR - (T0 + ONLINE_MIN * HOUR)) / QTR);
    printf("  %zu refreshes read back, %d per building; rf_b1's worst unmeasured hour %.3g kWh "
           "off\n",
           nrefreshes, n, worst);
}

/* A topic once it holds at least n messages. */
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

static bool has_reason(const json_t *dead, const char *reason, const char *key) {
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)dead, i, m) {
        json_t *v = json_object_get(m, "value");
        if (hvs_test_streq(json_string_value(json_object_get(v, "error_code")), reason) &&
            (!key || hvs_test_streq(json_string_value(json_object_get(m, "key")), key)))
            return true;
    }
    return false;
}

static void test_bad_input(void) {
    need(1);
    json_t *da = wait_topic("aggregates.15m.dlq", 3), *df = wait_topic("forecasts.baseline.dlq", 3);
    HVS_CHECK_EQ_INT((int)json_array_size(da), nbad_agg);
    HVS_CHECK_EQ_INT((int)json_array_size(df), nbad_fc);
    HVS_CHECK(has_reason(da, "bad_window", "rf_b1"), "hourly window: bad_window");
    HVS_CHECK(has_reason(da, "value_out_of_range", "rf_b2"),
              "negative heating: value_out_of_range");
    HVS_CHECK(has_reason(da, "key_mismatch", "rf_b2"), "another building's key: key_mismatch");
    HVS_CHECK(has_reason(df, "not_baseline", "rf_b1"), "REFRESHED forecast: not_baseline");
    HVS_CHECK(has_reason(df, "bad_points", "rf_b2"), "hours not ascending: bad_points");
    HVS_CHECK(has_reason(df, "bad_magic", "rf_b3"), "undecodable bytes: bad_magic");
    if (hvs_test_failed) {
        char *s = json_dumps(da, JSON_COMPACT), *t = json_dumps(df, JSON_COMPACT);
        fprintf(stderr, "dead letters: %.2000s\n%.2000s\n", s ? s : "", t ? t : "");
        free(s), free(t);
    }
    json_decref(da), json_decref(df);
    /* the worker kept going: every tick after the bad inputs refreshed every building (the
     * values of rf_b1's hour 50 are checked by `online`: the quarter under another key was not
     * taken) */
    int after = 0;
    for (int b = 0; b < NB; b++)
        for (hvs_ms_t t = STAGE1A_END; t <= STAGE1_END - QTR; t += QTR)
            after += refresh_at(b, t, 0) != NULL;
    HVS_CHECK_EQ_INT(after, (int)ticks_between(STAGE1A_END, STAGE1_END - QTR));
    HVS_CHECK(!hvs_test_proc_exited(&worker, NULL), "the worker runs");
    HVS_CHECK_EQ_INT((long long)metric("hvs_refresher_dead_letters_total{reason=\"bad_points\"}"),
                     1);
}

static void test_missing_and_late(void) {
    need(2);
    hvs_ms_t qend = MISSING_H + (MISSING_Q + 1) * QTR, last = STAGE1_END - QTR;
    /* before the late quarter: flagged exactly where a tick reads it - horizon 1 of its hour
     * from its end, and the lags of the three hours after */
    json_t *saved = refreshes;
    refreshes = first_versions;
    int wrong = 0, n = 0;
    for (hvs_ms_t t = MISSING_H - 2 * HOUR; t <= last; t += QTR) {
        const json_t *v = refresh_at(MISSING_B, t, 0);
        bool reads = t >= qend && t < MISSING_H + 4 * HOUR;
        if (!v || has_flag(v, "missing_actuals") != reads) {
            if (!wrong++)
                dump("missing_actuals flag", v);
        }
        n++;
    }
    HVS_CHECK(wrong == 0, "%d of %d ticks of rf_b3 flagged wrongly", wrong, n);
    refreshes = saved;
    /* after it: the ticks from its end to the last made again, once; none other */
    int again = 0, extra = 0, flagged = 0, arith = 0;
    for (hvs_ms_t t = T0; t <= last; t += QTR) {
        int k = versions_at(MISSING_B, t), want = t >= qend ? 2 : 1;
        again += k == 2 && t >= qend;
        extra += k != want;
        if (t >= qend && k == 2)
            flagged += has_flag(refresh_at(MISSING_B, t, 1), "missing_actuals");
    }
    HVS_CHECK_EQ_INT(again, (last - qend) / QTR + 1);
    HVS_CHECK(extra == 0, "%d ticks of rf_b3 with another number of versions", extra);
    HVS_CHECK(flagged == 0, "%d ticks made again still flagged missing_actuals", flagged);
    /* the tick at the quarter's end: the first version estimated the quarter as a quarter of
     * (baseline + correction), the second measured it; the correction (a fit on the hours
     * before, which the quarter is not among) and horizons 2-3 are the same in both */
    const json_t *v1 = refresh_at(MISSING_B, qend, 0), *v2 = refresh_at(MISSING_B, qend, 1);
    HVS_REQUIRE(v1 && v2, "both versions of rf_b3 as of the quarter's end");
    json_t *p1 = json_array_get(json_object_get(v1, "points"), 0);
    json_t *p2 = json_array_get(json_object_get(v2, "points"), 0);
    double base = base_of(MISSING_B, MISSING_H);
    double q0 = quarter_of(MISSING_B, MISSING_H, 0), q1 = quarter_of(MISSING_B, MISSING_H, 1);
    /* second: q0 + q1 + (base + c) / 2, so c; the first must then be q0 + (base + c) * 3 / 4 */
    double c = 2 * (dval(p2, "yhat_kwh") - q0 - q1) - base;
    double cs[3] = {c, dval(json_array_get(json_object_get(v2, "points"), 1), "correction_kwh"),
                    dval(json_array_get(json_object_get(v2, "points"), 2), "correction_kwh")};
    arith += check_points(v2, MISSING_B, qend, cs, 1e-6, -1);
    arith += check_points(v1, MISSING_B, qend, cs, 1e-6, MISSING_Q);
    HVS_CHECK(arith == 0, "rf_b3 as of the quarter's end: the versions' arithmetic");
    HVS_CHECK_NEAR(dval(p1, "yhat_kwh"), q0 + (base + c) * 0.75, 1e-6);
    HVS_CHECK_NEAR(dval(p2, "yhat_kwh") - dval(p1, "yhat_kwh"), q1 - (base + c) / 4, 1e-6);
    HVS_CHECK(json_equal(json_array_get(json_object_get(v1, "points"), 1),
                         json_array_get(json_object_get(v2, "points"), 1)) &&
                  json_equal(json_array_get(json_object_get(v1, "points"), 2),
                             json_array_get(json_object_get(v2, "points"), 2)),
              "horizons 2 and 3 unchanged");
    HVS_CHECK(has_flag(v1, "missing_actuals") && !has_flag(v2, "missing_actuals"),
              "the first version flagged, the second not");
    HVS_CHECK_EQ_INT((long long)metric("hvs_refresher_reissued_total"), (last - qend) / QTR + 1);
    printf("  rf_b3: %d ticks made again after its late quarter; correction %.6g kWh then\n", again,
           c);
}

static void test_refresh_model(void) {
    need(3);
    int wrong = 0, bad = 0, n = 0;
    double seen_c[NB] = {0};
    for (int b = 0; b < NB; b++)
        for (hvs_ms_t t = STAGE1_END; t <= STAGE2_END - QTR; t += QTR) {
            const json_t *v = refresh_at(b, t, 0);
            if (!v) {
                wrong++;
                continue;
            }
            wrong += versions_at(b, t) != 1;
            wrong += !hvs_test_streq(json_string_value(json_object_get(v, "model_name")),
                                     "refresh/global") ||
                     ival(v, "model_version") != 1 ||
                     json_array_size(json_object_get(v, "flags")) != 0;
            /* the coefficients on the three hours before the tick's hour, per m2, x area */
            hvs_ms_t h0 = floor_hour(t);
            double c[3];
            for (int h = 0; h < 3; h++) {
                double y = C0[h];
                for (int k = 0; k < 3; k++)
                    y += CL[h][k] * err_m2(b, h0 - (k + 1) * HOUR);
                c[h] = y * blds[b].area;
            }
            seen_c[b] = c[0];
            bad += check_points(v, b, t, c, 1e-4, -1);
            n++;
        }
    HVS_CHECK(wrong == 0,
              "%d day-3 ticks missing, made twice or not by refresh/global v1 "
              "unflagged",
              wrong);
    HVS_CHECK(bad == 0, "%d of %d day-3 refreshes not the model's correction", bad, n);
    HVS_CHECK(n == (int)ticks_between(STAGE1_END, STAGE2_END - QTR), "%d refreshes checked", n);
    HVS_CHECK(log_has("refresh/global:1 now serves (was none)"), "the swap is logged");
    printf("  %d refreshes by refresh/global v1; last horizon-1 corrections %.4f %.4f %.4f kWh\n",
           n, seen_c[0], seen_c[1], seen_c[2]);
}

static void test_latest_in_redis(void) {
    need(3);
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "redis");
    for (int b = 0; b < NB; b++) {
        json_t *arr = json_object_get(refreshes, blds[b].id);
        json_t *last = json_array_get(arr, json_array_size(arr) - 1);
        HVS_REQUIRE(last, "%s: refreshes", blds[b].id);
        HVS_CHECK_EQ_INT(ival(last, "issued_at"), STAGE2_END - QTR);
        char key[128];
        snprintf(key, sizeof key, "hvs:{%s}:rf:latest", blds[b].id);
        json_t *j = NULL;
        for (int i = 0; i < 100; i++) { /* the state is written once the broker acknowledged */
            redisReply *rep = NULL;
            json_decref(j), j = NULL;
            if (hvs_redis_command(r, &rep, &err, "GET %s", key) == 0 && rep &&
                rep->type == REDIS_REPLY_STRING)
                j = json_loadb(rep->str, rep->len, 0, NULL);
            if (rep)
                freeReplyObject(rep);
            if (j && ival(j, "issued_at") == ival(last, "issued_at"))
                break;
            usleep(100000);
        }
        HVS_REQUIRE(j, "%s: GET %s parses as JSON", blds[b].id, key);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "building_id")), blds[b].id);
        HVS_CHECK_EQ_INT(ival(j, "issued_at"), ival(last, "issued_at"));
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "model")), "refresh/global:1");
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "model_name")), "refresh/global");
        HVS_CHECK_EQ_INT(ival(j, "model_version"), 1);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "baseline_model")),
                         "forecast/global");
        HVS_CHECK_EQ_INT(ival(j, "baseline_version"), ival(last, "baseline_version"));
        HVS_CHECK_EQ_INT(ival(j, "baseline_issued_at"), ival(last, "baseline_issued_at"));
        HVS_CHECK(json_equal(json_object_get(j, "flags"), json_object_get(last, "flags")),
                  "%s: the flags", blds[b].id);
        json_t *pj = json_object_get(j, "points"), *pl = json_object_get(last, "points");
        HVS_CHECK_EQ_INT((int)json_array_size(pj), (int)json_array_size(pl));
        int differ = 0;
        for (size_t i = 0; i < json_array_size(pl); i++) {
            json_t *a = json_array_get(pj, i), *p = json_array_get(pl, i);
            differ += json_integer_value(json_array_get(a, 0)) != ival(p, "target_hour") ||
                      json_integer_value(json_array_get(a, 1)) != ival(p, "horizon_h") ||
                      json_number_value(json_array_get(a, 2)) != dval(p, "yhat_kwh") ||
                      json_number_value(json_array_get(a, 3)) != dval(p, "yhat_lower_kwh") ||
                      json_number_value(json_array_get(a, 4)) != dval(p, "yhat_upper_kwh") ||
                      json_number_value(json_array_get(a, 5)) != dval(p, "correction_kwh");
        }
        HVS_CHECK(differ == 0, "%s: %d points of the latest in Redis differ from the published",
                  blds[b].id, differ);
        json_decref(j);
        redisReply *rep = NULL;
        HVS_CHECK(hvs_redis_command(r, &rep, &err, "PTTL %s", key) == 0 && rep &&
                      rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 && rep->integer <= HOUR,
                  "%s: PTTL %lld (a TTL of at most 1 h)", key, rep ? rep->integer : -99);
        if (rep)
            freeReplyObject(rep);
    }
    hvs_redis_destroy(r);
}

/* The forecaster publishes an issue again, unchanged, after every late or revised hour (the
 * demo's 4 buildings: 3438 of 4851 baselines byte-identical republishes), and the refresher made
 * the ticks of the last 4 h again for each (48 995 of 50 574 refreshes). An unchanged baseline -
 * the last hour's, or one 40 h old - makes nothing again; the last hour's with a new version
 * makes exactly the ticks it serves again, with that version and the same points. */
static void test_republished_baselines(void) {
    need(3);
    read_refreshes();
    size_t n0 = nrefreshes;
    json_t *before = json_deep_copy(refreshes);
    hvs_ms_t last = STAGE2_END - QTR, h = STAGE2_END - HOUR;
    for (int b = 0; b < NB; b++) {
        send_baseline(b, h), sent_fc++;
        send_baseline(b, STAGE2_END - 40 * HOUR), sent_fc++;
    }
    flush();
    wait_inputs();
    base_version = BASE_VERSION + 1;
    for (int b = 0; b < NB; b++)
        send_baseline(b, h), sent_fc++;
    base_version = BASE_VERSION;
    flush();
    wait_inputs();
    expect_refreshes((double)NB * 4); /* the ticks of h: h, h + 15, h + 30, h + 45 min */
    read_refreshes();
    HVS_CHECK(nrefreshes == n0 + NB * 4, "%zu refreshes published after the baselines, expected %d",
              nrefreshes - n0, NB * 4);
    json_t *now = refreshes;
    for (int b = 0; b < NB; b++) {
        for (hvs_ms_t t = last - 4 * HOUR; t <= last; t += QTR) {
            refreshes = before;
            int n_before = versions_at(b, t);
            const json_t *old = refresh_at(b, t, -1);
            refreshes = now;
            int n = versions_at(b, t);
            const json_t *v = refresh_at(b, t, -1);
            HVS_CHECK(n == n_before + (t >= h), "%s tick %lld: %d refreshes, %d before", blds[b].id,
                      (long long)t, n, n_before);
            if (t < h || !v || !old)
                continue;
            HVS_CHECK_EQ_INT(ival(v, "baseline_version"), BASE_VERSION + 1);
            HVS_CHECK_EQ_INT(ival(v, "baseline_issued_at"), h);
            HVS_CHECK(json_equal(json_object_get(v, "points"), json_object_get(old, "points")),
                      "%s tick %lld: the points changed with the version alone", blds[b].id,
                      (long long)t);
        }
    }
    json_decref(before);
}

static const hvs_test_case_t cases[] = {
    {"online", test_online},
    {"bad_input", test_bad_input},
    {"missing_and_late", test_missing_and_late},
    {"refresh_model", test_refresh_model},
    {"latest_in_redis", test_latest_in_redis},
    {"republished_baselines", test_republished_baselines},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
