/*
 * hvsctl ingest as a real process against a real hvs-devbroker:
 *  - good lines plus one line of every bad kind (missing field, wrong type, NaN, -Infinity,
 *    nan, 1e999, before 2000, two days ahead, no zone, 300-byte id, empty id, unknown sensor,
 *    negative counter, no readings, 33 readings, syntax error, a 70 KB line): exit 0, the
 *    summary counts per reason, every good line read back from readings.raw field by field
 *    (expected values computed here from the numbers the lines were made from) keyed by
 *    building, every bad line on readings.dlq once with its distinct reason, its exact bytes
 *    (the first 64 KiB of the over-long one) and FILE:LINE;
 *  - standard input works; the sample file gives the counts its bad_<reason> markers say;
 *  - a broker that is not there: exit 1 with a clear error.
 * topics/tail/dlq show: test_hvsctl_tail.c.
 */
#include <jansson.h>
#include <time.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define GOOD 60

typedef struct bad_line {
    const char *apartment; /* marks the line */
    const char *reason;
    char text[2048];
    char *big; /* when set, the line written (text unused); its dead letter keeps a prefix */
    int line;
    int found;
} bad_line_t;

static bad_line_t bad[] = {
    {"bad_missing", "json_missing_field", "", NULL, 0, 0},
    {"bad_type", "json_wrong_type", "", NULL, 0, 0},
    {"bad_nan", "non_finite", "", NULL, 0, 0},
    {"bad_inf", "non_finite", "", NULL, 0, 0},
    {"bad_old", "timestamp_too_old", "", NULL, 0, 0},
    {"bad_future", "timestamp_in_future", "", NULL, 0, 0},
    {"bad_long", "id_too_long", "", NULL, 0, 0},
    {"bad_sensor", "unknown_sensor", "", NULL, 0, 0},
    {"bad_range", "value_out_of_range", "", NULL, 0, 0},
    {"bad_syntax", "json_syntax", "", NULL, 0, 0},
    {"bad_zone", "bad_timestamp", "", NULL, 0, 0},
    {"bad_empty", "empty_readings", "", NULL, 0, 0},
    {"bad_many", "too_many_readings", "", NULL, 0, 0},
    {"bad_emptyid", "bad_id", "", NULL, 0, 0},
    {"bad_lower_nan", "non_finite", "", NULL, 0, 0},
    {"bad_overflow", "non_finite", "", NULL, 0, 0},
    {"bad_huge", "line_too_long", "", NULL, 0, 0},
    {"bad_brace", "bad_id", "", NULL, 0, 0}, /* '{' '}' in a building id: a Redis hash tag */
    {"bad_c1", "bad_id", "", NULL, 0, 0},    /* a C1 control (valid JSON, valid UTF-8) */
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
    snprintf(bad[10].text, sizeof bad[10].text,
             "{\"timestamp_str\": \"2024-10-27 10:00:00\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", %s}",
             bad[10].apartment, R);
    snprintf(bad[11].text, sizeof bad[11].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": []}",
             bad[11].apartment);
    char many[1800] = "";
    for (int k = 0; k < 33; k++)
        strcat(many, k ? ", {\"sensor_type\": \"room_temp_c\", \"value\": 20}"
                       : "{\"sensor_type\": \"room_temp_c\", \"value\": 20}");
    snprintf(bad[12].text, sizeof bad[12].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [%s]}",
             bad[12].apartment, many);
    snprintf(bad[13].text, sizeof bad[13].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"\", "
             "\"apartment_id\": \"%s\", %s}",
             bad[13].apartment, R);
    snprintf(bad[14].text, sizeof bad[14].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": \"room_temp_c\", "
             "\"value\": nan}]}",
             bad[14].apartment);
    snprintf(bad[15].text, sizeof bad[15].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\", \"readings\": [{\"sensor_type\": "
             "\"heating_energy_kwh\", \"value\": 1e999}]}",
             bad[15].apartment);
    snprintf(bad[17].text, sizeof bad[17].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b{1}\", "
             "\"apartment_id\": \"%s\", %s}",
             bad[17].apartment, R);
    snprintf(bad[18].text, sizeof bad[18].text,
             "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
             "\"apartment_id\": \"%s\\u0085\", %s}",
             bad[18].apartment, R);
    size_t hlen = 70000;
    bad[16].big = malloc(hlen + 1);
    HVS_REQUIRE(bad[16].big, "malloc");
    int hp = snprintf(bad[16].big, hlen + 1,
                      "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"b1\", "
                      "\"apartment_id\": \"%s\", %s, \"note\": \"",
                      bad[16].apartment, R);
    memset(bad[16].big + hp, 'n', hlen - (size_t)hp - 2);
    memcpy(bad[16].big + hlen - 2, "\"}", 3);
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
        if (i % 3 == 2 && next_bad < NBAD) {
            fprintf(f, "%s\n", bad[next_bad].big ? bad[next_bad].big : bad[next_bad].text);
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

/* readings.raw read back: each message decoded and compared with the good line it came from. */
typedef struct readback {
    hvs_decoder_t *d;
    const char *path;
    int wrong;
} readback_t;

static void check_good(void *opaque, const rd_kafka_message_t *m) {
    readback_t *rb = opaque;
    hvs_err_t err;
    avro_value_t *v, f, arr, item, sub;
    if (hvs_decoder_decode(rb->d, m->payload, m->len, &v, &err) != 0) {
        rb->wrong++;
        return;
    }
    const char *apt = str_field(v, "apartment_id");
    int i = apt ? atoi(apt + 4) : -1;
    if (i < 0 || i >= GOOD) {
        rb->wrong++;
        return;
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
        m->key_len != strlen(bldg) || memcmp(m->key, bldg, strlen(bldg)) || !src ||
        strncmp(src, rb->path, strlen(rb->path)) != 0) {
        rb->wrong++;
        fprintf(stderr, "apt_%d differs\n", i);
    }
}

/* readings.dlq read back: each DeadLetter matched with the bad line it holds. */
typedef struct letters {
    hvs_decoder_t *d;
    const char *path;
} letters_t;

static void check_letter(void *opaque, const rd_kafka_message_t *m) {
    letters_t *dl = opaque;
    hvs_err_t err;
    avro_value_t *v, f;
    if (hvs_decoder_decode(dl->d, m->payload, m->len, &v, &err) != 0)
        return;
    const void *orig;
    size_t olen;
    avro_value_get_by_name(v, "original_value", &f, NULL);
    avro_value_get_bytes(&f, &orig, &olen);
    for (size_t b = 0; b < NBAD; b++) {
        const char *wanted = bad[b].big ? bad[b].big : bad[b].text;
        size_t wlen = bad[b].big ? HVS_READING_LINE_MAX : strlen(bad[b].text);
        if (olen != wlen || memcmp(orig, wanted, olen) != 0)
            continue;
        char src[200];
        snprintf(src, sizeof src, "%s:%d", dl->path, bad[b].line);
        const char *reason = str_field(v, "error_code");
        const char *source = str_field(v, "source");
        HVS_CHECK(reason && strcmp(reason, bad[b].reason) == 0, "%s: reason %s, want %s",
                  bad[b].apartment, reason ? reason : "-", bad[b].reason);
        HVS_CHECK(source && strcmp(source, src) == 0, "%s: source %s, want %s", bad[b].apartment,
                  source ? source : "-", src);
        HVS_CHECK_EQ_STR(str_field(v, "original_topic"), "readings.raw");
        bad[b].found++;
    }
}

/* "-" reads standard input. */
static void test_stdin(const char *env) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s ingest -", env, HVS_TEST_HVSCTL);
    const char *in =
        "{\"timestamp_str\": \"2024-10-27T10:00:00Z\", \"building_id\": \"s\", \"apartment_id\": "
        "\"in_1\", \"readings\": [{\"sensor_type\": \"room_temp_c\", \"value\": 20}]}\r\n"
        "{\"timestamp_str\": \"2024-10-27T10:15:00Z\", \"building_id\": \"s\", \"apartment_id\": "
        "\"in_1\", \"readings\": [{\"sensor_type\": \"room_temp_c\", \"value\": 20.5}]}\n"
        "not json\n";
    char *out = NULL;
    int rc = hvs_test_run(cmd, in, strlen(in), &out, NULL);
    HVS_CHECK(rc == 0 && out &&
                  strstr(out, "ingest stdin: 3 lines, accepted 2 -> readings.raw, "
                              "rejected 1 -> readings.dlq"),
              "stdin: rc %d: %s", rc, out ? out : "");
    free(out);
}

