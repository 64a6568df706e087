/*
 * topology.h - the buildings and apartments the pipeline knows, followed from the compacted
 * `topology` topic (Building records). Read without a consumer group: every partition is
 * assigned from the beginning, nothing is committed, so every worker instance sees all of it.
 * A record with deleted = true (or a tombstone) removes the building.
 *
 * Ownership: agg_topology_t owns its librdkafka handle, decoder and maps; the serde is borrowed.
 * Thread-safety: none. Errors: HVS_EKAFKA when the topic cannot be read; undecodable records are
 * logged, counted and skipped (they are someone else's bad input on a topic we only follow).
 */
#ifndef AGG_TOPOLOGY_H
#define AGG_TOPOLOGY_H

#include <stdbool.h>

#include "hvs/kafka.h"
#include "hvs/serde.h"

typedef struct agg_topology agg_topology_t;

int agg_topology_new(const hvs_kafka_conf_t *conf, hvs_serde_t *s, const char *topic,
                     agg_topology_t **out, hvs_err_t *err);
void agg_topology_free(agg_topology_t *t);

/* Read what is there, up to `timeout_ms` until every partition reached its end at least once
 * (timeout_ms 0: only what is already fetched). Returns the number of records applied. */
int agg_topology_poll(agg_topology_t *t, int timeout_ms);
bool agg_topology_caught_up(const agg_topology_t *t);

/* Apartments of a building, or -1 when the building is unknown. */
int agg_topology_apartments(const agg_topology_t *t, const char *building);
bool agg_topology_has_apartment(const agg_topology_t *t, const char *building, const char *apt);

#endif
