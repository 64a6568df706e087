/*
 * test_rf_engine - the refresher's engine (workers/refresher/engine.h) in process: the values of
 * its ticks computed here independently from the inputs the test wrote.
 *   online_bias        a building whose meter reads 20 % above its baseline: uncorrected until
 *                      the online fit has its hours, then refreshed to the actual; intervals
 *                      shifted with the point
 *   model_correction   refresh/global (an hvs-linear record through the registry's loader,
 *                      tests/support/refresh_model.h)
 *                      applied to the last three hours' errors per m2, times the area
 *   intra_hour         30 minutes into an hour: the two measured quarters plus half the
 *                      corrected forecast; the interval shrinks to the unmeasured half
 *   missing_quarter    a quarter never sent: missing_actuals on the ticks that read it, the
 *                      lag it spoils contributes nothing
 *   batch_independence the same inputs flushed after every input, once a day, and with quarters
 *                      arriving 1-3 h late: the latest refresh per (building, tick) is the same
 *   baseline_wait      a tick waits for its hour's baseline; a forecaster that stopped stalls the
 *                      ticks only HVS_RF_BASELINE_WAIT, then the last baseline serves while it
 *                      reaches
 *   run_issue          a run issued at 10:10 (first hour 11:00) does not serve the ticks of hour
 *                      10; it serves from 11:00
 *   baselines_pending  while the partition's baselines wait to be read, ticks wait for them (no
 *                      fallback); once read, each tick has its own hour's baseline
 *   rebuild_quiet      while a partition is rebuilt, ticks the replayed inputs made ready are
 *                      quiet, the ones live inputs made ready are published
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hvs/model_registry.h"
#include "hvs_test.h"
#include "refresh_model.h"

#define MIN 60000LL
#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY
#define Q RF_QUARTER_MS
#define T0 1736121600000LL /* 2025-01-06 00:00 UTC */
#define AREA 1000.0

/* ---- a recording host ---------------------------------------------------------------------- */

#define MAX_OUT 20000

typedef struct out {
    rf_refresh_t r;
    char building[32];
    bool quiet;
} out_t;

typedef struct host {
    out_t *o;
    size_t n;
    hvs_model_ref_t *ref; /* served as refresh/global, or NULL */
    bool rebuilding, pending;
} host_t;

static int h_info(void *opaque, const char *building, rf_info_t *out) {
    (void)opaque;
    if (strncmp(building, "b", 1) != 0)
        return -1;
    *out = (rf_info_t){AREA, "old_poorly_insulated"};
    return 0;
}

static hvs_model_ref_t *h_acquire(void *opaque, const char *name) {
    host_t *h = opaque;
    if (!h->ref || strcmp(name, "refresh/global") != 0)
        return NULL;
    atomic_fetch_add(&h->ref->refs, 1);
    return h->ref;
}

static bool h_quiet(void *opaque, int32_t p) {
    (void)p;
    return ((host_t *)opaque)->rebuilding;
}

static bool h_pending(void *opaque, int32_t p) {
    (void)p;
    return ((host_t *)opaque)->pending;
}

static int h_emit(void *opaque, rf_building_t *b, const rf_refresh_t *r, bool quiet,
                  hvs_err_t *err) {
    (void)b, (void)err;
    host_t *h = opaque;
    HVS_REQUIRE(h->n < MAX_OUT, "too many refreshes");
    out_t *o = &h->o[h->n++];
    o->r = *r;
    snprintf(o->building, sizeof o->building, "%s", r->building);
    o->r.building = o->building;
    o->r.baseline_model = o->r.model_name = NULL; /* borrowed: compared by version */
    o->quiet = quiet;
    return 0;
}

static rf_t *engine(host_t *h) {
    memset(h, 0, sizeof *h);
    h->o = calloc(MAX_OUT, sizeof *h->o);
    HVS_REQUIRE(h->o, "oom");
    rf_config_t c = {.grace = 15 * MIN,
                     .baseline_wait = 2 * HOUR,
                     .reissue = 4 * HOUR,
                     .forget = 0.98,
                     .ridge = 0.1,
                     .online_min = 24};
    rf_callbacks_t cb = {h_info, h_acquire, h_quiet, h_emit, h, h_pending};
    rf_t *g;
    hvs_err_t err = {0};
    HVS_REQUIRE(rf_new(&c, &cb, &g, &err) == 0, "rf_new: %s", err.msg);
    return g;
}

