/*
 * hvsctl alerts as a real process against a real redis-server and hvs-devbroker. The test writes
 * a small alert book straight into Redis (hvs_alertbook_format, the alerter's own encoding, with
 * the alerter's private ranking data after a newline on some entries) and checks:
 *  - list: exactly the table expected (header, columns aligned to the widest value, sorted by
 *    team, day newest first, unranked CRITICAL before rank 1, score; REASONS cut to 60
 *    characters with "..." off a terminal; the default team shown as "-"), for the default
 *    (RAISED), --team (also "-"), --status, --date (list_day for listed entries, first_seen's
 *    day for the rest), --suppressed (with REASON), --all; --json one object per line with the
 *    entry's fields;
 *  - show: every field, the evidence, reasons one a line and the latest feedback; --json; an
 *    unknown id exits 1 naming it;
 *  - ack / resolve: the Feedback records read back from alerts.feedback (label, key, building,
 *    apartment, technician, root cause, comment, labelled_at the wall time of the call);
 *    refused, with a message and nothing produced: a SUPPRESSED, an EXPIRED and an unknown
 *    alert, an ack of a resolved alert, an id two buildings hold without --building; usage
 *    errors exit 2.
 */
#include <jansson.h>

#include "hvs/alertbook.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define D1 1730419200000LL /* 2024-11-01T00:00:00Z */
#define D3 (D1 + 2 * DAY)
#define D4 (D1 + 3 * DAY)
#define D5 (D1 + 4 * DAY)

static hvs_test_proc_t redis, broker;
static hvs_redis_t *rc_;
static char env[512];

/* ---- the book ------------------------------------------------------------------------------- */

typedef struct book_row {
    const char *building, *id, *apt, *team;
    hvs_alert_type_t type;
    hvs_alertbook_disposition_t disp;
    hvs_alert_severity_t sev;
    hvs_alert_status_t status;
    int rank;
    double score;
    hvs_ms_t first_seen, list_day;
    const char *reason, *reasons;
    const char *technician; /* NULL: no feedback */
    hvs_ms_t feedback_at;
    const char *root_cause, *comment;
    bool private_tail; /* the alerter's ranking data after '\n' */
} book_row_t;

static const book_row_t rows[] = {
    {"bldg_1", "apt_11#2024-11-04#ANOMALY", "apt_11", "team-a", HVS_ALERT_ANOMALY,
     HVS_ALERTBOOK_RAISED, HVS_SEVERITY_WARNING, HVS_ALERT_UNSEEN, 1, 0.91, D4 + 6 * HOUR, D5, "",
     "heating energy 2.1x the model's expectation for 6 h; living_room 17.2 C at setpoint 21 C",
     NULL, 0, NULL, NULL, true},
    {"bldg_1", "apt_12#2024-11-05#RULE_STUCK_VALVE", "apt_12", "team-a", HVS_ALERT_RULE_STUCK_VALVE,
     HVS_ALERTBOOK_RAISED, HVS_SEVERITY_CRITICAL, HVS_ALERT_UNSEEN, 0, 0.97, D5 + 2 * HOUR, 0, "",
     "stuck_valve: valve open 100% for 8 h, room 26.5 C", NULL, 0, NULL, NULL, true},
    {"bldg_1", "apt_13#2024-11-05#ANOMALY", "apt_13", "team-a", HVS_ALERT_ANOMALY,
     HVS_ALERTBOOK_SUPPRESSED, HVS_SEVERITY_WARNING, HVS_ALERT_UNSEEN, 0, 0.80, D5 + 1 * HOUR, 0,
     "vacancy", "no hot water for 52 h", NULL, 0, NULL, NULL, false},
    {"bldg_1", "apt_14#2024-11-01#ANOMALY", "apt_14", "team-a", HVS_ALERT_ANOMALY,
     HVS_ALERTBOOK_EXPIRED, HVS_SEVERITY_WARNING, HVS_ALERT_UNSEEN, 0, 0.55, D1 + 5 * HOUR, 0, "",
     "", NULL, 0, NULL, NULL, true},
    {"bldg_1", "apt_15#2024-11-03#ANOMALY", "apt_15", "team-a", HVS_ALERT_ANOMALY,
     HVS_ALERTBOOK_RAISED, HVS_SEVERITY_WARNING, HVS_ALERT_INVESTIGATING, 2, 0.74, D3 + 4 * HOUR,
     D4, "", "return temperature 6 K above the model", "carol", D5 + 9 * HOUR, NULL,
     "radiator bleed due", false},
    {"bldg_2", "apt_21#2024-11-04#RULE_NO_RESPONSE", "apt_21", "team-b", HVS_ALERT_RULE_NO_RESPONSE,
     HVS_ALERTBOOK_RAISED, HVS_SEVERITY_WARNING, HVS_ALERT_UNSEEN, 1, 0.66, D4 + 3 * HOUR, D5, "",
     "no_heat_response: radiator cold at valve 80%", NULL, 0, NULL, NULL, true},
    {"bldg_3", "apt_31#2024-11-05#ANOMALY", "apt_31", "", HVS_ALERT_ANOMALY, HVS_ALERTBOOK_RAISED,
     HVS_SEVERITY_WARNING, HVS_ALERT_RESOLVED_TRUE_POSITIVE, 1, 0.70, D5 + 0 * HOUR, D5, "",
     "heating energy 1.8x expected", "erin", D5 + 20 * HOUR, "stuck_valve", "replaced the valve",
     false},
};
#define NROWS (int)(sizeof rows / sizeof rows[0])

