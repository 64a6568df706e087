/*
 * serde: every record's sample round-trips JSON -> Avro (wire format) -> JSON unchanged; each
 * kind of broken message gets its own reason; an old writer version decodes into the current
 * reader with defaults (Reading v1, Aggregate v1) and a v1 reader drops what v2 added (Aggregate
 * rooms); JSON input errors name the field; random corruption never crashes; and
 * the Schema Registry client registers and fetches ids over real HTTP (a registry served by our
 * own http module on loopback).
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "hvs/embedded.h"
#include "hvs/http.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"
/* hvs_serde_resolve_copy: the by-name copy an older reader applies to newer bytes */
#include "../../common/platform/src/serde_internal.h"

static char *read_sample(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/samples/%s.json", HVS_TEST_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    HVS_REQUIRE(f, "open %s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static int json_text_equal(const char *a, const char *b) {
    json_t *ja = json_loads(a, JSON_ALLOW_NUL, NULL), *jb = json_loads(b, JSON_ALLOW_NUL, NULL);
    int eq = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return eq;
}

/* Encode sample JSON of `kind`; returns a malloc'd copy of the wire bytes. */
static unsigned char *encode_json(hvs_serde_t *s, int kind, const char *json, size_t *len) {
    hvs_encoder_t *e;
    hvs_err_t err;
    HVS_REQUIRE(hvs_encoder_new(s, kind, NULL, &e, &err) == 0, "encoder: %s", err.msg);
    int rc = hvs_serde_value_from_json(s, hvs_encoder_value(e), json, strlen(json), &err);
    HVS_CHECK(rc == 0, "%s from_json: %s", hvs_schema_name(kind), err.msg);
    const void *buf;
    rc = hvs_encoder_encode(e, &buf, len, &err);
    HVS_CHECK(rc == 0, "%s encode: %s", hvs_schema_name(kind), err.msg);
    unsigned char *copy = malloc(*len ? *len : 1);
    memcpy(copy, buf, *len);
    hvs_encoder_destroy(e);
    return copy;
}

/* Fields by name on a decoded record: string, nullable string, long, int, nullable double,
 * null, missing, wrong type. */
static void test_fields(hvs_serde_t *s) {
    static const char json[] =
        "{\"building_id\":\"b1\",\"apartment_id\":\"a7\",\"window_start\":1727740800000,"
        "\"window_end\":1727744400000,\"window_size_ms\":3600000,\"revision\":3,\"heating_kwh\":2.5,"
        "\"hot_water_litres\":null,\"room_temp_mean_c\":null,\"room_temp_min_c\":null,"
        "\"room_temp_max_c\":null,\"setpoint_mean_c\":null,\"comfort_gap_mean_c\":null,"
        "\"readings_expected\":4,\"readings_seen\":4,\"reporting_apartments\":null,"
        "\"known_apartments\":null,\"quality\":\"COMPLETE\",\"flags\":[],\"emitted_at\":1}";
    size_t len;
    unsigned char *bytes = encode_json(s, HVS_SCHEMA_AGGREGATE, json, &len);
    hvs_decoder_t *d;
    hvs_err_t err;
    avro_value_t *v;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_AGGREGATE, &d, &err) == 0 &&
                    hvs_decoder_decode(d, bytes, len, &v, &err) == 0,
                "decode: %s", err.msg);
    const char *b = hvs_serde_field_str(v, "building_id"),
               *a = hvs_serde_field_str(v, "apartment_id");
    HVS_CHECK(b && strcmp(b, "b1") == 0 && a && strcmp(a, "a7") == 0, "strings: %s %s", b ? b : "-",
              a ? a : "-");
    HVS_CHECK(hvs_serde_field_long(v, "window_start") == 1727740800000LL &&
                  hvs_serde_field_long(v, "revision") == 3 && hvs_serde_field_long(v, "nope") == 0,
              "longs and ints: %lld %lld", (long long)hvs_serde_field_long(v, "window_start"),
              (long long)hvs_serde_field_long(v, "revision"));
    HVS_CHECK(hvs_serde_field_double(v, "heating_kwh") == 2.5 &&
                  isnan(hvs_serde_field_double(v, "hot_water_litres")) &&
                  isnan(hvs_serde_field_double(v, "nope")) &&
                  hvs_serde_field_str(v, "nope") == NULL &&
                  hvs_serde_field_str(v, "window_start") == NULL,
              "nullable double, null, missing, wrong type");
    hvs_decoder_destroy(d);
    free(bytes);
}

