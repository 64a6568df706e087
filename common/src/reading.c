/*
 * The Reading record (see hvs/reading.h).
 */
#include "hvs/reading.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sensors the platform understands, with what a working device can report. */
static const hvs_sensor_info_t sensors[] = {
    {"heating_energy_kwh", "kWh", 0, 1e9, true, false},
    {"hot_water_litres", "litres", 0, 1e10, true, false},
    {"room_temp_c", "degC", -30, 60, false, true},
    {"setpoint_temp_c", "degC", 5, 35, false, true},
    {"valve_position_pct", "percent", 0, 100, false, true},
    {"humidity_pct", "percent", 0, 100, false, true},
};

const hvs_sensor_info_t *hvs_reading_sensor(const char *type) {
    for (size_t i = 0; i < sizeof sensors / sizeof sensors[0]; i++)
        if (strcmp(sensors[i].type, type) == 0)
            return &sensors[i];
    return NULL;
}

/* Does the text hold NaN/Infinity outside strings, or a number too large for a double? */
static int has_non_finite_token(const char *s, size_t len) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if ((c == 'N' && len - i >= 3 && strncmp(s + i, "NaN", 3) == 0) ||
                 (c == 'I' && len - i >= 8 && strncmp(s + i, "Infinity", 8) == 0))
            return 1;
    }
    return 0;
}

static int copy_id(char *dst, json_t *j, const char *field, int required, hvs_err_t *err) {
    if (!j) {
        if (!required) {
            dst[0] = '\0';
            return HVS_OK;
        }
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_MISSING, "field %s is required",
                           field);
    }
    if (!json_is_string(j))
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE, "field %s must be a string",
                           field);
    size_t n = json_string_length(j);
    if (n > HVS_READING_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_ID_TOO_LONG,
                           "field %s is %zu bytes, at most %d allowed", field, n,
                           HVS_READING_ID_MAX);
    memcpy(dst, json_string_value(j), n);
    dst[n] = '\0';
    if (strlen(dst) != n)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_ID, "field %s contains NUL", field);
    return HVS_OK;
}

static int parse_timestamp(json_t *root, hvs_ms_t *out, hvs_err_t *err) {
    json_t *j = json_object_get(root, "timestamp_str");
    const char *field = "timestamp_str";
    if (!j) {
        j = json_object_get(root, "timestamp");
        field = "timestamp";
    }
    if (!j)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_MISSING,
                           "field timestamp_str (or timestamp) is required");
    if (json_is_integer(j)) {
        *out = (hvs_ms_t)json_integer_value(j);
        return HVS_OK;
    }
    if (!json_is_string(j))
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                           "field %s must be an ISO-8601 string or epoch milliseconds", field);
    if (hvs_time_parse_iso8601(json_string_value(j), out, err) != HVS_OK) {
        hvs_err_wrap(err, "field %s", field);
        return err ? (err->code = HVS_EINVAL) : HVS_EINVAL;
    }
    return HVS_OK;
}

int hvs_reading_parse_json(const char *line, size_t len, hvs_reading_t *r, hvs_err_t *err) {
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (has_non_finite_token(line, len) || strstr(jerr.text, "overflow"))
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_NON_FINITE,
                               "a value is NaN or infinite (%s)", jerr.text);
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_SYNTAX, "not JSON: %s (column %d)",
                           jerr.text, jerr.column);
    }
    int rc = HVS_OK;
    memset(r, 0, offsetof(hvs_reading_t, v));
    if (!json_is_object(root)) {
        rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE, "a reading must be an object");
        goto out;
    }
    if ((rc = copy_id(r->building_id, json_object_get(root, "building_id"), "building_id", 1,
                      err)) ||
        (rc = copy_id(r->apartment_id, json_object_get(root, "apartment_id"), "apartment_id", 1,
                      err)) ||
        (rc = copy_id(r->device_id, json_object_get(root, "device_id"), "device_id", 0, err)) ||
        (rc = parse_timestamp(root, &r->timestamp, err)))
        goto out;
    json_t *arr = json_object_get(root, "readings");
    if (!arr) {
        rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_MISSING, "field readings is required");
        goto out;
    }
    if (!json_is_array(arr)) {
        rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE, "field readings must be an array");
        goto out;
    }
    if (json_array_size(arr) > HVS_READING_MAX_SENSORS) {
        rc = hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_MANY, "%zu readings, at most %d",
                         json_array_size(arr), HVS_READING_MAX_SENSORS);
        goto out;
    }
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char field[64];
        hvs_sensor_value_t *sv = &r->v[i];
        if (!json_is_object(item)) {
            rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                             "field readings[%zu] must be an object", i);
            goto out;
        }
        snprintf(field, sizeof field, "readings[%zu].sensor_type", i);
        if ((rc = copy_id(sv->sensor_type, json_object_get(item, "sensor_type"), field, 1, err)))
            goto out;
        snprintf(field, sizeof field, "readings[%zu].room_name", i);
        json_t *room = json_object_get(item, "room_name");
        if ((rc = copy_id(sv->room_name, json_is_null(room) ? NULL : room, field, 0, err)))
            goto out;
        json_t *val = json_object_get(item, "value");
        if (!val) {
            rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_MISSING,
                             "field readings[%zu].value is required", i);
            goto out;
        }
        if (!json_is_number(val)) {
            rc = hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                             "field readings[%zu].value must be a number", i);
            goto out;
        }
        sv->value = json_number_value(val);
        r->n++;
    }
