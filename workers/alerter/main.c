/*
 * hvs-alerter - scores.anomaly + aggregates.hourly + alerts.feedback (+ topology) -> alerts: the
 * short daily list a maintenance team works, with the workflow a technician moves it through
 * (docs/design.md section 9; seed 004: an anomaly score is not an alert).
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks:
 *   handle       a score waits in its apartment's ring of hours (the highest revision of an
 *                hour wins); an apartment aggregate records whether hot water was drawn in its
 *                hour (vacancy evidence); feedback moves a raised alert through its statuses
 *                at once (workflow.h; refused feedback -> alerts.feedback.dlq with the reason);
 *   end_batch    judges every hour that all inputs of its partition have passed by
 *                HVS_ALERT_LAG (judge.h: hysteresis, suppression, CRITICAL at once), makes the
 *                teams' daily lists whose day every partition of the team has judged, publishes
 *                each raised alert that changed (once per batch, keyed by building; the latest
 *                record of an alert_id is its state) and encodes the changed state into the
 *                runner's state batch, written to Redis once the broker acknowledged the alerts.
 * Judging in event-time order, after the inputs passed the hour, makes the alerts the same
 * whatever the interleaving of the inputs, batch boundaries or crashes. DATA_QUALITY and
 * MODEL_DRIFT alerts go to `alerts` from the workers that raise them; this stage does not touch
 * them. Lost state: the runner rebuilds a partition by replaying its inputs from
 * HVS_ALERT_REBUILD_WINDOW ago, quietly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/alert.h"
#include "hvs/alertbook.h"
#include "hvs/app.h"
#include "hvs/feedback.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "input.h"
#include "judge.h"
#include "state.h"
#include "workflow.h"

typedef struct settings {
    double open, close, critical_score, building_share, water_min;
    int64_t close_hours, top_k, vacancy_hours, vacancy_known, building_min;
    double verdict_prior, verdict_weight, verdict_kind_weight;
    int64_t verdict_memory_ms;
    int64_t carry_ms, keep_ms, fp_suppress_ms, lag_ms, max_future_ms, rebuild_ms, idle_ms,
        quiet_wait_ms;
    char *critical_rules, *benign_causes;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t al_entries[] = {
    {"HVS_ALERT_OPEN", HVS_CFG_DOUBLE, "0.5", 0, 1, S(open), 0,
     "an apartment-hour scoring this much opens an episode (an alert candidate)"},
    {"HVS_ALERT_CLOSE", HVS_CFG_DOUBLE, "0.3", 0, 1, S(close), 0,
     "an open episode ends after HVS_ALERT_CLOSE_HOURS hours in a row below this (hysteresis)"},
    {"HVS_ALERT_CLOSE_HOURS", HVS_CFG_INT, "6", 1, 168, S(close_hours), 0,
     "judged hours in a row below HVS_ALERT_CLOSE that end an episode"},
    {"HVS_ALERT_TOP_K", HVS_CFG_INT, "5", 1, 10000, S(top_k), 0,
     "alerts raised per team and day (event time): the budget of a team's daily list"},
    {"HVS_ALERT_CRITICAL_RULES", HVS_CFG_STRING, "no_heat_response", 0, 0, S(critical_rules), 0,
     "comma-separated rules whose strong evidence is CRITICAL: raised at once, outside the "
     "budget (residents without heat cannot wait for tomorrow's list)"},
    {"HVS_ALERT_CRITICAL_SCORE", HVS_CFG_DOUBLE, "0.9", 0, 1, S(critical_score), 0,
     "rule_score from which a critical rule's hour is CRITICAL"},
    {"HVS_ALERT_CARRY", HVS_CFG_DURATION, "1d", 0, 2592000000.0, S(carry_ms), 0,
     "a candidate that did not make its day's list stays eligible this long after its last hour"},
    {"HVS_ALERT_KEEP", HVS_CFG_DURATION, "14d", 86400000, 31536000000.0, S(keep_ms), 0,
     "alerts are kept (for feedback and hvsctl) this long after their episode's last hour"},
    {"HVS_ALERT_VACANCY_HOURS", HVS_CFG_INT, "48", 1, 720, S(vacancy_hours), 0,
     "hours without hot water drawn that mean nobody is home (ANOMALY alerts suppressed)"},
    {"HVS_ALERT_VACANCY_KNOWN", HVS_CFG_INT, "36", 1, 720, S(vacancy_known), 0,
     "of those hours, how many must have a known hot water value"},
    {"HVS_ALERT_WATER_MIN", HVS_CFG_DOUBLE, "1.0", 0, 1000, S(water_min), 0,
     "litres of hot water in an hour that mean someone drew it"},
    {"HVS_ALERT_BUILDING_SHARE", HVS_CFG_DOUBLE, "0.5", 0.01, 1, S(building_share), 0,
     "share of a building's scored apartments opening together that makes it building-wide "
     "(weather or the plant): their alerts are suppressed"},
    {"HVS_ALERT_BUILDING_MIN", HVS_CFG_INT, "3", 1, 100000, S(building_min), 0,
     "apartments that must open together for a building-wide event"},
    {"HVS_ALERT_FP_SUPPRESS", HVS_CFG_DURATION, "7d", 0, 31536000000.0, S(fp_suppress_ms), 0,
     "after a FALSE_POSITIVE with a benign cause, new alerts of that apartment and type are "
     "suppressed this long"},
    {"HVS_ALERT_VERDICT_MEMORY", HVS_CFG_DURATION, "14d", 0, 31536000000.0, S(verdict_memory_ms), 0,
     "technicians' verdicts on a team's alerts labelled this long before a daily list weigh its "
     "candidates: by the precision found behind their kind of evidence, then their flat (0: "
     "verdicts do not change lists; at most HVS_ALERT_KEEP, the verdicts the book still holds)"},
    {"HVS_ALERT_VERDICT_PRIOR", HVS_CFG_DOUBLE, "0.3", 0.001, 1, S(verdict_prior), 0,
     "the precision assumed of an apartment's alerts before any verdict (seed 004: ~30 % before "
     "labels); a candidate's score is weighed by its posterior precision over this and is not "
     "listed when that falls below HVS_ALERT_OPEN"},
    {"HVS_ALERT_VERDICT_WEIGHT", HVS_CFG_DOUBLE, "2", 0, 1000, S(verdict_weight), 0,
     "how many verdicts an apartment's prior counts as: higher, one false positive moves a "
     "flat less"},
    {"HVS_ALERT_VERDICT_KIND_WEIGHT", HVS_CFG_DOUBLE, "10", 0, 1000, S(verdict_kind_weight), 0,
     "how many verdicts the prior of a kind of evidence (the rules that fired; none: the "
     "residual alone) counts as in a team: its posterior precision is an apartment's prior"},
    {"HVS_ALERT_BENIGN_CAUSES", HVS_CFG_STRING,
     "vacation,resident_away,guest_stay,guests,manual_override,night_shift,move_in", 0, 0,
     S(benign_causes), 0, "comma-separated root causes that are benign patterns"},
    {"HVS_ALERT_LAG", HVS_CFG_DURATION, "2h", 3600000, 86400000, S(lag_ms), 0,
     "an hour is judged once both inputs of its partition passed it by this (whole hours); a "
     "score or hot water of an hour its topic passed by this is ignored (late)"},
    {"HVS_ALERT_IDLE", HVS_CFG_DURATION, "2d", 3600000, 31536000000.0, S(idle_ms), 0,
     "a partition that judged nothing this long (event time) behind the rest of its team's does "
     "not hold the team's daily lists back (its buildings' meters went quiet)"},
    {"HVS_ALERT_QUIET_WAIT", HVS_CFG_DURATION, "30s", 1000, 86400000, S(quiet_wait_ms), 0,
     "wall time nothing must have waited in any partition before HVS_ALERT_IDLE applies"},
    {"HVS_ALERT_MAX_FUTURE", HVS_CFG_DURATION, "1d", 0, 31536000000.0, S(max_future_ms), 0,
     "inputs stamped later than now plus this are refused (timestamp_in_future)"},
    {"HVS_ALERT_REBUILD_WINDOW", HVS_CFG_DURATION, "7d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_ALERT_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t al_section = {"alerter", al_entries,
                                             sizeof al_entries / sizeof al_entries[0], &settings};

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    const char *topic_score, *topic_agg, *topic_fb;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_score, *dec_agg, *dec_fb,
        *dec_held; /* for held feedback looked at while another one is read */
    al_input_t *input;
    hvs_alerter_t *alerter;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    hvs_topology_t *topo;
    al_state_t *st;
    al_conf_t conf;
    al_judge_stats_t js, js_seen;
    hvs_ms_t now;
    bool caught_up;        /* nothing has waited in any assigned partition for the quiet wait */
    hvs_ms_t caught_since; /* monotonic ms since when the polls found nothing waiting, 0 not */
    hvs_ms_t min_seen[HVS_MAX_PARTITIONS]; /* earliest score hour of a partition without `done` */
    al_score_t score;                      /* decode buffers */
    al_water_t water;
    hvs_metric_t *m_in[3], *m_published, *m_held, *m_late, *m_feedback[2], *m_opened, *m_sup[3],
        *m_critical, *m_raised, *m_expired, *m_lists, *m_discounted, *m_skipped;
} worker_t;

