/*
 * test_agg_backfill_order_it - event time is per building (issue 18): history onboarded one
 * building after the other must give what the same readings give interleaved in time order.
 *
 * One partition (hvs-devbroker --partitions 1), so every building shares it. Three buildings
 * s1 s2 s3 get their hourly heat counter sent one after the other, each through its own
 * `hvsctl ingest` (8, 6 and 5 days: each building's history starts far behind where the one before
 * ended, beyond the 48 h lateness, which a partition-wide watermark refused as too_late). After
 * 3 days of s3 the aggregator is killed (SIGKILL) and restarted: the rest of s3 is 5 days behind
 * s1's newest reading, so it is accepted only if s3's own watermark was restored from Redis.
 * Then i1 i2 i3, the same counters, arrive interleaved in time order.
 * Asserted: no dead letter (but for one reading sent last that is too late for its own
 * building); for every building each hour that its readings close holds
 * exactly the counter difference computed here (whole kWh: exact in doubles) and is COMPLETE;
 * s<k>'s hours equal i<k>'s field for field (published values, revisions aside).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg_topics.h"
#include "hvs/time.h"
#include "hvs_test.h"

#define HOUR (3600 * 1000LL)
#define T0 1704067200000LL /* 2024-01-01T00:00:00Z */
#define NB 3
static const int hours[NB] = {8 * 24, 6 * 24, 5 * 24}; /* readings at hours 0..hours[k] */
#define SPLIT (3 * 24) /* s3 is sent up to here, then the aggregator is killed */

static hvs_test_proc_t redis, broker, agg;
static char env[512], logpath[256], aggcmd[1024];
static double counter[NB][8 * 24 + 1];

static void teardown(void) {
    hvs_test_proc_stop(&agg);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    if (hvs_test_done() == 0)
        unlink(logpath);
    else
        fprintf(stderr, "aggregator log: %s\n", logpath);
}

static void ingest(const char *text, size_t len) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "env %s %s ingest - 2>&1", env, HVS_TEST_HVSCTL);
    int rc = hvs_test_run(cmd, text, len, &out, NULL);
    HVS_REQUIRE(rc == 0, "hvsctl ingest: %s", out ? out : "");
    free(out);
}

typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

/* Reading i of building k's counter, as building `id`, appended as a JSON line. */
static void line(text_t *t, const char *id, int k, int i) {
    if (t->cap - t->len < 256) {
        t->cap = t->cap ? t->cap * 2 : 1 << 16;
        t->p = realloc(t->p, t->cap);
        HVS_REQUIRE(t->p, "oom");
    }
    char ts[40];
    hvs_time_format_iso8601(T0 + i * HOUR, ts, sizeof ts);
    t->len += (size_t)snprintf(t->p + t->len, t->cap - t->len,
                               "{\"timestamp_str\":\"%s\",\"building_id\":\"%s\","
                               "\"apartment_id\":\"main\",\"readings\":[{\"sensor_type\":"
                               "\"heating_energy_kwh\",\"value\":%.17g}]}\n",
                               ts, id, counter[k][i]);
}

static void send_range(const char *id, int k, int from, int to) {
    text_t t = {0};
    for (int i = from; i <= to; i++)
        line(&t, id, k, i);
    ingest(t.p, t.len);
    free(t.p);
}

static void spawn(void) {
    HVS_REQUIRE(hvs_test_spawn(&agg, aggcmd, logpath) == 0, "spawn aggregator");
}

/* The final aggregates, once the hour `upto` (hours from T0) of building `id` is out. */
static json_t *wait_for(const char *id, int upto) {
    char key[128];
    snprintf(key, sizeof key, "%s/-/%lld/%lld", id, (long long)HOUR, (long long)(T0 + upto * HOUR));
    int64_t deadline = hvs_test_now_ms() + 60000;
    json_t *final = NULL;
    for (;;) {
        json_decref(final);
        json_t *hourly = hvs_test_tail_json(env, "aggregates.hourly", NULL);
        final = json_object();
        if (hourly)
            agg_test_final(final, hourly);
        json_decref(hourly);
        if (json_object_get(final, key) || hvs_test_now_ms() > deadline)
            break;
        usleep(200000);
    }
    HVS_REQUIRE(json_object_get(final, key) != NULL, "hour %d of %s out within 60 s", upto, id);
    return final;
}

