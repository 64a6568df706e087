/*
 * test_al_fault_it - the fault suite (issue 13) on hvs-alerter, through the harness
 * (tests/support/hvs_fault.h). The test writes its own seeded, messy input (deterministic given
 * AL_SEED): 3 buildings in 2 teams (topology with the Building `team`: north = al_b1 + al_b2,
 * south = al_b3) of 12 apartments each, 6 days of apartment-hour scores (scores.anomaly) and
 * hourly hot water per apartment (aggregates.hourly), with episodes of every kind:
 *   - random ANOMALY episodes (2-3 per building and day, 3-8 h, scores 0.55-0.90) so that the
 *     daily top-k (--top-k 3) per team bites, and fixed ones scoring higher (0.96, 0.97) that
 *     top their day's list;
 *   - a strong no_heat_response (rule_score 0.95): CRITICAL, raised at once, twice;
 *   - a building-wide event (all of al_b3 at once, twice): suppressed;
 *   - a vacant flat (al_b2's b2a12 draws no hot water): its ANOMALY suppressed, its stuck valve
 *     raised;
 *   - flapping scores (0.6 / 0.2 for 12 h, twice): one alert each;
 * and messy as the real stream: score revisions (the same apartment-hour re-sent with a higher
 * `revision` and another score, within HVS_ALERT_LAG; sometimes the highest first and a lower
 * one after it; a revision later than the lag is ignored in every run, judged or not), exact duplicates up to 3 h later on both topics, building-level aggregates
 * (skipped), unmetered hours (hot water null), and bad records among them (undecodable bytes,
 * a score out of range, a score hour off the hour, keys of another building): dead letters of
 * every run.
 *
 * Two phases (hvs_fault_stage_t.fill): every run reads its own copies of the inputs; the first
 * three days are written before the worker starts; once the run caught up on them, technicians'
 * feedback on alerts raised by then (a CRITICAL confirmed after an UNSURE, a benign
 * FALSE_POSITIVE "vacation" that must suppress the apartment's next ANOMALY three days later, a
 * non-benign one that does not suppress but weighs the apartment's next ANOMALY down in its
 * team's list (judge.h "verdicts"), a duplicate, and refused ones: invalid_transition,
 * unknown_alert, stale_feedback, alert_not_raised) is written with the last three days. Feedback
 * is causal - it answers what was published - so it cannot be part of a pre-produced stream.
 *
 * Three phases, in fact: the first three days, the feedback once the run caught up, then the
 * last three days. The alerter holds any topic's hours as long as the other lags (growing
 * tables, state.h), so a phase may run as far ahead of the other topic as the consumer fetches.
 *
 * The real process runs against a real redis-server and hvs-devbroker: once undisturbed (the
 * reference, --top-k 3), twice more undisturbed (once with small fetches), then once per fault.
 * Every run must end with the same latest Alert per alert_id - every field, rank, status,
 * score, evidence, updated_at included (all in event time) - and the same dead letters.
 *
 * Settings: --batch 50, session timeout 4 s, heartbeat 500 ms, stall timeout 10 s, fetch wait
 * 10 ms; pauses 10 s, the broker outage 15 s.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/feedback.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_fault.h"
#include "hvs_test.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */
#define HOURS 144
#define SPLIT 72 /* hours of the first phase */
#define NB 3
#define NA 12
#define AL_SEED 29ULL

static const char *const BLD[NB] = {"al_b1", "al_b2", "al_b3"};
static const char *const TEAM[NB] = {"north", "north", "south"};

/* ---- the stage ---------------------------------------------------------------------------- */

static bool al_key(const json_t *v, char *key, size_t len) {
    const char *id = json_string_value(json_object_get(v, "alert_id"));
    if (!id)
        return false;
    snprintf(key, len, "%s", id);
    return true;
}

static int64_t fill(hvs_fault_run_t *run, int phase);

static const hvs_fault_stage_t STAGE = {
    .name = "alerter",
    .exe = HVS_TEST_ALERTER,
    .args = "--batch 50 --stall-timeout 10s --top-k 3",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"scores.anomaly", "aggregates.hourly", "alerts.feedback"},
    .outputs = {"alerts"},
    .dead_letters = {"scores.anomaly.dlq", "aggregates.hourly.dlq", "alerts.feedback.dlq"},
    .key = al_key,
    .fill = fill,
    .phases = 3,
};

/* ---- the seeded input --------------------------------------------------------------------- */

/* A uniform [0, 1) from (seed, a, b, c, salt): independent of the generation order. */
static double u(int64_t a, int64_t b, int64_t c, int salt) {
    return hvs_test_draw(AL_SEED, salt, (const int64_t[]){a, b, c}, 3);
}

