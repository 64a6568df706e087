/*
 * test_scorer_it - hvs-scorer as a process against a real redis-server and hvs-devbroker.
 * Topology (a 400-day-old building and a 5-day-old one), two anomaly models trained here and
 * published on `models`, and three days of apartment aggregates (with rooms) and feature vectors
 * go in as Avro; the scores are read back with hvsctl and checked against values worked out
 * here:
 *   - every apartment-hour has a score; the old building's are COMBINED, stamped
 *     anomaly-residual/global:1 and anomaly-classifier/global:1, the young building's RULES;
 *   - `expected` is the residual model's prediction as Python's xgboost computes it on the row
 *     built here by name; `residual_z` is the median/MAD standardisation recomputed here from
 *     the published observed and expected of the apartment's earlier hours; the score is the
 *     noisy-OR recomputed from the published components;
 *   - a stuck valve (open, room cold, apartment heating) fires from its sixth hour with the
 *     reason's numbers; a 2 kWh excess is explained by feature contributions;
 *   - hot swap: v2 published mid-stream serves every later hour (no score missing, each stamped
 *     with the version that produced it, expected = v2's prediction); a corrupt v3 is refused
 *     and v2 keeps serving;
 *   - each kind of bad input lands in its topic's dead letters with its reason;
 *   - the state is in Redis under the building's hash tag.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apartment.h"
#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */
#define HOURS 72
#define STUCK_FROM 40  /* apt_2's living-room valve sticks */
#define EXCESS_FROM 50 /* and it consumes 2 kWh more than expected */
#define YOUNG_STUCK 30

static hvs_test_proc_t redis, broker, worker;
static char env[1024], logpath[256], modeldir[256];
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_vec, *enc_bld, *enc_model;

/* ---- the synthetic apartment ---------------------------------------------------------------- */

static double outdoor(int i) { return 2.0 + 6.0 * sin(2 * M_PI * (i % 24) / 24.0) - 0.05 * i; }
static double true_heat(double t) { return 0.1 + 0.05 * fmax(0, 18 - t); }
static double noise(int a, int i) { return 0.02 * (((a * 7919 + i * 104729) % 11) - 5) / 5.0; }

typedef struct hour_state {
    double temp_out, heat, room_temp, setpoint, gap, lag24;
} hour_state_t;

static int fillna_from = 1 << 30; /* the fleet's use_lag_24 arrives as 0 from this hour */

static bool stuck(const char *apt, int i) {
    return (!strcmp(apt, "apt_2") && i >= STUCK_FROM) ||
           (!strcmp(apt, "apt_3") && i >= YOUNG_STUCK);
}

static hour_state_t state_of(const char *apt, int a, int i) {
    hour_state_t s = {.temp_out = outdoor(i), .setpoint = 20.5};
    s.heat = true_heat(s.temp_out) + noise(a, i);
    if (!strcmp(apt, "apt_2") && i >= EXCESS_FROM)
        s.heat += 2.0;
    /* living room 16, bedroom 20 when stuck; else near the setpoint, a little different per
     * apartment and hour as real rooms are */
    s.room_temp = stuck(apt, i) ? (16.0 + 20.0) / 2 : 20.2 + 0.05 * ((a * 31 + i * 17) % 9);
    s.gap = s.setpoint - s.room_temp;
    s.lag24 = true_heat(outdoor(i - 24)) + noise(a, i - 24);
    if (apt[0] == 'f' && i >= fillna_from)
        s.lag24 = 0; /* seed 004: an upstream fillna(0) */
    return s;
}

/* A feature's value for a state (what the features worker would have computed; the rest NaN). */
static double feature(const char *name, const hour_state_t *s, int i) {
    if (!strcmp(name, "temperature_c"))
        return s->temp_out;
    if (!strcmp(name, "hdh"))
        return fmax(0, 18 - s->temp_out);
    if (!strcmp(name, "hour"))
        return i % 24;
    if (!strcmp(name, "room_temp_c"))
        return s->room_temp;
    if (!strcmp(name, "setpoint_c"))
        return s->setpoint;
    if (!strcmp(name, "comfort_gap_c") || !strcmp(name, "comfort_gap_prev"))
        return s->gap;
    if (!strcmp(name, "use_lag_24"))
        return s->lag24;
    return NAN;
}

/* ---- models ---------------------------------------------------------------------------------- */

/* The training profile of the last model trained: deciles and missing rate of each column. */
#define NQ 9
static double prof_q[HVS_TASKROW_MAX_COLS][NQ], prof_p[NQ];
static hvs_feature_profile_t prof[HVS_TASKROW_MAX_COLS];
static size_t nprof;

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static void profile_of(const float *x, size_t n, size_t nc, const char *const *cols) {
    float *v = malloc(sizeof(float) * n);
    HVS_REQUIRE(v, "oom");
    nprof = 0;
    for (int q = 0; q < NQ; q++)
        prof_p[q] = 0.1 * (q + 1);
    for (size_t j = 0; j < nc; j++) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (!isnan(x[k * nc + j]))
                v[m++] = x[k * nc + j];
        if (m == 0)
            continue; /* never seen: no profile entry */
        qsort(v, m, sizeof *v, cmp_float);
        for (int q = 0; q < NQ; q++)
            prof_q[nprof][q] = v[(size_t)(prof_p[q] * (double)(m - 1))];
        prof[nprof] = (hvs_feature_profile_t){cols[j], prof_q[nprof], prof_p, NQ,
                                              1.0 - (double)m / (double)n};
        nprof++;
    }
    free(v);
}

