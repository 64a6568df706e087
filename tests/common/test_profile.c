/*
 * test_profile - the profile table (profile.h): the built-in heat profile is the sensor table,
 * forecast columns and target scale the pipeline always had (listed here, not read back from
 * the module); ev_charging (run as its own process, `test_profile ev_rows`: the task rows
 * resolve the profile once per process) knows only the charger counter, drops heating physics
 * from the forecast columns and forecasts kWh without an area; the registry refuses a model of
 * the other profile (profile_mismatch) and takes its own; a user's file adds and replaces
 * profiles, and malformed files fail with FILE:LINE and leave the profile in use as it was.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/log.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/profile.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

/* heat's table as reading.h documented it before profiles existed */
static const struct {
    const char *type, *unit;
    double min, max;
    bool cumulative, per_room;
    hvs_profile_channel_t ch;
} heat_sensors[] = {
    {"heating_energy_kwh", "kWh", 0, 1e9, true, false, HVS_CH_USE},
    {"hot_water_litres", "litres", 0, 1e10, true, false, HVS_CH_WATER},
    {"room_temp_c", "degC", -30, 60, false, true, HVS_CH_TEMP},
    {"setpoint_temp_c", "degC", 5, 35, false, true, HVS_CH_SETPOINT},
    {"valve_position_pct", "percent", 0, 100, false, true, HVS_CH_VALVE},
    {"humidity_pct", "percent", 0, 100, false, true, HVS_CH_HUMIDITY},
};


static bool has_col(const char *name) {
    size_t n;
    const char *const *c = hvs_taskrow_columns(HVS_TASK_FORECAST, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i], name) == 0)
            return true;
    return false;
}

/* A linear forecast record (params: the profile given, or none) encoded and loaded. */
static int load_model(const char *profile, hvs_err_t *err) {
    hvs_serde_t *serde = NULL;
    hvs_encoder_t *enc = NULL;
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, err) == 0,
                "serde: %s", err->msg);
    static const char *feats[2] = {"temperature_c", "use_lag_24"};
    double coef[3] = {1.5, 0.1, 0.9};
    hvs_model_t *m = NULL;
    unsigned char *raw = NULL, *z = NULL;
    size_t rl = 0, zl = 0;
    HVS_REQUIRE(hvs_model_linear_new(2, -1, 1, NULL, coef, &m, err) == 0 &&
                    hvs_model_save(m, &raw, &rl, err) == 0 &&
                    hvs_zlib_compress(raw, rl, &z, &zl, err) == 0,
                "model: %s", err->msg);
    const char *params[] = {"target_scale", "kwh", profile ? "profile" : NULL, profile, NULL};
    hvs_model_record_t rec = {.name = "forecast/global",
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = feats,
                              .nfeatures = 2,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .params = params,
                              .model_format = HVS_MODEL_FORMAT_LINEAR,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf = NULL;
    size_t len = 0;
    hvs_model_ref_t *ref = NULL;
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, err) == 0, "encode: %s",
                err->msg);
    hvs_err_clear(err);
    int rc = hvs_registry_load_record(serde, buf, len, &ref, err);
    if (ref)
        hvs_registry_release(ref);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(serde);
    hvs_model_destroy(m);
    free(raw);
    free(z);
    return rc;
}

static void test_builtin_heat(void) {
    const hvs_profile_t *p = hvs_profile_active();
    HVS_CHECK_EQ_STR(p->name, "heat");
    HVS_CHECK_EQ_STR(p->quantity, "heating_energy_kwh");
    HVS_CHECK_EQ_STR(p->target_scale, "per_heated_m2");
    HVS_CHECK(p->monotone && p->meter_max_kw == 0 && p->window_ms == 3600000, "heat settings");
    for (int t = 0; t < HVS_TASK_COUNT; t++)
        HVS_CHECK(hvs_profile_task_on(p, t), "heat trains task %d", t);
    size_t n = 0;
    const hvs_sensor_info_t *t = hvs_reading_sensors(&n);
    HVS_REQUIRE(n == sizeof heat_sensors / sizeof heat_sensors[0], "%zu heat sensors", n);
    for (size_t i = 0; i < n; i++) {
        HVS_CHECK_EQ_STR(t[i].type, heat_sensors[i].type);
        HVS_CHECK_EQ_STR(t[i].unit, heat_sensors[i].unit);
        HVS_CHECK(t[i].min == heat_sensors[i].min && t[i].max == heat_sensors[i].max &&
                      t[i].cumulative == heat_sensors[i].cumulative &&
                      t[i].per_room == heat_sensors[i].per_room &&
                      p->channel[i] == heat_sensors[i].ch,
                  "sensor %s", heat_sensors[i].type);
    }
    HVS_CHECK(hvs_reading_sensor("charger_energy_kwh") == NULL, "no charger in heat");
    HVS_CHECK_EQ_STR(hvs_profile_channel_sensor(HVS_CH_WATER), "hot_water_litres");
}

