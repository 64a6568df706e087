/*
 * test_hvsctl_score_it - `hvsctl score` as a real process against a real hvs-devbroker. Model
 * versions trained here (version k learns y = k * x0 + x1 on the task's columns, so versions
 * predict differently) are published on `models`, a building on `topology`; files of feature
 * rows are scored and every output line is checked against what this test computes itself:
 *  - JSON lines (some in `hvsctl tail`'s envelope, written newest hour first) scored by
 *    anomaly-residual/global: each prediction is what model.h predicts for the row this test
 *    builds with task_rows.h from the same vector (the version's own UBJ loaded here);
 *    observed_kwh is the row's target; residual_z is the scorer's standardisation recomputed
 *    here from the rows' residuals (6-hour window sums against the apartment's earlier
 *    windows: median and 1.4826 MAD), in hour order whatever the file's order;
 *  - NAME picks the active version (2), NAME:1 the older one (said on stderr), the version
 *    column says which and the predictions follow the version;
 *  - CSV scored by forecast/global: kWh = max(0, prediction x heated area), the area from the
 *    row's column or, without one, from the building on `topology`; a building with neither and
 *    a cell that is not a number are refused with their reasons (exit 3) while the other rows
 *    are scored;
 *  - bad JSON lines (not JSON, another feature set, building level for an anomaly model) are
 *    named on stderr with their line, written with an empty prediction and the reason, exit 3;
 *  - unknown names and versions exit 1 naming them; usage errors exit 2.
 */
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define T0 INT64_C(1735689600000) /* 2025-01-01T00:00:00Z */
#define RES "anomaly-residual/global"
#define FC "forecast/global"
#define NH 48 /* hours of apt_1 */
#define NV (NH + 10)

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_test_proc_t broker;
static char env[512];
static char dir[] = "/tmp/hvs-score-test-XXXXXX";
static hvs_model_t *res_model[3], *fc_model;

/* ---- setup ------------------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;
static double uni(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A model of y = k * col0 + col1 over the task's columns; its UBJ and zlib bytes. */
static hvs_model_t *train(hvs_task_t task, int k, unsigned char **z, size_t *zl) {
    enum { N = 300 };
    size_t nc = hvs_taskrow_ncols(task);
    float *x = malloc(N * nc * sizeof *x), y[N];
    for (int i = 0; i < N; i++) {
        for (size_t c = 0; c < nc; c++)
            x[i * nc + c] = (float)(uni() * 10);
        y[i] = (float)(k * x[i * nc] + x[i * nc + 1]);
    }
    hvs_train_params_t p = {.rounds = 25, .eta = 0.3, .max_depth = 3, .nthread = 1};
    hvs_model_t *m;
    unsigned char *ubj;
    size_t ul;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, nc, NULL, NULL, 0, &p, &m, NULL, &err) == 0 &&
                    hvs_model_save(m, &ubj, &ul, &err) == 0 &&
                    hvs_zlib_compress(ubj, ul, z, zl, &err) == 0,
                "train %s v%d: %s", hvs_taskrow_task_name(task), k, err.msg);
    free(ubj);
    free(x);
    return m;
}

static void send_rec(const char *topic, const char *key, const void *buf, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                                  &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "send %s: %s", key, err.msg);
}

static void publish(const char *name, int k, hvs_task_t task, hvs_model_status_t st,
                    const unsigned char *z, size_t zl) {
    hvs_encoder_t *enc;
    hvs_err_t err = {0};
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    const char *params[] = {"task", hvs_taskrow_task_name(task), "target_scale",
                            hvs_taskrow_scale_name(hvs_taskrow_scale(task)), NULL};
    hvs_model_record_t rec = {.name = name,
                              .version = k,
                              .status = st,
                              .features = cols,
                              .nfeatures = nc,
                              .train_start = T0 - 30 * HVS_MS_DAY,
                              .train_end = T0,
                              .created_at = T0 + k,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .params = params,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    char key[128];
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0 &&
                    hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0,
                "encode %s: %s", name, err.msg);
    hvs_registry_key(key, sizeof key, name, k);
    send_rec("models", key, buf, len);
    hvs_encoder_destroy(enc);
}

