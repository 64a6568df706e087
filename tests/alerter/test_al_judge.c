/*
 * test_al_judge - the alerter's pure parts on buildings built in memory (no services):
 *   - hysteresis: an episode opens at >= open, lasts through hours between close and open and
 *     through fewer than close_hours low hours, closes after close_hours; flapping is one
 *     episode; hours without a score neither open nor close; the alert id and its type;
 *   - suppression: building-wide (share and minimum), vacancy (ANOMALY only, enough known
 *     hours), a technician's benign false positive (type, from / until);
 *   - CRITICAL at once, outside the daily budget;
 *   - daily lists across partitions and teams: made only once every partition of the team
 *     judged the day, ranked by the highest score up to the day (a partition running ahead does
 *     not change it), ties, top_k, carry and expiry, a CRITICAL raised after the day's end;
 *   - the feedback workflow's transitions and refusals;
 *   - the apartment text round trip.
 */
#include <math.h>
#include <string.h>

#include "hvs/alertbook.h"
#include "hvs_test.h"
#include "judge.h"
#include "state.h"
#include "workflow.h"

#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define D0 1699920000000LL /* 2023-11-14T00:00:00Z */

static al_conf_t conf;
static al_judge_stats_t st;

static void setup(void) {
    conf = (al_conf_t){.open = 0.5,
                       .close = 0.3,
                       .close_hours = 3,
                       .critical_score = 0.9,
                       .critical_rules = HVS_RULE_NO_HEAT_RESPONSE,
                       .top_k = 2,
                       .carry_ms = DAY,
                       .keep_ms = 14 * DAY,
                       .fp_suppress_ms = 7 * DAY,
                       .vacancy_hours = 24,
                       .vacancy_known = 12,
                       .water_min_l = 5,
                       .building_share = 0.5,
                       .building_min = 100,
                       .idle_ms = 2 * DAY};
    memset(&st, 0, sizeof st);
}

/* Score of apartment a at hour h (NaN evidence but the rule score when rules are given). */
static void put(al_apartment_t *a, hvs_ms_t h, double score, uint32_t rules, double rule_score) {
    al_hour_t x = {.hour = h,
                   .score = (float)score,
                   .rule_score = (float)rule_score,
                   .z = NAN,
                   .prob = (float)score,
                   .rules = rules};
    HVS_REQUIRE(al_apartment_put_hour(a, &x, NULL) == 1, "put hour");
}

static void judge(al_building_t *b, hvs_ms_t h) {
    hvs_err_t err = {0};
    HVS_REQUIRE(al_judge_hour(&conf, b, h, "team_a", &st, &err) == 0, "%s", err.msg);
}

static al_entry_t *entry(al_building_t *b, const char *id) {
    return al_building_entry(b, id, false);
}

/* ---- hysteresis ----------------------------------------------------------------------------- */

static void test_hysteresis(void) {
    setup();
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    al_apartment_t *a = al_building_apartment(b, "apt_1", true);
    HVS_REQUIRE(s && b && a, "state");
    /* hour: score; open after hour 1 (0.6 >= 0.5); 0.4 and 0.35 are between close and open:
     * still open; two low hours (< 0.3) then 0.45 (>= close) resets the count; three low hours
     * close it at hour 9 */
    static const double sc[] = {0.2, 0.6, 0.4, 0.35, 0.1, 0.29, 0.45, 0.1, 0.0, 0.2, 0.7};
    static const bool open_after[] = {false, true, true, true,  true, true,
                                      true,  true, true, false, true};
    al_entry_t *x = NULL;
    for (int k = 0; k < 10; k++) {
        put(a, D0 + k * HOUR, sc[k], 0, NAN);
        judge(b, D0 + k * HOUR);
        HVS_CHECK(a->open == open_after[k], "hour %d: open %d, expected %d", k, a->open,
                  open_after[k]);
        x = entry(b, "apt_1#2023-11-14#ANOMALY");
        HVS_CHECK((x != NULL) == (k >= 1), "hour %d: an entry once opened", k);
        if (x)
            HVS_CHECK(x->e.open == open_after[k], "hour %d: the entry's open", k);
    }
    HVS_REQUIRE(x, "the first episode's entry");
    HVS_CHECK(!x->e.open, "closed");
    HVS_CHECK_EQ_INT(x->e.first_seen, D0 + HOUR);
    HVS_CHECK_EQ_INT(x->e.updated_at, D0 + 6 * HOUR); /* its last hour >= close */
    HVS_CHECK_EQ_INT(x->e.hours, 1);                  /* only hour 1 was >= open */
    HVS_CHECK_NEAR(x->e.score, 0.6, 1e-6);
    HVS_CHECK_EQ_INT(x->e.disposition, HVS_ALERTBOOK_CANDIDATE);
    HVS_CHECK_EQ_STR(x->e.building, "b1");
    HVS_CHECK_EQ_STR(x->e.apartment, "apt_1");
    HVS_CHECK_EQ_STR(x->e.team, "team_a");
    HVS_CHECK_EQ_INT(x->e.severity, HVS_SEVERITY_WARNING);
    /* hour 10 reopens the same day and type: the same entry again, open */
    put(a, D0 + 10 * HOUR, sc[10], 0, NAN);
    judge(b, D0 + 10 * HOUR);
    HVS_CHECK(a->open == open_after[10], "hour 10");
    HVS_CHECK_EQ_INT(b->nentries, 1);
    HVS_CHECK(x->e.open, "reopened");
    HVS_CHECK_NEAR(x->e.score, 0.7, 1e-6);
    HVS_CHECK_EQ_INT(x->e.hours, 2);

    /* flapping 0.6 / 0.2 for 12 hours: one episode of 6 hours above open */
    al_apartment_t *f = al_building_apartment(b, "apt_2", true);
    for (int k = 0; k < 12; k++) {
        put(f, D0 + (20 + k) * HOUR, k % 2 ? 0.2 : 0.6, 0, NAN);
        judge(b, D0 + (20 + k) * HOUR);
    }
    HVS_CHECK(f->open, "still open");
    HVS_CHECK_EQ_INT(b->nentries, 2);
    x = entry(b, "apt_2#2023-11-14#ANOMALY");
    HVS_REQUIRE(x, "apt_2's episode");
    HVS_CHECK_EQ_INT(x->e.hours, 6);
    HVS_CHECK_EQ_INT(x->e.first_seen, D0 + 20 * HOUR);
    /* from 23:00 on the 14th the episode runs into the 15th: its id keeps the 14th */
    HVS_CHECK_EQ_INT(x->e.updated_at, D0 + 30 * HOUR);
    HVS_CHECK(!entry(b, "apt_2#2023-11-15#ANOMALY"), "no second alert");

    /* hours without a score: an open episode stays open (no low hour counted) however many
     * pass; a closed apartment does not open */
    al_apartment_t *m = al_building_apartment(b, "apt_3", true);
    put(m, D0 + 40 * HOUR, 0.8, 0, NAN);
    judge(b, D0 + 40 * HOUR);
    HVS_CHECK(m->open, "apt_3 open");
    for (int k = 41; k < 60; k++) {
        put(f, D0 + k * HOUR, 0.9, 0, NAN); /* another apartment keeps the hours judged */
        judge(b, D0 + k * HOUR);
    }
    HVS_CHECK(m->open && m->below == 0, "apt_3 still open after 19 hours without a score");
    put(m, D0 + 60 * HOUR, 0.1, 0, NAN);
    judge(b, D0 + 60 * HOUR);
    HVS_CHECK(m->open && m->below == 1, "one low hour counted");
    size_t before = b->nentries;
    al_apartment_t *q = al_building_apartment(b, "apt_4", true);
    for (int k = 61; k < 70; k++)
        judge(b, D0 + k * HOUR);
    HVS_CHECK(!q->open && b->nentries == before, "no score: nothing opens");
    HVS_CHECK(m->open && m->below == 1, "no score: nothing closes");
    al_state_destroy(s);
}

/* Scores are kept as floats, thresholds are doubles: a score equal to a threshold counts as at
 * it (0.7 and 0.35 are below their doubles as floats). */
