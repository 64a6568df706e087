/*
 * test_profile_it - other metered quantities end to end (issue 18): each case a profile's
 * sample generator's data through hvsctl ingest (the profile's sensor table) into
 * hvs-aggregator and hvs-features, then hvs-trainer trains forecast models (no heated area:
 * kwh scale, the quantity's own unit) and hvs-forecaster serves them; every process runs with
 * HVS_PROFILE=<profile>, against a real redis-server and hvs-devbroker.
 *   ev_charging (seed 002; data/samples/ev_charging/gen_ev_sample.py): 2 sites x 12 chargers x
 *     35 days of hourly counter readings, the chargers' kWh per hour summed by the generator;
 *   retail (seed 003; data/samples/retail/gen_retail_sample.py): 3 shops x 2 tills x 70 days
 *     of one counter reading a day, the tills' EUR per day summed by the generator.
 * Checked against values worked out outside the workers:
 *   - aggregates.hourly (the building series, final revision): every site hour carries the kWh
 *     and the chargers' minutes occupied (the second counter channel, hot_water_litres) the
 *     generator summed (to 1e-6); every shop day's 24 hours add up to its sales (to 1e-6 EUR),
 *     spread evenly (each hour a 24th);
 *   - features.hourly's vectors of a building carry use_lag_24 = its aggregate 24 h before;
 *   - the forecast models on `models` are the profile's (params.profile, target_scale kwh), and
 *     their columns hold no heating-physics feature (degree hours, temperature interactions,
 *     comfort, rooms) but keep temperature and the consumption lags; for retail, the trainer's
 *     out-of-sample backtest beats seasonal naive (the same hour a week before) in every fold;
 *   - forecasts.baseline holds model forecasts (not rules) for every building, with points >= 0
 *     and below the building's capacity, and the last issue's next 24 h sum inside the range of
 *     the sample's daily sums; for retail, the next days forecast at midnight follow the week
 *     (Sundays, closed, under a tenth of Saturdays).
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
#define DAY (24 * HOUR)
#define MAXB 3             /* buildings of a case */
#define MAXH (70 * 24)     /* hours of a case */
#define T0 1736121600000LL /* 2025-01-06 (a Monday), the generators' default start */

/* A profile's case. */
typedef struct pcase {
    const char *profile;
    const char *prefix; /* building ids: prefix + "01", "02", ... */
    int nb, days;
    bool daily;         /* the generator sums days (retail), else hours */
    const char *second; /* the second counter the generator sums per hour (NULL: none) */
    int units;          /* apartments (chargers, tills) per building */
    bool refresh;       /* the profile's tasks include refresh: hvs-refresher runs too */
    double capacity;    /* a building's most per hour: a bound on forecast points */
    const char *gen;    /* the generator under data/samples/ */
    const char *args;   /* its size arguments */
    const char *train;  /* hvs-trainer's backtest arguments */
} pcase_t;

static const pcase_t *pc;
static int NH;
static hvs_test_proc_t redis, broker, agg, fx, tr, fc, rf;
static hvs_serde_t *serde;
static char env[1024], dir[64], logpath[300];
static double want[MAXB][MAXH];  /* the generator's: per hour (ev) or per day at [b][day] */
static double want2[MAXB][MAXH]; /* the second counter's per hour (ev: minutes occupied) */
static double got[MAXB][MAXH];   /* aggregates.hourly's, final revision */
static double got2[MAXB][MAXH];  /* ... of the second counter channel (hot_water_litres) */
static int64_t got_rev[MAXB][MAXH];