enum {
    S_BASE = 1,
    S_EPI_N,
    S_EPI_APT,
    S_EPI_FROM,
    S_EPI_LEN,
    S_EPI_SCORE,
    S_REV,
    S_REV_KIND,
    S_REV_SCORE,
    S_WATER,
    S_WATER_NULL,
    S_DUP,
    S_DUP_AT,
};

enum { T_SCORE, T_AGG, T_FB, NT };

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_score, *enc_agg, *enc_bld;
static hvs_feedback_writer_t *fbw;
static hvs_fault_recs_t recs[NT];
static struct { int rev, rev_lower_after, dups, building_level, unmetered; } made;

/* JSON -> Avro with its wire header (valid until the encoder's next use). */
static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
    return buf;
}

static const char *apt_id(int b, int a) {
    static char ids[NB][NA][32];
    if (!ids[b][a][0])
        snprintf(ids[b][a], sizeof ids[b][a], "b%da%02d", b + 1, a + 1);
    return ids[b][a];
}

/* The special flats (apartment index a of building b). */
#define CRIT1(b, a) ((b) == 0 && (a) == 1)   /* b1a02: no heat on day 0 */
#define CRIT2(b, a) ((b) == 1 && (a) == 2)   /* b2a03: no heat on day 4 */
#define VACANT(b, a) ((b) == 1 && (a) == 11) /* b2a12: no hot water at all */
#define FP_BENIGN(b, a) ((b) == 0 && (a) == 4)
#define FP_OTHER(b, a) ((b) == 2 && (a) == 3)
#define FLAP(b, a) (((b) == 0 && (a) == 10) || ((b) == 2 && (a) == 10))
#define SPECIAL(b, a)                                                                              \
    (CRIT1(b, a) || CRIT2(b, a) || VACANT(b, a) || FP_BENIGN(b, a) || FP_OTHER(b, a) || FLAP(b, a))
#define WIDE(b, i) ((b) == 2 && (((i) >= 30 && (i) <= 33) || ((i) >= 110 && (i) <= 112)))

/* An apartment-hour's score (revision 1), the rule that fired and its rule_score. */
static double score_of(int b, int a, int i, const char **rule, double *rule_score) {
    *rule = NULL, *rule_score = 0;
    if (WIDE(b, i))
        return 0.8;
    if (CRIT1(b, a) && i >= 20 && i <= 22) {
        *rule = "no_heat_response", *rule_score = 0.95;
        return 0.95;
    }
    if (CRIT2(b, a) && i >= 100 && i <= 102) {
        *rule = "no_heat_response", *rule_score = 0.95;
        return 0.95;
    }
    if (VACANT(b, a) && i >= 55 && i <= 58)
        return 0.9; /* nobody home: suppressed */
    if (VACANT(b, a) && i >= 66 && i <= 70) {
        *rule = "stuck_valve", *rule_score = 0.8;
        return 0.8; /* a rule holds while away */
    }
    if (FP_BENIGN(b, a) && ((i >= 8 && i <= 12) || (i >= 90 && i <= 94)))
        return 0.97;
    if (FP_OTHER(b, a) && ((i >= 10 && i <= 14) || (i >= 100 && i <= 104)))
        return 0.96;
    if (FLAP(b, a) && ((b == 2 && i >= 40 && i < 52) || (b == 0 && i >= 80 && i < 92)))
        return i % 2 ? 0.2 : 0.6;
    if (!SPECIAL(b, a)) { /* the random episodes of the building's day */
        int d = i / 24, n = 2 + (int)(2 * u(b, d, 0, S_EPI_N));
        for (int e = 0; e < n; e++) {
            int ea = (int)(NA * u(b, d, e, S_EPI_APT));
            int from = d * 24 + 2 + (int)(16 * u(b, d, e, S_EPI_FROM));
            int len = 3 + (int)(6 * u(b, d, e, S_EPI_LEN));
            if (ea == a && i >= from && i < from + len)
                return 0.55 + 0.35 * u(b, d, e, S_EPI_SCORE);
        }
    }
    return 0.05 + 0.1 * u(b * NA + a, i, 0, S_BASE);
}

static double water_of(int b, int a, int i) {
    if (VACANT(b, a))
        return 0.0;
    double x = u(b * NA + a, i, 0, S_WATER);
    return x < 0.3 ? 0.0 : 2.0 + 30 * x; /* a third of the hours nobody draws any */
}