static void stop_broker(void) {
    hvs_test_proc_stop(&broker);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    HVS_CHECK(system(cmd) == 0, "rm %s", dir);
}

static void setup(void) {
    static bool done;
    if (done)
        return;
    done = true;
    HVS_REQUIRE(mkdtemp(dir) != NULL, "mkdtemp");
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0,
                "setup: %s", err.msg);
    unsigned char *z;
    size_t zl;
    for (int k = 1; k <= 2; k++) {
        res_model[k] = train(HVS_TASK_ANOMALY_RESIDUAL, k, &z, &zl);
        publish(RES, k, HVS_TASK_ANOMALY_RESIDUAL, HVS_MODEL_APPROVED, z, zl);
        if (k == 1) /* a name whose own last part looks like a version */
            publish("anomaly-residual/building:42", 1, HVS_TASK_ANOMALY_RESIDUAL,
                    HVS_MODEL_APPROVED, z, zl);
        free(z);
    }
    fc_model = train(HVS_TASK_FORECAST, 3, &z, &zl);
    publish(FC, 1, HVS_TASK_FORECAST, HVS_MODEL_APPROVED, z, zl);
    free(z);
    /* b2's heated area comes from topology */
    hvs_encoder_t *enc;
    char bj[512];
    snprintf(
        bj, sizeof bj,
        "{\"building_id\":\"b2\",\"archetype\":\"mfh\",\"commissioning_date\":%lld,"
        "\"latitude\":47.4,\"longitude\":8.5,\"heated_area_m2\":800,"
        "\"holiday_region\":\"CH-ZH\",\"apartments\":[{\"apartment_id\":\"apt_1\"}],\"updated_at\":%lld}",
        (long long)(T0 - 400 * HVS_MS_DAY), (long long)T0);
    const void *buf;
    size_t len;
    HVS_REQUIRE(
        hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc, &err) == 0 &&
            hvs_serde_value_from_json(serde, hvs_encoder_value(enc), bj, strlen(bj), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, &len, &err) == 0,
        "building: %s", err.msg);
    send_rec("topology", "b2", buf, len);
    hvs_encoder_destroy(enc);
}

/* ---- rows and runs ------------------------------------------------------------------------------ */

typedef struct vec {
    const char *building, *apartment;
    hvs_ms_t hour;
    double x[HVS_FEATURES_COUNT];
    double target, area;
} vec_t;

static void random_vec(vec_t *v, const char *b, const char *a, hvs_ms_t hour, double horizon) {
    v->building = b, v->apartment = a, v->hour = hour;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        v->x[i] = uni() < 0.1 ? NAN : uni() * 10;
    v->x[0] = horizon;
    v->target = 4 + uni() * 8;
    v->area = NAN;
}

/* A vector's natural JSON (what `hvsctl tail features.hourly` prints as the value). */
static char *vec_json(const vec_t *v, const char *fsv) {
    json_t *o = json_object(), *names = json_array(), *values = json_array();
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        json_array_append_new(names, json_string(hvs_features_names()[i]));
        json_array_append_new(values, isnan(v->x[i]) ? json_null() : json_real(v->x[i]));
    }
    json_object_set_new(o, "building_id", json_string(v->building));
    json_object_set_new(o, "apartment_id", v->apartment ? json_string(v->apartment) : json_null());
    json_object_set_new(o, "target_hour", json_integer(v->hour));
    json_object_set_new(o, "as_of", json_integer(v->hour + HVS_MS_HOUR));
    json_object_set_new(o, "feature_set_version", json_string(fsv ? fsv : hvs_features_version()));
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "values", values);
    json_object_set_new(o, "target", json_real(v->target));
    json_object_set_new(o, "quality_flags", json_array());
    json_object_set_new(o, "revision", json_integer(0));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* What model.h predicts for v's row of `task` (built here with task_rows.h). */
