/*
 * test_hvsctl_model_it - `hvsctl model` (the approval workflow) as a real process against a real
 * hvs-devbroker. Versions of one model, each trained here on y = k*x0 + x1 with k = its version
 * (so predictions show which one serves), are published as ModelVersion records; after each
 * command the outcome is read back independently: a registry client in this process (loading
 * and validating models, as a scorer does), the `models` topic's end offset (a refused command
 * publishes nothing), and the command's stdout parsed as JSON.
 *  - list: every version with its status, metrics, times, decision; serving only on the
 *    highest approved one that validates; --name filters; an empty topic lists nothing;
 *  - approve of a pending version makes it serve (predictions follow); reject marks it with the
 *    decider from $USER; approving a rejected or archived one, or one that does not validate,
 *    is refused without --force; rejecting the serving one is refused; an approved but corrupt
 *    version is reported "refused" and does not serve, here as in the registry;
 *  - rollback archives the serving version and the previous approved one serves; with nothing
 *    before it, refused;
 *  - show: the record (feature names, metrics, decision) with the bytes summarised (lengths and
 *    a CRC-32 equal to this test's own UBJ bytes), no base64;
 *  - export: the file is byte for byte the UBJ this test trained, and /usr/bin/python3 with
 *    xgboost loads it and predicts on rows with NaNs what the registry's served model predicts,
 *    to 1e-5;
 *  - hvs-linear: show prints model_format "hvs-linear" (XGBoost ones "xgboost-ubj") with the
 *    text's length and CRC-32, and export writes exactly the coefficient text;
 *  - a decision the broker does not acknowledge exits 1 and changes nothing;
 *  - usage errors exit 2, unknown names/versions and an unreachable broker exit 1 naming them.
 */
#include <jansson.h>
#include <math.h>
#include <zlib.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define NF 5
#define NV 4 /* versions of NAME */
#define NAME "anomaly-residual/global"
#define OTHER "forecast/global"
#define T0 INT64_C(1735689600000) /* 2025-01-01T00:00:00Z */

static const char *feats[NF] = {"temperature_c", "hour", "use_lag_24", "hdh", "is_weekend"};
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc;
static hvs_test_proc_t broker;
static char env[512];
static char dir[] = "/tmp/hvs-model-test-XXXXXX";
static unsigned char *ubj[NV + 1], *zb[NV + 1]; /* UBJ and zlib bytes of each version */
static size_t ubj_len[NV + 1], zb_len[NV + 1];

/* ---- setup: models and records --------------------------------------------------------------- */

/* A model of y = k * x0 + x1 on random rows. */
static void train(int k) {
    enum { N = 800 };
    static float x[N * NF], y[N];
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < NF; c++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            x[i * NF + c] = (float)((s >> 11) % 1000) / 100.0f;
        }
        y[i] = (float)(k * x[i * NF] + x[i * NF + 1]);
    }
    hvs_train_params_t p = {.rounds = 60, .eta = 0.3, .max_depth = 4, .nthread = 1};
    hvs_model_t *m;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, NF, NULL, NULL, 0, &p, &m, NULL, &err) == 0 &&
                    hvs_model_save(m, &ubj[k], &ubj_len[k], &err) == 0 &&
                    hvs_zlib_compress(ubj[k], ubj_len[k], &zb[k], &zb_len[k], &err) == 0,
                "train v%d: %s", k, err.msg);
    hvs_model_destroy(m);
}

static void send_record(const char *name, int version, const void *buf, size_t len) {
    char key[128];
    hvs_err_t err = {0};
    hvs_registry_key(key, sizeof key, name, version);
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "send %s: %s", key, err.msg);
}

/* Version k of name: trained at T0 + k h on the 30 days before T0, wape 0.1 k. */
static void publish(const char *name, int k, hvs_model_status_t status, const void *z, size_t zl,
                    const char *by) {
    static const double q[3] = {1, 5, 9}, pr[3] = {0.1, 0.5, 0.9};
    hvs_feature_profile_t prof[NF];
    for (int i = 0; i < NF; i++)
        prof[i] = (hvs_feature_profile_t){feats[i], q, pr, 3, 0.0};
    const char *params[] = {"eta", "0.3", NULL};
    hvs_model_record_t rec = {.name = name,
                              .version = k,
                              .status = status,
                              .features = feats,
                              .nfeatures = NF,
                              .train_start = T0 - 30 * HVS_MS_DAY,
                              .train_end = T0,
                              .created_at = T0 + k * HVS_MS_HOUR,
                              .metrics = {.mape = 1.5 * k,
                                          .wape = 0.1 * k,
                                          .rmse = 2.0 * k,
                                          .mae = 1.0 * k,
                                          .precision_at_k = NAN,
                                          .recall_at_k = NAN,
                                          .n_eval = 100},
                              .profile = prof,
                              .nprofile = NF,
                              .params = params,
                              .model = z,
                              .model_len = zl,
                              .decided_by = by,
                              .decision_reason = by ? "gates passed" : NULL,
                              .decided_at = by ? T0 : HVS_MS_NONE};
    const void *buf;
    size_t len;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0, "encode: %s",
                err.msg);
    send_record(name, k, buf, len);
}

