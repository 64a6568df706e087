/*
 * test_model_registry_it - the model registry through a real hvs-devbroker: versions published as
 * ModelVersion records (key "<name>#<version>"); the client serves the highest approved one,
 * validated; a pending version does not serve until approved (re-published with its new
 * status); a corrupt version and one of another feature set are refused while the previous
 * keeps serving; archiving the champion (rollback) brings the previous approved version back;
 * two threads predicting without pause through a swap never fail and end on the new version;
 * a new client replaying the topic serves what the old one did; export bytes load and predict
 * like the served model.
 * hvs-linear (refresh/global, inputs horizon_h and two recent errors that are not features):
 * an approved version serves and predicts the arithmetic of its coefficients worked out here;
 * a record whose model_format disagrees with its bytes (either way), an XGBoost record naming
 * a non-feature, and a linear one whose probe row has no horizon are refused while the
 * previous version keeps serving; a newer linear version then swaps in.
 * Target scale: a version of params.target_scale "per_parsec" is refused (unknown_target_scale)
 * while the per_heated_m2 one keeps serving; one without the parameter serves as kWh.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define NF 5
#define NAME "anomaly-residual/global"

static const char *feats[NF] = {"temperature_c", "hour", "use_lag_24", "hdh", "is_weekend"};
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc;
static hvs_test_proc_t broker;

/* A model of y = scale * x0 + x1 on random rows: its version shows in its predictions. */
static void train(double scale, unsigned char **z, size_t *zl) {
    enum { N = 800 };
    static float x[N * NF], y[N];
    uint64_t s = 5;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < NF; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            x[i * NF + k] = (float)((s >> 11) % 1000) / 100.0f;
        }
        y[i] = (float)(scale * x[i * NF] + x[i * NF + 1]);
    }
    hvs_train_params_t p = {.rounds = 60, .eta = 0.3, .max_depth = 4, .nthread = 1};
    hvs_model_t *m;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, NF, NULL, NULL, 0, &p, &m, NULL, &err) == 0,
                "train");
    unsigned char *ubj;
    size_t lu;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 &&
                    hvs_zlib_compress(ubj, lu, z, zl, &err) == 0,
                "save");
    free(ubj);
    hvs_model_destroy(m);
}

static void publish(int version, hvs_model_status_t status, const unsigned char *z, size_t zl) {
    static const double q[3] = {1, 5, 9}, pr[3] = {0.1, 0.5, 0.9};
    hvs_feature_profile_t prof[NF];
    for (int i = 0; i < NF; i++)
        prof[i] = (hvs_feature_profile_t){feats[i], q, pr, 3, 0.0};
    const char *params[] = {"eta", "0.3", NULL};
    hvs_model_record_t rec = {.name = NAME,
                              .version = version,
                              .status = status,
                              .features = feats,
                              .nfeatures = NF,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, 0.1 * version, 1, 1, NAN, NAN, 100},
                              .profile = prof,
                              .nprofile = NF,
                              .params = params,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    char key[128];
    hvs_registry_key(key, sizeof key, NAME, version);
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0 &&
                    hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                      len, &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish v%d: %s", version, err.msg);
}

static void send_raw(int version, const void *buf, size_t len) {
    char key[128];
    hvs_err_t err = {0};
    hvs_registry_key(key, sizeof key, NAME, version);
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "send: %s", err.msg);
}

/* The served version after polling until it is `want` (or 10 s). */
static int serving(hvs_registry_t *r, int want) {
    for (int i = 0; i < 100; i++) {
        hvs_registry_poll(r, 0);
        if (hvs_registry_active_version(r, NAME) == want)
            break;
        usleep(50000);
    }
    return hvs_registry_active_version(r, NAME);
}

static double predict(hvs_registry_t *r) {
    hvs_model_ref_t *ref = hvs_registry_acquire(r, NAME);
    if (!ref)
        return NAN;
    float row[NF] = {2, 3, 1, 1, 0}, out = NAN;
    hvs_err_t err;
    hvs_model_predict(ref->model, row, 1, &out, &err);
    hvs_registry_release(ref);
    return out;
}

static const hvs_model_info_t *info(hvs_registry_t *r, int version) {
    size_t n;
    const hvs_model_info_t *v = hvs_registry_versions(r, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i].version == version)
            return &v[i];
    return NULL;
}

