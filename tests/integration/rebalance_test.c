/*
 * A second member joins a consumer group on hvs-devbroker: the rebalance hooks are called, the
 * partitions are split between the two, every message is consumed at least once.
 *
 * Label "mock_flaky", not in the default test run: librdkafka 2.0.2's mock group coordinator
 * never completes a cooperative-sticky rebalance between two live members (revoked partitions
 * are not reassigned within 40 s), and even with the EAGER "range" strategy used here about one
 * run in three stalls with a JoinGroup timing out. Run it by hand:
 *   ctest --test-dir build -L mock_flaky --output-on-failure
 * and verify the cooperative path against a real Kafka.
 */
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

enum { N = 2000 };

typedef struct hooks_seen {
    int assigned, revoked;
} hooks_seen_t;

static void on_assigned(void *o, const rd_kafka_topic_partition_list_t *p) {
    ((hooks_seen_t *)o)->assigned += p->cnt;
}
static void on_revoked(void *o, const rd_kafka_topic_partition_list_t *p) {
    ((hooks_seen_t *)o)->revoked += p->cnt;
}

int main(void) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t b;
    HVS_REQUIRE(hvs_test_devbroker_start(&b, "--partitions 4") == 0, "devbroker");
    hvs_kafka_conf_t kc = {.brokers = b.addr, .client_id = "t"};
    hvs_producer_t *p;
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    static unsigned char seen[N];
    const char *props[] = {"partition.assignment.strategy", "range", NULL};
    hvs_kafka_conf_t gc = {.brokers = b.addr, .group = "g-two", .client_id = "t",
                           .fetch_wait_max_ms = 10, .props = props};
    const char *topics[] = {"readings.raw"};
    hooks_seen_t ha = {0, 0}, hb = {0, 0};
    hvs_consumer_hooks_t hooks_a = {on_assigned, on_revoked, &ha};
    hvs_consumer_hooks_t hooks_b = {on_assigned, on_revoked, &hb};
    hvs_consumer_t *ca, *cb;
    HVS_REQUIRE(hvs_consumer_new(&gc, topics, 1, &hooks_a, &ca, &err) == 0, "consumer a");
    HVS_REQUIRE(hvs_consumer_wait_assignment(ca, 20000, &err) == 0, "a assigned");
    HVS_CHECK_EQ_INT(ha.assigned, 4);
    HVS_REQUIRE(hvs_consumer_new(&gc, topics, 1, &hooks_b, &cb, &err) == 0, "consumer b");
    for (uint32_t i = 0; i < N; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "bldg_%u", i % 50);
        hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, key, (size_t)kl, &i, 4, &err);
    }
    HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0, "flush");
    int total = 0;
    int64_t deadline = hvs_test_now_ms() + 30000;
    rd_kafka_message_t *msgs[256];
    while ((total < N || hvs_consumer_assignment_size(cb) == 0) && hvs_test_now_ms() < deadline) {
        hvs_consumer_t *cs[2] = {ca, cb};
        for (int k = 0; k < 2; k++) {
            size_t n;
            hvs_consumer_poll_batch(cs[k], msgs, 256, 50, &n, &err);
            for (size_t i = 0; i < n; i++) {
                uint32_t id;
                memcpy(&id, msgs[i]->payload, 4);
                if (id < N)
                    seen[id]++;
            }
            total += (int)n;
            hvs_consumer_commit_batch(cs[k], msgs, n, &err);
            hvs_consumer_release(msgs, n);
        }
    }
    HVS_CHECK_EQ_INT(hvs_consumer_assignment_size(ca) + hvs_consumer_assignment_size(cb), 4);
    HVS_CHECK(hvs_consumer_assignment_size(cb) > 0, "b got partitions");
    HVS_CHECK(ha.revoked >= 4 - hvs_consumer_assignment_size(ca) && ha.revoked > 0,
              "a's revoke hook saw what it gave up (%d)", ha.revoked);
    HVS_CHECK(hb.assigned >= hvs_consumer_assignment_size(cb), "b's assign hook (%d)", hb.assigned);
    int lost = 0;
    for (int i = 0; i < N; i++)
        lost += seen[i] == 0;
    HVS_CHECK_EQ_INT(lost, 0); /* a commit refused mid-rebalance may replay: at least once */
    hvs_consumer_destroy(cb);
    hvs_consumer_destroy(ca);
    hvs_producer_destroy(p);
    hvs_test_proc_stop(&b);
    return hvs_test_done();
}
