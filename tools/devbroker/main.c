/*
 * hvs-devbroker: librdkafka's mock Kafka cluster in its own process, on loopback.
 *
 * IN-MEMORY, FOR DEVELOPMENT AND TESTS ONLY. It speaks the real Kafka protocol, so the workers
 * and tools run unchanged against it, but it is not Kafka (librdkafka 2.0.2 rdkafka_mock.c):
 *  - each partition keeps only ~5 MiB (or 100 k batches); older data drops silently;
 *  - no Admin API (CreateTopics times out): this process creates the pipeline's topics itself,
 *    from the same table `hvsctl topics create` uses;
 *  - no log compaction; fetches are not woken by new data (set HVS_KAFKA_FETCH_WAIT_MAX_MS=10);
 *    a group's first join takes ~3 s.
 *
 * Output: line 1 on stdout is the bootstrap address "127.0.0.1:PORT", line 2 is
 * "control 127.0.0.1:PORT" (the fault-injection channel, see control.c); then it runs until
 * SIGTERM or SIGINT and exits 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devbroker.h"
#include "hvs/app.h"
#include "hvs/log.h"
#include "hvs/topics.h"

static const char *const usage =
    "Usage: hvs-devbroker [--port N] [--control-port N] [--brokers N] [--partitions N]\n"
    "\n"
    "In-memory Kafka (librdkafka's mock cluster) on 127.0.0.1, for development and tests only.\n"
    "Prints the bootstrap address as the first line on stdout and \"control ADDR\" as the\n"
    "second, creates every topic of the pipeline, and runs until SIGTERM/SIGINT.\n"
    "\n"
    "  --port N          bootstrap port (0 = any free port; default 0). A fixed port is served\n"
    "                    by a forwarder to the mock broker, whose own port the mock chooses.\n"
    "  --control-port N  fault-injection channel port (0 = any; default 0). One command per\n"
    "                    line, answered \"ok ...\" or \"error ...\":\n"
    "                      ping | broker down ID | broker up ID | rtt ID MS\n"
    "                      errors APIKEY COUNT ERRNAME   (e.g. errors 0 5 NOT_LEADER_FOR_PARTITION)\n"
    "                      topic create NAME PARTITIONS\n"
    "  --brokers N       mock brokers (default 1)\n"
    "  --partitions N    partitions of building-keyed topics (default HVS_TOPIC_PARTITIONS)\n"
    "\n"
    "Limits of the mock: ~5 MiB kept per partition, no Admin API, no compaction, fetches not\n"
    "woken by new data (use HVS_KAFKA_FETCH_WAIT_MAX_MS=10), ~3 s for a group's first join.";

/* Set by the main thread once SIGTERM/SIGINT arrived; the control and forwarder threads poll it. */
static atomic_int g_stop;
int devbroker_stopping(void) { return atomic_load(&g_stop); }