static void row_entry(const book_row_t *r, hvs_alertbook_entry_t *e) {
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", r->id);
    snprintf(e->building, sizeof e->building, "%s", r->building);
    snprintf(e->apartment, sizeof e->apartment, "%s", r->apt);
    snprintf(e->team, sizeof e->team, "%s", r->team);
    snprintf(e->model, sizeof e->model, "%s", r->type == HVS_ALERT_ANOMALY ? "heat_iforest:3" : "");
    e->type = r->type, e->severity = r->sev, e->status = r->status, e->disposition = r->disp;
    snprintf(e->reason, sizeof e->reason, "%s", r->reason);
    e->open = r->disp == HVS_ALERTBOOK_RAISED;
    e->score = r->score, e->rank = r->rank;
    e->first_seen = r->first_seen, e->updated_at = r->first_seen + 5 * HOUR;
    e->list_day = r->list_day;
    e->rules = r->type == HVS_ALERT_RULE_STUCK_VALVE   ? HVS_RULE_STUCK_VALVE
               : r->type == HVS_ALERT_RULE_NO_RESPONSE ? HVS_RULE_NO_HEAT_RESPONSE
                                                       : 0;
    e->hours = 6;
    e->max_rule = e->rules ? 0.95 : NAN;
    e->max_z = r->type == HVS_ALERT_ANOMALY ? 3.25 : NAN;
    e->max_prob = NAN;
    snprintf(e->reasons, sizeof e->reasons, "%s", r->reasons);
    if (r->technician) {
        e->feedback_at = r->feedback_at;
        snprintf(e->technician, sizeof e->technician, "%s", r->technician);
        snprintf(e->root_cause, sizeof e->root_cause, "%s", r->root_cause ? r->root_cause : "");
        snprintf(e->comment, sizeof e->comment, "%s", r->comment ? r->comment : "");
    }
}

/* HSET the entry of row r into building b's book (as the alerter writes it) and SADD b. */
static void put_entry(const char *b, const book_row_t *r) {
    hvs_alertbook_entry_t e;
    row_entry(r, &e);
    char line[HVS_ALERTBOOK_LINE_MAX + 64], key[256];
    int n = hvs_alertbook_format(&e, line, HVS_ALERTBOOK_LINE_MAX);
    HVS_REQUIRE(n > 0, "format %s", r->id);
    if (r->private_tail)
        n += snprintf(line + n, sizeof line - (size_t)n, "\nx1|%lld|0.5|%lld,0.9;",
                      (long long)r->first_seen, (long long)r->first_seen);
    hvs_err_t err;
    HVS_REQUIRE(hvs_redis_key(key, sizeof key, b, &err, "al:alerts") > 0, "key %s", b);
    HVS_REQUIRE(hvs_redis_command(rc_, NULL, &err, "HSET %s %s %b", key, r->id, line, (size_t)n) ==
                        0 &&
                    hvs_redis_command(rc_, NULL, &err, "SADD hvs:al:buildings %s", b) == 0,
                "write %s: %s", r->id, err.msg);
}

static void stop_all(void) {
    hvs_redis_destroy(rc_);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
}