/* ---- inputs --------------------------------------------------------------------------------- */

static al_partition_t *partition(worker_t *w, int32_t p) {
    al_partition_t *pt = &w->st->part[p];
    pt->present = true;
    return pt;
}

/* An hour its own topic has passed by the lag (whole hours) is closed for that topic: a record
 * of it is ignored whether or not the hour was judged yet. Judging waits for both topics to pass
 * an hour by the lag, so what an hour is judged on does not depend on how far one topic ran
 * ahead of the other (a revision arriving late is ignored in every interleaving, not only when
 * the other topic happened to be ahead). */
static bool late(hvs_ms_t watermark, hvs_ms_t hour) {
    return hour + settings.lag_ms / HVS_MS_HOUR * HVS_MS_HOUR <= watermark;
}

static int on_score(worker_t *w, int32_t p, const al_score_t *s, hvs_err_t *err) {
    al_partition_t *pt = partition(w, p);
    hvs_ms_t hour = s->h.hour;
    if (hour > pt->swm)
        pt->swm = hour, pt->dirty = true;
    if (hvs_stage_replaying(w->stage) && hour > pt->swm_replay)
        pt->swm_replay = hour;
    if (late(pt->swm, hour) || (pt->done && hour <= pt->done)) {
        hvs_metric_inc(w->m_late);
        return 0;
    }
    if (!pt->done && (!w->min_seen[p] || hour < w->min_seen[p]))
        w->min_seen[p] = hour;
    al_building_t *b = al_state_building(w->st, s->building, p, true);
    al_apartment_t *a = b ? al_building_apartment(b, s->apartment, true) : NULL;
    if (!a)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "apartment %s/%s", s->building, s->apartment);
    /* an hour that may be an episode's best keeps its reasons for the alert */
    char reason[HVS_ALERTBOOK_NAME_MAX + AL_TEXT_MAX + 2];
    bool keep = s->h.score >= (float)settings.open && (s->model[0] || s->reasons[0]);
    if (keep)
        snprintf(reason, sizeof reason, "%s|%s", s->model, s->reasons);
    if (al_apartment_put_hour(a, &s->h, keep ? reason : NULL) < 0)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "hour of %s/%s", s->building, s->apartment);
    return 0;
}

