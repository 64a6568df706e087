/*
 * test_technician_it - the real hvs-technician against a real hvs-devbroker: alerts published
 * with the alerter (alert.h), a small labels file in the simulator's format, and the Feedback
 * records read back from alerts.feedback: exactly one per answerable alert, with the verdict,
 * root cause, technician and labelled_at the ground truth gives; nothing for data-quality,
 * building-level or repeated alerts; nothing at all with HVS_TECH_UNANSWERED=1; every verdict
 * flipped with HVS_TECH_ERROR_RATE=1.
 */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include "hvs/alert.h"
#include "hvs/feedback.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs_test.h"

#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */

static hvs_test_proc_t broker;
static char labels_path[128], logpath[3][128];

static void teardown(void) {
    hvs_test_proc_stop(&broker);
    remove(labels_path);
}

/* A label line as hvs-simulator --labels-out writes it (tools/simulator/output.c). */
static void label(FILE *f, const char *b, const char *a, const char *cat, const char *type,
                  long long start, long long end) {
    char bq[64], aq[64];
    snprintf(bq, sizeof bq, b ? "\"%s\"" : "null", b);
    snprintf(aq, sizeof aq, a ? "\"%s\"" : "null", a);
    fprintf(f,
            "{\"building_id\":%s,\"apartment_id\":%s,\"room\":null,\"category\":\"%s\","
            "\"type\":\"%s\",\"start\":\"x\",\"end\":\"y\",\"start_ms\":%lld,\"end_ms\":%lld,"
            "\"magnitude\":0}\n",
            bq, aq, cat, type, start, end);
}

static void write_labels(void) {
    snprintf(labels_path, sizeof labels_path, "/tmp/hvs-test-tech-labels-%d.jsonl", (int)getpid());
    FILE *f = fopen(labels_path, "w");
    HVS_REQUIRE(f, "labels file");
    label(f, "bldg_001", "apt_001_001", "fault", "stuck_valve", T0 + 2 * DAY, T0 + 5 * DAY);
    label(f, "bldg_001", "apt_001_002", "benign", "guests", T0 + 1 * DAY, T0 + 3 * DAY);
    label(f, "bldg_002", "apt_002_001", "benign", "vacation", T0 + 2 * DAY, T0 + 9 * DAY);
    /* a fault 16 h after the alert's evidence: inside the 24 h margin */
    label(f, "bldg_002", "apt_002_002", "fault", "sensor_drift", T0 + 10 * DAY, T0 + 11 * DAY);
    /* nothing for apt_001_003 at the time of its alert: a fault weeks later, a delivery gap
       (not a fault), a weather shock of its building */
    label(f, "bldg_001", "apt_001_003", "fault", "no_heat_response", T0 + 20 * DAY, T0 + 21 * DAY);
    label(f, "bldg_001", "apt_001_003", "delivery", "gap", T0 + 3 * DAY, T0 + 4 * DAY);
    label(f, "bldg_001", NULL, "weather", "storm", T0 + 3 * DAY, T0 + 4 * DAY);
    HVS_REQUIRE(fclose(f) == 0, "labels file");
}

static void send_alert(hvs_alerter_t *al, const char *b, const char *a, hvs_alert_type_t type,
                       long long first, long long updated, const char *team) {
    hvs_alert_t x = {.building_id = b,
                     .apartment_id = a,
                     .type = type,
                     .severity = HVS_SEVERITY_WARNING,
                     .score = 1.0,
                     .summary = "test",
                     .first_seen = first,
                     .updated_at = updated,
                     .team = team};
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_alerter_send(al, &x, &err) == 0, "send alert: %s", err.msg);
}

