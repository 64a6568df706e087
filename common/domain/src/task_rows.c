/* task_rows.c - a task's model row from a feature vector (see hvs/task_rows.h). */
#include "hvs/task_rows.h"

#include "hvs/profile.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* Forecast models read every feature but those the deployment's profile drops (profile.h: heat
 * drops the hour's own comfort and room readings, the hour lies in the future; EV charging also
 * heating physics); anomaly models every feature but the horizon and the weather's forecast
 * flags (they judge an hour that has happened, on the weather observed in it). Both in the
 * feature definition's order, so a new feature joins both unless it is excluded. */
static const char *const anomaly_without[] = {"horizon_h", "weather_is_forecast", "weather_lead_h",
                                              NULL};
static const char *forecast_cols[HVS_FEATURES_COUNT + 1], *anomaly_cols[HVS_FEATURES_COUNT + 1];
static pthread_once_t cols_once = PTHREAD_ONCE_INIT;

static void cols_fill(const char **out, const char *const *without) {
    const char *const *names = hvs_features_names();
    size_t k = 0;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        bool skip = false;
        for (const char *const *w = without; *w && !skip; w++)
            skip = strcmp(names[i], *w) == 0;
        if (!skip)
            out[k++] = names[i];
    }
    out[k] = NULL;
}

static void cols_init(void) {
    cols_fill(forecast_cols, hvs_profile_active()->forecast_drop);
    cols_fill(anomaly_cols, anomaly_without);
}

/* the refresh model's inputs: the baseline's errors of the last complete hours (per heated m2) */
static const char *const refresh_cols[] = {"horizon_h", "err_lag_1", "err_lag_2", "err_lag_3",
                                           NULL};

static const char *const empty_cols[] = {NULL};

static const char *const task_names[HVS_TASK_COUNT] = {"forecast", "anomaly-residual",
                                                       "anomaly-classifier", "refresh"};

/* the forecast's is the profile's, and the refresh's with it: it corrects the forecast from
 * the forecast's own errors (resolved once, in scales_init) */
static hvs_target_scale_t task_scales[HVS_TASK_COUNT] = {
    HVS_TARGET_PER_HEATED_M2, HVS_TARGET_KWH, HVS_TARGET_PROBABILITY, HVS_TARGET_PER_HEATED_M2};
static pthread_once_t scales_once = PTHREAD_ONCE_INIT;

static const char *const scale_names[HVS_TARGET_SCALE_COUNT] = {"kwh", "per_heated_m2",
                                                                "probability"};

static void scales_init(void) {
    int s = hvs_taskrow_scale_parse(hvs_profile_active()->target_scale);
    if (s == HVS_TARGET_KWH || s == HVS_TARGET_PER_HEATED_M2) /* profile.c admits only these */
        task_scales[HVS_TASK_FORECAST] = task_scales[HVS_TASK_REFRESH] = (hvs_target_scale_t)s;
}

static hvs_target_scale_t scale_of(hvs_task_t t) {
    pthread_once(&scales_once, scales_init);
    return task_scales[t];
}

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
    pthread_once(&cols_once, cols_init);
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
    return (unsigned)t < HVS_TASK_COUNT ? scale_of(t) : HVS_TARGET_KWH;
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
            m->per_area[i] = scale_of((hvs_task_t)t) == HVS_TARGET_PER_HEATED_M2 &&
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
    bool per_area = scale_of(t) == HVS_TARGET_PER_HEATED_M2;
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