/* heat's forecast rows: every feature but the hour's own comfort and rooms, per m2 */
static void test_heat_rows(void) {
    static const char *const without[] = {"room_temp_c",    "setpoint_c",      "comfort_gap_c",
                                          "valve_mean_pct", "room_temp_std_c", "room_flat_hours"};
    const char *const *names = hvs_features_names();
    size_t n, k = 0;
    const char *const *c = hvs_taskrow_columns(HVS_TASK_FORECAST, &n);
    HVS_CHECK_EQ_INT(n, HVS_FEATURES_COUNT - 6);
    for (int i = 0; i < HVS_FEATURES_COUNT && k < n; i++) {
        bool skip = false;
        for (size_t w = 0; w < 6; w++)
            skip |= strcmp(names[i], without[w]) == 0;
        if (!skip)
            HVS_CHECK_EQ_STR(c[k++], names[i]);
    }
    HVS_CHECK_EQ_INT(hvs_taskrow_scale(HVS_TASK_FORECAST), HVS_TARGET_PER_HEATED_M2);
    HVS_CHECK(isnan(hvs_taskrow_divisor(HVS_TASK_FORECAST, NAN)), "heat needs an area");
    hvs_err_t err = {0};
    HVS_CHECK(load_model(NULL, &err) == 0, "a record without profile is heat's: %s", err.msg);
    HVS_CHECK(load_model("heat", &err) == 0, "heat's: %s", err.msg);
    HVS_CHECK(load_model("ev_charging", &err) == HVS_ESERDE &&
                  strcmp(err.reason, "profile_mismatch") == 0 && strstr(err.msg, "ev_charging") &&
                  strstr(err.msg, "heat"),
              "an EV model refused in heat: %s (%s)", err.reason, err.msg);
}