static void test_thresholds(void) {
    setup();
    conf.open = 0.7, conf.close = 0.35, conf.close_hours = 1;
    conf.critical_score = 0.9;
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    al_apartment_t *a = al_building_apartment(b, "t1", true);
    al_apartment_t *n = al_building_apartment(b, "t2", true);
    put(a, D0, 0.7, HVS_RULE_NO_HEAT_RESPONSE, 0.9);
    put(n, D0, 0.6999, 0, NAN);
    judge(b, D0);
    HVS_CHECK(a->open, "0.7 opens at open 0.7");
    HVS_CHECK(!n->open, "0.6999 does not");
    al_entry_t *x = entry(b, "t1#2023-11-14#RULE_NO_RESPONSE");
    HVS_REQUIRE(x, "t1's entry");
    HVS_CHECK_EQ_INT(x->e.hours, 1);
    HVS_CHECK(x->e.disposition == HVS_ALERTBOOK_RAISED, "rule score 0.9 at critical 0.9");
    put(a, D0 + HOUR, 0.35, 0, NAN);
    judge(b, D0 + HOUR);
    HVS_CHECK(a->open && a->below == 0, "0.35 at close 0.35 is not low");
    put(a, D0 + 2 * HOUR, 0.3499, 0, NAN);
    judge(b, D0 + 2 * HOUR);
    HVS_CHECK(!a->open, "0.3499 closes (close_hours 1)");
    al_state_destroy(s);
}

static void test_type(void) {
    setup();
    static const struct {
        uint32_t rules;
        hvs_alert_type_t want;
        const char *name;
    } t[] = {
        {HVS_RULE_NO_HEAT_RESPONSE | HVS_RULE_STUCK_VALVE | HVS_RULE_SENSOR_MISMATCH,
         HVS_ALERT_RULE_NO_RESPONSE, "RULE_NO_RESPONSE"},
        {HVS_RULE_STUCK_VALVE | HVS_RULE_SENSOR_FLATLINE | HVS_RULE_CONSUMPTION_WITHOUT_DEMAND,
         HVS_ALERT_RULE_STUCK_VALVE, "RULE_STUCK_VALVE"},
        {HVS_RULE_SENSOR_FLATLINE, HVS_ALERT_RULE_SENSOR_MISMATCH, "RULE_SENSOR_MISMATCH"},
        {HVS_RULE_SENSOR_MISMATCH | HVS_RULE_CONSUMPTION_WITHOUT_DEMAND,
         HVS_ALERT_RULE_SENSOR_MISMATCH, "RULE_SENSOR_MISMATCH"},
        {HVS_RULE_CONSUMPTION_WITHOUT_DEMAND, HVS_ALERT_ANOMALY, "ANOMALY"},
        {0, HVS_ALERT_ANOMALY, "ANOMALY"},
    };
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    for (int i = 0; i < 6; i++) {
        HVS_CHECK_EQ_INT(al_judge_type(t[i].rules), t[i].want);
        /* opened on the second UTC day at 00:00 + i h, the id has that date and the type */
        char apt[16], id[64];
        snprintf(apt, sizeof apt, "apt_%d", i);
        al_apartment_t *a = al_building_apartment(b, apt, true);
        hvs_ms_t h = D0 + DAY + i * HOUR;
        put(a, h, 0.6, t[i].rules, 0.5);
        judge(b, h);
        /* later hours' rules do not change the type */
        put(a, h + HOUR, 0.7, HVS_RULE_NO_HEAT_RESPONSE, 0.5);
        judge(b, h + HOUR);
        snprintf(id, sizeof id, "%s#2023-11-15#%s", apt, t[i].name);
        al_entry_t *x = entry(b, id);
        HVS_CHECK(x != NULL, "entry %s", id);
        if (x)
            HVS_CHECK_EQ_INT(x->e.type, t[i].want);
    }
    HVS_CHECK_EQ_INT(b->nentries, 6);
    al_state_destroy(s);
}

/* ---- suppression ---------------------------------------------------------------------------- */

/* A building of n apartments, `above` of them scoring 0.8 and the rest 0.1 at hour h (and
 * `unscored` more without a score); the dispositions of the opened entries. */
static void wide_case(int n, int above, int unscored, bool want_wide) {
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    hvs_ms_t h = D0 + 5 * HOUR;
    for (int i = 0; i < n + unscored; i++) {
        char apt[16];
        snprintf(apt, sizeof apt, "apt_%02d", i);
        al_apartment_t *a = al_building_apartment(b, apt, true);
        if (i < n)
            put(a, h, i < above ? 0.8 : 0.1, 0, NAN);
    }
    memset(&st, 0, sizeof st);
    judge(b, h);
    HVS_CHECK_EQ_INT(b->nentries, above);
    for (size_t k = 0; k < b->nentries; k++) {
        const hvs_alertbook_entry_t *e = &b->entries[k]->e;
        if (want_wide) {
            HVS_CHECK(e->disposition == HVS_ALERTBOOK_SUPPRESSED &&
                          strcmp(e->reason, "building_wide") == 0,
                      "%d of %d: %s suppressed building_wide (%s)", above, n, e->id, e->reason);
        } else {
            HVS_CHECK(e->disposition == HVS_ALERTBOOK_CANDIDATE && !e->reason[0],
                      "%d of %d: %s a candidate", above, n, e->id);
        }
    }
    HVS_CHECK_EQ_INT(st.suppressed[AL_SUP_BUILDING_WIDE], want_wide ? above : 0);
    HVS_CHECK_EQ_INT(st.opened, above);
    al_state_destroy(s);
}

static void test_building_wide(void) {
    setup();
    conf.building_share = 0.5;
    conf.building_min = 3;
    wide_case(6, 3, 0, true);  /* 3 of 6: the share, the minimum */
    wide_case(8, 3, 0, false); /* 3 of 8 < half */
    wide_case(8, 4, 0, true);  /* 4 of 8 = half */
    wide_case(4, 2, 0, false); /* half, but 2 < the minimum 3 */
    wide_case(3, 3, 0, true);  /* all 3 */
    wide_case(2, 2, 0, false); /* all, but only 2 */
    wide_case(4, 3, 6, true);  /* unscored apartments do not count: 3 of 4 scored */
    conf.building_share = 0.75;
    wide_case(4, 3, 0, true);
    wide_case(5, 3, 0, false); /* 3 < 0.75 * 5 */
}

/* Apartment apt opening at hour h with rules; water known for `known` hours before (no use),
 * plus one hour with use at `used_at` hours before h (-1 none). */
static const hvs_alertbook_entry_t *vacancy_case(al_building_t *b, const char *apt, hvs_ms_t h,
                                                 uint32_t rules, int known, int used_at,
                                                 double litres_unused) {
    al_apartment_t *a = al_building_apartment(b, apt, true);
    for (int k = 0; k < known; k++)
        al_judge_water(a, h - k * HOUR, k % 2 ? litres_unused : 0.0, conf.water_min_l);
    if (used_at >= 0)
        al_judge_water(a, h - used_at * HOUR, conf.water_min_l, conf.water_min_l);
    put(a, h, 0.8, rules, rules ? 0.5 : NAN);
    judge(b, h);
    HVS_REQUIRE(b->nentries > 0, "an entry");
    for (size_t k = 0; k < b->nentries; k++)
        if (strncmp(b->entries[k]->e.id, apt, strlen(apt)) == 0 &&
            b->entries[k]->e.id[strlen(apt)] == '#')
            return &b->entries[k]->e;
    HVS_REQUIRE(0, "no entry of %s", apt);
    return NULL;
}

static bool suppressed_as(const hvs_alertbook_entry_t *e, const char *reason) {
    return e->disposition == HVS_ALERTBOOK_SUPPRESSED && strcmp(e->reason, reason) == 0;
}