/* Poll until version v is known with status st (or 10 s). */
static const hvs_model_info_t *wait_known(hvs_registry_t *r, int v, int st) {
    for (int i = 0; i < 200; i++) {
        hvs_registry_poll(r, 0);
        const hvs_model_info_t *x = info(r, v);
        if (x && (st < 0 || (int)x->status == st))
            return x;
        usleep(50000);
    }
    return info(r, v);
}

static void restatus(hvs_registry_t *r, int version, hvs_model_status_t st, const char *reason) {
    const hvs_model_info_t *i = info(r, version);
    HVS_REQUIRE(i && i->record, "v%d known", version);
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_registry_restatus(serde, enc, i->record, i->record_len, st, "test", reason,
                                      1234, &buf, &len, &err) == 0,
                "restatus: %s", err.msg);
    send_raw(version, buf, len);
}

typedef struct worker_arg {
    hvs_registry_t *r;
    atomic_int stop, failed, last_version;
    atomic_long calls;
} worker_arg_t;

static void *predictor(void *p) {
    worker_arg_t *a = p;
    float rows[64 * NF];
    for (int i = 0; i < 64 * NF; i++)
        rows[i] = (float)(i % 7);
    while (!atomic_load(&a->stop)) {
        hvs_model_ref_t *ref = hvs_registry_acquire(a->r, NAME);
        float out[64];
        hvs_err_t err;
        if (!ref || hvs_model_predict(ref->model, rows, 64, out, &err) || !isfinite(out[0]))
            atomic_fetch_add(&a->failed, 1);
        else
            atomic_store(&a->last_version, ref->version);
        hvs_registry_release(ref);
        atomic_fetch_add(&a->calls, 1);
    }
    return NULL;
}

/* ---- hvs-linear ---------------------------------------------------------------------------- */

#define LNAME "refresh/global"
#define LNF 3

static const char *lfeats[LNF] = {"horizon_h", "err_lag_1", "err_lag_2"};

/* Any record of LNAME: its features, format and compressed bytes; medians 2 (horizon), 0 (the
 * errors), only for the first nprof features. */
static void publish_as(int version, const char *fmt, const char *const *names, size_t nf,
                       size_t nprof, const unsigned char *z, size_t zl) {
    static const double qh[3] = {1, 2, 3}, qe[3] = {-1, 0, 1}, pr[3] = {0.1, 0.5, 0.9};
    hvs_feature_profile_t prof[NF];
    for (size_t i = 0; i < nprof && i < NF; i++)
        prof[i] = (hvs_feature_profile_t){names[i], i == 0 ? qh : qe, pr, 3, 0.0};
    hvs_model_record_t rec = {.name = LNAME,
                              .version = version,
                              .status = HVS_MODEL_APPROVED,
                              .features = names,
                              .nfeatures = nf,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .profile = prof,
                              .nprofile = nprof,
                              .model_format = fmt,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    char key[128];
    hvs_registry_key(key, sizeof key, LNAME, version);
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0 &&
                    hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                      len, &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s v%d: %s", LNAME, version, err.msg);
}

/* A linear model's compressed text. */
static void linear_bytes(size_t ncols, int selector, size_t nsel, const float *sv,
                         const double *coef, unsigned char **z, size_t *zl) {
    hvs_model_t *m = NULL;
    unsigned char *t;
    size_t tl;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_linear_new(ncols, selector, nsel, sv, coef, &m, &err) == 0 &&
                    hvs_model_save(m, &t, &tl, &err) == 0 &&
                    hvs_zlib_compress(t, tl, z, zl, &err) == 0,
                "linear bytes: %s", err.msg);
    free(t);
    hvs_model_destroy(m);
}

static int lserving(hvs_registry_t *r, int want) {
    for (int i = 0; i < 100; i++) {
        hvs_registry_poll(r, 0);
        if (hvs_registry_active_version(r, LNAME) == want)
            break;
        usleep(50000);
    }
    return hvs_registry_active_version(r, LNAME);
}

/* Why this build refuses version v of the registry's records (reason, message). */
static bool refused_for(hvs_registry_t *r, int v, const char *reason, const char *msg) {
    const hvs_model_info_t *x = info(r, v);
    hvs_model_ref_t *ref = NULL;
    hvs_err_t err = {0};
    int rc = x ? hvs_registry_load_record(serde, x->record, x->record_len, &ref, &err) : -1;
    hvs_registry_release(ref);
    bool ok = x && x->refused && rc == HVS_ESERDE && strcmp(err.reason, reason) == 0 &&
              strstr(err.msg, msg);
    if (!ok)
        fprintf(stderr, "v%d: rc %d %s: %s\n", v, rc, err.reason, err.msg);
    return ok;
}