static void add_score(int b, int a, int i, int rev, double score, const char *rule,
                      double rule_score, hvs_ms_t at) {
    char json[2048], rules[128] = "[]", rs[32] = "null";
    if (rule) {
        snprintf(rules, sizeof rules, "[\"%s\"]", rule);
        snprintf(rs, sizeof rs, "%g", rule_score);
    }
    long long hour = T0 + i * HOUR;
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%.6f,"
             "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
             "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[\"%s at %d r%d\"],"
             "\"revision\":%d,\"models\":[],\"rules\":%s,\"rule_score\":%s,\"residual_z\":null,"
             "\"scored_at\":%lld}",
             BLD[b], apt_id(b, a), hour, score, rule ? rule : "score", i, rev, rev, rules, rs,
             (long long)at);
    size_t len;
    const void *buf = encode_json(enc_score, json, &len);
    hvs_fault_recs_add(&recs[T_SCORE], at, BLD[b], buf, len);
}

/* An apartment's hot water (apt NULL: the building's own record, skipped). */
static void add_water(int b, const char *apt, int i, double litres, bool unmetered, hvs_ms_t at) {
    char json[1024], a[64], l[32];
    snprintf(a, sizeof a, apt ? "\"%s\"" : "null", apt);
    snprintf(l, sizeof l, unmetered ? "null" : "%.3f", litres);
    long long hour = T0 + i * HOUR;
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":3600000,\"hot_water_litres\":%s,"
             "\"emitted_at\":%lld}",
             BLD[b], a, hour, hour + HOUR, l, hour + HOUR);
    size_t len;
    const void *buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&recs[T_AGG], at, BLD[b], buf, len);
}

static void gen(void) {
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < HOURS; i++) {
            hvs_ms_t end = T0 + (i + 1) * HOUR;
            for (int a = 0; a < NA; a++) {
                int key = b * NA + a;
                /* hot water 3 minutes after the hour, its score 10 minutes after */
                bool unmetered = !VACANT(b, a) && u(key, i, 0, S_WATER_NULL) < 0.03;
                made.unmetered += unmetered;
                add_water(b, apt_id(b, a), i, water_of(b, a, i), unmetered, end + 3 * MIN);
                const char *rule;
                double rs, s = score_of(b, a, i, &rule, &rs);
                double r = u(key, i, 0, S_REV);
                if (r >= 0.05 || SPECIAL(b, a)) {
                    add_score(b, a, i, 1, s, rule, rs, end + 10 * MIN);
                    continue;
                }
                /* revised before the next-but-one hour's scores (within HVS_ALERT_LAG): the
                 * highest revision wins, whether it came first or last */
                double s2 = u(key, i, 0, S_REV_SCORE) < 0.3 ? 0.7 : s < 0.5 ? s + 0.1 : 0.1;
                made.rev++;
                if (u(key, i, 0, S_REV_KIND) < 0.33) {
                    add_score(b, a, i, 3, s2, rule, rs, end + 10 * MIN);
                    add_score(b, a, i, 2, s, rule, rs, end + HOUR + 30 * MIN);
                    made.rev_lower_after++;
                } else {
                    add_score(b, a, i, 1, s, rule, rs, end + 10 * MIN);
                    add_score(b, a, i, 2, s2, rule, rs, end + HOUR + 30 * MIN);
                }
            }
            if (i % 3 == 0) { /* the building's own aggregate: skipped */
                add_water(b, NULL, i, 40.0, false, end + 4 * MIN);
                made.building_level++;
            }
        }
    for (int t = 0; t < 2; t++) { /* exact duplicates, up to 3 h later */
        hvs_fault_recs_t *rs = &recs[t];
        size_t n = rs->n;
        for (size_t k = 0; k < n; k++)
            if (u((int64_t)k, t, 0, S_DUP) < 0.02) {
                hvs_fault_rec_t copy = rs->r[k];
                hvs_fault_recs_add(rs,
                                   copy.at + (hvs_ms_t)(3 * HOUR * u((int64_t)k, t, 0, S_DUP_AT)),
                                   copy.key, copy.buf, copy.len);
                made.dups++;
            }
    }
}

/* Bad records among the good ones (dead letters of every run). */
#define NATURAL_SCORE 4
#define NATURAL_AGG 2

