/*
 * reading: the seeds' JSON lines parsed and validated, each kind of bad line with its own
 * reason, and the Avro round trip through the real Reading schema and wire format.
 */
#include <math.h>

#include "hvs/embedded.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs_test.h"

#define NOW INT64_C(1730030000000) /* 2024-10-27T11:53:20Z */

static const char *good =
    "{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"bldg_A123\", "
    "\"apartment_id\": \"apt_404\", \"readings\": [{\"sensor_type\": \"heating_energy_kwh\", "
    "\"value\": 15432.7}, {\"sensor_type\": \"hot_water_litres\", \"value\": 89541.2}, "
    "{\"sensor_type\": \"room_temp_c\", \"room_name\": \"living_room\", \"value\": 21.5}, "
    "{\"sensor_type\": \"setpoint_temp_c\", \"room_name\": \"living_room\", \"value\": 22.0}]}";

/* Parse + validate; returns the reason ("" when accepted). */
static const char *judge(const char *line, hvs_reading_t *r, hvs_err_t *err) {
    hvs_err_clear(err);
    if (hvs_reading_parse_json(line, strlen(line), r, err) != 0 ||
        hvs_reading_validate(r, NOW, HVS_MS_DAY, err) != 0)
        return err->reason;
    return "";
}

static void test_good(void) {
    hvs_reading_t r;
    hvs_err_t err;
    HVS_CHECK_EQ_STR(judge(good, &r, &err), "");
    HVS_CHECK_EQ_STR(r.building_id, "bldg_A123");
    HVS_CHECK_EQ_STR(r.apartment_id, "apt_404");
    HVS_CHECK_EQ_INT(r.timestamp, 1730025000000);
    HVS_CHECK_EQ_INT(r.n, 4);
    HVS_CHECK_EQ_STR(r.v[2].room_name, "living_room");
    HVS_CHECK_EQ_STR(r.v[0].room_name, "");
    HVS_CHECK(r.v[1].value == 89541.2, "value");
    /* epoch-ms "timestamp" and an offset ISO string are accepted too */
    const char *ms = "{\"timestamp\": 1730025000000, \"building_id\": \"b\", \"apartment_id\": "
                     "\"a\", \"readings\": [{\"sensor_type\": \"room_temp_c\", \"value\": 20}]}";
    HVS_CHECK_EQ_STR(judge(ms, &r, &err), "");
    HVS_CHECK_EQ_INT(r.timestamp, 1730025000000);
    /* room_name null = none; an offset is applied; integers are values; extra fields ignored */
    const char *off = "{\"timestamp_str\": \"2024-10-27T12:30:00+02:00\", \"building_id\": \"b\", "
                      "\"apartment_id\": \"a\", \"device_id\": \"tab-1\", \"firmware\": \"1.2\", "
                      "\"readings\": [{\"sensor_type\": \"valve_position_pct\", \"room_name\": "
                      "null, \"value\": 100}]}";
    HVS_CHECK_EQ_STR(judge(off, &r, &err), "");
    HVS_CHECK_EQ_INT(r.timestamp, 1730025000000);
    HVS_CHECK_EQ_STR(r.device_id, "tab-1");
    HVS_CHECK_EQ_STR(r.v[0].room_name, "");
    HVS_CHECK(r.v[0].value == 100.0, "integer value %g", r.v[0].value);
    /* ids of exactly 256 bytes are fine */
    char line[1024], id[257];
    memset(id, 'i', 256);
    id[256] = '\0';
    snprintf(line, sizeof line,
             "{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"%s\", "
             "\"apartment_id\": \"a\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": -30}]}",
             id);
    HVS_CHECK_EQ_STR(judge(line, &r, &err), "");
    HVS_CHECK_EQ_INT(strlen(r.building_id), 256);
    /* the future limit is configurable and saturates instead of overflowing */
    HVS_REQUIRE(hvs_reading_parse_json(good, strlen(good), &r, &err) == 0, "parse");
    r.timestamp = NOW + 2 * HVS_MS_DAY;
    HVS_CHECK(hvs_reading_validate(&r, NOW, HVS_MS_DAY, &err) != 0, "2 days ahead, limit 1 day");
    HVS_CHECK(hvs_reading_validate(&r, NOW, 3 * HVS_MS_DAY, &err) == 0, "limit 3 days");
    r.timestamp = INT64_MAX;
    HVS_CHECK(hvs_reading_validate(&r, NOW, INT64_MAX, &err) == 0, "no limit: %s", err.msg);
    /* the sensor table: every entry found by name, ranges sane */
    size_t n;
    const hvs_sensor_info_t *t = hvs_reading_sensors(&n);
    HVS_CHECK(n >= 4, "sensor table has %zu entries", n);
    for (size_t i = 0; i < n; i++)
        HVS_CHECK(hvs_reading_sensor(t[i].type) == &t[i] && t[i].min < t[i].max && t[i].unit,
                  "sensor %s", t[i].type);
    HVS_CHECK(hvs_reading_sensor("outdoor_temp_c") == NULL, "weather is not a meter sensor");
}

