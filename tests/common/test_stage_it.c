/*
 * The stage runner (hvs/stage.h) over a real hvs-devbroker: a toy stage consumes readings.raw
 * and weather.hourly and copies every good record to aggregates.15m. Each case checks one
 * promise of the runner against what the broker really holds afterwards:
 *   - a record `handle` refuses is on readings.raw.dlq with its reason and original bytes, it is
 *     counted by reason, and the stage goes on with the next records;
 *   - write_state runs only when every output (and dead letter) of the batch is acknowledged;
 *   - offsets are committed only after write_state succeeded: a failed state write ends the
 *     run and the next member of the group is handed the same records again;
 *   - with two input topics, `assigned` runs once per partition number;
 *   - the phase, lag, batch and dead-letter metrics every stage exports are there, with the
 *     stage's name;
 *   - lost state is rebuilt quietly up to where processing had got, and after a rebuild that
 *     was killed, up to that rebuild's targets (loud past them);
 *   - SIGTERM (hvs_app_request_stop) ends the run after the batch is committed: a new member of
 *     the group is handed nothing;
 *   - a stop whose last commit the group refuses because it is rebalancing (REBALANCE_IN_PROGRESS,
 *     injected on the broker) is still a complete shutdown (run as its own process,
 *     test_stage_handover_it: the stop flag is one per process).
 * The toy stage ends a run by returning TEST_DONE from after_batch once it has seen what it
 * expects (the stop flag of hvs_app is one per process: only the last case may use it).
 */
#include <librdkafka/rdkafka.h>

#include "hvs/app.h"
#include "hvs/dlq.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/metrics.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define PARTITIONS 3 /* of the pipeline's topics; the toy's own topics get the broker's default */
#define MAX_PARTS 64
#define TEST_DONE HVS_ESTATE

static hvs_test_proc_t broker;
static bool broker_up;

static void stop_broker(void) { hvs_test_proc_stop(&broker); }

/* The broker, started on first use and shared by the cases (each uses topics of its own run). */
static void need_broker(void) {
    if (broker_up)
        return;
    char args[64];
    snprintf(args, sizeof args, "--partitions %d", PARTITIONS);
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, args) == 0, "devbroker");
    setenv("HVS_KAFKA_BROKERS", broker.addr, 1);
    hvs_test_cleanup(stop_broker);
    broker_up = true;
}

/* The toy stage's state: what the callbacks saw, and how a case wants them to behave. */
typedef struct toy {
    hvs_stage_t *st;
    const char *out_topic;
    size_t handled, bad, sent, expect;
    size_t assigned_calls, assigned_count[MAX_PARTS];
    int fail_state_writes; /* write_state fails this many times (fatal) */
    size_t state_writes, state_writes_unacked;
    bool stop_by_signal; /* end with hvs_app_request_stop instead of TEST_DONE */
    bool stop_in_handle; /* ... requested while handling the last expected record */
    /* exactly-once state: with a Redis, every applied record adds 1 to HINCRBY toy:count
     * (not idempotent on purpose: a record applied twice shows) */
    hvs_redis_t *redis;
    size_t applied_unwritten, replayed;
    bool flush_redis_after_first_batch; /* the Redis loses everything while the stage runs */
    const char *state_ns;               /* conf.state_ns */
    const char *const *state_keep;      /* conf.state_keep */
    int stop_after_batches; /* > 0: end the run after that many batches, caught up or not */
    int batches;
} toy_t;

static int toy_handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    toy_t *t = opaque;
    t->handled++;
    t->applied_unwritten++;
    if (t->stop_in_handle && t->handled == t->expect)
        hvs_app_request_stop(); /* the batch's commit then runs within the shutdown bound */
    if (hvs_stage_replaying(t->st)) {
        t->replayed++; /* rebuilding: the state takes it, nothing is published */
        return 0;
    }
    if (m->len >= 3 && memcmp(m->payload, "bad", 3) == 0) {
        t->bad++;
        return hvs_err_set(why, HVS_EINVAL, "toy_bad_record", "record %lld says it is bad",
                           (long long)m->offset);
    }
    t->sent++;
    return hvs_producer_send(hvs_stage_producer(t->st), t->out_topic, RD_KAFKA_PARTITION_UA, m->key,
                             m->key_len, m->payload, m->len, why);
}

