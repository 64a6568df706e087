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
 * "timestamp" (epoch ms, or an ISO string) is accepted instead of "timestamp_str"; optional
 * "device_id". Unknown extra fields are ignored.
 *
 * Validation (reasons below become dead-letter reasons): ids 1..256 bytes without control
 * characters; event time from 2000-01-01 to now + max_future; 1..HVS_READING_MAX_SENSORS
 * readings; every sensor type in the table of known sensors (hvs_reading_sensor), every value
 * finite and inside the sensor's plausible range (cumulative counters never negative).
 *
 * Ownership: hvs_reading_t is a fixed-size value (no allocation; copy freely). The codec holds
 * field indices of the Reading schema, resolved once; it borrows the schema's serde.
 * Thread-safety: functions touch only their arguments; a codec is read-only after creation.
 * Errors: 0, or HVS_EINVAL/HVS_ESERDE with err->reason one of HVS_READING_R_* or
 * HVS_SERDE_R_JSON_* and err->msg naming the field.
 */
#ifndef HVS_READING_H
#define HVS_READING_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>

#include "hvs/err.h"
#include "hvs/serde.h"
#include "hvs/time.h"

#define HVS_READING_ID_MAX 256        /* bytes of an id or name */
#define HVS_READING_MAX_SENSORS 32    /* readings in one record */

#define HVS_READING_R_NON_FINITE "non_finite"              /* NaN or Infinity value */
#define HVS_READING_R_ID_TOO_LONG "id_too_long"            /* id/name over 256 bytes */
#define HVS_READING_R_BAD_ID "bad_id"                      /* empty id or control characters */
#define HVS_READING_R_BAD_TIMESTAMP "bad_timestamp"        /* unparseable / no zone */
#define HVS_READING_R_TOO_OLD "timestamp_too_old"          /* before 2000-01-01 */
#define HVS_READING_R_IN_FUTURE "timestamp_in_future"      /* later than now + max_future */
#define HVS_READING_R_UNKNOWN_SENSOR "unknown_sensor"      /* sensor type not in the table */
#define HVS_READING_R_OUT_OF_RANGE "value_out_of_range"    /* implausible for the sensor */
#define HVS_READING_R_EMPTY "empty_readings"               /* no readings */
#define HVS_READING_R_TOO_MANY "too_many_readings"         /* more than 32 */

typedef struct hvs_sensor_value {
    char sensor_type[HVS_READING_ID_MAX + 1];
    char room_name[HVS_READING_ID_MAX + 1]; /* "" = none */
    double value;
} hvs_sensor_value_t;

typedef struct hvs_reading {
    char building_id[HVS_READING_ID_MAX + 1];
    char apartment_id[HVS_READING_ID_MAX + 1];
    char device_id[HVS_READING_ID_MAX + 1]; /* "" = unknown */
    hvs_ms_t timestamp;
    size_t n;
    hvs_sensor_value_t v[HVS_READING_MAX_SENSORS];
} hvs_reading_t;

/* A known sensor: unit and the range a real device can report. */
typedef struct hvs_sensor_info {
    const char *type;
    const char *unit;
    double min, max;
    bool cumulative;   /* a counter: consumption comes from differences */
    bool per_room;
} hvs_sensor_info_t;

/* The table entry for a sensor type, or NULL if unknown. */
const hvs_sensor_info_t *hvs_reading_sensor(const char *type);

/*
 * Parse one JSON line into *r (structure and types only). JSON has no NaN/Infinity, so lines
 * carrying them (NaN, Infinity, 1e999) fail with HVS_READING_R_NON_FINITE, not as syntax.
 */
int hvs_reading_parse_json(const char *line, size_t len, hvs_reading_t *r, hvs_err_t *err);

/* Semantic checks of a parsed or decoded record at wall time `now`. */
int hvs_reading_validate(const hvs_reading_t *r, hvs_ms_t now, hvs_ms_t max_future_ms,
                         hvs_err_t *err);

typedef struct hvs_reading_codec hvs_reading_codec_t;

/* Field indices of the current Reading schema of `s`. Free with hvs_reading_codec_destroy. */
int hvs_reading_codec_new(hvs_serde_t *s, hvs_reading_codec_t **out, hvs_err_t *err);
void hvs_reading_codec_destroy(hvs_reading_codec_t *c);

/*
 * Fill a Reading value (e.g. hvs_encoder_value) from *r; `source` (may be NULL) and
 * `ingested_at` (HVS_MS_NONE = null) fill the optional lineage fields.
 */
int hvs_reading_to_avro(const hvs_reading_codec_t *c, const hvs_reading_t *r, const char *source,
                        hvs_ms_t ingested_at, avro_value_t *v, hvs_err_t *err);
/* Read a decoded Reading value into *r (strings that do not fit fail with id_too_long). */
int hvs_reading_from_avro(const hvs_reading_codec_t *c, avro_value_t *v, hvs_reading_t *r,
                          hvs_err_t *err);

#endif
