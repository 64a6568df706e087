/*
 * simulated weather: the Swiss plateau's climate in figures (monthly means, daily ranges, clear-sky
 * irradiance), cold and sunny winter spells, regional coherence, forecasts whose error grows with
 * lead time, and shocks that the earlier forecast misses.
 */
#include <math.h>

#include "hvs_test.h"
#include "weather.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define Y2024 1704067200000LL /* 2024-01-01T00:00:00Z */
#define LAT 47.37
#define LON 8.54
#define ELEV 430.0

static sim_weather_conf_t conf;

static void test_climate(void) {
    double month_mean[12] = {0}, month_n[12] = {0}, range_winter_clear = 0, range_summer_clear = 0;
    int nwc = 0, nsc = 0, cold_sunny = 0, winter_days = 0;
    double winter_ghi = 0;
    int month_start[13] = {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366};
    static double daily_mean[366], daily_ghi[366];
    for (int d = 0; d < 366; d++) {
        double tmin = 1e9, tmax = -1e9, sum = 0, ghi = 0, cloud = 0;
        for (int h = 0; h < 24; h++) {
            sim_weather_t w;
            sim_weather_observed(&conf, LAT, LON, ELEV, Y2024 + d * DAY + h * HOUR, &w);
            tmin = fmin(tmin, w.temperature_c), tmax = fmax(tmax, w.temperature_c);
            sum += w.temperature_c, ghi += w.shortwave_radiation_wm2, cloud += w.cloud_cover_pct;
            HVS_CHECK(w.shortwave_radiation_wm2 >= 0 &&
                          w.shortwave_radiation_wm2 <=
                              sim_weather_clear_sky(LAT, LON, w.time) + 1e-9,
                      "GHI %.1f outside [0, clear sky]", w.shortwave_radiation_wm2);
            HVS_CHECK(w.relative_humidity_pct >= 0 && w.relative_humidity_pct <= 100 &&
                          w.cloud_cover_pct >= 0 && w.cloud_cover_pct <= 100 &&
                          w.wind_speed_ms >= 0,
                      "ranges");
            if (sim_weather_clear_sky(LAT, LON, w.time) == 0)
                HVS_CHECK(w.shortwave_radiation_wm2 == 0, "sun at night");
        }
        daily_mean[d] = sum / 24, daily_ghi[d] = ghi / 24;
        int m = 0;
        while (d >= month_start[m + 1])
            m++;
        month_mean[m] += sum / 24, month_n[m]++;
        cloud /= 24;
        if ((m <= 1 || m == 11) && cloud < 30)
            range_winter_clear += tmax - tmin, nwc++;
        if (m >= 5 && m <= 7 && cloud < 30)
            range_summer_clear += tmax - tmin, nsc++;
        if (m <= 1 || m == 11)
            winter_days++, winter_ghi += ghi / 24;
    }
    for (int m = 0; m < 12; m++)
        month_mean[m] /= month_n[m];
    winter_ghi /= winter_days;
    for (int d = 0; d < 366; d++)
        if ((d < 60 || d >= 335) && daily_mean[d] < 0 && daily_ghi[d] > 1.5 * winter_ghi)
            cold_sunny++;
    printf("monthly means:");
    for (int m = 0; m < 12; m++)
        printf(" %.1f", month_mean[m]);
    printf("\nclear-day ranges: winter %.1f K (%d days), summer %.1f K (%d days); cold and sunny "
           "winter days %d\n",
           range_winter_clear / nwc, nwc, range_summer_clear / nsc, nsc, cold_sunny);
    HVS_CHECK(month_mean[0] > -4 && month_mean[0] < 3, "January %.1f", month_mean[0]);
    HVS_CHECK(month_mean[6] > 15 && month_mean[6] < 22, "July %.1f", month_mean[6]);
    HVS_CHECK(month_mean[3] > month_mean[0] + 4 && month_mean[9] > month_mean[11] + 3, "seasons");
    HVS_CHECK(nwc > 3 && range_winter_clear / nwc > 3 && range_winter_clear / nwc < 9,
              "winter clear-day range %.1f", nwc ? range_winter_clear / nwc : 0);
    HVS_CHECK(nsc > 3 && range_summer_clear / nsc > 7 && range_summer_clear / nsc < 14,
              "summer clear-day range %.1f", nsc ? range_summer_clear / nsc : 0);
    HVS_CHECK(cold_sunny >= 3, "cold and sunny winter days: %d", cold_sunny);
    /* Day-to-day variability of winter daily means. */
    double sd = 0, mean = 0;
    int n = 0;
    for (int d = 0; d < 59; d++)
        mean += daily_mean[d], n++;
    mean /= n;
    for (int d = 0; d < 59; d++)
        sd += (daily_mean[d] - mean) * (daily_mean[d] - mean);
    sd = sqrt(sd / n);
    printf("Jan-Feb daily-mean std %.2f K\n", sd);
    HVS_CHECK(sd > 2.0 && sd < 6.5, "winter variability %.2f", sd);

    /* Clear-sky noon at 47 N: ~310 W/m2 at the winter solstice, ~900 at the summer one. */
    double dec = 0, jun = 0;
    for (int m = 0; m < 120; m++) {
        dec = fmax(dec, sim_weather_clear_sky(LAT, LON, Y2024 + 355 * DAY + 10 * HOUR + m * 60000));
        jun = fmax(jun, sim_weather_clear_sky(LAT, LON, Y2024 + 172 * DAY + 10 * HOUR + m * 60000));
    }
    printf("clear-sky noon: Dec %.0f W/m2, Jun %.0f W/m2\n", dec, jun);
    HVS_CHECK(dec > 260 && dec < 360, "December clear-sky noon %.0f", dec);
    HVS_CHECK(jun > 820 && jun < 1000, "June clear-sky noon %.0f", jun);
}

