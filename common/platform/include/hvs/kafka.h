/*
 * kafka.h - consumer and producer over librdkafka (dead letters: dlq.h; the loop: stage.h), for at-least-once
 * processing with idempotent effects (docs/design.md §5).
 *
 * The consume loop (written once, in stage.c: workers run it through hvs_stage, stage.h):
 *
 *     while (hvs_app_running()) {
 *         hvs_consumer_poll_batch(c, msgs, MAX, 100, &n, &err);   // serves rebalances too
 *         for each msg: decode; on bad input hvs_dlq_send_message(...) (dlq.h); else process
 *         hvs_producer_flush(p, ...) and the Redis batch          // outputs acknowledged
 *         hvs_consumer_commit_batch(c, msgs, n, &err);           // only now move offsets
 *         hvs_consumer_release(msgs, n);
 *     }
 *     hvs_consumer_close(c); hvs_producer_flush(p); destroy both.
 *
 * Offsets: enable.auto.offset.store=false, enable.auto.commit=false; an offset is stored and
 * committed only by hvs_consumer_commit_batch, i.e. after the caller says the batch's effects are
 * durable. A crash before that replays the batch (at-least-once).
 * Rebalancing: partition.assignment.strategy=cooperative-sticky (EAGER also handled). Rebalance
 * events are served only inside hvs_consumer_poll_batch; messages of revoked partitions that the
 * call had already collected are dropped (their offsets were never committed, so the new owner
 * reads them again). Hooks let a worker load state for added partitions and flush it for removed
 * ones.
 * OFFSET_OUT_OF_RANGE is a loud error, never a silent jump: new groups start at the earliest
 * offset (auto.offset.reset=earliest), and poll_batch checks that every assigned partition
 * continues at its committed offset, then without gaps. A hole (data aged out before it was
 * read: retention, or the devbroker's ~5 MiB per partition) or a step back (committed offset
 * beyond the log end) returns HVS_EKAFKA with reason "offset_out_of_range"; the messages are
 * still returned, so the worker can decide to go on (at-least-once for what still exists).
 * Gaps are legal on compacted topics (topics.h); transactional producers are not supported.
 * Producer: enable.idempotence=true, acks=all, partitioner murmur2_random (Java-compatible
 * co-partitioning), compression lz4; delivery reports are counted and a failed delivery makes the
 * next hvs_producer_flush fail.
 *
 * Configuration: hvs_kafka_conf_t names the essentials; `worker_props` (what one worker needs,
 * e.g. the trainer's long max.poll.interval.ms) override the defaults here, and `props` (HVS_KAFKA_*
 * pass-through, e.g. security.protocol, sasl.*) override both.
 *
 * Ownership: consumer/producer are created with _new and freed with _destroy (NULL-safe).
 * Messages returned by poll_batch belong to the caller until hvs_consumer_release.
 * Thread-safety: a consumer is used by one thread; a producer's send/flush may be called from
 * several threads (librdkafka is thread-safe) but the failure counters are per-producer.
 * Errors: 0 or negative hvs_rc_t with err filled; err->reason HVS_REASON_FATAL (hvs_err_is_fatal) marks a fatal librdkafka
 * error (the worker should exit non-zero and be restarted).
 */
#ifndef HVS_KAFKA_H
#define HVS_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/serde.h"

typedef struct hvs_kafka_conf {
    const char *brokers;      /* bootstrap.servers, e.g. "127.0.0.1:9092" */
    const char *group;        /* group.id (consumers only) */
    const char *client_id;    /* client.id, e.g. "hvs-aggregator" */
    const char *const *props; /* extra librdkafka properties: key, value, key, value, ..., NULL */
    const char *const *worker_props; /* a worker's own properties (same shape), applied before
                                        props so the operator's HVS_KAFKA_* still win */
    int fetch_wait_max_ms;           /* fetch.wait.max.ms; 0 = 100 */
} hvs_kafka_conf_t;

typedef struct hvs_consumer hvs_consumer_t;
typedef struct hvs_producer hvs_producer_t;

