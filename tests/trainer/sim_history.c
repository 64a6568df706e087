/*
 * sim_history.c - a simulated fleet's hourly history for the quality tests (sim_history.h).
 */
#include "sim_history.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "hvs_test.h"
#include "weather.h"

#define HOUR HVS_MS_HOUR
#define DAY HVS_MS_DAY

size_t sim_history_aix(const sim_history_t *h, uint32_t b, uint32_t a, size_t k) {
    return (((size_t)b * (size_t)h->apts) + (size_t)a) * ((size_t)h->days * 24) + k;
}

void sim_history_simulate(sim_history_t *h, hvs_ms_t start, int days, int buildings, int apts,
                          uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->start = start;
    h->days = days;
    h->apts = apts;
    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = seed;
    fp.start = start;
    fp.end = start + (hvs_ms_t)days * DAY;
    fp.buildings = (uint32_t)buildings;
    fp.apartments_per_building = apts;
    fp.new_building_fraction = 0;
    hvs_err_t err;
    HVS_REQUIRE(sim_fleet_new(&fp, &h->fleet, &err) == 0, "fleet: %s", err.msg);
    sim_conf_default(&h->conf, seed);
    sim_fleet_t *fleet = h->fleet;
    sim_delivery_conf_t dc;
    sim_delivery_conf_clean(&dc);
    uint32_t napts[16];
    for (uint32_t b = 0; b < fleet->nbuildings; b++)
        napts[b] = fleet->buildings[b].napartments;
    sim_delivery_t *d;
    sim_t *sim;
    HVS_REQUIRE(sim_delivery_new(&dc, seed, fleet->nbuildings, napts, NULL, &d, &err) == 0 &&
                    sim_new(fleet, &h->conf, d, NULL, &sim, &err) == 0,
                "sim: %s", err.msg);
    size_t nh = (size_t)days * 24;
    double *heat = calloc(fleet->nbuildings * nh, sizeof *heat);
    size_t na = (size_t)fleet->nbuildings * (size_t)apts * nh;
    double *apt_heat = h->apt_heat = calloc(na, sizeof *apt_heat);
    double *apt_temp = h->apt_temp = calloc(na, sizeof *apt_temp);
    double *apt_set = h->apt_set = calloc(na, sizeof *apt_set);
    double *nt = calloc(na, sizeof *nt), *ns = calloc(na, sizeof *ns);
    HVS_REQUIRE(heat && apt_heat && apt_temp && apt_set && nt && ns, "oom");
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
                size_t hk = (size_t)((r.timestamp - start) / HOUR);
                if ((r.v[i].sensor == SIM_S_ROOM_TEMP || r.v[i].sensor == SIM_S_SETPOINT) &&
                    (int)r.apartment < apts && hk < nh) {
                    bool temp = r.v[i].sensor == SIM_S_ROOM_TEMP;
                    (temp ? apt_temp : apt_set)[sim_history_aix(h, r.building, r.apartment, hk)] +=
                        r.v[i].value;
                    (temp ? nt : ns)[sim_history_aix(h, r.building, r.apartment, hk)] += 1;
                }
                if (r.v[i].sensor != SIM_S_HEAT_KWH || r.apartment >= 32)
                    continue;
                double *lv = &last_v[r.building][r.apartment];
                hvs_ms_t *lt = &last_t[r.building][r.apartment];
                if (!isnan(*lv) && r.v[i].value > *lv) {
                    double kwh = r.v[i].value - *lv;
                    for (hvs_ms_t a = *lt; a < r.timestamp;) {
                        hvs_ms_t hr = a - (a - start) % HOUR,
                                 e = hr + HOUR < r.timestamp ? hr + HOUR : r.timestamp;
                        size_t k = (size_t)((hr - start) / HOUR);
                        if (k < nh)
                            heat[r.building * nh + k] += kwh * (double)(e - a) /
                                                         (double)(r.timestamp - *lt);
                        if (k < nh && (int)r.apartment < apts)
                            apt_heat[sim_history_aix(h, r.building, r.apartment, k)] +=
                                kwh * (double)(e - a) / (double)(r.timestamp - *lt);
                        a = e;
                    }
                }
                *lv = r.v[i].value, *lt = r.timestamp;
            }
        }
    }
    sim_destroy(sim);
    sim_delivery_destroy(d);
    /* hourly means of what was reported; an hour without a report holds the last (change-only
       reporting sends nothing while a room is steady) */
    for (size_t q = 0; q < na; q += nh)
        for (size_t k = 0; k < nh; k++) {
            apt_temp[q + k] = nt[q + k] ? apt_temp[q + k] / nt[q + k]
                              : k       ? apt_temp[q + k - 1]
                                        : NAN;
            apt_set[q + k] = ns[q + k] ? apt_set[q + k] / ns[q + k] : k ? apt_set[q + k - 1] : NAN;
        }
    free(nt), free(ns);
    h->heat = heat;
}

