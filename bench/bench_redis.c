/*
 * Redis against a real redis-server on loopback: SET and HSET one at a time (hvs_redis_command
 * vs bare hiredis redisCommand, so the layer's own cost shows) vs pipelined batches of 10k
 * through hvs_redis_batch_exec (argv form: no allocation per command; format form:
 * hiredis's formatter allocates one), ops/s, and the latency of one 10k batch (p50/p99).
 */
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs_test.h"

#define N_SINGLE 20000
#define BATCH 10000
#define ROUNDS 40

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double secs_since(int64_t t0) { return (double)(hvs_test_now_ms() - t0) / 1000; }

/* ROUNDS batches of BATCH commands; fills lat (ms per exec), returns ops/s incl. building. */
static double pipelined(hvs_redis_t *r, hvs_redis_batch_t *b, int hset, int use_argv,
                        int64_t *lat) {
    char key[64], val[16];
    hvs_err_t err;
    int64_t t0 = hvs_test_now_ms();
    for (int round = 0; round < ROUNDS; round++) {
        hvs_redis_batch_reset(b);
        for (int i = 0; i < BATCH; i++) {
            if (hvs_redis_key(key, sizeof key, hset ? "bldg_bh" : "bldg_bs", NULL, "h:%d", i) < 0)
                abort(); /* fixed ids: cannot fail */
            snprintf(val, sizeof val, "%d", i + round);
            if (use_argv) {
                const char *sv[] = {"SET", key, val}, *hv[] = {"HSET", key, "kwh", val};
                hvs_redis_batch_add(b, hset ? 4 : 3, hset ? hv : sv, NULL);
            } else if (hset) {
                hvs_redis_batch_addf(b, "HSET %s kwh %s", key, val);
            } else {
                hvs_redis_batch_addf(b, "SET %s %s", key, val);
            }
        }
        int64_t a = hvs_test_now_ms();
        HVS_REQUIRE(hvs_redis_batch_exec(r, b, &err) == 0, "exec: %s", err.msg);
        lat[round] = hvs_test_now_ms() - a;
        HVS_CHECK(hvs_redis_batch_errors(b) == 0, "no error replies");
    }
    double s = secs_since(t0);
    qsort(lat, ROUNDS, sizeof lat[0], cmp_i64);
    return (double)ROUNDS * BATCH / s;
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_test_proc_t srv;
    HVS_REQUIRE(hvs_test_redis_start(&srv, 0) == 0, "redis");
    hvs_redis_t *r;
    hvs_err_t err;
    HVS_REQUIRE(hvs_redis_connect(srv.addr, NULL, &r, &err) == 0, "connect");
    char key[64];

    /* one at a time: a round trip each */
    double single[2], bare[2];
    for (int hset = 0; hset < 2; hset++) {
        int64_t t0 = hvs_test_now_ms();
        for (int i = 0; i < N_SINGLE; i++) {
            redisReply *rep;
            if (hvs_redis_key(key, sizeof key, hset ? "bldg_uh" : "bldg_us", NULL, "h:%d", i) < 0)
                abort(); /* fixed ids: cannot fail */
            int rc = hset ? hvs_redis_command(r, &rep, &err, "HSET %s kwh %d", key, i)
                          : hvs_redis_command(r, &rep, &err, "SET %s %d", key, i);
            HVS_REQUIRE(rc == 0, "command: %s", err.msg);
            freeReplyObject(rep);
        }
        single[hset] = N_SINGLE / secs_since(t0);
    }
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    HVS_REQUIRE(c && !c->err, "bare hiredis");
    for (int hset = 0; hset < 2; hset++) {
        int64_t t0 = hvs_test_now_ms();
        for (int i = 0; i < N_SINGLE; i++) {
            if (hvs_redis_key(key, sizeof key, hset ? "bldg_vh" : "bldg_vs", NULL, "h:%d", i) < 0)
                abort(); /* fixed ids: cannot fail */
            redisReply *rep = hset ? redisCommand(c, "HSET %s kwh %d", key, i)
                                   : redisCommand(c, "SET %s %d", key, i);
            HVS_REQUIRE(rep != NULL, "bare command");
            freeReplyObject(rep);
        }
        bare[hset] = N_SINGLE / secs_since(t0);
    }
    redisFree(c);

    hvs_redis_batch_t *b = hvs_redis_batch_new();
    static int64_t lat[4][ROUNDS];
    double piped[4];
    for (int v = 0; v < 4; v++)
        piped[v] = pipelined(r, b, v & 1, v >> 1, lat[v]);

    printf("bench_redis: real redis-server 7 on loopback, one client\n");
    printf("  one at a time  SET : %7.0f ops/s (bare hiredis %7.0f)\n", single[0], bare[0]);
    printf("  one at a time  HSET: %7.0f ops/s (bare hiredis %7.0f)\n", single[1], bare[1]);
    static const char *const names[] = {"SET  format", "HSET format", "SET  argv  ", "HSET argv  "};
    for (int v = 0; v < 4; v++)
        printf("  pipelined %s, batches of %d (building included): %8.0f ops/s; "
               "one batch exec p50 %lld ms, p99 %lld ms\n",
               names[v], BATCH, piped[v], (long long)lat[v][ROUNDS / 2],
               (long long)lat[v][ROUNDS - 1]);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
    hvs_test_proc_stop(&srv);
    return hvs_test_done();
}
