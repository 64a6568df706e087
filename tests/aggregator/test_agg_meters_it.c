/*
 * test_agg_meters_it - meters of every shape (issue 18): hvs-aggregator as a process against a
 * real redis-server and hvs-devbroker, topology published on `topology`, readings ingested with
 * hvsctl, what comes out read back from aggregates.hourly, alerts and /metrics. One run, four
 * buildings, each with one heat meter read hourly (a building's or a network's meter):
 *   bldg_h  building_heat, nothing else given (2 MW, interval learned): 3 days at 150-400 kW;
 *           the hourly energy read back sums EXACTLY to the counter difference, every hour
 *           COMPLETE, nothing uncounted;
 *   bldg_n  network in MWh (1 GW): counters from 1.2e6 MWh (1.2e9 kWh, past the reading limit
 *           in kWh) at ~300 MW for a day, accepted and conserved exactly (in kWh);
 *   bldg_j  building_heat, max_kw 500, interval_s 3600: one real jump of 5000 kWh in an hour:
 *           that hour PARTIAL with uncounted_kwh 5000, the rest counted exactly,
 *           hvs_aggregator_uncounted_kwh_total counts it, one DATA_QUALITY alert for its day;
 *   bldg_o  a Building v2 record (schema id 16, before `meter`): still decoded (its apartments
 *           are known), so its meter is an apartment meter at HVS_AGG_MAX_HEATING_KW (20 kW):
 *           the hourly building loads are implausible there and every such hour is now PARTIAL
 *           with its energy in uncounted_kwh (counted + uncounted = the counter difference),
 *           not a silent COMPLETE.
 *   bldg_m  apartments of three meter kinds/units, loaded with `hvsctl topology load` from CSV
 *           (meter_* and apartment_meter_* columns; `hvsctl topology show` names each one's
 *           meter): the building's meter is building_heat in GJ hourly (flat_c counts on it),
 *           flat_a has its own apartment_heat meter in kWh sampled every 15 min, flat_b its own
 *           building_heat meter in MWh at hourly sampling (800 kW): each apartment's hourly
 *           energy read back sums to its counter difference in kWh (exactly for kWh and MWh),
 *           every hour COMPLETE, and the building's hours are the sums of its apartments'.
 *   bldg_r  building_heat, max_kw 500, interval_s 3600, read hourly for two days: on day 1 the
 *           jump of hour 3 leaves 600 kWh uncounted (11.5 % of the day); the aggregator is
 *           killed (kill -9, after the cases above) at midday, once the account is in Redis,
 *           and restarted (readings of the afternoon and day 2 ingested then): exactly
 *           one DATA_QUALITY alert for day 1 (an account kept in memory would have judged the
 *           day on its afternoon only, all counted). On day 2 the jump of hour 3 (800 kWh, 15 %)
 *           is revised away by a late reading that splits it into two plausible halves: no alert
 *           for day 2. Both day accounts read back from Redis (hvs:{B}:agg:dq): day 1 alerted
 *           with 4600 kWh counted and 600 uncounted, day 2 not alerted, 5400 counted, 0 uncounted.
 * Expected values are computed here from the counters written, independently of the worker.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "agg_topics.h"
#include "hvs/embedded.h"
#include "hvs/kafka.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */
#define H_HOURS 72
#define N_HOURS 27
#define J_HOURS 27
#define O_HOURS 27
#define M_HOURS 27
/* bldg_r: hours 0-12 in the first run, the rest after the restart. Its partition (6 of 12)
 * is no other building's: bldg_h's 72 hours would make its afternoon too late. */
#define R_HOURS 50
#define R_MIDDAY 12
#define J_JUMP_HOUR 5 /* the reading at T0 + 5 h jumps */
#define JUMP 5000.0

static hvs_test_proc_t redis, broker, agg;
static char env[1024], logpath[256];
static int http_port;
static json_t *hourly, *final, *alerts;
/* counters written, per hour index: value at T0 + i h */
static double ch[H_HOURS + 1], cn[N_HOURS + 1], cj[J_HOURS + 1], co[O_HOURS + 1];
/* bldg_m: flat_a per quarter hour (kWh), flat_b (MWh) and flat_c (GJ) per hour */
static double ma[4 * M_HOURS + 1], mb[M_HOURS + 1], mc[M_HOURS + 1];
static char *show_out;
static double cr[R_HOURS + 1];

static void teardown(void) {
    hvs_test_proc_stop(&agg);
    json_decref(hourly);
    json_decref(final);
    json_decref(alerts);
    free(show_out);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "aggregator log: %s\n", logpath);
}