/* Redis with the book, the devbroker, env pointing hvsctl at both; once per process. */
static void fixture(void) {
    if (rc_)
        return;
    hvs_err_t err;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_test_cleanup(stop_all);
    HVS_REQUIRE(hvs_redis_connect(redis.addr, NULL, &rc_, &err) == 0, "redis: %s", err.msg);
    for (int i = 0; i < NROWS; i++)
        put_entry(rows[i].building, &rows[i]);
    snprintf(env, sizeof env,
             "env HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr, redis.addr);
}

/* Run `hvsctl alerts ARGS`; stdout (and stderr when `both`) into *out (caller frees). */
static int alerts(const char *args, bool both, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s alerts %s%s", env, HVS_TEST_HVSCTL, args, both ? " 2>&1" : "");
    *out = NULL;
    return hvs_test_run(cmd, NULL, 0, out, NULL);
}

/* `hvsctl alerts ARGS` exits 0 and prints exactly `want`. */
static void exactly(const char *args, const char *want) {
    char *out;
    int rc = alerts(args, false, &out);
    HVS_CHECK(rc == 0 && out && strcmp(out, want) == 0,
              "alerts %s: rc %d, output:\n%s\nwanted:\n%s", args, rc, out ? out : "(none)", want);
    free(out);
}

/* `hvsctl alerts ARGS` exits want_rc with a message (stdout + stderr) holding w1 and w2. */
static void fails(const char *args, int want_rc, const char *w1, const char *w2) {
    char *out;
    int rc = alerts(args, true, &out);
    HVS_CHECK(rc == want_rc && out && strstr(out, w1) && (!w2 || strstr(out, w2)),
              "alerts %s: rc %d (want %d), message must hold \"%s\"%s%s:\n%s", args, rc, want_rc,
              w1, w2 ? " and " : "", w2 ? w2 : "", out ? out : "(none)");
    free(out);
}

static const char *jstr(json_t *j, const char *key) {
    return hvs_test_str(json_string_value(json_object_get(j, key)));
}

/* ---- list ----------------------------------------------------------------------------------- */

/* The expected tables, written out from the rows above and the spec of the table (not from the
 * tool's code): widths of the widest value, SCORE right-aligned, REASONS cut to 57 + "...". */
static const char *const want_default =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE             ALERT_ID                           REASONS\n"
    "-      2024-11-05    1 WARNING  RESOLVED_TRUE_POSITIVE   0.70 apt_31    ANOMALY          apt_31#2024-11-05#ANOMALY          heating energy 1.8x expected\n"
    "team-a 2024-11-05    - CRITICAL UNSEEN                   0.97 apt_12    RULE_STUCK_VALVE apt_12#2024-11-05#RULE_STUCK_VALVE stuck_valve: valve open 100% for 8 h, room 26.5 C\n"
    "team-a 2024-11-05    1 WARNING  UNSEEN                   0.91 apt_11    ANOMALY          apt_11#2024-11-04#ANOMALY          heating energy 2.1x the model's expectation for 6 h; livi...\n"
    "team-a 2024-11-04    2 WARNING  INVESTIGATING            0.74 apt_15    ANOMALY          apt_15#2024-11-03#ANOMALY          return temperature 6 K above the model\n"
    "team-b 2024-11-05    1 WARNING  UNSEEN                   0.66 apt_21    RULE_NO_RESPONSE apt_21#2024-11-04#RULE_NO_RESPONSE no_heat_response: radiator cold at valve 80%\n";
static const char *const want_team_a =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE             ALERT_ID                           REASONS\n"
    "team-a 2024-11-05    - CRITICAL UNSEEN                   0.97 apt_12    RULE_STUCK_VALVE apt_12#2024-11-05#RULE_STUCK_VALVE stuck_valve: valve open 100% for 8 h, room 26.5 C\n"
    "team-a 2024-11-05    1 WARNING  UNSEEN                   0.91 apt_11    ANOMALY          apt_11#2024-11-04#ANOMALY          heating energy 2.1x the model's expectation for 6 h; livi...\n"
    "team-a 2024-11-04    2 WARNING  INVESTIGATING            0.74 apt_15    ANOMALY          apt_15#2024-11-03#ANOMALY          return temperature 6 K above the model\n";
static const char *const want_team_default =
    "TEAM DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE    ALERT_ID                  REASONS\n"
    "-    2024-11-05    1 WARNING  RESOLVED_TRUE_POSITIVE   0.70 apt_31    ANOMALY apt_31#2024-11-05#ANOMALY heating energy 1.8x expected\n";
static const char *const want_status_investigating =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE    ALERT_ID                  REASONS\n"
    "team-a 2024-11-04    2 WARNING  INVESTIGATING            0.74 apt_15    ANOMALY apt_15#2024-11-03#ANOMALY return temperature 6 K above the model\n";
static const char *const want_date_1105 =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE             ALERT_ID                           REASONS\n"
    "-      2024-11-05    1 WARNING  RESOLVED_TRUE_POSITIVE   0.70 apt_31    ANOMALY          apt_31#2024-11-05#ANOMALY          heating energy 1.8x expected\n"
    "team-a 2024-11-05    - CRITICAL UNSEEN                   0.97 apt_12    RULE_STUCK_VALVE apt_12#2024-11-05#RULE_STUCK_VALVE stuck_valve: valve open 100% for 8 h, room 26.5 C\n"
    "team-a 2024-11-05    1 WARNING  UNSEEN                   0.91 apt_11    ANOMALY          apt_11#2024-11-04#ANOMALY          heating energy 2.1x the model's expectation for 6 h; livi...\n"
    "team-b 2024-11-05    1 WARNING  UNSEEN                   0.66 apt_21    RULE_NO_RESPONSE apt_21#2024-11-04#RULE_NO_RESPONSE no_heat_response: radiator cold at valve 80%\n";
static const char *const want_suppressed =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE    ALERT_ID                  REASON  REASONS\n"
    "team-a 2024-11-05    - WARNING  UNSEEN                   0.80 apt_13    ANOMALY apt_13#2024-11-05#ANOMALY vacancy no hot water for 52 h\n";
static const char *const want_all =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE             ALERT_ID                           REASON  REASONS\n"
    "-      2024-11-05    1 WARNING  RESOLVED_TRUE_POSITIVE   0.70 apt_31    ANOMALY          apt_31#2024-11-05#ANOMALY          -       heating energy 1.8x expected\n"
    "team-a 2024-11-05    - CRITICAL UNSEEN                   0.97 apt_12    RULE_STUCK_VALVE apt_12#2024-11-05#RULE_STUCK_VALVE -       stuck_valve: valve open 100% for 8 h, room 26.5 C\n"
    "team-a 2024-11-05    1 WARNING  UNSEEN                   0.91 apt_11    ANOMALY          apt_11#2024-11-04#ANOMALY          -       heating energy 2.1x the model's expectation for 6 h; livi...\n"
    "team-a 2024-11-05    - WARNING  UNSEEN                   0.80 apt_13    ANOMALY          apt_13#2024-11-05#ANOMALY          vacancy no hot water for 52 h\n"
    "team-a 2024-11-04    2 WARNING  INVESTIGATING            0.74 apt_15    ANOMALY          apt_15#2024-11-03#ANOMALY          -       return temperature 6 K above the model\n"
    "team-a 2024-11-01    - WARNING  UNSEEN                   0.55 apt_14    ANOMALY          apt_14#2024-11-01#ANOMALY          -       -\n"
    "team-b 2024-11-05    1 WARNING  UNSEEN                   0.66 apt_21    RULE_NO_RESPONSE apt_21#2024-11-04#RULE_NO_RESPONSE -       no_heat_response: radiator cold at valve 80%\n";
static const char *const want_all_1101 =
    "TEAM   DAY        RANK SEVERITY STATUS                  SCORE APARTMENT TYPE    ALERT_ID                  REASON REASONS\n"
    "team-a 2024-11-01    - WARNING  UNSEEN                   0.55 apt_14    ANOMALY apt_14#2024-11-01#ANOMALY -      -\n";

static void case_list(void) {
    fixture();
    exactly("list", want_default);
    exactly("list --team team-a", want_team_a);
    exactly("list --team -", want_team_default);
    exactly("list --status INVESTIGATING", want_status_investigating);
    exactly("list --status investigating", want_status_investigating);
    exactly("list --date 2024-11-05", want_date_1105);
    exactly("list --suppressed", want_suppressed);
    exactly("list --all", want_all);
    exactly("list --all --date 2024-11-01", want_all_1101);
    /* filters combine; nothing matching prints nothing on stdout */
    exactly("list --team team-b --status INVESTIGATING", "");
    exactly("list --suppressed --team team-b", "");
    fails("list --team team-b --date 2024-11-03", 0, "no RAISED alerts match (7 in the book)",
          NULL);
}

static void case_list_json(void) {
    fixture();
    char *out;
    json_t *js[16] = {0};
    int rc = alerts("list --json", false, &out);
    int n = hvs_test_json_lines(out, js, 16);
    free(out);
    static const char *const order[] = {"apt_31#2024-11-05#ANOMALY",
                                        "apt_12#2024-11-05#RULE_STUCK_VALVE",
                                        "apt_11#2024-11-04#ANOMALY", "apt_15#2024-11-03#ANOMALY",
                                        "apt_21#2024-11-04#RULE_NO_RESPONSE"};
    HVS_CHECK(rc == 0 && n == 5, "list --json: rc %d, %d lines (want 5)", rc, n);
    for (int i = 0; i < n && i < 5; i++)
        HVS_CHECK_EQ_STR(jstr(js[i], "id"), order[i]);
    json_t *e = n >= 3 ? js[2] : NULL; /* apt_11: every field */
    HVS_CHECK_EQ_STR(jstr(e, "building"), "bldg_1");
    HVS_CHECK_EQ_STR(jstr(e, "apartment"), "apt_11");
    HVS_CHECK_EQ_STR(jstr(e, "team"), "team-a");
    HVS_CHECK_EQ_STR(jstr(e, "disposition"), "RAISED");
    HVS_CHECK_EQ_STR(jstr(e, "reason"), "");
    HVS_CHECK_EQ_STR(jstr(e, "status"), "UNSEEN");
    HVS_CHECK_EQ_STR(jstr(e, "type"), "ANOMALY");
    HVS_CHECK_EQ_STR(jstr(e, "severity"), "WARNING");
    HVS_CHECK_EQ_STR(jstr(e, "day"), "2024-11-05");
    HVS_CHECK(json_integer_value(json_object_get(e, "list_day")) == D5, "list_day");
    HVS_CHECK(json_integer_value(json_object_get(e, "rank")) == 1, "rank");
    HVS_CHECK_NEAR(json_real_value(json_object_get(e, "score")), 0.91, 1e-9);
    HVS_CHECK(json_is_true(json_object_get(e, "open")), "open");
    HVS_CHECK(json_integer_value(json_object_get(e, "first_seen")) == D4 + 6 * HOUR, "first_seen");
    HVS_CHECK(json_integer_value(json_object_get(e, "updated_at")) == D4 + 11 * HOUR, "updated_at");
    HVS_CHECK_EQ_STR(jstr(e, "model"), "heat_iforest:3");
    HVS_CHECK(json_integer_value(json_object_get(e, "hours")) == 6, "hours");
    HVS_CHECK(json_is_array(json_object_get(e, "rules")) &&
                  json_array_size(json_object_get(e, "rules")) == 0,
              "rules []");
    HVS_CHECK(json_is_null(json_object_get(e, "max_rule")) &&
                  json_is_null(json_object_get(e, "max_prob")),
              "NaN evidence is null");
    HVS_CHECK_NEAR(json_real_value(json_object_get(e, "max_z")), 3.25, 1e-9);
    HVS_CHECK_EQ_STR(jstr(e, "reasons"), rows[0].reasons); /* not cut */
    HVS_CHECK(json_is_null(json_object_get(e, "feedback_at")), "no feedback");
    json_t *c = n >= 2 ? js[1] : NULL; /* apt_12: CRITICAL, no rank, no list */
    HVS_CHECK(json_is_null(json_object_get(c, "rank")) &&
                  json_is_null(json_object_get(c, "list_day")),
              "critical: rank and list_day null");
    HVS_CHECK_EQ_STR(jstr(c, "day"), "2024-11-05");
    HVS_CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(c, "rules"), 0)),
                     "stuck_valve");
    json_t *f = n >= 4 ? js[3] : NULL; /* apt_15: its feedback */
    HVS_CHECK(json_integer_value(json_object_get(f, "feedback_at")) == D5 + 9 * HOUR,
              "feedback_at");
    HVS_CHECK_EQ_STR(jstr(f, "technician"), "carol");
    HVS_CHECK_EQ_STR(jstr(f, "comment"), "radiator bleed due");
    hvs_test_json_lines_free(js, n < 16 ? n : 16);

    rc = alerts("list --all --json", false, &out);
    n = hvs_test_json_lines(out, js, 16);
    free(out);
    HVS_CHECK(rc == 0 && n == NROWS, "list --all --json: rc %d, %d lines (want %d)", rc, n, NROWS);
    int sup = 0;
    for (int i = 0; i < n && i < 16; i++)
        if (strcmp(jstr(js[i], "disposition"), "SUPPRESSED") == 0) {
            sup++;
            HVS_CHECK_EQ_STR(jstr(js[i], "reason"), "vacancy");
        }
    HVS_CHECK_EQ_INT(sup, 1);
    hvs_test_json_lines_free(js, n < 16 ? n : 16);
}

