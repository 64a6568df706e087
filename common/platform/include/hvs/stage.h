/*
 * stage.h - the one consume loop every stream stage runs (docs/design.md §5).
 *
 * A stage is a registration struct of callbacks (hvs_stage_def_t, static in the worker: what to
 * do with a record, at the end of a batch, when a partition comes or goes) plus its settings
 * (hvs_stage_conf_t: input topics, batch size, timeouts). The runner owns everything else:
 *
 *   poll a batch                         phase "poll"
 *   begin_batch, handle each message     phase "process" (a bad record -> its dead-letter topic)
 *   end_batch (close windows, queue outputs)
 *   flush the producer                   phase "publish_wait" (outputs and dead letters acked)
 *   write_state                          phase "state_write" (Redis, only for acked outputs)
 *   commit the batch's offsets           phase "commit"
 *   after_batch (work between batches)   phase "between_batches" (only when defined)
 *
 * so a crash anywhere replays the uncommitted messages onto state that never claims an output
 * the broker does not have. Rebalances are served inside the poll (cooperative-sticky, kafka.h;
 * a stage of several inputs uses the range assignor, which keeps partition P of every input on
 * one member):
 * `assigned` runs once per partition number when the first of its topic-partitions arrives
 * (load its state), `revoked` when it leaves (drop it; its state was written before the last
 * commit). Stall detection: when messages wait in the assigned partitions (consumer lag > 0)
 * but no poll returned any for the stall timeout, run returns HVS_EKAFKA "stalled" (the process
 * exits and is restarted: a consumer that stopped fetching must not look alive). SIGTERM
 * (hvs_app_running() false) ends the loop after the current batch is committed; the consumer
 * leaves the group and the producer is flushed at hvs_stage_destroy.
 *
 * Exactly-once state (with conf.redis; docs/design.md §5, docs/internals/stage.md): the runner
 * keeps, per input partition, the offsets the state has applied up to and an epoch marker in
 * Redis (hvs:stage:<name>:<P>), written in the same MULTI/EXEC as the batch's state
 * (hvs_stage_state_batch). On assignment every input starts where the state says, so a
 * replayed message is never applied twice nor judged against state from its future. A partition
 * whose state is gone (no epoch, though offsets were committed) is rebuilt: its inputs are
 * rewound by conf.rebuild_ms and replayed quietly (hvs_stage_replaying) up to where processing
 * had got. A rebuild keeps that target beside its progress in the same key (r:<topic> for every
 * input, -1 for one with nothing to replay; deleted with the epoch), because its own commits are
 * not it: a rebuild killed part way is rebuilt again quietly up to the first one's targets alone,
 * not to where the killed one had committed or read (past a target on an input it read live
 * while another replayed: what that made ready was never published), loudly past them. Its partial
 * state has no epoch either: a stage's `assigned` should start a partition empty when
 * hvs_stage_rebuilding says so, and with conf.state_ns the runner deletes that state from Redis
 * before the rebuild starts. Before every state write the runner checks that no partition's
 * state vanished (a restarted or flushed Redis): if one did, run returns HVS_EREDIS
 * "state_lost" without writing, and the next start rebuilds.
 *
 * Input alignment (opt-in, for stages of several inputs joined by event time, e.g. features:
 * aggregates + weather): `handle` may return HVS_STAGE_HOLD for a message that runs too far ahead
 * of the stage's other inputs (its state would overwrite what the others still need, or pile up
 * what waits for them). The runner then hands the message back: it is not applied (its offset is
 * neither committed nor in the state's offsets), it and every later message of the same input
 * partition are kept in order, that input partition is paused (rd_kafka_pause_partitions: no
 * more fetching), and at the start of every following batch the kept messages are offered again
 * first; once all of them went through, the partition is resumed right after them. The stage
 * decides with hvs_stage_input_lag whether the input it waits for still has messages to come;
 * to stay live it must hold only while that lag is not 0, and to stay free of deadlock it must
 * never hold two inputs for each other (hold X only when X's event time is ahead of Y's by more
 * than a lead >= 0, counting the time of Y's held message as Y's). Whether a message is held
 * is then a function of the data and the lags, and what is applied is the same in every run
 * whatever the relative speed of the inputs. A revoked partition drops its held messages (its
 * next owner reads them from the committed offset). Stages that never return HVS_STAGE_HOLD
 * are unaffected.
 *
 * Metrics, for every stage, prefixed hvs_<name>_: phase_seconds_total{phase}, batch_seconds
 * (poll to commit of a batch with messages), consumer_lag_messages (-1: unknown),
 * dead_letters_total{reason}, state_losses_total (partitions found without their state). /readyz is ready when partitions are assigned and the stage's own
 * `ready` (if any) agrees.
 *
 * Callbacks' return codes: 0 on success; from `handle`, HVS_STAGE_HOLD (above), or HVS_EINVAL with `why` filled marks the
 * record as bad input (the runner logs it, counts it and sends it to the dead-letter topic, and
 * the stage goes on; the log lines are rate-limited: at most HVS_STAGE_DEAD_LETTER_LOGS per
 * reason per minute, then one line "... and K more dead letters (<reason>) in the last minute",
 * so a poison storm cannot flood the logs; the metric and the dead letters count every one); any other negative code is fatal: hvs_stage_run returns it with the err
 * the callback filled (the worker exits non-zero and is restarted, replaying from the last
 * commit).
 *
 * Ownership: hvs_stage_new borrows app, def, conf's strings and the serde (all must outlive the
 * stage) and creates the producer and the dead-letter sender; the consumer is created by
 * hvs_stage_run and closed when it returns. hvs_stage_destroy (NULL-safe) frees all three;
 * objects of the worker that borrow the producer (hvs_stage_producer) must be freed first.
 * Thread-safety: one thread runs the stage; the callbacks run on it. The readiness probe may
 * call the stage's `ready` from the HTTP thread.
 * Errors: 0 or a negative hvs_rc_t with err filled.
 */
