/*
 * test_trainer_window_it - three winters of history are trained on, and every backtest fold is
 * logged and kept (issue 18). hvs-trainer with its default window against a real redis-server
 * and hvs-devbroker: one building, 800 days of hourly aggregates (2022-01-01 on) and weather (a
 * forecast record per hour, issued 48 h before it: one record an hour keeps the partition below
 * the devbroker's ~5 MiB). forecast/global v1 is read back from `models`:
 *   - its rows reach back past 366 days (one row per target hour: more than 366 x 24 of them)
 *     and its training range starts before the data;
 *   - its folds: two of 7 days, contiguous, the last ending at the day start of the range's end,
 *     each trained on everything before its test days; the folds' rows add up to metrics.n_eval
 *     and their actual-weighted WAPEs give metrics.wape; each fold's actual sum and seasonal
 *     naive's WAPE are recomputed here from the values sent (the hour a week before);
 *   - one log line per fold with its dates and WAPE; `hvsctl model show` prints the folds.
 */
#include <jansson.h>
#include <math.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define T0 1640995200000LL /* 2022-01-01 */
#define DAYS 800
#define NH (DAYS * 24)
#define AREA 1000.0

static hvs_test_proc_t redis, broker, tr;
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_wx, *enc_bld;
static hvs_registry_t *r;
static char env[1024], logpath[256];
static double heat[NH]; /* kWh as sent (%.4f) */

static double temp_at(int i) {
    return 8 - 10 * cos(2 * M_PI * (i / 24.0) / 365.25) + 3 * sin(i * 2 * M_PI / 24.0) +
           2 * sin(i * 0.013);
}

static void send_json(hvs_encoder_t *enc, const char *topic, const char *json) {
    hvs_err_t err = {0};
    const void *buf;
    size_t len;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, &len, &err) == 0 &&
            hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, "bldg_0", 6, buf, len, &err) == 0,
        "send %s: %s", topic, err.msg);
}

static void produce(void) {
    char json[2048];
    snprintf(
        json, sizeof json,
        "{\"building_id\":\"bldg_0\",\"archetype\":\"a\",\"commissioning_date\":1600000000000,"
        "\"latitude\":47.3,\"longitude\":8.5,\"heated_area_m2\":%.1f,\"construction_year\":2015,"
        "\"insulation\":null,\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":1,"
        "\"deleted\":false}",
        AREA);
    send_json(enc_bld, "topology", json);
    for (int i = 0; i < NH; i++) {
        hvs_ms_t h = T0 + (hvs_ms_t)i * HOUR;
        double t = temp_at(i), hdh = t < 18 ? 18 - t : 0;
        double v = 15 + 3.0 * hdh + ((i % 24) >= 6 && (i % 24) <= 9 ? 12 : 0) + 2 * sin(i * 1.7);
        char num[32];
        snprintf(num, sizeof num, "%.4f", v);
        heat[i] = atof(num);
        snprintf(
            json, sizeof json,
            "{\"building_id\":\"bldg_0\",\"apartment_id\":null,\"window_start\":%lld,\"window_end\":%lld,"
            "\"window_size_ms\":3600000,\"revision\":0,\"heating_kwh\":%s,\"hot_water_litres\":null,"
            "\"room_temp_mean_c\":null,\"room_temp_min_c\":null,\"room_temp_max_c\":null,"
            "\"setpoint_mean_c\":null,\"comfort_gap_mean_c\":null,\"readings_expected\":4,"
            "\"readings_seen\":4,\"reporting_apartments\":null,\"known_apartments\":null,"
            "\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
            (long long)h, (long long)(h + HOUR), num, (long long)(h + HOUR));
        send_json(enc_agg, "aggregates.hourly", json);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"bldg_0\",\"latitude\":47.3,\"longitude\":8.5,\"hour\":%lld,"
                 "\"issued_at\":%lld,\"kind\":\"FORECAST\",\"temperature_c\":%.2f,"
                 "\"relative_humidity_pct\":70.0,\"cloud_cover_pct\":40.0,"
                 "\"shortwave_radiation_wm2\":50.0,\"wind_speed_ms\":2.0,\"provider\":\"test\"}",
                 (long long)h, (long long)(h - 48 * HOUR), t);
        send_json(enc_wx, "weather.hourly", json);
    }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 60000, &err) == 0, "flush: %s", err.msg);
}

static void teardown(void) {
    hvs_test_proc_stop(&tr);
    hvs_registry_destroy(r);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_wx);
    hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_failed == 0 && !getenv("TRW_KEEP_LOG"))
        unlink(logpath);
    else
        fprintf(stderr, "trainer log: %s\n", logpath);
}

/* The folds of the published record, as the test reads them. */
typedef struct fold {
    hvs_ms_t train_start, train_end, test_start, test_end;
    int n_eval;
    double wape, naive_wape, actual_sum;
} fold_t;