static void test_roundtrip_all(hvs_serde_t *s) {
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++) {
        const char *name = hvs_schema_name(k) + strlen("hvacstream.");
        char *json = read_sample(name);
        size_t len;
        unsigned char *bytes = encode_json(s, k, json, &len);
        int32_t id;
        HVS_CHECK(hvs_serde_read_header(bytes, len, &id, NULL) == 0 && id > 0, "%s header", name);
        hvs_decoder_t *d;
        hvs_err_t err;
        HVS_REQUIRE(hvs_decoder_new(s, k, &d, &err) == 0, "decoder");
        avro_value_t *v;
        int rc = hvs_decoder_decode(d, bytes, len, &v, &err);
        HVS_CHECK(rc == 0, "%s decode: %s", name, err.msg);
        if (rc == 0) {
            char *back;
            HVS_REQUIRE(hvs_serde_value_to_json(v, &back, &err) == 0, "to_json");
            HVS_CHECK(json_text_equal(json, back), "%s round trip:\n in: %s\nout: %s", name, json,
                      back);
            free(back);
        }
        /* The any-schema decoder (hvsctl tail) gives the same JSON. */
        hvs_decoder_t *any;
        HVS_REQUIRE(hvs_decoder_new(s, -1, &any, &err) == 0, "any decoder");
        HVS_CHECK(hvs_decoder_decode(any, bytes, len, &v, &err) == 0, "%s any: %s", name, err.msg);
        HVS_CHECK_EQ_INT(hvs_decoder_last_schema_id(any), id);
        hvs_decoder_destroy(any);
        hvs_decoder_destroy(d);
        free(bytes);
        free(json);
    }
}

static void expect_reason(hvs_decoder_t *d, const void *buf, size_t len, const char *reason,
                          const char *what) {
    avro_value_t *v;
    hvs_err_t err;
    hvs_err_clear(&err);
    int rc = hvs_decoder_decode(d, buf, len, &v, &err);
    HVS_CHECK(rc == HVS_ESERDE && strcmp(err.reason, reason) == 0,
              "%s: rc %d reason \"%s\" (want %s): %s", what, rc, err.reason, reason, err.msg);
}

static void test_bad_messages(hvs_serde_t *s) {
    char *json = read_sample("Reading");
    size_t len;
    unsigned char *good = encode_json(s, HVS_SCHEMA_READING, json, &len);
    free(json);
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, NULL) == 0, "decoder");
    expect_reason(d, good, 3, HVS_SERDE_R_TRUNCATED, "3 bytes");
    expect_reason(d, good, len - 4, HVS_SERDE_R_TRUNCATED, "body cut short");
    unsigned char *m = malloc(len + 1);
    memcpy(m, good, len);
    m[0] = 1;
    expect_reason(d, m, len, HVS_SERDE_R_BAD_MAGIC, "magic 1");
    memcpy(m, good, len);
    m[1] = 0, m[2] = 0, m[3] = 0x03, m[4] = 0xe7; /* id 999 */
    expect_reason(d, m, len, HVS_SERDE_R_UNKNOWN_SCHEMA, "id 999");
    memcpy(m, good, len);
    m[len] = 0x02;
    expect_reason(d, m, len + 1, HVS_SERDE_R_TRAILING, "extra byte");
    /* A valid message of another record type on this topic. */
    char *fjson = read_sample("Feedback");
    size_t flen;
    unsigned char *fb = encode_json(s, HVS_SCHEMA_FEEDBACK, fjson, &flen);
    expect_reason(d, fb, flen, HVS_SERDE_R_SCHEMA_MISMATCH, "Feedback on a Reading decoder");
    free(fb);
    free(fjson);
    /* Garbage body: an enormous negative array block count. */
    unsigned char garbage[] = {0, 0, 0, 0, 12, 0x02, 'b', 0x02, 'a', 0x80, 0x01, 0x7f, 0x55};
    avro_value_t *v;
    hvs_err_t err;
    HVS_CHECK(hvs_decoder_decode(d, garbage, sizeof garbage, &v, &err) == HVS_ESERDE,
              "garbage body rejected");
    HVS_CHECK(strcmp(err.reason, HVS_SERDE_R_AVRO) == 0 ||
                  strcmp(err.reason, HVS_SERDE_R_TRUNCATED) == 0,
              "garbage reason %s", err.reason);

    /* Random corruption: every outcome is a clean result or a clean error (ASan watches). */
    srand(7);
    int decoded = 0, rejected = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(m, good, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            m[HVS_SERDE_HEADER_LEN + (size_t)rand() % (len - HVS_SERDE_HEADER_LEN)] =
                (unsigned char)rand();
        size_t cut = len - (size_t)(rand() % 3);
        if (hvs_decoder_decode(d, m, cut, &v, &err) == 0)
            decoded++;
        else
            rejected++;
    }
    HVS_CHECK(rejected > 0 && decoded + rejected == 20000, "fuzz %d ok %d rejected", decoded,
              rejected);
    /* The decoder still works after all that. */
    HVS_CHECK(hvs_decoder_decode(d, good, len, &v, &err) == 0, "good after fuzz: %s", err.msg);
    free(m);
    free(good);
    hvs_decoder_destroy(d);
}

/* Every record kind: random byte changes and cuts anywhere in the body, decoded by its own
 * decoder and by the any-schema one; each outcome is a value or a clean serde error. */
