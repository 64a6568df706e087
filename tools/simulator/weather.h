/*
 * weather.h - the simulated weather: a pure function of (seed, location, time), so the
 * simulator, the Open-Meteo-style server and tests all read the same world at any instant, in
 * any order.
 *
 * Physics: temperature = seasonal cycle (coldest mid-January) + diurnal cycle (amplitude larger
 * under clear sky) + multi-day weather systems (smooth noise, days-long correlation, shared
 * across the region so nearby buildings see the same system) + a small local term + altitude
 * lapse (-6.5 K/km from `elevation_m`). Cloud cover follows the weather systems (high pressure:
 * clear, colder in winter nights and days -> the deliberate "cold and sunny" spells);
 * shortwave radiation (GHI, W/m2) = clear-sky irradiance from the sun's elevation at lat/lon
 * and time x a cloud attenuation (Kasten-Czeplak); relative humidity rises with cloud and at
 * night; wind with the systems. Intra-day shocks (a storm darkening the sky for a few hours,
 * a cold front dropping the temperature by several degrees for a day or more) start at random
 * hours at `shock_rate_per_day`.
 *
 * Forecasts are issued every 6 h (00, 06, 12, 18 UTC) and available 2 h later; a forecast for
 * hour t issued at i is the truth plus an error that grows with the lead time (t - i) and is
 * correlated along the lead; shocks that start after i are absent from it (the morning forecast
 * is wrong by the afternoon).
 *
 * Ownership: plain values, no allocation. Thread-safety: all functions are pure (the server
 * calls them from HTTP threads). Errors: none.
 */
#ifndef HVS_SIM_WEATHER_H
#define HVS_SIM_WEATHER_H

#include <stdint.h>

#include "hvs/time.h"
#include "record.h"

typedef struct sim_weather_conf {
    uint64_t seed;
    double shock_rate_per_day;   /* default 0.05: a shock every ~3 weeks per region */
    double forecast_error_scale; /* 1.0: day-ahead temperature error ~1.5 K RMS */
    double mean_temp_c;          /* annual mean at 0 m altitude; default 11.5 (Swiss plateau) */
    double season_amplitude_c;   /* half the July-January difference; default 8.6 */
} sim_weather_conf_t;

void sim_weather_conf_default(sim_weather_conf_t *c, uint64_t seed);

typedef struct sim_weather {
    hvs_ms_t time; /* the instant described */
    double temperature_c;
    double relative_humidity_pct;   /* 0..100 */
    double cloud_cover_pct;         /* 0..100 */
    double shortwave_radiation_wm2; /* GHI, >= 0 */
    double wind_speed_ms;           /* >= 0 */
} sim_weather_t;

/* The truth at instant t at a location. */
void sim_weather_observed(const sim_weather_conf_t *c, double lat, double lon, double elevation_m,
                          hvs_ms_t t, sim_weather_t *out);
/* The forecast for instant t issued at `issued_at` (any t; t <= issued_at gives the truth). */
void sim_weather_forecast(const sim_weather_conf_t *c, double lat, double lon, double elevation_m,
                          hvs_ms_t issued_at, hvs_ms_t t, sim_weather_t *out);
/* The newest forecast issue that is available at `now` (issue time, not availability). */
hvs_ms_t sim_weather_latest_issue(hvs_ms_t now);
/* Clear-sky GHI (W/m2) at a location and instant; 0 at night. */
double sim_weather_clear_sky(double lat, double lon, hvs_ms_t t);

/* Shocks that start in [from, to) at a location, as labels (category "weather", type
 * "cold_front" or "storm", building/apartment/room -1, magnitude = K drop or cloud %).
 * Returns how many were written (at most max; the count of all of them if more). */
int sim_weather_shocks(const sim_weather_conf_t *c, double lat, double lon, hvs_ms_t from,
                       hvs_ms_t to, sim_label_t *out, int max);

#endif
