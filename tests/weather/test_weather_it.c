/*
 * test_weather_it - hvs-weather as a process against real services: hvs-devbroker, the
 * simulator's Open-Meteo server, and a loopback test server in this process (wx_server.h).
 * What it published is read back from the topics with `hvsctl tail` and compared with values
 * this test parses itself from the servers' own answers.
 *
 * 1. Simulator (`--serve-weather`, clock from its /v1/status, frozen after its run): every
 *    building of the simulator's topology gets each hour of the answer exactly once, with the
 *    simulator's values, OBSERVED exactly for the hours over at the simulated now, issued_at =
 *    the simulated now, in the building's topology partition; further polls publish nothing.
 *    The simulator restarted 75 simulated minutes later: exactly the hours whose (kind,
 *    values) changed are published again, stamped with the new now; the unchanged forecast
 *    keeps its older record alone.
 * 2. Test server, one location per kind of answer: good; 500 then good; 429 Retry-After: 1
 *    then good (the retry waits >= 1 s); slower than the timeout; truncated JSON; unequal
 *    arrays; a string for a number; 75 degC; utc_offset_seconds 3600; ETag (the second poll
 *    sends If-None-Match and gets 304); a body over the size cap; 404. Only the good ones are
 *    published (values, kinds, null handling, issued_at between the answer and the record),
 *    they are not held up by the slow one, each bad kind is counted under its reason and
 *    logged with the building, the second round publishes nothing, SIGTERM exits 0.
 * 3. Outage on an accelerated clock (1 h per second): one building whose requests all fail
 *    gets DATA_QUALITY alerts (same id, hourly at most, about 3 h after its first request),
 *    the healthy one none; when it recovers, the log says so and the alerts stop. Then topology
 *    changes while it runs: a new building is polled at once, a moved one at its new place
 *    (and no longer at the old), a deleted one no more.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"
#include "wx_server.h"

#define HOUR (3600 * 1000LL)
#define NV 5

static const char *const fields[NV] = {"temperature_c", "relative_humidity_pct", "cloud_cover_pct",
                                       "shortwave_radiation_wm2", "wind_speed_ms"};
/* Both spellings of each variable in an answer (the test's own mapping). */
static const char *const answer_names[NV][2] = {
    {"temperature_2m", "temperature_2m"}, {"relative_humidity_2m", "relativehumidity_2m"},
    {"cloud_cover", "cloudcover"},        {"shortwave_radiation", "shortwave_radiation"},
    {"wind_speed_10m", "windspeed_10m"},
};

static char env[512];

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct bdef {
    const char *id;
    double lat, lon;
    bool deleted;
} bdef_t;

static void produce_buildings(const char *brokers, const bdef_t *b, size_t n) {
    hvs_serde_t *serde;
    hvs_encoder_t *enc;
    hvs_producer_t *prod;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0, "serde");
    HVS_REQUIRE(hvs_producer_new(&kc, &prod, &err) == 0, "producer: %s", err.msg);
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0, "enc");
    for (size_t i = 0; i < n; i++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"old_poorly_insulated\","
                 "\"commissioning_date\":1577836800000,\"latitude\":%.4f,\"longitude\":%.4f,"
                 "\"heated_area_m2\":null,\"construction_year\":null,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
                 "\"deleted\":%s}",
                 b[i].id, b[i].lat, b[i].lon, b[i].deleted ? "true" : "false");
        avro_value_t *v = hvs_encoder_value(enc);
        HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0, "json: %s",
                    err.msg);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode: %s", err.msg);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, b[i].id,
                                      strlen(b[i].id), buf, len, &err) == 0,
                    "send: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
}

static char *metrics_text(int port) {
    char url[128], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    if (hvs_test_http("GET", url, NULL, 0, &out, NULL, 0) != 200) {
        free(out);
        return NULL;
    }
    return out;
}

static double metric(int port, const char *sample) {
    char *t = metrics_text(port);
    double v = wx_test_metric(t, sample);
    free(t);
    return v;
}

/* Wait until metric >= want (or the deadline, ms from now): its last value. */
static double wait_metric(int port, const char *sample, double want, int ms) {
    int64_t deadline = hvs_test_now_ms() + ms;
    double v = -1;
    while ((v = metric(port, sample)) < want && hvs_test_now_ms() < deadline)
        usleep(100000);
    return v;
}

static const char *vstr(const json_t *v, const char *k) {
    return json_string_value(json_object_get(v, k));
}

/* The Weather values of msgs (hvsctl objects) for one building (borrowed references). */
static size_t records_of(const json_t *msgs, const char *building, json_t **out, size_t max) {
    size_t n = 0, i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        if (vstr(v, "building_id") && strcmp(vstr(v, "building_id"), building) == 0 && n < max)
            out[n++] = m;
    }
    return n;
}

