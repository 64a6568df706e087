/*
 * test_fc_engine - the forecaster's engine in process on a synthetic fleet whose heat follows
 * its weather, with a forecast/global version trained by the trainer's own code (tr_train) and
 * served through the registry's loader (the record's bytes, params and histogram as published):
 *   - a published forecast equals its recomputation through the trainer's path (tr_rows_build
 *     at as_of = the issue time, the version's prediction x area), bit for bit, at every
 *     horizon; its interval is the record's conformal interval;
 *   - the forecasts do not depend on the inputs' interleaving or on batch boundaries, also
 *     with one building's weather lagging past the wait on a shared partition, runs issued
 *     between the boundaries, and late and revised hours;
 *   - a rebuild (lost state, the inputs replayed quietly) leaves every issue time's latest
 *     published forecast equal to an undisturbed run's, also when the weather is read live
 *     ahead of the aggregates' replay and a replayed late hour changes issues made meanwhile;
 *   - lifecycle: a young building gets the rules (HDH x its archetype's coefficient x area),
 *     a mid-age one its archetype's version, an old one its own; no heated area: skipped;
 *   - a weather feed that stops: stale_weather, the last run's values, never zeros;
 *   - out of distribution: a cold and sunny run the version never saw flags the forecast and
 *     raises FORECAST_LOW_CONFIDENCE once per building and day; ordinary days do not;
 *   - live accuracy: the day-ahead WAPE the engine keeps equals the one computed here from the
 *     published forecasts and the actuals; actuals far above the forecasts for three days raise
 *     MODEL_DRIFT naming the version.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "engine.h"
#include "fc_version.h"
#include "history.h"
#include "hvs/featstore.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/profile.h"
#include "hvs_test.h"
#include "train.h"

#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define DAYS 40
#define TRAIN_DAYS 30
static const hvs_ms_t START = 1736121600000LL; /* 2025-01-06 00:00 UTC, a Monday */

typedef struct bld {
    const char *id, *archetype;
    double area;
    hvs_ms_t commissioning;
} bld_t;

static const bld_t blds[] = {
    {"b1", "modern_high_density", 1000, 1577836800000LL}, /* 2020: old */
    {"b2", "old_poorly_insulated", 2500, 1577836800000LL},
    {"b3", "passive", 600, 1577836800000LL},
};
#define NB 3

/* ---- the synthetic world -------------------------------------------------------------------- */

static double noise(uint64_t k) {
    k ^= k >> 33, k *= 0xff51afd7ed558ccdULL, k ^= k >> 33, k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (double)(k >> 11) / 9007199254740992.0 - 0.5;
}

static double true_temp(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24), d = (double)(h - START) / DAY;
    return 4 + 4 * sin(2 * M_PI * (hr - 9) / 24) + 5 * sin(2 * M_PI * d / 9);
}

/* cold hours are cloudy: the versions never see cold and sunny */
static double true_ghi(hvs_ms_t h) {
    double hr = (double)((h / HOUR) % 24);
    double sun = hr >= 7 && hr <= 16 ? 450 * sin(M_PI * (hr - 6.5) / 10.5) : 0;
    return true_temp(h) < 2 ? 0.15 * sun : sun;
}

static double heat(int b, hvs_ms_t h) {
    double t = true_temp(h), g = true_ghi(h);
    return blds[b].area * (0.0025 * fmax(0, 18 - t) + 0.006 - 0.000004 * g) *
           (1 + 0.08 * noise((uint64_t)h + (uint64_t)b * 7919));
}

static hvs_feat_wx_t observed(hvs_ms_t h) {
    return (hvs_feat_wx_t){h + HOUR + 10 * 60000, true, true_temp(h), 70, 40, true_ghi(h), 3};
}

/* how much later than r + 2 h a run is issued (0: on the hour; interleaving_late: 02:10) */
static hvs_ms_t run_offset;

/* forecast of hour h from the run issued at r (available at r + 2 h: issued_at) */
static hvs_feat_wx_t forecast(hvs_ms_t r, hvs_ms_t h) {
    double lead = (double)(h - r) / HOUR;
    double e = 0.04 * lead * noise((uint64_t)r * 31 + (uint64_t)h);
    return (hvs_feat_wx_t){
        r + 2 * HOUR + run_offset, false, true_temp(h) + e, 70, 40, true_ghi(h), 3};
}

/* Every input in event order: for each hour, its aggregate (and its observation), then any run
 * that became available. kind 0 aggregate, 1 weather. */
typedef struct ev {
    int kind, b;
    hvs_ms_t at, hour;
    hvs_feat_hour_t agg;
    hvs_feat_wx_t wx;
} ev_t;

static ev_t *events;
static size_t nevents;

static void push(ev_t e) {
    static size_t cap;
    if (nevents == cap) {
        cap = cap ? 2 * cap : 4096;
        events = realloc(events, cap * sizeof *events);
        HVS_REQUIRE(events, "oom");
    }
    events[nevents++] = e;
}

static double scale_actual = 1.0;
static hvs_ms_t scale_from = INT64_MAX;

static void make_events(int ndays) {
    nevents = 0;
    for (hvs_ms_t h = START; h < START + (hvs_ms_t)ndays * DAY; h += HOUR)
        for (int b = 0; b < NB; b++) {
            double y = heat(b, h) * (h >= scale_from ? scale_actual : 1.0);
            hvs_feat_hour_t a = {h, y, NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
            push((ev_t){0, b, h + HOUR, h, a, {0}});
            push((ev_t){1, b, h + HOUR + 10 * 60000, h, {0}, observed(h)});
            if ((h / HOUR) % 6 == 0) /* a run issued now, available in 2 h, 80 h ahead */
                for (int l = 1; l <= 80; l++)
                    push((ev_t){1,
                                b,
                                h + 2 * HOUR + run_offset,
                                h + l * HOUR,
                                {0},
                                forecast(h, h + l * HOUR)});
        }
}

/* by arrival; a building's weather arriving at once (a backlog) in issue order */
static int cmp_ev(const void *a, const void *b) {
    const ev_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->kind == 1 && y->kind == 1 && x->wx.issued_at != y->wx.issued_at)
        return x->wx.issued_at < y->wx.issued_at ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---- the version: trained by the trainer on the first TRAIN_DAYS days -------------------- */

static hvs_calendar_t *cal;
static hvs_serde_t *serde;
static hvs_model_ref_t *global_ref, *arch_ref, *own_ref;

static int tr_info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque;
    for (int b = 0; b < NB; b++)
        if (!strcmp(blds[b].id, building)) {
            *out = (tr_building_info_t){blds[b].area, blds[b].commissioning, cal, NULL};
            return 0;
        }
    return -1;
}

