/*
 * hvsctl as a real process against a real hvs-devbroker:
 *  - topics create succeeds, twice (idempotent on a broker without an Admin API);
 *  - ingest of good lines plus one line of every bad kind: exit 0, the summary counts, every
 *    good line read back from readings.raw field by field (expected values computed here from
 *    the numbers the lines were made from) keyed by building, every bad line on readings.dlq
 *    with its distinct reason, its exact bytes and FILE:LINE;
 *  - tail --max and dlq show print what is there;
 *  - a broker that is not there: non-zero exit with a clear error;
 *  - a bad HVS_* setting stops the process naming the key.
 */
#include <jansson.h>
#include <time.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define GOOD 60

typedef struct bad_line {
    const char *apartment; /* marks the line */
    const char *reason;
    char text[1024];
    int line;
    int found;
} bad_line_t;

static bad_line_t bad[] = {
    {"bad_missing", "json_missing_field", "", 0, 0},
    {"bad_type", "json_wrong_type", "", 0, 0},
    {"bad_nan", "non_finite", "", 0, 0},
    {"bad_inf", "non_finite", "", 0, 0},
    {"bad_old", "timestamp_too_old", "", 0, 0},
    {"bad_future", "timestamp_in_future", "", 0, 0},
    {"bad_long", "id_too_long", "", 0, 0},
    {"bad_sensor", "unknown_sensor", "", 0, 0},
    {"bad_range", "value_out_of_range", "", 0, 0},
    {"bad_syntax", "json_syntax", "", 0, 0},
};
#define NBAD (sizeof bad / sizeof bad[0])

static int good_seen[GOOD];

static int64_t good_ts(int i) { return INT64_C(1730025000000) + (int64_t)i * 900000; }
static double good_heat(int i) { return 15000.0 + i * 0.5; }
static double good_temp(int i) { return 19.0 + (i % 30) * 0.1; }

static void iso(int64_t ms, char *buf, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *write_input(char *path, size_t pathlen) {
    snprintf(path, pathlen, "/tmp/hvs-ingest-%d.jsonl", (int)getpid());
    FILE *f = fopen(path, "w");
    HVS_REQUIRE(f, "create %s", path);
    char long_id[301];
    memset(long_id, 'b', 300);
    long_id[300] = '\0';
    const char *R = "\"readings\": [{\"sensor_type\": \"room_temp_c\", \"value\": 20.0}]";
    snprintf(bad[0].text, sizeof bad[0].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"apartment_id\": \"%s\", %s}",
             bad[0].apartment, R);
    snprintf(bad[1].text, sizeof bad[1].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": \"20\"}]}",
             bad[1].apartment);
    snprintf(bad[2].text, sizeof bad[2].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": NaN}]}",
             bad[2].apartment);
    snprintf(bad[3].text, sizeof bad[3].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": -Infinity}]}",
             bad[3].apartment);
    snprintf(bad[4].text, sizeof bad[4].text,
             "{\"timestamp_str\": \"1999-12-31T23:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", %s}",
             bad[4].apartment, R);
    char future[40];
    iso((int64_t)time(NULL) * 1000 + 2 * 86400000LL, future, sizeof future);
    snprintf(bad[5].text, sizeof bad[5].text,
             "{\"timestamp_str\": \"%s\", \"building_id\": \"b1\", \"apartment_id\": \"%s\", %s}",
             future, bad[5].apartment, R);
    snprintf(bad[6].text, sizeof bad[6].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"%s\", "
             "\"apartment_id\": \"%s\", %s}",
             long_id, bad[6].apartment, R);
    snprintf(bad[7].text, sizeof bad[7].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"co2_ppm\", "
             "\"value\": 400}]}",
             bad[7].apartment);
    snprintf(bad[8].text, sizeof bad[8].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"heating_energy_kwh\", "
             "\"value\": -1}]}",
             bad[8].apartment);
    snprintf(bad[9].text, sizeof bad[9].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"apartment_id\": \"%s\", ",
             bad[9].apartment);
    int line = 0;
    size_t next_bad = 0;
    for (int i = 0; i < GOOD; i++) {
        char ts[40];
        iso(good_ts(i), ts, sizeof ts);
        fprintf(f,
                "{\"timestamp_str\": \"%s\", \"building_id\": \"bldg_%d\", \"apartment_id\": "
                "\"apt_%d\", \"readings\": [{\"sensor_type\": \"heating_energy_kwh\", \"value\": "
                "%.1f}, {\"sensor_type\": \"room_temp_c\", \"room_name\": \"bedroom\", \"value\": "
                "%.1f}]}\n",
                ts, i % 5, i, good_heat(i), good_temp(i));
        line++;
        if (i % 6 == 5 && next_bad < NBAD) {
            fprintf(f, "%s\n", bad[next_bad].text);
            bad[next_bad++].line = ++line;
        }
        if (i == 10)
            fputs("\n", f), line++; /* blank lines are skipped, not rejected */
    }
    fclose(f);
    HVS_REQUIRE(next_bad == NBAD, "every bad line written");
    return path;
}

