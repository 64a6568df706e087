/*
 * test_alerter_it - hvs-alerter as a process against a real redis-server and hvs-devbroker.
 * Topology (three buildings, two teams), four days of apartment-hour scores and hourly hot water
 * go in as Avro, then technicians' feedback; what comes out on `alerts` (the latest record per
 * alert_id) and what the alert book holds in Redis is checked against the scenario written here:
 *   - daily top-k per team (k = 5): team-a's day 0 raises the five best of its seven ANOMALY
 *     candidates with ranks 1..5 in score order; the sixth, still open on day 1, enters day 1's
 *     list; the seventh, over by then, expires; team-b's budget is its own;
 *   - hysteresis: scores flapping 0.6 / 0.2 for 12 hours make one alert (6 hours above);
 *   - CRITICAL: a strong no_heat_response is raised at once, outside the budget (no rank);
 *   - suppression with its reason in the book, never published: vacancy (no hot water for 48 h)
 *     on an ANOMALY, while a stuck-valve rule of the same flat is still raised; building-wide
 *     (all four flats of a building at once); a benign FALSE_POSITIVE (vacation) suppressing the
 *     apartment's next ANOMALY;
 *   - the workflow: UNSURE -> INVESTIGATING -> RESOLVED_TRUE_POSITIVE republished; the same
 *     feedback again changes nothing; refused feedback lands in alerts.feedback.dlq with its
 *     reason (invalid_transition, unknown_alert, alert_not_raised, stale_feedback,
 *     feedback_mismatch, missing_technician_id);
 *   - bad scores and aggregates land in their dead letters with their reasons;
 *   - a restart (SIGTERM) duplicates nothing and loses nothing.
 */
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "hvs/alertbook.h"
#include "hvs/feedback.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */
#define HOURS 96

static hvs_test_proc_t redis, broker, worker;
static char env[1024], logpath[256];
static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_score, *enc_agg, *enc_bld;
static hvs_feedback_writer_t *fbw;

/* ---- the scenario --------------------------------------------------------------------------- */

typedef struct flat {
    const char *building, *apt;
} flat_t;

static const flat_t flats[] = {
    {"bA", "a1"}, {"bA", "a2"}, {"bA", "a3"}, {"bA", "a4"}, {"bA", "a5"}, {"bA", "a6"},
    {"bA", "a7"}, {"bA", "a8"}, {"bB", "b1"}, {"bB", "b2"}, {"bB", "b3"}, {"bB", "b4"},
    {"bC", "c1"}, {"bC", "c2"}, {"bC", "c3"}, {"bC", "c4"},
};
#define NFLATS (int)(sizeof flats / sizeof flats[0])

/* An apartment-hour's score, the rules that fired and their evidence. */
static double score_of(const char *apt, int h, const char **rule, double *rule_score) {
    *rule = NULL, *rule_score = 0;
    int k = apt[0] == 'a' ? apt[1] - '0' : 0;
    if (apt[0] == 'a' && k >= 1 && k <= 7) {
        int from = 2 * k - 1; /* a1 opens at 1, a7 at 13: never two thirds of bA together */
        int to = k == 6 ? 27 : from + 3;
        if (h >= from && h <= to)
            return 0.95 - 0.05 * k; /* a1 0.90 ... a7 0.60 */
        if (k == 3 && h >= 75 && h <= 78)
            return 0.9; /* after the technician's vacation verdict */
    }
    if (!strcmp(apt, "a8") && h >= 30 && h < 42)
        return h % 2 ? 0.2 : 0.6; /* flapping */
    if (!strcmp(apt, "b1") && h >= 50 && h <= 53)
        return 0.95; /* ANOMALY while nobody is home */
    if (!strcmp(apt, "b1") && h >= 60 && h <= 66) {
        *rule = "stuck_valve", *rule_score = 0.8;
        return 0.8;
    }
    if (!strcmp(apt, "b2") && h >= 20 && h <= 21) {
        *rule = "no_heat_response", *rule_score = 0.95;
        return 0.95;
    }
    if (apt[0] == 'c' && h >= 30 && h <= 33)
        return 0.8; /* the whole building: weather or plant */
    if (!strcmp(apt, "c1") && h >= 60 && h <= 63)
        return 0.7;
    return 0.05;
}

