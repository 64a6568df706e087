/*
 * test_hvsctl_weather_it - `hvsctl weather import` as a real process against a real
 * hvs-devbroker; what it published is read back with `hvsctl tail` and compared value by value
 * with the table this test wrote into the files.
 *
 * 1. CSV: two buildings in one file, one located by topology (empty latitude/longitude cells),
 *    one by its own coordinates (not in topology); a quoted cell, an empty value cell (null).
 * 2. JSON lines: --building and --lat/--lon, times with a +01:00 offset, null values.
 *    Both: every hour once, OBSERVED, issued at the hour's end, provider "import", keyed by
 *    building, "imported N hours for M locations".
 * 3. A file with one bad line (and one with a duplicate hour, and a building nobody knows):
 *    exit 1, the line named, nothing published.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define HOUR (3600 * 1000LL)
#define NV 5
static const char *const fields[NV] = {"temperature_c", "relative_humidity_pct", "cloud_cover_pct",
                                       "shortwave_radiation_wm2", "wind_speed_ms"};

static char env[512];

/* What the files hold: per record the building, its coordinates, hour and values (NAN = null). */
typedef struct exp_rec {
    char building[32];
    double lat, lon;
    hvs_ms_t hour;
    double v[NV];
    int seen;
} exp_rec_t;
static exp_rec_t want[256];
static size_t nwant;

static void produce_building(const char *brokers, const char *id, double lat, double lon) {
    hvs_serde_t *serde;
    hvs_encoder_t *enc;
    hvs_producer_t *prod;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0, "serde");
    HVS_REQUIRE(hvs_producer_new(&kc, &prod, &err) == 0, "producer: %s", err.msg);
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0, "enc");
    char json[1024];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"archetype\":\"old_poorly_insulated\","
             "\"commissioning_date\":1577836800000,\"latitude\":%.4f,\"longitude\":%.4f,"
             "\"heated_area_m2\":null,\"construction_year\":null,\"insulation\":null,"
             "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1700000000000,"
             "\"deleted\":false}",
             id, lat, lon);
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0,
        "json: %s", err.msg);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode: %s", err.msg);
    HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, id, strlen(id), buf, len,
                                  &err) == 0,
                "send: %s", err.msg);
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
}

static exp_rec_t *expect(const char *b, double lat, double lon, hvs_ms_t hour) {
    HVS_REQUIRE(nwant < 256, "room");
    exp_rec_t *e = &want[nwant++];
    snprintf(e->building, sizeof e->building, "%s", b);
    e->lat = lat, e->lon = lon, e->hour = hour;
    for (int v = 0; v < NV; v++)
        e->v[v] = NAN;
    return e;
}

/* hvsctl weather import ARGS: exit status, stdout+stderr into *out. */
static int import(const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s weather import %s 2>&1", env, HVS_TEST_HVSCTL, args);
    *out = NULL;
    return hvs_test_run(cmd, NULL, 0, out, NULL);
}

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

static size_t topic_size(void) {
    json_t *m = hvs_test_tail_json(env, "weather.hourly", NULL);
    size_t n = m ? json_array_size(m) : 0;
    json_decref(m);
    return n;
}

