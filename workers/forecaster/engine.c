/*
 * engine.c - the forecaster's state machine (engine.h): issue scheduling, one forecast's
 * features, model choice, rules, intervals and out-of-distribution check, batched prediction,
 * and the live accuracy of every version that served.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/task_rows.h"
#include "hvs/topics.h" /* HVS_MAX_PARTITIONS */
#include "hvs/vec.h"

#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define FC_CAL_PRIOR 50.0 /* points' weight of the backtest's scale 1 in the calibration */

static const char *const flag_names[FC_FLAG_COUNT] = {"rules_only", "stale_weather",
                                                      "missing_weather", "out_of_distribution"};
static const char *const bucket_names[FC_BUCKETS] = {"h1_6", "h7_24", "h25_48", "h49_72",
                                                     "day_ahead"};
static const int bucket_lo[4] = {1, 7, 25, 49}, bucket_hi[4] = {6, 24, 48, 72};

const char *fc_flag_name(int i) { return i >= 0 && i < FC_FLAG_COUNT ? flag_names[i] : "?"; }
const char *fc_bucket_name(int b) { return b >= 0 && b < FC_BUCKETS ? bucket_names[b] : "?"; }

typedef struct ident {
    char *name;
    double wape; /* the version's backtest (day-ahead) WAPE; NaN unknown */
} ident_t;

/* A model version used in the current batch and what its records say of intervals. */
typedef struct batch_model {
    char name[200];
    hvs_model_ref_t *ref; /* NULL: none serves (or not usable) */
    uint16_t ident;
    double iv[4][3];   /* per horizon bucket: q10, q90, floor (NaN: none) */
    double t_lo, t_hi; /* the profile's temperature range (NaN: unknown) */
    float *rows;       /* FC_HORIZONS x ncols per job using it */
    size_t nrows, caprows;
} batch_model_t;

typedef struct job {
    fc_building_t *b;
    hvs_ms_t t;
    int model; /* index into the batch's models; -1: rules */
    size_t row0;
    unsigned flags;
    double area;
    double temp[FC_HORIZONS], ghi[FC_HORIZONS], hdh[FC_HORIZONS];
    /* the rules of a building without area (a kwh profile's site): seasonal naive, NaN where
     * its history knows no hour to repeat */
    double naive[FC_HORIZONS];
    bool naive_rules;
    bool quiet;
    bool again; /* made again after a revision: its accuracy points were recorded the first time */
    float past[FC_CAL_MAX_WINDOW]; /* actuals of the hours ending 1..window h before T (NaN) */
} job_t;

struct fc {
    fc_config_t conf;
    fc_callbacks_t cb;
    fc_building_t **b; /* sorted by id */
    size_t n, cap;
    hvs_calendars_t *cals;
    ident_t *idents;
    size_t nidents, capidents;
    fc_version_acc_t **v;
    size_t nv, capv;
    hvs_ms_t part_day[HVS_MAX_PARTITIONS];
    /* newest weather issued_at read on each partition, and of it what a rebuild replayed */
    hvs_ms_t part_wx[HVS_MAX_PARTITIONS], part_qwx[HVS_MAX_PARTITIONS];
    batch_model_t *models;
    size_t nmodels, capmodels;
    job_t *jobs;
    size_t njobs, capjobs;
    size_t ncols;
    int i_temp, i_ghi, i_hdh, i_hdh24, i_t24;
    fc_stats_t stats;
    /* the emitted forecast's buffers */
    hvs_ms_t out_t[FC_HORIZONS];
    double out_y[FC_HORIZONS], out_lo[FC_HORIZONS], out_hi[FC_HORIZONS];
    bool out_ood[FC_HORIZONS];
};

/* ---- setup ---------------------------------------------------------------------------------- */

int fc_new(const fc_config_t *conf, const fc_callbacks_t *cb, fc_t **out, hvs_err_t *err) {
    fc_t *g = calloc(1, sizeof *g);
    if (!g)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "forecaster");
    g->conf = *conf;
    g->cb = *cb;
    if (!(g->cals = hvs_calendars_new(conf->default_region, "forecaster"))) {
        free(g);
        return hvs_err_set(err, HVS_EINVAL, "bad_region",
                           "default holiday region %s unknown (or out of memory)",
                           conf->default_region);
    }
    g->ncols = hvs_taskrow_ncols(HVS_TASK_FORECAST);
    g->i_temp = hvs_features_index("temperature_c");
    g->i_ghi = hvs_features_index("shortwave_radiation_wm2");
    g->i_hdh = hvs_features_index("hdh");
    g->i_hdh24 = hvs_features_index("hdh_roll_24_mean");
    g->i_t24 = hvs_features_index("temp_roll_24_mean");
    for (int p = 0; p < HVS_MAX_PARTITIONS; p++)
        g->part_day[p] = g->part_wx[p] = g->part_qwx[p] = HVS_MS_NONE;
    *out = g;
    return 0;
}

static void building_free(fc_building_t *b) {
    if (!b)
        return;
    hvs_fs_building_destroy(b->fs);
    free(b->latest);
    free(b);
}

static void release_models(fc_t *g) {
    for (size_t i = 0; i < g->nmodels; i++) {
        hvs_registry_release(g->models[i].ref);
        free(g->models[i].rows);
    }
    g->nmodels = 0;
}

void fc_destroy(fc_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        building_free(g->b[i]);
    free(g->b);
    hvs_calendars_destroy(g->cals);
    for (size_t i = 0; i < g->nidents; i++)
        free(g->idents[i].name);
    free(g->idents);
    for (size_t i = 0; i < g->nv; i++)
        free(g->v[i]);
    free(g->v);
    release_models(g);
    free(g->models);
    free(g->jobs);
    free(g);
}

const fc_config_t *fc_config(const fc_t *g) { return &g->conf; }
fc_stats_t *fc_stats(fc_t *g) { return &g->stats; }

/* ---- buildings ------------------------------------------------------------------------------ */