static size_t count_weather(const char *building) {
    json_t *msgs = hvs_test_tail_json(env, "weather.hourly", NULL);
    json_t *recs[4096];
    size_t n = msgs ? records_of(msgs, building, recs, 4096) : 0;
    json_decref(msgs);
    return n;
}

/* Wait until `topic` holds at least `want` messages (all buildings): the array, or what there
 * was at the deadline. */
static json_t *wait_messages(const char *topic, size_t want, int ms) {
    int64_t deadline = hvs_test_now_ms() + ms;
    for (;;) {
        json_t *msgs = hvs_test_tail_json(env, topic, NULL);
        if ((msgs && json_array_size(msgs) >= want) || hvs_test_now_ms() >= deadline)
            return msgs;
        json_decref(msgs);
        usleep(300000);
    }
}

/* One hour of an answer as this test reads it. */
typedef struct xhour {
    hvs_ms_t hour;
    bool has[NV];
    double v[NV];
} xhour_t;

/* Parse an Open-Meteo answer independently of the worker: hours and values. */
static size_t parse_answer(const char *body, size_t len, xhour_t *out, size_t max) {
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    HVS_REQUIRE(root, "answer is JSON: %s", je.text);
    json_t *hourly = json_object_get(root, "hourly"), *time = json_object_get(hourly, "time");
    HVS_REQUIRE(json_is_array(time), "hourly.time");
    size_t n = json_array_size(time);
    HVS_REQUIRE(n <= max, "hours");
    for (size_t i = 0; i < n; i++) {
        char iso[40];
        snprintf(iso, sizeof iso, "%sZ", json_string_value(json_array_get(time, i)));
        HVS_REQUIRE(hvs_time_parse_iso8601(iso, &out[i].hour, NULL) == 0, "time %s", iso);
        for (int v = 0; v < NV; v++) {
            json_t *arr = json_object_get(hourly, answer_names[v][0]);
            if (!arr)
                arr = json_object_get(hourly, answer_names[v][1]);
            json_t *x = json_array_get(arr, i);
            out[i].has[v] = json_is_number(x);
            out[i].v[v] = json_is_number(x) ? json_number_value(x) : 0;
        }
    }
    json_decref(root);
    return n;
}

static bool all_null(const xhour_t *h) {
    for (int v = 0; v < NV; v++)
        if (h->has[v])
            return false;
    return true;
}

/* Does a Weather value carry exactly the hour's values and kind? */
static bool same_values(const json_t *val, const xhour_t *h) {
    for (int v = 0; v < NV; v++) {
        json_t *f = json_object_get(val, fields[v]);
        if (h->has[v] != json_is_number(f))
            return false;
        if (h->has[v] && fabs(json_number_value(f) - h->v[v]) > 1e-9)
            return false;
    }
    return true;
}

static const char *kind_at(hvs_ms_t hour, hvs_ms_t now) {
    return hour + HOUR <= now ? "OBSERVED" : "FORECAST";
}

static hvs_ms_t ival(const json_t *v, const char *k) {
    return (hvs_ms_t)json_integer_value(json_object_get(v, k));
}

static bool log_has(const char *path, const char *a, const char *b) {
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return found;
}

static char *fetch(const char *url, size_t *len) {
    char *out = NULL;
    long st = hvs_test_http("GET", url, NULL, 0, &out, NULL, 0);
    HVS_REQUIRE(st == 200 && out, "GET %s: %ld", url, st);
    *len = strlen(out);
    return out;
}

static hvs_ms_t status_now(int port) {
    char url[128], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/status", port);
    hvs_ms_t now = HVS_MS_NONE;
    if (hvs_test_http("GET", url, NULL, 0, &out, NULL, 0) == 200) {
        json_t *j = json_loads(out, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "now"));
        if (!s || hvs_time_parse_iso8601(s, &now, NULL))
            now = HVS_MS_NONE;
        json_decref(j);
    }
    free(out);
    return now;
}

static void start_simulator(hvs_test_proc_t *sim, int port, const char *days, const char *log,
                            hvs_ms_t want_now) {
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "env %s HVS_HTTP_PORT=-1 %s --out kafka --clean --start 2025-01-10T00:00:00Z --days %s "
        "--buildings 3 --apartments-per-building 1 --serve-weather %d",
        env, HVS_TEST_SIMULATOR, days, port);
    HVS_REQUIRE(hvs_test_spawn(sim, cmd, log) == 0, "spawn simulator");
    int64_t deadline = hvs_test_now_ms() + 60000;
    while (status_now(port) != want_now && hvs_test_now_ms() < deadline)
        usleep(50000);
    HVS_REQUIRE(status_now(port) == want_now, "simulator clock at its end");
}

