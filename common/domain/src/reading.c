/*
 * The Reading record (see hvs/reading.h).
 */
#include "hvs/reading.h"

#include "hvs/profile.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hvs/layouts.h"
#include "hvs/wire.h"

/* The sensors of the deployment's profile (profile.h; data/profiles/profiles.ini: heat's table
 * is the one reading.h's comment and Reading.avsc's sensor_type doc list - keep them in step). */
const hvs_sensor_info_t *hvs_reading_sensor(const char *type) {
    const hvs_profile_t *p = hvs_profile_active();
    for (size_t i = 0; i < p->nsensors; i++)
        if (strcmp(p->sensors[i].type, type) == 0)
            return &p->sensors[i];
    return NULL;
}

const hvs_sensor_info_t *hvs_reading_sensors(size_t *n) {
    const hvs_profile_t *p = hvs_profile_active();
    *n = p->nsensors;
    return p->sensors;
}

/*
 * Does the text hold a bare NaN/Infinity token (any case: NaN, -Infinity, nan, inf) outside
 * strings? Only asked after jansson refused the text, to tell non-finite numbers (what Python's
 * json.dumps and printf write for them) from other syntax errors.
 */
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
        if (c == '"') {
            in_str = 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            continue;
        size_t j = i;
        while (j < len && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')))
            j++;
        size_t n = j - i;
        if ((n == 3 && (strncasecmp(s + i, "nan", 3) == 0 || strncasecmp(s + i, "inf", 3) == 0)) ||
            (n == 8 && strncasecmp(s + i, "infinity", 8) == 0))
            return 1;
        i = j - 1;
    }
    return 0;
}

/* Copy a JSON string of at most HVS_READING_ID_MAX bytes into dst (dst holds a prefix, or "",
 * on failure). Absent (or null when !required) gives "". */
static int copy_id(char *dst, json_t *j, const char *field, int required, hvs_err_t *err) {
    dst[0] = '\0';
    if (!required && (!j || json_is_null(j)))
        return HVS_OK;
    if (!j)
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_MISSING, "field %s is required",
                           field);
    if (!json_is_string(j))
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE, "field %s must be a string",
                           field);
    size_t n = json_string_length(j);
    if (n > HVS_READING_ID_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_ID_TOO_LONG,
                           "field %s is %zu bytes, at most %d allowed", field, n,
                           HVS_READING_ID_MAX);
    const char *s = json_string_value(j);
    if (memchr(s, '\0', n))
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_ID, "field %s contains NUL", field);
    memcpy(dst, s, n + 1);
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
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_MISSING,
                           "field timestamp_str (or timestamp) is required");
    if (json_is_number(j)) {
        /* Numbers are decoded as doubles (JSON_DECODE_INT_AS_REAL): epoch ms up to 2^53 exact. */
        double x = json_number_value(j);
        if (x != floor(x) || fabs(x) > 9007199254740992.0)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_TIMESTAMP,
                               "field %s = %g is not a whole number of epoch milliseconds", field,
                               x);
        *out = (hvs_ms_t)x;
        return HVS_OK;
    }
    if (!json_is_string(j))
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE,
                           "field %s must be an ISO-8601 string or epoch milliseconds", field);
    const char *s = json_string_value(j);
    if (strlen(s) != json_string_length(j))
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_TIMESTAMP, "field %s contains NUL",
                           field);
    if (hvs_time_parse_iso8601(s, out, err) != HVS_OK) {
        if (err)
            snprintf(err->reason, sizeof err->reason, "%s", HVS_READING_R_BAD_TIMESTAMP);
        hvs_err_wrap(err, "field %s", field);
        return HVS_EINVAL;
    }
    return HVS_OK;
}

static int parse_sensor(json_t *item, size_t i, hvs_sensor_value_t *sv, hvs_err_t *err) {
    char field[64];
    int rc;
    if (!json_is_object(item))
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE,
                           "field readings[%zu] must be an object", i);
    snprintf(field, sizeof field, "readings[%zu].sensor_type", i);
    if ((rc = copy_id(sv->sensor_type, json_object_get(item, "sensor_type"), field, 1, err)))
        return rc;
    snprintf(field, sizeof field, "readings[%zu].room_name", i);
    if ((rc = copy_id(sv->room_name, json_object_get(item, "room_name"), field, 0, err)))
        return rc;
    json_t *val = json_object_get(item, "value");
    if (!val)
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_MISSING,
                           "field readings[%zu].value is required", i);
    if (!json_is_number(val))
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE,
                           "field readings[%zu].value must be a number", i);
    sv->value = json_number_value(val);
    return HVS_OK;
}