static void gen_bad(void) {
    hvs_ms_t at = T0 + 20 * HOUR + 20 * MIN;
    hvs_fault_recs_add(&recs[T_SCORE], at, BLD[0], "\0\0\0\0\x0fgarbage", 12);
    char json[2048];
    size_t len;
    const void *buf;
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%s,"
             "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
             "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[],\"revision\":1,"
             "\"models\":[],\"rules\":[],\"rule_score\":null,\"residual_z\":null,"
             "\"scored_at\":%lld}",
             BLD[1], apt_id(1, 0), T0 + 40 * HOUR, "1.5", T0 + 41 * HOUR);
    buf = encode_json(enc_score, json, &len);
    hvs_fault_recs_add(&recs[T_SCORE], T0 + 41 * HOUR + 20 * MIN, BLD[1], buf,
                       len); /* out of range */
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%s,"
             "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
             "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[],\"revision\":1,"
             "\"models\":[],\"rules\":[],\"rule_score\":null,\"residual_z\":null,"
             "\"scored_at\":%lld}",
             BLD[2], apt_id(2, 0), T0 + 90 * HOUR + 60000, "0.1", T0 + 91 * HOUR);
    buf = encode_json(enc_score, json, &len);
    hvs_fault_recs_add(&recs[T_SCORE], T0 + 91 * HOUR + 20 * MIN, BLD[2], buf,
                       len); /* off the hour */
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%s,"
             "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
             "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[],\"revision\":1,"
             "\"models\":[],\"rules\":[],\"rule_score\":null,\"residual_z\":null,"
             "\"scored_at\":%lld}",
             BLD[0], apt_id(0, 5), T0 + 100 * HOUR, "0.1", T0 + 101 * HOUR);
    buf = encode_json(enc_score, json, &len);
    hvs_fault_recs_add(&recs[T_SCORE], T0 + 101 * HOUR + 20 * MIN, BLD[2], buf,
                       len); /* another key */

    hvs_fault_recs_add(&recs[T_AGG], T0 + 30 * HOUR + 20 * MIN, BLD[1], "\0\0\0\0\x0dgarbage", 12);
    snprintf(json, sizeof json,
             "{\"building_id\":\"%s\",\"apartment_id\":\"%s\",\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":3600000,\"hot_water_litres\":3,"
             "\"emitted_at\":%lld}",
             BLD[0], apt_id(0, 3), T0 + 80 * HOUR, T0 + 81 * HOUR, T0 + 81 * HOUR);
    buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&recs[T_AGG], T0 + 81 * HOUR + 20 * MIN, BLD[1], buf, len); /* another key */
}

/* ---- feedback (the second phase) ------------------------------------------------------------ */

/* Technicians' answers to what the first phase raised, labelled in event time at the end of the
 * first phase. The ids are the scenario's: the CRITICAL b1a02 is raised at once, b1a05 and b3a04
 * top their teams' day 0 lists (0.97 and 0.96 above every random episode). */
typedef struct fb {
    int b;
    const char *alert, *apt;
    hvs_feedback_label_t label;
    const char *cause;
    int at_h;           /* labelled_at = T0 + at_h hours */
    const char *reason; /* expected dead-letter reason, NULL: accepted */
} fb_t;

#define CRIT_ID "b1a02#2024-12-02#RULE_NO_RESPONSE"
#define BENIGN_ID "b1a05#2024-12-02#ANOMALY"
#define OTHER_ID "b3a04#2024-12-02#ANOMALY"
static const fb_t FB[] = {
    {0, CRIT_ID, "b1a02", HVS_FEEDBACK_UNSURE, NULL, 70, NULL},
    {0, CRIT_ID, "b1a02", HVS_FEEDBACK_TRUE_POSITIVE, "pump_failure", 71, NULL},
    {0, CRIT_ID, "b1a02", HVS_FEEDBACK_TRUE_POSITIVE, "pump_failure", 71, NULL}, /* again */
    {0, BENIGN_ID, "b1a05", HVS_FEEDBACK_FALSE_POSITIVE, "vacation", 70, NULL},
    {2, OTHER_ID, "b3a04", HVS_FEEDBACK_FALSE_POSITIVE, "no_fault_found", 71, NULL},
    {0, CRIT_ID, "b1a02", HVS_FEEDBACK_UNSURE, NULL, 72, "invalid_transition"},
    {0, "b1a99#2024-12-02#ANOMALY", "b1a99", HVS_FEEDBACK_TRUE_POSITIVE, NULL, 71, "unknown_alert"},
    {2, OTHER_ID, "b3a04", HVS_FEEDBACK_FALSE_POSITIVE, "no_fault_found", 69, "stale_feedback"},
    {1, "b2a12#2024-12-04#ANOMALY", "b2a12", HVS_FEEDBACK_TRUE_POSITIVE, NULL, 71,
     "alert_not_raised"},
};
#define NFB (sizeof FB / sizeof FB[0])
#define NFB_REFUSED 4

