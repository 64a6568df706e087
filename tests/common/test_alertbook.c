/*
 * test_alertbook - the alert book's entry text and the alert record made from an entry:
 *   - format / parse round trip with every enum value, NaN and non-NaN evidence, strings holding
 *     '|', '%', newlines, tabs and multi-byte UTF-8;
 *   - one entry's exact text, written by hand from the documented format (a format change is
 *     noticed);
 *   - a field longer than its buffer is cut at a UTF-8 character boundary, and a field that fits
 *     exactly is kept whole;
 *   - malformed lines refused with reason "bad_entry";
 *   - the rule names and bits;
 *   - hvs_alertbook_to_alert of a raised entry with feedback: evidence pairs and summary.
 */
#include <math.h>
#include <string.h>

#include "hvs/alertbook.h"
#include "hvs_test.h"

#define DAY 86400000LL
#define HOUR 3600000LL
#define D0 1699920000000LL /* 2023-11-14T00:00:00Z */

static bool same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static void check_same(const hvs_alertbook_entry_t *a, const hvs_alertbook_entry_t *b,
                       const char *what) {
    HVS_CHECK(strcmp(a->id, b->id) == 0, "%s: id", what);
    HVS_CHECK(strcmp(a->building, b->building) == 0, "%s: building", what);
    HVS_CHECK(strcmp(a->apartment, b->apartment) == 0, "%s: apartment", what);
    HVS_CHECK(strcmp(a->team, b->team) == 0, "%s: team", what);
    HVS_CHECK(strcmp(a->model, b->model) == 0, "%s: model", what);
    HVS_CHECK(a->type == b->type, "%s: type %d vs %d", what, (int)a->type, (int)b->type);
    HVS_CHECK(a->severity == b->severity, "%s: severity", what);
    HVS_CHECK(a->status == b->status, "%s: status", what);
    HVS_CHECK(a->disposition == b->disposition, "%s: disposition", what);
    HVS_CHECK(strcmp(a->reason, b->reason) == 0, "%s: reason", what);
    HVS_CHECK(a->open == b->open, "%s: open", what);
    HVS_CHECK(same_double(a->score, b->score), "%s: score %.17g vs %.17g", what, a->score,
              b->score);
    HVS_CHECK(a->rank == b->rank, "%s: rank", what);
    HVS_CHECK(a->first_seen == b->first_seen, "%s: first_seen", what);
    HVS_CHECK(a->updated_at == b->updated_at, "%s: updated_at", what);
    HVS_CHECK(a->list_day == b->list_day, "%s: list_day", what);
    HVS_CHECK(a->rules == b->rules, "%s: rules", what);
    HVS_CHECK(a->hours == b->hours, "%s: hours", what);
    HVS_CHECK(same_double(a->max_rule, b->max_rule), "%s: max_rule", what);
    HVS_CHECK(same_double(a->max_z, b->max_z), "%s: max_z", what);
    HVS_CHECK(same_double(a->max_prob, b->max_prob), "%s: max_prob", what);
    HVS_CHECK(strcmp(a->reasons, b->reasons) == 0, "%s: reasons", what);
    HVS_CHECK(a->feedback_at == b->feedback_at, "%s: feedback_at", what);
    HVS_CHECK(strcmp(a->technician, b->technician) == 0, "%s: technician", what);
    HVS_CHECK(strcmp(a->root_cause, b->root_cause) == 0, "%s: root_cause", what);
    HVS_CHECK(strcmp(a->comment, b->comment) == 0, "%s: comment", what);
}

/* Every value of every enum (8 types, 3 severities, 4 statuses, 4 dispositions), NaN evidence on
 * odd rounds, awkward strings everywhere. */
