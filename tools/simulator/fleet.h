/*
 * fleet.h - the simulated fleet: buildings of several archetypes, their apartments, households
 * and rooms, and every episode planned for the run (faults and their benign look-alikes).
 *
 * Each room is a first-order RC thermal model (see sim.h for the step): heat loss to outdoors
 * through the envelope and ventilation (H, W/K), coupling to the rest of the apartment, a
 * capacity C from the archetype's time constant, solar gains through its windows, internal
 * gains of the people in it, and a radiator whose thermostatic valve drives the room towards
 * the setpoint. Archetypes set the loss per m2 of floor, the time constant, ventilation with or
 * without heat recovery, and the building size:
 *   old_poorly_insulated   ~130 kWh/m2a, tau ~35 h, natural ventilation
 *   modern_high_density    ~45 kWh/m2a, tau ~60 h, exhaust air heat recovery
 *   passive                ~15 kWh/m2a, tau ~150 h, heat recovery 85 %
 *
 * Everything is drawn from the run's seed through per-entity streams (rng.h), so the same
 * seed and parameters give the same fleet whatever is asked of it later.
 *
 * Ownership: sim_fleet_new allocates the fleet and everything in it; sim_fleet_destroy frees it
 * (NULL-safe), including the calendars. Thread-safety: one thread. Errors: HVS_EINVAL for
 * parameters out of range (named in err->msg), HVS_ENOMEM.
 */
#ifndef HVS_SIM_FLEET_H
#define HVS_SIM_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/calendar.h"
#include "hvs/err.h"
#include "hvs/time.h"
#include "record.h"
#include "rng.h"

#define SIM_MAX_ROOMS 5
#define SIM_MAX_EPISODES 24 /* per apartment over one run */

typedef enum sim_archetype_kind {
    SIM_ARCH_MODERN,
    SIM_ARCH_OLD,
    SIM_ARCH_PASSIVE,
    SIM_ARCH_COUNT
} sim_archetype_kind_t;

typedef struct sim_archetype {
    const char *name;       /* as in the Building record */
    const char *insulation; /* "poor", "standard", "passive" */
    double loss_w_per_k_m2; /* envelope transmission per m2 of floor */
    double ach;             /* air changes per hour */
    double heat_recovery;   /* ventilation heat recovery efficiency (0 = none) */
    double tau_h;           /* thermal time constant of a room, hours */
    int apartments_min, apartments_max;
    int year_min, year_max; /* construction years */
    double window_ratio;    /* window area / floor area */
} sim_archetype_t;

const sim_archetype_t *sim_archetype(sim_archetype_kind_t k);

/* Household types; night shift is a benign look-alike (heating and water at odd hours). */
typedef enum sim_household_kind {
    SIM_HH_WORKING, /* out on workdays 7:30-17:30 */
    SIM_HH_FAMILY,  /* children: school days and school holidays matter */
    SIM_HH_RETIRED, /* home most of the day */
    SIM_HH_NIGHT,   /* night shifts: out 21:00-07:00 on workdays, sleeps by day */
    SIM_HH_COUNT
} sim_household_kind_t;

/* Episode kinds, planned per apartment before the run. Faults first. */
typedef enum sim_episode_kind {
    SIM_EP_STUCK_VALVE,      /* room: valve stuck open at `level` (0..1) */
    SIM_EP_NO_HEAT_RESPONSE, /* room: radiator gives no heat however open the valve */
    SIM_EP_SENSOR_FLATLINE,  /* room: temperature sensor repeats one value */
    SIM_EP_SENSOR_DRIFT,     /* room: reported = true + level * days since start */
    SIM_EP_SENSOR_NOISE,     /* room: reported = true + N(0, level) */
    SIM_EP_EFFICIENCY_LOSS,  /* apartment: heat recovery falls linearly to `level` */
    SIM_EP_FAULT_COUNT,
    SIM_EP_VACATION = SIM_EP_FAULT_COUNT, /* nobody home, frost protection, no hot water */
    SIM_EP_GUESTS,                        /* `level` extra people */
    SIM_EP_MANUAL_OVERRIDE,               /* every room's setpoint raised to `level` degC */
    SIM_EP_NIGHT_SHIFT,                   /* label only: the household works nights (whole run) */
    SIM_EP_MOVE_IN, /* label only: first weeks after move-in to a new building */
    SIM_EP_COUNT
} sim_episode_kind_t;

const char *sim_episode_name(sim_episode_kind_t k); /* label type, e.g. "stuck_valve" */
bool sim_episode_is_fault(sim_episode_kind_t k);

typedef struct sim_episode {
    uint8_t kind;        /* sim_episode_kind_t */
    int8_t room;         /* -1 = apartment */
    bool labelled;       /* its label has been emitted */
    hvs_ms_t start, end; /* [start, end) */
    double level;
} sim_episode_t;

