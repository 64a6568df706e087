/*
 * Cooperative-sticky rebalancing between two live members on hvs-devbroker, through the common
 * consumer: a second member joins while messages flow, then the first one leaves.
 * Proves: the hooks see exactly what each member gains and gives up; the members' assignments
 * are disjoint and cover every partition; a poll never hands out a message of a partition its
 * member no longer owns (collected messages of revoked partitions are dropped); every message
 * is processed at least once across the hand-offs; a commit refused mid-rebalance says so
 * (reason "commit_rebalance"); after the first member closes, the second
 * owns every partition and reads what follows. And a member closed while it is still joining
 * (SIGTERM during start-up) closes cleanly instead of aborting inside librdkafka 2.0.2
 * (bug #4312: close between JoinGroup and the first assignment); run in a child process so an
 * abort shows up as a failed check.
 *
 * Sessions are short (3 s) on purpose: the mock holds a rebalance open for session.timeout.ms
 * - 1 s waiting for members, and a cooperative hand-off takes two rebalances.
 */
#include <sys/wait.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

enum { N = 2000, N2 = 500, PARTS = 4 };

typedef struct member {
    const char *name;
    unsigned owned;    /* partitions per the hooks */
    unsigned gained;   /* every partition on_assigned ever reported */
    unsigned given_up; /* every partition on_revoked ever reported */
    int foreign;       /* messages of partitions not owned at the time they were returned */
} member_t;

static unsigned mask_of(const rd_kafka_topic_partition_list_t *p) {
    unsigned m = 0;
    for (int i = 0; i < p->cnt; i++)
        m |= 1u << p->elems[i].partition;
    return m;
}

static void on_assigned(void *o, const rd_kafka_topic_partition_list_t *p) {
    member_t *m = o;
    m->owned |= mask_of(p);
    m->gained |= mask_of(p);
}

static void on_revoked(void *o, const rd_kafka_topic_partition_list_t *p) {
    member_t *m = o;
    m->owned &= ~mask_of(p);
    m->given_up |= mask_of(p);
}

static unsigned assignment_mask(hvs_consumer_t *c) {
    rd_kafka_topic_partition_list_t *a = NULL;
    unsigned m = 0;
    if (rd_kafka_assignment(hvs_consumer_handle(c), &a) == 0 && a) {
        m = mask_of(a);
        rd_kafka_topic_partition_list_destroy(a);
    }
    return m;
}

static unsigned char seen[N + N2];
static int distinct;
static int other_commit_errors; /* commit failures not explained by a rebalance */

/* One poll of one member: count ids, check ownership, commit. */
static void poll_once(hvs_consumer_t *c, member_t *m) {
    static rd_kafka_message_t *msgs[256];
    size_t n;
    hvs_err_t err;
    hvs_consumer_poll_batch(c, msgs, 256, 50, &n, &err);
    for (size_t i = 0; i < n; i++) {
        if (!(m->owned & (1u << msgs[i]->partition)))
            m->foreign++;
        uint32_t id;
        memcpy(&id, msgs[i]->payload, 4);
        if (id < N + N2 && seen[id]++ == 0)
            distinct++;
    }
    /* a commit refused mid-rebalance is fine: the new owner replays the batch */
    if (hvs_consumer_commit_batch(c, msgs, n, &err) != 0 &&
        strcmp(err.reason, "commit_rebalance") != 0) {
        other_commit_errors++;
        fprintf(stderr, "commit: %s: %s\n", err.reason, err.msg);
    }
    hvs_consumer_release(msgs, n);
}

static void produce(hvs_producer_t *p, uint32_t from, uint32_t to) {
    hvs_err_t err;
    for (uint32_t i = from; i < to; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "bldg_%u", i % 50);
        HVS_REQUIRE(hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, key, (size_t)kl, &i,
                                      4, &err) == 0,
                    "send");
    }
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
}

/* Members that close 0 to 1.5 s after subscribing, one after the other in one group: one of
 * them lands between its JoinGroup response and its first assignment (the mock answers a join
 * to a group that a member just left quickly). Returns the child's exit status. */
static int close_while_joining(const char *brokers) {
    pid_t pid = fork();
    if (pid == 0) {
        const char *props[] = {"session.timeout.ms", "3000", "heartbeat.interval.ms", "300", NULL};
        hvs_kafka_conf_t gc = {.brokers = brokers,
                               .group = "g-early",
                               .client_id = "t",
                               .fetch_wait_max_ms = 10,
                               .props = props};
        const char *topics[] = {"readings.raw"};
        for (int round = 0; round < 6; round++) {
            hvs_consumer_t *c;
            hvs_err_t err;
            if (hvs_consumer_new(&gc, topics, 1, NULL, &c, &err) != 0)
                _exit(3);
            int64_t until = hvs_test_now_ms() + round * 300;
            while (hvs_test_now_ms() < until) {
                rd_kafka_message_t *m[8];
                size_t n;
                hvs_consumer_poll_batch(c, m, 8, 50, &n, &err);
                hvs_consumer_release(m, n);
            }
            if (hvs_consumer_close(c, &err) != 0)
                _exit(4);
            hvs_consumer_destroy(c);
        }
        _exit(0);
    }
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return status;
}

/* The devbroker the cases share, started by the first case that needs it. */
static hvs_test_proc_t b;

