/*
 * hvs-devbroker's control channel and what the kafka layer does with the faults it injects:
 * commands answered (and bad ones refused); the broker taken down while messages are produced
 * (flush times out, nothing lost: after "broker up" every message arrives exactly once -
 * idempotent producer); produce requests failing with NOT_LEADER_FOR_PARTITION (retried, no
 * duplicates). The two-member rebalance is in test_kafka_rebalance.c.
 */
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

static int ctl(const hvs_test_proc_t *b, const char *cmd) {
    char reply[256];
    int rc = hvs_test_devbroker_control(b, cmd, reply, sizeof reply);
    if (rc)
        fprintf(stderr, "control \"%s\": %s\n", cmd, reply);
    return rc;
}

typedef struct seen_ids {
    unsigned char *seen;
    int nseen;
} seen_ids_t;

/* Counts each message's 4-byte id into seen[]. */
static void count_id(void *opaque, const rd_kafka_message_t *m) {
    seen_ids_t *s = opaque;
    uint32_t id;
    memcpy(&id, m->payload, 4);
    if ((int)id < s->nseen)
        s->seen[id]++;
}

/* Consume `topic` from the start in a fresh group until `want` messages or 20 s, and half a
 * second longer (duplicates would show up then); counts each 4-byte id into seen[]. Returns
 * messages read. */
static int drain(const char *brokers, const char *topic, const char *group, int want,
                 unsigned char *seen, int nseen) {
    const char *topics[] = {topic};
    seen_ids_t s = {seen, nseen};
    hvs_test_tail_t t = {.brokers = brokers,
                         .topics = topics,
                         .group = group,
                         .want = (size_t)want,
                         .timeout_ms = 20000,
                         .linger_ms = 500,
                         .batch = 512};
    return (int)hvs_test_tail(&t, count_id, &s);
}

static int count_exactly_once(const unsigned char *seen, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += seen[i] == 1;
    return ok;
}

/* The devbroker and producer the cases share, started by the first case that needs them. */
static hvs_test_proc_t b;
static hvs_producer_t *p;

static void stop_broker(void) {
    hvs_producer_destroy(p);
    hvs_test_proc_stop(&b);
}

static void broker(void) {
    if (p)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&b, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    hvs_kafka_conf_t kc = {.brokers = b.addr, .client_id = "t"};
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
}

enum { N = 2000 };
static unsigned char seen[N];

static void test_control(void) {
    broker();
    char reply[256];
    HVS_CHECK(hvs_test_devbroker_control(&b, "ping", reply, sizeof reply) == 0 &&
                  strcmp(reply, "ok pong") == 0,
              "ping: %s", reply);
    HVS_CHECK(hvs_test_devbroker_control(&b, "fly away", reply, sizeof reply) != 0 &&
                  strncmp(reply, "error", 5) == 0,
              "unknown command refused: %s", reply);
    HVS_CHECK(hvs_test_devbroker_control(&b, "errors 0 1 NO_SUCH_ERROR", reply, sizeof reply) != 0,
              "unknown error name refused");
    HVS_CHECK(ctl(&b, "rtt 1 0") == 0, "rtt");
}

/* Broker down while producing: not acknowledged, then everything arrives once. */
static void test_broker_down(void) {
    broker();
    hvs_err_t err;
    HVS_CHECK(ctl(&b, "topic create fault.down 2") == 0, "topic create");
    /* metadata first, so the producer knows the partitions before the broker goes away */
    uint32_t warm = 999999;
    hvs_producer_send(p, "fault.down", 0, "k", 1, &warm, 4, &err);
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "warm-up");

    memset(seen, 0, sizeof seen);
    HVS_CHECK(ctl(&b, "broker down 1") == 0, "broker down");
    for (uint32_t i = 0; i < N; i++)
        HVS_REQUIRE(
            hvs_producer_send(p, "fault.down", RD_KAFKA_PARTITION_UA, "k", 1, &i, 4, &err) == 0,
            "queue");
    HVS_CHECK(hvs_producer_flush(p, 1500, &err) == HVS_ETIMEOUT, "flush while down: %s", err.msg);
    HVS_CHECK(ctl(&b, "broker up 1") == 0, "broker up");
    HVS_CHECK(hvs_producer_flush(p, 30000, &err) == 0, "flush after up: %s", err.msg);
    int got = drain(b.addr, "fault.down", "g-down", N + 1, seen, N);
    HVS_CHECK_EQ_INT(got, N + 1);
    HVS_CHECK_EQ_INT(count_exactly_once(seen, N), N);
}

/* Produce requests fail NOT_LEADER_FOR_PARTITION three times: retried, no duplicates. */
static void test_not_leader(void) {
    broker();
    hvs_err_t err;
    HVS_CHECK(ctl(&b, "topic create fault.errors 2") == 0, "topic create");
    memset(seen, 0, sizeof seen);
    HVS_CHECK(ctl(&b, "errors 0 3 NOT_LEADER_FOR_PARTITION") == 0, "push errors");
    for (uint32_t i = 0; i < N; i++)
        hvs_producer_send(p, "fault.errors", RD_KAFKA_PARTITION_UA, "k", 1, &i, 4, &err);
    HVS_CHECK(hvs_producer_flush(p, 30000, &err) == 0, "flush with errors: %s", err.msg);
    int got = drain(b.addr, "fault.errors", "g-errors", N, seen, N);
    HVS_CHECK_EQ_INT(got, N);
    HVS_CHECK_EQ_INT(count_exactly_once(seen, N), N);
}