static int on_water(worker_t *w, int32_t p, const al_water_t *x) {
    if (!x->apartment[0]) {
        hvs_metric_inc(w->m_skipped);
        return 0;
    }
    al_partition_t *pt = partition(w, p);
    if (x->hour > pt->awm)
        pt->awm = x->hour, pt->dirty = true;
    if (hvs_stage_replaying(w->stage) && x->hour > pt->awm_replay)
        pt->awm_replay = x->hour;
    if (late(pt->awm, x->hour))
        return 0; /* a revision of an hour its topic passed long ago */
    al_building_t *b = al_state_building(w->st, x->building, p, true);
    al_apartment_t *a = b ? al_building_apartment(b, x->apartment, true) : NULL;
    if (!a)
        return HVS_ENOMEM;
    return al_judge_water(a, x->hour, x->litres, settings.water_min);
}

/* What to do with feedback now: 1 apply (done), 0 hold (its alert may still be raised),
 * HVS_EINVAL refuse (why filled). Feedback on an alert whose earlier feedback is held waits
 * behind it, so a technician's verdicts apply in their order. */
static int judge_feedback(worker_t *w, al_building_t *b, const hvs_feedback_t *f, size_t held_at,
                          hvs_err_t *why) {
    for (size_t i = 0; i < held_at && i < b->nheld; i++) {
        const al_held_t *h = &b->held[i];
        hvs_feedback_t g;
        avro_value_t *v;
        hvs_err_t bad = {0};
        if (!h->gone && hvs_decoder_decode(w->dec_held, h->value, h->len, &v, &bad) == 0 &&
            hvs_feedback_read(v, &g, &bad) == 0 && strcmp(g.alert_id, f->alert_id) == 0)
            return 0;
    }
    al_entry_t *x = al_building_entry(b, f->alert_id, false);
    if (x && x->e.disposition == HVS_ALERTBOOK_CANDIDATE)
        return 0; /* it may still make a list */
    if (!x) {
        hvs_ms_t day = hvs_alertbook_id_day(f->alert_id);
        const al_partition_t *pt = &w->st->part[b->partition];
        if (day != HVS_MS_NONE && day > w->now + settings.max_future_ms)
            return hvs_err_set(why, HVS_EINVAL, AL_R_UNKNOWN_ALERT,
                               "feedback for alert %s, whose day is in the future", f->alert_id);
        if (day != HVS_MS_NONE && (!pt->done || pt->done < day + HVS_MS_DAY - HVS_MS_HOUR))
            return 0; /* its day is not judged yet */
    }
    al_apartment_t *a = x ? al_building_apartment(b, x->e.apartment, false) : NULL;
    int rc = al_workflow_apply(x, a, f, settings.benign_causes, settings.fp_suppress_ms, why);
    if (rc >= 0) {
        hvs_metric_inc(w->m_feedback[rc]);
        return 1;
    }
    return rc;
}

