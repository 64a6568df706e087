/*
 * test_wx_backfill_it - `hvs-weather --backfill FROM..TO` as a process against a real
 * hvs-devbroker and a loopback archive server in this process (GET /v1/archive, the
 * Open-Meteo historical API's shape), its records read back with `hvsctl tail`.
 *
 * 1. 70 days (2024-01-01..2024-03-10) for two buildings in 31-day chunks: each building's
 *    requests are exactly 01-01..01-31, 02-01..03-02, 03-03..03-10; one chunk answers 503 once
 *    and is asked again; every served hour with a value comes back once, OBSERVED, issued at the
 *    hour's end, provider open-meteo-archive, with the served values (a null stays null, an
 *    all-null hour is not published), in the building's partition; exit 0. Re-running the last
 *    10 days republishes byte-identical records under the same keys.
 * 2. Permanent failures exit non-zero with a message naming what failed: an archive that answers
 *    503 to every attempt, a 404, a malformed range.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/http.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"
#include "wx_server.h"

#define HOUR (3600 * 1000LL)
#define DAY (24 * HOUR)
#define NV 5
#define HOURLY "temperature_2m,relative_humidity_2m,cloud_cover,shortwave_radiation,wind_speed_10m"

static const char *const fields[NV] = {"temperature_c", "relative_humidity_pct", "cloud_cover_pct",
                                       "shortwave_radiation_wm2", "wind_speed_ms"};
static const char *const names[NV] = {"temperature_2m", "relative_humidity_2m", "cloud_cover",
                                      "shortwave_radiation", "wind_speed_10m"};

/* ---- the archive server ----------------------------------------------------------------- */

#define MAX_REQ 64
typedef struct req {
    double lat;
    char start[16], end[16];
    int status;
} req_t;

