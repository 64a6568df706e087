/*
 * reading: the seeds' JSON lines parsed and validated, each kind of bad line with its own
 * reason, and the Avro round trip through the real Reading schema and wire format.
 */
#include "hvs/reading.h"
#include "hvs/log.h"
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
#define L(ts, rd) "{\"timestamp_str\": \"" ts "\", \"building_id\": \"b\", \"apartment_id\": \"a\", \"readings\": [" rd "]}"
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
        {L("2024-10-27T10:30:00Z", T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T
           "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T "," T
           "," T "," T "," T "," T "," T "," T "," T "," T),
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

int main(void) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    test_good();
    test_bad();
    test_avro_roundtrip();
    return hvs_test_done();
}
