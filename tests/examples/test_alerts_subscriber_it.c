/*
 * test_alerts_subscriber_it - docs/examples/alerts_subscriber.py, the downstream example, against
 * a real hvs-devbroker: alerts published with the project's encoder (hvs_alerter_send) plus two
 * values it must skip (an unknown schema id, a wrong magic byte), all keyed by one building so
 * they share a partition and arrive in order. The subscriber runs under Debian's python3 with
 * python3-confluent-kafka and python3-avro and nothing of ours but schemas/Alert.avsc; its exact
 * stdout is checked: each new UNSEEN alert once (the one published twice too), INVESTIGATING
 * not at all, team and rank printed when set, "-" when null.
 */
#include <jansson.h>

#include "hvs/alert.h"
#include "hvs/log.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define DAY 1733097600000LL /* 2024-12-02T00:00:00Z */

static hvs_test_proc_t g_broker;
static char g_dir[64];

static void stop_fixture(void) {
    hvs_test_proc_stop(&g_broker);
    if (g_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        (void)hvs_test_run(cmd, NULL, 0, NULL, NULL);
    }
}

/* The devbroker with 7 messages on `alerts`, once for every case. */
static void fixture(void) {
    if (g_broker.pid)
        return;
    snprintf(g_dir, sizeof g_dir, "/tmp/hvs-test-subscriber-XXXXXX");
    HVS_REQUIRE(mkdtemp(g_dir), "mkdtemp");
    HVS_REQUIRE(hvs_test_devbroker_start(&g_broker, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(stop_fixture);
    hvs_err_t err = {0};
    hvs_serde_t *s;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_kafka_conf_t kc = {.brokers = g_broker.addr, .group = "t", .client_id = "test"};
    hvs_producer_t *p;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    hvs_alerter_t *al;
    HVS_REQUIRE(hvs_alerter_new(s, p, &al, &err) == 0, "alerter: %s", err.msg);

    const char *ev1[] = {"valve_pct", "100", "hours", "3", NULL};
    const char *ev2[] = {"valve_pct", "100", "hours", "5", NULL};
    hvs_alert_t stuck = {.building_id = "bldg_1",
                         .apartment_id = "apt_1",
                         .type = HVS_ALERT_RULE_STUCK_VALVE,
                         .severity = HVS_SEVERITY_WARNING,
                         .score = 0.8,
                         .summary = "valve stuck open",
                         .evidence = ev1,
                         .first_seen = DAY + 3600000,
                         .updated_at = DAY + 3 * 3600000};
    HVS_CHECK(hvs_alerter_send(al, &stuck, &err) == 0, "send: %s", err.msg);
    hvs_alert_t investigating = {.building_id = "bldg_1",
                                 .apartment_id = "apt_2",
                                 .type = HVS_ALERT_ANOMALY,
                                 .status = HVS_ALERT_INVESTIGATING,
                                 .score = 2.0,
                                 .summary = "being looked at",
                                 .model = "anomaly-residual/global:3",
                                 .first_seen = DAY,
                                 .updated_at = DAY};
    HVS_CHECK(hvs_alerter_send(al, &investigating, &err) == 0, "send: %s", err.msg);

    /* Skipped by the subscriber: schema id 99, then magic byte 1. */
    const char *key = "bldg_1", *topic = hvs_topic_name("alerts");
    HVS_CHECK(hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key),
                                "\0\0\0\0\x63\x02", 6, &err) == 0,
              "send: %s", err.msg);
    HVS_CHECK(hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key),
                                "\x01\0\0\0\x09\x02", 6, &err) == 0,
              "send: %s", err.msg);

    hvs_alert_t ranked = {.building_id = "bldg_1",
                          .apartment_id = "apt_3",
                          .type = HVS_ALERT_ANOMALY,
                          .severity = HVS_SEVERITY_CRITICAL,
                          .score = 3.456,
                          .summary = "no heat response since 06:00",
                          .model = "anomaly-classifier/global:2",
                          .team = "north",
                          .rank = 1,
                          .first_seen = DAY + 6 * 3600000,
                          .updated_at = DAY + 6 * 3600000};
    HVS_CHECK(hvs_alerter_send(al, &ranked, &err) == 0, "send: %s", err.msg);
    stuck.evidence = ev2; /* later evidence, same alert id: not printed again */
    stuck.updated_at = DAY + 5 * 3600000;
    HVS_CHECK(hvs_alerter_send(al, &stuck, &err) == 0, "send: %s", err.msg);
    const char *ev3[] = {"feature", "temperature_c", "missing_rate", "0.200", NULL};
    hvs_alert_t dq = {.building_id = "bldg_1",
                      .type = HVS_ALERT_DATA_QUALITY,
                      .severity = HVS_SEVERITY_INFO,
                      .score = 0.2,
                      .summary = "temperature_c missing in 20.0 % of vectors",
                      .evidence = ev3,
                      .first_seen = DAY + 7 * 3600000,
                      .updated_at = DAY + 7 * 3600000};
    HVS_CHECK(hvs_alerter_send(al, &dq, &err) == 0, "send: %s", err.msg);
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0 && hvs_alerter_sent(al) == 5, "flushed: %s",
                err.msg);
    hvs_alerter_destroy(al);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
}