static void test_bad(void) {
    char big[600];
    memset(big, 'x', 300);
    big[300] = '\0';
    char longid[800];
    snprintf(longid, sizeof longid,
             "{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"%s\", "
             "\"apartment_id\": \"a\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": 20}]}",
             big);
    char longroom[800];
    snprintf(longroom, sizeof longroom,
             "{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"b\", "
             "\"apartment_id\": \"a\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"room_name\": \"%s\", \"value\": 20}]}",
             big);
    /* a valid line padded with spaces past the limit: refused before jansson sees it */
    static char huge[HVS_READING_LINE_MAX + 200];
    memset(huge, ' ', sizeof huge - 1);
    memcpy(huge, good, strlen(good));
#define D400                                                                                       \
    "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"  \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"  \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"  \
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"  \
    "000000000000000000000000000000000000000000000000"
#define L(ts, rd)                                                                                  \
    "{\"timestamp_str\": \"" ts                                                                    \
    "\", \"building_id\": \"b\", \"apartment_id\": \"a\", \"readings\": [" rd "]}"
#define T "{\"sensor_type\": \"room_temp_c\", \"value\": 20}"
    const struct {
        const char *line, *reason;
    } cases[] = {
        {"{\"building_id\": \"b\", \"apartment_id\": \"a\", \"readings\": []}",
         HVS_SERDE_R_JSON_MISSING},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"apartment_id\": \"a\", \"readings\": []}",
         HVS_SERDE_R_JSON_MISSING},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\"}"), HVS_SERDE_R_JSON_MISSING},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": 42, \"apartment_id\": "
         "\"a\", \"readings\": []}",
         HVS_SERDE_R_JSON_TYPE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": \"warm\"}"),
         HVS_SERDE_R_JSON_TYPE},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"b\", \"apartment_id\": "
         "\"a\", \"readings\": {}}",
         HVS_SERDE_R_JSON_TYPE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": NaN}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": Infinity}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"heating_energy_kwh\", \"value\": 1e999}"),
         HVS_READING_R_NON_FINITE},
        {L("1999-12-31T23:59:59Z", T), HVS_READING_R_TOO_OLD},
        {L("2024-10-28T12:00:00Z", T), HVS_READING_R_IN_FUTURE},
        {L("27/10/2024 10:30", T), HVS_READING_R_BAD_TIMESTAMP},
        {L("2024-10-27T10:30:00", T), HVS_READING_R_BAD_TIMESTAMP},
        {longid, HVS_READING_R_ID_TOO_LONG},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"co2_ppm\", \"value\": 400}"),
         HVS_READING_R_UNKNOWN_SENSOR},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"heating_energy_kwh\", \"value\": -5}"),
         HVS_READING_R_OUT_OF_RANGE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": 500}"),
         HVS_READING_R_OUT_OF_RANGE},
        {L("2024-10-27T10:30:00Z", ""), HVS_READING_R_EMPTY},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"\", \"apartment_id\": "
         "\"a\", \"readings\": [" T "]}",
         HVS_READING_R_BAD_ID},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"b\\u0007\", "
         "\"apartment_id\": \"a\", \"readings\": [" T "]}",
         HVS_READING_R_BAD_ID},
        {"{\"building_id\": \"b\", ", HVS_SERDE_R_JSON_SYNTAX},
        {"[1, 2, 3]", HVS_SERDE_R_JSON_TYPE},
        /* non-finite in every spelling a producer may write; NaN inside a string is text */
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": -Infinity}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": nan}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": inf}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": -1e999}"),
         HVS_READING_R_NON_FINITE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"value\": " D400 "}"),
         HVS_READING_R_NON_FINITE},
        {"{\"building_id\": \"NaN\", \"apartment_id\": \"Infinity\"", HVS_SERDE_R_JSON_SYNTAX},
        {"{\"building_id\": \"b\", \"building_id\": \"c\"}", HVS_SERDE_R_JSON_SYNTAX},
        /* a 20-digit integer is a number, just not a plausible one */
        {L("2024-10-27T10:30:00Z",
           "{\"sensor_type\": \"heating_energy_kwh\", \"value\": 99999999999999999999}"),
         HVS_READING_R_OUT_OF_RANGE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"humidity_pct\", \"value\": 100.5}"),
         HVS_READING_R_OUT_OF_RANGE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": 7, \"value\": 1}"), HVS_SERDE_R_JSON_TYPE},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"room_name\": 1, "
                                   "\"value\": 1}"),
         HVS_SERDE_R_JSON_TYPE},
        {L("2024-10-27T10:30:00Z", "17"), HVS_SERDE_R_JSON_TYPE},
        {"{\"timestamp_str\": null, \"building_id\": \"b\", \"apartment_id\": \"a\", "
         "\"readings\": [" T "]}",
         HVS_SERDE_R_JSON_TYPE},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": null, "
         "\"apartment_id\": \"a\", \"readings\": [" T "]}",
         HVS_SERDE_R_JSON_TYPE},
        {"{\"timestamp\": 1730025000000.5, \"building_id\": \"b\", \"apartment_id\": \"a\", "
         "\"readings\": [" T "]}",
         HVS_READING_R_BAD_TIMESTAMP},
        {"{\"timestamp\": 1e300, \"building_id\": \"b\", \"apartment_id\": \"a\", "
         "\"readings\": [" T "]}",
         HVS_READING_R_BAD_TIMESTAMP},
        {"{\"timestamp\": 946684799999, \"building_id\": \"b\", \"apartment_id\": \"a\", "
         "\"readings\": [" T "]}",
         HVS_READING_R_TOO_OLD},
        {L("2024-10-27T10:30:00Z\\u0000x", T), HVS_READING_R_BAD_TIMESTAMP},
        {L("2024-02-30T10:30:00Z", T), HVS_READING_R_BAD_TIMESTAMP},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"b\\u0000c\", "
         "\"apartment_id\": \"a\", \"readings\": [" T "]}",
         HVS_READING_R_BAD_ID},
        {"{\"timestamp_str\": \"2024-10-27T10:30:00Z\", \"building_id\": \"b\", "
         "\"apartment_id\": \"a\", \"device_id\": \"t\\n1\", \"readings\": [" T "]}",
         HVS_READING_R_BAD_ID},
        {L("2024-10-27T10:30:00Z", "{\"sensor_type\": \"room_temp_c\", \"room_name\": \"\\t\", "
                                   "\"value\": 20}"),
         HVS_READING_R_BAD_ID},
        {longroom, HVS_READING_R_ID_TOO_LONG},
        {huge, HVS_READING_R_LINE_TOO_LONG},
        {L("2024-10-27T10:30:00Z",
           T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T
             "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T
             "," T "," T "," T "," T),
         HVS_READING_R_TOO_MANY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hvs_reading_t r;
        hvs_err_t err;
        const char *reason = judge(cases[i].line, &r, &err);
        HVS_CHECK(strcmp(reason, cases[i].reason) == 0, "case %zu: reason \"%s\" (%s), want %s", i,
                  reason, err.msg, cases[i].reason);
    }
}