/*
 * Set librdkafka properties on `conf` (for code that builds its own rd_kafka_t: followers,
 * tools, tests): `kv` is name, value, name, value, ..., ending at a NULL name or value.
 * Returns 0, or HVS_ECONFIG with reason "kafka_config" and a message naming the first property
 * librdkafka refused and librdkafka's own words; the pairs before it stay set. The caller still
 * owns `conf` either way. Values are not repeated in the message (they may be secrets).
 */
int hvs_kafka_conf_set(rd_kafka_conf_t *conf, const char *const *kv, hvs_err_t *err);

/* ---- consumer ------------------------------------------------------------------------------ */

typedef struct hvs_consumer_hooks {
    /* After partitions were added to this member's assignment: load their state. */
    void (*on_assigned)(void *opaque, const rd_kafka_topic_partition_list_t *added);
    /* Before partitions leave this member: flush their state. */
    void (*on_revoked)(void *opaque, const rd_kafka_topic_partition_list_t *removed);
    void *opaque;
    /* Optional, before on_assigned and before the partitions are assigned: each element's
     * offset is the group's committed offset (RD_KAFKA_OFFSET_INVALID when none). The hook may
     * set an element's offset to start elsewhere (an offset, or RD_KAFKA_OFFSET_BEGINNING) —
     * e.g. rewind to rebuild lost state; the continuity check then starts from there. */
    void (*on_assigning)(void *opaque, rd_kafka_topic_partition_list_t *added);
} hvs_consumer_hooks_t;

/* Create and subscribe to `topics` (effective names). `hooks` may be NULL. */
int hvs_consumer_new(const hvs_kafka_conf_t *conf, const char *const *topics, size_t ntopics,
                     const hvs_consumer_hooks_t *hooks, hvs_consumer_t **out, hvs_err_t *err);

/*
 * Collect up to `max` messages into `msgs`: waits up to `timeout_ms` for the first, then takes
 * what is already fetched without further waiting. *n = count (0 on timeout; not an error).
 * Partition EOF and transient errors are logged and skipped; OFFSET_OUT_OF_RANGE and fatal
 * errors return HVS_EKAFKA (messages collected so far are still returned in msgs and *n).
 */
int hvs_consumer_poll_batch(hvs_consumer_t *c, rd_kafka_message_t **msgs, size_t max,
                            int timeout_ms, size_t *n, hvs_err_t *err);

/*
 * The batch's effects are durable: store offset+1 of the highest message per partition and
 * commit synchronously. Messages must be of partitions still assigned (true between polls).
 * A commit refused because the group is rebalancing (or this member was fenced) fails with
 * reason "commit_rebalance": not fatal, keep polling; the next owner replays those messages
 * (librdkafka 2.0.2 then also treats the assignment as lost: every partition is revoked and
 * assigned again, so expect replays rather than a minimal cooperative hand-off).
 */
int hvs_consumer_commit_batch(hvs_consumer_t *c, rd_kafka_message_t *const *msgs, size_t n,
                              hvs_err_t *err);
/* The same, waiting for the coordinator's answer only while left_ms() > 0 (asked every 100 ms;
 * NULL: as long as it takes): past it HVS_ETIMEOUT, reason "commit_timeout" (the commit may
 * still land later; if not, the batch is replayed). For a shutdown bound. */
int hvs_consumer_commit_batch_bounded(hvs_consumer_t *c, rd_kafka_message_t *const *msgs, size_t n,
                                      int64_t (*left_ms)(void), hvs_err_t *err);

/* Destroy messages from poll_batch (NULL entries skipped). */
void hvs_consumer_release(rd_kafka_message_t **msgs, size_t n);

/* Number of partitions currently assigned. */
int hvs_consumer_assignment_size(hvs_consumer_t *c);

/* Poll (serving rebalances) until at least one partition is assigned or timeout: 0 or
 * HVS_ETIMEOUT. A message that arrives meanwhile is kept and returned first by the next
 * poll_batch, so nothing is lost. For tests and start-up readiness. */