static void test_round_trip(void) {
    static const char *const texts[] = {
        "plain",
        "a|b|c",
        "100% sure %41",
        "line1\nline2\r\n",
        "tab\there",
        "K\xC3\xA4ytt\xC3\xB6vesi \xE2\x82\xAC \xF0\x9F\x94\xA5", /* Käyttövesi € fire emoji */
        "",
        "%|%|\x01\x1F"};
    for (int i = 0; i < 8; i++) {
        hvs_alertbook_entry_t e = {0}, back;
        const char *t = texts[i], *u = texts[(i + 3) % 8];
        snprintf(e.id, sizeof e.id, "apt_%d#2023-11-14#%s", i, hvs_alert_type_name(i));
        snprintf(e.building, sizeof e.building, "b %s", t);
        snprintf(e.apartment, sizeof e.apartment, "%s", u);
        snprintf(e.team, sizeof e.team, "%s", t);
        snprintf(e.model, sizeof e.model, "m|%s:%d", u, i);
        e.type = (hvs_alert_type_t)i;
        e.severity = (hvs_alert_severity_t)(i % 3);
        e.status = (hvs_alert_status_t)(i % 4);
        e.disposition = (hvs_alertbook_disposition_t)((i + 1) % 4);
        snprintf(e.reason, sizeof e.reason, "%s", u);
        e.open = i % 2 == 0;
        e.score = i % 2 ? NAN : 0.1 * i + 1.0 / 3.0;
        e.rank = i;
        e.first_seen = D0 + i * HOUR;
        e.updated_at = D0 + (i + 5) * HOUR;
        e.list_day = i % 2 ? 0 : D0;
        e.rules = (1u << (i % HVS_RULE_COUNT)) | (i == 7 ? 0x1Fu : 0u);
        e.hours = 3 * i;
        e.max_rule = i % 2 ? NAN : 0.9;
        e.max_z = i % 2 ? NAN : -4.25e-3 * (i + 1);
        e.max_prob = i % 2 ? NAN : 1e-300;
        snprintf(e.reasons, sizeof e.reasons, "%s; %s", t, u);
        e.feedback_at = i % 2 ? 0 : D0 + DAY;
        snprintf(e.technician, sizeof e.technician, "%s", u);
        snprintf(e.root_cause, sizeof e.root_cause, "%s", t);
        snprintf(e.comment, sizeof e.comment, "%s / %s", t, u);
        char line[HVS_ALERTBOOK_LINE_MAX];
        int n = hvs_alertbook_format(&e, line, sizeof line);
        HVS_REQUIRE(n > 0, "round %d formats", i);
        HVS_CHECK_EQ_INT(strlen(line), n);
        HVS_CHECK(!memchr(line, '\n', (size_t)n) && !memchr(line, '\t', (size_t)n),
                  "round %d: one line, no raw control bytes", i);
        int bars = 0;
        for (int k = 0; k < n; k++)
            bars += line[k] == '|';
        HVS_CHECK_EQ_INT(bars, 27); /* 28 fields: "a1", 26 values, "end" */
        hvs_err_t err = {0};
        memset(&back, 0x5A, sizeof back);
        HVS_CHECK(hvs_alertbook_parse(line, (size_t)n, &back, &err) == 0, "round %d: %s", i,
                  err.msg);
        char what[32];
        snprintf(what, sizeof what, "round %d", i);
        check_same(&e, &back, what);
        /* and the parsed entry formats to the same text */
        char again[HVS_ALERTBOOK_LINE_MAX];
        HVS_CHECK(hvs_alertbook_format(&back, again, sizeof again) == n &&
                      memcmp(line, again, (size_t)n) == 0,
                  "round %d: same text again", i);
    }
}

