/*
 * input.h - the alerter's inputs as plain values, validated (docs/design.md section 11):
 * apartment-hour scores (scores.anomaly, AnomalyScore), apartments' hourly hot water
 * (aggregates.hourly, Aggregate: the evidence of vacancy) and technicians' feedback
 * (alerts.feedback, Feedback: feedback.h reads it).
 *
 * Dead-letter reasons: those of fields.h (bad_schema, bad_id, id_too_long, non_finite,
 * value_out_of_range, timestamp_too_old, timestamp_in_future) and bad_window (a score's hour not
 * on the hour). A score is in [0, 1]; rule_score and probability too; residual_z finite.
 * Not errors: building-level aggregates and 15-minute windows are returned with apartment ""
 * for the caller to skip.
 *
 * Ownership: values are fixed-size (ids and texts copied in; reasons cut to fit).
 * Thread-safety: one thread per al_input_t. Errors: 0 or HVS_EINVAL / HVS_ESERDE with err->reason
 * one of the above and err->msg naming the field.
 */
#ifndef AL_INPUT_H
#define AL_INPUT_H

#include <avro.h>

#include "hvs/err.h"
#include "hvs/ids.h"
#include "hvs/serde.h"
#include "state.h"

#define AL_R_BAD_WINDOW "bad_window"

typedef struct al_score {
    char building[HVS_ID_MAX + 1], apartment[HVS_ID_MAX + 1];
    al_hour_t h;
    char model[HVS_ALERTBOOK_NAME_MAX]; /* "<name>:<version>", "" for rules */
    char reasons[AL_TEXT_MAX];          /* "; "-joined, control bytes as spaces */
} al_score_t;

typedef struct al_water {
    char building[HVS_ID_MAX + 1], apartment[HVS_ID_MAX + 1]; /* apartment "": skip */
    hvs_ms_t hour;
    double litres; /* NaN: not metered */
} al_water_t;

typedef struct al_input al_input_t;

int al_input_new(hvs_serde_t *s, al_input_t **out, hvs_err_t *err);
void al_input_destroy(al_input_t *in);

int al_input_score(al_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                   al_score_t *out, hvs_err_t *err);
int al_input_water(al_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                   al_water_t *out, hvs_err_t *err);

#endif