static void teardown(void) {
    hvs_test_proc_stop(&rf);
    hvs_test_proc_stop(&fc);
    hvs_test_proc_stop(&tr);
    hvs_test_proc_stop(&fx);
    hvs_test_proc_stop(&agg);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_serde_destroy(serde);
    serde = NULL;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (getenv("PROFILE_KEEP")) /* debugging: keep the data and the workers' log */
        fprintf(stderr, "kept %s\n", dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Index of building id b of the case ("<prefix>01" is 0), -1 for others. */
static int site_of(const char *b) {
    size_t n = strlen(pc->prefix);
    return b && strncmp(b, pc->prefix, n) == 0 && b[n] == '0' && b[n + 1] >= '1' &&
                   b[n + 1] < '1' + pc->nb && !b[n + 2]
               ? b[n + 1] - '1'
               : -1;
}

static void run_ok(const char *cmd) {
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_REQUIRE(rc == 0, "%s: exit %d: %s", cmd, rc, out ? out : "");
    free(out);
}

static void setup(const pcase_t *c) {
    pc = c;
    NH = c->days * 24;
    memset(want, 0, sizeof want);
    snprintf(dir, sizeof dir, "/tmp/test_profile_%s_XXXXXX", c->profile);
    HVS_REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(logpath, sizeof logpath, "%s/workers.log", dir);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, "--partitions 2") == 0,
                "services");
    static bool registered;
    if (!registered)
        hvs_test_cleanup(teardown);
    registered = true;
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_TOPIC_PARTITIONS=2 HVS_HTTP_PORT=-1 HVS_PROFILE=%s OMP_WAIT_POLICY=PASSIVE",
             broker.addr, redis.addr, c->profile);
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, NULL) == 0, "serde");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s %s/data/samples/%s %s --days %d --readings %s/r.jsonl --topology %s/t.jsonl "
             "--%s %s/h.csv --weather %s/w.csv",
             HVS_TEST_PYTHON3, HVS_TEST_SOURCE_DIR, c->gen, c->args, c->days, dir, dir,
             c->daily ? "daily" : "hourly", dir, dir);
    run_ok(cmd);
    snprintf(cmd, sizeof cmd, "%s/h.csv", dir);
    FILE *f = fopen(cmd, "r");
    HVS_REQUIRE(f, "open %s", cmd);
    char line[256], site[64];
    long long t;
    double kwh, second;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%63[^,],%lld,%lf,%lf", site, &t, &kwh, &second);
        int s = site_of(site);
        long long h = (t - T0) / (c->daily ? DAY : HOUR);
        HVS_REQUIRE(k >= 3 && s >= 0 && h >= 0 && h < (c->daily ? c->days : NH), "sum line %s",
                    line);
        want[s][h] = kwh;
        want2[s][h] = k == 4 ? second : NAN;
        n++;
    }
    fclose(f);
    HVS_REQUIRE(n == c->nb * (c->daily ? c->days : NH), "%d sums", n);
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
    int fc_model[MAXB], fc_rules[MAXB];
    double fc_last_sum[MAXB], fc_max[MAXB], fc_min[MAXB];
    int64_t fc_last_issue[MAXB];
    double fc_weekday_sum[7]; /* next 24 h of the issues at midnight, by the day's weekday */
    int fc_weekday_n[7];
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
    got2[b][h] = hvs_serde_field_double(v, "hot_water_litres");
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

static void spawn(hvs_test_proc_t *p, const char *what, const char *exe, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=%s-%s %s %s", env, pc->profile, what, exe,
             args);
    HVS_REQUIRE(hvs_test_spawn(p, cmd, logpath) == 0, "spawn %s", exe);
}