static int toy_write_state(void *opaque, hvs_err_t *err) {
    toy_t *t = opaque;
    t->state_writes++;
    /* every output and every dead letter queued so far must be acknowledged by now */
    if (hvs_producer_delivered(hvs_stage_producer(t->st)) != t->sent + t->bad)
        t->state_writes_unacked++;
    if (t->handled > 0 && t->fail_state_writes > 0) {
        t->fail_state_writes--;
        return hvs_err_set(err, HVS_EREDIS, "toy_state_lost", "state write refused (test)");
    }
    if (t->redis && t->applied_unwritten) {
        char n[32];
        snprintf(n, sizeof n, "%zu", t->applied_unwritten);
        const char *argv[] = {"HINCRBY", "toy:count", "applied", n};
        if (hvs_redis_batch_add(hvs_stage_state_batch(t->st), 4, argv, NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "toy state");
        t->applied_unwritten = 0;
    }
    return 0;
}

static int toy_assigned(void *opaque, int32_t p, hvs_err_t *err) {
    toy_t *t = opaque;
    t->assigned_calls++;
    if (p >= 0 && p < MAX_PARTS)
        t->assigned_count[p]++;
    return 0;
}

static int toy_after_batch(void *opaque, const hvs_stage_batch_t *b, hvs_err_t *err) {
    toy_t *t = opaque;
    if (t->flush_redis_after_first_batch && b->n > 0) {
        t->flush_redis_after_first_batch = false;
        redisReply *rep = NULL;
        HVS_REQUIRE(hvs_redis_command(t->redis, &rep, err, "FLUSHALL") == 0, "flushall");
        freeReplyObject(rep);
    }
    if (t->stop_after_batches > 0 && b->n > 0 && ++t->batches >= t->stop_after_batches)
        return hvs_err_set(err, TEST_DONE, "test_done", "stopped after %d batches", t->batches);
    if (t->handled < t->expect || !b->caught_up)
        return 0;
    if (t->stop_by_signal) {
        hvs_app_request_stop();
        return 0;
    }
    return hvs_err_set(err, TEST_DONE, "test_done", "saw all %zu records", t->expect);
}

static const hvs_stage_def_t toy_stage = {
    .name = "stagetest",
    .handle = toy_handle,
    .write_state = toy_write_state,
    .assigned = toy_assigned,
    .after_batch = toy_after_batch,
};

/* Produce `n` records keyed b0..b9 to `topic`; those whose index is in `bad` (a NULL-terminated
 * list of indexes + 1, or NULL) carry "bad". */
static void produce(hvs_app_t *app, const char *topic, size_t n, const int *bad) {
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_producer_t *p;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer: %s", err.msg);
    for (size_t i = 0; i < n; i++) {
        char key[16], val[32];
        snprintf(key, sizeof key, "b%zu", i % 10);
        bool is_bad = false;
        for (const int *b = bad; b && *b; b++)
            is_bad |= (size_t)(*b - 1) == i;
        snprintf(val, sizeof val, "%s-%zu", is_bad ? "bad" : "good", i);
        HVS_REQUIRE(hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), val,
                                      strlen(val), &err) == 0,
                    "send: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    hvs_producer_destroy(p);
}

/* One run of the toy stage over `inputs` in consumer group `group`; returns run's code. */
static int run_toy(hvs_app_t *app, toy_t *t, const char *const *inputs, size_t ninputs,
                   hvs_err_t *err) {
    hvs_serde_t *serde = NULL;
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, err) == 0, "serde: %s", err->msg);
    static const hvs_stage_settings_t ss = {.batch = 7, .flush_timeout_ms = 10000};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .ninputs = ninputs,
                           .settings = &ss,
                           .poll_timeout_ms = 100,
                           .redis = t->redis,
                           .state_ns = t->state_ns,
                           .state_keep = t->state_keep};
    HVS_REQUIRE(hvs_stage_new(app, &toy_stage, &sc, serde, t, &t->st, err) == 0, "stage: %s",
                err->msg);
    int rc = hvs_stage_run(t->st, err);
    hvs_stage_destroy(t->st);
    t->st = NULL;
    hvs_serde_destroy(serde);
    return rc;
}

/* An app in consumer group `group` (HVS_KAFKA_GROUP), no HTTP. */
static void app_start(hvs_app_t *app, const char *group) {
    need_broker();
    setenv("HVS_KAFKA_GROUP", group, 1);
    hvs_app_spec_t spec = {.worker = "stagetest",
                           .no_watchdog = true,
                           .summary = "test",
                           .no_http = true,
                           .quiet = true,
                           .log_stderr = true};
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_app_init(app, &spec, 0, NULL, &err) == 0, "app: %s", err.msg);
    hvs_log_set_level(HVS_LOG_WARN);
}

/* Read a whole topic back; returns the count and collects DeadLetter reasons of the bad ones. */
typedef struct readback {
    size_t n;
    size_t dead;               /* values that decode as DeadLetter with our reason */
    size_t dead_with_original; /* ... and carry the original "bad-<i>" bytes */
} readback_t;

static void on_message(void *opaque, const rd_kafka_message_t *m) {
    readback_t *r = opaque;
    r->n++;
    const char *v = m->payload;
    /* the DeadLetter record is Avro: the reason and the original bytes appear verbatim */
    if (v && memmem(v, m->len, "toy_bad_record", 14)) {
        r->dead++;
        if (memmem(v, m->len, "bad-", 4))
            r->dead_with_original++;
    }
}

/* Everything `topic` holds (the runs flushed their outputs before they returned). */
static readback_t read_topic(const char *topic) {
    readback_t r = {0};
    const char *topics[] = {topic};
    hvs_test_tail_t ts = {
        .brokers = broker.addr, .topics = topics, .to_end = true, .timeout_ms = 15000};
    hvs_test_tail(&ts, on_message, &r);
    return r;
}

