/*
 * test_forecaster_it - hvs-forecaster as a process against a real redis-server and hvs-devbroker.
 * Topology (three buildings a model serves, one commissioned 5 days before the data, one without
 * a heated area), a forecast/global version trained here by the trainer's own code (tr_train,
 * tr_record_build) and published APPROVED on `models` before the worker starts, then ten days
 * of hourly building aggregates, hourly observations and 6-hourly forecast runs (issued 2 h
 * after the run, 80 h ahead) go in as Avro, in event order. What comes out is read back with
 * hvsctl, from Redis and from /metrics, and checked against values worked out here:
 *   forecasts         one forecast per building and issue time (every hour once both inputs
 *                     passed it: counted here), 72 points of horizon 1..72 on the hours after
 *                     the issue, stamped forecast/global v1, lower <= yhat <= upper; the
 *                     building's latest in Redis (one GET) is the last one published, with a TTL;
 *   rules_and_no_area the young building gets rules_only forecasts by "rules" whose points are
 *                     area x k x HDH of the run known at the issue; the building without a heated
 *                     area gets none, hvs_forecaster_skipped_total{reason="no_area"} counts them;
 *   bad_input         undecodable bytes, another building's key, a 15-minute window, a NaN heating
 *                     and a 200 degC observation land in the dead letters with their reasons, and
 *                     the forecasts after them still come;
 *   hot_swap          version 2 published mid-stream (once the worker caught up, before the rest
 *                     of the stream): every forecast issued after it names v2, none is missing,
 *                     hvs_forecaster_model_swaps_total counts it;
 *   settings_refused  a bad HVS_FC_RULES and HVS_FC_BUILDING_AGE below HVS_FC_MATURE stop the
 *                     worker at start, naming the setting.
 * Cases after `forecasts` share its world (the worker is left running between them).
 *
 * The worker runs with --weather-wait 7d: with the default 3 h an issue is made without weather
 * whenever the worker happened to read the aggregates topic more than 3 h (event time) ahead of
 * the weather topic - both topics are written before it starts, so which forecasts lack their
 * weather (stale_weather, missing_weather, other values) changes from run to run. The fault suite
 * (test_fc_fault_it) runs with the default and shows it.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "dataset.h"
#include "fc_version.h"
#include "history.h"
#include "hvs/featstore.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "train.h"

#define MIN 60000LL
#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC, a Monday: the first hour streamed */
#define TRAIN_DAYS 30      /* the versions learn the 30 days before T0 */
#define DAYS 10
#define BAD_DAY 3   /* the bad inputs go in after day 3's hours */
#define SWAP_DAY 7  /* version 2 is published after day 7's hours */
#define YOUNG_K 0.3 /* passive's W/(m2 K) in HVS_FC_RULES' default */

typedef struct bld {
    const char *id, *archetype;
    double area; /* NaN: none in topology */
    hvs_ms_t commissioning;
} bld_t;

static const bld_t blds[] = {
    {"fc_b1", "modern_high_density", 1000, 1577836800000LL}, /* 2020 */
    {"fc_b2", "old_poorly_insulated", 2500, 1577836800000LL},
    {"fc_b3", "passive", 600, T0 - 60 * DAY},
    {"fc_young", "passive", 800, T0 - 5 * DAY}, /* younger than 30 days: the rules */
    {"fc_noarea", "modern_high_density", NAN, 1577836800000LL},
};
#define NB 5
#define NMODEL 3 /* the first three: forecast/global serves them */
#define YOUNG 3
#define NOAREA 4

/* ---- the synthetic world (heat follows the weather) ---------------------------------------- */

static double noise(uint64_t k) {
    k ^= k >> 33, k *= 0xff51afd7ed558ccdULL, k ^= k >> 33, k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (double)(k >> 11) / 9007199254740992.0 - 0.5;
}

static double true_temp(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24), d = (double)(h - T0) / DAY;
    return 4 + 4 * sin(2 * M_PI * (hr - 9) / 24) + 5 * sin(2 * M_PI * d / 9);
}

static double true_ghi(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24);
    return hr >= 7 && hr <= 16 ? 450 * sin(M_PI * (hr - 6.5) / 10.5) : 0;
}