static void gen_feedback(void) {
    for (size_t k = 0; k < NFB; k++) {
        const fb_t *x = &FB[k];
        hvs_feedback_t f = {.alert_id = x->alert,
                            .building_id = BLD[x->b],
                            .apartment_id = x->apt,
                            .technician_id = x->b == 2 ? "tech-south" : "tech-north",
                            .label = x->label,
                            .root_cause = x->cause,
                            .labelled_at = T0 + x->at_h * HOUR};
        const void *buf;
        size_t len;
        hvs_err_t err = {0};
        HVS_REQUIRE(hvs_feedback_encode(fbw, &f, &buf, &len, &err) == 0, "feedback: %s", err.msg);
        hvs_fault_recs_add(&recs[T_FB], T0 + (SPLIT + 1) * HOUR, BLD[x->b], buf, len);
    }
}

/* ---- producing ---------------------------------------------------------------------------- */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_encoder_destroy(enc_score);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_bld);
    hvs_feedback_writer_destroy(fbw);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    for (int t = 0; t < NT; t++)
        hvs_fault_recs_free(&recs[t]);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

/* The phase of a record: 0 the first three days (published before the fourth day's first hour
 * ends), 1 the feedback, 2 the last three days. */
static bool in_phase(const hvs_fault_rec_t *r, int t, int phase) {
    if (t == T_FB)
        return phase == 1;
    return (r->at < T0 + (SPLIT + 1) * HOUR) ? phase == 0 : phase == 2;
}

static int64_t count_phase(int phase) {
    int64_t n = 0;
    for (int t = 0; t < NT; t++)
        for (size_t k = 0; k < recs[t].n; k++)
            n += in_phase(&recs[t].r[k], t, phase);
    return n;
}

/* Write a phase of the stream into the run's inputs; phase 0 returns what phase 1 will add. */
static int64_t fill(hvs_fault_run_t *run, int phase) {
    hvs_err_t err = {0};
    for (int t = 0; t < NT; t++) {
        for (size_t k = 0; k < recs[t].n; k++) {
            const hvs_fault_rec_t *r = &recs[t].r[k];
            if (in_phase(r, t, phase))
                HVS_REQUIRE(hvs_producer_send(prod, run->inputs[t], RD_KAFKA_PARTITION_UA, r->key,
                                              strlen(r->key), r->buf, r->len, &err) == 0,
                            "send to %s: %s", run->inputs[t], err.msg);
        }
        /* topic by topic: the order within each partition is the generated one */
        HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
    }
    return phase == 0 ? count_phase(1) + count_phase(2) : 0;
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char apts[2048] = "";
        size_t n = 0;
        for (int a = 0; a < NA; a++)
            n += (size_t)snprintf(apts + n, sizeof apts - n,
                                  "%s{\"apartment_id\":\"%s\",\"rooms\":[]}", a ? "," : "",
                                  apt_id(b, a));
        char json[4096];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"modern\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.4,\"longitude\":8.5,\"apartments\":[%s],\"updated_at\":%lld,"
                 "\"team\":\"%s\"}",
                 BLD[b], T0 - 400 * DAY, apts, T0, TEAM[b]);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, BLD[b],
                                      strlen(BLD[b]), buf, len, &err) == 0,
                    "topology: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void need_world(void) {
    if (have_world)
        return;
    hvs_fault_world_start(&world, &STAGE, NULL);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = world.broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_ANOMALY_SCORE, NULL, &enc_score, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, NULL, &enc_agg, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0 &&
                    hvs_feedback_writer_new(serde, &fbw, &err) == 0,
                "setup: %s", err.msg);
    gen();
    gen_bad();
    gen_feedback();
    for (int t = 0; t < NT; t++)
        hvs_fault_recs_sort(&recs[t]);
    printf("  input: %zu scores, %zu aggregates, %zu feedback (%d revised hours, %d with the "
           "lower revision last, %d duplicates, %d building-level, %d unmetered hours), bad "
           "records %d + %d; %lld messages in the first phase, %lld feedback, %lld in the last\n",
           recs[T_SCORE].n, recs[T_AGG].n, recs[T_FB].n, made.rev, made.rev_lower_after, made.dups,
           made.building_level, made.unmetered, NATURAL_SCORE, NATURAL_AGG,
           (long long)count_phase(0), (long long)count_phase(1), (long long)count_phase(2));
    publish_topology();
    have_world = true;
}

static void need_reference(void) {
    need_world();
    if (ref)
        return;
    ref = hvs_fault_run(&world, "ref", NULL);
    HVS_REQUIRE(ref->finished, "the reference run did not catch up");
}

/* ---- cases -------------------------------------------------------------------------------- */

static const char *field(const json_t *v, const char *f) {
    return hvs_test_str(json_string_value(json_object_get(v, f)));
}

