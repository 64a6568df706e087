/*
 * rules.h - the physics rules the scorer applies to every apartment-hour, whatever the models
 * (docs/design.md section 6, "Scoring"; seed 004's first stage, seed 001's cold start).
 *
 * A rule looks at the rooms' hourly evidence (the Aggregate's `rooms`: mean temperature,
 * setpoint, valve position, how often the temperature changed) and the apartment's heating, and
 * fires when a condition a working heating system does not produce has held for long enough,
 * counted back hour by hour through the apartment's ring (a missing hour ends the run):
 *
 *   stuck_valve       (1) valve >= valve_open for >= stuck_hours while the room stays at
 *                     least stuck_below_c below its setpoint, and that much colder (relative to
 *                     setpoint) than its neighbours' median (every room short with open valves
 *                     is radiators at capacity, not a stuck one), without warming, and the apartment
 *                     consumes heat (the supply works: this radiator's valve does not pass it;
 *                     2 degC and "not warming" because a heavy building heats up slowly after a
 *                     set-back, a few tenths of a degree an hour at full valve);
 *                     (2) valve >= stuck_open_min while the room is at least stuck_above_c above
 *                     its setpoint (a thermostatic valve would have closed: heat flows where
 *                     none is asked for); (3) valve <= valve_closed while the room is at least
 *                     no_response_gap_c below its setpoint (it should have opened)
 *   no_heat_response  the room at least no_response_gap_c below its setpoint for
 *                     >= no_response_hours with its valve >= valve_half open, and the apartment
 *                     consuming no more than no_heat_kwh per hour: heat is asked for, none comes
 *   sensor_flatline   a room's temperature did not change for >= flatline_hours while the
 *                     apartment shows life (its other rooms' temperatures changed at least once
 *                     per two hours, or, alone, it consumed heat) and while something drove the
 *                     room's temperature: its valve moved >= 30 points (a thermostatic valve is
 *                     proportional on the temperature, a band of 1-2 K) or its setpoint moved
 *                     >= 1 degC over the run (a steady room under a steady valve legitimately
 *                     stays inside a sensor's reporting step for many hours)
 *   sensor_mismatch   for >= mismatch_hours the room reads at least mismatch_c from its own
 *                     setpoint, and its distance to setpoint differs from the median of its
 *                     neighbours' by >= mismatch_c the same way, while its valve contradicts
 *                     (reads warm with the valve open >= 20 %, cold with the valve <= 20 %):
 *                     the radiator's own thermostat disagrees with the sensor (a healthy room
 *                     next to a broken one is near its own setpoint, so it does not fire)
 *   consumption_without_demand  the apartment consumes >= demand_kwh per hour for >=
 *                     demand_hours while every room with a valve reports it <= valve_closed
 *
 * Strength of a fired rule: 0.6 when its condition has just held for its duration, rising
 * linearly to 1 at twice the duration (a rule that fired is already strong evidence; one that
 * keeps holding is stronger). The rules' evidence is the strongest fired rule's strength.
 *
 * Ownership: pure functions over the caller's apartment. Thread-safety: none needed.
 */
#ifndef SC_RULES_H
#define SC_RULES_H

#include <stddef.h>

#include "apartment.h"

typedef enum sc_rule {
    SC_RULE_STUCK_VALVE = 0,
    SC_RULE_NO_HEAT_RESPONSE,
    SC_RULE_SENSOR_FLATLINE,
    SC_RULE_SENSOR_MISMATCH,
    SC_RULE_CONSUMPTION_WITHOUT_DEMAND,
    SC_RULE_COUNT
} sc_rule_t;

typedef struct sc_rule_conf {
    double valve_open, valve_half, valve_closed, stuck_open_min; /* percent */
    double stuck_below_c, stuck_above_c, no_response_gap_c, mismatch_c;
    double no_heat_kwh, demand_kwh; /* per hour */
    int stuck_hours, no_response_hours, flatline_hours, mismatch_hours, demand_hours;
} sc_rule_conf_t;

/* The documented defaults (HVS_SCORE_* settings override them). */
void sc_rule_conf_default(sc_rule_conf_t *c);

const char *sc_rule_name(int rule); /* "stuck_valve", ...; "?" out of range */

/*
 * Judge hour `hour` of apartment a (its slot must hold the hour's aggregate half): fills the
 * slot's fired rules (strongest first, at most SC_FIRED_MAX) and rule_score from the ring as it
 * stands. Returns the number of rules fired.
 */
int sc_rules_judge(const sc_rule_conf_t *c, sc_apartment_t *a, hvs_ms_t hour);

/* A fired rule's reason as short text ("living room valve 100 % for 14 h, 16.2 degC vs
 * setpoint 21.0 degC"); returns its length (truncated to cap - 1). */
size_t sc_rule_reason(const sc_apartment_t *a, const sc_fired_t *f, char *buf, size_t cap);

#endif
