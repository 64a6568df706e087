/*
 * hvs_fault.h - the fault suite's harness (issue 13): run a stage over a seeded stream
 * undisturbed and again under faults, reduce each run's outputs to the latest value per key and
 * compare them exactly.
 *
 * A world is one hvs-devbroker shared by every run (runs are sequential). A run is one consumer
 * group, its own redis-server, its own output and dead-letter topics ("<run>.<logical name>",
 * passed to the members as HVS_TOPIC_<NAME>), and members spawned with hvs_test_spawn. The
 * harness supervises the members as Kubernetes would: a member that exits without being asked
 * to is started again after restart_delay_ms, whatever its exit code (counted in `restarts`).
 * While the run consumes, the fault points fire in order, each when the group's progress
 * (committed offsets / messages in the input) reaches its `at`; a fault waits with
 * hvs_fault_wait, which keeps supervising. The run ends when every input message is committed,
 * every live member is ready with hvs_<stage>_consumer_lag_messages 0, the stage says it has
 * settled (stage->settled, if any), and the output and dead-letter topics have not grown for
 * quiet_ms.
 *
 * Inputs: a stage consumes one or more input topics in its one group (the features worker reads
 * aggregates.hourly and weather.hourly). Progress and "every input message committed" are summed
 * over all of them: committed offsets of the group on every input / messages in every input. A
 * run may read other topics than the logical ones (opts.inputs: the poison case's copies).
 *
 * A member that dies of a signal the harness did not send (SIGKILL is its kill -9; an abort on
 * heap corruption, SIGSEGV are not) is counted in `crashes`: hvs_fault_check_same fails on any,
 * even when the restart converged.
 *
 * Collection: every output topic read back (hvs_test_tail_json) and reduced with the stage's key
 * function to the latest value per key (highest rank, the later of equal ranks) made comparable
 * by the stage (volatile fields removed); the dead letters reduced by original topic (named by
 * its logical input name, whatever topic the run read it from), partition, offset and reason.
 * hvs_fault_compare prints the first differences with both values. Duplicates are allowed;
 * different values, missing or extra keys are differences.
 *
 * Ownership: a run owns its members, its redis-server and its reduced objects
 * (hvs_fault_run_free). Thread-safety: none. Fatal setup errors exit (HVS_REQUIRE).
 */
#ifndef HVS_FAULT_H
#define HVS_FAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs_test.h"

#define HVS_FAULT_MAX_MEMBERS 4
#define HVS_FAULT_MAX_TOPICS 8
#define HVS_FAULT_MAX_POINTS 8

typedef struct hvs_fault_run hvs_fault_run_t;

/* What a stage's test tells the harness about the stage. */
typedef struct hvs_fault_stage {
    const char *name;                          /* metric prefix hvs_<name>_ ("aggregator") */
    const char *exe;                           /* executable (HVS_TEST_AGGREGATOR) */
    const char *args;                          /* flags for every member (may be NULL) */
    const char *env;                           /* "NAME=value ..." for every member (may be NULL) */
    const char *inputs[HVS_FAULT_MAX_TOPICS];  /* logical input topics, NULL-terminated */
    const char *outputs[HVS_FAULT_MAX_TOPICS]; /* logical output topics, NULL-terminated */
    const char *dead_letters[HVS_FAULT_MAX_TOPICS]; /* logical dead-letter topics, NULL-term. */
    int output_partitions;                          /* of each output topic; 0 = 12 */
    /* The key of an output value (hvsctl tail's "value"); false = not an output to compare. */
    bool (*key)(const json_t *value, char *key, size_t len);
    /* Which of two values of a key is the later one: rank(value) higher wins (equal: the later
     * message). NULL: the later message. */
    long long (*rank)(const json_t *value);
    /* The value as compared (a new reference): volatile fields removed. NULL = unchanged. */
    json_t *(*comparable)(const json_t *value);
    /* Inputs written by the test for each run, in phases (NULL: the inputs are the world's
     * topics, produced once before the runs). With fill, a run reads its own
     * "<run>.<logical name>" topics (created with input_partitions; opts.inputs still name
     * others, e.g. the poison case's), which may start empty: fill(run, 0) writes the first
     * phase before the first member starts and returns how many messages the later phases will
     * add; fill(run, k) for k = 1 .. phases - 1 runs once the run has caught up on the phases
     * before it as it would for its end (all committed, lag 0, outputs quiet): input that only
     * makes sense causally after outputs were published (technicians' feedback on raised
     * alerts). Progress (the fault points' `at`) counts every phase's messages, so faults may
     * land in any. */
    int64_t (*fill)(hvs_fault_run_t *run, int phase);
    /* Whether the members' work between batches is done (NULL: nothing beyond being caught
     * up): asked once they are caught up, before the outputs' quiet time counts. A stage whose
     * outputs come from work after the last commit that may outlast the quiet time (the
     * trainer's round: minutes of training without an output) says when it has ended. */
    bool (*settled)(hvs_fault_run_t *run);
    int phases;           /* with fill: 2 or more; 0 = 2 */
    int input_partitions; /* of the per-run inputs; 0 = 12 */
} hvs_fault_stage_t;