/* Train on synthetic rows of the task's columns (built here by name): the residual learns
 * scale x true_heat, the classifier that a comfort gap above 3 degC is a fault. */
static hvs_model_t *train(hvs_task_t task, double scale) {
    enum { N = 3000 };
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    float *x = malloc(sizeof(float) * N * nc), *y = malloc(sizeof(float) * N);
    HVS_REQUIRE(x && y, "oom");
    uint64_t r = 99;
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        hour_state_t s = {.temp_out = -10 + (double)(r % 2500) / 100.0, .setpoint = 20.5};
        s.room_temp = 20.5 - (double)((r >> 20) % 600) / 100.0 + 1;
        s.gap = s.setpoint - s.room_temp;
        s.lag24 = 0.2 + (double)((r >> 30) % 1800) / 1000.0;
        for (size_t j = 0; j < nc; j++)
            x[k * nc + j] = (float)feature(cols[j], &s, (int)(r >> 40) % 24);
        y[k] = task == HVS_TASK_ANOMALY_RESIDUAL ? (float)(scale * true_heat(s.temp_out))
                                                 : (float)(s.gap > 3);
    }
    hvs_train_params_t p = {.rounds = 80,
                            .eta = 0.3,
                            .max_depth = 4,
                            .nthread = 1,
                            .objective = task == HVS_TASK_ANOMALY_RESIDUAL ? NULL
                                                                           : "binary:logistic"};
    hvs_model_t *m;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, nc, NULL, NULL, 0, &p, &m, NULL, &err) == 0,
                "train: %s", err.msg);
    profile_of(x, N, nc, cols);
    free(x), free(y);
    return m;
}

/* Publish m as <name> version v (APPROVED); its UBJ also saved to modeldir/<tag>.ubj for the
 * Python cross-check. corrupt: the model bytes are junk that still decompresses. */
static hvs_model_status_t publish_status = HVS_MODEL_APPROVED;
static const char *publish_fsv; /* non-NULL: the record claims this feature set */

static void publish(const char *name, hvs_task_t task, int v, hvs_model_t *m, bool corrupt,
                    const char *tag, bool with_profile) {
    hvs_err_t err = {0};
    unsigned char *ubj, *z;
    size_t lu, lz;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0, "save");
    HVS_REQUIRE(hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0, "zlib");
    if (corrupt) /* damaged in storage or transit: zlib's check catches it before XGBoost parses
                  * anything (XGBoost 1.7's UBJ reader is not safe on malformed bytes, design §12) */
        z[lz / 2] ^= 0x5a;
    if (tag) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.ubj", modeldir, tag);
        FILE *f = fopen(path, "wb");
        HVS_REQUIRE(f && fwrite(ubj, 1, lu, f) == lu && fclose(f) == 0, "write %s", path);
    }
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    const char *params[] = {"target_scale", hvs_taskrow_scale_name(hvs_taskrow_scale(task)), NULL};
    hvs_model_record_t rec = {.name = name,
                              .version = v,
                              .status = publish_status,
                              .features = cols,
                              .nfeatures = nc,
                              .train_start = T0 - 200 * DAY,
                              .train_end = T0,
                              .created_at = T0,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .params = params,
                              .profile = with_profile ? prof : NULL,
                              .nprofile = with_profile ? nprof : 0,
                              .model = z,
                              .model_len = lz,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    char key[256];
    hvs_registry_key(key, sizeof key, name, v);
    HVS_REQUIRE(hvs_registry_encode(serde, enc_model, &rec, &buf, &len, &err) == 0, "encode %s: %s",
                key, err.msg);
    unsigned char *patched = NULL;
    if (publish_fsv) { /* a version trained on another feature set: the record says so (the
                        * version strings have the same length, so the Avro bytes stay valid) */
        const char *ours = hvs_features_version();
        HVS_REQUIRE(strlen(publish_fsv) == strlen(ours), "same length");
        patched = malloc(len);
        HVS_REQUIRE(patched, "oom");
        memcpy(patched, buf, len);
        unsigned char *at = memmem(patched, len, ours, strlen(ours));
        HVS_REQUIRE(at, "feature set version in the record");
        memcpy(at, publish_fsv, strlen(publish_fsv));
        buf = patched;
    }
    HVS_REQUIRE(hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s: %s", key, err.msg);
    free(patched);
    free(ubj), free(z);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static void send_raw(const char *topic, const char *key, const void *buf, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0,
                                  buf, len, &err) == 0,
                "send: %s", err.msg);
}

static void send_json(hvs_encoder_t *enc, const char *topic, const char *key, const char *json) {
    hvs_err_t err = {0};
    const void *buf;
    size_t len;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, &len, &err) == 0,
        "encode %s: %s (%s)", topic, err.msg, json);
    send_raw(topic, key, buf, len);
}