static void publish_alerts(void) {
    hvs_err_t err = {0};
    hvs_serde_t *s;
    hvs_producer_t *p;
    hvs_alerter_t *al;
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && hvs_producer_new(&kc, &p, &err) == 0 &&
                    hvs_alerter_new(s, p, &al, &err) == 0,
                "alerter: %s", err.msg);
    /* during the guests' stay, published twice (later evidence): answered once, from the first */
    send_alert(al, "bldg_001", "apt_001_002", HVS_ALERT_RULE_NO_RESPONSE, T0 + 2 * DAY,
               T0 + 2 * DAY + HOUR, NULL);
    send_alert(al, "bldg_001", "apt_001_002", HVS_ALERT_RULE_NO_RESPONSE, T0 + 2 * DAY,
               T0 + 2 * DAY + 5 * HOUR, NULL);
    /* a real fault */
    send_alert(al, "bldg_001", "apt_001_001", HVS_ALERT_RULE_STUCK_VALVE, T0 + 3 * DAY,
               T0 + 3 * DAY + 6 * HOUR, "north");
    /* nothing there */
    send_alert(al, "bldg_001", "apt_001_003", HVS_ALERT_ANOMALY, T0 + 3 * DAY,
               T0 + 3 * DAY + 2 * HOUR, "north");
    /* never answered: data quality (even of an apartment), a building's alert */
    send_alert(al, "bldg_001", "apt_001_001", HVS_ALERT_DATA_QUALITY, T0 + 3 * DAY, T0 + 3 * DAY,
               NULL);
    send_alert(al, "bldg_001", NULL, HVS_ALERT_ANOMALY, T0 + 3 * DAY, T0 + 3 * DAY, NULL);
    /* on vacation */
    send_alert(al, "bldg_002", "apt_002_001", HVS_ALERT_ANOMALY, T0 + 4 * DAY,
               T0 + 4 * DAY + 2 * HOUR, NULL);
    /* the fault starts 16 h after the evidence ends */
    send_alert(al, "bldg_002", "apt_002_002", HVS_ALERT_RULE_SENSOR_MISMATCH, T0 + 9 * DAY,
               T0 + 9 * DAY + 8 * HOUR, "south");
    HVS_REQUIRE(hvs_producer_flush(p, 20000, &err) == 0 && hvs_alerter_sent(al) == 8, "flush: %s",
                err.msg);
    hvs_alerter_destroy(al);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
}

static void setup(void) {
    static bool done;
    if (done)
        return;
    done = true;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(teardown);
    write_labels();
    publish_alerts();
}

static void start(hvs_test_proc_t *proc, int run, const char *extra) {
    char cmd[2048];
    snprintf(logpath[run], sizeof logpath[run], "/tmp/hvs-test-technician-%d-%d.log", (int)getpid(),
             run);
    remove(logpath[run]);
    snprintf(cmd, sizeof cmd,
             "env HVS_KAFKA_BROKERS=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_HTTP_PORT=-1 "
             "HVS_LOG_LEVEL=debug HVS_KAFKA_GROUP=tech-it-%d HVS_TECH_LABELS=%s %s %s",
             broker.addr, run, labels_path, extra, HVS_TEST_TECHNICIAN);
    HVS_REQUIRE(hvs_test_spawn(proc, cmd, logpath[run]) == 0, "spawn hvs-technician");
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* SIGTERM: exit 0 with the totals logged; returns the log. */
static char *stop(hvs_test_proc_t *proc, int run) {
    HVS_REQUIRE(kill(proc->pid, SIGTERM) == 0, "SIGTERM");
    int status = -1;
    for (int i = 0; i < 300 && !hvs_test_proc_exited(proc, &status); i++)
        usleep(50000);
    HVS_CHECK(status == 0, "hvs-technician exit status %d after SIGTERM", status);
    char *log = slurp(logpath[run]);
    HVS_CHECK(strstr(log, "\"stopped: answered") != NULL, "totals logged at exit");
    return log;
}

typedef struct got {
    hvs_serde_t *s;
    hvs_decoder_t *d;
    int n;
    char key[16][64], alert[16][128], building[16][64], apt[16][64], tech[16][64], cause[16][64];
    hvs_feedback_label_t label[16];
    long long at[16];
    bool comment[16];
    int bad;
} got_t;

static void collect(void *opaque, const rd_kafka_message_t *m) {
    got_t *g = opaque;
    avro_value_t *v;
    hvs_feedback_t f;
    hvs_err_t err = {0};
    if (hvs_decoder_decode(g->d, m->payload, m->len, &v, &err) || hvs_feedback_read(v, &f, &err)) {
        g->bad++;
        return;
    }
    if (g->n >= 16) {
        g->n++;
        return;
    }
    int i = g->n++;
    snprintf(g->key[i], sizeof g->key[i], "%.*s", (int)m->key_len, (const char *)m->key);
    snprintf(g->alert[i], sizeof g->alert[i], "%s", f.alert_id);
    snprintf(g->building[i], sizeof g->building[i], "%s", f.building_id);
    snprintf(g->apt[i], sizeof g->apt[i], "%s", f.apartment_id ? f.apartment_id : "(null)");
    snprintf(g->tech[i], sizeof g->tech[i], "%s", f.technician_id);
    snprintf(g->cause[i], sizeof g->cause[i], "%s", f.root_cause ? f.root_cause : "(null)");
    g->label[i] = f.label;
    g->at[i] = f.labelled_at;
    g->comment[i] = f.comment != NULL;
}

/* Everything on alerts.feedback, waiting up to `want` records plus a few seconds for extras. */
static void read_feedback(got_t *g, size_t want) {
    memset(g, 0, sizeof *g);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &g->s, &err) == 0 &&
                    hvs_decoder_new(g->s, HVS_SCHEMA_FEEDBACK, &g->d, &err) == 0,
                "decoder");
    const char *topic = "alerts.feedback";
    hvs_test_tail_t t = {.brokers = broker.addr,
                         .topics = &topic,
                         .want = want,
                         .timeout_ms = 30000,
                         .idle_ms = want ? 0 : 5000,
                         .linger_ms = 3000,
                         .assign_ms = 15000};
    hvs_test_tail(&t, collect, g);
    hvs_decoder_destroy(g->d);
    hvs_serde_destroy(g->s);
}