static size_t find_building(const fc_t *g, const char *id, bool *found) {
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->b[mid]->fs->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void building_init(fc_building_t *b) {
    b->agg_time = b->wx_time = b->issued = b->since = b->ood_day = HVS_MS_NONE;
    b->next_run = b->q_agg = b->q_wx = b->loud_from = b->re_from = b->re_to = HVS_MS_NONE;
    for (int i = 0; i < FC_ACC_SLOTS; i++)
        b->acc[i].hour = HVS_MS_NONE;
}

static int insert_building(fc_t *g, fc_building_t *b, size_t at) {
    fc_building_t **nb = hvs_vec_grow(g->b, &g->cap, g->n + 1, sizeof *nb, 64);
    if (!nb)
        return HVS_ENOMEM;
    g->b = nb;
    memmove(&g->b[at + 1], &g->b[at], (g->n - at) * sizeof *g->b);
    g->b[at] = b;
    g->n++;
    return 0;
}

fc_building_t *fc_building(fc_t *g, const char *id, int32_t partition, bool create) {
    bool found;
    size_t at = find_building(g, id, &found);
    if (found)
        return g->b[at];
    if (!create)
        return NULL;
    fc_building_t *b = calloc(1, sizeof *b);
    if (!b || !(b->fs = hvs_fs_building_new_ns(id, partition, FC_NS)) ||
        !hvs_fs_entity(b->fs, HVS_FS_BUILDING, true) || insert_building(g, b, at)) {
        building_free(b);
        return NULL;
    }
    building_init(b);
    b->dirty = true;
    return b;
}

int fc_adopt(fc_t *g, fc_building_t *b) {
    bool found;
    size_t at = find_building(g, b->fs->id, &found);
    if (found) {
        building_free(g->b[at]);
        g->b[at] = b;
        return 0;
    }
    if (!hvs_fs_entity(b->fs, HVS_FS_BUILDING, true))
        return HVS_ENOMEM;
    return insert_building(g, b, at);
}

fc_building_t **fc_buildings(fc_t *g, size_t *n) {
    *n = g->n;
    return g->b;
}

void fc_drop_partition(fc_t *g, int32_t p) {
    size_t w = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->b[i]->fs->partition == p)
            building_free(g->b[i]);
        else
            g->b[w++] = g->b[i];
    }
    g->n = w;
    w = 0;
    for (size_t i = 0; i < g->nv; i++) {
        if (g->v[i]->partition == p)
            free(g->v[i]);
        else
            g->v[w++] = g->v[i];
    }
    g->nv = w;
    if (p >= 0 && p < HVS_MAX_PARTITIONS)
        g->part_day[p] = g->part_wx[p] = g->part_qwx[p] = HVS_MS_NONE;
}

/* ---- interned versions and their accuracy --------------------------------------------------- */

uint16_t fc_ident_intern(fc_t *g, const char *ident, double backtest_wape) {
    for (size_t i = 0; i < g->nidents; i++)
        if (strcmp(g->idents[i].name, ident) == 0) {
            if (isfinite(backtest_wape))
                g->idents[i].wape = backtest_wape;
            return (uint16_t)(i + 1);
        }
    if (g->nidents >= 65534)
        return 0;
    ident_t *ni = hvs_vec_grow(g->idents, &g->capidents, g->nidents + 1, sizeof *ni, 16);
    char *s = strdup(ident);
    if (!ni || !s) {
        free(s);
        return 0;
    }
    g->idents = ni;
    g->idents[g->nidents++] = (ident_t){s, backtest_wape};
    return (uint16_t)g->nidents;
}

const char *fc_ident(const fc_t *g, uint16_t id) {
    return id && id <= g->nidents ? g->idents[id - 1].name : NULL;
}

double fc_ident_backtest_wape(const fc_t *g, uint16_t id) {
    return id && id <= g->nidents ? g->idents[id - 1].wape : NAN;
}

fc_version_acc_t **fc_versions(fc_t *g, size_t *n) {
    *n = g->nv;
    return g->v;
}

fc_version_acc_t *fc_version(fc_t *g, uint16_t ident, int32_t partition, bool create) {
    for (size_t i = 0; i < g->nv; i++)
        if (g->v[i]->ident == ident && g->v[i]->partition == partition)
            return g->v[i];
    if (!create)
        return NULL;
    fc_version_acc_t **nv = hvs_vec_grow(g->v, &g->capv, g->nv + 1, sizeof *nv, 16);
    fc_version_acc_t *v = calloc(1, sizeof *v);
    if (!nv || !v) {
        free(v);
        return NULL;
    }
    g->v = nv;
    v->ident = ident;
    v->partition = partition;
    v->judged = HVS_MS_NONE;
    for (int b = 0; b < FC_BUCKETS; b++)
        for (int d = 0; d < FC_WAPE_DAYS; d++)
            v->d[b][d].day = HVS_MS_NONE;
    g->v[g->nv++] = v;
    return v;
}

static fc_wape_day_t *wape_day(fc_version_acc_t *v, int b, hvs_ms_t day) {
    fc_wape_day_t *d = &v->d[b][(size_t)(day / DAY) % FC_WAPE_DAYS];
    if (d->day != day)
        *d = (fc_wape_day_t){day, 0, 0, 0};
    return d;
}

double fc_live_wape(fc_t *g, uint16_t ident, int bucket, hvs_ms_t until, const int32_t *parts,
                    size_t nparts, int64_t *points) {
    double e = 0, y = 0;
    int64_t n = 0;
    hvs_ms_t from = until - (FC_WAPE_DAYS - 1) * DAY;
    for (size_t i = 0; i < g->nv; i++) {
        const fc_version_acc_t *v = g->v[i];
        bool in = !parts;
        for (size_t k = 0; parts && k < nparts; k++)
            in = in || parts[k] == v->partition;
        if (v->ident != ident || !in)
            continue;
        for (int d = 0; d < FC_WAPE_DAYS; d++) {
            const fc_wape_day_t *w = &v->d[bucket][d];
            if (w->day != HVS_MS_NONE && w->day >= from && w->day < until)
                e += w->e, y += w->y, n += w->n;
        }
    }
    if (points)
        *points = n;
    return n && y > 0 ? e / y : NAN;
}

