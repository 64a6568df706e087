/*
 * task_rows.h - a model's input row from a feature vector: which features each task's models
 * read, in which order, and the scale of their target. The trainer builds its training rows
 * through it and every serving worker (scorer, forecaster) builds its rows through it, so a
 * model is fed at serving exactly what it was trained on (bit for bit: same function, same
 * arithmetic).
 *
 * Tasks (hvs_task_t; the names are the model name prefixes and the records' params.task):
 *   forecast            building series; columns: the feature set minus the profile's
 *                       forecast_drop (profile.h; heat: horizon_h, the calendar, consumption,
 *                       weather and comfort features, no own-hour comfort: the hour is in the
 *                       future); target scale the profile's (heat per_heated_m2, ev_charging kwh)
 *   anomaly-residual    apartment series at horizon 0; the own hour's room temperature,
 *                       setpoint and comfort gap instead of horizon_h; target scale kwh
 *   anomaly-classifier  the anomaly-residual columns; target scale probability (of a fault)
 *   refresh             horizon_h and the baseline forecast's errors of the last 3 complete
 *                       hours (err_lag_1..3, per heated m2): inputs the refresher computes, not
 *                       features, so its rows are not built here (hvs_taskrow_build refuses it);
 *                       its columns and scale are listed so one table names them all
 *
 * Target scales (a ModelVersion's params.target_scale; the registry refuses a version whose
 * scale this build does not know, hvs_taskrow_scale_known):
 *   kwh             raw heating kWh of the hour; also what a record without target_scale means
 *                   (records written before the parameter, or by tools that write none)
 *   per_heated_m2   kWh per m2 of the building's heated area: the target AND every consumption
 *                   feature (use_*) are divided by the area, so one model serves buildings of
 *                   every size; a prediction times the area is kWh
 *   probability     a fault probability in [0, 1]; not a quantity of heat
 * Areas: per_heated_m2 needs an area > 0 (finite); other scales ignore it.
 *
 * Rows are doubles; the trainer and XGBoost take floats: the caller casts each value
 * ((float)row[i]), which both sides do the same way.
 *
 * The profile is read on first use: hvs_profile_load must come before (at start-up).
 * Ownership: column lists and names are static; rows go into the caller's buffer of at least
 * hvs_taskrow_ncols(task) (<= HVS_TASKROW_MAX_COLS) doubles; nothing is allocated.
 * Thread-safety: pure functions. Errors: HVS_EINVAL (reason "bad_task", "no_area") for a task
 * without feature rows or a missing area; HVS_ESERDE (reason "feature_mismatch", "bad_vector")
 * for a FeatureVector of another feature set or shape.
 */
#ifndef HVS_TASK_ROWS_H
#define HVS_TASK_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include "hvs/err.h"
#include "hvs/features.h"
#include "hvs/serde.h"

typedef enum hvs_task {
    HVS_TASK_FORECAST = 0,
    HVS_TASK_ANOMALY_RESIDUAL,
    HVS_TASK_ANOMALY_CLASSIFIER,
    HVS_TASK_REFRESH,
    HVS_TASK_COUNT
} hvs_task_t;

typedef enum hvs_target_scale {
    HVS_TARGET_KWH = 0,
    HVS_TARGET_PER_HEATED_M2,
    HVS_TARGET_PROBABILITY,
    HVS_TARGET_SCALE_COUNT
} hvs_target_scale_t;

#define HVS_TASKROW_MAX_COLS HVS_FEATURES_COUNT

/* The task's name ("forecast", ...; static), "?" for a value out of range. */
const char *hvs_taskrow_task_name(hvs_task_t t);
/* The task of a name, -1 if none. */
int hvs_taskrow_task_parse(const char *name);

/* The column names of a task's models, in row order (static, NULL-terminated); *n gets their
 * count when n is not NULL. An out-of-range task gets an empty list. */
const char *const *hvs_taskrow_columns(hvs_task_t t, size_t *n);
/* The number of columns of a task's rows. */
size_t hvs_taskrow_ncols(hvs_task_t t);

/* The target scale of a task's models. */
hvs_target_scale_t hvs_taskrow_scale(hvs_task_t t);
/* The name of a scale as written to params.target_scale (static), "?" out of range. */
const char *hvs_taskrow_scale_name(hvs_target_scale_t s);
/* The scale of a params.target_scale value: NULL (absent) is HVS_TARGET_KWH; -1 for any name
 * this build does not know, the empty string included. */
int hvs_taskrow_scale_parse(const char *target_scale);
/* Whether this build can serve a model of that params.target_scale (NULL: absent, known). */
bool hvs_taskrow_scale_known(const char *target_scale);

/*
 * The divisor between kWh and the task's target unit for a building of area_m2: the area for
 * per_heated_m2, 1 otherwise. The trainer keeps it per row (kWh = value x divisor).
 * Returns NaN for per_heated_m2 without a usable area.
 */
double hvs_taskrow_divisor(hvs_task_t t, double area_m2);

/*
 * The row of task t from a feature vector x (HVS_FEATURES_COUNT values, hvs_features_compute's
 * order) of a building of heated area area_m2: the task's columns in order, consumption
 * features divided by the area when the task's scale is per_heated_m2, NaN kept as NaN.
 * Writes hvs_taskrow_ncols(t) doubles to row (the caller's). Returns 0, or HVS_EINVAL
 * ("bad_task": refresh or out of range; "no_area": per_heated_m2 without area > 0), row untouched.
 */
int hvs_taskrow_build(hvs_task_t t, const double *x, double area_m2, double *row, hvs_err_t *err);

/*
 * The same row from a decoded FeatureVector record (schemas/FeatureVector.avsc, what a serving
 * worker consumes from features.hourly): its feature_set_version must be this build's (the
 * version hashes the names and their order, so the values line up with x above), its values
 * HVS_FEATURES_COUNT doubles; then hvs_taskrow_build. Returns 0, HVS_ESERDE
 * ("feature_mismatch": another feature set; "bad_vector": no values or another count), or
 * hvs_taskrow_build's errors. fv is only read (avro-c's API takes it non-const).
 */
int hvs_taskrow_from_vector(hvs_task_t t, avro_value_t *fv, double area_m2, double *row,
                            hvs_err_t *err);

/*
 * A kWh quantity (target, naive baseline) in the task's target unit: kwh / area for
 * per_heated_m2, unchanged otherwise. NaN for per_heated_m2 without a usable area.
 */
double hvs_taskrow_target(hvs_task_t t, double kwh, double area_m2);

/*
 * The inverse for a model's prediction: kWh of the hour for a model of scale s (value x area
 * for per_heated_m2; the value itself for kwh). NaN for probability (not a quantity of heat),
 * for per_heated_m2 without area > 0, and for an unknown scale.
 */
double hvs_taskrow_to_kwh(hvs_target_scale_t s, double value, double area_m2);

#endif