static void test_linear(const hvs_kafka_conf_t *kc, const unsigned char *ubj5, size_t ubj5_len) {
    HVS_REQUIRE(hvs_features_index("horizon_h") >= 0 && hvs_features_index("err_lag_1") < 0 &&
                    hvs_features_index("err_lag_2") < 0,
                "horizon_h is a feature, the error lags are not");
    hvs_registry_opts_t opts = {.prefix = "refresh/", .load_models = true};
    hvs_registry_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_registry_new(kc, serde, "models", &opts, &r, &err) == 0, "registry: %s",
                err.msg);

    /* v1: horizons 1, 2, 3; y = b0 + b1 * err_lag_1 + b2 * err_lag_2 */
    const float hz[3] = {1, 2, 3};
    const double c1[3 * 4] = {0.5, 0, 0.75, 0.125, 0.25, 0, 0.5, 0.25, -1, 0, 0.25, 0.5};
    unsigned char *z1, *z3, *z6;
    size_t zl1, zl3, zl6;
    linear_bytes(LNF, 0, 3, hz, c1, &z1, &zl1);
    publish_as(1, "hvs-linear", lfeats, LNF, LNF, z1, zl1);
    HVS_CHECK(lserving(r, 1) == 1, "hvs-linear v1 serves");
    hvs_model_ref_t *ref = hvs_registry_acquire(r, LNAME);
    HVS_REQUIRE(ref, "acquire %s", LNAME);
    const float rows[][LNF] = {{1, 2, -4},  {2, 0.5f, -1}, {3, 4, 2},
                               {2, NAN, 8}, {5, 1, 1},     {NAN, 1, 1}};
    /* row 1: 0.5 + 1.5 - 0.5; row 2: 0.25 + 0.25 - 0.25; row 3: -1 + 1 + 1; a missing error
     * adds nothing: 0.25 + 2; horizon 5: the nearest, 3: -1 + 0.25 + 0.5; no horizon: NaN */
    const float want[] = {1.5f, 0.25f, 1.0f, 2.25f, -0.25f, NAN};
    float got[6];
    int same = 0;
    HVS_CHECK(hvs_model_predict(ref->model, &rows[0][0], 6, got, &err) == 0, "predict: %s",
              err.msg);
    for (int i = 0; i < 6; i++)
        same += isnan(want[i]) ? isnan(got[i]) : got[i] == want[i];
    HVS_CHECK(same == 6,
              "served hvs-linear predicts the coefficients' arithmetic: %g %g %g %g %g %g",
              (double)got[0], (double)got[1], (double)got[2], (double)got[3], (double)got[4],
              (double)got[5]);
    const float *sv;
    const double *cf;
    size_t nsel;
    int sel;
    HVS_CHECK(
        strcmp(hvs_model_format(ref->model), "hvs-linear") == 0 && ref->nfeatures == LNF &&
            ref->feature_index[0] == hvs_features_index("horizon_h") &&
            ref->feature_index[1] == -1 && ref->feature_index[2] == -1 &&
            strcmp(ref->features[1], "err_lag_1") == 0 &&
            hvs_model_linear_coef(ref->model, &sel, &nsel, &sv, &cf) == 0 && sel == 0 &&
            nsel == 3 && memcmp(sv, hz, sizeof hz) == 0 && memcmp(cf, c1, sizeof c1) == 0 &&
            ref->probe[0] == 2,
        "served model: format, feature indices (-1 for the error lags), coefficients bit-exact");
    hvs_registry_release(ref);
    const hvs_model_info_t *i1 = info(r, 1);
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    HVS_CHECK(
        i1 &&
            hvs_registry_model_bytes(serde, i1->record, i1->record_len, &raw, &rawlen, &err) == 0 &&
            rawlen > 13 && memcmp(raw, "hvs-linear 1\n", 13) == 0,
        "the record's bytes are the hvs-linear text");
    free(raw);

    /* v2: the record says hvs-linear, the bytes are XGBoost UBJ (of feature-set names) */
    unsigned char *z2;
    size_t zl2;
    HVS_REQUIRE(hvs_zlib_compress(ubj5, ubj5_len, &z2, &zl2, &err) == 0, "compress");
    publish_as(2, "hvs-linear", feats, NF, NF, z2, zl2);
    wait_known(r, 2, -1);
    HVS_CHECK(lserving(r, 1) == 1 && hvs_registry_refused(r) == 1 &&
                  refused_for(r, 2, "corrupt_model", "says hvs-linear, its bytes are xgboost-ubj"),
              "hvs-linear record of UBJ bytes refused, v1 keeps serving");
    /* v3: the record says xgboost-ubj, the bytes are hvs-linear text */
    double c5[6] = {1, 0, 0, 0, 0, 0};
    linear_bytes(NF, -1, 1, NULL, c5, &z3, &zl3);
    publish_as(3, NULL, feats, NF, NF, z3, zl3);
    wait_known(r, 3, -1);
    HVS_CHECK(lserving(r, 1) == 1 && hvs_registry_refused(r) == 2 &&
                  refused_for(r, 3, "corrupt_model", "says xgboost-ubj, its bytes are hvs-linear"),
              "xgboost-ubj record of hvs-linear bytes refused, v1 keeps serving");
    /* v4: XGBoost naming a non-feature stays strict */
    const char *odd[NF] = {"temperature_c", "hour", "err_lag_1", "hdh", "is_weekend"};
    publish_as(4, "xgboost-ubj", odd, NF, NF, z2, zl2);
    wait_known(r, 4, -1);
    HVS_CHECK(lserving(r, 1) == 1 && hvs_registry_refused(r) == 3 &&
                  refused_for(r, 4, "feature_mismatch", "err_lag_1 is not a feature"),
              "XGBoost record with a non-feature refused, v1 keeps serving");
    /* v5: hvs-linear without a horizon median: the probe row predicts NaN */
    const char *noh[LNF] = {"err_lag_1", "err_lag_2", "horizon_h"};
    double c3[3 * 4] = {0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
    unsigned char *z5;
    size_t zl5;
    linear_bytes(LNF, 2, 3, hz, c3, &z5, &zl5);
    publish_as(5, "hvs-linear", noh, LNF, 2, z5, zl5);
    wait_known(r, 5, -1);
    HVS_CHECK(lserving(r, 1) == 1 && hvs_registry_refused(r) == 4 &&
                  refused_for(r, 5, "probe_failed", "nan"),
              "hvs-linear with no probe value for its selector refused, v1 keeps serving");
    /* an unknown format is refused by the writer */
    hvs_model_record_t bad = {.name = LNAME,
                              .version = 9,
                              .features = lfeats,
                              .nfeatures = LNF,
                              .model_format = "onnx",
                              .model = z1,
                              .model_len = zl1,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    HVS_CHECK(hvs_registry_encode(serde, enc, &bad, &buf, &len, &err) == HVS_EINVAL,
              "format onnx not written");
    /* v6: new coefficients swap in */
    const double c6[3 * 4] = {4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 1, 1};
    linear_bytes(LNF, 0, 3, hz, c6, &z6, &zl6);
    publish_as(6, "hvs-linear", lfeats, LNF, LNF, z6, zl6);
    float y = NAN;
    HVS_CHECK(lserving(r, 6) == 6 && (ref = hvs_registry_acquire(r, LNAME)) &&
                  hvs_model_predict(ref->model, rows[2], 1, &y, &err) == 0 && y == 12.0f,
              "v6 swaps in and predicts 6 + 4 + 2 = %g", (double)y);
    hvs_registry_release(ref);
    free(z1);
    free(z2);
    free(z3);
    free(z5);
    free(z6);
    hvs_registry_destroy(r);
}

/* ---- target scale ------------------------------------------------------------------------ */

#define SNAME "forecast/scale-check"

static void publish_scaled(int version, const char *scale, const unsigned char *z, size_t zl) {
    static const double q[3] = {1, 5, 9}, pr[3] = {0.1, 0.5, 0.9};
    hvs_feature_profile_t prof[NF];
    for (int i = 0; i < NF; i++)
        prof[i] = (hvs_feature_profile_t){feats[i], q, pr, 3, 0.0};
    const char *params[] = {"task", "forecast", scale ? "target_scale" : NULL, scale, NULL};
    hvs_model_record_t rec = {.name = SNAME,
                              .version = version,
                              .status = HVS_MODEL_APPROVED,
                              .features = feats,
                              .nfeatures = NF,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, 0.1, 1, 1, NAN, NAN, 100},
                              .profile = prof,
                              .nprofile = NF,
                              .params = params,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    char key[128];
    hvs_registry_key(key, sizeof key, SNAME, version);
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0 &&
                    hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                      len, &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s v%d: %s", SNAME, version, err.msg);
}

static int sserving(hvs_registry_t *r, int want) {
    for (int i = 0; i < 100; i++) {
        hvs_registry_poll(r, 0);
        if (hvs_registry_active_version(r, SNAME) == want)
            break;
        usleep(50000);
    }
    return hvs_registry_active_version(r, SNAME);
}

/* The served version's target scale, -1 when none serves. */
static int served_scale(hvs_registry_t *r) {
    hvs_model_ref_t *ref = hvs_registry_acquire(r, SNAME);
    int s = ref ? (int)ref->target_scale : -1;
    hvs_registry_release(ref);
    return s;
}

/* A version whose predictions are in a unit this build does not know (params.target_scale
 * "per_parsec") is refused like one of another feature set; the previous keeps serving. A
 * record without target_scale (older writers, tools) is kWh. */
static void test_target_scale(const hvs_kafka_conf_t *kc, const unsigned char *z, size_t zl) {
    hvs_registry_opts_t opts = {.prefix = "forecast/", .load_models = true};
    hvs_registry_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_registry_new(kc, serde, "models", &opts, &r, &err) == 0, "registry: %s",
                err.msg);
    publish_scaled(1, "per_heated_m2", z, zl);
    HVS_CHECK(sserving(r, 1) == 1 && served_scale(r) == HVS_TARGET_PER_HEATED_M2,
              "per_heated_m2 v1 serves with its scale");
    publish_scaled(2, "per_parsec", z, zl);
    const hvs_model_info_t *i2 = NULL;
    for (int i = 0; i < 200 && !i2; i++) {
        hvs_registry_poll(r, 0);
        size_t n;
        const hvs_model_info_t *v = hvs_registry_versions(r, &n);
        for (size_t k = 0; k < n; k++)
            if (strcmp(v[k].name, SNAME) == 0 && v[k].version == 2)
                i2 = &v[k];
        if (!i2)
            usleep(50000);
    }
    HVS_REQUIRE(i2, "v2 known");
    hvs_model_ref_t *ref = NULL;
    int rc = hvs_registry_load_record(serde, i2->record, i2->record_len, &ref, &err);
    hvs_registry_release(ref);
    HVS_CHECK(i2->refused && rc == HVS_ESERDE && strcmp(err.reason, "unknown_target_scale") == 0 &&
                  strstr(err.msg, "per_parsec"),
              "target scale per_parsec refused: %s: %s", err.reason, err.msg);
    HVS_CHECK(sserving(r, 1) == 1 && hvs_registry_refused(r) == 1 &&
                  served_scale(r) == HVS_TARGET_PER_HEATED_M2,
              "v1 keeps serving (refused %llu)", (unsigned long long)hvs_registry_refused(r));
    publish_scaled(3, NULL, z, zl);
    HVS_CHECK(sserving(r, 3) == 3 && served_scale(r) == HVS_TARGET_KWH &&
                  hvs_registry_refused(r) == 1,
              "a record without target_scale serves as kWh");
    hvs_registry_destroy(r);
}