static double predict(hvs_model_t *m, hvs_task_t task, const vec_t *v, double area) {
    double row[HVS_TASKROW_MAX_COLS];
    float x[HVS_TASKROW_MAX_COLS], out = NAN;
    size_t nc = hvs_taskrow_ncols(task);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_taskrow_build(task, v->x, area, row, &err) == 0, "row: %s", err.msg);
    for (size_t i = 0; i < nc; i++)
        x[i] = (float)row[i];
    HVS_REQUIRE(hvs_model_predict(m, x, 1, &out, &err) == 0, "predict: %s", err.msg);
    return out;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* `hvsctl score ARGS`: exit status; stdout lines split into fields (out->f[line][col]) and
 * stderr text into *errtext (caller frees). */
#define MAXL 128
#define NCOL 13
typedef struct out {
    char *text;
    int n;               /* data lines (header excluded) */
    char *f[MAXL][NCOL]; /* fields of data line i */
    char header[256];
} out_t;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    char *t = calloc(1, 1 << 20);
    if (f) {
        size_t n = fread(t, 1, (1 << 20) - 1, f);
        t[n] = 0;
        fclose(f);
    }
    return t;
}

/* outfile: the output is read from there (--out), and stdout must stay empty. */
static int score(const char *args, const char *outfile, out_t *o, char **errtext) {
    char cmd[2048 + 512], errpath[300];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "%s %s score %s 2>%s", env, HVS_TEST_HVSCTL, args, errpath);
    memset(o, 0, sizeof *o);
    int rc = hvs_test_run(cmd, NULL, 0, &o->text, NULL);
    *errtext = slurp(errpath);
    if (outfile) {
        HVS_CHECK(!o->text || !o->text[0], "with --out nothing on stdout: %s", o->text);
        free(o->text);
        o->text = slurp(outfile);
    }
    int line = -1;
    for (char *p = o->text, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        if (line < 0) {
            snprintf(o->header, sizeof o->header, "%s", p);
        } else if (line < MAXL) {
            char *s = p;
            for (int c = 0; c < NCOL; c++) {
                o->f[line][c] = s;
                char *comma = s ? strchr(s, ',') : NULL;
                if (comma)
                    *comma = 0;
                s = comma ? comma + 1 : NULL;
            }
        }
        line++;
    }
    o->n = line < 0 ? 0 : line;
    return rc;
}

enum { F_LINE, F_B, F_A, F_HOUR, F_HZ, F_MODEL, F_VER, F_PRED, F_UNIT, F_SCORE, F_OBS, F_Z, F_WHY };

static double num(const char *s) { return s && *s ? strtod(s, NULL) : NAN; }

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1, fabs(b)); }

/* ---- the scorer's standardisation, recomputed ----------------------------------------------- */

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmpd);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* z of hour index h of a series of hourly residuals r[0..h] (window 6, 24 earlier windows of
 * the 72-hour ring at least, spread floor 0.05 sqrt(6)); NaN when there are too few. */