#define BLD_FMT                                                                                    \
    "{\"building_id\":\"%s\",\"archetype\":\"old_uninsulated\",\"commissioning_date\":0,"          \
    "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":null,\"construction_year\":null,"      \
    "\"insulation\":null,\"holiday_region\":\"CH-ZH\",\"apartments\":[{\"apartment_id\":"          \
    "\"main\",\"area_m2\":null,\"floor\":null,\"rooms\":[],\"occupied_since\":null}%s],"           \
    "\"updated_at\":0,\"deleted\":false,\"team\":null%s}"

/* A Building record from its natural JSON, encoded with the schema of history file `hist`
 * (NULL: the current one) under schema id `id`, onto `topology`. */
static void publish_building(hvs_producer_t *p, hvs_serde_t *s, const char *bid, const char *json,
                             const char *hist, int id) {
    hvs_err_t err = {0};
    if (!hist) {
        hvs_encoder_t *enc = NULL;
        const void *b;
        size_t blen;
        HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0 &&
                        hvs_serde_value_from_json(s, hvs_encoder_value(enc), json, strlen(json),
                                                  &err) == 0 &&
                        hvs_encoder_encode(enc, &b, &blen, &err) == 0 &&
                        hvs_producer_send(p, "topology", RD_KAFKA_PARTITION_UA, bid, strlen(bid), b,
                                          blen, &err) == 0,
                    "building %s: %s", bid, err.msg);
        hvs_encoder_destroy(enc);
        return;
    }
    const struct hvs_embedded_file *f = hvs_embedded_find(hist);
    HVS_REQUIRE(f, "%s compiled in", hist);
    avro_schema_t sc;
    HVS_REQUIRE(avro_schema_from_json_length((const char *)f->data, f->len, &sc) == 0, "parse");
    avro_value_iface_t *iface = avro_generic_class_from_schema(sc);
    avro_value_t val;
    HVS_REQUIRE(avro_generic_value_new(iface, &val) == 0, "value");
    HVS_REQUIRE(hvs_serde_value_from_json(s, &val, json, strlen(json), &err) == 0, "%s: %s", bid,
                err.msg);
    char buf[4096] = {0, 0, 0, 0, (char)id};
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    HVS_REQUIRE(hvs_producer_send(p, "topology", RD_KAFKA_PARTITION_UA, bid, strlen(bid), buf, len,
                                  &err) == 0,
                "send %s: %s", bid, err.msg);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(sc);
}

static void topology(void) {
    hvs_serde_t *s = NULL;
    hvs_producer_t *p = NULL;
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_producer_new(&kc, &p, &err) == 0,
                "setup: %s", err.msg);

    char json[2048];
    snprintf(json, sizeof json, BLD_FMT, "bldg_h", "",
             ",\"meter\":{\"kind\":\"building_heat\",\"unit\":\"kWh\",\"max_kw\":null,"
             "\"interval_s\":null}");
    publish_building(p, s, "bldg_h", json, NULL, 0);
    snprintf(json, sizeof json, BLD_FMT, "bldg_n", "",
             ",\"meter\":{\"kind\":\"network\",\"unit\":\"MWh\",\"max_kw\":null,"
             "\"interval_s\":null}");
    publish_building(p, s, "bldg_n", json, NULL, 0);
    snprintf(json, sizeof json, BLD_FMT, "bldg_j", "",
             ",\"meter\":{\"kind\":\"building_heat\",\"unit\":\"kWh\",\"max_kw\":500.0,"
             "\"interval_s\":3600}");
    publish_building(p, s, "bldg_j", json, NULL, 0);
    /* a second apartment: known_apartments 2 shows the v2 record was read */
    snprintf(json, sizeof json, BLD_FMT, "bldg_o",
             ",{\"apartment_id\":\"spare\",\"area_m2\":null,\"floor\":null,\"rooms\":[],"
             "\"occupied_since\":null}",
             "");
    publish_building(p, s, "bldg_o", json, "history/Building.v2.avsc", 16);
    snprintf(json, sizeof json, BLD_FMT, "bldg_r", "",
             ",\"meter\":{\"kind\":\"building_heat\",\"unit\":\"kWh\",\"max_kw\":500.0,"
             "\"interval_s\":3600}");
    publish_building(p, s, "bldg_r", json, NULL, 0);
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
}

