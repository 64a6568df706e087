/*
 * engine.c - the refresher's ticks (engine.h).
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/lsq.h"
#include "hvs/model.h"
#include "hvs/task_rows.h"
#include "hvs/topics.h"
#include "hvs/vec.h"

#define HOUR HVS_MS_HOUR
#define Q RF_QUARTER_MS
#define NCOLS (RF_LAGS + 1) /* horizon_h, err_lag_1..3: the trainer's refresh rows */

static const char *const flag_names[RF_FLAG_COUNT] = {"online_correction", "missing_actuals",
                                                      "uncorrected"};
const char *rf_flag_name(int bit) {
    return bit >= 0 && bit < RF_FLAG_COUNT ? flag_names[bit] : "?";
}

/* ---- a string-keyed open-addressing table (buildings; a flush's model names) --------------- */

typedef struct strmap {
    const char **keys;
    void **vals;
    size_t cap, n; /* cap a power of two, n < cap / 2 */
} strmap_t;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void *map_get(const strmap_t *m, const char *k) {
    if (!m->cap)
        return NULL;
    for (size_t i = str_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (strcmp(m->keys[i], k) == 0)
            return m->vals[i];
    }
}

/* k is borrowed: it must live as long as its entry. */
static int map_put(strmap_t *m, const char *k, void *v) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        const char **keys = calloc(cap, sizeof *keys);
        void **vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = str_hash(m->keys[i]) & (cap - 1);
                while (keys[j])
                    j = (j + 1) & (cap - 1);
                keys[j] = m->keys[i], vals[j] = m->vals[i];
            }
        free(m->keys);
        free(m->vals);
        m->keys = keys, m->vals = vals, m->cap = cap;
    }
    size_t i = str_hash(k) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k, m->vals[i] = v;
    return 0;
}

static void map_clear(strmap_t *m) {
    if (m->cap) {
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        memset(m->vals, 0, m->cap * sizeof *m->vals);
    }
    m->n = 0;
}