static hvs_model_ref_t *train(const char *name, const char *only) {
    tr_history_t *h = tr_history_new(DAYS * 24 + 48, 0);
    HVS_REQUIRE(h, "history");
    make_events(TRAIN_DAYS);
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        if (e->kind == 0)
            tr_history_put_hour(h, blds[e->b].id, HVS_FS_BUILDING, &e->agg);
        else
            tr_history_put_weather(h, blds[e->b].id, e->hour, &e->wx);
    }
    fc_version_spec_t spec = {name, only, START + DAY, START + TRAIN_DAYS * DAY, 1, 80,
                              4,    2,    tr_info};
    hvs_model_ref_t *ref = NULL;
    void *rec;
    size_t len;
    fc_version_make(h, &spec, serde, &rec, &len, &ref);
    free(rec);
    tr_history_destroy(h);
    return ref;
}

static void teardown(void) {
    hvs_registry_release(global_ref);
    hvs_registry_release(arch_ref);
    hvs_registry_release(own_ref);
    hvs_serde_destroy(serde);
    hvs_calendar_destroy(cal);
    free(events);
}

static void need_models(void) {
    if (global_ref)
        return;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_calendar_new("CH-ZH", &cal, &err) == 0 &&
                    hvs_serde_new(NULL, &serde, &err) == 0,
                "setup: %s", err.msg);
    hvs_test_cleanup(teardown);
    global_ref = train("forecast/global", NULL);
}

/* ---- the engine's world --------------------------------------------------------------------- */

typedef struct got {
    char building[16];
    hvs_ms_t issued;
    char ident[160];
    unsigned flags;
    int n;
    hvs_ms_t target[FC_HORIZONS];
    double y[FC_HORIZONS], lo[FC_HORIZONS], hi[FC_HORIZONS];
} got_t;

typedef struct world {
    bld_t b[NB];
    bool serve_global, serve_arch, serve_own;
    got_t *got;
    size_t ngot, capgot;
    size_t nquiet; /* quiet forecasts: made, not published */
    fc_alert_t alerts[64];
    char alert_entity[64][200];
    int nalerts;
} world_t;

static int w_info(void *opaque, const char *building, fc_info_t *out) {
    world_t *w = opaque;
    for (int b = 0; b < NB; b++)
        if (!strcmp(w->b[b].id, building)) {
            *out = (fc_info_t){w->b[b].area, w->b[b].commissioning, w->b[b].archetype, "CH-ZH"};
            return 0;
        }
    return -1;
}

static hvs_model_ref_t *give(hvs_model_ref_t *r) {
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

static hvs_model_ref_t *w_acquire(void *opaque, const char *name) {
    world_t *w = opaque;
    if (w->serve_global && !strcmp(name, "forecast/global"))
        return give(global_ref);
    if (w->serve_arch && !strcmp(name, "forecast/archetype:passive"))
        return give(arch_ref);
    if (w->serve_own && !strcmp(name, "forecast/building:b2"))
        return give(own_ref);
    return NULL;
}

static int w_forecast(void *opaque, const fc_forecast_t *f, bool quiet, hvs_err_t *err) {
    (void)err;
    world_t *w = opaque;
    if (quiet) {
        w->nquiet++; /* made, not published */
        return 0;
    }
    if (w->ngot == w->capgot) {
        w->capgot = w->capgot ? 2 * w->capgot : 1024;
        w->got = realloc(w->got, w->capgot * sizeof *w->got);
        HVS_REQUIRE(w->got, "oom");
    }
    got_t *g = &w->got[w->ngot++];
    snprintf(g->building, sizeof g->building, "%s", f->building);
    snprintf(g->ident, sizeof g->ident, "%s", f->ident);
    g->issued = f->issued_at;
    g->flags = f->flags;
    g->n = f->n;
    for (int k = 0; k < f->n; k++) {
        g->target[k] = f->target[k];
        g->y[k] = f->yhat[k], g->lo[k] = f->lower[k], g->hi[k] = f->upper[k];
    }
    return 0;
}

static int w_alert(void *opaque, const fc_alert_t *a, hvs_err_t *err) {
    (void)err;
    world_t *w = opaque;
    if (w->nalerts < 64) {
        w->alerts[w->nalerts] = *a;
        snprintf(w->alert_entity[w->nalerts], sizeof w->alert_entity[0], "%s", a->entity);
        w->nalerts++;
    }
    return 0;
}

static const fc_rule_t rules[] = {{"passive", 0.3}, {"modern_high_density", 0.8}};

static fc_config_t config(void) {
    return (fc_config_t){.every = HOUR,
                         .from = START + TRAIN_DAYS * DAY,
                         .weather_wait = 3 * HOUR,
                         .stale_after = 12 * HOUR,
                         .mature_ms = 30 * DAY,
                         .building_ms = 180 * DAY,
                         .default_region = "CH",
                         .ood_min_share = 0.001,
                         .ood_margin_c = 3,
                         .ood_horizon = 36,
                         .degrade_factor = 1.5,
                         .degrade_days = 3,
                         .drift_min_points = 24,
                         .rules = rules,
                         .nrules = 2,
                         .rules_default = 1.0,
                         .rules_base = 0};
}

static void world_init(world_t *w) {
    memset(w, 0, sizeof *w);
    memcpy(w->b, blds, sizeof blds);
    w->serve_global = true;
}

/* every building on partition 0 (interleaving_late), else building b on partition b */
static bool shared_part;

/* Feed the events into a fresh engine, flushing every `batch` events; wx_lead: weather events
 * move this much earlier (the weather topic ahead of the aggregates; negative: behind). */
static fc_t *run(world_t *w, fc_config_t c, size_t batch, hvs_ms_t wx_lead) {
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 1)
            events[i].at -= wx_lead;
    qsort(events, nevents, sizeof *events, cmp_ev);
    fc_callbacks_t cb = {w_info, w_acquire, w_forecast, w_alert, w};
    fc_t *g;
    hvs_err_t err = {0};
    HVS_REQUIRE(fc_new(&c, &cb, &g, &err) == 0, "fc_new");
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        int32_t p = shared_part ? 0 : e->b;
        int rc = e->kind == 0 ? fc_on_aggregate(g, p, blds[e->b].id, &e->agg, false, &err)
                              : fc_on_weather(g, p, blds[e->b].id, e->hour, &e->wx, false, &err);
        HVS_REQUIRE(rc == 0, "input: %s", err.msg);
        if ((i + 1) % batch == 0)
            HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    }
    HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 1)
            events[i].at += wx_lead;
    return g;
}