/* One heating counter reading of apartment apt at t. */
static void counter_line(char **text, size_t *len, size_t *cap, const char *bid, const char *apt,
                         hvs_ms_t t, double v) {
    char ts[40], line[400];
    hvs_time_format_iso8601(t, ts, sizeof ts);
    int k = snprintf(line, sizeof line,
                     "{\"timestamp_str\":\"%s\",\"building_id\":\"%s\",\"apartment_id\":"
                     "\"%s\",\"readings\":[{\"sensor_type\":\"heating_energy_kwh\","
                     "\"value\":%.17g}]}\n",
                     ts, bid, apt, v);
    if (*len + (size_t)k + 1 > *cap) {
        *cap = (*cap + (size_t)k + 1) * 2;
        *text = realloc(*text, *cap);
        HVS_REQUIRE(*text, "oom");
    }
    memcpy(*text + *len, line, (size_t)k + 1);
    *len += (size_t)k;
}

/* Reading i (at T0 + i h) of one building's meter ("main") with counter value c[i]. */
static void meter_line(char **text, size_t *len, size_t *cap, const char *bid, const double *c,
                       int n, int i) {
    if (i <= n)
        counter_line(text, len, cap, bid, "main", T0 + i * HOUR, c[i]);
}

/* bldg_m's readings of hour i: flat_a's quarter hours in it, flat_b's and flat_c's hour. */
static void apartment_lines(char **text, size_t *len, size_t *cap, int i) {
    if (i > M_HOURS)
        return;
    counter_line(text, len, cap, "bldg_m", "flat_b", T0 + i * HOUR, mb[i]);
    counter_line(text, len, cap, "bldg_m", "flat_c", T0 + i * HOUR, mc[i]);
    for (int q = 0; q < 4 && 4 * i + q <= 4 * M_HOURS; q++)
        counter_line(text, len, cap, "bldg_m", "flat_a", T0 + i * HOUR + q * 15 * MIN,
                     ma[4 * i + q]);
}

/* bldg_m through `hvsctl topology load` (CSV): the building's meter in GJ, flat_a's and flat_b's
 * own; then what `hvsctl topology show` says of them. */
static void topology_csv(void) {
    static const char csv[] =
        "building_id,archetype,commissioning_date,latitude,longitude,holiday_region,meter_kind,"
        "meter_unit,meter_max_kw,meter_interval_s,apartment_id,apartment_meter_kind,"
        "apartment_meter_unit,apartment_meter_max_kw,apartment_meter_interval_s\n"
        "bldg_m,modern_dense,2020-01-01,47.1,8.2,CH-ZH,building_heat,GJ,2000,3600,flat_a,"
        "apartment_heat,kWh,,\n"
        "bldg_m,modern_dense,2020-01-01,47.1,8.2,CH-ZH,building_heat,GJ,2000,3600,flat_b,"
        "building_heat,MWh,800,3600\n"
        "bldg_m,modern_dense,2020-01-01,47.1,8.2,CH-ZH,building_heat,GJ,2000,3600,flat_c,,,,\n";
    char path[128], cmd[1400];
    snprintf(path, sizeof path, "/tmp/hvs-test-agg-meters-%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f && fputs(csv, f) >= 0 && fclose(f) == 0, "write %s", path);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s topology load %s 2>&1", env, HVS_TEST_HVSCTL, path);
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    unlink(path);
    HVS_REQUIRE(rc == 0, "topology load: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s %s topology show bldg_m 2>&1", env, HVS_TEST_HVSCTL);
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, &show_out, NULL) == 0, "topology show: %s",
                show_out ? show_out : "");
}

/* Loads as whole kWh (and whole MWh): the expected sums are exact in doubles. */
static void counters(void) {
    ch[0] = 5123456;
    for (int i = 1; i <= H_HOURS; i++) /* 150-400 kW, a daily swing */
        ch[i] = ch[i - 1] + 275 + (int)(125 * sin(i * 2 * M_PI / 24));
    cn[0] = 1200000; /* MWh: 1.2e9 kWh */
    for (int i = 1; i <= N_HOURS; i++)
        cn[i] = cn[i - 1] + 300 + (i % 5) * 10 - 20;
    cj[0] = 1000;
    for (int i = 1; i <= J_HOURS; i++)
        cj[i] = cj[i - 1] + 200 + (i == J_JUMP_HOUR ? JUMP : 0);
    co[0] = 40000;
    for (int i = 1; i <= O_HOURS; i++)
        co[i] = co[i - 1] + 150 + (i % 3) * 50;
    ma[0] = 8000; /* 4-12 kW */
    for (int i = 1; i <= 4 * M_HOURS; i++)
        ma[i] = ma[i - 1] + 1 + i % 3;
    mb[0] = 3456.25; /* MWh in quarters: 250-500 kW, exact in binary */
    for (int i = 1; i <= M_HOURS; i++)
        mb[i] = mb[i - 1] + 0.25 + (i % 2) * 0.25;
    mc[0] = 910; /* GJ: 0.5-1.5 GJ an hour, 139-417 kW */
    for (int i = 1; i <= M_HOURS; i++)
        mc[i] = mc[i - 1] + 0.5 + (i % 3) * 0.5;
    cr[0] = 1000;
    for (int i = 1; i <= R_HOURS; i++) /* 200 kWh an hour; jumps ending at 4:00 and 28:00 */
        cr[i] = cr[i - 1] + (i == 4 ? 600 : i == 28 ? 800 : 200);
}

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