/* ---- show ----------------------------------------------------------------------------------- */

static const char *const want_show =
    "alert        apt_15#2024-11-03#ANOMALY\n"
    "building     bldg_1\n"
    "apartment    apt_15\n"
    "team         team-a\n"
    "disposition  RAISED\n"
    "reason       -\n"
    "status       INVESTIGATING\n"
    "type         ANOMALY\n"
    "severity     WARNING\n"
    "rank         2\n"
    "list_day     2024-11-04\n"
    "score        0.7400\n"
    "open         yes (the episode lasts)\n"
    "first_seen   2024-11-03T04:00:00.000Z\n"
    "updated_at   2024-11-03T09:00:00.000Z\n"
    "hours        6\n"
    "model        heat_iforest:3\n"
    "summary      bldg_1 apt_15: unusual consumption (score 0.74 over 6 h): return temperature 6 "
    "K above the model\n"
    "evidence\n"
    "  hours_above    6\n"
    "  open           true\n"
    "  residual_z     3.25\n"
    "reasons\n"
    "  return temperature 6 K above the model\n"
    "feedback (the latest accepted; the book keeps no older ones)\n"
    "  labelled_at    2024-11-05T09:00:00.000Z\n"
    "  technician     carol\n"
    "  root_cause     -\n"
    "  comment        radiator bleed due\n";

