/*
 * record.h - the simulator's compact in-flight record and ground-truth label.
 *
 * A sim_record_t is one apartment's readings at one instant, by fleet index (names are resolved
 * only when written out), so millions can be generated, queued for late delivery and rendered
 * without per-record allocation: ~400 bytes against hvs_reading_t's 17 KiB.
 *
 * Ownership: plain values; copy freely. Thread-safety: none needed.
 */
#ifndef HVS_SIM_RECORD_H
#define HVS_SIM_RECORD_H

#include <stdint.h>

#include "hvs/time.h"

#define SIM_MAX_VALUES 24

/* Sensor kinds the simulator emits; the names are reading.h's table. SIM_S_UNKNOWN only ever
 * appears in a deliberately malformed record. */
typedef enum sim_sensor {
    SIM_S_HEAT_KWH,    /* "heating_energy_kwh", cumulative, apartment level */
    SIM_S_HOT_WATER_L, /* "hot_water_litres", cumulative, apartment level */
    SIM_S_ROOM_TEMP,   /* "room_temp_c", per room */
    SIM_S_SETPOINT,    /* "setpoint_temp_c", per room */
    SIM_S_VALVE,       /* "valve_position_pct", per room */
    SIM_S_UNKNOWN,     /* "co2_ppm": not in reading.h's table */
    SIM_S_COUNT
} sim_sensor_t;

const char *sim_sensor_name(sim_sensor_t s);

/* How a record is broken on purpose (messy delivery). The first three are values inside a
 * well-formed record; SYNTAX is applied by the writer: a cut-short JSON line, or Avro bytes that
 * do not decode. */
typedef enum sim_corruption {
    SIM_CORRUPT_NONE = 0,
    SIM_CORRUPT_NAN,              /* one value is NaN */
    SIM_CORRUPT_NEGATIVE_COUNTER, /* a cumulative counter is negative */
    SIM_CORRUPT_UNKNOWN_SENSOR,   /* an extra value of sensor SIM_S_UNKNOWN */
    SIM_CORRUPT_SYNTAX,           /* the writer emits undecodable bytes */
} sim_corruption_t;

const char *sim_corruption_name(sim_corruption_t c); /* "nan", "negative_counter", ... */

typedef struct sim_value {
    uint8_t sensor; /* sim_sensor_t */
    int8_t room;    /* room index in the apartment; -1 = apartment level */
    double value;
} sim_value_t;

typedef struct sim_record {
    uint32_t building;    /* index into the fleet */
    uint32_t apartment;   /* index within the building */
    hvs_ms_t timestamp;   /* what the device stamps (clock skew applied) */
    hvs_ms_t measured_at; /* true instant of measurement */
    uint8_t n;            /* values used */
    uint8_t corrupt;      /* sim_corruption_t */
    uint8_t duplicate;    /* 1 for the second copy of a duplicated record */
    sim_value_t v[SIM_MAX_VALUES];
} sim_record_t;

/* Ground truth, one line of --labels-out. category: "fault" (what detection must find),
 * "benign" (a look-alike that must NOT be alerted: vacation, guests, night shift, manual
 * override, move-in), "delivery" (messy delivery: meter replacement, gap, late batch, clock
 * skew), "weather" (an intra-day shock). */
typedef struct sim_label {
    int32_t building;     /* -1: not building-specific (weather shocks carry the building) */
    int32_t apartment;    /* -1: building level */
    int32_t room;         /* -1: apartment level */
    const char *category; /* static */
    const char *type;     /* static: "stuck_valve", "no_heat_response", "sensor_flatline",
                               "sensor_drift", "sensor_noise", "efficiency_loss", "vacation",
                               "guests", "night_shift", "manual_override", "move_in",
                               "meter_replacement", "gap", "late_batch", "clock_skew",
                               "cold_front", "storm" */
    hvs_ms_t start, end;  /* [start, end) event time */
    double magnitude;     /* type-specific: skew ms, drift degC/day, valve %, final
                               efficiency, ...; 0 if none */
} sim_label_t;

/* Where labels go (the run's labels file / topic). May be NULL wherever taken. */
typedef struct sim_label_sink {
    void (*emit)(void *opaque, const sim_label_t *label);
    void *opaque;
} sim_label_sink_t;

static inline void sim_label_emit(const sim_label_sink_t *s, const sim_label_t *l) {
    if (s && s->emit)
        s->emit(s->opaque, l);
}

#endif