int hvs_reading_parse_json(const char *line, size_t len, hvs_reading_t *r, hvs_err_t *err) {
    memset(r, 0, offsetof(hvs_reading_t, v));
    if (len > HVS_READING_LINE_MAX)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_LINE_TOO_LONG,
                           "line is %zu bytes, at most %d allowed", len, HVS_READING_LINE_MAX);
    json_error_t jerr;
    /* INT_AS_REAL: a 20-digit integer is a (too large) value, not a syntax error, and a
     * 400-digit one overflows like 1e999. ALLOW_NUL: "\u0000" in an id is a bad id. */
    json_t *root = json_loadb(
        line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_numeric_overflow ||
            has_non_finite_token(line, len))
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_NON_FINITE,
                               "a value is NaN or infinite (%s, column %d)", jerr.text,
                               jerr.column);
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_SYNTAX, "not JSON: %s (column %d)",
                           jerr.text, jerr.column);
    }
    int rc = HVS_OK;
    if (!json_is_object(root)) {
        rc = hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE, "a reading must be an object");
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
        rc = hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_MISSING, "field readings is required");
        goto out;
    }
    if (!json_is_array(arr)) {
        rc = hvs_err_set(err, HVS_ESERDE, HVS_READING_R_JSON_TYPE,
                         "field readings must be an array");
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
        if ((rc = parse_sensor(item, i, &r->v[i], err)))
            goto out;
        r->n++;
    }
out:
    json_decref(root);
    return rc;
}

int hvs_reading_validate(const hvs_reading_t *r, hvs_ms_t now, hvs_ms_t max_future_ms,
                         hvs_err_t *err) {
    int rc;
    if ((rc = hvs_id_check(r->building_id, "building_id", err)) ||
        (rc = hvs_id_check(r->apartment_id, "apartment_id", err)) ||
        (r->device_id[0] && (rc = hvs_id_check(r->device_id, "device_id", err))))
        return rc;
    char iso[40];
    if (r->timestamp < HVS_MS_MIN_EVENT)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_OLD,
                           "timestamp %s is before 2000-01-01",
                           hvs_time_format_iso8601(r->timestamp, iso, sizeof iso));
    hvs_ms_t limit = max_future_ms > 0 && now > INT64_MAX - max_future_ms ? INT64_MAX
                                                                          : now + max_future_ms;
    if (r->timestamp > limit)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_IN_FUTURE,
                           "timestamp %s is more than %lld s ahead of now",
                           hvs_time_format_iso8601(r->timestamp, iso, sizeof iso),
                           (long long)(max_future_ms / 1000));
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
                               "readings[%zu].sensor_type \"%.64s\" is not a known sensor", i,
                               sv->sensor_type);
        if (!isfinite(sv->value))
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_NON_FINITE,
                               "readings[%zu].value (%s) is %f", i, info->type, sv->value);
        if (sv->value < info->min || sv->value > info->max)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_OUT_OF_RANGE,
                               "readings[%zu].value (%s) %g %s is outside [%g, %g]", i, info->type,
                               sv->value, info->unit, info->min, info->max);
        if (sv->room_name[0]) {
            char field[48];
            snprintf(field, sizeof field, "readings[%zu].room_name", i);
            if ((rc = hvs_id_check(sv->room_name, field, err)))
                return rc;
        }
    }
    return HVS_OK;
}

struct hvs_reading_codec {
    avro_schema_t schema; /* borrowed from the serde */
    bool direct;          /* the current schema is HVS_LAYOUT_READING */
    int building_id, apartment_id, timestamp, readings, device_id, ingested_at, source;
    int sensor_type, room_name, value;
};

