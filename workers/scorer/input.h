/*
 * input.h - the scorer's two inputs as plain values, validated (docs/design.md section 11): an
 * apartment's hourly Aggregate with its rooms (aggregates.hourly) and an apartment's
 * FeatureVector (features.hourly), read from decoded Avro values of the current schemas.
 *
 * Dead-letter reasons: those of fields.h and rooms.h (bad_schema, bad_id, id_too_long,
 * non_finite, value_out_of_range, timestamp_too_old, timestamp_in_future), bad_window (not an hour on the
 * hour), feature_mismatch (a vector of another feature set: the models and rows of this build
 * would misread it), bad_vector (values not one per feature).
 * Not errors: building-level records (no apartment) are returned with apartment "" for the
 * caller to skip and count; NaN feature values are missing values, as everywhere.
 *
 * Ownership: values are fixed-size (ids copied in); sc_vector_t.x is the caller's buffer.
 * Thread-safety: one thread per sc_input_t. Errors: 0 or HVS_EINVAL / HVS_ESERDE with
 * err->reason one of the above and err->msg naming the field.
 */
#ifndef SC_INPUT_H
#define SC_INPUT_H

#include <avro.h>

#include "apartment.h"
#include "hvs/err.h"
#include "hvs/features.h"
#include "hvs/ids.h"
#include "hvs/rooms.h"
#include "hvs/serde.h"

#define SC_R_BAD_WINDOW "bad_window"
#define SC_R_FEATURE_MISMATCH "feature_mismatch"
#define SC_R_BAD_VECTOR "bad_vector"


typedef struct sc_aggregate {
    char building[HVS_ID_MAX + 1], apartment[HVS_ID_MAX + 1]; /* apartment "": building level */
    hvs_ms_t hour;
    int32_t revision;
    double heat_kwh; /* NaN unknown */
    int nrooms;
    hvs_room_t rooms[HVS_ROOMS_MAX]; /* rooms.h */
} sc_aggregate_t;

typedef struct sc_vector {
    char building[HVS_ID_MAX + 1], apartment[HVS_ID_MAX + 1];
    hvs_ms_t hour, as_of;
    int32_t revision;
    double target; /* the hour's observed heating, kWh; NaN unknown */
    double x[HVS_FEATURES_COUNT];
} sc_vector_t;

typedef struct sc_input sc_input_t;

int sc_input_new(hvs_serde_t *s, sc_input_t **out, hvs_err_t *err);
void sc_input_destroy(sc_input_t *in);

int sc_input_aggregate(sc_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                       sc_aggregate_t *out, hvs_err_t *err);
int sc_input_vector(sc_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                    sc_vector_t *out, hvs_err_t *err);
/* The same from a message's bytes: a FeatureVector of the current schema is read directly from
 * its Avro binary (no allocation; the names are skipped), anything else through `dec` (any
 * writer version, and the decoder's dead-letter reasons for bytes that do not decode). The two
 * paths refuse the same records for the same reasons (one check of the fields read). */
int sc_input_vector_bytes(sc_input_t *in, hvs_decoder_t *dec, const void *buf, size_t len,
                          hvs_ms_t now, hvs_ms_t max_future, sc_vector_t *out, hvs_err_t *err);
/* Vectors read by the direct reader so far. */
uint64_t sc_input_direct(const sc_input_t *in);

#endif