static double zscore(const double *r, int h) {
    enum { W = 6 };
    if (h < W - 1)
        return NAN;
    double sum = 0, v[80];
    for (int k = 0; k < W; k++)
        sum += r[h - k];
    size_t n = 0;
    /* windows of W consecutive hours among h-71 .. h-W */
    for (int end = h - W; end - (W - 1) >= 0 && end - (W - 1) >= h - 71; end--) {
        double s = 0;
        for (int k = 0; k < W; k++)
            s += r[end - k];
        v[n++] = s;
    }
    if (n < 24)
        return NAN;
    double med = median(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = fabs(v[i] - med);
    double spread = 1.4826 * median(v, n), floor = 0.05 * sqrt((double)W);
    return (sum - med) / (spread >= floor ? spread : floor);
}

/* ---- cases ---------------------------------------------------------------------------------- */

static vec_t vecs[NV];
static int line_of[NV]; /* the file line of each vector */

/* apt_1: NH hours, apt_2: 10; written newest first, every third line in tail's envelope. */
static void write_jsonl(const char *path) {
    for (int i = 0; i < NH; i++)
        random_vec(&vecs[i], "b1", "apt_1", T0 + i * HVS_MS_HOUR, 0);
    for (int i = NH; i < NV; i++)
        random_vec(&vecs[i], "b1", "apt_2", T0 + (i - NH) * HVS_MS_HOUR, 0);
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f, "open %s", path);
    for (int k = 0; k < NV; k++) {
        int i = NV - 1 - k;
        char *s = vec_json(&vecs[i], NULL);
        if (k % 3 == 0)
            fprintf(f,
                    "{\"topic\":\"features.hourly\",\"partition\":0,\"offset\":%d,\"key\":\"b1\","
                    "\"value\":%s}\n",
                    k, s);
        else
            fprintf(f, "%s\n", s);
        line_of[i] = k + 1;
        free(s);
    }
    fclose(f);
}

/* Every vector's output line against the model of version v. */
static void check_residual(const out_t *o, int v) {
    HVS_CHECK_EQ_INT(o->n, NV);
    double resid[NH];
    for (int i = 0; i < NV && o->n == NV; i++) {
        char *const *f = o->f[line_of[i] - 1];
        double want = predict(res_model[v], HVS_TASK_ANOMALY_RESIDUAL, &vecs[i], NAN);
        char hour[40];
        hvs_time_format_iso8601(vecs[i].hour, hour, sizeof hour);
        HVS_CHECK(atoi(f[F_LINE]) == line_of[i] && hvs_test_streq(f[F_B], "b1") &&
                      hvs_test_streq(f[F_A], vecs[i].apartment) && hvs_test_streq(f[F_HOUR], hour),
                  "line %d: keys %s %s %s", line_of[i], f[F_B], f[F_A], f[F_HOUR]);
        HVS_CHECK(hvs_test_streq(f[F_MODEL], RES) && atoi(f[F_VER]) == v, "line %d: %s v%s",
                  line_of[i], f[F_MODEL], f[F_VER]);
        HVS_CHECK(near(num(f[F_PRED]), want), "line %d: prediction %s, model.h says %.9g",
                  line_of[i], f[F_PRED], want);
        HVS_CHECK(
            hvs_test_streq(f[F_UNIT], "kwh") && near(num(f[F_OBS]), vecs[i].target) && !*f[F_WHY],
            "line %d: unit %s observed %s reason %s", line_of[i], f[F_UNIT], f[F_OBS], f[F_WHY]);
        if (i < NH)
            resid[i] = (double)(float)vecs[i].target - (double)(float)want;
    }
    int nz = 0;
    for (int h = 0; h < NH && o->n == NV; h++) {
        char *const *f = o->f[line_of[h] - 1];
        double z = zscore(resid, h), got = num(f[F_Z]);
        HVS_CHECK(isnan(z) ? isnan(got) : fabs(got - z) <= 1e-3 * fmax(1, fabs(z)),
                  "hour %d: residual_z %s, recomputed %.6g", h, f[F_Z], z);
        double e = isfinite(z) ? 0.5 * fmin(1, fmax(0, (fabs(z) - 3) / 3)) : 0;
        HVS_CHECK(near(num(f[F_SCORE]), e), "hour %d: score %s, evidence of z %.4g is %.6g", h,
                  f[F_SCORE], z, e);
        nz += isfinite(z);
    }
    HVS_CHECK(nz >= 10, "%d hours with a residual_z (the last hours of apt_1 have one)", nz);
}