static const got_t *find(const world_t *w, const char *b, hvs_ms_t t) {
    const got_t *last = NULL;
    for (size_t i = 0; i < w->ngot; i++)
        if (!strcmp(w->got[i].building, b) && w->got[i].issued == t)
            last = &w->got[i];
    return last;
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void test_trainer_path(void) {
    need_models();
    make_events(DAYS);
    world_t w;
    world_init(&w);
    fc_t *g = run(&w, config(), 500, 0);
    HVS_CHECK(w.ngot == (size_t)NB * ((DAYS - TRAIN_DAYS) * 24 + 1),
              "%zu forecasts for %d buildings x %d hours", w.ngot, NB,
              (DAYS - TRAIN_DAYS) * 24 + 1);
    /* the trainer's rows of the same inputs */
    tr_history_t *h = tr_history_new(DAYS * 24 + 48, 0);
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        if (e->kind == 0)
            tr_history_put_hour(h, blds[e->b].id, HVS_FS_BUILDING, &e->agg);
        else
            tr_history_put_weather(h, blds[e->b].id, e->hour, &e->wx);
    }
    int hz[FC_HORIZONS];
    for (int k = 0; k < FC_HORIZONS; k++)
        hz[k] = k + 1;
    const hvs_ms_t issues[] = {START + 31 * DAY, START + 33 * DAY + 6 * HOUR,
                               START + 36 * DAY + 17 * HOUR};
    int compared = 0, equal = 0, in_interval = 0;
    for (size_t t = 0; t < sizeof issues / sizeof *issues; t++)
        for (int b = 0; b < NB; b++) {
            const got_t *f = find(&w, blds[b].id, issues[t]);
            HVS_REQUIRE(f && f->n == FC_HORIZONS, "forecast of %s as of %lld", blds[b].id,
                        (long long)issues[t]);
            HVS_CHECK(!strcmp(f->ident, global_ref->ident) && f->flags == 0,
                      "served by %s, flags %u", f->ident, f->flags);
            const char *only[1] = {blds[b].id};
            tr_select_t sel = {.task = TR_FORECAST,
                               .from = issues[t],
                               .to = issues[t] + FC_HORIZONS * HOUR,
                               .horizons = hz,
                               .nhorizons = FC_HORIZONS,
                               .per_hour = 0,
                               .weather_wait = 2 * HOUR,
                               .buildings = only,
                               .nbuildings = 1};
            tr_rows_t rows = {0};
            hvs_err_t err = {0};
            HVS_REQUIRE(tr_rows_build(h, &sel, tr_info, NULL, &rows, &err) == 0, "rows: %s",
                        err.msg);
            for (size_t i = 0; i < rows.n; i++) {
                if (rows.as_of[i] != issues[t])
                    continue;
                int k = (int)((rows.hour[i] - issues[t]) / HOUR);
                float p;
                HVS_REQUIRE(
                    hvs_model_predict(global_ref->model, &rows.x[i * rows.ncols], 1, &p, &err) == 0,
                    "predict");
                double kwh = fmax(0, (double)p * rows.scale[i]);
                compared++;
                equal += kwh == f->y[k] && f->target[k] == rows.hour[i];
                if (kwh != f->y[k] && getenv("FC_DEBUG"))
                    printf("differs: %s T=%lld k=%d engine %.6f trainer %.6f\n", blds[b].id,
                           (long long)issues[t], k, f->y[k], kwh);
                in_interval += f->lo[k] <= f->y[k] && f->y[k] <= f->hi[k] && f->hi[k] > f->lo[k];
            }
            tr_rows_fini(&rows);
        }
    printf("recomputed through the trainer's rows: %d of %d points identical, %d with an interval "
           "around them\n",
           equal, compared, in_interval);
    HVS_CHECK(compared == 3 * NB * FC_HORIZONS, "%d points recomputed", compared);
    HVS_CHECK(equal == compared, "%d of %d identical", equal, compared);
    HVS_CHECK(in_interval == compared, "%d of %d with an interval", in_interval, compared);
    /* the interval is the record's: [p + q10 s, p + q90 s] x area, s = max(p,0) + floor */
    double q[3];
    const char *iv = hvs_model_ref_param(global_ref, "interval_h1_6");
    HVS_REQUIRE(iv && sscanf(iv, "%lf %lf %lf", &q[0], &q[1], &q[2]) == 3, "interval param %s",
                hvs_test_str(iv));
    const got_t *f = find(&w, "b2", issues[1]);
    double p = f->y[2] / 2500.0, s = fmax(p, 0) + q[2];
    HVS_CHECK_NEAR(f->lo[2], fmax(0, (p + q[0] * s) * 2500.0), 1e-6);
    HVS_CHECK_NEAR(f->hi[2], (p + q[1] * s) * 2500.0, 1e-6);
    tr_history_destroy(h);
    free(w.got);
    fc_destroy(g);
}