static json_t *window(const char *bid, const char *apt, hvs_ms_t ws) {
    char key[200];
    snprintf(key, sizeof key, "%s/%s/%lld/%lld", bid, apt, (long long)HOUR, (long long)ws);
    return json_object_get(final, key);
}

static double num(json_t *v, const char *f) {
    json_t *x = json_object_get(v, f);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *quality(json_t *v) { return json_string_value(json_object_get(v, "quality")); }

/* Every expected hour of every building is out (the last one of each, apartment and building). */
static bool all_out(void) {
    return window("bldg_h", "-", T0 + (H_HOURS - 2) * HOUR) &&
           window("bldg_n", "-", T0 + (N_HOURS - 2) * HOUR) &&
           window("bldg_j", "-", T0 + (J_HOURS - 2) * HOUR) &&
           window("bldg_o", "-", T0 + (O_HOURS - 2) * HOUR) &&
           window("bldg_m", "-", T0 + (M_HOURS - 2) * HOUR) &&
           window("bldg_r", "-", T0 + (R_MIDDAY - 2) * HOUR);
}

static void run(void) {
    if (hourly)
        return;
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-agg-meters-%d.log", (int)getpid());
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_test_cleanup(teardown);
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr,
             redis.addr);
    counters();
    topology();
    topology_csv();
    char *text = NULL;
    size_t len = 0, cap = 0;
    /* in time order, as the meters send (buildings share partitions: one whose readings all
     * came behind another's watermark would wait for the watermark's next move) */
    for (int i = 0; i <= H_HOURS; i++) {
        meter_line(&text, &len, &cap, "bldg_h", ch, H_HOURS, i);
        meter_line(&text, &len, &cap, "bldg_n", cn, N_HOURS, i);
        meter_line(&text, &len, &cap, "bldg_j", cj, J_HOURS, i);
        meter_line(&text, &len, &cap, "bldg_o", co, O_HOURS, i);
        apartment_lines(&text, &len, &cap, i);
        if (i <= R_MIDDAY)
            counter_line(&text, &len, &cap, "bldg_r", "main", T0 + i * HOUR, cr[i]);
    }
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s %s ingest - 2>&1", env, HVS_TEST_HVSCTL);
    char *out = NULL;
    HVS_REQUIRE(hvs_test_run(cmd, text, len, &out, NULL) == 0, "ingest: %s", out ? out : "");
    free(out);
    free(text);
    http_port = hvs_test_free_port();
    snprintf(cmd, sizeof cmd,
             "env %s HVS_HTTP_PORT=%d HVS_KAFKA_GROUP=meters %s --idle-timeout 1h --batch 50", env,
             http_port, HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn aggregator");
    int64_t deadline = hvs_test_now_ms() + 20000;
    for (;;) {
        json_decref(hourly);
        json_decref(final);
        hourly = hvs_test_tail_json(env, "aggregates.hourly", NULL);
        final = json_object();
        if (hourly)
            agg_test_final(final, hourly);
        if (all_out() || hvs_test_now_ms() > deadline)
            break;
        usleep(300000);
    }
    HVS_REQUIRE(
        all_out(),
        "every building's hours published within 20 s (%zu messages; out: h %d n %d j %d o %d "
        "m %d)",
        hourly ? json_array_size(hourly) : 0,
        window("bldg_h", "-", T0 + (H_HOURS - 2) * HOUR) != NULL,
        window("bldg_n", "-", T0 + (N_HOURS - 2) * HOUR) != NULL,
        window("bldg_j", "-", T0 + (J_HOURS - 2) * HOUR) != NULL,
        window("bldg_o", "-", T0 + (O_HOURS - 2) * HOUR) != NULL,
        window("bldg_m", "-", T0 + (M_HOURS - 2) * HOUR) != NULL);
}

/* Sum of the building's hourly heating over [T0, T0 + n h) and per-hour checks. */
static double building_sum(const char *bid, int n, int *complete, double *uncounted) {
    double sum = 0;
    *complete = 0;
    *uncounted = 0;
    for (int i = 0; i < n; i++) {
        json_t *b = window(bid, "-", T0 + i * HOUR);
        HVS_CHECK(b != NULL, "%s hour %d published", bid, i);
        if (!b)
            continue;
        double h = num(b, "heating_kwh"), u = num(b, "uncounted_kwh");
        HVS_CHECK(!isnan(h), "%s hour %d heating known", bid, i);
        sum += isnan(h) ? 0 : h;
        if (!isnan(u))
            *uncounted += u;
        *complete += hvs_test_streq(quality(b), "COMPLETE");
    }
    return sum;
}

/* Hourly building meter at 150-400 kW: conserved exactly, every hour COMPLETE. */
static void test_hourly_building_meter(void) {
    run();
    int complete;
    double unc, sum = building_sum("bldg_h", H_HOURS - 1, &complete, &unc);
    HVS_CHECK(sum == ch[H_HOURS - 1] - ch[0], "bldg_h: %.17g kWh counted, counter difference %.17g",
              sum, ch[H_HOURS - 1] - ch[0]);
    HVS_CHECK_EQ_INT(complete, H_HOURS - 1);
    HVS_CHECK(unc == 0, "bldg_h: %g kWh uncounted", unc);
    /* an hour's energy is that hour's counter difference (learned interval: 1 h) */
    json_t *a = window("bldg_h", "main", T0 + 10 * HOUR);
    HVS_CHECK(num(a, "heating_kwh") == ch[11] - ch[10], "hour 10: %g, expected %g",
              num(a, "heating_kwh"), ch[11] - ch[10]);
}

/* Network meter in MWh past 1e9 kWh at ~300 MW: accepted (nothing dead-lettered), conserved. */
static void test_network_meter_mwh(void) {
    run();
    int complete;
    double unc, sum = building_sum("bldg_n", N_HOURS - 1, &complete, &unc);
    double want = (cn[N_HOURS - 1] - cn[0]) * 1000;
    HVS_CHECK(sum == want, "bldg_n: %.17g kWh counted, expected %.17g", sum, want);
    HVS_CHECK_EQ_INT(complete, N_HOURS - 1);
    HVS_CHECK(unc == 0, "bldg_n: %g kWh uncounted", unc);
    json_t *dlq = hvs_test_tail_json(env, "readings.dlq", NULL);
    HVS_CHECK(dlq && json_array_size(dlq) == 0, "dead letters: %zu",
              dlq ? json_array_size(dlq) : (size_t)-1);
    json_decref(dlq);
}

/* A real jump: PARTIAL with the lost energy, the metric, one DATA_QUALITY alert. */
static void test_implausible_jump(void) {
    run();
    int complete;
    double unc, sum = building_sum("bldg_j", J_HOURS - 1, &complete, &unc);
    /* the whole increase of that hour (200 + 5000 kWh) is above 500 kW x 1 h: refused */
    double lost = JUMP + 200, want = cj[J_HOURS - 1] - cj[0] - lost;
    HVS_CHECK(sum == want, "bldg_j: %.17g kWh counted, expected %.17g", sum, want);
    HVS_CHECK(unc == lost, "bldg_j: %g kWh uncounted, expected %g", unc, lost);
    HVS_CHECK_EQ_INT(complete, J_HOURS - 2);
    /* the reading at T0 + 5 h closes the hour [4 h, 5 h) */
    json_t *a = window("bldg_j", "main", T0 + (J_JUMP_HOUR - 1) * HOUR);
    HVS_CHECK_EQ_STR(quality(a), "PARTIAL");
    HVS_CHECK(num(a, "uncounted_kwh") == JUMP + 200, "apartment hour: uncounted %g",
              num(a, "uncounted_kwh"));
    HVS_CHECK(num(a, "heating_kwh") == 0, "apartment hour: counted %g", num(a, "heating_kwh"));
    /* the metric counts what the apartments' accounts of uncounted energy grew by (bldg_o's
     * too; no revision here lowers one) */
    double o_unc = 0;
    for (int i = 0; i < O_HOURS; i++) {
        double u = num(window("bldg_o", "main", T0 + i * HOUR), "uncounted_kwh");
        o_unc += isnan(u) ? 0 : u;
    }
    double m = metric("hvs_aggregator_uncounted_kwh_total");
    /* and bldg_r's morning jump (hour 3: 600 kWh), before its restart */
    HVS_CHECK(fabs(m - (JUMP + 200 + o_unc + 600)) < 1e-6, "metric %g, expected %g", m,
              JUMP + 200 + o_unc + 600);
    /* one DATA_QUALITY alert for the meter's day, read back from `alerts` */
    alerts = hvs_test_tail_json(env, "alerts", NULL);
    int found = 0;
    size_t i;
    json_t *msg;
    json_array_foreach(alerts, i, msg) {
        json_t *v = json_object_get(msg, "value");
        if (!hvs_test_streq(json_string_value(json_object_get(v, "building_id")), "bldg_j"))
            continue;
        found++;
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "type")), "DATA_QUALITY");
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "apartment_id")), "main");
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "alert_id")),
                         "main#2024-12-02#DATA_QUALITY");
    }
    HVS_CHECK_EQ_INT(found, 1);
}