static void test_avro_roundtrip(void) {
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_reading_codec_t *c;
    HVS_REQUIRE(hvs_reading_codec_new(s, &c, &err) == 0, "codec: %s", err.msg);
    hvs_reading_t in, out;
    HVS_REQUIRE(judge(good, &in, &err)[0] == '\0', "good");
    snprintf(in.device_id, sizeof in.device_id, "tablet-9");
    hvs_encoder_t *e;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, &err) == 0, "encoder");
    HVS_CHECK(hvs_reading_to_avro(c, &in, "file.jsonl:3", NOW, hvs_encoder_value(e), &err) == 0,
              "to avro");
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(e, &buf, &len, &err) == 0, "encode: %s", err.msg);
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0, "decoder");
    avro_value_t *v;
    HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "decode");
    HVS_CHECK(hvs_reading_from_avro(c, v, &out, &err) == 0, "from avro");
    HVS_CHECK_EQ_STR(out.building_id, in.building_id);
    HVS_CHECK_EQ_STR(out.apartment_id, in.apartment_id);
    HVS_CHECK_EQ_STR(out.device_id, "tablet-9");
    HVS_CHECK_EQ_INT(out.timestamp, in.timestamp);
    HVS_CHECK_EQ_INT(out.n, in.n);
    for (size_t i = 0; i < in.n; i++) {
        HVS_CHECK_EQ_STR(out.v[i].sensor_type, in.v[i].sensor_type);
        HVS_CHECK_EQ_STR(out.v[i].room_name, in.v[i].room_name);
        HVS_CHECK(out.v[i].value == in.v[i].value, "value %zu", i);
    }
    char *json;
    HVS_REQUIRE(hvs_serde_value_to_json(v, &json, &err) == 0, "json");
    HVS_CHECK(strstr(json, "\"source\":\"file.jsonl:3\"") != NULL, "lineage: %s", json);
    HVS_CHECK(strstr(json, "\"ingested_at\":1730030000000") != NULL, "ingested_at: %s", json);
    free(json);
    HVS_CHECK(hvs_reading_validate(&out, NOW, HVS_MS_DAY, &err) == 0, "decoded validates");
    hvs_decoder_destroy(d);
    hvs_encoder_destroy(e);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);
}

