/* engine.c - the feature worker's state machine (see engine.h). */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/calendar.h"
#include "hvs/fmt.h"
#include "hvs/log.h"
#include "hvs/vec.h"
#include "hvs/wire.h"

#define HOUR HVS_MS_HOUR

struct fx {
    fx_config_t conf;
    const hvs_topology_t *topo;
    fx_building_t **b; /* sorted by id */
    size_t n, cap;
    fx_building_t *last; /* the one found last (a building's records come in runs), or NULL */
    hvs_calendars_t *cals;
    fx_stats_t stats;
    double x[HVS_FEATURES_COUNT];
};

fx_t *fx_new(const fx_config_t *conf, const hvs_topology_t *topo) {
    fx_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->conf = *conf;
    if (g->conf.ndq > FX_DQ_MAX)
        g->conf.ndq = FX_DQ_MAX;
    g->topo = topo;
    if (!(g->cals = hvs_calendars_new(conf->default_region, "features"))) {
        free(g);
        return NULL;
    }
    return g;
}

static void building_free(fx_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->npend; i++)
        free(b->pend[i].entity);
    free(b->pend);
    free(b->keys);
    for (size_t i = 0; i < b->ngone; i++)
        free(b->gone[i]);
    free(b->gone);
    hvs_fs_building_destroy(b->fs);
    free(b);
}

void fx_destroy(fx_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        building_free(g->b[i]);
    free(g->b);
    hvs_calendars_destroy(g->cals);
    free(g);
}

fx_stats_t *fx_stats(fx_t *g) { return &g->stats; }

static size_t find(const fx_t *g, const char *id, bool *found) {
    size_t at;
    HVS_VEC_BSEARCH_STR(g->b, g->n, ->fs->id, id, at, *found);
    return at;
}

static void dq_reset(fx_building_t *b) {
    for (int d = 0; d < 2; d++) {
        b->dq[d] = (fx_dq_day_t){.day = HVS_MS_NONE};
        for (int k = 0; k < FX_DQ_MAX; k++)
            b->dq[d].alerted[k] = -1;
    }
}

/* The newest issue of the building's weather and the newest hour of its aggregates, from its
 * rings (a building loaded from Redis). */
static void data_times(fx_building_t *b) {
    b->wx_time = b->agg_time = b->live_wx = HVS_MS_NONE;
    for (size_t s = 0; s < HVS_FS_HOURS; s++) {
        const hvs_feat_wx_hour_t *w = &b->fs->wx[s];
        for (int i = 0; w->hour != HVS_MS_NONE && i < w->n; i++)
            if (b->wx_time == HVS_MS_NONE || w->v[i].issued_at > b->wx_time)
                b->wx_time = w->v[i].issued_at;
    }
    for (size_t k = 0; k < b->fs->nents; k++)
        for (size_t s = 0; s < HVS_FS_HOURS; s++) {
            hvs_ms_t h = b->fs->ents[k]->hours[s].hour;
            if (h != HVS_MS_NONE && (b->agg_time == HVS_MS_NONE || h > b->agg_time))
                b->agg_time = h;
        }
}

static int insert(fx_t *g, hvs_fs_building_t *fs, fx_building_t **out) {
    bool found;
    size_t at = find(g, fs->id, &found);
    fx_building_t **nb = hvs_vec_grow(g->b, &g->cap, g->n + 1, sizeof *nb, 32);
    fx_building_t *b = calloc(1, sizeof *b);
    if (!nb || !b) {
        free(b);
        hvs_fs_building_destroy(fs);
        return HVS_ENOMEM;
    }
    g->b = nb;
    b->fs = fs;
    data_times(b);
    dq_reset(b);
    memmove(&g->b[at + 1], &g->b[at], (g->n - at) * sizeof *g->b);
    g->b[at] = b;
    g->n++;
    *out = b;
    return 0;
}

fx_building_t *fx_building(fx_t *g, const char *id, int32_t partition, bool create) {
    if (g->last && strcmp(g->last->fs->id, id) == 0)
        return g->last;
    bool found;
    size_t at = find(g, id, &found);
    if (found)
        return g->last = g->b[at];
    if (!create)
        return NULL;
    hvs_fs_building_t *fs = hvs_fs_building_new(id, partition);
    fx_building_t *b = NULL;
    if (!fs || insert(g, fs, &b))
        return NULL;
    return g->last = b;
}

