/*
 * engine.h - the feature worker's state machine: hourly aggregates and weather records in,
 * FeatureVectors (features.h) and data-quality alerts out. Pure of I/O: the consume loop
 * (main.c) feeds it and publishes what it emits, so tests drive it in process.
 *
 * What a vector of (entity, hour H) is, whatever order the two inputs arrive in (only the
 * latest vector per entity and hour counts; docs/design.md section 5):
 *   - its entity part (features.h: lags, rolling windows, comfort) is computed when H's
 *     aggregate (or a revision of it) arrives, from the entity's hours known then, and kept
 *     with the entry while the vector waits: an aggregates topic is read in order, so that part
 *     is a function of the data, not of when the weather came;
 *   - its weather part is the weather as known at as_of, where X is the earliest observation
 *     of H: as_of = max(H + 1 h, X's issued_at) when X was issued within upgrade_window of H,
 *     else as_of = H + 1 h + weather_wait (the "deadline": the latest forecast issued by then
 *     stands in, flagged, or the weather features are missing). A building's weather must come
 *     in issue order (hvs-weather publishes it so): when a record issued after t has been seen,
 *     everything issued up to t is known.
 * When vectors go out (intermediate ones may differ between runs; the last equals the above):
 *   - at once, when H's aggregate arrives and X is known;
 *   - else when X arrives; or, when the partition's watermark passes the deadline first, a
 *     "weak" vector as of the deadline, again ("settled") once the building's weather has
 *     passed the deadline if it had not yet, and once more ("upgrade") when X arrives;
 *   - a weak entry is forgotten once the building's weather passed H + upgrade_window (X can
 *     no longer come) or its aggregates passed H + 168 h (the bound on how far the weather may
 *     lag the aggregates for the rule to hold).
 *   A revised aggregate re-emits its hour's vector; later hours' vectors use the revised value
 *   when their own aggregate comes after it (they are not re-emitted: that would multiply every
 *   revision by the 168 hours that depend on it).
 *   Each vector carries a revision, increasing with every re-emission of its entity-hour and the
 *   same in every run for the same data: 4 x the aggregate's revision, + 0 weak, + 1 weak
 *   settled, + 2 with the observation. The highest is the one that counts.
 * Data quality: per building and UTC day of target hours, the share of first vectors (and
 * their upgrades) missing each critical feature; above `dq_limit` with at least
 * `dq_min_vectors` vectors, a DATA_QUALITY alert (again when the rate moved by 5 points).
 *
 * Ownership: fx_t owns its buildings (and their featstore buildings), pending entries and
 * calendars; the topology is borrowed (may be NULL). Ids are copied. Emitted vectors point into
 * the engine's buffers, valid during the callback only.
 * Thread-safety: none. Errors: HVS_ENOMEM, or the first error a callback returns (then the
 * caller must not commit, and should restart: state is ahead of what was published).
 */
#ifndef FX_ENGINE_H
#define FX_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "hvs/featstore.h"
#include "hvs/features.h"
#include "hvs/redis.h"
#include "hvs/topology.h"
#include "input.h"

#define FX_DQ_MAX 8 /* critical features watched */

typedef struct fx_config {
    hvs_ms_t weather_wait;      /* default 2 h */
    hvs_ms_t upgrade_window;    /* default 48 h */
    const char *default_region; /* calendar of buildings without one (e.g. "CH") */
    int dq_features[FX_DQ_MAX]; /* feature indices */
    int ndq;
    double dq_limit;    /* e.g. 0.05 */
    int dq_min_vectors; /* e.g. 24 */
} fx_config_t;

/* The entity part of a vector, computed when its hour's aggregate arrived. */
typedef struct fx_snap {
    uint32_t revision; /* the aggregate's */
    unsigned flags;    /* HVS_FEAT_F_ENTITY bits */
    double target;
    double x[HVS_FEATURES_ENTITY_COUNT]; /* at hvs_features_entity_indices() */
} fx_snap_t;

typedef struct fx_pending {
    char *entity;
    hvs_ms_t hour;
    bool weak;        /* emitted without an observation; waiting to upgrade */
    bool settled;     /* ... with the building's weather complete up to the deadline */
    bool has_snap;    /* false only for entries stored by an older version */
    bool dirty;       /* changed since saved */
    bool live;        /* its aggregate came after a rebuild's replay (in this process) */
    bool unsent;      /* its weak vector was held back by a rebuild's replay: fx_flush_unsent */
    bool stored;      /* in Redis (loaded, or saved since): removing it must delete its field */
    uint32_t missing; /* critical features missing when it was emitted (weak) */
    fx_snap_t snap;
} fx_pending_t;

typedef struct fx_dq_day {
    hvs_ms_t day; /* UTC day start; HVS_MS_NONE unused */
    int n;
    int missing[FX_DQ_MAX];
    double alerted[FX_DQ_MAX]; /* rate last alerted; < 0 none */
} fx_dq_day_t;