void sim_history_free(sim_history_t *h) {
    free(h->heat), free(h->apt_heat), free(h->apt_temp), free(h->apt_set);
    sim_fleet_destroy(h->fleet);
    memset(h, 0, sizeof *h);
}

hvs_feat_wx_t sim_history_observed(const sim_history_t *h, uint32_t b, hvs_ms_t hour) {
    const sim_building_t *bl = &h->fleet->buildings[b];
    sim_weather_t w;
    sim_weather_observed(&h->conf.weather, bl->latitude, bl->longitude, h->conf.elevation_m,
                         hour + HOUR / 2, &w);
    return (hvs_feat_wx_t){hour + HOUR + 10 * 60000, true,
                           w.temperature_c,          w.relative_humidity_pct,
                           w.cloud_cover_pct,        w.shortwave_radiation_wm2,
                           w.wind_speed_ms};
}

hvs_feat_wx_t sim_history_forecast(const sim_history_t *h, uint32_t b, hvs_ms_t issue,
                                   hvs_ms_t hour) {
    const sim_building_t *bl = &h->fleet->buildings[b];
    sim_weather_t w;
    sim_weather_forecast(&h->conf.weather, bl->latitude, bl->longitude, h->conf.elevation_m, issue,
                         hour + HOUR / 2, &w);
    return (hvs_feat_wx_t){issue + 2 * HOUR,  false,
                           w.temperature_c,   w.relative_humidity_pct,
                           w.cloud_cover_pct, w.shortwave_radiation_wm2,
                           w.wind_speed_ms};
}

void sim_history_linear_fit(const tr_rows_t *r, int group, int ihdh, int ihour, int iwd,
                            hvs_ms_t until, double *beta) {
    static double A[SIM_LINEAR_NP][SIM_LINEAR_NP + 1];
    memset(A, 0, sizeof A);
    for (size_t i = 0; i < r->n; i++) {
        if (r->hour[i] >= until || r->group[i] != group)
            continue;
        const float *x = &r->x[i * r->ncols];
        if (!isfinite(x[ihdh]) || !isfinite(r->y[i]))
            continue;
        double f[SIM_LINEAR_NP] = {0};
        f[0] = 1;
        f[1] = x[ihdh];
        int how = (int)x[iwd] * 24 + (int)x[ihour];
        if (how > 0 && how < 168)
            f[1 + how] = 1;
        for (int a = 0; a < SIM_LINEAR_NP; a++)
            if (f[a] != 0) {
                for (int b = 0; b < SIM_LINEAR_NP; b++)
                    A[a][b] += f[a] * f[b];
                A[a][SIM_LINEAR_NP] += f[a] * r->y[i];
            }
    }
    for (int a = 0; a < SIM_LINEAR_NP; a++)
        A[a][a] += 1e-6;                      /* a ridge against empty hour-of-week cells */
    for (int c = 0; c < SIM_LINEAR_NP; c++) { /* Gauss-Jordan with partial pivoting */
        int p = c;
        for (int k = c + 1; k < SIM_LINEAR_NP; k++)
            if (fabs(A[k][c]) > fabs(A[p][c]))
                p = k;
        for (int k = 0; k <= SIM_LINEAR_NP; k++) {
            double t = A[c][k];
            A[c][k] = A[p][k];
            A[p][k] = t;
        }
        for (int k = 0; k < SIM_LINEAR_NP; k++)
            if (k != c && A[k][c] != 0) {
                double m = A[k][c] / A[c][c];
                for (int q = c; q <= SIM_LINEAR_NP; q++)
                    A[k][q] -= m * A[c][q];
            }
    }
    for (int a = 0; a < SIM_LINEAR_NP; a++)
        beta[a] = A[a][SIM_LINEAR_NP] / A[a][a];
}

double sim_history_linear_predict(const double *beta, double hdh, int hour, int weekday) {
    int how = weekday * 24 + hour;
    return beta[0] + beta[1] * (isfinite(hdh) ? hdh : 0) +
           (how > 0 && how < 168 ? beta[1 + how] : 0);
}
