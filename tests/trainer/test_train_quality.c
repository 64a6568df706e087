/*
 * test_train_quality - the trainer on a simulated fleet (seeded: 10 buildings x 20 flats, 200
 * days), its numbers computed here from predictions and actuals:
 *   - forecast/global, day-ahead on the held-out folds: WAPE at least 35 % below seasonal naive
 *     (the hour a week before) and at least 8 % below a linear heating-degree-hours +
 *     hour-of-week regression that this test fits itself on the same training rows;
 *   - the physics stress test finds no violation with the monotone constraints, and finds some
 *     without them on data where the cold spells are the sunny ones;
 *   - the leakage guard rejects a run that carries a column using the future (the target hour's
 *     own consumption), and passes one whose extra column is honest;
 *   - a second run scores the first as its champion on the same rows.
 * The history is built as the trainer's consume loop would: hourly building heat from the flats'
 * counters, observed weather after each hour, forecasts issued at 00/06/12/18 UTC (available 2 h
 * later) for 72 h.
 */
#include <math.h>

#include "delivery.h"
#include "fleet.h"
#include "hvs/featstore.h"
#include "hvs/log.h"
#include "hvs_test.h"
#include "sim.h"
#include "train.h"
#include "weather.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define DAYS 200

static sim_fleet_t *fleet;
static sim_conf_t conf;
static tr_history_t *hist;

static int info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque;
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        if (strcmp(fleet->buildings[b].id, building) == 0) {
            *out = (tr_building_info_t){fleet->buildings[b].heated_area_m2,
                                        fleet->buildings[b].commissioned, fleet->buildings[b].calendar};
            return 0;
        }
    return -1;
}

/* Hourly heat per building from the reported counters (increments spread over their span). */
static void simulate(hvs_ms_t start, double **heat_out) {
    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = 11;
    fp.start = start;
    fp.end = start + DAYS * DAY;
    fp.buildings = 10;
    fp.apartments_per_building = 20;
    fp.new_building_fraction = 0;
    hvs_err_t err;
    HVS_REQUIRE(sim_fleet_new(&fp, &fleet, &err) == 0, "fleet: %s", err.msg);
    sim_conf_default(&conf, 11);
    sim_delivery_conf_t dc;
    sim_delivery_conf_clean(&dc);
    uint32_t apts[16];
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        apts[b] = fleet->buildings[b].napartments;
    sim_delivery_t *d;
    sim_t *sim;
    HVS_REQUIRE(sim_delivery_new(&dc, 11, fleet->nbuildings, apts, NULL, &d, &err) == 0 &&
                    sim_new(fleet, &conf, d, NULL, &sim, &err) == 0,
                "sim: %s", err.msg);
    size_t nh = DAYS * 24;
    double *heat = calloc(fleet->nbuildings * nh, sizeof *heat);
    double last_v[16][32];
    hvs_ms_t last_t[16][32];
    for (int b = 0; b < 16; b++)
        for (int a = 0; a < 32; a++)
            last_v[b][a] = NAN, last_t[b][a] = 0;
    sim_record_t r;
    for (hvs_ms_t t = fp.start + SIM_STEP_MS; t <= fp.end; t += SIM_STEP_MS) {
        HVS_REQUIRE(sim_step(sim, t, &err) == 0, "step: %s", err.msg);
        while (sim_delivery_pop(d, t, &r)) {
            for (int i = 0; i < r.n; i++) {
                if (r.v[i].sensor != SIM_S_HEAT_KWH || r.apartment >= 32)
                    continue;
                double *lv = &last_v[r.building][r.apartment];
                hvs_ms_t *lt = &last_t[r.building][r.apartment];
                if (!isnan(*lv) && r.v[i].value > *lv) {
                    double kwh = r.v[i].value - *lv;
                    for (hvs_ms_t a = *lt; a < r.timestamp;) {
                        hvs_ms_t h = a - (a - start) % HOUR, e = h + HOUR < r.timestamp ? h + HOUR : r.timestamp;
                        size_t k = (size_t)((h - start) / HOUR);
                        if (k < nh)
                            heat[r.building * nh + k] += kwh * (double)(e - a) / (double)(r.timestamp - *lt);
                        a = e;
                    }
                }
                *lv = r.v[i].value, *lt = r.timestamp;
            }
        }
    }
    sim_destroy(sim);
    sim_delivery_destroy(d);
    *heat_out = heat;
}

