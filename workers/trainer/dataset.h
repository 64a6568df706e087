/*
 * dataset.h - training and evaluation rows from the history, through the one feature
 * definition (features.h): a row of target hour H is hvs_features_compute(H, as_of) on the
 * series' history, so it holds only what was known at as_of, as at serving time.
 *
 * A row's columns, their order and the scale of features and target are the domain's task
 * row builder's (hvs/task_rows.h), the one serving workers use: the trainer only chooses which
 * entity-hours, at which as_of, with which target.
 *
 * Tasks and their rows:
 *   forecast          building series; as_of = H + 1 h - h for horizons h in 1..72; the target
 *                     and every consumption feature (use_*) per m2 of heated area (task_rows.h:
 *                     per_heated_m2; buildings without an area give no rows); day-ahead
 *                     evaluation rows: as_of = 12:00 UTC of the day before, H every hour of the
 *                     day (horizons 13..36).
 *   anomaly-residual  apartment series; as_of as the features worker's (the hour's end, or the
 *                     observation's issue time when it came within the weather wait): the
 *                     expected heating of an hour given its drivers.
 *   anomaly-classifier  the anomaly-residual rows of labelled apartment-days only (labels.h),
 *                     target 1 for a fault day, 0 for a false alarm: what a technician would
 *                     confirm, learned from alerts.feedback; evaluation rows (all_days) are
 *                     every apartment-day, the unlabelled with target NaN.
 *   refresh           not from the history: from a forecast run's backtest (refresh.h).
 * Columns: the task's (tr_task_features = hvs_taskrow_columns), cast to float.
 * Weather stand-ins (weather_standin; HVS_TRAIN_WEATHER_STANDIN, default on): history brought
 * in by a weather backfill holds observations only (issued at each hour's end) and no forecast,
 * so a row would read the hours still to come at its as_of (the target hour; the temperature
 * lags of H - 24 h and H - 48 h beyond those horizons) without weather. Where such an hour
 * (hour + 1 h > as_of) has no record issued by as_of but an observation with a temperature, the
 * row is computed as if a forecast with the observation's values had been issued at as_of:
 * weather_is_forecast 1, weather_lead_h = (H - as_of) / 1 h (horizon - 1: the shortest lead a
 * forecast known at as_of can have). The row is flagged (standin: the hours stood in). A row
 * with any record issued by as_of for those hours is computed as without stand-ins, bit for bit.
 * Training rows only: serving never reads an observation of an hour still to come.
 * Leak check: for a sample of rows the features are computed again on a copy of the history
 * with everything after as_of removed (later hours, weather issued later); any difference means
 * a feature used the future, and names it. Stand-ins are the one exception, by design: they are
 * derived again on the cut history (only hours without a record issued by as_of qualify), their
 * values alone taken from the whole one, and the row's flag must say so (a stand-in without its
 * flag, or a flag without one, is rejected as leakage). A test hook (extra) may append a column
 * computed by the caller, to prove the check catches a leaky one.
 *
 * Ownership: tr_rows_t owns its arrays (tr_rows_fini). Thread-safety: building reads the history
 * (consume-loop thread); the rows can then go to the training thread.
 * Errors: HVS_ENOMEM; tr_leak_check returns HVS_EINVAL (reason "leakage") naming the feature.
 * Thin names over task_rows.h (tr_task_*) stay for the trainer's callers.
 */
#ifndef TR_DATASET_H
#define TR_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "hvs/calendar.h"
#include "hvs/features.h"
#include "hvs/task_rows.h"
#include "labels.h"

/* The domain's tasks (hvs_task_t), under the trainer's names. */
typedef enum tr_task {
    TR_FORECAST = HVS_TASK_FORECAST,
    TR_ANOMALY_RESIDUAL = HVS_TASK_ANOMALY_RESIDUAL,
    TR_ANOMALY_CLASSIFIER = HVS_TASK_ANOMALY_CLASSIFIER,
    TR_REFRESH = HVS_TASK_REFRESH,
    TR_TASKS = HVS_TASK_COUNT
} tr_task_t;

/* hvs_taskrow_task_name (static; "?" out of range). */
const char *tr_task_name(tr_task_t t);
/* The task of a name ("forecast", ...); -1 if none. */
int tr_task_parse(const char *name);
/* The column names a task's models read (static, NULL-terminated), and their count:
 * hvs_taskrow_columns. */
const char *const *tr_task_features(tr_task_t t, size_t *n);

typedef struct tr_rows {
    size_t ncols, n, cap;
    float *x;     /* n x ncols */
    float *y;     /* target in the task's unit (hvs_taskrow_target) */
    float *scale; /* kWh = value x scale (hvs_taskrow_divisor) */
    float *naive; /* seasonal naive: the target 168 h before (scaled), NaN unknown */
    float *horizon;
    hvs_ms_t *hour, *as_of;
    int32_t *group;  /* building index in the history */
    int32_t *series; /* series index within the building */

    uint8_t *standin; /* hours whose observed weather stands in for a forecast (0: none) */
    size_t nstandin;  /* rows with standin > 0 */
} tr_rows_t;

void tr_rows_fini(tr_rows_t *r);
/* Room for one more row (ncols set): HVS_ENOMEM, the rows kept. */
int tr_rows_grow(tr_rows_t *r);

/* A column appended after the task's features (tests: a deliberately leaky one). */
typedef double (*tr_extra_fn)(const hvs_feat_history_t *h, hvs_ms_t target, hvs_ms_t as_of);

typedef struct tr_select {
    tr_task_t task;
    hvs_ms_t from, to;   /* target hours in [from, to) */
    const int *horizons; /* forecast: the horizons to draw from */
    size_t nhorizons;
    int per_hour;          /* forecast: horizons drawn per target hour (0 = all) */
    bool day_ahead;        /* forecast: the day-ahead evaluation rows instead */
    hvs_ms_t weather_wait; /* anomaly: as the features worker's (2 h) */
    uint64_t seed;
    const char *const *buildings; /* NULL: every building of the history */
    size_t nbuildings;
    tr_extra_fn extra;
    tr_labels_t *labels; /* anomaly-classifier: the targets */
    bool all_days;       /* anomaly-classifier: every apartment-day (target NaN when
                                     unlabelled), as scored at serving, not only labelled ones */

    bool weather_standin; /* observed weather stands in for missing forecasts (above) */
} tr_select_t;

/* Per building what the rows need from topology: heated area (hvs_building_area; NaN unknown:
 * no forecast rows), commissioning, calendar. `no_area` (optional, set by the info function):
 * called with the info function's opaque each time a building's rows are skipped for want of
 * an area, so the caller can say so (once per building: the trainer logs and counts). */
typedef struct tr_building_info {
    double area_m2;
    hvs_ms_t commissioning;
    hvs_calendar_t *cal;
    void (*no_area)(void *opaque, const char *building);
} tr_building_info_t;

typedef int (*tr_info_fn)(void *opaque, const char *building, tr_building_info_t *out);

/* HVS_EINVAL for refresh (not from the history) or a classifier without labels; HVS_ENOMEM. */
int tr_rows_build(const tr_history_t *h, const tr_select_t *sel, tr_info_fn info, void *opaque,
                  tr_rows_t *out, hvs_err_t *err);

/* Recompute `sample` rows of r (spread over it) on a history scrubbed after their as_of. */
int tr_leak_check(const tr_history_t *h, const tr_select_t *sel, tr_info_fn info, void *opaque,
                  const tr_rows_t *r, size_t sample, hvs_err_t *err);

#endif