/* A plain consumer handle on the broker (metadata, committed offsets), in `group`. */
static rd_kafka_t *plain_client(const char *group) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    HVS_REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", broker.addr, errstr, sizeof errstr) ==
                        RD_KAFKA_CONF_OK &&
                    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ==
                        RD_KAFKA_CONF_OK,
                "conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    HVS_REQUIRE(rk, "client: %s", errstr);
    return rk;
}

/* How many partitions `topic` has (it exists: records were produced to it). */
static int partitions_of(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    HVS_REQUIRE(rkt && rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1,
                "metadata of %s", topic);
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    HVS_REQUIRE(n > 0 && n <= MAX_PARTS, "%s has %d partitions", topic, n);
    return n;
}

static hvs_test_proc_t redis_srv;
static bool redis_up;

static void stop_redis(void) { hvs_test_proc_stop(&redis_srv); }

/* A connection to the shared redis-server, emptied: each stateful case starts from nothing. */
static hvs_redis_t *fresh_redis(void) {
    if (!redis_up) {
        HVS_REQUIRE(hvs_test_redis_start(&redis_srv, 0) == 0, "redis-server");
        hvs_test_cleanup(stop_redis);
        redis_up = true;
    }
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis_srv.addr, NULL, &r, &err) == 0, "redis: %s", err.msg);
    redisReply *rep = NULL;
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "FLUSHALL") == 0, "flushall");
    freeReplyObject(rep);
    return r;
}

/* The integer (or numeric string) in a reply; -1 otherwise. Frees the reply. */
static long long reply_int(redisReply *rep) {
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    else if (rep && rep->type == REDIS_REPLY_STRING)
        v = strtoll(rep->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    return v;
}

/* What the toy's state says it applied (-1: nothing stored). */
static long long applied_count(hvs_redis_t *r) {
    redisReply *rep = NULL;
    hvs_redis_command(r, &rep, NULL, "HGET toy:count applied");
    return reply_int(rep);
}

static long long dbsize(hvs_redis_t *r) {
    redisReply *rep = NULL;
    hvs_redis_command(r, &rep, NULL, "DBSIZE");
    return reply_int(rep);
}

static long long has_epoch(hvs_redis_t *r, int p) {
    char key[64];
    snprintf(key, sizeof key, "hvs:stage:stagetest:%d", p);
    redisReply *rep = NULL;
    hvs_redis_command(r, &rep, NULL, "HEXISTS %s epoch", key);
    return reply_int(rep);
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void bad_record_is_dead_lettered_and_the_stage_goes_on(void) {
    hvs_app_t app;
    app_start(&app, "stage-dlq");
    const char *in = "stagetest.dlq.in", *out = "stagetest.dlq.out";
    int bad[] = {3, 17, 0};
    produce(&app, in, 40, bad);
    toy_t t = {.out_topic = out, .expect = 40};
    hvs_err_t err = {0};
    int rc = run_toy(&app, &t, (const char *const[]){in}, 1, &err);
    HVS_CHECK(rc == TEST_DONE, "run ended by the test, got %d %s: %s", rc, err.reason, err.msg);
    HVS_CHECK_EQ_INT(t.handled, 40);
    HVS_CHECK_EQ_INT(t.bad, 2);
    readback_t o = read_topic(out);
    HVS_CHECK_EQ_INT(o.n, 38); /* every good record after the bad ones got through */
    char dlq[128];
    hvs_topic_dlq_name(in, dlq, sizeof dlq);
    readback_t d = read_topic(dlq);
    HVS_CHECK_EQ_INT(d.n, 2);
    HVS_CHECK_EQ_INT(d.dead, 2);
    HVS_CHECK_EQ_INT(d.dead_with_original, 2);
    char *text = NULL;
    size_t len;
    HVS_REQUIRE(hvs_metrics_render(app.metrics, &text, &len, &err) == 0, "render");
    HVS_CHECK(
        hvs_test_metric(text, "hvs_stagetest_dead_letters_total{reason=\"toy_bad_record\"}") == 2,
        "dead letters by reason:\n%s", text);
    free(text);
    hvs_app_fini(&app);
}

static void state_is_written_only_after_outputs_are_acknowledged(void) {
    hvs_app_t app;
    app_start(&app, "stage-ack");
    const char *in = "stagetest.ack.in", *out = "stagetest.ack.out";
    int bad[] = {5, 0};
    produce(&app, in, 200, bad);
    toy_t t = {.out_topic = out, .expect = 200};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK(t.state_writes >= 200 / 7, "a state write per batch: %zu", t.state_writes);
    HVS_CHECK_EQ_INT(t.state_writes_unacked, 0);
    hvs_app_fini(&app);
}

static void offsets_are_committed_only_after_the_state_write(void) {
    hvs_app_t app;
    app_start(&app, "stage-commit");
    const char *in = "stagetest.commit.in", *out = "stagetest.commit.out";
    produce(&app, in, 30, NULL);
    /* first member: its first state write with records fails -> fatal, nothing committed */
    toy_t t1 = {.out_topic = out, .expect = 30, .fail_state_writes = 1};
    hvs_err_t err = {0};
    int rc = run_toy(&app, &t1, (const char *const[]){in}, 1, &err);
    HVS_CHECK(rc == HVS_EREDIS && strcmp(err.reason, "toy_state_lost") == 0,
              "the state write's failure ends the run: %d %s", rc, err.reason);
    HVS_CHECK(t1.handled > 0 && t1.handled < 30, "stopped in its first batch: %zu", t1.handled);
    /* the next member of the group is handed every record again */
    toy_t t2 = {.out_topic = out, .expect = 30};
    HVS_CHECK_EQ_INT(run_toy(&app, &t2, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t2.handled, 30);
    hvs_app_fini(&app);
}

static void a_partition_number_is_assigned_once_across_inputs(void) {
    hvs_app_t app;
    app_start(&app, "stage-assign");
    const char *in1 = "stagetest.assign.a", *in2 = "stagetest.assign.b";
    const char *out = "stagetest.assign.out";
    produce(&app, in1, 20, NULL);
    produce(&app, in2, 20, NULL);
    toy_t t = {.out_topic = out, .expect = 40};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t, (const char *const[]){in1, in2}, 2, &err), TEST_DONE);
    rd_kafka_t *rk = plain_client("stage-assign-md");
    int np = partitions_of(rk, in1);
    HVS_CHECK_EQ_INT(partitions_of(rk, in2), np);
    rd_kafka_destroy(rk);
    HVS_CHECK_EQ_INT(t.assigned_calls, np);
    for (int p = 0; p < np; p++)
        HVS_CHECK(t.assigned_count[p] == 1, "partition %d assigned %zu times", p,
                  t.assigned_count[p]);
    hvs_app_fini(&app);
}

static void every_stage_exports_phase_lag_and_batch_metrics(void) {
    hvs_app_t app;
    app_start(&app, "stage-metrics");
    const char *in = "stagetest.metrics.in", *out = "stagetest.metrics.out";
    produce(&app, in, 50, NULL);
    toy_t t = {.out_topic = out, .expect = 50};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t, (const char *const[]){in}, 1, &err), TEST_DONE);
    char *text = NULL;
    size_t len;
    HVS_REQUIRE(hvs_metrics_render(app.metrics, &text, &len, &err) == 0, "render");
    static const char *const phases[] = {"poll",        "process", "publish_wait",
                                         "state_write", "commit",  "between_batches"};
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "hvs_stagetest_phase_seconds_total{phase=\"%s\"}", phases[i]);
        HVS_CHECK(hvs_test_metric(text, name) >= 0, "%s missing", name);
    }
    HVS_CHECK(hvs_test_metric(text, "hvs_stagetest_phase_seconds_total{phase=\"poll\"}") > 0,
              "poll time counted");
    HVS_CHECK(hvs_test_metric(text, "hvs_stagetest_batch_seconds_count") >= 50.0 / 7,
              "a batch latency per batch with records:\n%s", text);
    HVS_CHECK_EQ_INT(hvs_test_metric(text, "hvs_stagetest_consumer_lag_messages"), 0);
    free(text);
    hvs_app_fini(&app);
}