/* b1 draws no hot water from the start: vacant from hour 47 on. */
static double water_of(const char *apt, int h) {
    (void)h;
    return !strcmp(apt, "b1") ? 0.0 : 4.0;
}

static void send_raw(const char *topic, const char *key, const void *buf, size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0,
                                  buf, len, &err) == 0,
                "send: %s", err.msg);
}

static void send_json(hvs_encoder_t *enc, const char *topic, const char *key, const char *json) {
    hvs_err_t err = {0};
    const void *buf;
    size_t len;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, &len, &err) == 0,
        "encode %s: %s (%s)", topic, err.msg, json);
    send_raw(topic, key, buf, len);
}

static void send_score(const char *key, const char *bld, const char *apt, long long hour,
                       double score, const char *rule, double rule_score) {
    char json[2048], rules[128] = "[]", rs[32] = "null";
    if (rule) {
        snprintf(rules, sizeof rules, "[\"%s\"]", rule);
        snprintf(rs, sizeof rs, "%g", rule_score);
    }
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%.17g,"
             "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
             "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[\"%s at %lld\"],"
             "\"revision\":1,\"models\":[],\"rules\":%s,\"rule_score\":%s,\"residual_z\":null,"
             "\"scored_at\":%lld}",
             bld, apt, hour, score, rule ? rule : "score", (hour - T0) / HOUR, rules, rs,
             (long long)hvs_test_now_ms());
    send_json(enc_score, "scores.anomaly", key, json);
}

static void send_water(const char *bld, const char *apt, long long hour, double litres) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":3600000,\"hot_water_litres\":%g,"
             "\"emitted_at\":%lld}",
             bld, apt, hour, hour + HOUR, litres, hour + HOUR);
    send_json(enc_agg, "aggregates.hourly", bld, json);
}

static void send_hours(int from, int to) {
    for (int h = from; h < to; h++)
        for (int i = 0; i < NFLATS; i++) {
            const char *rule;
            double rs;
            double s = score_of(flats[i].apt, h, &rule, &rs);
            send_water(flats[i].building, flats[i].apt, T0 + h * HOUR, water_of(flats[i].apt, h));
            send_score(flats[i].building, flats[i].building, flats[i].apt, T0 + h * HOUR, s, rule,
                       rs);
        }
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

static void send_topology(void) {
    static const char *const bld[3] = {"bA", "bB", "bC"}, *const team[3] = {"team-a", "team-a",
                                                                            "team-b"};
    for (int b = 0; b < 3; b++) {
        char json[4096], apts[2048] = "";
        for (int i = 0; i < NFLATS; i++)
            if (!strcmp(flats[i].building, bld[b]))
                snprintf(apts + strlen(apts), sizeof apts - strlen(apts),
                         "%s{\"apartment_id\":\"%s\",\"rooms\":[]}", apts[0] ? "," : "",
                         flats[i].apt);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.4,\"longitude\":8.5,\"apartments\":[%s],\"updated_at\":%lld,"
                 "\"team\":\"%s\"}",
                 bld[b], T0 - 400 * DAY, apts, T0, team[b]);
        send_json(enc_bld, "topology", bld[b], json);
    }
}

static void send_feedback(const char *bld, const char *alert, const char *apt,
                          hvs_feedback_label_t label, const char *cause, long long at,
                          const char *tech) {
    hvs_feedback_t f = {.alert_id = alert,
                        .building_id = bld,
                        .apartment_id = apt,
                        .technician_id = tech,
                        .label = label,
                        .root_cause = cause,
                        .labelled_at = at};
    hvs_err_t err = {0};
    if (tech) {
        HVS_REQUIRE(hvs_feedback_send(fbw, prod, &f, &err) == 0, "feedback: %s", err.msg);
        return;
    }
    /* no technician: the writer refuses it, so write the record by hand */
    char json[1024];
    hvs_encoder_t *enc;
    HVS_REQUIRE(hvs_encoder_new(serde, HVS_SCHEMA_FEEDBACK, "alerts.feedback", &enc, &err) == 0,
                "encoder: %s", err.msg);
    snprintf(json, sizeof json,
             "{\"alert_id\":\"%s\",\"building_id\":\"%s\",\"apartment_id\":\"%s\","
             "\"technician_id\":\"\",\"label\":\"TRUE_POSITIVE\",\"labelled_at\":%lld}",
             alert, bld, apt, at);
    send_json(enc, "alerts.feedback", bld, json);
    hvs_encoder_destroy(enc);
}

