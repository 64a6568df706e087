/*
 * aggregate.h - the aggregator's state and its two operations: accept a reading (store its
 * values, note which already emitted windows it changes) and close windows (first emissions as
 * the watermark passes window end + grace; new revisions for emitted windows whose value
 * changed). Windows are computed by windows.h from the stored samples, never updated
 * incrementally, so the result does not depend on arrival order, batch boundaries or replays.
 *
 * Per building: its apartments (sorted by id: building sums are added in that order), the
 * markers of emitted windows (revision and hash of the value, per window), and per window size
 * `through`: every window ending at or before it has been emitted at least once.
 *
 * Event time is per building (docs/design.md §4): a building's watermark is its own newest event
 * time minus conf.ooo, advanced by wall time when idle as time.h advances a partition's (from its
 * own newest event, never back, and not while its partition has readings left to read: the
 * caller touches it, agg_building_touch), so one building's history never makes another
 * building's readings late.
 *
 * Horizons (from the watermark wm of the building): a reading older than
 * wm - lateness is too late (dead letter); windows older than wm - lateness - max_interp - 1 h
 * can no longer change and are forgotten, with their samples (each series keeps its newest older
 * value as a base); instants are kept max_pair longer (they decide liveness across long counter
 * intervals).
 *
 * Ownership: agg_t owns everything in it; agg_destroy releases it. Ids are copied.
 * Thread-safety: none (one consume loop). Errors: HVS_ENOMEM; accept's refusals carry a
 * dead-letter reason in err.
 */
#ifndef AGG_AGGREGATE_H
#define AGG_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "account.h"
#include "hvs/err.h"
#include "hvs/reading.h"
#include "windows.h"

#define AGG_R_TOO_LATE "too_late"
#define AGG_R_UNKNOWN_BUILDING "unknown_building"
#define AGG_R_UNKNOWN_APARTMENT "unknown_apartment"
#define AGG_R_TOO_MANY_ROOMS "too_many_rooms"

enum { AGG_W15 = 0, AGG_W60 = 1, AGG_WSIZES = 2 };
extern const hvs_ms_t agg_window_ms[AGG_WSIZES];

typedef struct agg_marker {
    hvs_ms_t ws;
    uint32_t rev;
    uint64_t hash;
} agg_marker_t;

typedef struct agg_markers {
    agg_marker_t *m; /* sorted by ws */
    size_t n, cap;
} agg_markers_t;

/* A heat meter (topology's Building.meter or Apartment.meter, with the kind's defaults applied
 * by the worker): capacity, unit and sampling interval of a heating counter. Zeroed = the
 * configured apartment meters (agg_config_t.params). */
typedef struct agg_meter {
    bool set;
    bool learn;           /* sampling interval learned from the data (agg_meter_params) */
    double max_kw;        /* capacity */
    double unit_kwh;      /* kWh per unit of the counter's values */
    hvs_ms_t interval_ms; /* sampling interval given (learn false) */
} agg_meter_t;

typedef struct agg_apartment {
    char *id;
    agg_samples_t samples;
    agg_markers_t marks;         /* hourly windows */
    hvs_ms_t dirty_lo, dirty_hi; /* emitted windows to recompute; lo > hi = none */
    hvs_ms_t *buckets;           /* hour buckets whose stored copy is stale (persist.h) */
    size_t nbuckets, capbuckets;
    agg_meter_t meter;     /* its own meter (topology); set false = the building's */
    agg_account_t account; /* its days' counted and uncounted energy (account.h), kept by the
                            * worker as it publishes, stored with the state (persist.h) */
    bool stored_text;      /* loaded from text buckets (before format 1): the next persist
                            * replaces its whole stored key (persist.h) */
} agg_apartment_t;

