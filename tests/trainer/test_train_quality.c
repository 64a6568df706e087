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
 *   - a second run scores the first as its champion on the same rows;
 *   - refresh (per-horizon coefficients fitted on forecast/global's backtest) lowers the 1-3 h
 *     WAPE of the day-ahead baseline on the held-out fold; the uncorrected figure is recomputed
 *     here from the backtest's rows;
 *   - anomaly tasks against the simulator's fault episodes (every apartment-day of a fault is a
 *     positive, every other a negative): anomaly-residual's precision@k / recall@k, recomputed
 *     here from its scored rows and the episodes, beat chance; anomaly-classifier trained on the
 *     same labels beats chance too.
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
#include "labels.h"
#include "refresh.h"
#include "sim.h"
#include "sim_history.h"
#include "train.h"
#include "weather.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define DAYS 200

static sim_history_t world; /* the simulated fleet (sim_history.h) */
static sim_fleet_t *fleet;
static tr_history_t *hist;
#define APTS 20
/* per building x apartment x hour: heat, mean reported room temperature and setpoint */
static double *apt_heat, *apt_temp, *apt_set;
#define AIX(b, a, k) ((((size_t)(b)*APTS) + (size_t)(a)) * (DAYS * 24) + (size_t)(k))

static int info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque;
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        if (strcmp(fleet->buildings[b].id, building) == 0) {
            *out = (tr_building_info_t){fleet->buildings[b].heated_area_m2,
                                        fleet->buildings[b].commissioned,
                                        fleet->buildings[b].calendar, NULL};
            return 0;
        }
    return -1;
}

/* Hourly heat per building from the reported counters (increments spread over their span). */
static void build_history(hvs_ms_t start, const double *heat) {
    size_t nh = DAYS * 24;
    hist = tr_history_new(nh + 24, (size_t)fleet->nbuildings * APTS);
    for (uint32_t b = 0; b < fleet->nbuildings; b++) {
        const sim_building_t *bl = &fleet->buildings[b];
        for (size_t k = 24; k < nh; k++) { /* the first day: counters not started everywhere */
            hvs_ms_t h = start + (hvs_ms_t)k * HOUR;
            hvs_feat_hour_t x = {h, heat[b * nh + k], NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
            tr_history_put_hour(hist, bl->id, HVS_FS_BUILDING, &x);
            for (uint32_t a = 0; a < bl->napartments && a < APTS; a++) {
                size_t q = AIX(b, a, k);
                hvs_feat_hour_t y = {
                    h, apt_heat[q], NAN, apt_temp[q], apt_set[q], apt_set[q] - apt_temp[q],
                    0, NAN,         NAN, 0,           0};
                tr_history_put_hour(hist, bl->id, bl->apartments[a].id, &y);
            }
            hvs_feat_wx_t obs = sim_history_observed(&world, b, h);
            tr_history_put_weather(hist, bl->id, h, &obs);
        }
        for (hvs_ms_t issue = start; issue < start + (hvs_ms_t)nh * HOUR; issue += 6 * HOUR)
            for (int l = 1; l <= 72; l++) {
                hvs_ms_t h = issue + l * HOUR;
                hvs_feat_wx_t fc = sim_history_forecast(&world, b, issue, h);
                tr_history_put_weather(hist, bl->id, h, &fc);
            }
    }
}

static const int horizons[] = {1,  2,  3,  4,  6,  9,  12, 15, 18, 21,
                               24, 27, 30, 33, 36, 42, 48, 60, 72};

static tr_config_t base_conf(void) {
    tr_config_t c = {.folds = 3,
                     .fold_days = 14,
                     .min_train_days = 60,
                     .horizons = horizons,
                     .nhorizons = sizeof horizons / sizeof *horizons,
                     .per_hour = 4,
                     .max_rows = 400000,
                     .max_wape = 0.6,
                     .min_improvement = 0.02,
                     .auto_approve = true,
                     .monotone = true,
                     .weather_wait = 2 * HOUR,
                     .leak_sample = 100,
                     .keep_eval = true,
                     .keep_eval_x = true};
    c.xgb = (hvs_train_params_t){.rounds = 600,
                                 .eta = 0.05,
                                 .max_depth = 6,
                                 .nthread = 2,
                                 .seed = 3,
                                 .min_child_weight = 5,
                                 .subsample = 0.8,
                                 .colsample = 0.8};
    return c;
}

static int col(tr_task_t t, const char *name) {
    size_t n;
    const char *const *f = tr_task_features(t, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i], name) == 0)
            return (int)i;
    return -1;
}

