/*
 * engine.h - the refresher's engine: serve and refresh (docs/design.md section 8, "The
 * refresh"). Pure event-time logic, no Kafka or Redis: the worker (main.c) feeds it the
 * building totals of aggregates.15m and the baselines of forecasts.baseline, and it makes the
 * 15-minute ticks and hands each refreshed forecast back through a callback.
 *
 * Per building it keeps a ring of RF_RING_HOURS hours: each hour's four quarter actuals and
 * its served baseline (the point for that hour of the newest baseline issued at or before the
 * hour's start, whatever order baselines arrive in), and the first RF_BASE_POINTS hours of the
 * baselines a tick may still serve.
 *
 * The tick. A building's ticks are the 15-minute boundaries of event time from its first
 * baseline's issue. Its tick t is made once its partition's quarters reached t + grace (a quarter
 * "reaches" its end) and either its own baseline issued at or after floor_hour(t) arrived or the
 * quarters reached t + baseline_wait and nothing of the partition's baselines waits to be read
 * (the read must not wait for a stalled forecaster, but baselines not read yet are not one: a
 * backlog hands a partition's quarters over before its baselines). Each building waits for its
 * own baseline: a partition-wide one let a building's tick go with another's baseline of the
 * hour while its own was the next message (test_rf_fault_it: 136 of 1835 latest refreshes
 * differed between two undisturbed runs). With B the newest baseline of the building issued at or
 * before t that forecasts H0 = floor_hour(t):
 *   - the errors of the three complete hours before H0 (actual, the sum of its four quarters,
 *     minus its served baseline; NaN when a quarter or the baseline is missing), per m2 of
 *     heated area;
 *   - the correction of hour H0 + (h - 1) for h = 1, 2, 3: the serving `refresh/<scope>` model
 *     of B's scope (B from forecast/<scope>), else the online fit (flag online_correction):
 *     exponentially weighted ridge least squares per horizon over the building's own ring
 *     (weight `forget` per hour of age, intercept free), the same inputs as the trainer's
 *     model; with fewer than online_min rows for a horizon, no correction (flag uncorrected);
 *   - refreshed = B's point + correction, never below 0 (kWh to 0.1 Wh, as are its interval and
 *     correction = refreshed - B's point), its interval shifted with it; for
 *     h = 1 after the hour began, the quarters of H0 that ended by t are taken as measured and
 *     only the rest of the hour is forecast (its interval shrinks to that rest);
 *   - flag missing_actuals when a quarter of those three hours or of H0 before t is missing.
 * Ticks are made as the inputs are applied (a timer on the watermark), so they do not depend on
 * batch boundaries. An input that arrives after a tick it could change (a late or revised
 * quarter, a baseline issued at or before the partition's last tick) makes that building's
 * ticks again from its time to the last tick made, at most `reissue` back from the last tick
 * (the lags reach 4 h): their latest refresh is what the inputs say, whatever their order.
 *
 * A building keeps every baseline a tick may still serve: those issued after the earliest tick a
 * late input can make again (the last tick - reissue) and the newest at or before it (at most
 * RF_BASELINES_MAX: baselines read that far ahead of the quarters drop the oldest, logged).
 *
 * While a partition is rebuilt (quiet inputs: replayed to rebuild lost state), a tick is made
 * quietly (emit's quiet) when the replayed quarters reached t + grace and a replayed baseline
 * was issued at or after its hour - it was published before the loss - and the rebuild has not
 * published it or an earlier tick of the building. Whether the wait's fallback made a tick
 * before the loss is not known, so such a tick is published again rather than never; and once
 * live inputs made the rebuild publish a tick, a replayed input that changes it publishes it
 * again (what the rebuild published is not what was published before the loss).
 *
 * Ownership: rf_new copies the config; the callbacks' opaque is borrowed. Buildings belong to
 * the engine (rf_building); the refresh handed to emit is valid during the call.
 * Model refs are acquired per flush and released at its end.
 * Thread-safety: one thread. Errors: 0, HVS_ENOMEM, or what a callback returned.
 */
