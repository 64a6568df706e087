/*
 * Produce -> consume of 300-byte messages on hvs-devbroker, through the common kafka layer
 * (idempotent producer with delivery tracking; consumer with per-batch synchronous commits) vs
 * bare librdkafka (plain producer, consumer without commits), same broker, same topic layout.
 * Prints msgs/s and MB/s for each and the ratio, then end-to-end latency (p50/p99) of the
 * common layer at a steady 20k msgs/s.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define N 200000
#define SIZE 300

static char g_brokers[128];

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void payload(char *buf, int i) {
    /* compressible like real records, varying like them */
    int n = snprintf(buf, SIZE, "{\"building\":\"bldg_%d\",\"apartment\":\"apt_%d\",\"seq\":%d,",
                     i % 97, i % 3000, i);
    for (int k = n; k < SIZE; k++)
        buf[k] = (char)('a' + (k * 7 + i) % 26);
}

static double produce_common(const char *topic) {
    hvs_kafka_conf_t kc = {.brokers = g_brokers, .client_id = "bench"};
    hvs_producer_t *p;
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer");
    char buf[SIZE], key[16];
    int64_t t0 = now_us();
    for (int i = 0; i < N; i++) {
        payload(buf, i);
        int kl = snprintf(key, sizeof key, "b%d", i % 97);
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, (size_t)kl, buf, SIZE, &err);
        if ((i & 1023) == 0)
            hvs_producer_poll(p);
    }
    HVS_REQUIRE(hvs_producer_flush(p, 60000, &err) == 0, "flush: %s", err.msg);
    double s = (double)(now_us() - t0) / 1e6;
    HVS_CHECK_EQ_INT(hvs_producer_delivered(p), N);
    hvs_producer_destroy(p);
    return s;
}

static double produce_bare(const char *topic) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const props[] = {"bootstrap.servers",
                                 g_brokers,
                                 "linger.ms",
                                 "5",
                                 "compression.type",
                                 "lz4",
                                 "batch.num.messages",
                                 "10000",
                                 "queue.buffering.max.messages",
                                 "1000000",
                                 NULL};
    hvs_err_t err;
    HVS_REQUIRE(hvs_kafka_conf_set(conf, props, &err) == 0, "%s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    HVS_REQUIRE(rk != NULL, "producer: %s", errstr);
    char buf[SIZE], key[16];
    int64_t t0 = now_us();
    for (int i = 0; i < N; i++) {
        payload(buf, i);
        int kl = snprintf(key, sizeof key, "b%d", i % 97);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)kl),
                                 RD_KAFKA_V_VALUE(buf, SIZE),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    double s = (double)(now_us() - t0) / 1e6;
    rd_kafka_destroy(rk);
    return s;
}

/* Seconds from the first to the last of N messages. */
static double consume_common(const char *topic) {
    hvs_kafka_conf_t kc = {.brokers = g_brokers,
                           .group = "bench-common",
                           .client_id = "bench",
                           .fetch_wait_max_ms = 10};
    const char *topics[] = {topic};
    hvs_consumer_t *c;
    hvs_err_t err;
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer");
    static rd_kafka_message_t *msgs[10000];
    long got = 0;
    int64_t t0 = 0;
    int64_t deadline = hvs_test_now_ms() + 120000;
    while (got < N && hvs_test_now_ms() < deadline) {
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 10000, 100, &n, &err);
        if (n && !t0)
            t0 = now_us();
        got += (long)n;
        if (n)
            hvs_consumer_commit_batch(c, msgs, n, &err);
        hvs_consumer_release(msgs, n);
    }
    double s = (double)(now_us() - t0) / 1e6;
    HVS_CHECK_EQ_INT(got, N);
    hvs_consumer_destroy(c);
    return s;
}