static int on_feedback(worker_t *w, const rd_kafka_message_t *m, const hvs_feedback_t *f,
                       hvs_err_t *why) {
    al_building_t *b = al_state_building(w->st, f->building_id, m->partition, true);
    if (!b)
        return hvs_err_set(why, HVS_ENOMEM, "oom", "building %s", f->building_id);
    partition(w, m->partition);
    int rc = judge_feedback(w, b, f, b->nheld, why);
    al_entry_t *x = rc == 1 ? al_building_entry(b, f->alert_id, false) : NULL;
    if (x && !hvs_stage_replaying(w->stage))
        x->publish_new = true; /* new feedback: published even while the partition rebuilds */
    if (rc == 0 && al_building_hold(b, m->offset, m->payload, m->len))
        return hvs_err_set(why, HVS_ENOMEM, "oom", "held feedback");
    if (rc == 0)
        hvs_metric_inc(w->m_held);
    return rc < 0 ? rc : 0;
}

/* Held feedback whose alert was raised (or can no longer be) since: applied or dead-lettered,
 * in order. */
static int release_held(worker_t *w, hvs_err_t *err) {
    const char *topic = w->topic_fb;
    for (size_t i = 0; i < w->st->n; i++) {
        al_building_t *b = w->st->b[i];
        bool quiet = hvs_stage_rebuilding(w->stage, b->partition);
        for (size_t k = 0; k < b->nheld; k++) {
            al_held_t *h = &b->held[k];
            if (h->gone)
                continue;
            hvs_feedback_t f;
            avro_value_t *v;
            hvs_err_t why = {0};
            int rc = hvs_decoder_decode(w->dec_fb, h->value, h->len, &v, &why) == 0 &&
                             hvs_feedback_read(v, &f, &why) == 0
                         ? judge_feedback(w, b, &f, k, &why)
                         : HVS_EINVAL;
            if (rc == 0)
                continue;
            if (rc == HVS_EINVAL && !quiet &&
                hvs_stage_dead_letter_bytes(w->stage, topic, b->partition, h->offset, b->id,
                                            strlen(b->id), h->value, h->len, &why, err))
                return HVS_EKAFKA;
            if (rc < 0 && rc != HVS_EINVAL)
                return hvs_err_set(err, rc, why.reason, "%s", why.msg);
            al_building_release(b, k);
        }
    }
    return 0;
}

/* ---- judging and publishing ----------------------------------------------------------------- */

static const char *team_of(void *opaque, const char *building) {
    worker_t *w = opaque;
    const hvs_building_t *b = hvs_topology_find(w->topo, building);
    return b && b->team ? b->team : "";
}

/* The partitions holding the team's buildings in the topology (a building keeps its partition
 * number on every co-partitioned topic). Without them a team's list was made as soon as the
 * partitions of the buildings seen so far passed the day, before a building on a partition
 * consumed later added its candidates (which then expired unlisted: found by the fault suite). */
