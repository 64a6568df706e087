/* judge.c - hysteresis, suppression, CRITICAL and the daily lists (judge.h). */
#include "judge.h"

#include "hvs/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sup_names[3] = {"building_wide", "vacancy", "feedback"};

/* A score (kept as float) at or above a threshold (a double from the configuration): compared
 * as floats, so a score equal to the threshold counts whatever float rounding did to both. */
static bool at_least(float v, double threshold) { return v >= (float)threshold; }

hvs_alert_type_t al_judge_type(uint32_t rules) {
    if (rules & HVS_RULE_NO_HEAT_RESPONSE)
        return HVS_ALERT_RULE_NO_RESPONSE;
    if (rules & HVS_RULE_STUCK_VALVE)
        return HVS_ALERT_RULE_STUCK_VALVE;
    if (rules & (HVS_RULE_SENSOR_FLATLINE | HVS_RULE_SENSOR_MISMATCH))
        return HVS_ALERT_RULE_SENSOR_MISMATCH;
    return HVS_ALERT_ANOMALY;
}

int al_judge_water(al_apartment_t *a, hvs_ms_t hour, double litres, double min_l) {
    if (isnan(litres))
        return 0;
    return al_apartment_put_water(a, hour, litres >= min_l ? 1 : 0);
}

/* Nobody drew hot water in the vacancy_hours up to `hour`, and enough of them are known. */
static bool vacant(const al_conf_t *c, const al_apartment_t *a, hvs_ms_t hour) {
    int known = 0;
    for (int k = 0; k < c->vacancy_hours; k++) {
        int use = al_apartment_water(a, hour - (hvs_ms_t)k * HVS_MS_HOUR);
        if (use > 0)
            return false;
        known += use == 0;
    }
    return known >= c->vacancy_known;
}

static void fmax_into(double *m, double v) {
    if (!isnan(v) && (isnan(*m) || v > *m))
        *m = v;
}

/* An hour at or above close of an open episode: its evidence into the entry. */
static void extend(const al_conf_t *c, al_entry_t *x, const al_hour_t *h) {
    hvs_alertbook_entry_t *e = &x->e;
    bool best = isnan(e->score) || h->score > e->score;
    if (best) {
        /* the hour's reason is "<model>|<reasons>" */
        const char *r = h->reason ? h->reason : "|", *bar = strchr(r, '|');
        size_t ml = bar ? (size_t)(bar - r) : 0;
        char model[HVS_ALERTBOOK_NAME_MAX];
        snprintf(model, sizeof model, "%.*s", (int)(ml < sizeof model ? ml : sizeof model - 1), r);
        e->score = h->score;
        hvs_alertbook_copy(e->reasons, sizeof e->reasons, bar ? bar + 1 : "");
        hvs_alertbook_copy(e->model, sizeof e->model, model);
    }
    if (at_least(h->score, c->open))
        e->hours++;
    e->updated_at = h->hour;
    e->rules |= h->rules;
    fmax_into(&e->max_rule, h->rule_score);
    fmax_into(&e->max_z, h->z);
    fmax_into(&e->max_prob, h->prob);
    al_entry_note_hour(x, h->hour, h->score);
    x->dirty = true;
    if (e->disposition == HVS_ALERTBOOK_RAISED)
        x->publish = true;
}

static bool critical(const al_conf_t *c, const al_hour_t *h) {
    return (h->rules & c->critical_rules) && at_least(h->rule_score, c->critical_score);
}

static void raise_now(al_entry_t *x, hvs_ms_t hour, al_judge_stats_t *st) {
    x->e.disposition = HVS_ALERTBOOK_RAISED;
    x->e.severity = HVS_SEVERITY_CRITICAL;
    x->e.reason[0] = '\0';
    x->raised_hour = hour;
    x->dirty = x->publish = true;
    st->critical++;
}

