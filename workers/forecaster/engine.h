/*
 * engine.h - the forecaster's state machine: a building's hourly aggregates and weather in,
 * 72-hour baseline forecasts (with intervals, flags and the version that made them), low
 * confidence and drift alerts, and live accuracy out. Pure of I/O: the consume loop (main.c)
 * feeds it and publishes what it emits; tests drive it in process (docs/design.md section 12).
 *
 * When a forecast is issued. Issue times of a building are the hour boundaries of event time
 * (every `every`) from the end of its first aggregate's hour, and the issue time of every
 * forecast run seen for it issued after the boundary before its first (`since`). An issue time
 * T is made once both inputs of the building have passed it: its aggregates up to T (the hour
 * ending at T arrived) and its weather past T (a record issued after T arrived; weather comes in
 * issue order) - or, when its own weather lags, once the weather of its partition passed T +
 * weather_wait (a building whose provider failed is not waited for; a point of the partition's
 * weather stream, not of how far the aggregates were read ahead). An hour that arrives late, or
 * a revision of it, makes the issues made since that can read it again (from its end to 169 h
 * later; further with calibrated intervals, below); so does weather read after an issue it
 * could change (issued at or before the last issue made - the building's weather lagged past
 * weather_wait), from its issued_at, at the flush. Made again are the boundaries and the runs'
 * issue times between them, in time order, a run read only after its time among them (as had
 * its weather come first); in issue order an issue waits for weather issued after it, so
 * ordinary weather makes nothing again. So the latest forecast per issue time is a function of
 * the data, whatever the interleaving of the two topics, the batch boundaries or a restart.
 * While a rebuild replays lost state (quiet inputs), an issue is quiet when the replayed inputs
 * alone made it ready (it was published before the loss) and no issue time up to it was
 * published since the process started: a replayed late hour that makes again an issue this
 * process already published (its weather came live, ahead of the aggregates' replay) publishes
 * it again, or the version without that hour would stay the latest.

 * What a forecast is. Target hours: the 72 hours from the first hour starting at or after T;
 * horizon_h of a point is its index + 1. Each point's features come from the one feature
 * definition (features.h) as of T on the building's series and weather, and its row from the
 * task row builder (task_rows.h: the trainer's rows, per m2 of heated area). The model is
 * chosen by the building's age at T (docs/design.md section 6): younger than mature_ms, rules;
 * then forecast/building:<id> once it is building_ms old and one serves, else
 * forecast/archetype:<a>, else forecast/global, else rules. A building without a heated area
 * cannot be forecast per m2: it is skipped and counted (stats.no_area).
 * Rules (flag rules_only): kWh = area x (base + k x hdh) / 1000 with k the archetype's W per m2
 * per K (fc_config_t.rules; `rules_default` for an archetype not listed), hdh of the target
 * hour's weather as known at T (its last 24 h mean when it has none); interval x[0.5, 1.5].
 * Intervals of a model: its record's params interval_<bucket> (train.h, split-conformal, 80 %):
 * [p + q10 (max(p,0) + floor), p + q90 (max(p,0) + floor)] in target units, x area; without
 * them, none (null). Then calibrated on the building's own record (interval_window_h > 0): of
 * the unscaled intervals it was issued for the hours that ended in the window before T (one point
 * per bucket and target hour, those with an actual), s is the conformal 80 % quantile of
 * |actual - middle| / half-width, shrunk towards 1 by 50 points' weight and kept in [0.25, 4];
 * the interval is middle +- s x half-width. The backtest's errors are those of an earlier season
 * and of the whole fleet; a building's own last days say how wide its errors run now. A
 * function of the data: the slots are written by the issues that made them (again when those
 * are made again), so a revision re-issues up to 170 h + the window + 72 h after it (exact for
 * revisions up to 168 h late, as the lag features are). Never below 0 kWh.
 * Flags: rules_only; stale_weather (no forecast run issued within stale_after before T: the
 * last run's values serve as far as they reach); missing_weather (some target hour had no
 * weather at all); out_of_distribution (some horizon within ood_horizon fell in a bin of the
 * version's joint temperature x irradiance histogram holding less than ood_min_share of its
 * training rows, or outside the profile's temperature range by more than ood_margin_c).
 * Alerts: FORECAST_LOW_CONFIDENCE once per building and UTC day of the first target hour within
 * ood_horizon the model extrapolates to (not while rebuilding): not bracketed by the joint
 * histogram (hvs_joint_histogram_bracketed: fewer than ood_min_share of the training rows
 * neither warmer nor sunnier, or neither colder nor darker, than its bin).
 * A monotone model interpolates between training rows on both sides of a point, however few
 * share its own bin - the flag says that bin is thin, the alert that there is nothing beyond it.
 * MODEL_DRIFT below.
 *
 * Live accuracy. Each issue records, per building and target hour, one point per horizon
 * bucket (1-6, 7-24, 25-48, 49-72 h: the horizon of the bucket that the target hour's number
 * selects, an unbiased sample of the bucket's horizons) and the day-ahead point (the issue at
 * 12:00 UTC the day before: the trainer's day-ahead protocol). When the target hour's actual
 * arrives (its first aggregate), each point adds |actual - predicted| and actual to its
 * version's bucket, per UTC day of the target hour, on the building's partition. When a
 * partition's aggregates enter a new UTC day, the 7 days before are judged per version: a
 * day-ahead WAPE above degrade_factor x the version's backtest WAPE (with at least
 * drift_min_points points) is a bad day; degrade_days bad days in a row raise MODEL_DRIFT
 * naming "<name>:<version>@p<P>" (the scorer's entity rule), once per run of bad days.
 *
 * Ownership: fc_t owns its buildings (their feature rings), calendars, the batch of issues and
 * interned version names; model refs are acquired per batch through the callbacks and released
 * by fc_flush. Emitted forecasts and alerts point into the engine: valid during the callback.
 * Thread-safety: none (one consume loop). Errors: HVS_ENOMEM, HVS_EMODEL from prediction, or
 * the first error a callback returns (the caller must then not commit).
 */