/* The offsets the state has applied are in Redis with it: a member of another group (no committed
 * offsets) over the same state applies nothing twice, and goes on with what is new. */
static void applied_offsets_in_redis_decide_where_partitions_start(void) {
    hvs_app_t app;
    app_start(&app, "stage-eos-a");
    hvs_redis_t *r = fresh_redis();
    const char *in = "stagetest.eos.in", *out = "stagetest.eos.out";
    produce(&app, in, 30, NULL);
    toy_t t1 = {.out_topic = out, .expect = 30, .redis = r};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t1, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(applied_count(r), 30);
    hvs_app_fini(&app);
    /* a new group: Kafka would start it at the beginning; the state says where it got */
    app_start(&app, "stage-eos-b");
    toy_t t2 = {.out_topic = out, .expect = 0, .redis = r};
    HVS_CHECK_EQ_INT(run_toy(&app, &t2, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t2.handled, 0);
    produce(&app, in, 10, NULL);
    toy_t t3 = {.out_topic = out, .expect = 10, .redis = r};
    HVS_CHECK_EQ_INT(run_toy(&app, &t3, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t3.handled, 10);
    HVS_CHECK_EQ_INT(applied_count(r), 40); /* each record once */
    hvs_redis_destroy(r);
    hvs_app_fini(&app);
}

/* Redis loses everything between two runs: the next run finds committed offsets without state,
 * replays the inputs quietly into the state and publishes nothing again. */
static void lost_state_is_rebuilt_quietly_from_the_inputs(void) {
    hvs_app_t app;
    app_start(&app, "stage-eos-rebuild");
    hvs_redis_t *r = fresh_redis();
    const char *in = "stagetest.rebuild.in", *out = "stagetest.rebuild.out";
    produce(&app, in, 20, NULL);
    toy_t t1 = {.out_topic = out, .expect = 20, .redis = r};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t1, (const char *const[]){in}, 1, &err), TEST_DONE);
    redisReply *rep = NULL;
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "FLUSHALL") == 0, "flushall");
    freeReplyObject(rep);
    toy_t t2 = {.out_topic = out, .expect = 20, .redis = r};
    HVS_CHECK_EQ_INT(run_toy(&app, &t2, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t2.replayed, 20);
    HVS_CHECK_EQ_INT(applied_count(r), 20); /* rebuilt, once */
    readback_t o = read_topic(out);
    HVS_CHECK_EQ_INT(o.n, 20); /* nothing published again */
    char *text = NULL;
    size_t len;
    HVS_REQUIRE(hvs_metrics_render(app.metrics, &text, &len, &err) == 0, "render");
    HVS_CHECK(hvs_test_metric(text, "hvs_stagetest_state_losses_total") >= 1, "losses counted");
    free(text);
    /* rebuilt: every partition's key has its epoch again */
    rd_kafka_t *rk = plain_client("stage-eos-md");
    int np = partitions_of(rk, in);
    rd_kafka_destroy(rk);
    for (int p = 0; p < np; p++) {
        HVS_CHECK(has_epoch(r, p) == 1, "partition %d has its epoch again", p);
    }
    hvs_redis_destroy(r);
    hvs_app_fini(&app);
}