static void stop_broker(void) { hvs_test_proc_stop(&b); }

static const char *broker(void) {
    if (!b.pid) {
        HVS_REQUIRE(hvs_test_devbroker_start(&b, "--partitions 4") == 0, "devbroker");
        hvs_test_cleanup(stop_broker);
    }
    return b.addr;
}

static void test_close_while_joining(void) {
    int st = close_while_joining(broker());
    HVS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "close while joining: %s %d",
              WIFSIGNALED(st) ? "killed by signal" : "exit status",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* The cooperative hand-off: member a alone, b joins while messages flow, then a leaves. The
 * leave case needs the join first: run alone, it runs the join case's steps (and checks). */
static hvs_producer_t *p;
static member_t ma = {.name = "a"}, mb = {.name = "b"};
static hvs_consumer_t *ca, *cb;
static bool joined;

static void free_members(void) {
    hvs_consumer_destroy(cb);
    hvs_consumer_destroy(ca);
    hvs_producer_destroy(p);
}

static void join(void) {
    if (joined)
        return;
    joined = true;
    broker();
    hvs_test_cleanup(free_members);
    hvs_kafka_conf_t kc = {.brokers = b.addr, .client_id = "t"};
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    const char *props[] = {"session.timeout.ms", "3000", "heartbeat.interval.ms", "300", NULL};
    hvs_kafka_conf_t gc = {.brokers = b.addr,
                           .group = "g-coop",
                           .client_id = "t",
                           .fetch_wait_max_ms = 10,
                           .props = props};
    const char *topics[] = {"readings.raw"};
    hvs_consumer_hooks_t hooks_a = {
        .on_assigned = on_assigned, .on_revoked = on_revoked, .opaque = &ma};
    hvs_consumer_hooks_t hooks_b = {
        .on_assigned = on_assigned, .on_revoked = on_revoked, .opaque = &mb};
    HVS_REQUIRE(hvs_consumer_new(&gc, topics, 1, &hooks_a, &ca, &err) == 0, "consumer a");
    HVS_REQUIRE(hvs_consumer_wait_assignment(ca, 20000, &err) == 0, "a assigned: %s", err.msg);
    HVS_CHECK_EQ_INT(ma.owned, 0xF);
    HVS_CHECK(strcmp(rd_kafka_rebalance_protocol(hvs_consumer_handle(ca)), "COOPERATIVE") == 0,
              "protocol %s", rd_kafka_rebalance_protocol(hvs_consumer_handle(ca)));

    /* b joins while a is busy with the stream */
    produce(p, 0, N);
    HVS_REQUIRE(hvs_consumer_new(&gc, topics, 1, &hooks_b, &cb, &err) == 0, "consumer b");
    int64_t deadline = hvs_test_now_ms() + 40000;
    while ((distinct < N || mb.owned == 0 || (ma.owned | mb.owned) != 0xF) &&
           hvs_test_now_ms() < deadline) {
        poll_once(ca, &ma);
        poll_once(cb, &mb);
    }
    HVS_CHECK_EQ_INT(distinct, N);
    unsigned a = assignment_mask(ca), bm = assignment_mask(cb);
    HVS_CHECK(a && bm && (a & bm) == 0 && (a | bm) == 0xF, "disjoint cover: a %x b %x", a, bm);
    HVS_CHECK_EQ_INT(ma.owned, a); /* the hooks agree with librdkafka */
    HVS_CHECK_EQ_INT(mb.owned, bm);
    HVS_CHECK((ma.given_up & bm) == bm, "a gave up what b owns (gave up %x, b %x)", ma.given_up,
              bm);
    HVS_CHECK_EQ_INT(ma.foreign, 0);
    HVS_CHECK_EQ_INT(mb.foreign, 0);
}

static void test_second_member_joins(void) {
    if (joined)
        printf("(already ran as part of an earlier case)\n");
    join();
}

static void test_first_member_leaves(void) {
    join();
    hvs_err_t err;
    /* a leaves: its revoke hook runs, b takes over everything */
    unsigned a_had = ma.owned;
    HVS_CHECK(hvs_consumer_close(ca, &err) == 0, "close a: %s", err.msg);
    HVS_CHECK_EQ_INT(ma.owned, 0);
    HVS_CHECK((ma.given_up & a_had) == a_had, "a's revoke hook saw its partitions on close");
    produce(p, N, N + N2);
    int64_t deadline = hvs_test_now_ms() + 30000;
    while ((distinct < N + N2 || mb.owned != 0xF) && hvs_test_now_ms() < deadline)
        poll_once(cb, &mb);
    HVS_CHECK_EQ_INT(mb.owned, 0xF);
    HVS_CHECK_EQ_INT(assignment_mask(cb), 0xF);
    HVS_CHECK_EQ_INT(distinct, N + N2);
    HVS_CHECK_EQ_INT(mb.foreign, 0);

    HVS_CHECK_EQ_INT(other_commit_errors, 0);
}

static const hvs_test_case_t cases[] = {
    {"member_closed_while_joining_closes_cleanly", test_close_while_joining},
    {"joining_member_gets_disjoint_share_no_foreign_messages", test_second_member_joins},
    {"leaving_member_hands_all_partitions_over", test_first_member_leaves},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