static hvs_alertbook_entry_t known_entry(void) {
    hvs_alertbook_entry_t e = {0};
    strcpy(e.id, "apt_1#2023-11-14#RULE_STUCK_VALVE");
    strcpy(e.building, "b1");
    strcpy(e.apartment, "apt_1");
    strcpy(e.team, "north");
    strcpy(e.model, "iforest:3");
    e.type = HVS_ALERT_RULE_STUCK_VALVE;
    e.severity = HVS_SEVERITY_WARNING;
    e.status = HVS_ALERT_INVESTIGATING;
    e.disposition = HVS_ALERTBOOK_RAISED;
    e.open = true;
    e.score = 0.75;
    e.rank = 2;
    e.first_seen = D0 + 5 * HOUR;
    e.updated_at = D0 + 8 * HOUR;
    e.list_day = D0;
    e.rules = HVS_RULE_STUCK_VALVE | HVS_RULE_SENSOR_FLATLINE;
    e.hours = 3;
    e.max_rule = 0.5;
    e.max_z = NAN;
    e.max_prob = 0.25;
    strcpy(e.reasons, "valve|open 50%");
    e.feedback_at = D0 + DAY;
    strcpy(e.technician, "tech_7");
    strcpy(e.root_cause, "stuck_valve");
    strcpy(e.comment, "line1\nline2");
    return e;
}

/* The documented format, by hand: "a1", then id, building, apartment, team, model, type,
 * severity, status, disposition, reason, open, score, rank, first_seen, updated_at, list_day,
 * rules, hours, max_rule, max_z, max_prob, reasons, feedback_at, technician, root_cause, comment,
 * "end"; '|'-separated, '%', '|' and control bytes of strings as %XX, NaN as "nan". */
static void test_golden(void) {
    hvs_alertbook_entry_t e = known_entry();
    const char *want = "a1|apt_1#2023-11-14#RULE_STUCK_VALVE|b1|apt_1|north|iforest:3|"
                       "RULE_STUCK_VALVE|WARNING|INVESTIGATING|RAISED||1|0.75|2|"
                       "1699938000000|1699948800000|1699920000000|5|3|0.5|nan|0.25|"
                       "valve%7Copen 50%25|1700006400000|tech_7|stuck_valve|line1%0Aline2|end";
    char line[HVS_ALERTBOOK_LINE_MAX];
    int n = hvs_alertbook_format(&e, line, sizeof line);
    HVS_CHECK_EQ_INT(n, strlen(want));
    HVS_CHECK_EQ_STR(line, want);
    /* the hand-written line parses to the entry */
    hvs_alertbook_entry_t back;
    hvs_err_t err = {0};
    HVS_CHECK(hvs_alertbook_parse(want, strlen(want), &back, &err) == 0, "%s", err.msg);
    check_same(&e, &back, "golden");
    /* too small a buffer: -1, at every length short of the text */
    for (size_t len = 0; len <= strlen(want); len++)
        HVS_CHECK(hvs_alertbook_format(&e, line, len) == -1, "len %zu", len);
    HVS_CHECK_EQ_INT(hvs_alertbook_format(&e, line, strlen(want) + 1), strlen(want));
}

/* The golden line with field i (0 = "a1") replaced by `with`. */
static void replace_field(char *out, size_t cap, const char *line, int i, const char *with) {
    const char *p = line;
    for (int k = 0; k < i; k++)
        p = strchr(p, '|') + 1;
    const char *q = strchr(p, '|');
    snprintf(out, cap, "%.*s%s%s", (int)(p - line), line, with, q ? q : "");
}

static void expect_refused(const char *line, const char *what) {
    hvs_alertbook_entry_t e;
    hvs_err_t err = {0};
    int rc = hvs_alertbook_parse(line, strlen(line), &e, &err);
    HVS_CHECK(rc == HVS_EINVAL, "%s: refused (rc %d)", what, rc);
    HVS_CHECK_EQ_STR(err.reason, "bad_entry");
}