/* End offsets of every partition of topic (np of them) into hi. */
static void ends_of(rd_kafka_t *rk, const char *topic, int np, int64_t *hi) {
    for (int p = 0; p < np; p++) {
        int64_t lo = 0;
        HVS_REQUIRE(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p], 10000) == 0,
                    "watermarks of %s [%d]", topic, p);
    }
}

/* Leave Redis as a rebuild killed part way leaves it: per partition, the targets (r:, where
 * processing had got before the loss; -1: none of that input), how far the killed rebuild got
 * (o:) and no epoch. (The group's commits are the last run's, as far as or further than the
 * targets: they must not decide either.) */
static void leave_killed_rebuild(hvs_redis_t *r, const char *const *in, int np,
                                 int64_t *const target[2], int64_t *const got[2]) {
    redisReply *rep = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "FLUSHALL") == 0, "flushall");
    freeReplyObject(rep);
    for (int p = 0; p < np; p++)
        for (int t = 0; t < 2; t++) {
            char key[64];
            snprintf(key, sizeof key, "hvs:stage:stagetest:%d", p);
            HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET %s r:%s %lld o:%s %lld", key, in[t],
                                          (long long)target[t][p], in[t],
                                          (long long)got[t][p]) == 0,
                        "hset: %s", err.msg);
            freeReplyObject(rep);
        }
}

/* A rebuild killed part way (the fault suite's rebuild_kill9) had read input b live past its
 * target while a still replayed: what b's later records made ready only with the rest of a's
 * replay was never published. The next rebuild replays each input quietly up to the killed
 * one's target, not up to its progress or commits, and is loud past it - the same for an input
 * of which nothing had been read before the loss (target -1). */