static void start_weather(hvs_test_proc_t *w, int http_port, const char *args, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s HVS_HTTP_PORT=%d %s %s", env, http_port, HVS_TEST_WEATHER,
             args);
    HVS_REQUIRE(hvs_test_spawn(w, cmd, log) == 0, "spawn hvs-weather");
}

/* SIGTERM and the exit status (-1 when it did not exit within ms). */
static int stop_status(hvs_test_proc_t *p, int ms) {
    kill(p->pid, SIGTERM);
    int64_t deadline = hvs_test_now_ms() + ms;
    int st = -1;
    while (!hvs_test_proc_exited(p, &st) && hvs_test_now_ms() < deadline)
        usleep(20000);
    if (p->pid > 0) {
        hvs_test_proc_kill(p);
        return -1;
    }
    return st;
}

static void temp_log(char *path, size_t len, const char *name) {
    snprintf(path, len, "/tmp/hvs-test-weather-%s-%d.log", name, (int)getpid());
    unlink(path);
}

/* ---- 1. the simulator ---------------------------------------------------------------------- */

#define SIM_HOURLY "temperature_2m,relativehumidity_2m,cloudcover,shortwave_radiation,windspeed_10m"

typedef struct simb {
    char id[64];
    double lat, lon;
    int partition;
    xhour_t h[200];
    size_t n;
} simb_t;

static void sim_answers(int port, simb_t *b, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        char url[512];
        snprintf(url, sizeof url,
                 "http://127.0.0.1:%d/v1/forecast?latitude=%.4f&longitude=%.4f&hourly=" SIM_HOURLY
                 "&past_days=1&forecast_days=3",
                 port, b[i].lat, b[i].lon);
        size_t len;
        char *body = fetch(url, &len);
        b[i].n = parse_answer(body, len, b[i].h, 200);
        free(body);
    }
}