static void test_fuzz_all(hvs_serde_t *s) {
    srand(11);
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++) {
        const char *name = hvs_schema_name(k) + strlen("hvacstream.");
        char *json = read_sample(name);
        size_t len;
        unsigned char *good = encode_json(s, k, json, &len);
        unsigned char *m = malloc(len);
        hvs_decoder_t *d, *any;
        HVS_REQUIRE(hvs_decoder_new(s, k, &d, NULL) == 0 && hvs_decoder_new(s, -1, &any, NULL) == 0,
                    "decoders");
        int bad = 0, rejected = 0;
        for (int i = 0; i < 3000; i++) {
            memcpy(m, good, len);
            for (int f = rand() % 6; f > 0; f--)
                m[HVS_SERDE_HEADER_LEN + (size_t)rand() % (len - HVS_SERDE_HEADER_LEN)] =
                    (unsigned char)rand();
            size_t cut = i % 3 == 0 ? HVS_SERDE_HEADER_LEN + (size_t)rand() % (len - 4) : len;
            avro_value_t *v;
            hvs_err_t err;
            hvs_err_clear(&err);
            for (int which = 0; which < 2; which++) {
                int rc = hvs_decoder_decode(which ? any : d, m, cut, &v, &err);
                if (rc != 0) {
                    rejected++;
                    bad += rc != HVS_ESERDE || !err.reason[0];
                }
            }
        }
        HVS_CHECK(bad == 0 && rejected > 0, "%s fuzz: %d rejected, %d without a serde reason", name,
                  rejected, bad);
        hvs_decoder_destroy(any);
        hvs_decoder_destroy(d);
        free(m);
        free(good);
        free(json);
    }
}

/* Bytes of a Reading written with the v1 schema (no device_id/ingested_at/source). */
static void test_evolution(hvs_serde_t *s) {
    const struct hvs_embedded_file *f = hvs_embedded_find("history/Reading.v1.avsc");
    HVS_REQUIRE(f, "v1 schema compiled in");
    avro_schema_t v1;
    HVS_REQUIRE(avro_schema_from_json_length((const char *)f->data, f->len, &v1) == 0, "parse v1");
    avro_value_iface_t *iface = avro_generic_class_from_schema(v1);
    avro_value_t val, field, arr, item, sub;
    avro_generic_value_new(iface, &val);
    avro_value_get_by_name(&val, "building_id", &field, NULL);
    avro_value_set_string(&field, "bldg_old");
    avro_value_get_by_name(&val, "apartment_id", &field, NULL);
    avro_value_set_string(&field, "apt_1");
    avro_value_get_by_name(&val, "timestamp", &field, NULL);
    avro_value_set_long(&field, 1730025000000);
    avro_value_get_by_name(&val, "readings", &arr, NULL);
    avro_value_append(&arr, &item, NULL);
    avro_value_get_by_name(&item, "sensor_type", &sub, NULL);
    avro_value_set_string(&sub, "room_temp_c");
    avro_value_get_by_name(&item, "room_name", &sub, NULL);
    avro_value_t br;
    avro_value_set_branch(&sub, 1, &br);
    avro_value_set_string(&br, "kitchen");
    avro_value_get_by_name(&item, "value", &sub, NULL);
    avro_value_set_double(&sub, 20.25);
    char buf[256] = {0, 0, 0, 0, 1}; /* id 1 = history/Reading.v1 in schema-ids.tsv */
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write v1: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(v1);

    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, NULL) == 0, "decoder");
    avro_value_t *v;
    hvs_err_t err;
    HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "v1 decode: %s", err.msg);
    char *json;
    HVS_REQUIRE(hvs_serde_value_to_json(v, &json, &err) == 0, "json");
    HVS_CHECK(json_text_equal(json, "{\"building_id\":\"bldg_old\",\"apartment_id\":\"apt_1\","
                                    "\"timestamp\":1730025000000,\"readings\":[{\"sensor_type\":"
                                    "\"room_temp_c\",\"room_name\":\"kitchen\",\"value\":20.25}],"
                                    "\"device_id\":null,\"ingested_at\":null,\"source\":null}"),
              "v1 read as current: %s", json);
    free(json);
    HVS_CHECK_EQ_INT(hvs_decoder_last_schema_id(d), 1);
    hvs_decoder_destroy(d);
}

/* The sample Aggregate without `rooms` (what Aggregate v1, id 4, can say), as JSON text. */
static avro_schema_t history_schema(const char *path) {
    const struct hvs_embedded_file *f = hvs_embedded_find(path);
    HVS_REQUIRE(f, "%s compiled in", path);
    avro_schema_t v1;
    HVS_REQUIRE(avro_schema_from_json_length((const char *)f->data, f->len, &v1) == 0, "parse %s",
                path);
    return v1;
}

/*
 * One evolution in both directions: v1 bytes (schema id v1_id, the history file) decode into the
 * current reader as v1_json plus `added` (the new fields' defaults); the current sample's bytes
 * (id v2_id) read by a v1 reader (serde's by-name copy, what an older consumer does) give
 * `as_v1` (the new fields dropped, enum symbols a v1 reader lacks mapped to its default).
 */