/* Records on `models` so far (its one partition's end offset). */
static int64_t records(void) {
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(hvs_producer_handle(prod), "models", 0,
                                                             &lo, &hi, 5000);
    HVS_REQUIRE(e == 0, "watermarks of models: %s", rd_kafka_err2str(e));
    return hi;
}

/* ---- running hvsctl -------------------------------------------------------------------------- */

/* `hvsctl model ARGS` with the broker's environment; stdout into *out (caller frees; NULL to
 * discard). Append "2>&1" to ARGS to capture messages too. */
static int model(const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s model %s", env, HVS_TEST_HVSCTL, args);
    return hvs_test_run(cmd, NULL, 0, out, NULL);
}

/* Run a command that prints one JSON object; NULL when rc is not want or it is not one line. */
static json_t *model_json(const char *args, int want_rc) {
    char *out = NULL;
    int rc = model(args, &out);
    json_t *js[4] = {0};
    int n = hvs_test_json_lines(out, js, 4);
    free(out);
    HVS_CHECK(rc == want_rc && n == 1 && js[0], "model %s: rc %d (want %d), %d lines", args, rc,
              want_rc, n);
    if (rc == want_rc && n == 1)
        return js[0];
    hvs_test_json_lines_free(js, n < 4 ? n : 4);
    return NULL;
}

/* A command that must be refused (rc) with a message containing each of the words, and publish
 * nothing. */
static void refused(const char *args, int want_rc, const char *w1, const char *w2) {
    char full[1024], *out = NULL;
    int64_t before = records();
    snprintf(full, sizeof full, "%s 2>&1", args);
    int rc = model(full, &out);
    HVS_CHECK(rc == want_rc && out && strstr(out, w1) && (!w2 || strstr(out, w2)),
              "model %s: rc %d (want %d), message must name \"%s\"%s%s: %s", args, rc, want_rc, w1,
              w2 ? " and " : "", w2 ? w2 : "", out ? out : "");
    HVS_CHECK(records() == before, "model %s published nothing (%lld -> %lld records)", args,
              (long long)before, (long long)records());
    free(out);
}

static const char *jstr(json_t *j, const char *key) {
    return json_string_value(json_object_get(j, key));
}
static long long jint(json_t *j, const char *key) {
    return json_integer_value(json_object_get(j, key));
}

/* ---- the registry client of this test -------------------------------------------------------- */