/* A Building v2 record (no meter): decoded, its meter at the apartment defaults; the hours
 * whose energy the 20 kW capacity refuses are PARTIAL with it uncounted, none lost silently. */
static void test_old_building_record(void) {
    run();
    json_t *b = window("bldg_o", "-", T0 + 3 * HOUR);
    HVS_CHECK_EQ_INT(json_integer_value(json_object_get(b, "known_apartments")), 2);
    double counted = 0, unc = 0;
    int partial = 0;
    for (int i = 0; i < O_HOURS - 1; i++) {
        json_t *a = window("bldg_o", "main", T0 + i * HOUR);
        double h = num(a, "heating_kwh"), u = num(a, "uncounted_kwh");
        counted += isnan(h) ? 0 : h;
        unc += isnan(u) ? 0 : u;
        partial += hvs_test_streq(quality(a), "PARTIAL");
    }
    double diff = co[O_HOURS - 1] - co[0];
    HVS_CHECK(counted + unc == diff, "bldg_o: %g + %g kWh, counter difference %g", counted, unc,
              diff);
    HVS_CHECK(unc == diff, "bldg_o: %g kWh uncounted", unc);
    HVS_CHECK_EQ_INT(partial, O_HOURS - 1);
}

/* Apartments of three meter kinds and units in one building: each conserved per apartment, in
 * kWh, by its own meter (or the building's); the building's hours their sums. */