static void build_history(hvs_ms_t start, const double *heat) {
    size_t nh = DAYS * 24;
    hist = tr_history_new(nh + 24, 100);
    for (uint32_t b = 0; b < fleet->nbuildings; b++) {
        const sim_building_t *bl = &fleet->buildings[b];
        for (size_t k = 24; k < nh; k++) { /* the first day: counters not started everywhere */
            hvs_ms_t h = start + (hvs_ms_t)k * HOUR;
            hvs_feat_hour_t x = {h, heat[b * nh + k], NAN, NAN, NAN, NAN, 0};
            tr_history_put_hour(hist, bl->id, HVS_FS_BUILDING, &x);
            sim_weather_t w;
            sim_weather_observed(&conf.weather, bl->latitude, bl->longitude, conf.elevation_m,
                                 h + HOUR / 2, &w);
            hvs_feat_wx_t obs = {h + HOUR + 10 * 60000, true, w.temperature_c, w.relative_humidity_pct,
                                 w.cloud_cover_pct, w.shortwave_radiation_wm2, w.wind_speed_ms};
            tr_history_put_weather(hist, bl->id, h, &obs);
        }
        for (hvs_ms_t issue = start; issue < start + (hvs_ms_t)nh * HOUR; issue += 6 * HOUR)
            for (int l = 1; l <= 72; l++) {
                hvs_ms_t h = issue + l * HOUR;
                sim_weather_t w;
                sim_weather_forecast(&conf.weather, bl->latitude, bl->longitude, conf.elevation_m, issue,
                                     h + HOUR / 2, &w);
                hvs_feat_wx_t fc = {issue + 2 * HOUR, false, w.temperature_c, w.relative_humidity_pct,
                                    w.cloud_cover_pct, w.shortwave_radiation_wm2, w.wind_speed_ms};
                tr_history_put_weather(hist, bl->id, h, &fc);
            }
    }
}

static const int horizons[] = {1, 2, 3, 4, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 42, 48, 60, 72};

static tr_config_t base_conf(void) {
    tr_config_t c = {.folds = 3, .fold_days = 14, .min_train_days = 60, .horizons = horizons,
                     .nhorizons = sizeof horizons / sizeof *horizons, .per_hour = 4,
                     .max_rows = 400000, .max_wape = 0.6, .min_improvement = 0.02,
                     .auto_approve = true, .monotone = true, .weather_wait = 2 * HOUR,
                     .leak_sample = 100, .keep_eval = true};
    c.xgb = (hvs_train_params_t){.rounds = 600, .eta = 0.05, .max_depth = 6, .nthread = 2, .seed = 3,
                                 .min_child_weight = 5, .subsample = 0.8, .colsample = 0.8};
    return c;
}

/* Least squares per building: y/area ~ b0 + b1 hdh + hour-of-week dummies (167), fitted on its
 * rows of hours before `until` (a pooled fit would be unfair: archetypes differ tenfold per m2). */
#define NP 169
static void linear_fit(const tr_rows_t *r, int group, int ihdh, int ihour, int iwd, hvs_ms_t until,
                       double *beta) {
    static double A[NP][NP + 1];
    memset(A, 0, sizeof A);
    for (size_t i = 0; i < r->n; i++) {
        if (r->hour[i] >= until || r->group[i] != group)
            continue;
        const float *x = &r->x[i * r->ncols];
        if (!isfinite(x[ihdh]) || !isfinite(r->y[i]))
            continue;
        double f[NP] = {0};
        f[0] = 1;
        f[1] = x[ihdh];
        int how = (int)x[iwd] * 24 + (int)x[ihour];
        if (how > 0 && how < 168)
            f[1 + how] = 1;
        for (int a = 0; a < NP; a++)
            if (f[a] != 0) {
                for (int b = 0; b < NP; b++)
                    A[a][b] += f[a] * f[b];
                A[a][NP] += f[a] * r->y[i];
            }
    }
    for (int a = 0; a < NP; a++)
        A[a][a] += 1e-6; /* a ridge against empty hour-of-week cells */
    for (int c = 0; c < NP; c++) { /* Gauss-Jordan with partial pivoting */
        int p = c;
        for (int k = c + 1; k < NP; k++)
            if (fabs(A[k][c]) > fabs(A[p][c]))
                p = k;
        for (int k = 0; k <= NP; k++) {
            double t = A[c][k];
            A[c][k] = A[p][k];
            A[p][k] = t;
        }
        for (int k = 0; k < NP; k++)
            if (k != c && A[k][c] != 0) {
                double m = A[k][c] / A[c][c];
                for (int q = c; q <= NP; q++)
                    A[k][q] -= m * A[c][q];
            }
    }
    for (int a = 0; a < NP; a++)
        beta[a] = A[a][NP] / A[a][a];
}