static void map_free(strmap_t *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- the engine ------------------------------------------------------------------------------ */

typedef struct flush_model {
    char *name;
    hvs_model_ref_t *ref; /* NULL: none serves (or not usable) */
} flush_model_t;

struct rf {
    rf_config_t conf;
    rf_callbacks_t cb;
    strmap_t buildings;
    rf_partition_t *parts[HVS_MAX_PARTITIONS];
    rf_partition_t *plist[HVS_MAX_PARTITIONS];
    size_t nparts;
    char **names;
    size_t nnames, capnames;
    strmap_t models; /* name -> flush_model_t*, this flush's */
    flush_model_t **fm;
    size_t nfm, capfm;
    rf_stats_t stats;
};

int rf_new(const rf_config_t *c, const rf_callbacks_t *cb, rf_t **out, hvs_err_t *err) {
    rf_t *g = calloc(1, sizeof *g);
    if (!g)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher engine");
    g->conf = *c;
    g->cb = *cb;
    *out = g;
    return 0;
}

static void building_free(rf_building_t *b) {
    if (!b)
        return;
    free(b->base);
    free(b->id);
    free(b->latest);
    free(b);
}

static void release_models(rf_t *g) {
    for (size_t i = 0; i < g->nfm; i++) {
        if (g->fm[i]->ref)
            hvs_registry_release(g->fm[i]->ref);
        free(g->fm[i]->name);
        free(g->fm[i]);
    }
    g->nfm = 0;
    map_clear(&g->models);
}

void rf_destroy(rf_t *g) {
    if (!g)
        return;
    release_models(g);
    free(g->fm);
    map_free(&g->models);
    for (size_t i = 0; i < g->nparts; i++) {
        for (size_t k = 0; k < g->plist[i]->n; k++)
            building_free(g->plist[i]->b[k]);
        free(g->plist[i]->b);
        free(g->plist[i]);
    }
    map_free(&g->buildings);
    for (size_t i = 0; i < g->nnames; i++)
        free(g->names[i]);
    free(g->names);
    free(g);
}

rf_stats_t *rf_stats(rf_t *g) { return &g->stats; }

uint16_t rf_name_intern(rf_t *g, const char *name) {
    for (size_t i = 0; i < g->nnames; i++)
        if (strcmp(g->names[i], name) == 0)
            return (uint16_t)(i + 1);
    if (g->nnames >= UINT16_MAX)
        return 0;
    char **nn = hvs_vec_grow(g->names, &g->capnames, g->nnames + 1, sizeof *nn, 8);
    char *d = nn ? strdup(name) : NULL;
    if (!d)
        return 0;
    g->names = nn;
    g->names[g->nnames++] = d;
    return (uint16_t)g->nnames;
}

const char *rf_name(const rf_t *g, uint16_t id) {
    return id >= 1 && id <= g->nnames ? g->names[id - 1] : "";
}

rf_partition_t *rf_partition(rf_t *g, int32_t p, bool create) {
    if (p < 0 || p >= HVS_MAX_PARTITIONS)
        return NULL;
    if (g->parts[p] || !create)
        return g->parts[p];
    rf_partition_t *pt = calloc(1, sizeof *pt);
    if (!pt)
        return NULL;
    pt->p = p;
    pt->last_tick = pt->wm_agg = pt->wm_base = pt->q_agg = HVS_MS_NONE;
    g->parts[p] = pt;
    /* kept in partition order: ticks are made partition by partition */
    size_t i = g->nparts;
    while (i > 0 && g->plist[i - 1]->p > p) {
        g->plist[i] = g->plist[i - 1];
        i--;
    }
    g->plist[i] = pt;
    g->nparts++;
    return pt;
}

rf_partition_t **rf_partitions(rf_t *g, size_t *n) {
    *n = g->nparts;
    return g->plist;
}

static void hour_reset(rf_hour_t *s, int32_t hour) {
    s->hour = hour;
    s->bissued_min = INT32_MIN;
    s->base = NAN;
    for (int k = 0; k < 4; k++)
        s->q[k] = NAN;
}

rf_building_t *rf_building(rf_t *g, const char *id, int32_t partition, bool create) {
    rf_building_t *b = map_get(&g->buildings, id);
    if (b || !create)
        return b;
    rf_partition_t *pt = rf_partition(g, partition, true);
    if (!pt || !(b = calloc(1, sizeof *b)) || !(b->id = strdup(id))) {
        building_free(b);
        return NULL;
    }
    rf_building_t **nb = hvs_vec_grow(pt->b, &pt->cap, pt->n + 1, sizeof *nb, 64);
    if (!nb || map_put(&g->buildings, b->id, b)) {
        building_free(b);
        return NULL;
    }
    pt->b = nb;
    pt->b[pt->n++] = b;
    b->partition = partition;
    for (int i = 0; i < RF_RING_HOURS; i++)
        hour_reset(&b->ring[i], INT32_MIN);
    b->latest_tick = b->fit_h0 = b->rebuild_pub = b->last_tick = b->q_base = HVS_MS_NONE;
    b->tick_saved = HVS_MS_NONE;
    return b;
}

void rf_drop_partition(rf_t *g, int32_t p) {
    rf_partition_t *pt = rf_partition(g, p, false);
    if (!pt)
        return;
    size_t k = 0;
    for (; k < g->nparts && g->plist[k] != pt; k++)
        ;
    memmove(&g->plist[k], &g->plist[k + 1], (g->nparts - k - 1) * sizeof *g->plist);
    g->nparts--;
    g->parts[p] = NULL;
    for (size_t i = 0; i < pt->n; i++)
        building_free(pt->b[i]);
    free(pt->b);
    free(pt);
    /* the table is rebuilt from the buildings that stay */
    map_clear(&g->buildings);
    for (size_t i = 0; i < g->nparts; i++)
        for (size_t j = 0; j < g->plist[i]->n; j++)
            map_put(&g->buildings, g->plist[i]->b[j]->id, g->plist[i]->b[j]); /* fits: was larger */
}

/* ---- the ring ---------------------------------------------------------------------------- */

static int32_t hour_of(hvs_ms_t t) {
    return (int32_t)(t >= 0 ? t / HOUR : -((-t + HOUR - 1) / HOUR));
}
static hvs_ms_t floor_q(hvs_ms_t t) { return t - (((t % Q) + Q) % Q); }
static hvs_ms_t ceil_q(hvs_ms_t t) { return floor_q(t + Q - 1); }

static size_t ring_index(int32_t hour) {
    return (size_t)(((hour % RF_RING_HOURS) + RF_RING_HOURS) % RF_RING_HOURS);
}

static void mark(rf_building_t *b, size_t i) { b->ring_dirty[i / 64] |= 1ull << (i % 64); }

/* The slot of `hour`; with claim, an older hour's slot is taken over (NULL when the ring has
 * moved past it). */
static rf_hour_t *ring_slot(rf_building_t *b, int32_t hour, bool claim) {
    size_t i = ring_index(hour);
    rf_hour_t *s = &b->ring[i];
    if (s->hour == hour)
        return s;
    if (!claim || (s->hour != INT32_MIN && s->hour > hour))
        return NULL;
    hour_reset(s, hour);
    mark(b, i);
    return s;
}

/* actual - served baseline of an hour, kWh; NaN when a quarter or the baseline is missing. */
static double hour_error(const rf_building_t *b, int32_t hour) {
    const rf_hour_t *s = &b->ring[ring_index(hour)];
    if (s->hour != hour || !isfinite(s->base))
        return NAN;
    double a = 0;
    for (int k = 0; k < 4; k++) {
        if (!isfinite(s->q[k]))
            return NAN;
        a += s->q[k];
    }
    return a - s->base;
}

static int make_tick(rf_t *g, rf_building_t *b, hvs_ms_t t, bool again, bool quiet, hvs_err_t *err);
static int advance(rf_t *g, rf_partition_t *pt, hvs_err_t *err);
static int advance_building(rf_t *g, rf_partition_t *pt, rf_building_t *b, int *pending,
                            hvs_err_t *err);

/* Tick t of building b while its partition rebuilds (engine.h): quiet when `replayed` (the
 * replayed inputs alone asked for it) and the rebuild has not published t or an earlier tick of
 * b; a tick published is noted. */
static bool rebuild_quiet(rf_building_t *b, hvs_ms_t t, bool rebuilding, bool replayed) {
    if (!rebuilding)
        return false;
    if (replayed && (b->rebuild_pub == HVS_MS_NONE || t < b->rebuild_pub))
        return true;
    if (b->rebuild_pub == HVS_MS_NONE || t < b->rebuild_pub)
        b->rebuild_pub = t;
    return false;
}

/* A late input changed what the building's ticks from `from` to `upto` read (HVS_MS_NONE: to
 * the last tick): make them again now (at most `reissue` back from the last tick), before any
 * later input changes more. */
static int remake(rf_t *g, rf_building_t *b, const rf_partition_t *pt, hvs_ms_t from, hvs_ms_t upto,
                  bool quiet, hvs_err_t *err) {
    if (b->last_tick == HVS_MS_NONE || from > b->last_tick)
        return 0;
    if (upto == HVS_MS_NONE || upto > b->last_tick)
        upto = b->last_tick;
    from = ceil_q(from);
    if (from < b->last_tick - g->conf.reissue)
        from = ceil_q(b->last_tick - g->conf.reissue);
    bool rebuilding = g->cb.quiet && g->cb.quiet(g->cb.opaque, pt->p);
    int rc = 0;
    for (hvs_ms_t t = from; t <= upto && rc == 0; t += Q)
        rc = make_tick(g, b, t, true, rebuild_quiet(b, t, rebuilding, quiet), err);
    return rc;
}

int rf_on_quarter(rf_t *g, int32_t p, const char *building, hvs_ms_t start, double kwh, bool quiet,
                  hvs_err_t *err) {
    rf_building_t *b = rf_building(g, building, p, true);
    rf_partition_t *pt = rf_partition(g, p, false);
    if (!b || !pt)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher building %s", building);
    int32_t hour = hour_of(start);
    int k = (int)((start - (hvs_ms_t)hour * HOUR) / Q);
    hvs_ms_t end = start + Q;
    bool moved = pt->wm_agg == HVS_MS_NONE || end > pt->wm_agg;
    if (moved)
        pt->wm_agg = end, pt->dirty = true;
    if (quiet && (pt->q_agg == HVS_MS_NONE || end > pt->q_agg))
        pt->q_agg = end;
    rf_hour_t *s = ring_slot(b, hour, true);
    float v = isfinite(kwh) ? (float)kwh : NAN;
    if (!s || (isnan(v) && isnan(s->q[k])) || v == s->q[k]) /* older than the ring, or no change */
        return moved ? advance(g, pt, err) : 0;
    s->q[k] = v;
    mark(b, ring_index(hour));
    if (b->fit_h0 != HVS_MS_NONE && (hvs_ms_t)hour * HOUR < b->fit_h0)
        b->fit_h0 = HVS_MS_NONE;
    int rc = remake(g, b, pt, end, HVS_MS_NONE, quiet, err);
    return rc || !moved ? rc : advance(g, pt, err); /* ticks wait on the watermark alone */
}

/* ---- the kept baselines ---------------------------------------------------------------------- */

rf_baseline_t *rf_base_append(rf_building_t *b) {
    if (b->nbase >= RF_BASELINES_MAX)
        return NULL;
    rf_baseline_t *nb = hvs_vec_grow(b->base, &b->capbase, b->nbase + 1, sizeof *nb, 4);
    if (!nb)
        return NULL;
    b->base = nb;
    rf_baseline_t *k = &b->base[b->nbase++];
    memset(k, 0, sizeof *k);
    return k;
}

/* The slot of a baseline issued at `issued` into *out (newest first; the one of that issue time
 * is reused; NULL when it is older than every one kept and RF_BASELINES_MAX are), the oldest
 * dropped beyond RF_BASELINES_MAX. -1 on ENOMEM. */
static int base_slot(rf_building_t *b, hvs_ms_t issued, rf_baseline_t **out) {
    size_t at = 0;
    *out = NULL;
    while (at < b->nbase && b->base[at].issued_at > issued)
        at++;
    if (at < b->nbase && b->base[at].issued_at == issued) {
        *out = &b->base[at];
        return 0;
    }
    if (at == RF_BASELINES_MAX)
        return 0;
    if (b->nbase == RF_BASELINES_MAX) {
        hvs_log_warn("refresher",
                     "building %s: %d baselines kept, the oldest (issued %lld) dropped: baselines "
                     "read that far ahead of the quarters",
                     b->id, RF_BASELINES_MAX, (long long)b->base[b->nbase - 1].issued_at);
        b->nbase--;
    }
    if (!rf_base_append(b))
        return -1;
    memmove(&b->base[at + 1], &b->base[at], (b->nbase - 1 - at) * sizeof b->base[0]);
    *out = &b->base[at];
    return 0;
}

/* Whether two kept baselines are the same (NaN equal to NaN). */
static bool feq(float a, float c) { return a == c || (isnan(a) && isnan(c)); }
static bool base_equal(const rf_baseline_t *a, const rf_baseline_t *c) {
    if (a->issued_at != c->issued_at || a->first_hour != c->first_hour ||
        a->version != c->version || a->model != c->model || a->npoints != c->npoints)
        return false;
    for (int i = 0; i < a->npoints; i++)
        if (!feq(a->yhat[i], c->yhat[i]) || !feq(a->lo[i], c->lo[i]) || !feq(a->hi[i], c->hi[i]))
            return false;
    return true;
}

/* Drop the baselines no tick can serve any more: older than the newest issued at or before the
 * earliest tick a late input can make again (the building's last tick - reissue). */
static void base_prune(const rf_t *g, rf_building_t *b) {
    if (b->last_tick == HVS_MS_NONE)
        return;
    hvs_ms_t first = ceil_q(b->last_tick - g->conf.reissue);
    size_t keep = 0;
    while (keep < b->nbase && b->base[keep].issued_at > first)
        keep++;
    if (keep < b->nbase)
        keep++; /* the newest at or before it */
    if (keep < b->nbase) {
        b->nbase = keep;
        b->base_dirty = true;
    }
}

int rf_on_baseline(rf_t *g, int32_t p, const char *building, const rf_baseline_in_t *in, bool quiet,
                   hvs_err_t *err) {
    rf_building_t *b = rf_building(g, building, p, true);
    rf_partition_t *pt = rf_partition(g, p, false);
    uint16_t name = rf_name_intern(g, in->model_name);
    if (!b || !pt || !name)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher baseline of %s", building);
    if (pt->wm_base == HVS_MS_NONE || in->issued_at > pt->wm_base)
        pt->wm_base = in->issued_at, pt->dirty = true;
    if (quiet && (b->q_base == HVS_MS_NONE || in->issued_at > b->q_base))
        b->q_base = in->issued_at;
    int pending = -1;
    if (in->npoints == 0)
        return advance_building(g, pt, b, &pending, err);
    /* kept for serving: newest first, one per issue time (those no tick can serve any more are
     * pruned once the ticks moved on) */
    rf_baseline_t kept = {0}, *k;
    kept.issued_at = in->issued_at;
    kept.first_hour = in->target_hour[0];
    kept.version = in->version;
    kept.model = name;
    for (size_t i = 0; i < in->npoints && i < RF_BASE_POINTS; i++) {
        if (in->target_hour[i] != kept.first_hour + (hvs_ms_t)i * HOUR)
            break; /* contiguous hours only */
        kept.yhat[i] = (float)in->yhat[i];
        kept.lo[i] = isfinite(in->lo[i]) ? (float)in->lo[i] : NAN;
        kept.hi[i] = isfinite(in->hi[i]) ? (float)in->hi[i] : NAN;
        kept.npoints = (uint8_t)(i + 1);
    }
    bool full = b->nbase == RF_BASELINES_MAX;
    size_t before = b->nbase;
    if (base_slot(b, in->issued_at, &k))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher baseline of %s", building);
    /* The ticks it serves as B (engine.h: the newest issued by the tick that forecasts its hour),
     * [from, upto], when it is new or differs from the one kept of its issue time: a forecaster
     * that publishes an issue again unchanged (it does after every late or revised hour) makes
     * nothing again. Dropping the oldest kept (full) may change any tick: all from its issue. */
    hvs_ms_t from = HVS_MS_NONE, upto = HVS_MS_NONE;
    if (k) {
        bool fresh = b->nbase != before || full || !base_equal(k, &kept);
        *k = kept;
        if (fresh) {
            b->base_dirty = true;
            size_t at = (size_t)(k - b->base);
            from = kept.first_hour > in->issued_at ? kept.first_hour : ceil_q(in->issued_at);
            for (size_t i = 0; i < at && !full; i++) { /* newer ones take over from */
                hvs_ms_t n = b->base[i].first_hour > b->base[i].issued_at
                                 ? b->base[i].first_hour
                                 : ceil_q(b->base[i].issued_at);
                if (upto == HVS_MS_NONE || n - Q < upto)
                    upto = n - Q;
            }
            if (full)
                from = in->issued_at;
            if (upto != HVS_MS_NONE && upto < from)
                from = upto = HVS_MS_NONE; /* superseded before it serves any tick */
        }
        base_prune(g, b);
    }
    /* served baselines: an hour's is the newest baseline issued at or before its start */
    int32_t issued_min = (int32_t)(in->issued_at / 60000);
    for (size_t i = 0; i < in->npoints && i < RF_BASE_POINTS; i++) {
        int32_t hour = hour_of(in->target_hour[i]);
        if (in->target_hour[i] < in->issued_at)
            continue;
        rf_hour_t *s = ring_slot(b, hour, true);
        if (!s || s->bissued_min > issued_min)
            continue;
        float v = (float)in->yhat[i];
        if (s->bissued_min == issued_min && v == s->base)
            continue;
        s->base = v;
        s->bissued_min = issued_min;
        mark(b, ring_index(hour));
        if (b->fit_h0 != HVS_MS_NONE && (hvs_ms_t)hour * HOUR < b->fit_h0)
            b->fit_h0 = HVS_MS_NONE;
        /* an hour's served baseline is read by the ticks after it (its error: the lags and the
         * online fit), to the last tick */
        hvs_ms_t after = (hvs_ms_t)hour * HOUR + HOUR;
        if (from == HVS_MS_NONE || after < from)
            from = after;
        upto = b->last_tick;
    }
    int rc = from != HVS_MS_NONE ? remake(g, b, pt, from, upto, quiet, err) : 0;
    return rc ? rc : advance_building(g, pt, b, &pending, err);
}

/* ---- the correction ------------------------------------------------------------------------ */

static bool columns_match(const hvs_model_ref_t *r) {
    size_t n;
    const char *const *cols = hvs_taskrow_columns(HVS_TASK_REFRESH, &n);
    if (r->nfeatures != n || r->target_scale != hvs_taskrow_scale(HVS_TASK_REFRESH))
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->features[i], cols[i]) != 0)
            return false;
    return true;
}