static const hvs_model_info_t *info(hvs_registry_t *r, const char *name, int version) {
    size_t n;
    const hvs_model_info_t *v = hvs_registry_versions(r, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i].version == version && strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Poll until NAME version v has status st (10 s). */
static const hvs_model_info_t *wait_status(hvs_registry_t *r, int v, hvs_model_status_t st) {
    for (int i = 0; i < 200; i++) {
        hvs_registry_poll(r, 0);
        const hvs_model_info_t *x = info(r, NAME, v);
        if (x && x->status == st)
            return x;
        usleep(50000);
    }
    return info(r, NAME, v);
}

/* The served version once it is `want` (or after 10 s). */
static int serving(hvs_registry_t *r, int want) {
    for (int i = 0; i < 200 && hvs_registry_active_version(r, NAME) != want; i++) {
        hvs_registry_poll(r, 0);
        usleep(50000);
    }
    return hvs_registry_active_version(r, NAME);
}

/* The served model's prediction at x0 = x1 = 5, mid-range of the training rows (5k + 5 for
 * version k: versions 5 apart). */
static double predict(hvs_registry_t *r) {
    hvs_model_ref_t *ref = hvs_registry_acquire(r, NAME);
    float row[NF] = {5, 5, 5, 5, 0}, out = NAN;
    hvs_err_t err;
    if (ref && hvs_model_predict(ref->model, row, 1, &out, &err) != 0)
        out = NAN;
    hvs_registry_release(ref);
    return out;
}

/* ---- the tests -------------------------------------------------------------------------------- */

static void test_empty(void) {
    char *out = NULL;
    int rc = model("list", &out);
    HVS_CHECK(rc == 0 && out && out[0] == '\0', "list of an empty topic: rc %d, \"%s\"", rc,
              out ? out : "");
    free(out);
    refused("show " NAME, 1, "no model named", NAME);
}

/* list: one line per version, fields as published, serving only on `serves` of NAME. */
static void check_list(const char *args, int want_lines, int serves, const char *const *status) {
    char *out = NULL;
    json_t *js[16] = {0};
    int rc = model(args, &out);
    int n = hvs_test_json_lines(out, js, 16), ok = 0, other = 0;
    for (int i = 0; i < n && i < 16; i++) {
        json_t *j = js[i], *m = json_object_get(j, "metrics");
        const char *name = jstr(j, "name");
        int k = (int)jint(j, "version");
        if (name && strcmp(name, OTHER) == 0) {
            other += k == 1 && json_is_true(json_object_get(j, "serving"));
            continue;
        }
        if (!name || strcmp(name, NAME) != 0 || k < 1 || k > NV)
            continue;
        char created[32];
        snprintf(created, sizeof created, "2025-01-01T%02d:00:00.000Z", k);
        bool good = hvs_test_streq(jstr(j, "status"), status[k]) &&
                    json_is_boolean(json_object_get(j, "serving")) &&
                    json_is_true(json_object_get(j, "serving")) == (k == serves) &&
                    hvs_test_streq(jstr(j, "created_at"), created) &&
                    hvs_test_streq(jstr(j, "train_start"), "2024-12-02T00:00:00.000Z") &&
                    hvs_test_streq(jstr(j, "train_end"), "2025-01-01T00:00:00.000Z") &&
                    jint(j, "features") == NF &&
                    fabs(json_real_value(json_object_get(m, "wape")) - 0.1 * k) < 1e-12 &&
                    fabs(json_real_value(json_object_get(m, "mape")) - 1.5 * k) < 1e-12 &&
                    fabs(json_real_value(json_object_get(m, "rmse")) - 2.0 * k) < 1e-12 &&
                    fabs(json_real_value(json_object_get(m, "mae")) - 1.0 * k) < 1e-12 &&
                    json_object_get(j, "decided_by") && json_object_get(j, "decision_reason") &&
                    i + 1 == k; /* sorted by name, then version */
        char *text = json_dumps(j, JSON_COMPACT);
        HVS_CHECK(good, "list line of v%d (want %s%s): %s", k, status[k],
                  k == serves ? ", serving" : "", text ? text : "?");
        free(text);
        ok += good;
    }
    HVS_CHECK(rc == 0 && n == want_lines && ok == NV,
              "model %s: rc %d, %d lines (want %d), %d of "
              "%d versions of " NAME " right",
              args, rc, n, want_lines, ok, NV);
    if (want_lines > NV)
        HVS_CHECK(other == 1, "list shows " OTHER " v1 serving");
    hvs_test_json_lines_free(js, n < 16 ? n : 16);
    free(out);
}

static void test_workflow(hvs_registry_t *r) {
    /* v1 approved by the trainer, v2 and v3 pending, v4 pending with corrupt bytes; another name */
    publish(NAME, 1, HVS_MODEL_APPROVED, zb[1], zb_len[1], "trainer");
    publish(NAME, 2, HVS_MODEL_PENDING_APPROVAL, zb[2], zb_len[2], NULL);
    publish(NAME, 3, HVS_MODEL_PENDING_APPROVAL, zb[3], zb_len[3], NULL);
    unsigned char *bad = malloc(zb_len[4]);
    HVS_REQUIRE(bad, "oom");
    memcpy(bad, zb[4], zb_len[4]);
    bad[zb_len[4] / 2] ^= 0x55;
    publish(NAME, 4, HVS_MODEL_PENDING_APPROVAL, bad, zb_len[4], NULL);
    free(bad);
    publish(OTHER, 1, HVS_MODEL_APPROVED, zb[1], zb_len[1], "trainer");
    HVS_REQUIRE(wait_status(r, 4, HVS_MODEL_PENDING_APPROVAL) && serving(r, 1) == 1,
                "the test's registry sees v1..v4, v1 serving");

    const char *st[NV + 1] = {NULL, "APPROVED", "PENDING_APPROVAL", "PENDING_APPROVAL",
                              "PENDING_APPROVAL"};
    check_list("list", NV + 1, 1, st);
    check_list("list --name anomaly-residual/", NV, 1, st);
    {
        char *out = NULL;
        json_t *js[8] = {0};
        model("list", &out);
        int n = hvs_test_json_lines(out, js, 8);
        HVS_CHECK(n >= 1 && hvs_test_streq(jstr(js[0], "decided_by"), "trainer") &&
                      hvs_test_streq(jstr(js[0], "decision_reason"), "gates passed") && n >= 2 &&
                      json_is_null(json_object_get(js[1], "decided_by")),
                  "list carries the trainer's decision on v1, none on pending v2");
        hvs_test_json_lines_free(js, n < 8 ? n : 8);
        free(out);
    }

    /* the broker refuses the write: exit 1, nothing published, v2 still pending */
    char reply[256];
    HVS_REQUIRE(hvs_test_devbroker_control(&broker, "errors 0 1 TOPIC_AUTHORIZATION_FAILED", reply,
                                           sizeof reply) == 0,
                "push a Produce error: %s", reply);
    refused("approve " NAME " --version 2", 1, "publishing " NAME "#2 as APPROVED",
            "not delivered");
    HVS_CHECK(info(r, NAME, 2)->status == HVS_MODEL_PENDING_APPROVAL,
              "a failed delivery leaves v2 pending");

    /* approve pending v2: it serves */
    json_t *j = model_json("approve " NAME " --version 2 --by alice --reason 'better wape'", 0);
    HVS_CHECK(j && jint(j, "version") == 2 &&
                  hvs_test_streq(jstr(j, "previous_status"), "PENDING_APPROVAL") &&
                  hvs_test_streq(jstr(j, "status"), "APPROVED") &&
                  json_is_true(json_object_get(j, "published")) && jint(j, "serving_before") == 1 &&
                  jint(j, "serving_after") == 2 && hvs_test_streq(jstr(j, "decided_by"), "alice"),
              "approve v2 output");
    json_decref(j);
    const hvs_model_info_t *x = wait_status(r, 2, HVS_MODEL_APPROVED);
    HVS_CHECK(x && x->status == HVS_MODEL_APPROVED && hvs_test_streq(x->decided_by, "alice") &&
                  hvs_test_streq(x->decision_reason, "better wape") && fabs(x->wape - 0.2) < 1e-12,
              "v2 re-published APPROVED with the decision and its metrics");
    HVS_CHECK(serving(r, 2) == 2 && fabs(predict(r) - 15) < 1.5,
              "approved v2 serves: v%d predicts %g", hvs_registry_active_version(r, NAME),
              predict(r));

    /* reject pending v3: decided_by from $USER */
    j = model_json("reject " NAME " --version 3 --reason overfit", 0);
    HVS_CHECK(j && hvs_test_streq(jstr(j, "status"), "REJECTED") && jint(j, "serving_after") == 2,
              "reject v3 output");
    json_decref(j);
    x = wait_status(r, 3, HVS_MODEL_REJECTED);
    HVS_CHECK(x && x->status == HVS_MODEL_REJECTED && hvs_test_streq(x->decided_by, "tester") &&
                  hvs_test_streq(x->decision_reason, "overfit") && serving(r, 2) == 2,
              "v3 REJECTED by $USER, v2 still serves");

    /* refusals: approving a rejected one, a corrupt one, rejecting the serving one */
    refused("approve " NAME " --version 3", 1, "v3 is REJECTED", "--force");
    refused("approve " NAME " --version 4", 1, "v4 would not serve", "corrupt");
    refused("reject " NAME " --version 2", 1, "v2 is serving", "rollback");
    HVS_CHECK(info(r, NAME, 3)->status == HVS_MODEL_REJECTED && serving(r, 2) == 2,
              "refusals changed nothing");

    /* approving an approved one publishes nothing */
    int64_t before = records();
    j = model_json("approve " NAME " --version 1 2>/dev/null", 0);
    HVS_CHECK(j && json_is_false(json_object_get(j, "published")) && records() == before,
              "approving approved v1 publishes nothing");
    json_decref(j);

    /* --force: the corrupt v4 approved does not serve, here or in the registry */
    j = model_json("approve " NAME " --version 4 --force 2>/dev/null", 0);
    HVS_CHECK(j && jint(j, "serving_after") == 2, "forced v4: v2 still serves");
    json_decref(j);
    wait_status(r, 4, HVS_MODEL_APPROVED);
    HVS_CHECK(info(r, NAME, 4)->status == HVS_MODEL_APPROVED && info(r, NAME, 4)->refused &&
                  serving(r, 2) == 2,
              "the registry refuses approved v4 and keeps v2");
    const char *st2[NV + 1] = {NULL, "APPROVED", "APPROVED", "REJECTED", "APPROVED"};
    check_list("list --name " NAME, NV, 2, st2);
    {
        char *out = NULL;
        json_t *js[8] = {0};
        model("list --name " NAME, &out);
        int n = hvs_test_json_lines(out, js, 8);
        const char *why = n >= 4 ? jstr(js[3], "refused") : NULL;
        HVS_CHECK(why && strstr(why, "corrupt_model") && n >= 2 &&
                      !json_object_get(js[1], "refused"),
                  "list marks approved v4 refused (%s)", why ? why : "no \"refused\"");
        hvs_test_json_lines_free(js, n < 8 ? n : 8);
        free(out);
    }

    /* --force: rejected v3 approved again serves */
    j = model_json("approve " NAME " --version 3 --force --reason 'second look'", 0);
    HVS_CHECK(j && jint(j, "serving_after") == 3 &&
                  hvs_test_streq(jstr(j, "previous_status"), "REJECTED"),
              "forced approval of v3 output");
    json_decref(j);
    wait_status(r, 3, HVS_MODEL_APPROVED);
    HVS_CHECK(serving(r, 3) == 3 && fabs(predict(r) - 20) < 1.5, "v3 serves: v%d predicts %g",
              hvs_registry_active_version(r, NAME), predict(r));
}

static void test_show(void) {
    char *out = NULL;
    int rc = model("show " NAME, &out); /* the serving one: v3 */
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    json_t *mb = json_object_get(j, "model_bytes"), *fn = json_object_get(j, "feature_names");
    json_t *m = json_object_get(j, "metrics");
    char crc[16];
    snprintf(crc, sizeof crc, "%08lx", (unsigned long)crc32(0, ubj[3], (uInt)ubj_len[3]));
    bool names = json_array_size(fn) == NF;
    for (size_t i = 0; names && i < NF; i++)
        names = hvs_test_streq(json_string_value(json_array_get(fn, i)), feats[i]);
    HVS_CHECK(rc == 0 && j && hvs_test_streq(jstr(j, "name"), NAME) && jint(j, "version") == 3 &&
                  hvs_test_streq(jstr(j, "status"), "APPROVED") && names &&
                  fabs(json_real_value(json_object_get(m, "wape")) - 0.3) < 1e-12 &&
                  hvs_test_streq(jstr(j, "decision_reason"), "second look") &&
                  jint(j, "train_end") == T0 && json_is_true(json_object_get(j, "serving")) &&
                  json_is_true(json_object_get(json_object_get(j, "validation"), "ok")) &&
                  hvs_test_streq(jstr(j, "key"), NAME "#3") &&
                  hvs_test_streq(jstr(j, "model_format"), "xgboost-ubj") &&
                  json_array_size(json_object_get(j, "profile")) == NF,
              "show: the serving v3's record: %.400s", out ? out : "");
    HVS_CHECK(json_is_object(mb) && jint(mb, "length") == (long long)ubj_len[3] &&
                  jint(mb, "compressed_length") == (long long)zb_len[3] &&
                  hvs_test_streq(jstr(mb, "crc32"), crc) && strlen(out) < 4096,
              "show summarises the bytes (%zu UBJ, %zu zlib, crc %s) in %zu chars of output",
              ubj_len[3], zb_len[3], crc, out ? strlen(out) : 0);
    json_decref(j);
    free(out);

    j = model_json("show " NAME " --version 4", 0);
    json_t *val = json_object_get(j, "validation");
    HVS_CHECK(j && jint(j, "version") == 4 && json_is_false(json_object_get(j, "serving")) &&
                  json_is_false(json_object_get(val, "ok")) &&
                  hvs_test_streq(jstr(val, "reason"), "corrupt_model") &&
                  json_object_get(json_object_get(j, "model_bytes"), "error"),
              "show v4: does not validate, bytes do not decompress");
    json_decref(j);
}

/* Rows with NaNs; the served model's predictions on them; the Python predictions of the
 * exported file. */
static void test_export(hvs_registry_t *r) {
    enum { ROWS = 40 };
    char model_path[300], rows_path[300], args[700];
    snprintf(model_path, sizeof model_path, "%s/served.ubj", dir);
    snprintf(rows_path, sizeof rows_path, "%s/rows.txt", dir);
    snprintf(args, sizeof args, "export " NAME " --out %s", model_path);
    json_t *j = model_json(args, 0);
    json_t *fn = json_object_get(j, "features");
    bool names = json_array_size(fn) == NF;
    for (size_t i = 0; names && i < NF; i++)
        names = hvs_test_streq(json_string_value(json_array_get(fn, i)), feats[i]);
    HVS_CHECK(j && jint(j, "version") == 3 && names && jint(j, "length") == (long long)ubj_len[3] &&
                  hvs_test_streq(jstr(j, "file"), model_path) &&
                  hvs_test_streq(jstr(j, "model_format"), "xgboost-ubj"),
              "export prints the serving v3 and its feature names in column order");
    json_decref(j);

    FILE *f = fopen(model_path, "rb");
    unsigned char *got = malloc(ubj_len[3] + 1);
    size_t n = f && got ? fread(got, 1, ubj_len[3] + 1, f) : 0;
    HVS_CHECK(n == ubj_len[3] && memcmp(got, ubj[3], n) == 0,
              "exported file is the UBJ v3 was trained to (%zu of %zu bytes)", n, ubj_len[3]);
    if (f)
        fclose(f);
    free(got);

    float x[ROWS * NF], want[ROWS];
    uint64_t s = 99;
    FILE *rf = fopen(rows_path, "w");
    HVS_REQUIRE(rf, "cannot write %s", rows_path);
    for (int i = 0; i < ROWS; i++) {
        for (int c = 0; c < NF; c++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            float v = (float)((s >> 11) % 100000) / 7919.0f - 1.0f;
            if ((i % 3 == 0 && c == i % NF) || i == ROWS - 1 || (i == 7 && c < 2))
                v = NAN; /* missing values, one row all missing */
            x[i * NF + c] = v;
            fprintf(rf, "%s%.9g", c ? " " : "", (double)v);
        }
        fputc('\n', rf);
    }
    HVS_REQUIRE(fclose(rf) == 0, "write %s", rows_path);
    hvs_model_ref_t *ref = hvs_registry_acquire(r, NAME);
    hvs_err_t err = {0};
    HVS_REQUIRE(ref && ref->version == 3 && hvs_model_predict(ref->model, x, ROWS, want, &err) == 0,
                "the registry's served model predicts: %s", err.msg);
    hvs_registry_release(ref);

    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s/tests/hvsctl/xgb_predict.py %s %s", HVS_TEST_PYTHON3,
             HVS_TEST_SOURCE_DIR, model_path, rows_path);
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    int same = 0, lines = 0;
    char *p = out;
    for (char *end; p && lines < ROWS + 1; p = end, lines++) {
        double v = strtod(p, &end);
        if (end == p)
            break;
        if (lines < ROWS && fabs(v - want[lines]) <= 1e-5 * fmax(1.0, fabs(want[lines])))
            same++;
        else if (lines < ROWS)
            fprintf(stderr, "row %d: python %.9g, C %.9g\n", lines, v, (double)want[lines]);
    }
    HVS_CHECK(rc == 0 && lines == ROWS && same == ROWS,
              "python xgboost on the exported file: rc %d, %d predictions, %d equal to the served "
              "model's",
              rc, lines, same);
    free(out);

    /* a version that does not decompress is not exported; an unwritable path fails */
    char bad_path[300];
    snprintf(bad_path, sizeof bad_path, "%s/v4.ubj", dir);
    snprintf(args, sizeof args, "export " NAME " --version 4 --out %s", bad_path);
    refused(args, 1, "v4", "decompress");
    HVS_CHECK(access(bad_path, F_OK) != 0, "no file for v4");
    refused("export " NAME " --out /nonexistent-dir/m.ubj", 1, "/nonexistent-dir/m.ubj", NULL);
}