static void test_apartment_meters(void) {
    run();
    HVS_CHECK(show_out && strstr(show_out, "# meter: building_heat in GJ, capacity 2000 kW, every "
                                           "3600 s"),
              "show: %s", hvs_test_str(show_out));
    HVS_CHECK(show_out && strstr(show_out, "# apartment flat_a: own meter: apartment_heat in kWh, "
                                           "capacity the kind's default, HVS_AGG_SAMPLE_INTERVAL"),
              "show: %s", hvs_test_str(show_out));
    HVS_CHECK(show_out && strstr(show_out, "# apartment flat_b: own meter: building_heat in MWh, "
                                           "capacity 800 kW, every 3600 s"),
              "show: %s", hvs_test_str(show_out));
    HVS_CHECK(show_out && strstr(show_out, "# apartments on the building's meter: 1 of 3"),
              "show: %s", hvs_test_str(show_out));
    static const struct {
        const char *apt;
        const double *c;
        int per_hour;
        double kwh;
    } m[] = {{"flat_a", ma, 4, 1}, {"flat_b", mb, 1, 1000}, {"flat_c", mc, 1, 1e6 / 3600}};
    int n = M_HOURS - 1;
    double apts[M_HOURS] = {0};
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        double sum = 0;
        int complete = 0;
        for (int i = 0; i < n; i++) {
            json_t *a = window("bldg_m", m[k].apt, T0 + i * HOUR);
            double h = num(a, "heating_kwh");
            HVS_CHECK(!isnan(h), "%s hour %d heating known", m[k].apt, i);
            sum += isnan(h) ? 0 : h;
            apts[i] += isnan(h) ? 0 : h;
            complete += hvs_test_streq(quality(a), "COMPLETE");
        }
        double want = (m[k].c[n * m[k].per_hour] - m[k].c[0]) * m[k].kwh;
        if (m[k].kwh == 1e6 / 3600) /* GJ: kWh are not whole, the sum is rounded */
            HVS_CHECK(fabs(sum - want) <= 1e-9 * want, "%s: %.17g kWh counted, expected %.17g",
                      m[k].apt, sum, want);
        else
            HVS_CHECK(sum == want, "%s: %.17g kWh counted, expected %.17g", m[k].apt, sum, want);
        HVS_CHECK(complete == n, "%s: %d of %d hours COMPLETE", m[k].apt, complete, n);
    }
    /* one hour of each: its own counter's difference in kWh (flat_b: MWh x 1000) */
    json_t *b10 = window("bldg_m", "flat_b", T0 + 10 * HOUR);
    HVS_CHECK(num(b10, "heating_kwh") == (mb[11] - mb[10]) * 1000, "flat_b hour 10: %g, want %g",
              num(b10, "heating_kwh"), (mb[11] - mb[10]) * 1000);
    json_t *a10 = window("bldg_m", "flat_a", T0 + 10 * HOUR);
    HVS_CHECK(num(a10, "heating_kwh") == ma[44] - ma[40], "flat_a hour 10: %g, want %g",
              num(a10, "heating_kwh"), ma[44] - ma[40]);
    for (int i = 0; i < n; i++) {
        double b = num(window("bldg_m", "-", T0 + i * HOUR), "heating_kwh");
        HVS_CHECK(fabs(b - apts[i]) <= 1e-9 * apts[i], "bldg_m hour %d: %.17g, apartments %.17g", i,
                  b, apts[i]);
    }
}