static const char *const want_show_suppressed =
    "alert        apt_13#2024-11-05#ANOMALY\n"
    "building     bldg_1\n"
    "apartment    apt_13\n"
    "team         team-a\n"
    "disposition  SUPPRESSED\n"
    "reason       vacancy\n"
    "status       UNSEEN\n"
    "type         ANOMALY\n"
    "severity     WARNING\n"
    "rank         -\n"
    "list_day     -\n"
    "score        0.8000\n"
    "open         no\n"
    "first_seen   2024-11-05T01:00:00.000Z\n"
    "updated_at   2024-11-05T06:00:00.000Z\n"
    "hours        6\n"
    "model        heat_iforest:3\n"
    "summary      bldg_1 apt_13: unusual consumption (score 0.80 over 6 h): no hot water for 52 "
    "h\n"
    "evidence\n"
    "  hours_above    6\n"
    "  open           false\n"
    "  residual_z     3.25\n"
    "reasons\n"
    "  no hot water for 52 h\n"
    "feedback (the latest accepted; the book keeps no older ones)\n"
    "  none\n";

static void case_show(void) {
    fixture();
    exactly("show 'apt_15#2024-11-03#ANOMALY'", want_show);
    exactly("show 'apt_13#2024-11-05#ANOMALY'", want_show_suppressed);
    exactly("show 'apt_13#2024-11-05#ANOMALY' --building bldg_1", want_show_suppressed);
    char *out;
    /* several reasons, one a line; a rule's evidence */
    int rc = alerts("show 'apt_11#2024-11-04#ANOMALY'", false, &out);
    HVS_CHECK(rc == 0 && out &&
                  strstr(out, "reasons\n  heating energy 2.1x the model's expectation for 6 h\n"
                              "  living_room 17.2 C at setpoint 21 C\nfeedback"),
              "show apt_11: reasons one a line:\n%s", out ? out : "");
    free(out);
    rc = alerts("show 'apt_12#2024-11-05#RULE_STUCK_VALVE'", false, &out);
    HVS_CHECK(rc == 0 && out && strstr(out, "  rule_score     0.950\n") &&
                  strstr(out, "  rules          stuck_valve\n") &&
                  strstr(out, "severity     CRITICAL\n") && strstr(out, "model        - (rules)\n"),
              "show apt_12: rule evidence:\n%s", out ? out : "");
    free(out);

    json_t *js[4] = {0};
    rc = alerts("show 'apt_31#2024-11-05#ANOMALY' --json", false, &out);
    int n = hvs_test_json_lines(out, js, 4);
    free(out);
    HVS_CHECK(rc == 0 && n == 1, "show --json: rc %d, %d lines", rc, n);
    json_t *ev = json_object_get(js[0], "evidence");
    HVS_CHECK_EQ_STR(jstr(js[0], "building"), "bldg_3");
    HVS_CHECK_EQ_STR(jstr(js[0], "team"), "");
    HVS_CHECK_EQ_STR(jstr(js[0], "status"), "RESOLVED_TRUE_POSITIVE");
    HVS_CHECK_EQ_STR(jstr(js[0], "root_cause"), "stuck_valve");
    HVS_CHECK_EQ_STR(jstr(ev, "technician"), "erin");
    HVS_CHECK_EQ_STR(jstr(ev, "comment"), "replaced the valve");
    HVS_CHECK_EQ_STR(jstr(ev, "residual_z"), "3.25");
    HVS_CHECK_EQ_STR(jstr(js[0], "summary"),
                     "bldg_3 apt_31: unusual consumption (score 0.70 over 6 h): heating energy "
                     "1.8x expected");
    hvs_test_json_lines_free(js, n < 4 ? n : 4);

    fails("show 'apt_99#2024-11-05#ANOMALY'", 1,
          "alert apt_99#2024-11-05#ANOMALY is not in the alert book", NULL);
    fails("show 'apt_15#2024-11-03#ANOMALY' --building bldg_2", 1,
          "alert apt_15#2024-11-03#ANOMALY is not in the alert book of building bldg_2", NULL);
    fails("show", 2, "which alert?", NULL);
}

