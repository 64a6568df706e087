/*
 * bench_scorer - apartment-hours scored per second.
 *   1. In process: the scorer's batch (batch.h: rows built by task_rows.h, one prediction call
 *      per model, the residual standardised against the ring, the rules' slots) over 20
 *      buildings x 50 apartments x 48 hours with an anomaly-residual and an anomaly-classifier
 *      of the trainer's size (up to 300 rounds, depth 6): rows/s and microseconds per row, and
 *      what TreeSHAP costs for the rows explained (model evidence >= HVS_SCORE_EXPLAIN_MIN).
 *   2. The process: the same apartment-hours (aggregate with two rooms + feature vector each)
 *      on hvs-devbroker as Avro, the models on `models`, then one hvs-scorer with redis-server
 *      on the same machine: apartment-hours/s from its first input to its last score, its CPU
 *      time, batch latency, and Redis bytes per apartment of state.
 */
#include <math.h>
#include <signal.h>
#include <time.h>

#include "batch.h"
#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733011200000LL
#define NB 20
#define NA 50
#define HOURS 48

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double outdoor(int i) { return 2.0 + 6.0 * sin(2 * M_PI * (i % 24) / 24.0); }
static double heat(int b, int a, int i) {
    return 0.1 + 0.05 * fmax(0, 18 - outdoor(i)) + 0.01 * ((a * 7 + b * 3 + i) % 9) +
           (a == 7 && i > 30 ? 1.5 : 0); /* one apartment per building goes wrong */
}

/* The feature vector of an apartment-hour (what the features worker would send). */
static void vector_of(int b, int a, int i, double *x) {
    for (int k = 0; k < HVS_FEATURES_COUNT; k++)
        x[k] = NAN;
    double t = outdoor(i);
    x[hvs_features_index("hour")] = i % 24;
    x[hvs_features_index("temperature_c")] = t;
    x[hvs_features_index("hdh")] = fmax(0, 18 - t);
    x[hvs_features_index("use_lag_24")] = heat(b, a, i - 24);
    x[hvs_features_index("use_roll_24_mean")] = heat(b, a, i - 1) * 0.9;
    x[hvs_features_index("room_temp_c")] = 20.5 + 0.1 * (a % 5);
    x[hvs_features_index("setpoint_c")] = 21.0;
    x[hvs_features_index("comfort_gap_c")] = 0.5 - 0.1 * (a % 5);
}

static hvs_model_t *train(hvs_task_t task) {
    enum { N = 20000 };
    size_t nc = hvs_taskrow_ncols(task);
    float *x = malloc(sizeof(float) * N * nc), *y = malloc(sizeof(float) * N);
    double xv[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
    hvs_err_t err = {0};
    HVS_REQUIRE(x && y, "oom");
    for (int k = 0; k < N; k++) {
        int b = k % NB, a = (k / NB) % NA, i = k % 500;
        vector_of(b, a, i, xv);
        HVS_REQUIRE(hvs_taskrow_build(task, xv, 900, row, &err) == 0, "row");
        for (size_t j = 0; j < nc; j++)
            x[k * nc + j] = (float)row[j];
        y[k] = task == HVS_TASK_ANOMALY_RESIDUAL ? (float)heat(b, a, i) : (float)(a == 7 && i > 30);
    }
    hvs_train_params_t p = {.rounds = 300,
                            .early_stopping = 1000,
                            .max_depth = 6,
                            .nthread = 2,
                            .objective = task == HVS_TASK_ANOMALY_RESIDUAL ? NULL
                                                                           : "binary:logistic"};
    hvs_model_t *m;
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, nc, x, y, N / 10, &p, &m, NULL, &err) == 0,
                "train: %s", err.msg);
    free(x), free(y);
    return m;
}

/* A served version of m as the registry would hand it out. */
static hvs_model_ref_t *serve(hvs_serde_t *s, hvs_encoder_t *enc, const char *name, hvs_task_t task,
                              hvs_model_t *m, const void **rec, size_t *reclen) {
    hvs_err_t err = {0};
    unsigned char *ubj, *z;
    size_t lu, lz, nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 &&
                    hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0,
                "save");
    const char *params[] = {"target_scale", hvs_taskrow_scale_name(hvs_taskrow_scale(task)), NULL};
    hvs_model_record_t r = {.name = name,
                            .version = 1,
                            .status = HVS_MODEL_APPROVED,
                            .features = cols,
                            .nfeatures = nc,
                            .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                            .params = params,
                            .model = z,
                            .model_len = lz,
                            .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    hvs_model_ref_t *ref;
    HVS_REQUIRE(hvs_registry_encode(s, enc, &r, &buf, &len, &err) == 0, "encode: %s", err.msg);
    void *copy = malloc(len);
    memcpy(copy, buf, len);
    *rec = copy;
    *reclen = len;
    HVS_REQUIRE(hvs_registry_load_record(s, copy, len, &ref, &err) == 0, "load: %s", err.msg);
    free(ubj), free(z);
    return ref;
}

