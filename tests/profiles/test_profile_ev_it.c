/*
 * test_profile_ev_it - the EV-charging profile end to end (issue 18, seed 002): the sample
 * generator's site data (data/samples/ev_charging/gen_ev_sample.py: 2 sites x 12 chargers x 35
 * days of hourly counter readings, the chargers' kWh per hour summed by the generator itself) go
 * through hvsctl ingest (the profile's sensor table: charger_energy_kwh) into hvs-aggregator and
 * hvs-features, then hvs-trainer trains forecast models for the sites (no heated area: kwh
 * scale) and hvs-forecaster serves them; every process runs with HVS_PROFILE=ev_charging,
 * against a real redis-server and hvs-devbroker.
 * Checked against values worked out outside the workers:
 *   - every site hour on aggregates.hourly (the building series, final revision) carries the
 *     kWh the generator summed from its sessions (to 1e-6 kWh), all 35 x 24 of them;
 *   - features.hourly's vectors of a site carry use_lag_24 = that site's kWh 24 h before;
 *   - the forecast models on `models` are ev_charging's (params.profile, target_scale kwh), and
 *     their columns hold no heating-physics feature (degree hours, temperature interactions,
 *     comfort, rooms) but keep temperature and the consumption lags;
 *   - forecasts.baseline holds model forecasts (not rules) for both sites, with points >= 0 and
 *     below the site's charging capacity, and the last issue's next 24 h sum inside the range of
 *     the sample's daily sums.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define SITES 2
#define CHARGERS 12
#define DAYS 35
#define T0 1736121600000LL /* 2025-01-06, the generator's default start */
#define NH (DAYS * 24)

static hvs_test_proc_t redis, broker, agg, fx, tr, fc;
static hvs_serde_t *serde;
static char env[1024], dir[] = "/tmp/test_profile_ev_XXXXXX", logpath[300];
static double want[SITES][NH]; /* the generator's kWh per site hour */
static double got[SITES][NH];  /* aggregates.hourly's, final revision */
static int64_t got_rev[SITES][NH];

static void teardown(void) {
    hvs_test_proc_stop(&fc);
    hvs_test_proc_stop(&tr);
    hvs_test_proc_stop(&fx);
    hvs_test_proc_stop(&agg);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_serde_destroy(serde);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (getenv("PROFILE_EV_KEEP")) /* debugging: keep the data and the workers' log */
        fprintf(stderr, "kept %s\n", dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int site_of(const char *b) {
    return b && strncmp(b, "site_ev_0", 9) == 0 && b[9] >= '1' && b[9] < '1' + SITES ? b[9] - '1'
                                                                                     : -1;
}

static void run_ok(const char *cmd) {
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_REQUIRE(rc == 0, "%s: exit %d: %s", cmd, rc, out ? out : "");
    free(out);
}

static void setup(void) {
    HVS_REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(logpath, sizeof logpath, "%s/workers.log", dir);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, "--partitions 2") == 0,
                "services");
    hvs_test_cleanup(teardown);
    snprintf(
        env, sizeof env,
        "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
        "HVS_TOPIC_PARTITIONS=2 HVS_HTTP_PORT=-1 HVS_PROFILE=ev_charging OMP_WAIT_POLICY=PASSIVE",
        broker.addr, redis.addr);
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, NULL) == 0, "serde");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s %s/data/samples/ev_charging/gen_ev_sample.py --sites %d --chargers %d --days %d "
             "--readings %s/r.jsonl --topology %s/t.jsonl --hourly %s/h.csv --weather %s/w.csv",
             HVS_TEST_PYTHON3, HVS_TEST_SOURCE_DIR, SITES, CHARGERS, DAYS, dir, dir, dir, dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, "%s/h.csv", dir);
    FILE *f = fopen(cmd, "r");
    HVS_REQUIRE(f, "open %s", cmd);
    char site[64];
    long long t;
    double kwh;
    int n = 0;
    while (fscanf(f, "%63[^,],%lld,%lf\n", site, &t, &kwh) == 3) {
        int s = site_of(site);
        long long h = (t - T0) / HOUR;
        HVS_REQUIRE(s >= 0 && h >= 0 && h < NH, "hourly line %s %lld", site, t);
        want[s][h] = kwh;
        n++;
    }
    fclose(f);
    HVS_REQUIRE(n == SITES * NH, "%d hourly sums", n);
    snprintf(
        cmd, sizeof cmd,
        "env %s %s topics create --partitions 2 >/dev/null 2>&1; env %s %s topology load %s/t.jsonl",
        env, HVS_TEST_HVSCTL, env, HVS_TEST_HVSCTL, dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, "env %s %s weather import %s/w.csv >/dev/null", env, HVS_TEST_HVSCTL,
             dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, "env %s %s ingest %s/r.jsonl", env, HVS_TEST_HVSCTL, dir);
    run_ok(cmd);
}