static void test_buildings_one_after_another(void) {
    snprintf(logpath, sizeof logpath, "/tmp/hvs-test-agg-backfill-%d.log", (int)getpid());
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, "--partitions 1") == 0,
                "services");
    hvs_test_cleanup(teardown);
    snprintf(env, sizeof env,
             "HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 "
             "HVS_HTTP_PORT=-1",
             broker.addr, redis.addr);
    /* 1-5 kWh an hour (at most what an apartment meter delivers in one 15-minute interval at
     * 20 kW: alive, COMPLETE), a different pattern per building */
    for (int k = 0; k < NB; k++) {
        counter[k][0] = 1000 * (k + 1);
        for (int i = 1; i <= hours[k]; i++)
            counter[k][i] = counter[k][i - 1] + 1 + (i * 7 + k * 3) % 5;
    }
    /* a 1 s idle timeout: buildings go idle between the ingests (their watermarks advance by
     * seconds, never into another building's history); a 3 s session timeout: the restarted
     * member gets the killed one's partition 3 s after the kill (default 10 s) */
    snprintf(aggcmd, sizeof aggcmd,
             "env %s HVS_KAFKA_GROUP=backfill HVS_KAFKA_SESSION_TIMEOUT_MS=3000 %s "
             "--idle-timeout 1s --batch 500",
             env, HVS_TEST_AGGREGATOR);
    spawn();

    /* one building after the other; s3 split by a kill -9 */
    send_range("s1", 0, 0, hours[0]);
    send_range("s2", 1, 0, hours[1]);
    send_range("s3", 2, 0, SPLIT);
    json_decref(wait_for("s3", SPLIT - 2));
    hvs_test_proc_kill(&agg);
    spawn();
    send_range("s3", 2, SPLIT + 1, hours[2]);

    /* the same counters interleaved in time order */
    text_t t = {0};
    for (int i = 0; i <= hours[0]; i++)
        for (int k = 0; k < NB; k++)
            if (i <= hours[k]) {
                char id[8];
                snprintf(id, sizeof id, "i%d", k + 1);
                line(&t, id, k, i);
            }
    ingest(t.p, t.len);
    free(t.p);

    json_decref(wait_for("s3", hours[2] - 2));
    json_t *final = wait_for("i1", hours[0] - 2);
    for (int k = 0; k < NB; k++) {
        /* hours 0 .. hours[k] - 2 are closed by the building's own readings (the last reading
         * at hours[k] is the watermark; the hour ending there waits for the hourly grace) */
        int missing = 0, complete = 0, differ = 0;
        double sum[2] = {0, 0};
        for (int i = 0; i <= hours[k] - 2; i++) {
            json_t *w[2];
            for (int v = 0; v < 2; v++) {
                char key[128];
                snprintf(key, sizeof key, "%c%d/-/%lld/%lld", v ? 'i' : 's', k + 1, (long long)HOUR,
                         (long long)(T0 + i * HOUR));
                w[v] = json_object_get(final, key);
                json_t *h = json_object_get(w[v], "heating_kwh");
                if (!json_is_number(h)) {
                    missing++;
                    continue;
                }
                double want = counter[k][i + 1] - counter[k][i];
                if (json_number_value(h) != want && differ++ < 3)
                    fprintf(stderr, "%s: %.17g kWh, computed %.17g\n", key, json_number_value(h),
                            want);
                sum[v] += json_number_value(h);
                complete += hvs_test_streq(json_string_value(json_object_get(w[v], "quality")),
                                           "COMPLETE");
            }
            if (w[0] && w[1]) {
                json_t *a = agg_test_comparable(w[0]), *b = agg_test_comparable(w[1]);
                json_object_del(a, "building_id");
                json_object_del(b, "building_id");
                if (!json_equal(a, b) && differ++ < 3) {
                    char *ja = json_dumps(a, JSON_SORT_KEYS), *jb = json_dumps(b, JSON_SORT_KEYS);
                    fprintf(stderr, "s%d/i%d hour %d:\n  %s\n  %s\n", k + 1, k + 1, i, ja, jb);
                    free(ja);
                    free(jb);
                }
                json_decref(a);
                json_decref(b);
            }
        }
        double want = counter[k][hours[k] - 1] - counter[k][0];
        printf("building %d: %d hours x 2 orders: %d missing, %d complete, %d differ; "
               "%.0f / %.0f kWh (counter difference %.0f)\n",
               k + 1, hours[k] - 1, missing, complete, differ, sum[0], sum[1], want);
        HVS_CHECK_EQ_INT(missing, 0);
        HVS_CHECK_EQ_INT(complete, 2 * (hours[k] - 1));
        HVS_CHECK_EQ_INT(differ, 0);
        HVS_CHECK(sum[0] == want && sum[1] == want, "building %d: %.17g and %.17g kWh, read %.17g",
                  k + 1, sum[0], sum[1], want);
    }
    json_decref(final);
    /* what is too late for its own building still is: s1's first hour again, 8 days behind s1's
     * newest reading - the one and only dead letter */
    send_range("s1", 0, 0, 0);
    json_t *dlq = NULL;
    for (int64_t deadline = hvs_test_now_ms() + 15000; hvs_test_now_ms() < deadline;) {
        json_decref(dlq);
        dlq = hvs_test_tail_json(env, "readings.dlq", NULL);
        if (dlq && json_array_size(dlq) > 0)
            break;
        usleep(200000);
    }
    json_t *v = json_object_get(json_array_get(dlq, 0), "value");
    HVS_CHECK(dlq && json_array_size(dlq) == 1, "dead letters: %zu, expected 1",
              dlq ? json_array_size(dlq) : (size_t)0);
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(v, "error_code")), "too_late");
    json_decref(dlq);
}

static const hvs_test_case_t cases[] = {
    {"buildings_one_after_another", test_buildings_one_after_another},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
