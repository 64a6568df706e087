/*
 * follow.h - read a whole topic from its beginning and keep following it, without a consumer
 * group (every partition assigned, nothing committed): how every instance of every worker
 * sees all of a compacted table topic (topology, models).
 *
 * Ownership: the follower owns its librdkafka handle; messages handed to the callback are
 * valid during the call only. Thread-safety: one thread.
 * Errors: HVS_EKAFKA (configuration, metadata, assignment) naming the topic.
 */
#ifndef HVS_FOLLOW_H
#define HVS_FOLLOW_H

#include <stdbool.h>

#include "hvs/kafka.h"

typedef struct hvs_follow hvs_follow_t;

/* `what` names the follower in logs and its group.id (never joined), e.g. "topology". */
int hvs_follow_new(const hvs_kafka_conf_t *conf, const char *topic, const char *what,
                   hvs_follow_t **out, hvs_err_t *err);
void hvs_follow_destroy(hvs_follow_t *f);

/* Hand every message that arrives to fn, waiting up to timeout_ms until every partition
 * reached its end once (then, or with timeout_ms 0, only what is already fetched). Returns the
 * messages handed over. */
int hvs_follow_poll(hvs_follow_t *f, int timeout_ms,
                    void (*fn)(void *opaque, const rd_kafka_message_t *m), void *opaque);
bool hvs_follow_caught_up(const hvs_follow_t *f);

#endif