static void a_killed_rebuilds_targets_decide_what_is_replayed_quietly(void) {
    hvs_app_t app;
    app_start(&app, "stage-eos-kill");
    hvs_redis_t *r = fresh_redis();
    const char *in[2] = {"stagetest.kill.a", "stagetest.kill.b"}, *out = "stagetest.kill.out";
    produce(&app, in[0], 20, NULL);
    produce(&app, in[1], 10, NULL);
    toy_t t1 = {.out_topic = out, .expect = 30, .redis = r};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t1, in, 2, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t1.sent, 30);
    rd_kafka_t *rk = plain_client("stage-eos-kill-md");
    int np = partitions_of(rk, in[0]);
    HVS_REQUIRE(partitions_of(rk, in[1]) == np, "both inputs have %d partitions", np);
    int64_t a_end[MAX_PARTS], b_end[MAX_PARTS], b_more[MAX_PARTS], a_half[MAX_PARTS];
    ends_of(rk, in[0], np, a_end);
    ends_of(rk, in[1], np, b_end);
    /* the loss; then b goes on, and the killed rebuild read those records live */
    produce(&app, in[1], 10, NULL);
    ends_of(rk, in[1], np, b_more);
    for (int p = 0; p < np; p++)
        a_half[p] = a_end[p] / 2;
    leave_killed_rebuild(r, in, np, (int64_t *const[2]){a_end, b_end},
                         (int64_t *const[2]){a_half, b_more});
    toy_t t2 = {.out_topic = out, .expect = 40, .redis = r};
    HVS_CHECK_EQ_INT(run_toy(&app, &t2, in, 2, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t2.replayed, 30); /* up to the targets: what t1 had published */
    HVS_CHECK_EQ_INT(t2.sent, 10);     /* b's records past its target: published (again) */
    for (int p = 0; p < np; p++) {
        HVS_CHECK(has_epoch(r, p) == 1, "partition %d rebuilt", p);
    }
    /* A loss before any of b was read (another group: none of b committed; a's state stored,
     * no epoch). Its rebuild targets a's end and -1 for b; stopped after its first batch, it
     * must have written both, b's -1 too (read or not), or the next rebuild, taking it for a
     * killed one, would fall back for b to the stopped one's commits and replay them quietly */
    hvs_app_fini(&app);
    app_start(&app, "stage-eos-kill-b");
    redisReply *rep = NULL;
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "FLUSHALL") == 0, "flushall");
    freeReplyObject(rep);
    for (int p = 0; p < np; p++) {
        HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "HSET hvs:stage:stagetest:%d o:%s %lld", p,
                                      in[0], (long long)a_end[p]) == 0,
                    "hset: %s", err.msg);
        freeReplyObject(rep);
    }
    toy_t t3 = {.out_topic = out, .expect = 40, .redis = r, .stop_after_batches = 1};
    HVS_CHECK_EQ_INT(run_toy(&app, &t3, in, 2, &err), TEST_DONE);
    /* a partition whose whole replay fit in that batch finished its rebuild there (epoch
     * written, targets deleted: a slow machine's batch can hold all of a small partition) */
    int written = 0, finished = 0;
    bool done[MAX_PARTS] = {false};
    size_t a_left = 0, b_left = 0; /* what the next run replays quietly, and publishes */
    for (int p = 0; p < np; p++) {
        char key[64];
        snprintf(key, sizeof key, "hvs:stage:stagetest:%d", p);
        done[p] = has_epoch(r, p) == 1;
        finished += done[p];
        if (done[p]) { /* the next run starts where it stored, loudly */
            long long sa, sb;
            hvs_redis_command(r, &rep, NULL, "HGET %s o:%s", key, in[0]);
            sa = reply_int(rep);
            hvs_redis_command(r, &rep, NULL, "HGET %s o:%s", key, in[1]);
            sb = reply_int(rep);
            b_left += (size_t)(a_end[p] - (sa > 0 ? (sa < a_end[p] ? sa : a_end[p]) : 0));
            b_left += (size_t)(b_more[p] - (sb > 0 ? (sb < b_more[p] ? sb : b_more[p]) : 0));
            continue;
        }
        a_left += (size_t)a_end[p], b_left += (size_t)b_more[p];
        hvs_redis_command(r, &rep, NULL, "HEXISTS %s r:%s", key, in[0]);
        if (reply_int(rep) != 1)
            continue; /* not in the stopped batch */
        written++;
        hvs_redis_command(r, &rep, NULL, "HGET %s r:%s", key, in[0]);
        HVS_CHECK(reply_int(rep) == a_end[p], "partition %d: a's target %lld", p,
                  (long long)a_end[p]);
        hvs_redis_command(r, &rep, NULL, "HEXISTS %s r:%s", key, in[1]);
        HVS_CHECK(reply_int(rep) == 1, "partition %d: b's target written", p);
        hvs_redis_command(r, &rep, NULL, "HGET %s r:%s", key, in[1]);
        HVS_CHECK(reply_int(rep) == -1, "partition %d: b's target -1", p);
    }
    HVS_CHECK(written + finished > 0,
              "the stopped rebuild wrote targets of %d partitions (%d "
              "finished)",
              written, finished);
    toy_t t4 = {.out_topic = out, .expect = a_left + b_left, .redis = r};
    HVS_CHECK_EQ_INT(run_toy(&app, &t4, in, 2, &err), TEST_DONE);
    HVS_CHECK_EQ_INT(t4.replayed, a_left); /* a, up to its target */
    HVS_CHECK_EQ_INT(t4.sent, b_left); /* all of b: nothing of it was published before the loss */
    readback_t o = read_topic(out);
    HVS_CHECK(o.n == 40 + t3.sent + t4.sent,
              "%zu outputs: 30 + 10, the stopped rebuild's %zu and the next one's %zu", o.n,
              t3.sent, t4.sent); /* nothing else published */
    rd_kafka_destroy(rk);
    hvs_redis_destroy(r);
    hvs_app_fini(&app);
}

/* A rebuild starts from no keys of its partition: what Redis holds under the stage's namespace
 * for the buildings listed in hvs:<ns>:part:<P> (a killed rebuild's partial state) is deleted
 * before the replay; keys of unlisted buildings, of another namespace and the list of a
 * partition that is not rebuilt stay. */