/* ---- the fixture ------------------------------------------------------------------------ */

/* Started by the first case that needs it: a devbroker, the producer and encoder of "models",
 * and five trained models (z[v] is version v's compressed bytes, y = v * x0 + x1). */
static hvs_kafka_conf_t kc;
static unsigned char *z[6];
static size_t zl[6];

static void stop_models(void) {
    for (int v = 1; v <= 5; v++)
        free(z[v]);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
}

static void models_topic(void) {
    if (serde)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    hvs_test_cleanup(stop_models);
    hvs_err_t err = {0};
    kc = (hvs_kafka_conf_t){.brokers = broker.addr, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "setup");
    for (int v = 1; v <= 5; v++)
        train(v, &z[v], &zl[v]);
}

/* ---- the life of NAME's versions ---------------------------------------------------------- */

/* One registry client follows NAME through the steps below, each a case that builds on the
 * ones before it: a case run alone first runs the steps before it (their checks count too). */
static const hvs_registry_opts_t opts = {.load_models = true};
static hvs_registry_t *reg;

static void free_registry(void) { hvs_registry_destroy(reg); }

/* v1 approved serves; v2 pending does not until approved; the decision is recorded. */
static void step_approval(void) {
    hvs_registry_t *r = reg;
    publish(1, HVS_MODEL_APPROVED, z[1], zl[1]);
    HVS_CHECK(serving(r, 1) == 1 && fabs(predict(r) - (1 * 2 + 3)) < 0.6, "v1 serves: %g",
              predict(r));
    publish(2, HVS_MODEL_PENDING_APPROVAL, z[2], zl[2]);
    HVS_CHECK(wait_known(r, 2, HVS_MODEL_PENDING_APPROVAL) && serving(r, 1) == 1,
              "pending v2 does not serve");
    restatus(r, 2, HVS_MODEL_APPROVED, "looks good");
    wait_known(r, 2, HVS_MODEL_APPROVED);
    HVS_CHECK(serving(r, 2) == 2 && fabs(predict(r) - (2 * 2 + 3)) < 0.6, "approved v2 serves: %g",
              predict(r));
    HVS_CHECK(info(r, 2)->decided_by && strcmp(info(r, 2)->decided_by, "test") == 0 &&
                  strcmp(info(r, 2)->decision_reason, "looks good") == 0 &&
                  fabs(info(r, 2)->wape - 0.2) < 1e-12,
              "decision and metrics recorded");
}