static int col(tr_task_t t, const char *name) {
    size_t n;
    const char *const *f = tr_task_features(t, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i], name) == 0)
            return (int)i;
    return -1;
}

static void test_forecast(hvs_ms_t start) {
    tr_config_t c = base_conf();
    hvs_ms_t from = start + 2 * DAY, to = start + DAYS * DAY;
    tr_result_t r;
    hvs_err_t err = {0};
    int rc = tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &c, NULL, &r, &err);
    HVS_REQUIRE(rc == 0, "train: %s", err.msg);
    HVS_CHECK(r.status == HVS_MODEL_APPROVED, "status %s: %s", hvs_model_status_name(r.status), r.reason);
    HVS_CHECK(r.eval_rows > 10 * 3 * 14 * 20, "%zu day-ahead rows scored", r.eval_rows);
    /* WAPE of model and naive from the scored rows, computed here */
    double em = 0, en = 0, sy = 0;
    for (size_t i = 0; i < r.eval_rows; i++) {
        if (!isfinite(r.eval_naive[i]))
            continue;
        double y = r.eval_y[i] * r.eval_scale[i];
        em += fabs(y - r.eval_pred[i] * r.eval_scale[i]);
        en += fabs(y - r.eval_naive[i] * r.eval_scale[i]);
        sy += y;
    }
    double wm = em / sy, wn = en / sy;
    /* the linear baseline, per fold, fitted on the fold's training rows */
    tr_select_t sel = {.task = TR_FORECAST, .from = from, .to = to, .horizons = horizons,
                       .nhorizons = c.nhorizons, .per_hour = c.per_hour, .seed = 17, .weather_wait = 2 * HOUR};
    tr_rows_t tr;
    HVS_REQUIRE(tr_rows_build(hist, &sel, info, NULL, &tr, &err) == 0, "rows");
    int ihdh = col(TR_FORECAST, "hdh"), ihour = col(TR_FORECAST, "hour"), iwd = col(TR_FORECAST, "weekday");
    double el = 0, sl = 0;
    hvs_ms_t first_test = hvs_time_day_start(to) - 3 * 14 * DAY;
    for (int k = 0; k < 3; k++)
        for (int g = 0; g < (int)fleet->nbuildings; g++) {
        double beta[NP];
        linear_fit(&tr, g, ihdh, ihour, iwd, first_test + k * 14 * DAY, beta);
        for (size_t i = 0; i < r.eval_rows; i++) {
            if (r.eval_fold[i] != k || r.eval_group[i] != g || !isfinite(r.eval_naive[i]))
                continue;
            const float *x = &r.eval_x[i * r.eval_ncols];
            int how = (int)x[iwd] * 24 + (int)x[ihour];
            double p = beta[0] + beta[1] * (isfinite(x[ihdh]) ? x[ihdh] : 0) + (how > 0 && how < 168 ? beta[1 + how] : 0);
            double y = r.eval_y[i] * r.eval_scale[i];
            el += fabs(y - p * r.eval_scale[i]);
            sl += y;
        }
        }
    double wl = el / sl;
    printf("day-ahead WAPE: model %.4f, seasonal naive %.4f, linear HDH + hour-of-week per building %.4f "
           "(%zu rows; run of %zu training rows in %.1f s)\n",
           wm, wn, wl, r.eval_rows, r.rows, r.seconds);
    printf("per horizon bucket WAPE: 1-6 h %.4f, 7-24 h %.4f, 25-48 h %.4f, 49-72 h %.4f\n",
           r.bucket_wape[0], r.bucket_wape[1], r.bucket_wape[2], r.bucket_wape[3]);
    HVS_CHECK(wm <= 0.65 * wn, "model %.4f at least 35 %% below naive %.4f (%.1f %% below)", wm, wn,
              100 * (1 - wm / wn));
    HVS_CHECK(wm <= 0.92 * wl, "model %.4f at least 8 %% below the linear baseline %.4f (%.1f %% below)",
              wm, wl, 100 * (1 - wm / wl));
    HVS_CHECK(fabs(r.metrics.wape - em / sy) < 0.05, "reported WAPE %.4f", r.metrics.wape);
    HVS_CHECK(r.monotone_violations == 0 && r.stress_rows > 100, "stress test: %d of %d violate",
              r.monotone_violations, r.stress_rows);
    /* The horizon choice, measured: one model for every horizon (the horizon a feature, lags
     * masked beyond it) against a model of the day-ahead bucket alone (13-36 h), on the same
     * day-ahead rows. */
    static const int day_ahead[] = {13, 15, 18, 21, 24, 27, 30, 33, 36};
    tr_config_t cb = base_conf();
    cb.horizons = day_ahead;
    cb.nhorizons = sizeof day_ahead / sizeof *day_ahead;
    cb.keep_eval = false;
    tr_result_t rb;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &cb, NULL, &rb,
                         &err) == 0,
                "bucket model: %s", err.msg);
    printf("horizon choice: one model for 1-72 h %.4f, a day-ahead-only model %.4f (day-ahead WAPE)\n",
           r.metrics.wape, rb.metrics.wape);
    HVS_CHECK(isfinite(rb.metrics.wape) && rb.metrics.wape < rb.naive.wape, "the bucket model trained: %.4f",
              rb.metrics.wape);
    tr_result_free(&rb);
    /* a second run with the first as champion: compared on the same rows */
    hvs_model_ref_t champ = {.name = "forecast/global", .version = 1, .model = r.model};
    size_t nf;
    const char *const *f = tr_task_features(TR_FORECAST, &nf);
    champ.features = (char **)f;
    champ.nfeatures = nf;
    tr_config_t c2 = base_conf();
    c2.xgb.seed = 9;
    c2.xgb.rounds = 150; /* the champion's scoring is the point, not the challenger's quality */
    c2.keep_eval = false;
    tr_result_t r2;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &c2, &champ, &r2,
                         &err) == 0,
                "train 2: %s", err.msg);
    HVS_CHECK(r2.has_champion && isfinite(r2.champion.wape) && r2.champion.wape < r2.naive.wape,
              "champion scored: %.4f (new %.4f) -> %s: %s", r2.champion.wape, r2.metrics.wape,
              hvs_model_status_name(r2.status), r2.reason);
    tr_result_free(&r2);
    tr_rows_free(&tr);
    tr_result_free(&r);
}