#ifndef FC_ENGINE_H
#define FC_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "hvs/alert.h"
#include "hvs/featstore.h"
#include "hvs/features.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"

#define FC_HORIZONS 72
#define FC_BUCKETS 5 /* 1-6, 7-24, 25-48, 49-72 h, day-ahead */
#define FC_DAY_AHEAD 4
/* Target hours of unscaled intervals kept for calibration: as many as the hour rings keep, so an
 * issue made again after a revision up to 168 h late (the lags' own reach) finds the intervals
 * of its window as the first time did (window + 72 h back from the frontier, at most 263 h). */
#define FC_CAL_HOURS HVS_FS_HOURS
#define FC_CAL_MAX_WINDOW 96 /* hours of scored points an issue's calibration reads */
#define FC_ACC_SLOTS 96      /* target hours kept for scoring: > 72 + lateness */
#define FC_WAPE_DAYS 8       /* day slots of the rolling accuracy: 7 judged + the current */
#define FC_NS "fc"           /* the forecaster's feature-ring namespace (featstore.h) */

enum {
    FC_F_RULES_ONLY = 1u,
    FC_F_STALE_WEATHER = 2u,
    FC_F_MISSING_WEATHER = 4u,
    FC_F_OOD = 8u,
};
#define FC_FLAG_COUNT 4
const char *fc_flag_name(int bit_index); /* "rules_only", ... */
const char *fc_bucket_name(int b);       /* "h1_6", ..., "day_ahead" */

typedef struct fc_rule {
    const char *archetype;
    double w_per_m2k;
} fc_rule_t;

typedef struct fc_config {
    hvs_ms_t every;        /* issue period, 1 h */
    hvs_ms_t from;         /* issue times before this are skipped (a backfill); NONE: none */
    hvs_ms_t weather_wait; /* issue without weather past T once aggregates reach T + this */
    hvs_ms_t stale_after;  /* no forecast run issued within this before T: stale_weather */
    hvs_ms_t mature_ms, building_ms;
    const char *default_region;
    double ood_min_share;  /* joint bin share below which a horizon is out of distribution */
    double ood_margin_c;   /* degrees beyond the profile's temperature range */
    int ood_horizon;       /* horizons 1..this are judged for the flag and the alert */
    int interval_window_h; /* hours of the building's own scored points that rescale its
                              intervals (0..FC_CAL_MAX_WINDOW; 0: the backtest's alone) */
    double degrade_factor;
    int degrade_days;
    int64_t drift_min_points;
    const fc_rule_t *rules;
    size_t nrules;
    double rules_default, rules_base; /* W/(m2 K) of an unlisted archetype; base W/m2 */
} fc_config_t;

/* What the forecaster needs of a building's topology record. */
typedef struct fc_info {
    double area_m2; /* NaN: unknown */
    hvs_ms_t commissioning;
    const char *archetype; /* "" none */
    const char *region;    /* holiday region, "" none */
} fc_info_t;