static double corr_daily(double lat2, double lon2) {
    double x[200], y[200], mx = 0, my = 0;
    for (int d = 0; d < 200; d++) {
        x[d] = y[d] = 0;
        for (int h = 0; h < 24; h += 3) {
            sim_weather_t a, b;
            sim_weather_observed(&conf, LAT, LON, ELEV, Y2024 + d * DAY + h * HOUR, &a);
            sim_weather_observed(&conf, lat2, lon2, ELEV, Y2024 + d * DAY + h * HOUR, &b);
            x[d] += a.temperature_c / 8, y[d] += b.temperature_c / 8;
        }
        mx += x[d] / 200, my += y[d] / 200;
    }
    double sxy = 0, sxx = 0, syy = 0;
    for (int d = 0; d < 200; d++)
        sxy += (x[d] - mx) * (y[d] - my), sxx += (x[d] - mx) * (x[d] - mx),
            syy += (y[d] - my) * (y[d] - my);
    return sxy / sqrt(sxx * syy);
}

static void test_region_and_determinism(void) {
    double r = corr_daily(46.95, 7.45); /* Bern, ~95 km from Zurich */
    printf("daily-mean correlation Zurich-Bern %.3f\n", r);
    HVS_CHECK(r > 0.9, "regional coherence %.3f", r);
    sim_weather_t a, b;
    sim_weather_observed(&conf, LAT, LON, ELEV, Y2024 + 1234567, &a);
    sim_weather_observed(&conf, LAT, LON, ELEV, Y2024 + 1234567, &b);
    HVS_CHECK(memcmp(&a, &b, sizeof a) == 0, "same inputs, same weather");
    sim_weather_conf_t other = conf;
    other.seed = conf.seed + 1;
    sim_weather_observed(&other, LAT, LON, ELEV, Y2024 + 1234567, &b);
    HVS_CHECK(a.temperature_c != b.temperature_c, "another seed, other weather");
    sim_weather_observed(&conf, LAT, LON, ELEV + 1000, Y2024 + 1234567, &b);
    HVS_CHECK_NEAR(a.temperature_c - b.temperature_c, 6.5, 1e-6);
}

