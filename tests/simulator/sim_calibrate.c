/*
 * hvs-sim-calibrate - is the simulated world as hard to forecast as the real one?
 *
 * Issue 3's yardstick: on real 40-66-flat residential blocks a good day-ahead XGBoost reaches a
 * building-level hourly WAPE of about 0.19-0.24 and seasonal naive about 0.34; the simulator's
 * variability must put the same kind of model in roughly 0.12-0.30. This tool runs the fleet in
 * process (clean delivery: the records exactly as a downstream aggregator would receive them),
 * turns each flat's heat counter into hourly energy (increments spread linearly between
 * reports), sums buildings, and trains the day-ahead model:
 *   forecast made at 12:00 UTC on day D-1 for every hour of day D, from what is known then:
 *   the weather forecast issued at 06:00 UTC (the newest available), calendar (local hour,
 *   weekday, free day, school holiday, Christmas), heat 48 h and 168 h before the target hour,
 *   the mean of the last 24 h before the forecast, the archetype;
 *   target = heat per m2 (one model for the fleet), scored in kWh.
 * Train on the first part of the days, test on the rest; print WAPE = sum|y - yhat| / sum|y|
 * for XGBoost and seasonal naive (y 168 h before), per building and overall, and a closing line
 *   calibration: wape_xgb=... wape_naive=... buildings=... test_hours=...
 * --assert-range LO,HI exits 1 unless LO <= wape_xgb <= HI and XGBoost beats naive.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "delivery.h"
#include "fleet.h"
#include "hvs/log.h"
#include "sim.h"
#include "weather.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
#define NFEAT 16

typedef struct opts {
    uint64_t seed;
    hvs_ms_t start;
    int days, buildings, apartments;
    double train_fraction, lo, hi, variability;
    bool assert_range;
} opts_t;

static int usage(void) {
    fprintf(stderr,
            "usage: hvs-sim-calibrate [--seed N] [--start ISO] [--days N] [--buildings N] "
            "[--apartments N] [--train-fraction F] [--variability F] [--assert-range LO,HI]\n");
    return 2;
}

/* Hourly heat per building, from the counters as reported. */
typedef struct series {
    int nb, nh;
    double *heat; /* [b * nh + h], kWh */
    hvs_ms_t start;
} series_t;

static void spread(series_t *s, int b, hvs_ms_t t0, hvs_ms_t t1, double kwh) {
    if (t1 <= t0 || kwh <= 0)
        return;
    for (hvs_ms_t a = t0; a < t1;) {
        hvs_ms_t hour = a - ((a - s->start) % HOUR_MS);
        hvs_ms_t e = hour + HOUR_MS < t1 ? hour + HOUR_MS : t1;
        int h = (int)((hour - s->start) / HOUR_MS);
        if (h >= 0 && h < s->nh)
            s->heat[b * s->nh + h] += kwh * (double)(e - a) / (double)(t1 - t0);
        a = e;
    }
}

static int simulate(const opts_t *o, sim_fleet_t **fleet_out, series_t *s, sim_conf_t *conf) {
    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = o->seed;
    fp.start = o->start;
    fp.end = o->start + (hvs_ms_t)o->days * DAY_MS;
    fp.buildings = o->buildings;
    fp.apartments_per_building = o->apartments;
    fp.new_building_fraction = 0; /* a year-old history for every building */
    hvs_err_t err;
    sim_fleet_t *f;
    if (sim_fleet_new(&fp, &f, &err) != 0) {
        fprintf(stderr, "fleet: %s\n", err.msg);
        return -1;
    }
    sim_conf_default(conf, o->seed);
    conf->variability = o->variability;
    sim_delivery_conf_t dc;
    sim_delivery_conf_clean(&dc);
    uint32_t *apts = calloc(f->nbuildings, sizeof *apts);
    for (uint32_t b = 0; b < f->nbuildings; b++)
        apts[b] = f->buildings[b].napartments;
    sim_delivery_t *d;
    sim_t *sim;
    if (sim_delivery_new(&dc, o->seed, f->nbuildings, apts, NULL, &d, &err) != 0 ||
        sim_new(f, conf, d, NULL, &sim, &err) != 0) {
        fprintf(stderr, "sim: %s\n", err.msg);
        return -1;
    }
    s->nb = (int)f->nbuildings;
    s->nh = o->days * 24;
    s->start = o->start;
    s->heat = calloc((size_t)s->nb * (size_t)s->nh, sizeof *s->heat);
    /* Last report of each flat's heat counter. */
    size_t napts = 0;
    for (uint32_t b = 0; b < f->nbuildings; b++)
        napts += f->buildings[b].napartments;
    double *last_v = malloc(napts * sizeof *last_v);
    hvs_ms_t *last_t = malloc(napts * sizeof *last_t);
    size_t *first = calloc(f->nbuildings, sizeof *first);
    for (uint32_t b = 1; b < f->nbuildings; b++)
        first[b] = first[b - 1] + f->buildings[b - 1].napartments;
    for (size_t i = 0; i < napts; i++)
        last_v[i] = NAN, last_t[i] = 0;
    sim_record_t r;
    for (hvs_ms_t t = fp.start + SIM_STEP_MS; t <= fp.end; t += SIM_STEP_MS) {
        if (sim_step(sim, t, &err) != 0) {
            fprintf(stderr, "step: %s\n", err.msg);
            return -1;
        }
        while (sim_delivery_pop(d, t, &r)) {
            for (int i = 0; i < r.n; i++) {
                if (r.v[i].sensor != SIM_S_HEAT_KWH)
                    continue;
                size_t k = first[r.building] + r.apartment;
                if (!isnan(last_v[k]))
                    spread(s, (int)r.building, last_t[k], r.timestamp, r.v[i].value - last_v[k]);
                last_v[k] = r.v[i].value, last_t[k] = r.timestamp;
            }
        }
    }
    free(last_v);
    free(last_t);
    free(first);
    free(apts);
    sim_destroy(sim);
    sim_delivery_destroy(d);
    *fleet_out = f;
    return 0;
}

