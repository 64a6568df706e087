/*
 * alert.h - Alert records (schemas/Alert.avsc, docs/design.md section 9) onto the `alerts` topic:
 * what every worker that raises one (data quality, drift, anomalies, rules) shares, so alert
 * ids and encodings agree everywhere.
 *
 * Alert id: "<entity>#<YYYY-MM-DD>#<TYPE>", entity = the apartment, or the building for a
 * building-level alert, date = the UTC date of first_seen: one alert per entity, day and type;
 * later evidence re-publishes the same id (downstream keeps the latest by updated_at).
 *
 * Ownership: the alerter borrows the serde and producer (both must outlive it); every string in
 * hvs_alert_t is borrowed for the call only. Thread-safety: an alerter is used by one thread.
 * Errors: 0 or HVS_ESERDE (encoding) / HVS_EKAFKA / HVS_ETIMEOUT (queueing), err naming the
 * alert. Sending is asynchronous: acknowledged by the producer's next flush.
 */
#ifndef HVS_ALERT_H
#define HVS_ALERT_H

#include <stddef.h>

#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/time.h"

/* Symbols of the AlertType enum, in schema order. */
typedef enum hvs_alert_type {
    HVS_ALERT_ANOMALY = 0,
    HVS_ALERT_RULE_STUCK_VALVE,
    HVS_ALERT_RULE_NO_RESPONSE,
    HVS_ALERT_RULE_SENSOR_MISMATCH,
    HVS_ALERT_DATA_QUALITY,
    HVS_ALERT_MODEL_DRIFT,
    HVS_ALERT_FORECAST_LOW_CONFIDENCE,
    HVS_ALERT_OTHER
} hvs_alert_type_t;

typedef enum hvs_alert_severity {
    HVS_SEVERITY_INFO = 0,
    HVS_SEVERITY_WARNING,
    HVS_SEVERITY_CRITICAL
} hvs_alert_severity_t;

/* Symbols of the AlertStatus enum, in schema order; zero (a new alert) is UNSEEN. */
typedef enum hvs_alert_status {
    HVS_ALERT_UNSEEN = 0,
    HVS_ALERT_INVESTIGATING,
    HVS_ALERT_RESOLVED_TRUE_POSITIVE,
    HVS_ALERT_RESOLVED_FALSE_POSITIVE
} hvs_alert_status_t;

typedef struct hvs_alert {
    const char *building_id;
    const char *apartment_id; /* NULL: building- or system-level */
    hvs_alert_type_t type;
    hvs_alert_severity_t severity;
    double score;                /* higher = more worth a visit */
    const char *summary;         /* one line */
    const char *const *evidence; /* name, value, name, value, ..., NULL (may be NULL) */
    const char *model;           /* "name:version" or NULL */
    hvs_ms_t first_seen, updated_at;
    const char *team;          /* NULL: none */
    hvs_alert_status_t status; /* 0: UNSEEN */
    int rank;                  /* within the team's daily top-k, 1 = first; 0: null */
} hvs_alert_t;

const char *hvs_alert_type_name(hvs_alert_type_t t);         /* "DATA_QUALITY", ... */
const char *hvs_alert_status_name(hvs_alert_status_t s);     /* "UNSEEN", ... */
const char *hvs_alert_severity_name(hvs_alert_severity_t s); /* "WARNING", ... */

/* The alert id of a; returns its length, or -1 if it does not fit in len. */
int hvs_alert_id(const hvs_alert_t *a, char *buf, size_t len);

typedef struct hvs_alerter hvs_alerter_t;

int hvs_alerter_new(hvs_serde_t *s, hvs_producer_t *p, hvs_alerter_t **out, hvs_err_t *err);
void hvs_alerter_destroy(hvs_alerter_t *a);
/* Encode and queue one alert to the alerts topic (HVS_TOPIC_ALERTS), keyed by building. */
int hvs_alerter_send(hvs_alerter_t *al, const hvs_alert_t *a, hvs_err_t *err);
uint64_t hvs_alerter_sent(const hvs_alerter_t *al);

#endif
