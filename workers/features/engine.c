/* engine.c - the feature worker's state machine (see engine.h). */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/calendar.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define HOUR HVS_MS_HOUR

typedef struct cal_entry {
    char *region;
    hvs_calendar_t *cal;
} cal_entry_t;

struct fx {
    fx_config_t conf;
    const hvs_topology_t *topo;
    fx_building_t **b; /* sorted by id */
    size_t n, cap;
    cal_entry_t *cals;
    size_t ncals, capcals;
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
    return g;
}

static void building_free(fx_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->npend; i++)
        free(b->pend[i].entity);
    free(b->pend);
    hvs_fs_building_destroy(b->fs);
    free(b);
}

void fx_destroy(fx_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        building_free(g->b[i]);
    free(g->b);
    for (size_t i = 0; i < g->ncals; i++) {
        free(g->cals[i].region);
        hvs_calendar_destroy(g->cals[i].cal);
    }
    free(g->cals);
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
    dq_reset(b);
    memmove(&g->b[at + 1], &g->b[at], (g->n - at) * sizeof *g->b);
    g->b[at] = b;
    g->n++;
    *out = b;
    return 0;
}

fx_building_t *fx_building(fx_t *g, const char *id, int32_t partition, bool create) {
    bool found;
    size_t at = find(g, id, &found);
    if (found)
        return g->b[at];
    if (!create)
        return NULL;
    hvs_fs_building_t *fs = hvs_fs_building_new(id, partition);
    fx_building_t *b = NULL;
    if (!fs || insert(g, fs, &b))
        return NULL;
    return b;
}

int fx_adopt(fx_t *g, hvs_fs_building_t *fs) {
    bool found;
    size_t at = find(g, fs->id, &found);
    if (found) { /* replace what was there (a stale copy from an earlier assignment) */
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
    const char *region = tb && tb->holiday_region[0] ? tb->holiday_region : g->conf.default_region;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t i = 0; i < g->ncals; i++)
            if (strcmp(g->cals[i].region, region) == 0)
                return g->cals[i].cal;
        hvs_calendar_t *c = NULL;
        hvs_err_t err = {0};
        if (hvs_calendar_new(region, &c, &err) == 0) {
            cal_entry_t *nc = hvs_vec_grow(g->cals, &g->capcals, g->ncals + 1, sizeof *nc, 8);
            char *r = strdup(region);
            if (!nc || !r) {
                free(r);
                hvs_calendar_destroy(c);
                return NULL;
            }
            g->cals = nc;
            g->cals[g->ncals++] = (cal_entry_t){r, c};
            return c;
        }
        hvs_log_warn("features", "building %s: holiday region %s unknown, using %s", building,
                     region, g->conf.default_region);
        region = g->conf.default_region;
    }
    return NULL;
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

static int emit(fx_t *g, fx_building_t *b, hvs_fs_entity_t *e, hvs_ms_t hour, hvs_ms_t as_of,
                bool upgrade, uint32_t old_mask, uint32_t *mask_out, bool count,
                const fx_sink_t *sink, hvs_err_t *err) {
    hvs_ms_t commissioning;
    hvs_calendar_t *cal = calendar_of(g, b->fs->id, &commissioning);
    if (!cal)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "calendar for %s", b->fs->id);
    hvs_feat_history_t view;
    hvs_fs_view(b->fs, e, commissioning, &view);
    unsigned flags;
    hvs_features_compute(&view, cal, hour, as_of, g->x, &flags);
    const hvs_feat_hour_t *self = hvs_feat_hour_get(&view, hour);
    fx_vector_t v = {.building = b->fs->id,
                     .entity = e->id,
                     .hour = hour,
                     .as_of = as_of,
                     .x = g->x,
                     .flags = flags,
                     .target = self ? self->use : NAN,
                     .upgrade = upgrade};
    uint32_t mask = 0;
    for (int k = 0; k < g->conf.ndq; k++)
        if (isnan(g->x[g->conf.dq_features[k]]))
            mask |= 1u << k;
    if (mask_out)
        *mask_out = mask;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        g->stats.missing[i] += isnan(g->x[i]);
    g->stats.vectors++;
    g->stats.upgrades += upgrade;
    int rc = sink->vector ? sink->vector(sink->opaque, &v, err) : 0;
    if (rc == 0 && count)
        rc = dq_note(g, b, hour, mask, upgrade, old_mask, sink, err);
    return rc;
}

