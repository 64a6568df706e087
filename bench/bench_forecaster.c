/*
 * bench_forecaster - building forecasts (72 points each) per second.
 *   1. In process: the forecaster's engine (engine.h) issuing one hourly round for NB buildings
 *      with a forecast/global of the trainer's size (600 rounds, depth 6): features for 72
 *      horizons, rows, one batched prediction per model, intervals, out-of-distribution check.
 *   2. The process: NB buildings on topology, the version on `models`, a warm-up (a forecast
 *      run and two hours of aggregates and observations per building: two rounds), then one
 *      more hour of aggregates and observations: the round's wall time from its first input
 *      produced to its last forecast acknowledged and committed (consumer lag 0), points/s,
 *      the worker's CPU, batch latency, and Redis bytes per building of state.
 * BENCH_FC_BUILDINGS (default 10000) sets NB; BENCH_ENV adds settings to the worker's env.
 */
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "engine.h"
#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1736640000000LL /* 2025-01-12 00:00 UTC */

static int NB = 10000;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double outdoor(hvs_ms_t h) {
    return 2.0 + 6.0 * sin(2 * M_PI * (double)(h / HOUR % 24) / 24.0);
}
static double area(int b) { return 600 + (b % 17) * 150; }
static double heat(int b, hvs_ms_t h) { return area(b) * 0.003 * fmax(0, 18 - outdoor(h)) + 2; }

/* A forecast model of the trainer's size on rows of the forecast task's columns. */
static hvs_model_t *train(void) {
    enum { N = 20000 };
    size_t nc = hvs_taskrow_ncols(HVS_TASK_FORECAST);
    float *x = malloc(sizeof(float) * N * nc), *y = malloc(sizeof(float) * N);
    double xv[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
    hvs_err_t err = {0};
    HVS_REQUIRE(x && y, "oom");
    for (int k = 0; k < N; k++) {
        hvs_ms_t h = T0 - (hvs_ms_t)(k % 2000) * HOUR;
        for (int j = 0; j < HVS_FEATURES_COUNT; j++)
            xv[j] = NAN;
        double t = outdoor(h) + (k % 7) - 3;
        xv[hvs_features_index("horizon_h")] = 1 + k % 72;
        xv[hvs_features_index("hour")] = (double)(h / HOUR % 24);
        xv[hvs_features_index("temperature_c")] = t;
        xv[hvs_features_index("hdh")] = fmax(0, 18 - t);
        xv[hvs_features_index("use_lag_168")] = heat(k % 50, h) * (1 + 0.01 * (k % 5));
        HVS_REQUIRE(hvs_taskrow_build(HVS_TASK_FORECAST, xv, area(k % 50), row, &err) == 0, "row");
        for (size_t j = 0; j < nc; j++)
            x[k * nc + j] = (float)row[j];
        y[k] = (float)(heat(k % 50, h) / area(k % 50) * (1 + 0.02 * ((k * 7) % 11 - 5)));
    }
    hvs_train_params_t p = {.rounds = 600, .early_stopping = 1000, .max_depth = 6, .nthread = 2};
    hvs_model_t *m;
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, nc, x, y, N / 10, &p, &m, NULL, &err) == 0,
                "train: %s", err.msg);
    free(x), free(y);
    return m;
}

static hvs_model_ref_t *serve(hvs_serde_t *s, hvs_model_t *m, void **rec, size_t *reclen) {
    hvs_err_t err = {0};
    unsigned char *ubj, *z;
    size_t lu, lz, nc;
    const char *const *cols = hvs_taskrow_columns(HVS_TASK_FORECAST, &nc);
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 &&
                    hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0,
                "save");
    const char *params[] = {"target_scale",
                            "per_heated_m2",
                            "interval_h1_6",
                            "-0.1 0.1 0.001",
                            "interval_h7_24",
                            "-0.15 0.12 0.001",
                            "interval_h25_48",
                            "-0.2 0.15 0.001",
                            "interval_h49_72",
                            "-0.25 0.2 0.001",
                            NULL};
    static const double te[] = {-30, -20, -15, -10, -5, 0, 5, 10, 15, 20, 25, 45};
    static const double ie[] = {0, 25, 50, 100, 150, 200, 300, 400, 500, 700, 1400};
    int64_t counts[11 * 10];
    for (int i = 0; i < 110; i++)
        counts[i] = 1000;
    hvs_model_record_t r = {.name = "forecast/global",
                            .version = 1,
                            .status = HVS_MODEL_APPROVED,
                            .features = cols,
                            .nfeatures = nc,
                            .metrics = {NAN, 0.2, NAN, NAN, NAN, NAN, -1},
                            .temp_edges = te,
                            .irr_edges = ie,
                            .ntemp = 12,
                            .nirr = 11,
                            .counts = counts,
                            .params = params,
                            .model = z,
                            .model_len = lz,
                            .decided_at = HVS_MS_NONE};
    hvs_encoder_t *enc;
    const void *buf;
    size_t len;
    hvs_model_ref_t *ref;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0 &&
                    hvs_registry_encode(s, enc, &r, &buf, &len, &err) == 0,
                "encode: %s", err.msg);
    *rec = malloc(len);
    memcpy(*rec, buf, len);
    *reclen = len;
    HVS_REQUIRE(hvs_registry_load_record(s, *rec, len, &ref, &err) == 0, "load: %s", err.msg);
    hvs_encoder_destroy(enc);
    free(ubj), free(z);
    return ref;
}