/* One row of features for building b, target hour index h (day D), made at D-1 12:00 UTC. */
static void features(const sim_fleet_t *f, const series_t *s, const sim_conf_t *conf, int b, int h,
                     float *x) {
    const sim_building_t *bl = &f->buildings[b];
    hvs_ms_t t = s->start + (hvs_ms_t)h * HOUR_MS;
    hvs_ms_t day = t - ((t - s->start) % DAY_MS);
    hvs_ms_t made = day - 12 * HOUR_MS;
    hvs_ms_t issued = sim_weather_latest_issue(made);
    sim_weather_t w;
    sim_weather_forecast(&conf->weather, bl->latitude, bl->longitude, conf->elevation_m, issued,
                         t + HOUR_MS / 2, &w);
    double tday = 0;
    for (int k = 0; k < 24; k += 3) {
        sim_weather_t wd;
        sim_weather_forecast(&conf->weather, bl->latitude, bl->longitude, conf->elevation_m, issued,
                             day + k * HOUR_MS + HOUR_MS / 2, &wd);
        tday += wd.temperature_c / 8;
    }
    hvs_day_info_t di;
    hvs_calendar_day(bl->calendar, t, &di);
    double area = bl->heated_area_m2;
    const double *y = s->heat + (size_t)b * (size_t)s->nh;
    int made_h = (int)((made - s->start) / HOUR_MS);
    double last24 = 0;
    for (int k = made_h - 24; k < made_h; k++)
        last24 += y[k] / 24;
    int i = 0;
    x[i++] = (float)hvs_calendar_local_hour(bl->calendar, t);
    x[i++] = (float)di.weekday;
    x[i++] = (float)!di.workday;
    x[i++] = (float)di.school_holiday;
    x[i++] = (float)di.christmas_period;
    x[i++] = (float)w.temperature_c;
    x[i++] = (float)w.shortwave_radiation_wm2;
    x[i++] = (float)w.cloud_cover_pct;
    x[i++] = (float)fmax(0.0, 18.0 - w.temperature_c);
    x[i++] = (float)tday;
    x[i++] = (float)(y[h - 48] / area * 1000);
    x[i++] = (float)(y[h - 168] / area * 1000);
    x[i++] = (float)(last24 / area * 1000);
    x[i++] = (float)bl->archetype;
    x[i++] = (float)(w.temperature_c * x[0]);
    x[i++] = (float)(w.temperature_c * w.shortwave_radiation_wm2 / 100.0);
}