static void team_partitions(void *opaque, const char *team, bool parts[HVS_MAX_PARTITIONS]) {
    worker_t *w = opaque;
    size_t n;
    const hvs_building_t *bs = hvs_topology_buildings(w->topo, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(bs[i].team ? bs[i].team : "", team) == 0 && bs[i].partition >= 0 &&
            bs[i].partition < HVS_MAX_PARTITIONS)
            parts[bs[i].partition] = true;
}

/* Judge partition p's hours up to `until` (inclusive). */
static int judge_until(worker_t *w, int32_t p, hvs_ms_t until, hvs_err_t *err) {
    return al_judge_until(w->st, &w->conf, p, until, w->min_seen[p], team_of, w, &w->js, err);
}

static int publish(worker_t *w, al_entry_t *x, hvs_err_t *err) {
    hvs_alert_t a;
    const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1];
    char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX], summary[1024];
    hvs_alertbook_to_alert(&x->e, &a, ev, evtext, summary, sizeof summary);
    int rc = hvs_alerter_send(w->alerter, &a, err);
    if (rc == 0)
        hvs_metric_inc(w->m_published);
    return rc;
}

static void count(worker_t *w) {
    al_judge_stats_t *n = &w->js, *o = &w->js_seen;
    hvs_metric_add(w->m_opened, (double)(n->opened - o->opened));
    for (int i = 0; i < 3; i++)
        hvs_metric_add(w->m_sup[i], (double)(n->suppressed[i] - o->suppressed[i]));
    hvs_metric_add(w->m_critical, (double)(n->critical - o->critical));
    hvs_metric_add(w->m_raised, (double)(n->raised - o->raised));
    hvs_metric_add(w->m_expired, (double)(n->expired - o->expired));
    hvs_metric_add(w->m_lists, (double)(n->lists - o->lists));
    hvs_metric_add(w->m_discounted, (double)(n->discounted - o->discounted));
    *o = *n;
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int begin_batch(void *opaque, hvs_err_t *err) {
    (void)err;
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    hvs_topology_poll(w->topo, 0);
    return 0;
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    const char *topic = rd_kafka_topic_name(m->rkt);
    int kind = strcmp(topic, w->topic_score) == 0 ? 0 : strcmp(topic, w->topic_agg) == 0 ? 1 : 2;
    hvs_metric_inc(w->m_in[kind]);
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    avro_value_t *v;
    hvs_decoder_t *dec = kind == 0 ? w->dec_score : kind == 1 ? w->dec_agg : w->dec_fb;
    if (hvs_decoder_decode(dec, m->payload, m->len, &v, why))
        return HVS_EINVAL;
    int rc;
    if (kind == 0) {
        if (al_input_score(w->input, v, w->now, settings.max_future_ms, &w->score, why) ||
            hvs_id_check_key(m, w->score.building, why))
            return HVS_EINVAL;
        rc = on_score(w, m->partition, &w->score, why);
    } else if (kind == 1) {
        if (al_input_water(w->input, v, w->now, settings.max_future_ms, &w->water, why) ||
            hvs_id_check_key(m, w->water.building, why))
            return HVS_EINVAL;
        rc = on_water(w, m->partition, &w->water);
    } else {
        hvs_feedback_t f;
        if (hvs_feedback_read(v, &f, why) || hvs_id_check(f.building_id, "building_id", why) ||
            hvs_id_check_key(m, f.building_id, why))
            return HVS_EINVAL;
        return on_feedback(w, m, &f, why); /* refusals are the input's fault */
    }
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* past validation nothing is the input's fault */
}

/* Judge the partitions' hours up to where `watermarks` say every input is (both scores and hot
 * water: an hour is judged once both are in), then the lists and the held feedback. */
static int judge_all(worker_t *w, bool replayed_only, hvs_err_t *err) {
    size_t np;
    const int32_t *ps = hvs_stage_partitions(w->stage, &np);
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        int32_t p = ps[i];
        al_partition_t *pt = &w->st->part[p];
        hvs_ms_t swm = replayed_only ? pt->swm_replay : pt->swm,
                 awm = replayed_only ? pt->awm_replay : pt->awm;
        if (pt->present && swm && awm) {
            hvs_ms_t ready = awm < swm ? awm : swm;
            rc = judge_until(w, p, ready - settings.lag_ms / HVS_MS_HOUR * HVS_MS_HOUR, err);
        }
    }
    /* Lists for replayed inputs only are the lists the run before the loss made: a teammate
     * partition whose replay ended first and ran on must not count its new hours, or a list
     * the earlier run never made would be made here and not published (found by the fault
     * suite's Redis flush). */
    for (size_t i = 0; i < np && replayed_only; i++) {
        al_partition_t *pt = &w->st->part[ps[i]];
        hvs_ms_t reach = pt->awm_replay < pt->swm_replay ? pt->awm_replay : pt->swm_replay;
        if (reach) /* what the earlier run had judged: both inputs' replay reach less the lag */
            pt->list_cap = reach - settings.lag_ms / HVS_MS_HOUR * HVS_MS_HOUR;
        else if (pt->swm_replay || pt->awm_replay || hvs_stage_rebuilding(w->stage, ps[i]))
            pt->list_cap = 1; /* it had judged nothing: no list of its team yet */
    }
    if (rc == 0)
        rc = al_judge_lists(w->st, &w->conf, team_of, team_partitions, w, w->caught_up, &w->js,
                            err);
    for (size_t i = 0; i < np; i++)
        w->st->part[ps[i]].list_cap = 0;
    if (rc == 0)
        rc = release_held(w, err);
    return rc;
}