static void test_aggregates(void) {
    /* hourly chargers: their sampling interval; daily tills: a gap closed each day */
    spawn(&agg, "agg", HVS_TEST_AGGREGATOR,
          pc->daily ? "--idle-timeout 1s" : "--sample-interval 1h --idle-timeout 1s");
    /* the features worker follows the aggregates as they come (checked in test_features) */
    spawn(&fx, "fx", HVS_TEST_FEATURES, "");
    /* every building hour final: watch the building series until all are there */
    int64_t deadline = hvs_test_now_ms() + 60000;
    int have = 0;
    while (hvs_test_now_ms() < deadline) {
        for (int b = 0; b < pc->nb; b++)
            for (int h = 0; h < NH; h++)
                got[b][h] = NAN, got_rev[b][h] = -1;
        sink_t s = {.fn = on_agg};
        read_topic("aggregates.hourly", HVS_SCHEMA_AGGREGATE, &s, 0, 20000);
        have = 0;
        for (int b = 0; b < pc->nb; b++)
            for (int h = 0; h < NH; h++)
                have += !isnan(got[b][h]);
        if (have == pc->nb * NH)
            break;
        usleep(500000);
    }
    HVS_CHECK_EQ_INT(have, pc->nb * NH);
    int wrong = 0;
    double total = 0;
    for (int b = 0; b < pc->nb; b++)
        for (int h = 0; h < NH; h++) {
            /* a day's sales spread evenly: each hour a 24th, the day's hours summing to it */
            double w = pc->daily ? want[b][h / 24] / 24 : want[b][h];
            total += w;
            if (!(fabs(got[b][h] - w) <= 1e-6) && wrong++ < 5)
                HVS_CHECK(false, "building %d hour %d: aggregate %.6f, the generator's %.6f", b + 1,
                          h, got[b][h], w);
        }
    for (int b = 0; pc->daily && b < pc->nb; b++)
        for (int d = 0; d < pc->days; d++) {
            double sum = 0;
            for (int h = 0; h < 24; h++)
                sum += got[b][d * 24 + h];
            if (!(fabs(sum - want[b][d]) <= 1e-6) && wrong++ < 5)
                HVS_CHECK(false, "shop %d day %d: hours sum to %.6f, sales %.2f", b + 1, d, sum,
                          want[b][d]);
        }
    /* the second counter (ev_charging: each charger's minutes occupied): the site's sum */
    double busy = 0;
    for (int b = 0; pc->second && b < pc->nb; b++)
        for (int h = 0; h < NH; h++) {
            busy += want2[b][h];
            if (!(fabs(got2[b][h] - want2[b][h]) <= 1e-6) && wrong++ < 5)
                HVS_CHECK(false, "building %d hour %d: %s %.6f, the generator's %.6f", b + 1, h,
                          pc->second, got2[b][h], want2[b][h]);
        }
    if (pc->second)
        printf("aggregates: %s %.1f in all, occupancy %.1f %%\n", pc->second, busy,
               100 * busy / (60.0 * NH * pc->nb * pc->units));
    HVS_CHECK_EQ_INT(wrong, 0);
    HVS_CHECK(total > 1000, "the sample meters: %.0f", total);
    printf("aggregates: %d building hours, %.1f in all, equal to the generator's sums\n", have,
           total);
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
    double wh = round(got[b][h - 24] * 1000) / 1000; /* kept to the Wh (features.h) */
    if (!(fabs(x - wh) <= 1e-9) && s->fx_wrong++ < 3)
        HVS_CHECK(false,
                  "building %d hour %lld: use_lag_24 %.6f, 24 h before %.6f (to the Wh %.3f)",
                  b + 1, h, x, got[b][h - 24], wh);
}

static void test_features(void) {
    sink_t s;
    int64_t deadline = hvs_test_now_ms() + 60000;
    do {
        s = (sink_t){.fn = on_fx, .fx_lag = hvs_features_index("use_lag_24")};
        read_topic("features.hourly", HVS_SCHEMA_FEATURE_VECTOR, &s, 0, 20000);
    } while (s.fx_checked < (size_t)pc->nb * (NH - 48) && hvs_test_now_ms() < deadline);
    HVS_CHECK(s.fx_checked >= (size_t)pc->nb * (NH - 48), "%zu building vectors checked",
              s.fx_checked);
    HVS_CHECK_EQ_INT(s.fx_wrong, 0);
    printf("features: %zu building vectors, use_lag_24 as aggregated\n", s.fx_checked);
}

/* ---- models ---------------------------------------------------------------------------------- */


typedef struct models {
    int forecast, refresh, other, profile, kwh, physics, temp, lag;
    int folds;                         /* backtest folds scored */
    double abs_err, naive_err, actual; /* their absolute errors and actuals, summed */
} models_t;