static int cmp_i64(const void *pa, const void *pb) {
    int64_t x = *(const int64_t *)pa, y = *(const int64_t *)pb;
    return x < y ? -1 : x > y;
}

/* A producer whose topics were prepared while it waited (as a stage's group join does) gets its
 * first flush acknowledged without waiting for the topic's metadata; steady flushes of messages
 * spread over 4 partitions (4 produce requests in flight on one connection) are acknowledged in
 * about a round trip: the mock broker's connections do not run Nagle against the client's
 * delayed ACK (which cost ~40 ms per flush). */
static void test_prompt_acknowledgements(void) {
    broker();
    hvs_err_t err;
    HVS_CHECK(ctl(&b, "topic create prompt.first 4") == 0 &&
                  ctl(&b, "topic create prompt.cold 4") == 0,
              "topic create");
    hvs_kafka_conf_t kc = {.brokers = b.addr, .client_id = "t-prompt"};
    hvs_producer_t *warm = NULL, *cold = NULL;
    HVS_REQUIRE(hvs_producer_new(&kc, &warm, &err) == 0 && hvs_producer_new(&kc, &cold, &err) == 0,
                "producers");
    const char *topics[] = {"prompt.second", "prompt.first", "prompt.first", NULL};
    HVS_CHECK(hvs_producer_prepare_topics(warm, topics, &err) == 0, "prepare: %s", err.msg);
    usleep(1000 * 1000); /* the group join a stage waits through */
    uint32_t id = 1;
    int64_t t0 = hvs_test_now_ms();
    HVS_CHECK(
        hvs_producer_send(warm, "prompt.first", RD_KAFKA_PARTITION_UA, "k", 1, &id, 4, &err) == 0 &&
            hvs_producer_flush(warm, 10000, &err) == 0,
        "first flush: %s", err.msg);
    int64_t first_ms = hvs_test_now_ms() - t0;
    t0 = hvs_test_now_ms();
    HVS_CHECK(hvs_producer_send(cold, "prompt.cold", RD_KAFKA_PARTITION_UA, "k", 1, &id, 4, &err) ==
                      0 &&
                  hvs_producer_flush(cold, 10000, &err) == 0,
              "cold flush: %s", err.msg);
    int64_t cold_ms = hvs_test_now_ms() - t0;
    printf("first flush: %lld ms with the topic prepared, %lld ms without\n", (long long)first_ms,
           (long long)cold_ms);
    HVS_CHECK(first_ms < 300, "first flush of a prepared topic took %lld ms", (long long)first_ms);

    /* The same 480 messages a flush, first to one partition (one request in flight: nothing
     * for Nagle to hold back), then over 2 x 4 (eight in flight on one connection): without
     * TCP_NODELAY on the broker's side the second costs ~20-40 ms more a flush; with it about
     * what the first does. Relative, so a sanitizer's slowness moves both alike. */
    double mean[2];
    for (int spread = 0; spread < 2; spread++) {
        enum { ROUNDS = 40 };
        int64_t ms[ROUNDS], total = 0;
        for (int r = 0; r < ROUNDS; r++) {
            for (uint32_t i = 0; i < 480; i++)
                HVS_REQUIRE(
                    hvs_producer_send(warm, spread && i % 2 ? "prompt.second" : "prompt.first",
                                      spread ? (int32_t)(i / 2 % 4) : 0, "k", 1, &i, 4, &err) == 0,
                    "queue %u: %s", i, err.msg);
            t0 = hvs_test_now_ms();
            HVS_REQUIRE(hvs_producer_flush(warm, 10000, &err) == 0, "flush: %s", err.msg);
            total += ms[r] = hvs_test_now_ms() - t0;
        }
        qsort(ms, ROUNDS, sizeof *ms, cmp_i64);
        mean[spread] = (double)total / ROUNDS;
        printf("steady flushes (480 messages over %s): mean %.1f ms, median %lld ms, max %lld ms\n",
               spread ? "2 x 4 partitions" : "1 partition", mean[spread], (long long)ms[ROUNDS / 2],
               (long long)ms[ROUNDS - 1]);
    }
    HVS_CHECK(
        mean[1] < 2 * mean[0] + 10,
        "flushes over 8 partitions %.1f ms against %.1f ms over 1 (Nagle on the broker's side?)",
        mean[1], mean[0]);
    hvs_producer_destroy(warm);
    hvs_producer_destroy(cold);
}

static const hvs_test_case_t cases[] = {
    {"prompt_acknowledgements", test_prompt_acknowledgements},
    {"control_commands_answered_bad_ones_refused", test_control},
    {"broker_down_flush_times_out_then_exactly_once", test_broker_down},
    {"not_leader_errors_retried_without_duplicates", test_not_leader},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