static void test_forecasts(void) {
    double se[4] = {0};
    int n[4] = {0};
    const int leads[4] = {6, 24, 48, 72};
    for (int i = 0; i < 400; i++) {
        hvs_ms_t issue = Y2024 + (hvs_ms_t)i * 6 * HOUR;
        for (int k = 0; k < 4; k++) {
            sim_weather_t f, o;
            hvs_ms_t t = issue + leads[k] * HOUR;
            sim_weather_forecast(&conf, LAT, LON, ELEV, issue, t, &f);
            sim_weather_observed(&conf, LAT, LON, ELEV, t, &o);
            se[k] += (f.temperature_c - o.temperature_c) * (f.temperature_c - o.temperature_c);
            n[k]++;
        }
        sim_weather_t f, o;
        sim_weather_forecast(&conf, LAT, LON, ELEV, issue, issue - HOUR, &f);
        sim_weather_observed(&conf, LAT, LON, ELEV, issue - HOUR, &o);
        HVS_CHECK(memcmp(&f, &o, sizeof f) == 0, "the past is observed");
    }
    double rmse[4];
    for (int k = 0; k < 4; k++)
        rmse[k] = sqrt(se[k] / n[k]);
    printf("forecast temperature RMSE: 6 h %.2f, 24 h %.2f, 48 h %.2f, 72 h %.2f K\n", rmse[0],
           rmse[1], rmse[2], rmse[3]);
    HVS_CHECK(rmse[0] < rmse[1] && rmse[1] < rmse[2] && rmse[2] < rmse[3], "error grows with lead");
    HVS_CHECK(rmse[0] > 0.4 && rmse[0] < 1.3, "6 h RMSE %.2f", rmse[0]);
    HVS_CHECK(rmse[1] > 1.0 && rmse[1] < 2.2, "24 h RMSE %.2f", rmse[1]);
    HVS_CHECK(rmse[3] > 2.0 && rmse[3] < 4.0, "72 h RMSE %.2f", rmse[3]);
    HVS_CHECK_EQ_INT(sim_weather_latest_issue(Y2024 + 8 * HOUR), Y2024 + 6 * HOUR);
    HVS_CHECK_EQ_INT(sim_weather_latest_issue(Y2024 + 8 * HOUR - 1), Y2024);
}

static void test_shocks(void) {
    sim_label_t l[64];
    int n = sim_weather_shocks(&conf, LAT, LON, Y2024, Y2024 + 366 * DAY, l, 64);
    printf("shocks in 2024: %d\n", n);
    HVS_CHECK(n >= 8 && n <= 40, "shocks at rate 0.05/day: %d", n);
    int fronts = 0, storms = 0;
    for (int i = 0; i < n && i < 64; i++) {
        HVS_CHECK(!strcmp(l[i].category, "weather") && l[i].end > l[i].start, "label");
        sim_weather_t before, during, fc_early, fc_late;
        hvs_ms_t t = l[i].start + (!strcmp(l[i].type, "storm") ? HOUR : 3 * HOUR);
        sim_weather_observed(&conf, LAT, LON, ELEV, l[i].start - 60000, &before);
        sim_weather_observed(&conf, LAT, LON, ELEV, t, &during);
        hvs_ms_t early = l[i].start - HOUR - 1, late = l[i].start;
        sim_weather_forecast(&conf, LAT, LON, ELEV, early, t, &fc_early);
        sim_weather_forecast(&conf, LAT, LON, ELEV, late, t, &fc_late);
        if (!strcmp(l[i].type, "storm")) {
            storms++;
            HVS_CHECK(during.cloud_cover_pct >= 96, "storm %d: cloud %.0f", i,
                      during.cloud_cover_pct);
            HVS_CHECK(fc_late.cloud_cover_pct >= fc_early.cloud_cover_pct - 25,
                      "storm seen once started");
        } else {
            fronts++;
            /* The drop is in the truth and in the later forecast, missing from the earlier. */
            sim_weather_t base;
            sim_weather_conf_t calm = conf;
            calm.shock_rate_per_day = 0;
            sim_weather_observed(&calm, LAT, LON, ELEV, t, &base);
            HVS_CHECK(base.temperature_c - during.temperature_c > 0.9 * l[i].magnitude,
                      "front %d: drop %.2f of %.2f", i, base.temperature_c - during.temperature_c,
                      l[i].magnitude);
            HVS_CHECK(fc_early.temperature_c - fc_late.temperature_c > 0.5 * l[i].magnitude,
                      "front %d: early forecast %.1f, late %.1f", i, fc_early.temperature_c,
                      fc_late.temperature_c);
        }
    }
    HVS_CHECK(fronts > 0 && storms > 0, "both kinds: %d fronts, %d storms", fronts, storms);
}

static const hvs_test_case_t cases[] = {
    {"climate", test_climate},
    {"region_and_determinism", test_region_and_determinism},
    {"forecasts", test_forecasts},
    {"shocks", test_shocks},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    sim_weather_conf_default(&conf, 42);
    return hvs_test_main(cases, argc, argv);
}