static double heat(int b, hvs_ms_t h) {
    double area = isnan(blds[b].area) ? 700 : blds[b].area;
    return area * (0.0025 * fmax(0, 18 - true_temp(h)) + 0.006 - 0.000004 * true_ghi(h)) *
           (1 + 0.08 * noise((uint64_t)h + (uint64_t)b * 7919));
}

static hvs_feat_wx_t observed(hvs_ms_t h) {
    return (hvs_feat_wx_t){h + HOUR + 10 * MIN, true, true_temp(h), 70, 40, true_ghi(h), 3};
}

/* forecast of hour h by the run of r (published at r + 2 h: its issued_at) */
static hvs_feat_wx_t forecast(hvs_ms_t r, hvs_ms_t h) {
    double lead = (double)(h - r) / HOUR;
    double e = 0.04 * lead * noise((uint64_t)r * 31 + (uint64_t)h);
    return (hvs_feat_wx_t){r + 2 * HOUR, false, true_temp(h) + e, 70, 40, true_ghi(h), 3};
}

typedef struct ev {
    int kind, b; /* kind 0 aggregate, 1 weather */
    hvs_ms_t at, hour;
    hvs_feat_hour_t agg;
    hvs_feat_wx_t wx;
} ev_t;

static ev_t *events;
static size_t nevents, capevents;

static void push(ev_t e) {
    if (nevents == capevents) {
        capevents = capevents ? 2 * capevents : 8192;
        events = realloc(events, capevents * sizeof *events);
        HVS_REQUIRE(events, "oom");
    }
    events[nevents++] = e;
}

static int cmp_ev(const void *a, const void *b) {
    const ev_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Every input of hours [from, to) of buildings [0, nb) in event order: the hour's aggregate at
 * its end, its observation 10 minutes later, the run of every 6th hour 2 h after it. */
static void make_events(hvs_ms_t from, hvs_ms_t to, int nb) {
    nevents = 0;
    for (hvs_ms_t h = from; h < to; h += HOUR)
        for (int b = 0; b < nb; b++) {
            /* the values the aggregates carry (agg_json): training sees what serving sees */
            hvs_feat_hour_t a = {h, heat(b, h), 10.0, 21.0, 21.5, 0.5, 0, NAN, NAN, 0, 0};
            push((ev_t){0, b, h + HOUR, h, a, {0}});
            push((ev_t){1, b, h + HOUR + 10 * MIN, h, {0}, observed(h)});
            if ((h / HOUR) % 6 == 0)
                for (int l = 1; l <= 80; l++)
                    push((ev_t){1, b, h + 2 * HOUR, h + l * HOUR, {0}, forecast(h, h + l * HOUR)});
        }
    qsort(events, nevents, sizeof *events, cmp_ev);
}

/* ---- services and producing ---------------------------------------------------------------- */

static hvs_test_proc_t redis, broker, worker;
static char env[1024], logpath[256];
static int http_port;
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld, *enc_model;
static hvs_calendar_t *cal;

static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
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
             "\"hot_water_litres\":10.0,\"room_temp_mean_c\":21.0,\"room_temp_min_c\":20.5,"
             "\"room_temp_max_c\":21.5,\"setpoint_mean_c\":21.5,\"comfort_gap_mean_c\":0.5,"
             "\"readings_expected\":4,\"readings_seen\":4,\"reporting_apartments\":2,"
             "\"known_apartments\":2,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             bld, (long long)ws, (long long)(ws + size), (long long)size, kwh,
             (long long)(ws + size));
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

/* The stream's events with at in [from, to) (make_events of the whole stream first). */
static void send_events(hvs_ms_t from, hvs_ms_t to) {
    char json[2048];
    size_t len;
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        if (e->at < from || e->at >= to)
            continue;
        const char *id = blds[e->b].id;
        const void *buf;
        if (e->kind == 0) {
            agg_json(json, sizeof json, id, e->hour, HOUR, e->agg.use);
            buf = encode_json(enc_agg, json, &len);
            send_raw("aggregates.hourly", id, buf, len);
        } else {
            wx_json(json, sizeof json, id, e->hour, &e->wx);
            buf = encode_json(enc_wx, json, &len);
            send_raw("weather.hourly", id, buf, len);
        }
    }
    flush();
}