static void host_free(host_t *h, rf_t *g) {
    rf_destroy(g);
    free(h->o);
    if (h->ref)
        hvs_registry_release(h->ref);
}

/* The newest refresh of (building, tick) (NULL: none). */
static const rf_refresh_t *latest(const host_t *h, const char *b, hvs_ms_t t) {
    for (size_t i = h->n; i-- > 0;)
        if (h->o[i].r.issued_at == t && strcmp(h->o[i].building, b) == 0)
            return &h->o[i].r;
    return NULL;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

/* A baseline issued at t: 8 hours from t, yhat base(hour), interval yhat -+ 2. */
static void baseline(rf_t *g, const char *b, hvs_ms_t t, double (*base)(hvs_ms_t), bool quiet) {
    hvs_ms_t th[8];
    double y[8], lo[8], hi[8];
    for (int i = 0; i < 8; i++) {
        th[i] = t + i * HOUR;
        y[i] = base(th[i]);
        lo[i] = y[i] - 2, hi[i] = y[i] + 2;
    }
    rf_baseline_in_t in = {t, "forecast/global", 3, 8, th, y, lo, hi};
    hvs_err_t err = {0};
    HVS_REQUIRE(rf_on_baseline(g, 0, b, &in, quiet, &err) == 0, "baseline: %s", err.msg);
}

static void quarter(rf_t *g, const char *b, hvs_ms_t start, double kwh, bool quiet) {
    hvs_err_t err = {0};
    HVS_REQUIRE(rf_on_quarter(g, 0, b, start, kwh, quiet, &err) == 0, "quarter: %s", err.msg);
}

static void flush(rf_t *g) {
    hvs_err_t err = {0};
    HVS_REQUIRE(rf_flush(g, &err) == 0, "flush: %s", err.msg);
}

static double base10(hvs_ms_t h) {
    (void)h;
    return 10;
}

/* A daily shape, and an actual that departs from it by a slow wave: errors that persist for
 * hours, what the correction is for. */
static double base_daily(hvs_ms_t h) { return 10 + 4 * sin(2 * M_PI * (double)(h % DAY) / DAY); }
static double actual_wave(hvs_ms_t h) {
    return base_daily(h) * (1 + 0.15 * sin(2 * M_PI * (double)(h - T0) / (37.0 * HOUR)));
}

/* Hour by hour: the hour's quarters (actual/4), then the baseline issued at its end. */
static void stream(rf_t *g, const char *b, int hours, double (*base)(hvs_ms_t),
                   double (*actual)(hvs_ms_t), bool flush_each) {
    baseline(g, b, T0, base, false);
    for (int k = 0; k < hours; k++) {
        hvs_ms_t h = T0 + k * HOUR;
        for (int q = 0; q < 4; q++)
            quarter(g, b, h + q * Q, actual(h) / 4, false);
        baseline(g, b, h + HOUR, base, false);
        if (flush_each)
            flush(g);
    }
    flush(g);
}

static double actual_biased(hvs_ms_t h) { return 1.2 * base10(h); }

/* ---- cases ----------------------------------------------------------------------------------- */

static void test_online_bias(void) {
    host_t h;
    rf_t *g = engine(&h);
    stream(g, "b1", 72, base10, actual_biased, true);
    int early = 0, late = 0;
    for (size_t i = 0; i < h.n; i++) {
        const rf_refresh_t *r = &h.o[i].r;
        if (r->issued_at % HOUR != 0)
            continue;
        HVS_CHECK(r->flags & RF_F_ONLINE, "no model: online_correction at %lld",
                  (long long)r->issued_at);
        HVS_CHECK(r->baseline_issued_at == r->issued_at && r->baseline_version == 3,
                  "the baseline issued at the tick: %lld v%d", (long long)r->baseline_issued_at,
                  r->baseline_version);
        int hours = (int)((r->issued_at - T0) / HOUR);
        if (hours < 24) {
            /* fewer than 24 hours of known error: the baseline as it is */
            HVS_CHECK((r->flags & RF_F_UNCORRECTED) && fabs(r->points[0].yhat - 10) < 1e-9,
                      "early tick %d h: uncorrected %.3f", hours, r->points[0].yhat);
            early++;
        } else if (hours >= 30) {
            HVS_CHECK(!(r->flags & RF_F_UNCORRECTED) && r->npoints == 3, "tick %d h corrected",
                      hours);
            for (int p = 0; p < r->npoints; p++) {
                HVS_CHECK(fabs(r->points[p].yhat - 12) < 0.05,
                          "tick %d h, horizon %d: refreshed %.4f, actual 12", hours,
                          r->points[p].horizon_h, r->points[p].yhat);
                HVS_CHECK(fabs(r->points[p].lo - (r->points[p].yhat - 2)) < 1e-9 &&
                              fabs(r->points[p].hi - (r->points[p].yhat + 2)) < 1e-9,
                          "interval shifted with the point");
                HVS_CHECK(fabs(r->points[p].correction - (r->points[p].yhat - 10)) < 1e-9,
                          "correction = refreshed - baseline");
                HVS_CHECK(r->points[p].target_hour == r->issued_at + p * HOUR,
                          "horizon %d is the hour %d after the tick", p + 1, p);
            }
            late++;
        }
    }
    printf("online_bias: %d early ticks uncorrected, %d corrected to the actual\n", early, late);
    HVS_CHECK(early >= 20 && late >= 40, "both phases seen: %d %d", early, late);
    HVS_CHECK(rf_stats(g)->ticks == 72 * 4, "a tick every 15 minutes from the first baseline: %llu",
              (unsigned long long)rf_stats(g)->ticks);
    host_free(&h, g);
}

/* refresh/global: an hvs-linear record with these coefficients per horizon, loaded as the
 * registry loads one. */
static const double COEF[3][5] = {
    {0.001, 0, 0.6, 0.2, 0.1}, {0.0005, 0, 0.4, 0.2, 0.1}, {0, 0, 0.3, 0.15, 0.1}};

static hvs_model_ref_t *refresh_ref(void) {
    return hvs_test_refresh_ref("refresh/global", 2, COEF);
}

static void test_model_correction(void) {
    host_t h;
    rf_t *g = engine(&h);
    h.ref = refresh_ref();
    stream(g, "b1", 48, base_daily, actual_wave, false);
    int checked = 0;
    for (size_t i = 0; i < h.n; i++) {
        const rf_refresh_t *r = &h.o[i].r;
        hvs_ms_t H0 = r->issued_at;
        if (H0 % HOUR != 0 || H0 < T0 + 3 * HOUR)
            continue;
        HVS_CHECK(!(r->flags & (RF_F_ONLINE | RF_F_MISSING_ACTUALS)) && r->model_version == 2,
                  "refresh/global v2 serves, nothing missing: flags %u v%d", r->flags,
                  r->model_version);
        double e[3];
        for (int k = 1; k <= 3; k++) {
            hvs_ms_t hr = H0 - k * HOUR;
            /* the served baseline of an hour is the one issued at its start (float as kept) */
            e[k - 1] = ((double)(float)(actual_wave(hr) / 4) * 4 - (double)(float)base_daily(hr)) /
                       AREA;
        }
        for (int p = 0; p < r->npoints; p++) {
            const double *c = COEF[p];
            double corr = (c[0] + c[2] * e[0] + c[3] * e[1] + c[4] * e[2]) * AREA;
            double want = (double)(float)base_daily(H0 + p * HOUR) + corr;
            HVS_CHECK(fabs(r->points[p].yhat - want) < 1e-3 * (1 + fabs(want)),
                      "tick %lld horizon %d: %.6f, coefficients give %.6f", (long long)H0, p + 1,
                      r->points[p].yhat, want);
            checked++;
        }
    }
    printf("model_correction: %d points equal to the coefficients' correction\n", checked);
    HVS_CHECK(checked >= 3 * 40, "points checked: %d", checked);
    host_free(&h, g);
}

static void test_intra_hour(void) {
    host_t h;
    rf_t *g = engine(&h);
    stream(g, "b1", 40, base10, actual_biased, false);
    /* hour 40: two quarters of 3.5 kWh measured by 40 h 30 */
    hvs_ms_t H = T0 + 40 * HOUR;
    quarter(g, "b1", H, 3.5, false);
    quarter(g, "b1", H + Q, 3.5, false);
    quarter(g, "b1", H + 2 * Q, 3.5, false);
    quarter(g, "b1", H + 3 * Q, 3.5, false); /* makes H + 30 and H + 45 ready */
    flush(g);
    const rf_refresh_t *on = latest(&h, "b1", H), *half = latest(&h, "b1", H + 2 * Q);
    HVS_REQUIRE(on && half, "ticks at the hour and 30 minutes in");
    double corrected = on->points[0].yhat; /* nothing of hour H measured at H */
    double want = 7 + corrected / 2;
    HVS_CHECK(fabs(half->points[0].yhat - want) < 1e-9,
              "30 minutes in: 2 x 3.5 measured + half of %.4f = %.4f, got %.4f", corrected, want,
              half->points[0].yhat);
    HVS_CHECK(fabs(half->points[0].hi - half->points[0].yhat - 1) < 1e-9 &&
                  fabs(half->points[0].yhat - half->points[0].lo - 1) < 1e-9,
              "the interval covers the unmeasured half: [%.4f, %.4f] about %.4f",
              half->points[0].lo, half->points[0].hi, half->points[0].yhat);
    HVS_CHECK(fabs(half->points[1].yhat - on->points[1].yhat) < 1e-9,
              "horizon 2 is not a blend: %.4f vs %.4f", half->points[1].yhat, on->points[1].yhat);
    host_free(&h, g);
}

static void test_missing_quarter(void) {
    host_t h;
    rf_t *g = engine(&h);
    h.ref = refresh_ref();
    baseline(g, "b1", T0, base10, false);
    hvs_ms_t gap = T0 + 20 * HOUR + 2 * Q; /* never sent */
    for (int k = 0; k < 30; k++) {
        hvs_ms_t hr = T0 + k * HOUR;
        for (int q = 0; q < 4; q++)
            if (hr + q * Q != gap)
                quarter(g, "b1", hr + q * Q, 3, false);
        baseline(g, "b1", hr + HOUR, base10, false);
    }
    flush(g);
    for (size_t i = 0; i < h.n; i++) {
        const rf_refresh_t *r = &h.o[i].r;
        hvs_ms_t t = r->issued_at;
        /* reads hour 20: lags of ticks in hours 21-23, its own quarters in hour 20 after gap */
        bool reads = (t >= T0 + 21 * HOUR && t < T0 + 24 * HOUR) || (t > gap && t < T0 + 21 * HOUR);
        HVS_CHECK(((r->flags & RF_F_MISSING_ACTUALS) != 0) == reads || t < T0 + 3 * HOUR,
                  "tick %+lld min: missing_actuals %d, reads the gap %d",
                  (long long)((t - gap) / MIN), (r->flags & RF_F_MISSING_ACTUALS) != 0, reads);
    }
    /* at 22:00 the lags are hours 21 (error 2), 20 (missing), 19 (error 2) */
    const rf_refresh_t *r = latest(&h, "b1", T0 + 22 * HOUR);
    HVS_REQUIRE(r, "tick 22:00");
    double e = 2 / AREA, corr = (COEF[0][0] + COEF[0][2] * e + COEF[0][4] * e) * AREA;
    HVS_CHECK(fabs(r->points[0].yhat - (10 + corr)) < 1e-6,
              "the missing hour's lag contributes nothing: %.6f, want %.6f", r->points[0].yhat,
              10 + corr);
    host_free(&h, g);
}

/* Latest refresh per (building, tick) of two runs equal (points, flags, baseline). */
static void same_latest(const host_t *a, const host_t *b, const char *what) {
    int diffs = 0, n = 0;
    for (size_t i = 0; i < a->n; i++) {
        const rf_refresh_t *x = latest(a, a->o[i].building, a->o[i].r.issued_at);
        if (x != &a->o[i].r)
            continue; /* not the latest of its key */
        n++;
        const rf_refresh_t *y = latest(b, x->building, x->issued_at);
        bool same = y && y->npoints == x->npoints && y->flags == x->flags &&
                    y->baseline_issued_at == x->baseline_issued_at;
        for (int p = 0; same && p < x->npoints; p++)
            same = x->points[p].yhat == y->points[p].yhat && x->points[p].lo == y->points[p].lo &&
                   x->points[p].target_hour == y->points[p].target_hour;
        if (!same && diffs++ < 5)
            printf("%s: %s at %lld: %.6f (flags %u) vs %.6f (flags %u)\n", what, x->building,
                   (long long)x->issued_at, x->points[0].yhat, x->flags,
                   y ? y->points[0].yhat : NAN, y ? y->flags : 0);
    }
    HVS_CHECK(diffs == 0 && n > 100, "%s: %d of %d latest refreshes differ", what, diffs, n);
    /* and nothing in b that a lacks */
    for (size_t i = 0; i < b->n; i++)
        HVS_CHECK(latest(a, b->o[i].building, b->o[i].r.issued_at), "%s: extra tick", what);
}

/* Two buildings, 3 days; late: every 7th quarter of b2 arrives 1-3 h after its time. */
static void messy(rf_t *g, int flush_every, bool late) {
    const char *bs[2] = {"b1", "b2"};
    int inputs = 0;
    typedef struct {
        hvs_ms_t at, start;
        double kwh;
    } held_t;
    held_t held[200];
    size_t nh = 0;
    for (int b = 0; b < 2; b++)
        baseline(g, bs[b], T0, base_daily, false);
    for (int k = 0; k < 72; k++) {
        hvs_ms_t hr = T0 + k * HOUR;
        for (int q = 0; q < 4; q++) {
            hvs_ms_t now = hr + (q + 1) * Q;
            for (size_t i = 0; i < nh;) /* held quarters whose time came */
                if (held[i].at <= now) {
                    quarter(g, "b2", held[i].start, held[i].kwh, false);
                    held[i] = held[--nh];
                } else
                    i++;
            for (int b = 0; b < 2; b++) {
                double kwh = actual_wave(hr) / 4 * (b ? 0.9 : 1.0);
                int idx = k * 4 + q;
                if (late && b == 1 && idx % 7 == 3 && nh < 200)
                    held[nh++] = (held_t){now + (1 + idx % 3) * HOUR, hr + q * Q, kwh};
                else
                    quarter(g, bs[b], hr + q * Q, kwh, false);
                if (flush_every && ++inputs % flush_every == 0)
                    flush(g);
            }
        }
        for (int b = 0; b < 2; b++)
            baseline(g, bs[b], hr + HOUR, base_daily, false);
        if (!flush_every && k % 24 == 23)
            flush(g);
    }
    for (size_t i = 0; i < nh; i++)
        quarter(g, "b2", held[i].start, held[i].kwh, false);
    flush(g);
}

static void test_batch_independence(void) {
    host_t a, b, c;
    rf_t *ga = engine(&a), *gb = engine(&b), *gc = engine(&c);
    messy(ga, 1, false);
    messy(gb, 0, false);
    messy(gc, 5, true);
    same_latest(&a, &b, "flushed each input vs once a day");
    same_latest(&a, &c, "quarters 1-3 h late");
    printf("batch_independence: %zu / %zu / %zu refreshes, %llu made again in the late run\n", a.n,
           b.n, c.n, (unsigned long long)rf_stats(gc)->again);
    HVS_CHECK(rf_stats(gc)->again > 0, "late quarters made ticks again");
    host_free(&a, ga);
    host_free(&b, gb);
    host_free(&c, gc);
}

static void test_baseline_wait(void) {
    host_t h;
    rf_t *g = engine(&h);
    /* baselines only up to 10:00; quarters to 20:00 */
    baseline(g, "b1", T0, base10, false);
    for (int k = 0; k < 20; k++) {
        hvs_ms_t hr = T0 + k * HOUR;
        for (int q = 0; q < 4; q++) {
            quarter(g, "b1", hr + q * Q, 3, false);
            flush(g);
            hvs_ms_t wm = hr + (q + 1) * Q;
            rf_partition_t *pt = rf_partition(g, 0, false);
            /* ticks up to wm - grace, but never past the baseline's hour + wait */
            hvs_ms_t want = wm - 15 * MIN;
            if (want >= T0 + 11 * HOUR) {
                want = wm - 2 * HOUR;
                if (want < T0 + 10 * HOUR + 45 * MIN)
                    want = T0 + 10 * HOUR + 45 * MIN;
            }
            HVS_CHECK(pt->last_tick == want || k < 1,
                      "watermark %+lld min: last tick %+lld min, want %+lld min",
                      (long long)((wm - T0) / MIN), (long long)((pt->last_tick - T0) / MIN),
                      (long long)((want - T0) / MIN));
        }
        if (k < 10)
            baseline(g, "b1", hr + HOUR, base10, false);
    }
    /* the 10:00 baseline's 8 hours reach 17:59: ticks in hours 16-17 have fewer points, after
     * that none */
    const rf_refresh_t *r16 = latest(&h, "b1", T0 + 16 * HOUR);
    const rf_refresh_t *r17 = latest(&h, "b1", T0 + 17 * HOUR + 30 * MIN);
    HVS_CHECK(r16 && r16->npoints == 2 && r16->baseline_issued_at == T0 + 10 * HOUR,
              "16:00 served by the 10:00 baseline, 2 points: %d", r16 ? r16->npoints : -1);
    HVS_CHECK(r17 && r17->npoints == 1, "17:30: 1 point: %d", r17 ? r17->npoints : -1);
    HVS_CHECK(!latest(&h, "b1", T0 + 18 * HOUR) && rf_stats(g)->no_baseline > 0,
              "18:00: the baseline no longer reaches: skipped (%llu)",
              (unsigned long long)rf_stats(g)->no_baseline);
    host_free(&h, g);
}

/* Baselines not read yet are not a stalled forecaster: while the partition's baselines wait to
 * be read (a backlog hands over the quarters first), no tick takes the wait's fallback. */
static void test_baselines_pending(void) {
    host_t h;
    rf_t *g = engine(&h);
    h.pending = true;
    baseline(g, "b1", T0, base10, false);
    for (int k = 0; k < 6; k++)
        for (int q = 0; q < 4; q++)
            quarter(g, "b1", T0 + k * HOUR + q * Q, 3, false);
    rf_partition_t *pt = rf_partition(g, 0, false);
    HVS_CHECK(pt->last_tick == T0 + 45 * MIN,
              "baselines pending: no tick past the 00:00 baseline's hour: %+lld min",
              (long long)((pt->last_tick - T0) / MIN));
    /* the baselines arrive: every tick made, each with its own hour's baseline */
    for (int k = 1; k <= 5; k++)
        baseline(g, "b1", T0 + k * HOUR, base10, false);
    HVS_CHECK(pt->last_tick == T0 + 5 * HOUR + 45 * MIN, "caught up: %+lld min",
              (long long)((pt->last_tick - T0) / MIN));
    const rf_refresh_t *r = latest(&h, "b1", T0 + 3 * HOUR + 15 * MIN);
    HVS_CHECK(r && r->baseline_issued_at == T0 + 3 * HOUR, "03:15 served by the 03:00 baseline");
    /* nothing pending and no newer baseline: the fallback, 2 h behind the quarters */
    h.pending = false;
    for (int q = 0; q < 4; q++)
        quarter(g, "b1", T0 + 6 * HOUR + q * Q, 3, false);
    HVS_CHECK(pt->last_tick == T0 + 5 * HOUR + 45 * MIN, "06:xx quarters: ticks to 05:45 (wait)");
    for (int q = 0; q < 4; q++)
        quarter(g, "b1", T0 + 7 * HOUR + q * Q, 3, false);
    HVS_CHECK(pt->last_tick == T0 + 6 * HOUR, "fallback: 08:00 - 2 h = 06:00: %+lld min",
              (long long)((pt->last_tick - T0) / MIN));
    host_free(&h, g);
}

static void test_rebuild_quiet(void) {
    host_t h;
    rf_t *g = engine(&h);
    h.rebuilding = true;
    /* replayed: 6 hours of both inputs */
    baseline(g, "b1", T0, base10, true);
    for (int k = 0; k < 6; k++) {
        hvs_ms_t hr = T0 + k * HOUR;
        for (int q = 0; q < 4; q++)
            quarter(g, "b1", hr + q * Q, 3, true);
        baseline(g, "b1", hr + HOUR, base10, true);
    }
    /* live, in the same batch: the next hour */
    for (int q = 0; q < 4; q++)
        quarter(g, "b1", T0 + 6 * HOUR + q * Q, 3, false);
    flush(g);
    int quiet = 0, loud = 0;
    for (size_t i = 0; i < h.n; i++) {
        /* ready on the replayed quarters alone: up to 06:00 - grace */
        bool want_quiet = h.o[i].r.issued_at <= T0 + 5 * HOUR + 45 * MIN;
        HVS_CHECK(h.o[i].quiet == want_quiet, "tick %+lld min quiet %d",
                  (long long)((h.o[i].r.issued_at - T0) / MIN), h.o[i].quiet);
        quiet += h.o[i].quiet, loud += !h.o[i].quiet;
    }
    HVS_CHECK(quiet == 24 && loud == 4, "24 replayed ticks quiet, 4 live ones published: %d %d",
              quiet, loud);
    host_free(&h, g);
}

/* A forecast run's issue between hours (10:10: its first hour is 11:00): the ticks of 10:15-10:45
 * keep the 10:00 baseline for hour 10, and from 11:00 the run's serves until a newer one. */
static double base12(hvs_ms_t h) {
    (void)h;
    return 12;
}

static void test_run_issue(void) {
    host_t h;
    rf_t *g = engine(&h);
    stream(g, "b1", 10, base10, actual_biased, false);
    baseline(g, "b1", T0 + 10 * HOUR + 10 * MIN, base12, false); /* first hour 11:00 */
    /* no baseline issued at 11:00: tick 11:00 waits until the quarters are 2 h past it */
    for (int k = 10; k < 13; k++)
        for (int q = 0; q < 4; q++)
            quarter(g, "b1", T0 + k * HOUR + q * Q, 3, false);
    flush(g);
    for (int m = 15; m <= 45; m += 15) {
        const rf_refresh_t *r = latest(&h, "b1", T0 + 10 * HOUR + m * MIN);
        HVS_CHECK(r && r->npoints == 3 && r->baseline_issued_at == T0 + 10 * HOUR,
                  "10:%02d: the 10:00 baseline, 3 points (%d, issued %+lld min)", m,
                  r ? r->npoints : -1, r ? (long long)((r->baseline_issued_at - T0) / MIN) : -1);
    }
    const rf_refresh_t *r = latest(&h, "b1", T0 + 11 * HOUR);
    HVS_CHECK(r && r->baseline_issued_at == T0 + 10 * HOUR + 10 * MIN &&
                  fabs(r->points[0].yhat - r->points[0].correction - 12) < 1e-3,
              "11:00: the 10:10 run serves (baseline point 12)");
    host_free(&h, g);
}

static const hvs_test_case_t cases[] = {
    {"run_issue", test_run_issue},
    {"online_bias", test_online_bias},
    {"model_correction", test_model_correction},
    {"intra_hour", test_intra_hour},
    {"missing_quarter", test_missing_quarter},
    {"batch_independence", test_batch_independence},
    {"baseline_wait", test_baseline_wait},
    {"baselines_pending", test_baselines_pending},
    {"rebuild_quiet", test_rebuild_quiet},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