/* A partition being rebuilt is judged first as far as its replayed inputs reach: the original
 * run got there and published what that changed, so those changes are not published again;
 * then as far as the rest of the batch reaches, published as usual. Feedback applied from new
 * (not replayed) records in the batch keeps its mark. */
static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    int rc = 0;
    bool rebuilding = false;
    size_t np;
    const int32_t *ps = hvs_stage_partitions(w->stage, &np);
    for (size_t i = 0; i < np; i++)
        rebuilding |= hvs_stage_rebuilding(w->stage, ps[i]);
    if (rebuilding) {
        rc = judge_all(w, true, err);
        for (size_t i = 0; i < w->st->n; i++) {
            al_building_t *b = w->st->b[i];
            if (!hvs_stage_rebuilding(w->stage, b->partition))
                continue;
            for (size_t k = 0; k < b->nentries; k++)
                b->entries[k]->publish = b->entries[k]->publish_new;
        }
    }
    if (!rebuilding) /* every rebuild ended: a later loss replays from what is judged then */
        for (int p = 0; p < HVS_MAX_PARTITIONS; p++)
            w->st->part[p].swm_replay = w->st->part[p].awm_replay = 0;
    if (rc == 0)
        rc = judge_all(w, false, err);
    for (size_t i = 0; i < w->st->n && rc == 0; i++) {
        al_building_t *b = w->st->b[i];
        for (size_t k = 0; k < b->nentries && rc == 0; k++) {
            al_entry_t *x = b->entries[k];
            if (x->publish && !x->gone)
                rc = publish(w, x, err);
            x->publish = x->publish_new = false;
        }
    }
    count(w);
    if (rc == 0)
        rc = al_state_save(w->st, hvs_stage_state_batch(w->stage), err);
    return rc;
}

/* Caught up: nothing waited in any assigned partition at every poll for HVS_ALERT_QUIET_WAIT of
 * wall time (one idle poll is not enough: right after an assignment the consumer may not know
 * the partitions' ends yet and report no lag). Only then may a quiet partition stop holding its
 * team's lists back. */
