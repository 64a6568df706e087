/*
 * OFFSET_OUT_OF_RANGE is an error, never a silent jump. Provoked for real on hvs-devbroker, whose
 * partitions keep only ~5 MiB: big incompressible messages push older ones out of the log.
 *  1. restart: a group resumes at its committed offset without complaint, but when the data
 *     after the committed offset aged out before the next start, the first poll reports
 *     "offset_out_of_range" and the gap, and returns the messages from the new log start on;
 *  2. mid-stream: a consumer that lags (small prefetch queue) while the data ahead of it ages
 *     out gets the same error at the first message after the hole, and carries on;
 *  3. backwards: a committed offset beyond the log end (topic recreated) is reported too, and the
 *     partition is replayed from the start.
 * Expected offsets come from the broker's own watermarks (rd_kafka_query_watermark_offsets).
 */
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define BIG (900 * 1000) /* < message.max.bytes; 8 of them overflow the mock's 5 MiB */

static hvs_test_proc_t broker;
static hvs_producer_t *prod;
static unsigned char *bigbuf;

static void produce_small(const char *topic, uint32_t first, int n) {
    hvs_err_t err;
    for (uint32_t id = first; id < first + (uint32_t)n; id++)
        HVS_REQUIRE(hvs_producer_send(prod, topic, 0, "k", 1, &id, sizeof id, &err) == 0, "send");
    HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush: %s", err.msg);
}

/* Incompressible, so lz4 keeps them big. Each is its own batch. */
static void produce_big(const char *topic, int n) {
    static uint64_t x = 88172645463325252ull;
    hvs_err_t err;
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k + 8 <= BIG; k += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(bigbuf + k, &x, 8);
        }
        uint32_t id = 1000000 + (uint32_t)i;
        memcpy(bigbuf, &id, sizeof id);
        HVS_REQUIRE(hvs_producer_send(prod, topic, 0, "k", 1, bigbuf, BIG, &err) == 0, "send big");
        HVS_REQUIRE(hvs_producer_flush(prod, 10000, &err) == 0, "flush big: %s", err.msg);
    }
}

static void watermarks(const char *topic, int64_t *lo, int64_t *hi) {
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(hvs_producer_handle(prod), topic, 0,
                                                             lo, hi, 5000);
    HVS_REQUIRE(e == RD_KAFKA_RESP_ERR_NO_ERROR, "watermarks of %s: %s", topic,
                rd_kafka_err2str(e));
}

static hvs_consumer_t *consumer(const char *topic, const char *group, const char *const *props) {
    /* The mock makes a group that a member just left wait session.timeout.ms - 1 s before it
     * takes a new member: keep the session short (extra props are appended). */
    const char *all[16] = {"session.timeout.ms", "3000", "heartbeat.interval.ms", "1000"};
    for (int i = 0; props && props[i] && i < 10; i++)
        all[4 + i] = props[i];
    hvs_kafka_conf_t kc = {.brokers = broker.addr,
                           .group = group,
                           .client_id = "t",
                           .fetch_wait_max_ms = 10,
                           .props = all};
    hvs_consumer_t *c;
    hvs_err_t err;
    const char *topics[] = {topic};
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer: %s", err.msg);
    HVS_REQUIRE(hvs_consumer_wait_assignment(c, 20000, &err) == 0, "assignment: %s", err.msg);
    return c;
}

/* What a poll loop saw: offsets in order, and every error with the offset it came with. */
typedef struct seen {
    int64_t offsets[64];
    int n;
    int errors;
    int64_t error_at; /* offset of the first message returned with the error */
    char reason[48], msg[512];
} seen_t;

/* Poll (batches of at most `max`) until `want` messages, offset `until` or 20 s, committing each
 * batch. */
static void consume(hvs_consumer_t *c, int want, int64_t until, size_t max, seen_t *s) {
    memset(s, 0, sizeof *s);
    s->error_at = -1;
    int64_t deadline = hvs_test_now_ms() + 20000;
    rd_kafka_message_t *msgs[64];
    while (s->n < want && (s->n == 0 || s->offsets[s->n - 1] < until) &&
           hvs_test_now_ms() < deadline) {
        size_t n;
        hvs_err_t err = {0};
        int rc = hvs_consumer_poll_batch(c, msgs, max, 100, &n, &err);
        if (rc != 0) {
            if (s->errors++ == 0) {
                snprintf(s->reason, sizeof s->reason, "%s", err.reason);
                snprintf(s->msg, sizeof s->msg, "%s", err.msg);
                s->error_at = n ? msgs[0]->offset : -2;
            }
        }
        for (size_t i = 0; i < n && s->n < 64; i++)
            s->offsets[s->n++] = msgs[i]->offset;
        HVS_CHECK(hvs_consumer_commit_batch(c, msgs, n, &err) == 0, "commit: %s", err.msg);
        hvs_consumer_release(msgs, n);
    }
}

static int contiguous(const seen_t *s) {
    for (int i = 1; i < s->n; i++)
        if (s->offsets[i] != s->offsets[i - 1] + 1)
            return 0;
    return 1;
}