/* refresh/global from the forecast's backtest: the uncorrected 1-3 h figure recomputed here from
 * the scored rows it corrects (near_*: every target hour of the last fold at horizons 1-3, as the
 * newest hourly issue forecast it). */
static void test_refresh(const tr_result_t *f, const tr_config_t *c) {
    tr_result_t rr;
    hvs_err_t err = {0};
    HVS_REQUIRE(tr_refresh_train(f, "refresh/global", c, NULL, &rr, &err) == 0, "refresh: %s",
                err.msg);
    HVS_CHECK(f->near_n > 0, "the forecast run kept its horizon 1-3 predictions");
    double sa = 0, sy = 0;
    for (size_t j = 0; j < f->near_n; j++) {
        if (f->near_fold[j] != 2 || !isfinite(f->near_y[j]) || !isfinite(f->near_pred[j]) ||
            f->near_h[j] < 1 || f->near_h[j] > 3)
            continue;
        sa += fabs(f->near_y[j] - f->near_pred[j]) * f->near_scale[j];
        sy += fabs(f->near_y[j]) * f->near_scale[j];
    }
    double wn = sa / sy;
    printf(
        "refresh: 1-3 h WAPE of the hourly baseline %.4f uncorrected (here %.4f), %.4f corrected "
        "(h1 %.4f, h2 %.4f, h3 %.4f; %zu rows) -> %s\n",
        rr.naive.wape, wn, rr.metrics.wape, rr.bucket_wape[0], rr.bucket_wape[1], rr.bucket_wape[2],
        rr.rows, hvs_model_status_name(rr.status));
    HVS_CHECK(fabs(rr.naive.wape - wn) < 1e-4, "uncorrected WAPE %.5f reported, %.5f recomputed",
              rr.naive.wape, wn);
    HVS_CHECK(rr.status == HVS_MODEL_APPROVED && rr.metrics.wape <= 0.85 * wn,
              "the correction lowers the 1-3 h WAPE by at least 15 %%: %.4f vs %.4f (%s)",
              rr.metrics.wape, wn, rr.reason);
    HVS_CHECK(rr.bucket_wape[0] <= rr.bucket_wape[2], "the first hour gains most: h1 %.4f, h3 %.4f",
              rr.bucket_wape[0], rr.bucket_wape[2]);
    /* the served model: hvs-linear, through its bytes and back */
    unsigned char *b = NULL;
    size_t bl = 0;
    hvs_model_t *m2 = NULL;
    float row[4] = {1, 0.002f, 0.001f, NAN}, p1 = NAN, p2 = NAN;
    HVS_CHECK(strcmp(hvs_model_format(rr.model), "hvs-linear") == 0 &&
                  hvs_model_save(rr.model, &b, &bl, &err) == 0 &&
                  hvs_model_load(b, bl, 4, &m2, &err) == 0 &&
                  hvs_model_predict(rr.model, row, 1, &p1, &err) == 0 &&
                  hvs_model_predict(m2, row, 1, &p2, &err) == 0 && p1 == p2 && p1 > 0,
              "refresh model round trip: %g vs %g (%s)", p1, p2, err.msg);
    hvs_model_destroy(m2);
    free(b);
    tr_result_fini(&rr);
}

/* ---- fixtures, built on first use -------------------------------------------------------- */

static const hvs_ms_t START = 1727740800000LL; /* 2024-10-01 */

static void fleet_teardown(void) {
    tr_history_destroy(hist);
    sim_history_free(&world);
}