/* A partition's aggregates entered day `day`: judge the days before for every version. */
static int judge(fc_t *g, int32_t p, hvs_ms_t day, bool quiet, hvs_err_t *err) {
    for (size_t i = 0; i < g->nv; i++) {
        fc_version_acc_t *v = g->v[i];
        if (v->partition != p || (v->judged != HVS_MS_NONE && v->judged >= day - DAY))
            continue;
        int64_t n;
        double w = fc_live_wape(g, v->ident, FC_DAY_AHEAD, day, &p, 1, &n);
        double bw = fc_ident_backtest_wape(g, v->ident);
        bool bad = n >= g->conf.drift_min_points && isfinite(w) && isfinite(bw) && bw > 0 &&
                   w > g->conf.degrade_factor * bw;
        v->bad_days = bad ? v->bad_days + 1 : 0;
        v->judged = day - DAY;
        v->dirty = true;
        if (!bad || v->bad_days != g->conf.degrade_days || quiet || !g->cb.alert)
            continue;
        const char *ident = fc_ident(g, v->ident);
        char entity[200], sw[32], sb[32], sn[32], sd[32];
        snprintf(entity, sizeof entity, "%s@p%d", ident, (int)p);
        snprintf(sw, sizeof sw, "%.4f", w);
        snprintf(sb, sizeof sb, "%.4f", bw);
        snprintf(sn, sizeof sn, "%lld", (long long)n);
        snprintf(sd, sizeof sd, "%d", v->bad_days);
        fc_alert_t a = {.building = "",
                        .type = HVS_ALERT_MODEL_DRIFT,
                        .entity = entity,
                        .model = ident,
                        .first_seen = day - DAY,
                        .score = bw > 0 ? w / bw : 0,
                        .evidence = {"live_day_ahead_wape", sw, "backtest_wape", sb, "points", sn,
                                     "bad_days", sd, NULL}};
        snprintf(a.summary, sizeof a.summary,
                 "%s: live day-ahead WAPE %.3f over 7 days is above %.1f x its backtest %.3f for "
                 "%d days (partition %d)",
                 ident, w, g->conf.degrade_factor, bw, v->bad_days, (int)p);
        g->stats.drift_alerts++;
        int rc = g->cb.alert(g->cb.opaque, &a, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- inputs --------------------------------------------------------------------------------- */

static hvs_ms_t hour_ceil(hvs_ms_t t) { return (t + HOUR - 1) / HOUR * HOUR; }

/* The earliest forecast run issued in (after, before) whose weather b holds for the 84 hours
 * from `after`'s (a run forecasts the hours after its issue), or NONE. */
static hvs_ms_t run_between(const fc_building_t *b, hvs_ms_t after, hvs_ms_t before) {
    hvs_ms_t best = HVS_MS_NONE, h0 = after / HOUR * HOUR - 6 * HOUR;
    for (int k = 0; k < 84; k++) {
        const hvs_feat_wx_hour_t *w = hvs_fs_weather(b->fs, h0 + (hvs_ms_t)k * HOUR);
        for (int i = 0; w && i < w->n; i++)
            if (!w->v[i].observed && w->v[i].issued_at > after && w->v[i].issued_at < before &&
                (best == HVS_MS_NONE || w->v[i].issued_at < best))
                best = w->v[i].issued_at;
    }
    return best;
}

/* The next issue time of b after its last one (NONE before its first aggregate): the next
 * boundary, or a forecast run issued before it (b->next_run, kept by fc_on_weather). */
static hvs_ms_t next_issue(const fc_t *g, const fc_building_t *b) {
    if (b->agg_time == HVS_MS_NONE)
        return HVS_MS_NONE;
    hvs_ms_t every = g->conf.every > 0 ? g->conf.every : HOUR;
    hvs_ms_t t = b->issued == HVS_MS_NONE ? b->agg_time : (b->issued / every + 1) * every;
    if (b->next_run != HVS_MS_NONE && b->next_run < t)
        t = b->next_run;
    return t;
}

/* Whether issue time t is made on what was read: the building's aggregates passed it, and its
 * weather did (weather comes in issue order) - or, when its weather lags, the weather of its
 * partition passed t + weather_wait (a building whose provider failed is not waited for once
 * the others' weather went on; a point of the partition's weather stream, not of how far the
 * aggregates topic happened to be read ahead). */
static bool ready_on(const fc_t *g, hvs_ms_t agg, hvs_ms_t wx, hvs_ms_t part_wx, hvs_ms_t t) {
    return agg != HVS_MS_NONE && agg >= t &&
           ((wx != HVS_MS_NONE && wx > t) ||
            (part_wx != HVS_MS_NONE && part_wx > t + g->conf.weather_wait));
}

static int32_t part_index(const fc_building_t *b) {
    int32_t p = b->fs->partition;
    return p >= 0 && p < HVS_MAX_PARTITIONS ? p : 0;
}

static bool ready(const fc_t *g, const fc_building_t *b, hvs_ms_t t) {
    return ready_on(g, b->agg_time, b->wx_time, g->part_wx[part_index(b)], t);
}

static int queue_issue(fc_t *g, fc_building_t *b, hvs_ms_t t, bool quiet, bool again,
                       hvs_err_t *err);

/* Queue every issue of b that is ready. An issue the inputs a rebuild replayed already made
 * ready was published before the loss: quiet. */
static int schedule(fc_t *g, fc_building_t *b, hvs_err_t *err) {
    for (;;) {
        hvs_ms_t t = next_issue(g, b);
        if (t == HVS_MS_NONE || !ready(g, b, t))
            return 0;
        bool quiet = ready_on(g, b->q_agg, b->q_wx, g->part_qwx[part_index(b)], t);
        int rc = g->conf.from != HVS_MS_NONE && t < g->conf.from
                     ? 0
                     : queue_issue(g, b, t, quiet, false, err);
        if (rc)
            return rc;
        b->issued = t;
        if (b->next_run != HVS_MS_NONE && b->next_run <= t)
            b->next_run = run_between(b, t, INT64_MAX);
        b->dirty = true;
    }
}

/* Make again, in time order, the issue times of b made in [from, to): the boundaries and the
 * forecast runs between them (found as schedule finds them), the latter also when the run was
 * read only after its time was passed (schedule then stepped over it; had its weather come
 * first, it would have been made). */
static int remake(fc_t *g, fc_building_t *b, hvs_ms_t from, hvs_ms_t to, bool quiet,
                  hvs_err_t *err) {
    hvs_ms_t every = g->conf.every > 0 ? g->conf.every : HOUR;
    if (b->issued == HVS_MS_NONE)
        return 0;
    if (b->since != HVS_MS_NONE && from <= b->since)
        from = b->since + 1;
    if (g->conf.from != HVS_MS_NONE && from < g->conf.from)
        from = g->conf.from;
    for (hvs_ms_t prev = from - 1;;) {
        hvs_ms_t next = (prev / every + 1) * every, run = run_between(b, prev, next);
        hvs_ms_t t = run != HVS_MS_NONE ? run : next;
        if (t >= to || t > b->issued)
            return 0;
        int rc = queue_issue(g, b, t, quiet, true, err);
        if (rc)
            return rc;
        g->stats.reissued++;
        prev = t;
    }
}

/* The end (exclusive) of the issue times that a change of hour h can reach: issues read hours up
 * to 169 h back (use lags and windows; weather lags 168 h), a calibrated one also the intervals
 * that issues up to window + 72 h before it made. */
static hvs_ms_t reach(const fc_t *g, hvs_ms_t h) {
    int cal = g->conf.interval_window_h;
    return h + (170 + (cal > 0 ? cal + FC_HORIZONS : 0)) * HOUR;
}

/* A late hour h (or a revision of it) changed what the issues made since know: make them again
 * (the latest forecast per issue time is then the same whenever it was read), from its end. */
static int reissue(fc_t *g, fc_building_t *b, hvs_ms_t h, bool quiet, hvs_err_t *err) {
    return remake(g, b, h + HOUR, reach(g, h), quiet, err);
}

/* Score the accuracy points of hour h of b against its actual. */
static int score_hour(fc_t *g, fc_building_t *b, hvs_ms_t h, double actual) {
    fc_acc_slot_t *s = &b->acc[(size_t)(h / HOUR) % FC_ACC_SLOTS];
    if (s->hour != h)
        return 0;
    for (int k = 0; k < FC_BUCKETS; k++) {
        if (!s->p[k].ident || !isfinite(actual))
            continue;
        fc_version_acc_t *v = fc_version(g, s->p[k].ident, b->fs->partition, true);
        if (!v)
            return HVS_ENOMEM;
        fc_wape_day_t *d = wape_day(v, k, hvs_time_day_start(h));
        d->e += fabs(actual - s->p[k].pred);
        d->y += fabs(actual);
        d->n++;
        v->dirty = true;
        g->stats.scored++;
    }
    s->hour = HVS_MS_NONE;
    memset(s->p, 0, sizeof s->p);
    size_t i = (size_t)(h / HOUR) % FC_ACC_SLOTS;
    b->acc_dirty[i / 64] |= 1ull << (i % 64);
    return 0;
}

int fc_on_aggregate(fc_t *g, int32_t partition, const char *building, const hvs_feat_hour_t *h,
                    bool quiet, hvs_err_t *err) {
    fc_building_t *b = fc_building(g, building, partition, true);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "building %s", building);
    hvs_fs_entity_t *e = hvs_fs_entity(b->fs, HVS_FS_BUILDING, true);
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "building %s", building);
    bool first = hvs_feat_hour_get(&(hvs_feat_history_t){e->hours, HVS_FS_HOURS, NULL, 0, 0},
                                   h->hour) == NULL;
    if (b->agg_time != HVS_MS_NONE &&
        h->hour + HOUR <= b->agg_time - (hvs_ms_t)HVS_FS_HOURS * HOUR) {
        g->stats.skipped_old++;
        return 0; /* older than the ring: nothing to learn from it */
    }
    if (b->agg_time == HVS_MS_NONE && b->issued == HVS_MS_NONE) {
        /* the building's first issue time is the first boundary at or after the end of its
         * first aggregate's hour - not wherever its aggregates have got to by the time the
         * weather lets an issue be made (that depended on how the two topics interleaved) */
        hvs_ms_t every = g->conf.every > 0 ? g->conf.every : HOUR;
        b->issued = b->since = (h->hour + HOUR + every - 1) / every * every - every;
        /* a run read before it, issued before the first issue time, is not one */
        if (b->next_run != HVS_MS_NONE && b->next_run <= b->issued)
            b->next_run = run_between(b, b->issued, INT64_MAX);
    }
    /* an hour an issue already made can read (late, or a revision - of the newest hour too,
     * which the issue as of its end read) changes the issues made since */
    bool late = b->issued != HVS_MS_NONE && h->hour + HOUR <= b->issued;
    int changed = hvs_fs_put_hour(e, h);
    int rc = 0;
    if (first && (rc = score_hour(g, b, h->hour, h->use)))
        return hvs_err_set(err, rc, "oom", "accuracy of %s", building);
    if (b->agg_time == HVS_MS_NONE || h->hour + HOUR > b->agg_time) {
        b->agg_time = h->hour + HOUR;
        b->dirty = true;
    }
    if (quiet && (b->q_agg == HVS_MS_NONE || h->hour + HOUR > b->q_agg))
        b->q_agg = h->hour + HOUR;
    if (partition >= 0 && partition < HVS_MAX_PARTITIONS) {
        hvs_ms_t day = hvs_time_day_start(h->hour);
        if (g->part_day[partition] == HVS_MS_NONE || day > g->part_day[partition]) {
            bool was = g->part_day[partition] != HVS_MS_NONE;
            g->part_day[partition] = day;
            if (was && (rc = judge(g, partition, day, quiet, err)))
                return rc;
        }
    }
    if (late && changed == 1 && (rc = reissue(g, b, h->hour, quiet, err)))
        return rc;
    return schedule(g, b, err);
}

int fc_on_weather(fc_t *g, int32_t partition, const char *building, hvs_ms_t hour,
                  const hvs_feat_wx_t *rec, bool quiet, hvs_err_t *err) {
    fc_building_t *b = fc_building(g, building, partition, true);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "building %s", building);
    /* past hours keep only what an issue can still ask for: the ring is as long as the
     * aggregates' (a weather slot older than it would be overwritten anyway) */
    int changed = hvs_fs_put_weather(b->fs, hour, rec);
    /* Weather issued by an issue time already made was read after it (the building's weather
     * lagged past weather_wait, or came out of order): the issues from its issue time that can
     * read the hour are made again at the flush, once for the batch's weather of b, as they
     * would have been had it come first - a run's own issue time among them. In issue order
     * an issue waits for weather issued after it, so this never happens. Before the first issue
     * is made (issued is still the boundary before it, `since`) there is nothing to make again:
     * the bench's weather read after the first aggregate made every building's first two issues
     * twice. */
    if (changed == 1 && b->issued != HVS_MS_NONE && b->issued != b->since &&
        rec->issued_at <= b->issued) {
        if (b->re_from == HVS_MS_NONE) {
            b->re_from = rec->issued_at, b->re_to = reach(g, hour), b->re_quiet = quiet;
        } else {
            b->re_from = rec->issued_at < b->re_from ? rec->issued_at : b->re_from;
            b->re_to = reach(g, hour) > b->re_to ? reach(g, hour) : b->re_to;
            b->re_quiet = b->re_quiet && quiet;
        }
    }
    if (b->wx_time == HVS_MS_NONE || rec->issued_at > b->wx_time) {
        b->wx_time = rec->issued_at;
        b->dirty = true;
    }
    if (quiet && (b->q_wx == HVS_MS_NONE || rec->issued_at > b->q_wx))
        b->q_wx = rec->issued_at;
    if (partition >= 0 && partition < HVS_MAX_PARTITIONS) {
        if (g->part_wx[partition] == HVS_MS_NONE || rec->issued_at > g->part_wx[partition])
            g->part_wx[partition] = rec->issued_at;
        if (quiet &&
            (g->part_qwx[partition] == HVS_MS_NONE || rec->issued_at > g->part_qwx[partition]))
            g->part_qwx[partition] = rec->issued_at;
    }
    /* a forecast run issued after the last issue is an issue time of its own */
    if (!rec->observed && (b->issued == HVS_MS_NONE || rec->issued_at > b->issued) &&
        (b->next_run == HVS_MS_NONE || rec->issued_at < b->next_run)) {
        b->next_run = rec->issued_at;
        b->dirty = true;
    }
    return schedule(g, b, err);
}