static void test_vacancy(void) {
    setup();
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    hvs_ms_t h = D0 + 2 * DAY + 10 * HOUR;
    /* 12 known hours (of 24) without hot water (0 l and 4.9 l < 5 l): vacant */
    HVS_CHECK(suppressed_as(vacancy_case(b, "v1", h, 0, 12, -1, 4.9), "vacancy"), "12 known");
    HVS_CHECK(suppressed_as(vacancy_case(b, "v2", h, 0, 24, -1, 0), "vacancy"), "24 known");
    /* 11 known: not enough to tell */
    HVS_CHECK(vacancy_case(b, "v3", h, 0, 11, -1, 0)->disposition == HVS_ALERTBOOK_CANDIDATE,
              "11 known");
    /* one hour with use (5 l = the minimum) among 20 known: somebody is home */
    HVS_CHECK(vacancy_case(b, "v4", h, 0, 20, 23, 0)->disposition == HVS_ALERTBOOK_CANDIDATE,
              "used 23 h before");
    /* use 24 h before is outside the window of 24 hours (h-23 .. h): still vacant */
    HVS_CHECK(suppressed_as(vacancy_case(b, "v5", h, 0, 20, 24, 0), "vacancy"), "used 24 h before");
    /* a rule's alert is not explained by vacancy */
    HVS_CHECK(vacancy_case(b, "v6", h, HVS_RULE_STUCK_VALVE, 24, -1, 0)->disposition ==
                  HVS_ALERTBOOK_CANDIDATE,
              "stuck valve while away");
    /* consumption_without_demand alone is typed ANOMALY: vacancy applies */
    HVS_CHECK(
        suppressed_as(vacancy_case(b, "v7", h, HVS_RULE_CONSUMPTION_WITHOUT_DEMAND, 24, -1, 0),
                      "vacancy"),
        "ANOMALY with a non-typing rule");
    /* unknown water (NaN) is not an hour known: 11 known + 13 NaN -> not vacant */
    al_apartment_t *a = al_building_apartment(b, "v8", true);
    for (int k = 0; k < 24; k++)
        al_judge_water(a, h - k * HOUR, k < 11 ? 0.0 : NAN, conf.water_min_l);
    put(a, h, 0.8, 0, NAN);
    judge(b, h);
    HVS_CHECK(entry(b, "v8#2023-11-16#ANOMALY") &&
                  entry(b, "v8#2023-11-16#ANOMALY")->e.disposition == HVS_ALERTBOOK_CANDIDATE,
              "NaN litres are unknown");
    HVS_CHECK_EQ_INT(st.suppressed[AL_SUP_VACANCY], 4);
    al_state_destroy(s);
}

static void test_feedback_window(void) {
    setup();
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    hvs_ms_t from = D0 + 3 * HOUR, until = D0 + 3 * DAY;
    static const struct {
        hvs_ms_t at;
        uint32_t rules; /* the type */
        bool want;
    } t[] = {
        {D0 + 3 * HOUR, HVS_RULE_STUCK_VALVE, true},       /* at from */
        {D0 + 3 * DAY - HOUR, HVS_RULE_STUCK_VALVE, true}, /* the last hour before until */
        {D0 + 3 * DAY, HVS_RULE_STUCK_VALVE, false},       /* at until: over */
        {D0 + 2 * HOUR, HVS_RULE_STUCK_VALVE, false},      /* before from */
        {D0 + DAY, HVS_RULE_NO_HEAT_RESPONSE, false},      /* another type */
        {D0 + DAY, 0, false},                              /* ANOMALY */
    };
    for (int i = 0; i < 6; i++) {
        char apt[16], id[64];
        snprintf(apt, sizeof apt, "f%d", i);
        al_apartment_t *a = al_building_apartment(b, apt, true);
        a->sup_from = from, a->sup_until = until, a->sup_type = HVS_ALERT_RULE_STUCK_VALVE;
        strcpy(a->sup_cause, "window_open");
        put(a, t[i].at, 0.8, t[i].rules, 0.5);
        judge(b, t[i].at);
        hvs_alert_t key = {.building_id = "b1",
                           .apartment_id = apt,
                           .type = al_judge_type(t[i].rules),
                           .first_seen = t[i].at};
        hvs_alert_id(&key, id, sizeof id);
        al_entry_t *x = entry(b, id);
        HVS_REQUIRE(x, "%s", id);
        if (t[i].want)
            HVS_CHECK(suppressed_as(&x->e, "feedback:window_open"), "case %d: %s %s", i, id,
                      x->e.reason);
        else
            HVS_CHECK(x->e.disposition == HVS_ALERTBOOK_CANDIDATE, "case %d: %s", i, id);
    }
    HVS_CHECK_EQ_INT(st.suppressed[AL_SUP_FEEDBACK], 2);
    al_state_destroy(s);
}

/* ---- CRITICAL ------------------------------------------------------------------------------- */

static void test_critical(void) {
    setup();
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    hvs_ms_t h = D0 + 4 * HOUR;
    static const struct {
        const char *apt;
        uint32_t rules;
        double rule_score;
        bool want;
    } t[] = {
        {"c1", HVS_RULE_NO_HEAT_RESPONSE, 0.9, true},
        {"c2", HVS_RULE_NO_HEAT_RESPONSE | HVS_RULE_STUCK_VALVE, 1.0, true},
        {"c3", HVS_RULE_NO_HEAT_RESPONSE, 0.89, false},
        {"c4", HVS_RULE_STUCK_VALVE, 1.0, false}, /* not a critical rule */
        {"c5", 0, 1.0, false},                    /* no rule */
    };
    for (int i = 0; i < 5; i++) {
        al_apartment_t *a = al_building_apartment(b, t[i].apt, true);
        put(a, h, 0.95, t[i].rules, t[i].rule_score);
    }
    judge(b, h);
    for (int i = 0; i < 5; i++) {
        const hvs_alertbook_entry_t *e = NULL;
        for (size_t k = 0; k < b->nentries; k++)
            if (strncmp(b->entries[k]->e.id, t[i].apt, 2) == 0)
                e = &b->entries[k]->e;
        HVS_REQUIRE(e, "%s", t[i].apt);
        if (t[i].want) {
            HVS_CHECK(e->disposition == HVS_ALERTBOOK_RAISED &&
                          e->severity == HVS_SEVERITY_CRITICAL && e->status == HVS_ALERT_UNSEEN &&
                          e->rank == 0,
                      "%s raised CRITICAL", t[i].apt);
        } else {
            HVS_CHECK(e->disposition == HVS_ALERTBOOK_CANDIDATE &&
                          e->severity == HVS_SEVERITY_WARNING,
                      "%s a candidate", t[i].apt);
        }
    }
    HVS_CHECK_EQ_INT(st.critical, 2);
    /* a critical hour later in an episode raises it then */
    al_apartment_t *a = al_building_apartment(b, "c3", false);
    put(a, h + HOUR, 0.4, HVS_RULE_NO_HEAT_RESPONSE, 0.95); /* between close and open */
    judge(b, h + HOUR);
    al_entry_t *x = entry(b, "c3#2023-11-14#RULE_NO_RESPONSE");
    HVS_REQUIRE(x, "c3");
    HVS_CHECK(x->e.disposition == HVS_ALERTBOOK_RAISED && x->e.severity == HVS_SEVERITY_CRITICAL,
              "raised at its second hour");
    HVS_CHECK_EQ_INT(x->raised_hour, h + HOUR);
    HVS_CHECK(x->publish, "to publish");
    HVS_CHECK_EQ_INT(st.critical, 3);
    al_state_destroy(s);
}

/* ---- daily lists ---------------------------------------------------------------------------- */

/* b_* buildings of team "a" except b_x (team "b"). */
static const char *team_of(void *opaque, const char *building) {
    (void)opaque;
    return strcmp(building, "b_x") == 0 ? "b" : "a";
}

/* An entry made by hand: a candidate with hourly scores (hour offsets from D0). */
static al_entry_t *cand(al_building_t *b, const char *apt, const hvs_ms_t *hours,
                        const double *scores, int n) {
    char id[64];
    hvs_alert_t key = {.building_id = b->id,
                       .apartment_id = apt,
                       .type = HVS_ALERT_ANOMALY,
                       .first_seen = D0 + hours[0]};
    hvs_alert_id(&key, id, sizeof id);
    al_entry_t *x = al_building_entry(b, id, true);
    HVS_REQUIRE(x, "entry");
    snprintf(x->e.building, sizeof x->e.building, "%s", b->id);
    snprintf(x->e.apartment, sizeof x->e.apartment, "%s", apt);
    x->e.first_seen = D0 + hours[0];
    x->e.disposition = HVS_ALERTBOOK_CANDIDATE;
    for (int i = 0; i < n; i++) {
        x->e.updated_at = D0 + hours[i];
        if (isnan(x->e.score) || scores[i] > x->e.score)
            x->e.score = scores[i];
        al_entry_note_hour(x, D0 + hours[i], scores[i]);
    }
    return x;
}