/* The actual heat of building b in hour h (the events hold one aggregate per hour). */
static double actual_of(int b, hvs_ms_t h) {
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 0 && events[i].b == b && events[i].agg.hour == h)
            return events[i].agg.use;
    return NAN;
}

/* Intervals calibrated on the building's own last 96 h (engine.h "Intervals"), recomputed here
 * from the forecasts published before, the version's params and the actuals. */
static void test_interval_calibration(void) {
    need_models();
    make_events(DAYS);
    world_t w;
    world_init(&w);
    fc_config_t c = config();
    c.interval_window_h = 96;
    fc_t *g = run(&w, c, 500, 0);
    static const int lo_h[4] = {1, 7, 25, 49}, hi_h[4] = {6, 24, 48, 72};
    static const char *const keys[4] = {"interval_h1_6", "interval_h7_24", "interval_h25_48",
                                        "interval_h49_72"};
    double q[4][3];
    for (int k = 0; k < 4; k++) {
        const char *iv = hvs_model_ref_param(global_ref, keys[k]);
        HVS_REQUIRE(iv && sscanf(iv, "%lf %lf %lf", &q[k][0], &q[k][1], &q[k][2]) == 3, "%s",
                    keys[k]);
    }
    const int b = 1; /* b2, 2500 m2 */
    const double area = 2500;
    const hvs_ms_t issues[] = {START + 36 * DAY + 17 * HOUR, START + 38 * DAY + 5 * HOUR,
                               START + 39 * DAY};
    int checked = 0, moved = 0;
    for (size_t t = 0; t < sizeof issues / sizeof *issues; t++) {
        float z[4 * 96];
        int n = 0;
        for (int i = 1; i <= 96; i++) {
            hvs_ms_t h = issues[t] - (hvs_ms_t)i * HOUR;
            double y = actual_of(b, h);
            for (int k = 0; k < 4 && isfinite(y); k++) {
                int horizon = lo_h[k] + (int)((h / HOUR) % (hi_h[k] - lo_h[k] + 1));
                /* the issue at h - horizon + 1 h forecast the hour starting at h as horizon */
                const got_t *f = find(&w, blds[b].id, h - (hvs_ms_t)(horizon - 1) * HOUR);
                if (!f)
                    continue; /* before the first issue */
                double p = f->y[horizon - 1] / area, s = fmax(p, 0) + q[k][2];
                HVS_REQUIRE(f->y[horizon - 1] > 0, "a positive forecast to invert");
                float lo = (float)((p + q[k][0] * s) * area),
                      hi = (float)((p + q[k][1] * s) * area);
                z[n++] = fabsf((float)y - 0.5f * (lo + hi)) / (0.5f * (hi - lo));
            }
        }
        /* the conformal 80 % rank, shrunk towards 1 by 50 points */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && z[j - 1] > z[j]; j--) {
                float x = z[j];
                z[j] = z[j - 1], z[j - 1] = x;
            }
        int r = (int)ceil(0.8 * (n + 1)) - 1;
        double scale = ((double)n * z[r < n ? r : n - 1] + 50) / (n + 50.0);
        scale = fmin(fmax(scale, 0.25), 4);
        const got_t *f = find(&w, blds[b].id, issues[t]);
        HVS_REQUIRE(f && f->n == FC_HORIZONS, "forecast as of %lld", (long long)issues[t]);
        for (int k = 0; k < FC_HORIZONS; k++) {
            int bk = k < 6 ? 0 : k < 24 ? 1 : k < 48 ? 2 : 3;
            double p = f->y[k] / area, s = fmax(p, 0) + q[bk][2];
            double lo = (p + q[bk][0] * s) * area, hi = (p + q[bk][1] * s) * area;
            double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
            double elo = fmin(fmax(0, mid - scale * half), f->y[k]);
            double ehi = fmax(mid + scale * half, f->y[k]);
            checked++;
            HVS_CHECK_NEAR(f->lo[k], elo, 1e-3 * half);
            HVS_CHECK_NEAR(f->hi[k], ehi, 1e-3 * half);
        }
        moved += fabs(scale - 1) > 0.02;
        printf("b2 as of %lld: %d scored points, interval scale %.3f\n", (long long)issues[t], n,
               scale);
        HVS_CHECK(n >= 300, "%d points in the window", n);
    }
    HVS_CHECK(checked == 3 * FC_HORIZONS, "%d points", checked);
    HVS_CHECK(moved > 0, "the calibration changed some interval");
    free(w.got);
    fc_destroy(g);
}

/* Run and count the engine's re-issues into *reissued. */
static void run_counted(world_t *w, fc_config_t c, size_t batch, hvs_ms_t wx_lead,
                        uint64_t *reissued) {
    fc_t *g = run(w, c, batch, wx_lead);
    *reissued = fc_stats(g)->reissued;
    fc_destroy(g);
}

static void test_interleaving(void) {
    need_models();
    make_events(DAYS);
    world_t a, b, c;
    world_init(&a), world_init(&b), world_init(&c);
    fc_config_t cf = config();
    cf.interval_window_h = 96; /* calibrated intervals: a function of the data too */
    uint64_t ra, rb, rc;
    run_counted(&a, cf, 10000, 0, &ra);
    run_counted(&b, cf, 37, 5 * HOUR, &rb);    /* weather ahead, small batches */
    run_counted(&c, cf, 1000, -2 * HOUR, &rc); /* weather behind the aggregates */
    /* nothing late, weather in issue order: every issue made once */
    HVS_CHECK(ra == 0 && rb == 0 && rc == 0, "re-issues %llu %llu %llu", (unsigned long long)ra,
              (unsigned long long)rb, (unsigned long long)rc);
    size_t same_b = 0, same_c = 0;
    for (size_t i = 0; i < a.ngot; i++) {
        const got_t *x = &a.got[i], *y = find(&b, x->building, x->issued),
                    *z = find(&c, x->building, x->issued);
        same_b += y && !memcmp(y->y, x->y, sizeof x->y) && !memcmp(y->lo, x->lo, sizeof x->lo) &&
                  !memcmp(y->hi, x->hi, sizeof x->hi) && y->flags == x->flags;
        same_c += z && !memcmp(z->y, x->y, sizeof x->y) && !memcmp(z->lo, x->lo, sizeof x->lo) &&
                  !memcmp(z->hi, x->hi, sizeof x->hi) && z->flags == x->flags;
    }
    printf("interleavings: %zu forecasts; weather ahead by 5 h: %zu identical, behind by 2 h: "
           "%zu identical\n",
           a.ngot, same_b, same_c);
    HVS_CHECK(a.ngot > 0 && same_b == a.ngot && b.ngot == a.ngot, "weather ahead: %zu of %zu (%zu)",
              same_b, a.ngot, b.ngot);
    HVS_CHECK(same_c == a.ngot && c.ngot == a.ngot, "weather behind: %zu of %zu (%zu)", same_c,
              a.ngot, c.ngot);
    free(a.got), free(b.got), free(c.got);
}