static void case_jsonl_versions(void) {
    setup();
    char path[300], args[1024];
    snprintf(path, sizeof path, "%s/rows.jsonl", dir);
    write_jsonl(path);
    out_t o;
    char *e;
    snprintf(args, sizeof args, "--model %s %s", RES, path);
    int rc = score(args, NULL, &o, &e);
    HVS_CHECK(rc == 0, "score %s: rc %d, stderr: %s", args, rc, e);
    HVS_CHECK(!strstr(e, "not the active version"), "active version needs no note: %s", e);
    HVS_CHECK_EQ_STR(o.header, "line,building_id,apartment_id,target_hour,horizon_h,model,version,"
                               "prediction,unit,score,observed_kwh,residual_z,reason");
    check_residual(&o, 2);
    free(o.text);
    free(e);
    /* the older version, by name: said on stderr, its own predictions, to --out */
    char outpath[300];
    snprintf(outpath, sizeof outpath, "%s/v1.csv", dir);
    snprintf(args, sizeof args, "--model %s:1 --out %s %s", RES, outpath, path);
    rc = score(args, outpath, &o, &e);
    HVS_CHECK(rc == 0 && strstr(e, RES ":1 is not the active version") &&
                  strstr(e, "active: version 2"),
              "score v1: rc %d, stderr: %s", rc, e);
    check_residual(&o, 1);
    double d = 0;
    for (int i = 0; i < NV && o.n == NV; i++)
        d += fabs(num(o.f[line_of[i] - 1][F_PRED]) -
                  predict(res_model[2], HVS_TASK_ANOMALY_RESIDUAL, &vecs[i], NAN));
    HVS_CHECK(d > 1, "versions 1 and 2 predict differently (sum of differences %.3g)", d);
    free(o.text);
    free(e);
}

static void case_csv_forecast(void) {
    setup();
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(HVS_TASK_FORECAST, &nc);
    char *text = malloc(1 << 16), path[300], args[1024];
    size_t len = (size_t)sprintf(text, "building_id,target_hour,heated_area_m2,target");
    for (size_t i = 0; i < nc; i++)
        len += (size_t)sprintf(text + len, ",%s", cols[i]);
    len += (size_t)sprintf(text + len, "\n");
    enum { N = 8 };
    vec_t v[N];
    const char *bld[N] = {"b1", "b1", "b2", "b2", "b3", "b1", "b1", "b2"};
    for (int i = 0; i < N; i++) {
        random_vec(&v[i], bld[i], NULL, T0 + i * HVS_MS_HOUR, 1 + i);
        v[i].area = strcmp(bld[i], "b1") == 0 ? 1200 : NAN;
        char hour[40];
        hvs_time_format_iso8601(v[i].hour, hour, sizeof hour);
        len += (size_t)sprintf(text + len, "%s,%s,", bld[i], hour);
        if (isfinite(v[i].area))
            len += (size_t)sprintf(text + len, "%g", v[i].area);
        len += (size_t)sprintf(text + len, ",%.17g", v[i].target);
        for (size_t c = 0; c < nc; c++) {
            double x = v[i].x[hvs_features_index(cols[c])];
            if (i == 6 && c == 3)
                len += (size_t)sprintf(text + len, ",abc");
            else if (isnan(x))
                len += (size_t)sprintf(text + len, ",");
            else
                len += (size_t)sprintf(text + len, ",%.17g", x);
        }
        len += (size_t)sprintf(text + len, "\n");
    }
    snprintf(path, sizeof path, "%s/rows.csv", dir);
    write_file(path, text);
    free(text);
    out_t o;
    char *e;
    snprintf(args, sizeof args, "--model %s %s", FC, path);
    int rc = score(args, NULL, &o, &e);
    HVS_CHECK(rc == 3, "score %s: rc %d (want 3: rows refused), stderr: %s", args, rc, e);
    HVS_CHECK_EQ_INT(o.n, N);
    for (int i = 0; i < N && o.n == N; i++) {
        char *const *f = o.f[i];
        HVS_CHECK(atoi(f[F_LINE]) == i + 2 && hvs_test_streq(f[F_B], bld[i]) && !*f[F_A] &&
                      hvs_test_streq(f[F_MODEL], FC) && atoi(f[F_VER]) == 1 &&
                      num(f[F_HZ]) == 1 + i,
                  "line %d: keys %s %s %s h%s", i + 2, f[F_B], f[F_MODEL], f[F_VER], f[F_HZ]);
        if (i == 4 || i == 6)
            continue;
        double area = strcmp(bld[i], "b2") == 0 ? 800 : 1200;
        double want = fmax(0, predict(fc_model, HVS_TASK_FORECAST, &v[i], area) * area);
        HVS_CHECK(near(num(f[F_PRED]), want) && hvs_test_streq(f[F_UNIT], "kwh") && !*f[F_WHY],
                  "line %d (%s, area %g): prediction %s %s, want %.9g kWh (reason %s)", i + 2,
                  bld[i], area, f[F_PRED], f[F_UNIT], want, f[F_WHY]);
        HVS_CHECK(want > 100, "line %d: %.6g kWh: the area multiplies (%.4g per m2)", i + 2, want,
                  want / area);
    }
    if (o.n == N) {
        HVS_CHECK(!*o.f[4][F_PRED] && hvs_test_streq(o.f[4][F_WHY], "no_area"),
                  "b3 has no area: prediction \"%s\" reason %s", o.f[4][F_PRED], o.f[4][F_WHY]);
        HVS_CHECK(!*o.f[6][F_PRED] && hvs_test_streq(o.f[6][F_WHY], "bad_csv"),
                  "abc: prediction \"%s\" reason %s", o.f[6][F_PRED], o.f[6][F_WHY]);
    }
    HVS_CHECK(strstr(e, "line 6:") && strstr(e, "no_area") && strstr(e, "line 8:") &&
                  strstr(e, "not a finite number") && strstr(e, "6 rows scored") &&
                  strstr(e, "2 refused"),
              "stderr names the refused lines: %s", e);
    free(o.text);
    free(e);
}