static void scenario_simulator(void) {
    fprintf(stderr, "-- 1. simulator\n");
    hvs_test_proc_t broker, sim, wx;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr);
    char simlog[256], wxlog[256];
    temp_log(simlog, sizeof simlog, "sim");
    temp_log(wxlog, sizeof wxlog, "wx1");
    int sport = hvs_test_free_port(), wport = hvs_test_free_port();
    hvs_ms_t n1, n2;
    HVS_REQUIRE(hvs_time_parse_iso8601("2025-01-11T02:15:00Z", &n1, NULL) == 0 &&
                    hvs_time_parse_iso8601("2025-01-11T03:30:00Z", &n2, NULL) == 0,
                "times");
    start_simulator(&sim, sport, "1.1", simlog, n1);

    /* the buildings as the simulator published them */
    json_t *topo = wait_messages("topology", 3, 20000);
    HVS_REQUIRE(topo && json_array_size(topo) == 3, "3 buildings on topology");
    simb_t b[3];
    memset(b, 0, sizeof b);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(topo, i), *v = json_object_get(m, "value");
        snprintf(b[i].id, sizeof b[i].id, "%s", vstr(v, "building_id"));
        b[i].lat = json_number_value(json_object_get(v, "latitude"));
        b[i].lon = json_number_value(json_object_get(v, "longitude"));
        b[i].partition = (int)json_integer_value(json_object_get(m, "partition"));
    }
    json_decref(topo);
    sim_answers(sport, b, 3);
    size_t expected = 0;
    for (size_t i = 0; i < 3; i++) {
        HVS_CHECK(b[i].n == 96, "%s: 4 days of hours, %zu", b[i].id, b[i].n);
        expected += b[i].n;
    }

    char args[512];
    snprintf(args, sizeof args,
             "--url http://127.0.0.1:%d --clock-url http://127.0.0.1:%d/v1/status "
             "--poll-interval 3s --spread 0 --provider simulator",
             sport, sport);
    start_weather(&wx, wport, args, wxlog);
    json_t *msgs = wait_messages("weather.hourly", expected, 60000);
    HVS_REQUIRE(msgs, "weather.hourly readable");
    HVS_CHECK_EQ_INT(json_array_size(msgs), expected);
    size_t observed = 0, matched = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *recs[400];
        size_t n = records_of(msgs, b[i].id, recs, 400);
        HVS_CHECK(n == b[i].n, "%s: one record per hour: %zu of %zu", b[i].id, n, b[i].n);
        for (size_t k = 0; k < b[i].n; k++) {
            const xhour_t *h = &b[i].h[k];
            size_t found = 0;
            for (size_t r = 0; r < n; r++) {
                json_t *v = json_object_get(recs[r], "value");
                if (ival(v, "hour") != h->hour)
                    continue;
                found++;
                const char *kind = kind_at(h->hour, n1);
                observed += strcmp(kind, "OBSERVED") == 0;
                bool ok = strcmp(vstr(v, "kind"), kind) == 0 && ival(v, "issued_at") == n1 &&
                          same_values(v, h) && strcmp(vstr(v, "provider"), "simulator") == 0 &&
                          fabs(json_number_value(json_object_get(v, "latitude")) - b[i].lat) <
                              1e-9 &&
                          strcmp(vstr(recs[r], "key"), b[i].id) == 0 &&
                          json_integer_value(json_object_get(recs[r], "partition")) ==
                              b[i].partition;
                matched += ok;
                if (!ok)
                    HVS_CHECK(ok,
                              "%s hour %lld: kind %s (want %s), issued_at %lld (want %lld), "
                              "values/provider/key/partition",
                              b[i].id, (long long)h->hour, vstr(v, "kind"), kind,
                              (long long)ival(v, "issued_at"), (long long)n1);
            }
            HVS_CHECK(found == 1, "%s hour %lld found %zu times", b[i].id, (long long)h->hour,
                      found);
        }
    }
    HVS_CHECK_EQ_INT(matched, expected);
    /* 2025-01-10T00:00 .. 2025-01-11T01:00 are over at 02:15: 26 hours per building */
    HVS_CHECK_EQ_INT(observed, 3 * 26);
    json_decref(msgs);

    /* further polls of the unchanged answers publish nothing */
    double unchanged = wait_metric(wport, "hvs_weather_polls_total{result=\"unchanged\"}", 6,
                                   30000);
    HVS_CHECK(unchanged >= 6, "two more rounds unchanged: %g", unchanged);
    msgs = hvs_test_tail_json(env, "weather.hourly", NULL);
    HVS_CHECK(msgs && json_array_size(msgs) == expected, "nothing new: %zu",
              msgs ? json_array_size(msgs) : 0);
    json_decref(msgs);

    /* 75 simulated minutes later: restart the simulator between two rounds */
    simb_t before[3];
    memcpy(before, b, sizeof b);
    double rounds = metric(wport, "hvs_weather_round_seconds_count");
    wait_metric(wport, "hvs_weather_round_seconds_count", rounds + 1, 10000);
    hvs_test_proc_stop(&sim);
    start_simulator(&sim, sport, "1.15", simlog, n2);
    sim_answers(sport, b, 3);
    size_t changed = 0;
    for (size_t i = 0; i < 3; i++) {
        HVS_REQUIRE(b[i].n == before[i].n, "same hours after the restart");
        for (size_t k = 0; k < b[i].n; k++) {
            const xhour_t *o = &before[i].h[k], *h = &b[i].h[k];
            bool same = strcmp(kind_at(o->hour, n1), kind_at(h->hour, n2)) == 0;
            for (int v = 0; v < NV && same; v++)
                same = o->has[v] == h->has[v] && (!h->has[v] || o->v[v] == h->v[v]);
            changed += !same;
        }
    }
    /* 02:00 becomes OBSERVED; 03:00 is observed by the simulator now, no longer forecast */
    HVS_CHECK(changed >= 3 && changed <= 6, "changed hours: %zu", changed);
    msgs = wait_messages("weather.hourly", expected + changed, 30000);
    rounds = metric(wport, "hvs_weather_round_seconds_count");
    wait_metric(wport, "hvs_weather_round_seconds_count", rounds + 2, 15000);
    json_decref(msgs);
    msgs = hvs_test_tail_json(env, "weather.hourly", NULL);
    HVS_CHECK(msgs && json_array_size(msgs) == expected + changed,
              "exactly the changed hours: %zu, "
              "expected %zu",
              msgs ? json_array_size(msgs) : 0, expected + changed);
    size_t fresh_ok = 0;
    for (size_t i = 0; msgs && i < 3; i++) {
        json_t *recs[400];
        size_t n = records_of(msgs, b[i].id, recs, 400);
        for (size_t r = 0; r < n; r++) {
            json_t *v = json_object_get(recs[r], "value");
            if (ival(v, "issued_at") != n2)
                continue;
            for (size_t k = 0; k < b[i].n; k++)
                if (b[i].h[k].hour == ival(v, "hour"))
                    fresh_ok += strcmp(vstr(v, "kind"), kind_at(b[i].h[k].hour, n2)) == 0 &&
                                same_values(v, &b[i].h[k]);
        }
    }
    HVS_CHECK_EQ_INT(fresh_ok, changed);
    json_decref(msgs);
    HVS_CHECK_EQ_INT(stop_status(&wx, 20000), 0);
    HVS_CHECK(log_has(wxlog, "stopped:", NULL), "graceful stop logged");
    hvs_test_proc_stop(&sim);
    hvs_test_proc_stop(&broker);
    unlink(simlog);
    if (hvs_test_failed == 0)
        unlink(wxlog);
}