typedef struct sim_room {
    char name[24];
    double area_m2, window_m2;
    double h_out;            /* W/K to outdoors (envelope + ventilation at the nominal recovery) */
    double h_vent;           /* W/K of ventilation before recovery (for efficiency-loss faults) */
    double h_in;             /* W/K to the apartment's other rooms */
    double h_nb;             /* W/K through party walls and slabs to the neighbours (~20.5 degC) */
    double cap_j_per_k;      /* thermal capacity */
    double q_max_w;          /* radiator power at full valve */
    double solar_factor;     /* share of GHI entering per m2 of window (orientation, shading, g) */
    double comfort_offset_c; /* bedrooms cooler, bathrooms warmer */
    double sensor_bias_c;    /* every sensor is a little off */
    /* state */
    double temp_c; /* true air temperature */
    double setpoint_c;
    double valve;           /* 0..1 */
    double reported_temp_c; /* what the sensor says (faults applied) */
    double flat_value_c;    /* frozen value of a flat-lined sensor */
    /* last values sent (change-based reporting) */
    double sent_temp, sent_setpoint, sent_valve;
} sim_room_t;

typedef struct sim_apartment {
    char id[32];
    uint32_t index; /* within the building */
    int floor;
    double area_m2;
    uint8_t household; /* sim_household_kind_t */
    int persons;
    double comfort_c;          /* preferred day setpoint */
    double night_setback_c;    /* 0 = none */
    double setback_from_h;     /* local hour the night set-back starts (21.5-23.5) */
    double setback_to_h;       /* and ends (5.0-7.5): programmed per flat, not fleet-wide */
    bool day_setback;          /* lowers the setpoint when everyone is out */
    double airing_rate;        /* window-airing events per occupied day */
    double water_l_per_person; /* daily hot water */
    hvs_ms_t occupied_since;   /* move-in (commissioned buildings: later than commissioning) */
    double heat_recovery;      /* nominal efficiency of its ventilation */
    sim_room_t rooms[SIM_MAX_ROOMS];
    int nrooms;
    sim_episode_t episodes[SIM_MAX_EPISODES];
    int nepisodes;
    sim_rng_t rng; /* the apartment's stream for everything at run time */
    /* state */
    double heat_kwh, water_l; /* cumulative counters */
    double airing_left_h;     /* window open for this many more hours */
    double sent_heat, sent_water;
    hvs_ms_t last_sent; /* heartbeat */
    bool started;       /* has sent its first record */
} sim_apartment_t;

typedef struct sim_building {
    char id[24];
    uint32_t index;
    sim_archetype_kind_t archetype;
    double latitude, longitude;
    int construction_year;
    hvs_ms_t commissioned; /* first readings; later than the run's start for new ones */
    char region[8];        /* holiday region, e.g. "CH-ZH" */
    char team[8];          /* maintenance team, "team-a".. round-robin by index; "" = none */
    hvs_calendar_t *calendar;
    sim_apartment_t *apartments;
    uint32_t napartments;
    double heated_area_m2;
} sim_building_t;

typedef struct sim_fleet_params {
    uint64_t seed;
    hvs_ms_t start, end;          /* the simulated period */
    int buildings;                /* 1..1000 */
    int apartments_per_building;  /* 0 = by archetype (16..66); else exactly this */
    double new_building_fraction; /* commissioned during the run; default 0.2 */
    double fault_rate;            /* faults per apartment-year; default 0.6 */
    double vacation_rate;         /* vacations per apartment-year; default 3 */
    double guest_rate;            /* guest visits per apartment-year; default 4 */
    double override_rate;         /* manual overrides per apartment-year; default 3 */
    double night_shift_fraction;  /* households on night shifts; default 0.05 */
    const char *regions;          /* comma-separated holiday regions to draw from */
    int teams; /* maintenance teams 0..26: building i gets "team-<'a' + i % teams>"; 0 = none;
                * default 2 */
} sim_fleet_params_t;

void sim_fleet_params_default(sim_fleet_params_t *p);

typedef struct sim_fleet {
    sim_fleet_params_t params;
    sim_building_t *buildings;
    uint32_t nbuildings;
    uint64_t napartments;
} sim_fleet_t;

int sim_fleet_new(const sim_fleet_params_t *p, sim_fleet_t **out, hvs_err_t *err);
void sim_fleet_destroy(sim_fleet_t *f);

/* The label of an apartment's episode (building/apartment indices filled in). */
void sim_episode_label(const sim_building_t *b, const sim_apartment_t *a, const sim_episode_t *e,
                       sim_label_t *out);

#endif