static void step_corrupt(void) {
    hvs_registry_t *r = reg;
    /* v3: corrupt bytes (a flipped byte inside the zlib stream) */
    unsigned char *bad = malloc(zl[3]);
    memcpy(bad, z[3], zl[3]);
    bad[zl[3] / 2] ^= 0x55;
    publish(3, HVS_MODEL_APPROVED, bad, zl[3]);
    free(bad);
    wait_known(r, 3, -1);
    HVS_CHECK(hvs_registry_active_version(r, NAME) == 2 && hvs_registry_refused(r) == 1 &&
                  info(r, 3)->refused && fabs(predict(r) - 7) < 0.6,
              "corrupt v3 refused, v2 keeps serving (refused %llu)",
              (unsigned long long)hvs_registry_refused(r));
}

static void step_feature_set(void) {
    hvs_registry_t *r = reg;
    hvs_err_t err = {0};
    /* v4: another feature set (the record rewritten by hand) */
    {
        hvs_decoder_t *dec;
        avro_value_t *v, f;
        const void *buf;
        size_t len;
        publish(4, HVS_MODEL_PENDING_APPROVAL, z[4], zl[4]);
        const hvs_model_info_t *i4 = wait_known(r, 4, -1);
        HVS_REQUIRE(i4 && hvs_decoder_new(serde, HVS_SCHEMA_MODEL_VERSION, &dec, &err) == 0 &&
                        hvs_decoder_decode(dec, i4->record, i4->record_len, &v, &err) == 0,
                    "decode v4");
        avro_value_t *out = hvs_encoder_value(enc);
        avro_value_copy_fast(out, v);
        avro_value_get_by_name(out, "feature_set_version", &f, NULL);
        avro_value_set_string(&f, "fs-0-00000000");
        avro_value_get_by_name(out, "status", &f, NULL);
        avro_value_set_enum(&f, HVS_MODEL_APPROVED);
        HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode");
        send_raw(4, buf, len);
        hvs_decoder_destroy(dec);
    }
    wait_known(r, 4, HVS_MODEL_APPROVED);
    HVS_CHECK(hvs_registry_active_version(r, NAME) == 2 && hvs_registry_refused(r) == 2,
              "other feature set refused: %llu", (unsigned long long)hvs_registry_refused(r));
}