static int after_batch(void *opaque, const hvs_stage_batch_t *b, hvs_err_t *err) {
    (void)err;
    worker_t *w = opaque;
    hvs_ms_t now = hvs_time_mono_ms();
    if (!b->caught_up)
        w->caught_since = 0;
    else if (!w->caught_since)
        w->caught_since = now;
    w->caught_up = w->caught_since && now - w->caught_since >= settings.quiet_wait_ms;
    return 0;
}

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    size_t n = 0;
    w->min_seen[p] = 0;
    w->caught_up = false, w->caught_since = 0; /* a new assignment: not known to be caught up */
    /* without its epoch, what Redis holds of p is a rebuild that did not finish (killed part
     * way): loaded, its judged hours and lists would stand in for what the replay makes again */
    bool rebuilding = hvs_stage_rebuilding(w->stage, p);
    if (rebuilding)
        al_state_drop_partition(w->st, p); /* a stale copy from an earlier assignment */
    int rc = rebuilding ? 0 : al_state_load_partition(w->st, w->redis, w->rb, p, &n, err);
    /* a partition saved before it judged anything: its first hour is among the waiting ones */
    for (size_t i = 0; rc == 0 && !w->st->part[p].done && i < w->st->n; i++) {
        const al_building_t *b = w->st->b[i];
        for (size_t k = 0; b->partition == p && k < b->napts; k++)
            for (size_t j = 0; j < b->apts[k]->hcap; j++) {
                hvs_ms_t h = b->apts[k]->hours[j].hour;
                if (h && (!w->min_seen[p] || h < w->min_seen[p]))
                    w->min_seen[p] = h;
            }
    }
    if (rc == 0)
        hvs_log_info("alerter", "partition %d assigned: %s%zu buildings loaded", (int)p,
                     rebuilding ? "rebuilding, starting empty, " : "", n);
    return rc;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    al_state_drop_partition(w->st, p); /* its state was written before the last commit */
    hvs_log_info("alerter", "partition %d revoked", (int)p);
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    if (!hvs_topology_caught_up(w->topo)) {
        snprintf(why, whylen, "topology not read yet");
        return 0;
    }
    return 1;
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    const al_judge_stats_t *s = &w->js;
    hvs_log_info("alerter",
                 "stopping: opened=%llu suppressed=%llu/%llu/%llu critical=%llu raised=%llu "
                 "expired=%llu lists=%llu sent=%llu",
                 (unsigned long long)s->opened, (unsigned long long)s->suppressed[0],
                 (unsigned long long)s->suppressed[1], (unsigned long long)s->suppressed[2],
                 (unsigned long long)s->critical, (unsigned long long)s->raised,
                 (unsigned long long)s->expired, (unsigned long long)s->lists,
                 (unsigned long long)hvs_alerter_sent(w->alerter));
}

static const hvs_stage_def_t al_stage = {
    .name = "alerter",
    .begin_batch = begin_batch,
    .handle = handle,
    .end_batch = end_batch,
    .after_batch = after_batch,
    .assigned = assigned,
    .revoked = revoked,
    .ready = ready,
    .stopping = stopping,
};

/* ---- start-up ------------------------------------------------------------------------------- */

static int apply_settings(worker_t *w, hvs_err_t *err) {
    uint32_t crit = 0;
    for (const char *p = settings.critical_rules; p && *p;) {
        const char *c = strchr(p, ',');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(c ? c - p : (long)strlen(p)), p);
        uint32_t bit = hvs_alertbook_rule_bit(name);
        if (!bit)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                               "HVS_ALERT_CRITICAL_RULES: %s is not a rule of the scorer", name);
        crit |= bit;
        p = c ? c + 1 : NULL;
    }
    if (settings.verdict_memory_ms > settings.keep_ms)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_ALERT_VERDICT_MEMORY must not exceed HVS_ALERT_KEEP (the book "
                           "forgets older verdicts)");
    if (!(settings.close <= settings.open))
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_ALERT_CLOSE must not exceed HVS_ALERT_OPEN");
    w->conf = (al_conf_t){.open = settings.open,
                          .close = settings.close,
                          .close_hours = (int)settings.close_hours,
                          .critical_score = settings.critical_score,
                          .critical_rules = crit,
                          .top_k = (int)settings.top_k,
                          .carry_ms = settings.carry_ms,
                          .keep_ms = settings.keep_ms,
                          .fp_suppress_ms = settings.fp_suppress_ms,
                          .idle_ms = settings.idle_ms,
                          .vacancy_hours = (int)settings.vacancy_hours,
                          .vacancy_known = (int)settings.vacancy_known,
                          .water_min_l = settings.water_min,
                          .building_share = settings.building_share,
                          .building_min = (int)settings.building_min,
                          .verdict_memory_ms = settings.verdict_memory_ms,
                          .verdict_prior = settings.verdict_prior,
                          .verdict_weight = settings.verdict_weight,
                          .verdict_kind_weight = settings.verdict_kind_weight};
    return 0;
}

static hvs_metric_t *counter(hvs_metrics_t *ms, const char *name, const char *help,
                             const char *label) {
    return hvs_metrics_counter(ms, name, help, label);
}