/* ---- 2. every kind of answer ---------------------------------------------------------------- */

#define NEW_HOURLY                                                                                 \
    "temperature_2m,relative_humidity_2m,cloud_cover,shortwave_radiation,wind_speed_10m"

static const struct {
    bdef_t b;
    wx_scn_t scn;
    const char *reason; /* bad-response reason, NULL for the published ones */
} cases[] = {
    {{"b01_good", 46.0100, 8.5, false}, WX_SCN_GOOD, NULL},
    {{"b02_500", 46.0200, 8.5, false}, WX_SCN_500_THEN_GOOD, NULL},
    {{"b03_429", 46.0300, 8.5, false}, WX_SCN_429_THEN_GOOD, NULL},
    {{"b04_slow", 46.0400, 8.5, false}, WX_SCN_SLOW, NULL},
    {{"b05_trunc", 46.0500, 8.5, false}, WX_SCN_TRUNCATED, "truncated_json"},
    {{"b06_unequal", 46.0600, 8.5, false}, WX_SCN_UNEQUAL, "unequal_arrays"},
    {{"b07_string", 46.0700, 8.5, false}, WX_SCN_STRING, "non_numeric"},
    {{"b08_absurd", 46.0800, 8.5, false}, WX_SCN_ABSURD, "out_of_range"},
    {{"b09_tz", 46.0900, 8.5, false}, WX_SCN_TZ, "wrong_timezone"},
    {{"b10_etag", 46.1000, 8.5, false}, WX_SCN_ETAG, NULL},
    {{"b11_large", 46.1100, 8.5, false}, WX_SCN_TOO_LARGE, "too_large"},
    {{"b12_404", 46.1200, 8.5, false}, WX_SCN_404, "http_error"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static bool published_case(size_t i) {
    return cases[i].scn == WX_SCN_GOOD || cases[i].scn == WX_SCN_500_THEN_GOOD ||
           cases[i].scn == WX_SCN_429_THEN_GOOD || cases[i].scn == WX_SCN_ETAG;
}

static void scenario_answers(void) {
    fprintf(stderr, "-- 2. every kind of answer\n");
    hvs_test_proc_t broker, wx;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr);
    wx_server_t *srv;
    HVS_REQUIRE(wx_server_start(&srv) == 0, "test server");
    wx_server_set_slow_ms(srv, 12000);
    bdef_t bs[NCASES];
    for (size_t i = 0; i < NCASES; i++) {
        wx_server_set(srv, cases[i].b.lat, cases[i].scn);
        bs[i] = cases[i].b;
    }
    produce_buildings(broker.addr, bs, NCASES);
    char wxlog[256], args[1024];
    temp_log(wxlog, sizeof wxlog, "wx2");
    int wport = hvs_test_free_port();
    snprintf(args, sizeof args,
             "--url http://127.0.0.1:%d --hourly " NEW_HOURLY " --poll-interval 10s --spread 0 "
             "--timeout 4s --connect-timeout 1s --retries 1 --backoff 100ms --concurrency 4 "
             "--drain-timeout 1s",
             wx_server_port(srv));
    int64_t started = hvs_test_now_ms();
    start_weather(&wx, wport, args, wxlog);

    /* what the good ones must carry, parsed here from the server's own good answer */
    xhour_t hours[100];
    size_t blen;
    char *body = wx_server_good_body(srv, 46.01, 8.5, NEW_HOURLY, &blen);
    size_t nh = parse_answer(body, blen, hours, 100);
    free(body);
    size_t per = 0;
    for (size_t k = 0; k < nh; k++)
        per += !all_null(&hours[k]);
    HVS_CHECK(nh == 69 && per == 68, "69 hours, one all null: %zu %zu", nh, per);

    json_t *msgs = wait_messages("weather.hourly", 4 * per, 40000);
    HVS_REQUIRE(msgs, "weather.hourly");
    HVS_CHECK_EQ_INT(json_array_size(msgs), 4 * per);
    wx_server_log_t slow;
    wx_server_log(srv, 46.04, &slow);
    HVS_CHECK(slow.requests >= 1, "the slow one was asked");
    hvs_ms_t now_wall = hvs_time_now_ms();
    for (size_t i = 0; i < NCASES; i++) {
        json_t *recs[400];
        size_t n = records_of(msgs, cases[i].b.id, recs, 400);
        if (!published_case(i)) {
            HVS_CHECK(n == 0, "%s: nothing published, %zu", cases[i].b.id, n);
            continue;
        }
        HVS_CHECK(n == per, "%s: %zu records, expected %zu", cases[i].b.id, n, per);
        char *gb = wx_server_good_body(srv, cases[i].b.lat, 8.5, NEW_HOURLY, &blen);
        nh = parse_answer(gb, blen, hours, 100);
        free(gb);
        wx_server_log_t lg;
        wx_server_log(srv, cases[i].b.lat, &lg);
        size_t ok = 0, late = 0;
        for (size_t r = 0; r < n; r++) {
            json_t *v = json_object_get(recs[r], "value");
            hvs_ms_t issued = ival(v, "issued_at"),
                     ts = (hvs_ms_t)json_integer_value(json_object_get(recs[r], "timestamp"));
            for (size_t k = 0; k < nh; k++)
                if (hours[k].hour == ival(v, "hour"))
                    ok += !all_null(&hours[k]) && same_values(v, &hours[k]) &&
                          strcmp(vstr(v, "kind"), kind_at(hours[k].hour, issued)) == 0 &&
                          strcmp(vstr(v, "kind"), kind_at(hours[k].hour, now_wall)) == 0 &&
                          strcmp(vstr(v, "provider"), "open-meteo") == 0;
            /* stamped after the server sent the values, before the record was produced */
            HVS_CHECK(issued >= lg.first_good_ms && issued <= ts,
                      "%s: issued_at %lld in "
                      "[%lld, %lld]",
                      cases[i].b.id, (long long)issued, (long long)lg.first_good_ms, (long long)ts);
            /* not held up by the slow location: published before its first attempt timed out */
            late += ts >= slow.arrived_ms[0] + 4000;
        }
        HVS_CHECK(ok == per, "%s: values and kinds as answered: %zu of %zu", cases[i].b.id, ok,
                  per);
        HVS_CHECK(late == 0, "%s: %zu records only after the slow one's timeout", cases[i].b.id,
                  late);
        if (cases[i].scn == WX_SCN_500_THEN_GOOD)
            HVS_CHECK(lg.requests >= 2, "500 retried: %d requests", lg.requests);
        /* Retry-After: 1 pauses the host 1000 ms; both clocks tick in whole ms, so the
           gap seen here can read 999 */
        if (cases[i].scn == WX_SCN_429_THEN_GOOD)
            HVS_CHECK(lg.requests >= 2 && lg.arrived_ms[1] - lg.arrived_ms[0] >= 995,
                      "429: retried after Retry-After: %lld ms",
                      (long long)(lg.arrived_ms[1] - lg.arrived_ms[0]));
    }
    json_decref(msgs);

    /* the second round: 304 for the ETag one, identical bodies for the others: nothing new */
    double unchanged = wait_metric(wport, "hvs_weather_polls_total{result=\"unchanged\"}", 4,
                                   40000);
    HVS_CHECK(unchanged >= 4, "second round unchanged: %g", unchanged);
    wx_server_log_t et;
    wx_server_log(srv, 46.10, &et);
    HVS_CHECK(et.requests >= 2 && et.conditional >= 1 && et.not_modified >= 1,
              "If-None-Match sent and answered 304: %d %d %d", et.requests, et.conditional,
              et.not_modified);
    char *mt = metrics_text(wport);
    HVS_REQUIRE(mt, "metrics");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_unchanged_total{how=\"not_modified\"}") >= 1, "304");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_unchanged_total{how=\"identical_body\"}") >= 3,
              "identical bodies");
    for (size_t i = 0; i < NCASES; i++) {
        if (!cases[i].reason)
            continue;
        char sample[128];
        snprintf(sample, sizeof sample, "hvs_weather_bad_responses_total{reason=\"%s\"}",
                 cases[i].reason);
        double v = wx_test_metric(mt, sample);
        HVS_CHECK(v >= 1, "%s counted: %g", sample, v);
        HVS_CHECK(log_has(wxlog, cases[i].b.id, cases[i].reason), "%s logged with its building",
                  cases[i].reason);
    }
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_requests_total{outcome=\"timeout\"}") >= 2,
              "the slow one timed out twice (one retry)");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_requests_total{outcome=\"http_429\"}") >= 1, "429");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_requests_total{outcome=\"http_5xx\"}") >= 1, "5xx");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_rate_limited_total") >= 1, "rate limited");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_retries_total") >= 3, "retries");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_polls_total{result=\"failed\"}") >= 1, "failed");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_locations") == (double)NCASES, "locations");
    HVS_CHECK(wx_test_metric(mt, "hvs_weather_records_total{kind=\"OBSERVED\"}") +
                      wx_test_metric(mt, "hvs_weather_records_total{kind=\"FORECAST\"}") ==
                  (double)(4 * per),
              "records by kind");
    free(mt);
    char url[128], *rz = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", wport);
    HVS_CHECK(hvs_test_http("GET", url, NULL, 0, &rz, NULL, 0) == 200, "ready: %s", rz ? rz : "");
    free(rz);
    for (size_t i = 0; i < NCASES; i++)
        if (published_case(i))
            HVS_CHECK(count_weather(cases[i].b.id) == per, "%s: nothing new", cases[i].b.id);

    /* SIGTERM while the slow one is in flight: bounded drain, exit 0 */
    HVS_CHECK_EQ_INT(stop_status(&wx, 20000), 0);
    HVS_CHECK(log_has(wxlog, "stopped:", NULL), "graceful stop logged");
    fprintf(stderr, "   (answers scenario took %lld ms)\n",
            (long long)(hvs_test_now_ms() - started));
    wx_server_stop(srv);
    hvs_test_proc_stop(&broker);
    if (hvs_test_failed == 0)
        unlink(wxlog);
}