static void send_topology(void) {
    for (int b = 0; b < NB; b++) {
        char json[2048], area[32];
        if (isnan(blds[b].area))
            snprintf(area, sizeof area, "null");
        else
            snprintf(area, sizeof area, "%.1f", blds[b].area);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"%s\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":%s,"
                 "\"construction_year\":2015,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[],\"updated_at\":1700000000000,\"deleted\":false}",
                 blds[b].id, blds[b].archetype, (long long)blds[b].commissioning, area);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        send_raw("topology", blds[b].id, buf, len);
    }
    flush();
}

/* ---- versions: trained by the trainer on the 30 days before T0 ------------------------------- */

static int tr_info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque;
    for (int b = 0; b < NMODEL; b++)
        if (!strcmp(blds[b].id, building)) {
            *out = (tr_building_info_t){blds[b].area, blds[b].commissioning, cal, NULL};
            return 0;
        }
    return -1;
}

/* forecast/global version `version` (rounds and depth make it another model), APPROVED, on
 * `models` keyed <name>#<version>. */
static void publish_version(int version, int rounds, int depth) {
    tr_history_t *h = tr_history_new(TRAIN_DAYS * 24 + 48, 0);
    HVS_REQUIRE(h, "history");
    make_events(T0 - TRAIN_DAYS * DAY, T0, NMODEL);
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        if (e->kind == 0)
            tr_history_put_hour(h, blds[e->b].id, HVS_FS_BUILDING, &e->agg);
        else
            tr_history_put_weather(h, blds[e->b].id, e->hour, &e->wx);
    }
    fc_version_spec_t spec = {"forecast/global",
                              NULL,
                              T0 - (TRAIN_DAYS - 1) * DAY,
                              T0,
                              version,
                              rounds,
                              depth,
                              1,
                              tr_info};
    void *buf;
    size_t len;
    fc_version_make(h, &spec, serde, &buf, &len, NULL);
    char key[256];
    hvs_registry_key(key, sizeof key, "forecast/global", version);
    send_raw("models", key, buf, len);
    flush();
    free(buf);
    tr_history_destroy(h);
}

/* ---- reading back ----------------------------------------------------------------------------- */

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

static json_t *forecasts; /* building -> [Forecast values, in order of publication] */
static size_t nforecasts; /* messages read */
static json_t *dead_agg, *dead_wx;

static void read_forecasts(void) {
    json_decref(forecasts);
    forecasts = json_object();
    json_t *msgs = hvs_test_tail_json(env, "forecasts.baseline", NULL);
    HVS_REQUIRE(msgs, "hvsctl tail forecasts.baseline");
    nforecasts = json_array_size(msgs);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        const char *b = json_string_value(json_object_get(v, "building_id"));
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(m, "key")), b);
        if (!b)
            continue;
        json_t *arr = json_object_get(forecasts, b);
        if (!arr)
            json_object_set_new(forecasts, b, arr = json_array());
        json_array_append(arr, v);
    }
    json_decref(msgs);
}

static long long ival(const json_t *o, const char *k) {
    return (long long)json_integer_value(json_object_get(o, k));
}