/* How many of ref's issue times (building, issued_at) w's latest forecast equals ref's latest
 * at: points, intervals and flags. *keys: ref's issue times; *missing: those w never made;
 * *extra: w's that ref has not. */
static size_t same_latest(const world_t *ref, const world_t *w, size_t *keys, size_t *missing,
                          size_t *extra) {
    size_t same = 0;
    *keys = *missing = *extra = 0;
    for (size_t i = 0; i < ref->ngot; i++) {
        const got_t *x = &ref->got[i];
        if (find(ref, x->building, x->issued) != x)
            continue; /* not the latest of its issue time */
        (*keys)++;
        const got_t *y = find(w, x->building, x->issued);
        *missing += !y;
        same += y && y->n == x->n && !memcmp(y->y, x->y, sizeof x->y) &&
                !memcmp(y->lo, x->lo, sizeof x->lo) && !memcmp(y->hi, x->hi, sizeof x->hi) &&
                y->flags == x->flags;
    }
    for (size_t i = 0; i < w->ngot; i++)
        *extra += find(w, w->got[i].building, w->got[i].issued) == &w->got[i] &&
                  !find(ref, w->got[i].building, w->got[i].issued);
    return same;
}

/* interleaving_late's events: every building on one partition, forecast runs issued at hh:10
 * (issue times between the boundaries) and, unless ideal, an hour of b1 6 h late, one of b3
 * 30 h late and a revision of one of b2's 9 h after it (ideal: the final values, on time). */
static void late_events(bool ideal) {
    run_offset = 10 * 60000;
    make_events(DAYS);
    run_offset = 0;
    const hvs_ms_t l1 = START + 32 * DAY + 7 * HOUR, l3 = START + 35 * DAY + 3 * HOUR,
                   r2 = START + 33 * DAY + 13 * HOUR;
    ev_t rev = {0};
    for (size_t i = 0; i < nevents; i++) {
        ev_t *e = &events[i];
        if (e->kind != 0)
            continue;
        if (e->b == 0 && e->agg.hour == l1 && !ideal)
            e->at += 6 * HOUR;
        if (e->b == 2 && e->agg.hour == l3 && !ideal)
            e->at += 30 * HOUR;
        if (e->b == 1 && e->agg.hour == r2) {
            rev = *e;
            rev.agg.use *= 1.3;
            rev.agg.revision = 1;
            rev.at += 9 * HOUR;
            if (ideal)
                e->agg = rev.agg;
        }
    }
    if (!ideal)
        push(rev);
}

/* b3's weather stops arriving at `from` and arrives at `to`, all of it (a provider's backlog). */
static void stall_b3(hvs_ms_t from, hvs_ms_t to) {
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 1 && events[i].b == 2 && events[i].at >= from && events[i].at < to)
            events[i].at = to;
}

/* The same data read in different orders, on a partition of three buildings where b3's weather
 * lags beyond weather_wait (its issues made without it, then again when it arrives), with
 * issue times between the boundaries and late and revised hours: every issue time's latest
 * forecast, points and intervals, equals the reference's, read with the weather ahead and the
 * final values on time. */
static void test_interleaving_late(void) {
    need_models();
    fc_config_t cf = config();
    cf.interval_window_h = 96;
    shared_part = true;
    world_t ref;
    world_init(&ref);
    uint64_t rr;
    late_events(true);
    run_counted(&ref, cf, 10000, 5 * HOUR, &rr);
    static const struct {
        const char *what;
        bool late;     /* late and revised hours */
        int b3;        /* b3's weather: 1 stalls twice, 2 5 h late from day 34 */
        size_t batch;  /* inputs per flush */
        hvs_ms_t lead; /* the weather topic ahead of the aggregates */
    } vs[] = {{"in order, nothing late", false, 0, 10000, 0},
              {"in order", true, 0, 1000, 0},
              {"weather 5 h ahead, batches of 37", true, 0, 37, 5 * HOUR},
              {"weather 2 h behind", true, 0, 1000, -2 * HOUR},
              {"b3's weather stalls twice", true, 1, 37, 0},
              {"b3's weather 5 h late from day 34", true, 2, 1000, 0},
              {"b3's weather stalls, nothing late", false, 1, 500, 0}};
    enum { NV = sizeof vs / sizeof vs[0] };
    size_t keys = 0, same[NV], missing[NV], extra[NV];
    uint64_t re[NV];
    for (int v = 0; v < NV; v++) {
        world_t w;
        world_init(&w);
        late_events(!vs[v].late);
        if (vs[v].b3 == 1) {
            stall_b3(START + 33 * DAY, START + 33 * DAY + 10 * HOUR);
            stall_b3(START + 36 * DAY + 20 * HOUR, START + 37 * DAY + 5 * HOUR);
        }
        for (size_t i = 0; vs[v].b3 == 2 && i < nevents; i++)
            if (events[i].kind == 1 && events[i].b == 2 && events[i].at >= START + 34 * DAY)
                events[i].at += 5 * HOUR;
        run_counted(&w, cf, vs[v].batch, vs[v].lead, &re[v]);
        same[v] = same_latest(&ref, &w, &keys, &missing[v], &extra[v]);
        printf("%-34s %zu of %zu latest forecasts identical (%zu issue times never made, %zu "
               "more); %llu re-issues\n",
               vs[v].what, same[v], keys, missing[v], extra[v], (unsigned long long)re[v]);
        free(w.got);
    }
    shared_part = false;
    /* the weather in issue order and nothing late: every issue made once */
    HVS_CHECK(rr == 0 && re[0] == 0, "no re-issues: %llu, %llu", (unsigned long long)rr,
              (unsigned long long)re[0]);
    for (int v = 0; v < NV; v++)
        HVS_CHECK(same[v] == keys && extra[v] == 0, "%s: %zu of %zu, %zu more", vs[v].what, same[v],
                  keys, extra[v]);
    HVS_CHECK(keys > 700, "%zu issue times", keys);
    free(ref.got);
}