/* The simulated fleet and the history built from it. */
static void need_history(void) {
    if (hist)
        return;
    sim_history_simulate(&world, START, DAYS, 10, APTS, 11);
    fleet = world.fleet;
    apt_heat = world.apt_heat, apt_temp = world.apt_temp, apt_set = world.apt_set;
    build_history(START, world.heat);
    hvs_test_cleanup(fleet_teardown);
}

/* forecast/global trained on the whole fleet, its backtest kept. */
static tr_config_t fc_conf;
static tr_result_t fc;
static bool have_fc;

static void forecast_teardown(void) { tr_result_fini(&fc); }

static void need_forecast(void) {
    if (have_fc)
        return;
    need_history();
    fc_conf = base_conf();
    hvs_ms_t from = START + 2 * DAY, to = START + DAYS * DAY;
    hvs_err_t err = {0};
    int rc = tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &fc_conf,
                      NULL, &fc, &err);
    HVS_REQUIRE(rc == 0, "train: %s", err.msg);
    have_fc = true;
    hvs_test_cleanup(forecast_teardown);
}

static void test_forecast(void) {
    need_forecast();
    tr_config_t c = fc_conf;
    const tr_result_t r = fc;
    hvs_ms_t start = START, from = start + 2 * DAY, to = start + DAYS * DAY;
    hvs_err_t err = {0};
    HVS_CHECK(r.status == HVS_MODEL_APPROVED, "status %s: %s", hvs_model_status_name(r.status),
              r.reason);
    HVS_CHECK(r.eval_rows > 10 * 3 * 14 * 20, "%zu day-ahead rows scored", r.eval_rows);
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
    tr_select_t sel = {.task = TR_FORECAST,
                       .from = from,
                       .to = to,
                       .horizons = horizons,
                       .nhorizons = c.nhorizons,
                       .per_hour = c.per_hour,
                       .seed = 17,
                       .weather_wait = 2 * HOUR};
    tr_rows_t tr;
    HVS_REQUIRE(tr_rows_build(hist, &sel, info, NULL, &tr, &err) == 0, "rows");
    int ihdh = col(TR_FORECAST, "hdh"), ihour = col(TR_FORECAST, "hour"),
        iwd = col(TR_FORECAST, "weekday");
    double el = 0, sl = 0;
    hvs_ms_t first_test = hvs_time_day_start(to) - 3 * 14 * DAY;
    for (int k = 0; k < 3; k++)
        for (int g = 0; g < (int)fleet->nbuildings; g++) {
            double beta[SIM_LINEAR_NP];
            sim_history_linear_fit(&tr, g, ihdh, ihour, iwd, first_test + k * 14 * DAY, beta);
            for (size_t i = 0; i < r.eval_rows; i++) {
                if (r.eval_fold[i] != k || r.eval_group[i] != g || !isfinite(r.eval_naive[i]))
                    continue;
                const float *x = &r.eval_x[i * r.eval_ncols];
                int how = (int)x[iwd] * 24 + (int)x[ihour];
                double p = beta[0] + beta[1] * (isfinite(x[ihdh]) ? x[ihdh] : 0) +
                           (how > 0 && how < 168 ? beta[1 + how] : 0);
                double y = r.eval_y[i] * r.eval_scale[i];
                el += fabs(y - p * r.eval_scale[i]);
                sl += y;
            }
        }
    double wl = el / sl;
    printf(
        "day-ahead WAPE: model %.4f, seasonal naive %.4f, linear HDH + hour-of-week per building %.4f "
        "(%zu rows; run of %zu training rows in %.1f s)\n",
        wm, wn, wl, r.eval_rows, r.rows, r.seconds);
    printf("per horizon bucket WAPE: 1-6 h %.4f, 7-24 h %.4f, 25-48 h %.4f, 49-72 h %.4f\n",
           r.bucket_wape[0], r.bucket_wape[1], r.bucket_wape[2], r.bucket_wape[3]);
    HVS_CHECK(wm <= 0.65 * wn, "model %.4f at least 35 %% below naive %.4f (%.1f %% below)", wm, wn,
              100 * (1 - wm / wn));
    HVS_CHECK(wm <= 0.92 * wl,
              "model %.4f at least 8 %% below the linear baseline %.4f (%.1f %% below)", wm, wl,
              100 * (1 - wm / wl));
    HVS_CHECK(fabs(r.metrics.wape - em / sy) < 0.05, "reported WAPE %.4f", r.metrics.wape);
    HVS_CHECK(r.monotone_violations == 0 && r.stress_rows > 100, "stress test: %d of %d violate",
              r.monotone_violations, r.stress_rows);
    tr_rows_fini(&tr);
}