static void bid(int b, char *out, size_t n) { snprintf(out, n, "bldg_%05d", b); }

/* ---- 1. in process ------------------------------------------------------------------------- */

static hvs_model_ref_t *served;

static int e_info(void *o, const char *building, fc_info_t *out) {
    (void)o;
    *out = (fc_info_t){area(atoi(building + 5)), T0 - 400 * 24 * HOUR, "", "CH-ZH"};
    return 0;
}
static hvs_model_ref_t *e_acquire(void *o, const char *name) {
    (void)o;
    if (strcmp(name, "forecast/global"))
        return NULL;
    atomic_fetch_add(&served->refs, 1);
    return served;
}
static int e_forecast(void *o, const fc_forecast_t *f, bool quiet, hvs_err_t *err) {
    (void)f, (void)quiet, (void)err;
    (*(uint64_t *)o)++;
    return 0;
}

static hvs_feat_wx_t obs(hvs_ms_t h) {
    return (hvs_feat_wx_t){h + HOUR + 600000, true, outdoor(h), 70, 50, 100, 3};
}
static hvs_feat_wx_t run_rec(hvs_ms_t issue, hvs_ms_t h) {
    return (hvs_feat_wx_t){issue + 2 * HOUR, false, outdoor(h) + 0.5, 70, 50, 100, 3};
}

static void in_process(void) {
    uint64_t got = 0;
    fc_config_t c = {.every = HOUR,
                     .from = HVS_MS_NONE,
                     .weather_wait = 3 * HOUR,
                     .stale_after = 12 * HOUR,
                     .mature_ms = 30 * 24 * HOUR,
                     .building_ms = 180 * 24 * HOUR,
                     .default_region = "CH",
                     .ood_min_share = 0.001,
                     .ood_margin_c = 3,
                     .ood_horizon = 36,
                     .interval_window_h = 96,
                     .degrade_factor = 1.5,
                     .degrade_days = 3,
                     .drift_min_points = 48,
                     .rules_default = 1};
    fc_callbacks_t cb = {e_info, e_acquire, e_forecast, NULL, &got};
    fc_t *g;
    hvs_err_t err = {0};
    HVS_REQUIRE(fc_new(&c, &cb, &g, &err) == 0, "fc");
    char id[32];
    hvs_ms_t issue = T0 - 6 * HOUR;
    for (int b = 0; b < NB; b++) { /* warm-up: a run and two hours */
        bid(b, id, sizeof id);
        for (int l = 1; l <= 72; l++) {
            hvs_feat_wx_t w = run_rec(issue, issue + l * HOUR);
            fc_on_weather(g, b % 12, id, issue + l * HOUR, &w, false, &err);
        }
        for (hvs_ms_t h = T0 - 2 * HOUR; h < T0; h += HOUR) {
            hvs_feat_hour_t a = {h, heat(b, h), NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
            hvs_feat_wx_t o = obs(h);
            HVS_REQUIRE(fc_on_aggregate(g, b % 12, id, &a, false, &err) == 0 &&
                            fc_on_weather(g, b % 12, id, h, &o, false, &err) == 0,
                        "input: %s", err.msg);
        }
    }
    HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    uint64_t before = got;
    double t0 = mono();
    for (int b = 0; b < NB; b++) { /* the round: the next hour */
        bid(b, id, sizeof id);
        hvs_feat_hour_t a = {T0, heat(b, T0), NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
        hvs_feat_wx_t o = obs(T0);
        HVS_REQUIRE(fc_on_aggregate(g, b % 12, id, &a, false, &err) == 0 &&
                        fc_on_weather(g, b % 12, id, T0, &o, false, &err) == 0,
                    "input: %s", err.msg);
        if (b % 2500 == 2499)
            HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    }
    HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    double dt = mono() - t0;
    printf("in process: one round of %llu forecasts (%llu points) in %.2f s = %.0f points/s\n",
           (unsigned long long)(got - before), (unsigned long long)(got - before) * 72, dt,
           (double)(got - before) * 72 / dt);
    HVS_CHECK(got - before == (uint64_t)NB, "one forecast per building: %llu",
              (unsigned long long)(got - before));
    fc_destroy(g);
}

/* ---- 2. the process ------------------------------------------------------------------------ */

static void send_msg(hvs_producer_t *p, const char *topic, const char *key, const void *buf,
                     size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &err) == 0,
        "send: %s", err.msg);
}