#define XGB_OK(call)                                                                               \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "xgboost: %s: %s\n", #call, XGBGetLastError());                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    hvs_log_init("calibrate", HVS_LOG_ERROR, NULL);
    opts_t o = {.seed = 7,
                .start = 1727740800000LL /* 2024-10-01 */,
                .days = 180,
                .buildings = 6,
                .apartments = 50,
                .train_fraction = 0.6,
                .variability = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(argv[i], "--start")) {
            hvs_err_t err;
            if (hvs_time_parse_iso8601(v, &o.start, &err) != 0)
                return usage();
        } else if (!strcmp(argv[i], "--days"))
            o.days = atoi(v);
        else if (!strcmp(argv[i], "--buildings"))
            o.buildings = atoi(v);
        else if (!strcmp(argv[i], "--apartments"))
            o.apartments = atoi(v);
        else if (!strcmp(argv[i], "--train-fraction"))
            o.train_fraction = atof(v);
        else if (!strcmp(argv[i], "--variability"))
            o.variability = atof(v);
        else if (!strcmp(argv[i], "--assert-range")) {
            if (sscanf(v, "%lf,%lf", &o.lo, &o.hi) != 2)
                return usage();
            o.assert_range = true;
        } else
            return usage();
        i++;
    }
    if (o.days < 30 || o.buildings < 1 || o.apartments < 1 || o.train_fraction <= 0.1 ||
        o.train_fraction >= 0.95)
        return usage();

    sim_fleet_t *f;
    series_t s;
    sim_conf_t conf;
    if (simulate(&o, &f, &s, &conf) != 0)
        return 1;

    /* Rows: days from the 8th (lags need a week) on; split by day. */
    int first_day = 8, ndays = o.days,
        split = first_day + (int)((ndays - first_day) * o.train_fraction);
    size_t rows = (size_t)s.nb * (size_t)(ndays - first_day) * 24;
    float *x = malloc(rows * NFEAT * sizeof *x), *label = malloc(rows * sizeof *label);
    size_t ntrain = 0, ntest = 0;
    /* Train rows first, then test rows, in one buffer. */
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < s.nb; b++)
            for (int day = pass ? split : first_day; day < (pass ? ndays : split); day++)
                for (int hh = 0; hh < 24; hh++) {
                    int h = day * 24 + hh;
                    size_t r = ntrain + ntest;
                    features(f, &s, &conf, b, h, x + r * NFEAT);
                    label[r] = (float)(s.heat[(size_t)b * s.nh + h] /
                                       f->buildings[b].heated_area_m2 * 1000);
                    if (pass)
                        ntest++;
                    else
                        ntrain++;
                }
    DMatrixHandle dtrain, dtest;
    XGB_OK(XGDMatrixCreateFromMat(x, ntrain, NFEAT, NAN, &dtrain));
    XGB_OK(XGDMatrixSetFloatInfo(dtrain, "label", label, ntrain));
    XGB_OK(XGDMatrixCreateFromMat(x + ntrain * NFEAT, ntest, NFEAT, NAN, &dtest));
    BoosterHandle bst;
    XGB_OK(XGBoosterCreate(&dtrain, 1, &bst));
    static const char *const params[][2] = {
        {"objective", "reg:squarederror"},
        {"max_depth", "6"},
        {"eta", "0.05"},
        {"subsample", "0.8"},
        {"colsample_bytree", "0.8"},
        {"min_child_weight", "5"},
        {"nthread", "2"},
        {"seed", "1"},
        {"verbosity", "0"},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        XGB_OK(XGBoosterSetParam(bst, params[i][0], params[i][1]));
    for (int it = 0; it < 500; it++)
        XGB_OK(XGBoosterUpdateOneIter(bst, it, dtrain));
    bst_ulong npred;
    const float *pred;
    XGB_OK(XGBoosterPredict(bst, dtest, 0, 0, 0, &npred, &pred));
    if (npred != ntest) {
        fprintf(stderr, "xgboost predicted %llu rows of %zu\n", (unsigned long long)npred, ntest);
        return 1;
    }

    double abs_x = 0, abs_n = 0, sum_y = 0;
    size_t r = 0;
    printf("day-ahead hourly building heat, %d buildings x %d flats, %d days (train %d, test %d)\n",
           s.nb, o.apartments, ndays, split - first_day, ndays - split);
    for (int b = 0; b < s.nb; b++) {
        double area = f->buildings[b].heated_area_m2 / 1000, ex = 0, en = 0, sy = 0;
        for (int day = split; day < ndays; day++)
            for (int hh = 0; hh < 24; hh++, r++) {
                int h = day * 24 + hh;
                double y = s.heat[(size_t)b * s.nh + h];
                ex += fabs(y - pred[r] * area);
                en += fabs(y - s.heat[(size_t)b * s.nh + h - 168]);
                sy += fabs(y);
            }
        printf("  %s %-21s %5.0f m2: mean %6.1f kWh/h, WAPE xgb %.3f, naive %.3f\n",
               f->buildings[b].id, sim_archetype(f->buildings[b].archetype)->name, area * 1000,
               sy / ((ndays - split) * 24), ex / sy, en / sy);
        abs_x += ex, abs_n += en, sum_y += sy;
    }
    double wx = abs_x / sum_y, wn = abs_n / sum_y;
    printf("calibration: wape_xgb=%.3f wape_naive=%.3f buildings=%d test_hours=%zu\n", wx, wn, s.nb,
           ntest);
    XGBoosterFree(bst);
    XGDMatrixFree(dtrain);
    XGDMatrixFree(dtest);
    free(x);
    free(label);
    free(s.heat);
    sim_fleet_destroy(f);
    if (o.assert_range && (wx < o.lo || wx > o.hi || wx >= wn)) {
        fprintf(stderr, "calibration outside [%.2f, %.2f] or not better than naive\n", o.lo, o.hi);
        return 1;
    }
    return 0;
}