/* ---- ack / resolve -------------------------------------------------------------------------- */

static json_t *find_feedback(json_t *all, const char *id, const char *label) {
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) {
        json_t *v = json_object_get(m, "value");
        if (strcmp(jstr(v, "alert_id"), id) == 0 && strcmp(jstr(v, "label"), label) == 0)
            return m;
    }
    return NULL;
}

/* The record of (id, label) on alerts.feedback has these fields (NULL: null). */
static void check_feedback(json_t *all, const char *id, const char *label, const char *building,
                           const char *apt, const char *tech, const char *cause,
                           const char *comment, int64_t t0, int64_t t1) {
    json_t *m = find_feedback(all, id, label);
    HVS_CHECK(m != NULL, "alerts.feedback holds %s %s", label, id);
    if (!m)
        return;
    json_t *v = json_object_get(m, "value");
    HVS_CHECK_EQ_STR(jstr(m, "key"), building);
    HVS_CHECK_EQ_STR(jstr(v, "building_id"), building);
    HVS_CHECK_EQ_STR(jstr(v, "apartment_id"), apt);
    HVS_CHECK_EQ_STR(jstr(v, "technician_id"), tech);
    if (cause)
        HVS_CHECK_EQ_STR(jstr(v, "root_cause"), cause);
    else
        HVS_CHECK(json_is_null(json_object_get(v, "root_cause")), "%s: root_cause null", id);
    if (comment)
        HVS_CHECK_EQ_STR(jstr(v, "comment"), comment);
    else
        HVS_CHECK(json_is_null(json_object_get(v, "comment")), "%s: comment null", id);
    int64_t at = json_integer_value(json_object_get(v, "labelled_at"));
    HVS_CHECK(at >= t0 && at <= t1, "%s: labelled_at %lld within the call [%lld, %lld]", id,
              (long long)at, (long long)t0, (long long)t1);
}