/* Encode the value of `e` and decode it with `d`. */
static avro_value_t *through_wire(hvs_encoder_t *e, hvs_decoder_t *d) {
    const void *buf;
    size_t len;
    avro_value_t *v = NULL;
    hvs_err_t err;
    HVS_REQUIRE(hvs_encoder_encode(e, &buf, &len, &err) == 0, "encode: %s", err.msg);
    HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "decode: %s", err.msg);
    return v;
}

/* Records that arrive as Avro get the same checks: the schema allows NaN and long strings. */
static void test_avro_bad(void) {
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_reading_codec_t *c;
    hvs_encoder_t *e;
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_reading_codec_new(s, &c, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0,
                "codec");
    hvs_reading_t in, out;
    avro_value_t *ev; /* hvs_encoder_value resets the value: take it once per record */
    HVS_REQUIRE(judge(good, &in, &err)[0] == '\0', "good");

    in.v[1].value = NAN;
    HVS_REQUIRE(hvs_reading_to_avro(c, &in, NULL, HVS_MS_NONE, (ev = hvs_encoder_value(e)), &err) ==
                    0,
                "to avro");
    HVS_CHECK(hvs_reading_from_avro(c, through_wire(e, d), &out, &err) == 0, "from avro");
    HVS_CHECK(isnan(out.v[1].value), "NaN kept through Avro");
    HVS_CHECK(hvs_reading_validate(&out, NOW, HVS_MS_DAY, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_NON_FINITE) == 0,
              "NaN from Avro: %s", err.reason);

    in.v[1].value = -INFINITY;
    HVS_REQUIRE(hvs_reading_to_avro(c, &in, NULL, HVS_MS_NONE, (ev = hvs_encoder_value(e)), &err) ==
                    0,
                "to avro");
    HVS_CHECK(hvs_reading_from_avro(c, through_wire(e, d), &out, &err) == 0, "from avro");
    HVS_CHECK(hvs_reading_validate(&out, NOW, HVS_MS_DAY, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_NON_FINITE) == 0,
              "-Inf from Avro: %s", err.reason);

    in.v[1].value = 1.0;
    in.timestamp = 0;
    HVS_REQUIRE(hvs_reading_to_avro(c, &in, NULL, HVS_MS_NONE, (ev = hvs_encoder_value(e)), &err) ==
                    0,
                "to avro");
    HVS_CHECK(hvs_reading_from_avro(c, through_wire(e, d), &out, &err) == 0, "from avro");
    HVS_CHECK(hvs_reading_validate(&out, NOW, HVS_MS_DAY, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_TOO_OLD) == 0,
              "1970 from Avro: %s", err.reason);

    /* a 300-byte id written by some other producer */
    in.timestamp = NOW;
    HVS_REQUIRE(hvs_reading_to_avro(c, &in, NULL, HVS_MS_NONE, (ev = hvs_encoder_value(e)), &err) ==
                    0,
                "to avro");
    char big[301];
    memset(big, 'b', 300);
    big[300] = '\0';
    avro_value_t f;
    avro_value_get_by_name(ev, "building_id", &f, NULL);
    avro_value_set_string(&f, big);
    hvs_err_clear(&err);
    HVS_CHECK(hvs_reading_from_avro(c, through_wire(e, d), &out, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_ID_TOO_LONG) == 0,
              "long id from Avro: %s", err.reason);
    /* 33 readings */
    avro_value_t arr, item, sub;
    HVS_REQUIRE(hvs_reading_to_avro(c, &in, NULL, HVS_MS_NONE, (ev = hvs_encoder_value(e)), &err) ==
                    0,
                "to avro");
    avro_value_get_by_name(ev, "readings", &arr, NULL);
    for (int i = (int)in.n; i < HVS_READING_MAX_SENSORS + 1; i++) {
        avro_value_append(&arr, &item, NULL);
        avro_value_get_by_name(&item, "sensor_type", &sub, NULL);
        avro_value_set_string(&sub, "room_temp_c");
        avro_value_get_by_name(&item, "room_name", &sub, NULL);
        avro_value_t nul;
        avro_value_set_branch(&sub, 0, &nul);
        avro_value_get_by_name(&item, "value", &sub, NULL);
        avro_value_set_double(&sub, 20);
    }
    hvs_err_clear(&err);
    HVS_CHECK(hvs_reading_from_avro(c, through_wire(e, d), &out, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_TOO_MANY) == 0,
              "33 readings from Avro: %s", err.reason);
    hvs_decoder_destroy(d);
    hvs_encoder_destroy(e);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);
}