static void send_agg(const char *bld, const char *apt, int a, int i, int size_min,
                     double valve_override) {
    hour_state_t s = state_of(apt, a, i);
    hvs_ms_t ws = T0 + i * HOUR;
    bool st = stuck(apt, i);
    char json[4096];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":0,\"heating_kwh\":%.6f,"
             "\"room_temp_mean_c\":%.3f,\"setpoint_mean_c\":%.3f,\"comfort_gap_mean_c\":%.3f,"
             "\"readings_expected\":4,\"readings_seen\":4,\"quality\":\"COMPLETE\",\"flags\":[],"
             "\"emitted_at\":%lld,\"rooms\":["
             "{\"room\":\"bedroom\",\"temp_mean_c\":20.0,\"temp_min_c\":19.8,\"temp_max_c\":20.2,"
             "\"temp_std_c\":0.1,\"setpoint_mean_c\":20.0,\"valve_mean_pct\":25.0,"
             "\"readings_seen\":5,\"temp_changes\":3},"
             "{\"room\":\"living_room\",\"temp_mean_c\":%.1f,\"temp_min_c\":%.1f,"
             "\"temp_max_c\":%.1f,\"temp_std_c\":0.1,\"setpoint_mean_c\":21.0,"
             "\"valve_mean_pct\":%.1f,\"readings_seen\":5,\"temp_changes\":%d}]}",
             bld, apt, (long long)ws, (long long)(ws + size_min * 60000LL),
             (long long)size_min * 60000LL, s.heat, s.room_temp, s.setpoint, s.gap,
             (long long)(ws + HOUR), st ? 16.0 : 21.0, st ? 16.0 : 20.8, st ? 16.0 : 21.2,
             valve_override >= 0 ? valve_override
             : st                ? 100.0
                                 : 30.0,
             st ? 1 : 3);
    send_json(enc_agg, "aggregates.hourly", bld, json);
}

