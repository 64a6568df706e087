/*
 * test_agg_shutdown_it - the shutdown bound (HVS_SHUTDOWN_TIMEOUT, app.h) on a real worker: the
 * aggregator works through the simulator's stream on a real hvs-devbroker, the broker is killed
 * (kill -9) while outputs are in flight, the aggregator gets SIGTERM. It must be gone within the
 * bound (2 s here) plus a few seconds, exit non-zero, and say in one log line what the broker
 * never acknowledged. Without the bound it waited its flush timeout (30 s), then 10 s more for
 * the producer, then the close.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvs_test.h"

#define BOUND_MS 2000
#define SLACK_MS 3000

static hvs_test_proc_t redis, broker, agg;
static char logpath[256];

static void teardown(void) {
    hvs_test_proc_kill(&agg);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_done() == 0)
        unlink(logpath);
    else
        fprintf(stderr, "aggregator log: %s\n", logpath);
}

static char *read_log(void) {
    FILE *f = fopen(logpath, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* The first log line holding `needle`, parsed (NULL when none). */
static json_t *log_line(const char *text, const char *needle) {
    const char *at = strstr(text, needle);
    if (!at)
        return NULL;
    while (at > text && at[-1] != '\n')
        at--;
    const char *end = strchr(at, '\n');
    return json_loadb(at, end ? (size_t)(end - at) : strlen(at), 0, NULL);
}

static void test_sigterm_with_broker_gone(void) {
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-agg-shutdown-%d.log", (int)getpid());
    unlink(logpath);
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_test_cleanup(teardown);
    char env[512], cmd[2048];
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1",
             broker.addr, redis.addr);
    /* ~200 000 readings: seconds of batches of 500 for the aggregator (40 000 were enough while
     * every flush waited ~40 ms on the devbroker's Nagle; now it is through them in a second) */
    snprintf(cmd, sizeof cmd,
             "env %s %s --out kafka --clean --start 2024-10-01T00:00:00Z --days 10 "
             "--buildings 15 --speed max >/dev/null 2>&1",
             env, HVS_TEST_SIMULATOR);
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, NULL, NULL) == 0, "simulator");
    snprintf(cmd, sizeof cmd, "env %s HVS_SHUTDOWN_TIMEOUT=%dms %s --batch 500 --idle-timeout 1h",
             env, BOUND_MS, HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn aggregator");
    /* working: assigned, and some batches through */
    int64_t deadline = hvs_test_now_ms() + 30000;
    bool assigned = false;
    while (!assigned && hvs_test_now_ms() < deadline) {
        usleep(100000);
        char *text = read_log();
        assigned = strstr(text, "partitions assigned") != NULL;
        free(text);
    }
    HVS_REQUIRE(assigned, "the aggregator never got its partitions");
    usleep(300000);
    int status = -1;
    HVS_REQUIRE(!hvs_test_proc_exited(&agg, &status), "the aggregator exited early (%d)", status);
    /* the broker gone for good, mid-stream, then the stop */
    hvs_test_proc_kill(&broker);
    usleep(300000);
    int64_t t0 = hvs_test_now_ms();
    kill(agg.pid, SIGTERM);
    bool exited = false;
    while (!(exited = hvs_test_proc_exited(&agg, &status)) &&
           hvs_test_now_ms() - t0 < BOUND_MS + SLACK_MS + 60000)
        usleep(50000);
    int64_t took = hvs_test_now_ms() - t0;
    printf("shutdown took %lld ms (bound %d ms), exit status %d\n", (long long)took, BOUND_MS,
           status);
    HVS_CHECK(exited, "still running %lld ms after SIGTERM", (long long)took);
    HVS_CHECK(took <= BOUND_MS + SLACK_MS, "shutdown took %lld ms, bound %d ms + %d ms",
              (long long)took, BOUND_MS, SLACK_MS);
    HVS_CHECK(exited && status != 0, "exit status %d: an incomplete shutdown must not exit 0",
              status);
    char *text = read_log();
    json_t *line = log_line(text, "shutdown incomplete");
    HVS_CHECK(line != NULL, "no \"shutdown incomplete\" line in the log");
    if (line) {
        long long undelivered = json_integer_value(json_object_get(line, "undelivered_messages"));
        long long uncommitted = json_integer_value(json_object_get(line, "uncommitted_messages"));
        printf("undelivered %lld, uncommitted %lld from %s\n", undelivered, uncommitted,
               json_string_value(json_object_get(line, "uncommitted_from")));
        HVS_CHECK(undelivered + uncommitted > 0, "the line names no unacknowledged message");
        HVS_CHECK(json_integer_value(json_object_get(line, "shutdown_timeout_ms")) == BOUND_MS,
                  "the bound in the line");
        json_decref(line);
    }
    free(text);
}

static const hvs_test_case_t cases[] = {
    {"sigterm_with_broker_gone", test_sigterm_with_broker_gone},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