/* The issues late weather changed (fc_on_weather), then those whose building's own weather
 * lags but whose partition's weather passed them. */
static int schedule_all(fc_t *g, hvs_err_t *err) {
    for (size_t i = 0; i < g->n; i++) {
        fc_building_t *b = g->b[i];
        int rc = 0;
        if (b->re_from != HVS_MS_NONE) {
            rc = remake(g, b, b->re_from, b->re_to, b->re_quiet, err);
            b->re_from = b->re_to = HVS_MS_NONE;
        }
        if (rc || (rc = schedule(g, b, err)))
            return rc;
    }
    return 0;
}

/* ---- one issue ------------------------------------------------------------------------------ */

static bool columns_match(const hvs_model_ref_t *r) {
    /* the profile's scale (profile.h): per_heated_m2 for heat, kwh for a charging site */
    return hvs_model_ref_fits(r, HVS_TASK_FORECAST) &&
           r->target_scale == hvs_taskrow_scale(HVS_TASK_FORECAST);
}

static const char *const interval_keys[4] = {"interval_h1_6", "interval_h7_24", "interval_h25_48",
                                             "interval_h49_72"};

/* The batch's entry of a model name (acquired once per batch); -1 when none serves. */
static int batch_model(fc_t *g, const char *name) {
    for (size_t i = 0; i < g->nmodels; i++)
        if (strcmp(g->models[i].name, name) == 0)
            return g->models[i].ref ? (int)i : -1;
    batch_model_t *nm = hvs_vec_grow(g->models, &g->capmodels, g->nmodels + 1, sizeof *nm, 8);
    if (!nm)
        return -2;
    g->models = nm;
    batch_model_t *m = &g->models[g->nmodels++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->ref = g->cb.acquire ? g->cb.acquire(g->cb.opaque, name) : NULL;
    if (m->ref && !columns_match(m->ref)) {
        hvs_log_error("forecaster", "%s: not this build's forecast columns or scale: not used",
                      m->ref->ident);
        hvs_registry_release(m->ref);
        m->ref = NULL;
    }
    if (!m->ref)
        return -1;
    m->ident = fc_ident_intern(g, m->ref->ident, m->ref->metrics.wape);
    for (int b = 0; b < 4; b++) {
        const char *s = hvs_model_ref_param(m->ref, interval_keys[b]);
        m->iv[b][0] = m->iv[b][1] = m->iv[b][2] = NAN;
        if (s && sscanf(s, "%lf %lf %lf", &m->iv[b][0], &m->iv[b][1], &m->iv[b][2]) != 3)
            m->iv[b][0] = m->iv[b][1] = m->iv[b][2] = NAN;
    }
    m->t_lo = m->t_hi = NAN;
    for (size_t i = 0; i < m->ref->nfeatures; i++) {
        const hvs_feature_profile_t *p = &m->ref->profile[i];
        if (p->name && p->nq >= 2 && strcmp(p->name, "temperature_c") == 0)
            m->t_lo = p->quantiles[0], m->t_hi = p->quantiles[p->nq - 1];
    }
    return (int)(g->nmodels - 1);
}

/*
 * Seasonal naive from a building's own hours known at t (engine.h): each of the FC_HORIZONS
 * target hours from h0 repeats the mean of the same hour 1 and 2 weeks before, where its history
 * holds either; else the same hour on the nearest day before that ended by t (up to 3 days
 * back beyond the first it could be). Returns whether every target hour got a value (a site's
 * first days: not yet, out is then partly NaN).
 */
bool fc_seasonal_naive(const hvs_feat_history_t *view, hvs_ms_t t, hvs_ms_t h0,
                       double out[FC_HORIZONS]) {
    bool all = true;
    for (int k = 0; k < FC_HORIZONS; k++) {
        hvs_ms_t h = h0 + (hvs_ms_t)k * HOUR;
        double sum = 0;
        int n = 0;
        for (int w = 1; w <= 2; w++) { /* h - 1 week ends by t for every horizon up to 167 h */
            const hvs_feat_hour_t *x = hvs_feat_hour_get(view, h - (hvs_ms_t)w * 7 * HVS_MS_DAY);
            if (x && isfinite(x->use))
                sum += x->use, n++;
        }
        int first = (int)((h + HOUR - t + HVS_MS_DAY - 1) / HVS_MS_DAY); /* ended by t */
        for (int d = first < 1 ? 1 : first; n == 0 && d <= (first < 1 ? 1 : first) + 2; d++) {
            hvs_ms_t past = h - (hvs_ms_t)d * HVS_MS_DAY;
            const hvs_feat_hour_t *x = hvs_feat_hour_get(view, past);
            if (x && isfinite(x->use))
                sum += x->use, n++;
        }
        out[k] = n ? sum / n : NAN;
        all &= n > 0;
    }
    return all;
}

/* The model for a building at issue time t (engine.h); -1 rules, -2 ENOMEM. */
static int choose(fc_t *g, const char *building, const fc_info_t *in, hvs_ms_t t) {
    hvs_ms_t age = in->commissioning == HVS_MS_NONE ? INT64_MAX / 2 : t - in->commissioning;
    if (age < g->conf.mature_ms)
        return -1;
    char name[600];
    int m = -1;
    if (age >= g->conf.building_ms) {
        snprintf(name, sizeof name, "forecast/building:%s", building);
        m = batch_model(g, name);
    }
    if (m == -1 && in->archetype && in->archetype[0]) {
        snprintf(name, sizeof name, "forecast/archetype:%s", in->archetype);
        m = batch_model(g, name);
    }
    if (m == -1)
        m = batch_model(g, "forecast/global");
    return m;
}

static int queue_issue(fc_t *g, fc_building_t *b, hvs_ms_t t, bool quiet, bool again,
                       hvs_err_t *err) {
    fc_info_t in = {NAN, HVS_MS_NONE, "", ""};
    bool known = g->cb.info && g->cb.info(g->cb.opaque, b->fs->id, &in) == 0;
    bool area = in.area_m2 > 0 && isfinite(in.area_m2);
    /* a model of the profile's kwh scale (profile.h: a charging site) needs no area */
    bool scaled = !isnan(hvs_taskrow_divisor(HVS_TASK_FORECAST, in.area_m2));
    int m = -1;
    if (known && scaled) {
        m = choose(g, b->fs->id, &in, t);
        if (m == -2)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "models");
    }
    /* the rules are per m2 of heated area; a site of a kwh profile without one repeats its
     * own past (seasonal naive), once its history has an hour to repeat */
    bool naive = known && scaled && m < 0 && !area;
    hvs_feat_history_t view;
    hvs_fs_view(b->fs, hvs_fs_entity(b->fs, HVS_FS_BUILDING, false), in.commissioning, &view);
    double naive_y[FC_HORIZONS];
    bool too_young = naive && !fc_seasonal_naive(&view, t, hour_ceil(t), naive_y);
    if (too_young || (!naive && (!known || !scaled || (m < 0 && !area)))) {
        g->stats.no_area++;
        if (!b->warned)
            hvs_log_warn("forecaster", "building %s: not forecastable: %s", b->fs->id,
                         too_young ? "no model serves it yet, and without a heated area its "
                                     "rules repeat its own history: under a day of it so far"
                                   : "no heated area in topology (forecasts are per m2 of "
                                     "heated area)");
        b->warned = true;
        return 0;
    }
    hvs_calendar_t *cal = hvs_calendars_get(g->cals, in.region, b->fs->id);
    if (!cal)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "calendar for %s", b->fs->id);
    job_t *nj = hvs_vec_grow(g->jobs, &g->capjobs, g->njobs + 1, sizeof *nj, 64);
    if (!nj)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "issues");
    g->jobs = nj;
    /* Once this process published an issue time, every later version of it, and of the issue
     * times after it, is published too: a replayed late hour would otherwise leave the version
     * published without it as the latest. The issue times published during a rebuild are those
     * from the first one not ready on the replayed inputs on (ready_on is monotone in t and
     * the replayed inputs stop growing once one input is read live), so a single bound holds. */
    if (b->loud_from != HVS_MS_NONE && t >= b->loud_from)
        quiet = false;
    if (!quiet && (b->loud_from == HVS_MS_NONE || t < b->loud_from))
        b->loud_from = t;
    job_t *j = &g->jobs[g->njobs];
    *j = (job_t){.b = b,
                 .t = t,
                 .model = m,
                 .area = in.area_m2,
                 .quiet = quiet,
                 .again = again,
                 .naive_rules = naive};
    if (naive)
        memcpy(j->naive, naive_y, sizeof naive_y);
    float *rows = NULL;
    if (m >= 0) {
        batch_model_t *bm = &g->models[m];
        size_t need = (bm->nrows + FC_HORIZONS) * g->ncols;
        if (need > bm->caprows) {
            size_t cap = need * 2;
            float *nr = realloc(bm->rows, cap * sizeof *nr);
            if (!nr)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "rows");
            bm->rows = nr;
            bm->caprows = cap;
        }
        j->row0 = bm->nrows;
        rows = &bm->rows[bm->nrows * g->ncols];
        bm->nrows += FC_HORIZONS;
    } else {
        j->flags |= FC_F_RULES_ONLY;
    }
    /* the weather as known at t: the newest run issued by then, from the weather of the target
     * hours (a list of the newest runs seen would depend on how far ahead the weather topic was
     * read, and so would stale_weather) */
    hvs_ms_t h0 = hour_ceil(t), run = HVS_MS_NONE;
    for (int k = 0; k < FC_HORIZONS; k++) {
        const hvs_feat_wx_hour_t *w = hvs_fs_weather(b->fs, h0 + (hvs_ms_t)k * HOUR);
        for (int i = 0; w && i < w->n; i++)
            if (!w->v[i].observed && w->v[i].issued_at <= t &&
                (run == HVS_MS_NONE || w->v[i].issued_at > run))
                run = w->v[i].issued_at;
    }
    if (run == HVS_MS_NONE || t - run > g->conf.stale_after)
        j->flags |= FC_F_STALE_WEATHER;
    double x[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
    for (int k = 0; k < FC_HORIZONS; k++) {
        unsigned fl = 0;
        hvs_features_compute(&view, cal, h0 + (hvs_ms_t)k * HOUR, t, x, &fl);
        if (fl & HVS_FEAT_F_MISSING_WEATHER)
            j->flags |= FC_F_MISSING_WEATHER;
        j->temp[k] = x[g->i_temp];
        j->ghi[k] = x[g->i_ghi];
        j->hdh[k] = isfinite(x[g->i_hdh]) ? x[g->i_hdh] : x[g->i_hdh24];
        if (!isfinite(j->hdh[k]) && isfinite(x[g->i_t24]))
            j->hdh[k] = fmax(0, 18 - x[g->i_t24]);
        if (rows) {
            int rc = hvs_taskrow_build(HVS_TASK_FORECAST, x, in.area_m2, row, err);
            if (rc)
                return rc;
            for (size_t c = 0; c < g->ncols; c++)
                rows[(size_t)k * g->ncols + c] = (float)row[c];
        }
    }
    hvs_ms_t end = t / HOUR * HOUR; /* the end of the last hour complete at t */
    for (int i = 0; i < g->conf.interval_window_h; i++) {
        const hvs_feat_hour_t *ph = hvs_feat_hour_get(&view, end - (hvs_ms_t)(i + 1) * HOUR);
        j->past[i] = ph ? (float)ph->use : NAN;
    }
    g->njobs++;
    return 0;
}