/* A Reading written with the v1 schema (id 1: no device_id/ingested_at/source) read through
 * the codec: resolved to the current schema it converts; as its own writer schema it is
 * refused rather than read at the wrong field indices. */
static void test_avro_v1(void) {
    const struct hvs_embedded_file *f = hvs_embedded_find("history/Reading.v1.avsc");
    HVS_REQUIRE(f, "v1 schema compiled in");
    avro_schema_t v1;
    HVS_REQUIRE(avro_schema_from_json_length((const char *)f->data, f->len, &v1) == 0, "v1");
    avro_value_iface_t *iface = avro_generic_class_from_schema(v1);
    avro_value_t val, fl, arr, item, sub, br;
    avro_generic_value_new(iface, &val);
    avro_value_get_by_name(&val, "building_id", &fl, NULL);
    avro_value_set_string(&fl, "bldg_old");
    avro_value_get_by_name(&val, "apartment_id", &fl, NULL);
    avro_value_set_string(&fl, "apt_1");
    avro_value_get_by_name(&val, "timestamp", &fl, NULL);
    avro_value_set_long(&fl, 1730025000000);
    avro_value_get_by_name(&val, "readings", &arr, NULL);
    avro_value_append(&arr, &item, NULL);
    avro_value_get_by_name(&item, "sensor_type", &sub, NULL);
    avro_value_set_string(&sub, "room_temp_c");
    avro_value_get_by_name(&item, "room_name", &sub, NULL);
    avro_value_set_branch(&sub, 1, &br);
    avro_value_set_string(&br, "kitchen");
    avro_value_get_by_name(&item, "value", &sub, NULL);
    avro_value_set_double(&sub, 20.25);
    char buf[256] = {0, 0, 0, 0, 1};
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write v1: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(v1);

    hvs_serde_t *s;
    hvs_err_t err;
    hvs_reading_codec_t *c;
    hvs_decoder_t *cur, *wr;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_reading_codec_new(s, &c, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_READING, &cur, &err) == 0 &&
                    hvs_decoder_new(s, -1, &wr, &err) == 0,
                "setup");
    avro_value_t *v;
    hvs_reading_t r;
    HVS_REQUIRE(hvs_decoder_decode(cur, buf, len, &v, &err) == 0, "decode: %s", err.msg);
    HVS_CHECK(hvs_reading_from_avro(c, v, &r, &err) == 0, "v1 resolved: %s", err.msg);
    HVS_CHECK_EQ_STR(r.building_id, "bldg_old");
    HVS_CHECK_EQ_STR(r.device_id, "");
    HVS_CHECK_EQ_INT(r.timestamp, 1730025000000);
    HVS_CHECK_EQ_INT(r.n, 1);
    HVS_CHECK_EQ_STR(r.v[0].room_name, "kitchen");
    HVS_CHECK(r.v[0].value == 20.25, "value %g", r.v[0].value);
    /* an older writer never takes the direct way, and reads the same through hvs_reading_decode */
    hvs_reading_t r2;
    bool direct = true;
    HVS_CHECK(hvs_reading_decode(c, cur, buf, len, &r2, &direct, &err) == 0 && !direct,
              "v1 through hvs_reading_decode: %s, direct %d", err.msg, direct);
    HVS_CHECK(strcmp(r2.building_id, "bldg_old") == 0 && r2.n == 1 &&
                  strcmp(r2.v[0].room_name, "kitchen") == 0 && r2.v[0].value == 20.25,
              "v1 read the same both ways");
    HVS_REQUIRE(hvs_decoder_decode(wr, buf, len, &v, &err) == 0, "decode: %s", err.msg);
    hvs_err_clear(&err);
    HVS_CHECK(hvs_reading_from_avro(c, v, &r, &err) != 0 &&
                  strcmp(err.reason, HVS_READING_R_BAD_SCHEMA) == 0,
              "v1 as writer: %s", err.reason);
    hvs_decoder_destroy(cur);
    hvs_decoder_destroy(wr);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) { return hvs_test_rand(&rng_state); }