static void test_rollback(hvs_registry_t *r) {
    json_t *j = model_json("rollback " NAME, 0);
    HVS_CHECK(j && jint(j, "archived") == 3 && jint(j, "serving") == 2 &&
                  hvs_test_streq(jstr(j, "decision_reason"), "rollback"),
              "rollback archives v3, v2 serves");
    json_decref(j);
    const hvs_model_info_t *x = wait_status(r, 3, HVS_MODEL_ARCHIVED);
    HVS_CHECK(x && x->status == HVS_MODEL_ARCHIVED &&
                  hvs_test_streq(x->decision_reason, "rollback") && serving(r, 2) == 2 &&
                  fabs(predict(r) - 15) < 1.5,
              "registry: v3 ARCHIVED, v2 serves again (predicts %g)", predict(r));
    refused("approve " NAME " --version 3", 1, "v3 is ARCHIVED", "--force");

    j = model_json("rollback " NAME " --reason 'bad week' --by bob", 0);
    HVS_CHECK(j && jint(j, "archived") == 2 && jint(j, "serving") == 1,
              "second rollback: v1 serves");
    json_decref(j);
    x = wait_status(r, 2, HVS_MODEL_ARCHIVED);
    HVS_CHECK(x && x->status == HVS_MODEL_ARCHIVED &&
                  hvs_test_streq(x->decision_reason, "bad week") &&
                  hvs_test_streq(x->decided_by, "bob") && serving(r, 1) == 1 &&
                  fabs(predict(r) - 10) < 1.5,
              "registry: v2 ARCHIVED by bob, v1 serves (predicts %g)", predict(r));

    /* v1 is the last approved one that validates (v4 is approved but corrupt) */
    refused("rollback " NAME, 1, "v1 is the only approved version", "--force");
    HVS_CHECK(serving(r, 1) == 1, "v1 still serves");
    const char *st[NV + 1] = {NULL, "APPROVED", "ARCHIVED", "ARCHIVED", "APPROVED"};
    check_list("list --name " NAME, NV, 1, st);

    /* a fresh client replaying the topic agrees */
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test2", .fetch_wait_max_ms = 10};
    hvs_registry_opts_t opts = {.load_models = true};
    hvs_registry_t *r2;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &opts, &r2, &err) == 0, "registry 2: %s",
                err.msg);
    hvs_registry_poll(r2, 10000);
    HVS_CHECK(hvs_registry_caught_up(r2) && hvs_registry_active_version(r2, NAME) == 1 &&
                  info(r2, NAME, 3)->status == HVS_MODEL_ARCHIVED,
              "replay: v%d serves", hvs_registry_active_version(r2, NAME));
    hvs_registry_destroy(r2);
}