/* The sample file: its bad lines are marked "bad_<reason>" by the generator. */
static void test_sample(const char *env) {
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/tests/data/readings.sample.jsonl", HVS_TEST_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    HVS_REQUIRE(f, "open %s", path);
    struct {
        char reason[48];
        int n;
    } want[32];
    int nwant = 0, lines = 0, marked = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        lines++;
        char *m = strstr(line, "\"apartment_id\": \"bad_");
        if (!m)
            continue;
        marked++;
        m += strlen("\"apartment_id\": \"bad_");
        char reason[48];
        size_t k = 0;
        while (m[k] && m[k] != '"' && k < sizeof reason - 1)
            reason[k] = m[k], k++;
        reason[k] = '\0';
        int j = 0;
        while (j < nwant && strcmp(want[j].reason, reason) != 0)
            j++;
        if (j == nwant && nwant < 32)
            snprintf(want[nwant++].reason, sizeof want[0].reason, "%s", reason), want[j].n = 0;
        want[j].n++;
    }
    free(line);
    fclose(f);
    HVS_CHECK(nwant >= 13 && lines > 700, "sample: %d lines, %d kinds of bad line", lines, nwant);
    snprintf(cmd, sizeof cmd, "%s %s ingest %s", env, HVS_TEST_HVSCTL, path);
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    char s[256];
    snprintf(s, sizeof s, "%d lines, accepted %d -> readings.raw, rejected %d", lines,
             lines - marked, marked);
    HVS_CHECK(rc == 0 && out && strstr(out, s), "sample summary \"%s\": rc %d\n%s", s, rc,
              out ? out : "");
    for (int j = 0; j < nwant; j++) {
        snprintf(s, sizeof s, "  rejected %-24.40s %d\n", want[j].reason, want[j].n);
        HVS_CHECK(out && strstr(out, s), "sample: \"%s\" in\n%s", s, out ? out : "");
    }
    free(out);
}