static void a_rebuild_starts_from_no_keys_of_its_partition(void) {
    hvs_app_t app;
    app_start(&app, "stage-eos-purge");
    hvs_redis_t *r = fresh_redis();
    const char *in = "stagetest.purge.in", *out = "stagetest.purge.out";
    produce(&app, in, 20, NULL);
    toy_t t1 = {.out_topic = out, .expect = 20, .redis = r};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t1, (const char *const[]){in}, 1, &err), TEST_DONE);
    rd_kafka_t *rk = plain_client("stage-eos-purge-md");
    int np = partitions_of(rk, in);
    HVS_REQUIRE(np >= 2 && np <= MAX_PARTS, "%d partitions", np);
    int64_t end[MAX_PARTS];
    ends_of(rk, in, np, end);
    rd_kafka_destroy(rk);
    size_t rebuilt = 0; /* the records of the partitions rebuilt */
    for (int p = 1; p < np; p++)
        rebuilt += (size_t)end[p];
    /* partitions 1..np-1 lose their epoch (rebuilt); partition 0 keeps it. Each lists a
     * building with keys under "toy" (two kinds) and one under another namespace */
    redisReply *rep = NULL;
    for (int p = 0; p < np; p++) {
        if (p > 0) {
            hvs_redis_command(r, &rep, &err, "HDEL hvs:stage:stagetest:%d epoch", p);
            freeReplyObject(rep);
        }
        const char *cmds[] = {"SADD hvs:toy:part:%d pb%d",    "SET hvs:{pb%d}:toy:k %d",
                              "HSET hvs:{pb%d}:toy:h:a f %d", "SET hvs:{pb%d}:zz:k %d",
                              "SET hvs:{pb%d}:toy:latest %d", "SET hvs:{pb%d}:toyx:k %d"};
        for (int c = 0; c < 6; c++) {
            HVS_REQUIRE(hvs_redis_command(r, &rep, &err, cmds[c], p, p) == 0, "plant: %s", err.msg);
            freeReplyObject(rep);
        }
    }
    HVS_REQUIRE(hvs_redis_command(r, &rep, &err, "SET hvs:{unlisted}:toy:k 1") == 0, "plant");
    freeReplyObject(rep);
    static const char *const keep[] = {"latest", NULL};
    toy_t t2 = {
        .out_topic = out, .expect = rebuilt, .redis = r, .state_ns = "toy", .state_keep = keep};
    HVS_CHECK_EQ_INT(run_toy(&app, &t2, (const char *const[]){in}, 1, &err), TEST_DONE);
    HVS_CHECK(t2.replayed == rebuilt && t2.sent == 0, "rebuilt quietly (%zu of %zu replayed)",
              t2.replayed, rebuilt);
    for (int p = 0; p < np; p++) {
        long long want = p == 0 ? 1 : 0;
        hvs_redis_command(r, &rep, NULL, "EXISTS hvs:toy:part:%d", p);
        HVS_CHECK(reply_int(rep) == want, "partition %d: list %s", p, want ? "kept" : "deleted");
        hvs_redis_command(r, &rep, NULL, "EXISTS hvs:{pb%d}:toy:k hvs:{pb%d}:toy:h:a", p, p);
        HVS_CHECK(reply_int(rep) == 2 * want, "partition %d: its building's keys %s", p,
                  want ? "kept" : "deleted");
        hvs_redis_command(r, &rep, NULL, "EXISTS hvs:{pb%d}:zz:k hvs:{pb%d}:toyx:k", p, p);
        HVS_CHECK(reply_int(rep) == 2, "partition %d: other namespaces' keys kept", p);
        hvs_redis_command(r, &rep, NULL, "EXISTS hvs:{pb%d}:toy:latest", p);
        HVS_CHECK(reply_int(rep) == 1, "partition %d: a kept kind (a served output) kept", p);
        HVS_CHECK(has_epoch(r, p) == 1, "partition %d has its epoch", p);
    }
    hvs_redis_command(r, &rep, NULL, "EXISTS hvs:{unlisted}:toy:k");
    HVS_CHECK(reply_int(rep) == 1, "an unlisted building's key kept");
    hvs_redis_destroy(r);
    hvs_app_fini(&app);
}

/* Redis is flushed while the stage runs: the next turn notices before writing anything into the
 * empty database, and the run ends with state_lost (the process exits; its restart rebuilds). */
static void state_lost_while_running_stops_before_writing(void) {
    hvs_app_t app;
    app_start(&app, "stage-eos-flush");
    hvs_redis_t *r = fresh_redis();
    const char *in = "stagetest.flush.in", *out = "stagetest.flush.out";
    produce(&app, in, 20, NULL);
    toy_t t = {.out_topic = out, .expect = 1000, .redis = r, .flush_redis_after_first_batch = true};
    hvs_err_t err = {0};
    int rc = run_toy(&app, &t, (const char *const[]){in}, 1, &err);
    HVS_CHECK(rc == HVS_EREDIS && strcmp(err.reason, "state_lost") == 0,
              "the loss stops the run: %d %s: %s", rc, err.reason, err.msg);
    HVS_CHECK_EQ_INT(dbsize(r), 0); /* nothing written after the flush */
    hvs_redis_destroy(r);
    hvs_app_fini(&app);
}

/* The offsets group `group` committed on topic `in`, summed over its partitions; *all_at_end
 * (may be NULL) whether every partition is committed exactly at its end. */