/* ---- the day's account across a restart ------------------------------------------------- */


static void ingest_r(const char *text, size_t len) {
    char cmd[1400], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s ingest - 2>&1", env, HVS_TEST_HVSCTL);
    HVS_REQUIRE(hvs_test_run(cmd, text, len, &out, NULL) == 0, "ingest: %s", out ? out : "");
    free(out);
}

/* bldg_r's hourly readings [from, to], and the late one of day 2 when late. */
static void ingest_hours(int from, int to, bool late) {
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (late) /* splits the jump of hour 27 (800 kWh) into two halves of 400 */
        counter_line(&text, &len, &cap, "bldg_r", "main", T0 + 27 * HOUR + 30 * MIN, cr[27] + 400);
    for (int i = from; i <= to; i++)
        counter_line(&text, &len, &cap, "bldg_r", "main", T0 + i * HOUR, cr[i]);
    ingest_r(text, len);
    free(text);
}

/* The restart: a new group, so that the stage starts at once from the offsets stored with the
 * state in Redis, without waiting for the killed member's session to time out. */
static void restart(void) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=meters_restarted %s --idle-timeout 1h --batch 20", env,
             HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, logpath) == 0, "respawn aggregator");
}

/* The stored account of main's day d (0, 1): its hours summed, and hour 3's uncounted energy
 * (NaN when not there); false while there is none. */
typedef struct day_r {
    int alerted, hours;
    double counted, uncounted, unc3;
} day_r_t;

