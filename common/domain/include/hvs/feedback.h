/*
 * feedback.h - Feedback records (schemas/Feedback.avsc, docs/design.md section 9): a
 * technician's verdict on one alert, on the `alerts.feedback` topic (HVS_TOPIC_ALERTS_FEEDBACK)
 * keyed by building id. The one encoder and the one decoder of the record, so whoever answers
 * alerts (hvs-technician, a maintenance app) and whoever learns from the answers (the trainer)
 * agree on it.
 *
 * A record is valid when alert_id, building_id and technician_id are non-empty and the label is
 * one of the three verdicts; apartment_id, root_cause and comment may be NULL (null in Avro).
 * Ids are not checked against the id rule here (ids.h): a consumer that keys state by them
 * checks them itself.
 *
 * Ownership: a writer borrows the serde (which must outlive it), owns one encoder and is freed
 * with hvs_feedback_writer_destroy (NULL-safe); the bytes hvs_feedback_encode hands out are the
 * writer's, valid until its next call. Every string of an hvs_feedback_t given to the writer is
 * borrowed for the call only. hvs_feedback_read copies nothing: the strings it fills point into
 * the decoded avro value and live as long as it does (for a decoder's value: until that
 * decoder's next decode).
 * Thread-safety: a writer is used by one thread; the label functions and hvs_feedback_read touch
 * only their arguments.
 * Errors: 0, or HVS_EINVAL with err->reason one of HVS_FEEDBACK_R_* (a record refused: it is
 * never written, and a read one is the consumer's bad input, e.g. its dead-letter reason),
 * HVS_ESERDE (encoding), HVS_EKAFKA / HVS_ETIMEOUT (queueing); err->msg names the alert. Sending
 * is asynchronous: acknowledged by the producer's next flush.
 */
#ifndef HVS_FEEDBACK_H
#define HVS_FEEDBACK_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/time.h"

/* Symbols of the FeedbackLabel enum, in schema order. */
typedef enum hvs_feedback_label {
    HVS_FEEDBACK_TRUE_POSITIVE = 0,
    HVS_FEEDBACK_FALSE_POSITIVE,
    HVS_FEEDBACK_UNSURE
} hvs_feedback_label_t;

/* Reasons of a refused record. */
#define HVS_FEEDBACK_R_NO_ALERT_ID "missing_alert_id"        /* alert_id absent or empty */
#define HVS_FEEDBACK_R_NO_BUILDING "missing_building_id"     /* building_id absent or empty */
#define HVS_FEEDBACK_R_NO_TECHNICIAN "missing_technician_id" /* technician_id absent or empty */
#define HVS_FEEDBACK_R_BAD_LABEL "bad_label"                 /* not one of the three verdicts */

typedef struct hvs_feedback {
    const char *alert_id;     /* the alert's id (alert.h) */
    const char *building_id;  /* the Kafka key */
    const char *apartment_id; /* NULL: a building's or a system's alert */
    const char *technician_id;
    hvs_feedback_label_t label;
    const char *root_cause; /* NULL: none ("stuck_valve", "vacation", "no_fault_found", ...) */
    const char *comment;    /* NULL: none */
    hvs_ms_t labelled_at;   /* event time of the verdict */
} hvs_feedback_t;

/* "TRUE_POSITIVE", "FALSE_POSITIVE", "UNSURE"; NULL for a value outside the enum. */
const char *hvs_feedback_label_name(hvs_feedback_label_t label);
/* The label named exactly by s (a symbol above): 0, or HVS_EINVAL (NULL or unknown s). */
int hvs_feedback_label_parse(const char *s, hvs_feedback_label_t *out);

typedef struct hvs_feedback_writer hvs_feedback_writer_t;

/* A writer encoding for the alerts.feedback topic (the registry subject, when there is one). */
int hvs_feedback_writer_new(hvs_serde_t *s, hvs_feedback_writer_t **out, hvs_err_t *err);
void hvs_feedback_writer_destroy(hvs_feedback_writer_t *w);

/* Validate and encode f with its wire header; *buf and *len are w's until its next call. */
int hvs_feedback_encode(hvs_feedback_writer_t *w, const hvs_feedback_t *f, const void **buf,
                        size_t *len, hvs_err_t *err);

/* Encode f and queue it to alerts.feedback, keyed by f->building_id. */
int hvs_feedback_send(hvs_feedback_writer_t *w, hvs_producer_t *p, const hvs_feedback_t *f,
                      hvs_err_t *err);

/* Records queued by hvs_feedback_send since the writer was made. */
uint64_t hvs_feedback_sent(const hvs_feedback_writer_t *w);

/*
 * Read a decoded Feedback value (a decoder of HVS_SCHEMA_FEEDBACK) into *out, strings pointing
 * into v. 0, or HVS_EINVAL with why's reason one of HVS_FEEDBACK_R_* (*out then partly filled).
 */
int hvs_feedback_read(avro_value_t *v, hvs_feedback_t *out, hvs_err_t *why);

#endif