static const char *evidence(const json_t *v, const char *f) {
    return field(json_object_get(v, "evidence"), f);
}

/* The reference is not vacuous: lists of three per team and day with ranks, CRITICAL alerts
 * outside them, the suppressions unpublished, the feedback applied, the dead letters. */
static void test_reference(void) {
    need_reference();
    int ranked[NB][7][4] = {{{0}}}, crit = 0, statuses[4] = {0};
    const char *k;
    json_t *v;
    json_object_foreach(ref->latest, k, v) {
        int b = -1;
        for (int i = 0; i < NB; i++)
            b = hvs_test_streq(field(v, "building_id"), BLD[i]) ? i : b;
        json_t *r = json_object_get(v, "rank");
        long long day = (json_integer_value(json_object_get(v, "first_seen")) - T0) / DAY;
        if (b >= 0 && json_is_integer(r) && json_integer_value(r) >= 1 &&
            json_integer_value(r) <= 3 && day >= 0 && day < 7)
            ranked[b][day][json_integer_value(r)]++;
        crit += hvs_test_streq(field(v, "severity"), "CRITICAL");
        static const char *const st[4] = {"UNSEEN", "INVESTIGATING", "RESOLVED_TRUE_POSITIVE",
                                          "RESOLVED_FALSE_POSITIVE"};
        for (int s = 0; s < 4; s++)
            statuses[s] += hvs_test_streq(field(v, "status"), st[s]);
    }
    int lists = 0;
    for (int d = 0; d < 6; d++)
        for (int r = 1; r <= 3; r++)
            lists += ranked[0][d][r] + ranked[1][d][r] > 0, lists += ranked[2][d][r] > 0;
    printf("  reference: %zu alerts (%zu records), %d CRITICAL, ranks filled %d of 36, statuses "
           "%d/%d/%d/%d, %zu dead letters\n",
           json_object_size(ref->latest), ref->nout, crit, lists, statuses[0], statuses[1],
           statuses[2], statuses[3], json_object_size(ref->dead));
    if (getenv("AL_FAULT_DUMP")) /* the reference's alerts, for a look */
        json_dump_file(ref->latest, getenv("AL_FAULT_DUMP"), JSON_INDENT(1) | JSON_SORT_KEYS);
    HVS_CHECK(crit == 2, "reference: %d CRITICAL alerts (want 2)", crit);
    HVS_CHECK(lists >= 18, "reference: only %d of the 36 daily ranks filled", lists);
    HVS_CHECK(json_object_size(ref->latest) > 30, "reference: %zu alerts",
              json_object_size(ref->latest));
    HVS_CHECK(ref->nout > json_object_size(ref->latest), "reference: no alert was updated");

    json_t *c = json_object_get(ref->latest, CRIT_ID);
    HVS_CHECK(c && hvs_test_streq(field(c, "status"), "RESOLVED_TRUE_POSITIVE") &&
                  hvs_test_streq(evidence(c, "root_cause"), "pump_failure") &&
                  !json_is_integer(json_object_get(c, "rank")),
              "reference: %s CRITICAL, unranked, confirmed", CRIT_ID);
    c = json_object_get(ref->latest, BENIGN_ID);
    HVS_CHECK(c && hvs_test_streq(field(c, "status"), "RESOLVED_FALSE_POSITIVE") &&
                  json_integer_value(json_object_get(c, "rank")) == 1,
              "reference: %s first of day 0, a benign false positive", BENIGN_ID);
    HVS_CHECK(!json_object_get(ref->latest, "b1a05#2024-12-05#ANOMALY"),
              "reference: b1a05's next ANOMALY suppressed by the vacation verdict");
    c = json_object_get(ref->latest, OTHER_ID);
    HVS_CHECK(c && hvs_test_streq(field(c, "status"), "RESOLVED_FALSE_POSITIVE") &&
                  json_integer_value(json_object_get(c, "rank")) == 1,
              "reference: %s first of south's day 0, a false positive", OTHER_ID);
    /* no_fault_found is not benign (no suppression), but the verdict weighs b3a04's next
     * ANOMALY (0.96) in its team's list: by 0.606 (judge.h "verdicts": q = 3/11 for the kind in
     * team south, (2 q) / 3 for the flat, over 0.3) to 0.58, behind the day's unvisited flats
     * (0.909 each: the kind's one false positive) - the list depends on the feedback, in every
     * run */
    HVS_CHECK(!json_object_get(ref->latest, "b3a04#2024-12-06#ANOMALY"),
              "reference: b3a04's next ANOMALY not raised: its flat's verdict puts it behind "
              "flats nobody has visited");
    HVS_CHECK(json_object_get(ref->latest, "b2a03#2024-12-06#RULE_NO_RESPONSE") != NULL,
              "reference: the second CRITICAL");
    HVS_CHECK(!json_object_get(ref->latest, "b2a12#2024-12-04#ANOMALY"),
              "reference: the vacant flat's ANOMALY suppressed");
    HVS_CHECK(json_object_get(ref->latest, "b2a12#2024-12-04#RULE_STUCK_VALVE") != NULL,
              "reference: the vacant flat's stuck valve raised");
    size_t wide = 0, flap = 0;
    json_object_foreach(ref->latest, k, v) {
        long long h = (json_integer_value(json_object_get(v, "first_seen")) - T0) / HOUR;
        wide += hvs_test_streq(field(v, "building_id"), "al_b3") &&
                ((h >= 30 && h <= 33) || (h >= 110 && h <= 112));
        flap += !strncmp(k, "b1a11#", 6) || !strncmp(k, "b3a11#", 6);
    }
    HVS_CHECK(wide == 0, "reference: %zu alerts of al_b3's building-wide hours", wide);
    HVS_CHECK(flap <= 2, "reference: the flapping flats made %zu alerts", flap);

    HVS_CHECK(hvs_fault_count_reason(ref->dead, "scores.anomaly", NULL) == NATURAL_SCORE,
              "reference: %zu score dead letters (want %d)",
              hvs_fault_count_reason(ref->dead, "scores.anomaly", NULL), NATURAL_SCORE);
    HVS_CHECK(hvs_fault_count_reason(ref->dead, "aggregates.hourly", NULL) == NATURAL_AGG,
              "reference: %zu aggregate dead letters (want %d)",
              hvs_fault_count_reason(ref->dead, "aggregates.hourly", NULL), NATURAL_AGG);
    for (size_t i = 0; i < NFB; i++)
        if (FB[i].reason)
            HVS_CHECK(hvs_fault_count_reason(ref->dead, "alerts.feedback", FB[i].reason) == 1,
                      "reference: feedback dead-lettered as %s", FB[i].reason);
    HVS_CHECK(hvs_fault_count_reason(ref->dead, "alerts.feedback", NULL) == NFB_REFUSED,
              "reference: %zu feedback dead letters (want %d)",
              hvs_fault_count_reason(ref->dead, "alerts.feedback", NULL), NFB_REFUSED);
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
}