static double dval(const json_t *o, const char *k) {
    json_t *x = json_object_get(o, k);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const json_t *forecast_at(const char *b, hvs_ms_t t) {
    json_t *arr = json_object_get(forecasts, b), *v, *last = NULL;
    size_t i;
    json_array_foreach(arr, i, v) if (ival(v, "issued_at") == t) last = v;
    return last;
}

/* The issue times of hours [0, hours) streamed: the end of every hour (the first is the end of
 * the first hour; every run's issue time is on an hour boundary and adds none). */
static int issues_of(int hours) { return hours; }

/* Per forecast: 72 points, horizon 1..72 on the hours after issued_at, lower <= yhat <= upper
 * (both present, yhat >= 0), the model named. Returns the forecasts that failed. */
static int check_shape(const json_t *v, const char *model_name, int version, bool rules) {
    hvs_ms_t t = ival(v, "issued_at");
    json_t *pts = json_object_get(v, "points");
    int bad = 0;
    bad |= json_array_size(pts) != 72;
    bad |= !hvs_test_streq(json_string_value(json_object_get(v, "model_name")), model_name);
    bad |= ival(v, "model_version") != version;
    bad |= !hvs_test_streq(json_string_value(json_object_get(v, "kind")), "BASELINE");
    bool has_rules = false;
    size_t i;
    json_t *f, *p;
    json_array_foreach(json_object_get(v, "flags"), i, f)
        has_rules |= hvs_test_streq(json_string_value(f), "rules_only");
    bad |= has_rules != rules;
    hvs_ms_t first = (t + HOUR - 1) / HOUR * HOUR;
    json_array_foreach(pts, i, p) {
        double y = dval(p, "yhat_kwh"), lo = dval(p, "yhat_lower_kwh"),
               hi = dval(p, "yhat_upper_kwh");
        bad |= ival(p, "horizon_h") != (long long)i + 1;
        bad |= ival(p, "target_hour") != first + (hvs_ms_t)i * HOUR;
        bad |= !(y >= 0 && lo <= y && y <= hi);
    }
    if (bad && hvs_test_failed < 20) {
        char *s = json_dumps(v, JSON_COMPACT);
        fprintf(stderr, "bad forecast: %.600s\n", s ? s : "?");
        free(s);
    }
    return bad;
}

/* ---- the world, in stages ------------------------------------------------------------------- */

static int stage; /* 1: the stream to SWAP_DAY forecast; 2: v2 and the rest */
static double swaps_before;

static void teardown(void) {
    hvs_test_proc_stop(&worker);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    json_decref(forecasts);
    json_decref(dead_agg);
    json_decref(dead_wx);
    hvs_encoder_destroy(enc_agg), hvs_encoder_destroy(enc_wx), hvs_encoder_destroy(enc_bld);
    hvs_encoder_destroy(enc_model);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_calendar_destroy(cal);
    free(events);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "forecaster log: %s\n", logpath);
}

static int nbad;

/* Bad inputs (keys and hours of fc_b1, inside the stream). */
static void bad_inputs(void) {
    char json[2048];
    size_t len;
    hvs_ms_t h = T0 + (BAD_DAY * 24 - 5) * HOUR;
    unsigned char junk[40];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(0x7f + 13 * i);
    send_raw("aggregates.hourly", "fc_b1", junk, sizeof junk), nbad++; /* not the magic byte */
    agg_json(json, sizeof json, "fc_b1", h, HOUR, 3.0);
    const void *enc = encode_json(enc_agg, json, &len);
    send_raw("aggregates.hourly", "fc_b2", enc, len), nbad++;
    agg_json(json, sizeof json, "fc_b1", h, 15 * MIN, 3.0);
    enc = encode_json(enc_agg, json, &len);
    send_raw("aggregates.hourly", "fc_b1", enc, len), nbad++;
    /* NaN heating: Avro carries it, JSON cannot (patched into the value) */
    agg_json(json, sizeof json, "fc_b1", h, HOUR, 3.0);
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc_agg), f, br;
    const void *buf;
    HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0 &&
                    avro_value_get_by_name(v, "heating_kwh", &f, NULL) == 0 &&
                    avro_value_set_branch(&f, 1, &br) == 0 &&
                    avro_value_set_double(&br, NAN) == 0 &&
                    hvs_encoder_encode(enc_agg, &buf, &len, &err) == 0,
                "NaN aggregate: %s", err.msg);
    send_raw("aggregates.hourly", "fc_b1", buf, len), nbad++;
    hvs_feat_wx_t w = observed(h);
    w.temp = 200;
    wx_json(json, sizeof json, "fc_b1", h, &w);
    enc = encode_json(enc_wx, json, &len);
    send_raw("weather.hourly", "fc_b1", enc, len), nbad++;
    flush();
}

#define PHASE1_END (T0 + SWAP_DAY * DAY + 30 * MIN)
#define BAD_AT (T0 + BAD_DAY * DAY + 30 * MIN)
#define STREAM_END (T0 + DAYS * DAY + 30 * MIN)
#define NO_AREA "hvs_forecaster_skipped_total{reason=\"no_area\"}"