static void test_ev_rows(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_profile_load("ev_charging", NULL, &err) == 0, "load: %s", err.msg);
    const hvs_profile_t *p = hvs_profile_active();
    HVS_CHECK_EQ_STR(p->quantity, "charger_energy_kwh");
    HVS_CHECK(!p->monotone && p->meter_max_kw == 150, "ev settings");
    /* a site has no rooms: the forecast's models and their refresh apply */
    HVS_CHECK(hvs_profile_task_on(p, HVS_TASK_FORECAST) &&
                  !hvs_profile_task_on(p, HVS_TASK_ANOMALY_RESIDUAL) &&
                  !hvs_profile_task_on(p, HVS_TASK_ANOMALY_CLASSIFIER) &&
                  hvs_profile_task_on(p, HVS_TASK_REFRESH) && !hvs_profile_task_on(p, -1) &&
                  !hvs_profile_task_on(p, HVS_TASK_COUNT),
              "ev tasks %#x", p->tasks);
    /* readings: the charger counter is known, heat's sensors are not */
    const char *line = "{\"timestamp\":1736121600000,\"building_id\":\"site_1\",\"apartment_id\":"
                       "\"chg_01\",\"readings\":[{\"sensor_type\":\"charger_energy_kwh\","
                       "\"value\":1822.5}]}";
    hvs_reading_t *r = calloc(1, sizeof *r);
    HVS_REQUIRE(r, "oom");
    HVS_CHECK(hvs_reading_parse_json(line, strlen(line), r, &err) == 0 &&
                  hvs_reading_validate(r, 1736121600000, 0, &err) == 0,
              "charger reading: %s", err.msg);
    snprintf(r->v[0].sensor_type, sizeof r->v[0].sensor_type, "heating_energy_kwh");
    hvs_err_clear(&err);
    HVS_CHECK(hvs_reading_validate(r, 1736121600000, 0, &err) == HVS_EINVAL &&
                  strcmp(err.reason, HVS_READING_R_UNKNOWN_SENSOR) == 0,
              "heat sensor in ev: %s", err.reason);
    snprintf(r->v[0].sensor_type, sizeof r->v[0].sensor_type, "charger_energy_kwh");
    r->v[0].value = -1;
    hvs_err_clear(&err);
    HVS_CHECK(hvs_reading_validate(r, 1736121600000, 0, &err) == HVS_EINVAL &&
                  strcmp(err.reason, HVS_READING_R_OUT_OF_RANGE) == 0,
              "negative counter: %s", err.reason);
    free(r);
    /* rows: no heating physics, temperature and the consumption history stay, kWh */
    for (const char *const *h = hvs_test_heating_physics; *h; h++)
        HVS_CHECK(!has_col(*h), "ev forecast reads %s", *h);
    HVS_CHECK(has_col("temperature_c") && has_col("use_lag_24") && has_col("use_lag_168") &&
                  has_col("hour_sin") && has_col("is_weekend") && has_col("horizon_h"),
              "ev columns keep the calendar, temperature and lags");
    HVS_CHECK_EQ_INT(hvs_taskrow_ncols(HVS_TASK_FORECAST), HVS_FEATURES_COUNT - 11);
    HVS_CHECK_EQ_INT(hvs_taskrow_scale(HVS_TASK_FORECAST), HVS_TARGET_KWH);
    HVS_CHECK(hvs_taskrow_divisor(HVS_TASK_FORECAST, NAN) == 1.0, "a site needs no area");
    /* the refresh corrects in the forecast's units: kWh here (heat: per m2, builtin_heat) */
    HVS_CHECK_EQ_INT(hvs_taskrow_scale(HVS_TASK_REFRESH), HVS_TARGET_KWH);
    HVS_CHECK(hvs_taskrow_divisor(HVS_TASK_REFRESH, NAN) == 1.0, "nor does its refresh");
    double x[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        x[i] = i + 0.5;
    HVS_CHECK(hvs_taskrow_build(HVS_TASK_FORECAST, x, NAN, row, &err) == 0, "row: %s", err.msg);
    HVS_CHECK(row[1] == x[hvs_features_index(hvs_taskrow_columns(HVS_TASK_FORECAST, NULL)[1])],
              "values unscaled");
    /* models: a heat model (no profile, or heat) never serves here */
    HVS_CHECK(load_model(NULL, &err) == HVS_ESERDE && strcmp(err.reason, "profile_mismatch") == 0,
              "a record without profile is heat's, refused: %s", err.reason);
    HVS_CHECK(load_model("heat", &err) == HVS_ESERDE, "heat refused");
    HVS_CHECK(load_model("ev_charging", &err) == 0, "ev's: %s", err.msg);
}

static char dir[] = "/tmp/test_profile_XXXXXX";

static void rm_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static const char *write_file(const char *name, const char *text) {
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
    return path;
}