static models_t mods;

static void on_model(sink_t *s, avro_value_t *v) {
    (void)s;
    const char *name = hvs_serde_field_str(v, "name");
    if (name && strncmp(name, "refresh/", 8) == 0) {
        mods.refresh++;
        return;
    }
    if (!name || strncmp(name, "forecast/", 9) != 0) {
        mods.other += name != NULL; /* anomaly models: not the profile's tasks */
        return;
    }
    mods.forecast++;
    avro_value_t params, p, arr, item;
    const char *str;
    size_t len, n = 0;
    if (avro_value_get_by_name(v, "params", &params, NULL) == 0) {
        if (avro_value_get_by_name(&params, "profile", &p, NULL) == 0 &&
            avro_value_get_string(&p, &str, &len) == 0 && strcmp(str, pc->profile) == 0)
            mods.profile++;
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
            for (const char *const *h = hvs_test_heating_physics; *h; h++)
                if (strcmp(str, *h) == 0) {
                    mods.physics++;
                    fprintf(stderr, "%s reads %s\n", name, str);
                }
            temp |= strcmp(str, "temperature_c") == 0;
            lag |= strcmp(str, "use_lag_168") == 0;
        }
    mods.temp += temp;
    mods.lag += lag;
    if (avro_value_get_by_name(v, "folds", &arr, NULL) == 0 && avro_value_get_size(&arr, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_by_index(&arr, i, &item, NULL))
                continue;
            double w = hvs_serde_field_double(&item, "wape"),
                   naive = hvs_serde_field_double(&item, "naive_wape");
            if (isnan(w) || isnan(naive))
                continue;
            double act = hvs_serde_field_double(&item, "actual_sum");
            mods.folds++;
            mods.abs_err += w * act, mods.naive_err += naive * act, mods.actual += act;
            printf("%s: backtest fold %zu WAPE %.3f, seasonal naive %.3f\n", name, i + 1, w, naive);
        }
}

static void test_models(void) {
    spawn(&tr, "tr", HVS_TEST_TRAINER, pc->train);
    /* forecast/global and forecast/archetype:<the sample's archetype> */
    int64_t deadline = hvs_test_now_ms() + 90000;
    do {
        memset(&mods, 0, sizeof mods);
        sink_t s = {.fn = on_model};
        read_topic("models", HVS_SCHEMA_MODEL_VERSION, &s, 2, 5000);
    } while ((mods.forecast < 2 || (pc->refresh && mods.refresh < 1)) &&
             hvs_test_now_ms() < deadline);
    HVS_CHECK(mods.forecast >= 2, "%d forecast models", mods.forecast);
    /* the trainer's default tasks, cut to the profile's (forecast, and refresh for some) */
    HVS_CHECK_EQ_INT(mods.other, 0);
    HVS_CHECK(pc->refresh ? mods.refresh >= 1 : mods.refresh == 0, "%d refresh models",
              mods.refresh);
    HVS_CHECK(mods.profile == mods.forecast && mods.kwh == mods.forecast,
              "every one %s's (%d) on the kwh scale (%d)", pc->profile, mods.profile, mods.kwh);
    /* a shop's week is regular, its days' chance independent: last week's day carries its own
     * chance, a model of the week and the weather only the day's (6 % a day in the sample) */
    if (pc->daily)
        HVS_CHECK(mods.folds >= 4 && mods.abs_err < 0.9 * mods.naive_err,
                  "backtest over %d folds: WAPE %.3f, seasonal naive %.3f", mods.folds,
                  mods.abs_err / mods.actual, mods.naive_err / mods.actual);
    printf("models: backtest over %d folds: WAPE %.3f, seasonal naive %.3f\n", mods.folds,
           mods.abs_err / mods.actual, mods.naive_err / mods.actual);
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
    /* the next day, issued at midnight, once a week of history gives use_lag_168 (before it,
     * a shop's first Sunday looks like any day: 15 031 forecast) */
    if (n >= 24 && issued >= T0 + 14 * DAY && (issued - T0) % DAY == 0) {
        int wd = (int)((issued - T0) / DAY % 7); /* T0 is a Monday */
        s->fc_weekday_sum[wd] += sum;
        s->fc_weekday_n[wd]++;
    }
}