/* ---- 3. outage ------------------------------------------------------------------------------ */

static void scenario_outage(void) {
    fprintf(stderr, "-- 3. outage\n");
    hvs_test_proc_t broker, wx;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr);
    wx_server_t *srv;
    HVS_REQUIRE(wx_server_start(&srv) == 0, "test server");
    hvs_ms_t t0;
    HVS_REQUIRE(hvs_time_parse_iso8601("2025-01-11T00:00:00Z", &t0, NULL) == 0, "t0");
    wx_server_set_clock(srv, t0, 3600.0); /* one hour per second */
    bdef_t bs[2] = {{"o1_ok", 47.0100, 8.4, false}, {"o2_down", 47.0200, 8.4, false}};
    wx_server_set(srv, bs[0].lat, WX_SCN_GOOD);
    wx_server_set(srv, bs[1].lat, WX_SCN_DOWN);
    produce_buildings(broker.addr, bs, 2);
    char wxlog[256], args[1024];
    temp_log(wxlog, sizeof wxlog, "wx3");
    int wport = hvs_test_free_port(), port = wx_server_port(srv);
    snprintf(args, sizeof args,
             "--url http://127.0.0.1:%d --clock-url http://127.0.0.1:%d/v1/status "
             "--poll-interval 1s --spread 0 --retries 1 --backoff 50ms --timeout 2s",
             port, port);
    start_weather(&wx, wport, args, wxlog);

    json_t *alerts = NULL;
    json_t *mine[64];
    size_t n = 0;
    int64_t deadline = hvs_test_now_ms() + 40000;
    while (n < 3 && hvs_test_now_ms() < deadline) {
        json_decref(alerts);
        usleep(500000);
        alerts = hvs_test_tail_json(env, "alerts", NULL);
        n = alerts ? records_of(alerts, "o2_down", mine, 64) : 0;
    }
    HVS_CHECK(n >= 3, "three alerts for the building that is down: %zu", n);
    json_t *okrec[4];
    HVS_CHECK(alerts && records_of(alerts, "o1_ok", okrec, 4) == 0, "none for the healthy one");
    wx_server_log_t lg;
    wx_server_log(srv, bs[1].lat, &lg);
    hvs_ms_t first_seen = HVS_MS_NONE, prev = HVS_MS_NONE;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(mine[i], "value"), *ev = json_object_get(v, "evidence");
        hvs_ms_t fs = ival(v, "first_seen"), up = ival(v, "updated_at");
        if (i == 0) {
            first_seen = fs;
            /* about 3 h of the clock after its first request (the clock is read, not guessed) */
            HVS_CHECK(up - lg.arrived_clock[0] >= 3 * HOUR - 30 * 60000 &&
                          up - lg.arrived_clock[0] <= 6 * HOUR,
                      "first alert %.2f h after the first request",
                      (double)(up - lg.arrived_clock[0]) / (double)HOUR);
        }
        char want_id[128], date[40];
        hvs_time_format_iso8601(first_seen, date, sizeof date);
        date[10] = '\0';
        snprintf(want_id, sizeof want_id, "o2_down#%s#DATA_QUALITY", date);
        HVS_CHECK(vstr(v, "alert_id") && strcmp(vstr(v, "alert_id"), want_id) == 0,
                  "alert id %s, expected %s", vstr(v, "alert_id"), want_id);
        HVS_CHECK(strcmp(vstr(v, "type"), "DATA_QUALITY") == 0 &&
                      json_is_null(json_object_get(v, "apartment_id")) && fs == first_seen,
                  "building-level DATA_QUALITY, one first_seen");
        HVS_CHECK(prev == HVS_MS_NONE || up - prev >= HOUR, "at most hourly: %lld ms apart",
                  (long long)(up - prev));
        prev = up;
        const char *src = vstr(ev, "source"), *last = vstr(ev, "last_success"),
                   *err = vstr(ev, "last_error"), *fails = vstr(ev, "failures");
        HVS_CHECK(src && strcmp(src, "weather") == 0 && last && strcmp(last, "never") == 0 && err &&
                      strstr(err, "http_error") && strstr(err, "503") && fails && atoi(fails) >= 1,
                  "evidence: source %s, last_success %s, last_error %s, failures %s",
                  hvs_test_str(src), hvs_test_str(last), hvs_test_str(err), hvs_test_str(fails));
    }
    json_decref(alerts);
    HVS_CHECK(count_weather("o1_ok") > 0, "the healthy one is published meanwhile");

    /* recovery */
    wx_server_set(srv, bs[1].lat, WX_SCN_GOOD);
    deadline = hvs_test_now_ms() + 20000;
    while ((count_weather("o2_down") == 0 || !log_has(wxlog, "weather recovered", "o2_down")) &&
           hvs_test_now_ms() < deadline)
        usleep(300000);
    HVS_CHECK(count_weather("o2_down") > 0, "published after recovery");
    HVS_CHECK(log_has(wxlog, "weather recovered", "o2_down"), "recovery logged");
    alerts = hvs_test_tail_json(env, "alerts", NULL);
    size_t after = alerts ? records_of(alerts, "o2_down", mine, 64) : 0;
    json_decref(alerts);
    sleep(3); /* three clock hours: an outage still open would have alerted again */
    alerts = hvs_test_tail_json(env, "alerts", NULL);
    HVS_CHECK(alerts && records_of(alerts, "o2_down", mine, 64) == after,
              "no alerts after recovery");
    json_decref(alerts);
    HVS_CHECK(metric(wport, "hvs_weather_locations_in_outage") == 0, "outage gauge back to 0");

    /* topology changes while it runs: a new building is polled at once, a moved one at its new
     * place, a deleted one no more */
    bdef_t nb[1] = {{"o3_new", 47.0300, 8.4, false}};
    wx_server_set(srv, 47.03, WX_SCN_GOOD); /* registered: the server logs their requests */
    wx_server_set(srv, 47.04, WX_SCN_GOOD);
    produce_buildings(broker.addr, nb, 1);
    deadline = hvs_test_now_ms() + 20000;
    while (count_weather("o3_new") == 0 && hvs_test_now_ms() < deadline)
        usleep(200000);
    HVS_CHECK(count_weather("o3_new") > 0, "a new building is published");
    HVS_CHECK(wait_metric(wport, "hvs_weather_locations", 3, 10000) == 3, "3 locations");
    bdef_t mv[2] = {{"o3_new", 47.0400, 8.4, false}, {"o1_ok", 47.0100, 8.4, true}};
    produce_buildings(broker.addr, mv, 2);
    deadline = hvs_test_now_ms() + 20000;
    wx_server_log_t moved;
    while (wx_server_log(srv, 47.04, &moved) == 0 && hvs_test_now_ms() < deadline)
        usleep(100000);
    HVS_CHECK(moved.requests > 0, "the moved building is asked at its new place");
    deadline = hvs_test_now_ms() + 10000;
    while (metric(wport, "hvs_weather_locations") != 2 && hvs_test_now_ms() < deadline)
        usleep(100000);
    HVS_CHECK(metric(wport, "hvs_weather_locations") == 2, "the deleted one is gone");
    usleep(1500000); /* a poll in flight for it may still end */
    wx_server_log_t gone1, gone2, old1, old2;
    wx_server_log(srv, bs[0].lat, &gone1);
    wx_server_log(srv, 47.03, &old1);
    sleep(3);
    wx_server_log(srv, bs[0].lat, &gone2);
    wx_server_log(srv, 47.03, &old2);
    HVS_CHECK(gone2.requests == gone1.requests, "the deleted building is not polled: %d -> %d",
              gone1.requests, gone2.requests);
    HVS_CHECK(old2.requests == old1.requests, "nor the moved one's old place: %d -> %d",
              old1.requests, old2.requests);
    json_t *w3 = hvs_test_tail_json(env, "weather.hourly", NULL);
    json_t *r3[400];
    size_t n3 = w3 ? records_of(w3, "o3_new", r3, 400) : 0, at_new = 0;
    for (size_t i = 0; i < n3; i++)
        at_new += fabs(json_number_value(
                           json_object_get(json_object_get(r3[i], "value"), "latitude")) -
                       47.04) < 1e-9;
    HVS_CHECK(at_new > 0, "records at the new place: %zu of %zu", at_new, n3);
    json_decref(w3);
    HVS_CHECK_EQ_INT(stop_status(&wx, 20000), 0);
    wx_server_stop(srv);
    hvs_test_proc_stop(&broker);
    if (hvs_test_failed == 0)
        unlink(wxlog);
}

/* Each scenario has its own services (started and stopped inside it). */
static const hvs_test_case_t test_cases[] = {
    {"simulator", scenario_simulator},
    {"answers", scenario_answers},
    {"outage", scenario_outage},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(test_cases, argc, argv);
}