static void step_rollback(void) {
    hvs_registry_t *r = reg;
    /* rollback: archive v2 (v3 and v4 were refused; v1 is the approved one before) */
    restatus(r, 2, HVS_MODEL_ARCHIVED, "rollback");
    wait_known(r, 2, HVS_MODEL_ARCHIVED);
    HVS_CHECK(serving(r, 1) == 1 && fabs(predict(r) - 5) < 0.6, "rollback to v1: %g", predict(r));
}

static void step_hot_swap(void) {
    hvs_registry_t *r = reg;
    /* hot swap under load */
    worker_arg_t wa = {.r = r};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, predictor, &wa);
    usleep(200000);
    publish(5, HVS_MODEL_APPROVED, z[5], zl[5]);
    int now = serving(r, 5);
    usleep(200000);
    atomic_store(&wa.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    HVS_CHECK(now == 5 && atomic_load(&wa.failed) == 0 && atomic_load(&wa.last_version) == 5 &&
                  atomic_load(&wa.calls) > 100,
              "swap under %ld concurrent predictions: %d failed, last on v%d",
              (long)atomic_load(&wa.calls), atomic_load(&wa.failed), atomic_load(&wa.last_version));
}

static void step_replay_and_export(void) {
    hvs_err_t err = {0};
    /* a fresh client replays the topic to the same state */
    hvs_registry_t *r2;
    HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &opts, &r2, &err) == 0, "registry 2");
    hvs_registry_poll(r2, 10000);
    size_t n;
    hvs_registry_versions(r2, &n);
    HVS_CHECK(hvs_registry_caught_up(r2) && hvs_registry_active_version(r2, NAME) == 5 && n == 5 &&
                  info(r2, 2)->status == HVS_MODEL_ARCHIVED && hvs_registry_refused(r2) == 0,
              "replay: serving v%d of %zu versions", hvs_registry_active_version(r2, NAME), n);
    /* export: the record's bytes load and predict like the served model */
    unsigned char *ubj;
    size_t lu;
    hvs_model_t *m;
    const hvs_model_info_t *i5 = info(r2, 5);
    HVS_REQUIRE(
        i5 && hvs_registry_model_bytes(serde, i5->record, i5->record_len, &ubj, &lu, &err) == 0 &&
            hvs_model_load(ubj, lu, NF, &m, &err) == 0,
        "export: %s", err.msg);
    float row[NF] = {2, 3, 1, 1, 0}, out;
    hvs_model_predict(m, row, 1, &out, &err);
    HVS_CHECK(out == (float)predict(r2), "exported bytes predict as served: %g", out);
    HVS_CHECK(strcmp(hvs_model_format(m), "xgboost-ubj") == 0, "XGBoost record's format");
    hvs_model_destroy(m);
    free(ubj);
    hvs_registry_destroy(r2);
}