static void test_usage(void) {
    static const char *const usage[] = {
        "",
        "frobnicate",
        "show",
        "show a b",
        "approve " NAME,
        "approve " NAME " --version abc",
        "approve " NAME " --version 0",
        "reject " NAME,
        "rollback",
        "export " NAME,
        "export " NAME " --out",
        "list --bogus",
        "list --name",
        "show " NAME " --timeout 0",
        "approve " NAME " --version 2 --out x",
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "%s 2>/dev/null", usage[i]);
        int64_t before = records();
        int rc = model(args, NULL);
        HVS_CHECK(rc == 2 && records() == before, "usage error \"model %s\": rc %d", usage[i], rc);
    }
    static const char *const subs[] = {"list", "show", "approve", "reject", "rollback", "export"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char args[128], want[64], *out = NULL;
        snprintf(args, sizeof args, "%s --help", subs[i]);
        snprintf(want, sizeof want, "Usage: hvsctl model %s", subs[i]);
        int rc = model(args, &out);
        HVS_CHECK(rc == 0 && out && strstr(out, want), "model %s: rc %d", args, rc);
        free(out);
    }
    char *out = NULL;
    int rc = model("--help", &out);
    HVS_CHECK(rc == 0 && out && strstr(out, "rollback NAME"), "model --help: rc %d", rc);
    free(out);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --help", HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 0 && out && strstr(out, "model list|show|approve|reject|rollback|export"),
              "hvsctl --help lists model");
    free(out);

    refused("show nosuch/model", 1, "nosuch/model", NULL);
    refused("approve " NAME " --version 9", 1, "no version 9", NAME);
    refused("reject nosuch/model --version 1", 1, "nosuch/model", NULL);
    refused("rollback nosuch/model", 1, "nosuch/model", NULL);
    refused("export " NAME " --version 9 --out /tmp/never-written.ubj", 1, "no version 9", NULL);

    /* the topic cannot be read: exit 1 naming the broker */
    snprintf(cmd, sizeof cmd, "env HVS_KAFKA_BROKERS=127.0.0.1:1 %s model list 2>&1",
             HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 1 && out && strstr(out, "cannot read topic models at 127.0.0.1:1"),
              "unreachable broker: rc %d: %s", rc, out ? out : "");
    free(out);
}

