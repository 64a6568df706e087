/*
 * output.h - Aggregate records (schemas/Aggregate.avsc) from window results: field indices
 * resolved once, one reusable encoder per topic, no allocation per record beyond avro-c's
 * buffer reuse (and the strings of the flags array, which avro-c copies; room names are lent,
 * not copied). Apartment windows carry their rooms (windows.h), building windows an empty
 * "rooms".
 *
 * Ownership: agg_output_t borrows the serde (must outlive it); free with agg_output_destroy.
 * Thread-safety: none. Errors: HVS_ESERDE/HVS_ENOMEM with the field named.
 */
#ifndef AGG_OUTPUT_H
#define AGG_OUTPUT_H

#include "hvs/serde.h"
#include "windows.h"

typedef struct agg_output agg_output_t;

int agg_output_new(hvs_serde_t *s, const char *topic, agg_output_t **out, hvs_err_t *err);
void agg_output_destroy(agg_output_t *o);

/*
 * Encode one window: apartment NULL = building window (reporting/known set). *buf, *len are
 * valid until the next call.
 */
int agg_output_encode(agg_output_t *o, const char *building, const char *apartment,
                      const agg_result_t *r, uint32_t revision, hvs_ms_t emitted_at,
                      const void **buf, size_t *len, hvs_err_t *err);

#endif