static bool caught_up = true;

static int lists(al_state_t *s) {
    hvs_err_t err = {0};
    HVS_REQUIRE(al_judge_lists(s, &conf, team_of, NULL, NULL, caught_up, &st, &err) == 0, "%s",
                err.msg);
    return (int)st.lists;
}

static void test_lists_partitions(void) {
    setup();
    conf.top_k = 1;
    al_state_t *s = al_state_new();
    /* team a: b_1 on partition 0, b_2 on partition 1; team b: b_x on partition 2 */
    al_building_t *b1 = al_state_building(s, "b_1", 0, true);
    al_building_t *b2 = al_state_building(s, "b_2", 1, true);
    al_building_t *bx = al_state_building(s, "b_x", 2, true);
    for (int p = 0; p < 3; p++)
        s->part[p].present = true;
    /* b_1's candidate: 0.7 on day 0. b_2's: 0.55 on day 0, then (partition 1 running ahead)
     * 0.99 on day 1. Day 0's list ranks by the highest score up to day 0: b_1's first. */
    al_entry_t *x1 = cand(b1, "a1", (hvs_ms_t[]){10 * HOUR, 11 * HOUR}, (double[]){0.6, 0.7}, 2);
    al_entry_t *x2 = cand(b2, "a2", (hvs_ms_t[]){9 * HOUR, 23 * HOUR, DAY + 5 * HOUR},
                          (double[]){0.55, 0.5, 0.99}, 3);
    al_entry_t *xb = cand(bx, "a3", (hvs_ms_t[]){12 * HOUR}, (double[]){0.6}, 1);
    HVS_CHECK_NEAR(al_entry_score_until(x2, D0), 0.55, 1e-6);
    HVS_CHECK_NEAR(al_entry_score_until(x2, D0 + DAY), 0.99, 1e-6);
    HVS_CHECK(isnan(al_entry_score_until(x2, D0 - DAY)), "nothing before its first day");
    s->part[0].done = D0 + 22 * HOUR; /* partition 0 has not judged day 0's last hour */
    s->part[1].done = D0 + DAY + 5 * HOUR;
    s->part[2].done = D0 + 23 * HOUR;
    HVS_CHECK_EQ_INT(lists(s), 1); /* team b's only */
    HVS_CHECK(xb->e.disposition == HVS_ALERTBOOK_RAISED && xb->e.rank == 1 && xb->e.list_day == D0,
              "team b's list of day 0");
    HVS_CHECK(x1->e.disposition == HVS_ALERTBOOK_CANDIDATE &&
                  x2->e.disposition == HVS_ALERTBOOK_CANDIDATE,
              "team a waits for partition 0");
    HVS_CHECK_EQ_INT(b1->listed, 0);
    HVS_CHECK_EQ_INT(bx->listed, D0);
    /* partition 0 passes day 0: team a's list of day 0 */
    s->part[0].done = D0 + 23 * HOUR;
    HVS_CHECK_EQ_INT(lists(s), 2);
    HVS_CHECK(x1->e.disposition == HVS_ALERTBOOK_RAISED && x1->e.rank == 1 &&
                  x1->e.list_day == D0 && x1->e.status == HVS_ALERT_UNSEEN,
              "b_1's 0.7 first on day 0 (rank %d)", x1->e.rank);
    HVS_CHECK(x1->publish && x1->dirty, "to publish and save");
    HVS_CHECK(x2->e.disposition == HVS_ALERTBOOK_CANDIDATE,
              "b_2's 0.99 of day 1 does not count on day 0");
    HVS_CHECK_EQ_INT(b1->listed, D0);
    HVS_CHECK_EQ_INT(b2->listed, D0);
    HVS_CHECK_EQ_INT(st.raised, 2);
    /* again: nothing new (day 1 is not judged by partition 0) */
    HVS_CHECK_EQ_INT(lists(s), 2);
    /* day 1 judged everywhere: b_2's candidate (active on day 1) makes day 1's list */
    s->part[0].done = s->part[2].done = D0 + DAY + 23 * HOUR;
    s->part[1].done = D0 + DAY + 23 * HOUR;
    HVS_CHECK_EQ_INT(lists(s), 4); /* day 1 of team a and of team b */
    HVS_CHECK(x2->e.disposition == HVS_ALERTBOOK_RAISED && x2->e.rank == 1 &&
                  x2->e.list_day == D0 + DAY,
              "b_2's on day 1");
    HVS_CHECK_EQ_INT(x1->e.list_day, D0); /* raised once */
    /* partition 0 goes quiet (its meters stopped) while partition 1 judges on: within idle_ms
     * it holds team a's lists back, beyond it no longer */
    s->part[1].done = D0 + 3 * DAY + 23 * HOUR; /* days 2, 3 judged by partition 1 only */
    HVS_CHECK_EQ_INT(lists(s), 4);              /* 2 days behind: still waited for */
    s->part[1].done = D0 + 3 * DAY + 23 * HOUR + HOUR;
    caught_up = false; /* messages still wait somewhere: partition 0 may only be consumed later */
    HVS_CHECK_EQ_INT(lists(s), 4);
    caught_up = true;
    HVS_CHECK_EQ_INT(lists(s), 6); /* more than idle_ms behind: days 2 and 3 of team a listed */
    HVS_CHECK_EQ_INT(b1->listed, D0 + 3 * DAY);
    al_state_destroy(s);
}

/* The same two partitions judged in step: day 0's outcome is the same as with partition 1
 * ahead (the ranking does not depend on how far a partition ran). */
static void test_lists_in_step(void) {
    setup();
    conf.top_k = 1;
    al_state_t *s = al_state_new();
    al_building_t *b1 = al_state_building(s, "b_1", 0, true);
    al_building_t *b2 = al_state_building(s, "b_2", 1, true);
    s->part[0].present = s->part[1].present = true;
    al_entry_t *x1 = cand(b1, "a1", (hvs_ms_t[]){10 * HOUR, 11 * HOUR}, (double[]){0.6, 0.7}, 2);
    al_entry_t *x2 = cand(b2, "a2", (hvs_ms_t[]){9 * HOUR, 23 * HOUR}, (double[]){0.55, 0.5}, 2);
    s->part[0].done = s->part[1].done = D0 + 23 * HOUR;
    lists(s);
    HVS_CHECK(x1->e.rank == 1 && x2->e.disposition == HVS_ALERTBOOK_CANDIDATE, "in step");
    al_state_destroy(s);
}

/* A rebuild's lists count a partition only as far as its list cap (main.c: its replay). */
static void test_lists_cap(void) {
    setup();
    conf.top_k = 1;
    al_state_t *s = al_state_new();
    al_building_t *b1 = al_state_building(s, "b_1", 0, true);
    al_building_t *b2 = al_state_building(s, "b_2", 1, true);
    s->part[0].present = s->part[1].present = true;
    al_entry_t *x1 = cand(b1, "a1", (hvs_ms_t[]){10 * HOUR}, (double[]){0.7}, 1);
    cand(b2, "a2", (hvs_ms_t[]){9 * HOUR}, (double[]){0.6}, 1);
    s->part[0].done = s->part[1].done = D0 + DAY + 5 * HOUR; /* both past day 0 */
    s->part[1].list_cap = D0 + 20 * HOUR;                    /* ... but partition 1 capped */
    HVS_CHECK_EQ_INT(lists(s), 0);
    HVS_CHECK(x1->e.disposition == HVS_ALERTBOOK_CANDIDATE, "no list within the cap");
    s->part[1].list_cap = D0 + DAY + 2 * HOUR; /* a cap beyond day 0 does not hold it */
    HVS_CHECK_EQ_INT(lists(s), 1);
    HVS_CHECK(x1->e.rank == 1 && x1->e.list_day == D0, "day 0's list");
    al_state_destroy(s);
}