/* The state is lost after the aggregates up to `cut` and the weather up to `cut_wx` (a day
 * earlier: the consumer had fetched the aggregates topic ahead) were read. The rebuild replays
 * both quietly, but the weather after cut_wx, read live, runs ahead of the aggregates' replay:
 * issues after cut_wx become ready on live weather and are published, then a replayed late hour
 * changes them. What was published before the loss and by the rebuild must leave each issue
 * time's latest as the undisturbed run's. */
static void test_rebuild_replay(void) {
    need_models();
    make_events(DAYS);
    hvs_ms_t late = START + 32 * DAY + 7 * HOUR, cut = START + 33 * DAY, cut_wx = cut - DAY;
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 0 && events[i].b == 0 && events[i].hour == late)
            events[i].at += 6 * HOUR; /* b1's hour arrives 6 h late */
    world_t ref, w;
    world_init(&ref), world_init(&w);
    fc_destroy(run(&ref, config(), 10000, 0));
    qsort(events, nevents, sizeof *events, cmp_ev);
    fc_callbacks_t cb = {w_info, w_acquire, w_forecast, w_alert, &w};
    hvs_err_t err = {0};
    fc_config_t c = config();
    fc_t *g;
    /* before the loss, in event order */
    HVS_REQUIRE(fc_new(&c, &cb, &g, &err) == 0, "fc_new");
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        int rc = 0;
        if (e->kind == 0 && e->at < cut)
            rc = fc_on_aggregate(g, e->b, blds[e->b].id, &e->agg, false, &err);
        else if (e->kind == 1 && e->at < cut_wx)
            rc = fc_on_weather(g, e->b, blds[e->b].id, e->hour, &e->wx, false, &err);
        HVS_REQUIRE(rc == 0, "input: %s", err.msg);
    }
    HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    size_t before = w.ngot;
    fc_destroy(g);
    /* the rebuild: the weather read 3 days ahead of the aggregates, the aggregates before cut
     * replayed (quiet), everything else live; batches of 50 */
    HVS_REQUIRE(fc_new(&c, &cb, &g, &err) == 0, "fc_new");
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == 1)
            events[i].at -= 3 * DAY;
    qsort(events, nevents, sizeof *events, cmp_ev);
    for (size_t i = 0; i < nevents; i++) {
        const ev_t *e = &events[i];
        int rc = e->kind == 0 ? fc_on_aggregate(g, e->b, blds[e->b].id, &e->agg, e->at < cut, &err)
                              : fc_on_weather(g, e->b, blds[e->b].id, e->hour, &e->wx,
                                              e->at + 3 * DAY < cut_wx, &err);
        HVS_REQUIRE(rc == 0, "input: %s", err.msg);
        if ((i + 1) % 50 == 0)
            HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    }
    HVS_REQUIRE(fc_flush(g, &err) == 0, "flush: %s", err.msg);
    size_t same = 0, differ_late = 0;
    for (size_t i = 0; i < ref.ngot; i++) {
        const got_t *x = find(&ref, ref.got[i].building, ref.got[i].issued);
        if (x != &ref.got[i])
            continue; /* not the latest of its issue time */
        const got_t *y = find(&w, x->building, x->issued);
        bool eq = y && !memcmp(y->y, x->y, sizeof x->y) && y->flags == x->flags;
        same += eq;
        differ_late += !eq && x->issued > late && x->issued <= late + 170 * HOUR;
    }
    size_t keys = 0, wkeys = 0;
    for (size_t i = 0; i < ref.ngot; i++)
        keys += find(&ref, ref.got[i].building, ref.got[i].issued) == &ref.got[i];
    for (size_t i = 0; i < w.ngot; i++)
        wkeys += find(&w, w.got[i].building, w.got[i].issued) == &w.got[i];
    printf("rebuild: %zu of %zu issue times' latest forecasts as the undisturbed run's (%zu "
           "published before the loss, %zu after, %zu made quietly); %zu differ among those "
           "that read the late hour\n",
           same, keys, before, w.ngot - before, w.nquiet, differ_late);
    HVS_CHECK(before > 0 && w.nquiet > 0, "published before the loss (%zu), quiet replay (%zu)",
              before, w.nquiet);
    HVS_CHECK(keys > 0 && same == keys && wkeys == keys,
              "%zu of %zu latest forecasts as the reference's (%zu issue times)", same, keys,
              wkeys);
    free(ref.got), free(w.got);
    fc_destroy(g);
}