/* ---- reading back --------------------------------------------------------------------------- */

/* The latest record per alert_id on `alerts`, and how many records there were. */
static json_t *latest_alerts(size_t *records) {
    json_t *msgs = hvs_test_tail_json(env, "alerts", NULL), *latest = json_object();
    HVS_REQUIRE(msgs, "tail alerts");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *v = json_object_get(m, "value");
        json_object_set(latest, json_string_value(json_object_get(v, "alert_id")), v);
    }
    if (records)
        *records = json_array_size(msgs);
    json_decref(msgs);
    return latest;
}

static const char *str(json_t *v, const char *f) {
    return hvs_test_str(json_string_value(json_object_get(v, f)));
}

static long long rank_of(json_t *v) {
    json_t *r = json_object_get(v, "rank");
    return json_is_integer(r) ? json_integer_value(r) : 0;
}

/* Wait until `pred` holds of the latest alerts (up to 60 s). */
static json_t *wait_alerts(bool (*pred)(json_t *)) {
    for (int k = 0; k < 300; k++) {
        json_t *a = latest_alerts(NULL);
        if (pred(a))
            return a;
        json_decref(a);
        usleep(200000);
    }
    return latest_alerts(NULL);
}

static bool day0_listed(json_t *a) { return json_object_get(a, "a5#2024-12-02#ANOMALY") != NULL; }

/* The book entry of an alert id in Redis (false when absent). */
static bool book_entry(const char *bld, const char *id, hvs_alertbook_entry_t *e) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &r, &err) == 0, "redis: %s", err.msg);
    redisReply *rep = NULL;
    char key[128];
    snprintf(key, sizeof key, "hvs:{%s}:al:alerts", bld);
    bool ok = hvs_redis_command(r, &rep, &err, "HGET %s %s", key, id) == 0 &&
              rep->type == REDIS_REPLY_STRING;
    if (ok) {
        const char *nl = memchr(rep->str, '\n', rep->len);
        ok = hvs_alertbook_parse(rep->str, nl ? (size_t)(nl - rep->str) : rep->len, e, &err) == 0;
        HVS_CHECK(ok, "entry %s parses: %s", id, err.msg);
    }
    freeReplyObject(rep);
    hvs_redis_destroy(r);
    return ok;
}

/* ---- fixture -------------------------------------------------------------------------------- */

static void start_worker(void) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env %s HVS_KAFKA_GROUP=al-it %s --batch 500 --top-k 5 --carry 6h --lag 2h", env,
             HVS_TEST_ALERTER);
    HVS_REQUIRE(hvs_test_spawn(&worker, cmd, logpath) == 0, "spawn hvs-alerter");
}

static void teardown(void) {
    hvs_test_proc_stop(&worker);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_feedback_writer_destroy(fbw);
    hvs_encoder_destroy(enc_score), hvs_encoder_destroy(enc_agg), hvs_encoder_destroy(enc_bld);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    if (hvs_test_failed == 0)
        unlink(logpath);
    else
        fprintf(stderr, "alerter log: %s\n", logpath);
}

static void setup(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1 HVS_LOG_LEVEL=info",
             broker.addr, redis.addr);
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-alerter-%d.log", (int)getpid());
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_ANOMALY_SCORE, "scores.anomaly", &enc_score,
                                    &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &enc_agg,
                                    &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, "topology", &enc_bld, &err) == 0 &&
                    hvs_feedback_writer_new(serde, &fbw, &err) == 0,
                "setup: %s", err.msg);
    send_topology();
}

/* ---- the checks ----------------------------------------------------------------------------- */

