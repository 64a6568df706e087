/*
 * bench_aggregator - readings/s through one hvs-aggregator instance, with redis-server and
 * hvs-devbroker on the same machine: the simulator's messy stream (10 buildings x 20 flats x
 * 14 days) is put on readings.raw first, then consumed BENCH_RUNS times (default 3), each run
 * by a fresh aggregator in its own consumer group on an emptied Redis. Each run is timed end to
 * end: from its first record consumed (/metrics) to the moment the stage's stored offsets
 * (hvs:stage:aggregator:<P>, written in one transaction with the state once the batch's outputs
 * were acknowledged) reach the end of every partition - the group commit follows in the same
 * turn. Prints per run and as medians: throughput, the worker's CPU seconds per 100 k readings
 * over that interval (all its threads), its peak RSS, the batch latency (poll to commit,
 * p50/p99 from its histogram), the consume loop by phase, and Redis memory per apartment.
 * "records" are Reading messages, "readings" the sensor values inside them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define MAX_RUNS 9

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
    const char *runs_env = getenv("BENCH_RUNS");
    int runs = runs_env ? atoi(runs_env) : 3;
    if (runs < 1 || runs > MAX_RUNS)
        runs = 3;
    double rate[MAX_RUNS], cpu100k[MAX_RUNS], rss[MAX_RUNS], kb_apt[MAX_RUNS];
    int done = 0;
    for (int run = 0; run < runs; run++) {
        HVS_REQUIRE(hvs_test_redis_flushall(&redis) == 0, "FLUSHALL");
        double mem0 = hvs_test_redis_used(&redis);
        int port = hvs_test_free_port();
        char log[] = "/tmp/hvs-bench-agg-XXXXXX";
        int fd = mkstemp(log);
        close(fd);
        /* BENCH_WRAP (e.g. "perf record -e cpu-clock -g -o agg.perf") runs the worker under a
         * profiler; not an HVS_* name, which the worker would refuse. */
        const char *wrap = getenv("BENCH_WRAP");
        snprintf(cmd, sizeof cmd,
                 "env %s HVS_KAFKA_GROUP=bench-agg-%d HVS_HTTP_PORT=%d HVS_LOG_LEVEL=error %s %s",
                 env, run, port, wrap ? wrap : "", HVS_TEST_AGGREGATOR);
        HVS_REQUIRE(hvs_test_spawn(&agg, cmd, log) == 0, "aggregator");
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
        int64_t t_first = 0, t_last = 0, deadline = hvs_test_now_ms() + 300000;
        double cpu_first = 0, seen = 0;
        long long applied = 0;
        while (hvs_test_now_ms() < deadline && !t_first) {
            char *text = NULL;
            if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200 &&
                (seen = hvs_test_metric(text, "hvs_aggregator_readings_total")) > 0) {
                t_first = hvs_test_now_ms();
                cpu_first = hvs_test_cpu_seconds(agg.pid);
            }
            free(text);
            if (!t_first)
                usleep(2000);
        }
        while (t_first && hvs_test_now_ms() < deadline) {
            if ((applied = hvs_test_stage_offsets(redis.addr, "aggregator", "readings.raw")) >=
                (long long)delivered) {
                t_last = hvs_test_now_ms();
                break;
            }
            usleep(2000);
        }
        double cpu = hvs_test_cpu_seconds(agg.pid) - cpu_first;
        double peak = hvs_test_status_kb(agg.pid, "VmHWM") / 1024.0;
        char *text = NULL;
        hvs_test_http("GET", url, NULL, 0, &text, NULL, 0);
        seen = text ? hvs_test_metric(text, "hvs_aggregator_readings_total") : 0;
        HVS_CHECK(t_last > 0, "run %d: stored offsets reached %lld of %llu messages", run + 1,
                  applied, delivered);
        if (t_last > 0) {
            double s = (double)(t_last - t_first) / 1000.0;
            rate[done] = (double)values / s;
            cpu100k[done] = cpu / ((double)values / 1e5);
            rss[done] = peak;
            kb_apt[done] = (hvs_test_redis_used(&redis) - mem0) / 200 / 1e3;
            hvs_test_redis_kinds(redis.addr, "       Redis by key kind", 200, "apartment");
            printf("run %d: %llu records (%llu readings) in %.2f s = %.0f records/s, %.0f "
                   "readings/s; worker CPU %.2f s = %.3f CPU-s per 100 k readings; peak RSS "
                   "%.1f MB; Redis %.1f KB per apartment\n",
                   run + 1, delivered, values, s, (double)delivered / s, rate[done], cpu,
                   cpu100k[done], peak, kb_apt[done]);
            done++;
        }
        if (text) {
            printf("       batch (poll to commit, up to 5000 records): p50 <= %.3f s, p99 <= %.3f "
                   "s; %.0f hourly + %.0f 15-minute aggregates, %.0f revisions\n       ",
                   hvs_test_hist_quantile(text, "hvs_aggregator_batch_seconds", 0.5),
                   hvs_test_hist_quantile(text, "hvs_aggregator_batch_seconds", 0.99),
                   hvs_test_metric(text, "hvs_aggregator_windows_total{size=\"1h\"}"),
                   hvs_test_metric(text, "hvs_aggregator_windows_total{size=\"15m\"}"),
                   hvs_test_metric(text, "hvs_aggregator_revisions_total"));
            hvs_test_print_phases(text, "aggregator");
        }
        free(text);
        hvs_test_proc_stop(&agg);
        unlink(log);
    }
    if (done > 0)
        printf("hvs-aggregator, 10 x 20 x 14 days (messy), median of %d run(s), end to end (first "
               "record consumed to last offsets stored): %.0f readings/s, %.3f CPU-s per 100 k "
               "readings, peak RSS %.1f MB, Redis %.1f KB per apartment (3 days of samples and "
               "markers, 2 more of instants)\n",
               done, hvs_test_median(rate, done), hvs_test_median(cpu100k, done),
               hvs_test_median(rss, done), hvs_test_median(kb_apt, done));
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    return hvs_test_done();
}