static bool account_r(hvs_redis_t *rc, int d, day_r_t *out) {
    redisReply *rep = NULL;
    hvs_err_t err;
    bool ok = false;
    *out = (day_r_t){.alerted = -1, .unc3 = NAN};
    if (hvs_redis_command(rc, &rep, &err, "HGET hvs:{bldg_r}:agg:dq %lld:main",
                          (long long)(T0 + d * 24 * HOUR)) == 0 &&
        rep && rep->type == REDIS_REPLY_STRING) {
        /* the stored value read as the aggregator reads it back (format 1, account.h; the
         * codec's bytes are checked in test_agg_account): the figures below are independent */
        agg_account_t acc = {0};
        hvs_ms_t day = T0 + d * 24 * HOUR;
        ok = agg_account_parse(&acc, day, rep->str, rep->len, &err) == 0 && acc.n == 1;
        for (int h = 0; ok && h < AGG_DAY_HOURS; h++) {
            if (!(acc.d[0].hours & (1u << h)))
                continue;
            out->counted += acc.d[0].counted[h];
            out->uncounted += acc.d[0].uncounted[h];
            if (h == 3)
                out->unc3 = acc.d[0].uncounted[h];
            out->hours++;
        }
        if (ok)
            out->alerted = acc.d[0].alerted;
        agg_account_fini(&acc);
    }
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* Wait (up to 20 s) until day d's stored account has at least `hours` hours and hour 3's
 * uncounted energy is unc3. */
static day_r_t wait_account_r(hvs_redis_t *rc, int d, int hours, double unc3) {
    day_r_t a;
    int64_t deadline = hvs_test_now_ms() + 20000;
    while (!(account_r(rc, d, &a) && a.hours >= hours && a.unc3 == unc3) &&
           hvs_test_now_ms() < deadline)
        usleep(50000);
    return a;
}

/* Alerts of bldg_r on `alerts`: all of them, and in *day1 those of day 1 (its alert id). */
static int alerts_r(int *day1) {
    json_t *al = hvs_test_tail_json(env, "alerts", NULL), *msg;
    size_t i;
    int n = 0;
    *day1 = 0;
    json_array_foreach(al, i, msg) {
        json_t *v = json_object_get(msg, "value");
        if (!hvs_test_streq(json_string_value(json_object_get(v, "building_id")), "bldg_r"))
            continue;
        n++;
        *day1 += hvs_test_streq(json_string_value(json_object_get(v, "alert_id")),
                                "main#2024-12-02#DATA_QUALITY");
    }
    json_decref(al);
    return n;
}

static void test_uncounted_day_across_restart(void) {
    run(); /* the other buildings' cases read /metrics: this one ends that process */
    hvs_err_t err = {0};
    hvs_redis_t *rc = NULL;
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &rc, &err) == 0, "redis: %s", err.msg);

    /* day 1 until midday (run()); killed once hour 10 is in the stored account */
    day_r_t a = wait_account_r(rc, 0, 11, 600);
    HVS_CHECK(a.hours == 11 && a.unc3 == 600 && a.uncounted == 600 && a.counted == 10 * 200 &&
                  a.alerted == 0,
              "day 1 at midday: %d hours, %g counted, %g uncounted (hour 3: %g), alerted %d",
              a.hours, a.counted, a.uncounted, a.unc3, a.alerted);
    hvs_test_proc_kill(&agg);
    int day1;
    HVS_CHECK_EQ_INT(alerts_r(&day1), 0);

    /* restarted: the afternoon, the next day until its hour 3 is out (uncounted), then the late
     * reading that revises it and the rest of day 2 */
    ingest_hours(R_MIDDAY + 1, 30, false);
    restart();
    a = wait_account_r(rc, 1, 4, 800);
    HVS_CHECK(a.unc3 == 800, "day 2 hour 3 first: uncounted %g", a.unc3);
    ingest_hours(31, R_HOURS, true);
    a = wait_account_r(rc, 1, 24, 0);
    HVS_CHECK(a.hours == 24 && a.counted == 5400 && a.uncounted == 0 && a.alerted == 0,
              "day 2: %d hours, %g counted, %g uncounted (hour 3: %g), alerted %d", a.hours,
              a.counted, a.uncounted, a.unc3, a.alerted);
    HVS_CHECK(account_r(rc, 0, &a), "day 1 stored");
    HVS_CHECK(a.hours == 24 && a.counted == 4600 && a.uncounted == 600 && a.alerted == 1,
              "day 1: %d hours, %g counted, %g uncounted, alerted %d", a.hours, a.counted,
              a.uncounted, a.alerted);
    /* what was published: hour 3 of day 2 revised (the account followed it), and the alerts:
     * day 1's once, day 2's none */
    json_t *msgs = hvs_test_tail_json(env, "aggregates.hourly", NULL), *fin = json_object();
    if (msgs)
        agg_test_final(fin, msgs);
    char key[200];
    snprintf(key, sizeof key, "bldg_r/main/%lld/%lld", (long long)HOUR,
             (long long)(T0 + 27 * HOUR));
    json_t *r27 = json_object_get(fin, key);
    HVS_CHECK(r27 && json_integer_value(json_object_get(r27, "revision")) == 1 &&
                  !(num(r27, "uncounted_kwh") > 0) && num(r27, "heating_kwh") == 800,
              "day 2 hour 3 revised: revision %lld, uncounted %g, heating %g",
              r27 ? (long long)json_integer_value(json_object_get(r27, "revision")) : -1LL,
              num(r27, "uncounted_kwh"), num(r27, "heating_kwh"));
    json_decref(msgs);
    json_decref(fin);
    HVS_CHECK_EQ_INT(alerts_r(&day1), 1);
    HVS_CHECK_EQ_INT(day1, 1);
    hvs_redis_destroy(rc);
}

int main(int argc, char **argv) {
    static const hvs_test_case_t cases[] = {
        {"hourly_building_meter", test_hourly_building_meter},
        {"network_meter_mwh", test_network_meter_mwh},
        {"implausible_jump", test_implausible_jump},
        {"old_building_record", test_old_building_record},
        {"apartment_meters", test_apartment_meters},
        {"uncounted_day_across_restart", test_uncounted_day_across_restart},
        HVS_TEST_CASES_END,
    };
    return hvs_test_main(cases, argc, argv);
}