static double rules_k(const fc_t *g, const char *archetype) {
    for (size_t i = 0; archetype && i < g->conf.nrules; i++)
        if (strcmp(g->conf.rules[i].archetype, archetype) == 0)
            return g->conf.rules[i].w_per_m2k;
    return g->conf.rules_default;
}

static int bucket_of(int horizon) {
    for (int b = 0; b < 4; b++)
        if (horizon >= bucket_lo[b] && horizon <= bucket_hi[b])
            return b;
    return 3;
}

/* Whether `horizon` is the point of its bucket sampled for target hour h (the one the hour's
 * number selects within the bucket): accuracy and calibration keep that point only. */
static bool sampled(hvs_ms_t h, int horizon) {
    int bk = bucket_of(horizon), w = bucket_hi[bk] - bucket_lo[bk] + 1;
    return horizon == bucket_lo[bk] + (int)((h / HOUR) % w);
}

/* Record the accuracy points of an emitted forecast (engine.h). */
static int record_points(fc_t *g, fc_building_t *b, hvs_ms_t t, uint16_t ident, int n) {
    if (!ident)
        return 0;
    const hvs_fs_entity_t *e = hvs_fs_entity(b->fs, HVS_FS_BUILDING, false);
    hvs_feat_history_t view = {e ? e->hours : NULL, e ? HVS_FS_HOURS : 0, NULL, 0, 0};
    for (int k = 0; k < n; k++) {
        hvs_ms_t h = g->out_t[k];
        int horizon = k + 1;
        size_t i = (size_t)(h / HOUR) % FC_ACC_SLOTS;
        fc_acc_slot_t *s = &b->acc[i];
        bool any = false;
        if (sampled(h, horizon)) {
            if (s->hour != h) {
                s->hour = h;
                memset(s->p, 0, sizeof s->p);
            }
            s->p[bucket_of(horizon)] = (fc_acc_point_t){(float)g->out_y[k], ident};
            any = true;
        }
        if (t == hvs_time_day_start(h) - 12 * HOUR) {
            if (s->hour != h) {
                s->hour = h;
                memset(s->p, 0, sizeof s->p);
            }
            s->p[FC_DAY_AHEAD] = (fc_acc_point_t){(float)g->out_y[k], ident};
            any = true;
        }
        if (!any)
            continue;
        b->acc_dirty[i / 64] |= 1ull << (i % 64);
        /* an issue made late (its weather lagged) may forecast hours already known: scored now,
         * as they would have been had the issue come first */
        const hvs_feat_hour_t *known = e ? hvs_feat_hour_get(&view, h) : NULL;
        int rc = known ? score_hour(g, b, h, known->use) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* The k-th smallest (0-based) of v[0..n): Hoare's selection, v reordered. */
static float select_kth(float *v, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                float x = v[i];
                v[i] = v[j], v[j] = x;
                i++, j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}


/* The interval scale of job j from its building's calibration slots (engine.h "Intervals"): the
 * buckets' points pooled (per bucket, the long horizons' few and old points made the 49-72 h
 * intervals lag: 74.6 % covered in test_fc_quality against 75.8 % pooled). */
static double cal_scale(const fc_t *g, const job_t *j) {
    float z[4 * FC_CAL_MAX_WINDOW];
    int n = 0;
    hvs_ms_t end = j->t / HOUR * HOUR;
    for (int i = 0; i < g->conf.interval_window_h; i++) {
        hvs_ms_t h = end - (hvs_ms_t)(i + 1) * HOUR;
        const fc_cal_slot_t *s = &j->b->cal[(size_t)(h / HOUR) % FC_CAL_HOURS];
        if (!isfinite(j->past[i]) || s->hour != (int32_t)(h / HOUR))
            continue;
        for (int k = 0; k < 4; k++)
            if (s->hi[k] > s->lo[k])
                z[n++] = fabsf(j->past[i] - 0.5f * (s->lo[k] + s->hi[k])) /
                         (0.5f * (s->hi[k] - s->lo[k]));
    }
    if (n == 0)
        return 1;
    int r = (int)ceil(0.8 * (n + 1)) - 1; /* the conformal rank */
    double q = select_kth(z, n, r < n ? r : n - 1);
    return fmin(fmax(((double)n * q + FC_CAL_PRIOR) / ((double)n + FC_CAL_PRIOR), 0.25), 4);
}

/* Keep the unscaled interval [lo, hi] of target hour h at horizon k + 1 where it is the
 * bucket's sampled point (the accuracy points' rule). */
static void cal_record(fc_building_t *b, hvs_ms_t h, int k, double lo, double hi) {
    if (!sampled(h, k + 1))
        return;
    int bk = bucket_of(k + 1);
    size_t i = (size_t)(h / HOUR) % FC_CAL_HOURS;
    fc_cal_slot_t *s = &b->cal[i];
    if (s->hour != (int32_t)(h / HOUR)) {
        s->hour = (int32_t)(h / HOUR);
        for (int q = 0; q < 4; q++)
            s->lo[q] = s->hi[q] = NAN;
    }
    s->lo[bk] = (float)lo, s->hi[bk] = (float)hi;
    b->cal_dirty[i / 64] |= 1ull << (i % 64);
}

double fc_point_kwh(hvs_target_scale_t s, double p, double area_m2, bool *nan) {
    double y = hvs_taskrow_to_kwh(s, p, area_m2);
    *nan = !isfinite(y);
    /* a model's NaN: never from NaN inputs alone (XGBoost takes missing) */
    return *nan ? 0 : fmax(0, y);
}

/* Emit job j whose model predictions (target units) are pred (NULL for rules). */
static int emit(fc_t *g, job_t *j, const float *pred, hvs_err_t *err) {
    fc_building_t *b = j->b;
    batch_model_t *bm = j->model >= 0 ? &g->models[j->model] : NULL;
    fc_info_t in = {NAN, HVS_MS_NONE, "", ""};
    if (!bm && g->cb.info)
        g->cb.info(g->cb.opaque, b->fs->id, &in);
    double k_rules = bm ? 0 : rules_k(g, in.archetype);
    hvs_ms_t h0 = hour_ceil(j->t), first_ood = HVS_MS_NONE, first_beyond = HVS_MS_NONE;
    unsigned flags = j->flags;
    double scale = bm && g->conf.interval_window_h > 0 ? cal_scale(g, j) : 1;
    int n = 0;
    for (int k = 0; k < FC_HORIZONS; k++) {
        hvs_ms_t h = h0 + (hvs_ms_t)k * HOUR;
        double y, lo = NAN, hi = NAN;
        bool ood = false;
        if (bm) {
            double p = pred[k];
            bool bad = false;
            y = fc_point_kwh(bm->ref->target_scale, p, j->area, &bad);
            if (bad)
                flags |= FC_F_MISSING_WEATHER;
            const double *iv = bm->iv[bucket_of(k + 1)];
            if (isfinite(iv[0])) {
                double s = fmax(p, 0) + iv[2];
                lo = hvs_taskrow_to_kwh(bm->ref->target_scale, p + iv[0] * s, j->area);
                hi = hvs_taskrow_to_kwh(bm->ref->target_scale, p + iv[1] * s, j->area);
                if (g->conf.interval_window_h > 0 && isfinite(lo) && isfinite(hi)) {
                    cal_record(b, h, k, lo, hi);
                    double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
                    lo = mid - scale * half, hi = mid + scale * half;
                }
            }
            if (k < g->conf.ood_horizon && isfinite(j->temp[k])) {
                const hvs_joint_histogram_t *jh = &bm->ref->joint;
                double gk = isfinite(j->ghi[k]) ? j->ghi[k] : 0;
                int64_t c = hvs_joint_histogram_count(jh, j->temp[k], gk, NULL, NULL);
                if (c >= 0 && jh->total > 0 &&
                    (double)c < g->conf.ood_min_share * (double)jh->total) {
                    ood = true;
                    g->stats.ood_joint++;
                }
                if (isfinite(bm->t_lo) && (j->temp[k] < bm->t_lo - g->conf.ood_margin_c ||
                                           j->temp[k] > bm->t_hi + g->conf.ood_margin_c)) {
                    ood = true;
                    g->stats.ood_range++;
                }
                /* the alert needs the first hour only: the scan of the bins stops there */
                if (first_beyond == HVS_MS_NONE && jh->total > 0 &&
                    hvs_joint_histogram_bracketed(
                        jh, j->temp[k], gk,
                        (int64_t)ceil(g->conf.ood_min_share * (double)jh->total), NULL,
                        NULL) == 0) {
                    g->stats.ood_beyond++;
                    first_beyond = h;
                }
            }
        } else if (j->naive_rules) {
            y = j->naive[k];
            lo = 0.5 * y, hi = 1.5 * y;
        } else {
            if (!isfinite(j->hdh[k])) {
                y = j->area * g->conf.rules_base / 1000.0;
                flags |= FC_F_MISSING_WEATHER;
            } else {
                y = j->area * (g->conf.rules_base + k_rules * j->hdh[k]) / 1000.0;
            }
            lo = 0.5 * y, hi = 1.5 * y;
        }
        if (!isfinite(y)) {
            flags |= FC_F_MISSING_WEATHER;
            y = 0; /* a model's NaN: never from NaN inputs alone (XGBoost takes missing) */
        }
        y = fmax(0, y);
        if (isfinite(lo))
            lo = fmin(fmax(0, lo), y);
        if (isfinite(hi))
            hi = fmax(hi, y);
        if (ood && first_ood == HVS_MS_NONE)
            first_ood = h;
        g->out_t[n] = h;
        g->out_y[n] = y, g->out_lo[n] = lo, g->out_hi[n] = hi, g->out_ood[n] = ood;
        n++;
    }
    if (first_ood != HVS_MS_NONE)
        flags |= FC_F_OOD;
    fc_forecast_t f = {.building = b->fs->id,
                       .partition = b->fs->partition,
                       .issued_at = j->t,
                       .model_name = bm ? bm->ref->name : "rules",
                       .model_version = bm ? bm->ref->version : 0,
                       .ident = bm ? bm->ref->ident : "rules",
                       .flags = flags,
                       .n = n,
                       .target = g->out_t,
                       .yhat = g->out_y,
                       .lower = g->out_lo,
                       .upper = g->out_hi,
                       .ood = g->out_ood};
    g->stats.issued++;
    g->stats.points += (uint64_t)n;
    g->stats.rules += bm ? 0 : 1;
    g->stats.ood_forecasts += first_ood != HVS_MS_NONE;
    for (int i = 0; i < FC_FLAG_COUNT; i++)
        g->stats.by_flag[i] += (flags >> i) & 1u;
    int rc = j->again ? 0 : record_points(g, b, j->t, bm ? bm->ident : 0, n);
    if (rc)
        return hvs_err_set(err, rc, "oom", "accuracy of %s", b->fs->id);
    rc = g->cb.forecast ? g->cb.forecast(g->cb.opaque, &f, j->quiet, err) : 0;
    if (rc)
        return rc;
    /* The alert, once per building and UTC day, only where the model extrapolates: a point
     * the training rows bracket on both sides is interpolated by a monotone model, however
     * thin its own bin (the flag above says that) */
    hvs_ms_t day = first_beyond == HVS_MS_NONE ? HVS_MS_NONE : hvs_time_day_start(first_beyond);
    if (day == HVS_MS_NONE || (b->ood_day != HVS_MS_NONE && b->ood_day >= day))
        return 0;
    b->ood_day = day;
    b->dirty = true;
    if (j->quiet || !g->cb.alert)
        return 0;
    int ki = (int)((first_beyond - h0) / HOUR);
    double tk = j->temp[ki], gk = isfinite(j->ghi[ki]) ? j->ghi[ki] : 0;
    const hvs_joint_histogram_t *jh = &bm->ref->joint;
    int64_t c = hvs_joint_histogram_count(jh, tk, gk, NULL, NULL), below = -1, above = -1;
    hvs_joint_histogram_bracketed(jh, tk, gk, 0, &below, &above);
    double total = jh->total > 0 ? (double)jh->total : NAN;
    char st[32], sg[32], sh[32], ss[16], sb[16], sa[16];
    snprintf(st, sizeof st, "%.1f", tk);
    snprintf(sg, sizeof sg, "%.0f", gk);
    snprintf(sh, sizeof sh, "%d", ki + 1);
    snprintf(ss, sizeof ss, "%.5f", c >= 0 ? (double)c / total : -1.0);
    snprintf(sb, sizeof sb, "%.5f", below >= 0 ? (double)below / total : -1.0);
    snprintf(sa, sizeof sa, "%.5f", above >= 0 ? (double)above / total : -1.0);
    fc_alert_t a = {.building = b->fs->id,
                    .type = HVS_ALERT_FORECAST_LOW_CONFIDENCE,
                    .entity = b->fs->id,
                    .model = bm->ref->ident,
                    .first_seen = first_beyond,
                    .score = 1,
                    .evidence = {"temperature_c", st, "shortwave_radiation_wm2", sg, "horizon_h",
                                 sh, "training_share", ss, "colder_darker_share", sb,
                                 "warmer_sunnier_share", sa, NULL}};
    int64_t min = (int64_t)ceil(g->conf.ood_min_share * (double)jh->total);
    const char *why = below < min ? "colder or darker than" : "warmer or sunnier than";
    snprintf(a.summary, sizeof a.summary,
             "forecast of %s extrapolates from %lld h ahead: %.1f degC at %.0f W/m2 is %s "
             "anything %s was trained on",
             b->fs->id, (long long)(ki + 1), tk, gk, why, bm->ref->ident);
    g->stats.low_confidence_alerts++;
    return g->cb.alert(g->cb.opaque, &a, err);
}

int fc_flush(fc_t *g, hvs_err_t *err) {
    int rc = schedule_all(g, err);
    if (rc)
        return rc;
    /* predictions per model, in chunks, into each model's own rows buffer's order */
    float **preds = calloc(g->nmodels ? g->nmodels : 1, sizeof *preds);
    if (!preds)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "predictions");
    for (size_t m = 0; m < g->nmodels && rc == 0; m++) {
        batch_model_t *bm = &g->models[m];
        if (!bm->ref || !bm->nrows)
            continue;
        if (!(preds[m] = malloc(bm->nrows * sizeof *preds[m]))) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "predictions");
            break;
        }
        for (size_t i = 0; i < bm->nrows && rc == 0; i += 4096) {
            size_t k = bm->nrows - i < 4096 ? bm->nrows - i : 4096;
            rc = hvs_model_predict(bm->ref->model, &bm->rows[i * g->ncols], k, &preds[m][i], err);
        }
    }
    for (size_t i = 0; i < g->njobs && rc == 0; i++) {
        job_t *j = &g->jobs[i];
        rc = emit(g, j, j->model >= 0 ? &preds[j->model][j->row0] : NULL, err);
    }
    for (size_t m = 0; m < g->nmodels; m++)
        free(preds[m]);
    free(preds);
    g->njobs = 0;
    release_models(g);
    return rc;
}
