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

static double metric(const char *text, const char *name) {
    const char *p = text;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{')) {
            const char *sp = strchr(p, ' ');
            return sp ? atof(sp + 1) : 0;
        }
        p += n;
    }
    return -1;
}

/* Quantile q of a Prometheus histogram from its cumulative buckets (upper bound of the bucket). */
static double hist_quantile(const char *text, const char *name, double q) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s_bucket{le=\"", name);
    double total = -1;
    char cnt[128];
    snprintf(cnt, sizeof cnt, "%s_count", name);
    total = metric(text, cnt);
    if (total <= 0)
        return -1;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        double le = atof(p + strlen(prefix));
        const char *sp = strchr(p, '}');
        double c = sp ? atof(sp + 2) : 0;
        if (c >= q * total)
            return le;
    }
    return -1;
}

static double redis_used(const hvs_test_proc_t *redis) {
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "redis-cli -p %d info memory | grep '^used_memory:' | cut -d: -f2",
             redis->port);
    hvs_test_run(cmd, NULL, 0, &out, NULL);
    double v = out ? atof(out) : 0;
    free(out);
    return v;
}

static double cpu_seconds(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t redis, broker, agg;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 && hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    char env[512], cmd[2048], *out = NULL;
    snprintf(env, sizeof env, "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10",
             broker.addr, redis.addr);
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
            seen = metric(text, "hvs_aggregator_readings_total");
            if (seen > 0 && !t_first) {
                t_first = hvs_test_now_ms();
                cpu_first = cpu_seconds(agg.pid);
            }
            if (seen >= (double)delivered) {
                t_last = hvs_test_now_ms();
                break;
            }
        }
        usleep(20000);
    }
    double cpu = cpu_seconds(agg.pid) - cpu_first;
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
               hist_quantile(text, "hvs_aggregator_batch_seconds", 0.5),
               hist_quantile(text, "hvs_aggregator_batch_seconds", 0.99),
               metric(text, "hvs_aggregator_windows_total{size=\"1h\"}"),
               metric(text, "hvs_aggregator_windows_total{size=\"15m\"}"),
               metric(text, "hvs_aggregator_revisions_total"));
        static const char *const phases[] = {"poll", "process", "publish_wait", "state_write",
                                             "commit"};
        printf("consume loop by phase (s):");
        for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "hvs_aggregator_phase_seconds_total{phase=\"%s\"}",
                     phases[i]);
            printf(" %s %.2f", phases[i], metric(text, name));
        }
        printf("\n");
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
