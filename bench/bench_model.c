/*
 * bench_model - the model path of issue 6:
 *   1. Training: 1 M rows x 40 features (the first 40 of the feature definition, values shaped
 *      like them: temperature, hour, lags, NaN for 2 % missing) on 2 threads with the trainer's
 *      parameters (hist, eta 0.05, depth 6, early stopping on the last 10 %): seconds, rounds,
 *      seconds per round.
 *   2. Model bytes: UBJ, zlib, and the whole ModelVersion record (profile included).
 *   3. Serving: the record published on hvs-devbroker's `models`, a registry client validates
 *      and loads it; then acquire -> predict -> release per call at batch 1, 64 and 4096 rows:
 *      rows/s and call latency p50/p99, one thread and two threads sharing the model; then the
 *      same model and rows straight from XGBoost (in-place, one thread) and the registry path's
 *      share of that rate.
 * Prints its figures; fails only when a step fails (a benchmark, not a timed test).
 */
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#include <xgboost/c_api.h>

#define NROWS 1000000
#define NCOLS 40
#define NAME "forecast/global"

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;
static double uni(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Rows with a heating-like target: degree hours times an hourly profile, lag-correlated, noisy. */
static void make_rows(float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * NCOLS;
        double temp = 5 + 12 * sin(i * 2e-5) + 6 * (uni() - 0.5), hour = (double)(i % 24);
        double level = fmax(0, 18 - temp) * (0.8 + 0.4 * (hour >= 6 && hour <= 22));
        for (int k = 0; k < NCOLS; k++)
            r[k] = (float)(uni() * 10);
        r[0] = (float)temp;
        r[1] = (float)hour;
        r[2] = (float)sin(hour * M_PI / 12);
        r[3] = (float)(level * (0.9 + 0.2 * uni()));  /* lag 24 */
        r[4] = (float)(level * (0.85 + 0.3 * uni())); /* lag 168 */
        r[5] = (float)fmax(0, 18 - temp);
        for (int k = 6; k < NCOLS; k++)
            if (uni() < 0.02)
                r[k] = NAN;
        y[i] = (float)(level * (1 + 0.1 * (uni() - 0.5)));
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct job {
    hvs_registry_t *reg;
    const float *x;
    size_t batch, calls;
    double *lat; /* calls entries, seconds */
    float *out;
    int failed;
} job_t;

static void *serve(void *p) {
    job_t *j = p;
    hvs_err_t err = {0};
    for (size_t c = 0; c < j->calls; c++) {
        double t = mono();
        hvs_model_ref_t *ref = hvs_registry_acquire(j->reg, NAME);
        if (!ref || hvs_model_predict(ref->model, j->x + (c * j->batch % 8192) * NCOLS, j->batch,
                                      j->out, &err) != 0)
            j->failed++;
        hvs_registry_release(ref);
        j->lat[c] = mono() - t;
    }
    return NULL;
}

/* Rows per second of one serving round (printed with its latencies). */
static double serving_round(hvs_registry_t *reg, const float *x, size_t batch, int threads) {
    size_t calls = batch == 1 ? 20000 : batch == 64 ? 4000 : 120;
    job_t jobs[2];
    pthread_t th[2];
    double t0 = mono();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job_t){
            reg, x, batch, calls, calloc(calls, sizeof(double)), malloc(batch * sizeof(float)), 0};
        HVS_REQUIRE(jobs[t].lat && jobs[t].out &&
                        pthread_create(&th[t], NULL, serve, &jobs[t]) == 0,
                    "thread");
    }
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        failed += jobs[t].failed;
    }
    double dt = mono() - t0;
    size_t nl = calls * (size_t)threads;
    double *all = malloc(nl * sizeof(double));
    HVS_REQUIRE(all, "alloc");
    for (int t = 0; t < threads; t++) {
        memcpy(all + t * calls, jobs[t].lat, calls * sizeof(double));
        free(jobs[t].lat);
        free(jobs[t].out);
    }
    qsort(all, nl, sizeof(double), cmp_d);
    printf(
        "serve batch %4zu, %d thread%s: %9.0f rows/s, %7.0f calls/s, call p50 %.3f ms, p99 %.3f ms%s\n",
        batch, threads, threads > 1 ? "s" : " ", (double)(nl * batch) / dt, nl / dt,
        1e3 * all[nl / 2], 1e3 * all[nl * 99 / 100], failed ? " FAILED CALLS" : "");
    HVS_CHECK(failed == 0, "batch %zu: %d failed calls", batch, failed);
    free(all);
    return (double)(nl * batch) / dt;
}

