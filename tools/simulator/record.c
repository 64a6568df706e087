/* record.c - names of the simulator's sensors and corruptions (see record.h). */
#include "record.h"

const char *sim_sensor_name(sim_sensor_t s) {
    static const char *const names[SIM_S_COUNT] = {
        "heating_energy_kwh", "hot_water_litres",   "room_temp_c",
        "setpoint_temp_c",    "valve_position_pct", "co2_ppm",
    };
    return (unsigned)s < SIM_S_COUNT ? names[s] : "unknown";
}

const char *sim_corruption_name(sim_corruption_t c) {
    switch (c) {
    case SIM_CORRUPT_NONE: return "none";
    case SIM_CORRUPT_NAN: return "nan";
    case SIM_CORRUPT_NEGATIVE_COUNTER: return "negative_counter";
    case SIM_CORRUPT_UNKNOWN_SENSOR: return "unknown_sensor";
    case SIM_CORRUPT_SYNTAX: return "syntax";
    }
    return "unknown";
}