static void check_evolution(hvs_serde_t *s, const char *name, int kind, int v1_id, int v2_id,
                            const char *v1_path, const char *v1_json, const char *added,
                            const char *as_v1) {
    avro_schema_t v1 = history_schema(v1_path);
    avro_value_iface_t *iface = avro_generic_class_from_schema(v1);
    avro_value_t val;
    HVS_REQUIRE(avro_generic_value_new(iface, &val) == 0, "v1 value");
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_value_from_json(s, &val, v1_json, strlen(v1_json), &err) == 0,
                "fill %s v1: %s", name, err.msg);
    char buf[2048] = {0, 0, 0, 0, (char)v1_id};
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write v1: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);

    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, kind, &d, NULL) == 0, "decoder");
    avro_value_t *v;
    HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "%s v1 decode: %s", name, err.msg);
    HVS_CHECK_EQ_INT(hvs_decoder_last_schema_id(d), v1_id);
    char *json;
    HVS_REQUIRE(hvs_serde_value_to_json(v, &json, &err) == 0, "json");
    json_t *want = json_loads(v1_json, JSON_ALLOW_NUL, NULL), *add = json_loads(added, 0, NULL);
    json_object_update(want, add);
    json_t *got = json_loads(json, JSON_ALLOW_NUL, NULL);
    HVS_CHECK(got && json_equal(got, want), "%s v1 read as current: %s", name, json);
    json_decref(got), json_decref(want), json_decref(add);
    free(json);
    hvs_decoder_destroy(d);

    char *v2_json = read_sample(name);
    size_t n2;
    unsigned char *b2 = encode_json(s, kind, v2_json, &n2);
    int32_t id = 0;
    HVS_REQUIRE(hvs_serde_read_header(b2, n2, &id, &err) == 0 && id == v2_id, "%s v2 id %d", name,
                id);
    avro_schema_t v2 = hvs_serde_schema(s, kind);
    avro_value_iface_t *iface2 = avro_generic_class_from_schema(v2);
    avro_value_t wv, rv;
    HVS_REQUIRE(avro_generic_value_new(iface2, &wv) == 0 && avro_generic_value_new(iface, &rv) == 0,
                "values");
    avro_reader_t rd = avro_reader_memory((const char *)b2 + 5, (int64_t)(n2 - 5));
    HVS_REQUIRE(avro_value_read(rd, &wv) == 0, "read v2: %s", avro_strerror());
    avro_reader_free(rd);
    HVS_REQUIRE(hvs_serde_resolve_copy(s->defaults, &wv, &rv, "", &err) == 0, "v2 -> v1: %s",
                err.msg);
    HVS_REQUIRE(hvs_serde_value_to_json(&rv, &json, &err) == 0, "json");
    HVS_CHECK(json_text_equal(json, as_v1), "%s v2 read by v1: %s", name, json);
    free(json);
    avro_value_decref(&wv);
    avro_value_decref(&rv);
    avro_value_iface_decref(iface2);
    free(b2);
    free(v2_json);
    avro_value_iface_decref(iface);
    avro_schema_decref(v1);
}