static void case_bad_jsonl(void) {
    setup();
    vec_t v[4];
    random_vec(&v[0], "b1", "apt_1", T0, 0);
    random_vec(&v[1], "b1", "apt_1", T0 + HVS_MS_HOUR, 0);
    random_vec(&v[2], "b1", NULL, T0, 0);
    random_vec(&v[3], "b1", "apt_1", T0 + 2 * HVS_MS_HOUR, 0);
    char *a = vec_json(&v[0], NULL), *b = vec_json(&v[1], "fs-0-deadbeef"),
         *c = vec_json(&v[2], NULL), *d = vec_json(&v[3], NULL);
    char *text = malloc(strlen(a) + strlen(b) + strlen(c) + strlen(d) + 64), path[300], args[1024];
    sprintf(text, "%s\n{not json\n%s\n\n%s\n%s\n", a, b, c, d);
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    write_file(path, text);
    free(a), free(b), free(c), free(d), free(text);
    out_t o;
    char *e;
    snprintf(args, sizeof args, "--model %s:2 - < %s", RES, path);
    int rc = score(args, NULL, &o, &e);
    HVS_CHECK(rc == 3, "rc %d (want 3), stderr: %s", rc, e);
    HVS_CHECK_EQ_INT(o.n, 5); /* the blank line is skipped */
    static const int lines[5] = {1, 2, 3, 5, 6};
    static const char *why[5] = {"", "json_syntax", "feature_mismatch", "building_level", ""};
    for (int i = 0; i < 5 && o.n == 5; i++) {
        char *const *f = o.f[i];
        HVS_CHECK(atoi(f[F_LINE]) == lines[i] && hvs_test_streq(f[F_WHY], why[i]) &&
                      (*why[i] ? !*f[F_PRED] : *f[F_PRED] != 0),
                  "row %d: line %s prediction \"%s\" reason \"%s\" (want line %d, \"%s\")", i,
                  f[F_LINE], f[F_PRED], f[F_WHY], lines[i], why[i]);
    }
    if (o.n == 5) {
        HVS_CHECK(near(num(o.f[0][F_PRED]),
                       predict(res_model[2], HVS_TASK_ANOMALY_RESIDUAL, &v[0], NAN)) &&
                      near(num(o.f[4][F_PRED]),
                           predict(res_model[2], HVS_TASK_ANOMALY_RESIDUAL, &v[3], NAN)),
                  "good rows scored: %s %s", o.f[0][F_PRED], o.f[4][F_PRED]);
    }
    HVS_CHECK(strstr(e, "line 2:") && strstr(e, "line 3:") && strstr(e, "feature set") &&
                  strstr(e, "line 5:"),
              "stderr names lines 2, 3, 5: %s", e);
    free(o.text);
    free(e);
}