/* ---- the fixture ------------------------------------------------------------------------ */

/* The input file (GOOD good lines with the bad ones in between), written by the first case that
 * needs it; and a devbroker onto which `hvsctl ingest` has run once with that file (its exit
 * status and output kept for the summary case). Later ingests (stdin, the sample) go after it. */
static char path[128];
static hvs_test_proc_t broker;
static char env[256];
static bool ingest_ran;
static int ingest_rc;
static char *ingest_out;

static void remove_input(void) {
    unlink(path);
    free(bad[16].big);
}

static void input_file(void) {
    if (path[0])
        return;
    write_input(path, sizeof path);
    hvs_test_cleanup(remove_input);
}

static void stop_broker(void) {
    free(ingest_out);
    hvs_test_proc_stop(&broker);
}

static void ingested(void) {
    if (ingest_ran)
        return;
    ingest_ran = true;
    input_file();
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 3") == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    snprintf(env, sizeof env, "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s ingest %s", env, HVS_TEST_HVSCTL, path);
    ingest_rc = hvs_test_run(cmd, NULL, 0, &ingest_out, NULL);
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* Exit 0; the summary counts the lines, the accepted, and the rejected per reason. */
static void test_summary(void) {
    ingested();
    int rc = ingest_rc;
    char *out = ingest_out;
    HVS_CHECK_EQ_INT(rc, 0);
    char want[256];
    snprintf(want, sizeof want,
             "%d lines, accepted %d -> readings.raw, rejected %zu -> readings.dlq",
             GOOD + (int)NBAD, GOOD, NBAD);
    HVS_CHECK(out && strstr(out, want), "summary \"%s\" in:\n%s", want, out ? out : "");
    for (size_t b = 0; b < NBAD; b++) {
        int count = 0;
        for (size_t k = 0; k < NBAD; k++)
            count += strcmp(bad[k].reason, bad[b].reason) == 0;
        snprintf(want, sizeof want, "  rejected %-24.40s %d\n", bad[b].reason, count);
        HVS_CHECK(out && strstr(out, want), "summary has \"%s\":\n%s", want, out ? out : "");
    }
}

/* readings.raw, read back with the common consumer: every good line, field by field. */
static void test_good_read_back(void) {
    ingested();
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_decoder_t *d;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &d, &err) == 0, "decoder");
    const char *topics[] = {"readings.raw"};
    hvs_test_tail_t t = {.brokers = broker.addr,
                         .topics = topics,
                         .group = "readback",
                         .want = GOOD,
                         .timeout_ms = 20000,
                         .commit = true};
    readback_t rb = {.d = d, .path = path};
    int got = (int)hvs_test_tail(&t, check_good, &rb), wrong = rb.wrong;
    HVS_CHECK_EQ_INT(got, GOOD);
    HVS_CHECK_EQ_INT(wrong, 0);
    int missing = 0;
    for (int i = 0; i < GOOD; i++)
        missing += good_seen[i] != 1;
    HVS_CHECK_EQ_INT(missing, 0);
    hvs_decoder_destroy(d);
    hvs_serde_destroy(s);
}

