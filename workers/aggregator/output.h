/*
 * output.h - Aggregate records (schemas/Aggregate.avsc) from window results. Apartment windows
 * carry their rooms (windows.h), building windows an empty "rooms".
 *
 * Two writers of the same bytes. The direct writer puts the body straight into a reused buffer
 * (hvs/wire.h: no allocation per record once it has grown); it is used when the current
 * Aggregate schema has the layout it was written for (hvs_serde_layout), which a test checks, so
 * a schema change that forgets the writer fails that test rather than the wire. Otherwise the
 * avro-c path fills a generic value (field indices resolved once, one reusable encoder; room
 * names lent, flag strings copied by avro-c) and encodes it: the reference the direct writer is
 * compared with byte for byte (tests/aggregator/test_agg_output.c), and the fallback.
 *
 * Ownership: agg_output_t borrows the serde (must outlive it); free with agg_output_destroy.
 * Thread-safety: none. Errors: HVS_ESERDE/HVS_ENOMEM with the field named.
 */
#ifndef AGG_OUTPUT_H
#define AGG_OUTPUT_H

#include <stdbool.h>

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

/* Does an Aggregate schema have the layout of the direct writer? */
bool agg_output_layout_direct(avro_schema_t aggregate);
/* Is o using the direct writer? */
bool agg_output_direct(const agg_output_t *o);
/* Did the direct writer write the last message agg_output_encode returned? */
bool agg_output_last_direct(const agg_output_t *o);
/* Tests: false forces the avro-c path, true returns to the direct writer when the schema allows
 * it. */
void agg_output_use_direct(agg_output_t *o, bool on);

#endif