static void test_forecasts(void) {
    spawn(&fc, "fc", HVS_TEST_FORECASTER, "--batch 500 --weather-wait 7d");
    sink_t s = {.fn = on_fc};
    int64_t deadline = hvs_test_now_ms() + 60000;
    bool enough;
    do {
        s = (sink_t){.fn = on_fc};
        for (int b = 0; b < pc->nb; b++)
            s.fc_min[b] = INFINITY, s.fc_max[b] = -INFINITY;
        read_topic("forecasts.baseline", HVS_SCHEMA_FORECAST, &s, 0, 10000);
        enough = true;
        for (int b = 0; b < pc->nb; b++)
            enough &= s.fc_model[b] >= 24;
    } while (!enough && hvs_test_now_ms() < deadline);
    double lo = INFINITY, hi = 0;
    for (int b = 0; b < pc->nb; b++)
        for (int d = 0; d < pc->days; d++) {
            double day = 0;
            for (int h = 0; h < 24; h++)
                day += got[b][d * 24 + h];
            lo = fmin(lo, day), hi = fmax(hi, day);
        }
    for (int b = 0; b < pc->nb; b++) {
        HVS_CHECK(s.fc_model[b] >= 24, "building %d: %d model forecasts (%d by rules)", b + 1,
                  s.fc_model[b], s.fc_rules[b]);
        HVS_CHECK(s.fc_min[b] >= 0 && s.fc_max[b] < pc->capacity,
                  "building %d: points in [%.2f, %.2f]", b + 1, s.fc_min[b], s.fc_max[b]);
        HVS_CHECK(s.fc_last_sum[b] >= lo && s.fc_last_sum[b] <= hi,
                  "building %d: next 24 h %.1f, the sample's days %.1f..%.1f", b + 1,
                  s.fc_last_sum[b], lo, hi);
        printf("forecasts: building %d: %d by model, next 24 h %.1f (days %.1f..%.1f)\n", b + 1,
               s.fc_model[b], s.fc_last_sum[b], lo, hi);
    }
    if (pc->daily) {
        double sat = s.fc_weekday_n[5] ? s.fc_weekday_sum[5] / s.fc_weekday_n[5] : NAN,
               sun = s.fc_weekday_n[6] ? s.fc_weekday_sum[6] / s.fc_weekday_n[6] : NAN;
        HVS_CHECK(sun < 0.1 * sat,
                  "the next day forecast at midnight: Sundays %.1f (%d), "
                  "Saturdays %.1f (%d)",
                  sun, s.fc_weekday_n[6], sat, s.fc_weekday_n[5]);
        printf("forecasts: next day at midnight, mean of all shops: Saturday %.1f, Sunday %.1f\n",
               sat, sun);
    }
}

/* ---- refreshes ------------------------------------------------------------------------------ */

typedef struct refreshes {
    int n[MAXB], by_model[MAXB], bad;
    double err, base_err, act; /* the first refreshed hour against the aggregates */
} refreshes_t;

static refreshes_t rfs;

static void on_rf(sink_t *s, avro_value_t *v) {
    (void)s;
    int b = site_of(hvs_serde_field_str(v, "building_id"));
    const char *model = hvs_serde_field_str(v, "model_name");
    avro_value_t pts, pt;
    size_t n = 0;
    if (b < 0 || avro_value_get_by_name(v, "points", &pts, NULL) || avro_value_get_size(&pts, &n) ||
        n == 0 || avro_value_get_by_index(&pts, 0, &pt, NULL))
        return;
    rfs.n[b]++;
    rfs.by_model[b] += model && strncmp(model, "refresh/", 8) == 0;
    double y = hvs_serde_field_double(&pt, "yhat_kwh"),
           c = hvs_serde_field_double(&pt, "correction_kwh");
    long long h = (hvs_serde_field_long(&pt, "target_hour") - T0) / HOUR;
    if (!(y >= 0) || !isfinite(c)) {
        rfs.bad++;
        return;
    }
    if (h >= 0 && h < NH && !isnan(got[b][h])) {
        rfs.err += fabs(y - got[b][h]);
        rfs.base_err += fabs(y - c - got[b][h]); /* the baseline's point: corrected minus c */
        rfs.act += got[b][h];
    }
}

