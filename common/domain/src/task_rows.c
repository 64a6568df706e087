/* task_rows.c - a task's model row from a feature vector (see hvs/task_rows.h). */
#include "hvs/task_rows.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static const char *const forecast_cols[] = {"horizon_h",
                                            "hour",
                                            "weekday",
                                            "month",
                                            "is_weekend",
                                            "hour_sin",
                                            "hour_cos",
                                            "weekday_sin",
                                            "weekday_cos",
                                            "doy_sin",
                                            "doy_cos",
                                            "is_holiday",
                                            "is_bridge_day",
                                            "is_school_holiday",
                                            "is_christmas_period",
                                            "days_until_holiday",
                                            "days_since_holiday",
                                            "use_lag_24",
                                            "use_lag_48",
                                            "use_lag_168",
                                            "temp_lag_24",
                                            "temp_lag_48",
                                            "temp_lag_168",
                                            "use_roll_3_mean",
                                            "use_roll_3_std",
                                            "use_roll_3_min",
                                            "use_roll_3_max",
                                            "use_roll_24_mean",
                                            "use_roll_24_std",
                                            "use_roll_24_min",
                                            "use_roll_24_max",
                                            "use_roll_168_mean",
                                            "use_roll_168_std",
                                            "use_roll_168_min",
                                            "use_roll_168_max",
                                            "temp_roll_24_mean",
                                            "hdh_roll_24_mean",
                                            "temperature_c",
                                            "relative_humidity_pct",
                                            "cloud_cover_pct",
                                            "shortwave_radiation_wm2",
                                            "wind_speed_ms",
                                            "weather_is_forecast",
                                            "weather_lead_h",
                                            "hdh",
                                            "temp_x_hour",
                                            "temp_x_radiation",
                                            "comfort_gap_prev",
                                            "building_age_days",
                                            NULL};

static const char *const anomaly_cols[] = {"hour",
                                           "weekday",
                                           "month",
                                           "is_weekend",
                                           "hour_sin",
                                           "hour_cos",
                                           "weekday_sin",
                                           "weekday_cos",
                                           "doy_sin",
                                           "doy_cos",
                                           "is_holiday",
                                           "is_bridge_day",
                                           "is_school_holiday",
                                           "is_christmas_period",
                                           "days_until_holiday",
                                           "days_since_holiday",
                                           "use_lag_24",
                                           "use_lag_48",
                                           "use_lag_168",
                                           "temp_lag_24",
                                           "temp_lag_48",
                                           "temp_lag_168",
                                           "use_roll_3_mean",
                                           "use_roll_3_std",
                                           "use_roll_3_min",
                                           "use_roll_3_max",
                                           "use_roll_24_mean",
                                           "use_roll_24_std",
                                           "use_roll_24_min",
                                           "use_roll_24_max",
                                           "use_roll_168_mean",
                                           "use_roll_168_std",
                                           "use_roll_168_min",
                                           "use_roll_168_max",
                                           "temp_roll_24_mean",
                                           "hdh_roll_24_mean",
                                           "temperature_c",
                                           "relative_humidity_pct",
                                           "cloud_cover_pct",
                                           "shortwave_radiation_wm2",
                                           "wind_speed_ms",
                                           "hdh",
                                           "temp_x_hour",
                                           "temp_x_radiation",
                                           "room_temp_c",
                                           "setpoint_c",
                                           "comfort_gap_c",
                                           "comfort_gap_prev",
                                           "building_age_days",
                                           NULL};

/* the refresh model's inputs: the baseline's errors of the last complete hours (per heated m2) */
static const char *const refresh_cols[] = {"horizon_h", "err_lag_1", "err_lag_2", "err_lag_3",
                                           NULL};

static const char *const empty_cols[] = {NULL};

static const char *const task_names[HVS_TASK_COUNT] = {"forecast", "anomaly-residual",
                                                       "anomaly-classifier", "refresh"};

static const hvs_target_scale_t task_scales[HVS_TASK_COUNT] = {
    HVS_TARGET_PER_HEATED_M2, HVS_TARGET_KWH, HVS_TARGET_PROBABILITY, HVS_TARGET_PER_HEATED_M2};

static const char *const scale_names[HVS_TARGET_SCALE_COUNT] = {"kwh", "per_heated_m2",
                                                                "probability"};

const char *hvs_taskrow_task_name(hvs_task_t t) {
    return (unsigned)t < HVS_TASK_COUNT ? task_names[t] : "?";
}

int hvs_taskrow_task_parse(const char *name) {
    for (int t = 0; name && t < HVS_TASK_COUNT; t++)
        if (strcmp(name, task_names[t]) == 0)
            return t;
    return -1;
}

const char *const *hvs_taskrow_columns(hvs_task_t t, size_t *n) {
    const char *const *c = t == HVS_TASK_FORECAST ? forecast_cols
                           : t == HVS_TASK_ANOMALY_RESIDUAL || t == HVS_TASK_ANOMALY_CLASSIFIER
                               ? anomaly_cols
                           : t == HVS_TASK_REFRESH ? refresh_cols
                                                   : empty_cols;
    size_t k = 0;
    while (c[k])
        k++;
    if (n)
        *n = k;
    return c;
}

size_t hvs_taskrow_ncols(hvs_task_t t) {
    size_t n;
    hvs_taskrow_columns(t, &n);
    return n;
}

