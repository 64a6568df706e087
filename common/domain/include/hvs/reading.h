/*
 * reading.h - the Reading record: one apartment's sensor readings at one instant (seed 001/004
 * "Raw Meter Data"). Parses the seeds' JSON lines, validates (the same checks whether a record
 * came as JSON or as Avro from Kafka), and converts to and from the Avro value of
 * schemas/Reading.avsc.
 *
 * JSON line (the tablets' format):
 *   {"timestamp_str": "2024-10-27T10:30:00Z", "building_id": "bldg_A123", "apartment_id":
 *    "apt_404", "readings": [{"sensor_type": "heating_energy_kwh", "value": 15432.7},
 *    {"sensor_type": "room_temp_c", "room_name": "living_room", "value": 21.5}]}
 * "timestamp" (integral epoch ms, or an ISO string) is accepted instead of "timestamp_str";
 * optional "device_id"; "room_name" may be absent or null (apartment-level meter, or a room
 * sensor's apartment average). Unknown extra fields are ignored; duplicate keys are a syntax
 * error. Lines longer than HVS_READING_LINE_MAX are refused before parsing.
 *
 * Known sensors: those of the deployment's profile (profile.h, HVS_PROFILE); the heat profile's
 * (the default; hvs_reading_sensors(); plausible range a working device can report):
 *   heating_energy_kwh   kWh      [0, 1e9]    cumulative counter, apartment level
 *   hot_water_litres     litres   [0, 1e10]   cumulative counter, apartment level
 *   room_temp_c          degC     [-30, 60]   per room
 *   setpoint_temp_c      degC     [5, 35]     per room
 *   valve_position_pct   percent  [0, 100]    per room (radiator valve)
 *   humidity_pct         percent  [0, 100]    per room
 *
 * Validation: building, apartment, device ids and room names follow the one id rule (ids.h:
 * 1..256 bytes of printable UTF-8 without braces); event time from 2000-01-01 to
 * now + max_future; 1..HVS_READING_MAX_SENSORS readings; every sensor type in the table, every
 * value finite and inside the sensor's plausible range (so cumulative counters are never
 * negative). The first failing check decides the reason.
 *
 * Ownership: hvs_reading_t is a fixed-size value (no allocation; copy freely; ~17 KiB, so keep
 * long-lived ones static or on the heap, not in deep recursion). The codec holds field indices
 * of the Reading schema, resolved once; it borrows the serde's schema (the serde must outlive
 * it) and is freed with hvs_reading_codec_destroy (NULL-safe).
 * Thread-safety: functions touch only their arguments; a codec is read-only after creation and
 * may be shared by threads (each with its own avro values).
 * Errors: 0, or HVS_EINVAL/HVS_ESERDE/HVS_ENOMEM with err->reason one of HVS_READING_R_* below
 * (the dead-letter reason) and err->msg naming the field, e.g. "readings[2].value".
 */
#ifndef HVS_READING_H
#define HVS_READING_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>

#include "hvs/err.h"
#include "hvs/ids.h"
#include "hvs/serde.h"
#include "hvs/time.h"

#define HVS_READING_ID_MAX HVS_ID_MAX /* bytes of an id or name: the one limit (ids.h) */
#define HVS_READING_MAX_SENSORS 32    /* readings in one record */
#define HVS_READING_LINE_MAX 65536    /* bytes of one JSON line; 32 readings fit with room */

/* Reasons (a dead letter's error_code). Each is distinct; the first three are serde's JSON
 * reasons, shared so every JSON input in the platform reports the same words. */
#define HVS_READING_R_JSON_SYNTAX HVS_SERDE_R_JSON_SYNTAX   /* "json_syntax": not JSON */
#define HVS_READING_R_JSON_MISSING HVS_SERDE_R_JSON_MISSING /* "json_missing_field": field named */
#define HVS_READING_R_JSON_TYPE HVS_SERDE_R_JSON_TYPE       /* "json_wrong_type": field named */
#define HVS_READING_R_LINE_TOO_LONG "line_too_long"         /* over HVS_READING_LINE_MAX bytes */
#define HVS_READING_R_NON_FINITE "non_finite"               /* NaN/Infinity/1e999 value */
#define HVS_READING_R_ID_TOO_LONG HVS_ID_R_TOO_LONG         /* "id_too_long": over 256 bytes */
#define HVS_READING_R_BAD_ID HVS_ID_R_BAD /* "bad_id": empty, bad UTF-8, controls, braces */
#define HVS_READING_R_BAD_TIMESTAMP "bad_timestamp"     /* unparseable / no zone / not ms */
#define HVS_READING_R_TOO_OLD "timestamp_too_old"       /* before 2000-01-01 */
#define HVS_READING_R_IN_FUTURE "timestamp_in_future"   /* later than now + max_future */
#define HVS_READING_R_UNKNOWN_SENSOR "unknown_sensor"   /* sensor type not in the table */
#define HVS_READING_R_OUT_OF_RANGE "value_out_of_range" /* implausible for the sensor */
#define HVS_READING_R_EMPTY "empty_readings"            /* no readings */
#define HVS_READING_R_TOO_MANY "too_many_readings"      /* more than 32 */
#define HVS_READING_R_BAD_SCHEMA                                                                   \
    "bad_schema" /* codec: schema lacks a field; or an
                                                              Avro value of another schema */