typedef struct producer {
    hvs_serde_t *s;
    hvs_producer_t *p;
    hvs_encoder_t *ea, *ew, *eb;
} producer_t;

static void enc_json(producer_t *pr, hvs_encoder_t *e, const char *json, const char *topic,
                     const char *key) {
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_value_from_json(pr->s, hvs_encoder_value(e), json, strlen(json), &err) ==
                        0 &&
                    hvs_encoder_encode(e, &buf, &len, &err) == 0,
                "%s: %s", topic, err.msg);
    send_msg(pr->p, topic, key, buf, len);
}

static void weather_msg(producer_t *pr, const char *id, hvs_ms_t hour, const hvs_feat_wx_t *w) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"latitude\":47.0,\"longitude\":8.0,\"hour\":%lld,"
             "\"issued_at\":%lld,\"kind\":\"%s\",\"temperature_c\":%.2f,"
             "\"relative_humidity_pct\":70.0,\"cloud_cover_pct\":50.0,"
             "\"shortwave_radiation_wm2\":100.0,\"wind_speed_ms\":3.0,\"provider\":\"bench\"}",
             id, (long long)hour, (long long)w->issued_at, w->observed ? "OBSERVED" : "FORECAST",
             w->temp);
    enc_json(pr, pr->ew, json, "weather.hourly", id);
}

static void aggregate_msg(producer_t *pr, int b, const char *id, hvs_ms_t h) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":null,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":3600000,\"revision\":0,"
             "\"heating_kwh\":%.4f,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":%lld}",
             id, (long long)h, (long long)(h + HOUR), heat(b, h), (long long)(h + HOUR));
    enc_json(pr, pr->ea, json, "aggregates.hourly", id);
}

static void produce_warmup(producer_t *pr, const void *rec, size_t reclen) {
    char key[160], id[32], json[1024];
    hvs_registry_key(key, sizeof key, "forecast/global", 1);
    send_msg(pr->p, "models", key, rec, reclen);
    hvs_ms_t issue = T0 - 6 * HOUR;
    for (int b = 0; b < NB; b++) {
        bid(b, id, sizeof id);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern_high_density\","
                 "\"commissioning_date\":%lld,\"latitude\":47.0,\"longitude\":8.0,"
                 "\"heated_area_m2\":%.1f,\"construction_year\":1990,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[],\"updated_at\":%lld,"
                 "\"deleted\":false}",
                 id, (long long)(T0 - 400 * 24 * HOUR), area(b), (long long)T0);
        enc_json(pr, pr->eb, json, "topology", id);
    }
    for (int b = 0; b < NB; b++) {
        bid(b, id, sizeof id);
        for (int l = 1; l <= 72; l++) {
            hvs_feat_wx_t w = run_rec(issue, issue + l * HOUR);
            weather_msg(pr, id, issue + l * HOUR, &w);
        }
        for (hvs_ms_t h = T0 - 2 * HOUR; h < T0; h += HOUR) {
            aggregate_msg(pr, b, id, h);
            hvs_feat_wx_t o = obs(h);
            weather_msg(pr, id, h, &o);
        }
    }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(pr->p, 300000, &err) == 0, "flush: %s", err.msg);
}

