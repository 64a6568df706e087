/*
 * output.h - a forecast (engine.h) as a Forecast record on forecasts.baseline
 * (schemas/Forecast.avsc, kind BASELINE, one encoder reused) and as the JSON of the building's
 * latest forecast in Redis (docs/design.md section 12, "the latest forecast"):
 *   {"building_id":"B","issued_at":<ms>,"model":"<name>:<version>","model_name":"<name>",
 *    "model_version":<v>,"flags":["rules_only",...],"out_of_distribution":false,
 *    "points":[[<target_hour ms>,<horizon_h>,<yhat kWh>,<lower|null>,<upper|null>],...]}
 * (numbers as hvs_fmt_double writes them: read back, the published doubles bit for bit).
 *
 * Ownership: fc_output_new borrows the serde; encoded bytes are the output's, valid until the
 * next call; fc_output_json returns a malloc'd string the caller frees.
 * Thread-safety: one thread. Errors: 0, HVS_ESERDE "avro_encode" naming the building and issue
 * time, HVS_ENOMEM.
 */
#ifndef FC_OUTPUT_H
#define FC_OUTPUT_H

#include <stddef.h>

#include "engine.h"
#include "hvs/err.h"
#include "hvs/serde.h"

typedef struct fc_output fc_output_t;

int fc_output_new(hvs_serde_t *s, const char *topic, fc_output_t **out, hvs_err_t *err);
void fc_output_destroy(fc_output_t *o);
int fc_output_encode(fc_output_t *o, const fc_forecast_t *f, const void **buf, size_t *len,
                     hvs_err_t *err);
/* The JSON above (malloc'd), NULL on ENOMEM. */
char *fc_output_json(const fc_forecast_t *f);

#endif
