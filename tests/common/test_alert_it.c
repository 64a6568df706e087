/*
 * test_alert_it - alerts through a real hvs-devbroker, read back with `hvsctl tail alerts` (the
 * operator's decoder, not ours): id "<entity>#<UTC date>#<TYPE>", every field, the evidence
 * map, status (zero: UNSEEN) and rank (zero: null), keyed by building; ids before 1970 and past midnight
 * fall on the right dates.
 */
#include <jansson.h>

#include "hvs/alert.h"
#include "hvs/log.h"
#include "hvs_test.h"

/* Ids: "<entity>#<UTC date>#<TYPE>", before 1970 and at midnight on the right dates. */
static void test_alert_id(void) {
    hvs_alert_t a = {.building_id = "bldg_1",
                     .type = HVS_ALERT_DATA_QUALITY,
                     .first_seen = 1733097599999LL /* 2024-12-01T23:59:59.999Z */};
    char id[128];
    HVS_CHECK(hvs_alert_id(&a, id, sizeof id) > 0 &&
                  strcmp(id, "bldg_1#2024-12-01#DATA_QUALITY") == 0,
              "%s", id);
    a.first_seen = 1733097600000LL;
    a.apartment_id = "apt_7";
    a.type = HVS_ALERT_RULE_STUCK_VALVE;
    HVS_CHECK(hvs_alert_id(&a, id, sizeof id) > 0 &&
                  strcmp(id, "apt_7#2024-12-02#RULE_STUCK_VALVE") == 0,
              "%s", id);
    a.first_seen = -1;
    HVS_CHECK(hvs_alert_id(&a, id, sizeof id) > 0 &&
                  strcmp(id, "apt_7#1969-12-31#RULE_STUCK_VALVE") == 0,
              "%s", id);
    HVS_CHECK(hvs_alert_id(&a, id, 10) == -1, "too small a buffer");
    HVS_CHECK_EQ_STR(hvs_alert_status_name(HVS_ALERT_UNSEEN), "UNSEEN");
    HVS_CHECK_EQ_STR(hvs_alert_status_name(HVS_ALERT_RESOLVED_FALSE_POSITIVE),
                     "RESOLVED_FALSE_POSITIVE");
}

/* Two alerts sent through a real hvs-devbroker, read back with `hvsctl tail alerts`. */
static void test_alerts_read_back(void) {
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    hvs_err_t err = {0};
    hvs_serde_t *s;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .group = "t", .client_id = "test"};
    hvs_producer_t *p;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    hvs_alerter_t *al;
    HVS_REQUIRE(hvs_alerter_new(s, p, &al, &err) == 0, "alerter: %s", err.msg);
    const char *ev[] = {"feature", "temperature_c", "missing_rate", "0.200", NULL};
    hvs_alert_t dq = {.building_id = "bldg_9",
                      .type = HVS_ALERT_DATA_QUALITY,
                      .severity = HVS_SEVERITY_CRITICAL,
                      .score = 0.2,
                      .summary = "temperature_c missing in 20.0 % of vectors",
                      .evidence = ev,
                      .first_seen = 1733097600000LL,
                      .updated_at = 1733101200000LL};
    HVS_CHECK(hvs_alerter_send(al, &dq, &err) == 0, "send: %s", err.msg);
    hvs_alert_t an = {.building_id = "bldg_9",
                      .apartment_id = "apt_1",
                      .type = HVS_ALERT_ANOMALY,
                      .score = 3.5,
                      .summary = "x",
                      .model = "anomaly-residual/global:3",
                      .team = "north",
                      .status = HVS_ALERT_INVESTIGATING,
                      .rank = 2,
                      .first_seen = 1733097600000LL,
                      .updated_at = 1733097600000LL};
    HVS_CHECK(hvs_alerter_send(al, &an, &err) == 0, "send: %s", err.msg);
    HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0 && hvs_alerter_sent(al) == 2, "flushed");

    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "HVS_KAFKA_BROKERS=%s %s tail alerts --from-beginning --max 2 2>/dev/null",
             broker.addr, HVS_TEST_HVSCTL);
    HVS_CHECK(hvs_test_run(cmd, NULL, 0, &out, NULL) == 0 && out, "hvsctl tail");
    int found = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL), *v = json_object_get(j, "value");
        const char *aid = json_string_value(json_object_get(v, "alert_id"));
        HVS_CHECK(strcmp(json_string_value(json_object_get(j, "key")), "bldg_9") == 0,
                  "keyed by building");
        if (aid && strcmp(aid, "bldg_9#2024-12-02#DATA_QUALITY") == 0) {
            found++;
            json_t *e = json_object_get(v, "evidence");
            HVS_CHECK(
                json_is_null(json_object_get(v, "apartment_id")) &&
                    strcmp(json_string_value(json_object_get(v, "severity")), "CRITICAL") == 0 &&
                    strcmp(json_string_value(json_object_get(v, "status")), "UNSEEN") == 0 &&
                    strcmp(json_string_value(json_object_get(e, "feature")), "temperature_c") ==
                        0 &&
                    strcmp(json_string_value(json_object_get(e, "missing_rate")), "0.200") == 0 &&
                    json_integer_value(json_object_get(v, "updated_at")) == 1733101200000LL &&
                    json_is_null(json_object_get(v, "model")) &&
                    json_is_null(json_object_get(v, "rank")),
                "data-quality alert fields: %s", line);
        } else if (aid && strcmp(aid, "apt_1#2024-12-02#ANOMALY") == 0) {
            found++;
            HVS_CHECK(
                strcmp(json_string_value(json_object_get(v, "apartment_id")), "apt_1") == 0 &&
                    strcmp(json_string_value(json_object_get(v, "model")),
                           "anomaly-residual/global:3") == 0 &&
                    strcmp(json_string_value(json_object_get(v, "team")), "north") == 0 &&
                    json_real_value(json_object_get(v, "score")) == 3.5 &&
                    strcmp(json_string_value(json_object_get(v, "status")), "INVESTIGATING") == 0 &&
                    json_integer_value(json_object_get(v, "rank")) == 2 &&
                    json_object_size(json_object_get(v, "evidence")) == 0,
                "anomaly alert fields: %s", line);
        }
        json_decref(j);
    }
    HVS_CHECK(found == 2, "both alerts read back: %d", found);
    free(out);
    hvs_alerter_destroy(al);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
    hvs_test_proc_stop(&broker);
}

static const hvs_test_case_t cases[] = {
    {"alert_id_names_entity_utc_day_and_type", test_alert_id},
    {"alerts_read_back_with_every_field_keyed_by_building", test_alerts_read_back},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