/* hvs-refresher on the profile's aggregates.15m and baselines: every site refreshed, by the
 * profile's refresh model, in kWh (no area), its first hour closer to the aggregates than the
 * baseline's on the whole. */
static void test_refreshes(void) {
    spawn(&rf, "rf", HVS_TEST_REFRESHER, "--batch 500");
    int64_t deadline = hvs_test_now_ms() + 60000;
    bool enough;
    do {
        memset(&rfs, 0, sizeof rfs);
        sink_t s = {.fn = on_rf};
        read_topic("forecasts.refreshed", HVS_SCHEMA_FORECAST, &s, 0, 10000);
        enough = true;
        for (int b = 0; b < pc->nb; b++)
            enough &= rfs.by_model[b] >= 24;
    } while (!enough && hvs_test_now_ms() < deadline);
    for (int b = 0; b < pc->nb; b++)
        HVS_CHECK(rfs.by_model[b] >= 24, "building %d: %d refreshes, %d by a refresh model", b + 1,
                  rfs.n[b], rfs.by_model[b]);
    HVS_CHECK_EQ_INT(rfs.bad, 0);
    HVS_CHECK(rfs.act > 0 && rfs.err <= rfs.base_err,
              "first refreshed hour: WAPE %.3f, the baseline's %.3f", rfs.err / rfs.act,
              rfs.base_err / rfs.act);
    printf("refreshes: %d and %d; first hour WAPE %.3f refreshed, %.3f baseline\n", rfs.n[0],
           rfs.n[1], rfs.err / rfs.act, rfs.base_err / rfs.act);
}

static const pcase_t ev_charging = {.profile = "ev_charging",
                                    .prefix = "site_ev_",
                                    .nb = 2,
                                    .days = 35,
                                    .capacity = 12 * 150.0,
                                    .second = "charger_busy_min",
                                    .units = 12,
                                    .refresh = true,
                                    .gen = "ev_charging/gen_ev_sample.py",
                                    .args = "--sites 2 --chargers 12",
                                    .train = "--window 60d --every 365d --folds 2 --fold-days 7 "
                                             "--min-train-days 14 --per-hour 2 --rounds 120 "
                                             "--eta 0.1 --nthread 1 --max-wape 0"};
static const pcase_t retail = {.profile = "retail",
                               .prefix = "shop_",
                               .nb = 3,
                               .days = 70,
                               .daily = true,
                               .capacity = 2 * 100000.0,
                               .units = 2,
                               .gen = "retail/gen_retail_sample.py",
                               .args = "--shops 3 --tills 2",
                               .train = "--window 90d --every 365d --folds 4 --fold-days 7 "
                                        "--min-train-days 28 --per-hour 2 --rounds 120 "
                                        "--eta 0.1 --nthread 1 --max-wape 0"};

static void run_case(const pcase_t *c) {
    int64_t t0 = hvs_test_now_ms();
    setup(c);
    printf("setup %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_aggregates();
    printf("aggregates %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_features();
    printf("features %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_models();
    printf("models %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    test_forecasts();
    printf("forecasts %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    if (c->refresh) {
        test_refreshes();
        printf("refreshes %.1f s\n", (hvs_test_now_ms() - t0) / 1e3);
    }
    teardown();
}

static void test_ev_charging(void) { run_case(&ev_charging); }
static void test_retail(void) { run_case(&retail); }

static const hvs_test_case_t cases[] = {
    {"ev_charging", test_ev_charging}, {"retail", test_retail}, HVS_TEST_CASES_END};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