#ifndef RF_ENGINE_H
#define RF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/model_registry.h"
#include "hvs/time.h"

#define RF_HORIZONS 3
#define RF_RING_HOURS 128    /* the online fit's window and the lags */
#define RF_BASELINES_MAX 256 /* baselines a building keeps (read that far ahead of its ticks) */
#define RF_BASE_POINTS 8
#define RF_QUARTER_MS (15 * 60 * 1000)
#define RF_LAGS 3

enum {
    RF_F_ONLINE = 1u,          /* online_correction: no refresh model serves the scope */
    RF_F_MISSING_ACTUALS = 2u, /* a quarter the tick reads is missing */
    RF_F_UNCORRECTED = 4u,     /* the online fit had too few rows: the baseline as it is */
    RF_FLAG_COUNT = 3
};
const char *rf_flag_name(int bit);

/* One hour of a building: quarter actuals and the served baseline (NaN unknown). */
typedef struct rf_hour {
    int32_t hour;        /* hours since the epoch; INT32_MIN empty */
    int32_t bissued_min; /* issued_at of the baseline that set `base`, minutes since the epoch */
    float base;
    float q[4];
} rf_hour_t;

/* A baseline as kept: its issue, model and first hours. */
typedef struct rf_baseline {
    hvs_ms_t issued_at; /* HVS_MS_NONE: empty slot */
    hvs_ms_t first_hour;
    int32_t version;
    uint16_t model; /* interned name (rf_name) */
    uint8_t npoints;
    float yhat[RF_BASE_POINTS], lo[RF_BASE_POINTS], hi[RF_BASE_POINTS]; /* lo/hi NaN: none */
} rf_baseline_t;

typedef struct rf_building {
    char *id;
    int32_t partition;
    rf_hour_t ring[RF_RING_HOURS]; /* by hour modulo RF_RING_HOURS */
    rf_baseline_t *base; /* newest first: every one a tick may still serve (rf_base_append) */
    size_t nbase, capbase;
    uint64_t ring_dirty[RF_RING_HOURS / 64];
    bool base_dirty, known; /* known: in the partition's set in Redis */
    bool ring_sized;        /* the Redis string holds the whole ring: SETRANGE from now */
    bool warned;            /* no-area warning given */
    hvs_ms_t latest_tick;   /* tick of `latest` or of the newest refresh made */
    hvs_ms_t rebuild_pub;   /* the earliest tick its rebuild published (NONE; memory only) */
    hvs_ms_t last_tick;     /* its newest tick made (NONE: none yet) */
    hvs_ms_t q_base;        /* its newest baseline a rebuild replayed (NONE; memory only) */
    hvs_ms_t tick_saved;    /* last_tick as hvs:rf:lag:<P> holds it (state.c) */
    bool lagged;            /* in hvs:rf:lag:<P>: its last tick is not the partition's */
    char *latest;           /* the newest refresh's JSON to write (worker's), or NULL */
    /* online fit (memory only: a function of the ring) */
    hvs_ms_t fit_h0;
    double fit[RF_HORIZONS][RF_LAGS + 1];
    uint8_t fit_ok; /* bit h-1: horizon h has a fit */
} rf_building_t;

typedef struct rf_partition {
    int32_t p;
    hvs_ms_t last_tick;       /* the newest tick made for any of its buildings (NONE: none) */
    hvs_ms_t wm_agg, wm_base; /* the newest quarter's end, baseline's issue (NONE: none) */
    hvs_ms_t q_agg;           /* what a rebuild replayed of the quarters (memory only; NONE) */
    bool dirty;
    rf_building_t **b;
    size_t n, cap;
} rf_partition_t;

typedef struct rf_config {
    hvs_ms_t grace, baseline_wait, reissue;
    double forget, ridge;
    int online_min;
} rf_config_t;

