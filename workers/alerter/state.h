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
 *   hvs:{B}:al:held      HASH feedback offset -> the record's bytes (hex), held feedback
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

#define AL_DAY_MAX 8 /* days of an entry's daily highest score (ranking by day) */
#define AL_TEXT_MAX 400

typedef struct al_hour {
    hvs_ms_t hour; /* 0: empty slot */
    int64_t revision;
    float score, rule_score, z, prob; /* NaN: not in the score */
    uint32_t rules;                   /* hvs_alertbook_rule bits */
    char *reason; /* "<model>|<reasons>" of an hour that may be an episode's best (scoring at
                   * least the open threshold); malloc'd, NULL otherwise */
} al_hour_t;

/* An apartment's hours waiting to be judged and its hot water use are kept in open-addressed
 * tables indexed by hour (a power-of-two size, doubled when two hours it must keep meet), not
 * in fixed rings: one input may run days ahead of another (a consumer fetches topics unevenly),
 * and judging an hour needs everything up to it, whatever arrived first. Water hours older
 * than water_from (the vacancy window of the oldest hour still to judge) are no longer needed. */
typedef struct al_apartment {
    char *id;
    al_hour_t *hours; /* hcap slots */
    size_t hcap;
    hvs_ms_t *water_hour; /* wcap slots, 0 empty */
    int8_t *water_use;    /* 1 used, 0 none */
    size_t wcap;
    hvs_ms_t water_from;
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

/* The waiting hour `hour` of a, or NULL. */
al_hour_t *al_apartment_hour(const al_apartment_t *a, hvs_ms_t hour);
/* Keep h (its reason copied, may be NULL) unless the hour holds a higher revision already:
 * 1 kept, 0 not (an older emission), HVS_ENOMEM. */
int al_apartment_put_hour(al_apartment_t *a, const al_hour_t *h, const char *reason);
/* The hour was judged: free its slot. */
void al_apartment_take_hour(al_apartment_t *a, hvs_ms_t hour);
/* Water use of an hour: 1 used, 0 none, -1 unknown. */
int al_apartment_water(const al_apartment_t *a, hvs_ms_t hour);
/* Record water use (hours before water_from are not needed and dropped): 0 or HVS_ENOMEM. */
int al_apartment_put_water(al_apartment_t *a, hvs_ms_t hour, int8_t use);
/* Free the tables (the apartment itself is its building's). */
void al_apartment_fini(al_apartment_t *a);

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
    bool publish_new; /* changed by a new (not replayed) record in this batch */
} al_entry_t;

/* A technician's feedback on an alert that may still be raised (a candidate, or one whose hours
 * are not judged yet): held, as its Kafka record, until it can be applied or refused, so the
 * outcome does not depend on whether the feedback or the scores were consumed first. */
typedef struct al_held {
    int64_t offset; /* in the feedback topic's partition of the building */
    void *value;    /* the record's bytes (owned) */
    size_t len;
    bool dirty, gone;
} al_held_t;

typedef struct al_building {
    char *id;
    int32_t partition;
    al_apartment_t **apts; /* sorted by id */
    size_t napts, capa;
    al_entry_t **entries; /* sorted by alert id */
    size_t nentries, cape;
    al_held_t *held; /* by offset */
    size_t nheld, capheld;
    hvs_ms_t listed;          /* UTC day of its team's latest list, 0 none */
    bool listed_dirty, known; /* known: in hvs:al:part:<P> and hvs:al:buildings */
} al_building_t;

typedef struct al_partition {
    bool present;
    hvs_ms_t done, swm, awm;         /* 0: none */
    hvs_ms_t swm_replay, awm_replay; /* the same of replayed inputs only (memory) */
    /* While lists are made for replayed inputs only (memory): how far they may count it judged
     * - what the run before the loss had judged, from the replay watermarks; 0: no cap. */
    hvs_ms_t list_cap;
    bool dirty;
} al_partition_t;

typedef struct al_state {
    al_building_t **b; /* sorted by id */
    size_t n, cap;
    al_partition_t part[HVS_MAX_PARTITIONS];
    char *text; /* scratch for saving (textcap bytes, grown as needed) */
    size_t textcap;
} al_state_t;

al_state_t *al_state_new(void);
void al_state_destroy(al_state_t *s);

al_building_t *al_state_building(al_state_t *s, const char *id, int32_t partition, bool create);
al_apartment_t *al_building_apartment(al_building_t *b, const char *id, bool create);
/* The entry of an alert id (created zeroed, id set, when `create`); NULL absent / no memory. */
al_entry_t *al_building_entry(al_building_t *b, const char *id, bool create);

/* Hold a feedback record's bytes (copied): 0 or HVS_ENOMEM. */
int al_building_hold(al_building_t *b, int64_t offset, const void *value, size_t len);
/* Held feedback leaves (marked gone; dropped from memory and Redis at the next save). */
void al_building_release(al_building_t *b, size_t i);

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