static void test_refused(void) {
    hvs_alertbook_entry_t e = known_entry();
    char good[HVS_ALERTBOOK_LINE_MAX], bad[HVS_ALERTBOOK_LINE_MAX + 64];
    int n = hvs_alertbook_format(&e, good, sizeof good);
    HVS_REQUIRE(n > 0, "format");
    expect_refused("", "empty");
    expect_refused("garbage", "garbage");
    expect_refused("a1|end", "two fields");
    /* a missing field: drop the comment field */
    snprintf(bad, sizeof bad, "%.*s|end", (int)(strrchr(good, '|') - good - 14), good);
    expect_refused(bad, "one field missing");
    /* truncated anywhere */
    for (int cut = 1; cut < n; cut += 7) {
        snprintf(bad, sizeof bad, "%.*s", cut, good);
        expect_refused(bad, "truncated");
    }
    /* one field too many */
    snprintf(bad, sizeof bad, "%s|extra", good);
    expect_refused(bad, "an extra field after end");
    replace_field(bad, sizeof bad, good, 26, "x|y");
    expect_refused(bad, "an extra field before end");
    /* wrong version / terminator */
    replace_field(bad, sizeof bad, good, 0, "a2");
    expect_refused(bad, "version a2");
    replace_field(bad, sizeof bad, good, 0, "a");
    expect_refused(bad, "version a");
    replace_field(bad, sizeof bad, good, 27, "END");
    expect_refused(bad, "terminator END");
    /* bad enums: type 6, severity 7, status 8, disposition 9 */
    static const struct {
        int field;
        const char *v;
    } enums[] = {{6, "RULE_STUCK"}, {6, ""},        {6, "anomaly"},
                 {7, "SEVERE"},     {7, "warning"}, {8, "RESOLVED"},
                 {8, "UNSEEN "},    {9, "RAISE"},   {9, "CANDIDATES"}};
    for (size_t i = 0; i < sizeof enums / sizeof *enums; i++) {
        replace_field(bad, sizeof bad, good, enums[i].field, enums[i].v);
        expect_refused(bad, enums[i].v);
    }
    /* bad numbers: open 11, score 12, rank 13, times 14-16, rules 17, hours 18, evidence
     * 19-21, feedback_at 23 */
    static const struct {
        int field;
        const char *v;
    } nums[] = {{11, ""},     {11, "yes"},
                {12, "0.7x"}, {12, ""},
                {13, "2.5"},  {14, "1e3"},
                {15, "abc"},  {16, " "},
                {17, "0x5"},  {18, "3h"},
                {19, "n/a"},  {20, "NaNx"},
                {21, ""},     {23, "99999999999999999999999"},
                {14, "12 "}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        replace_field(bad, sizeof bad, good, nums[i].field, nums[i].v);
        expect_refused(bad, nums[i].v);
    }
    /* bad escapes in a string field: not what the format writes */
    replace_field(bad, sizeof bad, good, 22, "50%zz");
    expect_refused(bad, "escape %zz");
    replace_field(bad, sizeof bad, good, 22, "50%2");
    expect_refused(bad, "escape cut short");
    /* the good line still parses (the replacements did not break it) */
    hvs_alertbook_entry_t back;
    hvs_err_t err = {0};
    HVS_CHECK(hvs_alertbook_parse(good, (size_t)n, &back, &err) == 0, "%s", err.msg);
}