int hvs_consumer_wait_assignment(hvs_consumer_t *c, int timeout_ms, hvs_err_t *err);

/* Sum over assigned partitions of (high watermark - position), position being the committed
 * offset until a partition's first message arrives; from cached watermarks;
 * -1 when not known yet. */
int64_t hvs_consumer_lag(hvs_consumer_t *c);
/* The same for one assigned partition (its high watermark - the offset after the last message
 * poll returned, or the committed one before its first): 0 when nothing fetched waits; -1 when
 * it is not assigned or no fetch answered yet. */
int64_t hvs_consumer_partition_lag(hvs_consumer_t *c, const char *topic, int32_t partition);

/* Commit what was stored and leave the group (revocation hooks run). Idempotent.
 * A cooperative-sticky member that has not had its first assignment yet first finishes joining
 * (up to 10 s; what it is handed is neither processed nor committed): librdkafka < 2.3 aborts
 * when such a member is destroyed between JoinGroup and SyncGroup (bug #4312). */
int hvs_consumer_close(hvs_consumer_t *c, hvs_err_t *err);
/* The same when `timeout_ms` > 0 (the shutdown bound's remainder; the first-assignment wait is
 * cut to it, librdkafka's close itself is bounded by app.h's watchdog); at 0 the group is left
 * without closing (HVS_ETIMEOUT, reason "close_timeout": what was not committed is replayed by
 * the next owner) and hvs_consumer_destroy does not try to close again. */
int hvs_consumer_close_within(hvs_consumer_t *c, int64_t timeout_ms, hvs_err_t *err);
void hvs_consumer_destroy(hvs_consumer_t *c);
rd_kafka_t *hvs_consumer_handle(hvs_consumer_t *c);

/* ---- producer ------------------------------------------------------------------------------ */

int hvs_producer_new(const hvs_kafka_conf_t *conf, hvs_producer_t **out, hvs_err_t *err);

/*
 * Queue one message (key and value are copied). partition = RD_KAFKA_PARTITION_UA lets the
 * partitioner choose by key. On a full local queue it serves delivery reports and retries for up
 * to 10 s before failing with HVS_ETIMEOUT.
 */
int hvs_producer_send(hvs_producer_t *p, const char *topic, int32_t partition, const void *key,
                      size_t keylen, const void *value, size_t len, hvs_err_t *err);

/*
 * Look up `topics` (NULL-terminated; duplicates and NULL entries ignored) now, without waiting:
 * librdkafka holds a message for a topic it has no metadata for until its next query, which cost
 * a worker's first flush ~0.8 s at every start and rebalance. A handle created at start makes it
 * query at once (in the background, e.g. while the group joins). The handles live until the
 * producer is destroyed. HVS_ENOMEM / HVS_EKAFKA (a name librdkafka refuses) on failure.
 */
int hvs_producer_prepare_topics(hvs_producer_t *p, const char *const *topics, hvs_err_t *err);

/* Wait until every queued message is acknowledged or failed. Returns HVS_EKAFKA if any delivery
 * failed since the previous flush (and resets that count), HVS_ETIMEOUT if not done in time. */
int hvs_producer_flush(hvs_producer_t *p, int timeout_ms, hvs_err_t *err);

/* Serve delivery reports without blocking; call once per loop iteration. */
void hvs_producer_poll(hvs_producer_t *p);

/* Totals since creation. */
uint64_t hvs_producer_delivered(const hvs_producer_t *p);
uint64_t hvs_producer_failed(const hvs_producer_t *p);

/* Messages queued or in flight, not yet acknowledged (0 for NULL). */
int hvs_producer_unacknowledged(hvs_producer_t *p);
void hvs_producer_destroy(hvs_producer_t *p); /* flushes up to 10 s first */
/* Flushes up to `timeout_ms` (0 = not at all), purges what is left, destroys; returns how many
 * messages were left unacknowledged (logged too). NULL-safe (0). */
int hvs_producer_destroy_within(hvs_producer_t *p, int64_t timeout_ms);
rd_kafka_t *hvs_producer_handle(hvs_producer_t *p);

#endif