/* The observation of an hour that is known (the latest record, if it is one), or NULL. */
static const hvs_feat_wx_t *observation(const fx_building_t *b, hvs_ms_t hour) {
    const hvs_feat_wx_hour_t *w = hvs_fs_weather(b->fs, hour);
    for (int i = w ? w->n - 1 : -1; i >= 0; i--)
        if (w->v[i].observed)
            return &w->v[i];
    return NULL;
}

static hvs_ms_t max_ms(hvs_ms_t a, hvs_ms_t b) { return a > b ? a : b; }

static fx_pending_t *pending_find(fx_building_t *b, const char *entity, hvs_ms_t hour) {
    for (size_t i = 0; i < b->npend; i++)
        if (b->pend[i].hour == hour && strcmp(b->pend[i].entity, entity) == 0)
            return &b->pend[i];
    return NULL;
}

static void pending_remove(fx_building_t *b, fx_pending_t *p) {
    free(p->entity);
    *p = b->pend[--b->npend];
    b->pend_dirty = true;
}

static int pending_add(fx_building_t *b, const char *entity, hvs_ms_t hour, bool weak,
                       uint32_t missing) {
    fx_pending_t *p = pending_find(b, entity, hour);
    if (!p) {
        fx_pending_t *np = hvs_vec_grow(b->pend, &b->cappend, b->npend + 1, sizeof *np, 16);
        char *e = strdup(entity);
        if (!np || !e) {
            free(e);
            return HVS_ENOMEM;
        }
        b->pend = np;
        p = &b->pend[b->npend++];
        p->entity = e;
        p->hour = hour;
    }
    p->weak = weak;
    p->missing = missing;
    b->pend_dirty = true;
    return 0;
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
    /* data quality counts each hour's first vector (and its upgrade), not revisions */
    bool count = a->hour.revision == 0;
    const hvs_feat_wx_t *obs = observation(b, hour);
    fx_pending_t *p = pending_find(b, e->id, hour);
    bool weak_before = p && p->weak;
    uint32_t old = p ? p->missing : 0;
    if (obs) {
        if (p)
            pending_remove(b, p);
        return quiet ? 0
                     : emit(g, b, e, hour, max_ms(hour + HOUR, obs->issued_at), weak_before, old,
                            NULL, count, sink, err);
    }
    hvs_ms_t deadline = hour + HOUR + g->conf.weather_wait;
    if (wm != HVS_MS_NONE && deadline <= wm) {
        uint32_t mask = 0;
        g->stats.weak++;
        int rc = quiet ? 0
                       : emit(g, b, e, hour, deadline, weak_before, old, &mask, count, sink, err);
        return rc ? rc : pending_add(b, e->id, hour, true, mask);
    }
    if (!p)
        g->stats.waited++;
    return weak_before ? 0 : pending_add(b, e->id, hour, false, 0);
}

/* The hour's stored revision is its first (data quality counts it). */
static bool first_revision(const hvs_fs_entity_t *e, hvs_ms_t hour) {
    const hvs_feat_hour_t *s = &e->hours[hvs_feat_slot(hour, HVS_FS_HOURS)];
    return s->hour == hour && s->revision == 0;
}