static void test_lifecycle(void) {
    need_models();
    if (!arch_ref) {
        arch_ref = train("forecast/archetype:passive", "b3");
        own_ref = train("forecast/building:b2", "b2");
    }
    make_events(DAYS);
    world_t w;
    world_init(&w);
    w.serve_arch = w.serve_own = true;
    hvs_ms_t t0 = START + TRAIN_DAYS * DAY;
    w.b[0].commissioning = t0 - 25 * DAY;  /* young: rules */
    w.b[1].commissioning = t0 - 400 * DAY; /* old: its own */
    w.b[2].commissioning = t0 - 60 * DAY;  /* mid-age: its archetype's */
    fc_t *g = run(&w, config(), 500, 0);
    const got_t *r = find(&w, "b1", t0 + 4 * DAY), *o = find(&w, "b2", t0 + 5 * DAY),
                *m = find(&w, "b3", t0 + 5 * DAY);
    HVS_REQUIRE(r && o && m, "forecasts");
    HVS_CHECK(!strcmp(r->ident, "rules") && (r->flags & FC_F_RULES_ONLY), "young: %s", r->ident);
    HVS_CHECK(!strcmp(o->ident, own_ref->ident), "old: %s", o->ident);
    HVS_CHECK(!strcmp(m->ident, arch_ref->ident), "mid-age: %s", m->ident);
    /* the rules: area x k x hdh of the run's temperature / 1000 */
    int k = 20;
    hvs_ms_t h = r->target[k], run_t = (t0 + 4 * DAY - 2 * HOUR) / (6 * HOUR) * (6 * HOUR);
    while (run_t + 2 * HOUR > t0 + 4 * DAY)
        run_t -= 6 * HOUR;
    double t = forecast(run_t, h).temp;
    HVS_CHECK_NEAR(r->y[k], 1000 * 0.8 * fmax(0, 18 - t) / 1000.0, 1e-9);
    HVS_CHECK(r->lo[k] < r->y[k] && r->hi[k] > r->y[k], "rules interval");
    /* the building turns 30 days old mid-run: from then the global version serves it */
    const got_t *later = find(&w, "b1", t0 + 6 * DAY);
    HVS_CHECK(later && !strcmp(later->ident, global_ref->ident), "30 days old: %s",
              later ? later->ident : "none");
    free(w.got);
    fc_destroy(g);
    /* no heated area: skipped, counted */
    world_init(&w);
    w.b[0].area = NAN;
    g = run(&w, config(), 500, 0);
    HVS_CHECK(!find(&w, "b1", t0 + 5 * DAY) && find(&w, "b2", t0 + 5 * DAY), "b1 skipped");
    HVS_CHECK(fc_stats(g)->no_area == (DAYS - TRAIN_DAYS) * 24 + 1, "no_area %llu",
              (unsigned long long)fc_stats(g)->no_area);
    free(w.got);
    fc_destroy(g);
}

static void test_stale_weather(void) {
    need_models();
    make_events(DAYS);
    /* the provider's runs stop after day 34 06:00 (observations go on) */
    hvs_ms_t stop = START + 34 * DAY + 6 * HOUR;
    size_t k = 0;
    for (size_t i = 0; i < nevents; i++)
        if (!(events[i].kind == 1 && !events[i].wx.observed && events[i].wx.issued_at > stop))
            events[k++] = events[i];
    nevents = k;
    world_t w;
    world_init(&w);
    fc_t *g = run(&w, config(), 500, 0);
    const got_t *fresh = find(&w, "b1", stop + 6 * HOUR), *stale = find(&w, "b1", stop + 13 * HOUR);
    HVS_REQUIRE(fresh && stale, "forecasts");
    HVS_CHECK(!(fresh->flags & FC_F_STALE_WEATHER), "6 h after the last run: fresh");
    HVS_CHECK(stale->flags & FC_F_STALE_WEATHER, "13 h after: stale_weather (%u)", stale->flags);
    /* the last run's values as far as they reach (67 h of the stale issue), the model on
     * missing weather beyond: never zeros */
    int zeros = 0;
    for (int i = 0; i < FC_HORIZONS; i++)
        zeros += !(stale->y[i] > 0);
    HVS_CHECK(zeros == 0, "%d zero points", zeros);
    const got_t *beyond = find(&w, "b1", stop + 40 * HOUR);
    HVS_CHECK(beyond && (beyond->flags & FC_F_MISSING_WEATHER),
              "beyond the last run's reach: missing_weather");
    free(w.got);
    fc_destroy(g);
}

static void test_out_of_distribution(void) {
    need_models();
    make_events(DAYS);
    /* the run of day 35 06:00 announces a cold and sunny day 36 (-9 degC under a clear sky) */
    hvs_ms_t r = START + 35 * DAY + 6 * HOUR;
    for (size_t i = 0; i < nevents; i++) {
        ev_t *e = &events[i];
        if (e->kind == 1 && !e->wx.observed && e->wx.issued_at == r + 2 * HOUR &&
            e->hour >= START + 36 * DAY && e->hour < START + 37 * DAY) {
            double hr = (double)((e->hour / HOUR) % 24);
            e->wx.temp = -9;
            e->wx.ghi = hr >= 8 && hr <= 15 ? 550 : 0;
        }
    }
    world_t w;
    world_init(&w);
    fc_t *g = run(&w, config(), 500, 0);
    size_t ood = 0, before = 0;
    for (size_t i = 0; i < w.ngot; i++) {
        if ((w.got[i].flags & FC_F_OOD) && getenv("FC_DEBUG"))
            printf("ood: %s as of %lld\n", w.got[i].building,
                   (long long)(w.got[i].issued - START) / HOUR);
        ood += (w.got[i].flags & FC_F_OOD) != 0;
        before += (w.got[i].flags & FC_F_OOD) && w.got[i].issued < r + 2 * HOUR;
    }
    int lc = 0;
    for (int i = 0; i < w.nalerts; i++)
        if (w.alerts[i].type == HVS_ALERT_FORECAST_LOW_CONFIDENCE) {
            lc++;
            HVS_CHECK(hvs_time_day_start(w.alerts[i].first_seen) == START + 36 * DAY,
                      "the alert names day 36");
        }
    printf("cold and sunny run: %zu of %zu forecasts out of distribution, %d alerts\n", ood, w.ngot,
           lc);
    HVS_CHECK(before == 0, "%zu forecasts flagged before the run", before);
    HVS_CHECK(ood >= NB, "flagged: %zu", ood);
    HVS_CHECK(lc == NB, "one FORECAST_LOW_CONFIDENCE per building and day: %d", lc);
    free(w.got);
    fc_destroy(g);
}

