/*
 * test_agg_history_it - a year of history ingested while hvs-aggregator runs with a 1 s idle
 * timeout (issue 18): the backfill arrives in bursts with pauses longer than the timeout, so the
 * partition goes idle between them and its watermark advances by wall time. The advance starts
 * from the partition's own newest event and waits while readings are still to be read
 * (time.h), so nothing of the backfill may come too late: no dead letter, every hour of 2024
 * published, and the year's energy equal to the counter difference exactly.
 * One building meter read hourly (building_heat, interval learned), loaded with
 * `hvsctl topology load`, readings with `hvsctl ingest`, hours read back from aggregates.hourly.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg_topics.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define HOUR (3600 * 1000LL)
#define T0 1704067200000LL /* 2024-01-01T00:00:00Z */
#define HOURS (366 * 24)   /* 2024 */
#define BURSTS 6

static hvs_test_proc_t redis, broker, agg;
static char env[512], logpath[256];
static double counter[HOURS + 1];

static void teardown(void) {
    hvs_test_proc_stop(&agg);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_done() == 0)
        unlink(logpath);
    else
        fprintf(stderr, "aggregator log: %s\n", logpath);
}

static void run_hvsctl(const char *args, const char *input, size_t len) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "env %s %s %s 2>&1", env, HVS_TEST_HVSCTL, args);
    int rc = hvs_test_run(cmd, input, len, &out, NULL);
    HVS_REQUIRE(rc == 0, "hvsctl %s: %s", args, out ? out : "");
    free(out);
}

/* Readings [from, to] of the meter as hvsctl ingest's JSON lines. */
static char *readings(int from, int to, size_t *len) {
    size_t cap = (size_t)(to - from + 1) * 200 + 1;
    char *text = malloc(cap);
    HVS_REQUIRE(text, "oom");
    *len = 0;
    for (int i = from; i <= to; i++) {
        char ts[40];
        hvs_time_format_iso8601(T0 + i * HOUR, ts, sizeof ts);
        *len += (size_t)snprintf(text + *len, cap - *len,
                                 "{\"timestamp_str\":\"%s\",\"building_id\":\"hist_b\","
                                 "\"apartment_id\":\"main\",\"readings\":[{\"sensor_type\":"
                                 "\"heating_energy_kwh\",\"value\":%.17g}]}\n",
                                 ts, counter[i]);
    }
    return text;
}

static void test_year_with_short_idle_timeout(void) {
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-agg-history-%d.log", (int)getpid());
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    hvs_test_cleanup(teardown);
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1",
             broker.addr, redis.addr);
    /* whole kWh, a seasonal swing (winter ~400 kW, summer ~20 kW): sums exact in doubles */
    counter[0] = 250000;
    for (int i = 1; i <= HOURS; i++)
        counter[i] = counter[i - 1] + 210 + (int)(190 * cos(i * 2 * M_PI / HOURS));
    char topo[128];
    snprintf(topo, sizeof topo, "/tmp/hvs-test-agg-history-%d.jsonl", (int)getpid());
    FILE *f = fopen(topo, "w");
    HVS_REQUIRE(f, "write %s", topo);
    fputs("{\"building_id\":\"hist_b\",\"archetype\":\"old_uninsulated\",\"commissioning_date\":"
          "\"2000-01-01T00:00:00Z\",\"latitude\":47.4,\"longitude\":8.5,\"heated_area_m2\":"
          "4000,\"holiday_region\":\"CH-ZH\",\"apartments\":[{\"apartment_id\":\"main\"}],"
          "\"meter\":{\"kind\":\"building_heat\",\"unit\":\"kWh\",\"max_kw\":null,"
          "\"interval_s\":null}}\n",
          f);
    fclose(f);
    char args[256];
    snprintf(args, sizeof args, "topology load %s", topo);
    run_hvsctl(args, NULL, 0);
    unlink(topo);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env %s HVS_KAFKA_GROUP=history %s --idle-timeout 1s --batch 500",
             env, HVS_TEST_AGGREGATOR);
    HVS_REQUIRE(hvs_test_spawn(&agg, cmd, logpath) == 0, "spawn aggregator");
    /* bursts of two months, each followed by a pause of 1.6 s: idle beyond the timeout */
    for (int b = 0; b < BURSTS; b++) {
        int from = b * HOURS / BURSTS + (b > 0), to = (b + 1) * HOURS / BURSTS;
        size_t len;
        char *text = readings(from, to, &len);
        run_hvsctl("ingest -", text, len);
        free(text);
        usleep(1600000);
    }
    /* every hour but the last two is closed by the readings after it */
    json_t *hourly = NULL, *final = NULL;
    char key[128];
    snprintf(key, sizeof key, "hist_b/-/%lld/%lld", (long long)HOUR,
             (long long)(T0 + (HOURS - 2) * HOUR));
    int64_t deadline = hvs_test_now_ms() + 60000;
    for (;;) {
        json_decref(hourly);
        json_decref(final);
        hourly = hvs_test_tail_json(env, "aggregates.hourly", NULL);
        final = json_object();
        if (hourly)
            agg_test_final(final, hourly);
        if (json_object_get(final, key) || hvs_test_now_ms() > deadline)
            break;
        usleep(500000);
    }
    HVS_CHECK(json_object_get(final, key) != NULL, "the year's hours out within 60 s");
    double sum = 0;
    int missing = 0, complete = 0;
    for (int i = 0; i < HOURS - 1; i++) {
        snprintf(key, sizeof key, "hist_b/-/%lld/%lld", (long long)HOUR,
                 (long long)(T0 + i * HOUR));
        json_t *w = json_object_get(final, key);
        json_t *h = json_object_get(w, "heating_kwh");
        if (!json_is_number(h)) {
            missing++;
            continue;
        }
        sum += json_number_value(h);
        complete += hvs_test_streq(json_string_value(json_object_get(w, "quality")), "COMPLETE");
    }
    printf("%d hours: %d missing, %d complete, %.0f kWh (counter difference %.0f)\n", HOURS - 1,
           missing, complete, sum, counter[HOURS - 1] - counter[0]);
    HVS_CHECK_EQ_INT(missing, 0);
    HVS_CHECK_EQ_INT(complete, HOURS - 1);
    HVS_CHECK(sum == counter[HOURS - 1] - counter[0], "%.17g kWh counted, %.17g read", sum,
              counter[HOURS - 1] - counter[0]);
    json_t *dlq = hvs_test_tail_json(env, "readings.dlq", NULL);
    HVS_CHECK(dlq && json_array_size(dlq) == 0, "dead letters (too_late): %zu",
              dlq ? json_array_size(dlq) : (size_t)-1);
    json_decref(dlq);
    json_decref(hourly);
    json_decref(final);
}

static const hvs_test_case_t cases[] = {
    {"year_with_short_idle_timeout", test_year_with_short_idle_timeout},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
