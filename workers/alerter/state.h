/*
 * state.h - what the alerter knows, by partition and building, and its Redis state
 * (docs/design.md sections 5 and 9):
 *
 *   hvs:al:part:<P>      HASH "done" -> last hour judged, "swm" -> latest score hour seen,
 *                        "awm" -> latest apartment aggregate hour seen; "b:<building>" -> 1
 *   hvs:{B}:al:apts      HASH apartment -> its text (al_apartment_format: pending hours, water
 *                        use, the episode, a feedback suppression window, the best hours' reasons)
 *   hvs:{B}:al:alerts    HASH alert id -> alert book entry (alertbook.h)
 *   hvs:{B}:al:listed    STRING the UTC day of the building's team's latest daily list
 *   hvs:al:buildings     SET of buildings with an alert book (hvsctl alerts)
 *
 * Every write is of a whole value that is a function of the state (idempotent): a batch replayed
 * onto the saved state rewrites the same values. Only what changed since the last save is written;
 * entries dropped by retention are deleted.
 *
 * Ownership: al_state_t owns everything below it; building / apartment / entry pointers stay
 * valid until their partition is dropped, the state destroyed, or (entries) al_building_entry
 * adds one to the same building. Thread-safety: none (the stage's thread).
 * Errors: HVS_ENOMEM; HVS_EINVAL (a building id refused by hvs_redis_key); the Redis client's.
 */
#ifndef AL_STATE_H
#define AL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/alertbook.h"
#include "hvs/err.h"
#include "hvs/redis.h"
#include "hvs/time.h"
#include "hvs/topics.h"

#define AL_RING 72   /* hours of scores waiting to be judged, and of water use */
#define AL_REASONS 4 /* the best waiting hours whose reasons are kept */
#define AL_DAY_MAX 8 /* days of an entry's daily highest score (ranking by day) */
#define AL_TEXT_MAX 400

typedef struct al_hour {
    hvs_ms_t hour; /* 0: empty slot */
    int64_t revision;
    float score, rule_score, z, prob; /* NaN: not in the score */
    uint32_t rules;                   /* hvs_alertbook_rule bits */
} al_hour_t;

typedef struct al_reason {
    hvs_ms_t hour; /* 0: empty */
    float score;
    char model[HVS_ALERTBOOK_NAME_MAX];
    char text[AL_TEXT_MAX];
} al_reason_t;

typedef struct al_apartment {
    char *id;
    al_hour_t hours[AL_RING]; /* by hour / 1 h % AL_RING */
    hvs_ms_t water_hour[AL_RING];
    int8_t water_use[AL_RING]; /* 1 used, 0 none (with water_hour[i] its hour) */
    al_reason_t reasons[AL_REASONS];
    /* the episode (hysteresis) */
    bool open;
    hvs_alert_type_t open_type;
    hvs_ms_t open_first; /* its first hour: with the type, the alert id */
    int below;           /* consecutive judged hours below the close threshold */
    /* a technician's benign FALSE_POSITIVE: new alerts of that type are suppressed until */
    hvs_ms_t sup_from, sup_until;
    hvs_alert_type_t sup_type;
    char sup_cause[HVS_ALERTBOOK_NAME_MAX];
    bool dirty;
} al_apartment_t;

typedef struct al_day_max {
    hvs_ms_t day;
    float max;
} al_day_max_t;

/* An alert book entry with what ranking needs (its highest score by day). */
typedef struct al_entry {
    hvs_alertbook_entry_t e;
    al_day_max_t days[AL_DAY_MAX];
    float before;         /* the highest score of days that left `days` (NaN none) */
    hvs_ms_t raised_hour; /* event hour it was raised (CRITICAL at once), 0 not */
    bool dirty, publish, gone;
} al_entry_t;

typedef struct al_building {
    char *id;
    int32_t partition;
    al_apartment_t **apts; /* sorted by id */
    size_t napts, capa;
    al_entry_t **entries; /* sorted by alert id */
    size_t nentries, cape;
    hvs_ms_t listed;          /* UTC day of its team's latest list, 0 none */
    bool listed_dirty, known; /* known: in hvs:al:part:<P> and hvs:al:buildings */
} al_building_t;

typedef struct al_partition {
    bool present;
    hvs_ms_t done, swm, awm; /* 0: none */
    bool dirty;
} al_partition_t;

typedef struct al_state {
    al_building_t **b; /* sorted by id */
    size_t n, cap;
    al_partition_t part[HVS_MAX_PARTITIONS];
    char *text; /* scratch for saving */
} al_state_t;

al_state_t *al_state_new(void);
void al_state_destroy(al_state_t *s);

al_building_t *al_state_building(al_state_t *s, const char *id, int32_t partition, bool create);
al_apartment_t *al_building_apartment(al_building_t *b, const char *id, bool create);
/* The entry of an alert id (created zeroed, id set, when `create`); NULL absent / no memory. */
al_entry_t *al_building_entry(al_building_t *b, const char *id, bool create);

/* The ring slot of an hour. */
static inline size_t al_slot(hvs_ms_t hour) { return (size_t)((hour / HVS_MS_HOUR) % AL_RING); }

/* The entry's highest score over the days up to and including `day` (NaN: none). */
double al_entry_score_until(const al_entry_t *x, hvs_ms_t day);
/* Record an hour's score in the entry's day ring. */
void al_entry_note_hour(al_entry_t *x, hvs_ms_t hour, double score);

void al_state_drop_partition(al_state_t *s, int32_t p);
int al_state_load_partition(al_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *scratch, int32_t p,
                            size_t *nbuildings, hvs_err_t *err);
/* Queue every change on `batch`; drops entries marked gone from memory. */
int al_state_save(al_state_t *s, hvs_redis_batch_t *batch, hvs_err_t *err);

/* The apartment as text and back (exposed for tests). */
int al_apartment_format(const al_apartment_t *a, char *buf, size_t len);
int al_apartment_parse(al_apartment_t *a, const char *s, size_t n);

#endif