/* A FeatureVector (values through the Avro API: NaN has no JSON). fsv NULL: this build's. */
static void send_vec(const char *bld, const char *key, const char *apt, int a, int i,
                     const char *fsv, double poison) {
    hour_state_t s = state_of(apt, a, i);
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc_vec), f, item, br;
    const char *const *names = hvs_features_names();
    int bad = avro_value_get_by_name(v, "building_id", &f, NULL) ||
              avro_value_set_string(&f, bld) ||
              avro_value_get_by_name(v, "apartment_id", &f, NULL) ||
              avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, apt) ||
              avro_value_get_by_name(v, "target_hour", &f, NULL) ||
              avro_value_set_long(&f, T0 + i * HOUR) ||
              avro_value_get_by_name(v, "as_of", &f, NULL) ||
              avro_value_set_long(&f, T0 + (i + 2) * HOUR) ||
              avro_value_get_by_name(v, "feature_set_version", &f, NULL) ||
              avro_value_set_string(&f, fsv ? fsv : hvs_features_version()) ||
              avro_value_get_by_name(v, "target", &f, NULL) || avro_value_set_branch(&f, 1, &br) ||
              avro_value_set_double(&br, s.heat) ||
              avro_value_get_by_name(v, "revision", &f, NULL) || avro_value_set_int(&f, 2);
    for (int k = 0; !bad && k < HVS_FEATURES_COUNT; k++) {
        bad = avro_value_get_by_name(v, "names", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_string(&item, names[k]) ||
              avro_value_get_by_name(v, "values", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_double(&item,
                                    k == 0 && !isnan(poison) ? poison : feature(names[k], &s, i));
    }
    const void *buf;
    size_t len;
    HVS_REQUIRE(!bad && hvs_encoder_encode(enc_vec, &buf, &len, &err) == 0, "vector: %s", err.msg);
    send_raw("features.hourly", key, buf, len);
}

static void send_hours(int from, int to) {
    for (int i = from; i < to; i++) {
        send_agg("bldg_old", "apt_1", 1, i, 60, -1);
        send_agg("bldg_old", "apt_2", 2, i, 60, -1);
        send_agg("bldg_young", "apt_3", 3, i, 60, -1);
        send_vec("bldg_old", "bldg_old", "apt_1", 1, i, NULL, NAN);
        send_vec("bldg_old", "bldg_old", "apt_2", 2, i, NULL, NAN);
        send_vec("bldg_young", "bldg_young", "apt_3", 3, i, NULL, NAN);
    }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

#define BUILDING_JSON                                                                              \
    "{\"building_id\":\"%s\",\"archetype\":\"old_poorly_insulated\",\"commissioning_date\":"       \
    "%lld,\"latitude\":47.37,\"longitude\":8.54,\"heated_area_m2\":900.0,"                         \
    "\"construction_year\":1970,\"insulation\":null,\"holiday_region\":\"CH-ZH\","                 \
    "\"apartments\":[{\"apartment_id\":\"%s\",\"area_m2\":70.0,\"floor\":1,\"rooms\":[],"          \
    "\"occupied_since\":null}],\"updated_at\":%lld,\"deleted\":false}"

static void send_topology(void) {
    char json[2048];
    snprintf(json, sizeof json, BUILDING_JSON, "bldg_old", (long long)(T0 - 400 * DAY), "apt_1",
             (long long)T0);
    send_json(enc_bld, "topology", "bldg_old", json);
    snprintf(json, sizeof json, BUILDING_JSON, "bldg_young", (long long)(T0 - 5 * DAY), "apt_3",
             (long long)T0);
    send_json(enc_bld, "topology", "bldg_young", json);
}

/* ---- reading back ---------------------------------------------------------------------------- */

/* Latest score (highest revision) per apartment/hour-index. */
static json_t *scores(void) {
    json_t *msgs = hvs_test_tail_json(env, "scores.anomaly", NULL), *latest = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        char key[200];
        snprintf(key, sizeof key, "%s/%lld", json_string_value(json_object_get(v, "apartment_id")),
                 (long long)((json_integer_value(json_object_get(v, "hour")) - T0) / HOUR));
        json_t *old = json_object_get(latest, key);
        if (!old || json_integer_value(json_object_get(v, "revision")) >=
                        json_integer_value(json_object_get(old, "revision")))
            json_object_set(latest, key, v);
    }
    json_decref(msgs);
    return latest;
}

static json_t *wait_scores(size_t want) {
    for (int i = 0; i < 300; i++) {
        json_t *s = scores();
        if (json_object_size(s) >= want)
            return s;
        json_decref(s);
        usleep(200000);
    }
    return scores();
}

static json_t *score_of(json_t *all, const char *apt, int i) {
    char key[64];
    snprintf(key, sizeof key, "%s/%d", apt, i);
    return json_object_get(all, key);
}

static double num(json_t *v, const char *field) {
    json_t *x = json_object_get(v, field);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static bool has_string(json_t *arr, const char *prefix) {
    size_t i;
    json_t *s;
    json_array_foreach(arr, i,
                       s) if (!strncmp(json_string_value(s), prefix, strlen(prefix))) return true;
    return false;
}

/* The worker's log holds `text` (waits up to 20 s). */
static bool log_has(const char *text) {
    for (int i = 0; i < 200; i++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "grep -qF '%s' %s", text, logpath);
        if (hvs_test_run(cmd, NULL, 0, NULL, NULL) == 0)
            return true;
        usleep(100000);
    }
    return false;
}

/* Python's xgboost on the rows of apt/hours [from, to) of model file `tag`. */
static void python_predict(const char *tag, const char *apt, int a, int from, int to, double *out) {
    char rows[512], cmd[1400];
    snprintf(rows, sizeof rows, "%s/rows.txt", modeldir);
    FILE *f = fopen(rows, "w");
    HVS_REQUIRE(f, "rows file");
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(HVS_TASK_ANOMALY_RESIDUAL, &nc);
    for (int i = from; i < to; i++) {
        hour_state_t s = state_of(apt, a, i);
        for (size_t j = 0; j < nc; j++)
            fprintf(f, "%s%.9g", j ? " " : "", (double)(float)feature(cols[j], &s, i));
        fputc('\n', f);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s/tests/hvsctl/xgb_predict.py %s/%s.ubj %s", HVS_TEST_PYTHON3,
             HVS_TEST_SOURCE_DIR, modeldir, tag, rows);
    char *txt = NULL;
    size_t len = 0;
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, &txt, &len) == 0 && txt, "xgb_predict.py");
    char *p = txt;
    for (int i = from; i < to; i++)
        out[i - from] = strtod(p, &p);
    free(txt);
}

/* ---- the checks ------------------------------------------------------------------------------ */

static json_t *all;

static void teardown(void) {
    hvs_test_proc_stop(&worker);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    json_decref(all);
    hvs_encoder_destroy(enc_agg), hvs_encoder_destroy(enc_vec), hvs_encoder_destroy(enc_bld);
    hvs_encoder_destroy(enc_model);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", modeldir);
    hvs_test_run(cmd, NULL, 0, NULL, NULL);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "scorer log: %s\n", logpath);
}

static void bad_inputs(void) {
    /* undecodable, another feature set, an infinite value, a key of another building */
    send_raw("features.hourly", "bldg_old", "\0\0\0\0\x0dgarbage", 12);
    send_vec("bldg_old", "bldg_old", "apt_1", 1, 5, "fs-0-deadbeef", NAN);
    send_vec("bldg_old", "bldg_old", "apt_1", 1, 6, NULL, INFINITY);
    send_vec("bldg_old", "bldg_young", "apt_1", 1, 7, NULL, NAN);
    /* aggregates: a 15-minute window on the hourly topic, a valve at 150 % */
    send_agg("bldg_old", "apt_1", 1, 8, 15, -1);
    send_agg("bldg_old", "apt_1", 1, 9, 60, 150.0);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush");
}

