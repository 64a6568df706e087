/*
 * features.h - the one feature definition (docs/design.md section 7, seed 001 appendix): what every
 * model reads, computed by the same code at training time (trainer), at serving time
 * (features worker, forecaster, refresher), so training/serving skew cannot happen.
 *
 * A vector describes one entity (an apartment or a building) and one target hour H (start of
 * the hour, UTC) as known at as_of T: only information that existed at T is used.
 *   - An hour's aggregate (consumption, room temperature, ...) is known from its end: hour h
 *     is usable iff h + 1 h <= T. The target hour's own consumption is never a feature (it is
 *     the target).
 *   - Weather of an hour is the latest record for that hour with issued_at <= T (an
 *     observation, once one was published, else the latest forecast issued by then).
 *   - A = min(H, floor_hour(T)): rolling windows cover the w hours before A (the last w usable
 *     hours before the target); a lag L is the value of hour H - L when that hour is usable at
 *     T (so lags beyond the horizon are missing: horizon-masked).
 *   - horizon_h = max(0, (H + 1 h - T) / 1 h): 0 for a vector of a past hour (anomaly scoring),
 *     k for a forecast made k hours before the target hour ends.
 * A feature whose inputs are unavailable is NaN (missing), never 0 and never leaked.
 *
 * The features, in order (hvs_features_names; HVS_FEATURES_COUNT of them):
 *   horizon_h
 *   hour, weekday (0 = Monday), month, is_weekend, hour_sin, hour_cos, weekday_sin, weekday_cos,
 *     doy_sin, doy_cos                          local time of the building's holiday region
 *   is_holiday, is_bridge_day, is_school_holiday, is_christmas_period, days_until_holiday,
 *     days_since_holiday                        calendar.h, from H's local date
 *   use_lag_24, use_lag_48, use_lag_168         consumption (heating kWh) of H - L
 *   temp_lag_24, temp_lag_48, temp_lag_168      outdoor temperature of H - L (as known at T)
 *   use_roll_{3,24,168}_{mean,std,min,max}      consumption over [A - w h, A): mean, population
 *                                               std, min, max of the hours present; missing
 *                                               when fewer than half of the w hours are
 *   temp_roll_24_mean, hdh_roll_24_mean         outdoor temperature and max(0, 18 - t) over
 *                                               [A - 24 h, A), same presence rule
 *   temperature_c, relative_humidity_pct, cloud_cover_pct, shortwave_radiation_wm2,
 *     wind_speed_ms                             weather of H as known at T
 *   weather_is_forecast                         1 when that weather is a forecast, 0 observed
 *   weather_lead_h                              (H - issued_at) / 1 h of that record
 *   hdh                                         heating degree hours max(0, 18 degC - t)
 *   temp_x_hour, temp_x_radiation               t x hour, t x radiation / 1000
 *   room_temp_c, setpoint_c, comfort_gap_c      of H itself, when H is usable at T
 *   comfort_gap_prev                            of hour A - 1 h
 *   valve_mean_pct, room_temp_std_c             of H itself when usable at T (rooms.h): the
 *                                               mean of the rooms' valve positions and of their
 *                                               within-hour temperature standard deviations
 *   room_flat_hours                             of H when usable: the longest run of hours, back
 *                                               from H, in which one room's temperature did not
 *                                               change (0: every room changed in H; capped at
 *                                               168; a room is the same room while it keeps its
 *                                               place in the name-sorted list)
 *   building_age_days                           (H - commissioning) in days (cold start)
 * Quality flags (hvs_features_flag_name): missing_weather (no weather for H at T),
 * weather_forecast (a forecast stands in where H is already past), lag_24_missing,
 * lag_168_missing, history_short (fewer than half of the 168 hours before A present).
 *
 * Version: hvs_features_version() is "fs-<revision>-<8 hex digits of FNV-1a over the names>";
 * HVS_FEATURES_REVISION is bumped whenever a definition changes meaning, and the hash moves with
 * any change of the names or their order, so a model trained on one version is never fed
 * another (the registry checks it).
 *
 * State: a read-only view of an entity's hours and its building's weather, both rings indexed
 * by hour (slot = hour / 1 h mod size) with the hour stamped in each slot, so a slot holding an
 * older hour reads as absent. The feature store (featstore.h) keeps them in Redis; tests and
 * the trainer may build them in memory.
 *
 * Ownership: the caller owns every buffer; nothing is allocated. Thread-safety: pure functions
 * except that the calendar (calendar.h) caches years: use one calendar per thread.
 * Errors: none; missing inputs give NaN features and flags.
 */