/* Whether s is valid UTF-8 (no stray continuation byte, no truncated sequence). */
static bool utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (k < 0)
            return false;
        p++;
        for (int j = 0; j < k; j++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

/* A team name (HVS_ALERTBOOK_NAME_MAX = 96 bytes with the NUL: 95 of text) longer than the field
 * is cut before the character that does not fit whole; one that fits exactly is kept whole. */
static void test_utf8_cut(void) {
    hvs_alertbook_entry_t e = known_entry(), back;
    char good[HVS_ALERTBOOK_LINE_MAX], line[HVS_ALERTBOOK_LINE_MAX], team[512];
    HVS_REQUIRE(hvs_alertbook_format(&e, good, sizeof good) > 0, "format");
    static const struct {
        const char *prefix, *ch, *suffix; /* prefix, count x ch, suffix */
        int count;
        size_t want; /* bytes kept */
    } cases[] = {
        /* 47 x "ä" (94 bytes) + "€" (3): the € does not fit (95 bytes max) -> 94 */
        {"", "\xC3\xA4", "\xE2\x82\xAC", 47, 94},
        /* 48 x "ä" = 96 bytes: the 95th byte is the first half of the 48th -> 94 */
        {"", "\xC3\xA4", "", 48, 94},
        /* "a" + 47 x "ä" = 95 bytes: fits exactly, nothing dropped */
        {"a", "\xC3\xA4", "", 47, 95},
        /* 32 x "€" = 96 bytes: two bytes of the 32nd would fit -> 31 whole = 93 */
        {"", "\xE2\x82\xAC", "", 32, 93},
        /* "ab" + 31 x "€" = 95: fits exactly */
        {"ab", "\xE2\x82\xAC", "", 31, 95},
        /* 4-byte characters: "xyz" + 23 = 95 fits exactly; "xy" + 24 = 98 -> 94 */
        {"xyz", "\xF0\x9F\x94\xA5", "", 23, 95},
        {"xy", "\xF0\x9F\x94\xA5", "", 24, 94},
        /* ASCII: cut at 95 */
        {"", "q", "", 100, 95},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        strcpy(team, cases[i].prefix);
        for (int k = 0; k < cases[i].count; k++)
            strcat(team, cases[i].ch);
        strcat(team, cases[i].suffix);
        replace_field(line, sizeof line, good, 4, team);
        hvs_err_t err = {0};
        HVS_REQUIRE(hvs_alertbook_parse(line, strlen(line), &back, &err) == 0, "%s", err.msg);
        HVS_CHECK(strlen(back.team) == cases[i].want, "case %zu: kept %zu bytes, expected %zu", i,
                  strlen(back.team), cases[i].want);
        HVS_CHECK(memcmp(back.team, team, strlen(back.team)) == 0, "case %zu: a prefix", i);
        HVS_CHECK(utf8_ok(back.team), "case %zu: valid UTF-8", i);
    }
    /* an escaped field cut: 94 x "%25" decode to 94 '%', then "ä" does not fit -> 94 */
    team[0] = '\0';
    for (int k = 0; k < 94; k++)
        strcat(team, "%25");
    strcat(team, "\xC3\xA4");
    replace_field(line, sizeof line, good, 4, team);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_alertbook_parse(line, strlen(line), &back, &err) == 0, "%s", err.msg);
    HVS_CHECK_EQ_INT(strlen(back.team), 94);
    HVS_CHECK(utf8_ok(back.team), "escaped: valid UTF-8");
}

static void test_rules(void) {
    static const struct {
        const char *name;
        uint32_t bit;
    } want[HVS_RULE_COUNT] = {{"stuck_valve", HVS_RULE_STUCK_VALVE},
                              {"no_heat_response", HVS_RULE_NO_HEAT_RESPONSE},
                              {"sensor_flatline", HVS_RULE_SENSOR_FLATLINE},
                              {"sensor_mismatch", HVS_RULE_SENSOR_MISMATCH},
                              {"consumption_without_demand", HVS_RULE_CONSUMPTION_WITHOUT_DEMAND}};
    uint32_t all = 0;
    for (int i = 0; i < HVS_RULE_COUNT; i++) {
        HVS_CHECK_EQ_INT(hvs_alertbook_rule_bit(want[i].name), want[i].bit);
        HVS_CHECK_EQ_INT(want[i].bit, 1u << i);
        HVS_CHECK_EQ_STR(hvs_alertbook_rule_name(i), want[i].name);
        HVS_CHECK((all & want[i].bit) == 0, "bits distinct");
        all |= want[i].bit;
    }
    HVS_CHECK_EQ_INT(hvs_alertbook_rule_bit("Stuck_valve"), 0);
    HVS_CHECK_EQ_INT(hvs_alertbook_rule_bit("stuck_valve "), 0);
    HVS_CHECK_EQ_INT(hvs_alertbook_rule_bit(""), 0);
    HVS_CHECK_EQ_INT(hvs_alertbook_rule_bit("residual"), 0);
    HVS_CHECK_EQ_STR(hvs_alertbook_rule_name(HVS_RULE_COUNT), "unknown");
    HVS_CHECK_EQ_STR(hvs_alertbook_rule_name(-1), "unknown");
    /* disposition and status names both ways */
    static const char *const disp[] = {"CANDIDATE", "RAISED", "SUPPRESSED", "EXPIRED"};
    static const char *const stat[] = {"UNSEEN", "INVESTIGATING", "RESOLVED_TRUE_POSITIVE",
                                       "RESOLVED_FALSE_POSITIVE"};
    for (int i = 0; i < 4; i++) {
        hvs_alertbook_disposition_t d;
        hvs_alert_status_t s;
        HVS_CHECK_EQ_STR(hvs_alertbook_disposition_name((hvs_alertbook_disposition_t)i), disp[i]);
        HVS_CHECK(hvs_alertbook_disposition_parse(disp[i], &d) == 0 && (int)d == i, "%s", disp[i]);
        HVS_CHECK(hvs_alert_status_parse(stat[i], &s) == 0 && (int)s == i, "%s", stat[i]);
    }
    hvs_alertbook_disposition_t d;
    hvs_alert_status_t s;
    HVS_CHECK(hvs_alertbook_disposition_parse("raised", &d) != 0, "case matters");
    HVS_CHECK(hvs_alert_status_parse("RESOLVED", &s) != 0, "unknown status");
}

