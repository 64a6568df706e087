/*
 * output.h - FeatureVector records (schemas/FeatureVector.avsc) for features.hourly: names in
 * the definition's order, values with NaN for missing, the feature-set version, the target
 * (the hour's consumption) and the quality flags.
 *
 * Ownership: the encoder and its buffer are the output's; *buf is valid until the next call.
 * Thread-safety: one thread. Errors: HVS_ESERDE naming the vector.
 */
#ifndef FX_OUTPUT_H
#define FX_OUTPUT_H

#include <stddef.h>

#include "engine.h"
#include "hvs/serde.h"

typedef struct fx_output fx_output_t;

int fx_output_new(hvs_serde_t *s, const char *topic, fx_output_t **out, hvs_err_t *err);
void fx_output_free(fx_output_t *o);
int fx_output_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                     hvs_err_t *err);

#endif