#ifndef HVS_FEATURES_H
#define HVS_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/calendar.h"
#include "hvs/time.h"

#define HVS_FEATURES_REVISION 2 /* 2: the rooms' valve, temperature spread, flat hours */
#define HVS_FEATURES_COUNT 55

/* One hour of an entity (what the features need of an Aggregate). hour = HVS_MS_NONE: empty. */
typedef struct hvs_feat_hour {
    hvs_ms_t hour;
    double use;   /* heating kWh; NaN unknown */
    double water; /* hot water litres; NaN unknown. No feature reads it, so the readers of
                     aggregates keep NaN (the rings' 2-3 bytes an hour); a feature that needs it
                     bumps HVS_FEATURES_REVISION and starts from an empty history of it */
    double room_temp, setpoint, comfort_gap; /* means over the hour; NaN unknown */
    uint32_t revision;
    double valve, temp_std; /* the rooms' mean valve position and temperature std (rooms.h) */
    uint32_t rooms, flat;   /* rooms listed (0: no rooms, the room features are missing); those
                               whose temperature did not change in the hour (rooms.h) */
} hvs_feat_hour_t;

/* One weather record of an hour as published on weather.hourly. */
typedef struct hvs_feat_wx {
    hvs_ms_t issued_at;
    bool observed;
    double temp, rh, cloud, ghi, wind; /* NaN unknown */
} hvs_feat_wx_t;

/* Records kept per hour: the newest issues. A row of horizon 72 h needs the newest run issued
 * by H - 71 h, which with 6-hourly runs has up to 13 newer runs and the observation after it:
 * 15, and one to spare. With 12, a history loaded whole (the trainer's) had lost those runs,
 * so its rows beyond ~66 h had no weather where serving, which never holds a record issued
 * after its as_of, had it (test_fc_engine trainer_path found it). Hourly runs would need 73. */
#define HVS_FEAT_WX_KEEP 16

/* The weather of one hour: up to HVS_FEAT_WX_KEEP records, sorted by issued_at ascending. */
typedef struct hvs_feat_wx_hour {
    hvs_ms_t hour; /* HVS_MS_NONE: empty */
    int n;
    hvs_feat_wx_t v[HVS_FEAT_WX_KEEP];
} hvs_feat_wx_hour_t;

typedef struct hvs_feat_history {
    const hvs_feat_hour_t *hours; /* ring of nhours slots */
    size_t nhours;
    const hvs_feat_wx_hour_t *wx; /* ring of nwx slots (the building's weather) */
    size_t nwx;
    hvs_ms_t commissioning; /* HVS_MS_NONE: unknown */
} hvs_feat_history_t;

enum {
    HVS_FEAT_F_MISSING_WEATHER = 1u,
    HVS_FEAT_F_WEATHER_FORECAST = 2u,
    HVS_FEAT_F_LAG_24_MISSING = 4u,
    HVS_FEAT_F_LAG_168_MISSING = 8u,
    HVS_FEAT_F_HISTORY_SHORT = 16u,
};
#define HVS_FEAT_FLAG_COUNT 5

/* The part of a vector computed from the entity's own hours alone: use lags and rolling
 * windows, the hour's comfort and the previous hour's gap, and their flags. For a vector of a
 * past hour (as_of >= H + 1 h) it depends neither on as_of nor on weather, so a consumer that
 * must not see later revisions of the entity's hours can compute it once and keep it. */