/* The target hour's own consumption: known only after the hour. */
static double leaky(const hvs_feat_history_t *h, hvs_ms_t target, hvs_ms_t as_of) {
    (void)as_of;
    const hvs_feat_hour_t *s = hvs_feat_hour_get(h, target);
    return s ? s->use : NAN;
}

/* A week-old value: known at any as_of of a horizon up to 72 h. */
static double honest(const hvs_feat_history_t *h, hvs_ms_t target, hvs_ms_t as_of) {
    (void)as_of;
    const hvs_feat_hour_t *s = hvs_feat_hour_get(h, target - 168 * HOUR);
    return s ? s->use : NAN;
}

static void test_leakage(hvs_ms_t start) {
    tr_config_t c = base_conf();
    c.extra = leaky;
    c.keep_eval = false;
    c.xgb.rounds = 50;
    tr_result_t r;
    hvs_err_t err = {0};
    const char *one[] = {fleet->buildings[0].id, fleet->buildings[1].id};
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", one, 2, start + 2 * DAY, start + DAYS * DAY,
                         info, NULL, &c, NULL, &r, &err) == 0,
                "train: %s", err.msg);
    HVS_CHECK(r.status == HVS_MODEL_REJECTED && strstr(r.reason, "leak check") && strstr(r.reason, "extra"),
              "a column using the target hour is caught: %s", r.reason);
    tr_result_free(&r);
    c.extra = honest;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", one, 2, start + 2 * DAY, start + DAYS * DAY,
                         info, NULL, &c, NULL, &r, &err) == 0,
                "train: %s", err.msg);
    HVS_CHECK(!strstr(r.reason, "leak"), "an honest extra column passes: %s", r.reason);
    tr_result_free(&r);
}