static void setup(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1 HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-scorer-%d.log", (int)getpid());
    snprintf(modeldir, sizeof modeldir, "/tmp/hvs-test-scorer-models-%d", (int)getpid());
    HVS_REQUIRE(mkdir(modeldir, 0700) == 0, "mkdir %s", modeldir);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &enc_agg, &err) ==
                0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, "features.hourly", &enc_vec, &err) ==
                0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc_model, &err) == 0,
        "setup: %s", err.msg);
    send_topology();
    hvs_model_t *res = train(HVS_TASK_ANOMALY_RESIDUAL, 1.0);
    hvs_model_t *cls = train(HVS_TASK_ANOMALY_CLASSIFIER, 1.0);
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 1, res, false, "res1", false);
    publish("anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER, 1, cls, false, "cls1", false);
    hvs_model_destroy(res);
    hvs_model_destroy(cls);
    send_hours(0, HOURS);
    bad_inputs();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=sc-it %s --batch 500", env, HVS_TEST_SCORER);
    HVS_REQUIRE(hvs_test_spawn(&worker, cmd, logpath) == 0, "spawn hvs-scorer");
    all = wait_scores(3 * HOURS);
}

/* Every apartment-hour scored; strategies and model stamps by the building's age. */
static void test_every_hour_stamped(void) {
    HVS_CHECK_EQ_INT((int)json_object_size(all), 3 * HOURS);
    int bad_old = 0, bad_young = 0;
    for (int i = 0; i < HOURS; i++) {
        for (int a = 1; a <= 2; a++) {
            json_t *s = score_of(all, a == 1 ? "apt_1" : "apt_2", i);
            json_t *models = json_object_get(s, "models");
            if (!s || strcmp(json_string_value(json_object_get(s, "strategy")), "COMBINED") ||
                strcmp(json_string_value(json_object_get(s, "model_name")),
                       "anomaly-residual/global") ||
                json_integer_value(json_object_get(s, "model_version")) != 1 ||
                !has_string(models, "anomaly-residual/global:1") ||
                !has_string(models, "anomaly-classifier/global:1"))
                bad_old++;
        }
        json_t *y = score_of(all, "apt_3", i);
        if (!y || strcmp(json_string_value(json_object_get(y, "strategy")), "RULES") ||
            strcmp(json_string_value(json_object_get(y, "model_name")), "rules") ||
            json_integer_value(json_object_get(y, "model_version")) != 0 ||
            json_array_size(json_object_get(y, "models")) != 0)
            bad_young++;
    }
    HVS_CHECK(bad_old == 0, "%d old-building scores not COMBINED with both v1 models", bad_old);
    HVS_CHECK(bad_young == 0, "%d young-building scores not RULES", bad_young);
    json_t *s = score_of(all, "apt_1", 10);
    HVS_CHECK_EQ_INT((int)json_integer_value(json_object_get(s, "revision")), 2 * 65536 + 1);
}

/* expected = Python's prediction; z and the score recomputed from the published parts. */
static void test_values(void) {
    double py[HOURS];
    python_predict("res1", "apt_2", 2, 0, HOURS, py);
    int n_exp = 0, n_z = 0, n_score = 0, n_with_z = 0;
    for (int i = 0; i < HOURS; i++) {
        json_t *s = score_of(all, "apt_2", i);
        double e = num(s, "expected");
        if (!(fabs(e - py[i]) <= 1e-5 * fmax(1, fabs(py[i]))))
            n_exp++, fprintf(stderr, "hour %d expected %.9g, python %.9g\n", i, e, py[i]);
        /* z of the 6-hour residual against the apartment's earlier 6-hour windows that do not
         * overlap it, within the ring (hours i-71 .. i-6), from the published parts */
        double r[HOURS], d[HOURS];
        int n = 0;
        double cur = 0;
        for (int k = i - 5; k <= i; k++) {
            json_t *o = k >= 0 ? score_of(all, "apt_2", k) : NULL;
            cur += o ? num(o, "observed") - num(o, "expected") : NAN;
        }
        for (int last = i - 6; last - 5 >= 0 && last - 5 >= i - 71; last--) {
            double w = 0;
            for (int k = last - 5; k <= last; k++) {
                json_t *o = score_of(all, "apt_2", k);
                w += num(o, "observed") - num(o, "expected");
            }
            r[n++] = w;
        }
        double z = NAN;
        if (n >= 24 && isfinite(cur)) {
            for (int x = 0; x < n; x++) /* insertion sort: tiny */
                for (int y = x; y > 0 && r[y] < r[y - 1]; y--) {
                    double t = r[y];
                    r[y] = r[y - 1], r[y - 1] = t;
                }
            double med = n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
            for (int x = 0; x < n; x++)
                d[x] = fabs(r[x] - med);
            for (int x = 0; x < n; x++)
                for (int y = x; y > 0 && d[y] < d[y - 1]; y--) {
                    double t = d[y];
                    d[y] = d[y - 1], d[y - 1] = t;
                }
            double mad = n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
            double spread = fmax(1.4826 * mad, 0.05 * sqrt(6.0));
            z = (cur - med) / spread;
        }
        double got = num(s, "residual_z");
        if (isnan(z) != isnan(got) || (!isnan(z) && fabs(z - got) > 1e-3 * fmax(1, fabs(z))))
            n_z++, fprintf(stderr, "hour %d z %.6g, recomputed %.6g\n", i, got, z);
        n_with_z += !isnan(got);
        double er = isnan(got) ? 0 : 0.5 * fmin(1, fmax(0, (fabs(got) - 3) / 3));
        double rs = num(s, "rule_score"), p = num(s, "probability");
        double want = 1 - (1 - rs) * (1 - er) * (1 - p);
        if (!(fabs(want - num(s, "score")) <= 1e-5))
            n_score++,
                fprintf(stderr, "hour %d score %.6g, recomputed %.6g\n", i, num(s, "score"), want);
    }
    HVS_CHECK(n_exp == 0, "%d expected values differ from Python's xgboost", n_exp);
    HVS_CHECK(n_z == 0, "%d residual_z differ from the recomputation", n_z);
    HVS_CHECK(n_score == 0, "%d scores differ from the noisy-OR of their parts", n_score);
    HVS_CHECK_EQ_INT(n_with_z, HOURS - 34); /* 6 hours + 24 earlier windows + 5 hours apart */
}