static double consume_bare(const char *topic) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const props[] = {"bootstrap.servers",
                                 g_brokers,
                                 "group.id",
                                 "bench-bare",
                                 "auto.offset.reset",
                                 "earliest",
                                 "enable.auto.commit",
                                 "false",
                                 "fetch.wait.max.ms",
                                 "10",
                                 "queued.min.messages",
                                 "100000",
                                 NULL};
    hvs_err_t err;
    HVS_REQUIRE(hvs_kafka_conf_set(conf, props, &err) == 0, "%s", err.msg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    HVS_REQUIRE(rk != NULL, "consumer: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long got = 0;
    int64_t t0 = 0;
    int64_t deadline = hvs_test_now_ms() + 120000;
    while (got < N && hvs_test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (!t0)
                t0 = now_us();
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    double s = (double)(now_us() - t0) / 1e6;
    HVS_CHECK_EQ_INT(got, N);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return s;
}

/* Latency: a producer at a steady rate, the common consumer timing each message. */
static atomic_int g_lat_done;
static void *lat_producer(void *arg) {
    (void)arg;
    hvs_kafka_conf_t kc = {.brokers = g_brokers,
                           .client_id = "bench",
                           .props = (const char *const[]){"linger.ms", "1", NULL}};
    hvs_producer_t *p;
    hvs_err_t err;
    if (hvs_producer_new(&kc, &p, &err) != 0)
        return NULL;
    int64_t start = now_us();
    for (int i = 0; i < 40000 && !atomic_load(&g_lat_done); i++) {
        int64_t due = start + (int64_t)i * 50; /* 20k msgs/s */
        while (now_us() < due)
            ;
        char buf[SIZE];
        payload(buf, i);
        int64_t t = now_us();
        memcpy(buf, &t, sizeof t);
        hvs_producer_send(p, "bench.latency", RD_KAFKA_PARTITION_UA, "k", 1, buf, SIZE, &err);
        hvs_producer_poll(p);
    }
    hvs_producer_flush(p, 10000, &err);
    hvs_producer_destroy(p);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t broker;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    snprintf(g_brokers, sizeof g_brokers, "%s", broker.addr);
    char reply[128];
    hvs_test_devbroker_control(&broker, "topic create bench.common 8", reply, sizeof reply);
    hvs_test_devbroker_control(&broker, "topic create bench.bare 8", reply, sizeof reply);
    hvs_test_devbroker_control(&broker, "topic create bench.latency 1", reply, sizeof reply);

    double pc = produce_common("bench.common"), pb = produce_bare("bench.bare");
    double cc = consume_common("bench.common"), cb = consume_bare("bench.bare");
    double mb = (double)N * SIZE / 1e6;
    printf("bench_kafka: %d messages of %d bytes, 8 partitions, hvs-devbroker\n", N, SIZE);
    printf(
        "  produce  common %9.0f msgs/s %6.1f MB/s | bare %9.0f msgs/s %6.1f MB/s | ratio %.0f%%\n",
        N / pc, mb / pc, N / pb, mb / pb, 100 * pb / pc);
    printf(
        "  consume  common %9.0f msgs/s %6.1f MB/s | bare %9.0f msgs/s %6.1f MB/s | ratio %.0f%%\n",
        N / cc, mb / cc, N / cb, mb / cb, 100 * cb / cc);

    /* latency */
    hvs_kafka_conf_t kc = {.brokers = g_brokers,
                           .group = "bench-lat",
                           .client_id = "bench",
                           .fetch_wait_max_ms = 10,
                           .props = (const char *const[]){"auto.offset.reset", "latest", NULL}};
    const char *topics[] = {"bench.latency"};
    hvs_consumer_t *c;
    hvs_err_t err;
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer");
    HVS_REQUIRE(hvs_consumer_wait_assignment(c, 20000, &err) == 0, "assignment");
    pthread_t t;
    pthread_create(&t, NULL, lat_producer, NULL);
    static int64_t lat[40000];
    int nlat = 0;
    int64_t deadline = hvs_test_now_ms() + 30000;
    static rd_kafka_message_t *msgs[1000];
    while (nlat < 40000 && hvs_test_now_ms() < deadline) {
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 1000, 100, &n, &err);
        int64_t now = now_us();
        for (size_t i = 0; i < n && nlat < 40000; i++) {
            int64_t sent;
            memcpy(&sent, msgs[i]->payload, sizeof sent);
            lat[nlat++] = now - sent;
        }
        hvs_consumer_commit_batch(c, msgs, n, &err);
        hvs_consumer_release(msgs, n);
    }
    atomic_store(&g_lat_done, 1);
    pthread_join(t, NULL);
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp_i64);
    if (nlat > 0)
        printf("  latency  common layer at 20k msgs/s, produce -> consumed incl. commit per batch: "
               "p50 %.1f ms, p99 %.1f ms (%d messages)\n",
               lat[nlat / 2] / 1000.0, lat[nlat * 99 / 100] / 1000.0, nlat);
    HVS_CHECK(nlat > 30000, "latency samples %d", nlat);
    hvs_consumer_destroy(c);
    hvs_test_proc_stop(&broker);
    return hvs_test_done();
}