static void check_day0(json_t *a) {
    /* team-a's day 0: a1..a5 ranked by score; a6, a7 not (yet) */
    for (int k = 1; k <= 5; k++) {
        char id[64];
        snprintf(id, sizeof id, "a%d#2024-12-02#ANOMALY", k);
        json_t *v = json_object_get(a, id);
        HVS_CHECK(v != NULL, "%s raised", id);
        if (!v)
            continue;
        HVS_CHECK_EQ_INT((int)rank_of(v), k);
        HVS_CHECK_EQ_STR(str(v, "team"), "team-a");
        HVS_CHECK_NEAR(json_number_value(json_object_get(v, "score")), 0.95 - 0.05 * k, 1e-6);
        HVS_CHECK_EQ_STR(str(v, "severity"), "WARNING");
    }
    HVS_CHECK(!json_object_get(a, "a7#2024-12-02#ANOMALY"), "a7 is not in day 0's list");
    /* the CRITICAL no-heat alert: at once, no rank, not counted in the budget */
    json_t *c = json_object_get(a, "b2#2024-12-02#RULE_NO_RESPONSE");
    HVS_CHECK(c != NULL, "the critical alert is raised");
    if (c) {
        HVS_CHECK_EQ_STR(str(c, "severity"), "CRITICAL");
        HVS_CHECK_EQ_INT((int)rank_of(c), 0);
        HVS_CHECK(strstr(str(c, "summary"), "no heat") != NULL, "summary: %s", str(c, "summary"));
    }
}

static bool fb_applied(json_t *a) {
    json_t *v = json_object_get(a, "a1#2024-12-02#ANOMALY");
    json_t *w = json_object_get(a, "a3#2024-12-02#ANOMALY");
    return v && w && !strcmp(str(v, "status"), "RESOLVED_TRUE_POSITIVE") &&
           !strcmp(str(w, "status"), "RESOLVED_FALSE_POSITIVE");
}

static void feedback_phase(void) {
    long long t = T0 + 40 * HOUR;
    const char *a1 = "a1#2024-12-02#ANOMALY", *a2 = "a2#2024-12-02#ANOMALY",
               *a3 = "a3#2024-12-02#ANOMALY", *a4 = "a4#2024-12-02#ANOMALY";
    send_feedback("bA", a1, "a1", HVS_FEEDBACK_UNSURE, NULL, t, "tech-1");
    send_feedback("bA", a1, "a1", HVS_FEEDBACK_TRUE_POSITIVE, "stuck_valve", t + HOUR, "tech-1");
    send_feedback("bA", a1, "a1", HVS_FEEDBACK_TRUE_POSITIVE, "stuck_valve", t + HOUR, "tech-1");
    send_feedback("bA", a1, "a1", HVS_FEEDBACK_UNSURE, NULL, t + 2 * HOUR, "tech-1");
    send_feedback("bA", a2, "a2", HVS_FEEDBACK_FALSE_POSITIVE, "no_fault_found", t, "tech-2");
    send_feedback("bA", a2, "a2", HVS_FEEDBACK_FALSE_POSITIVE, "no_fault_found", t - HOUR,
                  "tech-2");
    send_feedback("bA", a3, "a3", HVS_FEEDBACK_FALSE_POSITIVE, "vacation", t, "tech-2");
    send_feedback("bA", a4, "a5", HVS_FEEDBACK_TRUE_POSITIVE, NULL, t, "tech-2");
    send_feedback("bA", "a9#2024-12-02#ANOMALY", "a9", HVS_FEEDBACK_TRUE_POSITIVE, NULL, t,
                  "tech-2");
    send_feedback("bA", "a7#2024-12-02#ANOMALY", "a7", HVS_FEEDBACK_TRUE_POSITIVE, NULL, t,
                  "tech-2");
    send_feedback("bA", a4, "a4", HVS_FEEDBACK_TRUE_POSITIVE, NULL, t, NULL);
    /* an alert of a day in the future: refused at once, not held */
    send_feedback("bA", "a1#2099-01-01#ANOMALY", "a1", HVS_FEEDBACK_TRUE_POSITIVE, NULL, t,
                  "tech-1");
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

/* The feedback dead letters: `n` of them (unknown_alert twice: a9's and the future day's), with
 * the first n - 1 of the reasons below. The feedback on a7, a candidate when it came, is held
 * until a7 can no longer be raised (it expires with day 1's list, in the second phase), then
 * refused as never raised. */
static void check_dead_letters(int n) {
    const char *want[] = {"invalid_transition", "stale_feedback",        "feedback_mismatch",
                          "unknown_alert",      "missing_technician_id", "alert_not_raised"};
    json_t *d = NULL;
    for (int k = 0; k < 150; k++) {
        json_decref(d);
        d = hvs_test_tail_json(env, "alerts.feedback.dlq", NULL);
        if ((int)json_array_size(d) >= n)
            break;
        usleep(200000);
    }
    HVS_CHECK_EQ_INT((int)json_array_size(d), n);
    for (int k = 0; k < n - 1; k++) {
        bool seen = false;
        size_t i;
        json_t *m;
        json_array_foreach(d, i, m) {
            const char *r = json_string_value(
                json_object_get(json_object_get(m, "value"), "error_code"));
            seen |= r && !strcmp(r, want[k]);
        }
        HVS_CHECK(seen, "a feedback dead letter with reason %s", want[k]);
    }
    json_decref(d);
}

static void bad_inputs(void) {
    send_raw("scores.anomaly", "bA", "\0\0\0\0\x0fgarbage", 12);
    send_score("bA", "bA", "a1", T0 + 90 * HOUR, 1.5, NULL, 0);         /* out of range */
    send_score("bA", "bA", "a1", T0 + 90 * HOUR + 60000, 0.1, NULL, 0); /* not on the hour */
    send_score("bB", "bA", "a1", T0 + 90 * HOUR, 0.1, NULL, 0);         /* another key */
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_flush(prod, 20000, &err) == 0, "flush: %s", err.msg);
}