/* The current sample without the fields v1 lacked (and with `set` applied), as JSON text. */
static char *sample_as_v1(const char *name, const char *const *drop, const char *set) {
    char *text = read_sample(name);
    json_t *j = json_loads(text, JSON_ALLOW_NUL, NULL); /* model bytes hold NULs */
    for (int i = 0; drop[i]; i++) {
        HVS_REQUIRE(json_object_get(j, drop[i]), "%s sample has %s", name, drop[i]);
        json_object_del(j, drop[i]);
    }
    if (set) {
        json_t *o = json_loads(set, 0, NULL);
        json_object_update(j, o);
        json_decref(o);
    }
    free(text);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

/* Aggregate v1 (id 4) bytes decode into the current reader with rooms = [] and uncounted_kwh
 * null, v2 (id 14) with uncounted_kwh null; v3 (id 18) bytes read by a v1 reader drop both, by a
 * v2 reader the uncounted_kwh. AnomalyScore v1 (id 7) reads with revision 0 and no
 * models, rules or components; v2 (id 15) read by a v1 reader drops them and maps COMBINED to
 * UNKNOWN (the v1 enum's default). */
static void test_aggregate_evolution(hvs_serde_t *s) {
    const char *agg_new[] = {"rooms", "uncounted_kwh", NULL};
    char *agg_v1 = sample_as_v1("Aggregate", agg_new, NULL);
    check_evolution(s, "Aggregate", HVS_SCHEMA_AGGREGATE, 4, 18, "history/Aggregate.v1.avsc",
                    agg_v1, "{\"rooms\":[],\"uncounted_kwh\":null}", agg_v1);
    free(agg_v1);
    /* v2 (id 14, rooms) against v3 (id 18, uncounted_kwh) */
    const char *agg3_new[] = {"uncounted_kwh", NULL};
    char *agg_v2 = sample_as_v1("Aggregate", agg3_new, NULL);
    check_evolution(s, "Aggregate", HVS_SCHEMA_AGGREGATE, 14, 18, "history/Aggregate.v2.avsc",
                    agg_v2, "{\"uncounted_kwh\":null}", agg_v2);
    free(agg_v2);
    const char *sc_new[] = {"revision", "models", "rules", "rule_score", "residual_z", NULL};
    char *sc_v1 = sample_as_v1("AnomalyScore", sc_new, "{\"strategy\":\"RESIDUAL\"}");
    char *sc_as_v1 = sample_as_v1("AnomalyScore", sc_new, "{\"strategy\":\"UNKNOWN\"}");
    check_evolution(s, "AnomalyScore", HVS_SCHEMA_ANOMALY_SCORE, 7, 15,
                    "history/AnomalyScore.v1.avsc", sc_v1,
                    "{\"revision\":0,\"models\":[],\"rules\":[],\"rule_score\":null,"
                    "\"residual_z\":null}",
                    sc_as_v1);
    free(sc_v1);
    free(sc_as_v1);
}

/* The Building sample without the fields `drop` (and without every apartment's meter): a v1-v3
 * record; with apt_null, the JSON of the apartments as the current reader reads it back (their
 * meter null), as {"apartments": [...]} merged with `added`. */
static char *bld_old(const char *const *drop, const char *added, bool apt_null) {
    char *text = sample_as_v1("Building", drop, NULL);
    json_t *j = json_loads(text, 0, NULL), *apts = json_object_get(j, "apartments");
    size_t i;
    json_t *a;
    json_array_foreach(apts, i, a) {
        HVS_REQUIRE(json_object_get(a, "meter"), "the sample's apartment has a meter");
        if (apt_null)
            json_object_set_new(a, "meter", json_null());
        else
            json_object_del(a, "meter");
    }
    free(text);
    if (apt_null) {
        json_t *o = json_loads(added, 0, NULL);
        json_object_set(o, "apartments", apts);
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    } else {
        text = json_dumps(j, JSON_COMPACT);
    }
    json_decref(j);
    return text;
}

/* Building v1 (id 3) bytes decode into the current reader with team = null (the default team)
 * and meter = null (the apartments' too); v4 (id 20) bytes read by a v1 reader drop them; v2
 * (id 16) likewise for the meters alone, v3 (id 17) for the apartments' meters alone. */
static void test_building_evolution(hvs_serde_t *s) {
    static const struct {
        const char *path;
        int id;
        const char *drop[3];
        const char *added;
    } v[] = {
        {"history/Building.v1.avsc", 3, {"team", "meter", NULL}, "{\"team\":null,\"meter\":null}"},
        {"history/Building.v2.avsc", 16, {"meter", NULL}, "{\"meter\":null}"},
        {"history/Building.v3.avsc", 17, {NULL}, "{}"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *old = bld_old(v[i].drop, NULL, false);
        char *added = bld_old(v[i].drop, v[i].added, true);
        check_evolution(s, "Building", HVS_SCHEMA_BUILDING, v[i].id, 20, v[i].path, old, added,
                        old);
        free(old);
        free(added);
    }
}

/* ModelVersion v1 (id 11) bytes decode into the current reader with folds = []; v2 (id 19,
 * per-fold backtest figures) read by a v1 reader drop the folds. */
static void test_model_version_evolution(hvs_serde_t *s) {
    const char *mv_new[] = {"folds", NULL};
    char *mv_v1 = sample_as_v1("ModelVersion", mv_new, NULL);
    check_evolution(s, "ModelVersion", HVS_SCHEMA_MODEL_VERSION, 11, 19,
                    "history/ModelVersion.v1.avsc", mv_v1, "{\"folds\":[]}", mv_v1);
    free(mv_v1);
}


/* A newer Feedback writer (registered at run time as id 900) with an extra enum symbol and an
 * extra field: the current reader drops the field and maps the symbol to the enum's default. */
static void test_newer_writer(hvs_serde_t *s) {
    const struct hvs_embedded_file *f = hvs_embedded_find("Feedback.avsc");
    HVS_REQUIRE(f, "Feedback.avsc compiled in");
    json_t *sch = json_loadb((const char *)f->data, f->len, 0, NULL);
    HVS_REQUIRE(sch, "Feedback.avsc is JSON");
    json_t *fields = json_object_get(sch, "fields"), *fld;
    size_t i;
    json_array_foreach(
        fields, i, fld) if (strcmp(json_string_value(json_object_get(fld, "name")), "label") == 0)
        json_array_append_new(json_object_get(json_object_get(fld, "type"), "symbols"),
                              json_string("DUPLICATE"));
    json_array_append_new(fields, json_pack("{s:s,s:[s,s],s:n,s:s}", "name", "photo_url", "type",
                                            "null", "string", "default", "doc", "Photo."));
    char *text = json_dumps(sch, JSON_COMPACT);
    json_decref(sch);
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_add_schema(s, 900, text, &err) == 0, "add v2: %s", err.msg);
    HVS_CHECK(hvs_serde_add_schema(s, 900, text, &err) == 0, "same schema again is fine");
    HVS_CHECK(hvs_serde_add_schema(s, 2, text, &err) == HVS_EINVAL, "id 2 is taken");

    avro_schema_t v2;
    HVS_REQUIRE(avro_schema_from_json_length(text, strlen(text), &v2) == 0, "parse v2");
    free(text);
    avro_value_iface_t *iface = avro_generic_class_from_schema(v2);
    avro_value_t val;
    avro_generic_value_new(iface, &val);
    const char *json = "{\"alert_id\":\"apt_1#2024-10-27#ANOMALY\",\"building_id\":\"b\","
                       "\"technician_id\":\"t\",\"label\":\"DUPLICATE\",\"labelled_at\":5,"
                       "\"photo_url\":\"http://x/y.jpg\"}";
    HVS_REQUIRE(hvs_serde_value_from_json(s, &val, json, strlen(json), &err) == 0, "fill v2: %s",
                err.msg);
    char buf[512] = {0, 0, 0, 0x03, 0x84}; /* id 900 */
    avro_writer_t w = avro_writer_memory(buf + 5, sizeof buf - 5);
    HVS_REQUIRE(avro_value_write(w, &val) == 0, "write v2: %s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(v2);

    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_FEEDBACK, &d, NULL) == 0, "decoder");
    avro_value_t *v;
    HVS_REQUIRE(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "v2 decode: %s", err.msg);
    char *out;
    HVS_REQUIRE(hvs_serde_value_to_json(v, &out, &err) == 0, "json");
    json_t *got = json_loads(out, 0, NULL);
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(got, "label")), "UNSURE");
    HVS_CHECK(json_object_get(got, "photo_url") == NULL, "writer-only field dropped: %s", out);
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(got, "alert_id")),
                     "apt_1#2024-10-27#ANOMALY");
    HVS_CHECK(json_is_null(json_object_get(got, "root_cause")), "default null: %s", out);
    json_decref(got);
    free(out);
    /* The any-schema decoder shows the writer's own view. */
    hvs_decoder_t *any;
    HVS_REQUIRE(hvs_decoder_new(s, -1, &any, NULL) == 0, "any decoder");
    HVS_REQUIRE(hvs_decoder_decode(any, buf, len, &v, &err) == 0, "any: %s", err.msg);
    HVS_REQUIRE(hvs_serde_value_to_json(v, &out, &err) == 0, "json");
    got = json_loads(out, 0, NULL);
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(got, "label")), "DUPLICATE");
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(got, "photo_url")), "http://x/y.jpg");
    json_decref(got);
    free(out);
    hvs_decoder_destroy(any);
    hvs_decoder_destroy(d);
}