/* One published forecast (pointers into the engine, valid during the callback). */
typedef struct fc_forecast {
    const char *building;
    int32_t partition;
    hvs_ms_t issued_at;
    const char *model_name; /* "rules" for a rules forecast */
    int model_version;      /* 0 for rules */
    const char *ident;      /* "<name>:<version>" or "rules" */
    unsigned flags;         /* FC_F_* */
    int n;
    const hvs_ms_t *target;
    const double *yhat, *lower, *upper; /* kWh; lower/upper NaN: no interval */
    const bool *ood;
} fc_forecast_t;

typedef struct fc_alert {
    const char *building; /* FORECAST_LOW_CONFIDENCE: the building; MODEL_DRIFT: "" */
    hvs_alert_type_t type;
    const char *entity;  /* MODEL_DRIFT: "<ident>@p<P>" */
    const char *model;   /* "<name>:<version>" */
    hvs_ms_t first_seen; /* the day's first target hour / the judged day */
    double score;
    char summary[320];
    const char *evidence[14]; /* name, value pairs, NULL-terminated */
} fc_alert_t;

typedef struct fc_callbacks {
    int (*info)(void *opaque, const char *building, fc_info_t *out); /* -1: unknown */
    hvs_model_ref_t *(*acquire)(void *opaque, const char *name);     /* NULL: none */
    int (*forecast)(void *opaque, const fc_forecast_t *f, bool quiet, hvs_err_t *err);
    int (*alert)(void *opaque, const fc_alert_t *a, hvs_err_t *err); /* not when quiet */
    void *opaque;
} fc_callbacks_t;

/* One accuracy point waiting for its actual. */
typedef struct fc_acc_point {
    float pred;
    uint16_t ident; /* fc_ident index + 1; 0: empty */
} fc_acc_point_t;

typedef struct fc_acc_slot {
    hvs_ms_t hour; /* HVS_MS_NONE: empty */
    fc_acc_point_t p[FC_BUCKETS];
} fc_acc_slot_t;

/* A target hour's unscaled model intervals (kWh), one per horizon bucket 1-6 ... 49-72 h: the
 * point of the bucket's sampled horizon (as for accuracy). hour: the hour's start / 1 h; 0: empty.
 * Saved as it is in memory (native byte order, 36 bytes a slot). */
typedef struct fc_cal_slot {
    int32_t hour;
    float lo[4], hi[4];
} fc_cal_slot_t;

typedef struct fc_building {
    hvs_fs_building_t *fs; /* the building series ("-") and weather, namespace FC_NS */
    hvs_ms_t agg_time;     /* end of the newest hour of its aggregates seen */
    hvs_ms_t wx_time;      /* newest issued_at of its weather seen */
    hvs_ms_t issued;       /* the last issue time made (HVS_MS_NONE: none) */
    hvs_ms_t since;        /* its issue times are after this: the boundary before its first
                              (NONE: not known, a state saved before it was kept) */
    hvs_ms_t next_run;     /* the earliest forecast run issued after `issued` (NONE: none) */
    hvs_ms_t re_from;      /* issue times made that weather read late changed, from re_from */
    hvs_ms_t re_to;        /* to before re_to: made again at the flush (memory only; NONE) */
    bool re_quiet;         /* every weather record behind them was replayed (quiet) */
    hvs_ms_t q_agg, q_wx;  /* agg_time, wx_time as far as a rebuild replayed (memory only) */
    hvs_ms_t loud_from;    /* the earliest issue time this process published (memory only):
                              from it on an issue is never made quietly (NONE: none yet) */
    hvs_ms_t ood_day;      /* UTC day of the last FORECAST_LOW_CONFIDENCE alert */
    fc_acc_slot_t acc[FC_ACC_SLOTS];
    uint64_t acc_dirty[(FC_ACC_SLOTS + 63) / 64];
    fc_cal_slot_t cal[FC_CAL_HOURS]; /* by hour modulo FC_CAL_HOURS */
    uint64_t cal_dirty[(FC_CAL_HOURS + 63) / 64];
    bool cal_sized; /* the Redis string holds the whole ring (memory only): SETRANGE from now */
    bool dirty;     /* agg_time ... ood_day changed since saved */
    char *latest;   /* the latest forecast's JSON (output.h) to write, or NULL:
                                   set by the worker, written and freed with the state */
    bool warned;    /* no-area warning given */
} fc_building_t;

/* A version's live accuracy on one partition: per bucket and UTC day, sums of |error|,
 * actuals and points; the drift judgement's run of bad days. */