/* The refresh model of a baseline's scope for this flush (forecast/<scope> -> refresh/<scope>);
 * NULL when none serves. -1 on ENOMEM. */
static int flush_model(rf_t *g, const char *baseline_model, hvs_model_ref_t **out) {
    *out = NULL;
    if (strncmp(baseline_model, "forecast/", 9) != 0)
        return 0; /* the rules: no model was fitted on their errors */
    char name[600];
    snprintf(name, sizeof name, "refresh/%s", baseline_model + 9);
    flush_model_t *m = map_get(&g->models, name);
    if (!m) {
        flush_model_t **nf = hvs_vec_grow(g->fm, &g->capfm, g->nfm + 1, sizeof *nf, 16);
        if (!nf)
            return -1;
        g->fm = nf;
        if (!(m = calloc(1, sizeof *m)) || !(m->name = strdup(name))) {
            free(m);
            return -1;
        }
        g->fm[g->nfm++] = m;
        if (map_put(&g->models, m->name, m))
            return -1;
        m->ref = g->cb.acquire ? g->cb.acquire(g->cb.opaque, name) : NULL;
        if (m->ref && !columns_match(m->ref)) {
            hvs_log_error("refresher", "%s: not this build's refresh columns or scale: not used",
                          m->ref->ident);
            hvs_registry_release(m->ref);
            m->ref = NULL;
        }
    }
    *out = m->ref;
    return 0;
}