/* An approved hvs-linear model (refresh coefficients over a feature and two non-features):
 * show names its format, export writes its text. */
static void test_linear(hvs_registry_t *r) {
    static const char *lf[3] = {"horizon_h", "err_lag_1", "err_lag_2"};
    static const double q[3] = {1, 2, 3}, pr[3] = {0.1, 0.5, 0.9};
    const float hz[2] = {1, 2};
    const double coef[2 * 4] = {0.5, 0, 0.25, 0.125, -0.5, 0, 0.75, 0.0625};
    hvs_model_t *m = NULL;
    unsigned char *text = NULL, *z = NULL;
    size_t tl = 0, zl = 0;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_linear_new(3, 0, 2, hz, coef, &m, &err) == 0 &&
                    hvs_model_save(m, &text, &tl, &err) == 0 &&
                    hvs_zlib_compress(text, tl, &z, &zl, &err) == 0,
                "linear model: %s", err.msg);
    hvs_model_destroy(m);
    hvs_feature_profile_t prof[3];
    for (int i = 0; i < 3; i++)
        prof[i] = (hvs_feature_profile_t){lf[i], q, pr, 3, 0.0};
    hvs_model_record_t rec = {.name = "refresh/global",
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = lf,
                              .nfeatures = 3,
                              .train_start = T0 - HVS_MS_DAY,
                              .train_end = T0,
                              .created_at = T0,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .profile = prof,
                              .nprofile = 3,
                              .model_format = "hvs-linear",
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0, "encode: %s",
                err.msg);
    send_record("refresh/global", 1, buf, len);
    for (int i = 0; i < 200 && hvs_registry_active_version(r, "refresh/global") != 1; i++) {
        hvs_registry_poll(r, 0);
        usleep(50000);
    }
    HVS_CHECK(hvs_registry_active_version(r, "refresh/global") == 1,
              "the registry serves refresh/global v1");

    json_t *j = model_json("show refresh/global", 0);
    json_t *mb = json_object_get(j, "model_bytes");
    char crc[16];
    snprintf(crc, sizeof crc, "%08lx", (unsigned long)crc32(0, text, (uInt)tl));
    HVS_CHECK(
        j && hvs_test_streq(jstr(j, "model_format"), "hvs-linear") &&
            json_is_true(json_object_get(json_object_get(j, "validation"), "ok")) &&
            json_is_true(json_object_get(j, "serving")) && jint(mb, "length") == (long long)tl &&
            hvs_test_streq(jstr(mb, "crc32"), crc),
        "show refresh/global: model_format hvs-linear, validates, serves, the text summarised");
    json_decref(j);

    char path[300], args[400];
    snprintf(path, sizeof path, "%s/refresh.txt", dir);
    snprintf(args, sizeof args, "export refresh/global --out %s", path);
    j = model_json(args, 0);
    HVS_CHECK(j && hvs_test_streq(jstr(j, "model_format"), "hvs-linear") &&
                  jint(j, "length") == (long long)tl,
              "export refresh/global prints model_format hvs-linear");
    json_decref(j);
    FILE *f = fopen(path, "rb");
    char got[4096];
    size_t n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f)
        fclose(f);
    HVS_CHECK(n == tl && memcmp(got, text, tl) == 0 && memcmp(got, "hvs-linear 1\n", 13) == 0,
              "exported file is the coefficient text (%zu of %zu bytes)", n, tl);
    free(text);
    free(z);
}