typedef struct fc_wape_day {
    hvs_ms_t day; /* HVS_MS_NONE: empty */
    double e, y;
    int64_t n;
} fc_wape_day_t;

typedef struct fc_version_acc {
    uint16_t ident;
    int32_t partition;
    fc_wape_day_t d[FC_BUCKETS][FC_WAPE_DAYS];
    int bad_days;
    hvs_ms_t judged; /* the last day judged */
    bool dirty;
} fc_version_acc_t;

typedef struct fc_stats {
    uint64_t issued, points, rules, ood_forecasts, low_confidence_alerts, drift_alerts, no_area,
        scored, skipped_old, reissued;
    uint64_t ood_joint, ood_range; /* horizons out of distribution by the histogram, the range */
    uint64_t ood_beyond;           /* forecasts extrapolated: a horizon not bracketed (engine.h) */
    uint64_t by_flag[FC_FLAG_COUNT];
} fc_stats_t;

typedef struct fc fc_t;

int fc_new(const fc_config_t *conf, const fc_callbacks_t *cb, fc_t **out, hvs_err_t *err);
void fc_destroy(fc_t *g);
const fc_config_t *fc_config(const fc_t *g);
fc_stats_t *fc_stats(fc_t *g);

/*
 * The rules of a building without heated area under a kwh profile (profile.h; heat's rules are
 * per m2): seasonal naive from its own hours in view known at issue time t. Target hour
 * h0 + k h (k < FC_HORIZONS) repeats the mean of the same hour 1 and 2 weeks before where the
 * history holds either, else the same hour on the nearest of 3 days that ended by t. Fills
 * out[FC_HORIZONS] (NaN where neither) and returns whether every hour got a value: a site with
 * less history is not forecastable yet. Pure; thread-safe.
 */
bool fc_seasonal_naive(const hvs_feat_history_t *view, hvs_ms_t t, hvs_ms_t h0,
                       double out[FC_HORIZONS]);

/* The building's state, created (empty) when absent if create; NULL if absent or ENOMEM. */
fc_building_t *fc_building(fc_t *g, const char *id, int32_t partition, bool create);
/* Every building (borrowed array, valid until the next call that adds or drops one). */
fc_building_t **fc_buildings(fc_t *g, size_t *n);
/* Take over a building loaded from Redis (its fs building is then the engine's). */
int fc_adopt(fc_t *g, fc_building_t *b);
/* Forget partition p's buildings and versions' accuracy (revoked; state saved before). */
void fc_drop_partition(fc_t *g, int32_t p);

/* Inputs (validated by the caller). quiet: rebuilding lost state, publish nothing. The
 * aggregate's entity must be the building series; others are ignored (0). Issues that become
 * ready are queued; fc_flush makes them. */
int fc_on_aggregate(fc_t *g, int32_t partition, const char *building, const hvs_feat_hour_t *h,
                    bool quiet, hvs_err_t *err);
int fc_on_weather(fc_t *g, int32_t partition, const char *building, hvs_ms_t hour,
                  const hvs_feat_wx_t *rec, bool quiet, hvs_err_t *err);

/* Make the queued issues (predictions batched per model version), emit them, release the
 * batch's model refs. */
int fc_flush(fc_t *g, hvs_err_t *err);

/* A forecast model's prediction p (in its target scale s) as the kWh a forecast publishes for a
 * building of heated area area_m2: hvs_taskrow_to_kwh, never below 0; a value that is not
 * finite gives 0 with *nan set (the forecast is flagged missing_weather). hvsctl score converts
 * its batch predictions with it too. Pure. */
double fc_point_kwh(hvs_target_scale_t s, double p, double area_m2, bool *nan);

/* Interned version names (accuracy points name them by index + 1). */
const char *fc_ident(const fc_t *g, uint16_t id);
uint16_t fc_ident_intern(fc_t *g, const char *ident, double backtest_wape);
double fc_ident_backtest_wape(const fc_t *g, uint16_t id);

/* Versions' accuracy (borrowed array). */
fc_version_acc_t **fc_versions(fc_t *g, size_t *n);
fc_version_acc_t *fc_version(fc_t *g, uint16_t ident, int32_t partition, bool create);
/* The rolling WAPE of a version's bucket over the days before `until` (FC_WAPE_DAYS - 1 of
 * them) on the given partitions (NULL: all), and its points; NaN without points. */
double fc_live_wape(fc_t *g, uint16_t ident, int bucket, hvs_ms_t until, const int32_t *parts,
                    size_t nparts, int64_t *points);

#endif
