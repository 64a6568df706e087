/*
 * output.h - a refresh (engine.h) as a Forecast record on forecasts.refreshed
 * (schemas/Forecast.avsc, kind REFRESHED, correction_kwh per point, baseline_version and
 * baseline_issued_at naming what it corrects; one encoder reused) and as the JSON of the
 * building's latest "next hours" in Redis (docs/design.md section 8):
 *   {"building_id":"B","issued_at":<ms>,"model":"<name>:<version>"|"online",
 *    "model_name":"...","model_version":<v>,"baseline_model":"forecast/...",
 *    "baseline_version":<v>,"baseline_issued_at":<ms>,"flags":["online_correction",...],
 *    "points":[[<target_hour ms>,<horizon_h>,<yhat kWh>,<lower|null>,<upper|null>,
 *               <correction kWh>],...]}
 * (numbers as hvs_fmt_double writes them: read back, the published doubles bit for bit).
 *
 * Ownership: rf_output_new borrows the serde; encoded bytes are the output's, valid until the
 * next call; rf_output_json returns a malloc'd string the caller frees.
 * Thread-safety: one thread. Errors: 0, HVS_ESERDE "avro_encode" naming the building and tick,
 * HVS_ENOMEM.
 */
#ifndef RF_OUTPUT_H
#define RF_OUTPUT_H

#include <stddef.h>

#include "engine.h"
#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"

typedef struct rf_output rf_output_t;

int rf_output_new(hvs_serde_t *s, const char *topic, rf_output_t **out, hvs_err_t *err);
void rf_output_destroy(rf_output_t *o);
int rf_output_encode(rf_output_t *o, const rf_refresh_t *r, const void **buf, size_t *len,
                     hvs_err_t *err);
/* The JSON above (malloc'd), NULL on ENOMEM. */
char *rf_output_json(const rf_refresh_t *r);
/* What the worker does with a refresh the engine made (its emit callback): the building's latest
 * JSON when the tick is its newest (b->latest, written with the state), and unless quiet the
 * record sent to `topic` keyed by building on the producer (borrowed). */
int rf_output_emit(rf_output_t *o, hvs_producer_t *p, const char *topic, rf_building_t *b,
                   const rf_refresh_t *r, bool quiet, hvs_err_t *err);

#endif