int hvs_reading_codec_new(hvs_serde_t *s, hvs_reading_codec_t **out, hvs_err_t *err) {
    avro_schema_t rs = hvs_serde_schema(s, HVS_SCHEMA_READING);
    if (!rs)
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA, "no Reading schema");
    hvs_reading_codec_t *c = calloc(1, sizeof *c);
    if (!c)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "reading codec: out of memory");
    c->schema = rs;
    c->building_id = avro_schema_record_field_get_index(rs, "building_id");
    c->apartment_id = avro_schema_record_field_get_index(rs, "apartment_id");
    c->timestamp = avro_schema_record_field_get_index(rs, "timestamp");
    c->readings = avro_schema_record_field_get_index(rs, "readings");
    c->device_id = avro_schema_record_field_get_index(rs, "device_id");
    c->ingested_at = avro_schema_record_field_get_index(rs, "ingested_at");
    c->source = avro_schema_record_field_get_index(rs, "source");
    avro_schema_t item = c->readings >= 0
                             ? avro_schema_array_items(
                                   avro_schema_record_field_get_by_index(rs, c->readings))
                             : NULL;
    c->sensor_type = item ? avro_schema_record_field_get_index(item, "sensor_type") : -1;
    c->room_name = item ? avro_schema_record_field_get_index(item, "room_name") : -1;
    c->value = item ? avro_schema_record_field_get_index(item, "value") : -1;
    if (c->building_id < 0 || c->apartment_id < 0 || c->timestamp < 0 || c->readings < 0 ||
        c->device_id < 0 || c->ingested_at < 0 || c->source < 0 || c->sensor_type < 0 ||
        c->room_name < 0 || c->value < 0) {
        free(c);
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA,
                           "Reading schema lacks a field this code reads");
    }
    c->direct = hvs_serde_has_layout(rs, HVS_LAYOUT_READING);
    *out = c;
    return HVS_OK;
}

bool hvs_reading_codec_direct(const hvs_reading_codec_t *c) { return c->direct; }

void hvs_reading_codec_destroy(hvs_reading_codec_t *c) { free(c); }

/* Set a ["null", T] union field to null or to the string s; non-zero on avro-c failure. */
static int set_opt_string(avro_value_t *rec, int idx, const char *s) {
    avro_value_t f, b;
    if (avro_value_get_by_index(rec, (size_t)idx, &f, NULL))
        return 1;
    if (s && *s)
        return avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, s);
    return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
}

int hvs_reading_to_avro(const hvs_reading_codec_t *c, const hvs_reading_t *r, const char *source,
                        hvs_ms_t ingested_at, avro_value_t *v, hvs_err_t *err) {
    avro_value_t f, arr, item, sub, b;
    if (r->n > HVS_READING_MAX_SENSORS)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_MANY, "%zu readings, at most %d",
                           r->n, HVS_READING_MAX_SENSORS);
    int bad = avro_value_get_by_index(v, (size_t)c->building_id, &f, NULL) ||
              avro_value_set_string(&f, r->building_id) ||
              avro_value_get_by_index(v, (size_t)c->apartment_id, &f, NULL) ||
              avro_value_set_string(&f, r->apartment_id) ||
              avro_value_get_by_index(v, (size_t)c->timestamp, &f, NULL) ||
              avro_value_set_long(&f, r->timestamp) ||
              avro_value_get_by_index(v, (size_t)c->readings, &arr, NULL) || avro_value_reset(&arr);
    for (size_t i = 0; !bad && i < r->n; i++)
        bad = avro_value_append(&arr, &item, NULL) ||
              avro_value_get_by_index(&item, (size_t)c->sensor_type, &sub, NULL) ||
              avro_value_set_string(&sub, r->v[i].sensor_type) ||
              set_opt_string(&item, c->room_name, r->v[i].room_name) ||
              avro_value_get_by_index(&item, (size_t)c->value, &sub, NULL) ||
              avro_value_set_double(&sub, r->v[i].value);
    bad = bad || set_opt_string(v, c->device_id, r->device_id) ||
          set_opt_string(v, c->source, source) ||
          avro_value_get_by_index(v, (size_t)c->ingested_at, &f, NULL);
    if (!bad && ingested_at != HVS_MS_NONE)
        bad = avro_value_set_branch(&f, 1, &b) || avro_value_set_long(&b, ingested_at);
    else if (!bad)
        bad = avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA,
                           "Reading of %s/%s to Avro: %s", r->building_id, r->apartment_id,
                           avro_strerror());
    return HVS_OK;
}