typedef struct hvs_fault_world {
    const hvs_fault_stage_t *stage;
    hvs_test_proc_t broker;
    char dir[256]; /* logs of every run (kept when a check failed) */
} hvs_fault_world_t;

typedef void (*hvs_fault_fn)(hvs_fault_run_t *run, void *arg);

/* A fault: fn(run, arg) once the group's progress reaches `at` (0..1). */
typedef struct hvs_fault_point {
    double at;
    const char *name;
    hvs_fault_fn fn;
    void *arg;
} hvs_fault_point_t;

typedef struct hvs_fault_member {
    hvs_test_proc_t proc;
    int http_port;
    bool wanted;       /* supervised: restarted when it exits */
    int64_t exited_at; /* monotonic ms of an unwanted exit waiting for its restart; 0 = none */
    int last_status;   /* exit code or 128 + signal of its last exit */
} hvs_fault_member_t;

typedef struct hvs_fault_opts {
    /* effective topic of the stage's inputs[i] (HVS_TOPIC_<NAME> for the members); NULL = the
     * logical name */
    const char *inputs[HVS_FAULT_MAX_TOPICS];
    const char *env;  /* more environment for this run's members (may be NULL) */
    const char *args; /* more flags for this run's members (may be NULL) */
    hvs_fault_point_t points[HVS_FAULT_MAX_POINTS]; /* in order of `at` */
    size_t npoints;
    int restart_delay_ms; /* 0 = 2000 */
    int quiet_ms;         /* 0 = 2000 */
    int timeout_ms;       /* whole run; 0 = 180000 */
} hvs_fault_opts_t;

struct hvs_fault_run {
    hvs_fault_world_t *world;
    hvs_fault_opts_t opts;
    char name[48];                          /* also the topic prefix and the consumer group */
    char inputs[HVS_FAULT_MAX_TOPICS][128]; /* effective input topics, as the stage's inputs */
    int ninputs;
    char env[2048];        /* brokers and topic renames (members add their Redis and group) */
    char log[300];         /* the members' log */
    hvs_test_proc_t redis; /* this run's redis-server */
    hvs_fault_member_t members[HVS_FAULT_MAX_MEMBERS];
    int64_t total;      /* messages in all inputs (every phase with stage->fill) */
    int64_t written;    /* of those, written so far (stage->fill) */
    int phase;          /* phases written so far (stage->fill) */
    double progress;    /* committed / total (summed over the inputs), last seen */
    int restarts;       /* unwanted exits restarted */
    int exits_nonzero;  /* of those, with a non-zero status */
    int crashes;        /* of those, killed by a signal the harness did not send (abort, SIGSEGV) */
    size_t fired;       /* fault points done */
    bool finished;      /* caught up before the timeout */
    int64_t ms;         /* wall time of the run */
    json_t *latest;     /* key -> comparable latest value */
    json_t *history;    /* key -> every value read back, in order: [{"rank", "value"}] */
    json_t *dead;       /* "<logical input>/partition/offset/reason" -> comparable dead letter */
    size_t nout, ndead; /* messages read back (with duplicates) */
};

/* Start the world: hvs-devbroker (broker_args, e.g. "--partitions 12"), logs under /tmp. */
void hvs_fault_world_start(hvs_fault_world_t *w, const hvs_fault_stage_t *stage,
                           const char *broker_args);
/* Stop it; keep_logs leaves its directory (printed). */
void hvs_fault_world_stop(hvs_fault_world_t *w, bool keep_logs);
/* "topic create NAME N" through the control channel (fatal on failure). */
void hvs_fault_topic_create(hvs_fault_world_t *w, const char *topic, int partitions);