static void (*const lifecycle[])(void) = {step_approval, step_corrupt,  step_feature_set,
                                          step_rollback, step_hot_swap, step_replay_and_export};
static int steps_done;

/* Run lifecycle step k, after the steps before it that have not run yet. */
static void lifecycle_step(int k) {
    models_topic();
    if (!reg) {
        hvs_err_t err = {0};
        HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &opts, &reg, &err) == 0, "registry: %s",
                    err.msg);
        hvs_test_cleanup(free_registry);
    }
    if (steps_done > k) {
        printf("(step %d already ran as part of an earlier case)\n", k);
        return;
    }
    while (steps_done <= k)
        lifecycle[steps_done++]();
}

static void case_approval(void) { lifecycle_step(0); }
static void case_corrupt(void) { lifecycle_step(1); }
static void case_feature_set(void) { lifecycle_step(2); }
static void case_rollback(void) { lifecycle_step(3); }
static void case_hot_swap(void) { lifecycle_step(4); }
static void case_replay_and_export(void) { lifecycle_step(5); }

/* hvs-linear: the XGBoost bytes it needs for its mismatched records are version 5's. */
static void case_linear(void) {
    models_topic();
    unsigned char *ubj;
    size_t lu;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_zlib_decompress(z[5], zl[5], 64 << 20, &ubj, &lu, &err) == 0, "v5 bytes: %s",
                err.msg);
    test_linear(&kc, ubj, lu);
    free(ubj);
}

static void case_target_scale(void) {
    models_topic();
    test_target_scale(&kc, z[1], zl[1]);
}

static const hvs_test_case_t cases[] = {
    {"approved_serves_pending_waits_for_approval", case_approval},
    {"corrupt_version_refused_previous_serves", case_corrupt},
    {"other_feature_set_refused", case_feature_set},
    {"archiving_champion_rolls_back", case_rollback},
    {"hot_swap_under_concurrent_predictions", case_hot_swap},
    {"fresh_client_replays_same_state_export_predicts_same", case_replay_and_export},
    {"linear_serves_and_mismatched_formats_refused", case_linear},
    {"unknown_target_scale_refused_none_is_kwh", case_target_scale},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