static void scenario_import(void) {
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
    produce_building(broker.addr, "wi-a", 47.3769, 8.5417);
    char dir[128], csv[256], jsonl[256], badf[256], args[512], *out;
    snprintf(dir, sizeof dir, "/tmp/hvs-test-wximport-%d", (int)getpid());
    snprintf(csv, sizeof csv, "%s.csv", dir);
    snprintf(jsonl, sizeof jsonl, "%s.jsonl", dir);
    snprintf(badf, sizeof badf, "%s-bad.csv", dir);
    hvs_ms_t t0 = (hvs_ms_t)hvs_time_days_from_civil(2023, 11, 20) * 24 * HOUR;

    /* 1. CSV: wi-a (topology's place) and wi-x (its own), 30 hours each */
    FILE *f = fopen(csv, "w");
    HVS_REQUIRE(f, "csv");
    fprintf(f, "time,building_id,latitude,longitude,temperature_c,radiation_w_m2,"
               "relative_humidity_pct\n");
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < 30; k++) {
            hvs_ms_t h = t0 + k * HOUR;
            char iso[40];
            hvs_time_format_iso8601(h, iso, sizeof iso);
            exp_rec_t *e = b == 0 ? expect("wi-a", 47.3769, 8.5417, h)
                                  : expect("wi-x", 45.5, 9.25, h);
            e->v[0] = -3.5 + k * 0.25 + b;
            e->v[3] = k % 24 >= 8 && k % 24 <= 15 ? 100.0 + 12.5 * k : 0;
            e->v[1] = k == 7 ? NAN : 60 + k;
            char rh[32] = "";
            if (!isnan(e->v[1]))
                snprintf(rh, sizeof rh, "%g", e->v[1]);
            if (b == 0) /* Open-Meteo's form, coordinates from topology, a quoted cell */
                fprintf(f, "%.16s,\"wi-a\",,,%g,%g,%s\n", iso, e->v[0], e->v[3], rh);
            else
                fprintf(f, "%s,wi-x,45.5,9.25,%g,%g,%s\n", iso, e->v[0], e->v[3], rh);
        }
    }
    fclose(f);
    snprintf(args, sizeof args, "%s", csv);
    int st = import(args, &out);
    HVS_CHECK(st == 0 && out && strstr(out, "imported 60 hours for 2 locations"), "csv: %d %s", st,
              hvs_test_str(out));
    free(out);

    /* 2. JSON lines for wi-c by flags, local times at +01:00 */
    for (int k = 0; k < 24; k++) {
        exp_rec_t *e = expect("wi-c", 46.2, 6.15, t0 + (48 + k) * HOUR);
        e->v[0] = 1.75 - k * 0.5;
        e->v[2] = (k * 7) % 101;
        e->v[4] = k == 3 ? NAN : 0.5 * k;
    }
    f = fopen(jsonl, "w");
    HVS_REQUIRE(f, "jsonl");
    for (size_t i = nwant - 24; i < nwant; i++) {
        exp_rec_t *e = &want[i];
        hvs_ms_t local = e->hour + HOUR;
        int64_t y;
        int mo, d;
        hvs_time_civil_from_days(local / (24 * HOUR), &y, &mo, &d);
        char wind[32] = "null";
        if (!isnan(e->v[4]))
            snprintf(wind, sizeof wind, "%g", e->v[4]);
        fprintf(f,
                "{\"time\": \"%04d-%02d-%02dT%02d:00:00+01:00\", \"temperature_c\": %g, "
                "\"cloud_cover_pct\": %g, \"wind_speed_ms\": %s}\n",
                (int)y, mo, d, (int)((local / HOUR) % 24), e->v[0], e->v[2], wind);
    }
    fclose(f);
    snprintf(args, sizeof args, "%s --building wi-c --lat 46.2 --lon 6.15", jsonl);
    st = import(args, &out);
    HVS_CHECK(st == 0 && out && strstr(out, "imported 24 hours for 1 locations"), "jsonl: %d %s",
              st, hvs_test_str(out));
    free(out);

    /* read back, value by value */
    json_t *msgs = hvs_test_tail_json(env, "weather.hourly", NULL);
    HVS_REQUIRE(msgs, "weather.hourly");
    HVS_CHECK_EQ_INT(json_array_size(msgs), nwant);
    size_t i, wrong = 0;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        const char *b = sval(v, "building_id");
        hvs_ms_t h = (hvs_ms_t)json_integer_value(json_object_get(v, "hour"));
        exp_rec_t *e = NULL;
        for (size_t k = 0; k < nwant && !e; k++)
            if (b && strcmp(want[k].building, b) == 0 && want[k].hour == h)
                e = &want[k];
        bool ok = e && strcmp(json_string_value(json_object_get(m, "key")), b) == 0 &&
                  json_integer_value(json_object_get(v, "issued_at")) == h + HOUR &&
                  strcmp(json_string_value(json_object_get(v, "kind")), "OBSERVED") == 0 &&
                  sval(v, "provider") && strcmp(sval(v, "provider"), "import") == 0 &&
                  fabs(dval(v, "latitude") - e->lat) < 1e-9 &&
                  fabs(dval(v, "longitude") - e->lon) < 1e-9;
        for (int f2 = 0; f2 < NV && ok; f2++) {
            double got = dval(v, fields[f2]);
            ok = isnan(e->v[f2]) ? isnan(got) : fabs(got - e->v[f2]) < 1e-9;
        }
        if (ok)
            e->seen++;
        else if (wrong++ < 3)
            HVS_CHECK(false, "unexpected record %s", json_dumps(v, JSON_COMPACT));
    }
    size_t once = 0;
    for (size_t k = 0; k < nwant; k++)
        once += want[k].seen == 1;
    HVS_CHECK(wrong == 0 && once == nwant, "%zu of %zu hours once, %zu wrong", once, nwant, wrong);
    json_decref(msgs);

    /* 3. a bad line (temperature out of range at line 4): nothing published */
    size_t before = topic_size();
    f = fopen(badf, "w");
    fprintf(f, "time,temperature_c\n2023-12-01T00:00Z,1\n2023-12-01T01:00Z,2\n"
               "2023-12-01T02:00Z,75\n2023-12-01T03:00Z,3\n");
    fclose(f);
    snprintf(args, sizeof args, "%s --building wi-a", badf);
    st = import(args, &out);
    char where[512];
    snprintf(where, sizeof where, "%s:4: temperature_c 75 out of range", badf);
    HVS_CHECK(st == 1 && out && strstr(out, where) && strstr(out, "nothing imported"),
              "bad line: %d %s", st, hvs_test_str(out));
    free(out);
    /* a duplicate hour, and a building neither in topology nor located */
    f = fopen(badf, "w");
    fprintf(f, "time,building_id,temperature_c\n2023-12-01T00:00Z,wi-a,1\n"
               "2023-12-01T01:00Z,wi-a,2\n2023-12-01T00:00:00+00:00,wi-a,3\n"
               "2023-12-01T00:00Z,nowhere,3\n");
    fclose(f);
    st = import(badf, &out);
    snprintf(where, sizeof where, "%s:4: the hour of building wi-a is already on line 2", badf);
    HVS_CHECK(st == 1 && out && strstr(out, where), "duplicate: %d %s", st, hvs_test_str(out));
    free(out);
    f = fopen(badf, "w");
    fprintf(f, "time,building_id,temperature_c\n2023-12-01T00:00Z,wi-a,1\n"
               "2023-12-01T00:00Z,nowhere,3\n");
    fclose(f);
    st = import(badf, &out);
    snprintf(where, sizeof where, "%s:3: building nowhere is not in topology", badf);
    HVS_CHECK(st == 1 && out && strstr(out, where), "unknown building: %d %s", st,
              hvs_test_str(out));
    free(out);
    HVS_CHECK_EQ_INT(topic_size(), before);
    unlink(csv);
    unlink(jsonl);
    unlink(badf);
    hvs_test_proc_stop(&broker);
}

static const hvs_test_case_t test_cases[] = {
    {"import", scenario_import},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(test_cases, argc, argv);
}