static void test_json_errors(hvs_serde_t *s) {
    hvs_encoder_t *e;
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_READING, NULL, &e, NULL) == 0, "encoder");
    static const struct {
        const char *json, *reason, *names;
    } cases[] = {
        {"{\"apartment_id\":\"a\",\"timestamp\":1,\"readings\":[]}", HVS_SERDE_R_JSON_MISSING,
         "building_id"},
        {"{\"building_id\":\"b\",\"apartment_id\":\"a\",\"timestamp\":\"noon\",\"readings\":[]}",
         HVS_SERDE_R_JSON_TYPE, "timestamp"},
        {"{\"building_id\":\"b\",\"apartment_id\":\"a\",\"timestamp\":1,\"readings\":[{"
         "\"sensor_type\":\"x\",\"value\":\"hot\"}]}",
         HVS_SERDE_R_JSON_TYPE, "readings[0].value"},
        {"{\"building_id\":\"b\",\"apartment_id\":\"a\",\"timestamp\":1,\"readings\":[{"
         "\"value\":1}]}",
         HVS_SERDE_R_JSON_MISSING, "readings[0].sensor_type"},
        {"{\"building_id\": ", HVS_SERDE_R_JSON_SYNTAX, "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hvs_err_t err;
        hvs_err_clear(&err);
        int rc = hvs_serde_value_from_json(s, hvs_encoder_value(e), cases[i].json,
                                           strlen(cases[i].json), &err);
        HVS_CHECK(rc == HVS_ESERDE, "case %zu accepted", i);
        HVS_CHECK_EQ_STR(err.reason, cases[i].reason);
        HVS_CHECK(strstr(err.msg, cases[i].names) != NULL, "\"%s\" names %s", err.msg,
                  cases[i].names);
    }
    /* Optional fields left out take their defaults; the message encodes. */
    const char *minimal = "{\"building_id\":\"b\",\"apartment_id\":\"a\",\"timestamp\":1,"
                          "\"readings\":[{\"sensor_type\":\"room_temp_c\",\"value\":20}]}";
    hvs_err_t err;
    HVS_CHECK(hvs_serde_value_from_json(s, hvs_encoder_value(e), minimal, strlen(minimal), &err) ==
                  0,
              "minimal: %s", err.msg);
    const void *buf;
    size_t len;
    HVS_CHECK(hvs_encoder_encode(e, &buf, &len, &err) == 0, "encode minimal: %s", err.msg);
    hvs_encoder_destroy(e);
}

/* ---- a Schema Registry on loopback (ids from 1001, subjects remembered) ---- */

typedef struct registry {
    pthread_mutex_t lock;
    char *schemas[16];
    char subjects[16][128];
    int n;
    int registrations, fetches;
} registry_t;