static int open_episode(const al_conf_t *c, al_building_t *b, al_apartment_t *a, const al_hour_t *h,
                        bool wide, const char *team, al_judge_stats_t *st, hvs_err_t *err) {
    hvs_alert_type_t type = al_judge_type(h->rules);
    hvs_alert_t key = {
        .building_id = b->id, .apartment_id = a->id, .type = type, .first_seen = h->hour};
    char id[HVS_ALERTBOOK_ID_MAX];
    if (hvs_alert_id(&key, id, sizeof id) < 0)
        return hvs_err_set(err, HVS_EINVAL, "id_too_long", "alert id of %s/%s", b->id, a->id);
    bool fresh = !al_building_entry(b, id, false);
    al_entry_t *x = al_building_entry(b, id, true);
    if (!x)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "alert %s", id);
    hvs_alertbook_entry_t *e = &x->e;
    a->open = true, a->open_type = type, a->open_first = h->hour, a->below = 0;
    a->dirty = true;
    e->open = true;
    hvs_alertbook_copy(e->team, sizeof e->team, team);
    if (fresh) {
        snprintf(e->building, sizeof e->building, "%s", b->id);
        snprintf(e->apartment, sizeof e->apartment, "%s", a->id);
        e->type = type;
        e->severity = HVS_SEVERITY_WARNING;
        e->status = HVS_ALERT_UNSEEN;
        e->first_seen = h->hour;
        st->opened++;
        int why = -1;
        if (wide)
            why = AL_SUP_BUILDING_WIDE;
        else if (type == HVS_ALERT_ANOMALY && vacant(c, a, h->hour))
            why = AL_SUP_VACANCY;
        else if (a->sup_until > h->hour && h->hour >= a->sup_from && a->sup_type == type)
            why = AL_SUP_FEEDBACK;
        if (why >= 0) {
            e->disposition = HVS_ALERTBOOK_SUPPRESSED;
            if (why == AL_SUP_FEEDBACK) {
                char r[sizeof e->reason + sizeof a->sup_cause];
                snprintf(r, sizeof r, "feedback:%s", a->sup_cause);
                hvs_alertbook_copy(e->reason, sizeof e->reason, r); /* whole characters */
            } else
                snprintf(e->reason, sizeof e->reason, "%s", sup_names[why]);
            st->suppressed[why]++;
        } else {
            e->disposition = HVS_ALERTBOOK_CANDIDATE;
        }
    } else if (e->disposition == HVS_ALERTBOOK_EXPIRED) {
        e->disposition = HVS_ALERTBOOK_CANDIDATE; /* the same day and type again: it may still */
        e->reason[0] = '\0';                      /* make a list */
    }
    extend(c, x, h);
    if (e->disposition == HVS_ALERTBOOK_CANDIDATE && critical(c, h))
        raise_now(x, h->hour, st);
    if (e->disposition == HVS_ALERTBOOK_RAISED)
        x->publish = true; /* open again */
    return 0;
}

static al_entry_t *open_entry(al_building_t *b, const al_apartment_t *a) {
    hvs_alert_t key = {.building_id = b->id,
                       .apartment_id = a->id,
                       .type = a->open_type,
                       .first_seen = a->open_first};
    char id[HVS_ALERTBOOK_ID_MAX];
    return hvs_alert_id(&key, id, sizeof id) < 0 ? NULL : al_building_entry(b, id, false);
}

