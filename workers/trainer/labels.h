/*
 * labels.h - what is known to be a fault: apartment-days labelled true or false positive, the
 * ground truth the anomaly tasks are scored against (precision@k / recall@k) and the training
 * targets of anomaly-classifier.
 *
 * Sources: `alerts.feedback` (a technician's verdict on an apartment's alert: the alert id names
 * the apartment and the UTC day, "<apartment>#<YYYY-MM-DD>#<TYPE>"), or a simulator's fault
 * episodes (tests, calibration). Feedback labels are partial: a day nobody looked at is
 * unknown. A complete set (the simulator's) says every apartment-day it does not list positive
 * is negative.
 * One verdict per (building, alert id): the latest labelled_at wins, an UNSURE one retracts the
 * label (TR_LABEL_NONE). An apartment-day is positive when any of its alerts was a true
 * positive, negative when all of its labelled ones were false positives.
 *
 * Redis (kept so a restart does not depend on the topic's retention):
 *   hvs:tr:labels   HASH "<building>|<alert id>" -> "<apartment>|<day ms>|<1|0|-1>|<labelled_at ms>"
 * Labels of days before the training window are dropped (tr_labels_save's `before`).
 *
 * Ownership: the set owns its strings (tr_labels_fini). Thread-safety: none (the consume loop
 * owns it; training reads it on the same thread). Errors: HVS_ENOMEM; HVS_EINVAL for ids that
 * are empty, too long (TR_LABEL_ID_MAX) or hold '|', or no day; stored values that do not parse
 * are skipped and counted by tr_labels_load; HVS_EREDIS.
 */
#ifndef TR_LABELS_H
#define TR_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "hvs/redis.h"
#include "hvs/time.h"

#define TR_LABEL_ID_MAX 199 /* longest building, apartment or alert id kept */

typedef enum tr_verdict {
    TR_LABEL_NONE = -1,
    TR_LABEL_NEGATIVE = 0,
    TR_LABEL_POSITIVE = 1
} tr_verdict_t;

typedef struct tr_label {
    char *key; /* "<building>|<alert id>" */
    char *building, *apartment;
    hvs_ms_t day, labelled_at;
    int8_t verdict; /* tr_verdict_t */
    bool dirty;     /* not yet in Redis */
} tr_label_t;

typedef struct tr_labels {
    tr_label_t *v; /* sorted by key */
    size_t n, cap;
    char **gone; /* keys dropped since the last save (HDEL) */
    size_t ngone, capgone;
    bool complete; /* every unlisted apartment-day is negative */
    /* apartment-day index (building, apartment, day), rebuilt when stale */
    size_t *by_day;
    size_t nday;
    bool stale;
} tr_labels_t;

void tr_labels_init(tr_labels_t *l);
void tr_labels_fini(tr_labels_t *l);

/* Add or update the verdict on an alert; 1 changed, 0 not (older than, or the same as, the one
 * held), <0 error. */
int tr_labels_put(tr_labels_t *l, const char *alert_id, const char *building, const char *apartment,
                  hvs_ms_t day, tr_verdict_t verdict, hvs_ms_t labelled_at);
/* The UTC day (ms) of an alert id "<entity>#<YYYY-MM-DD>#<TYPE>"; HVS_MS_NONE if it does not parse. */
hvs_ms_t tr_labels_alert_day(const char *alert_id);

/* 1 positive, 0 negative, -1 unknown for the apartment's day (day = UTC day start). */
int tr_labels_get(tr_labels_t *l, const char *building, const char *apartment, hvs_ms_t day);
/* Labelled apartment-days (positive, negative) with day in [from, to); complete sets count
 * only the positives they list (negatives are every other day). */
void tr_labels_count(tr_labels_t *l, hvs_ms_t from, hvs_ms_t to, size_t *pos, size_t *neg);

/* Drop labels of days before `before` (HVS_MS_NONE: keep all), then queue every change. */
int tr_labels_save(tr_labels_t *l, hvs_redis_batch_t *batch, hvs_ms_t before, hvs_err_t *err);
/* Load what is stored; *skipped = stored values that do not parse (left out, logged by the caller). */
int tr_labels_load(tr_labels_t *l, hvs_redis_t *r, size_t *skipped, hvs_err_t *err);

#endif