static struct {
    pthread_mutex_t lock;
    req_t req[MAX_REQ];
    int nreq;
    int fail_status;  /* every answer this status (0 = serve) */
    double flaky_lat; /* the first request of this location starting at flaky_start: 503 */
    char flaky_start[16];
    bool flaky_done;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The served value of variable v at hour index i (hours since the epoch) for latitude lat;
 * NAN = null. One value in 97 is null; every 500th hour is null throughout. */
static double served(int v, int64_t i, double lat) {
    if (i % 500 == 0 || (v == 0 && i % 97 == 0))
        return NAN;
    int64_t la = (int64_t)llround(lat * 100);
    switch (v) {
    case 0: return -15 + (double)((i * 7 + la) % 400) / 10;
    case 1: return (double)((i * 3 + la) % 100);
    case 2: return (double)((i * 11) % 101);
    case 3: return i % 24 >= 8 && i % 24 <= 16 ? (double)((i * 13 + la) % 800) + 0.5 : 0;
    default: return (double)((i + la) % 40) / 4;
    }
}

static int text(hvs_http_response_t *resp, int status, const char *t) {
    resp->status = status;
    resp->body = strdup(t);
    resp->body_len = strlen(t);
    return resp->body ? 0 : -1;
}

static hvs_ms_t day_of(const char *s) {
    int y, m, d;
    if (sscanf(s, "%d-%d-%d", &y, &m, &d) != 3)
        return HVS_MS_NONE;
    return (hvs_ms_t)hvs_time_days_from_civil(y, m, d) * DAY;
}

static int handle(void *opaque, const char *method, const char *path, const char *query,
                  const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)opaque, (void)method, (void)body, (void)body_len;
    if (strcmp(path, "/v1/archive") != 0)
        return text(resp, 404, "{\"error\":true,\"reason\":\"Not found\"}");
    char a[64], o[64], s[16], e[16], hourly[256];
    if (!wx_query_get(query, "latitude", a, sizeof a) ||
        !wx_query_get(query, "longitude", o, sizeof o) ||
        !wx_query_get(query, "start_date", s, sizeof s) ||
        !wx_query_get(query, "end_date", e, sizeof e) ||
        !wx_query_get(query, "hourly", hourly, sizeof hourly) || strcmp(hourly, HOURLY) != 0)
        return text(resp, 400, "{\"error\":true,\"reason\":\"bad request\"}");
    double lat = atof(a);
    int status = 200;
    pthread_mutex_lock(&srv.lock);
    if (srv.fail_status)
        status = srv.fail_status;
    else if (fabs(lat - srv.flaky_lat) < 1e-6 && strcmp(s, srv.flaky_start) == 0 &&
             !srv.flaky_done) {
        srv.flaky_done = true;
        status = 503;
    }
    if (srv.nreq < MAX_REQ) {
        req_t *r = &srv.req[srv.nreq++];
        r->lat = lat;
        snprintf(r->start, sizeof r->start, "%s", s);
        snprintf(r->end, sizeof r->end, "%s", e);
        r->status = status;
    }
    pthread_mutex_unlock(&srv.lock);
    if (status != 200)
        return text(resp, status, "{\"error\":true,\"reason\":\"unavailable\"}");
    hvs_ms_t from = day_of(s), to = day_of(e) + DAY;
    json_t *root = json_object(), *h = json_object(), *t = json_array(), *vals[NV];
    json_object_set_new(root, "latitude", json_real(lat));
    json_object_set_new(root, "longitude", json_real(atof(o)));
    json_object_set_new(root, "utc_offset_seconds", json_integer(0));
    json_object_set_new(root, "timezone", json_string("GMT"));
    for (int v = 0; v < NV; v++)
        vals[v] = json_array();
    for (hvs_ms_t x = from; x < to; x += HOUR) {
        char iso[40];
        hvs_time_format_iso8601(x, iso, sizeof iso);
        iso[16] = 0; /* YYYY-MM-DDTHH:MM, as Open-Meteo writes it */
        json_array_append_new(t, json_string(iso));
        for (int v = 0; v < NV; v++) {
            double d = served(v, x / HOUR, lat);
            json_array_append_new(vals[v], isnan(d) ? json_null() : json_real(d));
        }
    }
    json_object_set_new(h, "time", t);
    for (int v = 0; v < NV; v++)
        json_object_set_new(h, names[v], vals[v]);
    json_object_set_new(root, "hourly", h);
    resp->status = 200;
    resp->body = json_dumps(root, JSON_COMPACT);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    json_decref(root);
    return resp->body ? 0 : -1;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static char env[512];

typedef struct bdef {
    const char *id;
    double lat, lon;
} bdef_t;

static const bdef_t bs[2] = {{"bf-a", 47.37, 8.54}, {"bf-b", 46.95, 7.45}};

static void produce_buildings(const char *brokers) {
    hvs_serde_t *serde;
    hvs_encoder_t *enc;
    hvs_producer_t *prod;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0, "serde");
    HVS_REQUIRE(hvs_producer_new(&kc, &prod, &err) == 0, "producer: %s", err.msg);
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0, "enc");
    for (size_t i = 0; i < 2; i++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"old_poorly_insulated\","
                 "\"commissioning_date\":1577836800000,\"latitude\":%.4f,\"longitude\":%.4f,"
                 "\"heated_area_m2\":null,\"construction_year\":null,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 bs[i].id, bs[i].lat, bs[i].lon);
        avro_value_t *v = hvs_encoder_value(enc);
        HVS_REQUIRE(hvs_serde_value_from_json(serde, v, json, strlen(json), &err) == 0, "json: %s",
                    err.msg);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode: %s", err.msg);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, bs[i].id,
                                      strlen(bs[i].id), buf, len, &err) == 0,
                    "send: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
}

/* Run a backfill to its end: the exit status; the log in `log`. */
static int backfill(int port, const char *range, const char *extra, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_HTTP_PORT=-1 %s --backfill %s --archive-url http://127.0.0.1:%d "
             "--hourly " HOURLY " --backfill-chunk-days 31 --retries 2 --backoff 50ms "
             "--timeout 5s %s >>%s 2>&1",
             env, HVS_TEST_WEATHER, range, port, extra ? extra : "", log);
    return hvs_test_run(cmd, NULL, 0, NULL, NULL);
}

static bool log_has(const char *path, const char *a, const char *b) {
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, a) && (!b || strstr(line, b));
    if (f)
        fclose(f);
    return found;
}

static hvs_ms_t ival(const json_t *v, const char *k) {
    return (hvs_ms_t)json_integer_value(json_object_get(v, k));
}