static void test_live_accuracy(void) {
    need_models();
    make_events(DAYS);
    world_t w;
    world_init(&w);
    fc_t *g = run(&w, config(), 500, 0);
    /* day-ahead: issued at 12:00 UTC the day before, every hour of days 32..38 */
    double e = 0, y = 0;
    int64_t n = 0;
    for (int d = 32; d < 39; d++)
        for (int b = 0; b < NB; b++) {
            hvs_ms_t day = START + (hvs_ms_t)d * DAY;
            const got_t *f = find(&w, blds[b].id, day - 12 * HOUR);
            HVS_REQUIRE(f, "day-ahead forecast");
            for (int k = 0; k < f->n; k++)
                if (f->target[k] >= day && f->target[k] < day + DAY) {
                    double a = heat(b, f->target[k]);
                    e += fabs(a - (double)(float)f->y[k]);
                    y += a;
                    n++;
                }
        }
    int64_t pts = 0;
    uint16_t id = fc_ident_intern(g, global_ref->ident, NAN);
    double live = fc_live_wape(g, id, FC_DAY_AHEAD, START + 39 * DAY, NULL, 0, &pts);
    printf("live day-ahead WAPE %.4f over %lld points (computed here %.4f over %lld); backtest "
           "%.4f\n",
           live, (long long)pts, e / y, (long long)n, global_ref->metrics.wape);
    HVS_CHECK(pts == n, "points %lld vs %lld", (long long)pts, (long long)n);
    HVS_CHECK_NEAR(live, e / y, 1e-9);
    int drift = 0;
    for (int i = 0; i < w.nalerts; i++)
        drift += w.alerts[i].type == HVS_ALERT_MODEL_DRIFT;
    HVS_CHECK(drift == 0, "no drift on the data it learnt: %d", drift);
    free(w.got);
    fc_destroy(g);
    /* from day 33 every building heats three times as much: bad days from day 34 */
    scale_actual = 3, scale_from = START + 33 * DAY;
    make_events(DAYS);
    world_init(&w);
    g = run(&w, config(), 500, 0);
    scale_actual = 1, scale_from = INT64_MAX;
    int at = -1;
    for (int i = 0; i < w.nalerts; i++)
        if (w.alerts[i].type == HVS_ALERT_MODEL_DRIFT) {
            drift++;
            at = i;
        }
    HVS_CHECK(drift == NB, "MODEL_DRIFT once per partition: %d", drift);
    if (at >= 0) {
        HVS_CHECK(strstr(w.alert_entity[at], global_ref->ident) != NULL, "names %s",
                  w.alert_entity[at]);
        printf("drift: %s on %s\n", w.alert_entity[at], w.alerts[at].summary);
    }
    free(w.got);
    fc_destroy(g);
}

/* A kwh profile's site without heated area that no model serves yet (run as its own process,
 * `test_fc_engine kwh_rules`: the profile is process-wide): the rules repeat its own past,
 * worked out here from the actuals (heat()): the same hour on the nearest day ended by the
 * issue while it has no week, the mean of 1 and 2 weeks before once it has; nothing before a
 * day of history. */
static void test_kwh_rules(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_profile_load("ev_charging", NULL, &err) == 0, "profile: %s", err.msg);
    make_events(20);
    world_t w;
    world_init(&w);
    w.serve_global = false;
    for (int b = 0; b < NB; b++)
        w.b[b].area = NAN;
    fc_config_t c = config();
    c.from = START + 12 * HOUR;
    fc_t *g = run(&w, c, 500, 0);
    HVS_CHECK(!find(&w, "b1", START + 12 * HOUR) && !find(&w, "b1", START + 23 * HOUR),
              "under a day of history: nothing to repeat");
    const got_t *d = find(&w, "b2", START + 3 * DAY + 5 * HOUR),
                *wk = find(&w, "b2", START + 15 * DAY + 5 * HOUR);
    HVS_REQUIRE(d && wk, "forecasts of day 3 and day 15");
    int wrong = 0;
    for (const got_t *f = d; f; f = f == d ? wk : NULL) {
        HVS_CHECK(!strcmp(f->ident, "rules") && (f->flags & FC_F_RULES_ONLY) && f->n == FC_HORIZONS,
                  "rules, %d points: %s", f->n, f->ident);
        for (int k = 0; k < f->n; k++) {
            hvs_ms_t h = f->issued + (hvs_ms_t)k * HOUR;
            double want;
            if (f == wk) {
                want = 0.5 * (heat(1, h - 7 * DAY) + heat(1, h - 14 * DAY));
            } else {
                int days = (k + 1 + 23) / 24; /* the hour h - days ended by the issue */
                want = heat(1, h - (hvs_ms_t)days * DAY);
            }
            if (!(fabs(f->y[k] - want) <= 1e-9 && f->target[k] == h &&
                  fabs(f->lo[k] - 0.5 * want) <= 1e-9 && fabs(f->hi[k] - 1.5 * want) <= 1e-9) &&
                wrong++ < 3)
                HVS_CHECK(false, "issue %lld h +%d: %.6f [%.6f, %.6f], repeated %.6f",
                          (long long)((f->issued - START) / HOUR), k, f->y[k], f->lo[k], f->hi[k],
                          want);
        }
    }
    HVS_CHECK_EQ_INT(wrong, 0);
    free(w.got);
    fc_destroy(g);
}

static const hvs_test_case_t cases[] = {
    {"trainer_path", test_trainer_path},
    {"interleaving", test_interleaving},
    {"interleaving_late", test_interleaving_late},
    {"interval_calibration", test_interval_calibration},
    {"lifecycle", test_lifecycle},
    {"stale_weather", test_stale_weather},
    {"out_of_distribution", test_out_of_distribution},
    {"live_accuracy", test_live_accuracy},
    {"rebuild_replay", test_rebuild_replay},
    HVS_TEST_CASES_END,
};

/* kwh_rules loads another profile for the whole process: a test of its own (test_fc_engine_kwh) */
static const hvs_test_case_t kwh_cases[] = {{"kwh_rules", test_kwh_rules}, HVS_TEST_CASES_END};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "kwh_rules") == 0)
        return hvs_test_main(kwh_cases, argc, argv);
    return hvs_test_main(cases, argc, argv);
}