static void case_feedback(void) {
    fixture();
    char *out;
    int64_t t0 = hvs_time_now_ms();
    int rc = alerts("ack 'apt_11#2024-11-04#ANOMALY' --by alice --comment 'on my way'", false,
                    &out);
    static const char *const ack_head =
        "sent UNSURE on apt_11#2024-11-04#ANOMALY -> alerts.feedback (key bldg_1)\n"
        "  building       bldg_1\n"
        "  apartment      apt_11\n"
        "  technician     alice\n"
        "  root_cause     -\n"
        "  comment        on my way\n"
        "  labelled_at    ";
    HVS_CHECK(rc == 0 && out && strncmp(out, ack_head, strlen(ack_head)) == 0 &&
                  strstr(out, "  status         UNSEEN -> INVESTIGATING\n"),
              "ack: rc %d:\n%s", rc, out ? out : "");
    free(out);
    rc = alerts("resolve 'apt_21#2024-11-04#RULE_NO_RESPONSE' --false-positive --cause vacation "
                "--comment 'tenant away' --by bob",
                false, &out);
    HVS_CHECK(rc == 0 && out &&
                  strstr(out, "sent FALSE_POSITIVE on apt_21#2024-11-04#RULE_NO_RESPONSE -> "
                              "alerts.feedback (key bldg_2)\n") &&
                  strstr(out, "  root_cause     vacation\n") &&
                  strstr(out, "  status         UNSEEN -> RESOLVED_FALSE_POSITIVE\n"),
              "resolve --false-positive: rc %d:\n%s", rc, out ? out : "");
    free(out);
    rc = alerts("resolve 'apt_12#2024-11-05#RULE_STUCK_VALVE' --by carol --true-positive --cause "
                "stuck_valve",
                false, &out);
    HVS_CHECK(rc == 0 && out &&
                  strstr(out, "sent TRUE_POSITIVE on apt_12#2024-11-05#RULE_STUCK_VALVE"),
              "resolve --true-positive: rc %d:\n%s", rc, out ? out : "");
    free(out);
    /* a verdict may correct a verdict (the alerter takes it) */
    rc = alerts("resolve 'apt_31#2024-11-05#ANOMALY' --false-positive --by erin", false, &out);
    HVS_CHECK(rc == 0, "resolve of a resolved alert with the other verdict: rc %d", rc);
    free(out);

    /* refused: nothing is sent */
    fails("resolve 'apt_13#2024-11-05#ANOMALY' --true-positive --by dave", 1,
          "alert apt_13#2024-11-05#ANOMALY of building bldg_1 was never raised (SUPPRESSED: "
          "vacancy)",
          "nothing sent");
    fails("ack 'apt_14#2024-11-01#ANOMALY' --by dave", 1, "was never raised (EXPIRED)",
          "nothing sent");
    fails("resolve 'apt_99#2024-11-05#ANOMALY' --false-positive --by dave", 1,
          "alert apt_99#2024-11-05#ANOMALY is not in the alert book", "nothing sent");
    fails("ack 'apt_31#2024-11-05#ANOMALY' --by dave", 1,
          "is RESOLVED_TRUE_POSITIVE: an acknowledgement does not reopen a verdict", NULL);
    /* an entry in one building's book naming another: reported and left out */
    put_entry("bldg_2", &rows[4]);
    fails("show 'apt_15#2024-11-03#ANOMALY'", 0,
          "skipping hvs:{bldg_2}:al:alerts field apt_15#2024-11-03#ANOMALY: the entry names "
          "building bldg_1",
          "building     bldg_1\n");
    /* the same id in two buildings' books: which one must be said */
    book_row_t copy = rows[4];
    copy.building = "bldg_2";
    put_entry("bldg_2", &copy);
    fails("ack 'apt_15#2024-11-03#ANOMALY' --by dave", 1,
          "is in the books of 2 buildings (bldg_1, bldg_2): say which with --building B",
          "nothing sent");
    rc = alerts("ack 'apt_15#2024-11-03#ANOMALY' --by frank --building bldg_2", false, &out);
    HVS_CHECK(rc == 0 && out && strstr(out, "(key bldg_2)"), "ack --building: rc %d:\n%s", rc,
              out ? out : "");
    free(out);
    hvs_err_t err;
    HVS_CHECK(hvs_redis_command(rc_, NULL, &err, "HDEL hvs:{bldg_2}:al:alerts %s", rows[4].id) == 0,
              "HDEL: %s", err.msg);
    /* usage */
    fails("resolve 'apt_11#2024-11-04#ANOMALY' --by dave", 2,
          "give one verdict, --true-positive or --false-positive", NULL);
    fails("resolve 'apt_11#2024-11-04#ANOMALY' --true-positive --false-positive --by dave", 2,
          "give one verdict", NULL);
    fails("ack 'apt_11#2024-11-04#ANOMALY'", 2, "--by WHO is required", NULL);
    fails("ack 'apt_11#2024-11-04#ANOMALY' --by dave --cause x", 2, "unexpected argument --cause",
          NULL);
    fails("list --date 2024-13-45", 2, "--date \"2024-13-45\"", NULL);
    fails("list --status DONE", 2, "--status \"DONE\" is not one of", NULL);
    fails("frobnicate", 2, "unknown subcommand \"frobnicate\"", NULL);
    int64_t t1 = hvs_time_now_ms();

    json_t *all = hvs_test_tail_json(env, "alerts.feedback", NULL);
    HVS_REQUIRE(all, "tail alerts.feedback");
    HVS_CHECK(json_array_size(all) == 5, "alerts.feedback holds the 5 accepted records, not %zu",
              json_array_size(all));
    check_feedback(all, "apt_11#2024-11-04#ANOMALY", "UNSURE", "bldg_1", "apt_11", "alice", NULL,
                   "on my way", t0, t1);
    check_feedback(all, "apt_21#2024-11-04#RULE_NO_RESPONSE", "FALSE_POSITIVE", "bldg_2", "apt_21",
                   "bob", "vacation", "tenant away", t0, t1);
    check_feedback(all, "apt_12#2024-11-05#RULE_STUCK_VALVE", "TRUE_POSITIVE", "bldg_1", "apt_12",
                   "carol", "stuck_valve", NULL, t0, t1);
    check_feedback(all, "apt_31#2024-11-05#ANOMALY", "FALSE_POSITIVE", "bldg_3", "apt_31", "erin",
                   NULL, NULL, t0, t1);
    check_feedback(all, "apt_15#2024-11-03#ANOMALY", "UNSURE", "bldg_2", "apt_15", "frank", NULL,
                   NULL, t0, t1);
    json_decref(all);
}

