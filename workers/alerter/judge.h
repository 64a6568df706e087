/*
 * judge.h - from apartment-hour scores to the alerts a team sees (docs/design.md section 9).
 *
 * Hours are judged in event-time order, per building, once every input of the partition has
 * passed them (main.c), so the outcome does not depend on how the inputs interleaved:
 *   hysteresis   an apartment's episode opens at an hour scoring >= open and lasts until
 *                close_hours judged hours in a row score < close; its alert id is
 *                "<apartment>#<day of its first hour>#<type>", the type from the rules that
 *                fired when it opened (no_heat_response, stuck_valve, sensor_*), else ANOMALY;
 *   suppression  an opening episode is SUPPRESSED, with its reason, when
 *                  building_wide   at least building_share (and building_min) of the
 *                                  building's scored apartments open at that hour: weather
 *                                  or the plant, not apartments;
 *                  vacancy         ANOMALY only: no hot water drawn for vacancy_hours (with
 *                                  vacancy_known of them known): nobody home (seed 004); a rule
 *                                  still holds then (a stuck valve is stuck while away);
 *                  feedback:<cause>  a technician's FALSE_POSITIVE with a benign cause on the
 *                                  apartment's alert of the same type, until fp_suppress_ms
 *                                  after the label;
 *   CRITICAL     an hour with a critical rule (critical_rules) at rule_score >= critical_score
 *                raises its episode at once, outside the budget;
 *   daily lists  once every partition holding a team's buildings judged a whole UTC day D, the
 *                team's candidates active in [D - carry, D + 1 d) are ranked by their highest
 *                score up to D and the top_k raised UNSEEN with rank 1..k; candidates whose last
 *                hour is older than D - carry expire;
 *   verdicts     a candidate's score is weighed, for the list only, by what the technicians
 *                found on the team's alerts labelled in the verdict_memory_ms before D + 1 d
 *                (resolved TRUE_ / FALSE_POSITIVE in the book), in two levels of Beta
 *                posteriors: its kind's precision in the team (kind: the rules that fired on
 *                it as bits, none = the residual alone), q = (tp_k + m0 p0) / (n_k + m0), is
 *                the prior of its apartment's, (tp_a + n0 q) / (n_a + n0); the weight is that
 *                over p0 (p0 verdict_prior, n0 verdict_weight, m0 verdict_kind_weight). A
 *                candidate whose weighed score falls below `open` is not listed (reason
 *                "verdicts:<tp>tp/<fp>fp" of its apartment; it expires unless its evidence
 *                grows): a kind the team keeps finding nothing behind, or a flat cleared twice,
 *                waits for stronger evidence, and the budget is a ceiling, not a quota.
 * Raised entries that change are marked `publish` (main.c publishes them once per batch).
 *
 * Ownership: borrows everything. Thread-safety: none. Errors: HVS_ENOMEM.
 */
#ifndef AL_JUDGE_H
#define AL_JUDGE_H

#include "state.h"

typedef struct al_conf {
    double open, close;
    int close_hours;
    double critical_score;
    uint32_t critical_rules;
    int top_k;
    int64_t carry_ms, keep_ms, fp_suppress_ms, idle_ms;
    int vacancy_hours, vacancy_known;
    double water_min_l;
    double building_share;
    int building_min;
    /* the technicians' verdicts labelled within verdict_memory_ms before a list weigh its
     * candidates (0: they do not): see "verdicts" above */
    int64_t verdict_memory_ms;
    double verdict_prior, verdict_weight, verdict_kind_weight;
} al_conf_t;

typedef struct al_judge_stats {
    uint64_t opened, suppressed[3], critical, raised, expired, dropped, lists;
    uint64_t discounted; /* list places a candidate lost to its apartment's verdicts */
} al_judge_stats_t;

enum { AL_SUP_BUILDING_WIDE, AL_SUP_VACANCY, AL_SUP_FEEDBACK };

/* The alert type of an hour's rules. */
hvs_alert_type_t al_judge_type(uint32_t rules);

/* Teams' buildings and partitions, for the daily lists. */
typedef const char *(*al_team_of_t)(void *opaque, const char *building); /* "" default */

/* Judge hour `hour` for every apartment of b (team: its team now, "" none). */
int al_judge_hour(const al_conf_t *c, al_building_t *b, hvs_ms_t hour, const char *team,
                  al_judge_stats_t *st, hvs_err_t *err);

/* Mark parts[p] for every partition holding one of the team's buildings in the topology (not
 * only those the state has seen: a building on a partition consumed later still has its
 * candidates to add). */
typedef void (*al_team_partitions_t)(void *opaque, const char *team,
                                     bool parts[HVS_MAX_PARTITIONS]);

/* Judge partition p's hours up to `until` (inclusive), hour by hour, every building of the
 * partition in each (its team from team_of); a partition that judged nothing yet starts at
 * min_seen, its earliest score hour (0: none seen, nothing judged). part[p].done follows. */
int al_judge_until(al_state_t *s, const al_conf_t *c, int32_t p, hvs_ms_t until, hvs_ms_t min_seen,
                   al_team_of_t team_of, void *opaque, al_judge_stats_t *st, hvs_err_t *err);

/* Make every daily list whose day every partition of its team has judged (team_partitions may
 * be NULL: the partitions of the state's buildings). caught_up: nothing waits in any assigned
 * partition (the last poll was idle with no lag); only then does a partition more than idle_ms
 * behind the team's newest stop holding the lists back — its meters went quiet, it is not
 * merely consumed later. */
int al_judge_lists(al_state_t *s, const al_conf_t *c, al_team_of_t team_of,
                   al_team_partitions_t team_partitions, void *opaque, bool caught_up,
                   al_judge_stats_t *st, hvs_err_t *err);

/* Water use of an apartment-hour (an aggregate's hot_water_litres; NaN: unknown): 0 or
 * HVS_ENOMEM. */
int al_judge_water(al_apartment_t *a, hvs_ms_t hour, double litres, double min_l);

#endif