static void first_run(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    http_port = hvs_test_free_port();
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-forecaster-%d.log", (int)getpid());
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_calendar_new("CH-ZH", &cal, &err) == 0 && hvs_serde_new(NULL, &serde, &err) == 0 &&
            hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &enc_agg, &err) ==
                0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, "weather.hourly", &enc_wx, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc_model, &err) == 0,
        "setup: %s", err.msg);
    send_topology();
    publish_version(1, 80, 4);
    make_events(T0, T0 + DAYS * DAY, NB);
    send_events(INT64_MIN, BAD_AT);
    bad_inputs();
    send_events(BAD_AT, PHASE1_END);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_HTTP_PORT=%d HVS_KAFKA_GROUP=fc-it %s --batch 500 --weather-wait 7d", env,
             http_port, HVS_TEST_FORECASTER);
    HVS_REQUIRE(hvs_test_spawn(&worker, cmd, logpath) == 0, "spawn hvs-forecaster");
    int n = issues_of(SWAP_DAY * 24);
    double got = wait_metric("hvs_forecaster_forecasts_total", 4.0 * n);
    HVS_CHECK(got == 4.0 * n, "forecasts_total %g, expected %d", got, 4 * n);
    wait_metric(NO_AREA, n);
    read_forecasts();
}

static void second_run(void) {
    swaps_before = metric("hvs_forecaster_model_swaps_total");
    publish_version(2, 40, 3);
    HVS_REQUIRE(log_has("forecast/global:2 now serves (was forecast/global:1)"), "v2 swapped in");
    make_events(T0, T0 + DAYS * DAY, NB);
    send_events(PHASE1_END, STREAM_END);
    int n = issues_of(DAYS * 24);
    double got = wait_metric("hvs_forecaster_forecasts_total", 4.0 * n);
    HVS_CHECK(got == 4.0 * n, "forecasts_total %g, expected %d", got, 4 * n);
    read_forecasts();
}

static void need(int want) {
    HVS_REQUIRE(stage <= want, "the world is past stage %d", want);
    if (stage < 1 && want >= 1)
        first_run(), stage = 1;
    if (stage < 2 && want >= 2)
        second_run(), stage = 2;
}

/* ---- cases ------------------------------------------------------------------------------------ */

static void test_forecasts(void) {
    need(1);
    int n = issues_of(SWAP_DAY * 24);
    for (int b = 0; b < NMODEL; b++) {
        json_t *arr = json_object_get(forecasts, blds[b].id);
        HVS_CHECK_EQ_INT((int)json_array_size(arr), n);
        int bad = 0, missing = 0, flagged = 0;
        for (int k = 1; k <= n; k++) {
            const json_t *v = forecast_at(blds[b].id, T0 + k * HOUR);
            if (!v) {
                if (!missing++)
                    fprintf(stderr, "%s: no forecast as of hour %d\n", blds[b].id, k);
                continue;
            }
            bad += check_shape(v, "forecast/global", 1, false);
            /* the first issue (T0 + 1 h) precedes the first run (issued T0 + 2 h): no forecast
             * weather yet, which it says; every later one had its weather */
            if (k == 1)
                HVS_CHECK(json_array_size(json_object_get(v, "flags")) == 2,
                          "%s: the first issue is flagged stale_weather and missing_weather",
                          blds[b].id);
            else
                flagged += json_array_size(json_object_get(v, "flags")) > 0;
            if (json_array_size(json_object_get(v, "flags")) > 0 && getenv("FC_DEBUG")) {
                char *s = json_dumps(json_object_get(v, "flags"), JSON_COMPACT);
                fprintf(stderr, "%s hour %d flags %s\n", blds[b].id, k, s);
                free(s);
            }
        }
        HVS_CHECK(missing == 0 && bad == 0, "%s: %d issue times without a forecast, %d bad",
                  blds[b].id, missing, bad);
        /* every issue had its weather in event order (and the worker waits for it: see the
         * weather wait at the start) */
        HVS_CHECK(flagged == 0, "%s: %d forecasts flagged", blds[b].id, flagged);
    }
    /* the building's latest in Redis: the last published, with a TTL */
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "redis");
    for (int b = 0; b < NMODEL + 1; b++) {
        json_t *arr = json_object_get(forecasts, blds[b].id);
        json_t *last = json_array_get(arr, json_array_size(arr) - 1);
        HVS_REQUIRE(last, "%s: forecasts", blds[b].id);
        char key[128];
        snprintf(key, sizeof key, "hvs:{%s}:fc:latest", blds[b].id);
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
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "model_name")),
                         json_string_value(json_object_get(last, "model_name")));
        HVS_CHECK_EQ_INT(ival(j, "model_version"), ival(last, "model_version"));
        char model[128];
        snprintf(model, sizeof model, "%s:%lld",
                 json_string_value(json_object_get(last, "model_name")),
                 ival(last, "model_version"));
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "model")),
                         b == YOUNG ? "rules" : model);
        json_t *pj = json_object_get(j, "points"), *pl = json_object_get(last, "points");
        HVS_CHECK_EQ_INT((int)json_array_size(pj), 72);
        int differ = 0;
        for (size_t i = 0; i < json_array_size(pl); i++) {
            json_t *a = json_array_get(pj, i), *p = json_array_get(pl, i);
            differ += json_integer_value(json_array_get(a, 0)) != ival(p, "target_hour") ||
                      json_integer_value(json_array_get(a, 1)) != ival(p, "horizon_h") ||
                      json_number_value(json_array_get(a, 2)) != dval(p, "yhat_kwh") ||
                      json_number_value(json_array_get(a, 3)) != dval(p, "yhat_lower_kwh") ||
                      json_number_value(json_array_get(a, 4)) != dval(p, "yhat_upper_kwh");
        }
        HVS_CHECK(differ == 0, "%s: %d points of the latest in Redis differ from the published",
                  blds[b].id, differ);
        json_decref(j);
        redisReply *rep = NULL;
        HVS_CHECK(hvs_redis_command(r, &rep, &err, "PTTL %s", key) == 0 && rep &&
                      rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 &&
                      rep->integer <= 3 * HOUR,
                  "%s: PTTL %lld (a TTL of at most 3 h)", key, rep ? rep->integer : -99);
        if (rep)
            freeReplyObject(rep);
    }
    hvs_redis_destroy(r);
    printf("  %zu forecasts read back, %d per building\n", nforecasts, n);
}