static void case_help(void) {
    fixture();
    char *out;
    int rc = alerts("--help", false, &out);
    HVS_CHECK(rc == 0 && out && strstr(out, "hvsctl alerts list") && strstr(out, "resolve ID"),
              "alerts --help: rc %d", rc);
    free(out);
    fails("", 2, "Usage: hvsctl alerts", NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --help", HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 0 && out && strstr(out, "alerts list|show|ack|resolve"),
              "hvsctl --help names alerts: rc %d", rc);
    free(out);
    /* Redis not there: exit 1 naming it */
    snprintf(cmd, sizeof cmd, "env HVS_REDIS_URL=redis://127.0.0.1:%d %s alerts list 2>&1",
             hvs_test_free_port(), HVS_TEST_HVSCTL);
    rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 1 && out && strstr(out, "reading the alert book") && strstr(out, "127.0.0.1"),
              "no redis: rc %d: %s", rc, out ? out : "");
    free(out);
}

static const hvs_test_case_t cases[] = {
    {"list_tables_filters_and_sorting", case_list},
    {"list_json_every_field", case_list_json},
    {"show_every_field_evidence_feedback", case_show},
    {"ack_resolve_produce_feedback_refusals_send_nothing", case_feedback},
    {"help_usage_and_no_redis", case_help},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