out:
    json_decref(root);
    return rc;
}

static int check_id(const char *s, const char *field, hvs_err_t *err) {
    size_t n = strnlen(s, HVS_READING_ID_MAX + 1);
    if (n == 0)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_ID, "%s is empty", field);
    if (n > HVS_READING_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_ID_TOO_LONG, "%s is over %d bytes", field,
                           HVS_READING_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_ID,
                               "%s contains a control character at byte %zu", field, i);
    return HVS_OK;
}

int hvs_reading_validate(const hvs_reading_t *r, hvs_ms_t now, hvs_ms_t max_future_ms,
                         hvs_err_t *err) {
    int rc;
    if ((rc = check_id(r->building_id, "building_id", err)) ||
        (rc = check_id(r->apartment_id, "apartment_id", err)))
        return rc;
    if (r->timestamp < HVS_MS_MIN_EVENT) {
        char buf[40];
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_OLD,
                           "timestamp %s is before 2000-01-01",
                           hvs_time_format_iso8601(r->timestamp, buf, sizeof buf));
    }
    if (r->timestamp > now + max_future_ms) {
        char buf[40];
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_IN_FUTURE,
                           "timestamp %s is more than %lld s ahead of now",
                           hvs_time_format_iso8601(r->timestamp, buf, sizeof buf),
                           (long long)(max_future_ms / 1000));
    }
    if (r->n == 0)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_EMPTY, "readings is empty");
    if (r->n > HVS_READING_MAX_SENSORS)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_MANY, "%zu readings, at most %d",
                           r->n, HVS_READING_MAX_SENSORS);
    for (size_t i = 0; i < r->n; i++) {
        const hvs_sensor_value_t *sv = &r->v[i];
        const hvs_sensor_info_t *info = hvs_reading_sensor(sv->sensor_type);
        if (!info)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_UNKNOWN_SENSOR,
                               "readings[%zu]: unknown sensor type \"%.64s\"", i, sv->sensor_type);
        if (!isfinite(sv->value))
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_NON_FINITE,
                               "readings[%zu] (%s): value is %f", i, info->type, sv->value);
        if (sv->value < info->min || sv->value > info->max)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_OUT_OF_RANGE,
                               "readings[%zu] (%s): %g %s is outside [%g, %g]", i, info->type,
                               sv->value, info->unit, info->min, info->max);
        if (sv->room_name[0] && (rc = check_id(sv->room_name, "room_name", err)))
            return rc;
    }
    return HVS_OK;
}

struct hvs_reading_codec {
    hvs_serde_t *serde;
    int building_id, apartment_id, timestamp, readings, device_id, ingested_at, source;
    int sensor_type, room_name, value;
};

int hvs_reading_codec_new(hvs_serde_t *s, hvs_reading_codec_t **out, hvs_err_t *err) {
    avro_schema_t rs = hvs_serde_schema(s, HVS_SCHEMA_READING);
    hvs_reading_codec_t *c = calloc(1, sizeof *c);
    if (!c)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "reading codec: out of memory");
    c->serde = s;
    c->building_id = avro_schema_record_field_get_index(rs, "building_id");
    c->apartment_id = avro_schema_record_field_get_index(rs, "apartment_id");
    c->timestamp = avro_schema_record_field_get_index(rs, "timestamp");
    c->readings = avro_schema_record_field_get_index(rs, "readings");
    c->device_id = avro_schema_record_field_get_index(rs, "device_id");
    c->ingested_at = avro_schema_record_field_get_index(rs, "ingested_at");
    c->source = avro_schema_record_field_get_index(rs, "source");
    avro_schema_t item = c->readings >= 0
                             ? avro_schema_array_items(avro_schema_record_field_get_by_index(
                                   rs, c->readings))
                             : NULL;
    c->sensor_type = item ? avro_schema_record_field_get_index(item, "sensor_type") : -1;
    c->room_name = item ? avro_schema_record_field_get_index(item, "room_name") : -1;
    c->value = item ? avro_schema_record_field_get_index(item, "value") : -1;
    if (c->building_id < 0 || c->apartment_id < 0 || c->timestamp < 0 || c->readings < 0 ||
        c->device_id < 0 || c->ingested_at < 0 || c->source < 0 || c->sensor_type < 0 ||
        c->room_name < 0 || c->value < 0) {
        free(c);
        return hvs_err_set(err, HVS_ESERDE, "bad_schema",
                           "Reading schema lacks a field this code reads");
    }
    *out = c;
    return HVS_OK;
}