/* The latest verdict on an alert (a building's records keep their order in its partition). */
static int find(const got_t *g, const char *alert) {
    for (int i = (g->n < 16 ? g->n : 16) - 1; i >= 0; i--)
        if (!strcmp(g->alert[i], alert))
            return i;
    return -1;
}

/* Error rate 0, unanswered 0: each answerable alert answered once, with the ground truth. */
static void test_answers(void) {
    setup();
    hvs_test_proc_t proc;
    start(&proc, 0, "HVS_TECH_ERROR_RATE=0 HVS_TECH_UNANSWERED=0");
    got_t g;
    read_feedback(&g, 5);
    HVS_CHECK(g.n == 5 && g.bad == 0, "5 Feedback records, %d (%d undecodable or refused)", g.n,
              g.bad);
    struct {
        const char *alert, *building, *apt, *tech, *cause;
        hvs_feedback_label_t label;
        long long at;
    } want[] = {
        {"apt_001_002#2024-12-04#RULE_NO_RESPONSE", "bldg_001", "apt_001_002", "tech-default",
         "guest_stay", HVS_FEEDBACK_FALSE_POSITIVE, T0 + 2 * DAY + HOUR + 4 * HOUR},
        {"apt_001_001#2024-12-05#RULE_STUCK_VALVE", "bldg_001", "apt_001_001", "tech-north",
         "stuck_valve", HVS_FEEDBACK_TRUE_POSITIVE, T0 + 3 * DAY + 6 * HOUR + 4 * HOUR},
        {"apt_001_003#2024-12-05#ANOMALY", "bldg_001", "apt_001_003", "tech-north",
         "no_fault_found", HVS_FEEDBACK_FALSE_POSITIVE, T0 + 3 * DAY + 2 * HOUR + 4 * HOUR},
        {"apt_002_001#2024-12-06#ANOMALY", "bldg_002", "apt_002_001", "tech-default", "vacation",
         HVS_FEEDBACK_FALSE_POSITIVE, T0 + 4 * DAY + 2 * HOUR + 4 * HOUR},
        {"apt_002_002#2024-12-11#RULE_SENSOR_MISMATCH", "bldg_002", "apt_002_002", "tech-south",
         "sensor_drift", HVS_FEEDBACK_TRUE_POSITIVE, T0 + 9 * DAY + 8 * HOUR + 4 * HOUR},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        int i = find(&g, want[k].alert);
        HVS_CHECK(i >= 0, "feedback on %s", want[k].alert);
        if (i < 0)
            continue;
        HVS_CHECK_EQ_STR(g.key[i], want[k].building);
        HVS_CHECK_EQ_STR(g.building[i], want[k].building);
        HVS_CHECK_EQ_STR(g.apt[i], want[k].apt);
        HVS_CHECK_EQ_STR(g.tech[i], want[k].tech);
        HVS_CHECK_EQ_STR(g.cause[i], want[k].cause);
        HVS_CHECK(g.label[i] == want[k].label, "%s: %s, expected %s", want[k].alert,
                  hvs_feedback_label_name(g.label[i]), hvs_feedback_label_name(want[k].label));
        HVS_CHECK_EQ_INT(g.at[i], want[k].at);
        HVS_CHECK(!g.comment[i], "no comment");
    }
    char *log = stop(&proc, 0);
    HVS_CHECK(strstr(log,
                     "answered 2 true positive, 3 false positive; skipped 0 not unseen, 1 "
                     "building-level, 1 data-quality/drift, 1 repeats, 0 left unanswered") != NULL,
              "totals in %s", logpath[0]);
    HVS_CHECK(count(log, "\"alert apt_") == 5, "one debug line per answer");
    free(log);
    /* nothing arrived after the SIGTERM either */
    read_feedback(&g, 0);
    HVS_CHECK(g.n == 5, "still 5 Feedback records after the technician stopped: %d", g.n);
}

