/*
 * hvsctl topics / tail / dlq show as real processes against a real hvs-devbroker:
 *  - topics create succeeds twice (idempotent on a broker without an Admin API) and names every
 *    topic of the table; topics list shows them with the devbroker's partition count;
 *  - tail prints exactly what this test produced through the common producer: one JSON line per
 *    message, key/partition/offset/schema id and every value field equal to what was sent; a
 *    message that is not Avro is shown as an error line with its reason and the rest still
 *    printed; --max N gives N lines, --partition P only P's messages, the default the last 10
 *    of each partition;
 *  - dlq show prints each dead letter's reason, error, source and original value (text as text,
 *    binary as hex);
 *  - --help on every command and subcommand, usage errors exit 2, bad settings name the key.
 */
#include <jansson.h>

#include "hvs/dlq.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define PARTS 3
#define PER_PART 15 /* Readings per partition */

static char env[256];

/* Run `hvsctl ARGS` with the broker's environment; stdout into *out (caller frees). */
static int hvsctl(const char *args, char **out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s", env, HVS_TEST_HVSCTL, args);
    return hvs_test_run(cmd, NULL, 0, out, NULL);
}

/* What the test sends as message i of partition p. */
static void expected(int p, int i, hvs_reading_t *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->building_id, sizeof r->building_id, "bldg_%d", p);
    snprintf(r->apartment_id, sizeof r->apartment_id, "apt_%d_%d", p, i);
    r->timestamp = INT64_C(1730025000000) + (p * 100 + i) * HVS_MS_15MIN;
    r->n = 2;
    snprintf(r->v[0].sensor_type, sizeof r->v[0].sensor_type, "heating_energy_kwh");
    r->v[0].value = 1000.25 + p * 100 + i;
    snprintf(r->v[1].sensor_type, sizeof r->v[1].sensor_type, "room_temp_c");
    snprintf(r->v[1].room_name, sizeof r->v[1].room_name, "room_%d", i % 3);
    r->v[1].value = 18.5 + i * 0.25;
}

/* Does a tail line carry exactly message i of partition p? */
static int line_matches(json_t *j, int p, int i) {
    hvs_reading_t r;
    expected(p, i, &r);
    json_t *v = json_object_get(j, "value");
    json_t *rd = json_object_get(v, "readings");
    json_t *r0 = json_array_get(rd, 0), *r1 = json_array_get(rd, 1);
    return json_integer_value(json_object_get(j, "partition")) == p &&
           json_integer_value(json_object_get(j, "offset")) == i &&
           strcmp(json_string_value(json_object_get(j, "topic")), "readings.raw") == 0 &&
           strcmp(json_string_value(json_object_get(j, "key")), r.building_id) == 0 &&
           json_integer_value(json_object_get(j, "schema_id")) == 12 &&
           strcmp(json_string_value(json_object_get(v, "building_id")), r.building_id) == 0 &&
           strcmp(json_string_value(json_object_get(v, "apartment_id")), r.apartment_id) == 0 &&
           json_integer_value(json_object_get(v, "timestamp")) == r.timestamp &&
           json_array_size(rd) == 2 &&
           strcmp(json_string_value(json_object_get(r0, "sensor_type")), "heating_energy_kwh") ==
               0 &&
           json_is_null(json_object_get(r0, "room_name")) &&
           json_real_value(json_object_get(r0, "value")) == r.v[0].value &&
           strcmp(json_string_value(json_object_get(r1, "room_name")), r.v[1].room_name) == 0 &&
           json_real_value(json_object_get(r1, "value")) == r.v[1].value &&
           strcmp(json_string_value(json_object_get(v, "source")), "test") == 0;
}

static void test_topics(void) {
    char *out = NULL;
    size_t n;
    const hvs_topic_t *all = hvs_topics_all(&n);
    for (int round = 0; round < 2; round++) {
        int rc = hvsctl("topics create", &out);
        HVS_CHECK(rc == 0, "topics create #%d: rc %d", round, rc);
        int named = 0;
        for (size_t i = 0; i < n; i++)
            named += out && strstr(out, all[i].name) != NULL;
        HVS_CHECK(named == (int)n, "topics create #%d names %d of %zu topics:\n%s", round, named, n,
                  out ? out : "");
        free(out);
    }
    HVS_CHECK_EQ_INT(hvsctl("topics list", &out), 0);
    char want[128];
    snprintf(want, sizeof want, "%-32s %3d partitions", "readings.raw", PARTS);
    HVS_CHECK(out && strstr(out, want), "topics list has \"%s\":\n%s", want, out ? out : "");
    free(out);
}