int al_judge_hour(const al_conf_t *c, al_building_t *b, hvs_ms_t hour, const char *team,
                  al_judge_stats_t *st, hvs_err_t *err) {
    int scored = 0, above = 0;
    for (size_t k = 0; k < b->napts; k++) {
        const al_hour_t *h = al_apartment_hour(b->apts[k], hour);
        if (h) {
            scored++;
            above += at_least(h->score, c->open);
        }
    }
    bool wide = scored >= c->building_min && above >= c->building_min &&
                above >= c->building_share * scored;
    for (size_t k = 0; k < b->napts; k++) {
        al_apartment_t *a = b->apts[k];
        a->water_from = hour + HVS_MS_HOUR - (hvs_ms_t)c->vacancy_hours * HVS_MS_HOUR;
        al_hour_t *h = al_apartment_hour(a, hour);
        if (!h)
            continue;
        if (!a->open) {
            if (at_least(h->score, c->open)) {
                int rc = open_episode(c, b, a, h, wide, team, st, err);
                if (rc)
                    return rc;
            }
        } else {
            al_entry_t *x = open_entry(b, a);
            if (!x) { /* dropped by retention while open (cannot happen with keep > close) */
                a->open = false;
            } else if (at_least(h->score, c->close)) {
                a->below = 0;
                extend(c, x, h);
                if (x->e.disposition == HVS_ALERTBOOK_CANDIDATE && critical(c, h))
                    raise_now(x, hour, st);
            } else if (++a->below >= c->close_hours) {
                a->open = false;
                x->e.open = false;
                x->dirty = true;
                if (x->e.disposition == HVS_ALERTBOOK_RAISED)
                    x->publish = true;
            }
        }
        al_apartment_take_hour(a, hour); /* judged: the slot is free */
    }
    /* retention, once a day */
    if (hour % HVS_MS_DAY == 0)
        for (size_t k = 0; k < b->nentries; k++) {
            al_entry_t *x = b->entries[k];
            if (!x->e.open && !x->gone && x->e.updated_at < hour - c->keep_ms) {
                x->gone = true;
                st->dropped++;
            }
        }
    return 0;
}

int al_judge_until(al_state_t *s, const al_conf_t *c, int32_t p, hvs_ms_t until, hvs_ms_t min_seen,
                   al_team_of_t team_of, void *opaque, al_judge_stats_t *st, hvs_err_t *err) {
    al_partition_t *pt = &s->part[p];
    if (!pt->done) {
        if (!min_seen)
            return 0;
        pt->done = min_seen - HVS_MS_HOUR;
        pt->dirty = true;
    }
    for (hvs_ms_t h = pt->done + HVS_MS_HOUR; h <= until; h += HVS_MS_HOUR) {
        for (size_t i = 0; i < s->n; i++) {
            al_building_t *b = s->b[i];
            if (b->partition != p)
                continue;
            int rc = al_judge_hour(c, b, h, team_of(opaque, b->id), st, err);
            if (rc)
                return rc;
        }
        pt->done = h;
        pt->dirty = true;
    }
    return 0;
}

/* ---- daily lists ---------------------------------------------------------------------------- */

typedef struct pick {
    al_entry_t *x;
    double score;
} pick_t;

static int pick_cmp(const void *pa, const void *pb) {
    const pick_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->x->e.first_seen != b->x->e.first_seen)
        return a->x->e.first_seen < b->x->e.first_seen ? -1 : 1;
    return strcmp(a->x->e.id, b->x->e.id);
}

/* The technicians' verdicts a team's list weighs (judge.h, "verdicts"): per kind of evidence
 * (the rules that fired on an alert, as bits; none = the residual alone). */
#define KINDS (1u << HVS_RULE_COUNT)
typedef struct verdicts {
    int tp[KINDS], fp[KINDS];
} verdicts_t;

static bool counts(const al_conf_t *c, const al_entry_t *x, hvs_ms_t end) {
    const hvs_alertbook_entry_t *o = &x->e;
    return !x->gone && o->feedback_at && o->feedback_at < end &&
           o->feedback_at >= end - c->verdict_memory_ms &&
           (o->status == HVS_ALERT_RESOLVED_TRUE_POSITIVE ||
            o->status == HVS_ALERT_RESOLVED_FALSE_POSITIVE);
}

static void verdicts_of_team(const al_conf_t *c, al_building_t **bs, size_t nb, hvs_ms_t end,
                             verdicts_t *v) {
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < nb; i++)
        for (size_t k = 0; k < bs[i]->nentries; k++) {
            const al_entry_t *x = bs[i]->entries[k];
            if (!counts(c, x, end))
                continue;
            unsigned kind = x->e.rules & (KINDS - 1);
            if (x->e.status == HVS_ALERT_RESOLVED_TRUE_POSITIVE)
                v->tp[kind]++;
            else
                v->fp[kind]++;
        }
}

/* Candidate x's list weight (judge.h, "verdicts"): its apartment's posterior precision, whose
 * prior is its kind's posterior precision in the team, over verdict_prior. tp, fp: the
 * apartment's verdicts counted. */