static int count_emit(void *o, sc_building_t *b, sc_apartment_t *a, hvs_ms_t hour, hvs_err_t *err) {
    (void)b, (void)a, (void)hour, (void)err;
    (*(size_t *)o)++;
    return 0;
}
static int count_finding(void *o, const sc_finding_t *f, hvs_err_t *err) {
    (void)o, (void)f, (void)err;
    return 0;
}

static void in_process(hvs_model_ref_t *res, hvs_model_ref_t *cls) {
    sc_state_t *st = sc_state_new();
    sc_batch_t *bt = sc_batch_new();
    sc_watch_conf_t wc;
    sc_watch_conf_default(&wc);
    sc_watches_t *ws = sc_watches_new(&wc);
    sc_score_conf_t c;
    sc_score_conf_default(&c);
    size_t emitted = 0;
    sc_batch_hooks_t hooks = {count_emit, count_finding, &emitted};
    sc_vector_t v = {0};
    hvs_err_t err = {0};
    double t0 = mono();
    size_t n = 0;
    for (int i = 0; i < HOURS; i++)
        for (int b = 0; b < NB; b++) {
            snprintf(v.building, sizeof v.building, "bldg_%02d", b);
            for (int a = 0; a < NA; a++) {
                snprintf(v.apartment, sizeof v.apartment, "apt_%02d", a);
                v.hour = T0 + i * HOUR;
                v.revision = 2;
                v.target = heat(b, a, i);
                vector_of(b, a, i, v.x);
                HVS_REQUIRE(sc_batch_add(bt, &v, b % 12, false, res, cls, 900, &err) == 0, "add");
                n++;
                if (sc_batch_size(bt) == 5000)
                    HVS_REQUIRE(sc_batch_run(bt, st, ws, &c, &hooks, &err) == 0, "run: %s",
                                err.msg);
            }
        }
    HVS_REQUIRE(sc_batch_run(bt, st, ws, &c, &hooks, &err) == 0, "run: %s", err.msg);
    double dt = mono() - t0;
    const sc_batch_stats_t *bs = sc_batch_stats(bt);
    printf("in process: %zu apartment-hours (residual + classifier, 300 x depth-6 trees each) in "
           "%.2f s = %.0f rows/s, %.1f us per row; %llu explained by TreeSHAP (%.2f %% of rows) "
           "costing %.2f s = %.0f %% of the time, %.2f ms per explained row\n",
           n, dt, (double)n / dt, dt / (double)n * 1e6, (unsigned long long)bs->explained,
           100.0 * (double)bs->explained / (double)n, bs->explain_seconds,
           100.0 * bs->explain_seconds / dt,
           bs->explained ? bs->explain_seconds / (double)bs->explained * 1e3 : 0.0);
    HVS_CHECK(emitted == n, "every row emitted (%zu of %zu)", emitted, n);
    sc_watches_destroy(ws);
    sc_batch_destroy(bt);
    sc_state_destroy(st);
}

static void send_msg(hvs_producer_t *p, const char *topic, const char *key, const void *buf,
                     size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &err) == 0,
        "send: %s", err.msg);
}