static void random_id(char *dst, size_t max) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz_0123456789-ÄÖ.";
    size_t n = rnd() % 4 == 0 ? max : rnd() % 24; /* the longest allowed, often */
    for (size_t i = 0; i < n; i++)
        dst[i] = alphabet[rnd() % (sizeof alphabet - 1)];
    dst[n] = '\0';
}

static double random_value(void) {
    static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e308, -4.9e-324};
    if (rnd() % 5 == 0)
        return special[rnd() % (sizeof special / sizeof special[0])];
    double d;
    uint64_t bits = rnd();
    memcpy(&d, &bits, sizeof d); /* any bit pattern: the bytes must come through as they are */
    return d;
}

/* Both readings equal field by field, the values bit for bit. */
static bool same_reading(const hvs_reading_t *a, const hvs_reading_t *b) {
    if (strcmp(a->building_id, b->building_id) || strcmp(a->apartment_id, b->apartment_id) ||
        strcmp(a->device_id, b->device_id) || a->timestamp != b->timestamp || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].sensor_type, b->v[i].sensor_type) ||
            strcmp(a->v[i].room_name, b->v[i].room_name) ||
            memcmp(&a->v[i].value, &b->v[i].value, sizeof(double)))
            return false;
    return true;
}

/*
 * The direct reader against avro-c's generic one: random Readings of the current schema read
 * the same both ways (and take the direct way); then the same messages cut, extended and with
 * bytes changed - whatever the direct reader accepts must be what the generic one reads, and
 * whatever it declines gets the generic one's result and error.
 */
