/*
 * sim.h - the simulation step: every 15 simulated minutes, for every apartment of every
 * commissioned building, occupancy and setpoints from the household's schedule and the
 * calendar, one exact step of each room's RC model under the weather, the radiator valves,
 * the heat and hot-water meters, active faults, and a record of the values that changed.
 *
 * Room model, over a step dt with everything else held constant:
 *   C dT/dt = H_out (T_out - T) + H_in (T_apt - T) + Q_solar + Q_internal + Q_heat
 * solved exactly (T relaxes towards its equilibrium with factor exp(-G dt / C), G = H_out +
 * H_in), so any step length is stable. Q_heat = valve x radiator power, the valve a
 * proportional thermostat (band 1.5 K) on the true room temperature; window airing adds a
 * large H_out for a few minutes; heat recovery losses grow under an efficiency-loss fault.
 * Hot water: draws (showers, sinks) at random, heavier in the morning and evening, by the
 * people at home.
 *
 * Reporting ("sent only when a value changed", seed 001): values are quantised like the
 * tablets' (0.1 kWh, 0.1 l, 0.1 degC, 0.5 degC setpoints, 1 % valve) and a value is sent when
 * it moved by at least its deadband since last sent, or at every heartbeat (all values).
 *
 * Ownership: sim_new borrows the fleet, the delivery queue and the label sink (they must
 * outlive the sim); sim_destroy frees the sim only. Thread-safety: one thread.
 * Errors: 0 or a negative hvs_rc_t from the delivery queue (out of memory).
 */
#ifndef HVS_SIM_SIM_H
#define HVS_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "delivery.h"
#include "fleet.h"
#include "weather.h"

#define SIM_STEP_MS (15LL * 60 * 1000)

typedef struct sim_conf {
    sim_weather_conf_t weather;
    double elevation_m;        /* every building's; the weather server uses the same */
    double temp_deadband_c;    /* default 0.2 */
    double valve_deadband_pct; /* default 10 */
    hvs_ms_t heartbeat_ms;     /* default 6 h; 0 = never */
    bool valve_sensors;        /* send valve_position_pct; default true */
    double variability;        /* scales occupant-driven noise; default 1 */
} sim_conf_t;

void sim_conf_default(sim_conf_t *c, uint64_t seed);

typedef struct sim_stats {
    uint64_t steps, records, values_sampled, values_sent;
    double heat_kwh[SIM_ARCH_COUNT];   /* true heating energy per archetype */
    double area_years[SIM_ARCH_COUNT]; /* heated floor x time, m2 x years */
    uint64_t labels;
} sim_stats_t;

typedef struct sim sim_t;

int sim_new(sim_fleet_t *fleet, const sim_conf_t *conf, sim_delivery_t *delivery,
            const sim_label_sink_t *labels, sim_t **out, hvs_err_t *err);
void sim_destroy(sim_t *s);

/* Advance to instant t (a multiple of 15 min; the step covers [t - 15 min, t)) and push the
 * records measured at t to the delivery queue; labels of episodes starting by t and weather
 * shocks of each new day are emitted. Steps must come in order, one step apart. */
int sim_step(sim_t *s, hvs_ms_t t, hvs_err_t *err);

const sim_stats_t *sim_get_stats(const sim_t *s);
const sim_conf_t *sim_get_conf(const sim_t *s);

/* Apply the whole episode table of an apartment at instant t: which are active. */
bool sim_episode_active(const sim_episode_t *e, hvs_ms_t t);

#endif