static void test_files(void) {
    HVS_REQUIRE(mkdtemp(dir), "mkdtemp");
    hvs_test_cleanup(rm_dir);
    hvs_err_t err = {0};
    /* a user's profile next to the built-in ones, and heat replaced whole by the user's */
    const char *ok = write_file(
        "ok.ini", "# a store\n[retail]\nsensor = sales_eur EUR 0 1e12 counter apartment use\n"
                  "target_scale = kwh   # a comment\nforecast_drop = hdh\n\n"
                  "[heat]\nsensor = heat_gj GJ 0 1e6 counter apartment use\n");
    HVS_REQUIRE(hvs_profile_load("retail", ok, &err) == 0, "retail: %s", err.msg);
    const hvs_profile_t *p = hvs_profile_active();
    HVS_CHECK(!strcmp(p->name, "retail") && !strcmp(p->quantity, "sales_eur") &&
                  !strcmp(p->target_scale, "kwh") && p->forecast_drop[0] &&
                  !strcmp(p->forecast_drop[0], "hdh") && !p->forecast_drop[1] && p->nsensors == 1 &&
                  !p->monotone,
              "retail as written");
    HVS_CHECK(hvs_reading_sensor("sales_eur") != NULL && !hvs_reading_sensor("heating_energy_kwh"),
              "retail's sensors");
    HVS_REQUIRE(hvs_profile_load(NULL, ok, &err) == 0, "heat replaced: %s", err.msg);
    HVS_CHECK(!strcmp(hvs_profile_active()->quantity, "heat_gj") &&
                  hvs_profile_active()->nsensors == 1,
              "the user's heat replaces the built-in whole");
    /* the built-in retail (seed 003): a till's grand total, forecast only, no physics */
    HVS_REQUIRE(hvs_profile_load("retail", NULL, &err) == 0, "retail: %s", err.msg);
    HVS_CHECK(!strcmp(hvs_profile_active()->quantity, "sales_eur") &&
                  !strcmp(hvs_profile_active()->target_scale, "kwh") &&
                  !hvs_profile_active()->monotone &&
                  hvs_profile_active()->tasks == 1u << HVS_TASK_FORECAST,
              "the built-in retail profile");
    HVS_REQUIRE(hvs_profile_load("ev_charging", NULL, &err) == 0, "ev: %s", err.msg);
    static const struct {
        const char *text, *reason, *where;
    } bad[] = {
        {"[x]\nsensor = a kWh 0 1 counter apartment\n", "profile_file", ":2:"},
        {"[x]\nsensor = a kWh 1 0 counter apartment use\n", "profile_file", ":2:"},
        {"[x]\nsensor = a kWh 0 1 gauge apartment use\n", "profile_file", ":2:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment pressure\n", "profile_file", ":2:"},
        {"[x]\n\nsensor = a kWh 0 1 counter apartment use\nsensor = b kWh 0 1 counter apartment "
         "use\n",
         "profile_file", ":4:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\nforecast_drop = no_such_feature\n",
         "profile_file", ":3:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\nwindow = 1d\n", "profile_file", ":3:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\ntarget_scale = litres\n", "profile_file",
         ":3:"},
        {"target_scale = kwh\n", "profile_file", ":1:"},
        {"[x y]\n", "profile_file", ":1:"},
        {"[x]\nfrobnicate = 1\n", "profile_file", ":2:"},
        {"[x]\nsensor = a degC 0 1 gauge room temp\n", "bad_profile", "use"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\ntasks = forecast scoring\n",
         "profile_file", ":3:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\ntasks = refresh\n", "profile_file", ":3:"},
        {"[x]\nsensor = a kWh 0 1 counter apartment use\ntasks =\n", "profile_file", ":3:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_file("bad.ini", bad[i].text);
        hvs_err_clear(&err);
        HVS_CHECK(hvs_profile_load("x", path, &err) == HVS_EINVAL &&
                      strcmp(err.reason, bad[i].reason) == 0 && strstr(err.msg, bad[i].where),
                  "bad %zu: %s %s", i, err.reason, err.msg);
        HVS_CHECK_EQ_STR(hvs_profile_active()->name, "ev_charging");
    }
    hvs_err_clear(&err);
    HVS_CHECK(hvs_profile_load("no_such", NULL, &err) == HVS_EINVAL &&
                  strcmp(err.reason, "unknown_profile") == 0 && strstr(err.msg, "ev_charging"),
              "unknown: %s", err.msg);
    HVS_CHECK(hvs_profile_load("heat", "/nonexistent/p.ini", &err) == HVS_EINVAL &&
                  strcmp(err.reason, "profile_file") == 0,
              "missing file: %s", err.msg);
    HVS_CHECK_EQ_STR(hvs_profile_active()->name, "ev_charging");
}

/* ev_rows is not among the defaults: it runs as its own test (test_profile_ev) */
static const hvs_test_case_t cases[] = {
    {"builtin_heat", test_builtin_heat},
    {"heat_rows", test_heat_rows},
    {"files", test_files},
    HVS_TEST_CASES_END,
};
static const hvs_test_case_t ev_cases[] = {{"ev_rows", test_ev_rows}, HVS_TEST_CASES_END};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    if (argc > 1 && strcmp(argv[1], "ev_rows") == 0)
        return hvs_test_main(ev_cases, argc, argv);
    return hvs_test_main(cases, argc, argv);
}
