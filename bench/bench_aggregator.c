/*
 * bench_aggregator - readings/s through one hvs-aggregator instance, with redis-server and
 * hvs-devbroker on the same machine: the simulator's messy stream (10 buildings x 20 flats x
 * 14 days) is put on readings.raw first, then one aggregator consumes it; /metrics says how far
 * it got. Prints throughput (from its first to its last reading, the group join excluded), the
 * batch latency (poll to commit, p50/p99 from its histogram), the worker's CPU time, and the
 * Redis memory per apartment of open state at the end.
 * "records" are Reading messages, "readings" the sensor values inside them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/log.h"
#include "hvs_test.h"

static double redis_used(const hvs_test_proc_t *redis) {
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "redis-cli -p %d info memory | grep '^used_memory:' | cut -d: -f2",
             redis->port);
    hvs_test_run(cmd, NULL, 0, &out, NULL);
    double v = out ? atof(out) : 0;
    free(out);
    return v;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t redis, broker, agg;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    char env[512], cmd[2048], *out = NULL;
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10", broker.addr,
             redis.addr);
    snprintf(cmd, sizeof cmd,
             "%s %s --out kafka --seed 3 --start 2024-12-01T00:00:00Z --days 14 --buildings 10 "
             "--apartments-per-building 20 --publish-topology false 2>&1 | grep summary",
             env, HVS_TEST_SIMULATOR);
    HVS_REQUIRE(hvs_test_run(cmd, NULL, 0, &out, NULL) == 0 && out, "simulator");
    unsigned long long delivered = 0, values = 0, records = 0;
    const char *p = strstr(out, "records=");
    if (p)
        sscanf(p, "records=%llu values=%llu", &records, &values);
    p = strstr(out, "delivered=");
    if (p)
        sscanf(p, "delivered=%llu", &delivered);
    free(out);
    HVS_REQUIRE(delivered > 0, "no simulator summary");
    double mem0 = redis_used(&redis);

    int port = hvs_test_free_port();
    char log[] = "/tmp/hvs-bench-agg-XXXXXX";
    int fd = mkstemp(log);
    close(fd);
    /* BENCH_WRAP (e.g. "perf record -e cpu-clock -g -o agg.perf") runs the worker under a
     * profiler; not an HVS_* name, which the worker would refuse. */
    const char *wrap = getenv("BENCH_WRAP");
    snprintf(cmd, sizeof cmd, "env %s HVS_HTTP_PORT=%d HVS_LOG_LEVEL=error %s %s", env, port,
             wrap ? wrap : "", HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, log) == 0, "aggregator");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    int64_t t_first = 0, t_last = 0, deadline = hvs_test_now_ms() + 300000;
    double cpu_first = 0, seen = 0;
    char *text = NULL;
    while (hvs_test_now_ms() < deadline) {
        free(text);
        text = NULL;
        if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200) {
            seen = hvs_test_metric(text, "hvs_aggregator_readings_total");
            if (seen > 0 && !t_first) {
                t_first = hvs_test_now_ms();
                cpu_first = hvs_test_cpu_seconds(agg.pid);
            }
            if (seen >= (double)delivered) {
                t_last = hvs_test_now_ms();
                break;
            }
        }
        usleep(20000);
    }
    double cpu = hvs_test_cpu_seconds(agg.pid) - cpu_first;
    HVS_CHECK(t_last > 0, "aggregator consumed %.0f of %llu messages", seen, delivered);
    double s = (double)(t_last - t_first) / 1000.0;
    double share = (double)seen / (double)delivered;
    printf("hvs-aggregator, 10 x 20 x 14 days (messy): %llu records (%llu readings) in %.2f s = "
           "%.0f records/s, %.0f readings/s; worker CPU %.2f s (%.0f readings per CPU-second)\n",
           delivered, values, s, (double)delivered / s, (double)values * share / s, cpu,
           (double)values * share / cpu);
    if (text) {
        printf("batch (poll to commit, up to 5000 records): p50 <= %.3f s, p99 <= %.3f s; "
               "%.0f hourly + %.0f 15-minute aggregates, %.0f revisions\n",
               hvs_test_hist_quantile(text, "hvs_aggregator_batch_seconds", 0.5),
               hvs_test_hist_quantile(text, "hvs_aggregator_batch_seconds", 0.99),
               hvs_test_metric(text, "hvs_aggregator_windows_total{size=\"1h\"}"),
               hvs_test_metric(text, "hvs_aggregator_windows_total{size=\"15m\"}"),
               hvs_test_metric(text, "hvs_aggregator_revisions_total"));
        hvs_test_print_phases(text, "aggregator");
    }
    double mem = redis_used(&redis) - mem0;
    printf("Redis: %.1f MB of state for 200 apartments = %.1f KB per apartment (3 days of samples "
           "and markers, 2 more of instants)\n",
           mem / 1e6, mem / 200 / 1e3);
    free(text);
    hvs_test_proc_stop(&agg);
    unlink(log);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    return hvs_test_done();
}