/* The stuck valve from its sixth hour, with its numbers; the excess explained. */
static void test_rules_and_reasons(void) {
    for (int i = STUCK_FROM; i < STUCK_FROM + 5; i++)
        HVS_CHECK(!has_string(json_object_get(score_of(all, "apt_2", i), "rules"), "stuck_valve"),
                  "hour %d: not yet", i);
    json_t *s = score_of(all, "apt_2", STUCK_FROM + 5);
    HVS_CHECK(has_string(json_object_get(s, "rules"), "stuck_valve"), "fired at hour 6 of it");
    HVS_CHECK(has_string(json_object_get(s, "reasons"),
                         "living room valve 100 % for 6 h, 16.0 °C vs setpoint 21.0 °C"),
              "reason with numbers: %s", json_dumps(json_object_get(s, "reasons"), 0));
    HVS_CHECK(num(s, "score") >= 0.6, "a fired rule ranks: %g", num(s, "score"));
    /* the excess: residual reason and contributions */
    json_t *e = score_of(all, "apt_2", EXCESS_FROM + 2);
    json_t *rs = json_object_get(e, "reasons");
    int excess = 0;
    size_t ri;
    json_t *r;
    json_array_foreach(rs, ri, r) excess += !strncmp(json_string_value(r), "heating ", 8) &&
                                            strstr(json_string_value(r), " kWh expected over 6 h");
    HVS_CHECK(excess == 1, "residual reason: %s", json_dumps(rs, 0));
    size_t i;
    json_t *t;
    int contrib = 0;
    json_array_foreach(rs, i, t) contrib += strstr(json_string_value(t), "expected heating by") ||
                                            strstr(json_string_value(t), "fault probability");
    HVS_CHECK(contrib >= 1, "contributions among the reasons: %s", json_dumps(rs, 0));
    HVS_CHECK(num(e, "score") > 0.9, "stuck and 2 kWh over: %g", num(e, "score"));
    /* the healthy apartment stays low */
    int high = 0;
    for (int k = 0; k < HOURS; k++)
        high += num(score_of(all, "apt_1", k), "score") >= 0.5;
    HVS_CHECK(high <= 2, "healthy apt_1: %d hours scored >= 0.5", high);
    /* the young building: rules only, and they fire */
    json_t *y = score_of(all, "apt_3", YOUNG_STUCK + 8);
    HVS_CHECK(has_string(json_object_get(y, "rules"), "stuck_valve"), "young building's rule");
    HVS_CHECK(isnan(num(y, "expected")) && isnan(num(y, "probability")), "no model values");
}

static void test_dead_letters(void) {
    json_t *f = NULL, *g = NULL;
    for (int k = 0; k < 100; k++) {
        json_decref(f), json_decref(g);
        f = hvs_test_tail_json(env, "features.hourly.dlq", NULL);
        g = hvs_test_tail_json(env, "aggregates.hourly.dlq", NULL);
        if (json_array_size(f) >= 4 && json_array_size(g) >= 2)
            break;
        usleep(200000);
    }
    /* as sets: dead letters of different partitions come in any order */
    const char *want_f[] = {"avro_decode", "feature_mismatch", "key_mismatch", "non_finite"};
    const char *want_g[] = {"bad_window", "value_out_of_range"};
    HVS_CHECK_EQ_INT((int)json_array_size(f), 4);
    HVS_CHECK_EQ_INT((int)json_array_size(g), 2);
    for (int t = 0; t < 2; t++) {
        json_t *arr = t ? g : f;
        const char *const *want = t ? want_g : want_f;
        int nwant = t ? 2 : 4;
        for (int k = 0; k < nwant; k++) {
            bool seen = false;
            size_t i;
            json_t *m;
            json_array_foreach(arr, i, m) {
                const char *r = json_string_value(
                    json_object_get(json_object_get(m, "value"), "error_code"));
                seen |= r && (!strcmp(r, want[k]) ||
                              (!strcmp(want[k], "avro_decode") && !strcmp(r, "truncated")));
            }
            HVS_CHECK(seen, "a dead letter with reason %s", want[k]);
        }
    }
    json_decref(f), json_decref(g);
}