/* Copy an Avro string (or a ["null", "string"] union) into a buffer of HVS_READING_ID_MAX+1. */
static void field_name(char *buf, size_t len, const char *field, int item) {
    if (item >= 0)
        snprintf(buf, len, "readings[%d].%s", item, field);
    else
        snprintf(buf, len, "%s", field);
}

/* field is the record's field name; item >= 0 names readings[item].field (formatted only when
 * it fails: this runs for every string of every record). */
static int get_string(avro_value_t *v, char *dst, const char *field, int item, hvs_err_t *err) {
    avro_value_t b;
    dst[0] = '\0';
    if (avro_value_get_type(v) == AVRO_UNION) {
        if (avro_value_get_current_branch(v, &b) != 0 || avro_value_get_type(&b) == AVRO_NULL)
            return HVS_OK;
        v = &b;
    }
    const char *s = NULL;
    size_t n = 0;
    char name[64];
    if (avro_value_get_string(v, &s, &n) != 0 || !s) {
        field_name(name, sizeof name, field, item);
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA, "%s is not a string", name);
    }
    n = n ? n - 1 : 0; /* avro-c counts the terminating NUL */
    if (n > HVS_READING_ID_MAX || memchr(s, '\0', n)) {
        field_name(name, sizeof name, field, item);
        if (n > HVS_READING_ID_MAX)
            return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_ID_TOO_LONG,
                               "%s is %zu bytes, at most %d allowed", name, n, HVS_READING_ID_MAX);
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_BAD_ID, "%s contains NUL", name);
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return HVS_OK;
}

/* Is field `idx` of record schema `rs` named `name`? (an index lookup, no name hashing) */
static int field_is(avro_schema_t rs, int idx, const char *name) {
    /* avro-c does not check the index: an absent one would read an unset pointer */
    if (idx < 0 || (size_t)idx >= avro_schema_record_size(rs))
        return 0;
    const char *f = avro_schema_record_field_name(rs, idx);
    return f && strcmp(f, name) == 0;
}

/*
 * The codec's indices are those of its schema. A decoder returns values of an equal but
 * distinct schema object when the writer used the current schema, so compare the fields at
 * the indices this code reads rather than pointers; a value of another layout (e.g. decoded
 * with an older writer schema instead of the current reader) would be read at wrong places.
 */
static int same_layout(const hvs_reading_codec_t *c, avro_schema_t vs) {
    if (vs == c->schema)
        return 1;
    if (!vs || !is_avro_record(vs) || !field_is(vs, c->building_id, "building_id") ||
        !field_is(vs, c->apartment_id, "apartment_id") ||
        !field_is(vs, c->timestamp, "timestamp") || !field_is(vs, c->readings, "readings") ||
        !field_is(vs, c->device_id, "device_id") || !field_is(vs, c->ingested_at, "ingested_at") ||
        !field_is(vs, c->source, "source"))
        return 0;
    avro_schema_t arr = avro_schema_record_field_get_by_index(vs, c->readings);
    avro_schema_t item = arr && is_avro_array(arr) ? avro_schema_array_items(arr) : NULL;
    return item && is_avro_record(item) && field_is(item, c->sensor_type, "sensor_type") &&
           field_is(item, c->room_name, "room_name") && field_is(item, c->value, "value");
}