typedef struct agg_building {
    char *id;
    int32_t partition;
    agg_apartment_t **apts; /* sorted by id */
    size_t napts, capapts;
    agg_markers_t marks[AGG_WSIZES];
    hvs_ms_t through[AGG_WSIZES]; /* HVS_MS_NONE until the first instant */
    hvs_ms_t horizon;             /* windows before it are final and forgotten */
    hvs_ms_t dirty_lo, dirty_hi;
    int known_apartments; /* from topology; 0 = unknown */
    agg_meter_t meter;    /* from topology; set false = the configured apartment meters (for
                           * every apartment whose own meter is not set) */
    bool persist_meta;    /* through/apartment list changed since last persist */
    /* markers changed since last persist: (apartment or NULL, size, ws) */
    struct agg_mark_ref {
        agg_apartment_t *apt;
        int size;
        hvs_ms_t ws;
    } * changed;
    size_t nchanged, capchanged;
    char **del_marks; /* marker fields forgotten since last persist (persist.h names) */
    size_t ndel_marks, capdel_marks;
    char **del_apts; /* apartments forgotten since last persist */
    size_t ndel_apts, capdel_apts;
    /* the building's event time (agg_building_wm): newest event time accepted, wall time of it
     * (or of the last touch), the watermark already reached (never go below), the watermark in
     * the stored state (persist.h), and the thresholds last acted on (agg_thresholds);
     * HVS_MS_NONE until known */
    hvs_ms_t ev_max, ev_seen, wm_floor, wm_saved;
    hvs_ms_t th[3];
    bool persist_wm; /* wm_saved changed since last persist */
    bool mk_text;    /* its marker hash holds text markers (before format 1): rewritten whole at
                      * the next persist */
    char **del_days; /* day accounts forgotten since last persist (persist.h field names) */
    size_t ndel_days, capdel_days;
} agg_building_t;

typedef struct agg_config {
    agg_params_t params;
    hvs_ms_t grace[AGG_WSIZES];
    hvs_ms_t lateness;
    hvs_ms_t ooo;  /* building watermark = newest event time minus this */
    hvs_ms_t idle; /* idle timeout of a building's watermark (0: never advances by wall time) */
} agg_config_t;

typedef struct agg_stats {
    uint64_t accepted, duplicates, too_late, conflicts, revisions, emitted, windows_computed;
} agg_stats_t;

/* What close reports for each window to publish: apt NULL = building window. */
typedef int (*agg_emit_fn)(void *opaque, const agg_building_t *b, const agg_apartment_t *apt,
                           int size, const agg_result_t *r, uint32_t revision, hvs_err_t *err);

typedef struct agg agg_t;

agg_t *agg_new(const agg_config_t *conf);
void agg_destroy(agg_t *g);
const agg_config_t *agg_config(const agg_t *g);
agg_stats_t *agg_stats(agg_t *g);

/* The building, created (partition p) when absent if create; NULL if absent or ENOMEM. */
agg_building_t *agg_building(agg_t *g, const char *id, int32_t partition, bool create);
agg_apartment_t *agg_apartment(agg_building_t *b, const char *id, bool create);
/* Every building, in no particular order (*n entries; the array is g's). */
agg_building_t **agg_buildings(agg_t *g, size_t *n);
/* Forget the buildings of a partition (revoked). */
void agg_drop_partition(agg_t *g, int32_t partition);
/* The state of `partition` was just loaded (persist.h) with stored partition watermark wm: its
 * buildings continue under the horizon their stored watermark implies (a building stored without
 * one, by a binary from before per-building watermarks, takes the partition's wm). */
void agg_partition_loaded(agg_t *g, int32_t partition, hvs_ms_t wm);

/*
 * A building's watermark at wall time now (HVS_MS_NONE before its first event): its newest event
 * time minus conf.ooo; after conf.idle of wall time without an event or a touch, advanced by the
 * wall time beyond that; never below what it already reached. observe: an event of b at event
 * time t was accepted (what idleness earned is kept). touch: b may still have readings waiting
 * to be read (its partition has input lag): not idle, the idle clock restarts. restore: the
 * watermark of the stored state (persist.h), as if observed at now.
 */
