/*
 * weather_server.h - the simulated weather over HTTP in the Open-Meteo response format
 * (seed 001 section 3.1), so the weather worker runs its real HTTP path against the simulator.
 *
 *   GET /v1/forecast?latitude=47.37&longitude=8.54
 *       &hourly=temperature_2m,relativehumidity_2m,cloudcover,shortwave_radiation,windspeed_10m
 *       [&past_days=0..92][&forecast_days=1..16 (default 7)]
 *       [&start_date=YYYY-MM-DD&end_date=YYYY-MM-DD]
 *   -> {"latitude":47.37,"longitude":8.54,"generationtime_ms":0.1,"utc_offset_seconds":0,
 *       "timezone":"GMT","timezone_abbreviation":"GMT","elevation":408.0,
 *       "hourly_units":{"time":"iso8601","temperature_2m":"°C",...},
 *       "hourly":{"time":["2024-10-27T00:00",...],"temperature_2m":[9.8,...],...}}
 *   Hours from 00:00 UTC of (today - past_days) for (past_days + forecast_days) days, where
 *   "today" is the simulated clock's date; hours before the simulated now are observed
 *   weather, later ones come from the latest forecast issue available at now. Unknown hourly
 *   variables, out-of-range coordinates or days, and malformed numbers answer 400 with
 *   {"error":true,"reason":"..."} as Open-Meteo does.
 *   GET /v1/status -> {"now":"<simulated now, ISO>","issued_at":"<latest issue, ISO>"}
 *
 * Fault injection for the weather worker's tests: `fail_rate` of requests answer 503, and
 * `garbage_rate` answer 200 with a cut-short JSON body (both deterministic per request count).
 *
 * The simulated clock is read through `now_ms` (an atomic the simulation loop stores into), so
 * the served "now" follows the simulation at any --speed.
 *
 * Ownership: start borrows conf and now_ms (both must outlive the server); stop frees it
 * (NULL-safe). Thread-safety: requests run on HTTP threads and only read conf and the atomic.
 * Errors: 0 or negative hvs_rc_t (port in use: HVS_EIO naming the port).
 */
#ifndef HVS_SIM_WEATHER_SERVER_H
#define HVS_SIM_WEATHER_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "hvs/err.h"
#include "weather.h"

typedef struct sim_weather_server sim_weather_server_t;

typedef struct sim_weather_server_conf {
    const sim_weather_conf_t *weather;
    const _Atomic int64_t *now_ms; /* simulated clock */
    double elevation_m;            /* reported and used for every location; default 408 */
    double fail_rate;              /* 0..1 */
    double garbage_rate;           /* 0..1 */
    int bind_any;
} sim_weather_server_conf_t;

int sim_weather_server_start(uint16_t port, const sim_weather_server_conf_t *conf,
                             sim_weather_server_t **out, hvs_err_t *err);
uint16_t sim_weather_server_port(const sim_weather_server_t *s);
void sim_weather_server_stop(sim_weather_server_t *s);

#endif