#ifndef HVS_STAGE_H
#define HVS_STAGE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/app.h"
#include "hvs/config.h"
#include "hvs/err.h"
#include "hvs/kafka.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h" /* HVS_MAX_PARTITIONS */

typedef struct hvs_stage hvs_stage_t;

/* Dead-letter log lines per reason per minute (the rest are summed up, see above). */
#define HVS_STAGE_DEAD_LETTER_LOGS 10

/* `handle`'s answer for a message not to apply yet (input alignment, above). */
#define HVS_STAGE_HOLD 1

/* What after_batch learns of the batch just committed. */
typedef struct hvs_stage_batch {
    size_t n;       /* messages handled in it (0: an idle poll, or all held) */
    int64_t lag;    /* consumer lag after it, -1 when not known yet */
    bool caught_up; /* n == 0 and lag == 0: nothing waits in the assigned partitions */
} hvs_stage_batch_t;

/* A stage's registration: its name and callbacks. Only `handle` is required. */
typedef struct hvs_stage_def {
    const char *name; /* "aggregator": log component, metric prefix, dead letters' worker */
    /* Before the batch's messages (also of an idle poll): e.g. follow topology. */
    int (*begin_batch)(void *opaque, hvs_err_t *err);
    /* One message of an input topic (see the return codes above). */
    int (*handle)(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why);
    /* After the batch's messages (also of an idle poll): close what the watermarks allow and
     * queue the outputs on the producer; may prepare (encode) the state write. */
    int (*end_batch)(void *opaque, hvs_err_t *err);
    /* The batch's outputs are acknowledged: make its state durable. The offsets are committed
     * only after this returned 0. */
    int (*write_state)(void *opaque, hvs_err_t *err);
    /* After the commit: work that belongs between batches (a training run). */
    int (*after_batch)(void *opaque, const hvs_stage_batch_t *b, hvs_err_t *err);
    /* Before partitions are assigned: each element's offset is the group's committed offset
     * (RD_KAFKA_OFFSET_INVALID when none) and may be changed to start elsewhere (kafka.h). */
    void (*assigning)(void *opaque, rd_kafka_topic_partition_list_t *added);
    /* Partition number `p` joined this member (once, whatever the number of input topics):
     * load its state. A failure is fatal. */
    int (*assigned)(void *opaque, int32_t p, hvs_err_t *err);
    /* Partition number `p` is leaving: drop its state from memory. */
    void (*revoked)(void *opaque, int32_t p);
    /* Readiness beyond "partitions assigned" (may be NULL): 1 ready, 0 not (why filled). */
    int (*ready)(void *opaque, char *why, size_t whylen);
    /* The loop has ended (before the consumer closes): log the stage's totals. */
    void (*stopping)(void *opaque);
} hvs_stage_def_t;

/*
 * The runner's settings, the same rows for every stage under the stage's prefix ("HVS_AGG_"):
 *   <prefix>BATCH          5000  most messages per batch (one flush, one state write, one commit)
 *   <prefix>FLUSH_TIMEOUT  30s   longest wait for the broker to acknowledge a batch's outputs
 *   <prefix>STALL_TIMEOUT  60s   messages wait but no poll returns any for this long: exit
 * A worker adds hvs_stage_settings_section() to its app sections (so they are flags, in --help
 * and in the effective configuration) and hands the struct to the runner in hvs_stage_conf_t.
 */
typedef struct hvs_stage_settings {
    int64_t batch, flush_timeout_ms, stall_ms; /* stall_ms 0: no stall detection */
    char names[3][64];
    hvs_cfg_entry_t entries[3];
    hvs_cfg_section_t section;
} hvs_stage_settings_t;

/* Fill s's table for `prefix` and return its section (pointing into s, which must outlive the
 * configuration: usually a static). */
const hvs_cfg_section_t *hvs_stage_settings_section(hvs_stage_settings_t *s, const char *prefix);

