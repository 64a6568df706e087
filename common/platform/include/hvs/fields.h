/*
 * fields.h - validated reads of a decoded Avro record's fields, for workers that turn hostile
 * records into plain values (docs/design.md section 11). Every refusal names the field and
 * carries its dead-letter reason:
 *
 *   bad_schema           the field is absent or of another type (a record not of the schema)
 *   bad_id, id_too_long  an id that fails the one id rule (ids.h)
 *   non_finite           NaN or an infinity where a number is required
 *   value_out_of_range   a number outside the bounds the caller states
 *   timestamp_too_old    before 2000; timestamp_in_future: later than now + max_future
 *
 * Fields are addressed by their index in the reader's schema (avro_schema_record_field_get_index,
 * resolved once). Nullable fields are ["null", T] unions.
 *
 * Ownership: strings are copied into the caller's buffer. Thread-safety: pure functions.
 * Errors: 0, or HVS_ESERDE (bad_schema) / HVS_EINVAL (the others) with err filled.
 */
#ifndef HVS_FIELDS_H
#define HVS_FIELDS_H

#include <avro.h>
#include <stdbool.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/time.h"

#define HVS_R_BAD_SCHEMA "bad_schema"
#define HVS_R_NON_FINITE "non_finite"
#define HVS_R_OUT_OF_RANGE "value_out_of_range"
#define HVS_R_TOO_OLD "timestamp_too_old"
#define HVS_R_IN_FUTURE "timestamp_in_future"

/* The field at idx, through a ["null", T] union: 1 present (out set), 0 null, -1 not there. */
int hvs_fields_get(avro_value_t *rec, int idx, avro_value_t *out);

/* An id (string or null) into dst (HVS_ID_MAX + 1 bytes); null and "" give "". */
int hvs_fields_id(avro_value_t *rec, int idx, char *dst, const char *name, hvs_err_t *err);

/* A required int or long. */
int hvs_fields_long(avro_value_t *rec, int idx, int64_t *v, const char *name, hvs_err_t *err);

/* A nullable double within [lo, hi]: NaN when null. */
int hvs_fields_double_opt(avro_value_t *rec, int idx, double lo, double hi, double *v,
                          const char *name, hvs_err_t *err);
/* Its check on a value already read (a direct reader's, wire.h): *v = x, or NaN when !has. */
int hvs_fields_check_double(bool has, double x, double lo, double hi, double *v, const char *name,
                            hvs_err_t *err);

/* An event time: not before 2000, not after now + max_future. */
int hvs_fields_time(hvs_ms_t t, hvs_ms_t now, hvs_ms_t max_future, const char *name,
                    hvs_err_t *err);

#endif