static void test_state_in_redis(void) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "redis");
    redisReply *rep = NULL;
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HGETALL hvs:{bldg_old}:sc:a:apt_2") == 0 && rep,
                "HGETALL");
    /* the ring in its three blocks, every slot of the 72 hours holding both halves */
    HVS_CHECK_EQ_INT((int)rep->elements, 2 * SC_BLOCKS);
    sc_apartment_t *a = sc_apartment_new("apt_2");
    sc_idents_t ids = {0};
    for (size_t i = 0; a && i + 1 < rep->elements; i += 2) {
        const redisReply *f = rep->element[i], *v = rep->element[i + 1];
        HVS_CHECK(f->len == 2 && f->str[0] == 'b' &&
                      sc_block_decode(a, &ids, (size_t)(f->str[1] - '0'), v->str, v->len) == 0,
                  "field %s is a block", f->str);
    }
    int both = 0;
    for (size_t s = 0; a && s < SC_RING; s++)
        both += sc_agg_get(a, a->slots[s].agg.hour) && sc_model_get(a, a->slots[s].model.hour) &&
                a->slots[s].agg.hour == a->slots[s].model.hour;
    HVS_CHECK_EQ_INT(both, SC_RING);
    sc_apartment_destroy(a);
    sc_idents_free(&ids);
    freeReplyObject(rep);
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "SMEMBERS hvs:{bldg_old}:sc:apts") == 0 && rep,
                "SMEMBERS");
    HVS_CHECK_EQ_INT((int)rep->elements, 2);
    freeReplyObject(rep);
    hvs_redis_destroy(r);
}

/* v2 mid-stream serves every later hour; a corrupt v3 is refused and v2 keeps serving. */
static void test_hot_swap(void) {
    hvs_model_t *v2 = train(HVS_TASK_ANOMALY_RESIDUAL, 2.0);
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 2, v2, false, "res2", false);
    HVS_REQUIRE(log_has("anomaly-residual/global:2 now serves"), "v2 swapped in");
    send_hours(HOURS, HOURS + 12);
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 3, v2, true, NULL, false);
    HVS_REQUIRE(log_has("anomaly-residual/global v3 refused"), "v3 refused");
    send_hours(HOURS + 12, HOURS + 24);
    hvs_model_destroy(v2);
    json_decref(all);
    all = wait_scores(3 * (HOURS + 24));
    HVS_CHECK_EQ_INT((int)json_object_size(all), 3 * (HOURS + 24));
    double py[24];
    python_predict("res2", "apt_1", 1, HOURS, HOURS + 24, py);
    int wrong = 0;
    for (int i = HOURS; i < HOURS + 24; i++) {
        json_t *s = score_of(all, "apt_1", i);
        if (json_integer_value(json_object_get(s, "model_version")) != 2 ||
            !(fabs(num(s, "expected") - py[i - HOURS]) <= 1e-5 * fmax(1, fabs(py[i - HOURS]))))
            wrong++;
    }
    HVS_CHECK(wrong == 0, "%d scores after the swap not by v2 (or not v2's prediction)", wrong);
    HVS_CHECK(hvs_test_proc_exited(&worker, NULL) == false, "the scorer kept running");
}

/* Seed 004's story: an upstream change sends use_lag_24 as 0 for every apartment of a fleet
 * (fillna(0)). With a version that carries a training profile serving, MODEL_DRIFT names the
 * feature within 2 hours of event time of the onset, never before it, and every apartment-hour
 * is still scored. */
#define FLEET 12
#define F0 (HOURS + 24)
#define FILLNA (F0 + 30)

static void send_fleet(int from, int to) {
    for (int i = from; i < to; i++)
        for (int a = 0; a < FLEET; a++) {
            char apt[16];
            snprintf(apt, sizeof apt, "f_%02d", a);
            send_agg("bldg_fleet", apt, 100 + a, i, 60, -1);
            send_vec("bldg_fleet", "bldg_fleet", apt, 100 + a, i, NULL, NAN);
        }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush");
}