/* ---- aggregates ------------------------------------------------------------------------------ */

typedef struct sink {
    hvs_decoder_t *dec;
    size_t n, bad;
    void (*fn)(struct sink *s, avro_value_t *v);
    int fx_lag; /* features: index of use_lag_24 */
    size_t fx_checked, fx_wrong;
    int fc_model[SITES], fc_rules[SITES];
    double fc_last_sum[SITES], fc_max[SITES], fc_min[SITES];
    int64_t fc_last_issue[SITES];
} sink_t;

static void on_msg(void *opaque, const rd_kafka_message_t *m) {
    sink_t *s = opaque;
    avro_value_t *v;
    if (!m->payload || hvs_decoder_decode(s->dec, m->payload, m->len, &v, NULL)) {
        s->bad++;
        return;
    }
    s->n++;
    s->fn(s, v);
}

static void on_agg(sink_t *s, avro_value_t *v) {
    (void)s;
    int b = site_of(hvs_serde_field_str(v, "building_id"));
    if (b < 0 || hvs_serde_field_str(v, "apartment_id"))
        return; /* the chargers' own series */
    long long h = (hvs_serde_field_long(v, "window_start") - T0) / HOUR;
    int64_t rev = hvs_serde_field_long(v, "revision");
    if (h < 0 || h >= NH || (got_rev[b][h] > rev && !isnan(got[b][h])))
        return;
    got_rev[b][h] = rev;
    got[b][h] = hvs_serde_field_double(v, "heating_kwh");
}

static size_t read_topic(const char *topic, int kind, sink_t *s, size_t want_n, int timeout_ms) {
    HVS_REQUIRE(hvs_decoder_new(serde, kind, &s->dec, NULL) == 0, "decoder");
    const char *topics[] = {topic};
    hvs_test_tail_t t = {.brokers = broker.addr,
                         .topics = topics,
                         .want = want_n,
                         .timeout_ms = timeout_ms,
                         .assign_ms = 15000, /* the mock's first join takes ~3 s */
                         .idle_ms = 1500,
                         .batch = 512};
    size_t n = hvs_test_tail(&t, on_msg, s);
    hvs_decoder_destroy(s->dec);
    return n;
}

static void test_aggregates(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=ev-agg %s --sample-interval 1h --idle-timeout 1s", env,
             HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn hvs-aggregator");
    /* the features worker follows the aggregates as they come (checked in test_features) */
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=ev-fx %s", env, HVS_TEST_FEATURES);
    HVS_REQUIRE(hvs_test_spawn(&fx, cmd, logpath) == 0, "spawn hvs-features");
    /* every site hour final: watch the building series until all are there */
    int64_t deadline = hvs_test_now_ms() + 60000;
    int have = 0;
    while (hvs_test_now_ms() < deadline) {
        for (int b = 0; b < SITES; b++)
            for (int h = 0; h < NH; h++)
                got[b][h] = NAN, got_rev[b][h] = -1;
        sink_t s = {.fn = on_agg};
        read_topic("aggregates.hourly", HVS_SCHEMA_AGGREGATE, &s, 0, 20000);
        have = 0;
        for (int b = 0; b < SITES; b++)
            for (int h = 0; h < NH; h++)
                have += !isnan(got[b][h]);
        if (have == SITES * NH)
            break;
        usleep(500000);
    }
    HVS_CHECK_EQ_INT(have, SITES * NH);
    int wrong = 0;
    double total = 0;
    for (int b = 0; b < SITES; b++)
        for (int h = 0; h < NH; h++) {
            total += want[b][h];
            if (!(fabs(got[b][h] - want[b][h]) <= 1e-6) && wrong++ < 5)
                HVS_CHECK(false, "site %d hour %d: aggregate %.6f kWh, sessions %.6f", b + 1, h,
                          got[b][h], want[b][h]);
        }
    HVS_CHECK_EQ_INT(wrong, 0);
    HVS_CHECK(total > 1000, "the sample charges: %.0f kWh", total);
    printf("aggregates: %d site hours, %.1f kWh, all equal to the sessions' sums\n", have, total);
}

/* ---- features -------------------------------------------------------------------------------- */

