/*
 * topology.h - the buildings and apartments the pipeline knows, followed from the compacted
 * `topology` topic (Building records): every worker that needs a building's apartments,
 * location, holiday region, archetype, commissioning date or maintenance team reads them here.
 * Records of every Building schema version decode (serde.h resolves them): one written before
 * `team` existed (Building v1, schema id 3) reads as the default team (""); one written before
 * `meter` existed (v1, v2 = id 16) as apartment heat meters in kWh at the defaults (meter.given
 * false); one written before apartments had their own `meter` (v1-v3 = id 17) with every
 * apartment on the building's meter (Building v4 = id 20). Read without a
 * consumer group: every partition is assigned from the beginning, nothing is committed, so
 * every worker instance sees all of it. The latest record of a building wins; a record with
 * deleted = true (or a tombstone) removes it.
 *
 * Ownership: hvs_topology_t owns its librdkafka handle, decoder and buildings; the serde is
 * borrowed and must outlive it. hvs_building_t pointers are valid until the next poll (a new
 * record of that building replaces it) or free.
 * Thread-safety: none (one thread polls and reads).
 * Errors: HVS_EKAFKA when the topic cannot be read; undecodable records, and records whose
 * building or apartment id fails the id rule (ids.h), are logged (rate-limited, log.h), counted
 * (hvs_topology_bad) and skipped, leaving the building as it was: they are someone else's bad
 * input on a topic we only follow, which has no consumer group and so no dead-letter path.
 */
#ifndef HVS_TOPOLOGY_H
#define HVS_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/time.h"

/* Symbols of the MeterKind and EnergyUnit enums (Building.meter), in schema order. */
typedef enum hvs_meter_kind {
    HVS_METER_APARTMENT_HEAT = 0,
    HVS_METER_BUILDING_HEAT,
    HVS_METER_SUBSTATION,
    HVS_METER_NETWORK
} hvs_meter_kind_t;
typedef enum hvs_energy_unit { HVS_UNIT_KWH = 0, HVS_UNIT_MWH, HVS_UNIT_GJ } hvs_energy_unit_t;

/* Heat meters (Building.meter, Apartment.meter): given false when the record has none. */
typedef struct hvs_meter {
    bool given;
    hvs_meter_kind_t kind;
    hvs_energy_unit_t unit;
    double max_kw;       /* NaN: the kind's default */
    int64_t interval_ms; /* 0: not given */
} hvs_meter_t;

/* kWh in one unit (1, 1000, 277.77...). */
double hvs_energy_unit_kwh(hvs_energy_unit_t u);
const char *hvs_meter_kind_name(hvs_meter_kind_t k);

typedef struct hvs_building {
    char *id;
    char *archetype;        /* "" when absent */
    char *holiday_region;   /* "" when absent */
    char *team;             /* maintenance team of its alerts; "" when absent (the default team) */
    hvs_ms_t commissioning; /* commissioning date (epoch ms) */
    double latitude, longitude;
    double heated_area_m2; /* NaN when absent (as written; use hvs_building_area) */
    double apts_area_m2;   /* sum of the apartments' area_m2 when every apartment has one
                            * (> 0), NaN otherwise (or without apartments) */
    hvs_meter_t meter;     /* its heat meters (given false: apartment meters, defaults) */
    char **apts;           /* apartment ids, sorted */
    /* apt_meters[i]: apts[i]'s own meter (given false: none, the building's counts) */
    hvs_meter_t *apt_meters;
    size_t napts;
    int32_t partition; /* partition of `topology` it came from (= its partition on
                                   * every co-partitioned building-keyed topic) */
    uint64_t version;  /* bumps with every record applied to this building */
} hvs_building_t;

typedef struct hvs_topology hvs_topology_t;

int hvs_topology_new(const hvs_kafka_conf_t *conf, hvs_serde_t *s, const char *topic,
                     hvs_topology_t **out, hvs_err_t *err);
void hvs_topology_destroy(hvs_topology_t *t);

/* Read what is there, up to `timeout_ms` until every partition reached its end at least once
 * (timeout_ms 0: only what is already fetched). Returns the number of records applied. */
int hvs_topology_poll(hvs_topology_t *t, int timeout_ms);
bool hvs_topology_caught_up(const hvs_topology_t *t);

/* The building, or NULL when unknown. */
const hvs_building_t *hvs_topology_find(const hvs_topology_t *t, const char *building);
/* Every building, sorted by id (*n entries; the array is t's). */
const hvs_building_t *hvs_topology_buildings(const hvs_topology_t *t, size_t *n);
/* The meter that counts apartment `apt` of b: its own when it has one, else the building's
 * (given false: the aggregator's apartment defaults). An apartment unknown to b gets the
 * building's. Never NULL for a non-NULL b. */
const hvs_meter_t *hvs_building_meter(const hvs_building_t *b, const char *apt);

/* Apartments of a building, or -1 when the building is unknown. */
int hvs_topology_apartments(const hvs_topology_t *t, const char *building);
bool hvs_topology_has_apartment(const hvs_topology_t *t, const char *building, const char *apt);
/* The heated area the pipeline uses, in m2 - the ONE rule for the trainer, the forecaster, the
 * refresher, the scorer and `hvsctl topology show`: heated_area_m2 when given (finite, > 0),
 * else the sum of the apartments' area_m2 when the building has apartments and every one of
 * them has an area (finite, > 0), else NaN ("not forecastable: no heated area"). A partial sum
 * would understate the area and so overstate every per-m2 figure: it is not used. */
double hvs_topology_area(double heated_area_m2, const double *apt_area_m2, size_t napts);
/* hvs_topology_area of a building from the follower (its apts_area_m2 precomputed). */
double hvs_building_area(const hvs_building_t *b);
/* Which rule gave hvs_building_area: "heated_area_m2", "apartments" or "none" (static). */
const char *hvs_building_area_source(const hvs_building_t *b);

/* Records skipped so far (undecodable, bad ids). */
uint64_t hvs_topology_bad(const hvs_topology_t *t);

#endif