hvs_ms_t agg_building_wm(const agg_t *g, const agg_building_t *b, hvs_ms_t now);
void agg_building_observe(const agg_t *g, agg_building_t *b, hvs_ms_t t, hvs_ms_t now);
void agg_building_touch(const agg_t *g, agg_building_t *b, hvs_ms_t now);
void agg_building_restore(const agg_t *g, agg_building_t *b, hvs_ms_t wm, hvs_ms_t now);

/*
 * Store a validated reading that arrived on `partition` whose building's watermark (before
 * this reading; agg_building_wm) is wm. Returns 1 if anything new was stored, 0 for a complete duplicate, HVS_EINVAL with
 * reason too_late (older than wm - lateness) or too_many_rooms (the apartment would pass
 * AGG_MAX_SERIES series; nothing of the reading is stored), or HVS_ENOMEM.
 */
int agg_accept(agg_t *g, const hvs_reading_t *r, int32_t partition, hvs_ms_t wm, hvs_err_t *err);

/*
 * The parameters an apartment's samples are computed with at time `at` (a window's end, a
 * reading's time): the configured ones, with its meter applied (a's own when set, else b's). A learned interval is the
 * median gap between the apartment's last (up to 9) instants at or before `at` — a function of
 * the stored samples, so replays compute the same — clamped to [1 s, Lmax], with the silence
 * threshold raised to twice it; the configured interval while there is no gap yet.
 */
void agg_meter_params(const agg_t *g, const agg_building_t *b, const agg_apartment_t *a,
                      hvs_ms_t at, agg_params_t *out);

/* Marker lookup / set (persist.h restores them). */
agg_marker_t *agg_markers_find(agg_markers_t *m, hvs_ms_t ws);
int agg_markers_set(agg_markers_t *m, hvs_ms_t ws, uint32_t rev, uint64_t hash);

/*
 * Closing is driven by the building's watermark crossing thresholds (agg_thresholds: the last
 * 15-minute and hourly window ends it allows, and the horizon), checked after every reading of
 * it: so what is emitted, and when state is forgotten, depends only on the sequence of readings
 * of the building, never on where batches happen to end or on other buildings.
 *
 * agg_advance (a threshold of b's watermark moved): revisions of dirty emitted windows under
 * the previous horizon, then first emissions up to wm - grace, then forget what fell behind
 * the new horizon. agg_revise (end of a batch): only the revisions.
 * emit is called in a deterministic order. Both return 0 or the first error of emit (state is
 * then ahead of what was published: the caller must not commit, and should restart).
 */
void agg_thresholds(const agg_t *g, hvs_ms_t wm, hvs_ms_t out[3]);
int agg_advance(agg_t *g, agg_building_t *b, hvs_ms_t wm, agg_emit_fn emit, void *opaque,
                hvs_err_t *err);
int agg_revise(agg_t *g, agg_building_t *b, agg_emit_fn emit, void *opaque, hvs_err_t *err);

/* Markers are stored packed per window size, apartment and block of this many ms (UTC-aligned;
 * persist.h). */
#define AGG_MARK_BLOCK_MS (6 * 3600 * 1000LL)
/* Name of the field holding a marker's block in the building's marker hash:
 * "<minutes>:<block start in hours since the epoch>:<apartment>" (apartment "" for the
 * building). Returns the length or -1 if it does not fit. */
int agg_mark_field(char *buf, size_t len, int size, hvs_ms_t ws, const char *apt);

/* Name of a day account's field in the building's account hash: "<day>:<apartment>". Returns
 * the length or -1 if it does not fit. */
int agg_day_field(char *buf, size_t len, hvs_ms_t day, const char *apt);

/* Mark an hour bucket of an apartment stale (persist.h). */
int agg_apartment_touch(agg_apartment_t *a, hvs_ms_t t);

#endif