static void test_rules_and_no_area(void) {
    need(1);
    int n = issues_of(SWAP_DAY * 24);
    const char *y = blds[YOUNG].id;
    json_t *arr = json_object_get(forecasts, y);
    HVS_CHECK_EQ_INT((int)json_array_size(arr), n);
    int bad = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) bad += check_shape(v, "rules", 0, true);
    HVS_CHECK(bad == 0, "%s: %d forecasts not rules_only by rules v0", y, bad);
    /* a point's value: area x k x HDH of the target hour in the newest run issued by T / 1000 */
    int checked = 0;
    for (int d = 2; d < SWAP_DAY; d++) {
        hvs_ms_t t = T0 + d * DAY + 5 * HOUR;
        const json_t *f = forecast_at(y, t);
        HVS_REQUIRE(f, "%s: forecast as of %lld", y, (long long)t);
        hvs_ms_t run = (t - 2 * HOUR) / (6 * HOUR) * (6 * HOUR);
        for (int k = 0; k < 72; k += 7) {
            json_t *p = json_array_get(json_object_get(f, "points"), (size_t)k);
            hvs_ms_t h = ival(p, "target_hour");
            double want = blds[YOUNG].area * YOUNG_K * fmax(0, 18 - forecast(run, h).temp) / 1000;
            HVS_CHECK_NEAR(dval(p, "yhat_kwh"), want, 1e-9);
            HVS_CHECK(dval(p, "yhat_lower_kwh") < dval(p, "yhat_kwh") || dval(p, "yhat_kwh") == 0,
                      "rules interval below");
            checked++;
        }
    }
    HVS_CHECK(checked > 40, "%d rules points checked", checked);
    /* no heated area: no forecast, every issue time counted */
    HVS_CHECK(json_object_get(forecasts, blds[NOAREA].id) == NULL, "%s: no forecast",
              blds[NOAREA].id);
    HVS_CHECK_EQ_INT((long long)metric(NO_AREA), n);
    HVS_CHECK(log_has("building fc_noarea: not forecastable"), "the log says why");
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
    json_t *da = wait_topic("aggregates.hourly.dlq", 4), *dw = wait_topic("weather.hourly.dlq", 1);
    HVS_CHECK_EQ_INT((int)json_array_size(da), 4);
    HVS_CHECK_EQ_INT((int)json_array_size(dw), 1);
    HVS_CHECK(has_reason(da, "bad_magic", "fc_b1"), "undecodable bytes: bad_magic");
    HVS_CHECK(has_reason(da, "key_mismatch", "fc_b2"), "another building's key: key_mismatch");
    HVS_CHECK(has_reason(da, "bad_window", "fc_b1"), "15-minute window: bad_window");
    HVS_CHECK(has_reason(da, "non_finite", "fc_b1"), "NaN heating: non_finite");
    HVS_CHECK(has_reason(dw, "value_out_of_range", "fc_b1"), "200 degC: value_out_of_range");
    if (hvs_test_failed) {
        char *s = json_dumps(da, JSON_COMPACT), *t = json_dumps(dw, JSON_COMPACT);
        fprintf(stderr, "dead letters: %.2000s\n%.1000s\n", s ? s : "", t ? t : "");
        free(s), free(t);
    }
    json_decref(da), json_decref(dw);
    /* the worker kept going: every issue time after the bad inputs has its forecast */
    int after = 0;
    for (int k = BAD_DAY * 24 + 1; k <= SWAP_DAY * 24; k++)
        after += forecast_at("fc_b1", T0 + k * HOUR) != NULL;
    HVS_CHECK_EQ_INT(after, (SWAP_DAY - BAD_DAY) * 24);
    HVS_CHECK(!hvs_test_proc_exited(&worker, NULL), "the worker runs");
    HVS_CHECK_EQ_INT(nbad, 5);
}