static void metrics(worker_t *w, hvs_metrics_t *ms) {
    static const char *const in[3] = {"topic=\"scores\"", "topic=\"aggregates\"",
                                      "topic=\"feedback\""};
    for (int i = 0; i < 3; i++)
        w->m_in[i] = counter(ms, "hvs_alerter_inputs_total", "messages consumed", in[i]);
    w->m_published = counter(ms, "hvs_alerter_published_total",
                             "alert records published (new and updated)", NULL);
    w->m_late = counter(ms, "hvs_alerter_late_scores_total",
                        "scores of hours judged already (ignored)", NULL);
    w->m_skipped = counter(ms, "hvs_alerter_skipped_total",
                           "aggregates not of an apartment-hour (ignored)", NULL);
    w->m_feedback[0] = counter(ms, "hvs_alerter_feedback_total", "feedback records accepted",
                               "outcome=\"duplicate\"");
    w->m_feedback[1] = counter(ms, "hvs_alerter_feedback_total", "feedback records accepted",
                               "outcome=\"applied\"");
    w->m_held = counter(ms, "hvs_alerter_feedback_held_total",
                        "feedback held until its alert is raised or can no longer be", NULL);
    w->m_opened = counter(ms, "hvs_alerter_episodes_opened_total", "alert episodes opened", NULL);
    static const char *const sup[3] = {"reason=\"building_wide\"", "reason=\"vacancy\"",
                                       "reason=\"feedback\""};
    for (int i = 0; i < 3; i++)
        w->m_sup[i] = counter(ms, "hvs_alerter_suppressed_total", "alerts suppressed", sup[i]);
    w->m_critical = counter(ms, "hvs_alerter_critical_total",
                            "CRITICAL alerts raised at once (outside the budget)", NULL);
    w->m_raised = counter(ms, "hvs_alerter_raised_total", "alerts raised by daily lists", NULL);
    w->m_expired = counter(ms, "hvs_alerter_expired_total",
                           "candidates that never made a daily list", NULL);
    w->m_lists = counter(ms, "hvs_alerter_lists_total", "daily team lists made", NULL);
    w->m_discounted = counter(ms, "hvs_alerter_discounted_total",
                              "daily-list places candidates lost to the technicians' verdicts",
                              NULL);
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    int rc = apply_settings(w, err);
    if (rc)
        return rc;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_score = hvs_topic_name("scores.anomaly");
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_fb = hvs_topic_name("alerts.feedback");
    const char *inputs[] = {w->topic_score, w->topic_agg, w->topic_fb};
    const char *outputs[] = {hvs_topic_name("alerts"), NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 3,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.rebuild_ms};
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_ANOMALY_SCORE, &w->dec_score, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_FEEDBACK, &w->dec_fb, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_FEEDBACK, &w->dec_held, err)) ||
        (rc = al_input_new(w->serde, &w->input, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;
    /* no state_ns: hvs:al:part:<P> is a hash, and hvs:{B}:al:alerts, the alert book, outlives
     * any rebuild */
    if ((rc = hvs_stage_new(app, &al_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_alerter_new(w->serde, hvs_stage_producer(w->stage), &w->alerter, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()) || !(w->st = al_state_new()))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "alerter state");
    metrics(w, app->metrics);
    hvs_topology_poll(w->topo, 30000);
    hvs_log_info("alerter", "consuming %s + %s + %s -> %s (top %d per team and day)",
                 w->topic_score, w->topic_agg, w->topic_fb, hvs_topic_name("alerts"),
                 w->conf.top_k);
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    hvs_topology_destroy(w->topo);
    hvs_alerter_destroy(w->alerter); /* borrows the stage's producer */
    hvs_stage_destroy(w->stage);
    al_state_destroy(w->st);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    al_input_destroy(w->input);
    hvs_decoder_destroy(w->dec_score);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_fb);
    hvs_decoder_destroy(w->dec_held);
    hvs_serde_destroy(w->serde);
}

int main(int argc, char **argv) {
    static worker_t w; /* large, zeroed, living for the process */
    hvs_cfg_section_t sections[] = {al_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_ALERT_")};
    hvs_app_spec_t spec = {
        .worker = "alerter",
        .summary = "scores.anomaly + aggregates.hourly + alerts.feedback -> alerts (hysteresis, "
                   "suppression of benign patterns, a daily top-k per team, the workflow)",
        .usage = "Usage: hvs-alerter [--top-k 5] [--open 0.5] ... (every HVS_ALERT_* is a flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_ALERT_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