static double verdict_weight(const al_conf_t *c, const verdicts_t *v, const al_building_t *b,
                             const al_entry_t *x, hvs_ms_t end, int *tp, int *fp) {
    *tp = *fp = 0;
    if (c->verdict_memory_ms <= 0 || !(c->verdict_prior > 0) || !(c->verdict_weight >= 0))
        return 1;
    const hvs_alertbook_entry_t *e = &x->e;
    unsigned kind = e->rules & (KINDS - 1);
    double n0 = c->verdict_weight, p0 = c->verdict_prior;
    double m0 = c->verdict_kind_weight;
    double q = v->tp[kind] + v->fp[kind] + m0 > 0
                   ? (v->tp[kind] + m0 * p0) / (v->tp[kind] + v->fp[kind] + m0)
                   : p0;
    for (size_t k = 0; k < b->nentries; k++) {
        const al_entry_t *o = b->entries[k];
        if (!counts(c, o, end) || strcmp(o->e.apartment, e->apartment) != 0)
            continue;
        *tp += o->e.status == HVS_ALERT_RESOLVED_TRUE_POSITIVE;
        *fp += o->e.status == HVS_ALERT_RESOLVED_FALSE_POSITIVE;
    }
    if (!(n0 > 0) && *tp + *fp == 0)
        return q / p0;
    return (*tp + n0 * q) / (*tp + *fp + n0) / p0;
}

static int make_list(al_state_t *s, const al_conf_t *c, al_building_t **bs, size_t nb, hvs_ms_t day,
                     al_judge_stats_t *st, hvs_err_t *err) {
    hvs_ms_t end = day + HVS_MS_DAY;
    size_t n = 0, cap = 0;
    pick_t *p = NULL;
    (void)s;
    verdicts_t v;
    verdicts_of_team(c, bs, nb, end, &v);
    for (size_t i = 0; i < nb; i++)
        for (size_t k = 0; k < bs[i]->nentries; k++) {
            al_entry_t *x = bs[i]->entries[k];
            hvs_alertbook_entry_t *e = &x->e;
            if (x->gone || e->first_seen >= end)
                continue;
            bool cand = e->disposition == HVS_ALERTBOOK_CANDIDATE ||
                        (e->disposition == HVS_ALERTBOOK_RAISED && e->list_day == 0 &&
                         x->raised_hour >= end);
            if (!cand)
                continue;
            if (e->updated_at < day - c->carry_ms) {
                if (e->disposition == HVS_ALERTBOOK_CANDIDATE) {
                    e->disposition = HVS_ALERTBOOK_EXPIRED;
                    if (strncmp(e->reason, "verdicts:", 9) != 0) /* else: why it waited */
                        snprintf(e->reason, sizeof e->reason, "not_in_top_%d", c->top_k);
                    x->dirty = true;
                    st->expired++;
                }
                continue;
            }
            int tp, fp;
            double score = al_entry_score_until(x, day);
            double weighed = score * verdict_weight(c, &v, bs[i], x, end, &tp, &fp);
            if (e->disposition == HVS_ALERTBOOK_CANDIDATE && !(weighed >= (float)c->open) &&
                score >= (float)c->open) {
                char r[sizeof e->reason];
                snprintf(r, sizeof r, "verdicts:%dtp/%dfp", tp, fp);
                if (strcmp(r, e->reason) != 0) {
                    snprintf(e->reason, sizeof e->reason, "%s", r);
                    x->dirty = true;
                }
                st->discounted++;
                continue;
            }
            pick_t *g = hvs_vec_grow(p, &cap, n + 1, sizeof *p, 32);
            if (!g) {
                free(p);
                return hvs_err_set(err, HVS_ENOMEM, "oom", "daily list");
            }
            p = g;
            p[n++] = (pick_t){x, weighed};
        }
    if (n) /* qsort must not be given NULL, even for nothing */
        qsort(p, n, sizeof *p, pick_cmp);
    for (size_t i = 0; i < n && i < (size_t)c->top_k; i++) {
        al_entry_t *x = p[i].x;
        if (x->e.disposition != HVS_ALERTBOOK_RAISED) {
            x->e.disposition = HVS_ALERTBOOK_RAISED;
            x->e.reason[0] = '\0';
            x->raised_hour = end;
            st->raised++;
        }
        x->e.rank = (int)i + 1;
        x->e.list_day = day;
        x->dirty = x->publish = true;
    }
    free(p);
    for (size_t i = 0; i < nb; i++) {
        bs[i]->listed = day;
        bs[i]->listed_dirty = true;
    }
    st->lists++;
    return 0;
}