static void test_refresh_case(void) {
    need_forecast();
    test_refresh(&fc, &fc_conf);
}

/* The horizon choice, measured: one model for every horizon (the horizon a feature, lags
 * masked beyond it) against a model of the day-ahead bucket alone (13-36 h), on the same
 * day-ahead rows. */
static void test_horizon_choice(void) {
    need_forecast();
    hvs_ms_t from = START + 2 * DAY, to = START + DAYS * DAY;
    hvs_err_t err = {0};
    static const int day_ahead[] = {13, 15, 18, 21, 24, 27, 30, 33, 36};
    tr_config_t cb = base_conf();
    cb.horizons = day_ahead;
    cb.nhorizons = sizeof day_ahead / sizeof *day_ahead;
    cb.keep_eval = false;
    tr_result_t rb;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &cb,
                         NULL, &rb, &err) == 0,
                "bucket model: %s", err.msg);
    printf(
        "horizon choice: one model for 1-72 h %.4f, a day-ahead-only model %.4f (day-ahead WAPE)\n",
        fc.metrics.wape, rb.metrics.wape);
    HVS_CHECK(isfinite(rb.metrics.wape) && rb.metrics.wape < rb.naive.wape,
              "the bucket model trained: %.4f", rb.metrics.wape);
    tr_result_fini(&rb);
}

/* a second run with the first as champion: compared on the same rows */
static void test_champion(void) {
    need_forecast();
    hvs_ms_t from = START + 2 * DAY, to = START + DAYS * DAY;
    hvs_err_t err = {0};
    hvs_model_ref_t champ = {.name = "forecast/global", .version = 1, .model = fc.model};
    size_t nf;
    const char *const *f = tr_task_features(TR_FORECAST, &nf);
    champ.features = (char **)f;
    champ.nfeatures = nf;
    tr_config_t c2 = base_conf();
    c2.xgb.seed = 9;
    c2.xgb.rounds = 150; /* the champion's scoring is the point, not the challenger's quality */
    c2.keep_eval = false;
    tr_result_t r2;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", NULL, 0, from, to, info, NULL, &c2,
                         &champ, &r2, &err) == 0,
                "train 2: %s", err.msg);
    HVS_CHECK(r2.has_champion && isfinite(r2.champion.wape) && r2.champion.wape < r2.naive.wape,
              "champion scored: %.4f (new %.4f) -> %s: %s", r2.champion.wape, r2.metrics.wape,
              hvs_model_status_name(r2.status), r2.reason);
    tr_result_fini(&r2);
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
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", one, 2, start + 2 * DAY,
                         start + DAYS * DAY, info, NULL, &c, NULL, &r, &err) == 0,
                "train: %s", err.msg);
    HVS_CHECK(r.status == HVS_MODEL_REJECTED && strstr(r.reason, "leak check") &&
                  strstr(r.reason, "extra"),
              "a column using the target hour is caught: %s", r.reason);
    tr_result_fini(&r);
    c.extra = honest;
    HVS_REQUIRE(tr_train(hist, TR_FORECAST, "forecast/global", one, 2, start + 2 * DAY,
                         start + DAYS * DAY, info, NULL, &c, NULL, &r, &err) == 0,
                "train: %s", err.msg);
    HVS_CHECK(!strstr(r.reason, "leak"), "an honest extra column passes: %s", r.reason);
    tr_result_fini(&r);
}

/* Sunny-cold-biased data: one building whose coldest hours are the sunniest, with the sun
 * cutting the heat more than the cold adds. Without constraints the model learns "colder ->
 * less heating" at fixed irradiance; with them it cannot. */