static int registry_route(void *opaque, const char *method, const char *path, const char *query,
                          const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)query;
    registry_t *r = opaque;
    pthread_mutex_lock(&r->lock);
    resp->content_type = "application/vnd.schemaregistry.v1+json";
    json_t *out = NULL;
    int id;
    if (strcmp(method, "POST") == 0 && strncmp(path, "/subjects/", 10) == 0) {
        json_t *req = json_loadb(body, body_len, 0, NULL);
        const char *schema = json_string_value(json_object_get(req, "schema"));
        int found = -1;
        for (int i = 0; schema && i < r->n; i++)
            if (strcmp(r->schemas[i], schema) == 0)
                found = i;
        if (schema && found < 0 && r->n < 16) {
            found = r->n++;
            r->schemas[found] = strdup(schema);
            snprintf(r->subjects[found], sizeof r->subjects[found], "%s", path + 10);
        }
        r->registrations++;
        out = found >= 0 ? json_pack("{s:i}", "id", 1001 + found) : NULL;
        json_decref(req);
        resp->status = out ? 200 : 422;
    } else if (strcmp(method, "GET") == 0 && sscanf(path, "/schemas/ids/%d", &id) == 1 &&
               id >= 1001 && id < 1001 + r->n) {
        r->fetches++;
        out = json_pack("{s:s}", "schema", r->schemas[id - 1001]);
        resp->status = 200;
    } else {
        out = json_pack("{s:i,s:s}", "error_code", 40403, "message", "Schema not found");
        resp->status = 404;
    }
    if (out) {
        resp->body = json_dumps(out, JSON_COMPACT);
        resp->body_len = strlen(resp->body);
        json_decref(out);
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void test_registry(void) {
    registry_t reg;
    memset(&reg, 0, sizeof reg);
    pthread_mutex_init(&reg.lock, NULL);
    hvs_http_t *h;
    hvs_err_t err;
    HVS_REQUIRE(hvs_http_start(0, 0, NULL, NULL, NULL, &h, &err) == 0, "registry server");
    hvs_http_route(h, "/subjects/", registry_route, &reg, &err);
    hvs_http_route(h, "/schemas/ids/", registry_route, &reg, &err);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", hvs_http_port(h));

    hvs_serde_t *producer_side, *consumer_side;
    HVS_REQUIRE(hvs_serde_new(url, &producer_side, &err) == 0, "serde: %s", err.msg);
    HVS_REQUIRE(hvs_serde_new(url, &consumer_side, &err) == 0, "serde: %s", err.msg);
    hvs_encoder_t *e;
    HVS_REQUIRE(hvs_encoder_new(producer_side, HVS_SCHEMA_READING, "readings.raw", &e, &err) == 0,
                "register: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_encoder_schema_id(e), 1001);
    HVS_CHECK_EQ_STR(reg.subjects[0], "readings.raw-value/versions");
    /* A second encoder for the same topic uses the cached registration. */
    hvs_encoder_t *e2;
    HVS_REQUIRE(hvs_encoder_new(producer_side, HVS_SCHEMA_READING, "readings.raw", &e2, &err) == 0,
                "second encoder: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_encoder_schema_id(e2), 1001);
    HVS_CHECK_EQ_INT(reg.registrations, 1);
    hvs_encoder_destroy(e2);
    char *json = read_sample("Reading");
    HVS_CHECK(hvs_serde_value_from_json(producer_side, hvs_encoder_value(e), json, strlen(json),
                                        &err) == 0,
              "fill");
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(e, &buf, &len, &err) == 0, "encode");
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(consumer_side, HVS_SCHEMA_READING, &d, &err) == 0, "decoder");
    avro_value_t *v;
    HVS_CHECK(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "decode via registry: %s", err.msg);
    HVS_CHECK(hvs_decoder_decode(d, buf, len, &v, &err) == 0, "decode again");
    HVS_CHECK_EQ_INT(reg.fetches, 1); /* cached after the first */
    char *back;
    HVS_REQUIRE(hvs_serde_value_to_json(v, &back, &err) == 0, "json");
    HVS_CHECK(json_text_equal(json, back), "registry round trip: %s", back);
    free(back);
    /* An id the registry does not know. */
    unsigned char unknown[64];
    memcpy(unknown, buf, len < 64 ? len : 64);
    unknown[4] = 0x10; /* 0x3e9 -> 0x310 = 784 */
    expect_reason(d, unknown, len < 64 ? len : 64, HVS_SERDE_R_UNKNOWN_SCHEMA, "unknown id");
    hvs_decoder_destroy(d);
    hvs_encoder_destroy(e);
    /* Registry gone: a clear error naming it. */
    hvs_http_stop(h);
    HVS_CHECK(hvs_encoder_new(producer_side, HVS_SCHEMA_ALERT, "alerts", &e, &err) == HVS_EIO,
              "registry down fails");
    HVS_CHECK_EQ_STR(err.reason, HVS_SERDE_R_REGISTRY);
    free(json);
    hvs_serde_destroy(producer_side);
    hvs_serde_destroy(consumer_side);
    for (int i = 0; i < reg.n; i++)
        free(reg.schemas[i]);
    pthread_mutex_destroy(&reg.lock);
}

/* The serde the cases share, made by the first case that needs it; freed after the cases. */
static hvs_serde_t *shared_serde;

static void free_serde(void) { hvs_serde_destroy(shared_serde); }

static hvs_serde_t *serde(void) {
    if (!shared_serde) {
        hvs_err_t err;
        HVS_REQUIRE(hvs_serde_new(NULL, &shared_serde, &err) == 0, "serde: %s", err.msg);
        hvs_test_cleanup(free_serde);
    }
    return shared_serde;
}

static void test_schemas(void) {
    hvs_serde_t *s = serde();
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++)
        HVS_CHECK(hvs_serde_schema(s, k) != NULL, "schema %d", k);
    HVS_CHECK_EQ_INT(hvs_schema_kind_from_name("hvacstream.Alert"), HVS_SCHEMA_ALERT);
    HVS_CHECK_EQ_INT(hvs_schema_kind_from_name("Reading"), HVS_SCHEMA_READING);
}