int fx_on_weather(fx_t *g, int32_t partition, const fx_weather_t *w, hvs_ms_t wm, bool quiet,
                  const fx_sink_t *sink, hvs_err_t *err) {
    (void)wm;
    g->stats.weather++;
    fx_building_t *b = fx_building(g, w->building, partition, true);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "state of %s", w->building);
    if (hvs_fs_put_weather(b->fs, w->hour, &w->rec) == 0 || !w->rec.observed)
        return 0;
    const hvs_feat_wx_t *obs = observation(b, w->hour);
    if (!obs || obs->issued_at != w->rec.issued_at)
        return 0; /* an older observation than the one known */
    hvs_ms_t as_of = max_ms(w->hour + HOUR, obs->issued_at);
    for (size_t i = 0; i < b->npend;) {
        fx_pending_t *p = &b->pend[i];
        if (p->hour != w->hour) {
            i++;
            continue;
        }
        hvs_fs_entity_t *e = hvs_fs_entity(b->fs, p->entity, false);
        bool upgrade = p->weak;
        uint32_t old = p->missing;
        int rc = 0;
        if (e && !quiet)
            rc = emit(g, b, e, w->hour, as_of, upgrade, old, NULL, first_revision(e, w->hour), sink,
                      err);
        pending_remove(b, p); /* the last entry moved into i */
        if (rc)
            return rc;
    }
    return 0;
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
            if (p->weak && p->hour + g->conf.upgrade_window < wm) {
                pending_remove(b, p); /* no observation came: the weak vector stays */
                continue;
            }
            if (!p->weak && deadline <= wm) {
                hvs_fs_entity_t *e = hvs_fs_entity(b->fs, p->entity, false);
                uint32_t mask = 0;
                int rc = 0;
                g->stats.weak++;
                if (e && !quiet)
                    rc = emit(g, b, e, p->hour, deadline, false, 0, &mask,
                              first_revision(e, p->hour), sink, err);
                if (rc)
                    return rc;
                p->weak = true;
                p->missing = mask;
                b->pend_dirty = true;
            }
            i++;
        }
    }
    return 0;
}

/* ---- pending in Redis ----------------------------------------------------------------------- */

int fx_save_pending(hvs_redis_batch_t *batch, fx_building_t *b, hvs_err_t *err) {
    if (!b->pend_dirty)
        return 0;
    char key[700];
    if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fs:pend") < 0)
        return HVS_EINVAL; /* err names the id */
    const char *del[] = {"DEL", key};
    if (hvs_redis_batch_add(batch, 2, del, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    if (b->npend) {
        size_t argc = 2 + 2 * b->npend;
        const char **argv = malloc(argc * sizeof *argv);
        char *text = malloc(b->npend * (HVS_READING_ID_MAX + 64));
        if (!argv || !text) {
            free(argv);
            free(text);
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
        argv[0] = "HSET";
        argv[1] = key;
        size_t off = 0;
        for (size_t i = 0; i < b->npend; i++) {
            char *f = text + off;
            off += (size_t)sprintf(f, "%s\x1f%lld", b->pend[i].entity, (long long)b->pend[i].hour) +
                   1;
            char *v = text + off;
            off += (size_t)sprintf(v, "%d %u", b->pend[i].weak ? 1 : 0,
                                   (unsigned)b->pend[i].missing) +
                   1;
            argv[2 + 2 * i] = f;
            argv[3 + 2 * i] = v;
        }
        int rc = hvs_redis_batch_add(batch, (int)argc, argv, NULL);
        free(argv);
        free(text);
        if (rc)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    }
    b->pend_dirty = false;
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
        int weak;
        unsigned missing;
        if (!sep || sep == f || (size_t)(sep - f) > HVS_READING_ID_MAX || !h->element[i + 1]->str ||
            sscanf(h->element[i + 1]->str, "%d %u", &weak, &missing) != 2)
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s: field does not parse", key);
        char entity[HVS_READING_ID_MAX + 1];
        memcpy(entity, f, (size_t)(sep - f));
        entity[sep - f] = 0;
        if (pending_add(b, entity, strtoll(sep + 1, NULL, 10), weak != 0, missing))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", key);
    }
    b->pend_dirty = false;
    return 0;
}