static void produce_round(producer_t *pr) {
    char id[32];
    for (int b = 0; b < NB; b++) {
        bid(b, id, sizeof id);
        aggregate_msg(pr, b, id, T0);
        hvs_feat_wx_t o = obs(T0);
        weather_msg(pr, id, T0, &o);
    }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(pr->p, 300000, &err) == 0, "flush: %s", err.msg);
}

/* Wait until the worker made `want` forecasts and has no lag; the metrics page then. */
static char *wait_for(const char *url, double want, int64_t timeout_ms) {
    int64_t deadline = hvs_test_now_ms() + timeout_ms;
    char *text = NULL;
    while (hvs_test_now_ms() < deadline) {
        free(text);
        text = NULL;
        if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200 &&
            hvs_test_metric(text, "hvs_forecaster_forecasts_total") >= want &&
            hvs_test_metric(text, "hvs_forecaster_consumer_lag_messages") == 0)
            return text;
        usleep(20000);
    }
    free(text);
    return NULL;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    if (getenv("BENCH_FC_BUILDINGS"))
        NB = atoi(getenv("BENCH_FC_BUILDINGS"));
    hvs_serde_t *s;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_model_t *m = train();
    void *rec;
    size_t reclen;
    served = serve(s, m, &rec, &reclen);
    in_process();

    hvs_test_proc_t redis, broker, fc;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    producer_t pr = {.s = s};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "bench"};
    HVS_REQUIRE(hvs_producer_new(&kc, &pr.p, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &pr.ea, &err) ==
                        0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_WEATHER, "weather.hourly", &pr.ew, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_BUILDING, "topology", &pr.eb, &err) == 0,
                "producer: %s", err.msg);
    produce_warmup(&pr, rec, reclen);
    int port = hvs_test_free_port();
    char cmd[2048], log[] = "/tmp/hvs-bench-fc-XXXXXX";
    close(mkstemp(log));
    snprintf(cmd, sizeof cmd,
             "env HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=%d HVS_LOG_LEVEL=error %s %s",
             broker.addr, redis.addr, port, getenv("BENCH_ENV") ? getenv("BENCH_ENV") : "",
             HVS_TEST_FORECASTER);
    HVS_REQUIRE(hvs_test_spawn(&fc, cmd, log) == 0, "spawn");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    double t0 = mono();
    char *text = wait_for(url, 2.0 * NB, 600000);
    HVS_REQUIRE(text, "warm-up: two rounds of %d forecasts", NB);
    double warm = mono() - t0, mem0 = hvs_test_redis_used(&redis);
    double made = hvs_test_metric(text, "hvs_forecaster_forecasts_total");
    printf("warm-up: %d buildings x (72 run records + 2 hours) consumed, %.0f forecasts made, in "
           "%.1f s\n",
           NB, made, warm);
    HVS_CHECK(made == 2.0 * NB, "two issue times per building in the warm-up: %.0f", made);
    free(text);
    double cpu0 = hvs_test_cpu_seconds(fc.pid);
    t0 = mono();
    produce_round(&pr);
    text = wait_for(url, made + NB, 600000);
    double dt = mono() - t0, cpu = hvs_test_cpu_seconds(fc.pid) - cpu0;
    HVS_CHECK(text != NULL, "the round's %d forecasts made", NB);
    if (text) {
        printf("hvs-forecaster, one hourly round for %d buildings (aggregate + observation each, "
               "72 points out): %.2f s from its first input produced to its last forecast "
               "committed = %.0f points/s; worker CPU %.2f s\n",
               NB, dt, 72.0 * NB / dt, cpu);
        printf("batch (poll to commit): p50 <= %.3f s, p99 <= %.3f s\n",
               hvs_test_hist_quantile(text, "hvs_forecaster_batch_seconds", 0.5),
               hvs_test_hist_quantile(text, "hvs_forecaster_batch_seconds", 0.99));
        hvs_test_print_phases(text, "forecaster");
        printf("Redis: %.1f MB of forecaster state for %d buildings = %.1f KB each\n", mem0 / 1e6,
               NB, mem0 / NB / 1e3);
    }
    free(text);
    hvs_test_proc_stop(&fc);
    unlink(log);
    hvs_encoder_destroy(pr.ea), hvs_encoder_destroy(pr.ew), hvs_encoder_destroy(pr.eb);
    hvs_producer_destroy(pr.p);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_registry_release(served);
    hvs_model_destroy(m);
    free(rec);
    hvs_serde_destroy(s);
    return hvs_test_done();
}