static size_t produce(hvs_serde_t *s, const char *brokers, const void *const *recs,
                      const size_t *lens, const char *const *names) {
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "bench"};
    hvs_producer_t *p;
    hvs_encoder_t *ea, *ev, *eb;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &ea, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, "features.hourly", &ev, &err) ==
                        0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_BUILDING, "topology", &eb, &err) == 0,
                "setup: %s", err.msg);
    for (int k = 0; k < 2; k++) {
        char key[160];
        hvs_registry_key(key, sizeof key, names[k], 1);
        send_msg(p, "models", key, recs[k], lens[k]);
    }
    const void *buf;
    size_t len;
    char json[2048], bid[32], apt[32];
    for (int b = 0; b < NB; b++) {
        snprintf(bid, sizeof bid, "bldg_%02d", b);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"old\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.0,\"longitude\":8.0,\"heated_area_m2\":900.0,"
                 "\"construction_year\":1970,\"insulation\":null,\"holiday_region\":\"CH-ZH\","
                 "\"apartments\":[],\"updated_at\":%lld,\"deleted\":false}",
                 bid, (long long)(T0 - 400 * 24 * HOUR), (long long)T0);
        HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(eb), json, strlen(json), &err) ==
                            0 &&
                        hvs_encoder_encode(eb, &buf, &len, &err) == 0,
                    "building: %s", err.msg);
        send_msg(p, "topology", bid, buf, len);
    }
    const char *const *fnames = hvs_features_names();
    size_t n = 0;
    double x[HVS_FEATURES_COUNT];
    for (int i = 0; i < HOURS; i++)
        for (int b = 0; b < NB; b++) {
            snprintf(bid, sizeof bid, "bldg_%02d", b);
            for (int a = 0; a < NA; a++) {
                snprintf(apt, sizeof apt, "apt_%02d", a);
                hvs_ms_t h = T0 + i * HOUR;
                snprintf(
                    json, sizeof json,
                    "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"window_start\":%lld,"
                    "\"window_end\":%lld,\"window_size_ms\":3600000,\"revision\":0,"
                    "\"heating_kwh\":%.4f,\"quality\":\"COMPLETE\",\"flags\":[],"
                    "\"emitted_at\":%lld,\"rooms\":[{\"room\":\"bedroom\",\"temp_mean_c\":20.0,"
                    "\"setpoint_mean_c\":20.0,\"valve_mean_pct\":25.0,\"readings_seen\":5,"
                    "\"temp_changes\":3},{\"room\":\"living_room\",\"temp_mean_c\":21.0,"
                    "\"setpoint_mean_c\":21.0,\"valve_mean_pct\":%.1f,\"readings_seen\":5,"
                    "\"temp_changes\":%d}]}",
                    bid, apt, (long long)h, (long long)(h + HOUR), heat(b, a, i),
                    (long long)(h + HOUR), a == 9 ? 100.0 : 30.0, a == 11 ? 0 : 3);
                HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(ea), json, strlen(json),
                                                      &err) == 0 &&
                                hvs_encoder_encode(ea, &buf, &len, &err) == 0,
                            "aggregate: %s", err.msg);
                send_msg(p, "aggregates.hourly", bid, buf, len);
                vector_of(b, a, i, x);
                avro_value_t *v = hvs_encoder_value(ev), f, item, br;
                int bad = avro_value_get_by_name(v, "building_id", &f, NULL) ||
                          avro_value_set_string(&f, bid) ||
                          avro_value_get_by_name(v, "apartment_id", &f, NULL) ||
                          avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, apt) ||
                          avro_value_get_by_name(v, "target_hour", &f, NULL) ||
                          avro_value_set_long(&f, h) ||
                          avro_value_get_by_name(v, "as_of", &f, NULL) ||
                          avro_value_set_long(&f, h + 2 * HOUR) ||
                          avro_value_get_by_name(v, "feature_set_version", &f, NULL) ||
                          avro_value_set_string(&f, hvs_features_version()) ||
                          avro_value_get_by_name(v, "target", &f, NULL) ||
                          avro_value_set_branch(&f, 1, &br) ||
                          avro_value_set_double(&br, heat(b, a, i)) ||
                          avro_value_get_by_name(v, "revision", &f, NULL) ||
                          avro_value_set_int(&f, 2);
                for (int k = 0; !bad && k < HVS_FEATURES_COUNT; k++)
                    bad = avro_value_get_by_name(v, "names", &f, NULL) ||
                          avro_value_append(&f, &item, NULL) ||
                          avro_value_set_string(&item, fnames[k]) ||
                          avro_value_get_by_name(v, "values", &f, NULL) ||
                          avro_value_append(&f, &item, NULL) || avro_value_set_double(&item, x[k]);
                HVS_REQUIRE(!bad && hvs_encoder_encode(ev, &buf, &len, &err) == 0, "vector");
                send_msg(p, "features.hourly", bid, buf, len);
                n++;
            }
        }
    HVS_REQUIRE(hvs_producer_flush(p, 120000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(ea), hvs_encoder_destroy(ev), hvs_encoder_destroy(eb);
    hvs_producer_destroy(p);
    return n;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_serde_t *s;
    hvs_encoder_t *enc;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "serde");
    const char *names[2] = {"anomaly-residual/global", "anomaly-classifier/global"};
    hvs_model_t *mr = train(HVS_TASK_ANOMALY_RESIDUAL), *mc = train(HVS_TASK_ANOMALY_CLASSIFIER);
    const void *recs[2];
    size_t lens[2];
    hvs_model_ref_t *res = serve(s, enc, names[0], HVS_TASK_ANOMALY_RESIDUAL, mr, &recs[0],
                                 &lens[0]);
    hvs_model_ref_t *cls = serve(s, enc, names[1], HVS_TASK_ANOMALY_CLASSIFIER, mc, &recs[1],
                                 &lens[1]);
    in_process(res, cls);
    hvs_registry_release(res);
    hvs_registry_release(cls);

    hvs_test_proc_t redis, broker, sc;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    size_t n = produce(s, broker.addr, recs, lens, names);
    double mem0 = hvs_test_redis_used(&redis);
    int port = hvs_test_free_port();
    char cmd[2048], log[] = "/tmp/hvs-bench-sc-XXXXXX";
    close(mkstemp(log));
    const char *wrap = getenv("BENCH_WRAP"); /* e.g. a profiler; not an HVS_* name */
    snprintf(
        cmd, sizeof cmd,
        "env HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_HTTP_PORT=%d "
        "HVS_LOG_LEVEL=error %s %s %s",
        broker.addr, redis.addr, port, getenv("BENCH_ENV") ? getenv("BENCH_ENV") : "",
        wrap ? wrap : "", HVS_TEST_SCORER);
    HVS_REQUIRE(hvs_test_spawn(&sc, cmd, log) == 0, "spawn");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    int64_t t_first = 0, t_last = 0, deadline = hvs_test_now_ms() + 400000;
    double cpu_first = 0, scores = 0;
    char *text = NULL;
    while (hvs_test_now_ms() < deadline) {
        free(text);
        text = NULL;
        if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200) {
            double in = hvs_test_metric(text, "hvs_scorer_inputs_total{topic=\"aggregates\"}");
            scores = hvs_test_metric(text,
                                     "hvs_scorer_scores_by_strategy_total{strategy=\"combined\"}");
            if (in > 0 && !t_first) {
                t_first = hvs_test_now_ms();
                cpu_first = hvs_test_cpu_seconds(sc.pid);
            }
            /* every vector is scored at least once (aggregates arriving later re-emit) */
            double v = hvs_test_metric(text, "hvs_scorer_inputs_total{topic=\"features\"}");
            double lag = hvs_test_metric(text, "hvs_scorer_consumer_lag_messages");
            if (v >= (double)n && lag == 0) {
                t_last = hvs_test_now_ms();
                break;
            }
        }
        usleep(20000);
    }
    double cpu = hvs_test_cpu_seconds(sc.pid) - cpu_first;
    HVS_CHECK(t_last > 0, "hvs-scorer consumed all %zu vectors (%.0f combined scores)", n, scores);
    double dt = (double)(t_last - t_first) / 1000.0;
    printf("hvs-scorer, %zu apartment-hours (aggregate + vector each) from hvs-devbroker: %.2f s = "
           "%.0f apartment-hours/s; worker CPU %.2f s (%.0f per CPU-second); %.0f scores "
           "published\n",
           n, dt, (double)n / dt, cpu, (double)n / cpu,
           hvs_test_metric(text, "hvs_scorer_scores_total"));
    if (text) {
        printf("batch (poll to commit, up to 5000 inputs): p50 <= %.3f s, p99 <= %.3f s; "
               "explained %.0f\n",
               hvs_test_hist_quantile(text, "hvs_scorer_batch_seconds", 0.5),
               hvs_test_hist_quantile(text, "hvs_scorer_batch_seconds", 0.99),
               hvs_test_metric(text, "hvs_scorer_explained_total"));
        hvs_test_print_phases(text, "scorer");
    }
    double mem = hvs_test_redis_used(&redis) - mem0;
    printf("Redis: %.1f MB of scorer state for %d apartments = %.1f KB each (%d-hour rings)\n",
           mem / 1e6, NB * NA, mem / (NB * NA) / 1e3, SC_RING);
    hvs_test_redis_kinds(redis.addr, "Redis by key kind", NB * NA, "apartment");
    free(text);
    hvs_test_proc_stop(&sc);
    unlink(log);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_model_destroy(mr), hvs_model_destroy(mc);
    free((void *)recs[0]), free((void *)recs[1]);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(s);
    return hvs_test_done();
}