static void test_direct(void) {
    hvs_serde_t *s;
    hvs_err_t err;
    hvs_reading_codec_t *c;
    hvs_encoder_t *e;
    hvs_decoder_t *d, *ref;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_reading_codec_new(s, &c, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_READING, &ref, &err) == 0,
                "setup");
    HVS_REQUIRE(hvs_reading_codec_direct(c),
                "the direct reader is on for the current schema "
                "(HVS_LAYOUT_READING in layouts.h matches Reading.avsc)");
    int direct_ok = 0, mutated = 0, mutated_direct = 0, mutated_rejected = 0;
    static unsigned char msg[16384];
    for (int round = 0; round < 3000; round++) {
        hvs_reading_t in;
        memset(&in, 0, sizeof in);
        random_id(in.building_id, HVS_READING_ID_MAX);
        random_id(in.apartment_id, HVS_READING_ID_MAX);
        if (rnd() % 2)
            random_id(in.device_id, HVS_READING_ID_MAX);
        in.timestamp = (int64_t)rnd() >> (rnd() % 64);
        in.n = rnd() % (HVS_READING_MAX_SENSORS + 1);
        for (size_t i = 0; i < in.n; i++) {
            random_id(in.v[i].sensor_type, rnd() % 8 ? 20 : HVS_READING_ID_MAX);
            if (rnd() % 2)
                random_id(in.v[i].room_name, 20);
            in.v[i].value = random_value();
        }
        const char *source = rnd() % 2 ? "file.jsonl:7" : NULL;
        hvs_ms_t ingested = rnd() % 2 ? (int64_t)rnd() : HVS_MS_NONE;
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_reading_to_avro(c, &in, source, ingested, hvs_encoder_value(e), &err) ==
                            0 &&
                        hvs_encoder_encode(e, &buf, &len, &err) == 0 && len < sizeof msg,
                    "encode round %d: %s", round, err.msg);
        memcpy(msg, buf, len);
        hvs_reading_t got, want;
        avro_value_t *v;
        bool direct = false;
        HVS_REQUIRE(hvs_decoder_decode(ref, msg, len, &v, &err) == 0 &&
                        hvs_reading_from_avro(c, v, &want, &err) == 0,
                    "generic round %d: %s", round, err.msg);
        int rc = hvs_reading_decode(c, d, msg, len, &got, &direct, &err);
        HVS_CHECK(rc == 0 && direct && same_reading(&got, &want), "round %d: rc %d direct %d",
                  round, rc, direct);
        direct_ok += rc == 0 && direct && same_reading(&got, &want) && same_reading(&got, &in);
        /* now damage it: a cut, a byte more, a byte changed, a byte inserted */
        for (int k = 0; k < 4; k++) {
            unsigned char saved[16384];
            memcpy(saved, msg, len);
            size_t at, mlen = hvs_test_damage(msg, len, k, &rng_state, &at);
            hvs_err_t e1, e2;
            hvs_err_clear(&e1);
            hvs_err_clear(&e2);
            int rc_ref = hvs_decoder_decode(ref, msg, mlen, &v, &e1);
            if (rc_ref == 0)
                rc_ref = hvs_reading_from_avro(c, v, &want, &e1);
            direct = false;
            int rc_got = hvs_reading_decode(c, d, msg, mlen, &got, &direct, &e2);
            mutated++;
            mutated_direct += direct;
            mutated_rejected += rc_ref != 0;
            HVS_CHECK(rc_got == rc_ref && strcmp(e1.reason, e2.reason) == 0 &&
                          (rc_ref != 0 || same_reading(&got, &want)),
                      "round %d damage %d at %zu: generic rc %d (%s), hvs_reading_decode rc %d "
                      "(%s), direct %d",
                      round, k, at, rc_ref, e1.reason, rc_got, e2.reason, direct);
            memcpy(msg, saved, len);
        }
    }
    HVS_CHECK_EQ_INT(direct_ok, 3000);
    /* the damage must exercise both sides: some messages still valid, most refused */
    HVS_CHECK(mutated_direct > 100 && mutated_rejected > 1000,
              "%d damaged messages: %d read directly, %d refused", mutated, mutated_direct,
              mutated_rejected);
    hvs_decoder_destroy(d);
    hvs_decoder_destroy(ref);
    hvs_encoder_destroy(e);
    hvs_reading_codec_destroy(c);
    hvs_serde_destroy(s);
}

static const hvs_test_case_t cases[] = {
    {"good", test_good},         {"bad", test_bad},         {"avro_roundtrip", test_avro_roundtrip},
    {"avro_bad", test_avro_bad}, {"avro_v1", test_avro_v1}, {"direct", test_direct},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
