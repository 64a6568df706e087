/*
 * sim_history.h - a simulated fleet's hourly history, as the trainer's and the forecaster's
 * quality tests need it (seeded, in process): the simulator run for `days`, building heat per
 * hour from the flats' reported counters (increments spread over their span), per flat the heat
 * and the hourly means of the reported room temperature and setpoint (an hour without a report
 * holds the last: change-only reporting), the weather as the weather worker publishes it
 * (an observation after each hour, 6-hourly forecast runs available 2 h after their issue for
 * 72 h), and the per-building heating-degree-hours + hour-of-week regression both tests use as
 * a baseline.
 *
 * Ownership: sim_history_t owns its fleet and arrays (sim_history_free). Thread-safety: none.
 * Errors: fatal (HVS_REQUIRE): a quality test cannot go on without its world.
 */
#ifndef SIM_HISTORY_H
#define SIM_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fleet.h"
#include "hvs/features.h"
#include "sim.h"

typedef struct sim_history {
    sim_fleet_t *fleet;
    sim_conf_t conf;
    hvs_ms_t start;
    int days, apts;                        /* hours = days x 24; flats per building kept (<= 32) */
    double *heat;                          /* building x hour, kWh */
    double *apt_heat, *apt_temp, *apt_set; /* (building x apts + flat) x hour */
} sim_history_t;

/* Simulate `buildings` buildings of `apts` flats each from start for days (seed as given). */
void sim_history_simulate(sim_history_t *h, hvs_ms_t start, int days, int buildings, int apts,
                          uint64_t seed);
void sim_history_free(sim_history_t *h);

/* Index of (building b, flat a, hour k) into the flats' arrays. */
size_t sim_history_aix(const sim_history_t *h, uint32_t b, uint32_t a, size_t k);

/* The observation of hour h of building b (issued 10 min after the hour's end). */
hvs_feat_wx_t sim_history_observed(const sim_history_t *h, uint32_t b, hvs_ms_t hour);
/* The forecast of hour h from the run issued at `issue` (available, issued_at, 2 h later). */
hvs_feat_wx_t sim_history_forecast(const sim_history_t *h, uint32_t b, hvs_ms_t issue,
                                   hvs_ms_t hour);

/* Least squares per building: y/area ~ b0 + b1 hdh + hour-of-week dummies (167), fitted on the
 * building's (group's) rows of r with target hours before `until`; beta has SIM_LINEAR_NP
 * coefficients. */
#define SIM_LINEAR_NP 169
void sim_history_linear_fit(const tr_rows_t *r, int group, int ihdh, int ihour, int iwd,
                            hvs_ms_t until, double *beta);
/* Its prediction (per m2) for a row's hdh, hour and weekday. */
double sim_history_linear_predict(const double *beta, double hdh, int hour, int weekday);

#endif