static void test_lists_rank(void) {
    setup();
    conf.top_k = 3;
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b_1", 0, true);
    s->part[0].present = true;
    /* scores / first seen: t1 0.8 @5, t2 0.8 @3 (earlier: before t1), t3 0.9 @8, t4 0.8 @3 (same
     * score and first_seen as t2: by id, "t2#..." < "t4#..."), t5 0.6 @1 */
    al_entry_t *t1 = cand(b, "t1", (hvs_ms_t[]){5 * HOUR}, (double[]){0.8}, 1);
    al_entry_t *t2 = cand(b, "t2", (hvs_ms_t[]){3 * HOUR}, (double[]){0.8}, 1);
    al_entry_t *t3 = cand(b, "t3", (hvs_ms_t[]){8 * HOUR}, (double[]){0.9}, 1);
    al_entry_t *t4 = cand(b, "t4", (hvs_ms_t[]){3 * HOUR}, (double[]){0.8}, 1);
    al_entry_t *t5 = cand(b, "t5", (hvs_ms_t[]){1 * HOUR}, (double[]){0.6}, 1);
    s->part[0].done = D0 + 23 * HOUR;
    lists(s);
    HVS_CHECK_EQ_INT(t3->e.rank, 1);
    HVS_CHECK_EQ_INT(t2->e.rank, 2);
    HVS_CHECK_EQ_INT(t4->e.rank, 3);
    HVS_CHECK(t1->e.disposition == HVS_ALERTBOOK_CANDIDATE && t1->e.rank == 0, "t1 4th");
    HVS_CHECK(t5->e.disposition == HVS_ALERTBOOK_CANDIDATE, "t5 5th");
    HVS_CHECK_EQ_INT(st.raised, 3);
    /* day 1: t1 and t5 carried (last hour within carry = 1 d of day 1's start) */
    s->part[0].done = D0 + DAY + 23 * HOUR;
    lists(s);
    HVS_CHECK(t1->e.disposition == HVS_ALERTBOOK_RAISED && t1->e.rank == 1 &&
                  t1->e.list_day == D0 + DAY,
              "t1 carried into day 1, first");
    HVS_CHECK(t5->e.rank == 2 && t5->e.list_day == D0 + DAY, "t5 second on day 1");
    HVS_CHECK_EQ_INT(t3->e.rank, 1); /* day 0's rank kept */
    HVS_CHECK_EQ_INT(t3->e.list_day, D0);
    HVS_CHECK_EQ_INT(st.raised, 5);
    al_state_destroy(s);
}

/* An alert of apartment apt (kind: its rules) that a technician resolved, labelled at `at`. */
static void verdict(al_building_t *b, const char *apt, int day, uint32_t rules, bool tp,
                    hvs_ms_t at) {
    al_entry_t *x = cand(b, apt, (hvs_ms_t[]){(hvs_ms_t)day * DAY + 2 * HOUR}, (double[]){0.8}, 1);
    x->e.rules = rules;
    x->e.disposition = HVS_ALERTBOOK_RAISED;
    x->e.list_day = D0 + day * DAY;
    x->e.status = tp ? HVS_ALERT_RESOLVED_TRUE_POSITIVE : HVS_ALERT_RESOLVED_FALSE_POSITIVE;
    x->e.feedback_at = at;
}

/* Day 10's list weighed by the verdicts (judge.h): weights computed by hand here. */
static void verdicts_case(bool on, al_entry_t *out[6], al_state_t **sp) {
    setup();
    conf.top_k = 4;
    conf.verdict_memory_ms = on ? 14 * DAY : 0;
    conf.verdict_prior = 0.3, conf.verdict_weight = 2, conf.verdict_kind_weight = 10;
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b_1", 0, true);
    s->part[0].present = true;
    hvs_ms_t end = D0 + 11 * DAY;
    verdict(b, "a1", 2, 0, false, D0 + 3 * DAY); /* a1: two false positives */
    verdict(b, "a1", 4, 0, false, D0 + 5 * DAY);
    verdict(b, "a2", 3, 0, true, D0 + 4 * DAY);    /* a2: a fault found */
    verdict(b, "a5", 0, 0, false, end - 15 * DAY); /* older than the memory: not counted */
    verdict(b, "a6", 9, 0, false, end + HOUR);     /* labelled after the list: not yet */
    /* day 10's candidates: residual alone (kind 0) but a4, a stuck valve */
    out[0] = cand(b, "a1", (hvs_ms_t[]){10 * DAY + 3 * HOUR}, (double[]){0.9}, 1);
    out[1] = cand(b, "a2", (hvs_ms_t[]){10 * DAY + 4 * HOUR}, (double[]){0.6}, 1);
    out[2] = cand(b, "a3", (hvs_ms_t[]){10 * DAY + 5 * HOUR}, (double[]){0.7}, 1);
    out[3] = cand(b, "a4", (hvs_ms_t[]){10 * DAY + 6 * HOUR}, (double[]){0.6}, 1);
    out[3]->e.rules = HVS_RULE_STUCK_VALVE;
    out[4] = cand(b, "a5", (hvs_ms_t[]){10 * DAY + 7 * HOUR}, (double[]){0.55}, 1);
    out[5] = cand(b, "a6", (hvs_ms_t[]){10 * DAY + 8 * HOUR}, (double[]){0.52}, 1);
    b->listed = D0 + 9 * DAY;
    s->part[0].done = D0 + 10 * DAY + 23 * HOUR;
    lists(s);
    *sp = s;
}

static void test_lists_verdicts(void) {
    al_entry_t *x[6];
    al_state_t *s;
    /* kind 0 in the team: 1 TP, 2 FP counted: q = (1 + 10 * 0.3) / (3 + 10) = 4/13.
     *   a1 (0 TP, 2 FP): (0 + 2q) / 4 = 0.1538, over 0.3: w 0.513, 0.9 -> 0.462 < open: waits
     *   a2 (1 TP): (1 + 2q) / 3 = 0.5385, w 1.795: 0.6 -> 1.077, first
     *   a3, a5, a6 (none counted): w = q / 0.3 = 1.026: 0.718, 0.564, 0.533
     *   a4 (stuck valve, a kind without verdicts): w 1: 0.6 */
    verdicts_case(true, x, &s);
    HVS_CHECK(x[0]->e.disposition == HVS_ALERTBOOK_CANDIDATE && x[0]->e.rank == 0,
              "a1, cleared twice, waits (rank %d)", x[0]->e.rank);
    HVS_CHECK_EQ_STR(x[0]->e.reason, "verdicts:0tp/2fp");
    HVS_CHECK_EQ_INT(x[1]->e.rank, 1);
    HVS_CHECK_EQ_INT(x[2]->e.rank, 2);
    HVS_CHECK_EQ_INT(x[3]->e.rank, 3);
    HVS_CHECK_EQ_INT(x[4]->e.rank, 4);
    HVS_CHECK(x[5]->e.disposition == HVS_ALERTBOOK_CANDIDATE && x[5]->e.reason[0] == '\0',
              "a6: its verdict comes after the list; fifth (reason '%s')", x[5]->e.reason);
    HVS_CHECK_EQ_INT(st.discounted, 1);
    /* the next day: a1's candidacy ended (last hour before day 11 - carry) -> expired, with why */
    s->part[0].done = D0 + 12 * DAY + 23 * HOUR;
    lists(s);
    HVS_CHECK(x[0]->e.disposition == HVS_ALERTBOOK_EXPIRED, "a1 expired");
    HVS_CHECK_EQ_STR(x[0]->e.reason, "verdicts:0tp/2fp");
    al_state_destroy(s);
    /* verdicts off (memory 0): the scores alone */
    verdicts_case(false, x, &s);
    HVS_CHECK_EQ_INT(x[0]->e.rank, 1);
    HVS_CHECK_EQ_INT(x[2]->e.rank, 2);
    HVS_CHECK_EQ_INT(x[1]->e.rank, 3); /* 0.6 at 4h before a4's 0.6 at 6h */
    HVS_CHECK_EQ_INT(x[3]->e.rank, 4);
    HVS_CHECK_EQ_INT(st.discounted, 0);
    al_state_destroy(s);
}