/* Sunny-cold-biased data: one building whose coldest hours are the sunniest, with the sun
 * cutting the heat more than the cold adds. Without constraints the model learns "colder ->
 * less heating" at fixed irradiance; with them it cannot. */
static int synthetic_info(void *opaque, const char *building, tr_building_info_t *out) {
    hvs_calendar_t *cal = opaque;
    (void)building;
    *out = (tr_building_info_t){1000.0, HVS_MS_NONE, cal};
    return 0;
}

static void test_monotone(void) {
    hvs_calendar_t *cal;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_calendar_new("CH-ZH", &cal, &err) == 0, "calendar");
    tr_history_t *h = tr_history_new(150 * 24, 10);
    hvs_ms_t start = 1704067200000LL; /* 2024-01-01 */
    uint64_t s = 5;
    for (int k = 0; k < 140 * 24; k++) {
        hvs_ms_t hr = start + (hvs_ms_t)k * HOUR;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        double temp = 8 - 14 * u;                        /* -6 .. 8 */
        double ghi = temp < -2 ? 500 + 50 * u : 40 * u;  /* the cold spells are the sunny ones */
        double use = 50 + 4 * (18 - temp) - (ghi > 300 ? 70 : 0) + 3 * u;
        hvs_feat_hour_t x = {hr, use, NAN, NAN, NAN, NAN, 0};
        tr_history_put_hour(h, "b", HVS_FS_BUILDING, &x);
        for (int l = 0; l <= 72; l += 6) {
            hvs_feat_wx_t w = {hr - l * HOUR + (l ? 0 : HOUR + 60000), l == 0, temp, 70, 20, ghi, 2};
            tr_history_put_weather(h, "b", hr, &w);
        }
    }
    tr_config_t c = base_conf();
    c.keep_eval = false;
    c.folds = 1;
    c.min_train_days = 60;
    c.max_wape = 0; /* not the point here */
    tr_result_t free_r, con_r;
    c.monotone = false;
    HVS_REQUIRE(tr_train(h, TR_FORECAST, "forecast/building:b", NULL, 0, start + 8 * DAY, start + 140 * DAY,
                         synthetic_info, cal, &c, NULL, &free_r, &err) == 0,
                "train: %s", err.msg);
    c.monotone = true;
    HVS_REQUIRE(tr_train(h, TR_FORECAST, "forecast/building:b", NULL, 0, start + 8 * DAY, start + 140 * DAY,
                         synthetic_info, cal, &c, NULL, &con_r, &err) == 0,
                "train: %s", err.msg);
    printf("stress test on sunny-cold data: unconstrained %d of %d rows heat less when colder, "
           "constrained %d of %d\n",
           free_r.monotone_violations, free_r.stress_rows, con_r.monotone_violations, con_r.stress_rows);
    HVS_CHECK(free_r.monotone_violations > 0, "unconstrained model fails the stress test: %d",
              free_r.monotone_violations);
    HVS_CHECK(con_r.monotone_violations == 0, "constrained model passes: %d", con_r.monotone_violations);
    tr_result_free(&free_r);
    tr_result_free(&con_r);
    tr_history_free(h);
    hvs_calendar_destroy(cal);
}

int main(void) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    hvs_ms_t start = 1727740800000LL; /* 2024-10-01 */
    double *heat;
    simulate(start, &heat);
    build_history(start, heat);
    free(heat);
    test_monotone();
    test_leakage(start);
    test_forecast(start);
    tr_history_free(hist);
    sim_fleet_destroy(fleet);
    return hvs_test_done();
}