/* Run the subscriber with `args`; its stdout into *out, stderr into g_dir/<name>.err.
 * Returns its exit status. */
static int subscriber(const char *name, const char *args, char **out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s %s/docs/examples/alerts_subscriber.py --bootstrap %s --group %s %s 2>%s/%s.err",
             HVS_TEST_PYTHON3, HVS_TEST_SOURCE_DIR, g_broker.addr, name, args, g_dir, name);
    int rc = hvs_test_run(cmd, NULL, 0, out, NULL);
    snprintf(cmd, sizeof cmd, "cat %s/%s.err >&2", g_dir, name);
    (void)hvs_test_run(cmd, NULL, 0, NULL, NULL); /* into the test's log */
    return rc;
}

static char *stderr_of(const char *name) {
    char cmd[256], *err = NULL;
    snprintf(cmd, sizeof cmd, "cat %s/%s.err", g_dir, name);
    (void)hvs_test_run(cmd, NULL, 0, &err, NULL);
    return err;
}

static void test_text(void) {
    fixture();
    char *out = NULL;
    int rc = subscriber("text", "--topic alerts --from-beginning --idle-exit 5", &out);
    HVS_CHECK(rc == 0, "exit status %d", rc);
    HVS_CHECK_EQ_STR(out, "UNSEEN apt_1#2024-12-02#RULE_STUCK_VALVE team=- rank=- severity=WARNING "
                          "score=0.80 valve stuck open\n"
                          "UNSEEN apt_3#2024-12-02#ANOMALY team=north rank=1 severity=CRITICAL "
                          "score=3.46 no heat response since 06:00\n"
                          "UNSEEN bldg_1#2024-12-02#DATA_QUALITY team=- rank=- severity=INFO "
                          "score=0.20 temperature_c missing in 20.0 % of vectors\n");
    char *err = stderr_of("text");
    HVS_CHECK(err && strstr(err, "unknown schema id 99 (known: 9): skipped"), "%s",
              hvs_test_str(err));
    HVS_CHECK(err && strstr(err, "magic byte 1, expected 0: skipped"), "%s", hvs_test_str(err));
    HVS_CHECK(err && strstr(err, "7 messages, 4 alerts, 3 printed, 2 skipped"), "%s",
              hvs_test_str(err));
    free(err);
    free(out);
}

static void test_json(void) {
    fixture();
    char *out = NULL;
    int rc = subscriber("json", "--from-beginning --json --max-messages 7", &out);
    HVS_CHECK(rc == 0, "exit status %d", rc);
    json_t *js[8] = {0};
    int n = out ? hvs_test_json_lines(out, js, 8) : 0;
    HVS_CHECK_EQ_INT(n, 3);
    const char *ids[] = {"apt_1#2024-12-02#RULE_STUCK_VALVE", "apt_3#2024-12-02#ANOMALY",
                         "bldg_1#2024-12-02#DATA_QUALITY"};
    for (int i = 0; i < n && i < 3; i++) {
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(js[i], "alert_id")), ids[i]);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(js[i], "status")), "UNSEEN");
    }
    if (n == 3) {
        json_t *a = js[0], *r = js[1], *d = js[2];
        /* the first record of the alert printed is the one printed */
        HVS_CHECK_EQ_STR(
            json_string_value(json_object_get(json_object_get(a, "evidence"), "hours")), "3");
        HVS_CHECK_EQ_INT(json_integer_value(json_object_get(a, "updated_at")), DAY + 3 * 3600000);
        HVS_CHECK_EQ_INT(json_integer_value(json_object_get(a, "first_seen")), DAY + 3600000);
        HVS_CHECK(json_is_null(json_object_get(a, "rank")) &&
                      json_is_null(json_object_get(a, "team")),
                  "rank and team null");
        HVS_CHECK_EQ_INT(json_integer_value(json_object_get(r, "rank")), 1);
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(r, "team")), "north");
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(r, "model")),
                         "anomaly-classifier/global:2");
        HVS_CHECK_NEAR(json_real_value(json_object_get(r, "score")), 3.456, 1e-12);
        HVS_CHECK(json_is_null(json_object_get(d, "apartment_id")), "building-level");
        HVS_CHECK_EQ_STR(json_string_value(json_object_get(d, "building_id")), "bldg_1");
        HVS_CHECK_EQ_STR(
            json_string_value(json_object_get(json_object_get(d, "evidence"), "missing_rate")),
            "0.200");
    }
    hvs_test_json_lines_free(js, n < 8 ? n : 8);
    free(out);
}

static const hvs_test_case_t cases[] = {
    {"prints_each_new_unseen_alert_once_skips_unknown_ids", test_text},
    {"json_lines_until_max_messages", test_json},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
