/*
 * vectors.h - FeatureVector records (schemas/FeatureVector.avsc) for features.hourly: names in
 * the definition's order, values with NaN for missing, the feature-set version, the target
 * (the hour's consumption), the quality flags and the revision (engine.h).
 *
 * Encoding: a direct writer of the schema's binary form (the names array encoded once, no
 * allocation per vector), used only after it produced avro-c's bytes exactly for sample vectors
 * at start; otherwise avro-c through the encoder.
 * Ownership: the encoder and its buffer are the output's; *buf is valid until the next call.
 * Thread-safety: one thread. Errors: HVS_ESERDE naming the vector.
 */
#ifndef FX_VECTORS_H
#define FX_VECTORS_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "hvs/serde.h"

typedef struct fx_output fx_output_t;

int fx_output_new(hvs_serde_t *s, const char *topic, fx_output_t **out, hvs_err_t *err);
void fx_output_destroy(fx_output_t *o);
int fx_output_encode(fx_output_t *o, const fx_vector_t *v, const void **buf, size_t *len,
                     hvs_err_t *err);
/* Whether the direct writer is in use (it matched avro-c's bytes on sample vectors at start). */
bool fx_output_direct(const fx_output_t *o);

#endif