/* ---- the fixture ------------------------------------------------------------------------ */

/* Started by the first case that needs it: a scratch directory, a devbroker with an empty
 * `models` topic, the producer and encoder of its records, NV trained versions and a registry
 * client following the topic. */
static hvs_registry_t *reg;

static void stop_broker(void) {
    hvs_registry_destroy(reg);
    for (int k = 1; k <= NV; k++) {
        free(ubj[k]);
        free(zb[k]);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_test_proc_stop(&broker);
}

static void start_broker(void) {
    if (reg)
        return;
    HVS_REQUIRE(mkdtemp(dir), "mkdtemp");
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 USER=tester",
             broker.addr);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "setup: %s", err.msg);
    for (int k = 1; k <= NV; k++)
        train(k);
    hvs_registry_opts_t opts = {.load_models = true};
    HVS_REQUIRE(hvs_registry_new(&kc, serde, "models", &opts, &reg, &err) == 0, "registry: %s",
                err.msg);
}

/* The cases are steps of one workflow on one topic, each building on the ones before it: a case
 * run alone first runs the steps before it (their checks count too). */
static void step_workflow(void) { test_workflow(reg); }
static void step_export(void) { test_export(reg); }
static void step_rollback(void) { test_rollback(reg); }
static void step_linear(void) { test_linear(reg); }

static void (*const steps[])(void) = {test_empty,    step_workflow, test_show,  step_export,
                                      step_rollback, test_usage,    step_linear};
static int steps_done;

/* Run step k, after the steps before it that have not run yet. */
static void step(int k) {
    start_broker();
    if (steps_done > k) {
        printf("(step %d already ran as part of an earlier case)\n", k);
        return;
    }
    while (steps_done <= k)
        steps[steps_done++]();
}

static void case_empty(void) { step(0); }
static void case_workflow(void) { step(1); }
static void case_show(void) { step(2); }
static void case_export(void) { step(3); }
static void case_rollback(void) { step(4); }
static void case_usage(void) { step(5); }
static void case_linear(void) { step(6); }

static const hvs_test_case_t cases[] = {
    {"empty_topic_lists_nothing", case_empty},
    {"approve_reject_refusals_and_unacked_decision", case_workflow},
    {"show_summarises_bytes_with_their_crc", case_show},
    {"export_writes_trained_ubj_python_predicts_same", case_export},
    {"rollback_archives_champion_previous_serves", case_rollback},
    {"usage_errors_exit_2_unknown_names_and_no_broker_exit_1", case_usage},
    {"linear_model_shown_and_exported_as_text", case_linear},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