/*
 * The online fit at H0 (engine.h): per horizon h, rows over the ring's hours X < H0 whose error
 * is known, inputs the errors of the three hours before X - (h - 1) (per m2, NaN as 0, as the
 * trainer's), weight forget^(age in hours), a ridge on the lags scaled to their mean square.
 */
static void online_fit(const rf_t *g, rf_building_t *b, hvs_ms_t h0, double area) {
    if (b->fit_h0 == h0)
        return;
    b->fit_h0 = h0;
    b->fit_ok = 0;
    int32_t H = hour_of(h0);
    double e[RF_RING_HOURS + RF_LAGS + RF_HORIZONS];
    int32_t from = H - RF_RING_HOURS;
    for (int i = 0; i < RF_RING_HOURS; i++)
        e[i] = hour_error(b, from + i) / area; /* e[i]: hour from + i */
    for (int h = 1; h <= RF_HORIZONS; h++) {
        double a[NCOLS * NCOLS] = {0}, y[NCOLS] = {0};
        int rows = 0;
        double w = 1;
        for (int32_t X = H - 1; X >= from; X--, w *= g->conf.forget) {
            double t = e[X - from];
            if (!isfinite(t))
                continue;
            int32_t inst = X - (h - 1);
            double z[NCOLS] = {1};
            for (int k = 1; k <= RF_LAGS; k++) {
                int32_t lh = inst - k;
                double v = lh >= from ? e[lh - from] : NAN;
                z[k] = isfinite(v) ? v : 0;
            }
            for (int p = 0; p < NCOLS; p++) {
                for (int q = 0; q < NCOLS; q++)
                    a[p * NCOLS + q] += w * z[p] * z[q];
                y[p] += w * z[p] * t;
            }
            rows++;
        }
        if (rows < g->conf.online_min)
            continue;
        double tr = 0;
        for (int p = 1; p < NCOLS; p++)
            tr += a[p * NCOLS + p];
        for (int p = 1; p < NCOLS; p++)
            a[p * NCOLS + p] += g->conf.ridge * tr / RF_LAGS + 1e-12;
        double x[NCOLS];
        if (hvs_lsq_solve(NCOLS, a, y, x))
            continue;
        memcpy(b->fit[h - 1], x, sizeof x);
        b->fit_ok |= (uint8_t)(1u << (h - 1));
    }
}