static void restart_after_aging(void) {
    const char *t = "oor.restart";
    produce_small(t, 0, 10);
    seen_t s;
    hvs_consumer_t *c = consumer(t, "g-restart", NULL);
    consume(c, 5, INT64_MAX, 5, &s);
    HVS_CHECK_EQ_INT(s.n, 5);
    hvs_consumer_destroy(c);

    /* resuming at the committed offset is not a jump */
    c = consumer(t, "g-restart", NULL);
    consume(c, 5, INT64_MAX, 64, &s);
    HVS_CHECK_EQ_INT(s.n, 5);
    HVS_CHECK_EQ_INT(s.offsets[0], 5);
    HVS_CHECK_EQ_INT(s.errors, 0);
    hvs_consumer_destroy(c); /* committed: 10 */

    produce_big(t, 8);
    int64_t lo, hi;
    watermarks(t, &lo, &hi);
    HVS_REQUIRE(lo > 10, "the mock dropped the head of the log (lo %lld)", (long long)lo);
    c = consumer(t, "g-restart", NULL);
    consume(c, (int)(hi - lo), INT64_MAX, 1, &s);
    HVS_CHECK_EQ_INT(s.errors, 1);
    HVS_CHECK_EQ_STR(s.reason, "offset_out_of_range");
    HVS_CHECK_EQ_INT(s.error_at, lo);
    char gap[64];
    snprintf(gap, sizeof gap, "%lld message(s) aged out", (long long)(lo - 10));
    HVS_CHECK(strstr(s.msg, gap) != NULL, "message names the gap (%s): %s", gap, s.msg);
    HVS_CHECK_EQ_INT(s.n, hi - lo); /* and it carries on with what is there */
    HVS_CHECK(contiguous(&s), "contiguous after the hole");
    hvs_consumer_destroy(c);
}

static void mid_stream(void) {
    const char *t = "oor.mid";
    produce_small(t, 0, 10);
    /* a 1 KiB prefetch queue: the consumer holds at most one fetched batch ahead of itself */
    const char *props[] = {"queued.max.messages.kbytes", "1", "queued.min.messages", "1", NULL};
    hvs_consumer_t *c = consumer(t, "g-mid", props);
    seen_t s;
    consume(c, 2, INT64_MAX, 2, &s);
    HVS_CHECK_EQ_INT(s.n, 2);
    HVS_CHECK_EQ_INT(s.errors, 0);
    produce_big(t, 8); /* while the consumer "processes" */
    int64_t lo, hi;
    watermarks(t, &lo, &hi);
    HVS_REQUIRE(lo > 10, "the mock dropped the head of the log (lo %lld)", (long long)lo);
    int64_t before = 2; /* the messages it still had prefetched (2..9, maybe 10) come first */
    consume(c, 64, hi - 1, 1, &s);
    HVS_CHECK_EQ_INT(s.errors, 1);
    HVS_CHECK_EQ_STR(s.reason, "offset_out_of_range");
    HVS_CHECK_EQ_INT(s.error_at, lo);
    HVS_CHECK(s.n > 0 && s.offsets[0] == before, "continued where it was (%lld)",
              (long long)(s.n ? s.offsets[0] : -1));
    int hole = -1;
    for (int i = 1; i < s.n; i++)
        if (s.offsets[i] != s.offsets[i - 1] + 1)
            hole = i;
    HVS_CHECK(hole > 0 && s.offsets[hole] == lo && s.offsets[hole - 1] < lo - 1,
              "one hole, ending at the log start %lld", (long long)lo);
    HVS_CHECK_EQ_INT(s.offsets[s.n - 1], hi - 1);
    hvs_consumer_destroy(c);
}

static void backwards(void) {
    const char *t = "oor.back";
    produce_small(t, 0, 5);
    hvs_consumer_t *c = consumer(t, "g-back", NULL);
    /* as if the topic had been recreated: the group's offset is far beyond the log end */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, 0)->offset = 1000;
    HVS_CHECK(rd_kafka_commit(hvs_consumer_handle(c), l, 0) == RD_KAFKA_RESP_ERR_NO_ERROR,
              "commit 1000");
    rd_kafka_topic_partition_list_destroy(l);
    hvs_consumer_destroy(c);
    c = consumer(t, "g-back", NULL);
    seen_t s;
    consume(c, 5, INT64_MAX, 64, &s);
    HVS_CHECK_EQ_INT(s.errors, 1);
    HVS_CHECK_EQ_STR(s.reason, "offset_out_of_range");
    HVS_CHECK_EQ_INT(s.error_at, 0);
    HVS_CHECK(strstr(s.msg, "expected offset 1000") != NULL, "names the committed offset: %s",
              s.msg);
    HVS_CHECK_EQ_INT(s.n, 5); /* replayed */
    hvs_consumer_destroy(c);
}

/* The fixture the cases share, started by the first case that needs it: a devbroker with the
 * cases' three topics (one each) and a producer. */
static void stop_broker(void) {
    hvs_producer_destroy(prod);
    free(bigbuf);
    hvs_test_proc_stop(&broker);
}

static void start_broker(void) {
    if (prod)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, NULL) == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    char reply[128];
    const char *cmds[] = {"topic create oor.restart 1", "topic create oor.mid 1",
                          "topic create oor.back 1"};
    for (int i = 0; i < 3; i++)
        HVS_REQUIRE(hvs_test_devbroker_control(&broker, cmds[i], reply, sizeof reply) == 0, "%s",
                    reply);
    bigbuf = malloc(BIG);
    HVS_REQUIRE(bigbuf, "memory");
    hvs_kafka_conf_t kc = {.brokers = broker.addr, .client_id = "t"};
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &prod, &err) == 0, "producer");
}

static void case_restart_after_aging(void) {
    start_broker();
    restart_after_aging();
}

static void case_mid_stream(void) {
    start_broker();
    mid_stream();
}

static void case_backwards(void) {
    start_broker();
    backwards();
}

static const hvs_test_case_t cases[] = {
    {"restart_after_committed_data_aged_out_reports_gap", case_restart_after_aging},
    {"lagging_consumer_reports_hole_mid_stream", case_mid_stream},
    {"committed_offset_beyond_log_end_replays_from_start", case_backwards},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