static void test_lists_expiry(void) {
    setup();
    conf.top_k = 1;
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b_1", 0, true);
    s->part[0].present = true;
    /* e1 0.9 on day 0 wins day 0; e2 0.8 last seen day 0 10:00; e3 0.7 last seen day 1 01:00 */
    al_entry_t *e1 = cand(b, "e1", (hvs_ms_t[]){2 * HOUR}, (double[]){0.9}, 1);
    al_entry_t *e2 = cand(b, "e2", (hvs_ms_t[]){3 * HOUR, 10 * HOUR}, (double[]){0.6, 0.8}, 2);
    al_entry_t *e3 = cand(b, "e3", (hvs_ms_t[]){4 * HOUR, DAY + HOUR}, (double[]){0.7, 0.7}, 2);
    /* e4: first seen on day 2: not in earlier lists */
    al_entry_t *e4 = cand(b, "e4", (hvs_ms_t[]){2 * DAY + HOUR}, (double[]){0.95}, 1);
    s->part[0].done = D0 + 23 * HOUR;
    lists(s);
    HVS_CHECK(e1->e.rank == 1, "e1 day 0");
    /* day 1: e2 (last hour day 0 10:00 >= day 1 - 1 d) still competes and wins (0.8 > 0.7) */
    s->part[0].done = D0 + DAY + 23 * HOUR;
    lists(s);
    HVS_CHECK(e2->e.rank == 1 && e2->e.list_day == D0 + DAY, "e2 day 1");
    HVS_CHECK(e3->e.disposition == HVS_ALERTBOOK_CANDIDATE, "e3 waits");
    HVS_CHECK(e4->e.disposition == HVS_ALERTBOOK_CANDIDATE, "e4 not yet seen on day 1");
    /* day 2: e3's last hour (day 1 01:00) >= day 2 - 1 d: competes with e4 (0.95) and loses */
    s->part[0].done = D0 + 2 * DAY + 23 * HOUR;
    lists(s);
    HVS_CHECK(e4->e.rank == 1 && e4->e.list_day == D0 + 2 * DAY, "e4 day 2");
    HVS_CHECK(e3->e.disposition == HVS_ALERTBOOK_CANDIDATE, "e3 still a candidate");
    /* day 3: e3's last hour < day 3 - 1 d: expired */
    s->part[0].done = D0 + 3 * DAY + 23 * HOUR;
    lists(s);
    HVS_CHECK(e3->e.disposition == HVS_ALERTBOOK_EXPIRED, "e3 expired");
    HVS_CHECK_EQ_STR(e3->e.reason, "not_in_top_1");
    HVS_CHECK(e3->dirty, "to save");
    HVS_CHECK_EQ_INT(st.expired, 1);
    HVS_CHECK_EQ_INT(st.lists, 4);
    al_state_destroy(s);
}

static void test_lists_critical(void) {
    setup();
    conf.top_k = 1;
    al_state_t *s = al_state_new();
    al_building_t *b1 = al_state_building(s, "b_1", 0, true);
    al_building_t *b2 = al_state_building(s, "b_2", 1, true);
    s->part[0].present = s->part[1].present = true;
    /* day 0 on b_2 (partition 1, judged through day 1): k1 opens at 06:00 (0.95, critical at
     * once: outside the budget); k2 opens at 20:00 (0.6) and turns critical on day 1 05:00,
     * after day 0's end: on day 0 it was a candidate (0.6), and takes day 0's rank before
     * b_1's c1 (0.55). */
    al_apartment_t *k1 = al_building_apartment(b2, "k1", true);
    al_apartment_t *k2 = al_building_apartment(b2, "k2", true);
    for (int hr = 0; hr < 30; hr++) {
        hvs_ms_t h = D0 + hr * HOUR;
        put(k1, h, hr >= 6 ? 0.95 : 0.1, hr >= 6 ? HVS_RULE_NO_HEAT_RESPONSE : 0, 0.95);
        put(k2, h, hr >= 20 ? (hr == 29 ? 0.97 : 0.6) : 0.1,
            hr == 29 ? HVS_RULE_NO_HEAT_RESPONSE : 0, hr == 29 ? 0.97 : NAN);
        judge(b2, h);
    }
    al_entry_t *c1 = cand(b1, "c1", (hvs_ms_t[]){12 * HOUR}, (double[]){0.55}, 1);
    al_entry_t *xk1 = entry(b2, "k1#2023-11-14#RULE_NO_RESPONSE");
    al_entry_t *xk2 = entry(b2, "k2#2023-11-14#ANOMALY");
    HVS_REQUIRE(xk1 && xk2, "k1 and k2");
    HVS_CHECK(xk1->e.disposition == HVS_ALERTBOOK_RAISED && xk1->raised_hour == D0 + 6 * HOUR,
              "k1 CRITICAL at 06:00");
    /* k2's type is ANOMALY (opened without rules), its critical rule came later */
    HVS_CHECK(xk2->e.disposition == HVS_ALERTBOOK_RAISED && xk2->raised_hour == D0 + 29 * HOUR,
              "k2 CRITICAL on day 1 05:00");
    HVS_CHECK_EQ_INT(st.critical, 2);
    s->part[0].done = D0 + 23 * HOUR;
    s->part[1].done = D0 + 29 * HOUR;
    memset(&st, 0, sizeof st);
    lists(s);
    HVS_CHECK(xk1->e.rank == 0 && xk1->e.list_day == 0, "k1 (raised on day 0) takes no rank");
    HVS_CHECK(xk2->e.rank == 1 && xk2->e.list_day == D0, "k2 rank 1 on day 0 (0.6 up to day 0)");
    HVS_CHECK(xk2->e.severity == HVS_SEVERITY_CRITICAL, "still CRITICAL");
    HVS_CHECK(c1->e.disposition == HVS_ALERTBOOK_CANDIDATE, "c1 second: top_k 1");
    HVS_CHECK_EQ_INT(st.raised, 0); /* k2 was raised already */
    al_state_destroy(s);

    /* the same by hand with c1 at 0.65: c1 wins day 0 (k2's 0.97 came on day 1) and k2 stays
     * unranked (its CRITICAL publication stands) */
    setup();
    conf.top_k = 1;
    s = al_state_new();
    b1 = al_state_building(s, "b_1", 0, true);
    b2 = al_state_building(s, "b_2", 1, true);
    s->part[0].present = s->part[1].present = true;
    c1 = cand(b1, "c1", (hvs_ms_t[]){12 * HOUR}, (double[]){0.65}, 1);
    al_entry_t *x = cand(b2, "k2", (hvs_ms_t[]){20 * HOUR}, (double[]){0.6}, 1);
    al_entry_note_hour(x, D0 + 29 * HOUR, 0.97);
    x->e.disposition = HVS_ALERTBOOK_RAISED;
    x->e.severity = HVS_SEVERITY_CRITICAL;
    x->raised_hour = D0 + 29 * HOUR;
    s->part[0].done = D0 + 23 * HOUR;
    s->part[1].done = D0 + 29 * HOUR;
    lists(s);
    HVS_CHECK(c1->e.rank == 1, "c1 0.65 > k2's 0.6 up to day 0");
    HVS_CHECK(x->e.rank == 0 && x->e.disposition == HVS_ALERTBOOK_RAISED, "k2 unranked");
    al_state_destroy(s);
}

/* ---- workflow ------------------------------------------------------------------------------- */

static hvs_feedback_t fb(hvs_feedback_label_t l, hvs_ms_t at, const char *cause) {
    return (hvs_feedback_t){.alert_id = "apt_1#2023-11-14#RULE_STUCK_VALVE",
                            .building_id = "b1",
                            .apartment_id = "apt_1",
                            .technician_id = "tech_7",
                            .label = l,
                            .root_cause = cause,
                            .comment = "checked",
                            .labelled_at = at};
}