void hvs_reading_codec_destroy(hvs_reading_codec_t *c) { free(c); }

static void set_opt_string(avro_value_t *rec, int idx, const char *s) {
    avro_value_t f, b;
    avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
    if (s && *s) {
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_string(&b, s);
    } else {
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
    }
}

int hvs_reading_to_avro(const hvs_reading_codec_t *c, const hvs_reading_t *r, const char *source,
                        hvs_ms_t ingested_at, avro_value_t *v, hvs_err_t *err) {
    avro_value_t f, arr, item, sub, b;
    avro_value_get_by_index(v, (size_t)c->building_id, &f, NULL);
    avro_value_set_string(&f, r->building_id);
    avro_value_get_by_index(v, (size_t)c->apartment_id, &f, NULL);
    avro_value_set_string(&f, r->apartment_id);
    avro_value_get_by_index(v, (size_t)c->timestamp, &f, NULL);
    avro_value_set_long(&f, r->timestamp);
    avro_value_get_by_index(v, (size_t)c->readings, &arr, NULL);
    avro_value_reset(&arr);
    for (size_t i = 0; i < r->n; i++) {
        if (avro_value_append(&arr, &item, NULL) != 0)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "reading to Avro: %s", avro_strerror());
        avro_value_get_by_index(&item, (size_t)c->sensor_type, &sub, NULL);
        avro_value_set_string(&sub, r->v[i].sensor_type);
        set_opt_string(&item, c->room_name, r->v[i].room_name);
        avro_value_get_by_index(&item, (size_t)c->value, &sub, NULL);
        avro_value_set_double(&sub, r->v[i].value);
    }
    set_opt_string(v, c->device_id, r->device_id);
    set_opt_string(v, c->source, source);
    avro_value_get_by_index(v, (size_t)c->ingested_at, &f, NULL);
    if (ingested_at != HVS_MS_NONE) {
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_long(&b, ingested_at);
    } else {
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
    }
    return HVS_OK;
}

/* Copy an Avro string (or a null union) into a fixed buffer. */
static int get_string(avro_value_t *v, char *dst, const char *field, hvs_err_t *err) {
    avro_value_t b;
    if (avro_value_get_type(v) == AVRO_UNION) {
        if (avro_value_get_current_branch(v, &b) != 0 || avro_value_get_type(&b) == AVRO_NULL) {
            dst[0] = '\0';
            return HVS_OK;
        }
        v = &b;
    }
    const char *s = NULL;
    size_t n = 0;
    avro_value_get_string(v, &s, &n);
    n = n ? n - 1 : 0;
    if (n > HVS_READING_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_ID_TOO_LONG,
                           "%s is %zu bytes, at most %d allowed", field, n, HVS_READING_ID_MAX);
    memcpy(dst, s ? s : "", n);
    dst[n] = '\0';
    return HVS_OK;
}

int hvs_reading_from_avro(const hvs_reading_codec_t *c, avro_value_t *v, hvs_reading_t *r,
                          hvs_err_t *err) {
    avro_value_t f, arr, item, sub;
    int rc;
    memset(r, 0, offsetof(hvs_reading_t, v));
    avro_value_get_by_index(v, (size_t)c->building_id, &f, NULL);
    if ((rc = get_string(&f, r->building_id, "building_id", err)))
        return rc;
    avro_value_get_by_index(v, (size_t)c->apartment_id, &f, NULL);
    if ((rc = get_string(&f, r->apartment_id, "apartment_id", err)))
        return rc;
    avro_value_get_by_index(v, (size_t)c->device_id, &f, NULL);
    if ((rc = get_string(&f, r->device_id, "device_id", err)))
        return rc;
    avro_value_get_by_index(v, (size_t)c->timestamp, &f, NULL);
    avro_value_get_long(&f, &r->timestamp);
    avro_value_get_by_index(v, (size_t)c->readings, &arr, NULL);
    size_t n = 0;
    avro_value_get_size(&arr, &n);
    if (n > HVS_READING_MAX_SENSORS)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_MANY, "%zu readings, at most %d", n,
                           HVS_READING_MAX_SENSORS);
    for (size_t i = 0; i < n; i++) {
        avro_value_get_by_index(&arr, i, &item, NULL);
        avro_value_get_by_index(&item, (size_t)c->sensor_type, &sub, NULL);
        if ((rc = get_string(&sub, r->v[i].sensor_type, "sensor_type", err)))
            return rc;
        avro_value_get_by_index(&item, (size_t)c->room_name, &sub, NULL);
        if ((rc = get_string(&sub, r->v[i].room_name, "room_name", err)))
            return rc;
        avro_value_get_by_index(&item, (size_t)c->value, &sub, NULL);
        avro_value_get_double(&sub, &r->v[i].value);
    }
    r->n = n;
    return HVS_OK;
}