/* HVS_TECH_UNANSWERED=1: every alert left unanswered, nothing new on alerts.feedback. */
static void test_unanswered(void) {
    setup();
    got_t g;
    read_feedback(&g, 0);
    int before = g.n;
    hvs_test_proc_t proc;
    start(&proc, 1, "HVS_TECH_UNANSWERED=1");
    /* it has seen every alert when it logged the five answerable ones as unanswered */
    char *log = NULL;
    for (int i = 0; i < 600; i++) {
        free(log);
        log = slurp(logpath[1]);
        if (count(log, "left unanswered\"") >= 5)
            break;
        usleep(100000);
    }
    HVS_CHECK(count(log, "left unanswered\"") == 5, "5 alerts passed over: %s", logpath[1]);
    free(log);
    usleep(500000);
    log = stop(&proc, 1);
    HVS_CHECK(strstr(log,
                     "answered 0 true positive, 0 false positive; skipped 0 not unseen, 1 "
                     "building-level, 1 data-quality/drift, 1 repeats, 5 left unanswered") != NULL,
              "totals in %s", logpath[1]);
    free(log);
    read_feedback(&g, 0);
    HVS_CHECK(g.n == before, "no Feedback added: %d before, %d after", before, g.n);
}

/* HVS_TECH_ERROR_RATE=1: every verdict flipped - a missed fault is "no_fault_found", a false
 * alarm taken for the fault the alert's type suggests. */
static void test_mistakes(void) {
    setup();
    got_t g;
    read_feedback(&g, 0);
    int before = g.n;
    hvs_test_proc_t proc;
    start(&proc, 2, "HVS_TECH_ERROR_RATE=1 HVS_TECH_UNANSWERED=0 HVS_TECH_DELAY=1h");
    read_feedback(&g, (size_t)before + 5);
    HVS_CHECK(g.n == before + 5, "5 more Feedback records: %d before, %d after", before, g.n);
    struct {
        const char *alert, *cause;
        hvs_feedback_label_t label;
        long long at;
    } want[] = {
        {"apt_001_002#2024-12-04#RULE_NO_RESPONSE", "no_heat_response", HVS_FEEDBACK_TRUE_POSITIVE,
         T0 + 2 * DAY + 2 * HOUR},
        {"apt_001_001#2024-12-05#RULE_STUCK_VALVE", "no_fault_found", HVS_FEEDBACK_FALSE_POSITIVE,
         T0 + 3 * DAY + 7 * HOUR},
        {"apt_001_003#2024-12-05#ANOMALY", "unknown", HVS_FEEDBACK_TRUE_POSITIVE,
         T0 + 3 * DAY + 3 * HOUR},
        {"apt_002_002#2024-12-11#RULE_SENSOR_MISMATCH", "no_fault_found",
         HVS_FEEDBACK_FALSE_POSITIVE, T0 + 9 * DAY + 9 * HOUR},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        int i = find(&g, want[k].alert);
        HVS_CHECK(i >= before, "a new verdict on %s", want[k].alert);
        if (i < before)
            continue;
        HVS_CHECK_EQ_STR(g.cause[i], want[k].cause);
        HVS_CHECK(g.label[i] == want[k].label, "%s: %s", want[k].alert,
                  hvs_feedback_label_name(g.label[i]));
        HVS_CHECK_EQ_INT(g.at[i], want[k].at);
    }
    char *log = stop(&proc, 2);
    HVS_CHECK(count(log, ", mistaken at ") == 5, "5 mistakes logged: %s", logpath[2]);
    free(log);
}

static const hvs_test_case_t cases[] = {
    {"answers_each_alert_once_with_the_ground_truth", test_answers},
    {"unanswered_1_answers_nothing", test_unanswered},
    {"error_rate_1_flips_every_verdict", test_mistakes},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    int rc = hvs_test_main(cases, argc, argv);
    for (int i = 0; i < 3; i++)
        if (logpath[i][0] && rc == 0)
            remove(logpath[i]);
    return rc;
}