static const char *ev_get(const char *const *ev, const char *name) {
    for (int i = 0; ev[i]; i += 2)
        if (strcmp(ev[i], name) == 0)
            return ev[i + 1];
    return NULL;
}

static void test_to_alert(void) {
    hvs_alertbook_entry_t e = known_entry();
    e.severity = HVS_SEVERITY_CRITICAL;
    e.status = HVS_ALERT_RESOLVED_TRUE_POSITIVE;
    e.max_z = 3.14159;
    e.rules = HVS_RULE_STUCK_VALVE | HVS_RULE_SENSOR_FLATLINE | HVS_RULE_CONSUMPTION_WITHOUT_DEMAND;
    strcpy(e.reasons, "valve 100% open 6 h; room 16.2 C");
    strcpy(e.comment, "replaced the actuator");
    hvs_alert_t a;
    const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1];
    char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX], summary[512];
    hvs_alertbook_to_alert(&e, &a, ev, evtext, summary, sizeof summary);
    static const char *const want[] = {
        "hours_above", "3",
        "open",        "true",
        "rule_score",  "0.500",
        "residual_z",  "3.14",
        "probability", "0.250",
        "rules",       "stuck_valve,sensor_flatline,consumption_without_demand",
        "technician",  "tech_7",
        "root_cause",  "stuck_valve",
        "comment",     "replaced the actuator",
        "reasons",     "valve 100% open 6 h; room 16.2 C",
        NULL};
    for (int i = 0; want[i]; i++)
        HVS_CHECK(ev[i] && strcmp(ev[i], want[i]) == 0, "evidence %d = %s, expected %s", i,
                  hvs_test_str(ev[i]), want[i]);
    HVS_CHECK(ev[20] == NULL, "evidence ends after 10 pairs");
    HVS_CHECK_EQ_STR(summary,
                     "b1 apt_1: valve looks stuck (score 0.75 over 3 h): valve 100% open 6 h; "
                     "room 16.2 C");
    HVS_CHECK_EQ_STR(a.building_id, "b1");
    HVS_CHECK_EQ_STR(a.apartment_id, "apt_1");
    HVS_CHECK_EQ_INT(a.type, HVS_ALERT_RULE_STUCK_VALVE);
    HVS_CHECK_EQ_INT(a.severity, HVS_SEVERITY_CRITICAL);
    HVS_CHECK(a.score == 0.75, "score");
    HVS_CHECK(a.summary == summary, "summary");
    HVS_CHECK(a.evidence == ev, "evidence");
    HVS_CHECK_EQ_STR(a.model, "iforest:3");
    HVS_CHECK_EQ_INT(a.first_seen, D0 + 5 * HOUR);
    HVS_CHECK_EQ_INT(a.updated_at, D0 + 8 * HOUR);
    HVS_CHECK_EQ_STR(a.team, "north");
    HVS_CHECK_EQ_INT(a.status, HVS_ALERT_RESOLVED_TRUE_POSITIVE);
    HVS_CHECK_EQ_INT(a.rank, 2);
    char id[HVS_ALERTBOOK_ID_MAX];
    HVS_CHECK(hvs_alert_id(&a, id, sizeof id) > 0 && strcmp(id, e.id) == 0,
              "the record's alert id is the entry's: %s", id);

    /* no feedback, no evidence of a kind, no team, no model, no reasons, closed, other type */
    hvs_alertbook_entry_t f = known_entry();
    f.type = HVS_ALERT_ANOMALY;
    f.feedback_at = 0;
    f.max_rule = f.max_z = f.max_prob = NAN;
    f.rules = 0;
    f.open = false;
    f.team[0] = f.model[0] = f.reasons[0] = '\0';
    f.score = 0.666;
    f.hours = 12;
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    HVS_CHECK_EQ_STR(ev[0], "hours_above");
    HVS_CHECK_EQ_STR(ev[1], "12");
    HVS_CHECK_EQ_STR(ev[2], "open");
    HVS_CHECK_EQ_STR(ev[3], "false");
    HVS_CHECK(ev[4] == NULL, "only two pairs");
    HVS_CHECK_EQ_STR(summary, "b1 apt_1: unusual consumption (score 0.67 over 12 h)");
    HVS_CHECK(a.team == NULL && a.model == NULL, "empty team and model are null");

    /* the phrases of the rule types */
    f.type = HVS_ALERT_RULE_NO_RESPONSE;
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    HVS_CHECK_EQ_STR(summary, "b1 apt_1: radiator gives no heat (score 0.67 over 12 h)");
    f.type = HVS_ALERT_RULE_SENSOR_MISMATCH;
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    HVS_CHECK_EQ_STR(summary, "b1 apt_1: room sensor looks faulty (score 0.67 over 12 h)");

    /* feedback without root cause or comment: the technician only */
    f.feedback_at = D0;
    f.root_cause[0] = f.comment[0] = '\0';
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    HVS_CHECK_EQ_STR(ev_get(ev, "technician"), "tech_7");
    HVS_CHECK(!ev_get(ev, "root_cause") && !ev_get(ev, "comment"), "no empty pairs");

    /* a long comment is shortened in the evidence at a character boundary: 89 ASCII bytes then
     * "ä" (bytes 90-91) -> the first 89 bytes, never half a character */
    memset(f.comment, 'c', 89);
    strcpy(f.comment + 89, "\xC3\xA4 and more");
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    const char *c = ev_get(ev, "comment");
    HVS_REQUIRE(c, "comment pair");
    HVS_CHECK(utf8_ok(c), "comment evidence is valid UTF-8 (%zu bytes)", strlen(c));
    HVS_CHECK_EQ_INT(strlen(c), 89);
    /* 88 ASCII + "ä" = 90 bytes fit whole */
    memset(f.comment, 'c', 88);
    strcpy(f.comment + 88, "\xC3\xA4 and more");
    hvs_alertbook_to_alert(&f, &a, ev, evtext, summary, sizeof summary);
    c = ev_get(ev, "comment");
    HVS_CHECK(c && strlen(c) == 90 && utf8_ok(c), "90 bytes of whole characters kept");

    /* a summary cut by its buffer ends at a character boundary too */
    strcpy(f.reasons, "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC");
    char small[64];
    hvs_alertbook_to_alert(&f, &a, ev, evtext, small, sizeof small);
    HVS_CHECK(utf8_ok(small), "short summary is valid UTF-8: %s", small);
    /* the text before the reasons, then as many whole € (3 bytes) as fit in 63 bytes */
    size_t head = strlen("b1 apt_1: room sensor looks faulty (score 0.67 over 12 h): ");
    HVS_CHECK_EQ_INT(strlen(small), head + (63 - head) / 3 * 3);
}

static const hvs_test_case_t cases[] = {
    {"round_trip", test_round_trip},
    {"golden", test_golden},
    {"refused", test_refused},
    {"utf8_cut", test_utf8_cut},
    {"rules", test_rules},
    {"to_alert", test_to_alert},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
