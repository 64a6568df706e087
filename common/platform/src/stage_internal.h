/*
 * stage_internal.h - what stage.c (the loop) and stage_state.c (exactly-once state: applied
 * offsets and epoch markers in Redis) share. Not a public header.
 */
#ifndef HVS_STAGE_INTERNAL_H
#define HVS_STAGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hvs/dlq.h"
#include "hvs/log.h"
#include "hvs/metrics.h"
#include "hvs/redis.h"
#include "hvs/stage.h"

#define HVS_STAGE_MAX_INPUTS 8

/* Where a batch's time goes: the profile an operator needs to tell a slow Redis from a slow
 * broker from a busy worker. */
enum { PH_POLL, PH_PROCESS, PH_PUBLISH_WAIT, PH_STATE_WRITE, PH_COMMIT, PH_BETWEEN, PHASES };

/* A partition's exactly-once bookkeeping (per input topic index t). */
typedef struct stage_part {
    int64_t next[HVS_STAGE_MAX_INPUTS];         /* offset after the last message applied; -1 */
    int64_t replay_until[HVS_STAGE_MAX_INPUTS]; /* below: replayed quietly (a rebuild) */
    bool touched; /* has messages in the current batch: its offsets are written */
    bool replay;  /* rebuilding: the epoch is written once every input caught up */
    bool epoch;   /* Redis holds its epoch marker (checked every turn) */
    bool written; /* its key was written since assignment (offsets, maybe no epoch) */
} stage_part_t;

typedef struct stage_held {
    rd_kafka_message_t **m;
    size_t n, cap;
    bool paused;
    bool hold_now; /* handed back in the current batch: its later messages follow it */
    int64_t taken; /* offset after the last message taken into a batch; -1 none */
} stage_held_t;

struct hvs_stage {
    hvs_app_t *app;
    const hvs_stage_def_t *def;
    hvs_stage_conf_t conf;
    size_t batch;
    int64_t flush_timeout_ms, stall_ms;
    /* the batch that failed (not committed: replayed by the next owner), for the shutdown log */
    size_t uncommitted;
    char uncommitted_at[256]; /* "readings.raw[3]@120 ..." the first offsets not committed */
    void *opaque;
    hvs_serde_t *serde;
    hvs_producer_t *prod;
    hvs_dlq_t *dlq;
    hvs_consumer_t *cons;
    hvs_ms_t now;
    bool assigned[HVS_MAX_PARTITIONS];
    int32_t parts[HVS_MAX_PARTITIONS]; /* the assigned partition numbers, unordered */
    size_t nparts;
    int fatal; /* a rebalance hook failed: stop after this poll */
    hvs_err_t fatal_err;
    char metric_prefix[64];
    hvs_metric_t *m_phase[PHASES], *m_batch, *m_lag, *m_losses;
    hvs_log_limit_t dl_log; /* dead-letter lines: a poison storm must not flood the logs */
    /* exactly-once state (stage_state.c): only with conf.redis */
    hvs_redis_batch_t *rb;      /* the turn's state writes, executed atomically */
    hvs_redis_batch_t *scratch; /* reads of the runner's own keys */
    stage_part_t pstate[HVS_MAX_PARTITIONS];
    int32_t touched[HVS_MAX_PARTITIONS]; /* partitions with messages in the current batch */
    size_t ntouched;
    bool replaying;                /* the message being handled is replayed quietly */
    rd_kafka_message_t **handling; /* the batch being handled (hvs_stage_unhandled) */
    size_t nbatch, at;             /* its messages, and the one being handled */
    /* per input and partition, the batch's messages after the one being handled: O(1)
     * answers for hvs_stage_unhandled, which stages ask per message */
    uint32_t unhandled[HVS_STAGE_MAX_INPUTS][HVS_MAX_PARTITIONS];
    /* offsets the state has applied beyond the group's commit (a commit refused in a rebalance):
     * committed at the next turn, so the group's lag agrees with the state */
    rd_kafka_topic_partition_list_t *to_commit;
    /* Input alignment (stage.h, HVS_STAGE_HOLD): per input and partition, the messages handed
     * back (in offset order), whether the partition is paused for them, and the offset after
     * the last message taken into a batch (messages below it are stale duplicates). */
    stage_held_t held[HVS_STAGE_MAX_INPUTS][HVS_MAX_PARTITIONS];
    size_t nheld; /* messages held in all */
};

/* Runner side of exactly-once state; each is a no-op without conf.redis. */
int hvs_stage_state_init(hvs_stage_t *st, hvs_err_t *err);
void hvs_stage_state_fini(hvs_stage_t *st);
/* Before partitions are assigned: start each where the state says, or rebuild a lost one. */
int hvs_stage_state_assigning(hvs_stage_t *st, rd_kafka_topic_partition_list_t *added,
                              hvs_err_t *err);
void hvs_stage_state_revoked(hvs_stage_t *st, int32_t p);
/* Commit what hvs_stage_state_assigning found the group behind on (no-op when nothing). */
void hvs_stage_state_commit_behind(hvs_stage_t *st);
/* A message of the batch: its offset is recorded; whether it is replayed quietly is returned. */
bool hvs_stage_state_note(hvs_stage_t *st, const rd_kafka_message_t *m);
/* A noted message was handed back (HVS_STAGE_HOLD): the state has applied only what precedes it. */
void hvs_stage_state_unnote(hvs_stage_t *st, const rd_kafka_message_t *m);
/* After the outputs are acknowledged and the stage appended its writes: check no partition's
 * state was lost, then write state + offsets (+ epochs) in one transaction. */
int hvs_stage_state_commit(hvs_stage_t *st, hvs_err_t *err);

#endif