/* kWh to the 0.1 Wh published (engine.h): finer than any heat meter, and written exactly in
 * a few digits (fmt.h's fast path; a tick formats NB of them). */
static double wh(double kwh) { return isfinite(kwh) ? round(kwh * 1e4) / 1e4 : kwh; }

/* One tick of one building (engine.h). */
static int make_tick(rf_t *g, rf_building_t *b, hvs_ms_t t, bool again, bool quiet,
                     hvs_err_t *err) {
    /* the newest baseline issued by t that forecasts the tick's hour (a run issued at 10:10
     * starts at 11:00: the ticks of 10:15-10:45 keep the 10:00 one) */
    hvs_ms_t h0 = t - (((t % HOUR) + HOUR) % HOUR);
    const rf_baseline_t *B = NULL;
    for (size_t i = 0; i < b->nbase && !B; i++)
        if (b->base[i].issued_at <= t && b->base[i].first_hour <= h0)
            B = &b->base[i];
    if (!B) {
        g->stats.no_baseline++;
        return 0;
    }
    rf_info_t in = {NAN, NULL};
    /* errors and corrections in the forecast's target units: per m2 of heated area (heat), or
     * the site's kWh under a kwh profile (profile.h), where no area is needed */
    double area = NAN;
    if (g->cb.info && g->cb.info(g->cb.opaque, b->id, &in) == 0)
        area = hvs_taskrow_divisor(HVS_TASK_REFRESH, in.area_m2);
    if (!(area > 0) || !isfinite(area)) {
        g->stats.no_area++;
        if (!b->warned)
            hvs_log_warn("refresher",
                         "building %s: not refreshed: no heated area in topology (the correction "
                         "is per m2 of heated area)",
                         b->id);
        b->warned = true;
        return 0;
    }
    int32_t H = hour_of(h0);
    rf_refresh_t r = {.building = b->id,
                      .partition = b->partition,
                      .issued_at = t,
                      .baseline_issued_at = B->issued_at,
                      .baseline_version = B->version,
                      .baseline_model = rf_name(g, B->model),
                      .again = again};
    double lag[RF_LAGS];
    for (int k = 1; k <= RF_LAGS; k++) {
        lag[k - 1] = hour_error(b, H - k) / area;
        if (!isfinite(lag[k - 1]))
            r.flags |= RF_F_MISSING_ACTUALS;
    }
    double corr[RF_HORIZONS] = {0};
    hvs_model_ref_t *ref;
    if (flush_model(g, r.baseline_model, &ref))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresh model for %s", b->id);
    if (ref) {
        float x[RF_HORIZONS * NCOLS], out[RF_HORIZONS];
        for (int h = 1; h <= RF_HORIZONS; h++) {
            x[(h - 1) * NCOLS] = (float)h;
            for (int k = 0; k < RF_LAGS; k++)
                x[(h - 1) * NCOLS + 1 + k] = (float)lag[k];
        }
        int rc = hvs_model_predict(ref->model, x, RF_HORIZONS, out, err);
        if (rc)
            return rc;
        for (int h = 0; h < RF_HORIZONS; h++)
            corr[h] = hvs_taskrow_to_kwh(ref->target_scale, out[h], in.area_m2);
        r.model_name = ref->name;
        r.model_version = ref->version;
    } else {
        online_fit(g, b, h0, area);
        r.flags |= RF_F_ONLINE;
        r.model_name = "online";
        for (int h = 0; h < RF_HORIZONS; h++) {
            if (!(b->fit_ok & (1u << h))) {
                r.flags |= RF_F_UNCORRECTED;
                continue;
            }
            double c = b->fit[h][0];
            for (int k = 0; k < RF_LAGS; k++)
                c += isfinite(lag[k]) ? b->fit[h][1 + k] * lag[k] : 0;
            corr[h] = c * area;
        }
    }
    for (int h = 1; h <= RF_HORIZONS; h++) {
        hvs_ms_t X = h0 + (hvs_ms_t)(h - 1) * HOUR;
        hvs_ms_t idx = (X - B->first_hour) / HOUR;
        if (X < B->first_hour || idx >= B->npoints)
            break;
        double base = B->yhat[idx], c = isfinite(corr[h - 1]) ? corr[h - 1] : 0;
        double y = base + c, rest = 1, known = 0;
        if (h == 1 && t > h0) {
            /* the quarters of the hour that ended by t are measured */
            int k = (int)((t - h0) / Q);
            const rf_hour_t *s = &b->ring[ring_index(H)];
            for (int j = 0; j < k; j++) {
                double v = s->hour == H ? s->q[j] : NAN;
                if (isfinite(v))
                    known += v;
                else {
                    known += y / 4;
                    r.flags |= RF_F_MISSING_ACTUALS;
                }
            }
            rest = (4.0 - k) / 4.0;
            y = known + y * rest;
        }
        double lo = isfinite(B->lo[idx]) ? y - (base - B->lo[idx]) * rest : NAN;
        double hi = isfinite(B->hi[idx]) ? y + (B->hi[idx] - base) * rest : NAN;
        y = wh(y < 0 ? 0 : y);
        lo = wh(lo < 0 ? 0 : lo);
        hi = wh(hi < y ? y : hi);
        r.points[r.npoints++] = (rf_point_t){X, h, y, lo, hi, wh(y - base)};
    }
    if (r.npoints == 0) {
        g->stats.no_baseline++;
        return 0;
    }
    g->stats.refreshes++;
    if (again)
        g->stats.again++;
    if (r.flags & RF_F_ONLINE)
        g->stats.online++;
    for (int i = 0; i < RF_FLAG_COUNT; i++)
        if (r.flags & (1u << i))
            g->stats.by_flag[i]++;
    if (b->latest_tick == HVS_MS_NONE || t > b->latest_tick)
        b->latest_tick = t;
    return g->cb.emit(g->cb.opaque, b, &r, quiet, err);
}

