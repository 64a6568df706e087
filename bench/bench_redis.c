/*
 * Redis against a real redis-server: unpipelined commands vs pipelined batches through
 * hvs_redis_batch_exec, ops/s, and the latency of a 10k-command batch (p50/p99 of 50 batches).
 */
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs_test.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t srv;
    HVS_REQUIRE(hvs_test_redis_start(&srv, 0) == 0, "redis");
    hvs_redis_t *r;
    hvs_err_t err;
    HVS_REQUIRE(hvs_redis_connect(srv.addr, NULL, &r, &err) == 0, "connect");
    char key[64];
    int n1 = 20000;
    int64_t t0 = hvs_test_now_ms();
    for (int i = 0; i < n1; i++) {
        redisReply *rep;
        hvs_redis_key(key, sizeof key, "bldg_u", "h:%d", i);
        if (hvs_redis_command(r, &rep, &err, "HSET %s kwh %d", key, i) == 0)
            freeReplyObject(rep);
    }
    double s1 = (double)(hvs_test_now_ms() - t0) / 1000;
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    static int64_t lat[50];
    int64_t total0 = hvs_test_now_ms();
    for (int round = 0; round < 50; round++) {
        hvs_redis_batch_reset(b);
        for (int i = 0; i < 10000; i++) {
            hvs_redis_key(key, sizeof key, "bldg_b", "h:%d", i);
            hvs_redis_batch_addf(b, "HSET %s kwh %d", key, i + round);
        }
        int64_t a = hvs_test_now_ms();
        HVS_REQUIRE(hvs_redis_batch_exec(r, b, &err) == 0, "exec");
        lat[round] = hvs_test_now_ms() - a;
    }
    double s2 = (double)(hvs_test_now_ms() - total0) / 1000;
    qsort(lat, 50, sizeof lat[0], cmp_i64);
    printf("bench_redis: real redis-server on loopback\n");
    printf("  unpipelined HSET: %.0f ops/s\n", n1 / s1);
    printf("  pipelined HSET (batches of 10k, building + encoding included): %.0f ops/s\n",
           500000 / s2);
    printf("  one 10k batch: p50 %lld ms, p99 %lld ms\n", (long long)lat[25], (long long)lat[49]);
    HVS_CHECK(hvs_redis_batch_errors(b) == 0, "no errors");
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&srv);
    return hvs_test_done();
}
