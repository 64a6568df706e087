/*
 * redis against a real redis-server: URL parsing, AUTH and SELECT really applied, a pipelined
 * batch of 10k commands read back, Lua by SHA surviving SCRIPT FLUSH (NOSCRIPT recovery), the
 * server restarted while a batch runs (reconnect, whole batch resent, every key there), a
 * server gone beyond the retry budget reported as unreachable, and the key layout.
 */
#include <pthread.h>

#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs_test.h"

static void test_url(void) {
    char host[64], pw[64];
    int port, db;
    hvs_err_t err;
    HVS_CHECK(hvs_redis_url_parse("redis://:s3cret@cache.local:6380/4", host, sizeof host, &port,
                                  pw, sizeof pw, &db, &err) == 0,
              "full url");
    HVS_CHECK_EQ_STR(host, "cache.local");
    HVS_CHECK_EQ_STR(pw, "s3cret");
    HVS_CHECK_EQ_INT(port, 6380);
    HVS_CHECK_EQ_INT(db, 4);
    HVS_CHECK(hvs_redis_url_parse("redis://user:pw@h", host, sizeof host, &port, pw, sizeof pw,
                                  &db, &err) == 0 &&
                  strcmp(pw, "pw") == 0 && port == 6379 && db == 0,
              "user:pw, defaults");
    static const char *const bad[] = {"http://h:1", "redis://", "redis://h:0", "redis://h:99999",
                                      "redis://h:12x", "redis://h/abc", "redis://:pw@"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        HVS_CHECK(hvs_redis_url_parse(bad[i], host, sizeof host, &port, pw, sizeof pw, &db,
                                      &err) == HVS_ECONFIG,
                  "%s rejected", bad[i]);
        HVS_CHECK(strstr(err.msg, "pw") == NULL, "password not in \"%s\"", err.msg);
    }
}

static void test_keys(void) {
    char buf[64];
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "bldg_A123", "lag:%s:%s", "apt_404", "heat"),
                     (int)strlen("hvs:{bldg_A123}:lag:apt_404:heat"));
    HVS_CHECK_EQ_STR(buf, "hvs:{bldg_A123}:lag:apt_404:heat");
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "bad{id}", "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "", "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, 12, "bldg_A123", "too long"), HVS_EINVAL);
}

static long long int_reply(hvs_redis_t *r, const char *cmd) {
    redisReply *rep;
    hvs_err_t err;
    if (hvs_redis_command(r, &rep, &err, cmd) != 0)
        return -1;
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -2;
    freeReplyObject(rep);
    return v;
}

static void test_auth_select(const hvs_test_proc_t *srv) {
    hvs_redis_t *r, *r3;
    hvs_err_t err;
    char url[200];
    HVS_REQUIRE(hvs_redis_connect(srv->addr, NULL, &r, &err) == 0, "connect: %s", err.msg);
    snprintf(url, sizeof url, "%s/3", srv->addr);
    HVS_REQUIRE(hvs_redis_connect(url, NULL, &r3, &err) == 0, "connect db3");
    redisReply *rep;
    HVS_CHECK(hvs_redis_command(r3, &rep, &err, "SET only_in_3 yes") == 0, "set");
    freeReplyObject(rep);
    HVS_CHECK_EQ_INT(int_reply(r3, "EXISTS only_in_3"), 1);
    HVS_CHECK_EQ_INT(int_reply(r, "EXISTS only_in_3"), 0); /* db 0 does not see it */
    /* Require a password: without it connecting fails, with it it works. */
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "CONFIG SET requirepass hunter2") == 0, "auth on");
    freeReplyObject(rep);
    hvs_redis_t *noauth = NULL;
    HVS_CHECK(hvs_redis_connect(srv->addr, NULL, &noauth, &err) == HVS_EREDIS, "no password");
    HVS_CHECK_EQ_STR(err.reason, "auth");
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%d/3", srv->port);
    hvs_redis_t *authed;
    HVS_REQUIRE(hvs_redis_connect(url, NULL, &authed, &err) == 0, "with password: %s", err.msg);
    HVS_CHECK_EQ_INT(int_reply(authed, "EXISTS only_in_3"), 1);
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", srv->port);
    HVS_CHECK(hvs_redis_connect(url, NULL, &noauth, &err) == HVS_EREDIS, "wrong password");
    HVS_CHECK(strstr(err.msg, "wrong") == NULL, "password not echoed: %s", err.msg);
    HVS_CHECK(hvs_redis_command(authed, &rep, &err, "CONFIG SET requirepass %s", "") == 0, "off");
    freeReplyObject(rep);
    hvs_redis_destroy(authed);
    hvs_redis_destroy(r3);
    hvs_redis_destroy(r);
}