static int apply(al_entry_t *x, al_apartment_t *a, hvs_feedback_t f, const char *want_reason) {
    hvs_err_t why = {0};
    int rc = al_workflow_apply(x, a, &f, "vacation,window_open", 7 * DAY, &why);
    if (want_reason) {
        HVS_CHECK(rc == HVS_EINVAL, "refused (rc %d), expected %s", rc, want_reason);
        HVS_CHECK_EQ_STR(why.reason, want_reason);
    }
    return rc;
}

static void test_workflow(void) {
    setup();
    al_state_t *s = al_state_new();
    al_building_t *b = al_state_building(s, "b1", 0, true);
    al_apartment_t *a = al_building_apartment(b, "apt_1", true);
    al_entry_t *x = al_building_entry(b, "apt_1#2023-11-14#RULE_STUCK_VALVE", true);
    strcpy(x->e.building, "b1");
    strcpy(x->e.apartment, "apt_1");
    x->e.type = HVS_ALERT_RULE_STUCK_VALVE;
    x->e.first_seen = D0 + 5 * HOUR;
    hvs_ms_t t = D0 + DAY;

    apply(NULL, a, fb(HVS_FEEDBACK_TRUE_POSITIVE, t, NULL), AL_R_UNKNOWN_ALERT);
    for (int d = 0; d < 4; d++) {
        if (d == HVS_ALERTBOOK_RAISED)
            continue;
        x->e.disposition = (hvs_alertbook_disposition_t)d;
        apply(x, a, fb(HVS_FEEDBACK_TRUE_POSITIVE, t, NULL), AL_R_NOT_RAISED);
    }
    HVS_CHECK(x->e.status == HVS_ALERT_UNSEEN && !x->e.feedback_at, "nothing changed");
    x->e.disposition = HVS_ALERTBOOK_RAISED;
    hvs_feedback_t other = fb(HVS_FEEDBACK_TRUE_POSITIVE, t, NULL);
    other.apartment_id = "apt_2";
    apply(x, a, other, AL_R_MISMATCH);

    /* UNSURE: UNSEEN -> INVESTIGATING; the technician's words kept */
    x->publish = x->dirty = false;
    HVS_CHECK_EQ_INT(apply(x, a, fb(HVS_FEEDBACK_UNSURE, t, "unknown"), NULL), 1);
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_INVESTIGATING);
    HVS_CHECK_EQ_INT(x->e.feedback_at, t);
    HVS_CHECK_EQ_STR(x->e.technician, "tech_7");
    HVS_CHECK_EQ_STR(x->e.root_cause, "unknown");
    HVS_CHECK_EQ_STR(x->e.comment, "checked");
    HVS_CHECK(x->publish && x->dirty, "to publish");
    /* the same again: nothing */
    x->publish = false;
    HVS_CHECK_EQ_INT(apply(x, a, fb(HVS_FEEDBACK_UNSURE, t, "unknown"), NULL), 0);
    HVS_CHECK(!x->publish, "a duplicate is not published again");
    /* no apartment named: accepted (a building's alert, or the producer left it out) */
    hvs_feedback_t noapt = fb(HVS_FEEDBACK_UNSURE, t + HOUR, NULL);
    noapt.apartment_id = NULL;
    HVS_CHECK_EQ_INT(apply(x, a, noapt, NULL), 1);
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_INVESTIGATING);
    HVS_CHECK_EQ_STR(x->e.root_cause, "");
    /* TRUE_POSITIVE -> RESOLVED_TRUE_POSITIVE */
    HVS_CHECK_EQ_INT(apply(x, a, fb(HVS_FEEDBACK_TRUE_POSITIVE, t + 2 * HOUR, "stuck_valve"), NULL),
                     1);
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_RESOLVED_TRUE_POSITIVE);
    HVS_CHECK_EQ_INT(apply(x, a, fb(HVS_FEEDBACK_TRUE_POSITIVE, t + 2 * HOUR, "stuck_valve"), NULL),
                     0);
    /* UNSURE does not reopen a verdict; older feedback is stale */
    apply(x, a, fb(HVS_FEEDBACK_UNSURE, t + 3 * HOUR, NULL), AL_R_INVALID_TRANSITION);
    apply(x, a, fb(HVS_FEEDBACK_FALSE_POSITIVE, t + HOUR, NULL), AL_R_STALE);
    apply(x, a, fb(HVS_FEEDBACK_UNSURE, t, "unknown"), AL_R_STALE); /* even the earlier one */
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_RESOLVED_TRUE_POSITIVE);
    HVS_CHECK_EQ_INT(x->e.feedback_at, t + 2 * HOUR);
    /* a non-benign FALSE_POSITIVE corrects it, without a suppression window */
    HVS_CHECK_EQ_INT(
        apply(x, a, fb(HVS_FEEDBACK_FALSE_POSITIVE, t + 4 * HOUR, "no_fault_found"), NULL), 1);
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_RESOLVED_FALSE_POSITIVE);
    HVS_CHECK(a->sup_until == 0 && a->sup_from == 0, "no window for no_fault_found");
    apply(x, a, fb(HVS_FEEDBACK_UNSURE, t + 5 * HOUR, NULL), AL_R_INVALID_TRANSITION);
    /* a benign FALSE_POSITIVE: the window from the alert's first hour to labelled_at + 7 d */
    a->dirty = false;
    HVS_CHECK_EQ_INT(
        apply(x, a, fb(HVS_FEEDBACK_FALSE_POSITIVE, t + 6 * HOUR, "window_open"), NULL), 1);
    HVS_CHECK_EQ_INT(a->sup_from, D0 + 5 * HOUR);
    HVS_CHECK_EQ_INT(a->sup_until, t + 6 * HOUR + 7 * DAY);
    HVS_CHECK_EQ_INT(a->sup_type, HVS_ALERT_RULE_STUCK_VALVE);
    HVS_CHECK_EQ_STR(a->sup_cause, "window_open");
    HVS_CHECK(a->dirty, "apartment to save");
    /* corrected to TRUE_POSITIVE: the benign verdict no longer stands, nor its window */
    HVS_CHECK_EQ_INT(apply(x, a, fb(HVS_FEEDBACK_TRUE_POSITIVE, t + 7 * HOUR, "stuck_valve"), NULL),
                     1);
    HVS_CHECK_EQ_INT(x->e.status, HVS_ALERT_RESOLVED_TRUE_POSITIVE);
    HVS_CHECK(a->sup_until <= t + 7 * HOUR, "window lifted by the correction (until %lld)",
              (long long)a->sup_until);
    /* a benign FALSE_POSITIVE without an apartment state: applied, no window anywhere */
    HVS_CHECK_EQ_INT(
        apply(x, NULL, fb(HVS_FEEDBACK_FALSE_POSITIVE, t + 8 * HOUR, "vacation"), NULL), 1);

    /* benign causes: exact members of the list */
    HVS_CHECK(al_workflow_benign("vacation,window_open", "vacation"), "first");
    HVS_CHECK(al_workflow_benign("vacation,window_open", "window_open"), "last");
    HVS_CHECK(!al_workflow_benign("vacation,window_open", "vacat"), "prefix");
    HVS_CHECK(!al_workflow_benign("vacation,window_open", "open"), "suffix");
    HVS_CHECK(!al_workflow_benign("vacation,window_open", "Vacation"), "case");
    HVS_CHECK(!al_workflow_benign("vacation,window_open", ""), "empty");
    HVS_CHECK(!al_workflow_benign("", "vacation"), "empty list");
    HVS_CHECK(!al_workflow_benign("vacation,window_open", "vacation,window_open"), "the list");

    /* long feedback text is cut at a character boundary: 47 x "ä" + "€" for the technician */
    char tech[128] = "", comment[1100] = "";
    for (int k = 0; k < 47; k++)
        strcat(tech, "\xC3\xA4");
    strcat(tech, "\xE2\x82\xAC");
    for (int k = 0; k < 340; k++)
        strcat(comment, "\xE2\x82\xAC"); /* 1020 bytes */
    hvs_feedback_t lf = fb(HVS_FEEDBACK_TRUE_POSITIVE, t + 9 * HOUR, NULL);
    lf.technician_id = tech;
    lf.comment = comment;
    HVS_CHECK_EQ_INT(apply(x, a, lf, NULL), 1);
    HVS_CHECK_EQ_INT(strlen(x->e.technician), 94);
    HVS_CHECK_EQ_INT(strlen(x->e.comment), 510); /* 170 whole € of 511 bytes */
    al_state_destroy(s);
}