/* readings.dlq: one DeadLetter per bad line, its reason, exact bytes and FILE:LINE. */
static void test_bad_dead_lettered(void) {
    ingested();
    hvs_serde_t *s;
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_decoder_t *d;
    const char *dtopics[] = {"readings.dlq"};
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_DEAD_LETTER, &d, &err) == 0, "decoder");
    hvs_test_tail_t dt = {.brokers = broker.addr,
                          .topics = dtopics,
                          .group = "dlqback",
                          .want = NBAD,
                          .timeout_ms = 20000,
                          .commit = true};
    letters_t dl = {.d = d, .path = path};
    int letters = (int)hvs_test_tail(&dt, check_letter, &dl);
    HVS_CHECK_EQ_INT(letters, NBAD);
    for (size_t b = 0; b < NBAD; b++)
        HVS_CHECK(bad[b].found == 1, "%s dead-lettered once (%d)", bad[b].apartment, bad[b].found);
    hvs_decoder_destroy(d);
    hvs_serde_destroy(s);
}

static void case_stdin(void) {
    ingested();
    test_stdin(env);
}

static void case_sample(void) {
    ingested();
    test_sample(env);
}

/* Infrastructure failure: no broker there. */
static void test_no_broker(void) {
    input_file();
    char cmd[1024];
    char *out = NULL;
    int rc;
    snprintf(cmd, sizeof cmd, "HVS_KAFKA_BROKERS=127.0.0.1:1 %s ingest --timeout 2 %s 2>&1",
             HVS_TEST_HVSCTL, path);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 1 && out && strstr(out, "cannot reach Kafka at 127.0.0.1:1"),
              "no broker: rc %d: %s", rc, out ? out : "");
    free(out);
}

static const hvs_test_case_t cases[] = {
    {"summary_counts_lines_per_reason", test_summary},
    {"good_lines_read_back_field_by_field", test_good_read_back},
    {"bad_lines_dead_lettered_once_with_exact_bytes", test_bad_dead_lettered},
    {"standard_input_ingested", case_stdin},
    {"sample_file_counts_match_its_markers", case_sample},
    {"unreachable_broker_exits_1_with_clear_error", test_no_broker},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