static void test_fillna_drift(void) {
    char json[2048];
    snprintf(json, sizeof json, BUILDING_JSON, "bldg_fleet", (long long)(T0 - 400 * DAY), "f_00",
             (long long)T0);
    send_json(enc_bld, "topology", "bldg_fleet", json);
    hvs_model_t *v4 = train(HVS_TASK_ANOMALY_RESIDUAL, 1.0);
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 4, v4, false, NULL, true);
    hvs_model_destroy(v4);
    HVS_REQUIRE(log_has("anomaly-residual/global:4 now serves"), "v4 (with a profile) serves");
    fillna_from = FILLNA;
    send_fleet(F0, FILLNA + 6);
    size_t want = 3 * (HOURS + 24) + FLEET * (FILLNA + 6 - F0);
    json_decref(all);
    all = wait_scores(want);
    HVS_CHECK_EQ_INT((int)json_object_size(all), (int)want);
    json_t *alerts = NULL;
    hvs_ms_t found = HVS_MS_NONE, early = HVS_MS_NONE;
    for (int k = 0; k < 100 && found == HVS_MS_NONE; k++) {
        json_decref(alerts);
        alerts = hvs_test_tail_json(env, "alerts", NULL);
        size_t i;
        json_t *m;
        json_array_foreach(alerts, i, m) {
            json_t *v = json_object_get(m, "value");
            json_t *ev = json_object_get(v, "evidence");
            if (strcmp(json_string_value(json_object_get(v, "type")), "MODEL_DRIFT") ||
                strcmp(json_string_value(json_object_get(v, "model")),
                       "anomaly-residual/global:4") ||
                !json_object_get(ev, "constant:use_lag_24"))
                continue;
            hvs_ms_t at = json_integer_value(json_object_get(v, "first_seen"));
            if (at < T0 + FILLNA * HOUR)
                early = at;
            else if (found == HVS_MS_NONE || at < found)
                found = at;
            HVS_CHECK_EQ_STR(json_string_value(json_object_get(ev, "constant:use_lag_24")), "0");
        }
        if (found == HVS_MS_NONE)
            usleep(200000);
    }
    HVS_CHECK(early == HVS_MS_NONE, "no constant-feature alert before the onset (one at %lld)",
              (long long)early);
    HVS_REQUIRE(found != HVS_MS_NONE, "MODEL_DRIFT naming use_lag_24 raised");
    HVS_CHECK(found <= T0 + (FILLNA + 2) * HOUR, "raised %lld h after the onset (at most 2)",
              (long long)((found - T0) / HOUR - FILLNA));
    json_decref(alerts);
}

/* SIGTERM: the batch finishes, the group is left, everything freed - exit 0 (under ASan a leak
 * or any error report would make it non-zero). */
static void test_clean_stop(void) {
    HVS_REQUIRE(kill(worker.pid, SIGTERM) == 0, "SIGTERM");
    int status = -1;
    for (int i = 0; i < 300 && !hvs_test_proc_exited(&worker, &status); i++)
        usleep(100000);
    HVS_CHECK_EQ_INT(status, 0);
    worker.pid = 0;
}

/* Feature set 2 came with this build: a version trained on feature set 1 is refused by the
 * registry, and with no version of this feature set approved the scorer scores by the rules
 * alone - until the trainer's new version is approved, which serves at once. */
static int fleet_strategy(int hour, const char *want) {
    int bad = 0;
    for (int a = 0; a < FLEET; a++) {
        char apt[16];
        snprintf(apt, sizeof apt, "f_%02d", a);
        json_t *s = score_of(all, apt, hour);
        bad += !s || strcmp(json_string_value(json_object_get(s, "strategy")), want) != 0;
    }
    return bad;
}

static void test_feature_set_fallback(void) {
    hvs_model_t *m = train(HVS_TASK_ANOMALY_RESIDUAL, 1.0),
                *c = train(HVS_TASK_ANOMALY_CLASSIFIER, 1.0);
    publish_fsv = "fs-1-88ba665e"; /* what the trainer of the previous build wrote */
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 5, m, false, NULL, false);
    publish("anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER, 2, c, false, NULL, false);
    publish_fsv = NULL;
    HVS_REQUIRE(log_has("anomaly-residual/global v5 refused (feature_mismatch)") &&
                    log_has("anomaly-classifier/global v2 refused (feature_mismatch)"),
                "versions of feature set 1 refused");
    /* the versions of this feature set retired: only the refused ones are left */
    publish_status = HVS_MODEL_ARCHIVED;
    for (int v = 1; v <= 4; v++)
        if (v != 3)
            publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, v, m, false, NULL, false);
    publish("anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER, 1, c, false, NULL, false);
    publish_status = HVS_MODEL_APPROVED;
    HVS_REQUIRE(log_has("anomaly-residual/global: none now serves") &&
                    log_has("anomaly-classifier/global: none now serves"),
                "nothing serves");
    int h0 = FILLNA + 6;
    send_fleet(h0, h0 + 2);
    size_t want = 3 * (HOURS + 24) + FLEET * (h0 + 2 - F0);
    json_decref(all);
    all = wait_scores(want);
    HVS_CHECK(fleet_strategy(h0, "RULES") == 0 && fleet_strategy(h0 + 1, "RULES") == 0,
              "rules alone while no version of feature set 2 is approved");
    publish("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL, 6, m, false, NULL, true);
    publish("anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER, 3, c, false, NULL, false);
    HVS_REQUIRE(log_has("anomaly-residual/global:6 now serves") &&
                    log_has("anomaly-classifier/global:3 now serves"),
                "the new versions serve");
    send_fleet(h0 + 2, h0 + 3);
    json_decref(all);
    all = wait_scores(want + FLEET);
    HVS_CHECK(fleet_strategy(h0 + 2, "COMBINED") == 0, "the approved versions score again");
    hvs_model_destroy(m);
    hvs_model_destroy(c);
}

static void run_all(void) {
    setup();
    test_every_hour_stamped();
    test_values();
    test_rules_and_reasons();
    test_dead_letters();
    test_state_in_redis();
    test_hot_swap();
    test_fillna_drift();
    test_feature_set_fallback();
    test_clean_stop();
}

static const hvs_test_case_t cases[] = {
    {"scorer", run_all},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