typedef struct rf_info {
    double area_m2; /* NaN / <= 0: not refreshable per m2 */
    const char *archetype;
} rf_info_t;

typedef struct rf_point {
    hvs_ms_t target_hour;
    int horizon_h;
    double yhat, lo, hi, correction; /* lo/hi NaN when the baseline had none */
} rf_point_t;

typedef struct rf_refresh {
    const char *building;
    int32_t partition;
    hvs_ms_t issued_at;
    hvs_ms_t baseline_issued_at;
    int baseline_version;
    const char *baseline_model;
    const char *model_name; /* refresh/<scope>, or "online" */
    int model_version;      /* 0 for online */
    unsigned flags;
    bool again; /* made again after a late input */
    int npoints;
    rf_point_t points[RF_HORIZONS];
} rf_refresh_t;

typedef struct rf_stats {
    uint64_t ticks, refreshes, again, no_baseline, no_area, online, by_flag[RF_FLAG_COUNT];
} rf_stats_t;

typedef struct rf_callbacks {
    int (*info)(void *opaque, const char *building, rf_info_t *out); /* -1: unknown */
    hvs_model_ref_t *(*acquire)(void *opaque, const char *name);     /* NULL: none serves */
    bool (*quiet)(void *opaque, int32_t partition); /* rebuilding: publish nothing */
    int (*emit)(void *opaque, rf_building_t *b, const rf_refresh_t *r, bool quiet, hvs_err_t *err);
    void *opaque;
    /* Whether baselines of the partition wait to be read (NULL: never): then they are not a
     * stalled forecaster, and a tick waits for its hour's baseline past baseline_wait. */
    bool (*base_pending)(void *opaque, int32_t partition);
} rf_callbacks_t;

typedef struct rf rf_t;

int rf_new(const rf_config_t *c, const rf_callbacks_t *cb, rf_t **out, hvs_err_t *err);
void rf_destroy(rf_t *g);

/* A building (created empty with create); NULL when absent or on ENOMEM. */
rf_building_t *rf_building(rf_t *g, const char *id, int32_t partition, bool create);
/* Partition p (created with create). */
rf_partition_t *rf_partition(rf_t *g, int32_t p, bool create);
/* Every partition known (borrowed array). */
rf_partition_t **rf_partitions(rf_t *g, size_t *n);
/* Forget partition p and its buildings (revoked; their state was saved). */
void rf_drop_partition(rf_t *g, int32_t p);
/* A new, zeroed baseline at the end of b's (state loading: append newest first); NULL when
 * RF_BASELINES_MAX are kept or on ENOMEM. */
rf_baseline_t *rf_base_append(rf_building_t *b);
/* Interned baseline model names: the index kept in rf_baseline_t.model, and back. */
uint16_t rf_name_intern(rf_t *g, const char *name);
const char *rf_name(const rf_t *g, uint16_t id);

/* Inputs, validated by the caller. A quarter [start, start + 15 min) of the building's total
 * heat (kwh NaN: unknown); a baseline with its points (target hours ascending). Each input
 * first makes again the building's ticks it changed, then the partition's ticks its watermarks
 * made ready, emitting each refresh: the ticks follow the inputs' order, never the batches'. */
int rf_on_quarter(rf_t *g, int32_t p, const char *building, hvs_ms_t start, double kwh, bool quiet,
                  hvs_err_t *err);
typedef struct rf_baseline_in {
    hvs_ms_t issued_at;
    const char *model_name;
    int version;
    size_t npoints;
    const hvs_ms_t *target_hour;
    const double *yhat, *lo, *hi; /* lo/hi NaN: none */
} rf_baseline_in_t;
int rf_on_baseline(rf_t *g, int32_t p, const char *building, const rf_baseline_in_t *in, bool quiet,
                   hvs_err_t *err);

/* The end of a batch: release the model refs its ticks acquired (a new version serves from the
 * next batch on). */
int rf_flush(rf_t *g, hvs_err_t *err);

rf_stats_t *rf_stats(rf_t *g);

#endif