/* The double of an Avro union as hvsctl prints it ({"double": x} or a bare number), NAN for null. */
static double dval(const json_t *v, const char *k) {
    json_t *x = json_object_get(v, k);
    if (json_is_object(x))
        x = json_object_get(x, "double");
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *sval(const json_t *v, const char *k) {
    json_t *x = json_object_get(v, k);
    if (json_is_object(x))
        x = json_object_get(x, "string");
    return json_string_value(x);
}

/* ---- 1. a 70-day backfill ------------------------------------------------------------------ */

static void scenario_backfill(void) {
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr);
    produce_buildings(broker.addr);
    hvs_http_t *http;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_http_start(0, 0, NULL, NULL, NULL, &http, &err) == 0 &&
                    hvs_http_route(http, "/v1/", handle, NULL, &err) == 0,
                "archive server: %s", err.msg);
    int port = hvs_http_port(http);
    char log[256];
    snprintf(log, sizeof log, "/tmp/hvs-test-wx-backfill-%d.log", (int)getpid());
    unlink(log);

    srv.flaky_lat = bs[1].lat;
    snprintf(srv.flaky_start, sizeof srv.flaky_start, "2024-02-01");
    HVS_CHECK_EQ_INT(backfill(port, "2024-01-01..2024-03-10", NULL, log), 0);

    /* the requests: per building the three chunks, in order; b's second twice (503, then 200) */
    static const char *const chunks[3][2] = {
        {"2024-01-01", "2024-01-31"}, {"2024-02-01", "2024-03-02"}, {"2024-03-03", "2024-03-10"}};
    HVS_CHECK_EQ_INT(srv.nreq, 7);
    for (int b = 0; b < 2; b++) {
        int k = 0;
        for (int i = 0; i < srv.nreq; i++) {
            req_t *r = &srv.req[i];
            if (fabs(r->lat - bs[b].lat) > 1e-6)
                continue;
            if (b == 1 && k == 1 && r->status == 503) {
                HVS_CHECK(strcmp(r->start, "2024-02-01") == 0, "the 503 is the flaky chunk");
                continue; /* its retry follows */
            }
            HVS_CHECK(k < 3 && strcmp(r->start, chunks[k][0]) == 0 &&
                          strcmp(r->end, chunks[k][1]) == 0 && r->status == 200,
                      "%s request %d: %s..%s (%d)", bs[b].id, k, r->start, r->end, r->status);
            k++;
        }
        HVS_CHECK_EQ_INT(k, 3);
    }

    /* the records, hour by hour, against the served values */
    json_t *msgs = hvs_test_tail_json(env, "weather.hourly", NULL);
    HVS_REQUIRE(msgs, "weather.hourly");
    hvs_ms_t from = (hvs_ms_t)hvs_time_days_from_civil(2024, 1, 1) * DAY;
    hvs_ms_t to = (hvs_ms_t)hvs_time_days_from_civil(2024, 3, 11) * DAY;
    size_t nhours = (size_t)((to - from) / HOUR), expect_total = 0;
    for (int b = 0; b < 2; b++) {
        unsigned char *seen = calloc(nhours, 1);
        int32_t part = -1;
        size_t n = 0, bad = 0, expected = 0;
        for (size_t k = 0; k < nhours; k++) {
            int64_t i = (from / HOUR) + (int64_t)k;
            bool any = false;
            for (int v = 0; v < NV; v++)
                any |= !isnan(served(v, i, bs[b].lat));
            expected += any;
        }
        size_t idx;
        json_t *m;
        json_array_foreach(msgs, idx, m) {
            json_t *v = json_object_get(m, "value");
            if (!sval(v, "building_id") || strcmp(sval(v, "building_id"), bs[b].id) != 0)
                continue;
            n++;
            HVS_CHECK(strcmp(json_string_value(json_object_get(m, "key")), bs[b].id) == 0, "key");
            int32_t p = (int32_t)json_integer_value(json_object_get(m, "partition"));
            HVS_CHECK(part < 0 || p == part, "one partition per building");
            part = p;
            hvs_ms_t h = ival(v, "hour");
            if (h < from || h >= to || h % HOUR) {
                bad++;
                continue;
            }
            size_t k = (size_t)((h - from) / HOUR);
            seen[k]++;
            bool ok = ival(v, "issued_at") == h + HOUR &&
                      strcmp(json_string_value(json_object_get(v, "kind")), "OBSERVED") == 0 &&
                      sval(v, "provider") && strcmp(sval(v, "provider"), "open-meteo-archive") == 0;
            for (int f = 0; f < NV && ok; f++) {
                double want = served(f, h / HOUR, bs[b].lat), got = dval(v, fields[f]);
                ok = isnan(want) ? isnan(got) : fabs(got - want) < 1e-9;
            }
            if (!ok && bad < 3)
                HVS_CHECK(false, "%s hour %lld: %s", bs[b].id, (long long)h,
                          json_dumps(v, JSON_COMPACT));
            bad += !ok;
        }
        size_t dup = 0;
        for (size_t k = 0; k < nhours; k++)
            dup += seen[k] > 1;
        HVS_CHECK(n == expected && bad == 0 && dup == 0,
                  "%s: %zu records (expected %zu of %zu hours), %zu wrong, %zu repeated", bs[b].id,
                  n, expected, nhours, bad, dup);
        expect_total += expected;
        free(seen);
    }
    HVS_CHECK_EQ_INT(json_array_size(msgs), expect_total);
    HVS_CHECK(log_has(log, "backfill 2024-01-01..2024-03-10 done", NULL), "done logged");

    /* re-running the last 10 days republishes the same records under the same keys */
    srv.nreq = 0;
    HVS_CHECK_EQ_INT(backfill(port, "2024-03-01..2024-03-10", NULL, log), 0);
    HVS_CHECK_EQ_INT(srv.nreq, 2);
    json_t *again = hvs_test_tail_json(env, "weather.hourly", NULL);
    HVS_REQUIRE(again, "weather.hourly again");
    size_t first = json_array_size(msgs), same = 0, extra = 0;
    hvs_ms_t cut = (hvs_ms_t)hvs_time_days_from_civil(2024, 3, 1) * DAY;
    /* the first run's last offset per partition, and its records of the re-run's days */
    json_int_t last[4] = {-1, -1, -1, -1};
    json_t *m, *earlier = json_array();
    size_t idx;
    json_array_foreach(msgs, idx, m) {
        json_int_t p = json_integer_value(json_object_get(m, "partition")),
                   o = json_integer_value(json_object_get(m, "offset"));
        if (p >= 0 && p < 4 && o > last[p])
            last[p] = o;
        if (ival(json_object_get(m, "value"), "hour") >= cut)
            json_array_append(earlier, m);
    }
    json_array_foreach(again, idx, m) {
        json_int_t p = json_integer_value(json_object_get(m, "partition")),
                   o = json_integer_value(json_object_get(m, "offset"));
        if (p < 0 || p >= 4 || o <= last[p])
            continue;
        extra++;
        size_t j;
        json_t *e;
        json_array_foreach(earlier, j, e) {
            if (json_equal(json_object_get(e, "value"), json_object_get(m, "value")) &&
                json_equal(json_object_get(e, "key"), json_object_get(m, "key")) &&
                json_equal(json_object_get(e, "partition"), json_object_get(m, "partition"))) {
                same++;
                break;
            }
        }
    }
    HVS_CHECK(extra == json_array_size(earlier), "re-run: %zu new records for %zu earlier ones",
              extra, json_array_size(earlier));
    json_decref(earlier);
    HVS_CHECK(extra > 0 && same == extra && json_array_size(again) == first + extra,
              "re-run: %zu new records, %zu identical to earlier ones", extra, same);
    json_decref(again);
    json_decref(msgs);

    /* 2. permanent failures */
    srv.fail_status = 503;
    srv.nreq = 0;
    int st = backfill(port, "2024-01-01..2024-01-02", NULL, log);
    HVS_CHECK(st != 0, "503 on every attempt: exit %d", st);
    HVS_CHECK(srv.nreq >= 3, "retried before giving up: %d requests", srv.nreq);
    HVS_CHECK(log_has(log, "HTTP 503", "2024-01-01..2024-01-02"), "the failure is logged");
    srv.fail_status = 404;
    st = backfill(port, "2024-01-01..2024-01-02", NULL, log);
    HVS_CHECK(st != 0, "404: exit %d", st);
    HVS_CHECK(log_has(log, "HTTP 404", "after 1 attempt"), "a 404 is not retried");
    st = backfill(port, "2024-01-10..2024-01-02", NULL, log);
    HVS_CHECK(st != 0 && log_has(log, "the first day is after the last", NULL),
              "a reversed range is refused: exit %d", st);
    hvs_http_stop(http);
    hvs_test_proc_stop(&broker);
    if (hvs_test_failed == 0)
        unlink(log);
}

static const hvs_test_case_t test_cases[] = {
    {"backfill", scenario_backfill},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(test_cases, argc, argv);
}