int hvs_reading_from_avro(const hvs_reading_codec_t *c, avro_value_t *v, hvs_reading_t *r,
                          hvs_err_t *err) {
    avro_value_t f, arr, item, sub;
    int rc = HVS_OK;
    memset(r, 0, offsetof(hvs_reading_t, v));
    if (!same_layout(c, avro_value_get_schema(v)))
        return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA,
                           "value is not of the current Reading schema (decode with "
                           "HVS_SCHEMA_READING as reader)");
    if (avro_value_get_by_index(v, (size_t)c->building_id, &f, NULL) ||
        (rc = get_string(&f, r->building_id, "building_id", -1, err)))
        goto fail;
    if (avro_value_get_by_index(v, (size_t)c->apartment_id, &f, NULL) ||
        (rc = get_string(&f, r->apartment_id, "apartment_id", -1, err)))
        goto fail;
    if (avro_value_get_by_index(v, (size_t)c->device_id, &f, NULL) ||
        (rc = get_string(&f, r->device_id, "device_id", -1, err)))
        goto fail;
    if (avro_value_get_by_index(v, (size_t)c->timestamp, &f, NULL) ||
        avro_value_get_long(&f, &r->timestamp) ||
        avro_value_get_by_index(v, (size_t)c->readings, &arr, NULL))
        goto bad;
    size_t n = 0;
    avro_value_get_size(&arr, &n);
    if (n > HVS_READING_MAX_SENSORS)
        return hvs_err_set(err, HVS_EINVAL, HVS_READING_R_TOO_MANY, "%zu readings, at most %d", n,
                           HVS_READING_MAX_SENSORS);
    for (size_t i = 0; i < n; i++) {
        if (avro_value_get_by_index(&arr, i, &item, NULL) ||
            avro_value_get_by_index(&item, (size_t)c->sensor_type, &sub, NULL))
            goto bad;
        if ((rc = get_string(&sub, r->v[i].sensor_type, "sensor_type", (int)i, err)))
            goto fail;
        if (avro_value_get_by_index(&item, (size_t)c->room_name, &sub, NULL))
            goto bad;
        if ((rc = get_string(&sub, r->v[i].room_name, "room_name", (int)i, err)))
            goto fail;
        if (avro_value_get_by_index(&item, (size_t)c->value, &sub, NULL) ||
            avro_value_get_double(&sub, &r->v[i].value))
            goto bad;
    }
    r->n = n;
    return HVS_OK;
bad:
    return hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA, "Reading from Avro: %s",
                       avro_strerror());
fail:
    return rc ? rc
              : hvs_err_set(err, HVS_ESERDE, HVS_READING_R_BAD_SCHEMA, "Reading from Avro: %s",
                            avro_strerror());
}

/* A string of at most HVS_READING_ID_MAX bytes without NUL into dst; false (the generic path
 * decides) otherwise. */
static bool wire_id(hvs_wire_in_t *in, char *dst) {
    size_t n;
    const char *s = hvs_wire_string(in, &n);
    if (!s || n > HVS_READING_ID_MAX || memchr(s, '\0', n))
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* A ["null", "string"] id: "" for null. */
static bool wire_opt_id(hvs_wire_in_t *in, char *dst) {
    dst[0] = '\0';
    int b = hvs_wire_branch(in, 2);
    return !in->bad && (b == 0 || wire_id(in, dst));
}

/* The body of a current-schema Reading straight into *r; false when anything is not as the
 * direct reader takes it (the generic path then decides). */
static bool read_direct(const unsigned char *body, size_t len, hvs_reading_t *r) {
    hvs_wire_in_t in = hvs_wire_in(body, len);
    memset(r, 0, offsetof(hvs_reading_t, v));
    if (!wire_id(&in, r->building_id) || !wire_id(&in, r->apartment_id))
        return false;
    r->timestamp = hvs_wire_long(&in);
    size_t n = 0;
    for (int64_t k; !in.bad && (k = hvs_wire_block(&in)) > 0;) {
        if (k > HVS_READING_MAX_SENSORS - (int64_t)n)
            return false;
        for (int64_t i = 0; i < k; i++, n++) {
            hvs_sensor_value_t *sv = &r->v[n];
            if (!wire_id(&in, sv->sensor_type) || !wire_opt_id(&in, sv->room_name))
                return false;
            sv->value = hvs_wire_double(&in);
        }
    }
    if (in.bad || !wire_opt_id(&in, r->device_id))
        return false;
    if (hvs_wire_branch(&in, 2) == 1) /* ingested_at: lineage this struct does not keep */
        (void)hvs_wire_long(&in);
    size_t sn;
    if (hvs_wire_branch(&in, 2) == 1) /* source */
        (void)hvs_wire_string(&in, &sn);
    if (in.bad || in.p != in.end)
        return false;
    r->n = n;
    return true;
}

int hvs_reading_decode(const hvs_reading_codec_t *c, hvs_decoder_t *d, const void *buf, size_t len,
                       hvs_reading_t *r, bool *direct, hvs_err_t *err) {
    const unsigned char *body;
    size_t n;
    if (direct)
        *direct = false;
    if (c->direct && (body = hvs_decoder_direct_body(d, buf, len, &n)) && read_direct(body, n, r)) {
        if (direct)
            *direct = true;
        return HVS_OK;
    }
    avro_value_t *v;
    int rc = hvs_decoder_decode(d, buf, len, &v, err);
    return rc ? rc : hvs_reading_from_avro(c, v, r, err);
}