static bool all_done(json_t *a) {
    return json_object_get(a, "c1#2024-12-04#ANOMALY") != NULL &&
           json_object_get(a, "b1#2024-12-04#RULE_STUCK_VALVE") != NULL;
}

static void check_final(json_t *a) {
    check_day0(a);
    json_t *v = json_object_get(a, "a1#2024-12-02#ANOMALY");
    HVS_CHECK_EQ_STR(str(v, "status"), "RESOLVED_TRUE_POSITIVE");
    HVS_CHECK_EQ_STR(str(json_object_get(v, "evidence"), "root_cause"), "stuck_valve");
    HVS_CHECK_EQ_STR(str(json_object_get(a, "a2#2024-12-02#ANOMALY"), "status"),
                     "RESOLVED_FALSE_POSITIVE");
    /* day 1: a6 (open since day 0) first, then the flapping a8 as one alert */
    json_t *a6 = json_object_get(a, "a6#2024-12-02#ANOMALY");
    HVS_CHECK(a6 != NULL, "a6 enters day 1's list");
    if (a6) {
        HVS_CHECK_EQ_INT((int)rank_of(a6), 1);
        HVS_CHECK_EQ_STR(str(a6, "status"), "UNSEEN");
    }
    json_t *a8 = json_object_get(a, "a8#2024-12-03#ANOMALY");
    HVS_CHECK(a8 != NULL, "the flapping a8 is raised");
    if (a8) {
        HVS_CHECK_EQ_INT((int)rank_of(a8), 2);
        HVS_CHECK_EQ_STR(str(json_object_get(a8, "evidence"), "hours_above"), "6");
    }
    int a8_alerts = 0;
    const char *key;
    json_t *x;
    json_object_foreach(a, key, x) a8_alerts += !strncmp(key, "a8#", 3);
    HVS_CHECK_EQ_INT(a8_alerts, 1);
    /* team-b: c1 alone on day 2 is its list's first */
    json_t *c1 = json_object_get(a, "c1#2024-12-04#ANOMALY");
    HVS_CHECK(c1 && rank_of(c1) == 1, "c1 is team-b's first on day 2");
    /* a stuck valve while nobody is home is still raised */
    HVS_CHECK(json_object_get(a, "b1#2024-12-04#RULE_STUCK_VALVE") != NULL,
              "b1's stuck valve is raised");
    /* suppressed: never published, kept with the reason */
    static const struct {
        const char *bld, *id, *reason;
    } sup[] = {{"bB", "b1#2024-12-04#ANOMALY", "vacancy"},
               {"bC", "c1#2024-12-03#ANOMALY", "building_wide"},
               {"bC", "c4#2024-12-03#ANOMALY", "building_wide"},
               {"bA", "a3#2024-12-05#ANOMALY", "feedback:vacation"}};
    for (size_t i = 0; i < sizeof sup / sizeof sup[0]; i++) {
        HVS_CHECK(!json_object_get(a, sup[i].id), "%s is not published", sup[i].id);
        hvs_alertbook_entry_t e;
        HVS_CHECK(book_entry(sup[i].bld, sup[i].id, &e), "%s is in the book", sup[i].id);
        HVS_CHECK_EQ_STR(hvs_alertbook_disposition_name(e.disposition), "SUPPRESSED");
        HVS_CHECK_EQ_STR(e.reason, sup[i].reason);
    }
    hvs_alertbook_entry_t e;
    HVS_CHECK(book_entry("bA", "a7#2024-12-02#ANOMALY", &e), "a7 is in the book");
    HVS_CHECK_EQ_STR(hvs_alertbook_disposition_name(e.disposition), "EXPIRED");
    HVS_CHECK(!json_object_get(a, "a7#2024-12-02#ANOMALY"), "a7 is never published");
}