int fx_adopt(fx_t *g, hvs_fs_building_t *fs) {
    bool found;
    size_t at = find(g, fs->id, &found);
    if (found) { /* replace what was there (a stale copy from an earlier assignment) */
        g->last = NULL;
        building_free(g->b[at]);
        memmove(&g->b[at], &g->b[at + 1], (g->n - at - 1) * sizeof *g->b);
        g->n--;
    }
    fx_building_t *b;
    return insert(g, fs, &b);
}

fx_building_t **fx_buildings(fx_t *g, size_t *n) {
    *n = g->n;
    return g->b;
}

void fx_drop_partition(fx_t *g, int32_t partition) {
    size_t w = 0;
    g->last = NULL;
    for (size_t i = 0; i < g->n; i++) {
        if (g->b[i]->fs->partition == partition)
            building_free(g->b[i]);
        else
            g->b[w++] = g->b[i];
    }
    g->n = w;
}

/* The calendar of a building's holiday region (the default one when it has none or an unknown
 * one). NULL only on ENOMEM. */
static hvs_calendar_t *calendar_of(fx_t *g, const char *building, hvs_ms_t *commissioning) {
    const hvs_building_t *tb = g->topo ? hvs_topology_find(g->topo, building) : NULL;
    *commissioning = tb ? tb->commissioning : HVS_MS_NONE;
    return hvs_calendars_get(g->cals, tb ? tb->holiday_region : NULL, building);
}

/* ---- data quality --------------------------------------------------------------------------- */