static int parse_int_flag(const char *name, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "hvs-devbroker: %s needs a number in [%ld, %ld]\n", name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv) {
    long port = 0, control_port = 0, brokers = 1, partitions = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0)
            continue; /* hvs_app_init answers these */
        else if (strcmp(a, "--port") == 0)
            rc = parse_int_flag(a, v, 0, 65535, &port), i++;
        else if (strcmp(a, "--control-port") == 0)
            rc = parse_int_flag(a, v, 0, 65535, &control_port), i++;
        else if (strcmp(a, "--brokers") == 0)
            rc = parse_int_flag(a, v, 1, 9, &brokers), i++;
        else if (strcmp(a, "--partitions") == 0)
            rc = parse_int_flag(a, v, 1, HVS_MAX_PARTITIONS, &partitions), i++;
        else if (strcmp(a, "--config") == 0)
            i++;
        else {
            fprintf(stderr, "hvs-devbroker: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (rc)
            return 2;
    }
    hvs_app_t app;
    hvs_app_spec_t spec = {.worker = "devbroker",
                           .summary = "in-memory Kafka for development and tests",
                           .usage = usage,
                           .no_http = true,
                           .quiet = true,
                           .log_stderr = true}; /* stdout is for the two address lines */
    hvs_err_t err;
    int rc = hvs_app_init(&app, &spec, argc, argv, &err);
    if (rc != 0) {
        hvs_app_fini(&app);
        return rc > 0 ? 0 : 1;
    }
    /* stdout carries the two address lines; logs go to stderr. */
    hvs_log_level_t level = HVS_LOG_INFO;
    hvs_log_level_parse(app.cfg.log_level, &level);
    hvs_log_init("devbroker", level, stderr);
    if (partitions > 0 && hvs_topics_configure(NULL, (int)partitions, &err) != 0) {
        hvs_log_error("devbroker", "%s", err.msg);
        hvs_app_fini(&app);
        return 1;
    }

    /* Block the stop signals before any thread exists (the mock cluster's thread does not block
     * them itself), so every thread inherits the mask and only sigwait below receives them. */
    sigset_t stopset;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopset, NULL);
    signal(SIGPIPE, SIG_IGN);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        hvs_log_error("devbroker", "librdkafka property log_level: %s", errstr);
        rd_kafka_conf_destroy(conf);
        hvs_app_fini(&app);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        hvs_log_error("devbroker", "cannot create the librdkafka handle: %s", errstr);
        hvs_app_fini(&app);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mc) {
        hvs_log_error("devbroker", "cannot create the mock cluster");
        rd_kafka_destroy(rk);
        hvs_app_fini(&app);
        return 1;
    }
    size_t ntopics;
    const hvs_topic_t *topics = hvs_topics_all(&ntopics);
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[i].name,
                                                           hvs_topic_partitions(&topics[i]),
                                                           (int)brokers < 3 ? (int)brokers : 3);
        if (e)
            hvs_log_error("devbroker", "create topic %s: %s", topics[i].name, rd_kafka_err2str(e));
    }

    /* The mock's own bootstrap list, "127.0.0.1:P1,127.0.0.1:P2,..." */
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    char advertised[512];
    snprintf(advertised, sizeof advertised, "%s", bootstraps);
    pthread_t fwd_thread = 0, ctl_thread = 0;
    int fwd_fd = -1, ctl_fd = -1;
    uint16_t bound;
    if (port > 0) {
        const char *colon = strchr(bootstraps, ':');
        uint16_t first = colon ? (uint16_t)atoi(colon + 1) : 0;
        if (devbroker_listen((uint16_t)port, &fwd_fd, &bound, &err) != 0 ||
            forward_start(fwd_fd, first, &fwd_thread, &err) != 0) {
            hvs_log_error("devbroker", "%s", err.msg);
            return 1;
        }
        snprintf(advertised, sizeof advertised, "127.0.0.1:%u", (unsigned)bound);
    }
    if (devbroker_listen((uint16_t)control_port, &ctl_fd, &bound, &err) != 0 ||
        control_start(mc, ctl_fd, &ctl_thread, &err) != 0) {
        hvs_log_error("devbroker", "%s", err.msg);
        return 1;
    }
    printf("%s\ncontrol 127.0.0.1:%u\n", advertised, (unsigned)bound);
    fflush(stdout);
    hvs_log_fields(HVS_LOG_INFO, "devbroker", "mock Kafka cluster up (in-memory, dev/test only)",
                   HVS_LFS("bootstrap", advertised), HVS_LFS("brokers", bootstraps),
                   HVS_LFI("topics", (long long)ntopics), HVS_LFI("control_port", bound));

    int sig = 0;
    while (sigwait(&stopset, &sig) != 0)
        ;
    atomic_store(&g_stop, 1);
    hvs_log_fields(HVS_LOG_INFO, "devbroker", "stopping", HVS_LFS("signal", strsignal(sig)));
    if (ctl_thread)
        pthread_join(ctl_thread, NULL);
    if (fwd_thread)
        pthread_join(fwd_thread, NULL);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    hvs_app_fini(&app);
    return 0;
}