static void produce(const char *brokers) {
    hvs_serde_t *s;
    hvs_err_t err;
    hvs_producer_t *p;
    hvs_encoder_t *e;
    hvs_reading_codec_t *c;
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_producer_new(&kc, &p, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_READING, "readings.raw", &e, &err) == 0 &&
                    hvs_reading_codec_new(s, &c, &err) == 0,
                "producer: %s", err.msg);
    for (int part = 0; part < PARTS; part++)
        for (int i = 0; i < PER_PART; i++) {
            hvs_reading_t r;
            const void *buf;
            size_t len;
            expected(part, i, &r);
            if (part == 1 && i == 4) { /* not Avro at all: tail must say so and go on */
                HVS_REQUIRE(hvs_producer_send(p, "readings.raw", part, "junk", 4, "\x07garbage", 8,
                                              &err) == 0,
                            "send junk");
                continue;
            }
            HVS_REQUIRE(
                hvs_reading_to_avro(c, &r, "test", HVS_MS_NONE, hvs_encoder_value(e), &err) == 0 &&
                    hvs_encoder_encode(e, &buf, &len, &err) == 0 &&
                    hvs_producer_send(p, "readings.raw", part, r.building_id, strlen(r.building_id),
                                      buf, len, &err) == 0,
                "send: %s", err.msg);
        }
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);

    /* dead letters: a text line and binary bytes */
    hvs_dlq_t *d;
    HVS_REQUIRE(hvs_dlq_new(p, s, "test-worker", &d, &err) == 0, "dlq");
    hvs_err_t why;
    hvs_err_set(&why, HVS_EINVAL, "unknown_sensor", "readings[0].sensor_type \"co2\" is unknown");
    const char *text = "{\"building_id\": \"b\", \"sensor\": \"co2\"}";
    HVS_REQUIRE(hvs_dlq_send(d, "readings.raw", -1, -1, "b", 1, text, strlen(text), "in.jsonl:7",
                             &why, &err) == 0,
                "dlq send");
    hvs_err_set(&why, HVS_ESERDE, "bad_magic", "first byte is 0x07");
    HVS_REQUIRE(
        hvs_dlq_send(d, "readings.raw", 1, 4, "junk", 4, "\x07\xff\x00z", 4, NULL, &why, &err) == 0,
        "dlq send");
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_dlq_destroy(d);
    hvs_reading_codec_destroy(c);
    hvs_encoder_destroy(e);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
}

static void test_tail(void) {
    char *out = NULL;
    json_t *js[128];
    int rc = hvsctl("tail readings.raw --from-beginning", &out);
    int n = hvs_test_json_lines(out, js, 128);
    HVS_CHECK(rc == 0 && n == PARTS * PER_PART, "tail: rc %d, %d lines, want %d", rc, n,
              PARTS * PER_PART);
    int seen[PARTS][PER_PART] = {{0}};
    int bad = 0, junk = 0;
    for (int k = 0; k < n && k < 128; k++) {
        int p = (int)json_integer_value(json_object_get(js[k], "partition"));
        int i = (int)json_integer_value(json_object_get(js[k], "offset"));
        if (p == 1 && i == 4) {
            const char *reason = json_string_value(json_object_get(js[k], "reason"));
            junk += reason && strcmp(reason, "bad_magic") == 0 &&
                    !json_object_get(js[k], "value") &&
                    strcmp(json_string_value(json_object_get(js[k], "key")), "junk") == 0;
        } else if (p >= 0 && p < PARTS && i >= 0 && i < PER_PART && line_matches(js[k], p, i)) {
            seen[p][i]++;
        } else {
            bad++;
        }
    }
    int once = 0;
    for (int p = 0; p < PARTS; p++)
        for (int i = 0; i < PER_PART; i++)
            once += seen[p][i] == 1;
    HVS_CHECK_EQ_INT(once, PARTS * PER_PART - 1);
    HVS_CHECK_EQ_INT(junk, 1);
    HVS_CHECK_EQ_INT(bad, 0);
    hvs_test_json_lines_free(js, n < 128 ? n : 128);
    free(out);

    /* --max: exactly N lines, and in order within a partition */
    rc = hvsctl("tail readings.raw --from-beginning --max 5 --partition 2", &out);
    n = hvs_test_json_lines(out, js, 128);
    int ok = 0;
    for (int k = 0; k < n && k < 128; k++)
        ok += line_matches(js[k], 2, k);
    HVS_CHECK(rc == 0 && n == 5 && ok == 5, "--max 5 --partition 2: rc %d, %d lines, %d right", rc,
              n, ok);
    hvs_test_json_lines_free(js, n < 128 ? n : 128);
    free(out);

    /* default: the last 10 of each partition */
    rc = hvsctl("tail readings.raw --partition 0", &out);
    n = hvs_test_json_lines(out, js, 128);
    ok = 0;
    for (int k = 0; k < n && k < 128; k++)
        ok += line_matches(js[k], 0, PER_PART - 10 + k);
    HVS_CHECK(rc == 0 && n == 10 && ok == 10, "tail default: rc %d, %d lines, %d right", rc, n, ok);
    hvs_test_json_lines_free(js, n < 128 ? n : 128);
    free(out);

    HVS_CHECK_EQ_INT(hvsctl("tail readings.raw --max", NULL), 2);
    HVS_CHECK_EQ_INT(hvsctl("tail readings.raw --bogus", NULL), 2);
}