/* The standard cases (hvs_fault.h), each a run compared with the reference. */
static void standard(hvs_fault_run_t *(*fn)(hvs_fault_world_t *, const hvs_fault_run_t *)) {
    need_reference();
    hvs_fault_run_free(fn(&world, ref));
}

static void kill9(uint64_t seed) {
    need_reference();
    hvs_fault_run_free(hvs_fault_case_kill9(&world, ref, seed));
}

static void test_undisturbed_again(void) { standard(hvs_fault_case_again); }
static void test_undisturbed_small_fetches(void) { standard(hvs_fault_case_small_fetches); }
static void test_kill9_seed_11(void) { kill9(11); }
static void test_kill9_seed_23(void) { kill9(23); }
static void test_kill9_seed_37(void) { kill9(37); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }
static void test_redis_pause(void) { standard(hvs_fault_case_redis_pause); }
static void test_worker_pause(void) { standard(hvs_fault_case_worker_pause); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }

static void test_broker_down_past_flush(void) {
    need_reference();
    hvs_fault_case_flush_timeout(&world, ref, "HVS_ALERT_FLUSH_TIMEOUT=3s");
}

/* A member joins and leaves: partition P of the three inputs moves together. */
static void test_second_member(void) {
    need_reference();
    hvs_fault_run_free(hvs_fault_case_second_member(&world, ref));
}

/* ---- the poison set ---------------------------------------------------------------------- */

#define NPOISON 48
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;

static void add(hvs_fault_producer_t *p, int input, const char *topic, const char *what,
                const char *reason, const char *key, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = input, .before = true};
    hvs_fault_produce(p, topic, key, strlen(key), value, len, &x->partition, &x->offset);
}