typedef struct hvs_sensor_value {
    char sensor_type[HVS_READING_ID_MAX + 1];
    char room_name[HVS_READING_ID_MAX + 1]; /* "" = none */
    double value;
} hvs_sensor_value_t;

typedef struct hvs_reading {
    char building_id[HVS_READING_ID_MAX + 1];
    char apartment_id[HVS_READING_ID_MAX + 1];
    char device_id[HVS_READING_ID_MAX + 1]; /* "" = unknown */
    hvs_ms_t timestamp;                     /* event time, UTC epoch ms */
    size_t n;                               /* readings used in v */
    hvs_sensor_value_t v[HVS_READING_MAX_SENSORS];
} hvs_reading_t;

/* A known sensor: unit and the range a real device can report. */
typedef struct hvs_sensor_info {
    const char *type;
    const char *unit;
    double min, max;
    bool cumulative; /* a counter: consumption comes from differences */
    bool per_room;   /* usually carries room_name */
} hvs_sensor_info_t;

/* The table entry for a sensor type in the active profile (profile.h), or NULL if unknown.
 * The entry lives as long as the process. */
const hvs_sensor_info_t *hvs_reading_sensor(const char *type);
/* The active profile's whole table (*n entries, kept for the process), e.g. for help texts. */
const hvs_sensor_info_t *hvs_reading_sensors(size_t *n);

/*
 * Parse one JSON line (len bytes, need not be NUL-terminated) into *r: structure and types
 * only, no semantic checks. JSON has no NaN/Infinity, so lines carrying them (NaN, -Infinity,
 * nan, inf, 1e999) fail with HVS_READING_R_NON_FINITE, not as syntax. On failure *r holds
 * what was parsed before the failing field (building_id is "" if it was not reached).
 */
int hvs_reading_parse_json(const char *line, size_t len, hvs_reading_t *r, hvs_err_t *err);

/* Semantic checks of a parsed or decoded record at wall time `now`; timestamps later than
 * now + max_future_ms fail (the sum saturates). Nothing is changed. */
int hvs_reading_validate(const hvs_reading_t *r, hvs_ms_t now, hvs_ms_t max_future_ms,
                         hvs_err_t *err);

typedef struct hvs_reading_codec hvs_reading_codec_t;

/* Field indices of the current Reading schema of `s` (borrowed, must outlive the codec).
 * On failure *out is untouched. Free with hvs_reading_codec_destroy. */
int hvs_reading_codec_new(hvs_serde_t *s, hvs_reading_codec_t **out, hvs_err_t *err);
void hvs_reading_codec_destroy(hvs_reading_codec_t *c);

/*
 * Fill a Reading value of the current schema (e.g. hvs_encoder_value) from *r; `source` (may
 * be NULL) and `ingested_at` (HVS_MS_NONE = null) fill the optional lineage fields. No
 * allocation beyond avro-c's reuse of the value's buffers. On failure v is half-filled; the
 * next call resets it.
 */
int hvs_reading_to_avro(const hvs_reading_codec_t *c, const hvs_reading_t *r, const char *source,
                        hvs_ms_t ingested_at, avro_value_t *v, hvs_err_t *err);
/*
 * Read a decoded Reading value (of the current schema: a decoder made with HVS_SCHEMA_READING
 * resolves older writers to it) into *r. Strings that do not fit fail with id_too_long, strings
 * with NUL bytes with bad_id, more than 32 readings with too_many_readings; call
 * hvs_reading_validate for the rest.
 */
int hvs_reading_from_avro(const hvs_reading_codec_t *c, avro_value_t *v, hvs_reading_t *r,
                          hvs_err_t *err);
/*
 * Decode one Reading message (wire header and Avro body) into *r: what hvs_decoder_decode on `d`
 * (made with HVS_SCHEMA_READING) followed by hvs_reading_from_avro gives, with the same results
 * and errors. A message written with the current schema is read straight from its bytes
 * (wire.h), without avro-c's generic values; anything else - an older writer, or bytes the
 * direct reader does not take as they are (a malformed body, an id too long, ...) - goes that
 * generic way, which decides and reports. `direct` (may be NULL) says which way it went.
 */
int hvs_reading_decode(const hvs_reading_codec_t *c, hvs_decoder_t *d, const void *buf, size_t len,
                       hvs_reading_t *r, bool *direct, hvs_err_t *err);
/* Does the codec read the current schema directly? (false only if Reading.avsc changed without
 * the direct reader: reading.c's layout string says what it was written for) */
bool hvs_reading_codec_direct(const hvs_reading_codec_t *c);

#endif