static const char *str_field(avro_value_t *v, const char *name) {
    avro_value_t f, b;
    const char *s = NULL;
    size_t n;
    avro_value_get_by_name(v, name, &f, NULL);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        if (avro_value_get_current_branch(&f, &b) || avro_value_get_type(&b) == AVRO_NULL)
            return NULL;
        f = b;
    }
    avro_value_get_string(&f, &s, &n);
    return s;
}

int main(void) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 3") == 0, "devbroker");
    char env[256], cmd[1024];
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
    char *out = NULL;
    int rc;

    for (int round = 0; round < 2; round++) {
        snprintf(cmd, sizeof cmd, "%s %s topics create", env, HVS_TEST_HVSCTL);
        rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
        HVS_CHECK(rc == 0 && strstr(out, "all 24 topics present"), "topics create #%d: %d %s",
                  round, rc, out);
        free(out);
    }

    char path[128];
    write_input(path, sizeof path);
    snprintf(cmd, sizeof cmd, "%s %s ingest %s", env, HVS_TEST_HVSCTL, path);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK_EQ_INT(rc, 0);
    char want[256];
    snprintf(want, sizeof want, "%d lines, accepted %d -> readings.raw, rejected %zu -> readings.dlq",
             GOOD + (int)NBAD, GOOD, NBAD);
    HVS_CHECK(out && strstr(out, want), "summary \"%s\" in:\n%s", want, out ? out : "");
    HVS_CHECK(out && strstr(out, "rejected non_finite               2"), "by reason:\n%s", out);
    free(out);

    /* readings.raw, read back with the common consumer */
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .group = "readback", .client_id = "test",
                           .fetch_wait_max_ms = 10};
    const char *topics[] = {"readings.raw"};
    hvs_consumer_t *c;
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer");
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0, "decoder");
    int got = 0, wrong = 0;
    int64_t deadline = hvs_test_now_ms() + 20000;
    while (got < GOOD && hvs_test_now_ms() < deadline) {
        rd_kafka_message_t *msgs[64];
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 64, 100, &n, &err);
        for (size_t k = 0; k < n; k++, got++) {
            avro_value_t *v, f, arr, item, sub;
            if (hvs_decoder_decode(d, msgs[k]->payload, msgs[k]->len, &v, &err) != 0) {
                wrong++;
                continue;
            }
            const char *apt = str_field(v, "apartment_id");
            int i = apt ? atoi(apt + 4) : -1;
            if (i < 0 || i >= GOOD) {
                wrong++;
                continue;
            }
            good_seen[i]++;
            char bldg[16];
            snprintf(bldg, sizeof bldg, "bldg_%d", i % 5);
            int64_t ts;
            double heat, temp;
            avro_value_get_by_name(v, "timestamp", &f, NULL);
            avro_value_get_long(&f, &ts);
            avro_value_get_by_name(v, "readings", &arr, NULL);
            avro_value_get_by_index(&arr, 0, &item, NULL);
            avro_value_get_by_name(&item, "value", &sub, NULL);
            avro_value_get_double(&sub, &heat);
            avro_value_get_by_index(&arr, 1, &item, NULL);
            avro_value_get_by_name(&item, "value", &sub, NULL);
            avro_value_get_double(&sub, &temp);
            const char *src = str_field(v, "source");
            if (strcmp(str_field(v, "building_id"), bldg) != 0 || ts != good_ts(i) ||
                fabs(heat - good_heat(i)) > 1e-9 || fabs(temp - good_temp(i)) > 1e-9 ||
                msgs[k]->key_len != strlen(bldg) || memcmp(msgs[k]->key, bldg, strlen(bldg)) ||
                !src || strncmp(src, path, strlen(path)) != 0) {
                wrong++;
                fprintf(stderr, "apt_%d differs\n", i);
            }
        }
        hvs_consumer_commit_batch(c, msgs, n, &err);
        hvs_consumer_release(msgs, n);
    }
    HVS_CHECK_EQ_INT(got, GOOD);
    HVS_CHECK_EQ_INT(wrong, 0);
    int missing = 0;
    for (int i = 0; i < GOOD; i++)
        missing += good_seen[i] != 1;
    HVS_CHECK_EQ_INT(missing, 0);
    hvs_consumer_destroy(c);
    hvs_decoder_destroy(d);

    /* readings.dlq: one DeadLetter per bad line */
    const char *dtopics[] = {"readings.dlq"};
    kc.group = "dlqback";
    HVS_REQUIRE(hvs_consumer_new(&kc, dtopics, 1, NULL, &c, &err) == 0, "consumer");
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_DEAD_LETTER, &d, &err) == 0, "decoder");
    int letters = 0;
    deadline = hvs_test_now_ms() + 20000;
    while (letters < (int)NBAD && hvs_test_now_ms() < deadline) {
        rd_kafka_message_t *msgs[64];
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 64, 100, &n, &err);
        for (size_t k = 0; k < n; k++, letters++) {
            avro_value_t *v, f;
            if (hvs_decoder_decode(d, msgs[k]->payload, msgs[k]->len, &v, &err) != 0)
                continue;
            const void *orig;
            size_t olen;
            avro_value_get_by_name(v, "original_value", &f, NULL);
            avro_value_get_bytes(&f, &orig, &olen);
            for (size_t b = 0; b < NBAD; b++) {
                if (olen != strlen(bad[b].text) || memcmp(orig, bad[b].text, olen) != 0)
                    continue;
                char src[200];
                snprintf(src, sizeof src, "%s:%d", path, bad[b].line);
                const char *reason = str_field(v, "error_code");
                const char *source = str_field(v, "source");
                HVS_CHECK(reason && strcmp(reason, bad[b].reason) == 0, "%s: reason %s, want %s",
                          bad[b].apartment, reason ? reason : "-", bad[b].reason);
                HVS_CHECK(source && strcmp(source, src) == 0, "%s: source %s, want %s",
                          bad[b].apartment, source ? source : "-", src);
                HVS_CHECK_EQ_STR(str_field(v, "original_topic"), "readings.raw");
                bad[b].found++;
            }
        }
        hvs_consumer_commit_batch(c, msgs, n, &err);
        hvs_consumer_release(msgs, n);
    }
    HVS_CHECK_EQ_INT(letters, NBAD);
    for (size_t b = 0; b < NBAD; b++)
        HVS_CHECK(bad[b].found == 1, "%s dead-lettered once (%d)", bad[b].apartment, bad[b].found);
    hvs_consumer_destroy(c);
    hvs_decoder_destroy(d);
    hvs_serde_destroy(s);

    /* tail and dlq show */
    snprintf(cmd, sizeof cmd, "%s %s tail readings.raw --from-beginning --max 3", env,
             HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    int lines = 0, values = 0;
    for (char *p = out, *nl; p && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        json_t *j = json_loads(p, 0, NULL);
        lines++;
        const char *apt = json_string_value(json_object_get(json_object_get(j, "value"),
                                                            "apartment_id"));
        values += apt && strncmp(apt, "apt_", 4) == 0 &&
                  json_integer_value(json_object_get(j, "schema_id")) == 12;
        json_decref(j);
    }
    HVS_CHECK(rc == 0 && lines == 3 && values == 3, "tail: rc %d, %d lines, %d values", rc, lines,
              values);
    free(out);
    snprintf(cmd, sizeof cmd, "%s %s dlq show", env, HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    for (size_t b = 0; b < NBAD; b++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"reason\":\"%s\"", bad[b].reason);
        HVS_CHECK(out && strstr(out, needle), "dlq show has %s", needle);
    }
    HVS_CHECK_EQ_INT(rc, 0);
    free(out);

    /* Infrastructure failure: no broker there. */
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERS=127.0.0.1:1 %s ingest --timeout 2 %s 2>&1",
             HVS_TEST_HVSCTL, path);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 1 && out && strstr(out, "cannot reach Kafka at 127.0.0.1:1"),
              "no broker: rc %d: %s", rc, out ? out : "");
    free(out);
    /* A bad setting stops start-up naming the key. */
    snprintf(cmd, sizeof cmd, "HVS_TOPIC_PARTITIONS=0 %s topics list 2>&1", HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 2 && out && strstr(out, "HVS_TOPIC_PARTITIONS"), "bad setting: %d %s", rc,
              out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERZ=x %s topics list 2>&1", HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 2 && out && strstr(out, "HVS_KAFKA_BROKERZ"), "unknown key: %d %s", rc,
              out ? out : "");
    free(out);

    unlink(path);
    hvs_test_proc_stop(&broker);
    return hvs_test_done();
}