static void on_fx(sink_t *s, avro_value_t *v) {
    int b = site_of(hvs_serde_field_str(v, "building_id"));
    if (b < 0 || hvs_serde_field_str(v, "apartment_id"))
        return;
    long long h = (hvs_serde_field_long(v, "target_hour") - T0) / HOUR;
    avro_value_t vals, item;
    double x;
    if (h < 24 || h >= NH || avro_value_get_by_name(v, "values", &vals, NULL) ||
        avro_value_get_by_index(&vals, (size_t)s->fx_lag, &item, NULL) ||
        avro_value_get_double(&item, &x))
        return;
    s->fx_checked++;
    if (!(fabs(x - want[b][h - 24]) <= 1e-6) && s->fx_wrong++ < 3)
        HVS_CHECK(false, "site %d hour %lld: use_lag_24 %.6f, 24 h before %.6f", b + 1, h, x,
                  want[b][h - 24]);
}

static void test_features(void) {
    sink_t s;
    int64_t deadline = hvs_test_now_ms() + 60000;
    do {
        s = (sink_t){.fn = on_fx, .fx_lag = hvs_features_index("use_lag_24")};
        read_topic("features.hourly", HVS_SCHEMA_FEATURE_VECTOR, &s, 0, 20000);
    } while (s.fx_checked < (size_t)SITES * (NH - 48) && hvs_test_now_ms() < deadline);
    HVS_CHECK(s.fx_checked >= (size_t)SITES * (NH - 48), "%zu site vectors checked", s.fx_checked);
    HVS_CHECK_EQ_INT(s.fx_wrong, 0);
    printf("features: %zu site vectors, use_lag_24 as summed\n", s.fx_checked);
}

/* ---- models ---------------------------------------------------------------------------------- */

static const char *const heating_physics[] = {"hdh",
                                              "hdh_roll_24_mean",
                                              "temp_x_hour",
                                              "temp_x_radiation",
                                              "room_temp_c",
                                              "setpoint_c",
                                              "comfort_gap_c",
                                              "comfort_gap_prev",
                                              "valve_mean_pct",
                                              "room_temp_std_c",
                                              "room_flat_hours",
                                              NULL};

typedef struct models {
    int forecast, other, ev, kwh, physics, temp, lag;
} models_t;

static models_t mods;

static void on_model(sink_t *s, avro_value_t *v) {
    (void)s;
    const char *name = hvs_serde_field_str(v, "name");
    if (!name || strncmp(name, "forecast/", 9) != 0) {
        mods.other += name != NULL; /* anomaly or refresh models: not the profile's tasks */
        return;
    }
    mods.forecast++;
    avro_value_t params, p, arr, item;
    const char *str;
    size_t len, n = 0;
    if (avro_value_get_by_name(v, "params", &params, NULL) == 0) {
        if (avro_value_get_by_name(&params, "profile", &p, NULL) == 0 &&
            avro_value_get_string(&p, &str, &len) == 0 && strcmp(str, "ev_charging") == 0)
            mods.ev++;
        if (avro_value_get_by_name(&params, "target_scale", &p, NULL) == 0 &&
            avro_value_get_string(&p, &str, &len) == 0 && strcmp(str, "kwh") == 0)
            mods.kwh++;
    }
    bool temp = false, lag = false;
    if (avro_value_get_by_name(v, "feature_names", &arr, NULL) == 0 &&
        avro_value_get_size(&arr, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_by_index(&arr, i, &item, NULL) ||
                avro_value_get_string(&item, &str, &len))
                continue;
            for (const char *const *h = heating_physics; *h; h++)
                if (strcmp(str, *h) == 0) {
                    mods.physics++;
                    fprintf(stderr, "%s reads %s\n", name, str);
                }
            temp |= strcmp(str, "temperature_c") == 0;
            lag |= strcmp(str, "use_lag_168") == 0;
        }
    mods.temp += temp;
    mods.lag += lag;
}

static void test_models(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=ev-tr %s --window 60d --every 365d "
             "--folds 2 --fold-days 7 --min-train-days 14 --per-hour 2 --rounds 120 --eta 0.1 "
             "--nthread 1 --max-wape 0",
             env, HVS_TEST_TRAINER);
    HVS_REQUIRE(hvs_test_spawn(&tr, cmd, logpath) == 0, "spawn hvs-trainer");
    /* forecast/global and forecast/archetype:ev_charging */
    int64_t deadline = hvs_test_now_ms() + 90000;
    do {
        memset(&mods, 0, sizeof mods);
        sink_t s = {.fn = on_model};
        read_topic("models", HVS_SCHEMA_MODEL_VERSION, &s, 2, 5000);
    } while (mods.forecast < 2 && hvs_test_now_ms() < deadline);
    HVS_CHECK(mods.forecast >= 2, "%d forecast models", mods.forecast);
    /* the trainer's default tasks, cut to the profile's (tasks = forecast) */
    HVS_CHECK_EQ_INT(mods.other, 0);
    HVS_CHECK(mods.ev == mods.forecast && mods.kwh == mods.forecast,
              "every one ev_charging's (%d) in kWh (%d)", mods.ev, mods.kwh);
    HVS_CHECK_EQ_INT(mods.physics, 0);
    HVS_CHECK(mods.temp == mods.forecast && mods.lag == mods.forecast,
              "temperature (%d) and lags (%d) kept", mods.temp, mods.lag);
    hvs_test_proc_stop(&tr);
}

