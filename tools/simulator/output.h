/*
 * output.h - where the simulator's data goes: readings as the seeds' JSON lines or as Avro
 * `Reading` messages on Kafka; the Building records (JSON lines and/or the `topology` topic);
 * observed hourly weather lines; ground-truth labels.
 *
 * JSON line of a record (what `hvsctl ingest` reads):
 *   {"timestamp_str":"2024-10-27T10:30:00Z","building_id":"bldg_001","apartment_id":
 *    "apt_001_004","readings":[{"sensor_type":"heating_energy_kwh","value":15432.7},
 *    {"sensor_type":"room_temp_c","room_name":"living_room","value":21.5}]}
 * Deliberately broken records: NaN is written as the bare token NaN, a syntax error as the
 * line cut in the middle; on Kafka a syntax error is an Avro body cut short (the header stays,
 * so the consumer's dead letter says "truncated").
 * Label line: {"building_id":..,"apartment_id":..|null,"room":..|null,"category":"fault",
 *   "type":"stuck_valve","start":"ISO","end":"ISO","start_ms":..,"end_ms":..,"magnitude":0.8}
 * Weather line: {"building_id":..,"time":"ISO","temperature_c":..,"shortwave_radiation":..,
 *   "cloudcover":..,"relative_humidity":..,"wind_speed":..}
 *
 * Ownership: writers borrow the FILE, producer, serde and fleet (they must outlive the writer);
 * destroy frees the writer only (NULL-safe). Thread-safety: one thread.
 * Errors: 0, HVS_EIO (short write: message names the output), HVS_EKAFKA / HVS_ETIMEOUT from
 * the producer, HVS_ESERDE, HVS_ENOMEM.
 */
#ifndef HVS_SIM_OUTPUT_H
#define HVS_SIM_OUTPUT_H

#include <stdio.h>

#include "fleet.h"
#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "record.h"
#include "weather.h"

typedef struct sim_output sim_output_t;

int sim_output_jsonl_new(FILE *f, const sim_fleet_t *fleet, sim_output_t **out, hvs_err_t *err);
int sim_output_kafka_new(hvs_producer_t *p, hvs_serde_t *serde, const char *topic,
                         const sim_fleet_t *fleet, sim_output_t **out, hvs_err_t *err);
int sim_output_write(sim_output_t *o, const sim_record_t *r, hvs_err_t *err);
uint64_t sim_output_written(const sim_output_t *o);
void sim_output_destroy(sim_output_t *o);

/* One record as a JSON line with '\n' into buf; returns its length (0 if cap is too small). */
size_t sim_format_json(const sim_fleet_t *f, const sim_record_t *r, char *buf, size_t cap);
/* One record as hvs_reading_t (what the Kafka writer encodes); corruption applies except
 * syntax. */
void sim_record_to_reading(const sim_fleet_t *f, const sim_record_t *r, hvs_reading_t *out);

/* The Building record of b at `updated_at` as natural JSON (malloc'd, caller frees). */
char *sim_building_json(const sim_fleet_t *f, const sim_building_t *b, hvs_ms_t updated_at);
/* Every building: a JSON line each to `file` (may be NULL) and a Building message each to the
 * topology topic through `p` (may be NULL). */
int sim_output_topology(const sim_fleet_t *f, hvs_ms_t updated_at, FILE *file, hvs_producer_t *p,
                        hvs_serde_t *serde, hvs_err_t *err);

size_t sim_format_label(const sim_fleet_t *f, const sim_label_t *l, char *buf, size_t cap);
size_t sim_format_weather(const sim_building_t *b, const sim_weather_t *w, char *buf, size_t cap);

#endif