#define HVS_FEATURES_ENTITY_COUNT 22
#define HVS_FEAT_F_ENTITY                                                                          \
    (HVS_FEAT_F_LAG_24_MISSING | HVS_FEAT_F_LAG_168_MISSING | HVS_FEAT_F_HISTORY_SHORT)
/* Indices (into a vector) of the HVS_FEATURES_ENTITY_COUNT entity features, ascending. */
const int *hvs_features_entity_indices(void);

const char *const *hvs_features_names(void);       /* HVS_FEATURES_COUNT names */
int hvs_features_index(const char *name);          /* -1 if not a feature */
const char *hvs_features_version(void);            /* static */
const char *hvs_features_flag_name(int bit_index); /* "missing_weather", ... */

/* Numbers as readers keep them, to what meters and sensors resolve and finer: heating energy
 * to 1 Wh, water to 0.01 l, temperatures, setpoints, gaps and spreads to 0.01 degC, valve
 * positions to 0.01 %. Below any meter's or sensor's resolution (the definitions' meaning is
 * unchanged: HVS_FEATURES_REVISION stays), but a time-weighted mean such as 21.283333333333335
 * becomes 21.28, which a ring stores in 3 bytes instead of 9 (pack.h), and every reader keeps
 * the same numbers, live or replayed. */
#define HVS_FEAT_PER_KWH 1000.0 /* steps per kWh */
#define HVS_FEAT_PER_L 100.0
#define HVS_FEAT_PER_C 100.0
#define HVS_FEAT_PER_PCT 100.0
/* v to the nearest multiple of 1/per (per a power of ten): the double nearest that decimal
 * (m / per), as hvs_pack_put_double recognises it. NaN, infinities and magnitudes of 1e12 or
 * more come back as they are; -0 as 0. */
double hvs_feat_round(double v, double per);
/* An hour's numbers so rounded, as every reader of aggregates does before keeping them (features
 * worker and forecaster: workers/features/input.c; trainer). Rooms are rounded as read
 * (rooms.h). */
void hvs_feat_hour_round(hvs_feat_hour_t *h);

/* Ring slot of an hour for a ring of n slots. */
size_t hvs_feat_slot(hvs_ms_t hour, size_t n);
/* The entity's hour h, or NULL when its slot holds another hour (or nothing). */
const hvs_feat_hour_t *hvs_feat_hour_get(const hvs_feat_history_t *h, hvs_ms_t hour);
/* The latest weather record of hour h issued at or before as_of, or NULL. */
const hvs_feat_wx_t *hvs_feat_wx_get(const hvs_feat_history_t *h, hvs_ms_t hour, hvs_ms_t as_of);

/* Insert a record into an hour's weather (replacing one with the same issued_at and kind;
 * dropping the oldest past HVS_FEAT_WX_KEEP). Returns 1 changed, 0 unchanged. */
int hvs_feat_wx_add(hvs_feat_wx_hour_t *wh, hvs_ms_t hour, const hvs_feat_wx_t *rec);

/*
 * The vector of target hour H as of T for the entity whose history is h, in the local time
 * and calendar of cal (the building's holiday region). out has HVS_FEATURES_COUNT slots;
 * *flags gets HVS_FEAT_F_* bits. H is floored to its hour.
 */
void hvs_features_compute(const hvs_feat_history_t *h, hvs_calendar_t *cal, hvs_ms_t target_hour,
                          hvs_ms_t as_of, double *out, unsigned *flags);
/* The same without the entity part (for a caller that kept it, see above): the entity features
 * are NaN and the HVS_FEAT_F_ENTITY flags clear; every other value is hvs_features_compute's. */
void hvs_features_compute_context(const hvs_feat_history_t *h, hvs_calendar_t *cal,
                                  hvs_ms_t target_hour, hvs_ms_t as_of, double *out,
                                  unsigned *flags);

#endif