static void test_dlq_show(void) {
    char *out = NULL;
    json_t *js[8];
    int rc = hvsctl("dlq show", &out);
    int n = hvs_test_json_lines(out, js, 8);
    HVS_CHECK(rc == 0 && n == 2, "dlq show: rc %d, %d lines", rc, n);
    int text = 0, bin = 0;
    for (int k = 0; k < n && k < 8; k++) {
        const char *reason = json_string_value(json_object_get(js[k], "reason"));
        const char *value = json_string_value(json_object_get(js[k], "original_value"));
        const char *error = json_string_value(json_object_get(js[k], "error"));
        const char *worker = json_string_value(json_object_get(js[k], "worker"));
        if (!reason || !value || !error || !worker || strcmp(worker, "test-worker") != 0)
            continue;
        if (strcmp(reason, "unknown_sensor") == 0)
            text += strcmp(value, "{\"building_id\": \"b\", \"sensor\": \"co2\"}") == 0 &&
                    strstr(error, "co2") &&
                    strcmp(json_string_value(json_object_get(js[k], "source")), "in.jsonl:7") ==
                        0 &&
                    json_is_null(json_object_get(js[k], "original_offset"));
        if (strcmp(reason, "bad_magic") == 0)
            bin += strcmp(value, "hex:07ff007a") == 0 &&
                   json_integer_value(json_object_get(js[k], "original_partition")) == 1 &&
                   json_integer_value(json_object_get(js[k], "original_offset")) == 4;
    }
    HVS_CHECK_EQ_INT(text, 1);
    HVS_CHECK_EQ_INT(bin, 1);
    hvs_test_json_lines_free(js, n < 8 ? n : 8);
    free(out);
    rc = hvsctl("dlq show --max 1", &out);
    n = hvs_test_json_lines(out, js, 8);
    HVS_CHECK(rc == 0 && n == 1, "dlq show --max 1: rc %d, %d lines", rc, n);
    hvs_test_json_lines_free(js, n < 8 ? n : 8);
    free(out);
}

static void test_usage(void) {
    static const char *cmds[] = {"topics", "topics create", "topics list", "tail",
                                 "ingest", "dlq",           "dlq show"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64];
        char *out = NULL;
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        int rc = hvsctl(args, &out);
        HVS_CHECK(rc == 0 && out && strstr(out, "Usage: hvsctl"), "%s: rc %d:\n%s", args, rc,
                  out ? out : "");
        free(out);
    }
    char *out = NULL;
    HVS_CHECK_EQ_INT(hvsctl("--help", &out), 0);
    HVS_CHECK(out && strstr(out, "dlq show"), "hvsctl --help lists commands:\n%s", out ? out : "");
    free(out);
    HVS_CHECK_EQ_INT(hvsctl("frobnicate 2>/dev/null", NULL), 2);
    HVS_CHECK_EQ_INT(hvsctl("topics delete 2>/dev/null", NULL), 2);
    HVS_CHECK_EQ_INT(hvsctl("dlq 2>/dev/null", NULL), 2);

    /* a bad setting stops start-up naming the key */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "HVS_TOPIC_PARTITIONS=0 %s topics list 2>&1", HVS_TEST_HVSCTL);
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 2 && out && strstr(out, "HVS_TOPIC_PARTITIONS"), "bad setting: %d %s", rc,
              out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERZ=x %s topics list 2>&1", HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 2 && out && strstr(out, "HVS_KAFKA_BROKERZ"), "unknown key: %d %s", rc,
              out ? out : "");
    free(out);
    /* no broker there: a clear error, not a hang */
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERS=127.0.0.1:1 %s topics list --timeout 2 2>&1",
             HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 1 && out && strstr(out, "cannot reach Kafka at 127.0.0.1:1"),
              "no broker: %d %s", rc, out ? out : "");
    free(out);
}

/* The devbroker the cases share, started by the first case that needs it (env then points
 * hvsctl at it); filled() also produces the readings and dead letters above, once. */
static hvs_test_proc_t broker;
static bool produced;

static void stop_broker(void) { hvs_test_proc_stop(&broker); }

static void start_broker(void) {
    if (broker.pid)
        return;
    char args[32];
    snprintf(args, sizeof args, "--partitions %d", PARTS);
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, args) == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
}

static void filled(void) {
    start_broker();
    if (!produced) {
        produce(broker.addr);
        produced = true;
    }
}

static void case_usage(void) {
    start_broker();
    test_usage();
}

static void case_topics(void) {
    start_broker();
    test_topics();
}

static void case_tail(void) {
    filled();
    test_tail();
}

static void case_dlq_show(void) {
    filled();
    test_dlq_show();
}

static const hvs_test_case_t cases[] = {
    {"help_usage_errors_and_bad_settings", case_usage},
    {"topics_create_idempotent_and_listed", case_topics},
    {"tail_prints_what_was_produced_and_flags_junk", case_tail},
    {"dlq_show_prints_reason_source_and_original", case_dlq_show},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