static int64_t committed_of(const char *group, const char *in, bool *all_at_end) {
    rd_kafka_t *rk = plain_client(group);
    int np = partitions_of(rk, in);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(parts, in, p);
    HVS_REQUIRE(rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR, "committed");
    int64_t committed = 0;
    if (all_at_end)
        *all_at_end = true;
    for (int p = 0; p < np; p++) {
        int64_t lo = 0, hi = 0;
        HVS_REQUIRE(rd_kafka_query_watermark_offsets(rk, in, p, &lo, &hi, 10000) == 0, "wm");
        if (all_at_end && parts->elems[p].offset != hi)
            *all_at_end = false;
        committed += parts->elems[p].offset > 0 ? parts->elems[p].offset : 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return committed;
}

/* Last: the stop flag cannot be cleared in this process. */
static void sigterm_ends_the_run_after_the_batch_is_committed(void) {
    hvs_app_t app;
    app_start(&app, "stage-sigterm");
    const char *in = "stagetest.sigterm.in", *out = "stagetest.sigterm.out";
    produce(&app, in, 25, NULL);
    toy_t t = {.out_topic = out, .expect = 25, .stop_by_signal = true};
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(run_toy(&app, &t, (const char *const[]){in}, 1, &err), 0);
    HVS_CHECK_EQ_INT(t.handled, 25);
    /* what the group committed: every partition at its end */
    bool at_end = false;
    HVS_CHECK_EQ_INT(committed_of("stage-sigterm", in, &at_end), 25);
    HVS_CHECK(at_end, "every partition committed at its end");
    hvs_app_fini(&app);
}

/* The stop comes in the middle of a batch, and the broker refuses that batch's commit as the
 * group rebalances (as when the member is told to leave while partitions move): the run still
 * ends cleanly - the refused inputs are the next owner's to replay, not a shutdown left
 * incomplete. Its own process (test_stage_handover_it). */
static void a_commit_refused_by_a_rebalance_at_stop_is_not_owed(void) {
    hvs_app_t app;
    app_start(&app, "stage-handover");
    const char *in = "stagetest.handover.in", *out = "stagetest.handover.out";
    produce(&app, in, 25, NULL);
    char reply[256];
    HVS_REQUIRE(hvs_test_devbroker_control(&broker, "errors 8 1000 REBALANCE_IN_PROGRESS", reply,
                                           sizeof reply) == 0,
                "inject: %s", reply);
    toy_t t = {.out_topic = out, .expect = 25, .stop_in_handle = true};
    hvs_err_t err = {0};
    int rc = run_toy(&app, &t, (const char *const[]){in}, 1, &err);
    HVS_CHECK(rc == 0, "a clean end: rc %d %s: %s", rc, err.reason, err.msg);
    HVS_CHECK(!hvs_app_shutdown_was_incomplete(), "the shutdown counts as complete");
    HVS_CHECK_EQ_INT(t.handled, 25);
    /* the refusals did happen: nothing of the input is committed */
    HVS_CHECK_EQ_INT(committed_of("stage-handover", in, NULL), 0);
    hvs_app_fini(&app);
}

static const hvs_test_case_t cases[] = {
    {"bad_record_is_dead_lettered_and_the_stage_goes_on",
     bad_record_is_dead_lettered_and_the_stage_goes_on},
    {"state_is_written_only_after_outputs_are_acknowledged",
     state_is_written_only_after_outputs_are_acknowledged},
    {"offsets_are_committed_only_after_the_state_write",
     offsets_are_committed_only_after_the_state_write},
    {"a_partition_number_is_assigned_once_across_inputs",
     a_partition_number_is_assigned_once_across_inputs},
    {"every_stage_exports_phase_lag_and_batch_metrics",
     every_stage_exports_phase_lag_and_batch_metrics},
    {"applied_offsets_in_redis_decide_where_partitions_start",
     applied_offsets_in_redis_decide_where_partitions_start},
    {"lost_state_is_rebuilt_quietly_from_the_inputs",
     lost_state_is_rebuilt_quietly_from_the_inputs},
    {"a_killed_rebuilds_targets_decide_what_is_replayed_quietly",
     a_killed_rebuilds_targets_decide_what_is_replayed_quietly},
    {"a_rebuild_starts_from_no_keys_of_its_partition",
     a_rebuild_starts_from_no_keys_of_its_partition},
    {"state_lost_while_running_stops_before_writing",
     state_lost_while_running_stops_before_writing},
    {"sigterm_ends_the_run_after_the_batch_is_committed",
     sigterm_ends_the_run_after_the_batch_is_committed},
    HVS_TEST_CASES_END,
};

/* not among the defaults: it stops the process's app too */
static const hvs_test_case_t handover_cases[] = {
    {"a_commit_refused_by_a_rebalance_at_stop_is_not_owed",
     a_commit_refused_by_a_rebalance_at_stop_is_not_owed},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], handover_cases[0].name) == 0)
        return hvs_test_main(handover_cases, argc, argv);
    return hvs_test_main(cases, argc, argv);
}
