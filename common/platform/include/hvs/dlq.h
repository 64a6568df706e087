/*
 * dlq.h - dead letters: a record that cannot be processed goes, with the reason, to the
 * dead-letter topic of the topic it came from (`<topic>.dlq`, topics.h), as a DeadLetter record
 * (schemas/DeadLetter.avsc) carrying the original key and value bytes, so nothing is lost and
 * an operator can inspect and replay it (`hvsctl dlq`).
 *
 * Ownership: hvs_dlq_new borrows the producer and the serde (both must outlive the dlq);
 * hvs_dlq_destroy frees the dlq (NULL-safe), not what it borrowed.
 * Thread-safety: one thread per dlq (the encoder is reused).
 * Errors: 0 or a negative hvs_rc_t with err filled. Sends are asynchronous: a dead letter is
 * acknowledged by the producer's next hvs_producer_flush, like any other output of a batch.
 */
#ifndef HVS_DLQ_H
#define HVS_DLQ_H

#include <stdint.h>

#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/serde.h"

typedef struct hvs_dlq hvs_dlq_t;

/* `worker` (e.g. "aggregator") is copied. p and s are borrowed and must outlive the dlq. */
int hvs_dlq_new(hvs_producer_t *p, hvs_serde_t *s, const char *worker, hvs_dlq_t **out,
                hvs_err_t *err);
void hvs_dlq_destroy(hvs_dlq_t *d);

/*
 * Send a DeadLetter (original key and value bytes, topic, partition, offset, why->reason as
 * error_code, why->msg as error_text, worker, time now) to the dead-letter topic of the message's
 * topic (hvs_topic_dlq_name). Asynchronous: acknowledged by the next hvs_producer_flush.
 */
int hvs_dlq_send_message(hvs_dlq_t *d, const rd_kafka_message_t *orig, const hvs_err_t *why,
                         hvs_err_t *err);

/*
 * The same for input that did not come from Kafka (e.g. a JSON line for `hvsctl ingest`):
 * `src_topic` is the topic it was meant for, partition -1 / offset -1 mean "none",
 * `source` (may be NULL) says where it came from, e.g. "stdin:42".
 */
int hvs_dlq_send(hvs_dlq_t *d, const char *src_topic, int32_t partition, int64_t offset,
                 const void *key, size_t keylen, const void *value, size_t len, const char *source,
                 const hvs_err_t *why, hvs_err_t *err);

uint64_t hvs_dlq_sent(const hvs_dlq_t *d);

#endif