static void case_refusals(void) {
    setup();
    char path[300], args[1024];
    snprintf(path, sizeof path, "%s/one.jsonl", dir);
    vec_t v;
    random_vec(&v, "b1", "apt_1", T0, 0);
    char *line = vec_json(&v, NULL);
    write_file(path, line);
    free(line);
    static const struct {
        const char *model;
        int rc;
        const char *says;
    } t[] = {{"anomaly-residual/nope", 1, "no model named \"anomaly-residual/nope\""},
             {RES ":7", 1, "has no version 7"},
             {"refresh/global", 1, "only forecast"},
             {NULL, 2, "--model"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].model)
            snprintf(args, sizeof args, "--model %s %s", t[i].model, path);
        else
            snprintf(args, sizeof args, "%s", path);
        out_t o;
        char *e;
        int rc = score(args, NULL, &o, &e);
        HVS_CHECK(rc == t[i].rc && strstr(e, t[i].says) && o.n == 0 && !o.header[0],
                  "score %s: rc %d (want %d), stderr must say \"%s\": %s", args, rc, t[i].rc,
                  t[i].says, e);
        free(o.text);
        free(e);
    }
}

/* "NAME:N" where no NAME has versions but "NAME:N" itself is a model's name */
static void case_digit_name(void) {
    setup();
    char path[300], args[1024];
    snprintf(path, sizeof path, "%s/one42.jsonl", dir);
    vec_t v;
    random_vec(&v, "42", "apt_1", T0, 0);
    char *line = vec_json(&v, NULL);
    write_file(path, line);
    free(line);
    out_t o;
    char *e;
    snprintf(args, sizeof args, "--model anomaly-residual/building:42 %s", path);
    int rc = score(args, NULL, &o, &e);
    HVS_CHECK(
        rc == 0 && o.n == 1 && hvs_test_streq(o.f[0][F_MODEL], "anomaly-residual/building:42") &&
            atoi(o.f[0][F_VER]) == 1 &&
            near(num(o.f[0][F_PRED]), predict(res_model[1], HVS_TASK_ANOMALY_RESIDUAL, &v, NAN)),
        "score %s: rc %d, %d lines, stderr: %s", args, rc, o.n, e);
    free(o.text);
    free(e);
}

static const hvs_test_case_t cases[] = {
    {"jsonl_scored_as_model_h_and_scorer_z_active_and_older_version", case_jsonl_versions},
    {"csv_forecast_kwh_by_area_of_row_or_topology_bad_rows_refused", case_csv_forecast},
    {"bad_jsonl_rows_named_good_rows_scored_exit_3", case_bad_jsonl},
    {"unknown_model_version_exit_1_usage_exit_2", case_refusals},
    {"name_ending_in_digits_is_a_name", case_digit_name},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    int rc = hvs_test_main(cases, argc, argv);
    for (int k = 1; k <= 2; k++)
        hvs_model_destroy(res_model[k]);
    hvs_model_destroy(fc_model);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    return rc;
}