/* Tick t of building b is ready (engine.h) from the quarters' watermark agg and base, the
 * newest of its baselines to count; *pending: whether baselines of the partition wait to be read
 * (-1: not asked yet; asked only when it decides). */
static bool tick_ready(const rf_t *g, const rf_partition_t *pt, hvs_ms_t t, hvs_ms_t agg,
                       hvs_ms_t base, int *pending) {
    if (agg == HVS_MS_NONE || t + g->conf.grace > agg)
        return false;
    hvs_ms_t h0 = t - (((t % HOUR) + HOUR) % HOUR);
    if (base != HVS_MS_NONE && base >= h0)
        return true;
    if (t + g->conf.baseline_wait > agg)
        return false;
    if (*pending < 0)
        *pending = g->cb.base_pending && g->cb.base_pending(g->cb.opaque, pt->p);
    return !*pending;
}

/* Make the building's ticks that are ready, in time order: from its first baseline's issue. */
static int advance_building(rf_t *g, rf_partition_t *pt, rf_building_t *b, int *pending,
                            hvs_err_t *err) {
    if (b->last_tick == HVS_MS_NONE && b->nbase == 0)
        return 0; /* nothing to serve yet */
    hvs_ms_t t = b->last_tick == HVS_MS_NONE ? ceil_q(b->base[b->nbase - 1].issued_at)
                                             : b->last_tick + Q;
    hvs_ms_t newest = b->nbase ? b->base[0].issued_at : HVS_MS_NONE;
    if (!tick_ready(g, pt, t, pt->wm_agg, newest, pending))
        return 0;
    bool rebuilding = g->cb.quiet && g->cb.quiet(g->cb.opaque, pt->p);
    int replay_pending = 1; /* a replay's fallback: never known to have fired */
    for (; tick_ready(g, pt, t, pt->wm_agg, newest, pending); t += Q) {
        bool replayed = rebuilding && tick_ready(g, pt, t, pt->q_agg, b->q_base, &replay_pending);
        int rc = make_tick(g, b, t, false, rebuild_quiet(b, t, rebuilding, replayed), err);
        if (rc)
            return rc;
        b->last_tick = t;
        if (pt->last_tick == HVS_MS_NONE || t > pt->last_tick)
            pt->last_tick = t, pt->dirty = true;
        g->stats.ticks++;
    }
    base_prune(g, b);
    return 0;
}

/* The quarters' watermark moved: every building's ticks it made ready. */
static int advance(rf_t *g, rf_partition_t *pt, hvs_err_t *err) {
    int pending = -1;
    for (size_t i = 0; i < pt->n; i++) {
        int rc = advance_building(g, pt, pt->b[i], &pending, err);
        if (rc)
            return rc;
    }
    return 0;
}

int rf_flush(rf_t *g, hvs_err_t *err) {
    (void)err;
    release_models(g);
    return 0;
}