static void case_fields(void) { test_fields(serde()); }
static void case_roundtrip_all(void) { test_roundtrip_all(serde()); }
static void case_bad_messages(void) { test_bad_messages(serde()); }
static void case_fuzz_all(void) { test_fuzz_all(serde()); }
static void case_evolution(void) { test_evolution(serde()); }
static void case_newer_writer(void) { test_newer_writer(serde()); }
static void case_aggregate_evolution(void) { test_aggregate_evolution(serde()); }
static void case_building_evolution(void) { test_building_evolution(serde()); }
static void case_model_version_evolution(void) { test_model_version_evolution(serde()); }
static void case_json_errors(void) { test_json_errors(serde()); }

/* hvs_serde_layout renders what decides the bytes, and only that; hvs_decoder_direct_body hands
 * out the body of the current writer's messages only (not older ones', unknown ids', bad
 * headers'). */
static void case_layout(void) {
    const char *json =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"x\",\"doc\":\"ignored\",\"fields\":["
        "{\"name\":\"a\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
        "{\"name\":\"b\",\"type\":[\"null\",\"string\",\"int\"]},"
        "{\"name\":\"c\",\"type\":{\"type\":\"map\",\"values\":\"float\"}},"
        "{\"name\":\"d\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}},"
        "{\"name\":\"e\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":16}},"
        "{\"name\":\"f\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
        "\"name\":\"S\",\"fields\":[{\"name\":\"g\",\"type\":\"boolean\"},"
        "{\"name\":\"h\",\"type\":\"bytes\"},{\"name\":\"i\",\"type\":\"double\"}]}}}]}";
    avro_schema_t sc;
    HVS_REQUIRE(avro_schema_from_json_length(json, strlen(json), &sc) == 0, "schema: %s",
                avro_strerror());
    const char *want = "R{a:long,b:null|string|int,c:map<float>,d:enum(X,Y),e:fixed(16),"
                       "f:array<S{g:boolean,h:bytes,i:double}>}";
    char buf[256];
    HVS_CHECK(hvs_serde_layout(sc, buf, sizeof buf) == 0, "layout");
    HVS_CHECK_EQ_STR(buf, want);
    HVS_CHECK(hvs_serde_layout(sc, buf, strlen(want)) == HVS_EINVAL, "a buffer too small");
    HVS_CHECK(hvs_serde_has_layout(sc, want), "has_layout");
    char shorter[256];
    snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(want) - 1, want);
    HVS_CHECK(!hvs_serde_has_layout(sc, shorter) && !hvs_serde_has_layout(sc, "R{a:long}") &&
                  !hvs_serde_has_layout(NULL, want),
              "a prefix, another layout, no schema");
    avro_schema_decref(sc);

    hvs_serde_t *s;
    hvs_err_t err;
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0,
                "serde");
    /* a header and a 3-byte body; the id is what differs */
    unsigned char msg[8] = {0, 0, 0, 0, 12, 'a', 'b', 'c'};
    size_t n = 0;
    const unsigned char *body = hvs_decoder_direct_body(d, msg, sizeof msg, &n);
    HVS_CHECK(body == msg + 5 && n == 3, "Reading v2 (id 12) is the reader's: body %p, %zu bytes",
              (const void *)body, n);
    msg[4] = 1;
    HVS_CHECK(!hvs_decoder_direct_body(d, msg, sizeof msg, &n), "Reading v1 (id 1) is not");
    msg[4] = 4;
    HVS_CHECK(!hvs_decoder_direct_body(d, msg, sizeof msg, &n), "an Aggregate id is not");
    msg[3] = 0x27;
    HVS_CHECK(!hvs_decoder_direct_body(d, msg, sizeof msg, &n), "an unknown id is not");
    msg[3] = 0, msg[4] = 12, msg[0] = 1;
    HVS_CHECK(!hvs_decoder_direct_body(d, msg, sizeof msg, &n), "a bad magic byte is not");
    msg[0] = 0;
    HVS_CHECK(!hvs_decoder_direct_body(d, msg, 4, &n), "a cut header is not");
    HVS_CHECK(hvs_decoder_direct_body(d, msg, sizeof msg, &n) == msg + 5, "asked again");
    hvs_decoder_destroy(d);
    hvs_serde_destroy(s);
}

static const hvs_test_case_t cases[] = {
    {"schemas", test_schemas},
    {"layout", case_layout},
    {"fields", case_fields},
    {"roundtrip_all", case_roundtrip_all},
    {"bad_messages", case_bad_messages},
    {"fuzz_all", case_fuzz_all},
    {"evolution", case_evolution},
    {"newer_writer", case_newer_writer},
    {"aggregate_evolution", case_aggregate_evolution},
    {"building_evolution", case_building_evolution},
    {"model_version_evolution", case_model_version_evolution},
    {"json_errors", case_json_errors},
    {"registry", test_registry},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