static void test_pipeline_and_scripts(const hvs_test_proc_t *srv) {
    hvs_redis_t *r;
    hvs_err_t err;
    HVS_REQUIRE(hvs_redis_connect(srv->addr, NULL, &r, &err) == 0, "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    char key[64], val[32];
    for (int i = 0; i < 10000; i++) {
        hvs_redis_key(key, sizeof key, "bldg_p", "n:%d", i);
        snprintf(val, sizeof val, "%d", i * 7);
        const char *argv[] = {"SET", key, val};
        HVS_REQUIRE(hvs_redis_batch_add(b, 3, argv, NULL) == 0, "add");
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "exec 10k: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 0);
    hvs_redis_batch_reset(b);
    for (int i = 0; i < 10000; i++) {
        hvs_redis_key(key, sizeof key, "bldg_p", "n:%d", i);
        hvs_redis_batch_addf(b, "GET %s", key);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "exec gets");
    int wrong = 0;
    for (int i = 0; i < 10000; i++) {
        const redisReply *rep = hvs_redis_batch_reply(b, (size_t)i);
        wrong += !rep || rep->type != REDIS_REPLY_STRING || atoi(rep->str) != i * 7;
    }
    HVS_CHECK_EQ_INT(wrong, 0);
    /* an error reply is reported per command, the rest still answered */
    hvs_redis_batch_reset(b);
    hvs_redis_batch_addf(b, "SET plain x");
    hvs_redis_batch_addf(b, "HSET plain f v"); /* WRONGTYPE */
    hvs_redis_batch_addf(b, "GET plain");
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "mixed batch");
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 1);
    HVS_CHECK(hvs_redis_batch_reply(b, 1)->type == REDIS_REPLY_ERROR, "wrongtype reported");
    HVS_CHECK_EQ_STR(hvs_redis_batch_reply(b, 2)->str, "x");

    /* Lua: an idempotent "max" update, by SHA; still works after SCRIPT FLUSH. */
    static hvs_redis_script_t setmax = {
        "setmax",
        "local v = tonumber(redis.call('GET', KEYS[1]) or '-inf') "
        "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0",
        ""};
    HVS_REQUIRE(hvs_redis_script_load(r, &setmax, &err) == 0, "load: %s", err.msg);
    HVS_CHECK_EQ_INT(strlen(setmax.sha), 40);
    const char *keys[] = {"hvs:{b}:max"};
    const char *args5[] = {"5"}, *args3[] = {"3"};
    hvs_redis_batch_reset(b);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args5, NULL);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args3, NULL);
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "evalsha");
    HVS_CHECK(hvs_redis_batch_reply(b, 0)->integer == 1 && hvs_redis_batch_reply(b, 1)->integer == 0,
              "script results");
    redisReply *rep;
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "SCRIPT FLUSH") == 0, "flush");
    freeReplyObject(rep);
    const char *args9[] = {"9"};
    hvs_redis_batch_reset(b);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args9, NULL);
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "evalsha after flush: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 0);
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "GET hvs:{b}:max") == 0 && rep->str &&
                  strcmp(rep->str, "9") == 0,
              "script ran after NOSCRIPT recovery");
    freeReplyObject(rep);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
}

typedef struct exec_arg {
    hvs_redis_t *r;
    hvs_redis_batch_t *b;
    hvs_err_t err;
    int rc;
} exec_arg_t;

static void *exec_batch(void *p) {
    exec_arg_t *a = p;
    a->rc = hvs_redis_batch_exec(a->r, a->b, &a->err);
    return NULL;
}

static void test_restart(hvs_test_proc_t *srv) {
    hvs_redis_t *r;
    hvs_err_t err;
    hvs_redis_opts_t opts = {.retry_initial_ms = 20, .retry_max_ms = 200, .retry_budget_ms = 15000};
    HVS_REQUIRE(hvs_redis_connect(srv->addr, &opts, &r, &err) == 0, "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    char key[64];
    for (int i = 0; i < 2000; i++) {
        hvs_redis_key(key, sizeof key, "bldg_r", "hour:%d", i);
        hvs_redis_batch_addf(b, "HSET %s kwh %d", key, i);
    }
    /* The server dies; it comes back on the same port while the batch is being retried. */
    int port = srv->port;
    hvs_test_proc_stop(srv);
    /* (started from this thread: the test server dies with the thread that forked it) */
    exec_arg_t arg = {r, b, {0, "", ""}, -1};
    pthread_t t;
    pthread_create(&t, NULL, exec_batch, &arg);
    usleep(700000);
    HVS_REQUIRE(hvs_test_redis_start(srv, port) == 0, "redis restarted");
    pthread_join(t, NULL);
    HVS_CHECK(arg.rc == 0, "batch survived the restart: %s", arg.err.msg);
    HVS_CHECK(hvs_redis_reconnects(r) >= 1, "reconnected");
    hvs_redis_batch_reset(b);
    for (int i = 0; i < 2000; i++) {
        hvs_redis_key(key, sizeof key, "bldg_r", "hour:%d", i);
        hvs_redis_batch_addf(b, "HGET %s kwh", key);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "read back");
    int lost = 0;
    for (int i = 0; i < 2000; i++) {
        const redisReply *rep = hvs_redis_batch_reply(b, (size_t)i);
        lost += !rep || rep->type != REDIS_REPLY_STRING || atoi(rep->str) != i;
    }
    HVS_CHECK_EQ_INT(lost, 0);

    /* Gone for good: reported as unreachable once the budget is spent. */
    hvs_redis_t *q;
    hvs_redis_opts_t quick = {.retry_initial_ms = 20, .retry_max_ms = 100, .retry_budget_ms = 500};
    HVS_REQUIRE(hvs_redis_connect(srv->addr, &quick, &q, &err) == 0, "connect");
    hvs_test_proc_stop(srv);
    int64_t t0 = hvs_test_now_ms();
    HVS_CHECK(hvs_redis_batch_exec(q, b, &err) == HVS_EREDIS, "unreachable fails");
    HVS_CHECK_EQ_STR(err.reason, "unreachable");
    HVS_CHECK(hvs_test_now_ms() - t0 < 3000, "within the budget (%lld ms)",
              (long long)(hvs_test_now_ms() - t0));
    hvs_redis_destroy(q);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
}

int main(void) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    test_url();
    test_keys();
    hvs_test_proc_t srv;
    HVS_REQUIRE(hvs_test_redis_start(&srv, 0) == 0, "redis-server");
    test_auth_select(&srv);
    test_pipeline_and_scripts(&srv);
    test_restart(&srv);
    hvs_test_proc_stop(&srv);
    return hvs_test_done();
}
