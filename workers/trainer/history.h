/*
 * history.h - the trainer's training window: per building, rings of hourly aggregates (the
 * building series and each apartment's) and of the weather records of each hour, as long as
 * the window (HVS_TRAIN_WINDOW), in the shapes features.h computes from (so training rows come
 * from the one feature definition, at any as_of). Fed from aggregates.hourly and weather.hourly;
 * kept in Redis so a restart does not lose months of history that the topics no longer retain.
 *
 * Key layout (slot = hour / 1 h mod the ring length, the hour stamped in each value; encodings
 * of featstore.h):
 *   hvs:{B}:tr:h:<entity>   HASH "d<day>" -> the series' hours of that UTC day (day = hour / 24 h,
 *                           hvs_fs_encode_day: binary, numbers exact, independent of the ring's
 *                           length); entity "-" = the building. A day that loses its last
 *                           hour to a newer one is deleted. Text fields "<slot>" -> one hour
 *                           (hvs_fs_encode_hour) are the format before days: still loaded, and
 *                           the series' next save replaces the key with day fields
 *   hvs:{B}:tr:wx           HASH "d<day>" -> the weather records of that UTC day's hours
 *                           (hvs_fs_encode_wx_day: binary, exact, independent of the ring's
 *                           length); kept exactly as the series' days are. Text fields "<slot>"
 *                           (hvs_fs_encode_wx) are the format before: still loaded, and the
 *                           building's next save replaces the key
 *   hvs:{B}:tr:ents         SET  entities
 *   hvs:tr:buildings        SET  buildings with history
 *
 * Memory per building-year (8760 slots): 8.0 MB of weather (912 B a slot: up to 16 records of
 * an hour) + 0.70 MB per series (80 B a slot); apartment series may keep a shorter ring
 * (tr_history_set_apartment_hours). Redis: see README "The window" (a series' day field holds
 * 24 metered hours in ~0.6-1.3 KB; a text field per hour took ~160 bytes an hour with Redis's
 * per-field cost).
 *
 * Memory cap: at most max_apartments apartment series in all (the building series are always
 * kept); apartments beyond it are left out of the window and counted (sampled_out): the
 * anomaly models then learn from a sample of the fleet's apartments.
 *
 * Ownership: the history owns everything in it. Thread-safety: none — the training thread gets
 * rows extracted by the consume loop's thread (dataset.h), never the history itself.
 * Errors: HVS_ENOMEM, HVS_EREDIS; stored values that do not parse are HVS_ESERDE naming the key.
 */
#ifndef TR_HISTORY_H
#define TR_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/features.h"
#include "hvs/redis.h"

typedef struct tr_series {
    char *id;               /* apartment id, or "-" */
    hvs_feat_hour_t *hours; /* ring of `ring` slots */
    uint64_t *dirty;
    size_t ring;    /* the history's ring (the building), or its apt_ring (an apartment) */
    int64_t *stale; /* days that lost an hour to a newer one since the last save */
    size_t nstale, capstale;
    bool legacy; /* loaded from text fields of one slot each: the next save replaces the key */
} tr_series_t;

typedef struct tr_building {
    char *id;
    hvs_feat_wx_hour_t *wx; /* ring */
    uint64_t *wx_dirty;
    int64_t *wx_stale; /* days that lost an hour of weather to a newer one since the last save */
    size_t nwx_stale, capwx_stale;
    bool wx_legacy;  /* weather loaded from text fields of one slot each: the key is replaced */
    tr_series_t **s; /* sorted by id; "-" first */
    size_t ns, caps;
    bool meta_dirty;
    hvs_ms_t first, last; /* hours seen (HVS_MS_NONE: none) */
} tr_building_t;

typedef struct tr_history {
    size_t ring;     /* slots (hours) per ring: the building series and the weather */
    size_t apt_ring; /* slots per apartment series (<= ring; = ring unless set) */
    size_t max_apartments, napartments;
    uint64_t sampled_out;
    tr_building_t **b; /* sorted by id */
    size_t nb, capb;
} tr_history_t;

tr_history_t *tr_history_new(size_t hours, size_t max_apartments);
/* Apartment series keep only their newest `hours` (clamped to [24, ring]); call before any
 * series exists. The forecast tasks learn from the building series over the whole window; the
 * anomaly tasks from apartments, where a shorter ring bounds the memory (HVS_TRAIN_APARTMENT_WINDOW). */
void tr_history_set_apartment_hours(tr_history_t *h, size_t hours);
void tr_history_destroy(tr_history_t *h);
tr_building_t *tr_history_building(tr_history_t *h, const char *id, bool create);
tr_series_t *tr_history_series(tr_history_t *h, tr_building_t *b, const char *id, bool create);

/* Store an hour of a series (older revisions ignored); 1 changed, 0 not, HVS_ENOMEM. A series
 * sampled out by the memory cap is not created (0). */
int tr_history_put_hour(tr_history_t *h, const char *building, const char *entity,
                        const hvs_feat_hour_t *hour);
int tr_history_put_weather(tr_history_t *h, const char *building, hvs_ms_t hour,
                           const hvs_feat_wx_t *rec);

/* The features.h view of a series. */
void tr_history_view(const tr_history_t *h, const tr_building_t *b, const tr_series_t *s,
                     hvs_ms_t commissioning, hvs_feat_history_t *out);

/* Queue every change into batch (clears the marks). */
int tr_history_save(tr_history_t *h, hvs_redis_batch_t *batch, hvs_err_t *err);
/* Load everything stored (at start). */
int tr_history_load(tr_history_t *h, hvs_redis_t *r, hvs_redis_batch_t *batch, hvs_err_t *err);

#endif