/* What finds a pending entry: pend[i]'s hour and a hash of its entity, kept apart from the
 * entries themselves so that a lookup scans 16 bytes an entry, not the whole snapshot. */
typedef struct fx_pend_key {
    hvs_ms_t hour;
    uint32_t hash;
} fx_pend_key_t;

typedef struct fx_building {
    hvs_fs_building_t *fs;
    fx_pending_t *pend;
    fx_pend_key_t *keys; /* keys[i] of pend[i]; same length */
    size_t npend, cappend, capkeys;
    char **gone; /* Redis fields of entries removed since saved */
    size_t ngone, capgone;
    hvs_ms_t wx_time;  /* the newest issued_at of its weather seen (HVS_MS_NONE: none) */
    hvs_ms_t agg_time; /* the newest hour of its aggregates seen */
    hvs_ms_t live_wx;  /* issue of the first weather record not replayed (HVS_MS_NONE: none) */
    fx_dq_day_t dq[2];
} fx_building_t;

typedef struct fx_vector {
    const char *building, *entity; /* entity HVS_FS_BUILDING for the building */
    hvs_ms_t hour, as_of;
    const double *x; /* HVS_FEATURES_COUNT values */
    unsigned flags;
    double target;     /* the hour's consumption; NaN unknown */
    bool upgrade;      /* re-emission with the observation */
    uint32_t revision; /* see above */
} fx_vector_t;

typedef struct fx_dq_alert {
    const char *building, *feature;
    hvs_ms_t day;
    int n, missing;
    double rate;
} fx_dq_alert_t;

typedef struct fx_sink {
    int (*vector)(void *opaque, const fx_vector_t *v, hvs_err_t *err);
    int (*alert)(void *opaque, const fx_dq_alert_t *a, hvs_err_t *err);
    void *opaque;
} fx_sink_t;

typedef struct fx_stats {
    uint64_t aggregates, weather, vectors, waited, weak, upgrades, stale;
    uint64_t missing[HVS_FEATURES_COUNT]; /* vectors emitted with each feature missing */
} fx_stats_t;

typedef struct fx fx_t;

fx_t *fx_new(const fx_config_t *conf, const hvs_topology_t *topo);
void fx_destroy(fx_t *g);
fx_stats_t *fx_stats(fx_t *g);

fx_building_t *fx_building(fx_t *g, const char *id, int32_t partition, bool create);
/* Take a building loaded from Redis (g owns fs from now on, also on failure). */
int fx_adopt(fx_t *g, hvs_fs_building_t *fs);
fx_building_t **fx_buildings(fx_t *g, size_t *n);
void fx_drop_partition(fx_t *g, int32_t partition);

/* Inputs on `partition` whose watermark (after this input) is wm. quiet: a replay of input the
 * previous state had already handled (rebuilding lost state): update state, and emit only what
 * the lost state cannot have emitted already (a vector whose aggregate or observation is not a
 * replay); a weak vector held back meanwhile goes out with fx_flush_unsent once the partition's
 * replay is over (at worst a duplicate).
 * An aggregate of an hour older than wm - (HVS_FS_HOURS - 168) h fails with HVS_EINVAL,
 * reason too_late (dead-letter it). */
int fx_on_aggregate(fx_t *g, int32_t partition, const fx_aggregate_t *a, hvs_ms_t wm, bool quiet,
                    const fx_sink_t *sink, hvs_err_t *err);
int fx_on_weather(fx_t *g, int32_t partition, const fx_weather_t *w, hvs_ms_t wm, bool quiet,
                  const fx_sink_t *sink, hvs_err_t *err);
/* The watermark of `partition` is wm: emit what waited too long, forget what can no longer
 * upgrade. */
int fx_advance(fx_t *g, int32_t partition, hvs_ms_t wm, bool quiet, const fx_sink_t *sink,
               hvs_err_t *err);
/* The partition's rebuild is over: send the weak vectors its replay held back. */
int fx_flush_unsent(fx_t *g, int32_t partition, const fx_sink_t *sink, hvs_err_t *err);

/* Pending entries in Redis: hvs:{B}:fs:pend HASH "<entity>\x1f<hour>" -> "<weak 0|1> <missing>
 * <settled 0|1> <revision> <flags> <target> <19 entity features>" (numbers exact, "nan" unknown;
 * entries of an older version have only the first two and get their entity part from the ring
 * when they go out). Only the entries changed or removed since the last save are written. */
int fx_save_pending(hvs_redis_batch_t *batch, fx_building_t *b, hvs_err_t *err);
int fx_load_pending(hvs_redis_t *r, hvs_redis_batch_t *batch, fx_building_t *b, hvs_err_t *err);

#endif