/* Fill points[0..n) `at` with sorted pseudo-random positions in [lo, hi) from `seed`. */
void hvs_fault_random_points(hvs_fault_point_t *points, size_t n, uint64_t seed, double lo,
                             double hi);

/* One run, start to collection. Returns a new run (hvs_fault_run_free); run->finished says
 * whether it caught up in time. */
hvs_fault_run_t *hvs_fault_run(hvs_fault_world_t *w, const char *name,
                               const hvs_fault_opts_t *opts);
void hvs_fault_run_free(hvs_fault_run_t *run);

/* Differences between two reduced objects (latest or dead): missing, extra and different keys;
 * the first print_first are printed under the label `what` (two objects: only their members
 * that differ, arrays element by element), then one line counting, over every key, the members
 * that differ. */
size_t hvs_fault_compare(const char *what, const json_t *ref, const json_t *got, int print_first);
/* For the first keys whose latest value differs: the ranks of every value of the key in both
 * runs, marked "=" where the value equals the reference's latest. */
void hvs_fault_print_history(const hvs_fault_run_t *ref, const hvs_fault_run_t *run,
                             int print_first);
/* Dead letters of a reduced `dead` object (keys "<logical input>/<partition>/<offset>/...") from
 * input whose error_code is reason (NULL: any reason). */
size_t hvs_fault_count_reason(const json_t *dead, const char *input, const char *reason);
/* Assert (HVS_CHECK) that run equals ref: latest values and dead letters, that it caught up and
 * that no member crashed. Prints a one-line summary. */
void hvs_fault_check_same(const hvs_fault_run_t *ref, const hvs_fault_run_t *run);

/* Records a stage's test generates in event order and publishes in phases: each with the time
 * the real pipeline would publish it; ties keep the generation order. */
typedef struct hvs_fault_rec {
    int64_t at; /* when the real pipeline would publish it (ms) */
    int seq;    /* generation order: ties */
    char key[32];
    unsigned char *buf; /* the encoded value (owned) */
    size_t len;
} hvs_fault_rec_t;

typedef struct hvs_fault_recs {
    hvs_fault_rec_t *r;
    size_t n, cap;
} hvs_fault_recs_t;

/* Append a copy of buf[0..len) (fatal when out of memory); the record is valid until the next
 * append. */
hvs_fault_rec_t *hvs_fault_recs_add(hvs_fault_recs_t *rs, int64_t at, const char *key,
                                    const void *buf, size_t len);
/* Sort by `at`, then generation order. */
void hvs_fault_recs_sort(hvs_fault_recs_t *rs);
/* Free every record's bytes and the array (rs emptied). */
void hvs_fault_recs_free(hvs_fault_recs_t *rs);

/* A record the poison case wrote for the stage to dead-letter (hvs_fault_check_poisons). */
typedef struct hvs_fault_poison {
    const char *what;   /* what is wrong with it, for messages; NULL once found */
    const char *reason; /* the error_code its dead letter must carry */
    int input;          /* the stage's input (index into stage->inputs) */
    int32_t partition;  /* where hvs_fault_produce put it */
    int64_t offset;
    bool before; /* written before the stream's records of its partition (it moved them) */
} hvs_fault_poison_t;

/* The poison case's verdict (HVS_CHECK): the run caught up without a restart, its latest
 * values equal ref's, every poison p[0..n) was dead-lettered with its reason, and every other
 * dead letter - its original_offset moved back by the `before` poisons of its input and
 * partition - equals ref's. */
void hvs_fault_check_poisons(const hvs_fault_run_t *ref, const hvs_fault_run_t *run,
                             hvs_fault_poison_t *p, size_t n);

/* A rank for stages whose outputs carry an integer "revision" (absent = 0): the highest wins. */
long long hvs_fault_rank_revision(const json_t *value);

/* ---- cases every stage runs the same way (each checks the run against ref) ---------------- */

/* The broker refuses 200 produce requests at a seeded point while `env` (e.g.
 * "HVS_AGG_FLUSH_TIMEOUT=3s") lowers the stage's flush timeout: a flush must time out and the
 * member be restarted, and the run still equal ref. */
void hvs_fault_case_flush_timeout(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                  const char *env);
/* A second member joins at 20 % and leaves at 60 %: partitions must have been revoked and the
 * run equal ref. Returns the run for the stage's own checks (hvs_fault_run_free). */