typedef struct member {
    al_building_t *b;
    const char *team;
} member_t;

static int member_cmp(const void *pa, const void *pb) {
    const member_t *a = pa, *b = pb;
    int c = strcmp(a->team, b->team);
    return c ? c : strcmp(a->b->id, b->b->id);
}

/* How far a partition counts as judged for the lists: `done`, within its list cap. */
static hvs_ms_t listable(const al_partition_t *pt) {
    return pt->list_cap && pt->list_cap < pt->done ? pt->list_cap : pt->done;
}

/* The lists of one team (its buildings bs[0..nb), its partitions parts[]) whose days every
 * partition holding the team's buildings has judged. */
static int team_lists(al_state_t *s, const al_conf_t *c, al_building_t **bs, size_t nb,
                      bool parts[HVS_MAX_PARTITIONS], bool caught_up, al_judge_stats_t *st,
                      hvs_err_t *err) {
    hvs_ms_t newest = 0, judged = INT64_MAX, listed = 0, first = INT64_MAX;
    for (size_t k = 0; k < nb; k++) {
        const al_building_t *b = bs[k];
        parts[b->partition] = true;
        if (b->listed > listed)
            listed = b->listed;
        for (size_t e = 0; e < b->nentries; e++)
            if (b->entries[e]->e.first_seen < first)
                first = b->entries[e]->e.first_seen;
    }
    for (int p = 0; p < HVS_MAX_PARTITIONS; p++)
        if (parts[p] && listable(&s->part[p]) > newest)
            newest = listable(&s->part[p]);
    for (int p = 0; p < HVS_MAX_PARTITIONS; p++) {
        if (!parts[p])
            continue;
        hvs_ms_t done = listable(&s->part[p]);
        if (caught_up && done < newest - c->idle_ms)
            continue; /* quiet: nothing of it is waiting to be consumed */
        if (done < judged)
            judged = done;
    }
    if (judged == INT64_MAX || judged == 0 || first == INT64_MAX)
        return 0;
    int rc = 0;
    hvs_ms_t day = listed ? listed + HVS_MS_DAY : hvs_time_day_start(first);
    for (; rc == 0 && day + HVS_MS_DAY - HVS_MS_HOUR <= judged; day += HVS_MS_DAY)
        rc = make_list(s, c, bs, nb, day, st, err);
    return rc;
}

int al_judge_lists(al_state_t *s, const al_conf_t *c, al_team_of_t team_of,
                   al_team_partitions_t team_partitions, void *opaque, bool caught_up,
                   al_judge_stats_t *st, hvs_err_t *err) {
    if (s->n == 0)
        return 0;
    member_t *m = malloc(s->n * sizeof *m);
    al_building_t **bs = malloc(s->n * sizeof *bs);
    int rc = 0;
    if (!m || !bs)
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "daily lists");
    for (size_t i = 0; i < s->n && rc == 0; i++)
        m[i] = (member_t){s->b[i], team_of(opaque, s->b[i]->id)};
    if (rc == 0)
        qsort(m, s->n, sizeof *m, member_cmp);
    for (size_t i = 0, j; i < s->n && rc == 0; i = j) {
        size_t nb = 0;
        bool parts[HVS_MAX_PARTITIONS] = {false};
        for (j = i; j < s->n && strcmp(m[j].team, m[i].team) == 0; j++)
            bs[nb++] = m[j].b;
        if (team_partitions)
            team_partitions(opaque, m[i].team, parts);
        rc = team_lists(s, c, bs, nb, parts, caught_up, st, err);
    }
    free(m);
    free(bs);
    return rc;
}