static double opt_double(avro_value_t *rec, const char *name) {
    avro_value_t f, b;
    double d = NAN;
    if (avro_value_get_by_name(rec, name, &f, NULL) == 0 &&
        avro_value_get_current_branch(&f, &b) == 0 && avro_value_get_type(&b) == AVRO_DOUBLE)
        avro_value_get_double(&b, &d);
    return d;
}

static int64_t get_long(avro_value_t *rec, const char *name) {
    avro_value_t f;
    int64_t l = 0;
    avro_value_get_by_name(rec, name, &f, NULL);
    avro_value_get_long(&f, &l);
    return l;
}

static void test_three_winters(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    snprintf(
        env, sizeof env,
        "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info",
        broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-trainer-window-%d.log", (int)getpid());
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &enc_agg, &err) ==
                0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_WEATHER, "weather.hourly", &enc_wx, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0,
        "setup");
    produce();
    /* the default window (no --window); archetype and building scopes out of reach */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env %s OMP_WAIT_POLICY=PASSIVE HVS_HTTP_PORT=%d HVS_KAFKA_GROUP=trw-it %s "
             "--tasks forecast --every 365d --mature-days 3000d --building-days 3000d --folds 2 "
             "--fold-days 7 --min-train-days 30 --horizons 1,24 --per-hour 1 --rounds 40 "
             "--eta 0.2 --nthread 1 --max-wape 0",
             env, hvs_test_free_port(), HVS_TEST_TRAINER);
    HVS_REQUIRE(hvs_test_spawn(&tr, cmd, logpath) == 0, "spawn hvs-trainer");
    hvs_registry_opts_t ro = {.load_models = false};
    HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &ro, &r, &err) == 0, "registry");
    const hvs_model_info_t *v1 = NULL;
    for (int k = 0; k < 300 * 5 && !v1; k++) {
        hvs_registry_poll(r, 0);
        size_t n;
        const hvs_model_info_t *all = hvs_registry_versions(r, &n);
        for (size_t i = 0; i < n; i++)
            if (strcmp(all[i].name, "forecast/global") == 0 && all[i].version == 1)
                v1 = &all[i];
        if (!v1)
            usleep(200000);
    }
    HVS_REQUIRE(v1, "forecast/global v1 published (trainer log %s)", logpath);

    hvs_decoder_t *dec;
    avro_value_t *v, f, item, m, sub;
    HVS_REQUIRE(hvs_decoder_new(serde, HVS_SCHEMA_MODEL_VERSION, &dec, &err) == 0 &&
                    hvs_decoder_decode(dec, v1->record, v1->record_len, &v, &err) == 0,
                "decode v1: %s", err.msg);
    hvs_ms_t start = get_long(v, "train_start"), end = get_long(v, "train_end");
    const char *s = NULL;
    size_t l;
    HVS_REQUIRE(avro_value_get_by_name(v, "params", &f, NULL) == 0 &&
                    avro_value_get_by_name(&f, "rows", &item, NULL) == 0 &&
                    avro_value_get_string(&item, &s, &l) == 0,
                "params.rows");
    long rows = atol(s);
    /* one row per target hour: a window capped at 366 days would hold at most 366 x 24 */
    HVS_CHECK(rows > 700 * 24, "rows %ld: the hours older than 366 days are trained on", rows);
    HVS_CHECK(start <= T0 && end - start >= 1000 * DAY,
              "training range %lld..%lld starts before the data (2022-01-01) and spans the window",
              (long long)start, (long long)end);
    avro_value_get_by_name(v, "metrics", &m, NULL);
    double wape = opt_double(&m, "wape");
    int n_eval = 0;
    avro_value_get_by_name(&m, "n_eval", &f, NULL);
    if (avro_value_get_current_branch(&f, &sub) == 0)
        avro_value_get_int(&sub, &n_eval);

    fold_t fo[4];
    size_t nf = 0;
    HVS_REQUIRE(avro_value_get_by_name(v, "folds", &f, NULL) == 0 &&
                    avro_value_get_size(&f, &nf) == 0,
                "folds");
    HVS_REQUIRE(nf == 2, "two folds kept, %zu", nf);
    for (size_t k = 0; k < nf; k++) {
        avro_value_get_by_index(&f, k, &item, NULL);
        fo[k] = (fold_t){get_long(&item, "train_start"),
                         get_long(&item, "train_end"),
                         get_long(&item, "test_start"),
                         get_long(&item, "test_end"),
                         0,
                         opt_double(&item, "wape"),
                         opt_double(&item, "naive_wape"),
                         opt_double(&item, "actual_sum")};
        avro_value_get_by_name(&item, "n_eval", &sub, NULL);
        avro_value_get_int(&sub, &fo[k].n_eval);
    }
    hvs_decoder_destroy(dec);

    double werr = 0, wact = 0;
    int rows_sum = 0;
    for (size_t k = 0; k < nf; k++) {
        HVS_CHECK(fo[k].train_start == start && fo[k].train_end == fo[k].test_start &&
                      fo[k].test_end - fo[k].test_start == 7 * DAY,
                  "fold %zu: trained on %lld..%lld, tested on %lld..%lld", k,
                  (long long)fo[k].train_start, (long long)fo[k].train_end,
                  (long long)fo[k].test_start, (long long)fo[k].test_end);
        if (k)
            HVS_CHECK(fo[k].test_start == fo[k - 1].test_end, "folds contiguous");
        HVS_CHECK(isfinite(fo[k].wape) && fo[k].wape > 0 && fo[k].wape < 1, "fold %zu WAPE %g", k,
                  fo[k].wape);
        werr += fo[k].wape * fo[k].actual_sum;
        wact += fo[k].actual_sum;
        rows_sum += fo[k].n_eval;
        /* independently: every hour of the test days, as sent; seasonal naive = a week before */
        double act = 0, nerr = 0;
        int hours = 0;
        for (hvs_ms_t h = fo[k].test_start; h < fo[k].test_end; h += HOUR) {
            int i = (int)((h - T0) / HOUR);
            HVS_REQUIRE(i >= 168 && i < NH, "test hour inside the data");
            act += heat[i];
            nerr += fabs(heat[i] - heat[i - 168]);
            hours++;
        }
        HVS_CHECK(fo[k].n_eval == hours, "fold %zu: %d rows scored, %d test hours", k, fo[k].n_eval,
                  hours);
        HVS_CHECK(fabs(fo[k].actual_sum - act) <= 1e-5 * act, "fold %zu actual %.4f kWh, %.4f sent",
                  k, fo[k].actual_sum, act);
        HVS_CHECK(fabs(fo[k].naive_wape - nerr / act) <= 1e-5,
                  "fold %zu seasonal naive WAPE %.6f, recomputed %.6f", k, fo[k].naive_wape,
                  nerr / act);
    }
    HVS_CHECK(fo[nf - 1].test_end == hvs_time_day_start(end),
              "the last fold ends at the day start of the range's end");
    HVS_CHECK(rows_sum == n_eval, "folds' rows %d = metrics.n_eval %d", rows_sum, n_eval);
    HVS_CHECK(fabs(werr / wact - wape) <= 1e-9 + 1e-6 * wape,
              "the folds' actual-weighted WAPE %.8f = metrics.wape %.8f", werr / wact, wape);

    /* one log line per fold, with its dates and WAPE */
    char *log = NULL;
    snprintf(cmd, sizeof cmd, "cat %s", logpath);
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, &log, NULL) == 0 && log, "read %s", logpath);
    for (size_t k = 0; k < nf; k++) {
        char line[300], a[32], b[32], c[32], d[32];
        snprintf(line, sizeof line,
                 "forecast/global: fold %zu/2 trained on %s..%s, tested on %s..%s: %d rows, "
                 "WAPE %.4f",
                 k + 1, hvs_time_format_iso8601(fo[k].train_start, a, sizeof a),
                 hvs_time_format_iso8601(fo[k].train_end, b, sizeof b),
                 hvs_time_format_iso8601(fo[k].test_start, c, sizeof c),
                 hvs_time_format_iso8601(fo[k].test_end, d, sizeof d), fo[k].n_eval, fo[k].wape);
        HVS_CHECK(log && strstr(log, line), "log line: %s", line);
    }
    free(log);

    /* the window's Redis cost (printed, for README): the building series and the weather */
    static const char *const keys[] = {"hvs:{bldg_0}:tr:h:-", "hvs:{bldg_0}:tr:wx"};
    for (int k = 0; k < 2; k++) {
        char *mem = NULL;
        snprintf(cmd, sizeof cmd, "redis-cli -p %d MEMORY USAGE '%s' SAMPLES 0", redis.port,
                 keys[k]);
        if (hvs_test_run(cmd, NULL, 0, &mem, NULL) == 0 && mem)
            printf("redis %s: %.2f MB per building-year (%d days)\n", keys[k],
                   atof(mem) / 1e6 * 365.0 / DAYS, DAYS);
        free(mem);
    }

    /* hvsctl model show prints them */
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "env %s %s model show forecast/global --version 1 2>/dev/null", env,
             HVS_TEST_HVSCTL);
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    json_t *jf = json_object_get(j, "folds");
    HVS_CHECK(rc == 0 && json_array_size(jf) == 2 &&
                  fabs(json_number_value(json_object_get(json_array_get(jf, 1), "wape")) -
                       fo[1].wape) < 1e-12,
              "hvsctl model show prints the folds (rc %d): %.300s", rc, out ? out : "");
    json_decref(j);
    free(out);
}

static const hvs_test_case_t cases[] = {
    {"three_winters_trained_folds_kept", test_three_winters},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