/* ---- apartment text ------------------------------------------------------------------------- */

static bool feq(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static void test_apartment_text(void) {
    al_apartment_t a, back;
    memset(&a, 0, sizeof a);
    memset(&back, 0, sizeof back);
    a.open = true;
    a.open_type = HVS_ALERT_RULE_SENSOR_MISMATCH;
    a.open_first = D0 + 3 * HOUR;
    a.below = 2;
    a.sup_from = D0 - DAY;
    a.sup_until = D0 + 6 * DAY;
    a.sup_type = HVS_ALERT_RULE_STUCK_VALVE;
    a.water_from = D0 - 2 * DAY;
    strcpy(a.sup_cause, "window|open");
    al_hour_t h1 = {D0 + 5 * HOUR, 7, 0.123456789f, NAN, -2.5f, NAN, HVS_RULE_SENSOR_MISMATCH,
                    NULL};
    al_hour_t h2 = {D0 + 6 * HOUR, 0, 1.0f / 3, 0.9f, NAN, 0.0f, 0, NULL};
    HVS_REQUIRE(
        al_apartment_put_hour(&a, &h1, "iforest:3|room|kitchen 16.2 C; valve 100% | open") == 1 &&
            al_apartment_put_hour(&a, &h2,
                                  "|K\xC3\xBC"
                                  "che kalt") == 1,
        "hours");
    /* an older emission of an hour does not replace a newer one */
    al_hour_t old = h1;
    old.revision = 3, old.score = 0.9f;
    HVS_CHECK_EQ_INT(al_apartment_put_hour(&a, &old, NULL), 0);
    /* hours far apart (an input days ahead) all kept: the table grows */
    for (int k = 0; k < 200; k++) {
        al_hour_t f = {D0 + (100 + k) * HOUR, 1, 0.1f, NAN, NAN, NAN, 0, NULL};
        HVS_REQUIRE(al_apartment_put_hour(&a, &f, NULL) == 1, "far hour %d", k);
    }
    HVS_CHECK(a.hcap >= 256, "grown to %zu", a.hcap);
    HVS_CHECK(al_apartment_put_water(&a, D0, 1) == 0 &&
                  al_apartment_put_water(&a, D0 + HOUR, 0) == 0,
              "water");
    for (int k = 0; k < 300; k++) /* water far ahead too */
        HVS_REQUIRE(al_apartment_put_water(&a, D0 + (2 + k) * HOUR, (int8_t)(k % 2)) == 0, "water");
    HVS_CHECK_EQ_INT(al_apartment_water(&a, D0), 1);
    HVS_CHECK_EQ_INT(al_apartment_water(&a, D0 + HOUR), 0);
    HVS_CHECK_EQ_INT(al_apartment_water(&a, D0 + 301 * HOUR), 1);
    HVS_CHECK_EQ_INT(al_apartment_water(&a, D0 - HOUR), -1);
    /* water before water_from is not needed: dropped */
    HVS_CHECK(al_apartment_put_water(&a, D0 - 3 * DAY, 1) == 0 &&
                  al_apartment_water(&a, D0 - 3 * DAY) == -1,
              "old water dropped");
    char *buf = NULL;
    int n = -1;
    for (size_t cap = 1024; n < 0 && cap < (1u << 22); cap *= 2) {
        free(buf);
        buf = malloc(cap);
        n = al_apartment_format(&a, buf, cap);
    }
    HVS_REQUIRE(n > 0, "format");
    /* parse from an exact-size copy (no NUL after it) */
    char *copy = malloc((size_t)n);
    memcpy(copy, buf, (size_t)n);
    HVS_CHECK_EQ_INT(al_apartment_format(&a, buf, (size_t)n), -1); /* no room for the NUL */
    HVS_CHECK(al_apartment_parse(&back, copy, (size_t)n) == 0, "parses: %.200s", buf);
    HVS_CHECK(back.open && back.open_type == a.open_type && back.open_first == a.open_first &&
                  back.below == 2 && back.water_from == a.water_from,
              "episode");
    HVS_CHECK(back.sup_from == a.sup_from && back.sup_until == a.sup_until &&
                  back.sup_type == a.sup_type,
              "window");
    HVS_CHECK_EQ_STR(back.sup_cause, "window|open");
    int hours = 0;
    for (size_t i = 0; i < a.hcap; i++) {
        const al_hour_t *h = &a.hours[i];
        if (!h->hour)
            continue;
        hours++;
        const al_hour_t *g = al_apartment_hour(&back, h->hour);
        HVS_CHECK(g != NULL, "hour %lld back", (long long)h->hour);
        if (!g)
            continue;
        HVS_CHECK(h->revision == g->revision && feq(h->score, g->score) &&
                      feq(h->rule_score, g->rule_score) && feq(h->z, g->z) &&
                      feq(h->prob, g->prob) && h->rules == g->rules,
                  "hour %lld values", (long long)h->hour);
        HVS_CHECK_EQ_STR(hvs_test_str(g->reason), hvs_test_str(h->reason));
    }
    HVS_CHECK_EQ_INT(hours, 202);
    for (int k = 0; k < 302; k++)
        HVS_CHECK_EQ_INT(al_apartment_water(&back, D0 + k * HOUR),
                         al_apartment_water(&a, D0 + k * HOUR));
    HVS_CHECK_EQ_STR(al_apartment_hour(&back, D0 + 5 * HOUR)->reason,
                     "iforest:3|room|kitchen 16.2 C; valve 100% | open");
    /* judged hours leave */
    al_apartment_take_hour(&back, D0 + 5 * HOUR);
    HVS_CHECK(!al_apartment_hour(&back, D0 + 5 * HOUR), "taken");
    free(copy);
    free(buf);
    al_apartment_fini(&a);
    al_apartment_fini(&back);

    /* garbage refused */
    static const char *const bad[] = {
        "",
        "garbage",
        "p1|1|0|0|0|0|0|0|\n\n",
        "p2|1|0|0|0|0|0",
        "p2|x|0|0|0|0|0|0|0|\n",
        "p2|1|0|0|0|0|0|0|0|\n1,2,3;\n",
        "p2|1|0|0|0|0|0|0|0|\n1699920000000,0,0.5,nan,nan,nan,0\n",
        "p2|1|0|0|0|0|0|0|0|\n\n1699920000000,x;",
        "p2|1|0|0|0|0|0|0|0|\n\n\nno reason line",
        "p2|1|0|0|0|0|0|0|0|\n\n\n1699920000000|a reason of an hour not waiting",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        al_apartment_t g;
        memset(&g, 0, sizeof g);
        HVS_CHECK(al_apartment_parse(&g, bad[i], strlen(bad[i])) != 0, "refused: %s", bad[i]);
        al_apartment_fini(&g);
    }
    /* the minimal text: a closed apartment with nothing waiting */
    al_apartment_t z;
    memset(&z, 0, sizeof z);
    HVS_CHECK(al_apartment_parse(&z, "p2|0|0|0|0|0|0|0|0|", 19) == 0, "header only");
    al_apartment_fini(&z);
}

static const hvs_test_case_t cases[] = {
    {"hysteresis", test_hysteresis},
    {"thresholds", test_thresholds},
    {"type", test_type},
    {"building_wide", test_building_wide},
    {"vacancy", test_vacancy},
    {"feedback_window", test_feedback_window},
    {"critical", test_critical},
    {"lists_partitions", test_lists_partitions},
    {"lists_in_step", test_lists_in_step},
    {"lists_cap", test_lists_cap},
    {"lists_rank", test_lists_rank},
    {"lists_verdicts", test_lists_verdicts},
    {"lists_expiry", test_lists_expiry},
    {"lists_critical", test_lists_critical},
    {"workflow", test_workflow},
    {"apartment_text", test_apartment_text},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