/* What a stage consumes and how. */
typedef struct hvs_stage_conf {
    const char *const *inputs; /* effective topic names */
    size_t ninputs;
    const hvs_stage_settings_t *settings; /* batch, flush timeout, stall timeout (borrowed) */
    int poll_timeout_ms;                  /* wait for a batch's first message; 0 = 200 */
    const char *const *consumer_props;    /* the stage's own librdkafka properties (kafka.h) */
    const char *const *producer_props;
    /* Topics the stage produces to (NULL-terminated, borrowed; NULL = none named): looked up at
     * start, with the inputs' dead-letter topics, so the first flush does not wait for their
     * metadata. */
    const char *const *outputs;
    /* Exactly-once state (above): the stage's Redis (borrowed), NULL for a stage without state,
     * and how far back (message time) its inputs are replayed to rebuild a lost partition
     * (0 = from the beginning of each input). */
    hvs_redis_t *redis;
    int64_t rebuild_ms;
    /* The stage's key namespace ("sc"): its buildings of partition P listed in SET
     * hvs:<ns>:part:<P>, their keys hvs:{B}:<ns>:<kind>... A partition that is to be rebuilt
     * has those keys and the list deleted first (a killed rebuild's partial state), but the
     * kinds in state_keep (NULL-terminated: served outputs such as "latest"). NULL: nothing
     * deleted (a stage whose partition list is no SET, or whose building keys hold more than
     * rebuildable state, e.g. the alerter's alert book). */
    const char *state_ns;
    const char *const *state_keep;
} hvs_stage_conf_t;

/* Create the stage's producer and dead-letter sender. `serde` is borrowed. */
int hvs_stage_new(hvs_app_t *app, const hvs_stage_def_t *def, const hvs_stage_conf_t *conf,
                  hvs_serde_t *serde, void *opaque, hvs_stage_t **out, hvs_err_t *err);

/* Subscribe and run the loop until SIGTERM or a fatal error; leaves the group before it
 * returns. 0 after a clean stop, else the fatal error. */
int hvs_stage_run(hvs_stage_t *st, hvs_err_t *err);

/* Free the consumer, the dead-letter sender and the producer (flushed first). NULL-safe. */
void hvs_stage_destroy(hvs_stage_t *st);

/* The producer outputs go through (borrowed; valid until hvs_stage_destroy). */
hvs_producer_t *hvs_stage_producer(hvs_stage_t *st);
/* The consumer (NULL outside hvs_stage_run). */
hvs_consumer_t *hvs_stage_consumer(hvs_stage_t *st);
/* Wall-clock time taken when the current batch was polled: one "now" for the whole batch. */
hvs_ms_t hvs_stage_now(const hvs_stage_t *st);
/* The partition numbers assigned now (borrowed array, valid until the next poll). */
const int32_t *hvs_stage_partitions(const hvs_stage_t *st, size_t *n);

/* The turn's state writes (NULL without conf.redis): end_batch and write_state append the
 * commands that make the batch's state durable; the runner executes them, with the offsets
 * they cover, as one transaction once the outputs are acknowledged. Reset at each turn. */
hvs_redis_batch_t *hvs_stage_state_batch(hvs_stage_t *st);
/* Whether the message being handled is replayed quietly to rebuild lost state: update the state,
 * publish nothing (the runner dead-letters nothing either: it was judged when it first came). */
bool hvs_stage_replaying(const hvs_stage_t *st);
/* Messages of the batch being handled, after the current one, from `topic` [partition]: with
 * hvs_consumer_partition_lag (what was not polled yet), what of a partition waits to be handled.
 * 0 outside handle. */
size_t hvs_stage_unhandled(const hvs_stage_t *st, const char *topic, int32_t partition);
/* Whether partition p is being rebuilt (its inputs replayed quietly): what end_batch closes for
 * it was published before the loss, so it publishes nothing for p either. */
bool hvs_stage_rebuilding(const hvs_stage_t *st, int32_t p);
/* Messages of input `topic` [partition] not handled yet: later in the batch being handled, held
 * (HVS_STAGE_HOLD) or not polled yet; -1 when unknown (no fetch answered yet, not assigned). */
int64_t hvs_stage_input_lag(const hvs_stage_t *st, const char *topic, int32_t partition);

/* Send `m` to its topic's dead-letter topic with `why` (logged rate-limited, counted by reason),
 * as the runner does for a record `handle` refused. For stages that find a record bad later. */
int hvs_stage_dead_letter(hvs_stage_t *st, const rd_kafka_message_t *m, const hvs_err_t *why,
                          hvs_err_t *err);
/* The same for a record the stage kept past its batch (its topic, partition, offset, key and
 * value bytes), found bad later. */
int hvs_stage_dead_letter_bytes(hvs_stage_t *st, const char *topic, int32_t partition,
                                int64_t offset, const void *key, size_t keylen, const void *value,
                                size_t len, const hvs_err_t *why, hvs_err_t *err);

#endif