/* ---- forecasts ------------------------------------------------------------------------------- */

static void on_fc(sink_t *s, avro_value_t *v) {
    int b = site_of(hvs_serde_field_str(v, "building_id"));
    const char *model = hvs_serde_field_str(v, "model_name");
    if (b < 0)
        return;
    if (!model || strncmp(model, "forecast/", 9) != 0) {
        s->fc_rules[b]++;
        return;
    }
    s->fc_model[b]++;
    int64_t issued = hvs_serde_field_long(v, "issued_at");
    avro_value_t pts, pt;
    size_t n = 0;
    double sum = 0;
    if (avro_value_get_by_name(v, "points", &pts, NULL) || avro_value_get_size(&pts, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        if (avro_value_get_by_index(&pts, i, &pt, NULL))
            return;
        double y = hvs_serde_field_double(&pt, "yhat_kwh");
        if (!(y >= s->fc_min[b]))
            s->fc_min[b] = y;
        if (!(y <= s->fc_max[b]))
            s->fc_max[b] = y;
        if (i < 24)
            sum += y;
    }
    if (n >= 24 && issued >= s->fc_last_issue[b]) {
        s->fc_last_issue[b] = issued;
        s->fc_last_sum[b] = sum;
    }
}

static void test_forecasts(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=ev-fc %s --batch 500 --weather-wait 7d", env,
             HVS_TEST_FORECASTER);
    HVS_REQUIRE(hvs_test_spawn(&fc, cmd, logpath) == 0, "spawn hvs-forecaster");
    sink_t s = {.fn = on_fc};
    for (int b = 0; b < SITES; b++)
        s.fc_min[b] = INFINITY, s.fc_max[b] = -INFINITY;
    int64_t deadline = hvs_test_now_ms() + 60000;
    do {
        sink_t z = {.fn = on_fc};
        for (int b = 0; b < SITES; b++)
            z.fc_min[b] = INFINITY, z.fc_max[b] = -INFINITY;
        read_topic("forecasts.baseline", HVS_SCHEMA_FORECAST, &z, 0, 10000);
        s = z;
    } while ((s.fc_model[0] < 24 || s.fc_model[1] < 24) && hvs_test_now_ms() < deadline);
    double lo = INFINITY, hi = 0;
    for (int b = 0; b < SITES; b++)
        for (int d = 0; d < DAYS; d++) {
            double day = 0;
            for (int h = 0; h < 24; h++)
                day += want[b][d * 24 + h];
            lo = fmin(lo, day), hi = fmax(hi, day);
        }
    for (int b = 0; b < SITES; b++) {
        HVS_CHECK(s.fc_model[b] >= 24, "site %d: %d model forecasts (%d by rules)", b + 1,
                  s.fc_model[b], s.fc_rules[b]);
        HVS_CHECK(s.fc_min[b] >= 0 && s.fc_max[b] < CHARGERS * 150.0,
                  "site %d: points in [%.2f, %.2f] kWh", b + 1, s.fc_min[b], s.fc_max[b]);
        HVS_CHECK(s.fc_last_sum[b] >= lo && s.fc_last_sum[b] <= hi,
                  "site %d: next 24 h %.1f kWh, the sample's days %.1f..%.1f", b + 1,
                  s.fc_last_sum[b], lo, hi);
        printf("forecasts: site %d: %d by model, next 24 h %.1f kWh (days %.1f..%.1f)\n", b + 1,
               s.fc_model[b], s.fc_last_sum[b], lo, hi);
    }
}

static void test_all(void) {
    int64_t t0 = hvs_test_now_ms();
    setup();
    printf("setup %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_aggregates();
    printf("aggregates %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_features();
    printf("features %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_models();
    printf("models %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_forecasts();
    printf("forecasts %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
}

static const hvs_test_case_t cases[] = {{"end_to_end", test_all}, HVS_TEST_CASES_END};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