static void run_all(void) {
    setup();
    send_hours(0, 48);
    bad_inputs();
    start_worker();
    json_t *a = wait_alerts(day0_listed);
    check_day0(a);
    json_decref(a);
    feedback_phase();
    a = wait_alerts(fb_applied);
    json_decref(a);
    check_dead_letters(6);
    /* a restart between the phases loses and duplicates nothing */
    hvs_test_proc_stop(&worker);
    size_t before, after;
    json_decref(latest_alerts(&before));
    start_worker();
    send_hours(48, HOURS);
    a = wait_alerts(all_done);
    /* the book is written once the batch's alerts are acknowledged: wait for its last entries */
    hvs_alertbook_entry_t e;
    for (int k = 0; k < 150 && !(book_entry("bA", "a3#2024-12-05#ANOMALY", &e) &&
                                 book_entry("bA", "a7#2024-12-02#ANOMALY", &e) &&
                                 e.disposition == HVS_ALERTBOOK_EXPIRED);
         k++)
        usleep(200000);
    check_final(a);
    json_decref(latest_alerts(&after));
    HVS_CHECK(after > before, "records after the restart (%zu -> %zu)", before, after);
    check_dead_letters(7);
    json_decref(a);
    /* the bad scores' dead letters */
    json_t *d = hvs_test_tail_json(env, "scores.anomaly.dlq", NULL);
    HVS_CHECK_EQ_INT((int)json_array_size(d), 4);
    json_decref(d);
}

/* Settings that contradict each other are refused at start, naming them (no services needed:
 * the settings are checked before anything connects). */
static void settings_refused(void) {
    static const struct {
        const char *args, *says;
    } bad[] = {
        {"--close 0.6 --open 0.5", "HVS_ALERT_CLOSE must not exceed HVS_ALERT_OPEN"},
        {"--verdict-memory 20d --keep 14d", "HVS_ALERT_VERDICT_MEMORY must not exceed"},
        {"--verdict-prior 0", "HVS_ALERT_VERDICT_PRIOR"},
        {"--critical-rules no_such_rule", "no_such_rule is not a rule of the scorer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd,
                 "env HVS_KAFKA_BROKERS=127.0.0.1:1 HVS_REDIS_URL=redis://127.0.0.1:1 %s %s 2>&1",
                 HVS_TEST_ALERTER, bad[i].args);
        int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
        HVS_CHECK(rc != 0, "%s: refused (exit %d)", bad[i].args, rc);
        HVS_CHECK(out && strstr(out, bad[i].says), "%s: says '%s': %s", bad[i].args, bad[i].says,
                  out ? out : "");
        free(out);
    }
}

static const hvs_test_case_t cases[] = {
    {"settings_refused", settings_refused},
    {"alerter", run_all},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
