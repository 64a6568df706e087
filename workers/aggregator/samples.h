/*
 * samples.h - one apartment's readings inside the revisable horizon: the instants at which the
 * apartment reported anything, and per series (heating counter, hot-water counter; room
 * temperature, setpoint, valve position and humidity per room) the values, both sorted by event
 * time. Valves and humidity feed only the per-room stats (windows.h: rooms).
 *
 * A value is identified by (series, event time): the same reading twice is stored once, so a
 * replayed or duplicated record changes nothing (docs/design.md §5). A second, different value for an
 * already stored (series, time) is refused and counted as a conflict: the first one in partition
 * order wins, which a replay reproduces.
 *
 * Ownership: agg_samples_t is embedded by its owner (zero-initialised = empty) and freed with
 * agg_samples_fini. Series room names are copied. Thread-safety: none.
 * Errors: insert functions return 1 (stored), 0 (already there), or HVS_ENOMEM.
 */
#ifndef AGG_SAMPLES_H
#define AGG_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/time.h"

typedef enum agg_kind {
    AGG_HEAT = 0, /* heating_energy_kwh: cumulative, apartment */
    AGG_WATER,    /* hot_water_litres: cumulative, apartment */
    AGG_TEMP,     /* room_temp_c, per room */
    AGG_SETPOINT, /* setpoint_temp_c, per room */
    AGG_VALVE,    /* valve_position_pct, per room */
    AGG_HUMIDITY, /* humidity_pct, per room: only counted (a room's readings_seen) */
    AGG_KIND_COUNT
} agg_kind_t;

typedef struct agg_point {
    hvs_ms_t t;
    double v;
} agg_point_t;

typedef struct agg_series {
    agg_kind_t kind;
    char *room; /* "" for apartment-level series */
    agg_point_t *p;
    size_t n, cap;
    uint8_t slot; /* creation order in the apartment: its index in the stored series directory
                   * (persist.h), stable while the array is kept sorted */
} agg_series_t;

/* Most series one apartment may have (2 counters + up to 4 sensors per room): a bound on what
 * hostile input can make it hold; readings that would pass it are refused (aggregate.h). */
#define AGG_MAX_SERIES 64

typedef struct agg_samples {
    hvs_ms_t *inst; /* instants with any reading, sorted, unique */
    size_t ninst, capinst;
    agg_series_t *s;
    size_t ns, caps;
    uint64_t conflicts; /* second values refused for an existing (series, time) */
    size_t nslots;      /* series created so far (next slot) */
    size_t slots_saved; /* slots in the stored directory (persist.h) */
} agg_samples_t;

/* Kind of a sensor type (the channel the deployment's profile feeds from it, profile.h: heat's
 * heating_energy_kwh is AGG_HEAT, ev_charging's charger_energy_kwh too), or -1 for a sensor the
 * profile does not know. The kinds' names below are heat's. */
int agg_kind_of(const char *sensor_type);
const char *agg_kind_name(agg_kind_t k);
/* Short code used in the Redis encoding: 'h', 'w', 't', 's', 'v', 'u'. */
char agg_kind_code(agg_kind_t k);
int agg_kind_from_code(char c);

/* The series (kind, room), created when absent; NULL on ENOMEM. Counters ignore room.
 * Creating a series moves the others: do not keep pointers across this call. */
agg_series_t *agg_samples_series(agg_samples_t *a, agg_kind_t kind, const char *room);
/* Find without creating. */
const agg_series_t *agg_samples_find(const agg_samples_t *a, agg_kind_t kind, const char *room);

int agg_samples_add_instant(agg_samples_t *a, hvs_ms_t t);
int agg_samples_add_point(agg_series_t *s, hvs_ms_t t, double v, uint64_t *conflicts);

/* Index of the last element with t <= x, or -1. */
ptrdiff_t agg_points_floor(const agg_point_t *p, size_t n, hvs_ms_t x);
ptrdiff_t agg_instants_floor(const hvs_ms_t *t, size_t n, hvs_ms_t x);

/* Drop values older than `values_horizon`, keeping per series the newest one older than it (the
 * base a later counter difference or carried-over gauge needs), and instants older than
 * `instants_horizon` (kept longer: they say whether the apartment was alive across a long
 * counter interval). Returns the number of elements dropped. */
size_t agg_samples_prune(agg_samples_t *a, hvs_ms_t values_horizon, hvs_ms_t instants_horizon);

/* Newest instant, HVS_MS_NONE if empty. */
hvs_ms_t agg_samples_last(const agg_samples_t *a);
hvs_ms_t agg_samples_first(const agg_samples_t *a);

void agg_samples_fini(agg_samples_t *a);

#endif