static void test_hot_swap(void) {
    need(2);
    int n = issues_of(DAYS * 24), swap = SWAP_DAY * 24;
    for (int b = 0; b < NMODEL; b++) {
        json_t *arr = json_object_get(forecasts, blds[b].id);
        HVS_CHECK_EQ_INT((int)json_array_size(arr), n);
        int v1 = 0, v2 = 0, missing = 0, bad = 0;
        for (int k = 1; k <= n; k++) {
            const json_t *v = forecast_at(blds[b].id, T0 + k * HOUR);
            if (!v) {
                missing++;
                continue;
            }
            int want = k <= swap ? 1 : 2;
            bad += check_shape(v, "forecast/global", want, false);
            v1 += ival(v, "model_version") == 1;
            v2 += ival(v, "model_version") == 2;
        }
        HVS_CHECK(missing == 0 && bad == 0 && v1 == swap && v2 == n - swap,
                  "%s: %d missing, %d bad, %d by v1 (want %d), %d by v2 (want %d)", blds[b].id,
                  missing, bad, v1, swap, v2, n - swap);
    }
    double s = metric("hvs_forecaster_model_swaps_total");
    HVS_CHECK(swaps_before >= 1 && s == swaps_before + 1, "model swaps %g, before v2 %g", s,
              swaps_before);
    HVS_CHECK(!hvs_test_proc_exited(&worker, NULL), "the worker runs");
    HVS_CHECK_EQ_INT(json_array_size(json_object_get(forecasts, blds[YOUNG].id)), n);
}

/* Settings refused at start, naming them (no services: checked before anything connects). */
static void test_settings_refused(void) {
    static const struct {
        const char *args, *says;
    } bad[] = {
        {"--rules passive:abc", "HVS_FC_RULES"},
        {"--rules passive", "HVS_FC_RULES"},
        {"--mature 30d --building-age 10d", "HVS_FC_BUILDING_AGE must not be below HVS_FC_MATURE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd,
                 "env HVS_KAFKA_BROKERS=127.0.0.1:1 HVS_REDIS_URL=redis://127.0.0.1:1 "
                 "HVS_HTTP_PORT=-1 timeout 20 %s %s 2>&1",
                 HVS_TEST_FORECASTER, bad[i].args);
        int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
        HVS_CHECK(rc != 0 && rc != 124, "%s: refused (exit %d)", bad[i].args, rc);
        HVS_CHECK(out && strstr(out, bad[i].says), "%s: says '%s': %s", bad[i].args, bad[i].says,
                  out ? out : "");
        free(out);
    }
}

static const hvs_test_case_t cases[] = {
    {"forecasts", test_forecasts},
    {"rules_and_no_area", test_rules_and_no_area},
    {"bad_input", test_bad_input},
    {"hot_swap", test_hot_swap},
    {"settings_refused", test_settings_refused},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