static int dq_note(fx_t *g, fx_building_t *b, hvs_ms_t hour, uint32_t mask, bool upgrade,
                   uint32_t old_mask, const fx_sink_t *sink, hvs_err_t *err) {
    hvs_ms_t day = hvs_time_day_start(hour);
    fx_dq_day_t *d = NULL;
    for (int i = 0; i < 2; i++)
        if (b->dq[i].day == day)
            d = &b->dq[i];
    if (!d) {
        /* a new day replaces the older of the two */
        int old = b->dq[0].day == HVS_MS_NONE ||
                          (b->dq[1].day != HVS_MS_NONE && b->dq[0].day < b->dq[1].day)
                      ? 0
                      : 1;
        if (b->dq[old].day != HVS_MS_NONE && b->dq[old].day > day)
            return 0; /* older than both days kept */
        d = &b->dq[old];
        *d = (fx_dq_day_t){.day = day};
        for (int k = 0; k < FX_DQ_MAX; k++)
            d->alerted[k] = -1;
    }
    if (!upgrade)
        d->n++;
    for (int k = 0; k < g->conf.ndq; k++) {
        if (upgrade && (old_mask >> k & 1u))
            d->missing[k]--;
        if (mask >> k & 1u)
            d->missing[k]++;
    }
    for (int k = 0; k < g->conf.ndq; k++) {
        if (d->n < g->conf.dq_min_vectors)
            break;
        double rate = (double)d->missing[k] / d->n;
        bool above = rate > g->conf.dq_limit;
        if (!above || (d->alerted[k] >= 0 && fabs(rate - d->alerted[k]) < 0.05))
            continue;
        d->alerted[k] = rate;
        fx_dq_alert_t a = {.building = b->fs->id,
                           .feature = hvs_features_names()[g->conf.dq_features[k]],
                           .day = day,
                           .n = d->n,
                           .missing = d->missing[k],
                           .rate = rate};
        if (sink->alert) {
            int rc = sink->alert(sink->opaque, &a, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- emission ------------------------------------------------------------------------------- */

/* The last term of a vector's revision: how much of its weather it had. */
enum { ST_WEAK = 0, ST_SETTLED = 1, ST_FULL = 2 };

static hvs_ms_t max_ms(hvs_ms_t a, hvs_ms_t b) { return a > b ? a : b; }

static void snap_from(const double *x, unsigned flags, double target, uint32_t revision,
                      fx_snap_t *s) {
    const int *idx = hvs_features_entity_indices();
    for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
        s->x[i] = x[idx[i]];
    s->flags = flags & HVS_FEAT_F_ENTITY;
    s->target = target;
    s->revision = revision;
}

/*
 * The vector of (e, hour) as of as_of into g->x and *v. Its entity part comes from snap, or
 * (snap NULL) from the ring as it is now, then also copied into *taken when that is given.
 */
static int compute(fx_t *g, fx_building_t *b, hvs_fs_entity_t *e, hvs_ms_t hour, hvs_ms_t as_of,
                   const fx_snap_t *snap, fx_snap_t *taken, int stage, fx_vector_t *v,
                   hvs_err_t *err) {
    hvs_ms_t commissioning;
    hvs_calendar_t *cal = calendar_of(g, b->fs->id, &commissioning);
    if (!cal)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "calendar for %s", b->fs->id);
    hvs_feat_history_t view;
    hvs_fs_view(b->fs, e, commissioning, &view);
    unsigned flags;
    if (snap) /* the entity part is the kept one: the rest alone */
        hvs_features_compute_context(&view, cal, hour, as_of, g->x, &flags);
    else
        hvs_features_compute(&view, cal, hour, as_of, g->x, &flags);
    const hvs_feat_hour_t *self = hvs_feat_hour_get(&view, hour);
    double target = self ? self->use : NAN;
    uint32_t revision = self ? self->revision : 0;
    if (snap) {
        const int *idx = hvs_features_entity_indices();
        for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
            g->x[idx[i]] = snap->x[i];
        flags = (flags & ~(unsigned)HVS_FEAT_F_ENTITY) | snap->flags;
        target = snap->target;
        revision = snap->revision;
    } else if (taken) {
        snap_from(g->x, flags, target, revision, taken);
    }
    *v = (fx_vector_t){.building = b->fs->id,
                       .entity = e->id,
                       .hour = hour,
                       .as_of = as_of,
                       .x = g->x,
                       .flags = flags,
                       .target = target,
                       .revision = revision * 4 + (uint32_t)stage};
    return 0;
}

/* How an emission counts for data quality: `count` a first vector of its hour, `adjust` one
 * replacing a weak vector whose missing mask was `old`. */
typedef struct dq_effect {
    bool count, adjust;
    uint32_t old;
} dq_effect_t;

/* Publish v; *mask_out (may be NULL) gets its critical features missing. */
static int send_vector(fx_t *g, fx_building_t *b, fx_vector_t *v, dq_effect_t dq,
                       uint32_t *mask_out, const fx_sink_t *sink, hvs_err_t *err) {
    uint32_t mask = 0;
    for (int k = 0; k < g->conf.ndq; k++)
        if (isnan(v->x[g->conf.dq_features[k]]))
            mask |= 1u << k;
    if (mask_out)
        *mask_out = mask;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        g->stats.missing[i] += isnan(v->x[i]);
    g->stats.vectors++;
    g->stats.upgrades += v->upgrade;
    int rc = sink->vector ? sink->vector(sink->opaque, v, err) : 0;
    if (rc == 0 && (dq.count || dq.adjust))
        rc = dq_note(g, b, v->hour, mask, dq.adjust, dq.old, sink, err);
    return rc;
}

/* The earliest observation of an hour known (the one its vector uses), or NULL. */
static const hvs_feat_wx_t *observation(const fx_building_t *b, hvs_ms_t hour) {
    const hvs_feat_wx_hour_t *w = hvs_fs_weather(b->fs, hour);
    for (int i = 0; w && i < w->n; i++)
        if (w->v[i].observed)
            return &w->v[i];
    return NULL;
}

/* FNV-1a of an entity id: pending entries are found by it and their hour first. */
static uint32_t entity_hash(const char *id) {
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

static fx_pending_t *pending_find(fx_building_t *b, const char *entity, uint32_t hash,
                                  hvs_ms_t hour) {
    for (size_t i = 0; i < b->npend; i++)
        if (b->keys[i].hour == hour && b->keys[i].hash == hash &&
            strcmp(b->pend[i].entity, entity) == 0)
            return &b->pend[i];
    return NULL;
}

/* The Redis field of an entry: "<entity>\x1f<hour>". */
static int pending_field(char *buf, size_t cap, const char *entity, hvs_ms_t hour) {
    size_t len = strlen(entity);
    if (len + 2 + 20 > cap) /* ids are at most HVS_READING_ID_MAX: not on any path */
        return snprintf(buf, cap, "%s\x1f%lld", entity, (long long)hour);
    memcpy(buf, entity, len);
    buf[len++] = '\x1f';
    len += hvs_fmt_int64(buf + len, hour);
    buf[len] = 0;
    return (int)len;
}

/* Forget *p (the last entry moves into its place); its field, if it reached Redis, is deleted
 * at the next save (an entry made and released between two saves costs Redis nothing). */
static int pending_remove(fx_building_t *b, fx_pending_t *p) {
    size_t i = (size_t)(p - b->pend);
    if (!p->stored) {
        free(p->entity);
        b->keys[i] = b->keys[--b->npend];
        *p = b->pend[b->npend];
        return 0;
    }
    char f[HVS_READING_ID_MAX + 32];
    pending_field(f, sizeof f, p->entity, p->hour);
    char **ng = hvs_vec_grow(b->gone, &b->capgone, b->ngone + 1, sizeof *ng, 16);
    char *copy = strdup(f);
    if (!ng || !copy) {
        free(copy);
        return HVS_ENOMEM;
    }
    b->gone = ng;
    b->gone[b->ngone++] = copy;
    free(p->entity);
    b->keys[i] = b->keys[--b->npend];
    *p = b->pend[b->npend];
    return 0;
}

/* Entry p updated, or (p NULL) the entry of (entity, hour) made; NULL on ENOMEM. p, when
 * given, is that entry (pending_find with hash). */
static fx_pending_t *pending_put(fx_building_t *b, fx_pending_t *p, const char *entity,
                                 uint32_t hash, hvs_ms_t hour, bool weak, bool settled,
                                 uint32_t missing, const fx_snap_t *snap) {
    if (!p) {
        fx_pending_t *np = hvs_vec_grow(b->pend, &b->cappend, b->npend + 1, sizeof *np, 16);
        if (np)
            b->pend = np;
        fx_pend_key_t *nk = hvs_vec_grow(b->keys, &b->capkeys, b->npend + 1, sizeof *nk, 16);
        if (nk)
            b->keys = nk;
        char *e = strdup(entity);
        if (!np || !nk || !e) {
            free(e);
            return NULL;
        }
        b->keys[b->npend] = (fx_pend_key_t){hour, hash};
        p = &b->pend[b->npend++];
        *p = (fx_pending_t){.entity = e, .hour = hour};
    }
    p->weak = weak;
    p->settled = settled;
    p->missing = missing;
    p->has_snap = snap != NULL;
    if (snap)
        p->snap = *snap;
    p->dirty = true;
    return p;
}

static int oom(hvs_err_t *err, const fx_building_t *b) {
    return hvs_err_set(err, HVS_ENOMEM, "oom", "pending vectors of %s", b->fs->id);
}

/* The entity part of (e, hour) from the ring now (for a vector that waits). */
static int snap_take(fx_t *g, fx_building_t *b, hvs_fs_entity_t *e, hvs_ms_t hour, fx_snap_t *s,
                     hvs_err_t *err) {
    fx_vector_t v;
    return compute(g, b, e, hour, hour + HOUR, NULL, s, ST_WEAK, &v, err);
}

/* Send the vector of pending entry p as of as_of with its kept entity part; returns through
 * *mask its missing mask. */
static int send_pending(fx_t *g, fx_building_t *b, const fx_pending_t *p, hvs_ms_t as_of, int stage,
                        dq_effect_t dq, uint32_t *mask, const fx_sink_t *sink, hvs_err_t *err) {
    hvs_fs_entity_t *e = hvs_fs_entity(b->fs, p->entity, false);
    if (!e)
        return 0; /* no ring: nothing to compute it from */
    fx_vector_t v;
    int rc = compute(g, b, e, p->hour, as_of, p->has_snap ? &p->snap : NULL, NULL, stage, &v, err);
    if (rc)
        return rc;
    v.upgrade = stage == ST_FULL && p->weak;
    return send_vector(g, b, &v, dq, mask, sink, err);
}

int fx_on_aggregate(fx_t *g, int32_t partition, const fx_aggregate_t *a, hvs_ms_t wm, bool quiet,
                    const fx_sink_t *sink, hvs_err_t *err) {
    g->stats.aggregates++;
    hvs_ms_t hour = a->hour.hour;
    /* A vector needs the 168 hours before its hour: older hours no longer fit the ring. */
    if (wm != HVS_MS_NONE && hour < wm - (HVS_FS_HOURS - 168) * HOUR) {
        g->stats.stale++;
        char t[32], m[32];
        return hvs_err_set(err, HVS_EINVAL, FX_R_TOO_LATE,
                           "hour %s is older than the watermark %s minus %d h",
                           hvs_time_format_iso8601(hour, t, sizeof t),
                           hvs_time_format_iso8601(wm, m, sizeof m), HVS_FS_HOURS - 168);
    }
    fx_building_t *b = fx_building(g, a->building, partition, true);
    hvs_fs_entity_t *e = b ? hvs_fs_entity(b->fs, a->entity, true) : NULL;
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "state of %s/%s", a->building, a->entity);
    if (hvs_fs_put_hour(e, &a->hour) == 0)
        return 0; /* a replay, or an older revision */
    if (b->agg_time == HVS_MS_NONE || hour > b->agg_time)
        b->agg_time = hour;
    uint32_t ehash = entity_hash(e->id);
    fx_pending_t *p = pending_find(b, e->id, ehash, hour);
    bool weak_before = p && p->weak;
    /* data quality counts each hour's first vector (and what replaces a weak one) */
    dq_effect_t dq = {a->hour.revision == 0, weak_before, p ? p->missing : 0};
    hvs_ms_t deadline = hour + HOUR + g->conf.weather_wait;
    const hvs_feat_wx_t *obs = observation(b, hour);
    fx_vector_t v;
    int rc;
    if (obs) { /* final at once: with the observation, or weak if it came too late to count */
        bool in_window = obs->issued_at <= hour + g->conf.upgrade_window;
        if (p && pending_remove(b, p))
            return oom(err, b);
        if (quiet && !(b->live_wx != HVS_MS_NONE && obs->issued_at >= b->live_wx))
            return 0; /* both replayed: the lost state had sent it */
        rc = compute(g, b, e, hour, in_window ? max_ms(hour + HOUR, obs->issued_at) : deadline,
                     NULL, NULL, in_window ? ST_FULL : ST_SETTLED, &v, err);
        v.upgrade = in_window && weak_before;
        return rc ? rc : send_vector(g, b, &v, dq, NULL, sink, err);
    }
    fx_snap_t snap;
    if (weak_before || (wm != HVS_MS_NONE && deadline <= wm)) { /* out now without it */
        bool settled = b->wx_time != HVS_MS_NONE && b->wx_time > deadline;
        uint32_t mask = 0;
        g->stats.weak++;
        rc = compute(g, b, e, hour, deadline, NULL, &snap, settled ? ST_SETTLED : ST_WEAK, &v, err);
        if (rc == 0 && !quiet)
            rc = send_vector(g, b, &v, dq, &mask, sink, err);
        if (rc)
            return rc;
        if (!(p = pending_put(b, p, e->id, ehash, hour, true, settled, mask, &snap)))
            return oom(err, b);
        p->unsent = quiet;
    } else {
        if (!p)
            g->stats.waited++;
        if ((rc = snap_take(g, b, e, hour, &snap, err)))
            return rc;
        if (!(p = pending_put(b, p, e->id, ehash, hour, false, false, 0, &snap)))
            return oom(err, b);
    }
    p->live = !quiet;
    return 0;
}

/* Hour's earliest observation has just arrived: its waiting and weak vectors go out with it
 * (or, issued past the upgrade window, as their final weak selves). */
static int release(fx_t *g, fx_building_t *b, hvs_ms_t hour, const hvs_feat_wx_t *obs, bool quiet,
                   const fx_sink_t *sink, hvs_err_t *err) {
    bool in_window = obs->issued_at <= hour + g->conf.upgrade_window;
    hvs_ms_t deadline = hour + HOUR + g->conf.weather_wait;
    for (size_t i = 0; i < b->npend;) {
        if (b->keys[i].hour != hour) {
            i++;
            continue;
        }
        fx_pending_t *p = &b->pend[i];
        int rc = 0;
        dq_effect_t dq = {p->snap.revision == 0 && !p->weak, p->weak, p->missing};
        bool send = !quiet || p->live; /* else both replayed: the lost state had sent it */
        if (send && in_window)
            rc = send_pending(g, b, p, max_ms(hour + HOUR, obs->issued_at), ST_FULL, dq, NULL, sink,
                              err);
        else if (send && !(p->weak && p->settled && !p->unsent))
            rc = send_pending(g, b, p, deadline, ST_SETTLED, dq, NULL, sink, err);
        if (rc)
            return rc;
        if (pending_remove(b, p)) /* the last entry moved into i */
            return oom(err, b);
    }
    return 0;
}

/* The building's weather got newer: weak vectors sent before it passed their deadline go out
 * again complete; weak entries whose observation can no longer count are forgotten. */
static int settle(fx_t *g, fx_building_t *b, bool quiet, const fx_sink_t *sink, hvs_err_t *err) {
    for (size_t i = 0; i < b->npend;) {
        fx_pending_t *p = &b->pend[i];
        hvs_ms_t deadline = p->hour + HOUR + g->conf.weather_wait;
        if (p->weak && !p->settled && deadline < b->wx_time) {
            uint32_t mask = p->missing;
            dq_effect_t dq = {false, true, p->missing};
            bool send = !quiet || p->live;
            int rc = send ? send_pending(g, b, p, deadline, ST_SETTLED, dq, &mask, sink, err) : 0;
            if (rc)
                return rc;
            p->unsent = !send;
            p->settled = true;
            p->missing = mask;
            p->dirty = true;
        }
        if (p->weak && p->hour + g->conf.upgrade_window < b->wx_time) {
            if (pending_remove(b, p))
                return oom(err, b);
            continue;
        }
        i++;
    }
    return 0;
}

int fx_on_weather(fx_t *g, int32_t partition, const fx_weather_t *w, hvs_ms_t wm, bool quiet,
                  const fx_sink_t *sink, hvs_err_t *err) {
    (void)wm;
    g->stats.weather++;
    fx_building_t *b = fx_building(g, w->building, partition, true);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "state of %s", w->building);
    if (hvs_fs_put_weather(b->fs, w->hour, &w->rec) == 0)
        return 0;
    if (!quiet && b->live_wx == HVS_MS_NONE)
        b->live_wx = w->rec.issued_at; /* weather arrives in issue order: the rest is live too */
    bool newer = b->wx_time == HVS_MS_NONE || w->rec.issued_at > b->wx_time;
    if (newer)
        b->wx_time = w->rec.issued_at;
    int rc = 0;
    if (w->rec.observed) {
        const hvs_feat_wx_t *obs = observation(b, w->hour);
        if (obs && obs->issued_at == w->rec.issued_at) /* the first: later ones change nothing */
            rc = release(g, b, w->hour, obs, quiet, sink, err);
    }
    if (rc == 0 && newer)
        rc = settle(g, b, quiet, sink, err);
    return rc;
}

int fx_advance(fx_t *g, int32_t partition, hvs_ms_t wm, bool quiet, const fx_sink_t *sink,
               hvs_err_t *err) {
    if (wm == HVS_MS_NONE)
        return 0;
    for (size_t k = 0; k < g->n; k++) {
        fx_building_t *b = g->b[k];
        if (b->fs->partition != partition)
            continue;
        for (size_t i = 0; i < b->npend;) {
            fx_pending_t *p = &b->pend[i];
            hvs_ms_t deadline = p->hour + HOUR + g->conf.weather_wait;
            if (!p->weak && deadline <= wm) {
                bool settled = b->wx_time != HVS_MS_NONE && b->wx_time > deadline;
                uint32_t mask = 0;
                dq_effect_t dq = {p->snap.revision == 0, false, 0};
                g->stats.weak++;
                bool send = !quiet || p->live;
                int rc = send ? send_pending(g, b, p, deadline, settled ? ST_SETTLED : ST_WEAK, dq,
                                             &mask, sink, err)
                              : 0;
                if (rc)
                    return rc;
                p->unsent = !send;
                p->weak = true;
                p->settled = settled;
                p->missing = mask;
                p->dirty = true;
            }
            /* the weather lags the aggregates by more than the rule allows: stay weak */
            if (p->weak && b->agg_time != HVS_MS_NONE &&
                p->hour + (HVS_FS_HOURS - 72) * HOUR <= b->agg_time) {
                if (pending_remove(b, p))
                    return oom(err, b);
                continue;
            }
            i++;
        }
    }
    return 0;
}

int fx_flush_unsent(fx_t *g, int32_t partition, const fx_sink_t *sink, hvs_err_t *err) {
    for (size_t k = 0; k < g->n; k++) {
        fx_building_t *b = g->b[k];
        for (size_t i = 0; b->fs->partition == partition && i < b->npend; i++) {
            fx_pending_t *p = &b->pend[i];
            if (!p->unsent)
                continue;
            dq_effect_t dq = {false, false, 0};
            int rc = send_pending(g, b, p, p->hour + HOUR + g->conf.weather_wait,
                                  p->settled ? ST_SETTLED : ST_WEAK, dq, NULL, sink, err);
            if (rc)
                return rc;
            p->unsent = false;
        }
    }
    return 0;
}

/* ---- pending in Redis ----------------------------------------------------------------------- */

/*
 * A stored entry's value: 'B', then as Avro longs (zigzag varints) weak, settled, missing, the
 * snapshot's revision and flags and its count of entity features, then as Avro doubles (8 bytes,
 * little-endian) its target and those features. Binary because an entry that waits across a
 * save is written once an hour per entity: 23 doubles as exact text (%.17g for most) cost more
 * than computing the vector. Raw doubles, not pack.h's shorter ones: an entry lives about an
 * hour, and packing them cost ~0.4 us a waiting vector (~8 %, bench_features) for little memory. Text values ("<weak> <missing> ..."; they start with a digit) of
 * earlier versions still load.
 */
#define PEND_BINARY 'B'

static void pending_value(hvs_wire_out_t *w, const fx_pending_t *p) {
    hvs_wire_put_bytes(w, "B", 1);
    hvs_wire_put_long(w, p->weak);
    hvs_wire_put_long(w, p->settled);
    hvs_wire_put_long(w, p->missing);
    hvs_wire_put_long(w, p->snap.revision);
    hvs_wire_put_long(w, p->snap.flags);
    hvs_wire_put_long(w, HVS_FEATURES_ENTITY_COUNT);
    hvs_wire_put_double(w, p->snap.target);
    for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
        hvs_wire_put_double(w, p->snap.x[i]);
}

int fx_save_pending(hvs_redis_batch_t *batch, fx_building_t *b, hvs_err_t *err) {
    size_t ndirty = 0;
    for (size_t i = 0; i < b->npend; i++)
        ndirty += b->pend[i].dirty && b->pend[i].has_snap;
    if (!ndirty && !b->ngone)
        return 0;
    char key[700];
    if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fs:pend") < 0)
        return HVS_EINVAL;                                             /* err names the id */
    size_t argc = 2 + (b->ngone > 2 * ndirty ? b->ngone : 2 * ndirty); /* HDEL or HSET */
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    hvs_wire_out_t w = {0};
    int rc = !argv || !lens;
    if (!rc && b->ngone) { /* deletions first: an entry removed and added again is written */
        argv[0] = "HDEL";
        argv[1] = key;
        for (size_t i = 0; i < b->ngone; i++)
            argv[2 + i] = b->gone[i];
        rc = hvs_redis_batch_add(batch, (int)(2 + b->ngone), argv, NULL);
    }
    if (!rc && ndirty) {
        /* fields and values end to end in w; argv points into it once it stops growing */
        size_t k = 2;
        for (size_t i = 0; i < b->npend; i++) {
            fx_pending_t *p = &b->pend[i];
            if (!p->dirty || !p->has_snap)
                continue; /* an old entry without its part is left as stored */
            char f[HVS_READING_ID_MAX + 32];
            size_t start = w.len;
            hvs_wire_put_bytes(&w, f, (size_t)pending_field(f, sizeof f, p->entity, p->hour));
            lens[k++] = w.len - start;
            start = w.len;
            pending_value(&w, p);
            lens[k++] = w.len - start;
        }
        rc = w.oom;
        argv[0] = "HSET", lens[0] = 4;
        argv[1] = key, lens[1] = strlen(key);
        for (size_t j = 2, off = 0; !rc && j < k; off += lens[j++])
            argv[j] = (const char *)w.buf + off;
        if (!rc)
            rc = hvs_redis_batch_add(batch, (int)k, argv, lens);
    }
    free(argv);
    free(lens);
    hvs_wire_out_free(&w);
    if (rc)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    for (size_t i = 0; i < b->ngone; i++)
        free(b->gone[i]);
    b->ngone = 0;
    for (size_t i = 0; i < b->npend; i++) {
        b->pend[i].stored |= b->pend[i].dirty && b->pend[i].has_snap;
        b->pend[i].dirty = false;
    }
    return 0;
}

/* Entity features of feature set 1, whose saved entries still load (without their part). */
#define FX_ENTITY_COUNT_FS1 19

/* A binary entry (pending_value) into p; -1 if it does not parse. An entry of another feature
 * set's entity part loads without it (recomputed, as a text entry of feature set 1). */
static int pending_parse_binary(const char *v, size_t len, fx_pending_t *p) {
    hvs_wire_in_t in = hvs_wire_in(v + 1, len - 1);
    int64_t f[6];
    for (int i = 0; i < 6; i++)
        f[i] = hvs_wire_long(&in);
    if (in.bad || f[0] < 0 || f[0] > 1 || f[1] < 0 || f[1] > 1 || f[2] < 0 || f[2] > UINT32_MAX ||
        f[3] < 0 || f[3] > UINT32_MAX || f[4] < 0 || f[5] < 0 || f[5] > 1024 ||
        (size_t)(in.end - in.p) != 8 * (size_t)(1 + f[5]))
        return -1;
    p->weak = f[0] != 0;
    p->settled = f[1] != 0;
    p->missing = (uint32_t)f[2];
    p->snap.revision = (uint32_t)f[3];
    p->snap.flags = (unsigned)f[4] & HVS_FEAT_F_ENTITY;
    p->has_snap = f[5] == HVS_FEATURES_ENTITY_COUNT;
    p->snap.target = hvs_wire_double(&in);
    for (int i = 0; p->has_snap && i < HVS_FEATURES_ENTITY_COUNT; i++)
        p->snap.x[i] = hvs_wire_double(&in);
    return in.bad ? -1 : 0;
}

/* One stored entry's value into p (its entity and hour already set); -1 if it does not parse. */
static int pending_parse(const char *v, size_t len, fx_pending_t *p) {
    if (len > 0 && v[0] == PEND_BINARY)
        return pending_parse_binary(v, len, p);
    if (strlen(v) != len)
        return -1;
    char *end;
    unsigned long f[5];
    for (int i = 0; i < 5; i++) {
        errno = 0;
        f[i] = strtoul(v, &end, 10);
        if (end == v || errno || (*end != ' ' && *end != 0))
            return -1;
        v = end;
        if (i == 1 && *v == 0) { /* an older version's entry: "<weak> <missing>" */
            p->weak = f[0] != 0;
            p->missing = (uint32_t)f[1];
            p->has_snap = false;
            return 0;
        }
        if (*v == 0)
            return -1;
    }
    p->weak = f[0] != 0;
    p->missing = (uint32_t)f[1];
    p->settled = f[2] != 0;
    p->snap.revision = (uint32_t)f[3];
    p->snap.flags = (unsigned)f[4] & HVS_FEAT_F_ENTITY;
    double x[1 + HVS_FEATURES_ENTITY_COUNT];
    int n = 0;
    while (*v && n < 1 + HVS_FEATURES_ENTITY_COUNT) {
        if (*v != ' ')
            return -1;
        x[n++] = strtod(++v, &end);
        if (end == v)
            return -1;
        v = end;
    }
    if (*v)
        return -1;
    if (n == 1 + FX_ENTITY_COUNT_FS1) { /* saved by feature set 1: its part is recomputed */
        p->has_snap = false;
        return 0;
    }
    if (n != 1 + HVS_FEATURES_ENTITY_COUNT)
        return -1;
    p->snap.target = x[0];
    memcpy(p->snap.x, x + 1, sizeof p->snap.x);
    p->has_snap = true;
    return 0;
}

int fx_load_pending(hvs_redis_t *r, hvs_redis_batch_t *batch, fx_building_t *b, hvs_err_t *err) {
    char key[700];
    if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fs:pend") < 0)
        return HVS_EINVAL; /* err names the id */
    hvs_redis_batch_reset(batch);
    const char *a[] = {"HGETALL", key};
    if (hvs_redis_batch_add(batch, 2, a, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, batch, err);
    if (rc)
        return rc;
    const redisReply *h = hvs_redis_batch_reply(batch, 0);
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *sep = f ? strchr(f, '\x1f') : NULL;
        fx_pending_t got = {0};
        if (!sep || sep == f || (size_t)(sep - f) > HVS_READING_ID_MAX || !h->element[i + 1]->str ||
            pending_parse(h->element[i + 1]->str, h->element[i + 1]->len, &got))
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s: field %s does not parse", key,
                               f ? f : "(null)");
        char entity[HVS_READING_ID_MAX + 1];
        memcpy(entity, f, (size_t)(sep - f));
        entity[sep - f] = 0;
        hvs_ms_t hour = strtoll(sep + 1, NULL, 10);
        uint32_t hash = entity_hash(entity);
        if (!pending_put(b, pending_find(b, entity, hash, hour), entity, hash, hour, got.weak,
                         got.settled, got.missing, got.has_snap ? &got.snap : NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", key);
    }
    for (size_t i = 0; i < b->npend; i++) {
        b->pend[i].dirty = false;
        b->pend[i].stored = true;
    }
    return 0;
}