/* The same model straight from XGBoost (its UBJ bytes loaded into a booster of our own, one
 * thread, in-place dense prediction over the same rows, output not copied): what the registry
 * path is measured against. Rows per second. */
static double raw_xgboost(const unsigned char *ubj, size_t lu, const float *x, size_t batch) {
    BoosterHandle bst = NULL;
    HVS_REQUIRE(XGBoosterCreate(NULL, 0, &bst) == 0 &&
                    XGBoosterLoadModelFromBuffer(bst, ubj, (bst_ulong)lu) == 0 &&
                    XGBoosterSetParam(bst, "nthread", "1") == 0,
                "raw booster: %s", XGBGetLastError());
    const char *conf = "{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
                       "\"strict_shape\":false,\"missing\":NaN,\"cache_id\":0}";
    size_t calls = batch == 1 ? 20000 : batch == 64 ? 4000 : 120;
    double t0 = mono();
    for (size_t c = 0; c < calls; c++) {
        char arr[256];
        snprintf(arr, sizeof arr,
                 "{\"data\":[%llu,true],\"shape\":[%zu,%d],\"typestr\":\"<f4\",\"version\":3}",
                 (unsigned long long)(uintptr_t)(x + (c * batch % 8192) * NCOLS), batch, NCOLS);
        const bst_ulong *shape = NULL;
        bst_ulong dim = 0;
        const float *res = NULL;
        HVS_REQUIRE(XGBoosterPredictFromDense(bst, arr, conf, NULL, &shape, &dim, &res) == 0,
                    "raw predict: %s", XGBGetLastError());
    }
    double rate = (double)(calls * batch) / (mono() - t0);
    XGBoosterFree(bst);
    return rate;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_WARN, NULL);
    float *x = malloc((size_t)NROWS * NCOLS * sizeof(float)), *y = malloc(NROWS * sizeof(float));
    HVS_REQUIRE(x && y, "alloc %zu MB", (size_t)NROWS * NCOLS * 4 >> 20);
    make_rows(x, y, NROWS);

    /* 1. training, the trainer's way: the last 10 % of rows (in time) drive early stopping */
    size_t nv = NROWS / 10, nt = NROWS - nv;
    hvs_train_params_t p = {.rounds = 600, .eta = 0.05, .max_depth = 6, .nthread = 2, .seed = 1};
    hvs_model_t *m;
    hvs_train_report_t rep = {0};
    hvs_err_t err = {0};
    double t0 = mono();
    HVS_REQUIRE(
        hvs_model_train(x, y, NULL, nt, NCOLS, x + nt * NCOLS, y + nt, nv, &p, &m, &rep, &err) == 0,
        "train: %s", err.msg);
    double dt = mono() - t0;
    printf(
        "train %d rows x %d features, 2 threads, eta 0.05 depth 6: %.1f s, %d rounds kept (early "
        "stopping), ~%.0f ms per round, validation RMSE %.3f\n",
        NROWS, NCOLS, dt, rep.rounds, 1e3 * dt / fmin(600, rep.rounds + 30), rep.valid_metric);

    /* 2. bytes */
    unsigned char *ubj, *z;
    size_t lu, lz;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 &&
                    hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0,
                "save: %s", err.msg);
    const char *const *all = hvs_features_names();
    static double q[NCOLS][7], pr[7] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};
    hvs_feature_profile_t prof[NCOLS];
    for (int k = 0; k < NCOLS; k++) {
        for (int i = 0; i < 7; i++)
            q[k][i] = x[(size_t)(pr[i] * 1000) * NCOLS + k];
        qsort(q[k], 7, sizeof(double), cmp_d);
        for (int i = 0; i < 7; i++)
            if (!isfinite(q[k][i]))
                q[k][i] = 0;
        prof[k] = (hvs_feature_profile_t){all[k], q[k], pr, 7, 0.0};
    }
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    static const char *const pprops[] = {"message.max.bytes", HVS_TOPIC_MODELS_MAX_MESSAGE_STR,
                                         NULL};
    hvs_kafka_conf_t kc = {.brokers = broker.addr,
                           .client_id = "bench",
                           .fetch_wait_max_ms = 10,
                           .worker_props = pprops};
    hvs_serde_t *serde;
    hvs_producer_t *prod;
    hvs_encoder_t *enc;
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "setup: %s", err.msg);
    const char *params[] = {"eta", "0.05", "max_depth", "6", NULL};
    hvs_model_record_t rec = {.name = NAME,
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = all,
                              .nfeatures = NCOLS,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, 0.2, 1, 1, NAN, NAN, (int)nv},
                              .profile = prof,
                              .nprofile = NCOLS,
                              .params = params,
                              .model = z,
                              .model_len = lz,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0, "encode: %s",
                err.msg);
    printf(
        "model bytes: UBJ %zu, zlib %zu (%.1f x smaller), ModelVersion record %zu (%d trees of depth "
        "<= 6)\n",
        lu, lz, (double)lu / (double)lz, len, rep.rounds);

    /* 3. serving through the registry client */
    char key[128];
    hvs_registry_key(key, sizeof key, NAME, 1);
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish: %s", err.msg);
    hvs_registry_opts_t opts = {.load_models = true};
    hvs_registry_t *reg;
    HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &opts, &reg, &err) == 0, "registry: %s",
                err.msg);
    t0 = mono();
    for (int i = 0; i < 400 && hvs_registry_active_version(reg, NAME) != 1; i++)
        hvs_registry_poll(reg, 50);
    HVS_REQUIRE(hvs_registry_active_version(reg, NAME) == 1, "v1 does not serve (refused %llu)",
                (unsigned long long)hvs_registry_refused(reg));
    printf("registry: version fetched, decompressed, loaded and validated in %.0f ms\n",
           1e3 * (mono() - t0));
    /* the served model predicts what the trained one does */
    float a[64], b[64];
    hvs_model_ref_t *ref = hvs_registry_acquire(reg, NAME);
    HVS_REQUIRE(ref && hvs_model_predict(ref->model, x, 64, a, &err) == 0 &&
                    hvs_model_predict(m, x, 64, b, &err) == 0,
                "predict");
    hvs_registry_release(ref);
    HVS_CHECK(memcmp(a, b, sizeof a) == 0, "served model predicts as trained");
    size_t batches[3] = {1, 64, 4096};
    for (int t = 1; t <= 2; t++)
        for (int i = 0; i < 3; i++) {
            double r = serving_round(reg, x, batches[i], t);
            if (t > 1)
                continue;
            /* right after the registry's round, so both see the same machine */
            double raw = raw_xgboost(ubj, lu, x, batches[i]);
            printf("    raw XGBoost in-place, batch %4zu, 1 thread: %9.0f rows/s; through the "
                   "registry: %.0f %% of it\n",
                   batches[i], raw, 100 * r / raw);
        }

    hvs_registry_destroy(reg);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
    hvs_model_destroy(m);
    free(ubj);
    free(z);
    free(x);
    free(y);
    return hvs_test_done();
}
