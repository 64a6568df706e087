/*
 * profile.h - what a deployment meters: the profile (data/profiles/profiles.ini, embedded into
 * the library at build time; users add or override profiles with their own file,
 * HVS_PROFILE_FILE) chosen by HVS_PROFILE (default "heat": the heating pipeline as it always
 * was). One profile per deployment: every worker of it loads the same one at start-up.
 *
 * A profile names
 *   - its sensor types: type, unit, plausible range, counter or gauge, apartment or room level,
 *     and the aggregator channel each feeds (use: the metered quantity, the Aggregate's
 *     consumption field heating_kwh; water: the second counter; temp, setpoint, valve,
 *     humidity: the per-room gauges). Exactly one sensor feeds `use`: the profile's quantity.
 *     hvs_reading_sensor() answers from the active profile's table, so a reading with a sensor
 *     type of another profile is refused as unknown_sensor.
 *   - meter_max_kw: the highest rate (kW) one apartment-level meter (a heat meter, a charger)
 *     can report, the aggregator's default where topology gives none (0: the aggregator's
 *     setting HVS_AGG_MAX_HEATING_KW decides).
 *   - the forecast model's columns: the feature set (features.h) minus forecast_drop (the
 *     features that do not apply: EV charging drops heating physics - degree hours, comfort,
 *     rooms - and keeps temperature); task_rows.h reads them.
 *   - the forecast target scale: per_heated_m2 (heat) or kwh (a site without heated area:
 *     never skipped for lacking one).
 *   - monotone: whether the trainer constrains the forecast to heating physics (colder and
 *     darker -> more, degree hours -> more) and stress-tests it so (heat on; off elsewhere).
 *   - the aggregation window: only "1h" exists today (the aggregator's hourly windows).
 *   - tasks: the model tasks (task_rows.h names) that mean something for its quantity, what the
 *     trainer trains (the rest of HVS_TRAIN_TASKS is left out, logged once): heat all four;
 *     ev_charging forecast and refresh (no rooms to score; the refresh corrects in the
 *     forecast's kWh); retail forecast only. Absent: all; `refresh` needs `forecast`.
 * Models record their profile in params.profile (absent: heat); the registry refuses a model
 * of another profile (model_registry.h), so a heat model never serves an EV deployment.
 *
 * Ownership: profiles live as long as the process (a database replaced by hvs_profile_load is
 * kept, never freed); every pointer handed out stays valid.
 * Thread-safety: hvs_profile_load at start-up before other threads read the profile (like
 * hvs_calendar_load); the first hvs_profile_active without it selects the built-in "heat"
 * (locked). Reads are then lock-free.
 * Errors: hvs_profile_load returns HVS_EINVAL (reason "profile_file", message "FILE:LINE:
 * what") for a file it cannot read or a malformed line, (reason "unknown_profile") for a
 * name no file defines, (reason "bad_profile") for a profile without exactly one `use`
 * sensor or with a bad scale, window or dropped feature; HVS_ENOMEM. The profile in use is then
 * unchanged.
 */
#ifndef HVS_PROFILE_H
#define HVS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "hvs/err.h"
#include "hvs/reading.h"

#define HVS_PROFILE_DEFAULT "heat"
#define HVS_PROFILE_MAX_SENSORS 16
#define HVS_PROFILE_MAX_DROP 64

/* The aggregator's channels a sensor can feed (workers/aggregator/samples.h in this order). */
typedef enum hvs_profile_channel {
    HVS_CH_USE = 0, /* the metered quantity: counter, apartment level */
    HVS_CH_WATER,   /* a second counter, apartment level */
    HVS_CH_TEMP,
    HVS_CH_SETPOINT,
    HVS_CH_VALVE,
    HVS_CH_HUMIDITY,
    HVS_CH_COUNT
} hvs_profile_channel_t;

typedef struct hvs_profile {
    const char *name;
    const char *quantity; /* the sensor type feeding HVS_CH_USE */
    hvs_sensor_info_t sensors[HVS_PROFILE_MAX_SENSORS];
    hvs_profile_channel_t channel[HVS_PROFILE_MAX_SENSORS]; /* of sensors[i] */
    size_t nsensors;
    double meter_max_kw;      /* 0: the aggregator's setting */
    const char *target_scale; /* "per_heated_m2" or "kwh" (task_rows.h names) */
    long long window_ms;      /* 3600000 */
    bool monotone;            /* the trainer's heating physics: colder -> more (train.c) */
    unsigned tasks;           /* bit t set: models of task t (task_rows.h hvs_task_t) apply */
    const char *forecast_drop[HVS_PROFILE_MAX_DROP + 1]; /* NULL-terminated feature names */
} hvs_profile_t;

/* Select profile `name` (NULL or "": heat) from the built-in file plus `path` (NULL or "":
 * none) on top: a section naming a known profile replaces it whole, a new one adds it. */
int hvs_profile_load(const char *name, const char *path, hvs_err_t *err);
/* The profile in use (heat until hvs_profile_load chose another); never NULL. */
const hvs_profile_t *hvs_profile_active(void);
/* Whether models of task `task` (hvs_task_t) apply to profile p. */
bool hvs_profile_task_on(const hvs_profile_t *p, int task);
/* The sensor type feeding a channel in the active profile, NULL when none does. */
const char *hvs_profile_channel_sensor(hvs_profile_channel_t ch);
/* The channel name ("use", ...; static), "?" out of range. */
const char *hvs_profile_channel_name(hvs_profile_channel_t ch);

#endif