hvs_fault_run_t *hvs_fault_case_second_member(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
/* The same inputs again, undisturbed (another interleaving of the inputs); no restart. */
hvs_fault_run_t *hvs_fault_case_again(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
/* The same with at most 2 KB per partition per fetch: the inputs interleave finely. */
hvs_fault_run_t *hvs_fault_case_small_fetches(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
/* kill -9 at three points drawn from `seed` (run "kill9-s<seed>"); at least three restarts. */
hvs_fault_run_t *hvs_fault_case_kill9(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                      uint64_t seed);
/* One fault `fn(arg)` named `what` at a point drawn from `seed` (between 20 and 70 %). */
hvs_fault_run_t *hvs_fault_case_one(hvs_fault_world_t *w, const hvs_fault_run_t *ref,
                                    const char *name, uint64_t seed, const char *what,
                                    hvs_fault_fn fn, void *arg);
/* Redis restarted empty on the same port, or flushed: state_lost logged, the member restarted
 * and the state rebuilt by a quiet replay. */
hvs_fault_run_t *hvs_fault_case_redis_restart(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
hvs_fault_run_t *hvs_fault_case_redis_flush(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
/* Redis flushed, then the member killed -9 while it rebuilds (some state written, no epoch):
 * the next member rebuilds again over that partial state, and the run must still equal ref. */
hvs_fault_run_t *hvs_fault_case_rebuild_kill9(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
/* Redis, the worker stopped for 10 s; the only broker down for 15 s (below the flush timeout). */
hvs_fault_run_t *hvs_fault_case_redis_pause(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
hvs_fault_run_t *hvs_fault_case_worker_pause(hvs_fault_world_t *w, const hvs_fault_run_t *ref);
hvs_fault_run_t *hvs_fault_case_broker_down(hvs_fault_world_t *w, const hvs_fault_run_t *ref);

/* ---- for fault functions ------------------------------------------------------------------ */

/* Wait ms while supervising the members (restarts happen meanwhile). */
void hvs_fault_wait(hvs_fault_run_t *run, int ms);
/* Start member i (0 = the first; a second member for a rebalance) and supervise it. */
void hvs_fault_member_start(hvs_fault_run_t *run, int i);
/* Stop member i with SIGTERM (it leaves the group) and stop supervising it. */
void hvs_fault_member_stop(hvs_fault_run_t *run, int i);

/* Ready-made faults. `arg` is what each names (NULL = member 0 / the default). */
void hvs_fault_kill9(hvs_fault_run_t *run, void *member);      /* SIGKILL; restarted */
void hvs_fault_redis_restart(hvs_fault_run_t *run, void *arg); /* same port, empty */
void hvs_fault_redis_flush(hvs_fault_run_t *run, void *arg);   /* FLUSHALL */
void hvs_fault_redis_pause(hvs_fault_run_t *run, void *ms);    /* SIGSTOP, (intptr_t)ms, CONT */
void hvs_fault_worker_pause(hvs_fault_run_t *run, void *ms);   /* member 0 SIGSTOP ms, CONT */
void hvs_fault_broker_down(hvs_fault_run_t *run, void *ms);    /* every broker down ms, up */
/* The broker refuses the next (intptr_t)count produce requests (NOT_ENOUGH_REPLICAS, which
 * producers retry): a batch's flush waits on them, as it would on a broker down. */
void hvs_fault_broker_refuses_writes(hvs_fault_run_t *run, void *count);
void hvs_fault_member_join(hvs_fault_run_t *run, void *member);  /* start member (intptr_t) */
void hvs_fault_member_leave(hvs_fault_run_t *run, void *member); /* SIGTERM member (intptr_t) */

/* Lines of the run's member log containing `text`. */
size_t hvs_fault_log_count(const hvs_fault_run_t *run, const char *text);

/* ---- producing raw records (the poison set) ------------------------------------------------ */

typedef struct hvs_fault_producer hvs_fault_producer_t;
hvs_fault_producer_t *hvs_fault_producer_new(hvs_fault_world_t *w);
/* Produce one record (key NULL = no key; partition -1 = by key, murmur2_random as the
 * pipeline's producers) and wait for it: its partition and offset. Fatal on failure. */
void hvs_fault_produce(hvs_fault_producer_t *p, const char *topic, const void *key, size_t keylen,
                       const void *value, size_t len, int32_t *partition, int64_t *offset);
void hvs_fault_producer_free(hvs_fault_producer_t *p);

#endif
