/*
 * input.h - the feature worker's two inputs as plain values, validated: an hourly Aggregate
 * (aggregates.hourly) and a Weather record (weather.hourly), read from decoded Avro values of
 * the current schemas (serde resolves older writers). Both are hostile input (docs/design.md
 * section 11): every check that fails names its dead-letter reason.
 *
 * Reasons: bad_id / id_too_long (building and apartment ids by the one id rule of ids.h: empty,
 * over 256 bytes, invalid UTF-8, control characters, '{' '}' that would break the hash tag),
 * bad_window (not an hourly window, not on the hour), non_finite (NaN/Inf in a value),
 * value_out_of_range (a negative consumption, an absurd temperature...), timestamp_too_old /
 * timestamp_in_future (before 2000, later than now + max_future), bad_schema (a value not of
 * the current schema); the engine adds too_late (an hour older than its ring can serve).
 *
 * Ownership: values are fixed-size (ids copied in). Thread-safety: pure. Errors: 0 or
 * HVS_EINVAL / HVS_ESERDE with err->reason one of the above and err->msg naming the field.
 */
#ifndef FX_INPUT_H
#define FX_INPUT_H

#include <avro.h>
#include <stdbool.h>

#include "hvs/err.h"
#include "hvs/features.h"
#include "hvs/reading.h"
#include "hvs/serde.h"

#define FX_R_BAD_ID "bad_id"
#define FX_R_BAD_WINDOW "bad_window"
#define FX_R_NON_FINITE "non_finite"
#define FX_R_OUT_OF_RANGE "value_out_of_range"
#define FX_R_TOO_OLD "timestamp_too_old"
#define FX_R_IN_FUTURE "timestamp_in_future"
#define FX_R_BAD_SCHEMA "bad_schema"
#define FX_R_TOO_LATE "too_late"

typedef struct fx_aggregate {
    char building[HVS_READING_ID_MAX + 1];
    char entity[HVS_READING_ID_MAX + 1]; /* apartment, or HVS_FS_BUILDING */
    hvs_feat_hour_t hour;
} fx_aggregate_t;

typedef struct fx_weather {
    char building[HVS_READING_ID_MAX + 1];
    hvs_ms_t hour;
    hvs_feat_wx_t rec;
} fx_weather_t;

typedef struct fx_input fx_input_t; /* field indices of both schemas, resolved once */

int fx_input_new(hvs_serde_t *s, fx_input_t **out, hvs_err_t *err);
void fx_input_destroy(fx_input_t *in);

int fx_input_aggregate(const fx_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                       fx_aggregate_t *out, hvs_err_t *err);
/*
 * One aggregates.hourly message (wire header and body) through `d` (a decoder of
 * HVS_SCHEMA_AGGREGATE): what hvs_decoder_decode and fx_input_aggregate give, with the same
 * results and reasons. A message of the current schema is read straight from its bytes
 * (wire.h) and judged by the same checks; any other - an older writer, a malformed body, more
 * rooms than HVS_ROOMS_MAX - goes the avro-c way, which decides. `direct` (may be NULL) says
 * which way it went.
 */
int fx_input_aggregate_message(const fx_input_t *in, hvs_decoder_t *d, const void *buf, size_t len,
                               hvs_ms_t now, hvs_ms_t max_future, fx_aggregate_t *out, bool *direct,
                               hvs_err_t *err);
/* Is the direct reader on (the current Aggregate schema is the one it was written for)? */
bool fx_input_aggregate_direct(const fx_input_t *in);
int fx_input_weather(const fx_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                     fx_weather_t *out, hvs_err_t *err);

#endif