hvs_target_scale_t hvs_taskrow_scale(hvs_task_t t) {
    return (unsigned)t < HVS_TASK_COUNT ? task_scales[t] : HVS_TARGET_KWH;
}

const char *hvs_taskrow_scale_name(hvs_target_scale_t s) {
    return (unsigned)s < HVS_TARGET_SCALE_COUNT ? scale_names[s] : "?";
}

int hvs_taskrow_scale_parse(const char *target_scale) {
    if (!target_scale)
        return HVS_TARGET_KWH;
    for (int s = 0; s < HVS_TARGET_SCALE_COUNT; s++)
        if (strcmp(target_scale, scale_names[s]) == 0)
            return s;
    return -1;
}

bool hvs_taskrow_scale_known(const char *target_scale) {
    return hvs_taskrow_scale_parse(target_scale) >= 0;
}

/* Per task, once: the feature index of each column and whether it is divided by the area.
 * Resolving names per row would cost thousands of strcmp for every training row. */
typedef struct colmap {
    int idx[HVS_TASKROW_MAX_COLS];
    bool per_area[HVS_TASKROW_MAX_COLS];
    size_t n;
    bool buildable; /* every column is a feature */
} colmap_t;

static colmap_t maps[HVS_TASK_COUNT];
static pthread_once_t maps_once = PTHREAD_ONCE_INIT;

static void maps_init(void) {
    for (int t = 0; t < HVS_TASK_COUNT; t++) {
        colmap_t *m = &maps[t];
        const char *const *c = hvs_taskrow_columns((hvs_task_t)t, &m->n);
        m->buildable = m->n <= HVS_TASKROW_MAX_COLS;
        for (size_t i = 0; i < m->n && i < HVS_TASKROW_MAX_COLS; i++) {
            m->idx[i] = hvs_features_index(c[i]);
            if (m->idx[i] < 0)
                m->buildable = false;
            /* consumption is what scales with the building: per m2 it compares across sizes */
            m->per_area[i] = task_scales[t] == HVS_TARGET_PER_HEATED_M2 &&
                             strncmp(c[i], "use_", 4) == 0;
        }
    }
}

static bool area_ok(double a) { return isfinite(a) && a > 0; }

double hvs_taskrow_divisor(hvs_task_t t, double area_m2) {
    if (hvs_taskrow_scale(t) != HVS_TARGET_PER_HEATED_M2)
        return 1.0;
    return area_ok(area_m2) ? area_m2 : NAN;
}

int hvs_taskrow_build(hvs_task_t t, const double *x, double area_m2, double *row, hvs_err_t *err) {
    if ((unsigned)t >= HVS_TASK_COUNT)
        return hvs_err_set(err, HVS_EINVAL, "bad_task", "task %d", (int)t);
    pthread_once(&maps_once, maps_init);
    const colmap_t *m = &maps[t];
    if (!m->buildable)
        return hvs_err_set(err, HVS_EINVAL, "bad_task", "%s rows are not built from features",
                           task_names[t]);
    bool per_area = task_scales[t] == HVS_TARGET_PER_HEATED_M2;
    if (per_area && !area_ok(area_m2))
        return hvs_err_set(err, HVS_EINVAL, "no_area", "%s rows need a heated area (got %g m2)",
                           task_names[t], area_m2);
    for (size_t i = 0; i < m->n; i++)
        row[i] = m->per_area[i] ? x[m->idx[i]] / area_m2 : x[m->idx[i]];
    return 0;
}

int hvs_taskrow_from_vector(hvs_task_t t, avro_value_t *fv, double area_m2, double *row,
                            hvs_err_t *err) {
    const char *fsv = hvs_serde_field_str(fv, "feature_set_version");
    if (!fsv || strcmp(fsv, hvs_features_version()) != 0)
        return hvs_err_set(err, HVS_ESERDE, "feature_mismatch",
                           "FeatureVector of feature set %s, this build computes %s",
                           fsv ? fsv : "(none)", hvs_features_version());
    avro_value_t vals, item;
    size_t n = 0;
    if (avro_value_get_by_name(fv, "values", &vals, NULL) || avro_value_get_size(&vals, &n) ||
        n != HVS_FEATURES_COUNT)
        return hvs_err_set(err, HVS_ESERDE, "bad_vector",
                           "FeatureVector with %zu values, %d expected", n, HVS_FEATURES_COUNT);
    double x[HVS_FEATURES_COUNT];
    for (size_t i = 0; i < n; i++)
        if (avro_value_get_by_index(&vals, i, &item, NULL) || avro_value_get_double(&item, &x[i]))
            return hvs_err_set(err, HVS_ESERDE, "bad_vector", "FeatureVector value %zu: %s", i,
                               avro_strerror());
    return hvs_taskrow_build(t, x, area_m2, row, err);
}

double hvs_taskrow_target(hvs_task_t t, double kwh, double area_m2) {
    if (hvs_taskrow_scale(t) != HVS_TARGET_PER_HEATED_M2)
        return kwh;
    return area_ok(area_m2) ? kwh / area_m2 : NAN;
}

double hvs_taskrow_to_kwh(hvs_target_scale_t s, double value, double area_m2) {
    switch (s) {
    case HVS_TARGET_KWH: return value;
    case HVS_TARGET_PER_HEATED_M2: return area_ok(area_m2) ? value * area_m2 : NAN;
    default: return NAN;
    }
}