/* The decoder's poisons on one input (`good`: a record of that input, `other`: another type). */
static void poison_wire(hvs_fault_producer_t *p, int input, const char *topic, const void *good,
                        size_t glen, const void *other, size_t olen) {
    unsigned char buf[8192];
    HVS_REQUIRE(glen <= sizeof buf, "encoded size");
    uint64_t x = 42 + (uint64_t)input;
    for (size_t i = 0; i < 64; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    buf[0] = 0x7f; /* not the magic byte 0 */
    add(p, input, topic, "random bytes", "bad_magic", "al_b1", buf, 64);
    memcpy(buf, good, glen);
    buf[0] = 1;
    add(p, input, topic, "bad magic", "bad_magic", "al_b1", buf, glen);
    memcpy(buf, good, glen);
    buf[1] = 0, buf[2] = 0x0f, buf[3] = 0x42, buf[4] = 0x3f; /* id 999999 */
    add(p, input, topic, "unknown schema id", "unknown_schema_id", "al_b1", buf, glen);
    memcpy(buf, good, glen);
    add(p, input, topic, "truncated", "truncated", "al_b1", buf, glen - 3);
    add(p, input, topic, "header only", "truncated", "al_b1", buf, 5);
    add(p, input, topic, "another record type", "schema_mismatch", "al_b1", other, olen);
    add(p, input, topic, "null value", "empty_value", "al_b1", NULL, 0);
}

static unsigned char *copy_bytes(const void *b, size_t len) {
    unsigned char *c = malloc(len);
    HVS_REQUIRE(c, "oom");
    memcpy(c, b, len);
    return c;
}

static void poison_semantic(hvs_fault_producer_t *p, const char *topic) {
    static const struct {
        const char *what, *reason, *key, *apt;
        long long hour;
        const char *score;
    } bad[] = {
        {"score 1.5", "value_out_of_range", "al_b1", "b1a01", T0 + 50 * HOUR, "1.5"},
        {"score -0.1", "value_out_of_range", "al_b1", "b1a01", T0 + 50 * HOUR, "-0.1"},
        {"hour off the hour", "bad_window", "al_b1", "b1a01", T0 + 50 * HOUR + MIN, "0.1"},
        {"another building's key", "key_mismatch", "al_b2", "b1a01", T0 + 50 * HOUR, "0.1"},
        {"hour in 2100", "timestamp_in_future", "al_b1", "b1a01", 4102444800000LL, "0.1"},
        {"empty apartment id", "bad_id", "al_b1", "", T0 + 50 * HOUR, "0.1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[2048];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"al_b1\",\"apartment_id\":\"%s\",\"hour\":%lld,\"score\":%s,"
                 "\"probability\":null,\"expected\":null,\"observed\":null,\"strategy\":\"RULES\","
                 "\"model_name\":\"rules\",\"model_version\":0,\"reasons\":[],\"revision\":1,"
                 "\"models\":[],\"rules\":[],\"rule_score\":null,\"residual_z\":null,"
                 "\"scored_at\":%lld}",
                 bad[i].apt, bad[i].hour, bad[i].score, T0 + 51 * HOUR);
        size_t len;
        const void *b = encode_json(enc_score, json, &len);
        add(p, T_SCORE, topic, bad[i].what, bad[i].reason, bad[i].key, b, len);
    }
}

static void test_poison(void) {
    need_reference();
    const char *topics[NT] = {"poison.scores.anomaly", "poison.aggregates.hourly",
                              "poison.alerts.feedback"};
    for (int t = 0; t < NT; t++)
        hvs_fault_topic_create(&world, topics[t], 12);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    unsigned char *good[NT];
    size_t glen[NT];
    for (int t = 0; t < NT; t++) { /* a good record of each input: the first generated */
        good[t] = copy_bytes(recs[t].r[0].buf, recs[t].r[0].len);
        glen[t] = recs[t].r[0].len;
    }
    for (int t = 0; t < NT; t++)
        poison_wire(p, t, topics[t], good[t], glen[t], good[(t + 1) % NT], glen[(t + 1) % NT]);
    poison_semantic(p, topics[T_SCORE]);
    for (int t = 0; t < NT; t++)
        free(good[t]);
    hvs_fault_producer_free(p);

    hvs_fault_opts_t o = {.inputs = {topics[0], topics[1], topics[2]}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    /* every poison precedes the stream in its partition: the run writes its phases after */
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"undisturbed_again", test_undisturbed_again},
    {"undisturbed_small_fetches", test_undisturbed_small_fetches},
    {"kill9_three_times_seed_11", test_kill9_seed_11},
    {"kill9_three_times_seed_23", test_kill9_seed_23},
    {"kill9_three_times_seed_37", test_kill9_seed_37},
    {"redis_restart", test_redis_restart},
    {"redis_flush", test_redis_flush},
    {"rebuild_kill9", test_rebuild_kill9},
    {"redis_pause", test_redis_pause},
    {"worker_pause", test_worker_pause},
    {"broker_down", test_broker_down},
    {"broker_down_past_flush_timeout", test_broker_down_past_flush},
    {"second_member", test_second_member},
    {"poison", test_poison},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