static int synthetic_info(void *opaque, const char *building, tr_building_info_t *out) {
    hvs_calendar_t *cal = opaque;
    (void)building;
    *out = (tr_building_info_t){1000.0, HVS_MS_NONE, cal, NULL};
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
        double temp = 8 - 14 * u;                       /* -6 .. 8 */
        double ghi = temp < -2 ? 500 + 50 * u : 40 * u; /* the cold spells are the sunny ones */
        double use = 50 + 4 * (18 - temp) - (ghi > 300 ? 70 : 0) + 3 * u;
        hvs_feat_hour_t x = {hr, use, NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
        tr_history_put_hour(h, "b", HVS_FS_BUILDING, &x);
        for (int l = 0; l <= 72; l += 6) {
            hvs_feat_wx_t w = {
                hr - l * HOUR + (l ? 0 : HOUR + 60000), l == 0, temp, 70, 20, ghi, 2};
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
    HVS_REQUIRE(tr_train(h, TR_FORECAST, "forecast/building:b", NULL, 0, start + 8 * DAY,
                         start + 140 * DAY, synthetic_info, cal, &c, NULL, &free_r, &err) == 0,
                "train: %s", err.msg);
    c.monotone = true;
    HVS_REQUIRE(tr_train(h, TR_FORECAST, "forecast/building:b", NULL, 0, start + 8 * DAY,
                         start + 140 * DAY, synthetic_info, cal, &c, NULL, &con_r, &err) == 0,
                "train: %s", err.msg);
    printf("stress test on sunny-cold data: unconstrained %d of %d rows heat less when colder, "
           "constrained %d of %d\n",
           free_r.monotone_violations, free_r.stress_rows, con_r.monotone_violations,
           con_r.stress_rows);
    HVS_CHECK(free_r.monotone_violations > 0, "unconstrained model fails the stress test: %d",
              free_r.monotone_violations);
    HVS_CHECK(con_r.monotone_violations == 0, "constrained model passes: %d",
              con_r.monotone_violations);
    tr_result_fini(&free_r);
    tr_result_fini(&con_r);
    tr_history_destroy(h);
    hvs_calendar_destroy(cal);
}

/* ---- anomaly tasks against the simulator's fault episodes ---------------------------------- */

#define ABUILDINGS 4 /* the first four buildings' flats: enough faults, minutes not hours */

static tr_labels_t sim_labels;

/* The kind of a fault episode of the apartment on that day, -1 when none. */
static int fault_kind(uint32_t b, const char *apt, hvs_ms_t day) {
    const sim_building_t *bl = &fleet->buildings[b];
    for (uint32_t a = 0; a < bl->napartments; a++) {
        if (strcmp(bl->apartments[a].id, apt))
            continue;
        for (int k = 0; k < bl->apartments[a].nepisodes; k++) {
            const sim_episode_t *e = &bl->apartments[a].episodes[k];
            if (sim_episode_is_fault((sim_episode_kind_t)e->kind) && e->start < day + DAY &&
                e->end > day)
                return e->kind;
        }
    }
    return -1;
}

/* per fault kind: held-out fault days, and those found in a day's top k */
static int kind_days[SIM_EP_FAULT_COUNT], kind_found[SIM_EP_FAULT_COUNT];

static void make_labels(void) {
    tr_labels_init(&sim_labels);
    sim_labels.complete = true;
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        for (uint32_t a = 0; a < fleet->buildings[b].napartments && a < APTS; a++) {
            const sim_apartment_t *ap = &fleet->buildings[b].apartments[a];
            for (int k = 0; k < ap->nepisodes; k++) {
                const sim_episode_t *e = &ap->episodes[k];
                if (!sim_episode_is_fault((sim_episode_kind_t)e->kind))
                    continue;
                for (hvs_ms_t d = hvs_time_day_start(e->start); d < e->end; d += DAY) {
                    char id[96];
                    snprintf(id, sizeof id, "%s/%s#%lld#FAULT", fleet->buildings[b].id, ap->id,
                             (long long)d);
                    HVS_REQUIRE(tr_labels_put(&sim_labels, id, fleet->buildings[b].id, ap->id, d,
                                              true, 0) == 1,
                                "label");
                }
            }
        }
}

typedef struct aday {
    int32_t g, s;
    hvs_ms_t day;
    double y, p;
    int n;
} aday_t;

static int cmp_aday(const void *a, const void *b) {
    const aday_t *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    if (x->g != y->g)
        return x->g - y->g;
    return x->s - y->s;
}

/* The fault kind of a history apartment-day, from the fleet's episodes (-1 none). */
static int day_fault(const aday_t *a) {
    const tr_building_t *b = hist->b[a->g];
    uint32_t fb = 0;
    while (strcmp(fleet->buildings[fb].id, b->id))
        fb++;
    return fault_kind(fb, b->s[a->s]->id, a->day);
}

/* precision@k / recall@k from a run's scored rows and the episodes themselves. */
static void rank_here(const tr_result_t *r, bool classifier, int k, double *prec, double *rec,
                      double *chance) {
    size_t n = r->eval_rows, na = 0;
    memset(kind_days, 0, sizeof kind_days);
    memset(kind_found, 0, sizeof kind_found);
    aday_t *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        hvs_ms_t day = hvs_time_day_start(r->eval_hour[i]);
        aday_t key = {r->eval_group[i], r->eval_series[i], day, 0, 0, 0};
        size_t j = na;
        if (na && !cmp_aday(&d[na - 1], &key))
            j = na - 1;
        else
            d[na++] = key;
        if (isfinite(r->eval_y[i]) && isfinite(r->eval_pred[i]))
            d[j].y += r->eval_y[i], d[j].p += r->eval_pred[i], d[j].n++;
    }
    /* rows come building by building: merge apartment-days split across the scan */
    qsort(d, na, sizeof *d, cmp_aday);
    size_t m = 0;
    for (size_t i = 0; i < na; i++) {
        if (m && !cmp_aday(&d[m - 1], &d[i])) {
            d[m - 1].y += d[i].y, d[m - 1].p += d[i].p, d[m - 1].n += d[i].n;
            continue;
        }
        d[m++] = d[i];
    }
    size_t tp = 0, ranked = 0, pos = 0, days = 0;
    for (size_t lo = 0, hi; lo < m; lo = hi) {
        for (hi = lo; hi < m && d[hi].day == d[lo].day; hi++)
            ;
        /* selection of the day's top k by score, the highest first */
        for (int t = 0; t < k; t++) {
            size_t best = hi;
            double bs = -1;
            for (size_t i = lo; i < hi; i++) {
                if (d[i].n == 0 || d[i].n < 0)
                    continue;
                double sc = classifier ? d[i].p / d[i].n
                                       : fabs(d[i].y - d[i].p) / (fmax(d[i].p, 0) + 1.0);
                if (sc > bs)
                    bs = sc, best = i;
            }
            if (best == hi)
                break;
            int fk = day_fault(&d[best]);
            tp += fk >= 0;
            if (fk >= 0)
                kind_found[fk]++;
            ranked++;
            d[best].n = -d[best].n - 1; /* taken */
        }
        for (size_t i = lo; i < hi; i++) {
            if (d[i].n == 0)
                continue;
            int fk = day_fault(&d[i]);
            pos += fk >= 0;
            if (fk >= 0)
                kind_days[fk]++;
            days++;
        }
    }
    *prec = ranked ? (double)tp / ranked : NAN;
    *rec = pos ? (double)tp / pos : NAN;
    *chance = days ? (double)pos / days : NAN;
    free(d);
}

static bool have_labels;

static void labels_teardown(void) { tr_labels_fini(&sim_labels); }

/* anomaly-residual (t 0) or anomaly-classifier (t 1) against the simulator's fault episodes */
static void test_anomaly(int t) {
    need_history();
    if (!have_labels) {
        make_labels();
        have_labels = true;
        hvs_test_cleanup(labels_teardown);
    }
    hvs_ms_t start = START;
    const char *ids[ABUILDINGS];
    for (int b = 0; b < ABUILDINGS; b++)
        ids[b] = fleet->buildings[b].id;
    hvs_ms_t from = start + 2 * DAY, to = start + DAYS * DAY;
    hvs_err_t err = {0};
    {
        tr_task_t task = t ? TR_ANOMALY_CLASSIFIER : TR_ANOMALY_RESIDUAL;
        tr_config_t c = base_conf();
        c.labels = &sim_labels;
        c.top_k = 5;
        c.min_labels = 20;
        c.xgb.rounds = 200;
        c.xgb.eta = 0.1;
        tr_result_t r;
        int rc = tr_train(hist, task, tr_task_name(task), ids, ABUILDINGS, from, to, info, NULL, &c,
                          NULL, &r, &err);
        HVS_REQUIRE(rc == 0, "%s: %s", tr_task_name(task), err.msg);
        double p, rec, chance;
        rank_here(&r, t == 1, c.top_k, &p, &rec, &chance);
        printf(
            "%s: precision@%d %.3f, recall@%d %.3f, chance %.3f (here %.3f / %.3f / %.3f); %zu apartment-days, "
            "%zu with a fault; WAPE %.4f; %zu rows in %.1f s -> %s\n",
            tr_task_name(task), c.top_k, r.metrics.precision_at_k, c.top_k, r.metrics.recall_at_k,
            r.naive.precision_at_k, p, rec, chance, r.label_days, r.fault_days, r.metrics.wape,
            r.rows, r.seconds, hvs_model_status_name(r.status));
        printf("  recall@%d by fault:", c.top_k);
        for (int q = 0; q < SIM_EP_FAULT_COUNT; q++)
            if (kind_days[q])
                printf(" %s %d/%d", sim_episode_name((sim_episode_kind_t)q), kind_found[q],
                       kind_days[q]);
        printf("\n");
        HVS_CHECK(r.fault_days >= 50, "%s: %zu fault days held out", tr_task_name(task),
                  r.fault_days);
        HVS_CHECK(fabs(r.metrics.precision_at_k - p) < 1e-9 &&
                      fabs(r.metrics.recall_at_k - rec) < 1e-9 &&
                      fabs(r.naive.precision_at_k - chance) < 1e-9,
                  "%s: reported %.4f/%.4f/%.4f, recomputed %.4f/%.4f/%.4f", tr_task_name(task),
                  r.metrics.precision_at_k, r.metrics.recall_at_k, r.naive.precision_at_k, p, rec,
                  chance);
        HVS_CHECK(p >= 2 * chance, "%s: precision@%d %.3f at least twice chance %.3f",
                  tr_task_name(task), c.top_k, p, chance);
        if (t == 1)
            HVS_CHECK(r.status == HVS_MODEL_APPROVED, "classifier: %s (%s)",
                      hvs_model_status_name(r.status), r.reason);
        tr_result_fini(&r);
    }
}

static void test_anomaly_residual(void) { test_anomaly(0); }
static void test_anomaly_classifier(void) { test_anomaly(1); }

static void test_leakage_case(void) {
    need_history();
    test_leakage(START);
}


/* WAPE (kWh) of a model's predictions on rows r. */
static double rows_wape(hvs_model_t *m, const tr_rows_t *r) {
    float *p = malloc((r->n ? r->n : 1) * sizeof *p);
    hvs_err_t err = {0};
    HVS_REQUIRE(p && hvs_model_predict(m, r->x, r->n, p, &err) == 0, "predict: %s", err.msg);
    double e = 0, sy = 0;
    for (size_t i = 0; i < r->n; i++) {
        e += fabs(r->y[i] - p[i]) * r->scale[i];
        sy += r->y[i] * r->scale[i];
    }
    free(p);
    return e / sy;
}

/*
 * Issue 18, measured (label extended; runs only with TR_QUALITY_STANDIN set): the fleet's history
 * as a weather backfill leaves it (observations issued at each hour's end, no forecast) trains
 * forecast/global with and without weather stand-ins; beside them a model trained on the same
 * days with the real forecasts. All three are scored on the last 28 days as serving sees them
 * (the live history: real forecasts), day-ahead and at every horizon of the 19. With stand-ins
 * the model must do better than without (there it learns heat without the target hour's
 * temperature).
 */
static void test_standin_wape(void) {
    if (!getenv("TR_QUALITY_STANDIN")) {
        printf("skipped: TR_QUALITY_STANDIN unset (ctest -L extended runs it)\n");
        return;
    }
    need_history();
    size_t nh = DAYS * 24;
    tr_history_t *bf = tr_history_new(nh + 24, 0);
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        for (size_t k = 24; k < nh; k++) {
            hvs_ms_t h = START + (hvs_ms_t)k * HOUR;
            hvs_feat_hour_t x = {h, world.heat[b * nh + k], NAN, NAN, NAN, NAN, 0, NAN, NAN, 0, 0};
            hvs_feat_wx_t obs = sim_history_observed(&world, b, h);
            obs.issued_at = h + HOUR; /* as hvs-weather --backfill stamps it */
            HVS_REQUIRE(tr_history_put_hour(bf, fleet->buildings[b].id, HVS_FS_BUILDING, &x) >= 0 &&
                            tr_history_put_weather(bf, fleet->buildings[b].id, h, &obs) >= 0,
                        "backfilled history");
        }
    hvs_ms_t from = START + 2 * DAY, to = START + DAYS * DAY,
             test_from = hvs_time_day_start(to) - 28 * DAY;
    tr_config_t c = base_conf();
    c.keep_eval = false;
    c.folds = 1;
    c.max_wape = 10; /* the gate is not the point */
    hvs_err_t err = {0};
    struct {
        const char *what;
        tr_history_t *h;
        bool standin;
    } m[] = {{"backfill, no stand-ins", bf, false},
             {"backfill, stand-ins", bf, true},
             {"real forecasts", hist, false}};
    tr_rows_t da, all;
    tr_select_t sda = {.task = TR_FORECAST, .from = test_from, .to = to, .day_ahead = true},
                sall = {.task = TR_FORECAST,
                        .from = test_from,
                        .to = to,
                        .horizons = horizons,
                        .nhorizons = sizeof horizons / sizeof *horizons};
    HVS_REQUIRE(tr_rows_build(hist, &sda, info, NULL, &da, &err) == 0 &&
                    tr_rows_build(hist, &sall, info, NULL, &all, &err) == 0,
                "live rows: %s", err.msg);
    double w[3][2];
    for (int k = 0; k < 3; k++) {
        tr_result_t r;
        c.weather_standin = m[k].standin;
        HVS_REQUIRE(tr_train(m[k].h, TR_FORECAST, "forecast/global", NULL, 0, from, test_from, info,
                             NULL, &c, NULL, &r, &err) == 0 &&
                        r.model,
                    "%s: %s", m[k].what, err.msg);
        w[k][0] = rows_wape(r.model, &da);
        w[k][1] = rows_wape(r.model, &all);
        printf("%-24s %6zu rows (%5.1f %% stood in), own backtest WAPE %.4f; on live rows of the "
               "last 28 days: day-ahead WAPE %.4f, 1-72 h %.4f\n",
               m[k].what, r.rows, r.rows ? 100.0 * (double)r.standin_rows / (double)r.rows : 0.0,
               r.metrics.wape, w[k][0], w[k][1]);
        tr_result_fini(&r);
    }
    HVS_CHECK(w[1][0] < w[0][0] && w[1][1] < w[0][1],
              "stand-ins: day-ahead WAPE %.4f vs %.4f without, 1-72 h %.4f vs %.4f", w[1][0],
              w[0][0], w[1][1], w[0][1]);
    tr_rows_fini(&da), tr_rows_fini(&all);
    tr_history_destroy(bf);
}

static const hvs_test_case_t cases[] = {
    {"monotone_stress_test", test_monotone},
    {"leakage_guard", test_leakage_case},
    {"forecast_beats_naive_and_linear", test_forecast},
    {"refresh_lowers_short_horizon_wape", test_refresh_case},
    {"day_ahead_bucket_model", test_horizon_choice},
    {"second_run_scores_champion", test_champion},
    {"anomaly_residual_beats_chance", test_anomaly_residual},
    {"anomaly_classifier_beats_chance", test_anomaly_classifier},
    {"weather_standin_backfill_wape", test_standin_wape},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
